/*
 * pg.c - see pg.h.
 */
#include "common/pg.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/monotime.h"

/* server NOTICEs ("index ... does not exist, skipping") are debug chatter */
static void notice_to_log(void *arg, const char *message)
{
    (void)arg;
    log_debug(NULL, "PostgreSQL: %.*s", (int)strcspn(message, "\n"), message);
}

/* a connection that failed to open: the error, classified, and conn freed */
static PGconn *connect_failed(const cs_config *cfg, PGconn *conn, cs_error *err)
{
    if (!conn) {
        cs_fail(err, CS_TRANSIENT, "could not connect to PostgreSQL: out of memory");
        return NULL;
    }
    const char *msg = PQerrorMessage(conn);
    /* authentication and missing-database failures will not heal by
     * retrying quickly; libpq gives no SQLSTATE before a connection
     * exists, so this is the one place that looks at the text */
    bool permanent =
        strstr(msg, "password authentication failed") || strstr(msg, "does not exist") ||
        strstr(msg, "no password supplied") ||
        /* TLS set up wrong (POSTGRES_SSLMODE, POSTGRES_SSLROOTCERT) */
        strstr(msg, "certificate verify failed") || strstr(msg, "does not match host name") ||
        strstr(msg, "server does not support SSL") || strstr(msg, "root certificate file");
    cs_fail(err, permanent ? CS_PERMANENT : CS_TRANSIENT,
            "could not connect to PostgreSQL at \"%s:%d\": %.*s",
            cfg->postgres_host ? cfg->postgres_host : "(default)", cfg->postgres_port,
            (int)strcspn(msg, "\n"), msg);
    PQfinish(conn);
    return NULL;
}

PGconn *pg_connect(const cs_config *cfg, const char *application_name, cs_error *err)
{
    return pg_connect_zone(cfg, application_name, true, err);
}

PGconn *pg_connect_zone(const cs_config *cfg, const char *application_name, bool utc, cs_error *err)
{
    const char *keywords[CONFIG_PG_PARAMS], *values[CONFIG_PG_PARAMS];
    PGconn *conn;
    PGresult *res;

    config_pg_params(cfg, keywords, values, application_name);
    conn = PQconnectdbParams(keywords, values, 0);
    if (!conn || PQstatus(conn) != CONNECTION_OK)
        return connect_failed(cfg, conn, err);
    PQsetNoticeProcessor(conn, notice_to_log, NULL);
    res = PQexec(conn, utc ? "SET client_encoding = 'UTF8'; SET TIME ZONE 'UTC'"
                           : "SET client_encoding = 'UTF8'");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        pg_fail(conn, res, "could not set up the session", err);
        PQclear(res);
        PQfinish(conn);
        return NULL;
    }
    PQclear(res);
    return conn;
}

/* PQcancel connects to the server and may block as long as TCP tries: it
 * runs on a detached thread of its own, so no wait of ours depends on it */
static void *cancel_main(void *arg)
{
    PGcancel *c = arg;
    char errbuf[256];

    PQcancel(c, errbuf, sizeof(errbuf));
    PQfreeCancel(c);
    return NULL;
}

static void cancel_query(PGconn *conn)
{
    PGcancel *c = PQgetCancel(conn);
    pthread_attr_t attr;
    pthread_t t;

    if (!c)
        return;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, cancel_main, c) != 0)
        PQfreeCancel(c);
    pthread_attr_destroy(&attr);
}

/* the end of one wait: a deadline (0: none) and, once stop is seen, the
 * end of the grace it leaves */
typedef struct {
    const pg_limits *lim;
    int timeout_ms;
    double deadline;
    double stop_at;
    int grace_ms;
} wait_clock;

static wait_clock clock_start(const pg_limits *lim, int timeout_ms, int grace_ms)
{
    wait_clock c = {lim, timeout_ms, timeout_ms > 0 ? monotime_ms() + timeout_ms : 0, 0, grace_ms};
    return c;
}

/*
 * Waits until the socket is readable (or writable) in slices of 100 ms,
 * looking at the stop flag and the deadline between them.  CS_OK: ready.
 * Otherwise err says which bound ended the wait; no cancel here.
 */
static cs_result wait_socket(PGconn *conn, wait_clock *c, bool for_write, const char *what,
                             cs_error *err)
{
    for (;;) {
        int fd = PQsocket(conn);
        double now = monotime_ms();
        struct pollfd p;
        int n;

        if (fd < 0)
            return pg_fail(conn, NULL, what, err);
        if (c->lim && c->lim->stop && *c->lim->stop && c->stop_at == 0)
            c->stop_at = now + c->grace_ms;
        if (c->stop_at != 0 && now >= c->stop_at)
            return cs_fail(err, CS_STOPPED, "%s: stopped while waiting for PostgreSQL", what);
        if (c->deadline != 0 && now >= c->deadline)
            return cs_fail(err, CS_TRANSIENT, "%s: PostgreSQL did not answer within %.1f s", what,
                           c->timeout_ms / 1000.0);
        p.fd = fd;
        p.events = for_write ? POLLOUT | POLLIN : POLLIN;
        p.revents = 0;
        n = poll(&p, 1, 100);
        if (n > 0)
            return CS_OK;
    }
}

PGconn *pg_open(const cs_config *cfg, const char *application_name, const pg_limits *lim,
                cs_error *err)
{
    const char *keywords[CONFIG_PG_PARAMS], *values[CONFIG_PG_PARAMS];
    wait_clock c = clock_start(lim, PG_CONNECT_TIMEOUT_MS, 0);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    PGconn *conn;
    char sql[128];

    config_pg_params(cfg, keywords, values, application_name);
    conn = PQconnectStartParams(keywords, values, 0);
    if (!conn || PQstatus(conn) == CONNECTION_BAD)
        return connect_failed(cfg, conn, err);
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        cs_result rc = wait_socket(conn, &c, st == PGRES_POLLING_WRITING, "could not connect", err);
        if (rc != CS_OK) {
            if (rc == CS_TRANSIENT)
                cs_fail(err, CS_TRANSIENT,
                        "could not connect to PostgreSQL at \"%s:%d\": no answer within %d s",
                        cfg->postgres_host ? cfg->postgres_host : "(default)", cfg->postgres_port,
                        PG_CONNECT_TIMEOUT_MS / 1000);
            PQfinish(conn);
            return NULL;
        }
        st = PQconnectPoll(conn);
    }
    if (st == PGRES_POLLING_FAILED)
        return connect_failed(cfg, conn, err);
    PQsetNoticeProcessor(conn, notice_to_log, NULL);
    if (PQsetnonblocking(conn, 1) != 0) {
        cs_fail(err, CS_TRANSIENT, "could not make the PostgreSQL connection non-blocking");
        PQfinish(conn);
        return NULL;
    }
    snprintf(sql, sizeof(sql),
             "SET client_encoding = 'UTF8'; SET TIME ZONE 'UTC'; SET statement_timeout = %d",
             lim->timeout_ms);
    if (pg_run(conn, lim, sql, err) != CS_OK) {
        cs_error_prefix(err, "could not set up the session: ");
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

cs_result pg_flush(PGconn *conn, const pg_limits *lim, const char *what, cs_error *err)
{
    wait_clock c = clock_start(lim, lim->timeout_ms ? lim->timeout_ms + PG_CLIENT_SLACK_MS : 0,
                               PG_STOP_GRACE_MS);
    int r;

    while ((r = PQflush(conn)) == 1) {
        cs_result rc = wait_socket(conn, &c, true, what, err);
        if (rc != CS_OK) {
            cancel_query(conn);
            return rc;
        }
        /* the server may be talking back (a notice, an error) */
        if (!PQconsumeInput(conn))
            return pg_fail(conn, NULL, what, err);
    }
    return r == 0 ? CS_OK : pg_fail(conn, NULL, what, err);
}

cs_result pg_await(PGconn *conn, const pg_limits *lim, const char *what, PGresult **out,
                   cs_error *err)
{
    wait_clock c = clock_start(lim, lim->timeout_ms ? lim->timeout_ms + PG_CLIENT_SLACK_MS : 0,
                               PG_STOP_GRACE_MS);
    PGresult *keep = NULL, *res;
    cs_result rc;

    *out = NULL;
    if ((rc = pg_flush(conn, lim, what, err)) != CS_OK)
        return rc;
    for (;;) {
        ExecStatusType st;

        while (PQisBusy(conn)) {
            if ((rc = wait_socket(conn, &c, false, what, err)) != CS_OK) {
                cancel_query(conn);
                PQclear(keep);
                return rc;
            }
            if (!PQconsumeInput(conn)) {
                PQclear(keep);
                return pg_fail(conn, NULL, what, err);
            }
        }
        if (!(res = PQgetResult(conn)))
            break;
        st = PQresultStatus(res);
        if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
            PQclear(res);
        } else {
            PQclear(keep);
            keep = res;
        }
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
            break;
    }
    if (!keep)
        return pg_fail(conn, NULL, what, err);
    *out = keep;
    return CS_OK;
}

cs_result pg_pipeline_start(PGconn *conn, const char *what, cs_error *err)
{
    return PQenterPipelineMode(conn) == 1 ? CS_OK : pg_fail(conn, NULL, what, err);
}

cs_result pg_pipeline_finish(PGconn *conn, const pg_limits *lim, const char *what,
                             PGresult **results, int n, cs_error *err)
{
    wait_clock c = clock_start(lim, lim->timeout_ms ? lim->timeout_ms + PG_CLIENT_SLACK_MS : 0,
                               PG_STOP_GRACE_MS);
    PGresult *failed = NULL;
    cs_result rc = CS_OK;
    int got = 0;

    for (int i = 0; i < n; i++)
        results[i] = NULL;
    if (PQpipelineSync(conn) != 1)
        return pg_fail(conn, NULL, what, err);
    if ((rc = pg_flush(conn, lim, what, err)) != CS_OK)
        return rc;
    /* each statement's results end with a NULL; the sync's own result
     * (PGRES_PIPELINE_SYNC) ends the pipeline */
    for (;;) {
        PGresult *res;
        ExecStatusType st;

        while (PQisBusy(conn)) {
            if ((rc = wait_socket(conn, &c, false, what, err)) != CS_OK) {
                cancel_query(conn);
                goto out;
            }
            if (!PQconsumeInput(conn)) {
                rc = pg_fail(conn, NULL, what, err);
                goto out;
            }
        }
        if (!(res = PQgetResult(conn))) {
            /* the end of one statement's results; more ends than
             * statements: the connection broke, no sync will come */
            if (++got > n || PQstatus(conn) != CONNECTION_OK) {
                rc = pg_fail(conn, failed, what, err);
                goto out;
            }
            continue;
        }
        st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        if (st == PGRES_FATAL_ERROR && !failed)
            failed = res;
        else if (got < n && !results[got] && st != PGRES_PIPELINE_ABORTED)
            results[got] = res;
        else
            PQclear(res);
    }
    if (PQexitPipelineMode(conn) != 1)
        rc = pg_fail(conn, NULL, what, err);
    else if (failed)
        rc = pg_fail(conn, failed, what, err);
    else if (got < n)
        rc = pg_fail(conn, NULL, what, err);
out:
    PQclear(failed);
    if (rc != CS_OK)
        for (int i = 0; i < n; i++) {
            PQclear(results[i]);
            results[i] = NULL;
        }
    return rc;
}

cs_result pg_run(PGconn *conn, const pg_limits *lim, const char *sql, cs_error *err)
{
    PGresult *res = NULL;
    ExecStatusType st;
    cs_result rc;

    if (!PQsendQuery(conn, sql))
        return pg_fail(conn, NULL, "query failed", err);
    if ((rc = pg_await(conn, lim, "query failed", &res, err)) != CS_OK)
        return rc;
    st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = pg_fail(conn, res, "query failed", err);
    PQclear(res);
    return rc;
}

static cs_result classify(const char *state, bool conn_bad)
{
    if (conn_bad || !state)
        return CS_TRANSIENT;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || /* serialization, deadlock */
        strncmp(state, "08", 2) == 0 ||                               /* connection exception */
        strcmp(state, "53300") == 0 ||                                /* too many connections */
        strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 || /* admin/crash shutdown */
        strcmp(state, "57P03") == 0 ||                                /* cannot connect now */
        strcmp(state, "55P03") == 0 ||                                /* lock not available */
        strcmp(state, "57014") == 0)                                  /* statement time-out */
        return CS_TRANSIENT;
    /* data exceptions, integrity constraint violations, stack depth */
    if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0 || strcmp(state, "54001") == 0)
        return CS_INVALID;
    return CS_PERMANENT;
}

cs_result pg_fail(PGconn *conn, const PGresult *res, const char *what, cs_error *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    bool conn_bad = !conn || PQstatus(conn) != CONNECTION_OK;

    if (!msg || !*msg)
        msg = conn ? PQerrorMessage(conn) : "no connection";
    if (!*msg)
        msg = "unknown error";
    /* libpq messages end in a newline and may carry DETAIL lines: keep the first */
    return cs_fail(err, classify(state, conn_bad), "%s: %.*s%s%s%s", what, (int)strcspn(msg, "\n"),
                   msg, state ? " (SQLSTATE " : "", state ? state : "", state ? ")" : "");
}

cs_result pg_exec(PGconn *conn, const char *sql, cs_error *err)
{
    PGresult *res = PQexec(conn, sql);
    cs_result rc = CS_OK;
    ExecStatusType st = PQresultStatus(res);

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = pg_fail(conn, res, "query failed", err);
    PQclear(res);
    return rc;
}

static bool quote(buf *b, const char *s, char q)
{
    buf_putc(b, q);
    for (; *s; s++) {
        if (*s == q)
            buf_putc(b, q);
        buf_putc(b, *s);
    }
    return buf_putc(b, q);
}

bool pg_quote_ident(buf *b, const char *name)
{
    return quote(b, name, '"');
}

bool pg_quote_literal(buf *b, const char *text)
{
    return quote(b, text, '\'');
}
