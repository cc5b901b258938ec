/* filecache.h: small static files kept in memory between requests.
 *
 * A hit costs no open, stat, sendfile or close: the bytes go out with the
 * response head in one writev. Entries are revalidated with a stat at most
 * once a second (a changed file is served within a second of the change),
 * and are reference-counted because an output buffer may still point at an
 * entry after the cache dropped it. No I/O of its own: the caller stats and
 * reads. */
#ifndef GH_FILECACHE_H
#define GH_FILECACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "httpdate.h"

typedef struct gh_fcentry {
    int                refs;
    char              *key;
    size_t             keylen;
    uint8_t           *data;          /* size bytes, owned */
    size_t             size;
    dev_t              dev;
    ino_t              ino;
    struct timespec    mtime;
    time_t             checked;       /* second of the last successful stat */
    const char        *ctype;         /* static string */
    char               etag[GH_ETAG_MAX];
    char               lastmod[GH_HTTPDATE_LEN + 1];
    struct gh_fcentry *next;          /* hash chain */
} gh_fcentry;

typedef struct gh_filecache gh_filecache;

/* A cache holding files up to max_file bytes, max_bytes in all.
 * Returns NULL on allocation failure (callers then serve uncached). */
gh_filecache *gh_filecache_new(size_t max_file, size_t max_bytes);
void gh_filecache_free(gh_filecache *fc);          /* NULL-safe */

/* The largest file the cache takes. */
size_t gh_filecache_max_file(const gh_filecache *fc);

/* The entry for key, or NULL. Borrowed: valid until the next call that
 * changes the cache; take a reference to keep it longer. */
gh_fcentry *gh_filecache_get(gh_filecache *fc, const char *key, size_t keylen);

/* True when e still describes the file st describes. */
int gh_fcentry_is_current(const gh_fcentry *e, const struct stat *st);

/* Adds (or replaces) the entry for key, taking over data (size bytes,
 * malloc'd) in every case. Returns the new entry (borrowed, as for _get), or
 * NULL when it could not be stored (data was freed). */
gh_fcentry *gh_filecache_put(gh_filecache *fc, const char *key, size_t keylen,
                             uint8_t *data, const struct stat *st, const char *ctype,
                             time_t now);

void gh_fcentry_ref(gh_fcentry *e);
void gh_fcentry_unref(gh_fcentry *e);              /* frees at zero */

#endif
