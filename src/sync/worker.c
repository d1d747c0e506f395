/*
 * worker.c - see worker.h.
 */
#include "sync/worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "feed/batch.h"
#include "feed/changes.h"
#include "feed/couch.h"
#include "common/backoff.h"
#include "common/log.h"
#include "common/monotime.h"
#include "common/signals.h"
#include "common/stats.h"
#include "store/store.h"
#include "sync/reader_policy.h"

#define MAX_DEPTH 512

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
    batch *pool[WORKER_BATCHES]; /* free batches */
    int npool;
    batch *queue[WORKER_BATCHES + 1]; /* full batches, FIFO (+1: END) */
    int nqueue;
    size_t held;      /* document bytes queued or being written */
    size_t max_bytes; /* BATCH_MAX_BYTES */
    char *checkpoint; /* set once by the writer, read by the reader */
    bool vanished;    /* set with checkpoint: the database had vanished */
    bool writer_gone;
    bool failed;
};

/* ---- helpers ---- */

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

/* ---- the queue ---- */

/* the next free batch, NULL when stopping; waits while the batches ahead
 * hold two batches' worth of bytes, so that memory stays bounded whatever
 * the document sizes */
static batch *take_free(worker *w)
{
    batch *b = NULL;

    pthread_mutex_lock(&w->mu);
    if ((w->npool == 0 || w->held >= 2 * w->max_bytes) && !*w->stop && !w->writer_gone)
        log_debug(w->db, "the writer is behind (%d batches queued): the reader waits for it",
                  w->nqueue);
    while ((w->npool == 0 || w->held >= 2 * w->max_bytes) && !*w->stop && !w->writer_gone) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    if (w->npool > 0 && !w->writer_gone && !*w->stop)
        b = w->pool[--w->npool];
    pthread_mutex_unlock(&w->mu);
    if (b)
        batch_reset(b);
    return b;
}

/* returns a batch to the pool; stored: the writer is done with it (its
 * bytes no longer count as held), else the reader never queued it */
static void give_back(worker *w, batch *b, bool stored)
{
    pthread_mutex_lock(&w->mu);
    if (stored)
        w->held -= b->bytes;
    w->pool[w->npool++] = b;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void enqueue(worker *w, batch *b)
{
    pthread_mutex_lock(&w->mu);
    w->held += b->bytes;
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
    worker *w;
    reader_policy *pol;
    changes_parser *parser;
    batch *b;       /* the batch being filled */
    double b_start; /* when it was started */
} read_ctx;

/* the seq of the last row of b that carries one, NULL if none does */
static const char *last_row_seq(const batch *b)
{
    for (size_t i = b->nrows; i-- > 0;)
        if (b->rows[i].seq)
            return b->rows[i].seq;
    return NULL;
}

/*
 * Each row goes into the batch being filled.  A full batch (BATCH_SIZE
 * rows or BATCH_MAX_BYTES of documents) is queued when the next row
 * arrives, checkpointed at its last row's own seq, and the response goes on
 * into a new one; full when the answer ends, it takes the answer's
 * last_seq, so an answer that ends at a cut costs no transaction of its
 * own.  Waiting for a free batch here holds the transfer (TCP holds the
 * server).
 */
static cs_result on_row(void *ud, const change_row *row, cs_error *err)
{
    read_ctx *rc = ud;
    batch *b = rc->b;

    if (rp_cut_due(rc->pol, b->nrows, b->bytes)) {
        b->last_seq = (char *)last_row_seq(b); /* in b's arena */
        b->restart = rp_cut(rc->pol, b->last_seq);
        b->fetch_ms = monotime_ms() - rc->b_start;
        enqueue(rc->w, b);
        rc->b_start = monotime_ms();
        if (!(b = rc->b = take_free(rc->w)))
            return cs_fail(err, CS_STOPPED, "stopped");
    }
    if (!batch_add(b, row))
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
 * it, and has it been re-created since our checkpoint (the policy decides
 * from its update_seq)?  *oom: the policy ran out of memory.
 */
static cs_result inspect(worker *w, reader_policy *pol, bool *oom, cs_error *err)
{
    couch_db_info info;
    cs_result rc = couch_db_info_get(w->couch, &info, err);
    char *since;

    *oom = false;
    if (rc != CS_OK)
        return rc;
    stats_db_info(w->db, info.doc_count + info.doc_del_count);
    since = strdup(pol->since);
    switch (rp_inspected(pol, info.update_seq, info.update_seq_is_number, oom)) {
    case RP_RESYNC_BEHIND:
        log_warn(w->db,
                 "the database is behind our checkpoint (update_seq %s, checkpoint %s): it was "
                 "deleted and re-created; reading it again from the start and marking documents "
                 "it no longer has as deleted",
                 info.update_seq, since ? since : "?");
        break;
    case RP_RESYNC_BACK:
        log_warn(w->db, "the database is back after it vanished: reading it again from the start "
                        "and marking documents it no longer has as deleted");
        break;
    case RP_RESYNC_NONE:
        break;
    }
    free(since);
    couch_db_info_free(&info);
    return CS_OK;
}

/* Records err in couchdb_progress.error through the writer; a transient
 * one was logged by health_failed already and is retried.  vanished: the
 * database answered 404 after we followed it (kept across restarts). */
static void report_failure(worker *w, const cs_error *err, bool transient, bool vanished)
{
    batch *b;

    if (!transient) {
        log_error(w->db, "%s", err->msg);
        stats_db_failed(w->db, STATS_COUCHDB, err->code, err->msg, false);
    }
    if (!(b = take_free(w)))
        return;
    b->kind = BATCH_FAILED;
    b->transient = transient;
    b->error = batch_strdup(b, err->msg);
    b->vanished = vanished;
    enqueue(w, b);
}

/*
 * The reader's loop: it asks the policy (reader_policy.h) what to do next,
 * does it, and tells the policy what happened.  Retries, resyncs and the
 * request size are decided there, not here.
 */
static void *reader_main(void *arg)
{
    worker *w = arg;
    changes_limits limits = {(size_t)w->cfg->max_doc_bytes, MAX_DEPTH};
    reader_policy pol;
    read_ctx ctx = {w, &pol, changes_parser_new(&limits, on_row, &ctx), NULL, 0};
    bool have_pol = false;
    health h = {0};
    cs_error err;
    batch *end;

    /* the writer reads the checkpoint first */
    pthread_mutex_lock(&w->mu);
    while (!w->checkpoint && !w->writer_gone && !*w->stop)
        pthread_cond_wait(&w->cv, &w->mu);
    if (w->checkpoint)
        have_pol = rp_init(&pol, w->checkpoint, w->cfg->batch_size, w->max_bytes);
    if (have_pol)
        pol.vanished = w->vanished; /* recorded before a restart */
    pthread_mutex_unlock(&w->mu);
    if (!ctx.parser || !have_pol)
        goto out;

    while (!*w->stop) {
        cs_result rc = CS_OK;
        bool timed_out = false;

        if (rp_next(&pol) == RP_INSPECT) {
            bool oom = false;
            rc = inspect(w, &pol, &oom, &err);
            if (oom)
                break;
        }
        if (rc == CS_OK) {
            if (!(ctx.b = take_free(w)))
                break;
            changes_parser_reset(ctx.parser);
            ctx.b_start = monotime_ms();
            rc = couch_changes(w->couch, pol.since, pol.limit, pol.batch_size,
                               rp_wait_ms(&pol, w->cfg->longpoll_seconds * 1000), on_body, &ctx,
                               &timed_out, &err);
            if (rc == CS_OK && timed_out && changes_parser_rows(ctx.parser) == 0 &&
                changes_parser_between_rows(ctx.parser)) {
                ctx.b->kind = BATCH_IDLE; /* nothing happened: keep updated_at fresh */
            } else if (rc == CS_OK && timed_out) {
                /* it started, then went silent: a broken answer, never "nothing changed" */
                rc = cs_fail(&err, CS_TRANSIENT,
                             "the answer of CouchDB went silent for %d ms after %zu changes",
                             w->cfg->longpoll_seconds * 1000 + COUCH_LONGPOLL_MARGIN_MS,
                             changes_parser_rows(ctx.parser));
            } else if (rc == CS_OK) {
                rc = changes_parser_finish(ctx.parser, &err);
            }
            if (rc != CS_OK && ctx.b) {
                /* the rows after the last cut are read again from since */
                give_back(w, ctx.b, false);
                ctx.b = NULL;
            }
        }
        if (rc == CS_STOPPED)
            break;
        if (rc == CS_TRANSIENT || rc == CS_INVALID) {
            long wait = rp_transient(&pol, (unsigned long)random());
            stats_db_failed(w->db, STATS_COUCHDB, rc, err.msg, true);
            /* operators see it in couchdb_progress.error too, once per
             * failure (the next stored batch clears it) */
            if (h.attempts == 0 || strcmp(h.last, err.msg) != 0)
                report_failure(w, &err, true, pol.vanished);
            health_failed(&h, w->db, &err, wait);
            if (!signals_sleep_ms(w->stop, wait))
                break;
            continue;
        }
        if (rc == CS_PERMANENT) {
            rp_permanent(&pol, couch_last_status(w->couch));
            report_failure(w, &err, false, pol.vanished);
            if (w->once)
                break;
            log_info(w->db, "will look at the database again in %d s", RP_RECHECK_FAILED_MS / 1000);
            h.attempts = 0;
            if (!signals_sleep_ms(w->stop, RP_RECHECK_FAILED_MS))
                break;
            continue;
        }
        health_ok(&h, w->db, "CouchDB answers");

        batch *b = ctx.b;
        ctx.b = NULL;
        b->fetch_ms = monotime_ms() - ctx.b_start;
        rp_response r = {.idle = b->kind == BATCH_IDLE};
        if (!r.idle) {
            const char *last = changes_parser_last_seq(ctx.parser);
            r.rows = changes_parser_rows(ctx.parser);
            r.has_pending = changes_parser_pending(ctx.parser, &r.pending);
            r.last_seq = last;
            b->has_pending = r.has_pending;
            b->pending = r.has_pending ? r.pending : 0;
            b->last_seq = last ? batch_strdup(b, last) : NULL;
        }
        rp_outcome o = rp_fetched(&pol, &r);
        b->caught_up = o.caught_up;
        b->restart = o.restart;
        enqueue(w, b);
        if (w->once && pol.caught_up)
            break;
    }
out:
    if (ctx.b)
        give_back(w, ctx.b, false);
    changes_parser_free(ctx.parser);
    if (have_pol)
        rp_free(&pol);
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

/* batches one transaction may take when they are already waiting: a
 * backlog pays the transaction's fixed cost (round trips, lock, checkpoint,
 * commit: about 2 ms) once per group instead of once per batch */
#define GROUP_MAX 4

/*
 * Adds to group (holding the batch just dequeued) the batches already
 * queued that may share its transaction (store_write_group): consecutive
 * BATCH_CHANGES, none starting a resync, at most GROUP_MAX of them and
 * BATCH_MAX_BYTES of documents in all, ending at one that catches up.
 * Never waits: when the writer keeps up, every batch goes alone, at once.
 * Returns the group's size.
 */
static size_t take_group(worker *w, batch **group)
{
    size_t n = 1, bytes = group[0]->bytes;

    if (group[0]->kind != BATCH_CHANGES || group[0]->caught_up)
        return 1;
    pthread_mutex_lock(&w->mu);
    while (n < GROUP_MAX && w->nqueue > 0) {
        batch *b = w->queue[0];
        if (b->kind != BATCH_CHANGES || b->restart || bytes + b->bytes > w->max_bytes)
            break;
        memmove(&w->queue[0], &w->queue[1], (size_t)(w->nqueue - 1) * sizeof(batch *));
        w->nqueue--;
        group[n++] = b;
        bytes += b->bytes;
        if (b->caught_up)
            break;
    }
    pthread_mutex_unlock(&w->mu);
    return n;
}

static void log_stored(worker *w, batch *const *group, size_t n, const store_stats *st, double ms)
{
    const batch *b = group[n - 1];
    const char *seq = st->seq;
    char pending[32] = "unknown", batches[32] = "";

    if (b->has_pending)
        snprintf(pending, sizeof(pending), "%lld", b->pending);
    if (n > 1)
        snprintf(batches, sizeof(batches), ", %zu batches in one transaction", n);
    /* per batch: debug (the progress display and its summary say it at info) */
    log_debug(
        w->db,
        "stored %zu docs up to seq \"%.40s%s\" in %.0f ms (read in %.0f ms, pending %s%s%s%s)",
        st->stored, seq ? seq : "?", seq && strlen(seq) > 40 ? "…" : "", ms, b->fetch_ms, pending,
        batches, st->direct ? ", straight into the table" : "",
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
        cs_result rc = store_open(w->store, !w->once, &seq, &w->vanished, &err);
        if (rc == CS_OK || rc == CS_STOPPED)
            break;
        if (rc == CS_PERMANENT && w->once) {
            log_error(w->db, "%s", err.msg);
            given_up = true;
            break;
        }
        long wait = rc == CS_PERMANENT ? BACKOFF_CAP_MS
                                       : backoff_jitter_ms(h.attempts, (unsigned long)random());
        stats_db_failed(w->db, STATS_POSTGRES, rc, err.msg, true);
        health_failed(&h, w->db, &err, wait);
        signals_sleep_ms(w->stop, wait);
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
        batch *group[GROUP_MAX];
        batch *b = group[0] = dequeue(w);
        size_t n, rows = 0, bytes = 0;
        store_stats st;
        double t0 = monotime_ms();
        bool stored = false;

        if (b->kind == BATCH_END) {
            batch_free(b);
            break;
        }
        if (b->kind == BATCH_FAILED && !b->transient)
            w->failed = true;
        n = take_group(w, group);
        b = group[n - 1]; /* the group's pending and caught_up are its last batch's */
        for (size_t g = 0; g < n; g++) {
            rows += group[g]->nrows;
            bytes += group[g]->bytes;
        }
        while (seq && !given_up) {
            cs_result rc =
                n > 1 ? store_write_group(w->store, (const batch *const *)group, n, &st, &err)
                      : store_write(w->store, b, &st, &err);
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
            long wait = rc == CS_PERMANENT ? BACKOFF_CAP_MS
                                           : backoff_jitter_ms(h.attempts, (unsigned long)random());
            stats_db_failed(w->db, STATS_POSTGRES, rc, err.msg, true);
            health_failed(&h, w->db, &err, wait);
            /* a batch PostgreSQL refuses for good stalls the source: say so */
            if (rc == CS_PERMANENT)
                store_record_failure(w->store, err.msg);
            store_disconnect(w->store);
            signals_sleep_ms(w->stop, wait);
            char *ignored = NULL;
            if (store_open(w->store, !w->once, &ignored, NULL, &err) != CS_OK)
                store_disconnect(w->store);
            free(ignored);
        }
        if (stored && b->kind != BATCH_FAILED)
            stats_db_stored(w->db, &(stats_batch){(long)rows, (long)st.stored, (long)st.rejected,
                                                  (long)bytes, (monotime_ms() - t0) / 1000, st.seq,
                                                  b->has_pending ? b->pending : -1,
                                                  b->kind == BATCH_IDLE || b->caught_up});
        if (stored && b->kind == BATCH_CHANGES && rows > 0) {
            /* per batch: the model loop tells full batches (a backfill) from small ones */
            for (size_t g = 0; g < n && w->hooks && w->hooks->on_commit; g++)
                if (group[g]->nrows > 0)
                    w->hooks->on_commit(w->hooks->ud, w->db, group[g]->nrows);
            log_stored(w, group, n, &st, monotime_ms() - t0);
            w->failed = false;
        }
        if (given_up) {
            /* the reader must not wait for room that never comes */
            pthread_mutex_lock(&w->mu);
            w->writer_gone = true;
            pthread_cond_broadcast(&w->cv);
            pthread_mutex_unlock(&w->mu);
        }
        for (size_t g = 0; g < n; g++)
            give_back(w, group[g], true);
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
    if (asprintf(&w->source, "%s/%s", cfg->source_name, db) < 0)
        w->source = NULL;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (!w->db || !w->source)
        goto error;
    w->couch = couch_new(cfg, db, stop);
    w->store = store_new(cfg, w->source, w->db, stop);
    if (!w->couch || !w->store)
        goto error;
    w->max_bytes = (size_t)cfg->batch_max_bytes;
    for (int i = 0; i < WORKER_BATCHES; i++) {
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
