/* test_config.c: the YAML config loader.
 *
 * Every config is written to a file in a fresh temporary folder and loaded
 * by path, so the FILE in "FILE:LINE:COL: message" and the relative-path
 * resolution are the real ones. Error cases are a table: YAML in, the exact
 * first error out, and how many errors there are in all. */
#include "config.h"
#include "err.h"
#include "log.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/gh_test_config.XXXXXX";
static char last_path[PATH_MAX];
static unsigned file_seq;

static void make_tmpdir(void)
{
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        abort();
    }
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void remove_tmpdir(void)
{
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes text (len bytes) to tmpdir/name and returns the path (static). */
static const char *write_file(const char *name, const char *text, size_t len)
{
    FILE *fp;

    snprintf(last_path, sizeof(last_path), "%s/%s", tmpdir, name);
    fp = fopen(last_path, "w");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(text, 1, len, fp), len);
    ck_assert_int_eq(fclose(fp), 0);
    return last_path;
}

/* Writes yaml to a new file and loads it. */
static int load(const char *yaml, gh_config **cfg, gh_errlist *errs)
{
    char name[64];

    snprintf(name, sizeof(name), "t%u.yaml", ++file_seq);
    write_file(name, yaml, strlen(yaml));
    *cfg = NULL;
    gh_errlist_init(errs);
    return gh_config_load(last_path, cfg, errs);
}

static void dump(const gh_errlist *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        fprintf(stderr, "  [%zu] %s\n", i, errs->items[i]);
}

/* Loads yaml that must be valid. */
static gh_config *load_ok(const char *yaml)
{
    gh_errlist errs;
    gh_config *cfg;
    int rc = load(yaml, &cfg, &errs);

    if (rc != GH_OK)
        dump(&errs);
    ck_assert_int_eq(rc, GH_OK);
    ck_assert_uint_eq(errs.n, 0);
    ck_assert_ptr_nonnull(cfg);
    gh_errlist_deinit(&errs);
    return cfg;
}

static char *join(const char *a, const char *b)
{
    static char buf[PATH_MAX + 64];

    if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", a, b) >= sizeof(buf))
        buf[0] = '\0';
    return buf;
}

#define LST "listeners:\n  - listen: 127.0.0.1:8080\n"

/* ---- a full config, every field ---------------------------------------- */

static const char full_yaml[] =
    "plugins_dir: /opt/gh/plugins\n"
    "access_log: logs/access.log\n"
    "error_log: /var/log/gh.err\n"
    "log_level: debug\n"
    "max_connections: 5000\n"
    "drain_delay: 2s\n"
    "drain_timeout: 1m\n"
    "http:\n"
    "  header_timeout: 5s\n"
    "  keepalive_timeout: 1m\n"
    "  send_timeout: 90s\n"
    "  max_head: 32KiB\n"
    "  max_body: 2MiB\n"
    "bus:\n"
    "  redis: \"redis://127.0.0.1:6379/2\"\n"
    "  channel_prefix: \"gh:\"\n"
    "  password: s3cret\n"
    "listeners:\n"
    "  - listen: 127.0.0.1:8080\n"
    "    proxy_protocol: v2\n"
    "    proxy_timeout: 3s\n"
    "    trusted_proxies: [10.0.0.0/8, \"::1\"]\n"
    "    https_ports: [443, 8443]\n"
    "    tls:\n"
    "      cert: tls/cert.pem\n"
    "      key: /etc/gh/key.pem\n"
    "      min_version: TLSv1.3\n"
    "      ciphers: \"ECDHE+AESGCM\"\n"
    "      handshake_timeout: 7s\n"
    "  - listen: \"[::1]:9090\"\n"
    "    proxy_protocol: optional\n"
    "    trusted_proxies: any\n"
    "    https_ports: []\n"
    "routes:\n"
    "  - match: { path: /healthz }\n"
    "    health: {}\n"
    "  - match: { scheme: http, host: example.com }\n"
    "    redirect_https: { status: 308, port: 8443 }\n"
    "  - match: { path: /metrics }\n"
    "    metrics: {}\n"
    "  - match: { prefix: /ws/, scheme: https }\n"
    "    websocket:\n"
    "      plugin: chat\n"
    "      origins: [\"https://A.example\", \"http://b.example:8080\"]\n"
    "      ping_interval: 15s\n"
    "      pong_timeout: 5s\n"
    "      idle_timeout: 0\n"
    "      close_timeout: 2s\n"
    "      max_message: 128KiB\n"
    "      send_backlog: 4MiB\n"
    "      config:\n"
    "        history: 50\n"
    "        rooms: [lobby, dev]\n"
    "        limits: { rate: 20 }\n"
    "  - match: { prefix: / }\n"
    "    static: { root: ../www, index: home.html }\n";

START_TEST(full_config_sets_every_field)
{
    gh_config *cfg = load_ok(full_yaml);
    const gh_listener_conf *l;
    const struct sockaddr_in *sin;
    const struct sockaddr_in6 *sin6;
    const gh_route_conf *r;
    gh_cidr want;

    ck_assert_str_eq(cfg->path, last_path);
    ck_assert_str_eq(cfg->dir, tmpdir);
    ck_assert_str_eq(cfg->plugins_dir, "/opt/gh/plugins");
    ck_assert_str_eq(cfg->access_log, join(tmpdir, "logs/access.log"));
    ck_assert_str_eq(cfg->error_log, "/var/log/gh.err");
    ck_assert_int_eq(cfg->log_level, GH_LOG_DEBUG);
    ck_assert_uint_eq(cfg->max_connections, 5000);
    ck_assert_uint_eq(cfg->drain_delay_ms, 2000);
    ck_assert_uint_eq(cfg->drain_timeout_ms, 60000);
    ck_assert_uint_eq(cfg->http.header_timeout_ms, 5000);
    ck_assert_uint_eq(cfg->http.keepalive_timeout_ms, 60000);
    ck_assert_uint_eq(cfg->http.send_timeout_ms, 90000);
    ck_assert_uint_eq(cfg->http.max_head, 32768);
    ck_assert_uint_eq(cfg->http.max_body, 2097152);
    ck_assert_str_eq(cfg->bus.redis, "redis://127.0.0.1:6379/2");
    ck_assert_str_eq(cfg->bus.channel_prefix, "gh:");
    ck_assert_str_eq(cfg->bus.password, "s3cret");
    ck_assert_uint_eq(cfg->bus.presence_ttl_ms, 10000);     /* not given: the default */

    ck_assert_uint_eq(cfg->nlisteners, 2);
    l = &cfg->listeners[0];
    ck_assert_str_eq(l->listen, "127.0.0.1:8080");
    sin = (const struct sockaddr_in *)&l->addr;
    ck_assert_int_eq(sin->sin_family, AF_INET);
    ck_assert_uint_eq(l->addrlen, sizeof(struct sockaddr_in));
    ck_assert_uint_eq(ntohs(sin->sin_port), 8080);
    ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), 0x7f000001);
    ck_assert_int_eq(l->proxy_protocol, GH_PROXY_V2);
    ck_assert_uint_eq(l->proxy_timeout_ms, 3000);
    ck_assert(!l->trusted_any);
    ck_assert_uint_eq(l->ntrusted, 2);
    ck_assert_int_eq(gh_cidr_parse("10.0.0.0/8", &want), GH_OK);
    ck_assert_mem_eq(&l->trusted[0], &want, sizeof(want));
    ck_assert_int_eq(gh_cidr_parse("::1", &want), GH_OK);
    ck_assert_mem_eq(&l->trusted[1], &want, sizeof(want));
    ck_assert_uint_eq(l->nhttps_ports, 2);
    ck_assert_uint_eq(l->https_ports[0], 443);
    ck_assert_uint_eq(l->https_ports[1], 8443);
    ck_assert(l->tls);
    ck_assert_str_eq(l->tls_cert, join(tmpdir, "tls/cert.pem"));
    ck_assert_str_eq(l->tls_key, "/etc/gh/key.pem");
    ck_assert_str_eq(l->tls_min_version, "TLSv1.3");
    ck_assert_str_eq(l->tls_ciphers, "ECDHE+AESGCM");
    ck_assert_uint_eq(l->tls_handshake_timeout_ms, 7000);
    ck_assert_str_eq(l->loc.file, cfg->path);
    ck_assert_int_eq(l->loc.line, 19);
    ck_assert_int_eq(l->loc.col, 5);
    ck_assert_int_eq(l->tls_loc.line, 25);
    ck_assert_int_eq(l->tls_loc.col, 7);

    l = &cfg->listeners[1];
    ck_assert_str_eq(l->listen, "[::1]:9090");
    sin6 = (const struct sockaddr_in6 *)&l->addr;
    ck_assert_int_eq(sin6->sin6_family, AF_INET6);
    ck_assert_uint_eq(l->addrlen, sizeof(struct sockaddr_in6));
    ck_assert_uint_eq(ntohs(sin6->sin6_port), 9090);
    ck_assert(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
    ck_assert_int_eq(l->proxy_protocol, GH_PROXY_OPTIONAL);
    ck_assert(l->trusted_any);
    ck_assert_uint_eq(l->ntrusted, 0);
    ck_assert_uint_eq(l->nhttps_ports, 0);
    ck_assert(!l->tls);
    ck_assert_int_eq(l->loc.line, 30);

    ck_assert_uint_eq(cfg->nroutes, 5);
    r = &cfg->routes[0];
    ck_assert_int_eq(r->action, GH_ACTION_HEALTH);
    ck_assert_str_eq(r->match.path, "/healthz");
    ck_assert_ptr_null(r->match.prefix);
    ck_assert_ptr_null(r->match.host);
    ck_assert_int_eq(r->match.scheme, GH_SCHEME_ANY);
    ck_assert_int_eq(r->loc.line, 35);
    ck_assert_int_eq(r->loc.col, 5);

    r = &cfg->routes[1];
    ck_assert_int_eq(r->action, GH_ACTION_REDIRECT_HTTPS);
    ck_assert_int_eq(r->match.scheme, GH_SCHEME_HTTP);
    ck_assert_str_eq(r->match.host, "example.com");
    ck_assert_int_eq(r->u.redirect.status, 308);
    ck_assert_int_eq(r->u.redirect.port, 8443);

    ck_assert_int_eq(cfg->routes[2].action, GH_ACTION_METRICS);
    ck_assert_str_eq(cfg->routes[2].match.path, "/metrics");

    r = &cfg->routes[3];
    ck_assert_int_eq(r->action, GH_ACTION_WEBSOCKET);
    ck_assert_str_eq(r->match.prefix, "/ws/");
    ck_assert_int_eq(r->match.scheme, GH_SCHEME_HTTPS);
    ck_assert_str_eq(r->u.ws.plugin, "chat");
    ck_assert_int_eq(r->u.ws.plugin_loc.line, 43);
    ck_assert_int_eq(r->u.ws.plugin_loc.col, 15);
    ck_assert_str_eq(r->u.ws.plugin_loc.file, cfg->path);
    ck_assert_int_eq(r->u.ws.origins, GH_ORIGINS_LIST);
    ck_assert_uint_eq(r->u.ws.norigins, 2);
    ck_assert_str_eq(r->u.ws.origin_list[0], "https://a.example");
    ck_assert_str_eq(r->u.ws.origin_list[1], "http://b.example:8080");
    ck_assert_uint_eq(r->u.ws.ping_interval_ms, 15000);
    ck_assert_uint_eq(r->u.ws.pong_timeout_ms, 5000);
    ck_assert_uint_eq(r->u.ws.idle_timeout_ms, 0);
    ck_assert_uint_eq(r->u.ws.close_timeout_ms, 2000);
    ck_assert_uint_eq(r->u.ws.max_message, 131072);
    ck_assert_uint_eq(r->u.ws.send_backlog, 4194304);
    ck_assert_ptr_nonnull(r->u.ws.config);
    ck_assert_str_eq(gh_cnode_get(r->u.ws.config, "history")->value, "50");

    r = &cfg->routes[4];
    ck_assert_int_eq(r->action, GH_ACTION_STATIC);
    ck_assert_str_eq(r->match.prefix, "/");
    ck_assert_str_eq(r->u.stat.root, join(tmpdir, "../www"));
    ck_assert_str_eq(r->u.stat.index, "home.html");
    gh_config_free(cfg);
}
END_TEST

START_TEST(minimal_config_gets_every_default)
{
    gh_config *cfg = load_ok(LST "routes:\n  - match: {}\n    static: { root: www }\n"
                             "  - match: {}\n    websocket: { plugin: echo }\n"
                             "  - match: {}\n    redirect_https: {}\n");
    const gh_listener_conf *l = &cfg->listeners[0];
    gh_cidr def[6];

    ck_assert_str_eq(cfg->plugins_dir, join(tmpdir, "plugins"));
    ck_assert_str_eq(cfg->access_log, "stderr");
    ck_assert_str_eq(cfg->error_log, "stderr");
    ck_assert_int_eq(cfg->log_level, GH_LOG_INFO);
    ck_assert_uint_eq(cfg->max_connections, 0);
    ck_assert_uint_eq(cfg->drain_delay_ms, 0);
    ck_assert_uint_eq(cfg->drain_timeout_ms, 30000);
    ck_assert_uint_eq(cfg->http.header_timeout_ms, 10000);
    ck_assert_uint_eq(cfg->http.keepalive_timeout_ms, 75000);
    ck_assert_uint_eq(cfg->http.send_timeout_ms, 60000);
    ck_assert_uint_eq(cfg->http.max_head, 16384);
    ck_assert_uint_eq(cfg->http.max_body, 1048576);
    ck_assert_ptr_null(cfg->bus.redis);
    ck_assert_str_eq(cfg->bus.channel_prefix, "gatehouse:");
    ck_assert_ptr_null(cfg->bus.password);
    ck_assert_uint_eq(cfg->bus.presence_ttl_ms, 10000);

    ck_assert_uint_eq(cfg->nlisteners, 1);
    ck_assert_int_eq(l->proxy_protocol, GH_PROXY_OFF);
    ck_assert_uint_eq(l->proxy_timeout_ms, 5000);
    ck_assert_uint_eq(l->max_connections, 0);
    ck_assert(!l->trusted_any);
    ck_assert_uint_eq(gh_cidr_defaults(def, 6), 6);
    ck_assert_uint_eq(l->ntrusted, 6);
    ck_assert_mem_eq(l->trusted, def, sizeof(def));
    ck_assert_uint_eq(l->nhttps_ports, 1);
    ck_assert_uint_eq(l->https_ports[0], 443);
    ck_assert(!l->tls);
    ck_assert_ptr_null(l->tls_cert);
    ck_assert_ptr_null(l->tls_key);
    ck_assert_str_eq(l->tls_min_version, "TLSv1.2");
    ck_assert_ptr_null(l->tls_ciphers);
    ck_assert_uint_eq(l->tls_handshake_timeout_ms, 10000);

    ck_assert_uint_eq(cfg->nroutes, 3);
    ck_assert_int_eq(cfg->routes[0].match.scheme, GH_SCHEME_ANY);
    ck_assert_ptr_null(cfg->routes[0].match.path);
    ck_assert_str_eq(cfg->routes[0].u.stat.index, "index.html");
    ck_assert_int_eq(cfg->routes[1].u.ws.origins, GH_ORIGINS_SAME_HOST);
    ck_assert_uint_eq(cfg->routes[1].u.ws.norigins, 0);
    ck_assert_uint_eq(cfg->routes[1].u.ws.ping_interval_ms, 30000);
    ck_assert_uint_eq(cfg->routes[1].u.ws.pong_timeout_ms, 10000);
    ck_assert_uint_eq(cfg->routes[1].u.ws.idle_timeout_ms, 120000);
    ck_assert_uint_eq(cfg->routes[1].u.ws.close_timeout_ms, 5000);
    ck_assert_uint_eq(cfg->routes[1].u.ws.max_message, 65536);
    ck_assert_uint_eq(cfg->routes[1].u.ws.send_backlog, 1048576);
    ck_assert_ptr_null(cfg->routes[1].u.ws.config);
    ck_assert_int_eq(cfg->routes[2].u.redirect.status, 301);
    ck_assert_int_eq(cfg->routes[2].u.redirect.port, 0);
    gh_config_free(cfg);
}
END_TEST

START_TEST(no_routes_is_a_valid_config)
{
    gh_config *cfg = load_ok(LST);

    ck_assert_uint_eq(cfg->nroutes, 0);
    ck_assert_ptr_null(cfg->routes);
    gh_config_free(cfg);
    cfg = load_ok(LST "routes: []\n");
    ck_assert_uint_eq(cfg->nroutes, 0);
    gh_config_free(cfg);
    cfg = load_ok(LST "routes:\n");
    ck_assert_uint_eq(cfg->nroutes, 0);
    gh_config_free(cfg);
}
END_TEST

/* ---- paths ------------------------------------------------------------- */

START_TEST(relative_paths_resolve_against_the_config_folder)
{
    static const char yaml[] =
        "plugins_dir: ../plugins\n"
        "access_log: access.log\n"
        "error_log: logs/error.log\n"
        "listeners:\n"
        "  - listen: 127.0.0.1:8443\n"
        "    tls: { cert: cert.pem, key: /abs/key.pem }\n"
        "routes:\n"
        "  - match: {}\n"
        "    static: { root: ./www }\n";
    char sub[PATH_MAX], path[PATH_MAX];
    gh_errlist errs;
    gh_config *cfg = NULL;

    snprintf(sub, sizeof(sub), "%s/conf", tmpdir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    write_file("conf/gw.yaml", yaml, strlen(yaml));
    snprintf(path, sizeof(path), "%s", last_path);
    gh_errlist_init(&errs);
    ck_assert_int_eq(gh_config_load(path, &cfg, &errs), GH_OK);
    ck_assert_str_eq(cfg->dir, sub);
    ck_assert_str_eq(cfg->plugins_dir, join(sub, "../plugins"));
    ck_assert_str_eq(cfg->access_log, join(sub, "access.log"));
    ck_assert_str_eq(cfg->error_log, join(sub, "logs/error.log"));
    ck_assert_str_eq(cfg->listeners[0].tls_cert, join(sub, "cert.pem"));
    ck_assert_str_eq(cfg->listeners[0].tls_key, "/abs/key.pem");
    ck_assert_str_eq(cfg->routes[0].u.stat.root, join(sub, "./www"));
    gh_config_free(cfg);
    gh_errlist_deinit(&errs);
}
END_TEST

START_TEST(a_bare_file_name_resolves_against_the_current_folder)
{
    char cwd[PATH_MAX];
    gh_errlist errs;
    gh_config *cfg = NULL;
    int rc;

    write_file("bare.yaml", LST, strlen(LST));
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
    ck_assert_int_eq(chdir(tmpdir), 0);
    gh_errlist_init(&errs);
    rc = gh_config_load("bare.yaml", &cfg, &errs);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_int_eq(rc, GH_OK);
    ck_assert_str_eq(cfg->path, "bare.yaml");
    ck_assert_str_eq(cfg->dir, ".");
    ck_assert_str_eq(cfg->plugins_dir, "./plugins");
    gh_config_free(cfg);
    gh_errlist_deinit(&errs);
}
END_TEST

START_TEST(load_mem_uses_the_given_folder_or_the_current_one)
{
    gh_errlist errs;
    gh_config *cfg = NULL;

    gh_errlist_init(&errs);
    ck_assert_int_eq(gh_config_load_mem("mem.yaml", LST, strlen(LST), "/etc/gh/", &cfg,
                                        &errs), GH_OK);
    ck_assert_str_eq(cfg->plugins_dir, "/etc/gh/plugins");
    ck_assert_str_eq(cfg->path, "mem.yaml");
    gh_config_free(cfg);
    ck_assert_int_eq(gh_config_load_mem("mem.yaml", LST, strlen(LST), NULL, &cfg, &errs),
                     GH_OK);
    ck_assert_str_eq(cfg->dir, ".");
    ck_assert_str_eq(cfg->plugins_dir, "./plugins");
    gh_config_free(cfg);
    ck_assert_int_eq(gh_config_load_mem(NULL, "x: 1\n", 5, "", &cfg, &errs), GH_EINVAL);
    ck_assert_uint_ge(errs.n, 1);
    ck_assert_str_eq(errs.items[0], "<config>:1:1: unknown key \"x\" at the top level "
                     "(expected one of: plugins_dir, access_log, error_log, log_level, "
                     "max_connections, drain_delay, drain_timeout, plugin_warn_after, workers, "
                     "worker_backlog, user, group, http, limits, bus, listeners, "
                     "upstreams, routes)");
    gh_errlist_deinit(&errs);
}
END_TEST

/* ---- the config: tree -------------------------------------------------- */

START_TEST(websocket_config_tree_keeps_keys_values_and_locations)
{
    gh_config *cfg = load_ok(LST
        "routes:\n"
        "  - match: { path: /ws }\n"
        "    websocket:\n"
        "      plugin: chat\n"
        "      config:\n"
        "        history: 50\n"
        "        name: \"quoted text\"\n"
        "        rooms: [lobby, dev]\n"
        "        limits: { rate: 20, burst: 40 }\n"
        "        empty: {}\n"
        "        nothing:\n");
    const gh_cnode *root = cfg->routes[0].u.ws.config, *n, *m;

    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(root->kind, GH_CNODE_MAP);
    ck_assert_uint_eq(root->nitems, 6);
    ck_assert_int_eq(root->loc.line, 8);
    ck_assert_int_eq(root->loc.col, 9);
    ck_assert_str_eq(root->loc.file, cfg->path);

    n = gh_cnode_get(root, "history");
    ck_assert_ptr_eq(n, &root->items[0]);
    ck_assert_int_eq(n->kind, GH_CNODE_SCALAR);
    ck_assert_str_eq(n->key, "history");
    ck_assert_str_eq(n->value, "50");
    ck_assert_int_eq(n->loc.line, 8);
    ck_assert_int_eq(n->loc.col, 18);

    ck_assert_str_eq(gh_cnode_get(root, "name")->value, "quoted text");

    n = gh_cnode_get(root, "rooms");
    ck_assert_int_eq(n->kind, GH_CNODE_SEQ);
    ck_assert_uint_eq(n->nitems, 2);
    ck_assert_ptr_null(n->items[0].key);
    ck_assert_str_eq(n->items[0].value, "lobby");
    ck_assert_str_eq(n->items[1].value, "dev");
    ck_assert_int_eq(n->items[1].loc.line, 10);
    ck_assert_int_eq(n->items[1].loc.col, 24);

    n = gh_cnode_get(root, "limits");
    ck_assert_int_eq(n->kind, GH_CNODE_MAP);
    m = gh_cnode_get(n, "burst");
    ck_assert_str_eq(m->value, "40");
    ck_assert_int_eq(m->loc.line, 11);
    ck_assert_int_eq(m->loc.col, 36);

    n = gh_cnode_get(root, "empty");
    ck_assert_int_eq(n->kind, GH_CNODE_MAP);
    ck_assert_uint_eq(n->nitems, 0);
    n = gh_cnode_get(root, "nothing");
    ck_assert_int_eq(n->kind, GH_CNODE_SCALAR);
    ck_assert_str_eq(n->value, "");

    ck_assert_ptr_null(gh_cnode_get(root, "missing"));
    ck_assert_ptr_null(gh_cnode_get(root, "limits.rate"));
    ck_assert_ptr_null(gh_cnode_get(NULL, "history"));
    ck_assert_ptr_null(gh_cnode_get(gh_cnode_get(root, "rooms"), "lobby"));
    ck_assert_ptr_null(gh_cnode_get(gh_cnode_get(root, "history"), "x"));
    gh_config_free(cfg);
}
END_TEST

/* ---- accepted spellings ------------------------------------------------ */

typedef struct listen_case {
    const char *text;
    int         family;
    const char *addr;
    unsigned    port;
} listen_case;

static const listen_case listens[] = {
    { "127.0.0.1:8080", AF_INET, "127.0.0.1", 8080 },
    { "0.0.0.0:1", AF_INET, "0.0.0.0", 1 },
    { "10.1.2.3:65535", AF_INET, "10.1.2.3", 65535 },
    { ":8080", AF_INET6, "::", 8080 },
    { "\"[::]:80\"", AF_INET6, "::", 80 },
    { "\"[::1]:443\"", AF_INET6, "::1", 443 },
    { "\"[2001:db8::5]:8443\"", AF_INET6, "2001:db8::5", 8443 },
    { "\"[::ffff:127.0.0.1]:80\"", AF_INET6, "::ffff:127.0.0.1", 80 },
    { "127.0.0.1:0080", AF_INET, "127.0.0.1", 80 },
};

START_TEST(listen_accepts_ipv4_bracketed_ipv6_and_port_only)
{
    char yaml[256];
    gh_config *cfg;
    const gh_listener_conf *l;
    unsigned char want[16];

    snprintf(yaml, sizeof(yaml), "listeners:\n  - listen: %s\n", listens[_i].text);
    cfg = load_ok(yaml);
    l = &cfg->listeners[0];
    ck_assert_int_eq(inet_pton(listens[_i].family, listens[_i].addr, want), 1);
    ck_assert_int_eq(l->addr.ss_family, listens[_i].family);
    if (listens[_i].family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)&l->addr;

        ck_assert_uint_eq(l->addrlen, sizeof(*s));
        ck_assert_mem_eq(&s->sin_addr, want, 4);
        ck_assert_uint_eq(ntohs(s->sin_port), listens[_i].port);
    } else {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&l->addr;

        ck_assert_uint_eq(l->addrlen, sizeof(*s));
        ck_assert_mem_eq(&s->sin6_addr, want, 16);
        ck_assert_uint_eq(ntohs(s->sin6_port), listens[_i].port);
    }
    gh_config_free(cfg);
}
END_TEST

START_TEST(a_listener_may_have_a_connection_limit_of_its_own)
{
    gh_config *cfg = load_ok("listeners:\n  - listen: 127.0.0.1:8080\n"
                             "  - listen: 127.0.0.1:8090\n    max_connections: 64\n");

    ck_assert_uint_eq(cfg->listeners[0].max_connections, 0);
    ck_assert_uint_eq(cfg->listeners[1].max_connections, 64);
    gh_config_free(cfg);
}
END_TEST

START_TEST(proxy_protocol_accepts_every_mode_and_off_spellings)
{
    static const struct { const char *text; gh_proxy_mode want; } modes[] = {
        { "off", GH_PROXY_OFF }, { "\"off\"", GH_PROXY_OFF }, { "false", GH_PROXY_OFF },
        { "v1", GH_PROXY_V1 }, { "v2", GH_PROXY_V2 }, { "any", GH_PROXY_ANY },
        { "optional", GH_PROXY_OPTIONAL },
    };

    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        char yaml[256];
        gh_config *cfg;

        snprintf(yaml, sizeof(yaml), LST "    proxy_protocol: %s\n", modes[i].text);
        cfg = load_ok(yaml);
        ck_assert_int_eq(cfg->listeners[0].proxy_protocol, modes[i].want);
        gh_config_free(cfg);
    }
}
END_TEST

START_TEST(trusted_proxies_may_be_empty_any_or_mapped_ipv6)
{
    gh_config *cfg = load_ok(LST "    trusted_proxies: []\n");

    ck_assert_uint_eq(cfg->listeners[0].ntrusted, 0);
    ck_assert(!cfg->listeners[0].trusted_any);
    gh_config_free(cfg);
    cfg = load_ok(LST "    trusted_proxies: [\"::ffff:10.0.0.0/104\", 192.0.2.1]\n");
    ck_assert_uint_eq(cfg->listeners[0].ntrusted, 2);
    ck_assert_int_eq(cfg->listeners[0].trusted[0].family, AF_INET);
    ck_assert_uint_eq(cfg->listeners[0].trusted[0].prefix, 8);
    ck_assert_uint_eq(cfg->listeners[0].trusted[1].prefix, 32);
    gh_config_free(cfg);
}
END_TEST

START_TEST(origins_accept_same_host_star_and_lists)
{
    static const char base[] = LST "routes:\n  - match: {}\n    websocket:\n"
                               "      plugin: p\n      origins: ";
    static const struct { const char *text; gh_origins_mode mode; size_t n; } cases[] = {
        { "same-host", GH_ORIGINS_SAME_HOST, 0 },
        { "\"*\"", GH_ORIGINS_ANY, 0 },
        { "[]", GH_ORIGINS_LIST, 0 },
        { "[\"https://x.example\"]", GH_ORIGINS_LIST, 1 },
        { "[\"http://127.0.0.1:3000\", \"https://[::1]:8443\", \"HTTPS://Y.EXAMPLE\"]",
          GH_ORIGINS_LIST, 3 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[512];
        gh_config *cfg;

        snprintf(yaml, sizeof(yaml), "%s%s\n", base, cases[i].text);
        cfg = load_ok(yaml);
        ck_assert_int_eq(cfg->routes[0].u.ws.origins, cases[i].mode);
        ck_assert_uint_eq(cfg->routes[0].u.ws.norigins, cases[i].n);
        if (i == 4) {
            ck_assert_str_eq(cfg->routes[0].u.ws.origin_list[1], "https://[::1]:8443");
            ck_assert_str_eq(cfg->routes[0].u.ws.origin_list[2], "https://y.example");
        }
        gh_config_free(cfg);
    }
}
END_TEST

START_TEST(an_action_with_no_value_counts_as_empty)
{
    gh_config *cfg = load_ok(LST "routes:\n  - match:\n    health:\n"
                             "  - match: ~\n    metrics: null\n");

    ck_assert_int_eq(cfg->routes[0].action, GH_ACTION_HEALTH);
    ck_assert_int_eq(cfg->routes[1].action, GH_ACTION_METRICS);
    gh_config_free(cfg);
}
END_TEST

START_TEST(bus_accepts_documented_url_shapes)
{
    static const char *const urls[] = {
        "redis://127.0.0.1:6379", "redis://cache.internal:6380/15",
        "redis://:p@ss/w@rd@10.0.0.5:6379/0", "redis://[::1]:6379",
        "redis://redis-1.svc.cluster.local:1",
    };

    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        char yaml[256];
        gh_config *cfg;

        snprintf(yaml, sizeof(yaml), LST "bus: { redis: \"%s\", channel_prefix: \"\" }\n",
                 urls[i]);
        cfg = load_ok(yaml);
        ck_assert_str_eq(cfg->bus.redis, urls[i]);
        ck_assert_str_eq(cfg->bus.channel_prefix, "");
        gh_config_free(cfg);
    }
}
END_TEST

START_TEST(bus_presence_ttl_takes_durations_of_a_second_or_more)
{
    static const struct { const char *text; uint64_t ms; } cases[] = {
        { "1s", 1000 }, { "1000ms", 1000 }, { "1001ms", 1001 }, { "10s", 10000 },
        { "30s", 30000 }, { "5m", 300000 }, { "1h", 3600000 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[256];
        gh_config *cfg;

        snprintf(yaml, sizeof(yaml),
                 LST "bus:\n  redis: \"redis://127.0.0.1:6379\"\n  presence_ttl: %s\n",
                 cases[i].text);
        cfg = load_ok(yaml);
        ck_assert_uint_eq(cfg->bus.presence_ttl_ms, cases[i].ms);
        gh_config_free(cfg);
    }
}
END_TEST

START_TEST(bus_presence_ttl_defaults_to_10s)
{
    gh_config *cfg = load_ok(LST "bus: { redis: \"redis://127.0.0.1:6379\" }\n");

    ck_assert_uint_eq(cfg->bus.presence_ttl_ms, 10000);
    gh_config_free(cfg);
}
END_TEST

/* ---- user: and group: --------------------------------------------------- */

START_TEST(no_user_means_no_drop)
{
    gh_config *cfg = load_ok(LST);

    ck_assert_ptr_null(cfg->user);
    ck_assert_ptr_null(cfg->group);
    gh_config_free(cfg);
}
END_TEST

START_TEST(user_is_looked_up_and_group_defaults_to_its_primary_group)
{
    struct passwd *pw = getpwnam("root");
    gh_config *cfg;

    ck_assert_ptr_nonnull(pw);
    cfg = load_ok("user: root\n" LST);
    ck_assert_str_eq(cfg->user, "root");
    ck_assert_ptr_null(cfg->group);
    ck_assert_uint_eq(cfg->uid, pw->pw_uid);
    ck_assert_uint_eq(cfg->gid, pw->pw_gid);
    ck_assert_int_eq(cfg->user_loc.line, 1);
    ck_assert_int_eq(cfg->user_loc.col, 7);
    gh_config_free(cfg);
}
END_TEST

/* group: may come before user: and names another group than the user's own. */
START_TEST(group_overrides_the_primary_group_in_any_order)
{
    struct group *gr = getgrnam("nogroup");
    char yaml[256];
    gh_config *cfg;

    if (gr == NULL)
        gr = getgrnam("nobody");
    if (gr == NULL)
        gr = getgrnam("root");
    ck_assert_ptr_nonnull(gr);
    snprintf(yaml, sizeof(yaml), "group: %s\nuser: root\n" LST, gr->gr_name);
    cfg = load_ok(yaml);
    ck_assert_str_eq(cfg->group, gr->gr_name);
    ck_assert_uint_eq(cfg->uid, 0);
    ck_assert_uint_eq(cfg->gid, gr->gr_gid);
    ck_assert_int_eq(cfg->group_loc.line, 1);
    gh_config_free(cfg);
}
END_TEST

START_TEST(status_takes_no_keys_and_null_is_an_empty_mapping)
{
    gh_config *cfg = load_ok(LST "routes:\n  - match: { path: /status }\n"
                             "    allow: [127.0.0.1]\n    status: {}\n"
                             "  - match: { path: /s2 }\n    status:\n");

    ck_assert_uint_eq(cfg->nroutes, 2);
    ck_assert_int_eq(cfg->routes[0].action, GH_ACTION_STATUS);
    ck_assert(cfg->routes[0].has_allow);
    ck_assert_int_eq(cfg->routes[1].action, GH_ACTION_STATUS);
    gh_config_free(cfg);
}
END_TEST

START_TEST(access_log_off_is_null)
{
    gh_config *cfg = load_ok("access_log: off\n" LST);

    ck_assert_ptr_null(cfg->access_log);
    gh_config_free(cfg);
}
END_TEST

/* ---- upstreams: and proxy: ---------------------------------------------- */

/* Routes before upstreams: names are tied up after the whole file is read. */
static const char proxy_yaml[] =
    "listeners:\n"                                                    /* 1 */
    "  - listen: 127.0.0.1:8080\n"
    "routes:\n"
    "  - match: { prefix: /ws/ }\n"
    "    proxy: { upstream: wsserver }\n"                             /* 5 */
    "  - match: { prefix: /api/ }\n"
    "    proxy:\n"
    "      url: \"http://[::1]:9100\"\n"                               /* 8 */
    "      strip_prefix: /api\n"
    "      headers:\n"
    "        set: { Host: api.internal, X-Empty: \"\", X-Tab: \"a\\tb\" }\n"
    "        remove: [X-Powered-By, server]\n"
    "      forwarded: [X-Forwarded-For, forwarded, x-forwarded-host, x-forwarded-port]\n"
    "  - match: { path: /old }\n"
    "    proxy: { url: \"http://10.0.0.7\", forwarded: [] }\n"        /* 15 */
    "  - match: { prefix: / }\n"
    "    proxy: { upstream: webserver }\n"
    "upstreams:\n"
    "  webserver:\n"                                                  /* 19 */
    "    servers: [127.0.0.1:8000]\n"
    "  wsserver:\n"
    "    servers:\n"
    "      - 127.0.0.1:9000\n"                                        /* 23 */
    "      - { address: \"[::1]:9000\", weight: 5 }\n"
    "      - address: unix:run/app.sock\n"
    "        backup: true\n"
    "      - unix:/run/other.sock\n"
    "    balance: least_conn\n"
    "    keepalive: 0\n"
    "    keepalive_timeout: 30s\n"
    "    connect_timeout: 1s\n"
    "    read_timeout: 2m\n"
    "    send_timeout: 90s\n"
    "    max_fails: 3\n"
    "    fail_timeout: 20s\n";

static void assert_upstream_defaults(const gh_upstream_conf *u)
{
    ck_assert_int_eq(u->balance, GH_BALANCE_ROUND_ROBIN);
    ck_assert_uint_eq(u->keepalive, 32);
    ck_assert_uint_eq(u->keepalive_timeout_ms, 60000);
    ck_assert_uint_eq(u->connect_timeout_ms, 5000);
    ck_assert_uint_eq(u->read_timeout_ms, 60000);
    ck_assert_uint_eq(u->send_timeout_ms, 60000);
    ck_assert_uint_eq(u->max_fails, 1);
    ck_assert_uint_eq(u->fail_timeout_ms, 10000);
}

START_TEST(upstreams_and_proxy_routes_load_with_addresses_defaults_and_url_upstreams)
{
    gh_config *cfg = load_ok(proxy_yaml);
    const gh_upstream_conf *u;
    const gh_upstream_server *srv;
    const gh_proxy_conf *p;

    ck_assert_uint_eq(cfg->nupstreams, 4);     /* two declared, then one per url: */

    u = &cfg->upstreams[0];
    ck_assert_str_eq(u->name, "webserver");
    ck_assert_int_eq(u->loc.line, 19);
    ck_assert_int_eq(u->loc.col, 3);
    ck_assert_uint_eq(u->nservers, 1);
    srv = &u->servers[0];
    ck_assert_str_eq(srv->address, "127.0.0.1:8000");
    ck_assert_int_eq(srv->addr.sa.sa_family, AF_INET);
    ck_assert_uint_eq(srv->addrlen, sizeof(struct sockaddr_in));
    ck_assert_uint_eq(ntohl(srv->addr.in4.sin_addr.s_addr), 0x7f000001);
    ck_assert_uint_eq(ntohs(srv->addr.in4.sin_port), 8000);
    ck_assert_uint_eq(srv->weight, 1);
    ck_assert(!srv->backup);
    assert_upstream_defaults(u);

    u = &cfg->upstreams[1];
    ck_assert_str_eq(u->name, "wsserver");
    ck_assert_uint_eq(u->nservers, 4);
    srv = &u->servers[0];
    ck_assert_str_eq(srv->address, "127.0.0.1:9000");
    ck_assert_int_eq(srv->addr.sa.sa_family, AF_INET);
    ck_assert_uint_eq(ntohs(srv->addr.in4.sin_port), 9000);
    ck_assert_int_eq(srv->loc.line, 23);
    ck_assert_int_eq(srv->loc.col, 9);
    srv = &u->servers[1];
    ck_assert_str_eq(srv->address, "[::1]:9000");
    ck_assert_int_eq(srv->addr.sa.sa_family, AF_INET6);
    ck_assert_uint_eq(srv->addrlen, sizeof(struct sockaddr_in6));
    ck_assert(IN6_IS_ADDR_LOOPBACK(&srv->addr.in6.sin6_addr));
    ck_assert_uint_eq(ntohs(srv->addr.in6.sin6_port), 9000);
    ck_assert_uint_eq(srv->weight, 5);
    ck_assert(!srv->backup);
    srv = &u->servers[2];
    ck_assert_str_eq(srv->address, "unix:run/app.sock");
    ck_assert_int_eq(srv->addr.sa.sa_family, AF_UNIX);
    ck_assert_str_eq(srv->addr.un.sun_path, join(tmpdir, "run/app.sock"));
    ck_assert_uint_eq(srv->addrlen, offsetof(struct sockaddr_un, sun_path) +
                                    strlen(srv->addr.un.sun_path) + 1);
    ck_assert(srv->backup);
    ck_assert_uint_eq(srv->weight, 1);
    srv = &u->servers[3];
    ck_assert_str_eq(srv->addr.un.sun_path, "/run/other.sock");
    ck_assert(!srv->backup);
    ck_assert_int_eq(u->balance, GH_BALANCE_LEAST_CONN);
    ck_assert_uint_eq(u->keepalive, 0);
    ck_assert_uint_eq(u->keepalive_timeout_ms, 30000);
    ck_assert_uint_eq(u->connect_timeout_ms, 1000);
    ck_assert_uint_eq(u->read_timeout_ms, 120000);
    ck_assert_uint_eq(u->send_timeout_ms, 90000);
    ck_assert_uint_eq(u->max_fails, 3);
    ck_assert_uint_eq(u->fail_timeout_ms, 20000);

    ck_assert_uint_eq(cfg->nroutes, 4);
    p = &cfg->routes[0].u.proxy;
    ck_assert_int_eq(cfg->routes[0].action, GH_ACTION_PROXY);
    ck_assert_str_eq(p->upstream, "wsserver");
    ck_assert_uint_eq(p->upstream_index, 1);
    ck_assert_int_eq(p->upstream_loc.line, 5);
    ck_assert_int_eq(p->upstream_loc.col, 24);
    ck_assert_ptr_null(p->strip_prefix);
    ck_assert_uint_eq(p->nset, 0);
    ck_assert_uint_eq(p->nremove, 0);
    ck_assert_uint_eq(p->forwarded, GH_FWD_XFF | GH_FWD_XFP | GH_FWD_REAL_IP);

    p = &cfg->routes[1].u.proxy;
    ck_assert_str_eq(p->upstream, "url:http://[::1]:9100");
    ck_assert_uint_eq(p->upstream_index, 2);
    ck_assert_int_eq(p->upstream_loc.line, 8);
    ck_assert_str_eq(p->strip_prefix, "/api");
    ck_assert_uint_eq(p->nset, 3);
    ck_assert_str_eq(p->set[0].name, "Host");
    ck_assert_str_eq(p->set[0].value, "api.internal");
    ck_assert_str_eq(p->set[1].name, "X-Empty");
    ck_assert_str_eq(p->set[1].value, "");
    ck_assert_str_eq(p->set[2].value, "a\tb");
    ck_assert_uint_eq(p->nremove, 2);
    ck_assert_str_eq(p->remove[0], "x-powered-by");
    ck_assert_str_eq(p->remove[1], "server");
    ck_assert_uint_eq(p->forwarded, GH_FWD_XFF | GH_FWD_FORWARDED | GH_FWD_XFH | GH_FWD_XFPORT);
    u = &cfg->upstreams[2];
    ck_assert_str_eq(u->name, "url:http://[::1]:9100");
    ck_assert_int_eq(u->loc.line, 8);
    ck_assert_uint_eq(u->nservers, 1);
    ck_assert_str_eq(u->servers[0].address, "[::1]:9100");
    ck_assert_int_eq(u->servers[0].addr.sa.sa_family, AF_INET6);
    ck_assert_uint_eq(ntohs(u->servers[0].addr.in6.sin6_port), 9100);
    ck_assert_uint_eq(u->servers[0].weight, 1);
    ck_assert(!u->servers[0].backup);
    assert_upstream_defaults(u);

    p = &cfg->routes[2].u.proxy;
    ck_assert_str_eq(p->upstream, "url:http://10.0.0.7");
    ck_assert_uint_eq(p->upstream_index, 3);
    ck_assert_uint_eq(p->forwarded, 0);
    u = &cfg->upstreams[3];
    ck_assert_str_eq(u->servers[0].address, "10.0.0.7:80");      /* the default port */
    ck_assert_int_eq(u->servers[0].addr.sa.sa_family, AF_INET);
    ck_assert_uint_eq(ntohl(u->servers[0].addr.in4.sin_addr.s_addr), 0x0a000007);
    ck_assert_uint_eq(ntohs(u->servers[0].addr.in4.sin_port), 80);
    assert_upstream_defaults(u);

    p = &cfg->routes[3].u.proxy;
    ck_assert_str_eq(p->upstream, "webserver");
    ck_assert_uint_eq(p->upstream_index, 0);
    gh_config_free(cfg);
}
END_TEST

START_TEST(upstreams_may_be_empty_and_unused)
{
    gh_config *cfg = load_ok(LST "upstreams:\n");

    ck_assert_uint_eq(cfg->nupstreams, 0);
    gh_config_free(cfg);
    cfg = load_ok(LST "upstreams: {}\n");
    ck_assert_uint_eq(cfg->nupstreams, 0);
    gh_config_free(cfg);
    cfg = load_ok(LST "upstreams:\n  a-1.b_2: { servers: [\"unix:/a.sock\"] }\n");
    ck_assert_uint_eq(cfg->nupstreams, 1);
    ck_assert_str_eq(cfg->upstreams[0].name, "a-1.b_2");
    gh_config_free(cfg);
}
END_TEST

/* Every prefix of the proxy config loads or fails cleanly (no leak, no
 * crash): a url: upstream or a half-read one is freed like the rest. */
START_TEST(every_prefix_of_the_proxy_config_loads_or_fails_cleanly)
{
    size_t len = strlen(proxy_yaml);

    for (size_t n = 0; n <= len; n++) {
        gh_errlist errs;
        gh_config *cfg = NULL;
        int rc;

        gh_errlist_init(&errs);
        rc = gh_config_load_mem("p.yaml", proxy_yaml, n, "/d", &cfg, &errs);
        ck_assert(rc == GH_OK || rc == GH_EINVAL);
        ck_assert((rc == GH_OK) == (cfg != NULL));
        gh_config_free(cfg);
        gh_errlist_deinit(&errs);
    }
}
END_TEST

/* ---- error shapes ------------------------------------------------------ */

typedef struct err_case {
    const char *yaml;
    const char *want;   /* the first error after "PATH:" */
    size_t      nerr;
} err_case;

#define ROUTE LST "routes:\n  - match: {}\n"       /* the route's keys are on line 5 */
#define D10 "0123456789"
#define WS ROUTE "    websocket:\n      plugin: p\n"  /* ws keys on line 7 */
#define UP LST "upstreams:\n  web:\n"               /* web's keys on line 5 */
#define UPS UP "    servers: [127.0.0.1:8000]\n"     /* and more on line 6 */
#define PX ROUTE "    proxy:\n"                      /* proxy keys on line 6 */
#define PXU PX "      url: http://127.0.0.1:1\n"    /* and more on line 7 */

static const err_case err_cases[] = {
    /* user: and group: name accounts of this system */
    { "user: gh-no-such-user-x\n" LST,
      "1:7: user: no such user \"gh-no-such-user-x\" on this system", 1 },
    { "user: root\ngroup: gh-no-such-group-x\n" LST,
      "2:8: group: no such group \"gh-no-such-group-x\" on this system", 1 },
    { "group: root\n" LST,
      "1:8: group: needs user: (gatehouse drops to a user and its group together)", 1 },
    { "user: \"\"\n" LST, "1:7: user: must not be empty", 1 },
    { "user: [root]\n" LST, "1:7: user: expected a string, got a sequence", 1 },
    /* 0: unknown keys */
    { "plugin_dir: p\n" LST,
      "1:1: unknown key \"plugin_dir\" at the top level; did you mean \"plugins_dir\"?", 1 },
    { LST "    tls: { cert: a, key: b, foo: 1 }\n",
      "3:29: unknown key \"foo\" in tls (expected one of: cert, key, min_version, "
      "ciphers, handshake_timeout)", 1 },
    { LST "    proxy_protocl: v1\n",
      "3:5: unknown key \"proxy_protocl\" in listener; did you mean \"proxy_protocol\"?", 1 },
    { ROUTE "    health: { verbose: true }\n",
      "5:15: unknown key \"verbose\" in health (it takes no keys: write {})", 1 },
    { ROUTE "    status: { root: www }\n",
      "5:15: unknown key \"root\" in status (it takes no keys: write {})", 1 },
    { ROUTE "    status: []\n", "5:13: status: expected a mapping, got a sequence", 1 },
    /* 4: wrong types and missing keys */
    { "listeners: {listen: 127.0.0.1:80}\n",
      "1:12: listeners: expected a sequence, got a mapping", 1 },
    { "listeners: []\n", "1:12: listeners: at least one listener is required", 1 },
    { "log_level: info\n", "1:1: missing required key \"listeners\"", 1 },
    { "listeners:\n  - proxy_protocol: v1\n",
      "2:5: listener: missing required key \"listen\"", 1 },
    { "listeners:\n  - 127.0.0.1:80\n",
      "2:5: listener: expected a mapping, got a scalar (write - listen: HOST:PORT)", 1 },
    { "plugins_dir: {}\n" LST, "1:14: plugins_dir: expected a path, got a mapping", 1 },
    { "plugins_dir: \"\"\n" LST, "1:14: plugins_dir: must not be empty", 1 },
    { "listeners:\n  - listen:\n",
      "2:12: listen: missing value (expected IP:PORT)", 1 },
    { LST "routes: {}\n", "3:9: routes: expected a sequence, got a mapping", 1 },
    { LST "routes:\n  - health\n", "4:5: route: expected a mapping, got a scalar", 1 },
    { LST "routes:\n  - health: {}\n", "4:5: route: missing required key \"match\"", 1 },
    { WS "      config: [1]\n", "7:15: config: expected a mapping, got a sequence", 1 },
    { LST "[a]: 1\n", "3:1: a mapping key must be a string, not a sequence", 1 },
    /* 17: addresses and ports */
    { "listeners:\n  - listen: 127.0.0.1:70000\n",
      "2:13: listen: port 70000 not in 1..65535", 1 },
    { "listeners:\n  - listen: 127.0.0.1:0\n", "2:13: listen: port 0 not in 1..65535", 1 },
    { "listeners:\n  - listen: example.com:80\n",
      "2:13: listen: expected IP:PORT, [IPv6]:PORT or :PORT, got \"example.com:80\" "
      "(names are not resolved: write 127.0.0.1:8080)", 1 },
    { "listeners:\n  - listen: localhost:80\n", "2:13: listen: expected IP:PORT", 1 },
    { "listeners:\n  - listen: 127.0.0.1\n", "2:13: listen: expected IP:PORT", 1 },
    { "listeners:\n  - listen: 8080\n", "2:13: listen: expected IP:PORT", 1 },
    { "listeners:\n  - listen: ::1:8080\n",
      "2:13: listen: an IPv6 address needs brackets, e.g. [::1]:8080; got \"::1:8080\"", 1 },
    { "listeners:\n  - listen: \"[::1]\"\n", "2:13: listen: expected IP:PORT", 1 },
    { "listeners:\n  - listen: 127.0.0.1:80\n    max_connections: -1\n",
      "3:22: max_connections: expected a whole number in 0..2147483647, got \"-1\"", 1 },
    { "listeners:\n  - listen: 127.0.0.1:80\n    max_connections: [8]\n",
      "3:22: max_connections: expected a whole number", 1 },
    { "listeners:\n  - listen: 127.0.0.1:80\n  - listen: 127.0.0.1:80\n",
      "3:5: listen: 127.0.0.1:80 is also the address of the listener at line 2", 1 },
    { LST "    trusted_proxies: [10.0.0.1/8]\n",
      "3:23: trusted_proxies: bad CIDR range \"10.0.0.1/8\" (expected ADDR or "
      "ADDR/PREFIX with no host bits set, e.g. 10.0.0.0/8)", 1 },
    { LST "    trusted_proxies: 10.0.0.0/8\n",
      "3:22: trusted_proxies: expected a sequence of CIDR ranges", 1 },
    { LST "    https_ports: [443, 0]\n", "3:24: https_ports: port 0 not in 1..65535", 1 },
    { LST "    https_ports: 443\n", "3:18: https_ports: expected a sequence of ports", 1 },
    { ROUTE "    redirect_https: { port: 70000 }\n",
      "5:29: port: port 70000 not in 1..65535", 1 },
    /* 31: durations and sizes */
    { WS "      ping_interval: 30 sec\n",
      "7:22: ping_interval: bad duration \"30 sec\" (use 500ms, 30s, 5m)", 1 },
    { "drain_timeout: 1.5s\n" LST,
      "1:16: drain_timeout: bad duration \"1.5s\" (use 500ms, 30s, 5m)", 1 },
    { "drain_timeout: 9000h\n" LST,
      "1:16: drain_timeout: duration \"9000h\" is too long (at most 8784h)", 1 },
    { WS "      pong_timeout: 0s\n", "7:21: pong_timeout: must be more than 0", 1 },
    { "http:\n  max_head: 16kb\n" LST,
      "2:13: max_head: bad size \"16kb\" (use 4096, 64KiB, 1MiB)", 1 },
    { WS "      max_message: 0\n", "7:20: max_message: must be more than 0", 1 },
    { "http: { max_body: 2TiB }\n" LST, "1:19: max_body: bad size \"2TiB\"", 1 },
    { "http: { max_body: 2000GiB }\n" LST,
      "1:19: max_body: size \"2000GiB\" is too large (at most 1TiB)", 1 },
    /* 39: actions */
    { LST "routes:\n  - match: { path: /x }\n",
      "4:5: route: no action (give one of static, health, redirect_https, metrics, "
      "websocket, proxy, status)", 1 },
    { ROUTE "    health: {}\n    metrics: {}\n",
      "6:5: route: a second action metrics after health; a route has exactly one", 1 },
    { ROUTE "    static: { index: i.html }\n",
      "5:13: static: missing required key \"root\"", 1 },
    { ROUTE "    static: { root: www, index: a/b.html }\n",
      "5:33: index: expected a file name without /, got \"a/b.html\"", 1 },
    { ROUTE "    redirect_https: { status: 300 }\n",
      "5:31: status: bad value \"300\" (expected 301, 302, 307 or 308)", 1 },
    { ROUTE "    websocket: { origins: \"*\" }\n",
      "5:16: websocket: missing required key \"plugin\"", 1 },
    { ROUTE "    websocket: { plugin: ../chat }\n",
      "5:26: plugin: bad plugin name \"../chat\"", 1 },
    { WS "      origins: everyone\n",
      "7:16: origins: bad value \"everyone\" (expected same-host, \"*\" or a list", 1 },
    { WS "      origins: [\"https://a.example/\"]\n",
      "7:17: origins: bad origin \"https://a.example/\"", 1 },
    /* 48: match */
    { LST "routes:\n  - match: { path: x }\n    health: {}\n",
      "4:20: path: must start with /, got \"x\"", 1 },
    { LST "routes:\n  - match: { prefix: \"/a b\" }\n    health: {}\n",
      "4:22: prefix: no spaces, control characters, ? or # allowed", 1 },
    { LST "routes:\n  - match: { path: /a, prefix: /b }\n    health: {}\n",
      "4:12: match: give path (exact) or prefix, not both", 1 },
    { LST "routes:\n  - match: { host: \"a.example:80\" }\n    health: {}\n",
      "4:20: host: expected a host name without port or scheme", 1 },
    { LST "routes:\n  - match: { scheme: ftp }\n    health: {}\n",
      "4:22: scheme: bad value \"ftp\" (expected http or https)", 1 },
    /* 53: enums and scalars */
    { LST "    proxy_protocol: v3\n",
      "3:21: proxy_protocol: bad value \"v3\" (expected off, v1, v2, any or optional)", 1 },
    { LST "    tls: { cert: c, key: k, min_version: TLSv1.1 }\n",
      "3:42: min_version: bad value \"TLSv1.1\" (expected TLSv1.2 or TLSv1.3)", 1 },
    { LST "    tls: { key: k.pem }\n", "3:10: tls: missing required key \"cert\"", 1 },
    { "error_log: off\n" LST, "1:12: error_log: cannot be off (use stderr or a path)", 1 },
    { "log_level: loud\n" LST,
      "1:12: log_level: bad value \"loud\" (expected debug, info, warn or error)", 1 },
    { "max_connections: -1\n" LST,
      "1:18: max_connections: expected a whole number in 0..2147483647, got \"-1\"", 1 },
    /* 59: bus */
    { "bus: { redis: \"redis://127.0.0.1\" }\n" LST,
      "1:15: redis: bad URL \"redis://127.0.0.1\": a port is required (HOST:PORT)", 1 },
    { "bus: { redis: \"redis://h:6379/16\" }\n" LST,
      "1:15: redis: bad URL \"redis://h:6379/16\": the database after / must be a "
      "number in 0..15", 1 },
    { "bus: { redis: \"rediss://h:6379\" }\n" LST,
      "1:15: redis: bad URL \"rediss://h:6379\": the scheme must be redis://", 1 },
    { "bus: { redis: \"redis://user:pw@h:6379\" }\n" LST,
      "1:15: redis: bad URL \"redis://user:pw@h:6379\": a password is written "
      ":PASSWORD@", 1 },
    { "bus: { channel_prefix: x }\n" LST, "1:6: bus: missing required key \"redis\"", 1 },
    { "bus: { redis: \"redis://:a@h:1\", password: b }\n" LST,
      "1:6: bus: password given twice, in the redis URL and as password:", 1 },
    /* 65: bus.presence_ttl */
    { "bus: { redis: \"redis://h:1\", presence_ttl: 0 }\n" LST,
      "1:44: presence_ttl: must be more than 0", 1 },
    { "bus: { redis: \"redis://h:1\", presence_ttl: 0s }\n" LST,
      "1:44: presence_ttl: must be more than 0", 1 },
    { "bus: { redis: \"redis://h:1\", presence_ttl: 500ms }\n" LST,
      "1:44: presence_ttl: must be at least 1000ms", 1 },
    { "bus:\n  redis: \"redis://h:1\"\n  presence_ttl: 999ms\n" LST,
      "3:17: presence_ttl: must be at least 1000ms", 1 },
    { "bus: { redis: \"redis://h:1\", presence_ttl: 1.5s }\n" LST,
      "1:44: presence_ttl: bad duration \"1.5s\" (use 500ms, 30s, 5m)", 1 },
    { "bus: { redis: \"redis://h:1\", presence_ttl: 10 }\n" LST,
      "1:44: presence_ttl: bad duration \"10\" (use 500ms, 30s, 5m)", 1 },
    { "bus: { redis: \"redis://h:1\", presence_ttl: -1s }\n" LST,
      "1:44: presence_ttl: bad duration \"-1s\" (use 500ms, 30s, 5m)", 1 },
    { "bus: { redis: \"redis://h:1\", presence_ttl: 9000h }\n" LST,
      "1:44: presence_ttl: duration \"9000h\" is too long (at most 8784h)", 1 },
    { "bus: { redis: \"redis://h:1\", presence_ttl: [1s] }\n" LST,
      "1:44: presence_ttl: expected a duration such as 30s, got a sequence", 1 },
    { "bus: { redis: \"redis://h:1\", presence: 10s }\n" LST,
      "1:30: unknown key \"presence\" in bus", 1 },
    /* 75: the file itself */
    { LST "log_level: info\nlog_level: debug\n",
      "4:1: duplicate key \"log_level\" (first at line 3)", 1 },
    { WS "      config:\n        history: 1\n        history: 2\n",
      "9:9: duplicate key \"history\" (first at line 8)", 1 },
    { "listeners: [\n", "2:1: YAML: did not find expected node content (while parsing "
      "a flow node at line 2 column 1)", 1 },
    { LST "  bad indent: 1\n", "3:3: YAML: did not find expected '-' indicator (while "
      "parsing a block collection at line 2 column 3)", 1 },
    { "", "1:1: the config is empty (it needs at least listeners:)", 1 },
    { "# only a comment\n\n", "1:1: the config is empty (it needs at least listeners:)", 1 },
    { "---\n", "2:1: the config is empty (it needs at least listeners:)", 1 },
    { "- a\n- b\n", "1:1: expected a mapping at the top level, got a sequence", 1 },
    { "hello\n", "1:1: expected a mapping at the top level, got a scalar", 1 },
    { LST "---\n" LST, "3:1: a second YAML document: the config is one document", 1 },
    { LST "log_level: *lvl\n",
      "3:12: alias of \"lvl\" refused: aliases can expand exponentially (\"billion "
      "laughs\"); repeat the value instead", 1 },
    { LST "log_level: &lvl info\n",
      "3:12: anchor \"lvl\" refused: anchors and aliases are not supported (an alias can "
      "expand exponentially, \"billion laughs\")", 1 },
    { LST "log_level: !!str info\n",
      "3:12: tag \"tag:yaml.org,2002:str\" not supported: write the plain value", 1 },
    { LST "plugins_dir: \"a\\0b\"\n",
      "3:14: a NUL character (\\0) is not allowed in a value", 1 },
    { LST "plugins_dir: \"\xff\"\n", "3:15: YAML: invalid leading UTF-8 octet", 1 },
    /* text from the file is escaped and cut in messages */
    { "log_level: \"a\\nb\\x01\\\"" D10 D10 D10 D10 D10 D10 D10 D10 D10 D10 "\"\n" LST,
      "1:12: log_level: bad value \"a\\x0ab\\x01\\\"" D10 D10 D10 D10 D10 D10 D10
      "012...\" (expected debug, info, warn or error)", 1 },
    /* 91: upstreams: (keys of "web" on line 5) */
    { UP "    servers: []\n", "5:14: servers: at least one server is required", 1 },
    { UP "    servers: 127.0.0.1:8000\n",
      "5:14: servers: expected a sequence of addresses, e.g. [127.0.0.1:8000]; got a scalar", 1 },
    { UP "    balance: least_conn\n", "5:5: upstream \"web\": missing required key \"servers\"", 1 },
    { UPS "    balance: random\n",
      "6:14: balance: bad value \"random\" (expected round_robin, least_conn or client_ip)", 1 },
    { LST "upstreams:\n  \"a b\":\n    servers: [127.0.0.1:1]\n",
      "4:3: upstreams: bad upstream name \"a b\" (1 to 64 of A-Z a-z 0-9 _ . -)", 1 },
    { LST "upstreams:\n  " D10 D10 D10 D10 D10 D10 "abcde: { servers: [127.0.0.1:1] }\n",
      "4:3: upstreams: bad upstream name \"" D10 D10 D10 D10 D10, 1 },
    { LST "upstreams: [web]\n",
      "3:12: upstreams: expected a mapping of names to upstreams, got a sequence", 1 },
    { LST "upstreams:\n  web: 127.0.0.1:80\n",
      "4:8: upstream \"web\": expected a mapping, got a scalar", 1 },
    { UPS "    server: x\n",
      "6:5: unknown key \"server\" in upstream \"web\"; did you mean \"servers\"?", 1 },
    /* 100: server addresses */
    { UP "    servers: [backend:8000]\n",
      "5:15: servers: bad address \"backend:8000\": names are not resolved: write an IP "
      "literal, e.g. 127.0.0.1:8000 (expected IP:PORT, [IPv6]:PORT or unix:PATH)", 1 },
    { UP "    servers: [\"::1:8000\"]\n",
      "5:15: servers: bad address \"::1:8000\": an IPv6 address needs brackets, e.g. "
      "[::1]:8000", 1 },
    { UP "    servers: [127.0.0.1:70000]\n",
      "5:15: servers: bad address \"127.0.0.1:70000\": the port must be a number in 1..65535", 1 },
    { UP "    servers: [127.0.0.1]\n",
      "5:15: servers: bad address \"127.0.0.1\": a port is required (HOST:PORT)", 1 },
    { UP "    servers: [\"[::1]\"]\n",
      "5:15: servers: bad address \"[::1]\": a port is required (HOST:PORT)", 1 },
    { UP "    servers: [\"[fe80::zz]:80\"]\n",
      "5:15: servers: bad address \"[fe80::zz]:80\": not an IPv6 address in the brackets", 1 },
    { UP "    servers: [\":80\"]\n",
      "5:15: servers: bad address \":80\": a host is required", 1 },
    { UP "    servers: [\"unix:\"]\n",
      "5:15: servers: unix: needs a socket path, e.g. unix:/run/app.sock", 1 },
    { UP "    servers: [\"unix:/" D10 D10 D10 D10 D10 D10 D10 D10 D10 D10 D10 "\"]\n",
      "5:15: servers: the socket path \"/0123", 1 },
    { UP "    servers:\n      - weight: 2\n", "6:9: server: missing required key \"address\"", 1 },
    { UP "    servers:\n      - { address: 127.0.0.1:1, weight: 0 }\n",
      "6:41: weight: expected a whole number in 1..100, got \"0\"", 1 },
    { UP "    servers:\n      - { address: 127.0.0.1:1, weight: 101 }\n",
      "6:41: weight: expected a whole number in 1..100, got \"101\"", 1 },
    { UP "    servers:\n      - { address: 127.0.0.1:1, backup: yes }\n",
      "6:41: backup: bad value \"yes\" (expected true or false)", 1 },
    { UP "    servers:\n      - { address: 127.0.0.1:1, backup: true }\n",
      "6:7: servers: every server is a backup; at least one must not be", 1 },
    { UP "    servers:\n      - 127.0.0.1:1\n      - \"[::1]:1\"\n"
      "      - { address: 127.0.0.1:1, backup: true }\n",
      "8:9: servers: \"127.0.0.1:1\" is also the address of the server at line 6", 1 },
    { UP "    servers: [\"unix:a.sock\", \"unix:b.sock\", \"unix:b.sock\"]\n",
      "5:45: servers: \"unix:b.sock\" is also the address of the server at line 5", 1 },
    { UP "    servers: [[127.0.0.1:1]]\n",
      "5:15: servers: expected an address or a mapping with address:, got a sequence", 1 },
    /* 117: upstream timeouts and counts */
    { UPS "    keepalive_timeout: 0s\n", "6:24: keepalive_timeout: must be more than 0", 1 },
    { UPS "    connect_timeout: 0\n", "6:22: connect_timeout: must be more than 0", 1 },
    { UPS "    read_timeout: 0ms\n", "6:19: read_timeout: must be more than 0", 1 },
    { UPS "    send_timeout: 0s\n", "6:19: send_timeout: must be more than 0", 1 },
    { UPS "    fail_timeout: 0\n", "6:19: fail_timeout: must be more than 0", 1 },
    { UPS "    max_fails: -1\n",
      "6:16: max_fails: expected a whole number in 0..2147483647, got \"-1\"", 1 },
    { UPS "    keepalive: lots\n",
      "6:16: keepalive: expected a whole number in 0..2147483647, got \"lots\"", 1 },
    /* 124: proxy: upstream and url (keys of proxy on line 6) */
    { PX "      upstream: nope\n",
      "6:17: proxy: unknown upstream \"nope\" (no upstreams: defined)", 1 },
    { LST "upstreams:\n  a: { servers: [127.0.0.1:1] }\n  b.c: { servers: [127.0.0.1:2] }\n"
      "routes:\n  - match: {}\n    proxy: { upstream: x }\n",
      "8:24: proxy: unknown upstream \"x\" (defined: a, b.c)", 1 },
    { ROUTE "    proxy: {}\n",
      "5:12: proxy: give upstream: NAME (one of upstreams:) or url: \"http://IP:PORT\"", 1 },
    { PX "      url: \"http://127.0.0.1:1\"\n      upstream: a\n",
      "7:7: proxy: give upstream or url, not both", 1 },
    { PX "      upstream: \"url:http://1.2.3.4\"\n",
      "6:17: upstream: bad upstream name \"url:http://1.2.3.4\" (1 to 64 of A-Z a-z 0-9 _ . -; "
      "for an address write url: \"http://IP:PORT\")", 1 },
    { PX "      url: \"https://app.internal\"\n",
      "6:12: url: bad URL \"https://app.internal\": names are not resolved: write an IP "
      "literal, e.g. 127.0.0.1:8000 (expected http(s)://IP:PORT or http(s)://[IPv6]:PORT)", 1 },
    { PX "      url: ftp://1.2.3.4\n",
      "6:12: url: bad URL \"ftp://1.2.3.4\": the scheme must be http:// or https://", 1 },
    { PX "      url: http://backend:8000\n",
      "6:12: url: bad URL \"http://backend:8000\": names are not resolved: write an IP "
      "literal, e.g. 127.0.0.1:8000", 1 },
    { PX "      url: http://127.0.0.1:8000/app\n",
      "6:12: url: bad URL \"http://127.0.0.1:8000/app\": a path is not allowed (the "
      "request's path is sent as is; use strip_prefix to remove a prefix)", 1 },
    { PX "      url: \"http://127.0.0.1:8000?a=1\"\n",
      "6:12: url: bad URL \"http://127.0.0.1:8000?a=1\": a query or fragment is not allowed", 1 },
    { PX "      url: http://u:p@127.0.0.1:8000\n",
      "6:12: url: bad URL \"http://u:p@127.0.0.1:8000\": a user name or password is not "
      "allowed", 1 },
    { PX "      url: http://127.0.0.1:0\n",
      "6:12: url: bad URL \"http://127.0.0.1:0\": the port must be a number in 1..65535", 1 },
    { PX "      url: \"http://[::1\"\n",
      "6:12: url: bad URL \"http://[::1\": an IPv6 address needs a closing ]", 1 },
    { PXU "      upstreams: a\n",
      "7:7: unknown key \"upstreams\" in proxy; did you mean \"upstream\"?", 1 },
    /* 138: strip_prefix, headers, forwarded (keys on line 7) */
    { PXU "      strip_prefix: api\n", "7:21: strip_prefix: must start with /, got \"api\"", 1 },
    { PXU "      strip_prefix: \"/a?b\"\n",
      "7:21: strip_prefix: no spaces, control characters, ? or # allowed", 1 },
    { PXU "      headers: { set: { \"X Y\": 1 } }\n",
      "7:25: set: bad header name \"X Y\" (a token: letters, digits and !#$%&'*+-.^_`|~)", 1 },
    { PXU "      headers: { set: { Connection: close } }\n",
      "7:25: set: \"Connection\" is a hop-by-hop or framing header, which gatehouse "
      "manages itself", 1 },
    { PXU "      headers: { set: { content-length: 0 } }\n",
      "7:25: set: \"content-length\" is a hop-by-hop or framing header", 1 },
    { PXU "      headers: { remove: [Transfer-Encoding] }\n",
      "7:27: remove: \"Transfer-Encoding\" is a hop-by-hop or framing header, which "
      "gatehouse manages itself", 1 },
    { PXU "      headers: { remove: [Host] }\n",
      "7:27: remove: \"host\" cannot be removed (HTTP/1.1 requires it; set it instead)", 1 },
    { PXU "      headers: { set: { X-A: \"a\\rb\" } }\n",
      "7:30: set: \"X-A\": the value has a control character (CR, LF and the like; only "
      "tab is allowed)", 1 },
    { PXU "      headers: { set: { X-A: { b: 1 } } }\n",
      "7:30: set: \"X-A\": expected a header value (\"\" for an empty one), got a mapping", 1 },
    { PXU "      headers:\n        set:\n          X-A: 1\n          x-a: 2\n",
      "10:11: set: \"x-a\" given twice (header names are case-insensitive)", 1 },
    { PXU "      headers: { set: { X-A: 1 }, remove: [x-a] }\n",
      "7:44: remove: \"x-a\" is also in set", 1 },
    { PXU "      headers: { remove: [x-a, X-A] }\n",
      "7:32: remove: \"X-A\" given twice (header names are case-insensitive)", 1 },
    { PXU "      headers: { add: {} }\n",
      "7:18: unknown key \"add\" in headers (expected one of: set, remove)", 1 },
    { PXU "      headers: { set: [a] }\n",
      "7:23: set: expected a mapping of header names to values, got a sequence", 1 },
    { PXU "      headers: { remove: x-a }\n",
      "7:26: remove: expected a sequence of header names, e.g. [x-powered-by]; got a scalar", 1 },
    { PXU "      forwarded: [x-forwarded-for, via]\n",
      "7:36: forwarded: unknown header \"via\" (expected x-forwarded-for, x-forwarded-proto, "
      "x-forwarded-host, x-forwarded-port, x-real-ip or forwarded)", 1 },
    { PXU "      forwarded: x-real-ip\n",
      "7:18: forwarded: expected a sequence of header names, e.g. [x-forwarded-for, "
      "x-forwarded-proto], or []; got a scalar", 1 },
};

START_TEST(each_error_names_file_line_col_and_cause)
{
    const err_case *ec = &err_cases[_i];
    gh_errlist errs;
    gh_config *cfg;
    char want[PATH_MAX + 1024];
    int rc = load(ec->yaml, &cfg, &errs);

    snprintf(want, sizeof(want), "%s:%s", last_path, ec->want);
    if (errs.n != ec->nerr || errs.n == 0 ||
        strncmp(errs.items[0], want, strlen(want)) != 0) {
        fprintf(stderr, "case %d: want %zu error(s), first\n  %s\ngot:\n", _i, ec->nerr,
                want);
        dump(&errs);
    }
    ck_assert_int_eq(rc, GH_EINVAL);
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(errs.n, ec->nerr);
    ck_assert(strncmp(errs.items[0], want, strlen(want)) == 0);
    gh_errlist_deinit(&errs);
}
END_TEST

START_TEST(nesting_deeper_than_the_limit_is_refused)
{
    char yaml[512];
    size_t o = (size_t)snprintf(yaml, sizeof(yaml), "%s", LST "x: ");
    gh_errlist errs;
    gh_config *cfg;

    for (int i = 0; i < 70; i++)
        yaml[o++] = '[';
    for (int i = 0; i < 70; i++)
        yaml[o++] = ']';
    yaml[o++] = '\n';
    yaml[o] = '\0';
    ck_assert_int_eq(load(yaml, &cfg, &errs), GH_EINVAL);
    ck_assert_uint_eq(errs.n, 1);
    ck_assert(strstr(errs.items[0], ":3:67: nested more than 64 levels deep") != NULL);
    gh_errlist_deinit(&errs);
}
END_TEST

START_TEST(several_errors_are_all_reported_in_file_order)
{
    static const char yaml[] =
        "log_level: loud\n"                                 /* 1 */
        "lisen: 1\n"                                        /* 2 */
        "http: { max_head: 16 KiB, header_timeout: 0 }\n"   /* 3: two */
        "listeners:\n"
        "  - listen: 127.0.0.1:70000\n"                     /* 5 */
        "    trusted_proxies: [10.0.0.1/8, any]\n"          /* 6: two */
        "    tls: { cert: a.pem }\n"                        /* 7 */
        "  - listen: localhost:80\n"                        /* 8 */
        "routes:\n"
        "  - match: { path: x }\n"                          /* 10 */
        "    health: {}\n"
        "    static: { root: www }\n"                       /* 12 */
        "  - match: {}\n"                                   /* 13: no action */
        "log_level: debug\n";                               /* 14: duplicate */
    static const int lines[] = { 1, 2, 3, 3, 5, 6, 6, 7, 8, 10, 12, 13, 14 };
    gh_errlist errs;
    gh_config *cfg;
    char want[PATH_MAX + 16];

    ck_assert_int_eq(load(yaml, &cfg, &errs), GH_EINVAL);
    if (errs.n != sizeof(lines) / sizeof(lines[0]))
        dump(&errs);
    ck_assert_uint_eq(errs.n, sizeof(lines) / sizeof(lines[0]));
    for (size_t i = 0; i < errs.n; i++) {
        snprintf(want, sizeof(want), "%s:%d:", last_path, lines[i]);
        ck_assert_msg(strncmp(errs.items[i], want, strlen(want)) == 0, "[%zu] %s", i,
                      errs.items[i]);
    }
    gh_errlist_deinit(&errs);
}
END_TEST

START_TEST(errors_stop_at_the_limit_with_a_note)
{
    char *yaml = malloc(200 * 16 + 64);
    size_t o = 0;
    gh_errlist errs;
    gh_config *cfg;

    ck_assert_ptr_nonnull(yaml);
    o += (size_t)sprintf(yaml + o, LST);
    for (int i = 0; i < 200; i++)
        o += (size_t)sprintf(yaml + o, "bad%d: 1\n", i);
    ck_assert_int_eq(load(yaml, &cfg, &errs), GH_EINVAL);
    ck_assert_uint_eq(errs.n, GH_CONFIG_MAX_ERRORS + 1);
    ck_assert(strstr(errs.items[errs.n - 1], ": too many errors; stopped after 100") != NULL);
    gh_errlist_deinit(&errs);
    free(yaml);
}
END_TEST

START_TEST(billion_laughs_is_refused_quickly)
{
    static const char yaml[] =
        LST
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
        "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
        "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
        "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
        "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    gh_errlist errs;
    gh_config *cfg;
    time_t t0 = time(NULL);

    ck_assert_int_eq(load(yaml, &cfg, &errs), GH_EINVAL);
    ck_assert(time(NULL) - t0 < 5);
    ck_assert_uint_ge(errs.n, 10);
    ck_assert(strstr(errs.items[1], "anchor \"a\" refused") != NULL);
    ck_assert(strstr(errs.items[2], "unknown key \"b\"") != NULL);
    ck_assert(strstr(errs.items[3], "anchor \"b\" refused") != NULL);
    ck_assert(strstr(errs.items[4], "alias of \"a\" refused") != NULL);
    gh_errlist_deinit(&errs);
}
END_TEST

START_TEST(more_than_the_route_limit_is_refused)
{
    size_t cap = 64 + (GH_CONFIG_MAX_ROUTES + 1) * 40;
    char *yaml = malloc(cap);
    size_t o = 0;
    gh_errlist errs;
    gh_config *cfg;

    ck_assert_ptr_nonnull(yaml);
    o += (size_t)snprintf(yaml + o, cap - o, LST "routes:\n");
    for (int i = 0; i <= GH_CONFIG_MAX_ROUTES; i++)
        o += (size_t)snprintf(yaml + o, cap - o, "  - { match: {}, health: {} }\n");
    ck_assert_int_eq(load(yaml, &cfg, &errs), GH_EINVAL);
    ck_assert_uint_eq(errs.n, 1);
    ck_assert(strstr(errs.items[0], ":4:3: routes: more than 1000 routes") != NULL);
    gh_errlist_deinit(&errs);
    free(yaml);
}
END_TEST

START_TEST(more_than_the_listener_limit_is_refused)
{
    size_t cap = 64 + (GH_CONFIG_MAX_LISTENERS + 1) * 40;
    char *yaml = malloc(cap);
    size_t o = 0;
    gh_errlist errs;
    gh_config *cfg;

    ck_assert_ptr_nonnull(yaml);
    o += (size_t)snprintf(yaml + o, cap - o, "listeners:\n");
    for (int i = 0; i <= GH_CONFIG_MAX_LISTENERS; i++)
        o += (size_t)snprintf(yaml + o, cap - o, "  - listen: 127.0.0.1:%d\n", 1000 + i);
    ck_assert_int_eq(load(yaml, &cfg, &errs), GH_EINVAL);
    ck_assert_uint_eq(errs.n, 1);
    ck_assert(strstr(errs.items[0], ":2:3: listeners: more than 1000 listeners") != NULL);
    gh_errlist_deinit(&errs);
    free(yaml);
}
END_TEST

/* ---- files ------------------------------------------------------------- */

START_TEST(a_missing_file_returns_enoent_with_the_path)
{
    char path[PATH_MAX], want[PATH_MAX + 64];
    gh_errlist errs;
    gh_config *cfg = (gh_config *)&errs;    /* must stay untouched */

    snprintf(path, sizeof(path), "%s/nope.yaml", tmpdir);
    gh_errlist_init(&errs);
    ck_assert_int_eq(gh_config_load(path, &cfg, &errs), -ENOENT);
    ck_assert_ptr_eq(cfg, (gh_config *)&errs);
    ck_assert_uint_eq(errs.n, 1);
    snprintf(want, sizeof(want), "%s: cannot open: %s", path, strerror(ENOENT));
    ck_assert_str_eq(errs.items[0], want);
    gh_errlist_deinit(&errs);
}
END_TEST

START_TEST(a_folder_is_not_a_config_file)
{
    gh_errlist errs;
    gh_config *cfg = NULL;

    gh_errlist_init(&errs);
    ck_assert_int_eq(gh_config_load(tmpdir, &cfg, &errs), -EISDIR);
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(errs.n, 1);
    gh_errlist_deinit(&errs);
}
END_TEST

START_TEST(a_file_over_the_size_limit_is_refused)
{
    size_t len = GH_CONFIG_MAX_BYTES + 1;
    char *big = malloc(len);
    gh_errlist errs;
    gh_config *cfg = NULL;

    ck_assert_ptr_nonnull(big);
    memset(big, '#', len);
    write_file("big.yaml", big, len);
    gh_errlist_init(&errs);
    ck_assert_int_eq(gh_config_load(last_path, &cfg, &errs), GH_EINVAL);
    ck_assert_uint_eq(errs.n, 1);
    ck_assert(strstr(errs.items[0], ": too large: more than 1048576 bytes") != NULL);
    gh_errlist_deinit(&errs);
    /* exactly at the limit is read whole (and is merely empty) */
    write_file("big.yaml", big, len - 1);
    gh_errlist_init(&errs);
    ck_assert_int_eq(gh_config_load(last_path, &cfg, &errs), GH_EINVAL);
    ck_assert(strstr(errs.items[0], ":1:1: the config is empty") != NULL);
    gh_errlist_deinit(&errs);
    free(big);
}
END_TEST

START_TEST(errors_are_appended_after_earlier_entries)
{
    gh_errlist errs;
    gh_config *cfg = NULL;

    gh_errlist_init(&errs);
    gh_errlist_add(&errs, "other", 1, 1, "earlier");
    write_file("app.yaml", "x: 1\n", 5);
    ck_assert_int_eq(gh_config_load(last_path, &cfg, &errs), GH_EINVAL);
    ck_assert_uint_eq(errs.n, 3);
    ck_assert_str_eq(errs.items[0], "other:1:1: earlier");
    gh_errlist_deinit(&errs);
}
END_TEST

START_TEST(free_accepts_null)
{
    gh_config_free(NULL);
}
END_TEST

/* Every prefix of a valid config loads or fails cleanly (no crash, no leak). */
START_TEST(every_prefix_of_a_valid_config_loads_or_fails_cleanly)
{
    size_t len = strlen(full_yaml);

    for (size_t n = 0; n <= len; n++) {
        gh_errlist errs;
        gh_config *cfg = NULL;
        int rc;

        gh_errlist_init(&errs);
        rc = gh_config_load_mem("p.yaml", full_yaml, n, "/d", &cfg, &errs);
        ck_assert(rc == GH_OK || rc == GH_EINVAL);
        ck_assert((rc == GH_OK) == (cfg != NULL));
        ck_assert((rc == GH_OK) == (errs.n == 0));
        gh_config_free(cfg);
        gh_errlist_deinit(&errs);
    }
}
END_TEST

/* The buffer ends at a PROT_NONE page with no NUL after it. */
START_TEST(load_mem_reads_no_byte_past_the_buffer)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t len = strlen(full_yaml), pages = (len + (size_t)pg - 1) / (size_t)pg + 1;
    char *map = mmap(NULL, pages * (size_t)pg, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *end;
    gh_errlist errs;
    gh_config *cfg = NULL;

    ck_assert_ptr_ne(map, MAP_FAILED);
    end = map + (pages - 1) * (size_t)pg;
    ck_assert_int_eq(mprotect(end, (size_t)pg, PROT_NONE), 0);
    memcpy(end - len, full_yaml, len);
    gh_errlist_init(&errs);
    ck_assert_int_eq(gh_config_load_mem("m.yaml", end - len, len, "/d", &cfg, &errs), GH_OK);
    gh_config_free(cfg);
    /* and a truncated one, ending in the middle of a quoted scalar */
    memcpy(end - 9, "x: \"abcde", 9);
    ck_assert_int_eq(gh_config_load_mem("m.yaml", end - 9, 9, "/d", &cfg, &errs), GH_EINVAL);
    gh_errlist_deinit(&errs);
    munmap(map, pages * (size_t)pg);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- the configuration reference (conf/README.md) ----------------------- */

#define MAX_KEYS 512

typedef struct keyset {
    char  *keys[MAX_KEYS];
    size_t n;
} keyset;

static void add_key(const char *path, void *arg)
{
    keyset *ks = arg;

    ck_assert_uint_lt(ks->n, MAX_KEYS);
    ks->keys[ks->n] = strdup(path);
    ck_assert_ptr_nonnull(ks->keys[ks->n]);
    ks->n++;
}

static bool has_key(const keyset *ks, const char *key)
{
    for (size_t i = 0; i < ks->n; i++)
        if (strcmp(ks->keys[i], key) == 0)
            return true;
    return false;
}

static void keyset_free(keyset *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        free(ks->keys[i]);
    ks->n = 0;
}

/* The keys the reference documents: the first column of a table row,
 * "| `listeners.tls.cert` | ...". Keys of a shipped plugin's config: start
 * with the plugin's name (plugins/NAME/ exists) and go to plugins. */
static void read_reference(keyset *doc, keyset *plugin_keys)
{
    char path[PATH_MAX], line[4096];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/conf/README.md", GH_SOURCE_DIR);
    fp = fopen(path, "r");
    ck_assert_msg(fp != NULL, "%s: %s", path, strerror(errno));
    while (fgets(line, sizeof(line), fp) != NULL) {
        char key[256], dir[PATH_MAX + 300];
        const char *p = line, *end;
        size_t n, seg;
        struct stat st;

        if (strncmp(p, "| `", 3) != 0)
            continue;
        p += 3;
        if ((end = strchr(p, '`')) == NULL || (n = (size_t)(end - p)) == 0 || n >= sizeof(key))
            continue;
        memcpy(key, p, n);
        key[n] = '\0';
        if (strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_.") != n)
            continue;           /* a table of values, not of keys */
        seg = strcspn(key, ".");
        snprintf(dir, sizeof(dir), "%s/plugins/%.*s/CMakeLists.txt", GH_SOURCE_DIR, (int)seg, key);
        if (key[seg] == '.' && stat(dir, &st) == 0)
            add_key(key, plugin_keys);
        else
            add_key(key, doc);
    }
    fclose(fp);
}

START_TEST(the_reference_documents_every_key_the_loader_accepts_and_no_other)
{
    keyset loader = { .n = 0 }, doc = { .n = 0 }, plugin = { .n = 0 };
    char missing[2048] = "", extra[2048] = "";

    gh_config_each_key(add_key, &loader);
    ck_assert_uint_gt(loader.n, 40);      /* the walk sees the nested tables */
    ck_assert(has_key(&loader, "listeners.tls.cert"));
    ck_assert(has_key(&loader, "routes.websocket.config"));
    read_reference(&doc, &plugin);
    for (size_t i = 0; i < loader.n; i++)
        if (!has_key(&doc, loader.keys[i]) && strlen(missing) + strlen(loader.keys[i]) + 2 < sizeof(missing)) {
            strcat(missing, " ");
            strcat(missing, loader.keys[i]);
        }
    for (size_t i = 0; i < doc.n; i++)
        if (!has_key(&loader, doc.keys[i]) && strlen(extra) + strlen(doc.keys[i]) + 2 < sizeof(extra)) {
            strcat(extra, " ");
            strcat(extra, doc.keys[i]);
        }
    ck_assert_msg(missing[0] == '\0', "conf/README.md does not document:%s", missing);
    ck_assert_msg(extra[0] == '\0', "conf/README.md names keys the loader refuses:%s", extra);
    /* the chat plugin's keys (DESIGN.md) are there too */
    ck_assert(has_key(&plugin, "chat.history"));
    ck_assert(has_key(&plugin, "chat.max_users"));
    keyset_free(&loader);
    keyset_free(&doc);
    keyset_free(&plugin);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");

    tcase_add_unchecked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, full_config_sets_every_field);
    tcase_add_test(tc, minimal_config_gets_every_default);
    tcase_add_test(tc, no_routes_is_a_valid_config);
    tcase_add_test(tc, relative_paths_resolve_against_the_config_folder);
    tcase_add_test(tc, a_bare_file_name_resolves_against_the_current_folder);
    tcase_add_test(tc, load_mem_uses_the_given_folder_or_the_current_one);
    tcase_add_test(tc, websocket_config_tree_keeps_keys_values_and_locations);
    tcase_add_loop_test(tc, listen_accepts_ipv4_bracketed_ipv6_and_port_only, 0, N(listens));
    tcase_add_test(tc, a_listener_may_have_a_connection_limit_of_its_own);
    tcase_add_test(tc, proxy_protocol_accepts_every_mode_and_off_spellings);
    tcase_add_test(tc, trusted_proxies_may_be_empty_any_or_mapped_ipv6);
    tcase_add_test(tc, origins_accept_same_host_star_and_lists);
    tcase_add_test(tc, an_action_with_no_value_counts_as_empty);
    tcase_add_test(tc, bus_accepts_documented_url_shapes);
    tcase_add_test(tc, bus_presence_ttl_takes_durations_of_a_second_or_more);
    tcase_add_test(tc, bus_presence_ttl_defaults_to_10s);
    tcase_add_test(tc, access_log_off_is_null);
    tcase_add_test(tc, status_takes_no_keys_and_null_is_an_empty_mapping);
    tcase_add_test(tc, no_user_means_no_drop);
    tcase_add_test(tc, user_is_looked_up_and_group_defaults_to_its_primary_group);
    tcase_add_test(tc, group_overrides_the_primary_group_in_any_order);
    tcase_add_test(tc, upstreams_and_proxy_routes_load_with_addresses_defaults_and_url_upstreams);
    tcase_add_test(tc, upstreams_may_be_empty_and_unused);
    tcase_add_test(tc, every_prefix_of_the_proxy_config_loads_or_fails_cleanly);
    tcase_add_loop_test(tc, each_error_names_file_line_col_and_cause, 0, N(err_cases));
    tcase_add_test(tc, nesting_deeper_than_the_limit_is_refused);
    tcase_add_test(tc, several_errors_are_all_reported_in_file_order);
    tcase_add_test(tc, errors_stop_at_the_limit_with_a_note);
    tcase_add_test(tc, billion_laughs_is_refused_quickly);
    tcase_add_test(tc, more_than_the_route_limit_is_refused);
    tcase_add_test(tc, more_than_the_listener_limit_is_refused);
    tcase_add_test(tc, a_missing_file_returns_enoent_with_the_path);
    tcase_add_test(tc, a_folder_is_not_a_config_file);
    tcase_add_test(tc, a_file_over_the_size_limit_is_refused);
    tcase_add_test(tc, errors_are_appended_after_earlier_entries);
    tcase_add_test(tc, free_accepts_null);
    tcase_add_test(tc, every_prefix_of_a_valid_config_loads_or_fails_cleanly);
    tcase_add_test(tc, load_mem_reads_no_byte_past_the_buffer);
    tcase_add_test(tc, the_reference_documents_every_key_the_loader_accepts_and_no_other);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
