/* wsconn.h: a WebSocket connection: the upgrade handshake on a websocket
 * route, then RFC 6455 frames <-> whole messages <-> the route's plugin.
 * Internal to core/. */
#ifndef GH_WSCONN_H
#define GH_WSCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "conn.h"

struct gh_ws_conn;
struct gh_topic_msg;
struct gh_plugin_inst;

/* The websocket action. Validates the upgrade (RFC 6455 §4.2); on success
 * queues the 101, sets c->state = GH_CONN_WS and c->ws, takes over the
 * bufferevent's callbacks and calls the plugin's open. On failure answers
 * with an error status: 405 (not GET), 426 (no Upgrade: websocket, or a
 * Sec-WebSocket-Version other than 13; with Sec-WebSocket-Version: 13),
 * 400 (HTTP/1.0, a body, no Connection: upgrade, a bad or repeated key),
 * 403 (origin refused), 503 (the plugin is not serving, or draining).
 * Never frees c. */
void gh_action_websocket(gh_request *r, const gh_route_conf *route);

/* Called by conn.c once the request head has been drained after a
 * successful upgrade: processes any frames already buffered. Never frees
 * c synchronously (conn.c still looks at it afterwards); a connection
 * that must go is freed from its own event shortly after. */
void gh_ws_conn_start(gh_conn *c);

/* Frees the WebSocket state (called from gh_conn_free): calls the plugin's
 * close (1006, or the code already sent) if it is still owed and drops the
 * topic subscriptions. NULL-safe. */
void gh_ws_conn_free(struct gh_ws_conn *ws);

/* Frees the loop's WebSocket state (after its last connection). */
void gh_ws_loop_free(gh_loop *loop);

/* Server drain: send close 1001 and finish the close handshake; the
 * connection is freed when the handshake ends or close_timeout passes.
 * Never frees c synchronously. */
void gh_ws_conn_drain(gh_conn *c);

/* ---- for the plugin host and topics --------------------------------
 * These back the ABI's host functions; ws is a connection the plugin was
 * given (from open until its close callback returns). None of them calls
 * back into a plugin or frees anything: closing only marks, and the
 * connection settles from its own event. */

/* Queues a whole message (GH_WS_OP_TEXT or GH_WS_OP_BINARY), copying data.
 * Returns 0; GH_EINVAL (bad opcode, text not UTF-8); -ENOTCONN (not open);
 * -ENOBUFS (over the send backlog: now closing with 1008); GH_ENOMEM. */
int gh_ws_conn_send(struct gh_ws_conn *ws, int opcode, const void *data, size_t len);

/* The topic sink: queues the frame of m this connection can send — the
 * plain one, or with permessage-deflate the compressed one made once for
 * every subscriber with the same compressor settings (a connection with
 * server context takeover compresses its own copy) — by reference (on a
 * plain socket 16 bytes of its output queue, outq.h), or for a small
 * frame that goes out at once by copying it. Same returns as
 * gh_ws_conn_send. */
int gh_ws_conn_send_msg(void *ws, struct gh_topic_msg *m);

/* Bytes queued and not yet written. */
uint64_t gh_ws_conn_buffered(const struct gh_ws_conn *ws);

/* loop->publishers_resume: reads again every connection of loop that the
 * hub's backpressure paused (cluster/hub.c), and handles what it had
 * already received. */
void gh_ws_publishers_resume(gh_loop *loop);

/* Starts the close handshake with a code that may be sent and a UTF-8
 * reason. Returns 0, GH_EINVAL or -ENOTCONN (not open). */
int gh_ws_conn_close(struct gh_ws_conn *ws, uint16_t code, const char *reason,
                     size_t reason_len);

/* Topic subscriptions in the namespace of the connection's plugin.
 * Return 0, GH_EINVAL, -ENOTCONN, GH_ENOMEM / GH_ENOENT. */
int gh_ws_conn_subscribe(struct gh_ws_conn *ws, const char *name, size_t len);
int gh_ws_conn_unsubscribe(struct gh_ws_conn *ws, const char *name, size_t len);

/* Holds or releases ws's subscription to name (gh_topics_hold). */
int gh_ws_conn_hold(struct gh_ws_conn *ws, const char *name, size_t len, bool held);
/* The serial of ws's subscription to name; 0 when not subscribed. */
uint64_t gh_ws_conn_serial(const struct gh_ws_conn *ws, const char *name, size_t len);
/* True while the connection is open (not closing). */
bool gh_ws_conn_is_open(const struct gh_ws_conn *ws);
/* Where the connection's topic state lives (tstate.c). */
struct gh_tstate_conn **gh_ws_conn_tstate(struct gh_ws_conn *ws);

/* Accessors. Strings live as long as the connection, except header()'s,
 * which is only available (non-NULL) while the plugin's open runs. */
const char *gh_ws_conn_client_addr(const struct gh_ws_conn *ws);
uint16_t    gh_ws_conn_client_port(const struct gh_ws_conn *ws);
const char *gh_ws_conn_path(const struct gh_ws_conn *ws);
const char *gh_ws_conn_query(const struct gh_ws_conn *ws);
const char *gh_ws_conn_header(const struct gh_ws_conn *ws, const char *name, size_t *len);
const char *gh_ws_conn_subprotocol(const struct gh_ws_conn *ws);
void        gh_ws_conn_set_data(struct gh_ws_conn *ws, void *data);
void       *gh_ws_conn_get_data(const struct gh_ws_conn *ws);
uint64_t    gh_ws_conn_id(const struct gh_ws_conn *ws);
struct gh_plugin_inst *gh_ws_conn_route(const struct gh_ws_conn *ws);

#endif
