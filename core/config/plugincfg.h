/* plugincfg.h: typed lookups in a websocket route's `config:` tree, for
 * the plugin ABI's config_* functions. No I/O, no allocation.
 *
 * Every function takes a mapping node (NULL counts as an empty mapping)
 * and a key. An absent key yields the default and 0. A value of the wrong
 * kind or format yields GH_EINVAL and fills *err with where it is and what
 * is wrong, for the caller to report as FILE:LINE:COL: message. Strings
 * returned point into the tree and live as long as it does. */
#ifndef GH_PLUGINCFG_H
#define GH_PLUGINCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct gh_plugincfg_err {
    gh_srcloc loc;          /* of the offending node */
    char      msg[256];     /* "history: expected an integer, got \"ten\"" */
} gh_plugincfg_err;

/* The child under key, or NULL (also when map is NULL or not a mapping). */
const gh_cnode *gh_plugincfg_get(const gh_cnode *map, const char *key);

int gh_plugincfg_string(const gh_cnode *map, const char *key, const char *def,
                        const char **out, gh_plugincfg_err *err);
/* A decimal integer (optional leading '-') within [min, max]. */
int gh_plugincfg_int(const gh_cnode *map, const char *key, int64_t def,
                     int64_t min, int64_t max, int64_t *out, gh_plugincfg_err *err);
/* true/false, yes/no, on/off (also capitalised or upper case). */
int gh_plugincfg_bool(const gh_cnode *map, const char *key, bool def, bool *out,
                      gh_plugincfg_err *err);
/* units.h sizes and durations. */
int gh_plugincfg_size(const gh_cnode *map, const char *key, uint64_t def,
                      uint64_t *out, gh_plugincfg_err *err);
int gh_plugincfg_duration(const gh_cnode *map, const char *key, uint64_t def_ms,
                          uint64_t *out_ms, gh_plugincfg_err *err);
/* A sequence of scalars: up to cap of them into items[], the length into
 * *count (may exceed cap). Absent: *count = 0. */
int gh_plugincfg_list(const gh_cnode *map, const char *key, const char **items,
                      size_t cap, size_t *count, gh_plugincfg_err *err);
/* The first key of map not in known[] (NULL-terminated): GH_EINVAL with
 * *err; or 0. Called again with *resume (start 0) it goes on from there,
 * so a caller can report every unknown key. */
int gh_plugincfg_check_keys(const gh_cnode *map, const char *const *known,
                            size_t *resume, gh_plugincfg_err *err);

#endif
