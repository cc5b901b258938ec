/* server.c: the daemon's runtime: event loop, listeners, the connection
 * registry, the connection limit, signals and the drain.
 *
 * One process, one thread, one event_base. The connection limit is enforced
 * by disabling the listeners (the kernel's backlog holds new clients) and
 * enabling them again when a connection closes; EMFILE from accept() pauses
 * accepting briefly instead of spinning. Drain follows DESIGN.md: health
 * answers 503 first, then accepting stops, then open connections finish
 * their current response or are closed when drain_timeout runs out. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include "log.h"
#include "memtrim.h"
#include "notify.h"
#include "pmdeflate.h"
#include "pluginhost.h"
#include "pool.h"
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

/* What the layers above http/ hung on a site. */
static void site_free_upper(gh_site *s)
{
    gh_plugins_unload(s);
    gh_upstreams_free(s->upstreams);
    s->upstreams = NULL;
}

int gh_site_new(gh_config *cfg, gh_errlist *errs, gh_site **out)
{
    gh_site *s = NULL;
    int rc = GH_ENOMEM;

    if ((s = calloc(1, sizeof(*s))) == NULL) {
        gh_config_free(cfg);
        return GH_ENOMEM;
    }
    s->refs = 1;
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
        /* files up to 256 KiB, 64 MiB in all; without it, files are read per request */
        if (s->filecache == NULL)
            s->filecache = gh_filecache_new(256 * 1024, 64 * 1024 * 1024);
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
    if (cfg->nupstreams > 0 && (rc = gh_upstreams_new(cfg, errs, &s->upstreams)) != GH_OK)
        goto out;
    /* plugins too, even after errors: -t reports everything at once */
    if (gh_plugins_load(s, errs) != GH_OK && rc == GH_OK)
        rc = GH_EINVAL;
    if (rc != GH_OK)
        goto out;
    *out = s;
    s = NULL;
out:
    gh_site_unref(s);
    return rc;
}

/* ---- small helpers ----------------------------------------------------- */

static void set_accepting(gh_server *srv, bool on)
{
    if (srv->accepting == on)
        return;
    srv->accepting = on;
    for (gh_listener *l = srv->loop.listeners; l != NULL; l = l->next) {
        if (l->evl == NULL)
            continue;
        if (on)
            evconnlistener_enable(l->evl);
        else
            evconnlistener_disable(l->evl);
    }
}

/* The loop is the first member of the server. */
static gh_server *server_of(gh_loop *loop)
{
    return (gh_server *)((char *)loop - offsetof(gh_server, loop));
}

static void on_conn_added(gh_loop *loop)
{
    gh_server *srv = server_of(loop);

    if (srv->max_conns > 0 && loop->nconns >= srv->max_conns) {
        if (srv->accepting)
            GH_LOG(GH_LOG_WARN, "%llu connections open: the limit; not accepting until one closes",
                   (unsigned long long)loop->nconns);
        set_accepting(srv, false);
    }
}

static void on_conn_removed(gh_loop *loop)
{
    gh_server *srv = server_of(loop);

    if (loop->stopping) {
        if (loop->nconns == 0)
            event_base_loopbreak(loop->base);
        return;
    }
    if (!srv->accepting && loop->nconns < srv->max_conns &&
        !evtimer_pending(srv->accept_retry, NULL))
        set_accepting(srv, true);
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

    (void)evl;
    if (l->loop->stopping) {
        evutil_closesocket(fd);
        return;
    }
    gh_conn_accept(l, fd, sa, salen);
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    gh_server *srv = arg;

    (void)fd;
    (void)what;
    if (!srv->loop.stopping && (srv->max_conns == 0 || srv->loop.nconns < srv->max_conns))
        set_accepting(srv, true);
}

static void on_accept_error(struct evconnlistener *evl, void *arg)
{
    gh_listener *l = arg;
    gh_server *srv = server_of(l->loop);
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval tv = { .tv_sec = 0, .tv_usec = 100 * 1000 };

    (void)evl;
    /* EMFILE/ENFILE/ENOBUFS: pause instead of spinning on a full table */
    GH_LOG(GH_LOG_WARN, "listener %s: accept: %s; pausing accepts for 100ms",
           l->name, evutil_socket_error_to_string(err));
    set_accepting(srv, false);
    evtimer_add(srv->accept_retry, &tv);
}

static gh_listener *bind_one(gh_server *srv, const gh_listener_conf *lc, size_t index)
{
    gh_listener *l = calloc(1, sizeof(*l));

    if (l == NULL || (l->name = strdup(lc->listen)) == NULL) {
        free(l);
        GH_LOG(GH_LOG_ERROR, "listen %s: out of memory", lc->listen);
        return NULL;
    }
    l->loop = &srv->loop;
    l->index = index;
    l->evl = evconnlistener_new_bind(srv->loop.base, on_accept, l,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
                                     LEV_OPT_REUSEABLE,
                                     1024, (const struct sockaddr *)&lc->addr, (int)lc->addrlen);
    if (l->evl == NULL) {
        int e = errno;

        GH_LOG(GH_LOG_ERROR, "%s:%d:%d: listen %s: %s", lc->loc.file, lc->loc.line,
               lc->loc.col, lc->listen, strerror(e));
        free(l->name);
        free(l);
        errno = e;              /* for the caller's message */
        return NULL;
    }
    evconnlistener_set_error_cb(l->evl, on_accept_error);
    if (!srv->accepting)
        evconnlistener_disable(l->evl);
    return l;
}

static void free_listener(gh_listener *l)
{
    if (l->evl != NULL)
        evconnlistener_free(l->evl);
    free(l->name);
    free(l);
}

static int bind_listeners(gh_server *srv)
{
    const gh_config *cfg = srv->loop.site->cfg;
    gh_listener **tail = &srv->loop.listeners;

    for (size_t i = 0; i < cfg->nlisteners; i++) {
        gh_listener *l = bind_one(srv, &cfg->listeners[i], i);
        if (l == NULL)
            return GH_EINVAL;
        *tail = l;
        tail = &l->next;
    }
    return GH_OK;
}

static void close_listeners(gh_server *srv)
{
    for (gh_listener *l = srv->loop.listeners; l != NULL; l = l->next) {
        if (l->evl != NULL) {
            evconnlistener_free(l->evl);
            l->evl = NULL;
        }
    }
    srv->accepting = false;
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

static int open_access_log(gh_server *srv, const char *path);
static void reopen_access_log(gh_server *srv, const char *path);

/* The result of a reload, for metrics and the status page: when, and the
 * first error of a refused one (errs may be empty: a listener that could
 * not be bound is only logged). */
static void note_reload(gh_server *srv, const gh_errlist *errs, bool ok)
{
    gh_stats *st = &srv->loop.stats;
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    st->last_reload_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    st->last_reload_failed = !ok;
    if (ok) {
        st->reloads_ok++;
        st->last_reload_error[0] = '\0';
        return;
    }
    st->reloads_failed++;
    snprintf(st->last_reload_error, sizeof(st->last_reload_error), "%s",
             errs->n > 0 ? errs->items[0] : "refused: see the error log");
}

/* A changed bus: section takes effect at once: the old connections are
 * closed and new ones made (live topics are subscribed again); equal
 * sections keep the connections. */
static void reload_bus(gh_server *srv, const gh_bus_conf *was, const gh_bus_conf *now)
{
    if (gh_bus_conf_equal(was, now))
        return;
    GH_LOG(GH_LOG_INFO, "reload: bus changed: %s", now->redis != NULL
           ? "reconnecting" : "topics are local only now");
    gh_bus_free(srv->loop.bus);
    srv->loop.bus = NULL;
    if (now->redis != NULL && gh_bus_new(&srv->loop, now, &srv->loop.bus) != GH_OK)
        GH_LOG(GH_LOG_ERROR, "reload: bus: out of memory; topics are local only");
}

int gh_server_reload(gh_server *srv)
{
    const gh_config *ocfg = srv->loop.site->cfg;
    gh_errlist errs;
    gh_config *cfg = NULL;
    gh_site *site = NULL, *old;
    gh_listener **map = NULL, *added = NULL, *l, **pp;
    int rc;

    gh_notify("RELOADING=1\nSTATUS=reloading");
    gh_errlist_init(&errs);
    rc = gh_config_load(ocfg->path, &cfg, &errs);
    if (rc == GH_OK && !same_identity(ocfg, cfg)) {
        rc = gh_errlist_add(&errs, cfg->path, cfg->user_loc.line, cfg->user_loc.col,
                            "user:/group: changed (running as uid %u gid %u): they take "
                            "effect at start only; restart gatehouse to apply them",
                            (unsigned)geteuid(), (unsigned)getegid());
        gh_config_free(cfg);
        cfg = NULL;
    }
    if (rc == GH_OK)
        rc = gh_site_new(cfg, &errs, &site);    /* takes cfg */
    if (rc != GH_OK) {
        if (errs.n == 0)
            gh_errlist_add(&errs, ocfg->path, 0, 0, "cannot load: %s", strerror(-rc));
        for (size_t i = 0; i < errs.n; i++)
            GH_LOG(GH_LOG_ERROR, "reload refused: %s", errs.items[i]);
        goto fail;
    }
    cfg = site->cfg;

    /* keep the sockets of listeners that stay; bind the new ones first, so
     * a port that cannot be bound leaves everything as it was */
    if ((map = calloc(cfg->nlisteners, sizeof(*map))) == NULL) {
        rc = GH_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        for (l = srv->loop.listeners; l != NULL; l = l->next)
            if (!l->retired && l->evl != NULL && same_addr(&ocfg->listeners[l->index], &cfg->listeners[i]))
                map[i] = l;
        if (map[i] == NULL) {
            if ((map[i] = bind_one(srv, &cfg->listeners[i], i)) == NULL) {
                unsigned port = port_of(&cfg->listeners[i]);

                rc = GH_EINVAL;
                /* after the drop (or started non-root without the
                 * capability) a port below 1024 is out of reach */
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
            map[i]->next = added;
            added = map[i];
        }
    }
    /* retire the listeners the new config dropped */
    for (l = srv->loop.listeners; l != NULL; l = l->next) {
        bool kept = false;
        for (size_t i = 0; i < cfg->nlisteners; i++)
            kept = kept || map[i] == l;
        if (!kept && !l->retired) {
            GH_LOG(GH_LOG_INFO, "reload: closing listener %s", l->name);
            if (l->evl != NULL)
                evconnlistener_free(l->evl);
            l->evl = NULL;
            l->retired = true;
        }
    }
    for (size_t i = 0; i < cfg->nlisteners; i++)
        map[i]->index = i;
    for (pp = &srv->loop.listeners; *pp != NULL; pp = &(*pp)->next)
        ;
    *pp = added;
    added = NULL;

    old = srv->loop.site;
    srv->loop.site = site;
    site = NULL;
    gh_plugins_bind(srv->loop.site, &srv->loop);
    gh_upstreams_stop(old->upstreams);     /* its requests finish; its checks end */
    if (gh_upstreams_start(srv->loop.site->upstreams, srv->loop.base) != GH_OK)
        GH_LOG(GH_LOG_ERROR, "reload: upstream health checks: out of memory");
    reload_bus(srv, &old->cfg->bus, &cfg->bus);
    gh_site_unref(old);           /* connections keep the old one alive */

    gh_log_min_level = (gh_log_level)cfg->log_level;
    if ((rc = gh_log_open(cfg->error_log)) != GH_OK)
        GH_LOG(GH_LOG_ERROR, "reload: error log %s: cannot open as uid %u: %s; keeping the "
               "file opened before", cfg->error_log, (unsigned)geteuid(), strerror(-rc));
    reopen_access_log(srv, cfg->access_log);       /* also reopens a rotated file */
    srv->max_conns = connection_limit(cfg, srv->nofile);
    note_reload(srv, &errs, true);
    GH_LOG(GH_LOG_INFO, "reloaded %s", cfg->path);
    free(map);
    gh_errlist_deinit(&errs);
    gh_notify("READY=1\nSTATUS=serving");
    return GH_OK;

fail:
    while (added != NULL) {
        l = added;
        added = l->next;
        free_listener(l);
    }
    free(map);
    gh_site_unref(site);
    note_reload(srv, &errs, false);
    gh_errlist_deinit(&errs);
    GH_LOG(GH_LOG_WARN, "reload failed: still serving the previous configuration");
    gh_notify("READY=1\nSTATUS=serving (last reload failed)");
    return rc == GH_OK ? GH_EINVAL : rc;
}

/* ---- signals and drain ------------------------------------------------- */

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    gh_server *srv = arg;

    (void)fd;
    (void)what;
    if (!srv->loop.stopping) {
        /* drain_delay is over: stop accepting and wind down */
        gh_server_drain(srv);
        return;
    }
    GH_LOG(GH_LOG_WARN, "drain timeout: closing %llu connections still open",
           (unsigned long long)srv->loop.nconns);
    event_base_loopbreak(srv->loop.base);
}

static void stop_accepting(gh_server *srv)
{
    const gh_config *cfg = srv->loop.site->cfg;
    struct timeval tv = gh_units_timeval(cfg->drain_timeout_ms);
    gh_conn *c, *next;

    srv->loop.stopping = true;
    close_listeners(srv);
    GH_LOG(GH_LOG_INFO, "draining: stopped accepting; %llu connections open",
           (unsigned long long)srv->loop.nconns);
    for (c = srv->loop.conns; c != NULL; c = next) {
        next = c->next;
        gh_conn_drain(c);
    }
    if (srv->loop.nconns == 0) {
        event_base_loopbreak(srv->loop.base);
        return;
    }
    evtimer_add(srv->drain_timer, &tv);
}

void gh_server_drain(gh_server *srv)
{
    const gh_config *cfg = srv->loop.site->cfg;

    if (srv->loop.stopping)
        return;
    if (!srv->loop.draining) {
        srv->loop.draining = true;
        gh_notify("STOPPING=1\nSTATUS=draining");
        if (cfg->drain_delay_ms > 0) {
            struct timeval tv = gh_units_timeval(cfg->drain_delay_ms);
            GH_LOG(GH_LOG_INFO, "draining: health answers 503; accepting for %llums more",
                   (unsigned long long)cfg->drain_delay_ms);
            evtimer_add(srv->drain_timer, &tv);
            return;
        }
    }
    stop_accepting(srv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    gh_server *srv = arg;

    (void)what;
    switch (sig) {
    case SIGTERM:
    case SIGINT:
        if (srv->loop.draining) {
            GH_LOG(GH_LOG_WARN, "second %s: exiting now", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            event_base_loopbreak(srv->loop.base);
            return;
        }
        GH_LOG(GH_LOG_INFO, "%s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        gh_server_drain(srv);
        break;
    case SIGHUP:
        if (srv->loop.stopping || srv->loop.draining) {
            GH_LOG(GH_LOG_WARN, "SIGHUP while draining: not reloading");
            break;
        }
        GH_LOG(GH_LOG_INFO, "SIGHUP: reloading %s", srv->loop.site->cfg->path);
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

static int open_access_log(gh_server *srv, const char *path)
{
    srv->loop.access_fd = -1;
    if (path == NULL)
        return GH_OK;
    if (strcmp(path, "stderr") == 0) {
        srv->loop.access_fd = dup(STDERR_FILENO);
        return srv->loop.access_fd >= 0 ? GH_OK : -errno;
    }
    srv->loop.access_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (srv->loop.access_fd < 0) {
        int e = errno;
        GH_LOG(GH_LOG_ERROR, "access log %s: %s", path, strerror(e));
        return -e;
    }
    return GH_OK;
}

/* On reload: the new access log, or, when it cannot be opened (after the
 * drop the user may not write where root could), the file opened before. */
static void reopen_access_log(gh_server *srv, const char *path)
{
    int was = srv->loop.access_fd;

    if (open_access_log(srv, path) != GH_OK && was >= 0) {
        GH_LOG(GH_LOG_ERROR, "reload: access log %s: cannot open as uid %u; keeping the "
               "file opened before", path, (unsigned)geteuid());
        srv->loop.access_fd = was;
        return;
    }
    if (was >= 0)
        close(was);
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
    srv->loop.stats.mem_trims++;
    GH_LOG(GH_LOG_INFO, "memory: %zu MiB of freed heap held after a burst: given back to the "
           "system", held >> 20);
}

int gh_server_new(gh_site *site, gh_server **out)
{
    gh_server *srv = NULL;
    const gh_config *cfg = site->cfg;
    int rc = GH_ENOMEM;

    if ((srv = calloc(1, sizeof(*srv))) == NULL) {
        gh_site_unref(site);
        return GH_ENOMEM;
    }
    srv->loop.site = site;
    srv->loop.access_fd = -1;
    srv->loop.actions = actions;
    srv->loop.nactions = sizeof(actions) / sizeof(actions[0]);
    srv->loop.on_conn_added = on_conn_added;
    srv->loop.on_conn_removed = on_conn_removed;
    srv->loop.metrics_more = gh_upstreams_metrics;
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        srv->loop.stats.start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    }
    signal(SIGPIPE, SIG_IGN);
    if ((srv->loop.base = event_base_new()) == NULL)
        goto out;
    srv->drain_timer = evtimer_new(srv->loop.base, on_drain_timeout, srv);
    srv->accept_retry = evtimer_new(srv->loop.base, on_accept_retry, srv);
    srv->trim_timer = event_new(srv->loop.base, -1, EV_PERSIST, on_trim_timer, srv);
    srv->sig_term = evsignal_new(srv->loop.base, SIGTERM, on_signal, srv);
    srv->sig_int = evsignal_new(srv->loop.base, SIGINT, on_signal, srv);
    srv->sig_hup = evsignal_new(srv->loop.base, SIGHUP, on_signal, srv);
    if (srv->drain_timer == NULL || srv->accept_retry == NULL || srv->trim_timer == NULL ||
        srv->sig_term == NULL || srv->sig_int == NULL || srv->sig_hup == NULL)
        goto out;
    {
        struct timeval tv = { .tv_sec = TRIM_INTERVAL_S };
        event_add(srv->trim_timer, &tv);
    }
    evsignal_add(srv->sig_term, NULL);
    evsignal_add(srv->sig_int, NULL);
    evsignal_add(srv->sig_hup, NULL);

    if ((rc = gh_topics_new(&srv->loop, gh_ws_conn_send_msg)) != GH_OK || (rc = gh_tstate_new(&srv->loop)) != GH_OK)
        goto out;
    if (cfg->bus.redis != NULL && (rc = gh_bus_new(&srv->loop, &cfg->bus, &srv->loop.bus)) != GH_OK) {
        GH_LOG(GH_LOG_ERROR, "bus: cannot set up: %s", strerror(-rc));
        goto out;
    }
    gh_plugins_bind(site, &srv->loop);
    if ((rc = gh_upstreams_start(site->upstreams, srv->loop.base)) != GH_OK)
        goto out;
    if ((rc = open_access_log(srv, cfg->access_log)) != GH_OK)
        goto out;
    srv->nofile = raise_nofile();
    srv->max_conns = connection_limit(cfg, srv->nofile);
    srv->accepting = true;
    if ((rc = bind_listeners(srv)) != GH_OK)
        goto out;
    *out = srv;
    srv = NULL;
    rc = GH_OK;
out:
    gh_server_free(srv);
    return rc;
}

void gh_server_free(gh_server *srv)
{
    if (srv == NULL)
        return;
    srv->loop.stopping = true;         /* exiting, whatever the path here */
    while (srv->loop.conns != NULL)
        gh_conn_free(srv->loop.conns);
    close_listeners(srv);
    gh_site_unref(srv->loop.site);     /* plugins' fini may still unsubscribe */
    srv->loop.site = NULL;
    gh_bus_free(srv->loop.bus);        /* before the topics and the event base */
    srv->loop.bus = NULL;
    gh_tstate_free(&srv->loop);
    gh_topics_free(&srv->loop);
    if (srv->loop.ws_flush_ev != NULL)  /* after every connection: none is listed */
        event_free(srv->loop.ws_flush_ev);
    gh_ws_loop_free(&srv->loop);        /* after every connection: none is in its heap */
    gh_zpool_free(srv->loop.zpool);     /* after every connection: none holds a stream */
    gh_climits_free(srv->loop.climits);
    srv->loop.climits = NULL;
    srv->loop.zpool = NULL;
    while (srv->loop.listeners != NULL) {
        gh_listener *l = srv->loop.listeners;
        srv->loop.listeners = l->next;
        free_listener(l);
    }
    if (srv->drain_timer != NULL)
        event_free(srv->drain_timer);
    if (srv->accept_retry != NULL)
        event_free(srv->accept_retry);
    if (srv->trim_timer != NULL)
        event_free(srv->trim_timer);
    if (srv->sig_term != NULL)
        event_free(srv->sig_term);
    if (srv->sig_int != NULL)
        event_free(srv->sig_int);
    if (srv->sig_hup != NULL)
        event_free(srv->sig_hup);
    if (srv->loop.base != NULL)
        event_base_free(srv->loop.base);
    if (srv->loop.access_fd >= 0)
        close(srv->loop.access_fd);
    free(srv);
}

int gh_server_run(gh_server *srv)
{
    char names[1024];
    size_t n = 0;

    names[0] = '\0';
    for (gh_listener *l = srv->loop.listeners; l != NULL && n < sizeof(names); l = l->next) {
        int w = snprintf(names + n, sizeof(names) - n, "%s%s", n ? " " : "", l->name);
        if (w > 0)
            n += (size_t)w;
    }
    GH_LOG(GH_LOG_INFO, "ready: listening on %s (max %llu connections)", names,
           (unsigned long long)srv->max_conns);
    gh_notify("READY=1\nSTATUS=serving");
    event_base_dispatch(srv->loop.base);
    GH_LOG(GH_LOG_INFO, "exiting");
    return srv->exit_code;
}
