/* slab.c: see slab.h.
 *
 * Pages are GH_SLAB_PAGE bytes, mapped aligned to their size, so an
 * object's page is its address with the low bits cleared: no header per
 * object. A page starts with its header; objects are carved from the rest
 * in order, only when needed (pages not yet touched cost no memory), and
 * freed ones are reused first, newest first. Pages with room are listed
 * in s->partial, full ones in s->full. */
#include "slab.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_BYPASS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_BYPASS 1
#endif
#endif

#define GH_SLAB_PAGE ((size_t)64 * 1024)
#define ALIGN        8

struct page {
    struct page *prev, *next;   /* in s->partial or s->full */
    void        *free;          /* given-back objects; each one's first word links */
    uint32_t     used;          /* objects handed out */
    uint32_t     carved;        /* objects ever carved, from the start of the rest */
};

struct gh_slab {
    size_t       size;          /* an object's bytes, rounded up to ALIGN */
    uint32_t     per_page;
    struct page *partial;       /* pages with room */
    struct page *full;
    struct page *spare;         /* an empty page kept for the next one needed */
    size_t       pages;         /* held, spare included */
};

#define FIRST_OBJ ((sizeof(struct page) + ALIGN - 1) / ALIGN * ALIGN)

#ifndef SLAB_BYPASS
static void unlink_page(struct page **list, struct page *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        *list = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

static void push_page(struct page **list, struct page *p)
{
    p->prev = NULL;
    p->next = *list;
    if (*list != NULL)
        (*list)->prev = p;
    *list = p;
}

/* GH_SLAB_PAGE bytes aligned to GH_SLAB_PAGE: map twice that, unmap the
 * ends. */
static struct page *map_page(void)
{
    size_t len = 2 * GH_SLAB_PAGE, head, tail;
    uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uintptr_t a;

    if (m == MAP_FAILED)
        return NULL;
    a = ((uintptr_t)m + GH_SLAB_PAGE - 1) & ~(uintptr_t)(GH_SLAB_PAGE - 1);
    head = a - (uintptr_t)m;
    tail = len - head - GH_SLAB_PAGE;
    if (head > 0)
        (void)munmap(m, head);
    if (tail > 0)
        (void)munmap((uint8_t *)a + GH_SLAB_PAGE, tail);
    return (struct page *)a;    /* zero-filled: an empty page */
}

#endif

static void unmap_page(struct page *p)
{
    (void)munmap(p, GH_SLAB_PAGE);
}

gh_slab *gh_slab_new(size_t size)
{
    gh_slab *s;

    if (size == 0 || size > GH_SLAB_MAX_SIZE)
        return NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return NULL;
    s->size = (size + ALIGN - 1) / ALIGN * ALIGN;
    s->per_page = (uint32_t)((GH_SLAB_PAGE - FIRST_OBJ) / s->size);
    return s;
}

void *gh_slab_alloc(gh_slab *s)
{
#ifdef SLAB_BYPASS
    return calloc(1, s->size);
#else
    struct page *p = s->partial;
    uint8_t *obj;

    if (p == NULL) {
        if (s->spare != NULL) {
            p = s->spare;
            s->spare = NULL;
        } else {
            if ((p = map_page()) == NULL)
                return NULL;
            s->pages++;
        }
        push_page(&s->partial, p);
    }
    if (p->free != NULL) {
        obj = p->free;
        memcpy(&p->free, obj, sizeof(p->free));
    } else {
        obj = (uint8_t *)p + FIRST_OBJ + (size_t)p->carved * s->size;
        p->carved++;
    }
    if (++p->used == s->per_page) {
        unlink_page(&s->partial, p);
        push_page(&s->full, p);
    }
    memset(obj, 0, s->size);
    return obj;
#endif
}

void gh_slab_free(gh_slab *s, void *obj)
{
#ifdef SLAB_BYPASS
    (void)s;
    free(obj);
#else
    struct page *p;

    if (obj == NULL)
        return;
    p = (struct page *)((uintptr_t)obj & ~(uintptr_t)(GH_SLAB_PAGE - 1));
    if (p->used == s->per_page) {
        unlink_page(&s->full, p);
        push_page(&s->partial, p);
    }
    memcpy(obj, &p->free, sizeof(p->free));
    p->free = obj;
    if (--p->used > 0)
        return;
    unlink_page(&s->partial, p);
    if (s->spare == NULL) {
        /* start it afresh: carved again from its start */
        memset(p, 0, sizeof(*p));
        s->spare = p;
    } else {
        unmap_page(p);
        s->pages--;
    }
#endif
}

size_t gh_slab_pages(const gh_slab *s)
{
    return s->pages;
}

static void unmap_list(struct page *p)
{
    while (p != NULL) {
        struct page *next = p->next;
        unmap_page(p);
        p = next;
    }
}

void gh_slab_free_all(gh_slab *s)
{
    if (s == NULL)
        return;
    unmap_list(s->partial);
    unmap_list(s->full);
    if (s->spare != NULL)
        unmap_page(s->spare);
    free(s);
}
