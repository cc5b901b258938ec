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
            s->proxy_refused[i].n++;
            return;
        }
    }
    if (s->nproxy_refused == GH_STATS_MAX_REASONS) {
        /* the last slot becomes "other": never lose a count */
        s->proxy_refused[GH_STATS_MAX_REASONS - 1].reason = "other";
        s->proxy_refused[GH_STATS_MAX_REASONS - 1].n++;
        return;
    }
    s->proxy_refused[s->nproxy_refused].reason = reason;
    s->proxy_refused[s->nproxy_refused].n = 1;
    s->nproxy_refused++;
}

void gh_stats_ws_close(gh_stats *s, unsigned code)
{
    size_t i;

    for (i = 0; i < s->nws_closes; i++) {
        if (s->ws_closes[i].code == code) {
            s->ws_closes[i].n++;
            return;
        }
    }
    if (s->nws_closes == GH_STATS_MAX_CODES) {
        s->ws_closes[GH_STATS_MAX_CODES - 1].code = 0;
        s->ws_closes[GH_STATS_MAX_CODES - 1].n++;
        return;
    }
    s->ws_closes[s->nws_closes].code = code;
    s->ws_closes[s->nws_closes].n = 1;
    s->nws_closes++;
}

const char *const gh_plugin_call_names[GH_PLUGIN_CALL_KINDS] = {
    "init", "open", "message", "close", "timer", "state", "fini",
};
