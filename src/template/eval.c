/*
 * eval.c - renders a compiled template: scopes, statements,
 * expressions, macro and native calls, call blocks and caller(), return().
 *
 * Scopes follow Jinja: a chain of frames (innermost first).  The render has
 * a root frame; a for loop pushes a frame (so a {% set %} in a loop does not
 * leak out; namespace() objects are the way out); a macro call pushes a
 * frame whose parent is the root frame of the render that defined the macro
 * (or nothing, for macros registered with tpl_env_add_macros).  Past the
 * chain come the render's locals, then the env's globals, then built-ins.
 *
 * Every evaluation function returns R_OK, R_ERR (ctx->err filled, message
 * positioned) or R_RETURN (a return() unwinding to the nearest macro, the
 * value in ctx->ret).  A function that returns anything but R_OK has
 * released what it owned and set no output.
 */
#include "template/ctx.h"
#include "template/filter.h"
#include "template/modules.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MACRO_DEPTH_MAX 200

/* keeps a helper's locals out of eval_node's frame (see EVAL_DEPTH_MAX) */
#define COLD __attribute__((noinline))

/* cs_result from a native that means "return() was called" */
#define RETURN_SIGNAL ((cs_result)100)

/* eval() recursion across expressions, macros and call blocks: expression
 * trees are at most 1,000 high (parse.c) and macros nest 200 deep, so
 * without this guard a recursive macro over a deep expression could still
 * exhaust the stack.  A level costs 0.2 to 0.5 KiB of stack (two to three
 * times that with ASan; eval_node keeps its frame small, see COLD), so the
 * limit stays within a few MiB, under the 8 MiB default of a thread. */
#define EVAL_DEPTH_MAX 5000

struct tpl_env {
    tpl_value *globals;
    tpl_value *builtins;
    tpli_ctx *active; /* the innermost render running on this env */
    unsigned long next_id;
    bool strict;      /* tpl_env_set_strict_undefined */
    tpl_log_fn logfn; /* print() */
    void *logud;
};

static tpl_value *lookup(tpli_ctx *c, const char *name)
{
    tpli_frame *f;
    tpl_value *v;

    for (f = c->scope; f; f = f->parent)
        if (f->vars && (v = tpl_dict_get(f->vars, name)))
            return v;
    if (c->locals && (v = tpl_dict_get(c->locals, name)))
        return v;
    if ((v = tpl_dict_get(c->env->globals, name)))
        return v;
    return tpl_dict_get(c->env->builtins, name);
}

/*
 * Soft undefined.  Strict undefined (dbt at execute time) refuses an
 * undefined name in output and in ~, but dbt renders jinja2's Undefined as
 * "" and packages rely on it where the name is known to the template: a
 * {% set %} in a branch that did not run ({{ select_gb_cols }} in
 * dbt_utils when there is no group_by), a parameter not passed, `x if c`
 * without else.  So a name that a {% set %} of the running macro (or
 * template) binds somewhere is soft: it renders as "".  A name nothing
 * binds (a typo, a missing global) stays an error.
 */
static bool body_sets(const tpli_node *n, const char *name, int depth)
{
    if (!n || depth > 2000 || n->kind == N_MACRO)
        return false;
    if ((n->kind == N_SET || n->kind == N_SETBLOCK) && !n->b)
        for (size_t i = 0; i < n->nnames; i++)
            if (strcmp(n->names[i], name) == 0)
                return true;
    if (body_sets(n->a, name, depth + 1) || body_sets(n->b, name, depth + 1) ||
        body_sets(n->c, name, depth + 1) || body_sets(n->d, name, depth + 1))
        return true;
    for (size_t i = 0; i < n->nkids; i++)
        if (body_sets(n->kids[i], name, depth + 1))
            return true;
    return false;
}

/* whether the innermost macro or template running binds name with a {% set %} */
static bool sets_name(const tpli_ctx *c, const char *name)
{
    for (const tpli_frame *f = c->scope; f; f = f->parent)
        if (f->owner)
            return body_sets(f->owner, name, 0);
    return false;
}

/* binds name in the innermost frame; takes v */
static void assign(tpli_ctx *c, const char *name, tpl_value *v)
{
    if (!c->scope->vars)
        c->scope->vars = tpl_dict_new();
    tpli_scope_set(c->scope->vars, name, v);
}

static int eval(tpli_ctx *c, const tpli_node *n, tpl_value **out);
static int render_body(tpli_ctx *c, const tpli_node *body, buf *out);
static int undefined_error(tpli_ctx *c, const tpli_node *n, tpl_value *v);

/* ---- arguments ---- */

#define ARGS_INLINE 8

/* evaluated call arguments; inline storage for the common small call */
typedef struct {
    tpl_args a;
    size_t cappos, capkw;
    tpl_value *held; /* a list of key strings that kwnames from **dict point into */
    tpl_value *pos[ARGS_INLINE];
    tpl_value *kw[ARGS_INLINE];
    const char *kwn[ARGS_INLINE];
} argv;

static void args_free(argv *av)
{
    size_t i;

    for (i = 0; i < av->a.npos; i++)
        tpl_unref(av->a.pos[i]);
    for (i = 0; i < av->a.nkw; i++)
        tpl_unref(av->a.kw[i]);
    if (av->a.pos != av->pos)
        free(av->a.pos);
    if (av->a.kw != av->kw)
        free(av->a.kw);
    if (av->a.kwnames != av->kwn)
        free((void *)av->a.kwnames);
    tpl_unref(av->held);
    av->held = NULL;
}

/* appends a positional argument (takes v) */
static void args_push_pos(argv *av, tpl_value *v)
{
    if (av->a.npos == av->cappos) {
        size_t cap = av->cappos * 2;
        tpl_value **p = xmalloc(cap * sizeof(*p));
        memcpy(p, av->a.pos, av->a.npos * sizeof(*p));
        if (av->a.pos != av->pos)
            free(av->a.pos);
        av->a.pos = p;
        av->cappos = cap;
    }
    av->a.pos[av->a.npos++] = v;
}

/* appends a keyword argument (takes v; name must outlive av) */
static void args_push_kw(argv *av, const char *name, tpl_value *v)
{
    if (av->a.nkw == av->capkw) {
        size_t cap = av->capkw * 2;
        tpl_value **k = xmalloc(cap * sizeof(*k));
        const char **kn = xmalloc(cap * sizeof(*kn));
        memcpy(k, av->a.kw, av->a.nkw * sizeof(*k));
        memcpy(kn, av->a.kwnames, av->a.nkw * sizeof(*kn));
        if (av->a.kw != av->kw)
            free(av->a.kw);
        if (av->a.kwnames != av->kwn)
            free((void *)av->a.kwnames);
        av->a.kw = k;
        av->a.kwnames = kn;
        av->capkw = cap;
    }
    av->a.kwnames[av->a.nkw] = name;
    av->a.kw[av->a.nkw++] = v;
}

/* f(*xs): the items of xs as positional arguments (takes xs) */
static int args_star(tpli_ctx *c, const tpli_node *n, argv *av, tpl_value *xs)
{
    tpl_value *items;
    size_t i;
    int r = tpli_iter(c, n, xs, &items);

    tpl_unref(xs);
    if (r != R_OK)
        return r;
    for (i = 0; i < items->u.list.len; i++)
        args_push_pos(av, tpl_ref(items->u.list.items[i]));
    tpl_unref(items);
    return R_OK;
}

/* f(**d): the entries of d as keyword arguments (takes d) */
static int args_dstar(tpli_ctx *c, const tpli_node *n, argv *av, tpl_value *d)
{
    size_t i;

    if (tpl_typeof(d) != TPL_DICT) {
        int r = tpli_fail(c, n, "argument after ** must be a mapping, not '%s'", tpli_type_name(d));
        tpl_unref(d);
        return r;
    }
    if (!av->held)
        av->held = tpl_list_new();
    for (i = 0; i < d->u.dict.len; i++) {
        tpl_value *key = tpl_str(d->u.dict.keys[i]);
        tpl_list_push(av->held, key);
        args_push_kw(av, key->u.str.s, tpl_ref(d->u.dict.vals[i]));
    }
    tpl_unref(d);
    return R_OK;
}

/* evaluates n's kids into av, unpacking *xs and **d; on failure av holds
 * nothing */
static int args_eval(tpli_ctx *c, const tpli_node *n, argv *av)
{
    size_t i;
    int r;

    av->a.npos = 0;
    av->a.nkw = 0;
    av->a.pos = av->pos;
    av->a.kw = av->kw;
    av->a.kwnames = av->kwn;
    av->cappos = av->capkw = ARGS_INLINE;
    av->held = NULL;
    for (i = 0; i < n->nkids; i++) {
        const char *kw = n->kwnames[i];
        tpl_value *v;
        if ((r = eval(c, n->kids[i], &v)) != R_OK)
            goto error;
        if (TPLI_IS_STAR(kw))
            r = args_star(c, n->kids[i], av, v);
        else if (TPLI_IS_DSTAR(kw))
            r = args_dstar(c, n->kids[i], av, v);
        else if (kw)
            args_push_kw(av, kw, v);
        else
            args_push_pos(av, v);
        if (r != R_OK)
            goto error;
    }
    return R_OK;
error:
    args_free(av);
    return r;
}

/* ---- calls ---- */

static COLD int call_native(tpli_ctx *c, const tpli_node *n, tpl_value *fn, const tpl_args *a,
                            tpl_value *caller, tpl_value *self, tpl_value **out)
{
    tpl_call call;
    cs_result r;

    call.ctx = c;
    call.node = n;
    call.caller = caller;
    call.self = self;
    call.where[0] = '\0';
    *out = NULL;
    c->positioned = false;
    r = fn->u.fn.fn(fn->u.fn.ud, &call, a, out, c->err);
    if (r == RETURN_SIGNAL)
        return R_RETURN;
    if (r != CS_OK) {
        tpl_unref(*out);
        *out = NULL;
        if (c->err->code == CS_OK) /* a native that forgot to fill err */
            cs_fail(c->err, r, "\"%s\" failed", fn->u.fn.name);
        if (!c->positioned && n && c->tpl)
            cs_error_prefix(c->err, "%s:%d:%d: ", c->tpl->filename, n->line, n->col);
        c->positioned = true;
        return R_ERR;
    }
    if (!*out)
        *out = tpl_none();
    return R_OK;
}

/* binds a parameter list (macro or call block) from args into the current
 * frame; defaults are evaluated there, so they may use earlier parameters */
static int bind_params(tpli_ctx *c, const tpli_node *pos, const tpli_node *def, const char *what,
                       const tpl_args *a)
{
    size_t i, j;
    tpl_value *varargs = NULL, *kwargs = NULL;
    int r;
    bool *bound = NULL, small[16];

    bound = def->nnames > 16 ? xmalloc(def->nnames) : small;
    memset(bound, 0, def->nnames > 16 ? def->nnames : 16);
    if (def->op & MF_VARARGS)
        varargs = tpli_tuple_new();
    if (def->op & MF_KWARGS)
        kwargs = tpl_dict_new();
    for (i = 0; a && i < a->npos; i++) {
        if (i < def->nnames) {
            assign(c, def->names[i], tpl_ref(a->pos[i]));
            bound[i] = true;
        } else if (varargs) {
            tpl_list_push(varargs, tpl_ref(a->pos[i]));
        } else {
            r = tpli_fail(c, pos, "%s takes %zu argument%s, got %zu", what, def->nnames,
                          def->nnames == 1 ? "" : "s", a->npos);
            goto out;
        }
    }
    for (i = 0; a && i < a->nkw; i++) {
        for (j = 0; j < def->nnames; j++)
            if (strcmp(def->names[j], a->kwnames[i]) == 0)
                break;
        if (j < def->nnames) {
            if (bound[j]) {
                r = tpli_fail(c, pos, "%s got multiple values for argument \"%s\"", what,
                              a->kwnames[i]);
                goto out;
            }
            assign(c, def->names[j], tpl_ref(a->kw[i]));
            bound[j] = true;
        } else if (kwargs) {
            tpl_dict_set(kwargs, a->kwnames[i], tpl_ref(a->kw[i]));
        } else {
            r = tpli_fail(c, pos, "%s has no argument \"%s\"", what, a->kwnames[i]);
            goto out;
        }
    }
    for (j = 0; j < def->nnames; j++) {
        tpl_value *v;
        if (bound[j])
            continue;
        if (def->defaults && def->defaults[j]) {
            if ((r = eval(c, def->defaults[j], &v)) != R_OK)
                goto out;
        } else {
            v = tpli_undef_soft(def->names[j]); /* jinja: an Undefined parameter */
        }
        assign(c, def->names[j], v);
    }
    if (varargs)
        assign(c, "varargs", tpl_ref(varargs));
    if (kwargs)
        assign(c, "kwargs", tpl_ref(kwargs));
    r = R_OK;
out:
    tpl_unref(varargs);
    tpl_unref(kwargs);
    if (bound != small)
        free(bound);
    return r;
}

static tpl_value *buf_to_value(buf *b)
{
    size_t n = b->len;

    if (!b->data)
        return tpl_strn("", 0);
    return tpli_str_take(buf_steal(b), n);
}

/*
 * Calls macro fn: a new frame, parameters bound, the body rendered into a
 * private buffer.  The result is the rendered text as a string, or the
 * value given to return().  n is the call site (NULL from tpl_call_value).
 */
static int call_macro(tpli_ctx *c, const tpli_node *n, tpl_value *fn, const tpl_args *a,
                      tpl_value *caller, tpl_value **out)
{
    const tpli_node *m = fn->u.fn.macro;
    tpli_frame f = {NULL, NULL, NULL}, *saved_scope = c->scope;
    const tpl_template *saved_tpl = c->tpl;
    char what[160];
    buf b;
    int r;

    *out = NULL;
    if (c->depth >= MACRO_DEPTH_MAX)
        return tpli_fail(c, n, "macro \"%s\" nested too deeply (limit %d)", fn->u.fn.name,
                         MACRO_DEPTH_MAX);
    f.parent = fn->u.fn.defid && fn->u.fn.defid == c->id ? c->root : NULL;
    f.vars = tpl_dict_new();
    f.owner = m->a;
    snprintf(what, sizeof(what), "macro \"%s\"", fn->u.fn.name);
    c->depth++;
    c->scope = &f;
    if (!n) { /* no call site: report at the definition */
        c->tpl = fn->u.fn.tpl;
        n = m;
    }
    r = bind_params(c, n, m, what, a);
    c->tpl = fn->u.fn.tpl;
    if (r == R_OK) {
        if (caller)
            assign(c, "caller", tpl_ref(caller));
        buf_init(&b, c->outmax);
        r = render_body(c, m->a, &b);
        if (r == R_RETURN) {
            *out = c->ret ? c->ret : tpl_none();
            c->ret = NULL;
            r = R_OK;
        } else if (r == R_OK) {
            *out = buf_to_value(&b);
        }
        buf_free(&b);
    }
    c->scope = saved_scope;
    c->tpl = saved_tpl;
    c->depth--;
    tpl_unref(f.vars);
    return r;
}

/* renders a call block's body (caller()) with args bound to its params */
static int render_closure(tpli_ctx *c, const tpli_node *n, struct tpli_closure *clo,
                          const tpl_args *a, buf *out)
{
    tpli_frame f = {NULL, NULL, NULL}, *saved_scope = c->scope;
    const tpl_template *saved_tpl = c->tpl;
    int r;

    if (!clo)
        return tpli_fail(c, n, "caller() used after its call block ended");
    if (c->depth >= MACRO_DEPTH_MAX)
        return tpli_fail(c, n, "caller() nested too deeply (limit %d)", MACRO_DEPTH_MAX);
    c->depth++;
    f.parent = clo->scope;
    c->scope = &f;
    r = bind_params(c, n, clo->block, "caller()", a);
    c->tpl = clo->tpl;
    if (r == R_OK)
        r = render_body(c, clo->block->b, out);
    c->scope = saved_scope;
    c->tpl = saved_tpl;
    c->depth--;
    tpl_unref(f.vars);
    return r;
}

/* self: the object a method was looked up on (obj.f()), else NULL */
static int call_func(tpli_ctx *c, const tpli_node *n, tpl_value *fn, const tpl_args *a,
                     tpl_value *caller, tpl_value *self, tpl_value **out)
{
    switch (fn->u.fn.kind) {
    case FN_NATIVE:
        return call_native(c, n, fn, a, caller, self, out);
    case FN_MACRO:
        return call_macro(c, n, fn, a, caller, out);
    default: {
        buf b;
        int r;
        buf_init(&b, c->outmax);
        r = render_closure(c, n, fn->u.fn.clo, a, &b);
        *out = r == R_OK ? buf_to_value(&b) : NULL;
        buf_free(&b);
        return r;
    }
    }
}

/* print(x, ...): the arguments' text, space-separated, to the env's log
 * function with the call's position; renders nothing (dbt's print) */
static cs_result b_print(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                         cs_error *err)
{
    tpl_env *env = ud;
    size_t i;
    buf b;

    if (env->logfn) {
        buf_init(&b, 64 << 10); /* a log line, not a dump: longer text is cut */
        for (i = 0; i < a->npos; i++) {
            if (i)
                buf_putc(&b, ' ');
            tpl_to_text(a->pos[i], &b);
        }
        env->logfn(env->logud, tpl_call_where(call), b.data ? b.data : "");
        buf_free(&b);
    }
    *out = tpl_str("");
    return CS_OK;
}

/* dbt's return(): ends the enclosing macro with this value, unwinding
 * through the R_RETURN result */
static cs_result b_return(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                          cs_error *err)
{
    tpl_value *v = tpl_arg(a, 0, NULL);

    tpl_unref(call->ctx->ret);
    call->ctx->ret = v ? tpl_ref(v) : tpl_none();
    return RETURN_SIGNAL;
}

/* a call expression n (N_CALL); caller is the closure of a call block */
static COLD int eval_call(tpli_ctx *c, const tpli_node *n, tpl_value *caller, tpl_value **out)
{
    const tpli_node *fnode = n->a;
    tpl_value *fn = NULL, *obj = NULL;
    argv av;
    int r;

    *out = NULL;
    if (fnode->kind == N_NAME) {
        fn = lookup(c, fnode->name);
        if (!fn)
            return tpli_fail(c, n, "undefined macro \"%s\"", fnode->name);
        if (fn->type != TPL_FUNC)
            return tpli_fail(c, n, "\"%s\" is not callable (%s)", fnode->name, tpli_type_name(fn));
        tpl_ref(fn);
    } else if (fnode->kind == N_ATTR) {
        if ((r = eval(c, fnode->a, &obj)) != R_OK)
            return r;
        fn = tpli_attr(obj, fnode->name);
        if (fn && fn->type == TPL_FUNC) {
            tpl_ref(fn);
        } else if (fn && obj->type == TPL_LIST && n->nkids == 0) {
            /* a list's data attribute called as an accessor: l.values() */
            *out = tpl_ref(fn);
            tpl_unref(obj);
            return R_OK;
        } else {
            fn = NULL;
            if (tpli_is_undef(obj)) {
                r = obj->u.str.s ? tpli_fail(c, n, "\"%s\" is undefined", obj->u.str.s)
                                 : tpli_fail(c, n, "undefined macro \"%s\"", fnode->name);
                tpl_unref(obj);
                return r;
            }
        }
    } else {
        if ((r = eval(c, fnode, &fn)) != R_OK)
            return r;
        if (fn->type != TPL_FUNC) {
            r = tpli_fail(c, n, "\"%s\" object is not callable", tpli_type_name(fn));
            tpl_unref(fn);
            return r;
        }
    }
    if ((r = args_eval(c, n, &av)) != R_OK) {
        tpl_unref(fn);
        tpl_unref(obj);
        return r;
    }
    if (fn) {
        r = call_func(c, n, fn, &av.a, caller, obj, out);
    } else {
        r = tpli_method(c, n, obj, fnode->name, &av.a, out);
        if (r == 2) {
            if (tpl_typeof(obj) == TPL_DICT && !tpl_dict_get(obj, fnode->name))
                r = tpli_fail(c, n, "undefined macro \"%s\"", fnode->name);
            else
                r = tpli_fail(c, n, "\"%s\" object has no method \"%s\"", tpli_type_name(obj),
                              fnode->name);
        }
    }
    args_free(&av);
    tpl_unref(fn);
    tpl_unref(obj);
    return r;
}

/* ---- expressions ---- */

static tpl_value *getattr_value(tpl_value *obj, const char *name)
{
    tpl_value *v = tpli_attr(obj, name);

    return v ? tpl_ref(v) : tpli_undef(name);
}

static bool norm_index(long long i, size_t len, size_t *out)
{
    if (i < 0)
        i += (long long)len;
    if (i < 0 || (unsigned long long)i >= len)
        return false;
    *out = (size_t)i;
    return true;
}

static COLD int getitem(tpli_ctx *c, const tpli_node *n, tpl_value *obj, tpl_value *key,
                        tpl_value **out)
{
    size_t i;

    (void)c;
    (void)n;
    if (tpli_is_undef(obj)) {
        *out = tpl_ref(obj);
        return R_OK;
    }
    switch (tpl_typeof(obj)) {
    case TPL_DICT:
        if (key->type == TPL_STR) {
            *out = getattr_value(obj, key->u.str.s);
        } else {
            tpl_value *k = tpli_to_str(key);
            *out = getattr_value(obj, k->u.str.s);
            tpl_unref(k);
        }
        return R_OK;
    case TPL_LIST:
        if ((key->type == TPL_INT || key->type == TPL_BOOL) &&
            norm_index(tpl_as_int(key), obj->u.list.len, &i)) {
            *out = tpl_ref(obj->u.list.items[i]);
            return R_OK;
        }
        if (key->type == TPL_STR && obj->attrs) {
            *out = getattr_value(obj, key->u.str.s);
            return R_OK;
        }
        break;
    case TPL_STR:
        if ((key->type == TPL_INT || key->type == TPL_BOOL) &&
            norm_index(tpl_as_int(key), obj->u.str.len, &i)) {
            *out = tpl_strn(obj->u.str.s + i, 1);
            return R_OK;
        }
        break;
    default:
        break;
    }
    *out = tpli_undef(key->type == TPL_STR ? key->u.str.s : NULL);
    return R_OK;
}

/* Python slice semantics for lists and strings */
static COLD int eval_slice(tpli_ctx *c, const tpli_node *n, tpl_value *obj, tpl_value **out)
{
    long long len, start, stop, step = 1, i;
    tpl_value *bounds[3] = {NULL, NULL, NULL};
    const tpli_node *bn[3] = {n->b, n->c, n->d};
    int r = R_OK, k;

    if (obj->type != TPL_LIST && obj->type != TPL_STR) {
        *out = tpli_undef(NULL);
        return R_OK;
    }
    len = (long long)(obj->type == TPL_LIST ? obj->u.list.len : obj->u.str.len);
    for (k = 0; k < 3; k++) {
        if (bn[k] && (r = eval(c, bn[k], &bounds[k])) != R_OK)
            goto out;
        if (bounds[k] && bounds[k]->type != TPL_INT && bounds[k]->type != TPL_NONE) {
            r = tpli_fail(c, n, "slice indices must be integers");
            goto out;
        }
    }
    if (bounds[2] && bounds[2]->type == TPL_INT)
        step = bounds[2]->u.i;
    if (step == 0) {
        r = tpli_fail(c, n, "slice step cannot be zero");
        goto out;
    }
    start = step > 0 ? 0 : len - 1;
    stop = step > 0 ? len : -1;
    if (bounds[0] && bounds[0]->type == TPL_INT) {
        start = bounds[0]->u.i < 0 ? bounds[0]->u.i + len : bounds[0]->u.i;
        if (start < 0)
            start = step > 0 ? 0 : -1;
        if (start >= len)
            start = step > 0 ? len : len - 1;
    }
    if (bounds[1] && bounds[1]->type == TPL_INT) {
        stop = bounds[1]->u.i < 0 ? bounds[1]->u.i + len : bounds[1]->u.i;
        if (stop < 0)
            stop = step > 0 ? 0 : -1;
        if (stop >= len)
            stop = step > 0 ? len : len - 1;
    }
    if (obj->type == TPL_LIST) {
        tpl_value *l = obj->flags & VF_TUPLE ? tpli_tuple_new() : tpl_list_new();
        for (i = start; step > 0 ? i < stop : i > stop; i += step)
            tpl_list_push(l, tpl_ref(obj->u.list.items[i]));
        *out = l;
    } else {
        buf b;
        buf_init(&b, 0);
        for (i = start; step > 0 ? i < stop : i > stop; i += step)
            buf_putc(&b, obj->u.str.s[i]);
        *out = buf_to_value(&b);
    }
out:
    for (k = 0; k < 3; k++)
        tpl_unref(bounds[k]);
    return r;
}

static int undefined_error(tpli_ctx *c, const tpli_node *n, tpl_value *v)
{
    if (v->u.str.s)
        return tpli_fail(c, n, "\"%s\" is undefined", v->u.str.s);
    return tpli_fail(c, n, "undefined value in expression");
}

static COLD int arith(tpli_ctx *c, const tpli_node *n, int op, tpl_value *a, tpl_value *b,
                      tpl_value **out)
{
    static const char *const names[] = {"+", "-", "*", "/", "//", "%", "**"};
    bool ai = a->type == TPL_INT || a->type == TPL_BOOL;
    bool bi = b->type == TPL_INT || b->type == TPL_BOOL;
    bool an = ai || a->type == TPL_FLOAT, bn = bi || b->type == TPL_FLOAT;

    if (tpli_is_undef(a))
        return undefined_error(c, n, a);
    if (tpli_is_undef(b))
        return undefined_error(c, n, b);
    if (an && bn) {
        if (ai && bi) {
            long long x = tpl_as_int(a), y = tpl_as_int(b), z = 0;
            bool ovf = false;
            switch (op) {
            case OP_ADD:
                ovf = __builtin_add_overflow(x, y, &z);
                break;
            case OP_SUB:
                ovf = __builtin_sub_overflow(x, y, &z);
                break;
            case OP_MUL:
                ovf = __builtin_mul_overflow(x, y, &z);
                break;
            case OP_DIV:
                if (y == 0)
                    return tpli_fail(c, n, "division by zero");
                *out = tpl_float((double)x / (double)y);
                return R_OK;
            case OP_FLOORDIV:
            case OP_MOD:
                if (y == 0)
                    return tpli_fail(c, n, "division by zero");
                if (x == -0x7fffffffffffffffLL - 1 && y == -1) {
                    ovf = true;
                    break;
                }
                z = op == OP_FLOORDIV ? x / y : x % y;
                if (op == OP_FLOORDIV && (x % y != 0) && ((x < 0) != (y < 0)))
                    z--;
                if (op == OP_MOD && z != 0 && ((z < 0) != (y < 0)))
                    z += y;
                break;
            case OP_POW:
                if (y < 0) {
                    *out = tpl_float(pow((double)x, (double)y));
                    return R_OK;
                }
                z = 1;
                while (y-- > 0 && !ovf)
                    ovf = __builtin_mul_overflow(z, x, &z);
                break;
            }
            if (ovf)
                return tpli_fail(c, n, "integer overflow");
            *out = tpl_int(z);
            return R_OK;
        } else {
            double x = tpl_as_float(a), y = tpl_as_float(b), z = 0;
            switch (op) {
            case OP_ADD:
                z = x + y;
                break;
            case OP_SUB:
                z = x - y;
                break;
            case OP_MUL:
                z = x * y;
                break;
            case OP_DIV:
            case OP_FLOORDIV:
            case OP_MOD:
                if (y == 0)
                    return tpli_fail(c, n, "division by zero");
                z = op == OP_DIV ? x / y : op == OP_FLOORDIV ? floor(x / y) : fmod(x, y);
                if (op == OP_MOD && z != 0 && ((z < 0) != (y < 0)))
                    z += y;
                break;
            case OP_POW:
                z = pow(x, y);
                break;
            }
            *out = tpl_float(z);
            return R_OK;
        }
    }
    if (op == OP_ADD && a->type == TPL_STR && b->type == TPL_STR) {
        char *s;
        if (a->u.str.len > c->outmax || b->u.str.len > c->outmax - a->u.str.len)
            return tpli_str_fail(c, n); /* the cap ~ respects: x = x + x cannot double forever */
        s = xmalloc(a->u.str.len + b->u.str.len + 1);
        memcpy(s, a->u.str.s, a->u.str.len);
        memcpy(s + a->u.str.len, b->u.str.s, b->u.str.len + 1);
        *out = tpli_str_take(s, a->u.str.len + b->u.str.len);
        return R_OK;
    }
    if (op == OP_ADD && a->type == TPL_LIST && b->type == TPL_LIST) {
        tpl_value *l;
        size_t i;
        if (!tpli_list_room(c, n, a->u.list.len, b->u.list.len))
            return R_ERR;
        l = tpl_list_new();
        for (i = 0; i < a->u.list.len; i++)
            tpl_list_push(l, tpl_ref(a->u.list.items[i]));
        for (i = 0; i < b->u.list.len; i++)
            tpl_list_push(l, tpl_ref(b->u.list.items[i]));
        *out = l;
        return R_OK;
    }
    if (op == OP_MUL && ((a->type == TPL_STR && bi) || (b->type == TPL_STR && ai))) {
        tpl_value *s = a->type == TPL_STR ? a : b;
        long long k = tpl_as_int(a->type == TPL_STR ? b : a), i;
        buf out_b;
        buf_init(&out_b, c->outmax);
        for (i = 0; i < k && buf_ok(&out_b); i++)
            buf_append(&out_b, s->u.str.s, s->u.str.len);
        if (!buf_ok(&out_b)) {
            buf_free(&out_b);
            return tpli_str_fail(c, n);
        }
        *out = buf_to_value(&out_b);
        return R_OK;
    }
    {
        int r = tpli_temporal_arith(c, n, op, a, b, out);
        if (r != 2)
            return r;
    }
    return tpli_fail(c, n, "unsupported operand types for %s: '%s' and '%s'", names[op],
                     tpli_type_name(a), tpli_type_name(b));
}

static int contains(tpli_ctx *c, const tpli_node *n, tpl_value *item, tpl_value *seq, bool *res)
{
    size_t i;

    switch (tpl_typeof(seq)) {
    case TPL_STR: {
        tpl_value *s = tpli_to_str(item);
        *res = strstr(seq->u.str.s, s->u.str.s) != NULL;
        tpl_unref(s);
        return R_OK;
    }
    case TPL_LIST:
        *res = false;
        for (i = 0; i < seq->u.list.len && !*res; i++)
            *res = tpli_equal(item, seq->u.list.items[i]);
        return R_OK;
    case TPL_DICT:
        *res = item->type == TPL_STR && tpl_dict_get(seq, item->u.str.s);
        return R_OK;
    case TPL_NONE:
        if (tpli_is_undef(seq)) {
            *res = false;
            return R_OK;
        }
        /* fall through */
    default:
        return tpli_fail(c, n, "argument of type '%s' is not iterable", tpli_type_name(seq));
    }
}

static COLD int compare(tpli_ctx *c, const tpli_node *n, int op, tpl_value *a, tpl_value *b,
                        bool *res)
{
    int cmp;

    switch (op) {
    case CMP_EQ:
        *res = tpli_equal(a, b);
        return R_OK;
    case CMP_NE:
        *res = !tpli_equal(a, b);
        return R_OK;
    case CMP_IN:
        return contains(c, n, a, b, res);
    case CMP_NOTIN: {
        int r = contains(c, n, a, b, res);
        *res = !*res;
        return r;
    }
    default:
        break;
    }
    if (!tpli_compare(a, b, &cmp))
        return tpli_fail(c, n, "cannot compare '%s' with '%s'", tpli_type_name(a),
                         tpli_type_name(b));
    switch (op) {
    case CMP_LT:
        *res = cmp < 0;
        break;
    case CMP_LE:
        *res = cmp <= 0;
        break;
    case CMP_GT:
        *res = cmp > 0;
        break;
    default:
        *res = cmp >= 0;
    }
    return R_OK;
}

static int eval2(tpli_ctx *c, const tpli_node *n, tpl_value **a, tpl_value **b)
{
    int r = eval(c, n->a, a);

    if (r != R_OK)
        return r;
    if ((r = eval(c, n->b, b)) != R_OK) {
        tpl_unref(*a);
        *a = NULL;
    }
    return r;
}

/*
 * The cases of eval_node that need big locals live in functions of their
 * own (COLD: never inlined), so that eval_node's frame, paid once per level
 * of every expression, stays small.
 */
/* x | filter(args) and x is test(args) */
static COLD int eval_filter(tpli_ctx *c, const tpli_node *n, tpl_value **out)
{
    tpl_value *a;
    argv av;
    bool res = false;
    int r;

    if ((r = eval(c, n->a, &a)) != R_OK)
        return r;
    if ((r = args_eval(c, n, &av)) != R_OK) {
        tpl_unref(a);
        return r;
    }
    if (n->kind == N_FILTER) {
        r = tpli_filter_get(n->op)(c, n, a, &av.a, out);
    } else {
        r = tpli_test_get(n->op)(c, n, a, &av.a, &res);
        if (r == R_OK)
            *out = tpl_bool(n->len ? !res : res);
    }
    args_free(&av);
    tpl_unref(a);
    return r;
}

/* a ~ b (borrowed) */
static COLD int concat(tpli_ctx *c, const tpli_node *n, tpl_value *a, tpl_value *b, tpl_value **out)
{
    buf s;

    if (c->env->strict && (tpli_is_strict_undef(a) || tpli_is_strict_undef(b)))
        return undefined_error(c, tpli_is_strict_undef(a) ? n->a : n->b,
                               tpli_is_strict_undef(a) ? a : b);
    buf_init(&s, c->outmax);
    tpl_to_text(a, &s);
    tpl_to_text(b, &s);
    if (!buf_ok(&s)) {
        buf_free(&s);
        return tpli_str_fail(c, n);
    }
    *out = buf_to_value(&s);
    return R_OK;
}

/* a < b < c ...: each operand evaluated once, stops at the first false */
static COLD int eval_chain(tpli_ctx *c, const tpli_node *n, tpl_value **out)
{
    tpl_value *prev = NULL, *next = NULL;
    bool res = true;
    size_t i;
    int r;

    if ((r = eval(c, n->kids[0], &prev)) != R_OK)
        return r;
    for (i = 1; i < n->nkids && res; i++) {
        if ((r = eval(c, n->kids[i], &next)) != R_OK)
            break;
        r = compare(c, n, n->ops[i - 1], prev, next, &res);
        tpl_unref(prev);
        prev = next;
        next = NULL;
        if (r != R_OK)
            break;
    }
    tpl_unref(prev);
    if (r == R_OK)
        *out = tpl_bool(res);
    return r;
}

static int eval_node(tpli_ctx *c, const tpli_node *n, tpl_value **out);

/* every recursive path of a render (expressions, macros, call blocks,
 * natives calling back) passes here, so one counter bounds the stack */
static int eval(tpli_ctx *c, const tpli_node *n, tpl_value **out)
{
    int r;

    if (c->edepth >= EVAL_DEPTH_MAX) {
        *out = NULL;
        return tpli_fail(c, n, "evaluation nested too deeply (limit %d)", EVAL_DEPTH_MAX);
    }
    c->edepth++;
    r = eval_node(c, n, out);
    c->edepth--;
    return r;
}

static int eval_node(tpli_ctx *c, const tpli_node *n, tpl_value **out)
{
    tpl_value *a = NULL, *b = NULL, *v;
    size_t i;
    int r = R_OK;

    *out = NULL;
    switch (n->kind) {
    case N_CONST:
        /* a copy: values given to natives may outlive the template */
        v = n->value;
        if (v->type == TPL_STR)
            *out = tpl_strn(v->u.str.s, v->u.str.len);
        else if (v->type == TPL_INT)
            *out = tpl_int(v->u.i);
        else if (v->type == TPL_FLOAT)
            *out = tpl_float(v->u.d);
        else
            *out = v; /* None, True, False: static singletons */
        return R_OK;
    case N_NAME:
        v = lookup(c, n->name);
        *out = v                       ? tpl_ref(v)
               : sets_name(c, n->name) ? tpli_undef_soft(n->name)
                                       : tpli_undef(n->name);
        return R_OK;
    case N_LIST:
    case N_TUPLE:
        v = n->kind == N_LIST ? tpl_list_new() : tpli_tuple_new();
        for (i = 0; i < n->nkids; i++) {
            if ((r = eval(c, n->kids[i], &a)) != R_OK) {
                tpl_unref(v);
                return r;
            }
            tpl_list_push(v, a);
        }
        *out = v;
        return R_OK;
    case N_DICT:
        v = tpl_dict_new();
        for (i = 0; i + 1 < n->nkids; i += 2) {
            tpl_value *k;
            if ((r = eval(c, n->kids[i], &a)) != R_OK ||
                (r = eval(c, n->kids[i + 1], &b)) != R_OK) {
                tpl_unref(a);
                tpl_unref(v);
                return r;
            }
            k = tpli_to_str(a);
            tpl_dict_set(v, k->u.str.s, b);
            tpl_unref(k);
            tpl_unref(a);
        }
        *out = v;
        return R_OK;
    case N_ATTR:
        if ((r = eval(c, n->a, &a)) != R_OK)
            return r;
        if (tpli_is_undef(a)) { /* zz.x.y stays "zz" undefined, for the message */
            *out = a;
            return R_OK;
        }
        *out = getattr_value(a, n->name);
        tpl_unref(a);
        return R_OK;
    case N_ITEM:
        if ((r = eval2(c, n, &a, &b)) != R_OK)
            return r;
        r = getitem(c, n, a, b, out);
        break;
    case N_SLICE:
        if ((r = eval(c, n->a, &a)) != R_OK)
            return r;
        r = eval_slice(c, n, a, out);
        break;
    case N_CALL:
        return eval_call(c, n, NULL, out);
    case N_FILTER:
    case N_TEST:
        return eval_filter(c, n, out);
    case N_NEG:
    case N_POS:
        if ((r = eval(c, n->a, &a)) != R_OK)
            return r;
        if (a->type == TPL_INT || a->type == TPL_BOOL) {
            long long x = tpl_as_int(a);
            if (n->kind == N_NEG && x == -0x7fffffffffffffffLL - 1)
                r = tpli_fail(c, n, "integer overflow");
            else
                *out = tpl_int(n->kind == N_NEG ? -x : x);
        } else if (a->type == TPL_FLOAT) {
            *out = tpl_float(n->kind == N_NEG ? -a->u.d : a->u.d);
        } else if (tpli_is_undef(a)) {
            r = undefined_error(c, n, a);
        } else {
            r = tpli_fail(c, n, "bad operand type for unary %s: '%s'", n->kind == N_NEG ? "-" : "+",
                          tpli_type_name(a));
        }
        break;
    case N_NOT:
        if ((r = eval(c, n->a, &a)) != R_OK)
            return r;
        *out = tpl_bool(!tpl_truthy(a));
        break;
    case N_AND:
    case N_OR:
        /* Python semantics: the deciding operand is the value */
        if ((r = eval(c, n->a, &a)) != R_OK)
            return r;
        if (tpl_truthy(a) == (n->kind == N_OR)) {
            *out = a;
            return R_OK;
        }
        tpl_unref(a);
        return eval(c, n->b, out);
    case N_BINOP:
        if ((r = eval2(c, n, &a, &b)) != R_OK)
            return r;
        r = arith(c, n, n->op, a, b, out);
        break;
    case N_COMPARE: {
        bool res = false;
        if ((r = eval2(c, n, &a, &b)) != R_OK)
            return r;
        r = compare(c, n, n->op, a, b, &res);
        if (r == R_OK)
            *out = tpl_bool(res);
        break;
    }
    case N_CMPCHAIN:
        return eval_chain(c, n, out);
    case N_CONCAT:
        if ((r = eval2(c, n, &a, &b)) != R_OK)
            return r;
        r = concat(c, n, a, b, out);
        break;
    case N_COND:
        if ((r = eval(c, n->b, &a)) != R_OK)
            return r;
        if (tpl_truthy(a))
            r = eval(c, n->a, out);
        else if (n->c)
            r = eval(c, n->c, out);
        else
            *out = tpli_undef_soft(NULL); /* "=" if inclusive: "" when false */
        break;
    default:
        r = tpli_fail(c, n, "internal error: node %d is not an expression", (int)n->kind);
    }
    tpl_unref(a);
    tpl_unref(b);
    return r;
}

/* ---- statements ---- */

/* binds loop/set targets; unpacks when there are several names; takes v */
static int bind_targets(tpli_ctx *c, const tpli_node *n, tpl_value *v)
{
    size_t i;

    if (n->nnames == 1) {
        assign(c, n->names[0], v);
        return R_OK;
    }
    if (tpl_typeof(v) != TPL_LIST || v->u.list.len != n->nnames) {
        int r = tpli_fail(c, n, "cannot unpack %s of %zu into %zu names", tpli_type_name(v),
                          tpl_typeof(v) == TPL_LIST ? v->u.list.len : (size_t)1, n->nnames);
        tpl_unref(v);
        return r;
    }
    for (i = 0; i < n->nnames; i++)
        assign(c, n->names[i], tpl_ref(v->u.list.items[i]));
    tpl_unref(v);
    return R_OK;
}

static int exec_for(tpli_ctx *c, const tpli_node *n, buf *out)
{
    tpl_value *it = NULL, *items = NULL, *loop = NULL;
    tpli_frame f = {NULL, c->scope, NULL};
    size_t i, len;
    int r;

    if ((r = eval(c, n->a, &it)) != R_OK)
        return r;
    r = tpli_iter(c, n->a, it, &items);
    tpl_unref(it);
    if (r != R_OK)
        return r;
    c->scope = &f;
    if (n->d) { /* for x in xs if cond: filter first, loop.length counts the kept */
        tpl_value *kept = tpl_list_new();
        for (i = 0; i < items->u.list.len && r == R_OK; i++) {
            tpl_value *cond;
            if ((r = bind_targets(c, n, tpl_ref(items->u.list.items[i]))) != R_OK)
                break;
            if ((r = eval(c, n->d, &cond)) != R_OK)
                break;
            if (tpl_truthy(cond))
                tpl_list_push(kept, tpl_ref(items->u.list.items[i]));
            tpl_unref(cond);
        }
        tpl_unref(items);
        items = kept;
        if (r != R_OK)
            goto out;
    }
    len = items->u.list.len;
    if (len) {
        loop = tpl_dict_new();
        tpl_dict_set(loop, "length", tpl_int((long long)len));
        assign(c, "loop", tpl_ref(loop));
    }
    for (i = 0; i < len && i < items->u.list.len; i++) {
        tpl_value *item = items->u.list.items[i];
        if (loop->refs > 2) {
            /* the body kept `loop` (in a list, a namespace): give the next
             * iteration its own, so that setting previtem can never close a
             * reference cycle through what the body built */
            tpl_value *fresh = tpl_dict_new();
            tpl_dict_set(fresh, "length", tpl_int((long long)len));
            tpl_unref(loop);
            loop = fresh;
            assign(c, "loop", tpl_ref(loop));
        }
        tpl_dict_set(loop, "index", tpl_int((long long)i + 1));
        tpl_dict_set(loop, "index0", tpl_int((long long)i));
        tpl_dict_set(loop, "revindex", tpl_int((long long)(len - i)));
        tpl_dict_set(loop, "revindex0", tpl_int((long long)(len - i - 1)));
        tpl_dict_set(loop, "first", tpl_bool(i == 0));
        tpl_dict_set(loop, "last", tpl_bool(i + 1 == len));
        tpl_dict_set(loop, "previtem", i ? tpl_ref(items->u.list.items[i - 1]) : tpli_undef(NULL));
        tpl_dict_set(loop, "nextitem",
                     i + 1 < len ? tpl_ref(items->u.list.items[i + 1]) : tpli_undef(NULL));
        if ((r = bind_targets(c, n, tpl_ref(item))) != R_OK)
            goto out;
        if ((r = render_body(c, n->b, out)) != R_OK)
            goto out;
    }
    if (len == 0 && n->c)
        r = render_body(c, n->c, out);
out:
    c->scope = f.parent;
    tpl_unref(f.vars);
    tpl_unref(loop);
    tpl_unref(items);
    return r;
}

/* {% set ns.attr = v %} and {% set ns.attr %}v{% endset %}; takes v */
static int set_attribute(tpli_ctx *c, const tpli_node *n, tpl_value *v)
{
    tpl_value *obj = NULL;
    int r;

    if ((r = eval(c, n->b, &obj)) != R_OK) {
        tpl_unref(v);
        return r;
    }
    if (tpl_typeof(obj) != TPL_DICT) {
        r = tpli_fail(c, n, "cannot assign attribute \"%s\" on %s \"%s\"", n->name,
                      tpli_type_name(obj), n->b->name);
        tpl_unref(v);
    } else if (!tpli_no_cycle(c, n, obj, v) || !tpli_dict_room(c, n, obj, n->name)) {
        r = R_ERR;
        tpl_unref(v);
    } else {
        tpl_dict_set(obj, n->name, v);
    }
    tpl_unref(obj);
    return r;
}

static int exec_set(tpli_ctx *c, const tpli_node *n)
{
    tpl_value *v;
    int r;

    if ((r = eval(c, n->a, &v)) != R_OK)
        return r;
    if (!n->b)
        return bind_targets(c, n, v);
    return set_attribute(c, n, v);
}

static int output_value(tpli_ctx *c, const tpli_node *n, tpl_value *v, buf *out)
{
    if (!tpl_to_text(v, out))
        return tpli_out_fail(c, n);
    return R_OK;
}

static int exec(tpli_ctx *c, const tpli_node *n, buf *out)
{
    tpl_value *v = NULL;
    int r = R_OK;

    switch (n->kind) {
    case N_TEXT:
        if (!buf_append(out, n->name, n->len))
            return tpli_out_fail(c, n);
        return R_OK;
    case N_OUTPUT:
        if ((r = eval(c, n->a, &v)) != R_OK)
            return r;
        if (c->env->strict && tpli_is_strict_undef(v))
            r = undefined_error(c, n->a, v);
        else
            r = output_value(c, n, v, out);
        break;
    case N_IF:
        if ((r = eval(c, n->a, &v)) != R_OK)
            return r;
        if (tpl_truthy(v))
            r = render_body(c, n->b, out);
        else if (n->c)
            r = n->c->kind == N_IF ? exec(c, n->c, out) : render_body(c, n->c, out);
        break;
    case N_FOR:
        return exec_for(c, n, out);
    case N_SET:
        return exec_set(c, n);
    case N_SETBLOCK: {
        buf b;
        buf_init(&b, c->outmax);
        r = render_body(c, n->a, &b);
        if (r == R_OK && n->b)
            r = set_attribute(c, n, buf_to_value(&b));
        else if (r == R_OK)
            assign(c, n->names[0], buf_to_value(&b));
        buf_free(&b);
        return r;
    }
    case N_MACRO:
        assign(c, n->name, tpli_func_macro(n->name, n, c->tpl, c->id));
        return R_OK;
    case N_CALLBLOCK: {
        struct tpli_closure clo = {n, c->tpl, c->scope};
        tpl_value *caller = tpl_func_new("caller", NULL, NULL);
        caller->u.fn.kind = FN_CALLER;
        caller->u.fn.clo = &clo;
        r = eval_call(c, n->a, caller, &v);
        caller->u.fn.clo = NULL; /* it may outlive the block: disarm */
        tpl_unref(caller);
        if (r == R_OK && !(tpl_typeof(v) == TPL_NONE))
            r = output_value(c, n, v, out);
        break;
    }
    case N_DO:
        r = eval(c, n->a, &v);
        break;
    default:
        return tpli_fail(c, n, "internal error: node %d is not a statement", (int)n->kind);
    }
    tpl_unref(v);
    return r;
}

static int render_body(tpli_ctx *c, const tpli_node *body, buf *out)
{
    size_t i;
    int r;

    for (i = 0; i < body->nkids; i++)
        if ((r = exec(c, body->kids[i], out)) != R_OK)
            return r;
    return R_OK;
}

/* ---- public entry points ---- */

tpl_env *tpl_env_new(void)
{
    tpl_env *env = xmalloc(sizeof(*env));

    env->globals = tpl_dict_new();
    env->builtins = tpli_builtins_new();
    tpl_dict_set(env->builtins, "return", tpl_func_new("return", b_return, NULL));
    tpl_dict_set(env->builtins, "print", tpl_func_new("print", b_print, env));
    env->active = NULL;
    env->next_id = 0;
    env->strict = false;
    env->logfn = NULL;
    env->logud = NULL;
    return env;
}

void tpl_env_free(tpl_env *env)
{
    if (!env)
        return;
    tpl_unref(env->globals);
    tpl_unref(env->builtins);
    free(env);
}

void tpl_env_set(tpl_env *env, const char *name, tpl_value *v)
{
    tpl_dict_set(env->globals, name, v);
}

tpl_value *tpl_env_get(tpl_env *env, const char *name)
{
    return tpl_dict_get(env->globals, name);
}

void tpl_env_set_strict_undefined(tpl_env *env, bool strict)
{
    env->strict = strict;
}

void tpl_env_set_log(tpl_env *env, tpl_log_fn fn, void *ud)
{
    env->logfn = fn;
    env->logud = ud;
}

void tpl_env_add_macros(tpl_env *env, const tpl_template *t, const char *ns)
{
    size_t i;
    tpl_value *nsd = NULL;

    if (ns) {
        nsd = tpl_dict_get(env->globals, ns);
        if (tpl_typeof(nsd) != TPL_DICT) {
            nsd = tpl_dict_new();
            tpl_dict_set(env->globals, ns, nsd);
        }
    }
    for (i = 0; i < t->root->nkids; i++) {
        const tpli_node *m = t->root->kids[i];
        tpl_value *fn;
        if (m->kind != N_MACRO)
            continue;
        fn = tpli_func_macro(m->name, m, t, 0);
        if (nsd)
            tpl_dict_set(nsd, m->name, tpl_ref(fn));
        tpl_dict_set(env->globals, m->name, fn);
    }
}

static void ctx_begin(tpli_ctx *c, tpl_env *env, const tpl_template *t, tpli_frame *root,
                      tpl_value *locals, size_t outmax, cs_error *err)
{
    memset(c, 0, sizeof(*c));
    c->env = env;
    c->tpl = t;
    c->root = root;
    c->scope = root;
    c->locals = tpl_typeof(locals) == TPL_DICT ? locals : NULL;
    c->id = ++env->next_id;
    c->err = err ? err : &c->own_err;
    c->err->code = CS_OK;
    c->err->msg[0] = '\0';
    c->outmax = outmax ? outmax : BUF_DEFAULT_MAX;
    c->reach_budget = TPLI_REACH_MAX;
    c->prev = env->active;
    env->active = c;
}

static void ctx_end(tpli_ctx *c)
{
    tpl_unref(c->ret);
    c->env->active = c->prev;
}

cs_result tpl_render(const tpl_template *t, tpl_env *env, tpl_value *locals, buf *out,
                     cs_error *err)
{
    tpli_ctx c;
    tpli_frame root = {NULL, NULL, NULL};
    int r;

    root.owner = t->root;
    ctx_begin(&c, env, t, &root, locals, out->max, err);
    r = render_body(&c, t->root, out);
    if (r == R_RETURN)
        r = tpli_fail(&c, NULL, "%s: return() used outside of a macro", t->filename);
    ctx_end(&c);
    tpl_unref(root.vars);
    return r == R_OK ? CS_OK : c.err->code;
}

/*
 * From a native (an active render on env): the call runs in that render, so
 * the macro sees its locals and counts towards its recursion limit.
 * Otherwise in a fresh context with only the globals.
 */
cs_result tpl_call_value(tpl_env *env, tpl_value *fn, const tpl_args *args, tpl_value **out,
                         cs_error *err)
{
    tpli_ctx fresh, *c = env->active;
    tpli_frame root = {NULL, NULL, NULL};
    cs_error *saved = NULL, local;
    bool own = false;
    int r;

    *out = NULL;
    if (!err)
        err = &local;
    if (c) {
        saved = c->err;
        c->err = err;
    } else {
        ctx_begin(&fresh, env, NULL, &root, NULL, 0, err);
        c = &fresh;
        own = true;
    }
    err->code = CS_OK;
    if (tpl_typeof(fn) != TPL_FUNC) {
        r = tpli_fail(c, NULL, "\"%s\" object is not callable", tpli_type_name(fn));
    } else {
        r = call_func(c, NULL, fn, args, NULL, NULL, out);
        if (r == R_RETURN) { /* return() called by a native itself */
            *out = c->ret ? c->ret : tpl_none();
            c->ret = NULL;
            r = R_OK;
        }
    }
    if (own) {
        ctx_end(&fresh);
        tpl_unref(root.vars);
    } else {
        c->err = saved;
    }
    return r == R_OK ? CS_OK : err->code;
}

cs_result tpl_call_render_caller(tpl_call *call, buf *out, cs_error *err)
{
    tpli_ctx *c = call->ctx;
    cs_error *saved = c->err;
    cs_error local;
    int r;

    if (!err)
        err = &local;
    if (!call->caller || !call->caller->u.fn.clo)
        return cs_fail(err, CS_INVALID, "caller() is not available: not called from a call block");
    c->err = err;
    r = render_closure(c, call->node, call->caller->u.fn.clo, NULL, out);
    if (r == R_RETURN)
        r = tpli_fail(c, call->node, "return() used inside a call block body");
    c->err = saved;
    return r == R_OK ? CS_OK : err->code;
}

const char *tpl_call_where(const tpl_call *call)
{
    tpl_call *mut = (tpl_call *)call;

    if (call->node && call->ctx->tpl)
        snprintf(mut->where, sizeof(mut->where), "%s:%d:%d", call->ctx->tpl->filename,
                 call->node->line, call->node->col);
    else
        snprintf(mut->where, sizeof(mut->where), "%s",
                 call->ctx->tpl ? call->ctx->tpl->filename : "<call>");
    return call->where;
}

tpl_env *tpl_call_env(tpl_call *call)
{
    return call->ctx->env;
}

tpl_value *tpl_call_self(const tpl_call *call)
{
    return call->self;
}
