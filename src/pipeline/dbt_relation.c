/*
 * dbt_relation.c - dbt's relations and columns as template objects, and
 * the adapter methods that read or change relations in PostgreSQL.
 *
 * A relation is an object (tpl_object_new) whose text is its quoted
 * name, with dbt's attributes (database, schema, identifier, name, type,
 * is_table, is_view, is_cte, include_policy, metadata) and methods
 * (include, render, incorporate, replace_path, without_identifier,
 * quote).  The methods are natives that read the relation they are called
 * on (tpl_call_self), so a relation holds no reference to itself.  By
 * default the text leaves the database out ("schema"."name"): PostgreSQL
 * cannot reach another database, and the runner's own SQL names relations
 * so; include(database=True) puts it in.
 *
 * A column (adapter.get_columns_in_relation, api.Column.create) is an
 * object with dbt-postgres's Column attributes (name, column, dtype,
 * data_type, char_size, numeric_precision, numeric_scale, quoted) and
 * methods (is_string, is_number, is_numeric, is_integer, is_float,
 * string_size, can_expand_to, literal).
 *
 * Adapter methods that read the catalog run their query through the
 * worker's SQL callback when executing; while parsing (execute=False)
 * they return what dbt's parse gives: no relation, no columns, nothing
 * done.  Names are always passed as quoted literals (mat_quote_literal).
 */
#include "pipeline/dbt_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xalloc.h"
#include "pipeline/materialize.h"

typedef struct {
    bool database, schema, identifier;
} incl_policy;

static const char *attr_str(const tpl_value *o, const char *name)
{
    return o ? tpl_as_str(tpl_dict_get(o, name)) : NULL;
}

static bool attr_bool(const tpl_value *o, const char *name, bool def)
{
    const tpl_value *v = o ? tpl_dict_get(o, name) : NULL;
    return v && tpl_typeof(v) == TPL_BOOL ? tpl_as_bool(v) : def;
}

static tpl_value *str_or_none(const char *s)
{
    return s ? tpl_str(s) : tpl_none();
}

static cs_result m_include(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                           cs_error *err);
static cs_result m_render(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                          cs_error *err);
static cs_result m_incorporate(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                               cs_error *err);
static cs_result m_replace_path(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                cs_error *err);
static cs_result m_without_identifier(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                      cs_error *err);
static cs_result m_quote(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                         cs_error *err);

/*
 * A new relation (the caller owns it).  Any of the names may be NULL
 * (none); type is "table", "view", "materialized_view", "cte" or NULL.
 * The text is the included, non-empty parts, each quoted, joined by dots.
 */
static tpl_value *relation_make(const char *db, const char *schema, const char *ident,
                                const char *type, incl_policy in)
{
    const char *parts[3] = {in.database ? db : NULL, in.schema ? schema : NULL,
                            in.identifier ? ident : NULL};
    tpl_value *r, *pol, *meta;
    bool first = true;
    buf b;

    buf_init(&b, 0);
    for (size_t i = 0; i < 3; i++) {
        if (!parts[i] || !*parts[i])
            continue;
        if (!first)
            buf_putc(&b, '.');
        mat_quote_ident(&b, parts[i]);
        first = false;
    }
    r = tpl_object_new(b.data ? b.data : "");
    buf_free(&b);
    tpl_dict_set(r, "database", str_or_none(db));
    tpl_dict_set(r, "schema", str_or_none(schema));
    tpl_dict_set(r, "identifier", str_or_none(ident));
    tpl_dict_set(r, "name", str_or_none(ident));
    tpl_dict_set(r, "type", str_or_none(type));
    tpl_dict_set(r, "is_table", tpl_bool(type && strcmp(type, "table") == 0));
    tpl_dict_set(r, "is_view", tpl_bool(type && strcmp(type, "view") == 0));
    tpl_dict_set(r, "is_materialized_view",
                 tpl_bool(type && strcmp(type, "materialized_view") == 0));
    tpl_dict_set(r, "is_cte", tpl_bool(type && strcmp(type, "cte") == 0));
    pol = tpl_dict_new();
    tpl_dict_set(pol, "database", tpl_bool(in.database));
    tpl_dict_set(pol, "schema", tpl_bool(in.schema));
    tpl_dict_set(pol, "identifier", tpl_bool(in.identifier));
    tpl_dict_set(r, "include_policy", pol);
    /* what dbt_utils' _is_relation looks at */
    meta = tpl_dict_new();
    tpl_dict_set(meta, "type", tpl_str("PostgresRelation"));
    tpl_dict_set(r, "metadata", meta);
    tpl_dict_set(r, "include", tpl_func_new("include", m_include, NULL));
    tpl_dict_set(r, "render", tpl_func_new("render", m_render, NULL));
    tpl_dict_set(r, "incorporate", tpl_func_new("incorporate", m_incorporate, NULL));
    tpl_dict_set(r, "replace_path", tpl_func_new("replace_path", m_replace_path, NULL));
    tpl_dict_set(r, "without_identifier",
                 tpl_func_new("without_identifier", m_without_identifier, NULL));
    tpl_dict_set(r, "quote", tpl_func_new("quote", m_quote, NULL));
    return r;
}

tpl_value *dbt_relation_typed(const char *database, const char *schema, const char *name,
                              const char *type)
{
    return relation_make(database, schema, name, type, (incl_policy){false, true, true});
}

tpl_value *dbt_relation(const char *database, const char *schema, const char *name)
{
    return dbt_relation_typed(database, schema, name, NULL);
}

bool dbt_is_relation(const tpl_value *v)
{
    const char *t = attr_str(tpl_dict_get((tpl_value *)v, "metadata"), "type");
    return tpl_typeof(v) == TPL_DICT && t && strcmp(t, "PostgresRelation") == 0;
}

/* the relation a method was called on, or an error naming the method */
static cs_result self_relation(tpl_call *call, const char *what, tpl_value **self, cs_error *err)
{
    *self = tpl_call_self(call);
    if (!*self || !dbt_is_relation(*self))
        return cs_fail(err, CS_INVALID, "%s() is a method of a relation", what);
    return CS_OK;
}

static incl_policy policy_of(const tpl_value *r)
{
    const tpl_value *p = tpl_dict_get((tpl_value *)r, "include_policy");
    return (incl_policy){attr_bool(p, "database", false), attr_bool(p, "schema", true),
                         attr_bool(p, "identifier", true)};
}

/* a copy of r with the names, type and policy given (NULL: r's) */
static tpl_value *relation_with(const tpl_value *r, const tpl_value *db, const tpl_value *schema,
                                const tpl_value *ident, const tpl_value *type,
                                const incl_policy *in)
{
    tpl_value *rr = (tpl_value *)r;
#define PICK(v, key) ((v) ? tpl_as_str(v) : attr_str(rr, key))
    return relation_make(PICK(db, "database"), PICK(schema, "schema"), PICK(ident, "identifier"),
                         PICK(type, "type"), in ? *in : policy_of(r));
#undef PICK
}

/* relation.include(database=None, schema=None, identifier=None) */
static cs_result m_include(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                           cs_error *err)
{
    tpl_value *self, *v;
    incl_policy in;
    const char *keys[] = {"database", "schema", "identifier"};
    bool *fields[3];
    cs_result rc;

    if ((rc = self_relation(call, "include", &self, err)) != CS_OK)
        return rc;
    in = policy_of(self);
    fields[0] = &in.database;
    fields[1] = &in.schema;
    fields[2] = &in.identifier;
    for (size_t i = 0; i < 3; i++)
        if ((v = tpl_arg(a, i, keys[i])) && tpl_typeof(v) != TPL_NONE)
            *fields[i] = tpl_truthy(v);
    *out = relation_with(self, NULL, NULL, NULL, NULL, &in);
    return CS_OK;
}

static cs_result m_without_identifier(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                      cs_error *err)
{
    tpl_value *self;
    incl_policy in;
    cs_result rc;

    if ((rc = self_relation(call, "without_identifier", &self, err)) != CS_OK)
        return rc;
    in = policy_of(self);
    in.identifier = false;
    *out = relation_with(self, NULL, NULL, NULL, NULL, &in);
    return CS_OK;
}

static cs_result m_render(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                          cs_error *err)
{
    tpl_value *self;
    cs_result rc;
    buf b;

    if ((rc = self_relation(call, "render", &self, err)) != CS_OK)
        return rc;
    buf_init(&b, 0);
    tpl_to_text(self, &b);
    *out = tpl_str(b.data ? b.data : "");
    buf_free(&b);
    return CS_OK;
}

/* relation.incorporate(path={database, schema, identifier}, type=None) */
static cs_result m_incorporate(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                               cs_error *err)
{
    tpl_value *self, *path = tpl_arg(a, 0, "path"), *type = tpl_arg(a, 1, "type");
    cs_result rc;

    if ((rc = self_relation(call, "incorporate", &self, err)) != CS_OK)
        return rc;
    if (path && tpl_typeof(path) != TPL_DICT)
        path = NULL;
    if (type && tpl_typeof(type) != TPL_STR)
        type = NULL;
    *out = relation_with(self, path ? tpl_dict_get(path, "database") : NULL,
                         path ? tpl_dict_get(path, "schema") : NULL,
                         path ? tpl_dict_get(path, "identifier") : NULL, type, NULL);
    return CS_OK;
}

/* relation.replace_path(database=None, schema=None, identifier=None) */
static cs_result m_replace_path(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                cs_error *err)
{
    tpl_value *self, *v[3];
    const char *keys[] = {"database", "schema", "identifier"};
    cs_result rc;

    if ((rc = self_relation(call, "replace_path", &self, err)) != CS_OK)
        return rc;
    for (size_t i = 0; i < 3; i++) {
        v[i] = tpl_arg(a, i, keys[i]);
        if (v[i] && tpl_typeof(v[i]) != TPL_STR)
            v[i] = NULL;
    }
    *out = relation_with(self, v[0], v[1], v[2], NULL, NULL);
    return CS_OK;
}

/* relation.quote(...): PostgreSQL relations are always quoted here */
static cs_result m_quote(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                         cs_error *err)
{
    tpl_value *self;
    cs_result rc;

    if ((rc = self_relation(call, "quote", &self, err)) != CS_OK)
        return rc;
    *out = tpl_ref(self);
    return CS_OK;
}

/* ---- api.Relation ---- */

/* api.Relation.create(database=None, schema=None, identifier=None, type=None) */
static cs_result n_relation_create(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                   cs_error *err)
{
    const char *keys[] = {"database", "schema", "identifier", "type"};
    const char *v[4];

    for (size_t i = 0; i < 4; i++)
        v[i] = tpl_as_str(tpl_arg(a, i, keys[i]));
    if (!v[2])
        v[2] = tpl_as_str(tpl_arg(a, 99, "name"));
    *out = relation_make(v[0], v[1], v[2], v[3], (incl_policy){false, true, true});
    return CS_OK;
}

static cs_result n_add_ephemeral_prefix(void *ud, tpl_call *call, const tpl_args *a,
                                        tpl_value **out, cs_error *err)
{
    const char *name = tpl_as_str(tpl_arg(a, 0, "name"));
    buf b;

    buf_init(&b, 0);
    buf_printf(&b, "__dbt__cte__%s", name ? name : "");
    *out = tpl_str(b.data);
    buf_free(&b);
    return CS_OK;
}

/* ---- columns ---- */

static bool in_list(const char *s, const char *const *list)
{
    for (; s && *list; list++)
        if (strcasecmp(s, *list) == 0)
            return true;
    return false;
}

static const char *const STRING_TYPES[] = {"text", "character varying", "character", "varchar",
                                           NULL};
static const char *const INT_TYPES[] = {"smallint",  "integer", "bigint", "smallserial", "serial",
                                        "bigserial", "int2",    "int4",   "int8",        "serial2",
                                        "serial4",   "serial8", NULL};
static const char *const FLOAT_TYPES[] = {"real",   "float4", "float", "double", "double precision",
                                          "float8", NULL};
static const char *const NUMERIC_TYPES[] = {"numeric", "decimal", NULL};

static cs_result m_col_is(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                          cs_error *err);
static cs_result m_col_string_size(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                   cs_error *err);
static cs_result m_col_can_expand_to(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                     cs_error *err);
static cs_result m_col_literal(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                               cs_error *err);

/* dbt-postgres's Column.data_type: text and an unsized varchar stay as
 * they are, other strings become character varying(N), numerics with a
 * precision and scale numeric(p,s) */
static void column_data_type(buf *b, const char *dtype, long long size, long long prec,
                             long long scale)
{
    bool unsized_varchar = strcasecmp(dtype, "character varying") == 0 && size < 0;
    if (in_list(dtype, STRING_TYPES) && strcasecmp(dtype, "text") != 0 && !unsized_varchar)
        buf_printf(b, "character varying(%lld)", size < 0 ? 256 : size);
    else if (in_list(dtype, NUMERIC_TYPES) && prec >= 0 && scale >= 0)
        buf_printf(b, "%s(%lld,%lld)", dtype, prec, scale);
    else
        buf_puts(b, dtype);
}

static tpl_value *int_or_none(long long v)
{
    return v < 0 ? tpl_none() : tpl_int(v);
}

/* a new column object; size, prec, scale < 0: none */
tpl_value *dbt_column_new(const char *name, const char *dtype, long long size, long long prec,
                          long long scale)
{
    static const char *const kinds[] = {"is_string", "is_number", "is_numeric", "is_integer",
                                        "is_float"};
    tpl_value *c;
    buf b, dt;

    buf_init(&dt, 0);
    column_data_type(&dt, dtype, size, prec, scale);
    buf_init(&b, 0);
    buf_printf(&b, "<Column %s (%s)>", name, dt.data ? dt.data : "");
    c = tpl_object_new(b.data);
    buf_free(&b);
    tpl_dict_set(c, "name", tpl_str(name));
    tpl_dict_set(c, "column", tpl_str(name));
    tpl_dict_set(c, "dtype", tpl_str(dtype));
    tpl_dict_set(c, "data_type", tpl_str(dt.data ? dt.data : ""));
    tpl_dict_set(c, "char_size", int_or_none(size));
    tpl_dict_set(c, "numeric_precision", int_or_none(prec));
    tpl_dict_set(c, "numeric_scale", int_or_none(scale));
    buf_init(&b, 0);
    mat_quote_ident(&b, name);
    tpl_dict_set(c, "quoted", tpl_str(b.data));
    buf_free(&b);
    buf_free(&dt);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        tpl_dict_set(c, kinds[i], tpl_func_new(kinds[i], m_col_is, (void *)kinds[i]));
    tpl_dict_set(c, "string_size", tpl_func_new("string_size", m_col_string_size, NULL));
    tpl_dict_set(c, "can_expand_to", tpl_func_new("can_expand_to", m_col_can_expand_to, NULL));
    tpl_dict_set(c, "literal", tpl_func_new("literal", m_col_literal, NULL));
    return c;
}

static const char *self_dtype(tpl_call *call, tpl_value **self)
{
    *self = tpl_call_self(call);
    return *self ? attr_str(*self, "dtype") : NULL;
}

static bool dtype_is(const char *dtype, const char *kind)
{
    if (strcmp(kind, "is_string") == 0)
        return in_list(dtype, STRING_TYPES);
    if (strcmp(kind, "is_integer") == 0)
        return in_list(dtype, INT_TYPES);
    if (strcmp(kind, "is_float") == 0)
        return in_list(dtype, FLOAT_TYPES);
    if (strcmp(kind, "is_numeric") == 0)
        return in_list(dtype, NUMERIC_TYPES);
    return in_list(dtype, INT_TYPES) || in_list(dtype, FLOAT_TYPES) ||
           in_list(dtype, NUMERIC_TYPES);
}

static cs_result m_col_is(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                          cs_error *err)
{
    tpl_value *self;
    const char *dtype = self_dtype(call, &self);

    if (!dtype)
        return cs_fail(err, CS_INVALID, "%s() is a method of a column", (const char *)ud);
    *out = tpl_bool(dtype_is(dtype, ud));
    return CS_OK;
}

static long long string_size(const tpl_value *col)
{
    const tpl_value *n = tpl_dict_get((tpl_value *)col, "char_size");
    const char *dtype = attr_str((tpl_value *)col, "dtype");
    if (strcasecmp(dtype, "text") == 0 || !n || tpl_typeof(n) != TPL_INT)
        return 256;
    return tpl_as_int(n);
}

static cs_result m_col_string_size(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                   cs_error *err)
{
    tpl_value *self;
    const char *dtype = self_dtype(call, &self);

    if (!dtype || !in_list(dtype, STRING_TYPES))
        return cs_fail(err, CS_INVALID, "string_size() called on a column that is not a string");
    *out = tpl_int(string_size(self));
    return CS_OK;
}

/* dbt: a string column can grow into a longer string column */
static cs_result m_col_can_expand_to(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                     cs_error *err)
{
    tpl_value *self, *other = tpl_arg(a, 0, "other_column");
    const char *dtype = self_dtype(call, &self), *odt = attr_str(other, "dtype");

    if (!dtype || !odt)
        return cs_fail(err, CS_INVALID, "can_expand_to() takes another column");
    *out = tpl_bool(in_list(dtype, STRING_TYPES) && in_list(odt, STRING_TYPES) &&
                    string_size(self) < string_size(other));
    return CS_OK;
}

/* column.literal(value): "value::data_type" */
static cs_result m_col_literal(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                               cs_error *err)
{
    tpl_value *self = tpl_call_self(call);
    const char *dt = attr_str(self, "data_type");
    buf b;

    if (!dt)
        return cs_fail(err, CS_INVALID, "literal() is a method of a column");
    buf_init(&b, 0);
    tpl_to_text(tpl_arg(a, 0, "value"), &b);
    buf_printf(&b, "::%s", dt);
    *out = tpl_str(b.data);
    buf_free(&b);
    return CS_OK;
}

/* api.Column.translate_type: dbt's labels STRING, TIMESTAMP, FLOAT,
 * INTEGER, BOOLEAN; any other type as given */
static const char *translate_type(const char *t)
{
    static const char *const labels[][2] = {{"string", "TEXT"},
                                            {"timestamp", "TIMESTAMP"},
                                            {"float", "FLOAT"},
                                            {"integer", "INT"},
                                            {"boolean", "BOOLEAN"}};
    for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
        if (strcasecmp(t, labels[i][0]) == 0)
            return labels[i][1];
    return t;
}

static cs_result n_translate_type(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                  cs_error *err)
{
    const char *t = tpl_as_str(tpl_arg(a, 0, "dtype"));
    if (!t)
        return cs_fail(err, CS_INVALID, "api.Column.translate_type() takes a type name");
    *out = tpl_str(translate_type(t));
    return CS_OK;
}

static cs_result n_numeric_type(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                cs_error *err)
{
    const char *t = tpl_as_str(tpl_arg(a, 0, "dtype"));
    tpl_value *p = tpl_arg(a, 1, "precision"), *s = tpl_arg(a, 2, "scale");
    buf b;

    if (!t)
        return cs_fail(err, CS_INVALID, "api.Column.numeric_type() takes a type name");
    buf_init(&b, 0);
    buf_puts(&b, t);
    if (p && s && tpl_typeof(p) != TPL_NONE && tpl_typeof(s) != TPL_NONE) {
        buf_putc(&b, '(');
        tpl_to_text(p, &b);
        buf_putc(&b, ',');
        tpl_to_text(s, &b);
        buf_putc(&b, ')');
    }
    *out = tpl_str(b.data);
    buf_free(&b);
    return CS_OK;
}

static cs_result n_string_type(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                               cs_error *err)
{
    char s[64];
    snprintf(s, sizeof(s), "character varying(%lld)", tpl_as_int(tpl_arg(a, 0, "size")));
    *out = tpl_str(s);
    return CS_OK;
}

/* api.Column.create(name, label_or_dtype) */
static cs_result n_column_create(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                 cs_error *err)
{
    const char *name = tpl_as_str(tpl_arg(a, 0, "name"));
    const char *t = tpl_as_str(tpl_arg(a, 1, "label_or_dtype"));

    if (!name || !t)
        return cs_fail(err, CS_INVALID, "api.Column.create() takes a name and a type");
    *out = dbt_column_new(name, translate_type(t), -1, -1, -1);
    return CS_OK;
}

tpl_value *dbt_api_new(void)
{
    tpl_value *api = tpl_object_new("api"), *rel = tpl_object_new("Relation"),
              *col = tpl_object_new("Column");

    tpl_dict_set(rel, "create", tpl_func_new("create", n_relation_create, NULL));
    tpl_dict_set(rel, "add_ephemeral_prefix",
                 tpl_func_new("add_ephemeral_prefix", n_add_ephemeral_prefix, NULL));
    tpl_dict_set(col, "translate_type", tpl_func_new("translate_type", n_translate_type, NULL));
    tpl_dict_set(col, "numeric_type", tpl_func_new("numeric_type", n_numeric_type, NULL));
    tpl_dict_set(col, "string_type", tpl_func_new("string_type", n_string_type, NULL));
    tpl_dict_set(col, "create", tpl_func_new("create", n_column_create, NULL));
    tpl_dict_set(api, "Relation", rel);
    tpl_dict_set(api, "Column", col);
    return api;
}

/* ---- adapter methods that use the database ---- */

static bool live(const dbt_worker *w)
{
    return !w->parsing && w->o && w->o->execute && w->o->sql;
}

/*
 * While parsing, the relation methods take whatever they are given and do
 * nothing, as dbt's parse does: a package's get_relation() is none then,
 * and what it passes on (drop_relation(none)) must not fail the parse.
 */
enum { GIVE_NONE, GIVE_LIST, GIVE_TEXT };

static bool parse_skip(const dbt_worker *w, int give, tpl_value **out)
{
    if (live(w))
        return false;
    *out = give == GIVE_NONE ? tpl_none() : give == GIVE_LIST ? tpl_list_new() : tpl_str("");
    return true;
}

/* the relation argument i (or keyword name), or an error */
static cs_result relation_arg(const tpl_args *a, size_t i, const char *name, const char *what,
                              tpl_value **out, cs_error *err)
{
    *out = tpl_arg(a, i, name);
    if (!*out || !dbt_is_relation(*out))
        return cs_fail(err, CS_INVALID,
                       "adapter.%s() takes a relation (api.Relation.create, "
                       "ref, source or this)",
                       what);
    return CS_OK;
}

static const char *kind_type(const char *relkind)
{
    switch (relkind ? relkind[0] : 0) {
    case 'v':
        return "view";
    case 'm':
        return "materialized_view";
    default:
        return "table";
    }
}

/*
 * The relations of schema (with identifier, that one only) as a new list
 * into *out: pg_class's tables (plain, partitioned, foreign), views and
 * materialized views, each with its type.
 */
static cs_result list_relations(dbt_worker *w, const char *db, const char *schema,
                                const char *identifier, tpl_value **out, cs_error *err)
{
    buf q;
    pv *res = NULL;
    const pv *rows;
    cs_result rc;

    *out = tpl_list_new();
    if (!live(w) || !schema)
        return CS_OK;
    buf_init(&q, 0);
    buf_puts(&q, "select c.relname::text, c.relkind::text from pg_catalog.pg_class c join "
                 "pg_catalog.pg_namespace n on n.oid = c.relnamespace where n.nspname = ");
    mat_quote_literal(&q, schema);
    if (identifier) {
        buf_puts(&q, " and c.relname = ");
        mat_quote_literal(&q, identifier);
    }
    buf_puts(&q, " and c.relkind in ('r', 'p', 'f', 'v', 'm') order by c.relname");
    rc = dbt_run_sql(w, q.data, &res, err);
    buf_free(&q);
    rows = pv_get(res, "rows");
    for (size_t i = 0; rc == CS_OK && rows && i < rows->n; i++) {
        const pv *row = rows->items[i];
        tpl_list_push(*out, dbt_relation_typed(db, schema, pv_s(row->items[0]),
                                               kind_type(pv_s(row->items[1]))));
    }
    pv_free(res);
    return rc;
}

/* adapter.get_relation(database, schema, identifier): the relation with
 * its type, or none when it does not exist (always none while parsing) */
static cs_result n_get_relation(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                cs_error *err)
{
    dbt_worker *w = ud;
    const char *db = tpl_as_str(tpl_arg(a, 0, "database"));
    const char *schema = tpl_as_str(tpl_arg(a, 1, "schema"));
    const char *ident = tpl_as_str(tpl_arg(a, 2, "identifier"));
    tpl_value *l;
    cs_result rc;

    if (!schema || !ident)
        return cs_fail(err, CS_INVALID,
                       "adapter.get_relation() takes database, schema and identifier");
    if ((rc = list_relations(w, db, schema, ident, &l, err)) != CS_OK) {
        tpl_unref(l);
        return rc;
    }
    *out = tpl_list_len(l) ? tpl_ref(tpl_list_get(l, 0)) : tpl_none();
    tpl_unref(l);
    return CS_OK;
}

/* adapter.load_relation(relation): get_relation with relation's names */
static cs_result n_load_relation(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                 cs_error *err)
{
    tpl_value *r, *l;
    cs_result rc;

    if (parse_skip(ud, GIVE_NONE, out))
        return CS_OK;
    if ((rc = relation_arg(a, 0, "relation", "load_relation", &r, err)) != CS_OK)
        return rc;
    if (tpl_truthy(tpl_dict_get(r, "is_cte"))) {
        *out = tpl_none();
        return CS_OK;
    }
    if ((rc = list_relations(ud, attr_str(r, "database"), attr_str(r, "schema"),
                             attr_str(r, "identifier"), &l, err)) != CS_OK) {
        tpl_unref(l);
        return rc;
    }
    *out = tpl_list_len(l) ? tpl_ref(tpl_list_get(l, 0)) : tpl_none();
    tpl_unref(l);
    return CS_OK;
}

/* adapter.list_relations(database, schema) */
static cs_result n_list_relations(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                  cs_error *err)
{
    const char *schema = tpl_as_str(tpl_arg(a, 1, "schema"));
    if (!schema)
        return cs_fail(err, CS_INVALID, "adapter.list_relations() takes database and schema");
    return list_relations(ud, tpl_as_str(tpl_arg(a, 0, "database")), schema, NULL, out, err);
}

/* adapter.list_relations_without_caching(schema_relation) */
static cs_result n_list_relations_nc(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                     cs_error *err)
{
    tpl_value *r;
    cs_result rc;

    if (parse_skip(ud, GIVE_LIST, out))
        return CS_OK;
    if ((rc = relation_arg(a, 0, "schema_relation", "list_relations_without_caching", &r, err)) !=
        CS_OK)
        return rc;
    return list_relations(ud, attr_str(r, "database"), attr_str(r, "schema"), NULL, out, err);
}

/* the columns of schema.identifier in order, as a new list of column objects */
static cs_result columns_of(dbt_worker *w, const char *schema, const char *ident, tpl_value **out,
                            cs_error *err)
{
    buf q;
    pv *res = NULL;
    const pv *rows;
    cs_result rc;

    *out = tpl_list_new();
    if (!live(w) || !schema || !ident)
        return CS_OK;
    buf_init(&q, 0);
    buf_puts(&q, "select column_name::text, data_type::text, character_maximum_length::int, "
                 "numeric_precision::int, numeric_scale::int from information_schema.columns "
                 "where table_schema = ");
    mat_quote_literal(&q, schema);
    buf_puts(&q, " and table_name = ");
    mat_quote_literal(&q, ident);
    buf_puts(&q, " order by ordinal_position");
    rc = dbt_run_sql(w, q.data, &res, err);
    buf_free(&q);
    rows = pv_get(res, "rows");
    for (size_t i = 0; rc == CS_OK && rows && i < rows->n; i++) {
        pv *const *c = rows->items[i]->items;
        long long n[3];
        for (size_t k = 0; k < 3; k++)
            n[k] = c[2 + k]->type == PV_INT ? c[2 + k]->i : -1;
        tpl_list_push(*out, dbt_column_new(pv_s(c[0]), pv_s(c[1]), n[0], n[1], n[2]));
    }
    pv_free(res);
    return rc;
}

/* adapter.get_columns_in_relation(relation): [] while parsing, for a
 * relation that does not exist, and for an ephemeral model */
static cs_result n_get_columns(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                               cs_error *err)
{
    tpl_value *r;
    cs_result rc;

    if (parse_skip(ud, GIVE_LIST, out))
        return CS_OK;
    if ((rc = relation_arg(a, 0, "relation", "get_columns_in_relation", &r, err)) != CS_OK)
        return rc;
    if (tpl_truthy(tpl_dict_get(r, "is_cte"))) {
        *out = tpl_list_new();
        return CS_OK;
    }
    rc = columns_of(ud, attr_str(r, "schema"), attr_str(r, "identifier"), out, err);
    if (rc != CS_OK) {
        tpl_unref(*out);
        *out = NULL;
    }
    return rc;
}

/* adapter.get_missing_columns(from_relation, to_relation): the columns of
 * the first that the second lacks (names compared without case) */
static cs_result n_get_missing_columns(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                       cs_error *err)
{
    tpl_value *from, *to, *fc = NULL, *tc = NULL;
    cs_result rc;

    if (parse_skip(ud, GIVE_LIST, out))
        return CS_OK;
    if ((rc = relation_arg(a, 0, "from_relation", "get_missing_columns", &from, err)) != CS_OK ||
        (rc = relation_arg(a, 1, "to_relation", "get_missing_columns", &to, err)) != CS_OK)
        return rc;
    if ((rc = columns_of(ud, attr_str(from, "schema"), attr_str(from, "identifier"), &fc, err)) ==
            CS_OK &&
        (rc = columns_of(ud, attr_str(to, "schema"), attr_str(to, "identifier"), &tc, err)) ==
            CS_OK) {
        *out = tpl_list_new();
        for (size_t i = 0; i < tpl_list_len(fc); i++) {
            const char *n = attr_str(tpl_list_get(fc, i), "name");
            bool found = false;
            for (size_t k = 0; k < tpl_list_len(tc) && !found; k++)
                found = strcasecmp(n, attr_str(tpl_list_get(tc, k), "name")) == 0;
            if (!found)
                tpl_list_push(*out, tpl_ref(tpl_list_get(fc, i)));
        }
    }
    tpl_unref(fc);
    tpl_unref(tc);
    return rc;
}

/* runs one statement when executing; nothing while parsing */
static cs_result exec_stmt(dbt_worker *w, buf *q, cs_error *err)
{
    pv *res = NULL;
    cs_result rc = live(w) ? dbt_run_sql(w, q->data, &res, err) : CS_OK;
    pv_free(res);
    buf_free(q);
    return rc;
}

/* a relation's type, from the catalog when the relation does not say */
static cs_result type_of(dbt_worker *w, tpl_value *r, const char **type, cs_error *err)
{
    tpl_value *l;
    cs_result rc;

    *type = attr_str(r, "type");
    if (*type)
        return CS_OK;
    rc = list_relations(w, NULL, attr_str(r, "schema"), attr_str(r, "identifier"), &l, err);
    /* kind_type's strings are static: they outlive the list */
    if (rc == CS_OK && tpl_list_len(l)) {
        const char *t = attr_str(tpl_list_get(l, 0), "type");
        *type = kind_type(strcmp(t, "view") == 0 ? "v" : strcmp(t, "table") == 0 ? "r" : "m");
    }
    tpl_unref(l);
    return rc;
}

static void sql_relation(buf *q, tpl_value *r)
{
    mat_relation(q, attr_str(r, "schema"), attr_str(r, "identifier"));
}

static void drop_keyword(buf *q, const char *type)
{
    buf_puts(q, strcmp(type, "view") == 0                ? "view"
                : strcmp(type, "materialized_view") == 0 ? "materialized view"
                                                         : "table");
}

/* writes one DDL statement on the relation arguments rel into q; an
 * empty q is nothing to run */
typedef cs_result (*ddl_fn)(dbt_worker *w, tpl_value *const *rel, buf *q, cs_error *err);

/*
 * The one shape of the relation-DDL methods: nothing while parsing
 * (parse_skip), then the relation arguments named in args (at most two,
 * NULL-terminated: positional in that order, or by keyword) into rel, ""
 * as the call's value, and the statement ddl writes, run in the model's
 * transaction.  what names the method in errors.
 */
static cs_result ddl_method(dbt_worker *w, const tpl_args *a, const char *what,
                            const char *const *args, ddl_fn ddl, tpl_value **out, cs_error *err)
{
    tpl_value *rel[2] = {NULL, NULL};
    cs_result rc;
    buf q;

    if (parse_skip(w, GIVE_TEXT, out))
        return CS_OK;
    for (size_t i = 0; i < 2 && args[i]; i++)
        if ((rc = relation_arg(a, i, args[i], what, &rel[i], err)) != CS_OK)
            return rc;
    *out = tpl_str("");
    buf_init(&q, 0);
    if ((rc = ddl(w, rel, &q, err)) != CS_OK || q.len == 0) {
        buf_free(&q);
        return rc;
    }
    return exec_stmt(w, &q, err);
}

static const char *const ONE_RELATION[] = {"relation", NULL};

/* drop ... if exists ... cascade; a relation that does not exist, or a
 * CTE, is nothing to do */
static cs_result drop_relation_ddl(dbt_worker *w, tpl_value *const *rel, buf *q, cs_error *err)
{
    const char *type;
    cs_result rc;

    if (tpl_truthy(tpl_dict_get(rel[0], "is_cte")))
        return CS_OK;
    if ((rc = type_of(w, rel[0], &type, err)) != CS_OK || !type)
        return rc;
    buf_puts(q, "drop ");
    drop_keyword(q, type);
    buf_puts(q, " if exists ");
    sql_relation(q, rel[0]);
    buf_puts(q, " cascade");
    return CS_OK;
}

/* adapter.drop_relation(relation) */
static cs_result n_drop_relation(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                 cs_error *err)
{
    return ddl_method(ud, a, "drop_relation", ONE_RELATION, drop_relation_ddl, out, err);
}

static cs_result truncate_relation_ddl(dbt_worker *w, tpl_value *const *rel, buf *q, cs_error *err)
{
    buf_puts(q, "truncate table ");
    sql_relation(q, rel[0]);
    return CS_OK;
}

/* adapter.truncate_relation(relation) */
static cs_result n_truncate_relation(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                     cs_error *err)
{
    return ddl_method(ud, a, "truncate_relation", ONE_RELATION, truncate_relation_ddl, out, err);
}

/* within a schema, as PostgreSQL renames */
static cs_result rename_relation_ddl(dbt_worker *w, tpl_value *const *rel, buf *q, cs_error *err)
{
    const char *type, *to = attr_str(rel[1], "identifier");
    cs_result rc;

    if ((rc = type_of(w, rel[0], &type, err)) != CS_OK)
        return rc;
    buf_puts(q, "alter ");
    drop_keyword(q, type ? type : "table");
    buf_putc(q, ' ');
    sql_relation(q, rel[0]);
    buf_puts(q, " rename to ");
    mat_quote_ident(q, to ? to : "");
    return CS_OK;
}

/* adapter.rename_relation(from_relation, to_relation) */
static cs_result n_rename_relation(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                   cs_error *err)
{
    static const char *const args[] = {"from_relation", "to_relation", NULL};
    return ddl_method(ud, a, "rename_relation", args, rename_relation_ddl, out, err);
}

/* the relation's schema, quoted ("" when it names none) */
static void sql_schema(buf *q, tpl_value *r)
{
    const char *schema = attr_str(r, "schema");
    mat_quote_ident(q, schema ? schema : "");
}

static cs_result create_schema_ddl(dbt_worker *w, tpl_value *const *rel, buf *q, cs_error *err)
{
    buf_puts(q, "create schema if not exists ");
    sql_schema(q, rel[0]);
    return CS_OK;
}

/* adapter.create_schema(relation) */
static cs_result n_create_schema(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                 cs_error *err)
{
    return ddl_method(ud, a, "create_schema", ONE_RELATION, create_schema_ddl, out, err);
}

static cs_result drop_schema_ddl(dbt_worker *w, tpl_value *const *rel, buf *q, cs_error *err)
{
    buf_puts(q, "drop schema if exists ");
    sql_schema(q, rel[0]);
    buf_puts(q, " cascade");
    return CS_OK;
}

/* adapter.drop_schema(relation) */
static cs_result n_drop_schema(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                               cs_error *err)
{
    return ddl_method(ud, a, "drop_schema", ONE_RELATION, drop_schema_ddl, out, err);
}

/* the schema names (all, or the one named) as a new list */
static cs_result schemas(dbt_worker *w, const char *only, tpl_value **out, cs_error *err)
{
    buf q;
    pv *res = NULL;
    const pv *rows;
    cs_result rc;

    *out = tpl_list_new();
    if (!live(w))
        return CS_OK;
    buf_init(&q, 0);
    buf_puts(&q, "select nspname::text from pg_catalog.pg_namespace");
    if (only) {
        buf_puts(&q, " where nspname = ");
        mat_quote_literal(&q, only);
    }
    buf_puts(&q, " order by 1");
    rc = dbt_run_sql(w, q.data, &res, err);
    buf_free(&q);
    rows = pv_get(res, "rows");
    for (size_t i = 0; rc == CS_OK && rows && i < rows->n; i++)
        tpl_list_push(*out, tpl_str(pv_s(rows->items[i]->items[0])));
    pv_free(res);
    return rc;
}

static cs_result n_list_schemas(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                cs_error *err)
{
    return schemas(ud, NULL, out, err);
}

/* adapter.check_schema_exists(database, schema) */
static cs_result n_check_schema_exists(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                       cs_error *err)
{
    const char *schema = tpl_as_str(tpl_arg(a, 1, "schema"));
    tpl_value *l;
    cs_result rc;

    if (!schema)
        return cs_fail(err, CS_INVALID, "adapter.check_schema_exists() takes database and schema");
    rc = schemas(ud, schema, &l, err);
    *out = tpl_bool(rc == CS_OK && tpl_list_len(l) > 0);
    tpl_unref(l);
    return rc;
}

/* adapter.already_exists(schema, name) */
static cs_result n_already_exists(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                                  cs_error *err)
{
    const char *schema = tpl_as_str(tpl_arg(a, 0, "schema"));
    const char *name = tpl_as_str(tpl_arg(a, 1, "name"));
    tpl_value *l;
    cs_result rc;

    if (!schema || !name)
        return cs_fail(err, CS_INVALID, "adapter.already_exists() takes schema and name");
    rc = list_relations(ud, NULL, schema, name, &l, err);
    *out = tpl_bool(rc == CS_OK && tpl_list_len(l) > 0);
    tpl_unref(l);
    return rc;
}

/*
 * adapter.commit(): nothing.  A model's statements run in the model's
 * transaction, which the runner commits once the model (hooks and
 * grants included) succeeded; committing earlier would leave half a
 * model behind on a failure.
 */
static cs_result n_commit(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                          cs_error *err)
{
    *out = tpl_str("");
    return CS_OK;
}

void dbt_adapter_add_methods(tpl_value *adapter, dbt_worker *w)
{
    static const struct {
        const char *name;
        tpl_native_fn fn;
    } methods[] = {
        {"get_relation", n_get_relation},
        {"load_relation", n_load_relation},
        {"list_relations", n_list_relations},
        {"list_relations_without_caching", n_list_relations_nc},
        {"get_columns_in_relation", n_get_columns},
        {"get_missing_columns", n_get_missing_columns},
        {"drop_relation", n_drop_relation},
        {"truncate_relation", n_truncate_relation},
        {"rename_relation", n_rename_relation},
        {"create_schema", n_create_schema},
        {"drop_schema", n_drop_schema},
        {"list_schemas", n_list_schemas},
        {"check_schema_exists", n_check_schema_exists},
        {"already_exists", n_already_exists},
        {"commit", n_commit},
    };
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        tpl_dict_set(adapter, methods[i].name, tpl_func_new(methods[i].name, methods[i].fn, w));
}
