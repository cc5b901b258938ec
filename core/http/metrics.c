/* metrics.c: the metrics action: the process's counters in the Prometheus
 * text exposition format (version 0.0.4), every name prefixed gatehouse_.
 *
 * Gauges of open connections are counted from the registry at scrape time
 * (one pass over the connections) rather than kept in step on every state
 * change: a scrape every few seconds costs less than bookkeeping on every
 * request. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
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

void gh_action_metrics(gh_request *r, const gh_route_conf *route)
{
    gh_loop *loop = r->c->loop;
    gh_stats sum;
    const gh_stats *st = &sum;
    text t = { 0 };
    gh_resp_head h;
    static const char *classes[] = { "", "1xx", "2xx", "3xx", "4xx", "5xx" };

    (void)route;
    if (!r->is_get && !r->is_head) {
        gh_req_error(r, 405);
        return;
    }

    /* every worker's counters, each read as it is now */
    memset(&sum, 0, sizeof(sum));
    for (unsigned w = 0; w < loop->npeers; w++)
        gh_stats_sum(&sum, &loop->peers[w]->stats);

    head(&t, "connections_open", "gauge", "Connections open now, by listener and kind.");
    for (gh_listener *l = loop->listeners; l != NULL; l = l->next) {
        static const char *const kinds[3] = { "http", "websocket", "tunnel" };
        uint64_t open[3] = { 0, 0, 0 };
        if (l->retired)
            continue;
        /* the same listener in every worker: the same index (another
         * worker's list is appended to and its fields set while we read:
         * atomically, see server.c) */
        for (unsigned w = 0; w < loop->npeers; w++)
            for (gh_listener *p = __atomic_load_n(&loop->peers[w]->listeners, __ATOMIC_ACQUIRE);
                 p != NULL; p = __atomic_load_n(&p->next, __ATOMIC_ACQUIRE))
                if (!__atomic_load_n(&p->retired, __ATOMIC_RELAXED) &&
                    __atomic_load_n(&p->index, __ATOMIC_RELAXED) == l->index)
                    for (unsigned k = 0; k < 3; k++)
                        open[k] += GH_STAT_GET(p->open[k]);
        for (unsigned k = 0; k < 3; k++) {
            put(&t, "gatehouse_connections_open{listener=\"");
            label(&t, l->name);
            put(&t, "\",kind=\"%s\"} %llu\n", kinds[k], (unsigned long long)open[k]);
        }
    }
    head(&t, "worker_connections_open", "gauge",
         "Connections open now, by worker (workers:) and kind.");
    for (unsigned w = 0; w < loop->npeers; w++) {
        static const char *const kinds[3] = { "http", "websocket", "tunnel" };
        uint64_t open[3] = { 0, 0, 0 };

        for (gh_listener *p = __atomic_load_n(&loop->peers[w]->listeners, __ATOMIC_ACQUIRE);
             p != NULL; p = __atomic_load_n(&p->next, __ATOMIC_ACQUIRE))
            for (unsigned k = 0; k < 3; k++)
                open[k] += GH_STAT_GET(p->open[k]);
        for (unsigned k = 0; k < 3; k++)
            put(&t, "gatehouse_worker_connections_open{worker=\"%u\",kind=\"%s\"} %llu\n", w,
                kinds[k], (unsigned long long)open[k]);
    }
    head(&t, "connections_accepted_total", "counter", "Connections accepted.");
    put(&t, "gatehouse_connections_accepted_total %llu\n", (unsigned long long)st->accepted);
    head(&t, "worker_connections_accepted_total", "counter",
         "Connections accepted, by worker (workers:).");
    for (unsigned w = 0; w < loop->npeers; w++)
        put(&t, "gatehouse_worker_connections_accepted_total{worker=\"%u\"} %llu\n", w,
            (unsigned long long)GH_STAT_GET(loop->peers[w]->stats.accepted));

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
    if (loop->bus != NULL) {
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
    put(&t, "gatehouse_draining %d\n", loop->draining ? 1 : 0);
    if (loop->metrics_more != NULL)
        loop->metrics_more(loop, r->c->site, &t);

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
