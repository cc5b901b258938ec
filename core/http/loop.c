/* loop.c: the parts of gh_loop that belong to the connection path: the
 * site's reference count, the cached Date, the access log's writes and the
 * connection registry. What the daemon decides on top (the connection
 * limit, the end of a drain) it does in the hooks. */
#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "conn.h"
#include "err.h"
#include "filecache.h"
#include "log.h"

/* Workers share a site: its count is atomic (the last one out frees it,
 * having seen every other worker's writes through the acquire). */
gh_site *gh_site_ref(gh_site *s)
{
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
    return s;
}

void gh_site_unref(gh_site *s)
{
    if (s == NULL || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    if (s->on_last != NULL)
        s->on_last(s);
    else
        gh_site_destroy(s);
}

void gh_site_destroy(gh_site *s)
{
    if (s->on_free != NULL)
        s->on_free(s);
    for (size_t i = 0; i < s->nroot_fds; i++)
        if (s->root_fds[i] >= 0)
            close(s->root_fds[i]);
    free(s->root_fds);
    for (unsigned w = 0; s->filecache != NULL && w < s->nworkers; w++)
        gh_filecache_free(s->filecache[w]);
    free(s->filecache);
    if (s->tls_ctx != NULL) {
        for (size_t i = 0; i < s->cfg->nlisteners; i++)
            SSL_CTX_free(s->tls_ctx[i]);
        free(s->tls_ctx);
    }
    gh_config_free(s->cfg);
    free(s);
}

const char *gh_loop_date(gh_loop *loop)
{
    time_t now = time(NULL);

    if (now != loop->date_sec) {
        loop->date_sec = now;
        gh_httpdate_format(now, loop->date);
    }
    return loop->date;
}

void gh_loop_access_write(gh_loop *loop, const char *line, size_t len)
{
    if (loop->access_fd >= 0 && write(loop->access_fd, line, len) < 0) {
        /* a full disk must not stop the gateway; say it once in a while */
        static _Thread_local time_t last;
        time_t now = time(NULL);
        if (now != last) {
            last = now;
            GH_LOG(GH_LOG_WARN, "access log: write: %s", strerror(errno));
        }
    }
}

static void link_conn(gh_loop *loop, gh_conn *c)
{
    c->prev = NULL;
    c->next = loop->conns;
    if (loop->conns != NULL)
        loop->conns->prev = c;
    loop->conns = c;
    loop->nconns++;
    GH_STAT_ADD(c->lst->open[c->kind], 1);
}

static void unlink_conn(gh_loop *loop, gh_conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        loop->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    loop->nconns--;
    GH_STAT_SUB(c->lst->open[c->kind], 1);
}

void gh_loop_conn_added(gh_loop *loop, gh_conn *c)
{
    c->kind = GH_KIND_HTTP;
    link_conn(loop, c);
    if (loop->on_conn_added != NULL)
        loop->on_conn_added(loop);
}

void gh_loop_conn_removed(gh_loop *loop, gh_conn *c)
{
    unlink_conn(loop, c);
    if (loop->on_conn_removed != NULL)
        loop->on_conn_removed(loop, c->lst, c->own_place);
}

void gh_loop_conn_left(gh_loop *loop, gh_conn *c)
{
    unlink_conn(loop, c);
    if (loop->on_conn_left != NULL)
        loop->on_conn_left(loop);
}

void gh_loop_conn_joined(gh_loop *loop, gh_conn *c)
{
    link_conn(loop, c);
}

bool gh_loop_is_empty(gh_loop *loop)
{
    return loop->nconns == 0 && __atomic_load_n(&loop->moves_in, __ATOMIC_SEQ_CST) == 0;
}

void gh_loop_conn_kind(gh_loop *loop, gh_conn *c, gh_conn_kind kind)
{
    (void)loop;
    GH_STAT_SUB(c->lst->open[c->kind], 1);
    c->kind = kind;
    GH_STAT_ADD(c->lst->open[kind], 1);
}

/* ---- the mailbox ----------------------------------------------------------
 *
 * Tasks from other threads: a mutex-guarded array swapped out whole by the
 * owner, so the lock is held for a push or a swap, never while a task runs.
 * The eventfd is written only when the array goes from empty to not, so a
 * burst of posts wakes the loop once. A post from a loop's own callback
 * leaves that write to the posting loop's wake event (see gh_loop_post()):
 * the target's list of tasks is then whole when it wakes. */

typedef struct task {
    gh_loop_task_fn fn;
    void           *arg;
} task;

struct gh_mailbox {
    pthread_mutex_t     mu;
    task               *q;
    size_t              n, cap;
    int                 fd;             /* eventfd */
    struct event       *ev;
    /* the posting side, this loop's thread only: the mailboxes its
     * callbacks posted to and have not woken yet, and the event that
     * wakes them */
    struct gh_mailbox **wake;
    size_t              nwake, capwake;
    struct event       *wake_ev;
};

static _Thread_local gh_loop *current;

static void wake_up(struct gh_mailbox *mb)
{
    uint64_t one = 1;

    /* EAGAIN: the counter is full, so the loop is awake anyway */
    (void)!write(mb->fd, &one, sizeof(one));
}

void gh_loop_wake_now(gh_loop *loop)
{
    struct gh_mailbox *mb = loop->mbox;

    if (mb == NULL)
        return;
    for (size_t i = 0; i < mb->nwake; i++)
        wake_up(mb->wake[i]);
    mb->nwake = 0;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gh_loop_wake_now(arg);
}

void gh_loop_set_current(gh_loop *loop)
{
    if (current != NULL && current != loop)
        gh_loop_wake_now(current);
    current = loop;
}

/* Leaves target's wake-up to the current loop's wake event. False when
 * there is no current loop or no room to note it: wake now. */
static bool wake_later(struct gh_mailbox *target)
{
    struct gh_mailbox *self = current != NULL ? current->mbox : NULL;

    if (self == NULL || self->wake_ev == NULL)
        return false;
    for (size_t i = 0; i < self->nwake; i++)
        if (self->wake[i] == target)
            return true;
    if (self->nwake == self->capwake) {
        size_t cap = self->capwake ? self->capwake * 2 : 4;
        struct gh_mailbox **w = realloc(self->wake, cap * sizeof(*w));

        if (w == NULL)
            return false;
        self->wake = w;
        self->capwake = cap;
    }
    self->wake[self->nwake++] = target;
    if (self->nwake == 1)
        event_active(self->wake_ev, 0, 1);
    return true;
}

bool gh_loop_mailbox_run(gh_loop *loop)
{
    struct gh_mailbox *mb = loop->mbox;
    task *q;
    size_t n;

    if (mb == NULL)
        return false;
    pthread_mutex_lock(&mb->mu);
    q = mb->q;
    n = mb->n;
    mb->q = NULL;
    mb->n = mb->cap = 0;
    pthread_mutex_unlock(&mb->mu);
    for (size_t i = 0; i < n; i++)
        q[i].fn(loop, q[i].arg);
    free(q);
    return n > 0;
}

static void on_mail(evutil_socket_t fd, short what, void *arg)
{
    gh_loop *loop = arg;
    uint64_t v;

    (void)what;
    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        GH_LOG(GH_LOG_WARN, "worker %u: mailbox: read: %s", loop->id, strerror(errno));
    (void)gh_loop_mailbox_run(loop);
}

int gh_loop_mailbox_new(gh_loop *loop)
{
    struct gh_mailbox *mb = calloc(1, sizeof(*mb));

    if (mb == NULL)
        return GH_ENOMEM;
    if ((mb->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        int e = errno;
        free(mb);
        return -e;
    }
    if ((mb->ev = event_new(loop->base, mb->fd, EV_READ | EV_PERSIST, on_mail, loop)) == NULL ||
        event_add(mb->ev, NULL) != 0 ||
        (mb->wake_ev = event_new(loop->base, -1, 0, on_wake, loop)) == NULL) {
        if (mb->ev != NULL)
            event_free(mb->ev);
        close(mb->fd);
        free(mb);
        return GH_ENOMEM;
    }
    pthread_mutex_init(&mb->mu, NULL);
    loop->mbox = mb;
    return GH_OK;
}

void gh_loop_mailbox_free(gh_loop *loop)
{
    struct gh_mailbox *mb = loop->mbox;

    if (mb == NULL)
        return;
    if (current == loop)
        gh_loop_set_current(NULL);
    gh_loop_wake_now(loop);
    event_free(mb->ev);
    event_free(mb->wake_ev);
    close(mb->fd);
    pthread_mutex_destroy(&mb->mu);
    free(mb->q);
    free(mb->wake);
    free(mb);
    loop->mbox = NULL;
}

int gh_loop_post(gh_loop *loop, gh_loop_task_fn fn, void *arg)
{
    struct gh_mailbox *mb = loop->mbox;
    bool wake;

    pthread_mutex_lock(&mb->mu);
    if (mb->n == mb->cap) {
        size_t cap = mb->cap ? mb->cap * 2 : 16;
        task *q = realloc(mb->q, cap * sizeof(*q));
        if (q == NULL) {
            pthread_mutex_unlock(&mb->mu);
            return GH_ENOMEM;
        }
        mb->q = q;
        mb->cap = cap;
    }
    mb->q[mb->n++] = (task){ fn, arg };
    wake = mb->n == 1;
    pthread_mutex_unlock(&mb->mu);
    if (wake && !wake_later(mb))
        wake_up(mb);
    return GH_OK;
}
