/*
 * runner.h - runs a parsed project's models against PostgreSQL: in
 * dependency order, on up to DBT_THREAD_COUNT connections, each model in
 * one transaction (hooks included), a failing model skipping its
 * dependants; records dbt_results and model fingerprints; prints a line per
 * model the way dbt does.  Also compiles (writes each model's SQL under
 * target/) and runs data tests.
 *
 * Connections live in a runner_pool that outlasts one run, so that a
 * long-running session pays for connecting once.
 */
#ifndef CS_RUNNER_H
#define CS_RUNNER_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "common/config.h"
#include "pipeline/dbt_ctx.h"
#include "common/result.h"

typedef struct runner_pool runner_pool;

/* a pool of up to n connections made from cfg (borrowed, must outlive it) */
runner_pool *runner_pool_new(const cs_config *cfg, int n);
void runner_pool_free(runner_pool *pool);

/* RUNNER_SEED loads the selected seeds (selected_seeds) into tables */
typedef enum { RUNNER_BUILD, RUNNER_COMPILE, RUNNER_TEST, RUNNER_SEED } runner_mode;

/* build's tests: run right after their model (RUNNER_BUILD), the rest
 * after every model (RUNNER_TEST); one numbering for both */
typedef struct {
    int *status; /* per test: 0 not run yet, else its status + 1 (runner.c's TEST_*) */
    int index, total;
} runner_tests;

typedef struct {
    runner_mode mode;
    const bool *selected; /* per model */
    bool full_refresh;
    int threads;
    const char *target_dir;      /* compile: output folder */
    FILE *out;                   /* progress lines */
    volatile sig_atomic_t *stop; /* once raised, no further model starts (NULL: never) */
    /*
     * `build`'s steps share these, so that only what depends on a failure
     * is skipped: per seed, selected_seeds says which load (RUNNER_SEED)
     * and which count as selected for their tests (RUNNER_TEST);
     * failed_seeds is written by RUNNER_SEED and read by RUNNER_BUILD (a
     * model that refs a failed seed is skipped, and its dependants) and
     * RUNNER_TEST; failed_models (per model: error or skipped) is written
     * by RUNNER_BUILD and read by RUNNER_TEST (a test that reads one is
     * skipped).  Each may be NULL.
     */
    const bool *selected_seeds;
    bool *failed_seeds;
    bool *failed_models;
    /* build: a model's tests run right after it (dbt build), and a failing
     * one skips the model's dependants; NULL: tests only in RUNNER_TEST */
    runner_tests *tests;
} runner_opts;

typedef struct {
    int ok, errors, skipped, warnings; /* tests: errors counts failed tests and errors */
    double seconds;
    long rows; /* rows affected, all models */
    /* the most rows one incremental model that reads no other model took:
     * a catch-up batch (var batch_size) this full means more may follow */
    long source_rows;
} runner_summary;

/*
 * Runs the selected models (or their tests).  Returns CS_OK when the run
 * happened, even if some models failed (see sum); an error only for what
 * stopped the whole run (no connection, the bookkeeping tables).
 */
cs_result runner_run(const dbt_manifest *m, runner_pool *pool, const runner_opts *o,
                     runner_summary *sum, cs_error *err) CS_MUST_CHECK;

#endif
