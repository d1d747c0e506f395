/*
 * yaml_tree.c - see yaml_tree.h.
 *
 * Small allocations (tree nodes, keys) abort on failure through pv_xalloc:
 * they are bounded by the size of the files a project holds, which are read
 * whole and capped at PV_MAX_FILE, so running out there means the process is
 * already lost.
 */
#include "pipeline/yaml_tree.h"
#include "common/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define PV_MAX_FILE ((size_t)16 << 20)
#define PV_MAX_DEPTH 64

pv *pv_new(pv_type type)
{
    pv *v = xrealloc(NULL, sizeof(*v));
    memset(v, 0, sizeof(*v));
    v->type = type;
    return v;
}

pv *pv_strn(const char *s, size_t n)
{
    pv *v = pv_new(PV_STR);
    v->s = xstrndup(s, n);
    return v;
}

pv *pv_str(const char *s)
{
    return pv_strn(s, strlen(s));
}

pv *pv_bool(bool b)
{
    pv *v = pv_new(PV_BOOL);
    v->b = b;
    return v;
}

pv *pv_int(long long i)
{
    pv *v = pv_new(PV_INT);
    v->i = i;
    return v;
}

void pv_free(pv *v)
{
    if (!v)
        return;
    for (size_t k = 0; k < v->n; k++) {
        pv_free(v->items[k]);
        if (v->keys)
            free(v->keys[k]);
    }
    free(v->items);
    free(v->keys);
    free(v->s);
    free(v);
}

pv *pv_copy(const pv *v)
{
    pv *c;

    if (!v)
        return NULL;
    c = pv_new(v->type);
    c->line = v->line;
    c->b = v->b;
    c->i = v->i;
    c->f = v->f;
    if (v->s)
        c->s = xstrndup(v->s, strlen(v->s));
    for (size_t k = 0; k < v->n; k++) {
        if (v->type == PV_MAP)
            pv_set(c, v->keys[k], pv_copy(v->items[k]));
        else
            pv_push(c, pv_copy(v->items[k]));
    }
    return c;
}

static void pv_grow(pv *v)
{
    if (v->n < v->cap)
        return;
    v->cap = v->cap ? v->cap * 2 : 4;
    v->items = xrealloc(v->items, v->cap * sizeof(*v->items));
    if (v->type == PV_MAP)
        v->keys = xrealloc(v->keys, v->cap * sizeof(*v->keys));
}

void pv_push(pv *list, pv *item)
{
    pv_grow(list);
    list->items[list->n++] = item;
}

void pv_set(pv *map, const char *key, pv *val)
{
    for (size_t k = 0; k < map->n; k++) {
        if (strcmp(map->keys[k], key) == 0) {
            pv_free(map->items[k]);
            map->items[k] = val;
            return;
        }
    }
    pv_grow(map);
    map->keys[map->n] = xstrndup(key, strlen(key));
    map->items[map->n++] = val;
}

pv *pv_get(const pv *map, const char *key)
{
    if (!map || map->type != PV_MAP)
        return NULL;
    for (size_t k = 0; k < map->n; k++)
        if (strcmp(map->keys[k], key) == 0)
            return map->items[k];
    return NULL;
}

const char *pv_s(const pv *v)
{
    return v && v->type == PV_STR ? v->s : NULL;
}

const char *pv_gets(const pv *map, const char *key)
{
    return pv_s(pv_get(map, key));
}

bool pv_truthy(const pv *v)
{
    if (!v)
        return false;
    switch (v->type) {
    case PV_NULL:
        return false;
    case PV_BOOL:
        return v->b;
    case PV_INT:
        return v->i != 0;
    case PV_FLOAT:
        return v->f != 0;
    case PV_STR:
        return v->s[0] != '\0';
    default:
        return v->n > 0;
    }
}

/* ---- YAML ---- */

static bool ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

static pv *pv_scalar(const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    char *end;
    pv *v;

    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return pv_strn(s, n);
    if (n == 0 || strcmp(s, "~") == 0 || ieq(s, "null"))
        return pv_new(PV_NULL);
    if (ieq(s, "true"))
        return pv_bool(true);
    if (ieq(s, "false"))
        return pv_bool(false);
    if (isdigit((unsigned char)s[0]) || ((s[0] == '-' || s[0] == '+') && n > 1)) {
        errno = 0;
        long long i = strtoll(s, &end, 10);
        if (!errno && *end == '\0')
            return pv_int(i);
        double f = strtod(s, &end);
        if (*end == '\0') {
            v = pv_new(PV_FLOAT);
            v->f = f;
            return v;
        }
    }
    return pv_strn(s, n);
}

typedef struct {
    yaml_parser_t parser;
    const char *name;
    cs_error *err;
} pv_reader;

static cs_result pv_yerr(pv_reader *r, const yaml_mark_t *m, const char *what)
{
    return cs_fail(r->err, CS_INVALID, "%s:%zu:%zu: %s", r->name, m->line + 1, m->column + 1, what);
}

static cs_result pv_next(pv_reader *r, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&r->parser, ev)) {
        return cs_fail(r->err, CS_INVALID, "%s:%zu:%zu: %s", r->name,
                       r->parser.problem_mark.line + 1, r->parser.problem_mark.column + 1,
                       r->parser.problem ? r->parser.problem : "invalid YAML");
    }
    return CS_OK;
}

/* builds the node that starts with ev (consumed); *out on success */
static cs_result pv_node(pv_reader *r, yaml_event_t *ev, int depth, pv **out)
{
    cs_result rc = CS_OK;
    yaml_event_t e;
    pv *v = NULL, *child;

    if (depth > PV_MAX_DEPTH)
        return pv_yerr(r, &ev->start_mark, "nesting too deep");
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return pv_yerr(r, &ev->start_mark, "YAML aliases are not supported");
    case YAML_SCALAR_EVENT:
        v = pv_scalar(ev);
        v->line = (int)ev->start_mark.line + 1;
        *out = v;
        return CS_OK;
    case YAML_SEQUENCE_START_EVENT:
        v = pv_new(PV_LIST);
        v->line = (int)ev->start_mark.line + 1;
        for (;;) {
            if ((rc = pv_next(r, &e)) != CS_OK)
                goto fail;
            if (e.type == YAML_SEQUENCE_END_EVENT) {
                yaml_event_delete(&e);
                break;
            }
            rc = pv_node(r, &e, depth + 1, &child);
            yaml_event_delete(&e);
            if (rc != CS_OK)
                goto fail;
            pv_push(v, child);
        }
        *out = v;
        return CS_OK;
    case YAML_MAPPING_START_EVENT:
        v = pv_new(PV_MAP);
        v->line = (int)ev->start_mark.line + 1;
        for (;;) {
            char *key;
            if ((rc = pv_next(r, &e)) != CS_OK)
                goto fail;
            if (e.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&e);
                break;
            }
            if (e.type != YAML_SCALAR_EVENT) {
                rc = pv_yerr(r, &e.start_mark, "only scalar mapping keys are supported");
                yaml_event_delete(&e);
                goto fail;
            }
            key = xstrndup((const char *)e.data.scalar.value, e.data.scalar.length);
            yaml_event_delete(&e);
            if ((rc = pv_next(r, &e)) != CS_OK) {
                free(key);
                goto fail;
            }
            rc = pv_node(r, &e, depth + 1, &child);
            yaml_event_delete(&e);
            if (rc != CS_OK) {
                free(key);
                goto fail;
            }
            pv_set(v, key, child);
            free(key);
        }
        *out = v;
        return CS_OK;
    default:
        return pv_yerr(r, &ev->start_mark, "unexpected YAML event");
    }
fail:
    pv_free(v);
    return rc;
}

cs_result pv_parse_yaml(const char *name, const char *text, size_t len, pv **out, cs_error *err)
{
    pv_reader r = {.name = name, .err = err};
    yaml_event_t ev;
    cs_result rc;
    pv *doc = NULL;

    *out = NULL;
    if (!yaml_parser_initialize(&r.parser))
        return cs_fail(err, CS_PERMANENT, "%s: could not initialise the YAML parser", name);
    yaml_parser_set_input_string(&r.parser, (const unsigned char *)text, len);
    for (;;) {
        if ((rc = pv_next(&r, &ev)) != CS_OK)
            goto out;
        if (ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_START_EVENT ||
            ev.type == YAML_DOCUMENT_END_EVENT) {
            yaml_event_delete(&ev);
            continue;
        }
        if (doc) {
            rc = pv_yerr(&r, &ev.start_mark, "more than one YAML document");
            yaml_event_delete(&ev);
            goto out;
        }
        rc = pv_node(&r, &ev, 0, &doc);
        yaml_event_delete(&ev);
        if (rc != CS_OK)
            goto out;
    }
    *out = doc ? doc : pv_new(PV_NULL);
    doc = NULL;
    rc = CS_OK;
out:
    pv_free(doc);
    yaml_parser_delete(&r.parser);
    return rc;
}

bool pv_read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    buf b;
    char chunk[8192];
    size_t n;

    if (!f)
        return false;
    buf_init(&b, PV_MAX_FILE);
    buf_reserve(&b, 0);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&b, chunk, n);
    if (ferror(f) || !buf_ok(&b)) {
        fclose(f);
        buf_free(&b);
        errno = EFBIG;
        return false;
    }
    fclose(f);
    *len = b.len;
    *out = buf_steal(&b);
    return true;
}

cs_result pv_load_yaml_file(const char *path, pv **out, cs_error *err)
{
    char *text;
    size_t len;
    cs_result rc;

    *out = NULL;
    if (!pv_read_file(path, &text, &len))
        return cs_fail(err, CS_PERMANENT, "could not read file \"%s\": %s", path, strerror(errno));
    rc = pv_parse_yaml(path, text, len, out, err);
    free(text);
    return rc;
}

static void pv_quote(buf *out, const char *s)
{
    buf_putc(out, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_putc(out, '\\');
        if (*s == '\n')
            buf_puts(out, "\\n");
        else
            buf_putc(out, *s);
    }
    buf_putc(out, '"');
}

bool pv_to_text(const pv *v, buf *out)
{
    if (!v) {
        buf_puts(out, "null");
        return buf_ok(out);
    }
    switch (v->type) {
    case PV_NULL:
        buf_puts(out, "null");
        break;
    case PV_BOOL:
        buf_puts(out, v->b ? "true" : "false");
        break;
    case PV_INT:
        buf_printf(out, "%lld", v->i);
        break;
    case PV_FLOAT:
        buf_printf(out, "%.17g", v->f);
        break;
    case PV_STR:
        pv_quote(out, v->s);
        break;
    case PV_LIST:
        buf_putc(out, '[');
        for (size_t k = 0; k < v->n; k++) {
            if (k)
                buf_puts(out, ", ");
            pv_to_text(v->items[k], out);
        }
        buf_putc(out, ']');
        break;
    case PV_MAP:
        buf_putc(out, '{');
        for (size_t k = 0; k < v->n; k++) {
            if (k)
                buf_puts(out, ", ");
            pv_quote(out, v->keys[k]);
            buf_puts(out, ": ");
            pv_to_text(v->items[k], out);
        }
        buf_putc(out, '}');
        break;
    }
    return buf_ok(out);
}
