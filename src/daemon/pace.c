/*
 * pace.c - see pace.h.
 */
#include "daemon/pace.h"

long pace_after_run(double run_ms, unsigned full, unsigned partial)
{
    double ms;

    /* no commit: nothing to pace; a partial batch: someone waits for it */
    if (full == 0 || partial > 0 || !(run_ms > 0))
        return 0;
    ms = run_ms * PACE_FACTOR;
    return ms >= (double)PACE_CAP_MS ? PACE_CAP_MS : (long)ms;
}
