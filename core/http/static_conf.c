/* static_conf.c: the keys of a `static:` route action, for the config
 * loader (the action is staticfile.c). */
#include "cfgkit.h"

#include <string.h>

static void set_index(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    char qb[GH_CFG_QBUF];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "a file name");

    if (s == NULL)
        return;
    if (s[0] == '\0' || strchr(s, '/') != NULL || strcmp(s, ".") == 0 ||
        strcmp(s, "..") == 0) {
        gh_cfg_err_at(c, v, "%s: expected a file name without /, got %s", k->text, gh_cfg_quote(qb, s));
        return;
    }
    gh_cfg_replace(gh_cfg_field(obj, d), gh_cfg_dup(c, s));
}

static const gh_keydef static_keys[] = {
    { .name = "root", .set = gh_cfg_set_path, .off = offsetof(gh_static_conf, root),
      .flags = GH_K_REQUIRED },
    { .name = "index", .set = set_index, .off = offsetof(gh_static_conf, index) },
    { .name = NULL },
};

static void static_defaults(gh_cfgctx *c, void *conf)
{
    ((gh_static_conf *)conf)->index = gh_cfg_dup(c, "index.html");
}

const gh_cfg_action gh_static_action = {
    .name = "static",
    .kind = GH_ACTION_STATIC,
    .keys = static_keys,
    .off = offsetof(gh_route_conf, u.stat),
    .defaults = static_defaults,
};
