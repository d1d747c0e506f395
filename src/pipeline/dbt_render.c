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

/* collects the ephemeral models model reaches through ephemeral refs, deepest first */
static void collect_ephemeral(const dbt_manifest *m, size_t model, bool *seen, size_t *list,
                              size_t *n)
{
    const dbt_node *nd = &m->nodes[model];
    for (size_t i = 0; i < nd->ndeps; i++) {
        size_t d = nd->deps[i];
        if (m->nodes[d].mat != MAT_EPHEMERAL || seen[d])
            continue;
        seen[d] = true;
        collect_ephemeral(m, d, seen, list, n);
        list[(*n)++] = d;
    }
}

cs_result dbt_render_model(dbt_worker *w, size_t model, const dbt_render_opts *o, buf *out,
                           cs_error *err)
{
    const dbt_manifest *m = w->m;
    size_t n = 0, *list;
    bool *seen;
    buf own, ctes, part;
    cs_result rc = CS_OK;

    w->parsing = false;
    list = xrealloc(NULL, m->p->nmodels * sizeof(size_t));
    seen = xcalloc(m->p->nmodels, sizeof(bool));
    collect_ephemeral(m, model, seen, list, &n);
    buf_init(&own, 0);
    buf_init(&ctes, 0);
    buf_init(&part, 0);
    if ((rc = render_raw(w, model, o, &own, err)) != CS_OK)
        goto out;
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
        mat_inject_ctes(out, own.data ? own.data : "", ctes.data);
    else
        buf_puts(out, own.data ? own.data : "");
    if (!buf_ok(out) || !buf_ok(&ctes))
        rc = cs_fail(err, CS_INVALID, "%s: compiled SQL is too large", m->p->models[model].file);
out:
    buf_free(&own);
    buf_free(&ctes);
    buf_free(&part);
    free(list);
    free(seen);
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
                dbt_relation(m->set.database, m->seeds[seed].schema, m->p->seeds[seed].name));
    return tpl_render(t, w->env, NULL, out, err);
}
