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
 * With several workers the process still has one bus, on worker 0's loop,
 * and the workers' hub (hub.c) is what it serves (gh_bus_local): the hub
 * posts every worker's operations to worker 0 and hands what Redis sends
 * to the workers. Each envelope's origin is the bus's id plus the worker
 * that published it, so upto and skip are applied by that worker.
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
 * A host name (ElastiCache's, whose address moves on failover) is resolved
 * with libevent's asynchronous resolver at every connect, never with a
 * blocking getaddrinfo(): hiredis is only ever given an address. The
 * connect timeout covers the lookup; a failed or silent lookup fails the
 * attempt like a refused connection and is retried with the same backoff.
 *
 * What it deliberately does not do: persist or replay messages (pub/sub is
 * fire-and-forget), or speak TLS to Redis. */
#include "bus.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "err.h"
#include "log.h"
#include "topic.h"
#include "tstate.h"
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
    put64(hdr + 20, m->skip);
    hdr[28] = (uint8_t)(m->keep >> 24);
    hdr[29] = (uint8_t)(m->keep >> 16);
    hdr[30] = (uint8_t)(m->keep >> 8);
    hdr[31] = (uint8_t)m->keep;
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
    out->skip = get64(p + 20);
    out->keep = (uint32_t)p[28] << 24 | (uint32_t)p[29] << 16 | (uint32_t)p[30] << 8 | p[31];
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

/* n hex digits at s as a number; false when they are not. */
static bool hexnum(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (d < 0)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return true;
}

/* One counted list at buf[*at..len): its count, and its items into
 * items[*n..cap) while there is room. */
static int state_list(const char *buf, size_t len, size_t *at, gh_plugin_bytes *items,
                      size_t cap, size_t *n, size_t *count)
{
    uint64_t c, l;

    if (len - *at < 8 || !hexnum(buf + *at, 8, &c))
        return GH_EPROTO;
    *at += 8;
    for (uint64_t i = 0; i < c; i++) {
        if (len - *at < 8 || !hexnum(buf + *at, 8, &l))
            return GH_EPROTO;
        *at += 8;
        if (l > len - *at)
            return GH_EPROTO;
        if (*n < cap)
            items[*n] = (gh_plugin_bytes){ buf + *at, (size_t)l };
        (*n)++;
        *at += (size_t)l;
    }
    *count = (size_t)c;
    return GH_OK;
}

int gh_bus_state_decode(const char *buf, size_t len, uint64_t *reqid,
                        gh_plugin_bytes *items, size_t cap, size_t *nmembers,
                        size_t *nlog)
{
    size_t at = 16, n = 0;
    int rc;

    *nmembers = *nlog = 0;
    if (buf == NULL || len < 16 || !hexnum(buf, 16, reqid))
        return GH_EPROTO;
    if ((rc = state_list(buf, len, &at, items, cap, &n, nmembers)) != GH_OK ||
        (rc = state_list(buf, len, &at, items, cap, &n, nlog)) != GH_OK)
        return rc;
    if (at != len)
        return GH_EPROTO;
    return n > cap ? GH_E2BIG : GH_OK;
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
#define EXIT_FLUSH_MS      500                    /* gh_bus_free: writing what is queued */

enum { LINK_DOWN, LINK_CONNECTING, LINK_UP };
enum { CMD_AUTH = 1, CMD_SELECT, CMD_PING };

/* Something waiting for a channel's SUBSCRIBE confirmation: a formatted
 * command (cmdlen bytes of data; 0 for a plain publish, formatted when
 * sent) with what to deliver here should it never be sent (len bytes
 * after the command), or a topic-state request (reqid). */
enum { Q_PUBLISH, Q_CMD, Q_FETCH, Q_CLAIM };

typedef struct qmsg {
    struct qmsg *next;
    int          kind;
    int          opcode;
    unsigned     worker;        /* the publishing worker (gh_bus_local) */
    uint64_t     upto;          /* its gh_topics_serial() at publish time */
    uint64_t     skip;
    uint64_t     reqid;
    uint32_t     keep;
    size_t       cmdlen, len;
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

/* The topic-state scripts (below), loaded with SCRIPT LOAD at every connect. */
enum { S_MEMBER, S_LOG, S_FETCH, S_BEAT, S_CLAIM, NSCRIPTS };

struct gh_bus {
    gh_loop         *loop;
    gh_bus_local       local;       /* whom it serves: loop's own, or the hub */
    unsigned           nworkers;    /* 1, or the hub's workers */
    uint64_t           origin;      /* this bus, in every envelope it sends: plus
                                       the publishing worker */
    char              *host;
    int                port;
    int                db;          /* -1: no SELECT */
    char              *password;    /* NULL: no AUTH */
    size_t             password_len;
    char              *prefix;
    size_t             plen;
    char              *where;       /* "HOST:PORT" for logs */
    struct evdns_base *dns;         /* a host name's resolver; NULL for an address */
    struct evdns_getaddrinfo_request *dnsreq;   /* the lookup in flight, or NULL */
    char               addr[INET6_ADDRSTRLEN];  /* what the host is now */
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
    uint64_t           instance;    /* gh_tstate_instance(): names our members */
    uint64_t           ttl_ms;      /* presence_ttl */
    char               me[17];      /* instance in hex */
    char              *reply_ch;    /* "<prefix>!state:<origin hex>" */
    size_t             reply_len;
    char               sha[NSCRIPTS][41];  /* the scripts' SHA1s, from SCRIPT LOAD */
    unsigned           shas;        /* how many have been loaded */
    struct event      *beat;        /* heartbeat, every ttl / 3 while up */
    bool               beat_first;  /* the next heartbeat is this link's first */
    char              *chbuf;       /* one channel name */
    size_t             chcap;
    char              *scratch;     /* one PUBLISH command */
    size_t             scap;
    time_t             last_warn;
};

static void link_fail(gh_bus *b, const char *why);
static void link_up(gh_bus *b);

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
                         int opcode, const void *data, size_t dlen, unsigned worker,
                         uint64_t upto)
{
    b->local.deliver(b->local.ctx, ns, name, len, opcode, data, dlen, worker, upto, 0);
    return GH_OK;
}

/* Sends one PUBLISH on channel ch (b->chbuf or a chan's). */
static int publish_now(gh_bus *b, const char *ch, size_t chlen, int opcode,
                       const void *data, size_t dlen, unsigned worker, uint64_t upto)
{
    size_t need = gh_bus_publish_size(chlen, dlen);
    gh_bus_msg msg = { .opcode = opcode, .origin = b->origin + worker, .upto = upto,
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
    GH_STAT_ADD(b->loop->stats.bus_published, 1);
    return GH_OK;
}

static void on_script_reply(redisAsyncContext *ac, void *r, void *priv);
static int fetch_now(gh_bus *b, const char *ch, size_t chlen, uint64_t reqid);

static void on_fetch_reply(redisAsyncContext *ac, void *r, void *priv);

/* Sends a formatted claim script for request reqid: its answer comes on
 * the reply channel, or none (on_fetch_reply). */
static int claim_now(gh_bus *b, const uint8_t *cmd, size_t len, uint64_t reqid)
{
    if (b->pub == NULL)
        return GH_EAGAIN;
    if (redisAsyncFormattedCommand(b->pub, on_fetch_reply, (void *)(uintptr_t)reqid,
                                   (const char *)cmd, len) != REDIS_OK)
        return GH_ENOMEM;
    GH_STAT_ADD(b->loop->stats.bus_published, 1);
    return GH_OK;
}

/* Sends a formatted script command (member or log). */
static int cmd_now(gh_bus *b, const uint8_t *cmd, size_t len)
{
    if (b->pub == NULL)
        return GH_EAGAIN;
    if (redisAsyncFormattedCommand(b->pub, on_script_reply, NULL, (const char *)cmd, len) !=
        REDIS_OK)
        return GH_ENOMEM;
    GH_STAT_ADD(b->loop->stats.bus_published, 1);
    return GH_OK;
}

/* Sends c's queued work (link up) or does it here instead (link going
 * down, or the bus being freed). */
static void chan_flush(gh_bus *b, chan *c, bool send)
{
    qmsg *m = c->q, *next;

    for (; m != NULL; m = next) {
        int rc = GH_EAGAIN;

        next = m->next;
        if (send) {
            if (m->kind == Q_PUBLISH)
                rc = publish_now(b, c->ch, c->chlen, m->opcode, m->data, m->len, m->worker,
                                 m->upto);
            else if (m->kind == Q_CMD)
                rc = cmd_now(b, m->data, m->cmdlen);
            else if (m->kind == Q_CLAIM)
                rc = claim_now(b, m->data, m->cmdlen, m->reqid);
            else
                rc = fetch_now(b, c->ch, c->chlen, m->reqid);
        }
        if (rc == GH_OK) {
            /* sent: comes back through SUBSCRIBE */
        } else if (m->kind == Q_FETCH || m->kind == Q_CLAIM) {
            b->local.unanswered(b->local.ctx, m->reqid);
        } else {
            if (c->want && m->opcode != 0) {
                b->local.deliver(b->local.ctx, c->ns, c->name, c->name_len, m->opcode,
                                 m->data + m->cmdlen, m->len, m->worker, m->upto, m->skip);
            }
            if (m->keep > 0)
                b->local.log_seen(b->local.ctx, c->ns, c->name, c->name_len,
                                  (const char *)m->data + m->cmdlen, m->len, m->keep);
            GH_STAT_ADD(b->loop->stats.bus_not_broadcast, 1);
        }
        b->queued -= m->cmdlen + m->len;
        free(m);
    }
    c->q = NULL;
    c->qtail = &c->q;
}

/* Queues work on c until its SUBSCRIBE is confirmed. Returns 0, or
 * GH_ENOMEM when over MAX_QUEUED or out of memory. */
static int chan_queue(gh_bus *b, chan *c, int kind, const void *cmd, size_t cmdlen,
                      int opcode, const void *data, size_t dlen, unsigned worker,
                      uint64_t upto, uint64_t skip, uint32_t keep, uint64_t reqid)
{
    qmsg *m;

    if (cmdlen > MAX_QUEUED || dlen > MAX_QUEUED - cmdlen ||
        cmdlen + dlen > MAX_QUEUED - b->queued ||
        (m = malloc(sizeof(*m) + cmdlen + dlen)) == NULL) {
        warn_limited(b, "too much waits for SUBSCRIBE confirmations; working locally only");
        return GH_ENOMEM;
    }
    m->next = NULL;
    m->kind = kind;
    m->opcode = opcode;
    m->worker = worker;
    m->upto = upto;
    m->skip = skip;
    m->keep = keep;
    m->reqid = reqid;
    m->cmdlen = cmdlen;
    m->len = dlen;
    if (cmdlen > 0)
        memcpy(m->data, cmd, cmdlen);
    if (dlen > 0)
        memcpy(m->data + cmdlen, data, dlen);
    *c->qtail = m;
    c->qtail = &m->next;
    b->queued += cmdlen + dlen;
    return GH_OK;
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

/* True when the link can take a command now (up, and Redis reading). */
static bool can_send(gh_bus *b)
{
    if (b->state != LINK_UP || b->pub == NULL)
        return false;
    if (sdslen(b->pub->c.obuf) > MAX_OUTPUT) {
        warn_limited(b, "Redis is not reading fast enough; working locally only");
        return false;
    }
    return true;
}

int gh_bus_publish(gh_bus *b, unsigned worker, uint64_t upto, const char *ns,
                   const char *name, size_t len, int opcode, const void *data, size_t dlen)
{
    long chlen;
    chan *c;
    int rc;

    if ((opcode != GH_WS_OP_TEXT && opcode != GH_WS_OP_BINARY) || (dlen > 0 && data == NULL))
        return GH_EINVAL;
    if ((chlen = channel_of(b, ns, name, len)) < 0)
        return (int)chlen;
    if (!can_send(b)) {
        GH_STAT_ADD(b->loop->stats.bus_not_broadcast, 1);
        return deliver_local(b, ns, name, len, opcode, data, dlen, worker, upto);
    }
    c = chan_find(b, b->chbuf, (size_t)chlen);
    if (c != NULL && c->want && !chan_confirmed(b, c)) {
        /* Redis has not confirmed our SUBSCRIBE: a PUBLISH now could
         * overtake it and never come back to the members here */
        if (chan_queue(b, c, Q_PUBLISH, NULL, 0, opcode, data, dlen, worker, upto, 0, 0,
                       0) == GH_OK)
            return GH_OK;
        GH_STAT_ADD(b->loop->stats.bus_not_broadcast, 1);
        return deliver_local(b, ns, name, len, opcode, data, dlen, worker, upto);
    }
    if ((rc = publish_now(b, b->chbuf, (size_t)chlen, opcode, data, dlen, worker, upto)) !=
        GH_OK) {
        GH_STAT_ADD(b->loop->stats.bus_not_broadcast, 1);
        return deliver_local(b, ns, name, len, opcode, data, dlen, worker, upto);
    }
    if (c == NULL && b->local.subscribed(b->local.ctx, ns, name, len)) {
        /* local members but no channel (out of memory when it was made):
         * it will not come back, so they get it directly */
        return deliver_local(b, ns, name, len, opcode, data, dlen, worker, upto);
    }
    return GH_OK;
}

/* The topics' publish (one loop). */
static int bus_publish(void *ctx, const char *ns, const char *name, size_t len,
                       int opcode, const void *data, size_t dlen)
{
    gh_bus *b = ctx;

    return gh_bus_publish(b, 0, gh_topics_serial(b->loop->topics), ns, name, len, opcode,
                          data, dlen);
}

/* ---- topic state: scripts ---------------------------------------------------
 * Keys, for prefix P and topic key T = "<plugin>:<topic>" (the channel is
 * P T): P"pres:"T hash field "<instance hex>:<conn id>" -> member value;
 * P"order:"T zset of the same fields by join order (P"seq" counts);
 * P"bye:"T hash field -> farewell envelope; P"log:"T list of logged
 * messages; P"itop:"<instance> set of the T where the instance has members;
 * P"alive" zset of instances by the time their heartbeat runs out. Every key
 * but P"seq" expires 3 x presence_ttl after the last heartbeat that touched
 * it, so nothing outlives the instances that use it. A plugin name holds no
 * ':' and no '!', so these never meet a channel or each other. */

/* The member scripts' arguments P T field value farewell announce ttl me
 * last_local, and their keys */
#define LUA_MEMBER_ARGS                                                                     \
    "local p, tk, f, v, bye, ann = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]\n"  \
    "local ttl = tonumber(ARGV[7]) * 3\n"                                                  \
    "local pres, ord, byek, logk = p..'pres:'..tk, p..'order:'..tk, p..'bye:'..tk, p..'log:'..tk\n" \
    "local itop = p..'itop:'..ARGV[8]\n"
/* sets member f to v */
#define LUA_MEMBER_SET                                                                      \
    "  if not redis.call('ZSCORE', ord, f) then\n"                                          \
    "    redis.call('ZADD', ord, redis.call('INCR', p..'seq'), f)\n"                         \
    "  end\n"                                                                               \
    "  redis.call('HSET', pres, f, v)\n"                                                     \
    "  if bye ~= '' then redis.call('HSET', byek, f, bye) else redis.call('HDEL', byek, f) end\n" \
    "  redis.call('SADD', itop, tk)\n"                                                       \
    "  for _, k in ipairs({pres, ord, byek, logk, itop}) do redis.call('PEXPIRE', k, ttl) end\n"
/* the topic's state as the fetch answer: reqid-hex (in out[1]) members log */
#define LUA_STATE                                                                           \
    "local vals = {}\n"                                                                     \
    "for _, f in ipairs(redis.call('ZRANGE', p..'order:'..tk, 0, -1)) do\n"                   \
    "  local v = redis.call('HGET', p..'pres:'..tk, f)\n"                                    \
    "  if v then vals[#vals + 1] = v end\n"                                                  \
    "end\n"                                                                                 \
    "out[#out + 1] = string.format('%08x', #vals)\n"                                         \
    "for _, v in ipairs(vals) do out[#out + 1] = string.format('%08x', #v); out[#out + 1] = v end\n" \
    "local lg = redis.call('LRANGE', p..'log:'..tk, 0, -1)\n"                                \
    "out[#out + 1] = string.format('%08x', #lg)\n"                                           \
    "for _, v in ipairs(lg) do out[#out + 1] = string.format('%08x', #v); out[#out + 1] = v end\n"

static const char *const scripts[NSCRIPTS] = {
    /* member: P T field value farewell announce ttl me last if_member */
    LUA_MEMBER_ARGS
    "if v == '' then\n"
    "  local was = redis.call('HDEL', pres, f)\n"
    "  redis.call('HDEL', byek, f); redis.call('ZREM', ord, f)\n"
    "  if redis.call('EXISTS', pres) == 0 then redis.call('DEL', logk, ord, byek) end\n"
    "  if ARGV[9] == '1' then redis.call('SREM', itop, tk) end\n"
    "  if was == 0 and ARGV[10] == '1' then ann = '' end\n"
    "else\n"
    LUA_MEMBER_SET
    "end\n"
    "if ann ~= '' then redis.call('PUBLISH', p..tk, ann) end\n"
    "return 0\n",

    /* log: P T entry keep envelope ttl */
    "local p, tk = ARGV[1], ARGV[2]\n"
    "local logk = p..'log:'..tk\n"
    "if redis.call('EXISTS', p..'pres:'..tk) == 1 then\n"
    "  redis.call('RPUSH', logk, ARGV[3])\n"
    "  redis.call('LTRIM', logk, -tonumber(ARGV[4]), -1)\n"
    "  redis.call('PEXPIRE', logk, tonumber(ARGV[6]) * 3)\n"
    "end\n"
    "redis.call('PUBLISH', p..tk, ARGV[5])\n"
    "return 0\n",

    /* fetch: P T reply-channel reqid-hex; answers on the reply channel so
     * the answer is ordered with the topic's messages on our SUBSCRIBE
     * connection */
    "local p, tk = ARGV[1], ARGV[2]\n"
    "local out = {ARGV[4]}\n"
    LUA_STATE
    "redis.call('PUBLISH', ARGV[3], table.concat(out))\n"
    "return 0\n",

    /* heartbeat: P me ttl. Keeps our keys alive, and sweeps instances whose
     * heartbeat ran out: their members go, their farewells are published.
     * Returns {1 if we were not listed (new, or swept as dead), swept} */
    "local p, me, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local alive = p..'alive'\n"
    "local fresh = redis.call('ZADD', alive, now + ttl, me)\n"
    "redis.call('PEXPIRE', alive, ttl * 3)\n"
    "local itop = p..'itop:'..me\n"
    "for _, tk in ipairs(redis.call('SMEMBERS', itop)) do\n"
    "  for _, k in ipairs({'pres:', 'order:', 'bye:', 'log:'}) do\n"
    "    redis.call('PEXPIRE', p..k..tk, ttl * 3)\n"
    "  end\n"
    "end\n"
    "redis.call('PEXPIRE', itop, ttl * 3)\n"
    "local swept = 0\n"
    "for _, d in ipairs(redis.call('ZRANGEBYSCORE', alive, '-inf', now, 'LIMIT', 0, 8)) do\n"
    "  local di = p..'itop:'..d\n"
    "  local pre = d..':'\n"
    "  for _, tk in ipairs(redis.call('SMEMBERS', di)) do\n"
    "    local pres, ord, byek = p..'pres:'..tk, p..'order:'..tk, p..'bye:'..tk\n"
    "    for _, f in ipairs(redis.call('HKEYS', pres)) do\n"
    "      if string.sub(f, 1, #pre) == pre then\n"
    "        local bye = redis.call('HGET', byek, f)\n"
    "        redis.call('HDEL', pres, f); redis.call('HDEL', byek, f); redis.call('ZREM', ord, f)\n"
    "        if bye then redis.call('PUBLISH', p..tk, bye) end\n"
    "        swept = swept + 1\n"
    "      end\n"
    "    end\n"
    "    if redis.call('EXISTS', pres) == 0 then redis.call('DEL', p..'log:'..tk, ord, byek) end\n"
    "  end\n"
    "  redis.call('DEL', di)\n"
    "  redis.call('ZREM', alive, d)\n"
    "end\n"
    "return {fresh, swept}\n",

    /* claim: the member script's arguments (value set), then reply-channel
     * reqid-hex max icase. When granted, the member is set and the
     * announcement published; then the state from before, as fetch
     * answers it but after 'c' and the result ('0' set, 'e' another
     * member has the value, 's' max members): a joiner's subscription is
     * still held when the announcement arrives. */
    LUA_MEMBER_ARGS
    "local max, icase = tonumber(ARGV[12]), ARGV[13] == '1'\n"
    "local others, res = 0, '0'\n"
    "local lv = icase and string.lower(v) or v\n"
    "local all = redis.call('HGETALL', pres)\n"
    "for i = 1, #all, 2 do\n"
    "  if all[i] ~= f then\n"
    "    others = others + 1\n"
    "    local o = all[i + 1]\n"
    "    if (icase and string.lower(o) or o) == lv then res = 'e' end\n"
    "  end\n"
    "end\n"
    "if res == '0' and max > 0 and others >= max then res = 's' end\n"
    "local out = {'c', res, ARGV[11]}\n"
    LUA_STATE
    "if res == '0' then\n"
    LUA_MEMBER_SET
    "  if ann ~= '' then redis.call('PUBLISH', p..tk, ann) end\n"
    "end\n"
    "redis.call('PUBLISH', ARGV[10], table.concat(out))\n"
    "return 0\n",
};

/* An envelope (header + payload) in a fresh allocation; *out_len its size. */
static uint8_t *envelope(const gh_bus_msg *m, size_t *out_len)
{
    uint8_t *e;

    if (m->len > SIZE_MAX - GH_BUS_HDR_LEN || (e = malloc(GH_BUS_HDR_LEN + m->len)) == NULL)
        return NULL;
    (void)gh_bus_envelope_header(e, m);
    if (m->len > 0)
        memcpy(e + GH_BUS_HDR_LEN, m->data, m->len);
    *out_len = GH_BUS_HDR_LEN + m->len;
    return e;
}

static void hex64(char out[17], uint64_t v)
{
    snprintf(out, 17, "%016llx", (unsigned long long)v);
}

/* Formats EVALSHA script 0 argv... into a fresh command (*cmd, free()). */
static long format_script(gh_bus *b, int script, int argc, const char **argv,
                          const size_t *argvlen, char **cmd)
{
    const char *av[16];
    size_t al[16];
    long n;

    if (argc > 13)
        return GH_EINVAL;
    av[0] = "EVALSHA";
    al[0] = 7;
    av[1] = b->sha[script];
    al[1] = 40;
    av[2] = "0";
    al[2] = 1;
    for (int i = 0; i < argc; i++) {
        av[3 + i] = argv[i];
        al[3 + i] = argvlen[i];
    }
    n = redisFormatCommandArgv(cmd, argc + 3, av, al);
    return n > 0 ? n : GH_ENOMEM;
}

/* The topic key "<ns>:<name>" = the channel without the prefix. */
static const char *topic_key(gh_bus *b, long chlen, size_t *len)
{
    *len = (size_t)chlen - b->plen;
    return b->chbuf + b->plen;
}

/* Sends cmd now, or queues it on c while c's SUBSCRIBE is unconfirmed.
 * Returns 0 (cmd will be freed) or an error (nothing done). */
static int send_or_queue(gh_bus *b, chan *c, char *cmd, long cmdlen, int opcode,
                         const char *data, size_t dlen, unsigned worker, uint64_t upto,
                         uint64_t skip, uint32_t keep)
{
    int rc;

    /* only what publishes must wait for our SUBSCRIBE to come back to us */
    if (opcode != 0 && c != NULL && c->want && !chan_confirmed(b, c))
        rc = chan_queue(b, c, Q_CMD, cmd, (size_t)cmdlen, opcode, data, dlen, worker, upto,
                        skip, keep, 0);
    else
        rc = cmd_now(b, (const uint8_t *)cmd, (size_t)cmdlen);
    return rc;
}

/* A member's farewell (published by whoever removes it: to everyone) and
 * announcement (worker's, with upto and skip) as envelopes, each NULL
 * when not given. Returns 0, or GH_ENOMEM having freed both. */
static int envelopes(gh_bus *b, unsigned worker, uint64_t upto, uint64_t skip,
                     const char *farewell, size_t flen, const char *announce, size_t alen,
                     uint8_t **bye, size_t *byelen, uint8_t **ann, size_t *annlen)
{
    gh_bus_msg f = { .opcode = GH_WS_OP_TEXT, .origin = 0, .upto = UINT64_MAX,
                     .data = (const uint8_t *)farewell, .len = flen };
    gh_bus_msg a = { .opcode = GH_WS_OP_TEXT, .origin = b->origin + worker, .upto = upto,
                     .skip = skip, .data = (const uint8_t *)announce, .len = alen };

    *bye = *ann = NULL;
    if ((farewell != NULL && (*bye = envelope(&f, byelen)) == NULL) ||
        (announce != NULL && (*ann = envelope(&a, annlen)) == NULL)) {
        free(*bye);
        *bye = NULL;
        return GH_ENOMEM;
    }
    return GH_OK;
}

/* The member script. again: re-registering what Redis may have lost, which
 * must not be dropped for a full output buffer (Redis reads it in time). */
static int member_op(gh_bus *b, unsigned worker, uint64_t upto, const char *ns,
                     const char *name, size_t len, uint64_t connid, const char *value,
                     size_t vlen, const char *farewell, size_t flen, const char *announce,
                     size_t alen, uint64_t skip, bool last_local, bool if_member, bool again)
{
    long chlen, cmdlen;
    size_t tklen, byelen = 0, annlen = 0;
    const char *tk;
    char field[64], ttl[24], *cmd = NULL;
    uint8_t *bye = NULL, *ann = NULL;
    int rc = GH_ENOMEM;

    if ((again ? b->state != LINK_UP || b->pub == NULL : !can_send(b)) || b->shas < NSCRIPTS)
        return GH_EAGAIN;
    if ((chlen = channel_of(b, ns, name, len)) < 0)
        return (int)chlen;
    tk = topic_key(b, chlen, &tklen);
    snprintf(field, sizeof(field), "%s:%llu", b->me, (unsigned long long)connid);
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)b->ttl_ms);
    if (envelopes(b, worker, upto, skip, value != NULL ? farewell : NULL, flen, announce, alen,
                  &bye, &byelen, &ann, &annlen) != GH_OK)
        goto out;
    {
        const char *argv[10] = { b->prefix, tk, field, value != NULL ? value : "",
                                 bye != NULL ? (char *)bye : "",
                                 ann != NULL ? (char *)ann : "", ttl, b->me,
                                 last_local ? "1" : "0", if_member ? "1" : "0" };
        size_t argvlen[10] = { b->plen, tklen, strlen(field), value != NULL ? vlen : 0,
                               byelen, annlen, strlen(ttl), 16, 1, 1 };
        if ((cmdlen = format_script(b, S_MEMBER, 10, argv, argvlen, &cmd)) < 0) {
            rc = (int)cmdlen;
            goto out;
        }
    }
    rc = send_or_queue(b, chan_find(b, b->chbuf, (size_t)chlen), cmd, cmdlen,
                       announce != NULL ? GH_WS_OP_TEXT : 0, announce,
                       announce != NULL ? alen : 0, worker, upto, skip, 0);
out:
    free(cmd);
    free(bye);
    free(ann);
    return rc;
}

int gh_bus_member(gh_bus *b, unsigned worker, uint64_t upto, const char *ns,
                  const char *name, size_t len, uint64_t connid, const char *value,
                  size_t vlen, const char *farewell, size_t flen, const char *announce,
                  size_t alen, uint64_t skip, bool last_local, bool if_member)
{
    return member_op(b, worker, upto, ns, name, len, connid, value, vlen, farewell, flen,
                     announce, alen, skip, last_local, if_member, false);
}

static int bus_member(void *ctx, const char *ns, const char *name, size_t len,
                      uint64_t connid, const char *value, size_t vlen,
                      const char *farewell, size_t flen, const char *announce, size_t alen,
                      uint64_t skip, bool last_local, bool if_member)
{
    gh_bus *b = ctx;

    return member_op(b, 0, gh_topics_serial(b->loop->topics), ns, name, len, connid, value,
                     vlen, farewell, flen, announce, alen, skip, last_local, if_member, false);
}

int gh_bus_claim(gh_bus *b, unsigned worker, uint64_t upto, const char *ns,
                 const char *name, size_t len, uint64_t reqid, uint64_t connid,
                 const char *value, size_t vlen, uint32_t max, uint32_t flags,
                 const char *farewell, size_t flen, const char *announce, size_t alen,
                 uint64_t skip)
{
    bool join = (flags & GH_PLUGIN_JOIN) != 0;
    long chlen, cmdlen = 0;
    size_t tklen, byelen = 0, annlen = 0;
    const char *tk;
    char field[64], ttl[24], id[17], maxs[16], *cmd = NULL;
    uint8_t *bye = NULL, *ann = NULL;
    chan *c;
    int rc = GH_ENOMEM;

    if (!can_send(b) || b->shas < NSCRIPTS || value == NULL)
        return GH_EAGAIN;
    if ((chlen = channel_of(b, ns, name, len)) < 0)
        return (int)chlen;
    c = chan_find(b, b->chbuf, (size_t)chlen);
    if (join && (c == NULL || !c->want))
        return GH_EAGAIN;       /* no channel (out of memory): no order to keep */
    tk = topic_key(b, chlen, &tklen);
    snprintf(field, sizeof(field), "%s:%llu", b->me, (unsigned long long)connid);
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)b->ttl_ms);
    snprintf(maxs, sizeof(maxs), "%u", (unsigned)max);
    hex64(id, reqid);
    if (envelopes(b, worker, upto, skip, farewell, flen, announce, alen, &bye, &byelen, &ann,
                  &annlen) != GH_OK)
        goto out;
    {
        const char *argv[13] = { b->prefix, tk, field, value,
                                 bye != NULL ? (char *)bye : "",
                                 ann != NULL ? (char *)ann : "", ttl, b->me, "0",
                                 b->reply_ch, id, maxs,
                                 flags & GH_PLUGIN_ICASE ? "1" : "0" };
        size_t argvlen[13] = { b->plen, tklen, strlen(field), vlen, byelen, annlen,
                               strlen(ttl), 16, 1, b->reply_len, 16, strlen(maxs), 1 };
        if ((cmdlen = format_script(b, S_CLAIM, 13, argv, argvlen, &cmd)) < 0) {
            rc = (int)cmdlen;
            goto out;
        }
    }
    /* a join's after our SUBSCRIBE: the answer is ordered with the topic's
     * messages */
    if (join && !chan_confirmed(b, c))
        rc = chan_queue(b, c, Q_CLAIM, cmd, (size_t)cmdlen, 0, NULL, 0, worker, upto, skip, 0,
                        reqid);
    else
        rc = claim_now(b, (const uint8_t *)cmd, (size_t)cmdlen, reqid);
out:
    free(cmd);
    free(bye);
    free(ann);
    return rc;
}

static int bus_claim(void *ctx, const char *ns, const char *name, size_t len, uint64_t reqid,
                     uint64_t connid, const char *value, size_t vlen, uint32_t max,
                     uint32_t flags, const char *farewell, size_t flen, const char *announce,
                     size_t alen, uint64_t skip)
{
    gh_bus *b = ctx;

    return gh_bus_claim(b, 0, gh_topics_serial(b->loop->topics), ns, name, len, reqid, connid,
                        value, vlen, max, flags, farewell, flen, announce, alen, skip);
}

int gh_bus_log_publish(gh_bus *b, unsigned worker, uint64_t upto, const char *ns,
                       const char *name, size_t len, const char *data, size_t dlen,
                       uint32_t keep)
{
    long chlen, cmdlen;
    size_t tklen, envlen = 0;
    const char *tk;
    char keeps[16], ttl[24], *cmd = NULL;
    uint8_t *env;
    gh_bus_msg m = { .opcode = GH_WS_OP_TEXT, .origin = b->origin + worker, .upto = upto,
                     .keep = keep, .data = (const uint8_t *)data, .len = dlen };
    int rc;

    if (!can_send(b) || b->shas < NSCRIPTS)
        return GH_EAGAIN;
    if ((chlen = channel_of(b, ns, name, len)) < 0)
        return (int)chlen;
    tk = topic_key(b, chlen, &tklen);
    snprintf(keeps, sizeof(keeps), "%u", (unsigned)keep);
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)b->ttl_ms);
    if ((env = envelope(&m, &envlen)) == NULL)
        return GH_ENOMEM;
    {
        const char *argv[6] = { b->prefix, tk, data != NULL ? data : "", keeps,
                                (char *)env, ttl };
        size_t argvlen[6] = { b->plen, tklen, dlen, strlen(keeps), envlen, strlen(ttl) };
        cmdlen = format_script(b, S_LOG, 6, argv, argvlen, &cmd);
    }
    free(env);
    if (cmdlen < 0)
        return (int)cmdlen;
    rc = send_or_queue(b, chan_find(b, b->chbuf, (size_t)chlen), cmd, cmdlen, GH_WS_OP_TEXT,
                       data, dlen, worker, upto, 0, keep);
    free(cmd);
    return rc;
}

static int bus_log_publish(void *ctx, const char *ns, const char *name, size_t len,
                           const char *data, size_t dlen, uint32_t keep)
{
    gh_bus *b = ctx;

    return gh_bus_log_publish(b, 0, gh_topics_serial(b->loop->topics), ns, name, len, data,
                              dlen, keep);
}

static void on_fetch_reply(redisAsyncContext *ac, void *r, void *priv);

/* Sends the fetch script for reqid on c's topic (or the topic in b->chbuf
 * when c is NULL, chlen then its length). */
static int fetch_now(gh_bus *b, const char *ch, size_t chlen, uint64_t reqid)
{
    char id[17];
    const char *argv[7] = { "EVALSHA", b->sha[S_FETCH], "0", b->prefix, ch + b->plen,
                            b->reply_ch, id };
    size_t argvlen[7] = { 7, 40, 1, b->plen, chlen - b->plen, b->reply_len, 16 };

    if (b->pub == NULL)
        return GH_EAGAIN;
    hex64(id, reqid);
    if (redisAsyncCommandArgv(b->pub, on_fetch_reply, (void *)(uintptr_t)reqid, 7, argv,
                              argvlen) != REDIS_OK)
        return GH_ENOMEM;
    return GH_OK;
}

int gh_bus_fetch(gh_bus *b, const char *ns, const char *name, size_t len, uint64_t reqid,
                 bool after_subscribe)
{
    long chlen;
    chan *c;

    if (!can_send(b) || b->shas < NSCRIPTS)
        return GH_EAGAIN;
    if ((chlen = channel_of(b, ns, name, len)) < 0)
        return (int)chlen;
    c = chan_find(b, b->chbuf, (size_t)chlen);
    if (after_subscribe) {
        if (c == NULL || !c->want)
            return GH_EAGAIN;       /* no channel (out of memory): no order to keep */
        if (!chan_confirmed(b, c))
            return chan_queue(b, c, Q_FETCH, NULL, 0, 0, NULL, 0, 0, 0, 0, 0, reqid);
    }
    return fetch_now(b, b->chbuf, (size_t)chlen, reqid);
}

static int bus_fetch(void *ctx, const char *ns, const char *name, size_t len, uint64_t reqid,
                     bool after_subscribe)
{
    return gh_bus_fetch(ctx, ns, name, len, reqid, after_subscribe);
}

/* A script's reply: errors are logged; a lost script (SCRIPT FLUSH) fails
 * the link, which loads them again. */
static void on_script_reply(redisAsyncContext *ac, void *r, void *priv)
{
    gh_bus *b = ac->data;
    redisReply *reply = r;

    (void)priv;
    if (reply == NULL || b == NULL || ac != b->pub || reply->type != REDIS_REPLY_ERROR)
        return;
    if (strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        link_fail(b, "redis lost our scripts (SCRIPT FLUSH?)");
        return;
    }
    warn_limited(b, "a topic-state script failed in redis");
    GH_LOG(GH_LOG_DEBUG, "bus: script error: %.*s", (int)(reply->len < 300 ? reply->len : 300),
           reply->str);
}

static void on_fetch_reply(redisAsyncContext *ac, void *r, void *priv)
{
    gh_bus *b = ac->data;
    redisReply *reply = r;
    uint64_t reqid = (uint64_t)(uintptr_t)priv;

    if (b == NULL || b->freeing)
        return;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        /* no answer will come on the reply channel */
        b->local.unanswered(b->local.ctx, reqid);
        if (reply != NULL && ac == b->pub)
            on_script_reply(ac, r, NULL);
    }
}

/* An answer on our reply channel: a fetch's, or a claim's ('c' and its
 * result first). */
static void on_state(gh_bus *b, const char *buf, size_t len)
{
    gh_plugin_bytes small[64], *items = small;
    size_t nm, nl;
    uint64_t reqid;
    int rc, result = GH_OK;
    gh_plugin_topic_state st;

    if (len >= 2 && buf[0] == 'c') {
        result = buf[1] == '0' ? GH_OK : buf[1] == 'e' ? GH_EEXIST : GH_ENOSPC;
        buf += 2;
        len -= 2;
    }
    rc = gh_bus_state_decode(buf, len, &reqid, items, 64, &nm, &nl);

    if (rc == GH_E2BIG) {
        if ((items = calloc(nm + nl, sizeof(*items))) == NULL) {
            b->local.unanswered(b->local.ctx, reqid);
            return;
        }
        rc = gh_bus_state_decode(buf, len, &reqid, items, nm + nl, &nm, &nl);
    }
    if (rc != GH_OK) {
        warn_limited(b, "dropped a topic-state answer that does not decode");
        if (items != small)
            free(items);
        return;             /* the request times out and is answered locally */
    }
    st = (gh_plugin_topic_state){ .members = items, .nmembers = nm, .log = items + nm,
                                  .nlog = nl, .whole = true };
    b->local.answer(b->local.ctx, reqid, result, &st);
    if (items != small)
        free(items);
}

/* Registers one of our members again (after a reconnect or a sweep). */
static void reregister(void *ctx, const char *ns, const char *name, size_t len,
                       uint64_t connid, const char *value, size_t vlen,
                       const char *farewell, size_t flen)
{
    (void)member_op(ctx, 0, 0, ns, name, len, connid, value, vlen, farewell, flen, NULL, 0, 0,
                    false, false, true);
}

static void on_beat_reply(redisAsyncContext *ac, void *r, void *priv)
{
    gh_bus *b = ac->data;
    redisReply *reply = r;
    bool first = (bool)(uintptr_t)priv;

    if (reply == NULL || b == NULL || ac != b->pub || b->freeing)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        on_script_reply(ac, r, NULL);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_INTEGER)
        return;
    if (reply->element[1]->integer > 0)
        GH_LOG(GH_LOG_INFO, "bus: removed %lld members of gatehouse instances that "
               "stopped answering", (long long)reply->element[1]->integer);
    if (reply->element[0]->integer == 1 && !first) {
        GH_LOG(GH_LOG_WARN, "bus: redis had taken this instance for gone (no heartbeat "
               "for %llums); registering its members again",
               (unsigned long long)b->ttl_ms);
        b->local.each_member(b->local.ctx, reregister, b);
    }
}

static void beat(gh_bus *b)
{
    char ttl[24];
    const char *argv[6] = { "EVALSHA", b->sha[S_BEAT], "0", b->prefix, b->me, ttl };
    size_t argvlen[6];

    if (b->state != LINK_UP || b->pub == NULL)
        return;
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)b->ttl_ms);
    argvlen[0] = 7;
    argvlen[1] = 40;
    argvlen[2] = 1;
    argvlen[3] = b->plen;
    argvlen[4] = 16;
    argvlen[5] = strlen(ttl);
    (void)redisAsyncCommandArgv(b->pub, on_beat_reply, (void *)(uintptr_t)b->beat_first, 6,
                                argv, argvlen);
    b->beat_first = false;
}

static void on_beat(evutil_socket_t fd, short what, void *arg)
{
    gh_bus *b = arg;

    (void)fd;
    (void)what;
    beat(b);
}

/* Replies to SCRIPT LOAD. */
static void on_script_loaded(redisAsyncContext *ac, void *r, void *priv)
{
    gh_bus *b = ac->data;
    redisReply *reply = r;
    int i = (int)(intptr_t)priv;

    if (reply == NULL || b == NULL || ac != b->pub || b->state != LINK_CONNECTING)
        return;
    if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
        char why[256];
        snprintf(why, sizeof(why), "SCRIPT LOAD refused: %.*s",
                 reply->type == REDIS_REPLY_ERROR ? (int)(reply->len < 200 ? reply->len : 200)
                                                  : 0, reply->str != NULL ? reply->str : "");
        link_fail(b, why);
        return;
    }
    memcpy(b->sha[i], reply->str, 40);
    b->sha[i][40] = '\0';
    b->shas++;
}

/* The topics' watch: the first local subscriber came, or the last left. */
void gh_bus_watch(gh_bus *b, const char *ns, const char *name, size_t len, bool on)
{
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

static void bus_watch(void *ctx, const char *ns, const char *name, size_t len, int on)
{
    gh_bus_watch(ctx, ns, name, len, on != 0);
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
    if (chn->len == b->reply_len && memcmp(chn->str, b->reply_ch, b->reply_len) == 0) {
        if (strcmp(kind->str, "subscribe") == 0 && b->state == LINK_CONNECTING) {
            b->sub_ready = true;
            if (b->pub_ready)
                link_up(b);
        } else if (strcmp(kind->str, "message") == 0 &&
                   reply->element[2]->type == REDIS_REPLY_STRING) {
            on_state(b, reply->element[2]->str, reply->element[2]->len);
        }
        return;
    }
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
    GH_STAT_ADD(b->loop->stats.bus_received, 1);
    if (m.keep > 0)
        b->local.log_seen(b->local.ctx, c->ns, c->name, c->name_len, (const char *)m.data,
                          m.len, m.keep);
    /* ours (published on worker origin - b->origin): to the subscribers
     * there were when it was published, as a local publish would, but the
     * one it skips; another instance's: to everyone here */
    if (m.origin - b->origin < b->nworkers)
        b->local.deliver(b->local.ctx, c->ns, c->name, c->name_len, m.opcode, m.data, m.len,
                         (unsigned)(m.origin - b->origin), m.upto, m.skip);
    else
        b->local.deliver(b->local.ctx, c->ns, c->name, c->name_len, m.opcode, m.data, m.len,
                         GH_BUS_FOREIGN, 0, 0);
}

static void link_up(gh_bus *b)
{
    size_t n = 0;

    b->state = LINK_UP;
    GH_STAT_SET(b->loop->stats.bus_connected, 1);
    evtimer_del(b->timer);
    if (b->was_up)
        GH_STAT_ADD(b->loop->stats.bus_reconnects, 1);
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
    /* our members, as this instance knows them (Redis may have lost them,
     * or swept them while we were away) */
    b->local.each_member(b->local.ctx, reregister, b);
    if (b->state == LINK_UP) {
        struct timeval tv = gh_units_timeval(b->ttl_ms / 3);
        b->beat_first = true;
        beat(b);
        evtimer_add(b->beat, &tv);
    }
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
    if (ac == b->pub) {
        if (b->shas < NSCRIPTS) {
            link_fail(b, "SCRIPT LOAD did not answer");
            return;
        }
        b->pub_ready = true;
        if (b->sub_ready)
            link_up(b);
        return;
    }
    /* the SUBSCRIBE connection: our reply channel first; its confirmation
     * makes the connection ready (on_sub_reply) */
    {
        const char *argv[2] = { "SUBSCRIBE", b->reply_ch };
        size_t argvlen[2] = { 9, b->reply_len };
        if (redisAsyncCommandArgv(b->sub, on_sub_reply, NULL, 2, argv, argvlen) != REDIS_OK)
            link_fail(b, "cannot queue SUBSCRIBE");
    }
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
static redisAsyncContext *open_one(gh_bus *b, bool pub, char *why, size_t whylen)
{
    struct event_base *base = b->loop->base;
    redisAsyncContext *ac = redisAsyncConnect(b->addr, b->port);
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
    for (int i = 0; pub && i < NSCRIPTS; i++) {
        argv[0] = "SCRIPT";
        argvlen[0] = 6;
        argv[1] = "LOAD";
        argvlen[1] = 4;
        {
            const char *av[3] = { argv[0], argv[1], scripts[i] };
            size_t al[3] = { argvlen[0], argvlen[1], strlen(scripts[i]) };
            if (redisAsyncCommandArgv(ac, on_script_loaded, (void *)(intptr_t)i, 3, av, al) !=
                REDIS_OK)
                goto fail;
        }
    }
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

/* Opens both connections to b->addr. */
static void connect_addr(gh_bus *b)
{
    char why[256];

    GH_LOG(b->attempts == 0 ? GH_LOG_INFO : GH_LOG_DEBUG, "bus: connecting to redis %s%s%s%s",
           b->where, b->dns != NULL ? " (" : "", b->dns != NULL ? b->addr : "",
           b->dns != NULL ? ")" : "");
    if ((b->pub = open_one(b, true, why, sizeof(why))) == NULL ||
        (b->sub = open_one(b, false, why, sizeof(why))) == NULL)
        link_fail(b, why);
}

static void cancel_lookup(gh_bus *b)
{
    struct evdns_getaddrinfo_request *r = b->dnsreq;

    if (r == NULL)
        return;
    b->dnsreq = NULL;           /* on_resolved sees the cancel as a stranger's */
    evdns_getaddrinfo_cancel(r);
}

static void on_resolved(int err, struct evutil_addrinfo *res, void *arg)
{
    gh_bus *b = arg;
    char why[256];

    if (err == EVUTIL_EAI_CANCEL) {
        if (res != NULL)
            evutil_freeaddrinfo(res);
        return;
    }
    b->dnsreq = NULL;
    if (err != 0 || res == NULL) {
        snprintf(why, sizeof(why), "resolving %s: %s", b->host, evutil_gai_strerror(err));
    } else {
        const void *a = res->ai_family == AF_INET6
                        ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
                        : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
        if (inet_ntop(res->ai_family, a, b->addr, sizeof(b->addr)) == NULL)
            snprintf(why, sizeof(why), "resolving %s: an address of an unknown family",
                     b->host);
        else
            why[0] = '\0';
    }
    if (res != NULL)
        evutil_freeaddrinfo(res);
    if (b->state != LINK_CONNECTING)
        return;
    if (why[0] != '\0')
        link_fail(b, why);
    else
        connect_addr(b);
}

static void connect_start(gh_bus *b)
{
    struct timeval tv = gh_units_timeval(CONNECT_TIMEOUT_MS);
    struct evutil_addrinfo hints;
    struct evdns_getaddrinfo_request *r;

    b->state = LINK_CONNECTING;
    GH_STAT_SET(b->loop->stats.bus_connected, 0);
    b->pub_ready = b->sub_ready = false;
    b->shas = 0;
    evtimer_add(b->timer, &tv);     /* the lookup and the connect, together */
    if (b->dns == NULL) {
        connect_addr(b);
        return;
    }
    /* again at every attempt: after a failover the name has a new address */
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    GH_LOG(GH_LOG_DEBUG, "bus: resolving %s", b->host);
    /* the answer may come before this returns (from /etc/hosts): then r is
     * NULL and on_resolved has already run */
    r = evdns_getaddrinfo(b->dns, b->host, NULL, &hints, on_resolved, b);
    if (r != NULL && b->state == LINK_CONNECTING && b->pub == NULL)
        b->dnsreq = r;
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
    GH_STAT_SET(b->loop->stats.bus_connected, 0);
    cancel_lookup(b);
    if (b->beat != NULL)
        evtimer_del(b->beat);
    b->local.unanswered_all(b->local.ctx);          /* no answer will come now */
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
        GH_STAT_ADD(b->loop->stats.bus_disconnects, 1);
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
           str_eq(a->password, b->password) && str_eq(a->resolver, b->resolver) &&
           a->presence_ttl_ms == b->presence_ttl_ms;
}

static bool is_address(const char *host)
{
    struct in6_addr a6;
    struct in_addr a4;

    return inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
}

/* The resolver of a host name: resolver ("IP[:PORT]") alone, or the
 * system's (/etc/resolv.conf), with /etc/hosts either way. */
static int make_resolver(gh_bus *b, const char *resolver)
{
    b->dns = evdns_base_new(b->loop->base, resolver != NULL ? 0
                                                           : EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (b->dns == NULL)
        return GH_ENOMEM;
    if (resolver != NULL && evdns_base_nameserver_ip_add(b->dns, resolver) != 0) {
        GH_LOG(GH_LOG_ERROR, "bus: resolver %s cannot be used", resolver);
        return GH_EINVAL;
    }
    (void)evdns_base_load_hosts(b->dns, NULL);
    /* a silent server: two tries of a second each, inside the connect timeout */
    (void)evdns_base_set_option(b->dns, "timeout:", "1");
    (void)evdns_base_set_option(b->dns, "attempts:", "2");
    return GH_OK;
}

/* ---- serving one loop (gh_bus_new) ------------------------------------------ */

static void own_deliver(void *ctx, const char *ns, const char *name, size_t len, int opcode,
                        const void *data, size_t dlen, unsigned worker, uint64_t upto,
                        uint64_t skip)
{
    gh_bus *b = ctx;

    if (worker == GH_BUS_FOREIGN)
        (void)gh_topics_deliver(b->loop->topics, ns, name, len, opcode, data, dlen);
    else
        (void)gh_topics_deliver_ex(b->loop->topics, ns, name, len, opcode, data, dlen, upto,
                                   skip);
}

static bool own_subscribed(void *ctx, const char *ns, const char *name, size_t len)
{
    gh_bus *b = ctx;

    return gh_topics_count(b->loop->topics, ns, name, len) > 0;
}

static void own_answer(void *ctx, uint64_t reqid, int result, const gh_plugin_topic_state *st)
{
    gh_bus *b = ctx;

    gh_tstate_answer(b->loop->tstate, reqid, result, st);
}

static void own_unanswered(void *ctx, uint64_t reqid)
{
    gh_bus *b = ctx;

    gh_tstate_unanswered(b->loop->tstate, reqid);
}

static void own_unanswered_all(void *ctx)
{
    gh_bus *b = ctx;

    gh_tstate_unanswered_all(b->loop->tstate);
}

static void own_log_seen(void *ctx, const char *ns, const char *name, size_t len,
                         const char *data, size_t dlen, uint32_t keep)
{
    gh_bus *b = ctx;

    gh_tstate_log_seen(b->loop->tstate, ns, name, len, data, dlen, keep);
}

static void own_each_member(void *ctx, gh_tstate_member_fn fn, void *fnctx)
{
    gh_bus *b = ctx;

    gh_tstate_each_member(b->loop->tstate, fn, fnctx);
}

static int bus_create(gh_loop *loop, const gh_bus_conf *conf, const gh_bus_local *local,
                      unsigned nworkers, gh_bus **out)
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
    b->loop = loop;
    b->nworkers = nworkers;
    b->port = u.port;
    b->db = u.has_db ? u.db : -1;
    b->state = LINK_DOWN;
    if (getrandom(&b->origin, sizeof(b->origin), GRND_NONBLOCK) != sizeof(b->origin)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        b->origin = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
                    ((uint64_t)getpid() << 20) ^ (uint64_t)(uintptr_t)b;
    }
    /* origin + worker for every worker: never 0 (Redis's farewells) and
     * never wrapping */
    b->origin = (b->origin & ~(uint64_t)0xffff) | 0x10000;
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
        (b->timer = evtimer_new(loop->base, on_timer, b)) == NULL ||
        (b->beat = event_new(loop->base, -1, EV_PERSIST, on_beat, b)) == NULL ||
        (b->reply_ch = malloc(b->plen + 7 + 16 + 1)) == NULL)
        goto out;
    b->ttl_ms = conf->presence_ttl_ms >= 1000 ? conf->presence_ttl_ms : 1000;
    b->instance = gh_tstate_instance(loop->tstate);
    hex64(b->me, b->instance);
    memcpy(b->reply_ch, b->prefix, b->plen);
    memcpy(b->reply_ch + b->plen, "!state:", 7);
    hex64(b->reply_ch + b->plen + 7, b->origin);
    b->reply_len = b->plen + 7 + 16;
    b->nbuckets = 64;
    snprintf(b->where, wl, "%s%s%s:%u", v6 ? "[" : "", b->host, v6 ? "]" : "",
             (unsigned)u.port);
    if (!is_address(b->host)) {
        if ((rc = make_resolver(b, conf->resolver)) != GH_OK)
            goto out;
        rc = GH_ENOMEM;
    } else {
        snprintf(b->addr, sizeof(b->addr), "%s", b->host);
    }
    if (u.password != NULL) {
        b->password = strndup(u.password, u.password_len);
        b->password_len = u.password_len;
    } else if (conf->password != NULL) {
        b->password = strdup(conf->password);
        b->password_len = strlen(conf->password);
    }
    if ((u.password != NULL || conf->password != NULL) && b->password == NULL)
        goto out;
    if (local != NULL) {
        b->local = *local;
    } else {
        b->local = (gh_bus_local){
            .ctx = b, .deliver = own_deliver, .subscribed = own_subscribed,
            .answer = own_answer, .unanswered = own_unanswered,
            .unanswered_all = own_unanswered_all, .log_seen = own_log_seen,
            .each_member = own_each_member,
        };
    }
    {
        /* connect once the loop runs */
        struct timeval now = { 0, 0 };
        evtimer_add(b->timer, &now);
    }
    *out = b;
    b = NULL;
    rc = GH_OK;
out:
    gh_bus_free(b);
    return rc;
}

int gh_bus_new(gh_loop *loop, const gh_bus_conf *conf, gh_bus **out)
{
    gh_topic_bus tb;
    gh_tstate_bus sb;
    int rc = bus_create(loop, conf, NULL, 1, out);

    if (rc != GH_OK)
        return rc;
    tb = (gh_topic_bus){ .ctx = *out, .publish = bus_publish, .watch = bus_watch };
    sb = (gh_tstate_bus){ .ctx = *out, .member = bus_member, .log_publish = bus_log_publish,
                          .fetch = bus_fetch, .claim = bus_claim };
    gh_topics_set_bus(loop->topics, &tb);       /* replays the topics that exist */
    gh_tstate_set_bus(loop->tstate, &sb);
    (*out)->installed = true;
    return GH_OK;
}

int gh_bus_new_shared(gh_loop *loop, const gh_bus_conf *conf, const gh_bus_local *local,
                      unsigned nworkers, gh_bus **out)
{
    if (local == NULL || nworkers < 1 || nworkers > 0xffff)
        return GH_EINVAL;
    return bus_create(loop, conf, local, nworkers, out);
}

/* Writes what is still queued for Redis (the members removed as the last
 * connections closed, with their farewells), waiting at most
 * EXIT_FLUSH_MS: the event loop has stopped, and without this they would
 * be lost and the other instances would announce those users as left only
 * after presence_ttl. */
static void flush_at_exit(gh_bus *b)
{
    struct timespec t0, t;
    int done = 0;

    /* only when the process exits (gh_server_free sets stopping): a
     * reload must not block the loop */
    if (!b->loop->stopping || b->state != LINK_UP || b->pub == NULL)
        return;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct pollfd pfd = { .fd = b->pub->c.fd, .events = POLLOUT };
        long left;

        if (redisBufferWrite(&b->pub->c, &done) != REDIS_OK || done)
            return;
        clock_gettime(CLOCK_MONOTONIC, &t);
        left = EXIT_FLUSH_MS - ((t.tv_sec - t0.tv_sec) * 1000 +
                                (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return;
    }
}

void gh_bus_free(gh_bus *b)
{
    if (b == NULL)
        return;
    flush_at_exit(b);
    if (b->installed) {
        gh_topics_set_bus(b->loop->topics, NULL);
        gh_tstate_set_bus(b->loop->tstate, NULL);   /* waiting requests: answered here */
    } else if (b->local.unanswered_all != NULL) {
        b->local.unanswered_all(b->local.ctx);
    }
    b->freeing = true;
    GH_STAT_SET(b->loop->stats.bus_connected, 0);
    cancel_lookup(b);
    if (b->dns != NULL)
        evdns_base_free(b->dns, 0);
    if (b->timer != NULL)
        event_free(b->timer);
    if (b->beat != NULL)
        event_free(b->beat);
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
    free(b->reply_ch);
    if (b->password != NULL) {
        explicit_bzero(b->password, b->password_len);
        free(b->password);
    }
    free(b);
}
