/* test_route.c: first-match routing and Host splitting. */
#include <check.h>
#include <string.h>

#include "route.h"

static gh_route_conf routes[4];
static gh_config cfg;

static void setup(void)
{
    memset(routes, 0, sizeof(routes));
    routes[0].match.path = "/healthz";
    routes[0].action = GH_ACTION_HEALTH;
    routes[1].match.scheme = GH_SCHEME_HTTP;
    routes[1].action = GH_ACTION_REDIRECT_HTTPS;
    routes[2].match.prefix = "/api/";
    routes[2].match.host = "api.example.com";
    routes[2].action = GH_ACTION_WEBSOCKET;
    routes[3].match.prefix = "/";
    routes[3].action = GH_ACTION_STATIC;
    memset(&cfg, 0, sizeof(cfg));
    cfg.routes = routes;
    cfg.nroutes = 4;
}

START_TEST(first_match_wins)
{
    setup();
    ck_assert_ptr_eq(gh_route_find(&cfg, "a", 1, "/healthz", GH_SCHEME_HTTP), &routes[0]);
    ck_assert_ptr_eq(gh_route_find(&cfg, "a", 1, "/x", GH_SCHEME_HTTP), &routes[1]);
    ck_assert_ptr_eq(gh_route_find(&cfg, "a", 1, "/x", GH_SCHEME_HTTPS), &routes[3]);
}
END_TEST

START_TEST(exact_path_does_not_match_a_longer_path)
{
    setup();
    ck_assert_ptr_eq(gh_route_find(&cfg, "a", 1, "/healthz/x", GH_SCHEME_HTTPS), &routes[3]);
}
END_TEST

START_TEST(all_conditions_must_hold_and_host_is_case_insensitive)
{
    setup();
    ck_assert_ptr_eq(gh_route_find(&cfg, "API.Example.COM", 15, "/api/x", GH_SCHEME_HTTPS), &routes[2]);
    ck_assert_ptr_eq(gh_route_find(&cfg, "other.com", 9, "/api/x", GH_SCHEME_HTTPS), &routes[3]);
    ck_assert_ptr_eq(gh_route_find(&cfg, NULL, 0, "/api/x", GH_SCHEME_HTTPS), &routes[3]);
    ck_assert_ptr_eq(gh_route_find(&cfg, "api.example.co", 14, "/api/x", GH_SCHEME_HTTPS), &routes[3]);
}
END_TEST

START_TEST(redirect_never_matches_https_even_without_a_scheme_condition)
{
    setup();
    routes[1].match.scheme = GH_SCHEME_ANY;
    ck_assert_ptr_eq(gh_route_find(&cfg, "a", 1, "/x", GH_SCHEME_HTTPS), &routes[3]);
    ck_assert_ptr_eq(gh_route_find(&cfg, "a", 1, "/x", GH_SCHEME_HTTP), &routes[1]);
}
END_TEST

START_TEST(no_route_gives_null)
{
    setup();
    cfg.nroutes = 1;
    ck_assert_ptr_null(gh_route_find(&cfg, "a", 1, "/", GH_SCHEME_HTTP));
}
END_TEST

START_TEST(host_part_drops_the_port)
{
    ck_assert_uint_eq(gh_route_host_part("a.example:8080", 14), 9);
    ck_assert_uint_eq(gh_route_host_part("a.example", 9), 9);
    ck_assert_uint_eq(gh_route_host_part("[::1]:443", 9), 5);
    ck_assert_uint_eq(gh_route_host_part("[::1]", 5), 5);
    ck_assert_uint_eq(gh_route_host_part("", 0), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, first_match_wins);
    tcase_add_test(tc, exact_path_does_not_match_a_longer_path);
    tcase_add_test(tc, all_conditions_must_hold_and_host_is_case_insensitive);
    tcase_add_test(tc, redirect_never_matches_https_even_without_a_scheme_condition);
    tcase_add_test(tc, no_route_gives_null);
    tcase_add_test(tc, host_part_drops_the_port);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
