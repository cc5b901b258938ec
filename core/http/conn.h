/* conn.h: one client connection: the HTTP/1.1 request loop on a
 * bufferevent. Internal to core/. */
#ifndef GH_CONN_H
#define GH_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/util.h>

#include "http1.h"
#include "httpresp.h"
#include "loop.h"
#include "proxy.h"

/* An IPv4 or IPv6 address: a quarter of a sockaddr_storage, which matters
 * at 10,000s of idle connections. */
typedef union gh_sockaddr {
    struct sockaddr     sa;
    struct sockaddr_in  in4;
    struct sockaddr_in6 in6;
} gh_sockaddr;

/* Who owns a connection once it leaves HTTP: the action that upgrades it
 * sets c->handoff (with c->state = GH_CONN_WS and its own state in c->ws),
 * and conn.c reaches the upper layer only through these. */
typedef struct gh_conn_handoff {
    void (*start)(gh_conn *c);   /* the head is drained: take over what follows;
                                    must not free c synchronously */
    void (*drain)(gh_conn *c);   /* the daemon is stopping: close gracefully */
    void (*release)(gh_conn *c); /* c is being freed: free c->ws */
} gh_conn_handoff;

typedef enum {
    GH_CONN_HEAD = 0,     /* waiting for a request head */
    GH_CONN_PROXY,        /* reading the PROXY header from the raw socket */
    GH_CONN_TLS,          /* TLS handshake in progress */
    GH_CONN_BODY,         /* discarding a request body */
    GH_CONN_FLUSH,        /* response queued; next request waits for it */
    GH_CONN_CLOSING,      /* flushing, then linger */
    GH_CONN_LINGER,       /* our side shut; reading and dropping what the client still sends */
    GH_CONN_WS,           /* upgraded: the bufferevent belongs to wsconn.c */
    GH_CONN_UPSTREAM,     /* a proxied request: the bufferevent belongs to the
                             handoff until gh_conn_resume() (or for good once
                             the request became a tunnel) */
    GH_CONN_MOVING,       /* on its way to another worker (gh_conn_move()),
                             its request head still unread in the input */
} gh_conn_state;

/* A request body being discarded (a route that takes none): the head is
 * kept until the body has gone by, then answered. Allocated only then. */
struct gh_conn_body {
    uint64_t            left;          /* sized body: bytes still to drop */
    bool                chunked;
    gh_http1_chunked    ck;
    size_t              head_len;
    char                head[];        /* the request head's bytes */
};

/* A PROXY header: being read (in GH_CONN_PROXY), then what it said. One
 * block, so that a connection holds one pointer for it. */
struct gh_conn_pp {
    struct event       *ev;            /* readable events while in GH_CONN_PROXY, then NULL */
    uint32_t            have;          /* header bytes consumed from the socket so far */
    bool                sized;         /* buf has its PP_MAX bytes (from the first read on) */
    gh_proxy_info       info;          /* once accepted: the header; its TLVs point into buf */
    uint8_t             buf[];         /* the header's bytes: room for PP_MAX while it is
                                          read, then the header alone */
};

/* One per connection, most of them idle WebSockets: ordered without
 * padding, and what only a passing phase needs (a discarded body, the
 * PROXY header's reading) lives elsewhere or is freed after it. */
struct gh_conn {
    gh_conn            *prev, *next;   /* server registry */
    gh_loop            *loop;
    gh_site            *site;          /* reference held */
    gh_listener        *lst;
    uint64_t            id;
    struct bufferevent *bev;
    struct event       *timer;         /* header / keep-alive timeout; its storage
                                          follows c in c's own block */
    struct gh_conn_pp  *pp;            /* the PROXY header: being read, then once the
                                          PROXY phase is over, the accepted header
                                          (NULL without one) */
    struct gh_conn_body *body;         /* set in GH_CONN_BODY */
    struct gh_ws_conn  *ws;            /* set in GH_CONN_WS; owned, freed with the conn */
    const gh_conn_handoff *handoff;    /* set with ws, or with fwd */
    struct gh_fwd      *fwd;           /* set in GH_CONN_UPSTREAM (upstream/forward.c) */
    struct gh_conn_trip *trip;         /* set in GH_CONN_MOVING (gh_conn_move()) */
    uint32_t            lidx;          /* this listener's index in site->cfg->listeners */
    uint32_t            lingered;      /* bytes dropped while lingering (to LINGER_MAX_BYTES
                                          and one read more) */
    evutil_socket_t     fd;            /* until a bufferevent owns it (and again for a
                                          plain-socket WebSocket), else -1 */
    gh_conn_state       state : 4;
    bool                https : 1;     /* the connection's scheme (TLS here or at the balancer) */
    bool                peer_trusted : 1;  /* the socket peer is in trusted_proxies */
    bool                proxied : 1;   /* a PROXY header was accepted (even LOCAL) */
    bool                in_request : 1;    /* bytes of a head have arrived */
    bool                close_after : 1;   /* close once the body/response is done */
    bool                tunnel : 1;    /* the proxied request became a tunnel (101) */
    unsigned            kind : 2;      /* counted on its listener as: gh_conn_kind */
    bool                own_place : 1; /* counted against its listener's own limit
                                          (listeners.max_connections), not the process's */
    bool                moved_in : 1;  /* its current request came from another worker,
                                          which counted it against the rate limits */
    uint32_t            climit_slot;   /* counted in loop->climits (climit.h); 0: not */
    gh_sockaddr         peer;          /* the socket's peer */
    gh_sockaddr         client;        /* the real client: PROXY source, X-Forwarded-For
                                          from a trusted peer, or the socket peer;
                                          as text: gh_conn_client_text() */
};

/* Takes over fd (a freshly accepted socket). On failure closes fd and logs. */
void gh_conn_accept(gh_listener *lst, evutil_socket_t fd,
                    const struct sockaddr *sa, int salen);

/* Room for gh_conn_client_text_to(): INET6_ADDRSTRLEN and a NUL. */
#define GH_CONN_ADDR_TEXT 48

/* c->client as text ("203.0.113.7", "2001:db8::1"; "-" when it has no
 * address), written into out (cap bytes, GH_CONN_ADDR_TEXT is enough).
 * Returns out. */
char *gh_conn_client_text_to(const gh_conn *c, char *out, size_t cap);

/* The same in one of GH_CONN_ADDR_SLOTS buffers of the calling thread, used
 * in turn: valid until as many more calls on this thread, i.e. for the
 * statement (a log line) that asked. The connection does not keep the
 * text: 48 bytes in every idle connection, for log lines rarely written. */
#define GH_CONN_ADDR_SLOTS 4
const char *gh_conn_client_text(const gh_conn *c);

/* Closes the connection now (drops pending output). */
void gh_conn_free(gh_conn *c);

/* Drain: close idle keep-alive connections now; others close after their
 * current response. */
void gh_conn_drain(gh_conn *c);

/* The access-log line (and the response counter) of a request an action
 * answered on its own time: head is the request head's bytes (re-parsed;
 * may be NULL), log_extra printable ASCII appended after the Combined
 * fields (or NULL). */
void gh_conn_log(gh_conn *c, const char *head, size_t head_len, int status,
                 uint64_t body_bytes, const char *log_extra);

/* An action that took the connection (state GH_CONN_UPSTREAM, handoff set)
 * gives it back once its response is queued (and logged with gh_conn_log):
 * conn.c's callbacks come back and the next request is served. With
 * broken, the response was cut short (or the request's body is still
 * arriving): what is queued is flushed and the connection closed. May free
 * c (not synchronously inside conn.c's own callbacks). */
void gh_conn_resume(gh_conn *c, bool broken);

/* An action that must answer r on another worker's loop (`to`, not c's)
 * calls this and returns: the connection leaves its worker and joins to,
 * which parses the same request head again and dispatches it there, as if
 * it had accepted the connection (the route, and so the same action, are
 * found again from the same site). What moves: the socket, the request
 * head and every byte read after it, behind TLS the SSL session and what
 * OpenSSL had decrypted, and the connection's identity (id, peer, real
 * client, scheme, listener address, site reference, its places in the
 * connection limits and the per-client table). Nothing is counted twice:
 * the request was counted against the rate limits here, and counts as
 * one request. For a request head with no body only, when nothing is
 * queued to the client.
 * Returns 0: c is GH_CONN_MOVING and no longer the action's (write
 * nothing to it, and do not touch it after the action returns). Or
 * GH_EAGAIN (to is stopping), GH_EINVAL (c cannot move now), GH_ENOMEM:
 * nothing changed, answer r here. */
int gh_conn_move(gh_request *r, gh_loop *to);

/* Restores conn.c's callbacks on c->bev (after a handoff used its own). */
void gh_conn_take_back(gh_conn *c);

/* One request being answered. Borrowed by action handlers for the length of
 * the dispatch call; every pointer lives in the connection's input buffer. */
typedef struct gh_request {
    gh_conn             *c;
    const gh_http1_head *head;
    const gh_http1_req  *req;
    const char          *path;          /* normalised, NUL-terminated */
    size_t               path_len;
    bool                 is_head;       /* HEAD: no body is sent */
    bool                 is_get;
    bool                 queue_only;    /* the response waits in the output queue
                                           (not written at once): a 101 whose
                                           plugin's open must run first */
    bool                 https;         /* the request's scheme (DESIGN.md "Scheme") */
    const char          *raw;           /* the head's bytes as received */
    size_t               raw_len;
    int                  status;        /* for the access log */
    const char          *log_extra;     /* appended to the access-log line, or NULL */
    uint64_t             body_bytes;    /* for the access log */
} gh_request;

/* Starts a response head with the headers every response carries (Date,
 * Server, Connection). */
void gh_req_begin(gh_request *r, gh_resp_head *h, int status);

/* Ends the head with Content-Length: len (unless 304), queues it and len
 * bytes of body (none for HEAD). */
void gh_req_send(gh_request *r, gh_resp_head *h, const void *body, size_t len);

/* As gh_req_send, but the body is referenced, not copied: release(arg) is
 * called once the bytes are no longer needed (possibly before it returns). */
void gh_req_send_ref(gh_request *r, gh_resp_head *h, const void *body, size_t len,
                     void (*release)(void *arg), void *arg);

/* Ends the head with Content-Length: len and queues len bytes of fd from
 * off, without copying through user space. Takes fd in every case. */
void gh_req_send_file(gh_request *r, gh_resp_head *h, int fd, uint64_t off,
                      uint64_t len);

/* A complete error response with a small HTML body. */
void gh_req_error(gh_request *r, int status);

/* The first field named name, or NULL. */
const gh_http1_field *gh_req_field(const gh_request *r, const char *name);

#endif
