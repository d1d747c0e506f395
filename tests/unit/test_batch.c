/*
 * test_batch.c - the batch arena (src/feed/batch.h): what a reset keeps for
 * the next fill and what it gives back, so that recycled batches neither
 * allocate per fill nor hold more than their recent fills needed.
 */
#include <stdlib.h>
#include <string.h>

#include "feed/batch.h"
#include "unit.h"

/* adds n rows whose documents are size bytes each */
static void fill(batch *b, size_t n, size_t size)
{
    char *doc = malloc(size + 1);
    memset(doc, 'x', size);
    doc[size] = '\0';
    for (size_t i = 0; i < n; i++) {
        change_row row = {.id = "some-id", .rev = "1-abc", .seq = "7", .doc = doc, .doc_len = size};
        CHECK(batch_add(b, &row));
    }
    free(doc);
}

static void test_rows_survive_in_the_arena(void)
{
    batch *b = batch_new();
    fill(b, 3000, 900);
    CHECK_INT(b->nrows, 3000);
    CHECK_INT(b->bytes, 3000 * 900);
    CHECK_INT(b->rows[2999].doc_len, 900);
    CHECK(b->rows[2999].doc[899] == 'x' && b->rows[2999].doc[900] == '\0');
    CHECK_STR(b->rows[0].id, "some-id");
    CHECK_STR(batch_strdup(b, "last"), "last");
    batch_free(b);
}

static void test_steady_fills_reuse_their_blocks(void)
{
    batch *b = batch_new();
    fill(b, 1000, 1000); /* ~1 MB: several blocks */
    size_t first = batch_arena_bytes(b);
    CHECK(first >= 1000 * 1000);
    for (int round = 0; round < 5; round++) {
        batch_reset(b);
        CHECK_INT(batch_arena_bytes(b), first); /* kept as spares */
        fill(b, 1000, 1000);
        CHECK_INT(batch_arena_bytes(b), first); /* taken back, nothing new */
    }
    batch_free(b);
}

static void test_a_small_fill_gives_back_the_rest(void)
{
    batch *b = batch_new();
    fill(b, 4000, 1000); /* ~4 MB once */
    size_t big = batch_arena_bytes(b);
    batch_reset(b);
    fill(b, 10, 1000); /* then small ones */
    batch_reset(b);    /* the spares the small fill did not take are freed */
    size_t small = batch_arena_bytes(b);
    CHECK(small > 0);
    CHECK(small * 4 < big);
    batch_free(b);
}

static void test_a_large_document_is_not_kept(void)
{
    batch *b = batch_new();
    fill(b, 1, 5u << 20); /* one 5 MiB document: a block of its own */
    CHECK(batch_arena_bytes(b) >= (5u << 20));
    batch_reset(b);
    CHECK(batch_arena_bytes(b) < (1u << 20));
    batch_free(b);
}

int main(void)
{
    UNIT_BEGIN("test_batch");
    RUN(test_rows_survive_in_the_arena);
    RUN(test_steady_fills_reuse_their_blocks);
    RUN(test_a_small_fill_gives_back_the_rest);
    RUN(test_a_large_document_is_not_kept);
    UNIT_END();
}
