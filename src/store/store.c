/*
 * store.c - the hot write path of the store (see store.h); schema set-up
 * and migration are in schema.c.
 *
 * Per batch, in one transaction (docs/sync.md, "One transaction per batch"):
 *   staged: BEGIN; COPY pg_temp.cs_stage (ord, _id, _deleted, doc) FROM STDIN
 *           then, in one pipeline: the raw table's advisory lock, the batch's
 *           one timestamp (docs/ordering.md: commit order and saved_timestamp
 *           agree), the rejects of this batch's ids removed, the upsert
 *           (DISTINCT ON (_id) ... ORDER BY ord DESC, so the last change of an
 *           id within the batch wins, ON CONFLICT (_id, source) DO UPDATE),
 *           the rows the parser refused, the checkpoint, NOTIFY when raw rows
 *           were written, COMMIT
 *   direct: (the batch's ids differ from each other and, as far as we know,
 *           from the table's) BEGIN, the lock and the timestamp in one
 *           pipeline, COPY straight into the raw table, then the rest in a
 *           second pipeline; an id already stored fails the COPY, and the
 *           batch is stored staged
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
    bool source_checked;    /* adopt_case_variant ran */
    char *raw;              /* "schema"."table" */
    char *progress;         /* "schema"."couchdb_progress" */
    char *rejects;          /* "schema"."table_rejects" */
    char *raw_name;         /* schema.table, unquoted: the lock key's text and the NOTIFY payload */
    buf copy;               /* a COPY row's fields before its document */
    char ts[64];            /* the batch's saved_timestamp, as PostgreSQL printed it */
    int64_t ts_us;          /* the same, in microseconds since 2000-01-01 (binary COPY) */
    bool rewrite;           /* this batch rewrites unchanged revisions too (a resync) */
    char *copy_raw;         /* COPY straight into the raw table */
    int direct_pause;       /* transactions to stage before trying direct again */
    const batch_row **rows; /* the rows of the group being written (txn) */
    size_t rows_cap;
};

/* after a direct COPY met an id already stored, this many transactions
 * go staged before the next try: at most one wasted COPY in DIRECT_PAUSE + 1
 * when documents are edited, none while catching up */
#define DIRECT_PAUSE 16

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
    if (s->raw &&
        asprintf(&s->copy_raw,
                 "COPY %s (saved_timestamp, _id, _deleted, source, doc) FROM STDIN (FORMAT binary)",
                 s->raw) < 0)
        s->copy_raw = NULL;
    if (!s->source || !s->scope || !s->raw || !s->progress || !s->rejects || !s->raw_name ||
        !s->copy_raw) {
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
    free(s->copy_raw);
    free(s->rows);
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
        /* the batch's timestamp, set by "batch_ts" after the lock in the same
         * transaction: statements sent in one pipeline with it need not wait
         * for it to come back; a subquery, so that it is read once */
#define BATCH_TS "(SELECT current_setting('cht_sync.ts')::timestamp AS v)"
        /* a replayed revision already stored is not written again (no new
         * saved_timestamp for the models, no WAL); $N true rewrites it anyway:
         * a resync must touch every row the new database still has */
#define UNCHANGED_SKIP(rewrite)                                                                    \
    "WHERE " rewrite "::boolean OR t.doc->'_rev' IS DISTINCT FROM EXCLUDED.doc->'_rev' OR "        \
    "t._deleted IS DISTINCT FROM EXCLUDED._deleted"
    PREPARE("upsert",
            "INSERT INTO %s AS t (saved_timestamp, _id, _deleted, source, doc) "
            "SELECT ts.v, _id, _deleted, $1, doc FROM " BATCH_TS " ts, "
            "(SELECT DISTINCT ON (_id) _id, _deleted, doc FROM pg_temp.cs_stage "
            "ORDER BY _id, ord DESC) s "
            "ON CONFLICT (_id, source) DO UPDATE SET saved_timestamp = EXCLUDED.saved_timestamp, "
            "_deleted = EXCLUDED._deleted, doc = EXCLUDED.doc " UNCHANGED_SKIP("$2"),
            s->raw);
    PREPARE("unreject",
            "DELETE FROM %s r USING pg_temp.cs_stage s WHERE r.source = $1 AND r._id_md5 = "
            "md5(s._id)::uuid",
            s->rejects);
    /* after a direct COPY: the rows it wrote carry the batch's timestamp */
    PREPARE("unreject_written",
            "DELETE FROM %s r WHERE r.source = $1 AND EXISTS (SELECT 1 FROM %s t, " BATCH_TS
            " ts WHERE t._id = r._id AND t.source = $1 AND t.saved_timestamp = ts.v)",
            s->rejects, s->raw);
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
    /* $2 seq (NULL: keep), $3 pending, $4 'start' / 'finish' / NULL; a
     * resync's start is the batch's timestamp: in the sync's own order
     * (every row written before it has an older saved_timestamp, every row
     * the resync writes has it or a later one), never PostgreSQL's clock */
    PREPARE("progress",
            "INSERT INTO %s AS p (seq, pending, updated_at, source, error, resync_started_at, "
            "resync_from) VALUES (COALESCE($2, '0'), $3::integer, now(), $1, NULL, CASE WHEN $4 "
            "= 'start' THEN now() END, CASE WHEN $4 = 'start' THEN (SELECT v FROM " BATCH_TS
            " ts) END) ON "
            "CONFLICT (source) DO UPDATE SET seq = COALESCE($2, p.seq), pending = $3::integer, "
            "updated_at = now(), error = NULL, vanished_at = NULL, resync_started_at = CASE $4 "
            "WHEN 'start' THEN "
            "now() WHEN 'finish' THEN NULL ELSE p.resync_started_at END, resync_from = CASE $4 "
            "WHEN 'start' THEN (SELECT v FROM " BATCH_TS " ts) WHEN 'finish' THEN NULL ELSE "
            "p.resync_from END",
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
            "UPDATE %s AS t SET _deleted = true, saved_timestamp = ts.v, "
            "doc = jsonb_build_object('_id', t._id, '_rev', t.doc->'_rev', '_deleted', true) "
            "FROM %s p, " BATCH_TS
            " ts WHERE p.source = $1 AND t.source = $1 AND t._deleted IS NOT TRUE AND "
            "p.resync_started_at IS NOT NULL AND t.saved_timestamp < coalesce(p.resync_from, "
            "p.resync_started_at AT TIME ZONE 'UTC')",
            s->raw, s->progress);
    /* docs/ordering.md: one lock per raw table, taken after the staging COPY
     * and held to the commit; the batch's timestamp is read after it, in a
     * statement of its own so that its snapshot sees the previous holder's
     * commit */
    PREPARE("lock", "SELECT pg_advisory_xact_lock(hashtextextended('cht-sync raw ' || $1, 0))");
    /* the text (for text parameters) and microseconds since 2000-01-01
     * (binary COPY), exact on every version: whole days, then the time of
     * day, whose float seconds round to the right microsecond */
    PREPARE("batch_ts",
            "SELECT v, (v::timestamp::date - date '2000-01-01')::int8 * 86400000000 + "
            "round(extract(epoch FROM v::timestamp::time) * 1000000)::int8 FROM (SELECT "
            "set_config('cht_sync.ts', greatest(clock_timestamp() AT TIME ZONE 'UTC', "
            "max(saved_timestamp) + interval '1 microsecond')::text, true) AS v FROM %s) ts",
            s->raw);
    /* only when this batch wrote raw rows: no other transaction writes
     * this timestamp, so a row carrying it is one of ours */
    PREPARE(
        "notify",
        "SELECT pg_notify('cht_sync', $1) FROM %s WHERE saved_timestamp = (SELECT v FROM " BATCH_TS
        " ts) LIMIT 1",
        s->raw);
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
#undef BATCH_TS
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

/* What the transaction of one group of consecutive batches stores. */
typedef struct {
    const batch *first, *last;
    const batch_row **rows; /* every row of the group, in feed order (s->rows) */
    size_t nrows;
    const char *last_seq; /* the checkpoint: the latest batch's that has one */
    bool any_doc;         /* some row has a document to upsert */
    bool finish_resync;   /* the group catches up with a resync */
    const char *pending;
} txn;

/* false when out of memory for the rows' index */
static bool txn_init(txn *t, store *s, const batch *const *group, size_t n, char *pending,
                     size_t pending_size)
{
    size_t total = 0;

    for (size_t g = 0; g < n; g++)
        total += group[g]->nrows;
    if (total > s->rows_cap) {
        const batch_row **rows = realloc(s->rows, total * sizeof(*rows));
        if (!rows)
            return false;
        s->rows = rows;
        s->rows_cap = total;
    }
    t->first = group[0];
    t->last = group[n - 1];
    t->rows = s->rows;
    t->nrows = 0;
    t->last_seq = NULL;
    t->any_doc = false;
    for (size_t g = 0; g < n; g++) {
        for (size_t i = 0; i < group[g]->nrows; i++) {
            t->rows[t->nrows++] = &group[g]->rows[i];
            t->any_doc = t->any_doc || group[g]->rows[i].doc != NULL;
        }
        if (group[g]->last_seq)
            t->last_seq = group[g]->last_seq;
    }
    t->finish_resync = t->last->caught_up && (s->resyncing || t->first->restart);
    snprintf(pending, pending_size, "%lld",
             t->last->pending > 2147483647LL ? 2147483647LL : t->last->pending);
    t->pending = t->last->has_pending ? pending : NULL;
    return true;
}

/* big-endian integers of PostgreSQL's binary COPY format */
static void put_be(buf *b, uint64_t v, int bytes)
{
    char out[8];

    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        out[i] = (char)(v & 0xff);
    buf_append(b, out, (size_t)bytes);
}

/* one field: its length, then its bytes */
static void put_field(buf *b, const void *data, size_t len)
{
    put_be(b, len, 4);
    buf_append(b, data, len);
}

/* hands data to libpq; non-blocking: 0 means its buffer is full, send it first */
static cs_result put_copy(store *s, const char *data, size_t len, cs_error *err)
{
    int sent;

    while ((sent = PQputCopyData(s->conn, data, (int)len)) == 0) {
        cs_result rc = pg_flush(s->conn, &s->lim, "could not send COPY data", err);
        if (rc != CS_OK)
            return rc;
    }
    return sent == 1 ? CS_OK : pg_fail(s->conn, NULL, "could not send COPY data", err);
}

/*
 * COPYs the documents of the batch, in feed order, in PostgreSQL's binary
 * COPY format (a header; per row the field count, then each field's length
 * and bytes; -1 at the end): into the staging table (staged: ord, _id,
 * _deleted, doc) or straight into the raw table (saved_timestamp = the
 * batch's timestamp s->ts_us, _id, _deleted, source, doc).  Nothing to
 * escape on our side, no line to scan and no timestamp to parse on the
 * server's: 7-12 % less time than the same COPY as text (docs/sync.md).
 * *unique (when not NULL) tells that the COPY failed on a unique index
 * (SQLSTATE 23505).
 */
static cs_result copy_group(store *s, const char *command, const txn *t, bool staged, bool *unique,
                            cs_error *err)
{
    static const char header[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
    static const char jsonb_version = 1;
    PGresult *res = NULL;
    cs_result rc = CS_OK;
    int sent;

    if (!PQsendQuery(s->conn, command))
        return pg_fail(s->conn, NULL, "could not start COPY", err);
    if ((rc = pg_await(s->conn, &s->lim, "could not start COPY", &res, err)) != CS_OK)
        return rc;
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        rc = pg_fail(s->conn, res, "could not start COPY", err);
        PQclear(res);
        return rc;
    }
    PQclear(res);
    rc = put_copy(s, header, sizeof(header), err);
    for (size_t i = 0; i < t->nrows && rc == CS_OK; i++) {
        const batch_row *r = t->rows[i];
        if (!r->doc)
            continue;
        /* every field but the document, whose bytes go to libpq as they are */
        buf_reset(&s->copy);
        put_be(&s->copy, staged ? 4 : 5, 2);
        if (staged) {
            put_be(&s->copy, 4, 4);
            put_be(&s->copy, i, 4);
        } else {
            put_be(&s->copy, 8, 4);
            put_be(&s->copy, (uint64_t)s->ts_us, 8);
        }
        put_field(&s->copy, r->id, strlen(r->id));
        put_field(&s->copy, r->deleted ? "\1" : "\0", 1);
        if (!staged)
            put_field(&s->copy, s->source, strlen(s->source));
        put_be(&s->copy, r->doc_len + 1, 4);
        buf_append(&s->copy, &jsonb_version, 1);
        if (!buf_ok(&s->copy) || r->doc_len >= INT32_MAX) {
            PQputCopyEnd(s->conn, "row too large");
            rc = cs_fail(err, CS_TRANSIENT, "out of memory staging \"%s\"", r->id);
            break;
        }
        if ((rc = put_copy(s, s->copy.data, s->copy.len, err)) == CS_OK)
            rc = put_copy(s, r->doc, r->doc_len, err);
    }
    if (rc == CS_OK)
        rc = put_copy(s, "\377\377", 2, err); /* the trailer: a field count of -1 */
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
        if (rc == CS_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
            const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            if (unique)
                *unique = state && strcmp(state, "23505") == 0;
            rc = pg_fail(s->conn, res, "COPY failed", err);
        }
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
static cs_result upsert_one_by_one(store *s, const txn *t, store_stats *st, cs_error *err)
{
    cs_result rc;

    for (size_t i = 0; i < t->nrows; i++) {
        const batch_row *r = t->rows[i];
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

/* the batch's timestamp, from the result of "batch_ts" */
static void set_ts(store *s, const PGresult *res)
{
    snprintf(s->ts, sizeof(s->ts), "%s", PQgetvalue(res, 0, 0));
    s->ts_us = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
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
    set_ts(s, res);
    PQclear(res);
    return CS_OK;
}

/*
 * Whether the ids of the batch's documents differ from each other, so that
 * the batch can go straight into the raw table (no "last change wins" to
 * sort out).  Compares 64-bit hashes: a collision only costs the staged
 * path.  false when out of memory.
 */
static bool ids_distinct(const txn *t)
{
    size_t cap = 16;
    uint64_t *slots;
    bool distinct = true;

    while (cap < 2 * t->nrows)
        cap *= 2;
    if (!(slots = calloc(cap, sizeof(*slots))))
        return false;
    for (size_t i = 0; i < t->nrows && distinct; i++) {
        const batch_row *r = t->rows[i];
        uint64_t h = 1469598103934665603ULL;
        size_t j;
        if (!r->doc)
            continue;
        for (const unsigned char *p = (const unsigned char *)r->id; *p; p++)
            h = (h ^ *p) * 1099511628211ULL;
        h |= 1; /* 0 marks a free slot */
        for (j = h & (cap - 1); slots[j] && slots[j] != h; j = (j + 1) & (cap - 1))
            ;
        distinct = slots[j] != h;
        slots[j] = h;
    }
    free(slots);
    return distinct;
}

/* Queues one prepared statement of a pipeline. */
static cs_result send_prepared(store *s, const char *name, int n, const char *const *params,
                               int *sent, cs_error *err)
{
    if (!PQsendQueryPrepared(s->conn, name, n, params, NULL, NULL, 0))
        return pg_fail(s->conn, NULL, name, err);
    (*sent)++;
    return CS_OK;
}

/*
 * The end of a fast transaction, queued in its pipeline: the rejects, the
 * stale rows of a resync that catches up (*stale_at: that statement's
 * index), the checkpoint, NOTIFY and COMMIT.
 */
static cs_result send_tail(store *s, const txn *t, int *sent, int *stale_at, cs_error *err)
{
    const char *params[4] = {s->source};
    cs_result rc;

    for (size_t i = 0; i < t->nrows; i++) {
        const batch_row *r = t->rows[i];
        const char *p[5] = {s->source, r->id, r->rev, r->seq, r->reject_reason};
        if (!r->reject_reason)
            continue;
        log_warn(s->scope, "rejected document \"%s\" (rev %s): %s", r->id, r->rev ? r->rev : "?",
                 r->reject_reason);
        if ((rc = send_prepared(s, "reject", 5, p, sent, err)) != CS_OK)
            return rc;
    }
    if (t->finish_resync) {
        *stale_at = *sent;
        if ((rc = send_prepared(s, "mark_stale", 1, params, sent, err)) != CS_OK)
            return rc;
    }
    params[1] = t->last_seq;
    params[2] = t->pending;
    params[3] = t->finish_resync ? "finish" : NULL;
    if ((rc = send_prepared(s, "progress", 4, params, sent, err)) != CS_OK)
        return rc;
    /* delivered at commit, only if the transaction commits */
    params[0] = s->raw_name;
    if ((t->any_doc || t->finish_resync) &&
        (rc = send_prepared(s, "notify", 1, params, sent, err)) != CS_OK)
        return rc;
    if (!PQsendQueryParams(s->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0))
        return pg_fail(s->conn, NULL, "could not commit", err);
    (*sent)++;
    return CS_OK;
}

/* Sends the sync of a pipeline whose first sent statements are queued and
 * reads their results into res; rc: how the queueing went. */
static cs_result finish_pipeline(store *s, cs_result rc, PGresult **res, int sent, cs_error *err)
{
    cs_error end_err;
    cs_result end =
        pg_pipeline_finish(s->conn, &s->lim, "could not store the batch", res, sent, &end_err);
    if (rc == CS_OK && end != CS_OK) {
        *err = end_err;
        return end;
    }
    return rc;
}

/*
 * The fast path.  Staged (any group), in three round trips: "BEGIN; COPY"
 * into the staging table (before the lock: in parallel with other
 * writers), the COPY data, then one pipeline (pg.h) of the lock, the
 * timestamp (docs/ordering.md, steps 2 and 3: each a statement of its own,
 * run in order by the server, so the timestamp's snapshot is taken after
 * the lock is granted), the upsert, the rejects, the checkpoint, NOTIFY and
 * COMMIT.  Direct (ids new to the table, none twice in the group): BEGIN,
 * the lock and the timestamp in one pipeline, a COPY straight into the raw
 * table under the lock (no staging table, no sort, no upsert), then the
 * rest; *unique tells that an id was not new after all (the transaction is
 * rolled back: store it staged).
 */
static cs_result write_fast(store *s, const txn *t, bool direct, bool *unique, store_stats *st,
                            cs_error *err)
{
    const char *params[4];
    PGresult **res = NULL;
    size_t nrej = 0;
    int nstmt, sent = 0, upsert_at = -1, stale_at = -1;
    bool lock = t->any_doc || t->finish_resync || t->first->restart;
    cs_result rc;

    *unique = false;
    for (size_t i = 0; i < t->nrows; i++)
        nrej += t->rows[i]->reject_reason != NULL;
    nstmt = (int)nrej + 10;
    if (!(res = calloc((size_t)nstmt, sizeof(*res))))
        return cs_fail(err, CS_TRANSIENT, "out of memory");
    params[0] = s->raw_name;
    if (direct) {
        if ((rc = pg_pipeline_start(s->conn, "could not store the batch", err)) != CS_OK)
            goto out;
        if (!PQsendQueryParams(s->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
            rc = pg_fail(s->conn, NULL, "could not begin", err);
        else if (sent++, (rc = send_prepared(s, "lock", 1, params, &sent, err)) == CS_OK)
            rc = send_prepared(s, "batch_ts", 0, NULL, &sent, err);
        if ((rc = finish_pipeline(s, rc, res, sent, err)) != CS_OK)
            goto out;
        set_ts(s, res[2]);
        if ((rc = copy_group(s, s->copy_raw, t, false, unique, err)) != CS_OK)
            goto out;
        for (int i = 0; i < sent; i++) {
            PQclear(res[i]);
            res[i] = NULL;
        }
        sent = 0;
        if ((rc = pg_pipeline_start(s->conn, "could not store the batch", err)) != CS_OK)
            goto out;
        params[0] = s->source;
        if ((rc = send_prepared(s, "unreject_written", 1, params, &sent, err)) == CS_OK)
            rc = send_tail(s, t, &sent, &stale_at, err);
        if ((rc = finish_pipeline(s, rc, res, sent, err)) != CS_OK)
            goto out;
        for (size_t i = 0; i < t->nrows; i++)
            st->stored += t->rows[i]->doc != NULL;
        st->direct = true;
        goto counted;
    }
    if (t->any_doc)
        rc = copy_group(s,
                        "BEGIN; COPY pg_temp.cs_stage (ord, _id, _deleted, doc) FROM STDIN "
                        "(FORMAT binary)",
                        t, true, NULL, err);
    else
        rc = pg_run(s->conn, &s->lim, "BEGIN", err);
    if (rc != CS_OK)
        goto out;
    if ((rc = pg_pipeline_start(s->conn, "could not store the batch", err)) != CS_OK)
        goto out;
    if (lock && ((rc = send_prepared(s, "lock", 1, params, &sent, err)) != CS_OK ||
                 (rc = send_prepared(s, "batch_ts", 0, NULL, &sent, err)) != CS_OK))
        goto sent;
    params[0] = s->source;
    if (t->first->restart) {
        /* the resync starts at this batch's timestamp (see "progress") */
        params[1] = "0";
        params[2] = NULL;
        params[3] = "start";
        if ((rc = send_prepared(s, "progress", 4, params, &sent, err)) != CS_OK)
            goto sent;
    }
    if (t->any_doc) {
        params[1] = s->rewrite ? "t" : "f";
        if ((rc = send_prepared(s, "unreject", 1, params, &sent, err)) != CS_OK)
            goto sent;
        upsert_at = sent;
        if ((rc = send_prepared(s, "upsert", 2, params, &sent, err)) != CS_OK)
            goto sent;
    }
    rc = send_tail(s, t, &sent, &stale_at, err);
sent:
    /* the statements already queued go out with the sync either way */
    if ((rc = finish_pipeline(s, rc, res, sent, err)) != CS_OK)
        goto out;
    if (upsert_at >= 0)
        st->stored = strtoull(PQcmdTuples(res[upsert_at]), NULL, 10);
counted:
    st->rejected = nrej;
    if (stale_at >= 0)
        st->marked_deleted = strtoull(PQcmdTuples(res[stale_at]), NULL, 10);
out:
    for (int i = 0; i < nstmt; i++)
        PQclear(res[i]);
    free(res);
    if (rc != CS_OK)
        store_rollback(s->conn, &s->lim);
    return rc;
}

/*
 * The slow path after the fast one failed on a statement: the same
 * transaction with each row upserted alone (upsert_one_by_one), one
 * statement at a time.
 */
static cs_result write_one_by_one(store *s, const txn *t, store_stats *st, cs_error *err)
{
    const char *params[4];
    PGresult *res = NULL;
    cs_result rc;

    if ((rc = pg_run(s->conn, &s->lim, "BEGIN", err)) != CS_OK)
        return rc;
    if ((t->any_doc || t->finish_resync || t->first->restart) && (rc = lock_raw(s, err)) != CS_OK)
        goto fail;
    params[0] = s->source;
    if (t->first->restart) {
        params[1] = "0";
        params[2] = NULL;
        params[3] = "start";
        if ((rc = exec_prepared(s, "progress", 4, params, NULL, err)) != CS_OK)
            goto fail;
    }
    if (t->any_doc && (rc = upsert_one_by_one(s, t, st, err)) != CS_OK)
        goto fail;
    for (size_t i = 0; i < t->nrows; i++) {
        if (t->rows[i]->reject_reason) {
            if ((rc = reject(s, t->rows[i], t->rows[i]->reject_reason, err)) != CS_OK)
                goto fail;
            st->rejected++;
        }
    }
    if (t->finish_resync) {
        if ((rc = exec_prepared(s, "mark_stale", 1, params, &res, err)) != CS_OK)
            goto fail;
        st->marked_deleted = strtoull(PQcmdTuples(res), NULL, 10);
        PQclear(res);
    }
    params[1] = t->last_seq;
    params[2] = t->pending;
    params[3] = t->finish_resync ? "finish" : NULL;
    if ((rc = exec_prepared(s, "progress", 4, params, NULL, err)) != CS_OK)
        goto fail;
    params[0] = s->raw_name;
    if ((st->stored || st->marked_deleted) &&
        (rc = exec_prepared(s, "notify", 1, params, NULL, err)) != CS_OK)
        goto fail;
    return pg_run(s->conn, &s->lim, "COMMIT", err);

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

static cs_result write_changes(store *s, const batch *const *group, size_t n, store_stats *st,
                               cs_error *err)
{
    char pending[32];
    txn t;
    cs_result rc;

    if (!txn_init(&t, s, group, n, pending, sizeof(pending)))
        return cs_fail(err, CS_TRANSIENT, "out of memory");
    s->rewrite = s->resyncing || t.first->restart;
    /* straight into the raw table while that works (catching up reads new
     * ids); after an id that was there already, staged for a while */
    if (t.any_doc && !s->rewrite && s->direct_pause == 0 && ids_distinct(&t)) {
        bool unique = false;
        rc = write_fast(s, &t, true, &unique, st, err);
        if (rc == CS_OK)
            goto stored;
        if (!unique)
            goto failed;
        log_debug(s->scope,
                  "a document of the batch is stored already: staging this and the next %d "
                  "transactions",
                  DIRECT_PAUSE);
        s->direct_pause = DIRECT_PAUSE;
        memset(st, 0, sizeof(*st));
    } else if (s->direct_pause > 0) {
        s->direct_pause--;
    }
    {
        bool unique;
        rc = write_fast(s, &t, false, &unique, st, err);
    }
failed:
    /* a statement failed, not the connection: find out whether a document
     * is at fault by storing each one alone */
    if ((rc == CS_INVALID || rc == CS_PERMANENT) && PQstatus(s->conn) == CONNECTION_OK) {
        log_warn(s->scope,
                 "PostgreSQL refused the batch (%s); storing it row by row to find the "
                 "documents at fault",
                 err->msg);
        memset(st, 0, sizeof(*st));
        rc = write_one_by_one(s, &t, st, err);
    }
    if (rc != CS_OK)
        return rc;
stored:
    st->seq = t.last_seq;
    if (t.first->restart)
        s->resyncing = true;
    if (t.last->caught_up)
        s->resyncing = false;
    return CS_OK;
}

cs_result store_write_group(store *s, const batch *const *group, size_t n, store_stats *st,
                            cs_error *err)
{
    memset(st, 0, sizeof(*st));
    if (!s->conn)
        return cs_fail(err, CS_TRANSIENT, "not connected");
    return write_changes(s, group, n, st, err);
}

cs_result store_write(store *s, const batch *b, store_stats *st, cs_error *err)
{
    const char *params[4];
    char pending[32];

    memset(st, 0, sizeof(*st));
    if (!s->conn)
        return cs_fail(err, CS_TRANSIENT, "not connected");
    switch (b->kind) {
    case BATCH_CHANGES:
        return write_changes(s, &b, 1, st, err);
    case BATCH_IDLE:
        st->seq = b->last_seq;
        snprintf(pending, sizeof(pending), "%lld", b->pending);
        params[0] = s->source;
        params[1] = b->last_seq;
        params[2] = b->has_pending ? pending : NULL;
        params[3] = NULL;
        return exec_prepared(s, "progress", 4, params, NULL, err);
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
