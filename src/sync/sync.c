/*
 * sync.c - see sync.h.
 *
 * Signals only raise stop_requested; every loop below looks at it.  The
 * exit status is 0 when every database caught up (--once) or the process
 * was asked to stop, 1 when a database failed permanently, 2 for bad usage.
 */
#include "sync/sync.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "feed/couch.h"
#include "common/backoff.h"
#include "common/log.h"
#include "common/signals.h"
#include "common/stats.h"
#include "http/http.h"
#include "store/store.h"
#include "sync/progress.h"
#include "sync/worker.h"

static volatile sig_atomic_t stop_requested;

bool sync_setup(const cs_config *cfg, volatile sig_atomic_t *stop)
{
    cs_error err;
    int attempt = 0;
    bool warned = false;

    for (;;) {
        cs_result rc = store_setup(cfg, stop, &err);
        if (rc == CS_OK)
            return true;
        if (rc != CS_TRANSIENT || *stop) {
            log_error(NULL, "%s", err.msg);
            return false;
        }
        if (!warned)
            log_warn(NULL, "%s (retrying)", err.msg);
        warned = true;
        signals_sleep_ms(stop, backoff_ms(attempt++));
    }
}

int sync_main(const cs_config *cfg, int argc, char **argv)
{
    sync_options o = {.stop = &stop_requested};

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--once") == 0) {
            o.once = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("Usage: cht-sync sync [--once] [SETTINGS]\n\n"
                   "Follows every database of COUCHDB_DBS into the raw table. With --once,\n"
                   "stops when every database has caught up (exit 0) or failed (exit 1).\n\n");
            config_print_help(stdout);
            return 0;
        } else {
            fprintf(stderr, "cht-sync sync: unknown option \"%s\"\n", argv[i]);
            fprintf(stderr, "Usage: cht-sync sync [--once] (settings: cht-sync --help)\n");
            return 2;
        }
    }
    if (cfg->ndbs == 0) {
        fprintf(stderr, "cht-sync sync: COUCHDB_DBS names no database\n");
        return 2;
    }
    signals_install(&stop_requested, NULL);
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    return sync_run(cfg, &o);
}

int sync_run(const cs_config *cfg, const sync_options *o)
{
    worker *workers[CONFIG_MAX_DBS];
    int nworkers = 0;
    bool ok = true;
    http_server *http;
    progress *prog;

    if (!couch_global_init()) {
        log_error(NULL, "could not initialise libcurl");
        return 1;
    }
    for (int i = 0; i < cfg->ndbs; i++)
        stats_db_register(cfg->dbs[i], cfg->couchdb_host);
    http = http_start(cfg); /* /readyz says "not ready" until the first batch */
    if (!sync_setup(cfg, o->stop)) {
        http_stop(http);
        couch_global_cleanup();
        return *o->stop ? 0 : 1;
    }
    log_info(NULL, "syncing %d database%s%s", cfg->ndbs, cfg->ndbs == 1 ? "" : "s",
             o->once ? " until caught up" : "");
    prog = progress_start(isatty(STDERR_FILENO));
    for (int i = 0; i < cfg->ndbs; i++) {
        worker *w = worker_start(cfg, cfg->dbs[i], o->once, o->stop, o->hooks);
        if (w)
            workers[nworkers++] = w;
        else
            ok = false;
    }
    for (int i = 0; i < nworkers; i++)
        ok = worker_join(workers[i]) && ok;
    progress_stop(prog);
    http_stop(http);
    couch_global_cleanup();
    if (*o->stop)
        log_info(NULL, "stopped");
    return ok ? 0 : 1;
}
