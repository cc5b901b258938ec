/* filecache.c: an in-memory cache of small static files (see filecache.h).
 *
 * A plain chained hash table. When a new file would push the total over its
 * budget the whole table is dropped: simpler than LRU, and a gateway's
 * static set (a page, its script and style) fits many times over. */
#include "filecache.h"

#include <stdlib.h>
#include <string.h>

#define NBUCKETS 1024

struct gh_filecache {
    gh_fcentry *buckets[NBUCKETS];
    size_t      max_file;
    size_t      max_bytes;
    size_t      bytes;
};

static uint32_t hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;       /* FNV-1a */

    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

gh_filecache *gh_filecache_new(size_t max_file, size_t max_bytes)
{
    gh_filecache *fc = calloc(1, sizeof(*fc));

    if (fc != NULL) {
        fc->max_file = max_file;
        fc->max_bytes = max_bytes;
    }
    return fc;
}

size_t gh_filecache_max_file(const gh_filecache *fc)
{
    return fc->max_file;
}

void gh_fcentry_ref(gh_fcentry *e)
{
    e->refs++;
}

void gh_fcentry_unref(gh_fcentry *e)
{
    if (e == NULL || --e->refs > 0)
        return;
    free(e->data);
    free(e->key);
    free(e);
}

static void clear(gh_filecache *fc)
{
    for (size_t i = 0; i < NBUCKETS; i++) {
        gh_fcentry *e = fc->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            gh_fcentry_unref(e);
        }
        fc->buckets[i] = NULL;
    }
    fc->bytes = 0;
}

void gh_filecache_free(gh_filecache *fc)
{
    if (fc == NULL)
        return;
    clear(fc);
    free(fc);
}

gh_fcentry *gh_filecache_get(gh_filecache *fc, const char *key, size_t keylen)
{
    gh_fcentry *e = fc->buckets[hash(key, keylen) % NBUCKETS];

    for (; e != NULL; e = e->next)
        if (e->keylen == keylen && memcmp(e->key, key, keylen) == 0)
            return e;
    return NULL;
}

int gh_fcentry_is_current(const gh_fcentry *e, const struct stat *st)
{
    return e->dev == st->st_dev && e->ino == st->st_ino && (off_t)e->size == st->st_size &&
           e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static void unlink_key(gh_filecache *fc, const char *key, size_t keylen)
{
    gh_fcentry **pp = &fc->buckets[hash(key, keylen) % NBUCKETS];

    for (; *pp != NULL; pp = &(*pp)->next) {
        gh_fcentry *e = *pp;
        if (e->keylen == keylen && memcmp(e->key, key, keylen) == 0) {
            *pp = e->next;
            fc->bytes -= e->size;
            gh_fcentry_unref(e);
            return;
        }
    }
}

gh_fcentry *gh_filecache_put(gh_filecache *fc, const char *key, size_t keylen,
                             uint8_t *data, const struct stat *st, const char *ctype,
                             time_t now)
{
    gh_fcentry *e = NULL;
    size_t size = (size_t)st->st_size;
    size_t b;

    if (size > fc->max_file || (e = calloc(1, sizeof(*e))) == NULL ||
        (e->key = malloc(keylen + 1)) == NULL) {
        if (e != NULL)
            free(e);
        free(data);
        return NULL;
    }
    memcpy(e->key, key, keylen);
    e->key[keylen] = '\0';
    e->keylen = keylen;
    e->refs = 1;                    /* the table's reference */
    e->data = data;
    e->size = size;
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->mtime = st->st_mtim;
    e->checked = now;
    e->ctype = ctype;
    gh_etag_format((uint64_t)size, (int64_t)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
                   e->etag, sizeof(e->etag));
    gh_httpdate_format(st->st_mtim.tv_sec, e->lastmod);

    unlink_key(fc, key, keylen);
    if (fc->bytes + size > fc->max_bytes)
        clear(fc);
    b = hash(key, keylen) % NBUCKETS;
    e->next = fc->buckets[b];
    fc->buckets[b] = e;
    fc->bytes += size;
    return e;
}
