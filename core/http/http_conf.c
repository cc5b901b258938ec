/* http_conf.c: the keys of `http:` (the HTTP limits and timeouts of every
 * listener), for the config loader. */
#include "cfgkit.h"

#define HTTP_FIELD(f) offsetof(gh_http_conf, f)
const gh_keydef gh_http_conf_keys[] = {
    { .name = "header_timeout", .set = gh_cfg_set_duration, .off = HTTP_FIELD(header_timeout_ms),
      .flags = GH_K_NONZERO },
    { .name = "keepalive_timeout", .set = gh_cfg_set_duration,
      .off = HTTP_FIELD(keepalive_timeout_ms), .flags = GH_K_NONZERO },
    { .name = "send_timeout", .set = gh_cfg_set_duration, .off = HTTP_FIELD(send_timeout_ms),
      .flags = GH_K_NONZERO },
    { .name = "max_head", .set = gh_cfg_set_size, .off = HTTP_FIELD(max_head), .flags = GH_K_NONZERO },
    { .name = "max_body", .set = gh_cfg_set_size, .off = HTTP_FIELD(max_body) },
    { .name = NULL },
};
#undef HTTP_FIELD

void gh_http_conf_defaults(gh_http_conf *h)
{
    h->header_timeout_ms = 10000;
    h->keepalive_timeout_ms = 75000;
    h->send_timeout_ms = 60000;
    h->max_head = 16 * 1024;
    h->max_body = 1024 * 1024;
}
