/*
 * test_render.c - the published counters and what the HTTP server makes of
 * them: Prometheus text (names, types, labels, escaping, cumulative
 * histogram buckets), the dbt_* series only when models ran, readiness,
 * and the sequence number Watchdog charts.
 */
#include <stdlib.h>

#include "common/stats.h"
#include "http/render.h"
#include "unit.h"

static const render_opts opts = {20};

static char *metrics_text(void)
{
    stats_snapshot *s = malloc(sizeof(*s));
    buf b;
    buf_init(&b, 0);
    stats_snapshot_take(s);
    render_metrics(&b, s, &opts);
    free(s);
    return buf_steal(&b);
}

static bool ready_now(char **why)
{
    stats_snapshot *s = malloc(sizeof(*s));
    buf b;
    bool r;
    buf_init(&b, 0);
    stats_snapshot_take(s);
    r = render_ready(&b, s, &opts);
    free(s);
    *why = buf_steal(&b);
    return r;
}

static void test_seq_number(void)
{
    static const struct {
        const char *seq;
        bool ok;
        unsigned long long n;
    } cases[] = {
        {"0", true, 0},
        {"42", true, 42},
        {"23-g1AAAAB", true, 23},
        {"g1AA", false, 0},
        {"", false, 0},
        {"-3", false, 0},
        {"18446744073709551615", true, 18446744073709551615ULL},
        {"18446744073709551616", false, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned long long n = 0;
        bool ok = stats_seq_number(cases[i].seq, &n);
        CHECK_INT(ok, cases[i].ok);
        if (ok)
            CHECK(n == cases[i].n);
    }
}

static void test_watchdog_series(void)
{
    stats_reset();
    CHECK(stats_db_register("medic", "couch.example"));
    CHECK(stats_db_register("medic-sentinel", "couch.example"));
    stats_db_resumed("medic", "0");
    stats_db_stored("medic",
                    &(stats_batch){1000, 998, 2, 500000, 0.03, "1000-g1AAxyz", 250, false});
    char *t = metrics_text();
    CHECK(strstr(t, "# TYPE couch2pg_progress_sequence counter\n"));
    CHECK(strstr(t,
                 "couch2pg_progress_sequence{db=\"medic\",cht_instance=\"couch.example\"} 1000\n"));
    CHECK(
        strstr(t, "couch2pg_progress_pending{db=\"medic\",cht_instance=\"couch.example\"} 250\n"));
    CHECK(strstr(t, "couch2pg_up{db=\"medic\",cht_instance=\"couch.example\"} 1\n"));
    /* nothing stored yet for the sentinel: down, no sequence, no pending */
    CHECK(strstr(t, "couch2pg_up{db=\"medic-sentinel\",cht_instance=\"couch.example\"} 0\n"));
    CHECK(!strstr(t, "couch2pg_progress_sequence{db=\"medic-sentinel\""));
    CHECK(!strstr(t, "couch2pg_progress_pending{db=\"medic-sentinel\""));
    CHECK(
        strstr(t, "cht_sync_docs_stored_total{db=\"medic\",cht_instance=\"couch.example\"} 998\n"));
    CHECK(strstr(t, "cht_sync_rejects_total{db=\"medic\",cht_instance=\"couch.example\"} 2\n"));
    CHECK(strstr(t, "cht_sync_changes_total{db=\"medic\",cht_instance=\"couch.example\"} 1000\n"));
    /* no model ran: no dbt_* series at all */
    CHECK(!strstr(t, "\ndbt_"));
    free(t);
}

static void test_histogram_cumulative(void)
{
    stats_reset();
    stats_db_register("medic", "h");
    double secs[] = {0.001, 0.02, 0.02, 0.7, 100};
    for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++)
        stats_db_stored("medic", &(stats_batch){1, 1, 0, 10, secs[i], "1", -1, true});
    char *t = metrics_text();
    const char *p = "cht_sync_batch_duration_seconds_bucket{db=\"medic\",cht_instance=\"h\",";
    char want[256];
    static const struct {
        const char *le;
        int n;
    } cases[] = {{"0.005", 1}, {"0.01", 1}, {"0.025", 3}, {"0.5", 3},
                 {"1", 4},     {"30", 4},   {"+Inf", 5}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(want, sizeof(want), "%sle=\"%s\"} %d\n", p, cases[i].le, cases[i].n);
        CHECK(strstr(t, want));
    }
    CHECK(strstr(t, "cht_sync_batch_duration_seconds_count{db=\"medic\",cht_instance=\"h\"} 5\n"));
    free(t);
}

static void test_label_escaping(void)
{
    stats_reset();
    stats_db_register("odd", "a\"b\\c");
    stats_model_done("m\"x", true, 1.5, 3);
    char *t = metrics_text();
    CHECK(strstr(t, "couch2pg_up{db=\"odd\",cht_instance=\"a\\\"b\\\\c\"} 0\n"));
    CHECK(strstr(t, "dbt_execution_time{table_name=\"m\\\"x\"} 1.5\n"));
    free(t);
}

static void test_models(void)
{
    stats_reset();
    stats_db_register("medic", "h");
    stats_db_stored("medic", &(stats_batch){10, 10, 0, 100, 0.01, "10", 0, true});
    stats_model_done("document_metadata", true, 0.25, 10);
    stats_model_done("contact", false, 0.5, 0);
    char *t = metrics_text();
    CHECK(strstr(t, "# TYPE dbt_execution_time gauge\n"));
    CHECK(strstr(t, "dbt_execution_time{table_name=\"document_metadata\"} 0.25\n"));
    CHECK(strstr(t, "dbt_execution_time{table_name=\"contact\"} 0.5\n"));
    /* document_metadata took the newest batch: no latency */
    CHECK(strstr(t, "dbt_latency 0\n"));
    CHECK(strstr(t, "cht_sync_model_ok{model=\"contact\"} 0\n"));
    CHECK(strstr(t, "cht_sync_model_rows{model=\"document_metadata\"} 10\n"));
    CHECK(strstr(t, "cht_sync_model_runs_total{model=\"contact\",status=\"error\"} 1\n"));
    free(t);
    char *why;
    CHECK(!ready_now(&why));
    CHECK(strstr(why, "model contact: its last run failed"));
    free(why);
    stats_model_done("contact", true, 0.5, 0);
    CHECK(ready_now(&why));
    free(why);
}

static void test_readiness(void)
{
    char *why;
    stats_reset();
    stats_db_register("medic", "h");
    CHECK(!ready_now(&why));
    CHECK(strstr(why, "medic: no batch stored yet"));
    free(why);
    stats_db_stored("medic", &(stats_batch){10, 10, 0, 100, 0.01, "10", -1, false});
    CHECK(ready_now(&why));
    CHECK(strstr(why, "medic: making progress"));
    free(why);
    /* a permanent failure is not ready at once; a stored batch heals it */
    stats_db_failed("medic", STATS_COUCHDB, CS_PERMANENT, "database not found", false);
    CHECK(!ready_now(&why));
    CHECK(strstr(why, "medic: failing (database not found)"));
    free(why);
    /* a transient one is forgiven for a few seconds */
    stats_db_stored("medic", &(stats_batch){0, 0, 0, 0, 0.01, NULL, -1, true});
    stats_db_failed("medic", STATS_POSTGRES, CS_TRANSIENT, "connection lost", true);
    CHECK(ready_now(&why));
    free(why);
    char *t = metrics_text();
    CHECK(strstr(t, "cht_sync_errors_total{db=\"medic\",cht_instance=\"h\",side=\"couchdb\","
                    "class=\"permanent\"} 1\n"));
    CHECK(
        strstr(t, "cht_sync_retries_total{db=\"medic\",cht_instance=\"h\",side=\"postgres\"} 1\n"));
    CHECK(strstr(t, "cht_sync_failing{db=\"medic\",cht_instance=\"h\"} 1\n"));
    free(t);
}

int main(void)
{
    UNIT_BEGIN("test_render");
    RUN(test_seq_number);
    RUN(test_watchdog_series);
    RUN(test_histogram_cumulative);
    RUN(test_label_escaping);
    RUN(test_models);
    RUN(test_readiness);
    UNIT_END();
}
