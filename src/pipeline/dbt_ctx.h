/*
 * dbt_ctx.h - dbt's template context and the parse phase.
 *
 * dbt_parse compiles every template of a loaded project once (models,
 * macros, hooks, singular tests), renders each model with execute=False to
 * collect its config(), ref() and source() calls (also those in
 * "-- depends_on:" comments), builds the dependency graph, orders it
 * (reporting a cycle with its path) and fingerprints each model.  The
 * result, a manifest, is immutable and shared by the runner's threads.
 *
 * A dbt_worker is one thread's rendering context: a tpl_env holding the
 * macros and dbt's natives (config, ref, source, this, is_incremental, var,
 * env_var, statement/load_result, run_query, execute, log, exceptions,
 * adapter, target).  statement and run_query reach the database through a
 * callback the runner gives it; this module includes nothing of libpq.
 *
 * Environment: env_var() reads the `env` array given in dbt_settings (a
 * snapshot of environ that main's pipeline command captures), never getenv.
 */
#ifndef CS_DBT_CTX_H
#define CS_DBT_CTX_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "pipeline/graph.h"
#include "pipeline/yaml_tree.h"
#include "pipeline/project.h"
#include "common/result.h"
#include "template/tpl.h"

typedef struct {
    const char *schema;   /* POSTGRES_SCHEMA: every model's schema */
    const char *database; /* POSTGRES_DB */
    const char *user;
    const char *host; /* target.host, target.port (never the password) */
    int port;
    int threads;
    char *const *env;   /* NULL-terminated NAME=VALUE strings (borrowed) */
    const pv *cli_vars; /* --vars, a map or NULL (borrowed) */
    int batch_size;     /* DBT_BATCH_SIZE: var('batch_size') unless --vars sets it; 0: unset */
} dbt_settings;

/* MAT_CUSTOM: a {% materialization %} block of the project or a package
 * (dbt_materialization.c), named by dbt_node.mat_name */
typedef enum { MAT_VIEW, MAT_TABLE, MAT_INCREMENTAL, MAT_EPHEMERAL, MAT_CUSTOM } dbt_mat;

typedef struct {
    tpl_template *tpl;
    size_t *deps; /* models it refs */
    size_t ndeps;
    size_t *seed_deps; /* seeds it refs */
    size_t nseed_deps;
    char *inputs; /* env_var() values and source() relations read at parse time */
    pv *config;   /* the model's final config: folders, properties, config() */
    dbt_mat mat;
    char *mat_name;     /* MAT_CUSTOM: materialized='NAME' (owned) */
    char *mat_macro;    /* MAT_CUSTOM: its macro, materialization_NAME_ADAPTER (owned) */
    size_t mat_package; /* MAT_CUSTOM: the package whose block it is */
    char *relname;      /* alias or name */
    char *schema;       /* generate_schema_name's (dbt_parse): where relname is built */
    char **unique_key;
    size_t nunique_key;
    tpl_template **pre_hooks;
    size_t npre_hooks;
    tpl_template **post_hooks;
    size_t npost_hooks;
    /* hooks with transaction: false: before BEGIN, after COMMIT */
    tpl_template **pre_hooks_before;
    size_t npre_hooks_before;
    tpl_template **post_hooks_after;
    size_t npost_hooks_after;
    pv *contract;    /* contract columns with rendered expressions, or NULL */
    pv *constraints; /* model-level constraints, rendered, or NULL */
    char fingerprint[17];
} dbt_node;

/*
 * A data test after the parse.  A generic test calls the macro
 * test_<kind> of its package (or of the project: a {% test %} block),
 * else, for not_null, unique, accepted_values and relationships, the
 * built-in query.
 */
typedef struct {
    tpl_template *tpl; /* singular tests: the file; NULL for generic tests */
    size_t *deps;      /* models it reads: its target and every ref() */
    size_t ndeps;
    size_t *seed_deps; /* seeds it reads */
    size_t nseed_deps;
    pv *config; /* its final config: yml, then config() (fail_calc, where, severity...) */
    bool enabled;
} dbt_test_node;

/* a seed after the parse: where it is loaded and its hooks */
typedef struct {
    char *schema; /* generate_schema_name(custom schema, node) */
    tpl_template **pre_hooks;
    size_t npre_hooks;
    tpl_template **post_hooks;
    size_t npost_hooks;
} dbt_seed_node;

typedef struct {
    pl_project *p; /* owned */
    dbt_settings set;
    pv *cli_vars;           /* owned: --vars plus batch_size from DBT_BATCH_SIZE */
    dbt_node *nodes;        /* p->nmodels */
    tpl_template **macros;  /* p->nmacros */
    tpl_template **builtin; /* dbt_builtin_nfiles: the `dbt` namespace (dbt_builtin.h) */
    dbt_test_node *tests;   /* p->ntests (tpl NULL for generic tests) */
    dbt_seed_node *seeds;   /* p->nseeds */
    tpl_template **on_run_start;
    size_t non_run_start;
    tpl_template **on_run_end;
    size_t non_run_end;
    graph *g;
    size_t *order; /* topological order of all models */
} dbt_manifest;

/*
 * Parses the project (takes p, also on failure).  Errors are CS_INVALID
 * with "FILE:LINE:COL: ..." for template errors, or the cycle's path.
 */
cs_result dbt_parse(pl_project *p, const dbt_settings *set, dbt_manifest **out,
                    cs_error *err) CS_MUST_CHECK;
void dbt_manifest_free(dbt_manifest *m);

/* A query for statement/run_query: on success *out is a map {columns:
 * [names], rows: [[values]], status: the command tag ("CREATE FUNCTION"),
 * rows_affected} (caller frees). */
typedef cs_result (*dbt_sql_fn)(void *ud, const char *sql, pv **out, cs_error *err);

typedef struct dbt_worker dbt_worker;

dbt_worker *dbt_worker_new(const dbt_manifest *m);
void dbt_worker_free(dbt_worker *w);
/* what one run gives every template, the same on every thread */
typedef struct {
    const char *invocation_id;
    const char *which;    /* flags.WHICH: "run", "build", "compile", "test", "seed" */
    bool full_refresh;    /* flags.FULL_REFRESH */
    long long started_us; /* run_started_at, microseconds since the epoch (UTC); 0: keep */
} dbt_run_info;

/* sets invocation_id, flags and run_started_at of every later render (copied) */
void dbt_worker_set_run(dbt_worker *w, const dbt_run_info *ri);

/* "model.<package>.<name>": dbt's unique_id of model i */
void dbt_unique_id(const pl_project *p, size_t model, char *out, size_t n);

/* whether the project (or a package) has a model named dbt_results: it
 * then owns that table, and the runner writes no rows of its own */
bool dbt_owns_results_table(const dbt_manifest *m);

/*
 * on-run-end's `results`: a list of maps shaped like dbt's RunResult.to_dict()
 * (node {unique_id, database, schema, name, alias, resource_type,
 * package_name}, status, execution_time, message, adapter_response
 * {rows_affected, ...}, timing [{name, started_at, completed_at}]).  Each
 * entry is also given a to_dict() method returning a copy of the map.
 */
typedef struct {
    bool execute;
    bool is_incremental;
    dbt_sql_fn sql; /* may be NULL when !execute */
    void *sql_ud;
    const pv *results; /* on-run-end: the run's results (list), or NULL */
    bool full_refresh; /* should_full_refresh(): the flag, or the model's full_refresh config */
} dbt_render_opts;

/* Renders model i's SQL (ephemeral ancestors injected as CTEs) into out. */
cs_result dbt_render_model(dbt_worker *w, size_t model, const dbt_render_opts *o, buf *out,
                           cs_error *err) CS_MUST_CHECK;
/* Renders a hook template in model's context (model may be -1: project hooks). */
cs_result dbt_render_hook(dbt_worker *w, long model, const tpl_template *t,
                          const dbt_render_opts *o, buf *out, cs_error *err) CS_MUST_CHECK;
/* Renders a hook of seed i (this: the seed's relation). */
cs_result dbt_render_seed_hook(dbt_worker *w, size_t seed, const tpl_template *t,
                               const dbt_render_opts *o, buf *out, cs_error *err) CS_MUST_CHECK;
/* Renders test i's SQL (singular: its file; generic: its macro or the built-in query). */
cs_result dbt_render_test(dbt_worker *w, size_t test, const dbt_render_opts *o, buf *out,
                          cs_error *err) CS_MUST_CHECK;

/*
 * What a custom materialization (MAT_CUSTOM) runs on: the runner's
 * connection.  Statements go through sql; one sent while in_txn says no
 * transaction is open is preceded by begin_sql (BEGIN and the model's
 * lock), as dbt's connection begins one on a statement's first use.
 */
typedef struct {
    dbt_sql_fn sql;
    void *ud;
    bool (*in_txn)(void *ud);
    const char *begin_sql;
    bool full_refresh;
} dbt_mat_io;

/*
 * Runs model i's custom materialization with dbt's context: this, model
 * (with config and compiled_code), sql/compiled_code (sql, the compiled
 * SQL), config.get/require, pre_hooks/post_hooks with run_hooks(),
 * statement('main'), adapter.commit(), should_full_refresh().  Its
 * return({'relations': [...]}) is checked as dbt does; a transaction it
 * left open is rolled back (dbt closes the connection so) with a warning.
 * *detail gets the outcome of statement('main') ("CREATE FUNCTION"),
 * *rows its rows affected.
 */
cs_result dbt_run_materialization(dbt_worker *w, size_t model, const dbt_mat_io *io,
                                  const char *sql, char *detail, size_t ndetail, long *rows,
                                  cs_error *err) CS_MUST_CHECK;

const char *dbt_mat_name(dbt_mat m);
/* the materialization a node runs: dbt_mat_name, or a custom one's name */
const char *dbt_node_mat_name(const dbt_node *nd);

/*
 * fp (a fingerprint) extended with text into out (17 bytes): a view's
 * stored fingerprint also covers its compiled SQL, so that a view is
 * replaced exactly when what it would be created with differs.
 */
void dbt_fingerprint_extend(const char *fp, const char *text, char *out);

#endif
