/* chatcore.c: the chat plugin's pure parts: validation, the query reader,
 * the roster, the token bucket and the history ring.
 *
 * Kept apart from chat.c so that every rule a client can hit (what a room
 * or nick may be, which suffix a colliding nick gets, when a message is
 * over the rate, what history keeps) is tested byte by byte without a
 * daemon. Nothing here does I/O, parses JSON or calls the host; only the
 * roster's hash table and the history's entries allocate.
 *
 * It deliberately does no Unicode normalisation or case folding beyond
 * ASCII: that would need tables this plugin should not carry, and the
 * rules stay predictable for clients. */
#include "chatcore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- validation ------------------------------------------------------- */

bool gh_chat_room_is_valid(const char *s, size_t len)
{
    if (len == 0 || len > GH_CHAT_ROOM_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* Decodes one code point of strict UTF-8 (RFC 3629) at s[0..len), len > 0.
 * Returns its length in bytes (1..4) and sets *cp, or 0 when the bytes are
 * not UTF-8 (overlong, surrogate, above U+10FFFF, truncated). */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t v, min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        v = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        v = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;               /* continuation byte, 0xc0, 0xc1, 0xf5.. */
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

/* The printable rule of gh_chat_nick_check(), for one code point. */
static bool is_printable(uint32_t cp)
{
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
        return false;                           /* C0, DEL, C1 */
    switch (cp) {
    case 0x061c:                                /* ARABIC LETTER MARK */
    case 0x200e: case 0x200f:                   /* LRM, RLM */
    case 0xfeff:                                /* BOM / ZWNBSP */
    case 0xfffe: case 0xffff:                   /* noncharacters */
        return false;
    default:
        break;
    }
    if (cp >= 0x2028 && cp <= 0x202e)           /* LS, PS, LRE..RLO */
        return false;
    if (cp >= 0x2066 && cp <= 0x2069)           /* LRI..PDI */
        return false;
    if (cp >= 0xfff9 && cp <= 0xfffb)           /* interlinear annotation */
        return false;
    return true;
}

static bool is_ascii_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

int gh_chat_nick_check(const char *in, size_t len, const char **nick, size_t *nick_len)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t b = 0, e = len, chars = 0;

    while (b < e && is_ascii_space(s[b]))
        b++;
    while (e > b && is_ascii_space(s[e - 1]))
        e--;
    if (b == e)
        return -EINVAL;
    for (size_t i = b; i < e;) {
        uint32_t cp;
        size_t n = utf8_decode(s + i, e - i, &cp);
        if (n == 0 || !is_printable(cp))
            return -EINVAL;
        i += n;
        chars++;
    }
    if (chars > GH_CHAT_NICK_MAX_CHARS)
        return -E2BIG;
    *nick = in + b;
    *nick_len = e - b;
    return 0;
}

size_t gh_chat_utf8_chars(const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

/* ---- the query string --------------------------------------------------- */

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int gh_chat_query_get(const char *query, size_t qlen, const char *key,
                      char *out, size_t cap, size_t *out_len)
{
    size_t klen = strlen(key), pos = 0;

    while (pos < qlen) {
        const char *pair = query + pos;
        const char *amp = memchr(pair, '&', qlen - pos);
        size_t plen = amp != NULL ? (size_t)(amp - pair) : qlen - pos;
        const char *eq = memchr(pair, '=', plen);
        size_t nlen = eq != NULL ? (size_t)(eq - pair) : plen;

        pos += plen + (amp != NULL ? 1 : 0);
        if (nlen != klen || memcmp(pair, key, klen) != 0)
            continue;
        const unsigned char *v = (const unsigned char *)(eq != NULL ? eq + 1 : pair + plen);
        size_t vlen = eq != NULL ? plen - nlen - 1 : 0, n = 0;
        for (size_t i = 0; i < vlen; i++) {
            unsigned char c = v[i];
            if (c == '%') {
                int hi, lo;
                if (vlen - i < 3 || (hi = hexval(v[i + 1])) < 0 || (lo = hexval(v[i + 2])) < 0)
                    return -EPROTO;
                c = (unsigned char)(hi << 4 | lo);
                i += 2;
            } else if (c == '+') {
                c = ' ';
            }
            if (n == cap)
                return -E2BIG;
            out[n++] = (char)c;
        }
        *out_len = n;
        return 0;
    }
    return -ENOENT;
}

/* ---- the roster ------------------------------------------------------- */

static unsigned char fold(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* FNV-1a over the ASCII-folded bytes. */
static uint32_t nick_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h ^= fold((unsigned char)s[i]);
        h *= 16777619u;
    }
    return h;
}

static bool nick_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (fold((unsigned char)a[i]) != fold((unsigned char)b[i]))
            return false;
    return true;
}

void gh_chat_roster_init(gh_chat_roster *r)
{
    memset(r, 0, sizeof(*r));
}

void gh_chat_roster_deinit(gh_chat_roster *r)
{
    free(r->buckets);
    memset(r, 0, sizeof(*r));
}

/* The member other than self with the nick, or NULL. */
static gh_chat_member *find_other(const gh_chat_roster *r, const char *nick, size_t len,
                                  const gh_chat_member *self)
{
    uint32_t h;

    if (r->nbuckets == 0)
        return NULL;
    h = nick_hash(nick, len);
    for (gh_chat_member *m = r->buckets[h & (r->nbuckets - 1)]; m != NULL; m = m->hnext)
        if (m != self && m->hash == h && nick_eq(m->nick, m->nick_len, nick, len))
            return m;
    return NULL;
}

gh_chat_member *gh_chat_roster_find(const gh_chat_roster *r, const char *nick, size_t len)
{
    return find_other(r, nick, len, NULL);
}

/* The length of the longest prefix of s[0..len) that holds at most chars
 * code points. */
static size_t cut_chars(const char *s, size_t len, size_t chars)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80) {
            if (n == chars)
                return i;
            n++;
        }
    }
    return len;
}

int gh_chat_roster_unique(const gh_chat_roster *r, const char *nick, size_t len,
                          const gh_chat_member *self, char *out, size_t *out_len)
{
    char num[24];
    size_t limit;

    if (len == 0 || len > GH_CHAT_NICK_MAX_BYTES)
        return -EINVAL;
    if (find_other(r, nick, len, self) == NULL) {
        memcpy(out, nick, len);
        out[len] = '\0';
        *out_len = len;
        return 0;
    }
    /* At most count nicks are taken, so count + 1 distinct candidates
     * hold a free one; cutting the base can make two candidates equal
     * ("…x12" + "3" and "…x1" + "23"), hence the slack. */
    limit = r->count + 64;
    for (size_t n = 2; n <= limit; n++) {
        size_t dlen = 0, base;

        for (size_t v = n; v > 0; v /= 10)
            num[dlen++] = (char)('0' + v % 10);
        base = cut_chars(nick, len, GH_CHAT_NICK_MAX_CHARS - dlen);
        memcpy(out, nick, base);
        for (size_t i = 0; i < dlen; i++)
            out[base + i] = num[dlen - 1 - i];
        out[base + dlen] = '\0';
        if (find_other(r, out, base + dlen, self) == NULL) {
            *out_len = base + dlen;
            return 0;
        }
    }
    return -ERANGE;
}

static void hash_link(gh_chat_roster *r, gh_chat_member *m)
{
    gh_chat_member **b = &r->buckets[m->hash & (r->nbuckets - 1)];

    m->hnext = *b;
    *b = m;
}

static void hash_unlink(gh_chat_roster *r, gh_chat_member *m)
{
    gh_chat_member **p = &r->buckets[m->hash & (r->nbuckets - 1)];

    while (*p != m)
        p = &(*p)->hnext;
    *p = m->hnext;
    m->hnext = NULL;
}

/* Doubles the table (load factor 1). Keeps the old one when it cannot. */
static int grow(gh_chat_roster *r)
{
    size_t n = r->nbuckets == 0 ? 16 : r->nbuckets * 2;
    gh_chat_member **nb;

    if (n < r->nbuckets || n > SIZE_MAX / sizeof(*nb))
        return -ENOMEM;
    if ((nb = calloc(n, sizeof(*nb))) == NULL)
        return -ENOMEM;
    free(r->buckets);
    r->buckets = nb;
    r->nbuckets = n;
    for (gh_chat_member *m = r->head; m != NULL; m = m->next)
        hash_link(r, m);
    return 0;
}

int gh_chat_roster_add(gh_chat_roster *r, gh_chat_member *m, const char *nick, size_t len)
{
    if (len == 0 || len > GH_CHAT_NICK_MAX_BYTES || find_other(r, nick, len, NULL) != NULL)
        return -EINVAL;
    /* a failed growth only lengthens the chains; without a table, fail */
    if (r->count >= r->nbuckets && grow(r) != 0 && r->nbuckets == 0)
        return -ENOMEM;
    memcpy(m->nick, nick, len);
    m->nick[len] = '\0';
    m->nick_len = len;
    m->hash = nick_hash(nick, len);
    m->next = NULL;
    m->prev = r->tail;
    if (r->tail != NULL)
        r->tail->next = m;
    else
        r->head = m;
    r->tail = m;
    hash_link(r, m);
    r->count++;
    return 0;
}

int gh_chat_roster_rename(gh_chat_roster *r, gh_chat_member *m, const char *nick, size_t len)
{
    if (len == 0 || len > GH_CHAT_NICK_MAX_BYTES || find_other(r, nick, len, m) != NULL)
        return -EINVAL;
    hash_unlink(r, m);
    memmove(m->nick, nick, len);        /* nick may point into m->nick */
    m->nick[len] = '\0';
    m->nick_len = len;
    m->hash = nick_hash(m->nick, len);
    hash_link(r, m);
    return 0;
}

void gh_chat_roster_remove(gh_chat_roster *r, gh_chat_member *m)
{
    hash_unlink(r, m);
    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        r->head = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    else
        r->tail = m->prev;
    m->prev = m->next = NULL;
    r->count--;
}

/* ---- the rate limiter --------------------------------------------------- */

void gh_chat_bucket_init(gh_chat_bucket *b, uint32_t rate, uint32_t burst, uint64_t now_ms)
{
    b->rate = rate;
    b->burst = burst == 0 ? 1 : burst;
    b->milli = (uint64_t)b->burst * 1000;
    b->last_ms = now_ms;
}

bool gh_chat_bucket_take(gh_chat_bucket *b, uint64_t now_ms)
{
    uint64_t cap = (uint64_t)b->burst * 1000;

    if (b->rate == 0)
        return true;
    if (now_ms > b->last_ms) {
        uint64_t elapsed = now_ms - b->last_ms;
        /* rate tokens a second = rate thousandths a millisecond; past
         * cap / rate ms the bucket is full whatever it held, and below
         * that the product stays under cap + rate: no overflow */
        if (elapsed >= cap / b->rate + 1) {
            b->milli = cap;
        } else {
            b->milli += elapsed * b->rate;
            if (b->milli > cap)
                b->milli = cap;
        }
    }
    b->last_ms = now_ms;
    if (b->milli < 1000)
        return false;
    b->milli -= 1000;
    return true;
}

/* ---- the history ring ----------------------------------------------------- */

void gh_chat_history_init(gh_chat_history *h, size_t cap)
{
    memset(h, 0, sizeof(*h));
    h->cap = cap;
}

void gh_chat_history_deinit(gh_chat_history *h)
{
    size_t cap = h->cap;

    for (size_t i = 0; i < h->count; i++)
        free(h->slots[(h->start + i) % h->alloc].from);
    free(h->slots);
    gh_chat_history_init(h, cap);
}

int gh_chat_history_push(gh_chat_history *h, const char *from, size_t from_len,
                         const char *text, size_t text_len, int64_t ts)
{
    gh_chat_entry *e;
    char *mem;

    if (h->cap == 0)
        return 0;
    if (from_len > SIZE_MAX - 2 || text_len > SIZE_MAX - 2 - from_len)
        return -E2BIG;
    if (h->count == h->alloc && h->alloc < h->cap) {
        /* still filling: start is 0, entries are slots[0..count) */
        size_t n = h->alloc < 4 ? 4 : h->alloc * 2;
        gh_chat_entry *ns;

        if (n > h->cap || n < h->alloc)
            n = h->cap;
        if (n > SIZE_MAX / sizeof(*ns) || (ns = realloc(h->slots, n * sizeof(*ns))) == NULL)
            return -ENOMEM;
        h->slots = ns;
        h->alloc = n;
    }
    /* one allocation holds "from\0text\0" */
    if ((mem = malloc(from_len + text_len + 2)) == NULL)
        return -ENOMEM;
    memcpy(mem, from, from_len);
    mem[from_len] = '\0';
    memcpy(mem + from_len + 1, text, text_len);
    mem[from_len + 1 + text_len] = '\0';
    if (h->count == h->cap) {
        e = &h->slots[h->start];
        free(e->from);
        h->start = (h->start + 1) % h->alloc;
    } else {
        e = &h->slots[(h->start + h->count) % h->alloc];
        h->count++;
    }
    e->from = mem;
    e->from_len = from_len;
    e->text = mem + from_len + 1;
    e->text_len = text_len;
    e->ts = ts;
    return 0;
}

size_t gh_chat_history_count(const gh_chat_history *h)
{
    return h->count;
}

const gh_chat_entry *gh_chat_history_at(const gh_chat_history *h, size_t i)
{
    if (i >= h->count)
        return NULL;
    return &h->slots[(h->start + i) % h->alloc];
}
