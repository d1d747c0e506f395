/*
 * dbt_value.c - values between the project's YAML trees (pv) and the
 * template engine (tpl_value), and the agate-like table that run_query and
 * statement results are (see dbt_int.h).
 */
#include "pipeline/dbt_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tpl_value *dbt_pv_to_tpl(const pv *v)
{
    tpl_value *t;

    if (!v)
        return tpl_none();
    switch (v->type) {
    case PV_NULL:
        return tpl_none();
    case PV_BOOL:
        return tpl_bool(v->b);
    case PV_INT:
        return tpl_int(v->i);
    case PV_FLOAT:
        return tpl_float(v->f);
    case PV_STR:
        return tpl_str(v->s);
    case PV_LIST:
        t = tpl_list_new();
        for (size_t i = 0; i < v->n; i++)
            tpl_list_push(t, dbt_pv_to_tpl(v->items[i]));
        return t;
    case PV_MAP:
        t = tpl_dict_new();
        for (size_t i = 0; i < v->n; i++)
            tpl_dict_set(t, v->keys[i], dbt_pv_to_tpl(v->items[i]));
        return t;
    }
    return tpl_none();
}

pv *dbt_tpl_to_pv(const tpl_value *t)
{
    pv *v;
    buf b;

    switch (tpl_typeof(t)) {
    case TPL_NONE:
        return pv_new(PV_NULL);
    case TPL_BOOL:
        return pv_bool(tpl_as_bool(t));
    case TPL_INT:
        return pv_int(tpl_as_int(t));
    case TPL_FLOAT:
        v = pv_new(PV_FLOAT);
        v->f = tpl_as_float(t);
        return v;
    case TPL_STR:
        return pv_str(tpl_as_str(t));
    case TPL_LIST:
        v = pv_new(PV_LIST);
        for (size_t i = 0; i < tpl_list_len(t); i++)
            pv_push(v, dbt_tpl_to_pv(tpl_list_get(t, i)));
        return v;
    case TPL_DICT:
        v = pv_new(PV_MAP);
        for (size_t i = 0; i < tpl_dict_len(t); i++)
            pv_set(v, tpl_dict_key_at(t, i), dbt_tpl_to_pv(tpl_dict_value_at(t, i)));
        return v;
    default:
        buf_init(&b, 0);
        tpl_to_text(t, &b);
        v = pv_str(b.data ? b.data : "");
        buf_free(&b);
        return v;
    }
}

/*
 * An agate-like table (what dbt's run_query returns), built from lists with
 * attributes (tpl_list_set_attr):
 *   table          a list of rows: table[0][0], {% for row in table %}, length
 *   table.rows     the same rows; table.column_names: the names
 *   table.columns  a list of columns, also by name (table.columns['id'])
 *   column         a list of its values with .name and .values (callable:
 *                  column.values() as in dbt, or used as the list)
 *   row            a list of its cells, also by column name (row['id'])
 */
tpl_value *dbt_agate_table(const pv *t)
{
    const pv *cols = pv_get(t, "columns"), *rows = pv_get(t, "rows");
    tpl_value *tv = tpl_list_new(), *rl = tpl_list_new(), *cl = tpl_list_new();
    /* columns.items() / keys() / values(), as agate's MappedSequence: data
     * attributes, which a template may also call with no arguments */
    tpl_value *items = tpl_list_new(), *keys = tpl_list_new(), *values = tpl_list_new();

    for (size_t r = 0; rows && r < rows->n; r++) {
        tpl_value *row = tpl_list_new();
        for (size_t c = 0; cols && c < cols->n && c < rows->items[r]->n; c++) {
            tpl_value *cell = dbt_pv_to_tpl(rows->items[r]->items[c]);
            tpl_list_push(row, tpl_ref(cell));
            tpl_list_set_attr(row, pv_s(cols->items[c]) ? cols->items[c]->s : "", cell);
        }
        tpl_list_push(tv, tpl_ref(row));
        tpl_list_push(rl, row);
    }
    for (size_t c = 0; cols && c < cols->n; c++) {
        tpl_value *col = tpl_list_new(), *vals = tpl_list_new();
        for (size_t r = 0; r < tpl_list_len(tv); r++) {
            tpl_value *cell = tpl_list_get(tpl_list_get(tv, r), c);
            tpl_list_push(col, tpl_ref(cell));
            tpl_list_push(vals, tpl_ref(cell));
        }
        tpl_list_set_attr(col, "name", dbt_pv_to_tpl(cols->items[c]));
        tpl_list_set_attr(col, "values", vals);
        tpl_list_push(cl, tpl_ref(col));
        {
            tpl_value *pair = tpl_list_new();
            tpl_list_push(pair, dbt_pv_to_tpl(cols->items[c]));
            tpl_list_push(pair, tpl_ref(col));
            tpl_list_push(items, pair);
            tpl_list_push(keys, dbt_pv_to_tpl(cols->items[c]));
            tpl_list_push(values, tpl_ref(col));
        }
        tpl_list_set_attr(cl, pv_s(cols->items[c]) ? cols->items[c]->s : "", col);
    }
    tpl_list_set_attr(cl, "items", items);
    tpl_list_set_attr(cl, "keys", keys);
    tpl_list_set_attr(cl, "values", values);
    tpl_list_set_attr(tv, "columns", cl);
    tpl_list_set_attr(tv, "column_names", dbt_pv_to_tpl(cols));
    tpl_list_set_attr(tv, "rows", rl);
    return tv;
}
