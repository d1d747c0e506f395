/*
 * worker.c - see worker.h.
 */
#include "sync/worker.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "feed/batch.h"
#include "feed/changes.h"
#include "feed/couch.h"
#include "common/log.h"
#include "common/stats.h"
#include "store/store.h"

#define BACKOFF_BASE_MS 250
#define BACKOFF_CAP_MS 30000
/* how often a database that failed permanently is looked at again */
#define RECHECK_FAILED_MS 30000
#define MAX_DEPTH 512
/* a batch holding more document bytes than this many largest documents
 * halves the next request's limit (it grows back after smaller batches), so
 * that a database of large documents never holds BATCH_SIZE of them at once */
#define BATCH_MAX_DOCS_WORTH 4

struct worker {
    const cs_config *cfg;
    char *db;
    char *source;
    bool once;
    volatile sig_atomic_t *stop;
    const sync_hooks *hooks;
    couch_client *couch;
    store *store;

    pthread_t reader_thread;
    pthread_t writer_thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* guarded by mu */
    batch *pool[WORKER_QUEUE_DEPTH + 1]; /* free batches */
    int npool;
    batch *queue[WORKER_QUEUE_DEPTH + 1]; /* full batches, FIFO */
    int nqueue;
    char *checkpoint; /* set once by the writer, read by the reader */
    bool writer_gone;
    bool failed;
};

/* ---- helpers ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Sleeps ms in short slices; false when stop was raised meanwhile. */
static bool sleep_ms(volatile sig_atomic_t *stop, long ms)
{
    while (ms > 0 && !*stop) {
        long slice = ms < 100 ? ms : 100;
        struct timespec ts = {0, slice * 1000000L};
        nanosleep(&ts, NULL);
        ms -= slice;
    }
    return !*stop;
}

/* Capped exponential back-off with full jitter: the attempt-th wait. */
static long backoff_ms(int attempt)
{
    long cap = BACKOFF_BASE_MS;
    for (int i = 0; i < attempt && cap < BACKOFF_CAP_MS; i++)
        cap *= 2;
    if (cap > BACKOFF_CAP_MS)
        cap = BACKOFF_CAP_MS;
    return cap / 2 + (long)((unsigned long)random() % (unsigned long)(cap / 2 + 1));
}

/*
 * Tracks one side's health so that a failure is logged when it starts (and
 * when its class or message changes), not on every retry, and recovery is
 * logged once.
 */
typedef struct {
    int attempts;
    char last[CS_ERROR_MAX];
} health;

static void health_failed(health *h, const char *scope, const cs_error *err, long wait_ms)
{
    if (h->attempts == 0 || strcmp(h->last, err->msg) != 0)
        log_warn(scope, "%s (%s; retrying, next attempt in %ld ms)", err->msg,
                 cs_result_name(err->code), wait_ms);
    else
        log_debug(scope, "still failing: %s", err->msg);
    snprintf(h->last, sizeof(h->last), "%s", err->msg);
    h->attempts++;
}

static void health_ok(health *h, const char *scope, const char *what)
{
    if (h->attempts > 0)
        log_info(scope, "%s again after %d failed attempts", what, h->attempts);
    h->attempts = 0;
    h->last[0] = '\0';
}

static bool all_digits(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* ---- the queue ---- */

/* the next free batch, NULL when stopping */
static batch *take_free(worker *w)
{
    batch *b = NULL;

    pthread_mutex_lock(&w->mu);
    while (w->npool == 0 && !*w->stop && !w->writer_gone) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    if (w->npool > 0 && !w->writer_gone)
        b = w->pool[--w->npool];
    pthread_mutex_unlock(&w->mu);
    if (b)
        batch_reset(b);
    return b;
}

static void give_back(worker *w, batch *b)
{
    pthread_mutex_lock(&w->mu);
    w->pool[w->npool++] = b;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void enqueue(worker *w, batch *b)
{
    pthread_mutex_lock(&w->mu);
    w->queue[w->nqueue++] = b;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* the oldest full batch; waits as long as it takes (END always comes) */
static batch *dequeue(worker *w)
{
    batch *b;

    pthread_mutex_lock(&w->mu);
    while (w->nqueue == 0)
        pthread_cond_wait(&w->cv, &w->mu);
    b = w->queue[0];
    memmove(&w->queue[0], &w->queue[1], (size_t)(w->nqueue - 1) * sizeof(batch *));
    w->nqueue--;
    pthread_mutex_unlock(&w->mu);
    return b;
}

/* ---- the reader ---- */

typedef struct {
    changes_parser *parser;
    batch *b;
} read_ctx;

static cs_result on_row(void *ud, const change_row *row, cs_error *err)
{
    read_ctx *rc = ud;
    if (!batch_add(rc->b, row))
        return cs_fail(err, CS_TRANSIENT, "out of memory holding document \"%s\"", row->id);
    return CS_OK;
}

static cs_result on_body(void *ud, const char *data, size_t len, cs_error *err)
{
    read_ctx *rc = ud;
    return changes_parser_feed(rc->parser, data, len, err);
}

/*
 * Looks at the database before following it: does it exist, can we read
 * it, and has it been re-created since our checkpoint (an integer sequence
 * of a server that uses integers, now behind our checkpoint)?  Opaque
 * CouchDB 2+ sequences are never compared.
 */
static cs_result inspect(worker *w, const char *since, bool *reset, cs_error *err)
{
    couch_db_info info;
    cs_result rc = couch_db_info_get(w->couch, &info, err);

    *reset = false;
    if (rc != CS_OK)
        return rc;
    stats_db_info(w->db, info.doc_count + info.doc_del_count);
    if (info.update_seq_is_number && all_digits(since) && all_digits(info.update_seq) &&
        strtoull(info.update_seq, NULL, 10) < strtoull(since, NULL, 10)) {
        log_warn(w->db,
                 "the database is behind our checkpoint (update_seq %s, checkpoint %s): it was "
                 "deleted and re-created; reading it again from the start and marking documents "
                 "it no longer has as deleted",
                 info.update_seq, since);
        *reset = true;
    }
    couch_db_info_free(&info);
    return CS_OK;
}

static void report_failure(worker *w, const cs_error *err)
{
    batch *b = take_free(w);

    log_error(w->db, "%s", err->msg);
    stats_db_failed(w->db, STATS_COUCHDB, err->code, err->msg, false);
    if (!b)
        return;
    b->kind = BATCH_FAILED;
    b->error = batch_strdup(b, err->msg);
    enqueue(w, b);
}

static void *reader_main(void *arg)
{
    worker *w = arg;
    changes_limits limits = {(size_t)w->cfg->max_doc_bytes, MAX_DEPTH};
    read_ctx ctx = {changes_parser_new(&limits, on_row, &ctx), NULL};
    char *since = NULL;
    bool inspected = false, restart = false, caught_up = false, vanished = false;
    int limit = w->cfg->batch_size;
    health h = {0};
    cs_error err;
    batch *end;

    /* the writer reads the checkpoint first */
    pthread_mutex_lock(&w->mu);
    while (!w->checkpoint && !w->writer_gone && !*w->stop)
        pthread_cond_wait(&w->cv, &w->mu);
    if (w->checkpoint)
        since = strdup(w->checkpoint);
    pthread_mutex_unlock(&w->mu);
    if (!ctx.parser || !since)
        goto out;

    while (!*w->stop) {
        cs_result rc = CS_OK;
        bool timed_out = false;
        double t0 = now_ms();

        if (!inspected) {
            bool reset = false;
            rc = inspect(w, since, &reset, &err);
            if (rc == CS_OK && (reset || (vanished && strcmp(since, "0") != 0))) {
                if (!reset)
                    log_warn(w->db, "the database is back after it vanished: reading it again "
                                    "from the start and marking documents it no longer has as "
                                    "deleted");
                char *zero = strdup("0");
                if (!zero)
                    break;
                free(since);
                since = zero;
                restart = true;
            }
            if (rc == CS_OK)
                inspected = true;
        }
        if (rc == CS_OK) {
            if (!(ctx.b = take_free(w)))
                break;
            changes_parser_reset(ctx.parser);
            t0 = now_ms();
            rc = couch_changes(w->couch, since, limit,
                               caught_up ? w->cfg->longpoll_seconds * 1000 : 0, on_body, &ctx,
                               &timed_out, &err);
            if (rc == CS_OK && timed_out && changes_parser_rows(ctx.parser) == 0) {
                ctx.b->kind = BATCH_IDLE; /* nothing happened: keep updated_at fresh */
            } else if (rc == CS_OK) {
                rc = changes_parser_finish(ctx.parser, &err);
            }
            if (rc != CS_OK) {
                give_back(w, ctx.b);
                ctx.b = NULL;
            }
        }
        if (rc == CS_STOPPED)
            break;
        if (rc == CS_TRANSIENT || rc == CS_INVALID) {
            long wait = backoff_ms(h.attempts);
            stats_db_failed(w->db, STATS_COUCHDB, rc, err.msg, true);
            health_failed(&h, w->db, &err, wait);
            if (!sleep_ms(w->stop, wait))
                break;
            continue;
        }
        if (rc == CS_PERMANENT) {
            /* a database that vanished after we followed it may come back:
             * it is then read again from the start */
            if (strcmp(since, "0") != 0 && couch_last_status(w->couch) == 404)
                vanished = true;
            report_failure(w, &err);
            if (w->once)
                break;
            log_info(w->db, "will look at the database again in %d s", RECHECK_FAILED_MS / 1000);
            inspected = false;
            h.attempts = 0;
            if (!sleep_ms(w->stop, RECHECK_FAILED_MS))
                break;
            continue;
        }
        health_ok(&h, w->db, "CouchDB answers");
        vanished = false;

        batch *b = ctx.b;
        ctx.b = NULL;
        b->fetch_ms = now_ms() - t0;
        if (b->kind == BATCH_CHANGES) {
            long long pending = 0;
            const char *last = changes_parser_last_seq(ctx.parser);
            b->has_pending = changes_parser_pending(ctx.parser, &pending);
            b->pending = pending;
            b->last_seq = last ? batch_strdup(b, last) : NULL;
            b->caught_up =
                b->has_pending ? pending == 0 : changes_parser_rows(ctx.parser) < (size_t)limit;
            b->restart = restart;
            restart = false;
            if (last) {
                char *n = strdup(last);
                if (n) {
                    free(since);
                    since = n;
                }
            }
        }
        size_t target = (size_t)w->cfg->max_doc_bytes * BATCH_MAX_DOCS_WORTH;
        if (b->bytes > target && limit > 1) {
            limit /= 2;
            log_info(w->db, "a batch held %zu MiB of documents: reading %d changes per request",
                     b->bytes >> 20, limit);
        } else if (b->bytes < target / 4 && limit < w->cfg->batch_size) {
            limit = limit * 2 > w->cfg->batch_size ? w->cfg->batch_size : limit * 2;
        }
        caught_up = b->kind == BATCH_IDLE || b->caught_up;
        /* a quiet feed may also mean the database was re-created behind a
         * sequence it has not reached again: look at it once per idle wait */
        if (b->kind == BATCH_IDLE || (caught_up && b->nrows == 0))
            inspected = false;
        enqueue(w, b);
        if (w->once && caught_up)
            break;
    }
out:
    if (ctx.b)
        give_back(w, ctx.b);
    changes_parser_free(ctx.parser);
    free(since);
    /* END always gets through: the writer waits for it */
    end = batch_new();
    if (end) {
        end->kind = BATCH_END;
        enqueue(w, end);
    } else {
        pthread_mutex_lock(&w->mu);
        w->writer_gone = true; /* cannot happen in practice; never hang */
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
    return NULL;
}

/* ---- the writer ---- */

static void log_stored(worker *w, const batch *b, const store_stats *st, double ms)
{
    char pending[32] = "unknown";

    if (b->has_pending)
        snprintf(pending, sizeof(pending), "%lld", b->pending);
    /* per batch: debug (the progress display and its summary say it at info) */
    log_debug(w->db,
              "stored %zu docs up to seq \"%.40s%s\" in %.0f ms (read in %.0f ms, pending %s%s)",
              st->stored, b->last_seq ? b->last_seq : "?",
              b->last_seq && strlen(b->last_seq) > 40 ? "…" : "", ms, b->fetch_ms, pending,
              st->rejected ? ", some rejected" : "");
    if (st->rejected)
        log_warn(w->db, "%zu documents recorded in the rejects table", st->rejected);
    if (st->marked_deleted)
        log_info(w->db, "marked %zu documents the re-created database no longer has as deleted",
                 st->marked_deleted);
}

static void *writer_main(void *arg)
{
    worker *w = arg;
    health h = {0};
    cs_error err;
    char *seq = NULL;
    bool given_up = false;

    /* connect and read the checkpoint */
    while (!*w->stop) {
        cs_result rc = store_open(w->store, &seq, &err);
        if (rc == CS_OK)
            break;
        if (rc == CS_PERMANENT && w->once) {
            log_error(w->db, "%s", err.msg);
            given_up = true;
            break;
        }
        long wait = rc == CS_PERMANENT ? BACKOFF_CAP_MS : backoff_ms(h.attempts);
        stats_db_failed(w->db, STATS_POSTGRES, rc, err.msg, true);
        health_failed(&h, w->db, &err, wait);
        sleep_ms(w->stop, wait);
    }
    pthread_mutex_lock(&w->mu);
    if (seq) {
        w->checkpoint = seq;
        stats_db_resumed(w->db, seq);
        log_info(w->db, "resuming from seq \"%.40s\"", seq);
    } else {
        w->writer_gone = true;
        w->failed = given_up;
    }
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    health_ok(&h, w->db, "PostgreSQL answers");

    for (;;) {
        batch *b = dequeue(w);
        store_stats st;
        double t0 = now_ms();
        bool stored = false;

        if (b->kind == BATCH_END) {
            batch_free(b);
            break;
        }
        if (b->kind == BATCH_FAILED)
            w->failed = true;
        while (seq && !given_up) {
            cs_result rc = store_write(w->store, b, &st, &err);
            if (rc == CS_OK) {
                stored = true;
                health_ok(&h, w->db, "PostgreSQL answers");
                break;
            }
            if (*w->stop || (w->once && rc == CS_PERMANENT)) {
                log_error(w->db,
                          "could not store a batch: %s; it will be read again on the "
                          "next start",
                          err.msg);
                given_up = true;
                w->failed = w->failed || rc == CS_PERMANENT;
                break;
            }
            long wait = rc == CS_PERMANENT ? BACKOFF_CAP_MS : backoff_ms(h.attempts);
            stats_db_failed(w->db, STATS_POSTGRES, rc, err.msg, true);
            health_failed(&h, w->db, &err, wait);
            store_disconnect(w->store);
            sleep_ms(w->stop, wait);
            char *ignored = NULL;
            if (store_open(w->store, &ignored, &err) != CS_OK)
                store_disconnect(w->store);
            free(ignored);
        }
        if (stored && b->kind != BATCH_FAILED)
            stats_db_stored(w->db,
                            &(stats_batch){(long)b->nrows, (long)st.stored, (long)st.rejected,
                                           (long)b->bytes, (now_ms() - t0) / 1000, b->last_seq,
                                           b->has_pending ? b->pending : -1,
                                           b->kind == BATCH_IDLE || b->caught_up});
        if (stored && b->kind == BATCH_CHANGES && b->nrows > 0) {
            if (w->hooks && w->hooks->on_commit)
                w->hooks->on_commit(w->hooks->ud, w->db, b->nrows);
            log_stored(w, b, &st, now_ms() - t0);
            w->failed = false;
        }
        if (given_up) {
            /* the reader must not wait for room that never comes */
            pthread_mutex_lock(&w->mu);
            w->writer_gone = true;
            pthread_cond_broadcast(&w->cv);
            pthread_mutex_unlock(&w->mu);
        }
        give_back(w, b);
    }
    return NULL;
}

/* ---- life cycle ---- */

worker *worker_start(const cs_config *cfg, const char *db, bool once, volatile sig_atomic_t *stop,
                     const sync_hooks *hooks)
{
    worker *w = calloc(1, sizeof(*w));

    if (!w)
        return NULL;
    w->cfg = cfg;
    w->once = once;
    w->stop = stop;
    w->hooks = hooks;
    w->db = strdup(db);
    if (asprintf(&w->source, "%s/%s", cfg->couchdb_host, db) < 0)
        w->source = NULL;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (!w->db || !w->source)
        goto error;
    w->couch = couch_new(cfg, db, stop);
    w->store = store_new(cfg, w->source, w->db);
    if (!w->couch || !w->store)
        goto error;
    for (int i = 0; i < WORKER_QUEUE_DEPTH + 1; i++) {
        if (!(w->pool[i] = batch_new()))
            goto error;
        w->npool++;
    }
    log_info(db, "following %s into source \"%s\"", couch_display_url(w->couch), w->source);
    if (pthread_create(&w->writer_thread, NULL, writer_main, w) != 0)
        goto error;
    if (pthread_create(&w->reader_thread, NULL, reader_main, w) != 0) {
        /* the writer waits for END: give it one */
        batch *end = w->pool[--w->npool];
        end->kind = BATCH_END;
        enqueue(w, end);
        pthread_join(w->writer_thread, NULL);
        goto error;
    }
    return w;

error:
    log_error(db, "could not start a worker: out of memory or threads");
    for (int i = 0; i < w->npool; i++)
        batch_free(w->pool[i]);
    couch_free(w->couch);
    store_free(w->store);
    free(w->db);
    free(w->source);
    free(w);
    return NULL;
}

bool worker_join(worker *w)
{
    bool ok;

    pthread_join(w->reader_thread, NULL);
    pthread_join(w->writer_thread, NULL);
    ok = !w->failed;
    for (int i = 0; i < w->npool; i++)
        batch_free(w->pool[i]);
    for (int i = 0; i < w->nqueue; i++)
        batch_free(w->queue[i]);
    couch_free(w->couch);
    store_free(w->store);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->checkpoint);
    free(w->db);
    free(w->source);
    free(w);
    return ok;
}
