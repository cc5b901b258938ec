/* pluginhost.h: loading WebSocket plugins (.so) and running one instance
 * per websocket route. Internal to core/.
 *
 * The ABI itself is plugins/include/gatehouse/plugin.h; this module is the
 * host side of it: the loader and its refusals, the host function table,
 * plugin timers and config lookups, and the calls into a plugin's
 * callbacks that wsconn.c makes. */
#ifndef GH_PLUGINHOST_H
#define GH_PLUGINHOST_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "errlist.h"
#include "loop.h"

struct gh_plugins;
struct gh_ws_conn;

/* One plugin instance: the plugin named by one websocket route, on one
 * worker (on every worker, or on worker 0 alone for a single-instance
 * plugin). It is the ABI's opaque gh_plugin_inst. Lives as long as its
 * site. */
typedef struct gh_plugin_inst gh_plugin_route;

/* Loads every *.so in site->cfg->plugins_dir, checks that each websocket
 * route names a loaded plugin (else an error at the route's plugin_loc),
 * and initialises one plugin instance per websocket route and worker
 * (nworkers of them, each init given the same config), or one only, worker
 * 0's, for a plugin with GH_PLUGIN_SINGLE_INSTANCE. Appends every
 * problem to errs. Returns 0 or GH_EINVAL. Sets site->plugins (also on
 * failure: gh_plugins_unload() cleans up).
 *
 * Refused files (another ABI major, a newer minor, no descriptor, a
 * descriptor too small, descriptor flags it does not know, a bad or
 * duplicate name, a plugins folder or file
 * writable by group or others or owned by another user than ours or root)
 * are logged as warnings naming the file and, where versions are the
 * reason, both versions; they are an error only when a route names them.
 * A plugin whose init fails is reported in errs with the route's location
 * too, but does NOT make this fail: its route answers 503 and the daemon
 * serves the rest (gh_plugins_failed() counts them, for `-t`). */
int gh_plugins_load(gh_site *site, unsigned nworkers, gh_errlist *errs);

/* Routes whose plugin init failed (they answer 503). */
size_t gh_plugins_failed(const gh_site *site);

/* What the status page shows of one loaded plugin; strings borrowed from
 * the site's plugins. */
typedef struct gh_plugin_info {
    const char *name;
    const char *version;        /* the plugin's own, "" when it gave none */
    const char *path;           /* the file it was loaded from */
    unsigned    abi_major, abi_minor;   /* what it was built for */
    size_t      routes;         /* websocket routes it serves (each has an
                                   instance per worker; counted once) */
    size_t      failed;         /* of those, routes whose init failed (503) */
} gh_plugin_info;

/* Calls fn for every plugin site loaded, in load order, then refused for
 * every file refused (file's base name and why). Either may be NULL. */
void gh_plugins_each(const gh_site *site, void (*fn)(void *arg, const gh_plugin_info *p),
                     void (*refused)(void *arg, const char *file, const char *why), void *arg);

/* Gives the site's plugin instances of loop's worker (loop->id) their
 * loop (topics, timers), on that loop's thread. Called once the server
 * exists; never for `-t`. */
void gh_plugins_bind(gh_site *site, gh_loop *loop);

/* Finalises worker's instances (on that worker's thread, or once no
 * worker runs). */
void gh_plugins_unload_worker(gh_site *site, unsigned worker);

/* Finalises every instance left and unloads the plugins. NULL-safe on
 * site->plugins. */
void gh_plugins_unload(gh_site *site);

/* ---- for wsconn.c --------------------------------------------------- */

/* The instance serving route route_index of site on worker, or NULL when
 * the route is not a websocket route, its plugin is not loaded or its init
 * failed, or the plugin has a single instance and worker is not its home
 * (gh_plugins_home()). Borrowed from the site. */
gh_plugin_route *gh_plugins_route(const gh_site *site, size_t route_index, unsigned worker);

/* Where a route's connections are served. GH_PLUGINS_EVERY: by the
 * instance of the worker that accepted them (the default). Else the worker
 * of the route's one instance (a plugin with GH_PLUGIN_SINGLE_INSTANCE):
 * always GH_PLUGINS_HOME, worker 0. Worker 0 because it applies every
 * reload before it reads its mailbox again (server.c: the reload runs on
 * it), so a connection moved there from a worker that already serves a
 * new generation finds that generation's instance bound and its listener
 * made. Any thread (what it reads is fixed once the site is loaded, and
 * the caller holds the site). */
#define GH_PLUGINS_EVERY UINT_MAX
#define GH_PLUGINS_HOME  0u
unsigned gh_plugins_home(const gh_site *site, size_t route_index);

/* The plugin's name (the topic namespace); borrowed from the plugin. */
const char *gh_plugin_route_name(const gh_plugin_route *rt);

/* The plugin's subprotocols in preference order: *n of them (0: none).
 * Borrowed from the plugin. */
const char *const *gh_plugin_route_subprotocols(const gh_plugin_route *rt, size_t *n);

/* The server the instance is bound to, or NULL (under -t). */
gh_loop *gh_plugin_route_loop(const gh_plugin_route *rt);

/* Every call into a plugin's code goes between gh_plugin_call_enter() and
 * gh_plugin_call_leave(): a call that runs past plugin_warn_after is
 * logged and counted, and a fatal signal while it runs is reported
 * naming the plugin, its route and the callback (gh_plugin_fatal_init()). */
typedef enum {
    GH_PLUGIN_CALL_INIT = 0,
    GH_PLUGIN_CALL_OPEN,
    GH_PLUGIN_CALL_MESSAGE,
    GH_PLUGIN_CALL_CLOSE,
    GH_PLUGIN_CALL_TIMER,
    GH_PLUGIN_CALL_STATE,       /* a join or fetch answered */
    GH_PLUGIN_CALL_FINI,
} gh_plugin_call_kind;

typedef struct gh_plugin_call {
    const struct gh_plugin_inst *in;
    gh_plugin_call_kind          kind;
    uint64_t                     t0_ms;     /* coarse clock */
    struct gh_plugin_call       *outer;
} gh_plugin_call;

void gh_plugin_call_enter(gh_plugin_call *pc, const struct gh_plugin_inst *in,
                          gh_plugin_call_kind kind);
void gh_plugin_call_leave(gh_plugin_call *pc);

/* The callback's name for logs and metrics ("message"). */
const char *gh_plugin_call_name(gh_plugin_call_kind kind);

/* Installs the handler of SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT: one
 * line on the error log naming the plugin callback that was running (or
 * none), then the default action, so the process dies of the same signal.
 * Returns 0 or -errno. */
int gh_plugin_fatal_init(void);

/* Callbacks into the plugin. open returns 0 (accepted) or the close code to
 * refuse with (an invalid one is turned into 1011 and logged). */
int  gh_plugin_route_open(gh_plugin_route *rt, struct gh_ws_conn *ws);
void gh_plugin_route_message(gh_plugin_route *rt, struct gh_ws_conn *ws, int opcode,
                             const void *data, size_t len);
void gh_plugin_route_close(gh_plugin_route *rt, struct gh_ws_conn *ws, uint16_t code,
                           const char *reason, size_t reason_len);

#endif
