/*
 * unit.h - the unit-test harness: a test is a function, a check that fails
 * records file:line and the expression and the test goes on to its end.
 * Each test prints one line, "PASS <binary>: <test>" or "FAIL ...", which
 * scripts/run-unit and scripts/test count.  The binary exits 1 if any failed.
 */
#ifndef CS_UNIT_H
#define CS_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failed_checks;
static int unit_tests_failed;
static int unit_tests_run;
static const char *unit_binary = "unit";

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stdout, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);             \
            unit_failed_checks++;                                                                  \
        }                                                                                          \
    } while (0)

#define CHECK_STR(got, want)                                                                       \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        if (!g_ || !w_ || strcmp(g_, w_) != 0) {                                                   \
            fprintf(stdout, "  %s:%d: %s\n    got:  %s\n    want: %s\n", __FILE__, __LINE__, #got, \
                    g_ ? g_ : "(null)", w_ ? w_ : "(null)");                                       \
            unit_failed_checks++;                                                                  \
        }                                                                                          \
    } while (0)

#define CHECK_INT(got, want)                                                                       \
    do {                                                                                           \
        long long g_ = (long long)(got), w_ = (long long)(want);                                   \
        if (g_ != w_) {                                                                            \
            fprintf(stdout, "  %s:%d: %s: got %lld, want %lld\n", __FILE__, __LINE__, #got, g_,    \
                    w_);                                                                           \
            unit_failed_checks++;                                                                  \
        }                                                                                          \
    } while (0)

#define RUN(test)                                                                                  \
    do {                                                                                           \
        int before_ = unit_failed_checks;                                                          \
        test();                                                                                    \
        unit_tests_run++;                                                                          \
        if (unit_failed_checks != before_) {                                                       \
            unit_tests_failed++;                                                                   \
            printf("FAIL %s: %s\n", unit_binary, #test);                                           \
        } else {                                                                                   \
            printf("PASS %s: %s\n", unit_binary, #test);                                           \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

#define UNIT_BEGIN(name) unit_binary = (name)
#define UNIT_END() return unit_tests_failed ? 1 : 0

#endif
