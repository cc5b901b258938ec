/* test_httpresp.c: response heads are built exactly, never overflow, and
 * never let a value split the head. */
#include <check.h>
#include <string.h>

#include "httpresp.h"

START_TEST(head_is_built_in_order)
{
    gh_resp_head h;
    static const char want[] = "HTTP/1.1 404 Not Found\r\nServer: gatehouse\r\n"
                               "Content-Length: 1234567890123\r\nX: y\r\n\r\n";

    gh_resp_start(&h, 404);
    gh_resp_add_str(&h, "Server", "gatehouse");
    gh_resp_add_u64(&h, "Content-Length", 1234567890123ULL);
    gh_resp_add_raw(&h, "X: y\r\n", 6);
    gh_resp_end(&h);
    ck_assert(!h.overflow);
    ck_assert_uint_eq(h.len, sizeof(want) - 1);
    ck_assert_mem_eq(h.buf, want, h.len);
}
END_TEST

START_TEST(zero_is_written_as_a_digit)
{
    gh_resp_head h;

    gh_resp_start(&h, 200);
    gh_resp_add_u64(&h, "Content-Length", 0);
    ck_assert(memmem(h.buf, h.len, "Content-Length: 0\r\n", 19) != NULL);
}
END_TEST

START_TEST(a_value_with_cr_or_lf_marks_overflow)
{
    gh_resp_head h;

    gh_resp_start(&h, 301);
    gh_resp_add(&h, "Location", "/a\r\nSet-Cookie: x", 17);
    ck_assert(h.overflow);
    gh_resp_start(&h, 301);
    gh_resp_add(&h, "Location", "/a\nb", 4);
    ck_assert(h.overflow);
}
END_TEST

START_TEST(too_much_marks_overflow_without_writing_past_the_buffer)
{
    gh_resp_head h;
    static char big[GH_RESP_HEAD_MAX];

    memset(big, 'a', sizeof(big) - 1);
    gh_resp_start(&h, 200);
    gh_resp_add(&h, "X", big, sizeof(big) - 1);
    ck_assert(h.overflow);
    ck_assert_uint_le(h.len, GH_RESP_HEAD_MAX);
}
END_TEST

START_TEST(reason_phrases_and_error_bodies)
{
    char body[512];
    size_t n;

    ck_assert_str_eq(gh_http_reason(431), "Request Header Fields Too Large");
    ck_assert_str_eq(gh_http_reason(799), "Unknown");
    n = gh_resp_error_body(405, body, sizeof(body));
    ck_assert_uint_eq(n, strlen(body));
    ck_assert(strstr(body, "405 Method Not Allowed") != NULL);
    n = gh_resp_error_body(405, body, 10);
    ck_assert_uint_eq(n, 9);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("httpresp");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, head_is_built_in_order);
    tcase_add_test(tc, zero_is_written_as_a_digit);
    tcase_add_test(tc, a_value_with_cr_or_lf_marks_overflow);
    tcase_add_test(tc, too_much_marks_overflow_without_writing_past_the_buffer);
    tcase_add_test(tc, reason_phrases_and_error_bodies);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
