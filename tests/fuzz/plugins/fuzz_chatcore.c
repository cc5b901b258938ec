/* fuzz_chatcore.c: the chat plugin's pure parts (plugins/chat/chatcore.c):
 * the query reader, the room and nick checks, and nick uniqueness against
 * a room of arbitrary entries. Checks what must hold for every input: the
 * nick uniqueness result is itself a valid nick, at most 32 characters,
 * and collides (ASCII case-folded) with no entry but the skipped one.
 *
 * Input: byte 0 picks the skipped entry (>= 128: none); then a query
 * string up to the first '\n'; then room entries separated by '\n'. Every
 * entry is copied into a heap block of its own so ASan sees an over-read. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatcore.h"

#define MAX_ENTRIES 256

typedef struct {
    char  *data;
    size_t len;
} entry;

static void at(const void *list, size_t i, const char **nick, size_t *len)
{
    const entry *e = (const entry *)list + i;

    *nick = e->data;
    *len = e->len;
}

static bool same_folded(const char *a, size_t al, const char *b, size_t bl)
{
    if (al != bl)
        return false;
    for (size_t i = 0; i < al; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x += 32;
        if (y >= 'A' && y <= 'Z')
            y += 32;
        if (x != y)
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    entry list[MAX_ENTRIES];
    size_t count = 0, skip, qlen, vlen, nlen, olen;
    const char *p = (const char *)data + 1, *end = (const char *)data + size, *nl, *nick;
    char value[512], out[GH_CHAT_NICK_MAX_BYTES + 1];
    int rc;

    if (size < 1)
        return 0;
    skip = data[0] < 128 ? data[0] : GH_CHAT_SKIP_NONE;
    nl = memchr(p, '\n', (size_t)(end - p));
    qlen = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

    /* the query, as chat.c reads it */
    rc = gh_chat_query_get(p, qlen, "room", value, 64, &vlen);
    if (rc == 0 && vlen > 64)
        abort();
    if (rc == 0)
        (void)gh_chat_room_is_valid(value, vlen);
    rc = gh_chat_query_get(p, qlen, "nick", value, sizeof(value), &vlen);
    if (rc != 0 || gh_chat_nick_check(value, vlen, &nick, &nlen) != 0)
        return 0;
    if (nick < value || nick + nlen > value + vlen || nlen == 0 ||
        gh_chat_utf8_chars(nick, nlen) > GH_CHAT_NICK_MAX_CHARS)
        abort();

    /* the room */
    for (p = nl != NULL ? nl + 1 : end; p < end && count < MAX_ENTRIES; count++) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        size_t l = e != NULL ? (size_t)(e - p) : (size_t)(end - p);
        list[count].data = malloc(l > 0 ? l : 1);
        if (list[count].data == NULL)
            goto done;
        memcpy(list[count].data, p, l);
        list[count].len = l;
        p += l + 1;
    }
    if (gh_chat_nick_unique(nick, nlen, at, list, count, skip, out, &olen) != 0)
        abort();
    {
        const char *checked;
        size_t clen;
        if (strlen(out) != olen || gh_chat_nick_check(out, olen, &checked, &clen) != 0 ||
            clen != olen)
            abort();
    }
    for (size_t i = 0; i < count; i++)
        if (i != skip && same_folded(out, olen, list[i].data, list[i].len))
            abort();
done:
    for (size_t i = 0; i < count; i++)
        free(list[i].data);
    return 0;
}
