/*
 * test_log.c - what reaches the log: control characters in a scope or a
 * message (a document id with a newline, a server message with terminal
 * escapes) are escaped, so every event stays one line and no escape reaches
 * the terminal; long messages are cut and still end the line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/log.h"
#include "unit.h"

/* Runs log_info(scope, "%s", msg) with stderr redirected; returns what
 * was written after the time stamp and level (caller frees). */
static char *logged(const char *scope, const char *msg)
{
    FILE *f = tmpfile();
    int saved = dup(STDERR_FILENO);
    static char out[16384];
    size_t n;

    fflush(stderr);
    dup2(fileno(f), STDERR_FILENO);
    log_info(scope, "%s", msg);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(f);
    n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    fclose(f);
    /* "2026-12-01T09:00:00.000Z info  " is 31 bytes */
    return strdup(n > 31 ? out + 31 : out);
}

static void test_escapes(void)
{
    static const struct {
        const char *scope, *msg, *want;
    } cases[] = {
        {"medic", "stored 3 docs", "medic: stored 3 docs\n"},
        {NULL, "no scope", "no scope\n"},
        {"medic", "document \"a\n2026-12-01T00:00:00.000Z error forged\"",
         "medic: document \"a\\n2026-12-01T00:00:00.000Z error forged\"\n"},
        {"medic", "cr\rtab\tbell\aesc\x1b[2Jdel\x7f",
         "medic: cr\\rtab\\tbell\\x07esc\\x1b[2Jdel\\x7f\n"},
        {"med\nic", "x", "med\\nic: x\n"},
        {"medic",
         "csi \xc2\x9b"
         "31m, nel \xc2\x85, kept: caf\xc3\xa9 \xc2\xa0 \xff",
         "medic: csi \\u009b31m, nel \\u0085, kept: caf\xc3\xa9 \xc2\xa0 \xff\n"},
        {"medic", "a trailing lead byte \xc2", "medic: a trailing lead byte \xc2\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = logged(cases[i].scope, cases[i].msg);
        CHECK_STR(got, cases[i].want);
        free(got);
    }
}

static void test_long_lines(void)
{
    static char msg[10000];
    char *got;
    size_t len;

    /* newlines double in size when escaped: the cut still ends the line */
    for (size_t i = 0; i < sizeof(msg) - 1; i++)
        msg[i] = i % 2 ? '\n' : 'x';
    got = logged("medic", msg);
    len = strlen(got);
    CHECK(len < 4096);
    CHECK(len > 4000);
    CHECK(strchr(got, '\n') == got + len - 1);
    CHECK(len > 4 && memcmp(got + len - 4, "...\n", 4) == 0);
    free(got);
}

int main(void)
{
    UNIT_BEGIN("test_log");
    RUN(test_escapes);
    RUN(test_long_lines);
    UNIT_END();
}
