/* topic.h: WebSocket fan-out by topic, a message framed once and shared by
 * every subscriber. Internal to core/.
 *
 * A topic is named by (namespace, name): the namespace is the plugin's
 * name, so two plugins' topics never mix. Subscribers are opaque pointers
 * (WebSocket connections); a publish frames the message once into a
 * reference-counted gh_frame_ref and hands that same block to a "sink" for
 * every subscriber (wsconn queues a reference to it in its output queue,
 * outq.h, or copies it when it is small); with permessage-deflate, the
 * compressed frame too is made once and shared by every subscriber whose
 * compressor keeps no context. A message several workers deliver (the
 * hub's) has one set of frames for all of them (gh_frame_set).
 *
 * The bus seam: gh_topics_publish() goes to the bus when one is set (the
 * Redis bus to other gatehouse instances, bus.c), which calls
 * gh_topics_deliver() / gh_topics_deliver_upto() for messages to be
 * delivered here, and follows each topic's first and last local subscriber
 * through its watch callback; without a bus, publish is deliver. The
 * plugin ABI only ever sees publish. */
#ifndef GH_TOPIC_H
#define GH_TOPIC_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"

struct gh_topics;
typedef struct gh_topic_sub gh_topic_sub;   /* one subscription */

#define GH_TOPIC_MAX_NAME 1024      /* bytes in a topic name */
#define GH_TOPIC_MAX_NS   64        /* bytes in a namespace (a plugin name) */

/* A framed server message (header + payload) shared by every subscriber it
 * is queued to. refs counts the holders; the last gh_frame_ref_release()
 * frees it. A frame is one thread's (refs is a plain count), except:
 *
 * - a frame of a gh_frame_set, shared by the workers delivering one
 *   message: its refs is atomic, and no queue holds it directly;
 * - a worker's handle on such a frame (under != NULL): a frame of its own
 *   thread with no bytes of its own, whose refs is a plain count as any
 *   other's and which holds one (atomic) reference on the shared frame
 *   until its last holder lets go. A delivery to a thousand subscribers
 *   of a worker thus touches no atomic count; each worker takes one.
 *
 * Read the bytes with gh_frame_bytes(). */
typedef struct gh_frame_ref {
    size_t               refs;
    size_t               len;       /* bytes in data */
    struct gh_frame_ref *under;     /* NULL, or the shared frame whose bytes these are */
    uint8_t              data[];
} gh_frame_ref;

static inline uint8_t *gh_frame_bytes(gh_frame_ref *f)
{
    return f->under != NULL ? f->under->data : f->data;
}

/* Drops one reference (extra is the gh_frame_ref); frees at zero. Its
 * signature is libevent's evbuffer_ref_cleanup_cb, so it can be handed to
 * evbuffer_add_reference() directly. Not for a gh_frame_set's frames. */
void gh_frame_ref_release(const void *data, size_t len, void *extra);

/* Allocates a frame of len bytes with one reference (the caller's).
 * NULL on ENOMEM. */
gh_frame_ref *gh_frame_ref_new(size_t len);

#define GH_TOPIC_MSG_VARIANTS 4

/* The frames of one message delivered by several workers (the workers' hub
 * makes one per message it hands them): the plain frame, made with the
 * set, and the compressed ones, each made once by the first worker that
 * needs it, under the set's lock, while the others needing the same one
 * wait for it (a lock per message and worker, never per delivery). Read
 * only by the workers holding the message; freed by its last. */
typedef struct gh_frame_set {
    int             opcode;
    const uint8_t  *data;           /* the payload: in plain, after its header */
    size_t          len;
    gh_frame_ref   *plain;          /* the uncompressed frame (atomic refs) */
    pthread_mutex_t mu;             /* over what follows */
    gh_frame_ref   *variant[GH_TOPIC_MSG_VARIANTS];     /* atomic refs */
    unsigned        key[GH_TOPIC_MSG_VARIANTS];
    size_t          nvariants;
} gh_frame_set;

/* Makes s's plain frame of the message (opcode GH_WS_OP_TEXT or
 * GH_WS_OP_BINARY, payload copied). GH_OK or GH_ENOMEM (s is then not to
 * be cleared). */
int gh_frame_set_init(gh_frame_set *s, int opcode, const void *data, size_t len);

/* Drops s's references (frames still queued somewhere live on). */
void gh_frame_set_clear(gh_frame_set *s);

/* One message being delivered to a topic's subscribers: its payload, and
 * the frames made of it so far. Each frame is made at most once per
 * delivery, on first use, and shared by every subscriber that can send it:
 * the plain frame, and for permessage-deflate one compressed frame per
 * compressor setting (level, window bits) of the subscribers without
 * server context takeover. The sink picks (wsconn.c); the message drops
 * its own references when the delivery ends. With a set (a message other
 * workers deliver too) each frame is made once for all of them: the ones
 * here are this worker's handles on the set's. */
typedef struct gh_topic_msg {
    int            opcode;          /* GH_WS_OP_TEXT or GH_WS_OP_BINARY */
    const uint8_t *data;            /* the payload, valid during the delivery */
    size_t         len;
    gh_frame_set  *set;             /* NULL: this worker's message alone */
    gh_frame_ref  *plain;           /* the uncompressed frame, or NULL until made */
    gh_frame_ref  *deflated[GH_TOPIC_MSG_VARIANTS];    /* RSV1 frames made so far */
    unsigned       deflated_key[GH_TOPIC_MSG_VARIANTS];  /* the sink's key for each */
    size_t         ndeflated;
} gh_topic_msg;

/* The plain frame of m, made on first use. NULL on ENOMEM. */
gh_frame_ref *gh_topic_msg_plain(gh_topic_msg *m);

/* Makes the frame of m for a variant (the sink's compressed frame): a new
 * frame with one reference and its own bytes, or NULL with *err = 0 when
 * the plain frame is to be sent instead (compressing did not shrink it),
 * or NULL with *err < 0 on an error. */
typedef gh_frame_ref *(*gh_topic_make_fn)(void *ctx, const gh_topic_msg *m, int *err);

/* The frame of m kept under key, made with make(ctx) on first use (once
 * for every worker delivering m when it has a set) and then kept for the
 * other subscribers; with every variant slot used, made for the caller
 * alone. Returns it with a reference for the caller (drop it with
 * gh_frame_ref_release), or NULL with the error make gave or GH_ENOMEM in
 * *err. */
gh_frame_ref *gh_topic_msg_variant(gh_topic_msg *m, unsigned key, gh_topic_make_fn make,
                                   void *ctx, int *err);

/* Queues m to one subscriber, taking a reference on the frame it keeps.
 * Returns 0, or a negative error when the subscriber did not take it
 * (closing, over its backlog). It must not subscribe or unsubscribe
 * anything. */
typedef int (*gh_topic_sink)(void *subscriber, gh_topic_msg *m);

/* What a bus provides: publish hands the message to other instances (and,
 * for this one, calls gh_topics_deliver() when it should arrive here).
 * Returns 0 or a negative error. */
typedef struct gh_topic_bus {
    void *ctx;
    int (*publish)(void *ctx, const char *ns, const char *name, size_t name_len,
                   int opcode, const void *data, size_t len);
    /* Optional (NULL: none). Called with on = 1 when (ns, name) gains its
     * first local subscriber, and with on = 0 when it loses its last one,
     * so a bus can follow them (SUBSCRIBE / UNSUBSCRIBE). ns is
     * NUL-terminated; the strings are borrowed for the call. Not called
     * by gh_topics_destroy(). It must not subscribe or unsubscribe. */
    void (*watch)(void *ctx, const char *ns, const char *name, size_t name_len, int on);
    /* Optional (NULL: none). Called right after watch(on = 1): where the
     * bus wants the topic's count of local subscribers kept, or NULL. The
     * table stores the count there (a relaxed atomic store, on every
     * subscribe and unsubscribe of the topic) until its watch(on = 0), and
     * forgets the place when the bus is cleared. The workers' hub reads
     * them (the status page). Same rules as watch. */
    size_t *(*count_at)(void *ctx, const char *ns, const char *name, size_t name_len);
} gh_topic_bus;

/* Creates loop->topics writing to subscribers through sink (the daemon
 * passes the WebSocket engine's gh_ws_conn_send_msg). Returns 0 or GH_ENOMEM. */
int gh_topics_new(gh_loop *loop, gh_topic_sink sink);
/* Frees loop->topics (NULL-safe). Every subscription must be gone. */
void gh_topics_free(gh_loop *loop);

/* The same, standalone, with any sink (tests). NULL on ENOMEM. */
struct gh_topics *gh_topics_create(gh_topic_sink sink);
void gh_topics_destroy(struct gh_topics *t);     /* NULL-safe */

/* Sets (or with NULL clears) the bus; the struct is copied. A bus with a
 * watch callback is told (on = 1) of every topic that exists now (and
 * asked count_at for each). */
void gh_topics_set_bus(struct gh_topics *t, const gh_topic_bus *bus);

/* Subscribes subscriber to (ns, name[0..len)) and links the subscription
 * into *list (the subscriber's own list, caller's storage, starts NULL).
 * Subscribing twice is a no-op. Returns 0, GH_EINVAL (empty or too long
 * name or namespace) or GH_ENOMEM. */
int gh_topics_subscribe(struct gh_topics *t, const char *ns, const char *name,
                        size_t len, void *subscriber, gh_topic_sub **list);

/* Removes the subscription of *list's owner to (ns, name). Returns 0 or
 * GH_ENOENT. A topic with no subscriber left is freed. */
int gh_topics_unsubscribe(struct gh_topics *t, const char *ns, const char *name,
                          size_t len, gh_topic_sub **list);

/* Removes every subscription in *list; *list becomes NULL. */
void gh_topics_unsubscribe_all(struct gh_topics *t, gh_topic_sub **list);

/* Publishes one message (opcode GH_WS_OP_TEXT or GH_WS_OP_BINARY; text is
 * not checked here): through the bus when set, else gh_topics_deliver().
 * Returns 0 or GH_EINVAL / GH_ENOMEM / the bus's error. */
int gh_topics_publish(struct gh_topics *t, const char *ns, const char *name,
                      size_t len, int opcode, const void *data, size_t dlen);

/* Delivers locally: hands the message to the sink for every subscriber,
 * each frame of it made once (gh_topic_msg). Returns the number of subscribers that took it
 * (>= 0), or GH_EINVAL / GH_ENOMEM. */
long gh_topics_deliver(struct gh_topics *t, const char *ns, const char *name,
                       size_t len, int opcode, const void *data, size_t dlen);

/* As gh_topics_deliver(), but only to the subscriptions made when
 * gh_topics_serial() returned upto or less: a bus delivering a message
 * this instance published reaches the subscribers there were at publish
 * time, as a local publish does (a plugin may publish "joined" and then
 * subscribe the joiner, who must not get it). */
long gh_topics_deliver_upto(struct gh_topics *t, const char *ns, const char *name,
                            size_t len, int opcode, const void *data, size_t dlen,
                            uint64_t upto);

/* As gh_topics_deliver_upto(), and never to the subscription whose
 * serial is skip (0: none; a publisher's "not to myself"), nor to a held
 * one. */
long gh_topics_deliver_ex(struct gh_topics *t, const char *ns, const char *name,
                          size_t len, int opcode, const void *data, size_t dlen,
                          uint64_t upto, uint64_t skip);

/* As gh_topics_deliver_ex(), for the message of set, whose frames this
 * worker's subscribers share with the other workers'. */
long gh_topics_deliver_set(struct gh_topics *t, const char *ns, const char *name,
                           size_t len, gh_frame_set *set, uint64_t upto, uint64_t skip);

/* Holds (held true) or releases the subscription of *list's owner to
 * (ns, name): a held subscription is skipped by every delivery, and what
 * it missed is not kept (topic state's join: the state covers it).
 * Returns 0 or GH_ENOENT (not subscribed). */
int gh_topics_hold(struct gh_topics *t, const char *ns, const char *name, size_t len,
                   gh_topic_sub *list, bool held);

/* The serial of list's owner's subscription to (ns, name); 0: none. */
uint64_t gh_topics_sub_serial(struct gh_topics *t, const char *ns, const char *name,
                              size_t len, gh_topic_sub *list);

/* The serial of the latest subscription (each subscribe takes the next
 * one, from 1); 0 before the first. */
uint64_t gh_topics_serial(const struct gh_topics *t);

/* Subscribers of (ns, name) now (0 when the topic does not exist). */
size_t gh_topics_count(const struct gh_topics *t, const char *ns, const char *name,
                       size_t len);

/* The key rules: true when ns (NUL-terminated, 1..GH_TOPIC_MAX_NS bytes,
 * its length in *nslen) and name (1..GH_TOPIC_MAX_NAME bytes) can name a
 * topic. */
bool gh_topics_key_ok(const char *ns, const char *name, size_t len, size_t *nslen);
/* FNV-1a over ns, a NUL and name: the hash topic tables use. */
uint64_t gh_topics_key_hash(const char *ns, size_t nslen, const char *name, size_t len);

/* Topics that exist now (tests and metrics). */
size_t gh_topics_size(const struct gh_topics *t);

/* Calls fn for every topic that exists now, in no particular order, with
 * its namespace (NUL-terminated), its name (len bytes), its subscribers
 * and the messages delivered to it here since it was made (it is made by
 * its first subscriber and goes with its last). The strings live as long
 * as the topic. fn must not subscribe or unsubscribe anything. */
typedef void (*gh_topics_each_fn)(void *arg, const char *ns, const char *name, size_t len,
                                  size_t nsubs, uint64_t messages);
void gh_topics_each(const struct gh_topics *t, gh_topics_each_fn fn, void *arg);

#endif
