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
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "accesslog.h"
#include "actions.h"
#include "err.h"
#include "log.h"
#include "route.h"
#include "uri.h"
#include "wsconn.h"

#define PATH_MAX_BYTES 4096
/* After our last byte, read and drop what the client still sends for this
 * long (or this much) before closing, so a client still sending its
 * request gets our response instead of a reset (RFC 9112 §9.6). */
#define LINGER_MS 2000
#define LINGER_MAX_BYTES (1024 * 1024)

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);

static const gh_config *cfg_of(const gh_conn *c)
{
    return c->site->cfg;
}

static void addr_text(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    const void *a = NULL;

    if (ss->ss_family == AF_INET) {
        a = &((const struct sockaddr_in *)ss)->sin_addr;
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        /* show an IPv4-mapped peer as plain IPv4 */
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            if (inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out, (socklen_t)cap) != NULL)
                return;
        }
        a = &s6->sin6_addr;
    }
    if (a == NULL || inet_ntop(ss->ss_family, a, out, (socklen_t)cap) == NULL)
        snprintf(out, cap, "-");
}

static void arm_timer(gh_conn *c, uint64_t ms)
{
    struct timeval tv = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)((ms % 1000) * 1000) };

    if (ms == 0) {
        evtimer_del(c->timer);
        return;
    }
    evtimer_add(c->timer, &tv);
}

void gh_conn_accept(gh_listener *lst, evutil_socket_t fd,
                    const struct sockaddr *sa, int salen)
{
    gh_server *srv = lst->srv;
    const gh_config *cfg = srv->site->cfg;
    const gh_listener_conf *lc = &cfg->listeners[lst->index];
    gh_conn *c = NULL;
    int one = 1;

    if ((c = calloc(1, sizeof(*c))) == NULL)
        goto fail;
    c->srv = srv;
    c->lst = lst;
    c->id = ++srv->next_conn_id;
    c->site = gh_site_ref(srv->site);
    if (salen > 0 && (size_t)salen <= sizeof(c->peer))
        memcpy(&c->peer, sa, (size_t)salen);
    c->client = c->peer;
    addr_text(&c->client, c->client_text, sizeof(c->client_text));
    c->https = lc->tls;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL)
        goto fail;
    fd = -1;                    /* the bufferevent owns it now */
    c->timer = evtimer_new(srv->base, on_timer, c);
    if (c->timer == NULL)
        goto fail;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    /* stop reading while this much is waiting: bounds a pipelining client */
    bufferevent_setwatermark(c->bev, EV_READ, 0, cfg->http.max_head + 64 * 1024);
    if (cfg->http.send_timeout_ms > 0) {
        struct timeval wt = {
            .tv_sec = (time_t)(cfg->http.send_timeout_ms / 1000),
            .tv_usec = (suseconds_t)((cfg->http.send_timeout_ms % 1000) * 1000),
        };
        bufferevent_set_timeouts(c->bev, NULL, &wt);
    }
    gh_server_conn_added(srv, c);
    c->state = GH_CONN_HEAD;
    arm_timer(c, cfg->http.header_timeout_ms);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    return;

fail:
    GH_LOG(GH_LOG_ERROR, "listener %s: cannot set up a connection: out of memory", lst->name);
    if (c != NULL) {
        if (c->bev != NULL)
            bufferevent_free(c->bev);
        gh_site_unref(c->site);
        free(c);
    }
    if (fd >= 0)
        evutil_closesocket(fd);
}

void gh_conn_free(gh_conn *c)
{
    if (c == NULL)
        return;
    gh_server_conn_removed(c->srv, c);
    if (c->ws != NULL)
        gh_ws_conn_free(c->ws);
    if (c->timer != NULL)
        event_free(c->timer);
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    free(c->pending_head);
    gh_site_unref(c->site);
    free(c);
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
    if (c->state == GH_CONN_WS) {
        gh_ws_conn_drain(c);
        return;
    }
    if (c->state == GH_CONN_HEAD && !c->in_request) {
        gh_conn_free(c);
        return;
    }
    c->close_after = true;
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
    gh_resp_add_str(h, "Date", gh_server_date(c->srv));
    gh_resp_add_raw(h, "Server: gatehouse\r\n", 19);
    if (c->close_after || c->srv->stopping)
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

void gh_req_send(gh_request *r, gh_resp_head *h, const void *body, size_t len)
{
    send_head(r, h, len);
    if (r->status == 500 && h->overflow)
        return;
    if (!r->is_head && len > 0 && r->status != 304) {
        evbuffer_add(bufferevent_get_output(r->c->bev), body, len);
        r->body_bytes = len;
    }
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
               (unsigned long long)r->c->id, r->c->client_text, (unsigned long long)len);
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
    gh_server *srv = r->c->srv;
    gh_access_entry e = {0};
    const gh_http1_field *f;
    char line[4096];
    char proto[9] = "HTTP/1.1";
    size_t n;

    if (srv->access_fd < 0)
        return;
    e.client = r->c->client_text;
    e.when = srv->date_sec != 0 ? srv->date_sec : time(NULL);
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
    gh_server_access_write(srv, line, n);
}

/* ---- dispatch -------------------------------------------------------- */

static bool method_is(const gh_http1_head *h, const char *m)
{
    size_t n = strlen(m);
    return h->method_len == n && memcmp(h->method, m, n) == 0;
}

static gh_scheme request_scheme(gh_conn *c)
{
    return c->https ? GH_SCHEME_HTTPS : GH_SCHEME_HTTP;
}

/* Answers one complete request (head and, if any, body already consumed). */
static void dispatch(gh_conn *c, const gh_http1_head *head, const gh_http1_req *req)
{
    gh_request r = {
        .c = c, .head = head, .req = req,
        .is_head = method_is(head, "HEAD"),
        .is_get = method_is(head, "GET"),
    };
    char path[PATH_MAX_BYTES];
    const gh_route_conf *route;
    long plen;
    size_t hlen = 0;

    c->requests++;
    if (!req->keep_alive)
        c->close_after = true;

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
    route = gh_route_find(cfg_of(c), req->host, hlen, path, request_scheme(c));
    if (route == NULL) {
        gh_req_error(&r, 404);
        goto out;
    }
    switch (route->action) {
    case GH_ACTION_STATIC:
        gh_action_static(&r, route);
        break;
    case GH_ACTION_HEALTH:
        gh_action_health(&r, route);
        break;
    case GH_ACTION_REDIRECT_HTTPS:
        gh_action_redirect(&r, route);
        break;
    case GH_ACTION_WEBSOCKET:
        gh_action_websocket(&r, route);
        break;
    default:
        gh_req_error(&r, 501);
        break;
    }
out:
    access_log(&r);
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
    gh_http1_head head;
    gh_http1_req req;
    long n;

    n = gh_http1_parse_head(c->pending_head, c->pending_len, c->pending_len + 1, &head);
    if (n > 0 && gh_http1_analyse(&head, &req) == 0)
        dispatch(c, &head, &req);
    else
        refuse(c, 400);     /* cannot happen: it parsed before */
    free(c->pending_head);
    c->pending_head = NULL;
    c->pending_len = 0;
}

/* Returns true when it consumed something and the loop should go on. */
static bool read_body(gh_conn *c, struct evbuffer *in)
{
    size_t len = evbuffer_get_length(in);
    uint64_t max_body = cfg_of(c)->http.max_body;

    if (len == 0)
        return false;
    if (c->body_chunked) {
        size_t want = len < 65536 ? len : 65536;
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)want);
        long n = gh_http1_chunked_feed(&c->chunked, p, want);
        if (n < 0) {
            refuse(c, 400);
            return false;
        }
        evbuffer_drain(in, (size_t)n);
        if (c->chunked.body_bytes > max_body) {
            refuse(c, 413);
            return false;
        }
        if (!c->chunked.done)
            return n > 0;
    } else {
        size_t n = len < c->body_left ? len : (size_t)c->body_left;
        evbuffer_drain(in, n);
        c->body_left -= n;
        if (c->body_left > 0)
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

    if (req.content_length > 0 || req.chunked) {
        /* keep the head while the body goes by, then answer */
        if (req.content_length > 0 && (uint64_t)req.content_length > cfg->http.max_body) {
            gh_request r = { .c = c, .head = &head, .req = &req };
            c->close_after = true;
            gh_req_error(&r, 413);
            access_log(&r);
            close_after_flush(c);
            return false;
        }
        if ((c->pending_head = malloc((size_t)n)) == NULL) {
            refuse(c, 500);
            return false;
        }
        memcpy(c->pending_head, data, (size_t)n);
        c->pending_len = (size_t)n;
        c->body_chunked = req.chunked;
        c->body_left = req.chunked ? 0 : (uint64_t)req.content_length;
        if (req.chunked)
            gh_http1_chunked_init(&c->chunked);
        if (req.expect_continue)
            evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
        evbuffer_drain(in, (size_t)n);
        c->state = GH_CONN_BODY;
        return true;
    }

    dispatch(c, &head, &req);
    evbuffer_drain(in, (size_t)n);
    if (c->state == GH_CONN_WS) {
        /* the 101 is queued; what follows the head is WebSocket frames */
        evtimer_del(c->timer);
        gh_ws_conn_start(c);
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
            return;
        case GH_CONN_LINGER:
            c->lingered += evbuffer_get_length(in);
            evbuffer_drain(in, evbuffer_get_length(in));
            return;
        }
    }
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
        if (c->srv->stopping) {
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
    if (what & BEV_EVENT_TIMEOUT) {
        GH_LOG(GH_LOG_INFO, "conn #%llu %s: send timeout, closing",
               (unsigned long long)c->id, c->client_text);
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
               c->client_text, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    gh_conn_free(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    gh_conn *c = arg;

    (void)fd;
    (void)what;
    if (c->in_request)
        GH_LOG(GH_LOG_INFO, "conn #%llu %s: header timeout while reading a request, closing",
               (unsigned long long)c->id, c->client_text);
    gh_conn_free(c);
}
