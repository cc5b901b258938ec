/* route.c: first-match routing over the configured routes.
 *
 * Routes are few (tens), so a linear scan with cheap comparisons beats any
 * index; the order in the file is the order of precedence. */
#include "route.h"

#include <string.h>
#include <strings.h>

size_t gh_route_host_part(const char *host, size_t len)
{
    if (len > 0 && host[0] == '[') {
        const char *rb = memchr(host, ']', len);
        return rb != NULL ? (size_t)(rb - host) + 1 : len;
    }
    const char *colon = memchr(host, ':', len);
    return colon != NULL ? (size_t)(colon - host) : len;
}

static int matches(const gh_match *m, const char *host, size_t host_len,
                   const char *path, gh_scheme scheme)
{
    if (m->scheme != GH_SCHEME_ANY && m->scheme != scheme)
        return 0;
    if (m->path != NULL && strcmp(m->path, path) != 0)
        return 0;
    if (m->prefix != NULL && strncmp(m->prefix, path, strlen(m->prefix)) != 0)
        return 0;
    if (m->host != NULL) {
        if (host == NULL || strlen(m->host) != host_len ||
            strncasecmp(m->host, host, host_len) != 0)
            return 0;
    }
    return 1;
}

const gh_route_conf *gh_route_find(const gh_config *cfg, const char *host,
                                   size_t host_len, const char *path,
                                   gh_scheme scheme)
{
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const gh_route_conf *r = &cfg->routes[i];
        /* a redirect to https never applies to https: no loops, whatever
         * the match says */
        if (r->action == GH_ACTION_REDIRECT_HTTPS && scheme == GH_SCHEME_HTTPS)
            continue;
        if (matches(&r->match, host, host_len, path, scheme))
            return r;
    }
    return NULL;
}
