/* wsconn.c: placeholder until the WebSocket engine lands. */
#include "wsconn.h"

void gh_action_websocket(gh_request *r, const gh_route_conf *route)
{
    (void)route;
    gh_req_error(r, 501);
}

void gh_ws_conn_start(gh_conn *c)
{
    (void)c;
}

void gh_ws_conn_free(struct gh_ws_conn *ws)
{
    (void)ws;
}

void gh_ws_conn_drain(gh_conn *c)
{
    (void)c;
}
