/*
 * buf.h - a growable byte buffer with a hard cap and a sticky error bit.
 *
 * Every buffer has a maximum size given at init: an append that would pass
 * it fails, sets buf->failed and leaves the contents as they were before the
 * call, so one huge input never takes the process down and a builder can
 * append many pieces and check once (buf_ok) at the end.
 *
 * The data is always NUL-terminated (not counted in len) so it can be used
 * as a C string when it holds text.  Ownership: the buffer owns data;
 * buf_free releases it, buf_steal hands it to the caller.
 */
#ifndef CS_BUF_H
#define CS_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    bool failed;
} buf;

#define BUF_DEFAULT_MAX ((size_t)64 << 20)

void buf_init(buf *b, size_t max);
void buf_free(buf *b);
/* empties the buffer and clears the error bit, keeping the allocation */
void buf_reset(buf *b);
bool buf_append(buf *b, const void *data, size_t len);
bool buf_puts(buf *b, const char *s);
bool buf_putc(buf *b, char c);
bool buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* makes room for at least n more bytes */
bool buf_reserve(buf *b, size_t n);
/* returns the data (never NULL, caller frees) and leaves b empty */
char *buf_steal(buf *b);
static inline bool buf_ok(const buf *b)
{
    return !b->failed;
}

#endif
