/*
 * drift.c - see drift.h.
 *
 * Three temporary tables on the comparison's own connection:
 *   cs_verify_page   one page of the listing, COPYed in (ON COMMIT DELETE ROWS)
 *   cs_verify_couch  every listed document, (id, rev, deleted), keyed by id:
 *                    a document listed twice (it changed while we listed)
 *                    keeps its last listing
 *   cs_verify_drift  the result of the comparison, keyed by id, paged
 *                    through for --repair
 * Ids are text COLLATE "C": compared and ordered as bytes, whatever the
 * database's collation.  PostgreSQL spills the tables to disk as they grow;
 * this process only ever holds one COPY line and one page of results.
 */
#include "store/drift.h"
#include "store/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/pg.h"

#define LINE_MAX_BYTES ((size_t)1 << 20)

struct drift {
    const cs_config *cfg;
    char *source;
    char *raw;     /* "schema"."table" */
    char *rejects; /* "schema"."table_rejects" */
    PGconn *conn;
    long long ord; /* rows put in this page */
    buf line;      /* one COPY line */
};

drift *drift_new(const cs_config *cfg, const char *source)
{
    drift *d = calloc(1, sizeof(*d));

    if (!d)
        return NULL;
    d->cfg = cfg;
    d->source = strdup(source);
    d->raw = store_qualified(cfg->postgres_schema, cfg->postgres_table, "");
    d->rejects = store_qualified(cfg->postgres_schema, cfg->postgres_table, "_rejects");
    buf_init(&d->line, LINE_MAX_BYTES);
    if (!d->source || !d->raw || !d->rejects) {
        drift_free(d);
        return NULL;
    }
    return d;
}

void drift_disconnect(drift *d)
{
    if (d->conn)
        PQfinish(d->conn);
    d->conn = NULL;
}

void drift_free(drift *d)
{
    if (!d)
        return;
    drift_disconnect(d);
    free(d->source);
    free(d->raw);
    free(d->rejects);
    buf_free(&d->line);
    free(d);
}

cs_result drift_begin(drift *d, cs_error *err)
{
    cs_result rc;

    if (d->conn && PQstatus(d->conn) != CONNECTION_OK)
        drift_disconnect(d);
    if (!d->conn && !(d->conn = pg_connect(d->cfg, "cht-sync verify", err)))
        return err->code;
    rc = pg_exec(d->conn,
                 "DROP TABLE IF EXISTS pg_temp.cs_verify_page, pg_temp.cs_verify_couch, "
                 "pg_temp.cs_verify_drift; "
                 "CREATE TEMP TABLE cs_verify_page (ord bigint, _id text COLLATE \"C\", rev text, "
                 "deleted boolean) ON COMMIT DELETE ROWS; "
                 "CREATE TEMP TABLE cs_verify_couch (_id text COLLATE \"C\" PRIMARY KEY, rev text, "
                 "deleted boolean NOT NULL); "
                 "CREATE TEMP TABLE cs_verify_drift (_id text COLLATE \"C\" PRIMARY KEY, kind "
                 "smallint NOT NULL, couch_rev text, table_rev text)",
                 err);
    if (rc != CS_OK)
        cs_error_prefix(err, "could not create the comparison tables: ");
    return rc;
}

cs_result drift_page_begin(drift *d, cs_error *err)
{
    PGresult *res;
    cs_result rc;

    if (!d->conn)
        return cs_fail(err, CS_TRANSIENT, "not connected");
    if ((rc = pg_exec(d->conn, "BEGIN", err)) != CS_OK)
        return rc;
    res = PQexec(d->conn, "COPY pg_temp.cs_verify_page (ord, _id, rev, deleted) FROM STDIN");
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        rc = pg_fail(d->conn, res, "could not start COPY", err);
        PQclear(res);
        PQclear(PQexec(d->conn, "ROLLBACK"));
        return rc;
    }
    PQclear(res);
    d->ord = 0;
    return CS_OK;
}

cs_result drift_put(drift *d, const char *id, const char *rev, bool deleted, cs_error *err)
{
    buf_reset(&d->line);
    buf_printf(&d->line, "%lld\t", d->ord++);
    store_copy_escaped(&d->line, id, strlen(id));
    buf_putc(&d->line, '\t');
    if (rev)
        store_copy_escaped(&d->line, rev, strlen(rev));
    else
        buf_puts(&d->line, "\\N");
    buf_puts(&d->line, deleted ? "\tt\n" : "\tf\n");
    if (!buf_ok(&d->line))
        return cs_fail(err, CS_PERMANENT, "document id too long to compare (%.64s...)", id);
    if (PQputCopyData(d->conn, d->line.data, (int)d->line.len) != 1)
        return pg_fail(d->conn, NULL, "could not send COPY data", err);
    return CS_OK;
}

cs_result drift_page_end(drift *d, bool keep, cs_error *err)
{
    PGresult *res;
    cs_result rc = CS_OK;

    if (!d->conn)
        return cs_fail(err, CS_TRANSIENT, "not connected");
    if (PQputCopyEnd(d->conn, keep ? NULL : "page abandoned") != 1 && keep)
        rc = pg_fail(d->conn, NULL, "could not end COPY", err);
    while ((res = PQgetResult(d->conn))) {
        if (keep && rc == CS_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = pg_fail(d->conn, res, "COPY failed", err);
        PQclear(res);
    }
    if (keep && rc == CS_OK)
        rc = pg_exec(d->conn,
                     "INSERT INTO pg_temp.cs_verify_couch (_id, rev, deleted) SELECT DISTINCT ON "
                     "(_id) _id, rev, deleted FROM pg_temp.cs_verify_page ORDER BY _id, ord DESC "
                     "ON CONFLICT (_id) DO UPDATE SET rev = EXCLUDED.rev, deleted = "
                     "EXCLUDED.deleted; COMMIT",
                     err);
    if (!keep || rc != CS_OK)
        PQclear(PQexec(d->conn, "ROLLBACK"));
    return rc;
}

/* the two first values of a one-row query as numbers */
static cs_result two_counts(drift *d, const char *sql, int nparams, const char *const *params,
                            long long *a, long long *b, cs_error *err)
{
    PGresult *res = PQexecParams(d->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    cs_result rc = CS_OK;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        rc = pg_fail(d->conn, res, "could not count the documents", err);
    else {
        *a = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        *b = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    }
    PQclear(res);
    return rc;
}

static char *dup_or_null(const PGresult *res, int row, int col, bool *oom)
{
    char *s;

    if (PQgetisnull(res, row, col))
        return NULL;
    if (!(s = strdup(PQgetvalue(res, row, col))))
        *oom = true;
    return s;
}

/*
 * One pass over both sides, as a FULL JOIN on the id.  The CASE decides the
 * kind in this order: extra (CouchDB does not list it), rejected (the
 * rejects table holds CouchDB's revision), missing, deletion mismatch, and
 * otherwise a different revision.
 */
static cs_result classify(drift *d, cs_error *err)
{
    const char *params[1] = {d->source};
    char *sql = NULL;
    PGresult *res;
    cs_result rc = CS_OK;

    if (asprintf(&sql,
                 "INSERT INTO pg_temp.cs_verify_drift (_id, kind, couch_rev, table_rev) "
                 "SELECT COALESCE(c._id, t._id), CASE "
                 "WHEN c._id IS NULL THEN %d "
                 "WHEN EXISTS (SELECT 1 FROM %s r WHERE r.source = $1 AND r._id = (c._id COLLATE "
                 "\"default\") AND r.rev = c.rev) THEN %d "
                 "WHEN t._id IS NULL THEN %d "
                 "WHEN c.deleted <> t.deleted THEN %d ELSE %d END, c.rev, t.rev "
                 "FROM pg_temp.cs_verify_couch c FULL JOIN (SELECT _id COLLATE \"C\" AS _id, "
                 "_deleted IS TRUE AS deleted, doc->>'_rev' AS rev FROM %s WHERE source = $1) t "
                 "ON t._id = c._id "
                 "WHERE (c._id IS NULL AND NOT t.deleted) OR t._id IS NULL OR (c._id IS NOT NULL "
                 "AND (c.deleted <> t.deleted OR c.rev IS DISTINCT FROM t.rev))",
                 DRIFT_EXTRA, d->rejects, DRIFT_REJECTED, DRIFT_MISSING, DRIFT_DELETED, DRIFT_STALE,
                 d->raw) < 0)
        return cs_fail(err, CS_TRANSIENT, "out of memory");
    res = PQexecParams(d->conn, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = pg_fail(d->conn, res, "could not compare with the raw table", err);
    PQclear(res);
    free(sql);
    return rc;
}

cs_result drift_compare(drift *d, int sample, drift_report *r, cs_error *err)
{
    const char *params[2] = {d->source, NULL};
    char kind[16], limit[16];
    char *sql = NULL;
    PGresult *res = NULL;
    cs_result rc;
    bool oom = false;

    memset(r, 0, sizeof(*r));
    if (!d->conn)
        return cs_fail(err, CS_TRANSIENT, "not connected");
    if (sample > DRIFT_SAMPLE_MAX)
        sample = DRIFT_SAMPLE_MAX;
    if ((rc = pg_exec(d->conn, "TRUNCATE pg_temp.cs_verify_drift", err)) != CS_OK ||
        (rc = classify(d, err)) != CS_OK)
        return rc;
    if ((rc = two_counts(d,
                         "SELECT count(*), count(*) FILTER (WHERE deleted) FROM "
                         "pg_temp.cs_verify_couch",
                         0, NULL, &r->couch_docs, &r->couch_deleted, err)) != CS_OK)
        return rc;
    if (asprintf(&sql,
                 "SELECT count(*), count(*) FILTER (WHERE _deleted) FROM %s WHERE source = $1",
                 d->raw) < 0)
        return cs_fail(err, CS_TRANSIENT, "out of memory");
    rc = two_counts(d, sql, 1, params, &r->rows, &r->rows_deleted, err);
    free(sql);
    if (rc != CS_OK)
        return rc;

    /* per kind: the count, and the first ids along the primary key */
    snprintf(limit, sizeof(limit), "%d", sample);
    for (int k = 0; k < DRIFT_KINDS && rc == CS_OK && !oom; k++) {
        long long n = 0, unused;
        snprintf(kind, sizeof(kind), "%d", k);
        params[0] = kind;
        params[1] = limit;
        if ((rc = two_counts(d, "SELECT count(*), 0 FROM pg_temp.cs_verify_drift WHERE kind = $1",
                             1, params, &r->count[k], &unused, err)) != CS_OK)
            break;
        if (r->count[k] == 0 || sample <= 0)
            continue;
        res = PQexecParams(d->conn,
                           "SELECT _id, couch_rev, table_rev FROM pg_temp.cs_verify_drift WHERE "
                           "kind = $1 ORDER BY _id LIMIT $2",
                           2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            rc = pg_fail(d->conn, res, "could not read the drift", err);
        } else {
            n = PQntuples(res);
            for (int i = 0; i < n && i < DRIFT_SAMPLE_MAX; i++) {
                drift_sample *s = &r->sample[k][r->nsample[k]++];
                s->id = dup_or_null(res, i, 0, &oom);
                s->couch_rev = dup_or_null(res, i, 1, &oom);
                s->table_rev = dup_or_null(res, i, 2, &oom);
            }
        }
        PQclear(res);
    }
    if (rc == CS_OK && oom)
        rc = cs_fail(err, CS_TRANSIENT, "out of memory");
    return rc;
}

void drift_report_free(drift_report *r)
{
    for (int k = 0; k < DRIFT_KINDS; k++) {
        for (int i = 0; i < r->nsample[k]; i++) {
            free(r->sample[k][i].id);
            free(r->sample[k][i].couch_rev);
            free(r->sample[k][i].table_rev);
        }
        r->nsample[k] = 0;
    }
}

cs_result drift_next(drift *d, char **after, int limit, drift_item_fn fn, void *ud, int *n,
                     cs_error *err)
{
    char lim[16], rejected[16];
    const char *params[3] = {*after, lim, rejected};
    PGresult *res;
    cs_result rc = CS_OK;
    int rows;

    *n = 0;
    if (!d->conn)
        return cs_fail(err, CS_TRANSIENT, "not connected");
    snprintf(lim, sizeof(lim), "%d", limit);
    snprintf(rejected, sizeof(rejected), "%d", DRIFT_REJECTED);
    res = PQexecParams(d->conn,
                       "SELECT _id, kind, CASE WHEN couch_rev IS NULL THEN "
                       "jsonb_strip_nulls(jsonb_build_object('_id', _id, '_rev', table_rev, "
                       "'_deleted', true))::text END FROM pg_temp.cs_verify_drift WHERE "
                       "($1::text IS NULL OR _id > $1::text) AND kind <> $3::smallint "
                       "ORDER BY _id LIMIT $2::integer",
                       3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pg_fail(d->conn, res, "could not read the drift", err);
        PQclear(res);
        return rc;
    }
    rows = PQntuples(res);
    for (int i = 0; i < rows && rc == CS_OK; i++)
        rc = fn(ud, PQgetvalue(res, i, 0), (drift_kind)atoi(PQgetvalue(res, i, 1)),
                PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2), err);
    if (rc == CS_OK && rows > 0) {
        char *last = strdup(PQgetvalue(res, rows - 1, 0));
        if (!last) {
            rc = cs_fail(err, CS_TRANSIENT, "out of memory");
        } else {
            free(*after);
            *after = last;
            *n = rows;
        }
    }
    PQclear(res);
    return rc;
}
