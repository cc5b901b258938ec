/* redirect.c: the redirect_https action.
 *
 * Sends the client to https://HOST/PATH?QUERY. HOST is the request's own
 * Host without its port (or with the route's `port:`), already checked to be
 * a valid authority by the http1 codec, so this can never be turned into an
 * open redirect; no Host means 400. The caller only routes here when the
 * request's scheme is http, so an https request never loops. */
#include <string.h>

#include "actions.h"
#include "route.h"

void gh_action_redirect(gh_request *r, const gh_route_conf *route)
{
    const gh_http1_req *req = r->req;
    gh_resp_head h;
    char loc[8192];
    size_t n = 0, hlen;
    int status = route->u.redirect.status;

    if (req->host == NULL || req->host_len == 0) {
        gh_req_error(r, 400);
        return;
    }
    if (r->https) {
        /* never redirect a request that is already https: no loops */
        gh_req_error(r, 404);
        return;
    }
    hlen = gh_route_host_part(req->host, req->host_len);
    if (hlen == 0 || hlen + req->path_len + req->query_len + 32 > sizeof(loc)) {
        gh_req_error(r, hlen == 0 ? 400 : 414);
        return;
    }
    memcpy(loc, "https://", 8);
    n = 8;
    memcpy(loc + n, req->host, hlen);
    n += hlen;
    if (route->u.redirect.port != 0 && route->u.redirect.port != 443) {
        int p = route->u.redirect.port, d = 10000;
        loc[n++] = ':';
        while (d > p)
            d /= 10;
        for (; d > 0; d /= 10)
            loc[n++] = (char)('0' + (p / d) % 10);
    }
    memcpy(loc + n, req->path, req->path_len);
    n += req->path_len;
    if (req->query != NULL) {
        loc[n++] = '?';
        memcpy(loc + n, req->query, req->query_len);
        n += req->query_len;
    }
    gh_req_begin(r, &h, status);
    gh_resp_add(&h, "Location", loc, n);
    gh_resp_add_raw(&h, "Content-Type: text/plain; charset=utf-8\r\n", 41);
    gh_req_send(r, &h, "redirecting to https\n", 21);
}
