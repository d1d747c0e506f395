/*
 * runner.c - see runner.h.  The SQL of each materialization is built by
 * materialize.c; this file decides which statements run, in which
 * transaction, on which connection.
 */
#include "pipeline/runner.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/monotime.h"
#include "common/stats.h"
#include "pipeline/materialize.h"
#include "common/pg.h"
#include "common/xalloc.h"
#include "pipeline/seed.h"

#define RUNNER_MAX_THREADS 64
/* dbt_results rows older than 14 days go at most this often per session */
#define RESULTS_CLEANUP_PERIOD_S 600.0
/* new rows below this count are not ANALYZEd: the planner's size estimate
 * of a fresh temp table is enough to pick an index join into the target */
#define ANALYZE_MIN_ROWS 1000
/* a reused temp table is emptied with DELETE at most this many runs in a
 * row, then with TRUNCATE, so that its dead rows stay few */
#define TMP_DELETES_MAX 64
/* WARNINGs from the server logged per connection and minute */
#define NOTICE_WARN_MAX 100

/*
 * The session's memory of each incremental model's last batch: a model
 * whose last batch was empty is probed first (SELECT ... LIMIT 1, no DDL);
 * one that had rows goes straight to the temp table, so that a busy model
 * never runs its query twice.  Keyed by relation name, so a reloaded
 * project keeps it.
 */
typedef struct {
    char *relname;
    bool busy;
} pool_batch_memo;

/*
 * A temp table (<model>__cs_incr) that a connection of the pool holds: it
 * is created once per connection and refilled by the model's later runs
 * (INSERT, then emptied before COMMIT) for as long as the model's query
 * returns the same columns (names, type oids and typmods as the query's
 * result describes them: sig); any other shape drops and creates it again.
 * Only the worker of that connection's slot touches the list; a reconnect
 * empties it (the temp tables went with the old server session).  An entry
 * is added only after the transaction that created the table committed.
 */
typedef struct {
    char *relname;
    char *sig;
    pv *cols;    /* the table's columns: name -> format_type */
    int deletes; /* runs emptied with DELETE since the last TRUNCATE */
} pool_tmp;

/* the WARNINGs a connection logged in the current minute (on_notice) */
typedef struct {
    double window_start; /* monotonic seconds */
    long logged, suppressed;
} pool_notices;

/* a target file a session wrote: hashes of its path and its text, its size */
typedef struct {
    unsigned long long path, text;
    long long size;
} pool_file;

struct runner_pool {
    const cs_config *cfg;
    int n;
    PGconn *conns[RUNNER_MAX_THREADS];
    bool setup_done;
    double last_cleanup; /* monotonic seconds of the last dbt_results cleanup, 0: never */
    pthread_mutex_t mu;  /* guards memo */
    pool_batch_memo *memo;
    size_t nmemo;
    pool_tmp *tmps[RUNNER_MAX_THREADS]; /* per connection slot */
    pool_notices notices[RUNNER_MAX_THREADS];
    size_t ntmps[RUNNER_MAX_THREADS];
    /* the target files this session wrote: path hash -> content hash and
     * size, so that an unchanged file is not written again (open with
     * O_TRUNC and the write cost ext4 milliseconds a file, every run) */
    pthread_mutex_t files_mu;
    pool_file *files;
    size_t nfiles, files_cap; /* open addressing, files_cap a power of 2 */
};

runner_pool *runner_pool_new(const cs_config *cfg, int n)
{
    runner_pool *pool = xcalloc(1, sizeof(*pool));
    pool->cfg = cfg;
    pool->n = n < 1 ? 1 : n > RUNNER_MAX_THREADS ? RUNNER_MAX_THREADS : n;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_mutex_init(&pool->files_mu, NULL);
    return pool;
}

/* whether relname's last batch in this session had rows (false: unknown) */
static bool pool_batch_busy(runner_pool *pool, const char *relname)
{
    bool busy = false;
    pthread_mutex_lock(&pool->mu);
    for (size_t k = 0; k < pool->nmemo; k++)
        if (strcmp(pool->memo[k].relname, relname) == 0)
            busy = pool->memo[k].busy;
    pthread_mutex_unlock(&pool->mu);
    return busy;
}

static void pool_batch_note(runner_pool *pool, const char *relname, bool busy)
{
    size_t k;
    pthread_mutex_lock(&pool->mu);
    for (k = 0; k < pool->nmemo; k++)
        if (strcmp(pool->memo[k].relname, relname) == 0)
            break;
    if (k == pool->nmemo) {
        XGROW(pool->memo, pool->nmemo);
        pool->memo[k].relname = xstrdup(relname);
        pool->nmemo++;
    }
    pool->memo[k].busy = busy;
    pthread_mutex_unlock(&pool->mu);
}

/* slot's temp table for relname, NULL when it has none known */
static pool_tmp *slot_tmp(runner_pool *pool, int slot, const char *relname)
{
    for (size_t k = 0; k < pool->ntmps[slot]; k++)
        if (strcmp(pool->tmps[slot][k].relname, relname) == 0)
            return &pool->tmps[slot][k];
    return NULL;
}

static void slot_tmp_forget(runner_pool *pool, int slot, const char *relname)
{
    pool_tmp *t = slot_tmp(pool, slot, relname);
    if (!t)
        return;
    free(t->relname);
    free(t->sig);
    pv_free(t->cols);
    *t = pool->tmps[slot][--pool->ntmps[slot]];
}

/* records a committed temp table; takes sig and cols */
static void slot_tmp_add(runner_pool *pool, int slot, const char *relname, char *sig, pv *cols)
{
    pool_tmp *t;
    slot_tmp_forget(pool, slot, relname);
    XGROW(pool->tmps[slot], pool->ntmps[slot]);
    t = &pool->tmps[slot][pool->ntmps[slot]++];
    t->relname = xstrdup(relname);
    t->sig = sig;
    t->cols = cols;
    t->deletes = 0;
}

static void slot_tmp_clear(runner_pool *pool, int slot)
{
    while (pool->ntmps[slot] > 0)
        slot_tmp_forget(pool, slot, pool->tmps[slot][0].relname);
}

void runner_pool_free(runner_pool *pool)
{
    if (!pool)
        return;
    for (int i = 0; i < pool->n; i++) {
        if (pool->notices[i].suppressed > 0)
            log_warn("postgres", "%ld more warnings were not logged", pool->notices[i].suppressed);
        if (pool->conns[i])
            PQfinish(pool->conns[i]);
        slot_tmp_clear(pool, i);
        free(pool->tmps[i]);
    }
    for (size_t k = 0; k < pool->nmemo; k++)
        free(pool->memo[k].relname);
    free(pool->memo);
    free(pool->files);
    pthread_mutex_destroy(&pool->mu);
    pthread_mutex_destroy(&pool->files_mu);
    free(pool);
}

/*
 * Server messages below an error.  NOTICE and lower ("relation already
 * exists, skipping") are debug output.  A WARNING is what a model's SQL
 * raises about the data (the base models' safe conversions name the
 * document and the column of a value they could not convert: it became
 * NULL), so it is logged as a warning, at most NOTICE_WARN_MAX per
 * connection and minute: a backfill of many bad documents must not flood
 * the log; the number left out is logged when the next minute starts or
 * the pool is freed.
 */
static void on_notice(void *arg, const PGresult *res)
{
    pool_notices *pn = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    double now = monotime_s();

    if (!msg)
        msg = "";
    if (!sev || strcmp(sev, "WARNING") != 0) {
        log_debug("postgres", "%.*s", (int)strcspn(msg, "\n"), msg);
        return;
    }
    if (now - pn->window_start >= 60.0) {
        if (pn->suppressed > 0)
            log_warn("postgres", "%ld more warnings in the last minute were not logged",
                     pn->suppressed);
        pn->window_start = now;
        pn->logged = 0;
        pn->suppressed = 0;
    }
    if (pn->logged >= NOTICE_WARN_MAX) {
        if (pn->suppressed++ == 0)
            log_warn("postgres",
                     "%d warnings in a minute: the rest of this minute's are counted, "
                     "not logged",
                     NOTICE_WARN_MAX);
        return;
    }
    pn->logged++;
    log_warn("postgres", "%.*s", (int)strcspn(msg, "\n"), msg);
}

/* the pool's connection k, (re)connected when needed */
static PGconn *pool_conn(runner_pool *pool, int k, cs_error *err)
{
    if (pool->conns[k] && PQstatus(pool->conns[k]) == CONNECTION_OK)
        return pool->conns[k];
    if (pool->conns[k])
        PQfinish(pool->conns[k]);
    slot_tmp_clear(pool, k); /* its temp tables went with it */
    /* the session's own time zone, as dbt: models' ::date and date_trunc
     * on timestamptz follow the database's setting, not UTC */
    pool->conns[k] = pg_connect_zone(pool->cfg, "cht-sync pipeline", false, err);
    if (pool->conns[k])
        PQsetNoticeReceiver(pool->conns[k], on_notice, &pool->notices[k]);
    return pool->conns[k];
}

/* wall-clock UTC time as text for dbt_results */
static void utc_text(char *out, size_t n)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(out, n, "%04d-%02d-%02d %02d:%02d:%02d.%06ld", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec % 1000000L);
}

/* ---- per-run state ---- */

enum { ST_NONE, ST_PENDING, ST_RUNNING, ST_OK, ST_ERROR, ST_SKIPPED };

typedef struct {
    int status;
    int index; /* "N of M" */
    char start[64], end[64];
    double seconds;
    long rows;
    char *message; /* the error, or the outcome ("INSERT 3") */
} model_result;

typedef struct {
    const dbt_manifest *m;
    runner_pool *pool;
    const runner_opts *o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int *state;
    size_t **effdeps;
    size_t *neffdeps;
    model_result *res;
    int total, started, finished;
    char (*stored)[17]; /* stored fingerprints, "" when none */
    char *kinds;        /* relkind of each model's relation, 0 when absent */
    char *tmp_kinds;    /* of its leftover __cs_tmp / __cs_backup */
    char *bak_kinds;
    /* a model lost its connection to PostgreSQL (a restart, a killed backend): no
     * other model starts and the run is a transient failure, retried as a
     * whole, not a model's error */
    bool lost;
    cs_error lost_err;
    char inv[40];        /* this run's invocation_id */
    runner_tests *tests; /* build and test: the tests' statuses and numbering */
    dbt_run_info run;    /* what every template of the run sees (invocation_id, flags, ...) */
} run_ctx;

static void add_effdep(run_ctx *c, size_t i, size_t d)
{
    for (size_t k = 0; k < c->neffdeps[i]; k++)
        if (c->effdeps[i][k] == d)
            return;
    XGROW(c->effdeps[i], c->neffdeps[i]);
    c->effdeps[i][c->neffdeps[i]++] = d;
}

/* the selected models i waits for: its refs, seen through ephemeral models */
static void collect_effdeps(run_ctx *c, size_t i, size_t from, int depth)
{
    const dbt_node *nd = &c->m->nodes[from];
    if (depth > 1000)
        return;
    for (size_t k = 0; k < nd->ndeps; k++) {
        size_t d = nd->deps[k];
        if (c->m->nodes[d].mat == MAT_EPHEMERAL)
            collect_effdeps(c, i, d, depth + 1);
        else if (c->state[d] != ST_NONE)
            add_effdep(c, i, d);
    }
}

static void print_line(run_ctx *c, size_t i, const char *status_text, const char *detail)
{
    const pl_model *pm = &c->m->p->models[i];
    char left[512], when[16];
    time_t t = time(NULL);
    struct tm tm;
    int n;

    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%H:%M:%S", &tm);
    n = snprintf(left, sizeof(left), "%d of %d %s sql %s model %s.%s ", c->res[i].index, c->total,
                 status_text, dbt_node_mat_name(&c->m->nodes[i]), c->m->nodes[i].schema,
                 c->m->nodes[i].relname);
    (void)pm;
    fprintf(c->o->out, "%s  %s", when, left);
    for (int k = n; k < 72; k++)
        fputc('.', c->o->out);
    fprintf(c->o->out, " [%s]\n", detail);
    fflush(c->o->out);
}

/* ---- queries ---- */

/* appends text to err's message, cut to fit */
static void err_append(cs_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void err_append(cs_error *err, const char *fmt, ...)
{
    size_t l = strlen(err->msg);
    va_list ap;

    if (l + 1 >= sizeof(err->msg))
        return;
    va_start(ap, fmt);
    vsnprintf(err->msg + l, sizeof(err->msg) - l, fmt, ap);
    va_end(ap);
}

/*
 * pg_fail, keeping what PostgreSQL says beyond its first line, as dbt
 * shows it: DETAIL, HINT, and the error's position in sql (the statement
 * that was sent; the position counts characters) as a line and column with
 * the text of that line.  One log line: the parts are joined with "; ".
 */
static cs_result sql_fail(PGconn *conn, const PGresult *res, const char *what, const char *sql,
                          cs_error *err)
{
    cs_result rc = pg_fail(conn, res, what, err);
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
    const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;

    if (detail)
        err_append(err, "; DETAIL:  %s", detail);
    if (hint)
        err_append(err, "; HINT:  %s", hint);
    if (pos && sql) {
        long want = atol(pos), chars = 0, line = 1, col = 1;
        const char *bol = sql, *q = sql;
        for (; *q && chars < want - 1; q++) {
            if (((unsigned char)*q & 0xC0) == 0x80)
                continue; /* a UTF-8 continuation byte: same character */
            chars++;
            col++;
            if (*q == '\n') {
                line++;
                col = 1;
                bol = q + 1;
            }
        }
        err_append(err, "; at line %ld, column %ld of the statement: %.*s", line, col,
                   (int)(strcspn(bol, "\n") > 160 ? 160 : strcspn(bol, "\n")), bol);
    }
    return rc;
}

typedef struct {
    PGconn *conn;
} sql_ud;

/*
 * A numeric value, exact (dbt gives a Decimal): an integer that fits in 64
 * bits is an int; a value a double prints back as the same text ("2.5")
 * is a float; anything else ("2.50", 30 digits) keeps its exact text.
 */
static pv *numeric_cell(const char *v)
{
    char *end, back[64];
    long long i;
    double f;

    errno = 0;
    i = strtoll(v, &end, 10);
    if (*end == '\0' && errno == 0)
        return pv_int(i);
    f = strtod(v, &end);
    snprintf(back, sizeof(back), "%.15g", f);
    if (*end == '\0' && strcmp(back, v) == 0) {
        pv *cell = pv_new(PV_FLOAT);
        cell->f = f;
        return cell;
    }
    return pv_str(v);
}

/* statement()/run_query() of the templates */
static cs_result query_cb(void *ud, const char *sql, pv **out, cs_error *err)
{
    PGconn *conn = ((sql_ud *)ud)->conn;
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    pv *t, *cols, *rows;

    *out = NULL;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        cs_result rc = sql_fail(conn, res, "query failed", sql, err);
        PQclear(res);
        return rc;
    }
    t = pv_new(PV_MAP);
    cols = pv_new(PV_LIST);
    rows = pv_new(PV_LIST);
    for (int f = 0; f < PQnfields(res); f++)
        pv_push(cols, pv_str(PQfname(res, f)));
    for (int r = 0; r < PQntuples(res); r++) {
        pv *row = pv_new(PV_LIST);
        for (int f = 0; f < PQnfields(res); f++) {
            const char *v = PQgetvalue(res, r, f);
            Oid type = PQftype(res, f);
            pv *cell;
            if (PQgetisnull(res, r, f)) {
                cell = pv_new(PV_NULL);
            } else if (type == 16) {
                cell = pv_bool(v[0] == 't');
            } else if (type == 20 || type == 21 || type == 23) {
                cell = pv_int(strtoll(v, NULL, 10));
            } else if (type == 1700) {
                cell = numeric_cell(v);
            } else if (type == 700 || type == 701) {
                cell = pv_new(PV_FLOAT);
                cell->f = strtod(v, NULL);
            } else {
                cell = pv_str(v);
            }
            pv_push(row, cell);
        }
        pv_push(rows, row);
    }
    pv_set(t, "columns", cols);
    pv_set(t, "rows", rows);
    pv_set(t, "status", pv_str(PQcmdStatus(res)));
    pv_set(t, "rows_affected", pv_int(atol(PQcmdTuples(res))));
    PQclear(res);
    *out = t;
    return CS_OK;
}

/* runs sql; *rows gets PQcmdTuples when asked */
static cs_result exec_sql(PGconn *conn, const char *sql, const char *what, long *rows,
                          cs_error *err)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    cs_result rc = CS_OK;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = sql_fail(conn, res, what, sql, err);
    else if (rows)
        *rows = atol(PQcmdTuples(res));
    PQclear(res);
    return rc;
}

/* the columns of a relation, in order */
static cs_result columns_of(PGconn *conn, const char *regclass, pv **out, cs_error *err)
{
    const char *params[1] = {regclass};
    PGresult *res = PQexecParams(
        conn,
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
        "$1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        1, NULL, params, NULL, NULL, 0);
    pv *l;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        cs_result rc = pg_fail(conn, res, "could not read the columns", err);
        PQclear(res);
        return rc;
    }
    l = pv_new(PV_MAP);
    for (int r = 0; r < PQntuples(res); r++)
        pv_set(l, PQgetvalue(res, r, 0), pv_str(PQgetvalue(res, r, 1)));
    PQclear(res);
    *out = l;
    return CS_OK;
}

/* dbt's contract check: the model returns exactly the contract's columns */
static cs_result check_contract(const dbt_node *nd, const pv *cols, const char *file, cs_error *err)
{
    buf missing, extra;
    cs_result rc = CS_OK;

    buf_init(&missing, 0);
    buf_init(&extra, 0);
    for (size_t k = 0; k < nd->contract->n; k++) {
        const char *name = pv_gets(nd->contract->items[k], "name");
        if (name && !pv_get(cols, name))
            buf_printf(&missing, "%s%s", missing.len ? ", " : "", name);
    }
    for (size_t k = 0; k < cols->n; k++) {
        bool found = false;
        for (size_t j = 0; j < nd->contract->n && !found; j++)
            found = pv_gets(nd->contract->items[j], "name") &&
                    strcmp(pv_gets(nd->contract->items[j], "name"), cols->keys[k]) == 0;
        if (!found)
            buf_printf(&extra, "%s%s", extra.len ? ", " : "", cols->keys[k]);
    }
    if (missing.len || extra.len)
        rc = cs_fail(err, CS_INVALID,
                     "%s: the model's columns do not match its contract (missing: %s; not in "
                     "the contract: %s)",
                     file, missing.len ? missing.data : "none", extra.len ? extra.data : "none");
    buf_free(&missing);
    buf_free(&extra);
    return rc;
}

/*
 * What the incremental path needs to know before it touches a temp table,
 * in one round trip (after "BEGIN" when begin is set): the target's
 * columns (*dcols, name -> format_type, owned by the caller) and the
 * shape of the model's query (*sig: each column's name, type oid and
 * typmod, owned by the caller), read from SELECT * FROM (query) LIMIT
 * limit.  With limit 1 this is also the no-op check: *noop is true when
 * the batch is empty and the full path would do nothing either: the
 * contract holds, the column names are distinct and, unless
 * on_schema_change is 'ignore', the same as the target's.  Anything else
 * (rows, a column difference) leaves *noop false, and the caller takes the
 * full path, which reports or applies it.  A failing query fails the model.
 * The query is planned for its first row and builds nothing.
 */
/*
 * Appends the statement that takes model relname's lock for the rest of
 * the transaction: two runs on one schema (two processes, a rolling
 * deploy) build a model one after the other, so that the second sees the
 * first's committed rows (READ COMMITTED: each later statement takes a new
 * snapshot) and never inserts the same batch again.  An advisory lock in
 * the two-key space, (hash of "cht-sync model", hash of "schema"."name"):
 * readers of the model never wait on it.  A hash collision only
 * serializes two models.
 */
static void model_lock_sql(buf *b, const char *schema, const char *relname)
{
    buf rel;
    buf_init(&rel, 0);
    mat_relation(&rel, schema, relname);
    buf_puts(b, "SELECT pg_advisory_xact_lock(hashtext('cht-sync model'), hashtext(");
    mat_quote_literal(b, rel.data ? rel.data : "");
    buf_puts(b, "));\n");
    buf_free(&rel);
}

/* BEGIN and the model's lock (model_lock_sql) */
static cs_result begin_model(PGconn *conn, const char *schema, const char *relname, cs_error *err)
{
    buf b;
    cs_result rc;

    buf_init(&b, 0);
    buf_puts(&b, "BEGIN;\n");
    model_lock_sql(&b, schema, relname);
    rc = exec_sql(conn, b.data, "could not begin", NULL, err);
    buf_free(&b);
    return rc;
}

static cs_result probe_batch(const dbt_node *nd, const pl_model *pm, PGconn *conn,
                             const char *schema, const char *sql, int limit, bool begin, bool *noop,
                             char **sig, pv **dcols, cs_error *err)
{
    const char *osc = pv_gets(nd->config, "on_schema_change");
    bool want_cols = osc && strcmp(osc, "ignore") != 0;
    PGresult *res, *cols_res = NULL, *rows_res = NULL;
    cs_result rc = CS_OK;
    pv *tcols = NULL;
    buf b, rel, sb;

    *noop = false;
    *sig = NULL;
    *dcols = NULL;
    buf_init(&b, 0);
    buf_init(&rel, 0);
    buf_init(&sb, 0);
    mat_relation(&rel, schema, nd->relname);
    if (begin) {
        buf_puts(&b, "BEGIN;\n");
        model_lock_sql(&b, schema, nd->relname);
    }
    buf_puts(&b, "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                 "attrelid = ");
    mat_quote_literal(&b, rel.data);
    buf_puts(&b, "::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;\n");
    buf_puts(&b, "SELECT * FROM ");
    mat_subquery(&b, sql);
    buf_printf(&b, " AS model_subq LIMIT %d", limit);
    if (!PQsendQuery(conn, b.data)) {
        rc = pg_fail(conn, NULL, "could not build the new rows", err);
        goto out;
    }
    /* every result is read, also after an error, so the connection is idle;
     * the lock's result (after BEGIN) is not one of the two */
    while ((res = PQgetResult(conn))) {
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && rc == CS_OK)
            rc = sql_fail(conn, res, "could not build the new rows", b.data, err);
        if (st == PGRES_TUPLES_OK && begin) {
            begin = false;
            PQclear(res);
        } else if (st != PGRES_TUPLES_OK || (cols_res && rows_res)) {
            PQclear(res);
        } else if (!cols_res) {
            cols_res = res;
        } else {
            rows_res = res;
        }
    }
    if (rc != CS_OK)
        goto out;
    if (!cols_res || !rows_res) {
        rc = cs_fail(err, CS_TRANSIENT, "could not build the new rows: results missing");
        goto out;
    }
    *dcols = pv_new(PV_MAP);
    for (int r = 0; r < PQntuples(cols_res); r++)
        pv_set(*dcols, PQgetvalue(cols_res, r, 0), pv_str(PQgetvalue(cols_res, r, 1)));
    for (int f = 0; f < PQnfields(rows_res); f++)
        buf_printf(&sb, "%s\t%u\t%d\n", PQfname(rows_res, f), (unsigned)PQftype(rows_res, f),
                   PQfmod(rows_res, f));
    *sig = xstrdup(sb.data ? sb.data : "");
    if (limit < 1 || PQntuples(rows_res) > 0)
        goto out;
    tcols = pv_new(PV_MAP);
    for (int f = 0; f < PQnfields(rows_res); f++) {
        if (pv_get(tcols, PQfname(rows_res, f)))
            goto out; /* a duplicate name: the temp table reports it */
        pv_set(tcols, PQfname(rows_res, f), pv_new(PV_NULL));
    }
    if (nd->contract && (rc = check_contract(nd, tcols, pm->file, err)) != CS_OK)
        goto out;
    if (want_cols) {
        if ((*dcols)->n != tcols->n)
            goto out;
        for (size_t k = 0; k < (*dcols)->n; k++)
            if (!pv_get(tcols, (*dcols)->keys[k]))
                goto out;
    }
    *noop = true;
out:
    PQclear(cols_res);
    PQclear(rows_res);
    pv_free(tcols);
    buf_free(&b);
    buf_free(&rel);
    buf_free(&sb);
    return rc;
}

static cs_result run_hooks(dbt_worker *w, PGconn *conn, long model, tpl_template *const *hooks,
                           size_t n, const dbt_render_opts *ro, cs_error *err)
{
    buf b;
    cs_result rc = CS_OK;

    buf_init(&b, 0);
    for (size_t i = 0; i < n && rc == CS_OK; i++) {
        buf_reset(&b);
        rc = dbt_render_hook(w, model, hooks[i], ro, &b, err);
        if (rc == CS_OK && b.data && strspn(b.data, " \t\r\n;") != b.len)
            rc = exec_sql(conn, b.data, "hook failed", NULL, err);
    }
    buf_free(&b);
    return rc;
}

/* stores fp as model i's fingerprint (a view's covers its SQL) unless stored */
static cs_result save_fingerprint(run_ctx *c, PGconn *conn, size_t i, const char *fp, cs_error *err)
{
    char uid[512];
    buf b;
    const char *params[2];
    PGresult *res;
    cs_result rc = CS_OK;

    if (strcmp(c->stored[i], fp) == 0)
        return CS_OK;
    dbt_unique_id(c->m->p, i, uid, sizeof(uid));
    buf_init(&b, 0);
    buf_puts(&b, "INSERT INTO ");
    mat_relation(&b, c->m->set.schema, "_cht_sync_models");
    buf_puts(&b, " (name, fingerprint, updated_at) VALUES ($1, $2, now()) ON CONFLICT (name) DO "
                 "UPDATE SET fingerprint = EXCLUDED.fingerprint, updated_at = now()");
    params[0] = uid;
    params[1] = fp;
    res = PQexecParams(conn, b.data, 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = pg_fail(conn, res, "could not store the model's fingerprint", err);
    PQclear(res);
    buf_free(&b);
    return rc;
}

/*
 * A table this runner has no fingerprint for (built by dbt, e.g. by
 * today's CHT Sync) is adopted, and run incrementally, when its columns are
 * the contract's: the same names in the same order with the same types
 * (type oids: a typmod is not compared).  *match false: the table is
 * rebuilt in full.  A model without a contract is always adopted (nothing
 * to compare before its query runs; on_schema_change applies).
 */
static cs_result adoptable(PGconn *conn, const char *schema, const dbt_node *nd, bool *match,
                           cs_error *err)
{
    buf b, rel;
    PGresult *res;
    cs_result rc = CS_OK;

    *match = true;
    if (!nd->contract || nd->contract->type != PV_LIST)
        return CS_OK;
    buf_init(&b, 0);
    buf_init(&rel, 0);
    mat_relation(&rel, schema, nd->relname);
    buf_puts(&b, "SELECT coalesce(array_agg(attname::text ORDER BY attnum) = ARRAY[");
    for (size_t k = 0; k < nd->contract->n; k++) {
        const char *name = pv_gets(nd->contract->items[k], "name");
        if (k)
            buf_putc(&b, ',');
        mat_quote_literal(&b, name ? name : "");
    }
    buf_puts(&b, "]::text[] AND array_agg(atttypid ORDER BY attnum) = ARRAY[");
    for (size_t k = 0; k < nd->contract->n; k++) {
        const char *type = pv_gets(nd->contract->items[k], "data_type");
        buf_puts(&b, k ? ",to_regtype(" : "to_regtype(");
        mat_quote_literal(&b, mat_type(type ? type : ""));
        buf_puts(&b, ")::oid");
    }
    buf_puts(&b, "]::oid[], false) FROM pg_attribute WHERE attrelid = ");
    mat_quote_literal(&b, rel.data);
    buf_puts(&b, "::regclass AND attnum > 0 AND NOT attisdropped");
    res = PQexec(conn, b.data);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = pg_fail(conn, res, "could not read the columns of the existing table", err);
    else
        *match = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    buf_free(&b);
    buf_free(&rel);
    return rc;
}

/*
 * Whether every column type (cols: name -> format_type) has an equality
 * operator, so that MERGE may skip rows whose values did not change.
 */
static bool comparable(const pv *cols)
{
    static const char *const none[] = {"json", "xml",  "point",   "line",  "lseg",
                                       "box",  "path", "polygon", "circle"};
    for (size_t k = 0; k < cols->n; k++) {
        const char *type = pv_s(cols->items[k]);
        for (size_t t = 0; type && t < sizeof(none) / sizeof(none[0]); t++) {
            size_t l = strlen(none[t]);
            /* json, json[] (jsonb compares) */
            if (strncmp(type, none[t], l) == 0 && (type[l] == '\0' || type[l] == '['))
                return false;
        }
    }
    return true;
}

static int mkdirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *s = tmp + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *s = '/';
        }
    }
    return 0;
}

/*
 * Writes text to TARGET/KIND/<package>/<path of the model's file> (KIND
 * "compiled": the model's SQL; "run": the statements a build ran), the
 * way dbt lays out its target path.  path gets the file's name.
 */
static unsigned long long text_hash(const char *s)
{
    unsigned long long h = 1469598103934665603ULL;
    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/*
 * Whether path already holds text as this session wrote it (same content
 * hash, and the file is still there with that size); otherwise notes text
 * as what path will hold.  Thread-safe.
 */
static bool target_unchanged(runner_pool *pool, const char *path, const char *text)
{
    unsigned long long ph = text_hash(path), th = text_hash(text);
    long long size = (long long)(text ? strlen(text) : 0) + 1;
    struct stat st;
    bool same = false;
    size_t k;

    pthread_mutex_lock(&pool->files_mu);
    if ((pool->nfiles + 1) * 2 > pool->files_cap) {
        size_t cap = pool->files_cap ? pool->files_cap * 2 : 256;
        pool_file *nf = xcalloc(cap, sizeof(*nf));
        for (size_t j = 0; j < pool->files_cap; j++) {
            if (!pool->files[j].path)
                continue;
            for (k = pool->files[j].path & (cap - 1); nf[k].path; k = (k + 1) & (cap - 1))
                ;
            nf[k] = pool->files[j];
        }
        free(pool->files);
        pool->files = nf;
        pool->files_cap = cap;
    }
    for (k = ph & (pool->files_cap - 1); pool->files[k].path && pool->files[k].path != ph;
         k = (k + 1) & (pool->files_cap - 1))
        ;
    if (pool->files[k].path == ph)
        same = pool->files[k].text == th && stat(path, &st) == 0 && st.st_size == size;
    else
        pool->nfiles++;
    pool->files[k].path = ph;
    pool->files[k].text = th;
    pool->files[k].size = size;
    pthread_mutex_unlock(&pool->files_mu);
    return same;
}

static cs_result write_target(const run_ctx *c, const char *kind, size_t i, const char *text,
                              char *path, size_t npath, cs_error *err)
{
    const pl_model *pm = &c->m->p->models[i];
    FILE *f;

    snprintf(path, npath, "%s/%s/%s/%s", c->o->target_dir, kind,
             c->m->p->packages[pm->package].name, pm->relpath);
    if (target_unchanged(c->pool, path, text))
        return CS_OK;
    if (mkdirs(path) != 0 || !(f = fopen(path, "w")))
        return cs_fail(err, CS_PERMANENT, "could not write \"%s\": %s", path, strerror(errno));
    fputs(text ? text : "", f);
    fputc('\n', f);
    if (fclose(f) != 0)
        return cs_fail(err, CS_PERMANENT, "could not write \"%s\": %s", path, strerror(errno));
    return CS_OK;
}

/*
 * One model's build, shared by the steps below: what was decided before it
 * started and what it has made so far.  The buffers and the owned
 * pointers are freed by build_model at its end.
 */
typedef struct {
    run_ctx *c;
    dbt_worker *w;
    PGconn *conn;
    int slot; /* the connection's slot in the pool (its temp tables) */
    size_t i;
    const dbt_node *nd;
    const pl_model *pm;
    const char *schema;
    char tmp[256], bak[256], incr[256];
    sql_ud sud;
    dbt_render_opts ro;
    bool full_refresh; /* --full-refresh, unless the model's full_refresh config says otherwise */
    bool incremental;  /* is_incremental(): the table exists, unchanged, no full refresh */
    bool probe;        /* probe with LIMIT 1 before touching the temp table */
    bool in_txn;       /* the build runs in a transaction (false: probe only) */
    buf sql;           /* the compiled SQL */
    buf b;             /* scratch for statements */
    pv *tcols;         /* the new rows' columns: name -> format_type */
    pv *dcols;         /* the target's columns */
    char *sig;         /* the shape of the query's result (probe_batch) */
    bool created;      /* the temp table was (re)created in this transaction */
    long batch;        /* rows in the temp table, emptied before COMMIT */
    long rows;         /* for the progress line and dbt_results */
    char fp[17];       /* the fingerprint stored once built (a view's covers its SQL) */
    buf trace;         /* the statements run, for target/run (when there is a target) */
    bool unchanged;    /* a view whose stored fingerprint is fp: nothing to do */
    bool replaced;     /* a new relation was swapped in (it has no grants yet) */
    char detail[128];  /* the outcome: "INSERT 3", "CREATE VIEW", "SELECT 10" */
} build;

/* the relation kind ('r', 'v', 'm', 0: none) of "schema"."name" in res's column f */
static char kind_at(PGresult *res, int f)
{
    const char *k = PQgetisnull(res, 0, f) ? "" : PQgetvalue(res, 0, f);
    return k[0] == 'p' ? 'r' : k[0];
}

/*
 * Reads again the kinds of model i's relation and of its leftovers: a
 * parent rebuilt earlier in this run dropped the views on it (DROP ...
 * CASCADE of the parent's old relation), so the kinds read at the start
 * of the run may be stale.  A model starts only after every model it refs
 * finished, so what this reads is what the build finds.
 */
static cs_result reread_kinds(build *bd, cs_error *err)
{
    run_ctx *c = bd->c;
    const char *names[3] = {bd->nd->relname, bd->tmp, bd->bak};
    buf rel[3];
    const char *params[3];
    PGresult *res;
    cs_result rc = CS_OK;

    for (int k = 0; k < 3; k++) {
        buf_init(&rel[k], 0);
        mat_relation(&rel[k], bd->schema, names[k]);
        params[k] = rel[k].data;
    }
    res = PQexecParams(bd->conn,
                       "SELECT (SELECT relkind FROM pg_class WHERE oid = to_regclass($1)), "
                       "(SELECT relkind FROM pg_class WHERE oid = to_regclass($2)), "
                       "(SELECT relkind FROM pg_class WHERE oid = to_regclass($3))",
                       3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        rc = pg_fail(bd->conn, res, "could not read the model's relation", err);
    } else {
        c->kinds[bd->i] = kind_at(res, 0);
        c->tmp_kinds[bd->i] = kind_at(res, 1);
        c->bak_kinds[bd->i] = kind_at(res, 2);
    }
    PQclear(res);
    for (int k = 0; k < 3; k++)
        buf_free(&rel[k]);
    return rc;
}

/* is_incremental(), and whether the run starts with a probe (and needs no
 * transaction when the probe finds nothing and there are no hooks) */
static cs_result build_decide(build *bd, cs_error *err)
{
    run_ctx *c = bd->c;
    const dbt_node *nd = bd->nd;
    size_t i = bd->i;
    bool changed = c->stored[i][0] && strcmp(c->stored[i], nd->fingerprint) != 0;
    bool hooks = nd->npre_hooks > 0 || nd->npost_hooks > 0;

    const pv *fr = pv_get(nd->config, "full_refresh");
    /* dbt: the model's full_refresh config, when set, wins over the flag;
     * full_refresh: false also keeps the table through definition changes */
    bool keep = fr && fr->type == PV_BOOL && !fr->b;

    bd->full_refresh = fr && fr->type == PV_BOOL ? fr->b : c->o->full_refresh;
    /* a table with no fingerprint (built by dbt) is adopted when its
     * columns are the contract's, else rebuilt in full */
    if (nd->mat == MAT_INCREMENTAL && c->kinds[i] == 'r' && !c->stored[i][0] && !bd->full_refresh) {
        bool match;
        cs_result rc;
        if ((rc = adoptable(bd->conn, bd->schema, nd, &match, err)) != CS_OK)
            return rc;
        if (!match)
            log_info(bd->pm->name, "existing table without a fingerprint and with columns other "
                                   "than the contract's: rebuilding in full");
        else
            log_info(bd->pm->name, "adopting the existing table (no fingerprint, columns as the "
                                   "contract says)");
        changed = !match;
        keep = keep && match;
    }
    if (nd->mat == MAT_INCREMENTAL) {
        bd->incremental = c->kinds[i] == 'r' && !bd->full_refresh && (!changed || keep);
        if (changed && c->stored[i][0] && c->kinds[i] == 'r' && !bd->full_refresh)
            log_info(bd->pm->name, keep ? "definition changed since the last run; full_refresh "
                                          "is false: running incrementally"
                                        : "definition changed since the last run: rebuilding "
                                          "in full");
    }
    bd->ro.is_incremental = bd->incremental;
    bd->ro.full_refresh = bd->full_refresh;
    /* an unchanged incremental model whose last batch in this session was
     * empty is probed before any DDL; without hooks the probe is all the
     * no-op run does (no transaction: it writes nothing) */
    bd->probe = bd->incremental && strcmp(c->stored[i], nd->fingerprint) == 0 &&
                !pool_batch_busy(c->pool, nd->relname);
    bd->in_txn = !(bd->probe && !hooks);
    return CS_OK;
}

/*
 * After the render: the fingerprint to store (a view's covers its compiled
 * SQL) and whether the model is an unchanged view, which is left as it is
 * (no DDL, no lock; without hooks not even a transaction), so that views
 * others built on it survive.
 */
static void build_identify(build *bd)
{
    run_ctx *c = bd->c;
    const dbt_node *nd = bd->nd;

    if (nd->mat != MAT_VIEW) {
        snprintf(bd->fp, sizeof(bd->fp), "%s", nd->fingerprint);
        return;
    }
    dbt_fingerprint_extend(nd->fingerprint, bd->sql.data ? bd->sql.data : "", bd->fp);
    bd->unchanged =
        c->kinds[bd->i] == 'v' && !bd->full_refresh && strcmp(c->stored[bd->i], bd->fp) == 0;
    if (bd->unchanged && nd->npre_hooks == 0 && nd->npost_hooks == 0)
        bd->in_txn = false;
}

/*
 * A build's file under the target path, when the run has one; a failure
 * to write is a warning: the model itself is fine.
 */
static void note_target(build *bd, const char *kind, const char *text, char *path, size_t npath)
{
    char own[4096];
    cs_error werr;

    if (!bd->c->o->target_dir)
        return;
    if (!path) {
        path = own;
        npath = sizeof(own);
    }
    if (write_target(bd->c, kind, bd->i, text, path, npath, &werr) != CS_OK)
        log_warn(bd->pm->name, "%s", werr.msg);
}

/* runs bd->b (see exec_sql), noting it for target/run */
static cs_result bexec(build *bd, const char *what, long *rows, cs_error *err)
{
    if (bd->c->o->target_dir && bd->b.data) {
        buf_puts(&bd->trace, bd->b.data);
        buf_puts(&bd->trace, ";\n\n");
    }
    return exec_sql(bd->conn, bd->b.data, what, rows, err);
}

/* ALTER TABLE target ADD/DROP COLUMN name [type] */
static cs_result alter_column(build *bd, bool add, const char *name, const char *type,
                              cs_error *err)
{
    buf_reset(&bd->b);
    buf_puts(&bd->b, "ALTER TABLE ");
    mat_relation(&bd->b, bd->schema, bd->nd->relname);
    buf_puts(&bd->b, add ? " ADD COLUMN " : " DROP COLUMN ");
    mat_quote_ident(&bd->b, name);
    if (add)
        buf_printf(&bd->b, " %s", type);
    return bexec(bd, add ? "could not add a column" : "could not drop a column", NULL, err);
}

/*
 * on_schema_change: compares the new rows' columns (tcols) with the
 * target's (dcols) and adds, drops or fails as configured; dcols follows
 * what was added.
 */
static cs_result apply_schema_change(build *bd, cs_error *err)
{
    const char *osc = pv_gets(bd->nd->config, "on_schema_change");
    const char *file = bd->pm->file, *rel = bd->nd->relname;
    bool fail = osc && strcmp(osc, "fail") == 0, sync = osc && strcmp(osc, "sync_all_columns") == 0;
    bool append = sync || (osc && strcmp(osc, "append_new_columns") == 0);
    cs_result rc;

    for (size_t k = 0; k < bd->tcols->n; k++) {
        const char *name = bd->tcols->keys[k];
        if (pv_get(bd->dcols, name))
            continue;
        if (append) {
            if ((rc = alter_column(bd, true, name, pv_s(bd->tcols->items[k]), err)) != CS_OK)
                return rc;
            pv_set(bd->dcols, name, pv_copy(bd->tcols->items[k]));
        } else if (fail) {
            return cs_fail(err, CS_INVALID,
                           "%s: the new rows have column \"%s\" that %s.%s lacks and "
                           "on_schema_change is 'fail'",
                           file, name, bd->schema, rel);
        }
    }
    for (size_t k = 0; k < bd->dcols->n; k++) {
        const char *name = bd->dcols->keys[k];
        if (pv_get(bd->tcols, name))
            continue;
        if (fail)
            return cs_fail(err, CS_INVALID,
                           "%s: %s.%s has column \"%s\" that the new rows lack and "
                           "on_schema_change is 'fail'",
                           file, bd->schema, rel, name);
        if (sync && (rc = alter_column(bd, false, name, NULL, err)) != CS_OK)
            return rc;
    }
    return CS_OK;
}

/*
 * Fills the connection's temp table with the new rows: refilled when the
 * query's shape is the one it was made for (its rows were deleted by the
 * run that filled it), else made again, known to the pool once this
 * transaction commits.  bd->batch gets the row count, bd->tcols the columns.
 */
static cs_result fill_temp_table(build *bd, cs_error *err)
{
    pool_tmp *pt = slot_tmp(bd->c->pool, bd->slot, bd->nd->relname);
    cs_result rc;

    buf_reset(&bd->b);
    if (pt && strcmp(pt->sig, bd->sig) == 0) {
        mat_temp_insert(&bd->b, bd->incr, bd->sql.data);
        bd->tcols = pv_copy(pt->cols);
    } else {
        slot_tmp_forget(bd->c->pool, bd->slot, bd->nd->relname);
        mat_temp_table(&bd->b, bd->incr, bd->sql.data);
        bd->created = true;
    }
    if ((rc = bexec(bd, "could not build the new rows", &bd->batch, err)) != CS_OK)
        return rc;
    if (!bd->created)
        return CS_OK;
    buf_reset(&bd->b);
    mat_quote_ident(&bd->b, bd->incr);
    return columns_of(bd->conn, bd->b.data, &bd->tcols, err);
}

/* the new rows into the target: ANALYZE of a big batch, delete of the
 * replaced keys (unless append) and insert, in one round trip */
static cs_result merge_batch(build *bd, long *inserted, cs_error *err)
{
    const dbt_node *nd = bd->nd;
    const char *strategy = pv_gets(nd->config, "incremental_strategy");
    const char **cols = xcalloc(bd->dcols->n + 1, sizeof(*cols));
    size_t ncols = 0;
    cs_result rc = CS_OK;

    /* the columns both sides have, in the table's order */
    for (size_t k = 0; k < bd->dcols->n; k++)
        if (pv_get(bd->tcols, bd->dcols->keys[k]))
            cols[ncols++] = bd->dcols->keys[k];
    if (bd->batch >= ANALYZE_MIN_ROWS) {
        buf_reset(&bd->b);
        buf_puts(&bd->b, "ANALYZE ");
        mat_quote_ident(&bd->b, bd->incr);
        rc = bexec(bd, "could not analyze the new rows", NULL, err);
    }
    /* one round trip: the INSERT's (or MERGE's) count is the last result's */
    buf_reset(&bd->b);
    bool merge = strategy && strcmp(strategy, "merge") == 0 && nd->nunique_key > 0;
    if (rc == CS_OK && nd->nunique_key > 0 && !merge &&
        !(strategy && strcmp(strategy, "append") == 0)) {
        mat_incr_delete(&bd->b, bd->schema, nd->relname, bd->incr, bd->batch,
                        (const char *const *)nd->unique_key, nd->nunique_key);
        buf_puts(&bd->b, ";\n");
    }
    if (rc == CS_OK && merge)
        mat_incr_merge(&bd->b, bd->schema, nd->relname, bd->incr, bd->batch,
                       (const char *const *)nd->unique_key, nd->nunique_key, cols, ncols,
                       comparable(bd->dcols));
    else if (rc == CS_OK)
        mat_incr_insert(&bd->b, bd->schema, nd->relname, bd->incr, cols, ncols);
    if (rc == CS_OK)
        rc = bexec(bd, "could not replace the rows", inserted, err);
    free(cols);
    return rc;
}

/*
 * The incremental path, after the probe found work: the batch into the
 * temp table, the schema change checks, the merge into the target.
 */
static cs_result build_incremental(build *bd, cs_error *err)
{
    const dbt_node *nd = bd->nd;
    const char *osc = pv_gets(nd->config, "on_schema_change");
    long n = 0;
    cs_result rc;

    if ((rc = fill_temp_table(bd, err)) != CS_OK)
        return rc;
    if (nd->contract || (osc && strcmp(osc, "ignore") != 0) || bd->batch > 0) {
        if (nd->contract && (rc = check_contract(nd, bd->tcols, bd->pm->file, err)) != CS_OK)
            return rc;
        if ((rc = apply_schema_change(bd, err)) != CS_OK)
            return rc;
    }
    if (bd->batch > 0 && (rc = merge_batch(bd, &n, err)) != CS_OK)
        return rc;
    pool_batch_note(bd->c->pool, nd->relname, n > 0);
    bd->rows = n;
    snprintf(bd->detail, sizeof(bd->detail), "INSERT %ld", n);
    return CS_OK;
}

/* dbt's check before building a view or table: the query's columns match
 * the contract (LIMIT 0: nothing is computed) */
static cs_result precheck_contract(build *bd, cs_error *err)
{
    PGresult *res;
    pv *cols;
    cs_result rc;

    buf_reset(&bd->b);
    buf_puts(&bd->b, "SELECT * FROM ");
    mat_subquery(&bd->b, bd->sql.data);
    buf_puts(&bd->b, " AS s LIMIT 0");
    res = PQexec(bd->conn, bd->b.data);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = sql_fail(bd->conn, res, "the model's query failed", bd->b.data, err);
        PQclear(res);
        return rc;
    }
    cols = pv_new(PV_MAP);
    for (int f = 0; f < PQnfields(res); f++)
        pv_set(cols, PQfname(res, f), pv_new(PV_NULL));
    PQclear(res);
    rc = check_contract(bd->nd, cols, bd->pm->file, err);
    pv_free(cols);
    return rc;
}

/*
 * The query's columns (name, type oid, typmod), in order, against the
 * table's, in one round trip: *same when they are equal (with a contract,
 * the names only: the table's types are the contract's) and no other
 * table's foreign key references the table.  *names gets the table's
 * column names, a list the caller frees.
 */
static cs_result table_shape(build *bd, bool *same, pv **names, cs_error *err)
{
    PGresult *res, *attrs = NULL, *query = NULL;
    cs_result rc = CS_OK;
    buf rel;

    *same = false;
    *names = NULL;
    buf_init(&rel, 0);
    mat_relation(&rel, bd->schema, bd->nd->relname);
    buf_reset(&bd->b);
    buf_puts(&bd->b, "SELECT attname, atttypid, atttypmod FROM pg_attribute WHERE attrelid = ");
    mat_quote_literal(&bd->b, rel.data);
    /* a table other tables reference is never refreshed in place: its
     * DELETE would fail their foreign keys or cascade into their rows */
    buf_puts(&bd->b, "::regclass AND attnum > 0 AND NOT attisdropped AND NOT EXISTS (SELECT FROM "
                     "pg_constraint WHERE confrelid = attrelid AND contype = 'f') ORDER BY "
                     "attnum;\n");
    buf_puts(&bd->b, "SELECT * FROM ");
    mat_subquery(&bd->b, bd->sql.data);
    buf_puts(&bd->b, " AS model_subq LIMIT 0");
    buf_free(&rel);
    if (!PQsendQuery(bd->conn, bd->b.data))
        return pg_fail(bd->conn, NULL, "the model's query failed", err);
    /* every result is read, also after an error, so the connection is idle */
    while ((res = PQgetResult(bd->conn))) {
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_TUPLES_OK && rc == CS_OK)
            rc = sql_fail(bd->conn, res, "the model's query failed", bd->b.data, err);
        if (st == PGRES_TUPLES_OK && !attrs)
            attrs = res;
        else if (st == PGRES_TUPLES_OK && !query)
            query = res;
        else
            PQclear(res);
    }
    if (rc == CS_OK && (!attrs || !query))
        rc = cs_fail(err, CS_TRANSIENT, "the model's query failed: results missing");
    if (rc != CS_OK)
        goto out;
    *names = pv_new(PV_LIST);
    for (int r = 0; r < PQntuples(attrs); r++)
        pv_push(*names, pv_str(PQgetvalue(attrs, r, 0)));
    *same = PQntuples(attrs) == PQnfields(query);
    for (int f = 0; *same && f < PQnfields(query); f++)
        *same = strcmp(PQfname(query, f), PQgetvalue(attrs, f, 0)) == 0 &&
                (bd->nd->contract ||
                 ((unsigned)PQftype(query, f) == strtoul(PQgetvalue(attrs, f, 1), NULL, 10) &&
                  PQfmod(query, f) == atoi(PQgetvalue(attrs, f, 2))));
out:
    PQclear(attrs);
    PQclear(query);
    return rc;
}

/*
 * A table model is rebuilt on every run, as dbt does, but in place when
 * nothing about its relation would change: it exists as a table, its
 * definition is the stored one, no --full-refresh, no leftover of a
 * crashed build, and the query returns the table's columns.  Then its rows
 * are replaced (DELETE + INSERT in the model's transaction): readers see
 * the old rows until the commit and never wait on an exclusive lock, and
 * what others built on the table (views, grants, foreign keys) stays.
 * Anything else (*done false) takes the swap.
 */
static cs_result refresh_in_place(build *bd, bool *done, cs_error *err)
{
    run_ctx *c = bd->c;
    size_t i = bd->i;
    const char **cols;
    bool same;
    pv *names;
    cs_result rc;

    *done = false;
    if (c->kinds[i] != 'r' || c->tmp_kinds[i] || c->bak_kinds[i] || bd->full_refresh ||
        strcmp(c->stored[i], bd->nd->fingerprint) != 0)
        return CS_OK;
    if (bd->nd->contract && (rc = precheck_contract(bd, err)) != CS_OK)
        return rc;
    if ((rc = table_shape(bd, &same, &names, err)) != CS_OK || !same) {
        pv_free(names);
        return rc;
    }
    cols = xcalloc(names->n + 1, sizeof(*cols));
    for (size_t k = 0; k < names->n; k++)
        cols[k] = names->items[k]->s;
    buf_reset(&bd->b);
    mat_table_refresh(&bd->b, bd->schema, bd->nd->relname, bd->sql.data, cols, names->n);
    rc = bexec(bd, "could not refresh the table", &bd->rows, err);
    free(cols);
    pv_free(names);
    if (rc == CS_OK) {
        *done = true;
        snprintf(bd->detail, sizeof(bd->detail), "SELECT %ld", bd->rows);
    }
    return rc;
}

/*
 * The foreign keys of other tables that reference the model's table: the
 * table (quoted regclass text), the constraint's name and its definition
 * (pg_get_constraintdef), in *out (the caller clears it).
 */
static cs_result referencing_fks(build *bd, PGresult **out, cs_error *err)
{
    buf rel;
    const char *params[1];
    cs_result rc = CS_OK;

    buf_init(&rel, 0);
    mat_relation(&rel, bd->schema, bd->nd->relname);
    params[0] = rel.data;
    *out = PQexecParams(bd->conn,
                        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM "
                        "pg_constraint WHERE confrelid = $1::regclass AND contype = 'f' AND "
                        "conrelid <> confrelid ORDER BY conrelid, conname",
                        1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(*out) != PGRES_TUPLES_OK) {
        rc = pg_fail(bd->conn, *out, "could not read the foreign keys on the table", err);
        PQclear(*out);
        *out = NULL;
    }
    buf_free(&rel);
    return rc;
}

/*
 * A view or table: built as <name>__cs_tmp beside the old relation (a
 * leftover of a crashed run dropped first), then swapped in with its
 * indexes and, for a table, statistics.
 */
static cs_result build_relation(build *bd, cs_error *err)
{
    run_ctx *c = bd->c;
    const dbt_node *nd = bd->nd;
    const pl_model *pm = bd->pm;
    size_t i = bd->i;
    bool view = nd->mat == MAT_VIEW, refreshed = false;
    long n = 0;
    cs_result rc;
    PGresult *fks = NULL;

    if (bd->unchanged) {
        snprintf(bd->detail, sizeof(bd->detail), "UNCHANGED");
        return CS_OK;
    }
    if (nd->mat == MAT_TABLE && (rc = refresh_in_place(bd, &refreshed, err)) != CS_OK)
        return rc;
    if (refreshed)
        return CS_OK;

    buf_reset(&bd->b);
    if (c->tmp_kinds[i])
        mat_drop(&bd->b, bd->schema, bd->tmp, c->tmp_kinds[i]);
    if (c->bak_kinds[i])
        mat_drop(&bd->b, bd->schema, bd->bak, c->bak_kinds[i]);
    if (bd->b.len && (rc = bexec(bd, "could not drop a leftover relation", NULL, err)) != CS_OK)
        return rc;
    if (nd->contract && (rc = precheck_contract(bd, err)) != CS_OK)
        return rc;
    buf_reset(&bd->b);
    if (view) {
        mat_create_view(&bd->b, bd->schema, bd->tmp, bd->sql.data);
    } else if ((rc = mat_create_table(&bd->b, bd->schema, bd->tmp, bd->sql.data, nd->contract,
                                      nd->constraints, err)) != CS_OK) {
        cs_error_prefix(err, "%s: ", pm->props_file ? pm->props_file : pm->file);
        return rc;
    }
    if ((rc = bexec(bd, view ? "could not create the view" : "could not create the table", &n,
                    err)) != CS_OK)
        return rc;
    /* the foreign keys of other tables on the old table, read before the
     * swap renames it (their text then names the new one) */
    if (c->kinds[i] == 'r' && !view && (rc = referencing_fks(bd, &fks, err)) != CS_OK)
        return rc;
    /* indexes after the swap (same transaction), so that they get names
     * from the final relation and never clash with the old one's */
    buf_reset(&bd->b);
    mat_swap(&bd->b, bd->schema, nd->relname, c->kinds[i], bd->tmp, view ? 'v' : 'r', bd->bak);
    bd->replaced = true;
    if (!view && (rc = mat_indexes(&bd->b, bd->schema, nd->relname, pv_get(nd->config, "indexes"),
                                   err)) != CS_OK) {
        cs_error_prefix(err, "%s: ", pm->file);
        return rc;
    }
    /* the swap's DROP ... CASCADE dropped those foreign keys: made again
     * (checked against the new rows; a child row the new table lacks
     * fails the build, which is rolled back) */
    for (int r = 0; fks && r < PQntuples(fks); r++) {
        buf_printf(&bd->b, ";\nALTER TABLE %s ADD CONSTRAINT ", PQgetvalue(fks, r, 0));
        mat_quote_ident(&bd->b, PQgetvalue(fks, r, 1));
        buf_printf(&bd->b, " %s", PQgetvalue(fks, r, 2));
    }
    PQclear(fks);
    /* a table built in one go has no statistics until autovacuum comes
     * by; without them the next incremental run's DELETE ... USING
     * guesses a big join and scans the whole table */
    if (!view) {
        buf_puts(&bd->b, "; ANALYZE ");
        mat_relation(&bd->b, bd->schema, nd->relname);
    }
    if ((rc = bexec(bd, "could not swap the new relation in", NULL, err)) != CS_OK)
        return rc;
    bd->rows = view ? 0 : n;
    snprintf(bd->detail, sizeof(bd->detail), view ? "CREATE VIEW" : "SELECT %ld", n);
    return CS_OK;
}

/*
 * COMMIT, leaving the temp table empty for the next run: DELETE is cheap
 * for a small batch; TRUNCATE (new file, catalog update) now and then and
 * after a big one, as no autovacuum cleans temp tables.  A temp table made
 * in this transaction is known to the pool only once it committed.
 */
static cs_result commit_build(build *bd, cs_error *err)
{
    runner_pool *pool = bd->c->pool;
    pool_tmp *pt = bd->created ? NULL : slot_tmp(pool, bd->slot, bd->nd->relname);
    bool truncate = bd->batch >= ANALYZE_MIN_ROWS || (pt && pt->deletes >= TMP_DELETES_MAX);
    cs_result rc;

    buf_reset(&bd->b);
    if (bd->batch > 0) {
        buf_puts(&bd->b, truncate ? "TRUNCATE pg_temp." : "DELETE FROM pg_temp.");
        mat_quote_ident(&bd->b, bd->incr);
        buf_puts(&bd->b, ";\n");
    }
    buf_puts(&bd->b, "COMMIT");
    if ((rc = exec_sql(bd->conn, bd->b.data, "could not commit", NULL, err)) != CS_OK)
        return rc;
    if (bd->created) {
        slot_tmp_add(pool, bd->slot, bd->nd->relname, bd->sig, bd->tcols);
        bd->sig = NULL;
        bd->tcols = NULL;
    } else if (pt && bd->batch > 0) {
        pt->deletes = truncate ? 0 : pt->deletes + 1;
    }
    return CS_OK;
}

/* a role as dbt writes it: a plain name verbatim (PostgreSQL folds it to
 * lower case), anything else quoted */
static bool plain_role(const char *r)
{
    if (!*r || !(isalpha((unsigned char)*r) || *r == '_'))
        return false;
    for (; *r; r++)
        if (!isalnum((unsigned char)*r) && *r != '_' && *r != '$')
            return false;
    return true;
}

static void role_sql(buf *b, const char *r)
{
    if (plain_role(r))
        buf_puts(b, r);
    else
        mat_quote_ident(b, r);
}

/* whether grantee (as the catalog spells it) is role (as the config does) */
static bool same_role(const char *grantee, const char *role)
{
    return plain_role(role) ? strcasecmp(grantee, role) == 0 : strcmp(grantee, role) == 0;
}

/* whether the config grants priv to grantee */
static bool granted_by_config(const pv *grants, const char *priv, const char *grantee)
{
    for (size_t k = 0; k < grants->n; k++) {
        const pv *roles = grants->items[k];
        if (strcasecmp(grants->keys[k], priv) != 0)
            continue;
        if (pv_s(roles) && same_role(grantee, roles->s))
            return true;
        for (size_t r = 0; roles->type == PV_LIST && r < roles->n; r++)
            if (pv_s(roles->items[r]) && same_role(grantee, roles->items[r]->s))
                return true;
    }
    return false;
}

/* GRANT or REVOKE priv ON relation TO/FROM role */
static void dcl_sql(build *bd, bool grant, const char *priv, const char *role)
{
    buf_puts(&bd->b, grant ? "GRANT " : "REVOKE ");
    buf_puts(&bd->b, priv);
    buf_puts(&bd->b, " ON ");
    mat_relation(&bd->b, bd->schema, bd->nd->relname);
    buf_puts(&bd->b, grant ? " TO " : " FROM ");
    role_sql(&bd->b, role);
    buf_puts(&bd->b, ";\n");
}

/* whether a row of cur (privilege_type, grantee) is priv to role */
static bool currently_granted(PGresult *cur, const char *priv, const char *role)
{
    for (int r = 0; cur && r < PQntuples(cur); r++)
        if (strcasecmp(PQgetvalue(cur, r, 0), priv) == 0 && same_role(PQgetvalue(cur, r, 1), role))
            return true;
    return false;
}

/*
 * dbt's `grants:` ({privilege: [roles]} or a role as a string), as dbt
 * applies them, after the post-hooks in the model's transaction.  A
 * relation swapped in is new: every configured grant is given.  A relation
 * kept (refreshed in place, incremental, unchanged view) is compared with
 * what the current role granted on it: missing grants are given and the
 * ones the config does not name are revoked.  No grants config: nothing.
 */
static cs_result apply_grants(build *bd, cs_error *err)
{
    const pv *grants = pv_get(bd->nd->config, "grants");
    PGresult *cur = NULL;
    cs_result rc = CS_OK;

    if (!grants || grants->type != PV_MAP || grants->n == 0)
        return CS_OK;
    for (size_t k = 0; k < grants->n; k++)
        if (!plain_role(grants->keys[k]))
            return cs_fail(err, CS_INVALID, "%s: grants: \"%s\" is not a privilege", bd->pm->file,
                           grants->keys[k]);
    if (!bd->replaced) {
        const char *params[2] = {bd->schema, bd->nd->relname};
        cur =
            PQexecParams(bd->conn,
                         "SELECT privilege_type, grantee FROM information_schema.role_table_grants "
                         "WHERE grantor = current_role AND grantee <> current_role AND "
                         "table_schema = $1 AND table_name = $2",
                         2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(cur) != PGRES_TUPLES_OK) {
            rc = pg_fail(bd->conn, cur, "could not read the model's grants", err);
            PQclear(cur);
            return rc;
        }
    }
    buf_reset(&bd->b);
    for (int r = 0; cur && r < PQntuples(cur); r++)
        if (!granted_by_config(grants, PQgetvalue(cur, r, 0), PQgetvalue(cur, r, 1)))
            dcl_sql(bd, false, PQgetvalue(cur, r, 0), PQgetvalue(cur, r, 1));
    for (size_t k = 0; k < grants->n; k++) {
        const pv *roles = grants->items[k];
        size_t n = pv_s(roles) ? 1 : roles->type == PV_LIST ? roles->n : 0;
        for (size_t j = 0; j < n; j++) {
            const pv *role = pv_s(roles) ? roles : roles->items[j];
            if (pv_s(role) && !currently_granted(cur, grants->keys[k], role->s))
                dcl_sql(bd, true, grants->keys[k], role->s);
        }
    }
    PQclear(cur);
    if (bd->b.len)
        rc = bexec(bd, "could not apply the model's grants", NULL, err);
    return rc;
}

/*
 * Everything between the render and the commit: BEGIN (an incremental
 * model without pre-hooks sends it with its probe), pre-hooks, the
 * materialization, post-hooks, the fingerprint.
 */
static cs_result build_steps(build *bd, cs_error *err)
{
    const dbt_node *nd = bd->nd;
    long model = (long)bd->i;
    cs_result rc;

    if ((rc = run_hooks(bd->w, bd->conn, model, nd->pre_hooks_before, nd->npre_hooks_before,
                        &bd->ro, err)) != CS_OK)
        return rc;
    if (bd->in_txn && !(bd->incremental && nd->npre_hooks == 0) &&
        (rc = begin_model(bd->conn, bd->schema, nd->relname, err)) != CS_OK)
        return rc;
    if ((rc = run_hooks(bd->w, bd->conn, model, nd->pre_hooks, nd->npre_hooks, &bd->ro, err)) !=
        CS_OK)
        return rc;
    if (bd->incremental) {
        bool noop;
        if ((rc = probe_batch(nd, bd->pm, bd->conn, bd->schema, bd->sql.data, bd->probe ? 1 : 0,
                              bd->in_txn && nd->npre_hooks == 0, &noop, &bd->sig, &bd->dcols,
                              err)) != CS_OK)
            return rc;
        if (noop) {
            snprintf(bd->detail, sizeof(bd->detail), "INSERT 0");
        } else {
            if (!bd->in_txn && (rc = begin_model(bd->conn, bd->schema, nd->relname, err)) != CS_OK)
                return rc;
            bd->in_txn = true;
            if ((rc = build_incremental(bd, err)) != CS_OK)
                return rc;
        }
    } else if ((rc = build_relation(bd, err)) != CS_OK) {
        return rc;
    }
    if ((rc = run_hooks(bd->w, bd->conn, model, nd->post_hooks, nd->npost_hooks, &bd->ro, err)) !=
            CS_OK ||
        (rc = apply_grants(bd, err)) != CS_OK ||
        (rc = save_fingerprint(bd->c, bd->conn, bd->i, bd->fp, err)) != CS_OK)
        return rc;
    if (bd->in_txn && (rc = commit_build(bd, err)) != CS_OK)
        return rc;
    return run_hooks(bd->w, bd->conn, model, nd->post_hooks_after, nd->npost_hooks_after, &bd->ro,
                     err);
}

/* the connection of a custom materialization: a transaction is open */
static bool custom_in_txn(void *ud)
{
    return PQtransactionStatus(((build *)ud)->conn) != PQTRANS_IDLE;
}

/* its statements, noted for target/run */
static cs_result custom_sql(void *ud, const char *sql, pv **out, cs_error *err)
{
    build *bd = ud;
    if (bd->c->o->target_dir) {
        buf_puts(&bd->trace, sql);
        buf_puts(&bd->trace, ";\n\n");
    }
    return query_cb(&bd->sud, sql, out, err);
}

/*
 * A custom materialization (dbt_materialization.c): the block runs the
 * model's hooks and its own transactions (one begins with the model's
 * lock, see model_lock_sql); grants and the fingerprint are the block's
 * business, as in dbt, so neither is written here.
 */
static cs_result build_custom(build *bd, cs_error *err)
{
    dbt_mat_io io = {
        .sql = custom_sql, .ud = bd, .in_txn = custom_in_txn, .full_refresh = bd->full_refresh};
    buf begin;
    cs_result rc;

    buf_init(&begin, 0);
    buf_puts(&begin, "BEGIN;\n");
    model_lock_sql(&begin, bd->schema, bd->nd->relname);
    io.begin_sql = begin.data;
    rc = dbt_run_materialization(bd->w, bd->i, &io, bd->sql.data ? bd->sql.data : "", bd->detail,
                                 sizeof(bd->detail), &bd->rows, err);
    buf_free(&begin);
    return rc;
}

/*
 * Builds model i in one transaction on conn.  *rows and *detail describe
 * the outcome for the progress line.  A failure rolls the transaction back
 * and forgets the connection's temp table of the model (what the
 * transaction did to it is undone: the next run starts from DROP IF
 * EXISTS + CREATE).
 */
static cs_result build_model(run_ctx *c, dbt_worker *w, PGconn *conn, int slot, size_t i,
                             long *rows, char *detail, size_t ndetail, cs_error *err)
{
    build bd = {.c = c, .w = w, .conn = conn, .slot = slot, .i = i};
    cs_result rc;

    bd.nd = &c->m->nodes[i];
    bd.pm = &c->m->p->models[i];
    bd.schema = bd.nd->schema;
    mat_temp_name(bd.tmp, sizeof(bd.tmp), bd.nd->relname, "__cs_tmp");
    mat_temp_name(bd.bak, sizeof(bd.bak), bd.nd->relname, "__cs_backup");
    mat_temp_name(bd.incr, sizeof(bd.incr), bd.nd->relname, "__cs_incr");
    bd.sud.conn = conn;
    bd.ro = (dbt_render_opts){.execute = true, .sql = query_cb, .sql_ud = &bd.sud};
    buf_init(&bd.sql, 0);
    buf_init(&bd.b, 0);
    buf_init(&bd.trace, 0);
    /* an incremental model's table is never dropped by another's build */
    if ((bd.nd->mat != MAT_INCREMENTAL || c->kinds[i] != 'r') &&
        (rc = reread_kinds(&bd, err)) != CS_OK)
        goto out;
    if ((rc = build_decide(&bd, err)) != CS_OK)
        goto out;
    if ((rc = dbt_render_model(w, i, &bd.ro, &bd.sql, err)) != CS_OK)
        goto out;
    build_identify(&bd);
    note_target(&bd, "compiled", bd.sql.data, NULL, 0);
    if ((rc = bd.nd->mat == MAT_CUSTOM ? build_custom(&bd, err) : build_steps(&bd, err)) != CS_OK) {
        if (bd.incremental)
            slot_tmp_forget(c->pool, slot, bd.nd->relname);
        if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
            PGresult *res = PQexec(conn, "ROLLBACK");
            PQclear(res);
        }
    }
    if (bd.trace.len) {
        char path[4096];
        note_target(&bd, "run", bd.trace.data, path, sizeof(path));
        if (rc != CS_OK)
            err_append(err, " (statements: %s)", path);
    }
    if (rc != CS_OK)
        cs_error_prefix(err, "%s: ", bd.pm->file);
out:
    *rows = bd.rows;
    snprintf(detail, ndetail, "%s", bd.detail);
    free(bd.sig);
    pv_free(bd.tcols);
    pv_free(bd.dcols);
    buf_free(&bd.sql);
    buf_free(&bd.b);
    buf_free(&bd.trace);
    return rc;
}

static cs_result compile_model(run_ctx *c, dbt_worker *w, PGconn *conn, size_t i, cs_error *err)
{
    const dbt_manifest *m = c->m;
    sql_ud sud = {conn};
    dbt_render_opts ro = {.execute = true, .sql = query_cb, .sql_ud = &sud};
    char path[4096];
    buf sql;
    cs_result rc;

    /* dbt's rule, evaluated against the database: incremental, the relation
     * exists as a table, no --full-refresh.  A changed fingerprint does not
     * count here: compile shows what the model's template says */
    ro.is_incremental =
        m->nodes[i].mat == MAT_INCREMENTAL && c->kinds[i] == 'r' && !c->o->full_refresh;
    buf_init(&sql, 0);
    if ((rc = dbt_render_model(w, i, &ro, &sql, err)) != CS_OK)
        goto out;
    rc = write_target(c, "compiled", i, sql.data, path, sizeof(path), err);
out:
    buf_free(&sql);
    return rc;
}

/* model k will not run: counted, timed as an instant, and in build shown
 * with WHY */
static void mark_skipped(run_ctx *c, size_t k, const char *why)
{
    c->state[k] = ST_SKIPPED;
    c->res[k].index = ++c->started;
    c->finished++;
    utc_text(c->res[k].start, sizeof(c->res[k].start));
    memcpy(c->res[k].end, c->res[k].start, sizeof(c->res[k].end));
    if (c->o->mode == RUNNER_BUILD)
        print_line(c, k, "SKIP", why);
}

/* marks every pending model downstream of i as skipped (caller holds mu) */
static void skip_dependants(run_ctx *c, size_t i)
{
    for (size_t k = 0; k < c->m->p->nmodels; k++) {
        if (c->state[k] != ST_PENDING)
            continue;
        for (size_t d = 0; d < c->neffdeps[k]; d++) {
            if (c->effdeps[k][d] == i) {
                mark_skipped(c, k, "SKIP");
                skip_dependants(c, k);
                break;
            }
        }
    }
}

static bool build_tests(run_ctx *c, dbt_worker *w, sql_ud *sud, size_t i);

typedef struct {
    run_ctx *c;
    int slot;
} worker_arg;

static void *worker_main(void *arg)
{
    worker_arg *wa = arg;
    run_ctx *c = wa->c;
    dbt_worker *w = dbt_worker_new(c->m);
    PGconn *conn;
    cs_error err;

    dbt_worker_set_run(w, &c->run);
    pthread_mutex_lock(&c->mu);
    for (;;) {
        long pick = -1;
        while (c->finished < c->total) {
            if ((c->o->stop && *c->o->stop) || c->lost) {
                /* asked to stop, or a connection was lost: the models in
                 * flight finish, no other starts */
                for (size_t k = 0; k < c->m->p->nmodels; k++) {
                    if (c->state[k] == ST_PENDING) {
                        mark_skipped(c, k,
                                     c->lost ? "SKIP (connection to PostgreSQL lost)"
                                             : "SKIP (stopping)");
                    }
                }
                pthread_cond_broadcast(&c->cv);
                continue;
            }
            for (size_t k = 0; k < c->m->p->nmodels && pick < 0; k++) {
                size_t i = c->m->order[k];
                bool ready = c->state[i] == ST_PENDING;
                for (size_t d = 0; ready && d < c->neffdeps[i]; d++)
                    ready = c->state[c->effdeps[i][d]] == ST_OK;
                if (ready)
                    pick = (long)i;
            }
            if (pick >= 0)
                break;
            pthread_cond_wait(&c->cv, &c->mu);
        }
        if (pick < 0)
            break;
        size_t i = (size_t)pick;
        c->state[i] = ST_RUNNING;
        c->res[i].index = ++c->started;
        pthread_mutex_unlock(&c->mu);

        char detail[128] = "";
        long rows = 0;
        double t0 = monotime_s();
        cs_result rc;
        utc_text(c->res[i].start, sizeof(c->res[i].start));
        conn = pool_conn(c->pool, wa->slot, &err);
        if (!conn)
            rc = err.code;
        else if (c->o->mode == RUNNER_COMPILE)
            rc = compile_model(c, w, conn, i, &err);
        else
            rc = build_model(c, w, conn, wa->slot, i, &rows, detail, sizeof(detail), &err);
        c->res[i].seconds = monotime_s() - t0;
        utc_text(c->res[i].end, sizeof(c->res[i].end));
        c->res[i].rows = rows;
        bool tests_failed = false;
        if (c->o->mode == RUNNER_BUILD) /* for /metrics and the status page */
            stats_model_done(c->m->p->models[i].name, rc == CS_OK, c->res[i].seconds, rows);

        pthread_mutex_lock(&c->mu);
        if (rc == CS_OK) {
            c->res[i].message = xstrdup(detail);
            if (c->o->mode == RUNNER_BUILD) {
                char d[200];
                snprintf(d, sizeof(d), "%s in %.2fs", detail, c->res[i].seconds);
                print_line(c, i, "OK created", d);
            }
            /* build: its tests run now, before any dependant starts (the
             * model stays running), and a failing one skips the dependants */
            if (c->o->mode == RUNNER_BUILD && c->tests && conn) {
                sql_ud sud = {conn};
                pthread_mutex_unlock(&c->mu);
                tests_failed = build_tests(c, w, &sud, i);
                pthread_mutex_lock(&c->mu);
            }
            c->state[i] = ST_OK;
            if (tests_failed)
                skip_dependants(c, i);
        } else {
            char d[64];
            c->state[i] = ST_ERROR;
            c->res[i].message = xstrdup(err.msg);
            snprintf(d, sizeof(d), "ERROR in %.2fs", c->res[i].seconds);
            if (c->o->mode == RUNNER_BUILD)
                print_line(c, i, "ERROR creating", d);
            log_error(c->m->p->models[i].name, "%s", err.msg);
            skip_dependants(c, i);
            if (rc == CS_TRANSIENT && (!conn || PQstatus(conn) != CONNECTION_OK) && !c->lost) {
                c->lost = true;
                cs_fail(&c->lost_err, CS_TRANSIENT, "model %s: %s", c->m->p->models[i].name,
                        err.msg);
            }
        }
        c->finished++;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    dbt_worker_free(w);
    return NULL;
}

/* ---- bookkeeping tables ---- */

static cs_result setup_tables(run_ctx *c, PGconn *conn, cs_error *err)
{
    const char *s = c->m->set.schema;
    buf b;
    cs_result rc;

    if (c->pool->setup_done)
        return CS_OK;
    buf_init(&b, 0);
    buf_puts(&b, "CREATE SCHEMA IF NOT EXISTS ");
    mat_quote_ident(&b, s);
    /* a project with its own dbt_results model creates that table itself */
    if (!dbt_owns_results_table(c->m)) {
        buf_puts(&b, ";\nCREATE TABLE IF NOT EXISTS ");
        mat_relation(&b, s, "dbt_results");
        buf_puts(&b, " (result_id text, invocation_id text, unique_id text, database_name text, "
                     "schema_name text, name text, resource_type text, status text, start_time "
                     "timestamp, end_time timestamp, execution_time double precision, "
                     "rows_affected integer)");
    }
    buf_puts(&b, ";\nCREATE TABLE IF NOT EXISTS ");
    mat_relation(&b, s, "_cht_sync_models");
    buf_puts(&b, " (name text PRIMARY KEY, fingerprint text NOT NULL, updated_at timestamptz "
                 "NOT NULL DEFAULT now())");
    rc = exec_sql(conn, b.data, "could not create the pipeline's tables", NULL, err);
    buf_free(&b);
    if (rc == CS_OK)
        c->pool->setup_done = true;
    return rc;
}

/* appends "(s1, s2, ...)": the target schema and every model's, each once */
static void schema_list(buf *b, const dbt_manifest *m)
{
    buf_puts(b, "(");
    mat_quote_literal(b, m->set.schema);
    for (size_t i = 0; i < m->p->nmodels; i++) {
        bool seen = strcmp(m->nodes[i].schema, m->set.schema) == 0;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(m->nodes[k].schema, m->nodes[i].schema) == 0;
        if (!seen) {
            buf_puts(b, ", ");
            mat_quote_literal(b, m->nodes[i].schema);
        }
    }
    buf_puts(b, ")");
}

/*
 * Creates the custom schemas (generate_schema_name's) of the selected
 * models that do not exist yet, as dbt does before it builds: one read
 * of pg_namespace, and DDL only for a schema that is missing.
 */
static cs_result create_model_schemas(run_ctx *c, PGconn *conn, cs_error *err)
{
    const dbt_manifest *m = c->m;
    PGresult *res;
    buf b;
    cs_result rc = CS_OK;

    buf_init(&b, 0);
    buf_puts(&b, "SELECT nspname FROM pg_namespace WHERE nspname IN ");
    schema_list(&b, m);
    res = PQexec(conn, b.data);
    buf_reset(&b);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pg_fail(conn, res, "could not list the models' schemas", err);
        goto out;
    }
    for (size_t i = 0; i < m->p->nmodels; i++) {
        const char *s = m->nodes[i].schema;
        bool have = false;
        if (!c->o->selected[i] || m->nodes[i].mat == MAT_EPHEMERAL)
            continue;
        for (int r = 0; r < PQntuples(res) && !have; r++)
            have = strcmp(PQgetvalue(res, r, 0), s) == 0;
        /* a schema two models share is named twice: IF NOT EXISTS */
        if (!have) {
            buf_puts(&b, "CREATE SCHEMA IF NOT EXISTS ");
            mat_quote_ident(&b, s);
            buf_puts(&b, ";\n");
        }
    }
    if (b.len)
        rc = exec_sql(conn, b.data, "could not create a model's schema", NULL, err);
out:
    PQclear(res);
    buf_free(&b);
    return rc;
}

/* relation kinds and stored fingerprints, one query each */
static cs_result read_state(run_ctx *c, PGconn *conn, cs_error *err)
{
    const dbt_manifest *m = c->m;
    PGresult *res;
    bool have_models_table = false;
    struct {
        char tmp[MAT_NAME_MAX + 1], bak[MAT_NAME_MAX + 1];
    } * names;
    buf b;

    /* the model's relations are in their own schemas (generate_schema_name) */
    buf_init(&b, 0);
    buf_puts(&b,
             "SELECT c.relname, c.relkind, n.nspname FROM pg_class c JOIN pg_namespace n ON "
             "n.oid = c.relnamespace WHERE c.relkind IN ('r', 'v', 'p', 'm') AND n.nspname IN ");
    schema_list(&b, m);
    res = PQexec(conn, b.data);
    buf_free(&b);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        cs_result rc = pg_fail(conn, res, "could not list the schema's relations", err);
        PQclear(res);
        return rc;
    }
    /* the names beside each model's relation, as build_model makes them */
    names = xcalloc(m->p->nmodels + 1, sizeof(*names));
    for (size_t i = 0; i < m->p->nmodels; i++) {
        mat_temp_name(names[i].tmp, sizeof(names[i].tmp), m->nodes[i].relname, "__cs_tmp");
        mat_temp_name(names[i].bak, sizeof(names[i].bak), m->nodes[i].relname, "__cs_backup");
    }
    for (int r = 0; r < PQntuples(res); r++) {
        const char *name = PQgetvalue(res, r, 0);
        const char *schema = PQgetvalue(res, r, 2);
        char kind = PQgetvalue(res, r, 1)[0] == 'p' ? 'r' : PQgetvalue(res, r, 1)[0];
        have_models_table = have_models_table || (strcmp(name, "_cht_sync_models") == 0 &&
                                                  strcmp(schema, m->set.schema) == 0);
        for (size_t i = 0; i < m->p->nmodels; i++) {
            if (strcmp(schema, m->nodes[i].schema) != 0)
                continue;
            if (strcmp(name, m->nodes[i].relname) == 0)
                c->kinds[i] = kind;
            else if (strcmp(name, names[i].tmp) == 0)
                c->tmp_kinds[i] = kind;
            else if (strcmp(name, names[i].bak) == 0)
                c->bak_kinds[i] = kind;
        }
    }
    free(names);
    PQclear(res);
    /* compile before any run (or against tables dbt built): nothing stored */
    if (!have_models_table)
        return CS_OK;
    buf_init(&b, 0);
    buf_puts(&b, "SELECT name, fingerprint FROM ");
    mat_relation(&b, m->set.schema, "_cht_sync_models");
    res = PQexec(conn, b.data);
    buf_free(&b);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        cs_result rc = pg_fail(conn, res, "could not read the model fingerprints", err);
        PQclear(res);
        return rc;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        const char *uid = PQgetvalue(res, r, 0);
        for (size_t i = 0; i < m->p->nmodels; i++) {
            char want[512];
            dbt_unique_id(m->p, i, want, sizeof(want));
            if (strcmp(uid, want) == 0)
                snprintf(c->stored[i], sizeof(c->stored[i]), "%s", PQgetvalue(res, r, 1));
        }
    }
    PQclear(res);
    return CS_OK;
}

static void invocation_id(char *out, size_t n)
{
    unsigned char r[16];
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(r, 1, sizeof(r), f) != sizeof(r)) {
        unsigned long long seed = (unsigned long long)time(NULL) ^ (unsigned long long)getpid();
        for (size_t i = 0; i < sizeof(r); i++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            r[i] = (unsigned char)(seed >> 33);
        }
    }
    if (f)
        fclose(f);
    r[6] = (r[6] & 0x0f) | 0x40;
    r[8] = (r[8] & 0x3f) | 0x80;
    snprintf(out, n, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

static const char *status_name(int st)
{
    return st == ST_OK ? "success" : st == ST_ERROR ? "error" : "skipped";
}

static cs_result write_results(run_ctx *c, PGconn *conn, cs_error *err)
{
    const dbt_manifest *m = c->m;
    buf b;
    cs_result rc;
    bool any = false, cleanup = false;

    buf_init(&b, 0);
    buf_puts(&b, "INSERT INTO ");
    mat_relation(&b, m->set.schema, "dbt_results");
    buf_puts(&b, " (result_id, invocation_id, unique_id, database_name, schema_name, name, "
                 "resource_type, status, start_time, end_time, execution_time, rows_affected) "
                 "VALUES ");
    for (size_t i = 0; i < m->p->nmodels; i++) {
        const pl_model *pm = &m->p->models[i];
        char uid[512], rid[600];
        if (c->state[i] == ST_NONE || c->state[i] == ST_PENDING)
            continue;
        dbt_unique_id(m->p, i, uid, sizeof(uid));
        snprintf(rid, sizeof(rid), "%s.%s", c->inv, uid);
        buf_puts(&b, any ? ",\n(" : "\n(");
        mat_quote_literal(&b, rid);
        buf_putc(&b, ',');
        mat_quote_literal(&b, c->inv);
        buf_putc(&b, ',');
        mat_quote_literal(&b, uid);
        buf_putc(&b, ',');
        mat_quote_literal(&b, m->set.database ? m->set.database : "");
        buf_putc(&b, ',');
        mat_quote_literal(&b, m->set.schema);
        buf_putc(&b, ',');
        mat_quote_literal(&b, pm->name);
        buf_printf(&b, ",'model','%s','%s','%s',%.6f,%ld)", status_name(c->state[i]),
                   c->res[i].start, c->res[i].end, c->res[i].seconds, c->res[i].rows);
        any = true;
    }
    /* the 14-day cleanup scans dbt_results: once per period and session */
    if (c->pool->last_cleanup == 0 ||
        monotime_s() - c->pool->last_cleanup >= RESULTS_CLEANUP_PERIOD_S) {
        buf_puts(&b, ";\nDELETE FROM ");
        mat_relation(&b, m->set.schema, "dbt_results");
        buf_puts(&b, " WHERE start_time < (now() AT TIME ZONE 'UTC') - interval '14 days'");
        cleanup = true;
    }
    rc = any ? exec_sql(conn, b.data, "could not record the run in dbt_results", NULL, err) : CS_OK;
    if (rc == CS_OK && any && cleanup)
        c->pool->last_cleanup = monotime_s();
    buf_free(&b);
    return rc;
}

/* "2024-05-01 10:00:00.123456" (UTC) as dbt's "2024-05-01T10:00:00.123456Z" */
static pv *iso_time(const char *utc)
{
    char t[80];
    snprintf(t, sizeof(t), "%.10sT%sZ", utc, strlen(utc) > 11 ? utc + 11 : "");
    return pv_str(t);
}

static pv *timing_entry(const char *name, const char *start, const char *end)
{
    pv *t = pv_new(PV_MAP);
    pv_set(t, "name", pv_str(name));
    pv_set(t, "started_at", iso_time(start));
    pv_set(t, "completed_at", iso_time(end));
    return t;
}

/*
 * The run's results for on-run-end's `results`, shaped like dbt's
 * RunResult.to_dict() (see dbt_render_opts): what a project's own
 * dbt_results macros read.
 */
static pv *results_value(const run_ctx *c)
{
    const dbt_manifest *m = c->m;
    pv *l = pv_new(PV_LIST);
    for (size_t i = 0; i < m->p->nmodels; i++) {
        const pl_model *pm = &m->p->models[i];
        const model_result *res = &c->res[i];
        pv *r, *node, *resp, *timing, *cfg;
        char uid[512];
        if (c->state[i] == ST_NONE || c->state[i] == ST_PENDING)
            continue;
        dbt_unique_id(m->p, i, uid, sizeof(uid));
        r = pv_new(PV_MAP);
        node = pv_new(PV_MAP);
        pv_set(node, "unique_id", pv_str(uid));
        pv_set(node, "database", pv_str(m->set.database ? m->set.database : ""));
        pv_set(node, "schema", pv_str(m->nodes[i].schema));
        pv_set(node, "name", pv_str(pm->name));
        pv_set(node, "alias", pv_str(m->nodes[i].relname));
        pv_set(node, "resource_type", pv_str("model"));
        pv_set(node, "package_name", pv_str(m->p->packages[pm->package].name));
        pv_set(node, "original_file_path", pv_str(pm->relpath));
        cfg = pv_new(PV_MAP);
        pv_set(cfg, "materialized", pv_str(dbt_node_mat_name(&m->nodes[i])));
        pv_set(node, "config", cfg);
        pv_set(r, "node", node);
        pv_set(r, "status", pv_str(status_name(c->state[i])));
        pv_set(r, "execution_time", pv_new(PV_FLOAT));
        pv_get(r, "execution_time")->f = res->seconds;
        pv_set(r, "message", res->message ? pv_str(res->message) : pv_new(PV_NULL));
        pv_set(r, "thread_id", pv_str("Thread-1"));
        pv_set(r, "failures", pv_new(PV_NULL));
        resp = pv_new(PV_MAP);
        if (c->state[i] == ST_OK) {
            pv_set(resp, "_message", pv_str(res->message ? res->message : ""));
            pv_set(resp, "rows_affected", pv_int(res->rows));
        }
        pv_set(r, "adapter_response", resp);
        timing = pv_new(PV_LIST);
        if (c->state[i] != ST_SKIPPED) {
            pv_push(timing, timing_entry("compile", res->start, res->start));
            pv_push(timing, timing_entry("execute", res->start, res->end));
        }
        pv_set(r, "timing", timing);
        pv_push(l, r);
    }
    return l;
}

/* a progress line: "N of M STATUS what ....... [detail]" */
static void step_line(FILE *out, int index, int total, const char *status, const char *what,
                      const char *detail)
{
    char left[640], when[16];
    time_t t = time(NULL);
    struct tm tm;
    int n;

    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%H:%M:%S", &tm);
    n = snprintf(left, sizeof(left), "%d of %d %s %s ", index, total, status, what);
    fprintf(out, "%s  %s", when, left);
    for (int k = n; k < 72; k++)
        fputc('.', out);
    fprintf(out, " [%s]\n", detail);
    fflush(out);
}

/* whether test t is selected: a model it reads is, or a seed it tests is */
static bool test_selected(const run_ctx *c, size_t t)
{
    const dbt_manifest *m = c->m;
    const pl_test *pt = &m->p->tests[t];
    const dbt_test_node *tn = &m->tests[t];

    if (!tn->enabled)
        return false;
    if (pt->model >= 0)
        return c->o->selected[pt->model];
    if (pt->seed >= 0 || pt->source >= 0 || (tn->ndeps == 0 && tn->nseed_deps == 0)) {
        bool any_model = false;
        for (size_t d = 0; d < tn->ndeps; d++)
            any_model = any_model || c->o->selected[tn->deps[d]];
        if (any_model)
            return true;
        if (pt->seed >= 0)
            return c->o->selected_seeds && c->o->selected_seeds[pt->seed];
        /* a source's or a singular test without refs: with every model selected */
        for (size_t i = 0; i < m->p->nmodels; i++)
            if (!c->o->selected[i])
                return false;
        return true;
    }
    for (size_t d = 0; d < tn->ndeps; d++)
        if (c->o->selected[tn->deps[d]])
            return true;
    for (size_t d = 0; d < tn->nseed_deps; d++)
        if (c->o->selected_seeds && c->o->selected_seeds[tn->seed_deps[d]])
            return true;
    return false;
}

/* whether test t reads a model or seed that failed (or was skipped) in this build */
static bool test_blocked(const run_ctx *c, size_t t)
{
    const dbt_test_node *tn = &c->m->tests[t];
    for (size_t d = 0; c->o->failed_models && d < tn->ndeps; d++)
        if (c->o->failed_models[tn->deps[d]])
            return true;
    for (size_t d = 0; c->o->failed_seeds && d < tn->nseed_deps; d++)
        if (c->o->failed_seeds[tn->seed_deps[d]])
            return true;
    return false;
}

/* a config text of a test (fail_calc, warn_if, error_if), or def */
static const char *test_cfg(const pv *cfg, const char *key, const char *def)
{
    const pv *v = pv_get(cfg, key);
    return pv_s(v) && *v->s ? v->s : def;
}

/*
 * dbt's test query around the test's own: fail_calc (default count(*))
 * of the failing rows, compared with warn_if and error_if (default != 0);
 * limit from the config.
 */
static void test_query(buf *q, const pv *cfg, const char *sql)
{
    const char *calc = test_cfg(cfg, "fail_calc", "count(*)");
    const pv *limit = pv_get(cfg, "limit");

    buf_printf(q, "select %s as failures, (%s) %s as should_warn, (%s) %s as should_error from (",
               calc, calc, test_cfg(cfg, "warn_if", "!= 0"), calc,
               test_cfg(cfg, "error_if", "!= 0"));
    buf_puts(q, "\n");
    buf_puts(q, sql);
    buf_puts(q, "\n");
    if (limit && limit->type == PV_INT)
        buf_printf(q, "limit %lld\n", (long long)limit->i);
    buf_puts(q, ") dbt_internal_test");
}

enum { TEST_PASS, TEST_WARN, TEST_FAIL, TEST_ERROR, TEST_SKIP };

/* runs test t: its status, *failures the fail_calc's value, terr the reason of an error */
static int run_one_test(run_ctx *c, dbt_worker *w, sql_ud *sud, size_t t, char *failures,
                        size_t nfailures, cs_error *terr)
{
    const dbt_manifest *m = c->m;
    const pv *cfg = m->tests[t].config;
    const char *severity = test_cfg(cfg, "severity", "error");
    dbt_render_opts ro = {.execute = true, .sql = query_cb, .sql_ud = sud};
    pv *res = NULL;
    buf sql, q;
    int st = TEST_ERROR;

    snprintf(failures, nfailures, "0");
    buf_init(&sql, 0);
    buf_init(&q, 0);
    if (dbt_render_test(w, t, &ro, &sql, terr) != CS_OK)
        goto out;
    test_query(&q, cfg, sql.data ? sql.data : "");
    if (!buf_ok(&q)) {
        cs_fail(terr, CS_INVALID, "the test's query is too large");
        goto out;
    }
    if (query_cb(sud, q.data, &res, terr) != CS_OK)
        goto out;
    {
        const pv *rows = pv_get(res, "rows"), *row;
        if (!rows || rows->n != 1 || (row = rows->items[0])->n != 3) {
            cs_fail(terr, CS_INVALID, "the test's query returned %zu rows, not one",
                    rows ? rows->n : 0);
            goto out;
        }
        buf f;
        buf_init(&f, 64);
        if (row->items[0]->type == PV_NULL)
            buf_puts(&f, "0");
        else
            pv_to_text(row->items[0], &f);
        snprintf(failures, nfailures, "%s", f.data ? f.data : "0");
        buf_free(&f);
        bool should_warn = pv_truthy(row->items[1]), should_error = pv_truthy(row->items[2]);
        if (strcasecmp(severity, "error") == 0 && should_error)
            st = TEST_FAIL;
        else if (should_warn)
            st = TEST_WARN;
        else
            st = TEST_PASS;
    }
out:
    pv_free(res);
    buf_free(&sql);
    buf_free(&q);
    return st;
}

/*
 * Runs (or skips, when it reads a failure) test t, prints its line and logs
 * why it failed; records its status in o->tests.  Callers serialise the
 * printing: run_tests runs alone, build_tests under c->mu's protection of
 * the counters (the query itself runs outside the lock).
 */
static int test_step(run_ctx *c, dbt_worker *w, sql_ud *sud, size_t t)
{
    const dbt_manifest *m = c->m;
    const pl_test *pt = &m->p->tests[t];
    runner_tests *rt = c->tests;
    static const char *const names[] = {"PASS", "WARN", "FAIL", "ERROR", "SKIP"};
    char failures[64] = "0", d[160];
    cs_error terr = {0};
    double t0 = monotime_s();
    int st, index;

    st = test_blocked(c, t) ? TEST_SKIP
                            : run_one_test(c, w, sud, t, failures, sizeof(failures), &terr);
    if (st == TEST_WARN || st == TEST_FAIL)
        snprintf(d, sizeof(d), "%s %s in %.2fs", names[st], failures, monotime_s() - t0);
    else if (st == TEST_SKIP)
        snprintf(d, sizeof(d), "SKIP");
    else
        snprintf(d, sizeof(d), "%s in %.2fs", names[st], monotime_s() - t0);
    pthread_mutex_lock(&c->mu);
    index = ++rt->index;
    rt->status[t] = st + 1;
    step_line(c->o->out, index, rt->total, names[st], pt->name, d);
    pthread_mutex_unlock(&c->mu);
    if (st == TEST_WARN)
        log_warn(pt->name, "%s:%d: got %s result%s, configured to warn if %s", pt->file, pt->line,
                 failures, strcmp(failures, "1") == 0 ? "" : "s",
                 test_cfg(m->tests[t].config, "warn_if", "!= 0"));
    else if (st == TEST_FAIL)
        log_error(pt->name, "%s:%d: got %s result%s, configured to fail if %s", pt->file, pt->line,
                  failures, strcmp(failures, "1") == 0 ? "" : "s",
                  test_cfg(m->tests[t].config, "error_if", "!= 0"));
    else if (st == TEST_ERROR)
        log_error(pt->name, "%s", terr.msg);
    return st;
}

/*
 * build: the tests of model i, right after it built, as dbt build runs
 * them: each selected test not run yet that reads i and whose other models
 * are built (or not in the run).  Returns whether one failed (FAIL or
 * ERROR): i's dependants are then skipped.  Called without c->mu.
 */
static bool build_tests(run_ctx *c, dbt_worker *w, sql_ud *sud, size_t i)
{
    const dbt_manifest *m = c->m;
    bool failed = false;

    for (size_t t = 0; c->tests && t < m->p->ntests; t++) {
        const dbt_test_node *tn = &m->tests[t];
        bool reads_i = false, ready = true;
        if (c->tests->status[t] || !test_selected(c, t))
            continue;
        pthread_mutex_lock(&c->mu);
        for (size_t d = 0; d < tn->ndeps; d++) {
            size_t k = tn->deps[d];
            if (k == i)
                reads_i = true;
            else if (m->nodes[k].mat != MAT_EPHEMERAL && c->state[k] != ST_NONE &&
                     c->state[k] != ST_OK)
                ready = false;
        }
        pthread_mutex_unlock(&c->mu);
        for (size_t d = 0; c->o->failed_seeds && d < tn->nseed_deps; d++)
            ready = ready && !c->o->failed_seeds[tn->seed_deps[d]];
        if (!reads_i || !ready)
            continue;
        int st = test_step(c, w, sud, t);
        failed = failed || st == TEST_FAIL || st == TEST_ERROR;
    }
    return failed;
}

/* the selected, enabled tests not run yet (build runs most after their model) */
static cs_result run_tests(run_ctx *c, PGconn *conn, runner_summary *sum, cs_error *err)
{
    const dbt_manifest *m = c->m;
    dbt_worker *w = dbt_worker_new(m);
    sql_ud sud = {conn};
    runner_tests own = {0}, *rt = c->tests;

    (void)err;
    dbt_worker_set_run(w, &c->run);
    if (!rt) { /* `test`: the run's own counters */
        own.status = xcalloc(m->p->ntests + 1, sizeof(int));
        rt = c->tests = &own;
        for (size_t t = 0; t < m->p->ntests; t++)
            rt->total += test_selected(c, t);
    }
    for (size_t t = 0; t < m->p->ntests; t++)
        if (test_selected(c, t) && !rt->status[t])
            test_step(c, w, &sud, t);
    for (size_t t = 0; t < m->p->ntests; t++) {
        if (!test_selected(c, t))
            continue;
        switch (rt->status[t] - 1) {
        case TEST_PASS:
            sum->ok++;
            break;
        case TEST_WARN:
            sum->warnings++;
            break;
        case TEST_FAIL:
        case TEST_ERROR:
            sum->errors++;
            break;
        default:
            sum->skipped++;
        }
    }
    if (rt == &own) {
        c->tests = NULL;
        free(own.status);
    }
    dbt_worker_free(w);
    return CS_OK;
}

/* ---- seeds ---- */

typedef struct {
    run_ctx *c;
    dbt_worker *w;
    sql_ud *sud;
    size_t seed;
} seed_hooks_ud;

/* a seed's pre- or post-hooks, rendered with this = the seed (seed_hook_fn) */
static cs_result seed_hooks(void *ud, bool post, cs_error *err)
{
    seed_hooks_ud *h = ud;
    const dbt_seed_node *sn = &h->c->m->seeds[h->seed];
    tpl_template *const *hooks = post ? sn->post_hooks : sn->pre_hooks;
    size_t n = post ? sn->npost_hooks : sn->npre_hooks;
    dbt_render_opts ro = {.execute = true, .sql = query_cb, .sql_ud = h->sud};
    buf b;
    cs_result rc = CS_OK;

    buf_init(&b, 0);
    for (size_t i = 0; i < n && rc == CS_OK; i++) {
        buf_reset(&b);
        rc = dbt_render_seed_hook(h->w, h->seed, hooks[i], &ro, &b, err);
        if (rc == CS_OK && b.data && strspn(b.data, " \t\r\n;") != b.len)
            rc = exec_sql(h->sud->conn, b.data, post ? "post-hook failed" : "pre-hook failed", NULL,
                          err);
    }
    buf_free(&b);
    return rc;
}

/* loads the selected seeds one after the other on conn; failed_seeds notes the failures */
static cs_result run_seeds(run_ctx *c, PGconn *conn, runner_summary *sum)
{
    const dbt_manifest *m = c->m;
    dbt_worker *w = dbt_worker_new(m);
    sql_ud sud = {conn};
    int total = 0, index = 0;

    dbt_worker_set_run(w, &c->run);
    for (size_t i = 0; i < m->p->nseeds; i++)
        total += !c->o->selected_seeds || c->o->selected_seeds[i];
    for (size_t i = 0; i < m->p->nseeds; i++) {
        const pl_seed *s = &m->p->seeds[i];
        seed_hooks_ud hud = {c, w, &sud, i};
        char what[400], d[160];
        size_t rows = 0;
        cs_error e;
        double t0 = monotime_s();
        if (c->o->selected_seeds && !c->o->selected_seeds[i])
            continue;
        index++;
        snprintf(what, sizeof(what), "%s.%s", m->seeds[i].schema, s->name);
        if (seed_load(conn, s, m->seeds[i].schema, c->o->full_refresh, seed_hooks, &hud, &rows,
                      &e) == CS_OK) {
            char line[480];
            snprintf(line, sizeof(line), "loaded seed %s (%zu rows)", what, rows);
            snprintf(d, sizeof(d), "INSERT %zu in %.2fs", rows, monotime_s() - t0);
            step_line(c->o->out, index, total, "OK", line, d);
            sum->ok++;
            sum->rows += (long)rows;
        } else {
            char line[480];
            snprintf(line, sizeof(line), "loading seed %s", what);
            snprintf(d, sizeof(d), "ERROR in %.2fs", monotime_s() - t0);
            step_line(c->o->out, index, total, "ERROR", line, d);
            log_error(s->name, "%s", e.msg);
            sum->errors++;
            if (c->o->failed_seeds)
                c->o->failed_seeds[i] = true;
        }
    }
    /* build: the seeds' own tests now, and a failing one counts as a failed
     * seed for what reads it (dbt build skips a seed's children then) */
    for (size_t t = 0; c->tests && t < m->p->ntests; t++) {
        const dbt_test_node *tn = &m->tests[t];
        bool ready =
            tn->ndeps == 0 && tn->nseed_deps > 0 && !c->tests->status[t] && test_selected(c, t);
        for (size_t d = 0; ready && c->o->failed_seeds && d < tn->nseed_deps; d++)
            ready = !c->o->failed_seeds[tn->seed_deps[d]];
        if (!ready)
            continue;
        int st = test_step(c, w, &sud, t);
        for (size_t d = 0;
             (st == TEST_FAIL || st == TEST_ERROR) && c->o->failed_seeds && d < tn->nseed_deps; d++)
            c->o->failed_seeds[tn->seed_deps[d]] = true;
    }
    dbt_worker_free(w);
    return CS_OK;
}

/* whether model i refs a seed that failed, itself or through ephemeral models */
static bool reads_failed_seed(const run_ctx *c, size_t i, int depth)
{
    const dbt_node *nd = &c->m->nodes[i];
    for (size_t k = 0; c->o->failed_seeds && k < nd->nseed_deps; k++)
        if (c->o->failed_seeds[nd->seed_deps[k]])
            return true;
    for (size_t k = 0; k < nd->ndeps && depth < 64; k++)
        if (c->m->nodes[nd->deps[k]].mat == MAT_EPHEMERAL &&
            reads_failed_seed(c, nd->deps[k], depth + 1))
            return true;
    return false;
}

/* whether model i refs a model that is not ephemeral (through ephemerals) */
static bool reads_a_model(const dbt_manifest *m, size_t i, int depth)
{
    for (size_t k = 0; k < m->nodes[i].ndeps && depth < 64; k++) {
        size_t d = m->nodes[i].deps[k];
        if (m->nodes[d].mat != MAT_EPHEMERAL || reads_a_model(m, d, depth + 1))
            return true;
    }
    return false;
}

cs_result runner_run(const dbt_manifest *m, runner_pool *pool, const runner_opts *o,
                     runner_summary *sum, cs_error *err)
{
    size_t n = m->p->nmodels;
    run_ctx c = {.m = m, .pool = pool, .o = o, .tests = o->tests};
    pthread_t threads[RUNNER_MAX_THREADS];
    worker_arg args[RUNNER_MAX_THREADS];
    int nthreads = o->threads < 1 ? 1 : o->threads > pool->n ? pool->n : o->threads;
    double t0 = monotime_s();
    cs_result rc = CS_OK;
    PGconn *conn;
    sql_ud sud;
    dbt_worker *w = NULL;

    memset(sum, 0, sizeof(*sum));
    c.state = xcalloc(n + 1, sizeof(int));
    c.effdeps = xcalloc(n + 1, sizeof(size_t *));
    c.neffdeps = xcalloc(n + 1, sizeof(size_t));
    c.res = xcalloc(n + 1, sizeof(model_result));
    c.stored = xcalloc(n + 1, sizeof(*c.stored));
    c.kinds = xcalloc(n + 1, 1);
    c.tmp_kinds = xcalloc(n + 1, 1);
    c.bak_kinds = xcalloc(n + 1, 1);
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    invocation_id(c.inv, sizeof(c.inv));
    {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        c.run = (dbt_run_info){.invocation_id = c.inv,
                               .which = o->mode == RUNNER_COMPILE ? "compile"
                                        : o->mode == RUNNER_TEST  ? "test"
                                                                  : "run",
                               .full_refresh = o->full_refresh,
                               .started_us = (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000};
    }

    if (!(conn = pool_conn(pool, 0, err))) {
        rc = err->code;
        goto out;
    }
    sud.conn = conn;
    /* build's tests: numbered over its steps, counted once */
    if ((o->mode == RUNNER_BUILD || o->mode == RUNNER_SEED) && c.tests && c.tests->index == 0 &&
        c.tests->total == 0)
        for (size_t t = 0; t < m->p->ntests; t++)
            c.tests->total += test_selected(&c, t);
    if (o->mode == RUNNER_SEED) {
        rc = run_seeds(&c, conn, sum);
        goto out;
    }
    if (o->mode != RUNNER_TEST &&
        ((o->mode == RUNNER_BUILD && ((rc = setup_tables(&c, conn, err)) != CS_OK ||
                                      (rc = create_model_schemas(&c, conn, err)) != CS_OK)) ||
         (rc = read_state(&c, conn, err)) != CS_OK))
        goto out;
    if (o->mode == RUNNER_TEST) {
        rc = run_tests(&c, conn, sum, err);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (o->selected[i] && (m->nodes[i].mat != MAT_EPHEMERAL || o->mode == RUNNER_COMPILE))
            c.state[i] = ST_PENDING;
    for (size_t i = 0; i < n; i++) {
        if (c.state[i] == ST_PENDING) {
            c.total++;
            if (o->mode == RUNNER_BUILD)
                collect_effdeps(&c, i, i, 0);
        }
    }
    /* a model that reads a seed that failed to load is skipped, with its dependants */
    for (size_t k = 0; o->mode == RUNNER_BUILD && o->failed_seeds && k < n; k++) {
        size_t i = m->order[k];
        if (c.state[i] != ST_PENDING || !reads_failed_seed(&c, i, 0))
            continue;
        c.state[i] = ST_SKIPPED;
        c.res[i].index = ++c.started;
        c.finished++;
        utc_text(c.res[i].start, sizeof(c.res[i].start));
        memcpy(c.res[i].end, c.res[i].start, sizeof(c.res[i].end));
        print_line(&c, i, "SKIP", "SKIP (a seed it reads failed or failed a test)");
        skip_dependants(&c, i);
    }
    w = dbt_worker_new(m);
    dbt_worker_set_run(w, &c.run);
    if (o->mode == RUNNER_BUILD) {
        dbt_render_opts ro = {.execute = true, .sql = query_cb, .sql_ud = &sud};
        if ((rc = run_hooks(w, conn, -1, m->on_run_start, m->non_run_start, &ro, err)) != CS_OK) {
            cs_error_prefix(err, "on-run-start: ");
            goto out;
        }
    }
    for (int k = 0; k < nthreads; k++) {
        args[k].c = &c;
        args[k].slot = k;
        if (pthread_create(&threads[k], NULL, worker_main, &args[k]) != 0) {
            nthreads = k;
            break;
        }
    }
    if (nthreads == 0)
        worker_main(&(worker_arg){&c, 0});
    for (int k = 0; k < nthreads; k++)
        pthread_join(threads[k], NULL);
    for (size_t i = 0; i < n; i++) {
        sum->ok += c.state[i] == ST_OK;
        sum->errors += c.state[i] == ST_ERROR;
        sum->skipped += c.state[i] == ST_SKIPPED;
        if (o->failed_models && o->mode == RUNNER_BUILD)
            o->failed_models[i] = c.state[i] == ST_ERROR || c.state[i] == ST_SKIPPED;
        if (c.state[i] != ST_OK)
            continue;
        sum->rows += c.res[i].rows;
        if (m->nodes[i].mat == MAT_INCREMENTAL && !reads_a_model(m, i, 0) &&
            c.res[i].rows > sum->source_rows)
            sum->source_rows = c.res[i].rows;
    }
    if (c.lost) {
        *err = c.lost_err;
        rc = CS_TRANSIENT;
        goto out;
    }
    if (o->mode == RUNNER_BUILD) {
        pv *results = results_value(&c);
        dbt_render_opts ro = {.execute = true, .sql = query_cb, .sql_ud = &sud, .results = results};
        cs_error herr;
        if (!(conn = pool_conn(pool, 0, err))) {
            pv_free(results);
            rc = err->code;
            goto out;
        }
        sud.conn = conn;
        if (run_hooks(w, conn, -1, m->on_run_end, m->non_run_end, &ro, &herr) != CS_OK) {
            log_error("pipeline", "on-run-end: %s", herr.msg);
            sum->errors++;
        }
        pv_free(results);
        /* a project with its own dbt_results model writes its rows itself
         * (on-run-end); ours would be duplicates */
        if (c.total > 0 && !dbt_owns_results_table(m))
            rc = write_results(&c, conn, err);
    }
out:
    sum->seconds = monotime_s() - t0;
    if (rc == CS_OK && o->mode == RUNNER_BUILD)
        fprintf(o->out, "Finished running %d model%s in %.3fs: %d OK, %d error%s, %d skipped\n",
                c.total, c.total == 1 ? "" : "s", sum->seconds, sum->ok, sum->errors,
                sum->errors == 1 ? "" : "s", sum->skipped);
    else if (rc == CS_OK && o->mode == RUNNER_TEST)
        fprintf(o->out,
                "Finished running tests in %.3fs: %d passed, %d failed, %d warned, %d skipped\n",
                sum->seconds, sum->ok, sum->errors, sum->warnings, sum->skipped);
    else if (rc == CS_OK && o->mode == RUNNER_SEED)
        fprintf(o->out, "Finished loading %d seed%s in %.3fs: %d OK, %d error%s\n",
                sum->ok + sum->errors, sum->ok + sum->errors == 1 ? "" : "s", sum->seconds, sum->ok,
                sum->errors, sum->errors == 1 ? "" : "s");
    else if (rc == CS_OK)
        fprintf(o->out, "Compiled %d model%s into %s/compiled in %.3fs\n", sum->ok,
                sum->ok == 1 ? "" : "s", o->target_dir, sum->seconds);
    fflush(o->out);
    dbt_worker_free(w);
    for (size_t i = 0; i < n; i++) {
        free(c.effdeps[i]);
        free(c.res[i].message);
    }
    free(c.state);
    free(c.effdeps);
    free(c.neffdeps);
    free(c.res);
    free(c.stored);
    free(c.kinds);
    free(c.tmp_kinds);
    free(c.bak_kinds);
    pthread_mutex_destroy(&c.mu);
    pthread_cond_destroy(&c.cv);
    return rc;
}
