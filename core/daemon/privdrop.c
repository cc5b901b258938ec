/* privdrop.c: the switch from root to `user:` / `group:`.
 *
 * One process, so the drop is for good: the listeners and log files opened
 * as root stay open, and everything after (serving, reloads, plugins loaded
 * on SIGHUP) runs as the user. The order is the usual one and each step is
 * checked: supplementary groups first (setgroups needs root), then the
 * group (setgid needs root too), then the user. Moving every uid off 0
 * also clears the capabilities (no PR_SET_KEEPCAPS here), which is why
 * setuid(0) must fail afterwards: we check that it does.
 *
 * It does not keep CAP_NET_BIND_SERVICE: a reload that needs a new port
 * below 1024 is refused (server.c says so). Run non-root with the
 * capability (systemd's AmbientCapabilities=) for that instead. */
#include "privdrop.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "err.h"

gh_priv_plan gh_priv_plan_for(const gh_config *cfg)
{
    if (geteuid() == 0)
        return cfg->user != NULL ? GH_PRIV_DROP : GH_PRIV_STAY_ROOT;
    if (cfg->user == NULL)
        return GH_PRIV_NOTHING;
    if (getuid() == cfg->uid && geteuid() == cfg->uid &&
        getgid() == cfg->gid && getegid() == cfg->gid)
        return GH_PRIV_NOTHING;
    return GH_PRIV_REFUSE;
}

int gh_priv_create_for(const char *path, uid_t uid, gid_t gid)
{
    /* O_EXCL | O_NOFOLLOW: a file of our own making, not one a symlink
     * points at */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
    int rc = GH_OK;

    if (fd < 0)
        return errno == EEXIST ? GH_OK : -errno;
    if (fchown(fd, uid, gid) != 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* e: the errno of a failed call, or 0 for a check that failed. */
static int fail(char *why, size_t cap, const char *what, int e)
{
    if (e == 0) {
        snprintf(why, cap, "%s", what);
        return -EPERM;
    }
    snprintf(why, cap, "%s: %s", what, strerror(e));
    return -e;
}

int gh_priv_drop(uid_t uid, gid_t gid, char *why, size_t cap)
{
    uid_t ru, eu, su;
    gid_t rg, eg, sg, groups[2];
    int n;

    if (setgroups(1, &gid) != 0)
        return fail(why, cap, "setgroups", errno);
    if (setgid(gid) != 0)
        return fail(why, cap, "setgid", errno);
    if (setuid(uid) != 0)
        return fail(why, cap, "setuid", errno);
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0)
        return fail(why, cap, "getresuid", errno);
    if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid)
        return fail(why, cap, "after the switch a real, effective or saved id is still another", 0);
    if ((n = getgroups(2, groups)) != 1 || groups[0] != gid)
        return fail(why, cap, "after the switch the supplementary groups are not the one group", 0);
    if (uid != 0 && setuid(0) != -1)
        return fail(why, cap, "setuid(0) succeeded after the switch: root could be taken back", 0);
    return GH_OK;
}
