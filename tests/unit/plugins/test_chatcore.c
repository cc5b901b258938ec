/* test_chatcore.c: the chat plugin's pure parts (plugins/chat/chatcore.c).
 *
 * Room and nick validation (including every truncation of a multi-byte
 * character and inputs that end right before a PROT_NONE page), the query
 * reader, nick uniqueness with numeric suffixes at the 32-character limit
 * (against a plain search on random rooms, and with every entry right
 * before a PROT_NONE page), and the token bucket's exact refill
 * arithmetic.
 * Built with plugins/chat/chatcore.c compiled in (tests/CMakeLists.txt). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "chatcore.h"

#define S(str) (str), (sizeof(str) - 1)

/* ---- a buffer that ends right before an unreadable page ------------------- */

typedef struct {
    char  *map;
    size_t page;
} guard;

/* Copies len bytes so that they end at the boundary of a PROT_NONE page:
 * reading one byte past them faults. */
static char *guard_copy(guard *g, const char *s, size_t len)
{
    g->page = (size_t)sysconf(_SC_PAGESIZE);
    ck_assert_uint_le(len, g->page);
    g->map = mmap(NULL, 2 * g->page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(g->map, MAP_FAILED);
    ck_assert_int_eq(mprotect(g->map + g->page, g->page, PROT_NONE), 0);
    memcpy(g->map + g->page - len, s, len);
    return g->map + g->page - len;
}

static void guard_free(guard *g)
{
    munmap(g->map, 2 * g->page);
}

/* ---- rooms ---------------------------------------------------------------- */

START_TEST(room_accepts_letters_digits_dash_underscore_up_to_64)
{
    char name[66];

    ck_assert(gh_chat_room_is_valid(S("lobby")));
    ck_assert(gh_chat_room_is_valid(S("a")));
    ck_assert(gh_chat_room_is_valid(S("Room_1-b")));
    ck_assert(gh_chat_room_is_valid(S("0123456789")));
    memset(name, 'x', sizeof(name));
    ck_assert(gh_chat_room_is_valid(name, 64));
    ck_assert(!gh_chat_room_is_valid(name, 65));
}
END_TEST

START_TEST(room_refuses_empty_and_other_characters)
{
    static const char *const bad[] = {
        "a b", "a.b", "a/b", "a%20", "caf\xc3\xa9", "a+b", "a:b", "?", "a\tb", " a",
    };

    ck_assert(!gh_chat_room_is_valid(NULL, 0));
    ck_assert(!gh_chat_room_is_valid("", 0));
    ck_assert(!gh_chat_room_is_valid(S("a\0b")));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!gh_chat_room_is_valid(bad[i], strlen(bad[i])), "%s", bad[i]);
}
END_TEST

START_TEST(room_check_reads_nothing_past_the_name)
{
    guard g;
    char *p = guard_copy(&g, S("abcdefghij0123456789"));

    for (size_t n = 0; n <= 20; n++)
        ck_assert(gh_chat_room_is_valid(p + 20 - n, n) == (n > 0));
    guard_free(&g);
}
END_TEST

/* ---- nicks ---------------------------------------------------------------- */

static int check_nick(const char *s, size_t len, const char **out)
{
    size_t olen = 0;
    static char buf[256];
    const char *nick = NULL;
    int rc = gh_chat_nick_check(s, len, &nick, &olen);

    if (rc == 0) {
        ck_assert_uint_lt(olen, sizeof(buf));
        memcpy(buf, nick, olen);
        buf[olen] = '\0';
        *out = buf;
    }
    return rc;
}

START_TEST(nick_is_trimmed_of_ascii_whitespace_and_keeps_inner_spaces)
{
    const char *out;

    ck_assert_int_eq(check_nick(S("ann"), &out), 0);
    ck_assert_str_eq(out, "ann");
    ck_assert_int_eq(check_nick(S("  \t ann lee\r\n "), &out), 0);
    ck_assert_str_eq(out, "ann lee");
    ck_assert_int_eq(check_nick(S("\v\fx\f"), &out), 0);
    ck_assert_str_eq(out, "x");
}
END_TEST

START_TEST(nick_points_into_the_input)
{
    static const char in[] = "  bob  ";
    const char *nick;
    size_t len;

    ck_assert_int_eq(gh_chat_nick_check(in, sizeof(in) - 1, &nick, &len), 0);
    ck_assert_ptr_eq(nick, in + 2);
    ck_assert_uint_eq(len, 3);
}
END_TEST

START_TEST(nick_refuses_empty_and_whitespace_only)
{
    const char *out;

    ck_assert_int_eq(check_nick("", 0, &out), -EINVAL);
    ck_assert_int_eq(check_nick(S(" "), &out), -EINVAL);
    ck_assert_int_eq(check_nick(S(" \t\r\n\v\f "), &out), -EINVAL);
}
END_TEST

START_TEST(nick_counts_characters_not_bytes)
{
    char buf[256];
    const char *out;
    size_t n = 0;

    /* 32 two-byte characters: 64 bytes, allowed */
    for (int i = 0; i < 32; i++, n += 2)
        memcpy(buf + n, "\xc3\xa9", 2);
    ck_assert_int_eq(check_nick(buf, n, &out), 0);
    memcpy(buf + n, "\xc3\xa9", 2);
    ck_assert_int_eq(check_nick(buf, n + 2, &out), -E2BIG);
    /* 32 four-byte emoji: 128 bytes, the most a nick can be */
    n = 0;
    for (int i = 0; i < 32; i++, n += 4)
        memcpy(buf + n, "\xf0\x9f\x98\x80", 4);
    ck_assert_int_eq(check_nick(buf, n, &out), 0);
    ck_assert_uint_eq(strlen(out), GH_CHAT_NICK_MAX_BYTES);
    memcpy(buf + n, "a", 1);
    ck_assert_int_eq(check_nick(buf, n + 1, &out), -E2BIG);
    /* 32 ASCII after trimming is fine even with whitespace around */
    memset(buf, ' ', 40);
    memset(buf + 4, 'z', 32);
    ck_assert_int_eq(check_nick(buf, 40, &out), 0);
    ck_assert_uint_eq(strlen(out), 32);
    memset(buf + 4, 'z', 33);
    ck_assert_int_eq(check_nick(buf, 40, &out), -E2BIG);
    ck_assert_uint_eq(gh_chat_utf8_chars(S("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80")), 4);
}
END_TEST

START_TEST(nick_refuses_control_and_formatting_characters)
{
    static const struct { const char *s; size_t len; } bad[] = {
#define B(x) { (x), sizeof(x) - 1 }
        B("a\0b"), B("a\x01" "b"), B("a\x1f"), B("a\tb"), B("a\nb"), B("a\x7f"),
        B("a\xc2\x80"), B("a\xc2\x85"), B("a\xc2\x9f"),               /* C1 */
        B("a\xd8\x9c"),                                               /* U+061C */
        B("a\xe2\x80\x8e"), B("a\xe2\x80\x8f"),                       /* LRM RLM */
        B("a\xe2\x80\xa8"), B("a\xe2\x80\xa9"),                       /* LS PS */
        B("a\xe2\x80\xaa"), B("a\xe2\x80\xae"),                       /* LRE RLO */
        B("a\xe2\x81\xa6"), B("a\xe2\x81\xa9"),                       /* LRI PDI */
        B("\xef\xbb\xbf" "a"),                                        /* BOM */
        B("a\xef\xbf\xb9"), B("a\xef\xbf\xbe"), B("a\xef\xbf\xbf"),
#undef B
    };
    const char *out;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(check_nick(bad[i].s, bad[i].len, &out) == -EINVAL, "case %zu", i);
}
END_TEST

START_TEST(nick_accepts_printable_unicode)
{
    static const char *const good[] = {
        "K\xc3\xb6ln", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
        "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x98\x80 smile", "a\xc2\xa0" "b", /* NBSP inside */
        "\xf4\x8f\xbf\xbd", "<script>", "\"quoted\"", "a\xe2\x80\x8d" "b", /* ZWJ */
        "\xef\xbf\xbd",
    };
    const char *out;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ck_assert_msg(check_nick(good[i], strlen(good[i]), &out) == 0, "%s", good[i]);
        ck_assert_str_eq(out, good[i]);
    }
}
END_TEST

START_TEST(nick_refuses_invalid_utf8)
{
    static const struct { const char *s; size_t len; } bad[] = {
#define B(x) { (x), sizeof(x) - 1 }
        B("\x80"), B("a\xbf"), B("\xc0\xaf"), B("\xc1\xbf"), B("\xe0\x80\xaf"),
        B("\xe0\x9f\xbf"), B("\xed\xa0\x80"), B("\xed\xbf\xbf"), B("\xf0\x80\x80\xaf"),
        B("\xf4\x90\x80\x80"), B("\xf5\x80\x80\x80"), B("\xff"), B("\xfe"),
        B("\xc3" "a"), B("\xe2\x82" "a"), B("\xf0\x9f\x98" "a"),
#undef B
    };
    const char *out;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(check_nick(bad[i].s, bad[i].len, &out) == -EINVAL, "case %zu", i);
}
END_TEST

START_TEST(nick_cut_at_every_offset_inside_a_character_is_refused)
{
    static const char s[] = "x\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    /* offsets that end on a character boundary */
    static const bool boundary[] = { [0] = true, [1] = true, [3] = true, [6] = true, [10] = true };
    const char *out;

    for (size_t n = 1; n < sizeof(s); n++) {
        guard g;
        char *p = guard_copy(&g, s, n);
        size_t olen;
        const char *nick;
        int rc = gh_chat_nick_check(p, n, &nick, &olen);
        ck_assert_msg(rc == (boundary[n] ? 0 : -EINVAL), "prefix %zu: %d", n, rc);
        guard_free(&g);
    }
    (void)out;
}
END_TEST

START_TEST(nick_check_reads_nothing_past_the_input)
{
    guard g;
    char *p = guard_copy(&g, S("  ann  "));
    const char *nick;
    size_t len;

    ck_assert_int_eq(gh_chat_nick_check(p, 7, &nick, &len), 0);
    ck_assert_uint_eq(len, 3);
    guard_free(&g);
    p = guard_copy(&g, S("ann\xf0\x9f"));
    ck_assert_int_eq(gh_chat_nick_check(p, 5, &nick, &len), -EINVAL);
    guard_free(&g);
}
END_TEST

/* ---- the query string ------------------------------------------------------ */

static int qget(const char *q, const char *key, char *out, size_t cap, size_t *len)
{
    return gh_chat_query_get(q, strlen(q), key, out, cap, len);
}

START_TEST(query_finds_the_first_exact_key)
{
    char out[64];
    size_t n;

    ck_assert_int_eq(qget("room=a&nick=b", "room", out, sizeof(out), &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(memcmp(out, "a", 1), 0);
    ck_assert_int_eq(qget("room=a&nick=bob", "nick", out, sizeof(out), &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(memcmp(out, "bob", 3), 0);
    ck_assert_int_eq(qget("nickname=x&nick=y&nick=z", "nick", out, sizeof(out), &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(out[0], 'y');
    ck_assert_int_eq(qget("xnick=1&nic=2", "nick", out, sizeof(out), &n), -ENOENT);
    ck_assert_int_eq(qget("", "nick", out, sizeof(out), &n), -ENOENT);
    ck_assert_int_eq(qget("&&&", "nick", out, sizeof(out), &n), -ENOENT);
}
END_TEST

START_TEST(query_empty_values)
{
    char out[8];
    size_t n = 99;

    ck_assert_int_eq(qget("nick=&room=a", "nick", out, sizeof(out), &n), 0);
    ck_assert_uint_eq(n, 0);
    n = 99;
    ck_assert_int_eq(qget("a=1&nick", "nick", out, sizeof(out), &n), 0);
    ck_assert_uint_eq(n, 0);
    n = 99;
    ck_assert_int_eq(qget("nick", "nick", NULL, 0, &n), 0);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(query_values_are_percent_decoded)
{
    char out[64];
    size_t n;

    ck_assert_int_eq(qget("nick=K%C3%B6ln+Ann%20Lee%2b%25%3D%26", "nick", out, sizeof(out), &n), 0);
    ck_assert_uint_eq(n, strlen("K\xc3\xb6ln Ann Lee+%=&"));
    ck_assert_int_eq(memcmp(out, "K\xc3\xb6ln Ann Lee+%=&", n), 0);
    ck_assert_int_eq(qget("nick=a%00b", "nick", out, sizeof(out), &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(out[1], '\0');
    ck_assert_int_eq(qget("nick=a=b", "nick", out, sizeof(out), &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(memcmp(out, "a=b", 3), 0);
}
END_TEST

START_TEST(query_refuses_broken_escapes_and_long_values)
{
    char out[4];
    size_t n;

    ck_assert_int_eq(qget("nick=%", "nick", out, sizeof(out), &n), -EPROTO);
    ck_assert_int_eq(qget("nick=%4", "nick", out, sizeof(out), &n), -EPROTO);
    ck_assert_int_eq(qget("nick=%4&x=1", "nick", out, sizeof(out), &n), -EPROTO);
    ck_assert_int_eq(qget("nick=%zz", "nick", out, sizeof(out), &n), -EPROTO);
    ck_assert_int_eq(qget("nick=%g0", "nick", out, sizeof(out), &n), -EPROTO);
    ck_assert_int_eq(qget("nick=abcd", "nick", out, sizeof(out), &n), 0);
    ck_assert_int_eq(qget("nick=abcde", "nick", out, sizeof(out), &n), -E2BIG);
    ck_assert_int_eq(qget("nick=%41%41%41%41%41", "nick", out, sizeof(out), &n), -E2BIG);
    /* a broken escape elsewhere does not matter */
    ck_assert_int_eq(qget("x=%&nick=ok", "nick", out, sizeof(out), &n), 0);
}
END_TEST

START_TEST(query_reads_nothing_past_the_query)
{
    static const char q[] = "room=abc&nick=%41%4";
    char out[64];
    size_t n;

    /* every prefix, ending at an unreadable page */
    for (size_t len = 0; len <= sizeof(q) - 1; len++) {
        guard g;
        char *p = guard_copy(&g, q, len);
        /* "nick" appears whole at 13; "%" at 15, "%4" at 16, "%41%" at 18 */
        int want = len < 13 ? -ENOENT :
                   (len == 15 || len == 16 || len >= 18) ? -EPROTO : 0;
        ck_assert_msg(gh_chat_query_get(p, len, "nick", out, sizeof(out), &n) == want,
                      "prefix %zu", len);
        ck_assert_int_eq(gh_chat_query_get(p, len, "room", out, sizeof(out), &n),
                         len >= 4 ? 0 : -ENOENT);
        guard_free(&g);
    }
}
END_TEST

/* ---- nick uniqueness --------------------------------------------------------- */

/* A list of nicks as the plugin gets them from the host: (pointer, length)
 * pairs, not NUL-terminated. */
typedef struct {
    const char *data;
    size_t      len;
} entry;

static void entry_at(const void *list, size_t i, const char **nick, size_t *len)
{
    const entry *e = (const entry *)list + i;

    *nick = e->data;
    *len = e->len;
}

/* A room that nicks are added to one after another, each made unique
 * against those before it. */
typedef struct {
    char   nicks[1000][GH_CHAT_NICK_MAX_BYTES + 1];
    entry  list[1000];
    size_t count;
} room;

static room *room_new(void)
{
    room *r = calloc(1, sizeof(*r));

    ck_assert_ptr_nonnull(r);
    return r;
}

/* Joins nick to r; returns the nick it got (in r, NUL-terminated). */
static const char *join(room *r, const char *nick)
{
    size_t n = 0;
    char *out = r->nicks[r->count];

    ck_assert_uint_lt(r->count, 1000);
    ck_assert_int_eq(gh_chat_nick_unique(nick, strlen(nick), entry_at, r->list, r->count,
                                         GH_CHAT_SKIP_NONE, out, &n), 0);
    ck_assert_uint_eq(n, strlen(out));
    r->list[r->count].data = out;
    r->list[r->count].len = n;
    r->count++;
    return out;
}

/* Makes nick unique against the NUL-terminated strings of v[0..count),
 * skipping entry skip; returns the result in a static buffer. */
static const char *unique_in(const char *const *v, size_t count, size_t skip,
                             const char *nick)
{
    static char out[GH_CHAT_NICK_MAX_BYTES + 1];
    entry list[64];
    size_t n;

    ck_assert_uint_le(count, 64);
    for (size_t i = 0; i < count; i++) {
        list[i].data = v[i];
        list[i].len = strlen(v[i]);
    }
    ck_assert_int_eq(gh_chat_nick_unique(nick, strlen(nick), entry_at, list, count, skip,
                                         out, &n), 0);
    ck_assert_uint_eq(n, strlen(out));
    return out;
}

START_TEST(unique_nicks_get_numeric_suffixes_from_2)
{
    room *r = room_new();

    ck_assert_str_eq(join(r, "ann"), "ann");
    ck_assert_str_eq(join(r, "ann"), "ann2");
    ck_assert_str_eq(join(r, "Ann"), "Ann3");       /* ASCII case folded: taken too */
    ck_assert_str_eq(join(r, "bob"), "bob");
    ck_assert_str_eq(join(r, "ann"), "ann4");
    ck_assert_str_eq(join(r, "ANN2"), "ANN22");     /* "ann2" is taken: suffix on "ANN2" */
    free(r);
}
END_TEST

START_TEST(unique_nick_takes_a_freed_number_again)
{
    static const char *const left[] = { "ann", "ann3", "bob" };    /* ann2 went */

    ck_assert_str_eq(unique_in(left, 3, GH_CHAT_SKIP_NONE, "ann"), "ann2");
    ck_assert_str_eq(unique_in(left, 3, GH_CHAT_SKIP_NONE, "ANN"), "ANN2");
    ck_assert_str_eq(unique_in(left, 3, GH_CHAT_SKIP_NONE, "cy"), "cy");
    ck_assert_str_eq(unique_in(left, 0, GH_CHAT_SKIP_NONE, "ann"), "ann");
}
END_TEST

START_TEST(unique_nick_ignores_the_skipped_entry)
{
    static const char *const v[] = { "ann", "bob", "ann" };

    /* a rename: the asker's own entry does not count against it */
    ck_assert_str_eq(unique_in(v, 2, 0, "ANN"), "ANN");
    ck_assert_str_eq(unique_in(v, 2, 1, "ann"), "ann2");
    ck_assert_str_eq(unique_in(v, 2, 0, "bob"), "bob2");
    /* only that one entry: a second "ann" still counts */
    ck_assert_str_eq(unique_in(v, 3, 0, "ann"), "ann2");
    /* an index past the end skips nothing */
    ck_assert_str_eq(unique_in(v, 2, 7, "ann"), "ann2");
}
END_TEST

START_TEST(unique_nick_stays_within_32_characters)
{
    room *r = room_new();
    char nick[GH_CHAT_NICK_MAX_BYTES + 1], want[GH_CHAT_NICK_MAX_BYTES + 1];
    const char *got[12];

    /* 31 'x' and one 4-byte emoji: 32 characters, 35 bytes */
    memset(nick, 'x', 31);
    memcpy(nick + 31, "\xf0\x9f\x98\x80", 5);
    for (int i = 0; i < 12; i++)
        got[i] = join(r, nick);
    ck_assert_str_eq(got[0], nick);
    /* the emoji is cut whole, never in half */
    memcpy(want, nick, 31);
    strcpy(want + 31, "2");
    ck_assert_str_eq(got[1], want);
    strcpy(want + 31, "9");
    ck_assert_str_eq(got[8], want);
    strcpy(want + 30, "10");
    ck_assert_str_eq(got[9], want);
    strcpy(want + 30, "12");
    ck_assert_str_eq(got[11], want);
    for (int i = 0; i < 12; i++) {
        const char *c;
        size_t cl;
        ck_assert_int_eq(gh_chat_nick_check(got[i], strlen(got[i]), &c, &cl), 0);
    }
    free(r);
}
END_TEST

START_TEST(unique_nick_cuts_multibyte_nicks_at_character_boundaries)
{
    room *r = room_new();
    char nick[GH_CHAT_NICK_MAX_BYTES + 1], want[GH_CHAT_NICK_MAX_BYTES + 1];

    /* 32 'é' (2 bytes each): the second gets 31 'é' + "2" */
    for (int i = 0; i < 32; i++)
        memcpy(nick + 2 * i, "\xc3\xa9", 2);
    nick[64] = '\0';
    ck_assert_str_eq(join(r, nick), nick);
    memcpy(want, nick, 62);
    strcpy(want + 62, "2");
    ck_assert_str_eq(join(r, nick), want);
    /* the longest nick there is: 32 four-byte characters */
    for (int i = 0; i < 32; i++)
        memcpy(nick + 4 * i, "\xf0\x9f\x98\x80", 4);
    nick[128] = '\0';
    ck_assert_str_eq(join(r, nick), nick);
    memcpy(want, nick, 124);
    strcpy(want + 124, "2");
    ck_assert_str_eq(join(r, nick), want);
    free(r);
}
END_TEST

START_TEST(unique_nick_skips_candidates_that_collide_after_cutting)
{
    room *r = room_new();
    char base[40];

    /* "x"*30 + "12" (32 chars): candidate 2 is "x"*30 + "1" + "2", the
     * nick itself; candidate 3 is "x"*30 + "13" */
    memset(base, 'x', 30);
    strcpy(base + 30, "12");
    ck_assert_str_eq(join(r, base), base);
    ck_assert_str_eq(join(r, base) + 30, "13");
    ck_assert_str_eq(join(r, base) + 30, "14");
    free(r);
}
END_TEST

START_TEST(unique_nick_refuses_empty_or_oversized_input)
{
    char out[GH_CHAT_NICK_MAX_BYTES + 1], big[GH_CHAT_NICK_MAX_BYTES + 2];
    entry list[1] = { { "ann", 3 } };
    size_t n;

    memset(big, 'a', sizeof(big));
    ck_assert_int_eq(gh_chat_nick_unique("", 0, entry_at, list, 1, GH_CHAT_SKIP_NONE, out, &n),
                     -EINVAL);
    ck_assert_int_eq(gh_chat_nick_unique(big, sizeof(big), entry_at, list, 1,
                                         GH_CHAT_SKIP_NONE, out, &n), -EINVAL);
    ck_assert_int_eq(gh_chat_nick_unique(big, GH_CHAT_NICK_MAX_BYTES, entry_at, list, 1,
                                         GH_CHAT_SKIP_NONE, out, &n), 0);
    ck_assert_uint_eq(n, GH_CHAT_NICK_MAX_BYTES);
}
END_TEST

START_TEST(unique_nick_compares_any_bytes_in_the_list)
{
    /* entries are whatever the list holds: empty, NULL with length 0,
     * bytes that are not UTF-8, embedded NULs, over 32 characters */
    static const char junk[] = "ann\0x";
    char longer[200];
    entry list[6] = {
        { NULL, 0 }, { "", 0 }, { "\xff\xfe" "ann2", 6 }, { junk, sizeof(junk) - 1 },
        { longer, sizeof(longer) }, { "ann", 3 },
    };
    char out[GH_CHAT_NICK_MAX_BYTES + 1];
    size_t n;

    memset(longer, 'a', sizeof(longer));
    ck_assert_int_eq(gh_chat_nick_unique(S("ann"), entry_at, list, 6, GH_CHAT_SKIP_NONE, out,
                                         &n), 0);
    ck_assert_str_eq(out, "ann2");
    ck_assert_int_eq(gh_chat_nick_unique(S("ann"), entry_at, list, 5, GH_CHAT_SKIP_NONE, out,
                                         &n), 0);
    ck_assert_str_eq(out, "ann");
}
END_TEST

/* An entry list whose first entry is "ann" and that claims to be huge:
 * only entry 0 may be read. */
static void huge_at(const void *list, size_t i, const char **nick, size_t *len)
{
    (void)list;
    ck_assert_uint_eq(i, 0);
    *nick = "ann";
    *len = 3;
}

START_TEST(unique_nick_refuses_a_list_too_big_to_count)
{
    char out[GH_CHAT_NICK_MAX_BYTES + 1];
    size_t n;

    ck_assert_int_eq(gh_chat_nick_unique(S("ann"), huge_at, NULL, SIZE_MAX / 2,
                                         GH_CHAT_SKIP_NONE, out, &n), -ENOMEM);
}
END_TEST

START_TEST(unique_nick_reads_nothing_past_the_entries_or_the_nick)
{
    static const char *const v[] = { "ann", "ann2", "ANN3", "ann10", "x", "ann4" };
    guard g[7];
    entry list[6];
    char out[GH_CHAT_NICK_MAX_BYTES + 1];
    const char *nick;
    size_t n;

    for (size_t i = 0; i < 6; i++) {
        list[i].data = guard_copy(&g[i], v[i], strlen(v[i]));
        list[i].len = strlen(v[i]);
    }
    nick = guard_copy(&g[6], S("ann"));
    ck_assert_int_eq(gh_chat_nick_unique(nick, 3, entry_at, list, 6, GH_CHAT_SKIP_NONE, out,
                                         &n), 0);
    ck_assert_str_eq(out, "ann5");
    for (size_t i = 0; i < 7; i++)
        guard_free(&g[i]);
}
END_TEST

START_TEST(a_thousand_same_nicks_get_a_thousand_numbers)
{
    room *r = room_new();
    char nick[16];

    ck_assert_str_eq(join(r, "guest"), "guest");
    for (int i = 1; i < 1000; i++) {
        snprintf(nick, sizeof(nick), "guest%d", i + 1);
        ck_assert_str_eq(join(r, "guest"), nick);
    }
    free(r);
}
END_TEST

/* The rule as plainly as it can be said: try nick, then candidates 2, 3,
 * ... until one is free. The reference for the next test. */
static void unique_by_search(const char *nick, size_t len, const entry *list, size_t count,
                             size_t skip, char *out, size_t *out_len)
{
    char c[GH_CHAT_NICK_MAX_BYTES + 1];

    memcpy(c, nick, len);
    c[len] = '\0';
    *out_len = len;
    for (size_t k = 1;; k++) {
        bool taken = false;

        if (k >= 2) {
            char num[24];
            int dlen = snprintf(num, sizeof(num), "%zu", k);
            size_t chars = 0, base = len;

            for (size_t i = 0; i < len; i++) {
                if (((unsigned char)nick[i] & 0xc0) != 0x80) {
                    if (chars == GH_CHAT_NICK_MAX_CHARS - (size_t)dlen) {
                        base = i;
                        break;
                    }
                    chars++;
                }
            }
            memcpy(c, nick, base);
            memcpy(c + base, num, (size_t)dlen + 1);
            *out_len = base + (size_t)dlen;
        }
        for (size_t i = 0; i < count && !taken; i++) {
            if (i == skip || list[i].len != *out_len)
                continue;
            taken = strncasecmp(list[i].data, c, *out_len) == 0;
        }
        if (!taken) {
            memcpy(out, c, *out_len + 1);
            return;
        }
    }
}

START_TEST(unique_nick_agrees_with_a_plain_search_on_random_rooms)
{
    /* few letters, digits and a two-byte character, so that nicks
     * collide, suffixes pile up and cuts land inside characters */
    static const char *const pieces[] = { "a", "A", "1", "2", "0", "9", "x", "\xc3\xa9" };
    enum { ROOMS = 3000, MAX = 40 };
    static char store[MAX][GH_CHAT_NICK_MAX_BYTES + 8];
    entry list[MAX];
    unsigned seed = 12345;

    for (int t = 0; t < ROOMS; t++) {
        size_t count = (size_t)(rand_r(&seed) % MAX), skip;
        char nick[GH_CHAT_NICK_MAX_BYTES + 1], got[GH_CHAT_NICK_MAX_BYTES + 1];
        char want[GH_CHAT_NICK_MAX_BYTES + 1];
        size_t nlen = 0, glen, wlen;
        /* short nicks, or ones near 32 characters where cutting starts */
        size_t chars = rand_r(&seed) % 2 ? 1 + (size_t)rand_r(&seed) % 3
                                         : 29 + (size_t)rand_r(&seed) % 4;

        for (size_t c = 0; c < chars; c++) {
            const char *p = pieces[rand_r(&seed) % 8];
            memcpy(nick + nlen, p, strlen(p));
            nlen += strlen(p);
        }
        nick[nlen] = '\0';
        for (size_t i = 0; i < count; i++) {
            /* the nick, a candidate of it, or random pieces */
            int kind = rand_r(&seed) % 3;
            size_t len;
            if (kind == 0) {
                memcpy(store[i], nick, nlen + 1);
                len = nlen;
            } else if (kind == 1) {
                size_t k = 2 + (size_t)rand_r(&seed) % 30;
                /* a candidate: the nick cut, then a number */
                char num[8];
                int dlen = snprintf(num, sizeof(num), "%zu", k);
                size_t base = nlen, n = 0;
                for (size_t j = 0; j < nlen; j++) {
                    if (((unsigned char)nick[j] & 0xc0) != 0x80) {
                        if (n == GH_CHAT_NICK_MAX_CHARS - (size_t)dlen) {
                            base = j;
                            break;
                        }
                        n++;
                    }
                }
                memcpy(store[i], nick, base);
                memcpy(store[i] + base, num, (size_t)dlen + 1);
                len = base + (size_t)dlen;
                if (rand_r(&seed) % 2)
                    for (size_t j = 0; j < len; j++)
                        if (store[i][j] == 'a')
                            store[i][j] = 'A';
            } else {
                size_t pc = (size_t)rand_r(&seed) % 34;
                len = 0;
                for (size_t j = 0; j < pc; j++) {
                    const char *p = pieces[rand_r(&seed) % 8];
                    memcpy(store[i] + len, p, strlen(p));
                    len += strlen(p);
                }
                store[i][len] = '\0';
            }
            list[i].data = store[i];
            list[i].len = len;
        }
        skip = count > 0 && rand_r(&seed) % 2 ? (size_t)rand_r(&seed) % count
                                              : GH_CHAT_SKIP_NONE;
        ck_assert_int_eq(gh_chat_nick_unique(nick, nlen, entry_at, list, count, skip, got,
                                             &glen), 0);
        unique_by_search(nick, nlen, list, count, skip, want, &wlen);
        ck_assert_msg(glen == wlen && strcmp(got, want) == 0, "room %d: got %s, want %s",
                      t, got, want);
    }
}
END_TEST

/* ---- the token bucket --------------------------------------------------------- */

START_TEST(bucket_rate_zero_never_limits)
{
    gh_chat_bucket b;

    gh_chat_bucket_init(&b, 0, 0, 0);
    for (int i = 0; i < 100000; i++)
        ck_assert(gh_chat_bucket_take(&b, 5));
}
END_TEST

START_TEST(bucket_allows_burst_then_refuses)
{
    gh_chat_bucket b;

    gh_chat_bucket_init(&b, 20, 40, 1000);
    for (int i = 0; i < 40; i++)
        ck_assert(gh_chat_bucket_take(&b, 1000));
    ck_assert(!gh_chat_bucket_take(&b, 1000));
    ck_assert(!gh_chat_bucket_take(&b, 1049));      /* 0.98 token */
    ck_assert(gh_chat_bucket_take(&b, 1050));       /* 1 token after 50 ms at 20/s */
    ck_assert(!gh_chat_bucket_take(&b, 1050));
    /* one second gives 20 */
    for (int i = 0; i < 20; i++)
        ck_assert(gh_chat_bucket_take(&b, 2050));
    ck_assert(!gh_chat_bucket_take(&b, 2050));
}
END_TEST

START_TEST(bucket_refill_is_exact_at_millisecond_steps)
{
    gh_chat_bucket b;
    int passed = 0;

    /* 3 a second: over 10 s in 1 ms steps exactly 30 pass once the burst
     * is spent (a burst of 2 leaves room for the thousandths a take leaves
     * over, so none are clipped) */
    gh_chat_bucket_init(&b, 3, 2, 0);
    ck_assert(gh_chat_bucket_take(&b, 0));
    ck_assert(gh_chat_bucket_take(&b, 0));
    for (uint64_t t = 1; t <= 10000; t++)
        passed += gh_chat_bucket_take(&b, t);
    ck_assert_int_eq(passed, 30);
}
END_TEST

START_TEST(bucket_never_holds_more_than_burst)
{
    gh_chat_bucket b;

    gh_chat_bucket_init(&b, 10, 5, 0);
    for (int i = 0; i < 5; i++)
        ck_assert(gh_chat_bucket_take(&b, 0));
    /* an hour idle refills to 5, not 36,000 */
    for (int i = 0; i < 5; i++)
        ck_assert(gh_chat_bucket_take(&b, 3600 * 1000));
    ck_assert(!gh_chat_bucket_take(&b, 3600 * 1000));
}
END_TEST

START_TEST(bucket_survives_clock_extremes)
{
    gh_chat_bucket b;

    /* a clock that goes back refills nothing and does not wrap */
    gh_chat_bucket_init(&b, 1, 1, 5000);
    ck_assert(gh_chat_bucket_take(&b, 5000));
    ck_assert(!gh_chat_bucket_take(&b, 10));
    ck_assert(!gh_chat_bucket_take(&b, 1009));
    ck_assert(gh_chat_bucket_take(&b, 1010));
    /* the largest numbers overflow nothing */
    gh_chat_bucket_init(&b, UINT32_MAX, UINT32_MAX, 0);
    ck_assert(gh_chat_bucket_take(&b, UINT64_MAX));
    ck_assert(gh_chat_bucket_take(&b, UINT64_MAX));
    ck_assert_uint_le(b.milli, (uint64_t)UINT32_MAX * 1000);
    gh_chat_bucket_init(&b, UINT32_MAX, 1, 0);
    ck_assert(gh_chat_bucket_take(&b, 0));
    ck_assert(!gh_chat_bucket_take(&b, 0));
    ck_assert(gh_chat_bucket_take(&b, 1));
    gh_chat_bucket_init(&b, 1, UINT32_MAX, 0);
    ck_assert(gh_chat_bucket_take(&b, UINT64_MAX));
    ck_assert_uint_eq(b.milli, (uint64_t)UINT32_MAX * 1000 - 1000);
}
END_TEST

START_TEST(bucket_burst_zero_counts_as_one)
{
    gh_chat_bucket b;

    gh_chat_bucket_init(&b, 1, 0, 0);
    ck_assert(gh_chat_bucket_take(&b, 0));
    ck_assert(!gh_chat_bucket_take(&b, 0));
    ck_assert(gh_chat_bucket_take(&b, 1000));
}
END_TEST

static Suite *chatcore_suite(void)
{
    Suite *s = suite_create("chatcore");
    TCase *tc = tcase_create("rooms");

    tcase_add_test(tc, room_accepts_letters_digits_dash_underscore_up_to_64);
    tcase_add_test(tc, room_refuses_empty_and_other_characters);
    tcase_add_test(tc, room_check_reads_nothing_past_the_name);
    suite_add_tcase(s, tc);

    tc = tcase_create("nicks");
    tcase_add_test(tc, nick_is_trimmed_of_ascii_whitespace_and_keeps_inner_spaces);
    tcase_add_test(tc, nick_points_into_the_input);
    tcase_add_test(tc, nick_refuses_empty_and_whitespace_only);
    tcase_add_test(tc, nick_counts_characters_not_bytes);
    tcase_add_test(tc, nick_refuses_control_and_formatting_characters);
    tcase_add_test(tc, nick_accepts_printable_unicode);
    tcase_add_test(tc, nick_refuses_invalid_utf8);
    tcase_add_test(tc, nick_cut_at_every_offset_inside_a_character_is_refused);
    tcase_add_test(tc, nick_check_reads_nothing_past_the_input);
    suite_add_tcase(s, tc);

    tc = tcase_create("query");
    tcase_add_test(tc, query_finds_the_first_exact_key);
    tcase_add_test(tc, query_empty_values);
    tcase_add_test(tc, query_values_are_percent_decoded);
    tcase_add_test(tc, query_refuses_broken_escapes_and_long_values);
    tcase_add_test(tc, query_reads_nothing_past_the_query);
    suite_add_tcase(s, tc);

    tc = tcase_create("unique");
    tcase_add_test(tc, unique_nicks_get_numeric_suffixes_from_2);
    tcase_add_test(tc, unique_nick_takes_a_freed_number_again);
    tcase_add_test(tc, unique_nick_ignores_the_skipped_entry);
    tcase_add_test(tc, unique_nick_stays_within_32_characters);
    tcase_add_test(tc, unique_nick_cuts_multibyte_nicks_at_character_boundaries);
    tcase_add_test(tc, unique_nick_skips_candidates_that_collide_after_cutting);
    tcase_add_test(tc, unique_nick_refuses_empty_or_oversized_input);
    tcase_add_test(tc, unique_nick_compares_any_bytes_in_the_list);
    tcase_add_test(tc, unique_nick_refuses_a_list_too_big_to_count);
    tcase_add_test(tc, unique_nick_reads_nothing_past_the_entries_or_the_nick);
    tcase_add_test(tc, a_thousand_same_nicks_get_a_thousand_numbers);
    tcase_add_test(tc, unique_nick_agrees_with_a_plain_search_on_random_rooms);
    suite_add_tcase(s, tc);

    tc = tcase_create("bucket");
    tcase_add_test(tc, bucket_rate_zero_never_limits);
    tcase_add_test(tc, bucket_allows_burst_then_refuses);
    tcase_add_test(tc, bucket_refill_is_exact_at_millisecond_steps);
    tcase_add_test(tc, bucket_never_holds_more_than_burst);
    tcase_add_test(tc, bucket_survives_clock_extremes);
    tcase_add_test(tc, bucket_burst_zero_counts_as_one);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(chatcore_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
