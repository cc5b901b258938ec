/* test_accesslog.c: Combined Log Format lines (core/accesslog.c). */
#include "accesslog.h"

#include <check.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define T2000 ((time_t)971186136)   /* 10/Oct/2000:13:55:36 +0000 */

typedef struct parsed {
    char client[256], date[32], request[8192], status[32], bytes[32];
    char referer[8192], agent[8192];
} parsed;

static gh_access_entry sample(void)
{
    gh_access_entry e = {
        .client = "192.0.2.7",
        .when = T2000,
        .method = "GET", .method_len = 3,
        .target = "/apache_pb.gif", .target_len = 14,
        .protocol = "HTTP/1.0",
        .status = 200,
        .bytes = 2326,
        .referer = "http://www.example.com/start.html", .referer_len = 33,
        .agent = "Mozilla/4.08 [en] (Win98; I ;Nav)", .agent_len = 33,
    };
    return e;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* What every line must be, whatever the input and cap. */
static void check_line(const char *out, size_t len, size_t cap)
{
    ck_assert_uint_lt(len, cap);
    ck_assert_uint_eq(strlen(out), len);
    ck_assert_uint_ge(len, 1);
    ck_assert_int_eq(out[len - 1], '\n');
    /* plain ifs: a ck_assert per byte costs a pipe write in fork mode */
    for (size_t i = 0; i + 1 < len; i++) {
        unsigned char c = (unsigned char)out[i];

        if (c < 0x20 || c >= 0x7f)
            ck_abort_msg("raw byte 0x%02x at %zu", c, i);
        if (c == '\\') {
            if (!(i + 4 < len && out[i + 1] == 'x' && is_hex(out[i + 2])
                  && is_hex(out[i + 3])))
                ck_abort_msg("split escape at %zu: %s", i, out);
            i += 3;
        }
    }
}

/* Splits a line into its fields; false when it does not have the shape. */
static bool parse_line(const char *s, parsed *p)
{
    int n = 0;

    memset(p, 0, sizeof(*p));
    if (sscanf(s, "%255[^ ] - - [%31[^]]] \"%8191[^\"]\" %31[^ ] %31[^ ] \"%8191[^\"]\" "
               "\"%8191[^\"]\"\n%n", p->client, p->date, p->request, p->status,
               p->bytes, p->referer, p->agent, &n) != 7)
        return false;
    return s[n] == '\0';
}

static size_t fmt(const gh_access_entry *e, char *out, size_t cap)
{
    size_t n = gh_accesslog_format(e, out, cap);

    check_line(out, n, cap);
    return n;
}

START_TEST(format_writes_combined_log_format)
{
    gh_access_entry e = sample();
    char out[512];
    size_t n = fmt(&e, out, sizeof(out));

    ck_assert_str_eq(out, "192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] "
                     "\"GET /apache_pb.gif HTTP/1.0\" 200 2326 "
                     "\"http://www.example.com/start.html\" "
                     "\"Mozilla/4.08 [en] (Win98; I ;Nav)\"\n");
    ck_assert_uint_eq(n, strlen(out));
}
END_TEST

START_TEST(format_writes_dashes_for_missing_fields)
{
    gh_access_entry e = {
        .client = "2001:db8::1", .when = 0, .method = NULL, .status = 400,
        .bytes = 0,
    };
    char out[256];

    fmt(&e, out, sizeof(out));
    ck_assert_str_eq(out, "2001:db8::1 - - [01/Jan/1970:00:00:00 +0000] \"-\" 400 - \"-\" \"-\"\n");
    /* method NULL hides whatever target and protocol say */
    e.target = "/x";
    e.target_len = 2;
    e.protocol = "HTTP/1.1";
    fmt(&e, out, sizeof(out));
    ck_assert_str_eq(out, "2001:db8::1 - - [01/Jan/1970:00:00:00 +0000] \"-\" 400 - \"-\" \"-\"\n");
    e.client = NULL;
    fmt(&e, out, sizeof(out));
    ck_assert_str_eq(out, "- - - [01/Jan/1970:00:00:00 +0000] \"-\" 400 - \"-\" \"-\"\n");
}
END_TEST

START_TEST(format_omits_a_missing_protocol_and_keeps_empty_fields)
{
    gh_access_entry e = sample();
    char out[256];

    e.protocol = NULL;
    e.referer = "";
    e.referer_len = 0;
    e.agent = NULL;
    fmt(&e, out, sizeof(out));
    ck_assert_str_eq(out, "192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] "
                     "\"GET /apache_pb.gif\" 200 2326 \"\" \"-\"\n");
    e.target = NULL;
    fmt(&e, out, sizeof(out));
    ck_assert_str_eq(out, "192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] "
                     "\"GET -\" 200 2326 \"\" \"-\"\n");
}
END_TEST

START_TEST(format_escapes_quotes_backslashes_controls_and_non_ascii)
{
    static const char agent[] = "a\"b\\c\nd\r\x01\x1f\x7f\xc3\xa9 ~";
    static const char target[] = "/a\0b\tc";
    gh_access_entry e = sample();
    char out[512];
    parsed p;

    e.agent = agent;
    e.agent_len = sizeof(agent) - 1;
    e.target = target;
    e.target_len = sizeof(target) - 1;
    fmt(&e, out, sizeof(out));
    ck_assert(parse_line(out, &p));
    ck_assert_str_eq(p.agent, "a\\x22b\\x5cc\\x0ad\\x0d\\x01\\x1f\\x7f\\xc3\\xa9 ~");
    ck_assert_str_eq(p.request, "GET /a\\x00b\\x09c HTTP/1.0");
}
END_TEST

START_TEST(format_keeps_a_forged_line_inside_its_field)
{
    static const char agent[] =
        "x\"\n10.0.0.1 - - [01/Jan/2000:00:00:00 +0000] \"GET /admin HTTP/1.1\" 200 1 \"-\" \"y";
    static const char referer[] = "\"\r\n\"";
    gh_access_entry e = sample();
    char out[512];
    size_t quotes = 0;
    parsed p;

    e.agent = agent;
    e.agent_len = sizeof(agent) - 1;
    e.referer = referer;
    e.referer_len = sizeof(referer) - 1;
    fmt(&e, out, sizeof(out));
    for (const char *c = out; *c != '\0'; c++)
        quotes += *c == '"';
    ck_assert_uint_eq(quotes, 6);
    ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
    ck_assert(parse_line(out, &p));
    ck_assert_str_eq(p.client, "192.0.2.7");
    ck_assert_str_eq(p.status, "200");
    ck_assert_str_eq(p.referer, "\\x22\\x0d\\x0a\\x22");
}
END_TEST

START_TEST(format_escapes_spaces_in_the_client_field)
{
    gh_access_entry e = sample();
    char out[512];
    parsed p;

    e.client = "a b\"c";
    fmt(&e, out, sizeof(out));
    ck_assert(parse_line(out, &p));
    ck_assert_str_eq(p.client, "a\\x20b\\x22c");
}
END_TEST

START_TEST(format_writes_any_status_and_byte_count)
{
    static const struct { int status; unsigned long long bytes; const char *s, *b; } cases[] = {
        { 0, 1, "0", "1" },
        { 101, 0, "101", "-" },
        { 999, 10, "999", "10" },
        { -1, 100, "-1", "100" },
        { INT_MAX, ULLONG_MAX, "2147483647", "18446744073709551615" },
        { INT_MIN, 4294967296ull, "-2147483648", "4294967296" },
    };
    gh_access_entry e = sample();
    char out[512];
    parsed p;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        e.status = cases[i].status;
        e.bytes = cases[i].bytes;
        fmt(&e, out, sizeof(out));
        ck_assert(parse_line(out, &p));
        ck_assert_str_eq(p.status, cases[i].s);
        ck_assert_str_eq(p.bytes, cases[i].b);
    }
}
END_TEST

START_TEST(format_writes_utc_and_clamps_the_time)
{
    static const struct { int64_t t; const char *d; } cases[] = {
        { 0, "01/Jan/1970:00:00:00 +0000" },
        { -1, "01/Jan/1970:00:00:00 +0000" },
        { INT64_MIN, "01/Jan/1970:00:00:00 +0000" },
        { 951868799, "29/Feb/2000:23:59:59 +0000" },
        { 1735689599, "31/Dec/2024:23:59:59 +0000" },
        { 253402300799LL, "31/Dec/9999:23:59:59 +0000" },
        { INT64_MAX, "31/Dec/9999:23:59:59 +0000" },
    };
    gh_access_entry e = sample();
    char out[512];
    parsed p;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        e.when = (time_t)cases[i].t;
        fmt(&e, out, sizeof(out));
        ck_assert(parse_line(out, &p));
        ck_assert_str_eq(p.date, cases[i].d);
    }
}
END_TEST

/* Every cap from 64 up: one valid line; once it fits, the exact line. */
START_TEST(format_cuts_fields_but_never_the_newline_or_an_escape)
{
    static char target[700], agent[500], referer[200];
    gh_access_entry e = sample();
    char full[16384], out[16384];
    size_t full_len;

    for (size_t i = 0; i < sizeof(target); i++)
        target[i] = (char)("/a\"\n\xff"[i % 5]);
    memset(agent, '\n', sizeof(agent));
    memset(referer, 'r', sizeof(referer));
    e.target = target;
    e.target_len = sizeof(target);
    e.agent = agent;
    e.agent_len = sizeof(agent);
    e.referer = referer;
    e.referer_len = sizeof(referer);
    full_len = fmt(&e, full, sizeof(full));
    for (size_t cap = 64; cap <= full_len + 2; cap++) {
        size_t n = fmt(&e, out, cap);

        if (cap > full_len) {
            ck_assert_uint_eq(n, full_len);
            ck_assert_str_eq(out, full);
        } else {
            ck_assert_uint_lt(n, cap);
            ck_assert_uint_ge(n + 16, cap - 1);  /* share rounding + split escapes */
        }
        if (cap >= 128) {
            parsed p;

            ck_assert_msg(parse_line(out, &p), "cap %zu: %s", cap, out);
            ck_assert_str_eq(p.client, "192.0.2.7");
            ck_assert_str_eq(p.status, "200");
            ck_assert_str_eq(p.bytes, "2326");
            ck_assert(strncmp(p.request, "GET /", 5) == 0);
            ck_assert(strcmp(p.request + strlen(p.request) - 9, " HTTP/1.0") == 0);
        }
    }
}
END_TEST

START_TEST(format_keeps_the_line_shape_when_it_cuts)
{
    static char target[5000];
    gh_access_entry e = sample();
    char out[512];
    parsed p;

    memset(target, 'a', sizeof(target));
    target[0] = '/';
    e.target = target;
    e.target_len = sizeof(target);
    e.agent = "curl/8.5.0";
    e.agent_len = 10;
    fmt(&e, out, sizeof(out));
    ck_assert_uint_eq(strlen(out), sizeof(out) - 1);
    ck_assert(parse_line(out, &p));
    /* the short fields survive whole; the long target pays */
    ck_assert_str_eq(p.client, "192.0.2.7");
    ck_assert_str_eq(p.status, "200");
    ck_assert_str_eq(p.bytes, "2326");
    ck_assert_str_eq(p.agent, "curl/8.5.0");
    ck_assert_str_eq(p.referer, "http://www.example.com/start.html");
    ck_assert(strncmp(p.request, "GET /aaa", 8) == 0);
    ck_assert(strstr(p.request, "HTTP/1.0") != NULL);

    /* two long fields share what is left evenly */
    e.agent = target + 1;
    e.agent_len = sizeof(target) - 1;
    fmt(&e, out, sizeof(out));
    ck_assert(parse_line(out, &p));
    ck_assert_str_eq(p.status, "200");
    ck_assert_int_le(abs((int)strlen(p.request) - 13 - (int)strlen(p.agent)), 1);
    ck_assert_uint_gt(strlen(p.agent), 150);
}
END_TEST

/* From cap 96 the fixed parts always fit, even with the widest numbers. */
START_TEST(format_keeps_quotes_status_and_bytes_from_cap_96)
{
    static char big[2000];
    gh_access_entry e = sample();
    char out[128], want[64];

    memset(big, '\n', sizeof(big));
    e.client = "2001:db8:1234:5678:9abc:def0:1234:5678";
    e.method = big;
    e.method_len = sizeof(big);
    e.target = big;
    e.target_len = sizeof(big);
    e.protocol = "HTTP/1.1\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n";
    e.referer = big;
    e.referer_len = sizeof(big);
    e.agent = big;
    e.agent_len = sizeof(big);
    e.status = INT_MIN;
    e.bytes = ULLONG_MAX;
    snprintf(want, sizeof(want), "\" %d %llu \"", INT_MIN, ULLONG_MAX);
    for (size_t cap = 96; cap <= sizeof(out); cap++) {
        size_t quotes = 0;

        fmt(&e, out, cap);
        for (const char *c = out; *c != '\0'; c++)
            quotes += *c == '"';
        ck_assert_uint_eq(quotes, 6);
        ck_assert_ptr_nonnull(strstr(out, want));
        ck_assert_ptr_nonnull(strstr(out, "+0000] \""));
        ck_assert(strcmp(out + strlen(out) - 2, "\"\n") == 0);
    }
}
END_TEST

START_TEST(format_survives_tiny_caps)
{
    gh_access_entry e = sample();
    char out[64];

    memset(out, 'x', sizeof(out));
    ck_assert_uint_eq(gh_accesslog_format(&e, out, 0), 0);
    ck_assert_int_eq(out[0], 'x');
    ck_assert_uint_eq(gh_accesslog_format(&e, out, 1), 0);
    ck_assert_int_eq(out[0], '\0');
    ck_assert_uint_eq(gh_accesslog_format(&e, out, 2), 1);
    ck_assert_str_eq(out, "\n");
    for (size_t cap = 2; cap <= sizeof(out); cap++)
        fmt(&e, out, cap);
    ck_assert_uint_eq(gh_accesslog_format(NULL, out, sizeof(out)), 0);
    ck_assert_int_eq(out[0], '\0');
    ck_assert_uint_eq(gh_accesslog_format(&e, NULL, 100), 0);
}
END_TEST

/* Output ends at a PROT_NONE page (no write past cap), and inputs end at
 * one too (no read past a field's length). */
START_TEST(format_stays_inside_its_buffers)
{
    long page = sysconf(_SC_PAGESIZE);
    char *mem = mmap(NULL, (size_t)page * 4, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *in, *outp;
    gh_access_entry e = sample();
    size_t agent_len = 300;

    ck_assert_ptr_ne(mem, MAP_FAILED);
    ck_assert_int_eq(mprotect(mem + page, (size_t)page, PROT_NONE), 0);
    ck_assert_int_eq(mprotect(mem + 3 * page, (size_t)page, PROT_NONE), 0);
    in = mem + page - agent_len;
    memset(in, '"', agent_len);
    e.agent = in;
    e.agent_len = agent_len;
    e.method = in + agent_len - 3;
    e.method_len = 3;
    e.target = in + agent_len - 1;
    e.target_len = 1;
    e.referer = in + agent_len;
    e.referer_len = 0;
    for (size_t cap = 2; cap < 1400; cap++) {
        outp = mem + 3 * page - cap;
        fmt(&e, outp, cap);
    }
    ck_assert_int_eq(munmap(mem, (size_t)page * 4), 0);
}
END_TEST

static Suite *accesslog_suite(void)
{
    Suite *s = suite_create("accesslog");
    TCase *tc = tcase_create("format");

    tcase_add_test(tc, format_writes_combined_log_format);
    tcase_add_test(tc, format_writes_dashes_for_missing_fields);
    tcase_add_test(tc, format_omits_a_missing_protocol_and_keeps_empty_fields);
    tcase_add_test(tc, format_escapes_quotes_backslashes_controls_and_non_ascii);
    tcase_add_test(tc, format_keeps_a_forged_line_inside_its_field);
    tcase_add_test(tc, format_escapes_spaces_in_the_client_field);
    tcase_add_test(tc, format_writes_any_status_and_byte_count);
    tcase_add_test(tc, format_writes_utc_and_clamps_the_time);
    tcase_add_test(tc, format_cuts_fields_but_never_the_newline_or_an_escape);
    tcase_add_test(tc, format_keeps_the_line_shape_when_it_cuts);
    tcase_add_test(tc, format_keeps_quotes_status_and_bytes_from_cap_96);
    tcase_add_test(tc, format_survives_tiny_caps);
    tcase_add_test(tc, format_stays_inside_its_buffers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(accesslog_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
