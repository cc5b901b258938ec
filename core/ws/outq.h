/* outq.h: what a plain-socket WebSocket connection has to write: a queue
 * of pieces of reference-counted blocks (gh_frame_ref).
 *
 * A topic frame queued to many subscribers is one block they all point
 * into: each queued copy costs the queue 16 bytes and a reference, no
 * allocation (libevent 2.1 allocates a 1 KiB chain for every
 * evbuffer_add_reference(): at 9,800 subscribers of a 1 KiB topic, 10 MB
 * of fresh heap per message, with its page faults, inside the publish). The
 * connection's own writes (its frames, control frames) are copied into a
 * block of the queue's, next to each other, so that many small frames go
 * out as one piece. One sendmsg() writes up to 64 pieces.
 *
 * One thread at a time: the connection's worker. */
#ifndef GH_OUTQ_H
#define GH_OUTQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "topic.h"

typedef struct gh_outq gh_outq;

/* An empty queue; NULL on ENOMEM. */
gh_outq *gh_outq_new(void);

/* Frees q and drops every reference it holds. NULL is a no-op. */
void gh_outq_free(gh_outq *q);

/* Bytes queued. */
size_t gh_outq_len(const gh_outq *q);

/* Queues a copy of data (len may be 0). GH_OK or GH_ENOMEM (nothing
 * queued). */
int gh_outq_add(gh_outq *q, const void *data, size_t len);

/* Queues the whole of f, taking a reference of its own. GH_OK or
 * GH_ENOMEM (no reference taken). */
int gh_outq_add_ref(gh_outq *q, gh_frame_ref *f);

/* Queues a copy of data in front of everything queued. GH_OK or
 * GH_ENOMEM. */
int gh_outq_prepend(gh_outq *q, const void *data, size_t len);

/* Contiguous space for up to len bytes at the end of the queue, to be
 * followed by gh_outq_commit() before anything else is queued; NULL on
 * ENOMEM. */
uint8_t *gh_outq_reserve(gh_outq *q, size_t len);

/* Queues the first used bytes of the space gh_outq_reserve() gave (used
 * at most its len). GH_OK or GH_ENOMEM (nothing queued). */
int gh_outq_commit(gh_outq *q, size_t used);

/* Writes what it can of the queue to fd with one sendmsg() (non-blocking,
 * no SIGPIPE) and drops what was written. The bytes written, 0 when the
 * queue is empty, or -1 with errno (EAGAIN: the socket is full). */
ssize_t gh_outq_sendmsg(gh_outq *q, int fd);

#endif
