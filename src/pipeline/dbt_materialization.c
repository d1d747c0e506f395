/*
 * dbt_materialization.c - custom materializations, as dbt runs them: the
 * {% materialization NAME, default %} or {% materialization NAME,
 * adapter='postgres' %} block that a model's materialized='NAME' picks
 * (parse phase), and running that block with the context dbt gives a
 * materialization (execute phase).  CHT Pipeline's raw_sql is one.
 *
 * A block is a macro of no parameters (tpl.h: materialization_NAME_ADAPTER)
 * reachable in its package's namespace.  Its statements go through the
 * runner's connection (dbt_mat_io) with dbt-postgres's transaction rules: a
 * statement begins a transaction when none is open, adapter.commit() ends
 * it, and a transaction still open when the macro returns is rolled back
 * (dbt closes the connection, which rolls back).  The model's hooks are
 * the block's to run (run_hooks(pre_hooks)); the runner runs none of them
 * and applies no grants: dbt leaves both to the materialization.
 *
 * The four built-in materializations (view, table, incremental, ephemeral)
 * are built by runner.c in C; a block with one of those names is not used
 * (a warning says so at parse).
 */
#include "pipeline/dbt_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xalloc.h"

/* the materialization running on a worker (dbt_worker.mat) */
struct dbt_mat_run {
    const dbt_mat_io *io;
};

static const char *const BUILTIN[] = {"view", "table", "incremental", "ephemeral"};

static bool builtin_name(const char *name)
{
    for (size_t i = 0; i < sizeof(BUILTIN) / sizeof(BUILTIN[0]); i++)
        if (strcmp(name, BUILTIN[i]) == 0)
            return true;
    return false;
}

/* ---- parse: which block ---- */

/*
 * dbt's order (core's MaterializationCandidate): the adapter's own
 * block before a default one, then the root project's before a package's.
 * Another adapter's block is never a candidate.  Rank 0: not one.
 */
static int block_rank(const tpl_block *b, size_t package)
{
    int specific = strcmp(b->adapter, "postgres") == 0  ? 2
                   : strcmp(b->adapter, "default") == 0 ? 1
                                                        : 0;
    return specific ? specific * 2 + (package == 0) : 0;
}

cs_result dbt_find_materialization(const dbt_manifest *m, dbt_node *nd, const pl_model *pm,
                                   cs_error *err)
{
    const pl_project *p = m->p;
    const tpl_block *best = NULL, *tie = NULL;
    size_t best_macro = 0, tie_macro = 0;
    int best_rank = 0;

    for (size_t i = 0; i < p->nmacros; i++) {
        const tpl_block *b;
        for (size_t k = 0; m->macros[i] && (b = tpl_block_get(m->macros[i], k)) != NULL; k++) {
            int rank;
            if (b->kind != TPL_BLOCK_MATERIALIZATION || strcmp(b->name, nd->mat_name) != 0)
                continue;
            rank = block_rank(b, p->macros[i].package);
            if (rank > best_rank) {
                best_rank = rank;
                best = b;
                best_macro = i;
                tie = NULL;
            } else if (rank > 0 && rank == best_rank) {
                tie = b;
                tie_macro = i;
            }
        }
    }
    if (!best)
        return cs_fail(
            err, CS_INVALID,
            "%s:1: materialized='%s' is not supported (view, table, incremental, "
            "ephemeral) and no {%% materialization %s, default %%} or adapter='postgres' "
            "block defines it in the project or its packages",
            pm->file, nd->mat_name, nd->mat_name);
    if (tie)
        return cs_fail(err, CS_INVALID,
                       "%s:1: materialization '%s' (%s) is defined twice at the same precedence: "
                       "%s:%d and %s:%d; remove one",
                       pm->file, nd->mat_name, best->adapter, p->macros[best_macro].file,
                       best->line, p->macros[tie_macro].file, tie->line);
    nd->mat_macro = xstrdup(best->macro);
    nd->mat_package = p->macros[best_macro].package;
    return CS_OK;
}

/* a block named after a built-in materialization: logged once per parse */
void dbt_materialization_warn_builtin(const dbt_manifest *m)
{
    const tpl_block *b;
    for (size_t i = 0; i < m->p->nmacros; i++)
        for (size_t k = 0; m->macros[i] && (b = tpl_block_get(m->macros[i], k)) != NULL; k++)
            if (b->kind == TPL_BLOCK_MATERIALIZATION && builtin_name(b->name))
                log_warn("pipeline",
                         "%s:%d: materialization '%s' is not used: cht-sync builds %s models "
                         "itself (docs/pipeline.md)",
                         m->p->macros[i].file, b->line, b->name, b->name);
}

/* ---- natives of the materialization context ---- */

static const pv *model_config(const dbt_worker *w)
{
    if (w->model < 0)
        return NULL;
    return w->parsing ? w->collected : w->m->nodes[w->model].config;
}

/* config.get(name, default=None): the model's config value */
static cs_result n_config_get(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                              cs_error *err)
{
    dbt_worker *w = ud;
    const char *name = tpl_as_str(tpl_arg(a, 0, "name"));
    const pv *v;
    tpl_value *def = tpl_arg(a, 1, "default");

    if (!name)
        return cs_fail(err, CS_INVALID, "config.get() takes a config name");
    v = pv_get(model_config(w), name);
    *out = v ? dbt_pv_to_tpl(v) : def ? tpl_ref(def) : tpl_none();
    return CS_OK;
}

/* config.require(name): the value, or an error when the model has none */
static cs_result n_config_require(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                  cs_error *err)
{
    dbt_worker *w = ud;
    const char *name = tpl_as_str(tpl_arg(a, 0, "name"));
    const pv *v;

    if (!name)
        return cs_fail(err, CS_INVALID, "config.require() takes a config name");
    v = pv_get(model_config(w), name);
    if (!v && !w->parsing)
        return cs_fail(err, CS_INVALID, "config.require('%s'): the model's config has no \"%s\"",
                       name, name);
    *out = dbt_pv_to_tpl(v);
    return CS_OK;
}

static cs_result n_should_full_refresh(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                       cs_error *err)
{
    dbt_worker *w = ud;
    *out = tpl_bool(!w->parsing && w->o && w->o->full_refresh);
    return CS_OK;
}

static cs_result mat_exec(const dbt_mat_io *io, const char *sql, cs_error *err)
{
    pv *res = NULL;
    cs_result rc = io->sql(io->ud, sql, &res, err);
    pv_free(res);
    return rc;
}

/* statement()/run_query() inside a materialization: a transaction begins
 * on the first statement, as on dbt's connections */
static cs_result mat_sql(void *ud, const char *sql, pv **out, cs_error *err)
{
    const dbt_mat_io *io = ud;
    cs_result rc;

    *out = NULL;
    if (!io->in_txn(io->ud) && (rc = mat_exec(io, io->begin_sql, err)) != CS_OK)
        return rc;
    return io->sql(io->ud, sql, out, err);
}

/* adapter.commit(): ends the transaction a statement began */
static cs_result n_commit(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                          cs_error *err)
{
    dbt_worker *w = ud;
    cs_result rc;

    *out = NULL;
    if (w->parsing || !w->o || !w->o->execute || !w->o->sql) {
        *out = tpl_str("");
        return CS_OK;
    }
    if (w->mat && !w->mat->io->in_txn(w->mat->io->ud))
        return cs_fail(err, CS_INVALID,
                       "adapter.commit(): no transaction is open (a statement begins one; was "
                       "it committed already?)");
    if (w->mat)
        rc = mat_exec(w->mat->io, "COMMIT", err);
    else {
        pv *res = NULL;
        rc = w->o->sql(w->o->sql_ud, "COMMIT", &res, err);
        pv_free(res);
    }
    if (rc == CS_OK)
        *out = tpl_str("");
    return rc;
}

/* a hook of pre_hooks/post_hooks (or a string): its SQL and transaction flag */
static bool hook_of(const tpl_value *h, const char **sql, bool *txn)
{
    const tpl_value *t;

    *txn = true;
    if (tpl_typeof(h) == TPL_STR) {
        *sql = tpl_as_str(h);
        return true;
    }
    *sql = tpl_as_str(tpl_dict_get(h, "sql"));
    if ((t = tpl_dict_get(h, "transaction")) != NULL)
        *txn = tpl_truthy(t);
    return *sql != NULL;
}

/* renders one hook's SQL in the model's context and runs it */
static cs_result run_one_hook(dbt_worker *w, const char *text, bool inside, cs_error *err)
{
    char where[1100];
    tpl_template *t;
    buf b;
    cs_result rc = CS_OK;

    snprintf(where, sizeof(where), "%s (hook)",
             w->model >= 0 ? w->m->p->models[w->model].file : "hook");
    if (!(t = tpl_compile(where, text, err)))
        return CS_INVALID;
    buf_init(&b, 0);
    if ((rc = tpl_render(t, w->env, NULL, &b, err)) == CS_OK && b.data &&
        strspn(b.data, " \t\r\n;") != b.len) {
        if (w->mat && !inside)
            rc = mat_exec(w->mat->io, b.data, err);
        else {
            pv *res = NULL;
            rc = w->o->sql(w->o->sql_ud, b.data, &res, err);
            pv_free(res);
        }
    }
    buf_free(&b);
    tpl_template_free(t);
    return rc;
}

/*
 * run_hooks(hooks, inside_transaction=True), dbt's macro: the hooks whose
 * transaction flag is inside_transaction, in order; before the first hook
 * outside the transaction, an open one is committed (dbt sends commit;).
 */
static cs_result n_run_hooks(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                             cs_error *err)
{
    dbt_worker *w = ud;
    tpl_value *hooks = tpl_arg(a, 0, "hooks"), *it = tpl_arg(a, 1, "inside_transaction");
    bool inside = it ? tpl_truthy(it) : true, first = true;
    cs_result rc = CS_OK;

    *out = NULL;
    if (w->parsing || !w->o || !w->o->execute || !w->o->sql || tpl_typeof(hooks) == TPL_NONE) {
        *out = tpl_str("");
        return CS_OK;
    }
    if (tpl_typeof(hooks) != TPL_LIST)
        return cs_fail(err, CS_INVALID,
                       "run_hooks() takes a list of hooks (pre_hooks, post_hooks)");
    for (size_t i = 0; i < tpl_list_len(hooks) && rc == CS_OK; i++) {
        const char *sql;
        bool txn;
        if (!hook_of(tpl_list_get(hooks, i), &sql, &txn))
            return cs_fail(err, CS_INVALID, "run_hooks(): hook %zu has no SQL", i + 1);
        if (txn != inside)
            continue;
        if (!inside && first && w->mat && w->mat->io->in_txn(w->mat->io->ud))
            rc = mat_exec(w->mat->io, "COMMIT", err);
        first = false;
        if (rc == CS_OK)
            rc = run_one_hook(w, sql, inside, err);
    }
    if (rc == CS_OK)
        *out = tpl_str("");
    return rc;
}

void dbt_materialization_natives(dbt_worker *w)
{
    tpl_value *config = tpl_env_get(w->env, "config"), *adapter = tpl_env_get(w->env, "adapter");

    tpl_list_set_attr(config, "get", tpl_func_new("get", n_config_get, w));
    tpl_list_set_attr(config, "require", tpl_func_new("require", n_config_require, w));
    tpl_env_set(w->env, "should_full_refresh",
                tpl_func_new("should_full_refresh", n_should_full_refresh, w));
    tpl_env_set(w->env, "run_hooks", tpl_func_new("run_hooks", n_run_hooks, w));
    if (tpl_typeof(adapter) == TPL_DICT)
        tpl_dict_set(adapter, "commit", tpl_func_new("commit", n_commit, w));
}

/* ---- execute: running the block ---- */

/* pre_hooks / post_hooks as dbt's Hook objects {sql, transaction, index} */
static tpl_value *hook_list(const pv *cfg)
{
    tpl_value *l = tpl_list_new();
    bool one = cfg && cfg->type != PV_LIST;
    size_t n = !cfg ? 0 : one ? 1 : cfg->n;

    for (size_t i = 0; i < n; i++) {
        const pv *h = one ? cfg : cfg->items[i], *t = pv_get(h, "transaction");
        const char *sql = pv_s(h) ? h->s : pv_gets(h, "sql");
        tpl_value *d = tpl_dict_new();
        tpl_dict_set(d, "sql", tpl_str(sql ? sql : ""));
        tpl_dict_set(d, "transaction", tpl_bool(!(t && t->type == PV_BOOL && !t->b)));
        tpl_dict_set(d, "index", tpl_int((long long)i));
        tpl_list_push(l, d);
    }
    return l;
}

static const char *const MAT_GLOBALS[] = {"sql", "compiled_code", "pre_hooks", "post_hooks"};

/* the globals a materialization sees beside a model's (schema, database
 * and the rest are every render's, dbt_globals.c) */
static void mat_context(dbt_worker *w, size_t model, const char *sql)
{
    const dbt_manifest *m = w->m;
    const dbt_node *nd = &m->nodes[model];
    tpl_value *md = tpl_env_get(w->env, "model");

    tpl_env_set(w->env, "sql", tpl_str(sql));
    tpl_env_set(w->env, "compiled_code", tpl_str(sql));
    tpl_env_set(w->env, "pre_hooks", hook_list(pv_get(nd->config, "pre_hook")));
    tpl_env_set(w->env, "post_hooks", hook_list(pv_get(nd->config, "post_hook")));
    if (tpl_typeof(md) == TPL_DICT) {
        tpl_dict_set(md, "config", dbt_pv_to_tpl(nd->config));
        tpl_dict_set(md, "compiled_code", tpl_str(sql));
        tpl_dict_set(md, "alias", tpl_str(nd->relname));
        tpl_dict_set(md, "schema", tpl_str(nd->schema ? nd->schema : m->set.schema));
        tpl_dict_set(md, "database", tpl_str(m->set.database ? m->set.database : ""));
        tpl_dict_set(md, "resource_type", tpl_str("model"));
    }
}

/* the macro's return value, checked as dbt checks it */
static cs_result check_relations(const tpl_value *ret, const char *file, const char *name,
                                 cs_error *err)
{
    const tpl_value *rels;

    if (tpl_typeof(ret) == TPL_STR)
        return cs_fail(err, CS_INVALID,
                       "%s: the materialization (\"%s\") did not explicitly return a list of "
                       "relations: end it with {{ return({'relations': [this]}) }}",
                       file, name);
    if (tpl_typeof(ret) != TPL_DICT)
        return cs_fail(err, CS_INVALID,
                       "%s: invalid return value from materialization \"%s\": expected a dict with "
                       "key \"relations\"",
                       file, name);
    if (!(rels = tpl_dict_get(ret, "relations")))
        return cs_fail(err, CS_INVALID,
                       "%s: invalid return value from materialization \"%s\": \"relations\" not "
                       "found",
                       file, name);
    if (tpl_typeof(rels) != TPL_LIST)
        return cs_fail(err, CS_INVALID,
                       "%s: invalid return value from materialization \"%s\": \"relations\" not a "
                       "list",
                       file, name);
    for (size_t i = 0; i < tpl_list_len(rels); i++) {
        const tpl_value *r = tpl_list_get(rels, i);
        if (tpl_typeof(r) != TPL_DICT || !tpl_dict_get(r, "identifier") ||
            !tpl_dict_get(r, "schema"))
            return cs_fail(err, CS_INVALID,
                           "%s: invalid return value from materialization \"%s\": relations[%zu] "
                           "is not a relation (this, ref(), api.Relation.create())",
                           file, name, i);
    }
    return CS_OK;
}

/* the outcome of statement('main'), for the progress line and dbt_results */
static void main_outcome(dbt_worker *w, char *detail, size_t ndetail, long *rows)
{
    const tpl_value *resp = tpl_dict_get(tpl_dict_get(w->results, "main"), "response");
    const char *msg = tpl_as_str(tpl_dict_get(resp, "_message"));
    const tpl_value *n = tpl_dict_get(resp, "rows_affected");

    snprintf(detail, ndetail, "%s", msg && *msg ? msg : "OK");
    *rows = tpl_typeof(n) == TPL_INT ? (long)tpl_as_int(n) : 0;
}

cs_result dbt_run_materialization(dbt_worker *w, size_t model, const dbt_mat_io *io,
                                  const char *sql, char *detail, size_t ndetail, long *rows,
                                  cs_error *err)
{
    const dbt_manifest *m = w->m;
    const dbt_node *nd = &m->nodes[model];
    const pl_model *pm = &m->p->models[model];
    struct dbt_mat_run run = {io};
    dbt_render_opts ro = {
        .execute = true, .sql = mat_sql, .sql_ud = (void *)io, .full_refresh = io->full_refresh};
    tpl_value *space, *fn, *ret = NULL;
    tpl_args none = {0};
    cs_result rc;

    *rows = 0;
    snprintf(detail, ndetail, "%s", "");
    space = tpl_env_get(w->env, m->p->packages[nd->mat_package].name);
    fn = tpl_dict_get(space, nd->mat_macro);
    if (tpl_typeof(fn) != TPL_FUNC)
        return cs_fail(err, CS_INVALID, "%s: materialization macro %s.%s is not loaded", pm->file,
                       m->p->packages[nd->mat_package].name, nd->mat_macro);
    w->parsing = false;
    dbt_begin_render(w, (long)model, &ro);
    mat_context(w, model, sql);
    w->mat = &run;
    rc = tpl_call_value(w->env, fn, &none, &ret, err);
    w->mat = NULL;
    for (size_t i = 0; i < sizeof(MAT_GLOBALS) / sizeof(MAT_GLOBALS[0]); i++)
        tpl_env_unset(w->env, MAT_GLOBALS[i]);
    if (rc == CS_OK)
        rc = check_relations(ret, pm->file, nd->mat_name, err);
    if (rc == CS_OK && io->in_txn(io->ud)) {
        log_warn(pm->name,
                 "materialization '%s' left its transaction open (no adapter.commit()): rolled "
                 "back, as dbt does",
                 nd->mat_name);
        rc = mat_exec(io, "ROLLBACK", err);
    }
    if (rc == CS_OK)
        main_outcome(w, detail, ndetail, rows);
    tpl_unref(ret);
    return rc;
}
