/* test_climit.c: the per-client table: keys (IPv4, IPv4-mapped, IPv6 cut
 * to a prefix), the connection count and its cap, token buckets (burst,
 * refill, the wait it reports, a long silence), and a table that a flood
 * of distinct clients cannot grow while clients with open connections keep
 * their slots. */
#include "climit.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gh_climit_key key4(const char *ip)
{
    struct sockaddr_in s4 = { .sin_family = AF_INET };
    gh_climit_key k;

    ck_assert_int_eq(inet_pton(AF_INET, ip, &s4.sin_addr), 1);
    gh_climit_key_of((struct sockaddr *)&s4, 64, &k);
    return k;
}

static gh_climit_key key6(const char *ip, unsigned prefix)
{
    struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
    gh_climit_key k;

    ck_assert_int_eq(inet_pton(AF_INET6, ip, &s6.sin6_addr), 1);
    gh_climit_key_of((struct sockaddr *)&s6, prefix, &k);
    return k;
}

START_TEST(keys_group_ipv6_by_prefix_and_map_ipv4)
{
    gh_climit_key a = key4("192.0.2.7"), b = key6("::ffff:192.0.2.7", 64);
    gh_climit_key c = key6("2001:db8:1:2:aaaa::1", 64), d = key6("2001:db8:1:2:bbbb::2", 64);
    gh_climit_key e = key6("2001:db8:1:3::1", 64), f = key6("2001:db8:1:2:aaaa::1", 128);
    gh_climit_key g = key6("2001:db8:1:2:aaaa::2", 128), h = key6("2001:db8:1:3::1", 47);
    gh_climit_key i = key6("2001:db8:0:3::1", 47);

    ck_assert(memcmp(&a, &b, sizeof(a)) == 0);     /* a mapped address is the IPv4 one */
    ck_assert(memcmp(&c, &d, sizeof(c)) == 0);     /* one /64 */
    ck_assert(memcmp(&c, &e, sizeof(c)) != 0);
    ck_assert(memcmp(&f, &g, sizeof(f)) != 0);     /* /128: every address its own */
    ck_assert(memcmp(&h, &i, sizeof(h)) == 0);     /* /47 cuts inside a byte */
    h = key4("192.0.2.8");
    ck_assert(memcmp(&a, &h, sizeof(a)) != 0);
}
END_TEST

START_TEST(connections_are_counted_and_capped)
{
    gh_climits *t = gh_climits_new(64);
    gh_climit_key a = key4("10.0.0.1"), b = key4("10.0.0.2");
    uint32_t s[3];

    ck_assert_ptr_nonnull(t);
    s[0] = gh_climits_conn_open(t, &a, 2, 0);
    s[1] = gh_climits_conn_open(t, &a, 2, 0);
    ck_assert_uint_ne(s[0], 0);
    ck_assert_uint_eq(s[0], s[1]);
    ck_assert_uint_eq(gh_climits_conn_open(t, &a, 2, 0), 0);       /* the third: refused */
    s[2] = gh_climits_conn_open(t, &b, 2, 0);                      /* another client: fine */
    ck_assert_uint_ne(s[2], 0);
    gh_climits_conn_close(t, s[0]);
    ck_assert_uint_ne(gh_climits_conn_open(t, &a, 2, 0), 0);       /* room again */
    ck_assert_uint_eq(gh_climits_tracked(t), 2);
    gh_climits_free(t);
}
END_TEST

START_TEST(a_bucket_gives_its_burst_then_the_rate)
{
    gh_climits *t = gh_climits_new(64);
    gh_climit_key a = key4("10.0.0.1");
    gh_rate_conf r = { .count = 10, .per_ms = 1000, .burst = 3 };   /* 10/s, burst 3 */
    uint64_t now = 1000;

    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(gh_climits_take(t, &a, GH_LIMIT_REQUESTS, &r, now), 0);
    ck_assert_uint_eq(gh_climits_take(t, &a, GH_LIMIT_REQUESTS, &r, now), 100);  /* 1/10 s */
    ck_assert_uint_eq(gh_climits_take(t, &a, GH_LIMIT_REQUESTS, &r, now + 40), 60);
    ck_assert_uint_eq(gh_climits_take(t, &a, GH_LIMIT_REQUESTS, &r, now + 100), 0);
    ck_assert_uint_ne(gh_climits_take(t, &a, GH_LIMIT_REQUESTS, &r, now + 100), 0);
    /* upgrades have their own bucket */
    ck_assert_uint_eq(gh_climits_take(t, &a, GH_LIMIT_UPGRADES, &r, now + 100), 0);
    /* a long silence fills it to the burst, not beyond */
    now += 10ull * 365 * 24 * 3600 * 1000;
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(gh_climits_take(t, &a, GH_LIMIT_REQUESTS, &r, now), 0);
    ck_assert_uint_ne(gh_climits_take(t, &a, GH_LIMIT_REQUESTS, &r, now), 0);
    /* a slow rate: 1/h waits an hour */
    r = (gh_rate_conf){ .count = 1, .per_ms = 3600000 };
    a = key4("10.0.0.9");
    ck_assert_uint_eq(gh_climits_take(t, &a, GH_LIMIT_UPGRADES, &r, now), 0);
    ck_assert_uint_eq(gh_climits_take(t, &a, GH_LIMIT_UPGRADES, &r, now), 3600000);
    gh_climits_free(t);
}
END_TEST

START_TEST(a_flood_of_clients_does_not_grow_the_table_or_evict_open_ones)
{
    gh_climits *t = gh_climits_new(256);
    gh_rate_conf r = { .count = 1, .per_ms = 1000 };
    uint32_t held[32];
    gh_climit_key k;
    char ip[32];

    /* 32 clients hold a connection each */
    for (int i = 0; i < 32; i++) {
        snprintf(ip, sizeof(ip), "10.1.0.%d", i);
        k = key4(ip);
        held[i] = gh_climits_conn_open(t, &k, 1, 0);
        ck_assert(held[i] != 0 && held[i] != GH_CLIMIT_UNTRACKED);
    }
    /* 100,000 others come and go */
    for (int i = 0; i < 100000; i++) {
        snprintf(ip, sizeof(ip), "10.%d.%d.%d", 2 + i / 65536, (i / 256) % 256, i % 256);
        k = key4(ip);
        (void)gh_climits_take(t, &k, GH_LIMIT_REQUESTS, &r, (uint64_t)i);
    }
    ck_assert_uint_le(gh_climits_tracked(t), 256);
    /* the 32 still have their count: a second connection each is refused */
    for (int i = 0; i < 32; i++) {
        snprintf(ip, sizeof(ip), "10.1.0.%d", i);
        k = key4(ip);
        ck_assert_uint_eq(gh_climits_conn_open(t, &k, 1, 200000), 0);
    }
    gh_climits_free(t);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("climit");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, keys_group_ipv6_by_prefix_and_map_ipv4);
    tcase_add_test(tc, connections_are_counted_and_capped);
    tcase_add_test(tc, a_bucket_gives_its_burst_then_the_rate);
    tcase_add_test(tc, a_flood_of_clients_does_not_grow_the_table_or_evict_open_ones);
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
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
