/* chat.c: the chat plugin: multi-room chat over the gatehouse plugin ABI.
 *
 * A client connects to the chat route with ?room=NAME&nick=NICK, gets a
 * welcome (its nick, the room, who is there, the recent history), and
 * from then on every "say" goes to everyone in the room. The protocol is
 * in README.md next to this file.
 *
 * A room is a host topic: what is said is serialised once and handed to
 * the host's publish, which frames it once and queues the same bytes to
 * every subscriber, so a room of a thousand costs one encode a message.
 * The host does not tell a plugin who is subscribed, so the plugin keeps
 * its own roster per room (for the welcome, the user list and nick
 * uniqueness) and a history ring; the pure parts live in chatcore.c.
 * Rooms exist while someone is in them: the last one out frees the room
 * and its history, so idle rooms cost nothing and a client cannot pile up
 * rooms beyond the connections it holds.
 *
 * Every JSON document in and out goes through jansson: nothing here
 * parses or escapes JSON by hand.
 *
 * Not done here: persistence, authentication, private messages; rosters
 * and history are per route instance (see README.md). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <gatehouse/plugin.h>

#include "chatcore.h"

/* Consecutive malformed messages after which a client is closed. */
#define MAX_STRIKES      10
/* History entries replayed in one welcome stop at this many bytes of JSON,
 * newest kept, so a welcome stays well under the route's send backlog
 * (1 MiB by default) whatever history and max_text are. */
#define WELCOME_BUDGET   (512 * 1024)
/* A query value is read into a buffer this big before it is checked. */
#define QUERY_VALUE_MAX  512

static const gh_plugin_host *host;

typedef struct room room;

/* One route's chat. */
typedef struct {
    gh_plugin_inst *inst;
    uint32_t        history;        /* messages replayed; 0: none */
    uint32_t        rate, burst;    /* per connection; rate 0: no limit */
    uint32_t        max_users;      /* per room */
    size_t          max_text;       /* bytes of text in one say */
    room          **buckets;        /* rooms by name; nbuckets a power of two */
    size_t          nbuckets, nrooms;
} chat;

struct room {
    room           *hnext;
    uint32_t        hash;
    gh_chat_roster  roster;
    gh_chat_history history;
    size_t          name_len;
    char            name[GH_CHAT_ROOM_MAX + 1];   /* also the topic name */
};

/* One connection's state (host set_data). */
typedef struct {
    gh_chat_member  m;              /* in room->roster */
    room           *room;
    gh_plugin_conn *conn;
    gh_chat_bucket  bucket;
    unsigned        strikes;        /* malformed messages in a row */
} client;

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- rooms -------------------------------------------------------------- */

static uint32_t name_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static room *room_find(chat *ch, const char *name, size_t len)
{
    uint32_t h = name_hash(name, len);

    if (ch->nbuckets == 0)
        return NULL;
    for (room *r = ch->buckets[h & (ch->nbuckets - 1)]; r != NULL; r = r->hnext)
        if (r->hash == h && r->name_len == len && memcmp(r->name, name, len) == 0)
            return r;
    return NULL;
}

/* Doubles the room table; keeps the old one when it cannot. */
static void rooms_grow(chat *ch)
{
    size_t n = ch->nbuckets == 0 ? 16 : ch->nbuckets * 2;
    room **nb = calloc(n, sizeof(*nb));

    if (nb == NULL)
        return;
    for (size_t i = 0; i < ch->nbuckets; i++) {
        room *r, *next;
        for (r = ch->buckets[i]; r != NULL; r = next) {
            next = r->hnext;
            r->hnext = nb[r->hash & (n - 1)];
            nb[r->hash & (n - 1)] = r;
        }
    }
    free(ch->buckets);
    ch->buckets = nb;
    ch->nbuckets = n;
}

/* The room named name, created empty when there is none. NULL: no memory. */
static room *room_get(chat *ch, const char *name, size_t len)
{
    room *r = room_find(ch, name, len);

    if (r != NULL)
        return r;
    if (ch->nrooms >= ch->nbuckets)
        rooms_grow(ch);
    if (ch->nbuckets == 0 || (r = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    memcpy(r->name, name, len);
    r->name_len = len;
    r->hash = name_hash(name, len);
    gh_chat_roster_init(&r->roster);
    gh_chat_history_init(&r->history, ch->history);
    r->hnext = ch->buckets[r->hash & (ch->nbuckets - 1)];
    ch->buckets[r->hash & (ch->nbuckets - 1)] = r;
    ch->nrooms++;
    return r;
}

static void room_free(chat *ch, room *r)
{
    room **p = &ch->buckets[r->hash & (ch->nbuckets - 1)];

    while (*p != r)
        p = &(*p)->hnext;
    *p = r->hnext;
    ch->nrooms--;
    gh_chat_roster_deinit(&r->roster);
    gh_chat_history_deinit(&r->history);
    free(r);
}

/* ---- sending JSON --------------------------------------------------------- */

/* Serialises msg (reference stolen; NULL is an allocation failure that
 * already happened) and sends it to one connection. */
static void send_json(chat *ch, gh_plugin_conn *conn, json_t *msg)
{
    char *text = msg != NULL ? json_dumps(msg, JSON_COMPACT) : NULL;

    json_decref(msg);
    if (text == NULL) {
        host->log(ch->inst, conn, GH_PLUGIN_LOG_ERROR, "out of memory building a message");
        return;
    }
    /* on failure the host is closing the connection already */
    (void)host->send(conn, GH_PLUGIN_TEXT, text, strlen(text));
    free(text);
}

/* Serialises msg (reference stolen) and publishes it to everyone in r. */
static void publish_json(chat *ch, room *r, json_t *msg)
{
    char *text = msg != NULL ? json_dumps(msg, JSON_COMPACT) : NULL;
    int32_t rc;

    json_decref(msg);
    if (text == NULL) {
        host->log(ch->inst, NULL, GH_PLUGIN_LOG_ERROR, "out of memory building a message");
        return;
    }
    rc = host->publish(ch->inst, r->name, r->name_len, GH_PLUGIN_TEXT, text, strlen(text));
    /* -ENOTCONN: not serving any more (shutting down): nobody to tell */
    if (rc != 0 && rc != -ENOTCONN)
        host->log(ch->inst, NULL, GH_PLUGIN_LOG_WARN, "room %s: publish failed (%d)",
                  r->name, rc);
    free(text);
}

static void send_error(chat *ch, gh_plugin_conn *conn, const char *reason)
{
    send_json(ch, conn, json_pack("{s:s, s:s}", "type", "error", "reason", reason));
}

/* Sends an error, then closes with 1008 and the same reason. */
static void refuse(chat *ch, gh_plugin_conn *conn, const char *reason)
{
    send_error(ch, conn, reason);
    (void)host->close(conn, GH_PLUGIN_CLOSE_POLICY, reason, strlen(reason));
}

/* The welcome: the client's nick, the room, its users in join order and
 * the newest history that fits WELCOME_BUDGET, oldest first. */
static json_t *welcome_of(const room *r, const client *cl)
{
    json_t *msg, *users, *hist;
    size_t n = gh_chat_history_count(&r->history), first = n, bytes = 0;

    msg = json_pack("{s:s, s:s%, s:s%}", "type", "welcome", "nick", cl->m.nick,
                    cl->m.nick_len, "room", r->name, r->name_len);
    if (msg == NULL)
        return NULL;
    if ((users = json_array()) == NULL || json_object_set_new(msg, "users", users) != 0)
        goto fail;
    for (const gh_chat_member *m = r->roster.head; m != NULL; m = m->next)
        if (json_array_append_new(users, json_stringn(m->nick, m->nick_len)) != 0)
            goto fail;
    if ((hist = json_array()) == NULL || json_object_set_new(msg, "history", hist) != 0)
        goto fail;
    /* newest first until the budget is spent, then append in order */
    while (first > 0) {
        const gh_chat_entry *e = gh_chat_history_at(&r->history, first - 1);
        json_t *o = json_pack("{s:s, s:s%, s:s%, s:I}", "type", "said", "from", e->from,
                              e->from_len, "text", e->text, e->text_len, "ts",
                              (json_int_t)e->ts);
        size_t len = o != NULL ? json_dumpb(o, NULL, 0, JSON_COMPACT) : 0;

        json_decref(o);
        if (len == 0 || bytes + len + 1 > WELCOME_BUDGET)
            break;
        bytes += len + 1;
        first--;
    }
    for (size_t i = first; i < n; i++) {
        const gh_chat_entry *e = gh_chat_history_at(&r->history, i);
        if (json_array_append_new(hist, json_pack("{s:s, s:s%, s:s%, s:I}", "type", "said",
                                                  "from", e->from, e->from_len, "text",
                                                  e->text, e->text_len, "ts",
                                                  (json_int_t)e->ts)) != 0)
            goto fail;
    }
    return msg;
fail:
    json_decref(msg);
    return NULL;
}

/* ---- config and lifetime -------------------------------------------------- */

static int32_t get_u32(const gh_plugin_cfg *cfg, const char *key, int64_t def, int64_t min,
                       int64_t max, uint32_t *out)
{
    int64_t v;
    int32_t rc = host->config_int(cfg, key, def, min, max, &v);

    if (rc == 0)
        *out = (uint32_t)v;
    return rc;
}

static int32_t chat_init(const gh_plugin_host *h, gh_plugin_inst *inst,
                         const gh_plugin_cfg *config, void **state)
{
    static const char *const known[] = {
        "history", "max_text", "rate", "burst", "max_users", NULL,
    };
    chat *ch = NULL;
    uint64_t max_text;
    int32_t rc;

    host = h;
    if ((rc = h->config_check_keys(config, known)) != 0)
        return rc;
    if ((ch = calloc(1, sizeof(*ch))) == NULL)
        return -ENOMEM;
    ch->inst = inst;
    if ((rc = get_u32(config, "history", 50, 0, 10000, &ch->history)) != 0 ||
        (rc = get_u32(config, "rate", 20, 0, 1000000, &ch->rate)) != 0 ||
        (rc = get_u32(config, "burst", 40, 1, 1000000, &ch->burst)) != 0 ||
        (rc = get_u32(config, "max_users", 1000, 1, 1000000, &ch->max_users)) != 0 ||
        (rc = h->config_size(config, "max_text", 4096, &max_text)) != 0)
        goto fail;
    if (max_text < 1 || max_text > 1024 * 1024) {
        h->log(inst, NULL, GH_PLUGIN_LOG_ERROR,
               "max_text: %llu not in 1..1MiB", (unsigned long long)max_text);
        rc = -EINVAL;
        goto fail;
    }
    ch->max_text = (size_t)max_text;
    *state = ch;
    return 0;
fail:
    free(ch);
    return rc;
}

static void chat_fini(void *state)
{
    chat *ch = state;

    /* Every connection has closed by now; a member still listed belongs to
     * a connection the host will never call us about again. */
    for (size_t i = 0; i < ch->nbuckets; i++) {
        while (ch->buckets[i] != NULL) {
            room *r = ch->buckets[i];
            while (r->roster.head != NULL) {
                client *cl = (client *)r->roster.head;
                gh_chat_roster_remove(&r->roster, &cl->m);
                free(cl);
            }
            room_free(ch, r);
        }
    }
    free(ch->buckets);
    free(ch);
}

/* ---- a client ---------------------------------------------------------------- */

/* Reads and checks ?room= and ?nick=. Returns NULL and sets the room name
 * and the checked nick (into the caller's buffers), or the error reason. */
static const char *read_query(gh_plugin_conn *conn, char *room_name, size_t *room_len,
                              char *nick_buf, const char **nick, size_t *nick_len)
{
    const char *q = host->query(conn);
    size_t qlen = strlen(q), n;
    int rc;

    rc = gh_chat_query_get(q, qlen, "room", room_name, GH_CHAT_ROOM_MAX, &n);
    if (rc == -ENOENT || (rc == 0 && n == 0)) {
        n = strlen(GH_CHAT_ROOM_DEFAULT);
        memcpy(room_name, GH_CHAT_ROOM_DEFAULT, n);
    } else if (rc != 0 || !gh_chat_room_is_valid(room_name, n)) {
        return "bad room";
    }
    room_name[n] = '\0';
    *room_len = n;

    rc = gh_chat_query_get(q, qlen, "nick", nick_buf, QUERY_VALUE_MAX, &n);
    if (rc == -ENOENT || (rc == 0 && n == 0)) {
        *nick = "guest";
        *nick_len = 5;
    } else if (rc != 0 || gh_chat_nick_check(nick_buf, n, nick, nick_len) != 0) {
        return "bad nick";
    }
    return NULL;
}

static int32_t chat_open(void *state, gh_plugin_conn *conn)
{
    chat *ch = state;
    char room_name[GH_CHAT_ROOM_MAX + 1], nick_buf[QUERY_VALUE_MAX];
    char unique[GH_CHAT_NICK_MAX_BYTES + 1];
    const char *nick, *why;
    size_t room_len, nick_len, unique_len;
    client *cl = NULL;
    room *r;

    if ((why = read_query(conn, room_name, &room_len, nick_buf, &nick, &nick_len)) != NULL) {
        refuse(ch, conn, why);
        return 0;
    }
    if ((r = room_get(ch, room_name, room_len)) == NULL)
        return GH_PLUGIN_CLOSE_INTERNAL;
    if (r->roster.count >= ch->max_users) {
        host->log(ch->inst, conn, GH_PLUGIN_LOG_INFO, "room %s is full (%u users)",
                  r->name, ch->max_users);
        refuse(ch, conn, "room full");
        return 0;
    }
    if ((cl = calloc(1, sizeof(*cl))) == NULL ||
        gh_chat_roster_unique(&r->roster, nick, nick_len, NULL, unique, &unique_len) != 0 ||
        gh_chat_roster_add(&r->roster, &cl->m, unique, unique_len) != 0)
        goto fail;
    cl->room = r;
    cl->conn = conn;
    gh_chat_bucket_init(&cl->bucket, ch->rate, ch->burst, mono_ms());
    /* tell the others before subscribing, so the joiner's first message
     * is its welcome and it never sees its own "joined" */
    publish_json(ch, r, json_pack("{s:s, s:s%}", "type", "joined", "nick", cl->m.nick,
                                  cl->m.nick_len));
    if (host->subscribe(conn, r->name, r->name_len) != 0) {
        gh_chat_roster_remove(&r->roster, &cl->m);
        publish_json(ch, r, json_pack("{s:s, s:s%}", "type", "left", "nick", cl->m.nick,
                                      cl->m.nick_len));
        goto fail;
    }
    host->set_data(conn, cl);
    send_json(ch, conn, welcome_of(r, cl));
    host->log(ch->inst, conn, GH_PLUGIN_LOG_DEBUG, "%s joined %s (%zu users)", cl->m.nick,
              r->name, r->roster.count);
    return 0;
fail:
    free(cl);
    if (r->roster.count == 0)
        room_free(ch, r);
    return GH_PLUGIN_CLOSE_INTERNAL;
}

static void chat_close(void *state, gh_plugin_conn *conn, uint16_t code,
                       const char *reason, size_t reason_len)
{
    chat *ch = state;
    client *cl = host->get_data(conn);
    room *r;

    (void)code;
    (void)reason;
    (void)reason_len;
    if (cl == NULL)
        return;                 /* refused in open */
    host->set_data(conn, NULL);
    r = cl->room;
    gh_chat_roster_remove(&r->roster, &cl->m);
    /* the host has unsubscribed conn already: this reaches the others */
    if (r->roster.count > 0)
        publish_json(ch, r, json_pack("{s:s, s:s%}", "type", "left", "nick", cl->m.nick,
                                      cl->m.nick_len));
    else
        room_free(ch, r);
    free(cl);
}

/* A malformed message: an error, and after MAX_STRIKES in a row, 1008. */
static void strike(chat *ch, client *cl, const char *reason)
{
    send_error(ch, cl->conn, reason);
    if (++cl->strikes >= MAX_STRIKES) {
        host->log(ch->inst, cl->conn, GH_PLUGIN_LOG_INFO,
                  "closing after %u malformed messages in a row", cl->strikes);
        (void)host->close(cl->conn, GH_PLUGIN_CLOSE_POLICY, "too many bad messages", 21);
    }
}

static void on_say(chat *ch, client *cl, json_t *msg)
{
    json_t *text = json_object_get(msg, "text");
    size_t len;
    int64_t ts;

    if (!json_is_string(text)) {
        strike(ch, cl, "bad message");
        return;
    }
    cl->strikes = 0;
    len = json_string_length(text);
    if (len == 0) {
        send_error(ch, cl->conn, "empty text");
        return;
    }
    if (len > ch->max_text) {
        send_error(ch, cl->conn, "too long");
        return;
    }
    ts = wall_ms();
    if (gh_chat_history_push(&cl->room->history, cl->m.nick, cl->m.nick_len,
                             json_string_value(text), len, ts) != 0)
        host->log(ch->inst, cl->conn, GH_PLUGIN_LOG_WARN, "out of memory keeping history");
    publish_json(ch, cl->room, json_pack("{s:s, s:s%, s:O, s:I}", "type", "said", "from",
                                         cl->m.nick, cl->m.nick_len, "text", text, "ts",
                                         (json_int_t)ts));
}

static void on_nick(chat *ch, client *cl, json_t *msg)
{
    json_t *v = json_object_get(msg, "nick");
    char unique[GH_CHAT_NICK_MAX_BYTES + 1], old[GH_CHAT_NICK_MAX_BYTES + 1];
    const char *nick;
    size_t nick_len, unique_len, old_len;
    room *r = cl->room;

    if (!json_is_string(v)) {
        strike(ch, cl, "bad message");
        return;
    }
    cl->strikes = 0;
    if (gh_chat_nick_check(json_string_value(v), json_string_length(v), &nick,
                           &nick_len) != 0) {
        send_error(ch, cl->conn, "bad nick");
        return;
    }
    if (nick_len == cl->m.nick_len && memcmp(nick, cl->m.nick, nick_len) == 0)
        return;                 /* already so: nothing changes, nobody is told */
    if (gh_chat_roster_unique(&r->roster, nick, nick_len, &cl->m, unique, &unique_len) != 0) {
        send_error(ch, cl->conn, "bad nick");
        return;
    }
    memcpy(old, cl->m.nick, cl->m.nick_len + 1);
    old_len = cl->m.nick_len;
    if (gh_chat_roster_rename(&r->roster, &cl->m, unique, unique_len) != 0) {
        send_error(ch, cl->conn, "bad nick");
        return;
    }
    publish_json(ch, r, json_pack("{s:s, s:s%, s:s%}", "type", "renamed", "from", old,
                                  old_len, "to", cl->m.nick, cl->m.nick_len));
}

static void chat_message(void *state, gh_plugin_conn *conn, int32_t type,
                         const void *data, size_t len)
{
    chat *ch = state;
    client *cl = host->get_data(conn);
    json_t *msg;
    const char *t;

    if (cl == NULL)
        return;
    /* every message costs a token, the malformed ones too */
    if (!gh_chat_bucket_take(&cl->bucket, mono_ms())) {
        send_error(ch, conn, "rate limited");
        return;
    }
    if (type != GH_PLUGIN_TEXT) {
        strike(ch, cl, "not text");
        return;
    }
    /* JSON escapes take at most 6 bytes a text byte: anything longer
     * cannot be a say within max_text, so do not parse it */
    if (len > ch->max_text * 6 + 1024) {
        send_error(ch, conn, "too long");
        return;
    }
    if ((msg = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL)) == NULL) {
        strike(ch, cl, "bad JSON");
        return;
    }
    if (!json_is_object(msg) || (t = json_string_value(json_object_get(msg, "type"))) == NULL)
        strike(ch, cl, "bad message");
    else if (strcmp(t, "say") == 0)
        on_say(ch, cl, msg);
    else if (strcmp(t, "nick") == 0)
        on_nick(ch, cl, msg);
    else
        strike(ch, cl, "unknown type");
    json_decref(msg);
}

GH_PLUGIN_EXPORT const gh_plugin_desc gatehouse_plugin = {
    .abi_major = GH_PLUGIN_ABI_MAJOR,
    .abi_minor = GH_PLUGIN_ABI_MINOR,
    .size = sizeof(gh_plugin_desc),
    .name = "chat",
    .version = "1.0",
    .init = chat_init,
    .fini = chat_fini,
    .open = chat_open,
    .message = chat_message,
    .close = chat_close,
};
