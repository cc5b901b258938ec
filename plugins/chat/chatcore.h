/* chatcore.h: the chat plugin's pure parts. No I/O, no JSON, no host calls.
 *
 * Room and nick validation, the query-string reader, the per-room roster
 * (nick uniqueness with numeric suffixes), the per-connection token bucket
 * and the per-room history ring. chat.c glues them to the plugin ABI and
 * jansson; everything here is unit-tested on its own (tests/unit/
 * test_chatcore.c).
 *
 * Return codes are 0 or negated errno values (-EINVAL, -E2BIG, -ENOENT,
 * -EPROTO, -ENOMEM, -ERANGE), the same numbers as gatehouse's GH_E*:
 * a plugin includes nothing of the host, so they are spelled with errno. */
#ifndef GH_CHATCORE_H
#define GH_CHATCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GH_CHAT_ROOM_MAX        64      /* bytes = characters: [A-Za-z0-9_-] */
#define GH_CHAT_ROOM_DEFAULT    "lobby"
#define GH_CHAT_NICK_MAX_CHARS  32      /* Unicode code points */
#define GH_CHAT_NICK_MAX_BYTES  (GH_CHAT_NICK_MAX_CHARS * 4)   /* UTF-8 worst case */

/* ---- validation ------------------------------------------------------- */

/* True when s[0..len) is a room name: 1..64 bytes, each an ASCII letter,
 * digit, '-' or '_'. s may be NULL when len is 0. */
bool gh_chat_room_is_valid(const char *s, size_t len);

/* Checks a requested nickname and trims it. Leading and trailing ASCII
 * whitespace (space, \t, \n, \v, \f, \r) is trimmed; what remains must be
 * 1..32 characters, where a character is one Unicode code point, and every
 * one of them printable:
 *   - the bytes are valid UTF-8 (RFC 3629: no overlong forms, no
 *     surrogates, nothing above U+10FFFF);
 *   - no control character: U+0000..U+001F, U+007F, U+0080..U+009F;
 *   - no invisible formatting that spoofs or breaks a line: U+061C,
 *     U+200E, U+200F, U+2028..U+202E, U+2066..U+2069 (line and paragraph
 *     separators, bidirectional controls), U+FEFF, U+FFF9..U+FFFB, and the
 *     noncharacters U+FFFE, U+FFFF.
 * Inner spaces are kept ("Ann Lee"). No Unicode normalisation is done.
 * Returns 0 and sets *nick and *nick_len to the trimmed nick, which points into
 * in (borrowed from the caller, as long as in lives); -EINVAL when nothing
 * is left after trimming, the bytes are not UTF-8 or a character is not
 * printable; -E2BIG when more than 32 characters are left. */
int gh_chat_nick_check(const char *in, size_t len, const char **nick, size_t *nick_len);

/* The number of code points in valid UTF-8 s[0..len) (continuation bytes
 * are not counted). */
size_t gh_chat_utf8_chars(const char *s, size_t len);

/* ---- the query string --------------------------------------------------- */

/* Finds the first key=value pair of a raw query ("room=a&nick=b", without
 * the '?') whose key is exactly key (keys are compared undecoded), and
 * writes its value percent-decoded ("%41" is 'A', '+' is a space, as
 * browsers' URLSearchParams writes it) into out[0..cap), without a NUL.
 * A key without '=' has the empty value. query is qlen bytes.
 * Returns 0 with *out_len set; -ENOENT when no pair has that key; -EPROTO
 * when the value holds a '%' not followed by two hex digits; -E2BIG when
 * the decoded value is longer than cap. The decoded bytes may be anything
 * (even NUL): validate them. */
int gh_chat_query_get(const char *query, size_t qlen, const char *key,
                      char *out, size_t cap, size_t *out_len);

/* ---- the roster: who is in one room --------------------------------------- */

/* One member of a room. The caller embeds it in its own per-connection
 * struct and owns its memory; the roster only links it. Read nick and
 * nick_len; the links are the roster's. */
typedef struct gh_chat_member {
    struct gh_chat_member *prev, *next;     /* join order, oldest first */
    struct gh_chat_member *hnext;           /* hash chain */
    uint32_t               hash;
    size_t                 nick_len;
    char                   nick[GH_CHAT_NICK_MAX_BYTES + 1];   /* NUL-terminated */
} gh_chat_member;

/* The members of one room, in join order, with a hash on the nick.
 * Nicks are compared with ASCII case folded ("Ann" and "ann" are the same
 * nick) and every other byte exact. Caller's storage; members are
 * borrowed. */
typedef struct {
    gh_chat_member  *head, *tail;   /* join order: for (m = head; m; m = m->next) */
    gh_chat_member **buckets;
    size_t           nbuckets;      /* 0 or a power of two */
    size_t           count;
} gh_chat_roster;

/* An empty roster. Allocates nothing. */
void gh_chat_roster_init(gh_chat_roster *r);

/* Frees the roster's hash table. Members still in it are not touched
 * (they are the caller's); the roster is empty and reusable afterwards. */
void gh_chat_roster_deinit(gh_chat_roster *r);

/* The member whose nick equals nick[0..len) (ASCII case folded), or NULL.
 * Borrowed: valid until it is removed. */
gh_chat_member *gh_chat_roster_find(const gh_chat_roster *r, const char *nick, size_t len);

/* Makes a free nick out of a checked one (gh_chat_nick_check): nick itself
 * when no member other than self has it (self may be NULL), else nick
 * followed by the smallest decimal number n >= 2 that gives a free nick
 * ("ann", "ann2", "ann3", ...). When the number would make the nick longer
 * than 32 characters, nick is cut at a character boundary first ("…ab" +
 * "2" keeps 32 characters). Writes the NUL-terminated result to out, which
 * has room for GH_CHAT_NICK_MAX_BYTES + 1 bytes.
 * Returns 0 with *out_len set; -EINVAL when nick is empty or over
 * GH_CHAT_NICK_MAX_BYTES bytes; -ERANGE when no number up to
 * count + 2 is free (cannot happen: at most count nicks are taken). */
int gh_chat_roster_unique(const gh_chat_roster *r, const char *nick, size_t len,
                          const gh_chat_member *self, char *out, size_t *out_len);

/* Adds m (not in any roster) at the end of the join order with the nick
 * nick[0..len), copied into m. The nick must be free (see
 * gh_chat_roster_unique). Returns 0; -EINVAL when len is 0 or over
 * GH_CHAT_NICK_MAX_BYTES or the nick is taken; -ENOMEM when the first
 * hash table could not be allocated (m is not added then; a table that
 * cannot grow later only makes its chains longer). */
int gh_chat_roster_add(gh_chat_roster *r, gh_chat_member *m, const char *nick, size_t len);

/* Gives member m of r the nick nick[0..len), keeping its place in the join
 * order. Returns 0; -EINVAL when len is 0 or over GH_CHAT_NICK_MAX_BYTES
 * or another member has the nick (m keeps its old nick then). Never
 * allocates. */
int gh_chat_roster_rename(gh_chat_roster *r, gh_chat_member *m, const char *nick, size_t len);

/* Takes m out of r (m must be in r). Never allocates or fails. */
void gh_chat_roster_remove(gh_chat_roster *r, gh_chat_member *m);

/* ---- the rate limiter --------------------------------------------------- */

/* A token bucket: rate tokens a second up to burst, one token a message.
 * Counts in thousandths of a token so that integer rates stay exact at
 * millisecond resolution. Caller's storage; set up with
 * gh_chat_bucket_init(). */
typedef struct {
    uint64_t milli;     /* tokens * 1000 */
    uint64_t last_ms;
    uint32_t rate;      /* tokens a second; 0: no limit */
    uint32_t burst;     /* the most tokens held */
} gh_chat_bucket;

/* A full bucket at now_ms. rate 0 turns the limit off; a burst of 0 with
 * a rate counts as 1. now_ms is any monotonic millisecond clock. */
void gh_chat_bucket_init(gh_chat_bucket *b, uint32_t rate, uint32_t burst, uint64_t now_ms);

/* Refills the bucket for the time since the last call and takes one
 * token. Returns true when there was one (the message may pass), false
 * when it is empty (the message is over the rate). A clock that goes
 * backwards refills nothing. */
bool gh_chat_bucket_take(gh_chat_bucket *b, uint64_t now_ms);

/* ---- the history ring ----------------------------------------------------- */

/* One message of a room's history. The strings are owned by the ring,
 * NUL-terminated, and live until the entry is pushed out or the ring is
 * deinitialised. */
typedef struct {
    char    *from;          /* the sender's nick at the time */
    size_t   from_len;
    char    *text;
    size_t   text_len;
    int64_t  ts;            /* as pushed: ms since the epoch in chat.c */
} gh_chat_entry;

/* The last cap messages of a room. Slots are allocated as messages come,
 * up to cap, so an idle room costs nothing. Caller's storage. */
typedef struct {
    gh_chat_entry *slots;
    size_t         cap;     /* the most entries kept; 0 keeps none */
    size_t         alloc;   /* slots allocated */
    size_t         start;   /* index of the oldest entry */
    size_t         count;
} gh_chat_history;

/* An empty history keeping at most cap messages. Allocates nothing. */
void gh_chat_history_init(gh_chat_history *h, size_t cap);

/* Frees every entry and the slots; h is empty afterwards. */
void gh_chat_history_deinit(gh_chat_history *h);

/* Appends a copy of from[0..from_len) and text[0..text_len) with ts,
 * dropping the oldest entry when cap are kept. With cap 0 it keeps
 * nothing and returns 0. Returns 0, -ENOMEM (the history is unchanged),
 * or -E2BIG when the lengths overflow size_t. */
int gh_chat_history_push(gh_chat_history *h, const char *from, size_t from_len,
                         const char *text, size_t text_len, int64_t ts);

/* Entries kept. */
size_t gh_chat_history_count(const gh_chat_history *h);

/* Entry i, 0 being the oldest; NULL when i >= count. Borrowed: valid until
 * the next push or deinit. */
const gh_chat_entry *gh_chat_history_at(const gh_chat_history *h, size_t i);

#endif
