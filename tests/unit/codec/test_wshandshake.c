/* test_wshandshake.c: Sec-WebSocket-Key/Accept, token lists, the origin
 * policy and subprotocol choice. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "err.h"
#include "wshandshake.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* ---- key and accept ---- */

START_TEST(accept_matches_the_rfc_example)
{
    char out[GH_WS_ACCEPT_LEN + 1];

    ck_assert_int_eq(gh_ws_accept(S("dGhlIHNhbXBsZSBub25jZQ=="), out), 0);
    ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* OWS around the key is not part of it. */
    ck_assert_int_eq(gh_ws_accept(S(" \tdGhlIHNhbXBsZSBub25jZQ== "), out), 0);
    ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
END_TEST

START_TEST(accept_refuses_a_bad_key_and_leaves_an_empty_string)
{
    char out[GH_WS_ACCEPT_LEN + 1];

    memset(out, 'x', sizeof(out));
    ck_assert_int_eq(gh_ws_accept(S("dGhlIHNhbXBsZSBub25jZQ"), out), GH_EPROTO);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(key_check_accepts_the_base64_of_16_bytes)
{
    ck_assert_int_eq(gh_ws_key_check(S("dGhlIHNhbXBsZSBub25jZQ==")), 0);
    ck_assert_int_eq(gh_ws_key_check(S("  dGhlIHNhbXBsZSBub25jZQ==\t")), 0);
    ck_assert_int_eq(gh_ws_key_check(S("AAAAAAAAAAAAAAAAAAAAAA==")), 0);
    ck_assert_int_eq(gh_ws_key_check(S("/+/+/+/+/+/+/+/+/+/+/w==")), 0);
}
END_TEST

START_TEST(key_check_accepts_random_keys_encoded_by_openssl)
{
    for (int i = 0; i < 1000; i++) {
        unsigned char raw[16];
        char key[25];

        ck_assert_int_eq(RAND_bytes(raw, sizeof(raw)), 1);
        ck_assert_int_eq(EVP_EncodeBlock((unsigned char *)key, raw, 16), 24);
        ck_assert_int_eq(gh_ws_key_check(key, 24), 0);
    }
}
END_TEST

START_TEST(key_check_refuses_malformed_keys)
{
    static const char *const bad[] = {
        "",
        "   ",
        "dGhlIHNhbXBsZSBub25jZQ=",          /* 23 characters */
        "dGhlIHNhbXBsZSBub25jZQ===",        /* 25 */
        "dGhlIHNhbXBsZSBub25jZQ",           /* no padding */
        "AAAAAAAAAAAAAAAAAAAA",             /* 15 bytes */
        "AAAAAAAAAAAAAAAAAAAAAAA=",         /* 17 bytes */
        "AAAAAAAAAAAAAAAAAAAAAAAA",         /* 18 bytes */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 24 bytes */
        "AAAAAAAAAAAAAAAAAAAAAA=A",         /* padding in the wrong place */
        "AAAAAAAAAAAAAAAAAAAA=AA=",
        "=AAAAAAAAAAAAAAAAAAAAA==",
        "AAAAAAAAAAAAAAAAAAAAAB==",         /* non-zero pad bits */
        "AAAAAAAAAAAAAAAAAAAAAP==",
        "dGhlIHNhbXBsZSBub25jZ-==",         /* URL-safe alphabet */
        "dGhlIHNhbXBsZSBub25jZ_==",
        "dGhlIHNhbXBsZSBu b25jZQ==",        /* space inside */
        "dGhlIHNhbXBsZSBub25jZQ==,x",
        "dGhlIHNhbXBsZSBub25jZ\x80==",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(gh_ws_key_check(bad[i], strlen(bad[i])) == GH_EPROTO, "accepted \"%s\"", bad[i]);
    ck_assert_int_eq(gh_ws_key_check(NULL, 0), GH_EPROTO);
    /* An embedded NUL is not hidden by the length. */
    ck_assert_int_eq(gh_ws_key_check("dGhlIHNhbXBsZSBub25j\0Q==", 24), GH_EPROTO);
}
END_TEST

/* ---- token lists ---- */

START_TEST(token_list_has_finds_whole_elements_case_insensitively)
{
    ck_assert(gh_ws_token_list_has(S("Upgrade"), "upgrade"));
    ck_assert(gh_ws_token_list_has(S("keep-alive, Upgrade"), "upgrade"));
    ck_assert(gh_ws_token_list_has(S("keep-alive,Upgrade"), "upgrade"));
    ck_assert(gh_ws_token_list_has(S(" UPGRADE \t, close"), "upgrade"));
    ck_assert(gh_ws_token_list_has(S(",,upgrade,,"), "upgrade"));
    ck_assert(gh_ws_token_list_has(S("websocket"), "WebSocket"));
}
END_TEST

START_TEST(token_list_has_refuses_partial_matches)
{
    ck_assert(!gh_ws_token_list_has(S("upgrade-foo"), "upgrade"));
    ck_assert(!gh_ws_token_list_has(S("foo-upgrade"), "upgrade"));
    ck_assert(!gh_ws_token_list_has(S("upgrad"), "upgrade"));
    ck_assert(!gh_ws_token_list_has(S("up grade"), "upgrade"));
    ck_assert(!gh_ws_token_list_has(S("keep-alive"), "upgrade"));
    ck_assert(!gh_ws_token_list_has(S(""), "upgrade"));
    ck_assert(!gh_ws_token_list_has(S(" , ,"), "upgrade"));
    ck_assert(!gh_ws_token_list_has(S("upgrade"), ""));
    ck_assert(!gh_ws_token_list_has(NULL, 0, "upgrade"));
    /* The length bounds the value: "upgrade" past len is not seen. */
    ck_assert(!gh_ws_token_list_has("close, upgrade", 6, "upgrade"));
}
END_TEST

/* ---- origins ---- */

static bool same(const char *origin, const char *host)
{
    return gh_ws_origin_allowed(GH_WS_ORIGINS_SAME_HOST, NULL, 0, origin,
                                origin ? strlen(origin) : 0, host, host ? strlen(host) : 0);
}

START_TEST(origin_same_host_allows_matching_hosts_and_ports)
{
    ck_assert(same("https://chat.example", "chat.example"));
    ck_assert(same("http://chat.example", "chat.example"));
    ck_assert(same("https://Chat.EXAMPLE", "chat.example"));
    ck_assert(same("https://chat.example", "CHAT.example"));
    ck_assert(same("https://chat.example:443", "chat.example"));
    ck_assert(same("https://chat.example", "chat.example:443"));
    ck_assert(same("http://chat.example", "chat.example:80"));
    ck_assert(same("http://chat.example:80", "chat.example"));
    ck_assert(same("http://localhost:8080", "localhost:8080"));
    ck_assert(same("HTTP://localhost:8080", "localhost:8080"));
    ck_assert(same("http://127.0.0.1:8080", "127.0.0.1:8080"));
    ck_assert(same("http://[::1]:8080", "[::1]:8080"));
    ck_assert(same("https://[2001:DB8::1]", "[2001:db8::1]"));
    ck_assert(same("https://[2001:db8::1]", "[2001:db8::1]:443"));
    ck_assert(same(" https://chat.example ", " chat.example "));
    ck_assert(same("https://chat.example", "chat.example:0443"));     /* Host: *DIGIT */
}
END_TEST

START_TEST(origin_same_host_allows_a_missing_origin_header)
{
    ck_assert(same(NULL, "chat.example"));
    ck_assert(same(NULL, NULL));
}
END_TEST

START_TEST(origin_same_host_refuses_other_hosts_ports_and_shapes)
{
    ck_assert(!same("https://evil.example", "chat.example"));
    ck_assert(!same("https://chat.example.evil", "chat.example"));
    ck_assert(!same("https://evilchat.example", "chat.example"));
    ck_assert(!same("https://chat.exampl", "chat.example"));
    ck_assert(!same("http://localhost:8081", "localhost:8080"));
    ck_assert(!same("http://localhost", "localhost:8080"));
    ck_assert(!same("http://localhost:8080", "localhost"));
    ck_assert(!same("https://chat.example:80", "chat.example"));
    ck_assert(!same("http://chat.example", "chat.example:443"));
    ck_assert(!same("https://chat.example", "chat.example:80"));
    ck_assert(!same("http://[::1]:8080", "[::2]:8080"));
    ck_assert(!same("http://[::1]", "::1"));
    ck_assert(!same("http://::1", "[::1]"));
    /* Opaque and malformed origins. */
    ck_assert(!same("null", "chat.example"));
    ck_assert(!same("", "chat.example"));
    ck_assert(!same("chat.example", "chat.example"));
    ck_assert(!same("https://", "chat.example"));
    ck_assert(!same("https://chat.example/", "chat.example"));
    ck_assert(!same("https://chat.example/path", "chat.example"));
    ck_assert(!same("https://user@chat.example", "chat.example"));
    ck_assert(!same("https://chat.example:", "chat.example"));
    ck_assert(!same("https://chat.example:99999", "chat.example:99999"));
    ck_assert(!same("https://chat.example:0443", "chat.example:0443"));  /* not serialized */
    ck_assert(!same("https://chat.example:4x3", "chat.example"));
    ck_assert(!same("https://[::1", "[::1]"));
    ck_assert(!same("https://[]", "[]"));
    ck_assert(!same("ftp://chat.example", "chat.example"));
    ck_assert(!same("ws://chat.example", "chat.example"));
    ck_assert(!same("chrome-extension://abc", "abc"));
    ck_assert(!same("https://chat.example", ""));
    ck_assert(!same("https://chat.example", NULL));
    ck_assert(!same("https://chat.example", "chat.example:"));
    ck_assert(!same("https://chat.example", "chat.example:abc"));
    ck_assert(!same("https://chat.example", "user@chat.example"));
}
END_TEST

static bool listed(const char *origin)
{
    static const char *const list[] = { "https://a.example", "http://B.example:8080",
                                        "https://[2001:db8::1]:8443", "null", "not an origin" };

    return gh_ws_origin_allowed(GH_WS_ORIGINS_LIST, list, sizeof(list) / sizeof(list[0]),
                                origin, origin ? strlen(origin) : 0, S("ignored.example"));
}

START_TEST(origin_list_matches_entries_with_default_ports_normalised)
{
    ck_assert(listed("https://a.example"));
    ck_assert(listed("https://A.EXAMPLE"));
    ck_assert(listed("HTTPS://a.example:443"));
    ck_assert(listed("http://b.example:8080"));
    ck_assert(listed("https://[2001:DB8::1]:8443"));
    ck_assert(listed(NULL));
}
END_TEST

START_TEST(origin_list_refuses_everything_else)
{
    ck_assert(!listed("http://a.example"));
    ck_assert(!listed("https://a.example:8443"));
    ck_assert(!listed("http://b.example"));
    ck_assert(!listed("https://b.example:8080"));
    ck_assert(!listed("https://c.example"));
    ck_assert(!listed("https://a.example/"));
    ck_assert(!listed("null"));                 /* even though listed */
    ck_assert(!listed("not an origin"));
    ck_assert(!listed(""));
    ck_assert(!gh_ws_origin_allowed(GH_WS_ORIGINS_LIST, NULL, 0, S("https://a.example"), S("a.example")));
}
END_TEST

START_TEST(origin_any_allows_everything)
{
    ck_assert(gh_ws_origin_allowed(GH_WS_ORIGINS_ANY, NULL, 0, S("https://evil.example"), S("a")));
    ck_assert(gh_ws_origin_allowed(GH_WS_ORIGINS_ANY, NULL, 0, S("null"), S("a")));
    ck_assert(gh_ws_origin_allowed(GH_WS_ORIGINS_ANY, NULL, 0, NULL, 0, NULL, 0));
}
END_TEST

START_TEST(origin_is_valid_checks_list_entries)
{
    ck_assert(gh_ws_origin_is_valid(S("https://a.example")));
    ck_assert(gh_ws_origin_is_valid(S("http://a.example:8080")));
    ck_assert(gh_ws_origin_is_valid(S("https://[::1]:1")));
    ck_assert(gh_ws_origin_is_valid(S("app-scheme://x")));
    ck_assert(!gh_ws_origin_is_valid(S("null")));
    ck_assert(!gh_ws_origin_is_valid(S("*")));
    ck_assert(!gh_ws_origin_is_valid(S("a.example")));
    ck_assert(!gh_ws_origin_is_valid(S("https://a.example/")));
    ck_assert(!gh_ws_origin_is_valid(S("https://a.example:65536")));
    ck_assert(gh_ws_origin_is_valid(S("https://a.example:65535")));
    ck_assert(!gh_ws_origin_is_valid(NULL, 0));
}
END_TEST

/* ---- subprotocols ---- */

START_TEST(pick_subprotocol_prefers_the_server_order)
{
    static const char *const server[] = { "chat.v2", "chat.v1", "json" };

    ck_assert_int_eq(gh_ws_pick_subprotocol(S("chat.v1, chat.v2"), server, 3), 0);
    ck_assert_int_eq(gh_ws_pick_subprotocol(S("json,chat.v1"), server, 3), 1);
    ck_assert_int_eq(gh_ws_pick_subprotocol(S(" json "), server, 3), 2);
    ck_assert_int_eq(gh_ws_pick_subprotocol(S("xml, soap"), server, 3), -1);
    ck_assert_int_eq(gh_ws_pick_subprotocol(S(""), server, 3), -1);
    ck_assert_int_eq(gh_ws_pick_subprotocol(NULL, 0, server, 3), -1);
    ck_assert_int_eq(gh_ws_pick_subprotocol(S("json"), NULL, 0), -1);
    ck_assert_int_eq(gh_ws_pick_subprotocol(S("json"), server, 0), -1);
}
END_TEST

START_TEST(pick_subprotocol_compares_names_case_sensitively)
{
    static const char *const server[] = { "chat.v1" };

    ck_assert_int_eq(gh_ws_pick_subprotocol(S("Chat.V1"), server, 1), -1);
    ck_assert_int_eq(gh_ws_pick_subprotocol(S("chat.v1x"), server, 1), -1);
    ck_assert_int_eq(gh_ws_pick_subprotocol(S("chat"), server, 1), -1);
}
END_TEST

START_TEST(pick_subprotocol_over_several_fields_keeps_the_smallest_index)
{
    static const char *const server[] = { "best", "good" };
    int a = gh_ws_pick_subprotocol(S("good"), server, 2);
    int b = gh_ws_pick_subprotocol(S("other, best"), server, 2);

    ck_assert_int_eq(a, 1);
    ck_assert_int_eq(b, 0);
}
END_TEST

/* ---- no over-read ---- */

/* Copies s to end right before a PROT_NONE page; returns the copy. */
static const char *at_guard(char *page_end, const char *s, size_t n)
{
    memcpy(page_end - n, s, n);
    return page_end - n;
}

START_TEST(helpers_never_read_past_their_input)
{
    long pagesz = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, (size_t)pagesz * 2, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *end;
    static const char *const inputs[] = {
        "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ= ", "keep-alive, Upgrade ",
        "upgrade,", "https://chat.example:443", "https://[::1", "https://a.example:",
        "chat.example:8", "[::1]:", "[", "https:/", "chat.v1, ",
    };
    static const char *const server[] = { "chat.v1" };

    ck_assert(map != MAP_FAILED);
    ck_assert_int_eq(mprotect(map + pagesz, (size_t)pagesz, PROT_NONE), 0);
    end = map + pagesz;
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        size_t full = strlen(inputs[i]);

        for (size_t n = 0; n <= full; n++) {
            const char *s = at_guard(end, inputs[i], n);
            char out[GH_WS_ACCEPT_LEN + 1];

            (void)gh_ws_key_check(s, n);
            (void)gh_ws_accept(s, n, out);
            (void)gh_ws_token_list_has(s, n, "upgrade");
            (void)gh_ws_origin_allowed(GH_WS_ORIGINS_SAME_HOST, NULL, 0, s, n, S("chat.example"));
            (void)gh_ws_origin_allowed(GH_WS_ORIGINS_SAME_HOST, NULL, 0, S("https://chat.example"), s, n);
            (void)gh_ws_origin_allowed(GH_WS_ORIGINS_LIST, server, 1, s, n, NULL, 0);
            (void)gh_ws_origin_is_valid(s, n);
            (void)gh_ws_pick_subprotocol(s, n, server, 1);
        }
    }
    munmap(map, (size_t)pagesz * 2);
}
END_TEST

static Suite *wshandshake_suite(void)
{
    Suite *s = suite_create("wshandshake");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, accept_matches_the_rfc_example);
    tcase_add_test(tc, accept_refuses_a_bad_key_and_leaves_an_empty_string);
    tcase_add_test(tc, key_check_accepts_the_base64_of_16_bytes);
    tcase_add_test(tc, key_check_accepts_random_keys_encoded_by_openssl);
    tcase_add_test(tc, key_check_refuses_malformed_keys);
    tcase_add_test(tc, token_list_has_finds_whole_elements_case_insensitively);
    tcase_add_test(tc, token_list_has_refuses_partial_matches);
    tcase_add_test(tc, origin_same_host_allows_matching_hosts_and_ports);
    tcase_add_test(tc, origin_same_host_allows_a_missing_origin_header);
    tcase_add_test(tc, origin_same_host_refuses_other_hosts_ports_and_shapes);
    tcase_add_test(tc, origin_list_matches_entries_with_default_ports_normalised);
    tcase_add_test(tc, origin_list_refuses_everything_else);
    tcase_add_test(tc, origin_any_allows_everything);
    tcase_add_test(tc, origin_is_valid_checks_list_entries);
    tcase_add_test(tc, pick_subprotocol_prefers_the_server_order);
    tcase_add_test(tc, pick_subprotocol_compares_names_case_sensitively);
    tcase_add_test(tc, pick_subprotocol_over_several_fields_keeps_the_smallest_index);
    tcase_add_test(tc, helpers_never_read_past_their_input);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(wshandshake_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
