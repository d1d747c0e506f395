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

/* the items a for loop (or a filter) walks, as a new reference to a list:
 * a list itself, a dict's keys, a string's characters, nothing for an
 * undefined; other types are an error */
int tpli_iter(tpli_ctx *c, const tpli_node *n, tpl_value *it, tpl_value **out)
{
    size_t i;
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
        l = tpl_list_new();
        for (i = 0; i < it->u.str.len;) {
            size_t k = 1;
            unsigned char ch = (unsigned char)it->u.str.s[i];
            if (ch >= 0xc0) /* keep UTF-8 sequences whole */
                while (i + k < it->u.str.len && (it->u.str.s[i + k] & 0xc0) == 0x80)
                    k++;
            tpl_list_push(l, tpl_strn(it->u.str.s + i, k));
            i += k;
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
