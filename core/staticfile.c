/* staticfile.c: the static action: files under a root, sent with sendfile.
 *
 * The request path arrives decoded and normalised (uri.c): it has no dot
 * segments and cannot climb above "/". Symlinks are the remaining way out of
 * the root, so files are opened relative to the root's directory fd with
 * openat2(RESOLVE_BENEATH): the kernel refuses any resolution, symlinks
 * included, that would leave the root. Where openat2 is missing (kernels
 * before 5.6) the resolved path is compared with the root's instead.
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
    static int have_openat2 = 1;
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

void gh_action_static(gh_request *r, const gh_route_conf *route)
{
    const gh_static_conf *sc = &route->u.stat;
    gh_site *site = r->c->site;
    size_t ri = (size_t)(route - site->cfg->routes);
    int rootfd = ri < site->nroot_fds ? site->root_fds[ri] : -1;
    char rel[PATH_MAX], etag[64], lastmod[GH_HTTPDATE_LEN + 1];
    const char *name;
    struct stat st;
    gh_resp_head h;
    const gh_http1_field *rf;
    uint64_t first = 0, last = 0;
    int fd = -1, status = 200, rc;
    size_t n;

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
    fd = open_beneath(rootfd, sc->root, rel);
    if (fd < 0) {
        if (errno != ENOENT && errno != ENOTDIR && errno != EXDEV && errno != ELOOP &&
            errno != EACCES && errno != ENAMETOOLONG)
            GH_LOG(GH_LOG_WARN, "conn #%llu %s: static: open %s: %s",
                   (unsigned long long)r->c->id, r->c->client_text, rel, strerror(errno));
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

    gh_etag_format((uint64_t)st.st_size, (int64_t)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                   etag, sizeof(etag));
    gh_httpdate_format(st.st_mtim.tv_sec, lastmod);
    name = strrchr(rel, '/');
    name = name != NULL ? name + 1 : rel;

    if (not_modified(r, etag, st.st_mtim.tv_sec)) {
        close(fd);
        gh_req_begin(r, &h, 304);
        gh_resp_add_str(&h, "ETag", etag);
        gh_resp_add_str(&h, "Last-Modified", lastmod);
        gh_req_send(r, &h, NULL, 0);
        return;
    }

    rf = r->is_get ? gh_req_field(r, "range") : NULL;
    if (rf != NULL && if_range_holds(r, etag, lastmod)) {
        rc = gh_range_parse(rf->value, rf->value_len, (uint64_t)st.st_size, &first, &last);
        if (rc == GH_ERANGE) {
            char cr[48];
            int cl = snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)st.st_size);
            char body[512];
            size_t bn = gh_resp_error_body(416, body, sizeof(body));
            close(fd);
            gh_req_begin(r, &h, 416);
            gh_resp_add(&h, "Content-Range", cr, (size_t)cl);
            gh_resp_add_raw(&h, "Content-Type: text/html; charset=utf-8\r\n", 40);
            gh_req_send(r, &h, body, bn);
            return;
        }
        if (rc == 0)
            status = 206;
    }

    gh_req_begin(r, &h, status);
    gh_resp_add_str(&h, "Content-Type", gh_mime_type(name));
    gh_resp_add_str(&h, "Last-Modified", lastmod);
    gh_resp_add_str(&h, "ETag", etag);
    gh_resp_add_raw(&h, "Accept-Ranges: bytes\r\n", 22);
    if (status == 206) {
        char cr[80];
        int cl = snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)first,
                          (unsigned long long)last, (unsigned long long)st.st_size);
        gh_resp_add(&h, "Content-Range", cr, (size_t)cl);
        gh_req_send_file(r, &h, fd, first, last - first + 1);
        return;
    }
    gh_req_send_file(r, &h, fd, 0, (uint64_t)st.st_size);
}
