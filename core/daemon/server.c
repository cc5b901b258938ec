/* server.c: the daemon's runtime: the workers (one event loop each),
 * listeners, the connection limit, signals, reload and the drain.
 *
 * workers: N runs N event loops in one process: worker 0 on the main
 * thread (it also takes the signals, reloads and trims memory), the others
 * on threads of their own. Each worker accepts on its own socket of every
 * listener (SO_REUSEPORT: the kernel spreads new connections over them)
 * and a connection lives on the worker that accepted it, from accept to
 * close. What workers share is read-only or atomic: the site (config, TLS
 * contexts, static roots; its reference count is atomic, and its plugin
 * instances, upstream pools and file cache have a part per worker, released
 * on that worker's thread), the counters (each worker writes its own; a
 * scrape adds them up), the per-client limits' table (its own mutex) and
 * the process's connection count. Anything else one worker needs of
 * another goes through the other's mailbox (gh_loop_post): a reload's new
 * site and sockets, the drain, a pause at the connection limit.
 *
 * The connection limits are enforced by disabling the listeners (the
 * kernel's backlog holds new clients) and enabling them again when a
 * connection closes: the process's (max_connections) for every listener
 * without a limit of its own, and a listener's own for it. EMFILE from
 * accept() pauses accepting briefly instead of spinning. Drain follows
 * DESIGN.md: health answers 503 first, then accepting stops, then open
 * connections finish their current response or are closed when
 * drain_timeout runs out. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "actions.h"
#include "bus.h"
#include "climit.h"
#include "conn.h"
#include "err.h"
#include "filecache.h"
#include "forward.h"
#include "hub.h"
#include "log.h"
#include "memtrim.h"
#include "notify.h"
#include "pmdeflate.h"
#include "pluginhost.h"
#include "pool.h"
#include "slab.h"
#include "status.h"
#include "tls.h"
#include "topic.h"
#include "tstate.h"
#include "units.h"
#include "wsconn.h"

/* fds kept back from the connection limit for logs, files being sent,
 * plugins and the listeners themselves */
#define FD_RESERVE 64

/* ---- site ------------------------------------------------------------ */

/* What the layers above http/ hung on a site (what workers have not
 * released already). */
static void site_free_upper(gh_site *s)
{
    gh_plugins_unload(s);
    for (unsigned w = 0; s->upstreams != NULL && w < s->nworkers; w++)
        gh_upstreams_free(s->upstreams[w]);
    free(s->upstreams);
    s->upstreams = NULL;
}

int gh_site_new(gh_config *cfg, unsigned nworkers, gh_errlist *errs, gh_site **out)
{
    gh_site *s = NULL;
    int rc = GH_ENOMEM;

    if ((s = calloc(1, sizeof(*s))) == NULL) {
        gh_config_free(cfg);
        return GH_ENOMEM;
    }
    s->refs = 1;
    s->nworkers = nworkers > 0 ? nworkers : 1;
    s->cfg = cfg;
    s->on_free = site_free_upper;
    if (cfg->nroutes > 0 && (s->root_fds = calloc(cfg->nroutes, sizeof(int))) == NULL)
        goto out;
    s->nroot_fds = cfg->nroutes;
    for (size_t i = 0; i < cfg->nroutes; i++)
        s->root_fds[i] = -1;
    rc = GH_OK;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const gh_route_conf *r = &cfg->routes[i];
        if (r->action != GH_ACTION_STATIC)
            continue;
        /* files up to 256 KiB, 64 MiB in all, per worker; without it, files
         * are read per request */
        if (s->filecache == NULL &&
            (s->filecache = calloc(s->nworkers, sizeof(*s->filecache))) != NULL)
            for (unsigned w = 0; w < s->nworkers; w++)
                s->filecache[w] = gh_filecache_new(256 * 1024, 64 * 1024 * 1024);
        s->root_fds[i] = open(r->u.stat.root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (s->root_fds[i] < 0)
            rc = gh_errlist_add(errs, r->loc.file, r->loc.line, r->loc.col,
                                "static: root %s: %s", r->u.stat.root, strerror(errno));
    }
    if ((s->tls_ctx = calloc(cfg->nlisteners, sizeof(*s->tls_ctx))) == NULL) {
        rc = GH_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        if (cfg->listeners[i].tls &&
            gh_tls_ctx_new(&cfg->listeners[i], errs, &s->tls_ctx[i]) != GH_OK)
            rc = GH_EINVAL;
    }
    if (cfg->nupstreams > 0) {
        gh_errlist quiet;

        if ((s->upstreams = calloc(s->nworkers, sizeof(*s->upstreams))) == NULL) {
            rc = GH_ENOMEM;
            goto out;
        }
        /* a pool per worker; the first reports the problems, the others
         * would repeat them */
        gh_errlist_init(&quiet);
        for (unsigned w = 0; w < s->nworkers; w++) {
            if ((rc = gh_upstreams_new(cfg, w == 0 ? errs : &quiet, &s->upstreams[w])) != GH_OK)
                break;
            if (w > 0)
                gh_upstreams_follow(s->upstreams[w], s->upstreams[0]);
        }
        gh_errlist_deinit(&quiet);
        if (rc != GH_OK)
            goto out;
    }
    /* plugins too, even after errors: -t reports everything at once */
    if (gh_plugins_load(s, s->nworkers, errs) != GH_OK && rc == GH_OK)
        rc = GH_EINVAL;
    if (rc != GH_OK)
        goto out;
    *out = s;
    s = NULL;
out:
    gh_site_unref(s);
    return rc;
}

/* ---- workers ----------------------------------------------------------- */

/* The connections counted against one limit: the process's
 * (max_connections), or one listening address's own
 * (listeners.max_connections: a health-check listener the balancer still
 * reaches when the process is full), shared by every worker's listener of
 * that address. The addresses' are a list of the server's, only appended
 * by worker 0 before it hands a generation out, and freed with it. */
typedef struct gh_places {
    struct gh_places       *next;
    struct sockaddr_storage addr;   /* none for the process's */
    socklen_t               addrlen;
    char                    name[64];   /* for logs */
    uint64_t                n;          /* open (atomic) */
    uint64_t                max;        /* 0: none (atomic: a reload sets it) */
    bool                    limited;    /* accepting paused at max (atomic) */
} gh_places;

typedef struct gh_worker {
    gh_loop        loop;            /* first: hooks and listeners point here */
    gh_server     *srv;
    pthread_t      thread;
    bool           thread_started;
    bool           accepting;       /* not stopping, no pause after EMFILE */
    bool           paused;          /* by the process's connection limit */
    bool           registered;      /* the connection being accepted was */
    struct held_conn *held;         /* accepted past the limit: served first on resume */
    size_t         nheld, heldcap;
    struct event  *accept_retry;    /* re-enables accepting after EMFILE */
    struct event  *drain_timer;
} gh_worker;

struct gh_server {
    gh_worker    **w;
    gh_loop      **loops;           /* the same, as each loop's peers */
    unsigned       nworkers;
    struct event  *sig_term, *sig_int, *sig_hup;   /* worker 0's */
    struct event  *trim_timer;      /* gives freed heap back after a burst (worker 0) */
    struct gh_climits *climits;     /* the per-client limits' table, shared */
    gh_hub        *hub;             /* topics across the workers (more than one) */
    gh_places      all;             /* the process's connections and max_connections */
    gh_places     *own;             /* listeners' own limits, by address (see above) */
    uint64_t       nofile;          /* the open-files limit after raising it */
    bool           threads;         /* worker threads run (or have not been joined) */
    unsigned       reload_acks;     /* workers yet to apply a reload (worker 0 only) */
    /* the last reload tried: written on worker 0, read by whichever worker
     * answers a scrape or a status feed, so under its own mutex (a copy of
     * a few hundred bytes, at most once per reload and per request) */
    pthread_mutex_t last_reload_mu;
    gh_reload_info  last_reload;
    int            exit_code;
};

static gh_worker *worker_of(gh_loop *loop)
{
    return (gh_worker *)((char *)loop - offsetof(gh_worker, loop));
}

/* Runs fn on worker w: now when that is this thread's, else posted. */
static void on_worker(gh_worker *me, gh_worker *w, gh_loop_task_fn fn, void *arg)
{
    if (w == me || !w->srv->threads) {
        fn(&w->loop, arg);
        return;
    }
    if (gh_loop_post(&w->loop, fn, arg) != GH_OK)
        GH_LOG(GH_LOG_ERROR, "worker %u: cannot reach worker %u: out of memory",
               me->loop.id, w->loop.id);
}

/* ---- accepting and the connection limits ------------------------------------ */

static gh_places *places_of(gh_server *srv, gh_listener *l, bool own)
{
    return own && l->places != NULL ? l->places : &srv->all;
}

/* Enables or disables each of w's listeners as its state asks: w accepts
 * (not stopping, no EMFILE pause) and the limit it counts against is not
 * reached. */
static void update_listeners(gh_worker *w)
{
    for (gh_listener *l = w->loop.listeners; l != NULL; l = l->next) {
        bool on = w->accepting && (l->own_limit ? !l->own_paused : !w->paused);

        if (l->evl == NULL || l->enabled == on)
            continue;
        l->enabled = on;
        if (on)
            evconnlistener_enable(l->evl);
        else
            evconnlistener_disable(l->evl);
    }
}

static void set_accepting(gh_worker *w, bool on)
{
    w->accepting = on;
    update_listeners(w);
}

static void resume_if_free(gh_worker *w)
{
    if (!w->loop.stopping && !evtimer_pending(w->accept_retry, NULL))
        set_accepting(w, true);
}

/* A socket accepted past a connection limit (two workers accepting at the
 * same moment): held, unread, until a place frees. */
typedef struct held_conn {
    gh_listener *l;
    int          fd;
    int          salen;
    bool         own;           /* counted against l's own limit */
    gh_sockaddr  sa;
} held_conn;

/* Sets w's pause flag of p's listeners (the process's: every listener
 * without a limit of its own). */
static void set_paused(gh_worker *w, gh_places *p, bool paused)
{
    if (p == &w->srv->all)
        w->paused = paused;
    for (gh_listener *l = w->loop.listeners; p != &w->srv->all && l != NULL; l = l->next)
        if (l->places == p)
            l->own_paused = paused;
    update_listeners(w);
}

/* Pauses and resumes reach a worker through its mailbox, behind whatever
 * was posted before, so one may come after the state it was posted for
 * has passed: a pause posted when a worker took the last place, run after
 * a close freed one (whose resume ran first) would leave that worker's
 * listeners off with nobody left to turn them on. Each acts only if the
 * limit is still (or no longer) reached when it runs; a later change posts
 * its own. */
static void task_pause(gh_loop *loop, void *arg)
{
    gh_places *p = arg;

    if (__atomic_load_n(&p->limited, __ATOMIC_ACQUIRE))
        set_paused(worker_of(loop), p, true);
}

/* Every worker stops accepting on p's listeners; the first to see the
 * limit logs it. */
static void pause_all(gh_worker *w, gh_places *p, uint64_t n)
{
    gh_server *srv = w->srv;
    bool was = false;

    if (!__atomic_compare_exchange_n(&p->limited, &was, true, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return;
    if (p == &srv->all)
        GH_LOG(GH_LOG_WARN, "%llu connections open: the limit; not accepting until one closes",
               (unsigned long long)n);
    else
        GH_LOG(GH_LOG_WARN, "listener %s: %llu connections open: its limit; not accepting "
               "there until one closes", p->name, (unsigned long long)n);
    for (unsigned i = 0; i < srv->nworkers; i++)
        on_worker(w, srv->w[i], task_pause, p);
}

static void task_resume(gh_loop *loop, void *arg);

/* Every worker resumes accepting on p's listeners (and serves what it
 * held), through its mailbox, when p's limit was on. */
static void resume_all_later(gh_worker *w, gh_places *p)
{
    gh_server *srv = w->srv;
    bool was = true;

    if (!__atomic_compare_exchange_n(&p->limited, &was, false, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return;
    for (unsigned i = 0; i < srv->nworkers; i++)
        if (gh_loop_post(&srv->w[i]->loop, task_resume, p) != GH_OK)
            GH_LOG(GH_LOG_ERROR, "worker %u: cannot resume worker %u: out of memory",
                   w->loop.id, i);
}

/* Takes a place for a new connection of l: in l's own count when l has a
 * limit of its own, else in the process's. A limit counts every worker's
 * connections, and a place is taken before a connection is served, so
 * that it is never passed: one taken past it is given back (the caller
 * holds the socket). Reaching it pauses every worker's listeners of it. */
static bool take_place(gh_worker *w, gh_listener *l, bool own)
{
    gh_places *p = places_of(w->srv, l, own);
    uint64_t n = __atomic_add_fetch(&p->n, 1, __ATOMIC_ACQ_REL);
    uint64_t max = __atomic_load_n(&p->max, __ATOMIC_RELAXED);

    if (max != 0 && n > max) {
        n = __atomic_sub_fetch(&p->n, 1, __ATOMIC_ACQ_REL);
        pause_all(w, p, max);
        /* a close that overlapped this trial saw the count at the limit
         * and resumed no one: with a place free now, resume them all
         * (posted, also to this worker: it holds the socket first) */
        if (n < max)
            resume_all_later(w, p);
        return false;
    }
    if (max != 0 && n == max)
        pause_all(w, p, n);
    return true;
}

static void serve(gh_worker *w, gh_listener *l, bool own, int fd, const struct sockaddr *sa,
                  int salen)
{
    w->registered = false;
    gh_conn_accept(l, fd, sa, salen);
    if (!w->registered)         /* never made: its place back */
        __atomic_sub_fetch(&places_of(w->srv, l, own)->n, 1, __ATOMIC_ACQ_REL);
}

static void hold(gh_worker *w, gh_listener *l, bool own, int fd, const struct sockaddr *sa,
                 int salen)
{
    if (w->nheld == w->heldcap) {
        size_t cap = w->heldcap ? w->heldcap * 2 : 4;
        held_conn *h = realloc(w->held, cap * sizeof(*h));
        if (h == NULL) {
            evutil_closesocket(fd);
            return;
        }
        w->held = h;
        w->heldcap = cap;
    }
    w->held[w->nheld] = (held_conn){ .l = l, .fd = fd, .salen = salen, .own = own };
    if (salen > 0 && (size_t)salen <= sizeof(w->held[w->nheld].sa))
        memcpy(&w->held[w->nheld].sa, sa, (size_t)salen);
    else
        w->held[w->nheld].salen = 0;
    w->nheld++;
}

static void close_held(gh_worker *w)
{
    for (size_t i = 0; i < w->nheld; i++)
        evutil_closesocket(w->held[i].fd);
    w->nheld = 0;
}

static void task_resume(gh_loop *loop, void *arg)
{
    gh_worker *w = worker_of(loop);
    gh_places *p = arg;
    size_t i, kept = 0;
    bool left = false;

    /* first the sockets of p held past the limit, in the order they came;
     * the others stay as they are */
    for (i = 0; i < w->nheld; i++) {
        held_conn h = w->held[i];

        if (places_of(w->srv, h.l, h.own) != p || loop->stopping || left ||
            !take_place(w, h.l, h.own)) {
            left = left || places_of(w->srv, h.l, h.own) == p;
            w->held[kept++] = h;
            continue;
        }
        serve(w, h.l, h.own, h.fd, &h.sa.sa, h.salen);
    }
    w->nheld = kept;
    /* with some of p's still held, p is full again (take_place paused it);
     * so it is when serving the held ones took the last place */
    if (!left && !__atomic_load_n(&p->limited, __ATOMIC_ACQUIRE))
        set_paused(w, p, false);
}

static void on_conn_added(gh_loop *loop)
{
    worker_of(loop)->registered = true;      /* its place was taken in on_accept */
}

static void on_conn_removed(gh_loop *loop, gh_listener *l, bool own)
{
    gh_worker *w = worker_of(loop);
    gh_server *srv = w->srv;
    gh_places *p = places_of(srv, l, own);
    uint64_t n = __atomic_sub_fetch(&p->n, 1, __ATOMIC_ACQ_REL);
    bool was = true;

    if (loop->stopping) {
        if (gh_loop_is_empty(loop))
            event_base_loopbreak(loop->base);
        return;
    }
    if ((n >= __atomic_load_n(&p->max, __ATOMIC_RELAXED) &&
         __atomic_load_n(&p->max, __ATOMIC_RELAXED) != 0) ||
        !__atomic_compare_exchange_n(&p->limited, &was, false, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return;
    for (unsigned i = 0; i < srv->nworkers; i++)
        on_worker(w, srv->w[i], task_resume, p);
}

/* A connection went to another worker (gh_conn_move()) with its places. */
static void on_conn_left(gh_loop *loop)
{
    if (loop->stopping && gh_loop_is_empty(loop))
        event_base_loopbreak(loop->base);
}

/* The places of lc's address, made when there are none yet, with lc's
 * limit (0: none) set; NULL when out of memory. On worker 0, before the
 * generation of lc is handed out. */
static gh_places *places_for(gh_server *srv, const gh_listener_conf *lc)
{
    gh_places *p;

    for (p = srv->own; p != NULL; p = p->next)
        if (p->addrlen == lc->addrlen && memcmp(&p->addr, &lc->addr, lc->addrlen) == 0)
            break;
    if (p == NULL) {
        if ((p = calloc(1, sizeof(*p))) == NULL)
            return NULL;
        memcpy(&p->addr, &lc->addr, lc->addrlen);
        p->addrlen = lc->addrlen;
        snprintf(p->name, sizeof(p->name), "%s", lc->listen);
        p->next = srv->own;
        __atomic_store_n(&srv->own, p, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&p->max, lc->max_connections, __ATOMIC_RELAXED);
    return p;
}

/* Every listener's own limit of cfg, before its generation is handed out:
 * 0 for the addresses that have none now. GH_ENOMEM when one could not be
 * made. */
static int set_own_limits(gh_server *srv, const gh_config *cfg)
{
    for (gh_places *p = srv->own; p != NULL; p = p->next) {
        uint64_t max = 0;

        for (size_t i = 0; i < cfg->nlisteners; i++)
            if (p->addrlen == cfg->listeners[i].addrlen &&
                memcmp(&p->addr, &cfg->listeners[i].addr, p->addrlen) == 0)
                max = cfg->listeners[i].max_connections;
        __atomic_store_n(&p->max, max, __ATOMIC_RELAXED);
    }
    for (size_t i = 0; i < cfg->nlisteners; i++)
        if (cfg->listeners[i].max_connections > 0 && places_for(srv, &cfg->listeners[i]) == NULL)
            return GH_ENOMEM;
    return GH_OK;
}

/* l's own limit in the generation cfg (l is listeners[index]): on l's
 * worker, before it accepts with it. */
static void listener_limit(gh_server *srv, gh_listener *l, const gh_config *cfg, size_t index)
{
    const gh_listener_conf *lc = &cfg->listeners[index];

    l->own_limit = lc->max_connections > 0;
    if (l->own_limit)
        for (gh_places *p = __atomic_load_n(&srv->own, __ATOMIC_ACQUIRE); p != NULL;
             p = p->next)
            if (p->addrlen == lc->addrlen && memcmp(&p->addr, &lc->addr, lc->addrlen) == 0)
                l->places = p;
    l->own_limit = l->own_limit && l->places != NULL;
}

static uint64_t open_total(gh_server *srv)
{
    uint64_t n = __atomic_load_n(&srv->all.n, __ATOMIC_ACQUIRE);

    for (gh_places *p = __atomic_load_n(&srv->own, __ATOMIC_ACQUIRE); p != NULL; p = p->next)
        n += __atomic_load_n(&p->n, __ATOMIC_ACQUIRE);
    return n;
}

/* What each route action does; every handler answers the request. A new
 * action adds its line here and its key table to config/. */
static const gh_action_fn actions[] = {
    [GH_ACTION_STATIC] = gh_action_static,
    [GH_ACTION_HEALTH] = gh_action_health,
    [GH_ACTION_REDIRECT_HTTPS] = gh_action_redirect,
    [GH_ACTION_METRICS] = gh_action_metrics,
    [GH_ACTION_WEBSOCKET] = gh_action_websocket,
    [GH_ACTION_PROXY] = gh_action_proxy,
    [GH_ACTION_STATUS] = gh_action_status,
};

/* ---- listeners --------------------------------------------------------- */

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
    gh_listener *l = arg;
    gh_worker *w = worker_of(l->loop);

    (void)evl;
    if (l->loop->stopping) {
        evutil_closesocket(fd);
        return;
    }
    if (!take_place(w, l, l->own_limit)) {
        hold(w, l, l->own_limit, fd, sa, salen);
        return;
    }
    serve(w, l, l->own_limit, fd, sa, salen);
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    gh_worker *w = arg;

    (void)fd;
    (void)what;
    resume_if_free(w);
}

static void on_accept_error(struct evconnlistener *evl, void *arg)
{
    gh_listener *l = arg;
    gh_worker *w = worker_of(l->loop);
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval tv = { .tv_sec = 0, .tv_usec = 100 * 1000 };

    (void)evl;
    /* EMFILE/ENFILE/ENOBUFS: pause instead of spinning on a full table */
    GH_LOG(GH_LOG_WARN, "listener %s: accept: %s; pausing accepts for 100ms",
           l->name, evutil_socket_error_to_string(err));
    set_accepting(w, false);
    evtimer_add(w->accept_retry, &tv);
}

/* A socket bound to lc's address (not listening yet), or -1 with errno.
 * With several workers each binds its own with SO_REUSEPORT. */
static int bind_socket(const gh_listener_conf *lc, bool reuseport)
{
    int one = 1, fd, e;

    fd = socket(((const struct sockaddr *)&lc->addr)->sa_family,
                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
        bind(fd, (const struct sockaddr *)&lc->addr, (socklen_t)lc->addrlen) != 0) {
        e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Makes worker w's listener index of cfg on fd (taken over in every
 * case): it listens from here on. NULL (logged) on failure. */
static gh_listener *listener_on(gh_worker *w, const gh_config *cfg, size_t index, int fd)
{
    const gh_listener_conf *lc = &cfg->listeners[index];
    gh_listener *l = calloc(1, sizeof(*l));

    if (l == NULL || (l->name = strdup(lc->listen)) == NULL) {
        free(l);
        close(fd);
        GH_LOG(GH_LOG_ERROR, "listen %s: out of memory", lc->listen);
        return NULL;
    }
    l->loop = &w->loop;
    l->index = index;
    l->evl = evconnlistener_new(w->loop.base, on_accept, l,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 1024, fd);
    if (l->evl == NULL) {
        int e = errno;

        GH_LOG(GH_LOG_ERROR, "%s:%d:%d: listen %s: %s", lc->loc.file, lc->loc.line,
               lc->loc.col, lc->listen, strerror(e));
        close(fd);
        free(l->name);
        free(l);
        errno = e;
        return NULL;
    }
    evconnlistener_set_error_cb(l->evl, on_accept_error);
    l->enabled = true;
    listener_limit(w->srv, l, cfg, index);
    l->own_paused = l->own_limit && __atomic_load_n(&l->places->limited, __ATOMIC_ACQUIRE);
    update_listeners(w);
    return l;
}

static void free_listener(gh_listener *l)
{
    if (l->evl != NULL)
        evconnlistener_free(l->evl);
    free(l->name);
    free(l);
}

/* Binds a socket of lc for every worker into fds[0..n) (all or none).
 * Returns 0, or -1 with errno having logged why at lc's location. */
static int bind_all(gh_server *srv, const gh_listener_conf *lc, int *fds)
{
    for (unsigned i = 0; i < srv->nworkers; i++) {
        if ((fds[i] = bind_socket(lc, srv->nworkers > 1)) < 0) {
            int e = errno;

            GH_LOG(GH_LOG_ERROR, "%s:%d:%d: listen %s: %s", lc->loc.file, lc->loc.line,
                   lc->loc.col, lc->listen, strerror(e));
            while (i-- > 0)
                close(fds[i]);
            errno = e;
            return -1;
        }
    }
    return 0;
}

static void close_listeners(gh_worker *w)
{
    for (gh_listener *l = w->loop.listeners; l != NULL; l = l->next) {
        if (l->evl != NULL) {
            evconnlistener_free(l->evl);
            l->evl = NULL;
        }
    }
    w->accepting = false;
}

/* Appends l to w's listener list. Other workers' scrapes walk the list
 * (metrics), so the link is published with a release store; listeners are
 * only ever appended, and freed with the server. */
static void listener_append(gh_worker *w, gh_listener *l)
{
    gh_listener **pp = &w->loop.listeners;

    while (*pp != NULL)
        pp = &(*pp)->next;
    __atomic_store_n(pp, l, __ATOMIC_RELEASE);
}

static bool same_addr(const gh_listener_conf *a, const gh_listener_conf *b)
{
    return a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

static unsigned port_of(const gh_listener_conf *lc)
{
    const struct sockaddr *sa = (const struct sockaddr *)&lc->addr;

    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

/* user: and group: take effect at start only: the process dropped root (or
 * never had it), so a reload cannot switch to another identity. */
static bool same_identity(const gh_config *a, const gh_config *b)
{
    if ((a->user == NULL) != (b->user == NULL))
        return false;
    return a->user == NULL || (a->uid == b->uid && a->gid == b->gid);
}

static uint64_t connection_limit(const gh_config *cfg, uint64_t nofile)
{
    uint64_t max = nofile > FD_RESERVE * 2 ? nofile - FD_RESERVE : nofile / 2;

    if (cfg->max_connections > 0) {
        if (cfg->max_connections > max)
            GH_LOG(GH_LOG_WARN, "max_connections %llu is above what the open-files limit "
                   "allows; using %llu", (unsigned long long)cfg->max_connections,
                   (unsigned long long)max);
        else
            max = cfg->max_connections;
    }
    return max;
}

/* An access log descriptor of path for one worker (-1: off, or cannot
 * open, logged). Each worker writes its own descriptor of the file, one
 * write per line (O_APPEND), so lines never mix. */
static int open_access_log(const char *path)
{
    int fd;

    if (path == NULL)
        return -1;
    if (strcmp(path, "stderr") == 0)
        return fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) < 0)
        GH_LOG(GH_LOG_ERROR, "access log %s: %s", path, strerror(errno));
    return fd;
}

/* The result of a reload, for metrics and the status page: when, and the
 * first error of a refused one (errs may be NULL or empty: a listener that
 * could not be bound is only logged). On worker 0. */
static void note_reload(gh_server *srv, const gh_errlist *errs, bool ok)
{
    gh_stats *st = &srv->w[0]->loop.stats;
    struct timespec ts;

    GH_STAT_ADD(*(ok ? &st->reloads_ok : &st->reloads_failed), 1);
    clock_gettime(CLOCK_REALTIME, &ts);
    pthread_mutex_lock(&srv->last_reload_mu);
    srv->last_reload.time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    srv->last_reload.failed = !ok;
    snprintf(srv->last_reload.error, sizeof(srv->last_reload.error), "%s",
             ok ? "" : errs != NULL && errs->n > 0 ? errs->items[0]
                                                 : "refused: see the error log");
    pthread_mutex_unlock(&srv->last_reload_mu);
}

/* gh_loop.last_reload: any worker's copy of the record. */
static void last_reload(gh_loop *loop, gh_reload_info *out)
{
    gh_server *srv = worker_of(loop)->srv;

    pthread_mutex_lock(&srv->last_reload_mu);
    *out = srv->last_reload;
    pthread_mutex_unlock(&srv->last_reload_mu);
}

/* The process's bus, on worker 0: its own with one worker, the hub's
 * (serving every worker) with several. */
static int bus_new(gh_worker *w0, const gh_bus_conf *conf)
{
    gh_hub *hub = w0->srv->hub;

    return hub != NULL ? gh_hub_bus_new(hub, conf, &w0->loop.bus)
                       : gh_bus_new(&w0->loop, conf, &w0->loop.bus);
}

static void bus_free(gh_worker *w0)
{
    if (w0->srv->hub != NULL)
        gh_hub_bus_free(w0->srv->hub, w0->loop.bus);
    else
        gh_bus_free(w0->loop.bus);
    w0->loop.bus = NULL;
}

/* A changed bus: section takes effect at once: the old connections are
 * closed and new ones made (live topics are subscribed again); equal
 * sections keep the connections. On worker 0. */
static void reload_bus(gh_worker *w, const gh_bus_conf *was, const gh_bus_conf *now)
{
    if (gh_bus_conf_equal(was, now))
        return;
    GH_LOG(GH_LOG_INFO, "reload: bus changed: %s", now->redis != NULL
           ? "reconnecting" : "topics are local only now");
    bus_free(w);
    if (now->redis != NULL && bus_new(w, now) != GH_OK)
        GH_LOG(GH_LOG_ERROR, "reload: bus: out of memory; topics are local only");
}

/* ---- sites across workers ---------------------------------------------------- */

/* A worker lets go of its parts of site s: its plugin instances (their
 * fini runs on their worker) and its upstream pools and file cache (their
 * events and buffers are its loop's). The last one destroys the site. */
static void task_release_part(gh_loop *loop, void *arg)
{
    gh_site *s = arg;
    unsigned id = loop->id;

    gh_plugins_unload_worker(s, id);
    if (s->upstreams != NULL) {
        gh_upstreams_free(s->upstreams[id]);
        s->upstreams[id] = NULL;
    }
    if (s->filecache != NULL) {
        gh_filecache_free(s->filecache[id]);
        s->filecache[id] = NULL;
    }
    if (__atomic_sub_fetch(&s->parts_left, 1, __ATOMIC_ACQ_REL) == 0)
        gh_site_destroy(s);
}

/* s's last reference went (on any worker). */
static void site_last(gh_site *s)
{
    gh_server *srv = s->owner;

    if (!srv->threads) {
        gh_site_destroy(s);     /* one thread: everything is here */
        return;
    }
    __atomic_store_n(&s->parts_left, srv->nworkers, __ATOMIC_RELEASE);
    for (unsigned i = 0; i < srv->nworkers; i++)
        if (gh_loop_post(&srv->w[i]->loop, task_release_part, s) != GH_OK)
            GH_LOG(GH_LOG_ERROR, "worker %u: cannot release a configuration generation: out "
                   "of memory (kept until exit)", i);
}

static void site_adopt(gh_server *srv, gh_site *s)
{
    s->on_last = site_last;
    s->owner = srv;
}

/* ---- reload ------------------------------------------------------------ */

/* What one worker needs to switch to a new generation. */
typedef struct reload_plan {
    gh_site  *site;             /* a reference for this worker */
    int      *fds;              /* per new listener: a bound socket, or -1 to keep */
    size_t    nfds;
    int       access_fd;        /* this worker's, or -1 */
    const char *access_path;    /* for a message when it could not be opened */
} reload_plan;

static void task_reload_done(gh_loop *loop, void *arg);

static void task_apply(gh_loop *loop, void *arg)
{
    reload_plan *p = arg;
    gh_worker *w = worker_of(loop);
    gh_site *old = loop->site, *site = p->site;
    const gh_config *ocfg = old->cfg, *cfg = site->cfg;
    gh_listener **map = calloc(cfg->nlisteners ? cfg->nlisteners : 1, sizeof(*map));
    gh_listener *l;

    /* the listeners that stay (by the old generation's indexes), then the
     * new ones on the sockets worker 0 bound */
    for (size_t i = 0; map != NULL && i < cfg->nlisteners; i++) {
        if (p->fds[i] >= 0)
            continue;
        for (l = loop->listeners; l != NULL; l = l->next)
            if (!l->retired && l->evl != NULL &&
                same_addr(&ocfg->listeners[l->index], &cfg->listeners[i]))
                map[i] = l;
    }
    for (size_t i = 0; map != NULL && i < cfg->nlisteners; i++) {
        if (p->fds[i] < 0)
            continue;
        if ((map[i] = listener_on(w, cfg, i, p->fds[i])) != NULL)
            listener_append(w, map[i]);
        p->fds[i] = -1;
    }
    /* retire the listeners the new config dropped */
    for (l = loop->listeners; map != NULL && l != NULL; l = l->next) {
        bool kept = false;
        for (size_t i = 0; i < cfg->nlisteners; i++)
            kept = kept || map[i] == l;
        if (!kept && !l->retired) {
            if (loop->id == 0)
                GH_LOG(GH_LOG_INFO, "reload: closing listener %s", l->name);
            if (l->evl != NULL)
                evconnlistener_free(l->evl);
            l->evl = NULL;
            __atomic_store_n(&l->retired, true, __ATOMIC_RELAXED);
        }
    }
    for (size_t i = 0; map != NULL && i < cfg->nlisteners; i++) {
        if (map[i] == NULL)
            continue;
        __atomic_store_n(&map[i]->index, i, __ATOMIC_RELAXED);
        listener_limit(w->srv, map[i], cfg, i);     /* its own limit may have changed */
        map[i]->own_paused = map[i]->own_limit &&
                             __atomic_load_n(&map[i]->places->limited, __ATOMIC_ACQUIRE);
    }
    update_listeners(w);
    free(map);
    for (size_t i = 0; i < p->nfds; i++)
        if (p->fds[i] >= 0)
            close(p->fds[i]);

    loop->site = site;
    gh_plugins_bind(site, loop);
    gh_upstreams_stop(old->upstreams != NULL ? old->upstreams[loop->id] : NULL);
    if (gh_upstreams_start(site->upstreams != NULL ? site->upstreams[loop->id] : NULL,
                           loop->base) != GH_OK)
        GH_LOG(GH_LOG_ERROR, "reload: upstream health checks: out of memory");
    if (loop->id == 0)
        reload_bus(w, &old->cfg->bus, &cfg->bus);
    gh_site_unref(old);           /* connections keep the old one alive */
    if (p->access_fd >= 0 || p->access_path == NULL) {
        if (loop->access_fd >= 0)
            close(loop->access_fd);
        loop->access_fd = p->access_fd;
    } else if (loop->id == 0) {
        /* the new one could not be opened (after the drop the user may not
         * write where root could): keep the file opened before */
        GH_LOG(GH_LOG_ERROR, "reload: access log %s: cannot open as uid %u; keeping the "
               "file opened before", p->access_path, (unsigned)geteuid());
    }
    free(p->fds);
    free(p);
    on_worker(w, w->srv->w[0], task_reload_done, NULL);
}

static void task_reload_done(gh_loop *loop, void *arg)
{
    gh_server *srv = worker_of(loop)->srv;

    (void)arg;
    if (srv->reload_acks == 0 || --srv->reload_acks > 0)
        return;
    /* every worker serves the new generation now */
    note_reload(srv, NULL, true);
    GH_LOG(GH_LOG_INFO, "reloaded %s", loop->site->cfg->path);
    gh_notify("READY=1\nSTATUS=serving");
}

int gh_server_reload(gh_server *srv)
{
    gh_worker *w0 = srv->w[0];
    const gh_config *ocfg = w0->loop.site->cfg;
    gh_errlist errs;
    gh_config *cfg = NULL;
    gh_site *site = NULL;
    int **fds = NULL;           /* [worker][listener] */
    int rc;

    if (srv->reload_acks > 0) {
        GH_LOG(GH_LOG_WARN, "reload refused: the previous one is still being applied");
        return GH_EINVAL;
    }
    gh_notify("RELOADING=1\nSTATUS=reloading");
    gh_errlist_init(&errs);
    rc = gh_config_load(ocfg->path, &cfg, &errs);
    if (rc == GH_OK && !same_identity(ocfg, cfg)) {
        rc = gh_errlist_add(&errs, cfg->path, cfg->user_loc.line, cfg->user_loc.col,
                            "user:/group: changed (running as uid %u gid %u): they take "
                            "effect at start only; restart gatehouse to apply them",
                            (unsigned)geteuid(), (unsigned)getegid());
    } else if (rc == GH_OK && cfg->workers > 0 && cfg->workers != srv->nworkers) {
        rc = gh_errlist_add(&errs, cfg->path, cfg->workers_loc.line, cfg->workers_loc.col,
                            "workers: %u, and %u run: the count takes effect at start only; "
                            "restart gatehouse to apply it", cfg->workers, srv->nworkers);
    }
    if (rc != GH_OK) {
        gh_config_free(cfg);
        cfg = NULL;
    }
    if (rc == GH_OK)
        rc = gh_site_new(cfg, srv->nworkers, &errs, &site);    /* takes cfg */
    if (rc != GH_OK) {
        if (errs.n == 0)
            gh_errlist_add(&errs, ocfg->path, 0, 0, "cannot load: %s", strerror(-rc));
        for (size_t i = 0; i < errs.n; i++)
            GH_LOG(GH_LOG_ERROR, "reload refused: %s", errs.items[i]);
        goto fail;
    }
    cfg = site->cfg;
    site_adopt(srv, site);

    /* sockets for the new listeners, every worker's, before anything
     * changes: a port that cannot be bound leaves everything as it was */
    if ((fds = calloc(srv->nworkers, sizeof(*fds))) == NULL) {
        rc = GH_ENOMEM;
        goto fail;
    }
    for (unsigned k = 0; k < srv->nworkers; k++) {
        if ((fds[k] = malloc((cfg->nlisteners ? cfg->nlisteners : 1) * sizeof(int))) == NULL) {
            rc = GH_ENOMEM;
            goto fail;
        }
        for (size_t i = 0; i < cfg->nlisteners; i++)
            fds[k][i] = -1;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        bool kept = false;
        int *col;

        for (gh_listener *l = w0->loop.listeners; l != NULL; l = l->next)
            kept = kept || (!l->retired && l->evl != NULL &&
                            same_addr(&ocfg->listeners[l->index], &cfg->listeners[i]));
        if (kept)
            continue;
        if ((col = malloc(srv->nworkers * sizeof(int))) == NULL) {
            rc = GH_ENOMEM;
            goto fail;
        }
        if (bind_all(srv, &cfg->listeners[i], col) != 0) {
            unsigned port = port_of(&cfg->listeners[i]);

            free(col);
            rc = GH_EINVAL;
            /* after the drop (or started non-root without the capability) a
             * port below 1024 is out of reach */
            if (errno == EACCES && port < 1024 && geteuid() != 0)
                GH_LOG(GH_LOG_ERROR, "reload refused: cannot listen on %s: port %u is "
                       "privileged (below 1024) and gatehouse runs as uid %u without "
                       "CAP_NET_BIND_SERVICE; restart gatehouse (as root) to listen on it",
                       cfg->listeners[i].listen, port, (unsigned)geteuid());
            else
                GH_LOG(GH_LOG_ERROR, "reload refused: cannot listen on %s",
                       cfg->listeners[i].listen);
            goto fail;
        }
        for (unsigned k = 0; k < srv->nworkers; k++)
            fds[k][i] = col[k];
        free(col);
    }

    gh_log_set_level((gh_log_level)cfg->log_level);
    if ((rc = gh_log_open(cfg->error_log)) != GH_OK)
        GH_LOG(GH_LOG_ERROR, "reload: error log %s: cannot open as uid %u: %s; keeping the "
               "file opened before", cfg->error_log, (unsigned)geteuid(), strerror(-rc));
    __atomic_store_n(&srv->all.max, connection_limit(cfg, srv->nofile), __ATOMIC_RELAXED);
    if (srv->hub != NULL)
        gh_hub_set_backlog(srv->hub, cfg->worker_backlog);
    if (set_own_limits(srv, cfg) != GH_OK)
        GH_LOG(GH_LOG_ERROR, "reload: listeners' own connection limits: out of memory; "
               "their connections count in the process's");
    /* hand it over: worker 0 now, the others through their mailboxes; the
     * last to apply it says "reloaded" */
    srv->reload_acks = srv->nworkers;
    for (unsigned k = srv->nworkers; k-- > 0;) {
        reload_plan *p = calloc(1, sizeof(*p));

        if (p == NULL) {
            GH_LOG(GH_LOG_ERROR, "reload: worker %u: out of memory; it keeps the previous "
                   "configuration", k);
            for (size_t i = 0; i < cfg->nlisteners; i++)
                if (fds[k][i] >= 0)
                    close(fds[k][i]);
            free(fds[k]);
            fds[k] = NULL;
            srv->reload_acks--;
            continue;
        }
        p->site = k == 0 ? site : gh_site_ref(site);
        p->fds = fds[k];
        p->nfds = cfg->nlisteners;
        fds[k] = NULL;
        p->access_path = cfg->access_log;
        p->access_fd = open_access_log(cfg->access_log);
        on_worker(w0, srv->w[k], task_apply, p);
    }
    site = NULL;
    free(fds);
    gh_errlist_deinit(&errs);
    return GH_OK;

fail:
    for (unsigned k = 0; fds != NULL && k < srv->nworkers; k++) {
        for (size_t i = 0; fds[k] != NULL && cfg != NULL && i < cfg->nlisteners; i++)
            if (fds[k][i] >= 0)
                close(fds[k][i]);
        free(fds[k]);
    }
    free(fds);
    gh_site_unref(site);
    note_reload(srv, &errs, false);
    gh_errlist_deinit(&errs);
    GH_LOG(GH_LOG_WARN, "reload failed: still serving the previous configuration");
    gh_notify("READY=1\nSTATUS=serving (last reload failed)");
    return rc == GH_OK ? GH_EINVAL : rc;
}

/* ---- signals and drain ------------------------------------------------- */

static void worker_drain(gh_worker *w);

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    gh_worker *w = arg;

    (void)fd;
    (void)what;
    if (!w->loop.stopping) {
        /* drain_delay is over: stop accepting and wind down */
        worker_drain(w);
        return;
    }
    GH_LOG(GH_LOG_WARN, "drain timeout: closing %llu connections still open%s",
           (unsigned long long)w->loop.nconns, w->srv->nworkers > 1 ? " on a worker" : "");
    event_base_loopbreak(w->loop.base);
}

static void stop_accepting(gh_worker *w)
{
    const gh_config *cfg = w->loop.site->cfg;
    struct timeval tv = gh_units_timeval(cfg->drain_timeout_ms);
    gh_conn *c, *next;

    w->loop.stopping = true;
    /* before looking at moves_in: a sender counts its move there before
     * it looks at this (seq_cst both), so either it sees this and answers
     * its request itself, or this loop sees its move and waits for it */
    __atomic_store_n(&w->loop.closed_to_moves, true, __ATOMIC_SEQ_CST);
    close_listeners(w);
    close_held(w);
    if (w->loop.id == 0)
        GH_LOG(GH_LOG_INFO, "draining: stopped accepting; %llu connections open",
               (unsigned long long)open_total(w->srv));
    for (c = w->loop.conns; c != NULL; c = next) {
        next = c->next;
        gh_conn_drain(c);
    }
    if (gh_loop_is_empty(&w->loop)) {
        event_base_loopbreak(w->loop.base);
        return;
    }
    evtimer_add(w->drain_timer, &tv);
}

static void worker_drain(gh_worker *w)
{
    const gh_config *cfg = w->loop.site->cfg;

    if (w->loop.stopping)
        return;
    if (!w->loop.draining) {
        w->loop.draining = true;
        if (cfg->drain_delay_ms > 0) {
            struct timeval tv = gh_units_timeval(cfg->drain_delay_ms);
            if (w->loop.id == 0)
                GH_LOG(GH_LOG_INFO, "draining: health answers 503; accepting for %llums more",
                       (unsigned long long)cfg->drain_delay_ms);
            evtimer_add(w->drain_timer, &tv);
            return;
        }
    }
    stop_accepting(w);
}

static void task_drain(gh_loop *loop, void *arg)
{
    (void)arg;
    worker_drain(worker_of(loop));
}

static void task_exit_now(gh_loop *loop, void *arg)
{
    (void)arg;
    loop->stopping = true;
    __atomic_store_n(&loop->closed_to_moves, true, __ATOMIC_SEQ_CST);
    event_base_loopbreak(loop->base);
}

void gh_server_drain(gh_server *srv)
{
    if (srv->w[0]->loop.draining || srv->w[0]->loop.stopping)
        return;
    gh_notify("STOPPING=1\nSTATUS=draining");
    for (unsigned i = srv->nworkers; i-- > 0;)
        on_worker(srv->w[0], srv->w[i], task_drain, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    gh_server *srv = arg;
    gh_worker *w0 = srv->w[0];

    (void)what;
    switch (sig) {
    case SIGTERM:
    case SIGINT:
        if (w0->loop.draining || w0->loop.stopping) {
            GH_LOG(GH_LOG_WARN, "second %s: exiting now", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            for (unsigned i = srv->nworkers; i-- > 0;)
                on_worker(w0, srv->w[i], task_exit_now, NULL);
            return;
        }
        GH_LOG(GH_LOG_INFO, "%s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        gh_server_drain(srv);
        break;
    case SIGHUP:
        if (w0->loop.stopping || w0->loop.draining) {
            GH_LOG(GH_LOG_WARN, "SIGHUP while draining: not reloading");
            break;
        }
        GH_LOG(GH_LOG_INFO, "SIGHUP: reloading %s", w0->loop.site->cfg->path);
        gh_server_reload(srv);
        break;
    default:
        break;
    }
}

/* ---- lifecycle --------------------------------------------------------- */

static uint64_t raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY ? (uint64_t)1 << 20 : (uint64_t)rl.rlim_cur;
}

/* Every TRIM_INTERVAL_S, freed heap beyond TRIM_MIN_FREE goes back to the
 * system (memtrim.h): after a fan-out burst to slow subscribers the process
 * does not sit at its high-water mark. */
#define TRIM_INTERVAL_S 5
#define TRIM_MIN_FREE   (16u * 1024 * 1024)

static void on_trim_timer(evutil_socket_t fd, short what, void *arg)
{
    gh_server *srv = arg;
    size_t held;

    (void)fd;
    (void)what;
    if (!gh_mem_trim(TRIM_MIN_FREE, &held, NULL))
        return;
    GH_STAT_ADD(srv->w[0]->loop.stats.mem_trims, 1);
    GH_LOG(GH_LOG_INFO, "memory: %zu MiB of freed heap held after a burst: given back to the "
           "system", held >> 20);
}

/* Worker id's loop and what only the daemon hangs on it. */
static int worker_new(gh_server *srv, unsigned id, gh_site *site, double start_time)
{
    gh_worker *w = calloc(1, sizeof(*w));
    int rc;

    if (w == NULL)
        return GH_ENOMEM;
    srv->w[id] = w;
    srv->loops[id] = &w->loop;
    w->srv = srv;
    w->loop.id = id;
    w->loop.peers = srv->loops;
    w->loop.npeers = srv->nworkers;
    w->loop.site = site;
    w->loop.access_fd = -1;
    w->loop.actions = actions;
    w->loop.nactions = sizeof(actions) / sizeof(actions[0]);
    w->loop.on_conn_added = on_conn_added;
    w->loop.on_conn_removed = on_conn_removed;
    w->loop.on_conn_left = on_conn_left;
    w->loop.metrics_more = gh_upstreams_metrics;
    w->loop.publishers_resume = gh_ws_publishers_resume;
    w->loop.last_reload = last_reload;
    w->loop.climits = &srv->climits;
    w->loop.stats.start_time = start_time;
    if ((w->loop.base = event_base_new()) == NULL ||
        (w->drain_timer = evtimer_new(w->loop.base, on_drain_timeout, w)) == NULL ||
        (w->accept_retry = evtimer_new(w->loop.base, on_accept_retry, w)) == NULL ||
        (rc = gh_loop_mailbox_new(&w->loop)) != GH_OK)
        return GH_ENOMEM;
    if ((rc = gh_topics_new(&w->loop, gh_ws_conn_send_msg)) != GH_OK ||
        (rc = gh_tstate_new(&w->loop)) != GH_OK)
        return rc;
    gh_plugins_bind(site, &w->loop);
    if ((rc = gh_upstreams_start(site->upstreams != NULL ? site->upstreams[id] : NULL,
                                 w->loop.base)) != GH_OK)
        return rc;
    w->accepting = true;
    return GH_OK;
}

int gh_server_new(gh_site *site, gh_server **out)
{
    gh_server *srv = NULL;
    const gh_config *cfg = site->cfg;
    struct timespec ts;
    int rc = GH_ENOMEM;

    if ((srv = calloc(1, sizeof(*srv))) == NULL) {
        gh_site_unref(site);
        return GH_ENOMEM;
    }
    srv->nworkers = site->nworkers;
    if ((srv->w = calloc(srv->nworkers, sizeof(*srv->w))) == NULL ||
        (srv->loops = calloc(srv->nworkers, sizeof(*srv->loops))) == NULL) {
        gh_site_unref(site);
        free(srv->w);
        free(srv);
        return GH_ENOMEM;
    }
    pthread_mutex_init(&srv->last_reload_mu, NULL);
    site_adopt(srv, site);
    clock_gettime(CLOCK_REALTIME, &ts);
    signal(SIGPIPE, SIG_IGN);
    for (unsigned i = 0; i < srv->nworkers; i++) {
        /* worker 0 takes the caller's reference, the others one each */
        if ((rc = worker_new(srv, i, i == 0 ? site : gh_site_ref(site),
                             (double)ts.tv_sec + (double)ts.tv_nsec / 1e9)) != GH_OK) {
            if (srv->w[i] == NULL && i > 0)
                gh_site_unref(site);
            goto out;
        }
    }
    {
        gh_worker *w0 = srv->w[0];
        struct timeval tv = { .tv_sec = TRIM_INTERVAL_S };

        srv->trim_timer = event_new(w0->loop.base, -1, EV_PERSIST, on_trim_timer, srv);
        srv->sig_term = evsignal_new(w0->loop.base, SIGTERM, on_signal, srv);
        srv->sig_int = evsignal_new(w0->loop.base, SIGINT, on_signal, srv);
        srv->sig_hup = evsignal_new(w0->loop.base, SIGHUP, on_signal, srv);
        if (srv->trim_timer == NULL || srv->sig_term == NULL || srv->sig_int == NULL ||
            srv->sig_hup == NULL) {
            rc = GH_ENOMEM;
            goto out;
        }
        event_add(srv->trim_timer, &tv);
        evsignal_add(srv->sig_term, NULL);
        evsignal_add(srv->sig_int, NULL);
        evsignal_add(srv->sig_hup, NULL);
    }
    if (srv->nworkers > 1 && (rc = gh_hub_new(srv->loops, srv->nworkers, &srv->hub)) != GH_OK)
        goto out;
    if (cfg->bus.redis != NULL && (rc = bus_new(srv->w[0], &cfg->bus)) != GH_OK) {
        GH_LOG(GH_LOG_ERROR, "bus: cannot set up: %s", strerror(-rc));
        goto out;
    }
    if (srv->hub != NULL)
        gh_hub_set_backlog(srv->hub, cfg->worker_backlog);
    for (unsigned i = 0; i < srv->nworkers; i++)
        srv->w[i]->loop.hub = srv->hub;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        if ((srv->w[i]->loop.access_fd = open_access_log(cfg->access_log)) < 0 &&
            cfg->access_log != NULL) {
            rc = GH_EINVAL;
            goto out;
        }
    }
    srv->nofile = raise_nofile();
    srv->all.max = connection_limit(cfg, srv->nofile);
    if ((rc = set_own_limits(srv, cfg)) != GH_OK)
        goto out;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        int *fds = malloc(srv->nworkers * sizeof(int));

        if (fds == NULL || bind_all(srv, &cfg->listeners[i], fds) != 0) {
            free(fds);
            rc = GH_EINVAL;
            goto out;
        }
        for (unsigned k = 0; k < srv->nworkers; k++) {
            gh_listener *l = listener_on(srv->w[k], cfg, i, fds[k]);

            if (l == NULL) {
                while (++k < srv->nworkers)
                    close(fds[k]);
                free(fds);
                rc = GH_EINVAL;
                goto out;
            }
            listener_append(srv->w[k], l);
        }
        free(fds);
    }
    *out = srv;
    srv = NULL;
    rc = GH_OK;
out:
    gh_server_free(srv);
    return rc;
}

const gh_config *gh_server_config(const gh_server *srv)
{
    return srv->w[0]->loop.site->cfg;
}

/* Runs whatever tasks are left in every worker's mailbox (the loops have
 * ended; a task may post more). */
static void run_left_tasks(gh_server *srv)
{
    bool more = true;

    while (more) {
        more = false;
        for (unsigned i = 0; i < srv->nworkers; i++)
            if (srv->w[i] != NULL && gh_loop_mailbox_run(&srv->w[i]->loop))
                more = true;
    }
}

static void worker_free(gh_worker *w)
{
    gh_loop *loop;

    if (w == NULL)
        return;
    loop = &w->loop;
    gh_bus_free(loop->bus);             /* before the topics and the event base */
    loop->bus = NULL;
    gh_tstate_free(loop);
    gh_topics_free(loop);
    if (loop->ws_flush_ev != NULL)      /* after every connection: none is listed */
        event_free(loop->ws_flush_ev);
    gh_ws_loop_free(loop);              /* after every connection: none is in its heap */
    gh_slab_free_all(loop->conn_slab);  /* after every connection: every block is back */
    loop->conn_slab = NULL;
    gh_zpool_free(loop->zpool);         /* after every connection: none holds a stream */
    loop->zpool = NULL;
    while (loop->listeners != NULL) {
        gh_listener *l = loop->listeners;
        loop->listeners = l->next;
        free_listener(l);
    }
    if (w->drain_timer != NULL)
        event_free(w->drain_timer);
    if (w->accept_retry != NULL)
        event_free(w->accept_retry);
    close_held(w);
    free(w->held);
    gh_loop_mailbox_free(loop);
    if (loop->base != NULL)
        event_base_free(loop->base);
    if (loop->access_fd >= 0)
        close(loop->access_fd);
    free(w);
}

void gh_server_free(gh_server *srv)
{
    if (srv == NULL)
        return;
    /* every worker thread has been joined (gh_server_run): all is ours */
    srv->threads = false;
    run_left_tasks(srv);
    for (unsigned i = 0; i < srv->nworkers; i++) {
        gh_worker *w = srv->w[i];

        if (w == NULL)
            continue;
        w->loop.stopping = true;        /* exiting, whatever the path here */
        while (w->loop.conns != NULL)
            gh_conn_free(w->loop.conns);
        close_listeners(w);
    }
    run_left_tasks(srv);
    /* the current site: plugins' fini may still unsubscribe, so before the
     * topics go; a worker that never started holds no reference */
    for (unsigned i = 0; i < srv->nworkers; i++) {
        if (srv->w[i] != NULL) {
            gh_site_unref(srv->w[i]->loop.site);
            srv->w[i]->loop.site = NULL;
        }
    }
    run_left_tasks(srv);
    if (srv->w[0] != NULL) {
        /* its last members' removals went to Redis above; the hub's bus
         * goes before the hub */
        bus_free(srv->w[0]);
        run_left_tasks(srv);
    }
    for (unsigned i = 0; i < srv->nworkers; i++)
        if (srv->w[i] != NULL)
            srv->w[i]->loop.hub = NULL;
    gh_hub_free(srv->hub);              /* before the topics and topic states go */
    run_left_tasks(srv);
    if (srv->trim_timer != NULL)
        event_free(srv->trim_timer);
    if (srv->sig_term != NULL)
        event_free(srv->sig_term);
    if (srv->sig_int != NULL)
        event_free(srv->sig_int);
    if (srv->sig_hup != NULL)
        event_free(srv->sig_hup);
    for (unsigned i = 0; i < srv->nworkers; i++)
        worker_free(srv->w[i]);
    gh_climits_free(srv->climits);
    while (srv->own != NULL) {
        gh_places *p = srv->own;
        srv->own = p->next;
        free(p);
    }
    pthread_mutex_destroy(&srv->last_reload_mu);
    free(srv->w);
    free(srv->loops);
    free(srv);
}

/* Runs w's loop until its drain is done. A connection freed in the last
 * turn may leave its socket to a libevent finalizer (a bufferevent's
 * close is deferred to the loop): one more pass without waiting runs them,
 * so a client of a worker that ended early is not left hanging until the
 * process exits. */
static void run_worker(gh_worker *w)
{
    gh_loop_set_current(&w->loop);
    event_base_dispatch(w->loop.base);
    event_base_loop(w->loop.base, EVLOOP_NONBLOCK);
    gh_loop_set_current(NULL);  /* what it posted last wakes its targets now */
}

static void *worker_main(void *arg)
{
    run_worker(arg);
    return NULL;
}

int gh_server_run(gh_server *srv)
{
    gh_worker *w0 = srv->w[0];
    char names[1024];
    size_t n = 0;
    sigset_t all, was;

    /* the other workers take no signal: worker 0's loop handles them */
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGABRT);
    pthread_sigmask(SIG_BLOCK, &all, &was);
    srv->threads = srv->nworkers > 1;
    for (unsigned i = 1; i < srv->nworkers; i++) {
        int e = pthread_create(&srv->w[i]->thread, NULL, worker_main, srv->w[i]);

        if (e != 0) {
            GH_LOG(GH_LOG_ERROR, "worker %u: cannot start a thread: %s; exiting", i,
                   strerror(e));
            for (unsigned k = 1; k < i; k++)
                on_worker(w0, srv->w[k], task_exit_now, NULL);
            for (unsigned k = 1; k < i; k++)
                pthread_join(srv->w[k]->thread, NULL);
            pthread_sigmask(SIG_SETMASK, &was, NULL);
            return 1;
        }
        srv->w[i]->thread_started = true;
    }
    pthread_sigmask(SIG_SETMASK, &was, NULL);

    names[0] = '\0';
    for (gh_listener *l = w0->loop.listeners; l != NULL && n < sizeof(names); l = l->next) {
        int k = snprintf(names + n, sizeof(names) - n, "%s%s", n ? " " : "", l->name);
        if (k > 0)
            n += (size_t)k;
    }
    GH_LOG(GH_LOG_INFO, "ready: listening on %s (max %llu connections, %u worker%s)", names,
           (unsigned long long)srv->all.max, srv->nworkers, srv->nworkers > 1 ? "s" : "");
    gh_notify("READY=1\nSTATUS=serving");
    run_worker(w0);
    for (unsigned i = 1; i < srv->nworkers; i++) {
        if (!srv->w[i]->thread_started)
            continue;
        /* it ends when its drain does; if worker 0 ended for another
         * reason (an exit), the others end now too */
        if (!w0->loop.stopping)
            on_worker(w0, srv->w[i], task_exit_now, NULL);
        pthread_join(srv->w[i]->thread, NULL);
        srv->w[i]->thread_started = false;
    }
    srv->threads = false;
    GH_LOG(GH_LOG_INFO, "exiting");
    return srv->exit_code;
}
