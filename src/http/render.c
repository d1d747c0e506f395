/*
 * render.c - see render.h.
 */
#include "http/render.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- helpers ---- */

/* a label value as Prometheus reads it: \, " and newline escaped */
static void label_value(buf *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            buf_putc(out, '\\');
        if (*v == '\n') {
            buf_puts(out, "\\n");
            continue;
        }
        buf_putc(out, *v);
    }
}

static void db_labels(buf *out, const stats_db *d)
{
    buf_puts(out, "{db=\"");
    label_value(out, d->db);
    buf_puts(out, "\",cht_instance=\"");
    label_value(out, d->instance);
    buf_puts(out, "\"");
}

static void head(buf *out, const char *name, const char *type, const char *help)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{db=..,cht_instance=..} value */
static void db_sample(buf *out, const char *name, const stats_db *d, double v)
{
    buf_puts(out, name);
    db_labels(out, d);
    buf_printf(out, "} %.17g\n", v);
}

static void model_sample(buf *out, const char *name, const char *label, const stats_model *m,
                         double v)
{
    buf_printf(out, "%s{%s=\"", name, label);
    label_value(out, m->name);
    buf_printf(out, "\"} %.17g\n", v);
}

static bool db_up(const stats_db *d, double now)
{
    return d->last_batch_at > 0 && now - d->last_batch_at <= RENDER_UP_SECONDS;
}

/* seconds from the newest raw batch to the newest the model had taken;
 * false when either is unknown (no sync in this process, never ran) */
static bool model_lag(const stats_snapshot *s, const stats_model *m, double *lag)
{
    double newest = 0;
    for (int i = 0; i < s->ndbs; i++)
        if (s->dbs[i].last_docs_at > newest)
            newest = s->dbs[i].last_docs_at;
    if (newest == 0 || m->covers_at == 0)
        return false;
    *lag = newest > m->covers_at ? newest - m->covers_at : 0;
    return true;
}

static void html(buf *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            buf_puts(out, "&lt;");
            break;
        case '>':
            buf_puts(out, "&gt;");
            break;
        case '&':
            buf_puts(out, "&amp;");
            break;
        case '"':
            buf_puts(out, "&quot;");
            break;
        default:
            buf_putc(out, *s);
        }
    }
}

/* "3 s", "4 min", "2 h" */
static void duration(buf *out, double s)
{
    if (s < 0)
        s = 0;
    if (s < 120)
        buf_printf(out, "%.0f s", s);
    else if (s < 7200)
        buf_printf(out, "%.0f min", s / 60);
    else
        buf_printf(out, "%.1f h", s / 3600);
}

/* ---- /metrics ---- */

static const char *const side_names[STATS_NSIDES] = {"couchdb", "postgres"};
static const char *const class_names[STATS_NCLASSES] = {"transient", "permanent", "invalid"};

static void metrics_watchdog(buf *out, const stats_snapshot *s)
{
    unsigned long long n;

    head(out, "couch2pg_progress_sequence", "counter",
         "the number before the first - of the committed CouchDB sequence");
    for (int i = 0; i < s->ndbs; i++)
        if (s->dbs[i].started && stats_seq_number(s->dbs[i].seq, &n))
            db_sample(out, "couch2pg_progress_sequence", &s->dbs[i], (double)n);
    head(out, "couch2pg_progress_pending", "gauge",
         "changes CouchDB reported still to read after the last stored batch");
    for (int i = 0; i < s->ndbs; i++)
        if (s->dbs[i].pending >= 0)
            db_sample(out, "couch2pg_progress_pending", &s->dbs[i], (double)s->dbs[i].pending);
    head(out, "couch2pg_up", "gauge", "1 when a batch was stored within the last minute, else 0");
    for (int i = 0; i < s->ndbs; i++)
        db_sample(out, "couch2pg_up", &s->dbs[i], db_up(&s->dbs[i], s->now) ? 1 : 0);
    if (s->nmodels == 0)
        return; /* no model runs in this process: the dbt_* series are absent */
    head(out, "dbt_execution_time", "gauge", "seconds of the model's last run");
    for (int i = 0; i < s->nmodels; i++)
        model_sample(out, "dbt_execution_time", "table_name", &s->models[i], s->models[i].seconds);
    for (int i = 0; i < s->nmodels; i++) {
        double lag;
        if (strcmp(s->models[i].name, "document_metadata") == 0 &&
            model_lag(s, &s->models[i], &lag)) {
            head(out, "dbt_latency", "gauge",
                 "seconds from the newest raw batch to the newest one document_metadata took");
            buf_printf(out, "dbt_latency %.17g\n", lag);
        }
    }
}

static void metrics_dbs(buf *out, const stats_snapshot *s)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } counters[] = {
        {"cht_sync_changes_total", "changes read and committed (stored or rejected)",
         offsetof(stats_db, rows)},
        {"cht_sync_docs_stored_total", "rows upserted into the raw table",
         offsetof(stats_db, docs)},
        {"cht_sync_bytes_stored_total", "document bytes committed", offsetof(stats_db, bytes)},
        {"cht_sync_rejects_total", "documents recorded in the rejects table",
         offsetof(stats_db, rejects)},
    };
    for (size_t c = 0; c < sizeof(counters) / sizeof(counters[0]); c++) {
        head(out, counters[c].name, "counter", counters[c].help);
        for (int i = 0; i < s->ndbs; i++)
            db_sample(out, counters[c].name, &s->dbs[i],
                      (double)*(const uint64_t *)((const char *)&s->dbs[i] + counters[c].off));
    }

    head(out, "cht_sync_batch_duration_seconds", "histogram",
         "duration of a writer's transaction: one batch or a group of waiting batches (any kind, "
         "idle included)");
    for (int i = 0; i < s->ndbs; i++) {
        const stats_db *d = &s->dbs[i];
        uint64_t cum = 0;
        for (int k = 0; k <= STATS_NBUCKETS; k++) {
            cum += d->hist[k];
            buf_puts(out, "cht_sync_batch_duration_seconds_bucket");
            db_labels(out, d);
            if (k < STATS_NBUCKETS)
                buf_printf(out, ",le=\"%g\"} %llu\n", stats_buckets[k], (unsigned long long)cum);
            else
                buf_printf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        db_sample(out, "cht_sync_batch_duration_seconds_sum", d, d->hist_sum);
        db_sample(out, "cht_sync_batch_duration_seconds_count", d, (double)d->batches);
    }

    head(out, "cht_sync_errors_total", "counter", "failures by side and class");
    for (int i = 0; i < s->ndbs; i++)
        for (int sd = 0; sd < STATS_NSIDES; sd++)
            for (int c = 0; c < STATS_NCLASSES; c++) {
                buf_puts(out, "cht_sync_errors_total");
                db_labels(out, &s->dbs[i]);
                buf_printf(out, ",side=\"%s\",class=\"%s\"} %llu\n", side_names[sd], class_names[c],
                           (unsigned long long)s->dbs[i].errors[sd][c]);
            }
    head(out, "cht_sync_retries_total", "counter", "failures followed by a retry, by side");
    for (int i = 0; i < s->ndbs; i++)
        for (int sd = 0; sd < STATS_NSIDES; sd++) {
            buf_puts(out, "cht_sync_retries_total");
            db_labels(out, &s->dbs[i]);
            buf_printf(out, ",side=\"%s\"} %llu\n", side_names[sd],
                       (unsigned long long)s->dbs[i].retries[sd]);
        }

    head(out, "cht_sync_last_batch_timestamp_seconds", "gauge",
         "unix time of the last stored batch (0: none yet)");
    for (int i = 0; i < s->ndbs; i++)
        db_sample(out, "cht_sync_last_batch_timestamp_seconds", &s->dbs[i],
                  s->dbs[i].last_batch_at);
    head(out, "cht_sync_last_batch_age_seconds", "gauge",
         "seconds since the last stored batch (since the start when none yet)");
    for (int i = 0; i < s->ndbs; i++) {
        const stats_db *d = &s->dbs[i];
        double since = d->last_batch_at > 0 ? d->last_batch_at : d->started_at;
        db_sample(out, "cht_sync_last_batch_age_seconds", d, s->now - since);
    }
    head(out, "cht_sync_caught_up", "gauge", "1 when the last batch reached the end of the feed");
    for (int i = 0; i < s->ndbs; i++)
        db_sample(out, "cht_sync_caught_up", &s->dbs[i], s->dbs[i].caught_up ? 1 : 0);
    head(out, "cht_sync_failing", "gauge",
         "1 while the last attempt failed (until a batch is stored again)");
    for (int i = 0; i < s->ndbs; i++)
        db_sample(out, "cht_sync_failing", &s->dbs[i], s->dbs[i].failing ? 1 : 0);
}

static void metrics_models(buf *out, const stats_snapshot *s)
{
    if (s->nmodels == 0)
        return;
    head(out, "cht_sync_model_last_run_seconds", "gauge", "duration of the model's last run");
    for (int i = 0; i < s->nmodels; i++)
        model_sample(out, "cht_sync_model_last_run_seconds", "model", &s->models[i],
                     s->models[i].seconds);
    head(out, "cht_sync_model_rows", "gauge", "rows the model's last run affected");
    for (int i = 0; i < s->nmodels; i++)
        model_sample(out, "cht_sync_model_rows", "model", &s->models[i], (double)s->models[i].rows);
    head(out, "cht_sync_model_ok", "gauge", "1 when the model's last run succeeded, else 0");
    for (int i = 0; i < s->nmodels; i++)
        model_sample(out, "cht_sync_model_ok", "model", &s->models[i], s->models[i].ok ? 1 : 0);
    head(out, "cht_sync_model_last_end_timestamp_seconds", "gauge",
         "unix time the model's last run ended");
    for (int i = 0; i < s->nmodels; i++)
        model_sample(out, "cht_sync_model_last_end_timestamp_seconds", "model", &s->models[i],
                     s->models[i].end_at);
    head(out, "cht_sync_model_runs_total", "counter", "model runs by outcome");
    for (int i = 0; i < s->nmodels; i++) {
        const stats_model *m = &s->models[i];
        buf_puts(out, "cht_sync_model_runs_total{model=\"");
        label_value(out, m->name);
        buf_printf(out, "\",status=\"success\"} %llu\n", (unsigned long long)m->runs_ok);
        buf_puts(out, "cht_sync_model_runs_total{model=\"");
        label_value(out, m->name);
        buf_printf(out, "\",status=\"error\"} %llu\n", (unsigned long long)m->runs_error);
    }
    bool any = false;
    for (int i = 0; i < s->nmodels; i++) {
        double lag;
        if (!model_lag(s, &s->models[i], &lag))
            continue;
        if (!any)
            head(out, "cht_sync_model_lag_seconds", "gauge",
                 "seconds from the newest raw batch to the newest one the model took");
        any = true;
        model_sample(out, "cht_sync_model_lag_seconds", "model", &s->models[i], lag);
    }
}

void render_metrics(buf *out, const stats_snapshot *s, const render_opts *o)
{
    (void)o;
    metrics_watchdog(out, s);
    metrics_dbs(out, s);
    metrics_models(out, s);
    head(out, "cht_sync_start_time_seconds", "gauge", "unix time the process started publishing");
    buf_printf(out, "cht_sync_start_time_seconds %.17g\n", s->started_at);
}

/* ---- /readyz ---- */

/* NULL when d is ready, else why not */
static const char *not_ready(const stats_db *d, double now, const render_opts *o)
{
    if (d->failing && (d->failed_permanently || now - d->failing_since > RENDER_FAIL_GRACE_SECONDS))
        return "failing";
    if (d->last_batch_at == 0)
        return "no batch stored yet";
    if (now - d->last_batch_at > o->longpoll_seconds + RENDER_UP_SECONDS)
        return "stalled: no batch stored recently";
    return NULL;
}

bool render_ready(buf *out, const stats_snapshot *s, const render_opts *o)
{
    bool ready = true;

    for (int i = 0; i < s->ndbs; i++) {
        const stats_db *d = &s->dbs[i];
        const char *why = not_ready(d, s->now, o);
        buf_printf(out, "%s: ", d->db);
        if (!why) {
            buf_puts(out, d->caught_up ? "caught up\n" : "making progress\n");
            continue;
        }
        ready = false;
        buf_puts(out, why);
        if (d->failing)
            buf_printf(out, " (%s)", d->last_error);
        buf_putc(out, '\n');
    }
    for (int i = 0; i < s->nmodels; i++) {
        if (s->models[i].ok)
            continue;
        ready = false;
        buf_printf(out, "model %s: its last run failed\n", s->models[i].name);
    }
    buf_puts(out, ready ? "ready\n" : "not ready\n");
    return ready;
}

/* ---- the status page ---- */

static const char page_head[] =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
    "<meta http-equiv=\"refresh\" content=\"5\"><title>cht-sync</title><style>"
    "body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:.8rem;"
    "color:#1b1f24;background:#fafafa}"
    "h1{font-size:1.3rem;margin:.2rem 0}h2{font-size:1.05rem;margin:1.2rem 0 .4rem}"
    ".wrap{overflow-x:auto}table{border-collapse:collapse;width:100%;background:#fff}"
    "th,td{padding:.35rem .5rem;border-bottom:1px solid #e3e3e3;text-align:left;"
    "white-space:nowrap}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".ok{color:#176f2c}.bad{color:#b3261e;font-weight:600}.warn{color:#8a5a00}"
    ".err{white-space:normal;color:#b3261e;font-size:.9em;min-width:12rem}"
    "svg{width:100%;height:auto;background:#fff;border:1px solid #e3e3e3}"
    ".muted{color:#666;font-size:.9em}"
    /* a phone: each row becomes a card of label: value lines */
    "@media "
    "(max-width:40rem){table,tbody,tr,td{display:block;width:auto}tr:first-child{display:none}"
    "tr{border:1px solid #e3e3e3;border-radius:6px;margin:.5rem 0;background:#fff}"
    "td{border:0;padding:.15rem .6rem;text-align:left!important;white-space:normal}"
    "td.name{font-weight:600;padding-top:.4rem}"
    "td[data-label]::before{content:attr(data-label) \": \";color:#666}}"
    "</style></head><body>";

static void page_dbs(buf *out, const stats_snapshot *s, const render_opts *o)
{
    buf_puts(out, "<h2>Databases</h2><div class=\"wrap\"><table id=\"dbs\"><tr><th>database</th>"
                  "<th>state</th><th>seq</th><th>pending</th><th>docs stored</th>"
                  "<th>docs/s</th><th>behind</th><th>last batch</th><th>last error</th></tr>");
    for (int i = 0; i < s->ndbs; i++) {
        const stats_db *d = &s->dbs[i];
        const char *why = not_ready(d, s->now, o);
        double rate = stats_db_rate(d, s->now, 10);
        buf_puts(out, "<tr data-db=\"");
        html(out, d->db);
        buf_puts(out, "\"><td class=\"name\">");
        html(out, d->db);
        if (!why)
            buf_printf(out, "</td><td class=\"ok\" data-label=\"state\">%s",
                       d->caught_up ? "caught up" : "catching up");
        else
            buf_printf(out, "</td><td class=\"bad\" data-label=\"state\">%s", why);
        buf_puts(out, "</td><td class=\"seq\" data-label=\"seq\" title=\"");
        html(out, d->seq);
        buf_printf(out, "\">%.24s%s</td>", d->seq, strlen(d->seq) > 24 ? "…" : "");
        if (d->pending >= 0)
            buf_printf(out, "<td class=\"n pending\" data-label=\"pending\">%lld</td>", d->pending);
        else
            buf_puts(out, "<td class=\"n pending\" data-label=\"pending\">?</td>");
        buf_printf(out,
                   "<td class=\"n docs\" data-label=\"docs stored\">%llu</td><td class=\"n rate\" "
                   "data-label=\"docs/s\">%.0f</td>",
                   (unsigned long long)d->docs, rate);
        buf_puts(out, "<td class=\"n\" data-label=\"behind\">");
        if (d->caught_up)
            buf_puts(out, "0 s");
        else if (d->pending > 0 && rate > 0)
            duration(out, (double)d->pending / rate);
        else
            buf_puts(out, "?");
        buf_puts(out, "</td><td class=\"n\" data-label=\"last batch\">");
        if (d->last_batch_at > 0) {
            duration(out, s->now - d->last_batch_at);
            buf_puts(out, " ago");
        } else {
            buf_puts(out, "none yet");
        }
        buf_puts(out, "</td><td class=\"err\" data-label=\"last error\">");
        if (d->last_error_at > 0) {
            html(out, d->last_error);
            buf_puts(out, " <span class=\"muted\">(");
            duration(out, s->now - d->last_error_at);
            buf_puts(out, " ago)</span>");
        }
        buf_puts(out, "</td></tr>");
    }
    buf_puts(out, "</table></div>");
}

/* rows per second of every database, in 10-second bins over the ring */
static void page_chart(buf *out, const stats_snapshot *s)
{
    enum { BIN = 10, NBINS = STATS_RING_SECONDS / BIN, W = 600, H = 120 };
    double bins[NBINS], max = 0;
    int64_t end = (int64_t)s->now; /* the current second is partial */

    for (int b = 0; b < NBINS; b++) {
        uint64_t sum = 0;
        for (int k = 0; k < BIN; k++) {
            int64_t t = end - (int64_t)(NBINS - b) * BIN + k;
            for (int i = 0; i < s->ndbs; i++)
                sum += stats_db_rows_at(&s->dbs[i], t);
        }
        bins[b] = (double)sum / BIN;
        if (bins[b] > max)
            max = bins[b];
    }
    buf_printf(out, "<h2>Throughput, last %d minutes</h2>", STATS_RING_SECONDS / 60);
    buf_printf(out,
               "<svg id=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" "
               "aria-label=\"changes per second\"><polyline fill=\"#1f6feb33\" stroke=\"#1f6feb\" "
               "stroke-width=\"2\" points=\"0,%d ",
               W, H + 20, 10 + H);
    for (int b = 0; b < NBINS; b++)
        buf_printf(out, "%d,%.1f ", b * W / (NBINS - 1),
                   max > 0 ? 10 + H - bins[b] / max * H : 10 + H);
    buf_printf(out, "%d,%d", W, 10 + H);
    buf_printf(out,
               "\"/><text x=\"4\" y=\"14\" font-size=\"12\" fill=\"#666\">%.0f changes/s</text>"
               "<text x=\"4\" y=\"%d\" font-size=\"12\" fill=\"#666\">-%d min</text>"
               "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"#666\" "
               "text-anchor=\"end\">now</text></svg>",
               max, H + 18, STATS_RING_SECONDS / 60, W - 4, H + 18);
}

static void page_models(buf *out, const stats_snapshot *s)
{
    buf_puts(out, "<h2>Models</h2>");
    if (s->nmodels == 0) {
        buf_puts(out, "<p class=\"muted\">No model runs in this process.</p>");
        return;
    }
    buf_puts(out, "<div class=\"wrap\"><table id=\"models\"><tr><th>model</th><th>status</th>"
                  "<th>last run</th><th>duration</th><th>rows</th><th>lag</th></tr>");
    for (int i = 0; i < s->nmodels; i++) {
        const stats_model *m = &s->models[i];
        double lag;
        buf_puts(out, "<tr data-model=\"");
        html(out, m->name);
        buf_puts(out, "\"><td class=\"name\">");
        html(out, m->name);
        buf_printf(out,
                   "</td><td class=\"%s\" data-label=\"status\">%s</td><td class=\"n\" "
                   "data-label=\"last run\">",
                   m->ok ? "ok" : "bad", m->ok ? "success" : "error");
        duration(out, s->now - m->end_at);
        buf_printf(out,
                   " ago</td><td class=\"n\" data-label=\"duration\">%.2f s</td><td class=\"n "
                   "rows\" data-label=\"rows\">%ld</td>",
                   m->seconds, m->rows);
        buf_puts(out, "<td class=\"n\" data-label=\"lag\">");
        if (model_lag(s, m, &lag))
            duration(out, lag);
        else
            buf_puts(out, "–");
        buf_puts(out, "</td></tr>");
    }
    buf_puts(out, "</table></div>");
}

void render_page(buf *out, const stats_snapshot *s, const render_opts *o)
{
    char when[32];
    time_t t = (time_t)s->now;
    struct tm tm;
    bool ready;
    buf why;

    buf_init(&why, 1 << 20);
    ready = render_ready(&why, s, o);
    buf_free(&why);
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    buf_puts(out, page_head);
    buf_printf(out, "<h1>cht-sync <span class=\"%s\" id=\"ready\">%s</span></h1>",
               ready ? "ok" : "bad", ready ? "ready" : "not ready");
    buf_printf(out, "<p class=\"muted\">%s · up ", when);
    duration(out, s->now - s->started_at);
    buf_puts(out, " · refreshes every 5 s · <a href=\"/metrics\">metrics</a></p>");
    if (s->ndbs > 0) {
        page_dbs(out, s, o);
        page_chart(out, s);
    }
    page_models(out, s);
    buf_puts(out, "</body></html>\n");
}
