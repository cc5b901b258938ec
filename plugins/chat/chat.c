/* chat.c: the chat plugin: multi-room chat over the gatehouse plugin ABI.
 *
 * A client connects to the chat route with ?room=NAME&nick=NICK, gets a
 * welcome (its nick, the room, who is there, the recent history), and
 * from then on every "say" goes to everyone in the room. The protocol is
 * in README.md next to this file.
 *
 * A room is a host topic, and everything the room knows lives in the
 * topic's state (plugin ABI 1.1), not here: its members (one per
 * connection, the value being the nick) and its log (the newest `said`
 * messages, exactly as published). Without a bus that state is in this
 * process; with one it is in Redis, so the welcome, nick uniqueness and
 * max_users are the whole room's on every gatehouse sharing the bus. The
 * plugin keeps nothing per room: a client joins the topic (which answers
 * with the state, ordered with the topic's messages so that the welcome's
 * history and the live messages after it neither overlap nor leave a
 * gap) and, in that same step, claims its nick as its member value and a
 * place under max_users (member_claim, ABI 1.2: checked and taken at once
 * for the whole room, so two joiners never both get a nick), announcing
 * "joined"; a nick someone has is made unique against the state that came
 * with the refusal ("ann2") and claimed again; then it sends the welcome.
 * "left" is the farewell the host publishes when the connection goes (or
 * when its instance has been gone from the bus for presence_ttl). A
 * rename claims the new nick the same way. On a 1.1 host the plugin picks
 * the nick against the joined state and sets it with member_set instead
 * (two joiners at once may then both get one nick). What is said is serialised once and published with
 * log_publish, which frames it once for every subscriber and logs it.
 *
 * Asking for the state takes a round trip to Redis. Meanwhile a client's
 * messages are queued (bounded) and handled in order once the answer is
 * in, so a client may talk as soon as it is connected.
 *
 * Every JSON document in and out goes through jansson: nothing here
 * parses or escapes JSON by hand.
 *
 * Not done here: persistence beyond the room's life, authentication,
 * private messages, a lock on nicks across instances (see README.md). */
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
/* Messages held while a join or fetch is outstanding: at most this many,
 * and this many bytes unless the queue is empty (one message of any size
 * the route lets through may always wait). Beyond: "busy". */
#define QUEUE_MAX_MSGS   16
#define QUEUE_MAX_BYTES  (256 * 1024)

static const gh_plugin_host *host;

/* One route's chat. */
typedef struct client client;
typedef struct {
    gh_plugin_inst *inst;
    uint32_t        history;        /* messages replayed; 0: none */
    uint32_t        rate, burst;    /* per connection; rate 0: no limit */
    uint32_t        max_users;      /* per room, across instances */
    size_t          max_text;       /* bytes of text in one say */
    client         *clients;        /* every open client, for fini */
} chat;

/* Messages dropped on arrival (over the rate, or the queue full) while
 * others wait: their errors are owed, in order, once those are handled. */
typedef struct {
    uint32_t limited;               /* "rate limited" */
    uint32_t busy;                  /* "busy" */
} owed;

/* A message that came while a join or fetch was outstanding. Only text
 * that may be parsed keeps its bytes: a binary or an over-long message is
 * refused from its type and length alone. */
typedef struct queued {
    struct queued *next;
    int32_t        type;
    bool           has_data;
    size_t         len;             /* the message's length */
    owed           after;           /* dropped after this one came */
    char           data[];          /* len bytes when has_data */
} queued;

/* One connection's state (host set_data). */
struct client {
    client         *prev, *next;    /* chat->clients */
    chat           *ch;
    gh_plugin_conn *conn;
    size_t          room_len;
    char            room[GH_CHAT_ROOM_MAX + 1];     /* also the topic name */
    /* until the join's answer: the nick asked for; then the nick held */
    size_t          nick_len;
    char            nick[GH_CHAT_NICK_MAX_BYTES + 1];
    size_t          want_len;       /* a rename waiting for its fetch */
    char            want[GH_CHAT_NICK_MAX_BYTES + 1];
    bool            waiting;        /* a join or fetch is outstanding */
    unsigned        tries;          /* claims of a nick refused in a row */
    bool            closing;        /* closed, or the host is closing it */
    gh_chat_bucket  bucket;
    unsigned        strikes;        /* malformed messages in a row */
    queued         *qhead, *qtail;
    size_t          qcount, qbytes;
    owed            first;          /* dropped before any queued message */
};

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

/* ---- sending JSON --------------------------------------------------------- */

/* Serialises msg (reference stolen; NULL is an allocation failure that
 * already happened) into a string the caller frees, or NULL (logged). */
static char *dump(chat *ch, gh_plugin_conn *conn, json_t *msg)
{
    char *text = msg != NULL ? json_dumps(msg, JSON_COMPACT) : NULL;

    json_decref(msg);
    if (text == NULL)
        host->log(ch->inst, conn, GH_PLUGIN_LOG_ERROR, "out of memory building a message");
    return text;
}

/* Serialises msg (reference stolen) and sends it to the client. Returns
 * false when it was not sent (out of memory, or the host is closing the
 * connection: then cl->closing is set). */
static bool send_json(client *cl, json_t *msg)
{
    char *text = dump(cl->ch, cl->conn, msg);
    bool sent = false;

    if (text == NULL)
        return false;
    /* on failure the host is closing the connection already */
    if (host->send(cl->conn, GH_PLUGIN_TEXT, text, strlen(text)) == 0)
        sent = true;
    else
        cl->closing = true;
    free(text);
    return sent;
}

static void send_error(client *cl, const char *reason)
{
    (void)send_json(cl, json_pack("{s:s, s:s}", "type", "error", "reason", reason));
}

/* Sends an error, then closes with 1008 and the same reason. */
static void refuse(client *cl, const char *reason)
{
    send_error(cl, reason);
    (void)host->close(cl->conn, GH_PLUGIN_CLOSE_POLICY, reason, strlen(reason));
    cl->closing = true;
}

/* Something that should not fail did: 1011. */
static void close_internal(client *cl)
{
    (void)host->close(cl->conn, GH_PLUGIN_CLOSE_INTERNAL, "internal error", 14);
    cl->closing = true;
}

/* ---- the room's state -------------------------------------------------------- */

/* gh_chat_nick_at over the host's member values. */
static void member_at(const void *list, size_t i, const char **nick, size_t *len)
{
    const gh_plugin_bytes *m = (const gh_plugin_bytes *)list + i;

    *nick = m->data;
    *len = m->len;
}

/* The welcome: the client's nick, the room, its users in join order (the
 * members, then this client) and the newest logged messages, at most the
 * route's history (the log may keep more for another route) and as many
 * as fit WELCOME_BUDGET, oldest first. Each logged message is a `said`
 * object as it was published; one that does not parse as an object is
 * skipped.
 * Returns a new reference, or NULL when out of memory. */
static json_t *welcome_of(const client *cl, const gh_plugin_topic_state *st)
{
    json_t *msg, *users, *hist, **parsed = NULL;
    size_t bytes = 0, oldest = 0;

    msg = json_pack("{s:s, s:s%, s:s%}", "type", "welcome", "nick", cl->nick, cl->nick_len,
                    "room", cl->room, cl->room_len);
    if (msg == NULL)
        return NULL;
    if ((users = json_array()) == NULL || json_object_set_new(msg, "users", users) != 0)
        goto fail;
    for (size_t i = 0; i < st->nmembers; i++) {
        /* member values are UTF-8 (the host checks): NULL is no memory */
        json_t *u = json_stringn(st->members[i].data, st->members[i].len);
        if (u == NULL || json_array_append_new(users, u) != 0)
            goto fail;
    }
    if (json_array_append_new(users, json_stringn(cl->nick, cl->nick_len)) != 0)
        goto fail;
    if ((hist = json_array()) == NULL || json_object_set_new(msg, "history", hist) != 0)
        goto fail;
    if (st->nlog == 0 || cl->ch->history == 0)
        return msg;
    if (st->nlog > cl->ch->history)
        oldest = st->nlog - cl->ch->history;
    if ((parsed = calloc(st->nlog, sizeof(*parsed))) == NULL)
        goto fail;
    /* newest first until the budget is spent, then append in order */
    for (size_t i = st->nlog; i > oldest; i--) {
        const gh_plugin_bytes *e = &st->log[i - 1];
        json_t *o;

        if (e->len >= WELCOME_BUDGET || bytes + e->len + 1 > WELCOME_BUDGET)
            break;
        o = json_loadb(e->data, e->len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(o)) {
            json_decref(o);
            continue;
        }
        parsed[i - 1] = o;
        bytes += e->len + 1;
    }
    for (size_t i = 0; i < st->nlog; i++) {
        json_t *o = parsed[i];

        parsed[i] = NULL;
        /* the reference is stolen even when appending fails */
        if (o != NULL && json_array_append_new(hist, o) != 0)
            goto fail;
    }
    free(parsed);
    return msg;
fail:
    if (parsed != NULL) {
        for (size_t i = 0; i < st->nlog; i++)
            json_decref(parsed[i]);
        free(parsed);
    }
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

    if (host != h)       /* every instance's init, on any worker: write it once */
        host = h;
    /* the loader refuses a plugin newer than its host; this only guards a
     * host that claims 1.1 without the topic state */
    if (!GH_PLUGIN_HOST_HAS(h, join) || !GH_PLUGIN_HOST_HAS(h, fetch) ||
        !GH_PLUGIN_HOST_HAS(h, member_set) || !GH_PLUGIN_HOST_HAS(h, log_publish)) {
        h->log(inst, NULL, GH_PLUGIN_LOG_ERROR, "the host has no topic state (ABI 1.1)");
        return -ENOTSUP;
    }
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

static void client_free(client *cl)
{
    queued *q, *next;

    for (q = cl->qhead; q != NULL; q = next) {
        next = q->next;
        free(q);
    }
    free(cl);
}

static void chat_fini(void *state)
{
    chat *ch = state;

    /* every connection has had its close callback by now; anything left
     * belongs to a connection the host will never call us about again */
    while (ch->clients != NULL) {
        client *cl = ch->clients;
        ch->clients = cl->next;
        client_free(cl);
    }
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

static void handle(client *cl, int32_t type, const void *data, size_t len);
static void on_joined(void *arg, gh_plugin_conn *conn, const gh_plugin_topic_state *st);
static int32_t claim_join(client *cl);

static int32_t chat_open(void *state, gh_plugin_conn *conn)
{
    chat *ch = state;
    char room_name[GH_CHAT_ROOM_MAX + 1], nick_buf[QUERY_VALUE_MAX];
    const char *nick, *why;
    size_t room_len, nick_len;
    client *cl;
    int32_t rc;

    if ((why = read_query(conn, room_name, &room_len, nick_buf, &nick, &nick_len)) != NULL) {
        client tmp = { .ch = ch, .conn = conn };
        refuse(&tmp, why);
        return 0;
    }
    if ((cl = calloc(1, sizeof(*cl))) == NULL)
        return GH_PLUGIN_CLOSE_INTERNAL;
    cl->ch = ch;
    cl->conn = conn;
    memcpy(cl->room, room_name, room_len + 1);
    cl->room_len = room_len;
    memcpy(cl->nick, nick, nick_len);       /* checked: at most the buffer */
    cl->nick[nick_len] = '\0';
    cl->nick_len = nick_len;
    gh_chat_bucket_init(&cl->bucket, ch->rate, ch->burst, mono_ms());
    /* subscribes, and answers with the room as of the moment after which
     * every message of the room reaches this connection; with a 1.2 host
     * the nick and the room's place are claimed in that same step */
    if ((rc = GH_PLUGIN_HOST_HAS(host, member_claim)
              ? claim_join(cl)
              : host->join(conn, cl->room, cl->room_len, on_joined, cl)) != 0) {
        host->log(ch->inst, conn, GH_PLUGIN_LOG_ERROR, "cannot join room %s (%d)", cl->room,
                  (int)rc);
        free(cl);
        return GH_PLUGIN_CLOSE_INTERNAL;
    }
    cl->waiting = true;
    cl->next = ch->clients;
    if (ch->clients != NULL)
        ch->clients->prev = cl;
    ch->clients = cl;
    host->set_data(conn, cl);
    return 0;
}

static void chat_close(void *state, gh_plugin_conn *conn, uint16_t code,
                       const char *reason, size_t reason_len)
{
    chat *ch = state;
    client *cl = host->get_data(conn);

    (void)code;
    (void)reason;
    (void)reason_len;
    if (cl == NULL)
        return;                 /* refused in open */
    host->set_data(conn, NULL);
    /* the host has removed the member and published its farewell ("left"),
     * and will not call a join or fetch callback for conn any more */
    if (cl->prev != NULL)
        cl->prev->next = cl->next;
    else
        ch->clients = cl->next;
    if (cl->next != NULL)
        cl->next->prev = cl->prev;
    client_free(cl);
}

/* Sends the errors owed for dropped messages. */
static void pay(client *cl, owed *o)
{
    while (o->limited > 0 && !cl->closing) {
        o->limited--;
        send_error(cl, "rate limited");
    }
    while (o->busy > 0 && !cl->closing) {
        o->busy--;
        send_error(cl, "busy");
    }
}

/* Handles queued messages in order, each followed by the errors owed for
 * what was dropped after it came, until none is left, one starts another
 * fetch, or the client is closing. */
static void drain(client *cl)
{
    pay(cl, &cl->first);
    while (cl->qhead != NULL && !cl->waiting && !cl->closing) {
        queued *q = cl->qhead;

        cl->qhead = q->next;
        if (cl->qhead == NULL)
            cl->qtail = NULL;
        cl->qcount--;
        cl->qbytes -= q->has_data ? q->len : 0;
        handle(cl, q->type, q->has_data ? q->data : NULL, q->len);
        if (cl->waiting)
            cl->first = q->after;   /* after what that fetch answers */
        else
            pay(cl, &q->after);
        free(q);
    }
}

/* The join's answer: the room's members and log. */
static void on_joined(void *arg, gh_plugin_conn *conn, const gh_plugin_topic_state *st)
{
    client *cl = arg;
    chat *ch = cl->ch;
    char nick[GH_CHAT_NICK_MAX_BYTES + 1];
    char *announce = NULL, *farewell = NULL;
    json_t *welcome;
    size_t nick_len;
    int32_t rc;

    cl->waiting = false;
    if (cl->closing)
        return;
    if (!st->whole)
        host->log(ch->inst, conn, GH_PLUGIN_LOG_DEBUG, "room %s: the bus did not answer; "
                  "welcome with this instance's view only", cl->room);
    if (st->nmembers >= ch->max_users) {
        host->log(ch->inst, conn, GH_PLUGIN_LOG_INFO, "room %s is full (%u users)", cl->room,
                  ch->max_users);
        refuse(cl, "room full");
        return;
    }
    if ((rc = gh_chat_nick_unique(cl->nick, cl->nick_len, member_at, st->members,
                                  st->nmembers, GH_CHAT_SKIP_NONE, nick, &nick_len)) != 0) {
        host->log(ch->inst, conn, GH_PLUGIN_LOG_ERROR, "cannot pick a nick (%d)", rc);
        close_internal(cl);
        return;
    }
    memcpy(cl->nick, nick, nick_len + 1);
    cl->nick_len = nick_len;
    if ((welcome = welcome_of(cl, st)) == NULL) {
        host->log(ch->inst, conn, GH_PLUGIN_LOG_ERROR, "out of memory building a welcome");
        close_internal(cl);
        return;
    }
    if (!send_json(cl, welcome)) {
        if (!cl->closing)
            close_internal(cl);
        return;
    }
    announce = dump(ch, conn, json_pack("{s:s, s:s%}", "type", "joined", "nick", cl->nick,
                                        cl->nick_len));
    farewell = dump(ch, conn, json_pack("{s:s, s:s%}", "type", "left", "nick", cl->nick,
                                        cl->nick_len));
    /* the others learn of the joiner and the room's state lists it in
     * one step; its farewell is the host's to publish when it goes */
    if (announce == NULL || farewell == NULL) {
        close_internal(cl);
        goto out;
    }
    rc = host->member_set(conn, cl->room, cl->room_len, cl->nick, cl->nick_len, announce,
                          strlen(announce), GH_PLUGIN_NOT_SELF, farewell, strlen(farewell));
    if (rc == -ENOTCONN) {
        cl->closing = true;         /* the host is closing it */
        goto out;
    }
    if (rc != 0) {
        host->log(ch->inst, conn, GH_PLUGIN_LOG_ERROR, "room %s: cannot join (%d)", cl->room,
                  (int)rc);
        close_internal(cl);
        goto out;
    }
    host->log(ch->inst, conn, GH_PLUGIN_LOG_DEBUG, "%s joined %s (%zu users)", cl->nick,
              cl->room, st->nmembers + 1);
    drain(cl);
out:
    free(announce);
    free(farewell);
}

/* ---- claims (ABI 1.2): a nick no one else has, checked and taken in one
 * step for the whole room, so two clients asking for one nick at the same
 * moment on two workers or two instances never both get it, and the room
 * never passes max_users. A refused nick is made unique against the state
 * the refusal came with and claimed again. */

#define CLAIM_TRIES 16

static void on_claimed(void *arg, gh_plugin_conn *conn, int32_t result,
                       const gh_plugin_topic_state *st);
static void on_rename_claimed(void *arg, gh_plugin_conn *conn, int32_t result,
                              const gh_plugin_topic_state *st);

/* Joins cl's room claiming cl->nick (the one asked, then the ones made
 * unique). */
static int32_t claim_join(client *cl)
{
    chat *ch = cl->ch;
    char *announce = dump(ch, cl->conn, json_pack("{s:s, s:s%}", "type", "joined", "nick",
                                                  cl->nick, cl->nick_len));
    char *farewell = dump(ch, cl->conn, json_pack("{s:s, s:s%}", "type", "left", "nick",
                                                  cl->nick, cl->nick_len));
    int32_t rc = -ENOMEM;

    /* the others learn of the joiner and the room's state lists it in one
     * step; its farewell is the host's to publish when it goes */
    if (announce != NULL && farewell != NULL)
        rc = host->member_claim(cl->conn, cl->room, cl->room_len, cl->nick, cl->nick_len,
                                ch->max_users, announce, strlen(announce),
                                GH_PLUGIN_JOIN | GH_PLUGIN_ICASE | GH_PLUGIN_NOT_SELF,
                                farewell, strlen(farewell), on_claimed, cl);
    free(announce);
    free(farewell);
    return rc;
}

static void on_claimed(void *arg, gh_plugin_conn *conn, int32_t result,
                       const gh_plugin_topic_state *st)
{
    client *cl = arg;
    chat *ch = cl->ch;
    char nick[GH_CHAT_NICK_MAX_BYTES + 1];
    size_t nick_len;
    json_t *welcome;
    int32_t rc;

    cl->waiting = false;
    if (cl->closing)
        return;
    if (!st->whole)
        host->log(ch->inst, conn, GH_PLUGIN_LOG_DEBUG, "room %s: the bus did not answer; "
                  "welcome with this instance's view only", cl->room);
    if (result == -ENOSPC) {
        host->log(ch->inst, conn, GH_PLUGIN_LOG_INFO, "room %s is full (%u users)", cl->room,
                  ch->max_users);
        refuse(cl, "room full");
        return;
    }
    if (result == -EEXIST) {
        /* someone has it (or took it a moment ago): the next free one as
         * this state has the room, claimed again */
        if (++cl->tries >= CLAIM_TRIES ||
            (rc = gh_chat_nick_unique(cl->nick, cl->nick_len, member_at, st->members,
                                      st->nmembers, GH_CHAT_SKIP_NONE, nick,
                                      &nick_len)) != 0) {
            host->log(ch->inst, conn, GH_PLUGIN_LOG_ERROR, "room %s: cannot pick a nick "
                      "(%u tries)", cl->room, cl->tries);
            close_internal(cl);
            return;
        }
        memcpy(cl->nick, nick, nick_len + 1);
        cl->nick_len = nick_len;
        if ((rc = claim_join(cl)) == -ENOTCONN) {
            cl->closing = true;
        } else if (rc != 0) {
            host->log(ch->inst, conn, GH_PLUGIN_LOG_ERROR, "room %s: cannot join (%d)",
                      cl->room, (int)rc);
            close_internal(cl);
        } else {
            cl->waiting = true;
        }
        return;
    }
    if (result != 0) {
        close_internal(cl);
        return;
    }
    cl->tries = 0;
    if ((welcome = welcome_of(cl, st)) == NULL) {
        host->log(ch->inst, conn, GH_PLUGIN_LOG_ERROR, "out of memory building a welcome");
        close_internal(cl);
        return;
    }
    if (!send_json(cl, welcome)) {
        if (!cl->closing)
            close_internal(cl);
        return;
    }
    host->log(ch->inst, conn, GH_PLUGIN_LOG_DEBUG, "%s joined %s (%zu users)", cl->nick,
              cl->room, st->nmembers + 1);
    drain(cl);
}

/* Claims cl->want as cl's new nick. */
static int32_t claim_rename(client *cl)
{
    chat *ch = cl->ch;
    char *announce = dump(ch, cl->conn, json_pack("{s:s, s:s%, s:s%}", "type", "renamed",
                                                  "from", cl->nick, cl->nick_len, "to",
                                                  cl->want, cl->want_len));
    char *farewell = dump(ch, cl->conn, json_pack("{s:s, s:s%}", "type", "left", "nick",
                                                  cl->want, cl->want_len));
    int32_t rc = -ENOMEM;

    /* the renamer gets its "renamed" too: no NOT_SELF */
    if (announce != NULL && farewell != NULL)
        rc = host->member_claim(cl->conn, cl->room, cl->room_len, cl->want, cl->want_len, 0,
                                announce, strlen(announce), GH_PLUGIN_ICASE, farewell,
                                strlen(farewell), on_rename_claimed, cl);
    free(announce);
    free(farewell);
    return rc;
}

static void on_rename_claimed(void *arg, gh_plugin_conn *conn, int32_t result,
                              const gh_plugin_topic_state *st)
{
    client *cl = arg;
    chat *ch = cl->ch;
    char nick[GH_CHAT_NICK_MAX_BYTES + 1];
    size_t nick_len, self = GH_CHAT_SKIP_NONE;
    int32_t rc;

    cl->waiting = false;
    if (cl->closing)
        return;
    if (result == 0) {
        cl->tries = 0;
        memcpy(cl->nick, cl->want, cl->want_len + 1);
        cl->nick_len = cl->want_len;
        drain(cl);
        return;
    }
    /* the member value this client set is its nick: that entry does not
     * count against it (one entry: a second one is someone else's) */
    for (size_t i = 0; i < st->nmembers && self == GH_CHAT_SKIP_NONE; i++)
        if (st->members[i].len == cl->nick_len &&
            memcmp(st->members[i].data, cl->nick, cl->nick_len) == 0)
            self = i;
    if (result != -EEXIST || ++cl->tries >= CLAIM_TRIES ||
        gh_chat_nick_unique(cl->want, cl->want_len, member_at, st->members, st->nmembers,
                            self, nick, &nick_len) != 0) {
        host->log(ch->inst, conn, GH_PLUGIN_LOG_WARN, "room %s: cannot rename (%d)",
                  cl->room, (int)result);
        cl->tries = 0;
        send_error(cl, "busy");
        drain(cl);
        return;
    }
    memcpy(cl->want, nick, nick_len + 1);
    cl->want_len = nick_len;
    if ((rc = claim_rename(cl)) == -ENOTCONN) {
        cl->closing = true;
    } else if (rc != 0) {
        host->log(ch->inst, conn, GH_PLUGIN_LOG_WARN, "room %s: cannot rename (%d)",
                  cl->room, (int)rc);
        cl->tries = 0;
        send_error(cl, "busy");
        drain(cl);
    } else {
        cl->waiting = true;
    }
}

/* A rename's answer: the room's members, this client's own among them. */
static void on_fetched(void *arg, gh_plugin_conn *conn, const gh_plugin_topic_state *st)
{
    client *cl = arg;
    chat *ch = cl->ch;
    char nick[GH_CHAT_NICK_MAX_BYTES + 1];
    char *announce = NULL, *farewell = NULL;
    size_t nick_len, self = GH_CHAT_SKIP_NONE;
    int32_t rc;

    cl->waiting = false;
    if (cl->closing)
        return;
    /* the member value this client set is its nick: that entry does not
     * count against it (one entry: a second one is someone else's) */
    for (size_t i = 0; i < st->nmembers && self == GH_CHAT_SKIP_NONE; i++)
        if (st->members[i].len == cl->nick_len &&
            memcmp(st->members[i].data, cl->nick, cl->nick_len) == 0)
            self = i;
    rc = gh_chat_nick_unique(cl->want, cl->want_len, member_at, st->members, st->nmembers,
                             self, nick, &nick_len);
    if (rc != 0) {
        host->log(ch->inst, conn, GH_PLUGIN_LOG_WARN, "cannot pick a nick (%d)", rc);
        send_error(cl, rc == -ENOMEM ? "busy" : "bad nick");
        goto out;
    }
    announce = dump(ch, conn, json_pack("{s:s, s:s%, s:s%}", "type", "renamed", "from",
                                        cl->nick, cl->nick_len, "to", nick, nick_len));
    farewell = dump(ch, conn, json_pack("{s:s, s:s%}", "type", "left", "nick", nick,
                                        nick_len));
    if (announce == NULL || farewell == NULL) {
        send_error(cl, "busy");
        goto out;
    }
    /* the renamer gets its "renamed" too: flags 0 */
    rc = host->member_set(conn, cl->room, cl->room_len, nick, nick_len, announce,
                          strlen(announce), 0, farewell, strlen(farewell));
    if (rc == -ENOTCONN) {
        cl->closing = true;
        goto out;
    }
    if (rc != 0) {
        host->log(ch->inst, conn, GH_PLUGIN_LOG_WARN, "room %s: cannot rename (%d)",
                  cl->room, (int)rc);
        send_error(cl, "busy");
        goto out;
    }
    memcpy(cl->nick, nick, nick_len + 1);
    cl->nick_len = nick_len;
out:
    free(announce);
    free(farewell);
    drain(cl);
}

/* A malformed message: an error, and after MAX_STRIKES in a row, 1008. */
static void strike(client *cl, const char *reason)
{
    send_error(cl, reason);
    if (++cl->strikes >= MAX_STRIKES) {
        host->log(cl->ch->inst, cl->conn, GH_PLUGIN_LOG_INFO,
                  "closing after %u malformed messages in a row", cl->strikes);
        (void)host->close(cl->conn, GH_PLUGIN_CLOSE_POLICY, "too many bad messages", 21);
        cl->closing = true;
    }
}

static void on_say(client *cl, json_t *msg)
{
    chat *ch = cl->ch;
    json_t *text = json_object_get(msg, "text");
    char *said;
    size_t len;
    int32_t rc;

    if (!json_is_string(text)) {
        strike(cl, "bad message");
        return;
    }
    cl->strikes = 0;
    len = json_string_length(text);
    if (len == 0) {
        send_error(cl, "empty text");
        return;
    }
    if (len > ch->max_text) {
        send_error(cl, "too long");
        return;
    }
    said = dump(ch, cl->conn, json_pack("{s:s, s:s%, s:O, s:I}", "type", "said", "from",
                                        cl->nick, cl->nick_len, "text", text, "ts",
                                        (json_int_t)wall_ms()));
    if (said == NULL)
        return;
    /* logged as published: the welcome replays these very bytes */
    if (ch->history > 0)
        rc = host->log_publish(ch->inst, cl->room, cl->room_len, said, strlen(said),
                               ch->history);
    else
        rc = host->publish(ch->inst, cl->room, cl->room_len, GH_PLUGIN_TEXT, said,
                           strlen(said));
    /* -ENOTCONN: not serving any more (shutting down): nobody to tell */
    if (rc != 0 && rc != -ENOTCONN)
        host->log(ch->inst, cl->conn, GH_PLUGIN_LOG_WARN, "room %s: publish failed (%d)",
                  cl->room, (int)rc);
    free(said);
}

static void on_nick(client *cl, json_t *msg)
{
    chat *ch = cl->ch;
    json_t *v = json_object_get(msg, "nick");
    const char *nick;
    size_t nick_len;
    int32_t rc;

    if (!json_is_string(v)) {
        strike(cl, "bad message");
        return;
    }
    cl->strikes = 0;
    if (gh_chat_nick_check(json_string_value(v), json_string_length(v), &nick,
                           &nick_len) != 0) {
        send_error(cl, "bad nick");
        return;
    }
    if (nick_len == cl->nick_len && memcmp(nick, cl->nick, nick_len) == 0)
        return;                 /* already so: nothing changes, nobody is told */
    memcpy(cl->want, nick, nick_len);       /* checked: at most the buffer */
    cl->want[nick_len] = '\0';
    cl->want_len = nick_len;
    /* claimed (1.2), or the members now, to make the new nick unique
     * against */
    rc = GH_PLUGIN_HOST_HAS(host, member_claim)
         ? claim_rename(cl)
         : host->fetch(cl->conn, cl->room, cl->room_len, on_fetched, cl);
    if (rc == -ENOTCONN) {
        cl->closing = true;
    } else if (rc != 0) {
        host->log(ch->inst, cl->conn, GH_PLUGIN_LOG_WARN, "room %s: cannot fetch (%d)",
                  cl->room, (int)rc);
        send_error(cl, "busy");
    } else {
        cl->waiting = true;
    }
}

/* One message, after the rate limit: its type, size, JSON and meaning.
 * data is NULL when the message is binary or longer than any say can be
 * (then only len is looked at). */
static void handle(client *cl, int32_t type, const void *data, size_t len)
{
    chat *ch = cl->ch;
    json_t *msg;
    const char *t;

    if (type != GH_PLUGIN_TEXT) {
        strike(cl, "not text");
        return;
    }
    /* JSON escapes take at most 6 bytes a text byte: anything longer
     * cannot be a say within max_text, so do not parse it */
    if (len > ch->max_text * 6 + 1024 || data == NULL) {
        send_error(cl, "too long");
        return;
    }
    if ((msg = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL)) == NULL) {
        strike(cl, "bad JSON");
        return;
    }
    if (!json_is_object(msg) || (t = json_string_value(json_object_get(msg, "type"))) == NULL)
        strike(cl, "bad message");
    else if (strcmp(t, "say") == 0)
        on_say(cl, msg);
    else if (strcmp(t, "nick") == 0)
        on_nick(cl, msg);
    else
        strike(cl, "unknown type");
    json_decref(msg);
}

/* A message dropped while others wait: its error is owed after theirs. */
static void owe(client *cl, bool busy)
{
    owed *o = cl->qtail != NULL ? &cl->qtail->after : &cl->first;
    uint32_t *n = busy ? &o->busy : &o->limited;

    if (*n < UINT32_MAX)
        (*n)++;
}

/* Keeps a message for when the outstanding join or fetch is answered;
 * "busy" (owed) when the queue is full. */
static void enqueue(client *cl, int32_t type, const void *data, size_t len)
{
    bool keep = type == GH_PLUGIN_TEXT && len <= cl->ch->max_text * 6 + 1024;
    size_t stored = keep ? len : 0;
    queued *q;

    if (cl->qcount >= QUEUE_MAX_MSGS ||
        (cl->qhead != NULL && (cl->qbytes > QUEUE_MAX_BYTES ||
                               stored > QUEUE_MAX_BYTES - cl->qbytes)) ||
        stored > SIZE_MAX - sizeof(*q) || (q = malloc(sizeof(*q) + stored)) == NULL) {
        owe(cl, true);
        return;
    }
    q->next = NULL;
    q->type = type;
    q->has_data = keep;
    q->len = len;
    q->after = (owed){ 0, 0 };
    if (stored > 0)
        memcpy(q->data, data, stored);
    if (cl->qtail != NULL)
        cl->qtail->next = q;
    else
        cl->qhead = q;
    cl->qtail = q;
    cl->qcount++;
    cl->qbytes += stored;
}

static void chat_message(void *state, gh_plugin_conn *conn, int32_t type,
                         const void *data, size_t len)
{
    client *cl = host->get_data(conn);
    bool hold;

    (void)state;
    if (cl == NULL || cl->closing)
        return;
    /* while a join or fetch is outstanding, messages wait, and so do the
     * answers to those dropped: the welcome comes first, and every answer
     * comes in the order of the messages */
    hold = cl->waiting || cl->qhead != NULL;
    /* every message costs a token when it arrives, the malformed ones too */
    if (!gh_chat_bucket_take(&cl->bucket, mono_ms())) {
        if (hold)
            owe(cl, false);
        else
            send_error(cl, "rate limited");
        return;
    }
    if (hold)
        enqueue(cl, type, data, len);
    else
        handle(cl, type, data, len);
}

GH_PLUGIN_EXPORT const gh_plugin_desc gatehouse_plugin = {
    .abi_major = GH_PLUGIN_ABI_MAJOR,
    .abi_minor = GH_PLUGIN_ABI_MINOR,
    .size = sizeof(gh_plugin_desc),
    .name = "chat",
    .version = "1.1",
    .init = chat_init,
    .fini = chat_fini,
    .open = chat_open,
    .message = chat_message,
    .close = chat_close,
};
