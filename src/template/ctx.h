/*
 * ctx.h - the state of one render, shared by the evaluator (eval.c) and
 * the library it calls (filter.c), plus the two services the library needs
 * from it: failing at a node with FILE:LINE:COL, and iterating a value.
 * Both live in ctx.c, so filters never call back into the evaluator.
 */
#ifndef CS_TPL_CTX_H
#define CS_TPL_CTX_H

#include "template/internal.h"

typedef struct tpli_frame {
    tpl_value *vars; /* dict, created on the first assignment */
    struct tpli_frame *parent;
    /* the body whose {% set %}s bind in this frame (a macro's, the
     * template's), NULL for a loop's frame: see soft undefined in eval.c */
    const struct tpli_node *owner;
} tpli_frame;

/* the body of a {% call %} block, reachable as caller() while it runs */
struct tpli_closure {
    const tpli_node *block; /* N_CALLBLOCK */
    const tpl_template *tpl;
    tpli_frame *scope;
};

typedef struct tpli_ctx {
    tpl_env *env;
    const tpl_template *tpl; /* whose nodes run now: the file in messages */
    tpli_frame *root;
    tpli_frame *scope;
    tpl_value *locals; /* borrowed, may be NULL */
    unsigned long id;
    int depth;  /* macro and caller() nesting */
    int edepth; /* eval() recursion: the one guard for every recursive path */
    tpl_value *ret;
    cs_error *err;
    cs_error own_err;
    bool positioned; /* the error in err already has FILE:LINE:COL */
    size_t outmax;
    size_t reach_budget; /* what tpli_no_cycle may still walk (TPLI_REACH_MAX) */
    struct tpli_ctx *prev;
} tpli_ctx;

struct tpl_call {
    tpli_ctx *ctx;
    const tpli_node *node;
    tpl_value *caller; /* FN_CALLER or NULL */
    tpl_value *self;   /* obj of obj.f(...), or NULL; borrowed */
    char where[320];
};

/* evaluation results inside the engine: 0 ok, R_ERR error (err filled),
 * R_RETURN a return() unwinding to the enclosing macro */
enum { R_OK = 0, R_ERR = -1, R_RETURN = 1 };

/* fails with "FILE:LINE:COL: msg" at node n (CS_INVALID), returns R_ERR */
int tpli_fail(tpli_ctx *c, const tpli_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "output exceeds the limit of N bytes" at n */
int tpli_out_fail(tpli_ctx *c, const tpli_node *n);
/* "string exceeds the limit of N bytes" (a value, not the output) at n */
int tpli_str_fail(tpli_ctx *c, const tpli_node *n);
/* the growth caps of lists and dicts: false (and c's error set at n) when
 * adding `more` items to `have` would pass TPLI_LIST_MAX / TPLI_DICT_MAX */
bool tpli_list_room(tpli_ctx *c, const tpli_node *n, size_t have, size_t more);
bool tpli_dict_room(tpli_ctx *c, const tpli_node *n, const tpl_value *d, const char *key);
/* refuses to store v into container: false (error set at n) when container
 * is reachable from v, which would make a reference cycle */
bool tpli_no_cycle(tpli_ctx *c, const tpli_node *n, const tpl_value *container, const tpl_value *v);
/* the items a for loop or a filter walks, as a new reference to a list */
int tpli_iter(tpli_ctx *c, const tpli_node *n, tpl_value *it, tpl_value **out);

#endif
