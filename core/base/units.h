/* units.h: durations ("500ms", "30s", "5m", "1h") and sizes ("4096",
 * "64KiB", "1MiB", "1GiB"). No I/O. */
#ifndef GH_UNITS_H
#define GH_UNITS_H

#include <stdint.h>
#include <sys/time.h>

/* Both take ASCII digits glued to a case-sensitive unit: no sign, spaces or
 * decimals ("1.5s" is an error: write 1500ms). *out is untouched on error.
 *
 * A duration needs a unit: ms, s, m or h; "0" alone is also accepted.
 * Returns 0 with *ms set, or GH_EINVAL (empty, no digits, unknown unit,
 * overflow, trailing junk). */
int gh_units_parse_duration(const char *s, uint64_t *ms);

/* A size is a plain byte count or a count with B, KiB, MiB or GiB
 * (also KB/MB/GB, meaning 1000-based). Returns 0 or GH_EINVAL. */
int gh_units_parse_size(const char *s, uint64_t *bytes);

/* A duration in milliseconds as a struct timeval, for event timers. */
struct timeval gh_units_timeval(uint64_t ms);

#endif
