/*
 * arena.h - the memory a compiled template lives in: nodes, names and
 * decoded literals are carved from chunks that are freed together with the
 * template.  Used by the lexer (decoded strings) and the parser (the AST);
 * it knows neither.
 */
#ifndef CS_TPL_ARENA_H
#define CS_TPL_ARENA_H

#include <stddef.h>

typedef struct tpli_arena_chunk tpli_arena_chunk;

typedef struct {
    tpli_arena_chunk *chunks; /* newest first */
} tpli_arena;

/* n bytes aligned to 16 that live until tpli_arena_free; never NULL (aborts
 * on allocation failure) */
void *tpli_arena_alloc(tpli_arena *a, size_t n);
/* frees every chunk; the arena is empty and reusable afterwards */
void tpli_arena_free(tpli_arena *a);

#endif
