/*
 * dbt_results.c - on-run-end's `results` as templates see them, and who
 * owns the dbt_results table.
 */
#include "pipeline/dbt_int.h"

bool dbt_owns_results_table(const dbt_manifest *m)
{
    return project_find_model(m->p, NULL, "dbt_results") >= 0;
}

/* RunResult.to_dict(): a fresh copy of the result's map (ud) */
static cs_result n_to_dict(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                           cs_error *err)
{
    *out = dbt_pv_to_tpl((const pv *)ud);
    return CS_OK;
}

/* the tpl value of on-run-end's results; valid while `results` (borrowed
 * by the to_dict methods) lives: dbt_render_hook drops it after the render */
tpl_value *dbt_results_tpl(const pv *results)
{
    tpl_value *l = tpl_list_new();
    for (size_t i = 0; results && i < results->n; i++) {
        tpl_value *r = dbt_pv_to_tpl(results->items[i]);
        tpl_dict_set(r, "to_dict", tpl_func_new("to_dict", n_to_dict, results->items[i]));
        tpl_list_push(l, r);
    }
    return l;
}
