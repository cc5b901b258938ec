/* test_mime.c: file name -> Content-Type (core/mime.c). */
#include "mime.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define OCTET "application/octet-stream"

typedef struct mime_case {
    const char *name;
    const char *type;
} mime_case;

static void check_table(const mime_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *got = gh_mime_type(c[i].name);

        ck_assert_ptr_nonnull(got);
        ck_assert_msg(strcmp(got, c[i].type) == 0, "%s: got \"%s\", want \"%s\"",
                      c[i].name, got, c[i].type);
    }
}

#define CHECK_TABLE(t) check_table((t), sizeof(t) / sizeof((t)[0]))

START_TEST(type_knows_every_listed_extension)
{
    static const mime_case cases[] = {
        { .name = "index.html", .type = "text/html; charset=utf-8" },
        { .name = "index.htm", .type = "text/html; charset=utf-8" },
        { .name = "chat.css", .type = "text/css; charset=utf-8" },
        { .name = "chat.js", .type = "text/javascript; charset=utf-8" },
        { .name = "mod.mjs", .type = "text/javascript; charset=utf-8" },
        { .name = "data.json", .type = "application/json; charset=utf-8" },
        { .name = "chat.js.map", .type = "application/json; charset=utf-8" },
        { .name = "site.webmanifest", .type = "application/manifest+json; charset=utf-8" },
        { .name = "logo.svg", .type = "image/svg+xml; charset=utf-8" },
        { .name = "robots.txt", .type = "text/plain; charset=utf-8" },
        { .name = "feed.xml", .type = "application/xml; charset=utf-8" },
        { .name = "a.png", .type = "image/png" },
        { .name = "a.jpg", .type = "image/jpeg" },
        { .name = "a.jpeg", .type = "image/jpeg" },
        { .name = "a.gif", .type = "image/gif" },
        { .name = "a.webp", .type = "image/webp" },
        { .name = "a.avif", .type = "image/avif" },
        { .name = "favicon.ico", .type = "image/x-icon" },
        { .name = "app.wasm", .type = "application/wasm" },
        { .name = "f.woff2", .type = "font/woff2" },
        { .name = "f.woff", .type = "font/woff" },
        { .name = "doc.pdf", .type = "application/pdf" },
    };
    CHECK_TABLE(cases);
}
END_TEST

START_TEST(type_ignores_extension_case)
{
    static const mime_case cases[] = {
        { .name = "INDEX.HTML", .type = "text/html; charset=utf-8" },
        { .name = "Chat.Js", .type = "text/javascript; charset=utf-8" },
        { .name = "A.WOFF2", .type = "font/woff2" },
        { .name = "x.WebManifest", .type = "application/manifest+json; charset=utf-8" },
        { .name = "x.PnG", .type = "image/png" },
    };
    CHECK_TABLE(cases);
}
END_TEST

START_TEST(type_looks_only_at_the_last_path_component)
{
    static const mime_case cases[] = {
        { .name = "/www/index.html", .type = "text/html; charset=utf-8" },
        { .name = "www/static.v2/app.css", .type = "text/css; charset=utf-8" },
        { .name = "a.d/file", .type = OCTET },
        { .name = "dir.js/", .type = OCTET },
        { .name = "/x.html/README", .type = OCTET },
        { .name = "archive.tar.gz", .type = OCTET },
        { .name = "page.html.gz", .type = OCTET },
        { .name = "min.css.js", .type = "text/javascript; charset=utf-8" },
    };
    CHECK_TABLE(cases);
}
END_TEST

START_TEST(type_treats_dot_files_and_odd_names_as_unknown)
{
    static const mime_case cases[] = {
        { .name = "", .type = OCTET },
        { .name = "/", .type = OCTET },
        { .name = ".", .type = OCTET },
        { .name = "..", .type = OCTET },
        { .name = "README", .type = OCTET },
        { .name = ".bashrc", .type = OCTET },
        { .name = ".html", .type = OCTET },
        { .name = "dir/.css", .type = OCTET },
        { .name = "file.", .type = OCTET },
        { .name = "file.html.", .type = OCTET },
        { .name = "file.htmll", .type = OCTET },
        { .name = "file.htm l", .type = OCTET },
        { .name = "file.ht", .type = OCTET },
        { .name = "file.verylongextensionname", .type = OCTET },
        { .name = "file.\xc3\xa9", .type = OCTET },
        { .name = "file.HTML\xe2\x80\x8b", .type = OCTET },
        /* a dot file with another dot does have an extension */
        { .name = ".hidden.css", .type = "text/css; charset=utf-8" },
        { .name = "..js", .type = "text/javascript; charset=utf-8" },
    };
    CHECK_TABLE(cases);
    ck_assert_str_eq(gh_mime_type(NULL), OCTET);
}
END_TEST

START_TEST(type_handles_long_names)
{
    size_t n = 100000;
    char *name = malloc(n + 6);

    ck_assert_ptr_nonnull(name);
    memset(name, 'a', n);
    memcpy(name + n, ".json", 6);
    ck_assert_str_eq(gh_mime_type(name), "application/json; charset=utf-8");
    memset(name, '.', n + 5);
    name[n + 5] = '\0';
    ck_assert_str_eq(gh_mime_type(name), OCTET);
    free(name);
}
END_TEST

static Suite *mime_suite(void)
{
    Suite *s = suite_create("mime");
    TCase *tc = tcase_create("type");

    tcase_add_test(tc, type_knows_every_listed_extension);
    tcase_add_test(tc, type_ignores_extension_case);
    tcase_add_test(tc, type_looks_only_at_the_last_path_component);
    tcase_add_test(tc, type_treats_dot_files_and_odd_names_as_unknown);
    tcase_add_test(tc, type_handles_long_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(mime_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
