/* hub.c: topics and topic state across the workers of one process (see
 * hub.h for what and why).
 *
 * Topics are kept in STRIPES hash tables, each under its own mutex, picked
 * by the topic's hash (topic.c's key and hash): publishes to different
 * topics rarely meet on a lock. A topic here knows which workers have a
 * local subscriber (a bit per worker, kept by the topics' watch callback)
 * and how many (each worker stores its own count in its slot, count_at:
 * a relaxed atomic store, no lock, on its subscribes), counts the
 * messages published to it, and holds the topic state: members (worker,
 * connection id, value) in join order, and the log. An entry lives while a worker subscribes or a
 * member is set; the log goes with the last member, as in tstate.c.
 *
 * Everything that reaches a worker is a task in its mailbox (loop.h),
 * posted while the topic's lock is held: that is the whole ordering
 * argument. A message is copied once and shared by the workers it is posted
 * to, its count of holders atomic.
 *
 * Backpressure: each worker's backlog (the bytes of messages posted to it
 * and not yet delivered) is counted. A publish that finds a worker's over
 * the limit still goes out, and tells its own loop (hub_congested), so
 * the connection whose message made it stops being read (wsconn.c): a
 * client flooding a topic is paced by the slowest worker with
 * subscribers, as one loop paces it by delivering itself, instead of
 * piling up in that worker's mailbox. When the backlog is down to a
 * quarter of that every worker is told to read its paused publishers
 * again. The limit is the config's worker_backlog (gh_hub_set_backlog). */
#include "hub.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "topic.h"
#include "tstate.h"
#include "wsframe.h"

#define STRIPES        64
#define MASK_WORDS     ((GH_MAX_WORKERS + 63) / 64)
#define FIRST_BUCKETS  16

typedef struct hmember {
    struct hmember *prev, *next;        /* join order */
    unsigned        worker;
    uint64_t        connid;
    char           *value;
    size_t          vlen;
} hmember;

typedef struct htopic {
    struct htopic *next;                /* hash chain */
    uint64_t       hash;
    uint64_t       mask[MASK_WORDS];    /* workers with a local subscriber */
    unsigned       nworkers;            /* bits set */
    hmember       *head, *tail;
    size_t         nmembers;
    gh_tlog        log;
    unsigned      *pending;             /* per worker: tasks posted, not yet run */
    unsigned       npending;            /* their sum */
    size_t        *subs;                /* per worker: its subscribers, stored by
                                           that worker (atomic) while its bit is set
                                           (count_at), read under the lock */
    uint64_t       messages;            /* published while someone subscribed */
    size_t         nslen, keylen;       /* key: ns, NUL, name */
    char           key[];
} htopic;

typedef struct stripe {
    pthread_mutex_t mu;
    htopic        **buckets;
    size_t          nbuckets, n;
} stripe;

/* What a worker's topics and topic state hand the hub as their bus ctx. */
typedef struct hctx {
    gh_hub  *hub;
    unsigned worker;
} hctx;

struct gh_hub {
    gh_loop **loops;
    unsigned  n;
    hctx     *ctx;
    size_t   *backlog;                  /* per worker: bytes posted, not delivered (atomic) */
    bool     *congested;                /* per worker: over the limit since (atomic) */
    size_t    high;                     /* the limit (atomic: a reload sets it) */
    stripe    s[STRIPES];
};

/* A message for workers: delivered with gh_topics_deliver_ex() by each;
 * the publishing worker applies upto and skip (the others deliver to every
 * subscriber they have). */
typedef struct hmsg {
    gh_hub  *hub;
    unsigned refs;                      /* atomic: workers yet to deliver it */
    int      opcode;
    unsigned origin;
    uint64_t upto, skip;
    size_t   nslen, name_len, len;
    size_t   cost;                      /* its bytes, counted in each worker's backlog */
    uint8_t *data;                      /* into buf, after the key */
    char     buf[];                     /* ns, NUL, name, then the payload */
} hmsg;

/* A state answer for one worker: the members' values and the log, copied. */
typedef struct hanswer {
    gh_hub          *hub;
    char            *key;               /* into buf: ns, NUL, name */
    size_t           nslen, keylen;
    uint64_t         reqid;
    gh_plugin_bytes *members, *log;
    size_t           nmembers, nlog;
    char             buf[];
} hanswer;

/* ---- the table ------------------------------------------------------------- */

static stripe *stripe_of(gh_hub *h, uint64_t hash)
{
    return &h->s[(hash >> 32) % STRIPES];
}

static htopic *find(const stripe *st, const char *ns, size_t nslen, const char *name,
                    size_t len, uint64_t hash)
{
    size_t keylen = nslen + 1 + len;

    if (st->nbuckets == 0)
        return NULL;
    for (htopic *t = st->buckets[hash & (st->nbuckets - 1)]; t != NULL; t = t->next)
        if (t->hash == hash && t->keylen == keylen && memcmp(t->key, ns, nslen) == 0 &&
            t->key[nslen] == '\0' && memcmp(t->key + nslen + 1, name, len) == 0)
            return t;
    return NULL;
}

static void grow(stripe *st)
{
    size_t n = st->nbuckets ? st->nbuckets * 2 : FIRST_BUCKETS;
    htopic **b = calloc(n, sizeof(*b));

    if (b == NULL)
        return;                 /* longer chains; still correct */
    for (size_t i = 0; i < st->nbuckets; i++) {
        for (htopic *t = st->buckets[i], *next; t != NULL; t = next) {
            next = t->next;
            t->next = b[t->hash & (n - 1)];
            b[t->hash & (n - 1)] = t;
        }
    }
    free(st->buckets);
    st->buckets = b;
    st->nbuckets = n;
}

static htopic *add(stripe *st, unsigned nworkers, const char *ns, size_t nslen,
                   const char *name, size_t len, uint64_t hash)
{
    size_t keylen = nslen + 1 + len;
    htopic *t;

    if ((st->n >= st->nbuckets) && (grow(st), st->nbuckets == 0))
        return NULL;
    if ((t = calloc(1, sizeof(*t) + keylen)) == NULL)
        return NULL;
    if ((t->pending = calloc(nworkers, sizeof(*t->pending))) == NULL ||
        (t->subs = calloc(nworkers, sizeof(*t->subs))) == NULL) {
        free(t->pending);
        free(t);
        return NULL;
    }
    t->hash = hash;
    t->nslen = nslen;
    t->keylen = keylen;
    memcpy(t->key, ns, nslen);
    memcpy(t->key + nslen + 1, name, len);
    t->next = st->buckets[hash & (st->nbuckets - 1)];
    st->buckets[hash & (st->nbuckets - 1)] = t;
    st->n++;
    return t;
}

/* Frees t when nothing keeps it: no worker subscribes, no member, no
 * task of it waits in a mailbox. */
static void maybe_free(stripe *st, htopic *t)
{
    htopic **pp;

    if (t->nworkers > 0 || t->nmembers > 0 || t->npending > 0)
        return;
    for (pp = &st->buckets[t->hash & (st->nbuckets - 1)]; *pp != t; pp = &(*pp)->next)
        ;
    *pp = t->next;
    st->n--;
    gh_tlog_clear(&t->log);
    free(t->pending);
    free(t->subs);
    free(t);
}

/* ---- to the workers ------------------------------------------------------------ */

static void msg_release(hmsg *m)
{
    if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(m);
}

static stripe *lookup_key(gh_hub *h, const char *key, size_t nslen, size_t keylen,
                          htopic **out);

/* A task of topic key has run on worker: one less pending there. */
static void settle(gh_hub *h, const char *key, size_t nslen, size_t keylen, unsigned worker)
{
    htopic *t;
    stripe *st = lookup_key(h, key, nslen, keylen, &t);

    if (t != NULL && t->pending[worker] > 0) {
        t->pending[worker]--;
        t->npending--;
        maybe_free(st, t);
    }
    pthread_mutex_unlock(&st->mu);
}

static void task_resume_publishers(gh_loop *loop, void *arg)
{
    (void)arg;
    if (loop->publishers_resume != NULL)
        loop->publishers_resume(loop);
}

/* Worker w delivered cost bytes: down to a quarter of the limit after being
 * over it,
 * every worker reads its paused publishers again. */
static void backlog_down(gh_hub *h, unsigned w, size_t cost)
{
    bool was = true;

    if (__atomic_sub_fetch(&h->backlog[w], cost, __ATOMIC_ACQ_REL) >
            __atomic_load_n(&h->high, __ATOMIC_RELAXED) / 4 ||
        !__atomic_load_n(&h->congested[w], __ATOMIC_ACQUIRE) ||
        !__atomic_compare_exchange_n(&h->congested[w], &was, false, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return;
    for (unsigned k = 0; k < h->n; k++)
        if (gh_loop_post(h->loops[k], task_resume_publishers, NULL) != GH_OK)
            GH_LOG(GH_LOG_ERROR, "hub: out of memory: worker %u's paused publishers wait "
                   "for the next message", k);
}

static void task_deliver(gh_loop *loop, void *arg)
{
    hmsg *m = arg;
    gh_hub *h = m->hub;
    bool mine = loop->id == m->origin;

    if (loop->topics != NULL)
        (void)gh_topics_deliver_ex(loop->topics, m->buf, m->buf + m->nslen + 1, m->name_len,
                                   m->opcode, m->data, m->len, mine ? m->upto : UINT64_MAX,
                                   mine ? m->skip : 0);
    settle(h, m->buf, m->nslen, m->nslen + 1 + m->name_len, loop->id);
    backlog_down(h, loop->id, m->cost);
    msg_release(m);
}

/* Posts fn(arg) to worker w for topic t, counted pending. Under t's lock. */
static int post(gh_hub *h, htopic *t, unsigned w, gh_loop_task_fn fn, void *arg)
{
    if (gh_loop_post(h->loops[w], fn, arg) != GH_OK)
        return GH_ENOMEM;
    t->pending[w]++;
    t->npending++;
    return GH_OK;
}

/* Whether worker w may deliver a message of t itself, now, instead of
 * through its mailbox: it subscribes, and nothing of t waits for it there
 * (a message sequenced before, or a join's state answer). Under t's lock.
 * Its own publishes then reach its subscribers before anything it sends
 * after them, as with one worker. */
static bool here_now(const htopic *t, unsigned w)
{
    return (t->mask[w / 64] >> (w % 64) & 1) && t->pending[w] == 0;
}

/* Posts a copy of data to every worker subscribing to t but the one
 * delivering it itself (except: the origin when here_now). Under t's
 * lock. */
static int broadcast(gh_hub *h, htopic *t, int opcode, const void *data, size_t len,
                     unsigned origin, uint64_t upto, uint64_t skip, unsigned except)
{
    size_t name_len = t->keylen - t->nslen - 1;
    unsigned n = t->nworkers - (except < h->n && (t->mask[except / 64] >> (except % 64) & 1));
    hmsg *m;
    unsigned posted = 0;

    if (n == 0)
        return GH_OK;
    if (len > SIZE_MAX - sizeof(*m) - t->keylen || (m = malloc(sizeof(*m) + t->keylen + len)) == NULL)
        return GH_ENOMEM;
    m->hub = h;
    m->refs = n;
    m->opcode = opcode;
    m->origin = origin;
    m->upto = upto;
    m->skip = skip;
    m->nslen = t->nslen;
    m->name_len = name_len;
    m->len = len;
    m->cost = sizeof(*m) + t->keylen + len;
    memcpy(m->buf, t->key, t->keylen);
    m->data = (uint8_t *)m->buf + t->keylen;
    if (len > 0)
        memcpy(m->data, data, len);
    for (unsigned w = 0; w < h->n; w++) {
        if (w == except || !(t->mask[w / 64] >> (w % 64) & 1))
            continue;
        if (post(h, t, w, task_deliver, m) == GH_OK) {
            posted++;
            /* the origin is this thread: its loop's flag is ours to set */
            if (__atomic_add_fetch(&h->backlog[w], m->cost, __ATOMIC_ACQ_REL) >
                __atomic_load_n(&h->high, __ATOMIC_RELAXED)) {
                __atomic_store_n(&h->congested[w], true, __ATOMIC_RELEASE);
                if (origin < h->n)
                    h->loops[origin]->hub_congested = true;
            }
        } else {
            GH_LOG(GH_LOG_ERROR, "hub: out of memory: a message to topic %s is lost on "
                   "worker %u", t->key + t->nslen + 1, w);
            msg_release(m);
        }
    }
    return posted > 0 ? GH_OK : GH_ENOMEM;
}

static void task_answer(gh_loop *loop, void *arg)
{
    hanswer *a = arg;
    gh_plugin_topic_state st = {
        .whole = true, .members = a->members, .nmembers = a->nmembers,
        .log = a->log, .nlog = a->nlog,
    };

    /* settled first: what the callback publishes goes out at once, in
     * order with what it sends (the hold is released before it runs) */
    settle(a->hub, a->key, a->nslen, a->keylen, loop->id);
    if (loop->tstate != NULL)
        gh_tstate_answer(loop->tstate, a->reqid, &st);
    free(a);
}

/* t's state copied into one block for worker. Under t's lock. Counted
 * pending until it has run: the worker's publishes to t wait behind it
 * (a joiner's subscription is held until then). */
static int answer(gh_hub *h, htopic *t, unsigned worker, uint64_t reqid)
{
    size_t nm = t->nmembers, nl = t->log.count, bytes = t->keylen;
    hanswer *a;
    gh_plugin_bytes *v;
    char *p;

    for (const hmember *m = t->head; m != NULL; m = m->next)
        bytes += m->vlen;
    for (size_t i = 0; i < nl; i++) {
        size_t len;
        (void)gh_tlog_at(&t->log, i, &len);
        bytes += len;
    }
    if ((a = malloc(sizeof(*a) + (nm + nl) * sizeof(gh_plugin_bytes) + bytes)) == NULL)
        return GH_ENOMEM;
    a->hub = h;
    a->nslen = t->nslen;
    a->keylen = t->keylen;
    a->reqid = reqid;
    a->nmembers = nm;
    a->nlog = nl;
    v = (gh_plugin_bytes *)(void *)a->buf;
    a->members = nm > 0 ? v : NULL;
    a->log = nl > 0 ? v + nm : NULL;
    p = (char *)(v + nm + nl);
    a->key = p;
    memcpy(p, t->key, t->keylen);
    p += t->keylen;
    {
        size_t i = 0;
        for (const hmember *m = t->head; m != NULL; m = m->next, i++) {
            memcpy(p, m->value, m->vlen);
            v[i] = (gh_plugin_bytes){ p, m->vlen };
            p += m->vlen;
        }
        for (size_t k = 0; k < nl; k++, i++) {
            size_t len;
            const char *d = gh_tlog_at(&t->log, k, &len);
            memcpy(p, d, len);
            v[i] = (gh_plugin_bytes){ p, len };
            p += len;
        }
    }
    if (post(h, t, worker, task_answer, a) != GH_OK) {
        free(a);
        return GH_ENOMEM;
    }
    return GH_OK;
}

/* ---- the buses' functions ----------------------------------------------------------- */

/* Locks the stripe of (ns, name) and finds (or with create, adds) its
 * topic. Returns the stripe, locked, whatever *out is. */
static stripe *lookup(gh_hub *h, const char *ns, const char *name, size_t len, bool create,
                      htopic **out)
{
    size_t nslen = strlen(ns);
    uint64_t hash = gh_topics_key_hash(ns, nslen, name, len);
    stripe *st = stripe_of(h, hash);

    pthread_mutex_lock(&st->mu);
    *out = find(st, ns, nslen, name, len, hash);
    if (*out == NULL && create)
        *out = add(st, h->n, ns, nslen, name, len, hash);
    return st;
}

static stripe *lookup_key(gh_hub *h, const char *key, size_t nslen, size_t keylen,
                          htopic **out)
{
    const char *name = key + nslen + 1;
    size_t len = keylen - nslen - 1;
    uint64_t hash = gh_topics_key_hash(key, nslen, name, len);
    stripe *st = stripe_of(h, hash);

    pthread_mutex_lock(&st->mu);
    *out = find(st, key, nslen, name, len, hash);
    return st;
}

static int hub_publish(void *ctx, const char *ns, const char *name, size_t name_len,
                       int opcode, const void *data, size_t len)
{
    hctx *c = ctx;
    gh_loop *loop = c->hub->loops[c->worker];
    uint64_t upto = gh_topics_serial(loop->topics);
    htopic *t;
    stripe *st = lookup(c->hub, ns, name, name_len, false, &t);
    bool here = t != NULL && here_now(t, c->worker);
    int rc = t != NULL ? broadcast(c->hub, t, opcode, data, len, c->worker, upto, 0,
                                   here ? c->worker : UINT_MAX) : GH_OK;

    if (t != NULL && t->nworkers > 0)
        t->messages++;

    pthread_mutex_unlock(&st->mu);
    /* sequenced under the lock; delivered here before this call returns,
     * so before anything the worker's next task or read makes */
    if (here)
        (void)gh_topics_deliver(loop->topics, ns, name, name_len, opcode, data, len);
    return rc;
}

static void hub_watch(void *ctx, const char *ns, const char *name, size_t name_len, int on)
{
    hctx *c = ctx;
    unsigned w = c->worker;
    htopic *t;
    stripe *st = lookup(c->hub, ns, name, name_len, on != 0, &t);

    if (t == NULL) {
        if (on)
            GH_LOG(GH_LOG_ERROR, "hub: out of memory: topic %.*s gets no message from other "
                   "workers on worker %u", (int)(name_len > 200 ? 200 : name_len), name, w);
        pthread_mutex_unlock(&st->mu);
        return;
    }
    if (on && !(t->mask[w / 64] >> (w % 64) & 1)) {
        t->mask[w / 64] |= (uint64_t)1 << (w % 64);
        t->nworkers++;
    } else if (!on && (t->mask[w / 64] >> (w % 64) & 1)) {
        t->mask[w / 64] &= ~((uint64_t)1 << (w % 64));
        t->nworkers--;
        __atomic_store_n(&t->subs[w], 0, __ATOMIC_RELAXED);
        maybe_free(st, t);
    }
    pthread_mutex_unlock(&st->mu);
}

/* Where worker c keeps its count of the topic's subscribers: valid while
 * its bit is set (its watch(on = 1) came first and nothing frees the
 * topic before its watch(on = 0)). */
static size_t *hub_count_at(void *ctx, const char *ns, const char *name, size_t name_len)
{
    hctx *c = ctx;
    htopic *t;
    stripe *st = lookup(c->hub, ns, name, name_len, false, &t);
    size_t *at = t != NULL && (t->mask[c->worker / 64] >> (c->worker % 64) & 1)
                 ? &t->subs[c->worker] : NULL;

    pthread_mutex_unlock(&st->mu);
    return at;
}

static int hub_member(void *ctx, const char *ns, const char *name, size_t len, uint64_t connid,
                      const char *value, size_t vlen, const char *farewell, size_t flen,
                      const char *announce, size_t alen, uint64_t skip, bool last_local)
{
    hctx *c = ctx;
    gh_loop *loop = c->hub->loops[c->worker];
    uint64_t upto = gh_topics_serial(loop->topics);
    hmember *m = NULL;
    htopic *t;
    stripe *st = lookup(c->hub, ns, name, len, value != NULL, &t);
    bool here;
    int rc = GH_OK;

    (void)farewell;             /* the worker publishes it when the member goes */
    (void)flen;
    (void)last_local;
    if (t == NULL) {
        pthread_mutex_unlock(&st->mu);
        return value != NULL ? GH_ENOMEM : GH_OK;
    }
    for (m = t->head; m != NULL; m = m->next)
        if (m->worker == c->worker && m->connid == connid)
            break;
    if (value != NULL) {
        char *v = malloc(vlen);

        if (v == NULL || (m == NULL && (m = calloc(1, sizeof(*m))) == NULL)) {
            free(v);
            maybe_free(st, t);
            pthread_mutex_unlock(&st->mu);
            return GH_ENOMEM;
        }
        memcpy(v, value, vlen);
        if (m->value == NULL) {
            m->worker = c->worker;
            m->connid = connid;
            m->prev = t->tail;
            if (t->tail != NULL)
                t->tail->next = m;
            else
                t->head = m;
            t->tail = m;
            t->nmembers++;
        }
        free(m->value);
        m->value = v;
        m->vlen = vlen;
    } else if (m != NULL) {
        if (m->prev != NULL)
            m->prev->next = m->next;
        else
            t->head = m->next;
        if (m->next != NULL)
            m->next->prev = m->prev;
        else
            t->tail = m->prev;
        t->nmembers--;
        free(m->value);
        free(m);
        if (t->nmembers == 0)
            gh_tlog_clear(&t->log);
    }
    here = announce != NULL && here_now(t, c->worker);
    if (announce != NULL && t->nworkers > 0)
        t->messages++;
    if (announce != NULL)
        rc = broadcast(c->hub, t, GH_WS_OP_TEXT, announce, alen, c->worker, upto, skip,
                       here ? c->worker : UINT_MAX);
    maybe_free(st, t);
    pthread_mutex_unlock(&st->mu);
    if (here)
        (void)gh_topics_deliver_ex(loop->topics, ns, name, len, GH_WS_OP_TEXT, announce, alen,
                                   UINT64_MAX, skip);
    /* the member is set either way; an announcement that could not be
     * posted is logged in broadcast() */
    (void)rc;
    return GH_OK;
}

static int hub_log_publish(void *ctx, const char *ns, const char *name, size_t len,
                           const char *data, size_t dlen, uint32_t keep)
{
    hctx *c = ctx;
    gh_loop *loop = c->hub->loops[c->worker];
    uint64_t upto = gh_topics_serial(loop->topics);
    htopic *t;
    stripe *st = lookup(c->hub, ns, name, len, false, &t);
    bool here = t != NULL && here_now(t, c->worker);

    if (t != NULL) {
        if (t->nmembers > 0)
            gh_tlog_append(&t->log, data, dlen, keep);
        if (t->nworkers > 0)
            t->messages++;
        (void)broadcast(c->hub, t, GH_WS_OP_TEXT, data, dlen, c->worker, upto, 0,
                        here ? c->worker : UINT_MAX);
    }
    pthread_mutex_unlock(&st->mu);
    if (here)
        (void)gh_topics_deliver(loop->topics, ns, name, len, GH_WS_OP_TEXT, data, dlen);
    return GH_OK;
}

static int hub_fetch(void *ctx, const char *ns, const char *name, size_t len, uint64_t reqid,
                     bool after_subscribe)
{
    hctx *c = ctx;
    htopic *t;
    stripe *st = lookup(c->hub, ns, name, len, true, &t);
    int rc;

    if (t == NULL) {
        pthread_mutex_unlock(&st->mu);
        return GH_ENOMEM;       /* answered locally */
    }
    /* a join's subscription has set this worker's bit already (the watch
     * callback runs inside the subscribe): the answer follows, in this
     * worker's mailbox, every message the state includes */
    (void)after_subscribe;
    rc = answer(c->hub, t, c->worker, reqid);
    maybe_free(st, t);
    pthread_mutex_unlock(&st->mu);
    return rc;          /* on an error the request is answered locally */
}

/* ---- for the status page ---------------------------------------------------------------- */

void gh_hub_each(gh_hub *h, void (*fn)(void *arg, const gh_hub_topic *t), void *arg)
{
    for (size_t i = 0; i < STRIPES; i++) {
        stripe *st = &h->s[i];

        pthread_mutex_lock(&st->mu);
        for (size_t b = 0; b < st->nbuckets; b++) {
            for (const htopic *t = st->buckets[b]; t != NULL; t = t->next) {
                gh_hub_topic info;

                if (t->nworkers == 0)
                    continue;   /* members, or tasks in flight, but no subscriber */
                info = (gh_hub_topic){
                    .ns = t->key, .name = t->key + t->nslen + 1,
                    .len = t->keylen - t->nslen - 1, .members = t->nmembers,
                    .messages = t->messages,
                };
                for (unsigned w = 0; w < h->n; w++)
                    if (t->mask[w / 64] >> (w % 64) & 1)
                        info.subscribers += __atomic_load_n(&t->subs[w], __ATOMIC_RELAXED);
                fn(arg, &info);
            }
        }
        pthread_mutex_unlock(&st->mu);
    }
}

/* ---- lifetime ------------------------------------------------------------------------- */

int gh_hub_new(gh_loop **loops, unsigned n, gh_hub **out)
{
    gh_hub *h = calloc(1, sizeof(*h));

    if (h == NULL || (h->ctx = calloc(n, sizeof(*h->ctx))) == NULL ||
        (h->backlog = calloc(n, sizeof(*h->backlog))) == NULL ||
        (h->congested = calloc(n, sizeof(*h->congested))) == NULL) {
        if (h != NULL) {
            free(h->ctx);
            free(h->backlog);
        }
        free(h);
        return GH_ENOMEM;
    }
    h->loops = loops;
    h->n = n;
    h->high = 32u << 20;
    for (size_t i = 0; i < STRIPES; i++)
        pthread_mutex_init(&h->s[i].mu, NULL);
    for (unsigned w = 0; w < n; w++) {
        gh_topic_bus tb = { .ctx = &h->ctx[w], .publish = hub_publish, .watch = hub_watch,
                            .count_at = hub_count_at };
        gh_tstate_bus sb = { .ctx = &h->ctx[w], .member = hub_member,
                             .log_publish = hub_log_publish, .fetch = hub_fetch,
                             .in_process = true };

        h->ctx[w] = (hctx){ h, w };
        gh_topics_set_bus(loops[w]->topics, &tb);
        gh_tstate_set_bus(loops[w]->tstate, &sb);
    }
    *out = h;
    return GH_OK;
}

void gh_hub_set_backlog(gh_hub *h, uint64_t bytes)
{
    __atomic_store_n(&h->high, bytes > SIZE_MAX ? SIZE_MAX : (size_t)bytes, __ATOMIC_RELAXED);
}

void gh_hub_free(gh_hub *h)
{
    if (h == NULL)
        return;
    for (unsigned w = 0; w < h->n; w++) {
        if (h->loops[w]->topics != NULL)
            gh_topics_set_bus(h->loops[w]->topics, NULL);
        if (h->loops[w]->tstate != NULL)
            gh_tstate_set_bus(h->loops[w]->tstate, NULL);
    }
    for (size_t i = 0; i < STRIPES; i++) {
        stripe *st = &h->s[i];

        for (size_t b = 0; b < st->nbuckets; b++) {
            for (htopic *t = st->buckets[b], *next; t != NULL; t = next) {
                next = t->next;
                for (hmember *m = t->head, *mn; m != NULL; m = mn) {
                    mn = m->next;
                    free(m->value);
                    free(m);
                }
                gh_tlog_clear(&t->log);
                free(t->pending);
                free(t->subs);
                free(t);
            }
        }
        free(st->buckets);
        pthread_mutex_destroy(&st->mu);
    }
    free(h->ctx);
    free(h->backlog);
    free(h->congested);
    free(h);
}
