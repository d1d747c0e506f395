/*
 * store/internal.h - helpers shared by the two halves of the store: schema
 * set-up and migration (schema.c) and the per-batch write path (store.c).
 * Not for use outside src/store/.
 */
#ifndef CS_STORE_INTERNAL_H
#define CS_STORE_INTERNAL_H

#include <libpq-fe.h>

#include "common/pg.h"
#include "common/result.h"

/* "schema"."table<suffix>", both quoted; malloc'd (the caller frees), NULL
 * when out of memory */
char *store_qualified(const char *schema, const char *table, const char *suffix);

/* appends the n bytes at p to b, escaped for COPY's text format (store.c;
 * drift.c's listing uses it too) */
void store_copy_escaped(buf *b, const char *p, size_t n);

/* "name" with embedded quotes doubled, malloc'd; NULL when out of memory */
char *store_quote_ident(const char *name);

/* ends a failed transaction within lim; a failure here leaves nothing to
 * undo.  A connection still busy with a cancelled query is left alone: the
 * caller drops it. */
void store_rollback(PGconn *conn, const pg_limits *lim);

/* Runs a command built from fmt (identifiers already quoted; never a
 * value: values are bound), waiting within lim.  On failure err says "what: PostgreSQL's
 * message" and the result is classified as pg_fail does. */
cs_result store_exec(PGconn *conn, const pg_limits *lim, const char *what, cs_error *err,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6))) CS_MUST_CHECK;

#endif
