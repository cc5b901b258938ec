/* test_httpdate.c: HTTP dates and entity tags (core/httpdate.c). */
#include "httpdate.h"
#include "err.h"

#include <check.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define T1994 ((time_t)784111777)   /* Sun, 06 Nov 1994 08:49:37 GMT */

static int parse_str(const char *s, time_t *t)
{
    return gh_httpdate_parse(s, strlen(s), t);
}

static time_t utc(int y, int mon, int d, int h, int mi, int s)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d,
        .tm_hour = h, .tm_min = mi, .tm_sec = s,
    };
    return timegm(&tm);
}

static int current_year(void)
{
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    return tm.tm_year + 1900;
}

/* ---- format ----------------------------------------------------------- */

START_TEST(format_writes_imf_fixdate)
{
    static const struct { int64_t t; const char *s; } cases[] = {
        { 784111777, "Sun, 06 Nov 1994 08:49:37 GMT" },
        { 0, "Thu, 01 Jan 1970 00:00:00 GMT" },
        { -1, "Wed, 31 Dec 1969 23:59:59 GMT" },
        { 951782400, "Tue, 29 Feb 2000 00:00:00 GMT" },
        { 1709164800, "Thu, 29 Feb 2024 00:00:00 GMT" },
        { 2147483647, "Tue, 19 Jan 2038 03:14:07 GMT" },
        { 2147483648LL, "Tue, 19 Jan 2038 03:14:08 GMT" },
        { 253402300799LL, "Fri, 31 Dec 9999 23:59:59 GMT" },
        { -62167219200LL, "Sat, 01 Jan 0000 00:00:00 GMT" },
    };
    char out[GH_HTTPDATE_LEN + 1];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(out, 'x', sizeof(out));
        gh_httpdate_format((time_t)cases[i].t, out);
        ck_assert_str_eq(out, cases[i].s);
    }
}
END_TEST

START_TEST(format_clamps_times_outside_four_digit_years)
{
    char out[GH_HTTPDATE_LEN + 1];

    gh_httpdate_format((time_t)253402300800LL, out);
    ck_assert_str_eq(out, "Fri, 31 Dec 9999 23:59:59 GMT");
    gh_httpdate_format((time_t)INT64_MAX, out);
    ck_assert_str_eq(out, "Fri, 31 Dec 9999 23:59:59 GMT");
    gh_httpdate_format((time_t)INT64_MIN, out);
    ck_assert_str_eq(out, "Sat, 01 Jan 0000 00:00:00 GMT");
    ck_assert_uint_eq(strlen(out), GH_HTTPDATE_LEN);
}
END_TEST

START_TEST(format_ignores_locale_and_timezone)
{
    char out[GH_HTTPDATE_LEN + 1];
    const char *old_tz = getenv("TZ");
    char *saved = old_tz != NULL ? strdup(old_tz) : NULL;

    /* any locale the machine has; C.UTF-8 at least exists on Debian */
    if (setlocale(LC_ALL, "de_DE.UTF-8") == NULL && setlocale(LC_ALL, "fr_FR.UTF-8") == NULL)
        setlocale(LC_ALL, "C.UTF-8");
    setenv("TZ", "America/New_York", 1);
    tzset();
    gh_httpdate_format(T1994, out);
    ck_assert_str_eq(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    setlocale(LC_ALL, "C");
    if (saved != NULL)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
}
END_TEST

START_TEST(format_and_parse_agree_with_gmtime_and_timegm)
{
    char out[GH_HTTPDATE_LEN + 1], want[64];
    uint64_t x = 88172645463325252u;       /* xorshift: fixed sequence */

    for (int i = 0; i < 100000; i++) {
        struct tm tm;
        time_t t, back;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        t = (time_t)(int64_t)(x % 253402300800u) - (i % 2 ? 62167219200LL : 0);
        gh_httpdate_format(t, out);
        gmtime_r(&t, &tm);
        snprintf(want, sizeof(want), "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT",
                 &"SunMonTueWedThuFriSat"[tm.tm_wday * 3], tm.tm_mday,
                 &"JanFebMarAprMayJunJulAugSepOctNovDec"[tm.tm_mon * 3],
                 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        ck_assert_str_eq(out, want);
        ck_assert_int_eq(gh_httpdate_parse(out, GH_HTTPDATE_LEN, &back), GH_OK);
        ck_assert_int_eq((int64_t)back, (int64_t)t);
        ck_assert_int_eq((int64_t)back, (int64_t)timegm(&tm));
    }
}
END_TEST

/* ---- parse ------------------------------------------------------------ */

START_TEST(parse_reads_all_three_forms)
{
    static const char *const same[] = {
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "Sun Nov 06 08:49:37 1994",
    };
    time_t t;

    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        t = 0;
        ck_assert_int_eq(parse_str(same[i], &t), GH_OK);
        ck_assert_int_eq((int64_t)t, (int64_t)T1994);
    }
    ck_assert_int_eq(parse_str("Thu Feb 29 23:59:59 2024", &t), GH_OK);
    ck_assert_int_eq((int64_t)t, (int64_t)utc(2024, 2, 29, 23, 59, 59));
    ck_assert_int_eq(parse_str("Sat Jan 16 00:00:00 2038", &t), GH_OK);
    ck_assert_int_eq((int64_t)t, (int64_t)utc(2038, 1, 16, 0, 0, 0));
    ck_assert_int_eq(parse_str("Sun, 01 Jan 0000 00:00:00 GMT", &t), GH_OK);
    ck_assert_int_eq((int64_t)t, -62167219200LL);
    ck_assert_int_eq(parse_str("Sun, 31 Dec 9999 23:59:59 GMT", &t), GH_OK);
    ck_assert_int_eq((int64_t)t, 253402300799LL);
    ck_assert_int_eq(parse_str("Wed, 31 Dec 1969 23:59:59 GMT", &t), GH_OK);
    ck_assert_int_eq((int64_t)t, -1);
}
END_TEST

START_TEST(parse_reads_rfc850_with_every_weekday_name)
{
    static const char *const names[] = {
        "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
    };
    char buf[64];
    time_t t;

    ck_assert_int_eq(parse_str("Sunday, 06-Nov-94 08:49:37 GMT", &t), GH_OK);
    ck_assert_int_eq((int64_t)t, (int64_t)T1994);
    for (size_t i = 0; i < 7; i++) {
        snprintf(buf, sizeof(buf), "%s, 31-Dec-99 23:59:59 GMT", names[i]);
        ck_assert_int_eq(parse_str(buf, &t), GH_OK);
        ck_assert_int_eq((int64_t)t, (int64_t)utc(1999, 12, 31, 23, 59, 59));
    }
}
END_TEST

/* §5.6.7: more than 50 years ahead means the previous century. */
START_TEST(parse_puts_rfc850_years_at_most_50_years_ahead)
{
    int now = current_year();
    int ahead50 = now + 50, ahead51 = now + 51, this_year = now;
    char buf[64];
    time_t t;

    snprintf(buf, sizeof(buf), "Monday, 01-Jan-%02d 00:00:00 GMT", ahead50 % 100);
    ck_assert_int_eq(parse_str(buf, &t), GH_OK);
    ck_assert_int_eq((int64_t)t, (int64_t)utc(ahead50, 1, 1, 0, 0, 0));
    snprintf(buf, sizeof(buf), "Monday, 01-Jan-%02d 00:00:00 GMT", ahead51 % 100);
    ck_assert_int_eq(parse_str(buf, &t), GH_OK);
    ck_assert_int_eq((int64_t)t, (int64_t)utc(ahead51 - 100, 1, 1, 0, 0, 0));
    snprintf(buf, sizeof(buf), "Monday, 01-Jan-%02d 00:00:00 GMT", this_year % 100);
    ck_assert_int_eq(parse_str(buf, &t), GH_OK);
    ck_assert_int_eq((int64_t)t, (int64_t)utc(this_year, 1, 1, 0, 0, 0));
}
END_TEST

START_TEST(parse_accepts_a_leap_second_as_the_next_second)
{
    time_t t;

    ck_assert_int_eq(parse_str("Sat, 31 Dec 2016 23:59:60 GMT", &t), GH_OK);
    ck_assert_int_eq((int64_t)t, (int64_t)utc(2017, 1, 1, 0, 0, 0));
}
END_TEST

START_TEST(parse_rejects_bad_names_fields_and_junk)
{
    static const char *const bad[] = {
        "",
        "Sun",
        "Sun,",
        "sun, 06 Nov 1994 08:49:37 GMT",      /* names are case-sensitive */
        "SUN, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 gmt",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sux, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nox 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",       /* 2DIGIT day */
        "Sun,  6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 06-Nov-1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT ",     /* trailing junk */
        " Sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMTX",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "Sun, 06 Nov 1994 08.49.37 GMT",
        "Sun, 06 Nov 1994 08:49:3a GMT",
        "Sun, 06 Nov 199a 08:49:37 GMT",
        "Sun, +6 Nov 1994 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",      /* out of range */
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 32 Dec 1994 08:49:37 GMT",
        "Sun, 29 Feb 1900 08:49:37 GMT",      /* not a leap year */
        "Sun, 29 Feb 2023 08:49:37 GMT",
        "Sun, 30 Feb 2024 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:37 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 99:99:99 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT ",
        "Sunday, 06-Nov-94 08:49:37 GM",
        "Sunday, 06 Nov 94 08:49:37 GMT",
        "Sunday, 6-Nov-94 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun, 06-Nov-94 08:49:37 GMT",
        "Sundai, 06-Nov-94 08:49:37 GMT",
        "Sunday 06-Nov-94 08:49:37 GMT",
        "sunday, 06-Nov-94 08:49:37 GMT",
        "Sunday, 31-Apr-94 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 UTC",
        "Sun Nov  6 08:49:37 1994 ",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 94",
        "Sun Nov 6  08:49:37 1994",
        "Sun Nov  0 08:49:37 1994",
        "Sun Nov 31 08:49:37 1994",
        "Sun Nov  6 08:49:37 1994 GMT",
        "Sun nov  6 08:49:37 1994",
        "Sun Nov \t6 08:49:37 1994",
        "Sun Nov  6 08:49:37  994",
        "1994-11-06T08:49:37Z",
        "784111777",
    };
    time_t t = 12345;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(parse_str(bad[i], &t) == GH_EINVAL, "accepted \"%s\"", bad[i]);
    ck_assert_int_eq((int64_t)t, 12345);
    ck_assert_int_eq(gh_httpdate_parse(NULL, 0, &t), GH_EINVAL);
    ck_assert_int_eq(gh_httpdate_parse("Sun, 06 Nov 1994 08:49:37 GMT\0", 30, &t), GH_EINVAL);
    ck_assert_int_eq(gh_httpdate_parse("Sun, 06 Nov 1994 08:49:37 G\0T", 29, &t), GH_EINVAL);
}
END_TEST

START_TEST(parse_rejects_every_proper_prefix_and_survives_byte_changes)
{
    static const char *const valid[] = {
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Wednesday, 09-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    };
    char buf[64];
    time_t t;

    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        size_t len = strlen(valid[i]);

        for (size_t n = 0; n < len; n++)
            ck_assert_int_eq(gh_httpdate_parse(valid[i], n, &t), GH_EINVAL);
        ck_assert_int_eq(gh_httpdate_parse(valid[i], len, &t), GH_OK);
        for (size_t pos = 0; pos < len; pos++) {
            for (int c = 0; c < 256; c++) {
                int rc;

                memcpy(buf, valid[i], len);
                buf[pos] = (char)c;
                rc = gh_httpdate_parse(buf, len, &t);
                ck_assert(rc == GH_OK || rc == GH_EINVAL);
            }
        }
    }
}
END_TEST

/* Inputs end right before a PROT_NONE page: any over-read faults. */
START_TEST(parse_never_reads_past_the_value)
{
    static const char *const inputs[] = {
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Wednesday, 09-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "Sun, 06 Nov 1994 08:49:37 GM",
        "Sunday",
        "Wednesday,",
        "Sun ",
        "Sun,",
        "S",
    };
    long page = sysconf(_SC_PAGESIZE);
    char *mem = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    ck_assert_ptr_ne(mem, MAP_FAILED);
    ck_assert_int_eq(mprotect(mem + page, (size_t)page, PROT_NONE), 0);
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        size_t len = strlen(inputs[i]);

        for (size_t n = len + 1; n-- > 0;) {
            char *p = mem + page - n;
            time_t t;
            int rc;

            memcpy(p, inputs[i], n);
            rc = gh_httpdate_parse(p, n, &t);
            if (n < len || i >= 4)
                ck_assert_int_eq(rc, GH_EINVAL);
            else
                ck_assert_int_eq(rc, GH_OK);
            /* and the etag list scanner */
            (void)gh_etag_match(p, n, "\"a\"");
        }
    }
    ck_assert_int_eq(munmap(mem, (size_t)page * 2), 0);
}
END_TEST

/* ---- entity tags ------------------------------------------------------ */

START_TEST(etag_format_writes_size_mtime_and_nanoseconds)
{
    char out[GH_ETAG_MAX];

    ck_assert_int_eq(gh_etag_format(0x1a2b, 0x5f5e1000, 0, out, sizeof(out)), 23);
    ck_assert_str_eq(out, "\"1a2b-5f5e100000000000\"");
    ck_assert_int_eq(gh_etag_format(0, 0, 0, out, sizeof(out)), 13);
    ck_assert_str_eq(out, "\"0-000000000\"");
    ck_assert_int_eq(gh_etag_format(1234, 1700000000, 999999999, out, sizeof(out)), 22);
    ck_assert_str_eq(out, "\"4d2-6553f1003b9ac9ff\"");
    ck_assert_int_eq(gh_etag_format(UINT64_MAX, -1, 999999999, out, sizeof(out)),
                     GH_ETAG_MAX - 1);
    ck_assert_str_eq(out, "\"ffffffffffffffff-ffffffffffffffff3b9ac9ff\"");
}
END_TEST

START_TEST(etag_format_changes_with_size_and_nanoseconds)
{
    char a[GH_ETAG_MAX], b[GH_ETAG_MAX];

    gh_etag_format(100, 1700000000, 1, a, sizeof(a));
    gh_etag_format(100, 1700000000, 2, b, sizeof(b));
    ck_assert_str_ne(a, b);
    gh_etag_format(101, 1700000000, 1, b, sizeof(b));
    ck_assert_str_ne(a, b);
    /* fixed-width nanoseconds: sec 0x10 nsec 0 differs from sec 0x1 nsec 0 */
    gh_etag_format(1, 0x10, 0, a, sizeof(a));
    gh_etag_format(1, 0x1, 0, b, sizeof(b));
    ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(etag_format_refuses_a_short_buffer)
{
    char out[GH_ETAG_MAX];
    int n = gh_etag_format(0x1a2b, 0x5f5e1000, 0, out, sizeof(out));

    memset(out, 'x', sizeof(out));
    ck_assert_int_eq(gh_etag_format(0x1a2b, 0x5f5e1000, 0, out, (size_t)n), GH_E2BIG);
    ck_assert_int_eq(out[0], 'x');
    ck_assert_int_eq(gh_etag_format(0x1a2b, 0x5f5e1000, 0, out, (size_t)n + 1), n);
    ck_assert_int_eq(gh_etag_format(0x1a2b, 0x5f5e1000, 0, NULL, 0), GH_E2BIG);
    ck_assert_int_eq(gh_etag_format(UINT64_MAX, -1, 999999999, out, GH_ETAG_MAX - 1), GH_E2BIG);
}
END_TEST

static bool match_str(const char *value, const char *etag)
{
    return gh_etag_match(value, strlen(value), etag);
}

START_TEST(etag_match_uses_weak_comparison_over_a_list)
{
    static const char *const yes[] = {
        "\"abc\"",
        "W/\"abc\"",
        "*",
        "  *\t",
        "\"x\", \"abc\"",
        "\"x\",W/\"abc\"",
        "\"abc\" ,\t\"x\"",
        " , ,\"abc\",, ",
        "\"a,b\", \"abc\"",
    };
    static const char *const no[] = {
        "",
        " ",
        ",,,",
        "\"abcd\"",
        "\"ab\"",
        "\"ABC\"",
        "abc",                    /* unquoted */
        "\"abc",                  /* unterminated */
        "w/\"abc\"",              /* W/ is case-sensitive */
        "W/ \"abc\"",
        "W\"abc\"",
        "*, \"abc\"",             /* "*" only alone */
        "\"abc\", *",
        "\"abc\" \"x\"",          /* missing comma */
        "\"abc\";",
        "\"abc\", junk",          /* malformed list matches nothing */
        "\"ab c\"",
        "\"abc\"x",
        "\"x\",\"abc",
    };

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        ck_assert_msg(match_str(yes[i], "\"abc\""), "no match: %s", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        ck_assert_msg(!match_str(no[i], "\"abc\""), "match: %s", no[i]);
    /* our own etag may be weak too */
    ck_assert(match_str("\"abc\"", "W/\"abc\""));
    ck_assert(match_str("\"a,b\"", "\"a,b\""));
    ck_assert(match_str("\"\"", "\"\""));
    ck_assert(match_str("\"\x80\xff\"", "\"\x80\xff\""));
}
END_TEST

/* Every prefix of a list, each ending at a PROT_NONE page: only the whole
 * list matches, and nothing is read past its end. */
START_TEST(etag_match_checks_every_prefix_without_over_reading)
{
    static const char list[] = " \"x,y\" , W/\"abc\" ,";
    long page = sysconf(_SC_PAGESIZE);
    char *mem = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    size_t len = sizeof(list) - 1;
    size_t first_match = strchr(list, 'c') - list + 2;   /* after the quote */

    ck_assert_ptr_ne(mem, MAP_FAILED);
    ck_assert_int_eq(mprotect(mem + page, (size_t)page, PROT_NONE), 0);
    for (size_t n = 0; n <= len; n++) {
        char *p = mem + page - n;

        memcpy(p, list, n);
        ck_assert_msg(gh_etag_match(p, n, "\"abc\"") == (n >= first_match),
                      "prefix %zu", n);
        ck_assert(!gh_etag_match(p, n, "\"y\""));
    }
    ck_assert_int_eq(munmap(mem, (size_t)page * 2), 0);
}
END_TEST

START_TEST(etag_match_handles_a_missing_or_malformed_etag)
{
    ck_assert(!match_str("\"abc\"", NULL));
    ck_assert(!match_str("\"abc\"", "abc"));
    ck_assert(!match_str("\"abc\"", "\"abc\" "));
    ck_assert(!match_str("\"abc\"", ""));
    ck_assert(match_str("*", NULL));
    ck_assert(!gh_etag_match(NULL, 0, "\"abc\""));
    /* the length bounds the value */
    ck_assert(gh_etag_match("\"abc\", junk", 5, "\"abc\""));
    ck_assert(!gh_etag_match("\"abc\"", 4, "\"abc\""));
}
END_TEST

START_TEST(etag_match_finds_formatted_etags)
{
    char tag[GH_ETAG_MAX], list[128];

    gh_etag_format(4096, 1700000000, 123456789, tag, sizeof(tag));
    snprintf(list, sizeof(list), "\"other\", W/%s", tag);
    ck_assert(match_str(list, tag));
    ck_assert(match_str(tag, tag));
}
END_TEST

static Suite *httpdate_suite(void)
{
    Suite *s = suite_create("httpdate");
    TCase *tc = tcase_create("date");
    TCase *te = tcase_create("etag");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, format_writes_imf_fixdate);
    tcase_add_test(tc, format_clamps_times_outside_four_digit_years);
    tcase_add_test(tc, format_ignores_locale_and_timezone);
    tcase_add_test(tc, format_and_parse_agree_with_gmtime_and_timegm);
    tcase_add_test(tc, parse_reads_all_three_forms);
    tcase_add_test(tc, parse_reads_rfc850_with_every_weekday_name);
    tcase_add_test(tc, parse_puts_rfc850_years_at_most_50_years_ahead);
    tcase_add_test(tc, parse_accepts_a_leap_second_as_the_next_second);
    tcase_add_test(tc, parse_rejects_bad_names_fields_and_junk);
    tcase_add_test(tc, parse_rejects_every_proper_prefix_and_survives_byte_changes);
    tcase_add_test(tc, parse_never_reads_past_the_value);
    suite_add_tcase(s, tc);
    tcase_add_test(te, etag_format_writes_size_mtime_and_nanoseconds);
    tcase_add_test(te, etag_format_changes_with_size_and_nanoseconds);
    tcase_add_test(te, etag_format_refuses_a_short_buffer);
    tcase_add_test(te, etag_match_uses_weak_comparison_over_a_list);
    tcase_add_test(te, etag_match_checks_every_prefix_without_over_reading);
    tcase_add_test(te, etag_match_handles_a_missing_or_malformed_etag);
    tcase_add_test(te, etag_match_finds_formatted_etags);
    suite_add_tcase(s, te);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(httpdate_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
