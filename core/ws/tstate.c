/* tstate.c: topic state — members and a log per topic.
 *
 * Why this shape: a chat's welcome needs "who is in the room and what was
 * said lately", and behind a load balancer the room spans instances. The
 * host keeps that state, not the plugin, because only the host can order
 * it with the topic's messages: join() holds the connection's subscription
 * until the state is handed over, so a client gets the state and then
 * exactly the messages after it. Without a bus everything here is
 * synchronous and in-process, so taking the state and releasing the hold
 * in one event-loop step is enough. With a bus the state is in Redis, and
 * bus.c arranges that Redis's answer arrives on the SUBSCRIBE connection in
 * order with the topic's messages; what arrives before the answer is in
 * the state, and the hold drops it.
 *
 * This process keeps its own part in any case: its connections' members
 * (needed to remove them when a connection closes and to re-register them
 * after Redis comes back) and a log of the logged messages it has seen,
 * which is what it answers with while Redis cannot be asked.
 *
 * Topics here are keyed like topic.c's ("namespace\0name") in a small
 * chained hash table; an entry lives while it has a member. Requests are
 * few at a time (at most GH_TSTATE_MAX_PENDING per connection) and sit in
 * one list. */
#include "tstate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "err.h"
#include "log.h"
#include "pluginhost.h"
#include "topic.h"
#include "units.h"
#include "wsconn.h"
#include "wsframe.h"

typedef struct entry entry;

typedef struct member {
    struct member  *prev, *next;        /* in the entry, join order */
    struct member  *cnext;              /* the connection's list */
    entry          *e;
    struct gh_ws_conn *ws;
    char           *value, *farewell;   /* farewell NULL: none */
    size_t          vlen, flen;
} member;

struct entry {
    entry    *next;                     /* hash chain */
    uint64_t  hash;
    member   *head, *tail;
    size_t    nmembers;
    gh_tlog   log;
    size_t    keylen;                   /* ns, NUL, name */
    char      key[];
};

/* What a claim sets once it is granted (gh_tstate_claim). */
typedef struct claim {
    gh_tstate_claim_cb cb;
    uint32_t           max, flags;
    size_t             vlen, alen, flen;
    bool               has_announce, has_farewell;
    char               data[];          /* value, announce, farewell */
} claim;

typedef struct req {
    struct req        *prev, *next;     /* ts->reqs */
    struct req        *cnext;           /* the connection's list */
    gh_tstate         *ts;
    gh_tstate_conn    *owner;
    struct gh_ws_conn *ws;
    uint64_t           id;
    bool               join;
    bool               at_bus;          /* waiting for Redis */
    bool               due;             /* answer locally at the next kick */
    gh_plugin_state_cb cb;
    claim             *claim;           /* a claim's (cb is then NULL), or NULL */
    void              *arg;
    struct event      *timeout;
    size_t             keylen;
    char               key[];           /* ns, NUL, name */
} req;

struct gh_tstate_conn {
    member *members;
    req    *reqs;
    size_t  nreqs;
};

struct gh_tstate {
    gh_loop     *loop;
    entry        **buckets;
    size_t         nbuckets, nentries;
    req           *reqs, *reqs_tail;    /* every waiting request, oldest first */
    struct event  *kick;                /* answers due requests */
    uint64_t       next_id;
    uint64_t       instance;
    gh_tstate_bus  bus;
    bool           has_bus;
};

#define BUCKETS 64

/* Topics are named and hashed by topic.c's rules (gh_topics_key_ok/_hash). */
static entry *entry_find(const gh_tstate *ts, const char *ns, size_t nslen,
                         const char *name, size_t len)
{
    uint64_t h = gh_topics_key_hash(ns, nslen, name, len);
    size_t keylen = nslen + 1 + len;

    for (entry *e = ts->buckets[h & (ts->nbuckets - 1)]; e != NULL; e = e->next)
        if (e->hash == h && e->keylen == keylen && memcmp(e->key, ns, nslen) == 0 &&
            e->key[nslen] == '\0' && memcmp(e->key + nslen + 1, name, len) == 0)
            return e;
    return NULL;
}

static void grow(gh_tstate *ts)
{
    size_t n = ts->nbuckets * 2;
    entry **b = calloc(n, sizeof(*b));

    if (b == NULL)
        return;                 /* longer chains; still correct */
    for (size_t i = 0; i < ts->nbuckets; i++) {
        entry *e = ts->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(ts->buckets);
    ts->buckets = b;
    ts->nbuckets = n;
}

static entry *entry_add(gh_tstate *ts, const char *ns, size_t nslen, const char *name,
                        size_t len)
{
    size_t keylen = nslen + 1 + len;
    entry *e = calloc(1, sizeof(*e) + keylen);

    if (e == NULL)
        return NULL;
    e->hash = gh_topics_key_hash(ns, nslen, name, len);
    e->keylen = keylen;
    memcpy(e->key, ns, nslen);
    memcpy(e->key + nslen + 1, name, len);
    e->next = ts->buckets[e->hash & (ts->nbuckets - 1)];
    ts->buckets[e->hash & (ts->nbuckets - 1)] = e;
    if (++ts->nentries > ts->nbuckets)
        grow(ts);
    return e;
}

static void entry_free(gh_tstate *ts, entry *e)
{
    entry **pp = &ts->buckets[e->hash & (ts->nbuckets - 1)];

    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    ts->nentries--;
    gh_tlog_clear(&e->log);
    free(e);
}

/* ---- the log ring (also the hub's) ------------------------------------------ */

struct gh_tlog_ent {
    char   *data;
    size_t  len;
};

void gh_tlog_clear(gh_tlog *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->ring[(l->first + i) % l->cap].data);
    free(l->ring);
    l->ring = NULL;
    l->cap = l->first = l->count = 0;
}

const char *gh_tlog_at(const gh_tlog *l, size_t i, size_t *len)
{
    const struct gh_tlog_ent *e = &l->ring[(l->first + i) % l->cap];

    *len = e->len;
    return e->data;
}

void gh_tlog_append(gh_tlog *l, const char *data, size_t len, uint32_t keep)
{
    char *copy;

    if (keep == 0)
        return;
    if (l->cap != keep) {
        /* resize: keep the newest min(count, keep) in order */
        struct gh_tlog_ent *r = calloc(keep, sizeof(*r));
        size_t n = l->count < keep ? l->count : keep, skip = l->count - n;
        if (r == NULL)
            return;
        for (size_t i = 0; i < l->count; i++) {
            struct gh_tlog_ent *e = &l->ring[(l->first + i) % l->cap];
            if (i < skip)
                free(e->data);
            else
                r[i - skip] = *e;
        }
        free(l->ring);
        l->ring = r;
        l->cap = keep;
        l->first = 0;
        l->count = n;
    }
    if ((copy = malloc(len > 0 ? len : 1)) == NULL)
        return;
    memcpy(copy, data, len);
    if (l->count == l->cap) {
        free(l->ring[l->first].data);
        l->ring[l->first] = (struct gh_tlog_ent){ copy, len };
        l->first = (l->first + 1) % l->cap;
    } else {
        l->ring[(l->first + l->count) % l->cap] = (struct gh_tlog_ent){ copy, len };
        l->count++;
    }
}

static const char *name_of(const char *key, size_t keylen, size_t *len)
{
    size_t nslen = strlen(key);

    *len = keylen - nslen - 1;
    return key + nslen + 1;
}

/* Delivers here only (no bus, or it could not take it). */
static void deliver_here(gh_tstate *ts, const char *ns, const char *name, size_t len,
                         const char *data, size_t dlen, uint64_t skip)
{
    if (ts->loop->topics != NULL)
        (void)gh_topics_deliver_ex(ts->loop->topics, ns, name, len, GH_WS_OP_TEXT, data,
                                   dlen, UINT64_MAX, skip);
    if (ts->has_bus)
        GH_STAT_ADD(ts->loop->stats.bus_not_broadcast, 1);
}

/* ---- lifetime ------------------------------------------------------------ */

static void on_kick(evutil_socket_t fd, short what, void *arg);

int gh_tstate_new(gh_loop *loop)
{
    gh_tstate *ts = calloc(1, sizeof(*ts));

    if (ts == NULL)
        return GH_ENOMEM;
    ts->loop = loop;
    if ((ts->buckets = calloc(BUCKETS, sizeof(*ts->buckets))) == NULL ||
        (loop->base != NULL && (ts->kick = event_new(loop->base, -1, 0, on_kick, ts)) == NULL)) {
        free(ts->buckets);
        free(ts);
        return GH_ENOMEM;
    }
    ts->nbuckets = BUCKETS;
    if (getrandom(&ts->instance, sizeof(ts->instance), GRND_NONBLOCK) !=
        sizeof(ts->instance)) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        ts->instance = ((uint64_t)t.tv_sec << 32) ^ (uint64_t)t.tv_nsec ^
                       ((uint64_t)getpid() << 16);
    }
    loop->tstate = ts;
    return GH_OK;
}

static void req_free(gh_tstate *ts, req *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        ts->reqs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    else
        ts->reqs_tail = r->prev;
    if (r->owner != NULL) {
        req **pp = &r->owner->reqs;
        while (*pp != r)
            pp = &(*pp)->cnext;
        *pp = r->cnext;
        r->owner->nreqs--;
    }
    if (r->timeout != NULL)
        event_free(r->timeout);
    free(r->claim);
    free(r);
}

void gh_tstate_free(gh_loop *loop)
{
    gh_tstate *ts = loop->tstate;

    if (ts == NULL)
        return;
    while (ts->reqs != NULL)
        req_free(ts, ts->reqs);
    for (size_t i = 0; i < ts->nbuckets; i++) {
        while (ts->buckets[i] != NULL) {
            entry *e = ts->buckets[i];
            /* members belong to connections, which are gone */
            for (member *m = e->head, *next; m != NULL; m = next) {
                next = m->next;
                free(m->value);
                free(m->farewell);
                free(m);
            }
            entry_free(ts, e);
        }
    }
    if (ts->kick != NULL)
        event_free(ts->kick);
    free(ts->buckets);
    free(ts);
    loop->tstate = NULL;
}

uint64_t gh_tstate_instance(const gh_tstate *ts)
{
    return ts->instance;
}

size_t gh_tstate_members(const gh_tstate *ts, const char *ns, const char *name, size_t len)
{
    size_t nslen;
    const entry *e;

    if (!gh_topics_key_ok(ns, name, len, &nslen))
        return 0;
    e = entry_find(ts, ns, nslen, name, len);
    return e != NULL ? e->nmembers : 0;
}

void gh_tstate_set_bus(gh_tstate *ts, const gh_tstate_bus *bus)
{
    ts->has_bus = bus != NULL;
    if (bus != NULL) {
        ts->bus = *bus;
        return;
    }
    memset(&ts->bus, 0, sizeof(ts->bus));
    gh_tstate_unanswered_all(ts);
}

/* ---- answering ----------------------------------------------------------- */

static int local_set(gh_tstate *ts, struct gh_ws_conn *ws, gh_tstate_conn *c,
                     const char *ns, size_t nslen, const char *name, size_t len,
                     const char *value, size_t vlen, const char *farewell, size_t flen,
                     bool *last);

static const char *claim_value(const claim *cl)
{
    return cl->data;
}

static const char *claim_announce(const claim *cl)
{
    return cl->has_announce ? cl->data + cl->vlen : NULL;
}

static const char *claim_farewell(const claim *cl)
{
    return cl->has_farewell ? cl->data + cl->vlen + cl->alen : NULL;
}

/* Releases a join's hold (not a refused claim's), frees r and hands st
 * to r's callback. A claim the bus granted has its member set in this
 * process's part first; with keep, the claim is handed back instead
 * (granted here: the caller sets it). */
static void answer(gh_tstate *ts, req *r, int result, const gh_plugin_topic_state *st,
                   claim **keep)
{
    struct gh_ws_conn *ws = r->ws;
    gh_plugin_state_cb cb = r->cb;
    claim *cl = r->claim;
    void *arg = r->arg;
    gh_plugin_call pc;
    size_t len, nslen = strlen(r->key);
    const char *name = name_of(r->key, r->keylen, &len);

    if (cl != NULL && result == GH_OK && keep == NULL) {
        bool last;
        if (local_set(ts, ws, r->owner, r->key, nslen, name, len, claim_value(cl), cl->vlen,
                      claim_farewell(cl), cl->flen, &last) != GH_OK)
            GH_LOG(GH_LOG_ERROR, "topic state: out of memory noting a member; its farewell "
                   "is not published here when it goes");
        if (ts->has_bus && ts->bus.noted != NULL)
            ts->bus.noted(ts->bus.ctx, r->key, name, len, gh_ws_conn_id(ws), claim_value(cl),
                          cl->vlen, claim_farewell(cl), cl->flen);
    }
    /* the state is taken: from now on ws gets what is published, also what
     * the callback itself publishes (after what it sends to ws directly);
     * a refused claim keeps it held for the next try */
    if (r->join && (cl == NULL || result == GH_OK))
        (void)gh_ws_conn_hold(ws, name, len, false);
    r->claim = NULL;
    req_free(ts, r);
    if (st->whole && ts->has_bus && !ts->bus.in_process)
        GH_STAT_ADD(ts->loop->stats.state_answers_redis, 1);
    else
        GH_STAT_ADD(ts->loop->stats.state_answers_local, 1);
    gh_plugin_call_enter(&pc, gh_ws_conn_route(ws), GH_PLUGIN_CALL_STATE);
    if (cl != NULL)
        cl->cb(arg, (gh_plugin_conn *)ws, (int32_t)result, st);
    else
        cb(arg, (gh_plugin_conn *)ws, st);
    gh_plugin_call_leave(&pc);
    if (keep != NULL)
        *keep = cl;
    else
        free(cl);
}

bool gh_tstate_value_eq(const char *a, size_t alen, const char *b, size_t blen, bool icase)
{
    if (alen != blen)
        return false;
    if (!icase)
        return memcmp(a, b, alen) == 0;
    for (size_t i = 0; i < alen; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

/* A claim decided from this process's part: another member (not ws's
 * own) with the value, or max members already. */
static int claim_local(const entry *e, const struct gh_ws_conn *ws, const claim *cl)
{
    size_t others = 0;

    for (const member *m = e != NULL ? e->head : NULL; m != NULL; m = m->next) {
        if (m->ws == ws)
            continue;
        others++;
        if (gh_tstate_value_eq(m->value, m->vlen, claim_value(cl), cl->vlen,
                               (cl->flags & GH_PLUGIN_ICASE) != 0))
            return GH_EEXIST;
    }
    return cl->max > 0 && others >= cl->max ? GH_ENOSPC : GH_OK;
}

/* Answers r from this process's part. A claim granted here is set as
 * member_set sets it (through the bus when it can take it) before the
 * callback, with st as it was before (the claimer's own old value
 * copied: the set frees it). */
static void answer_local(gh_tstate *ts, req *r)
{
    size_t nslen = strlen(r->key), len = r->keylen - nslen - 1;
    entry *e = entry_find(ts, r->key, nslen, r->key + nslen + 1, len);
    gh_plugin_topic_state st = { .whole = !ts->has_bus };
    gh_plugin_bytes *m = NULL, *l = NULL;
    claim *cl = r->claim, *kept = NULL;
    int result = cl != NULL ? claim_local(e, r->ws, cl) : GH_OK;
    struct gh_ws_conn *ws = r->ws;
    char key[GH_TOPIC_MAX_NS + 1 + GH_TOPIC_MAX_NAME], *own = NULL;

    if (e != NULL) {
        size_t i = 0;
        if (e->nmembers > 0 && (m = calloc(e->nmembers, sizeof(*m))) == NULL)
            goto nomem;
        for (member *p = e->head; p != NULL; p = p->next) {
            m[i++] = (gh_plugin_bytes){ p->value, p->vlen };
            if (cl != NULL && result == GH_OK && p->ws == ws) {
                if ((own = malloc(p->vlen)) == NULL)
                    goto nomem;
                memcpy(own, p->value, p->vlen);
                m[i - 1].data = own;
            }
        }
        if (e->log.count > 0 && (l = calloc(e->log.count, sizeof(*l))) == NULL)
            goto nomem;
        for (i = 0; i < e->log.count; i++) {
            size_t n;
            const char *d = gh_tlog_at(&e->log, i, &n);
            l[i] = (gh_plugin_bytes){ d, n };
        }
        st.members = m;
        st.nmembers = e->nmembers;
        st.log = l;
        st.nlog = e->log.count;
    }
    if (cl != NULL && result == GH_OK) {
        /* set as member_set sets it (through the bus when it takes it)
         * while a joiner's subscription is still held: the announcement
         * goes out before the callback runs, as with a bus */
        memcpy(key, r->key, r->keylen);
        if (gh_tstate_member_set(ts, ws, gh_ws_conn_tstate(ws), key, key + nslen + 1, len,
                                 claim_value(cl), cl->vlen, claim_announce(cl), cl->alen,
                                 cl->flags & GH_PLUGIN_NOT_SELF, claim_farewell(cl),
                                 cl->flen) != GH_OK)
            GH_LOG(GH_LOG_ERROR, "topic state: out of memory setting a member");
    }
    answer(ts, r, result, &st, cl != NULL ? &kept : NULL);
    free(kept);
    free(own);
    free(m);
    free(l);
    return;
nomem:
    free(own);
    free(m);
    GH_LOG(GH_LOG_ERROR, "topic state: out of memory answering a request; the "
           "connection is closed");
    (void)gh_ws_conn_close(r->ws, GH_WS_CLOSE_INTERNAL_ERROR, NULL, 0);
    req_free(ts, r);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    gh_tstate *ts = arg;
    req *r;

    (void)fd;
    (void)what;
    /* one at a time from the head: a callback may add or drop requests */
    for (;;) {
        for (r = ts->reqs; r != NULL && !r->due; r = r->next)
            ;
        if (r == NULL)
            break;
        answer_local(ts, r);
    }
}

static void make_due(gh_tstate *ts, req *r)
{
    r->due = true;
    r->at_bus = false;
    if (r->timeout != NULL)
        evtimer_del(r->timeout);
    if (ts->kick != NULL)
        event_active(ts->kick, 0, 0);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    req *r = arg;

    (void)fd;
    (void)what;
    GH_LOG(GH_LOG_WARN, "topic state: redis did not answer within %dms; answering "
           "from this instance's part", GH_TSTATE_WAIT_MS);
    make_due(r->ts, r);
}

static req *req_by_id(gh_tstate *ts, uint64_t id)
{
    for (req *r = ts->reqs; r != NULL; r = r->next)
        if (r->id == id)
            return r;
    return NULL;
}

void gh_tstate_answer(gh_tstate *ts, uint64_t reqid, int result,
                      const gh_plugin_topic_state *st)
{
    req *r = req_by_id(ts, reqid);

    if (r == NULL || !r->at_bus)
        return;                 /* gone, or answered locally already */
    answer(ts, r, r->claim != NULL ? result : GH_OK, st, NULL);
}

void gh_tstate_unanswered(gh_tstate *ts, uint64_t reqid)
{
    req *r = req_by_id(ts, reqid);

    if (r != NULL && r->at_bus)
        make_due(ts, r);
}

/* ---- the ABI ---------------------------------------------------------------- */

static gh_tstate_conn *conn_state(gh_tstate_conn **tsc)
{
    if (*tsc == NULL)
        *tsc = calloc(1, sizeof(**tsc));
    return *tsc;
}

/* A request: a fetch, a join, or a join with a claim (cl, taken). */
static int request(gh_tstate *ts, struct gh_ws_conn *ws, gh_tstate_conn **tsc,
                   const char *ns, size_t nslen, const char *name, size_t len, bool join,
                   gh_plugin_state_cb cb, claim *cl, void *arg)
{
    gh_tstate_conn *c = NULL;
    req *r = NULL;
    int rc;
    bool sent;

    if (!gh_ws_conn_is_open(ws) || ts->kick == NULL)
        rc = -ENOTCONN;
    else if ((c = conn_state(tsc)) == NULL)
        rc = GH_ENOMEM;
    else if (c->nreqs >= GH_TSTATE_MAX_PENDING)
        rc = -EBUSY;
    else if ((r = calloc(1, sizeof(*r) + nslen + 1 + len)) == NULL)
        rc = GH_ENOMEM;
    else if ((r->timeout = evtimer_new(ts->loop->base, on_timeout, r)) == NULL)
        rc = GH_ENOMEM;
    else if (join && (rc = gh_ws_conn_subscribe(ws, name, len)) != GH_OK)
        ;
    else
        rc = GH_OK;
    if (rc != GH_OK) {
        if (r != NULL && r->timeout != NULL)
            event_free(r->timeout);
        free(r);
        free(cl);
        return rc;
    }
    if (join)
        (void)gh_ws_conn_hold(ws, name, len, true);
    r->ts = ts;
    r->ws = ws;
    r->owner = c;
    r->id = ++ts->next_id;
    r->join = join;
    r->cb = cb;
    r->claim = cl;
    r->arg = arg;
    r->keylen = nslen + 1 + len;
    memcpy(r->key, ns, nslen);
    memcpy(r->key + nslen + 1, name, len);
    r->prev = ts->reqs_tail;
    if (ts->reqs_tail != NULL)
        ts->reqs_tail->next = r;
    else
        ts->reqs = r;
    ts->reqs_tail = r;
    r->cnext = c->reqs;
    c->reqs = r;
    c->nreqs++;
    if (cl != NULL)
        sent = ts->has_bus && ts->bus.claim != NULL &&
               ts->bus.claim(ts->bus.ctx, ns, name, len, r->id, gh_ws_conn_id(ws),
                             claim_value(cl), cl->vlen, cl->max, cl->flags,
                             claim_farewell(cl), cl->flen, claim_announce(cl), cl->alen,
                             cl->flags & GH_PLUGIN_NOT_SELF
                             ? gh_ws_conn_serial(ws, name, len) : 0) == GH_OK;
    else
        sent = ts->has_bus && ts->bus.fetch(ts->bus.ctx, ns, name, len, r->id, join) == GH_OK;
    if (sent) {
        struct timeval tv = gh_units_timeval(GH_TSTATE_WAIT_MS);
        r->at_bus = true;
        evtimer_add(r->timeout, &tv);
    } else {
        make_due(ts, r);
    }
    return GH_OK;
}

int gh_tstate_request(gh_tstate *ts, struct gh_ws_conn *ws, gh_tstate_conn **tsc,
                      const char *ns, const char *name, size_t len, bool join,
                      gh_plugin_state_cb cb, void *arg)
{
    size_t nslen;

    if (!gh_topics_key_ok(ns, name, len, &nslen) || cb == NULL)
        return GH_EINVAL;
    return request(ts, ws, tsc, ns, nslen, name, len, join, cb, NULL, arg);
}

static bool member_args_ok(const char *ns, const char *name, size_t len, size_t *nslen,
                           const char *value, size_t vlen, const char *announce,
                           size_t alen, uint32_t flags, const char *farewell, size_t flen);

int gh_tstate_claim(gh_tstate *ts, struct gh_ws_conn *ws, gh_tstate_conn **tsc,
                    const char *ns, const char *name, size_t len, const char *value,
                    size_t vlen, uint32_t max, const char *announce, size_t alen,
                    uint32_t flags, const char *farewell, size_t flen,
                    gh_tstate_claim_cb cb, void *arg)
{
    size_t nslen;
    claim *cl;

    if (value == NULL || cb == NULL ||
        (flags & ~(uint32_t)(GH_PLUGIN_NOT_SELF | GH_PLUGIN_JOIN | GH_PLUGIN_ICASE)) != 0 ||
        !member_args_ok(ns, name, len, &nslen, value, vlen, announce, alen,
                        flags & GH_PLUGIN_NOT_SELF, farewell, flen))
        return GH_EINVAL;
    if ((cl = malloc(sizeof(*cl) + vlen + alen + flen)) == NULL)
        return GH_ENOMEM;
    cl->cb = cb;
    cl->max = max;
    cl->flags = flags;
    cl->vlen = vlen;
    cl->alen = announce != NULL ? alen : 0;
    cl->flen = farewell != NULL ? flen : 0;
    cl->has_announce = announce != NULL;
    cl->has_farewell = farewell != NULL;
    memcpy(cl->data, value, vlen);
    if (cl->alen > 0)
        memcpy(cl->data + vlen, announce, cl->alen);
    if (cl->flen > 0)
        memcpy(cl->data + vlen + cl->alen, farewell, cl->flen);
    return request(ts, ws, tsc, ns, nslen, name, len, (flags & GH_PLUGIN_JOIN) != 0, NULL, cl,
                   arg);
}

static member *member_of(gh_tstate_conn *c, const entry *e)
{
    for (member *m = c != NULL ? c->members : NULL; m != NULL; m = m->cnext)
        if (m->e == e)
            return m;
    return NULL;
}

/* Removes m from its entry and its connection (c), freeing an entry left
 * without members. Returns whether the entry went. */
static bool member_drop(gh_tstate *ts, gh_tstate_conn *c, member *m)
{
    entry *e = m->e;
    member **pp = &c->members;

    while (*pp != m)
        pp = &(*pp)->cnext;
    *pp = m->cnext;
    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        e->head = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    else
        e->tail = m->prev;
    e->nmembers--;
    GH_STAT_SUB(ts->loop->stats.state_members, 1);
    free(m->value);
    free(m->farewell);
    free(m);
    if (e->nmembers == 0) {
        entry_free(ts, e);
        return true;
    }
    return false;
}

static char *dup_bytes(const char *s, size_t n)
{
    char *p = malloc(n > 0 ? n : 1);

    if (p != NULL && n > 0)
        memcpy(p, s, n);
    return p;
}

/* Sets (value != NULL) or removes c's (ws's) member in this process's
 * part. *last: the entry went with it. Returns 0 or GH_ENOMEM. */
static int local_set(gh_tstate *ts, struct gh_ws_conn *ws, gh_tstate_conn *c,
                     const char *ns, size_t nslen, const char *name, size_t len,
                     const char *value, size_t vlen, const char *farewell, size_t flen,
                     bool *last)
{
    entry *e;
    member *m;

    *last = false;
    e = entry_find(ts, ns, nslen, name, len);
    m = e != NULL ? member_of(c, e) : NULL;
    if (value != NULL) {
        char *v = dup_bytes(value, vlen), *f = farewell != NULL ? dup_bytes(farewell, flen)
                                                                 : NULL;
        if (v == NULL || (farewell != NULL && f == NULL) ||
            (e == NULL && (e = entry_add(ts, ns, nslen, name, len)) == NULL) ||
            (m == NULL && (m = calloc(1, sizeof(*m))) == NULL)) {
            free(v);
            free(f);
            if (e != NULL && e->nmembers == 0)
                entry_free(ts, e);
            return GH_ENOMEM;
        }
        if (m->e == NULL) {
            m->e = e;
            m->ws = ws;
            m->prev = e->tail;
            if (e->tail != NULL)
                e->tail->next = m;
            else
                e->head = m;
            e->tail = m;
            e->nmembers++;
            GH_STAT_ADD(ts->loop->stats.state_members, 1);
            m->cnext = c->members;
            c->members = m;
        }
        free(m->value);
        free(m->farewell);
        m->value = v;
        m->vlen = vlen;
        m->farewell = f;
        m->flen = f != NULL ? flen : 0;
    } else if (m != NULL) {
        *last = member_drop(ts, c, m);
    }
    return GH_OK;
}

static bool member_args_ok(const char *ns, const char *name, size_t len, size_t *nslen,
                           const char *value, size_t vlen, const char *announce,
                           size_t alen, uint32_t flags, const char *farewell, size_t flen)
{
    return gh_topics_key_ok(ns, name, len, nslen) &&
           (value == NULL || (vlen > 0 && vlen <= GH_TSTATE_MAX_VALUE)) &&
           (flags & ~(uint32_t)GH_PLUGIN_NOT_SELF) == 0 && (announce != NULL || alen == 0) &&
           (farewell != NULL || flen == 0);
}

int gh_tstate_member_set(gh_tstate *ts, struct gh_ws_conn *ws, gh_tstate_conn **tsc,
                         const char *ns, const char *name, size_t len,
                         const char *value, size_t vlen, const char *announce,
                         size_t alen, uint32_t flags, const char *farewell, size_t flen)
{
    size_t nslen;
    gh_tstate_conn *c;
    uint64_t skip = 0;
    bool last = false;
    int rc;

    if (!member_args_ok(ns, name, len, &nslen, value, vlen, announce, alen, flags, farewell,
                        flen))
        return GH_EINVAL;
    if (!gh_ws_conn_is_open(ws))
        return -ENOTCONN;
    if ((c = conn_state(tsc)) == NULL)
        return GH_ENOMEM;
    if ((rc = local_set(ts, ws, c, ns, nslen, name, len, value, vlen, farewell, flen,
                        &last)) != GH_OK)
        return rc;
    if (flags & GH_PLUGIN_NOT_SELF)
        skip = gh_ws_conn_serial(ws, name, len);
    if (ts->has_bus &&
        ts->bus.member(ts->bus.ctx, ns, name, len, gh_ws_conn_id(ws), value, vlen,
                       farewell, farewell != NULL ? flen : 0, announce, alen, skip,
                       last, false) == GH_OK)
        return GH_OK;
    if (announce != NULL)
        deliver_here(ts, ns, name, len, announce, alen, skip);
    return GH_OK;
}

int gh_tstate_log_publish(gh_tstate *ts, const char *ns, const char *name, size_t len,
                          const char *data, size_t dlen, uint32_t keep)
{
    size_t nslen;
    entry *e;

    if (!gh_topics_key_ok(ns, name, len, &nslen) || keep == 0 || keep > GH_TSTATE_MAX_KEEP ||
        (data == NULL && dlen > 0))
        return GH_EINVAL;
    if (ts->has_bus &&
        ts->bus.log_publish(ts->bus.ctx, ns, name, len, data, dlen, keep) == GH_OK)
        return GH_OK;           /* logged here when it comes back */
    if ((e = entry_find(ts, ns, nslen, name, len)) != NULL)
        gh_tlog_append(&e->log, data, dlen, keep);
    deliver_here(ts, ns, name, len, data, dlen, 0);
    return GH_OK;
}

void gh_tstate_unanswered_all(gh_tstate *ts)
{
    for (req *r = ts->reqs; r != NULL; r = r->next)
        if (r->at_bus)
            make_due(ts, r);
}

void gh_tstate_log_seen(gh_tstate *ts, const char *ns, const char *name, size_t len,
                        const char *data, size_t dlen, uint32_t keep)
{
    size_t nslen;
    entry *e;

    if (keep == 0 || keep > GH_TSTATE_MAX_KEEP || !gh_topics_key_ok(ns, name, len, &nslen))
        return;
    if ((e = entry_find(ts, ns, nslen, name, len)) != NULL)
        gh_tlog_append(&e->log, data, dlen, keep);
}

void gh_tstate_conn_gone(gh_tstate *ts, gh_tstate_conn **tsc)
{
    gh_tstate_conn *c = *tsc;

    if (c == NULL)
        return;
    while (c->reqs != NULL) {
        req *r = c->reqs;

        /* a claim whose answer has not come may have been granted: its
         * member goes, its farewell published only if it was one */
        if (r->claim != NULL && r->at_bus && ts->has_bus) {
            size_t len;
            const char *name = name_of(r->key, r->keylen, &len);
            (void)ts->bus.member(ts->bus.ctx, r->key, name, len, gh_ws_conn_id(r->ws), NULL,
                                 0, NULL, 0, claim_farewell(r->claim), r->claim->flen, 0,
                                 false, true);
        }
        req_free(ts, r);
    }
    while (c->members != NULL) {
        member *m = c->members;
        entry *e = m->e;
        char key[GH_TOPIC_MAX_NS + 1 + GH_TOPIC_MAX_NAME];
        size_t keylen = e->keylen, len;
        const char *name;
        char *farewell = m->farewell;
        size_t flen = m->flen;
        uint64_t connid = gh_ws_conn_id(m->ws);
        bool last;

        memcpy(key, e->key, keylen);
        name = name_of(key, keylen, &len);
        m->farewell = NULL;     /* ours now */
        last = member_drop(ts, c, m);
        if (!ts->has_bus ||
            ts->bus.member(ts->bus.ctx, key, name, len, connid, NULL, 0, NULL, 0,
                           farewell, flen, 0, last, false) != GH_OK) {
            if (farewell != NULL)
                deliver_here(ts, key, name, len, farewell, flen, 0);
        }
        free(farewell);
    }
    free(c);
    *tsc = NULL;
}

void gh_tstate_each_member(gh_tstate *ts, gh_tstate_member_fn fn, void *ctx)
{
    for (size_t i = 0; i < ts->nbuckets; i++) {
        for (entry *e = ts->buckets[i]; e != NULL; e = e->next) {
            size_t len;
            const char *name = name_of(e->key, e->keylen, &len);
            for (member *m = e->head; m != NULL; m = m->next)
                fn(ctx, e->key, name, len, gh_ws_conn_id(m->ws), m->value, m->vlen,
                   m->farewell, m->flen);
        }
    }
}
