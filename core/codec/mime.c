/* mime.c: file name -> Content-Type for the static-file handler.
 *
 * A small fixed table rather than /etc/mime.types: the gateway serves a
 * known set of web assets, and the answer must not change with the host it
 * runs on. Textual types carry "; charset=utf-8" so browsers never sniff.
 * The lookup is case-insensitive ASCII (never the C locale's tolower) and
 * looks only at the last path component: "a.d/file" has no extension, and
 * a dot file such as ".bashrc" has none either. It does not sniff content. */
#include "mime.h"

#include <stddef.h>
#include <string.h>

#define OCTET_STREAM "application/octet-stream"
#define EXT_MAX      11          /* longest extension in the table */

typedef struct mime_entry {
    const char *ext;             /* lower case, no dot */
    const char *type;
} mime_entry;

static const mime_entry mime_table[] = {
    { .ext = "html",        .type = "text/html; charset=utf-8" },
    { .ext = "htm",         .type = "text/html; charset=utf-8" },
    { .ext = "css",         .type = "text/css; charset=utf-8" },
    { .ext = "js",          .type = "text/javascript; charset=utf-8" },
    { .ext = "mjs",         .type = "text/javascript; charset=utf-8" },
    { .ext = "json",        .type = "application/json; charset=utf-8" },
    { .ext = "map",         .type = "application/json; charset=utf-8" },
    { .ext = "webmanifest", .type = "application/manifest+json; charset=utf-8" },
    { .ext = "svg",         .type = "image/svg+xml; charset=utf-8" },
    { .ext = "txt",         .type = "text/plain; charset=utf-8" },
    { .ext = "xml",         .type = "application/xml; charset=utf-8" },
    { .ext = "png",         .type = "image/png" },
    { .ext = "jpg",         .type = "image/jpeg" },
    { .ext = "jpeg",        .type = "image/jpeg" },
    { .ext = "gif",         .type = "image/gif" },
    { .ext = "webp",        .type = "image/webp" },
    { .ext = "avif",        .type = "image/avif" },
    { .ext = "ico",         .type = "image/x-icon" },
    { .ext = "wasm",        .type = "application/wasm" },
    { .ext = "woff2",       .type = "font/woff2" },
    { .ext = "woff",        .type = "font/woff" },
    { .ext = "pdf",         .type = "application/pdf" },
};

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

const char *gh_mime_type(const char *filename)
{
    const char *base, *dot, *slash;
    char ext[EXT_MAX + 1];
    size_t n;

    if (filename == NULL)
        return OCTET_STREAM;
    slash = strrchr(filename, '/');
    base = slash != NULL ? slash + 1 : filename;
    dot = strrchr(base, '.');
    /* no dot, a dot file (".bashrc"), or a trailing dot ("file.") */
    if (dot == NULL || dot == base || dot[1] == '\0')
        return OCTET_STREAM;
    n = strlen(dot + 1);
    if (n > EXT_MAX)
        return OCTET_STREAM;
    for (size_t i = 0; i < n; i++)
        ext[i] = ascii_lower(dot[1 + i]);
    ext[n] = '\0';
    for (size_t i = 0; i < sizeof(mime_table) / sizeof(mime_table[0]); i++)
        if (strcmp(ext, mime_table[i].ext) == 0)
            return mime_table[i].type;
    return OCTET_STREAM;
}
