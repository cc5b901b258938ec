/* wsconn.h: a WebSocket connection: the upgrade handshake on a websocket
 * route, then RFC 6455 frames <-> whole messages <-> the route's plugin.
 * Internal to core/. */
#ifndef GH_WSCONN_H
#define GH_WSCONN_H

#include "config.h"
#include "conn.h"

struct gh_ws_conn;

/* The websocket action. Validates the upgrade (RFC 6455 §4.2); on success
 * queues the 101, sets c->state = GH_CONN_WS and c->ws, and takes over the
 * bufferevent's callbacks. On failure answers with an error status. */
void gh_action_websocket(gh_request *r, const gh_route_conf *route);

/* Called by conn.c once the request head has been drained after a
 * successful upgrade: processes any frames already buffered. May free c. */
void gh_ws_conn_start(gh_conn *c);

/* Frees the WebSocket state (called from gh_conn_free). NULL-safe. */
void gh_ws_conn_free(struct gh_ws_conn *ws);

/* Server drain: send close 1001 and finish the close handshake. May free c. */
void gh_ws_conn_drain(gh_conn *c);

#endif
