/* test_slab.c: the per-loop pool of same-size objects: zeroed, aligned,
 * distinct objects whatever the order of frees; pages given back once
 * empty (but one). Under AddressSanitizer the slab is plain calloc/free:
 * the same tests then run through ASan's checks. */
#include "slab.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define N 5000

static void *objs[N];
static unsigned order[N];

/* Fills o with a pattern of its index, checked before it is freed: an
 * object handed out twice, or overlapping another, breaks a pattern. */
static void fill(void *o, size_t size, unsigned i)
{
    memset(o, (int)(i % 251) + 1, size);
}

static void check_fill(const void *o, size_t size, unsigned i)
{
    const uint8_t *b = o;

    for (size_t k = 0; k < size; k++)
        if (b[k] != (uint8_t)(i % 251 + 1))
            ck_abort_msg("object %u byte %zu overwritten", i, k);
}

static void check_zero(const void *o, size_t size)
{
    const uint8_t *b = o;

    for (size_t k = 0; k < size; k++)
        if (b[k] != 0)
            ck_abort_msg("byte %zu of a new object is not zero", k);
}

START_TEST(objects_are_zeroed_aligned_and_distinct_in_any_free_order)
{
    static const size_t sizes[] = { 1, 8, 24, 180, 328, 4096 };
    size_t size = sizes[_i];
    gh_slab *s = gh_slab_new(size);
    unsigned seed = 7u + (unsigned)_i;

    ck_assert_ptr_nonnull(s);
    for (int round = 0; round < 3; round++) {
        for (unsigned i = 0; i < N; i++) {
            ck_assert_ptr_nonnull(objs[i] = gh_slab_alloc(s));
            ck_assert_uint_eq((uintptr_t)objs[i] % 8, 0);
            check_zero(objs[i], size);
            fill(objs[i], size, i);
        }
        /* free a random half, take them again, then free all at random */
        for (unsigned i = 0; i < N; i++) {
            unsigned k = (unsigned)rand_r(&seed) % N;

            if (objs[k] != NULL) {
                check_fill(objs[k], size, k);
                gh_slab_free(s, objs[k]);
                objs[k] = NULL;
            }
        }
        for (unsigned i = 0; i < N; i++) {
            if (objs[i] == NULL) {
                ck_assert_ptr_nonnull(objs[i] = gh_slab_alloc(s));
                check_zero(objs[i], size);
                fill(objs[i], size, i);
            }
        }
        for (unsigned i = 0; i < N; i++)
            check_fill(objs[i], size, i);
        /* then every one, in a random order */
        for (unsigned i = 0; i < N; i++)
            order[i] = i;
        for (unsigned i = N - 1; i > 0; i--) {
            unsigned k = (unsigned)rand_r(&seed) % (i + 1), t = order[i];

            order[i] = order[k];
            order[k] = t;
        }
        for (unsigned i = 0; i < N; i++) {
            check_fill(objs[order[i]], size, order[i]);
            gh_slab_free(s, objs[order[i]]);
            objs[order[i]] = NULL;
        }
        /* everything given back: at most the one spare page is held */
        ck_assert_uint_le(gh_slab_pages(s), 1);
    }
    gh_slab_free(s, NULL);
    gh_slab_free_all(s);
}
END_TEST

START_TEST(pages_come_and_go_with_their_objects)
{
    gh_slab *s = gh_slab_new(328);
    size_t held;

    ck_assert_ptr_nonnull(s);
    for (unsigned i = 0; i < N; i++)
        ck_assert_ptr_nonnull(objs[i] = gh_slab_alloc(s));
    held = gh_slab_pages(s);
#if !defined(__SANITIZE_ADDRESS__)
    /* 64 KiB pages: 5,000 objects of 328 bytes take 26 */
    ck_assert_uint_ge(held, (size_t)N * 328 / (64 * 1024) + 1);
    ck_assert_uint_le(held, (size_t)N * 328 / (64 * 1024) + 2);
#endif
    /* freeing every other object keeps every page */
    for (unsigned i = 0; i < N; i += 2)
        gh_slab_free(s, objs[i]);
    ck_assert_uint_eq(gh_slab_pages(s), held);
    /* the rest empties them: all go but the spare */
    for (unsigned i = 1; i < N; i += 2)
        gh_slab_free(s, objs[i]);
    ck_assert_uint_le(gh_slab_pages(s), 1);
    /* the spare serves the next object */
    ck_assert_ptr_nonnull(objs[0] = gh_slab_alloc(s));
    ck_assert_uint_le(gh_slab_pages(s), 1);
    gh_slab_free(s, objs[0]);
    gh_slab_free_all(s);
    gh_slab_free_all(NULL);
}
END_TEST

START_TEST(sizes_out_of_range_are_refused)
{
    ck_assert_ptr_null(gh_slab_new(0));
    ck_assert_ptr_null(gh_slab_new(GH_SLAB_MAX_SIZE + 1));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("slab");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, objects_are_zeroed_aligned_and_distinct_in_any_free_order, 0, 6);
    tcase_add_test(tc, pages_come_and_go_with_their_objects);
    tcase_add_test(tc, sizes_out_of_range_are_refused);
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
