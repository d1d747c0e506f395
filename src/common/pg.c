/*
 * pg.c - see pg.h.
 */
#include "common/pg.h"

#include <string.h>

#include "common/log.h"

/* server NOTICEs ("index ... does not exist, skipping") are debug chatter */
static void notice_to_log(void *arg, const char *message)
{
    (void)arg;
    log_debug(NULL, "PostgreSQL: %.*s", (int)strcspn(message, "\n"), message);
}

PGconn *pg_connect(const cs_config *cfg, const char *application_name, cs_error *err)
{
    return pg_connect_zone(cfg, application_name, true, err);
}

PGconn *pg_connect_zone(const cs_config *cfg, const char *application_name, bool utc, cs_error *err)
{
    const char *keywords[16], *values[16];
    PGconn *conn;
    PGresult *res;

    config_pg_params(cfg, keywords, values, application_name);
    conn = PQconnectdbParams(keywords, values, 0);
    if (!conn) {
        cs_fail(err, CS_TRANSIENT, "could not connect to PostgreSQL: out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(conn);
        /* authentication and missing-database failures will not heal by
         * retrying quickly; libpq gives no SQLSTATE before a connection
         * exists, so this is the one place that looks at the text */
        bool permanent = strstr(msg, "password authentication failed") ||
                         strstr(msg, "does not exist") || strstr(msg, "no password supplied");
        cs_fail(err, permanent ? CS_PERMANENT : CS_TRANSIENT,
                "could not connect to PostgreSQL at \"%s:%d\": %.*s",
                cfg->postgres_host ? cfg->postgres_host : "(default)", cfg->postgres_port,
                (int)strcspn(msg, "\n"), msg);
        PQfinish(conn);
        return NULL;
    }
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

static cs_result classify(const char *state, bool conn_bad)
{
    if (conn_bad || !state)
        return CS_TRANSIENT;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || /* serialization, deadlock */
        strncmp(state, "08", 2) == 0 ||                               /* connection exception */
        strcmp(state, "53300") == 0 ||                                /* too many connections */
        strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 || /* admin/crash shutdown */
        strcmp(state, "57P03") == 0 ||                                /* cannot connect now */
        strcmp(state, "55P03") == 0)                                  /* lock not available */
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
