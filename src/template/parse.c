/*
 * parse.c - compiles tokens into the AST that eval.c walks:
 * statements by recursive descent over the tag stream, expressions with
 * Jinja's precedence (lowest first): `a if c else b`, or, and, not,
 * comparisons and in, + -, ~, * / // %, **, unary - +, then filters and
 * `is` tests, then postfix .attr [item] (call).
 *
 * Everything the AST holds (nodes, names, decoded strings, constants) lives
 * in the template's arena and is freed with it.  Filters and tests are
 * resolved here, so an unknown one is a compile error.  Nesting is bounded
 * (MAX_DEPTH) so hostile input cannot exhaust the stack.
 */
#include "template/filter.h"
#include "template/internal.h"
#include "template/lex.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 200
/* Height of an expression tree.  Chains (a ~ b ~ c ..., x|f|g ..., a.b.c ...)
 * are parsed by loops, so MAX_DEPTH does not bound them, but the evaluator
 * recurses once per level: past this height a template is refused at compile
 * time ("expression nested too deeply"), whatever the stack. */
#define EXPR_DEPTH_MAX 1000

typedef struct {
    tpl_template *t;
    const tpli_token *tk;
    size_t n, p;
    cs_error *err;
    int depth;
    tpli_node *macro; /* the macro being parsed, for varargs/kwargs/caller */
    int bodies;       /* statement bodies open: 1 at the top level of the file */
    bool failed;
    void **blocks; /* tpl_block * of the top-level blocks, in order */
    size_t nblocks, capblocks;
} parser;

/* a growable array of pointers, copied into the arena when done */
typedef struct {
    void **v;
    size_t n, cap;
} vec;

static void vec_push(vec *v, void *p)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 8;
        v->v = xrealloc(v->v, v->cap * sizeof(void *));
    }
    v->v[v->n++] = p;
}

static void *vec_done(parser *P, vec *v)
{
    void *out = NULL;

    if (v->n) {
        out = tpli_arena_alloc(&P->t->arena, v->n * sizeof(void *));
        memcpy(out, v->v, v->n * sizeof(void *));
    }
    free(v->v);
    v->v = NULL;
    return out;
}

static const tpli_token *cur(parser *P)
{
    return &P->tk[P->p];
}

static const tpli_token *next(parser *P)
{
    const tpli_token *tk = &P->tk[P->p];

    if (P->p + 1 < P->n)
        P->p++;
    return tk;
}

static void *fail_at(parser *P, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void *fail_at(parser *P, int line, int col, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (P->failed)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cs_fail(P->err, CS_INVALID, "%s:%d:%d: %s", P->t->filename, line, col, msg);
    P->failed = true;
    return NULL;
}

/* how a token is named in messages */
static const char *describe(const tpli_token *tk, char *tmp, size_t n)
{
    switch (tk->kind) {
    case TK_EOF:
        return "end of template";
    case TK_VAR_END:
        return "}}";
    case TK_BLOCK_END:
        return "%}";
    case TK_VAR_BEGIN:
        return "{{";
    case TK_BLOCK_BEGIN:
        return "{%";
    case TK_STRING:
        return "string";
    case TK_TEXT:
        return "text";
    default:
        snprintf(tmp, n, "%.*s", (int)(tk->len > 40 ? 40 : tk->len), tk->s);
        return tmp;
    }
}

static void *unexpected(parser *P, const char *expected)
{
    char tmp[64];
    const tpli_token *tk = cur(P);

    if (expected)
        return fail_at(P, tk->line, tk->col, "expected %s, got \"%s\"", expected,
                       describe(tk, tmp, sizeof(tmp)));
    return fail_at(P, tk->line, tk->col, "unexpected \"%s\"", describe(tk, tmp, sizeof(tmp)));
}

static bool is_op(const tpli_token *tk, const char *op)
{
    return tk->kind == TK_OP && tk->len == strlen(op) && memcmp(tk->s, op, tk->len) == 0;
}

static bool is_name(const tpli_token *tk, const char *name)
{
    return tk->kind == TK_NAME && tk->len == strlen(name) && memcmp(tk->s, name, tk->len) == 0;
}

static bool accept_op(parser *P, const char *op)
{
    if (!is_op(cur(P), op))
        return false;
    next(P);
    return true;
}

static bool expect_op(parser *P, const char *op)
{
    char want[16];

    if (accept_op(P, op))
        return true;
    snprintf(want, sizeof(want), "\"%s\"", op);
    unexpected(P, want);
    return false;
}

static const char *arena_name(parser *P, const tpli_token *tk)
{
    char *s = tpli_arena_alloc(&P->t->arena, tk->len + 1);

    memcpy(s, tk->s, tk->len);
    s[tk->len] = '\0';
    return s;
}

static tpli_node *node_new(parser *P, tpli_node_kind kind, const tpli_token *at)
{
    tpli_node *n = tpli_arena_alloc(&P->t->arena, sizeof(*n));

    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->line = at->line;
    n->col = at->col;
    return n;
}

/* Sets n's height from its children and refuses a tree past
 * EXPR_DEPTH_MAX; returns n or NULL (failed). */
static tpli_node *sized(parser *P, tpli_node *n)
{
    const tpli_node *ch[4];
    int h = 0, k;
    size_t i;

    if (!n)
        return NULL;
    ch[0] = n->a;
    ch[1] = n->b;
    ch[2] = n->c;
    ch[3] = n->d;
    for (k = 0; k < 4; k++)
        if (ch[k] && ch[k]->depth > h)
            h = ch[k]->depth;
    for (i = 0; i < n->nkids; i++)
        if (n->kids[i] && n->kids[i]->depth > h)
            h = n->kids[i]->depth;
    n->depth = h + 1;
    if (n->depth > EXPR_DEPTH_MAX)
        return fail_at(P, n->line, n->col, "expression nested too deeply (limit %d)",
                       EXPR_DEPTH_MAX);
    return n;
}

/* a constant owned by the template; evaluation hands out copies */
static tpl_value *const_new(parser *P, tpl_type type)
{
    tpl_value *v = tpli_arena_alloc(&P->t->arena, sizeof(*v));

    memset(v, 0, sizeof(*v));
    v->refs = -1;
    v->type = (unsigned char)type;
    return v;
}

static tpli_node *parse_expr(parser *P);
static tpli_node *parse_or(parser *P);
static tpli_node *parse_unary(parser *P, bool with_filter);
static tpli_node *parse_primary_postfix(parser *P);

static bool enter(parser *P)
{
    if (++P->depth > MAX_DEPTH) {
        fail_at(P, cur(P)->line, cur(P)->col, "nesting too deep (limit %d)", MAX_DEPTH);
        return false;
    }
    return true;
}

/*
 * Call arguments after "(": positional expressions, then name=expr.  Fills
 * n->kids, n->kwnames, n->nkids.
 */
static bool parse_args(parser *P, tpli_node *n)
{
    vec kids = {0}, kws = {0};
    bool kwseen = false;

    while (!is_op(cur(P), ")")) {
        const char *kw = NULL;
        tpli_node *e;
        if (is_op(cur(P), "*") || is_op(cur(P), "**")) {
            /* f(*list, **dict): unpacked when called */
            kw = is_op(next(P), "*") ? "*" : "**";
            if (kw[1])
                kwseen = true;
        } else if (cur(P)->kind == TK_NAME &&
                   is_op(&P->tk[P->p + 1 < P->n ? P->p + 1 : P->p], "=")) {
            kw = arena_name(P, next(P));
            next(P);
            kwseen = true;
        } else if (kwseen) {
            fail_at(P, cur(P)->line, cur(P)->col, "positional argument follows keyword argument");
            goto error;
        }
        e = parse_expr(P);
        if (!e)
            goto error;
        vec_push(&kids, e);
        vec_push(&kws, (void *)kw);
        if (!accept_op(P, ","))
            break;
    }
    if (!expect_op(P, ")"))
        goto error;
    n->nkids = kids.n;
    n->kids = vec_done(P, &kids);
    n->kwnames = vec_done(P, &kws);
    return true;
error:
    free(kids.v);
    free(kws.v);
    return false;
}

static tpli_node *parse_primary(parser *P)
{
    const tpli_token *tk = cur(P);
    tpli_node *n;

    if (tk->kind == TK_NAME) {
        next(P);
        n = node_new(P, N_CONST, tk);
        if (is_name(tk, "true") || is_name(tk, "True")) {
            n->value = tpl_bool(true);
        } else if (is_name(tk, "false") || is_name(tk, "False")) {
            n->value = tpl_bool(false);
        } else if (is_name(tk, "none") || is_name(tk, "None")) {
            n->value = tpl_none();
        } else {
            n->kind = N_NAME;
            n->name = arena_name(P, tk);
            if (P->macro) {
                if (strcmp(n->name, "varargs") == 0)
                    P->macro->op |= MF_VARARGS;
                else if (strcmp(n->name, "kwargs") == 0)
                    P->macro->op |= MF_KWARGS;
                else if (strcmp(n->name, "caller") == 0)
                    P->macro->op |= MF_CALLER;
            }
        }
        return n;
    }
    if (tk->kind == TK_STRING) {
        buf b;
        char *s;
        tpl_value *v;
        /* adjacent literals concatenate, as in Python */
        buf_init(&b, 0);
        while (cur(P)->kind == TK_STRING) {
            buf_append(&b, cur(P)->s, cur(P)->len);
            next(P);
        }
        n = node_new(P, N_CONST, tk);
        v = const_new(P, TPL_STR);
        s = tpli_arena_alloc(&P->t->arena, b.len + 1);
        if (b.len)
            memcpy(s, b.data, b.len);
        s[b.len] = '\0';
        v->u.str.s = s;
        v->u.str.len = b.len;
        buf_free(&b);
        n->value = v;
        return n;
    }
    if (tk->kind == TK_INT || tk->kind == TK_FLOAT) {
        next(P);
        n = node_new(P, N_CONST, tk);
        n->value = const_new(P, tk->kind == TK_INT ? TPL_INT : TPL_FLOAT);
        if (tk->kind == TK_INT)
            n->value->u.i = tk->ival;
        else
            n->value->u.d = tk->fval;
        return n;
    }
    if (is_op(tk, "(")) {
        vec kids = {0};
        tpli_node *e;
        next(P);
        if (accept_op(P, ")")) {
            n = node_new(P, N_TUPLE, tk);
            return n;
        }
        e = parse_expr(P);
        if (!e)
            return NULL;
        if (!is_op(cur(P), ",")) {
            if (!expect_op(P, ")"))
                return NULL;
            return e;
        }
        vec_push(&kids, e);
        while (accept_op(P, ",")) {
            if (is_op(cur(P), ")"))
                break;
            e = parse_expr(P);
            if (!e) {
                free(kids.v);
                return NULL;
            }
            vec_push(&kids, e);
        }
        if (!expect_op(P, ")")) {
            free(kids.v);
            return NULL;
        }
        n = node_new(P, N_TUPLE, tk);
        n->nkids = kids.n;
        n->kids = vec_done(P, &kids);
        return sized(P, n);
    }
    if (is_op(tk, "[")) {
        vec kids = {0};
        next(P);
        while (!is_op(cur(P), "]")) {
            tpli_node *e = parse_expr(P);
            if (!e) {
                free(kids.v);
                return NULL;
            }
            vec_push(&kids, e);
            if (!accept_op(P, ","))
                break;
        }
        if (!expect_op(P, "]")) {
            free(kids.v);
            return NULL;
        }
        n = node_new(P, N_LIST, tk);
        n->nkids = kids.n;
        n->kids = vec_done(P, &kids);
        return sized(P, n);
    }
    if (is_op(tk, "{")) {
        vec kids = {0}; /* key, value, key, value... */
        next(P);
        while (!is_op(cur(P), "}")) {
            tpli_node *k = parse_expr(P), *v;
            if (!k || !expect_op(P, ":") || !(v = parse_expr(P))) {
                free(kids.v);
                return NULL;
            }
            vec_push(&kids, k);
            vec_push(&kids, v);
            if (!accept_op(P, ","))
                break;
        }
        if (!expect_op(P, "}")) {
            free(kids.v);
            return NULL;
        }
        n = node_new(P, N_DICT, tk);
        n->nkids = kids.n;
        n->kids = vec_done(P, &kids);
        return sized(P, n);
    }
    return unexpected(P, NULL);
}

static tpli_node *parse_postfix(parser *P, tpli_node *n)
{
    while (n) {
        const tpli_token *tk = cur(P);
        if (is_op(tk, ".")) {
            tpli_node *a;
            next(P);
            if (cur(P)->kind == TK_NAME) {
                a = node_new(P, N_ATTR, cur(P));
                a->name = arena_name(P, next(P));
                a->a = n;
            } else if (cur(P)->kind == TK_INT) {
                a = node_new(P, N_ITEM, cur(P));
                a->b = node_new(P, N_CONST, cur(P));
                a->b->value = const_new(P, TPL_INT);
                a->b->value->u.i = next(P)->ival;
                a->a = n;
            } else {
                return unexpected(P, "an attribute name");
            }
            n = sized(P, a);
        } else if (is_op(tk, "[")) {
            tpli_node *s = NULL, *e = NULL, *st = NULL, *r;
            next(P);
            if (!is_op(cur(P), ":") && !(s = parse_expr(P)))
                return NULL;
            if (accept_op(P, ":")) {
                if (!is_op(cur(P), "]") && !is_op(cur(P), ":") && !(e = parse_expr(P)))
                    return NULL;
                if (accept_op(P, ":") && !is_op(cur(P), "]") && !(st = parse_expr(P)))
                    return NULL;
                r = node_new(P, N_SLICE, tk);
                r->a = n;
                r->b = s;
                r->c = e;
                r->d = st;
            } else {
                r = node_new(P, N_ITEM, tk);
                r->a = n;
                r->b = s;
            }
            if (!expect_op(P, "]"))
                return NULL;
            n = sized(P, r);
        } else if (is_op(tk, "(")) {
            tpli_node *c = node_new(P, N_CALL, tk);
            /* errors about a call point at what is called */
            c->line = n->line;
            c->col = n->col;
            next(P);
            c->a = n;
            if (!parse_args(P, c))
                return NULL;
            n = sized(P, c);
        } else {
            break;
        }
    }
    return n;
}

static tpli_node *parse_primary_postfix(parser *P)
{
    /* recursion goes through parse_expr or parse_unary, which count depth */
    return parse_postfix(P, parse_primary(P));
}

/* "| filter(args)" and "is [not] test(args)" chains */
static tpli_node *parse_filters(parser *P, tpli_node *n)
{
    while (n) {
        if (is_op(cur(P), "|")) {
            const tpli_token *name;
            tpli_node *f;
            next(P);
            name = cur(P);
            if (name->kind != TK_NAME)
                return unexpected(P, "a filter name");
            next(P);
            f = node_new(P, N_FILTER, name);
            f->name = arena_name(P, name);
            f->op = tpli_filter_find(name->s, name->len);
            if (f->op < 0)
                return fail_at(P, name->line, name->col, "unknown filter \"%s\"", f->name);
            f->a = n;
            if (accept_op(P, "(") && !parse_args(P, f))
                return NULL;
            n = sized(P, f);
        } else if (is_name(cur(P), "is")) {
            const tpli_token *name;
            tpli_node *t;
            bool neg = false;
            next(P);
            if (is_name(cur(P), "not")) {
                next(P);
                neg = true;
            }
            name = cur(P);
            if (name->kind != TK_NAME && !is_op(name, "==") && !is_op(name, "!=") &&
                !is_op(name, "<") && !is_op(name, ">") && !is_op(name, "<=") && !is_op(name, ">="))
                return unexpected(P, "a test name");
            next(P);
            t = node_new(P, N_TEST, name);
            t->name = arena_name(P, name);
            t->op = tpli_test_find(name->s, name->len);
            if (t->op < 0)
                return fail_at(P, name->line, name->col, "unknown test \"%s\"", t->name);
            t->a = n;
            t->len = neg; /* is not */
            if (accept_op(P, "(")) {
                if (!parse_args(P, t))
                    return NULL;
            } else {
                const tpli_token *c = cur(P);
                bool arg = c->kind == TK_STRING || c->kind == TK_INT || c->kind == TK_FLOAT ||
                           is_op(c, "[") || is_op(c, "{") ||
                           (c->kind == TK_NAME && !is_name(c, "else") && !is_name(c, "or") &&
                            !is_name(c, "and") && !is_name(c, "if") && !is_name(c, "in") &&
                            !is_name(c, "not") && !is_name(c, "is"));
                if (arg) {
                    tpli_node *e = parse_primary_postfix(P);
                    if (!e)
                        return NULL;
                    t->kids = tpli_arena_alloc(&P->t->arena, sizeof(tpli_node *));
                    t->kwnames = tpli_arena_alloc(&P->t->arena, sizeof(char *));
                    t->kids[0] = e;
                    t->kwnames[0] = NULL;
                    t->nkids = 1;
                }
            }
            n = sized(P, t);
        } else {
            break;
        }
    }
    return n;
}

static tpli_node *parse_unary(parser *P, bool with_filter)
{
    const tpli_token *tk = cur(P);
    tpli_node *n;

    if (!enter(P))
        return NULL;
    if (is_op(tk, "-") || is_op(tk, "+")) {
        next(P);
        n = node_new(P, is_op(tk, "-") ? N_NEG : N_POS, tk);
        n->a = parse_unary(P, false);
        n = n->a ? sized(P, n) : NULL;
    } else {
        n = parse_primary_postfix(P);
    }
    if (with_filter)
        n = parse_filters(P, n);
    P->depth--;
    return n;
}

static tpli_node *binop(parser *P, const tpli_token *tk, int op, tpli_node *a, tpli_node *b)
{
    tpli_node *n;

    if (!a || !b)
        return NULL;
    n = node_new(P, N_BINOP, tk);
    n->op = op;
    n->a = a;
    n->b = b;
    return sized(P, n);
}

static tpli_node *parse_pow(parser *P)
{
    tpli_node *n = parse_unary(P, true);

    while (n && is_op(cur(P), "**")) {
        const tpli_token *tk = next(P);
        n = binop(P, tk, OP_POW, n, parse_unary(P, true));
    }
    return n;
}

static tpli_node *parse_math2(parser *P)
{
    tpli_node *n = parse_pow(P);

    for (;;) {
        const tpli_token *tk = cur(P);
        int op;
        if (!n)
            return NULL;
        if (is_op(tk, "*"))
            op = OP_MUL;
        else if (is_op(tk, "/"))
            op = OP_DIV;
        else if (is_op(tk, "//"))
            op = OP_FLOORDIV;
        else if (is_op(tk, "%"))
            op = OP_MOD;
        else
            return n;
        next(P);
        n = binop(P, tk, op, n, parse_pow(P));
    }
}

/* a left-associative chain a OP b OP c of two-child nodes of KIND, each
 * operand parsed by SUB; IS_OP_TOK tells the operator token */
static tpli_node *parse_chain(parser *P, tpli_node *(*sub)(parser *),
                              bool (*is_op_tok)(const tpli_token *), tpli_node_kind kind)
{
    tpli_node *n = sub(P);

    while (n && is_op_tok(cur(P))) {
        const tpli_token *tk = next(P);
        tpli_node *b = sub(P), *c;
        if (!b)
            return NULL;
        c = node_new(P, kind, tk);
        c->a = n;
        c->b = b;
        n = sized(P, c);
    }
    return n;
}

static bool is_tilde(const tpli_token *tk)
{
    return is_op(tk, "~");
}

static tpli_node *parse_concat(parser *P)
{
    return parse_chain(P, parse_math2, is_tilde, N_CONCAT);
}

static tpli_node *parse_math1(parser *P)
{
    tpli_node *n = parse_concat(P);

    while (n && (is_op(cur(P), "+") || is_op(cur(P), "-"))) {
        const tpli_token *tk = next(P);
        n = binop(P, tk, is_op(tk, "+") ? OP_ADD : OP_SUB, n, parse_concat(P));
    }
    return n;
}

/* comparisons; a chain a < b < c means (a < b) and (b < c) with b
 * evaluated once, as in Python */
static tpli_node *parse_compare(parser *P)
{
    tpli_node *n = parse_math1(P), *c;
    const tpli_token *first = NULL;
    vec kids = {0}, ops = {0};
    size_t i;

    for (;;) {
        const tpli_token *tk = cur(P);
        int op;
        tpli_node *b;
        if (!n)
            goto error;
        if (is_op(tk, "=="))
            op = CMP_EQ;
        else if (is_op(tk, "!="))
            op = CMP_NE;
        else if (is_op(tk, "<"))
            op = CMP_LT;
        else if (is_op(tk, "<="))
            op = CMP_LE;
        else if (is_op(tk, ">"))
            op = CMP_GT;
        else if (is_op(tk, ">="))
            op = CMP_GE;
        else if (is_name(tk, "in"))
            op = CMP_IN;
        else if (is_name(tk, "not") && P->p + 1 < P->n && is_name(&P->tk[P->p + 1], "in"))
            op = CMP_NOTIN;
        else
            break;
        next(P);
        if (op == CMP_NOTIN)
            next(P);
        if (!(b = parse_math1(P)))
            goto error;
        if (!first)
            first = tk;
        if (!kids.n)
            vec_push(&kids, n);
        vec_push(&kids, b);
        vec_push(&ops, (void *)(intptr_t)op);
    }
    if (kids.n == 0)
        return n;
    if (kids.n == 2) { /* one comparison: the plain node */
        c = node_new(P, N_COMPARE, first);
        c->op = (int)(intptr_t)ops.v[0];
        c->a = kids.v[0];
        c->b = kids.v[1];
        free(kids.v);
        free(ops.v);
        return sized(P, c);
    }
    c = node_new(P, N_CMPCHAIN, first);
    c->ops = tpli_arena_alloc(&P->t->arena, ops.n * sizeof(int));
    for (i = 0; i < ops.n; i++)
        c->ops[i] = (int)(intptr_t)ops.v[i];
    free(ops.v);
    c->nkids = kids.n;
    c->kids = vec_done(P, &kids);
    return sized(P, c);
error:
    free(kids.v);
    free(ops.v);
    return NULL;
}

static tpli_node *parse_not(parser *P)
{
    const tpli_token *tk = cur(P);
    tpli_node *n;

    if (!is_name(tk, "not"))
        return parse_compare(P);
    if (!enter(P))
        return NULL;
    next(P);
    n = node_new(P, N_NOT, tk);
    n->a = parse_not(P);
    P->depth--;
    return n->a ? sized(P, n) : NULL;
}

static bool is_and(const tpli_token *tk)
{
    return is_name(tk, "and");
}

static bool is_or(const tpli_token *tk)
{
    return is_name(tk, "or");
}

static tpli_node *parse_and(parser *P)
{
    return parse_chain(P, parse_not, is_and, N_AND);
}

static tpli_node *parse_or(parser *P)
{
    return parse_chain(P, parse_and, is_or, N_OR);
}

static tpli_node *parse_expr(parser *P)
{
    tpli_node *n;

    if (!enter(P))
        return NULL;
    n = parse_or(P);
    while (n && is_name(cur(P), "if")) {
        const tpli_token *tk = next(P);
        tpli_node *c = node_new(P, N_COND, tk);
        c->a = n;
        c->b = parse_or(P);
        if (!c->b) {
            n = NULL;
            break;
        }
        if (is_name(cur(P), "else")) {
            next(P);
            c->c = parse_expr(P);
            if (!c->c) {
                n = NULL;
                break;
            }
        }
        n = sized(P, c);
    }
    P->depth--;
    return n;
}

/* an expression, or a tuple of them when followed by commas (set a, b = 1, 2) */
static tpli_node *parse_expr_tuple(parser *P)
{
    const tpli_token *tk = cur(P);
    tpli_node *n = parse_expr(P), *t;
    vec kids = {0};

    if (!n || !is_op(cur(P), ","))
        return n;
    vec_push(&kids, n);
    while (accept_op(P, ",")) {
        if (cur(P)->kind == TK_BLOCK_END || cur(P)->kind == TK_VAR_END)
            break;
        if (!(n = parse_expr(P))) {
            free(kids.v);
            return NULL;
        }
        vec_push(&kids, n);
    }
    t = node_new(P, N_TUPLE, tk);
    t->nkids = kids.n;
    t->kids = vec_done(P, &kids);
    return t;
}

/* ---- statements ---- */

static bool expect_block_end(parser *P)
{
    if (cur(P)->kind == TK_BLOCK_END) {
        next(P);
        return true;
    }
    unexpected(P, "end of statement \"%}\"");
    return false;
}

/* target names "a" or "a, b" (parenthesized or not) */
static bool parse_targets(parser *P, tpli_node *n)
{
    vec names = {0};
    bool paren = accept_op(P, "(");

    do {
        if (cur(P)->kind != TK_NAME) {
            free(names.v);
            unexpected(P, "a name");
            return false;
        }
        vec_push(&names, (void *)arena_name(P, next(P)));
    } while (accept_op(P, ","));
    if (paren && !expect_op(P, ")")) {
        free(names.v);
        return false;
    }
    n->nnames = names.n;
    n->names = vec_done(P, &names);
    return true;
}

static tpli_node *parse_body(parser *P, const char *const *ends, const tpli_token *opener,
                             const char *block);

static const char *const ENDS_IF[] = {"elif", "else", "endif", NULL};
static const char *const ENDS_ENDIF[] = {"endif", NULL};
static const char *const ENDS_FOR[] = {"else", "endfor", NULL};
static const char *const ENDS_ENDFOR[] = {"endfor", NULL};
static const char *const ENDS_SET[] = {"endset", NULL};
static const char *const ENDS_MACRO[] = {"endmacro", NULL};
static const char *const ENDS_TEST[] = {"endtest", NULL};
static const char *const ENDS_MATERIALIZATION[] = {"endmaterialization", NULL};
static const char *const ENDS_CALL[] = {"endcall", NULL};

/* after "{% if" or "{% elif": condition, body, then elif/else/endif */
static tpli_node *parse_if(parser *P, const tpli_token *opener)
{
    tpli_node *n = node_new(P, N_IF, opener);
    const tpli_token *kw;

    if (!(n->a = parse_expr(P)) || !expect_block_end(P))
        return NULL;
    if (!(n->b = parse_body(P, ENDS_IF, opener, "if")))
        return NULL;
    /* at "{%" of elif/else/endif */
    kw = &P->tk[P->p + 1];
    if (is_name(kw, "elif")) {
        const tpli_token *op2 = next(P);
        next(P);
        n->c = parse_if(P, op2);
        return n->c ? n : NULL;
    }
    if (is_name(kw, "else")) {
        next(P);
        next(P);
        if (!expect_block_end(P) || !(n->c = parse_body(P, ENDS_ENDIF, opener, "if")))
            return NULL;
    }
    next(P); /* {% */
    next(P); /* endif */
    return expect_block_end(P) ? n : NULL;
}

static tpli_node *parse_for(parser *P, const tpli_token *opener)
{
    tpli_node *n = node_new(P, N_FOR, opener);

    if (!parse_targets(P, n))
        return NULL;
    if (!is_name(cur(P), "in"))
        return unexpected(P, "\"in\"");
    next(P);
    if (!(n->a = parse_or(P)))
        return NULL;
    if (is_name(cur(P), "if")) {
        next(P);
        if (!(n->d = parse_expr(P)))
            return NULL;
    }
    if (is_name(cur(P), "recursive"))
        return fail_at(P, cur(P)->line, cur(P)->col, "recursive loops are not supported");
    if (!expect_block_end(P) || !(n->b = parse_body(P, ENDS_FOR, opener, "for")))
        return NULL;
    if (is_name(&P->tk[P->p + 1], "else")) {
        next(P);
        next(P);
        if (!expect_block_end(P) || !(n->c = parse_body(P, ENDS_ENDFOR, opener, "for")))
            return NULL;
    }
    next(P);
    next(P);
    return expect_block_end(P) ? n : NULL;
}

static tpli_node *parse_set(parser *P, const tpli_token *opener)
{
    tpli_node *n = node_new(P, N_SET, opener);

    if (cur(P)->kind == TK_NAME && is_op(&P->tk[P->p + 1], ".")) {
        /* set ns.attr = value */
        tpli_node *obj = node_new(P, N_NAME, cur(P));
        obj->name = arena_name(P, next(P));
        next(P);
        if (cur(P)->kind != TK_NAME)
            return unexpected(P, "an attribute name");
        n->b = obj;
        n->name = arena_name(P, next(P));
    } else if (!parse_targets(P, n)) {
        return NULL;
    }
    /* a block set: {% set x %}...{% endset %}, also {% set ns.attr %} */
    if (cur(P)->kind == TK_BLOCK_END && (n->b || n->nnames == 1)) {
        next(P);
        n->kind = N_SETBLOCK;
        if (!(n->a = parse_body(P, ENDS_SET, opener, "set")))
            return NULL;
        next(P);
        next(P);
        return expect_block_end(P) ? n : NULL;
    }
    if (!expect_op(P, "=") || !(n->a = parse_expr_tuple(P)))
        return NULL;
    return expect_block_end(P) ? n : NULL;
}

/* "(a, b=default)" for macros and call blocks */
static bool parse_params(parser *P, tpli_node *n)
{
    vec names = {0}, defs = {0};

    if (!expect_op(P, "("))
        return false;
    while (!is_op(cur(P), ")")) {
        tpli_node *def = NULL;
        if (cur(P)->kind != TK_NAME) {
            unexpected(P, "a parameter name");
            goto error;
        }
        vec_push(&names, (void *)arena_name(P, next(P)));
        if (accept_op(P, "=") && !(def = parse_expr(P)))
            goto error;
        vec_push(&defs, def);
        if (!accept_op(P, ","))
            break;
    }
    if (!expect_op(P, ")"))
        goto error;
    n->nnames = names.n;
    n->names = vec_done(P, &names);
    n->defaults = vec_done(P, &defs);
    return true;
error:
    free(names.v);
    free(defs.v);
    return false;
}

/* records a top-level block for tpl_block_get */
static tpl_block *add_block(parser *P, tpl_block_kind kind, const char *name, const char *macro,
                            int line)
{
    tpl_block *b = tpli_arena_alloc(&P->t->arena, sizeof(*b));

    memset(b, 0, sizeof(*b));
    b->kind = kind;
    b->name = name;
    b->macro = macro;
    b->line = line;
    if (P->nblocks == P->capblocks) {
        P->capblocks = P->capblocks ? P->capblocks * 2 : 8;
        P->blocks = xrealloc(P->blocks, P->capblocks * sizeof(void *));
    }
    P->blocks[P->nblocks++] = b;
    return b;
}

/* "prefix" + name (+ "_" + suffix) in the arena: dbt's macro names for
 * test and materialization blocks */
static const char *join_name(parser *P, const char *prefix, const char *name, const char *suffix)
{
    size_t n = strlen(prefix) + strlen(name) + (suffix ? strlen(suffix) + 1 : 0) + 1;
    char *s = tpli_arena_alloc(&P->t->arena, n);

    snprintf(s, n, "%s%s%s%s", prefix, name, suffix ? "_" : "", suffix ? suffix : "");
    return s;
}

static bool top_level(parser *P, const tpli_token *kw)
{
    if (P->bodies == 1)
        return true;
    fail_at(P, kw->line, kw->col, "\"%.*s\" blocks must be at the top level of a file",
            (int)kw->len, kw->s);
    return false;
}

/*
 * After "{% macro" or "{% test": name(params) %} body {% endmacro/endtest %}.
 * A test block is a macro named test_<name>, as dbt registers it.
 */
static tpli_node *parse_macro(parser *P, const tpli_token *opener, const tpli_token *kw)
{
    tpli_node *n = node_new(P, N_MACRO, opener), *outer = P->macro;
    bool test = is_name(kw, "test");
    const char *name;

    if (cur(P)->kind != TK_NAME)
        return unexpected(P, test ? "a test name" : "a macro name");
    name = arena_name(P, next(P));
    n->name = test ? join_name(P, "test_", name, NULL) : name;
    if (!parse_params(P, n) || !expect_block_end(P))
        return NULL;
    P->macro = n;
    n->a = parse_body(P, test ? ENDS_TEST : ENDS_MACRO, opener, test ? "test" : "macro");
    P->macro = outer;
    if (!n->a)
        return NULL;
    next(P);
    next(P);
    if (!expect_block_end(P))
        return NULL;
    if (P->bodies == 1)
        add_block(P, test ? TPL_BLOCK_TEST : TPL_BLOCK_MACRO, name, n->name, opener->line);
    return n;
}

/*
 * After "{% materialization": name, default %} or name, adapter='x'
 * [, supported_languages=[..]] %}, then the body up to endmaterialization.
 * It is a macro with no parameters named materialization_<name>_<adapter>.
 */
static tpli_node *parse_materialization(parser *P, const tpli_token *opener, const tpli_token *kw)
{
    tpli_node *n = node_new(P, N_MACRO, opener), *outer = P->macro;
    const char *name, *adapter = NULL;
    tpl_block *b;

    if (!top_level(P, kw))
        return NULL;
    if (cur(P)->kind != TK_NAME)
        return unexpected(P, "a materialization name");
    name = arena_name(P, next(P));
    if (!accept_op(P, ","))
        return unexpected(P, "\",\" and an adapter (default or adapter='name')");
    do {
        if (is_name(cur(P), "default") && !adapter) {
            next(P);
            adapter = "default";
        } else if (cur(P)->kind == TK_NAME && is_op(&P->tk[P->p + 1], "=")) {
            const tpli_token *key = next(P);
            next(P);
            if (is_name(key, "adapter")) {
                if (cur(P)->kind != TK_STRING)
                    return unexpected(P, "an adapter name string");
                adapter = arena_name(P, next(P));
            } else if (!parse_expr(P)) { /* supported_languages=[..]: accepted */
                return NULL;
            }
        } else {
            return unexpected(P, "an adapter (default or adapter='name')");
        }
    } while (accept_op(P, ","));
    if (!adapter)
        return unexpected(P, "an adapter (default or adapter='name')");
    if (!expect_block_end(P))
        return NULL;
    n->name = join_name(P, "materialization_", name, adapter);
    P->macro = n;
    n->a = parse_body(P, ENDS_MATERIALIZATION, opener, "materialization");
    P->macro = outer;
    if (!n->a)
        return NULL;
    next(P);
    next(P);
    if (!expect_block_end(P))
        return NULL;
    b = add_block(P, TPL_BLOCK_MATERIALIZATION, name, n->name, opener->line);
    b->adapter = adapter;
    return n;
}

/*
 * After "{% docs": name %} text {% enddocs %}.  The text is kept as
 * written (dbt does not render it) and the block renders nothing.
 */
static tpli_node *parse_docs(parser *P, const tpli_token *opener, const tpli_token *kw)
{
    const tpli_token *end;
    const char *name, *from;
    tpl_block *b;

    if (!top_level(P, kw))
        return NULL;
    if (cur(P)->kind != TK_NAME)
        return unexpected(P, "a docs name");
    name = arena_name(P, next(P));
    end = cur(P);
    if (!expect_block_end(P))
        return NULL;
    from = end->s + end->len;
    while (!(cur(P)->kind == TK_BLOCK_BEGIN && is_name(&P->tk[P->p + 1], "enddocs"))) {
        if (cur(P)->kind == TK_EOF)
            return fail_at(P, opener->line, opener->col,
                           "unclosed block \"docs\" (opened at %d:%d)", opener->line, opener->col);
        next(P);
    }
    b = add_block(P, TPL_BLOCK_DOCS, name, NULL, opener->line);
    b->text = from;
    b->text_len = (size_t)(cur(P)->s - from);
    next(P);
    next(P);
    if (!expect_block_end(P))
        return NULL;
    return node_new(P, N_TEXT, opener); /* empty text: renders nothing */
}

static tpli_node *parse_call(parser *P, const tpli_token *opener)
{
    tpli_node *n = node_new(P, N_CALLBLOCK, opener);

    if (is_op(cur(P), "(") && !parse_params(P, n))
        return NULL;
    if (!(n->a = parse_expr(P)))
        return NULL;
    if (n->a->kind != N_CALL)
        return fail_at(P, n->a->line, n->a->col, "a call block needs a call expression");
    if (!expect_block_end(P) || !(n->b = parse_body(P, ENDS_CALL, opener, "call")))
        return NULL;
    next(P);
    next(P);
    return expect_block_end(P) ? n : NULL;
}

static bool in_list(const tpli_token *tk, const char *const *list)
{
    for (; list && *list; list++)
        if (is_name(tk, *list))
            return true;
    return false;
}

static const char *const END_TAGS[] = {
    "elif",   "else",    "endif",   "endfor",    "endset",   "endmacro",           "endcall",
    "endraw", "endtest", "enddocs", "endfilter", "endblock", "endmaterialization", NULL};
static const char *const UNSUPPORTED[] = {"include", "import", "from",       "extends", "block",
                                          "filter",  "with",   "autoescape", "trans",   NULL};

/* one statement after "{%" (P at the keyword) */
static tpli_node *parse_statement(parser *P, const tpli_token *opener)
{
    const tpli_token *kw = cur(P);
    tpli_node *n;

    if (kw->kind != TK_NAME)
        return unexpected(P, "a statement name");
    next(P);
    if (is_name(kw, "if"))
        return parse_if(P, opener);
    if (is_name(kw, "for"))
        return parse_for(P, opener);
    if (is_name(kw, "set"))
        return parse_set(P, opener);
    if (is_name(kw, "macro") || (is_name(kw, "test") && top_level(P, kw)))
        return parse_macro(P, opener, kw);
    if (is_name(kw, "materialization"))
        return parse_materialization(P, opener, kw);
    if (is_name(kw, "docs"))
        return parse_docs(P, opener, kw);
    if (is_name(kw, "call"))
        return parse_call(P, opener);
    if (is_name(kw, "do")) {
        n = node_new(P, N_DO, opener);
        if (!(n->a = parse_expr(P)) || !expect_block_end(P))
            return NULL;
        return n;
    }
    if (in_list(kw, UNSUPPORTED))
        return fail_at(P, kw->line, kw->col, "unsupported tag \"%.*s\"", (int)kw->len, kw->s);
    return fail_at(P, kw->line, kw->col, "unknown tag \"%.*s\"", (int)kw->len, kw->s);
}

/*
 * Statements up to one of `ends` (left unconsumed, P at its "{%") or the end
 * of the template when ends is NULL.  opener/block name the enclosing block
 * for "unclosed block" and "unexpected" messages.
 */
static tpli_node *parse_body(parser *P, const char *const *ends, const tpli_token *opener,
                             const char *block)
{
    vec kids = {0};
    tpli_node *body = node_new(P, N_BODY, opener ? opener : cur(P)), *n;

    if (!enter(P))
        return NULL;
    P->bodies++;
    for (;;) {
        const tpli_token *tk = cur(P);
        if (tk->kind == TK_EOF) {
            if (ends) {
                fail_at(P, opener->line, opener->col, "unclosed block \"%s\" (opened at %d:%d)",
                        block, opener->line, opener->col);
                goto error;
            }
            break;
        }
        if (tk->kind == TK_TEXT) {
            n = node_new(P, N_TEXT, tk);
            n->name = tk->s;
            n->len = tk->len;
            next(P);
        } else if (tk->kind == TK_VAR_BEGIN) {
            next(P);
            n = node_new(P, N_OUTPUT, tk);
            if (!(n->a = parse_expr(P)))
                goto error;
            if (cur(P)->kind != TK_VAR_END) {
                unexpected(P, "end of print statement \"}}\"");
                goto error;
            }
            next(P);
        } else if (tk->kind == TK_BLOCK_BEGIN) {
            const tpli_token *kw = &P->tk[P->p + 1];
            if (in_list(kw, ends))
                break;
            if (in_list(kw, END_TAGS)) {
                char want[64];
                if (ends) {
                    const char *const *e = ends;
                    while (e[1])
                        e++;
                    snprintf(want, sizeof(want), "\"%s\"", *e);
                    fail_at(P, kw->line, kw->col, "unexpected \"%.*s\", expected %s", (int)kw->len,
                            kw->s, want);
                } else {
                    fail_at(P, kw->line, kw->col, "unexpected \"%.*s\"", (int)kw->len, kw->s);
                }
                goto error;
            }
            next(P);
            if (!(n = parse_statement(P, tk)))
                goto error;
        } else {
            unexpected(P, NULL);
            goto error;
        }
        vec_push(&kids, n);
    }
    P->depth--;
    P->bodies--;
    body->nkids = kids.n;
    body->kids = vec_done(P, &kids);
    return body;
error:
    free(kids.v);
    P->failed = true;
    return NULL;
}

static bool parse_all(tpl_template *t, const tpli_token *toks, size_t ntoks, cs_error *err)
{
    parser P;

    memset(&P, 0, sizeof(P));
    P.t = t;
    P.tk = toks;
    P.n = ntoks;
    P.err = err;
    t->root = parse_body(&P, NULL, NULL, NULL);
    if (t->root && !P.failed && P.nblocks) {
        size_t i;
        t->blocks = tpli_arena_alloc(&t->arena, P.nblocks * sizeof(tpl_block));
        for (i = 0; i < P.nblocks; i++)
            t->blocks[i] = *(tpl_block *)P.blocks[i];
        t->nblocks = P.nblocks;
    }
    free(P.blocks);
    return t->root != NULL && !P.failed;
}

/* ---- compiled templates ---- */

tpl_template *tpl_compile(const char *filename, const char *source, cs_error *err)
{
    tpl_template *t = xmalloc(sizeof(*t));
    tpli_token *toks = NULL;
    size_t ntoks = 0;

    memset(t, 0, sizeof(*t));
    if (!filename)
        filename = "<template>";
    if (!source)
        source = "";
    t->filename = xstrndup(filename, strlen(filename));
    t->source = xstrndup(source, strlen(source));
    if (!tpli_lex(t->filename, t->source, &t->arena, &toks, &ntoks, err) ||
        !parse_all(t, toks, ntoks, err)) {
        free(toks);
        tpl_template_free(t);
        return NULL;
    }
    free(toks);
    return t;
}

void tpl_template_free(tpl_template *t)
{
    if (!t)
        return;
    tpli_arena_free(&t->arena);
    free(t->filename);
    free(t->source);
    free(t);
}

size_t tpl_block_count(const tpl_template *t)
{
    return t ? t->nblocks : 0;
}

const tpl_block *tpl_block_get(const tpl_template *t, size_t i)
{
    return t && i < t->nblocks ? &t->blocks[i] : NULL;
}
