/* test_wsext.c: Sec-WebSocket-Extensions parsing and the permessage-deflate
 * negotiation (RFC 6455 §9.1, RFC 7692 §7.1), server side. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wsext.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#define PMD      "permessage-deflate"
#define SNCT     "; server_no_context_takeover"
#define CNCT     "; client_no_context_takeover"
#define SMWB(n)  "; server_max_window_bits=" #n

static const gh_pmd_policy dflt = { .server_window_bits = 15 };

/* Checks that params agree with the answer and the policy. */
static void check_consistent(const char *answer, const gh_pmd_params *p,
                             const gh_pmd_policy *pol)
{
    const char *bits = strstr(answer, "server_max_window_bits=");
    uint8_t pol_bits = pol->server_window_bits < 9 ? 9
                     : pol->server_window_bits > 15 ? 15 : pol->server_window_bits;

    ck_assert(strncmp(answer, PMD, strlen(PMD)) == 0);
    ck_assert(strlen(answer) < GH_PMD_ANSWER_MAX);
    ck_assert(p->client_no_context_takeover);
    ck_assert(strstr(answer, CNCT) != NULL);
    ck_assert(strstr(answer, "client_max_window_bits") == NULL);
    ck_assert_int_eq(strstr(answer, SNCT) != NULL, p->server_no_context_takeover);
    if (pol->server_no_context_takeover)
        ck_assert(p->server_no_context_takeover);
    ck_assert_uint_ge(p->server_window_bits, 9);
    ck_assert_uint_le(p->server_window_bits, pol_bits);
    if (bits != NULL)
        ck_assert_int_eq(atoi(bits + strlen("server_max_window_bits=")), p->server_window_bits);
    else
        ck_assert_uint_eq(p->server_window_bits, pol_bits);
}

/* Negotiates over n fields; checks the result against want (NULL: declined). */
static void expect_fields(const char *const *fields, size_t n, const gh_pmd_policy *pol,
                          const char *want)
{
    size_t lens[8];
    gh_pmd_params p;
    char answer[GH_PMD_ANSWER_MAX];
    bool ok;

    ck_assert_uint_le(n, NELEM(lens));
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(fields[i]);
    memset(answer, 'x', sizeof(answer));
    memset(&p, 0xa5, sizeof(p));
    ok = gh_pmd_negotiate(fields, lens, n, pol, &p, answer);
    if (want == NULL) {
        ck_assert_msg(!ok, "accepted \"%s\" as \"%s\"", n > 0 ? fields[0] : "", answer);
        ck_assert_str_eq(answer, "");
        /* Nothing but the terminating NUL is written. */
        for (size_t i = 1; i < sizeof(answer); i++)
            ck_assert_int_eq(answer[i], 'x');
        ck_assert_uint_eq(p.server_window_bits, 0);
        ck_assert(!p.server_no_context_takeover);
        ck_assert(!p.client_no_context_takeover);
    } else {
        ck_assert_msg(ok, "declined \"%s\"", n > 0 ? fields[0] : "");
        ck_assert_str_eq(answer, want);
        check_consistent(answer, &p, pol);
    }
}

static void expect_pol(const char *value, const gh_pmd_policy *pol, const char *want)
{
    expect_fields(&value, 1, pol, want);
}

static void expect(const char *value, const char *want)
{
    expect_pol(value, &dflt, want);
}

/* ---- what real clients send ---- */

START_TEST(chromium_offer_is_accepted)
{
    expect("permessage-deflate; client_max_window_bits", PMD CNCT);
}
END_TEST

START_TEST(firefox_offer_is_accepted)
{
    expect("permessage-deflate", PMD CNCT);
}
END_TEST

START_TEST(python_websockets_and_node_ws_offers_are_accepted)
{
    /* python websockets and node ws by default both send this. */
    expect("permessage-deflate; client_max_window_bits", PMD CNCT);
    /* websockets with server_max_window_bits set, node ws with serverMaxWindowBits. */
    expect("permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
           PMD CNCT SMWB(12));
    /* Safari's old offer, and an offer asking for both no-context-takeovers. */
    expect("permessage-deflate; server_no_context_takeover; client_no_context_takeover",
           PMD SNCT CNCT);
}
END_TEST

START_TEST(answer_grows_in_the_fixed_order)
{
    expect("permessage-deflate; server_max_window_bits=15; server_no_context_takeover",
           PMD SNCT CNCT SMWB(15));
    expect("permessage-deflate;client_no_context_takeover;server_max_window_bits=9",
           PMD CNCT SMWB(9));
    expect("permessage-deflate; client_max_window_bits=8", PMD CNCT);
    expect("permessage-deflate; client_max_window_bits=15; server_max_window_bits=10",
           PMD CNCT SMWB(10));
}
END_TEST

/* ---- lists and fields ---- */

START_TEST(first_honourable_offer_wins)
{
    expect("permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits",
           PMD CNCT);
    expect("permessage-deflate; foo, permessage-deflate; server_max_window_bits=11, permessage-deflate",
           PMD CNCT SMWB(11));
    expect("permessage-deflate; server_max_window_bits=10, permessage-deflate", PMD CNCT SMWB(10));
    expect("permessage-deflate, permessage-deflate; server_max_window_bits=10", PMD CNCT);
}
END_TEST

START_TEST(offers_in_several_fields_are_one_list)
{
    const char *two[] = { "permessage-deflate; server_max_window_bits=7",
                          "permessage-deflate; server_max_window_bits=13" };
    const char *skip[] = { "x-webkit-deflate-frame", "", "  ,  ", "permessage-deflate" };
    const char *first[] = { "permessage-deflate; server_no_context_takeover",
                            "permessage-deflate" };

    expect_fields(two, 2, &dflt, PMD CNCT SMWB(13));
    expect_fields(skip, 4, &dflt, PMD CNCT);
    expect_fields(first, 2, &dflt, PMD SNCT CNCT);
    expect_fields(NULL, 0, &dflt, NULL);
}
END_TEST

START_TEST(other_extensions_are_skipped)
{
    expect("x-webkit-deflate-frame", NULL);
    expect("x-webkit-deflate-frame, permessage-deflate", PMD CNCT);
    expect("deflate-frame; max_window_bits=10, permessage-deflate; client_max_window_bits",
           PMD CNCT);
    expect("foo; bar=\"a,b;c\", permessage-deflate", PMD CNCT);
    expect("permessage-deflatex, permessage-deflat, xpermessage-deflate", NULL);
    expect("perMessage-deflate-2", NULL);
}
END_TEST

START_TEST(whitespace_and_empty_elements_are_allowed)
{
    expect("  permessage-deflate  ", PMD CNCT);
    expect("\tpermessage-deflate\t;\tclient_max_window_bits\t", PMD CNCT);
    expect(",, ,permessage-deflate ,,", PMD CNCT);
    expect("permessage-deflate ; server_max_window_bits = 10 ; client_max_window_bits = 9",
           PMD CNCT SMWB(10));
    expect("", NULL);
    expect(" \t, ,", NULL);
}
END_TEST

START_TEST(names_compare_case_insensitively)
{
    expect("PerMessage-Deflate; Client_Max_Window_Bits", PMD CNCT);
    expect("PERMESSAGE-DEFLATE; SERVER_NO_CONTEXT_TAKEOVER; SERVER_MAX_WINDOW_BITS=11",
           PMD SNCT CNCT SMWB(11));
    /* ... and so do duplicates. */
    expect("permessage-deflate; client_max_window_bits; CLIENT_MAX_WINDOW_BITS", NULL);
}
END_TEST

/* ---- values ---- */

START_TEST(quoted_values_are_unquoted)
{
    expect("permessage-deflate; server_max_window_bits=\"10\"", PMD CNCT SMWB(10));
    expect("permessage-deflate; client_max_window_bits=\"15\"", PMD CNCT);
    expect("permessage-deflate; server_max_window_bits=\"\\1\\2\"", PMD CNCT SMWB(12));
    expect("permessage-deflate; server_max_window_bits=\"1\\0\", permessage-deflate",
           PMD CNCT SMWB(10));
    /* Quoted, but still not a window size. */
    expect("permessage-deflate; server_max_window_bits=\"\"", NULL);
    expect("permessage-deflate; server_max_window_bits=\" 10\"", NULL);
    expect("permessage-deflate; server_max_window_bits=\"10 \"", NULL);
    expect("permessage-deflate; server_max_window_bits=\"010\"", NULL);
    expect("permessage-deflate; client_max_window_bits=\"1,0\"", NULL);
    /* A quoted value with a comma or a semicolon does not end the element. */
    expect("permessage-deflate; client_max_window_bits=\"1,0\", permessage-deflate", PMD CNCT);
    expect("x; a=\"\\\"; b, c\", permessage-deflate", PMD CNCT);
    /* A quoted value where none belongs still declines. */
    expect("permessage-deflate; server_no_context_takeover=\"\"", NULL);
}
END_TEST

START_TEST(policy_caps_the_window_and_adds_server_no_context_takeover)
{
    const gh_pmd_policy p10 = { .server_window_bits = 10 };
    const gh_pmd_policy nctx = { .server_window_bits = 15, .server_no_context_takeover = true };
    const gh_pmd_policy both = { .server_window_bits = 10, .server_no_context_takeover = true };
    gh_pmd_params out;
    char answer[GH_PMD_ANSWER_MAX];
    const char *v = "permessage-deflate";
    size_t len = strlen(v);

    expect_pol("permessage-deflate; server_max_window_bits=12", &p10, PMD CNCT SMWB(10));
    expect_pol("permessage-deflate; server_max_window_bits=9", &p10, PMD CNCT SMWB(9));
    expect_pol("permessage-deflate; server_max_window_bits=10", &p10, PMD CNCT SMWB(10));
    expect_pol("permessage-deflate", &p10, PMD CNCT);
    expect_pol("permessage-deflate", &nctx, PMD SNCT CNCT);
    expect_pol("permessage-deflate; server_no_context_takeover", &nctx, PMD SNCT CNCT);
    expect_pol("permessage-deflate; server_max_window_bits=12; client_max_window_bits",
               &both, PMD SNCT CNCT SMWB(10));

    /* Without server_max_window_bits in the offer, the policy's window. */
    ck_assert(gh_pmd_negotiate(&v, &len, 1, &p10, &out, answer));
    ck_assert_uint_eq(out.server_window_bits, 10);
    ck_assert(!out.server_no_context_takeover);
    ck_assert(out.client_no_context_takeover);
    ck_assert(gh_pmd_negotiate(&v, &len, 1, &nctx, &out, answer));
    ck_assert_uint_eq(out.server_window_bits, 15);
    ck_assert(out.server_no_context_takeover);
}
END_TEST

START_TEST(policy_out_of_range_is_clamped)
{
    const gh_pmd_policy p0 = { .server_window_bits = 0 };
    const gh_pmd_policy p8 = { .server_window_bits = 8 };
    const gh_pmd_policy p16 = { .server_window_bits = 16 };
    const gh_pmd_policy p255 = { .server_window_bits = 255 };
    gh_pmd_params out;
    char answer[GH_PMD_ANSWER_MAX];
    const char *v = "permessage-deflate";
    size_t len = strlen(v);

    expect_pol("permessage-deflate; server_max_window_bits=12", &p0, PMD CNCT SMWB(9));
    expect_pol("permessage-deflate; server_max_window_bits=12", &p8, PMD CNCT SMWB(9));
    expect_pol("permessage-deflate; server_max_window_bits=12", &p16, PMD CNCT SMWB(12));
    expect_pol("permessage-deflate; server_max_window_bits=15", &p255, PMD CNCT SMWB(15));
    ck_assert(gh_pmd_negotiate(&v, &len, 1, &p0, &out, answer));
    ck_assert_uint_eq(out.server_window_bits, 9);
    ck_assert(gh_pmd_negotiate(&v, &len, 1, &p8, &out, answer));
    ck_assert_uint_eq(out.server_window_bits, 9);
    ck_assert(gh_pmd_negotiate(&v, &len, 1, &p16, &out, answer));
    ck_assert_uint_eq(out.server_window_bits, 15);
    ck_assert(gh_pmd_negotiate(&v, &len, 1, &p255, &out, answer));
    ck_assert_uint_eq(out.server_window_bits, 15);
    /* No policy: 15 bits, context takeover. */
    ck_assert(gh_pmd_negotiate(&v, &len, 1, NULL, &out, answer));
    ck_assert_str_eq(answer, PMD CNCT);
    ck_assert_uint_eq(out.server_window_bits, 15);
    ck_assert(!out.server_no_context_takeover);
}
END_TEST

START_TEST(longest_answer_fits)
{
    const gh_pmd_policy nctx = { .server_window_bits = 15, .server_no_context_takeover = true };

    expect_pol("permessage-deflate; server_max_window_bits=15", &nctx, PMD SNCT CNCT SMWB(15));
    ck_assert_uint_lt(sizeof(PMD SNCT CNCT SMWB(15)), GH_PMD_ANSWER_MAX + 1);
}
END_TEST

/* ---- declines ---- */

START_TEST(unknown_parameter_declines)
{
    expect("permessage-deflate; foo", NULL);
    expect("permessage-deflate; foo=1", NULL);
    expect("permessage-deflate; max_window_bits=10", NULL);
    expect("permessage-deflate; client_max_window_bit", NULL);
    expect("permessage-deflate; client_max_window_bitsx", NULL);
}
END_TEST

START_TEST(duplicated_parameter_declines)
{
    expect("permessage-deflate; server_no_context_takeover; server_no_context_takeover", NULL);
    expect("permessage-deflate; client_no_context_takeover; client_no_context_takeover", NULL);
    expect("permessage-deflate; server_max_window_bits=10; server_max_window_bits=10", NULL);
    expect("permessage-deflate; client_max_window_bits; client_max_window_bits=10", NULL);
}
END_TEST

START_TEST(value_on_a_no_context_takeover_declines)
{
    expect("permessage-deflate; server_no_context_takeover=1", NULL);
    expect("permessage-deflate; client_no_context_takeover=true", NULL);
    expect("permessage-deflate; client_no_context_takeover=\"\"", NULL);
}
END_TEST

START_TEST(bad_server_max_window_bits_declines)
{
    static const char *const bad[] = {
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=8",     /* zlib cannot */
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=0",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=09",
        "permessage-deflate; server_max_window_bits=+9",
        "permessage-deflate; server_max_window_bits=-9",
        "permessage-deflate; server_max_window_bits=1e1",
        "permessage-deflate; server_max_window_bits=ten",
        "permessage-deflate; server_max_window_bits=4294967306",   /* 2^32 + 10 */
        "permessage-deflate; server_max_window_bits=\"8\"",
    };

    for (size_t i = 0; i < NELEM(bad); i++)
        expect(bad[i], NULL);
    for (int b = 9; b <= 15; b++) {
        char v[64], want[96];

        snprintf(v, sizeof(v), "permessage-deflate; server_max_window_bits=%d", b);
        snprintf(want, sizeof(want), PMD CNCT "; server_max_window_bits=%d", b);
        expect(v, want);
    }
}
END_TEST

START_TEST(bad_client_max_window_bits_declines)
{
    static const char *const bad[] = {
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; client_max_window_bits=08",
        "permessage-deflate; client_max_window_bits=x",
        "permessage-deflate; client_max_window_bits=\"\"",
    };

    for (size_t i = 0; i < NELEM(bad); i++)
        expect(bad[i], NULL);
    for (int b = 8; b <= 15; b++) {
        char v[64];

        snprintf(v, sizeof(v), "permessage-deflate; client_max_window_bits=%d", b);
        expect(v, PMD CNCT);
    }
}
END_TEST

START_TEST(syntax_error_declines_the_rest_of_its_field_only)
{
    const char *split[] = { "permessage-deflate; =1, permessage-deflate",
                            "permessage-deflate; server_max_window_bits=9" };
    const char *earlier[] = { "permessage-deflate; server_max_window_bits=11, @@@" };

    /* The broken offer and every later one in the field. */
    expect("permessage-deflate; =1, permessage-deflate", NULL);
    expect("permessage-deflate;, permessage-deflate", NULL);
    expect("permessage-deflate;", NULL);
    expect("permessage-deflate; ;client_max_window_bits", NULL);
    expect("permessage-deflate client_max_window_bits, permessage-deflate", NULL);
    expect("permessage-deflate; client_max_window_bits=, permessage-deflate", NULL);
    expect("permessage-deflate; client_max_window_bits=\"15, permessage-deflate", NULL);
    expect("permessage-deflate; client_max_window_bits=\"15\\", NULL);
    expect("permessage-deflate; client_max_window_bits=15\"\", permessage-deflate", NULL);
    expect("permessage-deflate; client_max_window_bits=1 5, permessage-deflate", NULL);
    expect("x-foo; a=\"b\x01\", permessage-deflate", NULL);         /* CTL in quotes */
    expect("x-foo; a=\"b\\\x7f\", permessage-deflate", NULL);       /* DEL escaped */
    expect("x-foo; a=(b), permessage-deflate", NULL);
    expect("=, permessage-deflate", NULL);
    expect("; permessage-deflate", NULL);
    expect("permessage-deflate\r\n", NULL);
    expect("\"permessage-deflate\"", NULL);
    expect("permessage-deflate\xc3\xa9", NULL);
    /* Later fields are parsed afresh. */
    expect_fields(split, 2, &dflt, PMD CNCT SMWB(9));
    /* An offer complete before the error stands. */
    expect_fields(earlier, 1, &dflt, PMD CNCT SMWB(11));
}
END_TEST

START_TEST(embedded_nul_and_length_bound_the_value)
{
    const char *v = "permessage-deflate\0; foo";
    size_t len = 24;
    const char *w = "permessage-deflate; server_max_window_bits=12";
    size_t wlen = strlen("permessage-deflate; server_max_window_bits=1");
    gh_pmd_params out;
    char answer[GH_PMD_ANSWER_MAX];

    ck_assert(!gh_pmd_negotiate(&v, &len, 1, &dflt, &out, answer));
    ck_assert_str_eq(answer, "");
    /* "=12" cut to "=1" by the length: declined. */
    ck_assert(!gh_pmd_negotiate(&w, &wlen, 1, &dflt, &out, answer));
    /* A NULL field is an empty one. */
    {
        const char *fields[] = { NULL, "permessage-deflate" };
        size_t lens[] = { 0, 18 };

        ck_assert(gh_pmd_negotiate(fields, lens, 2, &dflt, &out, answer));
        ck_assert_str_eq(answer, PMD CNCT);
    }
    ck_assert(!gh_pmd_negotiate(NULL, NULL, 3, &dflt, &out, answer));
}
END_TEST

/* ---- splits and prefixes ---- */

static const char *const valid[] = {
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate",
    "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=10",
    "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_no_context_takeover",
    "foo; a=\"x;y\", permessage-deflate; client_max_window_bits=\"12\", permessage-deflate",
    "permessage-deflate; foo, , permessage-deflate ; server_max_window_bits = 13",
    "a, b, c, d; e=f",
    "permessage-deflate; server_max_window_bits=\"1\\1\"; client_no_context_takeover",
};

/* Negotiates v[0..len) split into the given fields. */
static bool negotiate_split(const char *v, size_t len, const size_t *cuts, size_t ncuts,
                            char *answer, gh_pmd_params *out)
{
    const char *fields[4];
    size_t lens[4];
    size_t at = 0;

    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : len;

        fields[k] = v + at;
        lens[k] = end - at;
        at = end + 1;                   /* drop the comma */
    }
    return gh_pmd_negotiate(fields, lens, ncuts + 1, &dflt, out, answer);
}

START_TEST(value_split_into_fields_at_a_comma_negotiates_the_same)
{
    for (size_t i = 0; i < NELEM(valid); i++) {
        const char *v = valid[i];
        size_t len = strlen(v);
        char whole[GH_PMD_ANSWER_MAX], part[GH_PMD_ANSWER_MAX];
        gh_pmd_params pw, pp;
        bool ow = gh_pmd_negotiate(&v, &len, 1, &dflt, &pw, whole);
        bool quoted = false;

        for (size_t c = 0; c < len; c++) {
            if (v[c] == '\\' && quoted) {
                c++;
                continue;
            }
            if (v[c] == '"')
                quoted = !quoted;
            if (v[c] != ',' || quoted)
                continue;
            ck_assert_int_eq(negotiate_split(v, len, &c, 1, part, &pp), ow);
            ck_assert_str_eq(part, whole);
            ck_assert_mem_eq(&pp, &pw, sizeof(pp));
        }
    }
}
END_TEST

START_TEST(value_split_at_every_comma_negotiates_the_same)
{
    static const char v[] = "a, permessage-deflate; x, b; c=\"d\", permessage-deflate; "
                            "server_max_window_bits=14";
    size_t cuts[3], n = 0;
    char whole[GH_PMD_ANSWER_MAX], part[GH_PMD_ANSWER_MAX];
    gh_pmd_params pw, pp;
    const char *vp = v;
    size_t len = sizeof(v) - 1;

    ck_assert(gh_pmd_negotiate(&vp, &len, 1, &dflt, &pw, whole));
    ck_assert_str_eq(whole, PMD CNCT SMWB(14));
    for (size_t c = 0; c < len; c++)
        if (v[c] == ',')
            cuts[n++] = c;
    ck_assert_uint_eq(n, 3);
    ck_assert(negotiate_split(v, len, cuts, n, part, &pp));
    ck_assert_str_eq(part, whole);
    ck_assert_mem_eq(&pp, &pw, sizeof(pp));
}
END_TEST

/* Every answer a prefix of valid[] may legitimately get. */
static bool is_known_answer(const char *a)
{
    static const char *const known[] = {
        PMD CNCT, PMD SNCT CNCT, PMD CNCT SMWB(10), PMD CNCT SMWB(11), PMD CNCT SMWB(13),
    };

    for (size_t i = 0; i < NELEM(known); i++)
        if (strcmp(a, known[i]) == 0)
            return true;
    return false;
}

/* Copies s[0..n) to end right before a PROT_NONE page; returns the copy. */
static const char *at_guard(char *page_end, const char *s, size_t n)
{
    memcpy(page_end - n, s, n);
    return page_end - n;
}

START_TEST(every_prefix_is_safe_and_answered_correctly_or_declined)
{
    long pagesz = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, (size_t)pagesz * 2, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    ck_assert(map != MAP_FAILED);
    ck_assert_int_eq(mprotect(map + pagesz, (size_t)pagesz, PROT_NONE), 0);
    for (size_t i = 0; i < NELEM(valid); i++) {
        size_t full = strlen(valid[i]);

        for (size_t k = 0; k <= full; k++) {
            const char *s = at_guard(map + pagesz, valid[i], k);
            char answer[GH_PMD_ANSWER_MAX];
            gh_pmd_params out;

            if (gh_pmd_negotiate(&s, &k, 1, &dflt, &out, answer)) {
                ck_assert_msg(is_known_answer(answer), "\"%.*s\": \"%s\"", (int)k, s, answer);
                check_consistent(answer, &out, &dflt);
            } else {
                ck_assert_str_eq(answer, "");
            }
        }
    }
    /* Spot checks: the prefix's own answer. */
    {
        const char *v = valid[2];
        size_t k = strlen("x-webkit-deflate-frame, permessage-deflate");
        size_t k1 = k + strlen("; server_max_window_bits=1");
        char answer[GH_PMD_ANSWER_MAX];
        gh_pmd_params out;

        ck_assert(gh_pmd_negotiate(&v, &k, 1, &dflt, &out, answer));
        ck_assert_str_eq(answer, PMD CNCT);
        ck_assert(!gh_pmd_negotiate(&v, &k1, 1, &dflt, &out, answer));
    }
    munmap(map, (size_t)pagesz * 2);
}
END_TEST

START_TEST(garbage_never_crashes_or_reads_past_the_value)
{
    long pagesz = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, (size_t)pagesz * 2, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static const char *const junk[] = {
        "\"", "\\", "\"\\", ";", "=", ",", "a;", "a;b=", "a;b=\"", "a;b=\"\\", "a;b=\"\\\"",
        "permessage-deflate; server_max_window_bits=\"1", "permessage-deflate; a=\"\\",
        "permessage-deflate ;", "permessage-deflate; client_max_window_bits=",
        "\x80\xff", "\t", "permessage-deflate\t", "permessage-deflate; x=\"\xff\"",
    };
    unsigned seed = 12345;

    ck_assert(map != MAP_FAILED);
    ck_assert_int_eq(mprotect(map + pagesz, (size_t)pagesz, PROT_NONE), 0);
    for (size_t i = 0; i < NELEM(junk); i++) {
        size_t full = strlen(junk[i]);

        for (size_t k = 0; k <= full; k++) {
            const char *s = at_guard(map + pagesz, junk[i], k);
            char answer[GH_PMD_ANSWER_MAX];
            gh_pmd_params out;

            if (gh_pmd_negotiate(&s, &k, 1, &dflt, &out, answer))
                check_consistent(answer, &out, &dflt);
            else
                ck_assert_str_eq(answer, "");
        }
    }
    /* Random bytes drawn from the characters that matter. */
    for (int round = 0; round < 20000; round++) {
        static const char alpha[] = "permessage-deflate;=,\" \t\\1589_sx\x01\x80";
        char buf[48];
        size_t n;
        const char *s;
        char answer[GH_PMD_ANSWER_MAX];
        gh_pmd_params out;

        seed = seed * 1103515245u + 12345u;
        n = (seed >> 16) % sizeof(buf);
        for (size_t k = 0; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            buf[k] = alpha[(seed >> 16) % (sizeof(alpha) - 1)];
        }
        s = at_guard(map + pagesz, buf, n);
        if (gh_pmd_negotiate(&s, &n, 1, &dflt, &out, answer))
            check_consistent(answer, &out, &dflt);
        else
            ck_assert_str_eq(answer, "");
    }
    munmap(map, (size_t)pagesz * 2);
}
END_TEST

static Suite *wsext_suite(void)
{
    Suite *s = suite_create("wsext");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, chromium_offer_is_accepted);
    tcase_add_test(tc, firefox_offer_is_accepted);
    tcase_add_test(tc, python_websockets_and_node_ws_offers_are_accepted);
    tcase_add_test(tc, answer_grows_in_the_fixed_order);
    tcase_add_test(tc, first_honourable_offer_wins);
    tcase_add_test(tc, offers_in_several_fields_are_one_list);
    tcase_add_test(tc, other_extensions_are_skipped);
    tcase_add_test(tc, whitespace_and_empty_elements_are_allowed);
    tcase_add_test(tc, names_compare_case_insensitively);
    tcase_add_test(tc, quoted_values_are_unquoted);
    tcase_add_test(tc, policy_caps_the_window_and_adds_server_no_context_takeover);
    tcase_add_test(tc, policy_out_of_range_is_clamped);
    tcase_add_test(tc, longest_answer_fits);
    tcase_add_test(tc, unknown_parameter_declines);
    tcase_add_test(tc, duplicated_parameter_declines);
    tcase_add_test(tc, value_on_a_no_context_takeover_declines);
    tcase_add_test(tc, bad_server_max_window_bits_declines);
    tcase_add_test(tc, bad_client_max_window_bits_declines);
    tcase_add_test(tc, syntax_error_declines_the_rest_of_its_field_only);
    tcase_add_test(tc, embedded_nul_and_length_bound_the_value);
    tcase_add_test(tc, value_split_into_fields_at_a_comma_negotiates_the_same);
    tcase_add_test(tc, value_split_at_every_comma_negotiates_the_same);
    tcase_add_test(tc, every_prefix_is_safe_and_answered_correctly_or_declined);
    tcase_add_test(tc, garbage_never_crashes_or_reads_past_the_value);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(wsext_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
