/* status_conf.c: the `status:` route action takes no keys (status.c);
 * declared here for the config loader. The page needs no path: it is built
 * into the binary (CMakeLists.txt says why). */
#include "cfgkit.h"

const gh_cfg_action gh_status_action = {
    .name = "status",
    .kind = GH_ACTION_STATUS,
    .keys = gh_cfg_no_keys,
};
