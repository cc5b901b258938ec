/* echo.c: the echo plugin: every text and binary message comes back
 * unchanged. The target of conformance testing and the echo benchmark, so
 * it does nothing else: no state, no allocation. */
#include <gatehouse/plugin.h>

static const gh_plugin_host *host;

static int32_t echo_init(const gh_plugin_host *h, gh_plugin_inst *inst,
                         const gh_plugin_cfg *config, void **state)
{
    static const char *const known[] = { NULL };

    (void)inst;
    if (host != h)       /* every instance's init, on any worker: write it once */
        host = h;
    *state = NULL;
    /* echo takes no config: say so about any key given */
    return h->config_check_keys(config, known);
}

static void echo_message(void *state, gh_plugin_conn *conn, int32_t type,
                         const void *data, size_t len)
{
    (void)state;
    /* on failure the host is already closing the connection */
    (void)host->send(conn, type, data, len);
}

GH_PLUGIN_EXPORT const gh_plugin_desc gatehouse_plugin = {
    .abi_major = GH_PLUGIN_ABI_MAJOR,
    .abi_minor = GH_PLUGIN_ABI_MINOR,
    .size = sizeof(gh_plugin_desc),
    .name = "echo",
    .version = "1.0",
    .init = echo_init,
    .message = echo_message,
};
