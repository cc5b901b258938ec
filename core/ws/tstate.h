/* tstate.h: topic state — members and a log per topic (plugin ABI 1.1's
 * join, fetch, member_set and log_publish). Internal to core/.
 *
 * This process always keeps its own part: the members set by its
 * connections and a log of the logged messages it has seen. Without a bus
 * that is the whole state. With a bus (bus.c) the whole state lives in
 * Redis: member changes and logged publishes go there, requests are
 * answered from there, and this process's part is what it answers with
 * when Redis cannot be asked (down, or slower than GH_TSTATE_WAIT_MS).
 *
 * Requests are always answered later, from the event loop (never inside
 * the call that made them), exactly once, unless the connection goes
 * first. */
#ifndef GH_TSTATE_H
#define GH_TSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gatehouse/plugin.h>

#include "loop.h"

struct gh_ws_conn;
typedef struct gh_tstate gh_tstate;
typedef struct gh_tstate_conn gh_tstate_conn;   /* one connection's members and requests */

#define GH_TSTATE_MAX_VALUE   4096      /* bytes in a member value */
#define GH_TSTATE_MAX_KEEP    100000    /* log entries kept per topic */
#define GH_TSTATE_MAX_PENDING 4         /* requests waiting per connection */
#define GH_TSTATE_WAIT_MS     2000      /* for Redis's answer, then local */

/* What a bus provides (bus.c). Each returns 0 when the operation went to
 * Redis (its publish will come back through SUBSCRIBE), or a negative
 * error when it did not (the link is down): the caller then does it here
 * only. ns is NUL-terminated; strings are borrowed for the call. */
typedef struct gh_tstate_bus {
    void *ctx;
    /* Sets (value != NULL) or removes member (instance id, connid) of
     * (ns, name) and publishes announce (NULL: nothing) in one step.
     * last_local: this was the instance's last member in the topic.
     * if_member: a removal publishes announce only when connid was a
     * member (a claim whose answer never came). */
    int (*member)(void *ctx, const char *ns, const char *name, size_t len,
                  uint64_t connid, const char *value, size_t vlen,
                  const char *farewell, size_t flen, const char *announce, size_t alen,
                  uint64_t skip, bool last_local, bool if_member);
    /* Publishes data on (ns, name) and logs it (keep newest entries). */
    int (*log_publish)(void *ctx, const char *ns, const char *name, size_t len,
                       const char *data, size_t dlen, uint32_t keep);
    /* Asks Redis for the state; the answer comes to gh_tstate_answer()
     * with reqid, or gh_tstate_unanswered() when there will be none.
     * after_subscribe: wait until this instance's SUBSCRIBE to the topic is
     * confirmed, so the answer is ordered with the topic's messages. */
    int (*fetch)(void *ctx, const char *ns, const char *name, size_t len, uint64_t reqid,
                 bool after_subscribe);
    /* A fetch (with GH_PLUGIN_JOIN in flags a join's: after_subscribe)
     * that in the same step sets member connid to value (with farewell,
     * publishing announce) when no other member of the topic has value
     * (GH_PLUGIN_ICASE: ASCII case-folded) and it has fewer than max
     * members (0: no bound). The answer comes to gh_tstate_answer() with
     * reqid, the result (0, GH_EEXIST or GH_ENOSPC) and the state before
     * the set. Returns as fetch. */
    int (*claim)(void *ctx, const char *ns, const char *name, size_t len, uint64_t reqid,
                 uint64_t connid, const char *value, size_t vlen, uint32_t max,
                 uint32_t flags, const char *farewell, size_t flen, const char *announce,
                 size_t alen, uint64_t skip);
    /* Optional: a claim set member connid (its answer came with 0): for a
     * bus that keeps the process's members itself (the hub). */
    void (*noted)(void *ctx, const char *ns, const char *name, size_t len, uint64_t connid,
                  const char *value, size_t vlen, const char *farewell, size_t flen);
    /* the workers' hub (hub.h), not Redis: its answers count as local */
    bool in_process;
} gh_tstate_bus;

/* Creates loop->tstate. Returns 0 or GH_ENOMEM. */
int gh_tstate_new(gh_loop *loop);
/* Frees loop->tstate (NULL-safe); every connection must be gone. */
void gh_tstate_free(gh_loop *loop);

/* This process's id on the bus (random, fixed for its life), naming its
 * members in Redis so that a new bus (reload) re-registers the same ones. */
uint64_t gh_tstate_instance(const gh_tstate *ts);

/* Members this worker's connections have set in (ns, name): a chat room's
 * users here. On its loop's thread. With one worker that is the process's
 * (the whole room's are in Redis with a bus); with several, the hub has
 * the process's (gh_hub_each). */
size_t gh_tstate_members(const gh_tstate *ts, const char *ns, const char *name, size_t len);

/* Sets (or with NULL clears) the bus; the struct is copied. Requests
 * waiting on a bus that is cleared are answered locally. */
void gh_tstate_set_bus(gh_tstate *ts, const gh_tstate_bus *bus);

/* The ABI's join (join true) and fetch for ws, in ws's plugin's
 * namespace ns. Returns 0, GH_EINVAL, -ENOTCONN, -EBUSY or GH_ENOMEM. */
int gh_tstate_request(gh_tstate *ts, struct gh_ws_conn *ws, gh_tstate_conn **tsc,
                      const char *ns, const char *name, size_t len, bool join,
                      gh_plugin_state_cb cb, void *arg);

/* The answer to a claim (gh_tstate_claim): result 0 when the member is
 * set (st: the state before), GH_EEXIST or GH_ENOSPC when not (the
 * subscription still held). conn and st are valid during the call. */
typedef void (*gh_tstate_claim_cb)(void *arg, gh_plugin_conn *conn, int32_t result,
                                   const gh_plugin_topic_state *st);

/* The ABI's member_claim: ws's member value set to value (with announce
 * and farewell, as gh_tstate_member_set) in the same step as the state is
 * taken, only when no other member has value and the topic has fewer than
 * max members (0: no bound), for the whole topic (every worker; with a
 * bus, every instance); with GH_PLUGIN_JOIN in flags, a join too. Returns
 * as gh_tstate_request, and GH_EINVAL as gh_tstate_member_set. */
int gh_tstate_claim(gh_tstate *ts, struct gh_ws_conn *ws, gh_tstate_conn **tsc,
                    const char *ns, const char *name, size_t len, const char *value,
                    size_t vlen, uint32_t max, const char *announce, size_t alen,
                    uint32_t flags, const char *farewell, size_t flen,
                    gh_tstate_claim_cb cb, void *arg);

/* The ABI's member_set (value NULL: remove). Text is checked by the
 * caller. Returns 0, GH_EINVAL or GH_ENOMEM. */
int gh_tstate_member_set(gh_tstate *ts, struct gh_ws_conn *ws, gh_tstate_conn **tsc,
                         const char *ns, const char *name, size_t len,
                         const char *value, size_t vlen, const char *announce,
                         size_t alen, uint32_t flags, const char *farewell, size_t flen);

/* The ABI's log_publish. Returns 0, GH_EINVAL or GH_ENOMEM. */
int gh_tstate_log_publish(gh_tstate *ts, const char *ns, const char *name, size_t len,
                          const char *data, size_t dlen, uint32_t keep);

/* ws is closing (after its topic subscriptions are gone): its members are
 * removed with their farewells published, its requests dropped; *tsc
 * becomes NULL. NULL-safe on *tsc. */
void gh_tstate_conn_gone(gh_tstate *ts, gh_tstate_conn **tsc);

/* Whether member values a and b are the same (icase: ASCII letters
 * case-folded, every other byte exact). */
bool gh_tstate_value_eq(const char *a, size_t alen, const char *b, size_t blen, bool icase);

/* ---- a topic's log: its newest entries (here and in the hub) --------------- */

typedef struct gh_tlog {
    struct gh_tlog_ent *ring;       /* cap entries, oldest at first */
    size_t              cap, first, count;
} gh_tlog;

/* Appends a copy of data, keeping the newest keep (the ring is resized to
 * keep, oldest dropped); out of memory drops the entry. */
void gh_tlog_append(gh_tlog *l, const char *data, size_t len, uint32_t keep);
/* Entry i (0: oldest) of l->count. */
const char *gh_tlog_at(const gh_tlog *l, size_t i, size_t *len);
void gh_tlog_clear(gh_tlog *l);

/* ---- for the bus ---------------------------------------------------------- */

/* Redis's answer to request reqid (unknown ids are ignored); result: a
 * claim's (0 for a fetch). */
void gh_tstate_answer(gh_tstate *ts, uint64_t reqid, int result,
                      const gh_plugin_topic_state *st);
/* No answer will come for reqid: answer it from this process's part. */
void gh_tstate_unanswered(gh_tstate *ts, uint64_t reqid);
/* The link to Redis is lost: every request waiting for it is answered
 * here instead. */
void gh_tstate_unanswered_all(gh_tstate *ts);
/* A logged message came through the bus: append it to this process's log
 * of (ns, name) when it has members there. */
void gh_tstate_log_seen(gh_tstate *ts, const char *ns, const char *name, size_t len,
                        const char *data, size_t dlen, uint32_t keep);
/* Calls fn for every member this process has (re-registering after a
 * reconnect). */
typedef void (*gh_tstate_member_fn)(void *ctx, const char *ns, const char *name,
                                    size_t len, uint64_t connid, const char *value,
                                    size_t vlen, const char *farewell, size_t flen);
void gh_tstate_each_member(gh_tstate *ts, gh_tstate_member_fn fn, void *ctx);

#endif
