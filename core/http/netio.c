/* netio.c: socket writes shared by the connection kinds (netio.h). */
#include "netio.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define SEND_IOV 64

ssize_t gh_evbuffer_sendmsg(struct evbuffer *b, evutil_socket_t fd)
{
    struct evbuffer_iovec v[SEND_IOV];
    struct iovec iov[SEND_IOV];
    struct msghdr mh;
    int nv = evbuffer_peek(b, -1, NULL, v, SEND_IOV);
    ssize_t n;

    if (nv <= 0)
        return 0;
    if (nv > SEND_IOV)
        nv = SEND_IOV;
    for (int i = 0; i < nv; i++) {
        iov[i].iov_base = v[i].iov_base;
        iov[i].iov_len = v[i].iov_len;
    }
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = iov;
    mh.msg_iovlen = (size_t)nv;
    do
        n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        evbuffer_drain(b, (size_t)n);
    return n;
}
