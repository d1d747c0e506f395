/*
 * ctx.c - the services of a render that both the evaluator and the
 * filters use (ctx.h): positioned errors and iteration.  Kept out of
 * eval.c so that filter.c depends on this file and never on eval.c.
 */
#include "template/ctx.h"

#include <stdarg.h>
#include <stdio.h>

int tpli_fail(tpli_ctx *c, const tpli_node *n, const char *fmt, ...)
{
    char msg[CS_ERROR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n && c->tpl)
        cs_fail(c->err, CS_INVALID, "%s:%d:%d: %s", c->tpl->filename, n->line, n->col, msg);
    else
        cs_fail(c->err, CS_INVALID, "%s", msg);
    c->positioned = true;
    return R_ERR;
}

int tpli_out_fail(tpli_ctx *c, const tpli_node *n)
{
    return tpli_fail(c, n, "output exceeds the limit of %zu bytes", c->outmax);
}

int tpli_str_fail(tpli_ctx *c, const tpli_node *n)
{
    return tpli_fail(c, n, "string exceeds the limit of %zu bytes", c->outmax);
}

bool tpli_list_room(tpli_ctx *c, const tpli_node *n, size_t have, size_t more)
{
    if (more <= TPLI_LIST_MAX && have <= TPLI_LIST_MAX - more)
        return true;
    tpli_fail(c, n, "list exceeds the limit of %d items", TPLI_LIST_MAX);
    return false;
}

bool tpli_dict_room(tpli_ctx *c, const tpli_node *n, const tpl_value *d, const char *key)
{
    if (tpl_dict_len(d) < TPLI_DICT_MAX || tpl_dict_get(d, key))
        return true;
    tpli_fail(c, n, "dict exceeds the limit of %d entries", TPLI_DICT_MAX);
    return false;
}

/*
 * Reference counting cannot free a cycle, so none may form: storing v in
 * container is refused when container is reachable from v (l.append(l),
 * d.update({'a': d}), ns.me = ns).  Python would allow it; no template
 * needs it, and a refused cycle is a clear error instead of a leak.
 */
bool tpli_no_cycle(tpli_ctx *c, const tpli_node *n, const tpl_value *container, const tpl_value *v)
{
    int r = tpli_reaches(v, container, &c->reach_budget);

    if (r == 0)
        return true;
    if (r < 0)
        tpli_fail(c, n,
                  "values shared too often to check for a reference cycle (more than %d "
                  "steps in one render)",
                  TPLI_REACH_MAX);
    else
        tpli_fail(c, n, "a %s cannot contain itself",
                  tpl_typeof(container) == TPL_LIST ? "list" : "dict");
    return false;
}

/* the items a for loop (or a filter) walks, as a new reference to a list:
 * a list itself, a dict's keys, a string's characters, nothing for an
 * undefined; other types are an error */
int tpli_iter(tpli_ctx *c, const tpli_node *n, tpl_value *it, tpl_value **out)
{
    size_t i, k;
    tpl_value *l;

    switch (tpl_typeof(it)) {
    case TPL_LIST:
        *out = tpl_ref(it);
        return R_OK;
    case TPL_DICT:
        l = tpl_list_new();
        for (i = 0; i < it->u.dict.len; i++)
            tpl_list_push(l, tpl_str(it->u.dict.keys[i]));
        *out = l;
        return R_OK;
    case TPL_STR:
        for (i = k = 0; i < it->u.str.len; i++) /* characters, not bytes */
            k += (it->u.str.s[i] & 0xc0) != 0x80;
        if (!tpli_list_room(c, n, 0, k))
            return R_ERR;
        l = tpl_list_new();
        for (i = 0; i < it->u.str.len;) {
            size_t w = 1;
            unsigned char ch = (unsigned char)it->u.str.s[i];
            if (ch >= 0xc0) /* keep UTF-8 sequences whole */
                while (i + w < it->u.str.len && (it->u.str.s[i + w] & 0xc0) == 0x80)
                    w++;
            tpl_list_push(l, tpl_strn(it->u.str.s + i, w));
            i += w;
        }
        *out = l;
        return R_OK;
    case TPL_NONE:
        if (tpli_is_undef(it)) {
            *out = tpl_list_new();
            return R_OK;
        }
        /* fall through */
    default:
        return tpli_fail(c, n, "'%s' object is not iterable", tpli_type_name(it));
    }
}
