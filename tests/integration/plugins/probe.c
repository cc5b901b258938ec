/* probe.c: a test plugin, compiled by the integration tests with cc,
 * that exercises the host functions of the plugin ABI and answers with
 * what it saw. Macros change what it claims to be, so the same source
 * also builds the plugins the loader must refuse:
 *   PROBE_NAME "probe"   PROBE_MAJOR/PROBE_MINOR   PROBE_SIZE
 *   PROBE_NO_DESC (no descriptor)   PROBE_FAIL_INIT (init returns -EINVAL)
 *   PROBE_FLAGS (the descriptor's flags, ABI 1.2; PROBE_SIZE below 1.2's
 *   size leaves them out)
 *
 * Messages it understands (text):
 *   "close"          host->close(conn, 4002, "asked")
 *   "timer"          a one-shot 50ms timer, then "tick"
 *   "buffered"       the buffered byte count
 *   "tag"            PROBE_TAG, which build of the plugin answers
 *   "config"         the values read from its config at init
 *   "sub T" "unsub T" "pub T MSG"   topics
 *   "whoami"         the threads it ran on: "tid=T open_tid=O inits=N inst=I"
 *                    (this message's thread, the connection's open's, how
 *                    many inits ran in the process, this instance's number)
 *   "ttid"           a one-shot timer, then "ttid=T" (the timer's thread)
 *   anything else    echoed
 * The close callback's log line ends with "tid=T", its thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <gatehouse/plugin.h>

#ifndef PROBE_NAME
#define PROBE_NAME "probe"
#endif
#ifndef PROBE_MAJOR
#define PROBE_MAJOR GH_PLUGIN_ABI_MAJOR
#endif
#ifndef PROBE_MINOR
#define PROBE_MINOR GH_PLUGIN_ABI_MINOR
#endif
#ifndef PROBE_TAG
#define PROBE_TAG "v1"
#endif
#ifndef PROBE_SIZE
#define PROBE_SIZE sizeof(gh_plugin_desc)
#endif

static const gh_plugin_host *host;
static int inits;              /* every instance's init, on whatever thread */

static long tid(void)
{
    return (long)syscall(SYS_gettid);
}

typedef struct {
    gh_plugin_inst *inst;
    int             number;        /* 1 for the first instance made, ... */
    char            config[512];
    gh_plugin_conn *last;          /* the most recent open connection */
    int             open;
} probe;

/* Per connection: set in open, freed in close. */
typedef struct {
    probe           *p;
    gh_plugin_timer *timer;        /* a pending "tick", stopped in close */
    long             open_tid;     /* the thread open ran on */
} conn_data;

static const char *const protocols[] = { "probe.v2", "probe.v1", NULL };

static int32_t p_init(const gh_plugin_host *h, gh_plugin_inst *inst,
                      const gh_plugin_cfg *cfg, void **state)
{
    static const char *const known[] = { "greeting", "count", "loud", "limit", "every",
                                         "names", "nested", NULL };
    const char *greeting = NULL, *names[4] = { 0 };
    int64_t count = 0;
    bool loud = false;
    uint64_t limit = 0, every = 0;
    size_t nnames = 0;
    int32_t rc = 0;
    probe *p;

    if (host != h)       /* every instance's init, on any worker: write it once */
        host = h;
#ifdef PROBE_FAIL_INIT
    h->log(inst, NULL, GH_PLUGIN_LOG_ERROR, "probe refuses to start");
    return -EINVAL;
#endif
    rc |= h->config_check_keys(cfg, known);
    rc |= h->config_string(cfg, "greeting", "hello", &greeting);
    rc |= h->config_int(cfg, "count", 3, 0, 100, &count);
    rc |= h->config_bool(cfg, "loud", false, &loud);
    rc |= h->config_size(cfg, "limit", 1024, &limit);
    rc |= h->config_duration(cfg, "every", 1000, &every);
    rc |= h->config_list(cfg, "names", names, 4, &nnames);
    if (rc != 0)
        return -EINVAL;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return -ENOMEM;
    p->inst = inst;
    p->number = __atomic_add_fetch(&inits, 1, __ATOMIC_RELAXED);
    snprintf(p->config, sizeof(p->config),
             "greeting=%s count=%lld loud=%d limit=%llu every=%llu names=%zu:%s,%s nested=%s",
             greeting, (long long)count, (int)loud, (unsigned long long)limit,
             (unsigned long long)every, nnames, nnames > 0 ? names[0] : "",
             nnames > 1 ? names[1] : "",
             h->config_get(cfg, "nested") != NULL &&
             h->config_get(h->config_get(cfg, "nested"), "deep") != NULL ? "yes" : "no");
    *state = p;
    return 0;
}

static void p_fini(void *state)
{
    free(state);
}

static void send_text(gh_plugin_conn *c, const char *s)
{
    host->send(c, GH_PLUGIN_TEXT, s, strlen(s));
}

static int32_t p_open(void *state, gh_plugin_conn *conn)
{
    probe *p = state;
    char buf[1024];
    const char *ua, *proto = host->subprotocol(conn);
    size_t ualen = 0;

    if (strstr(host->query(conn), "refuse") != NULL)
        return 4001;
    /* ?openwait=MS&opensub=TOPIC (in that order): a slow open (it blocks,
     * as a test may) that subscribes conn at its end */
    {
        const char *q = host->query(conn), *w = strstr(q, "openwait="),
                   *s = strstr(q, "opensub=");
        if (w != NULL) {
            long ms = strtol(w + 9, NULL, 10);
            struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
        }
        if (s != NULL) {
            size_t n = strcspn(s + 8, "&");
            if (host->subscribe(conn, s + 8, n) != 0)
                return GH_PLUGIN_CLOSE_INTERNAL;
        }
    }
    ua = host->header(conn, "x-probe", &ualen);
    snprintf(buf, sizeof(buf), "open path=%s query=%s proto=%s addr=%s port=%u hdr=%.*s id=%llu",
             host->path(conn), host->query(conn), proto != NULL ? proto : "-",
             host->client_addr(conn), (unsigned)host->client_port(conn),
             ua != NULL ? (int)ualen : 1, ua != NULL ? ua : "-",
             (unsigned long long)host->conn_id(conn));
    conn_data *cd = calloc(1, sizeof(*cd));
    if (cd == NULL)
        return GH_PLUGIN_CLOSE_INTERNAL;
    cd->p = p;
    cd->open_tid = tid();
    send_text(conn, buf);
    host->set_data(conn, cd);
    p->last = conn;
    p->open++;
    return 0;
}

static void on_tick(void *arg, gh_plugin_timer *t)
{
    gh_plugin_conn *conn = arg;
    conn_data *cd = host->get_data(conn);

    (void)t;
    cd->timer = NULL;           /* a one-shot timer ends with this call */
    send_text(conn, "tick");
}

static void on_ttid(void *arg, gh_plugin_timer *t)
{
    gh_plugin_conn *conn = arg;
    conn_data *cd = host->get_data(conn);
    char buf[64];

    (void)t;
    cd->timer = NULL;
    snprintf(buf, sizeof(buf), "ttid=%ld", tid());
    send_text(conn, buf);
}

static void p_message(void *state, gh_plugin_conn *conn, int32_t type, const void *data,
                      size_t len)
{
    probe *p = state;
    conn_data *cd = host->get_data(conn);
    char buf[256], msg[256];

    if (cd == NULL || cd->p != p) {
        send_text(conn, "bad user data");
        return;
    }
    if (type != GH_PLUGIN_TEXT || len >= sizeof(msg)) {
        host->send(conn, type, data, len);
        return;
    }
    memcpy(msg, data, len);
    msg[len] = '\0';
    if (strcmp(msg, "close") == 0) {
        int32_t rc = host->close(conn, 4002, "asked", 5);
        int32_t again = host->close(conn, 4002, "asked", 5);
        int32_t after = host->send(conn, GH_PLUGIN_TEXT, "x", 1);
        host->log(p->inst, conn, GH_PLUGIN_LOG_INFO, "close rc=%d again=%d send-after=%d",
                  rc, again, after);
    } else if (strcmp(msg, "timer") == 0) {
        if (cd->timer == NULL)
            cd->timer = host->timer_start(p->inst, 50, 0, on_tick, conn);
    } else if (strcmp(msg, "whoami") == 0) {
        snprintf(buf, sizeof(buf), "tid=%ld open_tid=%ld inits=%d inst=%d", tid(),
                 cd->open_tid, __atomic_load_n(&inits, __ATOMIC_RELAXED), p->number);
        send_text(conn, buf);
    } else if (strcmp(msg, "ttid") == 0) {
        if (cd->timer == NULL)
            cd->timer = host->timer_start(p->inst, 10, 0, on_ttid, conn);
    } else if (strcmp(msg, "tag") == 0) {
        send_text(conn, PROBE_TAG);
    } else if (strcmp(msg, "buffered") == 0) {
        snprintf(buf, sizeof(buf), "buffered=%llu", (unsigned long long)host->buffered(conn));
        send_text(conn, buf);
    } else if (strcmp(msg, "config") == 0) {
        send_text(conn, p->config);
    } else if (strncmp(msg, "sub ", 4) == 0) {
        snprintf(buf, sizeof(buf), "sub=%d", host->subscribe(conn, msg + 4, len - 4));
        send_text(conn, buf);
    } else if (strncmp(msg, "unsub ", 6) == 0) {
        snprintf(buf, sizeof(buf), "unsub=%d", host->unsubscribe(conn, msg + 6, len - 6));
        send_text(conn, buf);
    } else if (strncmp(msg, "pub ", 4) == 0) {
        char *sp = strchr(msg + 4, ' ');
        if (sp != NULL)
            host->publish(p->inst, msg + 4, (size_t)(sp - (msg + 4)), GH_PLUGIN_TEXT, sp + 1,
                          strlen(sp + 1));
    } else if (strcmp(msg, "badtext") == 0) {
        snprintf(buf, sizeof(buf), "badtext=%d", host->send(conn, GH_PLUGIN_TEXT, "\xff", 1));
        send_text(conn, buf);
    } else {
        host->send(conn, type, data, len);
    }
}

static void p_close(void *state, gh_plugin_conn *conn, uint16_t code, const char *reason,
                    size_t reason_len)
{
    probe *p = state;
    conn_data *cd = host->get_data(conn);

    /* the connection is gone after this returns: so must its timer be */
    if (cd->timer != NULL)
        host->timer_stop(cd->timer);
    free(cd);
    if (p->last == conn)
        p->last = NULL;
    p->open--;
    host->log(p->inst, conn, GH_PLUGIN_LOG_INFO, "probe closed code=%u reason=%.*s open=%d "
              "tid=%ld", (unsigned)code, (int)reason_len, reason, p->open, tid());
}

#ifndef PROBE_NO_DESC
GH_PLUGIN_EXPORT const gh_plugin_desc gatehouse_plugin = {
#else
/* the descriptor under another name: a library that is not a plugin */
GH_PLUGIN_EXPORT const gh_plugin_desc not_a_plugin;
GH_PLUGIN_EXPORT const gh_plugin_desc not_a_plugin = {
#endif
    .abi_major = PROBE_MAJOR,
    .abi_minor = PROBE_MINOR,
    .size = PROBE_SIZE,
    .name = PROBE_NAME,
    .version = "test",
    .subprotocols = protocols,
    .init = p_init,
    .fini = p_fini,
    .open = p_open,
    .message = p_message,
    .close = p_close,
#ifdef PROBE_FLAGS
    .flags = PROBE_FLAGS,
#endif
};
