/*
 * filter.h - the library the evaluator calls: filters and tests (looked up
 * by name at compile time by the parser), methods of str/list/dict, and the
 * built-in globals.  It reaches the render only through ctx.h.
 */
#ifndef CS_TPL_FILTER_H
#define CS_TPL_FILTER_H

#include <stddef.h>

#include "template/internal.h"

struct tpli_ctx;
typedef int (*tpli_filter_fn)(struct tpli_ctx *c, const tpli_node *n, tpl_value *v,
                              const tpl_args *a, tpl_value **out);
typedef int (*tpli_test_fn)(struct tpli_ctx *c, const tpli_node *n, tpl_value *v, const tpl_args *a,
                            bool *out);
/* index of a filter/test by name, -1 when unknown */
int tpli_filter_find(const char *name, size_t len);
tpli_filter_fn tpli_filter_get(int idx);
int tpli_test_find(const char *name, size_t len);
tpli_test_fn tpli_test_get(int idx);

/* a method of a builtin type: R_OK with *out set, R_ERR, or 2 when obj has
 * no such method */
int tpli_method(struct tpli_ctx *c, const tpli_node *n, tpl_value *obj, const char *name,
                const tpl_args *a, tpl_value **out);
/* the built-in globals (range, namespace, dict, zip) as a new dict */
tpl_value *tpli_builtins_new(void);

#endif
