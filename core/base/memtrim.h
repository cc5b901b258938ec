/* memtrim.h: giving freed heap back to the system after a burst.
 *
 * A fan-out burst to slow subscribers queues a small allocation per
 * delivery; once the queues drain, glibc's malloc keeps the freed memory
 * unless it sits at the very top of the heap, so one live allocation above
 * it pins the whole high-water mark (seen: 1.7 GiB of RSS holding 190 KiB
 * in use). The daemon asks every few seconds; when the allocator holds more
 * than a threshold of free memory, malloc_trim() returns the free pages
 * (madvise), wherever they are in the heap. Rare and bounded: the cost is a
 * walk of the free lists every few seconds, and a trim only after a burst
 * (pages faulted back in later are a small price next to holding them). */
#ifndef GH_MEMTRIM_H
#define GH_MEMTRIM_H

#include <stdbool.h>
#include <stddef.h>

/* Free bytes the allocator holds (in its arenas, not yet given back), or 0
 * where that cannot be known (not glibc). */
size_t gh_mem_free_held(void);

/* When the allocator holds at least min_free free bytes, gives what it can
 * back to the system. Returns true when it trimmed; *before and *after (may
 * be NULL) get the free bytes held before and after (glibc still counts
 * trimmed pages as free: they stay free chunks, their memory is gone). */
bool gh_mem_trim(size_t min_free, size_t *before, size_t *after);

#endif
