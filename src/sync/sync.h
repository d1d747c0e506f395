/*
 * sync.h - the `cht-sync sync` command: sets up the schema, runs one
 * worker per database in COUCHDB_DBS, and stops them all on SIGTERM/SIGINT.
 *
 * sync_run is the same sync for a caller that owns the process (signals,
 * argument parsing): `cht-sync run` runs it beside the model loop and learns
 * of each commit through sync_hooks.
 */
#ifndef CS_SYNC_H
#define CS_SYNC_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"

typedef struct {
    /*
     * Called by a database's writer thread right after a batch of changes
     * committed (never for an idle refresh or a rolled back batch), with the
     * database name and the rows of the batch.  Runs on the writer's thread
     * while the next batch waits: it must be quick and thread-safe.
     */
    void (*on_commit)(void *ud, const char *db, size_t rows);
    void *ud;
} sync_hooks;

typedef struct {
    bool once;                   /* end each database when it has caught up */
    volatile sig_atomic_t *stop; /* raised by the caller: finish the batch, end */
    const sync_hooks *hooks;     /* may be NULL; borrowed for the whole run */
} sync_options;

int sync_main(const cs_config *cfg, int argc, char **argv);

/*
 * The schema set-up (store_setup), retried with a doubling pause (250 ms
 * to 30 s) while PostgreSQL is unreachable; the first failure is logged
 * as a warning.  False, logged as an error, on a permanent failure or when
 * *stop was raised (seen within 50 ms).  sync_run starts with it; `cht-sync
 * run` calls it before its first model run as well.
 */
bool sync_setup(const cs_config *cfg, volatile sig_atomic_t *stop);

/*
 * Sets up the schema (retried while PostgreSQL is unreachable) and follows
 * every database until *o->stop (or, with once, until all caught up).
 * Returns the exit status sync_main documents: 0 or 1.
 */
int sync_run(const cs_config *cfg, const sync_options *o);

#endif
