/*
 * worker.h - one database followed into PostgreSQL.
 *
 * A worker is two threads joined by a bounded queue of batches: the reader
 * follows CouchDB's _changes feed (couch + changes) and fills batches, the
 * writer stores each batch in one transaction (store).  The reader fetches
 * the next batches while the writer writes the current one.  A batch is cut
 * at BATCH_SIZE changes or BATCH_MAX_BYTES of documents as the response
 * streams in, and the reader starts a new batch only while the batches
 * waiting and being written hold less than twice BATCH_MAX_BYTES, so memory
 * is bounded by the settings, not by the database or document sizes.
 *
 * The reader resumes from the checkpoint the writer read from PostgreSQL and
 * then runs ahead in memory; only the writer's committed checkpoint is ever
 * used to resume after a restart.  Transient failures on either side are
 * retried with capped exponential back-off; a permanent one stops this
 * worker only (recorded in couchdb_progress.error), never the others.
 */
#ifndef CS_WORKER_H
#define CS_WORKER_H

#include <signal.h>
#include <stdbool.h>

#include "common/config.h"
#include "sync/sync.h"

#include "sync/reader_policy.h"

/* batches a worker owns: a page of a request and two more (reader_policy.h) */
#define WORKER_BATCHES (RP_PAGE_BATCHES + 2)

typedef struct worker worker;

/* Starts the threads of a worker for database db.  With once, the worker
 * ends when it has caught up.  stop is the process-wide stop flag; hooks
 * (may be NULL, borrowed until worker_join) hears of each commit. */
worker *worker_start(const cs_config *cfg, const char *db, bool once, volatile sig_atomic_t *stop,
                     const sync_hooks *hooks);

/* Waits for the worker to end and frees it.  Returns true when it ended
 * well (caught up, or stopped), false when it failed permanently. */
bool worker_join(worker *w);

#endif
