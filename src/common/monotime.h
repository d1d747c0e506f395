/*
 * monotime.h - the monotonic clock in milliseconds, for durations and
 * deadlines: it never steps back when the wall clock is set, so a
 * measured time or a timeout cannot come out negative or endless.
 */
#ifndef CS_MONOTIME_H
#define CS_MONOTIME_H

#include <time.h>

/* milliseconds since an unspecified start; only differences mean anything */
static inline double monotime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* the same clock in seconds */
static inline double monotime_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
