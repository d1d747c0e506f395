/*
 * materialize.c - see materialize.h.
 */
#include "pipeline/materialize.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/pg.h"

void mat_quote_ident(buf *b, const char *name)
{
    pg_quote_ident(b, name);
}

void mat_quote_literal(buf *b, const char *text)
{
    pg_quote_literal(b, text);
}

void mat_relation(buf *b, const char *schema, const char *name)
{
    pg_quote_ident(b, schema);
    buf_putc(b, '.');
    pg_quote_ident(b, name);
}

void mat_subquery(buf *b, const char *sql)
{
    size_t n = strlen(sql);
    while (n > 0 && (isspace((unsigned char)sql[n - 1]) || sql[n - 1] == ';'))
        n--;
    buf_puts(b, "(\n");
    buf_append(b, sql, n);
    buf_puts(b, "\n)");
}

const char *mat_type(const char *t)
{
    if (strcasecmp(t, "string") == 0)
        return "text";
    if (strcasecmp(t, "integer") == 0)
        return "int";
    return t;
}

static void col_name(buf *b, const pv *col)
{
    if (pv_truthy(pv_get(col, "quote")))
        pg_quote_ident(b, pv_gets(col, "name"));
    else
        buf_puts(b, pv_gets(col, "name"));
}

/* one constraint (column-level when column != NULL) */
static cs_result constraint_sql(buf *b, const pv *c, const char *column, bool table_level,
                                cs_error *err)
{
    const char *type = pv_gets(c, "type"), *expr = pv_gets(c, "expression");
    const pv *cols = pv_get(c, "columns");

    if (!type)
        return cs_fail(err, CS_INVALID, "constraint on \"%s\" has no type",
                       column ? column : "(model)");
    if (pv_gets(c, "name")) {
        buf_puts(b, " constraint ");
        pg_quote_ident(b, pv_gets(c, "name"));
    }
    if (strcmp(type, "not_null") == 0 && !table_level) {
        buf_puts(b, " not null");
    } else if (strcmp(type, "unique") == 0 || strcmp(type, "primary_key") == 0) {
        buf_puts(b, strcmp(type, "unique") == 0 ? " unique" : " primary key");
        if (table_level) {
            if (!cols || cols->type != PV_LIST || cols->n == 0)
                return cs_fail(err, CS_INVALID, "model-level %s constraint needs \"columns\"",
                               type);
            buf_puts(b, " (");
            for (size_t i = 0; i < cols->n; i++)
                buf_printf(b, "%s%s", i ? ", " : "", pv_s(cols->items[i]) ? cols->items[i]->s : "");
            buf_putc(b, ')');
        }
    } else if (strcmp(type, "check") == 0 && expr) {
        buf_printf(b, " check (%s)", expr);
    } else if (strcmp(type, "foreign_key") == 0) {
        if (table_level) {
            if (!cols || cols->type != PV_LIST || cols->n == 0)
                return cs_fail(err, CS_INVALID, "model-level foreign_key needs \"columns\"");
            buf_puts(b, " foreign key (");
            for (size_t i = 0; i < cols->n; i++)
                buf_printf(b, "%s%s", i ? ", " : "", pv_s(cols->items[i]) ? cols->items[i]->s : "");
            buf_putc(b, ')');
        }
        if (expr) {
            buf_printf(b, " references %s", expr);
        } else if (pv_gets(c, "to")) {
            const pv *tc = pv_get(c, "to_columns");
            buf_printf(b, " references %s", pv_gets(c, "to"));
            if (tc && tc->type == PV_LIST && tc->n) {
                buf_puts(b, " (");
                for (size_t i = 0; i < tc->n; i++)
                    buf_printf(b, "%s%s", i ? ", " : "", pv_s(tc->items[i]) ? tc->items[i]->s : "");
                buf_putc(b, ')');
            }
        } else {
            return cs_fail(err, CS_INVALID,
                           "foreign_key constraint on \"%s\" needs \"expression\" or \"to\"",
                           column ? column : "(model)");
        }
    } else {
        return cs_fail(err, CS_INVALID, "unsupported constraint type \"%s\" on \"%s\"", type,
                       column ? column : "(model)");
    }
    return CS_OK;
}

cs_result mat_create_table(buf *b, const char *schema, const char *name, const char *sql,
                           const pv *contract, const pv *model_constraints, cs_error *err)
{
    cs_result rc;

    buf_puts(b, "CREATE TABLE ");
    mat_relation(b, schema, name);
    if (!contract) {
        buf_puts(b, " AS ");
        mat_subquery(b, sql);
        return CS_OK;
    }
    buf_puts(b, " (\n");
    for (size_t i = 0; i < contract->n; i++) {
        const pv *col = contract->items[i], *cons = pv_get(col, "constraints");
        const char *cname = pv_gets(col, "name"), *type = pv_gets(col, "data_type");
        if (!cname)
            return cs_fail(err, CS_INVALID, "contract column %zu has no name", i + 1);
        if (!type)
            return cs_fail(err, CS_INVALID, "contract column \"%s\" has no data_type", cname);
        buf_puts(b, i ? ",\n    " : "    ");
        col_name(b, col);
        buf_printf(b, " %s", mat_type(type));
        for (size_t k = 0; cons && cons->type == PV_LIST && k < cons->n; k++)
            if ((rc = constraint_sql(b, cons->items[k], cname, false, err)) != CS_OK)
                return rc;
    }
    for (size_t k = 0;
         model_constraints && model_constraints->type == PV_LIST && k < model_constraints->n; k++) {
        buf_puts(b, ",\n   ");
        if ((rc = constraint_sql(b, model_constraints->items[k], NULL, true, err)) != CS_OK)
            return rc;
    }
    buf_puts(b, "\n);\nINSERT INTO ");
    mat_relation(b, schema, name);
    buf_puts(b, " (");
    for (size_t i = 0; i < contract->n; i++) {
        if (i)
            buf_puts(b, ", ");
        col_name(b, contract->items[i]);
    }
    buf_puts(b, ")\nSELECT ");
    for (size_t i = 0; i < contract->n; i++) {
        if (i)
            buf_puts(b, ", ");
        col_name(b, contract->items[i]);
    }
    buf_puts(b, " FROM ");
    mat_subquery(b, sql);
    buf_puts(b, " AS model_subq");
    return CS_OK;
}

void mat_create_view(buf *b, const char *schema, const char *name, const char *sql)
{
    buf_puts(b, "CREATE VIEW ");
    mat_relation(b, schema, name);
    buf_puts(b, " AS ");
    mat_subquery(b, sql);
}

cs_result mat_indexes(buf *b, const char *schema, const char *name, const pv *indexes,
                      cs_error *err)
{
    for (size_t i = 0; indexes && indexes->type == PV_LIST && i < indexes->n; i++) {
        const pv *ix = indexes->items[i], *cols = pv_get(ix, "columns");
        const char *type = pv_gets(ix, "type");
        if (!cols || cols->type != PV_LIST || cols->n == 0)
            return cs_fail(err, CS_INVALID, "index %zu has no \"columns\"", i + 1);
        if (type && strcasecmp(type, "btree") != 0 && strcasecmp(type, "hash") != 0 &&
            strcasecmp(type, "gin") != 0 && strcasecmp(type, "gist") != 0 &&
            strcasecmp(type, "brin") != 0)
            return cs_fail(err, CS_INVALID, "index %zu: unsupported type \"%s\"", i + 1, type);
        buf_printf(b, "CREATE %sINDEX ON ", pv_truthy(pv_get(ix, "unique")) ? "UNIQUE " : "");
        mat_relation(b, schema, name);
        buf_printf(b, " USING %s (", type ? type : "btree");
        for (size_t k = 0; k < cols->n; k++) {
            if (!pv_s(cols->items[k]))
                return cs_fail(err, CS_INVALID, "index %zu: a column is not a string", i + 1);
            buf_printf(b, "%s%s", k ? ", " : "", cols->items[k]->s);
        }
        buf_puts(b, ");\n");
    }
    return CS_OK;
}

static const char *kind_word(char kind)
{
    return kind == 'v' ? "VIEW" : kind == 'm' ? "MATERIALIZED VIEW" : "TABLE";
}

void mat_drop(buf *b, const char *schema, const char *name, char kind)
{
    buf_printf(b, "DROP %s IF EXISTS ", kind_word(kind));
    mat_relation(b, schema, name);
    buf_puts(b, " CASCADE;\n");
}

void mat_swap(buf *b, const char *schema, const char *name, char old_kind, const char *tmp,
              char new_kind, const char *backup)
{
    if (old_kind) {
        buf_printf(b, "ALTER %s ", kind_word(old_kind));
        mat_relation(b, schema, name);
        buf_puts(b, " RENAME TO ");
        pg_quote_ident(b, backup);
        buf_puts(b, ";\n");
    }
    buf_printf(b, "ALTER %s ", kind_word(new_kind));
    mat_relation(b, schema, tmp);
    buf_puts(b, " RENAME TO ");
    pg_quote_ident(b, name);
    buf_puts(b, ";\n");
    if (old_kind)
        mat_drop(b, schema, backup, old_kind);
}

void mat_temp_table(buf *b, const char *tmp, const char *sql)
{
    buf_puts(b, "DROP TABLE IF EXISTS pg_temp.");
    pg_quote_ident(b, tmp);
    buf_puts(b, ";\nCREATE TEMP TABLE ");
    pg_quote_ident(b, tmp);
    buf_puts(b, " AS ");
    mat_subquery(b, sql);
}

void mat_temp_insert(buf *b, const char *tmp, const char *sql)
{
    buf_puts(b, "INSERT INTO pg_temp.");
    pg_quote_ident(b, tmp);
    buf_puts(b, " SELECT * FROM ");
    mat_subquery(b, sql);
    buf_puts(b, " AS model_subq");
}

/* a column name as a unique_key names it (plain, or "quoted") */
static bool key_is_column(const char *k)
{
    if (k[0] == '"')
        return strchr(k + 1, '"') == k + strlen(k) - 1;
    if (!isalpha((unsigned char)k[0]) && k[0] != '_')
        return false;
    for (; *k; k++)
        if (!isalnum((unsigned char)*k) && *k != '_' && *k != '$')
            return false;
    return true;
}

void mat_incr_delete(buf *b, const char *schema, const char *name, const char *tmp, long nrows,
                     const char *const *keys, size_t nkeys)
{
    bool columns = true;

    for (size_t i = 0; i < nkeys; i++)
        columns = columns && key_is_column(keys[i]);
    if (!columns) {
        /* an expression key, as dbt writes it: the target's rows whose key
         * values the new rows have */
        buf_puts(b, "DELETE FROM ");
        mat_relation(b, schema, name);
        buf_puts(b, " WHERE (");
        for (size_t i = 0; i < nkeys; i++)
            buf_printf(b, "%s(%s)", i ? ", " : "", keys[i]);
        buf_puts(b, ") IN (SELECT ");
        for (size_t i = 0; i < nkeys; i++)
            buf_printf(b, "%s(%s)", i ? ", " : "", keys[i]);
        buf_puts(b, " FROM ");
        pg_quote_ident(b, tmp);
        if (nrows > 0)
            buf_printf(b, " LIMIT %ld", nrows);
        buf_putc(b, ')');
        return;
    }
    buf_puts(b, "DELETE FROM ");
    mat_relation(b, schema, name);
    buf_puts(b, " AS t USING ");
    if (nrows > 0) {
        buf_puts(b, "(SELECT * FROM ");
        pg_quote_ident(b, tmp);
        buf_printf(b, " LIMIT %ld)", nrows);
    } else {
        pg_quote_ident(b, tmp);
    }
    buf_puts(b, " AS s WHERE ");
    for (size_t i = 0; i < nkeys; i++)
        buf_printf(b, "%st.%s = s.%s", i ? " AND " : "", keys[i], keys[i]);
}

void mat_incr_insert(buf *b, const char *schema, const char *name, const char *tmp,
                     const char *const *cols, size_t ncols)
{
    buf_puts(b, "INSERT INTO ");
    mat_relation(b, schema, name);
    buf_puts(b, " (");
    for (size_t i = 0; i < ncols; i++) {
        if (i)
            buf_puts(b, ", ");
        pg_quote_ident(b, cols[i]);
    }
    buf_puts(b, ") SELECT ");
    for (size_t i = 0; i < ncols; i++) {
        if (i)
            buf_puts(b, ", ");
        pg_quote_ident(b, cols[i]);
    }
    buf_puts(b, " FROM ");
    pg_quote_ident(b, tmp);
}

static bool is_key(const char *col, const char *const *keys, size_t nkeys)
{
    for (size_t i = 0; i < nkeys; i++)
        if (strcmp(col, keys[i]) == 0)
            return true;
    return false;
}

/* "name" or "p"."name" for each column, ", "-separated (p NULL: none) */
static void col_list(buf *b, const char *prefix, const char *const *cols, size_t ncols,
                     const char *const *skip, size_t nskip)
{
    bool first = true;
    for (size_t i = 0; i < ncols; i++) {
        if (is_key(cols[i], skip, nskip))
            continue;
        if (!first)
            buf_puts(b, ", ");
        if (prefix)
            buf_printf(b, "%s.", prefix);
        pg_quote_ident(b, cols[i]);
        first = false;
    }
}

void mat_incr_merge(buf *b, const char *schema, const char *name, const char *tmp, long nrows,
                    const char *const *keys, size_t nkeys, const char *const *cols, size_t ncols,
                    bool compare)
{
    size_t nvalues = 0;

    for (size_t i = 0; i < ncols; i++)
        nvalues += !is_key(cols[i], keys, nkeys);
    buf_puts(b, "MERGE INTO ");
    mat_relation(b, schema, name);
    buf_puts(b, " AS t USING ");
    if (nrows > 0) {
        buf_puts(b, "(SELECT * FROM ");
        pg_quote_ident(b, tmp);
        buf_printf(b, " LIMIT %ld)", nrows);
    } else {
        pg_quote_ident(b, tmp);
    }
    buf_puts(b, " AS s ON ");
    for (size_t i = 0; i < nkeys; i++)
        buf_printf(b, "%st.%s = s.%s", i ? " AND " : "", keys[i], keys[i]);
    if (nvalues > 0) {
        buf_puts(b, "\nWHEN MATCHED ");
        if (compare) {
            buf_puts(b, "AND (");
            col_list(b, "t", cols, ncols, keys, nkeys);
            buf_puts(b, ") IS DISTINCT FROM (");
            col_list(b, "s", cols, ncols, keys, nkeys);
            buf_puts(b, ") ");
        }
        buf_puts(b, "THEN UPDATE SET ");
        for (size_t i = 0, k = 0; i < ncols; i++) {
            if (is_key(cols[i], keys, nkeys))
                continue;
            if (k++)
                buf_puts(b, ", ");
            pg_quote_ident(b, cols[i]);
            buf_puts(b, " = s.");
            pg_quote_ident(b, cols[i]);
        }
    }
    buf_puts(b, "\nWHEN NOT MATCHED THEN INSERT (");
    col_list(b, NULL, cols, ncols, NULL, 0);
    buf_puts(b, ") VALUES (");
    col_list(b, "s", cols, ncols, NULL, 0);
    buf_putc(b, ')');
}

/* skips blanks and -- / block comments */
static const char *skip_blank(const char *s)
{
    for (;;) {
        while (isspace((unsigned char)*s))
            s++;
        if (s[0] == '-' && s[1] == '-') {
            s += strcspn(s, "\n");
        } else if (s[0] == '/' && s[1] == '*') {
            const char *e = strstr(s + 2, "*/");
            s = e ? e + 2 : s + strlen(s);
        } else {
            return s;
        }
    }
}

void mat_inject_ctes(buf *b, const char *sql, const char *ctes)
{
    const char *s = skip_blank(sql);

    if (strncasecmp(s, "with", 4) == 0 && (isspace((unsigned char)s[4]) || s[4] == '\0')) {
        const char *after = skip_blank(s + 4);
        bool recursive =
            strncasecmp(after, "recursive", 9) == 0 && isspace((unsigned char)after[9]);
        const char *at = recursive ? after + 9 : s + 4;
        buf_append(b, sql, (size_t)(at - sql));
        buf_printf(b, " %s, ", ctes);
        buf_puts(b, at);
    } else {
        buf_printf(b, "with %s\n", ctes);
        buf_puts(b, sql);
    }
}

void mat_table_refresh(buf *b, const char *schema, const char *name, const char *sql,
                       const char *const *cols, size_t ncols)
{
    buf_puts(b, "DELETE FROM ");
    mat_relation(b, schema, name);
    buf_puts(b, ";\nINSERT INTO ");
    mat_relation(b, schema, name);
    buf_puts(b, " (");
    for (size_t i = 0; i < ncols; i++) {
        if (i)
            buf_puts(b, ", ");
        mat_quote_ident(b, cols[i]);
    }
    buf_puts(b, ") SELECT ");
    for (size_t i = 0; i < ncols; i++) {
        if (i)
            buf_puts(b, ", ");
        mat_quote_ident(b, cols[i]);
    }
    buf_puts(b, " FROM ");
    mat_subquery(b, sql);
    buf_puts(b, " AS model_subq");
}

void mat_temp_name(char *out, size_t n, const char *name, const char *suffix)
{
    size_t l = strlen(name), sl = strlen(suffix), keep;
    unsigned h = 2166136261u;

    if (l + sl <= MAT_NAME_MAX) {
        snprintf(out, n, "%s%s", name, suffix);
        return;
    }
    for (size_t i = 0; i < l; i++) {
        h ^= (unsigned char)name[i];
        h *= 16777619u;
    }
    keep = MAT_NAME_MAX - sl - 9;
    while (keep > 0 && ((unsigned char)name[keep] & 0xC0) == 0x80)
        keep--;
    snprintf(out, n, "%.*s_%08x%s", (int)keep, name, h, suffix);
}
