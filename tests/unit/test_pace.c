/*
 * test_pace.c - the pause of the model loop between two runs while the
 * sync in the same process is catching up (src/daemon/pace.h).
 */
#include "daemon/pace.h"
#include "unit.h"

static void test_pace(void)
{
    static const struct {
        double run_ms;
        unsigned full, partial;
        long want;
    } cases[] = {
        {100, 0, 0, 0},                   /* no commit during the run */
        {100, 1, 0, 100 * PACE_FACTOR},   /* a backfill: the sync is behind */
        {100, 40, 0, 100 * PACE_FACTOR},  /* however many full batches */
        {100, 5, 1, 0},                   /* one database caught up: no pause */
        {100, 0, 3, 0},                   /* steady state: small batches only */
        {0, 3, 0, 0},                     /* a run too quick to measure */
        {-5, 3, 0, 0},                    /* a clock that stepped back */
        {PACE_CAP_MS, 2, 0, PACE_CAP_MS}, /* capped: the tables still refresh */
        {1e12, 2, 0, PACE_CAP_MS},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CHECK_INT(pace_after_run(cases[i].run_ms, cases[i].full, cases[i].partial), cases[i].want);
}

int main(void)
{
    UNIT_BEGIN("test_pace");
    RUN(test_pace);
    UNIT_END();
}
