/* httpdate.c: HTTP dates (RFC 9110 §5.6.7) and entity tags (§8.8.3) for
 * Last-Modified / If-Modified-Since and ETag / If-None-Match.
 *
 * Dates are written and read with our own name tables, never strftime or
 * strptime, so the output cannot change with the locale or TZ. Parsing is
 * strict, as the grammar is written: exact lengths, case-sensitive names,
 * fields in range (including the day of the month), nothing trailing. The
 * weekday is checked for spelling but not against the date, since it is
 * redundant. A date the caller cannot trust is a date it ignores, which for
 * conditional requests only costs a full response.
 *
 * Our ETag is "<hex size>-<hex mtime seconds><8 hex digits nanoseconds>":
 * strong, changes with either size or mtime, and needs no hashing of file
 * contents. We do not generate weak tags. */
#include "httpdate.h"
#include "err.h"

#include <string.h>

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: four-digit years only */
#define HTTPDATE_MIN (-62167219200LL)
#define HTTPDATE_MAX (253402300799LL)

static const char wkday_short[7][4] = {
    "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
};

static const char *const wkday_long[7] = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
    "Saturday",
};

static const char month_short[12][4] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* ---- formatting ------------------------------------------------------- */

static char *put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

void gh_httpdate_format(time_t t, char *out)
{
    struct tm tm;
    int64_t v = (int64_t)t;
    time_t ct;
    char *p = out;
    int year;

    if (v < HTTPDATE_MIN)
        v = HTTPDATE_MIN;
    if (v > HTTPDATE_MAX)
        v = HTTPDATE_MAX;
    ct = (time_t)v;
    if (gmtime_r(&ct, &tm) == NULL) {
        /* only with a 32-bit time_t that cannot hold the clamped value */
        memcpy(out, "Thu, 01 Jan 1970 00:00:00 GMT", GH_HTTPDATE_LEN + 1);
        return;
    }
    year = tm.tm_year + 1900;
    memcpy(p, wkday_short[tm.tm_wday], 3);
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    p = put2(p, tm.tm_mday);
    *p++ = ' ';
    memcpy(p, month_short[tm.tm_mon], 3);
    p += 3;
    *p++ = ' ';
    p = put2(p, year / 100);
    p = put2(p, year % 100);
    *p++ = ' ';
    p = put2(p, tm.tm_hour);
    *p++ = ':';
    p = put2(p, tm.tm_min);
    *p++ = ':';
    p = put2(p, tm.tm_sec);
    memcpy(p, " GMT", 5);
}

/* ---- parsing ---------------------------------------------------------- */

typedef struct civil {
    int year, mon, mday;         /* mon 0..11, mday 1..31 */
    int hour, min, sec;
} civil;

/* n decimal digits, or -1 */
static int digits(const char *s, size_t n)
{
    int v = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int find_month(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (memcmp(s, month_short[i], 3) == 0)
            return i;
    return -1;
}

static bool is_wkday_short(const char *s)
{
    for (int i = 0; i < 7; i++)
        if (memcmp(s, wkday_short[i], 3) == 0)
            return true;
    return false;
}

/* "HH:MM:SS" */
static bool parse_clock(const char *s, civil *c)
{
    if (s[2] != ':' || s[5] != ':')
        return false;
    c->hour = digits(s, 2);
    c->min = digits(s + 3, 2);
    c->sec = digits(s + 6, 2);
    return c->hour >= 0 && c->min >= 0 && c->sec >= 0;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 in the proleptic Gregorian calendar, for years
 * 0..9999 (the same arithmetic as timegm, without its normalisation). */
static int64_t days_from_civil(int64_t y, int mon, int mday)
{
    int64_t era, yoe, doy, doe;
    int m = mon + 1;

    y -= m <= 2;
    era = y / 400;                   /* y >= -1: only -1 rounds toward zero */
    if (y < 0)
        era = -1;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + mday - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Range-checks c and converts it. A leap second (:60) is accepted (§5.6.7
 * allows it) and lands on the next second, as timegm would put it. */
static int civil_to_time(const civil *c, time_t *t)
{
    static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int64_t v;
    int dim;

    if (c->year < 0 || c->year > 9999 || c->mon < 0 || c->mon > 11)
        return GH_EINVAL;
    dim = mdays[c->mon] + (c->mon == 1 && is_leap(c->year));
    if (c->mday < 1 || c->mday > dim || c->hour > 23 || c->min > 59 || c->sec > 60)
        return GH_EINVAL;
    v = days_from_civil(c->year, c->mon, c->mday) * 86400
        + c->hour * 3600 + c->min * 60 + c->sec;
    if ((int64_t)(time_t)v != v)
        return GH_EINVAL;
    *t = (time_t)v;
    return GH_OK;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static int parse_imf(const char *s, size_t len, time_t *t)
{
    civil c;

    if (len != GH_HTTPDATE_LEN || !is_wkday_short(s) || s[3] != ',' || s[4] != ' '
        || s[7] != ' ' || s[11] != ' ' || s[16] != ' '
        || memcmp(s + 25, " GMT", 4) != 0)
        return GH_EINVAL;
    c.mday = digits(s + 5, 2);
    c.mon = find_month(s + 8);
    c.year = digits(s + 12, 4);
    if (!parse_clock(s + 17, &c))
        return GH_EINVAL;
    return civil_to_time(&c, t);
}

/* "Sun Nov  6 08:49:37 1994" (the day is "SP DIGIT" or 2DIGIT) */
static int parse_asctime(const char *s, size_t len, time_t *t)
{
    civil c;

    if (len != 24 || !is_wkday_short(s) || s[3] != ' ' || s[7] != ' '
        || s[10] != ' ' || s[19] != ' ')
        return GH_EINVAL;
    c.mon = find_month(s + 4);
    c.mday = s[8] == ' ' ? digits(s + 9, 1) : digits(s + 8, 2);
    c.year = digits(s + 20, 4);
    if (!parse_clock(s + 11, &c))
        return GH_EINVAL;
    return civil_to_time(&c, t);
}

/* §5.6.7: a two-digit year more than 50 years in the future is the most
 * recent past year with the same last two digits. Years, not instants. */
static int rfc850_year(int yy, int now_year)
{
    int y = now_year - now_year % 100 + yy;

    if (y > now_year + 50)
        y -= 100;
    else if (y <= now_year - 50)
        y += 100;                    /* e.g. now 2090, "05" is 2105 */
    return y;
}

static int current_year(void)
{
    time_t now = time(NULL);
    struct tm tm;

    if (now == (time_t)-1 || gmtime_r(&now, &tm) == NULL)
        return 1970;
    return tm.tm_year + 1900;
}

/* "Sunday, 06-Nov-94 08:49:37 GMT" */
static int parse_rfc850(const char *s, size_t len, time_t *t)
{
    const char *r = NULL;
    civil c;
    int yy;

    for (int i = 0; i < 7; i++) {
        size_t n = strlen(wkday_long[i]);

        if (len > n && memcmp(s, wkday_long[i], n) == 0) {
            r = s + n;
            len -= n;
            break;
        }
    }
    /* ", 06-Nov-94 08:49:37 GMT" */
    if (r == NULL || len != 24 || r[0] != ',' || r[1] != ' ' || r[4] != '-'
        || r[8] != '-' || r[11] != ' ' || memcmp(r + 20, " GMT", 4) != 0)
        return GH_EINVAL;
    c.mday = digits(r + 2, 2);
    c.mon = find_month(r + 5);
    yy = digits(r + 9, 2);
    if (yy < 0 || !parse_clock(r + 12, &c))
        return GH_EINVAL;
    c.year = rfc850_year(yy, current_year());
    return civil_to_time(&c, t);
}

int gh_httpdate_parse(const char *s, size_t len, time_t *t)
{
    if (s == NULL || len < 4)
        return GH_EINVAL;
    if (s[3] == ',')
        return parse_imf(s, len, t);
    if (s[3] == ' ')
        return parse_asctime(s, len, t);
    return parse_rfc850(s, len, t);
}

/* ---- entity tags ------------------------------------------------------ */

static char *put_hex(char *p, uint64_t v, int min_digits)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    int n = 0;

    do {
        tmp[n++] = hex[v & 0xf];
        v >>= 4;
    } while (v != 0);
    while (n < min_digits)
        tmp[n++] = '0';
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

int gh_etag_format(uint64_t size, int64_t mtime_sec, long mtime_nsec,
                   char *out, size_t cap)
{
    char buf[GH_ETAG_MAX];
    char *p = buf;
    size_t n;

    *p++ = '"';
    p = put_hex(p, size, 1);
    *p++ = '-';
    /* a pre-1970 mtime is written as its two's complement: still unique */
    p = put_hex(p, (uint64_t)mtime_sec, 1);
    p = put_hex(p, (uint32_t)mtime_nsec, 8);
    *p++ = '"';
    n = (size_t)(p - buf);
    if (out == NULL || cap < n + 1)
        return GH_E2BIG;
    memcpy(out, buf, n);
    out[n] = '\0';
    return (int)n;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* etagc = %x21 / %x23-7E / obs-text */
static bool is_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c != 0x7f);
}

/* Reads one entity-tag at p: [ "W/" ] DQUOTE *etagc DQUOTE. Returns the
 * position after it with *tag and *tag_len the opaque part without quotes, or
 * NULL when malformed. */
static const char *scan_etag(const char *p, const char *end,
                             const char **tag, size_t *tag_len)
{
    const char *start;

    if (end - p >= 2 && p[0] == 'W' && p[1] == '/')
        p += 2;
    if (p == end || *p != '"')
        return NULL;
    start = ++p;
    while (p < end && *p != '"') {
        if (!is_etagc((unsigned char)*p))
            return NULL;
        p++;
    }
    if (p == end)
        return NULL;
    *tag = start;
    *tag_len = (size_t)(p - start);
    return p + 1;
}

bool gh_etag_match(const char *value, size_t len, const char *etag)
{
    const char *p = value, *end, *mine = NULL, *tag, *q;
    size_t mine_len = 0, tag_len;
    bool matched = false;

    if (value == NULL)
        return false;
    end = value + len;
    while (p < end && is_ows(*p))
        p++;
    while (end > p && is_ows(end[-1]))
        end--;
    if (end - p == 1 && *p == '*')
        return true;
    if (etag != NULL) {
        const char *eend = etag + strlen(etag);

        if (scan_etag(etag, eend, &mine, &mine_len) != eend)
            return false;
    } else {
        return false;
    }
    /* [ element ] *( OWS "," OWS [ element ] ); a malformed list matches
     * nothing, so the caller sends the full response */
    for (;;) {
        q = p;
        while (q < end && is_ows(*q))
            q++;
        if (q == end || *q == ',') {
            p = q;
        } else {
            if ((p = scan_etag(p, end, &tag, &tag_len)) == NULL)
                return false;
            if (tag_len == mine_len && memcmp(tag, mine, tag_len) == 0)
                matched = true;
            while (p < end && is_ows(*p))
                p++;
        }
        if (p == end)
            break;
        if (*p != ',')
            return false;
        p++;
        while (p < end && is_ows(*p))
            p++;
    }
    return matched;
}
