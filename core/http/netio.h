/* netio.h: socket writes shared by the connection kinds above http
 * (WebSockets, proxied upstreams). Internal to core/. */
#ifndef GH_NETIO_H
#define GH_NETIO_H

#include <sys/types.h>

#include <event2/buffer.h>
#include <event2/util.h>

/* Writes b's first chains (up to 64 of them) to fd with one sendmsg(),
 * MSG_DONTWAIT | MSG_NOSIGNAL, retrying EINTR, and drains what went.
 * sendmsg() costs the kernel less than the writev() of evbuffer_write()
 * (no file position, no VFS write path). Returns the bytes written (0 when
 * b is empty), or -1 with errno set (EAGAIN: the socket is full). */
ssize_t gh_evbuffer_sendmsg(struct evbuffer *b, evutil_socket_t fd);

#endif
