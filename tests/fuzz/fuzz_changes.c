/*
 * fuzz_changes.c - libFuzzer harness for the streaming _changes parser.
 *
 * Each input is parsed twice: whole, and cut into pieces at points derived
 * from the input itself (a hash of it drives the piece sizes, so libFuzzer
 * explores cuts together with contents).  Both runs are rendered to one text
 * (rows, last_seq, pending, error) and must be equal; any difference, and
 * anything ASan or UBSan sees, is a crash.  Small limits make the document
 * size, depth and number limits reachable.  Built by `make fuzz`, run by
 * scripts/fuzz (seed corpus: tests/fuzz/corpus/changes/).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "feed/changes.h"

static void put_nullable(buf *b, const char *s)
{
    buf_puts(b, s ? s : "~");
}

static cs_result collect(void *ud, const change_row *row, cs_error *err)
{
    buf *b = ud;

    buf_puts(b, row->id);
    buf_putc(b, '|');
    put_nullable(b, row->rev);
    buf_putc(b, '|');
    put_nullable(b, row->seq);
    buf_printf(b, "|%d|%d|", row->deleted, row->cleaned);
    if (row->reject_reason) {
        if (row->doc)
            abort(); /* a rejected row carries no document */
        buf_printf(b, "!%s", row->reject_reason);
    } else {
        if (!row->doc || strlen(row->doc) != row->doc_len)
            abort();
        buf_append(b, row->doc, row->doc_len);
    }
    buf_putc(b, '\n');
    return CS_OK;
}

/* Parses data in pieces (step 0: whole) and renders the outcome into out. */
static void run(const uint8_t *data, size_t len, uint64_t step, buf *out)
{
    changes_limits lim = {.max_doc_bytes = 4096, .max_depth = 12};
    changes_parser *p = changes_parser_new(&lim, collect, out);
    cs_result rc = CS_OK;
    cs_error err;
    long long pending;

    if (!p)
        abort();
    for (size_t i = 0; i < len && rc == CS_OK;) {
        size_t n = len - i;
        if (step) {
            /* xorshift: the next piece is 1..97 bytes */
            step ^= step << 13;
            step ^= step >> 7;
            step ^= step << 17;
            size_t want = 1 + (size_t)(step % 97);
            n = want < n ? want : n;
        }
        rc = changes_parser_feed(p, (const char *)data + i, n, &err);
        i += n;
    }
    if (rc == CS_OK)
        rc = changes_parser_finish(p, &err);
    if (rc != CS_OK) {
        buf_printf(out, "error(%s): %s\n", cs_result_name(rc), err.msg);
    } else {
        buf_puts(out, "last_seq=");
        put_nullable(out, changes_parser_last_seq(p));
        if (changes_parser_pending(p, &pending))
            buf_printf(out, " pending=%lld", pending);
        buf_printf(out, " rows=%zu\n", changes_parser_rows(p));
    }
    changes_parser_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a of the input */
    buf whole, cut;

    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ULL;
    buf_init(&whole, (size_t)64 << 20);
    buf_init(&cut, (size_t)64 << 20);
    run(data, size, 0, &whole);
    run(data, size, h | 1, &cut);
    if (!buf_ok(&whole) || !buf_ok(&cut) || whole.len != cut.len ||
        memcmp(whole.data ? whole.data : "", cut.data ? cut.data : "", whole.len) != 0) {
        fprintf(stderr, "whole and cut parses differ:\n--- whole\n%.*s--- cut\n%.*s",
                (int)whole.len, whole.data ? whole.data : "", (int)cut.len,
                cut.data ? cut.data : "");
        abort();
    }
    buf_free(&whole);
    buf_free(&cut);
    return 0;
}
