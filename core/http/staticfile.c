/* staticfile.c: the static action: files under a root, sent with sendfile.
 *
 * The request path arrives decoded and normalised (uri.c): it has no dot
 * segments and cannot climb above "/". Symlinks are the remaining way out of
 * the root, so files are opened relative to the root's directory fd with
 * openat2(RESOLVE_BENEATH): the kernel refuses any resolution, symlinks
 * included, that would leave the root. Where openat2 is missing (kernels
 * before 5.6) the resolved path is compared with the root's instead.
 *
 * Files up to 256 KiB are kept in memory (filecache.c) and revalidated
 * with a stat once a second; larger ones go out with sendfile.
 *
 * Deliberately absent: directory listings, multipart ranges, content
 * negotiation and compression. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "actions.h"
#include "err.h"
#include "filecache.h"
#include "httpdate.h"
#include "log.h"
#include "mime.h"
#include "range.h"

static int open_beneath_fallback(int rootfd, const char *root, const char *rel)
{
    char full[PATH_MAX], real[PATH_MAX], realroot[PATH_MAX];
    size_t rl;
    int fd;

    (void)rootfd;
    if (realpath(root, realroot) == NULL)
        return -1;
    if ((size_t)snprintf(full, sizeof(full), "%s/%s", realroot, rel) >= sizeof(full)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (realpath(full, real) == NULL)
        return -1;
    rl = strlen(realroot);
    if (strncmp(real, realroot, rl) != 0 || (real[rl] != '/' && real[rl] != '\0')) {
        errno = EXDEV;
        return -1;
    }
    fd = open(real, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    return fd;
}

static int open_beneath(int rootfd, const char *root, const char *rel)
{
    static _Thread_local int have_openat2 = 1;
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };

    if (have_openat2) {
        long fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
        if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
            return (int)fd;
        have_openat2 = 0;    /* seccomp or an old kernel: fall back */
    }
    return open_beneath_fallback(rootfd, root, rel);
}

/* True when the conditional headers say the client's copy is current. */
static bool not_modified(gh_request *r, const char *etag, time_t mtime)
{
    const gh_http1_field *inm = gh_req_field(r, "if-none-match");
    const gh_http1_field *ims;
    time_t t;

    if (inm != NULL)        /* RFC 9110 §13.2.2: If-None-Match wins */
        return gh_etag_match(inm->value, inm->value_len, etag);
    ims = gh_req_field(r, "if-modified-since");
    if (ims != NULL && gh_httpdate_parse(ims->value, ims->value_len, &t) == 0)
        return mtime <= t;
    return false;
}

/* If-Range (RFC 9110 §13.1.5): the range applies only to this exact
 * representation, named by a strong ETag or its Last-Modified date. */
static bool if_range_holds(gh_request *r, const char *etag, const char *lastmod)
{
    const gh_http1_field *f = gh_req_field(r, "if-range");

    if (f == NULL)
        return true;
    if (f->value_len > 0 && f->value[0] == '"')
        return f->value_len == strlen(etag) && memcmp(f->value, etag, f->value_len) == 0;
    return f->value_len == strlen(lastmod) && memcmp(f->value, lastmod, f->value_len) == 0;
}

static void redirect_dir(gh_request *r)
{
    gh_resp_head h;
    char loc[4200];
    size_t n = r->path_len;

    if (n + 2 > sizeof(loc)) {
        gh_req_error(r, 404);
        return;
    }
    memcpy(loc, r->path, n);
    loc[n++] = '/';
    if (r->req->query != NULL && n + 1 + r->req->query_len < sizeof(loc)) {
        loc[n++] = '?';
        memcpy(loc + n, r->req->query, r->req->query_len);
        n += r->req->query_len;
    }
    gh_req_begin(r, &h, 301);
    gh_resp_add(&h, "Location", loc, n);
    gh_resp_add_raw(&h, "Content-Type: text/plain; charset=utf-8\r\n", 41);
    gh_req_send(r, &h, "moved\n", 6);
}

/* What is known about the file being answered, and where its bytes are:
 * in a cache entry (one reference held) or behind an open fd. */
typedef struct file_src {
    uint64_t    size;
    time_t      mtime;
    const char *etag;
    const char *lastmod;
    const char *ctype;
    gh_fcentry *entry;
    int         fd;
} file_src;

static void release_entry(void *arg)
{
    gh_fcentry_unref(arg);
}

static void src_close(file_src *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    gh_fcentry_unref(f->entry);
    f->entry = NULL;
}

/* Sends [off, off+len) of the file after the head; consumes f. */
static void send_body(gh_request *r, gh_resp_head *h, file_src *f, uint64_t off, uint64_t len)
{
    if (f->entry != NULL) {
        gh_fcentry *e = f->entry;
        f->entry = NULL;            /* the reference travels with the bytes */
        gh_req_send_ref(r, h, e->data + off, (size_t)len, release_entry, e);
        src_close(f);
        return;
    }
    gh_req_send_file(r, h, f->fd, off, len);
    f->fd = -1;
}

/* Conditional requests, ranges, then the body. Consumes f. */
static void respond(gh_request *r, file_src *f)
{
    const gh_http1_field *rf;
    gh_resp_head h;
    uint64_t first = 0, last = 0;
    int status = 200, rc;

    if (not_modified(r, f->etag, f->mtime)) {
        gh_req_begin(r, &h, 304);
        gh_resp_add_str(&h, "ETag", f->etag);
        gh_resp_add_str(&h, "Last-Modified", f->lastmod);
        gh_req_send(r, &h, NULL, 0);
        src_close(f);
        return;
    }
    rf = r->is_get ? gh_req_field(r, "range") : NULL;
    if (rf != NULL && if_range_holds(r, f->etag, f->lastmod)) {
        rc = gh_range_parse(rf->value, rf->value_len, f->size, &first, &last);
        if (rc == GH_ERANGE) {
            char cr[48], body[512];
            int cl = snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)f->size);
            size_t bn = gh_resp_error_body(416, body, sizeof(body));
            gh_req_begin(r, &h, 416);
            gh_resp_add(&h, "Content-Range", cr, (size_t)cl);
            gh_resp_add_raw(&h, "Content-Type: text/html; charset=utf-8\r\n", 40);
            gh_req_send(r, &h, body, bn);
            src_close(f);
            return;
        }
        if (rc == 0)
            status = 206;
    }
    gh_req_begin(r, &h, status);
    gh_resp_add_str(&h, "Content-Type", f->ctype);
    gh_resp_add_str(&h, "Last-Modified", f->lastmod);
    gh_resp_add_str(&h, "ETag", f->etag);
    gh_resp_add_raw(&h, "Accept-Ranges: bytes\r\n", 22);
    if (status == 206) {
        char cr[80];
        int cl = snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)first,
                          (unsigned long long)last, (unsigned long long)f->size);
        gh_resp_add(&h, "Content-Range", cr, (size_t)cl);
        send_body(r, &h, f, first, last - first + 1);
        return;
    }
    send_body(r, &h, f, 0, f->size);
}

/* Reads a whole small file into memory; NULL on a short read or error. */
static uint8_t *slurp(int fd, size_t size)
{
    uint8_t *buf = malloc(size > 0 ? size : 1);
    size_t got = 0;

    while (buf != NULL && got < size) {
        ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            free(buf);
            return NULL;
        }
        got += (size_t)n;
    }
    return buf;
}

void gh_action_static(gh_request *r, const gh_route_conf *route)
{
    const gh_static_conf *sc = &route->u.stat;
    gh_site *site = r->c->site;
    size_t ri = (size_t)(route - site->cfg->routes);
    int rootfd = ri < site->nroot_fds ? site->root_fds[ri] : -1;
    gh_filecache *fc = site->filecache != NULL ? site->filecache[r->c->loop->id] : NULL;
    char rel[PATH_MAX], key[PATH_MAX + 16], etag[GH_ETAG_MAX], lastmod[GH_HTTPDATE_LEN + 1];
    const char *name;
    struct stat st;
    file_src f = { .fd = -1 };
    gh_fcentry *e = NULL;
    time_t now = time(NULL);
    size_t n, keylen = 0;
    int fd;

    if (!r->is_get && !r->is_head) {
        gh_req_error(r, 405);
        return;
    }
    if (rootfd < 0) {
        gh_req_error(r, 404);
        return;
    }
    /* path is "/..." and normalised; make it relative to the root */
    n = r->path_len - 1;
    if (n + strlen(sc->index) + 1 >= sizeof(rel)) {
        gh_req_error(r, 414);
        return;
    }
    memcpy(rel, r->path + 1, n);
    rel[n] = '\0';
    if (n == 0 || rel[n - 1] == '/') {
        strcpy(rel + n, sc->index);
        n += strlen(sc->index);
    }
    name = strrchr(rel, '/');
    name = name != NULL ? name + 1 : rel;

    /* a hit checked this second needs no system call at all */
    if (fc != NULL) {
        keylen = (size_t)snprintf(key, sizeof(key), "%zu:%s", ri, rel);
        e = gh_filecache_get(fc, key, keylen);
        if (e != NULL && e->checked == now)
            goto serve_entry;
    }

    fd = open_beneath(rootfd, sc->root, rel);
    if (fd < 0) {
        if (errno != ENOENT && errno != ENOTDIR && errno != EXDEV && errno != ELOOP &&
            errno != EACCES && errno != ENAMETOOLONG)
            GH_LOG(GH_LOG_WARN, "conn #%llu %s: static: open %s: %s",
                   (unsigned long long)r->c->id, gh_conn_client_text(r->c), rel, strerror(errno));
        gh_req_error(r, 404);
        return;
    }
    if (fstat(fd, &st) != 0) {
        close(fd);
        gh_req_error(r, 500);
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        if (r->path[r->path_len - 1] != '/')
            redirect_dir(r);
        else
            gh_req_error(r, 404);   /* a directory without its index: no listings */
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        gh_req_error(r, 404);
        return;
    }
    if (fc != NULL && (uint64_t)st.st_size <= gh_filecache_max_file(fc)) {
        if (e != NULL && gh_fcentry_is_current(e, &st)) {
            e->checked = now;
            close(fd);
            goto serve_entry;
        }
        uint8_t *data = slurp(fd, (size_t)st.st_size);
        if (data != NULL &&
            (e = gh_filecache_put(fc, key, keylen, data, &st, gh_mime_type(name), now)) != NULL) {
            close(fd);
            goto serve_entry;
        }
    }

    gh_etag_format((uint64_t)st.st_size, (int64_t)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                   etag, sizeof(etag));
    gh_httpdate_format(st.st_mtim.tv_sec, lastmod);
    f.size = (uint64_t)st.st_size;
    f.mtime = st.st_mtim.tv_sec;
    f.etag = etag;
    f.lastmod = lastmod;
    f.ctype = gh_mime_type(name);
    f.fd = fd;
    respond(r, &f);
    return;

serve_entry:
    gh_fcentry_ref(e);
    f.size = e->size;
    f.mtime = e->mtime.tv_sec;
    f.etag = e->etag;
    f.lastmod = e->lastmod;
    f.ctype = e->ctype;
    f.entry = e;
    respond(r, &f);
}
