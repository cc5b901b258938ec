/* loop.c: the parts of gh_loop that belong to the connection path: the
 * site's reference count, the cached Date, the access log's writes and the
 * connection registry. What the daemon decides on top (the connection
 * limit, the end of a drain) it does in the hooks. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "conn.h"
#include "filecache.h"
#include "log.h"

gh_site *gh_site_ref(gh_site *s)
{
    s->refs++;
    return s;
}

void gh_site_unref(gh_site *s)
{
    if (s == NULL || --s->refs > 0)
        return;
    if (s->on_free != NULL)
        s->on_free(s);
    for (size_t i = 0; i < s->nroot_fds; i++)
        if (s->root_fds[i] >= 0)
            close(s->root_fds[i]);
    free(s->root_fds);
    gh_filecache_free(s->filecache);
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
        static time_t last;
        time_t now = time(NULL);
        if (now != last) {
            last = now;
            GH_LOG(GH_LOG_WARN, "access log: write: %s", strerror(errno));
        }
    }
}

void gh_loop_conn_added(gh_loop *loop, gh_conn *c)
{
    c->prev = NULL;
    c->next = loop->conns;
    if (loop->conns != NULL)
        loop->conns->prev = c;
    loop->conns = c;
    loop->nconns++;
    c->lst->open++;
    if (loop->on_conn_added != NULL)
        loop->on_conn_added(loop);
}

void gh_loop_conn_removed(gh_loop *loop, gh_conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        loop->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    loop->nconns--;
    c->lst->open--;
    if (loop->on_conn_removed != NULL)
        loop->on_conn_removed(loop);
}
