/* pool.c: upstream servers' state, the choice of a server, and idle
 * keep-alive connections (pool.h).
 *
 * Passive health follows nginx's max_fails / fail_timeout: max_fails
 * failures within fail_timeout mark a server down for fail_timeout. A
 * server is chosen among the primaries that are up; backups only when no
 * primary is. Round robin is nginx's smooth weighted round robin (a server
 * of weight 3 gets three of every four picks beside one of weight 1,
 * interleaved, not in a burst).
 *
 * An idle connection is watched for reads: any byte or EOF from an idle
 * upstream means it is closing or broken, and it is dropped at once rather
 * than handed to a request. keepalive_timeout is that read's timeout (no
 * timer of its own to allocate, add and free for every request).
 *
 * keepalive bounds the idle connections after every loop turn, not within
 * one: a server's responses tend to end in one batch of callbacks and the
 * clients' next requests to come in the next batch, so closing at once
 * whatever went over the bound closed connections that the next turn's
 * requests then opened again (with 50 clients and keepalive 32, a third of
 * the requests paid a connect and a close, a third of the proxy's CPU).
 * The surplus is closed by a zero timer instead: libevent polls without
 * waiting while it is pending, runs the callbacks of what is ready, then
 * the timer, which closes the least recently used connections over the
 * bound (nginx's choice when its keepalive cache is full). */
#include "pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "err.h"
#include "http1.h"
#include "log.h"
#include "promtext.h"
#include "units.h"

typedef struct gh_idle {
    struct gh_idle     *next, *prev;
    gh_upserver        *srv;
    struct bufferevent *bev;
} gh_idle;

struct gh_upstreams {
    gh_upstream *ups;
    size_t       nups;
};

uint64_t gh_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A TLS client context for uc: TLS 1.2+, the CA file or the system's
 * store, peer verification unless verify: false. */
static int tls_ctx_new(const gh_upstream_conf *uc, gh_errlist *errs, SSL_CTX **out)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        return GH_ENOMEM;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, uc->tls_verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (uc->tls_ca != NULL ? SSL_CTX_load_verify_locations(ctx, uc->tls_ca, NULL) != 1
                           : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        char ebuf[256];

        ERR_error_string_n(ERR_get_error(), ebuf, sizeof(ebuf));
        ERR_clear_error();
        gh_errlist_add(errs, uc->loc.file, uc->loc.line, uc->loc.col,
                       "upstream %s: tls: ca %s: %s", uc->name,
                       uc->tls_ca != NULL ? uc->tls_ca : "(the system's)", ebuf);
        SSL_CTX_free(ctx);
        return GH_EINVAL;
    }
    *out = ctx;
    return GH_OK;
}

struct bufferevent *gh_upserver_bev_new(gh_upserver *s, struct event_base *base)
{
    const gh_upstream_conf *uc = s->up->conf;
    struct bufferevent *bev;
    SSL *ssl;

    if (s->up->ssl_ctx == NULL)
        return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if ((ssl = SSL_new(s->up->ssl_ctx)) == NULL)
        return NULL;
    if (uc->tls_sni != NULL) {
        SSL_set_tlsext_host_name(ssl, uc->tls_sni);
        if (uc->tls_verify)
            SSL_set1_host(ssl, uc->tls_sni);
    } else if (uc->tls_verify) {
        /* no name to check: the certificate must name the address */
        const gh_sockaddr_any *a = &s->conf->addr;
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);

        if (a->sa.sa_family == AF_INET)
            X509_VERIFY_PARAM_set1_ip(vp, (const unsigned char *)&a->in4.sin_addr, 4);
        else if (a->sa.sa_family == AF_INET6)
            X509_VERIFY_PARAM_set1_ip(vp, (const unsigned char *)&a->in6.sin6_addr, 16);
    }
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        SSL_free(ssl);
    return bev;
}

int gh_upstreams_new(const gh_config *cfg, gh_errlist *errs, gh_upstreams **out)
{
    gh_upstreams *u = calloc(1, sizeof(*u));
    int rc = GH_ENOMEM;

    if (u == NULL)
        return GH_ENOMEM;
    if (cfg->nupstreams > 0 && (u->ups = calloc(cfg->nupstreams, sizeof(*u->ups))) == NULL)
        goto fail;
    u->nups = cfg->nupstreams;
    for (size_t i = 0; i < u->nups; i++) {
        gh_upstream *up = &u->ups[i];

        up->conf = &cfg->upstreams[i];
        up->all = u;
        up->nservers = up->conf->nservers;
        if ((up->servers = calloc(up->nservers, sizeof(*up->servers))) == NULL)
            goto fail;
        for (size_t j = 0; j < up->nservers; j++) {
            up->servers[j].conf = &up->conf->servers[j];
            up->servers[j].up = up;
            up->servers[j].hc_of = &up->servers[j];
        }
        if (up->conf->tls && (rc = tls_ctx_new(up->conf, errs, &up->ssl_ctx)) != GH_OK)
            goto fail;
    }
    *out = u;
    return GH_OK;
fail:
    gh_upstreams_free(u);
    return rc;
}

static void idle_free(gh_idle *i)
{
    gh_upserver *s = i->srv;

    if (i->prev != NULL)
        i->prev->next = i->next;
    else
        s->idle = i->next;
    if (i->next != NULL)
        i->next->prev = i->prev;
    GH_STAT_SUB(s->nidle, 1);
    free(i);
}

void gh_upstreams_free(gh_upstreams *u)
{
    if (u == NULL)
        return;
    gh_upstreams_stop(u);
    for (size_t i = 0; i < u->nups; i++) {
        gh_upstream *up = &u->ups[i];

        for (size_t j = 0; up->servers != NULL && j < up->nservers; j++) {
            while (up->servers[j].idle != NULL) {
                struct bufferevent *bev = up->servers[j].idle->bev;

                idle_free(up->servers[j].idle);
                bufferevent_free(bev);
            }
        }
        for (size_t j = 0; up->servers != NULL && j < up->nservers; j++)
            if (up->servers[j].trim != NULL)
                event_free(up->servers[j].trim);
        free(up->servers);
        SSL_CTX_free(up->ssl_ctx);
    }
    free(u->ups);
    free(u);
}

gh_upstream *gh_upstreams_get(gh_upstreams *u, size_t i)
{
    return u != NULL && i < u->nups ? &u->ups[i] : NULL;
}

/* Health is the first worker's server's (hc_of): its checks decide
 * hc_down, and a worker that counts max_fails failures marks the server
 * down there, for every worker. */
static bool is_up(const gh_upserver *s, uint64_t now_ms)
{
    return !__atomic_load_n(&s->hc_of->hc_down, __ATOMIC_RELAXED) &&
           GH_STAT_GET(s->hc_of->down_until_ms) <= now_ms;
}

static uint32_t hash_addr(const struct sockaddr *sa)
{
    const uint8_t *p;
    size_t n;
    uint32_t h = 2166136261u;     /* FNV-1a */

    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET) {
        p = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        n = 4;
    } else if (sa->sa_family == AF_INET6) {
        p = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        n = 16;
    } else {
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* The candidates: untried servers that are up, primaries first (backups
 * only when no primary qualifies). */
static size_t candidates(gh_upstream *up, const bool *tried, uint64_t now_ms,
                         gh_upserver **out, bool *any_untried)
{
    size_t n = 0;

    *any_untried = false;
    for (int backup = 0; backup <= 1 && n == 0; backup++) {
        for (size_t i = 0; i < up->nservers; i++) {
            gh_upserver *s = &up->servers[i];

            if (s->conf->backup != (backup == 1) || tried[i])
                continue;
            *any_untried = true;
            if (is_up(s, now_ms))
                out[n++] = s;
        }
    }
    return n;
}

gh_upserver *gh_upstream_pick(gh_upstream *up, const struct sockaddr *client,
                              const bool *tried, uint64_t now_ms, bool *every_down)
{
    gh_upserver *stack[64], **cand = stack, *best = NULL;
    size_t n;
    bool any_untried;
    int64_t total = 0;

    *every_down = false;
    if (up->nservers > 64 && (cand = malloc(up->nservers * sizeof(*cand))) == NULL)
        return NULL;
    n = candidates(up, tried, now_ms, cand, &any_untried);
    if (n == 0) {
        *every_down = any_untried;
        goto out;
    }
    switch (up->conf->balance) {
    case GH_BALANCE_CLIENT_IP:
        best = cand[hash_addr(client) % n];
        break;
    case GH_BALANCE_LEAST_CONN:
        for (size_t i = 0; i < n; i++) {
            /* fewest active per unit of weight: a * wb < b * wa */
            if (best == NULL ||
                cand[i]->active * best->conf->weight < best->active * cand[i]->conf->weight)
                best = cand[i];
        }
        break;
    case GH_BALANCE_ROUND_ROBIN:
    default:
        for (size_t i = 0; i < n; i++) {
            cand[i]->current += cand[i]->conf->weight;
            total += cand[i]->conf->weight;
            if (best == NULL || cand[i]->current > best->current)
                best = cand[i];
        }
        best->current -= total;
        break;
    }
out:
    if (cand != stack)
        free(cand);
    return best;
}

void gh_upserver_failed(gh_upserver *s, uint64_t now_ms, gh_upfail why)
{
    const gh_upstream_conf *uc = s->up->conf;

    GH_STAT_ADD(s->failures[why], 1);
    if (uc->max_fails == 0)
        return;
    if (now_ms - s->window_ms >= uc->fail_timeout_ms) {
        s->window_ms = now_ms;
        s->fails = 0;
    }
    if (++s->fails >= uc->max_fails && is_up(s, now_ms)) {
        gh_upserver *shared = (gh_upserver *)s->hc_of;     /* this worker's or the first's */

        GH_STAT_SET(shared->down_until_ms, now_ms + uc->fail_timeout_ms);
        s->fails = 0;
        GH_LOG(GH_LOG_WARN, "upstream %s: server %s marked down for %llums "
               "(%llu failures)", uc->name, s->conf->address,
               (unsigned long long)uc->fail_timeout_ms, (unsigned long long)uc->max_fails);
    }
}

void gh_upserver_ok(gh_upserver *s)
{
    s->fails = 0;
}

/* ---- idle connections ---------------------------------------------------- */

static void idle_drop(gh_idle *i)
{
    struct bufferevent *bev = i->bev;

    idle_free(i);
    bufferevent_free(bev);
}

static void on_idle_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    idle_drop(arg);     /* an idle upstream does not speak first */
}

static void on_idle_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    idle_drop(arg);     /* EOF, an error, or keepalive_timeout */
}

struct bufferevent *gh_upserver_take_idle(gh_upserver *s)
{
    gh_idle *i = s->idle;
    struct bufferevent *bev;

    if (i == NULL)
        return NULL;
    bev = i->bev;
    idle_free(i);
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    bufferevent_set_timeouts(bev, NULL, NULL);
    return bev;
}

/* The end of a loop turn with more idle connections than keepalive: the
 * least recently used go (the list is newest first). */
static void on_trim(evutil_socket_t fd, short what, void *arg)
{
    gh_upserver *s = arg;
    gh_idle *last = s->idle;      /* the last one kept */

    (void)fd;
    (void)what;
    for (uint64_t n = 1; n < s->up->conf->keepalive && last != NULL; n++)
        last = last->next;
    while (last != NULL && last->next != NULL)
        idle_drop(last->next);
}

/* Arms s's trim for the end of the next turn; false when it cannot. */
static bool trim_later(gh_upserver *s, struct event_base *base)
{
    static const struct timeval now = { 0, 0 };

    if (s->trim == NULL && (s->trim = evtimer_new(base, on_trim, s)) == NULL)
        return false;
    return evtimer_pending(s->trim, NULL) || evtimer_add(s->trim, &now) == 0;
}

void gh_upserver_keep(gh_upserver *s, struct bufferevent *bev)
{
    const gh_upstream_conf *uc = s->up->conf;
    gh_idle *i = NULL;
    struct timeval tv = gh_units_timeval(uc->keepalive_timeout_ms);

    if (uc->keepalive == 0 ||
        (s->nidle >= uc->keepalive && !trim_later(s, bufferevent_get_base(bev))) ||
        evbuffer_get_length(bufferevent_get_input(bev)) > 0 ||
        evbuffer_get_length(bufferevent_get_output(bev)) > 0 ||
        (i = calloc(1, sizeof(*i))) == NULL) {
        bufferevent_free(bev);
        return;
    }
    i->srv = s;
    i->bev = bev;
    i->next = s->idle;
    if (s->idle != NULL)
        s->idle->prev = i;
    s->idle = i;
    GH_STAT_ADD(s->nidle, 1);
    bufferevent_set_timeouts(bev, &tv, NULL);
    bufferevent_setwatermark(bev, EV_READ, 0, 0);
    bufferevent_setcb(bev, on_idle_read, NULL, on_idle_event, i);
    bufferevent_enable(bev, EV_READ);
}

/* ---- active health ------------------------------------------------------
 * Every interval each server gets one request on a new connection:
 * GET path, Connection: close. A status within expect passes; anything
 * else (refused, timed out, another status, garbage) fails. fails failures
 * in a row mark the server down, passes passes in a row mark it up again;
 * each change is one warn line. */

static void hc_done(gh_upserver *s, bool pass, const char *why)
{
    const gh_upstream_conf *uc = s->up->conf;

    if (s->hc_bev != NULL) {
        bufferevent_free(s->hc_bev);
        s->hc_bev = NULL;
    }
    GH_STAT_ADD(s->hc_checks, 1);
    if (pass) {
        s->hc_fails = 0;
        if (s->hc_down && ++s->hc_passes >= uc->health_passes) {
            __atomic_store_n(&s->hc_down, false, __ATOMIC_RELAXED);
            s->hc_passes = 0;
            GH_LOG(GH_LOG_WARN, "upstream %s: server %s is up (health checks pass)",
                   uc->name, s->conf->address);
        }
        return;
    }
    s->hc_passes = 0;
    if (!s->hc_down && ++s->hc_fails >= uc->health_fails) {
        __atomic_store_n(&s->hc_down, true, __ATOMIC_RELAXED);
        s->hc_fails = 0;
        GH_LOG(GH_LOG_WARN, "upstream %s: server %s marked down by health checks: %s",
               uc->name, s->conf->address, why);
    }
}

static void on_hc_read(struct bufferevent *bev, void *arg)
{
    gh_upserver *s = arg;
    const gh_upstream_conf *uc = s->up->conf;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in), want = len < 16384 ? len : 16384;
    const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)want);
    gh_http1_resp_head h;
    long n = p != NULL ? gh_http1_parse_response_head(p, want, 16384, &h) : GH_ENOMEM;
    char why[64];

    if (n == GH_EAGAIN)
        return;
    if (n < 0) {
        hc_done(s, false, "a bad response");
        return;
    }
    snprintf(why, sizeof(why), "status %d", h.status);
    hc_done(s, h.status >= uc->health_expect_lo && h.status <= uc->health_expect_hi, why);
}

static void on_hc_event(struct bufferevent *bev, short what, void *arg)
{
    gh_upserver *s = arg;
    const gh_upstream_conf *uc = s->up->conf;

    if (what & BEV_EVENT_CONNECTED) {
        evbuffer_add_printf(bufferevent_get_output(bev),
                            "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gatehouse-health\r\n"
                            "Connection: close\r\n\r\n",
                            uc->health_path != NULL ? uc->health_path : "/",
                            s->conf->addr.sa.sa_family == AF_UNIX ? "localhost" : s->conf->address);
        bufferevent_enable(bev, EV_READ | EV_WRITE);
        return;
    }
    hc_done(s, false, (what & BEV_EVENT_TIMEOUT) ? "timed out"
                      : (what & BEV_EVENT_EOF) ? "closed without answering"
                      : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void on_hc_timer(evutil_socket_t fd, short what, void *arg)
{
    gh_upserver *s = arg;
    const gh_upstream_conf *uc = s->up->conf;
    struct timeval tv = gh_units_timeval(uc->health_timeout_ms);
    struct event_base *base = event_get_base(s->hc_timer);

    (void)fd;
    (void)what;
    if (s->hc_bev != NULL)
        hc_done(s, false, "timed out");     /* still going: cannot happen with timeout < interval */
    s->hc_bev = gh_upserver_bev_new(s, base);
    if (s->hc_bev == NULL)
        return;
    bufferevent_setcb(s->hc_bev, on_hc_read, NULL, on_hc_event, s);
    bufferevent_set_timeouts(s->hc_bev, &tv, &tv);
    if (bufferevent_socket_connect(s->hc_bev, &s->conf->addr.sa, (int)s->conf->addrlen) != 0)
        hc_done(s, false, strerror(errno));
}

void gh_upstreams_follow(gh_upstreams *u, const gh_upstreams *leader)
{
    for (size_t i = 0; i < u->nups; i++)
        for (size_t j = 0; j < u->ups[i].nservers; j++)
            u->ups[i].servers[j].hc_of = &leader->ups[i].servers[j];
}

int gh_upstreams_start(gh_upstreams *u, struct event_base *base)
{
    if (u == NULL)
        return GH_OK;
    for (size_t i = 0; i < u->nups; i++) {
        gh_upstream *up = &u->ups[i];
        struct timeval tv = gh_units_timeval(up->conf->health_interval_ms);

        if (!up->conf->health || (up->nservers > 0 && up->servers[0].hc_of != &up->servers[0]))
            continue;           /* none, or a follower's */
        for (size_t j = 0; j < up->nservers; j++) {
            gh_upserver *s = &up->servers[j];

            if (s->hc_timer != NULL)
                continue;
            if ((s->hc_timer = event_new(base, -1, EV_PERSIST, on_hc_timer, s)) == NULL ||
                event_add(s->hc_timer, &tv) != 0)
                return GH_ENOMEM;
            event_active(s->hc_timer, EV_TIMEOUT, 0);   /* the first check now */
        }
    }
    return GH_OK;
}

void gh_upstreams_stop(gh_upstreams *u)
{
    if (u == NULL)
        return;
    for (size_t i = 0; i < u->nups; i++) {
        for (size_t j = 0; j < u->ups[i].nservers; j++) {
            gh_upserver *s = &u->ups[i].servers[j];

            if (s->hc_timer != NULL) {
                event_free(s->hc_timer);
                s->hc_timer = NULL;
            }
            if (s->hc_bev != NULL) {
                bufferevent_free(s->hc_bev);
                s->hc_bev = NULL;
            }
        }
    }
}

/* ---- metrics --------------------------------------------------------------- */

static const uint64_t bucket_ms[GH_UP_BUCKETS] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
};

void gh_upstream_observe(gh_upserver *s, uint64_t ms)
{
    gh_upstream *up = s->up;
    size_t i = 0;

    while (i < GH_UP_BUCKETS && ms > bucket_ms[i])
        i++;
    GH_STAT_ADD(up->hist[i], 1);
    GH_STAT_ADD(up->hist_count, 1);
    GH_STAT_ADD(up->hist_sum_ms, ms);
    /* two multiplications per response: cheap enough to keep per server;
     * this worker's alone, read by any (relaxed atomics, as the counters) */
    {
        uint64_t n = GH_STAT_GET(s->timed);
        double avg;

        __atomic_load(&s->latency_ms, &avg, __ATOMIC_RELAXED);
        avg = n == 0 ? (double)ms : avg + ((double)ms - avg) / 8.0;
        __atomic_store(&s->latency_ms, &avg, __ATOMIC_RELAXED);
        GH_STAT_SET(s->timed, n + 1);
    }
}

static void labels(gh_promtext *t, const gh_upstream *up, const gh_upserver *s)
{
    gh_promtext_put(t, "{upstream=\"");
    gh_promtext_label(t, up->conf->name);
    if (s != NULL) {
        gh_promtext_put(t, "\",server=\"");
        gh_promtext_label(t, s->conf->address);
    }
    gh_promtext_put(t, "\"");
}

size_t gh_upstreams_count(const gh_upstreams *u)
{
    return u != NULL ? u->nups : 0;
}

void gh_upserver_sum_of(gh_site *site, size_t i, size_t j, uint64_t now_ms,
                        gh_upserver_sum *out)
{
    double weighted = 0;

    memset(out, 0, sizeof(*out));
    out->up = true;
    for (unsigned w = 0; w < site->nworkers; w++) {
        const gh_upserver *s;
        uint64_t timed;
        double avg;

        if (site->upstreams[w] == NULL)
            continue;
        s = &site->upstreams[w]->ups[i].servers[j];
        out->requests += GH_STAT_GET(s->requests);
        for (int k = 0; k < 6; k++)
            out->responses[k] += GH_STAT_GET(s->responses[k]);
        for (int k = 0; k < GH_UPFAIL_COUNT; k++)
            out->failures[k] += GH_STAT_GET(s->failures[k]);
        out->active += GH_STAT_GET(s->active);
        out->idle += GH_STAT_GET(s->nidle);
        out->up = out->up && is_up(s, now_ms);
        out->hc_down = out->hc_down || __atomic_load_n(&s->hc_of->hc_down, __ATOMIC_RELAXED);
        /* each worker's average, weighing as many as the responses it took
         * in (read apart: a response in between moves one, not both) */
        timed = GH_STAT_GET(s->timed);
        __atomic_load(&s->latency_ms, &avg, __ATOMIC_RELAXED);
        out->timed += timed;
        weighted += avg * (double)timed;
    }
    out->latency_ms = out->timed > 0 ? weighted / (double)out->timed : 0;
}

void gh_upstreams_metrics(gh_loop *loop, gh_site *site, gh_promtext *t)
{
    static const char *classes[] = { "", "1xx", "2xx", "3xx", "4xx", "5xx" };
    static const char *reasons[GH_UPFAIL_COUNT] = {
        [GH_UPFAIL_CONNECT] = "connect", [GH_UPFAIL_CONNECT_TIMEOUT] = "connect_timeout",
        [GH_UPFAIL_TIMEOUT] = "timeout", [GH_UPFAIL_CLOSED] = "closed",
        [GH_UPFAIL_BAD_RESPONSE] = "bad_response",
    };
    gh_upstreams *u = site->upstreams != NULL ? site->upstreams[0] : NULL;
    uint64_t now = gh_now_ms();
    gh_upserver_sum m;

    (void)loop;
    if (u == NULL || u->nups == 0)
        return;
#define EACH_SERVER(body)                                               \
    for (size_t i = 0; i < u->nups; i++)                                \
        for (size_t j = 0; j < u->ups[i].nservers; j++) {               \
            const gh_upstream *up = &u->ups[i];                         \
            const gh_upserver *s = &up->servers[j];                     \
            gh_upserver_sum_of(site, i, j, now, &m);                    \
            body                                                        \
        }
    gh_promtext_head(t, "upstream_requests_total", "counter",
                     "Requests sent to upstream servers (retries count again).");
    EACH_SERVER(gh_promtext_put(t, "gatehouse_upstream_requests_total"); labels(t, up, s);
                gh_promtext_put(t, "} %llu\n", (unsigned long long)m.requests);)
    gh_promtext_head(t, "upstream_responses_total", "counter",
                     "Responses from upstream servers, by status class.");
    EACH_SERVER(for (int k = 1; k <= 5; k++) {
                    gh_promtext_put(t, "gatehouse_upstream_responses_total"); labels(t, up, s);
                    gh_promtext_put(t, ",class=\"%s\"} %llu\n", classes[k],
                                    (unsigned long long)m.responses[k]);
                })
    gh_promtext_head(t, "upstream_failures_total", "counter",
                     "Failed requests on upstream servers, by reason.");
    EACH_SERVER(for (int k = 0; k < GH_UPFAIL_COUNT; k++) {
                    gh_promtext_put(t, "gatehouse_upstream_failures_total"); labels(t, up, s);
                    gh_promtext_put(t, ",reason=\"%s\"} %llu\n", reasons[k],
                                    (unsigned long long)m.failures[k]);
                })
    gh_promtext_head(t, "upstream_connections", "gauge",
                     "Connections to upstream servers: in use by a request, or idle in the pool.");
    EACH_SERVER(gh_promtext_put(t, "gatehouse_upstream_connections"); labels(t, up, s);
                gh_promtext_put(t, ",state=\"active\"} %llu\n", (unsigned long long)m.active);
                gh_promtext_put(t, "gatehouse_upstream_connections"); labels(t, up, s);
                gh_promtext_put(t, ",state=\"idle\"} %llu\n", (unsigned long long)m.idle);)
    gh_promtext_head(t, "upstream_up", "gauge",
                     "1 unless passive health (on any worker) or the health checks have "
                     "marked the server down.");
    EACH_SERVER(gh_promtext_put(t, "gatehouse_upstream_up"); labels(t, up, s);
                gh_promtext_put(t, "} %d\n", m.up ? 1 : 0);)
    gh_promtext_head(t, "upstream_latency_seconds", "gauge",
                     "Moving average of the time from sending a request to a server to its "
                     "response head (each response weighs 1/8; with workers, each worker's "
                     "average weighs as many responses as it took); absent before the first.");
    EACH_SERVER(if (m.timed > 0) {
                    gh_promtext_put(t, "gatehouse_upstream_latency_seconds"); labels(t, up, s);
                    gh_promtext_put(t, "} %.6f\n", m.latency_ms / 1000.0);
                })
#undef EACH_SERVER
    gh_promtext_head(t, "upstream_response_seconds", "histogram",
                     "Time from sending a request upstream to its response head.");
    for (size_t i = 0; i < u->nups; i++) {
        const gh_upstream *up = &u->ups[i];
        uint64_t cum = 0, count = 0, sum_ms = 0;

        for (size_t k = 0; k <= GH_UP_BUCKETS; k++) {
            for (unsigned w = 0; w < site->nworkers; w++)
                if (site->upstreams[w] != NULL)
                    cum += GH_STAT_GET(site->upstreams[w]->ups[i].hist[k]);
            gh_promtext_put(t, "gatehouse_upstream_response_seconds_bucket");
            labels(t, up, NULL);
            if (k < GH_UP_BUCKETS)
                gh_promtext_put(t, ",le=\"%g\"} %llu\n", (double)bucket_ms[k] / 1000.0,
                                (unsigned long long)cum);
            else
                gh_promtext_put(t, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        for (unsigned w = 0; w < site->nworkers; w++) {
            if (site->upstreams[w] == NULL)
                continue;
            count += GH_STAT_GET(site->upstreams[w]->ups[i].hist_count);
            sum_ms += GH_STAT_GET(site->upstreams[w]->ups[i].hist_sum_ms);
        }
        gh_promtext_put(t, "gatehouse_upstream_response_seconds_sum");
        labels(t, up, NULL);
        gh_promtext_put(t, "} %.3f\n", (double)sum_ms / 1000.0);
        gh_promtext_put(t, "gatehouse_upstream_response_seconds_count");
        labels(t, up, NULL);
        gh_promtext_put(t, "} %llu\n", (unsigned long long)count);
    }
}
