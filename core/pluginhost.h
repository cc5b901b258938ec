/* pluginhost.h: loading WebSocket plugins (.so) and running one instance
 * per websocket route. Internal to core/. */
#ifndef GH_PLUGINHOST_H
#define GH_PLUGINHOST_H

#include "errlist.h"
#include "server.h"

struct gh_plugins;

/* Loads every *.so in site->cfg->plugins_dir, checks that each websocket
 * route names a loaded plugin (else an error at the route's plugin_loc),
 * and initialises one plugin instance per websocket route. Appends every
 * problem to errs. Returns 0 or GH_EINVAL. Sets site->plugins. */
int gh_plugins_load(gh_site *site, gh_errlist *errs);

/* Gives the site's plugin instances the running server (topics, timers).
 * Called once the server exists; never for `-t`. */
void gh_plugins_bind(gh_site *site, gh_server *srv);

/* Finalises every instance and unloads the plugins. NULL-safe on
 * site->plugins. */
void gh_plugins_unload(gh_site *site);

#endif
