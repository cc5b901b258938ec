/* test_utf8.c: the incremental UTF-8 validator.
 *
 * Valid multilingual text and every class of invalid input (Autobahn 6.x
 * style), fed whole, byte by byte and split at every offset, with the exact
 * byte at which validation must fail. An exhaustive comparison against a
 * reference built from a UTF-8 encoder covers every 1-3 byte sequence. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "utf8.h"

static const struct text {
    const char *s;
    size_t      len;
} valid_texts[] = {
#define TXT(str) { .s = (str), .len = sizeof(str) - 1 }
    TXT(""),
    TXT("hello, world"),
    TXT("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),          /* κόσμε (Autobahn 6.2) */
    TXT("Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln"),
    TXT("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88"),
    TXT("\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd0\xbc\xd0\xb8\xd1\x80"),
    TXT("\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7"),
    TXT("emoji \xf0\x9f\x98\x80\xf0\x9f\x91\x8d done"),
    TXT("\x00\x7f"),                                              /* U+0000, U+007F */
    TXT("\xc2\x80\xdf\xbf"),                                      /* U+0080, U+07FF */
    TXT("\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"),      /* U+0800, U+D7FF, U+E000, U+FFFF */
    TXT("\xef\xbf\xbd\xef\xbf\xbe"),                              /* U+FFFD, U+FFFE (noncharacter, valid) */
    TXT("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"),                      /* U+10000, U+10FFFF */
    TXT("0123456789abcdef0123456789abcdef\xc3\xa9xxxxxxxxxxxxxxx\xf0\x9f\x98\x80yyyyyyyyyyyyyyyyyyyyyyy"),
#undef TXT
};

/* Each invalid case: bytes, length, index of the first byte that must be
 * refused. */
static const struct bad {
    const char *s;
    size_t      len;
    size_t      at;
} bad_cases[] = {
#define BAD(str, pos) { .s = (str), .len = sizeof(str) - 1, .at = (pos) }
    BAD("\x80", 0),                         /* stray continuation */
    BAD("\xbf", 0),
    BAD("a\x80" "b", 1),
    BAD("\xc0\x80", 0),                     /* overlong lead bytes */
    BAD("\xc1\xbf", 0),
    BAD("\xf5\x80\x80\x80", 0),             /* > U+10FFFF lead bytes */
    BAD("\xf8\x88\x80\x80\x80", 0),
    BAD("\xfe", 0),
    BAD("\xff", 0),
    BAD("\xe0\x80\x80", 1),                 /* 3-byte overlong */
    BAD("\xe0\x9f\xbf", 1),
    BAD("\xf0\x80\x80\x80", 1),             /* 4-byte overlong */
    BAD("\xf0\x8f\xbf\xbf", 1),
    BAD("\xed\xa0\x80", 1),                 /* surrogates */
    BAD("\xed\xbf\xbf", 1),
    BAD("\xed\xa0\x80\xed\xb0\x80", 1),
    BAD("\xf4\x90\x80\x80", 1),             /* U+110000 */
    BAD("\xf4\xbf\xbf\xbf", 1),
    BAD("\xc2\x41", 1),                     /* lead without continuation */
    BAD("\xc2\xc2\x80", 1),
    BAD("\xe2\x82\x41", 2),
    BAD("\xe2\x82\xe2\x82\xac", 2),
    BAD("\xf0\x9f\x98\x41", 3),
    BAD("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80" "edited", 12),  /* Autobahn 6.3 */
    BAD("0123456789abcdef0123456789\xff", 26),        /* after the fast path */
    BAD("01234567\x80" "0123456789", 8),
#undef BAD
};

START_TEST(feed_accepts_valid_text_whole)
{
    for (size_t i = 0; i < sizeof(valid_texts) / sizeof(valid_texts[0]); i++) {
        const uint8_t *s = (const uint8_t *)valid_texts[i].s;
        size_t n = valid_texts[i].len;
        gh_utf8 u;

        gh_utf8_init(&u);
        ck_assert_int_eq(gh_utf8_feed(&u, s, n), 0);
        ck_assert_msg(gh_utf8_is_complete(&u), "text %zu not complete", i);
    }
}
END_TEST

START_TEST(feed_accepts_valid_text_split_at_every_offset)
{
    for (size_t i = 0; i < sizeof(valid_texts) / sizeof(valid_texts[0]); i++) {
        const uint8_t *s = (const uint8_t *)valid_texts[i].s;
        size_t n = valid_texts[i].len;

        for (size_t k = 0; k <= n; k++) {
            gh_utf8 u;

            gh_utf8_init(&u);
            ck_assert_int_eq(gh_utf8_feed(&u, s, k), 0);
            ck_assert_int_eq(gh_utf8_feed(&u, s + k, n - k), 0);
            ck_assert(gh_utf8_is_complete(&u));
        }
    }
}
END_TEST

START_TEST(feed_accepts_valid_text_byte_by_byte_and_tracks_completeness)
{
    for (size_t i = 0; i < sizeof(valid_texts) / sizeof(valid_texts[0]); i++) {
        const uint8_t *s = (const uint8_t *)valid_texts[i].s;
        size_t n = valid_texts[i].len;
        gh_utf8 u;

        gh_utf8_init(&u);
        for (size_t k = 0; k < n; k++) {
            ck_assert_int_eq(gh_utf8_feed(&u, s + k, 1), 0);
            /* Complete exactly when the next byte (if any) is not a
             * continuation byte. */
            bool boundary = k + 1 == n || (s[k + 1] & 0xC0) != 0x80;
            ck_assert_int_eq(gh_utf8_is_complete(&u), boundary);
        }
    }
}
END_TEST

START_TEST(feed_accepts_empty_input)
{
    gh_utf8 u;

    gh_utf8_init(&u);
    ck_assert_int_eq(gh_utf8_feed(&u, NULL, 0), 0);
    ck_assert(gh_utf8_is_complete(&u));
}
END_TEST

START_TEST(feed_rejects_invalid_text_whole)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad *b = &bad_cases[i];
        gh_utf8 u;

        gh_utf8_init(&u);
        ck_assert_msg(gh_utf8_feed(&u, (const uint8_t *)b->s, b->len) == GH_EPROTO,
                      "case %zu accepted", i);
        ck_assert(!gh_utf8_is_complete(&u));
    }
}
END_TEST

START_TEST(feed_fails_at_the_first_impossible_byte)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad *b = &bad_cases[i];
        gh_utf8 u;

        gh_utf8_init(&u);
        for (size_t k = 0; k < b->len; k++) {
            int rc = gh_utf8_feed(&u, (const uint8_t *)b->s + k, 1);

            ck_assert_msg(rc == (k < b->at ? 0 : GH_EPROTO),
                          "case %zu byte %zu: rc %d, expected failure at %zu", i, k, rc, b->at);
        }
    }
}
END_TEST

START_TEST(feed_fails_at_the_first_impossible_byte_split_at_every_offset)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad *b = &bad_cases[i];
        const uint8_t *s = (const uint8_t *)b->s;

        for (size_t k = 0; k <= b->len; k++) {
            gh_utf8 u;

            gh_utf8_init(&u);
            ck_assert_int_eq(gh_utf8_feed(&u, s, k), k <= b->at ? 0 : GH_EPROTO);
            ck_assert_int_eq(gh_utf8_feed(&u, s + k, b->len - k), GH_EPROTO);
        }
    }
}
END_TEST

START_TEST(feed_stays_failed_until_init)
{
    gh_utf8 u;

    gh_utf8_init(&u);
    ck_assert_int_eq(gh_utf8_feed(&u, (const uint8_t *)"\xff", 1), GH_EPROTO);
    ck_assert_int_eq(gh_utf8_feed(&u, (const uint8_t *)"abc", 3), GH_EPROTO);
    ck_assert(!gh_utf8_is_complete(&u));
    gh_utf8_init(&u);
    ck_assert_int_eq(gh_utf8_feed(&u, (const uint8_t *)"abc", 3), 0);
    ck_assert(gh_utf8_is_complete(&u));
}
END_TEST

START_TEST(is_complete_is_false_inside_a_sequence)
{
    static const char *const prefixes[] = {
        "\xc3", "\xe2", "\xe2\x82", "\xf0", "\xf0\x9f", "\xf0\x9f\x98", "abc\xf4\x8f\xbf",
    };

    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        gh_utf8 u;

        gh_utf8_init(&u);
        ck_assert_int_eq(gh_utf8_feed(&u, (const uint8_t *)prefixes[i], strlen(prefixes[i])), 0);
        ck_assert(!gh_utf8_is_complete(&u));
    }
}
END_TEST

START_TEST(feed_finds_a_bad_byte_at_every_position_of_an_ascii_run)
{
    uint8_t buf[80];

    for (size_t n = 1; n <= sizeof(buf); n++) {
        for (size_t bad = 0; bad < n; bad++) {
            gh_utf8 u;

            memset(buf, 'a', n);
            buf[bad] = 0x80;
            gh_utf8_init(&u);
            ck_assert_int_eq(gh_utf8_feed(&u, buf, n), GH_EPROTO);
            /* The same run, valid: a 2-byte character instead. */
            if (bad + 1 < n) {
                buf[bad] = 0xC3;
                buf[bad + 1] = 0xA9;
                gh_utf8_init(&u);
                ck_assert_int_eq(gh_utf8_feed(&u, buf, n), 0);
                ck_assert(gh_utf8_is_complete(&u));
            }
        }
    }
}
END_TEST

/* ---- exhaustive comparison with a reference built from an encoder ---- */

static uint8_t *full2, *full3, *pre2, *pre3;   /* bitmaps */
static uint8_t full1[256], pre1[256];

static void set_bit(uint8_t *bm, uint32_t i)
{
    bm[i >> 3] |= (uint8_t)(1u << (i & 7));
}

static bool get_bit(const uint8_t *bm, uint32_t i)
{
    return (bm[i >> 3] >> (i & 7)) & 1;
}

/* Encodes every scalar value; records full encodings and proper prefixes. */
static void build_reference(void)
{
    full2 = calloc(1, 65536 / 8);
    pre2 = calloc(1, 65536 / 8);
    full3 = calloc(1, (1u << 24) / 8);
    pre3 = calloc(1, (1u << 24) / 8);
    ck_assert(full2 && pre2 && full3 && pre3);
    memset(full1, 0, sizeof(full1));
    memset(pre1, 0, sizeof(pre1));
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        uint8_t e[4];

        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        if (cp < 0x80) {
            full1[cp] = 1;
        } else if (cp < 0x800) {
            e[0] = (uint8_t)(0xC0 | (cp >> 6));
            e[1] = (uint8_t)(0x80 | (cp & 0x3F));
            pre1[e[0]] = 1;
            set_bit(full2, (uint32_t)e[0] << 8 | e[1]);
        } else if (cp < 0x10000) {
            e[0] = (uint8_t)(0xE0 | (cp >> 12));
            e[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            e[2] = (uint8_t)(0x80 | (cp & 0x3F));
            pre1[e[0]] = 1;
            set_bit(pre2, (uint32_t)e[0] << 8 | e[1]);
            set_bit(full3, (uint32_t)e[0] << 16 | (uint32_t)e[1] << 8 | e[2]);
        } else {
            e[0] = (uint8_t)(0xF0 | (cp >> 18));
            e[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
            e[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            pre1[e[0]] = 1;
            set_bit(pre2, (uint32_t)e[0] << 8 | e[1]);
            set_bit(pre3, (uint32_t)e[0] << 16 | (uint32_t)e[1] << 8 | e[2]);
        }
    }
}

static void free_reference(void)
{
    free(full2);
    free(full3);
    free(pre2);
    free(pre3);
}

/* Reference: index of the first impossible byte, or -1 when valid; sets
 * *complete. A 4-byte sequence is complete when its first 3 bytes are a
 * 4-byte prefix and the last is a continuation byte. */
static long ref_check(const uint8_t *s, size_t n, bool *complete)
{
    uint32_t part = 0;
    size_t plen = 0;

    for (size_t i = 0; i < n; i++) {
        uint32_t v = part << 8 | s[i];
        size_t l = plen + 1;
        bool full, pre;

        switch (l) {
        case 1: full = full1[v]; pre = pre1[v]; break;
        case 2: full = get_bit(full2, v); pre = get_bit(pre2, v); break;
        case 3: full = get_bit(full3, v); pre = get_bit(pre3, v); break;
        default: full = get_bit(pre3, part) && (s[i] & 0xC0) == 0x80; pre = false; break;
        }
        if (full) {
            part = 0;
            plen = 0;
        } else if (pre) {
            part = v;
            plen = l;
        } else {
            *complete = false;
            return (long)i;
        }
    }
    *complete = plen == 0;
    return -1;
}

static void compare_with_reference(const uint8_t *s, size_t n)
{
    bool complete;
    long at = ref_check(s, n, &complete);
    gh_utf8 u;
    int rc = 0;
    long got = -1;

    gh_utf8_init(&u);
    for (size_t i = 0; i < n; i++) {
        rc = gh_utf8_feed(&u, s + i, 1);
        if (rc != 0) {
            got = (long)i;
            break;
        }
    }
    if (got != at || (at < 0 && gh_utf8_is_complete(&u) != complete))
        ck_abort_msg("mismatch on %02x %02x %02x %02x (n=%zu): got %ld want %ld",
                     s[0], n > 1 ? s[1] : 0, n > 2 ? s[2] : 0, n > 3 ? s[3] : 0, n, got, at);
    /* Whole-buffer feed agrees on validity. (Plain ifs: ck_assert costs a
     * syscall per call, too slow for 17 million calls.) */
    gh_utf8_init(&u);
    if ((gh_utf8_feed(&u, s, n) == 0) != (at < 0))
        ck_abort_msg("whole feed disagrees on %02x %02x %02x (n=%zu)",
                     s[0], n > 1 ? s[1] : 0, n > 2 ? s[2] : 0, n);
}

START_TEST(feed_matches_reference_on_every_sequence_up_to_3_bytes)
{
    uint8_t s[4];

    build_reference();
    for (uint32_t v = 0; v < (1u << 24); v++) {
        s[0] = (uint8_t)(v >> 16);
        s[1] = (uint8_t)(v >> 8);
        s[2] = (uint8_t)v;
        if (v < 256)
            compare_with_reference(s + 2, 1);
        if (v < 65536)
            compare_with_reference(s + 1, 2);
        compare_with_reference(s, 3);
    }
    free_reference();
}
END_TEST

START_TEST(feed_matches_reference_on_4_byte_sequences)
{
    static const uint8_t lasts[] = { 0x00, 0x41, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xF0, 0xFF };
    uint8_t s[4];

    build_reference();
    for (uint32_t lead = 0xEF; lead <= 0xF5; lead++)
        for (uint32_t b1 = 0; b1 < 256; b1++)
            for (uint32_t b2 = 0; b2 < 256; b2++)
                for (size_t k = 0; k < sizeof(lasts); k++) {
                    s[0] = (uint8_t)lead;
                    s[1] = (uint8_t)b1;
                    s[2] = (uint8_t)b2;
                    s[3] = lasts[k];
                    compare_with_reference(s, 4);
                }
    free_reference();
}
END_TEST

static Suite *utf8_suite(void)
{
    Suite *s = suite_create("utf8");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, feed_accepts_valid_text_whole);
    tcase_add_test(tc, feed_accepts_valid_text_split_at_every_offset);
    tcase_add_test(tc, feed_accepts_valid_text_byte_by_byte_and_tracks_completeness);
    tcase_add_test(tc, feed_accepts_empty_input);
    tcase_add_test(tc, feed_rejects_invalid_text_whole);
    tcase_add_test(tc, feed_fails_at_the_first_impossible_byte);
    tcase_add_test(tc, feed_fails_at_the_first_impossible_byte_split_at_every_offset);
    tcase_add_test(tc, feed_stays_failed_until_init);
    tcase_add_test(tc, is_complete_is_false_inside_a_sequence);
    tcase_add_test(tc, feed_finds_a_bad_byte_at_every_position_of_an_ascii_run);
    tcase_add_test(tc, feed_matches_reference_on_every_sequence_up_to_3_bytes);
    tcase_add_test(tc, feed_matches_reference_on_4_byte_sequences);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(utf8_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
