/*
 * status.c - `cht-sync status`: the sync's and the models' state as the
 * tables record it (see observe.h for the exit status).
 *
 * Only reads: couchdb_progress, couchdb_rejects and dbt_results of
 * POSTGRES_SCHEMA.  A database of COUCHDB_DBS with no progress row has
 * never been synced; a row older than --max-age (default 60 s, CHT
 * Watchdog's couch2pg_up) means no sync is running for it.
 */
#include "observe/observe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/pg.h"

enum { STATUS_OK = 0, STATUS_WRONG = 1, STATUS_USAGE = 2, STATUS_UNREADABLE = 3 };

static void relation(buf *b, const cs_config *cfg, const char *name)
{
    pg_quote_ident(b, cfg->postgres_schema);
    buf_putc(b, '.');
    pg_quote_ident(b, name);
}

static PGresult *query(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        return res;
    PQclear(res);
    return NULL;
}

/* "12 s", "5 min", "3.0 h", "2.0 d" */
static void age_text(char *out, size_t n, double s)
{
    if (s < 120)
        snprintf(out, n, "%.0f s", s);
    else if (s < 7200)
        snprintf(out, n, "%.0f min", s / 60);
    else if (s < 172800)
        snprintf(out, n, "%.1f h", s / 3600);
    else
        snprintf(out, n, "%.1f d", s / 86400);
}

/* source is "<COUCHDB_HOST>/db" */
static bool source_is(const cs_config *cfg, const char *source, const char *db)
{
    size_t h = strlen(cfg->couchdb_host);
    return strncmp(source, cfg->couchdb_host, h) == 0 && source[h] == '/' &&
           strcmp(source + h + 1, db) == 0;
}

static bool listed(const cs_config *cfg, const char *source)
{
    for (int i = 0; i < cfg->ndbs; i++)
        if (source_is(cfg, source, cfg->dbs[i]))
            return true;
    return false;
}

/* the sources; returns false when something is wrong */
static bool show_sources(const cs_config *cfg, PGresult *res, double max_age)
{
    bool ok = true;

    printf("%-32s %-16s %8s %10s %8s  %s\n", "source", "seq", "pending", "updated", "rejects",
           "state");
    for (int r = 0; r < PQntuples(res); r++) {
        const char *source = PQgetvalue(res, r, 0);
        const char *seq = PQgetvalue(res, r, 1);
        double age = PQgetisnull(res, r, 3) ? -1 : atof(PQgetvalue(res, r, 3));
        const char *error = PQgetvalue(res, r, 4);
        char updated[32] = "never", state[600];

        if (age >= 0) {
            age_text(updated, sizeof(updated), age);
            strcat(updated, " ago");
        }
        if (*error) {
            snprintf(state, sizeof(state), "FAILING: %s", error);
        } else if (age < 0 || age > max_age) {
            snprintf(state, sizeof(state), "STALE: not updated for more than %.0f s", max_age);
        } else {
            snprintf(state, sizeof(state), "up");
        }
        bool counts = listed(cfg, source);
        if (strcmp(state, "up") != 0 && counts)
            ok = false;
        printf("%-32s %-16.16s %8s %10s %8s  %s%s\n", source, seq,
               PQgetisnull(res, r, 2) ? "?" : PQgetvalue(res, r, 2), updated, PQgetvalue(res, r, 5),
               state, counts ? "" : " (not in COUCHDB_DBS)");
    }
    for (int i = 0; i < cfg->ndbs; i++) {
        bool found = false;
        for (int r = 0; r < PQntuples(res) && !found; r++)
            found = source_is(cfg, PQgetvalue(res, r, 0), cfg->dbs[i]);
        if (!found) {
            char source[300];
            snprintf(source, sizeof(source), "%s/%s", cfg->couchdb_host, cfg->dbs[i]);
            printf("%-32s %-16s %8s %10s %8s  NEVER SYNCED\n", source, "-", "-", "never", "-");
            ok = false;
        }
    }
    return ok;
}

/* the models' last results; returns false when one failed */
static bool show_models(PGresult *res)
{
    bool ok = true;

    printf("\n%-40s %-8s %12s %10s %10s\n", "model (last run, dbt_results)", "status", "ended",
           "seconds", "rows");
    for (int r = 0; r < PQntuples(res); r++) {
        const char *status = PQgetvalue(res, r, 1);
        char ended[32] = "?";
        if (!PQgetisnull(res, r, 5)) {
            age_text(ended, sizeof(ended), atof(PQgetvalue(res, r, 5)));
            strcat(ended, " ago");
        }
        if (strcmp(status, "success") != 0 && strcmp(status, "skipped") != 0)
            ok = false;
        printf("%-40s %-8s %12s %10.2f %10s\n", PQgetvalue(res, r, 0), status, ended,
               atof(PQgetvalue(res, r, 2)), PQgetvalue(res, r, 3));
    }
    if (PQntuples(res) == 0)
        printf("(no model run recorded)\n");
    return ok;
}

int status_main(const cs_config *cfg, int argc, char **argv)
{
    double max_age = 60;
    cs_error err;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int rc = STATUS_OK;
    buf q;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--max-age") == 0 && i + 1 < argc) {
            max_age = atof(argv[++i]);
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("Usage: cht-sync status [--max-age SECONDS]\n\n"
                   "The sync's and the models' state from PostgreSQL alone: progress, rejects,\n"
                   "the last model results. Exit status: 0 healthy, 1 a database is stale\n"
                   "(not updated within --max-age, default 60 s), failing or never synced, or\n"
                   "a model's last run failed; 2 bad usage; 3 PostgreSQL cannot be read or\n"
                   "no sync ever ran there.\n");
            return STATUS_OK;
        } else {
            fprintf(stderr, "cht-sync status: unknown option \"%s\"\n", argv[i]);
            return STATUS_USAGE;
        }
    }
    conn = pg_connect(cfg, "cht-sync status", &err);
    if (!conn) {
        fprintf(stderr, "cht-sync status: %s\n", err.msg);
        return STATUS_UNREADABLE;
    }
    buf_init(&q, 0);
    buf_puts(&q, "SELECT p.source, p.seq, p.pending, extract(epoch FROM now() - p.updated_at), "
                 "coalesce(p.error, ''), (SELECT count(*) FROM ");
    relation(&q, cfg, "couchdb_rejects");
    buf_puts(&q, " r WHERE r.source = p.source) FROM ");
    relation(&q, cfg, "couchdb_progress");
    buf_puts(&q, " p ORDER BY p.source");
    if (!(res = query(conn, q.data))) {
        fprintf(stderr, "cht-sync status: could not read the progress table in schema \"%s\": %s",
                cfg->postgres_schema, PQerrorMessage(conn));
        rc = STATUS_UNREADABLE;
        goto out;
    }
    printf("PostgreSQL database \"%s\", schema \"%s\"\n\n", cfg->postgres_db, cfg->postgres_schema);
    if (!show_sources(cfg, res, max_age))
        rc = STATUS_WRONG;
    PQclear(res);

    /* dbt_results only exists where models ran */
    buf_reset(&q);
    buf_puts(&q, "SELECT DISTINCT ON (name) name, status, execution_time, rows_affected, "
                 "end_time, extract(epoch FROM (now() AT TIME ZONE 'UTC') - end_time) FROM ");
    relation(&q, cfg, "dbt_results");
    buf_puts(&q, " WHERE resource_type = 'model' ORDER BY name, end_time DESC");
    res = query(conn, q.data);
    if (res && !show_models(res))
        rc = STATUS_WRONG;
    if (!res)
        printf("\n(no dbt_results table: no model has run in this schema)\n");
out:
    PQclear(res);
    PQfinish(conn);
    buf_free(&q);
    return rc;
}
