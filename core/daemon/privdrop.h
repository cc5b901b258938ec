/* privdrop.h: giving up root for `user:` / `group:` once everything that
 * needs root is done (listeners bound, logs open, TLS keys read). */
#ifndef GH_PRIVDROP_H
#define GH_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"

/* What main does about cfg->user, given who the process is. */
typedef enum {
    GH_PRIV_STAY_ROOT,   /* root, no user: serve as root (warn) */
    GH_PRIV_DROP,        /* root, user: drop after binding */
    GH_PRIV_NOTHING,     /* not root: no user:, or already that user and group */
    GH_PRIV_REFUSE,      /* not root, user: another user or group: cannot switch */
} gh_priv_plan;

/* Decides from cfg and the process's real and effective ids. */
gh_priv_plan gh_priv_plan_for(const gh_config *cfg);

/* Creates path (a log file) for the user it will be written by after the
 * drop: when it does not exist, it is created here, mode 0640, and given
 * to uid:gid, so that a reopen on SIGHUP, after the drop, may open it. An
 * existing file is left as it is (whoever owns it decides who writes it;
 * chown of a file we did not create could be steered by a symlink).
 * Returns 0 or -errno. */
int gh_priv_create_for(const char *path, uid_t uid, gid_t gid);

/* setgroups(1, &gid), setgid(gid), setuid(uid), each checked, then checks
 * that every real, effective and saved id is the new one, that the only
 * group is gid, and that setuid(0) fails. Returns 0, or -errno (EPERM also
 * when a check fails) with what failed written into why. The process must
 * exit on failure: it may be half-dropped. */
int gh_priv_drop(uid_t uid, gid_t gid, char *why, size_t cap);

#endif
