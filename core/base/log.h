/* log.h: the error log. One GH_LOG that checks the level before it
 * evaluates its arguments. Codecs never log; glue does. */
#ifndef GH_LOG_H
#define GH_LOG_H

typedef enum {
    GH_LOG_DEBUG = 0,
    GH_LOG_INFO  = 1,
    GH_LOG_WARN  = 2,
    GH_LOG_ERROR = 3,
} gh_log_level;

/* The only global mutable state beyond this is nothing: the level. */
extern gh_log_level gh_log_min_level;   /* set through gh_log_set_level() */

/* The least severe level written now (any thread). */
static inline gh_log_level gh_log_level_now(void)
{
    return (gh_log_level)__atomic_load_n((int *)&gh_log_min_level, __ATOMIC_RELAXED);
}

/* Sets it (a reload, while workers log). */
void gh_log_set_level(gh_log_level level);

#define GH_LOG(level, ...)                                   \
    do {                                                     \
        if ((level) >= gh_log_level_now())                   \
            gh_log_write((level), __VA_ARGS__);              \
    } while (0)

void gh_log_write(gh_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parses "debug" | "info" | "warn" | "error". Returns 0 or GH_EINVAL. */
int gh_log_level_parse(const char *s, gh_log_level *out);

/* Sends the error log to PATH (appending), or to stderr when path is NULL or
 * "stderr". Returns 0 or -errno; on failure the old destination stays. */
int gh_log_open(const char *path);

/* The descriptor log lines go to (for a fatal-signal handler's one write). */
int gh_log_fd(void);
void gh_log_close(void);

#endif
