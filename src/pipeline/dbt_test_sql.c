/*
 * dbt_test_sql.c - the query of each data test: a singular test's
 * template, or the built-in SQL of a generic test (not_null, unique,
 * accepted_values, relationships).  The query returns the failing rows.
 */
#include "pipeline/dbt_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/materialize.h"

/* the query of a generic data test: the rows that fail it */
static cs_result generic_test_sql(dbt_worker *w, const pl_test *t, buf *out, cs_error *err)
{
    const dbt_manifest *m = w->m;
    const dbt_node *nd = &m->nodes[t->model];
    const char *col = t->column;
    buf rel;

    if (!col && strcmp(t->kind, "unique") != 0)
        col = pv_gets(t->args, "column_name");
    if (!col)
        return cs_fail(err, CS_INVALID, "%s:%d: test \"%s\" needs a column", t->file, t->line,
                       t->kind);
    buf_init(&rel, 0);
    mat_relation(&rel, m->set.schema, nd->relname);
    if (strcmp(t->kind, "not_null") == 0) {
        buf_printf(out, "select %s from %s where %s is null", col, rel.data, col);
    } else if (strcmp(t->kind, "unique") == 0) {
        buf_printf(out,
                   "select %s as unique_field, count(*) as n_records from %s where %s is not "
                   "null group by %s having count(*) > 1",
                   col, rel.data, col, col);
    } else if (strcmp(t->kind, "accepted_values") == 0) {
        const pv *vals = pv_get(t->args, "values");
        bool quote = !pv_get(t->args, "quote") || pv_truthy(pv_get(t->args, "quote"));
        if (!vals || vals->type != PV_LIST || vals->n == 0) {
            buf_free(&rel);
            return cs_fail(err, CS_INVALID, "%s:%d: accepted_values needs \"values\"", t->file,
                           t->line);
        }
        buf_printf(out, "select %s from %s where %s is not null and %s not in (", col, rel.data,
                   col, col);
        for (size_t i = 0; i < vals->n; i++) {
            buf tv;
            buf_init(&tv, 0);
            if (vals->items[i]->type == PV_STR)
                buf_puts(&tv, vals->items[i]->s);
            else
                pv_to_text(vals->items[i], &tv);
            if (i)
                buf_puts(out, ", ");
            if (quote)
                mat_quote_literal(out, tv.data ? tv.data : "");
            else
                buf_puts(out, tv.data);
            buf_free(&tv);
        }
        buf_putc(out, ')');
    } else if (strcmp(t->kind, "relationships") == 0) {
        const char *to = pv_gets(t->args, "to"), *field = pv_gets(t->args, "field");
        char name[256];
        long target;
        if (!to || !field || sscanf(to, " ref ( '%255[^']' )", name) != 1 ||
            (target = project_find_model(m->p, NULL, name)) < 0) {
            buf_free(&rel);
            return cs_fail(err, CS_INVALID,
                           "%s:%d: relationships needs \"to: ref('model')\" naming a model and "
                           "\"field\"",
                           t->file, t->line);
        }
        buf prel;
        buf_init(&prel, 0);
        mat_relation(&prel, m->set.schema, m->nodes[target].relname);
        buf_printf(out,
                   "select child.%s from %s as child left join %s as parent on child.%s = "
                   "parent.%s where child.%s is not null and parent.%s is null",
                   col, rel.data, prel.data, col, field, col, field);
        buf_free(&prel);
    } else {
        buf_free(&rel);
        return cs_fail(err, CS_INVALID,
                       "%s:%d: test \"%s\" is not supported (not_null, unique, accepted_values, "
                       "relationships, singular tests)",
                       t->file, t->line, t->kind);
    }
    buf_free(&rel);
    return CS_OK;
}

cs_result dbt_render_test(dbt_worker *w, size_t test, const dbt_render_opts *o, buf *out,
                          cs_error *err)
{
    const pl_test *t = &w->m->p->tests[test];
    if (t->kind)
        return generic_test_sql(w, t, out, err);
    w->parsing = false;
    dbt_begin_render(w, -1, o);
    return tpl_render(w->m->tests[test].tpl, w->env, NULL, out, err);
}
