/* gatehouse/plugin.h: the gatehouse WebSocket plugin ABI, version 1.2.
 *
 * This is the only header a plugin includes, and a plugin links against
 * nothing of gatehouse: it exports one const descriptor named
 * `gatehouse_plugin` (GH_PLUGIN_SYMBOL) and gatehouse hands it a table of
 * host functions at init. Every handle is opaque; no host struct layout is
 * part of the ABI.
 *
 * Versioning. GH_PLUGIN_ABI_MAJOR changes when anything here changes
 * incompatibly; gatehouse refuses a plugin built for another major.
 * GH_PLUGIN_ABI_MINOR grows when something is appended (a field at the end
 * of gh_plugin_desc or gh_plugin_host, a constant); gatehouse refuses a
 * plugin built for a newer minor than its own and accepts older ones.
 * Both structs carry their size as built, so each side knows which fields
 * the other has: the host reads no descriptor field past desc->size, and a
 * plugin calls no host function past host->size (GH_PLUGIN_HOST_HAS).
 * The first three fields of gh_plugin_desc never move, in any version.
 *
 * Threading. gatehouse runs `workers:` event loops, each on its own
 * thread. By default it makes one instance of a route's plugin per worker
 * (init runs once per worker with the same config), and a connection is
 * served by the instance of the worker that accepted it. A plugin whose
 * descriptor has GH_PLUGIN_SINGLE_INSTANCE in flags (ABI 1.2) gets one
 * instance per route instead, on worker 0 (the main thread): every
 * connection routed to it is moved to worker 0 at the upgrade, before its
 * handshake, so its open, message and close, its timers and its state
 * callbacks all run on that one thread. Either way every callback of an
 * instance (its timers, and open, message and close of its connections)
 * runs on that instance's worker, one at a time; a connection never
 * changes worker once open. With several instances (the default) they run
 * at the same time on different threads: a plugin's globals are shared by
 * them. With GH_PLUGIN_SINGLE_INSTANCE, a plugin's globals are touched by
 * one thread only, as long as it serves one route (two routes naming it
 * are two instances, both on worker 0: one thread still). Topics and topic
 * state span the workers. Callbacks must not block (no sleeping, no
 * blocking I/O, no waiting on locks another thread holds): while one
 * runs, no other connection of its worker is served. Host functions may
 * be called only from the instance's worker, i.e. from inside one of its
 * callbacks (a plugin that runs threads of its own must hand work back
 * through its own means, e.g. a timer that polls a queue).
 *
 * Reentrancy. From any callback a plugin may send to, close, subscribe or
 * publish on any connection of its instance. The host never calls a
 * plugin callback from inside a host function: closing a connection
 * (itself or another) only marks it; its close callback runs later, after
 * the current callback has returned, and its memory is freed after that.
 *
 * Pointer lifetimes (the short version; each declaration says more):
 *   gh_plugin_host *     static: valid as long as the plugin is loaded.
 *   gh_plugin_inst *     from init until fini has returned.
 *   gh_plugin_cfg *      from init until fini has returned; strings read
 *                        from it likewise.
 *   gh_plugin_conn *     from the open callback until the close callback
 *                        has returned (or, when open refuses, until open
 *                        returns). Never use it after that.
 *   gh_plugin_timer *    until timer_stop(), or for a one-shot timer until
 *                        its callback returns.
 *   message data         only during the message callback: copy to keep.
 *   strings the host     path/query/subprotocol/client address: as long as
 *   returns for a conn   the connection; header values: during open only.
 *   strings a plugin     copied or used before the call returns, except the
 *   passes to the host   descriptor's (name, version, subprotocols) which
 *                        must stay valid while the plugin is loaded.
 */
#ifndef GATEHOUSE_PLUGIN_H
#define GATEHOUSE_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GH_PLUGIN_ABI_MAJOR 1
#define GH_PLUGIN_ABI_MINOR 2

/* The name of the one symbol a plugin exports. */
#define GH_PLUGIN_SYMBOL "gatehouse_plugin"

/* Exports the descriptor from a library built with hidden visibility. */
#define GH_PLUGIN_EXPORT __attribute__((visibility("default")))

/* Message types (the WebSocket opcodes). */
#define GH_PLUGIN_TEXT   1     /* UTF-8 text */
#define GH_PLUGIN_BINARY 2

/* Descriptor flags (gh_plugin_desc.flags, ABI 1.2). A plugin that sets a
 * bit this gatehouse does not know is refused at load. */
#define GH_PLUGIN_SINGLE_INSTANCE 0x1u  /* one instance per route, on one
                                           worker; see "Threading" above */
#define GH_PLUGIN_FLAGS_KNOWN     0x1u

/* Log levels for host->log. */
#define GH_PLUGIN_LOG_DEBUG 0
#define GH_PLUGIN_LOG_INFO  1
#define GH_PLUGIN_LOG_WARN  2
#define GH_PLUGIN_LOG_ERROR 3

/* Close codes a plugin may use (RFC 6455 §7.4): 1000 normal, 1001 going
 * away, 1003 unsupported data, 1007 invalid data, 1008 policy violation,
 * 1009 too big, 1010, 1011 internal error, 1012-1014, and 3000-4999 for
 * applications (4000-4999 private use). */
#define GH_PLUGIN_CLOSE_NORMAL     1000
#define GH_PLUGIN_CLOSE_GOING_AWAY 1001
#define GH_PLUGIN_CLOSE_POLICY     1008
#define GH_PLUGIN_CLOSE_INTERNAL   1011
/* Reported to the close callback when the TCP connection ended without a
 * close frame; never sent. */
#define GH_PLUGIN_CLOSE_ABNORMAL   1006

/* Opaque handles. */
typedef struct gh_plugin_inst  gh_plugin_inst;   /* per websocket route (and worker) */
typedef struct gh_plugin_conn  gh_plugin_conn;   /* one WebSocket connection */
typedef struct gh_plugin_cfg   gh_plugin_cfg;    /* a node of the route's config: */
typedef struct gh_plugin_timer gh_plugin_timer;

typedef void (*gh_plugin_timer_cb)(void *arg, gh_plugin_timer *timer);

/* -- topic state (ABI 1.1) ---------------------------------------------------
 * Besides its messages a topic can carry state: MEMBERS, one value per
 * connection that set one (member_set), listed in the order they first set
 * it; and a LOG, the newest messages published with log_publish. Without a
 * bus the state lives in this process. With a bus (Redis) it lives there
 * and is the same on every gatehouse instance: a member of a connection on
 * another instance is listed, and a member whose instance died is removed
 * (its farewell published) within the bus's presence_ttl. A topic's log is
 * kept while the topic has at least one member anywhere, and dropped with
 * the last one. All values and messages here are UTF-8 text. */

/* bytes[0..len), not NUL-terminated, valid during the callback only. */
typedef struct gh_plugin_bytes {
    const char *data;
    size_t      len;
} gh_plugin_bytes;

typedef struct gh_plugin_topic_state {
    const gh_plugin_bytes *members;     /* member values, in join order */
    size_t                 nmembers;
    const gh_plugin_bytes *log;         /* logged messages, oldest first */
    size_t                 nlog;
    /* true: the whole topic's state (every instance's, or this process's
     * when there is no bus); false: a bus is configured but Redis could not
     * be asked (down, or slower than 2 s), so this is what this instance
     * knows: its own members and the log it has seen. */
    bool                   whole;
} gh_plugin_topic_state;

/* The answer to join or fetch. conn is the connection the request was
 * made for, valid during the call; st and everything it points to only
 * during the call. */
typedef void (*gh_plugin_state_cb)(void *arg, gh_plugin_conn *conn,
                                   const gh_plugin_topic_state *st);

/* member_set and member_claim flags */
#define GH_PLUGIN_NOT_SELF 1u    /* the announcement is not delivered to conn */
/* member_claim flags (ABI 1.2) */
#define GH_PLUGIN_JOIN     2u    /* join in the same step (see member_claim) */
#define GH_PLUGIN_ICASE    4u    /* values compare with ASCII letters case-folded */

/* The answer to member_claim (ABI 1.2). result: 0 when conn's member
 * value is now the claimed one, set as member_set sets it, its
 * announcement published before this call (a joining conn, still held
 * then, does not get it); st is the state just before, without it, and
 * with GH_PLUGIN_JOIN conn gets what is published after that (but the
 * announcement) after this call, as with join. -EEXIST when another
 * member of the topic has the value, -ENOSPC when the topic has its max
 * members: nothing was set or published (with GH_PLUGIN_JOIN conn is
 * subscribed, but held: nothing published reaches it until a claim of it
 * is granted; call member_claim again, e.g. with another value picked
 * against st's members, or close conn). conn and st are valid during the
 * call. */
typedef void (*gh_plugin_claim_cb)(void *arg, gh_plugin_conn *conn, int32_t result,
                                   const gh_plugin_topic_state *st);

/* Failures are negative errno values (-EINVAL, -ENOMEM, ...): include
 * <errno.h> to name them. 0 is success. */

/* The host function table. Passed to init; static, valid while the plugin
 * is loaded. Fields are only ever appended. */
typedef struct gh_plugin_host {
    uint32_t size;           /* sizeof(gh_plugin_host) as the host was built */
    uint32_t abi_major;      /* the host's ABI version */
    uint32_t abi_minor;
    uint32_t reserved;
    const char *host_version;    /* e.g. "0.1.0"; static */

    /* -- logging ------------------------------------------------------ */

    /* Writes one line to gatehouse's error log at level (GH_PLUGIN_LOG_*),
     * prefixed with the plugin name, its route and, when conn is not NULL,
     * the connection id and client address. inst may be NULL when conn is
     * given. Lines are cut at about 1,500 bytes. */
    void (*log)(gh_plugin_inst *inst, gh_plugin_conn *conn, int32_t level,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

    /* -- one connection ---------------------------------------------- */

    /* Queues one whole message (GH_PLUGIN_TEXT or GH_PLUGIN_BINARY) of len
     * bytes; data is copied before the call returns. Text must be UTF-8.
     * Returns 0; -EINVAL (bad type, text not UTF-8, len over 2^62);
     * -ENOTCONN (the connection is closing or closed); -ENOBUFS (the
     * connection's send backlog is over the route's send_backlog: the host
     * is closing it with 1008 as a slow consumer); -ENOMEM. */
    int32_t (*send)(gh_plugin_conn *conn, int32_t type, const void *data, size_t len);

    /* Bytes queued for the connection and not yet written to its socket. */
    uint64_t (*buffered)(gh_plugin_conn *conn);

    /* Starts the close handshake with code (see GH_PLUGIN_CLOSE_*) and a
     * UTF-8 reason of reason_len bytes (cut to 123 bytes; reason may be
     * NULL when reason_len is 0). Nothing more is delivered or sent on the
     * connection; its close callback runs after the current callback
     * returns, with this code. Returns 0; -EINVAL (a code that may not be
     * sent, a reason that is not UTF-8); -ENOTCONN (already closing). */
    int32_t (*close)(gh_plugin_conn *conn, uint16_t code, const char *reason,
                     size_t reason_len);

    /* The real client: the PROXY protocol source when a trusted proxy sent
     * one, else the socket peer. The address as text ("203.0.113.7",
     * "2001:db8::1"); valid as long as the connection. */
    const char *(*client_addr)(gh_plugin_conn *conn);
    uint16_t (*client_port)(gh_plugin_conn *conn);

    /* The request's normalised path ("/ws/chat") and its raw query after
     * '?' (still percent-encoded; "" when none). NUL-terminated, valid as
     * long as the connection. */
    const char *(*path)(gh_plugin_conn *conn);
    const char *(*query)(gh_plugin_conn *conn);

    /* The first request header named name (case-insensitive), its value
     * with surrounding whitespace trimmed, NOT NUL-terminated: *len bytes.
     * Only during the open callback (the request is gone afterwards);
     * returns NULL when absent or called at another time. */
    const char *(*header)(gh_plugin_conn *conn, const char *name, size_t *len);

    /* The negotiated subprotocol (one of the descriptor's list), or NULL
     * when none was. Valid as long as the connection. */
    const char *(*subprotocol)(gh_plugin_conn *conn);

    /* Per-connection user data, NULL until set. The host never touches it:
     * free what it points to in the close callback. */
    void  (*set_data)(gh_plugin_conn *conn, void *data);
    void *(*get_data)(gh_plugin_conn *conn);

    /* A number naming the connection in gatehouse's logs ("conn #42"). */
    uint64_t (*conn_id)(gh_plugin_conn *conn);

    /* -- timers (on the event loop) ------------------------------------ */

    /* Calls cb(arg, timer) after after_ms, then every every_ms when
     * every_ms > 0. Returns the timer or NULL (-ENOMEM). A timer started in
     * init runs once gatehouse serves (never under `gatehouse -t`). The
     * handle is valid until timer_stop(), which a plugin may call from
     * any callback, the timer's own included; a one-shot timer (every_ms
     * 0) is stopped for you after its callback returns. Timers still
     * running when fini returns are stopped by the host. */
    gh_plugin_timer *(*timer_start)(gh_plugin_inst *inst, uint64_t after_ms,
                                    uint64_t every_ms, gh_plugin_timer_cb cb,
                                    void *arg);
    void (*timer_stop)(gh_plugin_timer *timer);

    /* -- the route's config: mapping ------------------------------------ */

    /* Every config_* function takes a mapping node (the cfg given to init,
     * or one returned by config_get) and treats NULL as an empty mapping.
     * A key that is absent yields def and 0. A value of the wrong type or
     * format is reported by the host as FILE:LINE:COL: message (at
     * `gatehouse -t` and in the log) and yields -EINVAL: fail init then.
     * Strings returned point into the config and live until fini returns. */

    /* The child node under key (a scalar, list or mapping), or NULL. */
    const gh_plugin_cfg *(*config_get)(const gh_plugin_cfg *map, const char *key);
    /* A scalar as text. */
    int32_t (*config_string)(const gh_plugin_cfg *map, const char *key,
                             const char *def, const char **out);
    /* A decimal integer within [min, max]. */
    int32_t (*config_int)(const gh_plugin_cfg *map, const char *key, int64_t def,
                          int64_t min, int64_t max, int64_t *out);
    /* true/false (also yes/no, on/off). */
    int32_t (*config_bool)(const gh_plugin_cfg *map, const char *key, bool def,
                           bool *out);
    /* A size: 4096, 64KiB, 1MiB, 1GiB (KB/MB/GB are 1000-based). */
    int32_t (*config_size)(const gh_plugin_cfg *map, const char *key, uint64_t def,
                           uint64_t *out);
    /* A duration in milliseconds: 500ms, 30s, 5m, 1h. */
    int32_t (*config_duration)(const gh_plugin_cfg *map, const char *key,
                               uint64_t def_ms, uint64_t *out_ms);
    /* A list of scalars: stores up to cap item strings in items[] and the
     * list's length in *count (which may exceed cap). An absent key gives
     * *count = 0. */
    int32_t (*config_list)(const gh_plugin_cfg *map, const char *key,
                           const char **items, size_t cap, size_t *count);
    /* Reports every key of map not in known[] (NULL-terminated) as an
     * unknown key, with its FILE:LINE:COL. Returns 0 or -EINVAL. */
    int32_t (*config_check_keys)(const gh_plugin_cfg *map, const char *const *known);

    /* -- topics ----------------------------------------------------------
     * Topics are named by bytes (1..1024, not NUL-terminated) and belong
     * to the plugin's name: two plugins' topics never mix, and every route
     * (instance) of one plugin shares them. */

    /* Subscribes conn to topic; subscribing twice is a no-op. Returns 0,
     * -EINVAL (bad name), -ENOTCONN (conn closing), -ENOMEM. A connection
     * is unsubscribed from everything when it closes. */
    int32_t (*subscribe)(gh_plugin_conn *conn, const char *topic, size_t topic_len);
    /* Returns 0, or -ENOENT when conn was not subscribed. */
    int32_t (*unsubscribe)(gh_plugin_conn *conn, const char *topic, size_t topic_len);
    /* Sends one message (GH_PLUGIN_TEXT or GH_PLUGIN_BINARY) to every
     * subscriber of topic, the publisher's own connection included when it
     * is subscribed. The message is framed once and the same bytes are
     * queued to every subscriber; data is not kept after the call. A
     * subscriber over its send backlog is closed with 1008 instead. With a
     * bus configured the message also reaches other gatehouse instances.
     * Returns 0 (also when nobody is subscribed); -EINVAL (bad name or
     * type, text not UTF-8); -ENOTCONN (not serving, e.g. in init or
     * under -t); -ENOMEM. */
    int32_t (*publish)(gh_plugin_inst *inst, const char *topic, size_t topic_len,
                       int32_t type, const void *data, size_t len);

    /* -- topic state (ABI 1.1; see gh_plugin_topic_state above) -----------
     * Check GH_PLUGIN_HOST_HAS(host, join) before calling these on a host
     * that may be 1.0. A state callback is never called from inside a host
     * function: it runs later, from the event loop, exactly once, unless
     * conn closes first (then it is not called at all, and the close
     * callback is where to free what arg points to). */

    /* Subscribes conn to topic and asks for the topic's state, with no gap
     * and no overlap: nothing published on the topic reaches conn until cb
     * has run with the state, and then conn gets every message published
     * after that state was taken, and none before. What cb sends to conn
     * reaches it before those messages. So a client can be sent "here is
     * the room" and then follow it without losing or doubling a message.
     * Returns 0, -EINVAL (bad name, conn NULL), -ENOTCONN (conn closing,
     * or not serving), -EBUSY (conn has 4 requests waiting), -ENOMEM. */
    int32_t (*join)(gh_plugin_conn *conn, const char *topic, size_t topic_len,
                    gh_plugin_state_cb cb, void *arg);

    /* Asks for the topic's state with no subscription and no ordering
     * promise (e.g. to check a new name against the members). Returns as
     * join. */
    int32_t (*fetch)(gh_plugin_conn *conn, const char *topic, size_t topic_len,
                     gh_plugin_state_cb cb, void *arg);

    /* Sets conn's member value in topic (value_len 1..4096; a member keeps
     * its place in the order when its value changes), or removes it
     * (value NULL). In the same step, publishes announce on the topic when
     * announce is not NULL (to everyone subscribed, conn too unless flags
     * has GH_PLUGIN_NOT_SELF): whoever gets the topic's state sees either
     * neither or both. farewell (NULL: none; ignored when removing) is
     * what is published on the topic when the member goes without
     * member_set removing it: when conn closes (the host removes each
     * member conn still has and publishes its farewell before the
     * plugin's close callback runs), or when conn's gatehouse instance has
     * been gone from the bus for presence_ttl (another instance publishes
     * it then).
     * Returns 0, -EINVAL (bad name or value, text not UTF-8, unknown
     * flags), -ENOTCONN (conn closing, or not serving), -ENOMEM. */
    int32_t (*member_set)(gh_plugin_conn *conn, const char *topic, size_t topic_len,
                          const char *value, size_t value_len,
                          const char *announce, size_t announce_len, uint32_t flags,
                          const char *farewell, size_t farewell_len);

    /* Publishes a text message on topic, as publish does, and appends it
     * to the topic's log in the same step, keeping the newest keep
     * (1..100000) entries. While the topic has no member, the message is
     * published but not logged. Returns as publish, and -EINVAL for keep
     * out of range. */
    int32_t (*log_publish)(gh_plugin_inst *inst, const char *topic, size_t topic_len,
                           const char *data, size_t len, uint32_t keep);

    /* -- ABI 1.2 ------------------------------------------------------------
     * Check GH_PLUGIN_HOST_HAS(host, member_claim) first. */

    /* member_set(conn, topic, value, announce, flags, farewell) only when
     * no other member of the topic has value (compared byte for byte, or
     * with GH_PLUGIN_ICASE ASCII letters case-folded) and the topic has
     * fewer than max members (0: no bound), checked and done in one step
     * for the whole topic (every worker of this process, and with a bus
     * every instance): two connections never both get one value (a
     * chat's nick) nor pass max together (a room's size), however close
     * together they ask. With GH_PLUGIN_JOIN, conn also joins topic in
     * that step (as join: the state in cb is the one the claim was
     * checked against). cb gets the result and the state (see
     * gh_plugin_claim_cb) later, exactly once unless conn closes first.
     * While Redis cannot be asked the claim is decided against what this
     * instance knows (st->whole false), as join answers then. value must
     * not be NULL. Returns as join (-EBUSY counts it as a request), and
     * -EINVAL as member_set (flags: NOT_SELF, JOIN, ICASE). */
    int32_t (*member_claim)(gh_plugin_conn *conn, const char *topic, size_t topic_len,
                          const char *value, size_t value_len, uint32_t max,
                          const char *announce, size_t announce_len, uint32_t flags,
                          const char *farewell, size_t farewell_len,
                          gh_plugin_claim_cb cb, void *arg);
} gh_plugin_host;

/* True when the host table has the named function (a host older than the
 * plugin's header lacks the fields appended after its version). */
#define GH_PLUGIN_HOST_HAS(host, field)                                     \
    ((host)->size >= offsetof(gh_plugin_host, field) + sizeof((host)->field) \
     && (host)->field != NULL)

/* The descriptor a plugin exports as `gatehouse_plugin`. Every callback
 * may be NULL (nothing to do). state is what init stored in *state. */
typedef struct gh_plugin_desc {
    /* never move, in any version */
    uint32_t abi_major;      /* GH_PLUGIN_ABI_MAJOR */
    uint32_t abi_minor;      /* GH_PLUGIN_ABI_MINOR */
    uint32_t size;           /* sizeof(gh_plugin_desc) */
    uint32_t reserved;       /* 0 */

    const char *name;        /* [A-Za-z0-9_.-]{1,64}; routes name it as
                                `websocket: { plugin: NAME }` */
    const char *version;     /* the plugin's own version, free text */
    /* Subprotocols offered, in preference order, NULL-terminated; NULL
     * for none. The first one a client also lists is chosen. */
    const char *const *subprotocols;

    /* Once per websocket route naming the plugin and worker (once per
     * route with GH_PLUGIN_SINGLE_INSTANCE), at start-up and on each
     * reload (and under `gatehouse -t`), on the main thread; the
     * instance's callbacks then run on its worker. host: the function table. inst: this route's
     * instance. config: the route's `config:` mapping (NULL when absent).
     * Store the instance's state in *state. Return 0, or a negative errno
     * to take the route down: it then answers 503, and fini is not
     * called. */
    int32_t (*init)(const gh_plugin_host *host, gh_plugin_inst *inst,
                    const gh_plugin_cfg *config, void **state);
    /* When the instance goes away (exit, or the last connection of a
     * replaced configuration closing). Free state. */
    void (*fini)(void *state);

    /* A client completed the handshake (the 101 is queued: it leaves
     * after open returns, with what open sends, so a client that has its
     * 101 is subscribed to what open subscribed it to). Return 0 to
     * accept, or a close code (1000-4999, see GH_PLUGIN_CLOSE_*) to refuse:
     * the host sends it and the connection ends without a close
     * callback. */
    int32_t (*open)(void *state, gh_plugin_conn *conn);
    /* One whole message, reassembled from its fragments: type is
     * GH_PLUGIN_TEXT (valid UTF-8, not NUL-terminated) or GH_PLUGIN_BINARY;
     * data[0..len) is valid only during the call. */
    void (*message)(void *state, gh_plugin_conn *conn, int32_t type,
                    const void *data, size_t len);
    /* The connection stopped being open; called once per accepted
     * connection. code: the peer's close code when the peer closed first
     * (1005 when its close frame had none); the code sent otherwise (the
     * plugin's own, 1001 on drain or idle timeout, 1002/1007/1009 on a
     * protocol error, 1008 for a slow consumer); 1006 when the TCP
     * connection ended without a close. reason: reason_len bytes of UTF-8
     * (not NUL-terminated, valid during the call). conn is invalid after
     * this returns; sending to it from here fails with -ENOTCONN. */
    void (*close)(void *state, gh_plugin_conn *conn, uint16_t code,
                  const char *reason, size_t reason_len);

    /* -- ABI 1.2 ------------------------------------------------------- */
    /* GH_PLUGIN_* flags; 0 for the default. The host reads it only when
     * size covers it (a 1.0 or 1.1 plugin has none: 0). */
    uint32_t flags;
    uint32_t reserved2;      /* 0 */
} gh_plugin_desc;

/* The v1.0 descriptor size: the host refuses a smaller desc->size. v1.1
 * appended nothing to the descriptor. */
#define GH_PLUGIN_DESC_SIZE_1_0 \
    (offsetof(gh_plugin_desc, close) + sizeof(void (*)(void)))
#define GH_PLUGIN_DESC_SIZE_1_1 GH_PLUGIN_DESC_SIZE_1_0

/* A plugin defines exactly this:
 *     GH_PLUGIN_EXPORT const gh_plugin_desc gatehouse_plugin = { ... };
 * The declaration lets the compiler check the definition. */
extern GH_PLUGIN_EXPORT const gh_plugin_desc gatehouse_plugin;

#ifdef __cplusplus
}
#endif

#endif
