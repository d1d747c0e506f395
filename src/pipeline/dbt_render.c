/*
 * dbt_render.c - the execute-phase renders: a model's SQL with its
 * ephemeral ancestors injected as CTEs, and hooks.
 */
#include "pipeline/dbt_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "pipeline/materialize.h"

/* renders model's own template (no CTE injection) */
static cs_result render_raw(dbt_worker *w, size_t model, const dbt_render_opts *o, buf *out,
                            cs_error *err)
{
    dbt_begin_render(w, (long)model, o);
    return tpl_render(w->m->nodes[model].tpl, w->env, NULL, out, err);
}

/* collects the ephemeral models that deps reach through ephemeral refs, deepest first */
static void collect_ephemeral(const dbt_manifest *m, const size_t *deps, size_t ndeps, bool *seen,
                              size_t *list, size_t *n)
{
    for (size_t i = 0; i < ndeps; i++) {
        size_t d = deps[i];
        if (m->nodes[d].mat != MAT_EPHEMERAL || seen[d])
            continue;
        seen[d] = true;
        collect_ephemeral(m, m->nodes[d].deps, m->nodes[d].ndeps, seen, list, n);
        list[(*n)++] = d;
    }
}

/*
 * own (rendered SQL that refs deps) into out, with the ephemeral models
 * it reaches injected as __dbt__cte__name CTEs; what names the SQL in
 * messages.
 */
static cs_result inject_ephemerals(dbt_worker *w, const size_t *deps, size_t ndeps,
                                   const dbt_render_opts *o, const char *own, const char *what,
                                   buf *out, cs_error *err)
{
    const dbt_manifest *m = w->m;
    size_t n = 0, *list;
    bool *seen;
    buf ctes, part;
    cs_result rc = CS_OK;

    list = xrealloc(NULL, (m->p->nmodels + 1) * sizeof(size_t));
    seen = xcalloc(m->p->nmodels + 1, sizeof(bool));
    collect_ephemeral(m, deps, ndeps, seen, list, &n);
    buf_init(&ctes, 0);
    buf_init(&part, 0);
    for (size_t i = 0; i < n; i++) {
        dbt_render_opts eo = *o;
        eo.is_incremental = false;
        buf_reset(&part);
        if ((rc = render_raw(w, list[i], &eo, &part, err)) != CS_OK)
            goto out;
        buf_printf(&ctes, "%s__dbt__cte__%s as ", i ? ",\n" : "", m->p->models[list[i]].name);
        mat_subquery(&ctes, part.data ? part.data : "");
    }
    if (n)
        mat_inject_ctes(out, own, ctes.data);
    else
        buf_puts(out, own);
    if (!buf_ok(out) || !buf_ok(&ctes))
        rc = cs_fail(err, CS_INVALID, "%s: compiled SQL is too large", what);
out:
    buf_free(&ctes);
    buf_free(&part);
    free(list);
    free(seen);
    return rc;
}

cs_result dbt_render_model(dbt_worker *w, size_t model, const dbt_render_opts *o, buf *out,
                           cs_error *err)
{
    const dbt_manifest *m = w->m;
    buf own;
    cs_result rc;

    w->parsing = false;
    buf_init(&own, 0);
    if ((rc = render_raw(w, model, o, &own, err)) == CS_OK)
        rc = inject_ephemerals(w, m->nodes[model].deps, m->nodes[model].ndeps, o,
                               own.data ? own.data : "", m->p->models[model].file, out, err);
    buf_free(&own);
    return rc;
}

cs_result dbt_render_test(dbt_worker *w, size_t test, const dbt_render_opts *o, buf *out,
                          cs_error *err)
{
    const dbt_test_node *tn = &w->m->tests[test];
    buf own;
    cs_result rc;

    buf_init(&own, 0);
    /* a test of (or reading) an ephemeral model gets it as a CTE, as in dbt */
    if ((rc = dbt_render_test_sql(w, test, o, &own, err)) == CS_OK)
        rc = inject_ephemerals(w, tn->deps, tn->ndeps, o, own.data ? own.data : "",
                               w->m->p->tests[test].file, out, err);
    buf_free(&own);
    return rc;
}

cs_result dbt_render_hook(dbt_worker *w, long model, const tpl_template *t,
                          const dbt_render_opts *o, buf *out, cs_error *err)
{
    cs_result rc;

    w->parsing = false;
    dbt_begin_render(w, model, o);
    rc = tpl_render(t, w->env, NULL, out, err);
    /* the results' to_dict methods borrow o->results: drop them now */
    if (o && o->results)
        tpl_env_set(w->env, "results", tpl_list_new());
    return rc;
}

cs_result dbt_render_seed_hook(dbt_worker *w, size_t seed, const tpl_template *t,
                               const dbt_render_opts *o, buf *out, cs_error *err)
{
    const dbt_manifest *m = w->m;

    w->parsing = false;
    dbt_begin_render(w, -1, o);
    tpl_env_set(w->env, "this",
                dbt_relation_typed(m->set.database, m->seeds[seed].schema, m->p->seeds[seed].name,
                                   "table"));
    return tpl_render(t, w->env, NULL, out, err);
}
