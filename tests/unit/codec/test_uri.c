/* test_uri.c: request-path normalisation.
 *
 * A table of paths with their normal form or error, every escaped and raw
 * byte value, exact GH_E2BIG boundaries, input right before a PROT_NONE
 * page, and a randomised comparison against a plain decode-split-stack
 * reference written from the header's contract. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "err.h"
#include "uri.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static long norm(const char *in, char *out, size_t cap)
{
    return gh_uri_normalize_path(in, strlen(in), out, cap);
}

static const struct {
    const char *in, *out;
} good[] = {
    { "/", "/" },
    { "//", "/" },
    { "///", "/" },
    { "/.", "/" },
    { "/./", "/" },
    { "/./.", "/" },
    { "/a", "/a" },
    { "/a/", "/a/" },
    { "/a//", "/a/" },
    { "/a/b/../c/", "/a/c/" },
    { "/a/b/../c", "/a/c" },
    { "//etc/passwd", "/etc/passwd" },
    { "/a//b///c", "/a/b/c" },
    { "/a/%2e%2e/b", "/b" },
    { "/a/%2E%2e/b", "/b" },
    { "/a/..%2fb", "/b" },          /* a decoded '/' separates segments */
    { "/a/..%2Fb", "/b" },
    { "/a%2fb", "/a/b" },
    { "/a%2F%2Fb", "/a/b" },
    { "/a/b/..", "/a/" },
    { "/a/b/.", "/a/b/" },
    { "/a/.", "/a/" },
    { "/a/..", "/" },
    { "/a/../", "/" },
    { "/a/./b", "/a/b" },
    { "/a/b/c/../../d", "/a/d" },
    { "/a//../b", "/b" },           /* empty segments collapse first */
    { "/a/b/c/./../../g", "/a/g" },
    { "/%41%42c", "/ABc" },
    { "/%7e%7E", "/~~" },
    { "/a%20b", "/a b" },
    { "/...", "/..." },
    { "/.a/..b/a./a..", "/.a/..b/a./a.." },
    { "/%2E", "/" },
    { "/a/%2e", "/a/" },
    { "/%25", "/%" },
    { "/%25%32%65", "/%2e" },       /* decoded once, never twice */
    { "/%252e%252e/x", "/%2e%2e/x" },
    { "/caf%C3%A9/\xc3\xa9", "/caf\xc3\xa9/\xc3\xa9" },
    { "/index.html", "/index.html" },
    { "/ws/chat", "/ws/chat" },
    { "/a/b/../../c/./d/", "/c/d/" },
};

START_TEST(normalize_resolves_dots_and_collapses_slashes)
{
    for (size_t i = 0; i < N_ELEMS(good); i++) {
        char out[256];
        long n = norm(good[i].in, out, sizeof(out));

        ck_assert_msg(n == (long)strlen(good[i].out), "%s: %ld", good[i].in, n);
        ck_assert_str_eq(out, good[i].out);
    }
}
END_TEST

START_TEST(normalize_refuses_bad_paths)
{
    static const char *const bad[] = {
        "a", "%2f", "%2fa", "./a", "*",
        "/..", "/../", "/%2e%2e/x", "/%2E%2E", "/.%2e", "/a/../..",
        "/a/../../b", "/./..", "/a/%2E%2E/%2e%2e/x", "/a/b/../../../c",
        "/%", "/%2", "/a%", "/a%2", "/%zz", "/%g0", "/%0g", "/%%41", "/% 41",
        "/%00", "/a%00b", "/%0a", "/%0D", "/%1F", "/%1f", "/%7f", "/%7F",
        "/a\x01", "/a\x1f", "/a\x7f", "/a\tb", "/a\nb",
    };
    char out[256];

    for (size_t i = 0; i < N_ELEMS(bad); i++)
        ck_assert_msg(norm(bad[i], out, sizeof(out)) == GH_EPROTO, "%s", bad[i]);
    ck_assert_int_eq(gh_uri_normalize_path("/a\0b", 4, out, sizeof(out)), GH_EPROTO);
    ck_assert_int_eq(gh_uri_normalize_path("", 0, out, sizeof(out)), GH_EPROTO);
    ck_assert_int_eq(gh_uri_normalize_path(NULL, 0, out, sizeof(out)), GH_EPROTO);
}
END_TEST

START_TEST(normalize_decodes_every_escape)
{
    static const char hex[] = "0123456789abcdef0123456789ABCDEF";

    for (int upper = 0; upper < 2; upper++) {
        for (int c = 0; c < 256; c++) {
            char in[8] = "/%", out[8];
            long n;

            in[2] = hex[upper * 16 + (c >> 4)];
            in[3] = hex[upper * 16 + (c & 15)];
            n = gh_uri_normalize_path(in, 4, out, sizeof(out));
            if (c < 0x20 || c == 0x7f) {
                ck_assert_int_eq(n, GH_EPROTO);
            } else if (c == '/' || c == '.') {
                ck_assert_int_eq(n, 1);
                ck_assert_str_eq(out, "/");
            } else {
                ck_assert_int_eq(n, 2);
                ck_assert_int_eq((unsigned char)out[1], c);
                ck_assert_int_eq(out[2], '\0');
            }
        }
    }
}
END_TEST

START_TEST(normalize_passes_raw_bytes_and_refuses_raw_controls)
{
    for (int c = 0; c < 256; c++) {
        char in[4] = "/a", out[8];
        long n;

        in[2] = (char)c;
        n = gh_uri_normalize_path(in, 3, out, sizeof(out));
        if (c < 0x20 || c == 0x7f || c == '%')
            ck_assert_int_eq(n, GH_EPROTO);
        else
            ck_assert_int_eq(n, 3);     /* "/a/" and "/a." included */
        if (n > 0)
            ck_assert_int_eq(memcmp(out, in, 4), 0);
    }
}
END_TEST

START_TEST(normalize_needs_room_for_the_result_and_its_nul)
{
    char out[16], big[300];
    size_t n;

    memset(out, 'x', sizeof(out));
    ck_assert_int_eq(norm("/abc", out, 5), 4);
    ck_assert_str_eq(out, "/abc");
    ck_assert_int_eq(norm("/abc", out, 4), GH_E2BIG);
    ck_assert_int_eq(norm("/abc", out, 0), GH_E2BIG);
    ck_assert_int_eq(norm("/", out, 2), 1);
    ck_assert_int_eq(norm("/", out, 1), GH_E2BIG);
    ck_assert_int_eq(norm("/a/", out, 4), 3);
    ck_assert_int_eq(norm("/a/", out, 3), GH_E2BIG);
    /* only the result counts, not what the input or its ".." spans */
    n = (size_t)snprintf(big, sizeof(big), "/");
    memset(big + n, 'a', 200);
    snprintf(big + n + 200, sizeof(big) - n - 200, "/../%%62");
    ck_assert_int_eq(norm(big, out, 3), 2);
    ck_assert_str_eq(out, "/b");
    ck_assert_int_eq(norm("/%41%41%41", out, 5), 4);
    ck_assert_str_eq(out, "/AAA");
    /* a bad path is GH_EPROTO whatever the room */
    ck_assert_int_eq(norm("/..", out, 0), GH_EPROTO);
}
END_TEST

START_TEST(normalize_never_reads_past_the_input)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *mem = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    ck_assert_ptr_ne(mem, MAP_FAILED);
    ck_assert_int_eq(mprotect(mem + page, page, PROT_NONE), 0);
    for (size_t i = 0; i < N_ELEMS(good); i++) {
        size_t len = strlen(good[i].in);
        char *p = mem + page - len, out[256];

        memcpy(p, good[i].in, len);
        ck_assert_int_eq(gh_uri_normalize_path(p, len, out, sizeof(out)),
                         strlen(good[i].out));
        /* and every prefix, which may be good or bad but never a crash */
        for (size_t k = 0; k < len; k++) {
            long n;

            memmove(mem + page - k, good[i].in, k);
            n = gh_uri_normalize_path(mem + page - k, k, out, sizeof(out));
            ck_assert(n == GH_EPROTO || (n > 0 && out[0] == '/'));
        }
    }
    munmap(mem, 2 * page);
}
END_TEST

static int hexv(char c)
{
    const char *digits = "0123456789abcdef";
    const char *p = c != '\0' ? strchr(digits, c >= 'A' && c <= 'F' ? c + 32 : c) : NULL;

    return p != NULL ? (int)(p - digits) : -1;
}

/* The reference: decode everything, split on '/', push and pop. */
static long reference(const char *in, size_t len, char *out, size_t cap)
{
    char dec[512], *segs[256];
    size_t lens[256], nseg = 0, d = 0, o = 0;
    bool trailing = false;

    if (len == 0 || in[0] != '/')
        return GH_EPROTO;
    for (size_t i = 0; i < len; i++) {
        unsigned c = (unsigned char)in[i];

        if (c == '%') {
            int hi, lo;

            if (i + 2 >= len || (hi = hexv(in[i + 1])) < 0 || (lo = hexv(in[i + 2])) < 0)
                return GH_EPROTO;
            c = (unsigned)(hi * 16 + lo);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f)
            return GH_EPROTO;
        dec[d++] = (char)c;
    }
    for (size_t i = 1, start = 1; i <= d; i++) {
        if (i < d && dec[i] != '/')
            continue;
        {
            size_t sl = i - start;
            bool dot = sl == 0 || (sl == 1 && dec[start] == '.');
            bool dotdot = sl == 2 && dec[start] == '.' && dec[start + 1] == '.';

            trailing = dot || dotdot;
            if (dotdot) {
                if (nseg == 0)
                    return GH_EPROTO;
                nseg--;
            } else if (!dot) {
                segs[nseg] = dec + start;
                lens[nseg++] = sl;
            }
        }
        start = i + 1;
    }
    for (size_t s = 0; s < nseg; s++) {
        out[o++] = '/';
        memcpy(out + o, segs[s], lens[s]);
        o += lens[s];
    }
    if (nseg == 0 || trailing)
        out[o++] = '/';
    if (o >= cap)
        return GH_E2BIG;
    out[o] = '\0';
    return (long)o;
}

START_TEST(normalize_agrees_with_a_simple_reference)
{
    static const char *const parts[] = {
        "/", "/", "/", "a", "b", "c", ".", "..", "%2e", "%2E", "%2f", "%2F",
        "%41", "%", "%0", "%00", "%7f", "x.y", "...", "%25", "~",
    };
    unsigned seed = 12345;

    for (int iter = 0; iter < 200000; iter++) {
        char in[128], out1[300], out2[300];
        size_t len = 0;
        int nparts;
        long a, b;

        seed = seed * 1103515245u + 12345u;
        nparts = (int)(seed >> 16) % 12;
        in[len++] = '/';
        for (int k = 0; k < nparts; k++) {
            const char *p;

            seed = seed * 1103515245u + 12345u;
            p = parts[(seed >> 16) % N_ELEMS(parts)];
            memcpy(in + len, p, strlen(p));
            len += strlen(p);
        }
        in[len] = '\0';
        a = gh_uri_normalize_path(in, len, out1, sizeof(out1));
        b = reference(in, len, out2, sizeof(out2));
        ck_assert_msg(a == b, "%s: %ld vs %ld", in, a, b);
        if (a > 0)
            ck_assert_msg(strcmp(out1, out2) == 0, "%s: %s vs %s", in, out1, out2);
    }
}
END_TEST

static Suite *uri_suite(void)
{
    Suite *s = suite_create("uri");
    TCase *tc = tcase_create("normalize_path");

    tcase_add_test(tc, normalize_resolves_dots_and_collapses_slashes);
    tcase_add_test(tc, normalize_refuses_bad_paths);
    tcase_add_test(tc, normalize_decodes_every_escape);
    tcase_add_test(tc, normalize_passes_raw_bytes_and_refuses_raw_controls);
    tcase_add_test(tc, normalize_needs_room_for_the_result_and_its_nul);
    tcase_add_test(tc, normalize_never_reads_past_the_input);
    tcase_add_test(tc, normalize_agrees_with_a_simple_reference);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(uri_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
