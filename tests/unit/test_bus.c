/* test_bus.c: the Redis bus's codec (envelope, channel names, the PUBLISH
 * command, the URL) and the topics' watch hook the bus follows. The glue
 * itself is tested against a real redis-server in
 * tests/integration/test_bus.py. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bus.h"
#include "err.h"
#include "topic.h"
#include "wsframe.h"

/* ---- envelope ---- */

START_TEST(envelope_round_trips_text_and_binary)
{
    uint8_t buf[64];
    gh_bus_msg m = { .opcode = GH_WS_OP_TEXT, .origin = 0x0102030405060708ULL,
                     .upto = UINT64_MAX - 1 }, d;

    ck_assert_int_eq(gh_bus_envelope_header(buf, &m), GH_BUS_HDR_LEN);
    ck_assert_mem_eq(buf, "gh\x01t\x01\x02\x03\x04\x05\x06\x07\x08", 12);
    memcpy(buf + GH_BUS_HDR_LEN, "hello", 5);
    ck_assert_int_eq(gh_bus_envelope_decode(buf, GH_BUS_HDR_LEN + 5, &d), 0);
    ck_assert_int_eq(d.opcode, GH_WS_OP_TEXT);
    ck_assert(d.origin == m.origin);
    ck_assert(d.upto == m.upto);
    ck_assert_uint_eq(d.len, 5);
    ck_assert(d.data == buf + GH_BUS_HDR_LEN);
    ck_assert_mem_eq(d.data, "hello", 5);

    m.opcode = GH_WS_OP_BINARY;
    m.origin = 0;
    m.upto = 7;
    ck_assert_int_eq(gh_bus_envelope_header(buf, &m), GH_BUS_HDR_LEN);
    ck_assert_int_eq(gh_bus_envelope_decode(buf, GH_BUS_HDR_LEN, &d), 0);
    ck_assert_int_eq(d.opcode, GH_WS_OP_BINARY);
    ck_assert(d.origin == 0 && d.upto == 7);
    ck_assert_uint_eq(d.len, 0);
}
END_TEST

START_TEST(envelope_header_refuses_control_opcodes)
{
    uint8_t buf[GH_BUS_HDR_LEN];
    gh_bus_msg m = { .opcode = GH_WS_OP_CLOSE };

    ck_assert_int_eq(gh_bus_envelope_header(buf, &m), GH_EINVAL);
    m.opcode = GH_WS_OP_PING;
    ck_assert_int_eq(gh_bus_envelope_header(buf, &m), GH_EINVAL);
    m.opcode = 0;
    ck_assert_int_eq(gh_bus_envelope_header(buf, &m), GH_EINVAL);
}
END_TEST

START_TEST(envelope_decode_refuses_short_or_foreign_input)
{
    uint8_t good[GH_BUS_HDR_LEN], bad[GH_BUS_HDR_LEN];
    gh_bus_msg m = { .opcode = GH_WS_OP_TEXT }, d;
    static const struct { size_t at; uint8_t v; } flips[] = {
        { 0, 'x' }, { 1, 'x' }, { 2, 0 }, { 2, 2 }, { 3, 'x' }, { 3, 0 },
    };

    gh_bus_envelope_header(good, &m);
    for (size_t n = 0; n < GH_BUS_HDR_LEN; n++)
        ck_assert_int_eq(gh_bus_envelope_decode(good, n, &d), GH_EPROTO);
    for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
        memcpy(bad, good, sizeof(bad));
        bad[flips[i].at] = flips[i].v;
        ck_assert_int_eq(gh_bus_envelope_decode(bad, sizeof(bad), &d), GH_EPROTO);
    }
    ck_assert_int_eq(gh_bus_envelope_decode(NULL, 0, &d), GH_EPROTO);
}
END_TEST

START_TEST(envelope_decode_reads_nothing_past_the_input)
{
    long pg = sysconf(_SC_PAGESIZE);
    uint8_t *map = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t hdr[GH_BUS_HDR_LEN];
    gh_bus_msg m = { .opcode = GH_WS_OP_TEXT, .origin = 1, .upto = 2 }, d;

    ck_assert(map != MAP_FAILED);
    ck_assert_int_eq(mprotect(map + pg, (size_t)pg, PROT_NONE), 0);
    gh_bus_envelope_header(hdr, &m);
    /* every prefix of a valid envelope, ending at the guard page */
    for (size_t n = 0; n <= GH_BUS_HDR_LEN; n++) {
        uint8_t *p = map + pg - n;
        memcpy(p, hdr, n);
        ck_assert_int_eq(gh_bus_envelope_decode(p, n, &d), n == GH_BUS_HDR_LEN ? 0 : GH_EPROTO);
    }
    munmap(map, (size_t)pg * 2);
}
END_TEST

/* ---- channel names ---- */

START_TEST(channel_is_prefix_namespace_colon_name)
{
    char out[64];

    ck_assert_int_eq(gh_bus_channel(out, sizeof(out), "gatehouse:", 10, "chat", "lobby", 5), 20);
    ck_assert_mem_eq(out, "gatehouse:chat:lobby", 20);
    /* an empty prefix, and a name with ':' and a NUL in it */
    ck_assert_int_eq(gh_bus_channel(out, sizeof(out), "", 0, "ps", "a:b\0c", 5), 8);
    ck_assert_mem_eq(out, "ps:a:b\0c", 8);
}
END_TEST

START_TEST(channel_refuses_bad_names_and_small_buffers)
{
    char out[2048], big[GH_TOPIC_MAX_NAME + 1], ns[GH_TOPIC_MAX_NS + 2];

    memset(big, 'n', sizeof(big));
    memset(ns, 's', sizeof(ns));
    ns[sizeof(ns) - 1] = '\0';
    ck_assert_int_eq(gh_bus_channel(out, sizeof(out), "p:", 2, "chat", "x", 0), GH_EINVAL);
    ck_assert_int_eq(gh_bus_channel(out, sizeof(out), "p:", 2, "", "x", 1), GH_EINVAL);
    ck_assert_int_eq(gh_bus_channel(out, sizeof(out), "p:", 2, "a:b", "x", 1), GH_EINVAL);
    ck_assert_int_eq(gh_bus_channel(out, sizeof(out), "p:", 2, ns, "x", 1), GH_EINVAL);
    ck_assert_int_eq(gh_bus_channel(out, sizeof(out), "p:", 2, "chat", big, sizeof(big)),
                     GH_EINVAL);
    ck_assert_int_eq(gh_bus_channel(out, sizeof(out), "p:", 2, "chat", big, sizeof(big) - 1),
                     2 + 4 + 1 + GH_TOPIC_MAX_NAME);
    ck_assert_int_eq(gh_bus_channel(out, 8, "p:", 2, "chat", "ab", 2), GH_E2BIG);
    ck_assert_int_eq(gh_bus_channel(out, 9, "p:", 2, "chat", "ab", 2), 9);
}
END_TEST

/* ---- PUBLISH ---- */

START_TEST(publish_encodes_one_resp_command)
{
    char out[128];
    static const char want[] = "*3\r\n$7\r\nPUBLISH\r\n$6\r\ngh:a:b\r\n$23\r\n"
                               "gh\x01t\0\0\0\0\0\0\0\x09\0\0\0\0\0\0\x01\x02Hey\r\n";
    gh_bus_msg m = { .opcode = GH_WS_OP_TEXT, .origin = 9, .upto = 0x102,
                     .data = (const uint8_t *)"Hey", .len = 3 };
    long n = gh_bus_publish_encode(out, sizeof(out), "gh:a:b", 6, &m);

    ck_assert_int_eq(n, sizeof(want) - 1);
    ck_assert_uint_eq(gh_bus_publish_size(6, 3), sizeof(want) - 1);
    ck_assert_mem_eq(out, want, sizeof(want) - 1);
}
END_TEST

START_TEST(publish_size_is_exact_for_every_length_up_to_a_few_thousand)
{
    size_t cap = 5000;
    char *out = malloc(cap);
    uint8_t *data = calloc(1, 4000);
    gh_bus_msg m = { .opcode = GH_WS_OP_BINARY };

    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(data);
    m.data = data;
    for (size_t dlen = 0; dlen < 4000; dlen += 7) {
        size_t need = gh_bus_publish_size(9, dlen);
        m.len = dlen;
        ck_assert_int_eq(gh_bus_publish_encode(out, cap, "gh:ps:top", 9, &m), (long)need);
        ck_assert_int_eq(gh_bus_publish_encode(out, need - 1, "gh:ps:top", 9, &m), GH_E2BIG);
    }
    free(out);
    free(data);
}
END_TEST

START_TEST(publish_refuses_bad_opcode_and_overflow)
{
    char out[64];
    gh_bus_msg m = { .opcode = GH_WS_OP_PING, .data = (const uint8_t *)"x", .len = 1 };

    ck_assert_int_eq(gh_bus_publish_encode(out, sizeof(out), "c", 1, &m), GH_EINVAL);
    m.opcode = GH_WS_OP_TEXT;
    m.data = NULL;
    ck_assert_int_eq(gh_bus_publish_encode(out, sizeof(out), "c", 1, &m), GH_EINVAL);
    ck_assert_uint_eq(gh_bus_publish_size(1, SIZE_MAX - 2), 0);
    ck_assert_uint_eq(gh_bus_publish_size(SIZE_MAX / 2, 1), 0);
}
END_TEST

/* ---- URL ---- */

START_TEST(url_parses_host_port_db_and_password)
{
    gh_bus_url u;

    ck_assert_int_eq(gh_bus_url_parse("redis://127.0.0.1:6379", &u), 0);
    ck_assert_uint_eq(u.host_len, 9);
    ck_assert_mem_eq(u.host, "127.0.0.1", 9);
    ck_assert_uint_eq(u.port, 6379);
    ck_assert(!u.has_db);
    ck_assert_ptr_null(u.password);

    ck_assert_int_eq(gh_bus_url_parse("redis://:p@ss/w@rd@redis.local:7000/15", &u), 0);
    ck_assert_mem_eq(u.host, "redis.local", u.host_len);
    ck_assert_uint_eq(u.host_len, 11);
    ck_assert_uint_eq(u.port, 7000);
    ck_assert(u.has_db);
    ck_assert_int_eq(u.db, 15);
    ck_assert_uint_eq(u.password_len, 9);
    ck_assert_mem_eq(u.password, "p@ss/w@rd", 9);

    ck_assert_int_eq(gh_bus_url_parse("redis://[::1]:1/0", &u), 0);
    ck_assert_uint_eq(u.host_len, 3);
    ck_assert_mem_eq(u.host, "::1", 3);
    ck_assert_uint_eq(u.port, 1);
    ck_assert_int_eq(u.db, 0);
}
END_TEST

START_TEST(url_refuses_what_is_not_redis_host_port)
{
    static const char *bad[] = {
        "http://h:1", "redis://", "redis://h", "redis://h:", "redis://h:0", "redis://h:65536",
        "redis://h:1/", "redis://h:1/16", "redis://h:1/x", "redis://user:pw@h:1", "redis://:@h:1",
        "redis://[::1:1", "redis://[]:1", "redis://:6379", "redis://h:12345678",
    };
    gh_bus_url u;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(gh_bus_url_parse(bad[i], &u) == GH_EINVAL, "%s", bad[i]);
    ck_assert_int_eq(gh_bus_url_parse(NULL, &u), GH_EINVAL);
}
END_TEST

START_TEST(conf_equal_compares_every_field)
{
    gh_bus_conf a = { .redis = "redis://h:1", .channel_prefix = "g:", .password = NULL };
    gh_bus_conf b = a;

    ck_assert(gh_bus_conf_equal(&a, &b));
    b.password = "x";
    ck_assert(!gh_bus_conf_equal(&a, &b));
    b = a;
    b.channel_prefix = "h:";
    ck_assert(!gh_bus_conf_equal(&a, &b));
    b = a;
    b.redis = NULL;
    ck_assert(!gh_bus_conf_equal(&a, &b));
    a.redis = NULL;
    ck_assert(gh_bus_conf_equal(&a, &b));
}
END_TEST

/* ---- the topics' watch hook ---- */

typedef struct watch_log {
    int  calls, on, published;
    char last[64];
} watch_log;

static void on_watch(void *ctx, const char *ns, const char *name, size_t len, int on)
{
    watch_log *w = ctx;

    w->calls++;
    w->on += on ? 1 : -1;
    snprintf(w->last, sizeof(w->last), "%s%s/%.*s", on ? "+" : "-", ns, (int)len, name);
}

static int fake_publish(void *ctx, const char *ns, const char *name, size_t len, int opcode,
                        const void *data, size_t dlen)
{
    watch_log *w = ctx;

    (void)ns, (void)name, (void)len, (void)opcode, (void)data, (void)dlen;
    w->published++;
    return 0;
}

static int null_sink(void *subscriber, gh_frame_ref *f)
{
    (void)subscriber, (void)f;
    return 0;
}

START_TEST(watch_hears_first_and_last_subscriber_only)
{
    struct gh_topics *t = gh_topics_create(null_sink);
    watch_log w = { 0 };
    gh_topic_bus bus = { .ctx = &w, .publish = fake_publish, .watch = on_watch };
    gh_topic_sub *l1 = NULL, *l2 = NULL;
    int s1, s2;

    ck_assert_ptr_nonnull(t);
    gh_topics_set_bus(t, &bus);
    ck_assert_int_eq(w.calls, 0);
    ck_assert_int_eq(gh_topics_subscribe(t, "chat", "room", 4, &s1, &l1), 0);
    ck_assert_int_eq(w.calls, 1);
    ck_assert_str_eq(w.last, "+chat/room");
    ck_assert_int_eq(gh_topics_subscribe(t, "chat", "room", 4, &s2, &l2), 0);
    ck_assert_int_eq(gh_topics_subscribe(t, "chat", "room", 4, &s2, &l2), 0);   /* no-op */
    ck_assert_int_eq(w.calls, 1);
    ck_assert_int_eq(gh_topics_unsubscribe(t, "chat", "room", 4, &l1), 0);
    ck_assert_int_eq(w.calls, 1);
    ck_assert_int_eq(gh_topics_publish(t, "chat", "room", 4, GH_WS_OP_TEXT, "x", 1), 0);
    ck_assert_int_eq(w.published, 1);
    gh_topics_unsubscribe_all(t, &l2);
    ck_assert_int_eq(w.calls, 2);
    ck_assert_str_eq(w.last, "-chat/room");
    ck_assert_int_eq(w.on, 0);
    gh_topics_destroy(t);
}
END_TEST

START_TEST(setting_a_bus_replays_the_topics_that_exist)
{
    struct gh_topics *t = gh_topics_create(null_sink);
    watch_log w = { 0 };
    gh_topic_bus bus = { .ctx = &w, .publish = fake_publish, .watch = on_watch };
    gh_topic_sub *l = NULL;
    int s;
    char name[16];

    for (int i = 0; i < 100; i++) {
        int n = snprintf(name, sizeof(name), "t%d", i);
        ck_assert_int_eq(gh_topics_subscribe(t, "ps", name, (size_t)n, &s, &l), 0);
    }
    gh_topics_set_bus(t, &bus);
    ck_assert_int_eq(w.calls, 100);
    ck_assert_int_eq(w.on, 100);
    /* cleared: no calls any more */
    gh_topics_set_bus(t, NULL);
    gh_topics_unsubscribe_all(t, &l);
    ck_assert_int_eq(w.calls, 100);
    gh_topics_destroy(t);
}
END_TEST

static int count_sink(void *subscriber, gh_frame_ref *f)
{
    (void)f;
    (*(int *)subscriber)++;
    return 0;
}

START_TEST(deliver_upto_skips_subscriptions_newer_than_the_publish)
{
    struct gh_topics *t = gh_topics_create(count_sink);
    gh_topic_sub *l1 = NULL, *l2 = NULL, *l3 = NULL;
    int n1 = 0, n2 = 0, n3 = 0;
    uint64_t before;

    ck_assert_ptr_nonnull(t);
    ck_assert(gh_topics_serial(t) == 0);
    ck_assert_int_eq(gh_topics_subscribe(t, "chat", "r", 1, &n1, &l1), 0);
    ck_assert_int_eq(gh_topics_subscribe(t, "chat", "other", 5, &n2, &l2), 0);
    before = gh_topics_serial(t);
    ck_assert(before == 2);
    ck_assert_int_eq(gh_topics_subscribe(t, "chat", "r", 1, &n3, &l3), 0);
    /* published before n3 joined: n3 does not get it */
    ck_assert_int_eq(gh_topics_deliver_upto(t, "chat", "r", 1, GH_WS_OP_TEXT, "j", 1, before), 1);
    ck_assert_int_eq(n1, 1);
    ck_assert_int_eq(n3, 0);
    ck_assert_int_eq(gh_topics_deliver(t, "chat", "r", 1, GH_WS_OP_TEXT, "x", 1), 2);
    ck_assert_int_eq(n1, 2);
    ck_assert_int_eq(n3, 1);
    ck_assert_int_eq(n2, 0);
    gh_topics_unsubscribe_all(t, &l1);
    gh_topics_unsubscribe_all(t, &l2);
    gh_topics_unsubscribe_all(t, &l3);
    gh_topics_destroy(t);
}
END_TEST

static Suite *bus_suite(void)
{
    Suite *s = suite_create("bus");
    TCase *tc = tcase_create("codec");

    tcase_add_test(tc, envelope_round_trips_text_and_binary);
    tcase_add_test(tc, envelope_header_refuses_control_opcodes);
    tcase_add_test(tc, envelope_decode_refuses_short_or_foreign_input);
    tcase_add_test(tc, envelope_decode_reads_nothing_past_the_input);
    tcase_add_test(tc, channel_is_prefix_namespace_colon_name);
    tcase_add_test(tc, channel_refuses_bad_names_and_small_buffers);
    tcase_add_test(tc, publish_encodes_one_resp_command);
    tcase_add_test(tc, publish_size_is_exact_for_every_length_up_to_a_few_thousand);
    tcase_add_test(tc, publish_refuses_bad_opcode_and_overflow);
    tcase_add_test(tc, url_parses_host_port_db_and_password);
    tcase_add_test(tc, url_refuses_what_is_not_redis_host_port);
    tcase_add_test(tc, conf_equal_compares_every_field);
    suite_add_tcase(s, tc);
    tc = tcase_create("watch");
    tcase_add_test(tc, watch_hears_first_and_last_subscriber_only);
    tcase_add_test(tc, setting_a_bus_replays_the_topics_that_exist);
    tcase_add_test(tc, deliver_upto_skips_subscriptions_newer_than_the_publish);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(bus_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
