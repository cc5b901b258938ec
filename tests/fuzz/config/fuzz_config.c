/* fuzz_config.c: arbitrary bytes as a config file. The loader must return
 * 0 with a config or an error with at least one message, never crash, hang
 * or leak (run under ASan with leak detection). */
#include "config.h"
#include "err.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gh_errlist errs;
    gh_config *cfg = NULL;
    int rc;

    gh_errlist_init(&errs);
    rc = gh_config_load_mem("fuzz.yaml", (const char *)data, size, "/srv/gh", &cfg, &errs);
    if ((rc == GH_OK) != (cfg != NULL) || (rc != GH_OK && errs.n == 0) ||
        (rc == GH_OK && errs.n != 0))
        abort();
    if (cfg != NULL) {
        /* touch what consumers read */
        for (size_t i = 0; i < cfg->nroutes; i++)
            if (cfg->routes[i].action == GH_ACTION_WEBSOCKET)
                (void)gh_cnode_get(cfg->routes[i].u.ws.config, "history");
        if (cfg->nlisteners == 0 || cfg->plugins_dir == NULL)
            abort();
    }
    gh_config_free(cfg);
    gh_errlist_deinit(&errs);
    return 0;
}
