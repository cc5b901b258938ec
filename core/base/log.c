/* log.c: the error log: a timestamp, a level and one line per event.
 *
 * Writes go straight to a file descriptor with one write(2) per line so that
 * lines from a reload and from connections, and from several workers,
 * never interleave mid-line. Once opened, the log keeps one descriptor
 * number for good: a reopen dup2()s the new file onto it, so a worker
 * writing meanwhile writes to the old file or the new one, never to a
 * closed (or reused) descriptor. */
#include "log.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

gh_log_level gh_log_min_level = GH_LOG_INFO;
static int log_fd = STDERR_FILENO;

static const char *level_names[] = {
    [GH_LOG_DEBUG] = "debug",
    [GH_LOG_INFO] = "info",
    [GH_LOG_WARN] = "warn",
    [GH_LOG_ERROR] = "error",
};

int gh_log_level_parse(const char *s, gh_log_level *out)
{
    for (int i = GH_LOG_DEBUG; i <= GH_LOG_ERROR; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (gh_log_level)i;
            return GH_OK;
        }
    }
    return GH_EINVAL;
}

void gh_log_set_level(gh_log_level level)
{
    __atomic_store_n((int *)&gh_log_min_level, (int)level, __ATOMIC_RELAXED);
}

int gh_log_open(const char *path)
{
    int fd, cur = __atomic_load_n(&log_fd, __ATOMIC_RELAXED);

    if (path == NULL || strcmp(path, "stderr") == 0)
        fd = STDERR_FILENO;
    else if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) < 0)
        return -errno;
    if (cur == STDERR_FILENO) {
        /* the first open: a descriptor of our own from now on (made before
         * any worker starts) */
        int own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (own < 0) {
            int e = errno;
            if (fd != STDERR_FILENO)
                close(fd);
            return -e;
        }
        __atomic_store_n(&log_fd, own, __ATOMIC_RELAXED);
    } else if (dup3(fd, cur, O_CLOEXEC) < 0) {
        int e = errno;
        if (fd != STDERR_FILENO)
            close(fd);
        return -e;
    }
    if (fd != STDERR_FILENO)
        close(fd);
    return GH_OK;
}

void gh_log_close(void)
{
    int cur = __atomic_exchange_n(&log_fd, STDERR_FILENO, __ATOMIC_RELAXED);

    if (cur != STDERR_FILENO)
        close(cur);
}

int gh_log_fd(void)
{
    return __atomic_load_n(&log_fd, __ATOMIC_RELAXED);
}

void gh_log_write(gh_log_level level, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    size_t n;
    int r;
    va_list ap;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(line + n, sizeof(line) - n, ".%03ldZ [%s] ",
                 (long)(tv.tv_usec / 1000), level_names[level]);
    if (r > 0)
        n += (size_t)r;
    va_start(ap, fmt);
    r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (r > 0)
        n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    /* one write per line; a short write to a log is not worth retrying */
    if (write(gh_log_fd(), line, n) < 0) {
        /* nowhere left to report it */
    }
}
