/*
 * arena.c - chunked bump allocation for compiled templates (arena.h).
 * Chunks are 16 KiB, or bigger for one large request; nothing is freed
 * before the whole arena is.
 */
#include "template/arena.h"
#include "common/xalloc.h"

#include <stdlib.h>

struct tpli_arena_chunk {
    tpli_arena_chunk *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

#define ARENA_CHUNK 16384

void *tpli_arena_alloc(tpli_arena *a, size_t n)
{
    tpli_arena_chunk *c = a->chunks;
    void *p;

    n = (n + 15) & ~(size_t)15;
    if (!c || c->size - c->used < n) {
        size_t size = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = xmalloc(sizeof(*c) + size);
        c->used = 0;
        c->size = size;
        c->next = a->chunks;
        a->chunks = c;
    }
    p = c->data + c->used;
    c->used += n;
    return p;
}

void tpli_arena_free(tpli_arena *a)
{
    while (a->chunks) {
        tpli_arena_chunk *c = a->chunks;
        a->chunks = c->next;
        free(c);
    }
}
