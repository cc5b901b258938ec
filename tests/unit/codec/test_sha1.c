/* test_sha1.c: SHA-1 against the FIPS 180 examples and, for every length
 * from 0 to 300 (each padding case: one block, two, exact multiples), fed
 * whole and from every offset of a buffer, against libcrypto's. */
#include "sha1.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

static void hex(const uint8_t md[GH_SHA1_LEN], char out[2 * GH_SHA1_LEN + 1])
{
    for (int i = 0; i < GH_SHA1_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void check_hex(const void *data, size_t len, const char *want)
{
    uint8_t md[GH_SHA1_LEN];
    char got[2 * GH_SHA1_LEN + 1];

    gh_sha1(data, len, md);
    hex(md, got);
    ck_assert_str_eq(got, want);
}

START_TEST(fips_examples)
{
    char *million = malloc(1000000);

    check_hex("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    check_hex("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
    check_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
              "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    ck_assert_ptr_nonnull(million);
    memset(million, 'a', 1000000);
    check_hex(million, 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    free(million);
}
END_TEST

START_TEST(every_length_matches_libcrypto)
{
    uint8_t buf[300 + 8];
    unsigned seed = 7;

    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)rand_r(&seed);
    for (size_t len = 0; len <= 300; len++) {
        for (size_t off = 0; off < 8; off++) {     /* unaligned starts */
            uint8_t a[GH_SHA1_LEN], b[EVP_MAX_MD_SIZE];
            unsigned int blen = 0;

            gh_sha1(buf + off, len, a);
            ck_assert_int_eq(EVP_Digest(buf + off, len, b, &blen, EVP_sha1(), NULL), 1);
            ck_assert_uint_eq(blen, GH_SHA1_LEN);
            ck_assert_msg(memcmp(a, b, GH_SHA1_LEN) == 0, "length %zu offset %zu", len, off);
        }
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sha1");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, fips_examples);
    tcase_add_test(tc, every_length_matches_libcrypto);
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
