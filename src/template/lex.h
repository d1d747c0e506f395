/*
 * lex.h - the lexer's interface: template source -> tokens.  The lexer
 * knows only the source text and an arena for decoded string literals;
 * the parser (parse.c) is its only user.
 */
#ifndef CS_TPL_LEX_H
#define CS_TPL_LEX_H

#include <stdbool.h>
#include <stddef.h>

#include "common/result.h"
#include "template/arena.h"

/* ---- tokens ---- */

typedef enum {
    TK_TEXT,
    TK_VAR_BEGIN,
    TK_VAR_END,
    TK_BLOCK_BEGIN,
    TK_BLOCK_END,
    TK_NAME,
    TK_STRING,
    TK_INT,
    TK_FLOAT,
    TK_OP,
    TK_EOF,
} tpli_tok_kind;

typedef struct {
    tpli_tok_kind kind;
    int line, col;
    const char *s; /* TEXT, NAME, OP: into the source; STRING: decoded */
    size_t len;
    long long ival;
    double fval;
} tpli_token;

/*
 * Lexes the NUL-terminated src into a malloc'd token array (the caller
 * frees *toks) whose TEXT/NAME/OP tokens point into src and whose decoded
 * STRING tokens live in arena; src must outlive the tokens.  filename is
 * for messages.  False with err set ("FILE:LINE:COL: ...") on a lexical
 * error, with nothing to free.
 */
bool tpli_lex(const char *filename, const char *src, tpli_arena *arena, tpli_token **toks,
              size_t *ntoks, cs_error *err);

#endif
