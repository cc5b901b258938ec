/* misbehave.c: a test plugin, compiled by the integration tests, that
 * does what a plugin must not: blocks the loop, crashes. Messages (text):
 *   "sleep N"          sleeps N ms in the message callback, then "slept"
 *   "timer N"          a one-shot timer whose callback sleeps N ms, then "ticked"
 *   "segv"             writes through a null pointer (SIGSEGV)
 *   "fpe"              divides by zero (SIGFPE)
 *   "abort-on-close"   arms abort() in this connection's close callback
 *   anything else      echoed
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gatehouse/plugin.h>

static const gh_plugin_host *host;
static int abort_on_close;

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void send_text(gh_plugin_conn *c, const char *s)
{
    host->send(c, GH_PLUGIN_TEXT, s, strlen(s));
}

static int32_t m_init(const gh_plugin_host *h, gh_plugin_inst *inst,
                      const gh_plugin_cfg *cfg, void **state)
{
    (void)cfg;
    if (host != h)       /* every instance's init, on any worker: write it once */
        host = h;
    *state = inst;
    return 0;
}

static void on_tick(void *arg, gh_plugin_timer *t)
{
    gh_plugin_conn *conn = arg;
    long *ms = host->get_data(conn);

    (void)t;
    sleep_ms(*ms);
    send_text(conn, "ticked");
}

static void m_message(void *state, gh_plugin_conn *conn, int32_t type, const void *data,
                      size_t len)
{
    char msg[64];
    long n = 0;

    if (type != GH_PLUGIN_TEXT || len >= sizeof(msg)) {
        host->send(conn, type, data, len);
        return;
    }
    memcpy(msg, data, len);
    msg[len] = '\0';
    if (sscanf(msg, "sleep %ld", &n) == 1) {
        sleep_ms(n);
        send_text(conn, "slept");
    } else if (sscanf(msg, "timer %ld", &n) == 1) {
        long *ms = host->get_data(conn);
        if (ms == NULL && (ms = calloc(1, sizeof(*ms))) != NULL)
            host->set_data(conn, ms);
        if (ms != NULL) {
            *ms = n;
            host->timer_start(state, 10, 0, on_tick, conn);
        }
    } else if (strcmp(msg, "segv") == 0) {
        *(volatile int *)(volatile void *)NULL = 1;
    } else if (strcmp(msg, "fpe") == 0) {
        volatile int zero = 0, seven = 7;     /* 1 / x is folded into a compare */
        n = seven / zero;
        send_text(conn, n ? "?" : "!");
    } else if (strcmp(msg, "abort-on-close") == 0) {
        abort_on_close = 1;
        send_text(conn, "armed");
    } else {
        host->send(conn, type, data, len);
    }
}

static void m_close(void *state, gh_plugin_conn *conn, uint16_t code, const char *reason,
                    size_t reason_len)
{
    (void)state;
    (void)code;
    (void)reason;
    (void)reason_len;
    free(host->get_data(conn));
    if (abort_on_close)
        abort();
}

GH_PLUGIN_EXPORT const gh_plugin_desc gatehouse_plugin = {
    .abi_major = GH_PLUGIN_ABI_MAJOR,
    .abi_minor = GH_PLUGIN_ABI_MINOR,
    .size = sizeof(gh_plugin_desc),
    .name = "misbehave",
    .version = "test",
    .init = m_init,
    .message = m_message,
    .close = m_close,
};
