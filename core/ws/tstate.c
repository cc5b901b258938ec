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

/* Releases a join's hold, frees r and hands st to r's callback. */
static void answer(gh_tstate *ts, req *r, const gh_plugin_topic_state *st)
{
    struct gh_ws_conn *ws = r->ws;
    gh_plugin_state_cb cb = r->cb;
    void *arg = r->arg;
    gh_plugin_call pc;

    /* the state is taken: from now on ws gets what is published, also what
     * the callback itself publishes (after what it sends to ws directly) */
    if (r->join) {
        size_t len;
        const char *name = name_of(r->key, r->keylen, &len);
        (void)gh_ws_conn_hold(ws, name, len, false);
    }
    req_free(ts, r);
    if (st->whole && ts->has_bus && !ts->bus.in_process)
        GH_STAT_ADD(ts->loop->stats.state_answers_redis, 1);
    else
        GH_STAT_ADD(ts->loop->stats.state_answers_local, 1);
    gh_plugin_call_enter(&pc, gh_ws_conn_route(ws), GH_PLUGIN_CALL_STATE);
    cb(arg, (gh_plugin_conn *)ws, st);
    gh_plugin_call_leave(&pc);
}

/* Answers r from this process's part. */
static void answer_local(gh_tstate *ts, req *r)
{
    size_t nslen = strlen(r->key), len = r->keylen - nslen - 1;
    entry *e = entry_find(ts, r->key, nslen, r->key + nslen + 1, len);
    gh_plugin_topic_state st = { .whole = !ts->has_bus };
    gh_plugin_bytes *m = NULL, *l = NULL;

    if (e != NULL) {
        size_t i = 0;
        if (e->nmembers > 0 && (m = calloc(e->nmembers, sizeof(*m))) == NULL)
            goto nomem;
        for (member *p = e->head; p != NULL; p = p->next)
            m[i++] = (gh_plugin_bytes){ p->value, p->vlen };
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
    answer(ts, r, &st);
    free(m);
    free(l);
    return;
nomem:
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

void gh_tstate_answer(gh_tstate *ts, uint64_t reqid, const gh_plugin_topic_state *st)
{
    req *r = req_by_id(ts, reqid);

    if (r == NULL || !r->at_bus)
        return;                 /* gone, or answered locally already */
    answer(ts, r, st);
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

int gh_tstate_request(gh_tstate *ts, struct gh_ws_conn *ws, gh_tstate_conn **tsc,
                      const char *ns, const char *name, size_t len, bool join,
                      gh_plugin_state_cb cb, void *arg)
{
    size_t nslen;
    gh_tstate_conn *c;
    req *r;
    int rc;

    if (!gh_topics_key_ok(ns, name, len, &nslen) || cb == NULL)
        return GH_EINVAL;
    if (!gh_ws_conn_is_open(ws) || ts->kick == NULL)
        return -ENOTCONN;
    if ((c = conn_state(tsc)) == NULL)
        return GH_ENOMEM;
    if (c->nreqs >= GH_TSTATE_MAX_PENDING)
        return -EBUSY;
    if ((r = calloc(1, sizeof(*r) + nslen + 1 + len)) == NULL)
        return GH_ENOMEM;
    if ((r->timeout = evtimer_new(ts->loop->base, on_timeout, r)) == NULL) {
        free(r);
        return GH_ENOMEM;
    }
    if (join) {
        if ((rc = gh_ws_conn_subscribe(ws, name, len)) != GH_OK) {
            event_free(r->timeout);
            free(r);
            return rc;
        }
        (void)gh_ws_conn_hold(ws, name, len, true);
    }
    r->ts = ts;
    r->ws = ws;
    r->owner = c;
    r->id = ++ts->next_id;
    r->join = join;
    r->cb = cb;
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
    if (ts->has_bus && ts->bus.fetch(ts->bus.ctx, ns, name, len, r->id, join) == GH_OK) {
        struct timeval tv = gh_units_timeval(GH_TSTATE_WAIT_MS);
        r->at_bus = true;
        evtimer_add(r->timeout, &tv);
    } else {
        make_due(ts, r);
    }
    return GH_OK;
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

int gh_tstate_member_set(gh_tstate *ts, struct gh_ws_conn *ws, gh_tstate_conn **tsc,
                         const char *ns, const char *name, size_t len,
                         const char *value, size_t vlen, const char *announce,
                         size_t alen, uint32_t flags, const char *farewell, size_t flen)
{
    size_t nslen;
    entry *e;
    member *m;
    gh_tstate_conn *c;
    uint64_t skip = 0;
    bool last = false;

    if (!gh_topics_key_ok(ns, name, len, &nslen) || (value != NULL && (vlen == 0 ||
        vlen > GH_TSTATE_MAX_VALUE)) || (flags & ~(uint32_t)GH_PLUGIN_NOT_SELF) != 0 ||
        (announce == NULL && alen > 0) || (farewell == NULL && flen > 0))
        return GH_EINVAL;
    if (!gh_ws_conn_is_open(ws))
        return -ENOTCONN;
    if ((c = conn_state(tsc)) == NULL)
        return GH_ENOMEM;
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
        last = member_drop(ts, c, m);
    }
    if (flags & GH_PLUGIN_NOT_SELF)
        skip = gh_ws_conn_serial(ws, name, len);
    if (ts->has_bus &&
        ts->bus.member(ts->bus.ctx, ns, name, len, gh_ws_conn_id(ws), value, vlen,
                       farewell, farewell != NULL ? flen : 0, announce, alen, skip,
                       last) == GH_OK)
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
    while (c->reqs != NULL)
        req_free(ts, c->reqs);
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
                           farewell, flen, 0, last) != GH_OK) {
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
