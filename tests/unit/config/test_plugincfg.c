/* test_plugincfg.c: typed lookups in a plugin's config: tree: defaults for
 * absent keys, each type's accepted and refused forms, and errors that
 * carry the offending node's location. Trees come from the real config
 * loader, so locations are real. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "err.h"
#include "errlist.h"
#include "plugincfg.h"

static gh_config *cfg;
static const gh_cnode *map;

static const char yaml[] =
    "listeners:\n"
    "  - listen: 127.0.0.1:8080\n"
    "routes:\n"
    "  - match: { path: /ws }\n"
    "    websocket:\n"
    "      plugin: p\n"
    "      config:\n"
    "        name: chat room\n"          /* line 8 */
    "        history: 50\n"
    "        negative: -12\n"
    "        huge: 9223372036854775808\n"
    "        min64: -9223372036854775808\n"
    "        word: ten\n"
    "        yes: on\n"
    "        no: False\n"
    "        maybe: perhaps\n"
    "        size: 64KiB\n"
    "        badsize: 12 parsecs\n"
    "        every: 2m\n"
    "        badtime: 1.5s\n"
    "        names: [ann, bob, cy]\n"
    "        mixed: [a, [b]]\n"
    "        nested: { deep: 1 }\n";

static void setup(void)
{
    gh_errlist errs;

    gh_errlist_init(&errs);
    ck_assert_int_eq(gh_config_load_mem("t.yaml", yaml, sizeof(yaml) - 1, "/", &cfg, &errs), 0);
    gh_errlist_deinit(&errs);
    map = cfg->routes[0].u.ws.config;
    ck_assert_ptr_nonnull(map);
}

static void teardown(void)
{
    gh_config_free(cfg);
}

START_TEST(absent_keys_and_a_null_map_give_the_default)
{
    const char *s;
    int64_t i;
    bool b;
    uint64_t u;
    size_t n;
    const char *items[2];

    ck_assert_int_eq(gh_plugincfg_string(map, "nope", "def", &s, NULL), 0);
    ck_assert_str_eq(s, "def");
    ck_assert_int_eq(gh_plugincfg_int(NULL, "x", 7, 0, 10, &i, NULL), 0);
    ck_assert_int_eq(i, 7);
    ck_assert_int_eq(gh_plugincfg_bool(map, "nope", true, &b, NULL), 0);
    ck_assert(b);
    ck_assert_int_eq(gh_plugincfg_size(map, "nope", 5, &u, NULL), 0);
    ck_assert_uint_eq(u, 5);
    ck_assert_int_eq(gh_plugincfg_duration(map, "nope", 9, &u, NULL), 0);
    ck_assert_uint_eq(u, 9);
    ck_assert_int_eq(gh_plugincfg_list(map, "nope", items, 2, &n, NULL), 0);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(strings_and_integers)
{
    const char *s;
    int64_t i;
    gh_plugincfg_err e;

    ck_assert_int_eq(gh_plugincfg_string(map, "name", NULL, &s, NULL), 0);
    ck_assert_str_eq(s, "chat room");
    ck_assert_int_eq(gh_plugincfg_int(map, "history", 0, 0, 100, &i, NULL), 0);
    ck_assert_int_eq(i, 50);
    ck_assert_int_eq(gh_plugincfg_int(map, "negative", 0, -100, 100, &i, NULL), 0);
    ck_assert_int_eq(i, -12);
    ck_assert_int_eq(gh_plugincfg_int(map, "min64", 0, INT64_MIN, INT64_MAX, &i, NULL), 0);
    ck_assert(i == INT64_MIN);
    ck_assert_int_eq(gh_plugincfg_int(map, "huge", 0, INT64_MIN, INT64_MAX, &i, &e), GH_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "out of range"));
    ck_assert_int_eq(gh_plugincfg_int(map, "history", 0, 0, 10, &i, &e), GH_EINVAL);
    ck_assert_str_eq(e.msg, "history: 50 is out of range 0..10");
    ck_assert_int_eq(gh_plugincfg_int(map, "word", 0, 0, 10, &i, &e), GH_EINVAL);
    ck_assert_str_eq(e.msg, "word: expected an integer, got \"ten\"");
    ck_assert_int_eq(e.loc.line, 13);
    ck_assert_int_eq(e.loc.col, 15);
    ck_assert_str_eq(e.loc.file, "t.yaml");
    ck_assert_int_eq(gh_plugincfg_string(map, "names", NULL, &s, &e), GH_EINVAL);
    ck_assert_str_eq(e.msg, "names: expected a string, got a list");
}
END_TEST

START_TEST(booleans)
{
    bool b = false;
    gh_plugincfg_err e;

    ck_assert_int_eq(gh_plugincfg_bool(map, "yes", false, &b, NULL), 0);
    ck_assert(b);
    ck_assert_int_eq(gh_plugincfg_bool(map, "no", true, &b, NULL), 0);
    ck_assert(!b);
    ck_assert_int_eq(gh_plugincfg_bool(map, "maybe", true, &b, &e), GH_EINVAL);
    ck_assert_str_eq(e.msg, "maybe: expected true or false, got \"perhaps\"");
}
END_TEST

START_TEST(sizes_and_durations_use_the_gateway_units)
{
    uint64_t u;
    gh_plugincfg_err e;

    ck_assert_int_eq(gh_plugincfg_size(map, "size", 0, &u, NULL), 0);
    ck_assert_uint_eq(u, 65536);
    ck_assert_int_eq(gh_plugincfg_size(map, "badsize", 0, &u, &e), GH_EINVAL);
    ck_assert_int_eq(gh_plugincfg_duration(map, "every", 0, &u, NULL), 0);
    ck_assert_uint_eq(u, 120000);
    ck_assert_int_eq(gh_plugincfg_duration(map, "badtime", 0, &u, &e), GH_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "badtime: expected a duration"));
    ck_assert_int_eq(e.loc.line, 20);
}
END_TEST

START_TEST(lists_fill_up_to_cap_and_report_the_length)
{
    const char *items[2] = { NULL, NULL };
    size_t n;
    gh_plugincfg_err e;

    ck_assert_int_eq(gh_plugincfg_list(map, "names", items, 2, &n, NULL), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(items[0], "ann");
    ck_assert_str_eq(items[1], "bob");
    ck_assert_int_eq(gh_plugincfg_list(map, "mixed", items, 2, &n, &e), GH_EINVAL);
    ck_assert_str_eq(e.msg, "mixed: item 2: expected a scalar, got a list");
    ck_assert_int_eq(gh_plugincfg_list(map, "name", items, 2, &n, &e), GH_EINVAL);
    ck_assert_ptr_nonnull(gh_plugincfg_get(gh_plugincfg_get(map, "nested"), "deep"));
}
END_TEST

START_TEST(check_keys_reports_every_unknown_key_in_turn)
{
    static const char *const known[] = { "name", "history", "negative", "huge", "min64",
                                         "word", "yes", "no", "maybe", "size", "badsize",
                                         "every", "badtime", "names", NULL };
    gh_plugincfg_err e;
    size_t at = 0;
    int found = 0;

    while (gh_plugincfg_check_keys(map, known, &at, &e) != 0) {
        found++;
        ck_assert_ptr_nonnull(strstr(e.msg, "unknown key"));
    }
    ck_assert_int_eq(found, 2);         /* mixed, nested */
    at = 0;
    ck_assert_int_eq(gh_plugincfg_check_keys(NULL, known, &at, &e), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("plugincfg");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, absent_keys_and_a_null_map_give_the_default);
    tcase_add_test(tc, strings_and_integers);
    tcase_add_test(tc, booleans);
    tcase_add_test(tc, sizes_and_durations_use_the_gateway_units);
    tcase_add_test(tc, lists_fill_up_to_cap_and_report_the_length);
    tcase_add_test(tc, check_keys_reports_every_unknown_key_in_turn);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
