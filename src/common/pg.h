/*
 * pg.h - what every PostgreSQL user in the tree shares: connecting from the
 * config, classifying errors (transient or not) from the SQLSTATE, and
 * quoting identifiers.  The sync's store and the pipeline's runner both
 * build on it; neither parses error message text.
 */
#ifndef CS_PG_H
#define CS_PG_H

#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/result.h"

/*
 * Opens a connection with the config's POSTGRES_* settings, in UTF8, with
 * the session time zone UTC.  Returns NULL and fills err (CS_TRANSIENT for
 * an unreachable server, CS_PERMANENT for bad credentials or a missing
 * database).  The message never contains the password.
 */
PGconn *pg_connect(const cs_config *cfg, const char *application_name, cs_error *err);
/*
 * The same; with utc false the session keeps the time zone the server
 * gives it (the database's or the role's setting, or PGTZ), as dbt's
 * connections do, so that ::date and date_trunc on timestamptz in models
 * mean what they mean in dbt.
 */
PGconn *pg_connect_zone(const cs_config *cfg, const char *application_name, bool utc,
                        cs_error *err);

/*
 * The bounds of every wait on one connection's socket (the sync's store;
 * the pipeline still uses blocking calls).  A statement waits at most
 * timeout_ms plus PG_CLIENT_SLACK_MS (the server's statement_timeout is
 * timeout_ms, so a live server reports the time-out itself first; a frozen
 * one cannot); 0 waits without a deadline.  Once *stop is raised a wait
 * lasts at most PG_STOP_GRACE_MS more (a healthy server finishes the batch
 * in that time).  A wait that ends early cancels the query and leaves the
 * connection busy: the caller drops it (PQfinish never blocks: the
 * connection is non-blocking).
 */
typedef struct {
    volatile sig_atomic_t *stop; /* NULL: no stop flag */
    int timeout_ms;
} pg_limits;

#define PG_CLIENT_SLACK_MS 2000
#define PG_STOP_GRACE_MS 2000
#define PG_CONNECT_TIMEOUT_MS 10000

/*
 * As pg_connect, but every wait is bounded by lim (the connection itself by
 * PG_CONNECT_TIMEOUT_MS), the connection is non-blocking, and the session's
 * statement_timeout is lim->timeout_ms.
 */
PGconn *pg_open(const cs_config *cfg, const char *application_name, const pg_limits *lim,
                cs_error *err);

/*
 * Waits, within lim, for the answer to what was sent (PQsend*): *res is the
 * first failed result, or else the last one (a COPY_IN result ends the
 * wait), the caller PQclears it.  CS_OK means a result came (its status is
 * the caller's to look at); CS_STOPPED (stop raised), CS_TRANSIENT (the
 * deadline passed, or the connection was lost) otherwise, with *res NULL.
 */
cs_result pg_await(PGconn *conn, const pg_limits *lim, const char *what, PGresult **res,
                   cs_error *err) CS_MUST_CHECK;

/* Sends what a non-blocking connection has queued, within lim (COPY data). */
cs_result pg_flush(PGconn *conn, const pg_limits *lim, const char *what,
                   cs_error *err) CS_MUST_CHECK;

/*
 * Several statements in one round trip (libpq's pipeline mode, PostgreSQL
 * 14+): pg_pipeline_start, then the caller's PQsendQueryPrepared /
 * PQsendQueryParams (no COPY), then pg_pipeline_finish, which sends the sync,
 * waits within lim and leaves pipeline mode.  The server runs the statements
 * one after another, each with its own snapshot; after a failure it skips the
 * rest.  results[i] is the result of the i-th statement (n of them; the
 * caller PQclears each); on failure err is the first failed statement's
 * error (pg_fail's classes) and every results[i] is NULL.  An explicit
 * transaction stays open after a failure: the caller rolls it back.
 */
cs_result pg_pipeline_start(PGconn *conn, const char *what, cs_error *err) CS_MUST_CHECK;
cs_result pg_pipeline_finish(PGconn *conn, const pg_limits *lim, const char *what,
                             PGresult **results, int n, cs_error *err) CS_MUST_CHECK;

/* pg_exec within lim: a command sent with PQsendQuery, classified as pg_fail. */
cs_result pg_run(PGconn *conn, const pg_limits *lim, const char *sql, cs_error *err) CS_MUST_CHECK;

/*
 * Classifies a failed result (or, with res NULL, the connection's state):
 * lost connection, deadlock, serialization failure, too many connections,
 * admin shutdown, cannot connect now, lock or statement time-out -> CS_TRANSIENT; data errors
 * (class 22), integrity violations (class 23) and stack depth -> CS_INVALID; everything else
 * CS_PERMANENT. Fills err with "what: message (SQLSTATE xxxxx)" and returns the class.
 */
cs_result pg_fail(PGconn *conn, const PGresult *res, const char *what, cs_error *err);

/* Runs a command that returns no rows; on failure classifies as pg_fail. */
cs_result pg_exec(PGconn *conn, const char *sql, cs_error *err) CS_MUST_CHECK;

/* Appends "name" with embedded quotes doubled. */
bool pg_quote_ident(buf *b, const char *name);
/* Appends 'text' with embedded quotes doubled (standard_conforming_strings). */
bool pg_quote_literal(buf *b, const char *text);

#endif
