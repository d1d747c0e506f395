/*
 * drift.h - the PostgreSQL side of `cht-sync verify`: CouchDB's list of
 * documents is streamed into a temporary table (COPY, one transaction per
 * page) and compared there with the raw table's rows of one source, so
 * that neither side is ever held in this process's memory.
 *
 * It knows nothing of HTTP.  It only reads the raw, rejects and progress
 * tables; --repair writes through store.h, never from here.
 *
 * Kinds of drift, per document id (ids compared as bytes, COLLATE "C"):
 *   missing   CouchDB has it (live or deleted), the raw table has no row;
 *   extra     the raw table has a live row, CouchDB does not list the id;
 *   stale     both have it, deleted alike, with different revisions;
 *   deleted   deleted on one side and not on the other;
 *   rejected  a missing or stale document recorded in the rejects table
 *             at CouchDB's revision: known and reported, not drift.
 * A deleted row CouchDB no longer lists (purged) is not drift.
 */
#ifndef CS_DRIFT_H
#define CS_DRIFT_H

#include <stdbool.h>

#include "common/config.h"
#include "common/result.h"

typedef enum {
    DRIFT_MISSING,
    DRIFT_EXTRA,
    DRIFT_STALE,
    DRIFT_DELETED,
    DRIFT_REJECTED,
    DRIFT_KINDS
} drift_kind;

/* ids shown per kind, at most */
#define DRIFT_SAMPLE_MAX 20

typedef struct {
    char *id;
    char *couch_rev; /* NULL: CouchDB has no such document */
    char *table_rev; /* NULL: no row, or a row without _rev */
} drift_sample;

typedef struct {
    long long couch_docs, couch_deleted; /* listed by CouchDB */
    long long rows, rows_deleted;        /* of this source in the raw table */
    long long count[DRIFT_KINDS];
    int nsample[DRIFT_KINDS];
    drift_sample sample[DRIFT_KINDS][DRIFT_SAMPLE_MAX]; /* by id, bytewise */
} drift_report;

/* the documents that drift (not DRIFT_REJECTED), for --repair; stub is a
 * deleted-document stub for DRIFT_EXTRA rows, NULL otherwise.  Strings live
 * only during the call. */
typedef cs_result (*drift_item_fn)(void *ud, const char *id, drift_kind kind, const char *stub,
                                   cs_error *err);

typedef struct drift drift;

/* A comparison for source ("host/db"); not connected until drift_begin.
 * The strings are copied. */
drift *drift_new(const cs_config *cfg, const char *source);
void drift_free(drift *d);

/* (Re)connects and empties the temporary tables: a new comparison.  A
 * connection lost later loses the tables too: start again from here. */
cs_result drift_begin(drift *d, cs_error *err) CS_MUST_CHECK;

/* One page of CouchDB's listing: page_begin, put per document, page_end.
 * page_end with keep false (the page failed half-way) forgets the page. */
cs_result drift_page_begin(drift *d, cs_error *err) CS_MUST_CHECK;
cs_result drift_put(drift *d, const char *id, const char *rev, bool deleted,
                    cs_error *err) CS_MUST_CHECK;
cs_result drift_page_end(drift *d, bool keep, cs_error *err) CS_MUST_CHECK;

/* Compares the listed documents with the raw table: counts, and the first
 * sample ids (at most DRIFT_SAMPLE_MAX) of each kind.  r is the caller's;
 * drift_report_free releases its strings. */
cs_result drift_compare(drift *d, int sample, drift_report *r, cs_error *err) CS_MUST_CHECK;
void drift_report_free(drift_report *r);

/*
 * After drift_compare: the next at most limit drifting documents with an id
 * after *after (NULL: from the first), in id order, to fn.  *after is then
 * replaced by a malloc'd copy of the last id handed out (the caller frees
 * it); *n is the number handed out, 0 at the end.
 */
cs_result drift_next(drift *d, char **after, int limit, drift_item_fn fn, void *ud, int *n,
                     cs_error *err) CS_MUST_CHECK;

/* Drops the connection and its temporary tables. */
void drift_disconnect(drift *d);

#endif
