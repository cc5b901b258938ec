/* health_conf.c: the `health:` and `metrics:` route actions take no keys
 * (health.c, metrics.c); declared here for the config loader. */
#include "cfgkit.h"

const gh_cfg_action gh_health_action = {
    .name = "health",
    .kind = GH_ACTION_HEALTH,
    .keys = gh_cfg_no_keys,
};

const gh_cfg_action gh_metrics_action = {
    .name = "metrics",
    .kind = GH_ACTION_METRICS,
    .keys = gh_cfg_no_keys,
};
