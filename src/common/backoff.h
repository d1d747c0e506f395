/*
 * backoff.h - how long a failing side waits before its next attempt: 250 ms,
 * doubled per failed attempt up to 30 s.  One sequence for the reader, the
 * writer, the set-up and the model loop, so that an outage is retried the
 * same way wherever it is met.
 */
#ifndef CS_BACKOFF_H
#define CS_BACKOFF_H

#define BACKOFF_BASE_MS 250
#define BACKOFF_CAP_MS 30000

/* the wait before attempt `attempt + 1` (attempt counts failures from 0) */
static inline long backoff_ms(int attempt)
{
    long cap = BACKOFF_BASE_MS;
    for (int i = 0; i < attempt && cap < BACKOFF_CAP_MS; i++)
        cap *= 2;
    return cap > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : cap;
}

/* the same with jitter, a wait between half of it and all of it: many
 * databases failing at once (one server down) do not retry in step */
static inline long backoff_jitter_ms(int attempt, unsigned long rnd)
{
    long cap = backoff_ms(attempt);
    return cap / 2 + (long)(rnd % (unsigned long)(cap / 2 + 1));
}

#endif
