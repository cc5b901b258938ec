/* stats.c: counter helpers (see stats.h). */
#include "stats.h"

#include <string.h>

void gh_stats_proxy_refused(gh_stats *s, const char *reason)
{
    size_t i;

    if (reason == NULL)
        reason = "other";
    for (i = 0; i < s->nproxy_refused; i++) {
        if (s->proxy_refused[i].reason == reason || strcmp(s->proxy_refused[i].reason, reason) == 0) {
            GH_STAT_ADD(s->proxy_refused[i].n, 1);
            return;
        }
    }
    if (s->nproxy_refused == GH_STATS_MAX_REASONS) {
        /* the last slot becomes "other": never lose a count */
        GH_STAT_SET(s->proxy_refused[GH_STATS_MAX_REASONS - 1].reason, "other");
        GH_STAT_ADD(s->proxy_refused[GH_STATS_MAX_REASONS - 1].n, 1);
        return;
    }
    /* the slot is filled before the count that shows it to readers */
    GH_STAT_SET(s->proxy_refused[i].reason, reason);
    GH_STAT_SET(s->proxy_refused[i].n, 1);
    __atomic_store_n(&s->nproxy_refused, i + 1, __ATOMIC_RELEASE);
}

void gh_stats_ws_close(gh_stats *s, unsigned code)
{
    size_t i;

    for (i = 0; i < s->nws_closes; i++) {
        if (s->ws_closes[i].code == code) {
            GH_STAT_ADD(s->ws_closes[i].n, 1);
            return;
        }
    }
    if (s->nws_closes == GH_STATS_MAX_CODES) {
        GH_STAT_SET(s->ws_closes[GH_STATS_MAX_CODES - 1].code, 0);
        GH_STAT_ADD(s->ws_closes[GH_STATS_MAX_CODES - 1].n, 1);
        return;
    }
    GH_STAT_SET(s->ws_closes[i].code, code);
    GH_STAT_SET(s->ws_closes[i].n, 1);
    __atomic_store_n(&s->nws_closes, i + 1, __ATOMIC_RELEASE);
}

#define SUM(f) (dst->f += GH_STAT_GET(src->f))

void gh_stats_sum(gh_stats *dst, const gh_stats *src)
{
    size_t n;

    SUM(accepted);
    SUM(proxy_accepted);
    n = __atomic_load_n(&src->nproxy_refused, __ATOMIC_ACQUIRE);
    for (size_t i = 0; i < n; i++) {
        const char *reason = GH_STAT_GET(src->proxy_refused[i].reason);
        uint64_t v = GH_STAT_GET(src->proxy_refused[i].n);
        size_t k;

        for (k = 0; k < dst->nproxy_refused && strcmp(dst->proxy_refused[k].reason, reason); k++)
            ;
        if (k == dst->nproxy_refused) {
            if (k == GH_STATS_MAX_REASONS) {
                k--;
                dst->proxy_refused[k].reason = "other";
            } else {
                dst->proxy_refused[k].reason = reason;
                dst->proxy_refused[k].n = 0;
                dst->nproxy_refused++;
            }
        }
        dst->proxy_refused[k].n += v;
    }
    SUM(tls_ok);
    SUM(tls_failed);
    SUM(ws_hub_paused);
    SUM(header_timeouts);
    for (size_t i = 0; i < 6; i++)
        SUM(http_responses[i]);
    SUM(ws_messages_in);
    SUM(ws_messages_out);
    SUM(ws_bytes_in);
    SUM(ws_bytes_out);
    n = __atomic_load_n(&src->nws_closes, __ATOMIC_ACQUIRE);
    for (size_t i = 0; i < n; i++) {
        unsigned code = GH_STAT_GET(src->ws_closes[i].code);
        uint64_t v = GH_STAT_GET(src->ws_closes[i].n);
        size_t k;

        for (k = 0; k < dst->nws_closes && dst->ws_closes[k].code != code; k++)
            ;
        if (k == dst->nws_closes) {
            if (k == GH_STATS_MAX_CODES) {
                k--;
                dst->ws_closes[k].code = 0;
            } else {
                dst->ws_closes[k].code = code;
                dst->ws_closes[k].n = 0;
                dst->nws_closes++;
            }
        }
        dst->ws_closes[k].n += v;
    }
    SUM(ws_slow_consumers);
    SUM(ws_flush_slices);
    SUM(ws_deflations);
    SUM(ws_deflate_in);
    SUM(ws_deflate_out);
    SUM(ws_inflations);
    SUM(ws_inflate_in);
    SUM(ws_inflate_out);
    SUM(plugin_loads);
    SUM(plugin_refusals);
    for (size_t i = 0; i < 3; i++)
        SUM(client_limited[i]);
    SUM(client_untracked);
    SUM(route_denied);
    for (size_t i = 0; i < GH_PLUGIN_CALL_KINDS; i++)
        SUM(plugin_slow_calls[i]);
    SUM(reloads_ok);
    SUM(reloads_failed);
    SUM(bus_published);
    SUM(bus_received);
    SUM(bus_not_broadcast);
    SUM(bus_disconnects);
    SUM(bus_reconnects);
    SUM(bus_connected);
    SUM(state_answers_redis);
    SUM(state_answers_local);
    SUM(state_members);
    SUM(mem_trims);
    /* set before the workers start, never written after */
    if (dst->start_time == 0 || (src->start_time != 0 && src->start_time < dst->start_time))
        dst->start_time = src->start_time;
}

const char *const gh_plugin_call_names[GH_PLUGIN_CALL_KINDS] = {
    "init", "open", "message", "close", "timer", "state", "fini",
};
