/* theap.c: the deadline heap (see theap.h). The array shrinks when it is
 * three quarters empty, so that a burst of connections leaves nothing
 * behind. */
#include "theap.h"

#include <stdlib.h>

#include "err.h"

#define MIN_CAP 16u

static void place(gh_theap *h, gh_theap_node *x, uint32_t i)
{
    h->v[i] = x;
    x->pos = i + 1;
}

static void sift_up(gh_theap *h, uint32_t i)
{
    gh_theap_node *x = h->v[i];

    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (h->v[p]->due <= x->due)
            break;
        place(h, h->v[p], i);
        i = p;
    }
    place(h, x, i);
}

static void sift_down(gh_theap *h, uint32_t i)
{
    gh_theap_node *x = h->v[i];

    for (;;) {
        uint32_t l = 2 * i + 1, m;
        if (l >= h->n)
            break;
        m = l + 1 < h->n && h->v[l + 1]->due < h->v[l]->due ? l + 1 : l;
        if (x->due <= h->v[m]->due)
            break;
        place(h, h->v[m], i);
        i = m;
    }
    place(h, x, i);
}

static int resize(gh_theap *h, uint32_t cap)
{
    gh_theap_node **v = realloc(h->v, (size_t)cap * sizeof(*v));

    if (v == NULL)
        return GH_ENOMEM;
    h->v = v;
    h->cap = cap;
    return GH_OK;
}

int gh_theap_set(gh_theap *h, gh_theap_node *x, uint64_t due)
{
    uint64_t old = x->due;

    x->due = due;
    if (x->pos != 0) {
        if (due < old)
            sift_up(h, x->pos - 1);
        else if (due > old)
            sift_down(h, x->pos - 1);
        return GH_OK;
    }
    if (h->n == UINT32_MAX)
        return GH_ENOMEM;
    if (h->n == h->cap &&
        resize(h, h->cap == 0 ? MIN_CAP : h->cap > UINT32_MAX / 2 ? UINT32_MAX
                                                                   : h->cap * 2) != GH_OK)
        return GH_ENOMEM;
    place(h, x, h->n++);
    sift_up(h, h->n - 1);
    return GH_OK;
}

void gh_theap_del(gh_theap *h, gh_theap_node *x)
{
    uint32_t i;
    gh_theap_node *last;

    if (x->pos == 0)
        return;
    i = x->pos - 1;
    x->pos = 0;
    last = h->v[--h->n];
    if (i < h->n) {
        place(h, last, i);
        if (i > 0 && h->v[(i - 1) / 2]->due > last->due)
            sift_up(h, i);
        else
            sift_down(h, i);
    }
    if (h->cap > MIN_CAP && h->n < h->cap / 4)
        (void)resize(h, h->cap / 2);    /* a failed shrink keeps the larger array */
}

void gh_theap_fini(gh_theap *h)
{
    for (uint32_t i = 0; i < h->n; i++)
        h->v[i]->pos = 0;
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}
