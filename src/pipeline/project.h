/*
 * project.h - loading a dbt-format project from disk: dbt_project.yml,
 * packages.yml (local packages, then what dbt_packages holds), seeds, model .sql files, .yml
 * property files (sources, model configs, columns, contracts, data tests), macro files, singular
 * tests and selectors.yml.
 *
 * Loading reads files and merges the YAML-level configuration; it renders
 * no template (dbt_ctx does that in the parse phase), so it is unit-tested
 * alone.  Strings that may hold templates (source schemas, constraint
 * expressions, hooks) are kept as written.
 *
 * Ownership: project_load returns a project the caller frees with
 * project_free; everything inside belongs to it.
 */
#ifndef CS_PROJECT_H
#define CS_PROJECT_H

#include <stdbool.h>
#include <stddef.h>

#include "pipeline/yaml_tree.h"
#include "common/result.h"

typedef struct {
    char *name;         /* the project's `name:` */
    char *root;         /* its directory */
    char *file;         /* its dbt_project.yml */
    char **model_paths; /* relative to root */
    size_t n_model_paths;
    char **macro_paths;
    size_t n_macro_paths;
    char **test_paths;
    size_t n_test_paths;
    char **seed_paths; /* seed-paths (or data-paths), relative to root */
    size_t n_seed_paths;
    pv *vars;         /* map (never NULL) */
    pv *models_cfg;   /* the `models:` tree, or NULL */
    pv *tests_cfg;    /* the `data_tests:` (or `tests:`) tree, or NULL */
    pv *on_run_start; /* list of hook strings (never NULL) */
    pv *on_run_end;
    pv *dispatch;  /* the `dispatch:` list (root project: adapter.dispatch's search orders), or NULL
                    */
    char **ignore; /* the patterns of its .dbtignore, in order */
    size_t nignore;
} pl_package;

typedef struct {
    char *name;          /* file name without .sql */
    size_t package;      /* index into packages; 0 is the root project */
    char *relpath;       /* relative to the package root: models/a/b.sql */
    char *file;          /* path for messages and reading: root/relpath */
    char *sql;           /* the file's text */
    pv *config;          /* folder-level and property-file configs merged (map) */
    pv *columns;         /* list of column maps from property files, or NULL */
    pv *constraints;     /* model-level constraints from property files, or NULL */
    char *props_file;    /* the property file that describes it, or NULL */
    size_t *source_refs; /* the sources it reads (indexes into sources), set by the parse */
    size_t nsource_refs;
} pl_model;

typedef struct {
    char *source_name;
    char *table_name;
    char *schema;     /* as written, may hold {{ }}; the source name when absent */
    char *identifier; /* as written; the table name when absent */
    char *file;
    int line;
} pl_source;

/*
 * A data test.  A generic test (kind set) is attached to one model, seed or
 * source table (exactly one of model, seed, source is >= 0); a singular
 * test (a .sql file of test-paths) to none.
 */
typedef struct {
    char *name;     /* not_null_contact_uuid, or the singular test's file name */
    char *kind;     /* the generic test (not_null, equality, ...); NULL: singular */
    char *ns;       /* the package it is named with (dbt_utils.equality), or NULL */
    long model;     /* model tested (index), or -1 */
    long seed;      /* seed tested (index into seeds), or -1 */
    long source;    /* source table tested (index into sources), or -1 */
    char *column;   /* may be NULL */
    pv *args;       /* the test's keyword arguments, config keys taken out (never NULL) */
    pv *config;     /* its config: `config:` and the config keys given as arguments (never NULL) */
    size_t package; /* the package whose file defines it */
    char *file;
    int line;
    char *sql; /* singular tests: the file's text */
} pl_test;

typedef struct {
    char *file;
    size_t package;
    char *text;
} pl_macro_file;

typedef struct {
    char *name;       /* file name without .csv, or its alias */
    size_t package;   /* index into packages */
    char *file;       /* the CSV file */
    char *relpath;    /* relative to the package root: data/sql/x.csv */
    pv *config;       /* folder-level configs, then the property file's (map, never NULL) */
    pv *columns;      /* columns described in a property file, or NULL */
    char *props_file; /* the property file that describes it, or NULL */
} pl_seed;

typedef struct {
    char *path;
    long long mtime_ns;
    long long size;
} pl_stamp;

typedef struct {
    pl_package *packages; /* [0] is the root project */
    size_t npackages;
    pl_model *models;
    size_t nmodels;
    pl_source *sources;
    size_t nsources;
    pl_test *tests;
    size_t ntests;
    pl_macro_file *macros;
    size_t nmacros;
    pl_seed *seeds; /* seed.c fills them */
    size_t nseeds;
    pv *selectors;    /* map: selector name -> definition (never NULL) */
    pl_stamp *stamps; /* every file and directory read, for change detection */
    size_t nstamps;
    /* models by name (project_find_model): open addressing over the first
     * model of each name, the others of that name chained through mnext */
    long *mslots;
    size_t nmslots;
    long *mnext;
} pl_project;

/*
 * Loads the project in dir.  Errors name the file (and line when known):
 * a missing dbt_project.yml is CS_PERMANENT, a malformed file or an
 * unsupported construct (Python models) or a package not installed CS_INVALID.
 */
cs_result project_load(const char *dir, pl_project **out, cs_error *err) CS_MUST_CHECK;
void project_free(pl_project *p);

/* the dbt project name of CHT Pipeline, under which deployments ref it */
#define PROJECT_BASE_PACKAGE "cht_pipeline_base"

/*
 * project_load, with the base models in base_dir (a project named
 * PROJECT_BASE_PACKAGE; NULL: as project_load) made available to the root
 * project under that name: a packages.yml entry that is a git package of
 * cht-pipeline is replaced by it, and it is added when no package of that
 * name was loaded (a `- local:` one of the project's own wins; a root
 * project that is the base itself needs nothing).
 */
cs_result project_load_with_base(const char *dir, const char *base_dir, pl_project **out,
                                 cs_error *err) CS_MUST_CHECK;

/* index of the model named name (in package pkg, or any package when pkg is
 * NULL; the root project wins), or -1 */
long project_find_model(const pl_project *p, const char *pkg, const char *name);
long project_find_source(const pl_project *p, const char *source, const char *table);

/* true when a file or directory read at load time changed, appeared or went */
bool project_changed(const pl_project *p);
/*
 * true when no file or directory read at load time was modified in the
 * last quiet_ns nanoseconds (by the wall clock; an mtime more than a
 * minute ahead of it, a skewed clock, does not hold a reload back)
 */
bool project_settled(const pl_project *p, long long quiet_ns);

/*
 * Merges the config map src into dst the way dbt does: later wins, except
 * tags, pre_hook and post_hook, which accumulate (a scalar becomes a list).
 * Keys are normalised ("+materialized" -> "materialized", "pre-hook" ->
 * "pre_hook").
 */
void project_config_merge(pv *dst, const pv *src);

#endif
