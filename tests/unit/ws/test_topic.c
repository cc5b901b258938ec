/* test_topic.c: topics: subscribe/unsubscribe bookkeeping, namespaces,
 * and a publish that frames once and hands the same bytes to every
 * subscriber, with reference counting that frees the frame when the last
 * holder lets go; held subscriptions, the publisher's skip and
 * subscription serials; the frames of a message several workers deliver
 * (a gh_frame_set) made once for all of them, each worker holding its own
 * handles. A fake sink stands in for connections. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "topic.h"
#include "wsframe.h"

#define MAX_HELD 1024

typedef struct {
    int           id;
    bool          refuse;          /* the sink says no */
    unsigned      key;             /* variant_sink: 0 plain, else a variant's key */
    gh_topic_sub *subs;            /* its subscriptions */
    int           got;
} fake_sub;

static gh_frame_ref *held[MAX_HELD];
static void *held_by[MAX_HELD];
static int nheld;

static int fake_sink(void *subscriber, gh_topic_msg *m)
{
    fake_sub *s = subscriber;
    gh_frame_ref *f;

    if (s->refuse)
        return -ENOBUFS;
    f = gh_topic_msg_plain(m);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_lt(nheld, MAX_HELD);
    f->refs++;
    held[nheld] = f;
    held_by[nheld] = s;
    nheld++;
    s->got++;
    return 0;
}

/* A sink in the way of wsconn's compressed frames: a subscriber with a key
 * wants the variant of that key, made on first use (the "compression"
 * writes the key into a one-byte frame; key 7 "does not shrink": the plain
 * frame goes) and kept in the message. */
static int variants_made;       /* atomic: the threaded test's workers count too */

static gh_frame_ref *make_variant(void *ctx, const gh_topic_msg *m, int *err)
{
    const fake_sub *s = ctx;
    gh_frame_ref *f;

    (void)m;
    __atomic_add_fetch(&variants_made, 1, __ATOMIC_RELAXED);
    if (s->key == 7)
        return NULL;            /* *err stays 0: the plain frame */
    if ((f = gh_frame_ref_new(1)) == NULL) {
        *err = GH_ENOMEM;
        return NULL;
    }
    f->data[0] = (uint8_t)s->key;
    return f;
}

static int variant_sink(void *subscriber, gh_topic_msg *m)
{
    fake_sub *s = subscriber;
    gh_frame_ref *f;
    int err;

    if (s->key == 0)
        return fake_sink(subscriber, m);
    f = gh_topic_msg_variant(m, s->key, make_variant, s, &err);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_lt(nheld, MAX_HELD);
    held[nheld] = f;
    held_by[nheld] = s;
    nheld++;
    s->got++;
    return 0;
}

static void release_all(void)
{
    for (int i = 0; i < nheld; i++)
        gh_frame_ref_release(NULL, 0, held[i]);
    nheld = 0;
}

static struct gh_topics *t;

static void setup(void)
{
    nheld = 0;
    t = gh_topics_create(fake_sink);
    ck_assert_ptr_nonnull(t);
}

static void teardown(void)
{
    release_all();
    gh_topics_destroy(t);
}

START_TEST(publish_frames_once_and_shares_the_same_bytes_with_every_subscriber)
{
    fake_sub s[5] = { { .id = 0 }, { .id = 1 }, { .id = 2 }, { .id = 3 }, { .id = 4 } };

    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(gh_topics_subscribe(t, "chat", "room", 4, &s[i], &s[i].subs), 0);
    ck_assert_int_eq(gh_topics_deliver(t, "chat", "room", 4, GH_WS_OP_TEXT, "hello", 5), 5);
    ck_assert_int_eq(nheld, 5);
    for (int i = 1; i < 5; i++)
        ck_assert_ptr_eq(held[i], held[0]);            /* one frame, shared */
    ck_assert_uint_eq(held[0]->refs, 5);               /* publish dropped its own */
    ck_assert_uint_eq(held[0]->len, 7);
    ck_assert_int_eq(held[0]->data[0], 0x81);          /* FIN | TEXT, unmasked */
    ck_assert_int_eq(held[0]->data[1], 5);
    ck_assert_int_eq(memcmp(held[0]->data + 2, "hello", 5), 0);
    for (int i = 0; i < 5; i++)
        gh_topics_unsubscribe_all(t, &s[i].subs);
}
END_TEST

START_TEST(each_variant_is_made_once_per_publish_and_shared)
{
    struct gh_topics *tv = gh_topics_create(variant_sink);
    fake_sub s[12];

    ck_assert_ptr_nonnull(tv);
    variants_made = 0;
    /* keys 0 (plain) and 1..5, two subscribers each: only four variants fit
     * in a message, so the fifth key is made per subscriber */
    for (int i = 0; i < 12; i++) {
        s[i] = (fake_sub){ .id = i, .key = (unsigned)(i % 6) };
        ck_assert_int_eq(gh_topics_subscribe(tv, "p", "x", 1, &s[i], &s[i].subs), 0);
    }
    ck_assert_int_eq(gh_topics_deliver(tv, "p", "x", 1, GH_WS_OP_TEXT, "hi", 2), 12);
    ck_assert_int_eq(variants_made, 4 + 2);
    for (int i = 0; i < nheld; i++) {
        fake_sub *a = held_by[i];
        for (int j = 0; j < nheld; j++) {
            fake_sub *b = held_by[j];
            if (a->key == b->key && a->key != 5)
                ck_assert_ptr_eq(held[i], held[j]);     /* shared */
            else if (a != b)
                ck_assert_ptr_ne(held[i], held[j]);
        }
        /* the delivery dropped its own references: holders only */
        ck_assert_uint_eq(held[i]->refs, ((fake_sub *)held_by[i])->key == 5 ? 1 : 2);
    }
    release_all();              /* ASan: every frame freed once */
    for (int i = 0; i < 12; i++)
        gh_topics_unsubscribe_all(tv, &s[i].subs);
    gh_topics_destroy(tv);
}
END_TEST

START_TEST(a_variant_that_does_not_shrink_is_the_plain_frame_kept_under_its_key)
{
    struct gh_topics *tv = gh_topics_create(variant_sink);
    fake_sub s[4] = { { .key = 0 }, { .key = 7 }, { .key = 7 }, { .key = 0 } };

    variants_made = 0;
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(gh_topics_subscribe(tv, "p", "x", 1, &s[i], &s[i].subs), 0);
    ck_assert_int_eq(gh_topics_deliver(tv, "p", "x", 1, GH_WS_OP_TEXT, "hi", 2), 4);
    ck_assert_int_eq(variants_made, 1);                 /* asked once for key 7 */
    for (int i = 1; i < 4; i++)
        ck_assert_ptr_eq(held[i], held[0]);             /* everyone: the plain frame */
    ck_assert_uint_eq(held[0]->refs, 4);
    ck_assert_int_eq(held[0]->data[0], 0x81);
    release_all();
    for (int i = 0; i < 4; i++)
        gh_topics_unsubscribe_all(tv, &s[i].subs);
    gh_topics_destroy(tv);
}
END_TEST

START_TEST(workers_delivering_one_set_make_each_frame_once_and_share_its_bytes)
{
    struct gh_topics *w[2] = { gh_topics_create(variant_sink), gh_topics_create(variant_sink) };
    fake_sub s[2][4];
    gh_frame_set set;
    gh_frame_ref *plain, *v1 = NULL;

    variants_made = 0;
    ck_assert_int_eq(gh_frame_set_init(&set, GH_WS_OP_TEXT, "hello", 5), GH_OK);
    plain = set.plain;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 4; i++) {
            s[k][i] = (fake_sub){ .id = i, .key = (unsigned[]){ 0, 1, 7, 1 }[i] };
            ck_assert_int_eq(gh_topics_subscribe(w[k], "p", "x", 1, &s[k][i], &s[k][i].subs), 0);
        }
    ck_assert_int_eq(gh_topics_deliver_set(w[0], "p", "x", 1, &set, UINT64_MAX, 0), 4);
    ck_assert_int_eq(gh_topics_deliver_set(w[1], "p", "x", 1, &set, UINT64_MAX, 0), 4);
    ck_assert_int_eq(variants_made, 2);                 /* keys 1 and 7, once for both */
    ck_assert_int_eq(nheld, 8);
    for (int i = 0; i < nheld; i++) {
        fake_sub *a = held_by[i];

        /* every holder has a handle of its worker's on a frame of the set */
        ck_assert_ptr_nonnull(held[i]->under);
        ck_assert_ptr_eq(gh_frame_bytes(held[i]), held[i]->under->data);
        if (a->key == 1) {
            if (v1 == NULL)
                v1 = held[i]->under;
            ck_assert_ptr_eq(held[i]->under, v1);       /* one frame for both workers */
            ck_assert_int_eq(gh_frame_bytes(held[i])[0], 1);
            ck_assert_uint_eq(held[i]->len, 1);
        } else {
            ck_assert_ptr_eq(held[i]->under, plain);
            ck_assert_uint_eq(held[i]->len, 7);
            ck_assert_int_eq(memcmp(gh_frame_bytes(held[i]), "\x81\x05hello", 7), 0);
        }
        for (int j = 0; j < i; j++)                     /* a handle is one worker's */
            if (held[j] == held[i])
                ck_assert_int_eq(held_by[j] >= (void *)s[1], held_by[i] >= (void *)s[1]);
    }
    /* atomic counts: the set's own, one per worker's handle, and the
     * plain frame's second slot in the set: key 7's */
    ck_assert_uint_eq(plain->refs, 2 + 2);
    ck_assert_uint_eq(v1->refs, 1 + 2);
    release_all();
    ck_assert_uint_eq(plain->refs, 2);
    ck_assert_uint_eq(v1->refs, 1);
    gh_frame_set_clear(&set);                           /* ASan: both freed, once */
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 4; i++)
            gh_topics_unsubscribe_all(w[k], &s[k][i].subs);
        gh_topics_destroy(w[k]);
    }
}
END_TEST

/* The threaded case: workers delivering one set at the same moment. Each
 * thread's sink checks the bytes and lets go at once. */
#define TWORKERS 4
#define TROUNDS  200

typedef struct {
    struct gh_topics  *topics;
    fake_sub           subs[8];
    gh_frame_set     **set;
    pthread_barrier_t *go, *done;
    int                wrong;
} tworker;

static int checking_sink(void *subscriber, gh_topic_msg *m)
{
    fake_sub *s = subscriber;
    gh_frame_ref *f;
    int err;

    f = s->key == 0 ? gh_topic_msg_plain(m) : gh_topic_msg_variant(m, s->key, make_variant, s,
                                                                   &err);
    if (f == NULL)
        return GH_ENOMEM;
    if (s->key == 0)
        f->refs++;
    if (s->key == 0 || s->key == 7 ? f->len != 2 + m->len || gh_frame_bytes(f)[0] != 0x82
                                   : f->len != 1 || gh_frame_bytes(f)[0] != s->key)
        s->got = -1;
    gh_frame_ref_release(NULL, 0, f);
    return 0;
}

static void *tworker_run(void *arg)
{
    tworker *w = arg;

    for (int r = 0; r < TROUNDS; r++) {
        pthread_barrier_wait(w->go);
        if (gh_topics_deliver_set(w->topics, "p", "x", 1, *w->set, UINT64_MAX, 0) != 8)
            w->wrong++;
        pthread_barrier_wait(w->done);
    }
    return NULL;
}

START_TEST(workers_delivering_one_set_at_once_make_each_variant_once)
{
    tworker w[TWORKERS];
    pthread_t th[TWORKERS];
    pthread_barrier_t go, done;
    gh_frame_set set, *cur = &set;
    uint8_t payload[100];

    memset(payload, 'z', sizeof(payload));
    ck_assert_int_eq(pthread_barrier_init(&go, NULL, TWORKERS + 1), 0);
    ck_assert_int_eq(pthread_barrier_init(&done, NULL, TWORKERS + 1), 0);
    for (int k = 0; k < TWORKERS; k++) {
        w[k] = (tworker){ .topics = gh_topics_create(checking_sink), .set = &cur, .go = &go,
                          .done = &done };
        ck_assert_ptr_nonnull(w[k].topics);
        for (int i = 0; i < 8; i++) {
            w[k].subs[i] = (fake_sub){ .id = i, .key = (unsigned[]){ 0, 1, 2, 7 }[i % 4] };
            ck_assert_int_eq(gh_topics_subscribe(w[k].topics, "p", "x", 1, &w[k].subs[i],
                                                 &w[k].subs[i].subs), 0);
        }
        ck_assert_int_eq(pthread_create(&th[k], NULL, tworker_run, &w[k]), 0);
    }
    for (int r = 0; r < TROUNDS; r++) {
        variants_made = 0;
        ck_assert_int_eq(gh_frame_set_init(&set, GH_WS_OP_BINARY, payload, sizeof(payload)),
                         GH_OK);
        pthread_barrier_wait(&go);
        pthread_barrier_wait(&done);
        ck_assert_int_eq(variants_made, 3);             /* keys 1, 2 and 7: once each */
        ck_assert_uint_eq(set.nvariants, 3);
        for (size_t i = 0; i < set.nvariants; i++)     /* every handle gone */
            if (set.variant[i] != set.plain)
                ck_assert_uint_eq(set.variant[i]->refs, 1);
        ck_assert_uint_eq(set.plain->refs, 1 + (set.variant[0] == set.plain) +
                                               (set.variant[1] == set.plain) +
                                               (set.variant[2] == set.plain));
        gh_frame_set_clear(&set);
    }
    for (int k = 0; k < TWORKERS; k++) {
        ck_assert_int_eq(pthread_join(th[k], NULL), 0);
        ck_assert_int_eq(w[k].wrong, 0);
        for (int i = 0; i < 8; i++) {
            ck_assert_int_ge(w[k].subs[i].got, 0);
            gh_topics_unsubscribe_all(w[k].topics, &w[k].subs[i].subs);
        }
        gh_topics_destroy(w[k].topics);
    }
    pthread_barrier_destroy(&go);
    pthread_barrier_destroy(&done);
}
END_TEST

START_TEST(frames_carry_the_right_header_for_every_length_class)
{
    static const size_t lens[] = { 0, 125, 126, 65535, 65536, 1 << 20 };
    fake_sub s = { 0 };
    uint8_t *data = calloc(1, 1 << 20);

    ck_assert_int_eq(gh_topics_subscribe(t, "p", "x", 1, &s, &s.subs), 0);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint8_t hdr[GH_WS_MAX_HEADER];
        size_t hlen = gh_ws_frame_header(hdr, GH_WS_OP_BINARY, true, lens[i]);

        ck_assert_int_eq(gh_topics_deliver(t, "p", "x", 1, GH_WS_OP_BINARY, data, lens[i]), 1);
        ck_assert_uint_eq(held[nheld - 1]->len, hlen + lens[i]);
        ck_assert_int_eq(memcmp(held[nheld - 1]->data, hdr, hlen), 0);
    }
    gh_topics_unsubscribe_all(t, &s.subs);
    free(data);
}
END_TEST

START_TEST(the_frame_is_freed_when_the_last_holder_releases_it)
{
    fake_sub s = { 0 };

    ck_assert_int_eq(gh_topics_subscribe(t, "p", "x", 1, &s, &s.subs), 0);
    ck_assert_int_eq(gh_topics_deliver(t, "p", "x", 1, GH_WS_OP_TEXT, "a", 1), 1);
    ck_assert_uint_eq(held[0]->refs, 1);
    release_all();              /* ASan/valgrind would catch a leak or double free */
    gh_topics_unsubscribe_all(t, &s.subs);
}
END_TEST

START_TEST(a_refusing_subscriber_takes_no_reference_and_others_still_get_it)
{
    fake_sub a = { 0 }, b = { .refuse = true }, c = { 0 };

    gh_topics_subscribe(t, "p", "x", 1, &a, &a.subs);
    gh_topics_subscribe(t, "p", "x", 1, &b, &b.subs);
    gh_topics_subscribe(t, "p", "x", 1, &c, &c.subs);
    ck_assert_int_eq(gh_topics_deliver(t, "p", "x", 1, GH_WS_OP_TEXT, "m", 1), 2);
    ck_assert_uint_eq(held[0]->refs, 2);
    ck_assert_int_eq(a.got + c.got, 2);
    gh_topics_unsubscribe_all(t, &a.subs);
    gh_topics_unsubscribe_all(t, &b.subs);
    gh_topics_unsubscribe_all(t, &c.subs);
}
END_TEST

START_TEST(publish_with_no_subscriber_allocates_nothing_and_returns_0)
{
    ck_assert_int_eq(gh_topics_deliver(t, "p", "nobody", 6, GH_WS_OP_TEXT, "m", 1), 0);
    ck_assert_int_eq(gh_topics_publish(t, "p", "nobody", 6, GH_WS_OP_TEXT, "m", 1), 0);
    ck_assert_int_eq(nheld, 0);
    ck_assert_uint_eq(gh_topics_size(t), 0);
}
END_TEST

START_TEST(namespaces_keep_two_plugins_topics_apart)
{
    fake_sub a = { 0 }, b = { 0 };

    gh_topics_subscribe(t, "chat", "room", 4, &a, &a.subs);
    gh_topics_subscribe(t, "game", "room", 4, &b, &b.subs);
    ck_assert_uint_eq(gh_topics_size(t), 2);
    ck_assert_int_eq(gh_topics_deliver(t, "chat", "room", 4, GH_WS_OP_TEXT, "x", 1), 1);
    ck_assert_int_eq(a.got, 1);
    ck_assert_int_eq(b.got, 0);
    /* "ab" + "c" must not meet "a" + "bc" */
    fake_sub c = { 0 };
    gh_topics_subscribe(t, "ab", "c", 1, &c, &c.subs);
    ck_assert_uint_eq(gh_topics_count(t, "a", "bc", 2), 0);
    ck_assert_uint_eq(gh_topics_count(t, "ab", "c", 1), 1);
    gh_topics_unsubscribe_all(t, &a.subs);
    gh_topics_unsubscribe_all(t, &b.subs);
    gh_topics_unsubscribe_all(t, &c.subs);
}
END_TEST

typedef struct {
    int      seen;
    size_t   subs_of_ab_c, subs_of_chat_room, subs_of_game_room;
    uint64_t msgs_of_chat_room;
} each_tally;

static void tally(void *arg, const char *ns, const char *name, size_t len, size_t nsubs,
                  uint64_t messages)
{
    each_tally *e = arg;

    e->seen++;
    if (strcmp(ns, "ab") == 0 && len == 1 && memcmp(name, "c", 1) == 0)
        e->subs_of_ab_c = nsubs;
    else if (strcmp(ns, "chat") == 0 && len == 4 && memcmp(name, "room", 4) == 0)
        e->subs_of_chat_room = nsubs, e->msgs_of_chat_room = messages;
    else if (strcmp(ns, "game") == 0 && len == 4 && memcmp(name, "room", 4) == 0)
        e->subs_of_game_room = nsubs;
    else
        ck_abort_msg("a topic nobody made: %s/%.*s", ns, (int)len, name);
}

START_TEST(each_visits_every_topic_once_with_its_subscribers_and_messages)
{
    fake_sub a = { 0 }, b = { 0 }, c = { 0 };
    each_tally e = { 0 };

    gh_topics_each(t, tally, &e);
    ck_assert_int_eq(e.seen, 0);
    gh_topics_subscribe(t, "chat", "room", 4, &a, &a.subs);
    gh_topics_subscribe(t, "chat", "room", 4, &b, &b.subs);
    gh_topics_subscribe(t, "game", "room", 4, &b, &b.subs);
    gh_topics_subscribe(t, "ab", "c", 1, &c, &c.subs);
    ck_assert_int_eq(gh_topics_deliver(t, "chat", "room", 4, GH_WS_OP_TEXT, "m", 1), 2);
    ck_assert_int_eq(gh_topics_deliver(t, "chat", "room", 4, GH_WS_OP_TEXT, "n", 1), 2);
    gh_topics_each(t, tally, &e);
    ck_assert_int_eq(e.seen, 3);
    ck_assert_uint_eq(e.msgs_of_chat_room, 2);        /* messages, not deliveries */
    ck_assert_uint_eq(e.subs_of_chat_room, 2);
    ck_assert_uint_eq(e.subs_of_game_room, 1);
    ck_assert_uint_eq(e.subs_of_ab_c, 1);
    gh_topics_unsubscribe_all(t, &a.subs);
    gh_topics_unsubscribe_all(t, &b.subs);
    gh_topics_unsubscribe_all(t, &c.subs);
    e.seen = 0;
    gh_topics_each(t, tally, &e);
    ck_assert_int_eq(e.seen, 0);
}
END_TEST

START_TEST(subscribing_twice_is_a_no_op)
{
    fake_sub a = { 0 };

    ck_assert_int_eq(gh_topics_subscribe(t, "p", "x", 1, &a, &a.subs), 0);
    ck_assert_int_eq(gh_topics_subscribe(t, "p", "x", 1, &a, &a.subs), 0);
    ck_assert_uint_eq(gh_topics_count(t, "p", "x", 1), 1);
    ck_assert_int_eq(gh_topics_deliver(t, "p", "x", 1, GH_WS_OP_TEXT, "m", 1), 1);
    gh_topics_unsubscribe_all(t, &a.subs);
}
END_TEST

START_TEST(unsubscribe_removes_one_and_frees_an_empty_topic)
{
    fake_sub s[4] = { { 0 } };

    for (int i = 0; i < 4; i++)
        gh_topics_subscribe(t, "p", "x", 1, &s[i], &s[i].subs);
    gh_topics_subscribe(t, "p", "y", 1, &s[0], &s[0].subs);
    /* remove from the middle: the swap keeps the rest reachable */
    ck_assert_int_eq(gh_topics_unsubscribe(t, "p", "x", 1, &s[1].subs), 0);
    ck_assert_int_eq(gh_topics_unsubscribe(t, "p", "x", 1, &s[1].subs), GH_ENOENT);
    ck_assert_uint_eq(gh_topics_count(t, "p", "x", 1), 3);
    ck_assert_int_eq(gh_topics_deliver(t, "p", "x", 1, GH_WS_OP_TEXT, "m", 1), 3);
    ck_assert_int_eq(s[1].got, 0);
    for (int i = 0; i < 4; i++)
        gh_topics_unsubscribe(t, "p", "x", 1, &s[i].subs);
    ck_assert_uint_eq(gh_topics_count(t, "p", "x", 1), 0);
    ck_assert_uint_eq(gh_topics_size(t), 1);          /* "y" is left */
    gh_topics_unsubscribe_all(t, &s[0].subs);
    ck_assert_ptr_null(s[0].subs);
    ck_assert_uint_eq(gh_topics_size(t), 0);
}
END_TEST

START_TEST(many_topics_and_subscribers_survive_table_growth)
{
    enum { N = 300 };
    static fake_sub s[N];
    char name[16];

    memset(s, 0, sizeof(s));
    for (int i = 0; i < N; i++) {
        int n = snprintf(name, sizeof(name), "t%d", i);
        ck_assert_int_eq(gh_topics_subscribe(t, "p", name, (size_t)n, &s[i], &s[i].subs), 0);
        ck_assert_int_eq(gh_topics_subscribe(t, "p", "all", 3, &s[i], &s[i].subs), 0);
    }
    ck_assert_uint_eq(gh_topics_size(t), N + 1);
    for (int i = 0; i < N; i++) {
        int n = snprintf(name, sizeof(name), "t%d", i);
        ck_assert_uint_eq(gh_topics_count(t, "p", name, (size_t)n), 1);
    }
    ck_assert_uint_eq(gh_topics_count(t, "p", "all", 3), N);
    ck_assert_int_eq(gh_topics_deliver(t, "p", "all", 3, GH_WS_OP_TEXT, "x", 1), N);
    ck_assert_uint_eq(held[0]->refs, N);
    release_all();
    for (int i = 0; i < N; i++)
        gh_topics_unsubscribe_all(t, &s[i].subs);
    ck_assert_uint_eq(gh_topics_size(t), 0);
}
END_TEST

START_TEST(bad_names_and_types_are_refused)
{
    fake_sub a = { 0 };
    char big[GH_TOPIC_MAX_NAME + 1];

    memset(big, 'x', sizeof(big));
    ck_assert_int_eq(gh_topics_subscribe(t, "p", "", 0, &a, &a.subs), GH_EINVAL);
    ck_assert_int_eq(gh_topics_subscribe(t, "p", big, sizeof(big), &a, &a.subs), GH_EINVAL);
    ck_assert_int_eq(gh_topics_subscribe(t, "p", big, sizeof(big) - 1, &a, &a.subs), 0);
    ck_assert_int_eq(gh_topics_subscribe(t, "", "x", 1, &a, &a.subs), GH_EINVAL);
    ck_assert_int_eq(gh_topics_deliver(t, "p", "x", 1, GH_WS_OP_PING, "m", 1), GH_EINVAL);
    ck_assert_int_eq(gh_topics_deliver(t, "p", "x", 1, GH_WS_OP_TEXT, NULL, 1), GH_EINVAL);
    ck_assert_int_eq(gh_topics_unsubscribe(t, "p", "", 0, &a.subs), GH_ENOENT);
    gh_topics_unsubscribe_all(t, &a.subs);
}
END_TEST

static int bus_calls;
static int bus_publish(void *ctx, const char *ns, const char *name, size_t len, int opcode,
                       const void *data, size_t dlen)
{
    /* a loopback bus: deliver here, as a real one would on receipt */
    bus_calls++;
    return (int)gh_topics_deliver(ctx, ns, name, len, opcode, data, dlen) >= 0 ? 0 : -1;
}

START_TEST(publish_goes_through_the_bus_when_one_is_set)
{
    fake_sub a = { 0 };
    gh_topic_bus bus = { .ctx = NULL, .publish = bus_publish };

    bus.ctx = t;
    gh_topics_subscribe(t, "p", "x", 1, &a, &a.subs);
    ck_assert_int_eq(gh_topics_publish(t, "p", "x", 1, GH_WS_OP_TEXT, "m", 1), 0);
    ck_assert_int_eq(bus_calls, 0);
    ck_assert_int_eq(a.got, 1);
    gh_topics_set_bus(t, &bus);
    ck_assert_int_eq(gh_topics_publish(t, "p", "x", 1, GH_WS_OP_TEXT, "m", 1), 0);
    ck_assert_int_eq(bus_calls, 1);
    ck_assert_int_eq(a.got, 2);
    gh_topics_set_bus(t, NULL);
    gh_topics_unsubscribe_all(t, &a.subs);
}
END_TEST

/* A bus that keeps each topic's count in a slot of its own, as the hub. */
static size_t slot_x = 99, slot_y = 99;
static int watched;

static void slot_watch(void *ctx, const char *ns, const char *name, size_t len, int on)
{
    (void)ctx;
    (void)ns;
    (void)name;
    (void)len;
    watched += on ? 1 : -1;
}

static size_t *slot_at(void *ctx, const char *ns, const char *name, size_t len)
{
    (void)ctx;
    ck_assert_str_eq(ns, "p");
    ck_assert_uint_eq(len, 1);
    return name[0] == 'x' ? &slot_x : name[0] == 'y' ? &slot_y : NULL;
}

START_TEST(a_bus_with_count_at_is_told_each_topics_subscribers)
{
    fake_sub a = { 0 }, b = { 0 }, c = { 0 };
    gh_topic_bus bus = { .publish = bus_publish, .watch = slot_watch, .count_at = slot_at };

    bus.ctx = t;
    gh_topics_subscribe(t, "p", "x", 1, &a, &a.subs);
    gh_topics_subscribe(t, "p", "x", 1, &b, &b.subs);
    gh_topics_set_bus(t, &bus);         /* a topic that exists is counted at once */
    ck_assert_int_eq(watched, 1);
    ck_assert_uint_eq(slot_x, 2);
    gh_topics_subscribe(t, "p", "x", 1, &c, &c.subs);
    gh_topics_subscribe(t, "p", "y", 1, &c, &c.subs);
    gh_topics_subscribe(t, "p", "z", 1, &c, &c.subs);      /* a topic without a slot */
    ck_assert_uint_eq(slot_x, 3);
    ck_assert_uint_eq(slot_y, 1);
    gh_topics_unsubscribe(t, "p", "x", 1, &b.subs);
    ck_assert_uint_eq(slot_x, 2);
    /* the last one gone, the slot is the bus's again: not written after */
    slot_y = 99;
    gh_topics_unsubscribe(t, "p", "y", 1, &c.subs);
    ck_assert_uint_eq(slot_y, 99);
    /* nor once the bus is cleared */
    gh_topics_set_bus(t, NULL);
    gh_topics_unsubscribe(t, "p", "x", 1, &c.subs);
    ck_assert_uint_eq(slot_x, 2);
    gh_topics_unsubscribe_all(t, &a.subs);
    gh_topics_unsubscribe_all(t, &c.subs);
    ck_assert_uint_eq(slot_x, 2);
}
END_TEST

/* ---- hold, skip and subscription serials ---- */

START_TEST(a_held_subscription_gets_nothing_until_released_then_only_later_messages)
{
    fake_sub a = { .id = 1 }, b = { .id = 2 };

    ck_assert_int_eq(gh_topics_subscribe(t, "chat", "room", 4, &a, &a.subs), 0);
    ck_assert_int_eq(gh_topics_subscribe(t, "chat", "room", 4, &b, &b.subs), 0);
    ck_assert_int_eq(gh_topics_hold(t, "chat", "room", 4, a.subs, true), 0);
    /* every way in skips it */
    ck_assert_int_eq(gh_topics_deliver(t, "chat", "room", 4, GH_WS_OP_TEXT, "m1", 2), 1);
    ck_assert_int_eq(gh_topics_deliver_upto(t, "chat", "room", 4, GH_WS_OP_TEXT, "m2", 2,
                                            UINT64_MAX), 1);
    ck_assert_int_eq(gh_topics_deliver_ex(t, "chat", "room", 4, GH_WS_OP_TEXT, "m3", 2,
                                          UINT64_MAX, 0), 1);
    ck_assert_int_eq(gh_topics_publish(t, "chat", "room", 4, GH_WS_OP_TEXT, "m4", 2), 0);
    ck_assert_int_eq(a.got, 0);
    ck_assert_int_eq(b.got, 4);
    /* still subscribed while held */
    ck_assert_uint_eq(gh_topics_count(t, "chat", "room", 4), 2);
    ck_assert_int_eq(gh_topics_hold(t, "chat", "room", 4, a.subs, false), 0);
    ck_assert_int_eq(gh_topics_deliver(t, "chat", "room", 4, GH_WS_OP_TEXT, "m5", 2), 2);
    /* what it missed is not kept: it gets m5 only */
    ck_assert_int_eq(a.got, 1);
    ck_assert_int_eq(b.got, 5);
    ck_assert_ptr_eq(held_by[nheld - 2], &a);
    ck_assert_mem_eq(held[nheld - 2]->data + 2, "m5", 2);
    gh_topics_unsubscribe_all(t, &a.subs);
    gh_topics_unsubscribe_all(t, &b.subs);
}
END_TEST

START_TEST(hold_applies_to_one_topic_of_the_subscriber_only)
{
    fake_sub a = { 0 };

    ck_assert_int_eq(gh_topics_subscribe(t, "p", "x", 1, &a, &a.subs), 0);
    ck_assert_int_eq(gh_topics_subscribe(t, "p", "y", 1, &a, &a.subs), 0);
    ck_assert_int_eq(gh_topics_subscribe(t, "q", "x", 1, &a, &a.subs), 0);
    ck_assert_int_eq(gh_topics_hold(t, "p", "x", 1, a.subs, true), 0);
    ck_assert_int_eq(gh_topics_deliver(t, "p", "x", 1, GH_WS_OP_TEXT, "m", 1), 0);
    ck_assert_int_eq(gh_topics_deliver(t, "p", "y", 1, GH_WS_OP_TEXT, "m", 1), 1);
    ck_assert_int_eq(gh_topics_deliver(t, "q", "x", 1, GH_WS_OP_TEXT, "m", 1), 1);
    ck_assert_int_eq(a.got, 2);
    gh_topics_unsubscribe_all(t, &a.subs);
}
END_TEST

START_TEST(hold_is_idempotent_and_survives_other_subscribers_leaving)
{
    fake_sub s[4] = { { .id = 0 }, { .id = 1 }, { .id = 2 }, { .id = 3 } };

    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(gh_topics_subscribe(t, "p", "x", 1, &s[i], &s[i].subs), 0);
    ck_assert_int_eq(gh_topics_hold(t, "p", "x", 1, s[3].subs, true), 0);
    ck_assert_int_eq(gh_topics_hold(t, "p", "x", 1, s[3].subs, true), 0);
    /* s[3] is last in the topic's array: removing s[0] moves it to the front */
    ck_assert_int_eq(gh_topics_unsubscribe(t, "p", "x", 1, &s[0].subs), 0);
    ck_assert_int_eq(gh_topics_deliver(t, "p", "x", 1, GH_WS_OP_TEXT, "m", 1), 2);
    ck_assert_int_eq(s[3].got, 0);
    ck_assert_int_eq(gh_topics_hold(t, "p", "x", 1, s[3].subs, false), 0);
    ck_assert_int_eq(gh_topics_hold(t, "p", "x", 1, s[3].subs, false), 0);
    ck_assert_int_eq(gh_topics_deliver(t, "p", "x", 1, GH_WS_OP_TEXT, "m", 1), 3);
    ck_assert_int_eq(s[3].got, 1);
    for (int i = 0; i < 4; i++)
        gh_topics_unsubscribe_all(t, &s[i].subs);
}
END_TEST

START_TEST(a_new_subscription_after_a_held_one_is_not_held)
{
    fake_sub a = { 0 };

    ck_assert_int_eq(gh_topics_subscribe(t, "p", "x", 1, &a, &a.subs), 0);
    ck_assert_int_eq(gh_topics_hold(t, "p", "x", 1, a.subs, true), 0);
    ck_assert_int_eq(gh_topics_unsubscribe(t, "p", "x", 1, &a.subs), 0);
    ck_assert_int_eq(gh_topics_subscribe(t, "p", "x", 1, &a, &a.subs), 0);
    ck_assert_int_eq(gh_topics_deliver(t, "p", "x", 1, GH_WS_OP_TEXT, "m", 1), 1);
    ck_assert_int_eq(a.got, 1);
    gh_topics_unsubscribe_all(t, &a.subs);
}
END_TEST

START_TEST(a_topic_whose_every_subscriber_is_held_delivers_to_nobody)
{
    fake_sub a = { 0 }, b = { 0 };

    gh_topics_subscribe(t, "p", "x", 1, &a, &a.subs);
    gh_topics_subscribe(t, "p", "x", 1, &b, &b.subs);
    ck_assert_int_eq(gh_topics_hold(t, "p", "x", 1, a.subs, true), 0);
    ck_assert_int_eq(gh_topics_hold(t, "p", "x", 1, b.subs, true), 0);
    /* the frame made for the loop is freed (ASan would see a leak) */
    ck_assert_int_eq(gh_topics_deliver(t, "p", "x", 1, GH_WS_OP_TEXT, "m", 1), 0);
    ck_assert_int_eq(nheld, 0);
    gh_topics_unsubscribe_all(t, &a.subs);
    gh_topics_unsubscribe_all(t, &b.subs);
}
END_TEST

START_TEST(hold_on_a_topic_not_subscribed_is_enoent)
{
    fake_sub a = { 0 }, b = { 0 };

    /* nothing at all */
    ck_assert_int_eq(gh_topics_hold(t, "p", "x", 1, a.subs, true), GH_ENOENT);
    ck_assert_int_eq(gh_topics_hold(t, "p", "x", 1, NULL, false), GH_ENOENT);
    /* the topic exists, but a is not in it; a is in another */
    gh_topics_subscribe(t, "p", "x", 1, &b, &b.subs);
    gh_topics_subscribe(t, "p", "y", 1, &a, &a.subs);
    ck_assert_int_eq(gh_topics_hold(t, "p", "x", 1, a.subs, true), GH_ENOENT);
    ck_assert_int_eq(gh_topics_hold(t, "q", "y", 1, a.subs, true), GH_ENOENT);
    ck_assert_int_eq(gh_topics_hold(t, "p", "yy", 2, a.subs, true), GH_ENOENT);
    /* bad names */
    ck_assert_int_eq(gh_topics_hold(t, "p", "", 0, a.subs, true), GH_ENOENT);
    ck_assert_int_eq(gh_topics_hold(t, "", "y", 1, a.subs, true), GH_ENOENT);
    /* nothing changed: both still get their topic's messages */
    ck_assert_int_eq(gh_topics_deliver(t, "p", "x", 1, GH_WS_OP_TEXT, "m", 1), 1);
    ck_assert_int_eq(gh_topics_deliver(t, "p", "y", 1, GH_WS_OP_TEXT, "m", 1), 1);
    ck_assert_int_eq(a.got + b.got, 2);
    /* after unsubscribing */
    gh_topics_unsubscribe_all(t, &a.subs);
    ck_assert_int_eq(gh_topics_hold(t, "p", "y", 1, a.subs, true), GH_ENOENT);
    gh_topics_unsubscribe_all(t, &b.subs);
}
END_TEST

START_TEST(skip_skips_exactly_the_one_subscription_with_that_serial)
{
    fake_sub s[3] = { { .id = 0 }, { .id = 1 }, { .id = 2 } };
    uint64_t ser[3];

    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(gh_topics_subscribe(t, "chat", "r", 1, &s[i], &s[i].subs), 0);
        ser[i] = gh_topics_sub_serial(t, "chat", "r", 1, s[i].subs);
    }
    for (int k = 0; k < 3; k++) {
        int before[3] = { s[0].got, s[1].got, s[2].got };
        ck_assert_int_eq(gh_topics_deliver_ex(t, "chat", "r", 1, GH_WS_OP_TEXT, "m", 1,
                                              UINT64_MAX, ser[k]), 2);
        for (int i = 0; i < 3; i++)
            ck_assert_int_eq(s[i].got - before[i], i == k ? 0 : 1);
    }
    /* 0 skips nobody, nor does a serial no subscription has */
    ck_assert_int_eq(gh_topics_deliver_ex(t, "chat", "r", 1, GH_WS_OP_TEXT, "m", 1,
                                          UINT64_MAX, 0), 3);
    ck_assert_int_eq(gh_topics_deliver_ex(t, "chat", "r", 1, GH_WS_OP_TEXT, "m", 1,
                                          UINT64_MAX, 12345), 3);
    ck_assert_int_eq(gh_topics_deliver_ex(t, "chat", "r", 1, GH_WS_OP_TEXT, "m", 1,
                                          UINT64_MAX, UINT64_MAX), 3);
    for (int i = 0; i < 3; i++)
        gh_topics_unsubscribe_all(t, &s[i].subs);
}
END_TEST

START_TEST(skip_names_a_subscription_not_a_subscriber)
{
    fake_sub a = { 0 }, b = { 0 };
    uint64_t ay;

    /* a's serial on y does not keep it from x's messages */
    gh_topics_subscribe(t, "p", "x", 1, &a, &a.subs);
    gh_topics_subscribe(t, "p", "y", 1, &a, &a.subs);
    gh_topics_subscribe(t, "p", "x", 1, &b, &b.subs);
    ay = gh_topics_sub_serial(t, "p", "y", 1, a.subs);
    ck_assert(ay != 0);
    ck_assert_int_eq(gh_topics_deliver_ex(t, "p", "x", 1, GH_WS_OP_TEXT, "m", 1, UINT64_MAX,
                                          ay), 2);
    ck_assert_int_eq(gh_topics_deliver_ex(t, "p", "y", 1, GH_WS_OP_TEXT, "m", 1, UINT64_MAX,
                                          ay), 0);
    ck_assert_int_eq(a.got, 1);
    ck_assert_int_eq(b.got, 1);
    gh_topics_unsubscribe_all(t, &a.subs);
    gh_topics_unsubscribe_all(t, &b.subs);
}
END_TEST

START_TEST(deliver_ex_combines_upto_skip_and_hold)
{
    fake_sub s[4] = { { .id = 0 }, { .id = 1 }, { .id = 2 }, { .id = 3 } };
    uint64_t upto;

    for (int i = 0; i < 3; i++)
        gh_topics_subscribe(t, "p", "x", 1, &s[i], &s[i].subs);
    upto = gh_topics_serial(t);
    gh_topics_subscribe(t, "p", "x", 1, &s[3], &s[3].subs);     /* too new */
    ck_assert_int_eq(gh_topics_hold(t, "p", "x", 1, s[2].subs, true), 0);
    /* s0 skipped, s2 held, s3 too new: s1 alone */
    ck_assert_int_eq(gh_topics_deliver_ex(t, "p", "x", 1, GH_WS_OP_BINARY, "m", 1, upto,
                                          gh_topics_sub_serial(t, "p", "x", 1, s[0].subs)),
                     1);
    ck_assert_int_eq(s[1].got, 1);
    ck_assert_int_eq(s[0].got + s[2].got + s[3].got, 0);
    /* the same rules refuse bad input first */
    ck_assert_int_eq(gh_topics_deliver_ex(t, "p", "x", 1, GH_WS_OP_PING, "m", 1, upto, 0),
                     GH_EINVAL);
    ck_assert_int_eq(gh_topics_deliver_ex(t, "p", "", 0, GH_WS_OP_TEXT, "m", 1, upto, 0),
                     GH_EINVAL);
    ck_assert_int_eq(gh_topics_deliver_ex(t, "p", "x", 1, GH_WS_OP_TEXT, NULL, 1, upto, 0),
                     GH_EINVAL);
    ck_assert_int_eq(gh_topics_deliver_ex(t, "p", "none", 4, GH_WS_OP_TEXT, "m", 1, upto, 0),
                     0);
    for (int i = 0; i < 4; i++)
        gh_topics_unsubscribe_all(t, &s[i].subs);
}
END_TEST

START_TEST(sub_serial_is_the_serial_at_subscribe_and_0_when_not_subscribed)
{
    fake_sub a = { 0 }, b = { 0 };
    uint64_t x;

    ck_assert(gh_topics_sub_serial(t, "p", "x", 1, a.subs) == 0);
    ck_assert(gh_topics_sub_serial(t, "p", "x", 1, NULL) == 0);
    ck_assert_int_eq(gh_topics_subscribe(t, "p", "x", 1, &a, &a.subs), 0);
    x = gh_topics_sub_serial(t, "p", "x", 1, a.subs);
    ck_assert(x != 0);
    ck_assert(x == gh_topics_serial(t));
    /* subscribing again is a no-op: the serial stays */
    ck_assert_int_eq(gh_topics_subscribe(t, "p", "x", 1, &a, &a.subs), 0);
    ck_assert(gh_topics_sub_serial(t, "p", "x", 1, a.subs) == x);
    /* another subscriber, another topic: each its own, increasing */
    ck_assert_int_eq(gh_topics_subscribe(t, "p", "x", 1, &b, &b.subs), 0);
    ck_assert_int_eq(gh_topics_subscribe(t, "p", "y", 1, &a, &a.subs), 0);
    ck_assert(gh_topics_sub_serial(t, "p", "x", 1, b.subs) == x + 1);
    ck_assert(gh_topics_sub_serial(t, "p", "y", 1, a.subs) == x + 2);
    ck_assert(gh_topics_sub_serial(t, "p", "x", 1, a.subs) == x);
    /* the topic exists but b is not in it; unknown topics; bad names */
    ck_assert(gh_topics_sub_serial(t, "p", "y", 1, b.subs) == 0);
    ck_assert(gh_topics_sub_serial(t, "q", "x", 1, a.subs) == 0);
    ck_assert(gh_topics_sub_serial(t, "p", "", 0, a.subs) == 0);
    ck_assert(gh_topics_sub_serial(t, "", "x", 1, a.subs) == 0);
    /* gone after unsubscribing; a new subscription takes a new serial */
    ck_assert_int_eq(gh_topics_unsubscribe(t, "p", "x", 1, &a.subs), 0);
    ck_assert(gh_topics_sub_serial(t, "p", "x", 1, a.subs) == 0);
    ck_assert_int_eq(gh_topics_subscribe(t, "p", "x", 1, &a, &a.subs), 0);
    ck_assert(gh_topics_sub_serial(t, "p", "x", 1, a.subs) == x + 3);
    gh_topics_unsubscribe_all(t, &a.subs);
    gh_topics_unsubscribe_all(t, &b.subs);
    ck_assert(gh_topics_sub_serial(t, "p", "y", 1, a.subs) == 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("topic");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, publish_frames_once_and_shares_the_same_bytes_with_every_subscriber);
    tcase_add_test(tc, frames_carry_the_right_header_for_every_length_class);
    tcase_add_test(tc, each_variant_is_made_once_per_publish_and_shared);
    tcase_add_test(tc, a_variant_that_does_not_shrink_is_the_plain_frame_kept_under_its_key);
    tcase_add_test(tc, workers_delivering_one_set_make_each_frame_once_and_share_its_bytes);
    tcase_add_test(tc, workers_delivering_one_set_at_once_make_each_variant_once);
    tcase_add_test(tc, the_frame_is_freed_when_the_last_holder_releases_it);
    tcase_add_test(tc, a_refusing_subscriber_takes_no_reference_and_others_still_get_it);
    tcase_add_test(tc, publish_with_no_subscriber_allocates_nothing_and_returns_0);
    tcase_add_test(tc, namespaces_keep_two_plugins_topics_apart);
    tcase_add_test(tc, subscribing_twice_is_a_no_op);
    tcase_add_test(tc, unsubscribe_removes_one_and_frees_an_empty_topic);
    tcase_add_test(tc, many_topics_and_subscribers_survive_table_growth);
    tcase_add_test(tc, bad_names_and_types_are_refused);
    tcase_add_test(tc, publish_goes_through_the_bus_when_one_is_set);
    tcase_add_test(tc, a_bus_with_count_at_is_told_each_topics_subscribers);
    suite_add_tcase(s, tc);
    tc = tcase_create("hold_skip");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_held_subscription_gets_nothing_until_released_then_only_later_messages);
    tcase_add_test(tc, hold_applies_to_one_topic_of_the_subscriber_only);
    tcase_add_test(tc, hold_is_idempotent_and_survives_other_subscribers_leaving);
    tcase_add_test(tc, a_new_subscription_after_a_held_one_is_not_held);
    tcase_add_test(tc, a_topic_whose_every_subscriber_is_held_delivers_to_nobody);
    tcase_add_test(tc, hold_on_a_topic_not_subscribed_is_enoent);
    tcase_add_test(tc, skip_skips_exactly_the_one_subscription_with_that_serial);
    tcase_add_test(tc, skip_names_a_subscription_not_a_subscriber);
    tcase_add_test(tc, deliver_ex_combines_upto_skip_and_hold);
    tcase_add_test(tc, sub_serial_is_the_serial_at_subscribe_and_0_when_not_subscribed);
    tcase_add_test(tc, each_visits_every_topic_once_with_its_subscribers_and_messages);
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
    return failed == 0 ? 0 : 1;
}
