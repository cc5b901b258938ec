/* slab.h: a pool of same-size objects for one thread (one event loop).
 *
 * Tens of thousands of idle connections each hold a long-lived block,
 * allocated in between the short-lived buffers of their handshake. From
 * malloc each block pays a chunk header and a rounding to 16, and lands in
 * the holes earlier handshakes left, which the next blocks fit badly
 * (measured: gh_conn and its event in one malloc'd block left 20 bytes of
 * holes per idle connection). A slab keeps its objects packed in pages of
 * their own, away from the handshakes' buffers, and gives a page back to
 * the system once nothing in it is used (keeping one empty page, so that
 * a connection opening and closing at a page's edge does not map and unmap
 * every time).
 *
 * Not thread-safe: a slab belongs to one loop, and its objects are freed
 * on that loop. Built with AddressSanitizer, every object is its own
 * calloc(), so overflows and uses after free show as they do with malloc. */
#ifndef GH_SLAB_H
#define GH_SLAB_H

#include <stddef.h>

typedef struct gh_slab gh_slab;

/* The largest object size a slab takes. */
#define GH_SLAB_MAX_SIZE 4096

/* A slab of objects of size bytes (1 .. GH_SLAB_MAX_SIZE), each aligned to
 * 8 bytes. Returns NULL when out of memory or size is out of range. Free
 * with gh_slab_free_all(). */
gh_slab *gh_slab_new(size_t size);

/* A zeroed object, or NULL when out of memory. */
void *gh_slab_alloc(gh_slab *s);

/* Gives obj (from gh_slab_alloc(s), or NULL) back. */
void gh_slab_free(gh_slab *s, void *obj);

/* Pages the slab holds (for tests; 0 under AddressSanitizer). */
size_t gh_slab_pages(const gh_slab *s);

/* Frees s and its pages. Every object must have been given back. NULL-safe. */
void gh_slab_free_all(gh_slab *s);

#endif
