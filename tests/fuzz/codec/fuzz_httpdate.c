/* fuzz_httpdate.c: libFuzzer driver for the HTTP date parser and the
 * If-None-Match matcher.
 *
 * A date that parses must format back to a date that parses to the same
 * time; an accepted IMF-fixdate without a leap second must format back to
 * itself apart from the weekday (which the parser does not check against
 * the date). The If-None-Match list is matched against fixed tags and
 * against a tag built from the input; a formatted tag always matches
 * itself, weak or strong. */
#include "httpdate.h"
#include "err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check_date(const char *s, size_t len)
{
    char out[GH_HTTPDATE_LEN + 1];
    time_t t, back;
    int rc = gh_httpdate_parse(s, len, &t);

    if (rc != GH_OK) {
        if (rc != GH_EINVAL)
            abort();
        return;
    }
    if ((int64_t)t < -62167219200LL || (int64_t)t > 253402300800LL)
        abort();
    gh_httpdate_format(t, out);
    if (strlen(out) != GH_HTTPDATE_LEN)
        abort();
    if (gh_httpdate_parse(out, GH_HTTPDATE_LEN, &back) != GH_OK)
        abort();
    /* 9999-12-31T23:59:60 is past what format can write; it clamps */
    if (back != t && (int64_t)t != 253402300800LL)
        abort();
    if (len == GH_HTTPDATE_LEN && s[3] == ',' && memcmp(s + 23, "60", 2) != 0
        && memcmp(out + 3, s + 3, GH_HTTPDATE_LEN - 3) != 0)
        abort();
}

static void check_etag(const uint8_t *data, size_t size)
{
    char tag[GH_ETAG_MAX], weak[GH_ETAG_MAX + 2], list[GH_ETAG_MAX + 16];
    uint64_t rep = 0;
    int64_t sec = 0;
    int32_t nsec = 0;
    int n;

    if (size >= 20) {
        memcpy(&rep, data, 8);
        memcpy(&sec, data + 8, 8);
        memcpy(&nsec, data + 16, 4);
    }
    n = gh_etag_format(rep, sec, nsec, tag, sizeof(tag));
    if (n < 0 || (size_t)n != strlen(tag) || n >= GH_ETAG_MAX)
        abort();
    snprintf(weak, sizeof(weak), "W/%s", tag);
    snprintf(list, sizeof(list), " ,%s ,\t", weak);
    if (!gh_etag_match(tag, (size_t)n, tag) || !gh_etag_match(weak, strlen(weak), tag)
        || !gh_etag_match(list, strlen(list), tag) || !gh_etag_match(tag, (size_t)n, weak))
        abort();
    (void)gh_etag_match((const char *)data, size, tag);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;

    check_date(s, size);
    (void)gh_etag_match(s, size, "\"abc\"");
    (void)gh_etag_match(s, size, "W/\"\"");
    (void)gh_etag_match(s, size, NULL);
    check_etag(data, size);
    return 0;
}
