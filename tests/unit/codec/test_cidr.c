/* test_cidr.c: parsing ranges, matching peers of both families, defaults. */
#include "cidr.h"
#include "err.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <unistd.h>

typedef struct good_case {
    const char *in;
    int         family;
    const char *addr;    /* canonical network address */
    unsigned    prefix;
} good_case;

static const good_case good[] = {
    { "10.0.0.0/8", AF_INET, "10.0.0.0", 8 },
    { "192.0.2.7", AF_INET, "192.0.2.7", 32 },
    { "192.0.2.7/32", AF_INET, "192.0.2.7", 32 },
    { "0.0.0.0/0", AF_INET, "0.0.0.0", 0 },
    { "172.16.0.0/12", AF_INET, "172.16.0.0", 12 },
    { "10.0.0.0/008", AF_INET, "10.0.0.0", 8 },
    { "::1", AF_INET6, "::1", 128 },
    { "::1/128", AF_INET6, "::1", 128 },
    { "::/0", AF_INET6, "::", 0 },
    { "fc00::/7", AF_INET6, "fc00::", 7 },
    { "2001:db8::/32", AF_INET6, "2001:db8::", 32 },
    { "2001:db8:0:1::/64", AF_INET6, "2001:db8:0:1::", 64 },
    /* an IPv4-mapped range is stored as the IPv4 range */
    { "::ffff:10.0.0.0/104", AF_INET, "10.0.0.0", 8 },
    { "::ffff:192.0.2.7", AF_INET, "192.0.2.7", 32 },
    { "::ffff:0.0.0.0/96", AF_INET, "0.0.0.0", 0 },
};

static const char *const bad[] = {
    "", "/8", "10.0.0.0/", "10.0.0.1/8", "10.0.0.0/33", "::/129", "::1/64",
    "fc00::/5", "10.0.0.0/8x", "10.0.0.0/+8", "10.0.0.0/-8", "10.0.0.0/ 8",
    " 10.0.0.0/8", "10.0.0.0/8 ", "10.0.0.0/0008", "10.0.0.0/8/8", "10.1",
    "10.0.0", "1.2.3.4.5", "256.0.0.0", "010.0.0.1", "0x0a.0.0.0", "hello",
    "localhost", "fe80::1%eth0", "fe80::1%eth0/64", "::ffff:10.0.0.1/104",
    "1:2:3:4:5:6:7:8:9", ":::", "10.0.0.0/4294967304",
    "0000:0000:0000:0000:0000:0000:0000:0000:0000/0",
};

START_TEST(parse_accepts_hosts_and_ranges_of_both_families)
{
    gh_cidr c, want;

    memset(&want, 0, sizeof(want));
    want.family = good[_i].family;
    want.prefix = good[_i].prefix;
    ck_assert_int_eq(inet_pton(want.family, good[_i].addr, want.addr), 1);
    ck_assert_msg(gh_cidr_parse(good[_i].in, &c) == GH_OK, "refused %s", good[_i].in);
    ck_assert_int_eq(c.family, want.family);
    ck_assert_uint_eq(c.prefix, want.prefix);
    ck_assert_mem_eq(c.addr, want.addr, 16);
}
END_TEST

START_TEST(parse_rejects_junk_host_bits_and_long_prefixes)
{
    gh_cidr c;

    memset(&c, 0x5a, sizeof(c));
    ck_assert_msg(gh_cidr_parse(bad[_i], &c) == GH_EINVAL, "accepted \"%s\"", bad[_i]);
    ck_assert_int_eq(c.family, 0x5a5a5a5a);     /* untouched */
}
END_TEST

START_TEST(parse_rejects_null_and_overlong_input)
{
    char long_in[300];
    gh_cidr c;

    ck_assert_int_eq(gh_cidr_parse(NULL, &c), GH_EINVAL);
    memset(long_in, '1', sizeof(long_in) - 1);
    long_in[sizeof(long_in) - 1] = '\0';
    ck_assert_int_eq(gh_cidr_parse(long_in, &c), GH_EINVAL);
}
END_TEST

static struct sockaddr_storage ss;

static const struct sockaddr *peer(const char *ip)
{
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

        s6->sin6_family = AF_INET6;
        ck_assert_int_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

        s4->sin_family = AF_INET;
        ck_assert_int_eq(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    return (const struct sockaddr *)&ss;
}

typedef struct match_case {
    const char *range;
    const char *ip;
    bool        want;
} match_case;

static const match_case matches[] = {
    { "10.0.0.0/8", "10.1.2.3", true },
    { "10.0.0.0/8", "10.255.255.255", true },
    { "10.0.0.0/8", "11.0.0.0", false },
    { "10.0.0.0/8", "9.255.255.255", false },
    { "172.16.0.0/12", "172.31.255.255", true },
    { "172.16.0.0/12", "172.32.0.0", false },
    { "172.16.0.0/12", "172.15.255.255", false },
    { "192.0.2.7", "192.0.2.7", true },
    { "192.0.2.7", "192.0.2.8", false },
    { "0.0.0.0/0", "203.0.113.9", true },
    /* IPv4-mapped peers (dual-stack sockets) match IPv4 ranges */
    { "10.0.0.0/8", "::ffff:10.1.2.3", true },
    { "10.0.0.0/8", "::ffff:11.1.2.3", false },
    { "0.0.0.0/0", "::ffff:1.2.3.4", true },
    { "::ffff:10.0.0.0/104", "10.9.9.9", true },
    /* families stay apart otherwise */
    { "::/0", "10.1.2.3", false },
    { "::/0", "::ffff:10.1.2.3", false },
    { "0.0.0.0/0", "::1", false },
    { "10.0.0.0/8", "::a01:203", false },   /* IPv4-compatible, not mapped */
    { "::1", "::1", true },
    { "::1", "::2", false },
    { "::/0", "2001:db8::1", true },
    { "fc00::/7", "fd12:3456::1", true },
    { "fc00::/7", "fe80::1", false },
    { "fc00::/7", "fbff:ffff::1", false },
    { "2001:db8::/32", "2001:db8:ffff::1", true },
    { "2001:db8::/32", "2001:db9::1", false },
};

START_TEST(match_compares_prefix_bits_and_maps_ipv4_in_ipv6)
{
    gh_cidr c;

    ck_assert_int_eq(gh_cidr_parse(matches[_i].range, &c), GH_OK);
    ck_assert_msg(gh_cidr_match(&c, peer(matches[_i].ip)) == matches[_i].want,
                  "%s in %s should be %d", matches[_i].ip, matches[_i].range,
                  matches[_i].want);
}
END_TEST

START_TEST(match_is_false_for_other_families_and_null)
{
    struct sockaddr_un un;
    gh_cidr c;

    ck_assert_int_eq(gh_cidr_parse("0.0.0.0/0", &c), GH_OK);
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    ck_assert(!gh_cidr_match(&c, (const struct sockaddr *)&un));
    ck_assert(!gh_cidr_match(&c, NULL));
    ck_assert(!gh_cidr_match(NULL, peer("1.2.3.4")));
}
END_TEST

START_TEST(defaults_are_loopback_and_private_ranges)
{
    gh_cidr list[8];
    size_t n = gh_cidr_defaults(list, 8);
    static const char *const in[] = {
        "127.0.0.1", "10.2.3.4", "172.20.0.1", "192.168.1.1", "::1", "fd00::1",
        "::ffff:192.168.0.9",
    };
    static const char *const out[] = {
        "8.8.8.8", "172.32.0.1", "192.169.0.1", "2001:db8::1", "::2", "fe80::1",
    };

    ck_assert_uint_eq(n, 6);
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
        ck_assert_msg(gh_cidr_list_match(list, n, peer(in[i])), "%s", in[i]);
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
        ck_assert_msg(!gh_cidr_list_match(list, n, peer(out[i])), "%s", out[i]);
    ck_assert(!gh_cidr_list_match(list, 0, peer("127.0.0.1")));
}
END_TEST

START_TEST(defaults_write_at_most_cap_and_count_all)
{
    gh_cidr list[3];

    memset(list, 0x77, sizeof(list));
    ck_assert_uint_eq(gh_cidr_defaults(list, 2), 6);
    ck_assert_int_eq(list[0].family, AF_INET);
    ck_assert_int_eq(list[2].family, 0x77777777);
    ck_assert_uint_eq(gh_cidr_defaults(NULL, 0), 6);
}
END_TEST

START_TEST(parse_stops_at_the_terminator)
{
    long pg = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static const char *const ins[] = { "10.0.0.0/8", "::1", "fc00::/7", "10.0.0.0/",
                                       "", "1", "::ffff:1.2.3.4/128" };
    gh_cidr c;

    ck_assert_ptr_ne(map, MAP_FAILED);
    ck_assert_int_eq(mprotect(map + pg, (size_t)pg, PROT_NONE), 0);
    for (size_t i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
        size_t len = strlen(ins[i]) + 1;
        char *s = map + pg - len;

        memcpy(s, ins[i], len);
        (void)gh_cidr_parse(s, &c);
    }
    munmap(map, (size_t)pg * 2);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *cidr_suite(void)
{
    Suite *s = suite_create("cidr");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, parse_accepts_hosts_and_ranges_of_both_families, 0, N(good));
    tcase_add_loop_test(tc, parse_rejects_junk_host_bits_and_long_prefixes, 0, N(bad));
    tcase_add_test(tc, parse_rejects_null_and_overlong_input);
    tcase_add_loop_test(tc, match_compares_prefix_bits_and_maps_ipv4_in_ipv6, 0,
                        N(matches));
    tcase_add_test(tc, match_is_false_for_other_families_and_null);
    tcase_add_test(tc, defaults_are_loopback_and_private_ranges);
    tcase_add_test(tc, defaults_write_at_most_cap_and_count_all);
    tcase_add_test(tc, parse_stops_at_the_terminator);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cidr_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
