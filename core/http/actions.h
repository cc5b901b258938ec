/* actions.h: what a route does with a request. One function per action;
 * each answers the request completely (gh_req_send / gh_req_error) before
 * it returns. Implemented one per file: staticfile.c, health.c, redirect.c,
 * metrics.c. */
#ifndef GH_ACTIONS_H
#define GH_ACTIONS_H

#include "config.h"
#include "conn.h"

void gh_action_static(gh_request *r, const gh_route_conf *route);
void gh_action_health(gh_request *r, const gh_route_conf *route);
void gh_action_redirect(gh_request *r, const gh_route_conf *route);
void gh_action_metrics(gh_request *r, const gh_route_conf *route);

#endif
