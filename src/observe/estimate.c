/*
 * estimate.c - `cht-sync estimate`: how much PostgreSQL disk the raw table
 * and its indexes will take, and how long the backfill will take, before a
 * first sync.
 *
 * Nothing is guessed from constants: for each database the command reads
 * the first --sample changes with the sync's own client and parser, stores
 * them with the sync's own store into a scratch schema (cs_estimate_<pid>,
 * dropped at the end), and measures what that took: bytes of the raw table
 * (heap and TOAST) and of its indexes, seconds spent reading and storing.
 * Those are scaled to the whole database by its info: by document bytes
 * when CouchDB reports sizes.external (CouchDB 2+), else by the number of
 * changes (doc_count + doc_del_count).  The sample is read and stored the
 * way the sync does it (a writer thread stores one batch while the next is
 * read), and the backfill time is the sum over databases of the sample's
 * scaled wall time: databases share the CPU, CouchDB and the raw table's
 * commit lock, so their times add up rather than overlap; plus
 * the measured set-up.  With a model project (--project-dir, or
 * DBT_LOCAL_PATH), its models are built on the sample in the scratch schema
 * and their size is scaled by the number of changes.
 */
#include "observe/observe.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/monotime.h"
#include "common/pg.h"
#include "feed/batch.h"
#include "feed/changes.h"
#include "feed/couch.h"
#include "pipeline/pipeline.h"
#include "store/store.h"

#define DEFAULT_SAMPLE 5000
#define MAX_ENV 4096

extern char **environ;
#define MAX_DEPTH 512

typedef struct {
    const char *db;
    long long total;                /* changes to read: doc_count + doc_del_count */
    long long external;             /* sizes.external, 0: unknown */
    long long rows;                 /* sampled changes */
    long long json;                 /* their document bytes */
    double read_s, store_s, wall_s; /* wall: reading and storing overlapped */
    double open_s;                  /* connecting, looking at the database: once, not scaled */
    long long heap, index;          /* bytes the sample added to the raw table and its indexes */
    double scale_bytes, scale_rows;
} sample;

/* ud: the batch being filled (batch **) */
static cs_result on_row(void *ud, const change_row *row, cs_error *err)
{
    batch *b = *(batch **)ud;
    if (!batch_add(b, row))
        return cs_fail(err, CS_TRANSIENT, "out of memory holding document \"%s\"", row->id);
    return CS_OK;
}

typedef struct {
    changes_parser *p;
} body_ctx;

static cs_result on_body(void *ud, const char *data, size_t len, cs_error *err)
{
    body_ctx *c = ud;
    return changes_parser_feed(c->p, data, len, err);
}

/* bytes of the scratch raw table: heap + TOAST, and its indexes */
static bool sizes(PGconn *conn, const char *schema, const cs_config *cfg, long long *heap,
                  long long *index)
{
    buf q;
    PGresult *res;
    const char *params[1];
    bool ok;

    buf_init(&q, 0);
    pg_quote_ident(&q, schema);
    buf_putc(&q, '.');
    pg_quote_ident(&q, cfg->postgres_table);
    params[0] = q.data;
    res = PQexecParams(conn, "SELECT pg_table_size($1::regclass), pg_indexes_size($1::regclass)", 1,
                       NULL, params, NULL, NULL, 0);
    ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (ok) {
        *heap = atoll(PQgetvalue(res, 0, 0));
        *index = atoll(PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    buf_free(&q);
    return ok;
}

/*
 * The sample is read and stored the way the sync does it: this thread reads
 * the next batch while a writer thread stores the previous one (two
 * batches, one handed over at a time), so the measured wall time includes
 * the overlap and the contention of the real thing.
 */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread_id;
    batch *full; /* handed to the writer until it is stored, NULL: none */
    bool done;   /* no more batches */
    store *st;
    cs_result rc; /* the writer's first failure */
    cs_error err;
    double store_s;
} handoff;

static void *writer_main(void *arg)
{
    handoff *h = arg;

    for (;;) {
        pthread_mutex_lock(&h->mu);
        while (!h->full && !h->done)
            pthread_cond_wait(&h->cv, &h->mu);
        batch *b = h->full;
        pthread_mutex_unlock(&h->mu);
        if (!b)
            return NULL;
        store_stats stats;
        double t0 = monotime_s();
        cs_result rc = h->rc == CS_OK ? store_write(h->st, b, &stats, &h->err) : h->rc;
        pthread_mutex_lock(&h->mu);
        h->store_s += monotime_s() - t0;
        h->rc = rc;
        h->full = NULL;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
    }
}

/* hands b to the writer once it has stored the previous batch (b NULL:
 * the end; the writer ends after that batch) */
static cs_result hand_over(handoff *h, batch *b, cs_error *err)
{
    pthread_mutex_lock(&h->mu);
    while (h->full)
        pthread_cond_wait(&h->cv, &h->mu);
    cs_result rc = h->rc;
    if (rc != CS_OK)
        *err = h->err;
    if (b && rc == CS_OK)
        h->full = b;
    if (!b)
        h->done = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return rc;
}

/* reads and stores the first want changes of s->db; err on failure */
static cs_result take_sample(const cs_config *cfg, const cs_config *scratch, sample *s, long want,
                             cs_error *err)
{
    volatile sig_atomic_t stop = 0;
    couch_client *couch = couch_new(cfg, s->db, &stop);
    changes_limits limits = {(size_t)cfg->max_doc_bytes, MAX_DEPTH};
    batch *bs[2] = {batch_new(), batch_new()};
    batch *cur = NULL;
    changes_parser *p = changes_parser_new(&limits, on_row, &cur);
    char source[512], *seq = NULL, *since = NULL;
    couch_db_info info = {0};
    cs_result rc;
    handoff h = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .rc = CS_OK};
    bool writing = false;
    body_ctx ctx = {p};
    double t0 = monotime_s();

    snprintf(source, sizeof(source), "%s/%s", cfg->source_name, s->db);
    h.st = store_new(scratch, source, s->db, &stop);
    if (!couch || !bs[0] || !bs[1] || !p || !h.st) {
        rc = cs_fail(err, CS_PERMANENT, "out of memory");
        goto out;
    }
    if ((rc = couch_db_info_get(couch, &info, err)) != CS_OK)
        goto out;
    s->total = info.doc_count + info.doc_del_count;
    s->external = info.sizes_external;
    if ((rc = store_open(h.st, false, &seq, NULL, err)) != CS_OK)
        goto out;
    since = seq;
    seq = NULL;
    if (pthread_create(&h.thread_id, NULL, writer_main, &h) != 0) {
        rc = cs_fail(err, CS_PERMANENT, "could not start a thread");
        goto out;
    }
    writing = true;
    s->open_s = monotime_s() - t0;
    t0 = monotime_s();
    for (int k = 0; s->rows < want; k++) {
        int limit = cfg->batch_size < want - s->rows ? cfg->batch_size : (int)(want - s->rows);
        bool timed_out = false;
        /* handed over two rounds ago: the last hand_over saw it stored */
        batch *b = bs[k % 2];

        batch_reset(b);
        changes_parser_reset(p);
        cur = b;
        double r0 = monotime_s();
        rc = couch_changes(couch, since, limit, limit, 0, on_body, &ctx, &timed_out, err);
        if (rc == CS_OK)
            rc = changes_parser_finish(p, err);
        if (rc != CS_OK)
            goto out;
        s->read_s += monotime_s() - r0;
        const char *last = changes_parser_last_seq(p);
        size_t n = changes_parser_rows(p);
        b->kind = BATCH_CHANGES;
        b->last_seq = last ? batch_strdup(b, last) : NULL;
        s->rows += (long long)n;
        s->json += (long long)b->bytes;
        if ((rc = hand_over(&h, b, err)) != CS_OK)
            goto out;
        if (last) {
            free(since);
            since = strdup(last);
        }
        if (n < (size_t)limit || !since)
            break; /* the end of the feed */
    }
out:
    if (writing) {
        cs_error werr;
        cs_result wrc = hand_over(&h, NULL, &werr); /* waits for the last batch */
        if (rc == CS_OK && wrc != CS_OK) {
            rc = wrc;
            *err = werr;
        }
        pthread_join(h.thread_id, NULL);
    }
    s->wall_s = monotime_s() - t0;
    s->store_s = h.store_s;
    couch_db_info_free(&info);
    store_free(h.st);
    changes_parser_free(p);
    batch_free(bs[0]);
    batch_free(bs[1]);
    couch_free(couch);
    free(since);
    free(seq);
    return rc;
}

static void mib(char *out, size_t n, double bytes)
{
    if (bytes >= 1024.0 * 1024 * 1024)
        snprintf(out, n, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
    else
        snprintf(out, n, "%.1f MiB", bytes / (1024.0 * 1024));
}

static void seconds_text(char *out, size_t n, double s)
{
    if (s < 120)
        snprintf(out, n, "%.1f s", s);
    else if (s < 7200)
        snprintf(out, n, "%.1f min", s / 60);
    else
        snprintf(out, n, "%.1f h", s / 3600);
}

/*
 * Builds the project's models on the sample in the scratch schema and
 * returns the bytes of every relation there but the sync's own tables and
 * the pipeline's bookkeeping; -1 when the project could not be built.
 */
static long long model_bytes(const cs_config *scratch, PGconn *conn, const char *dir)
{
    char *env[MAX_ENV + 2], schema_env[128];
    pipeline_session *ps = NULL;
    runner_summary sum;
    cs_error err;
    long long bytes = -1;
    int n = 0;

    /* the project's env_var('POSTGRES_SCHEMA') must name the scratch schema */
    snprintf(schema_env, sizeof(schema_env), "POSTGRES_SCHEMA=%s", scratch->postgres_schema);
    env[n++] = schema_env;
    for (char **e = environ; *e && n < MAX_ENV; e++)
        if (strncmp(*e, "POSTGRES_SCHEMA=", 16) != 0)
            env[n++] = *e;
    env[n] = NULL;
    printf("building the models of %s on the sample:\n", dir);
    fflush(stdout);
    if (pipeline_session_open(scratch, dir, env, NULL, &ps, &err) != CS_OK ||
        pipeline_session_run(ps, NULL, NULL, false, &sum, &err) != CS_OK) {
        fprintf(stderr, "cht-sync estimate: the models: %s\n", err.msg);
        goto out;
    }
    if (sum.errors > 0) {
        fprintf(stderr, "cht-sync estimate: %d models failed on the sample\n", sum.errors);
        goto out;
    }
    const char *params[2] = {scratch->postgres_schema, scratch->postgres_table};
    PGresult *res = PQexecParams(
        conn,
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN "
        "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN "
        "('r', 'm', 'p') AND c.relname NOT IN ($2, 'couchdb_progress', 'couchdb_rejects', "
        "'dbt_results', '_cht_sync_models')",
        2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        bytes = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
out:
    pipeline_session_close(ps);
    return bytes;
}

static void report(const sample *ss, int n, double setup_s, double models)
{
    double heap = 0, index = 0, time_s = setup_s;
    char a[32], b[32], c[32], d[32];

    printf("%-24s %10s %8s %12s %12s %10s %10s %10s\n", "database", "changes", "sample",
           "raw table", "its indexes", "read", "store", "backfill");
    for (int i = 0; i < n; i++) {
        const sample *s = &ss[i];
        double h = s->heap * s->scale_bytes, x = s->index * s->scale_rows;
        double r = s->read_s * s->scale_rows, w = s->store_s * s->scale_rows;
        double t = s->open_s + s->wall_s * s->scale_rows;
        heap += h;
        index += x;
        time_s += t;
        mib(a, sizeof(a), h);
        mib(b, sizeof(b), x);
        seconds_text(c, sizeof(c), r);
        seconds_text(d, sizeof(d), w);
        char e[32];
        seconds_text(e, sizeof(e), t);
        printf("%-24.24s %10lld %8lld %12s %12s %10s %10s %10s\n", s->db, s->total, s->rows, a, b,
               c, d, e);
    }
    mib(a, sizeof(a), heap);
    mib(b, sizeof(b), index);
    seconds_text(c, sizeof(c), time_s);
    printf("%-24s %10s %8s %12s %12s %10s %10s %10s\n", "total", "", "", a, b, "", "", c);
    if (models >= 0) {
        mib(a, sizeof(a), models);
        printf("models (built on the sample, scaled): %s\n", a);
    }
    printf("\nraw_table_bytes=%.0f index_bytes=%.0f model_bytes=%.0f total_bytes=%.0f "
           "backfill_seconds=%.1f\n",
           heap, index, models >= 0 ? models : 0, heap + index + (models >= 0 ? models : 0),
           time_s);
}

int estimate_main(const cs_config *cfg, int argc, char **argv)
{
    long want = DEFAULT_SAMPLE;
    const char *project = cfg->dbt_local_path;
    double setup_s, models = -1;
    long long total = 0, rows = 0;
    cs_config scratch = *cfg; /* shares cfg's strings: never freed */
    char schema[64];
    sample ss[CONFIG_MAX_DBS];
    cs_error err;
    PGconn *conn = NULL;
    int rc = 0, n = 0;
    buf q;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sample") == 0 && i + 1 < argc) {
            want = atol(argv[++i]);
            if (want < 1) {
                fprintf(stderr, "cht-sync estimate: --sample needs a positive number\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--project-dir") == 0 && i + 1 < argc) {
            project = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("Usage: cht-sync estimate [--sample N] [--project-dir DIR]\n\n"
                   "Reads the first N changes (default %d) of each database of COUCHDB_DBS,\n"
                   "stores them into a scratch schema of POSTGRES_DB with the sync's own code,\n"
                   "measures bytes and time, and scales them to each database's size: the\n"
                   "disk the raw table and its indexes will take and how long the first sync\n"
                   "will take on this machine. With a model project (--project-dir, default\n"
                   "DBT_LOCAL_PATH), its models are built on the sample too. The scratch\n"
                   "schema is dropped at the end.\n",
                   DEFAULT_SAMPLE);
            return 0;
        } else {
            fprintf(stderr, "cht-sync estimate: unknown option \"%s\"\n", argv[i]);
            return 2;
        }
    }
    if (cfg->ndbs == 0) {
        fprintf(stderr, "cht-sync estimate: COUCHDB_DBS names no database\n");
        return 2;
    }
    snprintf(schema, sizeof(schema), "cs_estimate_%ld", (long)getpid());
    scratch.postgres_schema = schema;
    buf_init(&q, 0);
    if (!couch_global_init()) {
        fprintf(stderr, "cht-sync estimate: could not initialise libcurl\n");
        return 1;
    }
    setup_s = monotime_s();
    conn = pg_connect(cfg, "cht-sync estimate", &err);
    if (!conn || store_setup(&scratch, NULL, &err) != CS_OK) {
        fprintf(stderr, "cht-sync estimate: %s\n", err.msg);
        rc = 1;
        goto out;
    }
    setup_s = monotime_s() - setup_s;
    for (int i = 0; i < cfg->ndbs; i++) {
        sample *s = &ss[n];
        long long heap0 = 0, index0 = 0;
        memset(s, 0, sizeof(*s));
        s->db = cfg->dbs[i];
        if (!sizes(conn, schema, cfg, &heap0, &index0) ||
            take_sample(cfg, &scratch, s, want, &err) != CS_OK ||
            !sizes(conn, schema, cfg, &s->heap, &s->index)) {
            fprintf(stderr, "cht-sync estimate: %s: %s\n", s->db,
                    err.msg[0] ? err.msg : "could not measure the scratch table");
            rc = 1;
            continue;
        }
        s->heap -= heap0;
        s->index -= index0;
        s->scale_rows = s->rows > 0 ? (double)s->total / (double)s->rows : 0;
        s->scale_bytes =
            s->external > 0 && s->json > 0 ? (double)s->external / (double)s->json : s->scale_rows;
        total += s->total;
        rows += s->rows;
        n++;
    }
    if (project && *project && rc == 0 && rows > 0) {
        long long b = model_bytes(&scratch, conn, project);
        if (b >= 0)
            models = (double)b * (double)total / (double)rows;
        else
            rc = 1;
    }
    if (models >= 0)
        putchar('\n');
    report(ss, n, setup_s, models);
out:
    if (conn) {
        buf_puts(&q, "DROP SCHEMA IF EXISTS ");
        pg_quote_ident(&q, schema);
        buf_puts(&q, " CASCADE");
        if (pg_exec(conn, q.data, &err) != CS_OK)
            fprintf(stderr, "cht-sync estimate: could not drop the scratch schema \"%s\": %s\n",
                    schema, err.msg);
    }
    PQfinish(conn);
    buf_free(&q);
    couch_global_cleanup();
    return rc;
}
