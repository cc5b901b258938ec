/* test_bus.c: the Redis bus's codec (envelope v2, channel names, the
 * PUBLISH command, the topic-state answer, the URL) and the topics' watch
 * hook the bus follows. The glue itself is tested against a real
 * redis-server in tests/integration/test_bus.py. */
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
                     .upto = UINT64_MAX - 1, .skip = 0x1112131415161718ULL,
                     .keep = 0x21222324u }, d;
    /* 'g' 'h' VERSION TYPE ORIGIN(8) UPTO(8) SKIP(8) KEEP(4), big-endian */
    static const uint8_t want[GH_BUS_HDR_LEN] = {
        'g', 'h', 2, 't',
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
        0x21, 0x22, 0x23, 0x24,
    };

    ck_assert_int_eq(GH_BUS_HDR_LEN, 32);
    ck_assert_int_eq(GH_BUS_VERSION, 2);
    ck_assert_int_eq(gh_bus_envelope_header(buf, &m), GH_BUS_HDR_LEN);
    ck_assert_mem_eq(buf, want, GH_BUS_HDR_LEN);
    memcpy(buf + GH_BUS_HDR_LEN, "hello", 5);
    ck_assert_int_eq(gh_bus_envelope_decode(buf, GH_BUS_HDR_LEN + 5, &d), 0);
    ck_assert_int_eq(d.opcode, GH_WS_OP_TEXT);
    ck_assert(d.origin == m.origin);
    ck_assert(d.upto == m.upto);
    ck_assert(d.skip == m.skip);
    ck_assert(d.keep == m.keep);
    ck_assert_uint_eq(d.len, 5);
    ck_assert(d.data == buf + GH_BUS_HDR_LEN);
    ck_assert_mem_eq(d.data, "hello", 5);

    m = (gh_bus_msg){ .opcode = GH_WS_OP_BINARY, .origin = 0, .upto = 7 };
    ck_assert_int_eq(gh_bus_envelope_header(buf, &m), GH_BUS_HDR_LEN);
    ck_assert_int_eq(buf[3], 'b');
    ck_assert_int_eq(gh_bus_envelope_decode(buf, GH_BUS_HDR_LEN, &d), 0);
    ck_assert_int_eq(d.opcode, GH_WS_OP_BINARY);
    ck_assert(d.origin == 0 && d.upto == 7 && d.skip == 0 && d.keep == 0);
    ck_assert_uint_eq(d.len, 0);
}
END_TEST

START_TEST(envelope_round_trips_skip_and_keep_up_to_their_limits)
{
    static const uint64_t skips[] = { 0, 1, 0xff, 0x100, 0x8000000000000000ULL,
                                      UINT64_MAX - 1, UINT64_MAX };
    static const uint32_t keeps[] = { 0, 1, 50, 0xff, 0x100, 0x80000000u, UINT32_MAX - 1,
                                      UINT32_MAX };
    uint8_t buf[GH_BUS_HDR_LEN + 1];
    gh_bus_msg d;

    for (size_t i = 0; i < sizeof(skips) / sizeof(skips[0]); i++) {
        for (size_t k = 0; k < sizeof(keeps) / sizeof(keeps[0]); k++) {
            gh_bus_msg m = { .opcode = GH_WS_OP_TEXT, .origin = UINT64_MAX, .upto = UINT64_MAX,
                             .skip = skips[i], .keep = keeps[k] };
            ck_assert_int_eq(gh_bus_envelope_header(buf, &m), GH_BUS_HDR_LEN);
            buf[GH_BUS_HDR_LEN] = 'x';
            ck_assert_int_eq(gh_bus_envelope_decode(buf, sizeof(buf), &d), 0);
            ck_assert(d.skip == skips[i]);
            ck_assert(d.keep == keeps[k]);
            ck_assert(d.origin == UINT64_MAX && d.upto == UINT64_MAX);
            ck_assert_uint_eq(d.len, 1);
            ck_assert_int_eq(d.data[0], 'x');
        }
    }
    /* the limits as bytes: all ones, and nothing spills into the neighbours */
    {
        gh_bus_msg m = { .opcode = GH_WS_OP_BINARY, .skip = UINT64_MAX, .keep = UINT32_MAX };
        static const uint8_t want[GH_BUS_HDR_LEN] = {
            'g', 'h', 2, 'b', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        };
        ck_assert_int_eq(gh_bus_envelope_header(buf, &m), GH_BUS_HDR_LEN);
        ck_assert_mem_eq(buf, want, GH_BUS_HDR_LEN);
    }
}
END_TEST

START_TEST(envelope_decode_refuses_version_1_and_every_other_version)
{
    /* a version 1 envelope: 'g' 'h' 1 't' ORIGIN UPTO, payload; long enough
     * to hold a v2 header, so only the version byte can refuse it */
    static const uint8_t v1[] = "gh\x01t" "\0\0\0\0\0\0\0\x09" "\0\0\0\0\0\0\x01\x02"
                                "a payload of some length";
    uint8_t buf[GH_BUS_HDR_LEN + 4];
    gh_bus_msg m = { .opcode = GH_WS_OP_TEXT, .origin = 9, .upto = 0x102 }, d;

    ck_assert_uint_ge(sizeof(v1) - 1, GH_BUS_HDR_LEN);
    ck_assert_int_eq(gh_bus_envelope_decode(v1, sizeof(v1) - 1, &d), GH_EPROTO);
    ck_assert_int_eq(gh_bus_envelope_header(buf, &m), GH_BUS_HDR_LEN);
    memcpy(buf + GH_BUS_HDR_LEN, "abcd", 4);
    for (int v = 0; v < 256; v++) {
        buf[2] = (uint8_t)v;
        ck_assert_int_eq(gh_bus_envelope_decode(buf, sizeof(buf), &d),
                         v == GH_BUS_VERSION ? 0 : GH_EPROTO);
    }
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
    gh_bus_msg m = { .opcode = GH_WS_OP_TEXT, .skip = 3, .keep = 4 }, d;
    static const struct { size_t at; uint8_t v; } flips[] = {
        { 0, 'x' }, { 0, 'G' }, { 1, 'x' }, { 1, 'H' }, { 2, 0 }, { 2, 1 }, { 2, 3 },
        { 2, '2' }, { 3, 'x' }, { 3, 0 }, { 3, 'T' }, { 3, 'B' }, { 3, 1 }, { 3, 2 },
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
    uint8_t env[GH_BUS_HDR_LEN + 3];
    gh_bus_msg m = { .opcode = GH_WS_OP_TEXT, .origin = 1, .upto = 2, .skip = UINT64_MAX,
                     .keep = UINT32_MAX }, d;

    ck_assert(map != MAP_FAILED);
    ck_assert_int_eq(mprotect(map + pg, (size_t)pg, PROT_NONE), 0);
    gh_bus_envelope_header(env, &m);
    memcpy(env + GH_BUS_HDR_LEN, "abc", 3);
    /* every prefix of a valid envelope, ending at the guard page */
    for (size_t n = 0; n <= sizeof(env); n++) {
        uint8_t *p = map + pg - n;
        memcpy(p, env, n);
        ck_assert_int_eq(gh_bus_envelope_decode(p, n, &d), n >= GH_BUS_HDR_LEN ? 0 : GH_EPROTO);
        if (n >= GH_BUS_HDR_LEN) {
            ck_assert(d.skip == UINT64_MAX && d.keep == UINT32_MAX);
            ck_assert_uint_eq(d.len, n - GH_BUS_HDR_LEN);
            ck_assert(d.data == p + GH_BUS_HDR_LEN);
        }
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
    static const char want[] = "*3\r\n$7\r\nPUBLISH\r\n$6\r\ngh:a:b\r\n$35\r\n"
                               "gh\x02t"
                               "\0\0\0\0\0\0\0\x09"             /* origin */
                               "\0\0\0\0\0\0\x01\x02"           /* upto */
                               "\0\0\0\0\0\0\x0a\x0b"           /* skip */
                               "\0\0\0\x32"                     /* keep 50 */
                               "Hey\r\n";
    gh_bus_msg m = { .opcode = GH_WS_OP_TEXT, .origin = 9, .upto = 0x102, .skip = 0x0a0b,
                     .keep = 50, .data = (const uint8_t *)"Hey", .len = 3 };
    long n = gh_bus_publish_encode(out, sizeof(out), "gh:a:b", 6, &m);

    ck_assert_int_eq(n, sizeof(want) - 1);
    ck_assert_uint_eq(gh_bus_publish_size(6, 3), sizeof(want) - 1);
    ck_assert_mem_eq(out, want, sizeof(want) - 1);
}
END_TEST

START_TEST(publish_carries_an_envelope_that_decodes_to_the_message)
{
    char out[128];
    static const char head[] = "*3\r\n$7\r\nPUBLISH\r\n$3\r\nc:d\r\n$36\r\n";
    gh_bus_msg m = { .opcode = GH_WS_OP_BINARY, .origin = UINT64_MAX, .upto = 1,
                     .skip = UINT64_MAX, .keep = UINT32_MAX,
                     .data = (const uint8_t *)"\0\1\2\3", .len = 4 }, d;
    long n = gh_bus_publish_encode(out, sizeof(out), "c:d", 3, &m);

    ck_assert_int_eq(n, (long)(sizeof(head) - 1 + 36 + 2));
    ck_assert_mem_eq(out, head, sizeof(head) - 1);
    ck_assert_int_eq(gh_bus_envelope_decode(out + sizeof(head) - 1, 36, &d), 0);
    ck_assert_int_eq(d.opcode, GH_WS_OP_BINARY);
    ck_assert(d.origin == UINT64_MAX && d.upto == 1);
    ck_assert(d.skip == UINT64_MAX && d.keep == UINT32_MAX);
    ck_assert_uint_eq(d.len, 4);
    ck_assert_mem_eq(d.data, "\0\1\2\3", 4);
    ck_assert_mem_eq(out + n - 2, "\r\n", 2);
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

/* ---- topic state (the fetch script's answer) ---- */

/* Writes reqid, the members and the log (NUL-terminated strings) in the
 * fetch script's form to out; returns the length. */
static size_t state_of(char *out, size_t cap, uint64_t reqid, const char *const *members,
                       size_t nm, const char *const *log, size_t nl)
{
    size_t o = (size_t)snprintf(out, cap, "%016llx%08zx", (unsigned long long)reqid, nm);

    for (size_t i = 0; i < nm; i++)
        o += (size_t)snprintf(out + o, cap - o, "%08zx%s", strlen(members[i]), members[i]);
    o += (size_t)snprintf(out + o, cap - o, "%08zx", nl);
    for (size_t i = 0; i < nl; i++)
        o += (size_t)snprintf(out + o, cap - o, "%08zx%s", strlen(log[i]), log[i]);
    ck_assert_uint_lt(o, cap);
    return o;
}

static const char *const st_members[] = { "{\"nick\":\"ann\"}", "bob" };
static const char *const st_log[] = { "hello", "", "a longer logged message" };

START_TEST(state_decode_reads_the_request_id_members_then_log)
{
    char buf[512];
    size_t len = state_of(buf, sizeof(buf), 0x0123456789abcdefULL, st_members, 2, st_log, 3);
    gh_plugin_bytes items[8];
    size_t nm = 99, nl = 99;
    uint64_t reqid = 0;

    ck_assert_mem_eq(buf, "0123456789abcdef00000002" "0000000e{\"nick\":\"ann\"}", 16 + 8 + 8 + 14);
    ck_assert_int_eq(gh_bus_state_decode(buf, len, &reqid, items, 8, &nm, &nl), 0);
    ck_assert(reqid == 0x0123456789abcdefULL);
    ck_assert_uint_eq(nm, 2);
    ck_assert_uint_eq(nl, 3);
    for (size_t i = 0; i < 2; i++) {
        ck_assert_uint_eq(items[i].len, strlen(st_members[i]));
        ck_assert_mem_eq(items[i].data, st_members[i], items[i].len);
    }
    for (size_t i = 0; i < 3; i++) {
        ck_assert_uint_eq(items[2 + i].len, strlen(st_log[i]));
        ck_assert_mem_eq(items[2 + i].data, st_log[i], items[2 + i].len);
    }
    /* into the caller's buffer, not copies */
    ck_assert_ptr_eq(items[0].data, buf + 32);
    ck_assert_ptr_eq(items[4].data + items[4].len, buf + len);
}
END_TEST

START_TEST(state_decode_reads_request_ids_at_both_ends_of_the_range)
{
    static const char zero[] = "0000000000000000" "00000000" "00000000";
    static const char ones[] = "ffffffffffffffff" "00000000" "00000000";
    gh_plugin_bytes items[1];
    size_t nm, nl;
    uint64_t reqid = 1;

    ck_assert_int_eq(gh_bus_state_decode(zero, sizeof(zero) - 1, &reqid, items, 1, &nm, &nl), 0);
    ck_assert(reqid == 0);
    ck_assert_int_eq(gh_bus_state_decode(ones, sizeof(ones) - 1, &reqid, items, 1, &nm, &nl), 0);
    ck_assert(reqid == UINT64_MAX);
}
END_TEST

START_TEST(state_decode_accepts_zero_members_and_zero_log)
{
    static const char s[] = "000000000000002a" "00000000" "00000000";
    gh_plugin_bytes items[1] = { { "untouched", 9 } };
    size_t nm = 5, nl = 5;
    uint64_t reqid = 0;

    ck_assert_int_eq(gh_bus_state_decode(s, sizeof(s) - 1, &reqid, items, 1, &nm, &nl), 0);
    ck_assert(reqid == 42);
    ck_assert_uint_eq(nm, 0);
    ck_assert_uint_eq(nl, 0);
    ck_assert_uint_eq(items[0].len, 9);
    /* no room is needed for nothing */
    ck_assert_int_eq(gh_bus_state_decode(s, sizeof(s) - 1, &reqid, items, 0, &nm, &nl), 0);
    ck_assert_int_eq(gh_bus_state_decode(s, sizeof(s) - 1, &reqid, NULL, 0, &nm, &nl), 0);
}
END_TEST

START_TEST(state_decode_keeps_items_of_length_0)
{
    /* an empty member first, an empty log entry last (at the very end) */
    static const char s[] = "0000000000000001" "00000002" "00000000" "00000001x"
                            "00000001" "00000000";
    gh_plugin_bytes items[3];
    size_t nm, nl;
    uint64_t reqid;

    ck_assert_int_eq(gh_bus_state_decode(s, sizeof(s) - 1, &reqid, items, 3, &nm, &nl), 0);
    ck_assert_uint_eq(nm, 2);
    ck_assert_uint_eq(nl, 1);
    ck_assert_uint_eq(items[0].len, 0);
    ck_assert_ptr_eq(items[0].data, s + 32);
    ck_assert_uint_eq(items[1].len, 1);
    ck_assert_mem_eq(items[1].data, "x", 1);
    ck_assert_uint_eq(items[2].len, 0);
    ck_assert_ptr_eq(items[2].data, s + sizeof(s) - 1);    /* one past, never read */
}
END_TEST

START_TEST(state_decode_takes_any_bytes_inside_items)
{
    /* items that look like counts, upper case, NUL and 0xff are data */
    static const char s[] = "00000000000000ff" "00000001" "0000000c" "00000005ABCD"
                            "00000001" "00000004" "\0\xff\r\n";
    gh_plugin_bytes items[2];
    size_t nm, nl;
    uint64_t reqid;

    ck_assert_int_eq(gh_bus_state_decode(s, sizeof(s) - 1, &reqid, items, 2, &nm, &nl), 0);
    ck_assert_uint_eq(nm, 1);
    ck_assert_uint_eq(nl, 1);
    ck_assert_mem_eq(items[0].data, "00000005ABCD", 12);
    ck_assert_mem_eq(items[1].data, "\0\xff\r\n", 4);
}
END_TEST

START_TEST(state_decode_refuses_every_proper_prefix)
{
    char buf[512];
    size_t len = state_of(buf, sizeof(buf), 7, st_members, 2, st_log, 3);
    gh_plugin_bytes items[8];
    size_t nm, nl;
    uint64_t reqid;

    /* not incremental: a prefix is malformed, never "need more" */
    for (size_t n = 0; n < len; n++)
        ck_assert_msg(gh_bus_state_decode(buf, n, &reqid, items, 8, &nm, &nl) == GH_EPROTO,
                      "prefix of %zu", n);
    ck_assert_int_eq(gh_bus_state_decode(buf, len, &reqid, items, 8, &nm, &nl), 0);
    ck_assert_int_eq(gh_bus_state_decode(NULL, 0, &reqid, items, 8, &nm, &nl), GH_EPROTO);
}
END_TEST

START_TEST(state_decode_reads_nothing_past_the_input)
{
    long pg = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char buf[512];
    size_t len = state_of(buf, sizeof(buf), UINT64_MAX, st_members, 2, st_log, 3);
    gh_plugin_bytes items[8];
    size_t nm, nl;
    uint64_t reqid;

    ck_assert(map != MAP_FAILED);
    ck_assert_int_eq(mprotect(map + pg, (size_t)pg, PROT_NONE), 0);
    /* every prefix, and the whole, ending at the guard page */
    for (size_t n = 0; n <= len; n++) {
        char *p = map + pg - n;
        memcpy(p, buf, n);
        ck_assert_int_eq(gh_bus_state_decode(p, n, &reqid, items, 8, &nm, &nl),
                         n == len ? 0 : GH_EPROTO);
    }
    ck_assert_uint_eq(nm + nl, 5);
    ck_assert_ptr_eq(items[4].data + items[4].len, map + pg);
    /* too little room: decided at the end of the input too */
    ck_assert_int_eq(gh_bus_state_decode(map + pg - len, len, &reqid, items, 2, &nm, &nl),
                     GH_E2BIG);
    /* malformed at the last byte: a count or length running into the page */
    {
        static const char cut[] = "0000000000000001" "00000001" "0000000";
        char *p = map + pg - (sizeof(cut) - 1);
        memcpy(p, cut, sizeof(cut) - 1);
        ck_assert_int_eq(gh_bus_state_decode(p, sizeof(cut) - 1, &reqid, items, 8, &nm, &nl),
                         GH_EPROTO);
    }
    munmap(map, (size_t)pg * 2);
}
END_TEST

START_TEST(state_decode_returns_e2big_with_the_counts_then_decodes_with_room)
{
    enum { NM = 100, NL = 50 };
    const char *m[NM], *l[NL];
    char names[NM + NL][8];
    size_t cap = 16 + 8 + 8 + (NM + NL) * 16;
    char *buf = malloc(cap);
    gh_plugin_bytes *items = calloc(NM + NL + 1, sizeof(*items));
    size_t len, nm, nl;
    uint64_t reqid;

    ck_assert_ptr_nonnull(buf);
    ck_assert_ptr_nonnull(items);
    for (int i = 0; i < NM + NL; i++) {
        snprintf(names[i], sizeof(names[i]), "%c%d", i < NM ? 'm' : 'l', i);
        if (i < NM)
            m[i] = names[i];
        else
            l[i - NM] = names[i];
    }
    len = state_of(buf, cap, 0xfeedULL, m, NM, l, NL);
    /* each call writes no item at or past cap: a sentinel there stays */
    static const size_t caps[] = { 0, 1, 64, NM, NM + NL - 1 };
    for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
        memset(items, 0, (NM + NL + 1) * sizeof(*items));
        items[caps[c]] = (gh_plugin_bytes){ "sentinel", 8 };
        nm = nl = 0;
        reqid = 0;
        ck_assert_int_eq(gh_bus_state_decode(buf, len, &reqid, items, caps[c], &nm, &nl),
                         GH_E2BIG);
        ck_assert_uint_eq(nm, NM);
        ck_assert_uint_eq(nl, NL);
        ck_assert(reqid == 0xfeedULL);           /* the glue answers it on ENOMEM */
        ck_assert_uint_eq(items[caps[c]].len, 8);
        ck_assert_mem_eq(items[caps[c]].data, "sentinel", 8);
    }
    /* the counts it gave are enough */
    memset(items, 0, (NM + NL + 1) * sizeof(*items));
    items[NM + NL] = (gh_plugin_bytes){ "sentinel", 8 };
    ck_assert_int_eq(gh_bus_state_decode(buf, len, &reqid, items, nm + nl, &nm, &nl), 0);
    ck_assert_uint_eq(items[NM + NL].len, 8);
    for (int i = 0; i < NM + NL; i++) {
        ck_assert_uint_eq(items[i].len, strlen(names[i]));
        ck_assert_mem_eq(items[i].data, names[i], items[i].len);
    }
    /* and more room is fine */
    ck_assert_int_eq(gh_bus_state_decode(buf, len, &reqid, items, NM + NL + 1, &nm, &nl), 0);
    free(items);
    free(buf);
}
END_TEST

START_TEST(state_decode_refuses_upper_case_and_non_hex_digits)
{
    static const char bad[] = { 'A', 'B', 'F', 'g', 'G', 'x', 'X', ' ', '\t', '+', '-', ':',
                                '/', '`', '@', '.', '\0', '\x80', '\xff' };
    char buf[512];
    size_t len = state_of(buf, sizeof(buf), 0xabcdef, st_members, 2, st_log, 1);
    /* where the hex fields are: request id, counts, lengths */
    size_t fields[16], nf = 0, at = 0;
    gh_plugin_bytes items[8];
    size_t nm, nl;
    uint64_t reqid;

    fields[nf++] = at;
    at += 16;
    fields[nf++] = at;                              /* member count */
    at += 8;
    for (size_t i = 0; i < 2; i++) {
        fields[nf++] = at;
        at += 8 + strlen(st_members[i]);
    }
    fields[nf++] = at;                              /* log count */
    at += 8;
    fields[nf++] = at;
    at += 8 + strlen(st_log[0]);
    ck_assert_uint_eq(at, len);
    ck_assert_int_eq(gh_bus_state_decode(buf, len, &reqid, items, 8, &nm, &nl), 0);
    for (size_t f = 0; f < nf; f++) {
        size_t width = f == 0 ? 16 : 8;
        for (size_t d = 0; d < width; d++) {
            for (size_t b = 0; b < sizeof(bad); b++) {
                char save = buf[fields[f] + d];
                buf[fields[f] + d] = bad[b];
                ck_assert_msg(gh_bus_state_decode(buf, len, &reqid, items, 8, &nm, &nl) ==
                              GH_EPROTO, "field %zu digit %zu byte 0x%02x", f, d,
                              (unsigned)(unsigned char)bad[b]);
                buf[fields[f] + d] = save;
            }
        }
    }
    /* the same request id in upper case */
    {
        static const char up[] = "0000000000ABCDEF" "00000000" "00000000";
        ck_assert_int_eq(gh_bus_state_decode(up, sizeof(up) - 1, &reqid, items, 8, &nm, &nl),
                         GH_EPROTO);
    }
}
END_TEST

START_TEST(state_decode_refuses_trailing_bytes)
{
    static const char *const tails[] = { "x", "0", "\n", "00000000", "00000001a" };
    char buf[512];
    size_t len = state_of(buf, sizeof(buf), 1, st_members, 2, st_log, 3);
    gh_plugin_bytes items[8];
    size_t nm, nl;
    uint64_t reqid;

    for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        memcpy(buf + len, tails[i], strlen(tails[i]));
        ck_assert_int_eq(gh_bus_state_decode(buf, len + strlen(tails[i]), &reqid, items, 8,
                                             &nm, &nl), GH_EPROTO);
    }
    /* a NUL after the end counts as a byte too */
    buf[len] = '\0';
    ck_assert_int_eq(gh_bus_state_decode(buf, len + 1, &reqid, items, 8, &nm, &nl), GH_EPROTO);
}
END_TEST

START_TEST(state_decode_refuses_counts_and_lengths_larger_than_the_input)
{
    static const char *const bad[] = {
        /* two members announced, one there (and no log count) */
        "0000000000000001" "00000002" "00000001a",
        /* two members announced, one there, then what would be a log count */
        "0000000000000001" "00000002" "00000001a" "00000000",
        /* as many members as a count can say */
        "0000000000000001" "ffffffff" "00000000",
        "0000000000000001" "ffffffff" "00000000" "00000000" "00000000",
        /* the log: more announced than there are */
        "0000000000000001" "00000000" "00000003" "00000000" "00000000",
        "0000000000000001" "00000000" "ffffffff",
        /* an item longer than the rest of the input */
        "0000000000000001" "00000001" "00000004abc" "00000000",
        "0000000000000001" "00000001" "0000000dabc" "00000000",
        "0000000000000001" "00000001" "ffffffffabc" "00000000",
        "0000000000000001" "00000000" "00000001" "00000002a",
        "0000000000000001" "00000000" "00000001" "ffffffffa",
        /* no log count at all */
        "0000000000000001" "00000000",
        "0000000000000001" "00000001" "00000000",
        /* a short request id */
        "000000000000001" "00000000" "00000000",
        "000000000000001",
    };
    gh_plugin_bytes items[8];
    size_t nm, nl;
    uint64_t reqid;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(gh_bus_state_decode(bad[i], strlen(bad[i]), &reqid, items, 8, &nm,
                                          &nl) == GH_EPROTO, "case %zu", i);
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
    gh_bus_conf a = { .redis = "redis://h:1", .channel_prefix = "g:", .password = NULL,
                      .presence_ttl_ms = 10000 };
    gh_bus_conf b = a;

    ck_assert(gh_bus_conf_equal(&a, &b));
    b.password = "x";
    ck_assert(!gh_bus_conf_equal(&a, &b));
    b = a;
    b.channel_prefix = "h:";
    ck_assert(!gh_bus_conf_equal(&a, &b));
    b = a;
    b.presence_ttl_ms = 10001;
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

static int null_sink(void *subscriber, gh_topic_msg *f)
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

static int count_sink(void *subscriber, gh_topic_msg *f)
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
    tcase_add_test(tc, envelope_round_trips_skip_and_keep_up_to_their_limits);
    tcase_add_test(tc, envelope_decode_refuses_version_1_and_every_other_version);
    tcase_add_test(tc, envelope_header_refuses_control_opcodes);
    tcase_add_test(tc, envelope_decode_refuses_short_or_foreign_input);
    tcase_add_test(tc, envelope_decode_reads_nothing_past_the_input);
    tcase_add_test(tc, channel_is_prefix_namespace_colon_name);
    tcase_add_test(tc, channel_refuses_bad_names_and_small_buffers);
    tcase_add_test(tc, publish_encodes_one_resp_command);
    tcase_add_test(tc, publish_carries_an_envelope_that_decodes_to_the_message);
    tcase_add_test(tc, publish_size_is_exact_for_every_length_up_to_a_few_thousand);
    tcase_add_test(tc, publish_refuses_bad_opcode_and_overflow);
    tcase_add_test(tc, state_decode_reads_the_request_id_members_then_log);
    tcase_add_test(tc, state_decode_reads_request_ids_at_both_ends_of_the_range);
    tcase_add_test(tc, state_decode_accepts_zero_members_and_zero_log);
    tcase_add_test(tc, state_decode_keeps_items_of_length_0);
    tcase_add_test(tc, state_decode_takes_any_bytes_inside_items);
    tcase_add_test(tc, state_decode_refuses_every_proper_prefix);
    tcase_add_test(tc, state_decode_reads_nothing_past_the_input);
    tcase_add_test(tc, state_decode_returns_e2big_with_the_counts_then_decodes_with_room);
    tcase_add_test(tc, state_decode_refuses_upper_case_and_non_hex_digits);
    tcase_add_test(tc, state_decode_refuses_trailing_bytes);
    tcase_add_test(tc, state_decode_refuses_counts_and_lengths_larger_than_the_input);
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
