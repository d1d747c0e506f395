/*
 * dbt_test_sql.c - the query of each data test: a singular test's
 * template, a generic test's macro (test_<kind>, from a {% test %} block of
 * a package or of the project) called with its keyword arguments, or the
 * built-in SQL of dbt's four generic tests (not_null, unique,
 * accepted_values, relationships) when no macro defines them.  The query
 * returns the failing rows; the runner wraps it in dbt's count (fail_calc,
 * warn_if, error_if).
 */
#include "pipeline/dbt_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "pipeline/materialize.h"

tpl_value *dbt_test_target(const dbt_worker *w, size_t test)
{
    const dbt_manifest *m = w->m;
    const pl_test *t = &m->p->tests[test];

    if (t->model >= 0)
        return dbt_model_relation(w, (size_t)t->model);
    if (t->seed >= 0)
        return dbt_relation_typed(m->set.database,
                                  m->seeds && m->seeds[t->seed].schema ? m->seeds[t->seed].schema
                                                                       : m->set.schema,
                                  m->p->seeds[t->seed].name, "table");
    if (t->source >= 0)
        return dbt_relation(m->set.database, m->p->sources[t->source].schema,
                            m->p->sources[t->source].identifier);
    return NULL;
}

/* ---- keyword arguments, rendered as dbt's add_rendered_test_kwargs ---- */

/* __cs_capture(v): keeps v, so that a whole-expression argument keeps its type */
static cs_result n_capture(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                           cs_error *err)
{
    tpl_value **slot = ud;
    (void)call;
    (void)err;
    if (*slot)
        tpl_unref(*slot);
    *slot = a->npos ? tpl_ref(a->pos[0]) : tpl_none();
    *out = tpl_str("");
    return CS_OK;
}

/* "ref(...)", "source(...)", "var(...)", "env_var(...)", "doc(...)": a call dbt evaluates */
static bool looks_like_call(const char *s)
{
    static const char *const fns[] = {"env_var", "ref", "var", "source", "doc"};
    size_t n;

    while (isspace((unsigned char)*s))
        s++;
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        n = strlen(fns[i]);
        if (strncmp(s, fns[i], n) != 0)
            continue;
        const char *p = s + n;
        while (isspace((unsigned char)*p))
            p++;
        if (*p != '(')
            continue;
        const char *e = s + strlen(s);
        while (e > p && isspace((unsigned char)e[-1]))
            e--;
        return e > p + 1 && e[-1] == ')';
    }
    return false;
}

/* the text of a native render read as a Python literal: int, float, bool, None, else text */
static tpl_value *literal_value(const char *s)
{
    char *end;
    long long i;
    double f;

    if (!*s)
        return tpl_str(s);
    errno = 0;
    i = strtoll(s, &end, 10);
    if (*end == '\0' && errno == 0 && !isspace((unsigned char)*s))
        return tpl_int(i);
    f = strtod(s, &end);
    if (*end == '\0' && !isspace((unsigned char)*s) && strchr("+-.0123456789", *s))
        return tpl_float(f);
    if (strcmp(s, "True") == 0 || strcmp(s, "False") == 0)
        return tpl_bool(s[0] == 'T');
    if (strcmp(s, "None") == 0)
        return tpl_none();
    return tpl_str(s);
}

/* one string argument: a call evaluated to its value, else rendered and read as a literal */
static cs_result render_arg_string(dbt_worker *w, const char *s, const char *where, tpl_value **out,
                                   cs_error *err)
{
    tpl_value *slot = NULL;
    tpl_template *t;
    buf src, b;
    cs_result rc;
    bool call = looks_like_call(s);

    if (!call && !strstr(s, "{{") && !strstr(s, "{%")) {
        *out = literal_value(s);
        return CS_OK;
    }
    buf_init(&src, 0);
    buf_init(&b, 0);
    if (call)
        buf_printf(&src, "{{ __cs_capture(%s) }}", s);
    else
        buf_puts(&src, s);
    rc = CS_INVALID;
    if (buf_ok(&src) && (t = tpl_compile(where, src.data, err)) != NULL) {
        tpl_env_set(w->env, "__cs_capture", tpl_func_new("__cs_capture", n_capture, &slot));
        rc = tpl_render(t, w->env, NULL, &b, err);
        tpl_env_set(w->env, "__cs_capture", tpl_none());
        tpl_template_free(t);
    }
    if (rc == CS_OK)
        *out = call && slot ? tpl_ref(slot) : literal_value(b.data ? b.data : "");
    if (slot)
        tpl_unref(slot);
    buf_free(&src);
    buf_free(&b);
    return rc;
}

/* an argument's value, lists and maps walked (column_name stays text) */
static cs_result render_arg(dbt_worker *w, const pv *v, const char *where, tpl_value **out,
                            cs_error *err)
{
    cs_result rc = CS_OK;

    if (v->type == PV_STR)
        return render_arg_string(w, v->s, where, out, err);
    if (v->type == PV_LIST) {
        tpl_value *l = tpl_list_new();
        for (size_t i = 0; i < v->n && rc == CS_OK; i++) {
            tpl_value *item = NULL;
            if ((rc = render_arg(w, v->items[i], where, &item, err)) == CS_OK)
                tpl_list_push(l, item);
        }
        if (rc != CS_OK) {
            tpl_unref(l);
            return rc;
        }
        *out = l;
        return CS_OK;
    }
    if (v->type == PV_MAP) {
        tpl_value *d = tpl_dict_new();
        for (size_t i = 0; i < v->n && rc == CS_OK; i++) {
            tpl_value *item = NULL;
            if ((rc = render_arg(w, v->items[i], where, &item, err)) == CS_OK)
                tpl_dict_set(d, v->keys[i], item);
        }
        if (rc != CS_OK) {
            tpl_unref(d);
            return rc;
        }
        *out = d;
        return CS_OK;
    }
    *out = dbt_pv_to_tpl(v);
    return CS_OK;
}

/*
 * The `model` argument: the target's relation, or with a `where` config
 * dbt's get_where_subquery: "(select * from rel where ...) dbt_subquery".
 */
static cs_result model_arg(dbt_worker *w, size_t test, const pv *config, const char *where,
                           tpl_value **out, cs_error *err)
{
    tpl_value *rel = dbt_test_target(w, test), *cond = NULL;
    const pv *wc = pv_get(config, "where");
    buf b;
    cs_result rc;

    if (!rel)
        return cs_fail(err, CS_INVALID, "%s: the test is not attached to a model, seed or source",
                       where);
    if (!wc || wc->type == PV_NULL || (pv_s(wc) && !*wc->s)) {
        *out = rel;
        return CS_OK;
    }
    if ((rc = render_arg(w, wc, where, &cond, err)) != CS_OK) {
        tpl_unref(rel);
        return rc;
    }
    buf_init(&b, 0);
    buf_puts(&b, "(select * from ");
    tpl_to_text(rel, &b);
    buf_puts(&b, " where ");
    tpl_to_text(cond, &b);
    buf_puts(&b, ") dbt_subquery");
    *out = tpl_str(b.data ? b.data : "");
    buf_free(&b);
    tpl_unref(cond);
    tpl_unref(rel);
    return CS_OK;
}

/* the macro of test kind in package ns (NULL: the project's, any package's) */
static tpl_value *find_test_macro(dbt_worker *w, const pl_test *t)
{
    char name[300];
    tpl_value *space;

    snprintf(name, sizeof(name), "test_%s", t->kind);
    if (t->ns && strcmp(t->ns, "dbt") != 0) {
        space = tpl_env_get(w->env, t->ns);
        return space && tpl_typeof(space) == TPL_DICT ? tpl_dict_get(space, name) : NULL;
    }
    space = tpl_env_get(w->env, name);
    return space && tpl_typeof(space) == TPL_FUNC ? space : NULL;
}

static bool is_builtin(const pl_test *t)
{
    return (!t->ns || strcmp(t->ns, "dbt") == 0) &&
           (strcmp(t->kind, "not_null") == 0 || strcmp(t->kind, "unique") == 0 ||
            strcmp(t->kind, "accepted_values") == 0 || strcmp(t->kind, "relationships") == 0);
}

/* should_store_failures(): tests never store their failures here */
static cs_result n_no_store(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                            cs_error *err)
{
    (void)ud;
    (void)call;
    (void)a;
    (void)err;
    *out = tpl_bool(false);
    return CS_OK;
}

/* the test's config: yml, then (after the parse) what its config() calls set */
static const pv *test_config(const dbt_worker *w, size_t test)
{
    const pv *c = w->m->tests[test].config;
    return c ? c : w->m->p->tests[test].config;
}

/* builds the keyword arguments of the test's macro into names/vals (n of them) */
static cs_result test_kwargs(dbt_worker *w, size_t test, const char *where, const char **names,
                             tpl_value **vals, size_t max, size_t *n, cs_error *err)
{
    const pl_test *t = &w->m->p->tests[test];
    cs_result rc;

    *n = 0;
    if ((rc = model_arg(w, test, test_config(w, test), where, &vals[0], err)) != CS_OK)
        return rc;
    names[(*n)++] = "model";
    if (t->column) {
        names[*n] = "column_name";
        vals[(*n)++] = tpl_str(t->column);
    }
    for (size_t i = 0; i < t->args->n && rc == CS_OK; i++) {
        if (*n >= max)
            return cs_fail(err, CS_INVALID, "%s: more than %zu arguments", where, max);
        if (strcmp(t->args->keys[i], "column_name") == 0 && t->column)
            continue;
        if ((rc = render_arg(w, t->args->items[i], where, &vals[*n], err)) == CS_OK)
            names[(*n)++] = t->args->keys[i];
    }
    return rc;
}

#define TEST_MAX_ARGS 64

cs_result dbt_generic_test_call(dbt_worker *w, size_t test, const dbt_render_opts *o, buf *out,
                                bool *builtin, cs_error *err)
{
    const pl_test *t = &w->m->p->tests[test];
    const char *names[TEST_MAX_ARGS];
    tpl_value *vals[TEST_MAX_ARGS], *fn, *res = NULL;
    char where[1024];
    size_t n = 0;
    tpl_args args = {0};
    cs_result rc = CS_OK;

    *builtin = false;
    snprintf(where, sizeof(where), "%s:%d", t->file, t->line);
    dbt_begin_render(w, -1, o);
    tpl_env_set(w->env, "should_store_failures",
                tpl_func_new("should_store_failures", n_no_store, NULL));
    fn = find_test_macro(w, t);
    if (!fn) {
        if (is_builtin(t)) {
            *builtin = true;
            /* the parse still reads the arguments, for the refs in them (to:) */
            if (w->parsing &&
                (rc = test_kwargs(w, test, where, names, vals, TEST_MAX_ARGS, &n, err)) == CS_OK)
                for (size_t i = 0; i < n; i++)
                    tpl_unref(vals[i]);
            return w->parsing ? rc : CS_OK;
        }
        return cs_fail(err, CS_INVALID,
                       "%s: test \"%s%s%s\" is not defined (no {%% test %s %%} block%s%s)", where,
                       t->ns ? t->ns : "", t->ns ? "." : "", t->kind, t->kind,
                       t->ns ? " in package " : "", t->ns ? t->ns : "");
    }
    tpl_ref(fn);
    if ((rc = test_kwargs(w, test, where, names, vals, TEST_MAX_ARGS, &n, err)) == CS_OK) {
        args.nkw = n;
        args.kwnames = names;
        args.kw = vals;
        rc = tpl_call_value(w->env, fn, &args, &res, err);
        if (rc == CS_OK && !tpl_to_text(res, out))
            rc = cs_fail(err, CS_INVALID, "%s: the test's SQL is too large", where);
        if (rc != CS_OK)
            cs_error_prefix(err, "%s: test %s: ", where, t->name);
    }
    for (size_t i = 0; i < n; i++)
        tpl_unref(vals[i]);
    if (res)
        tpl_unref(res);
    tpl_unref(fn);
    return rc;
}

/* the text of an argument rendered as the macro would see it */
static cs_result arg_text(dbt_worker *w, const pv *v, const char *where, buf *out, cs_error *err)
{
    tpl_value *tv = NULL;
    cs_result rc = render_arg(w, v, where, &tv, err);
    if (rc == CS_OK) {
        tpl_to_text(tv, out);
        tpl_unref(tv);
    }
    return rc;
}

/* the query of one of dbt's four built-in generic tests: the rows that fail it */
static cs_result builtin_test_sql(dbt_worker *w, size_t test, buf *out, cs_error *err)
{
    const pl_test *t = &w->m->p->tests[test];
    const char *col = t->column;
    char where[1024];
    tpl_value *relv = NULL;
    buf rel;
    cs_result rc;

    snprintf(where, sizeof(where), "%s:%d", t->file, t->line);
    if (!col && strcmp(t->kind, "unique") != 0)
        col = pv_gets(t->args, "column_name");
    if (!col)
        col = pv_gets(t->args, "column_name");
    if (!col)
        return cs_fail(err, CS_INVALID, "%s: test \"%s\" needs a column", where, t->kind);
    if ((rc = model_arg(w, test, test_config(w, test), where, &relv, err)) != CS_OK)
        return rc;
    buf_init(&rel, 0);
    tpl_to_text(relv, &rel);
    tpl_unref(relv);
    if (strcmp(t->kind, "not_null") == 0) {
        buf_printf(out, "select %s from %s where %s is null", col, rel.data, col);
    } else if (strcmp(t->kind, "unique") == 0) {
        buf_printf(out,
                   "select %s as unique_field, count(*) as n_records from %s where %s is not "
                   "null group by %s having count(*) > 1",
                   col, rel.data, col, col);
    } else if (strcmp(t->kind, "accepted_values") == 0) {
        const pv *vals = pv_get(t->args, "values");
        bool quote = !pv_get(t->args, "quote") || pv_truthy(pv_get(t->args, "quote"));
        if (!vals || vals->type != PV_LIST || vals->n == 0) {
            buf_free(&rel);
            return cs_fail(err, CS_INVALID, "%s: accepted_values needs \"values\"", where);
        }
        buf_printf(out, "select %s from %s where %s is not null and %s not in (", col, rel.data,
                   col, col);
        for (size_t i = 0; i < vals->n && rc == CS_OK; i++) {
            buf tv;
            buf_init(&tv, 0);
            if (vals->items[i]->type == PV_STR)
                buf_puts(&tv, vals->items[i]->s);
            else
                pv_to_text(vals->items[i], &tv);
            if (i)
                buf_puts(out, ", ");
            if (quote)
                mat_quote_literal(out, tv.data ? tv.data : "");
            else
                buf_puts(out, tv.data);
            buf_free(&tv);
        }
        buf_putc(out, ')');
    } else { /* relationships */
        const pv *to = pv_get(t->args, "to");
        const char *field = pv_gets(t->args, "field");
        buf prel;
        if (!to || !field) {
            buf_free(&rel);
            return cs_fail(err, CS_INVALID, "%s: relationships needs \"to\" and \"field\"", where);
        }
        buf_init(&prel, 0);
        if ((rc = arg_text(w, to, where, &prel, err)) == CS_OK)
            buf_printf(out,
                       "select child.%s from %s as child left join %s as parent on child.%s = "
                       "parent.%s where child.%s is not null and parent.%s is null",
                       col, rel.data, prel.data, col, field, col, field);
        buf_free(&prel);
    }
    buf_free(&rel);
    return rc;
}

cs_result dbt_render_test_sql(dbt_worker *w, size_t test, const dbt_render_opts *o, buf *out,
                              cs_error *err)
{
    const pl_test *t = &w->m->p->tests[test];
    bool builtin = false;
    cs_result rc;

    w->parsing = false;
    if (t->kind) {
        if ((rc = dbt_generic_test_call(w, test, o, out, &builtin, err)) != CS_OK || !builtin)
            return rc;
        return builtin_test_sql(w, test, out, err);
    }
    dbt_begin_render(w, -1, o);
    tpl_env_set(w->env, "should_store_failures",
                tpl_func_new("should_store_failures", n_no_store, NULL));
    return tpl_render(w->m->tests[test].tpl, w->env, NULL, out, err);
}
