/* chatcore.h: the chat plugin's pure parts. No I/O, no JSON, no host calls.
 *
 * Room and nick validation, the query-string reader, nick uniqueness
 * (numeric suffixes) against a list of nicks, and the per-connection token
 * bucket. chat.c glues them to the plugin ABI and jansson; everything here
 * is unit-tested on its own (tests/unit/test_chatcore.c). The room's
 * members and history are the host's topic state, not kept here.
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

/* ---- nick uniqueness ------------------------------------------------------ */

/* Reads entry i (0 <= i < count) of a caller's list of nicks: sets *nick
 * and *len to its bytes (not NUL-terminated; *nick may be NULL when *len
 * is 0). The bytes need not be a checked nick: anything compares. */
typedef void (*gh_chat_nick_at)(const void *list, size_t i, const char **nick, size_t *len);

/* No entry to skip (gh_chat_nick_unique's skip). */
#define GH_CHAT_SKIP_NONE SIZE_MAX

/* Makes a free nick out of a checked one (gh_chat_nick_check) against the
 * nicks taken: entries 0..count-1 of list, read through at, except entry
 * skip (the asker's own, or GH_CHAT_SKIP_NONE). Nicks are compared with
 * ASCII letters case-folded ("Ann" and "ann" are the same nick) and every
 * other byte exact. The result is nick itself when it is free, else nick
 * followed by the smallest decimal number n >= 2 that gives a free nick
 * ("ann", "ann2", "ann3", ...). When the number would make the nick longer
 * than 32 characters, nick is cut at a character boundary first ("...ab" +
 * "2" keeps 32 characters). Writes the NUL-terminated result to out, which
 * has room for GH_CHAT_NICK_MAX_BYTES + 1 bytes.
 * Reads every entry once when nick is free; otherwise twice, with a
 * scratch bitmap of about count * d / 8 bytes, d being the number of
 * decimal digits of 20 * count (625 bytes for 1,000 entries), freed
 * before it returns: O(count) time for any room.
 * Returns 0 with *out_len set; -EINVAL when nick is empty or over
 * GH_CHAT_NICK_MAX_BYTES bytes; -ENOMEM when the bitmap cannot be
 * allocated, or count is over SIZE_MAX / 256 (out is unspecified then). */
int gh_chat_nick_unique(const char *nick, size_t len, gh_chat_nick_at at, const void *list,
                        size_t count, size_t skip, char *out, size_t *out_len);

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

#endif
