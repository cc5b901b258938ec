/* test_json.c: the JSON writer (core/codec/json.c): escaping whole, at
 * every output size and over every two-byte input; documents built call by
 * call, and misuse that must fail rather than write bad JSON. */
#include "json.h"
#include "utf8.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The escaped form of s[0..n) as a NUL-terminated heap string. */
static char *escaped(const char *s, size_t n)
{
    size_t need = gh_json_escape(NULL, 0, s, n);
    char *out = malloc(need + 1);

    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(gh_json_escape(out, need, s, n), need);
    out[need] = '\0';
    return out;
}

static void expect_escape(const char *in, size_t n, const char *want)
{
    char *got = escaped(in, n);

    ck_assert_msg(strcmp(got, want) == 0, "escape of %zu bytes: got \"%s\", want \"%s\"",
                  n, got, want);
    free(got);
}

#define EXPECT(lit, want) expect_escape((lit), sizeof(lit) - 1, (want))

/* JSON text inside a string is valid when it is UTF-8, holds no control
 * character, and every '"' is escaped. */
static void assert_valid_inside(const char *s, size_t n)
{
    gh_utf8 u;

    gh_utf8_init(&u);
    ck_assert_int_eq(gh_utf8_feed(&u, (const uint8_t *)s, n), 0);
    ck_assert(gh_utf8_is_complete(&u));
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg((unsigned char)s[i] >= 0x20 && s[i] != 0x7f, "control byte at %zu", i);
        if (s[i] == '\\') {
            ck_assert_uint_lt(i + 1, n);
            ck_assert_ptr_nonnull(strchr("\"\\bfnrtu", s[i + 1]));
            i++;
        } else {
            ck_assert_int_ne(s[i], '"');
        }
    }
}

START_TEST(escape_copies_text_and_utf8_as_is)
{
    EXPECT("", "");
    EXPECT("room-1 /ws/chat", "room-1 /ws/chat");
    EXPECT("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80");
    EXPECT("\xef\xbf\xbf\xf4\x8f\xbf\xbf", "\xef\xbf\xbf\xf4\x8f\xbf\xbf");   /* U+FFFF, U+10FFFF */
    EXPECT("</script>", "</script>");
}
END_TEST

START_TEST(escape_writes_short_forms)
{
    EXPECT("a\"b", "a\\\"b");
    EXPECT("a\\b", "a\\\\b");
    EXPECT("\b\f\n\r\t", "\\b\\f\\n\\r\\t");
}
END_TEST

START_TEST(escape_writes_other_controls_as_u00xx)
{
    static const char hex[] = "0123456789abcdef";

    for (unsigned c = 0; c < 0x80; c++) {
        char in = (char)c, want[8];

        if (c >= 0x20 && c != 0x7f)
            continue;
        if (c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
            continue;
        memcpy(want, "\\u00", 4);
        want[4] = hex[c >> 4];
        want[5] = hex[c & 15];
        want[6] = '\0';
        expect_escape(&in, 1, want);
    }
}
END_TEST

START_TEST(escape_replaces_every_byte_that_starts_no_valid_sequence)
{
    EXPECT("\x80", "\\ufffd");                          /* stray continuation */
    EXPECT("a\xff" "b", "a\\ufffdb");
    EXPECT("\xc0\xaf", "\\ufffd\\ufffd");               /* overlong '/' */
    EXPECT("\xc1\xbf", "\\ufffd\\ufffd");
    EXPECT("\xe0\x80\xaf", "\\ufffd\\ufffd\\ufffd");    /* overlong, 3 bytes */
    EXPECT("\xf0\x80\x80\xaf", "\\ufffd\\ufffd\\ufffd\\ufffd");
    EXPECT("\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd");    /* surrogate D800 */
    EXPECT("\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd");  /* past U+10FFFF */
    EXPECT("\xf5\x80\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd");
    EXPECT("\xe2\x82", "\\ufffd\\ufffd");               /* cut at the end */
    EXPECT("\xe2\x82x", "\\ufffd\\ufffdx");
    EXPECT("\xc3" "A", "\\ufffdA");                     /* lead without continuation */
    EXPECT("\xf0\x9f\x98", "\\ufffd\\ufffd\\ufffd");
    EXPECT("ok\xe9t\xe9", "ok\\ufffdt\\ufffd");         /* Latin-1 */
}
END_TEST

START_TEST(escape_writes_at_most_cap_and_measures_like_snprintf)
{
    static const char in[] = "a\"\xc3\xa9\n\x01\xff\xe2\x9c\x93z";
    char *whole = escaped(in, sizeof(in) - 1);
    size_t n = strlen(whole);

    for (size_t cap = 0; cap <= n + 2; cap++) {
        char buf[64];

        memset(buf, '#', sizeof(buf));
        ck_assert_uint_eq(gh_json_escape(buf, cap, in, sizeof(in) - 1), n);
        ck_assert_int_eq(memcmp(buf, whole, cap < n ? cap : n), 0);
        for (size_t i = cap < n ? cap : n; i < sizeof(buf); i++)
            ck_assert_int_eq(buf[i], '#');
    }
    free(whole);
}
END_TEST

START_TEST(escape_output_is_valid_for_every_two_byte_input)
{
    for (unsigned a = 0; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++) {
            char in[2] = { (char)a, (char)b }, out[16];
            size_t n = gh_json_escape(out, sizeof(out), in, 2);

            ck_assert_uint_le(n, sizeof(out));
            assert_valid_inside(out, n);
        }
    }
}
END_TEST

START_TEST(escape_output_is_valid_for_random_input)
{
    unsigned seed = 17;

    for (int round = 0; round < 20000; round++) {
        char in[12], out[12 * 6];
        size_t len = (size_t)(rand_r(&seed) % 13), n;

        for (size_t i = 0; i < len; i++) {
            /* lean towards the bytes that make sequences */
            unsigned r = (unsigned)rand_r(&seed);
            in[i] = (char)((r & 1) ? 0x80 + (r >> 1) % 0x78 : (r >> 1) & 0xff);
        }
        n = gh_json_escape(out, sizeof(out), in, len);
        ck_assert_uint_le(n, sizeof(out));
        assert_valid_inside(out, n);
    }
}
END_TEST

static char *text_of(gh_json *j)
{
    ck_assert(gh_json_done(j));
    j->buf = realloc(j->buf, j->len + 1);
    ck_assert_ptr_nonnull(j->buf);
    j->buf[j->len] = '\0';
    return j->buf;
}

START_TEST(document_places_commas_keys_and_nesting)
{
    gh_json j = { 0 };
    char *t;

    gh_json_begin_object(&j, NULL);
    gh_json_string(&j, "version", "0.1.0");
    gh_json_u64(&j, "n", 18446744073709551615ULL);
    gh_json_begin_array(&j, "rooms");
    gh_json_begin_object(&j, NULL);
    gh_json_string_n(&j, "name", "a\"b", 3);
    gh_json_u64(&j, "members", 2);
    gh_json_end_object(&j);
    gh_json_begin_object(&j, NULL);
    gh_json_end_object(&j);
    gh_json_u64(&j, NULL, 7);
    gh_json_end_array(&j);
    gh_json_begin_array(&j, "empty");
    gh_json_end_array(&j);
    gh_json_bool(&j, "up", true);
    gh_json_bool(&j, "down", false);
    gh_json_null(&j, "none");
    gh_json_string(&j, "null string", NULL);
    gh_json_string(&j, "k\n", "");
    gh_json_end_object(&j);
    t = text_of(&j);
    ck_assert_str_eq(t, "{\"version\":\"0.1.0\",\"n\":18446744073709551615,"
                        "\"rooms\":[{\"name\":\"a\\\"b\",\"members\":2},{},7],\"empty\":[],"
                        "\"up\":true,\"down\":false,\"none\":null,\"null string\":null,"
                        "\"k\\n\":\"\"}");
    free(j.buf);
}
END_TEST

START_TEST(document_writes_fixed_decimals_and_null_for_what_json_cannot_hold)
{
    gh_json j = { 0 };

    gh_json_begin_array(&j, NULL);
    gh_json_fixed(&j, NULL, 1765000000.1234, 3);
    gh_json_fixed(&j, NULL, 0.0000126, 6);
    gh_json_fixed(&j, NULL, 2.4, 0);
    gh_json_fixed(&j, NULL, -1.25, 2);
    gh_json_fixed(&j, NULL, NAN, 3);
    gh_json_fixed(&j, NULL, INFINITY, 3);
    gh_json_fixed(&j, NULL, -INFINITY, 3);
    gh_json_fixed(&j, NULL, 1.0, 42);       /* at most 9 */
    gh_json_end_array(&j);
    ck_assert_str_eq(text_of(&j), "[1765000000.123,0.000013,2,-1.25,null,null,null,1.000000000]");
    free(j.buf);
}
END_TEST

START_TEST(a_top_level_scalar_is_a_document)
{
    gh_json j = { 0 };

    ck_assert(!gh_json_done(&j));           /* nothing yet */
    gh_json_string(&j, NULL, "x");
    ck_assert_str_eq(text_of(&j), "\"x\"");
    gh_json_u64(&j, NULL, 1);               /* a second top-level value */
    ck_assert(j.failed);
    ck_assert(!gh_json_done(&j));
    free(j.buf);
}
END_TEST

typedef void (*misuse_fn)(gh_json *j);

static void key_in_array(gh_json *j)
{
    gh_json_begin_array(j, NULL);
    gh_json_u64(j, "k", 1);
}

static void no_key_in_object(gh_json *j)
{
    gh_json_begin_object(j, NULL);
    gh_json_u64(j, NULL, 1);
}

static void key_at_the_top(gh_json *j)
{
    gh_json_begin_object(j, "k");
}

static void array_ended_as_object(gh_json *j)
{
    gh_json_begin_array(j, NULL);
    gh_json_end_object(j);
}

static void object_ended_as_array(gh_json *j)
{
    gh_json_begin_object(j, NULL);
    gh_json_end_array(j);
}

static void end_without_begin(gh_json *j)
{
    gh_json_end_object(j);
}

static void too_deep(gh_json *j)
{
    for (int i = 0; i <= GH_JSON_MAX_DEPTH; i++)
        gh_json_begin_array(j, NULL);
}

static void left_open(gh_json *j)
{
    gh_json_begin_object(j, NULL);
    gh_json_begin_array(j, "a");
    gh_json_end_array(j);
}

START_TEST(misuse_fails_instead_of_writing_bad_json)
{
    static const misuse_fn cases[] = {
        key_in_array, no_key_in_object, key_at_the_top, array_ended_as_object,
        object_ended_as_array, end_without_begin, too_deep, left_open,
    };
    gh_json j = { 0 };

    cases[_i](&j);
    ck_assert(!gh_json_done(&j));
    if (cases[_i] != left_open)
        ck_assert(j.failed);
    /* nothing is added after a failure */
    if (j.failed) {
        size_t len = j.len;

        gh_json_u64(&j, NULL, 1);
        gh_json_end_array(&j);
        gh_json_end_object(&j);
        ck_assert_uint_eq(j.len, len);
    }
    free(j.buf);
}
END_TEST

START_TEST(deepest_nesting_is_allowed)
{
    gh_json j = { 0 };

    for (int i = 0; i < GH_JSON_MAX_DEPTH; i++)
        gh_json_begin_array(&j, NULL);
    for (int i = 0; i < GH_JSON_MAX_DEPTH; i++)
        gh_json_end_array(&j);
    ck_assert(gh_json_done(&j));
    ck_assert_uint_eq(j.len, 2 * GH_JSON_MAX_DEPTH);
    free(j.buf);
}
END_TEST

START_TEST(long_strings_grow_the_buffer)
{
    gh_json j = { 0 };
    size_t n = 100000;
    char *s = malloc(n);

    ck_assert_ptr_nonnull(s);
    memset(s, '"', n);
    gh_json_string_n(&j, NULL, s, n);
    ck_assert(gh_json_done(&j));
    ck_assert_uint_eq(j.len, 2 * n + 2);
    free(s);
    free(j.buf);
}
END_TEST

static Suite *json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *esc = tcase_create("escape");
    TCase *doc = tcase_create("document");

    tcase_add_test(esc, escape_copies_text_and_utf8_as_is);
    tcase_add_test(esc, escape_writes_short_forms);
    tcase_add_test(esc, escape_writes_other_controls_as_u00xx);
    tcase_add_test(esc, escape_replaces_every_byte_that_starts_no_valid_sequence);
    tcase_add_test(esc, escape_writes_at_most_cap_and_measures_like_snprintf);
    tcase_add_test(esc, escape_output_is_valid_for_every_two_byte_input);
    tcase_add_test(esc, escape_output_is_valid_for_random_input);
    suite_add_tcase(s, esc);
    tcase_add_test(doc, document_places_commas_keys_and_nesting);
    tcase_add_test(doc, document_writes_fixed_decimals_and_null_for_what_json_cannot_hold);
    tcase_add_test(doc, a_top_level_scalar_is_a_document);
    tcase_add_loop_test(doc, misuse_fails_instead_of_writing_bad_json, 0, 8);
    tcase_add_test(doc, deepest_nesting_is_allowed);
    tcase_add_test(doc, long_strings_grow_the_buffer);
    suite_add_tcase(s, doc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(json_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
