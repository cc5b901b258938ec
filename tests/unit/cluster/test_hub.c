/* test_hub.c: topics across workers (cluster/hub.c) on two loops run by
 * hand in this one thread: a worker's mailbox is run when the test says,
 * so every interleaving the test wants happens. What is checked: one
 * order per topic on every worker whatever order the workers run in, a
 * publisher's own worker delivering at once when nothing waits for it,
 * messages only to workers with subscribers, and the topic's bit going
 * with its last subscriber; what gh_hub_each() tells of a topic (every
 * worker's subscribers, its messages once); a worker behind with a
 * publisher's messages pausing that publisher, and the resume once it
 * caught up. Topic state across workers
 * (members, log, join) is tested with the chat plugin in
 * tests/integration/test_workers.py and test_status.py. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "err.h"
#include "hub.h"
#include "topic.h"
#include "tstate.h"
#include "wsframe.h"

#define MAXGOT 64

typedef struct sub {
    const char   *name;
    gh_topic_sub *subs;
    char          got[MAXGOT][16];
    size_t        ngot;
    size_t        nbig;             /* messages of 16 bytes and more: counted only */
} sub;

static int sink(void *subscriber, gh_topic_msg *m)
{
    sub *s = subscriber;

    if (m->len >= sizeof(s->got[0])) {
        s->nbig++;
        return 0;
    }
    ck_assert_uint_lt(s->ngot, MAXGOT);
    ck_assert_uint_lt(m->len, sizeof(s->got[0]));
    memcpy(s->got[s->ngot], m->data, m->len);
    s->got[s->ngot][m->len] = '\0';
    s->ngot++;
    return 0;
}

static gh_loop loops[2];
static gh_loop *peers[2];
static gh_hub *hub;
static unsigned resumed[2];          /* publishers_resume calls, per loop */

static void on_resume(gh_loop *loop)
{
    resumed[loop->id]++;
}

static void setup(void)
{
    memset(loops, 0, sizeof(loops));
    for (unsigned i = 0; i < 2; i++) {
        loops[i].id = i;
        loops[i].peers = peers;
        loops[i].npeers = 2;
        peers[i] = &loops[i];
        ck_assert_ptr_nonnull(loops[i].base = event_base_new());
        ck_assert_int_eq(gh_loop_mailbox_new(&loops[i]), GH_OK);
        ck_assert_ptr_nonnull(loops[i].topics = gh_topics_create(sink));
        ck_assert_int_eq(gh_tstate_new(&loops[i]), GH_OK);
        loops[i].publishers_resume = on_resume;
        resumed[i] = 0;
    }
    ck_assert_int_eq(gh_hub_new(peers, 2, &hub), GH_OK);
}

static void teardown(void)
{
    for (unsigned i = 0; i < 2; i++)
        while (gh_loop_mailbox_run(&loops[i]))
            ;
    gh_hub_free(hub);
    for (unsigned i = 0; i < 2; i++) {
        gh_tstate_free(&loops[i]);
        gh_topics_destroy(loops[i].topics);
        gh_loop_mailbox_free(&loops[i]);
        event_base_free(loops[i].base);
    }
}

static void subscribe(unsigned w, sub *s, const char *topic)
{
    ck_assert_int_eq(gh_topics_subscribe(loops[w].topics, "ns", topic, strlen(topic), s,
                                         &s->subs), GH_OK);
}

static void publish(unsigned w, const char *topic, const char *text)
{
    ck_assert_int_eq(gh_topics_publish(loops[w].topics, "ns", topic, strlen(topic),
                                       GH_WS_OP_TEXT, text, strlen(text)), GH_OK);
}

static void run(unsigned w)
{
    while (gh_loop_mailbox_run(&loops[w]))
        ;
}

static void drop(unsigned w, sub *s)
{
    gh_topics_unsubscribe_all(loops[w].topics, &s->subs);
}

static void same_order(const sub *a, const sub *b, size_t n)
{
    ck_assert_uint_eq(a->ngot, n);
    ck_assert_uint_eq(b->ngot, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(a->got[i], b->got[i]);
}

START_TEST(a_publish_reaches_every_worker_with_a_subscriber)
{
    sub a = { .name = "a" }, b = { .name = "b" };

    subscribe(0, &a, "room");
    subscribe(1, &b, "room");
    publish(0, "room", "hello");
    /* the publisher's worker has it at once; the other once it runs */
    ck_assert_uint_eq(a.ngot, 1);
    ck_assert_uint_eq(b.ngot, 0);
    run(1);
    ck_assert_uint_eq(b.ngot, 1);
    ck_assert_str_eq(b.got[0], "hello");
    /* nothing went through worker 0's mailbox */
    ck_assert(!gh_loop_mailbox_run(&loops[0]));
    drop(0, &a);
    drop(1, &b);
}
END_TEST

START_TEST(publishers_on_two_workers_give_one_order_whatever_runs_first)
{
    for (int first = 0; first < 2; first++) {
        sub a = { .name = "a" }, b = { .name = "b" };

        subscribe(0, &a, "room");
        subscribe(1, &b, "room");
        /* interleaved on both workers before either runs its mailbox */
        publish(0, "room", "a1");
        publish(1, "room", "b1");
        publish(0, "room", "a2");
        publish(1, "room", "b2");
        publish(0, "room", "a3");
        run((unsigned)first);
        run((unsigned)!first);
        run((unsigned)first);
        same_order(&a, &b, 5);
        /* and that order is the one they were sequenced in */
        ck_assert_str_eq(a.got[0], "a1");
        ck_assert_str_eq(a.got[1], "b1");
        ck_assert_str_eq(a.got[2], "a2");
        ck_assert_str_eq(a.got[3], "b2");
        ck_assert_str_eq(a.got[4], "a3");
        drop(0, &a);
        drop(1, &b);
    }
}
END_TEST

START_TEST(a_worker_with_something_pending_takes_its_own_publish_in_turn)
{
    sub a = { .name = "a" }, b = { .name = "b" };

    subscribe(0, &a, "room");
    subscribe(1, &b, "room");
    publish(1, "room", "from1");        /* waits in worker 0's mailbox */
    publish(0, "room", "from0");        /* must not overtake it on worker 0 */
    ck_assert_uint_eq(a.ngot, 0);
    run(0);
    run(1);
    same_order(&a, &b, 2);
    ck_assert_str_eq(a.got[0], "from1");
    ck_assert_str_eq(a.got[1], "from0");
    /* nothing pending now: worker 0 delivers its own at once again */
    publish(0, "room", "now");
    ck_assert_uint_eq(a.ngot, 3);
    run(1);
    same_order(&a, &b, 3);
    drop(0, &a);
    drop(1, &b);
}
END_TEST

START_TEST(workers_without_subscribers_get_nothing)
{
    sub a = { .name = "a" }, b = { .name = "b" };

    subscribe(0, &a, "room");
    subscribe(1, &b, "other");
    publish(0, "room", "x");
    publish(1, "room", "y");            /* no subscriber on worker 1: to 0 only */
    ck_assert(!gh_loop_mailbox_run(&loops[1]));
    run(0);
    ck_assert_uint_eq(a.ngot, 2);
    ck_assert_uint_eq(b.ngot, 0);
    /* the last subscriber of a worker gone, it is left out */
    drop(1, &b);
    subscribe(1, &b, "room");
    drop(1, &b);
    publish(0, "room", "z");
    ck_assert(!gh_loop_mailbox_run(&loops[1]));
    ck_assert_uint_eq(b.ngot, 0);
    ck_assert_uint_eq(a.ngot, 3);
    drop(0, &a);
}
END_TEST

START_TEST(a_topic_nobody_subscribes_to_is_published_to_no_one)
{
    publish(0, "empty", "x");
    ck_assert(!gh_loop_mailbox_run(&loops[0]));
    ck_assert(!gh_loop_mailbox_run(&loops[1]));
}
END_TEST

START_TEST(many_topics_keep_their_own_order)
{
    static const char *const topics[] = { "t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7" };
    sub a[8], b[8];
    char text[16];

    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    for (int i = 0; i < 8; i++) {
        subscribe(0, &a[i], topics[i]);
        subscribe(1, &b[i], topics[i]);
    }
    for (int k = 0; k < 6; k++)
        for (int i = 0; i < 8; i++) {
            snprintf(text, sizeof(text), "%d-%d", i, k);
            publish((unsigned)((i + k) % 2), topics[i], text);
        }
    run(1);
    run(0);
    run(1);
    for (int i = 0; i < 8; i++) {
        same_order(&a[i], &b[i], 6);
        drop(0, &a[i]);
        drop(1, &b[i]);
    }
}
END_TEST

/* What gh_hub_each() says of one topic, and how many it visited. */
typedef struct seen {
    const char *want;
    int         topics;
    int         found;
    uint64_t    subscribers, messages;
    size_t      members;
} seen;

static void tally(void *arg, const gh_hub_topic *t)
{
    seen *s = arg;

    s->topics++;
    ck_assert_str_eq(t->ns, "ns");
    if (t->len == strlen(s->want) && memcmp(t->name, s->want, t->len) == 0) {
        s->found++;
        s->subscribers = t->subscribers;
        s->messages = t->messages;
        s->members = t->members;
    }
}

static seen look(const char *topic)
{
    seen s = { .want = topic };

    gh_hub_each(hub, tally, &s);
    return s;
}

START_TEST(each_tells_every_workers_subscribers_and_the_messages_once)
{
    sub a = { .name = "a" }, a2 = { .name = "a2" }, b = { .name = "b" }, c = { .name = "c" };
    seen s;

    s = look("room");
    ck_assert_int_eq(s.topics, 0);
    subscribe(0, &a, "room");
    subscribe(0, &a2, "room");
    subscribe(1, &b, "room");
    subscribe(1, &c, "other");
    publish(0, "room", "one");
    publish(1, "room", "two");
    publish(1, "nobody", "lost");       /* no subscriber anywhere: not a room */
    s = look("room");
    ck_assert_int_eq(s.topics, 2);
    ck_assert_int_eq(s.found, 1);
    ck_assert_uint_eq(s.subscribers, 3);
    ck_assert_uint_eq(s.messages, 2);   /* published twice, delivered on two workers */
    ck_assert_uint_eq(s.members, 0);
    run(0);
    run(1);
    /* counts follow subscribes and unsubscribes on each worker */
    drop(0, &a2);
    ck_assert_uint_eq(look("room").subscribers, 2);
    drop(1, &b);                        /* worker 1's last: its count goes with its bit */
    ck_assert_uint_eq(look("room").subscribers, 1);
    subscribe(1, &b, "room");
    ck_assert_uint_eq(look("room").subscribers, 2);
    drop(0, &a);
    drop(1, &b);
    s = look("room");
    ck_assert_int_eq(s.found, 0);       /* gone with its last subscriber */
    ck_assert_int_eq(s.topics, 1);
    drop(1, &c);
    ck_assert_int_eq(look("other").topics, 0);
}
END_TEST

START_TEST(a_publish_that_finds_a_worker_behind_tells_its_loop_and_the_catch_up_resumes)
{
    enum { MSG = 1 << 20, N = 40 };  /* 40 MiB: past the 32 MiB a worker may be behind */
    sub b = { .name = "b" };
    char *big = malloc(MSG);
    unsigned first = 0;

    ck_assert_ptr_nonnull(big);
    memset(big, 'x', MSG);
    subscribe(1, &b, "room");
    for (unsigned i = 1; i <= N; i++) {
        loops[0].hub_congested = false;
        ck_assert_int_eq(gh_topics_publish(loops[0].topics, "ns", "room", 4, GH_WS_OP_TEXT,
                                           big, MSG), GH_OK);
        if (loops[0].hub_congested && first == 0)
            first = i;
        /* once behind, every publish says so until worker 1 catches up */
        ck_assert(!!loops[0].hub_congested == (first != 0));
    }
    ck_assert_uint_eq(first, 32);       /* the 32nd MiB with its headers */
    ck_assert_uint_eq(b.nbig, 0);
    ck_assert_uint_eq(resumed[0] + resumed[1], 0);
    run(1);                             /* worker 1 catches up */
    ck_assert_uint_eq(b.nbig, N);
    run(0);
    ck_assert_uint_eq(resumed[0], 1);   /* every worker is told, once */
    ck_assert_uint_eq(resumed[1], 1);
    loops[0].hub_congested = false;
    publish(0, "room", "calm");
    ck_assert(!loops[0].hub_congested);
    run(1);
    ck_assert_uint_eq(b.ngot, 1);
    drop(1, &b);
    free(big);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("hub");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_publish_reaches_every_worker_with_a_subscriber);
    tcase_add_test(tc, publishers_on_two_workers_give_one_order_whatever_runs_first);
    tcase_add_test(tc, a_worker_with_something_pending_takes_its_own_publish_in_turn);
    tcase_add_test(tc, workers_without_subscribers_get_nothing);
    tcase_add_test(tc, a_topic_nobody_subscribes_to_is_published_to_no_one);
    tcase_add_test(tc, many_topics_keep_their_own_order);
    tcase_add_test(tc, each_tells_every_workers_subscribers_and_the_messages_once);
    tcase_add_test(tc, a_publish_that_finds_a_worker_behind_tells_its_loop_and_the_catch_up_resumes);
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
