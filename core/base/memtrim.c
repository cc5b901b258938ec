/* memtrim.c: see memtrim.h. */
#include "memtrim.h"

#include <stdlib.h>     /* defines __GLIBC__ (features.h) */

#ifdef __GLIBC__
#include <malloc.h>
#endif

size_t gh_mem_free_held(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();

    /* fordblks: free chunks in the arenas; fsmblks: in fastbins (not
     * coalesced until a trim or a large allocation) */
    return mi.fordblks + mi.fsmblks;
#else
    return 0;
#endif
}

bool gh_mem_trim(size_t min_free, size_t *before, size_t *after)
{
    size_t held = gh_mem_free_held();

    if (before != NULL)
        *before = held;
    if (after != NULL)
        *after = held;
    if (held == 0 || held < min_free)
        return false;
#ifdef __GLIBC__
    (void)malloc_trim(0);
#endif
    if (after != NULL)
        *after = gh_mem_free_held();
    return true;
}
