/* wsconn.c: a WebSocket connection, from the upgrade to the last byte.
 *
 * The glue around the wsframe codec (frames) and wshandshake (header
 * checks): it validates the upgrade and queues the 101, then owns the
 * bufferevent. Client bytes are parsed in place in the input buffer (the
 * codec unmasks them there); a message that arrived whole in one buffer
 * segment goes to the plugin straight from there, without a copy; only a
 * message split across frames or segments is reassembled, in a buffer
 * that never outgrows max_message (the codec refuses a bigger one from its
 * header, before its payload arrives). The plugin always sees whole
 * messages.
 *
 * States: OPEN; CLOSE_SENT (our close is queued: read on for the peer's
 * close, deliver nothing); FLUSHING (the close handshake is over or the
 * connection failed: write what is queued); LINGER (our side is shut:
 * drop input until the peer closes). CLOSE_SENT, FLUSHING and LINGER each
 * end by close_timeout at the latest.
 *
 * Deadlines (pings, the pong deadline, the idle timeout, the close timeout,
 * the send timeout of a full socket) are plain numbers, checked when the
 * connection's timer callback runs; its earliest sits in the loop's
 * deadline heap (base/theap.h), whose one event wakes the connections
 * that are due. Receiving data only stores a timestamp, so the hot path
 * never touches the heap.
 *
 * Reentrancy (STYLE.md §3): a plugin may send to or close any connection
 * from any callback. Nothing here frees a connection, or calls a plugin,
 * from inside a host function: closing marks the connection and activates
 * its timer; the owed close callback and the free happen from the
 * connection's own event callbacks (settle()), never nested in another
 * callback of the same connection.
 *
 * Backpressure: reading stops while our output to this client is above
 * half the route's send_backlog (an echo client that does not read its
 * replies stops being read), and resumes at a quarter. Sends that would
 * push the output past send_backlog close the connection with 1008 as a
 * slow consumer instead of buffering without bound.
 *
 * Compression (permessage-deflate, RFC 7692): negotiated per route
 * (compression: on by default). gatehouse always answers
 * client_no_context_takeover, so no inflate window outlives a message: a
 * compressed message borrows an inflater from the loop's pool from its first
 * frame to its last and inflates into the reassembly buffer, never past
 * max_message, checking UTF-8 on the inflated text as it grows. Sending,
 * messages from compression_threshold up are compressed with the pool's
 * compressor (no server context takeover: nothing is kept per connection)
 * or, when the route keeps server context, with the connection's own
 * compressor. A topic message is compressed once per compressor setting and
 * the frame shared (gh_ws_conn_send_msg). An idle connection that
 * negotiated compression holds one byte and one NULL pointer more than one
 * that did not.
 *
 * A plain socket leaves its bufferevent once upgraded (gh_ws_conn_start()):
 * the connection's one event (c->timer, which conn.c allocated for its
 * header timeout) waits for the socket to be readable, and writable only
 * while the socket is full; it also runs the timer callback (EV_TIMEOUT).
 * Reads go to the loop's read buffer and are parsed there; an idle
 * connection holds no buffer at all (ws->in and ws->out exist only while
 * bytes wait in them). Behind TLS the bufferevent stays and works as usual.
 *
 * Writing: on a plain socket the connection writes its output itself, once
 * per event-loop callback, with one sendmsg of everything queued meanwhile
 * (see need_flush()); the write event only takes over when the socket is
 * full. Fan-out to 1,000 subscribers then costs 1,000 sendmsg calls and no
 * epoll_ctl. The output is our own queue (outq.h): a topic frame queued to
 * a subscriber costs it 16 bytes and a reference, never an allocation. */
#include "wsconn.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "err.h"
#include "log.h"
#include "outq.h"
#include "theap.h"
#include "pluginhost.h"
#include "pmdeflate.h"
#include "topic.h"
#include "tstate.h"
#include "utf8.h"
#include "wsext.h"
#include "wsframe.h"
#include "wshandshake.h"
#include "units.h"

enum ws_state {
    WS_OPEN = 0,
    WS_CLOSE_SENT,
    WS_FLUSHING,
    WS_LINGER,
};

#define READ_HIGH_WATER  (256 * 1024)   /* input we hold before we stop reading */
#define MAX_SINGLE_READ  (64 * 1024)
#define MSG_MIN_CAP      1024
#define COPY_FRAME_MAX   512            /* behind TLS: topic frames up to this are copied into
                                           the bufferevent, not referenced (a reference
                                           costs libevent a 1 KiB chain) */
#define COPY_FRAME_DIRECT 128           /* on a plain socket: into our queue (a reference
                                           costs it 16 bytes; copies sit next to each
                                           other and go out as one piece) */
#define SPARE_OUT        64             /* empty output buffers a loop keeps for reuse */

/* What the loop keeps for its plain-socket WebSocket connections: their
 * deadlines in one heap watched by one event, the buffer every one of them
 * reads into, and empty output buffers to lend. Made on the first upgrade,
 * freed by gh_ws_loop_free(). */
struct gh_ws_loop {
    gh_theap          timers;        /* every connection's next deadline */
    struct event     *timer_ev;      /* fires at the earliest */
    uint64_t          timer_at;      /* the deadline it is armed for; 0: none */
    uint8_t          *rbuf;          /* MAX_SINGLE_READ bytes, read into and parsed in place */
    struct gh_ws_conn *opening;      /* the connection whose plugin open runs, */
    const gh_request *opening_req;   /* and its request (gh_ws_conn_header()) */
    struct gh_outq   *spare[SPARE_OUT];
    unsigned          nspare;
};

/* Our own close reasons: the connection keeps one of these small numbers,
 * not a pointer, for the plugin's close callback. */
enum ws_why {
    WHY_NONE = 0,               /* none of ours: the peer's, the plugin's or none */
    WHY_IDLE,
    WHY_GOING_AWAY,
    WHY_SLOW_CONSUMER,
    WHY_OUT_OF_MEMORY,
    WHY_INVALID_UTF8,
    WHY_TOO_BIG,
    WHY_PROTOCOL_ERROR,
    WHY_BAD_DEFLATE,
};

static const char *const why_text[] = {
    [WHY_NONE]           = NULL,
    [WHY_IDLE]           = "idle timeout",
    [WHY_GOING_AWAY]     = "going away",
    [WHY_SLOW_CONSUMER]  = "slow consumer",
    [WHY_OUT_OF_MEMORY]  = "out of memory",
    [WHY_INVALID_UTF8]   = "invalid UTF-8",
    [WHY_TOO_BIG]        = "message too big",
    [WHY_PROTOCOL_ERROR] = "protocol error",
    [WHY_BAD_DEFLATE]    = "invalid compressed data",
};

/* A message split across frames or buffer segments, being reassembled, or
 * a compressed message being inflated (z set: the inflater lent for it,
 * u: the UTF-8 check of the inflated text so far). */
struct ws_msg {
    size_t                   len, cap;
    gh_inflater             *z;
    gh_utf8                  u;
    uint8_t                  data[];
};

/* pmd_bits: 0 when permessage-deflate was not negotiated, else the window
 * bits we compress with, and PMD_TAKEOVER when we keep server context. */
#define PMD_BITS     0x0f
#define PMD_TAKEOVER 0x80

/* One per connection, most of them idle for hours: every field costs
 * memory ten thousand times over. Nothing here that can be derived (the
 * timer is c->timer, the high-water mark comes from wc, the query follows
 * the path; the subprotocol and our close reason are small indexes, not
 * pointers), nothing held while idle (the frame parser, the reassembly
 * buffer and the parser's control-frame storage exist only while a frame
 * or a message is split across reads), and no padding (gdb: ptype /o
 * struct gh_ws_conn). */
struct gh_ws_conn {
    gh_conn                 *c;
    gh_plugin_route         *rt;          /* lives as long as c->site */
    const gh_websocket_conf *wc;          /* likewise */
    uint16_t                 close_code;  /* for the close callback */
    uint8_t                  state;
    bool                     opened : 1;      /* open accepted: a close callback is owed */
    bool                     notified : 1;    /* the close callback ran */
    bool                     dead : 1;        /* free at the next safe point */
    bool                     paused : 1;      /* reading stopped by backpressure */
    bool                     hub_paused : 1;  /* reading stopped: another worker is
                                                 behind with this one's publishes */
    bool                     peer_eof : 1;    /* the peer shut its side while we flush */
    bool                     direct : 1;      /* plain socket: we read and write it ourselves */
    bool                     writing : 1;     /* the socket is full: its write event
                                                 (behind TLS: libevent) writes the rest */
    bool                     in_cb : 1;       /* inside one of our own callbacks */
    bool                     flush_due : 1;   /* output queued since the last flush */
    bool                     timer_ours : 1;  /* c->timer was reassigned to us */
    uint8_t                  io_ev : 3;   /* direct: EV_READ | EV_WRITE c->timer waits for */
    uint8_t                  close_why;   /* enum ws_why: for the close callback */
    uint8_t                  subproto;    /* 1 + index in the route's subprotocols; 0: none */
    uint8_t                  pmd_bits;    /* permessage-deflate: see PMD_BITS */
    uint64_t                 last_rx_ms;
    union {                               /* by state: */
        uint64_t             next_ping_ms;    /* WS_OPEN; 0: none */
        uint64_t             close_due_ms;    /* after (the state never goes back) */
    };
    uint64_t                 pong_due_ms;     /* 0: no ping outstanding */
    uint64_t                 write_due_ms;    /* direct, writing: the send timeout */
    gh_theap_node            tn;          /* in the loop's deadline heap */
    struct evbuffer         *in;          /* direct: what a read left unparsed */
    struct gh_outq          *out;         /* direct: what waits to be written (outq.h);
                                             both NULL when empty */
    struct ws_msg           *msg;         /* reassembly of a split message, or NULL */
    void                    *user;
    gh_topic_sub            *subs;
    struct gh_tstate_conn   *tsc;         /* topic-state members and requests */
    gh_deflater             *defl;        /* with server context takeover: ours, from
                                             the first compressed message on */
    struct gh_ws_conn       *fl_next, **fl_prev;  /* on loop->ws_flush while listed */
    gh_ws_parser            *parser;      /* only while a frame or message is cut off
                                             (or after a close or an error); NULL: at
                                             rest, a new one parses the next bytes */
    char                     path[];      /* "path\0query\0client\0": the path has no
                                             NUL; client: the real client's address
                                             (for the plugin: c has no text of it) */
};

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static void on_io(evutil_socket_t fd, short what, void *arg);
static void kill_conn(struct gh_ws_conn *ws);
static bool socket_failed(struct gh_ws_conn *ws);

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The output: the bufferevent's behind TLS, or on a plain socket our own
 * queue (outq.h), which exists only while something waits in it (NULL
 * then). */
static struct evbuffer *bev_out(const struct gh_ws_conn *ws)
{
    return bufferevent_get_output(ws->c->bev);
}

static size_t out_len(const struct gh_ws_conn *ws)
{
    if (ws->direct)
        return ws->out != NULL ? gh_outq_len(ws->out) : 0;
    return evbuffer_get_length(bev_out(ws));
}

/* Direct: the queue to add to, lent from the loop's spares. NULL when out
 * of memory. */
static struct gh_outq *outq_get(struct gh_ws_conn *ws)
{
    struct gh_ws_loop *wsl = ws->c->loop->wsl;

    if (ws->out == NULL)
        ws->out = wsl->nspare > 0 ? wsl->spare[--wsl->nspare] : gh_outq_new();
    return ws->out;
}

/* Gives an emptied queue back to the loop: an idle connection holds none. */
static void out_put(struct gh_ws_conn *ws)
{
    struct gh_ws_loop *wsl = ws->c->loop->wsl;

    if (ws->out == NULL || gh_outq_len(ws->out) != 0)
        return;
    if (wsl->nspare < SPARE_OUT)
        wsl->spare[wsl->nspare++] = ws->out;
    else
        gh_outq_free(ws->out);
    ws->out = NULL;
}

/* Queues a copy of data. GH_OK or GH_ENOMEM. */
static int out_add(struct gh_ws_conn *ws, const void *data, size_t len)
{
    struct gh_outq *q;

    if (!ws->direct)
        return evbuffer_add(bev_out(ws), data, len) == 0 ? GH_OK : GH_ENOMEM;
    return (q = outq_get(ws)) != NULL && gh_outq_add(q, data, len) == GH_OK ? GH_OK
                                                                          : GH_ENOMEM;
}

/* Queues frame f shared with others, small ones copied (see
 * COPY_FRAME_MAX), taking a reference of its own when it keeps f. On a
 * full plain socket every frame is referenced: it waits, and a slow
 * subscriber then holds 16 bytes per message, whatever its size. */
static int out_add_frame(struct gh_ws_conn *ws, gh_frame_ref *f)
{
    struct gh_outq *q;

    if (f->len <= (!ws->direct ? COPY_FRAME_MAX : ws->writing ? 0 : COPY_FRAME_DIRECT))
        return out_add(ws, gh_frame_bytes(f), f->len);
    if (ws->direct)
        return (q = outq_get(ws)) != NULL && gh_outq_add_ref(q, f) == GH_OK ? GH_OK
                                                                          : GH_ENOMEM;
    f->refs++;
    if (evbuffer_add_reference(bev_out(ws), gh_frame_bytes(f), f->len, gh_frame_ref_release,
                               f) != 0) {
        f->refs--;
        return GH_ENOMEM;
    }
    return GH_OK;
}

/* Contiguous space for len bytes at the end of the output, to be followed
 * by out_commit() (v: the bufferevent's reservation). NULL when out of
 * memory. */
static uint8_t *out_reserve(struct gh_ws_conn *ws, size_t len, struct evbuffer_iovec *v)
{
    struct gh_outq *q;

    if (ws->direct)
        return (q = outq_get(ws)) != NULL ? gh_outq_reserve(q, len) : NULL;
    if (len > (size_t)EV_SSIZE_MAX ||
        evbuffer_reserve_space(bev_out(ws), (ev_ssize_t)len, v, 1) != 1 || v->iov_len < len)
        return NULL;
    return v->iov_base;
}

/* Queues the first used bytes of what out_reserve() gave. */
static int out_commit(struct gh_ws_conn *ws, struct evbuffer_iovec *v, size_t used)
{
    if (ws->direct)
        return gh_outq_commit(ws->out, used);
    v->iov_len = used;
    return evbuffer_commit_space(bev_out(ws), v, 1) == 0 ? GH_OK : GH_ENOMEM;
}

static struct gh_topics *topics_of(const struct gh_ws_conn *ws)
{
    return ws->c->loop->topics;
}

/* How long a full socket may stay full (http.send_timeout). */
static uint64_t send_timeout_ms(const struct gh_ws_conn *ws)
{
    return ws->c->site->cfg->http.send_timeout_ms;
}

/* Output above this stops reading (half the send backlog). */
static uint64_t high_water(const struct gh_ws_conn *ws)
{
    uint64_t h = ws->wc->send_backlog / 2;

    return h > 0 ? h : 1;
}

/* Runs the timer callback soon: the deferred work of settle(). */
static void wake(struct gh_ws_conn *ws)
{
    event_active(ws->c->timer, EV_TIMEOUT, 1);
}

/* Arms the loop's deadline event for the heap's earliest. */
static void wsl_arm(struct gh_ws_loop *wsl, uint64_t now)
{
    gh_theap_node *t = gh_theap_top(&wsl->timers);
    struct timeval tv;

    if (t == NULL) {
        if (wsl->timer_at != 0)
            event_del(wsl->timer_ev);
        wsl->timer_at = 0;
        return;
    }
    if (t->due == wsl->timer_at)
        return;
    tv = gh_units_timeval(t->due > now ? t->due - now : 0);
    event_add(wsl->timer_ev, &tv);
    wsl->timer_at = t->due;
}

/* The loop's deadline event: every connection whose deadline has come gets
 * its timer callback from its own event (event_active), so nothing here
 * runs a connection's work nested in another's. */
static void on_deadlines(evutil_socket_t fd, short what, void *arg)
{
    struct gh_ws_loop *wsl = arg;
    uint64_t now = now_ms();
    gh_theap_node *t;

    (void)fd;
    (void)what;
    wsl->timer_at = 0;
    while ((t = gh_theap_top(&wsl->timers)) != NULL && t->due <= now) {
        struct gh_ws_conn *ws =
            (struct gh_ws_conn *)((char *)t - offsetof(struct gh_ws_conn, tn));
        gh_theap_del(&wsl->timers, t);
        event_active(ws->c->timer, EV_TIMEOUT, 1);
    }
    wsl_arm(wsl, now);
}

/* The loop's WebSocket state, made on first use. NULL when out of memory. */
static struct gh_ws_loop *ws_loop(gh_loop *loop)
{
    struct gh_ws_loop *wsl = loop->wsl;

    if (wsl != NULL)
        return wsl;
    if ((wsl = calloc(1, sizeof(*wsl))) == NULL ||
        (wsl->rbuf = malloc(MAX_SINGLE_READ)) == NULL ||
        (wsl->timer_ev = event_new(loop->base, -1, 0, on_deadlines, wsl)) == NULL) {
        if (wsl != NULL)
            free(wsl->rbuf);
        free(wsl);
        return NULL;
    }
    loop->wsl = wsl;
    return wsl;
}

void gh_ws_loop_free(gh_loop *loop)
{
    struct gh_ws_loop *wsl = loop->wsl;

    if (wsl == NULL)
        return;
    gh_theap_fini(&wsl->timers);
    event_free(wsl->timer_ev);
    free(wsl->rbuf);
    while (wsl->nspare > 0)
        gh_outq_free(wsl->spare[--wsl->nspare]);
    free(wsl);
    loop->wsl = NULL;
}

/* Puts the connection's earliest deadline in the loop's heap. */
static void rearm(struct gh_ws_conn *ws, uint64_t now)
{
    struct gh_ws_loop *wsl = ws->c->loop->wsl;
    uint64_t due = UINT64_MAX;

    if (ws->state == WS_OPEN) {
        if (ws->next_ping_ms != 0)
            due = ws->next_ping_ms;
        if (ws->pong_due_ms != 0 && ws->pong_due_ms < due)
            due = ws->pong_due_ms;
        if (ws->wc->idle_timeout_ms != 0 && ws->last_rx_ms + ws->wc->idle_timeout_ms < due)
            due = ws->last_rx_ms + ws->wc->idle_timeout_ms;
    } else {
        due = ws->close_due_ms;
    }
    if (ws->direct && ws->writing && ws->write_due_ms != 0 && ws->write_due_ms < due)
        due = ws->write_due_ms;
    if (due == UINT64_MAX) {
        gh_theap_del(&wsl->timers, &ws->tn);
        return;
    }
    if (gh_theap_set(&wsl->timers, &ws->tn, due) != GH_OK) {
        GH_LOG(GH_LOG_ERROR, "conn #%llu %s: out of memory arming a websocket timer",
               (unsigned long long)ws->c->id, gh_conn_client_text(ws->c));
        kill_conn(ws);
        return;
    }
    wsl_arm(wsl, now);
}

static gh_zpool *zpool_of(struct gh_ws_conn *ws)
{
    gh_loop *loop = ws->c->loop;

    if (loop->zpool == NULL)
        loop->zpool = gh_zpool_new();
    return loop->zpool;
}

static void free_message(struct gh_ws_conn *ws)
{
    if (ws->msg != NULL && ws->msg->z != NULL)
        gh_inflater_put(ws->c->loop->zpool, ws->msg->z);
    free(ws->msg);
    ws->msg = NULL;
}

/* ---- writing ------------------------------------------------------------ */

static void on_flush_all(evutil_socket_t fd, short what, void *arg);

/* Output was queued. On a plain socket the connection writes it itself,
 * at the end of the callback it is in (its own, see leave()) or of the one
 * that is running (another's): then it goes on the loop's flush list, which
 * one event per loop turn walks (on_flush_all). All frames queued meanwhile
 * go out in one sendmsg, and the write event is only used when the
 * socket cannot take everything. Fan-out to 1,000 subscribers then costs
 * 1,000 sendmsg calls, one event, and no epoll_ctl or timer work. */
static void need_flush(struct gh_ws_conn *ws)
{
    gh_loop *loop = ws->c->loop;

    if (!ws->direct || ws->writing || ws->flush_due)
        return;
    ws->flush_due = true;
    if (ws->in_cb || ws->fl_prev != NULL)
        return;
    if (loop->ws_flush_ev == NULL &&
        (loop->ws_flush_ev = event_new(loop->base, -1, 0, on_flush_all, loop)) == NULL) {
        wake(ws);               /* no event to spare: the connection's own timer */
        return;
    }
    if ((ws->fl_next = loop->ws_flush) != NULL)
        ws->fl_next->fl_prev = &ws->fl_next;
    ws->fl_prev = &loop->ws_flush;
    loop->ws_flush = ws;
    if (ws->fl_next == NULL)    /* the list was empty: the event is not active yet */
        event_active(loop->ws_flush_ev, 0, 1);
}

static void flush_unlist(struct gh_ws_conn *ws)
{
    if (ws->fl_prev == NULL)
        return;
    if ((*ws->fl_prev = ws->fl_next) != NULL)
        ws->fl_next->fl_prev = ws->fl_prev;
    ws->fl_next = NULL;
    ws->fl_prev = NULL;
}

/* Queues one frame, header and payload in one contiguous reservation. */
static int queue_frame(struct gh_ws_conn *ws, int opcode, const void *data, size_t len)
{
    uint8_t hdr[GH_WS_MAX_HEADER];
    size_t hlen = gh_ws_frame_header(hdr, opcode, true, len);
    struct evbuffer_iovec v;
    uint8_t *base;

    if (len > SIZE_MAX - hlen || (base = out_reserve(ws, hlen + len, &v)) == NULL)
        return GH_ENOMEM;
    memcpy(base, hdr, hlen);
    if (len > 0)
        memcpy(base + hlen, data, len);
    if (out_commit(ws, &v, hlen + len) != GH_OK)
        return GH_ENOMEM;
    need_flush(ws);
    return GH_OK;
}

/* True when a message of len bytes goes out compressed. */
static bool compresses(const struct gh_ws_conn *ws, size_t len)
{
    return ws->pmd_bits != 0 && len > 0 && len >= ws->wc->compression_threshold;
}

/* Compresses data[0..len) into out[0..cap) with the connection's compressor
 * (server context takeover) or the pool's. Returns the compressed length,
 * or a negative error. */
static long deflate_into(struct gh_ws_conn *ws, const void *data, size_t len, uint8_t *out,
                         size_t cap)
{
    const gh_websocket_conf *wc = ws->wc;
    int bits = ws->pmd_bits & PMD_BITS;
    gh_zpool *zp;
    long n;

    if (ws->pmd_bits & PMD_TAKEOVER) {
        if (ws->defl == NULL &&
            (ws->defl = gh_deflater_new((int)wc->compression_level, bits)) == NULL)
            return GH_ENOMEM;
        n = gh_deflate(ws->defl, data, len, out, cap);
    } else {
        if ((zp = zpool_of(ws)) == NULL)
            return GH_ENOMEM;
        n = gh_zpool_deflate(zp, (int)wc->compression_level, bits, data, len, out, cap);
    }
    if (n >= 0) {
        gh_stats *st = &ws->c->loop->stats;
        GH_STAT_ADD(st->ws_deflations, 1);
        GH_STAT_ADD(st->ws_deflate_in, len);
        GH_STAT_ADD(st->ws_deflate_out, (uint64_t)n);
    }
    return n;
}

/* Queues one message compressed (RSV1 set), compressing straight into the
 * output buffer. Without context takeover a message that does not shrink
 * goes out plain instead. */
static int queue_deflated(struct gh_ws_conn *ws, int opcode, const void *data, size_t len)
{
    uint8_t hdr[GH_WS_MAX_HEADER];
    size_t bound = gh_deflate_bound(len), hlen;
    struct evbuffer_iovec v;
    uint8_t *base;
    long n;

    if (bound > SIZE_MAX - GH_WS_MAX_HEADER ||
        (base = out_reserve(ws, GH_WS_MAX_HEADER + bound, &v)) == NULL)
        return GH_ENOMEM;
    n = deflate_into(ws, data, len, base + GH_WS_MAX_HEADER, bound);
    if (n < 0) {
        if (ws->defl != NULL) {     /* a failed stream is not usable again */
            gh_deflater_free(ws->defl);
            ws->defl = NULL;
        }
        return (int)n;
    }
    if (!(ws->pmd_bits & PMD_TAKEOVER) && (size_t)n >= len)
        return queue_frame(ws, opcode, data, len);     /* nothing reserved is committed */
    hlen = gh_ws_frame_header_ex(hdr, opcode, true, true, (uint64_t)n);
    memmove(base + hlen, base + GH_WS_MAX_HEADER, (size_t)n);
    memcpy(base, hdr, hlen);
    if (out_commit(ws, &v, hlen + (size_t)n) != GH_OK)
        return GH_ENOMEM;
    need_flush(ws);
    return GH_OK;
}

/* Reading stops while the output is over its high water (paused) or while
 * another worker is behind with what this one published (hub_paused). */
static bool read_blocked(const struct gh_ws_conn *ws)
{
    return ws->paused || ws->hub_paused;
}

/* Direct: makes c->timer wait for what the connection needs now: readable
 * unless reading is paused or the peer has shut its side, writable while
 * the socket is full. Re-registering an event cancels its activation: a
 * wake() (EV_TIMEOUT) still owed is made again. */
static void set_io(struct gh_ws_conn *ws)
{
    gh_conn *c = ws->c;
    uint8_t want = 0;
    int owed;

    if (!read_blocked(ws) && !ws->peer_eof)
        want |= EV_READ;
    if (ws->writing)
        want |= EV_WRITE;
    if (want == ws->io_ev)
        return;
    owed = event_pending(c->timer, EV_TIMEOUT, NULL);
    event_del(c->timer);
    event_assign(c->timer, c->loop->base, c->fd, (short)(want | EV_PERSIST), on_io, ws);
    if (want != 0)
        event_add(c->timer, NULL);
    ws->io_ev = want;
    if (owed)
        wake(ws);
}

static void pause_reading(struct gh_ws_conn *ws)
{
    ws->paused = true;
    if (ws->direct) {
        set_io(ws);
        return;
    }
    bufferevent_disable(ws->c->bev, EV_READ);
    /* on_write fires once the output is down to a quarter of the backlog */
    bufferevent_setwatermark(ws->c->bev, EV_WRITE, (size_t)(high_water(ws) / 2), 0);
}

static void resume_reading(struct gh_ws_conn *ws)
{
    ws->paused = false;
    if (ws->direct) {
        set_io(ws);
        return;
    }
    bufferevent_setwatermark(ws->c->bev, EV_WRITE, 0, 0);
    if (!read_blocked(ws))
        bufferevent_enable(ws->c->bev, EV_READ);
}

/* The hub said another worker is behind with this loop's publishes, and
 * ws's message made one: ws is not read until the hub says it caught up. */
static void hub_pause(struct gh_ws_conn *ws)
{
    ws->hub_paused = true;
    GH_STAT_ADD(ws->c->loop->stats.ws_hub_paused, 1);
    if (ws->direct)
        set_io(ws);
    else
        bufferevent_disable(ws->c->bev, EV_READ);
}

/* Leaves OPEN: queues our close frame and starts the close timeout.
 * fail: the connection failed (RFC 6455 §7.1.7): do not wait for the
 * peer's close, just flush and go. */
static void begin_close(struct gh_ws_conn *ws, uint16_t code, const char *reason,
                        size_t reason_len, enum ws_why why, bool fail)
{
    uint8_t payload[GH_WS_MAX_CONTROL];
    size_t n;

    if (ws->state != WS_OPEN)
        return;
    n = gh_ws_close_payload(payload, code, reason, reason_len);
    (void)queue_frame(ws, GH_WS_OP_CLOSE, payload, n);
    gh_stats_ws_close(&ws->c->loop->stats, code);
    ws->close_code = code;
    ws->close_why = (uint8_t)why;
    ws->state = fail ? WS_FLUSHING : WS_CLOSE_SENT;
    ws->next_ping_ms = ws->pong_due_ms = 0;
    ws->close_due_ms = now_ms() + ws->wc->close_timeout_ms;
    free_message(ws);
    if (read_blocked(ws)) {
        ws->hub_paused = false;
        resume_reading(ws);     /* read on for the peer's close (or its EOF) */
    }
    wake(ws);
}

/* Fails the connection with a close code (protocol errors, slow consumer). */
static void fail_conn(struct gh_ws_conn *ws, uint16_t code, enum ws_why why)
{
    begin_close(ws, code, why_text[why], strlen(why_text[why]), why, true);
}

/* The TCP connection is over (or must be): free at the next safe point. */
static void kill_conn(struct gh_ws_conn *ws)
{
    if (ws->state == WS_OPEN) {
        ws->close_code = GH_WS_CLOSE_ABNORMAL;
        ws->close_why = WHY_NONE;
        gh_stats_ws_close(&ws->c->loop->stats, GH_WS_CLOSE_ABNORMAL);
    }
    ws->state = WS_LINGER;
    ws->dead = true;
    wake(ws);
}

/* True when queueing len more bytes would pass the send backlog. A message
 * larger than the whole backlog still goes out on an empty queue. */
static bool over_backlog(struct gh_ws_conn *ws, size_t len)
{
    size_t queued = out_len(ws);
    uint64_t limit = ws->wc->send_backlog;

    if (queued == 0)
        return false;
    if (queued > limit || len > limit - queued) {
        GH_LOG(GH_LOG_WARN, "conn #%llu %s: slow consumer: %zu bytes queued and %zu more "
               "would pass send_backlog %llu; closing with 1008",
               (unsigned long long)ws->c->id, gh_conn_client_text(ws->c), queued, len,
               (unsigned long long)limit);
        GH_STAT_ADD(ws->c->loop->stats.ws_slow_consumers, 1);
        fail_conn(ws, GH_WS_CLOSE_POLICY, WHY_SLOW_CONSUMER);
        return true;
    }
    return false;
}

int gh_ws_conn_send(struct gh_ws_conn *ws, int opcode, const void *data, size_t len)
{
    gh_utf8 u;

    if ((opcode != GH_WS_OP_TEXT && opcode != GH_WS_OP_BINARY) ||
        (len > 0 && data == NULL) || len > ((size_t)1 << 62))
        return GH_EINVAL;
    if (opcode == GH_WS_OP_TEXT) {
        gh_utf8_init(&u);
        if (gh_utf8_feed(&u, data, len) != 0 || !gh_utf8_is_complete(&u))
            return GH_EINVAL;
    }
    if (ws->state != WS_OPEN)
        return -ENOTCONN;
    if (over_backlog(ws, len + GH_WS_MAX_HEADER))
        return -ENOBUFS;
    if ((compresses(ws, len) ? queue_deflated(ws, opcode, data, len)
                             : queue_frame(ws, opcode, data, len)) != GH_OK)
        return GH_ENOMEM;
    GH_STAT_ADD(ws->c->loop->stats.ws_messages_out, 1);
    GH_STAT_ADD(ws->c->loop->stats.ws_bytes_out, len);
    return GH_OK;
}

/* m compressed for this connection's compressor settings (a
 * gh_topic_make_fn): a new frame, or NULL with *err 0 when compressing does
 * not shrink it (the plain frame goes instead). */
static gh_frame_ref *make_deflated(void *arg, const gh_topic_msg *m, int *err)
{
    struct gh_ws_conn *ws = arg;
    size_t bound = gh_deflate_bound(m->len), hlen;
    uint8_t hdr[GH_WS_MAX_HEADER];
    gh_frame_ref *f, *g;
    long n;

    if (bound > SIZE_MAX - GH_WS_MAX_HEADER ||
        (f = gh_frame_ref_new(GH_WS_MAX_HEADER + bound)) == NULL) {
        *err = GH_ENOMEM;
        return NULL;
    }
    n = deflate_into(ws, m->data, m->len, f->data + GH_WS_MAX_HEADER, bound);
    if (n < 0 || (size_t)n >= m->len) {
        free(f);
        *err = n < 0 ? (int)n : 0;
        return NULL;
    }
    hlen = gh_ws_frame_header_ex(hdr, m->opcode, true, true, (uint64_t)n);
    memmove(f->data + hlen, f->data + GH_WS_MAX_HEADER, (size_t)n);
    memcpy(f->data, hdr, hlen);
    f->len = hlen + (size_t)n;
    /* it may sit in a thousand queues: give back what it did not use */
    if (bound - (size_t)n > 4096 && (g = realloc(f, sizeof(*f) + f->len)) != NULL)
        f = g;
    return f;
}

/* The compressed frame of m for this connection's compressor settings,
 * made once for every subscriber with the same settings (on every worker
 * delivering m: gh_topic_msg_variant); the plain frame when compressing
 * does not shrink it, also kept under the settings, so that the others do
 * not try. Returns a frame the caller holds a reference on (drop it with
 * gh_frame_ref_release), or NULL on an error. */
static gh_frame_ref *shared_deflated(struct gh_ws_conn *ws, gh_topic_msg *m)
{
    unsigned key = (unsigned)ws->wc->compression_level << 8 | (ws->pmd_bits & PMD_BITS);
    int err;

    return gh_topic_msg_variant(m, key, make_deflated, ws, &err);
}

int gh_ws_conn_send_msg(void *arg, gh_topic_msg *m)
{
    struct gh_ws_conn *ws = arg;
    gh_frame_ref *f;
    int rc = GH_OK;

    if (ws->state != WS_OPEN)
        return -ENOTCONN;
    if (compresses(ws, m->len) && (ws->pmd_bits & PMD_TAKEOVER)) {
        /* this connection's compressor has its own window: its own copy */
        if (over_backlog(ws, m->len + GH_WS_MAX_HEADER))
            return -ENOBUFS;
        if (queue_deflated(ws, m->opcode, m->data, m->len) != GH_OK)
            return GH_ENOMEM;
    } else {
        if (compresses(ws, m->len)) {
            if ((f = shared_deflated(ws, m)) == NULL)
                return GH_ENOMEM;
        } else {
            if ((f = gh_topic_msg_plain(m)) == NULL)
                return GH_ENOMEM;
            f->refs++;
        }
        if (over_backlog(ws, f->len))
            rc = -ENOBUFS;
        else if (out_add_frame(ws, f) != GH_OK)
            rc = GH_ENOMEM;
        else
            need_flush(ws);
        gh_frame_ref_release(NULL, 0, f);     /* ours */
        if (rc != GH_OK)
            return rc;
    }
    GH_STAT_ADD(ws->c->loop->stats.ws_messages_out, 1);
    GH_STAT_ADD(ws->c->loop->stats.ws_bytes_out, m->len);
    return GH_OK;
}

uint64_t gh_ws_conn_buffered(const struct gh_ws_conn *ws)
{
    return out_len(ws);
}

int gh_ws_conn_close(struct gh_ws_conn *ws, uint16_t code, const char *reason,
                     size_t reason_len)
{
    gh_utf8 u;

    if (!gh_ws_close_code_is_valid(code) || (reason_len > 0 && reason == NULL))
        return GH_EINVAL;
    /* gh_ws_close_payload() cuts a long reason at a code point boundary */
    gh_utf8_init(&u);
    if (gh_utf8_feed(&u, (const uint8_t *)reason, reason_len) != 0 || !gh_utf8_is_complete(&u))
        return GH_EINVAL;
    if (ws->state != WS_OPEN)
        return -ENOTCONN;
    begin_close(ws, code, reason, reason_len, WHY_NONE, false);
    return GH_OK;
}

/* ---- settling: the deferred close callback and free ---------------------- */

static void notify_close(struct gh_ws_conn *ws, const char *reason, size_t reason_len)
{
    ws->notified = true;
    gh_topics_unsubscribe_all(topics_of(ws), &ws->subs);
    gh_tstate_conn_gone(ws->c->loop->tstate, &ws->tsc);     /* farewells to the others */
    gh_plugin_route_close(ws->rt, ws, ws->close_code, reason, reason_len);
}

/* Runs what was deferred. Call only from this connection's own event
 * callbacks. Returns true when the connection was freed. */
static bool settle(struct gh_ws_conn *ws)
{
    if (ws->opened && !ws->notified && ws->state != WS_OPEN)
        notify_close(ws, why_text[ws->close_why],
                     why_text[ws->close_why] != NULL ? strlen(why_text[ws->close_why]) : 0);
    if (ws->dead) {
        gh_conn_free(ws->c);
        return true;
    }
    return false;
}

/* ---- reading ------------------------------------------------------------ */

static void deliver(struct gh_ws_conn *ws, int opcode, const uint8_t *data, size_t len)
{
    GH_STAT_ADD(ws->c->loop->stats.ws_messages_in, 1);
    GH_STAT_ADD(ws->c->loop->stats.ws_bytes_in, len);
    ws->c->loop->hub_congested = false;
    gh_plugin_route_message(ws->rt, ws, opcode, data, len);
    if (ws->c->loop->hub_congested && ws->state == WS_OPEN && !ws->dead)
        hub_pause(ws);
}

/* Appends a chunk of a split message. Returns 0 or GH_ENOMEM. */
static int append(struct gh_ws_conn *ws, const uint8_t *data, size_t len)
{
    struct ws_msg *m = ws->msg;
    size_t have = m != NULL ? m->len : 0;
    size_t cap = m != NULL ? m->cap : 0;

    if (len == 0)
        return GH_OK;
    if (len > cap - have) {
        size_t need = have + len;
        size_t ncap = cap ? cap * 2 : MSG_MIN_CAP;

        if (ncap < need)
            ncap = need;
        if (ws->wc->max_message != 0 && ncap > ws->wc->max_message && need <= ws->wc->max_message)
            ncap = (size_t)ws->wc->max_message;
        if (ncap > SIZE_MAX - sizeof(*m) || (m = realloc(ws->msg, sizeof(*m) + ncap)) == NULL)
            return GH_ENOMEM;
        m->len = have;          /* a fresh block has none */
        m->cap = ncap;
        if (have == 0)
            m->z = NULL;
        ws->msg = m;
    }
    memcpy(m->data + m->len, data, len);
    m->len += len;
    return GH_OK;
}

/* Makes ws->msg, or more room in it, for inflated bytes: doubling from
 * about four times the compressed chunk, never beyond max_message. Returns
 * false when out of memory. */
static bool grow_inflated(struct gh_ws_conn *ws, size_t hint)
{
    struct ws_msg *m = ws->msg;
    uint64_t max = ws->wc->max_message;
    size_t cap = m != NULL ? m->cap : 0, ncap;

    if (cap == 0)
        ncap = hint <= SIZE_MAX / 4 && hint * 4 > MSG_MIN_CAP ? hint * 4 : MSG_MIN_CAP;
    else
        ncap = cap <= SIZE_MAX / 2 ? cap * 2 : SIZE_MAX;
    if (max != 0 && ncap > max)
        ncap = (size_t)max;
    if (ncap > SIZE_MAX - sizeof(*m) || (m = realloc(m, sizeof(*m) + ncap)) == NULL)
        return false;
    if (cap == 0) {
        m->len = 0;
        m->z = NULL;
        gh_utf8_init(&m->u);
    }
    m->cap = ncap;
    ws->msg = m;
    return true;
}

/* A chunk of a compressed message: inflated into ws->msg, which is
 * delivered at the message's end. max_message bounds the inflated size as
 * it grows (a bomb is stopped having allocated no more than max_message);
 * text is checked as it is inflated. */
static void on_compressed(struct gh_ws_conn *ws, const gh_ws_event *ev)
{
    gh_stats *st = &ws->c->loop->stats;
    const uint8_t *in = ev->data;
    size_t left = ev->len;
    struct ws_msg *m;

    if (ws->msg == NULL) {
        gh_zpool *zp = zpool_of(ws);

        if (zp == NULL || !grow_inflated(ws, ev->len) || (ws->msg->z = gh_inflater_get(zp)) == NULL)
            goto nomem;
    }
    GH_STAT_ADD(st->ws_inflate_in, ev->len);
    for (;;) {
        uint8_t probe, *out;
        size_t room, used, made;
        int rc;

        m = ws->msg;
        out = m->data + m->len;
        room = m->cap - m->len;
        if (room == 0 && m->cap < ws->wc->max_message) {
            if (!grow_inflated(ws, 0))
                goto nomem;
            continue;
        }
        if (room == 0) {
            out = &probe;       /* at max_message: is there more? */
            room = 1;
        }
        rc = gh_inflate(m->z, in, left, ev->message_end, out, room, &used, &made);
        if (rc == GH_EPROTO || (rc == GH_EAGAIN && used == 0 && made == 0)) {
            GH_LOG(GH_LOG_INFO, "conn #%llu %s: websocket message is not valid DEFLATE data; "
                   "closing with 1007", (unsigned long long)ws->c->id, gh_conn_client_text(ws->c));
            fail_conn(ws, GH_WS_CLOSE_INVALID_DATA, WHY_BAD_DEFLATE);
            return;
        }
        if (out == &probe && made > 0) {
            GH_LOG(GH_LOG_INFO, "conn #%llu %s: websocket message inflates past max_message %llu; "
                   "closing with 1009", (unsigned long long)ws->c->id, gh_conn_client_text(ws->c),
                   (unsigned long long)ws->wc->max_message);
            fail_conn(ws, GH_WS_CLOSE_TOO_BIG, WHY_TOO_BIG);
            return;
        }
        if (made > 0 && ev->opcode == GH_WS_OP_TEXT && gh_utf8_feed(&m->u, out, made) != 0) {
            fail_conn(ws, GH_WS_CLOSE_INVALID_DATA, WHY_INVALID_UTF8);
            return;
        }
        m->len += made;
        in += used;
        left -= used;
        if (rc == GH_OK)
            break;
    }
    if (!ev->message_end)
        return;
    m = ws->msg;
    if (ev->opcode == GH_WS_OP_TEXT && !gh_utf8_is_complete(&m->u)) {
        fail_conn(ws, GH_WS_CLOSE_INVALID_DATA, WHY_INVALID_UTF8);
        return;
    }
    GH_STAT_ADD(st->ws_inflations, 1);
    GH_STAT_ADD(st->ws_inflate_out, m->len);
    gh_inflater_put(ws->c->loop->zpool, m->z);     /* before the plugin runs */
    m->z = NULL;
    deliver(ws, ev->opcode, m->data, m->len);
    free_message(ws);
    return;
nomem:
    GH_LOG(GH_LOG_ERROR, "conn #%llu %s: out of memory inflating a message",
           (unsigned long long)ws->c->id, gh_conn_client_text(ws->c));
    fail_conn(ws, GH_WS_CLOSE_INTERNAL_ERROR, WHY_OUT_OF_MEMORY);
}

static void on_data(struct gh_ws_conn *ws, const gh_ws_event *ev)
{
    if (ws->state != WS_OPEN)
        return;                 /* after our close: drop (RFC 6455 §5.5.1) */
    if (ev->compressed) {
        on_compressed(ws, ev);
        return;
    }
    if ((ws->msg == NULL || ws->msg->len == 0) && ev->message_end) {
        deliver(ws, ev->opcode, ev->data, ev->len);     /* whole: no copy */
        return;
    }
    if (append(ws, ev->data, ev->len) != GH_OK) {
        GH_LOG(GH_LOG_ERROR, "conn #%llu %s: out of memory reassembling a message",
               (unsigned long long)ws->c->id, gh_conn_client_text(ws->c));
        fail_conn(ws, GH_WS_CLOSE_INTERNAL_ERROR, WHY_OUT_OF_MEMORY);
        return;
    }
    if (ev->message_end) {
        deliver(ws, ev->opcode, ws->msg->data, ws->msg->len);
        free_message(ws);       /* split messages are rare: hold no memory idle */
    }
}

/* Our last byte is out: shut our side and let the peer close (RFC 6455
 * §7.1.1: the server closes the TCP connection first), dropping what it
 * still sends so that it gets a FIN and not a reset. */
static void finish_flush(struct gh_ws_conn *ws)
{
    evutil_socket_t fd = ws->direct ? ws->c->fd : bufferevent_getfd(ws->c->bev);

    if (ws->peer_eof || fd < 0 || shutdown(fd, SHUT_WR) != 0) {
        kill_conn(ws);
        return;
    }
    ws->state = WS_LINGER;
    ws->close_due_ms = now_ms() + ws->wc->close_timeout_ms;
    if (ws->direct)
        set_io(ws);
    else
        bufferevent_enable(ws->c->bev, EV_READ);
    rearm(ws, now_ms());
}

static void on_close_frame(struct gh_ws_conn *ws, const gh_ws_event *ev)
{
    uint8_t payload[GH_WS_MAX_CONTROL];

    if (ws->state == WS_OPEN) {
        /* echo the code (RFC 6455 §5.5.1); an empty close gets an empty one */
        size_t n = gh_ws_close_payload(payload, ev->close_code, NULL, 0);
        (void)queue_frame(ws, GH_WS_OP_CLOSE, payload, n);
        gh_stats_ws_close(&ws->c->loop->stats, ev->close_code);
        ws->state = WS_FLUSHING;
        ws->close_code = ev->close_code;
        ws->next_ping_ms = ws->pong_due_ms = 0;
        ws->close_due_ms = now_ms() + ws->wc->close_timeout_ms;
        free_message(ws);
        if (ws->opened && !ws->notified)
            notify_close(ws, (const char *)ev->close_reason, ev->close_reason_len);
        rearm(ws, now_ms());
        return;
    }
    if (ws->state == WS_CLOSE_SENT) {
        ws->state = WS_FLUSHING;    /* the handshake is complete */
        if (out_len(ws) == 0)
            finish_flush(ws);
    }
}

static void protocol_error(struct gh_ws_conn *ws, uint16_t code)
{
    enum ws_why why = code == GH_WS_CLOSE_INVALID_DATA ? WHY_INVALID_UTF8 :
                      code == GH_WS_CLOSE_TOO_BIG ? WHY_TOO_BIG : WHY_PROTOCOL_ERROR;

    GH_LOG(GH_LOG_INFO, "conn #%llu %s: websocket %s; closing with %u",
           (unsigned long long)ws->c->id, gh_conn_client_text(ws->c), why_text[why],
           (unsigned)code);
    if (ws->state == WS_OPEN)
        fail_conn(ws, code, why);
    else
        kill_conn(ws);
}

/* Handles one event. Returns false when reading must stop here. */
static bool on_event_frame(struct gh_ws_conn *ws, const gh_ws_event *ev)
{
    switch (ev->type) {
    case GH_WS_EV_DATA:
        on_data(ws, ev);
        break;
    case GH_WS_EV_PING:
        if (ws->state == WS_OPEN)
            (void)queue_frame(ws, GH_WS_OP_PONG, ev->data, ev->len);
        break;
    case GH_WS_EV_PONG:
        ws->pong_due_ms = 0;
        break;
    case GH_WS_EV_CLOSE:
        on_close_frame(ws, ev);
        return false;
    default:
        break;
    }
    if (ws->dead || ws->state >= WS_FLUSHING)
        return false;
    if (ws->state == WS_OPEN && out_len(ws) > high_water(ws)) {
        pause_reading(ws);
        return false;
    }
    return !ws->hub_paused;
}

/* A control frame is split across reads: the parser needs storage for its
 * payload until the frame ends (it hands it back with the event). Lent only
 * then, so an idle connection holds none. Returns false when out of memory
 * (the connection is failing). */
static bool lend_control_storage(struct gh_ws_conn *ws, gh_ws_parser *p)
{
    if ((p->ctrl = malloc(GH_WS_MAX_CONTROL)) != NULL)
        return true;
    GH_LOG(GH_LOG_ERROR, "conn #%llu %s: out of memory reading a control frame",
           (unsigned long long)ws->c->id, gh_conn_client_text(ws->c));
    fail_conn(ws, GH_WS_CLOSE_INTERNAL_ERROR, WHY_OUT_OF_MEMORY);
    return false;
}

/* After parsing with p (ws->parser, or a new one on the stack): a parser
 * at rest is dropped, so an idle connection holds none; one with a frame
 * or a message cut off (or closed, or failed) is kept for the next bytes. */
static void keep_parser(struct gh_ws_conn *ws, gh_ws_parser *p)
{
    if (gh_ws_parser_at_rest(p)) {
        free(ws->parser);       /* p itself, or NULL */
        ws->parser = NULL;
        return;
    }
    if (ws->parser != NULL)
        return;
    if ((ws->parser = malloc(sizeof(*p))) != NULL) {
        *ws->parser = *p;
        return;
    }
    free(p->ctrl);
    GH_LOG(GH_LOG_ERROR, "conn #%llu %s: out of memory keeping a frame's state",
           (unsigned long long)ws->c->id, gh_conn_client_text(ws->c));
    if (!ws->dead && ws->state == WS_OPEN)
        fail_conn(ws, GH_WS_CLOSE_INTERNAL_ERROR, WHY_OUT_OF_MEMORY);
    else
        kill_conn(ws);
}

/* True while what arrives is only dropped. */
static bool dropping(const struct gh_ws_conn *ws)
{
    return ws->dead || ws->state >= WS_FLUSHING;
}

/* Parses and handles buf[0..n) in place until it is used up or reading must
 * stop (*go false). Returns the bytes used. */
static size_t parse_some(struct gh_ws_conn *ws, uint8_t *buf, size_t n, bool *go)
{
    gh_ws_parser fresh, *p = ws->parser;
    size_t off = 0;

    if (p == NULL) {
        /* at rest: equivalent to a new one (gh_ws_parser_at_rest()) */
        p = &fresh;
        gh_ws_parser_init(p, ws->wc->max_message);
        p->rsv1_ok = ws->pmd_bits != 0;
    }
    *go = true;
    while (*go && off < n) {
        gh_ws_event ev;
        long rc = gh_ws_parse(p, buf + off, n - off, &ev);

        if (rc < 0) {
            free(ev.release);
            protocol_error(ws, p->error_code);
            *go = false;
            break;
        }
        off += (size_t)rc;
        if (ev.type == GH_WS_EV_NEED_BUFFER)
            *go = lend_control_storage(ws, p);
        else if (ev.type != GH_WS_EV_NONE)
            *go = on_event_frame(ws, &ev);
        free(ev.release);       /* the control frame's storage, if it was split */
    }
    keep_parser(ws, p);
    return off;
}

/* Parses and handles buffered input (the bufferevent's, or on a plain
 * socket what an earlier read left) until it is used up or reading must
 * stop. Frames are parsed in place, one contiguous segment at a time. */
static void process_input(struct gh_ws_conn *ws)
{
    struct evbuffer *in = ws->direct ? ws->in : bufferevent_get_input(ws->c->bev);

    while (in != NULL) {
        size_t n, off;
        uint8_t *buf;
        bool go;

        if (dropping(ws)) {
            evbuffer_drain(in, evbuffer_get_length(in));
            break;
        }
        if (read_blocked(ws) || (n = evbuffer_get_contiguous_space(in)) == 0)
            break;
        if ((buf = evbuffer_pullup(in, (ev_ssize_t)n)) == NULL)
            break;
        off = parse_some(ws, buf, n, &go);
        evbuffer_drain(in, off);
        if (!go && !dropping(ws))
            break;              /* paused: the rest waits in the buffer */
    }
    if (ws->direct && ws->in != NULL && evbuffer_get_length(ws->in) == 0) {
        evbuffer_free(ws->in);  /* an idle connection holds no input buffer */
        ws->in = NULL;
    }
}

/* Direct: the socket is readable. Bytes go to the loop's read buffer and
 * are parsed there; only what a read leaves unparsed (a split frame
 * header, input held back by backpressure) is copied to the connection's
 * own buffer, and while that exists reads append to it. */
static void read_ready(struct gh_ws_conn *ws)
{
    gh_conn *c = ws->c;
    uint8_t *buf = c->loop->wsl->rbuf;
    ssize_t n;
    size_t off;
    bool go;

    if (ws->in != NULL)
        n = evbuffer_read(ws->in, c->fd, MAX_SINGLE_READ);
    else
        n = recv(c->fd, buf, MAX_SINGLE_READ, 0);
    if (n == 0) {
        if (ws->state == WS_FLUSHING && out_len(ws) > 0) {
            ws->peer_eof = true;    /* a peer that half-closes after its close
                                       frame still gets ours */
            set_io(ws);
            return;
        }
        kill_conn(ws);
        return;
    }
    if (n < 0) {
        (void)socket_failed(ws);
        return;
    }
    ws->last_rx_ms = now_ms();
    if (ws->in != NULL) {
        process_input(ws);
        return;
    }
    if (dropping(ws))
        return;
    off = parse_some(ws, buf, (size_t)n, &go);
    if (off < (size_t)n && !dropping(ws) &&
        ((ws->in = evbuffer_new()) == NULL ||
         evbuffer_add(ws->in, buf + off, (size_t)n - off) != 0)) {
        GH_LOG(GH_LOG_ERROR, "conn #%llu %s: out of memory keeping input",
               (unsigned long long)c->id, gh_conn_client_text(c));
        fail_conn(ws, GH_WS_CLOSE_INTERNAL_ERROR, WHY_OUT_OF_MEMORY);
    }
}

/* ---- bufferevent and timer callbacks -------------------------------------- */

/* The output shrank: finish a close, or resume reading. */
static void output_progress(struct gh_ws_conn *ws)
{
    size_t len = out_len(ws);

    if (ws->state == WS_FLUSHING && len == 0) {
        finish_flush(ws);
    } else if (ws->paused && ws->state == WS_OPEN && len <= high_water(ws) / 2) {
        resume_reading(ws);
        process_input(ws);
    }
}

/* After a failed read or write: true when the socket is broken (the
 * connection is then dying), false when it only would block. */
static bool socket_failed(struct gh_ws_conn *ws)
{
    int e = EVUTIL_SOCKET_ERROR();

    if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
        return false;
    if (ws->state == WS_OPEN)
        GH_LOG(GH_LOG_DEBUG, "conn #%llu %s: %s", (unsigned long long)ws->c->id,
               gh_conn_client_text(ws->c), evutil_socket_error_to_string(e));
    kill_conn(ws);
    return true;
}

/* Writes the queued output to the socket ourselves (see need_flush());
 * what the socket does not take waits for the socket to be writable. */
static void direct_flush(struct gh_ws_conn *ws)
{
    struct gh_outq *out = ws->out;
    ssize_t n;

    if (ws->writing || ws->dead || out == NULL || gh_outq_len(out) == 0)
        return;
    n = gh_outq_sendmsg(out, ws->c->fd);
    if (n < 0 && socket_failed(ws))
        return;
    if (gh_outq_len(out) > 0) {
        /* the socket is full: wait until it is writable, and for no longer
         * than the send timeout */
        uint64_t now = now_ms();
        ws->writing = true;
        ws->write_due_ms = now + send_timeout_ms(ws);
        set_io(ws);
        rearm(ws, now);
        return;
    }
    out_put(ws);
    output_progress(ws);
}

/* Direct: the socket takes more. */
static void write_ready(struct gh_ws_conn *ws)
{
    ssize_t n = ws->out != NULL ? gh_outq_sendmsg(ws->out, ws->c->fd) : 0;

    if (n < 0 && socket_failed(ws))
        return;
    if (n > 0)
        ws->write_due_ms = now_ms() + send_timeout_ms(ws);
    if (out_len(ws) == 0) {
        ws->writing = false;    /* back to writing it ourselves */
        set_io(ws);
        out_put(ws);
    }
    output_progress(ws);
}

/* Every callback of ours starts with enter() and ends with leave(), which
 * flushes what was queued meanwhile (repeatedly: finishing a flush may
 * resume reading and queue more). */
static void enter(struct gh_ws_conn *ws)
{
    ws->in_cb = true;
}

static void leave(struct gh_ws_conn *ws)
{
    while (ws->flush_due && !ws->dead) {
        ws->flush_due = false;
        direct_flush(ws);
    }
    ws->in_cb = false;
}

/* The loop's flush event: writes the listed connections' output for at
 * most FLUSH_BUDGET_NS per loop turn (the clock is read every 64
 * connections). The list is taken whole first: what is listed while it
 * runs (a resumed reader publishing, say) waits for the next turn. A
 * publish of a 1 KiB message to 10,000 subscribers costs some 50 ms of
 * sendmsg() (copying into the sockets' buffers); in slices, with the rest
 * behind a zero timer, the loop polls in between and other clients are
 * served within a slice's time, not the whole fan-out's. A 32-byte
 * message to 1,000 subscribers takes well under one slice. */
#define FLUSH_BUDGET_NS 2000000

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_flush_all(evutil_socket_t fd, short what, void *arg)
{
    static const struct timeval now = { 0, 0 };
    gh_loop *loop = arg;
    struct gh_ws_conn *list = loop->ws_flush, *ws, **tail;
    uint64_t t0 = mono_ns();
    unsigned n = 0;

    (void)fd;
    (void)what;
    /* other workers first: what this turn posted them (a publish's
     * message for their subscribers) goes out while these sockets are
     * written, not after */
    gh_loop_wake_now(loop);
    loop->ws_flush = NULL;
    if (list != NULL)
        list->fl_prev = &list;
    while ((ws = list) != NULL) {
        if ((++n & 63) == 0 && mono_ns() - t0 > FLUSH_BUDGET_NS)
            break;
        flush_unlist(ws);
        enter(ws);
        leave(ws);
        settle(ws);             /* may free ws */
    }
    if (list == NULL)
        return;
    GH_STAT_ADD(loop->stats.ws_flush_slices, 1);
    /* the rest goes first next time, before what was listed meanwhile */
    for (tail = &list; *tail != NULL; tail = &(*tail)->fl_next)
        ;
    if ((*tail = loop->ws_flush) != NULL)
        loop->ws_flush->fl_prev = tail;
    loop->ws_flush = list;
    list->fl_prev = &loop->ws_flush;
    event_add(loop->ws_flush_ev, &now);     /* after the next poll */
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct gh_ws_conn *ws = arg;

    (void)bev;
    enter(ws);
    ws->last_rx_ms = now_ms();
    process_input(ws);
    leave(ws);
    settle(ws);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct gh_ws_conn *ws = arg;

    (void)bev;
    enter(ws);
    output_progress(ws);
    leave(ws);
    settle(ws);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct gh_ws_conn *ws = arg;

    (void)bev;
    if ((what & BEV_EVENT_EOF) && !(what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) &&
        ws->state == WS_FLUSHING && out_len(ws) > 0) {
        /* a peer that half-closes after its close frame still gets ours */
        ws->peer_eof = true;
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        GH_LOG(GH_LOG_INFO, "conn #%llu %s: websocket send timeout, closing",
               (unsigned long long)ws->c->id, gh_conn_client_text(ws->c));
    else if ((what & BEV_EVENT_ERROR) && ws->state == WS_OPEN)
        GH_LOG(GH_LOG_DEBUG, "conn #%llu %s: %s", (unsigned long long)ws->c->id,
               gh_conn_client_text(ws->c), evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    kill_conn(ws);
    settle(ws);
}

/* Direct: c->timer is the socket's event as well as the timer's: readable,
 * writable, and EV_TIMEOUT for a deadline or a wake(). */
static void on_io(evutil_socket_t fd, short what, void *arg)
{
    struct gh_ws_conn *ws = arg;

    if (what & (EV_READ | EV_WRITE)) {
        enter(ws);
        if (what & EV_WRITE)
            write_ready(ws);
        if ((what & EV_READ) && !ws->dead && !read_blocked(ws) && !ws->peer_eof)
            read_ready(ws);
        leave(ws);
        if (settle(ws))
            return;
        if (what & EV_WRITE)
            rearm(ws, now_ms());    /* the send timeout moved or went */
    }
    if (what & EV_TIMEOUT)
        on_timer(fd, what, arg);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct gh_ws_conn *ws = arg;
    const gh_websocket_conf *wc = ws->wc;
    uint64_t now = now_ms();

    (void)fd;
    (void)what;
    if (settle(ws))
        return;
    enter(ws);
    if (ws->direct && ws->writing && ws->write_due_ms != 0 && now >= ws->write_due_ms) {
        GH_LOG(GH_LOG_INFO, "conn #%llu %s: websocket send timeout, closing",
               (unsigned long long)ws->c->id, gh_conn_client_text(ws->c));
        kill_conn(ws);
    } else if (ws->state == WS_OPEN) {
        if (ws->pong_due_ms != 0 && now >= ws->pong_due_ms) {
            GH_LOG(GH_LOG_INFO, "conn #%llu %s: no pong within %llums; dropping the connection",
                   (unsigned long long)ws->c->id, gh_conn_client_text(ws->c),
                   (unsigned long long)wc->pong_timeout_ms);
            kill_conn(ws);
        } else if (wc->idle_timeout_ms != 0 && now >= ws->last_rx_ms + wc->idle_timeout_ms) {
            GH_LOG(GH_LOG_INFO, "conn #%llu %s: nothing received for %llums; closing with 1001",
                   (unsigned long long)ws->c->id, gh_conn_client_text(ws->c),
                   (unsigned long long)wc->idle_timeout_ms);
            begin_close(ws, GH_WS_CLOSE_GOING_AWAY, why_text[WHY_IDLE],
                        strlen(why_text[WHY_IDLE]), WHY_IDLE, false);
        } else if (ws->next_ping_ms != 0 && now >= ws->next_ping_ms) {
            (void)queue_frame(ws, GH_WS_OP_PING, NULL, 0);
            if (ws->pong_due_ms == 0)
                ws->pong_due_ms = now + wc->pong_timeout_ms;
            ws->next_ping_ms = now + wc->ping_interval_ms;
        }
    } else if (now >= ws->close_due_ms) {
        GH_LOG(GH_LOG_DEBUG, "conn #%llu %s: websocket close timeout; closing the connection",
               (unsigned long long)ws->c->id, gh_conn_client_text(ws->c));
        kill_conn(ws);
    }
    leave(ws);
    if (settle(ws))
        return;
    rearm(ws, now);
}

/* ---- the handshake -------------------------------------------------------- */

static bool name_is(const gh_http1_field *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && strncasecmp(f->name, name, n) == 0;
}

/* How many fields are named name; the first in *first. */
static size_t count_fields(const gh_http1_head *h, const char *name,
                           const gh_http1_field **first)
{
    size_t n = 0;

    *first = NULL;
    for (size_t i = 0; i < h->nfields; i++) {
        if (name_is(&h->fields[i], name)) {
            if (n++ == 0)
                *first = &h->fields[i];
        }
    }
    return n;
}

static void refuse(gh_request *r, int status, const char *extra)
{
    gh_resp_head h;
    char body[512];
    size_t n = gh_resp_error_body(status, body, sizeof(body));

    if (status == 400 || status >= 500)
        r->c->close_after = true;
    gh_req_begin(r, &h, status);
    gh_resp_add_raw(&h, "Content-Type: text/html; charset=utf-8\r\n", 40);
    if (extra != NULL)
        gh_resp_add_raw(&h, extra, strlen(extra));
    gh_req_send(r, &h, body, n);
}

static gh_ws_origins origins_mode(gh_origins_mode m)
{
    switch (m) {
    case GH_ORIGINS_ANY:
        return GH_WS_ORIGINS_ANY;
    case GH_ORIGINS_LIST:
        return GH_WS_ORIGINS_LIST;
    default:
        return GH_WS_ORIGINS_SAME_HOST;
    }
}

/* Negotiates permessage-deflate from the request's Sec-WebSocket-Extensions
 * fields when the route compresses. Returns the PMD_* bits (0: none) and
 * the answer in answer. */
static uint8_t negotiate_deflate(const gh_http1_head *h, const gh_websocket_conf *wc,
                                 char answer[GH_PMD_ANSWER_MAX])
{
    const char *values[16];
    size_t lens[16], n = 0;
    gh_pmd_policy pol = {
        .server_window_bits = (uint8_t)wc->server_window_bits,
        .server_no_context_takeover = !wc->context_takeover,
    };
    gh_pmd_params got;

    answer[0] = '\0';
    if (!wc->compression)
        return 0;
    for (size_t i = 0; i < h->nfields && n < 16; i++) {
        if (name_is(&h->fields[i], "sec-websocket-extensions")) {
            values[n] = h->fields[i].value;
            lens[n++] = h->fields[i].value_len;
        }
    }
    if (n == 0 || !gh_pmd_negotiate(values, lens, n, &pol, &got, answer))
        return 0;
    return (uint8_t)((got.server_window_bits & PMD_BITS) |
                     (got.server_no_context_takeover ? 0 : PMD_TAKEOVER));
}

/* The index of the subprotocol to use, or -1. */
static int pick_subprotocol(const gh_http1_head *h, const char *const *list, size_t n)
{
    int best = -1;

    if (n == 0)
        return -1;
    for (size_t i = 0; i < h->nfields; i++) {
        if (!name_is(&h->fields[i], "sec-websocket-protocol"))
            continue;
        int k = gh_ws_pick_subprotocol(h->fields[i].value, h->fields[i].value_len, list, n);
        if (k >= 0 && (best < 0 || k < best))
            best = k;
    }
    return best;
}

static struct gh_ws_conn *ws_new(gh_request *r, gh_plugin_route *rt,
                                 const gh_websocket_conf *wc)
{
    gh_conn *c = r->c;
    const gh_http1_req *req = r->req;
    size_t qlen = req->query != NULL ? req->query_len : 0;
    char addr[GH_CONN_ADDR_TEXT];
    size_t alen = strlen(gh_conn_client_text_to(c, addr, sizeof(addr)));
    struct gh_ws_conn *ws = calloc(1, sizeof(*ws) + r->path_len + qlen + alen + 3);

    if (ws == NULL)
        return NULL;
    memcpy(ws->path, r->path, r->path_len);    /* normalised: no NUL inside */
    ws->path[r->path_len] = '\0';
    if (qlen > 0)
        memcpy(ws->path + r->path_len + 1, req->query, qlen);
    ws->path[r->path_len + 1 + qlen] = '\0';
    memcpy(ws->path + r->path_len + qlen + 2, addr, alen + 1);
    ws->c = c;
    ws->rt = rt;
    ws->wc = wc;
    return ws;
}

static void ws_destroy(struct gh_ws_conn *ws)
{
    if (ws == NULL)
        return;
    if (ws->timer_ours)
        event_del(ws->c->timer);    /* conn.c frees the event itself */
    if (ws->c->loop->wsl != NULL)
        gh_theap_del(&ws->c->loop->wsl->timers, &ws->tn);
    if (ws->in != NULL)
        evbuffer_free(ws->in);
    gh_outq_free(ws->out);          /* drops the frame references it holds */
    free_message(ws);
    if (ws->parser != NULL) {
        free(ws->parser->ctrl); /* lent for a control frame cut off by the close */
        free(ws->parser);
    }
    gh_deflater_free(ws->defl);
    flush_unlist(ws);
    free(ws);
}

static void release(gh_conn *c)
{
    gh_ws_conn_free(c->ws);
}

/* What conn.c calls once a connection is ours. */
static const gh_conn_handoff ws_handoff = {
    .start = gh_ws_conn_start,
    .drain = gh_ws_conn_drain,
    .release = release,
};

void gh_action_websocket(gh_request *r, const gh_route_conf *route)
{
    gh_conn *c = r->c;
    const gh_websocket_conf *wc = &route->u.ws;
    const gh_http1_head *head = r->head;
    const gh_http1_field *f, *key, *origin;
    gh_plugin_route *rt;
    struct gh_ws_conn *ws;
    const char *const *protos;
    size_t nprotos;
    int proto, code;
    char accept[GH_WS_ACCEPT_LEN + 1], pmd_answer[GH_PMD_ANSWER_MAX];
    gh_resp_head h;
    uint64_t now;
    size_t ri;
    unsigned home;
    bool elsewhere;

    ri = (size_t)(route - c->site->cfg->routes);
    home = gh_plugins_home(c->site, ri);
    elsewhere = home != GH_PLUGINS_EVERY && home != c->loop->id;
    /* an instance elsewhere is that worker's to bind: only its existence
     * (fixed at load) is looked at here */
    rt = gh_plugins_route(c->site, ri, elsewhere ? home : c->loop->id);
    if (rt == NULL || c->loop->stopping || (!elsewhere && gh_plugin_route_loop(rt) == NULL)) {
        refuse(r, 503, NULL);
        return;
    }
    if (ws_loop(c->loop) == NULL) {
        refuse(r, 500, NULL);
        return;
    }
    if (!r->is_get) {
        refuse(r, 405, "Allow: GET\r\n");
        return;
    }
    f = gh_req_field(r, "upgrade");
    if (f == NULL || !gh_ws_token_list_has(f->value, f->value_len, "websocket")) {
        /* RFC 9110 §15.5.22: a 426 names the protocol to upgrade to */
        refuse(r, 426, head->minor == 1 && !c->close_after
                       ? "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                       : "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
        return;
    }
    if (head->minor != 1 || r->req->content_length > 0 || r->req->chunked ||
        !r->req->upgrade) {
        refuse(r, 400, NULL);
        return;
    }
    if (count_fields(head, "sec-websocket-version", &f) != 1 || f->value_len != 2 ||
        memcmp(f->value, "13", 2) != 0) {
        refuse(r, 426, "Sec-WebSocket-Version: 13\r\n");
        return;
    }
    if (count_fields(head, "sec-websocket-key", &key) != 1 ||
        gh_ws_accept(key->value, key->value_len, accept) != GH_OK) {
        refuse(r, 400, NULL);
        return;
    }
    if (count_fields(head, "origin", &origin) > 1 ||
        !gh_ws_origin_allowed(origins_mode(wc->origins), (const char *const *)wc->origin_list,
                              wc->norigins, origin != NULL ? origin->value : NULL,
                              origin != NULL ? origin->value_len : 0,
                              r->req->host, r->req->host != NULL ? r->req->host_len : 0)) {
        GH_LOG(GH_LOG_INFO, "conn #%llu %s: websocket origin %.*s refused on %s",
               (unsigned long long)c->id, gh_conn_client_text(c),
               origin != NULL ? (int)(origin->value_len > 200 ? 200 : origin->value_len) : 1,
               origin != NULL ? origin->value : "-", r->path);
        refuse(r, 403, NULL);
        return;
    }
    if (elsewhere) {
        /* the plugin's one instance is on worker `home`: the connection
         * goes there before its handshake, and that worker checks the
         * request again and answers it, so that every callback for it
         * runs on the instance's thread */
        if (home >= c->loop->npeers || gh_conn_move(r, c->loop->peers[home]) != GH_OK)
            refuse(r, 503, NULL);
        return;
    }
    protos = gh_plugin_route_subprotocols(rt, &nprotos);
    proto = pick_subprotocol(head, protos, nprotos);
    if ((ws = ws_new(r, rt, wc)) == NULL) {
        refuse(r, 500, NULL);
        return;
    }
    if (proto >= 0 && proto < UINT8_MAX)    /* the host allows 32 */
        ws->subproto = (uint8_t)(proto + 1);
    ws->pmd_bits = negotiate_deflate(head, wc, pmd_answer);

    c->close_after = false;     /* "Connection: close, Upgrade" means nothing now */
    gh_req_begin(r, &h, 101);
    gh_resp_add_raw(&h, "Upgrade: websocket\r\nConnection: Upgrade\r\n", 41);
    gh_resp_add(&h, "Sec-WebSocket-Accept", accept, GH_WS_ACCEPT_LEN);
    if (ws->subproto != 0)
        gh_resp_add_str(&h, "Sec-WebSocket-Protocol", gh_ws_conn_subprotocol(ws));
    if (ws->pmd_bits != 0)
        gh_resp_add_str(&h, "Sec-WebSocket-Extensions", pmd_answer);
    /* counted as a WebSocket before the 101 goes: a client that has it may
     * ask another worker's /metrics */
    gh_loop_conn_kind(c->loop, c, GH_KIND_WEBSOCKET);
    /* queued, not written: it leaves with what the plugin's open sends
     * (gh_ws_conn_start()), so a client that has its 101 is subscribed to
     * what open subscribed it to, also when another worker publishes the
     * moment after */
    r->queue_only = true;
    gh_req_send(r, &h, NULL, 0);
    if (r->status != 101) {     /* the head did not fit: a 500 went out */
        gh_loop_conn_kind(c->loop, c, GH_KIND_HTTP);
        ws_destroy(ws);
        return;
    }

    /* The connection's header/keep-alive timer has no more use: it becomes
     * ours, which saves an event per connection: the wake-up of the
     * connection's deferred work and its deadlines' callback (the deadlines
     * themselves are in the loop's heap), and on a plain socket the socket's
     * event too (gh_ws_conn_start()). conn.c deletes it once more after this
     * returns and frees it in gh_conn_free(). */
    evtimer_del(c->timer);
    if (event_assign(c->timer, c->loop->base, -1, 0, on_io, ws) != 0) {
        c->close_after = true;  /* cannot happen for a timer; be safe anyway */
        ws_destroy(ws);
        return;
    }
    ws->timer_ours = true;
    /* write-through only on a plain socket: never around TLS or a filter */
    ws->direct = bufferevent_get_underlying(c->bev) == NULL &&
                 bufferevent_openssl_get_ssl(c->bev) == NULL &&
                 bufferevent_getfd(c->bev) >= 0;
    /* behind TLS the bufferevent goes on; a plain socket leaves it in
     * gh_ws_conn_start() (what the plugin's open queues meanwhile waits in
     * ws->out, behind whatever of the 101 the bufferevent still holds) */
    ws->writing = !ws->direct;
    c->ws = ws;
    c->handoff = &ws_handoff;
    c->state = GH_CONN_WS;
    if (!ws->direct) {
        bufferevent_setcb(c->bev, on_read, on_write, on_event, ws);
        bufferevent_setwatermark(c->bev, EV_READ, 0, READ_HIGH_WATER);
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        bufferevent_set_max_single_read(c->bev, MAX_SINGLE_READ);
    }
    now = now_ms();
    ws->last_rx_ms = now;
    if (wc->ping_interval_ms != 0)
        ws->next_ping_ms = now + wc->ping_interval_ms;
    GH_LOG(GH_LOG_DEBUG, "conn #%llu %s: websocket open on %s (plugin %s%s%s)",
           (unsigned long long)c->id, gh_conn_client_text(c), ws->path, gh_plugin_route_name(rt),
           ws->subproto != 0 ? ", subprotocol " : "",
           ws->subproto != 0 ? gh_ws_conn_subprotocol(ws) : "");

    c->loop->wsl->opening = ws;
    c->loop->wsl->opening_req = r;
    code = gh_plugin_route_open(rt, ws);
    c->loop->wsl->opening = NULL;
    c->loop->wsl->opening_req = NULL;
    if (code == 0) {
        ws->opened = true;      /* a close during open is notified from settle() */
    } else {
        /* refused: no callback of the plugin's may run for it any more */
        gh_topics_unsubscribe_all(topics_of(ws), &ws->subs);
        gh_tstate_conn_gone(c->loop->tstate, &ws->tsc);
        begin_close(ws, (uint16_t)code, NULL, 0, WHY_NONE, false);
    }
}

/* A plain socket's connection leaves its bufferevent (632 bytes and two
 * evbuffers): what it holds moves to ws->in and ws->out, and c->timer
 * becomes the socket's event. Returns false when out of memory. */
static bool leave_bufferevent(struct gh_ws_conn *ws)
{
    gh_conn *c = ws->c;
    struct bufferevent *bev = c->bev;
    struct evbuffer *bin = bufferevent_get_input(bev), *bout = bufferevent_get_output(bev);
    evutil_socket_t fd = bufferevent_getfd(bev);
    size_t blen = evbuffer_get_length(bout);
    struct gh_outq *q;
    uint8_t *bp;

    if (evbuffer_get_length(bin) > 0 &&
        ((ws->in = evbuffer_new()) == NULL || evbuffer_add_buffer(ws->in, bin) != 0))
        return false;
    if (blen > 0) {
        /* a socket bufferevent keeps its output's start frozen; what it
         * holds (the rest of the 101) goes before what the plugin queued */
        evbuffer_unfreeze(bout, 1);
        if ((bp = evbuffer_pullup(bout, -1)) == NULL || (q = outq_get(ws)) == NULL ||
            gh_outq_prepend(q, bp, blen) != GH_OK)
            return false;
        evbuffer_drain(bout, blen);
    }
    /* our read event first, the bufferevent's off after: libevent counts
     * the events on the fd and changes nothing in epoll (removing the
     * bufferevent's first would cost an EPOLL_CTL_DEL and an _ADD) */
    event_del(c->timer);
    event_assign(c->timer, c->loop->base, fd, EV_READ | EV_PERSIST, on_io, ws);
    if (event_add(c->timer, NULL) != 0)
        return false;
    ws->io_ev = EV_READ;
    /* the socket stays open: the bufferevent closes what it holds when freed
     * (freed later by libevent when this runs inside its callback) */
    bufferevent_disable(bev, EV_READ | EV_WRITE);
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    if (bufferevent_setfd(bev, -1) != 0)
        return false;
    bufferevent_free(bev);
    c->bev = NULL;
    c->fd = fd;
    ws->writing = false;
    if (out_len(ws) > 0)
        need_flush(ws);
    return true;
}

void gh_ws_conn_start(gh_conn *c)
{
    struct gh_ws_conn *ws = c->ws;
    uint64_t now = now_ms();

    if (ws->direct && !leave_bufferevent(ws)) {
        /* cannot happen short of memory; the bufferevent, if still there,
         * goes with the connection */
        GH_LOG(GH_LOG_ERROR, "conn #%llu %s: out of memory starting a websocket",
               (unsigned long long)c->id, gh_conn_client_text(c));
        kill_conn(ws);
        wake(ws);
        return;
    }
    /* conn.c has just deleted the timer (see gh_action_websocket): arm it,
     * and run the timer callback at once when something is owed */
    ws->last_rx_ms = now;
    rearm(ws, now);
    enter(ws);                  /* not our callback, but nothing here frees */
    process_input(ws);
    leave(ws);
    if (ws->dead || ws->state != WS_OPEN || ws->flush_due)
        wake(ws);               /* settle and flush from the connection's own event */
}

void gh_ws_conn_free(struct gh_ws_conn *ws)
{
    if (ws == NULL)
        return;
    if (ws->opened && !ws->notified) {
        if (ws->state == WS_OPEN) {
            ws->close_code = ws->c->loop->stopping ? GH_WS_CLOSE_GOING_AWAY
                                                  : GH_WS_CLOSE_ABNORMAL;
            ws->close_why = WHY_NONE;
        }
        ws->state = WS_LINGER;
        ws->dead = true;
        notify_close(ws, why_text[ws->close_why],
                     why_text[ws->close_why] != NULL ? strlen(why_text[ws->close_why]) : 0);
    }
    gh_topics_unsubscribe_all(topics_of(ws), &ws->subs);
    gh_tstate_conn_gone(ws->c->loop->tstate, &ws->tsc);
    ws_destroy(ws);
}

void gh_ws_conn_drain(gh_conn *c)
{
    struct gh_ws_conn *ws = c->ws;

    if (ws != NULL && ws->state == WS_OPEN)
        begin_close(ws, GH_WS_CLOSE_GOING_AWAY, why_text[WHY_GOING_AWAY],
                    strlen(why_text[WHY_GOING_AWAY]), WHY_GOING_AWAY, false);
}

/* ---- topics and accessors -------------------------------------------------- */

int gh_ws_conn_subscribe(struct gh_ws_conn *ws, const char *name, size_t len)
{
    if (ws->state != WS_OPEN)
        return -ENOTCONN;
    return gh_topics_subscribe(topics_of(ws), gh_plugin_route_name(ws->rt), name, len, ws,
                               &ws->subs);
}

int gh_ws_conn_unsubscribe(struct gh_ws_conn *ws, const char *name, size_t len)
{
    return gh_topics_unsubscribe(topics_of(ws), gh_plugin_route_name(ws->rt), name, len,
                                 &ws->subs);
}

int gh_ws_conn_hold(struct gh_ws_conn *ws, const char *name, size_t len, bool held)
{
    return gh_topics_hold(topics_of(ws), gh_plugin_route_name(ws->rt), name, len, ws->subs,
                          held);
}

uint64_t gh_ws_conn_serial(const struct gh_ws_conn *ws, const char *name, size_t len)
{
    return gh_topics_sub_serial(topics_of(ws), gh_plugin_route_name(ws->rt), name, len,
                                ws->subs);
}

bool gh_ws_conn_is_open(const struct gh_ws_conn *ws)
{
    return ws != NULL && ws->state == WS_OPEN;
}

struct gh_tstate_conn **gh_ws_conn_tstate(struct gh_ws_conn *ws)
{
    return &ws->tsc;
}

const char *gh_ws_conn_client_addr(const struct gh_ws_conn *ws)
{
    const char *query = gh_ws_conn_query(ws);

    return query + strlen(query) + 1;           /* "path\0query\0client\0" */
}

uint16_t gh_ws_conn_client_port(const struct gh_ws_conn *ws)
{
    const gh_sockaddr *ss = &ws->c->client;

    if (ss->sa.sa_family == AF_INET)
        return ntohs(ss->in4.sin_port);
    if (ss->sa.sa_family == AF_INET6)
        return ntohs(ss->in6.sin6_port);
    return 0;
}

const char *gh_ws_conn_path(const struct gh_ws_conn *ws)
{
    return ws->path;
}

const char *gh_ws_conn_query(const struct gh_ws_conn *ws)
{
    return ws->path + strlen(ws->path) + 1;     /* "path\0query\0" */
}

const char *gh_ws_conn_header(const struct gh_ws_conn *ws, const char *name, size_t *len)
{
    const struct gh_ws_loop *wsl = ws->c->loop->wsl;
    const gh_http1_field *f;

    if (wsl->opening != ws || name == NULL ||
        (f = gh_req_field(wsl->opening_req, name)) == NULL)
        return NULL;
    if (len != NULL)
        *len = f->value_len;
    return f->value;
}

const char *gh_ws_conn_subprotocol(const struct gh_ws_conn *ws)
{
    size_t n;
    const char *const *protos = gh_plugin_route_subprotocols(ws->rt, &n);

    return ws->subproto != 0 && ws->subproto <= n ? protos[ws->subproto - 1] : NULL;
}

void gh_ws_conn_set_data(struct gh_ws_conn *ws, void *data)
{
    ws->user = data;
}

void *gh_ws_conn_get_data(const struct gh_ws_conn *ws)
{
    return ws->user;
}

uint64_t gh_ws_conn_id(const struct gh_ws_conn *ws)
{
    return ws->c->id;
}

struct gh_plugin_inst *gh_ws_conn_route(const struct gh_ws_conn *ws)
{
    return ws->rt;
}

void gh_ws_publishers_resume(gh_loop *loop)
{
    gh_conn *c, *next;

    for (c = loop->conns; c != NULL; c = next) {
        struct gh_ws_conn *ws = c->state == GH_CONN_WS ? c->ws : NULL;

        next = c->next;
        if (ws == NULL || !ws->hub_paused || ws->dead)
            continue;
        ws->hub_paused = false;
        if (ws->direct)
            set_io(ws);
        else if (!read_blocked(ws))
            bufferevent_enable(ws->c->bev, EV_READ);
        enter(ws);
        process_input(ws);      /* what came before the pause */
        leave(ws);
        settle(ws);             /* may free ws and c, not another */
    }
}
