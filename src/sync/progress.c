/*
 * progress.c - see progress.h.
 */
#include "sync/progress.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/stats.h"

/* the rate shown is over this many seconds; the time left uses a longer
 * window, steadier, and still known a while after a stall */
#define RATE_WINDOW 5
#define ETA_WINDOW 30

struct progress {
    pthread_t thread;
    atomic_bool done;
    bool tty;
    int drawn;                /* lines of the last drawing */
    unsigned long log_mark;   /* log lines written when it was drawn */
    bool all_caught_up_shown; /* the terminal display has ended */
    stats_snapshot *snap;
    uint64_t last_rows; /* summary: rows at the previous summary */
    double last_summary;
};

/* the changes this database has to read in all: what was read plus what
 * CouchDB says is left; without pending (pouchdb-server), the database's
 * size when it is read from the start; -1: unknown */
static long long total_of(const stats_db *d)
{
    if (d->pending >= 0 && d->batches > 0)
        return (long long)d->rows + d->pending;
    if (d->info_docs >= 0 && d->from_start)
        return d->info_docs > (long long)d->rows ? d->info_docs : (long long)d->rows;
    return -1;
}

static void eta(char *out, size_t n, double seconds)
{
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(out, n, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(out, n, "%ld:%02ld", s / 60, s % 60);
}

static void db_line(FILE *f, const stats_db *d, double now)
{
    long long total = total_of(d);
    double rate = stats_db_rate(d, now, RATE_WINDOW);

    fprintf(f, "\033[2K%-24.24s ", d->db);
    if (d->failing) {
        fprintf(f, "failing: %.60s\n", d->last_error);
        return;
    }
    if (d->caught_up) {
        fprintf(f, "caught up, %llu changes read\n", (unsigned long long)d->rows);
        return;
    }
    if (total >= 0) {
        long long done = (long long)d->rows;
        fprintf(f, "%lld of %lld (%3.0f%%)", done, total, total > 0 ? 100.0 * done / total : 100.0);
    } else {
        fprintf(f, "%llu of ?", (unsigned long long)d->rows);
    }
    fprintf(f, "  %.0f docs/s", rate);
    double eta_rate = stats_db_rate(d, now, ETA_WINDOW);
    if (total >= 0 && eta_rate > 0) {
        char t[32];
        eta(t, sizeof(t), (double)(total - (long long)d->rows) / eta_rate);
        fprintf(f, "  ETA %s", t);
    }
    fputc('\n', f);
}

static bool all_caught_up(const stats_snapshot *s)
{
    for (int i = 0; i < s->ndbs; i++)
        if (!s->dbs[i].caught_up)
            return false;
    return s->ndbs > 0;
}

/* the terminal display: the block of lines, redrawn in place unless a log
 * line was written below it meanwhile */
static void draw(progress *p)
{
    const stats_snapshot *s = p->snap;
    FILE *f = stderr;

    if (p->drawn > 0 && log_lines_written() == p->log_mark)
        fprintf(f, "\033[%dA", p->drawn);
    for (int i = 0; i < s->ndbs; i++)
        db_line(f, &s->dbs[i], s->now);
    fflush(f);
    p->drawn = s->ndbs;
    p->log_mark = log_lines_written();
}

static void summary(progress *p)
{
    const stats_snapshot *s = p->snap;
    uint64_t rows = 0;
    char line[1024];
    size_t n = 0;

    for (int i = 0; i < s->ndbs; i++)
        rows += s->dbs[i].rows;
    if (rows == p->last_rows)
        return; /* nothing stored: nothing to say */
    double secs = s->now - p->last_summary;
    n += (size_t)snprintf(line, sizeof(line), "%llu changes stored in %.0f s (%.0f/s);",
                          (unsigned long long)(rows - p->last_rows), secs,
                          secs > 0 ? (double)(rows - p->last_rows) / secs : 0);
    for (int i = 0; i < s->ndbs && n < sizeof(line); i++) {
        const stats_db *d = &s->dbs[i];
        long long total = total_of(d);
        if (d->caught_up)
            n += (size_t)snprintf(line + n, sizeof(line) - n, " %s caught up", d->db);
        else if (total >= 0)
            n += (size_t)snprintf(line + n, sizeof(line) - n, " %s %llu of %lld", d->db,
                                  (unsigned long long)d->rows, total);
        else
            n += (size_t)snprintf(line + n, sizeof(line) - n, " %s %llu", d->db,
                                  (unsigned long long)d->rows);
        if (n < sizeof(line) && i + 1 < s->ndbs)
            line[n++] = ',';
    }
    if (n >= sizeof(line))
        n = sizeof(line) - 1;
    line[n] = '\0';
    log_info(NULL, "%s", line);
    p->last_rows = rows;
    p->last_summary = s->now;
}

static void tick(progress *p, bool last)
{
    stats_snapshot_take(p->snap);
    if (p->tty && !p->all_caught_up_shown) {
        draw(p);
        if (all_caught_up(p->snap)) {
            p->all_caught_up_shown = true;
            p->last_rows = 0;
            for (int i = 0; i < p->snap->ndbs; i++)
                p->last_rows += p->snap->dbs[i].rows;
            p->last_summary = p->snap->now;
        }
        return;
    }
    if (last || p->snap->now - p->last_summary >= PROGRESS_SUMMARY_SECONDS)
        summary(p);
}

static void *progress_main(void *arg)
{
    progress *p = arg;
    struct timespec slice = {0, 100000000L};

    while (!atomic_load(&p->done)) {
        for (int i = 0; i < 10 && !atomic_load(&p->done); i++)
            nanosleep(&slice, NULL);
        if (!atomic_load(&p->done))
            tick(p, false);
    }
    return NULL;
}

progress *progress_start(bool tty)
{
    progress *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    p->snap = malloc(sizeof(*p->snap));
    p->tty = tty;
    if (p->snap) {
        stats_snapshot_take(p->snap);
        p->last_summary = p->snap->now;
    }
    if (!p->snap || pthread_create(&p->thread, NULL, progress_main, p) != 0) {
        free(p->snap);
        free(p);
        return NULL; /* no display; the sync does not need it */
    }
    return p;
}

void progress_stop(progress *p)
{
    if (!p)
        return;
    atomic_store(&p->done, true);
    pthread_join(p->thread, NULL);
    tick(p, true);
    free(p->snap);
    free(p);
}
