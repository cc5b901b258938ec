/* pluginhost.c: the host side of the plugin ABI (gatehouse/plugin.h).
 *
 * Why this shape: loading code into the process is the most dangerous
 * thing the gateway does, so the loader checks before it dlopen()s (a
 * folder or file others can write would hand them the process) and
 * refuses loudly after (a warning naming the file and both ABI versions,
 * at warn level where people look, not info). A refused file is harmless
 * until a route names it; then it is a config error at the route's
 * FILE:LINE:COL, with the reason it was refused.
 *
 * One instance per websocket route: the same plugin on two routes gets two
 * init calls with the two `config:` mappings. An instance whose init fails
 * takes only its route down (503). Instances live as long as their site,
 * and connections hold the site, so a future reload can swap sites while
 * old connections keep their instance and their code.
 *
 * The host function table is static and the plugin's handles are our own
 * structs behind opaque names: an instance is a struct gh_plugin_inst, a
 * connection a struct gh_ws_conn (wsconn.c), a config node a mirror node
 * that remembers its instance so config errors can be reported to the
 * errlist of the load that runs init. No host function calls back into
 * the plugin: wsconn.c defers closes to the connection's own event. */
#include "pluginhost.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include <gatehouse/plugin.h>

#include "err.h"
#include "log.h"
#include "plugincfg.h"
#include "topic.h"
#include "tstate.h"
#include "utf8.h"
#include "wsconn.h"
#include "wsframe.h"
#include "units.h"

#ifndef GH_VERSION
#define GH_VERSION "0.1.0"
#endif

#define MAX_PLUGINS      256
#define MAX_SUBPROTOCOLS 32

typedef struct plugin {
    char                 *path;
    void                 *dl;
    const gh_plugin_desc *desc;
    size_t                nsub;          /* subprotocols counted */
    uint32_t              flags;         /* desc->flags, 0 when desc is older than 1.2 */
} plugin;

/* Why a file was refused, for the error of a route that names it. */
typedef struct refusal {
    char *file;                          /* basename, e.g. "echo.so" */
    char *reason;
} refusal;

/* A config node as the plugin sees it: the node and its instance. */
typedef struct cfgnode {
    const gh_cnode       *n;
    struct gh_plugin_inst *inst;
    struct cfgnode       *kids;          /* n->nitems of them, or NULL */
} cfgnode;

struct gh_plugin_timer {
    struct gh_plugin_inst  *inst;
    struct gh_plugin_timer *prev, *next;
    struct event           *ev;          /* NULL until bound */
    uint64_t                after_ms, every_ms;
    gh_plugin_timer_cb      cb;
    void                   *arg;
    bool                    in_cb, stopped;
};

struct gh_plugin_inst {
    struct gh_plugins     *ps;
    gh_loop               *loop;         /* its worker's, once bound; NULL under -t */
    unsigned               worker;
    const plugin          *pl;
    const gh_route_conf   *route;
    char                   label[80];    /* "/ws/chat" for logs */
    void                  *state;
    bool                   ok;           /* init succeeded; fini owed */
    cfgnode               *cfg;          /* mirror of route->u.ws.config */
    gh_errlist            *errs;         /* while init runs */
    struct gh_plugin_timer *timers;
};

struct gh_plugins {
    gh_site        *site;
    int             dirfd;               /* plugins_dir, open while loaded; -1 */
    bool            counted;             /* loads counted in a worker's stats */
    unsigned        nworkers;            /* instances per websocket route */
    plugin         *plugins;
    size_t          nplugins;
    refusal        *refusals;
    size_t          nrefusals;
    struct gh_plugin_inst **inst;        /* [worker * ninst + route]; NULL unless
                                            a websocket route */
    size_t          ninst;               /* routes */
    size_t          failed;
};

static const gh_plugin_host host_table;

/* ---- calls into plugin code: timing and fatal signals ------------------- */

/* The call running on this thread, innermost first (a plugin may be called
 * while another's callback runs only through the host's own work, but the
 * chain costs nothing). Read by the fatal-signal handler. */
static _Thread_local gh_plugin_call *current_call;

_Static_assert(GH_PLUGIN_CALL_FINI + 1 == GH_PLUGIN_CALL_KINDS,
               "gh_plugin_call_names (base/stats.c) names every kind");

const char *gh_plugin_call_name(gh_plugin_call_kind kind)
{
    return (unsigned)kind < GH_PLUGIN_CALL_KINDS ? gh_plugin_call_names[kind] : "?";
}

/* A clock read on every call: the coarse one costs a few nanoseconds and
 * its few milliseconds of resolution are plenty against plugin_warn_after. */
static uint64_t coarse_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void gh_plugin_call_enter(gh_plugin_call *pc, const struct gh_plugin_inst *in,
                          gh_plugin_call_kind kind)
{
    pc->in = in;
    pc->kind = kind;
    pc->t0_ms = coarse_ms();
    pc->outer = current_call;
    current_call = pc;
}

void gh_plugin_call_leave(gh_plugin_call *pc)
{
    const struct gh_plugin_inst *in = pc->in;
    uint64_t ms = coarse_ms() - pc->t0_ms;
    uint64_t limit = in->ps->site->cfg->plugin_warn_after_ms;

    current_call = pc->outer;
    if (limit == 0 || ms <= limit)
        return;
    GH_LOG(GH_LOG_WARN, "plugin %s (route %s): callback %s ran %llums, past "
           "plugin_warn_after (%llums): every connection waited meanwhile",
           in->pl->desc->name, in->label, gh_plugin_call_name(pc->kind),
           (unsigned long long)ms, (unsigned long long)limit);
    if (in->loop != NULL)
        GH_STAT_ADD(in->loop->stats.plugin_slow_calls[pc->kind], 1);
}

/* Appends s to line[*n..cap), async-signal-safely (no stdio). */
static void put_str(char *line, size_t *n, size_t cap, const char *s)
{
    while (s != NULL && *s != '\0' && *n + 1 < cap)
        line[(*n)++] = *s++;
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS:  return "SIGBUS";
    case SIGFPE:  return "SIGFPE";
    case SIGILL:  return "SIGILL";
    case SIGABRT: return "SIGABRT";
    default:      return "a fatal signal";
    }
}

/* One line with write(2), then the signal again under its default action
 * (SA_RESETHAND put it back): the process dies of what killed it, with
 * its core dump, and systemd's Restart=on-failure starts it again. */
static void on_fatal(int sig, siginfo_t *si, void *uc)
{
    const gh_plugin_call *pc = current_call;
    char line[512];
    size_t n = 0;
    ssize_t w;

    (void)si;
    (void)uc;
    put_str(line, &n, sizeof(line), "gatehouse: fatal ");
    put_str(line, &n, sizeof(line), signal_name(sig));
    if (pc != NULL) {
        put_str(line, &n, sizeof(line), " in plugin ");
        put_str(line, &n, sizeof(line), pc->in->pl->desc->name);
        put_str(line, &n, sizeof(line), " (route ");
        put_str(line, &n, sizeof(line), pc->in->label);
        put_str(line, &n, sizeof(line), "), callback ");
        put_str(line, &n, sizeof(line), gh_plugin_call_name(pc->kind));
    } else {
        put_str(line, &n, sizeof(line), " outside any plugin callback");
    }
    line[n++] = '\n';
    w = write(gh_log_fd(), line, n);
    (void)w;
    raise(sig);
}

int gh_plugin_fatal_init(void)
{
    static const int sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        if (sigaction(sigs[i], &sa, NULL) != 0)
            return -errno;
    return GH_OK;
}

/* ---- small helpers ------------------------------------------------------ */

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s != NULL ? s + 1 : path;
}

static bool name_ok(const char *s)
{
    size_t n = 0;

    if (s == NULL || s[0] == '.' || s[0] == '-')
        return false;
    for (; s[n] != '\0'; n++) {
        char ch = s[n];
        if (n >= 64 || !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                         (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'))
            return false;
    }
    return n > 0;
}

static void refuse(struct gh_plugins *ps, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Logs a refusal as a warning and remembers it for route errors. */
static void refuse(struct gh_plugins *ps, const char *path, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    refusal *r;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    GH_LOG(GH_LOG_WARN, "plugin %s: refused: %s", path, why);
    r = realloc(ps->refusals, (ps->nrefusals + 1) * sizeof(*r));
    if (r == NULL)
        return;
    ps->refusals = r;
    r[ps->nrefusals].file = strdup(base_name(path));
    r[ps->nrefusals].reason = strdup(why);
    if (r[ps->nrefusals].file == NULL || r[ps->nrefusals].reason == NULL) {
        free(r[ps->nrefusals].file);
        free(r[ps->nrefusals].reason);
        return;
    }
    ps->nrefusals++;
}

/* NULL when st is acceptable for code we load, else why not. The owner
 * may be root or the uid the code runs as: the effective uid now, so root
 * at a start as root (plugins load before the drop to `user:`) and the
 * user on every reload after it. A folder the user owns is therefore fine
 * on SIGHUP but refused at a start as root: loading it then would let the
 * user the drop confines run its code as root. */
static const char *unsafe_owner_or_mode(const struct stat *st, char *buf, size_t cap)
{
    uid_t me = geteuid();

    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(buf, cap, "writable by group or others (mode %04o); chmod go-w it",
                 (unsigned)(st->st_mode & 07777));
        return buf;
    }
    if (st->st_uid != me && st->st_uid != 0) {
        snprintf(buf, cap, "owned by uid %u, not by gatehouse's uid %u or root%s",
                 (unsigned)st->st_uid, (unsigned)me,
                 me == 0 ? " (plugins load as root, before any drop to user:)" : "");
        return buf;
    }
    return NULL;
}

/* ---- loading ------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_so_suffix(const char *n)
{
    size_t len = strlen(n);
    return n[0] != '.' && len > 3 && strcmp(n + len - 3, ".so") == 0;
}

/* Checks, dlopens and validates one file (name, in ps->dirfd; path for
 * messages); on success appends it.
 *
 * It is opened as /proc/self/fd/DIRFD/NAME: glibc hands back an object it
 * has already loaded under the same name without looking at the file, so
 * after a reload the plain path would keep serving the old build of a
 * replaced .so. Through the folder's fd (a new one per load, kept open
 * while the plugins are loaded, so never reused meanwhile) the name is new
 * and glibc compares the file itself: the same file is shared, a replaced
 * one is loaded afresh. */
static void load_one(struct gh_plugins *ps, const char *path, const char *name)
{
    struct stat st;
    char why[256], via[64 + 256];
    void *dl = NULL;
    const gh_plugin_desc *d;
    plugin *p;

    if (fstatat(ps->dirfd, name, &st, 0) != 0) {
        refuse(ps, path, "%s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        refuse(ps, path, "not a regular file");
        goto out;
    }
    if (unsafe_owner_or_mode(&st, why, sizeof(why)) != NULL) {
        refuse(ps, path, "%s", why);
        goto out;
    }
    if (ps->nplugins >= MAX_PLUGINS) {
        refuse(ps, path, "more than %d plugins", MAX_PLUGINS);
        goto out;
    }
    dlerror();
    if ((size_t)snprintf(via, sizeof(via), "/proc/self/fd/%d/%s", ps->dirfd, name) < sizeof(via))
        dl = dlopen(via, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL)             /* no /proc: the plain path */
        dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        const char *e = dlerror();
        refuse(ps, path, "cannot load: %s", e != NULL ? e : "unknown error");
        goto out;
    }
    /* the first three fields are the same in every ABI version */
    if ((d = dlsym(dl, GH_PLUGIN_SYMBOL)) == NULL) {
        refuse(ps, path, "no %s descriptor: not a gatehouse plugin (or it does not "
               "export the symbol; see GH_PLUGIN_EXPORT)", GH_PLUGIN_SYMBOL);
        goto out;
    }
    if (d->abi_major != GH_PLUGIN_ABI_MAJOR) {
        refuse(ps, path, "built for plugin ABI %u.%u; this gatehouse speaks %d.%d "
               "(the major versions differ): rebuild it against this gatehouse's "
               "gatehouse/plugin.h", d->abi_major, d->abi_minor,
               GH_PLUGIN_ABI_MAJOR, GH_PLUGIN_ABI_MINOR);
        goto out;
    }
    if (d->abi_minor > GH_PLUGIN_ABI_MINOR) {
        refuse(ps, path, "built for plugin ABI %u.%u, newer than this gatehouse's "
               "%d.%d: upgrade gatehouse or rebuild the plugin against its header",
               d->abi_major, d->abi_minor, GH_PLUGIN_ABI_MAJOR, GH_PLUGIN_ABI_MINOR);
        goto out;
    }
    if (d->size < GH_PLUGIN_DESC_SIZE_1_0) {
        refuse(ps, path, "descriptor size %u is smaller than plugin ABI %u.%u's %zu",
               d->size, d->abi_major, d->abi_minor, (size_t)GH_PLUGIN_DESC_SIZE_1_0);
        goto out;
    }
    /* read no field past desc->size: a 1.0 or 1.1 descriptor ends before */
    if (d->size >= offsetof(gh_plugin_desc, flags) + sizeof(d->flags) &&
        (d->flags & ~(uint32_t)GH_PLUGIN_FLAGS_KNOWN) != 0) {
        refuse(ps, path, "descriptor flags 0x%x include bits this gatehouse (plugin ABI "
               "%d.%d) does not know (0x%x): upgrade gatehouse or rebuild the plugin "
               "against its header", d->flags, GH_PLUGIN_ABI_MAJOR, GH_PLUGIN_ABI_MINOR,
               d->flags & ~(uint32_t)GH_PLUGIN_FLAGS_KNOWN);
        goto out;
    }
    if (!name_ok(d->name)) {
        refuse(ps, path, "plugin name missing or not [A-Za-z0-9_.-]{1,64}");
        goto out;
    }
    for (size_t i = 0; i < ps->nplugins; i++) {
        if (strcmp(ps->plugins[i].desc->name, d->name) == 0) {
            refuse(ps, path, "duplicate plugin name \"%s\": %s already has it",
                   d->name, ps->plugins[i].path);
            goto out;
        }
    }
    if ((p = realloc(ps->plugins, (ps->nplugins + 1) * sizeof(*p))) == NULL) {
        refuse(ps, path, "out of memory");
        goto out;
    }
    ps->plugins = p;
    p = &ps->plugins[ps->nplugins];
    memset(p, 0, sizeof(*p));
    if ((p->path = strdup(path)) == NULL) {
        refuse(ps, path, "out of memory");
        goto out;
    }
    p->dl = dl;
    p->desc = d;
    if (d->size >= offsetof(gh_plugin_desc, flags) + sizeof(d->flags))
        p->flags = d->flags;
    if (d->subprotocols != NULL)
        while (p->nsub < MAX_SUBPROTOCOLS && d->subprotocols[p->nsub] != NULL)
            p->nsub++;
    ps->nplugins++;
    dl = NULL;                  /* ps->plugins owns it now */
    GH_LOG(GH_LOG_INFO, "plugin %s: loaded %s %s (ABI %u.%u%s)", path, d->name,
           d->version != NULL ? d->version : "-", d->abi_major, d->abi_minor,
           (p->flags & GH_PLUGIN_SINGLE_INSTANCE) ? ", single instance" : "");
out:
    if (dl != NULL)
        dlclose(dl);
}

/* Loads every *.so in dir, in name order. Returns 0, or -errno when the
 * folder cannot be used at all (why is in *why). */
static int load_dir(struct gh_plugins *ps, const char *dir, char *why, size_t cap)
{
    struct stat st;
    DIR *d = NULL;
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, ncap = 0;
    int rc = GH_OK;

    if ((ps->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0 ||
        fstat(ps->dirfd, &st) != 0) {
        rc = errno == ENOTDIR ? -ENOTDIR : -errno;
        snprintf(why, cap, "%s", errno == ENOTDIR ? "not a folder" : strerror(errno));
        return rc;
    }
    if (unsafe_owner_or_mode(&st, why, cap) != NULL) {
        GH_LOG(GH_LOG_WARN, "plugins_dir %s: refused: %s; no plugin loaded", dir, why);
        return -EPERM;
    }
    if ((d = opendir(dir)) == NULL) {     /* lists the same folder: ours is not writable */
        rc = -errno;
        snprintf(why, cap, "%s", strerror(errno));
        return rc;
    }
    while ((e = readdir(d)) != NULL) {
        if (!has_so_suffix(e->d_name))
            continue;
        if (n == ncap) {
            size_t c2 = ncap ? ncap * 2 : 16;
            char **nn = realloc(names, c2 * sizeof(*nn));
            if (nn == NULL)
                break;
            names = nn;
            ncap = c2;
        }
        if ((names[n] = strdup(e->d_name)) == NULL)
            break;
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(len);
        if (path != NULL) {
            snprintf(path, len, "%s/%s", dir, names[i]);
            load_one(ps, path, names[i]);
        }
        free(path);
        free(names[i]);
    }
    free(names);
    return rc;
}

static const plugin *find_plugin(const struct gh_plugins *ps, const char *name)
{
    for (size_t i = 0; i < ps->nplugins; i++)
        if (strcmp(ps->plugins[i].desc->name, name) == 0)
            return &ps->plugins[i];
    return NULL;
}

static const char *refusal_of(const struct gh_plugins *ps, const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < ps->nrefusals; i++) {
        const char *f = ps->refusals[i].file;
        if (strncmp(f, name, len) == 0 && strcmp(f + len, ".so") == 0)
            return ps->refusals[i].reason;
    }
    return NULL;
}

/* Mirrors the config tree into m so each node knows its instance. On
 * GH_ENOMEM what was built is still freed by unmirror_kids(). */
static int mirror_into(cfgnode *m, const gh_cnode *n, struct gh_plugin_inst *inst)
{
    m->n = n;
    m->inst = inst;
    if (n->nitems == 0)
        return GH_OK;
    if ((m->kids = calloc(n->nitems, sizeof(*m->kids))) == NULL)
        return GH_ENOMEM;
    for (size_t i = 0; i < n->nitems; i++)
        if (mirror_into(&m->kids[i], &n->items[i], inst) != GH_OK)
            return GH_ENOMEM;
    return GH_OK;
}

static void unmirror_kids(cfgnode *m)
{
    if (m->kids == NULL)
        return;
    for (size_t i = 0; i < m->n->nitems; i++)
        unmirror_kids(&m->kids[i]);
    free(m->kids);
}

static void unmirror(cfgnode *m)
{
    if (m == NULL)
        return;
    unmirror_kids(m);
    free(m);
}

static void route_label(const gh_route_conf *r, size_t index, char *out, size_t cap)
{
    if (r->match.path != NULL)
        snprintf(out, cap, "%.70s", r->match.path);
    else if (r->match.prefix != NULL)
        snprintf(out, cap, "%.70s*", r->match.prefix);
    else
        snprintf(out, cap, "#%zu", index + 1);
}

static void init_instance(struct gh_plugins *ps, struct gh_plugin_inst *in,
                          gh_errlist *errs)
{
    const gh_websocket_conf *wc = &in->route->u.ws;
    int32_t rc = 0;

    if (wc->config != NULL && ((in->cfg = calloc(1, sizeof(*in->cfg))) == NULL ||
                               mirror_into(in->cfg, wc->config, in) != GH_OK)) {
        rc = GH_ENOMEM;
    } else if (in->pl->desc->init != NULL) {
        gh_plugin_call pc;

        in->errs = errs;
        gh_plugin_call_enter(&pc, in, GH_PLUGIN_CALL_INIT);
        rc = in->pl->desc->init(&host_table, in, (const gh_plugin_cfg *)in->cfg, &in->state);
        gh_plugin_call_leave(&pc);
        in->errs = NULL;
    }
    if (rc == 0) {
        in->ok = true;
        return;
    }
    ps->failed++;
    gh_errlist_add(errs, wc->plugin_loc.file, wc->plugin_loc.line, wc->plugin_loc.col,
                   "websocket: plugin %s (%s): init failed: %s; route %s answers 503",
                   wc->plugin, in->pl->path, rc < 0 ? strerror(-rc) : "error",
                   in->label);
    GH_LOG(GH_LOG_ERROR, "route %s is down: plugin %s failed to initialise (%s); "
           "it answers 503", in->label, wc->plugin, rc < 0 ? strerror(-rc) : "error");
}

int gh_plugins_load(gh_site *site, unsigned nworkers, gh_errlist *errs)
{
    const gh_config *cfg = site->cfg;
    struct gh_plugins *ps;
    gh_errlist quiet;
    size_t nws = 0;
    char why[256] = "";
    int dir_rc, rc = GH_OK;

    if ((ps = calloc(1, sizeof(*ps))) == NULL)
        return GH_ENOMEM;
    site->plugins = ps;
    ps->site = site;
    ps->dirfd = -1;
    ps->nworkers = nworkers > 0 ? nworkers : 1;
    if (cfg->nroutes > 0 &&
        (ps->inst = calloc(cfg->nroutes * ps->nworkers, sizeof(*ps->inst))) == NULL)
        return GH_ENOMEM;
    ps->ninst = cfg->nroutes;
    for (size_t i = 0; i < cfg->nroutes; i++)
        if (cfg->routes[i].action == GH_ACTION_WEBSOCKET)
            nws++;

    dir_rc = load_dir(ps, cfg->plugins_dir, why, sizeof(why));
    if (dir_rc != GH_OK && dir_rc != -EPERM && nws == 0)
        GH_LOG(GH_LOG_WARN, "plugins_dir %s: %s; no plugin loaded (no websocket route "
               "needs one)", cfg->plugins_dir, why);

    for (size_t i = 0; i < cfg->nroutes; i++) {
        const gh_route_conf *r = &cfg->routes[i];
        const gh_websocket_conf *wc = &r->u.ws;
        const plugin *pl;
        struct gh_plugin_inst *in;

        if (r->action != GH_ACTION_WEBSOCKET)
            continue;
        if ((pl = find_plugin(ps, wc->plugin)) == NULL) {
            const char *refused = refusal_of(ps, wc->plugin);
            if (dir_rc != GH_OK)
                rc = gh_errlist_add(errs, wc->plugin_loc.file, wc->plugin_loc.line,
                                    wc->plugin_loc.col,
                                    "websocket: plugin %s is not loaded: plugins_dir %s: %s",
                                    wc->plugin, cfg->plugins_dir, why);
            else if (refused != NULL)
                rc = gh_errlist_add(errs, wc->plugin_loc.file, wc->plugin_loc.line,
                                    wc->plugin_loc.col,
                                    "websocket: plugin %s is not loaded: %s/%s.so was "
                                    "refused: %s", wc->plugin, cfg->plugins_dir,
                                    wc->plugin, refused);
            else
                rc = gh_errlist_add(errs, wc->plugin_loc.file, wc->plugin_loc.line,
                                    wc->plugin_loc.col,
                                    "websocket: plugin %s is not loaded (no plugin of that "
                                    "name in %s)", wc->plugin, cfg->plugins_dir);
            continue;
        }
        for (unsigned w = 0; w < ps->nworkers; w++) {
            /* a single-instance plugin's one instance is worker 0's: the
             * other workers move its connections there (wsconn.c) */
            if ((pl->flags & GH_PLUGIN_SINGLE_INSTANCE) && w != GH_PLUGINS_HOME)
                continue;
            if ((in = calloc(1, sizeof(*in))) == NULL)
                return GH_ENOMEM;
            in->ps = ps;
            in->pl = pl;
            in->route = r;
            in->worker = w;
            route_label(r, i, in->label, sizeof(in->label));
            ps->inst[w * ps->ninst + i] = in;
        }
    }
    if (rc != GH_OK)
        return rc;              /* do not run any init for a config that fails */
    /* an instance per worker, each initialised with the same config: the
     * first worker's failures are reported (the others' would repeat them) */
    gh_errlist_init(&quiet);
    for (unsigned w = 0; w < ps->nworkers; w++) {
        size_t failed = ps->failed;
        for (size_t i = 0; i < ps->ninst; i++)
            if (ps->inst[w * ps->ninst + i] != NULL)
                init_instance(ps, ps->inst[w * ps->ninst + i], w == 0 ? errs : &quiet);
        if (w > 0)
            ps->failed = failed;        /* routes count once */
    }
    gh_errlist_deinit(&quiet);
    return GH_OK;
}

size_t gh_plugins_failed(const gh_site *site)
{
    return site->plugins != NULL ? site->plugins->failed : 0;
}

void gh_plugins_each(const gh_site *site, void (*fn)(void *arg, const gh_plugin_info *p),
                     void (*refused)(void *arg, const char *file, const char *why), void *arg)
{
    const struct gh_plugins *ps = site->plugins;

    if (ps == NULL)
        return;
    for (size_t i = 0; fn != NULL && i < ps->nplugins; i++) {
        const plugin *pl = &ps->plugins[i];
        gh_plugin_info info = {
            .name = pl->desc->name,
            .version = pl->desc->version != NULL ? pl->desc->version : "",
            .path = pl->path,
            .abi_major = pl->desc->abi_major,
            .abi_minor = pl->desc->abi_minor,
        };

        /* the first worker's instances: a route counts once, as in
         * gh_plugins_failed() (ok is set before any worker sees the site) */
        for (size_t k = 0; k < ps->ninst; k++) {
            if (ps->inst[k] == NULL || ps->inst[k]->pl != pl)
                continue;
            info.routes++;
            if (!ps->inst[k]->ok)
                info.failed++;
        }
        fn(arg, &info);
    }
    for (size_t i = 0; refused != NULL && i < ps->nrefusals; i++)
        refused(arg, ps->refusals[i].file, ps->refusals[i].reason);
}

/* ---- timers --------------------------------------------------------------- */

static void timer_free(struct gh_plugin_timer *t)
{
    struct gh_plugin_inst *in = t->inst;

    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        in->timers = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    if (t->ev != NULL)
        event_free(t->ev);
    free(t);
}

static void timer_add(struct gh_plugin_timer *t, uint64_t ms)
{
    struct timeval tv = gh_units_timeval(ms);

    evtimer_add(t->ev, &tv);
}

static void on_plugin_timer(evutil_socket_t fd, short what, void *arg)
{
    struct gh_plugin_timer *t = arg;

    (void)fd;
    (void)what;
    gh_plugin_call pc;

    t->in_cb = true;
    gh_plugin_call_enter(&pc, t->inst, GH_PLUGIN_CALL_TIMER);
    t->cb(t->arg, t);
    gh_plugin_call_leave(&pc);
    t->in_cb = false;
    if (t->stopped || t->every_ms == 0) {
        timer_free(t);
        return;
    }
    timer_add(t, t->every_ms);
}

static bool timer_arm(struct gh_plugin_timer *t, struct event_base *base)
{
    if ((t->ev = evtimer_new(base, on_plugin_timer, t)) == NULL)
        return false;
    timer_add(t, t->after_ms);
    return true;
}

static gh_plugin_timer *h_timer_start(gh_plugin_inst *in, uint64_t after_ms,
                                      uint64_t every_ms, gh_plugin_timer_cb cb, void *arg)
{
    struct gh_plugin_timer *t;

    if (in == NULL || cb == NULL || after_ms > GH_CONFIG_MAX_DURATION_MS ||
        every_ms > GH_CONFIG_MAX_DURATION_MS)
        return NULL;
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return NULL;
    t->inst = in;
    t->after_ms = after_ms;
    t->every_ms = every_ms;
    t->cb = cb;
    t->arg = arg;
    if (in->loop != NULL && !timer_arm(t, in->loop->base)) {
        free(t);
        return NULL;
    }
    t->next = in->timers;
    if (in->timers != NULL)
        in->timers->prev = t;
    in->timers = t;
    return t;
}

static void h_timer_stop(gh_plugin_timer *t)
{
    if (t == NULL)
        return;
    if (t->in_cb) {
        t->stopped = true;      /* freed when its callback returns */
        return;
    }
    timer_free(t);
}

/* ---- binding and unloading -------------------------------------------- */

void gh_plugins_bind(gh_site *site, gh_loop *loop)
{
    struct gh_plugins *ps = site->plugins;

    if (ps == NULL || loop->id >= ps->nworkers)
        return;
    if (loop->id == 0 && !ps->counted) {      /* once per generation */
        ps->counted = true;
        GH_STAT_ADD(loop->stats.plugin_loads, ps->nplugins);
        GH_STAT_ADD(loop->stats.plugin_refusals, ps->nrefusals);
    }
    for (size_t i = 0; i < ps->ninst; i++) {
        struct gh_plugin_inst *in = ps->inst[loop->id * ps->ninst + i];
        struct gh_plugin_timer *t, *next;

        if (in == NULL || in->loop != NULL)
            continue;
        in->loop = loop;
        for (t = in->timers; t != NULL; t = next) {
            next = t->next;
            if (t->ev == NULL && !timer_arm(t, loop->base)) {
                GH_LOG(GH_LOG_ERROR, "plugin %s (route %s): cannot start a timer: out "
                       "of memory", in->pl->desc->name, in->label);
                timer_free(t);
            }
        }
    }
}

void gh_plugins_unload_worker(gh_site *site, unsigned worker)
{
    struct gh_plugins *ps = site->plugins;

    if (ps == NULL || worker >= ps->nworkers)
        return;
    for (size_t i = 0; i < ps->ninst; i++) {
        struct gh_plugin_inst *in = ps->inst[worker * ps->ninst + i];

        if (in == NULL)
            continue;
        ps->inst[worker * ps->ninst + i] = NULL;
        if (in->ok && in->pl->desc->fini != NULL) {
            gh_plugin_call pc;

            gh_plugin_call_enter(&pc, in, GH_PLUGIN_CALL_FINI);
            in->pl->desc->fini(in->state);
            gh_plugin_call_leave(&pc);
        }
        while (in->timers != NULL)
            timer_free(in->timers);
        unmirror(in->cfg);
        free(in);
    }
}

void gh_plugins_unload(gh_site *site)
{
    struct gh_plugins *ps = site->plugins;

    if (ps == NULL)
        return;
    for (unsigned w = 0; w < ps->nworkers; w++)
        gh_plugins_unload_worker(site, w);
    free(ps->inst);
    for (size_t i = 0; i < ps->nplugins; i++) {
        dlclose(ps->plugins[i].dl);
        free(ps->plugins[i].path);
    }
    free(ps->plugins);
    if (ps->dirfd >= 0)
        close(ps->dirfd);       /* only now: see load_one() */
    for (size_t i = 0; i < ps->nrefusals; i++) {
        free(ps->refusals[i].file);
        free(ps->refusals[i].reason);
    }
    free(ps->refusals);
    free(ps);
    site->plugins = NULL;
}

/* ---- for wsconn.c ------------------------------------------------------- */

gh_plugin_route *gh_plugins_route(const gh_site *site, size_t route_index, unsigned worker)
{
    const struct gh_plugins *ps = site->plugins;
    struct gh_plugin_inst *in;

    if (ps == NULL || route_index >= ps->ninst || worker >= ps->nworkers)
        return NULL;
    in = ps->inst[worker * ps->ninst + route_index];
    return in != NULL && in->ok ? in : NULL;
}

unsigned gh_plugins_home(const gh_site *site, size_t route_index)
{
    const struct gh_plugins *ps = site->plugins;
    const struct gh_plugin_inst *in;

    if (ps == NULL || route_index >= ps->ninst ||
        (in = ps->inst[GH_PLUGINS_HOME * ps->ninst + route_index]) == NULL ||
        !(in->pl->flags & GH_PLUGIN_SINGLE_INSTANCE))
        return GH_PLUGINS_EVERY;
    return GH_PLUGINS_HOME;
}

const char *gh_plugin_route_name(const gh_plugin_route *rt)
{
    return rt->pl->desc->name;
}

const char *const *gh_plugin_route_subprotocols(const gh_plugin_route *rt, size_t *n)
{
    *n = rt->pl->nsub;
    return rt->pl->desc->subprotocols;
}

gh_loop *gh_plugin_route_loop(const gh_plugin_route *rt)
{
    return rt->loop;
}

int gh_plugin_route_open(gh_plugin_route *rt, struct gh_ws_conn *ws)
{
    gh_plugin_call pc;
    int32_t code;

    if (rt->pl->desc->open == NULL)
        return 0;
    gh_plugin_call_enter(&pc, rt, GH_PLUGIN_CALL_OPEN);
    code = rt->pl->desc->open(rt->state, (gh_plugin_conn *)ws);
    gh_plugin_call_leave(&pc);
    if (code == 0)
        return 0;
    if (code < 0 || code > 0xFFFF || !gh_ws_close_code_is_valid((uint16_t)code)) {
        GH_LOG(GH_LOG_WARN, "plugin %s (route %s): open refused conn #%llu with %d, "
               "which is not a close code that may be sent; sending 1011",
               rt->pl->desc->name, rt->label, (unsigned long long)gh_ws_conn_id(ws),
               (int)code);
        return GH_WS_CLOSE_INTERNAL_ERROR;
    }
    return (int)code;
}

void gh_plugin_route_message(gh_plugin_route *rt, struct gh_ws_conn *ws, int opcode,
                             const void *data, size_t len)
{
    gh_plugin_call pc;

    if (rt->pl->desc->message == NULL)
        return;
    gh_plugin_call_enter(&pc, rt, GH_PLUGIN_CALL_MESSAGE);
    rt->pl->desc->message(rt->state, (gh_plugin_conn *)ws, opcode, data, len);
    gh_plugin_call_leave(&pc);
}

void gh_plugin_route_close(gh_plugin_route *rt, struct gh_ws_conn *ws, uint16_t code,
                           const char *reason, size_t reason_len)
{
    gh_plugin_call pc;

    if (rt->pl->desc->close == NULL)
        return;
    gh_plugin_call_enter(&pc, rt, GH_PLUGIN_CALL_CLOSE);
    rt->pl->desc->close(rt->state, (gh_plugin_conn *)ws, code,
                        reason != NULL ? reason : "", reason_len);
    gh_plugin_call_leave(&pc);
}

/* ---- the host function table ------------------------------------------- */

#define WS(c) ((struct gh_ws_conn *)(c))

static void h_log(gh_plugin_inst *in, gh_plugin_conn *c, int32_t level,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void h_log(gh_plugin_inst *in, gh_plugin_conn *c, int32_t level,
                  const char *fmt, ...)
{
    gh_log_level lv = level <= GH_PLUGIN_LOG_DEBUG ? GH_LOG_DEBUG :
                      level == GH_PLUGIN_LOG_INFO ? GH_LOG_INFO :
                      level == GH_PLUGIN_LOG_WARN ? GH_LOG_WARN : GH_LOG_ERROR;
    char msg[1536];
    va_list ap;

    if (lv < gh_log_level_now() || fmt == NULL)
        return;
    if (in == NULL && c != NULL)
        in = gh_ws_conn_route(WS(c));
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c != NULL)
        gh_log_write(lv, "plugin %s (route %s) conn #%llu %s: %s",
                     in != NULL ? in->pl->desc->name : "?", in != NULL ? in->label : "?",
                     (unsigned long long)gh_ws_conn_id(WS(c)),
                     gh_ws_conn_client_addr(WS(c)), msg);
    else
        gh_log_write(lv, "plugin %s (route %s): %s",
                     in != NULL ? in->pl->desc->name : "?", in != NULL ? in->label : "?",
                     msg);
}

static int32_t h_send(gh_plugin_conn *c, int32_t type, const void *data, size_t len)
{
    if (c == NULL)
        return GH_EINVAL;
    return gh_ws_conn_send(WS(c), type, data, len);
}

static uint64_t h_buffered(gh_plugin_conn *c)
{
    return c != NULL ? gh_ws_conn_buffered(WS(c)) : 0;
}

static int32_t h_close(gh_plugin_conn *c, uint16_t code, const char *reason, size_t len)
{
    if (c == NULL)
        return GH_EINVAL;
    return gh_ws_conn_close(WS(c), code, reason, len);
}

static const char *h_client_addr(gh_plugin_conn *c)
{
    return gh_ws_conn_client_addr(WS(c));
}

static uint16_t h_client_port(gh_plugin_conn *c)
{
    return gh_ws_conn_client_port(WS(c));
}

static const char *h_path(gh_plugin_conn *c)
{
    return gh_ws_conn_path(WS(c));
}

static const char *h_query(gh_plugin_conn *c)
{
    return gh_ws_conn_query(WS(c));
}

static const char *h_header(gh_plugin_conn *c, const char *name, size_t *len)
{
    return gh_ws_conn_header(WS(c), name, len);
}

static const char *h_subprotocol(gh_plugin_conn *c)
{
    return gh_ws_conn_subprotocol(WS(c));
}

static void h_set_data(gh_plugin_conn *c, void *data)
{
    gh_ws_conn_set_data(WS(c), data);
}

static void *h_get_data(gh_plugin_conn *c)
{
    return gh_ws_conn_get_data(WS(c));
}

static uint64_t h_conn_id(gh_plugin_conn *c)
{
    return gh_ws_conn_id(WS(c));
}

/* Config errors go to the errlist of the load running init, else to the
 * log; either way as FILE:LINE:COL: message. */
static int32_t cfg_report(const cfgnode *m, int rc, const gh_plugincfg_err *e)
{
    struct gh_plugin_inst *in = m->inst;

    if (rc == GH_OK)
        return 0;
    if (in->errs != NULL)
        gh_errlist_add(in->errs, e->loc.file, e->loc.line, e->loc.col,
                       "websocket: config: %s", e->msg);
    else
        GH_LOG(GH_LOG_ERROR, "%s:%d:%d: websocket: config: %s (plugin %s, route %s)",
               e->loc.file, e->loc.line, e->loc.col, e->msg, in->pl->desc->name, in->label);
    return rc;
}

#define CN(map) ((const cfgnode *)(map))
#define NODE(map) ((map) != NULL ? CN(map)->n : NULL)

static const gh_plugin_cfg *h_config_get(const gh_plugin_cfg *map, const char *key)
{
    const cfgnode *m = CN(map);

    if (m == NULL || key == NULL || m->n->kind != GH_CNODE_MAP || m->kids == NULL)
        return NULL;
    for (size_t i = 0; i < m->n->nitems; i++)
        if (m->kids[i].n != NULL && m->kids[i].n->key != NULL &&
            strcmp(m->kids[i].n->key, key) == 0)
            return (const gh_plugin_cfg *)&m->kids[i];
    return NULL;
}

static int32_t h_config_string(const gh_plugin_cfg *map, const char *key, const char *def,
                               const char **out)
{
    gh_plugincfg_err e;
    if (map == NULL) {
        *out = def;
        return 0;
    }
    return cfg_report(CN(map), gh_plugincfg_string(NODE(map), key, def, out, &e), &e);
}

static int32_t h_config_int(const gh_plugin_cfg *map, const char *key, int64_t def,
                            int64_t min, int64_t max, int64_t *out)
{
    gh_plugincfg_err e;
    if (map == NULL) {
        *out = def;
        return 0;
    }
    return cfg_report(CN(map), gh_plugincfg_int(NODE(map), key, def, min, max, out, &e), &e);
}

static int32_t h_config_bool(const gh_plugin_cfg *map, const char *key, bool def, bool *out)
{
    gh_plugincfg_err e;
    if (map == NULL) {
        *out = def;
        return 0;
    }
    return cfg_report(CN(map), gh_plugincfg_bool(NODE(map), key, def, out, &e), &e);
}

static int32_t h_config_size(const gh_plugin_cfg *map, const char *key, uint64_t def,
                             uint64_t *out)
{
    gh_plugincfg_err e;
    if (map == NULL) {
        *out = def;
        return 0;
    }
    return cfg_report(CN(map), gh_plugincfg_size(NODE(map), key, def, out, &e), &e);
}

static int32_t h_config_duration(const gh_plugin_cfg *map, const char *key, uint64_t def,
                                 uint64_t *out)
{
    gh_plugincfg_err e;
    if (map == NULL) {
        *out = def;
        return 0;
    }
    return cfg_report(CN(map), gh_plugincfg_duration(NODE(map), key, def, out, &e), &e);
}

static int32_t h_config_list(const gh_plugin_cfg *map, const char *key, const char **items,
                             size_t cap, size_t *count)
{
    gh_plugincfg_err e;
    if (map == NULL) {
        *count = 0;
        return 0;
    }
    return cfg_report(CN(map), gh_plugincfg_list(NODE(map), key, items, cap, count, &e), &e);
}

static int32_t h_config_check_keys(const gh_plugin_cfg *map, const char *const *known)
{
    gh_plugincfg_err e;
    size_t at = 0;
    int32_t rc = 0;

    if (map == NULL)
        return 0;
    while (gh_plugincfg_check_keys(NODE(map), known, &at, &e) != GH_OK)
        rc = cfg_report(CN(map), GH_EINVAL, &e);
    return rc;
}

static int32_t h_subscribe(gh_plugin_conn *c, const char *topic, size_t len)
{
    if (c == NULL)
        return GH_EINVAL;
    return gh_ws_conn_subscribe(WS(c), topic, len);
}

static int32_t h_unsubscribe(gh_plugin_conn *c, const char *topic, size_t len)
{
    if (c == NULL)
        return GH_EINVAL;
    return gh_ws_conn_unsubscribe(WS(c), topic, len);
}

static int32_t h_publish(gh_plugin_inst *in, const char *topic, size_t topic_len,
                         int32_t type, const void *data, size_t len)
{
    gh_utf8 u;

    if (in == NULL || topic == NULL || topic_len == 0 || topic_len > GH_TOPIC_MAX_NAME ||
        (type != GH_PLUGIN_TEXT && type != GH_PLUGIN_BINARY) || (len > 0 && data == NULL) ||
        len > ((size_t)1 << 62))
        return GH_EINVAL;
    if (type == GH_PLUGIN_TEXT) {
        gh_utf8_init(&u);
        if (gh_utf8_feed(&u, data, len) != 0 || !gh_utf8_is_complete(&u))
            return GH_EINVAL;
    }
    if (in->loop == NULL || in->loop->topics == NULL)
        return -ENOTCONN;
    return gh_topics_publish(in->loop->topics, in->pl->desc->name, topic, topic_len,
                             type, data, len);
}

/* ---- topic state (ABI 1.1) ---------------------------------------------- */

static bool is_utf8(const char *s, size_t len)
{
    gh_utf8 u;

    if (len > 0 && s == NULL)
        return false;
    gh_utf8_init(&u);
    return gh_utf8_feed(&u, (const uint8_t *)s, len) == 0 && gh_utf8_is_complete(&u);
}

/* The server and namespace of conn's route, or NULL when not serving. */
static gh_loop *serving(gh_plugin_conn *c, const char **ns)
{
    gh_plugin_inst *in = c != NULL ? gh_ws_conn_route(WS(c)) : NULL;

    if (in == NULL || in->loop == NULL || in->loop->tstate == NULL)
        return NULL;
    *ns = in->pl->desc->name;
    return in->loop;
}

static int32_t request(gh_plugin_conn *c, const char *topic, size_t len, bool join,
                       gh_plugin_state_cb cb, void *arg)
{
    const char *ns;
    gh_loop *loop;

    if (c == NULL || topic == NULL || len == 0 || len > GH_TOPIC_MAX_NAME || cb == NULL)
        return GH_EINVAL;
    if ((loop = serving(c, &ns)) == NULL)
        return -ENOTCONN;
    return gh_tstate_request(loop->tstate, WS(c), gh_ws_conn_tstate(WS(c)), ns, topic, len,
                             join, cb, arg);
}

static int32_t h_join(gh_plugin_conn *c, const char *topic, size_t len,
                      gh_plugin_state_cb cb, void *arg)
{
    return request(c, topic, len, true, cb, arg);
}

static int32_t h_fetch(gh_plugin_conn *c, const char *topic, size_t len,
                       gh_plugin_state_cb cb, void *arg)
{
    return request(c, topic, len, false, cb, arg);
}

static int32_t h_member_set(gh_plugin_conn *c, const char *topic, size_t len,
                            const char *value, size_t vlen, const char *announce,
                            size_t alen, uint32_t flags, const char *farewell, size_t flen)
{
    const char *ns;
    gh_loop *loop;

    if (c == NULL || topic == NULL || len == 0 || len > GH_TOPIC_MAX_NAME ||
        (value != NULL && (vlen == 0 || vlen > GH_TSTATE_MAX_VALUE || !is_utf8(value, vlen))) ||
        (announce != NULL && !is_utf8(announce, alen)) || (announce == NULL && alen > 0) ||
        (farewell != NULL && !is_utf8(farewell, flen)) || (farewell == NULL && flen > 0) ||
        alen > ((size_t)1 << 62) || flen > ((size_t)1 << 62))
        return GH_EINVAL;
    if ((loop = serving(c, &ns)) == NULL)
        return -ENOTCONN;
    return gh_tstate_member_set(loop->tstate, WS(c), gh_ws_conn_tstate(WS(c)), ns, topic,
                                len, value, vlen, announce, alen, flags,
                                value != NULL ? farewell : NULL, value != NULL ? flen : 0);
}

static int32_t h_member_claim(gh_plugin_conn *c, const char *topic, size_t len,
                            const char *value, size_t vlen, uint32_t max,
                            const char *announce, size_t alen, uint32_t flags,
                            const char *farewell, size_t flen, gh_plugin_claim_cb cb,
                            void *arg)
{
    const char *ns;
    gh_loop *loop;

    if (c == NULL || topic == NULL || len == 0 || len > GH_TOPIC_MAX_NAME || cb == NULL ||
        value == NULL || vlen == 0 || vlen > GH_TSTATE_MAX_VALUE || !is_utf8(value, vlen) ||
        (announce != NULL && !is_utf8(announce, alen)) || (announce == NULL && alen > 0) ||
        (farewell != NULL && !is_utf8(farewell, flen)) || (farewell == NULL && flen > 0) ||
        alen > ((size_t)1 << 62) || flen > ((size_t)1 << 62))
        return GH_EINVAL;
    if ((loop = serving(c, &ns)) == NULL)
        return -ENOTCONN;
    return gh_tstate_claim(loop->tstate, WS(c), gh_ws_conn_tstate(WS(c)), ns, topic, len,
                           value, vlen, max, announce, alen, flags, farewell, flen, cb, arg);
}

static int32_t h_log_publish(gh_plugin_inst *in, const char *topic, size_t len,
                             const char *data, size_t dlen, uint32_t keep)
{
    if (in == NULL || topic == NULL || len == 0 || len > GH_TOPIC_MAX_NAME || keep == 0 ||
        keep > GH_TSTATE_MAX_KEEP || dlen > ((size_t)1 << 62) || !is_utf8(data, dlen))
        return GH_EINVAL;
    if (in->loop == NULL || in->loop->tstate == NULL)
        return -ENOTCONN;
    return gh_tstate_log_publish(in->loop->tstate, in->pl->desc->name, topic, len, data,
                                 dlen, keep);
}

static const gh_plugin_host host_table = {
    .size = sizeof(gh_plugin_host),
    .abi_major = GH_PLUGIN_ABI_MAJOR,
    .abi_minor = GH_PLUGIN_ABI_MINOR,
    .host_version = GH_VERSION,
    .log = h_log,
    .send = h_send,
    .buffered = h_buffered,
    .close = h_close,
    .client_addr = h_client_addr,
    .client_port = h_client_port,
    .path = h_path,
    .query = h_query,
    .header = h_header,
    .subprotocol = h_subprotocol,
    .set_data = h_set_data,
    .get_data = h_get_data,
    .conn_id = h_conn_id,
    .timer_start = h_timer_start,
    .timer_stop = h_timer_stop,
    .config_get = h_config_get,
    .config_string = h_config_string,
    .config_int = h_config_int,
    .config_bool = h_config_bool,
    .config_size = h_config_size,
    .config_duration = h_config_duration,
    .config_list = h_config_list,
    .config_check_keys = h_config_check_keys,
    .subscribe = h_subscribe,
    .unsubscribe = h_unsubscribe,
    .publish = h_publish,
    .join = h_join,
    .fetch = h_fetch,
    .member_set = h_member_set,
    .log_publish = h_log_publish,
    .member_claim = h_member_claim,
};
