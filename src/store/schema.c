/*
 * schema.c - the store's schema set-up and migration (store_setup, see
 * store.h): the schema, the raw, progress and rejects tables and their
 * indexes, and the take-over of a table left by today's CHT Sync.  Runs once
 * per process start, serialised between processes by an advisory lock; the
 * per-batch write path is in store.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/pg.h"
#include "store/internal.h"
#include "store/store.h"

#define SETUP_LOCK_KEY 7305342021LL

char *store_qualified(const char *schema, const char *table, const char *suffix)
{
    buf b, name;

    buf_init(&name, 256);
    buf_printf(&name, "%s%s", table, suffix);
    buf_init(&b, 512);
    pg_quote_ident(&b, schema);
    buf_putc(&b, '.');
    pg_quote_ident(&b, name.data);
    buf_free(&name);
    if (!buf_ok(&b)) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b);
}

void store_rollback(PGconn *conn, const pg_limits *lim)
{
    PGTransactionStatusType st = PQtransactionStatus(conn);
    cs_error ignored;

    if (PQstatus(conn) == CONNECTION_OK && (st == PQTRANS_INTRANS || st == PQTRANS_INERROR) &&
        pg_run(conn, lim, "ROLLBACK", &ignored) != CS_OK)
        log_debug(NULL, "%s", ignored.msg);
}

cs_result store_exec(PGconn *conn, const pg_limits *lim, const char *what, cs_error *err,
                     const char *fmt, ...)
{
    char *sql = NULL;
    va_list ap;
    cs_result rc;

    va_start(ap, fmt);
    if (vasprintf(&sql, fmt, ap) < 0)
        sql = NULL;
    va_end(ap);
    if (!sql)
        return cs_fail(err, CS_TRANSIENT, "out of memory");
    rc = pg_run(conn, lim, sql, err);
    if (rc != CS_OK)
        cs_error_prefix(err, "%s: ", what);
    free(sql);
    return rc;
}

char *store_quote_ident(const char *name)
{
    buf b;

    buf_init(&b, 1024);
    if (!pg_quote_ident(&b, name)) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b);
}

/* first value of a one-row query with text parameters; NULL if no row */
static cs_result query_value(PGconn *conn, const pg_limits *lim, const char *sql, int nparams,
                             const char *const *params, char **out, cs_error *err)
{
    PGresult *res = NULL;
    cs_result rc = CS_OK;

    *out = NULL;
    if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
        return pg_fail(conn, NULL, "could not inspect the schema", err);
    if ((rc = pg_await(conn, lim, "could not inspect the schema", &res, err)) != CS_OK)
        return rc;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = pg_fail(conn, res, "could not inspect the schema", err);
    else if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) &&
             !(*out = strdup(PQgetvalue(res, 0, 0))))
        rc = cs_fail(err, CS_TRANSIENT, "out of memory");
    PQclear(res);
    return rc;
}

/* An index led by column on the raw table, unless a valid one exists (an
 * existing CHT Sync table keeps its own).  A leftover invalid index of ours
 * (a CONCURRENTLY build that was interrupted) is dropped and rebuilt. */
static cs_result ensure_index(PGconn *conn, const pg_limits *lim, const cs_config *cfg,
                              const char *raw, const char *column, cs_error *err)
{
    const char *params[2] = {raw, column};
    char *found = NULL, *qname = NULL, *qualified_name = NULL, *qcolumn = NULL;
    char name[128];
    cs_result rc;

    rc = query_value(conn, lim,
                     "SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_attribute a ON "
                     "a.attrelid = i.indrelid AND a.attnum = i.indkey[0] WHERE i.indisvalid AND "
                     "i.indrelid = $1::regclass AND a.attname = $2",
                     2, params, &found, err);
    if (rc != CS_OK || found)
        goto out;
    snprintf(name, sizeof(name), "%s_%s_idx", cfg->postgres_table,
             column[0] == '_' ? column + 1 : column);
    qname = store_quote_ident(name);
    qcolumn = store_quote_ident(column);
    qualified_name = store_qualified(cfg->postgres_schema, name, "");
    if (!qname || !qcolumn || !qualified_name) {
        rc = cs_fail(err, CS_TRANSIENT, "out of memory");
        goto out;
    }
    if ((rc = store_exec(conn, lim, "could not drop an unfinished index", err,
                         "DROP INDEX CONCURRENTLY IF EXISTS %s", qualified_name)) ||
        (rc = store_exec(conn, lim, "could not create an index", err,
                         "CREATE INDEX CONCURRENTLY %s ON %s (%s)", qname, raw, qcolumn)))
        goto out;
    log_info(NULL, "created index %s on %s (%s)", qname, raw, column);
out:
    free(found);
    free(qname);
    free(qcolumn);
    free(qualified_name);
    return rc;
}

/*
 * source NOT NULL without a scan under an exclusive lock: a CHECK added NOT
 * VALID (a short lock), validated under a lock that lets readers and
 * writers go on, then SET NOT NULL, which trusts the valid CHECK instead of
 * scanning (PostgreSQL 12+), and the CHECK dropped.  Nothing when the
 * column is NOT NULL already.
 */
static cs_result set_source_not_null(PGconn *conn, const pg_limits *lim, const char *raw,
                                     cs_error *err)
{
    char *notnull = NULL;
    cs_result rc;

    rc = query_value(conn, lim,
                     "SELECT attnotnull::text FROM pg_attribute WHERE attrelid = $1::regclass AND "
                     "attname = 'source'",
                     1, &raw, &notnull, err);
    if (rc == CS_OK && notnull && strcmp(notnull, "false") == 0 &&
        (rc = store_exec(conn, lim, "could not make source NOT NULL", err,
                         "ALTER TABLE %s DROP CONSTRAINT IF EXISTS cht_sync_source_not_null, ADD "
                         "CONSTRAINT cht_sync_source_not_null CHECK (source IS NOT NULL) NOT "
                         "VALID",
                         raw)) == CS_OK &&
        (rc = store_exec(conn, lim, "could not make source NOT NULL", err,
                         "ALTER TABLE %s VALIDATE CONSTRAINT cht_sync_source_not_null", raw)) ==
            CS_OK &&
        (rc = store_exec(conn, lim, "could not make source NOT NULL", err,
                         "ALTER TABLE %s ALTER COLUMN source SET NOT NULL", raw)) == CS_OK)
        rc = store_exec(conn, lim, "could not make source NOT NULL", err,
                        "ALTER TABLE %s DROP CONSTRAINT cht_sync_source_not_null", raw);
    free(notnull);
    return rc;
}

/* today's CHT Sync keys the raw table by _id alone: two databases with the
 * same id overwrite each other.  Move the key to (_id, source) without a
 * long lock: the unique index is built concurrently first, then swapped in
 * as the primary key in one short transaction. */
static cs_result migrate_primary_key(PGconn *conn, const pg_limits *lim, const cs_config *cfg,
                                     const char *raw, cs_error *err)
{
    char *pk = NULL, *qpk = NULL, *qidx = NULL, *colon;
    char idx[128];
    cs_result rc;

    rc = query_value(conn, lim,
                     "SELECT c.conname || ':' || string_agg(a.attname, ',' ORDER BY a.attnum) "
                     "FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND "
                     "a.attnum = ANY (c.conkey) WHERE c.contype = 'p' AND c.conrelid = "
                     "$1::regclass GROUP BY c.conname",
                     1, &raw, &pk, err);
    if (rc != CS_OK || !pk || !(colon = strrchr(pk, ':')) || strcmp(colon + 1, "_id") != 0)
        goto out;
    *colon = '\0';
    log_info(NULL, "taking over %s: changing its primary key from (_id) to (_id, source)", raw);
    snprintf(idx, sizeof(idx), "%s_id_source_key", cfg->postgres_table);
    qpk = store_quote_ident(pk);
    qidx = store_quote_ident(idx);
    if (!qpk || !qidx) {
        rc = cs_fail(err, CS_TRANSIENT, "out of memory");
        goto out;
    }
    rc = set_source_not_null(conn, lim, raw, err);
    if (rc == CS_OK)
        rc = store_exec(conn, lim, "could not change the primary key", err,
                        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS %s ON %s (_id, source)",
                        qidx, raw);
    if (rc == CS_OK) {
        rc =
            store_exec(conn, lim, "could not change the primary key", err,
                       "BEGIN; ALTER TABLE %s DROP CONSTRAINT %s; ALTER TABLE %s ADD CONSTRAINT %s "
                       "PRIMARY KEY USING INDEX %s; COMMIT",
                       raw, qpk, raw, qpk, qidx);
        if (rc != CS_OK)
            store_rollback(conn, lim);
    }
out:
    free(pk);
    free(qpk);
    free(qidx);
    return rc;
}

/*
 * The rejects table is keyed by (source, md5 of _id): an _id too long for a
 * btree (the reason some documents are rejected) must still fit its key.
 * A table of an earlier version, keyed by (source, _id), gets the column
 * and the key.
 */
static cs_result ensure_rejects(PGconn *conn, const pg_limits *lim, const char *rejects,
                                cs_error *err)
{
    char *found = NULL, *pk;
    cs_result rc;

    rc = query_value(conn, lim,
                     "SELECT (SELECT count(*) FROM pg_attribute WHERE attrelid = c.oid AND "
                     "attname = '_id_md5' AND NOT attisdropped) || ':' || coalesce((SELECT "
                     "conname FROM pg_constraint WHERE conrelid = c.oid AND contype = 'p'), '') "
                     "FROM pg_class c WHERE c.oid = to_regclass($1)",
                     1, &rejects, &found, err);
    if (rc != CS_OK)
        goto out;
    if (!found) {
        rc = store_exec(conn, lim, "could not create the rejects table", err,
                        "CREATE TABLE IF NOT EXISTS %s (source varchar NOT NULL, _id varchar NOT "
                        "NULL, rev varchar, seq varchar, reason text NOT NULL, rejected_at "
                        "timestamp with time zone NOT NULL DEFAULT now(), _id_md5 uuid "
                        "GENERATED ALWAYS AS (md5(_id)::uuid) STORED, PRIMARY KEY (source, "
                        "_id_md5))",
                        rejects);
        goto out;
    }
    if (strncmp(found, "0:", 2) != 0)
        goto out;
    pk = store_quote_ident(found + 2);
    if (!pk) {
        rc = cs_fail(err, CS_TRANSIENT, "out of memory");
        goto out;
    }
    log_info(NULL, "keying %s by a hash of _id, so that any _id fits its key", rejects);
    rc = store_exec(conn, lim, "could not change the key of the rejects table", err,
                    "ALTER TABLE %s ADD COLUMN _id_md5 uuid GENERATED ALWAYS AS (md5(_id)::uuid) "
                    "STORED%s%s, ADD PRIMARY KEY (source, _id_md5)",
                    rejects, found[2] ? ", DROP CONSTRAINT " : "", found[2] ? pk : "");
    free(pk);
out:
    free(found);
    return rc;
}

/* true when the catalog holds a relation of that (quoted, qualified) name */
static cs_result relation_exists(PGconn *conn, const pg_limits *lim, const char *name, bool *exists,
                                 cs_error *err)
{
    char *found = NULL;
    cs_result rc = query_value(conn, lim, "SELECT to_regclass($1)::text", 1, &name, &found, err);

    *exists = found != NULL;
    free(found);
    return rc;
}

/* the columns the progress table gained after CHT Sync 2.0, which an
 * existing table gets on start */
static const struct {
    const char *name, *type;
} progress_columns[] = {
    {"error", "text"},
    {"resync_started_at", "timestamp with time zone"},
    /* the resync's start in the raw table's own order (docs/ordering.md) */
    {"resync_from", "timestamp without time zone"},
    /* the database answered 404 after we followed it (cleared by the next
     * batch stored): survives a restart */
    {"vanished_at", "timestamp with time zone"},
};

/* the progress table, or the columns it lacks (only those: an ALTER takes
 * an exclusive lock that queues every reader behind it) */
static cs_result ensure_progress(PGconn *conn, const pg_limits *lim, const char *progress,
                                 cs_error *err)
{
    buf alter;
    bool exists;
    cs_result rc;

    if ((rc = relation_exists(conn, lim, progress, &exists, err)) != CS_OK)
        return rc;
    buf_init(&alter, 4096);
    buf_printf(&alter,
               exists ? "ALTER TABLE %s"
                      : "CREATE TABLE %s (seq varchar, pending integer, "
                        "updated_at timestamp with time zone, source "
                        "varchar PRIMARY KEY",
               progress);
    size_t base = alter.len;
    for (size_t i = 0; i < sizeof(progress_columns) / sizeof(progress_columns[0]); i++) {
        const char *params[2] = {progress, progress_columns[i].name};
        char *found = NULL;

        if (exists && (rc = query_value(conn, lim,
                                        "SELECT 1 FROM pg_attribute WHERE attrelid = "
                                        "$1::regclass AND attname = $2 AND NOT attisdropped",
                                        2, params, &found, err)) != CS_OK)
            goto out;
        if (!found)
            buf_printf(&alter, "%s %s%s %s", alter.len > base || !exists ? "," : "",
                       exists ? "ADD COLUMN " : "", progress_columns[i].name,
                       progress_columns[i].type);
        free(found);
    }
    if (!exists)
        buf_putc(&alter, ')');
    if (!buf_ok(&alter))
        rc = cs_fail(err, CS_TRANSIENT, "out of memory");
    else if (alter.len > base || !exists)
        rc = store_exec(conn, lim, "could not set up the progress table", err, "%s", alter.data);
out:
    buf_free(&alter);
    return rc;
}

/*
 * Warns about each source that has rows in the raw table but is not one of
 * ours (COUCHDB_HOST or COUCHDB_SOURCE changed, a database dropped from
 * COUCHDB_DBS): its rows stay live, and if it is the same CouchDB under
 * another name every document is there twice.  The distinct sources are
 * read by skipping along the source index (one probe per source), never by
 * scanning the table.  Case is ignored (see adopt_case_variant in store.c).
 */
static cs_result warn_unconfigured(PGconn *conn, const pg_limits *lim, const cs_config *cfg,
                                   const char *raw, cs_error *err)
{
    buf sources, sql;
    const char *params[1];
    PGresult *res = NULL;
    cs_result rc;

    buf_init(&sources, 1 << 20);
    buf_init(&sql, 4096);
    buf_putc(&sources, '{');
    for (int i = 0; i < cfg->ndbs; i++) {
        buf_puts(&sources, i ? ",\"" : "\"");
        for (const char *p = cfg->source_name; *p; p++) {
            if (*p == '"' || *p == '\\')
                buf_putc(&sources, '\\');
            buf_putc(&sources, *p);
        }
        buf_putc(&sources, '/');
        for (const char *p = cfg->dbs[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                buf_putc(&sources, '\\');
            buf_putc(&sources, *p);
        }
        buf_putc(&sources, '"');
    }
    buf_putc(&sources, '}');
    buf_printf(&sql,
               "WITH RECURSIVE s AS (SELECT min(source) AS source FROM %s UNION ALL SELECT "
               "(SELECT min(source) FROM %s WHERE source > s.source) FROM s WHERE s.source IS NOT "
               "NULL) SELECT source FROM s WHERE source IS NOT NULL AND lower(source) <> ALL "
               "(SELECT lower(c) FROM unnest($1::text[]) c) LIMIT 100",
               raw, raw);
    if (!buf_ok(&sources) || !buf_ok(&sql)) {
        rc = cs_fail(err, CS_TRANSIENT, "out of memory");
        goto out;
    }
    params[0] = sources.data;
    if (!PQsendQueryParams(conn, sql.data, 1, NULL, params, NULL, NULL, 0)) {
        rc = pg_fail(conn, NULL, "could not list the sources", err);
        goto out;
    }
    if ((rc = pg_await(conn, lim, "could not list the sources", &res, err)) != CS_OK)
        goto out;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pg_fail(conn, res, "could not list the sources", err);
        goto out;
    }
    for (int i = 0; i < PQntuples(res); i++)
        log_warn(NULL,
                 "source \"%s\" has rows in %s.%s but is not configured (COUCHDB_HOST, "
                 "COUCHDB_SOURCE or COUCHDB_DBS changed?): its rows stay as they are; if it is "
                 "this CouchDB under another name, set COUCHDB_SOURCE to that name",
                 PQgetvalue(res, i, 0), cfg->postgres_schema, cfg->postgres_table);
out:
    PQclear(res);
    buf_free(&sources);
    buf_free(&sql);
    return rc;
}

/*
 * Every step looks at the catalog first and changes only what is missing:
 * with the schema already right, start-up runs no DDL at all, so it takes
 * no lock a dashboard's read could queue behind.  A change that is needed
 * waits at most POSTGRES_LOCK_TIMEOUT_MS for its lock (readers queue behind
 * a waiting exclusive lock): on a time-out (55P03, transient) the whole
 * set-up is retried by the caller, with back-off.
 */
cs_result store_setup(const cs_config *cfg, volatile sig_atomic_t *stop, cs_error *err)
{
    /* no statement deadline: an index built on a large table may take long;
     * lock waits are bounded by lock_timeout, a dead server by keepalives */
    pg_limits limits = {stop, 0};
    const pg_limits *lim = &limits;
    PGconn *conn = pg_open(cfg, "cht-sync setup", lim, err);
    char *raw = store_qualified(cfg->postgres_schema, cfg->postgres_table, "");
    char *progress = store_qualified(cfg->postgres_schema, "couchdb_progress", "");
    char *rejects = store_qualified(cfg->postgres_schema, cfg->postgres_table, "_rejects");
    char *found = NULL;
    bool exists;
    buf schema;
    cs_result rc = CS_OK;

    buf_init(&schema, 256);
    pg_quote_ident(&schema, cfg->postgres_schema);
    if (!conn) {
        rc = err->code;
        goto out;
    }
    if (!raw || !progress || !rejects || !buf_ok(&schema)) {
        rc = cs_fail(err, CS_TRANSIENT, "out of memory");
        goto out;
    }
    if ((rc = store_exec(conn, lim, "could not lock the set-up", err,
                         "SELECT pg_advisory_lock(%lld)", SETUP_LOCK_KEY)))
        goto out;
    /* after the advisory lock: lock_timeout bounds advisory waits too */
    if ((rc = store_exec(conn, lim, "could not set lock_timeout", err, "SET lock_timeout = %d",
                         cfg->postgres_lock_timeout_ms)))
        goto out;
    if ((rc = query_value(conn, lim, "SELECT nspname FROM pg_namespace WHERE nspname = $1", 1,
                          (const char *const *)&cfg->postgres_schema, &found, err)))
        goto out;
    if (!found && (rc = store_exec(conn, lim, "could not create the schema", err,
                                   "CREATE SCHEMA IF NOT EXISTS %s", schema.data)))
        goto out;
    if ((rc = relation_exists(conn, lim, raw, &exists, err)))
        goto out;
    if (!exists &&
        (rc = store_exec(conn, lim, "could not create the raw table", err,
                         "CREATE TABLE IF NOT EXISTS %s (saved_timestamp timestamp without time "
                         "zone, _id varchar NOT NULL, _deleted boolean, source varchar NOT NULL, "
                         "doc jsonb, PRIMARY KEY (_id, source))",
                         raw)))
        goto out;
    if ((rc = migrate_primary_key(conn, lim, cfg, raw, err)))
        goto out;
    if ((rc = ensure_index(conn, lim, cfg, raw, "_deleted", err)) ||
        (rc = ensure_index(conn, lim, cfg, raw, "saved_timestamp", err)) ||
        (rc = ensure_index(conn, lim, cfg, raw, "source", err)))
        goto out;
    if ((rc = ensure_progress(conn, lim, progress, err)))
        goto out;
    if ((rc = ensure_rejects(conn, lim, rejects, err)))
        goto out;
    if ((rc = warn_unconfigured(conn, lim, cfg, raw, err)))
        goto out;
    rc = store_exec(conn, lim, "could not unlock the set-up", err,
                    "SELECT pg_advisory_unlock(%lld)", SETUP_LOCK_KEY);
out:
    if (conn)
        PQfinish(conn);
    free(raw);
    free(progress);
    free(rejects);
    free(found);
    buf_free(&schema);
    return rc;
}
