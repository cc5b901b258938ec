/* pubsub.c: a topics demo. A client joins the topic named by ?topic=NAME
 * (default "default") when it connects; every message it sends is
 * published to that topic, text as text and binary as binary, and so
 * reaches every subscriber, the sender included. The benchmark's fan-out
 * and the topic tests use it. It keeps nothing per connection: the host
 * owns the subscriptions and drops them when a connection closes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <gatehouse/plugin.h>

static const gh_plugin_host *host;

typedef struct {
    gh_plugin_inst *inst;       /* to publish with */
} pubsub;

static int32_t ps_init(const gh_plugin_host *h, gh_plugin_inst *inst,
                       const gh_plugin_cfg *config, void **state)
{
    static const char *const known[] = { NULL };
    pubsub *ps;

    if (host != h)       /* every instance's init, on any worker: write it once */
        host = h;
    if (h->config_check_keys(config, known) != 0)
        return -EINVAL;
    if ((ps = calloc(1, sizeof(*ps))) == NULL)
        return -ENOMEM;
    ps->inst = inst;
    *state = ps;
    return 0;
}

static void ps_fini(void *state)
{
    free(state);
}

/* The value of "topic" in a raw query, or "default". Not percent-decoded:
 * topic names are plain words here. Points into q, which lives as long as
 * the connection. */
static void topic_of(const char *q, const char **name, size_t *len)
{
    *name = "default";
    *len = 7;
    while (q != NULL && *q != '\0') {
        const char *end = strchr(q, '&');
        size_t n = end != NULL ? (size_t)(end - q) : strlen(q);
        if (n > 6 && memcmp(q, "topic=", 6) == 0) {
            *name = q + 6;
            *len = n - 6;
            return;
        }
        q = end != NULL ? end + 1 : NULL;
    }
}

static int32_t ps_open(void *state, gh_plugin_conn *conn)
{
    const char *name;
    size_t len;

    (void)state;
    topic_of(host->query(conn), &name, &len);
    if (host->subscribe(conn, name, len) != 0)
        return GH_PLUGIN_CLOSE_POLICY;      /* e.g. a topic name over 1024 bytes */
    return 0;
}

static void ps_message(void *state, gh_plugin_conn *conn, int32_t type,
                       const void *data, size_t len)
{
    pubsub *ps = state;
    const char *name;
    size_t tlen;

    topic_of(host->query(conn), &name, &tlen);
    if (host->publish(ps->inst, name, tlen, type, data, len) != 0)
        host->log(ps->inst, conn, GH_PLUGIN_LOG_WARN, "publish to %.*s failed",
                  (int)tlen, name);
}

GH_PLUGIN_EXPORT const gh_plugin_desc gatehouse_plugin = {
    .abi_major = GH_PLUGIN_ABI_MAJOR,
    .abi_minor = GH_PLUGIN_ABI_MINOR,
    .size = sizeof(gh_plugin_desc),
    .name = "pubsub",
    .version = "1.0",
    .init = ps_init,
    .fini = ps_fini,
    .open = ps_open,
    .message = ps_message,
};
