/* errlist.c: collects located error messages for config checking.
 *
 * Kept apart from the config module so the plugin loader and the TLS set-up
 * can report into the same list that `gatehouse -t` prints. */
#include "errlist.h"
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char oom_text[] = "out of memory while recording an error";

void gh_errlist_init(gh_errlist *el)
{
    memset(el, 0, sizeof(*el));
}

void gh_errlist_deinit(gh_errlist *el)
{
    for (size_t i = 0; i < el->n; i++)
        if (el->items[i] != oom_text)
            free(el->items[i]);
    free(el->items);
    memset(el, 0, sizeof(*el));
}

int gh_errlist_add(gh_errlist *el, const char *file, int line, int col,
                   const char *fmt, ...)
{
    char msg[1024], *s = NULL;
    va_list ap;
    int len;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line > 0)
        len = snprintf(NULL, 0, "%s:%d:%d: %s", file, line, col, msg);
    else
        len = snprintf(NULL, 0, "%s: %s", file, msg);
    if (len >= 0 && (s = malloc((size_t)len + 1)) != NULL) {
        if (line > 0)
            snprintf(s, (size_t)len + 1, "%s:%d:%d: %s", file, line, col, msg);
        else
            snprintf(s, (size_t)len + 1, "%s: %s", file, msg);
    }
    if (el->n == el->cap) {
        size_t ncap = el->cap ? el->cap * 2 : 8;
        char **ni = realloc(el->items, ncap * sizeof(*ni));
        if (ni == NULL) {
            /* keep at least the fact that there was an error */
            free(s);
            if (el->n > 0 && el->items[el->n - 1] != oom_text) {
                free(el->items[el->n - 1]);
                el->items[el->n - 1] = oom_text;
            }
            return GH_EINVAL;
        }
        el->items = ni;
        el->cap = ncap;
    }
    el->items[el->n++] = s != NULL ? s : oom_text;
    return GH_EINVAL;
}
