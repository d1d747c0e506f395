/*
 * materialize.h - the SQL of each materialization on PostgreSQL, as pure
 * text builders (no connection), so that the statements are unit-tested
 * and documented in one place.  The runner decides which to run and in
 * which transaction (docs/pipeline.md):
 *
 *   view         CREATE VIEW tmp AS (...); swap
 *   table        CREATE TABLE tmp AS (...) | CREATE TABLE tmp (contract);
 *                INSERT ... SELECT; indexes on tmp; swap
 *   swap         ALTER old RENAME TO backup; ALTER tmp RENAME TO name;
 *                DROP backup CASCADE       (all in the build's transaction)
 *   incremental  CREATE TEMP TABLE t ON COMMIT DROP AS (...); ANALYZE t;
 *                DELETE FROM target USING t WHERE key = key;
 *                INSERT INTO target (cols) SELECT cols FROM t
 *                (strategy 'merge': MERGE INTO target USING t ON key = key,
 *                updating matched rows in place)
 *
 * Every builder appends to a buf; the caller checks buf_ok once.
 */
#ifndef CS_MATERIALIZE_H
#define CS_MATERIALIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "pipeline/yaml_tree.h"
#include "common/result.h"

/* "name" and 'text', quotes doubled (no libpq needed by callers) */
void mat_quote_ident(buf *b, const char *name);
void mat_quote_literal(buf *b, const char *text);

/* "schema"."name" */
void mat_relation(buf *b, const char *schema, const char *name);

/* the compiled SQL without trailing semicolons and blanks, wrapped "(\n...\n)" */
void mat_subquery(buf *b, const char *sql);

/*
 * CREATE TABLE "schema"."name" ... for a model.  With contract (a list of
 * column maps: name, data_type, constraints with expressions already
 * rendered) the table is declared with its columns and constraints and
 * filled by INSERT ... SELECT of those columns; model_constraints is the
 * model-level list (may be NULL).  Returns CS_INVALID naming the column for
 * an unsupported constraint or a column without data_type.
 */
cs_result mat_create_table(buf *b, const char *schema, const char *name, const char *sql,
                           const pv *contract, const pv *model_constraints,
                           cs_error *err) CS_MUST_CHECK;

/* CREATE VIEW "schema"."name" AS (sql) */
void mat_create_view(buf *b, const char *schema, const char *name, const char *sql);

/*
 * CREATE [UNIQUE] INDEX ON "schema"."name" USING type (cols) for each entry
 * of indexes (a list of {columns: [...], type: btree|hash, unique: bool});
 * CS_INVALID for an entry without columns or with another type.
 */
cs_result mat_indexes(buf *b, const char *schema, const char *name, const pv *indexes,
                      cs_error *err) CS_MUST_CHECK;

/*
 * The swap: old (kind 'r' table, 'v' view, 0 absent) is renamed to backup,
 * tmp (kind new_kind) renamed to name, backup dropped with CASCADE (as dbt
 * does: views on the old relation go with it).
 */
void mat_swap(buf *b, const char *schema, const char *name, char old_kind, const char *tmp,
              char new_kind, const char *backup);

/* DROP TABLE/VIEW IF EXISTS for a relation of kind ('r' or 'v') */
void mat_drop(buf *b, const char *schema, const char *name, char kind);

/*
 * DROP TABLE IF EXISTS pg_temp."tmp"; CREATE TEMP TABLE "tmp" AS (sql): a
 * temp table that outlives the transaction, so that later runs on the same
 * connection fill it with mat_temp_insert instead of creating it again
 */
void mat_temp_table(buf *b, const char *tmp, const char *sql);

/* INSERT INTO pg_temp."tmp" SELECT * FROM (sql) AS model_subq */
void mat_temp_insert(buf *b, const char *tmp, const char *sql);

/*
 * DELETE FROM target t USING "tmp" s WHERE t.k1 = s.k1 AND ...  With
 * nrows > 0 (what "tmp" holds, known exactly) s is (SELECT * FROM "tmp"
 * LIMIT nrows): the same rows, but the planner knows how many, so that a
 * small batch is joined through the target's key index (a hash index
 * included) instead of a sort or hash of the whole target, which is what
 * an unanalyzed temp table's default size estimate leads it to.
 */
void mat_incr_delete(buf *b, const char *schema, const char *name, const char *tmp, long nrows,
                     const char *const *keys, size_t nkeys);

/* INSERT INTO target (cols) SELECT cols FROM "tmp" */
void mat_incr_insert(buf *b, const char *schema, const char *name, const char *tmp,
                     const char *const *cols, size_t ncols);

/*
 * incremental_strategy 'merge': MERGE INTO target t USING "tmp" s ON
 * t.k1 = s.k1 AND ... WHEN MATCHED THEN UPDATE SET (every non-key column)
 * WHEN NOT MATCHED THEN INSERT (cols).  A replaced row is updated in place,
 * never deleted, so ON DELETE CASCADE children keep their rows and a reader
 * never sees the key missing.  With compare (every column's type has an
 * equality operator: the caller knows the types) a matched row is updated
 * only when some column IS DISTINCT FROM the new value, so that an
 * unchanged row is not rewritten.  nrows as for mat_incr_delete.  cols are
 * the columns both sides have, keys among them.
 */
void mat_incr_merge(buf *b, const char *schema, const char *name, const char *tmp, long nrows,
                    const char *const *keys, size_t nkeys, const char *const *cols, size_t ncols,
                    bool compare);

/*
 * Injects ctes ("__dbt__cte__x as (...)", already comma-joined) into sql:
 * into its leading WITH clause when it has one, else as a new WITH.  Leading
 * blanks and SQL comments are skipped when looking for WITH.
 */
void mat_inject_ctes(buf *b, const char *sql, const char *ctes);

/*
 * A table refreshed in place (its shape unchanged): DELETE FROM target;
 * INSERT INTO target (cols) SELECT cols FROM (sql) AS model_subq.  Readers
 * keep seeing the old rows until the commit and take no wait; views,
 * grants and foreign keys on the table stay as they are.
 */
void mat_table_refresh(buf *b, const char *schema, const char *name, const char *sql,
                       const char *const *cols, size_t ncols);

/* PostgreSQL's identifier limit (NAMEDATALEN - 1): longer names are cut */
#define MAT_NAME_MAX 63

/*
 * The name of a relation that stands beside name (suffix "__cs_tmp",
 * "__cs_backup", "__cs_incr") into out (at least MAT_NAME_MAX + 1 bytes):
 * name + suffix when that fits in MAT_NAME_MAX bytes; else name cut (at a
 * UTF-8 character boundary) + "_" + 8 hex digits of a hash of the whole
 * name + suffix, so that after PostgreSQL's cut it neither equals name nor
 * another model's or another suffix's name.
 */
void mat_temp_name(char *out, size_t n, const char *name, const char *suffix);

/* the PostgreSQL type for a contract data_type (dbt's labels: string -> text) */
const char *mat_type(const char *data_type);

#endif
