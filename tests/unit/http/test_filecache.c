/* test_filecache.c: the small-file cache: hits, revalidation facts,
 * replacement, the byte budget, and entries outliving the cache. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "filecache.h"

static struct stat fake_stat(off_t size, ino_t ino, time_t mtime)
{
    struct stat st;

    memset(&st, 0, sizeof(st));
    st.st_size = size;
    st.st_ino = ino;
    st.st_dev = 7;
    st.st_mtim.tv_sec = mtime;
    st.st_mtim.tv_nsec = 5;
    return st;
}

static uint8_t *bytes(const char *s)
{
    uint8_t *b = malloc(strlen(s) + 1);
    memcpy(b, s, strlen(s) + 1);
    return b;
}

START_TEST(put_then_get_returns_the_entry_with_its_validators)
{
    gh_filecache *fc = gh_filecache_new(1024, 4096);
    struct stat st = fake_stat(5, 1, 1000);
    gh_fcentry *e = gh_filecache_put(fc, "0:a.html", 8, bytes("hello"), &st, "text/html", 42);

    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_eq(gh_filecache_get(fc, "0:a.html", 8), e);
    ck_assert_ptr_null(gh_filecache_get(fc, "1:a.html", 8));
    ck_assert_mem_eq(e->data, "hello", 5);
    ck_assert_int_eq(e->checked, 42);
    ck_assert_str_eq(e->lastmod, "Thu, 01 Jan 1970 00:16:40 GMT");
    ck_assert_int_eq(e->etag[0], '"');
    ck_assert(gh_fcentry_is_current(e, &st));
    gh_filecache_free(fc);
}
END_TEST

START_TEST(a_changed_file_is_not_current)
{
    gh_filecache *fc = gh_filecache_new(1024, 4096);
    struct stat st = fake_stat(5, 1, 1000), other;
    gh_fcentry *e = gh_filecache_put(fc, "k", 1, bytes("hello"), &st, "text/plain", 1);

    other = fake_stat(5, 1, 1001);
    ck_assert(!gh_fcentry_is_current(e, &other));
    other = fake_stat(6, 1, 1000);
    ck_assert(!gh_fcentry_is_current(e, &other));
    other = fake_stat(5, 2, 1000);           /* replaced by rename */
    ck_assert(!gh_fcentry_is_current(e, &other));
    other = st;
    other.st_mtim.tv_nsec = 6;
    ck_assert(!gh_fcentry_is_current(e, &other));
    gh_filecache_free(fc);
}
END_TEST

START_TEST(put_replaces_an_entry_held_elsewhere_without_freeing_it)
{
    gh_filecache *fc = gh_filecache_new(1024, 4096);
    struct stat st = fake_stat(3, 1, 1);
    gh_fcentry *old = gh_filecache_put(fc, "k", 1, bytes("one"), &st, "text/plain", 1);
    gh_fcentry *newer;

    gh_fcentry_ref(old);                      /* an output buffer still sends it */
    st = fake_stat(3, 1, 2);
    newer = gh_filecache_put(fc, "k", 1, bytes("two"), &st, "text/plain", 2);
    ck_assert_ptr_eq(gh_filecache_get(fc, "k", 1), newer);
    ck_assert_mem_eq(old->data, "one", 3);    /* still readable (ASan would say) */
    gh_fcentry_unref(old);
    gh_filecache_free(fc);
}
END_TEST

START_TEST(files_over_the_limit_are_refused_and_the_budget_is_kept)
{
    gh_filecache *fc = gh_filecache_new(8, 10);
    struct stat big = fake_stat(9, 1, 1), six = fake_stat(6, 2, 1);
    gh_fcentry *a, *held;

    ck_assert_ptr_null(gh_filecache_put(fc, "big", 3, bytes("123456789"), &big, "x", 1));
    a = gh_filecache_put(fc, "a", 1, bytes("aaaaaa"), &six, "x", 1);
    ck_assert_ptr_nonnull(a);
    held = a;
    gh_fcentry_ref(held);
    six.st_ino = 3;
    ck_assert_ptr_nonnull(gh_filecache_put(fc, "b", 1, bytes("bbbbbb"), &six, "x", 1));
    ck_assert_ptr_null(gh_filecache_get(fc, "a", 1));   /* dropped to stay in budget */
    ck_assert_ptr_nonnull(gh_filecache_get(fc, "b", 1));
    ck_assert_mem_eq(held->data, "aaaaaa", 6);
    gh_fcentry_unref(held);
    gh_filecache_free(fc);
}
END_TEST

START_TEST(free_of_null_is_a_no_op)
{
    gh_filecache_free(NULL);
    gh_fcentry_unref(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("filecache");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, put_then_get_returns_the_entry_with_its_validators);
    tcase_add_test(tc, a_changed_file_is_not_current);
    tcase_add_test(tc, put_replaces_an_entry_held_elsewhere_without_freeing_it);
    tcase_add_test(tc, files_over_the_limit_are_refused_and_the_budget_is_kept);
    tcase_add_test(tc, free_of_null_is_a_no_op);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
