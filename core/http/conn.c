/* conn.c: one client connection: the HTTP/1.1 request loop.
 *
 * The glue around the http1 codec: it owns the bufferevent, the header and
 * keep-alive timers, body discarding, pipelining order and backpressure,
 * and hands each parsed request to its route's action. Requests on one
 * connection are answered strictly in order: the next pipelined request is
 * not looked at until the previous response has left the output buffer,
 * which also bounds the memory one client can make us hold. The read high
 * watermark bounds what we buffer from a client that will not stop sending.
 *
 * It deliberately does not parse (http1.c), route (route.c) or know how
 * files are served (staticfile.c). */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "accesslog.h"
#include "cidr.h"
#include "climit.h"
#include "actions.h"
#include "err.h"
#include "log.h"
#include "proxy.h"
#include "tls.h"
#include "route.h"
#include "slab.h"
#include "units.h"
#include "uri.h"

#define PATH_MAX_BYTES 4096
/* After our last byte, read and drop what the client still sends for this
 * long (or this much) before closing, so a client still sending its
 * request gets our response instead of a reset (RFC 9112 §9.6). */
#define LINGER_MS 2000
#define LINGER_MAX_BYTES (1024 * 1024)
/* The longest PROXY header we take. v2 allows 64 KiB of TLVs; real
 * balancers send well under 1 KiB. */
#define PP_MAX 4096

typedef struct gh_request_release {
    void (*release)(void *arg);
    void *arg;
} gh_request_release;

static void on_read(struct bufferevent *bev, void *arg);
static void move_out(gh_conn *c);
static void trip_free(struct gh_conn_trip *t);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static void process(gh_conn *c);
static void finish_request(gh_conn *c);
static void maybe_linger(gh_conn *c);

static const gh_config *cfg_of(const gh_conn *c)
{
    return c->site->cfg;
}

/* ---- per-client limits (`limits:`, climit.h) ----------------------------- */

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The process's table when the config sets any limit, else NULL. The
 * first worker to need it makes it; one that loses the race frees its
 * own. */
static gh_climits *climits_of(gh_conn *c)
{
    const gh_limits_conf *l = &cfg_of(c)->limits;
    gh_climits *t, *none = NULL;

    if (l->connections == 0 && l->requests.count == 0 && l->upgrades.count == 0)
        return NULL;
    if ((t = __atomic_load_n(c->loop->climits, __ATOMIC_ACQUIRE)) != NULL)
        return t;
    if ((t = gh_climits_new(l->clients)) == NULL) {
        GH_LOG(GH_LOG_ERROR, "limits: out of memory for the clients' table; not limiting");
        return NULL;
    }
    if (!__atomic_compare_exchange_n(c->loop->climits, &none, t, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        gh_climits_free(t);
        t = none;
    }
    return t;
}

/* The balancer itself (its health checks): a trusted peer speaking for
 * itself, with no PROXY source or X-Forwarded-For naming someone else. */
static bool is_balancer(const gh_conn *c)
{
    return c->peer_trusted && memcmp(&c->client, &c->peer, sizeof(c->peer)) == 0;
}

static const char *const limit_keys[GH_LIMIT_KINDS] = {
    "connections_per_client", "requests_per_client", "upgrades_per_client",
};

/* Counts a refusal; one log line per limit per 10 s at most. */
static void limit_refused(gh_conn *c, gh_limit_kind kind, const char *what)
{
    gh_loop *loop = c->loop;
    uint64_t now = mono_ms();

    GH_STAT_ADD(loop->stats.client_limited[kind], 1);
    if (loop->limit_logged_ms[kind] != 0 && now - loop->limit_logged_ms[kind] < 10000) {
        loop->limit_unlogged[kind]++;
        return;
    }
    GH_LOG(GH_LOG_WARN, "conn #%llu %s: over limits.%s: %s (%llu more refused over it in "
           "the 10s before were not logged)", (unsigned long long)c->id, gh_conn_client_text(c),
           limit_keys[kind], what, (unsigned long long)loop->limit_unlogged[kind]);
    loop->limit_logged_ms[kind] = now;
    loop->limit_unlogged[kind] = 0;
}

/* limits.connections_per_client, once the real client is known (after the
 * PROXY header, if any). False: c must be closed. */
static bool admit_connection(gh_conn *c)
{
    const gh_limits_conf *l = &cfg_of(c)->limits;
    gh_climits *t;
    gh_climit_key k;
    uint32_t slot;

    if (l->connections == 0 || is_balancer(c) || (t = climits_of(c)) == NULL)
        return true;
    gh_climit_key_of(&c->client.sa, (unsigned)l->ipv6_prefix, &k);
    slot = gh_climits_conn_open(t, &k, l->connections, mono_ms());
    if (slot == 0) {
        limit_refused(c, GH_LIMIT_CONNECTIONS, "connection closed");
        return false;
    }
    if (slot == GH_CLIMIT_UNTRACKED)
        GH_STAT_ADD(c->loop->stats.client_untracked, 1);
    else
        c->climit_slot = slot;
    return true;
}

/* limits.requests_per_client and upgrades_per_client: true when r was
 * answered 429 (with Retry-After). */
static bool over_rate(gh_conn *c, gh_request *r)
{
    const gh_limits_conf *l = &cfg_of(c)->limits;
    gh_limit_kind kind = GH_LIMIT_REQUESTS;
    uint64_t wait = 0, now;
    gh_climits *t;
    gh_climit_key k;
    gh_resp_head h;
    char body[512], ra[40];
    size_t n;
    int rn;

    if ((l->requests.count == 0 && l->upgrades.count == 0) || is_balancer(c) ||
        (t = climits_of(c)) == NULL)
        return false;
    gh_climit_key_of(&c->client.sa, (unsigned)l->ipv6_prefix, &k);
    now = mono_ms();
    wait = gh_climits_take(t, &k, GH_LIMIT_REQUESTS, &l->requests, now);
    if (wait == 0 && r->req->upgrade) {
        kind = GH_LIMIT_UPGRADES;
        wait = gh_climits_take(t, &k, GH_LIMIT_UPGRADES, &l->upgrades, now);
    }
    if (wait == 0)
        return false;
    n = gh_resp_error_body(429, body, sizeof(body));
    rn = snprintf(ra, sizeof(ra), "Retry-After: %llu\r\n",
                  (unsigned long long)((wait + 999) / 1000));
    limit_refused(c, kind, "answered 429");     /* counted before the client can see it */
    gh_req_begin(r, &h, 429);
    gh_resp_add_raw(&h, "Content-Type: text/html; charset=utf-8\r\n", 40);
    gh_resp_add_raw(&h, ra, (size_t)rn);
    gh_req_send(r, &h, body, n);
    return true;
}

static void addr_text(const gh_sockaddr *ss, char *out, size_t cap)
{
    const void *a = NULL;

    if (ss->sa.sa_family == AF_INET) {
        a = &ss->in4.sin_addr;
    } else if (ss->sa.sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = &ss->in6;
        /* show an IPv4-mapped peer as plain IPv4 */
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            if (inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out, (socklen_t)cap) != NULL)
                return;
        }
        a = &s6->sin6_addr;
    }
    if (a == NULL || inet_ntop(ss->sa.sa_family, a, out, (socklen_t)cap) == NULL)
        snprintf(out, cap, "-");
}

char *gh_conn_client_text_to(const gh_conn *c, char *out, size_t cap)
{
    addr_text(&c->client, out, cap);
    return out;
}

const char *gh_conn_client_text(const gh_conn *c)
{
    static _Thread_local char text[GH_CONN_ADDR_SLOTS][GH_CONN_ADDR_TEXT];
    static _Thread_local unsigned next;

    return gh_conn_client_text_to(c, text[next++ % GH_CONN_ADDR_SLOTS], GH_CONN_ADDR_TEXT);
}

static void arm_timer(gh_conn *c, uint64_t ms)
{
    struct timeval tv = gh_units_timeval(ms);

    if (ms == 0) {
        evtimer_del(c->timer);
        return;
    }
    evtimer_add(c->timer, &tv);
}

static const gh_listener_conf *listener_conf(const gh_conn *c)
{
    return &c->site->cfg->listeners[c->lidx];
}

static bool port_is_https(const gh_listener_conf *lc, const struct sockaddr_storage *dst)
{
    uint16_t port;

    if (dst->ss_family == AF_INET)
        port = ntohs(((const struct sockaddr_in *)dst)->sin_port);
    else if (dst->ss_family == AF_INET6)
        port = ntohs(((const struct sockaddr_in6 *)dst)->sin6_port);
    else
        return false;
    for (size_t i = 0; i < lc->nhttps_ports; i++)
        if (lc->https_ports[i] == port)
            return true;
    return false;
}

/* Sets up the bufferevent (plain or TLS) once the connection's cleartext
 * preamble is over. The first `inject` bytes of the connection, already
 * read while looking for a PROXY signature, go back in front of the input.
 * Returns false when it freed c. */
static bool start_transport(gh_conn *c, const uint8_t *inject, size_t inject_len)
{
    gh_loop *loop = c->loop;
    const gh_listener_conf *lc = listener_conf(c);
    const gh_config *cfg = cfg_of(c);
    SSL *ssl = NULL;

    if (!admit_connection(c)) {
        gh_conn_free(c);
        return false;
    }

    if (lc->tls) {
        if (inject_len > 0)
            goto fail;      /* cannot happen: a TLS record never looks like a signature */
        if ((ssl = SSL_new(c->site->tls_ctx[c->lidx])) == NULL)
            goto fail;
        c->bev = bufferevent_openssl_socket_new(loop->base, c->fd, ssl,
                                                BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (c->bev == NULL) {
            SSL_free(ssl);
            goto fail;
        }
        c->state = GH_CONN_TLS;
        arm_timer(c, lc->tls_handshake_timeout_ms);
    } else {
        c->bev = bufferevent_socket_new(loop->base, c->fd, BEV_OPT_CLOSE_ON_FREE);
        if (c->bev == NULL)
            goto fail;
        c->state = GH_CONN_HEAD;
        arm_timer(c, cfg->http.header_timeout_ms);
    }
    c->fd = -1;                 /* the bufferevent owns it now */
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    /* libevent writes at most 16 KiB per wakeup by default: a large file
     * would take a loop iteration per 16 KiB instead of one sendfile per
     * socket-buffer's worth */
    bufferevent_set_max_single_write(c->bev, 1 << 30);
    /* stop reading while this much is waiting: bounds a pipelining client */
    bufferevent_setwatermark(c->bev, EV_READ, 0, cfg->http.max_head + 64 * 1024);
    if (cfg->http.send_timeout_ms > 0) {
        struct timeval wt = gh_units_timeval(cfg->http.send_timeout_ms);
        bufferevent_set_timeouts(c->bev, NULL, &wt);
    }
    if (inject_len > 0) {
        /* a socket bufferevent keeps its input's end frozen (only it adds):
         * thawed for the bytes the PROXY detection took off the socket */
        struct evbuffer *in = bufferevent_get_input(c->bev);
        int added;

        evbuffer_unfreeze(in, 0);
        added = evbuffer_add(in, inject, inject_len);
        evbuffer_freeze(in, 0);
        if (added != 0)
            goto fail;
    }
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (inject_len > 0)
        on_read(c->bev, c);     /* may free c; nothing touches it after */
    return true;
fail:
    GH_LOG(GH_LOG_ERROR, "conn #%llu %s: cannot set up the connection: out of memory",
           (unsigned long long)c->id, gh_conn_client_text(c));
    gh_conn_free(c);
    return false;
}

/* Closes a connection whose PROXY header we will not take: no byte is
 * sent back, one warn line, one counter. */
static void refuse_proxy(gh_conn *c, const char *reason)
{
    char peer[64];

    addr_text(&c->peer, peer, sizeof(peer));
    GH_LOG(GH_LOG_WARN, "conn #%llu %s: refused while reading PROXY header: %s",
           (unsigned long long)c->id, peer, reason);
    gh_stats_proxy_refused(&c->loop->stats, reason);
    gh_conn_free(c);
}

/* The header is whole: adopt its addresses and facts. */
static void accept_proxy(gh_conn *c, const gh_proxy_info *info)
{
    const gh_listener_conf *lc = listener_conf(c);

    c->proxied = true;
    GH_STAT_ADD(c->loop->stats.proxy_accepted, 1);
    if (!info->local && (info->family == AF_INET || info->family == AF_INET6)) {
        memcpy(&c->client, &info->src, info->family == AF_INET ? sizeof(c->client.in4)
                                                                : sizeof(c->client.in6));
        if (port_is_https(lc, &info->dst))
            c->https = true;
    }
    /* a v2 SSL TLV with PP2_CLIENT_SSL: the client spoke TLS to the balancer */
    if (info->ssl_present && (info->ssl_client & 0x01))
        c->https = true;
}

/* The PROXY header is read with MSG_PEEK so that not one byte past it is
 * taken from the socket: what follows belongs to TLS or HTTP. Bytes that
 * are certainly part of the header (an incomplete header is all header)
 * are consumed, so a level-triggered event never spins on them. */
static void on_proxy_read(evutil_socket_t fd, short what, void *arg)
{
    gh_conn *c = arg;
    struct gh_conn_pp *pp = c->pp;
    const gh_listener_conf *lc = listener_conf(c);
    gh_proxy_info info;
    int allow = GH_PROXY_ALLOW_V1 | GH_PROXY_ALLOW_V2;
    ssize_t n;
    size_t total;
    long r;
    int d;

    (void)what;
    if (!pp->sized) {
        struct gh_conn_pp *big = realloc(pp, sizeof(*pp) + PP_MAX);

        if (big == NULL) {
            gh_conn_free(c);
            return;
        }
        c->pp = pp = big;
        pp->sized = true;
    }
    n = recv(fd, pp->buf + pp->have, PP_MAX - pp->have, MSG_PEEK);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        GH_LOG(GH_LOG_DEBUG, "conn #%llu %s: recv while reading PROXY header: %s",
               (unsigned long long)c->id, gh_conn_client_text(c), strerror(errno));
        gh_conn_free(c);
        return;
    }
    if (n == 0) {
        GH_LOG(GH_LOG_DEBUG, "conn #%llu %s: closed while reading PROXY header",
               (unsigned long long)c->id, gh_conn_client_text(c));
        gh_conn_free(c);
        return;
    }
    total = pp->have + (size_t)n;

    d = gh_proxy_detect(pp->buf, total);
    if (d == 0) {
        if (lc->proxy_protocol == GH_PROXY_OPTIONAL) {
            /* plain traffic (e.g. a Classic ELB HTTP health check) */
            event_free(pp->ev);
            c->pp = NULL;
            start_transport(c, pp->buf, pp->have);
            free(pp);
            return;
        }
        refuse_proxy(c, "bad_signature");
        return;
    }
    if (d > 0 && !c->peer_trusted) {
        refuse_proxy(c, "untrusted_peer");
        return;
    }
    if (lc->proxy_protocol == GH_PROXY_V1)
        allow = GH_PROXY_ALLOW_V1;
    else if (lc->proxy_protocol == GH_PROXY_V2)
        allow = GH_PROXY_ALLOW_V2;

    r = d == GH_EAGAIN ? GH_EAGAIN : gh_proxy_parse(pp->buf, total, allow, &info);
    if (r == GH_EAGAIN) {
        if (total >= PP_MAX) {
            refuse_proxy(c, "too_long");
            return;
        }
        /* all of it is header: take it off the socket */
        if (recv(fd, pp->buf + pp->have, (size_t)n, 0) != n) {
            gh_conn_free(c);
            return;
        }
        pp->have = (uint32_t)total;       /* < PP_MAX */
        return;
    }
    if (r < 0) {
        refuse_proxy(c, info.reason != NULL ? info.reason : "malformed");
        return;
    }
    /* take exactly the header's remaining bytes */
    if ((size_t)r > pp->have &&
        recv(fd, pp->buf + pp->have, (size_t)r - pp->have, 0) != (ssize_t)((size_t)r - pp->have)) {
        gh_conn_free(c);
        return;
    }
    event_free(pp->ev);
    pp->ev = NULL;
    /* keep only the header, and parse it again where it stays: the TLVs
     * point into it */
    {
        struct gh_conn_pp *small = realloc(pp, sizeof(*pp) + (size_t)r);

        if (small != NULL)
            c->pp = pp = small;
        if (gh_proxy_parse(pp->buf, (size_t)r, allow, &pp->info) != r) {
            gh_conn_free(c);
            return;
        }
    }
    accept_proxy(c, &pp->info);
    start_transport(c, NULL, 0);
}

/* c->timer's storage follows c (gh_conn_accept): a struct event holds
 * pointers and a struct timeval, aligned to 8 at most on the ABIs we
 * build for. */
_Static_assert(sizeof(gh_conn) % 8 == 0, "the event after a gh_conn is aligned");

/* A zeroed gh_conn from loop's slab, c->timer pointing at its storage
 * (not assigned). NULL when out of memory. */
static gh_conn *conn_block(gh_loop *loop)
{
    gh_conn *c;

    if (loop->conn_slab == NULL &&
        (loop->conn_slab = gh_slab_new(sizeof(*c) + event_get_struct_event_size())) == NULL)
        return NULL;
    if ((c = gh_slab_alloc(loop->conn_slab)) == NULL)
        return NULL;
    c->timer = (struct event *)(c + 1);
    return c;
}

void gh_conn_accept(gh_listener *lst, evutil_socket_t fd,
                    const struct sockaddr *sa, int salen)
{
    gh_loop *loop = lst->loop;
    const gh_listener_conf *lc = &loop->site->cfg->listeners[lst->index];
    gh_conn *c = NULL;
    int one = 1;

    /* c->timer lives in the same block, right after c, and the block comes
     * from the loop's slab, packed with other connections' and away from
     * the buffers of their handshakes (base/slab.h). sizeof(*c) keeps the
     * event aligned. */
    if ((c = conn_block(loop)) == NULL)
        goto fail;
    c->loop = loop;
    c->lst = lst;
    c->lidx = (uint32_t)lst->index;    /* a config has far fewer listeners */
    c->own_place = lst->own_limit;     /* as the daemon counted it (same thread) */
    c->fd = fd;
    /* one count for the process (worker 0's): an id names one connection
     * whatever worker has it (moved ones keep theirs; topic state keys
     * members by it) */
    c->id = __atomic_add_fetch(&(loop->peers != NULL ? loop->peers[0] : loop)->next_conn_id, 1,
                               __ATOMIC_RELAXED);
    c->site = gh_site_ref(loop->site);
    if (salen > 0 && (size_t)salen <= sizeof(c->peer))
        memcpy(&c->peer, sa, (size_t)salen);
    c->client = c->peer;
    c->https = lc->tls;
    c->peer_trusted = lc->trusted_any ||
                      gh_cidr_list_match(lc->trusted, lc->ntrusted, &c->peer.sa);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (evtimer_assign(c->timer, loop->base, on_timer, c) != 0)
        goto fail;
    gh_loop_conn_added(loop, c);
    GH_STAT_ADD(loop->stats.accepted, 1);

    if (lc->proxy_protocol == GH_PROXY_OFF) {
        start_transport(c, NULL, 0);
        return;
    }
    if (!c->peer_trusted && lc->proxy_protocol != GH_PROXY_OPTIONAL) {
        refuse_proxy(c, "untrusted_peer");
        return;
    }
    c->state = GH_CONN_PROXY;
    /* its buffer comes with the first bytes (on_proxy_read) */
    if ((c->pp = calloc(1, sizeof(*c->pp))) == NULL) {
        gh_conn_free(c);
        return;
    }
    c->pp->ev = event_new(loop->base, fd, EV_READ | EV_PERSIST, on_proxy_read, c);
    if (c->pp->ev == NULL || event_add(c->pp->ev, NULL) != 0) {
        gh_conn_free(c);
        return;
    }
    arm_timer(c, lc->proxy_timeout_ms);
    return;

fail:
    GH_LOG(GH_LOG_ERROR, "listener %s: cannot set up a connection: out of memory", lst->name);
    if (c != NULL) {
        gh_site_unref(c->site);
        gh_slab_free(loop->conn_slab, c);
    }
    evutil_closesocket(fd);
}

void gh_conn_free(gh_conn *c)
{
    if (c == NULL)
        return;
    gh_loop_conn_removed(c->loop, c);
    trip_free(c->trip);
    c->trip = NULL;
    if (c->climit_slot != 0 && *c->loop->climits != NULL)
        gh_climits_conn_close(*c->loop->climits, c->climit_slot);
    if (c->handoff != NULL)
        c->handoff->release(c);
    event_del(c->timer);            /* its storage goes with c */
    if (c->pp != NULL && c->pp->ev != NULL)
        event_free(c->pp->ev);
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    else if (c->fd >= 0)
        evutil_closesocket(c->fd);
    free(c->body);
    free(c->pp);
    gh_site_unref(c->site);
    gh_slab_free(c->loop->conn_slab, c);
}

/* Close once everything queued has been written. */
static void close_after_flush(gh_conn *c)
{
    c->state = GH_CONN_CLOSING;
    evtimer_del(c->timer);
    bufferevent_disable(c->bev, EV_READ);
}

/* Everything is written: shut our side and drop input for a while. */
static void linger(gh_conn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    struct evbuffer *in = bufferevent_get_input(c->bev);

    /* done with: the client sees our FIN and may connect again at once,
     * maybe to another worker, before this one reads its close: it no
     * longer counts against connections_per_client, from before the FIN
     * goes (released after it, a worker descheduled in between left the
     * count up while the client was already connecting again) */
    if (c->climit_slot != 0 && *c->loop->climits != NULL)
        gh_climits_conn_close(*c->loop->climits, c->climit_slot);
    c->climit_slot = 0;
    if (fd < 0 || shutdown(fd, SHUT_WR) != 0) {
        gh_conn_free(c);
        return;
    }
    c->state = GH_CONN_LINGER;
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_enable(c->bev, EV_READ);
    arm_timer(c, LINGER_MS);
}

/* Called when the output may have emptied in CLOSING state. */
static void maybe_linger(gh_conn *c)
{
    if (c->state == GH_CONN_CLOSING &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        linger(c);
}

void gh_conn_drain(gh_conn *c)
{
    if (c->state == GH_CONN_MOVING)
        return;             /* the worker it goes to answers it, or refuses */
    if (c->state == GH_CONN_WS || c->state == GH_CONN_UPSTREAM) {
        c->handoff->drain(c);
        return;
    }
    if (c->state == GH_CONN_HEAD && !c->in_request) {
        gh_conn_free(c);
        return;
    }
    c->close_after = true;
}

/* ---- moving to another worker (gh_conn_move) ------------------------------
 *
 * Three steps, each on the thread that owns what it touches:
 *
 *   gh_conn_move()  worker X, inside the action: checks that c can move,
 *                   counts the move in to->moves_in (a stopping target
 *                   refuses it then), marks c GH_CONN_MOVING. read_head()
 *                   leaves the head in the input and stops the bufferevent.
 *   move_out()      worker X, from c->timer (outside every bufferevent
 *                   callback, where libevent's TLS code reads the SSL once
 *                   more after ours returns): takes the input, and behind
 *                   TLS what OpenSSL decrypted past it, out of the
 *                   bufferevent, takes the socket back from it (setfd -1;
 *                   behind TLS the SSL gets a BIO with no fd, which the
 *                   destructor will not close) and frees it.
 *                   A plain socket is sent at once. Behind TLS the
 *                   bufferevent's destructor, run later by libevent, still
 *                   reads the SSL (its BIO, SSL_free: a reference of ours
 *                   keeps it alive); the connection goes only once that
 *                   has run: a one-byte reference put in the bufferevent's
 *                   input calls trip_marker() when the evbuffer is freed,
 *                   which libevent does after the destructor.
 *   adopt()         worker `to`, from its mailbox: joins its registry,
 *                   makes the bufferevent on its own base (a TLS one in
 *                   BUFFEREVENT_SSL_OPEN state around the same SSL), puts
 *                   the bytes back in front of the input and reads them as
 *                   a new request.
 *
 * The connection keeps its places in the limits throughout (the registry
 * hooks that give them back are not called), and its per-client slot. */

typedef struct gh_conn_trip {
    gh_conn         *c;         /* NULL once c was freed before trip_marker() ran */
    gh_loop         *to;
    struct evbuffer *in;        /* the request head and what followed it */
    SSL             *ssl;       /* behind TLS: a reference of ours */
    bool             counted;   /* counted in to->moves_in */
    bool             marked;    /* waiting for trip_marker(), which frees it */
} gh_conn_trip;

static const char trip_byte = 0;

/* Frees t's contents; t itself unless its marker is still to come. */
static void trip_free(gh_conn_trip *t)
{
    if (t == NULL)
        return;
    if (t->counted)
        __atomic_sub_fetch(&t->to->moves_in, 1, __ATOMIC_SEQ_CST);
    t->counted = false;
    if (t->in != NULL)
        evbuffer_free(t->in);
    t->in = NULL;
    if (t->ssl != NULL)
        SSL_free(t->ssl);
    t->ssl = NULL;
    t->c = NULL;
    if (!t->marked)
        free(t);
}

int gh_conn_move(gh_request *r, gh_loop *to)
{
    gh_conn *c = r->c;
    gh_conn_trip *t;

    if (to == c->loop || c->state != GH_CONN_HEAD || c->body != NULL || c->trip != NULL ||
        c->bev == NULL || evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
        return GH_EINVAL;
    if ((t = calloc(1, sizeof(*t))) == NULL || (t->in = evbuffer_new()) == NULL) {
        free(t);
        return GH_ENOMEM;
    }
    t->to = to;
    t->c = c;
    /* counted first, then the target's flag read (both seq_cst): see
     * stop_accepting() in server.c, which does the two the other way */
    __atomic_add_fetch(&to->moves_in, 1, __ATOMIC_SEQ_CST);
    t->counted = true;
    if (__atomic_load_n(&to->closed_to_moves, __ATOMIC_SEQ_CST)) {
        trip_free(t);
        return GH_EAGAIN;
    }
    c->trip = t;
    c->state = GH_CONN_MOVING;
    return GH_OK;
}

static void adopt(gh_loop *loop, void *arg);

/* Hands c over to its trip's target: it leaves this worker's registry
 * (keeping its places) and the target's mailbox takes it. Its block is
 * this loop's slab's (and its timer in it): it travels as a malloc'd copy,
 * which the target puts in a block of its own slab (adopt()). */
static void send_off(gh_conn *c)
{
    gh_loop *from = c->loop;
    gh_conn_trip *t = c->trip;
    gh_conn *moving = malloc(sizeof(*c));

    if (moving == NULL) {
        GH_LOG(GH_LOG_ERROR, "conn #%llu %s: cannot move to worker %u: out of memory; "
               "closing", (unsigned long long)c->id, gh_conn_client_text(c), t->to->id);
        gh_conn_free(c);
        return;
    }
    event_del(c->timer);
    gh_loop_conn_left(from, c);
    memcpy(moving, c, sizeof(*c));
    moving->timer = NULL;
    t->c = moving;
    if (gh_loop_post(t->to, adopt, t) != GH_OK) {
        GH_LOG(GH_LOG_ERROR, "conn #%llu %s: cannot reach worker %u: out of memory; closing",
               (unsigned long long)c->id, gh_conn_client_text(c), t->to->id);
        t->c = c;
        free(moving);
        gh_loop_conn_joined(from, c);
        gh_conn_free(c);
        return;
    }
    gh_slab_free(from->conn_slab, c);
}

/* The TLS bufferevent of a moving connection has been destroyed: the SSL
 * is ours alone now (an evbuffer reference's cleanup, on the old worker). */
static void trip_marker(const void *data, size_t len, void *arg)
{
    gh_conn_trip *t = arg;

    (void)data;
    (void)len;
    t->marked = false;
    if (t->c == NULL) {         /* freed meanwhile (the process is exiting) */
        free(t);
        return;
    }
    send_off(t->c);
}

static void move_out(gh_conn *c)
{
    gh_conn_trip *t = c->trip;
    struct bufferevent *bev = c->bev;
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    evutil_socket_t fd = bufferevent_getfd(bev);

    if (evbuffer_add_buffer(t->in, bufferevent_get_input(bev)) != 0)
        goto fail;
    if (ssl != NULL) {
        /* records OpenSSL decrypted beyond what the bufferevent took (it
         * stops at its read watermark) would be stranded in it: the
         * target's bufferevent reads the SSL only when the socket is
         * readable */
        char buf[4096];
        int n;

        while (SSL_pending(ssl) > 0) {
            if ((n = SSL_read(ssl, buf, (int)sizeof(buf))) <= 0 ||
                evbuffer_add(t->in, buf, (size_t)n) != 0)
                goto fail;
        }
        if (SSL_up_ref(ssl) != 1)
            goto fail;
        t->ssl = ssl;
    }
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    if (fd < 0)
        goto fail;
    if (ssl != NULL) {
        /* not bufferevent_setfd(): on a TLS bufferevent made ACCEPTING,
         * libevent 2.1 answers it with SSL_clear() and a new handshake.
         * A BIO with no fd instead, which the destructor reads and does
         * not close (the bufferevent's events are off already) */
        BIO *none = BIO_new_socket(-1, BIO_NOCLOSE);

        if (none == NULL)
            goto fail;
        SSL_set_bio(ssl, none, none);   /* the old BIO never closed the fd */
    } else if (bufferevent_setfd(bev, -1) != 0) {
        goto fail;
    }
    c->fd = fd;                 /* ours again: the bufferevent no longer closes it */
    if (ssl != NULL)
        t->marked = evbuffer_add_reference(bufferevent_get_input(bev), &trip_byte, 1,
                                           trip_marker, t) == 0;
    bufferevent_free(bev);
    c->bev = NULL;
    if (ssl != NULL && !t->marked)
        goto fail;              /* the SSL cannot be handed on safely: close */
    GH_LOG(GH_LOG_DEBUG, "conn #%llu %s: moving to worker %u", (unsigned long long)c->id,
           gh_conn_client_text(c), t->to->id);
    if (ssl == NULL)
        send_off(c);
    return;
fail:
    GH_LOG(GH_LOG_ERROR, "conn #%llu %s: cannot move to worker %u: out of memory; closing",
           (unsigned long long)c->id, gh_conn_client_text(c), t->to->id);
    gh_conn_free(c);
}

/* The listener of this loop on the same address as l (another worker's):
 * the one it has open, else a retired one. */
static gh_listener *same_listener(gh_loop *loop, const gh_listener *l)
{
    gh_listener *found = NULL;

    for (gh_listener *m = loop->listeners; m != NULL; m = m->next) {
        if (strcmp(m->name, l->name) != 0)
            continue;
        if (!m->retired)
            return m;
        found = m;
    }
    return found;
}

static void adopt(gh_loop *loop, void *arg)
{
    gh_conn_trip *t = arg;
    gh_conn *c = t->c, *home;
    const gh_config *cfg = cfg_of(c);
    gh_listener *l = same_listener(loop, c->lst);
    struct evbuffer *in;
    int added;

    if (l == NULL || (home = conn_block(loop)) == NULL) {
        /* cannot happen: every worker has a listener of every address its
         * peers have (the reload reaches it first, see gh_plugins_home()).
         * Closed, its places given back through the worker it came from's
         * listener, whose places are the same. */
        GH_LOG(GH_LOG_ERROR, "conn #%llu %s: worker %u has %s; closing",
               (unsigned long long)c->id, gh_conn_client_text(c), loop->id,
               l == NULL ? "no listener of its address" : "no memory for it");
        if (c->climit_slot != 0 && *loop->climits != NULL)
            gh_climits_conn_close(*loop->climits, c->climit_slot);
        evutil_closesocket(c->fd);
        trip_free(t);
        if (loop->on_conn_removed != NULL)
            loop->on_conn_removed(loop, c->lst, c->own_place);
        gh_site_unref(c->site);
        free(c->pp);
        free(c);                /* the copy that travelled */
        return;
    }
    /* in a block of this loop's slab, its timer in it */
    memcpy(home, c, sizeof(*c));
    free(c);
    c = t->c = home;
    c->timer = (struct event *)(c + 1);
    c->loop = loop;
    c->lst = l;
    gh_loop_conn_joined(loop, c);
    __atomic_sub_fetch(&loop->moves_in, 1, __ATOMIC_SEQ_CST);
    t->counted = false;
    c->state = GH_CONN_HEAD;
    c->in_request = false;
    c->moved_in = true;
    if (evtimer_assign(c->timer, loop->base, on_timer, c) != 0)
        goto fail;
    if (t->ssl != NULL) {
        c->bev = bufferevent_openssl_socket_new(loop->base, c->fd, t->ssl,
                                                BUFFEREVENT_SSL_OPEN, BEV_OPT_CLOSE_ON_FREE);
        if (c->bev != NULL)
            t->ssl = NULL;      /* the bufferevent's */
    } else {
        c->bev = bufferevent_socket_new(loop->base, c->fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (c->bev == NULL)
        goto fail;
    c->fd = -1;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_set_max_single_write(c->bev, 1 << 30);
    bufferevent_setwatermark(c->bev, EV_READ, 0, cfg->http.max_head + 64 * 1024);
    if (cfg->http.send_timeout_ms > 0) {
        struct timeval wt = gh_units_timeval(cfg->http.send_timeout_ms);
        bufferevent_set_timeouts(c->bev, NULL, &wt);
    }
    /* a socket bufferevent keeps its input's end frozen: only it adds */
    in = bufferevent_get_input(c->bev);
    evbuffer_unfreeze(in, 0);
    added = evbuffer_add_buffer(in, t->in);
    if (bufferevent_openssl_get_ssl(c->bev) == NULL)
        evbuffer_freeze(in, 0);
    if (added != 0)
        goto fail;
    c->trip = NULL;
    trip_free(t);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    GH_LOG(GH_LOG_DEBUG, "conn #%llu %s: moved to worker %u", (unsigned long long)c->id,
           gh_conn_client_text(c), loop->id);
    on_read(c->bev, c);         /* may free c */
    return;
fail:
    GH_LOG(GH_LOG_ERROR, "conn #%llu %s: cannot take over on worker %u: out of memory; "
           "closing", (unsigned long long)c->id, gh_conn_client_text(c), loop->id);
    gh_conn_free(c);            /* frees the trip, closes c->fd */
}

/* ---- responses ------------------------------------------------------- */

const gh_http1_field *gh_req_field(const gh_request *r, const char *name)
{
    return r->head != NULL ? gh_http1_find(r->head, name) : NULL;
}

void gh_req_begin(gh_request *r, gh_resp_head *h, int status)
{
    gh_conn *c = r->c;

    r->status = status;
    gh_resp_start(h, status);
    gh_resp_add_str(h, "Date", gh_loop_date(c->loop));
    gh_resp_add_raw(h, "Server: gatehouse\r\n", 19);
    if (c->close_after || c->loop->stopping)
        gh_resp_add_raw(h, "Connection: close\r\n", 19);
    else if (r->head != NULL && r->head->minor == 0)
        gh_resp_add_raw(h, "Connection: keep-alive\r\n", 24);
}

static void send_head(gh_request *r, gh_resp_head *h, uint64_t len)
{
    struct evbuffer *out = bufferevent_get_output(r->c->bev);

    if (r->status != 304 && r->status != 204 && r->status >= 200)
        gh_resp_add_u64(h, "Content-Length", len);
    gh_resp_end(h);
    if (h->overflow) {
        /* a header value did not fit or held CR/LF: answer 500 instead */
        static const char oops[] = "HTTP/1.1 500 Internal Server Error\r\n"
                                   "Content-Length: 0\r\nConnection: close\r\n\r\n";
        evbuffer_add(out, oops, sizeof(oops) - 1);
        r->status = 500;
        r->c->close_after = true;
        return;
    }
    evbuffer_add(out, h->buf, h->len);
}

/* Writes head and body straight to the socket when nothing is queued
 * before them: a small response then leaves in one writev, with no trip
 * through the event loop. Returns how many bytes went out (head first). */
static size_t write_now(gh_request *r, const gh_resp_head *h, const void *body, size_t len)
{
    gh_conn *c = r->c;
    struct iovec iov[2];
    ssize_t n;

    if (r->queue_only || c->lst == NULL || listener_conf(c)->tls ||
        evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
        return 0;
    iov[0].iov_base = (void *)h->buf;
    iov[0].iov_len = h->len;
    iov[1].iov_base = (void *)body;
    iov[1].iov_len = len;
    do
        n = writev(bufferevent_getfd(c->bev), iov, len > 0 ? 2 : 1);
    while (n < 0 && errno == EINTR);
    return n > 0 ? (size_t)n : 0;   /* errors surface through the bufferevent */
}

static void release_ref(const void *data, size_t len, void *arg)
{
    gh_request_release *rel = arg;

    (void)data;
    (void)len;
    rel->release(rel->arg);
    free(rel);
}

static void queue(gh_request *r, const gh_resp_head *h, const void *body, size_t len,
                  void (*release)(void *arg), void *arg)
{
    struct evbuffer *out = bufferevent_get_output(r->c->bev);
    size_t done = write_now(r, h, body, len);
    const uint8_t *b = body;

    if (done < h->len) {
        evbuffer_add(out, h->buf + done, h->len - done);
        done = 0;
    } else {
        done -= h->len;
    }
    b += done;
    len -= done;
    if (len == 0 || release == NULL) {
        if (len > 0)
            evbuffer_add(out, b, len);
        if (release != NULL)
            release(arg);
        return;
    }
    gh_request_release *rel = malloc(sizeof(*rel));
    if (rel == NULL) {
        evbuffer_add(out, b, len);      /* copy rather than fail */
        release(arg);
        return;
    }
    rel->release = release;
    rel->arg = arg;
    if (evbuffer_add_reference(out, b, len, release_ref, rel) != 0) {
        evbuffer_add(out, b, len);
        release(arg);
        free(rel);
    }
}

void gh_req_send_ref(gh_request *r, gh_resp_head *h, const void *body, size_t len,
                     void (*release)(void *arg), void *arg)
{
    if (r->status != 304 && r->status != 204 && r->status >= 200)
        gh_resp_add_u64(h, "Content-Length", len);
    gh_resp_end(h);
    if (h->overflow) {
        static const char oops[] = "HTTP/1.1 500 Internal Server Error\r\n"
                                   "Content-Length: 0\r\nConnection: close\r\n\r\n";
        evbuffer_add(bufferevent_get_output(r->c->bev), oops, sizeof(oops) - 1);
        r->status = 500;
        r->c->close_after = true;
        if (release != NULL)
            release(arg);
        return;
    }
    if (r->is_head || r->status == 304)
        len = 0;
    r->body_bytes = len;
    queue(r, h, body, len, release, arg);
}

void gh_req_send(gh_request *r, gh_resp_head *h, const void *body, size_t len)
{
    gh_req_send_ref(r, h, body, len, NULL, NULL);
}

void gh_req_send_file(gh_request *r, gh_resp_head *h, int fd, uint64_t off,
                      uint64_t len)
{
    struct evbuffer *out = bufferevent_get_output(r->c->bev);

    send_head(r, h, len);
    if (r->is_head || len == 0 || h->overflow) {
        close(fd);
        return;
    }
    if (evbuffer_add_file(out, fd, (ev_off_t)off, (ev_off_t)len) != 0) {
        /* evbuffer_add_file closes fd on failure; the head already went out */
        GH_LOG(GH_LOG_ERROR, "conn #%llu %s: cannot queue a file of %llu bytes",
               (unsigned long long)r->c->id, gh_conn_client_text(r->c), (unsigned long long)len);
        r->c->close_after = true;
        return;
    }
    r->body_bytes = len;
}

void gh_req_error(gh_request *r, int status)
{
    gh_resp_head h;
    char body[512];
    size_t n = gh_resp_error_body(status, body, sizeof(body));

    if (status == 400 || status == 408 || status == 413 || status == 431 || status >= 500)
        r->c->close_after = true;
    gh_req_begin(r, &h, status);
    gh_resp_add_raw(&h, "Content-Type: text/html; charset=utf-8\r\n", 40);
    if (status == 405)
        gh_resp_add_raw(&h, "Allow: GET, HEAD\r\n", 18);
    gh_req_send(r, &h, body, n);
}

static void access_log(gh_request *r)
{
    gh_loop *loop = r->c->loop;
    gh_access_entry e = {0};
    const gh_http1_field *f;
    char line[4096];
    char proto[9] = "HTTP/1.1";
    size_t n;

    if (r->status >= 100 && r->status < 600)
        GH_STAT_ADD(loop->stats.http_responses[r->status / 100], 1);
    if (loop->access_fd < 0)
        return;
    e.client = gh_conn_client_text(r->c);
    (void)gh_loop_date(loop);       /* the cache is fresh only where a Date went out */
    e.when = loop->date_sec;
    e.status = r->status;
    e.bytes = r->body_bytes;
    if (r->head != NULL) {
        e.method = r->head->method;
        e.method_len = r->head->method_len;
        e.target = r->head->target;
        e.target_len = r->head->target_len;
        proto[7] = (char)('0' + r->head->minor);
        e.protocol = proto;
        if ((f = gh_http1_find(r->head, "referer")) != NULL) {
            e.referer = f->value;
            e.referer_len = f->value_len;
        }
        if ((f = gh_http1_find(r->head, "user-agent")) != NULL) {
            e.agent = f->value;
            e.agent_len = f->value_len;
        }
    }
    n = gh_accesslog_format(&e, line, sizeof(line));
    if (r->log_extra != NULL && n > 0) {
        size_t xl = strlen(r->log_extra);

        if (n + 1 + xl < sizeof(line)) {     /* " extra\n" in place of "\n" */
            line[n - 1] = ' ';
            memcpy(line + n, r->log_extra, xl);
            n += xl;
            line[n++] = '\n';
            line[n] = '\0';
        }
    }
    gh_loop_access_write(loop, line, n);
}

/* ---- dispatch -------------------------------------------------------- */

static bool method_is(const gh_http1_head *h, const char *m)
{
    size_t n = strlen(m);
    return h->method_len == n && memcmp(h->method, m, n) == 0;
}

/* The last element of a comma-separated header value, OWS trimmed. */
static void last_element(const gh_http1_field *f, const char **v, size_t *len)
{
    const char *p = f->value, *end = f->value + f->value_len, *comma;

    comma = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == ',')
            comma = q;
    if (comma != NULL)
        p = comma + 1;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *v = p;
    *len = (size_t)(end - p);
}

/* X-Forwarded-Proto and X-Forwarded-For, believed only from a trusted
 * peer that did not send a PROXY header (an ALB): behind a PROXY-speaking
 * balancer every header was written by the client. The rightmost
 * X-Forwarded-For element is the one our peer appended. */
static void apply_forwarded(gh_conn *c, const gh_http1_head *head, gh_request *r)
{
    const gh_http1_field *f;
    const char *v;
    size_t len;
    char ip[INET6_ADDRSTRLEN + 1];

    if (!c->peer_trusted || c->proxied)
        return;
    if ((f = gh_http1_find(head, "x-forwarded-proto")) != NULL) {
        last_element(f, &v, &len);
        if (len == 5 && strncasecmp(v, "https", 5) == 0)
            r->https = true;
    }
    c->client = c->peer;
    if ((f = gh_http1_find(head, "x-forwarded-for")) != NULL) {
        last_element(f, &v, &len);
        if (len > 0 && len < sizeof(ip)) {
            struct sockaddr_in *s4 = &c->client.in4;
            struct sockaddr_in6 *s6 = &c->client.in6;
            memcpy(ip, v, len);
            ip[len] = '\0';
            memset(&c->client, 0, sizeof(c->client));
            if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1)
                s4->sin_family = AF_INET;
            else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1)
                s6->sin6_family = AF_INET6;
            else
                c->client = c->peer;
        }
    }
}


/* Answers one complete request (head and, if any, body already consumed). */
static void dispatch(gh_conn *c, const gh_http1_head *head, const gh_http1_req *req,
                     const char *raw, size_t raw_len)
{
    gh_request r = {
        .c = c, .head = head, .req = req, .raw = raw, .raw_len = raw_len,
        .is_head = method_is(head, "HEAD"),
        .is_get = method_is(head, "GET"),
    };
    char path[PATH_MAX_BYTES];
    const gh_route_conf *route;
    long plen;
    size_t hlen = 0;

    if (!req->keep_alive)
        c->close_after = true;
    r.https = c->https;
    apply_forwarded(c, head, &r);
    if (c->moved_in)
        c->moved_in = false;    /* the worker it came from counted it */
    else if (over_rate(c, &r))
        goto out;

    if (req->path_len == 1 && req->path[0] == '*') {
        gh_req_error(&r, 404);
        goto out;
    }
    plen = gh_uri_normalize_path(req->path, req->path_len, path, sizeof(path));
    if (plen < 0) {
        gh_req_error(&r, plen == GH_E2BIG ? 414 : 400);
        goto out;
    }
    r.path = path;
    r.path_len = (size_t)plen;
    if (req->host != NULL)
        hlen = gh_route_host_part(req->host, req->host_len);
    route = gh_route_find(cfg_of(c), req->host, hlen, path,
                          r.https ? GH_SCHEME_HTTPS : GH_SCHEME_HTTP);
    if (route == NULL) {
        gh_req_error(&r, 404);
        goto out;
    }
    if (route->has_allow && !gh_cidr_list_match(route->allow, route->nallow, &c->client.sa)) {
        GH_STAT_ADD(c->loop->stats.route_denied, 1);
        gh_req_error(&r, 403);
        goto out;
    }
    if ((size_t)route->action < c->loop->nactions && c->loop->actions[route->action] != NULL)
        c->loop->actions[route->action](&r, route);
    else
        gh_req_error(&r, 501);
out:
    if (c->state != GH_CONN_UPSTREAM && c->state != GH_CONN_MOVING)
        access_log(&r);     /* else gh_conn_resume(), or the worker it moves to */
}

/* Whether the route for this head streams the request body itself (a
 * proxy), instead of conn.c discarding it before the answer. */
static bool route_takes_body(gh_conn *c, const gh_http1_head *head, const gh_http1_req *req)
{
    char path[PATH_MAX_BYTES];
    long plen;
    size_t hlen = 0;
    const gh_route_conf *route;
    gh_request r = { .c = c, .https = c->https };

    if (req->path_len == 1 && req->path[0] == '*')
        return false;
    if ((plen = gh_uri_normalize_path(req->path, req->path_len, path, sizeof(path))) < 0)
        return false;
    if (req->host != NULL)
        hlen = gh_route_host_part(req->host, req->host_len);
    apply_forwarded(c, head, &r);      /* the scheme, as dispatch() will see it */
    route = gh_route_find(cfg_of(c), req->host, hlen, path,
                          r.https ? GH_SCHEME_HTTPS : GH_SCHEME_HTTP);
    return route != NULL && route->action == GH_ACTION_PROXY;
}

/* Answers a request we could not parse, then closes. */
static void refuse(gh_conn *c, int status)
{
    gh_request r = { .c = c };

    c->close_after = true;
    gh_req_error(&r, status);
    access_log(&r);
    close_after_flush(c);
}

/* After a response: flush it before looking at the next request. */
static void finish_request(gh_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    c->in_request = false;
    if (c->close_after) {
        close_after_flush(c);
        return;
    }
    if (evbuffer_get_length(out) > 0) {
        c->state = GH_CONN_FLUSH;
        evtimer_del(c->timer);
        return;
    }
    c->state = GH_CONN_HEAD;
    arm_timer(c, cfg_of(c)->http.keepalive_timeout_ms);
}

/* Parses the pending head kept while its body was discarded. */
static void dispatch_pending(gh_conn *c)
{
    struct gh_conn_body *b = c->body;
    gh_http1_head head;
    gh_http1_req req;
    long n;

    n = gh_http1_parse_head(b->head, b->head_len, b->head_len + 1, &head);
    if (n > 0 && gh_http1_analyse(&head, &req) == 0)
        dispatch(c, &head, &req, b->head, b->head_len);
    else
        refuse(c, 400);     /* cannot happen: it parsed before */
    free(c->body);          /* dispatch() is done with the head's bytes */
    c->body = NULL;
}

/* Returns true when it consumed something and the loop should go on. */
static bool read_body(gh_conn *c, struct evbuffer *in)
{
    size_t len = evbuffer_get_length(in);
    uint64_t max_body = cfg_of(c)->http.max_body;

    if (len == 0)
        return false;
    if (c->body->chunked) {
        size_t want = len < 65536 ? len : 65536;
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)want);
        long n = gh_http1_chunked_feed(&c->body->ck, p, want);
        if (n < 0) {
            refuse(c, 400);
            return false;
        }
        evbuffer_drain(in, (size_t)n);
        if (c->body->ck.body_bytes > max_body) {
            refuse(c, 413);
            return false;
        }
        if (!c->body->ck.done)
            return n > 0;
    } else {
        size_t n = len < c->body->left ? len : (size_t)c->body->left;
        evbuffer_drain(in, n);
        c->body->left -= n;
        if (c->body->left > 0)
            return false;
    }
    dispatch_pending(c);
    if (c->state != GH_CONN_CLOSING)
        finish_request(c);
    return true;
}

/* Returns true when a request was taken and the loop should go on. */
static bool read_head(gh_conn *c, struct evbuffer *in)
{
    const gh_config *cfg = cfg_of(c);
    size_t len = evbuffer_get_length(in);
    size_t want;
    gh_http1_head head;
    gh_http1_req req;
    const char *data;
    long n;

    if (len == 0)
        return false;
    if (!c->in_request) {
        c->in_request = true;
        arm_timer(c, cfg->http.header_timeout_ms);
    }
    want = len < cfg->http.max_head ? len : (size_t)cfg->http.max_head;
    data = (const char *)evbuffer_pullup(in, (ev_ssize_t)want);
    if (data == NULL) {
        refuse(c, 500);
        return false;
    }
    n = gh_http1_parse_head(data, want, (size_t)cfg->http.max_head, &head);
    if (n == GH_EAGAIN)
        return false;
    if (n == GH_E2BIG) {
        refuse(c, 431);
        return false;
    }
    if (n < 0 || gh_http1_analyse(&head, &req) != 0) {
        refuse(c, 400);
        return false;
    }

    if (req.content_length > 0 && (uint64_t)req.content_length > cfg->http.max_body) {
        gh_request r = { .c = c, .head = &head, .req = &req };
        c->close_after = true;
        gh_req_error(&r, 413);
        access_log(&r);
        close_after_flush(c);
        return false;
    }
    if ((req.content_length > 0 || req.chunked) && !route_takes_body(c, &head, &req)) {
        /* keep the head while the body goes by, then answer */
        struct gh_conn_body *b = malloc(sizeof(*b) + (size_t)n);
        if (b == NULL) {
            refuse(c, 500);
            return false;
        }
        memcpy(b->head, data, (size_t)n);
        b->head_len = (size_t)n;
        b->chunked = req.chunked;
        b->left = req.chunked ? 0 : (uint64_t)req.content_length;
        if (req.chunked)
            gh_http1_chunked_init(&b->ck);
        c->body = b;
        if (req.expect_continue)
            evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
        evbuffer_drain(in, (size_t)n);
        c->state = GH_CONN_BODY;
        return true;
    }

    dispatch(c, &head, &req, data, (size_t)n);
    if (c->state == GH_CONN_MOVING) {
        /* the head stays in the input, for the worker it goes to; the
         * move itself runs from the connection's timer, outside this
         * bufferevent's callback (see move_out()) */
        evtimer_del(c->timer);
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        event_active(c->timer, EV_TIMEOUT, 1);
        return false;
    }
    evbuffer_drain(in, (size_t)n);
    if (c->state == GH_CONN_UPSTREAM) {
        evtimer_del(c->timer);
        c->handoff->start(c);       /* may give c back at once (gh_conn_resume) */
        return false;
    }
    if (req.content_length > 0 || req.chunked) {
        /* a body route_takes_body() let through that no action took (an
         * error answered at once): it cannot be skipped safely */
        c->close_after = true;
        close_after_flush(c);
        return false;
    }
    if (c->state == GH_CONN_WS) {
        /* the 101 is queued; what follows the head is WebSocket frames */
        evtimer_del(c->timer);
        c->handoff->start(c);
        return false;
    }
    if (c->state != GH_CONN_CLOSING)
        finish_request(c);
    return true;
}

/* Runs the request loop over whatever input is buffered. */
static void process(gh_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    for (;;) {
        switch (c->state) {
        case GH_CONN_HEAD:
            if (!read_head(c, in))
                return;
            break;
        case GH_CONN_BODY:
            if (!read_body(c, in))
                return;
            break;
        case GH_CONN_FLUSH:
        case GH_CONN_CLOSING:
            return;
        case GH_CONN_WS:
        case GH_CONN_UPSTREAM:
        case GH_CONN_PROXY:
        case GH_CONN_TLS:
        case GH_CONN_MOVING:
            return;
        case GH_CONN_LINGER: {
            size_t n = evbuffer_get_length(in);

            /* closed past LINGER_MAX_BYTES: the sum stays far below 4 GiB */
            c->lingered = n > UINT32_MAX - c->lingered ? UINT32_MAX : c->lingered + (uint32_t)n;
            evbuffer_drain(in, n);
            return;
        }
        }
    }
}

void gh_conn_take_back(gh_conn *c)
{
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, cfg_of(c)->http.max_head + 64 * 1024);
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
}

void gh_conn_log(gh_conn *c, const char *head, size_t head_len, int status,
                 uint64_t body_bytes, const char *log_extra)
{
    gh_http1_head h;
    gh_http1_req req;
    gh_request r = { .c = c, .status = status, .body_bytes = body_bytes,
                     .log_extra = log_extra };

    if (head != NULL && gh_http1_parse_head(head, head_len, head_len + 1, &h) > 0 &&
        gh_http1_analyse(&h, &req) == 0) {
        r.head = &h;
        r.req = &req;
    }
    access_log(&r);
}

void gh_conn_resume(gh_conn *c, bool broken)
{
    c->handoff = NULL;
    c->fwd = NULL;
    c->state = GH_CONN_HEAD;
    gh_conn_take_back(c);
    bufferevent_enable(c->bev, EV_READ);    /* EV_WRITE stayed enabled */
    if (broken || c->loop->stopping)
        c->close_after = true;
    finish_request(c);
    if (c->state == GH_CONN_HEAD)
        process(c);
    maybe_linger(c);        /* may free c */
}

/* ---- bufferevent callbacks --------------------------------------------- */

static void on_read(struct bufferevent *bev, void *arg)
{
    gh_conn *c = arg;

    (void)bev;
    process(c);
    if (c->state == GH_CONN_LINGER) {
        if (c->lingered > LINGER_MAX_BYTES)
            gh_conn_free(c);
        return;
    }
    maybe_linger(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    gh_conn *c = arg;

    (void)bev;
    switch (c->state) {
    case GH_CONN_CLOSING:
        linger(c);
        return;
    case GH_CONN_FLUSH:
        c->state = GH_CONN_HEAD;
        if (c->loop->stopping) {
            gh_conn_free(c);
            return;
        }
        arm_timer(c, cfg_of(c)->http.keepalive_timeout_ms);
        process(c);
        maybe_linger(c);
        return;
    default:
        return;
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    gh_conn *c = arg;

    (void)bev;
    if (c->state == GH_CONN_TLS) {
        if (what & BEV_EVENT_CONNECTED) {
            GH_STAT_ADD(c->loop->stats.tls_ok, 1);
            c->state = GH_CONN_HEAD;
            arm_timer(c, cfg_of(c)->http.header_timeout_ms);
            return;
        }
        GH_STAT_ADD(c->loop->stats.tls_failed, 1);
        if (what & BEV_EVENT_ERROR) {
            char ebuf[256];
            unsigned long e = bufferevent_get_openssl_error(c->bev);
            if (e != 0)
                ERR_error_string_n(e, ebuf, sizeof(ebuf));
            else
                snprintf(ebuf, sizeof(ebuf), "%s",
                         evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
            GH_LOG(GH_LOG_INFO, "conn #%llu %s: TLS handshake failed: %s",
                   (unsigned long long)c->id, gh_conn_client_text(c), ebuf);
        }
        gh_conn_free(c);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        GH_LOG(GH_LOG_INFO, "conn #%llu %s: send timeout, closing",
               (unsigned long long)c->id, gh_conn_client_text(c));
        gh_conn_free(c);
        return;
    }
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
        (c->state == GH_CONN_FLUSH || c->state == GH_CONN_CLOSING) &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
        /* the client shut its side after a request: still send the answer */
        close_after_flush(c);
        return;
    }
    if (what & BEV_EVENT_ERROR)
        GH_LOG(GH_LOG_DEBUG, "conn #%llu %s: %s", (unsigned long long)c->id,
               gh_conn_client_text(c), evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    gh_conn_free(c);
}

/* A request head not whole within header_timeout: counted, and logged one
 * line per 10 s at most (a slowloris flood times out thousands at once,
 * and a line each would cost the loop a write each). */
static void header_timeout(gh_conn *c)
{
    gh_loop *loop = c->loop;
    uint64_t now = mono_ms();

    GH_STAT_ADD(loop->stats.header_timeouts, 1);
    if (loop->timeout_logged_ms != 0 && now - loop->timeout_logged_ms < 10000) {
        loop->timeout_unlogged++;
        return;
    }
    GH_LOG(GH_LOG_INFO, "conn #%llu %s: header timeout while reading a request, closing (%llu "
           "more in the 10s before were not logged)", (unsigned long long)c->id,
           gh_conn_client_text(c), (unsigned long long)loop->timeout_unlogged);
    loop->timeout_logged_ms = now;
    loop->timeout_unlogged = 0;
}

/* Connections whose timeout fired are closed for at most TIMEOUT_SLICE_NS
 * in a row; the rest are put off by a millisecond, and the loop polls in
 * between. 10,000 slowloris heads opened together time out together:
 * closing them all in one go held every other client for 50-100 ms. */
#define TIMEOUT_SLICE_NS 2000000
#define TIMEOUT_GAP_NS   3000000

static bool put_off(gh_conn *c)
{
    static const struct timeval later = { 0, 1000 };
    gh_loop *loop = c->loop;
    struct timespec ts;
    uint64_t now;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (now - loop->timeout_slice_ns >= TIMEOUT_GAP_NS) {
        loop->timeout_slice_ns = now;   /* a new run */
        return false;
    }
    if (now - loop->timeout_slice_ns < TIMEOUT_SLICE_NS || evtimer_add(c->timer, &later) != 0)
        return false;
    return true;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    gh_conn *c = arg;

    (void)fd;
    (void)what;
    if (c->state == GH_CONN_MOVING) {
        move_out(c);
        return;
    }
    if (put_off(c))
        return;
    switch (c->state) {
    case GH_CONN_PROXY:
        refuse_proxy(c, "timeout");
        return;
    case GH_CONN_TLS:
        GH_STAT_ADD(c->loop->stats.tls_failed, 1);
        GH_LOG(GH_LOG_INFO, "conn #%llu %s: TLS handshake timeout, closing",
               (unsigned long long)c->id, gh_conn_client_text(c));
        break;
    default:
        if (c->in_request)
            header_timeout(c);
        break;
    }
    gh_conn_free(c);
}
