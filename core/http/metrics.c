/* metrics.c: the metrics action: the process's counters in the Prometheus
 * text exposition format (version 0.0.4), every name prefixed gatehouse_;
 * and the reading both it and the status page's feed are made of
 * (metrics.h).
 *
 * With workers: N each worker counts its own (stats.h: one writer, relaxed
 * atomics) and a scrape, answered by whichever worker took it, adds every
 * worker's up. Gauges of open connections are each listener's counts by
 * kind, kept by its worker as a connection changes kind (loop.c), rather
 * than a pass over the connections, which another worker may not make. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actions.h"
#include "err.h"
#include "metrics.h"
#include "promtext.h"

/* the text builder is promtext.h's; short names for this file */
typedef gh_promtext text;
#define put gh_promtext_put
#define head gh_promtext_head
#define label gh_promtext_label

static const char *const limit_names[3] = { "connections", "requests", "upgrades" };

static void release(void *arg)
{
    free(arg);
}

/* c += what listener p (another worker's, maybe) has open now */
static void add_open(gh_conn_counts *c, const gh_listener *p)
{
    c->http += GH_STAT_GET(p->open[GH_KIND_HTTP]);
    c->websocket += GH_STAT_GET(p->open[GH_KIND_WEBSOCKET]);
    c->tunnel += GH_STAT_GET(p->open[GH_KIND_TUNNEL]);
}

int gh_metrics_gather(gh_loop *loop, gh_metrics_snap *out)
{
    size_t n = loop->site != NULL ? loop->site->cfg->nlisteners : 0;
    struct timespec ts;

    memset(out, 0, sizeof(*out));
    if ((n > 0 && (out->listeners = calloc(n, sizeof(*out->listeners))) == NULL) ||
        (out->workers = calloc(loop->npeers, sizeof(*out->workers))) == NULL) {
        free(out->listeners);
        out->listeners = NULL;
        return GH_ENOMEM;
    }
    out->nlisteners = n;
    out->nworkers = loop->npeers;
    /* every worker's counters, each read as it is now */
    for (unsigned w = 0; w < loop->npeers; w++) {
        const gh_loop *peer = loop->peers[w];

        gh_stats_sum(&out->stats, &peer->stats);
        out->workers[w].accepted = GH_STAT_GET(peer->stats.accepted);
        /* the same listener in every worker has the same index; another
         * worker's list is appended to and its fields set while we read:
         * atomically, see server.c. A retired listener's connections are
         * in its worker's gauge only. */
        for (gh_listener *p = __atomic_load_n(&peer->listeners, __ATOMIC_ACQUIRE); p != NULL;
             p = __atomic_load_n(&p->next, __ATOMIC_ACQUIRE)) {
            size_t i = __atomic_load_n(&p->index, __ATOMIC_RELAXED);

            add_open(&out->workers[w].open, p);
            if (!__atomic_load_n(&p->retired, __ATOMIC_RELAXED) && i < n)
                add_open(&out->listeners[i], p);
        }
    }
    for (gh_listener *l = loop->listeners; l != NULL; l = l->next) {
        if (l->retired || l->index >= n)
            continue;
        out->open.http += out->listeners[l->index].http;
        out->open.websocket += out->listeners[l->index].websocket;
        out->open.tunnel += out->listeners[l->index].tunnel;
    }
    if (loop->last_reload != NULL)
        loop->last_reload(loop, &out->last_reload);
    out->draining = loop->draining;
    clock_gettime(CLOCK_REALTIME, &ts);
    out->now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    return GH_OK;
}

void gh_metrics_snap_deinit(gh_metrics_snap *s)
{
    free(s->listeners);
    free(s->workers);
    s->listeners = NULL;
    s->workers = NULL;
    s->nlisteners = 0;
    s->nworkers = 0;
}

/* name{label="value",kind="..."} for each kind: name_label is the text up
 * to the label's opening quote. */
static void put_counts(text *t, const char *name_label, const char *value,
                       const gh_conn_counts *k)
{
    static const char *const kinds[3] = { "http", "websocket", "tunnel" };
    const uint64_t n[3] = { k->http, k->websocket, k->tunnel };

    for (unsigned i = 0; i < 3; i++) {
        put(t, "%s", name_label);
        label(t, value);
        put(t, "\",kind=\"%s\"} %llu\n", kinds[i], (unsigned long long)n[i]);
    }
}

void gh_action_metrics(gh_request *r, const gh_route_conf *route)
{
    gh_loop *loop = r->c->loop;
    gh_metrics_snap snap;
    const gh_stats *st = &snap.stats;
    text t = { 0 };
    gh_resp_head h;
    static const char *classes[] = { "", "1xx", "2xx", "3xx", "4xx", "5xx" };

    (void)route;
    if (!r->is_get && !r->is_head) {
        gh_req_error(r, 405);
        return;
    }
    if (gh_metrics_gather(loop, &snap) != GH_OK) {
        gh_req_error(r, 500);
        return;
    }

    head(&t, "connections_open", "gauge", "Connections open now, by listener and kind.");
    for (gh_listener *l = loop->listeners; l != NULL; l = l->next) {
        const gh_conn_counts *k;

        if (l->retired || l->index >= snap.nlisteners)
            continue;
        k = &snap.listeners[l->index];
        put_counts(&t, "gatehouse_connections_open{listener=\"", l->name, k);
    }
    head(&t, "worker_connections_open", "gauge",
         "Connections open now, by worker (workers:) and kind.");
    for (unsigned w = 0; w < snap.nworkers; w++) {
        char worker[16];

        snprintf(worker, sizeof(worker), "%u", w);
        put_counts(&t, "gatehouse_worker_connections_open{worker=\"", worker,
                   &snap.workers[w].open);
    }
    head(&t, "connections_accepted_total", "counter", "Connections accepted.");
    put(&t, "gatehouse_connections_accepted_total %llu\n", (unsigned long long)st->accepted);
    head(&t, "worker_connections_accepted_total", "counter",
         "Connections accepted, by worker (workers:).");
    for (unsigned w = 0; w < snap.nworkers; w++)
        put(&t, "gatehouse_worker_connections_accepted_total{worker=\"%u\"} %llu\n", w,
            (unsigned long long)snap.workers[w].accepted);

    head(&t, "proxy_headers_accepted_total", "counter", "PROXY protocol headers accepted.");
    put(&t, "gatehouse_proxy_headers_accepted_total %llu\n", (unsigned long long)st->proxy_accepted);
    head(&t, "proxy_headers_refused_total", "counter", "PROXY protocol headers refused, by reason.");
    for (size_t i = 0; i < st->nproxy_refused; i++) {
        put(&t, "gatehouse_proxy_headers_refused_total{reason=\"");
        label(&t, st->proxy_refused[i].reason);
        put(&t, "\"} %llu\n", (unsigned long long)st->proxy_refused[i].n);
    }

    head(&t, "tls_handshakes_total", "counter", "TLS handshakes, by result.");
    put(&t, "gatehouse_tls_handshakes_total{result=\"ok\"} %llu\n", (unsigned long long)st->tls_ok);
    put(&t, "gatehouse_tls_handshakes_total{result=\"failed\"} %llu\n",
        (unsigned long long)st->tls_failed);

    head(&t, "http_header_timeouts_total", "counter",
         "Connections closed by http.header_timeout in the middle of a request head.");
    put(&t, "gatehouse_http_header_timeouts_total %llu\n",
        (unsigned long long)st->header_timeouts);

    head(&t, "http_responses_total", "counter", "HTTP responses, by status class.");
    for (int i = 1; i <= 5; i++)
        put(&t, "gatehouse_http_responses_total{class=\"%s\"} %llu\n", classes[i],
            (unsigned long long)st->http_responses[i]);

    head(&t, "websocket_messages_total", "counter", "WebSocket messages, by direction.");
    put(&t, "gatehouse_websocket_messages_total{direction=\"in\"} %llu\n",
        (unsigned long long)st->ws_messages_in);
    put(&t, "gatehouse_websocket_messages_total{direction=\"out\"} %llu\n",
        (unsigned long long)st->ws_messages_out);
    head(&t, "websocket_bytes_total", "counter", "WebSocket payload bytes, by direction.");
    put(&t, "gatehouse_websocket_bytes_total{direction=\"in\"} %llu\n",
        (unsigned long long)st->ws_bytes_in);
    put(&t, "gatehouse_websocket_bytes_total{direction=\"out\"} %llu\n",
        (unsigned long long)st->ws_bytes_out);
    head(&t, "websocket_closes_total", "counter", "WebSocket closes, by close code (0: other).");
    for (size_t i = 0; i < st->nws_closes; i++)
        put(&t, "gatehouse_websocket_closes_total{code=\"%u\"} %llu\n", st->ws_closes[i].code,
            (unsigned long long)st->ws_closes[i].n);
    head(&t, "websocket_slow_consumers_total", "counter",
         "WebSocket clients closed for exceeding their send backlog.");
    put(&t, "gatehouse_websocket_slow_consumers_total %llu\n",
        (unsigned long long)st->ws_slow_consumers);
    head(&t, "websocket_publishers_paused_total", "counter",
         "WebSocket clients no longer read for a while because another worker was behind "
         "with the messages they published (workers: N).");
    put(&t, "gatehouse_websocket_publishers_paused_total %llu\n",
        (unsigned long long)st->ws_hub_paused);
    head(&t, "ws_compressions_total", "counter",
         "WebSocket messages compressed with permessage-deflate (a topic message shared by "
         "several subscribers counts once; one that did not shrink and went out plain counts "
         "too).");
    put(&t, "gatehouse_ws_compressions_total %llu\n", (unsigned long long)st->ws_deflations);
    head(&t, "ws_compression_bytes_total", "counter",
         "Bytes through the compressor, uncompressed (in) and compressed (out).");
    put(&t, "gatehouse_ws_compression_bytes_total{stage=\"uncompressed\"} %llu\n",
        (unsigned long long)st->ws_deflate_in);
    put(&t, "gatehouse_ws_compression_bytes_total{stage=\"compressed\"} %llu\n",
        (unsigned long long)st->ws_deflate_out);
    head(&t, "ws_decompressions_total", "counter",
         "Compressed WebSocket messages received and inflated.");
    put(&t, "gatehouse_ws_decompressions_total %llu\n", (unsigned long long)st->ws_inflations);
    head(&t, "ws_decompression_bytes_total", "counter",
         "Bytes through the decompressor, compressed (in) and inflated (out).");
    put(&t, "gatehouse_ws_decompression_bytes_total{stage=\"compressed\"} %llu\n",
        (unsigned long long)st->ws_inflate_in);
    put(&t, "gatehouse_ws_decompression_bytes_total{stage=\"uncompressed\"} %llu\n",
        (unsigned long long)st->ws_inflate_out);

    head(&t, "ws_flush_slices_total", "counter",
         "Times writing a fan-out's output was cut after 2 ms of a loop turn, the rest "
         "written after the next poll so that other clients are served meanwhile.");
    put(&t, "gatehouse_ws_flush_slices_total %llu\n", (unsigned long long)st->ws_flush_slices);
    head(&t, "memory_trims_total", "counter",
         "Times freed heap was given back to the system after a burst.");
    put(&t, "gatehouse_memory_trims_total %llu\n", (unsigned long long)st->mem_trims);

    head(&t, "plugin_loads_total", "counter", "Plugins loaded, by result.");
    put(&t, "gatehouse_plugin_loads_total{result=\"ok\"} %llu\n", (unsigned long long)st->plugin_loads);
    put(&t, "gatehouse_plugin_loads_total{result=\"refused\"} %llu\n",
        (unsigned long long)st->plugin_refusals);
    head(&t, "client_limited_total", "counter",
         "Connections closed (connections) and requests answered 429 (requests, upgrades) "
         "over a per-client limit (limits:).");
    for (unsigned k = 0; k < 3; k++)
        put(&t, "gatehouse_client_limited_total{limit=\"%s\"} %llu\n", limit_names[k],
            (unsigned long long)st->client_limited[k]);
    head(&t, "route_denied_total", "counter",
         "Requests answered 403 because the client is not in the route's allow: list.");
    put(&t, "gatehouse_route_denied_total %llu\n", (unsigned long long)st->route_denied);
    head(&t, "client_untracked_total", "counter",
         "Clients the per-client limits' table had no slot for (admitted, not counted).");
    put(&t, "gatehouse_client_untracked_total %llu\n", (unsigned long long)st->client_untracked);
    head(&t, "plugin_slow_callbacks_total", "counter",
         "Plugin callbacks that ran longer than plugin_warn_after, by callback.");
    for (unsigned k = 0; k < GH_PLUGIN_CALL_KINDS; k++)
        put(&t, "gatehouse_plugin_slow_callbacks_total{callback=\"%s\"} %llu\n",
            gh_plugin_call_names[k], (unsigned long long)st->plugin_slow_calls[k]);
    head(&t, "reloads_total", "counter", "Configuration reloads (SIGHUP), by result.");
    put(&t, "gatehouse_reloads_total{result=\"ok\"} %llu\n", (unsigned long long)st->reloads_ok);
    put(&t, "gatehouse_reloads_total{result=\"failed\"} %llu\n", (unsigned long long)st->reloads_failed);
    head(&t, "config_generation", "gauge",
         "The configuration serving now: 1 at start, one more for each successful reload.");
    put(&t, "gatehouse_config_generation %llu\n", (unsigned long long)st->reloads_ok + 1);
    head(&t, "config_last_reload_successful", "gauge",
         "0 when the last reload was refused (the configuration before it serves on), else 1.");
    put(&t, "gatehouse_config_last_reload_successful %d\n", snap.last_reload.failed ? 0 : 1);
    head(&t, "config_last_reload_timestamp_seconds", "gauge",
         "When the last reload was tried, seconds since the epoch; 0 before the first.");
    put(&t, "gatehouse_config_last_reload_timestamp_seconds %.3f\n", snap.last_reload.time);
    head(&t, "topic_state_answers_total", "counter",
         "Topic-state requests (plugin join/fetch), by who answered: redis (the whole "
         "state) or local (this instance's, without a bus or while Redis cannot be asked).");
    put(&t, "gatehouse_topic_state_answers_total{from=\"redis\"} %llu\n",
        (unsigned long long)st->state_answers_redis);
    put(&t, "gatehouse_topic_state_answers_total{from=\"local\"} %llu\n",
        (unsigned long long)st->state_answers_local);
    head(&t, "topic_state_members", "gauge", "Topic-state members set by this instance's "
         "connections (e.g. chat users).");
    put(&t, "gatehouse_topic_state_members %llu\n", (unsigned long long)st->state_members);
    if (loop->site != NULL && loop->site->cfg->bus.redis != NULL) {   /* worker 0 runs it */
        head(&t, "bus_connected", "gauge", "1 while the Redis bus is connected.");
        put(&t, "gatehouse_bus_connected %d\n", st->bus_connected ? 1 : 0);
        head(&t, "bus_messages_total", "counter",
             "Topic messages through the Redis bus, by direction.");
        put(&t, "gatehouse_bus_messages_total{direction=\"published\"} %llu\n",
            (unsigned long long)st->bus_published);
        put(&t, "gatehouse_bus_messages_total{direction=\"received\"} %llu\n",
            (unsigned long long)st->bus_received);
        head(&t, "bus_not_broadcast_total", "counter",
             "Topic messages published while the bus was down: delivered on this instance only.");
        put(&t, "gatehouse_bus_not_broadcast_total %llu\n",
            (unsigned long long)st->bus_not_broadcast);
        head(&t, "bus_disconnects_total", "counter", "Connections to Redis lost.");
        put(&t, "gatehouse_bus_disconnects_total %llu\n", (unsigned long long)st->bus_disconnects);
        head(&t, "bus_reconnects_total", "counter", "Connections to Redis made again after a loss.");
        put(&t, "gatehouse_bus_reconnects_total %llu\n", (unsigned long long)st->bus_reconnects);
    }
    head(&t, "process_start_time_seconds", "gauge", "Start time of the process since the epoch.");
    put(&t, "gatehouse_process_start_time_seconds %.3f\n", st->start_time);
    head(&t, "draining", "gauge", "1 while the process drains.");
    put(&t, "gatehouse_draining %d\n", snap.draining ? 1 : 0);
    if (loop->metrics_more != NULL)
        loop->metrics_more(loop, loop->site, &t);     /* the pools serving now */
    gh_metrics_snap_deinit(&snap);

    if (t.failed) {
        free(t.buf);
        gh_req_error(r, 500);
        return;
    }
    gh_req_begin(r, &h, 200);
    gh_resp_add_raw(&h, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                        "Cache-Control: no-store\r\n", 81);
    gh_req_send_ref(r, &h, t.buf, t.len, release, t.buf);
}
