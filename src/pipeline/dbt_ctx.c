/*
 * dbt_ctx.c - see dbt_ctx.h: one thread's rendering context (dbt_worker)
 * and dbt's natives in it.
 *
 * Parse phase (execute=False): config() merges its keywords into the
 * model's config, ref() records a dependency and returns the relation,
 * statement/run_query run nothing, load_result returns none.  Execute
 * phase (execute=True): config() is a no-op, queries go to the runner's
 * callback.  One dbt_worker per thread; the manifest is read-only.
 */
#include "pipeline/dbt_int.h"
#include "pipeline/dbt_builtin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "pipeline/seed.h"
#include "common/xalloc.h"
#include "pipeline/materialize.h"

const char *dbt_mat_name(dbt_mat m)
{
    static const char *const names[] = {"view", "table", "incremental", "ephemeral", "custom"};
    return names[m];
}

const char *dbt_node_mat_name(const dbt_node *nd)
{
    return nd->mat == MAT_CUSTOM ? nd->mat_name : dbt_mat_name(nd->mat);
}

void dbt_unique_id(const pl_project *p, size_t model, char *out, size_t n)
{
    snprintf(out, n, "model.%s.%s", p->packages[p->models[model].package].name,
             p->models[model].name);
}

/* ---- relations ---- */

tpl_value *dbt_model_relation(const dbt_worker *w, size_t i)
{
    const dbt_node *n = &w->m->nodes[i];
    if (!w->parsing && n->mat == MAT_EPHEMERAL) {
        /* the CTE's name, unquoted as the WITH clause that defines it */
        char cte[512];
        snprintf(cte, sizeof(cte), "__dbt__cte__%s", w->m->p->models[i].name);
        tpl_value *r = dbt_relation_typed(NULL, NULL, cte, "cte"), *e = tpl_object_new(cte);
        for (size_t k = 0; k < tpl_dict_len(r); k++)
            tpl_dict_set(e, tpl_dict_key_at(r, k), tpl_ref(tpl_dict_value_at(r, k)));
        tpl_unref(r);
        tpl_dict_set(e, "schema", tpl_str(""));
        tpl_dict_set(e, "database", tpl_str(""));
        return e;
    }
    return dbt_relation_typed(w->m->set.database, n->schema ? n->schema : w->m->set.schema,
                              n->relname ? n->relname : w->m->p->models[i].name,
                              n->mat == MAT_VIEW ? "view" : "table");
}

/* ---- natives ---- */

static const char *arg_str(const tpl_args *a, size_t i, const char *name)
{
    return tpl_as_str(tpl_arg(a, i, name));
}

static cs_result n_config(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                          cs_error *err)
{
    dbt_worker *w = ud;

    if (w->parsing && w->collected) {
        pv *kw = pv_new(PV_MAP);
        for (size_t i = 0; i < a->nkw; i++)
            pv_set(kw, a->kwnames[i], dbt_tpl_to_pv(a->kw[i]));
        if (a->npos == 1 && tpl_typeof(a->pos[0]) == TPL_DICT) {
            pv *d = dbt_tpl_to_pv(a->pos[0]);
            project_config_merge(kw, d);
            pv_free(d);
        }
        /* materialized= is checked once the config is final (dbt_parse.c):
         * a custom materialization's block may come from any package */
        project_config_merge(w->collected, kw);
        pv_free(kw);
    }
    *out = tpl_str("");
    return CS_OK;
}

static cs_result n_ref(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out, cs_error *err)
{
    dbt_worker *w = ud;
    const char *pkg = NULL, *name = arg_str(a, 0, NULL);
    long i, seed;

    if (a->npos == 2) {
        pkg = name;
        name = arg_str(a, 1, NULL);
    }
    if (!name || (a->npos == 2 && !pkg))
        return cs_fail(err, CS_INVALID, "ref() takes a model name");
    i = project_find_model(w->m->p, pkg, name);
    if (i < 0 && (seed = seed_lookup(w->m->p, pkg, name)) >= 0) {
        /* a seed: loaded by `seed` (and first by `build`), in its own schema */
        const char *schema =
            w->m->seeds && w->m->seeds[seed].schema ? w->m->seeds[seed].schema : w->m->set.schema;
        if (w->parsing) {
            XGROW(w->seed_deps, w->nseed_deps);
            w->seed_deps[w->nseed_deps++] = (size_t)seed;
        }
        *out = dbt_relation_typed(w->m->set.database, schema, w->m->p->seeds[seed].name, "table");
        return CS_OK;
    }
    if (i < 0)
        return cs_fail(err, CS_INVALID, "ref('%s') names a model or seed that was not found", name);
    if (w->parsing) {
        w->deps = xrealloc(w->deps, (w->ndeps + 1) * sizeof(size_t));
        w->deps[w->ndeps++] = (size_t)i;
    }
    *out = dbt_model_relation(w, (size_t)i);
    return CS_OK;
}

static cs_result n_source(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                          cs_error *err)
{
    dbt_worker *w = ud;
    const char *s = arg_str(a, 0, "source_name"), *t = arg_str(a, 1, "table_name");
    long i;

    if (!s || !t)
        return cs_fail(err, CS_INVALID, "source() takes a source name and a table name");
    i = project_find_source(w->m->p, s, t);
    if (i < 0)
        return cs_fail(err, CS_INVALID, "source('%s', '%s') was not found in any .yml file", s, t);
    *out = dbt_relation(w->m->set.database, w->m->p->sources[i].schema,
                        w->m->p->sources[i].identifier);
    /* for selection (source:): the parse records which sources a model reads */
    if (w->parsing && w->model >= 0) {
        pl_model *pm = &w->m->p->models[w->model];
        bool known = false;
        for (size_t k = 0; k < pm->nsource_refs && !known; k++)
            known = pm->source_refs[k] == (size_t)i;
        if (!known) {
            XGROW(pm->source_refs, pm->nsource_refs);
            pm->source_refs[pm->nsource_refs++] = (size_t)i;
        }
    }
    if (w->parsing && w->inputs) {
        buf_puts(w->inputs, "source ");
        tpl_to_text(*out, w->inputs);
        buf_putc(w->inputs, '\n');
    }
    return CS_OK;
}

static cs_result n_is_incremental(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                  cs_error *err)
{
    dbt_worker *w = ud;
    *out = tpl_bool(!w->parsing && w->o && w->o->is_incremental);
    return CS_OK;
}

static const pv *lookup_var(const dbt_worker *w, const char *name)
{
    const pl_project *p = w->m->p;
    const pv *v;
    size_t pkg = w->model >= 0 ? p->models[w->model].package : 0;

    if ((v = pv_get(w->m->set.cli_vars, name)) != NULL)
        return v;
    if ((v = pv_get(pv_get(p->packages[0].vars, p->packages[pkg].name), name)) != NULL)
        return v;
    if ((v = pv_get(p->packages[0].vars, name)) != NULL)
        return v;
    return pv_get(p->packages[pkg].vars, name);
}

static cs_result n_var(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out, cs_error *err)
{
    dbt_worker *w = ud;
    const char *name = arg_str(a, 0, NULL);
    const pv *v;
    tpl_value *def = tpl_arg(a, 1, NULL);

    if (!name)
        return cs_fail(err, CS_INVALID, "var() takes a variable name");
    v = lookup_var(w, name);
    if (v) {
        *out = dbt_pv_to_tpl(v);
    } else if (def) {
        *out = tpl_ref(def);
    } else {
        return cs_fail(err, CS_INVALID, "required var '%s' not found in config", name);
    }
    return CS_OK;
}

static const char *env_lookup(char *const *env, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
            return env[i] + n + 1;
    return NULL;
}

static cs_result n_env_var(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                           cs_error *err)
{
    dbt_worker *w = ud;
    const char *name = arg_str(a, 0, NULL), *v;
    tpl_value *def = tpl_arg(a, 1, NULL);

    if (!name)
        return cs_fail(err, CS_INVALID, "env_var() takes a variable name");
    v = env_lookup(w->m->set.env, name);
    if (w->parsing && w->inputs)
        buf_printf(w->inputs, "env %s%s%s\n", name, v ? "=" : " unset", v ? v : "");
    if (v)
        *out = tpl_str(v);
    else if (def)
        *out = tpl_ref(def);
    else
        return cs_fail(err, CS_INVALID, "env var required but not provided: '%s'", name);
    return CS_OK;
}

static cs_result n_statement(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                             cs_error *err)
{
    dbt_worker *w = ud;
    const char *name = arg_str(a, 0, "name");
    bool fetch = tpl_truthy(tpl_arg(a, 1, "fetch_result"));
    buf body;
    cs_result rc;
    pv *res = NULL;

    buf_init(&body, 0);
    rc = tpl_call_render_caller(call, &body, err);
    if (rc == CS_OK && !w->parsing && w->o && w->o->execute) {
        rc = dbt_run_sql(w, body.data ? body.data : "", &res, err);
        /* every named statement's result is kept, as dbt keeps it (a
         * materialization reads load_result('main').response); its rows
         * only with fetch_result */
        if (rc == CS_OK && name) {
            tpl_value *r = tpl_dict_new(), *resp = tpl_dict_new();
            pv *empty = fetch ? NULL : pv_new(PV_MAP);
            const char *status = pv_gets(res, "status");
            const pv *n = pv_get(res, "rows_affected");
            tpl_dict_set(r, "data", fetch ? dbt_pv_to_tpl(pv_get(res, "rows")) : tpl_list_new());
            tpl_dict_set(r, "table", dbt_agate_table(fetch ? res : empty));
            tpl_dict_set(resp, "_message", tpl_str(status ? status : ""));
            tpl_dict_set(resp, "code",
                         tpl_strn(status ? status : "", status ? strcspn(status, " ") : 0));
            tpl_dict_set(resp, "rows_affected",
                         n && n->type == PV_INT ? tpl_int(n->i) : tpl_none());
            tpl_dict_set(r, "response", resp);
            tpl_dict_set(w->results, name, r);
            pv_free(empty);
        }
    }
    pv_free(res);
    buf_free(&body);
    if (rc == CS_OK)
        *out = tpl_str("");
    return rc;
}

static cs_result n_load_result(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                               cs_error *err)
{
    dbt_worker *w = ud;
    const char *name = arg_str(a, 0, NULL);
    tpl_value *r = name ? tpl_dict_get(w->results, name) : NULL;
    *out = r ? tpl_ref(r) : tpl_none();
    return CS_OK;
}

static cs_result n_run_query(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                             cs_error *err)
{
    dbt_worker *w = ud;
    const char *sql = arg_str(a, 0, "sql");
    pv *res = NULL;
    cs_result rc;

    if (w->parsing || !w->o || !w->o->execute) {
        *out = tpl_none();
        return CS_OK;
    }
    if (!sql)
        return cs_fail(err, CS_INVALID, "run_query() takes the SQL text");
    if ((rc = dbt_run_sql(w, sql, &res, err)) != CS_OK)
        return rc;
    *out = dbt_agate_table(res);
    pv_free(res);
    return CS_OK;
}

/* dbt's before_begin(sql) / after_commit(sql): a hook that runs outside
 * the model's transaction ({sql, transaction: false}) */
static cs_result n_outside_hook(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                cs_error *err)
{
    const char *sql = arg_str(a, 0, "sql");
    if (!sql)
        return cs_fail(err, CS_INVALID, "%s() takes the hook's SQL", tpl_call_where(call));
    *out = tpl_dict_new();
    tpl_dict_set(*out, "sql", tpl_str(sql));
    tpl_dict_set(*out, "transaction", tpl_bool(false));
    return CS_OK;
}

static cs_result n_log(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out, cs_error *err)
{
    dbt_worker *w = ud;
    buf b;
    buf_init(&b, 0);
    tpl_to_text(tpl_arg(a, 0, "msg"), &b);
    if (!w->parsing)
        log_msg(tpl_truthy(tpl_arg(a, 1, "info")) ? LOG_INFO : LOG_DEBUG,
                w->model >= 0 ? w->m->p->models[w->model].name : "pipeline", "%s",
                b.data ? b.data : "");
    buf_free(&b);
    *out = tpl_str("");
    return CS_OK;
}

static cs_result n_raise(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                         cs_error *err)
{
    buf b;
    buf_init(&b, 0);
    tpl_to_text(tpl_arg(a, 0, "msg"), &b);
    cs_fail(err, CS_INVALID, "compilation error: %s", b.data ? b.data : "");
    buf_free(&b);
    return CS_INVALID;
}

static cs_result n_warn(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out, cs_error *err)
{
    buf b;
    buf_init(&b, 0);
    tpl_to_text(tpl_arg(a, 0, "msg"), &b);
    log_warn("pipeline", "%s: %s", tpl_call_where(call), b.data ? b.data : "");
    buf_free(&b);
    *out = tpl_str("");
    return CS_OK;
}

/*
 * adapter.dispatch(macro_name, macro_namespace=None): the first macro
 * postgres__NAME, else default__NAME, in each package of the search order:
 * the root project's `dispatch:` entry for the namespace, else the root
 * project then the namespace; then the global ones (a macro of no package).
 */
static cs_result n_dispatch(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                            cs_error *err)
{
    dbt_worker *w = ud;
    const char *name = arg_str(a, 0, "macro_name"), *ns = arg_str(a, 1, "macro_namespace");
    const char *order[32], *prefixes[] = {"postgres__", "default__"};
    const pv *d = w->m->p->packages[0].dispatch, *so = NULL;
    tpl_env *env = tpl_call_env(call);
    size_t n = 0;
    char full[256];

    if (!name || !*name)
        return cs_fail(err, CS_INVALID, "adapter.dispatch() takes a macro name");
    for (size_t i = 0; ns && d && d->type == PV_LIST && i < d->n; i++)
        if (pv_gets(d->items[i], "macro_namespace") &&
            strcmp(pv_gets(d->items[i], "macro_namespace"), ns) == 0)
            so = pv_get(d->items[i], "search_order");
    if (so && so->type == PV_LIST) {
        for (size_t i = 0; i < so->n && n < sizeof(order) / sizeof(order[0]); i++)
            if (pv_s(so->items[i]))
                order[n++] = so->items[i]->s;
    } else {
        order[n++] = w->m->p->packages[0].name;
        if (ns)
            order[n++] = ns;
    }
    for (size_t k = 0; k <= n; k++) {
        tpl_value *space = k < n ? tpl_env_get(env, order[k]) : NULL;
        if (k < n && (!space || tpl_typeof(space) != TPL_DICT))
            continue;
        for (size_t p = 0; p < 2; p++) {
            snprintf(full, sizeof(full), "%s%s", prefixes[p], name);
            tpl_value *f = k < n ? tpl_dict_get(space, full) : tpl_env_get(env, full);
            if (f) {
                *out = tpl_ref(f);
                return CS_OK;
            }
        }
    }
    return cs_fail(err, CS_INVALID,
                   "adapter.dispatch('%s'%s%s%s): no macro postgres__%s or default__%s in the "
                   "search order",
                   name, ns ? ", '" : "", ns ? ns : "", ns ? "'" : "", name, name);
}

static cs_result n_quote(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                         cs_error *err)
{
    buf t, b;
    buf_init(&t, 0);
    buf_init(&b, 0);
    tpl_to_text(tpl_arg(a, 0, "identifier"), &t);
    mat_quote_ident(&b, t.data ? t.data : "");
    *out = tpl_str(b.data ? b.data : "");
    buf_free(&t);
    buf_free(&b);
    return CS_OK;
}

/* print() in a template: dbt writes it to the log */
static void template_print(void *ud, const char *where, const char *msg)
{
    log_info("pipeline", "%s: %s", where, msg);
}

dbt_worker *dbt_worker_new(const dbt_manifest *m)
{
    dbt_worker *w = xrealloc(NULL, sizeof(*w));
    tpl_value *obj;

    memset(w, 0, sizeof(*w));
    w->m = m;
    w->model = -1;
    w->env = tpl_env_new();
    tpl_env_set_log(w->env, template_print, NULL);
    w->results = tpl_dict_new();
    /* dbt's own macros first (namespace dbt), so that any package's win */
    for (size_t i = 0; i < dbt_builtin_nfiles; i++)
        if (m->builtin && m->builtin[i])
            tpl_env_add_macros(w->env, m->builtin[i], "dbt");
    /* package macros first, the root project's last, so that the root wins */
    for (size_t pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < m->p->nmacros; i++)
            if ((m->p->macros[i].package == 0) == (pass == 1) && m->macros[i])
                tpl_env_add_macros(w->env, m->macros[i],
                                   m->p->packages[m->p->macros[i].package].name);
    tpl_env_set(w->env, "config", tpl_func_new("config", n_config, w));
    tpl_env_set(w->env, "ref", tpl_func_new("ref", n_ref, w));
    tpl_env_set(w->env, "source", tpl_func_new("source", n_source, w));
    tpl_env_set(w->env, "is_incremental", tpl_func_new("is_incremental", n_is_incremental, w));
    tpl_env_set(w->env, "var", tpl_func_new("var", n_var, w));
    tpl_env_set(w->env, "env_var", tpl_func_new("env_var", n_env_var, w));
    tpl_env_set(w->env, "statement", tpl_func_new("statement", n_statement, w));
    tpl_env_set(w->env, "load_result", tpl_func_new("load_result", n_load_result, w));
    tpl_env_set(w->env, "run_query", tpl_func_new("run_query", n_run_query, w));
    tpl_env_set(w->env, "log", tpl_func_new("log", n_log, w));
    tpl_env_set(w->env, "before_begin", tpl_func_new("before_begin", n_outside_hook, w));
    tpl_env_set(w->env, "after_commit", tpl_func_new("after_commit", n_outside_hook, w));
    obj = tpl_object_new("exceptions");
    tpl_dict_set(obj, "raise_compiler_error", tpl_func_new("raise_compiler_error", n_raise, w));
    tpl_dict_set(obj, "warn", tpl_func_new("warn", n_warn, w));
    tpl_env_set(w->env, "exceptions", obj);
    obj = tpl_object_new("adapter");
    tpl_dict_set(obj, "quote", tpl_func_new("quote", n_quote, w));
    /* dbt-postgres quotes every part by default, whatever the quote_key */
    tpl_dict_set(obj, "quote_as_configured", tpl_func_new("quote_as_configured", n_quote, w));
    tpl_dict_set(obj, "dispatch", tpl_func_new("dispatch", n_dispatch, w));
    dbt_adapter_add_methods(obj, w);
    tpl_env_set(w->env, "adapter", obj);
    dbt_globals_init(w);
    dbt_materialization_natives(w);
    return w;
}

void dbt_worker_free(dbt_worker *w)
{
    if (!w)
        return;
    tpl_env_free(w->env);
    tpl_unref(w->results);
    free(w->deps);
    free(w->seed_deps);
    free(w);
}
