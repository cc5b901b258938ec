/* test_range.c: the Range header parser (core/range.c). */
#include "range.h"
#include "err.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE 10000u
#define UNSET 0xdeadbeefu

typedef struct range_case {
    const char *value;
    uint64_t size;
    int rc;
    uint64_t first, last;
} range_case;

/* Runs one case; on error *first and *last must stay untouched. */
static void check_case(const char *value, size_t len, uint64_t size, int rc,
                       uint64_t first, uint64_t last)
{
    uint64_t f = UNSET, l = UNSET;
    int got = gh_range_parse(value, len, size, &f, &l);

    ck_assert_msg(got == rc, "\"%.*s\" size %llu: got %d, want %d", (int)len,
                  value, (unsigned long long)size, got, rc);
    if (rc == GH_OK) {
        ck_assert_msg(f == first && l == last, "\"%.*s\": got %llu-%llu", (int)len,
                      value, (unsigned long long)f, (unsigned long long)l);
    } else {
        ck_assert_uint_eq(f, UNSET);
        ck_assert_uint_eq(l, UNSET);
    }
}

static void check_table(const range_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_case(c[i].value, strlen(c[i].value), c[i].size, c[i].rc,
                   c[i].first, c[i].last);
}

#define CHECK_TABLE(t) check_table((t), sizeof(t) / sizeof((t)[0]))

START_TEST(parse_accepts_single_ranges_and_clamps_to_size)
{
    static const range_case cases[] = {
        { .value = "bytes=0-499", .size = SIZE, .rc = GH_OK, .first = 0, .last = 499 },
        { .value = "bytes=500-999", .size = SIZE, .rc = GH_OK, .first = 500, .last = 999 },
        { .value = "bytes=500-", .size = SIZE, .rc = GH_OK, .first = 500, .last = 9999 },
        { .value = "bytes=-500", .size = SIZE, .rc = GH_OK, .first = 9500, .last = 9999 },
        { .value = "bytes=0-0", .size = SIZE, .rc = GH_OK, .first = 0, .last = 0 },
        { .value = "bytes=-1", .size = SIZE, .rc = GH_OK, .first = 9999, .last = 9999 },
        { .value = "bytes=9999-", .size = SIZE, .rc = GH_OK, .first = 9999, .last = 9999 },
        { .value = "bytes=9999-9999", .size = SIZE, .rc = GH_OK, .first = 9999, .last = 9999 },
        { .value = "bytes=0-99999", .size = SIZE, .rc = GH_OK, .first = 0, .last = 9999 },
        { .value = "bytes=9000-10000", .size = SIZE, .rc = GH_OK, .first = 9000, .last = 9999 },
        { .value = "bytes=-10000", .size = SIZE, .rc = GH_OK, .first = 0, .last = 9999 },
        { .value = "bytes=-20000", .size = SIZE, .rc = GH_OK, .first = 0, .last = 9999 },
        { .value = "bytes=0-", .size = 1, .rc = GH_OK, .first = 0, .last = 0 },
        { .value = "bytes=-1", .size = 1, .rc = GH_OK, .first = 0, .last = 0 },
        { .value = "bytes=007-0010", .size = SIZE, .rc = GH_OK, .first = 7, .last = 10 },
        { .value = "bytes=0-9999999999999999999", .size = SIZE, .rc = GH_OK, .first = 0, .last = 9999 },
        { .value = "bytes=-9999999999999999999", .size = SIZE, .rc = GH_OK, .first = 0, .last = 9999 },
        { .value = "bytes=0-", .size = UINT64_MAX, .rc = GH_OK, .first = 0, .last = UINT64_MAX - 1 },
        { .value = "bytes=-1", .size = UINT64_MAX, .rc = GH_OK, .first = UINT64_MAX - 1, .last = UINT64_MAX - 1 },
        { .value = "bytes=9999999999999999998-", .size = UINT64_MAX, .rc = GH_OK,
          .first = 9999999999999999998u, .last = UINT64_MAX - 1 },
    };
    CHECK_TABLE(cases);
}
END_TEST

START_TEST(parse_matches_the_unit_in_any_case)
{
    static const range_case cases[] = {
        { .value = "BYTES=1-2", .size = SIZE, .rc = GH_OK, .first = 1, .last = 2 },
        { .value = "Bytes=1-2", .size = SIZE, .rc = GH_OK, .first = 1, .last = 2 },
        { .value = "bYtEs=1-2", .size = SIZE, .rc = GH_OK, .first = 1, .last = 2 },
        { .value = "items=1-2", .size = SIZE, .rc = GH_ENOENT },
        { .value = "byte=1-2", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytesx=1-2", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes:1-2", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes 1-2", .size = SIZE, .rc = GH_ENOENT },
        { .value = "b\xe9tes=1-2", .size = SIZE, .rc = GH_ENOENT },
        { .value = "BYTE\xd3=1-2", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes\x00" "1-2", .size = SIZE, .rc = GH_ENOENT },
    };
    CHECK_TABLE(cases);
}
END_TEST

START_TEST(parse_reports_unsatisfiable_ranges_as_erange)
{
    static const range_case cases[] = {
        { .value = "bytes=10000-", .size = SIZE, .rc = GH_ERANGE },
        { .value = "bytes=10000-10001", .size = SIZE, .rc = GH_ERANGE },
        { .value = "bytes=9999999999999999999-", .size = SIZE, .rc = GH_ERANGE },
        { .value = "bytes=-0", .size = SIZE, .rc = GH_ERANGE },
        { .value = "bytes=-000", .size = SIZE, .rc = GH_ERANGE },
        { .value = "bytes=0-0", .size = 0, .rc = GH_ERANGE },
        { .value = "bytes=0-", .size = 0, .rc = GH_ERANGE },
        { .value = "bytes=-5", .size = 0, .rc = GH_ERANGE },
        { .value = "bytes=-0", .size = 0, .rc = GH_ERANGE },
        { .value = "bytes=1-", .size = 1, .rc = GH_ERANGE },
    };
    CHECK_TABLE(cases);
}
END_TEST

START_TEST(parse_ignores_malformed_values)
{
    static const range_case cases[] = {
        { .value = "", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=,", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes= , ,", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=-", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=--1", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=1", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=5-4", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=20000-19999", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=1-2-3", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=1--2", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=+1-2", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=1-+2", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=0x10-", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=1-2x", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=1-2;", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=1-2\r", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=1-2\n", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=a-b", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=\xd9-1", .size = SIZE, .rc = GH_ENOENT },
        /* more than 19 digits, even with leading zeros */
        { .value = "bytes=0-10000000000000000000", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=00000000000000000001-", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=-18446744073709551616", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=18446744073709551615-", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=99999999999999999999999999999999-", .size = SIZE, .rc = GH_ENOENT },
    };
    CHECK_TABLE(cases);
}
END_TEST

START_TEST(parse_allows_whitespace_only_around_commas_and_the_value)
{
    static const range_case cases[] = {
        { .value = " bytes=1-2", .size = SIZE, .rc = GH_OK, .first = 1, .last = 2 },
        { .value = "bytes=1-2 \t", .size = SIZE, .rc = GH_OK, .first = 1, .last = 2 },
        { .value = "bytes=1-2 ,", .size = SIZE, .rc = GH_OK, .first = 1, .last = 2 },
        { .value = "bytes=, 1-2", .size = SIZE, .rc = GH_OK, .first = 1, .last = 2 },
        { .value = "bytes= ,1-2", .size = SIZE, .rc = GH_OK, .first = 1, .last = 2 },
        { .value = "bytes=,,\t,1-2 , ,", .size = SIZE, .rc = GH_OK, .first = 1, .last = 2 },
        { .value = "bytes =1-2", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes= 1-2", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=1 -2", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=1- 2", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=- 2", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=1-2 3-4", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=1-2\v", .size = SIZE, .rc = GH_ENOENT },
    };
    CHECK_TABLE(cases);
}
END_TEST

START_TEST(parse_ignores_sets_of_several_ranges_unless_none_is_satisfiable)
{
    static const range_case cases[] = {
        { .value = "bytes=0-1,5-6", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=0-1, 5-6", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=0-1,0-1", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=0-1,-5", .size = SIZE, .rc = GH_ENOENT },
        /* one satisfiable, one not: still a multi-range set */
        { .value = "bytes=20000-, 0-1", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=0-1,20000-", .size = SIZE, .rc = GH_ENOENT },
        /* none satisfiable: 416 */
        { .value = "bytes=20000-,30000-", .size = SIZE, .rc = GH_ERANGE },
        { .value = "bytes=-0, 10000-", .size = SIZE, .rc = GH_ERANGE },
        { .value = "bytes=0-1,-1", .size = 0, .rc = GH_ERANGE },
        /* malformed anywhere wins over unsatisfiable */
        { .value = "bytes=20000-,5-4", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=20000-,x", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=0-1,x", .size = SIZE, .rc = GH_ENOENT },
    };
    CHECK_TABLE(cases);
}
END_TEST

START_TEST(parse_handles_a_null_value_and_embedded_nul)
{
    static const char v[] = "bytes=0-1\0";
    uint64_t f = UNSET, l = UNSET;

    ck_assert_int_eq(gh_range_parse(NULL, 0, SIZE, &f, &l), GH_ENOENT);
    ck_assert_int_eq(gh_range_parse(v, sizeof(v) - 1, SIZE, &f, &l), GH_ENOENT);
    /* the length bounds the value, not a NUL */
    ck_assert_int_eq(gh_range_parse(v, 9, SIZE, &f, &l), GH_OK);
    ck_assert_uint_eq(f, 0);
    ck_assert_uint_eq(l, 1);
    ck_assert_int_eq(gh_range_parse("bytes=0-123", 9, SIZE, &f, &l), GH_OK);
    ck_assert_uint_eq(l, 1);
}
END_TEST

/* Every prefix of "bytes=0-499": only the ones that are themselves valid
 * ranges are accepted, each with its own meaning. */
START_TEST(parse_gives_exact_results_for_every_prefix)
{
    static const char v[] = "bytes=0-499";
    static const struct { int rc; uint64_t last; } want[] = {
        [0] = { GH_ENOENT, 0 }, [1] = { GH_ENOENT, 0 }, [2] = { GH_ENOENT, 0 },
        [3] = { GH_ENOENT, 0 }, [4] = { GH_ENOENT, 0 }, [5] = { GH_ENOENT, 0 },
        [6] = { GH_ENOENT, 0 },          /* "bytes=" */
        [7] = { GH_ENOENT, 0 },          /* "bytes=0" */
        [8] = { GH_OK, 9999 },           /* "bytes=0-" */
        [9] = { GH_OK, 4 },              /* "bytes=0-4" */
        [10] = { GH_OK, 49 },
        [11] = { GH_OK, 499 },
    };

    for (size_t n = 0; n < sizeof(v); n++)
        check_case(v, n, SIZE, want[n].rc, 0, want[n].last);
}
END_TEST

START_TEST(parse_survives_every_prefix_and_byte_change_of_valid_values)
{
    static const char *const valid[] = {
        "bytes=0-499", "bytes=500-", "bytes=-500", "bytes=0-0",
        "bytes=1-2, ,3-4", "BYTES=-9999999999999999999", " bytes=0-1 ,",
    };
    char buf[64];

    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        size_t len = strlen(valid[i]);

        for (size_t n = 0; n <= len; n++) {
            for (uint64_t size = 0; size < 3; size++) {
                uint64_t f = UNSET, l = UNSET;
                int rc = gh_range_parse(valid[i], n, size * 600, &f, &l);

                ck_assert(rc == GH_OK || rc == GH_ERANGE || rc == GH_ENOENT);
                if (rc == GH_OK)
                    ck_assert(f <= l && l < size * 600);
            }
        }
        for (size_t pos = 0; pos < len; pos++) {
            for (int c = 0; c < 256; c++) {
                uint64_t f = UNSET, l = UNSET;
                int rc;

                memcpy(buf, valid[i], len);
                buf[pos] = (char)c;
                rc = gh_range_parse(buf, len, SIZE, &f, &l);
                ck_assert(rc == GH_OK || rc == GH_ERANGE || rc == GH_ENOENT);
                if (rc == GH_OK)
                    ck_assert(f <= l && l < SIZE);
            }
        }
    }
}
END_TEST

/* Inputs end right before a PROT_NONE page: any over-read faults. */
START_TEST(parse_never_reads_past_the_value)
{
    static const range_case cases[] = {
        { .value = "bytes=0-499", .size = SIZE, .rc = GH_OK, .first = 0, .last = 499 },
        { .value = "bytes=500-", .size = SIZE, .rc = GH_OK, .first = 500, .last = 9999 },
        { .value = "bytes=-500", .size = SIZE, .rc = GH_OK, .first = 9500, .last = 9999 },
        { .value = "bytes=0-1,", .size = SIZE, .rc = GH_OK, .first = 0, .last = 1 },
        { .value = "bytes=0-1 ", .size = SIZE, .rc = GH_OK, .first = 0, .last = 1 },
        { .value = "bytes=-", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=1", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=1-2,", .size = SIZE, .rc = GH_OK, .first = 1, .last = 2 },
        { .value = "bytes=12345678901234567890", .size = SIZE, .rc = GH_ENOENT },
        { .value = "bytes=-1234567890123456789", .size = SIZE, .rc = GH_OK, .first = 0, .last = 9999 },
        { .value = "bytes", .size = SIZE, .rc = GH_ENOENT },
    };
    long page = sysconf(_SC_PAGESIZE);
    char *mem = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    ck_assert_ptr_ne(mem, MAP_FAILED);
    ck_assert_int_eq(mprotect(mem + page, (size_t)page, PROT_NONE), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].value);

        /* the whole value, then every prefix, each ending at the guard */
        for (size_t n = len + 1; n-- > 0;) {
            char *p = mem + page - n;
            uint64_t f, l;

            memcpy(p, cases[i].value, n);
            if (n == len)
                check_case(p, n, cases[i].size, cases[i].rc, cases[i].first, cases[i].last);
            else
                (void)gh_range_parse(p, n, cases[i].size, &f, &l);
        }
    }
    ck_assert_int_eq(munmap(mem, (size_t)page * 2), 0);
}
END_TEST

static Suite *range_suite(void)
{
    Suite *s = suite_create("range");
    TCase *tc = tcase_create("parse");

    tcase_add_test(tc, parse_accepts_single_ranges_and_clamps_to_size);
    tcase_add_test(tc, parse_matches_the_unit_in_any_case);
    tcase_add_test(tc, parse_reports_unsatisfiable_ranges_as_erange);
    tcase_add_test(tc, parse_ignores_malformed_values);
    tcase_add_test(tc, parse_allows_whitespace_only_around_commas_and_the_value);
    tcase_add_test(tc, parse_ignores_sets_of_several_ranges_unless_none_is_satisfiable);
    tcase_add_test(tc, parse_handles_a_null_value_and_embedded_nul);
    tcase_add_test(tc, parse_gives_exact_results_for_every_prefix);
    tcase_add_test(tc, parse_survives_every_prefix_and_byte_change_of_valid_values);
    tcase_add_test(tc, parse_never_reads_past_the_value);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(range_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
