/* test_units.c: durations and sizes, good and bad spellings, overflow. */
#include "err.h"
#include "units.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct good_case {
    const char *in;
    uint64_t    want;
} good_case;

static const good_case good_durations[] = {
    { "0", 0 },
    { "0ms", 0 },
    { "0s", 0 },
    { "500ms", 500 },
    { "30s", 30000 },
    { "5m", 300000 },
    { "1h", 3600000 },
    { "007s", 7000 },
    { "18446744073709551615ms", UINT64_MAX },
    { "18446744073709551s", 18446744073709551000ULL },
};

static const char *const bad_durations[] = {
    "", "s", "ms", "-1s", "+1s", "1.5s", "30 s", " 30s", "30s ", "30", "00",
    "1", "30S", "30sec", "1d", "1H", "5mm", "0x10s", "1e3ms",
    "18446744073709551616ms", "18446744073709552s", "5124095576030432h",
    "99999999999999999999999999s",
};

static const good_case good_sizes[] = {
    { "0", 0 },
    { "4096", 4096 },
    { "10B", 10 },
    { "64KiB", 65536 },
    { "1MiB", 1048576 },
    { "1GiB", 1073741824 },
    { "1KB", 1000 },
    { "2MB", 2000000 },
    { "3GB", 3000000000ULL },
    { "18446744073709551615", UINT64_MAX },
    { "17179869183GiB", 17179869183ULL << 30 },
};

static const char *const bad_sizes[] = {
    "", "B", "KiB", "-1", "+1", "1.5MiB", "64 KiB", "64kib", "64KIB", "64K",
    "64k", "64kB", "1TiB", "1MiBB", "0x10", " 1", "1 ",
    "18446744073709551616", "17179869184GiB", "18446744073709552KB",
};

START_TEST(duration_accepts_each_unit_and_zero)
{
    uint64_t ms = 12345;

    ck_assert_int_eq(gh_units_parse_duration(good_durations[_i].in, &ms), GH_OK);
    ck_assert_msg(ms == good_durations[_i].want, "%s gave %llu", good_durations[_i].in,
                  (unsigned long long)ms);
}
END_TEST

START_TEST(duration_rejects_junk_signs_decimals_spaces_and_overflow)
{
    uint64_t ms = 12345;

    ck_assert_msg(gh_units_parse_duration(bad_durations[_i], &ms) == GH_EINVAL,
                  "accepted \"%s\"", bad_durations[_i]);
    ck_assert(ms == 12345);     /* untouched on error */
}
END_TEST

START_TEST(size_accepts_bytes_binary_and_decimal_units)
{
    uint64_t n = 12345;

    ck_assert_int_eq(gh_units_parse_size(good_sizes[_i].in, &n), GH_OK);
    ck_assert_msg(n == good_sizes[_i].want, "%s gave %llu", good_sizes[_i].in,
                  (unsigned long long)n);
}
END_TEST

START_TEST(size_rejects_junk_negatives_wrong_case_and_overflow)
{
    uint64_t n = 12345;

    ck_assert_msg(gh_units_parse_size(bad_sizes[_i], &n) == GH_EINVAL,
                  "accepted \"%s\"", bad_sizes[_i]);
    ck_assert(n == 12345);
}
END_TEST

START_TEST(null_input_is_an_error)
{
    uint64_t v = 0;

    ck_assert_int_eq(gh_units_parse_duration(NULL, &v), GH_EINVAL);
    ck_assert_int_eq(gh_units_parse_size(NULL, &v), GH_EINVAL);
}
END_TEST

/* The string, NUL included, ends at a PROT_NONE page: reading one byte past
 * the terminator crashes. */
START_TEST(parsers_stop_at_the_terminator)
{
    long pg = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static const char *const ins[] = { "30s", "500ms", "64KiB", "1", "", "5m" };
    uint64_t v;

    ck_assert_ptr_ne(map, MAP_FAILED);
    ck_assert_int_eq(mprotect(map + pg, (size_t)pg, PROT_NONE), 0);
    for (size_t i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
        size_t len = strlen(ins[i]) + 1;
        char *s = map + pg - len;

        memcpy(s, ins[i], len);
        (void)gh_units_parse_duration(s, &v);
        (void)gh_units_parse_size(s, &v);
    }
    munmap(map, (size_t)pg * 2);
}
END_TEST

START_TEST(timeval_splits_milliseconds)
{
    struct timeval tv = gh_units_timeval(0);

    ck_assert_int_eq(tv.tv_sec, 0);
    ck_assert_int_eq(tv.tv_usec, 0);
    tv = gh_units_timeval(1500);
    ck_assert_int_eq(tv.tv_sec, 1);
    ck_assert_int_eq(tv.tv_usec, 500000);
    tv = gh_units_timeval(75000);
    ck_assert_int_eq(tv.tv_sec, 75);
    ck_assert_int_eq(tv.tv_usec, 0);
    tv = gh_units_timeval(999);
    ck_assert_int_eq(tv.tv_sec, 0);
    ck_assert_int_eq(tv.tv_usec, 999000);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *units_suite(void)
{
    Suite *s = suite_create("units");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, duration_accepts_each_unit_and_zero, 0, N(good_durations));
    tcase_add_loop_test(tc, duration_rejects_junk_signs_decimals_spaces_and_overflow, 0,
                        N(bad_durations));
    tcase_add_loop_test(tc, size_accepts_bytes_binary_and_decimal_units, 0, N(good_sizes));
    tcase_add_loop_test(tc, size_rejects_junk_negatives_wrong_case_and_overflow, 0,
                        N(bad_sizes));
    tcase_add_test(tc, null_input_is_an_error);
    tcase_add_test(tc, parsers_stop_at_the_terminator);
    tcase_add_test(tc, timeval_splits_milliseconds);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(units_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
