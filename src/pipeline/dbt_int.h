/*
 * dbt_int.h - what the files of the dbt context share, inside
 * src/pipeline/ only (the public API is dbt_ctx.h):
 *
 *   dbt_ctx.c          the worker (one thread's tpl_env) and dbt's natives
 *   dbt_globals.c      target, flags, graph, run_started_at, project_name, ...
 *   dbt_relation.c     relations, columns, api.Relation/api.Column, the
 *                      adapter methods that read or change relations
 *   dbt_value.c        pv <-> tpl_value, agate-like tables
 *   dbt_parse.c        the parse phase: dbt_parse, dbt_manifest_free
 *   dbt_fingerprint.c  each model's fingerprint
 *   dbt_render.c       execute-phase renders of models and hooks
 *   dbt_test_sql.c     the query of each data test
 *   dbt_results.c      on-run-end's `results`
 */
#ifndef CS_DBT_INT_H
#define CS_DBT_INT_H

#include "pipeline/dbt_ctx.h"

struct dbt_worker {
    const dbt_manifest *m;
    tpl_env *env;
    /* the render in progress */
    long model; /* -1: none (project hooks, tests) */
    bool parsing;
    const dbt_render_opts *o;
    pv *collected; /* parse: config() keywords */
    size_t *deps;  /* parse: refs */
    size_t ndeps;
    size_t *seed_deps; /* parse: refs to seeds */
    size_t nseed_deps;
    tpl_value *results; /* statement results by name */
    buf *inputs;        /* parse: the env_var() values and source() relations read */
    bool graph_built;   /* `graph` holds the manifest's nodes (first executing render) */
};

/* a new value for v (NULL: none); the caller owns it */
tpl_value *dbt_pv_to_tpl(const pv *v);
/* a new tree for t (objects and functions as their text); the caller owns it */
pv *dbt_tpl_to_pv(const tpl_value *t);
/* the agate-like table of a query result {columns, rows} (borrowed); caller owns it */
tpl_value *dbt_agate_table(const pv *t);

/* a relation object "schema"."name" with dbt's attributes and methods
 * (dbt_relation.c); type "table", "view", "materialized_view", "cte" or
 * NULL (unknown); the caller owns it */
tpl_value *dbt_relation(const char *database, const char *schema, const char *name);
tpl_value *dbt_relation_typed(const char *database, const char *schema, const char *name,
                              const char *type);
bool dbt_is_relation(const tpl_value *v);
/* a column object as dbt-postgres's Column; size, prec, scale < 0: none */
tpl_value *dbt_column_new(const char *name, const char *dtype, long long size, long long prec,
                          long long scale);
/* the `api` global (api.Relation, api.Column); the caller owns it */
tpl_value *dbt_api_new(void);
/* adds the relation methods of `adapter` (get_relation, get_columns_in_relation,
 * drop_relation, ...), which query through w */
void dbt_adapter_add_methods(tpl_value *adapter, dbt_worker *w);
/* runs sql on the render's connection (an error while parsing); *res as
 * dbt_sql_fn.  Inline: dbt_ctx.c and dbt_relation.c both query, and the
 * files of a folder must not call each other both ways (check-cycles). */
static inline cs_result dbt_run_sql(dbt_worker *w, const char *sql, pv **res, cs_error *err)
{
    if (!w->o || !w->o->sql)
        return cs_fail(err, CS_INVALID, "no database connection to run a query in this phase");
    return w->o->sql(w->o->sql_ud, sql, res, err);
}
/* model i's relation (an ephemeral model's CTE name when executing) */
tpl_value *dbt_model_relation(const dbt_worker *w, size_t i);
/* sets the per-render globals of w: this, execute, model, results */
void dbt_begin_render(dbt_worker *w, long model, const dbt_render_opts *o);

/* sets target, project_name, schema, database, api, flags, graph (empty),
 * run_started_at (now) of a new worker (dbt_globals.c) */
void dbt_globals_init(dbt_worker *w);
/* fills `graph` from the manifest, once per worker */
void dbt_graph_ensure(dbt_worker *w);

/* on-run-end's results as a template value; borrows results (to_dict) */
tpl_value *dbt_results_tpl(const pv *results);

/*
 * Calls generic test `test`'s macro (test_<kind>) with its keyword
 * arguments rendered as dbt renders them (a string that is a ref(),
 * source(), var() or env_var() call is evaluated, others rendered and read
 * as literals) and `model` the tested relation (through the `where`
 * config, a subquery); the query goes to out.  *builtin is set, and
 * nothing rendered, when the project defines no such macro and the test
 * is one of dbt's four built-in ones.  Used by the parse (execute=False,
 * collecting config() and refs) and by the runner.
 */
cs_result dbt_generic_test_call(dbt_worker *w, size_t test, const dbt_render_opts *o, buf *out,
                                bool *builtin, cs_error *err) CS_MUST_CHECK;
/* test's own SQL (no ephemeral models injected): its file, macro or the built-in query */
cs_result dbt_render_test_sql(dbt_worker *w, size_t test, const dbt_render_opts *o, buf *out,
                              cs_error *err) CS_MUST_CHECK;
/* the relation a test is attached to (model, seed or source), or NULL */
tpl_value *dbt_test_target(const dbt_worker *w, size_t test);

/* fills every model's fingerprint, in m->order (refs first) */
void dbt_fingerprint_models(dbt_manifest *m);

#endif
