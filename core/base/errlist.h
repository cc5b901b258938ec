/* errlist.h: a list of located error messages, "FILE:LINE:COL: message".
 *
 * Config checking reports every error it finds, not just the first, so
 * errors are collected here and printed by the caller. */
#ifndef GH_ERRLIST_H
#define GH_ERRLIST_H

#include <stddef.h>

typedef struct gh_errlist {
    char  **items;      /* each owned; formatted "FILE:LINE:COL: msg" or "FILE: msg" */
    size_t  n;
    size_t  cap;
} gh_errlist;

/* Caller's storage; _deinit frees every item. */
void gh_errlist_init(gh_errlist *el);
void gh_errlist_deinit(gh_errlist *el);

/* Appends one error. line and col count from 1; line <= 0 leaves both out
 * ("FILE: msg"). Allocation failure is swallowed and counted as an entry with
 * a fixed text so that a caller never believes an erroneous input was fine.
 * Returns GH_EINVAL so callers can write `return gh_errlist_add(...)`. */
int gh_errlist_add(gh_errlist *el, const char *file, int line, int col,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
