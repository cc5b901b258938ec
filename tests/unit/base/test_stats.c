/* test_stats.c: refusal reasons are counted by name and never lost. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "stats.h"

START_TEST(reasons_are_counted_by_name)
{
    gh_stats s;
    char other[] = "crc32c_mismatch";   /* same text, another pointer */

    memset(&s, 0, sizeof(s));
    gh_stats_proxy_refused(&s, "crc32c_mismatch");
    gh_stats_proxy_refused(&s, "timeout");
    gh_stats_proxy_refused(&s, other);
    gh_stats_proxy_refused(&s, NULL);
    ck_assert_uint_eq(s.nproxy_refused, 3);
    ck_assert_str_eq(s.proxy_refused[0].reason, "crc32c_mismatch");
    ck_assert_uint_eq(s.proxy_refused[0].n, 2);
    ck_assert_uint_eq(s.proxy_refused[1].n, 1);
    ck_assert_str_eq(s.proxy_refused[2].reason, "other");
}
END_TEST

START_TEST(a_full_table_counts_the_rest_as_other)
{
    static char names[GH_STATS_MAX_REASONS + 5][16];
    gh_stats s;
    uint64_t total = 0;

    memset(&s, 0, sizeof(s));
    for (int i = 0; i < GH_STATS_MAX_REASONS + 5; i++) {
        snprintf(names[i], sizeof(names[i]), "r%d", i);
        gh_stats_proxy_refused(&s, names[i]);
    }
    ck_assert_uint_eq(s.nproxy_refused, GH_STATS_MAX_REASONS);
    for (size_t i = 0; i < s.nproxy_refused; i++)
        total += s.proxy_refused[i].n;
    ck_assert_uint_eq(total, GH_STATS_MAX_REASONS + 5);
}
END_TEST

START_TEST(close_codes_are_counted_per_code)
{
    gh_stats s;

    memset(&s, 0, sizeof(s));
    gh_stats_ws_close(&s, 1000);
    gh_stats_ws_close(&s, 1001);
    gh_stats_ws_close(&s, 1000);
    ck_assert_uint_eq(s.nws_closes, 2);
    ck_assert_uint_eq(s.ws_closes[0].code, 1000);
    ck_assert_uint_eq(s.ws_closes[0].n, 2);
    for (unsigned c = 3000; c < 3100; c++)
        gh_stats_ws_close(&s, c);
    ck_assert_uint_eq(s.nws_closes, GH_STATS_MAX_CODES);
    ck_assert_uint_eq(s.ws_closes[GH_STATS_MAX_CODES - 1].code, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, reasons_are_counted_by_name);
    tcase_add_test(tc, a_full_table_counts_the_rest_as_other);
    tcase_add_test(tc, close_codes_are_counted_per_code);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
