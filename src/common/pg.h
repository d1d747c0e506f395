/*
 * pg.h - what every PostgreSQL user in the tree shares: connecting from the
 * config, classifying errors (transient or not) from the SQLSTATE, and
 * quoting identifiers.  The sync's store and the pipeline's runner both
 * build on it; neither parses error message text.
 */
#ifndef CS_PG_H
#define CS_PG_H

#include <libpq-fe.h>
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
 * Classifies a failed result (or, with res NULL, the connection's state):
 * lost connection, deadlock, serialization failure, too many connections,
 * admin shutdown, cannot connect now -> CS_TRANSIENT; data errors (class 22),
 * integrity violations (class 23) and stack depth -> CS_INVALID; everything else CS_PERMANENT.
 * Fills err with "what: message (SQLSTATE xxxxx)" and returns the class.
 */
cs_result pg_fail(PGconn *conn, const PGresult *res, const char *what, cs_error *err);

/* Runs a command that returns no rows; on failure classifies as pg_fail. */
cs_result pg_exec(PGconn *conn, const char *sql, cs_error *err) CS_MUST_CHECK;

/* Appends "name" with embedded quotes doubled. */
bool pg_quote_ident(buf *b, const char *name);
/* Appends 'text' with embedded quotes doubled (standard_conforming_strings). */
bool pg_quote_literal(buf *b, const char *text);

#endif
