/* config.c: loads the YAML config file into the plain structs of config.h.
 *
 * Two passes. The first runs libyaml's event parser and builds a small tree
 * of our own (gh_cfgnode) with a line and column on every node; it is where the
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
#include "cfgkit.h"
#include "err.h"
#include "log.h"
#include "units.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

/* Also the bound on key tables below (no table has more keys). */
#define MAX_TABLE_KEYS 32

/* ---- the tree of the first pass ---------------------------------------- */

struct gh_cfg_pending_err {
    int    line;
    int    col;
    size_t seq;
    char  *msg;
};
typedef gh_cfg_pending_err pending_err;


/* ---- errors ------------------------------------------------------------ */

void gh_cfg_err_at_pos(gh_cfgctx *c, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void gh_cfg_err_at_pos(gh_cfgctx *c, int line, int col, const char *fmt, ...)
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
static void flush_errors(gh_cfgctx *c, gh_errlist *errs)
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
const char *gh_cfg_quote(char buf[GH_CFG_QBUF], const char *s)
{
    size_t o = 0, i = 0;

    buf[o++] = '"';
    for (; s[i] != '\0' && o < GH_CFG_QBUF - 10; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch == '"' || ch == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(buf + o, GH_CFG_QBUF - o, "\\x%02x", ch);
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

static void node_free(gh_cfgnode *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->n; i++)
        node_free(n->items[i]);
    free(n->items);
    free(n->text);
    free(n);
}

static gh_cfgnode *node_new(gh_cfgctx *c, int kind, const yaml_mark_t *m)
{
    gh_cfgnode *n = calloc(1, sizeof(*n));

    if (n == NULL) {
        c->nomem = true;
        return NULL;
    }
    n->kind = kind;
    n->line = (int)(m->line < INT32_MAX ? m->line + 1 : INT32_MAX);
    n->col = (int)(m->column < INT32_MAX ? m->column + 1 : INT32_MAX);
    return n;
}

static bool node_append(gh_cfgctx *c, gh_cfgnode *parent, gh_cfgnode *child)
{
    if (parent->n == parent->cap) {
        size_t ncap = parent->cap ? parent->cap * 2 : 4;
        gh_cfgnode **ni = realloc(parent->items, ncap * sizeof(*ni));

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

const char *gh_cfg_kind_name(const gh_cfgnode *n)
{
    switch (n->kind) {
    case GH_YN_SEQ:
        return "a sequence";
    case GH_YN_MAP:
        return "a mapping";
    case GH_YN_SCALAR:
        return n->plain && n->text[0] == '\0' ? "nothing" : "a scalar";
    default:
        return "something unusable";
    }
}

/* A plain empty, ~ or null scalar: YAML's null. */
bool gh_cfg_is_null(const gh_cfgnode *n)
{
    return n->kind == GH_YN_SCALAR && n->plain &&
           (n->text[0] == '\0' || strcmp(n->text, "~") == 0 ||
            strcmp(n->text, "null") == 0 || strcmp(n->text, "Null") == 0 ||
            strcmp(n->text, "NULL") == 0);
}

/* Anchors and tags are refused wherever they appear. */
static void check_props(gh_cfgctx *c, const yaml_mark_t *m, const yaml_char_t *anchor,
                        const yaml_char_t *tag)
{
    char qb[GH_CFG_QBUF];
    int line = (int)m->line + 1, col = (int)m->column + 1;

    if (anchor != NULL)
        gh_cfg_err_at_pos(c, line, col,
                   "anchor %s refused: anchors and aliases are not supported "
                   "(an alias can expand exponentially, \"billion laughs\")",
                   gh_cfg_quote(qb, (const char *)anchor));
    if (tag != NULL)
        gh_cfg_err_at_pos(c, line, col, "tag %s not supported: write the plain value",
                   gh_cfg_quote(qb, (const char *)tag));
}

/* Once a mapping is complete: keys must be scalars and unique. Offending
 * pairs are reported and dropped so later checks do not report them again. */
static void check_keys(gh_cfgctx *c, gh_cfgnode *map)
{
    char qb[GH_CFG_QBUF];
    size_t kept = 0;

    for (size_t i = 0; i + 1 < map->n; i += 2) {
        gh_cfgnode *k = map->items[i], *v = map->items[i + 1];
        bool drop = false;

        if (k->kind == GH_YN_BAD) {
            drop = true;
        } else if (k->kind != GH_YN_SCALAR) {
            gh_cfg_err_at(c, k, "a mapping key must be a string, not %s", gh_cfg_kind_name(k));
            drop = true;
        } else {
            for (size_t j = 0; j < kept; j += 2) {
                const gh_cfgnode *prev = map->items[j];

                if (strcmp(prev->text, k->text) == 0) {
                    gh_cfg_err_at(c, k, "duplicate key %s (first at line %d)",
                           gh_cfg_quote(qb, k->text), prev->line);
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

static void syntax_error(gh_cfgctx *c, const yaml_parser_t *p, const char *buf, size_t len)
{
    const char *problem = p->problem != NULL ? p->problem : "unknown error";
    int line, col;

    if (p->error == YAML_MEMORY_ERROR) {
        c->nomem = true;
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        line = line_of_offset(buf, len, p->problem_offset, &col);
        gh_cfg_err_at_pos(c, line, col, "YAML: %s", problem);
        return;
    }
    line = (int)p->problem_mark.line + 1;
    col = (int)p->problem_mark.column + 1;
    if (p->context != NULL)
        gh_cfg_err_at_pos(c, line, col, "YAML: %s (%s at line %d column %d)", problem,
                   p->context, (int)p->context_mark.line + 1,
                   (int)p->context_mark.column + 1);
    else
        gh_cfg_err_at_pos(c, line, col, "YAML: %s", problem);
}

/* Parses buf into *rootp (NULL for a stream with no document). Returns
 * false when the tree must not be checked further: a syntax error, a limit,
 * a second document, or no memory; all of them already reported. */
static bool build_tree(gh_cfgctx *c, const char *buf, size_t len, gh_cfgnode **rootp)
{
    yaml_parser_t p;
    yaml_event_t ev;
    gh_cfgnode *stack[GH_CONFIG_MAX_DEPTH];
    size_t depth = 0;
    gh_cfgnode *root = NULL;
    int ndocs = 0;
    bool ok = true, done = false;
    char qb[GH_CFG_QBUF];

    if (!yaml_parser_initialize(&p)) {
        c->nomem = true;
        return false;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    while (!done) {
        gh_cfgnode *n = NULL;
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
                gh_cfg_err_at_pos(c, (int)m->line + 1, (int)m->column + 1,
                           "a second YAML document: the config is one document");
                ok = false;
                done = true;
            }
            break;
        case YAML_ALIAS_EVENT:
            gh_cfg_err_at_pos(c, (int)m->line + 1, (int)m->column + 1,
                       "alias of %s refused: aliases can expand exponentially "
                       "(\"billion laughs\"); repeat the value instead",
                       gh_cfg_quote(qb, (const char *)ev.data.alias.anchor));
            n = node_new(c, GH_YN_BAD, m);
            break;
        case YAML_SCALAR_EVENT:
            check_props(c, m, ev.data.scalar.anchor, ev.data.scalar.tag);
            if ((n = node_new(c, GH_YN_SCALAR, m)) == NULL)
                break;
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            if ((n->text = malloc(ev.data.scalar.length + 1)) == NULL) {
                c->nomem = true;
                break;
            }
            memcpy(n->text, ev.data.scalar.value, ev.data.scalar.length);
            n->text[ev.data.scalar.length] = '\0';
            if (memchr(n->text, '\0', ev.data.scalar.length) != NULL) {
                gh_cfg_err_at(c, n, "a NUL character (\\0) is not allowed in a value");
                n->kind = GH_YN_BAD;
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
                gh_cfg_err_at_pos(c, (int)m->line + 1, (int)m->column + 1,
                           "nested more than %d levels deep", GH_CONFIG_MAX_DEPTH);
                ok = false;
                done = true;
                break;
            }
            n = node_new(c, ev.type == YAML_SEQUENCE_START_EVENT ? GH_YN_SEQ : GH_YN_MAP, m);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0) {
                depth--;
                if (stack[depth]->kind == GH_YN_MAP)
                    check_keys(c, stack[depth]);
            }
            break;
        default:
            break;
        }
        if (n != NULL) {
            if (++c->nnodes > GH_CONFIG_MAX_NODES) {
                gh_cfg_err_at(c, n, "more than %d values in one file", GH_CONFIG_MAX_NODES);
                node_free(n);
                ok = false;
                done = true;
            } else if (depth == 0) {
                node_free(root);    /* only one root per document */
                root = n;
            } else if (stack[depth - 1]->n >=
                       (stack[depth - 1]->kind == GH_YN_MAP ? 2u : 1u) * GH_CONFIG_MAX_ITEMS) {
                gh_cfg_err_at(c, n, "more than %d entries in one sequence or mapping",
                       GH_CONFIG_MAX_ITEMS);
                node_free(n);
                ok = false;
                done = true;
            } else if (!node_append(c, stack[depth - 1], n)) {
                node_free(n);
                done = true;
            }
            if (!done && (n->kind == GH_YN_SEQ || n->kind == GH_YN_MAP))
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

void *gh_cfg_field(void *obj, const gh_keydef *d)
{
    return (char *)obj + d->off;
}

gh_srcloc gh_cfg_loc_of(const gh_cfgctx *c, const gh_cfgnode *n)
{
    return (gh_srcloc){ .file = c->file, .line = n->line, .col = n->col };
}

char *gh_cfg_dup(gh_cfgctx *c, const char *s)
{
    char *r = strdup(s);

    if (r == NULL)
        c->nomem = true;
    return r;
}

/* dir + "/" + p unless p is absolute. */
char *gh_cfg_resolve(gh_cfgctx *c, const char *p)
{
    size_t dl, pl;
    char *r;

    if (p[0] == '/')
        return gh_cfg_dup(c, p);
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

void gh_cfg_replace(char **slot, char *s)
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

static void unknown_key(gh_cfgctx *c, const gh_cfgnode *k, const char *where, const gh_keydef *defs)
{
    char qb[GH_CFG_QBUF], list[512];
    const gh_keydef *best = NULL;
    size_t bestd = SIZE_MAX, o = 0;

    for (const gh_keydef *d = defs; d->name != NULL; d++) {
        size_t dist = distance(k->text, d->name);

        if (dist < bestd) {
            bestd = dist;
            best = d;
        }
    }
    /* close enough to be a typo: 1 edit in 3 characters at most */
    if (best != NULL && bestd <= 2 && bestd * 3 <= strlen(k->text)) {
        gh_cfg_err_at(c, k, "unknown key %s %s; did you mean \"%s\"?", gh_cfg_quote(qb, k->text),
               where, best->name);
        return;
    }
    if (defs[0].name == NULL) {
        gh_cfg_err_at(c, k, "unknown key %s %s (it takes no keys: write {})",
               gh_cfg_quote(qb, k->text), where);
        return;
    }
    list[0] = '\0';
    for (const gh_keydef *d = defs; d->name != NULL && o < sizeof(list); d++) {
        int w = snprintf(list + o, sizeof(list) - o, "%s%s", o ? ", " : "", d->name);

        if (w < 0)
            break;
        o += (size_t)w;
    }
    gh_cfg_err_at(c, k, "unknown key %s %s (expected one of: %s)", gh_cfg_quote(qb, k->text),
           where, list);
}

/* Walks mapping m with the key table defs against obj. A null value counts
 * as an empty mapping. what names m in messages ("tls"; NULL for the top
 * level), where is the phrase for unknown keys ("in tls"). Returns false
 * (reported) when m is not a mapping. */
bool gh_cfg_walk_map(gh_cfgctx *c, const gh_cfgnode *m, const char *what, const char *where,
                     const gh_keydef *defs, void *obj)
{
    bool seen[MAX_TABLE_KEYS] = { false };
    size_t ndefs = 0;

    while (defs[ndefs].name != NULL)
        ndefs++;
    if (ndefs > MAX_TABLE_KEYS)
        abort();                /* a table grew past seen[]: raise MAX_TABLE_KEYS */
    if (m->kind == GH_YN_BAD)
        return false;
    if (m->kind != GH_YN_MAP && !gh_cfg_is_null(m)) {
        if (what != NULL)
            gh_cfg_err_at(c, m, "%s: expected a mapping, got %s", what, gh_cfg_kind_name(m));
        else
            gh_cfg_err_at(c, m, "expected a mapping at the top level, got %s", gh_cfg_kind_name(m));
        return false;
    }
    for (size_t i = 0; m->kind == GH_YN_MAP && i + 1 < m->n; i += 2) {
        const gh_cfgnode *k = m->items[i], *v = m->items[i + 1];
        const gh_keydef *d = defs;

        while (d->name != NULL && strcmp(d->name, k->text) != 0)
            d++;
        if (d->name == NULL) {
            unknown_key(c, k, where, defs);
            continue;
        }
        seen[d - defs] = true;
        d->set(c, k, v, obj, d);
    }
    for (const gh_keydef *d = defs; d->name != NULL; d++) {
        if ((d->flags & GH_K_REQUIRED) && !seen[d - defs]) {
            if (what != NULL)
                gh_cfg_err_at(c, m, "%s: missing required key \"%s\"", what, d->name);
            else
                gh_cfg_err_at(c, m, "missing required key \"%s\"", d->name);
        }
    }
    return true;
}

/* The text of a scalar value, or NULL (reported) for anything else. expect
 * names what was wanted ("a duration"). */
const char *gh_cfg_want_scalar(gh_cfgctx *c, const gh_cfgnode *v, const char *key, const char *expect)
{
    if (v->kind == GH_YN_BAD)
        return NULL;
    if (v->kind != GH_YN_SCALAR) {
        gh_cfg_err_at(c, v, "%s: expected %s, got %s", key, expect, gh_cfg_kind_name(v));
        return NULL;
    }
    if (gh_cfg_is_null(v)) {
        gh_cfg_err_at(c, v, "%s: missing value (expected %s)", key, expect);
        return NULL;
    }
    return v->text;
}

/* Decimal digits only. Returns 0, -1 (not a number) or -2 (too large). */
int gh_cfg_parse_dec(const char *s, uint64_t max, uint64_t *out)
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

bool gh_cfg_port_text(gh_cfgctx *c, const gh_cfgnode *v, const char *key, const char *s, uint16_t *port)
{
    char qb[GH_CFG_QBUF];
    uint64_t p = 0;
    int r = gh_cfg_parse_dec(s, 65535, &p);

    if (r == -1) {
        gh_cfg_err_at(c, v, "%s: expected a port number, got %s", key, gh_cfg_quote(qb, s));
        return false;
    }
    if (r == -2 || p == 0) {
        gh_cfg_err_at(c, v, "%s: port %.24s not in 1..65535", key, s);
        return false;
    }
    *port = (uint16_t)p;
    return true;
}

/* -- generic setters -- */

void gh_cfg_set_string(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    const char *s;

    if (v->kind == GH_YN_SCALAR && !v->plain && v->text[0] == '\0' && (d->flags & GH_K_EMPTY_OK)) {
        gh_cfg_replace(gh_cfg_field(obj, d), gh_cfg_dup(c, ""));
        return;
    }
    if ((s = gh_cfg_want_scalar(c, v, k->text, "a string")) == NULL)
        return;
    if (s[0] == '\0' && !(d->flags & GH_K_EMPTY_OK)) {
        gh_cfg_err_at(c, v, "%s: must not be empty", k->text);
        return;
    }
    gh_cfg_replace(gh_cfg_field(obj, d), gh_cfg_dup(c, s));
}

void gh_cfg_set_path(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    const char *s = gh_cfg_want_scalar(c, v, k->text, "a path");

    if (s == NULL)
        return;
    if (s[0] == '\0') {
        gh_cfg_err_at(c, v, "%s: must not be empty", k->text);
        return;
    }
    gh_cfg_replace(gh_cfg_field(obj, d), gh_cfg_resolve(c, s));
}

void gh_cfg_set_duration(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    char qb[GH_CFG_QBUF];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "a duration such as 30s");
    uint64_t ms;

    if (s == NULL)
        return;
    if (gh_units_parse_duration(s, &ms) != GH_OK) {
        gh_cfg_err_at(c, v, "%s: bad duration %s (use 500ms, 30s, 5m)", k->text, gh_cfg_quote(qb, s));
        return;
    }
    if (ms > GH_CONFIG_MAX_DURATION_MS) {
        gh_cfg_err_at(c, v, "%s: duration %s is too long (at most %dh)", k->text, gh_cfg_quote(qb, s),
               (int)(GH_CONFIG_MAX_DURATION_MS / 3600000));
        return;
    }
    if (ms == 0 && (d->flags & GH_K_NONZERO)) {
        gh_cfg_err_at(c, v, "%s: must be more than 0", k->text);
        return;
    }
    if (d->arg > 0 && ms < (uint64_t)d->arg) {
        gh_cfg_err_at(c, v, "%s: must be at least %dms", k->text, d->arg);
        return;
    }
    *(uint64_t *)gh_cfg_field(obj, d) = ms;
}

void gh_cfg_set_size(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    char qb[GH_CFG_QBUF];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "a size such as 64KiB");
    uint64_t n;

    if (s == NULL)
        return;
    if (gh_units_parse_size(s, &n) != GH_OK) {
        gh_cfg_err_at(c, v, "%s: bad size %s (use 4096, 64KiB, 1MiB)", k->text, gh_cfg_quote(qb, s));
        return;
    }
    if (n > GH_CONFIG_MAX_SIZE) {
        gh_cfg_err_at(c, v, "%s: size %s is too large (at most 1TiB)", k->text, gh_cfg_quote(qb, s));
        return;
    }
    if (n == 0 && (d->flags & GH_K_NONZERO)) {
        gh_cfg_err_at(c, v, "%s: must be more than 0", k->text);
        return;
    }
    *(uint64_t *)gh_cfg_field(obj, d) = n;
}

/* A value from the fixed list d->data. The message lists the names that
 * are not aliases. */
void gh_cfg_set_enum(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                     const gh_keydef *d)
{
    char qb[GH_CFG_QBUF], expect[256];
    const gh_cfg_enum *list = d->data;
    const char *s = gh_cfg_want_scalar(c, v, k->text, "a value");
    size_t o = 0, n = 0, total = 0;

    if (s == NULL)
        return;
    for (const gh_cfg_enum *e = list; e->name != NULL; e++) {
        if (strcmp(s, e->name) != 0)
            continue;
        if (d->flags & GH_K_ENUM_TEXT)
            gh_cfg_replace(gh_cfg_field(obj, d), gh_cfg_dup(c, e->name));
        else
            *(int *)gh_cfg_field(obj, d) = e->val;
        return;
    }
    for (const gh_cfg_enum *e = list; e->name != NULL; e++)
        total += !e->alias;
    expect[0] = '\0';
    for (const gh_cfg_enum *e = list; e->name != NULL && o < sizeof(expect); e++) {
        int w;

        if (e->alias)
            continue;
        n++;
        w = snprintf(expect + o, sizeof(expect) - o, "%s%s", n == 1 ? "" : n == total ? " or " : ", ",
                     e->name);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    gh_cfg_err_at(c, v, "%s: bad value %s (expected %s)", k->text, gh_cfg_quote(qb, s), expect);
}

void gh_cfg_set_map(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                    const gh_keydef *d)
{
    char where[64];

    snprintf(where, sizeof(where), "in %s", k->text);
    gh_cfg_walk_map(c, v, k->text, where, d->sub, gh_cfg_field(obj, d));
}

/* -- top level -- */

static void set_log(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    char **slot = gh_cfg_field(obj, d);
    const char *s = gh_cfg_want_scalar(c, v, k->text, "stderr, off or a path");

    if (s == NULL)
        return;
    if (s[0] == '\0') {
        gh_cfg_err_at(c, v, "%s: must not be empty", k->text);
    } else if (strcmp(s, "stderr") == 0) {
        gh_cfg_replace(slot, gh_cfg_dup(c, "stderr"));
    } else if (strcmp(s, "off") == 0 || strcmp(s, "false") == 0) {
        if (d->arg) {           /* arg: off is allowed */
            free(*slot);
            *slot = NULL;
        } else {
            gh_cfg_err_at(c, v, "%s: cannot be off (use stderr or a path)", k->text);
        }
    } else {
        gh_cfg_replace(slot, gh_cfg_resolve(c, s));
    }
}

static void set_log_level(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    char qb[GH_CFG_QBUF];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "a log level");
    gh_log_level lvl;

    if (s == NULL)
        return;
    if (gh_log_level_parse(s, &lvl) != GH_OK) {
        gh_cfg_err_at(c, v, "%s: bad value %s (expected debug, info, warn or error)",
               k->text, gh_cfg_quote(qb, s));
        return;
    }
    *(int *)gh_cfg_field(obj, d) = (int)lvl;
}

/* user: and group: keep the name and where it was; check_identity()
 * looks them up once the whole file is read (group: may come first). */
static void set_name(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                     const gh_keydef *d)
{
    gh_config *cfg = obj;

    gh_cfg_set_string(c, k, v, obj, d);
    if (d->arg)
        cfg->group_loc = gh_cfg_loc_of(c, v);
    else
        cfg->user_loc = gh_cfg_loc_of(c, v);
}

/* workers: a count in 1..GH_MAX_WORKERS or auto (0). */
static void set_workers(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                        const gh_keydef *d)
{
    gh_config *cfg = obj;
    char qb[GH_CFG_QBUF];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "a whole number or auto");
    uint64_t n;

    (void)d;
    if (s == NULL)
        return;
    cfg->workers_loc = gh_cfg_loc_of(c, v);
    if (strcmp(s, "auto") == 0) {
        cfg->workers = 0;
        return;
    }
    if (gh_cfg_parse_dec(s, GH_MAX_WORKERS, &n) != 0 || n == 0) {
        gh_cfg_err_at(c, v, "%s: expected auto or a whole number in 1..%d, got %s", k->text,
                      GH_MAX_WORKERS, gh_cfg_quote(qb, s));
        return;
    }
    cfg->workers = (unsigned)n;
}

/* A failed getpwnam_r/getgrnam_r (e: its return) reported at loc. */
static void lookup_failed(gh_cfgctx *c, gh_srcloc loc, const char *key, const char *name, int e)
{
    char qb[GH_CFG_QBUF];

    if (e == 0 || e == ENOENT || e == ESRCH)
        gh_cfg_err_at_pos(c, loc.line, loc.col, "%s: no such %s %s on this system", key, key,
                          gh_cfg_quote(qb, name));
    else
        gh_cfg_err_at_pos(c, loc.line, loc.col, "%s: cannot look up %s: %s", key,
                          gh_cfg_quote(qb, name), strerror(e));
}

/* Resolves user: and group: into uid and gid. The system's databases are
 * asked (getpwnam_r, getgrnam_r, NSS included), so `gatehouse -t` reports
 * a name this host does not know, at its value. */
static void check_identity(gh_cfgctx *c, gh_config *cfg)
{
    char buf[16384];
    struct passwd pw, *pwp = NULL;
    struct group gr, *grp = NULL;
    int e;

    if (cfg->user == NULL) {
        if (cfg->group != NULL)
            gh_cfg_err_at_pos(c, cfg->group_loc.line, cfg->group_loc.col,
                              "group: needs user: (gatehouse drops to a user and its group "
                              "together)");
        return;
    }
    if ((e = getpwnam_r(cfg->user, &pw, buf, sizeof(buf), &pwp)) != 0 || pwp == NULL) {
        lookup_failed(c, cfg->user_loc, "user", cfg->user, e);
        return;
    }
    cfg->uid = pw.pw_uid;
    cfg->gid = pw.pw_gid;
    if (cfg->group == NULL)
        return;
    if ((e = getgrnam_r(cfg->group, &gr, buf, sizeof(buf), &grp)) != 0 || grp == NULL) {
        lookup_failed(c, cfg->group_loc, "group", cfg->group, e);
        return;
    }
    cfg->gid = gr.gr_gid;
}

void gh_cfg_set_bool(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                     const gh_keydef *d)
{
    char qb[GH_CFG_QBUF];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "true or false");

    if (s == NULL)
        return;
    if (strcmp(s, "true") == 0)
        *(bool *)gh_cfg_field(obj, d) = true;
    else if (strcmp(s, "false") == 0)
        *(bool *)gh_cfg_field(obj, d) = false;
    else
        gh_cfg_err_at(c, v, "%s: bad value %s (expected true or false)", k->text,
                      gh_cfg_quote(qb, s));
}

void gh_cfg_set_count(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    char qb[GH_CFG_QBUF];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "a whole number");
    uint64_t n;

    if (s == NULL)
        return;
    if (gh_cfg_parse_dec(s, INT32_MAX, &n) != 0) {
        gh_cfg_err_at(c, v, "%s: expected a whole number in 0..%d, got %s", k->text,
               INT32_MAX, gh_cfg_quote(qb, s));
        return;
    }
    *(uint64_t *)gh_cfg_field(obj, d) = n;
}


static void cnode_deinit(gh_cnode *n)
{
    for (size_t i = 0; i < n->nitems; i++)
        cnode_deinit(&n->items[i]);
    free(n->items);
    free(n->key);
    free(n->value);
}

/* Copies a gh_cfgnode tree (depth bounded by the first pass) into out. */
static void to_cnode(gh_cfgctx *c, const gh_cfgnode *y, gh_cnode *out)
{
    size_t n;

    out->loc = gh_cfg_loc_of(c, y);
    switch (y->kind) {
    case GH_YN_SEQ:
    case GH_YN_MAP:
        out->kind = y->kind == GH_YN_SEQ ? GH_CNODE_SEQ : GH_CNODE_MAP;
        n = y->kind == GH_YN_SEQ ? y->n : y->n / 2;
        if (n == 0)
            return;
        if ((out->items = calloc(n, sizeof(*out->items))) == NULL) {
            c->nomem = true;
            return;
        }
        out->nitems = n;
        for (size_t i = 0; i < n; i++) {
            if (y->kind == GH_YN_SEQ) {
                to_cnode(c, y->items[i], &out->items[i]);
            } else {
                to_cnode(c, y->items[2 * i + 1], &out->items[i]);
                out->items[i].key = gh_cfg_dup(c, y->items[2 * i]->text);
            }
        }
        return;
    case GH_YN_SCALAR:
        out->kind = GH_CNODE_SCALAR;
        out->value = gh_cfg_dup(c, y->text);
        return;
    default:
        out->kind = GH_CNODE_SCALAR;    /* an alias: reported, the load fails */
        return;
    }
}

void gh_cfg_set_cnode(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    gh_cnode **slot = gh_cfg_field(obj, d);

    if (v->kind == GH_YN_BAD || gh_cfg_is_null(v))
        return;
    if (v->kind != GH_YN_MAP) {
        gh_cfg_err_at(c, v, "%s: expected a mapping, got %s", k->text, gh_cfg_kind_name(v));
        return;
    }
    if ((*slot = calloc(1, sizeof(**slot))) == NULL) {
        c->nomem = true;
        return;
    }
    to_cnode(c, v, *slot);
}

const gh_keydef gh_cfg_no_keys[] = { { .name = NULL } };


#define CFG_FIELD(f) offsetof(gh_config, f)
static const gh_keydef top_keys[] = {
    { .name = "plugins_dir", .set = gh_cfg_set_path, .off = CFG_FIELD(plugins_dir) },
    { .name = "access_log", .set = set_log, .off = CFG_FIELD(access_log), .arg = 1 },
    { .name = "error_log", .set = set_log, .off = CFG_FIELD(error_log), .arg = 0 },
    { .name = "log_level", .set = set_log_level, .off = CFG_FIELD(log_level) },
    { .name = "max_connections", .set = gh_cfg_set_count, .off = CFG_FIELD(max_connections) },
    { .name = "drain_delay", .set = gh_cfg_set_duration, .off = CFG_FIELD(drain_delay_ms) },
    { .name = "drain_timeout", .set = gh_cfg_set_duration, .off = CFG_FIELD(drain_timeout_ms) },
    { .name = "plugin_warn_after", .set = gh_cfg_set_duration,
      .off = CFG_FIELD(plugin_warn_after_ms) },
    { .name = "workers", .set = set_workers },
    { .name = "worker_backlog", .set = gh_cfg_set_size, .off = CFG_FIELD(worker_backlog),
      .flags = GH_K_NONZERO },
    { .name = "user", .set = set_name, .off = CFG_FIELD(user), .arg = 0 },
    { .name = "group", .set = set_name, .off = CFG_FIELD(group), .arg = 1 },
    { .name = "http", .set = gh_cfg_set_map, .off = CFG_FIELD(http), .sub = gh_http_conf_keys },
    { .name = "limits", .set = gh_cfg_set_map, .off = CFG_FIELD(limits),
      .sub = gh_limits_conf_keys },
    { .name = "bus", .set = gh_cfg_set_bus, .sub = gh_bus_conf_keys },
    { .name = "listeners", .set = gh_cfg_set_listeners, .flags = GH_K_REQUIRED,
      .sub = gh_listener_conf_keys },
    { .name = "upstreams", .set = gh_cfg_set_upstreams, .sub = gh_upstream_conf_keys },
    { .name = "routes", .set = gh_cfg_set_routes, .sub = gh_route_conf_keys },
    { .name = NULL },
};
#undef CFG_FIELD

static void config_defaults(gh_cfgctx *c, gh_config *cfg)
{
    cfg->plugins_dir = gh_cfg_resolve(c, "plugins");
    cfg->access_log = gh_cfg_dup(c, "stderr");
    cfg->error_log = gh_cfg_dup(c, "stderr");
    cfg->log_level = GH_LOG_INFO;
    cfg->max_connections = 0;
    cfg->drain_delay_ms = 0;
    cfg->drain_timeout_ms = 30000;
    cfg->plugin_warn_after_ms = 100;
    cfg->worker_backlog = 32u << 20;
    gh_http_conf_defaults(&cfg->http);
    gh_limits_conf_defaults(&cfg->limits);
    gh_bus_conf_defaults(c, &cfg->bus);
}

/* ---- public ------------------------------------------------------------ */

static void each_key(const gh_keydef *defs, char *path, size_t len, size_t cap,
                     void (*fn)(const char *path, void *arg), void *arg, int depth)
{
    for (const gh_keydef *d = defs; d != NULL && d->name != NULL; d++) {
        size_t n = strlen(d->name);

        if (len + 1 + n + 1 > cap || depth > 8)
            continue;
        if (len > 0)
            path[len] = '.';
        memcpy(path + len + (len > 0), d->name, n + 1);
        fn(path, arg);
        each_key((d->flags & GH_K_ACTION) ? ((const gh_cfg_action *)d->data)->keys : d->sub, path, len + (len > 0) + n, cap, fn, arg, depth + 1);
        path[len] = '\0';
    }
}

void gh_config_each_key(void (*fn)(const char *path, void *arg), void *arg)
{
    char path[256] = "";

    each_key(top_keys, path, 0, sizeof(path), fn, arg, 0);
}

int gh_config_load_mem(const char *name, const char *buf, size_t len, const char *dir,
                       gh_config **out, gh_errlist *errs)
{
    gh_cfgctx c = { 0 };
    gh_config *cfg = NULL;
    gh_cfgnode *root = NULL;
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
        if (root == NULL || gh_cfg_is_null(root))
            gh_cfg_err_at_pos(&c, root != NULL ? root->line : 1, root != NULL ? root->col : 1,
                       "the config is empty (it needs at least listeners:)");
        else
            gh_cfg_walk_map(&c, root, NULL, "at the top level", top_keys, cfg);
    }
    /* routes may name upstreams declared after them: tie them up now */
    if (!c.nomem)
        gh_cfg_check_proxies(&c, cfg);
    if (!c.nomem)
        check_identity(&c, cfg);
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

unsigned gh_config_workers(const gh_config *cfg)
{
    cpu_set_t set;
    int n;

    if (cfg->workers > 0)
        return cfg->workers;
    if (sched_getaffinity(0, sizeof(set), &set) != 0 || (n = CPU_COUNT(&set)) < 1)
        return 1;
    return n > GH_MAX_WORKERS ? GH_MAX_WORKERS : (unsigned)n;
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
        free(r->allow);
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
        case GH_ACTION_PROXY:
            free(r->u.proxy.upstream);
            free(r->u.proxy.strip_prefix);
            for (size_t j = 0; j < r->u.proxy.nset; j++) {
                free(r->u.proxy.set[j].name);
                free(r->u.proxy.set[j].value);
            }
            free(r->u.proxy.set);
            for (size_t j = 0; j < r->u.proxy.nremove; j++)
                free(r->u.proxy.remove[j]);
            free(r->u.proxy.remove);
            break;
        default:
            break;
        }
    }
    free(cfg->routes);
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        gh_upstream_conf *u = &cfg->upstreams[i];

        free(u->name);
        free(u->health_path);
        free(u->tls_ca);
        free(u->tls_sni);
        for (size_t j = 0; j < u->nservers; j++)
            free(u->servers[j].address);
        free(u->servers);
    }
    free(cfg->upstreams);
    free(cfg->bus.redis);
    free(cfg->bus.channel_prefix);
    free(cfg->bus.password);
    free(cfg->bus.resolver);
    free(cfg->plugins_dir);
    free(cfg->access_log);
    free(cfg->error_log);
    free(cfg->user);
    free(cfg->group);
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

