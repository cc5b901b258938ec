/* notify.h: the systemd readiness protocol (sd_notify) without libsystemd:
 * one datagram to $NOTIFY_SOCKET per state change. */
#ifndef GH_NOTIFY_H
#define GH_NOTIFY_H

/* Sends state (e.g. "READY=1", "STOPPING=1") when $NOTIFY_SOCKET is set.
 * Returns 0 when sent or when there is no socket to send to, else -errno.
 * Never blocks: the socket is non-blocking and a full queue drops the
 * message (systemd reads these at once). */
int gh_notify(const char *state);

#endif
