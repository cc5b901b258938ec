/* forward.h: the `proxy:` route action: a request streamed to an upstream
 * server and its response streamed back, or a tunnel after a 101.
 * Internal to core/. */
#ifndef GH_FORWARD_H
#define GH_FORWARD_H

#include "config.h"
#include "conn.h"

/* Takes the request to the route's upstream: on success the connection is
 * the proxy's (state GH_CONN_UPSTREAM) until the response is queued, then
 * handed back with gh_conn_resume(). When no upstream can be tried at all
 * it answers at once (503 every server down, 500 out of memory). */
void gh_action_proxy(gh_request *r, const gh_route_conf *route);

#endif
