/*
 * dbt_ctx.c - see dbt_ctx.h.
 *
 * Parse phase (execute=False): config() merges its keywords into the
 * model's config, ref() records a dependency and returns the relation,
 * statement/run_query run nothing, load_result returns none.  Execute
 * phase (execute=True): config() is a no-op, queries go to the runner's
 * callback.  One dbt_worker per thread; the manifest is read-only.
 */
#include "pipeline/dbt_ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "pipeline/materialize.h"
#include "pipeline/seed.h"
#include "common/xalloc.h"

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
    tpl_value *results; /* statement results by name */
    buf *inputs;        /* parse: the env_var() values and source() relations read */
};

const char *dbt_mat_name(dbt_mat m)
{
    static const char *const names[] = {"view", "table", "incremental", "ephemeral"};
    return names[m];
}

/* ---- pv <-> tpl ---- */

static tpl_value *pv_to_tpl(const pv *v)
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
            tpl_list_push(t, pv_to_tpl(v->items[i]));
        return t;
    case PV_MAP:
        t = tpl_dict_new();
        for (size_t i = 0; i < v->n; i++)
            tpl_dict_set(t, v->keys[i], pv_to_tpl(v->items[i]));
        return t;
    }
    return tpl_none();
}

static pv *tpl_to_pv(const tpl_value *t)
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
            pv_push(v, tpl_to_pv(tpl_list_get(t, i)));
        return v;
    case TPL_DICT:
        v = pv_new(PV_MAP);
        for (size_t i = 0; i < tpl_dict_len(t); i++)
            pv_set(v, tpl_dict_key_at(t, i), tpl_to_pv(tpl_dict_value_at(t, i)));
        return v;
    default:
        buf_init(&b, 0);
        tpl_to_text(t, &b);
        v = pv_str(b.data ? b.data : "");
        buf_free(&b);
        return v;
    }
}

/* ---- relations ---- */

static tpl_value *relation(const char *database, const char *schema, const char *name)
{
    buf b;
    tpl_value *r;

    buf_init(&b, 0);
    mat_relation(&b, schema, name);
    r = tpl_object_new(b.data);
    buf_free(&b);
    tpl_dict_set(r, "database", tpl_str(database ? database : ""));
    tpl_dict_set(r, "schema", tpl_str(schema));
    tpl_dict_set(r, "name", tpl_str(name));
    tpl_dict_set(r, "identifier", tpl_str(name));
    return r;
}

static tpl_value *model_relation(const dbt_worker *w, size_t i)
{
    const dbt_node *n = &w->m->nodes[i];
    if (!w->parsing && n->mat == MAT_EPHEMERAL) {
        char cte[512];
        snprintf(cte, sizeof(cte), "__dbt__cte__%s", w->m->p->models[i].name);
        tpl_value *r = tpl_object_new(cte);
        tpl_dict_set(r, "name", tpl_str(cte));
        tpl_dict_set(r, "identifier", tpl_str(cte));
        tpl_dict_set(r, "schema", tpl_str(""));
        return r;
    }
    return relation(w->m->set.database, w->m->set.schema,
                    n->relname ? n->relname : w->m->p->models[i].name);
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
            pv_set(kw, a->kwnames[i], tpl_to_pv(a->kw[i]));
        if (a->npos == 1 && tpl_typeof(a->pos[0]) == TPL_DICT) {
            pv *d = tpl_to_pv(a->pos[0]);
            project_config_merge(kw, d);
            pv_free(d);
        }
        const char *mat = pv_gets(kw, "materialized");
        if (mat && strcmp(mat, "view") != 0 && strcmp(mat, "table") != 0 &&
            strcmp(mat, "incremental") != 0 && strcmp(mat, "ephemeral") != 0) {
            cs_fail(err, CS_INVALID,
                    "materialized='%s' is not supported (view, table, incremental, ephemeral)",
                    mat);
            pv_free(kw);
            return CS_INVALID;
        }
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
        /* a seed: loaded by `seed` (and first by `build`), not a graph node */
        *out = relation(w->m->set.database, w->m->set.schema, w->m->p->seeds[seed].name);
        return CS_OK;
    }
    if (i < 0)
        return cs_fail(err, CS_INVALID, "ref('%s') names a model or seed that was not found", name);
    if (w->parsing) {
        w->deps = xrealloc(w->deps, (w->ndeps + 1) * sizeof(size_t));
        w->deps[w->ndeps++] = (size_t)i;
    }
    *out = model_relation(w, (size_t)i);
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
    *out = relation(w->m->set.database, w->m->p->sources[i].schema, w->m->p->sources[i].identifier);
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
        *out = pv_to_tpl(v);
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
static tpl_value *table_value(const pv *t)
{
    const pv *cols = pv_get(t, "columns"), *rows = pv_get(t, "rows");
    tpl_value *tv = tpl_list_new(), *rl = tpl_list_new(), *cl = tpl_list_new();

    for (size_t r = 0; rows && r < rows->n; r++) {
        tpl_value *row = tpl_list_new();
        for (size_t c = 0; cols && c < cols->n && c < rows->items[r]->n; c++) {
            tpl_value *cell = pv_to_tpl(rows->items[r]->items[c]);
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
        tpl_list_set_attr(col, "name", pv_to_tpl(cols->items[c]));
        tpl_list_set_attr(col, "values", vals);
        tpl_list_push(cl, tpl_ref(col));
        tpl_list_set_attr(cl, pv_s(cols->items[c]) ? cols->items[c]->s : "", col);
    }
    tpl_list_set_attr(tv, "columns", cl);
    tpl_list_set_attr(tv, "column_names", pv_to_tpl(cols));
    tpl_list_set_attr(tv, "rows", rl);
    return tv;
}

static cs_result run_sql(dbt_worker *w, const char *sql, pv **res, cs_error *err)
{
    if (!w->o || !w->o->sql)
        return cs_fail(err, CS_INVALID, "no database connection to run a query in this phase");
    return w->o->sql(w->o->sql_ud, sql, res, err);
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
        rc = run_sql(w, body.data ? body.data : "", &res, err);
        if (rc == CS_OK && name && fetch) {
            tpl_value *r = tpl_dict_new();
            tpl_dict_set(r, "data", pv_to_tpl(pv_get(res, "rows")));
            tpl_dict_set(r, "table", table_value(res));
            tpl_dict_set(r, "response", tpl_dict_new());
            tpl_dict_set(w->results, name, r);
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
    if ((rc = run_sql(w, sql, &res, err)) != CS_OK)
        return rc;
    *out = table_value(res);
    pv_free(res);
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

static cs_result n_unsupported(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                               cs_error *err)
{
    return cs_fail(err, CS_INVALID, "%s is not supported by cht-sync's pipeline", (const char *)ud);
}

void dbt_unique_id(const pl_project *p, size_t model, char *out, size_t n)
{
    snprintf(out, n, "model.%s.%s", p->packages[p->models[model].package].name,
             p->models[model].name);
}

bool dbt_owns_results_table(const dbt_manifest *m)
{
    return project_find_model(m->p, NULL, "dbt_results") >= 0;
}

/* RunResult.to_dict(): a fresh copy of the result's map (ud) */
static cs_result n_to_dict(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                           cs_error *err)
{
    *out = pv_to_tpl((const pv *)ud);
    return CS_OK;
}

/* the tpl value of on-run-end's results; valid while `results` (borrowed
 * by the to_dict methods) lives: dbt_render_hook drops it after the render */
static tpl_value *results_value(const pv *results)
{
    tpl_value *l = tpl_list_new();
    for (size_t i = 0; results && i < results->n; i++) {
        tpl_value *r = pv_to_tpl(results->items[i]);
        tpl_dict_set(r, "to_dict", tpl_func_new("to_dict", n_to_dict, results->items[i]));
        tpl_list_push(l, r);
    }
    return l;
}

void dbt_worker_set_invocation_id(dbt_worker *w, const char *id)
{
    tpl_env_set(w->env, "invocation_id", tpl_str(id));
}

dbt_worker *dbt_worker_new(const dbt_manifest *m)
{
    dbt_worker *w = xrealloc(NULL, sizeof(*w));
    tpl_value *obj, *target;
    static const char *const unsupported[] = {"get_columns_in_relation", "get_relation",
                                              "create_schema",           "drop_relation",
                                              "rename_relation",         "already_exists"};

    memset(w, 0, sizeof(*w));
    w->m = m;
    w->model = -1;
    w->env = tpl_env_new();
    w->results = tpl_dict_new();
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
    obj = tpl_object_new("exceptions");
    tpl_dict_set(obj, "raise_compiler_error", tpl_func_new("raise_compiler_error", n_raise, w));
    tpl_dict_set(obj, "warn", tpl_func_new("warn", n_warn, w));
    tpl_env_set(w->env, "exceptions", obj);
    obj = tpl_object_new("adapter");
    tpl_dict_set(obj, "quote", tpl_func_new("quote", n_quote, w));
    tpl_dict_set(obj, "dispatch", tpl_func_new("dispatch", n_dispatch, w));
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        char name[64];
        snprintf(name, sizeof(name), "adapter.%s", unsupported[i]);
        tpl_dict_set(obj, unsupported[i],
                     tpl_func_new(unsupported[i], n_unsupported, (void *)unsupported[i]));
    }
    tpl_env_set(w->env, "adapter", obj);
    target = tpl_dict_new();
    tpl_dict_set(target, "name", tpl_str("default"));
    tpl_dict_set(target, "type", tpl_str("postgres"));
    tpl_dict_set(target, "schema", tpl_str(m->set.schema));
    tpl_dict_set(target, "database", tpl_str(m->set.database ? m->set.database : ""));
    tpl_dict_set(target, "dbname", tpl_str(m->set.database ? m->set.database : ""));
    tpl_dict_set(target, "user", tpl_str(m->set.user ? m->set.user : ""));
    tpl_dict_set(target, "threads", tpl_int(m->set.threads));
    tpl_env_set(w->env, "target", target);
    tpl_env_set(w->env, "invocation_id", tpl_str(""));
    return w;
}

void dbt_worker_free(dbt_worker *w)
{
    if (!w)
        return;
    tpl_env_free(w->env);
    tpl_unref(w->results);
    free(w->deps);
    free(w);
}

/* sets the per-render globals: this, execute, model */
static void begin_render(dbt_worker *w, long model, const dbt_render_opts *o)
{
    const pl_project *p = w->m->p;
    w->model = model;
    w->o = o;
    tpl_unref(w->results);
    w->results = tpl_dict_new();
    tpl_env_set(w->env, "execute", tpl_bool(o && o->execute));
    if (model >= 0) {
        tpl_value *md = tpl_dict_new();
        char uid[512];
        dbt_unique_id(p, (size_t)model, uid, sizeof(uid));
        tpl_env_set(w->env, "this",
                    relation(w->m->set.database, w->m->set.schema,
                             w->m->nodes[model].relname ? w->m->nodes[model].relname
                                                        : p->models[model].name));
        tpl_dict_set(md, "name", tpl_str(p->models[model].name));
        tpl_dict_set(md, "unique_id", tpl_str(uid));
        tpl_dict_set(md, "package_name", tpl_str(p->packages[p->models[model].package].name));
        tpl_dict_set(md, "original_file_path", tpl_str(p->models[model].relpath));
        tpl_env_set(w->env, "model", md);
    } else {
        tpl_env_set(w->env, "this", tpl_none());
    }
    tpl_env_set(w->env, "results", o && o->results ? results_value(o->results) : tpl_list_new());
}

/* renders model's own template (no CTE injection) */
static cs_result render_raw(dbt_worker *w, size_t model, const dbt_render_opts *o, buf *out,
                            cs_error *err)
{
    begin_render(w, (long)model, o);
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
    begin_render(w, model, o);
    rc = tpl_render(t, w->env, NULL, out, err);
    /* the results' to_dict methods borrow o->results: drop them now */
    if (o && o->results)
        tpl_env_set(w->env, "results", tpl_list_new());
    return rc;
}

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
    begin_render(w, -1, o);
    return tpl_render(w->m->tests[test].tpl, w->env, NULL, out, err);
}

/* ---- parse phase ---- */

static const char *node_name(void *ud, size_t i)
{
    return ((const dbt_manifest *)ud)->p->models[i].name;
}

/* renders a YAML string that holds {{ }} in place (sources, constraints) */
static cs_result render_string(dbt_worker *w, char **s, const char *where, cs_error *err)
{
    tpl_template *t;
    buf b;
    cs_result rc;
    dbt_render_opts o = {0};

    if (!strstr(*s, "{{") && !strstr(*s, "{%"))
        return CS_OK;
    t = tpl_compile(where, *s, err);
    if (!t)
        return CS_INVALID;
    buf_init(&b, 0);
    w->parsing = true;
    begin_render(w, -1, &o);
    rc = tpl_render(t, w->env, NULL, &b, err);
    if (rc == CS_OK) {
        free(*s);
        *s = buf_steal(&b);
    }
    buf_free(&b);
    tpl_template_free(t);
    return rc;
}

static cs_result render_pv_strings(dbt_worker *w, pv *v, const char *where, cs_error *err)
{
    cs_result rc = CS_OK;
    if (!v)
        return CS_OK;
    if (v->type == PV_STR)
        return render_string(w, &v->s, where, err);
    for (size_t i = 0; i < v->n && rc == CS_OK; i++)
        rc = render_pv_strings(w, v->items[i], where, err);
    return rc;
}

static cs_result compile_hooks(const pv *list, const char *file, const char *what,
                               tpl_template ***out, size_t *n, cs_error *err)
{
    char where[1024];
    *out = NULL;
    *n = 0;
    for (size_t i = 0; list && list->type == PV_LIST && i < list->n; i++) {
        const char *sql = pv_s(list->items[i]);
        tpl_template *t;
        if (!sql) {
            if (pv_get(list->items[i], "sql"))
                sql = pv_gets(list->items[i], "sql");
            if (!sql)
                return cs_fail(err, CS_INVALID, "%s: %s %zu is not a string", file, what, i + 1);
        }
        snprintf(where, sizeof(where), "%s (%s %zu)", file, what, i + 1);
        if (!(t = tpl_compile(where, sql, err)))
            return CS_INVALID;
        *out = xrealloc(*out, (*n + 1) * sizeof(**out));
        (*out)[(*n)++] = t;
    }
    return CS_OK;
}

/* appends the compiled hooks of list to *out (n entries) */
static cs_result append_hooks(const pv *list, const char *file, const char *what,
                              tpl_template ***out, size_t *n, cs_error *err)
{
    tpl_template **more;
    size_t nmore;
    cs_result rc = compile_hooks(list, file, what, &more, &nmore, err);
    if (rc != CS_OK)
        return rc;
    if (nmore > 0) {
        *out = xrealloc(*out, (*n + nmore) * sizeof(**out));
        memcpy(*out + *n, more, nmore * sizeof(*more));
        *n += nmore;
    }
    free(more);
    return CS_OK;
}

/*
 * on-run-start and on-run-end of every project, in dbt's order: the
 * packages' by package name, then the root project's, so that a package's
 * set-up (the base models' conversion functions, CHT Pipeline's dbt_results
 * rows) runs when it is installed under a deployment's project too.
 */
static cs_result compile_run_hooks(dbt_manifest *m, cs_error *err)
{
    const pl_project *p = m->p;
    size_t *order = xcalloc(p->npackages + 1, sizeof(*order)), n = 0;
    cs_result rc = CS_OK;

    for (size_t k = 1; k < p->npackages; k++) {
        size_t at = n++;
        while (at > 0 && strcmp(p->packages[order[at - 1]].name, p->packages[k].name) > 0) {
            order[at] = order[at - 1];
            at--;
        }
        order[at] = k;
    }
    order[n++] = 0;
    for (size_t i = 0; i < n && rc == CS_OK; i++) {
        const pl_package *pk = &p->packages[order[i]];
        if ((rc = append_hooks(pk->on_run_start, pk->file, "on-run-start", &m->on_run_start,
                               &m->non_run_start, err)) == CS_OK)
            rc = append_hooks(pk->on_run_end, pk->file, "on-run-end", &m->on_run_end,
                              &m->non_run_end, err);
    }
    free(order);
    return rc;
}

/*
 * Which macro files a model can reach, for its fingerprint.  A file is
 * reached when a macro it defines is called (NAME followed by "(") in the
 * model's source, its config (hooks), or a file already reached.  Per file,
 * not per macro, and by name, not by scope: a false positive only makes a
 * rebuild more likely, never less.
 */
typedef struct {
    char **names; /* macros the file defines */
    size_t n;
} macro_file_names;

static bool ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* the macro names defined in text ({% macro NAME( ... ) %}) */
static void scan_macro_names(const char *text, macro_file_names *out)
{
    memset(out, 0, sizeof(*out));
    for (const char *t = strstr(text, "{%"); t; t = strstr(t + 2, "{%")) {
        const char *q = t + 2, *e;
        if (*q == '-' || *q == '+')
            q++;
        q += strspn(q, " \t\r\n");
        if (strncmp(q, "macro", 5) != 0 || ident_char(q[5]))
            continue;
        q += 5;
        q += strspn(q, " \t\r\n");
        for (e = q; ident_char(*e); e++)
            ;
        if (e > q) {
            XGROW(out->names, out->n);
            out->names[out->n++] = xstrndup(q, (size_t)(e - q));
        }
    }
}

/* whether text calls name: NAME, then optional blanks, then "(" */
static bool calls(const char *text, const char *name)
{
    size_t l = strlen(name);
    for (const char *t = strstr(text, name); t; t = strstr(t + 1, name)) {
        const char *e = t + l;
        if ((t > text && ident_char(t[-1])) || ident_char(*e))
            continue;
        e += strspn(e, " \t\r\n");
        if (*e == '(')
            return true;
    }
    return false;
}

/* FNV-1a of s plus a separator, so that ("ab", "c") and ("a", "bc") differ */
static void fnv(unsigned long long *h, const char *s)
{
    for (; s && *s; s++) {
        *h ^= (unsigned char)*s;
        *h *= 1099511628211ULL;
    }
    *h ^= 0xff;
    *h *= 1099511628211ULL;
}

/* hashes the text of every macro file the model's texts reach */
static void hash_reached_macros(const dbt_manifest *m, const macro_file_names *mf,
                                const char *const *texts, size_t ntexts, unsigned long long *h)
{
    size_t nf = m->p->nmacros;
    bool *in = xcalloc(nf, sizeof(bool)), grew = true;

    while (grew) {
        grew = false;
        for (size_t f = 0; f < nf; f++) {
            for (size_t k = 0; !in[f] && k < mf[f].n; k++) {
                for (size_t t = 0; !in[f] && t < ntexts; t++)
                    in[f] = calls(texts[t], mf[f].names[k]);
                for (size_t g = 0; !in[f] && g < nf; g++)
                    in[f] = in[g] && calls(m->p->macros[g].text, mf[f].names[k]);
                grew = grew || in[f];
            }
        }
    }
    for (size_t f = 0; f < nf; f++)
        if (in[f])
            fnv(h, m->p->macros[f].text);
    free(in);
}

static cs_result parse_model(dbt_manifest *m, dbt_worker *w, size_t i, cs_error *err)
{
    pl_model *pm = &m->p->models[i];
    dbt_node *nd = &m->nodes[i];
    dbt_render_opts o = {0};
    buf b, inputs;
    cs_result rc;
    const char *mat, *alias;
    const pv *uk, *contract;

    if (!(nd->tpl = tpl_compile(pm->file, pm->sql, err)))
        return CS_INVALID;
    w->parsing = true;
    w->collected = pv_copy(pm->config);
    free(w->deps);
    w->deps = NULL;
    w->ndeps = 0;
    begin_render(w, (long)i, &o);
    buf_init(&b, 0);
    buf_init(&inputs, 0);
    w->inputs = &inputs;
    rc = tpl_render(nd->tpl, w->env, NULL, &b, err);
    w->inputs = NULL;
    buf_free(&b);
    if (rc != CS_OK) {
        pv_free(w->collected);
        w->collected = NULL;
        buf_free(&inputs);
        return rc;
    }
    nd->inputs = buf_steal(&inputs);
    nd->config = w->collected;
    w->collected = NULL;
    /* selection (tag:, config.X:) sees the final config, config() included */
    pv_free(pm->config);
    pm->config = pv_copy(nd->config);
    nd->deps = w->deps;
    nd->ndeps = w->ndeps;
    w->deps = NULL;
    w->ndeps = 0;

    mat = pv_gets(nd->config, "materialized");
    if (!mat || strcmp(mat, "view") == 0)
        nd->mat = MAT_VIEW;
    else if (strcmp(mat, "table") == 0)
        nd->mat = MAT_TABLE;
    else if (strcmp(mat, "incremental") == 0)
        nd->mat = MAT_INCREMENTAL;
    else if (strcmp(mat, "ephemeral") == 0)
        nd->mat = MAT_EPHEMERAL;
    else
        return cs_fail(err, CS_INVALID,
                       "%s:1: materialized='%s' is not supported (view, table, "
                       "incremental, ephemeral)",
                       pm->file, mat);
    if (pv_get(nd->config, "schema") && pv_gets(nd->config, "schema"))
        return cs_fail(err, CS_INVALID,
                       "%s:1: a custom schema ('%s') is not supported: every model is built in "
                       "POSTGRES_SCHEMA",
                       pm->file, pv_gets(nd->config, "schema"));
    alias = pv_gets(nd->config, "alias");
    nd->relname = xstrdup(alias ? alias : pm->name);
    uk = pv_get(nd->config, "unique_key");
    if (pv_s(uk)) {
        /* "a, b" is accepted the way dbt passes it through to SQL */
        char *copy = xstrdup(uk->s), *save = NULL;
        for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
            nd->unique_key = xrealloc(nd->unique_key, (nd->nunique_key + 1) * sizeof(char *));
            nd->unique_key[nd->nunique_key++] = xstrdup(tok);
        }
        free(copy);
    } else if (uk && uk->type == PV_LIST) {
        for (size_t k = 0; k < uk->n; k++) {
            if (!pv_s(uk->items[k]))
                return cs_fail(err, CS_INVALID, "%s: unique_key entries must be column names",
                               pm->file);
            nd->unique_key = xrealloc(nd->unique_key, (nd->nunique_key + 1) * sizeof(char *));
            nd->unique_key[nd->nunique_key++] = xstrdup(uk->items[k]->s);
        }
    }
    {
        const char *osc = pv_gets(nd->config, "on_schema_change");
        if (osc && strcmp(osc, "ignore") != 0 && strcmp(osc, "append_new_columns") != 0 &&
            strcmp(osc, "fail") != 0 && strcmp(osc, "sync_all_columns") != 0)
            return cs_fail(err, CS_INVALID, "%s: on_schema_change='%s' is not supported", pm->file,
                           osc);
        const char *strategy = pv_gets(nd->config, "incremental_strategy");
        if (strategy && strcmp(strategy, "delete+insert") != 0 && strcmp(strategy, "append") != 0 &&
            strcmp(strategy, "merge") != 0)
            return cs_fail(err, CS_INVALID,
                           "%s: incremental_strategy='%s' is not supported (delete+insert, "
                           "merge, append)",
                           pm->file, strategy);
    }
    if ((rc = compile_hooks(pv_get(nd->config, "pre_hook"), pm->file, "pre_hook", &nd->pre_hooks,
                            &nd->npre_hooks, err)) != CS_OK ||
        (rc = compile_hooks(pv_get(nd->config, "post_hook"), pm->file, "post_hook", &nd->post_hooks,
                            &nd->npost_hooks, err)) != CS_OK)
        return rc;
    contract = pv_get(nd->config, "contract");
    if (pv_truthy(pv_get(contract, "enforced"))) {
        if (!pm->columns || pm->columns->n == 0)
            return cs_fail(err, CS_INVALID,
                           "%s: the contract of model \"%s\" is enforced but no columns are "
                           "described",
                           pm->props_file ? pm->props_file : pm->file, pm->name);
        nd->contract = pv_copy(pm->columns);
        nd->constraints = pv_copy(pm->constraints);
        if ((rc = render_pv_strings(w, nd->contract, pm->props_file, err)) != CS_OK ||
            (rc = render_pv_strings(w, nd->constraints, pm->props_file, err)) != CS_OK)
            return rc;
    }
    return CS_OK;
}

/*
 * A model's fingerprint: what defines it, not what it is run with.  Its
 * template source, the macro files it can reach, the env_var() values and
 * source() relations it read while parsing, its final config, contract
 * and constraints, and the fingerprints of the models it refs.  Var values
 * (--vars, DBT_BATCH_SIZE, project vars) are not part of it: they are
 * run-time input, so `--vars '{batch_size: 10}'` never forces a rebuild.
 */
static void fingerprint(dbt_manifest *m, const macro_file_names *mf, size_t i)
{
    dbt_node *nd = &m->nodes[i];
    const pl_model *pm = &m->p->models[i];
    unsigned long long h = 1469598103934665603ULL;
    const char *texts[2];
    buf b;

    buf_init(&b, 0);
    pv_to_text(nd->config, &b);
    fnv(&h, pm->sql);
    fnv(&h, nd->inputs);
    texts[0] = pm->sql;
    texts[1] = b.data ? b.data : "";
    hash_reached_macros(m, mf, texts, 2, &h);
    fnv(&h, b.data);
    buf_reset(&b);
    pv_to_text(nd->contract, &b);
    fnv(&h, b.data);
    buf_reset(&b);
    pv_to_text(nd->constraints, &b);
    fnv(&h, b.data);
    for (size_t k = 0; k < nd->ndeps; k++)
        fnv(&h, m->nodes[nd->deps[k]].fingerprint);
    snprintf(nd->fingerprint, sizeof(nd->fingerprint), "%016llx", h);
    buf_free(&b);
}

cs_result dbt_parse(pl_project *p, const dbt_settings *set, dbt_manifest **out, cs_error *err)
{
    dbt_manifest *m = xrealloc(NULL, sizeof(*m));
    dbt_worker *w = NULL;
    cs_result rc = CS_OK;
    char where[1024];
    macro_file_names *mf;

    memset(m, 0, sizeof(*m));
    m->p = p;
    m->set = *set;
    m->cli_vars =
        set->cli_vars && set->cli_vars->type == PV_MAP ? pv_copy(set->cli_vars) : pv_new(PV_MAP);
    /* DBT_BATCH_SIZE stands for --vars '{batch_size: N}'; --vars wins */
    if (set->batch_size > 0 && !pv_get(m->cli_vars, "batch_size"))
        pv_set(m->cli_vars, "batch_size", pv_int(set->batch_size));
    m->set.cli_vars = m->cli_vars;
    m->nodes = xcalloc(p->nmodels, sizeof(*m->nodes));
    m->macros = xcalloc(p->nmacros, sizeof(*m->macros));
    m->tests = xcalloc(p->ntests, sizeof(*m->tests));
    m->order = xcalloc(p->nmodels, sizeof(size_t));
    *out = NULL;
    for (size_t i = 0; i < p->nmacros; i++)
        if (!(m->macros[i] = tpl_compile(p->macros[i].file, p->macros[i].text, err))) {
            rc = CS_INVALID;
            goto fail;
        }
    w = dbt_worker_new(m);
    for (size_t i = 0; i < p->nsources && rc == CS_OK; i++) {
        snprintf(where, sizeof(where), "%s:%d", p->sources[i].file, p->sources[i].line);
        if ((rc = render_string(w, &p->sources[i].schema, where, err)) == CS_OK &&
            (rc = render_string(w, &p->sources[i].table_name, where, err)) == CS_OK)
            rc = render_string(w, &p->sources[i].identifier, where, err);
    }
    for (size_t i = 0; i < p->nmodels && rc == CS_OK; i++)
        rc = parse_model(m, w, i, err);
    if (rc != CS_OK)
        goto fail;
    for (size_t i = 0; i < p->ntests && rc == CS_OK; i++) {
        dbt_render_opts o = {0};
        buf b;
        if (p->tests[i].kind)
            continue;
        if (!(m->tests[i].tpl = tpl_compile(p->tests[i].file, p->tests[i].sql, err))) {
            rc = CS_INVALID;
            break;
        }
        w->parsing = true;
        begin_render(w, -1, &o);
        buf_init(&b, 0);
        rc = tpl_render(m->tests[i].tpl, w->env, NULL, &b, err);
        buf_free(&b);
        m->tests[i].deps = w->deps;
        m->tests[i].ndeps = w->ndeps;
        w->deps = NULL;
        w->ndeps = 0;
    }
    if (rc != CS_OK || (rc = compile_run_hooks(m, err)) != CS_OK)
        goto fail;
    m->g = graph_new(p->nmodels);
    for (size_t i = 0; i < p->nmodels; i++)
        for (size_t k = 0; k < m->nodes[i].ndeps; k++)
            graph_add_edge(m->g, m->nodes[i].deps[k], i);
    if ((rc = graph_order(m->g, m->order, node_name, m, err)) != CS_OK)
        goto fail;
    mf = xcalloc(p->nmacros, sizeof(*mf));
    for (size_t f = 0; f < p->nmacros; f++)
        scan_macro_names(p->macros[f].text, &mf[f]);
    for (size_t k = 0; k < p->nmodels; k++)
        fingerprint(m, mf, m->order[k]);
    for (size_t f = 0; f < p->nmacros; f++) {
        for (size_t k = 0; k < mf[f].n; k++)
            free(mf[f].names[k]);
        free(mf[f].names);
    }
    free(mf);
    dbt_worker_free(w);
    *out = m;
    return CS_OK;
fail:
    dbt_worker_free(w);
    dbt_manifest_free(m);
    return rc;
}

static void free_tpls(tpl_template **t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tpl_template_free(t[i]);
    free(t);
}

void dbt_manifest_free(dbt_manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->p->nmodels; i++) {
        dbt_node *nd = &m->nodes[i];
        tpl_template_free(nd->tpl);
        free(nd->deps);
        free(nd->inputs);
        pv_free(nd->config);
        free(nd->relname);
        for (size_t k = 0; k < nd->nunique_key; k++)
            free(nd->unique_key[k]);
        free(nd->unique_key);
        free_tpls(nd->pre_hooks, nd->npre_hooks);
        free_tpls(nd->post_hooks, nd->npost_hooks);
        pv_free(nd->contract);
        pv_free(nd->constraints);
    }
    for (size_t i = 0; i < m->p->ntests; i++) {
        tpl_template_free(m->tests[i].tpl);
        free(m->tests[i].deps);
    }
    free_tpls(m->macros, m->p->nmacros);
    free_tpls(m->on_run_start, m->non_run_start);
    free_tpls(m->on_run_end, m->non_run_end);
    free(m->nodes);
    free(m->tests);
    free(m->order);
    graph_free(m->g);
    pv_free(m->cli_vars);
    project_free(m->p);
    free(m);
}
