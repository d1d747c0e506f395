/*
 * store.c - see store.h.
 *
 * Per batch, in one transaction:
 *   COPY pg_temp.cs_stage (ord, _id, _deleted, doc) FROM STDIN
 *   upsert: DISTINCT ON (_id) ... ORDER BY ord DESC, so the last change of
 *           an id within the batch wins, ON CONFLICT (_id, source) DO UPDATE
 *   rejects: rows of this batch leave the rejects table; rows the parser
 *           or PostgreSQL refused enter it
 *   progress: the batch's last_seq, pending, updated_at
 * When COPY fails on a document (SQLSTATE class 22, e.g. a lone surrogate
 * that slipped through, a number jsonb cannot hold), the transaction is
 * rolled back and the batch is staged again row by row, each row in a
 * savepoint, so that only the refused rows are recorded and skipped.
 */
#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/pg.h"

#define SETUP_LOCK_KEY 7305342021LL

struct store {
    const cs_config *cfg;
    char *source;
    char *scope;
    PGconn *conn;
    bool resyncing;
    char *raw;      /* "schema"."table" */
    char *progress; /* "schema"."couchdb_progress" */
    char *rejects;  /* "schema"."table_rejects" */
    char *channel;  /* schema.table, unquoted: the payload of NOTIFY cht_sync */
    buf copy;       /* one COPY row at a time */
};

static char *qualified(const char *schema, const char *table, const char *suffix)
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

/* ---- schema set-up ---- */

/* ends a failed transaction; a failure here leaves nothing to undo */
static void rollback(PGconn *conn)
{
    if (PQstatus(conn) == CONNECTION_OK)
        PQclear(PQexec(conn, "ROLLBACK"));
}

static cs_result exec_sql(PGconn *conn, const char *what, cs_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static cs_result exec_sql(PGconn *conn, const char *what, cs_error *err, const char *fmt, ...)
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
    rc = pg_exec(conn, sql, err);
    if (rc != CS_OK)
        cs_error_prefix(err, "%s: ", what);
    free(sql);
    return rc;
}

/* "name" with embedded quotes doubled, malloc'd; NULL when out of memory */
static char *quote_ident(const char *name)
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
static cs_result query_value(PGconn *conn, const char *sql, int nparams, const char *const *params,
                             char **out, cs_error *err)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    cs_result rc = CS_OK;

    *out = NULL;
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
static cs_result ensure_index(PGconn *conn, const cs_config *cfg, const char *raw,
                              const char *column, cs_error *err)
{
    const char *params[2] = {raw, column};
    char *found = NULL, *qname = NULL, *qualified_name = NULL, *qcolumn = NULL;
    char name[128];
    cs_result rc;

    rc = query_value(conn,
                     "SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_attribute a ON "
                     "a.attrelid = i.indrelid AND a.attnum = i.indkey[0] WHERE i.indisvalid AND "
                     "i.indrelid = $1::regclass AND a.attname = $2",
                     2, params, &found, err);
    if (rc != CS_OK || found)
        goto out;
    snprintf(name, sizeof(name), "%s_%s_idx", cfg->postgres_table,
             column[0] == '_' ? column + 1 : column);
    qname = quote_ident(name);
    qcolumn = quote_ident(column);
    qualified_name = qualified(cfg->postgres_schema, name, "");
    if (!qname || !qcolumn || !qualified_name) {
        rc = cs_fail(err, CS_TRANSIENT, "out of memory");
        goto out;
    }
    if ((rc = exec_sql(conn, "could not drop an unfinished index", err,
                       "DROP INDEX CONCURRENTLY IF EXISTS %s", qualified_name)) ||
        (rc = exec_sql(conn, "could not create an index", err,
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

/* today's CHT Sync keys the raw table by _id alone: two databases with the
 * same id overwrite each other.  Move the key to (_id, source) without a
 * long lock: the unique index is built concurrently first, then swapped in
 * as the primary key in one short transaction. */
static cs_result migrate_primary_key(PGconn *conn, const cs_config *cfg, const char *raw,
                                     cs_error *err)
{
    char *pk = NULL, *qpk = NULL, *qidx = NULL, *colon;
    char idx[128];
    cs_result rc;

    rc = query_value(conn,
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
    qpk = quote_ident(pk);
    qidx = quote_ident(idx);
    if (!qpk || !qidx) {
        rc = cs_fail(err, CS_TRANSIENT, "out of memory");
        goto out;
    }
    rc = exec_sql(conn, "could not change the primary key", err,
                  "ALTER TABLE %s ALTER COLUMN source SET NOT NULL", raw);
    if (rc == CS_OK)
        rc = exec_sql(conn, "could not change the primary key", err,
                      "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS %s ON %s (_id, source)", qidx,
                      raw);
    if (rc == CS_OK) {
        rc = exec_sql(conn, "could not change the primary key", err,
                      "BEGIN; ALTER TABLE %s DROP CONSTRAINT %s; ALTER TABLE %s ADD CONSTRAINT %s "
                      "PRIMARY KEY USING INDEX %s; COMMIT",
                      raw, qpk, raw, qpk, qidx);
        if (rc != CS_OK)
            rollback(conn);
    }
out:
    free(pk);
    free(qpk);
    free(qidx);
    return rc;
}

cs_result store_setup(const cs_config *cfg, cs_error *err)
{
    PGconn *conn = pg_connect(cfg, "cht-sync setup", err);
    char *raw = qualified(cfg->postgres_schema, cfg->postgres_table, "");
    char *progress = qualified(cfg->postgres_schema, "couchdb_progress", "");
    char *rejects = qualified(cfg->postgres_schema, cfg->postgres_table, "_rejects");
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
    if ((rc = exec_sql(conn, "could not lock the set-up", err, "SELECT pg_advisory_lock(%lld)",
                       SETUP_LOCK_KEY)))
        goto out;
    if ((rc = exec_sql(conn, "could not create the schema", err, "CREATE SCHEMA IF NOT EXISTS %s",
                       schema.data)))
        goto out;
    if ((rc = exec_sql(conn, "could not create the raw table", err,
                       "CREATE TABLE IF NOT EXISTS %s (saved_timestamp timestamp without time "
                       "zone, _id varchar NOT NULL, _deleted boolean, source varchar NOT NULL, "
                       "doc jsonb, PRIMARY KEY (_id, source))",
                       raw)))
        goto out;
    if ((rc = migrate_primary_key(conn, cfg, raw, err)))
        goto out;
    if ((rc = ensure_index(conn, cfg, raw, "_deleted", err)) ||
        (rc = ensure_index(conn, cfg, raw, "saved_timestamp", err)) ||
        (rc = ensure_index(conn, cfg, raw, "source", err)))
        goto out;
    if ((rc = exec_sql(conn, "could not create the progress table", err,
                       "CREATE TABLE IF NOT EXISTS %s (seq varchar, pending integer, updated_at "
                       "timestamp with time zone, source varchar PRIMARY KEY); ALTER TABLE %s ADD "
                       "COLUMN IF NOT EXISTS error text, ADD COLUMN IF NOT EXISTS "
                       "resync_started_at timestamp with time zone",
                       progress, progress)))
        goto out;
    if ((rc =
             exec_sql(conn, "could not create the rejects table", err,
                      "CREATE TABLE IF NOT EXISTS %s (source varchar NOT NULL, _id varchar NOT "
                      "NULL, rev varchar, seq varchar, reason text NOT NULL, rejected_at "
                      "timestamp with time zone NOT NULL DEFAULT now(), PRIMARY KEY (source, _id))",
                      rejects)))
        goto out;
    rc = exec_sql(conn, "could not unlock the set-up", err, "SELECT pg_advisory_unlock(%lld)",
                  SETUP_LOCK_KEY);
out:
    if (conn)
        PQfinish(conn);
    free(raw);
    free(progress);
    free(rejects);
    buf_free(&schema);
    return rc;
}

/* ---- per-source store ---- */

store *store_new(const cs_config *cfg, const char *source, const char *log_scope)
{
    store *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->cfg = cfg;
    s->source = strdup(source);
    s->scope = strdup(log_scope);
    s->raw = qualified(cfg->postgres_schema, cfg->postgres_table, "");
    s->progress = qualified(cfg->postgres_schema, "couchdb_progress", "");
    s->rejects = qualified(cfg->postgres_schema, cfg->postgres_table, "_rejects");
    if (asprintf(&s->channel, "%s.%s", cfg->postgres_schema, cfg->postgres_table) < 0)
        s->channel = NULL;
    buf_init(&s->copy, (size_t)cfg->max_doc_bytes * 2 + 65536);
    if (!s->source || !s->scope || !s->raw || !s->progress || !s->rejects || !s->channel) {
        store_free(s);
        return NULL;
    }
    return s;
}

void store_disconnect(store *s)
{
    if (s->conn)
        PQfinish(s->conn);
    s->conn = NULL;
}

void store_free(store *s)
{
    if (!s)
        return;
    store_disconnect(s);
    free(s->source);
    free(s->scope);
    free(s->raw);
    free(s->progress);
    free(s->rejects);
    free(s->channel);
    buf_free(&s->copy);
    free(s);
}

static cs_result prepare(store *s, const char *name, const char *sql, cs_error *err)
{
    PGresult *res = PQprepare(s->conn, name, sql, 0, NULL);
    cs_result rc = CS_OK;

    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = pg_fail(s->conn, res, "could not prepare a statement", err);
    PQclear(res);
    return rc;
}

static cs_result prepare_all(store *s, cs_error *err)
{
    char *sql = NULL;
    cs_result rc;

#define PREPARE(name, ...)                                                                         \
    do {                                                                                           \
        if (asprintf(&sql, __VA_ARGS__) < 0)                                                       \
            return cs_fail(err, CS_TRANSIENT, "out of memory");                                    \
        rc = prepare(s, name, sql, err);                                                           \
        free(sql);                                                                                 \
        if (rc != CS_OK)                                                                           \
            return rc;                                                                             \
    } while (0)

    rc = pg_exec(s->conn,
                 "CREATE TEMP TABLE IF NOT EXISTS cs_stage (ord integer, _id varchar, _deleted "
                 "boolean, doc jsonb) ON COMMIT DELETE ROWS",
                 err);
    if (rc != CS_OK)
        return rc;
    PREPARE("upsert",
            "INSERT INTO %s AS t (saved_timestamp, _id, _deleted, source, doc) "
            "SELECT now() AT TIME ZONE 'UTC', _id, _deleted, $1, doc FROM "
            "(SELECT DISTINCT ON (_id) _id, _deleted, doc FROM pg_temp.cs_stage "
            "ORDER BY _id, ord DESC) s "
            "ON CONFLICT (_id, source) DO UPDATE SET saved_timestamp = EXCLUDED.saved_timestamp, "
            "_deleted = EXCLUDED._deleted, doc = EXCLUDED.doc",
            s->raw);
    PREPARE("unreject",
            "DELETE FROM %s r USING pg_temp.cs_stage s WHERE r.source = $1 AND r._id = s._id",
            s->rejects);
    PREPARE("reject",
            "INSERT INTO %s (source, _id, rev, seq, reason, rejected_at) VALUES ($1, $2, $3, $4, "
            "$5, now()) ON CONFLICT (source, _id) DO UPDATE SET rev = EXCLUDED.rev, seq = "
            "EXCLUDED.seq, reason = EXCLUDED.reason, rejected_at = EXCLUDED.rejected_at",
            s->rejects);
    PREPARE("upsert_one",
            "INSERT INTO %s AS t (saved_timestamp, _id, _deleted, source, doc) VALUES (now() AT "
            "TIME ZONE 'UTC', $2, $3, $1, $4) ON CONFLICT (_id, source) DO UPDATE SET "
            "saved_timestamp = EXCLUDED.saved_timestamp, _deleted = EXCLUDED._deleted, doc = "
            "EXCLUDED.doc",
            s->raw);
    /* docs/ordering.md: model runners in other processes LISTEN on cht_sync */
    PREPARE("notify", "SELECT pg_notify('cht_sync', $1)");
    PREPARE("unreject_one", "DELETE FROM %s WHERE source = $1 AND _id = $2", s->rejects);
    /* $2 seq (NULL: keep), $3 pending, $4 'start' / 'finish' / NULL */
    PREPARE("progress",
            "INSERT INTO %s AS p (seq, pending, updated_at, source, error, resync_started_at) "
            "VALUES (COALESCE($2, '0'), $3::integer, now(), $1, NULL, CASE WHEN $4 = 'start' "
            "THEN now() END) ON CONFLICT (source) DO UPDATE SET seq = COALESCE($2, p.seq), "
            "pending = $3::integer, updated_at = now(), error = NULL, resync_started_at = CASE $4 "
            "WHEN 'start' THEN now() WHEN 'finish' THEN NULL ELSE p.resync_started_at END",
            s->progress);
    /* a failing source keeps its updated_at: monitoring must see it stall */
    PREPARE("failed",
            "INSERT INTO %s AS p (seq, source, error) VALUES ('0', $1, $2) ON CONFLICT (source) "
            "DO UPDATE SET error = $2",
            s->progress);
    PREPARE("mark_stale",
            "UPDATE %s AS t SET _deleted = true, saved_timestamp = now() AT TIME ZONE 'UTC', "
            "doc = jsonb_build_object('_id', t._id, '_rev', t.doc->'_rev', '_deleted', true) "
            "FROM %s p WHERE p.source = $1 AND t.source = $1 AND t._deleted IS NOT TRUE AND "
            "p.resync_started_at IS NOT NULL AND t.saved_timestamp < (p.resync_started_at AT "
            "TIME ZONE 'UTC')",
            s->raw, s->progress);
#undef PREPARE
    return CS_OK;
}

cs_result store_open(store *s, char **seq, cs_error *err)
{
    const char *param = s->source;
    PGresult *res;
    cs_result rc;
    char *sql = NULL;

    *seq = NULL;
    if (s->conn && PQstatus(s->conn) != CONNECTION_OK)
        store_disconnect(s);
    if (!s->conn) {
        if (!(s->conn = pg_connect(s->cfg, "cht-sync", err)))
            return err->code;
        if ((rc = prepare_all(s, err)) != CS_OK) {
            store_disconnect(s);
            return rc;
        }
    }
    if (asprintf(&sql, "SELECT seq, resync_started_at IS NOT NULL FROM %s WHERE source = $1",
                 s->progress) < 0)
        return cs_fail(err, CS_TRANSIENT, "out of memory");
    res = PQexecParams(s->conn, sql, 1, NULL, &param, NULL, NULL, 0);
    free(sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pg_fail(s->conn, res, "could not read the checkpoint", err);
        PQclear(res);
        return rc;
    }
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) {
        *seq = strdup(PQgetvalue(res, 0, 0));
        s->resyncing = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    } else {
        *seq = strdup("0");
        s->resyncing = false;
    }
    PQclear(res);
    return *seq ? CS_OK : cs_fail(err, CS_TRANSIENT, "out of memory");
}

static cs_result exec_prepared(store *s, const char *name, int n, const char *const *params,
                               PGresult **keep, cs_error *err)
{
    PGresult *res = PQexecPrepared(s->conn, name, n, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    cs_result rc = CS_OK;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = pg_fail(s->conn, res, name, err);
    if (keep && rc == CS_OK)
        *keep = res;
    else
        PQclear(res);
    return rc;
}

/* appends text escaped for COPY's text format */
static void copy_escaped(buf *b, const char *p, size_t n)
{
    const char *end = p + n;

    while (p < end) {
        const char *run = p;
        while (p < end && *p != '\\' && (unsigned char)*p >= 0x20)
            p++;
        buf_append(b, run, (size_t)(p - run));
        if (p == end)
            break;
        switch (*p) {
        case '\\':
            buf_append(b, "\\\\", 2);
            break;
        case '\n':
            buf_append(b, "\\n", 2);
            break;
        case '\r':
            buf_append(b, "\\r", 2);
            break;
        case '\t':
            buf_append(b, "\\t", 2);
            break;
        default:
            buf_printf(b, "\\%03o", (unsigned char)*p);
        }
        p++;
    }
}

static cs_result stage_copy(store *s, const batch *b, cs_error *err)
{
    PGresult *res = PQexec(s->conn, "COPY pg_temp.cs_stage (ord, _id, _deleted, doc) FROM STDIN");
    cs_result rc = CS_OK;

    if (PQresultStatus(res) != PGRES_COPY_IN) {
        rc = pg_fail(s->conn, res, "could not start COPY", err);
        PQclear(res);
        return rc;
    }
    PQclear(res);
    for (size_t i = 0; i < b->nrows; i++) {
        const batch_row *r = &b->rows[i];
        if (!r->doc)
            continue;
        buf_reset(&s->copy);
        buf_printf(&s->copy, "%zu\t", i);
        copy_escaped(&s->copy, r->id, strlen(r->id));
        buf_puts(&s->copy, r->deleted ? "\tt\t" : "\tf\t");
        copy_escaped(&s->copy, r->doc, r->doc_len);
        buf_putc(&s->copy, '\n');
        if (!buf_ok(&s->copy)) {
            PQputCopyEnd(s->conn, "row too large");
            rc = cs_fail(err, CS_TRANSIENT, "out of memory staging \"%s\"", r->id);
            break;
        }
        if (PQputCopyData(s->conn, s->copy.data, (int)s->copy.len) != 1) {
            rc = pg_fail(s->conn, NULL, "could not send COPY data", err);
            break;
        }
    }
    if (rc == CS_OK && PQputCopyEnd(s->conn, NULL) != 1)
        rc = pg_fail(s->conn, NULL, "could not end COPY", err);
    while ((res = PQgetResult(s->conn))) {
        if (rc == CS_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = pg_fail(s->conn, res, "COPY failed", err);
        PQclear(res);
    }
    return rc;
}

static cs_result reject(store *s, const batch_row *r, const char *reason, cs_error *err)
{
    const char *params[5] = {s->source, r->id, r->rev, r->seq, reason};
    log_warn(s->scope, "rejected document \"%s\" (rev %s): %s", r->id, r->rev ? r->rev : "?",
             reason);
    return exec_prepared(s, "reject", 5, params, NULL, err);
}

/*
 * The slow path after the batch's COPY or upsert was refused because of a
 * document: every row is upserted alone in a savepoint, so that only the
 * rows PostgreSQL refuses are recorded in the rejects table and skipped.
 * Rows are taken in feed order, so the last change of an id wins here too.
 */
static cs_result upsert_one_by_one(store *s, const batch *b, store_stats *st, cs_error *err)
{
    cs_result rc;

    for (size_t i = 0; i < b->nrows; i++) {
        const batch_row *r = &b->rows[i];
        const char *params[4] = {s->source, r->id, r->deleted ? "t" : "f", r->doc};
        cs_error row_err;

        if (!r->doc)
            continue;
        if ((rc = pg_exec(s->conn, "SAVEPOINT row", err)) != CS_OK)
            return rc;
        rc = exec_prepared(s, "upsert_one", 4, params, NULL, &row_err);
        if (rc == CS_OK)
            rc = exec_prepared(s, "unreject_one", 2, params, NULL, &row_err);
        if (rc == CS_INVALID) {
            if ((rc = pg_exec(s->conn, "ROLLBACK TO SAVEPOINT row", err)) != CS_OK)
                return rc;
            if ((rc = reject(s, r, row_err.msg, err)) != CS_OK)
                return rc;
            st->rejected++;
        } else if (rc != CS_OK) {
            *err = row_err;
            return rc;
        } else {
            st->stored++;
        }
        if ((rc = pg_exec(s->conn, "RELEASE SAVEPOINT row", err)) != CS_OK)
            return rc;
    }
    return CS_OK;
}

static cs_result write_changes(store *s, const batch *b, bool one_by_one, store_stats *st,
                               cs_error *err)
{
    char pending[32];
    const char *params[4];
    PGresult *res = NULL;
    cs_result rc;
    bool any_doc = false;

    memset(st, 0, sizeof(*st));
    for (size_t i = 0; i < b->nrows && !any_doc; i++)
        any_doc = b->rows[i].doc != NULL;
    if ((rc = pg_exec(s->conn, "BEGIN", err)) != CS_OK)
        return rc;
    snprintf(pending, sizeof(pending), "%lld",
             b->pending > 2147483647LL ? 2147483647LL : b->pending);
    if (b->restart) {
        params[0] = s->source;
        params[1] = "0";
        params[2] = NULL;
        params[3] = "start";
        if ((rc = exec_prepared(s, "progress", 4, params, NULL, err)) != CS_OK)
            goto fail;
    }
    if (any_doc && one_by_one) {
        if ((rc = upsert_one_by_one(s, b, st, err)) != CS_OK)
            goto fail;
    } else if (any_doc) {
        if ((rc = stage_copy(s, b, err)) != CS_OK)
            goto fail;
        params[0] = s->source;
        if ((rc = exec_prepared(s, "unreject", 1, params, NULL, err)) != CS_OK)
            goto fail;
        if ((rc = exec_prepared(s, "upsert", 1, params, &res, err)) != CS_OK)
            goto fail;
        st->stored = strtoull(PQcmdTuples(res), NULL, 10);
        PQclear(res);
    }
    for (size_t i = 0; i < b->nrows; i++) {
        if (b->rows[i].reject_reason) {
            if ((rc = reject(s, &b->rows[i], b->rows[i].reject_reason, err)) != CS_OK)
                goto fail;
            st->rejected++;
        }
    }
    if (b->caught_up && (s->resyncing || b->restart)) {
        params[0] = s->source;
        if ((rc = exec_prepared(s, "mark_stale", 1, params, &res, err)) != CS_OK)
            goto fail;
        st->marked_deleted = strtoull(PQcmdTuples(res), NULL, 10);
        PQclear(res);
    }
    params[0] = s->source;
    params[1] = b->last_seq;
    params[2] = b->has_pending ? pending : NULL;
    params[3] = b->caught_up && (s->resyncing || b->restart) ? "finish" : NULL;
    if ((rc = exec_prepared(s, "progress", 4, params, NULL, err)) != CS_OK)
        goto fail;
    params[0] = s->channel;
    if ((rc = exec_prepared(s, "notify", 1, params, NULL, err)) != CS_OK)
        goto fail;
    if ((rc = pg_exec(s->conn, "COMMIT", err)) != CS_OK)
        return rc;
    if (b->restart)
        s->resyncing = true;
    if (b->caught_up)
        s->resyncing = false;
    return CS_OK;

fail:
    rollback(s->conn);
    return rc;
}

cs_result store_write(store *s, const batch *b, store_stats *st, cs_error *err)
{
    const char *params[4];
    char pending[32];
    cs_result rc;

    memset(st, 0, sizeof(*st));
    if (!s->conn)
        return cs_fail(err, CS_TRANSIENT, "not connected");
    switch (b->kind) {
    case BATCH_CHANGES:
        rc = write_changes(s, b, false, st, err);
        if (rc == CS_INVALID) {
            log_warn(s->scope,
                     "PostgreSQL refused a document of the batch (%s); storing the "
                     "batch row by row to find it",
                     err->msg);
            rc = write_changes(s, b, true, st, err);
        }
        return rc;
    case BATCH_IDLE:
        snprintf(pending, sizeof(pending), "%lld", b->pending);
        params[0] = s->source;
        params[1] = b->last_seq;
        params[2] = b->has_pending ? pending : NULL;
        params[3] = NULL;
        return exec_prepared(s, "progress", 4, params, NULL, err);
    case BATCH_FAILED:
        params[0] = s->source;
        params[1] = b->error;
        return exec_prepared(s, "failed", 2, params, NULL, err);
    case BATCH_END:
        return CS_OK;
    }
    return CS_OK;
}
