/* status.c: the status action: a page an operator opens to see the gateway
 * live, and the JSON document it fetches once a second.
 *
 * Why this shape: the feed is the state now (counters, gauges, the busiest
 * rooms, plugins, bus and upstream servers), never rates or history. The
 * page keeps its last 15 minutes itself and computes rates from one
 * document to the next, so the daemon keeps no timer, ring or memory for
 * it and does nothing while nobody looks: each viewer costs one document a
 * second, made of the counters and one pass over the topics. Counters and
 * open connections come from gh_metrics_gather(), the reading /metrics
 * prints (every worker's), so the page and a scrape at the same moment
 * agree; upstream servers likewise from gh_upserver_sum_of().
 *
 * With workers: N any worker may answer, and reads nothing another worker
 * writes without an atomic or a lock: counters and gauges are relaxed
 * atomics, the last reload is the daemon's record under its mutex, and
 * the rooms come from the hub (cluster/hub.c) under its stripe locks,
 * never from another worker's topics table (see write_rooms()).
 *
 * It deliberately serves only its own files, built into the binary
 * (status.h): nothing of the request reaches the file system. The page
 * gets a Content-Security-Policy that lets it load and fetch from its own
 * origin only. Who may see all this is the route's `allow:`. */
#include "status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "err.h"
#include "hub.h"
#include "json.h"
#include "metrics.h"
#include "mime.h"
#include "pluginhost.h"
#include "pool.h"
#include "topic.h"
#include "tstate.h"

#ifndef GH_VERSION
#define GH_VERSION "0.0.0"
#endif

#define TOP_ROOMS 20            /* rooms listed, busiest first */

static const char *const classes[6] = { "", "1xx", "2xx", "3xx", "4xx", "5xx" };
static const char *const limit_names[3] = { "connections", "requests", "upgrades" };

/* ---- the busiest rooms ---------------------------------------------------- */

/* A topic ranked: a candidate points at the strings of the table it is
 * read from; one kept among the busiest has them copied into key (the
 * hub's strings are only valid under its lock). */
typedef struct room {
    const char *ns;             /* the plugin */
    const char *name;
    size_t      len;
    uint64_t    subs, members, messages;
    char        key[GH_TOPIC_MAX_NS + 1 + GH_TOPIC_MAX_NAME];
} room;

typedef struct rooms {
    room  *top[TOP_ROOMS];      /* busiest first, into slots */
    room   slots[TOP_ROOMS];
    size_t n;
    size_t count;               /* every topic */
} rooms;

/* Whether a ranks before b: more subscribers, then more messages, then by
 * name, so that equal rooms keep their places from one second to the next. */
static bool busier(const room *a, const room *b)
{
    size_t m = a->len < b->len ? a->len : b->len;
    int c;

    if (a->subs != b->subs)
        return a->subs > b->subs;
    if (a->messages != b->messages)
        return a->messages > b->messages;
    if ((c = strcmp(a->ns, b->ns)) != 0)
        return c < 0;
    if ((c = memcmp(a->name, b->name, m)) != 0)
        return c < 0;
    return a->len < b->len;
}

/* Counts r and keeps a copy of it when it is among the busiest so far. */
static void rank(rooms *rs, const room *r)
{
    size_t i, nslen = strlen(r->ns);
    room *slot;

    rs->count++;
    if (rs->n == TOP_ROOMS && !busier(r, rs->top[TOP_ROOMS - 1]))
        return;
    if (nslen > GH_TOPIC_MAX_NS || r->len > GH_TOPIC_MAX_NAME)
        return;                 /* cannot be: topic.h's limits */
    slot = rs->n < TOP_ROOMS ? &rs->slots[rs->n++] : rs->top[TOP_ROOMS - 1];
    memcpy(slot->key, r->ns, nslen + 1);
    memcpy(slot->key + nslen + 1, r->name, r->len);
    slot->ns = slot->key;
    slot->name = slot->key + nslen + 1;
    slot->len = r->len;
    slot->subs = r->subs;
    slot->members = r->members;
    slot->messages = r->messages;
    for (i = rs->n - 1; i > 0 && busier(slot, rs->top[i - 1]); i--)
        rs->top[i] = rs->top[i - 1];
    rs->top[i] = slot;
}

/* One worker: its own topics table (this thread's). */
static void on_topic(void *arg, const char *ns, const char *name, size_t len, size_t nsubs,
                     uint64_t messages)
{
    room r = { .ns = ns, .name = name, .len = len, .subs = nsubs, .messages = messages };

    rank(arg, &r);
}

/* Several: the hub's topics, which span them, under its locks. */
static void on_hub_topic(void *arg, const gh_hub_topic *t)
{
    room r = { .ns = t->ns, .name = t->name, .len = t->len, .subs = t->subscribers,
               .members = t->members, .messages = t->messages };

    rank(arg, &r);
}

/* The rooms of the whole process. With several workers each one's topics
 * table is its own thread's, so they are read from the hub, which knows
 * every topic, its subscribers on each worker, its messages and its
 * members (the whole process's). With one there is no hub: the worker
 * answering is the only one, its table and topic state are read as they
 * are (with a bus, the members are this instance's). */
static int write_rooms(gh_json *j, gh_loop *loop)
{
    rooms *rs = calloc(1, sizeof(*rs));

    if (rs == NULL)
        return GH_ENOMEM;
    if (loop->hub != NULL) {
        gh_hub_each(loop->hub, on_hub_topic, rs);
    } else if (loop->topics != NULL) {
        gh_topics_each(loop->topics, on_topic, rs);
        for (size_t i = 0; i < rs->n; i++)
            rs->top[i]->members = loop->tstate != NULL
                ? gh_tstate_members(loop->tstate, rs->top[i]->ns, rs->top[i]->name,
                                    rs->top[i]->len) : 0;
    }
    gh_json_begin_object(j, "rooms");
    gh_json_u64(j, "count", rs->count);
    gh_json_begin_array(j, "busiest");
    for (size_t i = 0; i < rs->n; i++) {
        const room *r = rs->top[i];

        gh_json_begin_object(j, NULL);
        gh_json_string(j, "plugin", r->ns);
        gh_json_string_n(j, "room", r->name, r->len);
        gh_json_u64(j, "subscribers", r->subs);
        gh_json_u64(j, "members", r->members);
        gh_json_u64(j, "messages", r->messages);
        gh_json_end_object(j);
    }
    gh_json_end_array(j);
    gh_json_end_object(j);
    free(rs);
    return GH_OK;
}

/* ---- plugins, bus, upstreams ---------------------------------------------- */

static void on_plugin(void *arg, const gh_plugin_info *p)
{
    gh_json *j = arg;

    gh_json_begin_object(j, NULL);
    gh_json_string(j, "name", p->name);
    gh_json_string(j, "version", p->version);
    gh_json_string(j, "file", p->path);
    gh_json_begin_array(j, "abi");
    gh_json_u64(j, NULL, p->abi_major);
    gh_json_u64(j, NULL, p->abi_minor);
    gh_json_end_array(j);
    gh_json_u64(j, "routes", p->routes);
    gh_json_u64(j, "routes_failed", p->failed);
    gh_json_end_object(j);
}

/* Refused files come after the loaded ones: the array of those is closed
 * and this one opened by the first refusal. */
typedef struct plugin_walk {
    gh_json *j;
    bool     refusals;
} plugin_walk;

static void on_loaded(void *arg, const gh_plugin_info *p)
{
    on_plugin(((plugin_walk *)arg)->j, p);
}

static void on_refused(void *arg, const char *file, const char *why)
{
    plugin_walk *w = arg;

    if (!w->refusals) {
        gh_json_end_array(w->j);
        gh_json_begin_array(w->j, "refused");
        w->refusals = true;
    }
    gh_json_begin_object(w->j, NULL);
    gh_json_string(w->j, "file", file);
    gh_json_string(w->j, "reason", why);
    gh_json_end_object(w->j);
}

static void write_plugins(gh_json *j, gh_site *site)
{
    plugin_walk w = { .j = j };

    gh_json_begin_object(j, "plugins");
    gh_json_begin_array(j, "loaded");
    gh_plugins_each(site, on_loaded, on_refused, &w);
    gh_json_end_array(j);
    if (!w.refusals) {
        gh_json_begin_array(j, "refused");
        gh_json_end_array(j);
    }
    gh_json_end_object(j);
}

static void write_bus(gh_json *j, const gh_config *cfg, const gh_stats *st)
{
    gh_bus_url u;
    char where[300];

    if (cfg->bus.redis == NULL) {
        gh_json_null(j, "bus");
        return;
    }
    gh_json_begin_object(j, "bus");
    /* the address without the password the URL may hold */
    if (gh_bus_url_parse(cfg->bus.redis, &u) == GH_OK) {
        bool v6 = memchr(u.host, ':', u.host_len) != NULL;

        snprintf(where, sizeof(where), "%s%.*s%s:%u/%d", v6 ? "[" : "", (int)u.host_len, u.host,
                 v6 ? "]" : "", (unsigned)u.port, u.db);
        gh_json_string(j, "redis", where);
    } else {
        gh_json_null(j, "redis");
    }
    gh_json_string(j, "channel_prefix", cfg->bus.channel_prefix);
    gh_json_bool(j, "running", cfg->bus.redis != NULL);     /* on worker 0 */
    gh_json_bool(j, "connected", st->bus_connected != 0);
    gh_json_u64(j, "published", st->bus_published);
    gh_json_u64(j, "received", st->bus_received);
    gh_json_u64(j, "not_broadcast", st->bus_not_broadcast);
    gh_json_u64(j, "disconnects", st->bus_disconnects);
    gh_json_u64(j, "reconnects", st->bus_reconnects);
    gh_json_end_object(j);
}

static const char *balance_name(gh_balance b)
{
    switch (b) {
    case GH_BALANCE_LEAST_CONN: return "least_conn";
    case GH_BALANCE_CLIENT_IP: return "client_ip";
    default: return "round_robin";
    }
}

static void write_server(gh_json *j, const gh_upserver *s, const gh_upserver_sum *m)
{
    uint64_t failures = 0;
    const char *state = "up";

    for (int k = 0; k < GH_UPFAIL_COUNT; k++)
        failures += m->failures[k];
    if (m->hc_down)
        state = "down: health checks";
    else if (!m->up)
        state = "down: failures";
    gh_json_begin_object(j, NULL);
    gh_json_string(j, "address", s->conf->address);
    gh_json_bool(j, "up", m->up);
    gh_json_string(j, "state", state);
    gh_json_u64(j, "weight", s->conf->weight);
    gh_json_bool(j, "backup", s->conf->backup);
    gh_json_u64(j, "active", m->active);
    gh_json_u64(j, "idle", m->idle);
    gh_json_u64(j, "requests", m->requests);
    gh_json_begin_object(j, "responses");
    for (int k = 1; k <= 5; k++)
        gh_json_u64(j, classes[k], m->responses[k]);
    gh_json_end_object(j);
    gh_json_u64(j, "failures", failures);
    if (m->timed > 0)
        gh_json_fixed(j, "latency_seconds", m->latency_ms / 1000.0, 6);
    else
        gh_json_null(j, "latency_seconds");
    gh_json_end_object(j);
}

/* The site's upstreams with every worker's figures added up, as /metrics
 * shows them (the configuration, s->conf, is the same in every pool). */
static void write_upstreams(gh_json *j, gh_site *site)
{
    gh_upstreams *u = site->upstreams != NULL ? site->upstreams[0] : NULL;
    uint64_t now_ms = gh_now_ms();

    gh_json_begin_array(j, "upstreams");
    for (size_t i = 0; i < gh_upstreams_count(u); i++) {
        const gh_upstream *up = gh_upstreams_get(u, i);

        gh_json_begin_object(j, NULL);
        gh_json_string(j, "name", up->conf->name);
        gh_json_string(j, "balance", balance_name(up->conf->balance));
        gh_json_bool(j, "health_checks", up->conf->health);
        gh_json_begin_array(j, "servers");
        for (size_t k = 0; k < up->nservers; k++) {
            gh_upserver_sum m;

            gh_upserver_sum_of(site, i, k, now_ms, &m);
            write_server(j, &up->servers[k], &m);
        }
        gh_json_end_array(j);
        gh_json_end_object(j);
    }
    gh_json_end_array(j);
}

/* ---- the feed --------------------------------------------------------------- */

static void write_counts(gh_json *j, const char *key, const gh_conn_counts *k)
{
    gh_json_begin_object(j, key);
    gh_json_u64(j, "http", k->http);
    gh_json_u64(j, "websocket", k->websocket);
    gh_json_u64(j, "tunnel", k->tunnel);
    gh_json_end_object(j);
}

static void write_config(gh_json *j, const gh_site *site, const gh_metrics_snap *m)
{
    const gh_stats *st = &m->stats;
    const gh_reload_info *last = &m->last_reload;

    gh_json_begin_object(j, "config");
    gh_json_string(j, "path", site->cfg->path);
    gh_json_u64(j, "generation", st->reloads_ok + 1);
    gh_json_u64(j, "reloads_ok", st->reloads_ok);
    gh_json_u64(j, "reloads_failed", st->reloads_failed);
    if (last->time <= 0) {
        gh_json_null(j, "last_reload");
    } else {
        gh_json_begin_object(j, "last_reload");
        gh_json_fixed(j, "time", last->time, 3);
        gh_json_bool(j, "ok", !last->failed);
        if (last->failed)
            gh_json_string(j, "error", last->error);
        else
            gh_json_null(j, "error");
        gh_json_end_object(j);
    }
    gh_json_end_object(j);
}

static void write_traffic(gh_json *j, const gh_metrics_snap *m)
{
    const gh_stats *st = &m->stats;
    uint64_t refused = 0;

    for (size_t i = 0; i < st->nproxy_refused; i++)
        refused += st->proxy_refused[i].n;
    gh_json_begin_object(j, "proxy_headers");
    gh_json_u64(j, "accepted", st->proxy_accepted);
    gh_json_u64(j, "refused", refused);
    gh_json_begin_object(j, "refused_by_reason");
    for (size_t i = 0; i < st->nproxy_refused; i++)
        gh_json_u64(j, st->proxy_refused[i].reason, st->proxy_refused[i].n);
    gh_json_end_object(j);
    gh_json_end_object(j);

    gh_json_begin_object(j, "tls_handshakes");
    gh_json_u64(j, "ok", st->tls_ok);
    gh_json_u64(j, "failed", st->tls_failed);
    gh_json_end_object(j);

    gh_json_begin_object(j, "http_responses");
    for (int k = 1; k <= 5; k++)
        gh_json_u64(j, classes[k], st->http_responses[k]);
    gh_json_end_object(j);
    gh_json_u64(j, "route_denied", st->route_denied);
    gh_json_begin_object(j, "client_limited");
    for (int k = 0; k < 3; k++)
        gh_json_u64(j, limit_names[k], st->client_limited[k]);
    gh_json_end_object(j);

    gh_json_begin_object(j, "websocket");
    gh_json_u64(j, "messages_in", st->ws_messages_in);
    gh_json_u64(j, "messages_out", st->ws_messages_out);
    gh_json_u64(j, "bytes_in", st->ws_bytes_in);
    gh_json_u64(j, "bytes_out", st->ws_bytes_out);
    gh_json_u64(j, "slow_consumers", st->ws_slow_consumers);
    gh_json_begin_object(j, "closes");
    for (size_t i = 0; i < st->nws_closes; i++) {
        char code[12];

        snprintf(code, sizeof(code), "%u", st->ws_closes[i].code);
        gh_json_u64(j, code, st->ws_closes[i].n);
    }
    gh_json_end_object(j);
    gh_json_end_object(j);
}

/* The whole document into j. Returns 0 or GH_ENOMEM. */
static int write_feed(gh_json *j, gh_loop *loop)
{
    gh_site *site = loop->site;     /* the configuration serving now */
    gh_metrics_snap m;
    const gh_stats *st = &m.stats;

    if (gh_metrics_gather(loop, &m) != GH_OK)
        return GH_ENOMEM;
    gh_json_begin_object(j, NULL);
    gh_json_string(j, "version", GH_VERSION);
    gh_json_fixed(j, "now", m.now, 3);
    gh_json_fixed(j, "start_time", st->start_time, 3);
    gh_json_fixed(j, "uptime_seconds", m.now - st->start_time, 3);
    gh_json_bool(j, "draining", m.draining);
    write_config(j, site, &m);

    gh_json_begin_object(j, "connections");
    gh_json_u64(j, "accepted", st->accepted);
    write_counts(j, "open", &m.open);
    gh_json_begin_array(j, "listeners");
    for (gh_listener *l = loop->listeners; l != NULL; l = l->next) {
        if (l->retired || l->index >= m.nlisteners)
            continue;
        gh_json_begin_object(j, NULL);
        gh_json_string(j, "listen", l->name);
        write_counts(j, "open", &m.listeners[l->index]);
        gh_json_end_object(j);
    }
    gh_json_end_array(j);
    gh_json_begin_array(j, "workers");
    for (unsigned w = 0; w < m.nworkers; w++) {
        gh_json_begin_object(j, NULL);
        gh_json_u64(j, "accepted", m.workers[w].accepted);
        write_counts(j, "open", &m.workers[w].open);
        gh_json_end_object(j);
    }
    gh_json_end_array(j);
    gh_json_end_object(j);

    write_traffic(j, &m);
    if (write_rooms(j, loop) != GH_OK) {
        gh_metrics_snap_deinit(&m);
        return GH_ENOMEM;
    }
    write_plugins(j, site);
    write_bus(j, site->cfg, st);
    write_upstreams(j, site);
    gh_json_end_object(j);
    gh_metrics_snap_deinit(&m);
    return gh_json_done(j) ? GH_OK : GH_ENOMEM;
}

/* ---- the action ------------------------------------------------------------- */

static void release(void *arg)
{
    free(arg);
}

#define ADD(h, lit) gh_resp_add_raw((h), lit, sizeof(lit) - 1)

/* The value of parameter key in query[0..n), as given (not decoded: the
 * values this action knows are plain), or NULL. */
static const char *param(const char *query, size_t n, const char *key, size_t *vlen)
{
    size_t klen = strlen(key);
    const char *p = query, *end = query + n;

    while (p != NULL && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;

        if ((size_t)(stop - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
            *vlen = (size_t)(stop - p) - klen - 1;
            return p + klen + 1;
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return NULL;
}

static bool param_is(const gh_request *r, const char *key, const char *want)
{
    size_t n;
    const char *v = r->req->query != NULL
                    ? param(r->req->query, r->req->query_len, key, &n) : NULL;

    return v != NULL && n == strlen(want) && memcmp(v, want, n) == 0;
}

static void send_feed(gh_request *r)
{
    gh_json j = { 0 };
    gh_resp_head h;

    if (write_feed(&j, r->c->loop) != GH_OK) {
        free(j.buf);
        gh_req_error(r, 500);
        return;
    }
    gh_req_begin(r, &h, 200);
    ADD(&h, "Content-Type: application/json; charset=utf-8\r\n"
            "Cache-Control: no-store\r\n"
            "X-Content-Type-Options: nosniff\r\n");
    gh_req_send_ref(r, &h, j.buf, j.len, release, j.buf);
}

static void send_asset(gh_request *r, const gh_status_asset *a)
{
    gh_resp_head h;

    gh_req_begin(r, &h, 200);
    gh_resp_add_str(&h, "Content-Type", gh_mime_type(a->name));
    ADD(&h, "Cache-Control: no-cache\r\n"
            "X-Content-Type-Options: nosniff\r\n");
    if (strcmp(a->name, "index.html") == 0)
        /* the page loads and fetches from this origin only, and is framed
         * by nobody */
        ADD(&h, "Content-Security-Policy: default-src 'none'; script-src 'self'; "
                "style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                "form-action 'none'; frame-ancestors 'none'\r\n"
                "Referrer-Policy: no-referrer\r\n");
    gh_req_send_ref(r, &h, a->data, a->len, NULL, NULL);
}

void gh_action_status(gh_request *r, const gh_route_conf *route)
{
    const char *name = "index.html";
    size_t n;

    (void)route;
    if (!r->is_get && !r->is_head) {
        gh_req_error(r, 405);
        return;
    }
    if (param_is(r, "format", "json")) {
        send_feed(r);
        return;
    }
    if (r->req->query != NULL) {
        const char *v = param(r->req->query, r->req->query_len, "asset", &n);

        if (v != NULL) {
            for (const gh_status_asset *a = gh_status_assets; a->name != NULL; a++) {
                if (strlen(a->name) == n && memcmp(a->name, v, n) == 0 &&
                    strcmp(a->name, "index.html") != 0) {
                    send_asset(r, a);
                    return;
                }
            }
            gh_req_error(r, 404);
            return;
        }
    }
    for (const gh_status_asset *a = gh_status_assets; a->name != NULL; a++) {
        if (strcmp(a->name, name) == 0) {
            send_asset(r, a);
            return;
        }
    }
    gh_req_error(r, 500);
}
