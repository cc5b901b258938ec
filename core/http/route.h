/* route.h: choosing a route for a request. No I/O. */
#ifndef GH_ROUTE_H
#define GH_ROUTE_H

#include <stddef.h>

#include "config.h"

/* Returns the first route of cfg all of whose match conditions hold, or NULL.
 * host is the Host value without its port (may be NULL), path the
 * normalised request path, scheme GH_SCHEME_HTTP or GH_SCHEME_HTTPS.
 * A redirect_https route never matches an https request.
 * The result borrows from cfg. */
const gh_route_conf *gh_route_find(const gh_config *cfg, const char *host,
                                   size_t host_len, const char *path,
                                   gh_scheme scheme);

/* Splits a Host value "name:port" / "[v6]:port" into its host part.
 * Returns the host length (the host starts at host[0]; brackets kept). */
size_t gh_route_host_part(const char *host, size_t len);

#endif
