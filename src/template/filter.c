/*
 * filter.c - the library around the evaluator: filters (x | f), tests
 * (x is t), methods of strings, lists and dicts (x.upper(), l.append(y),
 * d.items()), and the built-in globals range, namespace, dict, zip (return()
 * is the evaluator's: it unwinds macros).
 *
 * Filters and tests are looked up by name at compile time (the parser keeps
 * the table index), so an unknown one is a compile error; map('f') and
 * selectattr('a', 't') look them up at render time.  Every function takes
 * its input borrowed and returns a new reference in *out.
 */
#include "template/ctx.h"
#include "template/filter.h"
#include "template/modules.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tpli_ctx ctx;

#define ARG(i, name) tpl_arg(a, (i), (name))

static int filter_by_name(ctx *c, const tpli_node *n, const char *name, tpl_value *v,
                          const tpl_args *a, tpl_value **out);
static int test_by_name(ctx *c, const tpli_node *n, const char *name, tpl_value *v,
                        const tpl_args *a, bool *out);

/* a tpl_args without its first `skip` positional arguments */
static tpl_args args_shift(const tpl_args *a, size_t skip)
{
    tpl_args r = *a;

    if (skip > r.npos)
        skip = r.npos;
    r.npos -= skip;
    r.pos += skip;
    return r;
}

static tpl_value *str_of(tpl_value *v)
{
    return tpli_to_str(v);
}

static tpl_value *buf_value(buf *b)
{
    size_t n = b->len;

    if (!b->data)
        return tpl_strn("", 0);
    return tpli_str_take(buf_steal(b), n);
}

/* attribute path "a.b.0" of v (borrowed result, NULL when absent) */
static tpl_value *get_path(tpl_value *v, const char *path)
{
    char part[256];

    while (v && *path) {
        size_t k = strcspn(path, ".");
        if (k >= sizeof(part))
            return NULL;
        memcpy(part, path, k);
        part[k] = '\0';
        path += k + (path[k] == '.');
        if (tpl_typeof(v) == TPL_LIST && isdigit((unsigned char)part[0]))
            v = tpl_list_get(v, (size_t)atoll(part));
        else
            v = tpl_dict_get(v, part);
    }
    return v;
}

/* attribute= of a filter: a path string, or an integer (Jinja's
 * map(attribute=0) takes item 0 of each row); borrowed, NULL when absent */
static tpl_value *get_attr(tpl_value *v, const tpl_value *attr)
{
    char num[32];

    if (tpl_typeof(attr) == TPL_INT) {
        snprintf(num, sizeof(num), "%lld", tpl_as_int(attr));
        if (tpl_typeof(v) == TPL_LIST && tpl_as_int(attr) < 0)
            return NULL;
        return get_path(v, num);
    }
    return get_path(v, tpl_as_str(attr) ? tpl_as_str(attr) : "");
}

static size_t utf8_len(const char *s, size_t n)
{
    size_t i, k = 0;

    for (i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xc0) != 0x80;
    return k;
}

/* ---- filters ---- */

static int f_join(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    tpl_value *items, *sep = ARG(0, "d"), *attr = ARG(1, "attribute");
    size_t i;
    buf b;
    int r;

    if ((r = tpli_iter(c, n, v, &items)) != R_OK)
        return r;
    buf_init(&b, c->outmax);
    for (i = 0; i < items->u.list.len && buf_ok(&b); i++) {
        tpl_value *it = items->u.list.items[i];
        if (i && sep)
            tpl_to_text(sep, &b);
        if (attr && tpl_typeof(attr) != TPL_NONE)
            it = get_attr(it, attr);
        tpl_to_text(it, &b);
    }
    tpl_unref(items);
    if (!buf_ok(&b)) {
        buf_free(&b);
        return tpli_str_fail(c, n);
    }
    *out = buf_value(&b);
    return R_OK;
}

static int f_length(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    switch (tpl_typeof(v)) {
    case TPL_STR:
        *out = tpl_int((long long)utf8_len(v->u.str.s, v->u.str.len));
        return R_OK;
    case TPL_LIST:
        *out = tpl_int((long long)v->u.list.len);
        return R_OK;
    case TPL_DICT:
        *out = tpl_int((long long)v->u.dict.len);
        return R_OK;
    default:
        if (tpli_is_undef(v)) {
            *out = tpl_int(0);
            return R_OK;
        }
        return tpli_fail(c, n, "object of type '%s' has no len()", tpli_type_name(v));
    }
}

static int map_chars(tpl_value *v, int mode, tpl_value **out)
{
    tpl_value *s = str_of(v);
    char *d = xstrndup(s->u.str.s, s->u.str.len);
    size_t i;
    bool start = true;

    for (i = 0; i < s->u.str.len; i++) {
        unsigned char ch = (unsigned char)d[i];
        if (mode == 0)
            d[i] = (char)tolower(ch);
        else if (mode == 1)
            d[i] = (char)toupper(ch);
        else if (mode == 2)
            d[i] = (char)(i == 0 ? toupper(ch) : tolower(ch));
        else {
            d[i] = (char)(start ? toupper(ch) : tolower(ch));
            start = !isalnum(ch);
        }
    }
    *out = tpli_str_take(d, s->u.str.len);
    tpl_unref(s);
    return R_OK;
}

static int f_lower(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    return map_chars(v, 0, out);
}

static int f_upper(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    return map_chars(v, 1, out);
}

static int f_capitalize(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a,
                        tpl_value **out)
{
    return map_chars(v, 2, out);
}

static int f_title(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    return map_chars(v, 3, out);
}

/* strip: which 1 = left, 2 = right, 3 = both; chars NULL = whitespace */
static tpl_value *strip(tpl_value *v, int which, const char *chars)
{
    tpl_value *s = str_of(v);
    size_t st = 0, en = s->u.str.len;
    tpl_value *r;

#define STRIPPABLE(ch) (chars ? strchr(chars, (ch)) != NULL : isspace((unsigned char)(ch)))
    if (which & 1)
        while (st < en && STRIPPABLE(s->u.str.s[st]))
            st++;
    if (which & 2)
        while (en > st && STRIPPABLE(s->u.str.s[en - 1]))
            en--;
#undef STRIPPABLE
    r = tpl_strn(s->u.str.s + st, en - st);
    tpl_unref(s);
    return r;
}

static int f_trim(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    *out = strip(v, 3, tpl_as_str(ARG(0, "chars")));
    return R_OK;
}

static int f_string(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    *out = str_of(v);
    return R_OK;
}

/* s.replace(old, new, count): NULL when the result would pass max bytes */
static tpl_value *replace(tpl_value *v, tpl_value *old, tpl_value *new, long long count, size_t max)
{
    tpl_value *s = str_of(v), *o = str_of(old), *w = str_of(new);
    buf b;
    const char *p = s->u.str.s, *q;

    buf_init(&b, max);
    if (o->u.str.len == 0) {
        buf_append(&b, s->u.str.s, s->u.str.len);
    } else {
        while (count != 0 && buf_ok(&b) && (q = strstr(p, o->u.str.s))) {
            buf_append(&b, p, (size_t)(q - p));
            buf_append(&b, w->u.str.s, w->u.str.len);
            p = q + o->u.str.len;
            count--;
        }
        buf_puts(&b, p);
    }
    tpl_unref(s);
    tpl_unref(o);
    tpl_unref(w);
    if (!buf_ok(&b)) {
        buf_free(&b);
        return NULL;
    }
    return buf_value(&b);
}

static int f_replace(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    tpl_value *old = ARG(0, "old"), *new = ARG(1, "new"), *cnt = ARG(2, "count");

    if (!old || !new)
        return tpli_fail(c, n, "replace() needs two arguments");
    *out = replace(v, old, new, cnt ? tpl_as_int(cnt) : -1, c->outmax);
    return *out ? R_OK : tpli_str_fail(c, n);
}

static int f_default(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    tpl_value *d = ARG(0, "default_value"), *boolean = ARG(1, "boolean");

    if (tpli_is_undef(v) || (boolean && tpl_truthy(boolean) && !tpl_truthy(v)))
        *out = d ? tpl_ref(d) : tpl_strn("", 0);
    else
        *out = tpl_ref(v);
    return R_OK;
}

static int first_last(ctx *c, const tpli_node *n, tpl_value *v, bool last, tpl_value **out)
{
    tpl_value *items;
    int r = tpli_iter(c, n, v, &items);

    if (r != R_OK)
        return r;
    if (items->u.list.len == 0)
        *out = tpli_undef(NULL);
    else
        *out = tpl_ref(items->u.list.items[last ? items->u.list.len - 1 : 0]);
    tpl_unref(items);
    return R_OK;
}

static int f_first(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    return first_last(c, n, v, false, out);
}

static int f_last(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    return first_last(c, n, v, true, out);
}

static int f_map(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    tpl_value *items, *res, *attr = tpl_arg(a, (size_t)-1, "attribute");
    tpl_value *def = tpl_arg(a, (size_t)-1, "default");
    size_t i;
    int r;

    if (!attr && (a->npos == 0 || !tpl_as_str(a->pos[0])))
        return tpli_fail(c, n, "map needs a filter name or attribute=");
    if ((r = tpli_iter(c, n, v, &items)) != R_OK)
        return r;
    res = tpl_list_new();
    for (i = 0; i < items->u.list.len; i++) {
        tpl_value *it = items->u.list.items[i], *m;
        if (attr) {
            m = get_attr(it, attr);
            m = m ? tpl_ref(m) : def ? tpl_ref(def) : tpli_undef(tpl_as_str(attr));
        } else {
            tpl_args rest = args_shift(a, 1);
            if ((r = filter_by_name(c, n, tpl_as_str(a->pos[0]), it, &rest, &m)) != R_OK) {
                tpl_unref(res);
                tpl_unref(items);
                return r;
            }
        }
        tpl_list_push(res, m);
    }
    tpl_unref(items);
    *out = res;
    return R_OK;
}

/* select/reject (attr false) and selectattr/rejectattr (attr true) */
static int select_common(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, bool attr,
                         bool keep, tpl_value **out)
{
    tpl_value *items, *res;
    size_t i, ti = attr ? 1 : 0;
    const char *path = attr && a->npos ? tpl_as_str(a->pos[0]) : NULL;
    const char *test = a->npos > ti ? tpl_as_str(a->pos[ti]) : NULL;
    tpl_args rest = args_shift(a, ti + 1);
    int r;

    if (attr && !path)
        return tpli_fail(c, n, "selectattr needs an attribute name");
    if ((r = tpli_iter(c, n, v, &items)) != R_OK)
        return r;
    res = tpl_list_new();
    for (i = 0; i < items->u.list.len; i++) {
        tpl_value *it = items->u.list.items[i], *x = it, *undef = NULL;
        bool ok;
        if (attr) {
            x = get_path(it, path);
            if (!x)
                x = undef = tpli_undef(path);
        }
        if (test) {
            r = test_by_name(c, n, test, x, &rest, &ok);
        } else {
            ok = tpl_truthy(x);
            r = R_OK;
        }
        tpl_unref(undef);
        if (r != R_OK) {
            tpl_unref(items);
            tpl_unref(res);
            return r;
        }
        if (ok == keep)
            tpl_list_push(res, tpl_ref(it));
    }
    tpl_unref(items);
    *out = res;
    return R_OK;
}

static int f_selectattr(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a,
                        tpl_value **out)
{
    return select_common(c, n, v, a, true, true, out);
}

static int f_rejectattr(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a,
                        tpl_value **out)
{
    return select_common(c, n, v, a, true, false, out);
}

static int f_select(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    return select_common(c, n, v, a, false, true, out);
}

static int f_reject(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    return select_common(c, n, v, a, false, false, out);
}

static int f_list(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    tpl_value *items, *l;
    size_t i;
    int r = tpli_iter(c, n, v, &items);

    if (r != R_OK)
        return r;
    l = tpl_list_new();
    for (i = 0; i < items->u.list.len; i++)
        tpl_list_push(l, tpl_ref(items->u.list.items[i]));
    tpl_unref(items);
    *out = l;
    return R_OK;
}

/* parses a whole string as an int or a float; false when it is not one */
static bool parse_number(const char *s, tpl_value **out)
{
    char *end;
    long long i;
    double d;

    while (isspace((unsigned char)*s))
        s++;
    if (!*s)
        return false;
    i = strtoll(s, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    if (!*end) {
        *out = tpl_int(i);
        return true;
    }
    d = strtod(s, &end);
    while (isspace((unsigned char)*end))
        end++;
    if (!*end) {
        *out = tpl_float(d);
        return true;
    }
    return false;
}

static int f_as_number(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    if (tpl_typeof(v) == TPL_STR && parse_number(v->u.str.s, out))
        return R_OK;
    *out = tpl_ref(v);
    return R_OK;
}

static int f_as_bool(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    *out = tpl_bool(tpl_as_bool(v));
    return R_OK;
}

static int f_identity(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    *out = tpl_ref(v);
    return R_OK;
}

/* int(default) and float(default): numbers convert, numeric strings parse,
 * anything else gives the default (0 or 0.0 when none is given) */
static int to_number(tpl_value *v, tpl_value *d, bool as_float, tpl_value **out)
{
    tpl_value *num = NULL, *from = v;

    switch (tpl_typeof(v)) {
    case TPL_INT:
    case TPL_BOOL:
    case TPL_FLOAT:
        break;
    case TPL_STR:
        if (parse_number(v->u.str.s, &num)) {
            from = num;
            break;
        }
        /* fall through */
    default:
        *out = d ? tpl_ref(d) : as_float ? tpl_float(0.0) : tpl_int(0);
        return R_OK;
    }
    *out = as_float ? tpl_float(tpl_as_float(from)) : tpl_int(tpl_as_int(from));
    tpl_unref(num);
    return R_OK;
}

static int f_int(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    return to_number(v, ARG(0, "default"), false, out);
}

static int f_float(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    return to_number(v, ARG(0, "default"), true, out);
}

static int f_unique(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    tpl_value *items, *l;
    size_t i, j;
    int r = tpli_iter(c, n, v, &items);

    if (r != R_OK)
        return r;
    l = tpl_list_new();
    for (i = 0; i < items->u.list.len; i++) {
        for (j = 0; j < l->u.list.len; j++)
            if (tpli_equal(items->u.list.items[i], l->u.list.items[j]))
                break;
        if (j == l->u.list.len)
            tpl_list_push(l, tpl_ref(items->u.list.items[i]));
    }
    tpl_unref(items);
    *out = l;
    return R_OK;
}

typedef struct {
    tpl_value *key;
    tpl_value *item;
} sort_ent;

static int sort_cmp(const sort_ent *x, const sort_ent *y, bool ci, bool *ok)
{
    int cmp = 0;

    if (ci && tpl_typeof(x->key) == TPL_STR && tpl_typeof(y->key) == TPL_STR) {
        cmp = strcasecmp(x->key->u.str.s, y->key->u.str.s);
        return cmp < 0 ? -1 : cmp > 0;
    }
    if (!tpli_compare(x->key, y->key, &cmp))
        *ok = false;
    return cmp;
}

/* stable merge sort (Jinja's sort is Python's sorted: stable) */
static void merge_sort(sort_ent *e, sort_ent *tmp, size_t n, bool ci, bool rev, bool *ok)
{
    size_t mid = n / 2, i = 0, j = mid, k = 0;

    if (n < 2)
        return;
    merge_sort(e, tmp, mid, ci, rev, ok);
    merge_sort(e + mid, tmp, n - mid, ci, rev, ok);
    while (i < mid && j < n) {
        int cmp = sort_cmp(&e[i], &e[j], ci, ok);
        if (rev ? cmp >= 0 : cmp <= 0)
            tmp[k++] = e[i++];
        else
            tmp[k++] = e[j++];
    }
    while (i < mid)
        tmp[k++] = e[i++];
    while (j < n)
        tmp[k++] = e[j++];
    memcpy(e, tmp, n * sizeof(*e));
}

static int f_sort(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    tpl_value *items, *l, *attr = ARG(2, "attribute");
    bool rev = tpl_truthy(ARG(0, "reverse")), ci = !tpl_truthy(ARG(1, "case_sensitive"));
    bool ok = true;
    sort_ent *e, *tmp;
    size_t i, len;
    int r = tpli_iter(c, n, v, &items);

    if (r != R_OK)
        return r;
    len = items->u.list.len;
    e = xmalloc((len + 1) * sizeof(*e));
    tmp = xmalloc((len + 1) * sizeof(*e));
    for (i = 0; i < len; i++) {
        e[i].item = items->u.list.items[i];
        e[i].key = attr && tpl_typeof(attr) != TPL_NONE ? get_attr(e[i].item, attr) : e[i].item;
        if (!e[i].key)
            e[i].key = tpl_none();
    }
    merge_sort(e, tmp, len, ci, rev, &ok);
    l = tpl_list_new();
    for (i = 0; i < len; i++)
        tpl_list_push(l, tpl_ref(e[i].item));
    free(e);
    free(tmp);
    tpl_unref(items);
    if (!ok) {
        tpl_unref(l);
        return tpli_fail(c, n, "sort: values cannot be compared");
    }
    *out = l;
    return R_OK;
}

static int f_reverse(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    tpl_value *items, *l;
    size_t i;
    int r;

    if (tpl_typeof(v) == TPL_STR) {
        char *d = xmalloc(v->u.str.len + 1);
        for (i = 0; i < v->u.str.len; i++)
            d[i] = v->u.str.s[v->u.str.len - 1 - i];
        d[v->u.str.len] = '\0';
        *out = tpli_str_take(d, v->u.str.len);
        return R_OK;
    }
    if ((r = tpli_iter(c, n, v, &items)) != R_OK)
        return r;
    l = tpl_list_new();
    for (i = items->u.list.len; i > 0; i--)
        tpl_list_push(l, tpl_ref(items->u.list.items[i - 1]));
    tpl_unref(items);
    *out = l;
    return R_OK;
}

static int f_tojson(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    buf b;

    buf_init(&b, c->outmax);
    if (!tpli_to_json(v, &b, 0) || !buf_ok(&b)) {
        buf_free(&b);
        return tpli_str_fail(c, n);
    }
    *out = buf_value(&b);
    return R_OK;
}

static int f_abs(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    if (tpl_typeof(v) == TPL_FLOAT)
        *out = tpl_float(fabs(v->u.d));
    else if (tpl_typeof(v) == TPL_INT && v->u.i != -0x7fffffffffffffffLL - 1)
        *out = tpl_int(v->u.i < 0 ? -v->u.i : v->u.i);
    else if (tpl_typeof(v) == TPL_BOOL)
        *out = tpl_int(v->u.b);
    else
        return tpli_fail(c, n, "bad operand type for abs(): '%s'", tpli_type_name(v));
    return R_OK;
}

/* Jinja's round: 'common' is Python's round (half to even), always a float */
static int f_round(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    long long prec = ARG(0, "precision") ? tpl_as_int(ARG(0, "precision")) : 0;
    const char *method = tpl_as_str(ARG(1, "method"));
    double x = tpl_as_float(v), m;

    if (prec < 0 || prec > 15)
        prec = prec < 0 ? 0 : 15;
    m = pow(10, (double)prec);
    if (method && strcmp(method, "ceil") == 0)
        x = ceil(x * m) / m;
    else if (method && strcmp(method, "floor") == 0)
        x = floor(x * m) / m;
    else
        x = nearbyint(x * m) / m;
    *out = tpl_float(x);
    return R_OK;
}

static int f_batch(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    long long size = tpl_as_int(ARG(0, "linecount"));
    tpl_value *fill = ARG(1, "fill_with"), *items, *res, *cur = NULL;
    size_t i;
    int r;

    if (size <= 0)
        return tpli_fail(c, n, "batch size must be positive");
    if ((r = tpli_iter(c, n, v, &items)) != R_OK)
        return r;
    res = tpl_list_new();
    for (i = 0; i < items->u.list.len; i++) {
        if (!cur)
            cur = tpl_list_new();
        tpl_list_push(cur, tpl_ref(items->u.list.items[i]));
        if ((long long)cur->u.list.len == size) {
            tpl_list_push(res, cur);
            cur = NULL;
        }
    }
    if (cur) {
        while (fill && (long long)cur->u.list.len < size)
            tpl_list_push(cur, tpl_ref(fill));
        tpl_list_push(res, cur);
    }
    tpl_unref(items);
    *out = res;
    return R_OK;
}

static tpl_value *dict_items(tpl_value *d)
{
    tpl_value *l = tpl_list_new();
    size_t i;

    for (i = 0; i < tpl_dict_len(d); i++) {
        tpl_value *t = tpli_tuple_new();
        tpl_list_push(t, tpl_str(d->u.dict.keys[i]));
        tpl_list_push(t, tpl_ref(d->u.dict.vals[i]));
        tpl_list_push(l, t);
    }
    return l;
}

static int f_items(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    if (tpl_typeof(v) != TPL_DICT && !tpli_is_undef(v))
        return tpli_fail(c, n, "items: expected a mapping, got '%s'", tpli_type_name(v));
    *out = dict_items(v);
    return R_OK;
}

static int f_sum(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    tpl_value *items, *attr = ARG(0, "attribute"), *start = ARG(1, "start");
    long long si = start ? tpl_as_int(start) : 0;
    double sd = start ? tpl_as_float(start) : 0;
    bool isf = tpl_typeof(start) == TPL_FLOAT;
    size_t i;
    int r = tpli_iter(c, n, v, &items);

    if (r != R_OK)
        return r;
    for (i = 0; i < items->u.list.len; i++) {
        tpl_value *x = items->u.list.items[i];
        if (tpl_as_str(attr))
            x = get_attr(x, attr);
        if (tpl_typeof(x) == TPL_FLOAT)
            isf = true;
        si += tpl_as_int(x);
        sd += tpl_as_float(x);
    }
    tpl_unref(items);
    *out = isf ? tpl_float(sd) : tpl_int(si);
    return R_OK;
}

static int min_max(ctx *c, const tpli_node *n, tpl_value *v, bool max, tpl_value **out)
{
    tpl_value *items, *best = NULL;
    size_t i;
    int cmp, r = tpli_iter(c, n, v, &items);

    if (r != R_OK)
        return r;
    for (i = 0; i < items->u.list.len; i++) {
        tpl_value *x = items->u.list.items[i];
        if (!best) {
            best = x;
            continue;
        }
        if (!tpli_compare(x, best, &cmp)) {
            tpl_unref(items);
            return tpli_fail(c, n, "values cannot be compared");
        }
        if (max ? cmp > 0 : cmp < 0)
            best = x;
    }
    *out = best ? tpl_ref(best) : tpli_undef(NULL);
    tpl_unref(items);
    return R_OK;
}

static int f_min(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    return min_max(c, n, v, false, out);
}

static int f_max(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    return min_max(c, n, v, true, out);
}

/* "%s and %d" % args: the printf subset templates use (%s %d %i %f %r %%) */
static int f_format(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    tpl_value *fmt = str_of(v);
    const char *p = fmt->u.str.s;
    size_t ai = 0;
    buf b;

    buf_init(&b, c->outmax);
    for (; *p; p++) {
        char spec[32];
        size_t k = 0;
        tpl_value *x;
        if (*p != '%') {
            buf_putc(&b, *p);
            continue;
        }
        spec[k++] = *p++;
        while (*p && strchr("-+ #0123456789.", *p) && k < sizeof(spec) - 3)
            spec[k++] = *p++;
        if (*p == '%') {
            buf_putc(&b, '%');
            continue;
        }
        if (!*p || !strchr("sdifr", *p) || ai >= a->npos) {
            buf_free(&b);
            tpl_unref(fmt);
            return tpli_fail(c, n, "format: bad format string or too few arguments");
        }
        x = a->pos[ai++];
        if (*p == 'd' || *p == 'i') {
            spec[k++] = 'l';
            spec[k++] = 'l';
            spec[k++] = 'd';
            spec[k] = '\0';
            buf_printf(&b, spec, tpl_as_int(x));
        } else if (*p == 'f') {
            spec[k++] = 'f';
            spec[k] = '\0';
            buf_printf(&b, spec, tpl_as_float(x));
        } else if (*p == 'r') {
            tpli_repr(x, &b);
        } else {
            tpl_to_text(x, &b);
        }
    }
    tpl_unref(fmt);
    if (!buf_ok(&b)) {
        buf_free(&b);
        return tpli_str_fail(c, n);
    }
    *out = buf_value(&b);
    return R_OK;
}

static int f_indent(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, tpl_value **out)
{
    long long w = ARG(0, "width") ? tpl_as_int(ARG(0, "width")) : 4;
    bool first = tpl_truthy(ARG(1, "first"));
    tpl_value *s = str_of(v);
    const char *p;
    buf b;
    long long i;

    buf_init(&b, c->outmax);
    for (p = s->u.str.s; *p && buf_ok(&b); p++) {
        if ((p == s->u.str.s && first) || (p > s->u.str.s && p[-1] == '\n' && *p != '\n'))
            for (i = 0; i < w && i < 256; i++)
                buf_putc(&b, ' ');
        buf_putc(&b, *p);
    }
    tpl_unref(s);
    if (!buf_ok(&b)) {
        buf_free(&b);
        return tpli_str_fail(c, n);
    }
    *out = buf_value(&b);
    return R_OK;
}

static const struct {
    const char *name;
    tpli_filter_fn fn;
} filters[] = {
    {"join", f_join},
    {"length", f_length},
    {"count", f_length},
    {"lower", f_lower},
    {"upper", f_upper},
    {"capitalize", f_capitalize},
    {"title", f_title},
    {"trim", f_trim},
    {"string", f_string},
    {"as_text", f_string},
    {"replace", f_replace},
    {"default", f_default},
    {"d", f_default},
    {"first", f_first},
    {"last", f_last},
    {"map", f_map},
    {"selectattr", f_selectattr},
    {"rejectattr", f_rejectattr},
    {"select", f_select},
    {"reject", f_reject},
    {"list", f_list},
    {"as_number", f_as_number},
    {"as_bool", f_as_bool},
    {"as_native", f_identity},
    {"safe", f_identity},
    {"int", f_int},
    {"float", f_float},
    {"unique", f_unique},
    {"sort", f_sort},
    {"reverse", f_reverse},
    {"tojson", f_tojson},
    {"abs", f_abs},
    {"round", f_round},
    {"batch", f_batch},
    {"items", f_items},
    {"sum", f_sum},
    {"min", f_min},
    {"max", f_max},
    {"format", f_format},
    {"indent", f_indent},
};

int tpli_filter_find(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
        if (strlen(filters[i].name) == len && memcmp(filters[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

tpli_filter_fn tpli_filter_get(int idx)
{
    return filters[idx].fn;
}

static int filter_by_name(ctx *c, const tpli_node *n, const char *name, tpl_value *v,
                          const tpl_args *a, tpl_value **out)
{
    int i = name ? tpli_filter_find(name, strlen(name)) : -1;

    if (i < 0)
        return tpli_fail(c, n, "unknown filter \"%s\"", name ? name : "");
    return filters[i].fn(c, n, v, a, out);
}

/* ---- tests ---- */

static int t_defined(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, bool *out)
{
    *out = !tpli_is_undef(v);
    return R_OK;
}

static int t_undefined(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, bool *out)
{
    *out = tpli_is_undef(v);
    return R_OK;
}

static int t_none(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, bool *out)
{
    *out = tpl_typeof(v) == TPL_NONE && !tpli_is_undef(v);
    return R_OK;
}

static int t_string(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, bool *out)
{
    *out = tpl_typeof(v) == TPL_STR;
    return R_OK;
}

#define TYPE_TEST(fname, cond)                                                                     \
    static int fname(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, bool *out)       \
    {                                                                                              \
        tpl_type t = tpl_typeof(v);                                                                \
        (void)t;                                                                                   \
        *out = (cond);                                                                             \
        return R_OK;                                                                               \
    }

TYPE_TEST(t_number, t == TPL_INT || t == TPL_FLOAT || t == TPL_BOOL)
TYPE_TEST(t_integer, t == TPL_INT)
TYPE_TEST(t_float, t == TPL_FLOAT)
TYPE_TEST(t_boolean, t == TPL_BOOL)
TYPE_TEST(t_true, t == TPL_BOOL && v->u.b)
TYPE_TEST(t_false, t == TPL_BOOL && !v->u.b)
TYPE_TEST(t_mapping, t == TPL_DICT)
TYPE_TEST(t_iterable, t == TPL_LIST || t == TPL_DICT || t == TPL_STR)
TYPE_TEST(t_sequence, t == TPL_LIST || t == TPL_DICT || t == TPL_STR)
TYPE_TEST(t_callable, t == TPL_FUNC)
TYPE_TEST(t_odd, t == TPL_INT && (v->u.i % 2) != 0)
TYPE_TEST(t_even, t == TPL_INT && (v->u.i % 2) == 0)

static bool case_test(tpl_value *v, bool upper)
{
    const char *s = tpl_as_str(v);
    bool any = false;

    if (!s)
        return false;
    for (; *s; s++) {
        if (isalpha((unsigned char)*s)) {
            any = true;
            if (upper ? islower((unsigned char)*s) : isupper((unsigned char)*s))
                return false;
        }
    }
    return any;
}

static int t_lower(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, bool *out)
{
    *out = case_test(v, false);
    return R_OK;
}

static int t_upper(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, bool *out)
{
    *out = case_test(v, true);
    return R_OK;
}

static int need_arg(ctx *c, const tpli_node *n, const tpl_args *a, tpl_value **x)
{
    *x = a->npos ? a->pos[0] : a->nkw ? a->kw[0] : NULL;
    if (!*x)
        return tpli_fail(c, n, "test needs an argument");
    return R_OK;
}

static int t_divisibleby(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, bool *out)
{
    tpl_value *x;
    long long d;

    if (need_arg(c, n, a, &x) != R_OK)
        return R_ERR;
    d = tpl_as_int(x);
    *out = d != 0 && tpl_as_int(v) % d == 0;
    return R_OK;
}

static int t_eq(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, bool *out)
{
    tpl_value *x;

    if (need_arg(c, n, a, &x) != R_OK)
        return R_ERR;
    *out = tpli_equal(v, x);
    return R_OK;
}

static int t_ne(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, bool *out)
{
    int r = t_eq(c, n, v, a, out);

    *out = !*out;
    return r;
}

static int cmp_test(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, int *cmp)
{
    tpl_value *x;

    if (need_arg(c, n, a, &x) != R_OK)
        return R_ERR;
    if (!tpli_compare(v, x, cmp))
        return tpli_fail(c, n, "cannot compare '%s' with '%s'", tpli_type_name(v),
                         tpli_type_name(x));
    return R_OK;
}

#define CMP_TEST(fname, cond)                                                                      \
    static int fname(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, bool *out)       \
    {                                                                                              \
        int cmp = 0;                                                                               \
        if (cmp_test(c, n, v, a, &cmp) != R_OK)                                                    \
            return R_ERR;                                                                          \
        *out = (cond);                                                                             \
        return R_OK;                                                                               \
    }

CMP_TEST(t_lt, cmp < 0)
CMP_TEST(t_le, cmp <= 0)
CMP_TEST(t_gt, cmp > 0)
CMP_TEST(t_ge, cmp >= 0)

static int t_in(ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a, bool *out)
{
    tpl_value *x;
    size_t i;

    if (need_arg(c, n, a, &x) != R_OK)
        return R_ERR;
    *out = false;
    if (tpl_typeof(x) == TPL_STR) {
        tpl_value *s = str_of(v);
        *out = strstr(x->u.str.s, s->u.str.s) != NULL;
        tpl_unref(s);
    } else if (tpl_typeof(x) == TPL_LIST) {
        for (i = 0; i < x->u.list.len && !*out; i++)
            *out = tpli_equal(v, x->u.list.items[i]);
    } else if (tpl_typeof(x) == TPL_DICT) {
        *out = tpl_as_str(v) && tpl_dict_get(x, tpl_as_str(v));
    }
    return R_OK;
}

static const struct {
    const char *name;
    tpli_test_fn fn;
} tests[] = {
    {"defined", t_defined},
    {"undefined", t_undefined},
    {"none", t_none},
    {"string", t_string},
    {"number", t_number},
    {"integer", t_integer},
    {"float", t_float},
    {"boolean", t_boolean},
    {"true", t_true},
    {"false", t_false},
    {"mapping", t_mapping},
    {"iterable", t_iterable},
    {"sequence", t_sequence},
    {"callable", t_callable},
    {"odd", t_odd},
    {"even", t_even},
    {"lower", t_lower},
    {"upper", t_upper},
    {"divisibleby", t_divisibleby},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"==", t_eq},
    {"sameas", t_eq},
    {"ne", t_ne},
    {"!=", t_ne},
    {"lt", t_lt},
    {"lessthan", t_lt},
    {"<", t_lt},
    {"le", t_le},
    {"<=", t_le},
    {"gt", t_gt},
    {"greaterthan", t_gt},
    {">", t_gt},
    {"ge", t_ge},
    {">=", t_ge},
    {"in", t_in},
};

int tpli_test_find(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
        if (strlen(tests[i].name) == len && memcmp(tests[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

tpli_test_fn tpli_test_get(int idx)
{
    return tests[idx].fn;
}

static int test_by_name(ctx *c, const tpli_node *n, const char *name, tpl_value *v,
                        const tpl_args *a, bool *out)
{
    int i = tpli_test_find(name, strlen(name));

    if (i < 0)
        return tpli_fail(c, n, "unknown test \"%s\"", name);
    return tests[i].fn(c, n, v, a, out);
}

/* ---- methods ---- */

static bool name_eq(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* "a {} b {0} {name}".format(...) */
static int str_format(ctx *c, const tpli_node *n, tpl_value *s, const tpl_args *a, tpl_value **out)
{
    const char *p = s->u.str.s;
    size_t next = 0;
    buf b;

    buf_init(&b, c->outmax);
    while (*p) {
        if (p[0] == '{' && p[1] == '{') {
            buf_putc(&b, '{');
            p += 2;
        } else if (p[0] == '}' && p[1] == '}') {
            buf_putc(&b, '}');
            p += 2;
        } else if (*p == '{') {
            const char *end = strchr(p, '}');
            char field[128];
            size_t k;
            tpl_value *x;
            if (!end || (size_t)(end - p - 1) >= sizeof(field)) {
                buf_free(&b);
                return tpli_fail(c, n, "format: unmatched \"{\"");
            }
            k = (size_t)(end - p - 1);
            memcpy(field, p + 1, k);
            field[k] = '\0';
            if (strchr(field, ':'))
                *strchr(field, ':') = '\0'; /* format specs are ignored */
            if (!field[0])
                x = tpl_arg(a, next++, NULL);
            else if (isdigit((unsigned char)field[0]))
                x = tpl_arg(a, (size_t)atoi(field), NULL);
            else
                x = tpl_arg(a, (size_t)-1, field);
            if (!x) {
                buf_free(&b);
                return tpli_fail(c, n, "format: no argument for \"{%s}\"", field);
            }
            tpl_to_text(x, &b);
            p = end + 1;
        } else {
            buf_putc(&b, *p++);
        }
    }
    if (!buf_ok(&b)) {
        buf_free(&b);
        return tpli_str_fail(c, n);
    }
    *out = buf_value(&b);
    return R_OK;
}

static bool affix(tpl_value *s, tpl_value *x, bool end)
{
    size_t i;

    if (tpl_typeof(x) == TPL_LIST) { /* startswith(('a', 'b')) */
        for (i = 0; i < x->u.list.len; i++)
            if (affix(s, x->u.list.items[i], end))
                return true;
        return false;
    }
    if (tpl_typeof(x) != TPL_STR || x->u.str.len > s->u.str.len)
        return false;
    return memcmp(s->u.str.s + (end ? s->u.str.len - x->u.str.len : 0), x->u.str.s, x->u.str.len) ==
           0;
}

/* Python's str.split; a negative maxsplit (any, LLONG_MIN included) means
 * no limit.  NULL when the result would pass TPLI_LIST_MAX items. */
static tpl_value *str_split(tpl_value *s, tpl_value *sep, long long maxsplit)
{
    tpl_value *l = tpl_list_new();
    const char *p = s->u.str.s, *e = p + s->u.str.len;

    if (maxsplit < 0)
        maxsplit = -1;
#define SPLIT_PUSH(v)                                                                              \
    do {                                                                                           \
        if (l->u.list.len >= TPLI_LIST_MAX) {                                                      \
            tpl_unref(l);                                                                          \
            return NULL;                                                                           \
        }                                                                                          \
        tpl_list_push(l, (v));                                                                     \
        if (maxsplit > 0)                                                                          \
            maxsplit--;                                                                            \
    } while (0)

    if (!tpl_as_str(sep)) { /* runs of whitespace, no empty strings */
        while (p < e) {
            const char *st;
            while (p < e && isspace((unsigned char)*p))
                p++;
            if (p >= e)
                break;
            st = p;
            if (maxsplit == 0) {
                const char *q = e;
                while (q > p && isspace((unsigned char)q[-1]))
                    q--;
                SPLIT_PUSH(tpl_strn(p, (size_t)(q - p)));
                break;
            }
            while (p < e && !isspace((unsigned char)*p))
                p++;
            SPLIT_PUSH(tpl_strn(st, (size_t)(p - st)));
        }
        return l;
    }
    if (sep->u.str.len == 0) {
        tpl_list_push(l, tpl_ref(s));
        return l;
    }
    for (;;) {
        const char *q = maxsplit != 0 ? strstr(p, sep->u.str.s) : NULL;
        if (!q) {
            SPLIT_PUSH(tpl_strn(p, (size_t)(e - p)));
            return l;
        }
        SPLIT_PUSH(tpl_strn(p, (size_t)(q - p)));
        p = q + sep->u.str.len;
    }
#undef SPLIT_PUSH
}

static int str_method(ctx *c, const tpli_node *n, tpl_value *s, const char *m, const tpl_args *a,
                      tpl_value **out)
{
    tpl_value *x = tpl_arg(a, 0, NULL);

    if (name_eq(m, "upper"))
        return map_chars(s, 1, out);
    if (name_eq(m, "lower"))
        return map_chars(s, 0, out);
    if (name_eq(m, "capitalize"))
        return map_chars(s, 2, out);
    if (name_eq(m, "title"))
        return map_chars(s, 3, out);
    if (name_eq(m, "strip") || name_eq(m, "lstrip") || name_eq(m, "rstrip")) {
        *out = strip(s, m[0] == 'l' ? 1 : m[0] == 'r' ? 2 : 3, tpl_as_str(x));
        return R_OK;
    }
    if (name_eq(m, "split")) {
        tpl_value *ms = tpl_arg(a, 1, "maxsplit");
        *out = str_split(s, tpl_arg(a, 0, "sep"), ms ? tpl_as_int(ms) : -1);
        if (!*out)
            return tpli_fail(c, n, "list exceeds the limit of %d items", TPLI_LIST_MAX);
        return R_OK;
    }
    if (name_eq(m, "replace")) {
        if (a->npos < 2)
            return tpli_fail(c, n, "replace() needs two arguments");
        *out =
            replace(s, a->pos[0], a->pos[1], a->npos > 2 ? tpl_as_int(a->pos[2]) : -1, c->outmax);
        return *out ? R_OK : tpli_str_fail(c, n);
    }
    if (name_eq(m, "startswith") || name_eq(m, "endswith")) {
        *out = tpl_bool(affix(s, x, m[0] == 'e'));
        return R_OK;
    }
    if (name_eq(m, "format"))
        return str_format(c, n, s, a, out);
    if (name_eq(m, "join")) {
        tpl_args ja = {1, &s, 0, NULL, NULL};
        if (!x)
            return tpli_fail(c, n, "join() needs an argument");
        return f_join(c, n, x, &ja, out);
    }
    if (name_eq(m, "find") || name_eq(m, "count")) {
        tpl_value *sub = tpli_to_str(x ? x : tpl_none());
        const char *p = s->u.str.s, *q;
        long long cnt = 0;
        if (name_eq(m, "find")) {
            q = strstr(p, sub->u.str.s);
            *out = tpl_int(q ? (long long)(q - p) : -1);
        } else {
            while (sub->u.str.len && (q = strstr(p, sub->u.str.s))) {
                cnt++;
                p = q + sub->u.str.len;
            }
            *out = tpl_int(cnt);
        }
        tpl_unref(sub);
        return R_OK;
    }
    if (name_eq(m, "isdigit") || name_eq(m, "isalpha") || name_eq(m, "isalnum")) {
        size_t i;
        bool ok = s->u.str.len > 0;
        for (i = 0; i < s->u.str.len && ok; i++) {
            int ch = (unsigned char)s->u.str.s[i];
            ok = m[2] == 'd' ? isdigit(ch) : m[3] == 'l' && m[4] == 'p' ? isalpha(ch) : isalnum(ch);
        }
        *out = tpl_bool(ok);
        return R_OK;
    }
    if (name_eq(m, "isupper") || name_eq(m, "islower")) {
        *out = tpl_bool(case_test(s, m[2] == 'u'));
        return R_OK;
    }
    return 2;
}

static int list_method(ctx *c, const tpli_node *n, tpl_value *l, const char *m, const tpl_args *a,
                       tpl_value **out)
{
    tpl_value *x = tpl_arg(a, 0, NULL);
    size_t i, len = l->u.list.len;
    bool tuple = l->flags & VF_TUPLE;

    if (name_eq(m, "index") || name_eq(m, "count")) {
        long long cnt = 0;
        for (i = 0; i < len; i++) {
            if (x && tpli_equal(l->u.list.items[i], x)) {
                if (m[0] == 'i') {
                    *out = tpl_int((long long)i);
                    return R_OK;
                }
                cnt++;
            }
        }
        if (m[0] == 'i')
            return tpli_fail(c, n, "value is not in list");
        *out = tpl_int(cnt);
        return R_OK;
    }
    if (tuple)
        return 2;
    if (name_eq(m, "append")) {
        if (!x)
            return tpli_fail(c, n, "append() needs an argument");
        if (!tpli_list_room(c, n, len, 1) || !tpli_no_cycle(c, n, l, x))
            return R_ERR;
        tpl_list_push(l, tpl_ref(x));
        *out = tpl_none();
        return R_OK;
    }
    if (name_eq(m, "extend")) {
        tpl_value *items;
        int r;
        if (!x)
            return tpli_fail(c, n, "extend() needs an argument");
        if ((r = tpli_iter(c, n, x, &items)) != R_OK)
            return r;
        if (!tpli_list_room(c, n, l->u.list.len, items->u.list.len) ||
            !tpli_no_cycle(c, n, l, items == l ? NULL : items)) {
            tpl_unref(items);
            return R_ERR;
        }
        len = items->u.list.len; /* l.extend(l) */
        for (i = 0; i < len; i++)
            tpl_list_push(l, tpl_ref(items->u.list.items[i]));
        tpl_unref(items);
        *out = tpl_none();
        return R_OK;
    }
    if (name_eq(m, "pop") || name_eq(m, "remove")) {
        size_t at = len;
        if (m[0] == 'p') {
            long long k = x ? tpl_as_int(x) : -1;
            if (k < 0)
                k += (long long)len;
            if (k >= 0 && (size_t)k < len)
                at = (size_t)k;
        } else {
            for (i = 0; i < len && at == len; i++)
                if (x && tpli_equal(l->u.list.items[i], x))
                    at = i;
        }
        if (at >= len)
            return tpli_fail(c, n, m[0] == 'p' ? "pop index out of range" : "value is not in list");
        *out = l->u.list.items[at];
        memmove(l->u.list.items + at, l->u.list.items + at + 1,
                (len - at - 1) * sizeof(tpl_value *));
        l->u.list.len--;
        if (m[0] == 'r') {
            tpl_unref(*out);
            *out = tpl_none();
        }
        return R_OK;
    }
    if (name_eq(m, "insert")) {
        long long k = tpl_as_int(x);
        tpl_value *y = tpl_arg(a, 1, NULL);
        if (!y)
            return tpli_fail(c, n, "insert() needs two arguments");
        if (!tpli_list_room(c, n, len, 1) || !tpli_no_cycle(c, n, l, y))
            return R_ERR;
        if (k < 0)
            k += (long long)len;
        if (k < 0)
            k = 0;
        if ((size_t)k > len)
            k = (long long)len;
        tpl_list_push(l, tpl_ref(y));
        memmove(l->u.list.items + k + 1, l->u.list.items + k,
                (len - (size_t)k) * sizeof(tpl_value *));
        l->u.list.items[k] = y;
        *out = tpl_none();
        return R_OK;
    }
    if (name_eq(m, "reverse")) {
        for (i = 0; i < len / 2; i++) {
            tpl_value *t = l->u.list.items[i];
            l->u.list.items[i] = l->u.list.items[len - 1 - i];
            l->u.list.items[len - 1 - i] = t;
        }
        *out = tpl_none();
        return R_OK;
    }
    if (name_eq(m, "copy"))
        return f_list(c, n, l, a, out);
    return 2;
}

static int dict_method(ctx *c, const tpli_node *n, tpl_value *d, const char *m, const tpl_args *a,
                       tpl_value **out)
{
    tpl_value *x = tpl_arg(a, 0, NULL), *l;
    size_t i;

    if (name_eq(m, "items")) {
        *out = dict_items(d);
        return R_OK;
    }
    if (name_eq(m, "keys") || name_eq(m, "values")) {
        l = tpl_list_new();
        for (i = 0; i < d->u.dict.len; i++)
            tpl_list_push(l, m[0] == 'k' ? tpl_str(d->u.dict.keys[i]) : tpl_ref(d->u.dict.vals[i]));
        *out = l;
        return R_OK;
    }
    if (name_eq(m, "get") || name_eq(m, "pop") || name_eq(m, "setdefault")) {
        tpl_value *k = x ? tpli_to_str(x) : NULL, *v, *def = tpl_arg(a, 1, "default");
        if (!k)
            return tpli_fail(c, n, "%s() needs a key", m);
        v = tpl_dict_get(d, k->u.str.s);
        if (v) {
            *out = tpl_ref(v);
            if (m[0] == 'p')
                tpli_dict_del(d, k->u.str.s);
        } else if (m[0] == 'p' && !def) {
            tpl_unref(k);
            return tpli_fail(c, n, "pop(): no key \"%s\"", tpl_as_str(x) ? tpl_as_str(x) : "");
        } else {
            if (m[0] == 's' &&
                (!tpli_dict_room(c, n, d, k->u.str.s) || !tpli_no_cycle(c, n, d, def))) {
                tpl_unref(k);
                return R_ERR;
            }
            *out = def ? tpl_ref(def) : tpl_none();
            if (m[0] == 's')
                tpl_dict_set(d, k->u.str.s, tpl_ref(*out));
        }
        tpl_unref(k);
        return R_OK;
    }
    if (name_eq(m, "update")) {
        size_t add = a->nkw + (tpl_typeof(x) == TPL_DICT ? x->u.dict.len : 0);
        if (!tpli_no_cycle(c, n, d, x == d ? NULL : x))
            return R_ERR;
        for (i = 0; i < a->nkw; i++)
            if (!tpli_no_cycle(c, n, d, a->kw[i]))
                return R_ERR;
        if (add > TPLI_DICT_MAX || d->u.dict.len > TPLI_DICT_MAX - add)
            return tpli_fail(c, n, "dict exceeds the limit of %d entries", TPLI_DICT_MAX);
        if (tpl_typeof(x) == TPL_DICT)
            for (i = 0; i < x->u.dict.len; i++)
                tpl_dict_set(d, x->u.dict.keys[i], tpl_ref(x->u.dict.vals[i]));
        for (i = 0; i < a->nkw; i++)
            tpl_dict_set(d, a->kwnames[i], tpl_ref(a->kw[i]));
        *out = tpl_none();
        return R_OK;
    }
    if (name_eq(m, "copy")) {
        l = tpl_dict_new();
        for (i = 0; i < d->u.dict.len; i++)
            tpl_dict_set(l, d->u.dict.keys[i], tpl_ref(d->u.dict.vals[i]));
        *out = l;
        return R_OK;
    }
    return 2;
}

int tpli_method(ctx *c, const tpli_node *n, tpl_value *obj, const char *name, const tpl_args *a,
                tpl_value **out)
{
    switch (tpl_typeof(obj)) {
    case TPL_STR:
        return str_method(c, n, obj, name, a, out);
    case TPL_LIST:
        return list_method(c, n, obj, name, a, out);
    case TPL_DICT: {
        int r = tpli_object_method(c, n, obj, name, a, out);
        return r != 2 ? r : dict_method(c, n, obj, name, a, out);
    }
    default:
        return 2;
    }
}

/* ---- built-in globals ---- */

static cs_result b_range(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                         cs_error *err)
{
    long long start = 0, stop, step = 1, i, count = 0;
    tpl_value *l;

    if (a->npos == 0 || a->npos > 3)
        return cs_fail(err, CS_INVALID, "range() takes 1 to 3 arguments");
    if (a->npos == 1) {
        stop = tpl_as_int(a->pos[0]);
    } else {
        start = tpl_as_int(a->pos[0]);
        stop = tpl_as_int(a->pos[1]);
        if (a->npos == 3)
            step = tpl_as_int(a->pos[2]);
    }
    if (step == 0)
        return cs_fail(err, CS_INVALID, "range() step must not be zero");
    l = tpl_list_new();
    for (i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (++count > 1000000) {
            tpl_unref(l);
            return cs_fail(err, CS_INVALID, "range() too large (limit 1000000 items)");
        }
        tpl_list_push(l, tpl_int(i));
        if ((step > 0 && i > 0x7fffffffffffffffLL - step) ||
            (step < 0 && i < (-0x7fffffffffffffffLL - 1) - step))
            break;
    }
    *out = l;
    return CS_OK;
}

/* dict(...) and namespace(...): a new dict from an optional dict and kwargs */
static cs_result b_dict(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out, cs_error *err)
{
    tpl_value *d = tpl_dict_new();
    size_t i;

    if (a->npos && tpl_typeof(a->pos[0]) == TPL_DICT) {
        tpl_value *src = a->pos[0];
        for (i = 0; i < src->u.dict.len; i++)
            tpl_dict_set(d, src->u.dict.keys[i], tpl_ref(src->u.dict.vals[i]));
    } else if (a->npos && tpl_typeof(a->pos[0]) == TPL_LIST) {
        for (i = 0; i < a->pos[0]->u.list.len; i++) {
            tpl_value *p = a->pos[0]->u.list.items[i];
            if (tpl_list_len(p) == 2) {
                tpl_value *k = tpli_to_str(tpl_list_get(p, 0));
                tpl_dict_set(d, k->u.str.s, tpl_ref(tpl_list_get(p, 1)));
                tpl_unref(k);
            }
        }
    }
    for (i = 0; i < a->nkw; i++)
        tpl_dict_set(d, a->kwnames[i], tpl_ref(a->kw[i]));
    *out = d;
    return CS_OK;
}

/* zip(a, b, ...): tuples of the i-th items while every argument has one;
 * any iterable (lists, strings, dict keys) */
static cs_result b_zip(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out, cs_error *err)
{
    tpl_value *l, **its;
    size_t i, k, len = (size_t)-1;
    int r = R_OK;

    its = xmalloc((a->npos ? a->npos : 1) * sizeof(*its));
    for (k = 0; k < a->npos; k++) {
        if ((r = tpli_iter(call->ctx, call->node, a->pos[k], &its[k])) != R_OK)
            break;
        if (its[k]->u.list.len < len)
            len = its[k]->u.list.len;
    }
    if (r != R_OK) {
        while (k-- > 0)
            tpl_unref(its[k]);
        free(its);
        return call->ctx->err->code;
    }
    if (!a->npos)
        len = 0;
    l = tpl_list_new();
    for (i = 0; i < len; i++) {
        tpl_value *t = tpli_tuple_new();
        for (k = 0; k < a->npos; k++)
            tpl_list_push(t, tpl_ref(its[k]->u.list.items[i]));
        tpl_list_push(l, t);
    }
    for (k = 0; k < a->npos; k++)
        tpl_unref(its[k]);
    free(its);
    *out = l;
    return CS_OK;
}

/* dbt's tojson(value): json.dumps without sorting or HTML escapes (the
 * |tojson filter is Jinja's: sorted and HTML-safe) */
static cs_result b_tojson(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                          cs_error *err)
{
    buf b;

    buf_init(&b, call->ctx->outmax);
    if (!tpli_to_json_plain(tpl_arg(a, 0, "value"), &b) || !buf_ok(&b)) {
        buf_free(&b);
        tpli_str_fail(call->ctx, call->node);
        return CS_INVALID;
    }
    *out = buf_value(&b);
    return CS_OK;
}

/* dbt's fromjson(string, default=None): the parsed value, or the default
 * when the string is not JSON */
static cs_result b_fromjson(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                            cs_error *err)
{
    tpl_value *s = tpl_arg(a, 0, "string"), *def = tpl_arg(a, 1, "default");

    if (tpl_typeof(s) != TPL_STR || !(*out = tpli_from_json(s->u.str.s, s->u.str.len)))
        *out = def ? tpl_ref(def) : tpl_none();
    return CS_OK;
}

tpl_value *tpli_builtins_new(void)
{
    tpl_value *d = tpl_dict_new();

    tpl_dict_set(d, "range", tpl_func_new("range", b_range, NULL));
    tpl_dict_set(d, "dict", tpl_func_new("dict", b_dict, NULL));
    tpl_dict_set(d, "namespace", tpl_func_new("namespace", b_dict, NULL));
    tpl_dict_set(d, "zip", tpl_func_new("zip", b_zip, NULL));
    tpl_dict_set(d, "tojson", tpl_func_new("tojson", b_tojson, NULL));
    tpl_dict_set(d, "fromjson", tpl_func_new("fromjson", b_fromjson, NULL));
    tpl_dict_set(d, "modules", tpli_modules_new());
    return d;
}
