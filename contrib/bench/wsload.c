/* wsload.c: a WebSocket load generator for contrib/bench/ws.sh.
 *
 * Why our own: the usual tools (wrk, autobahn, websocket-bench, thor) either
 * speak no WebSocket, measure one connection at a time, or are themselves
 * slower than the servers under test. This one is a single-threaded
 * libevent client that does one of four jobs and prints one greppable line:
 *
 *   echo       CONNS connections, each keeping INFLIGHT text messages of
 *              SIZE bytes in flight; counts checked echoes per second.
 *   fanout     SUBS subscribers and one publisher on a topic; the publisher
 *              keeps WINDOW messages not yet delivered everywhere in flight,
 *              each carrying its send time; counts deliveries per second,
 *              the p50/p99 send-to-receive latency, and checks that every
 *              receiver got every message once and in order (lost=, dup=).
 *              With --port2, the subscribers alternate between two
 *              servers (odd ones on PORT2) and the publisher stays on PORT:
 *              the cross-instance fan-out through gatehouse's Redis bus
 *              (fanout-bus in ws.sh).
 *   fanout-chat the same through gatehouse's chat plugin (plugins/chat): a
 *              room instead of a topic, each connection's first message
 *              (welcome) as its ready signal, the payload sent as the text
 *              of a JSON "say" and read back from the "text" of each "said";
 *              every other message (the joins) is ignored.
 *   handshake  CONCURRENCY connections in flight, each doing the opening
 *              handshake, a close handshake and the TCP close, over and over.
 *   idle       CONNS open, idle connections; the server's VmRSS growth over
 *              them divided by CONNS.
 *
 * It speaks the client side of RFC 6455 itself: a random key checked against
 * Sec-WebSocket-Accept (SHA-1 from libcrypto), masked frames with a fresh
 * mask per frame, an incremental parser for unmasked server frames, pongs
 * for pings, and the close handshake. It deliberately does not fragment or
 * accept fragmented messages (the servers under test never fragment small
 * messages; a fragment is reported as a protocol error).
 *
 * --deflate adds permessage-deflate (RFC 7692) with zlib: every connection
 * offers "permessage-deflate; client_max_window_bits", and a server that
 * declines fails the connection (the run is invalid: it measured something
 * else). On an accepted connection every message sent is compressed (raw
 * deflate, Z_SYNC_FLUSH, the 00 00 ff ff tail stripped, RSV1 set; §7.2.1),
 * with the compressor reset per message when the answer says
 * client_no_context_takeover and within client_max_window_bits; a server
 * message with RSV1 is inflated (the tail appended, §7.2.2), with the
 * inflater reset per message on server_no_context_takeover and its window
 * held to server_max_window_bits (a server that breaks its own window fails
 * the inflate); one with RSV1 clear is taken as it is. zlib state is made on
 * a connection's first message each way, so idle connections hold none.
 * zlib costs this machine ~7 us to deflate and ~3 us to inflate 512 bytes,
 * more than a fast server spends per message, so results that are pure
 * functions of their input are cached (exactly, struct bench says how):
 * without context takeover the same message always compresses to the same
 * bytes, and the same compressed bytes always inflate to the same message.
 * With context takeover every message goes through zlib.
 *
 * --json makes every echo and fan-out payload a chat-like JSON object of
 * exactly SIZE bytes (512 by default with --json),
 *   {"type":"say","room":"lobby","nick":"user7","seq":41,"ts":...,"text":"..."}
 * its text a slice of 1 MiB of made-up English (a fixed seed, words drawn
 * with a skew towards frequent ones), so it compresses like chat rather than
 * like a repeated byte. Echo messages come from a pool of 1,024 (json_pool
 * says why) and are checked byte for byte and in order as before; fan-out
 * messages carry the sequence number and send time (ns) in "seq" and "ts"
 * and are compared byte for byte with what was published.
 *
 * Every run is bounded in connections and in time. Failures are counted by
 * kind and printed; the exit status is 1 when the run is not valid (any
 * failed connection in echo/fanout/idle, a declined permessage-deflate
 * offer included, any message lost or duplicated, more than 1% failed
 * handshakes), 2 on bad usage. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sched.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <zlib.h>

#define SCRATCH      (256u * 1024)     /* read buffer shared by all connections */
#define MAX_FRAME    (SCRATCH / 2)     /* largest server frame we accept */
#define MAX_HEAD     8192              /* largest handshake response head */
#define MAX_SRC      64
#define MAX_PIDS     4                 /* --pid given this many times at most */
#define HIST_BUCKETS 3776              /* log-linear, 64 sub-buckets per octave */
#define WS_GUID      "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define MAX_SIZE     4096              /* largest --size */
#define ZBUF         (4 * MAX_SIZE)    /* one compressed message we send */
#define CORPUS       (1u << 20)        /* --json: bytes of text to slice from */
#define JSON_MIN     160               /* --json: smallest --size */
#define POOL         1024              /* --json echo: distinct messages */
#define ZC_SLOTS     8192              /* --deflate: inflate cache entries, */
#define ZC_WAYS      8                 /* ... in sets of this many */

enum mode { M_ECHO, M_FANOUT, M_HANDSHAKE, M_IDLE };
enum cstate { CS_FREE, CS_CONNECTING, CS_HANDSHAKE, CS_OPEN, CS_CLOSING };
enum errkind { E_CONNECT, E_HTTP, E_TIMEOUT, E_EOF, E_PROTO, E_IO, E_NKINDS };
static const char *const errname[E_NKINDS] = {
    "connect", "http", "timeout", "eof", "proto", "io",
};

struct bench;

typedef struct conn {
    struct bench *b;
    int           fd;
    unsigned      idx;
    enum cstate   st;
    struct event *rev, *wev;
    uint8_t      *rbuf;            /* unparsed bytes kept between reads */
    size_t        rlen, rcap;
    uint8_t      *wbuf;            /* bytes not yet written */
    size_t        woff, wlen, wcap;
    uint64_t      deadline;        /* ns; for connect, handshake and close */
    char          accept[29];      /* the Sec-WebSocket-Accept we expect */
    bool          upgraded, close_sent, close_rcvd, is_pub, ready, welcomed;
    uint64_t      tx, rx;          /* echo: messages sent / checked */
    uint64_t      next_seq, got;   /* fanout: next expected seq, in-order count */
    /* permessage-deflate, as the server's answer set it (--deflate) */
    bool          pmd;             /* negotiated */
    bool          cnct, snct;      /* client_/server_no_context_takeover */
    uint8_t       cwb, swb;        /* client_/server_max_window_bits (15 when unsaid) */
    z_stream     *zd, *zi;         /* our compressor, our inflater; made on first use */
} conn;

typedef struct bench {
    /* options */
    enum mode   mode;
    const char *label, *host, *path;
    int         port, port2;       /* port2: fanout's second server, or -1 */
    unsigned    conns, inflight, size, subs, window, concurrency, warm_msgs;
    uint64_t    msgs;
    double      duration, warmup, settle, timeout;
    long        pid;               /* the first --pid */
    long        pids[MAX_PIDS];    /* every --pid: server_cpu is their sum */
    unsigned    npids;
    struct sockaddr_in dst, dst2, src[MAX_SRC];
    unsigned    nsrc, src_next;

    struct event_base *base;
    struct event      *tick, *refill, *phase_ev;
    unsigned           rate;           /* --rate: messages/s, open loop; 0: closed loop */
    uint64_t           echo_sent;      /* echo --rate: messages sent so far */
    unsigned           echo_next;      /* echo --rate: the connection that sends next */
    uint64_t           rate_t0;        /* when the first message was due */
    struct event      *rate_ev;        /* wakes the publisher when the next one is due */
    uint8_t           *scratch;
    char               host_hdr[300], host_hdr2[300];
    uint64_t           rng[2];

    conn     **c;              /* slots */
    unsigned   nslots;
    unsigned   started, pending, open;
    bool       opening_done, running, stop, pub_dirty;
    int        phase;          /* mode-specific */
    uint64_t   t0, t_measure, t_end;
    uint64_t   err[E_NKINDS];
    char       first_err[E_NKINDS][160];

    /* echo / handshake */
    uint64_t   done, done_at_measure;
    uint64_t   close_timeouts;

    /* fanout */
    conn      *pub;
    uint32_t  *got;            /* per seq: receivers that have it */
    bool       chat;           /* fanout-chat: the chat plugin's JSON */
    uint64_t   published, completed, nready, nwelcome, deliveries, dups, lat_n;
    uint64_t   t_warm_pub, t_last_deliv, t_last_progress, t_sync;
    uint64_t   hist[HIST_BUCKETS];
    uint64_t   lat_max;

    /* cpu */
    struct rusage ru0;
    uint64_t   srv_ticks0;
    int        core[2];            /* the server's and our core, or -1 */
    uint64_t   core_busy0[2], core_total0[2], core_steal0[2];
    bool       saturated;          /* we used >= 90% of our core */
    bool       noisy;              /* other processes took >= 10% of a core */

    /* --deflate */
    bool       deflate;
    int        zlevel;             /* our compression level (--deflate-level) */
    uint8_t   *zout;               /* one inflated message (MAX_FRAME) */
    uint8_t   *zbuf;               /* one compressed message to send (ZBUF) */
    char       pmd_answer[160];    /* the first accepted answer's parameters */
    bool       pmd_varied;         /* some connection got another answer */
    uint64_t   rx_z, rx_plain;     /* server messages with RSV1 set / clear */
    uint64_t   rx_zwire, rx_zbytes;/* ... those with RSV1: compressed, inflated bytes */
    uint64_t   tx_z, tx_zwire, tx_zbytes;
    uint64_t   rx_inflates, tx_deflates;   /* ... of them that zlib did */
    /* Caches of zlib results that are pure functions of their input, so
     * wsload can keep up with a server that compresses faster than it could
     * itself (zlib takes ~7 us to deflate and ~3 us to inflate 512 bytes
     * here). Without context takeover a message's compressed form depends
     * only on the message and the compressor's settings (ours are fixed,
     * plus the window), and a compressed message's inflation only on its
     * bytes (plus the window that limits it): so
     *   zpool[j]  is pool message j compressed by a fresh compressor with
     *             window zpool_cwb, for connections with
     *             client_no_context_takeover;
     *   zcache    maps a compressed server message (all its bytes compared,
     *             not just a hash) to its inflation, for connections with
     *             server_no_context_takeover: a fan-out server that sends
     *             the same bytes to 1,000 subscribers costs one inflate.
     * With context takeover everything goes through zlib. */
    struct zpool_ent { uint8_t *z; uint32_t len; } *zpool;
    uint8_t    zpool_cwb;
    struct zc_ent { uint64_t h; uint8_t *z, *out; uint32_t zlen, olen; uint8_t swb; } *zcache;

    /* --json */
    bool       json;
    char      *corpus;             /* CORPUS + MAX_SIZE bytes of words */
    uint64_t   ts_base;            /* echo: "ts" of message 0 (wall clock, ms) */
    uint8_t   *ring;               /* fanout: the last WINDOW published messages */
    uint8_t   *pool;               /* echo: POOL messages, each SIZE bytes */
} bench;

/* ---- small helpers ------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift128+: masks and keys need to be unpredictable to an observer of the
 * stream, not cryptographic here; seeded from getrandom(). */
static uint64_t rnd(bench *b)
{
    uint64_t s1 = b->rng[0];
    const uint64_t s0 = b->rng[1];

    b->rng[0] = s0;
    s1 ^= s1 << 23;
    b->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return b->rng[1] + s0;
}

static void record_err(bench *b, enum errkind k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void record_err(bench *b, enum errkind k, const char *fmt, ...)
{
    va_list ap;

    if (b->err[k]++ == 0) {
        va_start(ap, fmt);
        vsnprintf(b->first_err[k], sizeof(b->first_err[k]), fmt, ap);
        va_end(ap);
    }
}

static uint64_t total_errs(const bench *b)
{
    uint64_t n = 0;

    for (int k = 0; k < E_NKINDS; k++)
        n += b->err[k];
    return n;
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
    size_t ncap = *cap ? *cap : 256;
    uint8_t *p;

    if (need <= *cap)
        return 0;
    while (ncap < need)
        ncap *= 2;
    if ((p = realloc(*buf, ncap)) == NULL)
        return -1;
    *buf = p;
    *cap = ncap;
    return 0;
}

static void put_hex(char *out, uint64_t v, int digits)
{
    static const char hx[] = "0123456789abcdef";

    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        out[i] = hx[v & 15];
}

/* Returns -1 on a non-hex digit. */
static int get_hex(const uint8_t *in, int digits, uint64_t *out)
{
    uint64_t v = 0;

    for (int i = 0; i < digits; i++) {
        uint8_t ch = in[i];
        int d;
        if (ch >= '0' && ch <= '9')
            d = ch - '0';
        else if (ch >= 'a' && ch <= 'f')
            d = ch - 'a' + 10;
        else
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 0;
}

static unsigned hist_bucket(uint64_t v)
{
    int msb, shift;

    if (v < 128)
        return (unsigned)v;
    msb = 63 - __builtin_clzll(v);
    shift = msb - 6;
    return (unsigned)(shift + 1) * 64 + (unsigned)((v >> shift) & 63);
}

static uint64_t hist_value(unsigned i)
{
    if (i < 128)
        return i;
    return (uint64_t)(64 + i % 64) << (i / 64 - 1);
}

static uint64_t hist_pct(const bench *b, double pct)
{
    uint64_t want = (uint64_t)((double)b->lat_n * pct / 100.0 + 0.5), seen = 0;

    if (b->lat_n == 0)
        return 0;
    if (want == 0)
        want = 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += b->hist[i];
        if (seen >= want)
            return hist_value(i);
    }
    return b->lat_max;
}

static long read_rss_kib(long pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *fp;

    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    if ((fp = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), fp) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(fp);
    return kib;
}

/* utime + stime of pid in clock ticks, or 0 when unknown. */
static uint64_t read_cpu_ticks(long pid)
{
    char path[64], buf[1024];
    unsigned long long ut = 0, st = 0;
    const char *p;
    ssize_t n;
    int fd;

    if (pid <= 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    if ((p = strrchr(buf, ')')) == NULL)   /* comm may hold spaces */
        return 0;
    /* after ") ": state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return ut + st;
}

/* The one core pid may run on (0 = us), or -1 when it may run on several. */
static int pinned_core(long pid)
{
    cpu_set_t set;
    int core = -1;

    if (sched_getaffinity((pid_t)pid, sizeof(set), &set) != 0 || CPU_COUNT(&set) != 1)
        return -1;
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &set))
            core = i;
    return core;
}

/* Busy, total and steal ticks of one core from /proc/stat. Counting the
 * core rather than the process sees the loopback softirq work that runs on
 * it, which the process's own utime+stime may leave out. */
static int read_core(int core, uint64_t *busy, uint64_t *total, uint64_t *steal)
{
    char line[512], want[16];
    unsigned long long v[8] = { 0 };
    FILE *fp;
    int rc = -1;

    if (core < 0 || (fp = fopen("/proc/stat", "r")) == NULL)
        return -1;
    snprintf(want, sizeof(want), "cpu%d ", core);
    while (fgets(line, sizeof(line), fp) != NULL)
        if (strncmp(line, want, strlen(want)) == 0) {
            /* user nice system idle iowait irq softirq steal */
            if (sscanf(line + strlen(want), "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                       &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8)
                rc = 0;
            break;
        }
    fclose(fp);
    if (rc == 0) {
        *busy = v[0] + v[1] + v[2] + v[5] + v[6];
        *steal = v[7];
        *total = *busy + v[3] + v[4] + v[7];
    }
    return rc;
}

/* utime + stime of every --pid summed (the servers sharing core 0), plus 1
 * so that a process that has not run yet is not taken for an unknown one
 * (the 1 cancels out in a difference); 0 when one of them cannot be read. */
static uint64_t server_ticks(const bench *b)
{
    uint64_t sum = 1;

    for (unsigned i = 0; i < b->npids; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%ld/stat", b->pids[i]);
        if (access(path, R_OK) != 0)
            return 0;
        sum += read_cpu_ticks(b->pids[i]);
    }
    return b->npids > 0 ? sum : 0;
}

static void cpu_start(bench *b)
{
    getrusage(RUSAGE_SELF, &b->ru0);
    b->srv_ticks0 = server_ticks(b);
    b->core[0] = b->pid > 0 ? pinned_core(b->pid) : -1;
    b->core[1] = pinned_core(0);
    for (int i = 0; i < 2; i++)
        if (read_core(b->core[i], &b->core_busy0[i], &b->core_total0[i], &b->core_steal0[i]) != 0)
            b->core[i] = -1;
}

/* Prints, for the interval since cpu_start(): each process's CPU use
 * (client_cpu, server_cpu: utime+stime, which here includes the loopback
 * softirq work done in its system calls), each pinned core's busy share from
 * /proc/stat, and, when other processes took 5% or more of a core (busy
 * minus the process pinned there), that share as *_other. Sets b->saturated
 * when wsload itself used 90% or more of its core, and b->noisy when other
 * processes took 10% or more of either core. */
static void cpu_print(bench *b, double secs)
{
    struct rusage ru;
    double own[2] = { -1, -1 };

    if (b->t_measure == 0 || secs <= 0)
        return;     /* never started measuring */

    getrusage(RUSAGE_SELF, &ru);
    own[1] = 100.0 *
             ((double)(ru.ru_utime.tv_sec - b->ru0.ru_utime.tv_sec + ru.ru_stime.tv_sec -
                       b->ru0.ru_stime.tv_sec) +
              (double)(ru.ru_utime.tv_usec - b->ru0.ru_utime.tv_usec + ru.ru_stime.tv_usec -
                       b->ru0.ru_stime.tv_usec) / 1e6) / secs;
    printf(" client_cpu=%.0f%%", own[1]);
    if (b->pid > 0 && b->srv_ticks0 > 0) {
        uint64_t t = server_ticks(b);
        if (t >= b->srv_ticks0) {
            own[0] = 100.0 * (double)(t - b->srv_ticks0) / (double)sysconf(_SC_CLK_TCK) / secs;
            printf(" server_cpu=%.1f%%", own[0]);
        }
    }
    b->saturated = own[1] >= 90;
    for (int i = 0; i < 2; i++) {
        const char *who = i == 0 ? "server" : "client";
        uint64_t busy, total, steal;
        double pct;
        if (b->core[i] < 0 || read_core(b->core[i], &busy, &total, &steal) != 0 ||
            total <= b->core_total0[i])
            continue;
        total -= b->core_total0[i];
        pct = 100.0 * (double)(busy - b->core_busy0[i]) / (double)total;
        printf(" %s_core%d_busy=%.0f%%", who, b->core[i], pct);
        if (own[i] >= 0 && pct - own[i] >= 5) {
            printf(" %s_core%d_other=%.0f%%", who, b->core[i], pct - own[i]);
            if (pct - own[i] >= 10)
                b->noisy = true;
        }
        if (steal - b->core_steal0[i] > total / 100)
            printf(" %s_core%d_steal=%.0f%%", who, b->core[i],
                   100.0 * (double)(steal - b->core_steal0[i]) / (double)total);
    }
    if (b->saturated)
        printf(" load_saturated=yes");
    if (b->noisy)
        printf(" noisy=yes");
}

/* ---- connections -------------------------------------------------------- */

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);
static void mode_on_open(conn *c);
static int mode_on_message(conn *c, const uint8_t *p, size_t n);
static void mode_on_eof(conn *c);

/* Frees a connection's zlib streams (NULL-safe each). */
static void pmd_free(conn *c)
{
    if (c->zd != NULL) {
        deflateEnd(c->zd);
        free(c->zd);
        c->zd = NULL;
    }
    if (c->zi != NULL) {
        inflateEnd(c->zi);
        free(c->zi);
        c->zi = NULL;
    }
    c->pmd = false;
}

/* Closes the socket and frees the slot; new connections are started from
 * the refill event, never from inside a callback of the one being closed. */
static void conn_close(conn *c)
{
    bench *b = c->b;

    if (c->st == CS_FREE)
        return;
    pmd_free(c);
    if (c->st == CS_CONNECTING || c->st == CS_HANDSHAKE)
        b->pending--;
    if (c->upgraded)
        b->open--;
    if (c->rev != NULL)
        event_free(c->rev);
    if (c->wev != NULL)
        event_free(c->wev);
    c->rev = c->wev = NULL;
    close(c->fd);
    c->fd = -1;
    c->st = CS_FREE;
    c->rlen = c->woff = c->wlen = 0;
    event_active(b->refill, 0, 0);
}

static void conn_fail(conn *c, enum errkind k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void conn_fail(conn *c, enum errkind k, const char *fmt, ...)
{
    char msg[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    record_err(c->b, k, "conn %u: %s", c->idx, msg);
    conn_close(c);
}

/* Writes what is pending. Returns -1 when the connection failed (closed). */
static int conn_flush(conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                event_add(c->wev, NULL);
                return 0;
            }
            conn_fail(c, E_IO, "write: %s", strerror(errno));
            return -1;
        }
        c->woff += (size_t)n;
    }
    c->woff = c->wlen = 0;
    return 0;
}

/* Appends a masked frame (RFC 6455 §5.2, §5.3), fresh mask each time.
 * opcode may carry RSV1 (0x40): a compressed message. */
static int queue_frame(conn *c, int opcode, const uint8_t *p, size_t n)
{
    uint8_t *o;
    uint64_t m = rnd(c->b);
    uint8_t mask[4] = { (uint8_t)m, (uint8_t)(m >> 8), (uint8_t)(m >> 16), (uint8_t)(m >> 24) };
    size_t h = 2;

    if (grow(&c->wbuf, &c->wcap, c->wlen + 14 + n) != 0)
        return -1;
    o = c->wbuf + c->wlen;
    o[0] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        o[1] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        o[1] = 0x80 | 126;
        o[2] = (uint8_t)(n >> 8);
        o[3] = (uint8_t)n;
        h = 4;
    } else {
        o[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            o[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        h = 10;
    }
    memcpy(o + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        o[h + i] = p[i] ^ mask[i & 3];
    c->wlen += h + n;
    return 0;
}

/* Compresses one whole message into b->zbuf (RFC 7692 §7.2.1): raw
 * deflate with a sync flush, whose 00 00 ff ff tail is then left out; the
 * compressor is reset afterwards when the server asked for
 * client_no_context_takeover, else it keeps its window for the next
 * message. Returns the compressed length, or -1 with the connection failed. */
static long pmd_deflate(conn *c, const uint8_t *p, size_t n)
{
    bench *b = c->b;
    z_stream *z = c->zd;
    size_t len;
    int rc;

    if (z == NULL) {
        /* memLevel 8 and the whole window the server allows, as browsers do */
        if ((z = calloc(1, sizeof(*z))) == NULL) {
            conn_fail(c, E_IO, "out of memory");
            return -1;
        }
        if (deflateInit2(z, b->zlevel, Z_DEFLATED, -(int)c->cwb, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            free(z);
            conn_fail(c, E_IO, "deflateInit2 failed");
            return -1;
        }
        c->zd = z;
    }
    z->next_in = (Bytef *)(uintptr_t)p;
    z->avail_in = (uInt)n;
    z->next_out = b->zbuf;
    z->avail_out = ZBUF;
    rc = deflate(z, Z_SYNC_FLUSH);
    len = ZBUF - z->avail_out;
    if (rc != Z_OK || z->avail_in != 0 || z->avail_out == 0 || len < 4 ||
        memcmp(b->zbuf + len - 4, "\x00\x00\xff\xff", 4) != 0) {
        conn_fail(c, E_IO, "deflate failed (%d)", rc);
        return -1;
    }
    if (c->cnct && deflateReset(z) != Z_OK) {
        conn_fail(c, E_IO, "deflateReset failed");
        return -1;
    }
    return (long)(len - 4);
}

/* Queues one text message: compressed with RSV1 on a connection that
 * negotiated permessage-deflate, as it is otherwise. pool: the index of p in
 * b->pool, or -1 (a message of its own). Returns -1 when the connection
 * failed (closed). */
static int send_text(conn *c, const uint8_t *p, size_t n, long pool)
{
    bench *b = c->b;
    const uint8_t *zp;
    long z;

    if (!c->pmd) {
        if (queue_frame(c, 1, p, n) == 0)
            return 0;
        conn_fail(c, E_IO, "out of memory");
        return -1;
    }
    if (pool >= 0 && c->cnct && b->zpool != NULL && b->zpool_cwb == 0)
        b->zpool_cwb = c->cwb;      /* the first connection's window it is */
    if (pool >= 0 && c->cnct && b->zpool != NULL && b->zpool_cwb == c->cwb &&
        b->zpool[pool].z != NULL) {
        zp = b->zpool[pool].z;
        z = b->zpool[pool].len;
    } else {
        if ((z = pmd_deflate(c, p, n)) < 0)
            return -1;
        zp = b->zbuf;
        b->tx_deflates++;
        if (pool >= 0 && c->cnct && b->zpool != NULL && b->zpool_cwb == c->cwb &&
            (b->zpool[pool].z = malloc((size_t)z + 1)) != NULL) {
            memcpy(b->zpool[pool].z, b->zbuf, (size_t)z);
            b->zpool[pool].len = (uint32_t)z;
        }
    }
    b->tx_z++;
    b->tx_zwire += (uint64_t)z;
    b->tx_zbytes += n;
    if (queue_frame(c, 0x40 | 1, zp, (size_t)z) == 0)
        return 0;
    conn_fail(c, E_IO, "out of memory");
    return -1;
}

/* A 64-bit hash of p[0..n), 8 bytes at a time: only to pick a cache slot
 * and skip most wrong ones; a hit is confirmed with memcmp. */
static uint64_t zhash(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15u ^ n, w;
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdu;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, p + i, n - i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53u;
    return h ^ (h >> 29);
}

/* Inflates one compressed message, p[0..n) with 00 00 ff ff after it
 * (RFC 7692 §7.2.2), into b->zout; the inflater is reset afterwards when the
 * server said server_no_context_takeover, else it keeps the window. Returns
 * the inflated length, or -1 with the connection failed. */
static long pmd_inflate(conn *c, const uint8_t *p, size_t n, const uint8_t **out)
{
    static const uint8_t tail[4] = { 0x00, 0x00, 0xff, 0xff };
    bench *b = c->b;
    z_stream *z = c->zi;
    int rc = Z_OK;
    struct zc_ent *e = NULL;
    uint64_t h = 0;
    size_t olen;

    *out = b->zout;
    if (c->snct && b->zcache != NULL) {     /* see struct bench: zcache */
        struct zc_ent *set;
        h = zhash(p, n);
        set = &b->zcache[h % (ZC_SLOTS / ZC_WAYS) * ZC_WAYS];
        for (unsigned w = 0; w < ZC_WAYS; w++) {
            e = &set[w];
            if (e->z != NULL && e->h == h && e->zlen == n && e->swb == c->swb &&
                memcmp(e->z, p, n) == 0) {
                b->rx_z++;
                b->rx_zwire += n;
                b->rx_zbytes += e->olen;
                *out = e->out;
                return (long)e->olen;
            }
        }
        /* a miss: the result goes to a free way, else to one the hash picks */
        e = &set[(h >> 60) % ZC_WAYS];
        for (unsigned w = 0; w < ZC_WAYS; w++)
            if (set[w].z == NULL) {
                e = &set[w];
                break;
            }
    }
    if (z == NULL) {
        if ((z = calloc(1, sizeof(*z))) == NULL) {
            conn_fail(c, E_IO, "out of memory");
            return -1;
        }
        /* the window the server promised, no more: a longer distance fails */
        if (inflateInit2(z, -(int)c->swb) != Z_OK) {
            free(z);
            conn_fail(c, E_IO, "inflateInit2 failed");
            return -1;
        }
        c->zi = z;
    }
    z->next_out = b->zout;
    z->avail_out = MAX_FRAME;
    for (int part = 0; part < 2 && rc == Z_OK; part++) {
        z->next_in = (Bytef *)(uintptr_t)(part == 0 ? p : tail);
        z->avail_in = part == 0 ? (uInt)n : 4;
        if (z->avail_in == 0)
            continue;
        rc = inflate(z, Z_SYNC_FLUSH);
        if (rc == Z_OK && (z->avail_in != 0 || z->avail_out == 0)) {
            conn_fail(c, E_PROTO, "inflated message over %u bytes", MAX_FRAME);
            return -1;
        }
    }
    if (rc == Z_STREAM_END) {
        /* a final block (BFINAL): allowed, but the window ends with it */
        if (!c->snct) {
            conn_fail(c, E_PROTO, "final deflate block with server context takeover");
            return -1;
        }
    } else if (rc != Z_OK) {
        conn_fail(c, E_PROTO, "inflate: %s (%d)", z->msg ? z->msg : "error", rc);
        return -1;
    }
    if ((c->snct || rc == Z_STREAM_END) && inflateReset(z) != Z_OK) {
        conn_fail(c, E_IO, "inflateReset failed");
        return -1;
    }
    olen = MAX_FRAME - z->avail_out;
    b->rx_inflates++;
    b->rx_z++;
    b->rx_zwire += n;
    b->rx_zbytes += olen;
    if (e != NULL && olen <= MAX_SIZE * 2) {
        uint8_t *m = realloc(e->z, n + olen);
        if (m != NULL) {
            e->z = m;
            e->out = m + n;
            memcpy(e->z, p, n);
            memcpy(e->out, b->zout, olen);
            e->h = h;
            e->zlen = (uint32_t)n;
            e->olen = (uint32_t)olen;
            e->swb = c->swb;
        }
    }
    return (long)olen;
}

static int queue_close(conn *c, uint16_t code)
{
    uint8_t p[2] = { (uint8_t)(code >> 8), (uint8_t)code };

    c->close_sent = true;
    return queue_frame(c, 8, p, code ? 2 : 0);
}

static void conn_start(bench *b, conn *c)
{
    static const int one = 1;
    uint8_t key[16];
    char key64[25], req[1024], nick[32] = "";
    unsigned char dig[SHA_DIGEST_LENGTH];
    char cat[24 + sizeof(WS_GUID)];
    /* fanout with --port2: odd-numbered subscribers on the second server;
     * the even ones and the publisher (the last slot) on the first */
    const bool second = b->port2 > 0 && !c->is_pub && (c->idx & 1u);
    int fd, n;

    c->b = b;
    pmd_free(c);        /* a reused slot is a new connection */
    c->upgraded = c->close_sent = c->close_rcvd = c->ready = c->welcomed = false;
    c->tx = c->rx = c->next_seq = c->got = 0;
    c->rlen = c->woff = c->wlen = 0;
    c->deadline = now_ns() + (uint64_t)(b->timeout * 1e9);
    b->started++;
    b->pending++;
    c->st = CS_CONNECTING;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0) {
        c->fd = -1;
        b->pending--;
        c->st = CS_FREE;
        record_err(b, E_CONNECT, "socket: %s", strerror(errno));
            return;
    }
    c->fd = fd;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->rev = event_new(b->base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->wev = event_new(b->base, fd, EV_WRITE, on_write, c);
    if (c->rev == NULL || c->wev == NULL) {
        conn_fail(c, E_IO, "event_new failed");
        return;
    }
    if (b->nsrc > 0) {
        /* The port is picked at connect() time against the whole 4-tuple, so
         * each source address gets the full ephemeral range. */
        const struct sockaddr_in *s = &b->src[b->src_next++ % b->nsrc];
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, (const struct sockaddr *)s, sizeof(*s)) != 0) {
            conn_fail(c, E_CONNECT, "bind %s: %s", inet_ntoa(s->sin_addr), strerror(errno));
            return;
        }
    }

    for (int i = 0; i < 16; i += 8) {
        uint64_t r = rnd(b);
        memcpy(key + i, &r, 8);
    }
    EVP_EncodeBlock((unsigned char *)key64, key, 16);
    n = snprintf(cat, sizeof(cat), "%s%s", key64, WS_GUID);
    SHA1((const unsigned char *)cat, (size_t)n, dig);
    EVP_EncodeBlock((unsigned char *)c->accept, dig, SHA_DIGEST_LENGTH);

    if (b->chat)    /* one nick per connection: s0 .. s<subs>, the publisher last */
        snprintf(nick, sizeof(nick), "%cnick=s%u", strchr(b->path, '?') ? '&' : '?', c->idx);
    n = snprintf(req, sizeof(req),
                 "GET %s%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                 b->path, nick, second ? b->host_hdr2 : b->host_hdr, key64,
                 b->deflate ? "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                            : "");
    if (grow(&c->wbuf, &c->wcap, (size_t)n) != 0) {
        conn_fail(c, E_IO, "out of memory");
        return;
    }
    memcpy(c->wbuf, req, (size_t)n);
    c->wlen = (size_t)n;

    if (connect(fd, (const struct sockaddr *)(second ? &b->dst2 : &b->dst), sizeof(b->dst)) != 0 &&
        errno != EINPROGRESS) {
        conn_fail(c, E_CONNECT, "connect: %s", strerror(errno));
        return;
    }
    /* On loopback the TCP handshake is usually through by the time connect()
     * returns, so write the request now and wait for writability only when
     * that fails with EAGAIN: one epoll registration per connection instead
     * of three, which is most of the load generator's own cost per handshake.
     * A refused connection shows up as a read error. */
    event_add(c->rev, NULL);
    n = (int)write(fd, c->wbuf, c->wlen);
    if (n > 0) {
        c->st = CS_HANDSHAKE;
        c->woff = (size_t)n;
        if (c->woff == c->wlen)
            c->woff = c->wlen = 0;
        else
            event_add(c->wev, NULL);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN) {
        event_add(c->wev, NULL);
    } else {
        conn_fail(c, E_CONNECT, "connect: %s", strerror(errno));
    }
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    int err = 0;
    socklen_t len = sizeof(err);

    (void)what;
    if (c->st == CS_CONNECTING) {
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0) {
            conn_fail(c, E_CONNECT, "connect: %s", strerror(err));
            return;
        }
        c->st = CS_HANDSHAKE;
    }
    conn_flush(c);
}

/* True when the comma-separated list v[0..n) holds token (case-insensitive). */
static bool has_token(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token), i = 0;

    while (i < n) {
        size_t s, e;
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        s = i;
        while (i < n && v[i] != ',')
            i++;
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, token, tl) == 0)
            return true;
    }
    return false;
}

/* Takes the server's Sec-WebSocket-Extensions answer v[0..n) to our one
 * offer (RFC 7692 §7.1): permessage-deflate and its parameters, each at most
 * once, nothing else. Sets c->pmd and the parameters; returns -1 after
 * failing the connection on anything we did not offer or cannot honour. */
static int parse_pmd_answer(conn *c, const char *v, size_t n)
{
    static const char name[] = "permessage-deflate";
    const char *end = v + n, *q;
    bool seen[4] = { false, false, false, false };
    char canon[160];
    int cl = 0;

    if (memchr(v, ',', n) != NULL) {
        conn_fail(c, E_HTTP, "more than one extension in the answer: %.*s", (int)n, v);
        return -1;
    }
    q = memchr(v, ';', n);
    q = q != NULL ? q : end;
    while (q > v && (q[-1] == ' ' || q[-1] == '\t'))
        q--;
    if ((size_t)(q - v) != sizeof(name) - 1 || strncasecmp(v, name, sizeof(name) - 1) != 0) {
        conn_fail(c, E_HTTP, "an extension we did not offer: %.*s", (int)n, v);
        return -1;
    }
    c->cnct = c->snct = false;
    c->cwb = c->swb = 15;
    for (const char *p = memchr(v, ';', n); p != NULL && p < end;) {
        const char *s = p + 1, *e, *eq, *val = NULL, *ve = NULL;
        size_t kl;
        int k;
        p = memchr(s, ';', (size_t)(end - s));
        e = p != NULL ? p : end;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        eq = memchr(s, '=', (size_t)(e - s));
        kl = (size_t)((eq != NULL ? eq : e) - s);
        while (kl > 0 && (s[kl - 1] == ' ' || s[kl - 1] == '\t'))
            kl--;
        if (eq != NULL) {
            for (val = eq + 1; val < e && (*val == ' ' || *val == '\t'); val++)
                ;
            ve = e;
            if (ve - val >= 2 && *val == '"' && ve[-1] == '"') {   /* a quoted-string */
                val++;
                ve--;
            }
        }
#define KEY(str) (kl == sizeof(str) - 1 && strncasecmp(s, str, kl) == 0)
        k = KEY("server_no_context_takeover")   ? 0
            : KEY("client_no_context_takeover") ? 1
            : KEY("server_max_window_bits")     ? 2
            : KEY("client_max_window_bits")     ? 3 : -1;
#undef KEY
        if (k < 0 || seen[k]) {
            conn_fail(c, E_HTTP, "%s parameter in the answer: %.*s", k < 0 ? "unknown" : "repeated",
                      (int)n, v);
            return -1;
        }
        seen[k] = true;
        if (k < 2) {
            if (val != NULL) {
                conn_fail(c, E_HTTP, "a value where none belongs: %.*s", (int)n, v);
                return -1;
            }
            if (k == 0)
                c->snct = true;
            else
                c->cnct = true;
        } else {
            unsigned bits = 0;
            if (val == NULL || ve - val < 1 || ve - val > 2 || !isdigit((unsigned char)val[0]) ||
                (ve - val == 2 && !isdigit((unsigned char)val[1])) ||
                (bits = (unsigned)strtoul(val, NULL, 10)) < 8 || bits > 15 ||
                (ve - val == 2 && val[0] == '0')) {
                conn_fail(c, E_HTTP, "window bits not in 8..15: %.*s", (int)n, v);
                return -1;
            }
            /* zlib's raw deflate cannot use a 256-byte window (it would use
             * 512 bytes, more than we were allowed) */
            if (k == 3 && bits == 8) {
                conn_fail(c, E_HTTP, "client_max_window_bits=8: zlib cannot compress that way");
                return -1;
            }
            if (k == 2)
                c->swb = (uint8_t)bits;
            else
                c->cwb = (uint8_t)bits;
        }
    }
    c->pmd = true;
    /* one canonical spelling, to print and to see every connection agree */
    cl = snprintf(canon, sizeof(canon), "%s%s", c->snct ? ",server_no_context_takeover" : "",
                  c->cnct ? ",client_no_context_takeover" : "");
    if (seen[2])
        cl += snprintf(canon + cl, sizeof(canon) - (size_t)cl, ",server_max_window_bits=%u", c->swb);
    if (seen[3])
        cl += snprintf(canon + cl, sizeof(canon) - (size_t)cl, ",client_max_window_bits=%u", c->cwb);
    if (cl == 0)
        snprintf(canon, sizeof(canon), ",none");
    if (c->b->pmd_answer[0] == '\0')
        snprintf(c->b->pmd_answer, sizeof(c->b->pmd_answer), "%s", canon + 1);
    else if (strcmp(c->b->pmd_answer, canon + 1) != 0)
        c->b->pmd_varied = true;
    return 0;
}

/* Parses the handshake response in buf[0..len). Returns the head's length,
 * 0 when it is incomplete, -1 after failing the connection. */
static long parse_response(conn *c, const uint8_t *buf, size_t len)
{
    const char *s = (const char *)buf, *end = NULL, *line, *eol;
    bool up = false, co = false, ac = false;

    for (size_t i = 3; i < len; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            end = s + i + 1;
            break;
        }
    if (end == NULL) {
        if (len > MAX_HEAD) {
            conn_fail(c, E_HTTP, "response head over %d bytes", MAX_HEAD);
            return -1;
        }
        return 0;
    }
    if (end - s < 13 || memcmp(s, "HTTP/1.1 101 ", 13) != 0) {
        const char *nl = memchr(s, '\r', (size_t)(end - s));
        conn_fail(c, E_HTTP, "status: %.*s", (int)(nl - s > 60 ? 60 : nl - s), s);
        return -1;
    }
    line = memchr(s, '\n', (size_t)(end - s)) + 1;
    for (; line < end - 2; line = eol + 2) {
        const char *colon, *v, *ve;
        eol = memchr(line, '\r', (size_t)(end - line));
        colon = memchr(line, ':', (size_t)(eol - line));
        if (colon == NULL) {
            conn_fail(c, E_HTTP, "header line without a colon");
            return -1;
        }
        for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
            ;
        for (ve = eol; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
            ;
#define IS(name) ((size_t)(colon - line) == sizeof(name) - 1 && strncasecmp(line, name, sizeof(name) - 1) == 0)
        if (IS("upgrade"))
            up = ve - v == 9 && strncasecmp(v, "websocket", 9) == 0;
        else if (IS("connection"))
            co = has_token(v, (size_t)(ve - v), "upgrade");
        else if (IS("sec-websocket-accept"))
            ac = ve - v == 28 && memcmp(v, c->accept, 28) == 0;
        else if (IS("sec-websocket-extensions")) {
            if (!c->b->deflate || c->pmd) {
                conn_fail(c, E_HTTP, "%s: %.*s",
                          c->pmd ? "a second extensions field" : "an extension we did not offer",
                          (int)(ve - v), v);
                return -1;
            }
            if (parse_pmd_answer(c, v, (size_t)(ve - v)) != 0)
                return -1;
        }
#undef IS
    }
    if (!up || !co || !ac) {
        conn_fail(c, E_HTTP, "bad 101: upgrade=%d connection=%d accept=%d", up, co, ac);
        return -1;
    }
    if (c->b->deflate && !c->pmd) {
        conn_fail(c, E_HTTP, "the server declined permessage-deflate");
        return -1;
    }
    return end - s;
}

/* Handles whole server frames in buf[0..len). Returns bytes consumed (a
 * trailing partial frame is left), or -1 after the connection was closed. */
static long parse_frames(conn *c, uint8_t *buf, size_t len)
{
    size_t off = 0;

    while (len - off >= 2) {
        uint8_t *f = buf + off;
        size_t avail = len - off, h = 2;
        uint64_t plen = f[1] & 0x7f;
        int op = f[0] & 0x0f;

        /* RSV1 only on a data frame of a connection with permessage-deflate */
        if ((f[0] & 0x30) || ((f[0] & 0x40) && (!c->pmd || (op != 1 && op != 2)))) {
            conn_fail(c, E_PROTO, "RSV bits 0x%02x set in a server frame (opcode %d)", f[0] & 0x70, op);
            return -1;
        }
        if (f[1] & 0x80) {
            conn_fail(c, E_PROTO, "masked server frame");
            return -1;
        }
        if (plen == 126) {
            if (avail < 4)
                break;
            plen = (uint64_t)f[2] << 8 | f[3];
            h = 4;
        } else if (plen == 127) {
            if (avail < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = plen << 8 | f[2 + i];
            h = 10;
        }
        if (plen > MAX_FRAME) {
            conn_fail(c, E_PROTO, "server frame of %" PRIu64 " bytes (wsload takes %u)", plen, MAX_FRAME);
            return -1;
        }
        if (avail - h < plen)
            break;
        off += h + (size_t)plen;
        if (!(f[0] & 0x80) || op == 0) {
            conn_fail(c, E_PROTO, "fragmented server message (not expected here)");
            return -1;
        }
        switch (op) {
        case 1:
        case 2:
            if (c->close_rcvd)
                break;
            if (f[0] & 0x40) {
                const uint8_t *m;
                long z = pmd_inflate(c, f + h, (size_t)plen, &m);
                if (z < 0 || mode_on_message(c, m, (size_t)z) != 0)
                    return -1;
                break;
            }
            if (c->pmd)
                c->b->rx_plain++;
            if (mode_on_message(c, f + h, (size_t)plen) != 0)
                return -1;
            break;
        case 8:
            c->close_rcvd = true;
            if (!c->close_sent) {
                uint16_t code = plen >= 2 ? (uint16_t)(f[h] << 8 | f[h + 1]) : 0;
                if (c->b->mode != M_HANDSHAKE || c->st == CS_OPEN) {
                    conn_fail(c, E_EOF, "server closed with code %u", code);
                    return -1;
                }
                queue_close(c, code);
            }
            if (c->b->mode == M_HANDSHAKE) {
                /* Both close frames are through. RFC 6455 §7.1.1 lets the
                 * client close TCP now rather than wait for the server's FIN,
                 * so a server that waits for ours stalls nothing. */
                conn_flush(c);
                if (c->st != CS_FREE)
                    conn_close(c);
                return -1;
            }
            return (long)len;   /* nothing after a close frame counts */
        case 9:
            if (plen > 125 || queue_frame(c, 10, f + h, (size_t)plen) != 0) {
                conn_fail(c, E_PROTO, "bad ping");
                return -1;
            }
            break;
        case 10:
            break;
        default:
            conn_fail(c, E_PROTO, "reserved opcode %d", op);
            return -1;
        }
    }
    return (long)off;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    bench *b = c->b;
    uint8_t *buf = b->scratch;
    size_t have = c->rlen, len, used = 0;
    ssize_t n;
    long r;

    (void)what;
    if (have > 0)
        memcpy(buf, c->rbuf, have);
    n = read(fd, buf + have, SCRATCH - have);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            conn_fail(c, c->st == CS_CONNECTING ? E_CONNECT : E_IO, "%s: %s",
                      c->st == CS_CONNECTING ? "connect" : "read", strerror(errno));
        return;
    }
    if (n == 0 || c->st == CS_CONNECTING) {
        mode_on_eof(c);
        return;
    }
    len = have + (size_t)n;
    if (c->st == CS_HANDSHAKE) {
        if ((r = parse_response(c, buf, len)) < 0)
            return;
        if (r == 0) {
            if (grow(&c->rbuf, &c->rcap, len) != 0) {
                conn_fail(c, E_IO, "out of memory");
                return;
            }
            memcpy(c->rbuf, buf, len);
            c->rlen = len;
            return;
        }
        used = (size_t)r;
        c->st = CS_OPEN;
        c->upgraded = true;
        b->pending--;
        b->open++;
        mode_on_open(c);
        if (c->st == CS_FREE)
            return;
    }
    if ((r = parse_frames(c, buf + used, len - used)) < 0)
        return;
    used += (size_t)r;
    c->rlen = len - used;
    if (c->rlen > 0) {
        if (grow(&c->rbuf, &c->rcap, c->rlen) != 0) {
            conn_fail(c, E_IO, "out of memory");
            return;
        }
        memmove(c->rbuf, buf + used, c->rlen);
    }
    if (b->pub_dirty) {
        b->pub_dirty = false;
        event_active(b->phase_ev, 0, 0);
    }
    conn_flush(c);
}

/* ---- the end of a run ---------------------------------------------------- */

static void finish(bench *b)
{
    b->stop = true;
    event_base_loopbreak(b->base);
}

/* ---- --json: chat-like payloads ----------------------------------------- */

/* Words of everyday chat, the most frequent first; json_corpus() draws them
 * with a skew towards the front. None holds a quote or a backslash. */
static const char *const words[] = {
    "the", "I", "to", "you", "a", "and", "it", "is", "that", "of", "in", "for", "on", "this",
    "my", "we", "be", "have", "no", "just", "so", "but", "not", "what", "do", "with", "are",
    "can", "was", "me", "at", "if", "like", "all", "get", "lol", "yeah", "ok", "they", "there",
    "out", "up", "about", "now", "one", "will", "know", "think", "your", "how", "good", "when",
    "would", "time", "go", "from", "an", "or", "more", "see", "some", "people", "got", "here",
    "still", "really", "today", "then", "been", "need", "make", "work", "want", "going", "new",
    "thanks", "did", "back", "day", "right", "well", "also", "any", "only", "too", "way", "why",
    "again", "after", "game", "should", "could", "first", "last", "because", "yes", "sure",
    "maybe", "actually", "never", "always", "someone", "something", "anyone", "tonight",
    "tomorrow", "morning", "week", "build", "server", "deploy", "test", "patch", "release",
    "bug", "fix", "log", "error", "config", "merge", "branch", "review", "meeting", "coffee",
    "lunch", "home", "weekend", "music", "movie", "match", "team", "score", "player", "level",
    "map", "room", "chat", "message", "link", "video", "photo", "picture", "phone", "laptop",
    "update", "version", "issue", "ticket", "question", "answer", "idea", "plan", "problem",
    "great", "nice", "cool", "awesome", "weird", "funny", "sorry", "please", "hello", "hey",
    "bye", "later", "soon", "already", "almost", "probably", "definitely", "exactly", "literally",
    "basically", "honestly", "anyway", "though", "before", "while", "until", "since", "every",
    "other", "another", "many", "much", "few", "little", "big", "small", "long", "short", "old",
    "young", "fast", "slow", "early", "late", "hard", "easy", "better", "best", "worse", "worst",
    "happy", "tired", "busy", "ready", "done", "free", "open", "closed", "broken", "working",
    "running", "waiting", "looking", "thinking", "talking", "playing", "watching", "reading",
    "writing", "coming", "leaving", "trying", "saying", "asked", "told", "said", "heard",
    "found", "lost", "won", "bought", "sent", "made", "took", "gave", "left", "started",
    "finished", "restart", "download", "upload", "password", "account", "screen", "window",
    "network", "cloud", "cache", "memory", "latency", "socket", "browser", "keyboard", "mouse",
    "weather", "rain", "sun", "snow", "city", "train", "bus", "car", "office", "school",
    "friend", "family", "mom", "dad", "dog", "cat", "pizza", "tea", "beer", "dinner", "party",
    "birthday", "holiday", "summer", "winter", "Monday", "Friday", "Saturday", "Sunday",
};

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Fills b->corpus with CORPUS + MAX_SIZE bytes of sentences: 3 to 18 words,
 * the first capitalised, ending in . ? or !, now and then a comma, a number,
 * a @mention or an emoticon. A fixed seed, so every run compresses alike.
 * Returns -1 when out of memory. */
static int json_corpus(bench *b)
{
    const size_t nw = sizeof(words) / sizeof(words[0]), cap = CORPUS + MAX_SIZE;
    static const char *const emo[] = { ":)", ":D", ":(", ";)", "xD", "^^" };
    uint64_t seed = 0x6761746568617573u;  /* "gatehous" */
    size_t len = 0;

    if ((b->corpus = malloc(cap + 64)) == NULL)
        return -1;
    while (len < cap) {
        unsigned n = 3 + (unsigned)(splitmix(&seed) % 16);
        for (unsigned i = 0; i < n && len < cap; i++) {
            uint64_t r = splitmix(&seed);
            /* the product of two uniform draws: skewed towards the front */
            size_t k = (size_t)((((r & 0xffff) * ((r >> 16) & 0xffff)) >> 16) * nw >> 16);
            char w[48];
            int wl;
            if ((r >> 32) % 40 == 0)
                wl = snprintf(w, sizeof(w), "%u", (unsigned)((r >> 40) % 2000));
            else if ((r >> 32) % 40 == 1)
                wl = snprintf(w, sizeof(w), "@user%u", (unsigned)((r >> 40) % 1000));
            else
                wl = snprintf(w, sizeof(w), "%s", words[k]);
            if (i == 0 && w[0] >= 'a' && w[0] <= 'z')
                w[0] = (char)(w[0] - 'a' + 'A');
            memcpy(b->corpus + len, w, (size_t)wl);
            len += (size_t)wl;
            if (i + 1 == n) {
                uint64_t e = (r >> 48) % 10;
                b->corpus[len++] = e < 6 ? '.' : e < 8 ? '?' : '!';
                if ((r >> 56) % 8 == 0) {
                    b->corpus[len++] = ' ';
                    memcpy(b->corpus + len, emo[(r >> 59) % 6], 2);
                    len += 2;
                }
            } else if ((r >> 44) % 12 == 0) {
                b->corpus[len++] = ',';
            }
            b->corpus[len++] = ' ';
        }
    }
    return 0;
}

static char *put_dec(char *o, uint64_t v)
{
    char t[20];
    int n = 0;

    do
        t[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0)
        *o++ = t[--n];
    return o;
}

static char *put_str(char *o, const char *str)
{
    size_t n = strlen(str);

    memcpy(o, str, n);
    return o + n;
}

/* Writes b->size bytes of JSON into out:
 *   {"type":TYPE,"room":"lobby","nick":"userNICK","seq":SEQ,"ts":TS,"text":"..."}
 * the text a slice of the corpus from the first word starting after byte
 * `at` (< CORPUS), cut to fit. The same arguments give the same bytes. */
static void json_payload(const bench *b, uint8_t *out, const char *type, unsigned nick,
                         uint64_t seq, uint64_t ts, size_t at)
{
    char *o = (char *)out, *end = (char *)out + b->size - 2;  /* room for "} */

    o = put_str(o, "{\"type\":\"");
    o = put_str(o, type);
    o = put_str(o, "\",\"room\":\"lobby\",\"nick\":\"user");
    o = put_dec(o, nick);
    o = put_str(o, "\",\"seq\":");
    o = put_dec(o, seq);
    o = put_str(o, ",\"ts\":");
    o = put_dec(o, ts);
    o = put_str(o, ",\"text\":\"");
    while (at < CORPUS && b->corpus[at] != ' ')
        at++;
    at++;
    memcpy(o, b->corpus + at, (size_t)(end - o));
    memcpy(end, "\"}", 2);
}

/* The unsigned decimal after `key` in p[0..n), or -1 when there is none. */
static int json_num(const uint8_t *p, size_t n, const char *key, uint64_t *out)
{
    const uint8_t *k = memmem(p, n, key, strlen(key)), *e = p + n;
    uint64_t v = 0;

    if (k == NULL)
        return -1;
    k += strlen(key);
    if (k >= e || *k < '0' || *k > '9')
        return -1;
    for (; k < e && *k >= '0' && *k <= '9'; k++)
        v = v * 10 + (uint64_t)(*k - '0');
    *out = v;
    return 0;
}

/* ---- modes -------------------------------------------------------------- */

/* --json echo: POOL messages, "say"s from user0..user999 with seq and ts
 * of their own, each text a different CORPUS/POOL-byte stretch of the corpus
 * (no two share words, so a server keeping a compression window between
 * messages finds no more repetition than chat has). Connection i sends
 * message (i * 7919 + k) % POOL as its k-th: consecutive messages differ, so
 * a lost, reordered or mixed-up echo still fails the byte-for-byte check,
 * and a message's compressed form can be cached (struct bench: zpool).
 * Returns -1 when out of memory. */
static int json_pool(bench *b)
{
    if ((b->pool = malloc((size_t)POOL * b->size)) == NULL ||
        (b->zpool = calloc(POOL, sizeof(*b->zpool))) == NULL)
        return -1;
    for (unsigned j = 0; j < POOL; j++)
        json_payload(b, b->pool + (size_t)j * b->size, "say", j % 1000, j, b->ts_base + 37 * j,
                     (size_t)j * (CORPUS / POOL));
    return 0;
}

static long echo_pool_index(const conn *c, uint64_t seq)
{
    return (long)(((uint64_t)c->idx * 7919u + seq) % POOL);
}

/* echo payload: 'e', 8 hex of the connection, 16 hex of its counter, pad;
 * --json: the pool's message (echo_pool_index) */
static const uint8_t *echo_payload(const bench *b, const conn *c, uint64_t seq, uint8_t *p)
{
    if (b->json)
        return b->pool + (size_t)echo_pool_index(c, seq) * b->size;
    p[0] = 'e';
    put_hex((char *)p + 1, c->idx, 8);
    put_hex((char *)p + 9, seq, 16);
    memset(p + 25, 'x', b->size - 25);
    return p;
}

static int echo_send(conn *c)
{
    uint8_t p[MAX_SIZE];
    uint64_t seq = c->tx++;
    const uint8_t *m = echo_payload(c->b, c, seq, p);

    return send_text(c, m, c->b->size, c->b->json ? echo_pool_index(c, seq) : -1);
}

/* Queues one fan-out payload of b->size bytes on the publisher: the message
 * itself, or (fanout-chat) the text of a chat "say"; hex digits and 'x' need
 * no JSON escaping. Returns -1 when the publisher failed (closed). */
static int fan_queue(bench *b, const uint8_t *p)
{
    static const char pre[] = "{\"type\":\"say\",\"text\":\"", post[] = "\"}";
    uint8_t j[sizeof(pre) + MAX_SIZE + sizeof(post)];

    if (!b->chat)
        return send_text(b->pub, p, b->size, -1);
    memcpy(j, pre, sizeof(pre) - 1);
    memcpy(j + sizeof(pre) - 1, p, b->size);
    memcpy(j + sizeof(pre) - 1 + b->size, post, sizeof(post) - 1);
    return send_text(b->pub, j, sizeof(pre) - 1 + b->size + sizeof(post) - 1, -1);
}

/* fanout payload: 'P', 8 hex seq, 16 hex send time (ns), pad; sync: 'S', pad.
 * --json: a "say" with the seq and the send time (ns) as "ts", kept in
 * b->ring to compare deliveries with; sync: a "sync" */
static void fan_publish(bench *b)
{
    conn *c = b->pub;
    uint8_t p[MAX_SIZE], *m;

    if (c == NULL || c->st != CS_OPEN)
        return;
    while (b->published < b->msgs && b->published - b->completed < b->window) {
        uint64_t t = now_ns();
        if (b->rate != 0) {
            /* open loop: message k is due at t0 + k/rate, whatever the
             * deliveries do (the window only bounds the ring) */
            uint64_t due;

            if (b->published == 0)
                b->rate_t0 = t;
            due = b->rate_t0 + b->published * 1000000000ull / b->rate;
            if (t < due) {
                struct timeval tv = { .tv_sec = (time_t)((due - t) / 1000000000ull),
                                      .tv_usec = (suseconds_t)((due - t) % 1000000000ull / 1000) };
                if (!evtimer_pending(b->rate_ev, NULL))
                    evtimer_add(b->rate_ev, &tv);
                break;
            }
        }
        if (b->published == b->warm_msgs)
            b->t_warm_pub = t;
        if (b->json) {
            /* a slot is free again once its message reached every receiver */
            m = b->ring + (size_t)(b->published % b->window) * b->size;
            uint64_t at = b->published;
            json_payload(b, m, "say", c->idx, b->published, t, (size_t)(splitmix(&at) % CORPUS));
        } else {
            m = p;
            p[0] = 'P';
            put_hex((char *)p + 1, b->published, 8);
            put_hex((char *)p + 9, t, 16);
            memset(p + 25, 'x', b->size - 25);
        }
        if (fan_queue(b, m) != 0)
            return;
        b->published++;
    }
    conn_flush(c);
}

/* echo --rate: the messages due by now, each from the next connection in
 * turn (open loop: whatever the echoes do); a tick every millisecond. */
static void echo_tick(bench *b)
{
    uint64_t due = (now_ns() - b->rate_t0) * b->rate / 1000000000ull;
    struct timeval ms = { 0, 1000 };

    if (!b->running)
        return;
    for (unsigned tries = 0; b->echo_sent < due && tries < b->nslots * 64; tries++) {
        conn *c = b->c[b->echo_next++ % b->nslots];

        if (c->st != CS_OPEN)
            continue;
        if (echo_send(c) == 0 && c->st == CS_OPEN)
            conn_flush(c);
        b->echo_sent++;
    }
    evtimer_add(b->rate_ev, &ms);
}

static void on_rate(evutil_socket_t fd, short what, void *arg)
{
    bench *b = arg;

    (void)fd;
    (void)what;
    if (b->mode == M_ECHO)
        echo_tick(b);
    else
        fan_publish(b);
}

static void fan_sync(bench *b)
{
    uint8_t p[MAX_SIZE];

    if (b->pub == NULL || b->pub->st != CS_OPEN)
        return;
    if (b->json) {
        json_payload(b, p, "sync", b->pub->idx, 0, now_ns(), 0);
    } else {
        p[0] = 'S';
        memset(p + 1, 'x', b->size - 1);
    }
    if (fan_queue(b, p) == 0)
        conn_flush(b->pub);
}

/* --json: the message's seq and ts, and whether it is a sync; -1 when it is
 * none of ours. */
static int fan_parse_json(const bench *b, const uint8_t *p, size_t n, bool *sync, uint64_t *seq,
                          uint64_t *ts)
{
    static const char say[] = "{\"type\":\"say\",", syn[] = "{\"type\":\"sync\",";
    size_t head = n < 128 ? n : 128;    /* seq and ts are in the first 128 bytes */

    (void)b;
    *sync = n >= sizeof(syn) - 1 && memcmp(p, syn, sizeof(syn) - 1) == 0;
    if (*sync)
        return 0;
    if (n < sizeof(say) - 1 || memcmp(p, say, sizeof(say) - 1) != 0 ||
        json_num(p, head, "\"seq\":", seq) != 0 || json_num(p, head, "\"ts\":", ts) != 0)
        return -1;
    return 0;
}

static int fan_message(conn *c, const uint8_t *p, size_t n)
{
    bench *b = c->b;
    uint64_t seq = 0, ts = 0, t;
    bool sync;

    if (n != b->size) {
        conn_fail(c, E_PROTO, "message of %zu bytes, sent %u", n, b->size);
        return -1;
    }
    if (b->json) {
        if (fan_parse_json(b, p, n, &sync, &seq, &ts) != 0)
            sync = false, seq = UINT64_MAX;
    } else {
        sync = p[0] == 'S';
        if (!sync && (p[0] != 'P' || get_hex(p + 1, 8, &seq) != 0 || get_hex(p + 9, 16, &ts) != 0))
            seq = UINT64_MAX;
    }
    if (sync) {
        if (!c->ready) {
            c->ready = true;
            b->nready++;
        }
        return 0;
    }
    if (seq >= b->published) {
        conn_fail(c, E_PROTO, "not a message we published");
        return -1;
    }
    if (seq < c->next_seq) {       /* a duplicate, or out of order */
        b->dups++;
        return 0;
    }
    /* not a duplicate, so not yet everywhere: its ring slot still holds it */
    if (b->json && memcmp(p, b->ring + (size_t)(seq % b->window) * b->size, n) != 0) {
        conn_fail(c, E_PROTO, "message %" PRIu64 " differs from what was published", seq);
        return -1;
    }
    c->next_seq = seq + 1;          /* a gap shows up as lost at the end */
    c->got++;
    t = now_ns();
    b->t_last_progress = t;
    if (++b->got[seq] == b->subs + 1) {
        b->completed++;
        b->pub_dirty = true;
    }
    if (!c->is_pub && seq >= b->warm_msgs) {
        uint64_t lat = t > ts ? t - ts : 0;
        b->deliveries++;
        b->t_last_deliv = t;
        b->hist[hist_bucket(lat)]++;
        b->lat_n++;
        if (lat > b->lat_max)
            b->lat_max = lat;
    }
    return 0;
}

/* fanout-chat: each message is one JSON object from the chat plugin. The
 * first must be the "welcome" (the connection is in the room: its ready
 * signal); after it only "said" counts, its "text" being a fan-out payload
 * (our texts are hex and 'x', which JSON never escapes, so the text ends at
 * the next quote). "error" fails the connection; "joined" and the rest are
 * ignored. Field order is not relied on: no text or nick of ours holds a
 * quote, so the first "type":" is the object's own. */
static int chat_message(conn *c, const uint8_t *p, size_t n)
{
    static const char tkey[] = "\"type\":\"", xkey[] = "\"text\":\"";
    bench *b = c->b;
    const uint8_t *t, *x, *q;
    size_t rest;

#define TYPE_IS(name) (rest >= sizeof(name) && memcmp(t, name "\"", sizeof(name)) == 0)
    if ((t = memmem(p, n, tkey, sizeof(tkey) - 1)) == NULL) {
        conn_fail(c, E_PROTO, "chat message without a type: %.*s", n > 60 ? 60 : (int)n,
                  (const char *)p);
        return -1;
    }
    t += sizeof(tkey) - 1;
    rest = n - (size_t)(t - p);
    if (TYPE_IS("error")) {
        conn_fail(c, E_PROTO, "chat error: %.*s", n > 100 ? 100 : (int)n, (const char *)p);
        return -1;
    }
    if (!c->welcomed) {
        if (!TYPE_IS("welcome")) {
            conn_fail(c, E_PROTO, "first chat message is not a welcome: %.*s",
                      n > 60 ? 60 : (int)n, (const char *)p);
            return -1;
        }
        c->welcomed = true;
        b->nwelcome++;
        return 0;
    }
    if (!TYPE_IS("said"))
        return 0;
#undef TYPE_IS
    if ((x = memmem(p, n, xkey, sizeof(xkey) - 1)) == NULL ||
        (q = memchr(x + sizeof(xkey) - 1, '"', n - (size_t)(x + sizeof(xkey) - 1 - p))) == NULL) {
        conn_fail(c, E_PROTO, "said without a text");
        return -1;
    }
    x += sizeof(xkey) - 1;
    return fan_message(c, x, (size_t)(q - x));
}

static int mode_on_message(conn *c, const uint8_t *p, size_t n)
{
    bench *b = c->b;
    uint8_t want[4096];

    switch (b->mode) {
    case M_ECHO:
        if (n != b->size) {
            conn_fail(c, E_PROTO, "echo of %zu bytes, sent %u", n, b->size);
            return -1;
        }
        if (memcmp(p, echo_payload(b, c, c->rx, want), n) != 0) {
            conn_fail(c, E_PROTO, "echo %" PRIu64 " does not match what was sent", c->rx);
            return -1;
        }
        c->rx++;
        b->done++;
        if (b->running && b->rate == 0 && echo_send(c) != 0)
            return -1;      /* failed and closed */
        return 0;
    case M_FANOUT:
        return b->chat ? chat_message(c, p, n) : fan_message(c, p, n);
    default:
        conn_fail(c, E_PROTO, "unexpected message");
        return -1;
    }
}

static void mode_on_open(conn *c)
{
    bench *b = c->b;

    if (b->mode == M_HANDSHAKE) {
        b->done++;
        c->st = CS_CLOSING;
        c->deadline = now_ns() + (uint64_t)(b->timeout * 1e9);
        queue_close(c, 1000);
    } else {
        event_active(b->refill, 0, 0);     /* a slot for the next one */
    }
}

static void mode_on_eof(conn *c)
{
    if (c->b->mode == M_HANDSHAKE && c->close_rcvd) {
        conn_close(c);      /* the server closed TCP after the close handshake */
        return;
    }
    conn_fail(c, E_EOF, "%s", c->st == CS_OPEN || c->st == CS_CLOSING
                                  ? "server closed the connection"
                                  : "server closed the connection during the handshake");
}

static void on_refill(evutil_socket_t fd, short what, void *arg)
{
    bench *b = arg;
    unsigned limit = b->mode == M_HANDSHAKE ? b->nslots : b->concurrency;

    (void)fd;
    (void)what;
    if (b->stop)
        return;
    if (b->mode == M_HANDSHAKE) {
        if (!b->running && b->phase > 0)
            return;
        for (unsigned i = 0; i < b->nslots; i++)
            if (b->c[i]->st == CS_FREE)
                conn_start(b, b->c[i]);
        return;
    }
    /* open each slot once, at most `concurrency` handshakes at a time */
    while (b->started < b->nslots && b->pending < limit)
        conn_start(b, b->c[b->started]);
    if (!b->opening_done && b->started == b->nslots && b->pending == 0) {
        b->opening_done = true;
        event_active(b->phase_ev, 0, 0);
    }
}

/* Drives each mode through its phases; activated when all connections are
 * in, by timers, and (fanout) when the publisher may send more. */
static void on_phase(evutil_socket_t fd, short what, void *arg)
{
    bench *b = arg;
    uint64_t t = now_ns();

    (void)fd;
    (void)what;
    if (b->stop)
        return;
    switch (b->mode) {
    case M_ECHO:
        if (b->phase == 0 && b->opening_done) {
            if (b->open != b->nslots) {
                fprintf(stderr, "wsload: only %u of %u connections opened\n", b->open, b->nslots);
                finish(b);
                return;
            }
            b->phase = 1;
            b->running = true;
            b->t0 = t;
            if (b->rate != 0) {
                b->rate_t0 = now_ns();
                echo_tick(b);
                break;
            }
            for (unsigned i = 0; i < b->nslots; i++) {
                conn *c = b->c[i];
                for (unsigned k = 0; k < b->inflight && c->st == CS_OPEN; k++)
                    echo_send(c);
                if (c->st == CS_OPEN)
                    conn_flush(c);
            }
        }
        break;
    case M_FANOUT:
        if (b->phase == 0 && b->opening_done) {
            if (b->open != b->nslots) {
                fprintf(stderr, "wsload: only %u of %u connections opened\n", b->open, b->nslots);
                finish(b);
                return;
            }
            b->phase = 1;          /* sync: until every receiver has seen one */
            b->t0 = t;
            b->t_sync = 0;
        }
        if (b->phase == 1) {
            if (b->nready == b->nslots && (!b->chat || b->nwelcome == b->nslots)) {
                b->phase = 2;
                b->running = true;
                b->t_measure = t;
                b->t_last_progress = t;
                cpu_start(b);
            } else if (t - b->t_sync >= 100000000u) {
                b->t_sync = t;
                fan_sync(b);
            }
        }
        if (b->phase == 2) {
            fan_publish(b);
            if (b->completed == b->msgs) {
                b->t_end = t;
                finish(b);
            }
        }
        break;
    case M_IDLE:
        if (b->phase == 0 && b->opening_done) {
            b->phase = 1;
            b->t0 = t;            /* settle, then measure (on_tick) */
        }
        break;
    case M_HANDSHAKE:
        break;
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    bench *b = arg;
    uint64_t t = now_ns();

    (void)fd;
    (void)what;
    for (unsigned i = 0; i < b->nslots; i++) {
        conn *c = b->c[i];
        if ((c->st == CS_CONNECTING || c->st == CS_HANDSHAKE || c->st == CS_CLOSING) &&
            t > c->deadline) {
            if (c->st == CS_CLOSING) {
                b->close_timeouts++;     /* the handshake itself was counted */
                conn_close(c);
            } else {
                conn_fail(c, E_TIMEOUT, "no %s within %.1fs",
                          c->st == CS_CONNECTING ? "connect" : "101 response", b->timeout);
            }
        }
    }
    switch (b->mode) {
    case M_ECHO:
        if (b->running && b->t_measure == 0 && t - b->t0 >= (uint64_t)(b->warmup * 1e9)) {
            b->t_measure = t;
            b->done_at_measure = b->done;
            cpu_start(b);
        }
        if (b->t_measure && t - b->t_measure >= (uint64_t)(b->duration * 1e9)) {
            b->t_end = t;
            finish(b);
        }
        break;
    case M_HANDSHAKE:
        if (b->t_measure == 0 && t - b->t0 >= (uint64_t)(b->warmup * 1e9)) {
            b->t_measure = t;
            b->done_at_measure = b->done;
            cpu_start(b);
        }
        if (b->t_measure && t - b->t_measure >= (uint64_t)(b->duration * 1e9)) {
            b->t_end = t;
            finish(b);
        }
        break;
    case M_FANOUT:
        if (b->phase == 1 && t - b->t0 > (uint64_t)(b->timeout * 1e9)) {
            fprintf(stderr, "wsload: only %" PRIu64 " of %u receivers saw a sync message in %.1fs%s\n",
                    b->nready, b->nslots, b->timeout, b->chat ? " (or a welcome)" : "");
            finish(b);
        } else if (b->phase == 1) {
            event_active(b->phase_ev, 0, 0);
        } else if (b->phase == 2 && t - b->t_last_progress > (uint64_t)(b->timeout * 1e9)) {
            fprintf(stderr, "wsload: no delivery for %.1fs; giving up\n", b->timeout);
            b->t_end = t;
            finish(b);
        }
        break;
    case M_IDLE:
        if (b->phase == 1 && t - b->t0 >= (uint64_t)(b->settle * 1e9)) {
            b->t_end = t;
            finish(b);
        }
        break;
    }
    /* a hard bound on every run */
    if (b->t0 != 0 && t - b->t0 > (uint64_t)((b->duration + b->warmup + 10 * b->timeout + 60) * 1e9)) {
        fprintf(stderr, "wsload: run exceeded its time bound\n");
        b->t_end = t;
        finish(b);
    }
}

/* ---- main --------------------------------------------------------------- */

static int parse_src(bench *b, const char *arg)
{
    char tmp[256], *save = NULL, *tok;

    snprintf(tmp, sizeof(tmp), "%s", arg);
    for (tok = strtok_r(tmp, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(tok, '-');
        struct in_addr lo, hi;
        if (dash != NULL)
            *dash = '\0';
        if (inet_pton(AF_INET, tok, &lo) != 1 || (dash && inet_pton(AF_INET, dash + 1, &hi) != 1))
            return -1;
        if (dash == NULL)
            hi = lo;
        for (uint32_t a = ntohl(lo.s_addr); a <= ntohl(hi.s_addr); a++) {
            if (b->nsrc == MAX_SRC)
                return -1;
            b->src[b->nsrc].sin_family = AF_INET;
            b->src[b->nsrc].sin_addr.s_addr = htonl(a);
            b->src[b->nsrc].sin_port = 0;
            b->nsrc++;
        }
    }
    return b->nsrc > 0 ? 0 : -1;
}

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: wsload --mode echo|fanout|fanout-chat|handshake|idle --port PORT [options]\n"
            "  --host ADDR        server IPv4 address (127.0.0.1)\n"
            "  --path PATH        request target (/ws/echo; fanout: /ws/pubsub?topic=bench;\n"
            "                     fanout-chat: /ws/chat?room=bench, nick=sN appended)\n"
            "  --port2 PORT       fanout: odd subscribers connect to this second server\n"
            "                     (same host); the publisher stays on PORT\n"
            "  --label NAME       server name in the result line (server)\n"
            "  --conns N          echo: 100, idle: 10000\n"
            "  --inflight N       echo: messages in flight per connection (8)\n"
            "  --size N           message bytes (32, with --json 512; 25..4096, with --json 160..)\n"
            "  --json             echo/fanout: chat-like JSON messages of SIZE bytes, not hex and 'x'\n"
            "  --deflate          offer permessage-deflate (RFC 7692); a server that declines fails\n"
            "                     the connection; compress what we send, inflate what has RSV1\n"
            "  --deflate-level N  our zlib compression level, 0..9 (1); memLevel 8, the window the\n"
            "                     server allows (client_max_window_bits, else 15)\n"
            "  --duration S       echo/handshake: measured seconds (10)\n"
            "  --warmup S         echo/handshake: unmeasured seconds first (1)\n"
            "  --subs N           fanout: subscribers besides the publisher (1000)\n"
            "  --msgs N           fanout: messages published (1000)\n"
            "  --warm-msgs N      fanout: first messages left out of rate and latency (100)\n"
            "  --window N         fanout: messages in flight, not yet delivered everywhere (8;\n"
            "                     with --rate 4096: a bound on the ring only)\n"
            "  --rate N           fanout: publish N messages/s on a schedule (open loop) instead\n"
            "                     of keeping WINDOW in flight; latency then shows queueing;\n"
            "                     echo: N messages/s in all, from each connection in turn,\n"
            "                     instead of INFLIGHT per connection\n"
            "  --concurrency N    handshakes in flight (handshake: 50; others open 100 at a time)\n"
            "  --src A-B[,C]      IPv4 source addresses to bind, round robin\n"
            "  --pid PID          server process: idle mode reads its VmRSS; CPU use is printed;\n"
            "                     up to 4 times (servers sharing a core): their CPU is summed\n"
            "  --settle S         idle: wait before reading VmRSS again (2)\n"
            "  --timeout S        per-connection handshake/close and fanout progress timeout (10)\n");
}

/* The result line's payload and permessage-deflate fields: json=yes; with
 * --deflate the answer's parameters (pmd=, "none" for a bare
 * permessage-deflate; pmd_varied=yes when connections got different ones),
 * server messages that came compressed (rx_deflated) and plain (rx_plain),
 * how many inflates and deflates zlib really did (the rest came from the
 * caches), and compressed/uncompressed bytes each way (rx_ratio, tx_ratio). */
static void print_payload(const bench *b)
{
    if (b->json)
        printf(" json=yes");
    if (!b->deflate)
        return;
    printf(" deflate=yes pmd=%s%s", b->pmd_answer[0] ? b->pmd_answer : "-",
           b->pmd_varied ? " pmd_varied=yes" : "");
    if (b->mode != M_ECHO && b->mode != M_FANOUT)
        return;
    printf(" rx_deflated=%" PRIu64 " rx_plain=%" PRIu64 " rx_inflates=%" PRIu64 " tx_deflates=%" PRIu64,
           b->rx_z, b->rx_plain, b->rx_inflates, b->tx_deflates);
    if (b->rx_zbytes > 0)
        printf(" rx_ratio=%.3f", (double)b->rx_zwire / (double)b->rx_zbytes);
    if (b->tx_zbytes > 0)
        printf(" tx_ratio=%.3f", (double)b->tx_zwire / (double)b->tx_zbytes);
}

static int opt_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *e;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &e, 10);
    if (errno != 0 || e == s || *e != '\0' || v > max || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "mode", 1, NULL, 'm' },      { "host", 1, NULL, 'H' },       { "port", 1, NULL, 'p' },
        { "path", 1, NULL, 'P' },      { "label", 1, NULL, 'l' },      { "conns", 1, NULL, 'c' },
        { "inflight", 1, NULL, 'i' },  { "size", 1, NULL, 's' },       { "duration", 1, NULL, 'd' },
        { "warmup", 1, NULL, 'w' },    { "subs", 1, NULL, 'S' },       { "msgs", 1, NULL, 'M' },
        { "window", 1, NULL, 'W' },    { "rate", 1, NULL, 'R' },    { "concurrency", 1, NULL, 'C' }, { "src", 1, NULL, 'r' },
        { "pid", 1, NULL, 'x' },       { "settle", 1, NULL, 'z' },     { "timeout", 1, NULL, 't' },
        { "warm-msgs", 1, NULL, 'A' }, { "port2", 1, NULL, 'q' },      { "help", 0, NULL, 'h' },
        { "json", 0, NULL, 'J' },      { "deflate", 0, NULL, 'D' },    { "deflate-level", 1, NULL, 'L' },
        { NULL, 0, NULL, 0 },
    };
    bench B = { 0 }, *b = &B;
    const char *mode = NULL;
    unsigned long long v;
    double secs = 0;
    struct rlimit rl;
    struct timeval tv = { 0, 50000 };
    int o, rc = 1;
    bool bad = false, size_set = false, window_set = false;
    const char *zname;
    struct timespec wall;

    b->label = "server";
    b->core[0] = b->core[1] = -1;
    b->host = "127.0.0.1";
    b->port = b->port2 = -1;
    b->conns = 0;
    b->inflight = 8;
    b->size = 32;
    b->duration = 10;
    b->warmup = 1;
    b->subs = 1000;
    b->msgs = 1000;
    b->warm_msgs = 100;
    b->window = 8;
    b->settle = 2;
    b->timeout = 10;
    b->zlevel = 1;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'm': mode = optarg; break;
        case 'H': b->host = optarg; break;
        case 'P': b->path = optarg; break;
        case 'l': b->label = optarg; break;
        case 'r': bad |= parse_src(b, optarg) != 0; break;
        case 'p': bad |= opt_uint(optarg, 65535, &v) != 0 || v == 0; b->port = (int)v; break;
        case 'c': bad |= opt_uint(optarg, 1000000, &v) != 0 || v == 0; b->conns = (unsigned)v; break;
        case 'i': bad |= opt_uint(optarg, 100000, &v) != 0 || v == 0; b->inflight = (unsigned)v; break;
        case 's': bad |= opt_uint(optarg, MAX_SIZE, &v) != 0; b->size = (unsigned)v; size_set = true; break;
        case 'J': b->json = true; break;
        case 'D': b->deflate = true; break;
        case 'L': bad |= opt_uint(optarg, 9, &v) != 0; b->zlevel = (int)v; break;
        case 'S': bad |= opt_uint(optarg, 1000000, &v) != 0 || v == 0; b->subs = (unsigned)v; break;
        case 'M': bad |= opt_uint(optarg, 100000000, &v) != 0 || v == 0; b->msgs = v; break;
        case 'A': bad |= opt_uint(optarg, 100000000, &v) != 0; b->warm_msgs = (unsigned)v; break;
        case 'W': bad |= opt_uint(optarg, 1000000, &v) != 0 || v == 0; b->window = (unsigned)v; window_set = true; break;
        case 'R': bad |= opt_uint(optarg, 10000000, &v) != 0 || v == 0; b->rate = (unsigned)v; break;
        case 'C': bad |= opt_uint(optarg, 1000000, &v) != 0 || v == 0; b->concurrency = (unsigned)v; break;
        case 'q': bad |= opt_uint(optarg, 65535, &v) != 0 || v == 0; b->port2 = (int)v; break;
        case 'x':
            bad |= opt_uint(optarg, 1u << 30, &v) != 0 || v == 0 || b->npids == MAX_PIDS;
            if (!bad) {
                b->pids[b->npids++] = (long)v;
                if (b->pid == 0)
                    b->pid = (long)v;
            }
            break;
        case 'd': b->duration = strtod(optarg, NULL); bad |= !(b->duration > 0 && b->duration < 3600); break;
        case 'w': b->warmup = strtod(optarg, NULL); bad |= !(b->warmup >= 0 && b->warmup < 3600); break;
        case 'z': b->settle = strtod(optarg, NULL); bad |= !(b->settle >= 0 && b->settle < 3600); break;
        case 't': b->timeout = strtod(optarg, NULL); bad |= !(b->timeout > 0 && b->timeout < 3600); break;
        case 'h': usage(stdout); return 0;
        default: bad = true; break;
        }
    }
    if (mode == NULL || strcmp(mode, "echo") == 0)
        b->mode = M_ECHO;
    else if (strcmp(mode, "fanout") == 0)
        b->mode = M_FANOUT;
    else if (strcmp(mode, "fanout-chat") == 0) {
        b->mode = M_FANOUT;
        b->chat = true;
    }
    else if (strcmp(mode, "handshake") == 0)
        b->mode = M_HANDSHAKE;
    else if (strcmp(mode, "idle") == 0)
        b->mode = M_IDLE;
    else
        bad = true;
    if (mode == NULL || b->port < 0 || optind != argc)
        bad = true;
    if (b->json && !size_set)
        b->size = 512;
    if (b->rate != 0 && !window_set)
        b->window = 4096;
    if (b->rate != 0 && b->mode != M_FANOUT && b->mode != M_ECHO)
        bad = true;
    if (b->json && ((b->mode != M_ECHO && b->mode != M_FANOUT) || b->chat || b->size < JSON_MIN))
        bad = true;
    if (b->mode == M_ECHO && b->size < 25)
        bad = true;
    if (b->mode == M_FANOUT && (b->size < 25 || b->warm_msgs >= b->msgs))
        bad = true;
    if (b->mode == M_IDLE && b->pid <= 0)
        bad = true;
    if (b->port2 > 0 && (b->mode != M_FANOUT || b->port2 == b->port))
        bad = true;
    if (bad || inet_pton(AF_INET, b->host, &b->dst.sin_addr) != 1) {
        usage(stderr);
        return 2;
    }
    b->dst.sin_family = AF_INET;
    b->dst.sin_port = htons((uint16_t)b->port);
    snprintf(b->host_hdr, sizeof(b->host_hdr), "%s:%d", b->host, b->port);
    b->dst2 = b->dst;
    if (b->port2 > 0) {
        b->dst2.sin_port = htons((uint16_t)b->port2);
        snprintf(b->host_hdr2, sizeof(b->host_hdr2), "%s:%d", b->host, b->port2);
    }
    if (b->path == NULL)
        b->path = b->chat ? "/ws/chat?room=bench"
                  : b->mode == M_FANOUT ? "/ws/pubsub?topic=bench" : "/ws/echo";
    if (b->concurrency == 0)
        b->concurrency = b->mode == M_HANDSHAKE ? 50 : 100;
    switch (b->mode) {
    case M_ECHO: b->nslots = b->conns ? b->conns : 100; break;
    case M_FANOUT: b->nslots = b->subs + 1; break;
    case M_HANDSHAKE: b->nslots = b->concurrency; break;
    case M_IDLE: b->nslots = b->conns ? b->conns : 10000; break;
    }

    signal(SIGPIPE, SIG_IGN);   /* a peer reset is an error to count, not a death */

    /* one socket per connection, plus slack */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)b->nslots + 32) {
        fprintf(stderr, "wsload: RLIMIT_NOFILE is %llu, %u connections need more (ulimit -n)\n",
                (unsigned long long)rl.rlim_cur, b->nslots);
        return 2;
    }
    if (getrandom(b->rng, sizeof(b->rng), 0) != (ssize_t)sizeof(b->rng) || (b->rng[0] | b->rng[1]) == 0)
        b->rng[0] = now_ns() | 1;

    clock_gettime(CLOCK_REALTIME, &wall);
    b->ts_base = (uint64_t)wall.tv_sec * 1000 + (uint64_t)wall.tv_nsec / 1000000;
    if ((b->json && json_corpus(b) != 0) || (b->json && b->mode == M_ECHO && json_pool(b) != 0) ||
        (b->deflate && (b->zcache = calloc(ZC_SLOTS, sizeof(*b->zcache))) == NULL) ||
        (b->json && b->mode == M_FANOUT && (b->ring = malloc((size_t)b->window * b->size)) == NULL) ||
        (b->deflate && ((b->zout = malloc(MAX_FRAME)) == NULL || (b->zbuf = malloc(ZBUF)) == NULL))) {
        fprintf(stderr, "wsload: out of memory\n");
        return 1;
    }
    b->scratch = malloc(SCRATCH);
    b->c = calloc(b->nslots, sizeof(*b->c));
    if (b->mode == M_FANOUT)
        b->got = calloc(b->msgs, sizeof(*b->got));
    if (b->scratch == NULL || b->c == NULL || (b->mode == M_FANOUT && b->got == NULL)) {
        fprintf(stderr, "wsload: out of memory\n");
        return 1;
    }
    for (unsigned i = 0; i < b->nslots; i++) {
        if ((b->c[i] = calloc(1, sizeof(conn))) == NULL) {
            fprintf(stderr, "wsload: out of memory\n");
            return 1;
        }
        b->c[i]->idx = i;
        b->c[i]->fd = -1;
        b->c[i]->b = b;
    }
    if (b->mode == M_FANOUT) {
        b->pub = b->c[b->subs];
        b->pub->is_pub = true;
    }

    long rss0 = b->mode == M_IDLE ? read_rss_kib(b->pid) : 0;
    if (rss0 < 0) {
        fprintf(stderr, "wsload: cannot read VmRSS of pid %ld\n", b->pid);
        return 1;
    }

    b->base = event_base_new();
    b->tick = event_new(b->base, -1, EV_PERSIST, on_tick, b);
    b->refill = event_new(b->base, -1, 0, on_refill, b);
    b->phase_ev = event_new(b->base, -1, 0, on_phase, b);
    b->rate_ev = evtimer_new(b->base, on_rate, b);
    if (b->base == NULL || b->tick == NULL || b->refill == NULL || b->phase_ev == NULL ||
        b->rate_ev == NULL) {
        fprintf(stderr, "wsload: libevent setup failed\n");
        return 1;
    }
    event_add(b->tick, &tv);
    if (b->mode == M_HANDSHAKE) {
        b->t0 = now_ns();
        b->running = true;
        b->phase = 1;
    } else {
        b->t0 = now_ns();
    }
    event_active(b->refill, 0, 0);
    event_base_dispatch(b->base);

    if (b->t_end == 0)
        b->t_end = now_ns();
    /* the result line starts with the job's name: the mode, -bus with
     * --port2, -deflate with --deflate (as ws.sh names its jobs) */
    zname = b->deflate ? "-deflate" : "";
    switch (b->mode) {
    case M_ECHO: {
        uint64_t n = b->done - b->done_at_measure;
        secs = b->t_measure ? (double)(b->t_end - b->t_measure) / 1e9 : 0;
        printf("echo%s %s rt/s=%.0f conns=%u inflight=%u size=%u seconds=%.2f echoes=%" PRIu64
               " failed=%" PRIu64,
               zname, b->label, secs > 0 ? (double)n / secs : 0.0, b->nslots, b->inflight, b->size, secs,
               n, total_errs(b));
        print_payload(b);
        cpu_print(b, secs);
        printf("\n");
        rc = (total_errs(b) == 0 && secs > 0 && n > 0) ? 0 : 1;
        break;
    }
    case M_FANOUT: {
        uint64_t lost = 0;
        for (unsigned i = 0; i < b->nslots; i++)
            lost += b->published - b->c[i]->got;
        secs = b->t_last_deliv > b->t_warm_pub ? (double)(b->t_last_deliv - b->t_warm_pub) / 1e9 : 0;
        printf("%s%s%s %s deliveries/s=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f subs=%u msgs=%" PRIu64
               " published=%" PRIu64 " window=%u size=%u lost=%" PRIu64 " dup=%" PRIu64
               " failed=%" PRIu64,
               b->chat ? "fanout-chat" : "fanout", b->port2 > 0 ? "-bus" : "", zname, b->label,
               secs > 0 ? (double)b->deliveries / secs : 0.0, (double)hist_pct(b, 50) / 1e3, (double)hist_pct(b, 99) / 1e3,
               (double)b->lat_max / 1e3, b->subs, b->msgs, b->published, b->window, b->size,
               lost, b->dups, total_errs(b));
        if (b->port2 > 0)   /* odd indices on port2; the publisher is not a subscriber */
            printf(" subs_port1=%u subs_port2=%u", b->subs - b->subs / 2, b->subs / 2);
        if (b->rate != 0)
            printf(" rate=%u", b->rate);
        print_payload(b);
        cpu_print(b, b->t_measure ? (double)(b->t_end - b->t_measure) / 1e9 : 0);
        printf("\n");
        rc = (total_errs(b) == 0 && lost == 0 && b->dups == 0 && b->published == b->msgs) ? 0 : 1;
        break;
    }
    case M_HANDSHAKE: {
        uint64_t n = b->done - b->done_at_measure;
        uint64_t tries = b->done + total_errs(b);
        secs = b->t_measure ? (double)(b->t_end - b->t_measure) / 1e9 : 0;
        printf("handshake%s %s hs/s=%.0f concurrency=%u seconds=%.2f handshakes=%" PRIu64
               " failed=%" PRIu64 " close_timeouts=%" PRIu64,
               zname, b->label, secs > 0 ? (double)n / secs : 0.0, b->nslots, secs, n, total_errs(b),
               b->close_timeouts);
        print_payload(b);
        cpu_print(b, secs);
        printf("\n");
        rc = (n > 0 && total_errs(b) * 100 <= tries) ? 0 : 1;
        break;
    }
    case M_IDLE: {
        long rss1 = read_rss_kib(b->pid);
        printf("idle%s %s kib/conn=%.2f conns=%u open=%u rss_before_kib=%ld rss_after_kib=%ld"
               " failed=%" PRIu64,
               zname, b->label, b->open ? (double)(rss1 - rss0) / b->open : 0.0, b->nslots, b->open,
               rss0, rss1, total_errs(b));
        print_payload(b);
        printf("\n");
        rc = (total_errs(b) == 0 && b->open == b->nslots && rss1 > 0) ? 0 : 1;
        break;
    }
    }
    if (b->saturated)
        fprintf(stderr, "wsload: %s: the load generator used 90%% or more of its core, so this "
                        "figure may be a floor of what %s can do\n", b->label, b->label);
    if (b->noisy)
        fprintf(stderr, "wsload: %s: other processes took 10%% or more of a core during this run; "
                        "its figures are not comparable\n", b->label);
    for (int k = 0; k < E_NKINDS; k++)
        if (b->err[k] > 0)
            fprintf(stderr, "wsload: %s errors: %" PRIu64 " (first: %s)\n", errname[k], b->err[k],
                    b->first_err[k]);
    if (b->mode != M_HANDSHAKE && b->open + total_errs(b) < b->nslots && !b->opening_done)
        fprintf(stderr, "wsload: opened %u of %u connections before stopping\n", b->open, b->nslots);
    fflush(stdout);

    for (unsigned i = 0; i < b->nslots; i++) {
        conn *c = b->c[i];
        if (c->st != CS_FREE) {
            if (c->rev != NULL)
                event_free(c->rev);
            if (c->wev != NULL)
                event_free(c->wev);
            close(c->fd);
        }
        pmd_free(c);
        free(c->rbuf);
        free(c->wbuf);
        free(c);
    }
    free(b->c);
    free(b->got);
    free(b->ring);
    free(b->corpus);
    free(b->pool);
    if (b->zpool != NULL)
        for (unsigned j = 0; j < POOL; j++)
            free(b->zpool[j].z);
    free(b->zpool);
    if (b->zcache != NULL)
        for (unsigned j = 0; j < ZC_SLOTS; j++)
            free(b->zcache[j].z);
    free(b->zcache);
    free(b->zout);
    free(b->zbuf);
    free(b->scratch);
    event_free(b->tick);
    event_free(b->refill);
    event_free(b->phase_ev);
    event_free(b->rate_ev);
    event_base_free(b->base);
    return rc;
}
