/* hello.c: the smallest useful gatehouse plugin, built against the
 * installed SDK by tests/integration/test_ws_sdk.py to prove that a ws app
 * is added without rebuilding gatehouse. It greets each client and answers
 * every text message with "hello, <message>". */
#include <stdio.h>
#include <string.h>

#include <gatehouse/plugin.h>

static const gh_plugin_host *host;

static int32_t hello_init(const gh_plugin_host *h, gh_plugin_inst *inst,
                          const gh_plugin_cfg *config, void **state)
{
    const char *greeting;   /* lives in the config until fini */
    int32_t rc;

    (void)inst;
    if (host != h)       /* every instance's init, on any worker: write it once */
        host = h;
    rc = h->config_string(config, "greeting", "hello", &greeting);
    *state = (void *)greeting;
    return rc;
}

static int32_t hello_open(void *state, gh_plugin_conn *conn)
{
    char buf[128];
    int n = snprintf(buf, sizeof(buf), "%s from an SDK plugin", (const char *)state);

    host->send(conn, GH_PLUGIN_TEXT, buf, (size_t)n);
    return 0;
}

static void hello_message(void *state, gh_plugin_conn *conn, int32_t type,
                          const void *data, size_t len)
{
    char buf[1024];
    int n;

    if (type != GH_PLUGIN_TEXT || len > 900) {
        host->close(conn, 1003, "text up to 900 bytes", 20);
        return;
    }
    n = snprintf(buf, sizeof(buf), "%s, %.*s", (const char *)state, (int)len,
                 (const char *)data);
    host->send(conn, GH_PLUGIN_TEXT, buf, (size_t)n);
}

static const char *const protocols[] = { "hello.v1", NULL };

GH_PLUGIN_EXPORT const gh_plugin_desc gatehouse_plugin = {
    .abi_major = GH_PLUGIN_ABI_MAJOR,
    .abi_minor = GH_PLUGIN_ABI_MINOR,
    .size = sizeof(gh_plugin_desc),
    .name = "hello",
    .version = "1.0",
    .subprotocols = protocols,
    .init = hello_init,
    .open = hello_open,
    .message = hello_message,
};
