/*
 * pipeline.c - see pipeline.h.
 */
#include "pipeline/pipeline.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/deps.h"
#include "pipeline/seed.h"
#include "pipeline/dbt_ctx.h"
#include "pipeline/graph.h"
#include "common/log.h"
#include "common/signals.h"
#include "http/http.h"
#include "pipeline/project.h"
#include "pipeline/select.h"
#include "common/xalloc.h"

extern char **environ;

/* how long a changed project's files must stay untouched before a reload */
#define PIPELINE_SETTLE_NS 1000000000LL

struct pipeline_session {
    const cs_config *cfg;
    char *dir;
    char *const *env;
    pv *vars;
    dbt_manifest *m;
    runner_pool *pool;
    char *target; /* runs' target path, or NULL */
    pipeline_session_opts opts;
};

static cs_result load(pipeline_session *s, dbt_manifest **out, cs_error *err)
{
    pl_project *p;
    cs_result rc;
    dbt_settings set = {
        .schema = s->cfg->postgres_schema,
        .database = s->cfg->postgres_db,
        .user = s->cfg->postgres_user,
        .host = s->cfg->postgres_host,
        .port = s->cfg->postgres_port,
        .threads = s->cfg->dbt_thread_count,
        .env = s->env,
        .cli_vars = s->vars,
        .batch_size = s->cfg->dbt_batch_size,
    };

    if ((rc = project_load_with_base(s->dir, s->opts.base_dir, &p, err)) != CS_OK)
        return rc;
    return dbt_parse(p, &set, out, err);
}

cs_result pipeline_session_open(const cs_config *cfg, const char *project_dir, char *const *env,
                                const char *vars_yaml, pipeline_session **out, cs_error *err)
{
    return pipeline_session_open_with(cfg, project_dir, env, vars_yaml, NULL, out, err);
}

cs_result pipeline_session_open_with(const cs_config *cfg, const char *project_dir,
                                     char *const *env, const char *vars_yaml,
                                     const pipeline_session_opts *opts, pipeline_session **out,
                                     cs_error *err)
{
    pipeline_session *s = xcalloc(1, sizeof(*s));
    cs_result rc;

    *out = NULL;
    s->cfg = cfg;
    if (opts)
        s->opts = *opts;
    s->dir = xstrdup(project_dir);
    s->env = env;
    if (vars_yaml &&
        (rc = pv_parse_yaml("--vars", vars_yaml, strlen(vars_yaml), &s->vars, err)) != CS_OK)
        goto fail;
    if (s->vars && s->vars->type != PV_MAP && s->vars->type != PV_NULL) {
        rc = cs_fail(err, CS_PERMANENT, "--vars must be a YAML mapping such as '{key: value}'");
        goto fail;
    }
    if ((rc = load(s, &s->m, err)) != CS_OK)
        goto fail;
    s->pool = runner_pool_new(cfg, cfg->dbt_thread_count);
    *out = s;
    return CS_OK;
fail:
    pipeline_session_close(s);
    return rc;
}

/*
 * Reloads the project when a file changed and the files have settled;
 * keeps the old one on failure.  An edit, a `git pull` or a deployment
 * writes a project as several files one after the other: loading between
 * two of them builds a project that is neither the old nor the new one
 * (a model changed, the model that depends on it not yet), so a change is
 * taken only once no file of the project was modified for
 * PIPELINE_SETTLE_NS; until then the runs use the previous version.
 */
static cs_result refresh(pipeline_session *s, cs_error *err)
{
    dbt_manifest *m;
    cs_result rc;

    if (!project_changed(s->m->p))
        return CS_OK;
    if (!project_settled(s->m->p, PIPELINE_SETTLE_NS)) {
        log_debug("pipeline", "project files changed: waiting for them to settle");
        return CS_OK;
    }
    if ((rc = load(s, &m, err)) != CS_OK) {
        cs_error_prefix(err, "project changed but could not be reloaded (keeping the previous "
                             "version): ");
        return rc;
    }
    log_info("pipeline", "project files changed: reloaded \"%s\"", s->dir);
    dbt_manifest_free(s->m);
    s->m = m;
    return CS_OK;
}

/* dbt's "Nothing to do": a selection that matches no model is no error,
 * but a typo in it should not pass silently */
static void warn_if_empty(const pl_project *p, const bool *sel, const char *select)
{
    for (size_t i = 0; i < p->nmodels; i++)
        if (sel[i])
            return;
    log_warn("pipeline", "the selection \"%s\" matches no model: nothing to do",
             select && *select ? select : "(all)");
}

/* the seeds that select (a space- or comma-separated list of names; NULL: all) names */
static bool *select_seeds(const pl_project *p, const char *select)
{
    bool *sel = xcalloc(p->nseeds + 1, sizeof(bool));
    for (size_t i = 0; i < p->nseeds; i++) {
        size_t n = strlen(p->seeds[i].name);
        sel[i] = !select;
        for (const char *w = select; w && *w && !sel[i];) {
            size_t l = strcspn(w, " ,");
            sel[i] = l == n && strncmp(w, p->seeds[i].name, n) == 0;
            w += l;
            w += strspn(w, " ,");
        }
    }
    return sel;
}

static cs_result run_mode(pipeline_session *s, runner_mode mode, const char *select,
                          const char *exclude, bool full_refresh, const char *target,
                          runner_summary *sum, cs_error *err)
{
    bool *sel = xcalloc(s->m->p->nmodels + 1, sizeof(bool));
    /* the tests of the seeds a selection names (all without one) run too */
    bool *seeds = select_seeds(s->m->p, select);
    runner_opts o = {.mode = mode,
                     .selected_seeds = seeds,
                     .selected = sel,
                     .full_refresh = full_refresh,
                     .threads = s->cfg->dbt_thread_count,
                     .target_dir = target,
                     .out = s->opts.out ? s->opts.out : stdout,
                     .stop = s->opts.stop};
    cs_result rc;

    rc = select_models(s->m->p, s->m->g, select, exclude, sel, err);
    if (rc == CS_OK)
        warn_if_empty(s->m->p, sel, select);
    if (rc == CS_OK)
        rc = runner_run(s->m, s->pool, &o, sum, err);
    free(sel);
    free(seeds);
    return rc;
}

cs_result pipeline_session_run(pipeline_session *s, const char *select, const char *exclude,
                               bool full_refresh, runner_summary *sum, cs_error *err)
{
    cs_result rc = refresh(s, err);
    if (rc != CS_OK)
        return rc;
    return run_mode(s, RUNNER_BUILD, select, exclude, full_refresh, s->target, sum, err);
}

void pipeline_session_set_target(pipeline_session *s, const char *dir)
{
    free(s->target);
    s->target = dir ? xstrdup(dir) : NULL;
}

void pipeline_session_close(pipeline_session *s)
{
    if (!s)
        return;
    dbt_manifest_free(s->m);
    runner_pool_free(s->pool);
    pv_free(s->vars);
    free(s->dir);
    free(s->target);
    free(s);
}

/* ---- the command line ---- */

/* raised by SIGTERM/SIGINT in --watch mode (common/signals.h) */
static volatile sig_atomic_t stop_requested;

/*
 * `seed`, and `build`: the seeds, then the models, then the tests, as
 * dbt build skips only what depends on a failure: a model that reads a
 * seed that failed is skipped (and its dependants), a test that reads a
 * failed or skipped model or seed is skipped; the rest runs.  build loads
 * every seed (a model may read any); `seed -s` names seeds.  Ends with
 * one summary line.  Returns the exit status.
 */
static int seed_and_build(pipeline_session *s, const cs_config *cfg, bool build, const char *select,
                          const char *exclude, bool full_refresh, const char *dir,
                          const char *target)
{
    const pl_project *p = s->m->p;
    bool *seeds = select_seeds(p, build ? NULL : select);
    bool *failed_seeds = xcalloc(p->nseeds + 1, sizeof(bool));
    bool *failed_models = xcalloc(p->nmodels + 1, sizeof(bool));
    bool *sel = xcalloc(p->nmodels + 1, sizeof(bool));
    runner_summary ssum, msum = {0}, tsum = {0};
    runner_tests tests = {.status = xcalloc(p->ntests + 1, sizeof(int))};
    runner_opts o = {.mode = RUNNER_SEED,
                     .selected = sel,
                     .full_refresh = full_refresh,
                     .threads = cfg->dbt_thread_count,
                     .out = s->opts.out ? s->opts.out : stdout,
                     .stop = s->opts.stop,
                     .selected_seeds = seeds,
                     .failed_seeds = failed_seeds,
                     .failed_models = failed_models};
    cs_error err;
    char tbuf[4096];
    int rc = 0;

    if (build && select_models(p, s->m->g, select, exclude, sel, &err) != CS_OK) {
        fprintf(stderr, "cht-sync pipeline: %s\n", err.msg);
        rc = 2;
        goto out;
    }
    /* without a selection, build runs the seeds' tests right after the
     * seeds (a failing one skips what reads the seed, as dbt build) */
    if (build && !select && !exclude)
        o.tests = &tests;
    if (runner_run(s->m, s->pool, &o, &ssum, &err) != CS_OK) {
        fprintf(stderr, "cht-sync pipeline: %s\n", err.msg);
        rc = err.code == CS_TRANSIENT ? 1 : 2;
        goto out;
    }
    if (!build) {
        rc = ssum.errors ? 1 : 0;
        goto out;
    }
    /* a selection's seeds: the tests of a seed it names run */
    free(seeds);
    o.selected_seeds = seeds = select_seeds(p, select);
    if (!target) {
        snprintf(tbuf, sizeof(tbuf), "%s/target", dir);
        target = tbuf;
    }
    o.mode = RUNNER_BUILD;
    o.target_dir = s->target;
    o.tests = &tests; /* a model's tests right after it, as dbt build */
    if (runner_run(s->m, s->pool, &o, &msum, &err) != CS_OK) {
        fprintf(stderr, "cht-sync pipeline: %s\n", err.msg);
        rc = err.code == CS_TRANSIENT ? 1 : 2;
        goto out;
    }
    o.mode = RUNNER_TEST;
    o.target_dir = target;
    if (runner_run(s->m, s->pool, &o, &tsum, &err) != CS_OK) {
        fprintf(stderr, "cht-sync pipeline: %s\n", err.msg);
        rc = 2;
        goto out;
    }
    fprintf(o.out,
            "Finished build: seeds %d OK, %d errors; models %d OK, %d errors, %d skipped; "
            "tests %d passed, %d failed, %d warned, %d skipped\n",
            ssum.ok, ssum.errors, msum.ok, msum.errors, msum.skipped, tsum.ok, tsum.errors,
            tsum.warnings, tsum.skipped);
    rc = ssum.errors || msum.errors || msum.skipped || tsum.errors || tsum.skipped ? 1 : 0;
out:
    free(seeds);
    free(failed_seeds);
    free(failed_models);
    free(sel);
    free(tests.status);
    return rc;
}

/* one line per command: name, arguments, what it does */
static const struct {
    const char *name, *args, *help;
} commands[] = {
    {"run",
     "[-s SEL...] [--exclude SEL...] [--full-refresh] [--vars YAML] [--threads N] "
     "[--watch SECONDS]",
     "build the selected models (--watch SECONDS repeats, reloading changed files)"},
    {"compile", "[-s SEL...] [--exclude SEL...] [--vars YAML] [--target-path DIR]",
     "write each selected model's SQL to DIR/target/compiled/"},
    {"test", "[-s SEL...] [--exclude SEL...] [--vars YAML]",
     "run the data tests and singular tests of the selected models"},
    {"ls", "[-s SEL...] [--exclude SEL...]", "list the selected models"},
    {"seed", "[-s SEED...] [--full-refresh]",
     "load the CSV files of seed-paths into tables (--full-refresh drops them first)"},
    {"build", "[-s SEL...] [--exclude SEL...] [--full-refresh] [--vars YAML]",
     "load the seeds, run the selected models, each followed by its tests; skip what reads a "
     "failure"},
    {"deps", "[--upgrade]",
     "install packages.yml's packages into dbt_packages (--upgrade ignores package-lock.yml)"},
};

static const char options_help[] =
    "Options:\n"
    "  --project-dir DIR     the dbt project (default: DBT_LOCAL_PATH, else .)\n"
    "  -s, --select SEL...   models to use (default: DBT_SELECTOR, else all): names, tag:,\n"
    "                        path: (or a path), package:, source:, config.materialized:,\n"
    "                        selector:, +model, model+\n"
    "  --selector NAME       the selection named NAME in selectors.yml\n"
    "  --exclude SEL...      models to leave out\n"
    "  --full-refresh        rebuild incremental models from scratch\n"
    "  --vars YAML           override project vars, e.g. '{batch_size: 1000}'\n"
    "  --threads N           connections to use, 1 to 64 (default: DBT_THREAD_COUNT)\n"
    "  --target-path DIR     where each model's SQL is written: compiled/ and, for run,\n"
    "                        run/ (default: PROJECT/target)\n"
    "  --watch SECONDS       run: repeat every SECONDS until SIGINT/SIGTERM\n"
    "  -h, --help            this help\n\n"
    "PostgreSQL settings come from the environment or their flags (cht-sync --help).\n"
    "Exit status: 0 all good, 1 a model or test failed, 2 the project or the command\n"
    "line is wrong (nothing was run).\n";

void pipeline_usage(FILE *out, const char *command)
{
    for (size_t i = 0; command && i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(command, commands[i].name) == 0 ||
            (strcmp(command, "list") == 0 && strcmp(commands[i].name, "ls") == 0)) {
            fprintf(out, "Usage: cht-sync pipeline %s [--project-dir DIR] %s\n\n%s.\n\n%s",
                    commands[i].name, commands[i].args, commands[i].help, options_help);
            return;
        }
    }
    fprintf(out, "Usage: cht-sync pipeline COMMAND [--project-dir DIR] [OPTIONS]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\n%s", options_help);
}

static void usage(FILE *out)
{
    pipeline_usage(out, NULL);
}

/* appends args until the next option to *out (space-separated) */
static int take_words(int argc, char **argv, int i, char **out)
{
    size_t len = *out ? strlen(*out) : 0;
    while (i < argc && argv[i][0] != '-') {
        size_t n = strlen(argv[i]);
        char *s = xrealloc(*out, len + n + 2);
        if (len)
            s[len++] = ' ';
        memcpy(s + len, argv[i], n + 1);
        len += n;
        *out = s;
        i++;
    }
    return i;
}

int pipeline_main(const cs_config *cfg, int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;
    const char *dir = cfg->dbt_local_path && *cfg->dbt_local_path ? cfg->dbt_local_path : ".";
    const char *vars = NULL, *target = NULL;
    char *select = NULL, *exclude = NULL, tbuf[4096];
    bool full_refresh = false;
    double watch = 0;
    int threads = cfg->dbt_thread_count, rc = 0;
    cs_config local = *cfg;
    pipeline_session *s = NULL;
    runner_summary sum;
    cs_error err;

    if (!cmd || strcmp(cmd, "help") == 0) {
        pipeline_usage(cmd ? stdout : stderr, argc > 2 ? argv[2] : NULL);
        return cmd ? 0 : 2;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            pipeline_usage(stdout, i > 1 ? cmd : NULL);
            return 0;
        }
    }
    if (strcmp(cmd, "deps") == 0) /* no database, no parse: its own options */
        return deps_main(dir, argc, argv, environ);
    for (int i = 2; i < argc;) {
        const char *a = argv[i];
        if ((strcmp(a, "--select") == 0 || strcmp(a, "-s") == 0 || strcmp(a, "-m") == 0 ||
             strcmp(a, "--models") == 0)) {
            i = take_words(argc, argv, i + 1, &select);
        } else if (i + 1 < argc && strcmp(a, "--selector") == 0) {
            /* dbt: a named selector from selectors.yml, instead of --select */
            size_t n = strlen(argv[i + 1]) + 10;
            free(select);
            select = xrealloc(NULL, n);
            snprintf(select, n, "selector:%s", argv[i + 1]);
            i += 2;
        } else if (strcmp(a, "--exclude") == 0) {
            i = take_words(argc, argv, i + 1, &exclude);
        } else if (strcmp(a, "--full-refresh") == 0) {
            full_refresh = true;
            i++;
        } else if (i + 1 < argc && strcmp(a, "--project-dir") == 0) {
            dir = argv[i + 1];
            i += 2;
        } else if (i + 1 < argc && strcmp(a, "--vars") == 0) {
            vars = argv[i + 1];
            i += 2;
        } else if (i + 1 < argc && strcmp(a, "--target-path") == 0) {
            target = argv[i + 1];
            i += 2;
        } else if (i + 1 < argc && strcmp(a, "--threads") == 0) {
            threads = atoi(argv[i + 1]);
            i += 2;
        } else if (i + 1 < argc && strcmp(a, "--watch") == 0) {
            watch = atof(argv[i + 1]);
            i += 2;
        } else {
            fprintf(stderr, "cht-sync pipeline: unknown or incomplete option \"%s\"\n", a);
            usage(stderr);
            rc = 2;
            goto out;
        }
    }
    if (threads < 1 || threads > 64) {
        fprintf(stderr, "cht-sync pipeline: --threads must be 1 to 64\n");
        rc = 2;
        goto out;
    }
    if (!select && cfg->dbt_selector && *cfg->dbt_selector)
        select = xstrdup(cfg->dbt_selector);
    local.dbt_thread_count = threads;
    if (strcmp(cmd, "run") != 0 && strcmp(cmd, "compile") != 0 && strcmp(cmd, "test") != 0 &&
        strcmp(cmd, "ls") != 0 && strcmp(cmd, "list") != 0 && strcmp(cmd, "seed") != 0 &&
        strcmp(cmd, "build") != 0) {
        fprintf(stderr, "cht-sync pipeline: unknown command \"%s\"\n", cmd);
        usage(stderr);
        rc = 2;
        goto out;
    }
    /* --watch stops at SIGINT/SIGTERM after the models in flight, not
     * after the whole run (a run can take minutes) */
    pipeline_session_opts sopts = {.stop = watch > 0 ? &stop_requested : NULL};
    if (watch > 0)
        signals_install(&stop_requested, NULL);
    if (pipeline_session_open_with(&local, dir, environ, vars, &sopts, &s, &err) != CS_OK) {
        fprintf(stderr, "cht-sync pipeline: %s\n", err.msg);
        rc = 2;
        goto out;
    }
    if (strcmp(cmd, "ls") == 0 || strcmp(cmd, "list") == 0) {
        bool *sel = xcalloc(s->m->p->nmodels + 1, sizeof(bool));
        if (select_models(s->m->p, s->m->g, select, exclude, sel, &err) == CS_OK) {
            warn_if_empty(s->m->p, sel, select);
        } else {
            fprintf(stderr, "cht-sync pipeline: %s\n", err.msg);
            rc = 2;
        }
        for (size_t k = 0; rc == 0 && k < s->m->p->nmodels; k++) {
            size_t i = s->m->order[k];
            if (sel[i])
                printf("%s.%s (%s)\n", s->m->p->packages[s->m->p->models[i].package].name,
                       s->m->p->models[i].name, dbt_node_mat_name(&s->m->nodes[i]));
        }
        free(sel);
        goto out;
    }
    if (strcmp(cmd, "seed") == 0 || strcmp(cmd, "build") == 0) {
        rc = seed_and_build(s, &local, cmd[0] == 'b', select, exclude, full_refresh, dir, target);
        goto out;
    }
    if (!target) {
        snprintf(tbuf, sizeof(tbuf), "%s/target", dir);
        target = tbuf;
    }
    if (strcmp(cmd, "compile") == 0 || strcmp(cmd, "test") == 0) {
        if (run_mode(s, cmd[0] == 'c' ? RUNNER_COMPILE : RUNNER_TEST, select, exclude, full_refresh,
                     target, &sum, &err) != CS_OK) {
            fprintf(stderr, "cht-sync pipeline: %s\n", err.msg);
            rc = 2;
        } else {
            rc = sum.errors ? 1 : 0;
        }
        goto out;
    }
    pipeline_session_set_target(s, target);
    http_server *http = NULL;
    if (watch > 0)
        http = http_start(cfg); /* a long-running runner publishes its models' metrics */
    do {
        if (pipeline_session_run(s, select, exclude, full_refresh, &sum, &err) != CS_OK) {
            fprintf(stderr, "cht-sync pipeline: %s\n", err.msg);
            rc = err.code == CS_TRANSIENT || watch > 0 ? 1 : 2;
        } else {
            rc = sum.errors ? 1 : 0;
        }
        full_refresh = false;
        if (watch > 0)
            signals_sleep_ms(&stop_requested, (long)(watch * 1000));
    } while (watch > 0 && !stop_requested);
    http_stop(http);
out:
    pipeline_session_close(s);
    free(select);
    free(exclude);
    return rc;
}
