/* outq.c: a WebSocket connection's output queue (outq.h). */
#include "outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "err.h"

#define BLOCK      (4096 - sizeof(gh_frame_ref))    /* a copy block: one 4 KiB malloc */
#define SEND_IOV   64
#define INLINE_PIECES 8                             /* in the queue's own allocation, */
#define INLINE_BLOCK  256                           /* with a copy block of this size */
#define PIECE_MAX  ((size_t)1 << 30)                /* bytes of one write at most */

/* A run of bytes of a block, holding one reference to it. */
typedef struct piece {
    gh_frame_ref *f;
    uint32_t      off, len;
} piece;

/* A queue is one allocation while it holds a few small writes: its first
 * ring and its first copy block are inside it (the block's reference count
 * never drops below the queue's own 1, so it is never freed on its own). */
struct gh_outq {
    piece        *p;            /* a ring of cap (a power of 2) pieces, n from head */
    uint32_t      head, n, cap;
    size_t        len;          /* bytes in the pieces */
    gh_frame_ref *blk;          /* the block copies go into (a reference of ours) */
    size_t        used;         /* bytes of blk taken */
    piece         inl[INLINE_PIECES];
    union {
        gh_frame_ref f;
        uint8_t      room[sizeof(gh_frame_ref) + INLINE_BLOCK];
    } own;
};

static gh_frame_ref *own_block(gh_outq *q)
{
    return &q->own.f;
}

/* Lets go of the copy block when it is not the queue's own. */
static void drop_block(gh_outq *q)
{
    if (q->blk != own_block(q))
        gh_frame_ref_release(NULL, 0, q->blk);
    q->blk = own_block(q);
    q->used = 0;
}

static piece *at(const gh_outq *q, uint32_t i)
{
    return &q->p[(q->head + i) & (q->cap - 1)];
}

static void unref(gh_frame_ref *f)
{
    gh_frame_ref_release(NULL, 0, f);
}

/* Room for one more piece. */
static int grow(gh_outq *q)
{
    uint32_t cap;
    piece *np;

    if (q->n < q->cap)
        return GH_OK;
    if (q->cap > UINT32_MAX / 2)
        return GH_ENOMEM;
    cap = q->cap * 2;
    if ((np = malloc((size_t)cap * sizeof(*np))) == NULL)
        return GH_ENOMEM;
    for (uint32_t i = 0; i < q->n; i++)
        np[i] = *at(q, i);
    if (q->p != q->inl)
        free(q->p);
    q->p = np;
    q->cap = cap;
    q->head = 0;
    return GH_OK;
}

/* Appends bytes off..off+len of f (len <= PIECE_MAX) taking a reference,
 * or extends the last piece when it ends where this begins. */
static int push(gh_outq *q, gh_frame_ref *f, size_t off, size_t len)
{
    piece *last = q->n > 0 ? at(q, q->n - 1) : NULL;

    if (last != NULL && last->f == f && (size_t)last->off + last->len == off &&
        (size_t)last->len + len <= PIECE_MAX) {
        last->len += (uint32_t)len;
        q->len += len;
        return GH_OK;
    }
    if (grow(q) != GH_OK)
        return GH_ENOMEM;
    *at(q, q->n) = (piece){ .f = f, .off = (uint32_t)off, .len = (uint32_t)len };
    q->n++;
    f->refs++;
    q->len += len;
    return GH_OK;
}

/* A copy block with room for len bytes (len <= PIECE_MAX). */
static int room(gh_outq *q, size_t len)
{
    gh_frame_ref *nb;

    if (q->blk->refs == 1)
        q->used = 0;            /* no piece points into it: from its start again */
    if (q->blk->len - q->used >= len)
        return GH_OK;
    if (q->blk != own_block(q) && own_block(q)->refs == 1 && len <= INLINE_BLOCK) {
        drop_block(q);          /* back to the queue's own, free again */
        return GH_OK;
    }
    if ((nb = gh_frame_ref_new(len > BLOCK ? len : BLOCK)) == NULL)
        return GH_ENOMEM;
    drop_block(q);
    q->blk = nb;
    return GH_OK;
}

gh_outq *gh_outq_new(void)
{
    gh_outq *q = malloc(sizeof(*q));

    if (q == NULL)
        return NULL;
    q->p = q->inl;
    q->head = q->n = 0;
    q->cap = INLINE_PIECES;
    q->len = 0;
    q->blk = own_block(q);
    q->blk->refs = 1;
    q->blk->len = INLINE_BLOCK;
    q->blk->under = NULL;
    q->used = 0;
    return q;
}

void gh_outq_free(gh_outq *q)
{
    if (q == NULL)
        return;
    for (uint32_t i = 0; i < q->n; i++)
        unref(at(q, i)->f);
    drop_block(q);
    if (q->p != q->inl)
        free(q->p);
    free(q);
}

size_t gh_outq_len(const gh_outq *q)
{
    return q->len;
}

int gh_outq_add(gh_outq *q, const void *data, size_t len)
{
    if (len == 0)
        return GH_OK;
    if (len > PIECE_MAX || room(q, len) != GH_OK || push(q, q->blk, q->used, len) != GH_OK)
        return GH_ENOMEM;
    memcpy(q->blk->data + q->used, data, len);
    q->used += len;
    return GH_OK;
}

int gh_outq_add_ref(gh_outq *q, gh_frame_ref *f)
{
    if (f->len > PIECE_MAX)
        return GH_ENOMEM;       /* as every other write here: 1 GiB at most */
    return f->len == 0 ? GH_OK : push(q, f, 0, f->len);
}

int gh_outq_prepend(gh_outq *q, const void *data, size_t len)
{
    gh_frame_ref *f;

    if (len == 0)
        return GH_OK;
    if (len > PIECE_MAX || grow(q) != GH_OK || (f = gh_frame_ref_new(len)) == NULL)
        return GH_ENOMEM;
    memcpy(f->data, data, len);
    q->head = (q->head - 1) & (q->cap - 1);
    *at(q, 0) = (piece){ .f = f, .off = 0, .len = (uint32_t)len };  /* its one reference */
    q->n++;
    q->len += len;
    return GH_OK;
}

uint8_t *gh_outq_reserve(gh_outq *q, size_t len)
{
    if (len > PIECE_MAX || room(q, len) != GH_OK)
        return NULL;
    return q->blk->data + q->used;
}

int gh_outq_commit(gh_outq *q, size_t used)
{
    if (used == 0)
        return GH_OK;
    if (push(q, q->blk, q->used, used) != GH_OK)
        return GH_ENOMEM;
    q->used += used;
    return GH_OK;
}

/* Drops the first k queued bytes. */
static void consume(gh_outq *q, size_t k)
{
    while (k > 0) {
        piece *pc = at(q, 0);

        if (k < pc->len) {
            pc->off += (uint32_t)k;
            pc->len -= (uint32_t)k;
            q->len -= k;
            return;
        }
        k -= pc->len;
        q->len -= pc->len;
        unref(pc->f);
        q->head = (q->head + 1) & (q->cap - 1);
        q->n--;
    }
    if (q->n == 0 && q->blk->refs == 1)
        drop_block(q);          /* empty: only its own allocation is kept */
}

ssize_t gh_outq_sendmsg(gh_outq *q, int fd)
{
    struct iovec iov[SEND_IOV];
    struct msghdr mh;
    uint32_t nv = q->n < SEND_IOV ? q->n : SEND_IOV;
    ssize_t n;

    if (nv == 0)
        return 0;
    for (uint32_t i = 0; i < nv; i++) {
        const piece *pc = at(q, i);

        iov[i].iov_base = gh_frame_bytes(pc->f) + pc->off;
        iov[i].iov_len = pc->len;
    }
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = iov;
    mh.msg_iovlen = nv;
    do
        n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        consume(q, (size_t)n);
    return n;
}
