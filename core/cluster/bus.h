/* bus.h: topics across gatehouse instances through Redis pub/sub.
 *
 * With a `bus:` in the config, gh_topics_publish() goes to Redis: one
 * PUBLISH on channel "<channel_prefix><plugin>:<topic>", and every instance
 * (this one included) delivers what its SUBSCRIBE connection receives to
 * its own local subscribers with gh_topics_deliver() (framed once). An
 * instance SUBSCRIBEs to a channel while the topic has a local subscriber.
 * While Redis is unreachable, publish delivers locally only and counts the
 * message as not broadcast; the bus reconnects with backoff.
 *
 * Two halves: a codec (envelope, channel names, the PUBLISH command, the
 * URL) with no I/O and no allocation, and the glue (hiredis on the
 * server's event loop). Internal to core/. */
#ifndef GH_BUS_H
#define GH_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gatehouse/plugin.h>

#include "config.h"
#include "loop.h"
#include "tstate.h"

/* ---- codec: no I/O, no allocation -------------------------------------- */

/* A bus message is an envelope header and the payload. The header is
 * 'g' 'h' VERSION TYPE ORIGIN UPTO SKIP KEEP: TYPE 't' (text) or 'b'
 * (binary); ORIGIN (8 bytes, big-endian) names the publishing bus (random
 * per bus; 0 for a farewell Redis publishes for a dead instance); UPTO (8
 * bytes) is the publisher's gh_topics_serial() at publish time, so that its
 * own instance delivers to the subscribers there were then (see
 * gh_topics_deliver_upto); SKIP (8 bytes) is the publisher's subscription
 * serial that must not get it (0: none); KEEP (4 bytes) is non-zero for a
 * logged message (log_publish): how many entries the log keeps. Every
 * instance sharing a channel_prefix must speak the same VERSION; another
 * version is dropped and logged. */
#define GH_BUS_HDR_LEN     32
#define GH_BUS_VERSION     2

typedef struct gh_bus_msg {
    int            opcode;      /* GH_WS_OP_TEXT or GH_WS_OP_BINARY */
    uint64_t       origin;
    uint64_t       upto;
    uint64_t       skip;
    uint32_t       keep;
    const uint8_t *data;        /* the payload */
    size_t         len;
} gh_bus_msg;

/* Writes the header of m (data and len are not used) into hdr. Returns
 * GH_BUS_HDR_LEN, or GH_EINVAL for an opcode other than text or binary. */
int gh_bus_envelope_header(uint8_t hdr[GH_BUS_HDR_LEN], const gh_bus_msg *m);

/* Decodes an envelope of len bytes into *out (data pointing into buf,
 * living as long as buf). Returns 0, or GH_EPROTO when buf is shorter than
 * a header, has another magic or version, or an unknown type. The payload
 * is not checked. */
int gh_bus_envelope_decode(const void *buf, size_t len, gh_bus_msg *out);

/* The channel of (ns, name[0..len)): prefix, ns, ':', name, written to out
 * (cap bytes, not NUL-terminated). Returns its length, GH_EINVAL for an
 * empty or too long ns (GH_TOPIC_MAX_NS; ns must hold no ':') or name
 * (GH_TOPIC_MAX_NAME), or GH_E2BIG when cap is too small. */
long gh_bus_channel(char *out, size_t cap, const char *prefix, size_t plen,
                    const char *ns, const char *name, size_t len);

/* Bytes of the RESP command PUBLISH channel envelope for a channel of chlen
 * bytes and a payload of dlen bytes, or 0 on overflow. */
size_t gh_bus_publish_size(size_t chlen, size_t dlen);

/* Writes the command for message m to out (cap bytes). Returns its
 * length, GH_EINVAL (bad opcode, or data NULL with len > 0) or GH_E2BIG
 * (cap below gh_bus_publish_size()). */
long gh_bus_publish_encode(char *out, size_t cap, const char *channel, size_t chlen,
                           const gh_bus_msg *m);

/* A topic state Redis sends back for a request (the fetch script's
 * reply): 16 hex digits of the request id, then the members and then the
 * log, each as 8 hex digits of count followed by that many items of 8 hex
 * digits of length and the bytes. Decodes buf[0..len) into *reqid and
 * items[] (members first, then the log; data pointing into buf), storing
 * the counts in *nmembers and *nlog. Returns 0; GH_E2BIG when cap is below
 * *nmembers + *nlog (the counts and *reqid are set: call again with enough
 * room); GH_EPROTO when buf is not of that form (the counts then mean
 * nothing). items may be NULL when cap is 0. No allocation. */
int gh_bus_state_decode(const char *buf, size_t len, uint64_t *reqid,
                        gh_plugin_bytes *items, size_t cap, size_t *nmembers,
                        size_t *nlog);

/* redis://[:PASSWORD@]HOST:PORT[/DB], parts pointing into the URL. */
typedef struct gh_bus_url {
    const char *host;           /* without the [ ] of an IPv6 literal */
    size_t      host_len;
    uint16_t    port;           /* 1..65535 */
    int         db;             /* 0..15; 0 when absent */
    bool        has_db;
    const char *password;       /* NULL when absent */
    size_t      password_len;
} gh_bus_url;

/* Splits url (NUL-terminated). Returns 0 and *out, or GH_EINVAL when it is
 * not of that form (config.c has checked it already; this is for the
 * glue and the tests). */
int gh_bus_url_parse(const char *url, gh_bus_url *out);

/* ---- glue ---------------------------------------------------------------- */

typedef struct gh_bus gh_bus;

/* Whom a bus serves. gh_bus_new() serves one loop: its own topics and
 * topic state, installed as their bus. With several workers the hub
 * (hub.h) serves the whole process through one bus on worker 0's loop
 * (gh_bus_new_shared): the workers' publishes, member changes and
 * requests reach it through the hub (gh_bus_publish and the rest below,
 * called on the bus's loop), and what comes from Redis goes out through
 * these, called on the bus's loop too. worker: the worker a message was
 * published on (its upto and skip are that worker's serials), or
 * GH_BUS_FOREIGN for another instance's message (to every subscriber). */
#define GH_BUS_FOREIGN UINT32_MAX

typedef struct gh_bus_local {
    void *ctx;
    void (*deliver)(void *ctx, const char *ns, const char *name, size_t len, int opcode,
                    const void *data, size_t dlen, unsigned worker, uint64_t upto,
                    uint64_t skip);
    /* true when (ns, name) has a subscriber here */
    bool (*subscribed)(void *ctx, const char *ns, const char *name, size_t len);
    /* a topic-state request's answer (result: a claim's), or none will
     * come (reqid as the request gave it) */
    void (*answer)(void *ctx, uint64_t reqid, int result, const gh_plugin_topic_state *st);
    void (*unanswered)(void *ctx, uint64_t reqid);
    void (*unanswered_all)(void *ctx);
    void (*log_seen)(void *ctx, const char *ns, const char *name, size_t len,
                     const char *data, size_t dlen, uint32_t keep);
    /* every member this process has, with the connection ids it gave the
     * bus */
    void (*each_member)(void *ctx, gh_tstate_member_fn fn, void *fnctx);
} gh_bus_local;

/* Creates the bus for conf (conf->redis set) on loop's loop and installs it
 * as loop->topics' bus; topics that exist now are subscribed once
 * connected. Connecting starts when the loop runs; failing to reach Redis
 * is not an error here (the bus retries, logging). Returns 0 and *out (free
 * with gh_bus_free), GH_EINVAL (bad URL) or GH_ENOMEM. */
int gh_bus_new(gh_loop *loop, const gh_bus_conf *conf, gh_bus **out);

/* A bus on loop's loop serving local (copied) for nworkers workers
 * (1..GH_MAX_WORKERS): not installed anywhere; the process's instance id
 * is loop's topic state's. Returns as gh_bus_new(). */
int gh_bus_new_shared(gh_loop *loop, const gh_bus_conf *conf, const gh_bus_local *local,
                      unsigned nworkers, gh_bus **out);

/* A shared bus's entry points, on its loop: what the seams of topic.h and
 * tstate.h do for one loop, for worker's operation (upto: that worker's
 * gh_topics_serial() when it was made). publish, member and log_publish
 * return 0 when it went to Redis, or an error when it did not: publish
 * has then delivered it here (through local), member and log_publish
 * have done nothing (the caller does it here). fetch returns as the
 * tstate seam's; its answer comes through local with reqid. */
int gh_bus_publish(gh_bus *b, unsigned worker, uint64_t upto, const char *ns,
                   const char *name, size_t len, int opcode, const void *data, size_t dlen);
int gh_bus_member(gh_bus *b, unsigned worker, uint64_t upto, const char *ns,
                  const char *name, size_t len, uint64_t connid, const char *value,
                  size_t vlen, const char *farewell, size_t flen, const char *announce,
                  size_t alen, uint64_t skip, bool last_local, bool if_member);
int gh_bus_log_publish(gh_bus *b, unsigned worker, uint64_t upto, const char *ns,
                       const char *name, size_t len, const char *data, size_t dlen,
                       uint32_t keep);
int gh_bus_fetch(gh_bus *b, const char *ns, const char *name, size_t len, uint64_t reqid,
                 bool after_subscribe);
int gh_bus_claim(gh_bus *b, unsigned worker, uint64_t upto, const char *ns,
                 const char *name, size_t len, uint64_t reqid, uint64_t connid,
                 const char *value, size_t vlen, uint32_t max, uint32_t flags,
                 const char *farewell, size_t flen, const char *announce, size_t alen,
                 uint64_t skip);
/* The first subscriber in the process came (on true) or the last left. */
void gh_bus_watch(gh_bus *b, const char *ns, const char *name, size_t len, bool on);

/* Uninstalls the bus from loop->topics (publish is local again), closes the
 * connections and frees b. Messages waiting for a SUBSCRIBE to be
 * confirmed are delivered locally. NULL-safe. Call it before the event
 * base is freed, and not from a hiredis callback. */
void gh_bus_free(gh_bus *b);

/* True while both connections to Redis are up (metrics). */
bool gh_bus_is_connected(const gh_bus *b);

/* True when a and b name the same Redis, prefix and password (a reload
 * with an equal bus section keeps the connections). */
bool gh_bus_conf_equal(const gh_bus_conf *a, const gh_bus_conf *b);

#endif
