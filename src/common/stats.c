/*
 * stats.c - see stats.h.
 *
 * The database table only grows (registration happens before the workers
 * start and entries are never removed), so a lookup by name needs no lock:
 * ndbs is published with release semantics after the entry is filled.
 */
#include "common/stats.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "common/log.h"

const double stats_buckets[STATS_NBUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                              0.5,   1,    2.5,   5,    10,  30};

typedef struct {
    pthread_mutex_t mu;
    stats_db d;
} db_slot;

static db_slot dbs[CONFIG_MAX_DBS];
static atomic_int ndbs;
static pthread_mutex_t register_mu = PTHREAD_MUTEX_INITIALIZER;

static pthread_mutex_t models_mu = PTHREAD_MUTEX_INITIALIZER;
static stats_model models[STATS_MAX_MODELS];
static int nmodels;
static bool models_full_warned;

static double started_at;

static double unix_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static db_slot *find(const char *db)
{
    int n = atomic_load_explicit(&ndbs, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (strcmp(dbs[i].d.db, db) == 0)
            return &dbs[i];
    return NULL;
}

bool stats_db_register(const char *db, const char *instance)
{
    bool ok = true;

    if (strlen(db) >= STATS_NAME_MAX || strlen(instance) >= STATS_NAME_MAX)
        return false;
    pthread_mutex_lock(&register_mu);
    if (started_at == 0)
        started_at = unix_now();
    if (!find(db)) {
        int n = atomic_load(&ndbs);
        if (n == CONFIG_MAX_DBS) {
            ok = false;
        } else {
            db_slot *s = &dbs[n];
            pthread_mutex_init(&s->mu, NULL);
            memset(&s->d, 0, sizeof(s->d));
            snprintf(s->d.db, sizeof(s->d.db), "%s", db);
            snprintf(s->d.instance, sizeof(s->d.instance), "%s", instance);
            s->d.pending = -1;
            s->d.info_docs = -1;
            s->d.started_at = unix_now();
            atomic_store_explicit(&ndbs, n + 1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&register_mu);
    return ok;
}

void stats_db_resumed(const char *db, const char *seq)
{
    db_slot *s = find(db);
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    snprintf(s->d.seq, sizeof(s->d.seq), "%s", seq);
    s->d.started = true;
    s->d.from_start = strcmp(seq, "0") == 0;
    pthread_mutex_unlock(&s->mu);
}

void stats_db_info(const char *db, long long docs)
{
    db_slot *s = find(db);
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->d.info_docs = docs;
    pthread_mutex_unlock(&s->mu);
}

void stats_db_stored(const char *db, const stats_batch *b)
{
    db_slot *s = find(db);
    double now = unix_now();
    int64_t sec = (int64_t)now;
    int k = 0;

    if (!s)
        return;
    while (k < STATS_NBUCKETS && b->seconds > stats_buckets[k])
        k++;
    pthread_mutex_lock(&s->mu);
    stats_db *d = &s->d;
    if (b->seq) {
        snprintf(d->seq, sizeof(d->seq), "%s", b->seq);
        d->started = true;
    }
    if (b->seq || b->pending >= 0)
        d->pending = b->pending;
    d->caught_up = b->caught_up;
    d->failing = false;
    d->failed_permanently = false;
    d->last_batch_at = now;
    if (b->rows > 0)
        d->last_docs_at = now;
    d->rows += (uint64_t)b->rows;
    d->docs += (uint64_t)b->stored;
    d->rejects += (uint64_t)b->rejected;
    d->bytes += (uint64_t)b->bytes;
    d->batches++;
    d->hist[k]++;
    d->hist_sum += b->seconds;
    int r = (int)(sec % STATS_RING_SECONDS);
    if (d->ring_t[r] != sec) {
        d->ring_t[r] = sec;
        d->ring[r] = 0;
    }
    d->ring[r] += (uint32_t)b->rows;
    pthread_mutex_unlock(&s->mu);
}

void stats_db_failed(const char *db, stats_side side, cs_result code, const char *msg, bool retried)
{
    db_slot *s = find(db);
    int cls = code == CS_PERMANENT ? 1 : code == CS_INVALID ? 2 : 0;

    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    stats_db *d = &s->d;
    if (!d->failing)
        d->failing_since = unix_now();
    d->failing = true;
    d->failed_permanently = code == CS_PERMANENT && !retried;
    d->last_error_at = unix_now();
    snprintf(d->last_error, sizeof(d->last_error), "%s", msg);
    d->errors[side][cls]++;
    if (retried)
        d->retries[side]++;
    pthread_mutex_unlock(&s->mu);
}

double stats_raw_newest(void)
{
    double newest = 0;
    int n = atomic_load_explicit(&ndbs, memory_order_acquire);

    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&dbs[i].mu);
        if (dbs[i].d.last_docs_at > newest)
            newest = dbs[i].d.last_docs_at;
        pthread_mutex_unlock(&dbs[i].mu);
    }
    return newest;
}

void stats_model_done(const char *name, bool ok, double seconds, long rows)
{
    /* read before the models' lock: the databases' locks are never held
     * together with it */
    double covers = stats_raw_newest();
    stats_model *m = NULL;

    pthread_mutex_lock(&models_mu);
    if (started_at == 0)
        started_at = unix_now();
    for (int i = 0; i < nmodels && !m; i++)
        if (strcmp(models[i].name, name) == 0)
            m = &models[i];
    if (!m && nmodels < STATS_MAX_MODELS && strlen(name) < STATS_NAME_MAX) {
        m = &models[nmodels++];
        memset(m, 0, sizeof(*m));
        snprintf(m->name, sizeof(m->name), "%s", name);
    }
    if (m) {
        m->ok = ok;
        m->seconds = seconds;
        m->rows = rows;
        m->end_at = unix_now();
        /* the newest raw batch before the model started is what it took;
         * a batch stored while it ran may or may not be in it */
        if (ok)
            m->covers_at = covers;
        if (ok)
            m->runs_ok++;
        else
            m->runs_error++;
    }
    bool warn = !m && !models_full_warned;
    if (warn)
        models_full_warned = true;
    pthread_mutex_unlock(&models_mu);
    if (warn)
        log_warn(name,
                 "not published in the metrics: more than %d models, or a name of %d bytes "
                 "or more",
                 STATS_MAX_MODELS, STATS_NAME_MAX);
}

void stats_snapshot_take(stats_snapshot *out)
{
    int n = atomic_load_explicit(&ndbs, memory_order_acquire);

    out->now = unix_now();
    out->ndbs = n;
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&dbs[i].mu);
        out->dbs[i] = dbs[i].d;
        pthread_mutex_unlock(&dbs[i].mu);
    }
    pthread_mutex_lock(&models_mu);
    out->started_at = started_at;
    out->nmodels = nmodels;
    memcpy(out->models, models, (size_t)nmodels * sizeof(models[0]));
    pthread_mutex_unlock(&models_mu);
}

uint32_t stats_db_rows_at(const stats_db *d, int64_t t)
{
    int r = (int)(t % STATS_RING_SECONDS);
    return t >= 0 && d->ring_t[r] == t ? d->ring[r] : 0;
}

double stats_db_rate(const stats_db *d, double now, int window)
{
    int64_t end = (int64_t)now;
    uint64_t sum = 0;

    if (window <= 0 || window >= STATS_RING_SECONDS)
        return 0;
    /* the current second is partial: count whole seconds before it */
    for (int64_t t = end - window; t < end; t++)
        sum += stats_db_rows_at(d, t);
    return (double)sum / window;
}

bool stats_seq_number(const char *seq, unsigned long long *out)
{
    unsigned long long v = 0;
    const char *p = seq;

    if (!seq || *seq < '0' || *seq > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned long long digit = (unsigned long long)(*p - '0');
        if (v > (~0ULL - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    *out = v;
    return true;
}

void stats_reset(void)
{
    int n = atomic_load(&ndbs);
    for (int i = 0; i < n; i++)
        pthread_mutex_destroy(&dbs[i].mu);
    atomic_store(&ndbs, 0);
    pthread_mutex_lock(&models_mu);
    nmodels = 0;
    models_full_warned = false;
    started_at = 0;
    pthread_mutex_unlock(&models_mu);
}
