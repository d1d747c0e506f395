/*
 * store.c - the hot write path of the store (see store.h); schema set-up
 * and migration are in schema.c.
 *
 * Per batch, in one transaction:
 *   COPY pg_temp.cs_stage (ord, _id, _deleted, doc) FROM STDIN
 *   the raw table's advisory lock, then the batch's one timestamp
 *           (docs/ordering.md: commit order and saved_timestamp agree)
 *   upsert: DISTINCT ON (_id) ... ORDER BY ord DESC, so the last change of
 *           an id within the batch wins, ON CONFLICT (_id, source) DO UPDATE
 *   rejects: rows of this batch leave the rejects table; rows the parser
 *           or PostgreSQL refused enter it
 *   progress: the batch's last_seq, pending, updated_at
 *   NOTIFY cht_sync, '<schema>.<table>' when raw rows were written
 * When a statement of the batch fails, the transaction is rolled back and
 * the batch is stored again row by row, each row in a savepoint; a row that
 * fails alone while a harmless write succeeds is recorded and skipped (see
 * upsert_one_by_one).
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
#include "store/internal.h"

struct store {
    const cs_config *cfg;
    char *source;
    char *scope;
    PGconn *conn;
    pg_limits lim;
    bool resyncing;
    bool source_checked; /* adopt_case_variant ran */
    char *raw;           /* "schema"."table" */
    char *progress;      /* "schema"."couchdb_progress" */
    char *rejects;       /* "schema"."table_rejects" */
    char *raw_name;      /* schema.table, unquoted: the lock key's text and the NOTIFY payload */
    buf copy;            /* one COPY row at a time */
    char ts[64];         /* the batch's saved_timestamp, as PostgreSQL printed it */
    bool rewrite;        /* this batch rewrites unchanged revisions too (a resync) */
};

store *store_new(const cs_config *cfg, const char *source, const char *log_scope,
                 volatile sig_atomic_t *stop)
{
    store *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->cfg = cfg;
    s->lim.stop = stop;
    s->lim.timeout_ms = cfg->postgres_statement_timeout * 1000;
    s->source = strdup(source);
    s->scope = strdup(log_scope);
    s->raw = store_qualified(cfg->postgres_schema, cfg->postgres_table, "");
    s->progress = store_qualified(cfg->postgres_schema, "couchdb_progress", "");
    s->rejects = store_qualified(cfg->postgres_schema, cfg->postgres_table, "_rejects");
    if (asprintf(&s->raw_name, "%s.%s", cfg->postgres_schema, cfg->postgres_table) < 0)
        s->raw_name = NULL;
    buf_init(&s->copy, (size_t)cfg->max_doc_bytes * 2 + 65536);
    if (!s->source || !s->scope || !s->raw || !s->progress || !s->rejects || !s->raw_name) {
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
    free(s->raw_name);
    buf_free(&s->copy);
    free(s);
}

static cs_result exec_prepared_within(store *s, const pg_limits *lim, const char *name, int n,
                                      const char *const *params, PGresult **keep, cs_error *err);
static cs_result exec_prepared(store *s, const char *name, int n, const char *const *params,
                               PGresult **keep, cs_error *err);

static cs_result prepare(store *s, const char *name, const char *sql, cs_error *err)
{
    PGresult *res = NULL;
    cs_result rc = CS_OK;

    if (!PQsendPrepare(s->conn, name, sql, 0, NULL))
        return pg_fail(s->conn, NULL, "could not prepare a statement", err);
    if ((rc = pg_await(s->conn, &s->lim, "could not prepare a statement", &res, err)) != CS_OK)
        return rc;
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

    rc = pg_run(s->conn, &s->lim,
                "CREATE TEMP TABLE IF NOT EXISTS cs_stage (ord integer, _id varchar, _deleted "
                "boolean, doc jsonb) ON COMMIT DELETE ROWS",
                err);
    if (rc != CS_OK)
        return rc;
        /* a replayed revision already stored is not written again (no new
         * saved_timestamp for the models, no WAL); $N true rewrites it anyway:
         * a resync must touch every row the new database still has */
#define UNCHANGED_SKIP(rewrite)                                                                    \
    "WHERE " rewrite "::boolean OR t.doc->'_rev' IS DISTINCT FROM EXCLUDED.doc->'_rev' OR "        \
    "t._deleted IS DISTINCT FROM EXCLUDED._deleted"
    PREPARE("upsert",
            "INSERT INTO %s AS t (saved_timestamp, _id, _deleted, source, doc) "
            "SELECT $2::timestamp, _id, _deleted, $1, doc FROM "
            "(SELECT DISTINCT ON (_id) _id, _deleted, doc FROM pg_temp.cs_stage "
            "ORDER BY _id, ord DESC) s "
            "ON CONFLICT (_id, source) DO UPDATE SET saved_timestamp = EXCLUDED.saved_timestamp, "
            "_deleted = EXCLUDED._deleted, doc = EXCLUDED.doc " UNCHANGED_SKIP("$3"),
            s->raw);
    PREPARE("unreject",
            "DELETE FROM %s r USING pg_temp.cs_stage s WHERE r.source = $1 AND r._id_md5 = "
            "md5(s._id)::uuid",
            s->rejects);
    PREPARE("reject",
            "INSERT INTO %s (source, _id, rev, seq, reason, rejected_at) VALUES ($1, $2, $3, $4, "
            "$5, now()) ON CONFLICT (source, _id_md5) DO UPDATE SET rev = EXCLUDED.rev, seq = "
            "EXCLUDED.seq, reason = EXCLUDED.reason, rejected_at = EXCLUDED.rejected_at",
            s->rejects);
    PREPARE("upsert_one",
            "INSERT INTO %s AS t (saved_timestamp, _id, _deleted, source, doc) VALUES "
            "($5::timestamp, $2, $3, $1, $4) ON CONFLICT (_id, source) DO UPDATE SET "
            "saved_timestamp = EXCLUDED.saved_timestamp, _deleted = EXCLUDED._deleted, doc = "
            "EXCLUDED.doc " UNCHANGED_SKIP("$6"),
            s->raw);
    PREPARE("unreject_one", "DELETE FROM %s WHERE source = $1 AND _id_md5 = md5($2)::uuid",
            s->rejects);
#undef UNCHANGED_SKIP
    /* $2 seq (NULL: keep), $3 pending, $4 'start' / 'finish' / NULL, $5 the
     * batch's timestamp: a resync's start in the sync's own order (every
     * row written before it has an older saved_timestamp, every row the
     * resync writes has it or a later one), never PostgreSQL's clock */
    PREPARE("progress",
            "INSERT INTO %s AS p (seq, pending, updated_at, source, error, resync_started_at, "
            "resync_from) VALUES (COALESCE($2, '0'), $3::integer, now(), $1, NULL, CASE WHEN $4 "
            "= 'start' THEN now() END, CASE WHEN $4 = 'start' THEN $5::timestamp END) ON "
            "CONFLICT (source) DO UPDATE SET seq = COALESCE($2, p.seq), pending = $3::integer, "
            "updated_at = now(), error = NULL, vanished_at = NULL, resync_started_at = CASE $4 "
            "WHEN 'start' THEN "
            "now() WHEN 'finish' THEN NULL ELSE p.resync_started_at END, resync_from = CASE $4 "
            "WHEN 'start' THEN $5::timestamp WHEN 'finish' THEN NULL ELSE p.resync_from END",
            s->progress);
    /* a failing source keeps its updated_at: monitoring must see it stall */
    /* $3 true: the database vanished (kept until a batch is stored) */
    PREPARE("failed",
            "INSERT INTO %s AS p (seq, source, error, vanished_at) VALUES ('0', $1, $2, CASE WHEN "
            "$3::boolean THEN now() END) ON CONFLICT (source) DO UPDATE SET error = $2, "
            "vanished_at = CASE WHEN $3::boolean THEN coalesce(p.vanished_at, now()) ELSE "
            "p.vanished_at END",
            s->progress);
    PREPARE("mark_stale",
            "UPDATE %s AS t SET _deleted = true, saved_timestamp = $2::timestamp, "
            "doc = jsonb_build_object('_id', t._id, '_rev', t.doc->'_rev', '_deleted', true) "
            "FROM %s p WHERE p.source = $1 AND t.source = $1 AND t._deleted IS NOT TRUE AND "
            "p.resync_started_at IS NOT NULL AND t.saved_timestamp < coalesce(p.resync_from, "
            "p.resync_started_at AT TIME ZONE 'UTC')",
            s->raw, s->progress);
    /* docs/ordering.md: one lock per raw table, taken after the staging COPY
     * and held to the commit; the batch's timestamp is read after it, in a
     * statement of its own so that its snapshot sees the previous holder's
     * commit */
    PREPARE("lock", "SELECT pg_advisory_xact_lock(hashtextextended('cht-sync raw ' || $1, 0))");
    PREPARE("batch_ts",
            "SELECT greatest(clock_timestamp() AT TIME ZONE 'UTC', max(saved_timestamp) + "
            "interval '1 microsecond') FROM %s",
            s->raw);
    PREPARE("notify", "SELECT pg_notify('cht_sync', $1)");
    /* one writer per source (raw table and source), in every process */
#define SOURCE_KEY "hashtextextended('cht-sync source ' || $1 || ' ' || $2, 0)"
    PREPARE("claim_try", "SELECT pg_try_advisory_lock(" SOURCE_KEY ")");
    PREPARE("claim_wait", "SELECT pg_advisory_lock(" SOURCE_KEY ")");
    PREPARE("claim_holder",
            "WITH k AS (SELECT " SOURCE_KEY " AS k) SELECT a.pid, coalesce(host(a.client_addr), "
            "'local'), a.application_name FROM k, pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) AND l.classid = "
            "((k.k >> 32) & 4294967295)::oid AND l.objid = (k.k & 4294967295)::oid");
#undef SOURCE_KEY
#undef PREPARE
    return CS_OK;
}

/*
 * Claims the source for this connection: a session advisory lock keyed by
 * raw table and source, so that two processes on one source (a rolling
 * deploy's overlap) never both write it, which could put older documents
 * over newer ones and move the checkpoint back.  Held until the connection
 * ends.  When another process holds it: with wait, logs who and waits
 * (without deadline, until stop) for it to end; without, waits
 * CLAIM_GRACE_MS (the backend of a process just killed may take a moment to
 * see its client gone), then CS_PERMANENT.
 */
#define CLAIM_GRACE_MS 5000
static cs_result claim_source(store *s, bool wait, cs_error *err)
{
    const char *params[2] = {s->raw_name, s->source};
    pg_limits forever = {s->lim.stop, 0};
    PGresult *res = NULL;
    char who[256] = "";
    char sql[64];
    bool got;
    cs_result rc;

    if ((rc = exec_prepared(s, "claim_try", 2, params, &res, err)) != CS_OK)
        return rc;
    got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (got)
        return CS_OK;
    if (exec_prepared(s, "claim_holder", 2, params, &res, err) == CS_OK) {
        if (PQntuples(res) > 0)
            snprintf(who, sizeof(who), " (PostgreSQL backend %s from %s, application \"%s\")",
                     PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
        PQclear(res);
    }
    if (!wait) {
        cs_error ignored;
        snprintf(sql, sizeof(sql), "SET lock_timeout = %d", CLAIM_GRACE_MS);
        if ((rc = pg_run(s->conn, &s->lim, sql, err)) != CS_OK)
            return rc;
        rc = exec_prepared(s, "claim_wait", 2, params, NULL, &ignored);
        if (rc == CS_OK)
            return pg_run(s->conn, &s->lim, "SET lock_timeout = 0", err);
        return cs_fail(err, CS_PERMANENT,
                       "source \"%s\" is written by another cht-sync process%s: not starting a "
                       "second writer",
                       s->source, who);
    }
    log_warn(s->scope,
             "source \"%s\" is written by another cht-sync process%s; waiting for it to "
             "stop",
             s->source, who);
    if ((rc = pg_run(s->conn, &s->lim, "SET statement_timeout = 0", err)) != CS_OK ||
        (rc = exec_prepared_within(s, &forever, "claim_wait", 2, params, NULL, err)) != CS_OK)
        return rc;
    snprintf(sql, sizeof(sql), "SET statement_timeout = %d", s->lim.timeout_ms);
    if ((rc = pg_run(s->conn, &s->lim, sql, err)) != CS_OK)
        return rc;
    log_info(s->scope, "the other writer of source \"%s\" stopped: taking over", s->source);
    return CS_OK;
}

/*
 * The default source is the host in lower case; an earlier version used
 * the host as given.  When the progress table knows this source only in
 * another case ("CouchDB/medic"), that one is kept, so that an upgrade
 * never starts a second copy of every document.  Not when COUCHDB_SOURCE
 * names the source: then it is taken as given.
 */
static cs_result adopt_case_variant(store *s, cs_error *err)
{
    const char *param = s->source;
    PGresult *res = NULL;
    cs_result rc;
    char *sql = NULL;

    if (s->source_checked || (s->cfg->couchdb_source && *s->cfg->couchdb_source))
        return CS_OK;
    if (asprintf(&sql,
                 "SELECT source FROM %s WHERE lower(source) = lower($1) ORDER BY source = $1 "
                 "DESC, source LIMIT 1",
                 s->progress) < 0)
        return cs_fail(err, CS_TRANSIENT, "out of memory");
    if (!PQsendQueryParams(s->conn, sql, 1, NULL, &param, NULL, NULL, 0))
        rc = pg_fail(s->conn, NULL, "could not look the source up", err);
    else
        rc = pg_await(s->conn, &s->lim, "could not look the source up", &res, err);
    free(sql);
    if (rc != CS_OK)
        return rc;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pg_fail(s->conn, res, "could not look the source up", err);
    } else if (PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, 0), s->source) != 0) {
        char *found = strdup(PQgetvalue(res, 0, 0));
        if (!found) {
            rc = cs_fail(err, CS_TRANSIENT, "out of memory");
        } else {
            log_info(s->scope, "keeping the existing source \"%s\" (the host differs only by case)",
                     found);
            free(s->source);
            s->source = found;
        }
    }
    if (rc == CS_OK)
        s->source_checked = true;
    PQclear(res);
    return rc;
}

cs_result store_open(store *s, bool wait, char **seq, bool *vanished, cs_error *err)
{
    const char *param;
    PGresult *res;
    cs_result rc;
    char *sql = NULL;

    *seq = NULL;
    if (s->conn && PQstatus(s->conn) != CONNECTION_OK)
        store_disconnect(s);
    if (!s->conn) {
        if (!(s->conn = pg_open(s->cfg, "cht-sync", &s->lim, err)))
            return err->code;
        if ((rc = prepare_all(s, err)) != CS_OK || (rc = adopt_case_variant(s, err)) != CS_OK ||
            (rc = claim_source(s, wait, err)) != CS_OK) {
            store_disconnect(s);
            return rc;
        }
    }
    param = s->source; /* adopt_case_variant may have replaced it */
    if (vanished)
        *vanished = false;
    if (asprintf(&sql,
                 "SELECT seq, resync_started_at IS NOT NULL, vanished_at IS NOT NULL FROM %s "
                 "WHERE source = $1",
                 s->progress) < 0)
        return cs_fail(err, CS_TRANSIENT, "out of memory");
    if (!PQsendQueryParams(s->conn, sql, 1, NULL, &param, NULL, NULL, 0))
        rc = pg_fail(s->conn, NULL, "could not read the checkpoint", err);
    else
        rc = pg_await(s->conn, &s->lim, "could not read the checkpoint", &res, err);
    free(sql);
    if (rc != CS_OK)
        return rc;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pg_fail(s->conn, res, "could not read the checkpoint", err);
        PQclear(res);
        return rc;
    }
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) {
        *seq = strdup(PQgetvalue(res, 0, 0));
        s->resyncing = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
        if (vanished)
            *vanished = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
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
    return exec_prepared_within(s, &s->lim, name, n, params, keep, err);
}

static cs_result exec_prepared_within(store *s, const pg_limits *lim, const char *name, int n,
                                      const char *const *params, PGresult **keep, cs_error *err)
{
    PGresult *res = NULL;
    ExecStatusType st;
    cs_result rc;

    if (!PQsendQueryPrepared(s->conn, name, n, params, NULL, NULL, 0))
        return pg_fail(s->conn, NULL, name, err);
    if ((rc = pg_await(s->conn, lim, name, &res, err)) != CS_OK)
        return rc;
    st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = pg_fail(s->conn, res, name, err);
    if (keep && rc == CS_OK)
        *keep = res;
    else
        PQclear(res);
    return rc;
}

void store_copy_escaped(buf *b, const char *p, size_t n)
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
    PGresult *res = NULL;
    cs_result rc = CS_OK;
    int sent;

    if (!PQsendQuery(s->conn, "COPY pg_temp.cs_stage (ord, _id, _deleted, doc) FROM STDIN"))
        return pg_fail(s->conn, NULL, "could not start COPY", err);
    if ((rc = pg_await(s->conn, &s->lim, "could not start COPY", &res, err)) != CS_OK)
        return rc;
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
        store_copy_escaped(&s->copy, r->id, strlen(r->id));
        buf_puts(&s->copy, r->deleted ? "\tt\t" : "\tf\t");
        store_copy_escaped(&s->copy, r->doc, r->doc_len);
        buf_putc(&s->copy, '\n');
        if (!buf_ok(&s->copy)) {
            PQputCopyEnd(s->conn, "row too large");
            rc = cs_fail(err, CS_TRANSIENT, "out of memory staging \"%s\"", r->id);
            break;
        }
        /* non-blocking: 0 means libpq's buffer is full, send it first */
        while ((sent = PQputCopyData(s->conn, s->copy.data, (int)s->copy.len)) == 0)
            if ((rc = pg_flush(s->conn, &s->lim, "could not send COPY data", err)) != CS_OK)
                return rc;
        if (sent != 1) {
            rc = pg_fail(s->conn, NULL, "could not send COPY data", err);
            break;
        }
    }
    if (rc == CS_OK) {
        while ((sent = PQputCopyEnd(s->conn, NULL)) == 0)
            if ((rc = pg_flush(s->conn, &s->lim, "could not end COPY", err)) != CS_OK)
                return rc;
        if (sent != 1)
            rc = pg_fail(s->conn, NULL, "could not end COPY", err);
    }
    if (rc != CS_OK && PQstatus(s->conn) != CONNECTION_OK)
        return rc;
    {
        cs_error end_err;
        cs_result end = pg_await(s->conn, &s->lim, "COPY failed", &res, &end_err);
        if (end != CS_OK) {
            *err = end_err;
            return end;
        }
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
 * Upserts, in a savepoint rolled back at once, a tombstone of the kind the
 * sync writes for every deleted document: a table that takes our writes at
 * all takes it.  CS_OK means the database accepts writes, so a document
 * that failed alone is at fault; otherwise err says why the database
 * refuses writes (CS_INVALID becomes CS_PERMANENT: it is not a document's).
 */
static cs_result probe_writes(store *s, cs_error *err)
{
    const char *params[6] = {s->source, "cht-sync probe",
                             "t",       "{\"_id\": \"cht-sync probe\", \"_deleted\": true}",
                             s->ts,     "t"};
    cs_error probe_err;
    cs_result rc, undo;

    if ((rc = pg_run(s->conn, &s->lim, "SAVEPOINT probe", err)) != CS_OK)
        return rc;
    rc = exec_prepared(s, "upsert_one", 6, params, NULL, &probe_err);
    undo = pg_run(s->conn, &s->lim, "ROLLBACK TO SAVEPOINT probe", err);
    if (rc != CS_OK) {
        *err = probe_err;
        cs_error_prefix(err, "PostgreSQL refuses every write, not only a document's: ");
        return rc == CS_INVALID ? CS_PERMANENT : rc;
    }
    return undo;
}

/*
 * The slow path after the batch failed on a statement (not the
 * connection): every row is upserted alone in a savepoint.  A row that
 * fails alone, while a harmless write still succeeds (probe_writes), is the
 * document's fault whatever the SQLSTATE (a value jsonb cannot hold, a
 * constraint an operator added, an _id too long for the index): it is
 * recorded in the rejects table and skipped.  When the harmless write fails
 * too the fault is the database's: the batch fails and is retried, nothing
 * is rejected.  Transient failures (lost connection, deadlock, time-outs)
 * fail the batch as well.  Rows are taken in feed order, so the last
 * change of an id wins here too.
 */
static cs_result upsert_one_by_one(store *s, const batch *b, store_stats *st, cs_error *err)
{
    cs_result rc;

    for (size_t i = 0; i < b->nrows; i++) {
        const batch_row *r = &b->rows[i];
        const char *params[6] = {s->source, r->id, r->deleted ? "t" : "f",
                                 r->doc,    s->ts, s->rewrite ? "t" : "f"};
        cs_error row_err;

        if (!r->doc)
            continue;
        if ((rc = pg_run(s->conn, &s->lim, "SAVEPOINT row", err)) != CS_OK)
            return rc;
        rc = exec_prepared(s, "upsert_one", 6, params, NULL, &row_err);
        if (rc == CS_OK)
            rc = exec_prepared(s, "unreject_one", 2, params, NULL, &row_err);
        if (rc == CS_OK) {
            st->stored++;
        } else if (rc != CS_INVALID && rc != CS_PERMANENT) {
            *err = row_err;
            return rc;
        } else if (PQstatus(s->conn) != CONNECTION_OK) {
            *err = row_err;
            return CS_TRANSIENT;
        } else {
            if ((rc = pg_run(s->conn, &s->lim, "ROLLBACK TO SAVEPOINT row", err)) != CS_OK ||
                (rc = probe_writes(s, err)) != CS_OK)
                return rc;
            if ((rc = reject(s, r, row_err.msg, err)) != CS_OK)
                return rc;
            st->rejected++;
        }
        if ((rc = pg_run(s->conn, &s->lim, "RELEASE SAVEPOINT row", err)) != CS_OK)
            return rc;
    }
    return CS_OK;
}

/*
 * docs/ordering.md, steps 2 and 3: the raw table's lock, shared by every
 * writer of the table in every process and held until the transaction
 * ends, then the batch's timestamp (into s->ts), strictly after every
 * timestamp already visible.
 */
static cs_result lock_raw(store *s, cs_error *err)
{
    const char *param = s->raw_name;
    PGresult *res = NULL;
    cs_result rc;

    if ((rc = exec_prepared(s, "lock", 1, &param, NULL, err)) != CS_OK)
        return rc;
    if ((rc = exec_prepared(s, "batch_ts", 0, NULL, &res, err)) != CS_OK)
        return rc;
    snprintf(s->ts, sizeof(s->ts), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return CS_OK;
}

static cs_result write_changes(store *s, const batch *b, bool one_by_one, store_stats *st,
                               cs_error *err)
{
    char pending[32];
    const char *params[5];
    PGresult *res = NULL;
    cs_result rc;
    bool any_doc = false;
    bool finish_resync = b->caught_up && (s->resyncing || b->restart);

    s->rewrite = s->resyncing || b->restart;

    memset(st, 0, sizeof(*st));
    for (size_t i = 0; i < b->nrows && !any_doc; i++)
        any_doc = b->rows[i].doc != NULL;
    if ((rc = pg_run(s->conn, &s->lim, "BEGIN", err)) != CS_OK)
        return rc;
    snprintf(pending, sizeof(pending), "%lld",
             b->pending > 2147483647LL ? 2147483647LL : b->pending);
    /* the staging COPY runs in parallel with other writers: before the lock */
    if (any_doc && !one_by_one && (rc = stage_copy(s, b, err)) != CS_OK)
        goto fail;
    if ((any_doc || finish_resync || b->restart) && (rc = lock_raw(s, err)) != CS_OK)
        goto fail;
    if (b->restart) {
        /* the resync starts at this batch's timestamp (see "progress") */
        params[0] = s->source;
        params[1] = "0";
        params[2] = NULL;
        params[3] = "start";
        params[4] = s->ts;
        if ((rc = exec_prepared(s, "progress", 5, params, NULL, err)) != CS_OK)
            goto fail;
    }
    if (any_doc && one_by_one) {
        if ((rc = upsert_one_by_one(s, b, st, err)) != CS_OK)
            goto fail;
    } else if (any_doc) {
        params[0] = s->source;
        params[1] = s->ts;
        params[2] = s->rewrite ? "t" : "f";
        if ((rc = exec_prepared(s, "unreject", 1, params, NULL, err)) != CS_OK)
            goto fail;
        if ((rc = exec_prepared(s, "upsert", 3, params, &res, err)) != CS_OK)
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
    if (finish_resync) {
        params[0] = s->source;
        params[1] = s->ts;
        if ((rc = exec_prepared(s, "mark_stale", 2, params, &res, err)) != CS_OK)
            goto fail;
        st->marked_deleted = strtoull(PQcmdTuples(res), NULL, 10);
        PQclear(res);
    }
    params[0] = s->source;
    params[1] = b->last_seq;
    params[2] = b->has_pending ? pending : NULL;
    params[3] = finish_resync ? "finish" : NULL;
    params[4] = NULL;
    if ((rc = exec_prepared(s, "progress", 5, params, NULL, err)) != CS_OK)
        goto fail;
    /* delivered at commit, only if the transaction commits */
    params[0] = s->raw_name;
    if ((st->stored || st->marked_deleted) &&
        (rc = exec_prepared(s, "notify", 1, params, NULL, err)) != CS_OK)
        goto fail;
    if ((rc = pg_run(s->conn, &s->lim, "COMMIT", err)) != CS_OK)
        return rc;
    if (b->restart)
        s->resyncing = true;
    if (b->caught_up)
        s->resyncing = false;
    return CS_OK;

fail:
    store_rollback(s->conn, &s->lim);
    return rc;
}

bool store_record_failure(store *s, const char *msg)
{
    const char *params[3] = {s->source, msg, "f"};
    cs_error ignored;

    return s->conn && PQstatus(s->conn) == CONNECTION_OK &&
           exec_prepared(s, "failed", 3, params, NULL, &ignored) == CS_OK;
}

cs_result store_write(store *s, const batch *b, store_stats *st, cs_error *err)
{
    const char *params[5];
    char pending[32];
    cs_result rc;

    memset(st, 0, sizeof(*st));
    if (!s->conn)
        return cs_fail(err, CS_TRANSIENT, "not connected");
    switch (b->kind) {
    case BATCH_CHANGES:
        rc = write_changes(s, b, false, st, err);
        /* a statement failed, not the connection: find out whether a
         * document is at fault by storing each one alone */
        if ((rc == CS_INVALID || rc == CS_PERMANENT) && PQstatus(s->conn) == CONNECTION_OK) {
            log_warn(s->scope,
                     "PostgreSQL refused the batch (%s); storing it row by row to find the "
                     "documents at fault",
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
        params[4] = NULL;
        return exec_prepared(s, "progress", 5, params, NULL, err);
    case BATCH_FAILED:
        params[0] = s->source;
        params[1] = b->error;
        params[2] = b->vanished ? "t" : "f";
        return exec_prepared(s, "failed", 3, params, NULL, err);
    case BATCH_END:
        return CS_OK;
    }
    return CS_OK;
}
