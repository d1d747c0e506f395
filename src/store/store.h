/*
 * store.h - the PostgreSQL side of the sync: schema set-up, and for each
 * database a connection that writes whole batches.
 *
 * It knows nothing of HTTP: it receives batches (batch.h) and writes each
 * one in ONE transaction: the rows (COPY into a temporary staging table,
 * then one upsert), the documents PostgreSQL refused (into the rejects
 * table), and the checkpoint.  A crash at any instant leaves the database
 * before or after the whole batch.  Only a committed checkpoint is ever
 * read back to resume.
 */
#ifndef CS_STORE_H
#define CS_STORE_H

#include <signal.h>
#include <stdbool.h>

#include "feed/batch.h"
#include "common/config.h"
#include "common/result.h"

typedef struct store store;

typedef struct {
    size_t stored;         /* rows upserted */
    size_t rejected;       /* rows recorded in the rejects table */
    size_t marked_deleted; /* rows of a vanished incarnation marked deleted */
    bool direct;           /* COPYed straight into the raw table (no staging) */
    const char *seq;       /* the checkpoint written (a batch's string), NULL: unchanged */
} store_stats;

/*
 * Creates the schema, the raw, progress and rejects tables and the indexes
 * (indexes CONCURRENTLY, so writers are never blocked), all idempotent and
 * serialised between processes by an advisory lock.  Takes over a table of
 * today's CHT Sync: its primary key (_id) becomes (_id, source).
 */
cs_result store_setup(const cs_config *cfg, volatile sig_atomic_t *stop,
                      cs_error *err) CS_MUST_CHECK;

/*
 * A store for one source ("host/db"); not connected until store_open.
 * Every wait on PostgreSQL is bounded by POSTGRES_STATEMENT_TIMEOUT and
 * ends soon after *stop is raised (pg_limits in pg.h): a frozen server
 * never holds up a shutdown.
 */
store *store_new(const cs_config *cfg, const char *source, const char *log_scope,
                 volatile sig_atomic_t *stop);
void store_free(store *s);

/*
 * (Re)connects when needed, claims the source (one writer per source in
 * PostgreSQL: when another process writes it, wait says whether to wait
 * for it, logging who it is, or to fail with CS_PERMANENT) and reads the
 * committed checkpoint: *seq is a malloc'd copy ("0" when the source is
 * new) the caller frees; *vanished (when not NULL) says the database had
 * answered 404 after we followed it (a BATCH_FAILED with vanished set), so
 * that the reader reads it again from 0 when it is back, even after a
 * restart.
 */
cs_result store_open(store *s, bool wait, char **seq, bool *vanished, cs_error *err) CS_MUST_CHECK;

/* Writes one batch of any kind in one transaction (see batch.h). */
cs_result store_write(store *s, const batch *b, store_stats *stats, cs_error *err) CS_MUST_CHECK;

/*
 * Writes n consecutive BATCH_CHANGES batches of the feed in one
 * transaction, as one batch holding all their rows: one timestamp, the
 * checkpoint of the latest batch that has one.  Only the first may start a
 * resync and only the last may be caught up (the caller's rule, as
 * worker.c's take_group keeps it).  The writer groups batches already waiting when it falls
 * behind, so that a backlog pays the transaction's fixed cost once per
 * group (docs/sync.md).
 */
cs_result store_write_group(store *s, const batch *const *group, size_t n, store_stats *stats,
                            cs_error *err) CS_MUST_CHECK;

/*
 * Records msg as the source's error in the progress table (updated_at is
 * left alone, so monitoring sees the stall), outside any batch.  Best
 * effort: false when the connection cannot take it either.
 */
bool store_record_failure(store *s, const char *msg);

/* Drops the connection (after a connection-level failure). */
void store_disconnect(store *s);

#endif
