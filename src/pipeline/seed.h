/*
 * seed.h - dbt seeds: CSV files under a package's `seed-paths` (default
 * seeds/) loaded into tables, `cht-sync pipeline seed`.
 *
 * Column types are inferred as dbt does with agate (integer, numeric, date,
 * timestamp, boolean, text: the first that every non-null value fits, "" and
 * "null" being null), unless `column_types` names one.  Config comes from
 * dbt_project.yml's `seeds:` tree, folder by folder as for models:
 * `column_types`, `quote_columns` (default true, as dbt-postgres),
 * `delimiter`, `enabled`, `alias`, `pre-hook`/`post-hook` (plain SQL).
 * A seed whose table exists is emptied and refilled; with full_refresh (or
 * a column list that changed) it is dropped (CASCADE) and created again.
 * Each seed is one transaction.
 */
#ifndef CS_PIPELINE_SEED_H
#define CS_PIPELINE_SEED_H

#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"
#include "common/result.h"
#include "pipeline/project.h"

/* a parsed CSV: a header and rows of cells (NULL-free strings) */
typedef struct {
    char **header;
    size_t ncols;
    char ***rows; /* nrows arrays of ncols strings */
    size_t nrows;
} seed_csv;

#define SEED_MAX_ROWS 1000000 /* seeds are small static tables, not data loads */

/*
 * Parses RFC 4180 CSV (quoted fields with "" escapes and newlines, CRLF or
 * LF) with delim; every row must have the header's width.  name is for
 * messages.  Fills out (free with seed_csv_free) or fails CS_INVALID.
 */
cs_result seed_csv_parse(const char *name, const char *text, size_t len, char delim, seed_csv *out,
                         cs_error *err) CS_MUST_CHECK;
void seed_csv_free(seed_csv *t);

/* the PostgreSQL type dbt infers for column col of t */
const char *seed_infer_type(const seed_csv *t, size_t col);

/*
 * Finds the enabled seeds of p's packages into p->seeds (a package's
 * folder config first, then the root project's entry for it).
 */
cs_result seed_find(pl_project *p, cs_error *err) CS_MUST_CHECK;

/* index of the seed named name (in package pkg, or any when NULL), or -1 */
long seed_lookup(const pl_project *p, const char *pkg, const char *name);

/*
 * A seed's hooks, run inside its transaction (post: the post-hooks, else
 * the pre-hooks).  The runner renders them as templates (this: the seed).
 */
typedef cs_result (*seed_hook_fn)(void *ud, bool post, cs_error *err);

/*
 * Loads seed s into schema over c, in one transaction: CREATE SCHEMA IF
 * NOT EXISTS, the pre-hooks, then TRUNCATE (same columns, no full_refresh)
 * or DROP ... CASCADE + CREATE TABLE, the rows, the post-hooks.  hooks
 * NULL runs the config's hooks as plain SQL.  *rows gets the row count.
 * On failure the transaction is rolled back.
 */
struct pg_conn; /* libpq's PGconn, without libpq's header here */
cs_result seed_load(struct pg_conn *c, const pl_seed *s, const char *schema, bool full_refresh,
                    seed_hook_fn hooks, void *ud, size_t *rows, cs_error *err) CS_MUST_CHECK;

#endif
