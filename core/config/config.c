/* config.c: loads the YAML config file into the plain structs of config.h.
 *
 * Two passes. The first runs libyaml's event parser and builds a small tree
 * of our own (ynode) with a line and column on every node; it is where the
 * file-level rules live: one document, no aliases or anchors (an alias can
 * expand exponentially: "billion laughs"), no tags, no duplicate keys in any
 * mapping, bounded depth and size. We use events rather than libyaml's
 * document loader because the loader resolves aliases silently and cannot be
 * told to stop at a depth. The second pass walks the tree against
 * declarative key tables (name, setter, offset, flags) in the nginx manner,
 * filling defaults first so that every field is set when the walk is done.
 *
 * Every error is collected, not just the first, with the location of the
 * node at fault, then sorted into file order and appended to the caller's
 * gh_errlist. Nothing here touches the files a config names: TLS files,
 * plugins and static roots are checked by the modules that own them. */
#include "config.h"
#include "err.h"
#include "log.h"
#include "units.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

/* Also the bound on key tables below (no table has more keys). */
#define MAX_TABLE_KEYS 16

/* ---- the tree of the first pass ---------------------------------------- */

enum { YN_SCALAR, YN_SEQ, YN_MAP, YN_BAD };

typedef struct ynode {
    int            kind;    /* YN_BAD: an alias or unusable scalar, already reported */
    bool           plain;   /* a plain (unquoted) scalar */
    char          *text;    /* scalars: NUL-terminated, contains no NUL */
    struct ynode **items;   /* SEQ: values; MAP: key, value, key, value, ... */
    size_t         n;
    size_t         cap;
    int            line;    /* from 1 */
    int            col;     /* from 1 */
} ynode;

typedef struct pending_err {
    int    line;
    int    col;
    size_t seq;
    char  *msg;
} pending_err;

typedef struct ctx {
    gh_config   *cfg;
    const char  *file;      /* cfg->path */
    const char  *dir;       /* cfg->dir */
    pending_err *errs;
    size_t       nerrs;
    size_t       caperrs;
    bool         too_many;
    bool         nomem;
    size_t       nnodes;
} ctx;

/* ---- errors ------------------------------------------------------------ */

static void err_at_pos(ctx *c, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void err_at_pos(ctx *c, int line, int col, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (c->nerrs >= GH_CONFIG_MAX_ERRORS) {
        c->too_many = true;
        return;
    }
    if (c->nerrs == c->caperrs) {
        size_t ncap = c->caperrs ? c->caperrs * 2 : 16;
        pending_err *ne = realloc(c->errs, ncap * sizeof(*ne));

        if (ne == NULL) {
            c->nomem = true;
            return;
        }
        c->errs = ne;
        c->caperrs = ncap;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->errs[c->nerrs] = (pending_err){
        .line = line, .col = col, .seq = c->nerrs, .msg = strdup(msg),
    };
    if (c->errs[c->nerrs].msg == NULL) {
        c->nomem = true;
        return;
    }
    c->nerrs++;
}

#define err_at(c, node, ...) err_at_pos((c), (node)->line, (node)->col, __VA_ARGS__)

static int cmp_err(const void *a, const void *b)
{
    const pending_err *x = a, *y = b;

    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Moves the collected errors, in file order, into errs. */
static void flush_errors(ctx *c, gh_errlist *errs)
{
    if (c->nerrs > 1)
        qsort(c->errs, c->nerrs, sizeof(c->errs[0]), cmp_err);
    for (size_t i = 0; i < c->nerrs; i++) {
        gh_errlist_add(errs, c->file, c->errs[i].line, c->errs[i].col, "%s",
                       c->errs[i].msg);
        free(c->errs[i].msg);
    }
    if (c->too_many)
        gh_errlist_add(errs, c->file, 0, 0,
                       "too many errors; stopped after %d", GH_CONFIG_MAX_ERRORS);
    if (c->nomem)
        gh_errlist_add(errs, c->file, 0, 0, "out of memory while loading");
    free(c->errs);
    c->errs = NULL;
    c->nerrs = c->caperrs = 0;
}

/* Writes s into buf as a double-quoted, escaped string cut at about 60
 * characters, so that any text from the file prints safely in one line.
 * Returns buf. */
#define QBUF 96
static const char *quote(char buf[QBUF], const char *s)
{
    size_t o = 0, i = 0;

    buf[o++] = '"';
    for (; s[i] != '\0' && o < QBUF - 10; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch == '"' || ch == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(buf + o, QBUF - o, "\\x%02x", ch);
        } else {
            buf[o++] = (char)ch;
        }
    }
    if (s[i] != '\0') {
        /* do not end in the middle of a UTF-8 sequence */
        while (o > 1 && ((unsigned char)buf[o - 1] & 0xc0) == 0x80)
            o--;
        if (o > 1 && ((unsigned char)buf[o - 1] & 0xc0) == 0xc0)
            o--;
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* ---- pass one: events to ynodes --------------------------------------- */

static void node_free(ynode *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->n; i++)
        node_free(n->items[i]);
    free(n->items);
    free(n->text);
    free(n);
}

static ynode *node_new(ctx *c, int kind, const yaml_mark_t *m)
{
    ynode *n = calloc(1, sizeof(*n));

    if (n == NULL) {
        c->nomem = true;
        return NULL;
    }
    n->kind = kind;
    n->line = (int)(m->line < INT32_MAX ? m->line + 1 : INT32_MAX);
    n->col = (int)(m->column < INT32_MAX ? m->column + 1 : INT32_MAX);
    return n;
}

static bool node_append(ctx *c, ynode *parent, ynode *child)
{
    if (parent->n == parent->cap) {
        size_t ncap = parent->cap ? parent->cap * 2 : 4;
        ynode **ni = realloc(parent->items, ncap * sizeof(*ni));

        if (ni == NULL) {
            c->nomem = true;
            return false;
        }
        parent->items = ni;
        parent->cap = ncap;
    }
    parent->items[parent->n++] = child;
    return true;
}

static const char *kind_name(const ynode *n)
{
    switch (n->kind) {
    case YN_SEQ:
        return "a sequence";
    case YN_MAP:
        return "a mapping";
    case YN_SCALAR:
        return n->plain && n->text[0] == '\0' ? "nothing" : "a scalar";
    default:
        return "something unusable";
    }
}

/* A plain empty, ~ or null scalar: YAML's null. */
static bool is_null(const ynode *n)
{
    return n->kind == YN_SCALAR && n->plain &&
           (n->text[0] == '\0' || strcmp(n->text, "~") == 0 ||
            strcmp(n->text, "null") == 0 || strcmp(n->text, "Null") == 0 ||
            strcmp(n->text, "NULL") == 0);
}

/* Anchors and tags are refused wherever they appear. */
static void check_props(ctx *c, const yaml_mark_t *m, const yaml_char_t *anchor,
                        const yaml_char_t *tag)
{
    char qb[QBUF];
    int line = (int)m->line + 1, col = (int)m->column + 1;

    if (anchor != NULL)
        err_at_pos(c, line, col,
                   "anchor %s refused: anchors and aliases are not supported "
                   "(an alias can expand exponentially, \"billion laughs\")",
                   quote(qb, (const char *)anchor));
    if (tag != NULL)
        err_at_pos(c, line, col, "tag %s not supported: write the plain value",
                   quote(qb, (const char *)tag));
}

/* Once a mapping is complete: keys must be scalars and unique. Offending
 * pairs are reported and dropped so later checks do not report them again. */
static void check_keys(ctx *c, ynode *map)
{
    char qb[QBUF];
    size_t kept = 0;

    for (size_t i = 0; i + 1 < map->n; i += 2) {
        ynode *k = map->items[i], *v = map->items[i + 1];
        bool drop = false;

        if (k->kind == YN_BAD) {
            drop = true;
        } else if (k->kind != YN_SCALAR) {
            err_at(c, k, "a mapping key must be a string, not %s", kind_name(k));
            drop = true;
        } else {
            for (size_t j = 0; j < kept; j += 2) {
                const ynode *prev = map->items[j];

                if (strcmp(prev->text, k->text) == 0) {
                    err_at(c, k, "duplicate key %s (first at line %d)",
                           quote(qb, k->text), prev->line);
                    drop = true;
                    break;
                }
            }
        }
        if (drop) {
            node_free(k);
            node_free(v);
            continue;
        }
        map->items[kept++] = k;
        map->items[kept++] = v;
    }
    map->n = kept;
}

static int line_of_offset(const char *buf, size_t len, size_t off, int *col)
{
    int line = 1;

    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (buf[i] == '\n') {
            line++;
            *col = 1;
        } else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
            (*col)++;
        }
    }
    return line;
}

static void syntax_error(ctx *c, const yaml_parser_t *p, const char *buf, size_t len)
{
    const char *problem = p->problem != NULL ? p->problem : "unknown error";
    int line, col;

    if (p->error == YAML_MEMORY_ERROR) {
        c->nomem = true;
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        line = line_of_offset(buf, len, p->problem_offset, &col);
        err_at_pos(c, line, col, "YAML: %s", problem);
        return;
    }
    line = (int)p->problem_mark.line + 1;
    col = (int)p->problem_mark.column + 1;
    if (p->context != NULL)
        err_at_pos(c, line, col, "YAML: %s (%s at line %d column %d)", problem,
                   p->context, (int)p->context_mark.line + 1,
                   (int)p->context_mark.column + 1);
    else
        err_at_pos(c, line, col, "YAML: %s", problem);
}

/* Parses buf into *rootp (NULL for a stream with no document). Returns
 * false when the tree must not be checked further: a syntax error, a limit,
 * a second document, or no memory; all of them already reported. */
static bool build_tree(ctx *c, const char *buf, size_t len, ynode **rootp)
{
    yaml_parser_t p;
    yaml_event_t ev;
    ynode *stack[GH_CONFIG_MAX_DEPTH];
    size_t depth = 0;
    ynode *root = NULL;
    int ndocs = 0;
    bool ok = true, done = false;
    char qb[QBUF];

    if (!yaml_parser_initialize(&p)) {
        c->nomem = true;
        return false;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    while (!done) {
        ynode *n = NULL;
        const yaml_mark_t *m = &ev.start_mark;

        if (!yaml_parser_parse(&p, &ev)) {
            syntax_error(c, &p, buf, len);
            ok = false;
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++ndocs > 1) {
                err_at_pos(c, (int)m->line + 1, (int)m->column + 1,
                           "a second YAML document: the config is one document");
                ok = false;
                done = true;
            }
            break;
        case YAML_ALIAS_EVENT:
            err_at_pos(c, (int)m->line + 1, (int)m->column + 1,
                       "alias of %s refused: aliases can expand exponentially "
                       "(\"billion laughs\"); repeat the value instead",
                       quote(qb, (const char *)ev.data.alias.anchor));
            n = node_new(c, YN_BAD, m);
            break;
        case YAML_SCALAR_EVENT:
            check_props(c, m, ev.data.scalar.anchor, ev.data.scalar.tag);
            if ((n = node_new(c, YN_SCALAR, m)) == NULL)
                break;
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            if ((n->text = malloc(ev.data.scalar.length + 1)) == NULL) {
                c->nomem = true;
                break;
            }
            memcpy(n->text, ev.data.scalar.value, ev.data.scalar.length);
            n->text[ev.data.scalar.length] = '\0';
            if (memchr(n->text, '\0', ev.data.scalar.length) != NULL) {
                err_at(c, n, "a NUL character (\\0) is not allowed in a value");
                n->kind = YN_BAD;
            }
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (ev.type == YAML_SEQUENCE_START_EVENT)
                check_props(c, m, ev.data.sequence_start.anchor,
                            ev.data.sequence_start.tag);
            else
                check_props(c, m, ev.data.mapping_start.anchor,
                            ev.data.mapping_start.tag);
            if (depth == GH_CONFIG_MAX_DEPTH) {
                err_at_pos(c, (int)m->line + 1, (int)m->column + 1,
                           "nested more than %d levels deep", GH_CONFIG_MAX_DEPTH);
                ok = false;
                done = true;
                break;
            }
            n = node_new(c, ev.type == YAML_SEQUENCE_START_EVENT ? YN_SEQ : YN_MAP, m);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0) {
                depth--;
                if (stack[depth]->kind == YN_MAP)
                    check_keys(c, stack[depth]);
            }
            break;
        default:
            break;
        }
        if (n != NULL) {
            if (++c->nnodes > GH_CONFIG_MAX_NODES) {
                err_at(c, n, "more than %d values in one file", GH_CONFIG_MAX_NODES);
                node_free(n);
                ok = false;
                done = true;
            } else if (depth == 0) {
                node_free(root);    /* only one root per document */
                root = n;
            } else if (stack[depth - 1]->n >=
                       (stack[depth - 1]->kind == YN_MAP ? 2u : 1u) * GH_CONFIG_MAX_ITEMS) {
                err_at(c, n, "more than %d entries in one sequence or mapping",
                       GH_CONFIG_MAX_ITEMS);
                node_free(n);
                ok = false;
                done = true;
            } else if (!node_append(c, stack[depth - 1], n)) {
                node_free(n);
                done = true;
            }
            if (!done && (n->kind == YN_SEQ || n->kind == YN_MAP))
                stack[depth++] = n;
        }
        if (c->nomem) {
            ok = false;
            done = true;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (!ok) {
        node_free(root);
        return false;
    }
    *rootp = root;
    return true;
}

/* ---- pass two: key tables ---------------------------------------------- */

enum {
    K_REQUIRED = 1 << 0,
    K_NONZERO = 1 << 1,     /* durations and sizes: 0 is an error */
    K_EMPTY_OK = 1 << 2,    /* strings: "" is allowed */
};

typedef struct keydef keydef;
typedef void (*setter)(ctx *c, const ynode *key, const ynode *val, void *obj,
                       const keydef *d);

struct keydef {
    const char *name;
    setter      set;
    size_t      off;     /* of the field in obj */
    int         flags;
    int         arg;     /* setter-specific */
};

static void *field(void *obj, const keydef *d)
{
    return (char *)obj + d->off;
}

static gh_srcloc loc_of(const ctx *c, const ynode *n)
{
    return (gh_srcloc){ .file = c->file, .line = n->line, .col = n->col };
}

static char *dup_or_flag(ctx *c, const char *s)
{
    char *r = strdup(s);

    if (r == NULL)
        c->nomem = true;
    return r;
}

/* dir + "/" + p unless p is absolute. */
static char *resolve(ctx *c, const char *p)
{
    size_t dl, pl;
    char *r;

    if (p[0] == '/')
        return dup_or_flag(c, p);
    dl = strlen(c->dir);
    pl = strlen(p);
    if ((r = malloc(dl + 1 + pl + 1)) == NULL) {
        c->nomem = true;
        return NULL;
    }
    memcpy(r, c->dir, dl);
    if (dl == 0 || c->dir[dl - 1] != '/')
        r[dl++] = '/';
    memcpy(r + dl, p, pl + 1);
    return r;
}

static void replace(char **slot, char *s)
{
    if (s == NULL)
        return;
    free(*slot);
    *slot = s;
}

/* Edit distance for "did you mean"; both strings are short key names. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[33];

    if (la > 32 || lb > 32)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];

        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = (a[i - 1] | 0x20) == (b[j - 1] | 0x20) ? 0 : 1;
            size_t best = diag + cost;

            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static void unknown_key(ctx *c, const ynode *k, const char *where, const keydef *defs)
{
    char qb[QBUF], list[512];
    const keydef *best = NULL;
    size_t bestd = SIZE_MAX, o = 0;

    for (const keydef *d = defs; d->name != NULL; d++) {
        size_t dist = distance(k->text, d->name);

        if (dist < bestd) {
            bestd = dist;
            best = d;
        }
    }
    /* close enough to be a typo: 1 edit in 3 characters at most */
    if (best != NULL && bestd <= 2 && bestd * 3 <= strlen(k->text)) {
        err_at(c, k, "unknown key %s %s; did you mean \"%s\"?", quote(qb, k->text),
               where, best->name);
        return;
    }
    if (defs[0].name == NULL) {
        err_at(c, k, "unknown key %s %s (it takes no keys: write {})",
               quote(qb, k->text), where);
        return;
    }
    list[0] = '\0';
    for (const keydef *d = defs; d->name != NULL && o < sizeof(list); d++) {
        int w = snprintf(list + o, sizeof(list) - o, "%s%s", o ? ", " : "", d->name);

        if (w < 0)
            break;
        o += (size_t)w;
    }
    err_at(c, k, "unknown key %s %s (expected one of: %s)", quote(qb, k->text),
           where, list);
}

/* Walks mapping m with the key table defs against obj. A null value counts
 * as an empty mapping. what names m in messages ("tls"; NULL for the top
 * level), where is the phrase for unknown keys ("in tls"). Returns false
 * (reported) when m is not a mapping. */
static bool walk_map(ctx *c, const ynode *m, const char *what, const char *where,
                     const keydef *defs, void *obj)
{
    bool seen[MAX_TABLE_KEYS] = { false };

    if (m->kind == YN_BAD)
        return false;
    if (m->kind != YN_MAP && !is_null(m)) {
        if (what != NULL)
            err_at(c, m, "%s: expected a mapping, got %s", what, kind_name(m));
        else
            err_at(c, m, "expected a mapping at the top level, got %s", kind_name(m));
        return false;
    }
    for (size_t i = 0; m->kind == YN_MAP && i + 1 < m->n; i += 2) {
        const ynode *k = m->items[i], *v = m->items[i + 1];
        const keydef *d = defs;

        while (d->name != NULL && strcmp(d->name, k->text) != 0)
            d++;
        if (d->name == NULL) {
            unknown_key(c, k, where, defs);
            continue;
        }
        seen[d - defs] = true;
        d->set(c, k, v, obj, d);
    }
    for (const keydef *d = defs; d->name != NULL; d++) {
        if ((d->flags & K_REQUIRED) && !seen[d - defs]) {
            if (what != NULL)
                err_at(c, m, "%s: missing required key \"%s\"", what, d->name);
            else
                err_at(c, m, "missing required key \"%s\"", d->name);
        }
    }
    return true;
}

/* The text of a scalar value, or NULL (reported) for anything else. expect
 * names what was wanted ("a duration"). */
static const char *want_scalar(ctx *c, const ynode *v, const char *key, const char *expect)
{
    if (v->kind == YN_BAD)
        return NULL;
    if (v->kind != YN_SCALAR) {
        err_at(c, v, "%s: expected %s, got %s", key, expect, kind_name(v));
        return NULL;
    }
    if (is_null(v)) {
        err_at(c, v, "%s: missing value (expected %s)", key, expect);
        return NULL;
    }
    return v->text;
}

/* Decimal digits only. Returns 0, -1 (not a number) or -2 (too large). */
static int parse_dec(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (*s == '\0')
        return -1;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
    }
    for (const char *p = s; *p != '\0'; p++) {
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > max)
            return -2;
    }
    *out = v;
    return 0;
}

static bool port_text(ctx *c, const ynode *v, const char *key, const char *s, uint16_t *port)
{
    char qb[QBUF];
    uint64_t p = 0;
    int r = parse_dec(s, 65535, &p);

    if (r == -1) {
        err_at(c, v, "%s: expected a port number, got %s", key, quote(qb, s));
        return false;
    }
    if (r == -2 || p == 0) {
        err_at(c, v, "%s: port %.24s not in 1..65535", key, s);
        return false;
    }
    *port = (uint16_t)p;
    return true;
}

/* -- generic setters -- */

static void set_string(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    const char *s;

    if (v->kind == YN_SCALAR && !v->plain && v->text[0] == '\0' && (d->flags & K_EMPTY_OK)) {
        replace(field(obj, d), dup_or_flag(c, ""));
        return;
    }
    if ((s = want_scalar(c, v, k->text, "a string")) == NULL)
        return;
    if (s[0] == '\0' && !(d->flags & K_EMPTY_OK)) {
        err_at(c, v, "%s: must not be empty", k->text);
        return;
    }
    replace(field(obj, d), dup_or_flag(c, s));
}

static void set_path(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    const char *s = want_scalar(c, v, k->text, "a path");

    if (s == NULL)
        return;
    if (s[0] == '\0') {
        err_at(c, v, "%s: must not be empty", k->text);
        return;
    }
    replace(field(obj, d), resolve(c, s));
}

static void set_duration(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    char qb[QBUF];
    const char *s = want_scalar(c, v, k->text, "a duration such as 30s");
    uint64_t ms;

    if (s == NULL)
        return;
    if (gh_units_parse_duration(s, &ms) != GH_OK) {
        err_at(c, v, "%s: bad duration %s (use 500ms, 30s, 5m)", k->text, quote(qb, s));
        return;
    }
    if (ms > GH_CONFIG_MAX_DURATION_MS) {
        err_at(c, v, "%s: duration %s is too long (at most %dh)", k->text, quote(qb, s),
               (int)(GH_CONFIG_MAX_DURATION_MS / 3600000));
        return;
    }
    if (ms == 0 && (d->flags & K_NONZERO)) {
        err_at(c, v, "%s: must be more than 0", k->text);
        return;
    }
    if (d->arg > 0 && ms < (uint64_t)d->arg) {
        err_at(c, v, "%s: must be at least %dms", k->text, d->arg);
        return;
    }
    *(uint64_t *)field(obj, d) = ms;
}

static void set_size(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    char qb[QBUF];
    const char *s = want_scalar(c, v, k->text, "a size such as 64KiB");
    uint64_t n;

    if (s == NULL)
        return;
    if (gh_units_parse_size(s, &n) != GH_OK) {
        err_at(c, v, "%s: bad size %s (use 4096, 64KiB, 1MiB)", k->text, quote(qb, s));
        return;
    }
    if (n > GH_CONFIG_MAX_SIZE) {
        err_at(c, v, "%s: size %s is too large (at most 1TiB)", k->text, quote(qb, s));
        return;
    }
    if (n == 0 && (d->flags & K_NONZERO)) {
        err_at(c, v, "%s: must be more than 0", k->text);
        return;
    }
    *(uint64_t *)field(obj, d) = n;
}

/* A value from a fixed list; arg picks the list. */
enum { ENUM_PROXY, ENUM_SCHEME, ENUM_TLSVER };

typedef struct enum_val {
    const char *name;
    int         val;
} enum_val;

static const enum_val proxy_vals[] = {
    { .name = "off", .val = GH_PROXY_OFF },
    { .name = "false", .val = GH_PROXY_OFF },  /* YAML 1.1 readers say off is false */
    { .name = "v1", .val = GH_PROXY_V1 },
    { .name = "v2", .val = GH_PROXY_V2 },
    { .name = "any", .val = GH_PROXY_ANY },
    { .name = "optional", .val = GH_PROXY_OPTIONAL },
    { .name = NULL },
};

static const enum_val scheme_vals[] = {
    { .name = "http", .val = GH_SCHEME_HTTP },
    { .name = "https", .val = GH_SCHEME_HTTPS },
    { .name = NULL },
};

static const enum_val tlsver_vals[] = {
    { .name = "TLSv1.2", .val = 0 },
    { .name = "TLSv1.3", .val = 1 },
    { .name = NULL },
};

static void set_enum(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    static const enum_val *const lists[] = {
        [ENUM_PROXY] = proxy_vals,
        [ENUM_SCHEME] = scheme_vals,
        [ENUM_TLSVER] = tlsver_vals,
    };
    static const char *const expect[] = {
        [ENUM_PROXY] = "off, v1, v2, any or optional",
        [ENUM_SCHEME] = "http or https",
        [ENUM_TLSVER] = "TLSv1.2 or TLSv1.3",
    };
    char qb[QBUF];
    const char *s = want_scalar(c, v, k->text, "a value");

    if (s == NULL)
        return;
    for (const enum_val *e = lists[d->arg]; e->name != NULL; e++) {
        if (strcmp(s, e->name) != 0)
            continue;
        if (d->arg == ENUM_TLSVER)
            replace(field(obj, d), dup_or_flag(c, e->name));
        else if (d->arg == ENUM_PROXY)
            *(gh_proxy_mode *)field(obj, d) = (gh_proxy_mode)e->val;
        else
            *(gh_scheme *)field(obj, d) = (gh_scheme)e->val;
        return;
    }
    err_at(c, v, "%s: bad value %s (expected %s)", k->text, quote(qb, s), expect[d->arg]);
}

/* -- top level -- */

static void set_log(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    char **slot = field(obj, d);
    const char *s = want_scalar(c, v, k->text, "stderr, off or a path");

    if (s == NULL)
        return;
    if (s[0] == '\0') {
        err_at(c, v, "%s: must not be empty", k->text);
    } else if (strcmp(s, "stderr") == 0) {
        replace(slot, dup_or_flag(c, "stderr"));
    } else if (strcmp(s, "off") == 0 || strcmp(s, "false") == 0) {
        if (d->arg) {           /* arg: off is allowed */
            free(*slot);
            *slot = NULL;
        } else {
            err_at(c, v, "%s: cannot be off (use stderr or a path)", k->text);
        }
    } else {
        replace(slot, resolve(c, s));
    }
}

static void set_log_level(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    char qb[QBUF];
    const char *s = want_scalar(c, v, k->text, "a log level");
    gh_log_level lvl;

    if (s == NULL)
        return;
    if (gh_log_level_parse(s, &lvl) != GH_OK) {
        err_at(c, v, "%s: bad value %s (expected debug, info, warn or error)",
               k->text, quote(qb, s));
        return;
    }
    *(int *)field(obj, d) = (int)lvl;
}

static void set_count(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    char qb[QBUF];
    const char *s = want_scalar(c, v, k->text, "a whole number");
    uint64_t n;

    if (s == NULL)
        return;
    if (parse_dec(s, INT32_MAX, &n) != 0) {
        err_at(c, v, "%s: expected a whole number in 0..%d, got %s", k->text,
               INT32_MAX, quote(qb, s));
        return;
    }
    *(uint64_t *)field(obj, d) = n;
}

/* redis://[:PASSWORD@]HOST:PORT[/DB]. HOST is a name, an IPv4 literal or
 * [IPv6]. Returns NULL or what is wrong. */
static const char *check_redis_url(const char *s, bool *has_password)
{
    const char *p, *at, *h, *he;
    uint64_t port, db;
    char tmp[INET6_ADDRSTRLEN];
    unsigned char bin[16];

    *has_password = false;
    if (strncmp(s, "redis://", 8) != 0)
        return "the scheme must be redis://";
    p = s + 8;
    /* /DB is digits only, so the last @ ends the password even if it has / or @ */
    if ((at = strrchr(p, '@')) != NULL) {
        if (p[0] != ':' || at == p + 1)
            return "a password is written :PASSWORD@ (no user name)";
        *has_password = true;
        p = at + 1;
    }
    h = p;
    if (*h == '[') {
        if ((he = strchr(h, ']')) == NULL || (size_t)(he - h - 1) >= sizeof(tmp))
            return "bad [IPv6] host";
        memcpy(tmp, h + 1, (size_t)(he - h - 1));
        tmp[he - h - 1] = '\0';
        if (inet_pton(AF_INET6, tmp, bin) != 1)
            return "bad [IPv6] host";
        he++;
    } else {
        he = h;
        while ((*he >= 'a' && *he <= 'z') || (*he >= 'A' && *he <= 'Z') ||
               (*he >= '0' && *he <= '9') || *he == '-' || *he == '.' || *he == '_')
            he++;
        if (he == h)
            return "a host is required";
    }
    if (*he != ':')
        return "a port is required (HOST:PORT)";
    p = he + 1;
    {
        char num[8];
        size_t nl = strcspn(p, "/");

        if (nl == 0 || nl >= sizeof(num))
            return "the port must be in 1..65535";
        memcpy(num, p, nl);
        num[nl] = '\0';
        if (parse_dec(num, 65535, &port) != 0 || port == 0)
            return "the port must be in 1..65535";
        p += nl;
    }
    if (*p == '/') {
        if (parse_dec(p + 1, 15, &db) != 0)
            return "the database after / must be a number in 0..15";
    }
    return NULL;
}

static void set_redis(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    char qb[QBUF];
    const char *s = want_scalar(c, v, k->text, "a redis:// URL"), *why;
    bool pw;

    if (s == NULL)
        return;
    if ((why = check_redis_url(s, &pw)) != NULL) {
        err_at(c, v, "%s: bad URL %s: %s (expected redis://[:PASSWORD@]HOST:PORT[/DB])",
               k->text, quote(qb, s), why);
        return;
    }
    replace(field(obj, d), dup_or_flag(c, s));
}

/* -- listeners -- */

/* HOST:PORT with an IPv4 literal, [IPv6]:PORT, or :PORT (all addresses, v4
 * and v6, as [::]). Names are not resolved. */
static bool parse_listen(ctx *c, const ynode *v, const char *s, gh_listener_conf *l)
{
    char qb[QBUF], host[INET6_ADDRSTRLEN];
    const char *colon, *hs, *he;
    struct sockaddr_in *sin = (struct sockaddr_in *)&l->addr;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l->addr;
    uint16_t port;
    int family;

    if (s[0] == '[') {
        hs = s + 1;
        if ((he = strchr(hs, ']')) == NULL || he[1] != ':')
            goto bad;
        colon = he + 1;
        family = AF_INET6;
    } else {
        if ((colon = strrchr(s, ':')) == NULL)
            goto bad;
        hs = s;
        he = colon;
        if (memchr(hs, ':', (size_t)(he - hs)) != NULL) {
            err_at(c, v, "listen: an IPv6 address needs brackets, e.g. [::1]:8080; got %s",
                   quote(qb, s));
            return false;
        }
        family = he == hs ? AF_INET6 : AF_INET;
    }
    if ((size_t)(he - hs) >= sizeof(host))
        goto bad;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    if (s[0] == '[' && host[0] == '\0')
        goto bad;
    {
        uint64_t p;
        int r = parse_dec(colon + 1, 65535, &p);

        if (r == -1)
            goto bad;
        if (r == -2 || p == 0) {
            err_at(c, v, "listen: port %.24s not in 1..65535", colon + 1);
            return false;
        }
        port = (uint16_t)p;
    }
    memset(&l->addr, 0, sizeof(l->addr));
    if (family == AF_INET) {
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            goto bad;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        l->addrlen = sizeof(*sin);
    } else {
        if (host[0] == '\0')
            sin6->sin6_addr = in6addr_any;
        else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            goto bad;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        l->addrlen = sizeof(*sin6);
    }
    return true;
bad:
    err_at(c, v, "listen: expected IP:PORT, [IPv6]:PORT or :PORT, got %s "
           "(names are not resolved: write 127.0.0.1:8080)", quote(qb, s));
    return false;
}

static void set_listen(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    gh_listener_conf *l = obj;
    const char *s = want_scalar(c, v, k->text, "IP:PORT");

    (void)d;
    if (s == NULL || !parse_listen(c, v, s, l))
        return;
    replace(&l->listen, dup_or_flag(c, s));
    if (l->listen == NULL)
        l->addrlen = 0;     /* out of memory: keep the duplicate check away */
}

static void set_trusted(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    gh_listener_conf *l = obj;
    char qb[QBUF];

    (void)d;
    if (v->kind == YN_BAD)
        return;
    if (v->kind == YN_SCALAR && !is_null(v) && strcmp(v->text, "any") == 0) {
        free(l->trusted);
        l->trusted = NULL;
        l->ntrusted = 0;
        l->trusted_any = true;
        return;
    }
    if (v->kind != YN_SEQ) {
        err_at(c, v, "%s: expected a sequence of CIDR ranges, e.g. [10.0.0.0/8], or any; "
               "got %s", k->text, kind_name(v));
        return;
    }
    if (v->n > GH_CONFIG_MAX_LIST) {
        err_at(c, v, "%s: more than %d entries", k->text, GH_CONFIG_MAX_LIST);
        return;
    }
    free(l->trusted);
    l->trusted = NULL;
    l->ntrusted = 0;
    l->trusted_any = false;
    if (v->n == 0)
        return;
    if ((l->trusted = calloc(v->n, sizeof(*l->trusted))) == NULL) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const ynode *it = v->items[i];
        const char *s = want_scalar(c, it, k->text, "a CIDR range");

        if (s == NULL)
            continue;
        if (gh_cidr_parse(s, &l->trusted[l->ntrusted]) != GH_OK) {
            err_at(c, it, "%s: bad CIDR range %s (expected ADDR or ADDR/PREFIX with "
                   "no host bits set, e.g. 10.0.0.0/8)", k->text, quote(qb, s));
            continue;
        }
        l->ntrusted++;
    }
}

static void set_https_ports(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    gh_listener_conf *l = obj;

    (void)d;
    if (v->kind == YN_BAD)
        return;
    if (v->kind != YN_SEQ) {
        err_at(c, v, "%s: expected a sequence of ports, e.g. [443]; got %s", k->text,
               kind_name(v));
        return;
    }
    if (v->n > GH_CONFIG_MAX_LIST) {
        err_at(c, v, "%s: more than %d entries", k->text, GH_CONFIG_MAX_LIST);
        return;
    }
    free(l->https_ports);
    l->https_ports = NULL;
    l->nhttps_ports = 0;
    if (v->n == 0)
        return;
    if ((l->https_ports = calloc(v->n, sizeof(*l->https_ports))) == NULL) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const char *s = want_scalar(c, v->items[i], k->text, "a port number");

        if (s != NULL && port_text(c, v->items[i], k->text, s, &l->https_ports[l->nhttps_ports]))
            l->nhttps_ports++;
    }
}

static const keydef tls_keys[] = {
    { .name = "cert", .set = set_path, .off = offsetof(gh_listener_conf, tls_cert),
      .flags = K_REQUIRED },
    { .name = "key", .set = set_path, .off = offsetof(gh_listener_conf, tls_key),
      .flags = K_REQUIRED },
    { .name = "min_version", .set = set_enum,
      .off = offsetof(gh_listener_conf, tls_min_version), .arg = ENUM_TLSVER },
    { .name = "ciphers", .set = set_string, .off = offsetof(gh_listener_conf, tls_ciphers) },
    { .name = "handshake_timeout", .set = set_duration,
      .off = offsetof(gh_listener_conf, tls_handshake_timeout_ms), .flags = K_NONZERO },
    { .name = NULL },
};

static void set_tls(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    gh_listener_conf *l = obj;

    (void)k;
    (void)d;
    l->tls = true;
    l->tls_loc = loc_of(c, v);
    walk_map(c, v, "tls", "in tls", tls_keys, l);
}

static const keydef listener_keys[] = {
    { .name = "listen", .set = set_listen, .flags = K_REQUIRED },
    { .name = "proxy_protocol", .set = set_enum,
      .off = offsetof(gh_listener_conf, proxy_protocol), .arg = ENUM_PROXY },
    { .name = "proxy_timeout", .set = set_duration,
      .off = offsetof(gh_listener_conf, proxy_timeout_ms), .flags = K_NONZERO },
    { .name = "trusted_proxies", .set = set_trusted },
    { .name = "https_ports", .set = set_https_ports },
    { .name = "tls", .set = set_tls },
    { .name = NULL },
};

static void listener_defaults(ctx *c, gh_listener_conf *l)
{
    size_t n = gh_cidr_defaults(NULL, 0);

    l->proxy_protocol = GH_PROXY_OFF;
    l->proxy_timeout_ms = 5000;
    l->tls_handshake_timeout_ms = 10000;
    l->tls_min_version = dup_or_flag(c, "TLSv1.2");
    if ((l->trusted = calloc(n, sizeof(*l->trusted))) != NULL)
        l->ntrusted = gh_cidr_defaults(l->trusted, n);
    if ((l->https_ports = calloc(1, sizeof(*l->https_ports))) != NULL) {
        l->https_ports[0] = 443;
        l->nhttps_ports = 1;
    }
    if (l->trusted == NULL || l->https_ports == NULL)
        c->nomem = true;
}

static bool same_addr(const gh_listener_conf *a, const gh_listener_conf *b)
{
    return a->addrlen != 0 && a->addrlen == b->addrlen &&
           memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

static void set_listeners(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    gh_config *cfg = obj;

    (void)d;
    if (v->kind == YN_BAD)
        return;
    if (v->kind != YN_SEQ) {
        err_at(c, v, "%s: expected a sequence, got %s", k->text, kind_name(v));
        return;
    }
    if (v->n == 0) {
        err_at(c, v, "%s: at least one listener is required", k->text);
        return;
    }
    if (v->n > GH_CONFIG_MAX_LISTENERS) {
        err_at(c, v, "%s: more than %d listeners", k->text, GH_CONFIG_MAX_LISTENERS);
        return;
    }
    if ((cfg->listeners = calloc(v->n, sizeof(*cfg->listeners))) == NULL) {
        c->nomem = true;
        return;
    }
    cfg->nlisteners = v->n;
    for (size_t i = 0; i < v->n; i++) {
        gh_listener_conf *l = &cfg->listeners[i];

        l->loc = loc_of(c, v->items[i]);
        listener_defaults(c, l);
        if (v->items[i]->kind == YN_SCALAR && !is_null(v->items[i])) {
            err_at(c, v->items[i], "listener: expected a mapping, got a scalar "
                   "(write - listen: %s)", strchr(v->items[i]->text, ':') != NULL ?
                   "HOST:PORT" : ":PORT");
            continue;
        }
        if (!walk_map(c, v->items[i], "listener", "in listener", listener_keys, l))
            continue;
        for (size_t j = 0; j < i; j++) {
            if (same_addr(&cfg->listeners[j], l)) {
                err_at(c, v->items[i], "listen: %s is also the address of the listener "
                       "at line %d", l->listen, cfg->listeners[j].loc.line);
                break;
            }
        }
    }
}

/* -- routes -- */

static bool host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_';
}

/* A DNS name or IPv4 literal, or [IPv6]. Returns the byte after it. */
static const char *skip_host(const char *s)
{
    if (*s == '[') {
        char tmp[INET6_ADDRSTRLEN];
        const char *e = strchr(s, ']');
        unsigned char bin[16];

        if (e == NULL || (size_t)(e - s - 1) >= sizeof(tmp))
            return s;
        memcpy(tmp, s + 1, (size_t)(e - s - 1));
        tmp[e - s - 1] = '\0';
        return inet_pton(AF_INET6, tmp, bin) == 1 ? e + 1 : s;
    }
    while (host_char(*s))
        s++;
    return s;
}

static void set_url_path(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    char qb[QBUF];
    const char *s = want_scalar(c, v, k->text, "a path starting with /");

    if (s == NULL)
        return;
    if (s[0] != '/') {
        err_at(c, v, "%s: must start with /, got %s", k->text, quote(qb, s));
        return;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '?' || *p == '#') {
            err_at(c, v, "%s: no spaces, control characters, ? or # allowed in %s",
                   k->text, quote(qb, s));
            return;
        }
    }
    replace(field(obj, d), dup_or_flag(c, s));
}

static void set_host(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    char qb[QBUF];
    const char *s = want_scalar(c, v, k->text, "a host name"), *e;

    if (s == NULL)
        return;
    e = skip_host(s);
    if (e == s || *e != '\0') {
        err_at(c, v, "%s: expected a host name without port or scheme, got %s",
               k->text, quote(qb, s));
        return;
    }
    replace(field(obj, d), dup_or_flag(c, s));
}

static const keydef match_keys[] = {
    { .name = "path", .set = set_url_path, .off = offsetof(gh_match, path) },
    { .name = "prefix", .set = set_url_path, .off = offsetof(gh_match, prefix) },
    { .name = "host", .set = set_host, .off = offsetof(gh_match, host) },
    { .name = "scheme", .set = set_enum, .off = offsetof(gh_match, scheme),
      .arg = ENUM_SCHEME },
    { .name = NULL },
};

static void set_match(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    gh_route_conf *r = obj;

    (void)k;
    (void)d;
    if (walk_map(c, v, "match", "in match", match_keys, &r->match) &&
        r->match.path != NULL && r->match.prefix != NULL)
        err_at(c, v, "match: give path (exact) or prefix, not both");
}

static void set_index(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    char qb[QBUF];
    const char *s = want_scalar(c, v, k->text, "a file name");

    if (s == NULL)
        return;
    if (s[0] == '\0' || strchr(s, '/') != NULL || strcmp(s, ".") == 0 ||
        strcmp(s, "..") == 0) {
        err_at(c, v, "%s: expected a file name without /, got %s", k->text, quote(qb, s));
        return;
    }
    replace(field(obj, d), dup_or_flag(c, s));
}

static void set_status(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    char qb[QBUF];
    const char *s = want_scalar(c, v, k->text, "301, 302, 307 or 308");
    uint64_t n = 0;

    if (s == NULL)
        return;
    if (parse_dec(s, 999, &n) != 0 || (n != 301 && n != 302 && n != 307 && n != 308)) {
        err_at(c, v, "%s: bad value %s (expected 301, 302, 307 or 308)", k->text,
               quote(qb, s));
        return;
    }
    *(int *)field(obj, d) = (int)n;
}

static void set_port_int(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    const char *s = want_scalar(c, v, k->text, "a port number");
    uint16_t port;

    if (s != NULL && port_text(c, v, k->text, s, &port))
        *(int *)field(obj, d) = port;
}

static void set_plugin(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    gh_websocket_conf *ws = obj;
    char qb[QBUF];
    const char *s = want_scalar(c, v, k->text, "a plugin name");
    size_t len;

    (void)d;
    if (s == NULL)
        return;
    len = strlen(s);
    if (len == 0 || len > 64 || s[0] == '.' || s[0] == '-' ||
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != len) {
        err_at(c, v, "%s: bad plugin name %s (letters, digits, _ . -; the file is "
               "NAME.so in plugins_dir)", k->text, quote(qb, s));
        return;
    }
    replace(&ws->plugin, dup_or_flag(c, s));
    ws->plugin_loc = loc_of(c, v);
}

/* scheme://host[:port], scheme http or https, nothing after. */
static bool origin_ok(const char *s)
{
    const char *h, *e;

    if (strncasecmp(s, "https://", 8) == 0)
        h = s + 8;
    else if (strncasecmp(s, "http://", 7) == 0)
        h = s + 7;
    else
        return false;
    if ((e = skip_host(h)) == h)
        return false;
    if (*e == ':') {
        uint64_t port;

        return parse_dec(e + 1, 65535, &port) == 0 && port != 0;
    }
    return *e == '\0';
}

static void set_origins(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    gh_websocket_conf *ws = obj;
    char qb[QBUF];

    (void)d;
    if (v->kind == YN_BAD)
        return;
    if (v->kind == YN_SCALAR && !is_null(v)) {
        if (strcmp(v->text, "same-host") == 0) {
            ws->origins = GH_ORIGINS_SAME_HOST;
        } else if (strcmp(v->text, "*") == 0) {
            ws->origins = GH_ORIGINS_ANY;
        } else {
            err_at(c, v, "%s: bad value %s (expected same-host, \"*\" or a list of "
                   "origins such as [\"https://a.example\"])", k->text, quote(qb, v->text));
        }
        return;
    }
    if (v->kind != YN_SEQ) {
        err_at(c, v, "%s: expected same-host, \"*\" or a sequence of origins, got %s",
               k->text, kind_name(v));
        return;
    }
    if (v->n > GH_CONFIG_MAX_LIST) {
        err_at(c, v, "%s: more than %d entries", k->text, GH_CONFIG_MAX_LIST);
        return;
    }
    ws->origins = GH_ORIGINS_LIST;
    if (v->n == 0)
        return;
    if ((ws->origin_list = calloc(v->n, sizeof(*ws->origin_list))) == NULL) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const ynode *it = v->items[i];
        const char *s = want_scalar(c, it, k->text, "an origin");
        char *o;

        if (s == NULL)
            continue;
        if (!origin_ok(s)) {
            err_at(c, it, "%s: bad origin %s (expected scheme://host[:port], e.g. "
                   "https://a.example, no path)", k->text, quote(qb, s));
            continue;
        }
        if ((o = dup_or_flag(c, s)) == NULL)
            return;
        /* browsers send the serialized origin: lower case */
        for (char *p = o; *p != '\0'; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        ws->origin_list[ws->norigins++] = o;
    }
}

static void cnode_deinit(gh_cnode *n)
{
    for (size_t i = 0; i < n->nitems; i++)
        cnode_deinit(&n->items[i]);
    free(n->items);
    free(n->key);
    free(n->value);
}

/* Copies a ynode tree (depth bounded by the first pass) into out. */
static void to_cnode(ctx *c, const ynode *y, gh_cnode *out)
{
    size_t n;

    out->loc = loc_of(c, y);
    switch (y->kind) {
    case YN_SEQ:
    case YN_MAP:
        out->kind = y->kind == YN_SEQ ? GH_CNODE_SEQ : GH_CNODE_MAP;
        n = y->kind == YN_SEQ ? y->n : y->n / 2;
        if (n == 0)
            return;
        if ((out->items = calloc(n, sizeof(*out->items))) == NULL) {
            c->nomem = true;
            return;
        }
        out->nitems = n;
        for (size_t i = 0; i < n; i++) {
            if (y->kind == YN_SEQ) {
                to_cnode(c, y->items[i], &out->items[i]);
            } else {
                to_cnode(c, y->items[2 * i + 1], &out->items[i]);
                out->items[i].key = dup_or_flag(c, y->items[2 * i]->text);
            }
        }
        return;
    case YN_SCALAR:
        out->kind = GH_CNODE_SCALAR;
        out->value = dup_or_flag(c, y->text);
        return;
    default:
        out->kind = GH_CNODE_SCALAR;    /* an alias: reported, the load fails */
        return;
    }
}

static void set_cnode(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    gh_cnode **slot = field(obj, d);

    if (v->kind == YN_BAD || is_null(v))
        return;
    if (v->kind != YN_MAP) {
        err_at(c, v, "%s: expected a mapping, got %s", k->text, kind_name(v));
        return;
    }
    if ((*slot = calloc(1, sizeof(**slot))) == NULL) {
        c->nomem = true;
        return;
    }
    to_cnode(c, v, *slot);
}

static const keydef no_keys[] = { { .name = NULL } };

static const keydef static_keys[] = {
    { .name = "root", .set = set_path, .off = offsetof(gh_static_conf, root),
      .flags = K_REQUIRED },
    { .name = "index", .set = set_index, .off = offsetof(gh_static_conf, index) },
    { .name = NULL },
};

static const keydef redirect_keys[] = {
    { .name = "status", .set = set_status, .off = offsetof(gh_redirect_conf, status) },
    { .name = "port", .set = set_port_int, .off = offsetof(gh_redirect_conf, port) },
    { .name = NULL },
};

#define WS_FIELD(f) offsetof(gh_websocket_conf, f)
static const keydef websocket_keys[] = {
    { .name = "plugin", .set = set_plugin, .flags = K_REQUIRED },
    { .name = "origins", .set = set_origins },
    { .name = "ping_interval", .set = set_duration, .off = WS_FIELD(ping_interval_ms) },
    { .name = "pong_timeout", .set = set_duration, .off = WS_FIELD(pong_timeout_ms),
      .flags = K_NONZERO },
    { .name = "idle_timeout", .set = set_duration, .off = WS_FIELD(idle_timeout_ms) },
    { .name = "close_timeout", .set = set_duration, .off = WS_FIELD(close_timeout_ms),
      .flags = K_NONZERO },
    { .name = "max_message", .set = set_size, .off = WS_FIELD(max_message),
      .flags = K_NONZERO },
    { .name = "send_backlog", .set = set_size, .off = WS_FIELD(send_backlog),
      .flags = K_NONZERO },
    { .name = "config", .set = set_cnode, .off = WS_FIELD(config) },
    { .name = NULL },
};
#undef WS_FIELD

static const char *action_name(gh_action_kind a)
{
    switch (a) {
    case GH_ACTION_STATIC:
        return "static";
    case GH_ACTION_HEALTH:
        return "health";
    case GH_ACTION_REDIRECT_HTTPS:
        return "redirect_https";
    case GH_ACTION_METRICS:
        return "metrics";
    case GH_ACTION_WEBSOCKET:
        return "websocket";
    }
    return "?";
}

static void set_action(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    gh_route_conf *r = obj;
    gh_action_kind kind = (gh_action_kind)d->arg;

    if (r->action != 0) {
        err_at(c, k, "route: a second action %s after %s; a route has exactly one",
               d->name, action_name(r->action));
        return;
    }
    r->action = kind;   /* first, so that gh_config_free knows the union */
    switch (kind) {
    case GH_ACTION_STATIC:
        r->u.stat.index = dup_or_flag(c, "index.html");
        walk_map(c, v, "static", "in static", static_keys, &r->u.stat);
        break;
    case GH_ACTION_REDIRECT_HTTPS:
        r->u.redirect.status = 301;
        r->u.redirect.port = 0;
        walk_map(c, v, "redirect_https", "in redirect_https", redirect_keys,
                 &r->u.redirect);
        break;
    case GH_ACTION_WEBSOCKET:
        r->u.ws.origins = GH_ORIGINS_SAME_HOST;
        r->u.ws.ping_interval_ms = 30000;
        r->u.ws.pong_timeout_ms = 10000;
        r->u.ws.idle_timeout_ms = 120000;
        r->u.ws.close_timeout_ms = 5000;
        r->u.ws.max_message = 64 * 1024;
        r->u.ws.send_backlog = 1024 * 1024;
        walk_map(c, v, "websocket", "in websocket", websocket_keys, &r->u.ws);
        break;
    case GH_ACTION_HEALTH:
        walk_map(c, v, "health", "in health", no_keys, NULL);
        break;
    case GH_ACTION_METRICS:
        walk_map(c, v, "metrics", "in metrics", no_keys, NULL);
        break;
    }
}

static const keydef route_keys[] = {
    { .name = "match", .set = set_match, .flags = K_REQUIRED },
    { .name = "static", .set = set_action, .arg = GH_ACTION_STATIC },
    { .name = "health", .set = set_action, .arg = GH_ACTION_HEALTH },
    { .name = "redirect_https", .set = set_action, .arg = GH_ACTION_REDIRECT_HTTPS },
    { .name = "metrics", .set = set_action, .arg = GH_ACTION_METRICS },
    { .name = "websocket", .set = set_action, .arg = GH_ACTION_WEBSOCKET },
    { .name = NULL },
};

static void set_routes(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    gh_config *cfg = obj;

    (void)d;
    if (v->kind == YN_BAD || is_null(v))
        return;
    if (v->kind != YN_SEQ) {
        err_at(c, v, "%s: expected a sequence, got %s", k->text, kind_name(v));
        return;
    }
    if (v->n > GH_CONFIG_MAX_ROUTES) {
        err_at(c, v, "%s: more than %d routes", k->text, GH_CONFIG_MAX_ROUTES);
        return;
    }
    if (v->n == 0)
        return;
    if ((cfg->routes = calloc(v->n, sizeof(*cfg->routes))) == NULL) {
        c->nomem = true;
        return;
    }
    cfg->nroutes = v->n;
    for (size_t i = 0; i < v->n; i++) {
        gh_route_conf *r = &cfg->routes[i];

        r->loc = loc_of(c, v->items[i]);
        if (walk_map(c, v->items[i], "route", "in route", route_keys, r) && r->action == 0)
            err_at(c, v->items[i], "route: no action (give one of static, health, "
                   "redirect_https, metrics, websocket)");
    }
}

/* -- http, bus, top level -- */

#define HTTP_FIELD(f) offsetof(gh_http_conf, f)
static const keydef http_keys[] = {
    { .name = "header_timeout", .set = set_duration, .off = HTTP_FIELD(header_timeout_ms),
      .flags = K_NONZERO },
    { .name = "keepalive_timeout", .set = set_duration,
      .off = HTTP_FIELD(keepalive_timeout_ms), .flags = K_NONZERO },
    { .name = "send_timeout", .set = set_duration, .off = HTTP_FIELD(send_timeout_ms),
      .flags = K_NONZERO },
    { .name = "max_head", .set = set_size, .off = HTTP_FIELD(max_head), .flags = K_NONZERO },
    { .name = "max_body", .set = set_size, .off = HTTP_FIELD(max_body) },
    { .name = NULL },
};
#undef HTTP_FIELD

static void set_http(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    (void)k;
    (void)d;
    walk_map(c, v, "http", "in http", http_keys, &((gh_config *)obj)->http);
}

static const keydef bus_keys[] = {
    { .name = "redis", .set = set_redis, .off = offsetof(gh_bus_conf, redis),
      .flags = K_REQUIRED },
    { .name = "channel_prefix", .set = set_string,
      .off = offsetof(gh_bus_conf, channel_prefix), .flags = K_EMPTY_OK },
    { .name = "password", .set = set_string, .off = offsetof(gh_bus_conf, password) },
    { .name = "presence_ttl", .set = set_duration,
      .off = offsetof(gh_bus_conf, presence_ttl_ms), .flags = K_NONZERO, .arg = 1000 },
    { .name = NULL },
};

static void set_bus(ctx *c, const ynode *k, const ynode *v, void *obj, const keydef *d)
{
    gh_bus_conf *bus = &((gh_config *)obj)->bus;
    bool pw;

    (void)k;
    (void)d;
    if (!walk_map(c, v, "bus", "in bus", bus_keys, bus))
        return;
    if (bus->redis != NULL && bus->password != NULL &&
        check_redis_url(bus->redis, &pw) == NULL && pw)
        err_at(c, v, "bus: password given twice, in the redis URL and as password:");
}

#define CFG_FIELD(f) offsetof(gh_config, f)
static const keydef top_keys[] = {
    { .name = "plugins_dir", .set = set_path, .off = CFG_FIELD(plugins_dir) },
    { .name = "access_log", .set = set_log, .off = CFG_FIELD(access_log), .arg = 1 },
    { .name = "error_log", .set = set_log, .off = CFG_FIELD(error_log), .arg = 0 },
    { .name = "log_level", .set = set_log_level, .off = CFG_FIELD(log_level) },
    { .name = "max_connections", .set = set_count, .off = CFG_FIELD(max_connections) },
    { .name = "drain_delay", .set = set_duration, .off = CFG_FIELD(drain_delay_ms) },
    { .name = "drain_timeout", .set = set_duration, .off = CFG_FIELD(drain_timeout_ms) },
    { .name = "http", .set = set_http },
    { .name = "bus", .set = set_bus },
    { .name = "listeners", .set = set_listeners, .flags = K_REQUIRED },
    { .name = "routes", .set = set_routes },
    { .name = NULL },
};
#undef CFG_FIELD

static void config_defaults(ctx *c, gh_config *cfg)
{
    cfg->plugins_dir = resolve(c, "plugins");
    cfg->access_log = dup_or_flag(c, "stderr");
    cfg->error_log = dup_or_flag(c, "stderr");
    cfg->log_level = GH_LOG_INFO;
    cfg->max_connections = 0;
    cfg->drain_delay_ms = 0;
    cfg->drain_timeout_ms = 30000;
    cfg->http.header_timeout_ms = 10000;
    cfg->http.keepalive_timeout_ms = 75000;
    cfg->http.send_timeout_ms = 60000;
    cfg->http.max_head = 16 * 1024;
    cfg->http.max_body = 1024 * 1024;
    cfg->bus.channel_prefix = dup_or_flag(c, "gatehouse:");
    cfg->bus.presence_ttl_ms = 10000;
}

/* ---- public ------------------------------------------------------------ */

int gh_config_load_mem(const char *name, const char *buf, size_t len, const char *dir,
                       gh_config **out, gh_errlist *errs)
{
    ctx c = { 0 };
    gh_config *cfg = NULL;
    ynode *root = NULL;
    int rc = GH_ENOMEM;

    if (name == NULL)
        name = "<config>";
    if (len > GH_CONFIG_MAX_BYTES) {
        gh_errlist_add(errs, name, 0, 0, "too large: more than %d bytes",
                       GH_CONFIG_MAX_BYTES);
        return GH_EINVAL;
    }
    if ((cfg = calloc(1, sizeof(*cfg))) == NULL ||
        (cfg->path = strdup(name)) == NULL ||
        (cfg->dir = strdup(dir != NULL && dir[0] != '\0' ? dir : ".")) == NULL) {
        gh_errlist_add(errs, name, 0, 0, "out of memory while loading");
        goto cleanup;
    }
    c.cfg = cfg;
    c.file = cfg->path;
    c.dir = cfg->dir;
    config_defaults(&c, cfg);
    if (!c.nomem && build_tree(&c, buf != NULL ? buf : "", len, &root)) {
        if (root == NULL || is_null(root))
            err_at_pos(&c, root != NULL ? root->line : 1, root != NULL ? root->col : 1,
                       "the config is empty (it needs at least listeners:)");
        else
            walk_map(&c, root, NULL, "at the top level", top_keys, cfg);
    }
    rc = c.nomem ? GH_ENOMEM : c.nerrs > 0 || c.too_many ? GH_EINVAL : GH_OK;
    flush_errors(&c, errs);
    if (rc == GH_OK) {
        *out = cfg;
        cfg = NULL;
    }
cleanup:
    node_free(root);
    gh_config_free(cfg);
    return rc;
}

/* The folder of path as written: "conf/gw.yaml" -> "conf", "gw.yaml" -> ".",
 * "/gw.yaml" -> "/". */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n;
    char *d;

    if (slash == NULL)
        return strdup(".");
    n = (size_t)(slash - path);
    while (n > 0 && path[n - 1] == '/')
        n--;
    if (n == 0)
        return strdup("/");
    if ((d = malloc(n + 1)) == NULL)
        return NULL;
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

int gh_config_load(const char *path, gh_config **out, gh_errlist *errs)
{
    char *buf = NULL, *dir = NULL;
    size_t len = 0, cap = 0;
    int fd = -1, rc;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = -errno;
        gh_errlist_add(errs, path, 0, 0, "cannot open: %s", strerror(-rc));
        goto cleanup;
    }
    for (;;) {
        ssize_t r;

        if (len == cap) {
            /* one byte past the limit tells "too large" from "exactly at it" */
            size_t ncap = cap ? cap * 2 : 16384;
            char *nb;

            if (ncap > (size_t)GH_CONFIG_MAX_BYTES + 1)
                ncap = (size_t)GH_CONFIG_MAX_BYTES + 1;
            if (ncap == cap)
                break;
            if ((nb = realloc(buf, ncap)) == NULL) {
                rc = GH_ENOMEM;
                gh_errlist_add(errs, path, 0, 0, "out of memory while reading");
                goto cleanup;
            }
            buf = nb;
            cap = ncap;
        }
        r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            gh_errlist_add(errs, path, 0, 0, "cannot read: %s", strerror(-rc));
            goto cleanup;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if ((dir = dir_of(path)) == NULL) {
        rc = GH_ENOMEM;
        gh_errlist_add(errs, path, 0, 0, "out of memory while reading");
        goto cleanup;
    }
    rc = gh_config_load_mem(path, buf, len, dir, out, errs);
cleanup:
    if (fd >= 0)
        close(fd);
    free(buf);
    free(dir);
    return rc;
}

void gh_config_free(gh_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        gh_listener_conf *l = &cfg->listeners[i];

        free(l->listen);
        free(l->trusted);
        free(l->https_ports);
        free(l->tls_cert);
        free(l->tls_key);
        free(l->tls_min_version);
        free(l->tls_ciphers);
    }
    free(cfg->listeners);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        gh_route_conf *r = &cfg->routes[i];

        free(r->match.path);
        free(r->match.prefix);
        free(r->match.host);
        switch (r->action) {
        case GH_ACTION_STATIC:
            free(r->u.stat.root);
            free(r->u.stat.index);
            break;
        case GH_ACTION_WEBSOCKET:
            free(r->u.ws.plugin);
            for (size_t j = 0; j < r->u.ws.norigins; j++)
                free(r->u.ws.origin_list[j]);
            free(r->u.ws.origin_list);
            if (r->u.ws.config != NULL) {
                cnode_deinit(r->u.ws.config);
                free(r->u.ws.config);
            }
            break;
        default:
            break;
        }
    }
    free(cfg->routes);
    free(cfg->bus.redis);
    free(cfg->bus.channel_prefix);
    free(cfg->bus.password);
    free(cfg->plugins_dir);
    free(cfg->access_log);
    free(cfg->error_log);
    free(cfg->path);
    free(cfg->dir);
    free(cfg);
}

const gh_cnode *gh_cnode_get(const gh_cnode *map, const char *key)
{
    if (map == NULL || key == NULL || map->kind != GH_CNODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->nitems; i++)
        if (map->items[i].key != NULL && strcmp(map->items[i].key, key) == 0)
            return &map->items[i];
    return NULL;
}
