/*
 * dbt_scope.c - the globals every render starts from (this, model, schema,
 * execute, results), set by dbt_begin_render before a parse or an execute
 * render.  A file of its own because the renders of models, hooks, tests
 * and materializations all call it, and dbt_ctx.c (which builds the
 * worker) calls none of them.
 */
#include "pipeline/dbt_int.h"

/* `this`: model i's own relation (also for an ephemeral model, as before) */
static tpl_value *dbt_model_relation_this(const dbt_worker *w, size_t i)
{
    const dbt_node *n = &w->m->nodes[i];
    return dbt_relation_typed(w->m->set.database, n->schema ? n->schema : w->m->set.schema,
                              n->relname ? n->relname : w->m->p->models[i].name,
                              n->mat == MAT_VIEW ? "view" : "table");
}

/* sets the per-render globals: this, execute, model */
void dbt_begin_render(dbt_worker *w, long model, const dbt_render_opts *o)
{
    const pl_project *p = w->m->p;
    w->model = model;
    w->o = o;
    tpl_unref(w->results);
    w->results = tpl_dict_new();
    tpl_env_set(w->env, "execute", tpl_bool(o && o->execute));
    /* dbt: an undefined name in SQL is an error when executing, not at parse */
    tpl_env_set_strict_undefined(w->env, o && o->execute);
    if (o && o->execute)
        dbt_graph_ensure(w);
    if (model >= 0) {
        tpl_value *md = tpl_dict_new();
        char uid[512];
        dbt_unique_id(p, (size_t)model, uid, sizeof(uid));
        tpl_env_set(w->env, "this", dbt_model_relation_this(w, (size_t)model));
        tpl_dict_set(md, "name", tpl_str(p->models[model].name));
        tpl_dict_set(md, "unique_id", tpl_str(uid));
        tpl_dict_set(md, "package_name", tpl_str(p->packages[p->models[model].package].name));
        tpl_dict_set(md, "original_file_path", tpl_str(p->models[model].relpath));
        tpl_env_set(w->env, "model", md);
        /* dbt: `schema` is where the model is built, not the target's */
        tpl_env_set(
            w->env, "schema",
            tpl_str(w->m->nodes[model].schema ? w->m->nodes[model].schema : w->m->set.schema));
    } else {
        tpl_env_set(w->env, "this", tpl_none());
        tpl_env_set(w->env, "schema", tpl_str(w->m->set.schema));
    }
    tpl_env_set(w->env, "results", o && o->results ? dbt_results_tpl(o->results) : tpl_list_new());
}
