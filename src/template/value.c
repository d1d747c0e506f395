/*
 * value.c - template values: constructors, reference counting, lists,
 * insertion-ordered dicts (with a hash index once they grow), conversions,
 * and the text forms: {{ }} text, Python repr and JSON.
 *
 * None, True and False are immortal statics (refs < 0): tpl_ref/tpl_unref
 * leave them alone, so they are safe to share between threads.  Template
 * constants are immortal too but never leave the template: evaluation hands
 * out copies, because a native may keep a value longer than the template.  Allocation failure
 * aborts the process: every allocation here is small and bounded by the caps on input and output.
 */
#include "template/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPR_DEPTH 64

static tpl_value v_none = {.refs = -1, .type = TPL_NONE};
static tpl_value v_true = {.refs = -1, .type = TPL_BOOL, .u.b = true};
static tpl_value v_false = {.refs = -1, .type = TPL_BOOL, .u.b = false};

static tpl_value *val_new(tpl_type t)
{
    tpl_value *v = xmalloc(sizeof(*v));

    memset(v, 0, sizeof(*v));
    v->refs = 1;
    v->type = (unsigned char)t;
    return v;
}

tpl_value *tpl_none(void)
{
    return &v_none;
}

tpl_value *tpl_bool(bool b)
{
    return b ? &v_true : &v_false;
}

tpl_value *tpl_int(long long i)
{
    tpl_value *v = val_new(TPL_INT);

    v->u.i = i;
    return v;
}

tpl_value *tpl_float(double d)
{
    tpl_value *v = val_new(TPL_FLOAT);

    v->u.d = d;
    return v;
}

tpl_value *tpli_str_take(char *s, size_t n)
{
    tpl_value *v = val_new(TPL_STR);

    v->u.str.s = s;
    v->u.str.len = n;
    return v;
}

tpl_value *tpl_strn(const char *s, size_t n)
{
    return tpli_str_take(xstrndup(s, n), n);
}

tpl_value *tpl_str(const char *s)
{
    return tpl_strn(s, strlen(s));
}

tpl_value *tpl_list_new(void)
{
    return val_new(TPL_LIST);
}

tpl_value *tpli_tuple_new(void)
{
    tpl_value *v = val_new(TPL_LIST);

    v->flags |= VF_TUPLE;
    return v;
}

tpl_value *tpl_dict_new(void)
{
    return val_new(TPL_DICT);
}

tpl_value *tpl_object_new(const char *display)
{
    tpl_value *v = val_new(TPL_DICT);

    v->flags |= VF_OBJECT;
    v->u.dict.display = xstrndup(display, strlen(display));
    return v;
}

tpl_value *tpli_undef(const char *name)
{
    tpl_value *v = val_new(TPL_NONE);

    v->flags |= VF_UNDEF;
    if (name) {
        v->u.str.s = xstrndup(name, strlen(name));
        v->u.str.len = strlen(name);
    }
    return v;
}

bool tpli_is_undef(const tpl_value *v)
{
    return v && (v->flags & VF_UNDEF);
}

tpl_value *tpl_func_new(const char *name, tpl_native_fn fn, void *ud)
{
    tpl_value *v = val_new(TPL_FUNC);

    v->u.fn.kind = FN_NATIVE;
    v->u.fn.name = xstrndup(name, strlen(name));
    v->u.fn.fn = fn;
    v->u.fn.ud = ud;
    return v;
}

tpl_value *tpli_func_macro(const char *name, const tpli_node *macro, const tpl_template *t,
                           unsigned long defid)
{
    tpl_value *v = val_new(TPL_FUNC);

    v->u.fn.kind = FN_MACRO;
    v->u.fn.name = xstrndup(name, strlen(name));
    v->u.fn.macro = macro;
    v->u.fn.tpl = t;
    v->u.fn.defid = defid;
    return v;
}

tpl_value *tpl_ref(tpl_value *v)
{
    if (v && v->refs > 0)
        v->refs++;
    return v;
}

void tpl_unref(tpl_value *v)
{
    size_t i;

    if (!v || v->refs < 0 || --v->refs > 0)
        return;
    switch (v->type) {
    case TPL_NONE:
    case TPL_STR:
        free(v->u.str.s);
        break;
    case TPL_LIST:
        for (i = 0; i < v->u.list.len; i++)
            tpl_unref(v->u.list.items[i]);
        free(v->u.list.items);
        tpl_unref(v->attrs);
        break;
    case TPL_DICT:
        for (i = 0; i < v->u.dict.len; i++) {
            free(v->u.dict.keys[i]);
            tpl_unref(v->u.dict.vals[i]);
        }
        free(v->u.dict.keys);
        free(v->u.dict.vals);
        free(v->u.dict.idx);
        free(v->u.dict.display);
        break;
    case TPL_FUNC:
        free(v->u.fn.name);
        break;
    default:
        break;
    }
    free(v);
}

tpl_type tpl_typeof(const tpl_value *v)
{
    return v ? (tpl_type)v->type : TPL_NONE;
}

bool tpl_truthy(const tpl_value *v)
{
    if (!v)
        return false;
    switch (v->type) {
    case TPL_NONE:
        return false;
    case TPL_BOOL:
        return v->u.b;
    case TPL_INT:
        return v->u.i != 0;
    case TPL_FLOAT:
        return v->u.d != 0.0;
    case TPL_STR:
        return v->u.str.len > 0;
    case TPL_LIST:
        return v->u.list.len > 0;
    case TPL_DICT:
        return (v->flags & VF_OBJECT) || v->u.dict.len > 0;
    default:
        return true;
    }
}

/* dbt's as_bool: strings "true"/"false" (any case) become booleans */
bool tpl_as_bool(const tpl_value *v)
{
    if (v && v->type == TPL_STR) {
        if (strcasecmp(v->u.str.s, "true") == 0)
            return true;
        if (strcasecmp(v->u.str.s, "false") == 0 || strcmp(v->u.str.s, "0") == 0)
            return false;
    }
    return tpl_truthy(v);
}

long long tpl_as_int(const tpl_value *v)
{
    if (!v)
        return 0;
    switch (v->type) {
    case TPL_BOOL:
        return v->u.b;
    case TPL_INT:
        return v->u.i;
    case TPL_FLOAT:
        if (isnan(v->u.d) || v->u.d >= 9.2e18 || v->u.d <= -9.2e18)
            return 0;
        return (long long)v->u.d;
    case TPL_STR:
        return strtoll(v->u.str.s, NULL, 10);
    default:
        return 0;
    }
}

double tpl_as_float(const tpl_value *v)
{
    if (!v)
        return 0;
    switch (v->type) {
    case TPL_BOOL:
        return v->u.b;
    case TPL_INT:
        return (double)v->u.i;
    case TPL_FLOAT:
        return v->u.d;
    case TPL_STR:
        return strtod(v->u.str.s, NULL);
    default:
        return 0;
    }
}

const char *tpl_as_str(const tpl_value *v)
{
    return v && v->type == TPL_STR ? v->u.str.s : NULL;
}

const char *tpli_type_name(const tpl_value *v)
{
    if (tpli_is_undef(v))
        return "undefined";
    switch (tpl_typeof(v)) {
    case TPL_NONE:
        return "NoneType";
    case TPL_BOOL:
        return "bool";
    case TPL_INT:
        return "int";
    case TPL_FLOAT:
        return "float";
    case TPL_STR:
        return "str";
    case TPL_LIST:
        return v->flags & VF_TUPLE ? "tuple" : "list";
    case TPL_DICT:
        return "dict";
    default:
        return "function";
    }
}

/* ---- arguments ---- */

tpl_value *tpl_arg(const tpl_args *args, size_t index, const char *name)
{
    size_t i;

    if (!args)
        return NULL;
    if (name)
        for (i = 0; i < args->nkw; i++)
            if (strcmp(args->kwnames[i], name) == 0)
                return args->kw[i];
    return index < args->npos ? args->pos[index] : NULL;
}

/* ---- lists ---- */

size_t tpl_list_len(const tpl_value *list)
{
    return list && list->type == TPL_LIST ? list->u.list.len : 0;
}

tpl_value *tpl_list_get(const tpl_value *list, size_t i)
{
    if (!list || list->type != TPL_LIST || i >= list->u.list.len)
        return NULL;
    return list->u.list.items[i];
}

void tpl_list_push(tpl_value *list, tpl_value *item)
{
    if (!list || list->type != TPL_LIST) {
        tpl_unref(item);
        return;
    }
    if (list->u.list.len == list->u.list.cap) {
        list->u.list.cap = list->u.list.cap ? list->u.list.cap * 2 : 4;
        list->u.list.items = xrealloc(list->u.list.items, list->u.list.cap * sizeof(tpl_value *));
    }
    list->u.list.items[list->u.list.len++] = item;
}

/* ---- dicts ---- */

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;

    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

static void dict_reindex(tpl_value *d)
{
    size_t i, cap = 16;

    free(d->u.dict.idx);
    d->u.dict.idx = NULL;
    d->u.dict.idxcap = 0;
    if (d->u.dict.len < 8)
        return;
    while (cap < d->u.dict.len * 2)
        cap *= 2;
    d->u.dict.idx = xmalloc(cap * sizeof(uint32_t));
    memset(d->u.dict.idx, 0, cap * sizeof(uint32_t));
    d->u.dict.idxcap = cap;
    for (i = 0; i < d->u.dict.len; i++) {
        size_t h = hash_str(d->u.dict.keys[i]) & (cap - 1);
        while (d->u.dict.idx[h])
            h = (h + 1) & (cap - 1);
        d->u.dict.idx[h] = (uint32_t)(i + 1);
    }
}

static long dict_find(const tpl_value *d, const char *key)
{
    size_t i;

    if (d->u.dict.idx) {
        size_t cap = d->u.dict.idxcap, h = hash_str(key) & (cap - 1);
        while (d->u.dict.idx[h]) {
            i = d->u.dict.idx[h] - 1;
            if (strcmp(d->u.dict.keys[i], key) == 0)
                return (long)i;
            h = (h + 1) & (cap - 1);
        }
        return -1;
    }
    for (i = 0; i < d->u.dict.len; i++)
        if (strcmp(d->u.dict.keys[i], key) == 0)
            return (long)i;
    return -1;
}

size_t tpl_dict_len(const tpl_value *dict)
{
    return dict && dict->type == TPL_DICT ? dict->u.dict.len : 0;
}

void tpl_list_set_attr(tpl_value *list, const char *name, tpl_value *v)
{
    if (!list || list->type != TPL_LIST) {
        tpl_unref(v);
        return;
    }
    if (!list->attrs)
        list->attrs = tpl_dict_new();
    tpl_dict_set(list->attrs, name, v);
}

tpl_value *tpli_attr(const tpl_value *obj, const char *name)
{
    if (obj && obj->type == TPL_LIST)
        return tpl_dict_get(obj->attrs, name);
    return tpl_dict_get(obj, name);
}

tpl_value *tpl_dict_get(const tpl_value *dict, const char *key)
{
    long i;

    if (!dict || dict->type != TPL_DICT)
        return NULL;
    i = dict_find(dict, key);
    return i < 0 ? NULL : dict->u.dict.vals[i];
}

void tpl_dict_set(tpl_value *dict, const char *key, tpl_value *v)
{
    long i;
    size_t n;

    if (!dict || dict->type != TPL_DICT) {
        tpl_unref(v);
        return;
    }
    i = dict_find(dict, key);
    if (i >= 0) {
        tpl_unref(dict->u.dict.vals[i]);
        dict->u.dict.vals[i] = v;
        return;
    }
    n = dict->u.dict.len;
    if (n == dict->u.dict.cap) {
        dict->u.dict.cap = n ? n * 2 : 4;
        dict->u.dict.keys = xrealloc(dict->u.dict.keys, dict->u.dict.cap * sizeof(char *));
        dict->u.dict.vals = xrealloc(dict->u.dict.vals, dict->u.dict.cap * sizeof(tpl_value *));
    }
    dict->u.dict.keys[n] = xstrndup(key, strlen(key));
    dict->u.dict.vals[n] = v;
    dict->u.dict.len = n + 1;
    if (dict->u.dict.idx && (n + 1) * 2 <= dict->u.dict.idxcap) {
        size_t cap = dict->u.dict.idxcap, h = hash_str(key) & (cap - 1);
        while (dict->u.dict.idx[h])
            h = (h + 1) & (cap - 1);
        dict->u.dict.idx[h] = (uint32_t)(n + 1);
    } else if (n + 1 >= 8) {
        dict_reindex(dict);
    }
}

bool tpli_dict_del(tpl_value *dict, const char *key)
{
    long i = dict && dict->type == TPL_DICT ? dict_find(dict, key) : -1;
    size_t n;

    if (i < 0)
        return false;
    n = dict->u.dict.len;
    free(dict->u.dict.keys[i]);
    tpl_unref(dict->u.dict.vals[i]);
    memmove(dict->u.dict.keys + i, dict->u.dict.keys + i + 1, (n - (size_t)i - 1) * sizeof(char *));
    memmove(dict->u.dict.vals + i, dict->u.dict.vals + i + 1,
            (n - (size_t)i - 1) * sizeof(tpl_value *));
    dict->u.dict.len = n - 1;
    dict_reindex(dict);
    return true;
}

const char *tpl_dict_key_at(const tpl_value *dict, size_t i)
{
    if (!dict || dict->type != TPL_DICT || i >= dict->u.dict.len)
        return NULL;
    return dict->u.dict.keys[i];
}

tpl_value *tpl_dict_value_at(const tpl_value *dict, size_t i)
{
    if (!dict || dict->type != TPL_DICT || i >= dict->u.dict.len)
        return NULL;
    return dict->u.dict.vals[i];
}

/* ---- text forms ---- */

/* Python's repr of a float: the shortest digits that read back exactly,
 * positional between 1e-4 and 1e16, always with a '.' or an exponent. */
static bool put_float(double d, buf *out)
{
    char tmp[64];
    int p, exp = 0;

    if (isnan(d))
        return buf_puts(out, "nan");
    if (isinf(d))
        return buf_puts(out, d < 0 ? "-inf" : "inf");
    for (p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    if (p > 17)
        p = 17;
    exp = atoi(strchr(tmp, 'e') + 1);
    if (exp >= -4 && exp < 16) {
        int digits = p - 1 - exp;
        snprintf(tmp, sizeof(tmp), "%.*f", digits > 0 ? digits : 0, d);
        if (!strchr(tmp, '.'))
            strcat(tmp, ".0");
        return buf_puts(out, tmp);
    }
    return buf_puts(out, tmp);
}

static bool repr_str(const char *s, size_t n, buf *out)
{
    char q = memchr(s, '\'', n) && !memchr(s, '"', n) ? '"' : '\'';
    size_t i;

    buf_putc(out, q);
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\\' || ch == (unsigned char)q) {
            buf_putc(out, '\\');
            buf_putc(out, (char)ch);
        } else if (ch == '\n') {
            buf_puts(out, "\\n");
        } else if (ch == '\t') {
            buf_puts(out, "\\t");
        } else if (ch == '\r') {
            buf_puts(out, "\\r");
        } else if (ch < 0x20 || ch == 0x7f) {
            buf_printf(out, "\\x%02x", ch);
        } else {
            buf_putc(out, (char)ch);
        }
    }
    return buf_putc(out, q);
}

static bool text_or_repr(const tpl_value *v, buf *out, bool repr, int depth)
{
    size_t i;

    if (!v)
        return buf_ok(out);
    if (depth > REPR_DEPTH)
        return buf_puts(out, "...");
    switch (v->type) {
    case TPL_NONE:
        if (v->flags & VF_UNDEF)
            return repr ? buf_puts(out, "Undefined") : buf_ok(out);
        return buf_puts(out, "None");
    case TPL_BOOL:
        return buf_puts(out, v->u.b ? "True" : "False");
    case TPL_INT:
        return buf_printf(out, "%lld", v->u.i);
    case TPL_FLOAT:
        return put_float(v->u.d, out);
    case TPL_STR:
        if (repr)
            return repr_str(v->u.str.s, v->u.str.len, out);
        return buf_append(out, v->u.str.s, v->u.str.len);
    case TPL_LIST: {
        bool tuple = v->flags & VF_TUPLE;
        buf_putc(out, tuple ? '(' : '[');
        for (i = 0; i < v->u.list.len; i++) {
            if (i)
                buf_puts(out, ", ");
            text_or_repr(v->u.list.items[i], out, true, depth + 1);
        }
        if (tuple && v->u.list.len == 1)
            buf_putc(out, ',');
        return buf_putc(out, tuple ? ')' : ']');
    }
    case TPL_DICT:
        if (v->flags & VF_OBJECT)
            return buf_puts(out, v->u.dict.display);
        buf_putc(out, '{');
        for (i = 0; i < v->u.dict.len; i++) {
            if (i)
                buf_puts(out, ", ");
            repr_str(v->u.dict.keys[i], strlen(v->u.dict.keys[i]), out);
            buf_puts(out, ": ");
            text_or_repr(v->u.dict.vals[i], out, true, depth + 1);
        }
        return buf_putc(out, '}');
    case TPL_FUNC:
        return buf_printf(out, "<function %s>", v->u.fn.name);
    default:
        return buf_ok(out);
    }
}

bool tpl_to_text(const tpl_value *v, buf *out)
{
    return text_or_repr(v, out, false, 0);
}

bool tpli_repr(const tpl_value *v, buf *out)
{
    return text_or_repr(v, out, true, 0);
}

tpl_value *tpli_to_str(tpl_value *v)
{
    buf b;

    if (v && v->type == TPL_STR)
        return tpl_ref(v);
    buf_init(&b, 0);
    tpl_to_text(v, &b);
    if (!b.data)
        return tpl_strn("", 0);
    {
        size_t n = b.len;
        return tpli_str_take(buf_steal(&b), n);
    }
}

static bool json_str(const char *s, size_t n, buf *out)
{
    size_t i;

    buf_putc(out, '"');
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '"':
            buf_puts(out, "\\\"");
            break;
        case '\\':
            buf_puts(out, "\\\\");
            break;
        case '\n':
            buf_puts(out, "\\n");
            break;
        case '\r':
            buf_puts(out, "\\r");
            break;
        case '\t':
            buf_puts(out, "\\t");
            break;
        case '<':
        case '>':
        case '&':
        case '\'':
            /* Jinja's tojson is HTML-safe */
            buf_printf(out, "\\u%04x", ch);
            break;
        default:
            if (ch < 0x20)
                buf_printf(out, "\\u%04x", ch);
            else
                buf_putc(out, (char)ch);
        }
    }
    return buf_putc(out, '"');
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(**(char *const *const *)a, **(char *const *const *)b);
}

/* JSON like Python's json.dumps(sort_keys=True) as Jinja's tojson does */
bool tpli_to_json(const tpl_value *v, buf *out, int depth)
{
    size_t i;

    if (depth > REPR_DEPTH)
        return buf_puts(out, "null");
    switch (tpl_typeof(v)) {
    case TPL_NONE:
        return buf_puts(out, "null");
    case TPL_BOOL:
        return buf_puts(out, v->u.b ? "true" : "false");
    case TPL_INT:
        return buf_printf(out, "%lld", v->u.i);
    case TPL_FLOAT:
        if (isnan(v->u.d) || isinf(v->u.d))
            return buf_puts(out, isnan(v->u.d) ? "NaN" : v->u.d < 0 ? "-Infinity" : "Infinity");
        return put_float(v->u.d, out);
    case TPL_STR:
        return json_str(v->u.str.s, v->u.str.len, out);
    case TPL_LIST:
        buf_putc(out, '[');
        for (i = 0; i < v->u.list.len; i++) {
            if (i)
                buf_puts(out, ", ");
            tpli_to_json(v->u.list.items[i], out, depth + 1);
        }
        return buf_putc(out, ']');
    case TPL_DICT: {
        size_t n = v->u.dict.len;
        char **order;
        if (v->flags & VF_OBJECT)
            return json_str(v->u.dict.display, strlen(v->u.dict.display), out);
        order = xmalloc((n ? n : 1) * sizeof(char *));
        for (i = 0; i < n; i++)
            order[i] = (char *)&v->u.dict.keys[i];
        qsort(order, n, sizeof(char *), cmp_keys);
        buf_putc(out, '{');
        for (i = 0; i < n; i++) {
            char **kp = (char **)order[i];
            size_t at = (size_t)(kp - v->u.dict.keys);
            if (i)
                buf_puts(out, ", ");
            json_str(*kp, strlen(*kp), out);
            buf_puts(out, ": ");
            tpli_to_json(v->u.dict.vals[at], out, depth + 1);
        }
        free(order);
        return buf_putc(out, '}');
    }
    default:
        return buf_puts(out, "null");
    }
}

/* ---- comparison ---- */

static bool is_num(const tpl_value *v)
{
    return v && (v->type == TPL_INT || v->type == TPL_FLOAT || v->type == TPL_BOOL);
}

static bool equal_depth(const tpl_value *a, const tpl_value *b, int depth)
{
    size_t i;

    if (a == b)
        return true;
    if (depth > REPR_DEPTH)
        return false;
    if (is_num(a) && is_num(b)) {
        if (a->type != TPL_FLOAT && b->type != TPL_FLOAT)
            return tpl_as_int(a) == tpl_as_int(b);
        return tpl_as_float(a) == tpl_as_float(b);
    }
    if (tpl_typeof(a) != tpl_typeof(b))
        return false;
    switch (a->type) {
    case TPL_NONE:
        return tpli_is_undef(a) == tpli_is_undef(b);
    case TPL_STR:
        return a->u.str.len == b->u.str.len && memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
    case TPL_LIST:
        if (a->u.list.len != b->u.list.len)
            return false;
        for (i = 0; i < a->u.list.len; i++)
            if (!equal_depth(a->u.list.items[i], b->u.list.items[i], depth + 1))
                return false;
        return true;
    case TPL_DICT:
        if ((a->flags & VF_OBJECT) || (b->flags & VF_OBJECT))
            return (a->flags & VF_OBJECT) && (b->flags & VF_OBJECT) &&
                   strcmp(a->u.dict.display, b->u.dict.display) == 0;
        if (a->u.dict.len != b->u.dict.len)
            return false;
        for (i = 0; i < a->u.dict.len; i++) {
            tpl_value *o = tpl_dict_get(b, a->u.dict.keys[i]);
            if (!o || !equal_depth(a->u.dict.vals[i], o, depth + 1))
                return false;
        }
        return true;
    default:
        return false;
    }
}

bool tpli_equal(const tpl_value *a, const tpl_value *b)
{
    return equal_depth(a, b, 0);
}

bool tpli_compare(const tpl_value *a, const tpl_value *b, int *cmp)
{
    size_t i;

    if (is_num(a) && is_num(b)) {
        if (a->type != TPL_FLOAT && b->type != TPL_FLOAT) {
            long long x = tpl_as_int(a), y = tpl_as_int(b);
            *cmp = x < y ? -1 : x > y;
        } else {
            double x = tpl_as_float(a), y = tpl_as_float(b);
            *cmp = x < y ? -1 : x > y;
        }
        return true;
    }
    if (tpl_typeof(a) == TPL_STR && tpl_typeof(b) == TPL_STR) {
        int r = strcmp(a->u.str.s, b->u.str.s);
        *cmp = r < 0 ? -1 : r > 0;
        return true;
    }
    if (tpl_typeof(a) == TPL_LIST && tpl_typeof(b) == TPL_LIST) {
        for (i = 0; i < a->u.list.len && i < b->u.list.len; i++) {
            if (!tpli_compare(a->u.list.items[i], b->u.list.items[i], cmp))
                return false;
            if (*cmp)
                return true;
        }
        *cmp = a->u.list.len < b->u.list.len ? -1 : a->u.list.len > b->u.list.len;
        return true;
    }
    return false;
}
