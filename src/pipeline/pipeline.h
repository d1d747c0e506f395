/*
 * pipeline.h - the `cht-sync pipeline` command and the long-running
 * session the daemon uses.
 *
 * A session loads and parses a project once and keeps its connections; each
 * pipeline_session_run first checks the project's files (stat only) and
 * reloads only when one changed, appeared or went, so an unchanged project
 * costs no parsing between runs.  A reload that fails keeps the previous
 * project and reports the error.
 */
#ifndef CS_PIPELINE_H
#define CS_PIPELINE_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "common/config.h"
#include "common/result.h"
#include "pipeline/runner.h"

/* `cht-sync pipeline SUBCOMMAND ...`; reads environ for env_var() (main's
 * process environment, captured here and passed down, never getenv) */
int pipeline_main(const cs_config *cfg, int argc, char **argv);

/*
 * The usage of `cht-sync pipeline` (command NULL or unknown) or of one of
 * its commands (run, compile, test, ls).  main prints it for --help/-h
 * after "pipeline", before any setting is read, so it works unconfigured.
 */
void pipeline_usage(FILE *out, const char *command);

typedef struct pipeline_session pipeline_session;

/*
 * Opens a session on project_dir.  env (NULL-terminated NAME=VALUE, borrowed,
 * must outlive the session) feeds env_var(); vars_yaml is --vars (may be
 * NULL).  cfg is borrowed and must outlive the session.
 */
cs_result pipeline_session_open(const cs_config *cfg, const char *project_dir, char *const *env,
                                const char *vars_yaml, pipeline_session **out,
                                cs_error *err) CS_MUST_CHECK;
/*
 * Where runs write each model's SQL, as dbt does: DIR/compiled/... (the
 * model's SQL) and DIR/run/... (the statements run); NULL (the default):
 * nowhere.  dir is copied.
 */
void pipeline_session_set_target(pipeline_session *s, const char *dir);
/* what a long-running caller (the daemon) sets beyond pipeline_session_open */
typedef struct {
    const char *base_dir;        /* project_load_with_base's base models (NULL: none) */
    FILE *out;                   /* the per-model progress lines (NULL: stdout) */
    volatile sig_atomic_t *stop; /* once raised, a run starts no further model (NULL: never) */
} pipeline_session_opts;

/* pipeline_session_open with opts (borrowed, must outlive the session) */
cs_result pipeline_session_open_with(const cs_config *cfg, const char *project_dir,
                                     char *const *env, const char *vars_yaml,
                                     const pipeline_session_opts *opts, pipeline_session **out,
                                     cs_error *err) CS_MUST_CHECK;
/* builds the models selected by select/exclude (NULL: all) */
cs_result pipeline_session_run(pipeline_session *s, const char *select, const char *exclude,
                               bool full_refresh, runner_summary *sum, cs_error *err) CS_MUST_CHECK;
void pipeline_session_close(pipeline_session *s);

#endif
