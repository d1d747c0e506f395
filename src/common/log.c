/*
 * log.c - see log.h.  A line is formatted into one buffer and written with a
 * single write(2) so that lines from several worker threads never interleave.
 * Everything after the time stamp and level (scope and message) has its
 * control characters escaped here, once for every caller: a document id or
 * a server's message with a newline cannot forge a log line, and one with
 * terminal escapes cannot reach the operator's terminal.
 */
#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static volatile log_level min_level = LOG_INFO;
static atomic_ulong lines_written;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(log_level level)
{
    min_level = level;
}

bool log_parse_level(const char *name, log_level *out)
{
    for (int i = 0; i <= LOG_ERROR; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (log_level)i;
            return true;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *out = LOG_WARN;
        return true;
    }
    return false;
}

/*
 * Appends s to out (at *n, capacity cap, keeping room for "...\n") with
 * C0 controls and DEL as \n, \r, \t or \xHH, and the C1 controls U+0080 to
 * U+009F (UTF-8 C2 80 to C2 9F, which terminals also obey) as \u00HH.
 * Other bytes are copied: valid or not, they cannot move the cursor.
 */
static void put_escaped(char *out, size_t cap, size_t *n, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t w = *n;

    for (const unsigned char *p = (const unsigned char *)s; *p && w + 8 < cap; p++) {
        unsigned char c = *p;
        if (c == '\n' || c == '\r' || c == '\t') {
            out[w++] = '\\';
            out[w++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(out + w, "\\x", 2);
            w += 2;
            out[w++] = hex[c >> 4];
            out[w++] = hex[c & 15];
        } else if (c == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            memcpy(out + w, "\\u00", 4);
            w += 4;
            out[w++] = hex[p[1] >> 4];
            out[w++] = hex[p[1] & 15];
            p++;
        } else {
            out[w++] = (char)c;
        }
    }
    *n = w;
}

void log_msg(log_level level, const char *scope, const char *fmt, ...)
{
    char line[4096];
    char text[4096];
    struct timespec ts;
    struct tm tm;
    size_t n;
    va_list ap;

    if (level < min_level)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s ", ts.tv_nsec / 1000000,
                          level_names[level]);
    if (scope) {
        put_escaped(line, sizeof(line), &n, scope);
        put_escaped(line, sizeof(line), &n, ": ");
    }
    va_start(ap, fmt);
    size_t tn = (size_t)vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    put_escaped(line, sizeof(line), &n, text);
    if (tn >= sizeof(text) || n + 9 >= sizeof(line)) {
        /* truncated (put_escaped leaves room for this): keep the line a line */
        memcpy(line + n, "...", 3);
        n += 3;
    }
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
    atomic_fetch_add(&lines_written, 1);
}

unsigned long log_lines_written(void)
{
    return atomic_load(&lines_written);
}
