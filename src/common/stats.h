/*
 * stats.h - the counters every stage publishes and the HTTP server, the
 * progress display and the status page only read.
 *
 * Writers (the sync's reader and writer threads, the model runner) make one
 * call at a clear point: a batch stored, a failure, a model finished.  Each
 * database has its own short mutex and the models share one; a reader takes
 * a copy (stats_snapshot) under those locks and formats it afterwards, so a
 * scrape never holds a worker for longer than a memcpy.  Nothing here does
 * I/O or queries PostgreSQL: the values are what this process did.
 *
 * Everything is in static storage with fixed bounds (CONFIG_MAX_DBS
 * databases, STATS_MAX_MODELS models): registering one more is refused with
 * a warning, never an allocation that grows.
 */
#ifndef CS_STATS_H
#define CS_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/result.h"

#define STATS_MAX_MODELS 512
#define STATS_NAME_MAX 128
#define STATS_SEQ_MAX 256
#define STATS_ERROR_MAX 512
/* per-second throughput kept for the status page's chart */
#define STATS_RING_SECONDS 600
/* upper bounds (seconds) of the batch duration histogram; +Inf is implied */
#define STATS_NBUCKETS 12
extern const double stats_buckets[STATS_NBUCKETS];

/* where a failure happened, for the errors and retries counters */
typedef enum { STATS_COUCHDB = 0, STATS_POSTGRES, STATS_NSIDES } stats_side;
/* a failure's class, as cs_result: transient, permanent, invalid */
#define STATS_NCLASSES 3

/* one stored batch, as the writer saw it */
typedef struct {
    long rows;         /* changes in the batch (stored or rejected) */
    long stored;       /* rows upserted */
    long rejected;     /* rows recorded in the rejects table */
    long bytes;        /* document bytes */
    double seconds;    /* the transaction's duration */
    const char *seq;   /* the committed checkpoint; NULL: unchanged (idle) */
    long long pending; /* CouchDB's pending after it; -1: not reported */
    bool caught_up;
} stats_batch;

typedef struct {
    char db[STATS_NAME_MAX];
    char instance[STATS_NAME_MAX]; /* the CouchDB host: the part of source before '/' */
    bool started;                  /* a checkpoint was read: seq is known */
    bool from_start;               /* that checkpoint was "0": the database is read whole */
    char seq[STATS_SEQ_MAX];
    long long pending;   /* -1: unknown */
    long long info_docs; /* doc_count + doc_del_count when last looked at, -1: unknown */
    bool caught_up;
    bool failing; /* the last attempt (either side) failed; cleared by a stored batch */
    bool failed_permanently;
    double failing_since; /* unix seconds */
    char last_error[STATS_ERROR_MAX];
    double last_error_at; /* unix seconds, 0: never */
    double last_batch_at; /* unix seconds of the last stored batch of any kind, 0: none */
    double last_docs_at;  /* unix seconds of the last batch that stored rows */
    double started_at;    /* unix seconds the worker started */
    uint64_t rows, docs, bytes, rejects, batches;
    uint64_t hist[STATS_NBUCKETS + 1]; /* cumulative counts are formed when printed */
    double hist_sum;
    uint64_t errors[STATS_NSIDES][STATS_NCLASSES];
    uint64_t retries[STATS_NSIDES];
    /* rows per second over the last STATS_RING_SECONDS: ring[t % N] holds
     * second ring_t[t % N] */
    uint32_t ring[STATS_RING_SECONDS];
    int64_t ring_t[STATS_RING_SECONDS];
} stats_db;

typedef struct {
    char name[STATS_NAME_MAX];
    bool ok;          /* the last run succeeded */
    double seconds;   /* its duration */
    long rows;        /* rows it affected */
    double end_at;    /* unix seconds it ended */
    double covers_at; /* unix seconds of the newest raw batch it had seen, 0: unknown */
    uint64_t runs_ok, runs_error;
} stats_model;

/* Registers database db of CouchDB host instance (from sync start, before
 * the workers).  false when the table is full or db is too long. */
bool stats_db_register(const char *db, const char *instance);

/* The writer read the committed checkpoint seq. */
void stats_db_resumed(const char *db, const char *seq);
/* The reader looked at the database: doc_count + doc_del_count. */
void stats_db_info(const char *db, long long docs);
/* A batch of any kind was committed. */
void stats_db_stored(const char *db, const stats_batch *b);
/* A failure on side; retried tells whether a retry follows. */
void stats_db_failed(const char *db, stats_side side, cs_result code, const char *msg,
                     bool retried);

/* A model finished (runner.c): ok or not, its duration and rows. */
void stats_model_done(const char *name, bool ok, double seconds, long rows);
/* When models run in this process: the newest raw batch time they can see */
double stats_raw_newest(void);

/*
 * A copy of everything, for one reader.  dbs and models point into out
 * (fixed arrays inside the snapshot, which is large: allocate it).
 */
typedef struct {
    double now;        /* unix seconds the snapshot was taken */
    double started_at; /* unix seconds the process started publishing */
    int ndbs;
    stats_db dbs[CONFIG_MAX_DBS];
    int nmodels;
    stats_model models[STATS_MAX_MODELS];
} stats_snapshot;

void stats_snapshot_take(stats_snapshot *out);

/* Rows per second of d over the last window seconds before now. */
double stats_db_rate(const stats_db *d, double now, int window);
/* Rows of d in second t (unix), 0 when that second is not kept. */
uint32_t stats_db_rows_at(const stats_db *d, int64_t t);

/* "23-g1AA…" -> 23, "42" -> 42; false when seq has no leading number */
bool stats_seq_number(const char *seq, unsigned long long *out);

/* Forgets everything (unit tests). */
void stats_reset(void);

#endif
