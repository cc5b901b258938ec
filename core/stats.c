/* stats.c: counter helpers (see stats.h). */
#include "stats.h"

#include <string.h>

void gh_stats_proxy_refused(gh_stats *s, const char *reason)
{
    size_t i;

    if (reason == NULL)
        reason = "other";
    for (i = 0; i < s->nproxy_refused; i++) {
        if (s->proxy_refused[i].reason == reason || strcmp(s->proxy_refused[i].reason, reason) == 0) {
            s->proxy_refused[i].n++;
            return;
        }
    }
    if (s->nproxy_refused == GH_STATS_MAX_REASONS) {
        /* the last slot becomes "other": never lose a count */
        s->proxy_refused[GH_STATS_MAX_REASONS - 1].reason = "other";
        s->proxy_refused[GH_STATS_MAX_REASONS - 1].n++;
        return;
    }
    s->proxy_refused[s->nproxy_refused].reason = reason;
    s->proxy_refused[s->nproxy_refused].n = 1;
    s->nproxy_refused++;
}
