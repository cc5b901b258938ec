/* main.c: the command line: gatehouse [-c FILE] [-t] [-V] [-h].
 *
 * Without -c it reads conf/gateway.yaml (relative to the working folder, as
 * in a source tree), or, when that does not exist, the installed example
 * of the prefix this binary sits in (BINDIR/../etc/gatehouse/gateway.yaml,
 * so an install moved or installed with --prefix finds its own), else the
 * configure-time SYSCONFDIR/gatehouse/gateway.yaml: an install runs as
 * plain `gatehouse`.
 *
 * -t loads the config and everything it names exactly as a start would, but
 * prints every error as FILE:LINE:COL: message and exits 0 or 1 instead of
 * serving. Unknown flags exit 2 with the usage.
 *
 * With `user:`, started as root, it binds and opens everything, then drops
 * to that user before serving (privdrop.c). Started as another user it can
 * only run as itself: if that is the user: and group: asked for, fine;
 * otherwise it refuses to start rather than serve as someone the config
 * did not name. */
#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "errlist.h"
#include "log.h"
#include "pluginhost.h"
#include "privdrop.h"
#include "server.h"

#ifndef GH_VERSION
#define GH_VERSION "0.0.0"
#endif

#ifndef GH_SYSCONFDIR
#define GH_SYSCONFDIR "/etc"
#endif

#define DEFAULT_CONFIG "conf/gateway.yaml"
/* the example config from the binary's folder: "../etc", set by the build
 * when bindir and sysconfdir are both under the prefix */
#ifdef GH_SYSCONF_FROM_BIN
#define BESIDE_CONFIG "BINDIR/" GH_SYSCONF_FROM_BIN "/gatehouse/gateway.yaml"
#endif
#define INSTALLED_CONFIG GH_SYSCONFDIR "/gatehouse/gateway.yaml"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gatehouse [-c FILE] [-t] [-V] [-h]\n"
            "  -c FILE  configuration file (default " DEFAULT_CONFIG ",\n"
            "           or when that does not exist "
#ifdef BESIDE_CONFIG
            BESIDE_CONFIG ",\n           or "
#endif
            INSTALLED_CONFIG ")\n"
            "  -t       check the configuration and plugins, then exit 0 (ok) or 1\n"
            "  -V       print the version and exit\n"
            "  -h       print this help and exit\n");
}

/* The installed example config of the prefix the running binary is in, if
 * there is one: written into buf. Returns buf or NULL. */
static const char *beside_config(char *buf, size_t cap)
{
#ifdef GH_SYSCONF_FROM_BIN
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash;

    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    if ((slash = strrchr(exe, '/')) == NULL)
        return NULL;
    *slash = '\0';
    if ((size_t)snprintf(buf, cap, "%s/%s/gatehouse/gateway.yaml", exe, GH_SYSCONF_FROM_BIN) >= cap)
        return NULL;
    return access(buf, F_OK) == 0 ? buf : NULL;
#else
    (void)buf;
    (void)cap;
    return NULL;
#endif
}

/* Loads and checks everything; prints errors. Returns 0 with *out, or 1. */
static int load(const char *path, bool test_only, gh_site **out)
{
    gh_errlist errs;
    gh_config *cfg = NULL;
    int rc;

    gh_errlist_init(&errs);
    rc = gh_config_load(path, &cfg, &errs);
    if (rc == GH_OK)
        /* -t initialises each plugin once; a server, once per worker */
        rc = gh_site_new(cfg, test_only ? 1 : gh_config_workers(cfg), &errs, out);
    if (rc != GH_OK && errs.n == 0)
        gh_errlist_add(&errs, path, 0, 0, "cannot load: %s", strerror(-rc));
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "%s\n", errs.items[i]);
    gh_errlist_deinit(&errs);
    return rc == GH_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    bool test_only = false;
    gh_site *site = NULL;
    gh_server *srv = NULL;
    const gh_config *cfg;
    gh_priv_plan plan;
    char beside[4200], why[256];
    int opt, rc;

    opterr = 0;
    while ((opt = getopt(argc, argv, ":c:tVh")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test_only = true;
            break;
        case 'V':
            printf("gatehouse %s\n", GH_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            fprintf(stderr, "gatehouse: -%c needs an argument\n", optopt);
            usage(stderr);
            return 2;
        default:
            fprintf(stderr, "gatehouse: unknown option -%c\n", optopt);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "gatehouse: unexpected argument %s\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    if (path == NULL && (access(DEFAULT_CONFIG, F_OK) == 0 || errno != ENOENT))
        path = DEFAULT_CONFIG;
    if (path == NULL)
        path = beside_config(beside, sizeof(beside));
    if (path == NULL)
        path = INSTALLED_CONFIG;
    /* before any plugin code runs (init runs while the config loads) */
    if ((rc = gh_plugin_fatal_init()) != GH_OK)
        fprintf(stderr, "gatehouse: cannot catch fatal signals: %s\n", strerror(-rc));
    if (load(path, test_only, &site) != 0)
        return 1;
    if (test_only) {
        /* a plugin whose init failed would take its routes down: not ok */
        if (gh_plugins_failed(site) > 0) {
            gh_site_unref(site);
            return 1;
        }
        printf("%s: ok\n", path);
        gh_site_unref(site);
        return 0;
    }

    cfg = site->cfg;
    if ((plan = gh_priv_plan_for(cfg)) == GH_PRIV_REFUSE) {
        fprintf(stderr, "%s:%d:%d: user: gatehouse was started as uid %u gid %u, not root, "
                "so it cannot switch to %s (uid %u gid %u): start it as root or as that "
                "user and group, or remove user:\n", cfg->user_loc.file, cfg->user_loc.line,
                cfg->user_loc.col, (unsigned)getuid(), (unsigned)getgid(), cfg->user,
                (unsigned)cfg->uid, (unsigned)cfg->gid);
        gh_site_unref(site);
        return 1;
    }
    if (plan == GH_PRIV_DROP) {
        /* a log file made now belongs to the user, so SIGHUP can reopen it */
        const char *logs[] = { cfg->error_log, cfg->access_log };

        for (size_t i = 0; i < 2; i++)
            if (logs[i] != NULL && strcmp(logs[i], "stderr") != 0 &&
                (rc = gh_priv_create_for(logs[i], cfg->uid, cfg->gid)) != GH_OK)
                fprintf(stderr, "gatehouse: warning: log %s: cannot create it for user %s: "
                        "%s\n", logs[i], cfg->user, strerror(-rc));
    }
    gh_log_set_level((gh_log_level)cfg->log_level);
    if ((rc = gh_log_open(cfg->error_log)) != GH_OK) {
        fprintf(stderr, "gatehouse: error log %s: %s\n", cfg->error_log, strerror(-rc));
        gh_site_unref(site);
        return 1;
    }
    if (plan == GH_PRIV_STAY_ROOT)
        GH_LOG(GH_LOG_WARN, "running as root: no user: in %s; set user: (and group:) to "
               "serve as an unprivileged user once the listeners are bound", cfg->path);
    if (gh_server_new(site, &srv) != GH_OK)
        return 1;
    cfg = NULL;                 /* the server's now; a reload replaces it */
    if (plan == GH_PRIV_DROP) {
        const gh_config *now = gh_server_config(srv);

        if ((rc = gh_priv_drop(now->uid, now->gid, why, sizeof(why))) != GH_OK) {
            GH_LOG(GH_LOG_ERROR, "cannot drop privileges to user %s (uid %u gid %u): %s; "
                   "exiting", now->user, (unsigned)now->uid, (unsigned)now->gid, why);
            gh_server_free(srv);
            gh_log_close();
            return 1;
        }
        GH_LOG(GH_LOG_INFO, "dropped privileges: now user %s (uid %u), group %s (gid %u)",
               now->user, (unsigned)now->uid, now->group != NULL ? now->group : "its own",
               (unsigned)now->gid);
    }
    rc = gh_server_run(srv);
    gh_server_free(srv);
    gh_log_close();
    return rc;
}
