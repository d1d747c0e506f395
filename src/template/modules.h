/*
 * modules.h - dbt's `modules` namespace for templates: the parts of
 * Python's datetime and re that dbt packages use (modules.datetime.date,
 * .datetime, .timedelta; modules.re.sub, .search, .match, .findall, ...),
 * and the methods and operators of the objects they return.
 */
#ifndef CS_TPL_MODULES_H
#define CS_TPL_MODULES_H

#include "template/ctx.h"

/* the `modules` dict (datetime, re) as a new reference */
tpl_value *tpli_modules_new(void);

/* a method of a date, datetime, timedelta, match or pattern object:
 * R_OK/R_ERR, or 2 when obj is not such an object or has no such method */
int tpli_object_method(tpli_ctx *c, const tpli_node *n, tpl_value *obj, const char *name,
                       const tpl_args *a, tpl_value **out);

/* date/datetime/timedelta arithmetic (+ and -): R_OK/R_ERR, or 2 when
 * neither operand is such an object */
int tpli_temporal_arith(tpli_ctx *c, const tpli_node *n, int op, tpl_value *a, tpl_value *b,
                        tpl_value **out);

#endif
