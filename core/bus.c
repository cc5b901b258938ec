/* bus.c: topics across gatehouse instances through Redis pub/sub.
 *
 * Why this shape: behind a load balancer the members of one room land on
 * different instances, and the proven way to join them is an existing
 * pub/sub engine (Socket.IO's Redis adapter, Centrifugo's Redis engine),
 * not a cluster protocol of our own. A publish goes to Redis once; every
 * instance, this one included, delivers what comes back on its SUBSCRIBE
 * connection with the host's frame-once fan-out. Going through Redis for
 * our own members too gives every member of a room, on every instance, the
 * same order of messages (Redis's), and exactly one copy.
 *
 * Two hiredis async connections on the server's event loop (no threads):
 * one for PUBLISH (and AUTH/SELECT), one in SUBSCRIBE mode. They are one
 * "link": it is up when both have answered AUTH/SELECT/PING, and when
 * either fails both are closed and reconnected together with backoff
 * (100 ms doubling to 5 s, ±20 % jitter), which keeps the states few.
 *
 * Exactly once: while the link is up a publish is only PUBLISHed. A PUBLISH
 * on one connection can overtake the SUBSCRIBE just sent on the other, so a
 * topic with local subscribers whose SUBSCRIBE Redis has not confirmed yet
 * queues its publishes (bounded) and sends them when the confirmation
 * arrives. While the link is down, publish delivers locally only and counts
 * the message as not broadcast; messages in flight when a connection drops
 * are lost, as with any Redis pub/sub.
 *
 * A local publish reaches the subscribers there are at that moment, and a
 * plugin may rely on it (chat publishes "joined", then subscribes the
 * joiner). Through Redis the message comes back later, so each envelope
 * carries the publishing bus's random id and gh_topics_serial() at publish
 * time, and the publishing instance delivers it only to subscriptions at
 * least that old. Other instances deliver to everyone subscribed.
 *
 * What it deliberately does not do: persist or replay messages (pub/sub is
 * fire-and-forget), resolve host names asynchronously (hiredis calls
 * getaddrinfo(), which blocks: use an address or a name in /etc/hosts), or
 * speak TLS to Redis. */
#include "bus.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "err.h"
#include "log.h"
#include "topic.h"
#include "utf8.h"
#include "wsframe.h"
#include "units.h"

/* ---- codec ----------------------------------------------------------------- */

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

int gh_bus_envelope_header(uint8_t hdr[GH_BUS_HDR_LEN], const gh_bus_msg *m)
{
    if (m->opcode != GH_WS_OP_TEXT && m->opcode != GH_WS_OP_BINARY)
        return GH_EINVAL;
    hdr[0] = 'g';
    hdr[1] = 'h';
    hdr[2] = GH_BUS_VERSION;
    hdr[3] = m->opcode == GH_WS_OP_TEXT ? 't' : 'b';
    put64(hdr + 4, m->origin);
    put64(hdr + 12, m->upto);
    return GH_BUS_HDR_LEN;
}

int gh_bus_envelope_decode(const void *buf, size_t len, gh_bus_msg *out)
{
    const uint8_t *p = buf;

    if (p == NULL || len < GH_BUS_HDR_LEN || p[0] != 'g' || p[1] != 'h' ||
        p[2] != GH_BUS_VERSION || (p[3] != 't' && p[3] != 'b'))
        return GH_EPROTO;
    out->opcode = p[3] == 't' ? GH_WS_OP_TEXT : GH_WS_OP_BINARY;
    out->origin = get64(p + 4);
    out->upto = get64(p + 12);
    out->data = p + GH_BUS_HDR_LEN;
    out->len = len - GH_BUS_HDR_LEN;
    return GH_OK;
}

long gh_bus_channel(char *out, size_t cap, const char *prefix, size_t plen,
                    const char *ns, const char *name, size_t len)
{
    size_t nslen;

    if (ns == NULL || name == NULL || (plen > 0 && prefix == NULL) || len == 0 ||
        len > GH_TOPIC_MAX_NAME)
        return GH_EINVAL;
    nslen = strnlen(ns, GH_TOPIC_MAX_NS + 1);
    /* the first ':' after the prefix ends the namespace */
    if (nslen == 0 || nslen > GH_TOPIC_MAX_NS || memchr(ns, ':', nslen) != NULL)
        return GH_EINVAL;
    if (plen > (size_t)LONG_MAX - nslen - 1 - len || cap < plen + nslen + 1 + len)
        return GH_E2BIG;
    if (plen > 0)
        memcpy(out, prefix, plen);
    memcpy(out + plen, ns, nslen);
    out[plen + nslen] = ':';
    memcpy(out + plen + nslen + 1, name, len);
    return (long)(plen + nslen + 1 + len);
}

/* Decimal digits of n. */
static size_t digits(size_t n)
{
    size_t d = 1;

    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

/* "*3\r\n$7\r\nPUBLISH\r\n" "$N\r\n" channel "\r\n" "$M\r\n" envelope "\r\n" */
#define PUBLISH_HEAD "*3\r\n$7\r\nPUBLISH\r\n"

size_t gh_bus_publish_size(size_t chlen, size_t dlen)
{
    size_t fixed = sizeof(PUBLISH_HEAD) - 1 + 2 * 3 + 2 * 2;   /* "$" "\r\n" x2, "\r\n" x2 */
    size_t elen;

    if (dlen > SIZE_MAX / 2 || chlen > SIZE_MAX / 4)
        return 0;
    elen = dlen + GH_BUS_HDR_LEN;
    return fixed + digits(chlen) + chlen + digits(elen) + elen;
}

long gh_bus_publish_encode(char *out, size_t cap, const char *channel, size_t chlen,
                           const gh_bus_msg *m)
{
    size_t dlen = m->len, need = gh_bus_publish_size(chlen, dlen), n = 0;
    uint8_t hdr[GH_BUS_HDR_LEN];
    int w;

    if (gh_bus_envelope_header(hdr, m) < 0 || (dlen > 0 && m->data == NULL))
        return GH_EINVAL;
    if (need == 0 || need > (size_t)LONG_MAX || cap < need)
        return GH_E2BIG;
    memcpy(out, PUBLISH_HEAD, sizeof(PUBLISH_HEAD) - 1);
    n = sizeof(PUBLISH_HEAD) - 1;
    w = snprintf(out + n, cap - n, "$%zu\r\n", chlen);
    n += (size_t)w;
    memcpy(out + n, channel, chlen);
    n += chlen;
    w = snprintf(out + n, cap - n, "\r\n$%zu\r\n", dlen + GH_BUS_HDR_LEN);
    n += (size_t)w;
    memcpy(out + n, hdr, GH_BUS_HDR_LEN);
    n += GH_BUS_HDR_LEN;
    if (dlen > 0)
        memcpy(out + n, m->data, dlen);
    n += dlen;
    out[n++] = '\r';
    out[n++] = '\n';
    return (long)n;
}

/* Digits of s[0..len) as a number up to max; -1 when not. */
static long parse_num(const char *s, size_t len, long max)
{
    long v = 0;

    if (len == 0 || len > 6)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= max ? v : -1;
}

int gh_bus_url_parse(const char *url, gh_bus_url *out)
{
    const char *p, *at, *h, *he, *port, *slash;
    long v;

    memset(out, 0, sizeof(*out));
    if (url == NULL || strncmp(url, "redis://", 8) != 0)
        return GH_EINVAL;
    p = url + 8;
    /* /DB is digits only, so the last @ ends the password */
    if ((at = strrchr(p, '@')) != NULL) {
        if (p[0] != ':' || at == p + 1)
            return GH_EINVAL;
        out->password = p + 1;
        out->password_len = (size_t)(at - p - 1);
        p = at + 1;
    }
    if (*p == '[') {
        h = p + 1;
        if ((he = strchr(h, ']')) == NULL || he == h)
            return GH_EINVAL;
        port = he + 1;
    } else {
        h = p;
        he = h + strcspn(h, ":/");
        if (he == h)
            return GH_EINVAL;
        port = he;
    }
    if (*port != ':')
        return GH_EINVAL;
    port++;
    slash = port + strcspn(port, "/");
    if ((v = parse_num(port, (size_t)(slash - port), 65535)) <= 0)
        return GH_EINVAL;
    out->port = (uint16_t)v;
    if (*slash == '/') {
        if ((v = parse_num(slash + 1, strlen(slash + 1), 15)) < 0)
            return GH_EINVAL;
        out->db = (int)v;
        out->has_db = true;
    }
    out->host = h;
    out->host_len = (size_t)(he - h);
    return GH_OK;
}

/* ---- glue ------------------------------------------------------------------ */

#define BACKOFF_MIN_MS     100
#define BACKOFF_MAX_MS     5000
#define CONNECT_TIMEOUT_MS 3000
#define MAX_QUEUED         (4u * 1024 * 1024)     /* bytes waiting for SUBSCRIBE confirmations */
#define MAX_OUTPUT         (16u * 1024 * 1024)    /* PUBLISH bytes not yet written to Redis */
#define SCRATCH_KEEP       (256u * 1024)          /* a bigger scratch buffer is freed after use */

enum { LINK_DOWN, LINK_CONNECTING, LINK_UP };
enum { CMD_AUTH = 1, CMD_SELECT, CMD_PING };

typedef struct qmsg {
    struct qmsg *next;
    int          opcode;
    uint64_t     upto;          /* gh_topics_serial() at publish time */
    size_t       len;
    uint8_t      data[];
} qmsg;

/* A channel some local subscriber wants, or wanted until acks settle. */
typedef struct chan {
    struct chan *next;          /* hash chain */
    uint64_t     hash;
    bool         want;          /* the topic has a local subscriber */
    unsigned     sub_sent;      /* SUBSCRIBEs sent on this link */
    unsigned     sub_acked;     /* their confirmations received */
    qmsg        *q, **qtail;    /* publishes waiting for the confirmation */
    char         ns[GH_TOPIC_MAX_NS + 1];
    const char  *name;          /* into ch */
    size_t       name_len;
    size_t       chlen;
    char         ch[];          /* the channel */
} chan;

struct gh_bus {
    gh_server         *srv;
    uint64_t           origin;      /* this bus, in every envelope it sends */
    char              *host;
    int                port;
    int                db;          /* -1: no SELECT */
    char              *password;    /* NULL: no AUTH */
    size_t             password_len;
    char              *prefix;
    size_t             plen;
    char              *where;       /* "HOST:PORT" for logs */
    redisAsyncContext *pub, *sub;
    int                state;
    bool               pub_ready, sub_ready;
    bool               freeing;
    bool               installed;   /* the topics' bus */
    bool               was_up;      /* has been up since the last loss was logged */
    struct event      *timer;       /* reconnect, or connect timeout */
    unsigned           attempts;    /* failed since the last time up */
    uint32_t           rng;
    chan             **buckets;
    size_t             nbuckets, nchans;
    size_t             queued;      /* bytes in every chan's q */
    char              *chbuf;       /* one channel name */
    size_t             chcap;
    char              *scratch;     /* one PUBLISH command */
    size_t             scap;
    time_t             last_warn;
};

static void link_fail(gh_bus *b, const char *why);

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
    return h;
}

static chan *chan_find(const gh_bus *b, const char *ch, size_t chlen)
{
    uint64_t h = hash_bytes(ch, chlen);

    for (chan *c = b->buckets[h & (b->nbuckets - 1)]; c != NULL; c = c->next)
        if (c->hash == h && c->chlen == chlen && memcmp(c->ch, ch, chlen) == 0)
            return c;
    return NULL;
}

/* The channel of (ns, name) in b->chbuf; its length or a negative error. */
static long channel_of(gh_bus *b, const char *ns, const char *name, size_t len)
{
    return gh_bus_channel(b->chbuf, b->chcap, b->prefix, b->plen, ns, name, len);
}

static void grow_chans(gh_bus *b)
{
    size_t n = b->nbuckets * 2;
    chan **nb = calloc(n, sizeof(*nb));

    if (nb == NULL)
        return;                 /* longer chains; still correct */
    for (size_t i = 0; i < b->nbuckets; i++) {
        chan *c = b->buckets[i], *next;
        for (; c != NULL; c = next) {
            next = c->next;
            c->next = nb[c->hash & (n - 1)];
            nb[c->hash & (n - 1)] = c;
        }
    }
    free(b->buckets);
    b->buckets = nb;
    b->nbuckets = n;
}

static chan *chan_add(gh_bus *b, const char *ns, size_t chlen)
{
    size_t nslen = strlen(ns);
    chan *c = calloc(1, sizeof(*c) + chlen);

    if (c == NULL)
        return NULL;
    memcpy(c->ch, b->chbuf, chlen);
    c->chlen = chlen;
    c->hash = hash_bytes(c->ch, chlen);
    memcpy(c->ns, ns, nslen + 1);
    c->name = c->ch + b->plen + nslen + 1;
    c->name_len = chlen - b->plen - nslen - 1;
    c->qtail = &c->q;
    c->next = b->buckets[c->hash & (b->nbuckets - 1)];
    b->buckets[c->hash & (b->nbuckets - 1)] = c;
    if (++b->nchans > b->nbuckets)
        grow_chans(b);
    return c;
}

static void chan_remove(gh_bus *b, chan *c)
{
    chan **pp = &b->buckets[c->hash & (b->nbuckets - 1)];

    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    b->nchans--;
    free(c);
}

static bool chan_confirmed(const gh_bus *b, const chan *c)
{
    return b->state == LINK_UP && c->sub_sent > 0 && c->sub_acked == c->sub_sent;
}

static void warn_limited(gh_bus *b, const char *what)
{
    time_t now = time(NULL);

    if (now - b->last_warn >= 10) {
        b->last_warn = now;
        GH_LOG(GH_LOG_WARN, "bus: %s", what);
    }
}

/* Delivers here only: the message will not come back from Redis. */
static int deliver_local(gh_bus *b, const char *ns, const char *name, size_t len,
                         int opcode, const void *data, size_t dlen)
{
    long n = gh_topics_deliver(b->srv->topics, ns, name, len, opcode, data, dlen);

    return n < 0 ? (int)n : GH_OK;
}

/* Sends one PUBLISH on channel ch (b->chbuf or a chan's). */
static int publish_now(gh_bus *b, const char *ch, size_t chlen, int opcode,
                       const void *data, size_t dlen, uint64_t upto)
{
    size_t need = gh_bus_publish_size(chlen, dlen);
    gh_bus_msg msg = { .opcode = opcode, .origin = b->origin, .upto = upto,
                       .data = data, .len = dlen };
    long n;
    int rc;

    if (b->pub == NULL)
        return GH_EAGAIN;
    if (need == 0)
        return GH_E2BIG;
    if (need > b->scap) {
        char *s = realloc(b->scratch, need);
        if (s == NULL)
            return GH_ENOMEM;
        b->scratch = s;
        b->scap = need;
    }
    n = gh_bus_publish_encode(b->scratch, b->scap, ch, chlen, &msg);
    if (n < 0)
        return (int)n;
    rc = redisAsyncFormattedCommand(b->pub, NULL, NULL, b->scratch, (size_t)n);
    if (b->scap > SCRATCH_KEEP) {
        free(b->scratch);
        b->scratch = NULL;
        b->scap = 0;
    }
    if (rc != REDIS_OK)
        return GH_ENOMEM;
    b->srv->stats.bus_published++;
    return GH_OK;
}

/* Sends c's queued publishes (link up) or drops them into local delivery
 * (link going down, or the bus being freed). */
static void chan_flush(gh_bus *b, chan *c, bool send)
{
    qmsg *m = c->q, *next;

    for (; m != NULL; m = next) {
        next = m->next;
        if (send && publish_now(b, c->ch, c->chlen, m->opcode, m->data, m->len, m->upto) == GH_OK) {
            /* sent: comes back through SUBSCRIBE */
        } else if (c->want) {
            (void)gh_topics_deliver_upto(b->srv->topics, c->ns, c->name, c->name_len,
                                         m->opcode, m->data, m->len, m->upto);
            b->srv->stats.bus_not_broadcast++;
        } else {
            b->srv->stats.bus_not_broadcast++;
        }
        b->queued -= m->len;
        free(m);
    }
    c->q = NULL;
    c->qtail = &c->q;
}

static void on_sub_reply(redisAsyncContext *ac, void *r, void *priv);

/* SUBSCRIBE (subscribe true) or UNSUBSCRIBE c's channel. A SUBSCRIBE that
 * cannot be queued fails the link (so it is retried with every other);
 * an UNSUBSCRIBE that cannot only leaves messages we drop. */
static void send_subscribe(gh_bus *b, chan *c, bool subscribe)
{
    const char *argv[2] = { subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE", c->ch };
    size_t argvlen[2] = { subscribe ? 9 : 11, c->chlen };

    if (b->sub == NULL)
        return;
    /* hiredis keeps the callback per channel: every message of the
     * channel and its (un)subscribe confirmations come to on_sub_reply */
    if (redisAsyncCommandArgv(b->sub, subscribe ? on_sub_reply : NULL, NULL, 2, argv,
                              argvlen) != REDIS_OK) {
        if (subscribe)
            link_fail(b, "cannot queue SUBSCRIBE");
        return;
    }
    if (subscribe)
        c->sub_sent++;
}

/* The topics' publish. */
static int bus_publish(void *ctx, const char *ns, const char *name, size_t len,
                       int opcode, const void *data, size_t dlen)
{
    gh_bus *b = ctx;
    long chlen;
    chan *c;
    qmsg *m;
    int rc;
    uint64_t upto = gh_topics_serial(b->srv->topics);

    if ((opcode != GH_WS_OP_TEXT && opcode != GH_WS_OP_BINARY) || (dlen > 0 && data == NULL))
        return GH_EINVAL;
    if ((chlen = channel_of(b, ns, name, len)) < 0)
        return (int)chlen;
    if (b->state != LINK_UP || b->pub == NULL ||
        sdslen(b->pub->c.obuf) > MAX_OUTPUT) {
        if (b->state == LINK_UP)
            warn_limited(b, "Redis is not reading fast enough; publishing locally only");
        b->srv->stats.bus_not_broadcast++;
        return deliver_local(b, ns, name, len, opcode, data, dlen);
    }
    c = chan_find(b, b->chbuf, (size_t)chlen);
    if (c != NULL && c->want && !chan_confirmed(b, c)) {
        /* Redis has not confirmed our SUBSCRIBE: a PUBLISH now could
         * overtake it and never come back to the members here */
        if (dlen > MAX_QUEUED - b->queued || (m = malloc(sizeof(*m) + dlen)) == NULL) {
            warn_limited(b, "too many messages wait for SUBSCRIBE confirmations; "
                            "publishing locally only");
            b->srv->stats.bus_not_broadcast++;
            return deliver_local(b, ns, name, len, opcode, data, dlen);
        }
        m->next = NULL;
        m->opcode = opcode;
        m->upto = upto;
        m->len = dlen;
        if (dlen > 0)
            memcpy(m->data, data, dlen);
        *c->qtail = m;
        c->qtail = &m->next;
        b->queued += dlen;
        return GH_OK;
    }
    if ((rc = publish_now(b, b->chbuf, (size_t)chlen, opcode, data, dlen, upto)) != GH_OK) {
        b->srv->stats.bus_not_broadcast++;
        return deliver_local(b, ns, name, len, opcode, data, dlen);
    }
    if (c == NULL && gh_topics_count(b->srv->topics, ns, name, len) > 0) {
        /* local members but no channel (out of memory when it was made):
         * it will not come back, so they get it directly */
        return deliver_local(b, ns, name, len, opcode, data, dlen);
    }
    return GH_OK;
}

/* The topics' watch: the first local subscriber came, or the last left. */
static void bus_watch(void *ctx, const char *ns, const char *name, size_t len, int on)
{
    gh_bus *b = ctx;
    long chlen = channel_of(b, ns, name, len);
    chan *c;

    if (chlen < 0)
        return;
    c = chan_find(b, b->chbuf, (size_t)chlen);
    if (on) {
        if (c == NULL && (c = chan_add(b, ns, (size_t)chlen)) == NULL) {
            GH_LOG(GH_LOG_ERROR, "bus: out of memory: topic %s:%.*s is local only", ns,
                   (int)len, name);
            return;
        }
        c->want = true;
        if (b->state == LINK_UP)
            send_subscribe(b, c, true);     /* on failure the link is down, c kept */
        return;
    }
    if (c == NULL)
        return;
    c->want = false;
    chan_flush(b, c, b->state == LINK_UP);     /* nobody here: the others only */
    if (b->state == LINK_UP)
        send_subscribe(b, c, false);
    if (b->state != LINK_UP || c->sub_acked == c->sub_sent)
        chan_remove(b, c);
    /* else freed when the outstanding confirmations arrive */
}

/* Every reply and message of the SUBSCRIBE connection. */
static void on_sub_reply(redisAsyncContext *ac, void *r, void *priv)
{
    gh_bus *b = ac->data;
    redisReply *reply = r, *kind, *chn, *payload;
    chan *c;
    gh_bus_msg m;

    (void)priv;
    if (reply == NULL || b == NULL || ac != b->sub || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements < 3)
        return;
    kind = reply->element[0];
    chn = reply->element[1];
    if (kind->type != REDIS_REPLY_STRING || chn->type != REDIS_REPLY_STRING)
        return;
    c = chan_find(b, chn->str, chn->len);
    if (c == NULL)
        return;
    if (strcmp(kind->str, "subscribe") == 0) {
        if (c->sub_acked < c->sub_sent)
            c->sub_acked++;
        if (c->sub_acked == c->sub_sent) {
            if (c->want)
                chan_flush(b, c, true);
            else
                chan_remove(b, c);
        }
        return;
    }
    if (strcmp(kind->str, "message") != 0 || !c->want)
        return;
    payload = reply->element[2];
    if (payload->type != REDIS_REPLY_STRING ||
        gh_bus_envelope_decode(payload->str, payload->len, &m) != GH_OK) {
        warn_limited(b, "dropped a message that is not a gatehouse envelope "
                        "(another program publishing under channel_prefix?)");
        return;
    }
    if (m.opcode == GH_WS_OP_TEXT) {
        gh_utf8 u;
        gh_utf8_init(&u);
        if (gh_utf8_feed(&u, m.data, m.len) != 0 || !gh_utf8_is_complete(&u)) {
            warn_limited(b, "dropped a text message that is not UTF-8");
            return;
        }
    }
    b->srv->stats.bus_received++;
    /* ours: to the subscribers there were when it was published, as a
     * local publish would; another instance's: to everyone here */
    (void)gh_topics_deliver_upto(b->srv->topics, c->ns, c->name, c->name_len, m.opcode,
                                 m.data, m.len, m.origin == b->origin ? m.upto : UINT64_MAX);
}

static void link_up(gh_bus *b)
{
    size_t n = 0;

    b->state = LINK_UP;
    evtimer_del(b->timer);
    if (b->was_up)
        b->srv->stats.bus_reconnects++;
    for (size_t i = 0; i < b->nbuckets; i++) {
        for (chan *c = b->buckets[i]; c != NULL; c = c->next) {
            if (!c->want)
                continue;
            send_subscribe(b, c, true);
            if (b->state != LINK_UP)
                return;         /* send_subscribe failed the link */
            n++;
        }
    }
    GH_LOG(GH_LOG_INFO, "bus: connected to redis %s%s; subscribing to %zu channels",
           b->where, b->attempts > 0 ? " after retrying" : "", n);
    b->attempts = 0;
    b->was_up = true;
}

/* Replies to AUTH, SELECT and PING on either connection. */
static void on_setup_reply(redisAsyncContext *ac, void *r, void *priv)
{
    gh_bus *b = ac->data;
    redisReply *reply = r;
    int cmd = (int)(intptr_t)priv;
    char why[256];

    if (reply == NULL || b == NULL || (ac != b->pub && ac != b->sub) ||
        b->state != LINK_CONNECTING)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(why, sizeof(why), "%s refused: %.*s",
                 cmd == CMD_AUTH ? "AUTH" : cmd == CMD_SELECT ? "SELECT" : "PING",
                 (int)(reply->len < 200 ? reply->len : 200), reply->str);
        link_fail(b, why);
        return;
    }
    if (cmd != CMD_PING)
        return;
    if (ac == b->pub)
        b->pub_ready = true;
    else
        b->sub_ready = true;
    if (b->pub_ready && b->sub_ready)
        link_up(b);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    gh_bus *b = ac->data;
    char why[256];

    if (b == NULL || status == REDIS_OK || (ac != b->pub && ac != b->sub))
        return;
    /* hiredis frees ac after this returns */
    snprintf(why, sizeof(why), "connect: %s", ac->errstr[0] ? ac->errstr : "failed");
    if (ac == b->pub)
        b->pub = NULL;
    else
        b->sub = NULL;
    link_fail(b, why);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    gh_bus *b = ac->data;
    char why[256];

    if (b == NULL || (ac != b->pub && ac != b->sub))
        return;             /* one we closed ourselves */
    /* hiredis frees ac after this returns */
    snprintf(why, sizeof(why), "%s", status == REDIS_OK || ac->errstr[0] == '\0'
             ? "connection closed" : ac->errstr);
    if (ac == b->pub)
        b->pub = NULL;
    else
        b->sub = NULL;
    link_fail(b, why);
}

/* Opens one connection and queues AUTH / SELECT / PING on it. NULL with
 * why filled in on failure. */
static redisAsyncContext *open_one(gh_bus *b, char *why, size_t whylen)
{
    struct event_base *base = b->srv->base;
    redisAsyncContext *ac = redisAsyncConnect(b->host, b->port);
    const char *argv[2];
    size_t argvlen[2];

    if (ac == NULL) {
        snprintf(why, whylen, "connect: out of memory");
        return NULL;
    }
    if (ac->err) {
        snprintf(why, whylen, "connect: %s", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = b;
    if (redisLibeventAttach(ac, base) != REDIS_OK ||
        redisAsyncSetConnectCallback(ac, on_connect) != REDIS_OK ||
        redisAsyncSetDisconnectCallback(ac, on_disconnect) != REDIS_OK)
        goto fail;
    if (b->password != NULL) {
        argv[0] = "AUTH";
        argvlen[0] = 4;
        argv[1] = b->password;
        argvlen[1] = b->password_len;
        if (redisAsyncCommandArgv(ac, on_setup_reply, (void *)(intptr_t)CMD_AUTH, 2, argv,
                                  argvlen) != REDIS_OK)
            goto fail;
    }
    if (b->db > 0 && redisAsyncCommand(ac, on_setup_reply, (void *)(intptr_t)CMD_SELECT,
                                       "SELECT %d", b->db) != REDIS_OK)
        goto fail;
    if (redisAsyncCommand(ac, on_setup_reply, (void *)(intptr_t)CMD_PING, "PING") != REDIS_OK)
        goto fail;
    return ac;
fail:
    snprintf(why, whylen, "connect: cannot set up the connection");
    ac->data = NULL;            /* our callbacks ignore it from now on */
    redisAsyncFree(ac);
    return NULL;
}

static void close_one(redisAsyncContext **pac)
{
    redisAsyncContext *ac = *pac;

    if (ac == NULL)
        return;
    *pac = NULL;                /* its callbacks now see a stranger */
    redisAsyncFree(ac);         /* deferred by hiredis inside its own callback */
}

static void connect_start(gh_bus *b)
{
    char why[256];
    struct timeval tv = gh_units_timeval(CONNECT_TIMEOUT_MS);

    b->state = LINK_CONNECTING;
    b->pub_ready = b->sub_ready = false;
    GH_LOG(b->attempts == 0 ? GH_LOG_INFO : GH_LOG_DEBUG, "bus: connecting to redis %s",
           b->where);
    if ((b->pub = open_one(b, why, sizeof(why))) == NULL ||
        (b->sub = open_one(b, why, sizeof(why))) == NULL) {
        link_fail(b, why);
        return;
    }
    evtimer_add(b->timer, &tv);
}

static uint32_t next_rand(gh_bus *b)
{
    uint32_t x = b->rng;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return b->rng = x;
}

/* Tears the link down (both connections) and schedules a reconnect. */
static void link_fail(gh_bus *b, const char *why)
{
    unsigned ms = BACKOFF_MAX_MS;
    struct timeval tv;
    int was = b->state;

    if (b->freeing || was == LINK_DOWN)
        return;
    b->state = LINK_DOWN;
    close_one(&b->pub);
    close_one(&b->sub);
    for (size_t i = 0; i < b->nbuckets; i++) {
        chan *c = b->buckets[i], *next;
        for (; c != NULL; c = next) {
            next = c->next;
            chan_flush(b, c, false);
            c->sub_sent = c->sub_acked = 0;
            if (!c->want)
                chan_remove(b, c);
        }
    }
    if (b->attempts < 6)
        ms = BACKOFF_MIN_MS << b->attempts;
    if (ms > BACKOFF_MAX_MS)
        ms = BACKOFF_MAX_MS;
    ms = ms * 4 / 5 + next_rand(b) % (ms * 2 / 5 + 1);     /* ±20 % */
    if (was == LINK_UP) {
        b->srv->stats.bus_disconnects++;
        GH_LOG(GH_LOG_WARN, "bus: lost redis %s: %s; publishing locally only, "
               "reconnecting in %ums", b->where, why, ms);
    } else {
        GH_LOG(b->attempts == 0 ? GH_LOG_WARN : GH_LOG_DEBUG,
               "bus: redis %s: %s; publishing locally only, retrying in %ums", b->where,
               why, ms);
    }
    b->attempts++;
    tv = gh_units_timeval(ms);
    evtimer_add(b->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    gh_bus *b = arg;

    (void)fd;
    (void)what;
    if (b->state == LINK_DOWN)
        connect_start(b);
    else if (b->state == LINK_CONNECTING)
        link_fail(b, "connect timed out");
}

bool gh_bus_is_connected(const gh_bus *b)
{
    return b != NULL && b->state == LINK_UP;
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool gh_bus_conf_equal(const gh_bus_conf *a, const gh_bus_conf *b)
{
    return str_eq(a->redis, b->redis) && str_eq(a->channel_prefix, b->channel_prefix) &&
           str_eq(a->password, b->password);
}

int gh_bus_new(gh_server *srv, const gh_bus_conf *conf, gh_bus **out)
{
    gh_bus *b = NULL;
    gh_bus_url u;
    const char *prefix = conf->channel_prefix != NULL ? conf->channel_prefix : "gatehouse:";
    int rc = GH_ENOMEM;
    size_t wl;
    bool v6;

    if (conf->redis == NULL || gh_bus_url_parse(conf->redis, &u) != GH_OK)
        return GH_EINVAL;
    if ((b = calloc(1, sizeof(*b))) == NULL)
        return GH_ENOMEM;
    b->srv = srv;
    b->port = u.port;
    b->db = u.has_db ? u.db : -1;
    b->state = LINK_DOWN;
    if (getrandom(&b->origin, sizeof(b->origin), GRND_NONBLOCK) != sizeof(b->origin)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        b->origin = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
                    ((uint64_t)getpid() << 20) ^ (uint64_t)(uintptr_t)b;
    }
    b->rng = (uint32_t)(b->origin ^ (b->origin >> 32)) ^ 0x9e3779b9u;
    if (b->rng == 0)
        b->rng = 1;
    b->plen = strlen(prefix);
    b->chcap = b->plen + GH_TOPIC_MAX_NS + 1 + GH_TOPIC_MAX_NAME;
    wl = u.host_len + 16;
    v6 = memchr(u.host, ':', u.host_len) != NULL;
    if ((b->host = strndup(u.host, u.host_len)) == NULL ||
        (b->prefix = strdup(prefix)) == NULL ||
        (b->chbuf = malloc(b->chcap)) == NULL ||
        (b->where = malloc(wl)) == NULL ||
        (b->buckets = calloc(64, sizeof(*b->buckets))) == NULL ||
        (b->timer = evtimer_new(srv->base, on_timer, b)) == NULL)
        goto out;
    b->nbuckets = 64;
    snprintf(b->where, wl, "%s%s%s:%u", v6 ? "[" : "", b->host, v6 ? "]" : "",
             (unsigned)u.port);
    if (u.password != NULL) {
        b->password = strndup(u.password, u.password_len);
        b->password_len = u.password_len;
    } else if (conf->password != NULL) {
        b->password = strdup(conf->password);
        b->password_len = strlen(conf->password);
    }
    if ((u.password != NULL || conf->password != NULL) && b->password == NULL)
        goto out;
    {
        /* connect once the loop runs */
        struct timeval now = { 0, 0 };
        gh_topic_bus tb = { .ctx = b, .publish = bus_publish, .watch = bus_watch };
        evtimer_add(b->timer, &now);
        gh_topics_set_bus(srv->topics, &tb);    /* replays the topics that exist */
        b->installed = true;
    }
    *out = b;
    b = NULL;
    rc = GH_OK;
out:
    gh_bus_free(b);
    return rc;
}

void gh_bus_free(gh_bus *b)
{
    if (b == NULL)
        return;
    if (b->installed)
        gh_topics_set_bus(b->srv->topics, NULL);
    b->freeing = true;
    if (b->timer != NULL)
        event_free(b->timer);
    close_one(&b->pub);
    close_one(&b->sub);
    for (size_t i = 0; b->buckets != NULL && i < b->nbuckets; i++) {
        chan *c = b->buckets[i], *next;
        for (; c != NULL; c = next) {
            next = c->next;
            chan_flush(b, c, false);
            free(c);
        }
    }
    free(b->buckets);
    free(b->host);
    free(b->prefix);
    free(b->chbuf);
    free(b->where);
    free(b->scratch);
    if (b->password != NULL) {
        explicit_bzero(b->password, b->password_len);
        free(b->password);
    }
    free(b);
}
