/* status.h: the `status:` route action: a live page of the daemon at the
 * route's path and its data as JSON at the same path with ?format=json.
 * Internal to core/. */
#ifndef GH_STATUS_H
#define GH_STATUS_H

#include <stddef.h>

#include "config.h"
#include "conn.h"

/* Answers r: GET or HEAD (else 405). With ?format=json, the feed (one
 * JSON document of the counters and state now); with ?asset=NAME, one of
 * the page's files (404 for a name it does not have); otherwise the page.
 * Other query parameters are ignored. */
void gh_action_status(gh_request *r, const gh_route_conf *route);

/* The page's files, built into the binary from www/status/
 * (status_assets.c, written by embed.cmake). The table ends with a NULL
 * name; data holds len bytes and a NUL after them. */
typedef struct gh_status_asset {
    const char          *name;
    const unsigned char *data;
    size_t               len;
} gh_status_asset;

extern const gh_status_asset gh_status_assets[];

#endif
