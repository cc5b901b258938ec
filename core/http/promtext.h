/* promtext.h: building a Prometheus text exposition (version 0.0.4) in a
 * growing buffer, for the metrics action and the layers that add their
 * own metrics to it (gh_loop.metrics_more). No I/O. */
#ifndef GH_PROMTEXT_H
#define GH_PROMTEXT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct gh_promtext {
    char  *buf;         /* heap; the caller frees */
    size_t len, cap;
    bool   failed;      /* an allocation failed: nothing more is added */
} gh_promtext;

/* Appends printf-formatted text. */
void gh_promtext_put(gh_promtext *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "# HELP gatehouse_NAME help" and "# TYPE gatehouse_NAME type". */
void gh_promtext_head(gh_promtext *t, const char *name, const char *type, const char *help);
/* v as a label value (\\, \" and newline escaped). */
void gh_promtext_label(gh_promtext *t, const char *v);

#endif
