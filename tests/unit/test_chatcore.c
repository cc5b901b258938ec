/* test_chatcore.c: the chat plugin's pure parts (plugins/chat/chatcore.c).
 *
 * Room and nick validation (including every truncation of a multi-byte
 * character and inputs that end right before a PROT_NONE page), the query
 * reader, nick uniqueness with numeric suffixes at the 32-character limit,
 * the roster's order and hash through growth, the token bucket's exact
 * refill arithmetic, and the history ring's order, ownership and wrap.
 * Built with plugins/chat/chatcore.c compiled in (tests/CMakeLists.txt). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* ---- the roster ------------------------------------------------------------ */

typedef struct {
    gh_chat_member m;
    int            id;
} user;

static void add(gh_chat_roster *r, user *u, const char *nick)
{
    char out[GH_CHAT_NICK_MAX_BYTES + 1];
    size_t n;

    ck_assert_int_eq(gh_chat_roster_unique(r, nick, strlen(nick), NULL, out, &n), 0);
    ck_assert_int_eq(gh_chat_roster_add(r, &u->m, out, n), 0);
}

START_TEST(unique_nicks_get_numeric_suffixes_from_2)
{
    gh_chat_roster r;
    user u[5];

    gh_chat_roster_init(&r);
    add(&r, &u[0], "ann");
    add(&r, &u[1], "ann");
    add(&r, &u[2], "Ann");          /* ASCII case folded: taken too */
    add(&r, &u[3], "bob");
    add(&r, &u[4], "ann");
    ck_assert_str_eq(u[0].m.nick, "ann");
    ck_assert_str_eq(u[1].m.nick, "ann2");
    ck_assert_str_eq(u[2].m.nick, "Ann3");
    ck_assert_str_eq(u[3].m.nick, "bob");
    ck_assert_str_eq(u[4].m.nick, "ann4");
    ck_assert_uint_eq(r.count, 5);
    ck_assert_ptr_eq(gh_chat_roster_find(&r, S("ANN2")), &u[1].m);
    ck_assert_ptr_null(gh_chat_roster_find(&r, S("ann5")));
    /* a freed nick is given out again */
    gh_chat_roster_remove(&r, &u[1].m);
    {
        user v;
        add(&r, &v, "ann");
        ck_assert_str_eq(v.m.nick, "ann2");
        gh_chat_roster_remove(&r, &v.m);
    }
    gh_chat_roster_deinit(&r);
}
END_TEST

START_TEST(unique_nick_ignores_the_member_itself)
{
    gh_chat_roster r;
    user a, b;
    char out[GH_CHAT_NICK_MAX_BYTES + 1];
    size_t n;

    gh_chat_roster_init(&r);
    add(&r, &a, "ann");
    add(&r, &b, "bob");
    ck_assert_int_eq(gh_chat_roster_unique(&r, S("ANN"), &a.m, out, &n), 0);
    ck_assert_str_eq(out, "ANN");
    ck_assert_int_eq(gh_chat_roster_unique(&r, S("ann"), &b.m, out, &n), 0);
    ck_assert_str_eq(out, "ann2");
    gh_chat_roster_deinit(&r);
}
END_TEST

START_TEST(unique_nick_stays_within_32_characters)
{
    gh_chat_roster r;
    user u[12];
    char nick[GH_CHAT_NICK_MAX_BYTES + 1], want[GH_CHAT_NICK_MAX_BYTES + 1];
    size_t n = 0;

    /* 31 'x' and one 4-byte emoji: 32 characters, 35 bytes */
    memset(nick, 'x', 31);
    memcpy(nick + 31, "\xf0\x9f\x98\x80", 5);
    n = strlen(nick);
    gh_chat_roster_init(&r);
    for (int i = 0; i < 12; i++)
        add(&r, &u[i], nick);
    ck_assert_str_eq(u[0].m.nick, nick);
    /* the emoji is cut whole, never in half */
    memcpy(want, nick, 31);
    strcpy(want + 31, "2");
    ck_assert_str_eq(u[1].m.nick, want);
    strcpy(want + 31, "9");
    ck_assert_str_eq(u[8].m.nick, want);
    strcpy(want + 30, "10");
    ck_assert_str_eq(u[9].m.nick, want);
    strcpy(want + 30, "12");
    ck_assert_str_eq(u[11].m.nick, want);
    for (int i = 0; i < 12; i++) {
        const char *c;
        size_t cl;
        ck_assert_int_eq(gh_chat_nick_check(u[i].m.nick, u[i].m.nick_len, &c, &cl), 0);
    }
    (void)n;
    gh_chat_roster_deinit(&r);
}
END_TEST

START_TEST(unique_nick_skips_candidates_that_collide_after_cutting)
{
    gh_chat_roster r;
    user a, b, c;
    char base[40];

    /* "x"*30 + "12" (32 chars): candidate 2 is "x"*30 + "1" + "2", the
     * nick itself; candidate 3 is "x"*30 + "13" */
    memset(base, 'x', 30);
    strcpy(base + 30, "12");
    gh_chat_roster_init(&r);
    add(&r, &a, base);
    add(&r, &b, base);
    add(&r, &c, base);
    ck_assert_str_eq(b.m.nick + 30, "13");
    ck_assert_str_eq(c.m.nick + 30, "14");
    gh_chat_roster_deinit(&r);
}
END_TEST

START_TEST(unique_nick_refuses_empty_or_oversized_input)
{
    gh_chat_roster r;
    char out[GH_CHAT_NICK_MAX_BYTES + 1], big[GH_CHAT_NICK_MAX_BYTES + 2];
    size_t n;
    user u;

    memset(big, 'a', sizeof(big));
    gh_chat_roster_init(&r);
    ck_assert_int_eq(gh_chat_roster_unique(&r, "", 0, NULL, out, &n), -EINVAL);
    ck_assert_int_eq(gh_chat_roster_unique(&r, big, sizeof(big), NULL, out, &n), -EINVAL);
    ck_assert_int_eq(gh_chat_roster_unique(&r, big, GH_CHAT_NICK_MAX_BYTES, NULL, out, &n), 0);
    ck_assert_int_eq(gh_chat_roster_add(&r, &u.m, "", 0), -EINVAL);
    ck_assert_int_eq(gh_chat_roster_add(&r, &u.m, big, sizeof(big)), -EINVAL);
    ck_assert_int_eq(gh_chat_roster_add(&r, &u.m, S("ann")), 0);
    {
        user v;
        ck_assert_int_eq(gh_chat_roster_add(&r, &v.m, S("ANN")), -EINVAL);
    }
    gh_chat_roster_deinit(&r);
}
END_TEST

START_TEST(roster_keeps_join_order_through_rename_and_remove)
{
    gh_chat_roster r;
    user u[4];
    const char *want[] = { "a", "z", "d" };
    size_t i = 0;

    gh_chat_roster_init(&r);
    add(&r, &u[0], "a");
    add(&r, &u[1], "b");
    add(&r, &u[2], "c");
    add(&r, &u[3], "d");
    ck_assert_int_eq(gh_chat_roster_rename(&r, &u[1].m, S("z")), 0);
    ck_assert_int_eq(gh_chat_roster_rename(&r, &u[1].m, S("d")), -EINVAL);   /* taken */
    ck_assert_str_eq(u[1].m.nick, "z");
    ck_assert_int_eq(gh_chat_roster_rename(&r, &u[1].m, S("Z")), 0);         /* own nick, new case */
    ck_assert_int_eq(gh_chat_roster_rename(&r, &u[1].m, S("z")), 0);
    ck_assert_int_eq(gh_chat_roster_rename(&r, &u[1].m, "", 0), -EINVAL);
    gh_chat_roster_remove(&r, &u[2].m);
    ck_assert_ptr_null(gh_chat_roster_find(&r, S("b")));
    ck_assert_ptr_null(gh_chat_roster_find(&r, S("c")));
    ck_assert_ptr_eq(gh_chat_roster_find(&r, S("z")), &u[1].m);
    for (gh_chat_member *m = r.head; m != NULL; m = m->next, i++)
        ck_assert_str_eq(m->nick, want[i]);
    ck_assert_uint_eq(i, 3);
    ck_assert_uint_eq(r.count, 3);
    gh_chat_roster_remove(&r, &u[0].m);
    gh_chat_roster_remove(&r, &u[3].m);
    gh_chat_roster_remove(&r, &u[1].m);
    ck_assert_ptr_null(r.head);
    ck_assert_ptr_null(r.tail);
    ck_assert_uint_eq(r.count, 0);
    gh_chat_roster_deinit(&r);
}
END_TEST

START_TEST(rename_may_take_the_nick_from_its_own_buffer)
{
    gh_chat_roster r;
    user u;

    gh_chat_roster_init(&r);
    add(&r, &u, "xxann");
    ck_assert_int_eq(gh_chat_roster_rename(&r, &u.m, u.m.nick + 2, 3), 0);
    ck_assert_str_eq(u.m.nick, "ann");
    ck_assert_ptr_eq(gh_chat_roster_find(&r, S("ann")), &u.m);
    gh_chat_roster_deinit(&r);
}
END_TEST

START_TEST(roster_of_a_thousand_same_nicks_stays_unique_and_findable)
{
    enum { N = 1000 };
    gh_chat_roster r;
    user *u = calloc(N, sizeof(*u));
    char nick[16];

    ck_assert_ptr_nonnull(u);
    gh_chat_roster_init(&r);
    for (int i = 0; i < N; i++)
        add(&r, &u[i], "guest");
    ck_assert_uint_eq(r.count, N);
    ck_assert_str_eq(u[0].m.nick, "guest");
    for (int i = 1; i < N; i++) {
        snprintf(nick, sizeof(nick), "guest%d", i + 1);
        ck_assert_str_eq(u[i].m.nick, nick);
        ck_assert_ptr_eq(gh_chat_roster_find(&r, nick, strlen(nick)), &u[i].m);
    }
    /* remove every other one, then the rest */
    for (int i = 0; i < N; i += 2)
        gh_chat_roster_remove(&r, &u[i].m);
    ck_assert_uint_eq(r.count, N / 2);
    ck_assert_ptr_null(gh_chat_roster_find(&r, S("guest")));
    ck_assert_ptr_eq(gh_chat_roster_find(&r, S("guest2")), &u[1].m);
    for (int i = 1; i < N; i += 2)
        gh_chat_roster_remove(&r, &u[i].m);
    ck_assert_uint_eq(r.count, 0);
    ck_assert_ptr_null(r.head);
    gh_chat_roster_deinit(&r);
    free(u);
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

/* ---- the history ring ------------------------------------------------------- */

START_TEST(history_with_cap_zero_keeps_nothing)
{
    gh_chat_history h;

    gh_chat_history_init(&h, 0);
    ck_assert_int_eq(gh_chat_history_push(&h, S("a"), S("hi"), 1), 0);
    ck_assert_uint_eq(gh_chat_history_count(&h), 0);
    ck_assert_ptr_null(gh_chat_history_at(&h, 0));
    ck_assert_ptr_null(h.slots);
    gh_chat_history_deinit(&h);
}
END_TEST

START_TEST(history_keeps_the_last_n_oldest_first)
{
    gh_chat_history h;
    char text[32];

    gh_chat_history_init(&h, 50);
    for (int i = 0; i < 130; i++) {
        int n = snprintf(text, sizeof(text), "message %d", i);
        ck_assert_int_eq(gh_chat_history_push(&h, S("ann"), text, (size_t)n, 1000 + i), 0);
        ck_assert_uint_eq(gh_chat_history_count(&h), i + 1 < 50 ? (size_t)i + 1 : 50);
        /* always oldest first, newest last */
        const gh_chat_entry *last = gh_chat_history_at(&h, gh_chat_history_count(&h) - 1);
        ck_assert_str_eq(last->text, text);
        ck_assert_int_eq(last->ts, 1000 + i);
    }
    for (size_t i = 0; i < 50; i++) {
        const gh_chat_entry *e = gh_chat_history_at(&h, i);
        snprintf(text, sizeof(text), "message %zu", 80 + i);
        ck_assert_str_eq(e->text, text);
        ck_assert_uint_eq(e->text_len, strlen(text));
        ck_assert_str_eq(e->from, "ann");
        ck_assert_uint_eq(e->from_len, 3);
    }
    ck_assert_ptr_null(gh_chat_history_at(&h, 50));
    ck_assert_uint_le(h.alloc, 50);
    gh_chat_history_deinit(&h);
    ck_assert_uint_eq(gh_chat_history_count(&h), 0);
    /* reusable after deinit, with the same cap */
    ck_assert_int_eq(gh_chat_history_push(&h, S("b"), S("again"), 7), 0);
    ck_assert_str_eq(gh_chat_history_at(&h, 0)->text, "again");
    gh_chat_history_deinit(&h);
}
END_TEST

START_TEST(history_copies_the_strings)
{
    gh_chat_history h;
    char from[] = "ann", text[] = "a\0b";       /* embedded NUL kept by length */

    gh_chat_history_init(&h, 2);
    ck_assert_int_eq(gh_chat_history_push(&h, from, 3, text, 3, -5), 0);
    from[0] = 'X';
    text[0] = 'X';
    const gh_chat_entry *e = gh_chat_history_at(&h, 0);
    ck_assert_str_eq(e->from, "ann");
    ck_assert_uint_eq(e->text_len, 3);
    ck_assert_int_eq(memcmp(e->text, "a\0b", 4), 0);
    ck_assert_int_eq(e->ts, -5);
    ck_assert_int_eq(gh_chat_history_push(&h, "", 0, "", 0, 0), 0);
    ck_assert_str_eq(gh_chat_history_at(&h, 1)->text, "");
    gh_chat_history_deinit(&h);
}
END_TEST

START_TEST(history_of_one_keeps_only_the_newest)
{
    gh_chat_history h;

    gh_chat_history_init(&h, 1);
    for (int i = 0; i < 5; i++) {
        char t[2] = { (char)('a' + i), 0 };
        ck_assert_int_eq(gh_chat_history_push(&h, S("x"), t, 1, i), 0);
        ck_assert_uint_eq(gh_chat_history_count(&h), 1);
        ck_assert_str_eq(gh_chat_history_at(&h, 0)->text, t);
    }
    gh_chat_history_deinit(&h);
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

    tc = tcase_create("roster");
    tcase_add_test(tc, unique_nicks_get_numeric_suffixes_from_2);
    tcase_add_test(tc, unique_nick_ignores_the_member_itself);
    tcase_add_test(tc, unique_nick_stays_within_32_characters);
    tcase_add_test(tc, unique_nick_skips_candidates_that_collide_after_cutting);
    tcase_add_test(tc, unique_nick_refuses_empty_or_oversized_input);
    tcase_add_test(tc, roster_keeps_join_order_through_rename_and_remove);
    tcase_add_test(tc, rename_may_take_the_nick_from_its_own_buffer);
    tcase_add_test(tc, roster_of_a_thousand_same_nicks_stays_unique_and_findable);
    suite_add_tcase(s, tc);

    tc = tcase_create("bucket");
    tcase_add_test(tc, bucket_rate_zero_never_limits);
    tcase_add_test(tc, bucket_allows_burst_then_refuses);
    tcase_add_test(tc, bucket_refill_is_exact_at_millisecond_steps);
    tcase_add_test(tc, bucket_never_holds_more_than_burst);
    tcase_add_test(tc, bucket_survives_clock_extremes);
    tcase_add_test(tc, bucket_burst_zero_counts_as_one);
    suite_add_tcase(s, tc);

    tc = tcase_create("history");
    tcase_add_test(tc, history_with_cap_zero_keeps_nothing);
    tcase_add_test(tc, history_keeps_the_last_n_oldest_first);
    tcase_add_test(tc, history_copies_the_strings);
    tcase_add_test(tc, history_of_one_keeps_only_the_newest);
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
