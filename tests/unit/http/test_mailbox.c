/* test_mailbox.c: a loop's mailbox (http/loop.c): tasks run on the loop in
 * the order posted, one wake-up for a batch; posts made from a loop's own
 * callbacks (gh_loop_set_current) wake their target when that loop's wake
 * event runs, or gh_loop_wake_now(), or when the thread leaves the loop,
 * so the target takes the whole batch at once. Two loops driven by hand on
 * this thread, with EVLOOP_NONBLOCK turns. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "err.h"
#include "loop.h"

static gh_loop loops[2];
static gh_loop *peers[2];

typedef struct ran {
    int order[16];
    int n;
    int batches;            /* on_mail runs that found something */
} ran;

static ran got;

static void task(gh_loop *loop, void *arg)
{
    (void)loop;
    ck_assert_int_lt(got.n, 16);
    got.order[got.n++] = (int)(intptr_t)arg;
}

/* One turn of loop l that does not wait; the batches its mailbox ran. */
static void turn(int l)
{
    int before = got.n;

    ck_assert_int_ge(event_base_loop(loops[l].base, EVLOOP_NONBLOCK), 0);
    if (got.n > before)
        got.batches++;
}

static void setup(void)
{
    memset(loops, 0, sizeof(loops));
    memset(&got, 0, sizeof(got));
    for (unsigned i = 0; i < 2; i++) {
        loops[i].id = i;
        loops[i].peers = peers;
        loops[i].npeers = 2;
        peers[i] = &loops[i];
        ck_assert_ptr_nonnull(loops[i].base = event_base_new());
        ck_assert_int_eq(gh_loop_mailbox_new(&loops[i]), GH_OK);
    }
}

static void teardown(void)
{
    gh_loop_set_current(NULL);
    for (unsigned i = 0; i < 2; i++) {
        gh_loop_mailbox_free(&loops[i]);
        event_base_free(loops[i].base);
    }
}

START_TEST(a_post_from_no_loop_wakes_the_target_at_once)
{
    ck_assert_int_eq(gh_loop_post(&loops[1], task, (void *)1), GH_OK);
    ck_assert_int_eq(gh_loop_post(&loops[1], task, (void *)2), GH_OK);
    turn(1);
    ck_assert_int_eq(got.n, 2);
    ck_assert_int_eq(got.order[0], 1);
    ck_assert_int_eq(got.order[1], 2);
}
END_TEST

START_TEST(posts_from_a_loop_wake_the_target_once_its_wake_event_runs)
{
    gh_loop_set_current(&loops[0]);
    for (int i = 1; i <= 3; i++)
        ck_assert_int_eq(gh_loop_post(&loops[1], task, (void *)(intptr_t)i), GH_OK);
    turn(1);
    ck_assert_int_eq(got.n, 0);             /* not woken yet */
    turn(0);                                /* loop 0's wake event: writes the eventfd */
    turn(1);
    ck_assert_int_eq(got.n, 3);
    ck_assert_int_eq(got.batches, 1);       /* the three at once */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(got.order[i], i + 1);
    /* and again: the event is armed by the next first post */
    ck_assert_int_eq(gh_loop_post(&loops[1], task, (void *)4), GH_OK);
    turn(1);
    ck_assert_int_eq(got.n, 3);
    turn(0);
    turn(1);
    ck_assert_int_eq(got.n, 4);
    ck_assert_int_eq(got.order[3], 4);
}
END_TEST

START_TEST(wake_now_and_leaving_the_loop_write_what_is_held)
{
    gh_loop_set_current(&loops[0]);
    ck_assert_int_eq(gh_loop_post(&loops[1], task, (void *)1), GH_OK);
    gh_loop_wake_now(&loops[0]);
    turn(1);
    ck_assert_int_eq(got.n, 1);
    ck_assert_int_eq(gh_loop_post(&loops[1], task, (void *)2), GH_OK);
    gh_loop_set_current(NULL);              /* the worker's thread leaves its loop */
    turn(1);
    ck_assert_int_eq(got.n, 2);
    /* from no loop now: at once */
    ck_assert_int_eq(gh_loop_post(&loops[1], task, (void *)3), GH_OK);
    turn(1);
    ck_assert_int_eq(got.n, 3);
}
END_TEST

START_TEST(a_loop_posting_to_itself_and_to_another_wakes_both)
{
    gh_loop_set_current(&loops[0]);
    ck_assert_int_eq(gh_loop_post(&loops[0], task, (void *)1), GH_OK);
    ck_assert_int_eq(gh_loop_post(&loops[1], task, (void *)2), GH_OK);
    ck_assert_int_eq(gh_loop_post(&loops[0], task, (void *)3), GH_OK);
    turn(0);                                /* the wake event runs; the eventfd next */
    turn(0);
    turn(1);
    ck_assert_int_eq(got.n, 3);
    ck_assert_int_eq(got.order[0], 1);
    ck_assert_int_eq(got.order[1], 3);
    ck_assert_int_eq(got.order[2], 2);
}
END_TEST

START_TEST(freeing_a_loop_that_holds_wake_ups_writes_them)
{
    gh_loop_set_current(&loops[0]);
    ck_assert_int_eq(gh_loop_post(&loops[1], task, (void *)1), GH_OK);
    gh_loop_mailbox_free(&loops[0]);        /* also forgets it as current */
    ck_assert_int_eq(gh_loop_mailbox_new(&loops[0]), GH_OK);
    turn(1);
    ck_assert_int_eq(got.n, 1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mailbox");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_post_from_no_loop_wakes_the_target_at_once);
    tcase_add_test(tc, posts_from_a_loop_wake_the_target_once_its_wake_event_runs);
    tcase_add_test(tc, wake_now_and_leaving_the_loop_write_what_is_held);
    tcase_add_test(tc, a_loop_posting_to_itself_and_to_another_wakes_both);
    tcase_add_test(tc, freeing_a_loop_that_holds_wake_ups_writes_them);
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
