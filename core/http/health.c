/* health.c: the health route: 200 "ok" while serving, 503 while draining,
 * so a load balancer takes the instance out before it stops accepting. */
#include "actions.h"

void gh_action_health(gh_request *r, const gh_route_conf *route)
{
    gh_resp_head h;
    bool draining = r->c->loop->draining;

    (void)route;
    gh_req_begin(r, &h, draining ? 503 : 200);
    gh_resp_add_raw(&h, "Content-Type: text/plain; charset=utf-8\r\n"
                        "Cache-Control: no-store\r\n", 66);
    if (draining)
        gh_req_send(r, &h, "draining\n", 9);
    else
        gh_req_send(r, &h, "ok\n", 3);
}
