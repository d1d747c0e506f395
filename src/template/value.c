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
#include "common/hex.h"
#include "template/internal.h"

#include <ctype.h>
#include <errno.h>
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

tpl_value *tpli_undef_soft(const char *name)
{
    tpl_value *v = tpli_undef(name);
    v->flags |= VF_SOFT;
    return v;
}

bool tpli_is_strict_undef(const tpl_value *v)
{
    return tpli_is_undef(v) && !(v->flags & VF_SOFT);
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

/* frees one value whose count reached zero; its children whose count
 * reaches zero too are pushed on *stack instead of recursed into, so a
 * value nested 100,000 deep is freed without deep recursion */
static void free_one(tpl_value *v, tpl_value ***stack, size_t *n, size_t *cap)
{
    size_t i;
    tpl_value *kids[1];
    tpl_value **list = NULL;
    size_t nlist = 0;

    switch (v->type) {
    case TPL_NONE:
    case TPL_STR:
        free(v->u.str.s);
        break;
    case TPL_LIST:
        list = v->u.list.items;
        nlist = v->u.list.len;
        break;
    case TPL_DICT:
        for (i = 0; i < v->u.dict.len; i++)
            free(v->u.dict.keys[i]);
        free(v->u.dict.keys);
        free(v->u.dict.idx);
        free(v->u.dict.display);
        list = v->u.dict.vals;
        nlist = v->u.dict.len;
        break;
    case TPL_FUNC:
        free(v->u.fn.name);
        break;
    default:
        break;
    }
    kids[0] = v->attrs;
    for (i = 0; i <= nlist; i++) {
        tpl_value *k = i < nlist ? list[i] : kids[0];
        if (!k || k->refs < 0 || --k->refs > 0)
            continue;
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 16;
            *stack = xrealloc(*stack, *cap * sizeof(**stack));
        }
        (*stack)[(*n)++] = k;
    }
    free(list);
    free(v);
}

void tpl_unref(tpl_value *v)
{
    tpl_value **stack = NULL;
    size_t n = 0, cap = 0;

    if (!v || v->refs < 0 || --v->refs > 0)
        return;
    free_one(v, &stack, &n, &cap);
    while (n)
        free_one(stack[--n], &stack, &n, &cap);
    free(stack);
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

/* ---- reachability (cycle refusal) ---- */

int tpli_reaches(const tpl_value *v, const tpl_value *target, size_t *budget)
{
    tpl_value **todo = NULL, **seen = NULL;
    size_t ntodo = 0, captodo = 0, nseen = 0, capseen = 0, i;
    int found = 0;

    if (!v || !target || (target->type != TPL_LIST && target->type != TPL_DICT))
        return 0;
    /* a container never stored in another one is reachable only as itself:
     * the common case (a namespace, a list of rows) costs no walk */
    if (!(target->flags & VF_NESTED))
        return v == target;
#define PUSH(arr, n, cap, x)                                                                       \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            (cap) = (cap) ? (cap)*2 : 16;                                                          \
            (arr) = xrealloc((arr), (cap) * sizeof(*(arr)));                                       \
        }                                                                                          \
        (arr)[(n)++] = (x);                                                                        \
    } while (0)
    PUSH(todo, ntodo, captodo, (tpl_value *)v);
    while (ntodo && !found) {
        tpl_value *x = todo[--ntodo];
        tpl_value **kids = NULL;
        size_t nk = 0;
        if (x == target) {
            found = 1;
            break;
        }
        if ((x->type != TPL_LIST && x->type != TPL_DICT) || (x->flags & VF_MARK))
            continue;
        nk = x->type == TPL_LIST ? x->u.list.len : x->u.dict.len;
        if (*budget <= nk) {
            found = -1;
            break;
        }
        *budget -= nk + 1;
        x->flags |= VF_MARK; /* each container once: shared values are not re-walked */
        PUSH(seen, nseen, capseen, x);
        if (x->type == TPL_LIST) {
            kids = x->u.list.items;
            nk = x->u.list.len;
            if (x->attrs)
                PUSH(todo, ntodo, captodo, x->attrs);
        } else {
            kids = x->u.dict.vals;
            nk = x->u.dict.len;
        }
        for (i = 0; i < nk; i++)
            if (kids[i]->type == TPL_LIST || kids[i]->type == TPL_DICT)
                PUSH(todo, ntodo, captodo, kids[i]);
    }
#undef PUSH
    for (i = 0; i < nseen; i++)
        seen[i]->flags &= (unsigned char)~VF_MARK;
    free(todo);
    free(seen);
    return found;
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
    if (item && (item->type == TPL_LIST || item->type == TPL_DICT) && item->refs > 0)
        item->flags |= VF_NESTED;
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
    if (obj && (obj->type == TPL_LIST || obj->type == TPL_FUNC)) /* modules.datetime.datetime.now */
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

static void dict_put(tpl_value *dict, const char *key, tpl_value *v, bool nest)
{
    long i;
    size_t n;

    if (!dict || dict->type != TPL_DICT) {
        tpl_unref(v);
        return;
    }
    if (nest && v && (v->type == TPL_LIST || v->type == TPL_DICT) && v->refs > 0)
        v->flags |= VF_NESTED;
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

void tpl_dict_set(tpl_value *dict, const char *key, tpl_value *v)
{
    dict_put(dict, key, v, true);
}

void tpli_scope_set(tpl_value *vars, const char *key, tpl_value *v)
{
    dict_put(vars, key, v, false);
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

static bool json_str(const char *s, size_t n, buf *out, bool html)
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
            if (html) {
                buf_printf(out, "\\u%04x", ch);
                break;
            }
            /* fall through */
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

/* JSON like Python's json.dumps: sorted and HTML-safe as Jinja's tojson
 * filter (jinja true), or in insertion order as dbt's tojson() */
static bool to_json(const tpl_value *v, buf *out, int depth, bool jinja)
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
        return json_str(v->u.str.s, v->u.str.len, out, jinja);
    case TPL_LIST:
        buf_putc(out, '[');
        for (i = 0; i < v->u.list.len; i++) {
            if (i)
                buf_puts(out, ", ");
            to_json(v->u.list.items[i], out, depth + 1, jinja);
        }
        return buf_putc(out, ']');
    case TPL_DICT: {
        size_t n = v->u.dict.len;
        char **order;
        if (v->flags & VF_OBJECT)
            return json_str(v->u.dict.display, strlen(v->u.dict.display), out, jinja);
        order = xmalloc((n ? n : 1) * sizeof(char *));
        for (i = 0; i < n; i++)
            order[i] = (char *)&v->u.dict.keys[i];
        if (jinja)
            qsort(order, n, sizeof(char *), cmp_keys);
        buf_putc(out, '{');
        for (i = 0; i < n; i++) {
            char **kp = (char **)order[i];
            size_t at = (size_t)(kp - v->u.dict.keys);
            if (i)
                buf_puts(out, ", ");
            json_str(*kp, strlen(*kp), out, jinja);
            buf_puts(out, ": ");
            to_json(v->u.dict.vals[at], out, depth + 1, jinja);
        }
        free(order);
        return buf_putc(out, '}');
    }
    default:
        return buf_puts(out, "null");
    }
}

bool tpli_to_json(const tpl_value *v, buf *out, int depth)
{
    return to_json(v, out, depth, true);
}

bool tpli_to_json_plain(const tpl_value *v, buf *out)
{
    return to_json(v, out, 0, false);
}

/* ---- JSON in (fromjson) ---- */

typedef struct {
    const char *p, *e;
} jsrc;

static void js_ws(jsrc *j)
{
    while (j->p < j->e && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static bool js_lit(jsrc *j, const char *w)
{
    size_t n = strlen(w);

    if ((size_t)(j->e - j->p) < n || memcmp(j->p, w, n) != 0)
        return false;
    j->p += n;
    return true;
}

static int js_hex4(jsrc *j)
{
    int v = 0, k;

    if (j->e - j->p < 4)
        return -1;
    for (k = 0; k < 4; k++) {
        int h = hex_value((unsigned char)j->p[k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    j->p += 4;
    return v;
}

static void put_utf8(buf *b, unsigned long cp)
{
    if (cp < 0x80) {
        buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        buf_putc(b, (char)(0xc0 | (cp >> 6)));
        buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        buf_putc(b, (char)(0xe0 | (cp >> 12)));
        buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
        buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    } else {
        buf_putc(b, (char)(0xf0 | (cp >> 18)));
        buf_putc(b, (char)(0x80 | ((cp >> 12) & 0x3f)));
        buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
        buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    }
}

/* a string after its opening quote, into b */
static bool js_string(jsrc *j, buf *b)
{
    while (j->p < j->e && *j->p != '"') {
        unsigned char ch = (unsigned char)*j->p++;
        if (ch < 0x20)
            return false;
        if (ch != '\\') {
            buf_putc(b, (char)ch);
            continue;
        }
        if (j->p >= j->e)
            return false;
        switch (*j->p++) {
        case '"':
            buf_putc(b, '"');
            break;
        case '\\':
            buf_putc(b, '\\');
            break;
        case '/':
            buf_putc(b, '/');
            break;
        case 'b':
            buf_putc(b, '\b');
            break;
        case 'f':
            buf_putc(b, '\f');
            break;
        case 'n':
            buf_putc(b, '\n');
            break;
        case 'r':
            buf_putc(b, '\r');
            break;
        case 't':
            buf_putc(b, '\t');
            break;
        case 'u': {
            int hi = js_hex4(j), lo;
            if (hi < 0)
                return false;
            if (hi >= 0xd800 && hi < 0xdc00 && j->e - j->p >= 6 && j->p[0] == '\\' &&
                j->p[1] == 'u') {
                j->p += 2;
                if ((lo = js_hex4(j)) < 0xdc00 || lo >= 0xe000)
                    return false;
                put_utf8(b, 0x10000 + (((unsigned long)hi - 0xd800) << 10) +
                                ((unsigned long)lo - 0xdc00));
            } else {
                put_utf8(b, (unsigned long)hi);
            }
            break;
        }
        default:
            return false;
        }
    }
    if (j->p >= j->e)
        return false;
    j->p++;
    return buf_ok(b);
}

static tpl_value *buf_to_str(buf *b)
{
    size_t n = b->len;

    if (!b->data)
        return tpl_strn("", 0);
    return tpli_str_take(buf_steal(b), n);
}

/* a JSON number: an int when it has no fraction or exponent and fits */
static tpl_value *js_number(jsrc *j)
{
    const char *st = j->p;
    char tmp[64], *end;
    bool isf = false;
    size_t k;
    long long i;

    if (j->p < j->e && *j->p == '-')
        j->p++;
    if (j->p >= j->e || !isdigit((unsigned char)*j->p))
        return NULL;
    while (j->p < j->e && (isdigit((unsigned char)*j->p) || strchr(".eE+-", *j->p))) {
        isf |= *j->p == '.' || *j->p == 'e' || *j->p == 'E';
        j->p++;
    }
    k = (size_t)(j->p - st);
    if (k >= sizeof(tmp))
        return NULL;
    memcpy(tmp, st, k);
    tmp[k] = '\0';
    errno = 0;
    if (!isf) {
        i = strtoll(tmp, &end, 10);
        if (*end == '\0' && errno == 0)
            return tpl_int(i);
    }
    {
        double d = strtod(tmp, &end);
        if (*end != '\0')
            return NULL;
        return tpl_float(d);
    }
}

static tpl_value *js_value(jsrc *j, int depth)
{
    tpl_value *v = NULL, *x;
    buf b;

    js_ws(j);
    if (j->p >= j->e || depth > REPR_DEPTH)
        return NULL;
    switch (*j->p) {
    case '{':
        j->p++;
        v = tpl_dict_new();
        js_ws(j);
        if (j->p < j->e && *j->p == '}') {
            j->p++;
            return v;
        }
        for (;;) {
            js_ws(j);
            buf_init(&b, 0);
            if (j->p >= j->e || *j->p++ != '"' || !js_string(j, &b)) {
                buf_free(&b);
                goto error;
            }
            js_ws(j);
            if (j->p >= j->e || *j->p++ != ':' || !(x = js_value(j, depth + 1))) {
                buf_free(&b);
                goto error;
            }
            tpl_dict_set(v, b.data ? b.data : "", x);
            buf_free(&b);
            js_ws(j);
            if (j->p < j->e && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->e && *j->p == '}') {
                j->p++;
                return v;
            }
            goto error;
        }
    case '[':
        j->p++;
        v = tpl_list_new();
        js_ws(j);
        if (j->p < j->e && *j->p == ']') {
            j->p++;
            return v;
        }
        for (;;) {
            if (!(x = js_value(j, depth + 1)))
                goto error;
            tpl_list_push(v, x);
            js_ws(j);
            if (j->p < j->e && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->e && *j->p == ']') {
                j->p++;
                return v;
            }
            goto error;
        }
    case '"':
        j->p++;
        buf_init(&b, 0);
        if (!js_string(j, &b)) {
            buf_free(&b);
            return NULL;
        }
        return buf_to_str(&b);
    default:
        if (js_lit(j, "true"))
            return tpl_bool(true);
        if (js_lit(j, "false"))
            return tpl_bool(false);
        if (js_lit(j, "null"))
            return tpl_none();
        return js_number(j);
    }
error:
    tpl_unref(v);
    return NULL;
}

tpl_value *tpli_from_json(const char *s, size_t n)
{
    jsrc j = {s, s + n};
    tpl_value *v = js_value(&j, 0);

    js_ws(&j);
    if (v && j.p != j.e) {
        tpl_unref(v);
        return NULL;
    }
    return v;
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

static bool compare_depth(const tpl_value *a, const tpl_value *b, int *cmp, int depth)
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
    if (tpl_typeof(a) == TPL_DICT && tpl_typeof(b) == TPL_DICT && (a->flags & VF_OBJECT) &&
        (b->flags & VF_OBJECT) && a->okind == b->okind) {
        if (a->okind == OK_DATE || a->okind == OK_DATETIME) { /* ISO text sorts by time */
            int r = strcmp(a->u.dict.display, b->u.dict.display);
            *cmp = r < 0 ? -1 : r > 0;
            return true;
        }
        if (a->okind == OK_TIMEDELTA) {
            static const char *const f[] = {"days", "seconds", "microseconds"};
            for (i = 0; i < 3; i++) {
                long long x = tpl_as_int(tpl_dict_get(a, f[i])),
                          y = tpl_as_int(tpl_dict_get(b, f[i]));
                if (x != y) {
                    *cmp = x < y ? -1 : 1;
                    return true;
                }
            }
            *cmp = 0;
            return true;
        }
    }
    if (tpl_typeof(a) == TPL_LIST && tpl_typeof(b) == TPL_LIST) {
        for (i = 0; i < a->u.list.len && i < b->u.list.len; i++) {
            if (depth >= REPR_DEPTH ||
                !compare_depth(a->u.list.items[i], b->u.list.items[i], cmp, depth + 1))
                return false;
            if (*cmp)
                return true;
        }
        *cmp = a->u.list.len < b->u.list.len ? -1 : a->u.list.len > b->u.list.len;
        return true;
    }
    return false;
}

bool tpli_compare(const tpl_value *a, const tpl_value *b, int *cmp)
{
    return compare_depth(a, b, cmp, 0);
}
