/*
 * tpl.h - the template engine: the Jinja subset that dbt projects use
 * (reference section 5), with hooks for dbt's context.
 *
 * The engine knows nothing of PostgreSQL or dbt: everything dbt-specific
 * (config, ref, source, statement, run_query, this, ...) is a native
 * function or a value the caller puts into a tpl_env.
 *
 * Threads: a tpl_template is immutable once compiled and may be shared by
 * threads.  A tpl_env and every tpl_value belong to one thread at a time
 * (reference counts are not atomic).
 *
 * Ownership: functions that return a tpl_value * return a new reference the
 * caller must tpl_unref, unless documented "borrowed".  Functions that take
 * a tpl_value * argument borrow it unless documented "takes".
 *
 * Errors: compile and render errors are CS_INVALID with a message that
 * starts "FILE:LINE:COL: " and names the construct ("unknown filter
 * \"frobnicate\"", "unclosed block \"if\" opened at 3:1", "undefined macro
 * \"foo\"").  Errors returned by natives keep their class (a failing
 * run_query may be CS_TRANSIENT) and get the FILE:LINE:COL prefix.
 */
#ifndef CS_TPL_H
#define CS_TPL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/result.h"

typedef struct tpl_value tpl_value;
typedef struct tpl_template tpl_template;
typedef struct tpl_env tpl_env;
typedef struct tpl_call tpl_call;

typedef enum {
    TPL_NONE,
    TPL_BOOL,
    TPL_INT,
    TPL_FLOAT,
    TPL_STR,
    TPL_LIST, /* also Python tuples */
    TPL_DICT, /* insertion-ordered; also objects with attributes */
    TPL_FUNC, /* a native function or a macro */
} tpl_type;

/* ---- values ---- */
tpl_value *tpl_none(void);
tpl_value *tpl_bool(bool b);
tpl_value *tpl_int(long long i);
tpl_value *tpl_float(double d);
tpl_value *tpl_str(const char *s);
tpl_value *tpl_strn(const char *s, size_t n);
tpl_value *tpl_list_new(void);
tpl_value *tpl_dict_new(void);
/*
 * An object: a dict whose string form (when rendered with {{ }}, joined,
 * concatenated with ~, or passed to a native as text) is `display`; its
 * entries are its attributes.  dbt relations (this, ref(), source()) are
 * objects displaying "schema"."name" with attributes schema, name,
 * identifier, database.
 */
tpl_value *tpl_object_new(const char *display);
/*
 * A modules.datetime datetime (naive, as UTC) at epoch_us microseconds
 * after 1970-01-01 00:00:00, with its attributes and methods (strftime,
 * isoformat, ...); NULL outside the years 1..9999.  dbt's run_started_at.
 */
tpl_value *tpl_datetime_utc(long long epoch_us);

tpl_value *tpl_ref(tpl_value *v);
void tpl_unref(tpl_value *v);

tpl_type tpl_typeof(const tpl_value *v);
bool tpl_truthy(const tpl_value *v);
bool tpl_as_bool(const tpl_value *v);
long long tpl_as_int(const tpl_value *v);
double tpl_as_float(const tpl_value *v);
/* the string of a TPL_STR (borrowed), NULL for other types */
const char *tpl_as_str(const tpl_value *v);
/* renders any value as {{ v }} would into out; false when out failed */
bool tpl_to_text(const tpl_value *v, buf *out);
/* Python repr-like rendering for lists/dicts in output ({'a': 1}) */

size_t tpl_list_len(const tpl_value *list);
tpl_value *tpl_list_get(const tpl_value *list, size_t i); /* borrowed */
void tpl_list_push(tpl_value *list, tpl_value *item);     /* takes item */
/*
 * Gives list an attribute (takes v), like a Python list subclass: l.name
 * and l['name'] find it, while l[0], iteration, length, filters and the
 * text form see the list.  An attribute that is not a function is also
 * callable with no arguments and gives itself, so that agate-style
 * accessors work both ways (column.values() and column.values).  Copies of
 * the list (filters, slices) have no attributes.
 */
void tpl_list_set_attr(tpl_value *list, const char *name, tpl_value *v);

size_t tpl_dict_len(const tpl_value *dict);
tpl_value *tpl_dict_get(const tpl_value *dict, const char *key);   /* borrowed, NULL if absent */
void tpl_dict_set(tpl_value *dict, const char *key, tpl_value *v); /* takes v */
/* i-th entry in insertion order; key and value borrowed */
const char *tpl_dict_key_at(const tpl_value *dict, size_t i);
tpl_value *tpl_dict_value_at(const tpl_value *dict, size_t i);

/* ---- natives ---- */
typedef struct {
    size_t npos;
    tpl_value **pos; /* borrowed */
    size_t nkw;
    const char **kwnames;
    tpl_value **kw; /* borrowed */
} tpl_args;

/* the keyword argument `name`, else positional argument `index`, else NULL
 * (borrowed) */
tpl_value *tpl_arg(const tpl_args *args, size_t index, const char *name);

/*
 * A native function.  On success it sets *out to a new reference (tpl_none()
 * for nothing) and returns CS_OK.  call gives access to the caller block of a
 * {% call %} and to the current position for messages.
 */
typedef cs_result (*tpl_native_fn)(void *ud, tpl_call *call, const tpl_args *args, tpl_value **out,
                                   cs_error *err);

tpl_value *tpl_func_new(const char *name, tpl_native_fn fn, void *ud);

/*
 * Inside a native called as {% call name(args) %}BODY{% endcall %}: renders
 * BODY (caller()) into out.  Returns CS_INVALID when the native was not
 * called from a call block.
 */
cs_result tpl_call_render_caller(tpl_call *call, buf *out, cs_error *err);
/* "FILE:LINE:COL" of the call, for messages */
const char *tpl_call_where(const tpl_call *call);
/*
 * The object a native was called on as a method (obj.f(...): obj, an
 * object, dict or list holding f as an attribute), borrowed; NULL for a
 * plain call.  Lets one native serve as the method of many objects
 * (dbt's relation.include(), column.is_string()) without a reference
 * from the function back to its object.
 */
tpl_value *tpl_call_self(const tpl_call *call);
tpl_env *tpl_call_env(tpl_call *call);

/* ---- templates and environments ---- */

/*
 * Compiles source (not copied: the template keeps its own copy).  filename
 * is used in error messages.  Returns NULL and fills err on a syntax error.
 */
tpl_template *tpl_compile(const char *filename, const char *source, cs_error *err);
void tpl_template_free(tpl_template *t);

tpl_env *tpl_env_new(void);
void tpl_env_free(tpl_env *env);

/* sets a global (takes v); globals are visible in templates and macros */
void tpl_env_set(tpl_env *env, const char *name, tpl_value *v);
tpl_value *tpl_env_get(tpl_env *env, const char *name); /* borrowed, NULL if absent */

/*
 * Registers every top-level {% macro %} of t as a global function in env.
 * With a non-NULL ns the macros are also reachable as ns.macro_name (dbt
 * packages: {{ cht_pipeline_base.my_macro() }}).  t must outlive env.
 * A later definition with the same name replaces an earlier one (a project's
 * macro overrides a package's).
 */
void tpl_env_add_macros(tpl_env *env, const tpl_template *t, const char *ns);

/*
 * Strict undefined, as dbt at execute time: an undefined value printed by
 * {{ }} or joined with ~ is an error "FILE:LINE:COL: \"x\" is undefined".
 * Tests (is defined), filters (default, length), if, and/or, for and
 * attribute lookups still see an undefined and may go on.  Off by default
 * (dbt's parse phase renders undefined as nothing).
 */
void tpl_env_set_strict_undefined(tpl_env *env, bool strict);

/*
 * Where print(x) sends its text ("where" is FILE:LINE:COL of the call);
 * NULL, the default, drops it.  print() itself renders nothing.
 */
typedef void (*tpl_log_fn)(void *ud, const char *where, const char *msg);
void tpl_env_set_log(tpl_env *env, tpl_log_fn fn, void *ud);

/*
 * The top-level blocks a template defines, in source order, for a runner
 * that registers dbt's generic tests, materializations and docs:
 *   {% macro name(..) %}               macro "name"
 *   {% test name(model, ..) %}         macro "test_name" (dbt's naming)
 *   {% materialization name, default %} or
 *   {% materialization name, adapter='postgres' %}
 *                                      macro "materialization_name_default"
 *                                      / "materialization_name_postgres"
 *   {% docs name %}..{% enddocs %}     raw text, never rendered
 * tpl_env_add_macros registers the three macro kinds under their macro
 * name.  Everything is borrowed from t and valid while t lives.
 */
typedef enum {
    TPL_BLOCK_MACRO,
    TPL_BLOCK_TEST,
    TPL_BLOCK_MATERIALIZATION,
    TPL_BLOCK_DOCS,
} tpl_block_kind;

typedef struct {
    tpl_block_kind kind;
    const char *name;    /* as written: "not_null", "raw_sql", "my_doc" */
    const char *macro;   /* the macro it defines; NULL for docs */
    const char *adapter; /* materialization: "default" or the adapter; else NULL */
    const char *text;    /* docs: the block's text as written (not NUL-terminated) */
    size_t text_len;
    int line;
} tpl_block;

size_t tpl_block_count(const tpl_template *t);
/* the i-th block, NULL past the end (borrowed) */
const tpl_block *tpl_block_get(const tpl_template *t, size_t i);

/*
 * Renders t with env's globals plus locals (a dict, may be NULL) into out.
 * Whatever {% set %} does at top level stays local to this render.
 */
cs_result tpl_render(const tpl_template *t, tpl_env *env, tpl_value *locals, buf *out,
                     cs_error *err) CS_MUST_CHECK;

/* Calls a function value (a macro or a native) with args; *out gets the
 * result (a macro returns its rendered text, or its return() value). */
cs_result tpl_call_value(tpl_env *env, tpl_value *fn, const tpl_args *args, tpl_value **out,
                         cs_error *err) CS_MUST_CHECK;

#endif
