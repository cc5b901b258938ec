/* err.h: the return-code vocabulary shared by every module.
 *
 * 0 is success; failures are negative. The GH_E* codes are the matching
 * negated errno values, so a function may pass -errno through unchanged and
 * a caller can still tell "try again" (GH_EAGAIN) from "fail". */
#ifndef GH_ERR_H
#define GH_ERR_H

#include <errno.h>

#define GH_OK      0
#define GH_EAGAIN  (-EAGAIN)   /* codec: need more input; call again with more */
#define GH_EPROTO  (-EPROTO)   /* codec: malformed input; drop or refuse it */
#define GH_ENOMEM  (-ENOMEM)   /* allocation failed */
#define GH_EINVAL  (-EINVAL)   /* bad argument or bad configuration */
#define GH_E2BIG   (-E2BIG)    /* input over a limit (head too large, too many fields) */
#define GH_ENOENT  (-ENOENT)   /* not found */
#define GH_ERANGE  (-ERANGE)   /* value out of range (e.g. unsatisfiable Range) */
#define GH_EEXIST  (-EEXIST)   /* taken (a topic-state claim: another member has the value) */
#define GH_ENOSPC  (-ENOSPC)   /* full (a topic-state claim: the topic has its max members) */

#endif
