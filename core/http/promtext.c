/* promtext.c: the Prometheus text builder (promtext.h). */
#include "promtext.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void gh_promtext_put(gh_promtext *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t ncap = (t->cap + (size_t)n + 1) * 2;
        char *nb = realloc(t->buf, ncap);
        if (nb == NULL) {
            t->failed = true;
            return;
        }
        t->buf = nb;
        t->cap = ncap;
    }
}

void gh_promtext_head(gh_promtext *t, const char *name, const char *type, const char *help)
{
    gh_promtext_put(t, "# HELP gatehouse_%s %s\n# TYPE gatehouse_%s %s\n", name, help, name, type);
}

void gh_promtext_label(gh_promtext *t, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"')
            gh_promtext_put(t, "\\%c", *v);
        else if (*v == '\n')
            gh_promtext_put(t, "\\n");
        else
            gh_promtext_put(t, "%c", *v);
    }
}
