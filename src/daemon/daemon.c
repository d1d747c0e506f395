/*
 * daemon.c - see daemon.h.
 *
 * Threads: the sync (sync_run, its own reader and writer threads per
 * database) runs on a thread of its own; the model loop runs on the main
 * thread.  They meet at one non-blocking pipe: a writer's on_commit hook
 * writes a byte after each commit, and so does the signal handler.  The
 * model loop sleeps in poll() on that pipe (and, with --models-only, on the
 * LISTEN connection's socket), so it wakes at once after a commit and costs
 * nothing while idle.  It drains the pipe before each run and never while a
 * run is going: every commit during a run leaves a byte that makes exactly
 * one more run, which is how bursts coalesce.  While the sync commits only
 * full batches (a backfill), a pause follows each run (daemon/pace.h).
 *
 * Stopping: SIGTERM/SIGINT raise stop_requested.  The sync's writers finish
 * the batch they are storing; the runner starts no further model, so the
 * models in flight finish in their own transactions; then the process
 * exits 0.
 */
#include "daemon/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/backoff.h"
#include "common/log.h"
#include "common/monotime.h"
#include "common/signals.h"
#include "common/xalloc.h"
#include "daemon/listen.h"
#include "daemon/origin.h"
#include "daemon/pace.h"
#include "pipeline/pipeline.h"
#include "sync/sync.h"

extern char **environ;

static volatile sig_atomic_t stop_requested;
/* [0] read by the model loop, [1] written by commits and signals */
static int wake_fds[2] = {-1, -1};

static void wake(void)
{
    int saved = errno;
    /* a full pipe already means "wake up": EAGAIN loses nothing */
    if (wake_fds[1] >= 0 && write(wake_fds[1], "w", 1) < 0) {
    }
    errno = saved;
}

/* ---- the sync, on its own thread ---- */

typedef struct {
    const cs_config *cfg;
    sync_hooks hooks;
    sync_options opts;
    pthread_t thread;
    int status;
    atomic_bool done;
} sync_thread;

/* the sync's commits since the model loop last took them (at the start and
 * the end of each run): of full batches (BATCH_SIZE rows: the sync is
 * behind its feed) and of smaller ones */
static atomic_uint full_commits, partial_commits;

/* ud: the sync's cs_config (its BATCH_SIZE) */
static void on_commit(void *ud, const char *db, size_t rows)
{
    const cs_config *cfg = ud;

    (void)db;
    atomic_fetch_add(rows >= (size_t)cfg->batch_size ? &full_commits : &partial_commits, 1);
    wake();
}

static void *sync_thread_main(void *arg)
{
    sync_thread *t = arg;

    t->status = sync_run(t->cfg, &t->opts);
    atomic_store(&t->done, true);
    wake();
    return NULL;
}

/* ---- the model loop ---- */

typedef struct {
    const cs_config *cfg;
    pipeline_session *session;
    listener *listen;  /* --models-only */
    sync_thread *sync; /* NULL with --models-only */
    bool once;
    const char *select;
    int attempts; /* failed runs in a row */
    char last_error[CS_ERROR_MAX];
    int last_errors; /* models that failed in the last run */
    unsigned long runs;
    bool pacing; /* pausing between runs (pace.h) until a smaller batch commits */
} model_loop;

/*
 * One run of the selected models.  *more is set when the catch-up batch of
 * a model reading the raw table was full (DBT_BATCH_SIZE rows or more):
 * another run follows at once.  CS_TRANSIENT: PostgreSQL is unreachable;
 * other errors (a project that changed and no longer loads) are logged
 * when they change.
 */
static cs_result run_once(model_loop *ml, bool *more)
{
    runner_summary sum;
    cs_error err;
    double t0 = monotime_ms();
    cs_result rc = pipeline_session_run(ml->session, ml->select, NULL, false, &sum, &err);

    *more = false;
    ml->runs++;
    if (rc != CS_OK) {
        if (ml->attempts == 0 || strcmp(ml->last_error, err.msg) != 0)
            log_error("models", "%s%s", err.msg, rc == CS_TRANSIENT ? " (retrying)" : "");
        snprintf(ml->last_error, sizeof(ml->last_error), "%s", err.msg);
        ml->attempts++;
        return rc;
    }
    if (ml->attempts > 0)
        log_info("models", "running again after %d failed attempts", ml->attempts);
    ml->attempts = 0;
    ml->last_error[0] = '\0';
    ml->last_errors = sum.errors;
    *more = ml->cfg->dbt_batch_size > 0 && sum.source_rows >= ml->cfg->dbt_batch_size;
    log_msg(sum.errors ? LOG_WARN : LOG_INFO, "models",
            "ran %d model%s in %.0f ms: %ld rows, %d error%s, %d skipped%s", sum.ok + sum.errors,
            sum.ok + sum.errors == 1 ? "" : "s", monotime_ms() - t0, sum.rows, sum.errors,
            sum.errors == 1 ? "" : "s", sum.skipped,
            *more ? "; catching up (a batch of DBT_BATCH_SIZE was full): running again" : "");
    return CS_OK;
}

/* empties the wake-up pipe; true when something was in it */
static bool drain_wake(void)
{
    char chunk[256];
    bool any = false;

    while (read(wake_fds[0], chunk, sizeof(chunk)) > 0)
        any = true;
    return any;
}

/*
 * Waits up to timeout_ms (-1: no bound) for a commit, a notification or a
 * signal.  *pending is set when the models should run.
 */
static void wait_for_work(model_loop *ml, long timeout_ms, bool *pending)
{
    struct pollfd fds[2] = {{.fd = wake_fds[0], .events = POLLIN}, {.fd = -1}};
    int nfds = 1, n;

    if (ml->listen && listener_fd(ml->listen) >= 0) {
        fds[1].fd = listener_fd(ml->listen);
        fds[1].events = POLLIN;
        nfds = 2;
    }
    n = poll(fds, (nfds_t)nfds, timeout_ms > INT_MAX ? INT_MAX : (int)timeout_ms);
    if (n == 0) {
        *pending = true; /* DATAEMON_INTERVAL: the fallback bound */
        return;
    }
    if (n < 0)
        return; /* EINTR: the signal's byte is in the pipe */
    if ((fds[0].revents & POLLIN) && drain_wake())
        *pending = true;
    if (nfds == 2 && fds[1].revents) {
        bool ours = false;
        cs_error err;
        if (listener_drain(ml->listen, &ours, &err) != CS_OK)
            log_warn("models", "%s: listening again", err.msg);
        else if (ours)
            *pending = true;
    }
}

/*
 * After a run that took run_ms: when the sync committed during the run and
 * every one of those commits was a full batch, waits as pace.h says, until
 * the pause is over, a smaller batch commits (someone waits for its rows),
 * the sync ends or a signal comes.  partial_before: the smaller batches
 * that woke this run (they end the pacing too).  True when it paused: the
 * commits during the run are work for the next run, which follows at once.
 * The commits during the pause are left for the next run's start.
 */
static bool pace(model_loop *ml, double run_ms, unsigned partial_before)
{
    unsigned full = atomic_exchange(&full_commits, 0),
             partial = atomic_exchange(&partial_commits, 0);
    long ms = ml->sync ? pace_after_run(run_ms, full, partial + partial_before) : 0;
    double deadline = monotime_ms() + (double)ms;

    partial += partial_before;
    if (ms == 0) {
        if (ml->pacing && partial > 0)
            log_info("models", "the sync has caught up: running after each commit again");
        ml->pacing = ml->pacing && partial == 0;
        return false;
    }
    if (!ml->pacing)
        log_info("models",
                 "the sync is catching up (full batches): pausing for %d x each run's "
                 "duration between runs",
                 PACE_FACTOR);
    ml->pacing = true;
    log_debug("models", "%u full batches committed since the last run: next run in %ld ms", full,
              ms);
    /* a partial commit meanwhile ends the pause and is seen at the next look */
    while (!stop_requested && atomic_load(&partial_commits) == 0 && !atomic_load(&ml->sync->done)) {
        double left = deadline - monotime_ms();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = wake_fds[0], .events = POLLIN};
        if (poll(&p, 1, (int)left + 1) > 0)
            drain_wake();
    }
    return true;
}

static int loop_models(model_loop *ml)
{
    bool pending = true, final_run = false;
    int listen_attempts = 0;

    while (!stop_requested) {
        long timeout = ml->cfg->dataemon_interval > 0 ? ml->cfg->dataemon_interval * 1000L : -1;

        /* a models-only runner: (re)connect, then run, since commits may
         * have gone unheard while not listening */
        if (ml->listen && listener_fd(ml->listen) < 0) {
            cs_error err;
            if (listener_connect(ml->listen, &err) == CS_OK) {
                if (listen_attempts > 0)
                    log_info("models", "listening again after %d failed attempts", listen_attempts);
                else
                    log_info("models", "listening for commits on channel cht_sync");
                listen_attempts = 0;
                pending = true;
            } else {
                if (listen_attempts == 0)
                    log_warn("models", "could not listen for commits: %s (retrying)", err.msg);
                timeout = backoff_ms(listen_attempts++);
            }
        }
        if (pending) {
            bool more = false;
            drain_wake();
            pending = false;
            /* what this run will take; pace looks at what commits during it */
            atomic_store(&full_commits, 0);
            unsigned partial_before = atomic_exchange(&partial_commits, 0);
            double t0 = monotime_ms();
            cs_result rc = run_once(ml, &more);
            if (stop_requested)
                break;
            if (rc == CS_OK && pace(ml, monotime_ms() - t0, partial_before)) {
                pending = true;
                continue;
            }
            if (rc == CS_TRANSIENT || (rc != CS_OK && !ml->once)) {
                pending = true;
                timeout = backoff_ms(ml->attempts - 1);
            } else if (rc != CS_OK) {
                return 1; /* --once: a project that does not load */
            } else if (more) {
                pending = true;
                continue;
            }
        }
        if (ml->once && !pending && (!ml->sync || atomic_load(&ml->sync->done))) {
            /* the sync has caught up: one more run takes its last commits */
            if (!final_run && ml->sync) {
                final_run = true;
                pending = true;
                continue;
            }
            return ml->last_errors ? 1 : 0;
        }
        if (!pending || timeout >= 0)
            wait_for_work(ml, pending && timeout < 0 ? 0 : timeout, &pending);
    }
    return 0;
}

/* ---- the command ---- */

void daemon_usage(FILE *out)
{
    fprintf(out, "Usage: cht-sync run [--models-only] [--once] [SETTINGS]\n\n"
                 "Runs the sync and the model project in one process: after each commit the\n"
                 "models run incrementally (DBT_SELECTOR, DBT_THREAD_COUNT, DBT_BATCH_SIZE).\n"
                 "  --models-only  no sync: run the models after the commits of `cht-sync sync`\n"
                 "                 processes, heard through LISTEN cht_sync\n"
                 "  --once         sync until caught up (unless --models-only), run the models\n"
                 "                 until caught up, exit (0, or 1 when a model failed)\n"
                 "The project: DBT_LOCAL_PATH, else CHT_PIPELINE_BRANCH_URL, else the built-in\n"
                 "base models; CHT_PIPELINE_BASE says which base models the project gets as the\n"
                 "package cht_pipeline_base (docs/daemon.md).  SIGTERM: finish the batch and\n"
                 "the models in flight, exit 0.\n\n");
    config_print_help(out);
}

/*
 * The environment env_var() sees: the process's, with POSTGRES_SCHEMA and
 * POSTGRES_TABLE set to the effective settings (a default or a flag is
 * then what the models read too, as the sync writes there).  Returns a
 * NULL-terminated array the caller frees with free_env.
 */
static char **model_env(const cs_config *cfg)
{
    size_t n = 0, k = 0;
    char **env;

    while (environ[n])
        n++;
    env = xcalloc(n + 3, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "POSTGRES_SCHEMA=", 16) != 0 &&
            strncmp(environ[i], "POSTGRES_TABLE=", 15) != 0)
            env[k++] = xstrdup(environ[i]);
    if (asprintf(&env[k++], "POSTGRES_SCHEMA=%s", cfg->postgres_schema) < 0 ||
        asprintf(&env[k++], "POSTGRES_TABLE=%s", cfg->postgres_table) < 0)
        abort();
    return env;
}

static void free_env(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

/* the project, retried while a git fetch fails and nothing is checked out */
static cs_result resolve(const cs_config *cfg, origin *o)
{
    int attempt = 0;
    cs_error err;

    for (;;) {
        cs_result rc = origin_resolve(cfg, o, &err);
        if (rc == CS_OK)
            return CS_OK;
        origin_free(o);
        if (rc != CS_TRANSIENT || stop_requested) {
            log_error("models", "%s", err.msg);
            return rc == CS_OK ? CS_STOPPED : rc;
        }
        if (attempt == 0)
            log_warn("models", "%s (retrying)", err.msg);
        struct pollfd p = {.fd = wake_fds[0], .events = POLLIN};
        poll(&p, 1, (int)backoff_ms(attempt++));
    }
}

int daemon_main(const cs_config *cfg, int argc, char **argv)
{
    bool models_only = false, once = false, debug = strcmp(cfg->log_level, "debug") == 0;
    model_loop ml = {.cfg = cfg};
    sync_thread st = {.cfg = cfg};
    pipeline_session_opts popts = {.stop = &stop_requested};
    origin o = {0};
    char **env = NULL;
    cs_error err;
    int rc = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--models-only") == 0) {
            models_only = true;
        } else if (strcmp(argv[i], "--once") == 0) {
            once = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            daemon_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "cht-sync run: unknown option \"%s\"\n", argv[i]);
            fprintf(stderr, "Usage: cht-sync run [--models-only] [--once] (cht-sync run --help)\n");
            return 2;
        }
    }
    if (pipe2(wake_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        log_error(NULL, "could not create a pipe: %s", strerror(errno));
        return 1;
    }
    signals_install(&stop_requested, wake); /* a signal wakes the model loop too */
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    if (resolve(cfg, &o) != CS_OK) {
        rc = stop_requested ? 0 : 2;
        goto out;
    }
    popts.base_dir = o.base_dir;
    /* per-model lines only when debugging: a run follows every commit */
    popts.out = debug ? stdout : fopen("/dev/null", "w");
    env = model_env(cfg);
    if (pipeline_session_open_with(cfg, o.project_dir, env, NULL, &popts, &ml.session, &err) !=
        CS_OK) {
        log_error("models", "%s", err.msg);
        rc = 2;
        goto out;
    }
    bool other_base = o.base_dir && strcmp(o.base_dir, o.project_dir) != 0;
    log_info("models", "project from %s%s%s%s", o.what, other_base ? ", base models from \"" : "",
             other_base ? o.base_dir : "", other_base ? "\"" : "");
    ml.once = once;
    ml.select = cfg->dbt_selector && *cfg->dbt_selector ? cfg->dbt_selector : NULL;
    if (models_only) {
        ml.listen = listener_new(cfg);
    } else {
        if (!sync_setup(cfg, &stop_requested)) { /* before the first model run */
            rc = stop_requested ? 0 : 1;
            goto out;
        }
        st.hooks.on_commit = on_commit;
        st.hooks.ud = (void *)cfg;
        st.opts = (sync_options){.once = once, .stop = &stop_requested, .hooks = &st.hooks};
        if (pthread_create(&st.thread, NULL, sync_thread_main, &st) != 0) {
            log_error(NULL, "could not start the sync thread");
            rc = 1;
            goto out;
        }
        ml.sync = &st;
    }
    log_info("models", "running %s%s after each commit%s",
             ml.select ? "the models of " : "all models", ml.select ? ml.select : "",
             models_only ? " heard on channel cht_sync" : "");
    rc = loop_models(&ml);
    if (ml.sync) {
        if (!stop_requested && !atomic_load(&st.done))
            stop_requested = 1; /* the models gave up (--once): stop the sync too */
        pthread_join(st.thread, NULL);
        rc = rc ? rc : st.status;
    }
    if (stop_requested)
        log_info("models", "stopped after %lu run%s", ml.runs, ml.runs == 1 ? "" : "s");
out:
    pipeline_session_close(ml.session);
    listener_free(ml.listen);
    if (popts.out && popts.out != stdout)
        fclose(popts.out);
    origin_free(&o);
    free_env(env);
    close(wake_fds[0]);
    close(wake_fds[1]);
    wake_fds[0] = wake_fds[1] = -1;
    return rc;
}
