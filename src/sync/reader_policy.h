/*
 * reader_policy.h - what the reader of one database does next, as data.
 *
 * The reader loop (worker.c) only performs I/O: it asks this policy which
 * step comes next (look at the database, or read changes from `since` with
 * this limit and this wait), performs it, and reports the outcome back
 * through one of the transition functions.  The policy holds the six pieces
 * of state that decide retries, resyncs and the request size; it performs
 * no I/O, takes no locks and reads no clock, so the unit tests
 * (tests/unit/test_reader_policy.c) drive it through outages, a vanished and
 * re-created database and shrinking and growing batches without a server.
 */
#ifndef CS_READER_POLICY_H
#define CS_READER_POLICY_H

#include <stdbool.h>
#include <stddef.h>

/* how often a database that failed permanently is looked at again */
#define RP_RECHECK_FAILED_MS 30000
/* changes asked for per request, in batches: one request is cut into
 * batches as its rows arrive, so a larger page only saves round trips
 * (and the server's fixed cost per request); the worker's pool holds a
 * page and two batches more, so the next request goes out while the
 * writer still stores the last page */
#define RP_PAGE_BATCHES 5

typedef enum {
    RP_INSPECT, /* GET /db: does it exist, was it re-created? */
    RP_FETCH,   /* GET /db/_changes from since */
} rp_step;

typedef struct {
    char *since;      /* owned: where the next request starts */
    int limit;        /* changes per request: RP_PAGE_BATCHES batches */
    int batch_size;   /* changes per batch */
    size_t max_bytes; /* document bytes per batch */
    int attempts;     /* transient failures in a row (back-off) */
    bool inspected;   /* the database was looked at since the last doubt */
    bool restart;     /* the next batch is the first of a resync from 0 */
    bool caught_up;   /* the last answer reached the end: wait (longpoll) */
    bool vanished;    /* the database answered 404 after we followed it */
} reader_policy;

/* Why the policy starts reading again from 0 (rp_inspected). */
typedef enum {
    RP_RESYNC_NONE,
    RP_RESYNC_BEHIND, /* update_seq is behind the checkpoint */
    RP_RESYNC_BACK,   /* the database is back after it vanished */
} rp_resync;

/* What a response brought (rp_fetched). */
typedef struct {
    bool idle;            /* a longpoll ended with nothing changed */
    size_t rows;          /* rows in the response */
    bool has_pending;     /* the server said how many changes remain */
    long long pending;    /* valid with has_pending */
    const char *last_seq; /* the response's last_seq, NULL if none */
} rp_response;

/* What the policy made of it. */
typedef struct {
    bool caught_up; /* this batch reaches the end of the feed */
    bool restart;   /* this batch is the first of a resync */
    int new_limit;  /* non-zero: the limit shrank to this (worth a log line) */
} rp_outcome;

/* Starts at checkpoint (copied); false when out of memory. */
bool rp_init(reader_policy *p, const char *checkpoint, int batch_size, size_t max_bytes);
void rp_free(reader_policy *p);

rp_step rp_next(const reader_policy *p);
/* the longpoll wait of the next request: 0 (normal feed) until caught up */
int rp_wait_ms(const reader_policy *p, int longpoll_ms);

/* The database answered its info with update_seq (text; NULL if none;
 * is_number: sent as a JSON number).  It was re-created when an integer
 * update_seq is behind our integer checkpoint (opaque CouchDB 2+ sequences
 * are never compared), or when it is back after a 404.  Returns why the
 * reading starts again from 0, if it does (since becomes "0");
 * RP_RESYNC_NONE with *oom set when out of memory. */
rp_resync rp_inspected(reader_policy *p, const char *update_seq, bool is_number, bool *oom);

/* A transient failure: the wait before the next attempt, jittered by rnd
 * (any random number) within [cap/2, cap] of the attempt's cap. */
long rp_transient(reader_policy *p, unsigned long rnd);

/* A permanent failure with HTTP status http_status (0: none): the
 * database is looked at again after RP_RECHECK_FAILED_MS. */
void rp_permanent(reader_policy *p, long http_status);

/* A batch of nrows changes holding bytes of documents is full: cut it
 * there and go on with the response in a new one. */
bool rp_cut_due(const reader_policy *p, size_t nrows, size_t bytes);

/*
 * A batch was cut in the middle of a response; seq is the seq of its last
 * row that carried one (NULL: none did, as CouchDB 3 sends null between
 * seq_interval rows).  Only such a seq ever becomes the batch's checkpoint:
 * every change up to it is in this batch or an earlier one, so resuming
 * there reads nothing twice that matters and skips nothing.  since moves
 * there, so that a response that breaks later is asked again from it.
 * Returns whether this batch is the first of a resync.
 */
bool rp_cut(reader_policy *p, const char *seq);

/* A response was read completely (or a longpoll ended idle).  since moves
 * to its last_seq (kept as it was if the copy runs out of memory: the
 * same changes are then read again, which is harmless). */
rp_outcome rp_fetched(reader_policy *p, const rp_response *r);

#endif
