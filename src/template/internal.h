/*
 * internal.h - what the files of the template engine share and nobody
 * else may use: the value layout, the AST, the compiled template and the
 * helpers that cross file boundaries (prefix tpli_).
 *
 * Layout of the engine:
 *   value.c  values, reference counts, lists, dicts, text and repr
 *   arena.c  the memory of a compiled template (arena.h)
 *   lex.c    source -> tokens (lex.h; knows only the arena)
 *   parse.c  tokens -> AST (statements and expressions), compile errors
 *   ctx.c    the render context: positioned errors, iteration (ctx.h)
 *   filter.c filters, tests, methods of str/list/dict, built-ins (filter.h)
 *   eval.c   AST -> output: scopes, macros, call blocks, natives
 *
 * Dependencies go one way: eval -> filter -> ctx -> value, and
 * parse -> lex -> arena, parse -> filter (names only).  Nothing calls back
 * into eval.c except through tpl.h's public entry points
 * (scripts/check-cycles checks it).
 */
#ifndef CS_TPL_INTERNAL_H
#define CS_TPL_INTERNAL_H

#include <stdint.h>

#include "template/arena.h"
#include "template/tpl.h"
#include "common/xalloc.h"

/* ---- values ---- */

enum {
    VF_UNDEF = 1,   /* an undefined name: TPL_NONE that renders as "" */
    VF_TUPLE = 2,   /* a TPL_LIST written as a Python tuple */
    VF_OBJECT = 4,  /* a TPL_DICT with a display string */
    VF_NESTED = 8,  /* a list/dict that has been stored inside a list or dict */
    VF_SOFT = 0x10, /* with VF_UNDEF: dbt renders it as "" even when strict (see eval.c) */
    VF_MARK = 0x80, /* transient: visited by tpli_reaches */
};

/* what an object (VF_OBJECT) is, for the methods and operators of
 * modules.c; OK_PLAIN for objects made with tpl_object_new */
enum { OK_PLAIN, OK_DATE, OK_DATETIME, OK_TIMEDELTA, OK_MATCH, OK_PATTERN };

enum { FN_NATIVE, FN_MACRO, FN_CALLER };

struct tpli_closure;
struct tpli_node;

struct tpl_value {
    int refs; /* < 0: immortal (singletons, template constants) */
    unsigned char type;
    unsigned char flags;
    unsigned char okind; /* OK_*, objects only */
    tpl_value *attrs;    /* TPL_LIST: its attributes (a dict), or NULL */
    union {
        bool b;
        long long i;
        double d;
        struct {
            char *s; /* NUL-terminated; also the name of an undefined */
            size_t len;
        } str;
        struct {
            tpl_value **items;
            size_t len, cap;
        } list;
        struct {
            char **keys;
            tpl_value **vals;
            size_t len, cap;
            uint32_t *idx; /* open-addressing index (slot+1), NULL when small */
            size_t idxcap;
            char *display;
        } dict;
        struct {
            int kind;
            char *name;
            tpl_native_fn fn;
            void *ud;
            const struct tpli_node *macro; /* FN_MACRO, borrowed from tpl */
            const tpl_template *tpl;
            unsigned long defid;      /* render that defined it, 0: global */
            struct tpli_closure *clo; /* FN_CALLER; NULL once the block ended */
        } fn;
    } u;
};

/* Growth caps: a list or dict in a template never holds more (Python's
 * range() is capped the same).  Strings are capped by the render's output
 * limit (the buf max given to tpl_render). */
#define TPLI_LIST_MAX 1000000
#define TPLI_DICT_MAX 1000000

/* Each render may walk at most this many containers and items to refuse
 * reference cycles: values shared many times over (l.append(l[:]) in a
 * loop) make each walk long, and a template must not hold the daemon. */
#define TPLI_REACH_MAX 20000000

/* 1 when target can be reached from v through list items, list attributes
 * and dict values (v == target included), 0 when not; -1 when the walk
 * would pass *budget, which is decreased by the work done; iterative */
int tpli_reaches(const tpl_value *v, const tpl_value *target, size_t *budget);

/* a new undefined value remembering its name (may be NULL) */
tpl_value *tpli_undef(const char *name);
bool tpli_is_undef(const tpl_value *v);
/* an undefined that renders as "" even with strict undefined: a macro's
 * parameter not passed, `x if c` without else, a name set in a branch not
 * taken */
tpl_value *tpli_undef_soft(const char *name);
/* an undefined that strict mode refuses (not soft) */
bool tpli_is_strict_undef(const tpl_value *v);
tpl_value *tpli_tuple_new(void);
/* a string that takes s (malloc'd, NUL at s[n]) */
tpl_value *tpli_str_take(char *s, size_t n);
/* the text of a value as a new string value (strings are just referenced) */
tpl_value *tpli_to_str(tpl_value *v);
bool tpli_repr(const tpl_value *v, buf *out);
bool tpli_equal(const tpl_value *a, const tpl_value *b);
/* -1/0/1 into *cmp; false when the types cannot be ordered */
bool tpli_compare(const tpl_value *a, const tpl_value *b, int *cmp);
const char *tpli_type_name(const tpl_value *v);
bool tpli_dict_del(tpl_value *dict, const char *key);
/* tpl_dict_set for a scope's variables (a frame, not a value templates can
 * reach): v is not marked VF_NESTED, so the cycle check stays cheap */
void tpli_scope_set(tpl_value *vars, const char *key, tpl_value *v);
/* attribute name of obj: a dict's entry or a list's attribute (borrowed, NULL if none) */
tpl_value *tpli_attr(const tpl_value *obj, const char *name);
tpl_value *tpli_func_macro(const char *name, const struct tpli_node *macro, const tpl_template *t,
                           unsigned long defid);
bool tpli_to_json(const tpl_value *v, buf *out, int depth);
/* json.dumps(v) as dbt's tojson(): insertion order, no HTML escapes */
bool tpli_to_json_plain(const tpl_value *v, buf *out);
/* the value of JSON text (n bytes), NULL when it is not JSON or nests
 * deeper than 64 levels */
tpl_value *tpli_from_json(const char *s, size_t n);

/* ---- AST ---- */

typedef enum {
    /* statements */
    N_BODY,
    N_TEXT,
    N_OUTPUT,
    N_IF,
    N_FOR,
    N_SET,
    N_SETBLOCK,
    N_MACRO,
    N_CALLBLOCK,
    N_DO,
    /* expressions */
    N_CONST,
    N_NAME,
    N_LIST,
    N_TUPLE,
    N_DICT,
    N_ATTR,
    N_ITEM,
    N_SLICE,
    N_CALL,
    N_FILTER,
    N_TEST,
    N_NEG,
    N_POS,
    N_NOT,
    N_AND,
    N_OR,
    N_BINOP,
    N_COMPARE,
    N_CMPCHAIN, /* a < b < c: kids are the operands, ops the operators */
    N_CONCAT,
    N_COND,
} tpli_node_kind;

typedef struct tpli_node {
    tpli_node_kind kind;
    int line, col;
    int op;           /* BINOP/COMPARE operator, FILTER/TEST index, flags */
    const char *name; /* NAME, ATTR, FILTER, TEST, MACRO, SET targets */
    size_t len;       /* TEXT length */
    tpl_value *value; /* CONST: owned by the template, copied when used */
    struct tpli_node *a, *b, *c, *d;
    struct tpli_node **kids; /* BODY statements, LIST items, call args */
    const char **kwnames;    /* per kid: keyword name or NULL */
    size_t nkids;
    const char **names;          /* FOR/SET targets, MACRO/CALLBLOCK params */
    struct tpli_node **defaults; /* MACRO params: default or NULL */
    size_t nnames;
    int *ops;  /* CMPCHAIN: nkids - 1 operators */
    int depth; /* expression nodes: height of the subtree (bounded, see parse.c) */
} tpli_node;

/* call arguments: kwnames[i] is "*" for *expr and "**" for **expr (never
 * an identifier, so never a keyword) */
#define TPLI_IS_STAR(kw) ((kw) && (kw)[0] == '*' && (kw)[1] == '\0')
#define TPLI_IS_DSTAR(kw) ((kw) && (kw)[0] == '*' && (kw)[1] == '*')

/* macro flags in node->op */
enum { MF_VARARGS = 1, MF_KWARGS = 2, MF_CALLER = 4 };
/* binary operators */
enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW };
enum { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE, CMP_IN, CMP_NOTIN };

struct tpl_template {
    char *filename;
    char *source;
    tpli_arena arena; /* nodes, names, literals, blocks */
    tpli_node *root;
    tpl_block *blocks; /* top-level macro/test/materialization/docs blocks */
    size_t nblocks;
};

#endif
