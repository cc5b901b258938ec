/* test_outq.c: the WebSocket output queue: copies, shared frames,
 * reservations and a prepend come out of a real socket in the order they
 * were queued, whole or written a little at a time; references are taken
 * and dropped exactly; a full socket leaves the queue as it was. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "outq.h"

static int sp[2];           /* sp[0] written by the queue, sp[1] read by the test */

static void setup(void)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    ck_assert_int_eq(fcntl(sp[0], F_SETFL, O_NONBLOCK), 0);
}

static void teardown(void)
{
    close(sp[0]);
    close(sp[1]);
}

static gh_frame_ref *frame_of(const char *text)
{
    gh_frame_ref *f = gh_frame_ref_new(strlen(text));

    ck_assert_ptr_nonnull(f);
    memcpy(f->data, text, strlen(text));
    return f;
}

/* Writes q out and reads it back, at most `step` bytes a write (the
 * socket's buffer is kept that small by reading exactly what came). */
static size_t drain(gh_outq *q, char *got, size_t cap)
{
    size_t have = 0;

    while (gh_outq_len(q) > 0) {
        size_t before = gh_outq_len(q);
        ssize_t n = gh_outq_sendmsg(q, sp[0]), r;

        ck_assert_int_gt(n, 0);
        ck_assert_uint_eq(gh_outq_len(q), before - (size_t)n);
        for (ssize_t left = n; left > 0; left -= r) {
            ck_assert_uint_le(have + (size_t)left, cap);
            r = read(sp[1], got + have, (size_t)left);
            ck_assert_int_gt(r, 0);
            have += (size_t)r;
        }
    }
    return have;
}

START_TEST(copies_refs_reservations_and_a_prepend_keep_their_order)
{
    gh_outq *q = gh_outq_new();
    gh_frame_ref *f = frame_of("[shared]");
    char got[256];
    uint8_t *p;

    ck_assert_ptr_nonnull(q);
    ck_assert_uint_eq(gh_outq_len(q), 0);
    ck_assert_int_eq(gh_outq_sendmsg(q, sp[0]), 0);
    ck_assert_int_eq(gh_outq_add(q, "ab", 2), GH_OK);
    ck_assert_int_eq(gh_outq_add(q, "cd", 2), GH_OK);
    ck_assert_int_eq(gh_outq_add_ref(q, f), GH_OK);
    ck_assert_uint_eq(f->refs, 2);
    ck_assert_int_eq(gh_outq_add(q, "", 0), GH_OK);
    p = gh_outq_reserve(q, 16);
    ck_assert_ptr_nonnull(p);
    memcpy(p, "ef????", 6);
    ck_assert_int_eq(gh_outq_commit(q, 2), GH_OK);       /* only "ef" */
    /* a reservation not committed (the deflater's fallback) queues nothing */
    ck_assert_ptr_nonnull(gh_outq_reserve(q, 32));
    ck_assert_int_eq(gh_outq_add_ref(q, f), GH_OK);
    ck_assert_int_eq(gh_outq_add(q, "gh", 2), GH_OK);
    ck_assert_int_eq(gh_outq_prepend(q, "<101>", 5), GH_OK);
    ck_assert_uint_eq(gh_outq_len(q), 5 + 4 + 8 + 2 + 8 + 2);
    ck_assert_uint_eq(drain(q, got, sizeof(got)), 29);
    ck_assert_mem_eq(got, "<101>abcd[shared]ef[shared]gh", 29);
    ck_assert_uint_eq(f->refs, 1);       /* both pieces gone */
    gh_outq_free(q);
    gh_frame_ref_release(NULL, 0, f);
}
END_TEST

START_TEST(a_piece_written_in_part_goes_on_from_where_it_stopped)
{
    gh_outq *q = gh_outq_new();
    enum { BIG = 3 << 20 };     /* more than a socket pair takes at once */
    gh_frame_ref *f = gh_frame_ref_new(BIG);
    char *got = malloc(BIG + 4);
    size_t have = 0, sent = 0;

    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(got);
    for (size_t i = 0; i < BIG; i++)
        f->data[i] = (uint8_t)(i * 7 + i / 251);
    ck_assert_int_eq(gh_outq_add(q, "x", 1), GH_OK);
    ck_assert_int_eq(gh_outq_add_ref(q, f), GH_OK);
    ck_assert_int_eq(gh_outq_add(q, "yz", 2), GH_OK);
    gh_frame_ref_release(NULL, 0, f);    /* the queue's reference keeps it */
    while (gh_outq_len(q) > 0) {
        ssize_t n = gh_outq_sendmsg(q, sp[0]), r;

        if (n < 0) {
            /* full: nothing taken; read some and go on */
            ck_assert_int_eq(errno, EAGAIN);
        } else {
            sent += (size_t)n;
        }
        ck_assert_uint_eq(gh_outq_len(q), BIG + 3 - sent);
        r = read(sp[1], got + have, 65536);
        ck_assert_int_gt(r, 0);
        have += (size_t)r;
    }
    while (have < BIG + 3) {
        ssize_t r = read(sp[1], got + have, BIG + 4 - have);
        ck_assert_int_gt(r, 0);
        have += (size_t)r;
    }
    ck_assert_uint_eq(have, BIG + 3);
    ck_assert_int_eq(got[0], 'x');
    for (size_t i = 0; i < BIG; i++)
        ck_assert_int_eq((uint8_t)got[1 + i], (uint8_t)(i * 7 + i / 251));
    ck_assert_mem_eq(got + 1 + BIG, "yz", 2);
    gh_outq_free(q);
    free(got);
}
END_TEST

START_TEST(thousands_of_pieces_grow_the_ring_and_come_out_in_order)
{
    gh_outq *q = gh_outq_new();
    gh_frame_ref *f[3] = { frame_of("A"), frame_of("BB"), frame_of("CCC") };
    static char want[40000], got[40000];
    size_t n = 0;

    for (int i = 0; i < 5000; i++) {
        gh_frame_ref *fr = f[i % 3];

        ck_assert_int_eq(gh_outq_add_ref(q, fr), GH_OK);
        memcpy(want + n, fr->data, fr->len);
        n += fr->len;
        if (i % 7 == 0) {
            char c = (char)('a' + i % 26);
            ck_assert_int_eq(gh_outq_add(q, &c, 1), GH_OK);
            want[n++] = c;
        }
        if (i % 1000 == 999) {     /* some out in the middle: the ring wraps */
            size_t before = gh_outq_len(q);
            ssize_t w = gh_outq_sendmsg(q, sp[0]);
            ck_assert_int_gt(w, 0);
            ck_assert_uint_eq(gh_outq_len(q), before - (size_t)w);
            ck_assert_int_eq(read(sp[1], got, (size_t)w), w);
            ck_assert_mem_eq(got, want, (size_t)w);
            memmove(want, want + w, n - (size_t)w);
            n -= (size_t)w;
        }
    }
    ck_assert_uint_eq(gh_outq_len(q), n);
    ck_assert_uint_eq(drain(q, got, sizeof(got)), n);
    ck_assert_mem_eq(got, want, n);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(f[i]->refs, 1);
        gh_frame_ref_release(NULL, 0, f[i]);
    }
    gh_outq_free(q);
}
END_TEST

START_TEST(freeing_a_queue_drops_its_references)
{
    gh_outq *q = gh_outq_new();
    gh_frame_ref *f = frame_of("frame");

    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(gh_outq_add_ref(q, f), GH_OK);
        ck_assert_int_eq(gh_outq_add(q, "c", 1), GH_OK);
    }
    ck_assert_uint_eq(f->refs, 101);
    gh_outq_free(q);
    ck_assert_uint_eq(f->refs, 1);
    gh_frame_ref_release(NULL, 0, f);
    gh_outq_free(NULL);
}
END_TEST

START_TEST(large_copies_and_reservations_get_blocks_of_their_own)
{
    gh_outq *q = gh_outq_new();
    static char big[20000], got[30000];
    uint8_t *p;

    memset(big, 'b', sizeof(big));
    ck_assert_int_eq(gh_outq_add(q, "s", 1), GH_OK);
    ck_assert_int_eq(gh_outq_add(q, big, sizeof(big)), GH_OK);
    p = gh_outq_reserve(q, 9000);
    ck_assert_ptr_nonnull(p);
    memset(p, 'r', 9000);
    ck_assert_int_eq(gh_outq_commit(q, 9000), GH_OK);
    ck_assert_int_eq(gh_outq_add(q, "e", 1), GH_OK);
    ck_assert_uint_eq(drain(q, got, sizeof(got)), 29002);
    ck_assert_int_eq(got[0], 's');
    for (size_t i = 1; i <= 20000; i++)
        ck_assert_int_eq(got[i], 'b');
    for (size_t i = 20001; i <= 29000; i++)
        ck_assert_int_eq(got[i], 'r');
    ck_assert_int_eq(got[29001], 'e');
    /* empty again: the same queue serves on */
    ck_assert_int_eq(gh_outq_add(q, "again", 5), GH_OK);
    ck_assert_uint_eq(drain(q, got, sizeof(got)), 5);
    ck_assert_mem_eq(got, "again", 5);
    gh_outq_free(q);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("outq");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, copies_refs_reservations_and_a_prepend_keep_their_order);
    tcase_add_test(tc, a_piece_written_in_part_goes_on_from_where_it_stopped);
    tcase_add_test(tc, thousands_of_pieces_grow_the_ring_and_come_out_in_order);
    tcase_add_test(tc, freeing_a_queue_drops_its_references);
    tcase_add_test(tc, large_copies_and_reservations_get_blocks_of_their_own);
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
