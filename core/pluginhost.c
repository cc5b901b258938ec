/* pluginhost.c: placeholder until the plugin loader lands. */
#include "pluginhost.h"

int gh_plugins_load(gh_site *site, gh_errlist *errs)
{
    (void)site;
    (void)errs;
    return 0;
}

void gh_plugins_bind(gh_site *site, gh_server *srv)
{
    (void)site;
    (void)srv;
}

void gh_plugins_unload(gh_site *site)
{
    (void)site;
}
