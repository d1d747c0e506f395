/*
 * dbt_parse.c - the parse phase (dbt_parse, see dbt_ctx.h): compiles every
 * template once, renders each model with execute=False to collect its
 * config, refs and sources, checks what the runner will need (the
 * materialization, unique_key, hooks, contract), orders the graph and
 * fingerprints the models.
 */
#include "pipeline/dbt_int.h"
#include "pipeline/dbt_builtin.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xalloc.h"
#include "pipeline/materialize.h"

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
    dbt_begin_render(w, -1, &o);
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

/*
 * Compiles the hooks of list (a list, or one hook: a string or a map
 * {sql, transaction} as after_commit() returns), appending them to *out
 * (*n of them); with outside not NULL, hooks that say transaction: false
 * go there instead (they run outside the model's transaction).
 */
static cs_result compile_hooks(const pv *list, const char *file, const char *what,
                               tpl_template ***out, size_t *n, tpl_template ***outside,
                               size_t *noutside, cs_error *err)
{
    char where[1024];
    bool one = list && list->type != PV_LIST;
    size_t count = !list ? 0 : one ? 1 : list->n;

    for (size_t i = 0; i < count; i++) {
        const pv *h = one ? list : list->items[i];
        const char *sql = pv_s(h);
        const pv *txn = pv_get(h, "transaction");
        bool out_of_txn = outside && txn && txn->type == PV_BOOL && !txn->b;
        tpl_template *t;
        if (!sql) {
            if (pv_get(h, "sql"))
                sql = pv_gets(h, "sql");
            if (!sql)
                return cs_fail(err, CS_INVALID, "%s: %s %zu is not a string", file, what, i + 1);
        }
        snprintf(where, sizeof(where), "%s (%s %zu)", file, what, i + 1);
        if (!(t = tpl_compile(where, sql, err)))
            return CS_INVALID;
        if (out_of_txn) {
            *outside = xrealloc(*outside, (*noutside + 1) * sizeof(**outside));
            (*outside)[(*noutside)++] = t;
        } else {
            *out = xrealloc(*out, (*n + 1) * sizeof(**out));
            (*out)[(*n)++] = t;
        }
    }
    return CS_OK;
}

/*
 * Renders model i with execute=False: its final config (folders,
 * properties, config() merged last) goes to nd->config, its refs to
 * nd->deps, the env_var() values and source() relations it read to
 * nd->inputs.
 */
static cs_result collect_model(dbt_worker *w, dbt_node *nd, pl_model *pm, size_t i, cs_error *err)
{
    dbt_render_opts o = {0};
    buf b, inputs;
    cs_result rc;

    if (!(nd->tpl = tpl_compile(pm->file, pm->sql, err)))
        return CS_INVALID;
    w->parsing = true;
    w->collected = pv_copy(pm->config);
    free(w->deps);
    free(w->seed_deps);
    w->deps = w->seed_deps = NULL;
    w->ndeps = w->nseed_deps = 0;
    dbt_begin_render(w, (long)i, &o);
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
    nd->seed_deps = w->seed_deps;
    nd->nseed_deps = w->nseed_deps;
    w->deps = w->seed_deps = NULL;
    w->ndeps = w->nseed_deps = 0;
    return CS_OK;
}

/* nd->mat (and a custom one's block) and nd->relname from the config */
static cs_result node_materialization(const dbt_manifest *m, dbt_node *nd, const pl_model *pm,
                                      cs_error *err)
{
    const char *mat = pv_gets(nd->config, "materialized"), *alias;

    if (!mat || strcmp(mat, "view") == 0)
        nd->mat = MAT_VIEW;
    else if (strcmp(mat, "table") == 0)
        nd->mat = MAT_TABLE;
    else if (strcmp(mat, "incremental") == 0)
        nd->mat = MAT_INCREMENTAL;
    else if (strcmp(mat, "ephemeral") == 0)
        nd->mat = MAT_EPHEMERAL;
    else {
        cs_result rc;
        nd->mat = MAT_CUSTOM;
        nd->mat_name = xstrdup(mat);
        if ((rc = dbt_find_materialization(m, nd, pm, err)) != CS_OK)
            return rc;
    }
    alias = pv_gets(nd->config, "alias");
    nd->relname = xstrdup(alias ? alias : pm->name);
    /* PostgreSQL would cut it and build into another name, as dbt says */
    if (nd->mat != MAT_EPHEMERAL && strlen(nd->relname) > MAT_NAME_MAX)
        return cs_fail(err, CS_INVALID,
                       "%s:1: relation name \"%s\" is longer than %d bytes (PostgreSQL's limit)",
                       pm->file, nd->relname, MAT_NAME_MAX);
    return CS_OK;
}

static void add_unique_key(dbt_node *nd, const char *col)
{
    nd->unique_key = xrealloc(nd->unique_key, (nd->nunique_key + 1) * sizeof(char *));
    nd->unique_key[nd->nunique_key++] = xstrdup(col);
}

/* nd->unique_key from the config: a string or a list of column names */
static cs_result node_unique_key(dbt_node *nd, const pl_model *pm, cs_error *err)
{
    const pv *uk = pv_get(nd->config, "unique_key");

    if (pv_s(uk)) {
        /* "a, b" is accepted the way dbt passes it through to SQL: split on
         * the commas outside parentheses and quotes, so that an expression
         * ("coalesce(a, b)") stays whole */
        const char *s = uk->s, *start = s;
        int depth = 0;
        for (;; s++) {
            if (*s == '\'' || *s == '"') {
                const char *e = strchr(s + 1, *s);
                s = e ? e : s + strlen(s) - 1;
            } else if (*s == '(') {
                depth++;
            } else if (*s == ')') {
                depth--;
            } else if ((*s == ',' && depth == 0) || *s == '\0') {
                const char *a = start, *b = s;
                while (a < b && isspace((unsigned char)*a))
                    a++;
                while (b > a && isspace((unsigned char)b[-1]))
                    b--;
                if (b > a) {
                    char *key = xstrndup(a, (size_t)(b - a));
                    add_unique_key(nd, key);
                    free(key);
                }
                if (!*s)
                    break;
                start = s + 1;
            }
        }
    } else if (uk && uk->type == PV_LIST) {
        for (size_t k = 0; k < uk->n; k++) {
            if (!pv_s(uk->items[k]))
                return cs_fail(err, CS_INVALID, "%s: unique_key entries must be column names",
                               pm->file);
            add_unique_key(nd, uk->items[k]->s);
        }
    }
    return CS_OK;
}

/* on_schema_change and incremental_strategy name what the runner does */
static cs_result check_incremental_options(const dbt_node *nd, const pl_model *pm, cs_error *err)
{
    const char *osc = pv_gets(nd->config, "on_schema_change");
    const char *strategy = pv_gets(nd->config, "incremental_strategy");

    if (osc && strcmp(osc, "ignore") != 0 && strcmp(osc, "append_new_columns") != 0 &&
        strcmp(osc, "fail") != 0 && strcmp(osc, "sync_all_columns") != 0)
        return cs_fail(err, CS_INVALID, "%s: on_schema_change='%s' is not supported", pm->file,
                       osc);
    if (strategy && strcmp(strategy, "delete+insert") != 0 && strcmp(strategy, "append") != 0 &&
        strcmp(strategy, "merge") != 0)
        return cs_fail(err, CS_INVALID,
                       "%s: incremental_strategy='%s' is not supported (delete+insert, "
                       "merge, append)",
                       pm->file, strategy);
    return CS_OK;
}

/* an enforced contract: its columns and constraints, expressions rendered */
static cs_result node_contract(dbt_worker *w, dbt_node *nd, const pl_model *pm, cs_error *err)
{
    cs_result rc;

    if (!pv_truthy(pv_get(pv_get(nd->config, "contract"), "enforced")))
        return CS_OK;
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
    return CS_OK;
}

static bool hook_key(const char *k)
{
    return strcmp(k, "pre_hook") == 0 || strcmp(k, "post_hook") == 0 ||
           strcmp(k, "pre-hook") == 0 || strcmp(k, "post-hook") == 0;
}

/*
 * Renders, in place, the strings holding {{ }} or {% %} in a model's
 * config from dbt_project.yml and property files, as dbt renders those
 * files: hooks excepted (they are templates of their own, rendered when
 * they run).  A value that renders to True or False (as_bool) becomes a
 * boolean, one that renders to a number through as_number a number.
 */
static cs_result render_config(dbt_worker *w, pv *v, const char *where, cs_error *err)
{
    cs_result rc = CS_OK;

    if (!v)
        return CS_OK;
    if (v->type == PV_STR) {
        bool number = strstr(v->s, "as_number") != NULL;
        char *end;
        if (!strstr(v->s, "{{") && !strstr(v->s, "{%"))
            return CS_OK;
        if ((rc = render_string(w, &v->s, where, err)) != CS_OK)
            return rc;
        if (strcasecmp(v->s, "true") == 0 || strcasecmp(v->s, "false") == 0) {
            bool b = strcasecmp(v->s, "true") == 0;
            free(v->s);
            v->s = NULL;
            v->type = PV_BOOL;
            v->b = b;
        } else if (number && *v->s) {
            long long n = strtoll(v->s, &end, 10);
            if (*end == '\0') {
                free(v->s);
                v->s = NULL;
                v->type = PV_INT;
                v->i = n;
            }
        }
        return CS_OK;
    }
    for (size_t i = 0; i < v->n && rc == CS_OK; i++)
        if (!(v->type == PV_MAP && hook_key(v->keys[i])))
            rc = render_config(w, v->items[i], where, err);
    return rc;
}

static cs_result parse_model(dbt_manifest *m, dbt_worker *w, size_t i, cs_error *err)
{
    pl_model *pm = &m->p->models[i];
    dbt_node *nd = &m->nodes[i];
    cs_result rc;

    if ((rc = render_config(w, pm->config, pm->props_file ? pm->props_file : pm->file, err)) !=
            CS_OK ||
        (rc = collect_model(w, nd, pm, i, err)) != CS_OK ||
        (rc = node_materialization(m, nd, pm, err)) != CS_OK ||
        (rc = node_unique_key(nd, pm, err)) != CS_OK ||
        (rc = check_incremental_options(nd, pm, err)) != CS_OK ||
        (rc = compile_hooks(pv_get(nd->config, "pre_hook"), pm->file, "pre_hook", &nd->pre_hooks,
                            &nd->npre_hooks, &nd->pre_hooks_before, &nd->npre_hooks_before, err)) !=
            CS_OK ||
        (rc = compile_hooks(pv_get(nd->config, "post_hook"), pm->file, "post_hook", &nd->post_hooks,
                            &nd->npost_hooks, &nd->post_hooks_after, &nd->npost_hooks_after,
                            err)) != CS_OK)
        return rc;
    return node_contract(w, nd, pm, err);
}

/* an empty manifest for p; --vars plus DBT_BATCH_SIZE as its cli_vars */
static dbt_manifest *manifest_new(pl_project *p, const dbt_settings *set)
{
    dbt_manifest *m = xcalloc(1, sizeof(*m));

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
    m->tests = xcalloc(p->ntests + 1, sizeof(*m->tests));
    m->seeds = xcalloc(p->nseeds + 1, sizeof(*m->seeds));
    m->order = xcalloc(p->nmodels, sizeof(size_t));
    return m;
}

/* the built-in `dbt` macros, one template per file (dbt_builtin.h) */
static cs_result compile_builtin(dbt_manifest *m, cs_error *err)
{
    char name[256];

    m->builtin = xcalloc(dbt_builtin_nfiles + 1, sizeof(*m->builtin));
    for (size_t i = 0; i < dbt_builtin_nfiles; i++) {
        snprintf(name, sizeof(name), "<dbt>/%s", dbt_builtin_files[i].path);
        if (!(m->builtin[i] = tpl_compile(name, (const char *)dbt_builtin_files[i].data, err)))
            return CS_INVALID;
    }
    return CS_OK;
}

static cs_result compile_macros(dbt_manifest *m, cs_error *err)
{
    const pl_project *p = m->p;
    for (size_t i = 0; i < p->nmacros; i++)
        if (!(m->macros[i] = tpl_compile(p->macros[i].file, p->macros[i].text, err)))
            return CS_INVALID;
    return CS_OK;
}

/* source schema, name and identifier holding {{ }}, rendered in place */
static cs_result render_sources(dbt_worker *w, pl_project *p, cs_error *err)
{
    char where[1024];
    cs_result rc = CS_OK;

    for (size_t i = 0; i < p->nsources && rc == CS_OK; i++) {
        snprintf(where, sizeof(where), "%s:%d", p->sources[i].file, p->sources[i].line);
        if ((rc = render_string(w, &p->sources[i].schema, where, err)) == CS_OK &&
            (rc = render_string(w, &p->sources[i].table_name, where, err)) == CS_OK)
            rc = render_string(w, &p->sources[i].identifier, where, err);
    }
    return rc;
}

/* appends d to the list *l of *n indexes, once */
static void add_dep(size_t **l, size_t *n, size_t d)
{
    for (size_t k = 0; k < *n; k++)
        if ((*l)[k] == d)
            return;
    XGROW(*l, *n);
    (*l)[(*n)++] = d;
}

/*
 * Every test rendered once with execute=False: a singular test's file, a
 * generic test's macro with its arguments.  Collects what each reads
 * (its target, ref()s in its arguments or SQL) and its final config
 * (config() calls in the macro or file merged over the yml's).
 */
static cs_result parse_tests(dbt_manifest *m, dbt_worker *w, cs_error *err)
{
    const pl_project *p = m->p;
    cs_result rc = CS_OK;

    for (size_t i = 0; i < p->ntests && rc == CS_OK; i++) {
        const pl_test *t = &p->tests[i];
        dbt_test_node *tn = &m->tests[i];
        dbt_render_opts o = {0};
        buf b;
        bool builtin;
        if (!t->kind && !(tn->tpl = tpl_compile(t->file, t->sql, err)))
            return CS_INVALID;
        w->parsing = true;
        w->collected = pv_copy(t->config);
        free(w->deps);
        free(w->seed_deps);
        w->deps = w->seed_deps = NULL;
        w->ndeps = w->nseed_deps = 0;
        buf_init(&b, 0);
        if (t->kind) {
            rc = dbt_generic_test_call(w, i, &o, &b, &builtin, err);
        } else {
            dbt_begin_render(w, -1, &o);
            rc = tpl_render(tn->tpl, w->env, NULL, &b, err);
        }
        buf_free(&b);
        tn->config = w->collected;
        w->collected = NULL;
        tn->enabled = !pv_get(tn->config, "enabled") || pv_truthy(pv_get(tn->config, "enabled"));
        tn->deps = w->deps;
        tn->ndeps = w->ndeps;
        tn->seed_deps = w->seed_deps;
        tn->nseed_deps = w->nseed_deps;
        w->deps = w->seed_deps = NULL;
        w->ndeps = w->nseed_deps = 0;
        if (t->model >= 0)
            add_dep(&tn->deps, &tn->ndeps, (size_t)t->model);
        if (t->seed >= 0)
            add_dep(&tn->seed_deps, &tn->nseed_deps, (size_t)t->seed);
    }
    return rc;
}

/*
 * A node's schema, as dbt's generate_schema_name(custom_schema_name, node):
 * the macro of that name the project (else a package) defines, else dbt's
 * default (target schema, or target schema + "_" + the custom schema).
 * Seeds and models both come here.  node is a dict of the node (taken);
 * *out is allocated, the caller's to free.
 */
static cs_result node_schema(dbt_worker *w, const char *custom, tpl_value *node, const char *file,
                             char **out, cs_error *err)
{
    tpl_value *fn = tpl_env_get(w->env, "generate_schema_name"), *res = NULL, *vals[2];
    const char *names[2] = {"custom_schema_name", "node"};
    tpl_args args = {0};
    dbt_render_opts o = {0};
    buf b;
    cs_result rc;

    if (!fn || tpl_typeof(fn) != TPL_FUNC) {
        tpl_unref(node);
        buf_init(&b, 0);
        buf_puts(&b, w->m->set.schema);
        if (custom && *custom) {
            const char *e = custom + strlen(custom);
            while (isspace((unsigned char)*custom))
                custom++;
            while (e > custom && isspace((unsigned char)e[-1]))
                e--;
            buf_printf(&b, "_%.*s", (int)(e - custom), custom);
        }
        *out = buf_steal(&b);
        buf_free(&b);
        return CS_OK;
    }
    vals[0] = custom ? tpl_str(custom) : tpl_none();
    vals[1] = node;
    args.nkw = 2;
    args.kwnames = names;
    args.kw = vals;
    w->parsing = true;
    dbt_begin_render(w, -1, &o);
    tpl_ref(fn);
    rc = tpl_call_value(w->env, fn, &args, &res, err);
    tpl_unref(fn);
    if (rc == CS_OK) {
        buf_init(&b, 0);
        tpl_to_text(res, &b);
        /* the macro's text, its surrounding whitespace left out */
        const char *a = b.data ? b.data : "", *e = a + strlen(a);
        while (isspace((unsigned char)*a))
            a++;
        while (e > a && isspace((unsigned char)e[-1]))
            e--;
        *out = xstrndup(a, (size_t)(e - a));
        buf_free(&b);
        tpl_unref(res);
        if (!**out)
            rc =
                cs_fail(err, CS_INVALID, "%s: generate_schema_name returned an empty schema", file);
    } else {
        cs_error_prefix(err, "%s: generate_schema_name: ", file);
    }
    tpl_unref(vals[0]);
    tpl_unref(vals[1]);
    return rc;
}

/* the dict generate_schema_name gets as node (new reference) */
static tpl_value *schema_node(const char *name, const char *type, const char *package,
                              const char *path, const pv *config)
{
    tpl_value *node = tpl_dict_new();
    tpl_dict_set(node, "name", tpl_str(name));
    tpl_dict_set(node, "resource_type", tpl_str(type));
    tpl_dict_set(node, "package_name", tpl_str(package));
    tpl_dict_set(node, "original_file_path", tpl_str(path));
    tpl_dict_set(node, "config", dbt_pv_to_tpl(config));
    return node;
}

static cs_result seed_schema(dbt_worker *w, size_t i, char **out, cs_error *err)
{
    const pl_project *p = w->m->p;
    const pl_seed *s = &p->seeds[i];
    return node_schema(w, pv_gets(s->config, "schema"),
                       schema_node(s->name, "seed", p->packages[s->package].name,
                                   s->relpath ? s->relpath : s->file, s->config),
                       s->file, out, err);
}

/* every model's schema, once its final config is known */
static cs_result model_schemas(dbt_manifest *m, dbt_worker *w, cs_error *err)
{
    const pl_project *p = m->p;
    cs_result rc = CS_OK;

    for (size_t i = 0; i < p->nmodels && rc == CS_OK; i++) {
        const pl_model *pm = &p->models[i];
        dbt_node *nd = &m->nodes[i];
        rc = node_schema(w, pv_gets(nd->config, "schema"),
                         schema_node(pm->name, "model", p->packages[pm->package].name,
                                     pm->relpath ? pm->relpath : pm->file, nd->config),
                         pm->file, &nd->schema, err);
    }
    return rc;
}

/* every seed's schema and hooks */
static cs_result parse_seeds(dbt_manifest *m, dbt_worker *w, cs_error *err)
{
    const pl_project *p = m->p;
    cs_result rc = CS_OK;

    for (size_t i = 0; i < p->nseeds && rc == CS_OK; i++) {
        dbt_seed_node *sn = &m->seeds[i];
        const pl_seed *s = &p->seeds[i];
        if ((rc = render_config(w, s->config, s->props_file ? s->props_file : s->file, err)) ==
                CS_OK &&
            (rc = seed_schema(w, i, &sn->schema, err)) == CS_OK &&
            (rc = compile_hooks(pv_get(s->config, "pre_hook"), s->file, "pre_hook", &sn->pre_hooks,
                                &sn->npre_hooks, NULL, NULL, err)) == CS_OK)
            rc = compile_hooks(pv_get(s->config, "post_hook"), s->file, "post_hook",
                               &sn->post_hooks, &sn->npost_hooks, NULL, NULL, err);
    }
    return rc;
}

static int cmp_package_name(const void *a, const void *b, void *ud)
{
    const pl_project *p = ud;
    return strcmp(p->packages[*(const size_t *)a].name, p->packages[*(const size_t *)b].name);
}

/*
 * on-run-start and on-run-end of every package, in dbt's order: the
 * packages by name, the root project last, each package's hooks in its
 * file's order.  (dbt sorts hooks by package name with the root's sorting
 * after every other.)
 */
static cs_result compile_project_hooks(const pl_project *p, dbt_manifest *m, cs_error *err)
{
    size_t *order = xcalloc(p->npackages + 1, sizeof(size_t)), n = 0;
    cs_result rc = CS_OK;

    for (size_t k = 1; k < p->npackages; k++)
        order[n++] = k;
    qsort_r(order, n, sizeof(size_t), cmp_package_name, (void *)p);
    order[n++] = 0;
    for (size_t k = 0; k < n && rc == CS_OK; k++) {
        const pl_package *pk = &p->packages[order[k]];
        if ((rc = compile_hooks(pk->on_run_start, pk->file, "on-run-start", &m->on_run_start,
                                &m->non_run_start, NULL, NULL, err)) == CS_OK)
            rc = compile_hooks(pk->on_run_end, pk->file, "on-run-end", &m->on_run_end,
                               &m->non_run_end, NULL, NULL, err);
    }
    free(order);
    return rc;
}

static int cmp_relname(const void *a, const void *b, void *ud)
{
    const dbt_manifest *m = ud;
    const dbt_node *x = &m->nodes[*(const size_t *)a], *y = &m->nodes[*(const size_t *)b];
    int d = strcmp(x->schema, y->schema);
    return d ? d : strcmp(x->relname, y->relname);
}

/*
 * Two models that would build one relation (the same name or alias, in
 * the root and a package or in two packages) are an error before the run,
 * as in dbt, naming both; otherwise the second build replaces the first.
 */
static cs_result check_duplicate_relations(const dbt_manifest *m, cs_error *err)
{
    const pl_project *p = m->p;
    size_t *idx = xcalloc(p->nmodels + 1, sizeof(size_t)), n = 0;
    cs_result rc = CS_OK;

    for (size_t i = 0; i < p->nmodels; i++)
        if (m->nodes[i].mat != MAT_EPHEMERAL)
            idx[n++] = i;
    qsort_r(idx, n, sizeof(size_t), cmp_relname, (void *)m);
    for (size_t k = 1; k < n && rc == CS_OK; k++) {
        size_t a = idx[k - 1], b = idx[k];
        char ua[512], ub[512];
        if (cmp_relname(&a, &b, (void *)m) != 0)
            continue;
        /* the root's first, then by load order */
        if (p->models[b].package == 0 || (p->models[a].package != 0 && a > b)) {
            size_t t = a;
            a = b;
            b = t;
        }
        dbt_unique_id(p, a, ua, sizeof(ua));
        dbt_unique_id(p, b, ub, sizeof(ub));
        rc = cs_fail(err, CS_INVALID,
                     "two models would build the relation \"%s\".\"%s\": %s (%s) and %s (%s); "
                     "rename one or give it another alias",
                     m->nodes[a].schema, m->nodes[a].relname, ua, p->models[a].relpath, ub,
                     p->models[b].relpath);
    }
    free(idx);
    return rc;
}

/* the graph of refs and its topological order (a cycle fails with its path) */
static cs_result order_models(dbt_manifest *m, cs_error *err)
{
    size_t n = m->p->nmodels;

    m->g = graph_new(n);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < m->nodes[i].ndeps; k++)
            graph_add_edge(m->g, m->nodes[i].deps[k], i);
    return graph_order(m->g, m->order, node_name, m, err);
}

cs_result dbt_parse(pl_project *p, const dbt_settings *set, dbt_manifest **out, cs_error *err)
{
    dbt_manifest *m = manifest_new(p, set);
    dbt_worker *w = NULL;
    cs_result rc;

    *out = NULL;
    if ((rc = compile_builtin(m, err)) != CS_OK || (rc = compile_macros(m, err)) != CS_OK)
        goto fail;
    dbt_materialization_warn_builtin(m);
    w = dbt_worker_new(m);
    if ((rc = render_sources(w, p, err)) != CS_OK || (rc = parse_seeds(m, w, err)) != CS_OK)
        goto fail;
    for (size_t i = 0; i < p->nmodels && rc == CS_OK; i++)
        rc = parse_model(m, w, i, err);
    if (rc != CS_OK || (rc = model_schemas(m, w, err)) != CS_OK ||
        (rc = parse_tests(m, w, err)) != CS_OK ||
        (rc = compile_project_hooks(p, m, err)) != CS_OK ||
        (rc = check_duplicate_relations(m, err)) != CS_OK || (rc = order_models(m, err)) != CS_OK)
        goto fail;
    dbt_fingerprint_models(m);
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
        free(nd->seed_deps);
        free(nd->inputs);
        pv_free(nd->config);
        free(nd->relname);
        free(nd->mat_name);
        free(nd->mat_macro);
        free(nd->schema);
        for (size_t k = 0; k < nd->nunique_key; k++)
            free(nd->unique_key[k]);
        free(nd->unique_key);
        free_tpls(nd->pre_hooks, nd->npre_hooks);
        free_tpls(nd->post_hooks, nd->npost_hooks);
        free_tpls(nd->pre_hooks_before, nd->npre_hooks_before);
        free_tpls(nd->post_hooks_after, nd->npost_hooks_after);
        pv_free(nd->contract);
        pv_free(nd->constraints);
    }
    for (size_t i = 0; i < m->p->ntests; i++) {
        tpl_template_free(m->tests[i].tpl);
        free(m->tests[i].deps);
        free(m->tests[i].seed_deps);
        pv_free(m->tests[i].config);
    }
    for (size_t i = 0; i < m->p->nseeds; i++) {
        free(m->seeds[i].schema);
        free_tpls(m->seeds[i].pre_hooks, m->seeds[i].npre_hooks);
        free_tpls(m->seeds[i].post_hooks, m->seeds[i].npost_hooks);
    }
    free(m->seeds);
    free_tpls(m->macros, m->p->nmacros);
    free_tpls(m->builtin, m->builtin ? dbt_builtin_nfiles : 0);
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
