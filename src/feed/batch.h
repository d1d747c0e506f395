/*
 * batch.h - one batch of changes on its way from the reader to the writer.
 *
 * A batch owns an arena: every string of its rows lives there and is freed
 * at once by batch_reset, so a batch costs a handful of allocations however
 * many rows it has, and the batches are recycled between reader and writer.
 */
#ifndef CS_BATCH_H
#define CS_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "feed/changes.h"

typedef struct arena_block arena_block;

typedef struct {
    const char *id;
    const char *rev;
    const char *seq;
    const char *doc; /* NULL when rejected */
    size_t doc_len;
    const char *reject_reason;
    bool deleted;
} batch_row;

typedef enum {
    BATCH_CHANGES, /* rows (maybe none) and the checkpoint after them */
    BATCH_IDLE,    /* nothing changed: refresh updated_at */
    BATCH_FAILED,  /* the reader hit an error: record it (transient: it retries) */
    BATCH_END,     /* the reader is done (caught up with --once, or stopping) */
} batch_kind;

typedef struct {
    batch_kind kind;
    batch_row *rows;
    size_t nrows;
    size_t rows_cap;
    char *last_seq; /* arena; NULL: unchanged */
    bool has_pending;
    long long pending;
    bool restart; /* the first batch of a resync from 0 */
    bool caught_up;
    size_t bytes;        /* document bytes held */
    char *error;         /* arena; BATCH_FAILED: what happened */
    bool transient;      /* BATCH_FAILED: the reader retries; the database has not failed */
    bool vanished;       /* BATCH_FAILED: a database we followed answers 404 */
    double fetch_ms;     /* time the reader spent on it */
    arena_block *blocks; /* in use, newest first */
    arena_block *spare;  /* kept from the last fill, for the next one */
} batch;

batch *batch_new(void);
void batch_free(batch *b);
/* empties the batch (kind back to BATCH_CHANGES); its arena keeps the
 * blocks this fill used for the next one (batch.c) */
void batch_reset(batch *b);
/* copies a parsed row in; false when out of memory */
bool batch_add(batch *b, const change_row *row);
/* a copy of s in the batch's arena, NULL when out of memory */
char *batch_strdup(batch *b, const char *s);
/* the bytes the arena holds from the allocator: blocks in use and spares */
size_t batch_arena_bytes(const batch *b);

#endif
