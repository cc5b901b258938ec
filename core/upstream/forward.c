/* forward.c: the `proxy:` route action (forward.h).
 *
 * A request's head is re-serialised from what gatehouse parsed (never
 * copied through), so an upstream sees exactly the framing gatehouse
 * decided: hop-by-hop headers go (Connection and every header it names,
 * Keep-Alive, TE, Trailer, Upgrade unless a WebSocket is being proxied,
 * Proxy-*), the body's framing is written from the parsed facts, and the
 * forwarding headers are gatehouse's own. Bodies stream both ways with
 * backpressure: past HIGH_WATER bytes queued toward one side, the other
 * side's reading stops until its output falls under LOW_WATER; nothing is
 * ever held whole.
 *
 * The request body is not read from the client before the upstream is
 * connected, so a failed connect can go to the next server with the body
 * still in the client's buffer. A request goes to another server when the
 * connect is refused or times out (up to the number of servers), and once
 * more on a fresh connection when a pooled one turns out closed before
 * answering and no body byte has left. A response cut short by the upstream
 * reaches the client cut short (the connection closes with the framing
 * unfinished), never complete-looking.
 *
 * After a 101 both sides are a tunnel: bytes each way, same watermarks, no
 * timeouts. For a WebSocket the upstream's stream is followed frame by
 * frame (only the lengths are read), so that when the tunnel has been
 * silent for ping_interval gatehouse can send the client a ping between two
 * frames: a balancer's idle timeout then never cuts a tunnel whose app does
 * not ping. The connection leaves the proxy only when the tunnel ends. */
#include "forward.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "err.h"
#include "http1.h"
#include "httpresp.h"
#include "log.h"
#include "netio.h"
#include "pool.h"
#include "proxy.h"
#include "units.h"
#include "wsframe.h"

#define HIGH_WATER     (256 * 1024)
#define LOW_WATER      (64 * 1024)
#define MAX_RESP_HEAD  (64 * 1024)
#define PULL_CHUNK     (64 * 1024)

typedef enum {
    F_CONNECTING = 0,   /* choosing a server or waiting for connect */
    F_WAITING,          /* head sent (body streaming): no response byte yet */
    F_RESPONSE,         /* response head parsed and sent, body streaming */
    F_TUNNEL,           /* after a 101 */
} fwd_state;

struct gh_fwd {
    gh_conn             *c;
    const gh_proxy_conf *pc;
    gh_upstream         *up;
    gh_upserver         *srv;          /* the server of ub, or NULL */
    bool                *tried;        /* per server of up (in f's allocation) */
    struct bufferevent  *ub;           /* to the upstream */
    struct event        *rd;           /* reads a plain ub (see up_read_start) */
    bool                 rd_on;        /* rd is added */
    bool                 rd_timed;     /* rd_tv applies */
    bool                 rd_small;     /* the last read was under READ_SMALL */
    struct timeval       rd_tv;        /* read_timeout while rd is added */
    fwd_state            state;
    bool                 reused;       /* ub came from the pool */
    bool                 early;        /* connect_plain() queued and wrote the head */
    bool                 fresh_only;   /* the stale-connection retry: no pool */
    uint64_t             attempts;
    uint64_t             sent_ms;      /* when the head went to the current server */
    uint64_t             upstream_ms;  /* request sent to response head (with timed) */
    bool                 timed;
    /* the request */
    char                *head;         /* the client's head as received (access log; in f's allocation) */
    size_t               head_len;
    char                *out_head;     /* the head sent upstream (kept for retries) */
    size_t               out_len;
    bool                 is_head;      /* HEAD */
    bool                 http10;       /* the client spoke HTTP/1.0 */
    bool                 client_plain; /* the client socket is plain TCP (no TLS) */
    struct evbuffer     *tx;           /* bytes on their way to a socket (send_to) */
    bool                 upgrade;      /* an Upgrade was asked for */
    bool                 expect_continue;
    bool                 chunked;      /* request body chunked */
    gh_http1_chunked     req_ck;
    uint64_t             req_left;     /* Content-Length bytes still to send */
    bool                 req_done;     /* the whole body went out (or none) */
    uint64_t             req_sent;     /* body bytes sent upstream */
    /* the response */
    int                  status;
    gh_http1_body        body;
    uint64_t             resp_left;
    gh_http1_chunked     resp_ck;
    bool                 resp_keep_alive;
    uint64_t             resp_bytes;   /* body bytes toward the client */
    /* the tunnel */
    bool                 client_eof, up_eof;
    bool                 ws_frames;    /* a WebSocket: upstream->client frames followed */
    uint64_t             frame_left;   /* bytes of the current upstream frame to pass */
    uint64_t             last_ms;      /* last byte either way */
    struct event        *ping;         /* ping_interval timer */
    uint64_t             pings;        /* sent by gatehouse */
};

static void on_up_read(struct bufferevent *bev, void *arg);
static void on_up_write(struct bufferevent *bev, void *arg);
static void on_up_event(struct bufferevent *bev, short what, void *arg);
static void on_client_read(struct bufferevent *bev, void *arg);
static void on_client_write(struct bufferevent *bev, void *arg);
static void on_client_event(struct bufferevent *bev, short what, void *arg);
static void connect_next(struct gh_fwd *f);
static void on_ping(evutil_socket_t fd, short what, void *arg);
static void on_up_readable(evutil_socket_t fd, short what, void *arg);

/* ---- small helpers -------------------------------------------------------- */

static bool name_is(const gh_http1_field *fl, const char *name)
{
    size_t n = strlen(name);

    return fl->name_len == n && strncasecmp(fl->name, name, n) == 0;
}

static bool name_has_prefix(const gh_http1_field *fl, const char *prefix)
{
    size_t n = strlen(prefix);

    return fl->name_len >= n && strncasecmp(fl->name, prefix, n) == 0;
}

/* Whether the message has a field called name. */
static bool has_field(const gh_http1_field *fields, size_t nfields, const char *name)
{
    for (size_t i = 0; i < nfields; i++)
        if (name_is(&fields[i], name))
            return true;
    return false;
}

/* Whether fl is named by a Connection field of the message. */
static bool named_by_connection(const gh_http1_field *fields, size_t nfields,
                                const gh_http1_field *fl)
{
    char name[128];

    if (fl->name_len >= sizeof(name))
        return false;
    memcpy(name, fl->name, fl->name_len);
    name[fl->name_len] = '\0';
    for (size_t i = 0; i < nfields; i++)
        if (name_is(&fields[i], "connection") &&
            gh_http1_list_has(fields[i].value, fields[i].value_len, name))
            return true;
    return false;
}

/* RFC 9110 §7.6.1: hop-by-hop, never forwarded as is. */
static bool is_hop_by_hop(const gh_http1_field *fields, size_t nfields, bool has_connection,
                          const gh_http1_field *fl)
{
    return name_is(fl, "connection") || name_is(fl, "keep-alive") || name_is(fl, "te") ||
           name_is(fl, "trailer") || name_is(fl, "transfer-encoding") ||
           name_is(fl, "upgrade") || name_has_prefix(fl, "proxy-") ||
           (has_connection && named_by_connection(fields, nfields, fl));
}

/* A head being written: bytes in the caller's buffer until they outgrow
 * it, then in a heap copy that grows (a head is re-serialised field by
 * field; an evbuffer cost a chain per head and a vfprintf per number). */
typedef struct {
    char   *p;
    size_t  len, cap;
    bool    heap;       /* p is malloc'd (the caller frees it) */
    bool    failed;     /* out of memory: the bytes are cut short */
} headbuf;

static void add(headbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap * 2 + n;
        char *q = b->heap ? realloc(b->p, cap) : malloc(cap);

        if (q == NULL) {
            b->failed = true;
            return;
        }
        if (!b->heap && b->len > 0)
            memcpy(q, b->p, b->len);
        b->p = q;
        b->cap = cap;
        b->heap = true;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void add_str(headbuf *b, const char *s)
{
    add(b, s, strlen(s));
}

static void add_u64(headbuf *b, uint64_t v)
{
    char t[20];
    size_t i = sizeof(t);

    do
        t[--i] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    add(b, t + i, sizeof(t) - i);
}

static void add_field(headbuf *b, const char *name, const char *value, size_t vlen)
{
    add_str(b, name);
    add(b, ": ", 2);
    add(b, value, vlen);
    add(b, "\r\n", 2);
}

/* Sends b's bytes to bev: straight to its socket when nothing is queued
 * before them and the socket is plain TCP (one sendmsg, no write event to
 * arm and disarm), what is left queued on bev. b is empty after. */
static void send_to(struct bufferevent *bev, bool plain, struct evbuffer *b)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    evutil_socket_t fd = bufferevent_getfd(bev);

    if (evbuffer_get_length(b) == 0)
        return;
    if (plain && fd >= 0 && evbuffer_get_length(out) == 0)
        (void)gh_evbuffer_sendmsg(b, fd);      /* an error surfaces through the bufferevent */
    if (evbuffer_get_length(b) > 0)
        evbuffer_add_buffer(out, b);
}

/* ---- reading -------------------------------------------------------------
 * A socket bufferevent asks the kernel how many bytes wait (an ioctl), then
 * reads at most 4096 of them (libevent's EVBUFFER_MAX_READ): a 6 KB
 * response cost an ioctl and two reads. A plain upstream connection is
 * read by an event of ours instead (up_read_start): one recvmsg of up to
 * READ_FIRST bytes, and when that came back full one more of up to
 * READ_MORE, so a small response is one system call and a large body moves
 * in large pieces. The bufferevent keeps the writing, and a TLS upstream
 * (whose bytes only OpenSSL can read) keeps libevent's reading. */

/* Sizes of the space asked of the evbuffer: a chain is its header plus the
 * space, rounded up to a power of two, so each is a little under one.
 * READ_SMALL is the first read after a small one (a tunnel's few-byte
 * WebSocket frames): libevent, which asks FIONREAD, allocates about that
 * much for them, where READ_FIRST would be a 16 KiB chain per frame. */
#define CHAIN_SLACK 128
#define READ_SMALL (2 * 1024 - CHAIN_SLACK)
#define READ_FIRST (16 * 1024 - CHAIN_SLACK)
#define READ_MORE  (64 * 1024 - CHAIN_SLACK)

/* One recvmsg of up to want bytes into in's end. Returns the bytes read, 0
 * at EOF, -1 with errno set. */
static ssize_t recv_into(struct evbuffer *in, evutil_socket_t fd, size_t want)
{
    struct evbuffer_iovec v[2];
    struct iovec iov[2];
    struct msghdr mh;
    int n;
    ssize_t r, left;

    /* a socket bufferevent keeps its input's end frozen against additions
     * by others; this is the read it would do */
    evbuffer_unfreeze(in, 0);
    if ((n = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2)) <= 0) {
        evbuffer_freeze(in, 0);
        errno = ENOMEM;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        iov[i].iov_base = v[i].iov_base;
        iov[i].iov_len = v[i].iov_len;
    }
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = iov;
    mh.msg_iovlen = (size_t)n;
    do
        r = recvmsg(fd, &mh, MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    left = r > 0 ? r : 0;
    for (int i = 0; i < n; i++) {
        size_t take = (size_t)left < v[i].iov_len ? (size_t)left : v[i].iov_len;

        v[i].iov_len = take;
        left -= (ssize_t)take;
    }
    evbuffer_commit_space(in, v, r > 0 ? n : 0);
    evbuffer_freeze(in, 0);
    return r;
}

/* For a bufferevent libevent reads (the client's, a TLS upstream's): when
 * its read came back full (4096 bytes), take what the socket still holds
 * in one recvmsg of up to READ_MORE. Under 4096 bytes libevent's read took
 * all there was (it asked FIONREAD): another would only say EAGAIN. EOF and
 * errors are left for the bufferevent to find on its next read. */
static void read_more(struct bufferevent *bev, bool plain)
{
    evutil_socket_t fd = bufferevent_getfd(bev);

    if (plain && fd >= 0 && evbuffer_get_length(bufferevent_get_input(bev)) >= 4096)
        (void)recv_into(bufferevent_get_input(bev), fd, READ_MORE);
}

/* Starts reading ub with rd, for a plain upstream; a TLS one's bufferevent
 * reads. Returns false on ENOMEM. */
static bool up_read_start(struct gh_fwd *f)
{
    evutil_socket_t fd = bufferevent_getfd(f->ub);

    if (f->up->ssl_ctx != NULL || fd < 0) {
        bufferevent_enable(f->ub, EV_READ);
        return true;
    }
    if (f->rd == NULL &&
        (f->rd = event_new(bufferevent_get_base(f->ub), fd, EV_READ | EV_PERSIST,
                           on_up_readable, f)) == NULL)
        return false;
    if (!f->rd_on) {
        /* added before the bufferevent's read goes, so that a pooled
         * connection's fd stays in epoll: no epoll_ctl either way */
        event_add(f->rd, f->rd_timed ? &f->rd_tv : NULL);
        f->rd_on = true;
    }
    bufferevent_disable(f->ub, EV_READ);
    return true;
}

/* Pauses (on false) or resumes reading the upstream: backpressure, EOF. */
static void up_reading(struct gh_fwd *f, bool on)
{
    if (f->rd == NULL) {
        if (on)
            bufferevent_enable(f->ub, EV_READ);
        else
            bufferevent_disable(f->ub, EV_READ);
        return;
    }
    if (on == f->rd_on)
        return;
    if (on)
        event_add(f->rd, f->rd_timed ? &f->rd_tv : NULL);
    else
        event_del(f->rd);
    f->rd_on = on;
}

/* The upstream's read_timeout (rt, NULL for none) and send_timeout. */
static void up_timeouts(struct gh_fwd *f, const struct timeval *rt, const struct timeval *wt)
{
    if (f->rd == NULL) {
        bufferevent_set_timeouts(f->ub, rt, wt);
        return;
    }
    bufferevent_set_timeouts(f->ub, NULL, wt);
    f->rd_timed = rt != NULL;
    if (rt != NULL)
        f->rd_tv = *rt;
    if (f->rd_on && rt != NULL)
        event_add(f->rd, &f->rd_tv);
    else if (f->rd_on)
        event_remove_timer(f->rd);  /* event_add(NULL) would keep the old one */
}

/* Stops rd for good, before ub goes to the pool (keep: its bufferevent
 * watches it from now on) or is freed. */
static void up_read_end(struct gh_fwd *f, bool keep)
{
    if (f->rd == NULL)
        return;
    if (keep)
        bufferevent_enable(f->ub, EV_READ);     /* before rd goes: no epoll_ctl */
    event_free(f->rd);
    f->rd = NULL;
    f->rd_on = false;
    f->rd_timed = false;
}

static const char *upstream_name(const struct gh_fwd *f)
{
    return f->up->conf->name;
}

static const char *server_name(const struct gh_fwd *f)
{
    return f->srv != NULL ? f->srv->conf->address : "-";
}

/* ---- the request head sent upstream ------------------------------------- */

static bool forward_header_dropped(const gh_proxy_conf *pc, const gh_http1_field *fl)
{
    if (name_is(fl, "content-length") || name_is(fl, "expect") ||
        name_is(fl, "x-forwarded-for") || name_is(fl, "x-forwarded-proto") ||
        name_is(fl, "x-forwarded-host") || name_is(fl, "x-forwarded-port") ||
        name_is(fl, "x-real-ip") || name_is(fl, "forwarded"))
        return true;
    for (size_t i = 0; i < pc->nremove; i++)
        if (name_is(fl, pc->remove[i]))
            return true;
    for (size_t i = 0; i < pc->nset; i++)
        if (name_is(fl, pc->set[i].name))
            return true;
    return false;
}

/* The listener's port, for X-Forwarded-Port (the PROXY destination port
 * when the balancer told us, else the port we listen on). */
static unsigned local_port(const gh_conn *c)
{
    const gh_listener_conf *lc = &c->site->cfg->listeners[c->lidx];
    const struct sockaddr_storage *a = &lc->addr;

    if (a->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)a)->sin_port);
    if (a->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
    return 0;
}

static void add_forwarded(struct gh_fwd *f, headbuf *b, const gh_request *r)
{
    const gh_conn *c = f->c;
    const gh_http1_head *h = r->head;
    unsigned bits = f->pc->forwarded;
    const char *proto = r->https ? "https" : "http";
    bool v6 = c->client.sa.sa_family == AF_INET6;

    if (bits & GH_FWD_XFF) {
        /* the incoming chain is kept only from a peer we trust that did not
         * speak PROXY (an ALB); otherwise it is whatever the client wrote */
        add_str(b, "X-Forwarded-For: ");
        if (c->peer_trusted && !c->proxied) {
            for (size_t i = 0; i < h->nfields; i++) {
                if (!name_is(&h->fields[i], "x-forwarded-for") || h->fields[i].value_len == 0)
                    continue;
                add(b, h->fields[i].value, h->fields[i].value_len);
                add(b, ", ", 2);
            }
        }
        add_str(b, gh_conn_client_text(c));
        add(b, "\r\n", 2);
    }
    if (bits & GH_FWD_XFP)
        add_field(b, "X-Forwarded-Proto", proto, strlen(proto));
    if ((bits & GH_FWD_XFH) && r->req->host != NULL)
        add_field(b, "X-Forwarded-Host", r->req->host, r->req->host_len);
    if (bits & GH_FWD_XFPORT) {
        add_str(b, "X-Forwarded-Port: ");
        add_u64(b, local_port(c));
        add(b, "\r\n", 2);
    }
    if (bits & GH_FWD_REAL_IP) {
        const char *ip = gh_conn_client_text(c);

        add_field(b, "X-Real-IP", ip, strlen(ip));
    }
    if (bits & GH_FWD_FORWARDED) {
        /* RFC 7239 §4: an IPv6 node is quoted and bracketed; host quoted */
        add_str(b, v6 ? "Forwarded: for=\"[" : "Forwarded: for=");
        add_str(b, gh_conn_client_text(c));
        add_str(b, v6 ? "]\";proto=" : ";proto=");
        add_str(b, proto);
        if (r->req->host != NULL) {
            add_str(b, ";host=\"");
            add(b, r->req->host, r->req->host_len);
            add(b, "\"", 1);
        }
        add(b, "\r\n", 2);
    }
}

/* The request line's target: the raw path (strip_prefix removed) and query. */
static void add_target(headbuf *b, const gh_proxy_conf *pc, const gh_http1_req *req)
{
    const char *p = req->path;
    size_t n = req->path_len;

    if (pc->strip_prefix != NULL) {
        size_t sl = strlen(pc->strip_prefix);

        while (sl > 1 && pc->strip_prefix[sl - 1] == '/')
            sl--;       /* "/api/" strips "/api" and leaves the slash */
        if (n >= sl && memcmp(p, pc->strip_prefix, sl) == 0 &&
            (n == sl || p[sl] == '/' || p[sl - 1] == '/')) {
            p += sl;
            n -= sl;
        }
    }
    if (n == 0 || p[0] != '/')
        add(b, "/", 1);
    add(b, p, n);
    if (req->query != NULL) {
        add(b, "?", 1);
        add(b, req->query, req->query_len);
    }
}

/* Builds the head for upstream into f->out_head. Returns false on ENOMEM. */
static bool build_request(struct gh_fwd *f, const gh_request *r)
{
    const gh_http1_head *h = r->head;
    const gh_http1_req *req = r->req;
    const gh_proxy_conf *pc = f->pc;
    headbuf hb = { .p = malloc(r->raw_len + 512), .cap = r->raw_len + 512, .heap = true }, *b = &hb;
    const gh_http1_field *upgrade = NULL;
    bool has_connection = has_field(h->fields, h->nfields, "connection");

    if (hb.p == NULL)
        return false;
    add(b, h->method, h->method_len);
    add(b, " ", 1);
    add_target(b, pc, req);
    /* an HTTP/1.0 client cannot read chunked: asking in 1.0 keeps the
     * upstream from sending it (RFC 9112 §7.1) */
    add_str(b, h->minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
    for (size_t i = 0; i < h->nfields; i++) {
        const gh_http1_field *fl = &h->fields[i];

        if (name_is(fl, "upgrade"))
            upgrade = fl;
        if (is_hop_by_hop(h->fields, h->nfields, has_connection, fl) ||
            forward_header_dropped(pc, fl))
            continue;
        add(b, fl->name, fl->name_len);
        add(b, ": ", 2);
        add(b, fl->value, fl->value_len);
        add(b, "\r\n", 2);
    }
    if (req->host == NULL)          /* HTTP/1.0 without Host: upstream needs one */
        add_str(b, "Host: localhost\r\n");
    for (size_t i = 0; i < pc->nset; i++)
        add_field(b, pc->set[i].name, pc->set[i].value, strlen(pc->set[i].value));
    add_forwarded(f, b, r);
    if (req->upgrade && upgrade != NULL && upgrade->value_len > 0) {
        f->upgrade = true;
        add_str(b, "Connection: upgrade\r\n");
        add_field(b, "Upgrade", upgrade->value, upgrade->value_len);
    }
    if (req->chunked)
        add_str(b, "Transfer-Encoding: chunked\r\n");
    else if (req->content_length >= 0) {
        add_str(b, "Content-Length: ");
        add_u64(b, (uint64_t)req->content_length);
        add(b, "\r\n", 2);
    }
    add(b, "\r\n", 2);
    if (hb.failed) {
        free(hb.p);
        return false;
    }
    f->out_head = hb.p;
    f->out_len = hb.len;
    return true;
}

/* ---- ending ------------------------------------------------------------- */

static void detach_upstream(struct gh_fwd *f, bool keep)
{
    if (f->ub == NULL)
        return;
    if (f->srv != NULL && f->srv->active > 0)
        GH_STAT_SUB(f->srv->active, 1);
    keep = keep && f->srv != NULL && f->up->conf->proxy_protocol == 0;
    up_read_end(f, keep);
    if (keep) {
        /* (a connection that began with a PROXY header speaks for one client) */
        gh_upserver_keep(f->srv, f->ub);
    } else {
        bufferevent_free(f->ub);
    }
    f->ub = NULL;
}

static void fwd_free(struct gh_fwd *f)
{
    if (f == NULL)
        return;
    detach_upstream(f, false);
    if (f->ping != NULL)
        event_free(f->ping);
    if (f->tx != NULL)
        evbuffer_free(f->tx);
    free(f->out_head);
    free(f);
}

/* What the access-log line adds for a proxied request: the upstream, the
 * server that answered ("-" when none did) and its response time. Names
 * and addresses come from the config; anything outside printable ASCII,
 * a quote or a backslash is written as '?'. */
static void log_safe(const char *in, char *out, size_t cap)
{
    size_t i = 0;

    for (; in[i] != '\0' && i + 1 < cap; i++) {
        unsigned char ch = (unsigned char)in[i];

        out[i] = ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\' ? '?' : (char)ch;
    }
    out[i] = '\0';
}

static void log_extra(const struct gh_fwd *f, char *out, size_t cap)
{
    char t[32] = "-", name[72], server[120] = "-";

    if (f->timed) {
        snprintf(t, sizeof(t), "%.3f", (double)f->upstream_ms / 1000.0);
        log_safe(server_name(f), server, sizeof(server));
    }
    log_safe(upstream_name(f), name, sizeof(name));
    snprintf(out, cap, "upstream=\"%s\" server=\"%s\" upstream_time=%s", name, server, t);
}

/* Gives the connection back to conn.c (the response is queued). broken:
 * cut short, so the client connection closes. */
static void finish(struct gh_fwd *f, bool broken)
{
    gh_conn *c = f->c;
    bool logged = f->state == F_TUNNEL;     /* its 101 was logged when it began */
    bool log_on = c->loop->access_fd >= 0;
    char extra[256] = "";
    bool keep = !broken && f->req_done && f->resp_keep_alive && f->state == F_RESPONSE &&
                f->ub != NULL && evbuffer_get_length(bufferevent_get_input(f->ub)) == 0;

    if (!broken && f->srv != NULL)
        gh_upserver_ok(f->srv);
    if (log_on)
        log_extra(f, extra, sizeof(extra));     /* not formatted when nobody reads it */
    detach_upstream(f, keep);
    /* a body the upstream did not wait for is still arriving: close after */
    if (!f->req_done)
        broken = true;
    c->fwd = NULL;
    c->handoff = NULL;
    /* the head is parsed again only for a log line: the response counters
     * need the status alone */
    if (!logged)
        gh_conn_log(c, log_on ? f->head : NULL, f->head_len, f->status, f->resp_bytes,
                    log_on ? extra : NULL);
    fwd_free(f);
    gh_conn_resume(c, broken);
}

/* Answers the client with an error of ours (nothing of a response has gone
 * to it yet) and gives the connection back. */
static void fail_with(struct gh_fwd *f, int status)
{
    gh_conn *c = f->c;
    gh_resp_head h;
    char body[512];
    size_t n = gh_resp_error_body(status, body, sizeof(body));

    f->status = status;
    gh_resp_start(&h, status);
    gh_resp_add_str(&h, "Date", gh_loop_date(c->loop));
    gh_resp_add_raw(&h, "Server: gatehouse\r\n", 19);
    gh_resp_add_raw(&h, "Content-Type: text/html; charset=utf-8\r\n", 40);
    gh_resp_add_raw(&h, "Connection: close\r\n", 19);
    gh_resp_add_u64(&h, "Content-Length", f->is_head ? 0 : n);
    gh_resp_end(&h);
    evbuffer_add(bufferevent_get_output(c->bev), h.buf, h.len);
    if (!f->is_head)
        evbuffer_add(bufferevent_get_output(c->bev), body, n);
    f->resp_bytes = f->is_head ? 0 : n;
    f->resp_keep_alive = false;
    finish(f, true);
}

/* ---- the request body ---------------------------------------------------- */

/* Moves what it can of the request body from the client to the upstream. */
static void pump_request(struct gh_fwd *f)
{
    struct evbuffer *in = bufferevent_get_input(f->c->bev);
    struct evbuffer *out = bufferevent_get_output(f->ub);
    uint64_t max_body = f->c->site->cfg->http.max_body;

    while (!f->req_done && evbuffer_get_length(in) > 0) {
        if (evbuffer_get_length(out) >= HIGH_WATER) {
            bufferevent_disable(f->c->bev, EV_READ);   /* on_up_write resumes */
            return;
        }
        if (f->chunked) {
            size_t want = evbuffer_get_length(in) < PULL_CHUNK ? evbuffer_get_length(in)
                                                                : PULL_CHUNK;
            const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)want);
            long n = p != NULL ? gh_http1_chunked_feed(&f->req_ck, p, want) : GH_ENOMEM;

            if (n < 0 || f->req_ck.body_bytes > max_body) {
                /* bad framing or too large: the upstream must not get the
                 * rest; the client gets 400/413 if nothing was answered */
                GH_LOG(GH_LOG_INFO, "conn #%llu %s: proxy %s: request body %s",
                       (unsigned long long)f->c->id, gh_conn_client_text(f->c), upstream_name(f),
                       n < 0 ? "malformed" : "over max_body");
                if (f->state == F_WAITING)
                    fail_with(f, n < 0 ? 400 : 413);
                else
                    finish(f, true);
                return;
            }
            evbuffer_remove_buffer(in, out, (size_t)n);
            f->req_sent += (uint64_t)n;
            if (f->req_ck.done)
                f->req_done = true;
        } else {
            size_t n = evbuffer_get_length(in);

            if ((uint64_t)n > f->req_left)
                n = (size_t)f->req_left;
            evbuffer_remove_buffer(in, out, n);
            f->req_left -= n;
            f->req_sent += n;
            if (f->req_left == 0)
                f->req_done = true;
        }
    }
    if (!f->req_done) {
        bufferevent_enable(f->c->bev, EV_READ);
    } else if (f->req_sent > 0 && f->state == F_WAITING) {
        /* the body is all out: from now on the answer is awaited */
        struct timeval rt = gh_units_timeval(f->up->conf->read_timeout_ms);
        struct timeval wt = gh_units_timeval(f->up->conf->send_timeout_ms);

        up_timeouts(f, &rt, &wt);
    }
    /* what follows the body is the next request: it waits in the input,
     * bounded by conn.c's read watermark, until gh_conn_resume() */
}

/* ---- connecting ----------------------------------------------------------- */

/* The PROXY header of a new upstream connection: the real client, and the
 * address it reached (the balancer's, when a PROXY header told us). */
static void add_proxy_header(struct gh_fwd *f)
{
    const gh_conn *c = f->c;
    struct sockaddr_storage local;
    socklen_t len = sizeof(local);
    const struct sockaddr *dst = NULL;
    uint8_t hdr[GH_PROXY_ENCODE_MAX];
    long n;

    if (c->pp != NULL && !c->pp->info.local)
        dst = (const struct sockaddr *)&c->pp->info.dst;
    else if (getsockname(bufferevent_getfd(c->bev), (struct sockaddr *)&local, &len) == 0)
        dst = (const struct sockaddr *)&local;
    n = gh_proxy_encode(f->up->conf->proxy_protocol, &c->client.sa, dst, hdr, sizeof(hdr));
    if (n > 0)
        evbuffer_add(f->tx, hdr, (size_t)n);
}

/* The upstream is connected (or a pooled connection was taken): send. */
static void send_request(struct gh_fwd *f)
{
    const gh_upstream_conf *uc = f->up->conf;
    struct timeval rt = gh_units_timeval(uc->read_timeout_ms);
    struct timeval wt = gh_units_timeval(uc->send_timeout_ms);
    evutil_socket_t fd = bufferevent_getfd(f->ub);
    int one = 1;

    if (fd >= 0 && !f->reused && !f->early && f->srv->conf->addr.sa.sa_family != AF_UNIX)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    f->state = F_WAITING;
    f->sent_ms = gh_now_ms();
    bufferevent_setcb(f->ub, on_up_read, on_up_write, on_up_event, f);
    bufferevent_setwatermark(f->ub, EV_WRITE, LOW_WATER, 0);
    bufferevent_setwatermark(f->ub, EV_READ, 0, 0);
    /* read_timeout runs once the request is sent: an upstream reading a
     * large upload slowly is not late with its answer */
    if (!up_read_start(f)) {
        fail_with(f, 500);
        return;
    }
    up_timeouts(f, f->req_done ? &rt : NULL, &wt);
    if (!f->early) {
        if (f->up->conf->proxy_protocol != 0 && !f->reused)
            add_proxy_header(f);
        evbuffer_add(f->tx, f->out_head, f->out_len);
    }
    f->early = false;
    send_to(f->ub, f->up->ssl_ctx == NULL, f->tx);   /* writing is the bufferevent's when queued */
    if (!f->req_done) {
        if (f->expect_continue && f->req_sent == 0 && f->attempts == 1)
            evbuffer_add(bufferevent_get_output(f->c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
        pump_request(f);
    }
}

/* A new connection to a plain upstream, made here rather than by
 * bufferevent_socket_connect(), with the request head written at once:
 * over loopback (and to a unix socket) the handshake is over when
 * connect() returns, the write goes, and the connection needs no wait for
 * writability (libevent's connect costs a write event, a getsockopt and
 * two epoll_ctl, and a loop turn). When the write says EAGAIN the
 * connection is still being made and libevent's connect takes over with
 * connect_timeout, as before. Returns 0 (f->ub set; the head sent or on its
 * way: send_request has run or the connect callback will run it), or
 * -errno when the connect failed at once (the callback is never called). */
static int connect_plain(struct gh_fwd *f, gh_upserver *s, const struct timeval *ct)
{
    const struct sockaddr *sa = &s->conf->addr.sa;
    evutil_socket_t fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, e;
    ssize_t n;

    if (fd < 0)
        return -errno;
    if (sa->sa_family != AF_UNIX)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, sa, (socklen_t)s->conf->addrlen) != 0 && errno != EINPROGRESS &&
        errno != EINTR)
        goto fail;
    if (f->up->conf->proxy_protocol != 0)
        add_proxy_header(f);
    evbuffer_add(f->tx, f->out_head, f->out_len);
    n = gh_evbuffer_sendmsg(f->tx, fd);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        goto fail;
    if ((f->ub = bufferevent_socket_new(f->c->loop->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
        errno = ENOMEM;
        goto fail;
    }
    if (n > 0) {
        f->early = true;        /* connected: what is left of tx goes next */
        send_request(f);
        return 0;
    }
    evbuffer_drain(f->tx, evbuffer_get_length(f->tx));     /* sent when connected */
    bufferevent_setcb(f->ub, NULL, NULL, on_up_event, f);
    bufferevent_set_timeouts(f->ub, ct, ct);    /* libevent times a connect as a write */
    if (bufferevent_socket_connect(f->ub, NULL, 0) != 0) {
        e = errno != 0 ? -errno : GH_ENOMEM;
        bufferevent_free(f->ub);
        f->ub = NULL;
        return e;
    }
    return 0;
fail:
    e = -errno;
    evbuffer_drain(f->tx, evbuffer_get_length(f->tx));
    evutil_closesocket(fd);
    return e;
}

static void connect_next(struct gh_fwd *f)
{
    gh_loop *loop = f->c->loop;
    const gh_upstream_conf *uc = f->up->conf;
    bool every_down;
    gh_upserver *s;
    struct timeval ct = gh_units_timeval(uc->connect_timeout_ms);
    int rc;

    detach_upstream(f, false);
    f->srv = NULL;
    f->reused = false;
    f->state = F_CONNECTING;
    s = gh_upstream_pick(f->up, &f->c->client.sa, f->tried, gh_now_ms(), &every_down);
    if (s == NULL) {
        GH_LOG(GH_LOG_WARN, "conn #%llu %s: proxy %s: %s", (unsigned long long)f->c->id,
               gh_conn_client_text(f->c), upstream_name(f),
               every_down ? "every server is down" : "no server answered");
        fail_with(f, every_down || f->attempts == 0 ? 503 : 502);
        return;
    }
    f->srv = s;
    f->attempts++;
    GH_STAT_ADD(s->requests, 1);
    GH_STAT_ADD(s->active, 1);
    if (!f->fresh_only && (f->ub = gh_upserver_take_idle(s)) != NULL) {
        f->reused = true;
        send_request(f);
        return;
    }
    f->fresh_only = false;
    if (f->up->ssl_ctx == NULL) {
        if ((rc = connect_plain(f, s, &ct)) == 0)
            return;
        if (s->active > 0)
            GH_STAT_SUB(s->active, 1);        /* no ub for detach_upstream to count off */
        if (rc == GH_ENOMEM) {
            fail_with(f, 500);
            return;
        }
        errno = -rc;
    } else {
        f->ub = gh_upserver_bev_new(s, loop->base);
        if (f->ub == NULL) {
            if (s->active > 0)
                GH_STAT_SUB(s->active, 1);    /* no ub for detach_upstream to count off */
            fail_with(f, 500);
            return;
        }
        bufferevent_setcb(f->ub, NULL, NULL, on_up_event, f);
        bufferevent_set_timeouts(f->ub, &ct, &ct);   /* libevent times a connect as a write */
        if (bufferevent_socket_connect(f->ub, &s->conf->addr.sa, (int)s->conf->addrlen) == 0)
            return;
    }
    {
        /* an immediate refusal: the event callback is not called */
        GH_LOG(GH_LOG_WARN, "conn #%llu %s: proxy %s: server %s: connect: %s",
               (unsigned long long)f->c->id, gh_conn_client_text(f->c), upstream_name(f),
               server_name(f), strerror(errno));
        gh_upserver_failed(s, gh_now_ms(), GH_UPFAIL_CONNECT);
        f->tried[s - f->up->servers] = true;
        connect_next(f);
    }
}

/* ---- the response -------------------------------------------------------- */

static void add_response_head(struct gh_fwd *f, headbuf *b,
                              const gh_http1_resp_head *h, const gh_http1_resp *resp)
{
    gh_conn *c = f->c;
    const gh_http1_field *upgrade = NULL;
    bool has_connection = has_field(h->fields, h->nfields, "connection");

    add(b, "HTTP/1.1 ", 9);
    add_u64(b, (uint64_t)resp->status);
    add(b, " ", 1);
    if (h->reason_len > 0)
        add(b, h->reason, h->reason_len);
    else
        add_str(b, gh_http_reason(resp->status));
    add(b, "\r\n", 2);
    for (size_t i = 0; i < h->nfields; i++) {
        const gh_http1_field *fl = &h->fields[i];

        if (name_is(fl, "upgrade"))
            upgrade = fl;
        if (is_hop_by_hop(h->fields, h->nfields, has_connection, fl) ||
            name_is(fl, "content-length"))
            continue;
        add(b, fl->name, fl->name_len);
        add(b, ": ", 2);
        add(b, fl->value, fl->value_len);
        add(b, "\r\n", 2);
    }
    if (resp->status == 101) {
        add_str(b, "Connection: upgrade\r\n");
        if (upgrade != NULL)
            add_field(b, "Upgrade", upgrade->value, upgrade->value_len);
    } else {
        if (resp->body == GH_HTTP1_BODY_CHUNKED)
            add_str(b, "Transfer-Encoding: chunked\r\n");
        if (resp->content_length >= 0 && !resp->drop_content_length &&
            resp->body != GH_HTTP1_BODY_CHUNKED) {
            add_str(b, "Content-Length: ");
            add_u64(b, (uint64_t)resp->content_length);
            add(b, "\r\n", 2);
        }
        if (resp->body == GH_HTTP1_BODY_CLOSE || c->close_after || c->loop->stopping)
            add_str(b, "Connection: close\r\n");
        else if (f->http10)
            add_str(b, "Connection: keep-alive\r\n");
    }
    add(b, "\r\n", 2);
}

/* Parses the response head once it is whole. Returns false when f is gone. */
static bool read_response_head(struct gh_fwd *f)
{
    struct evbuffer *in = bufferevent_get_input(f->ub);
    gh_http1_resp_head h;
    gh_http1_resp resp;

    for (;;) {
        size_t len = evbuffer_get_length(in), want = len < MAX_RESP_HEAD ? len : MAX_RESP_HEAD;
        const char *p;
        long n;

        if (len == 0)
            return true;
        p = (const char *)evbuffer_pullup(in, (ev_ssize_t)want);
        n = p != NULL ? gh_http1_parse_response_head(p, want, MAX_RESP_HEAD, &h) : GH_ENOMEM;
        if (n == GH_EAGAIN)
            return true;
        if (n < 0 || gh_http1_analyse_response(&h, f->is_head, &resp) != 0) {
            GH_LOG(GH_LOG_WARN, "conn #%llu %s: proxy %s: server %s: bad response head",
                   (unsigned long long)f->c->id, gh_conn_client_text(f->c), upstream_name(f),
                   server_name(f));
            gh_upserver_failed(f->srv, gh_now_ms(), GH_UPFAIL_BAD_RESPONSE);
            fail_with(f, 502);
            return false;
        }
        if (resp.status >= 100 && resp.status < 200 && resp.status != 101) {
            evbuffer_drain(in, (size_t)n);      /* interim: 100-continue was ours */
            continue;
        }
        if (resp.status == 101 && !f->upgrade) {
            GH_LOG(GH_LOG_WARN, "conn #%llu %s: proxy %s: server %s: 101 without an upgrade",
                   (unsigned long long)f->c->id, gh_conn_client_text(f->c), upstream_name(f),
                   server_name(f));
            gh_upserver_failed(f->srv, gh_now_ms(), GH_UPFAIL_BAD_RESPONSE);
            fail_with(f, 502);
            return false;
        }
        f->status = resp.status;
        GH_STAT_ADD(f->srv->responses[resp.status / 100 < 6 ? resp.status / 100 : 5], 1);
        f->upstream_ms = gh_now_ms() - f->sent_ms;
        f->timed = true;
        gh_upstream_observe(f->srv, f->upstream_ms);
        if (resp.body == GH_HTTP1_BODY_CLOSE)
            f->c->close_after = true;
        f->body = resp.body;
        f->resp_left = resp.body == GH_HTTP1_BODY_LENGTH ? (uint64_t)resp.content_length : 0;
        f->resp_keep_alive = resp.keep_alive;
        if (resp.body == GH_HTTP1_BODY_CHUNKED)
            gh_http1_chunked_init(&f->resp_ck);
        {
            char stack[2048];
            headbuf hb = { .p = stack, .cap = sizeof(stack) };

            add_response_head(f, &hb, &h, &resp);
            if (!hb.failed)
                evbuffer_add(f->tx, hb.p, hb.len);
            if (hb.heap)
                free(hb.p);
            if (hb.failed) {
                fail_with(f, 500);
                return false;
            }
        }
        if (resp.status == 101) {
            const gh_http1_field *u = NULL;

            /* h points into the input: look before it is drained */
            for (size_t i = 0; i < h.nfields; i++)
                if (name_is(&h.fields[i], "upgrade"))
                    u = &h.fields[i];
            f->ws_frames = u != NULL && u->value_len == 9 &&
                           strncasecmp(u->value, "websocket", 9) == 0;
        }
        evbuffer_drain(in, (size_t)n);
        if (resp.status == 101) {
            send_to(f->c->bev, f->client_plain, f->tx);
            f->state = F_TUNNEL;
            f->c->tunnel = true;
            gh_loop_conn_kind(f->c->loop, f->c, GH_KIND_TUNNEL);
            {
                char extra[256];

                log_extra(f, extra, sizeof(extra));
                gh_conn_log(f->c, f->head, f->head_len, 101, 0, extra);
            }
            f->last_ms = gh_now_ms();
            if (f->ws_frames && f->pc->ping_interval_ms > 0) {
                /* checked at a tenth of the interval: a ping leaves within
                 * 10 % of ping_interval after the last byte */
                struct timeval tv = gh_units_timeval(f->pc->ping_interval_ms / 10 > 0
                                                     ? f->pc->ping_interval_ms / 10 : 1);

                f->ping = event_new(f->c->loop->base, -1, EV_PERSIST, on_ping, f);
                if (f->ping != NULL)
                    event_add(f->ping, &tv);
            }
            up_timeouts(f, NULL, NULL);
            bufferevent_set_timeouts(f->c->bev, NULL, NULL);
            f->req_done = true;
            bufferevent_enable(f->c->bev, EV_READ);
        } else {
            f->state = F_RESPONSE;
        }
        return true;
    }
}

/* Moves what it can of the response body. Returns false when f is gone. */
static bool pump_response(struct gh_fwd *f)
{
    struct evbuffer *in = bufferevent_get_input(f->ub);
    struct evbuffer *out = f->tx;       /* sent with send_to() before returning */

    for (;;) {
        size_t len = evbuffer_get_length(in);

        if (f->body == GH_HTTP1_BODY_NONE ||
            (f->body == GH_HTTP1_BODY_LENGTH && f->resp_left == 0) ||
            (f->body == GH_HTTP1_BODY_CHUNKED && f->resp_ck.done)) {
            send_to(f->c->bev, f->client_plain, f->tx);
            finish(f, false);
            return false;
        }
        if (len == 0)
            break;
        if (evbuffer_get_length(bufferevent_get_output(f->c->bev)) +
            evbuffer_get_length(out) >= HIGH_WATER) {
            up_reading(f, false);     /* on_client_write resumes */
            break;
        }
        if (f->body == GH_HTTP1_BODY_CHUNKED) {
            size_t want = len < PULL_CHUNK ? len : PULL_CHUNK;
            const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)want);
            long n = p != NULL ? gh_http1_chunked_feed(&f->resp_ck, p, want) : GH_ENOMEM;

            if (n < 0) {
                GH_LOG(GH_LOG_WARN, "conn #%llu %s: proxy %s: server %s: bad chunked body",
                       (unsigned long long)f->c->id, gh_conn_client_text(f->c), upstream_name(f),
                       server_name(f));
                send_to(f->c->bev, f->client_plain, f->tx);
                finish(f, true);
                return false;
            }
            evbuffer_remove_buffer(in, out, (size_t)n);
            f->resp_bytes += (uint64_t)n;
        } else {
            size_t n = len;

            if (f->body == GH_HTTP1_BODY_LENGTH && (uint64_t)n > f->resp_left)
                n = (size_t)f->resp_left;
            evbuffer_remove_buffer(in, out, n);
            f->resp_bytes += n;
            if (f->body == GH_HTTP1_BODY_LENGTH)
                f->resp_left -= n;
        }
    }
    send_to(f->c->bev, f->client_plain, f->tx);
    return true;
}

/* ---- the tunnel ---------------------------------------------------------- */

static void tunnel_end(struct gh_fwd *f)
{
    f->resp_keep_alive = false;
    finish(f, true);
}

/* Moves src's input to dst's output with backpressure. */
static void tunnel_pump(struct gh_fwd *f, struct bufferevent *src, struct bufferevent *dst)
{
    struct evbuffer *in = bufferevent_get_input(src), *out = bufferevent_get_output(dst);
    bool plain = dst == f->ub ? f->up->ssl_ctx == NULL : f->client_plain;
    size_t len = evbuffer_get_length(in), off = len;

    if (len > 0)
        f->last_ms = gh_now_ms();
    if (src == f->ub && f->ws_frames) {
        /* upstream -> client up to a frame boundary, so that gatehouse's
         * own pings can go between two frames, never inside one; only
         * the headers are looked at, the bytes move in one piece */
        uint64_t left = f->frame_left;

        off = 0;
        while (off < len) {
            if (left == 0) {
                uint8_t hdr[14];
                struct evbuffer_ptr pos;
                ev_ssize_t got;
                int rc;

                evbuffer_ptr_set(in, &pos, off, EVBUFFER_PTR_SET);
                got = evbuffer_copyout_from(in, &pos, hdr, len - off < sizeof(hdr) ? len - off
                                                                                  : sizeof(hdr));
                rc = got > 0 ? gh_ws_frame_size(hdr, (size_t)got, &left) : GH_EAGAIN;
                if (rc == GH_EAGAIN)
                    break;          /* wait for the rest of the header */
                if (rc != GH_OK) {
                    f->ws_frames = false;   /* not frames we can follow: no pings */
                    off = len;
                    left = 0;
                    break;
                }
            }
            {
                size_t take = (uint64_t)(len - off) < left ? len - off : (size_t)left;

                off += take;
                left -= take;
            }
        }
        f->frame_left = left;
    }
    evbuffer_remove_buffer(in, f->tx, off);
    send_to(dst, plain, f->tx);
    if (evbuffer_get_length(out) >= HIGH_WATER) {
        if (src == f->ub)
            up_reading(f, false);
        else
            bufferevent_disable(src, EV_READ);
    }
}

/* ping_interval: a tunnel silent that long gets an (empty) ping to the
 * client, between two upstream frames. The client's pong goes up the
 * tunnel: RFC 6455 §5.5.3 lets the upstream ignore an unsolicited pong. */
static void on_ping(evutil_socket_t fd, short what, void *arg)
{
    struct gh_fwd *f = arg;
    uint64_t now = gh_now_ms();
    static const uint8_t ping[2] = { 0x89, 0x00 };

    (void)fd;
    (void)what;
    if (f->state != F_TUNNEL || !f->ws_frames || f->up_eof)
        return;
    if (now - f->last_ms >= f->pc->ping_interval_ms && f->frame_left == 0 &&
        evbuffer_get_length(bufferevent_get_input(f->ub)) == 0) {
        evbuffer_add(bufferevent_get_output(f->c->bev), ping, sizeof(ping));
        f->pings++;
        f->last_ms = now;
    }
}

/* One side said EOF: pass it on once what it sent is written, and end when
 * both have. */
static void tunnel_half_close(struct gh_fwd *f)
{
    if (f->up_eof && evbuffer_get_length(bufferevent_get_output(f->c->bev)) == 0 &&
        f->client_eof && evbuffer_get_length(bufferevent_get_output(f->ub)) == 0) {
        tunnel_end(f);
        return;
    }
    if (f->client_eof && evbuffer_get_length(bufferevent_get_output(f->ub)) == 0) {
        evutil_socket_t fd = bufferevent_getfd(f->ub);

        if (fd >= 0)
            (void)shutdown(fd, SHUT_WR);
    }
    if (f->up_eof && evbuffer_get_length(bufferevent_get_output(f->c->bev)) == 0) {
        /* the client side may be TLS: no half-close through it; end */
        tunnel_end(f);
    }
}

/* ---- upstream callbacks --------------------------------------------------- */

static void on_up_read(struct bufferevent *bev, void *arg)
{
    struct gh_fwd *f = arg;

    (void)bev;      /* a plain ub was read by on_up_readable */
    if (f->state == F_TUNNEL) {
        tunnel_pump(f, f->ub, f->c->bev);
        return;
    }
    if (f->state == F_WAITING) {
        if (!read_response_head(f))
            return;
        if (f->state == F_WAITING) {
            if (evbuffer_get_length(bufferevent_get_input(f->ub)) >= MAX_RESP_HEAD) {
                gh_upserver_failed(f->srv, gh_now_ms(), GH_UPFAIL_BAD_RESPONSE);
                fail_with(f, 502);
            }
            return;
        }
        if (f->state == F_TUNNEL) {
            tunnel_pump(f, f->ub, f->c->bev);
            return;
        }
    }
    if (f->state == F_RESPONSE)
        (void)pump_response(f);
}

/* rd: a plain upstream is readable (or its read_timeout passed). What the
 * bufferevent would report is reported the same way, through on_up_read
 * and on_up_event. */
static void on_up_readable(evutil_socket_t fd, short what, void *arg)
{
    struct gh_fwd *f = arg;
    struct evbuffer *in = bufferevent_get_input(f->ub);
    size_t want;
    ssize_t r;

    if (what & EV_TIMEOUT) {
        up_reading(f, false);
        on_up_event(f->ub, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, f);
        return;
    }
    want = f->rd_small ? READ_SMALL : READ_FIRST;
    r = recv_into(in, fd, want);
    if (r >= (ssize_t)want)     /* full (the evbuffer may give more space than asked) */
        (void)recv_into(in, fd, READ_MORE);     /* EOF or an error: found next time */
    f->rd_small = r >= 0 && r < READ_SMALL;
    if (r > 0) {
        on_up_read(f->ub, f);
        return;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    up_reading(f, false);
    on_up_event(f->ub, BEV_EVENT_READING | (r == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR), f);
}

static void on_up_write(struct bufferevent *bev, void *arg)
{
    struct gh_fwd *f = arg;

    (void)bev;
    if (f->state == F_TUNNEL) {
        bufferevent_enable(f->c->bev, EV_READ);
        if (f->client_eof)
            tunnel_half_close(f);
        return;
    }
    if (!f->req_done)
        pump_request(f);
}

/* Why an upstream connection failed, for the log. */
static const char *reason_of(struct gh_fwd *f, short what)
{
    static _Thread_local char ebuf[256];
    unsigned long e;

    if (what & BEV_EVENT_TIMEOUT)
        return "timed out";
    if (f->ub != NULL && f->up->ssl_ctx != NULL &&
        (e = bufferevent_get_openssl_error(f->ub)) != 0) {
        ERR_error_string_n(e, ebuf, sizeof(ebuf));
        while (bufferevent_get_openssl_error(f->ub) != 0)
            ;
        return ebuf;
    }
    if (what & BEV_EVENT_EOF)
        return "closed the connection";
    return evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR());
}

static void on_up_event(struct bufferevent *bev, short what, void *arg)
{
    struct gh_fwd *f = arg;
    uint64_t now = gh_now_ms();

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        send_request(f);
        return;
    }
    switch (f->state) {
    case F_CONNECTING:
        GH_LOG(GH_LOG_WARN, "conn #%llu %s: proxy %s: server %s: connect %s",
               (unsigned long long)f->c->id, gh_conn_client_text(f->c), upstream_name(f),
               server_name(f), (what & BEV_EVENT_TIMEOUT) ? "timed out" : reason_of(f, what));
        gh_upserver_failed(f->srv, now, (what & BEV_EVENT_TIMEOUT) ? GH_UPFAIL_CONNECT_TIMEOUT
                                                                  : GH_UPFAIL_CONNECT);
        f->tried[f->srv - f->up->servers] = true;
        connect_next(f);
        return;
    case F_WAITING:
        if (f->reused && f->req_sent == 0 && !(what & BEV_EVENT_TIMEOUT) &&
            evbuffer_get_length(bufferevent_get_input(f->ub)) == 0) {
            /* a pooled connection the upstream had closed: once more, fresh */
            GH_LOG(GH_LOG_INFO, "conn #%llu %s: proxy %s: server %s: kept connection %s; "
                   "retrying on a new one", (unsigned long long)f->c->id, gh_conn_client_text(f->c),
                   upstream_name(f), server_name(f), reason_of(f, what));
            f->fresh_only = true;
            f->reused = false;
            GH_STAT_SUB(f->srv->requests, 1);
            f->attempts--;
            connect_next(f);
            return;
        }
        GH_LOG(GH_LOG_WARN, "conn #%llu %s: proxy %s: server %s: %s before answering",
               (unsigned long long)f->c->id, gh_conn_client_text(f->c), upstream_name(f),
               server_name(f), reason_of(f, what));
        gh_upserver_failed(f->srv, now, (what & BEV_EVENT_TIMEOUT) ? GH_UPFAIL_TIMEOUT
                                                                  : GH_UPFAIL_CLOSED);
        fail_with(f, (what & BEV_EVENT_TIMEOUT) ? 504 : 502);
        return;
    case F_RESPONSE:
        if ((what & BEV_EVENT_EOF) && f->body == GH_HTTP1_BODY_CLOSE) {
            (void)pump_response(f);     /* close-delimited: this is the end */
            if (f->c->fwd == f) {
                f->resp_keep_alive = false;
                evbuffer_add_buffer(bufferevent_get_output(f->c->bev),
                                    bufferevent_get_input(f->ub));
                finish(f, false);
            }
            return;
        }
        GH_LOG(GH_LOG_WARN, "conn #%llu %s: proxy %s: server %s: %s in the middle of a "
               "response", (unsigned long long)f->c->id, gh_conn_client_text(f->c),
               upstream_name(f), server_name(f), reason_of(f, what));
        gh_upserver_failed(f->srv, now, (what & BEV_EVENT_TIMEOUT) ? GH_UPFAIL_TIMEOUT
                                                                  : GH_UPFAIL_CLOSED);
        finish(f, true);
        return;
    case F_TUNNEL:
        if (what & BEV_EVENT_EOF) {
            tunnel_pump(f, f->ub, f->c->bev);
            f->up_eof = true;
            up_reading(f, false);
            tunnel_half_close(f);
            return;
        }
        tunnel_end(f);
        return;
    }
}

/* ---- client callbacks ------------------------------------------------------ */

static void on_client_read(struct bufferevent *bev, void *arg)
{
    struct gh_fwd *f = arg;

    if (f->state == F_TUNNEL || !f->req_done)
        read_more(bev, f->client_plain);
    if (f->state == F_TUNNEL) {
        tunnel_pump(f, f->c->bev, f->ub);
        return;
    }
    if (f->ub != NULL && f->state != F_CONNECTING && !f->req_done)
        pump_request(f);
}

static void on_client_write(struct bufferevent *bev, void *arg)
{
    struct gh_fwd *f = arg;

    (void)bev;
    if (f->state == F_TUNNEL) {
        up_reading(f, true);
        if (f->up_eof)
            tunnel_half_close(f);
        return;
    }
    if (f->state == F_RESPONSE && f->ub != NULL) {
        up_reading(f, true);
        (void)pump_response(f);
    }
}

static void on_client_event(struct bufferevent *bev, short what, void *arg)
{
    struct gh_fwd *f = arg;
    gh_conn *c = f->c;

    (void)bev;
    if (f->state == F_TUNNEL && (what & BEV_EVENT_EOF)) {
        tunnel_pump(f, c->bev, f->ub);
        f->client_eof = true;
        bufferevent_disable(c->bev, EV_READ);
        tunnel_half_close(f);
        return;
    }
    /* the client went away (or its send_timeout passed): nobody to answer */
    gh_conn_free(c);        /* releases f */
}

/* ---- the handoff ------------------------------------------------------------ */

static void fwd_start(gh_conn *c)
{
    struct gh_fwd *f = c->fwd;

    bufferevent_setcb(c->bev, on_client_read, on_client_write, on_client_event, f);
    /* on_client_write runs when the client's output falls under LOW_WATER */
    bufferevent_setwatermark(c->bev, EV_WRITE, LOW_WATER, 0);
    if (!f->req_done)
        bufferevent_disable(c->bev, EV_READ);     /* the body waits for the upstream */
    connect_next(f);
}

static void fwd_drain(gh_conn *c)
{
    /* a request in flight finishes and the connection then closes
     * (gh_conn_resume sees the loop stopping); a tunnel lasts until
     * drain_timeout */
    (void)c;
}

static void fwd_release(gh_conn *c)
{
    fwd_free(c->fwd);
    c->fwd = NULL;
}

static const gh_conn_handoff fwd_handoff = {
    .start = fwd_start,
    .drain = fwd_drain,
    .release = fwd_release,
};

void gh_action_proxy(gh_request *r, const gh_route_conf *route)
{
    gh_conn *c = r->c;
    const gh_proxy_conf *pc = &route->u.proxy;
    gh_upstream *up = gh_upstreams_get(c->site->upstreams != NULL ? c->site->upstreams[c->loop->id] : NULL,
                                       pc->upstream_index);
    struct gh_fwd *f = NULL;

    if (up == NULL || r->raw == NULL) {
        gh_req_error(r, 500);
        return;
    }
    /* one allocation: f, then tried[], then the head */
    if ((f = calloc(1, sizeof(*f) + up->nservers * sizeof(*f->tried) + r->raw_len)) == NULL)
        goto nomem;
    f->tried = (bool *)(f + 1);
    f->head = (char *)(f->tried + up->nservers);
    if ((f->tx = evbuffer_new()) == NULL)
        goto nomem;
    f->c = c;
    f->pc = pc;
    f->up = up;
    memcpy(f->head, r->raw, r->raw_len);
    f->head_len = r->raw_len;
    f->is_head = r->is_head;
    f->http10 = r->head->minor == 0;
    f->client_plain = !c->site->cfg->listeners[c->lidx].tls;
    f->status = 502;
    f->expect_continue = r->req->expect_continue;
    f->chunked = r->req->chunked;
    if (f->chunked)
        gh_http1_chunked_init(&f->req_ck);
    f->req_left = r->req->content_length > 0 ? (uint64_t)r->req->content_length : 0;
    f->req_done = !f->chunked && f->req_left == 0;
    if (!build_request(f, r))
        goto nomem;
    c->fwd = f;
    c->handoff = &fwd_handoff;
    c->state = GH_CONN_UPSTREAM;
    r->status = 0;
    return;
nomem:
    fwd_free(f);
    gh_req_error(r, 500);
}
