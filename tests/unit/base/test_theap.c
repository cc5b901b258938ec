/* test_theap.c: the deadline heap against a plain array doing the same
 * inserts, moves and deletions; positions, order of removal, shrinking. */
#include "err.h"
#include "theap.h"

#include <check.h>
#include <stdlib.h>

#define N 1000

static gh_theap_node nodes[N];
static int in_ref[N];

static void check_heap(const gh_theap *h)
{
    uint32_t count = 0;
    uint64_t min = UINT64_MAX;

    for (uint32_t i = 0; i < h->n; i++) {
        ck_assert_uint_eq(h->v[i]->pos, i + 1);
        if (i > 0)
            ck_assert_uint_le(h->v[(i - 1) / 2]->due, h->v[i]->due);
    }
    for (int i = 0; i < N; i++) {
        if (in_ref[i]) {
            count++;
            if (nodes[i].due < min)
                min = nodes[i].due;
            ck_assert_uint_ne(nodes[i].pos, 0);
        } else {
            ck_assert_uint_eq(nodes[i].pos, 0);
        }
    }
    ck_assert_uint_eq(h->n, count);
    if (count == 0)
        ck_assert_ptr_null(gh_theap_top(h));
    else
        ck_assert_uint_eq(gh_theap_top(h)->due, min);
}

START_TEST(random_operations_match_an_array)
{
    gh_theap h = { 0 };
    unsigned seed = 12345u + (unsigned)_i;

    for (int i = 0; i < N; i++) {
        nodes[i] = (gh_theap_node){ 0 };
        in_ref[i] = 0;
    }
    for (int step = 0; step < 20000; step++) {
        int k = rand_r(&seed) % N, op = rand_r(&seed) % 3;

        if (op < 2) {
            /* small range: equal deadlines are common, as they are for
             * connections opened together */
            ck_assert_int_eq(gh_theap_set(&h, &nodes[k], (uint64_t)(rand_r(&seed) % 500)), GH_OK);
            in_ref[k] = 1;
        } else {
            gh_theap_del(&h, &nodes[k]);
            in_ref[k] = 0;
        }
        if (step % 97 == 0)
            check_heap(&h);
    }
    check_heap(&h);
    gh_theap_fini(&h);
    for (int i = 0; i < N; i++)
        ck_assert_uint_eq(nodes[i].pos, 0);
}
END_TEST

START_TEST(pops_come_out_in_order_and_the_array_shrinks)
{
    gh_theap h = { 0 };
    uint64_t last = 0;
    uint32_t peak;

    for (int i = 0; i < N; i++) {
        nodes[i] = (gh_theap_node){ 0 };
        ck_assert_int_eq(gh_theap_set(&h, &nodes[i], (uint64_t)((i * 7919) % N)), GH_OK);
    }
    peak = h.cap;
    ck_assert_uint_ge(peak, N);
    for (int i = 0; i < N; i++) {
        gh_theap_node *t = gh_theap_top(&h);
        ck_assert_ptr_nonnull(t);
        ck_assert_uint_ge(t->due, last);
        last = t->due;
        gh_theap_del(&h, t);
        ck_assert_uint_eq(t->pos, 0);
    }
    ck_assert_ptr_null(gh_theap_top(&h));
    ck_assert_uint_lt(h.cap, peak / 8);
    gh_theap_del(&h, &nodes[0]);        /* not in it: nothing */
    gh_theap_fini(&h);
}
END_TEST

START_TEST(moving_a_node_keeps_it_once)
{
    gh_theap h = { 0 };
    gh_theap_node a = { 0 }, b = { 0 };

    ck_assert_int_eq(gh_theap_set(&h, &a, 10), GH_OK);
    ck_assert_int_eq(gh_theap_set(&h, &b, 20), GH_OK);
    ck_assert_int_eq(gh_theap_set(&h, &a, 30), GH_OK);
    ck_assert_uint_eq(h.n, 2);
    ck_assert_ptr_eq(gh_theap_top(&h), &b);
    ck_assert_int_eq(gh_theap_set(&h, &a, 5), GH_OK);
    ck_assert_ptr_eq(gh_theap_top(&h), &a);
    gh_theap_del(&h, &a);
    ck_assert_ptr_eq(gh_theap_top(&h), &b);
    gh_theap_fini(&h);
    ck_assert_uint_eq(b.pos, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("theap");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, random_operations_match_an_array, 0, 4);
    tcase_add_test(tc, pops_come_out_in_order_and_the_array_shrinks);
    tcase_add_test(tc, moving_a_node_keeps_it_once);
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
