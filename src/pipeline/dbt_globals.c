/*
 * dbt_globals.c - the context values dbt gives every template besides its
 * functions: target (as dbt-postgres fills it, never the password),
 * project_name, schema, database, api, flags, run_started_at,
 * invocation_id and graph.
 *
 * The run's values (invocation_id, flags.WHICH/FULL_REFRESH,
 * run_started_at) come from the runner once per run (dbt_worker_set_run),
 * the same for every thread.  graph is built from the manifest the first
 * time a render executes (at parse time it is empty, as dbt's is before
 * the manifest exists): nodes (models and seeds) and sources keyed by
 * unique_id, with the fields packages read.
 */
#include "pipeline/dbt_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/xalloc.h"

static tpl_value *str0(const char *s)
{
    return tpl_str(s ? s : "");
}

static tpl_value *target_new(const dbt_settings *set)
{
    tpl_value *t = tpl_dict_new();

    tpl_dict_set(t, "name", tpl_str("default"));
    tpl_dict_set(t, "target_name", tpl_str("default"));
    tpl_dict_set(t, "profile_name", tpl_str("default"));
    tpl_dict_set(t, "type", tpl_str("postgres"));
    tpl_dict_set(t, "schema", str0(set->schema));
    tpl_dict_set(t, "database", str0(set->database));
    tpl_dict_set(t, "dbname", str0(set->database));
    tpl_dict_set(t, "user", str0(set->user));
    tpl_dict_set(t, "host", str0(set->host));
    tpl_dict_set(t, "port", tpl_int(set->port > 0 ? set->port : 5432));
    tpl_dict_set(t, "threads", tpl_int(set->threads));
    return t;
}

static tpl_value *flags_new(const char *which, bool full_refresh)
{
    tpl_value *f = tpl_object_new("flags");

    tpl_dict_set(f, "WHICH", tpl_str(which ? which : "run"));
    tpl_dict_set(f, "FULL_REFRESH", tpl_bool(full_refresh));
    tpl_dict_set(f, "STORE_FAILURES", tpl_bool(false));
    tpl_dict_set(f, "WARN_ERROR", tpl_bool(false));
    tpl_dict_set(f, "FAIL_FAST", tpl_bool(false));
    tpl_dict_set(f, "DEBUG", tpl_bool(false));
    tpl_dict_set(f, "USE_COLORS", tpl_bool(false));
    tpl_dict_set(f, "LOG_FORMAT", tpl_str("text"));
    return f;
}

void dbt_globals_init(dbt_worker *w)
{
    const dbt_manifest *m = w->m;
    struct timespec now;

    tpl_env_set(w->env, "target", target_new(&m->set));
    tpl_env_set(w->env, "project_name", tpl_str(m->p->packages[0].name));
    tpl_env_set(w->env, "schema", str0(m->set.schema));
    tpl_env_set(w->env, "database", str0(m->set.database));
    tpl_env_set(w->env, "api", dbt_api_new());
    tpl_env_set(w->env, "flags", flags_new("run", false));
    tpl_env_set(w->env, "invocation_id", tpl_str(""));
    clock_gettime(CLOCK_REALTIME, &now);
    tpl_env_set(w->env, "run_started_at",
                tpl_datetime_utc((long long)now.tv_sec * 1000000 + now.tv_nsec / 1000));
    w->graph_built = false;
    {
        tpl_value *g = tpl_dict_new();
        tpl_dict_set(g, "nodes", tpl_dict_new());
        tpl_dict_set(g, "sources", tpl_dict_new());
        tpl_dict_set(g, "exposures", tpl_dict_new());
        tpl_dict_set(g, "metrics", tpl_dict_new());
        tpl_env_set(w->env, "graph", g);
    }
}

void dbt_worker_set_run(dbt_worker *w, const dbt_run_info *ri)
{
    tpl_value *t;

    tpl_env_set(w->env, "invocation_id", str0(ri->invocation_id));
    tpl_env_set(w->env, "flags", flags_new(ri->which, ri->full_refresh));
    if (ri->started_us && (t = tpl_datetime_utc(ri->started_us)) != NULL)
        tpl_env_set(w->env, "run_started_at", t);
}

static tpl_value *str_list(const pv *l)
{
    tpl_value *out = tpl_list_new();
    for (size_t i = 0; l && l->type == PV_LIST && i < l->n; i++)
        if (pv_s(l->items[i]))
            tpl_list_push(out, tpl_str(pv_s(l->items[i])));
    return out;
}

/* graph.nodes["model.pkg.name"] */
static tpl_value *model_node(const dbt_manifest *m, size_t i)
{
    const pl_project *p = m->p;
    const pl_model *pm = &p->models[i];
    const dbt_node *nd = &m->nodes[i];
    tpl_value *n = tpl_dict_new(), *deps = tpl_dict_new(), *dn = tpl_list_new(), *fqn;
    char uid[512];

    snprintf(uid, sizeof(uid), "model.%s.%s", p->packages[pm->package].name, pm->name);
    tpl_dict_set(n, "unique_id", tpl_str(uid));
    tpl_dict_set(n, "resource_type", tpl_str("model"));
    tpl_dict_set(n, "name", tpl_str(pm->name));
    tpl_dict_set(n, "alias", str0(nd->relname ? nd->relname : pm->name));
    tpl_dict_set(n, "package_name", tpl_str(p->packages[pm->package].name));
    tpl_dict_set(n, "original_file_path", tpl_str(pm->relpath));
    tpl_dict_set(n, "path", tpl_str(pm->relpath));
    tpl_dict_set(n, "database", str0(m->set.database));
    tpl_dict_set(n, "schema", str0(nd->schema ? nd->schema : m->set.schema));
    tpl_dict_set(n, "config", nd->config ? dbt_pv_to_tpl(nd->config) : tpl_dict_new());
    tpl_dict_set(n, "tags", str_list(pv_get(nd->config, "tags")));
    tpl_dict_set(n, "raw_code", str0(pm->sql));
    for (size_t k = 0; k < nd->ndeps; k++) {
        bool seen = false; /* a model may ref a parent twice: dbt lists it once */
        for (size_t j = 0; j < k && !seen; j++)
            seen = nd->deps[j] == nd->deps[k];
        if (seen)
            continue;
        const pl_model *dm = &p->models[nd->deps[k]];
        char d[512];
        snprintf(d, sizeof(d), "model.%s.%s", p->packages[dm->package].name, dm->name);
        tpl_list_push(dn, tpl_str(d));
    }
    tpl_dict_set(deps, "nodes", dn);
    tpl_dict_set(deps, "macros", tpl_list_new());
    tpl_dict_set(n, "depends_on", deps);
    fqn = tpl_list_new();
    tpl_list_push(fqn, tpl_str(p->packages[pm->package].name));
    tpl_list_push(fqn, tpl_str(pm->name));
    tpl_dict_set(n, "fqn", fqn);
    return n;
}

static tpl_value *seed_node(const dbt_manifest *m, size_t i)
{
    const pl_project *p = m->p;
    const pl_seed *s = &p->seeds[i];
    tpl_value *n = tpl_dict_new(), *cfg;
    char uid[512];

    snprintf(uid, sizeof(uid), "seed.%s.%s", p->packages[s->package].name, s->name);
    tpl_dict_set(n, "unique_id", tpl_str(uid));
    tpl_dict_set(n, "resource_type", tpl_str("seed"));
    tpl_dict_set(n, "name", tpl_str(s->name));
    tpl_dict_set(n, "alias", tpl_str(s->name));
    tpl_dict_set(n, "package_name", tpl_str(p->packages[s->package].name));
    tpl_dict_set(n, "original_file_path", str0(s->file));
    tpl_dict_set(n, "database", str0(m->set.database));
    tpl_dict_set(n, "schema",
                 str0(m->seeds && m->seeds[i].schema ? m->seeds[i].schema : m->set.schema));
    cfg = s->config ? dbt_pv_to_tpl(s->config) : tpl_dict_new();
    tpl_dict_set(n, "config", cfg);
    return n;
}

static tpl_value *source_node(const dbt_manifest *m, size_t i)
{
    const pl_source *s = &m->p->sources[i];
    tpl_value *n = tpl_dict_new();
    char uid[512];

    snprintf(uid, sizeof(uid), "source.%s.%s.%s", m->p->packages[0].name, s->source_name,
             s->table_name);
    tpl_dict_set(n, "unique_id", tpl_str(uid));
    tpl_dict_set(n, "resource_type", tpl_str("source"));
    tpl_dict_set(n, "source_name", tpl_str(s->source_name));
    tpl_dict_set(n, "name", tpl_str(s->table_name));
    tpl_dict_set(n, "identifier", str0(s->identifier));
    tpl_dict_set(n, "schema", str0(s->schema));
    tpl_dict_set(n, "database", str0(m->set.database));
    tpl_dict_set(n, "original_file_path", str0(s->file));
    return n;
}

void dbt_graph_ensure(dbt_worker *w)
{
    const dbt_manifest *m = w->m;
    tpl_value *g, *nodes, *sources;

    if (w->graph_built)
        return;
    w->graph_built = true;
    g = tpl_dict_new();
    nodes = tpl_dict_new();
    sources = tpl_dict_new();
    for (size_t i = 0; i < m->p->nmodels; i++) {
        tpl_value *n = model_node(m, i);
        tpl_dict_set(nodes, tpl_as_str(tpl_dict_get(n, "unique_id")), n);
    }
    for (size_t i = 0; i < m->p->nseeds; i++) {
        tpl_value *n = seed_node(m, i);
        tpl_dict_set(nodes, tpl_as_str(tpl_dict_get(n, "unique_id")), n);
    }
    for (size_t i = 0; i < m->p->nsources; i++) {
        tpl_value *n = source_node(m, i);
        tpl_dict_set(sources, tpl_as_str(tpl_dict_get(n, "unique_id")), n);
    }
    tpl_dict_set(g, "nodes", nodes);
    tpl_dict_set(g, "sources", sources);
    tpl_dict_set(g, "exposures", tpl_dict_new());
    tpl_dict_set(g, "metrics", tpl_dict_new());
    tpl_env_set(w->env, "graph", g);
}
