/*
 * test_signals.c - the stop mechanism of the long-running commands
 * (src/common/signals.h): SIGTERM and SIGINT raise the flag and call the
 * wake-up hook, SIGPIPE no longer ends the process.
 */
#include <signal.h>

#include "common/signals.h"
#include "unit.h"

static volatile sig_atomic_t stop;
static volatile sig_atomic_t wakes;

static void count_wake(void)
{
    wakes++;
}

static void test_stop_signals(void)
{
    static const int sigs[] = {SIGTERM, SIGINT};

    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        stop = 0;
        wakes = 0;
        signals_install(&stop, count_wake);
        CHECK_INT(raise(sigs[i]), 0); /* delivered before raise returns */
        CHECK_INT(stop, 1);
        CHECK_INT(wakes, 1);
    }
}

static void test_no_wake_hook(void)
{
    stop = 0;
    wakes = 0;
    signals_install(&stop, NULL);
    CHECK_INT(raise(SIGTERM), 0);
    CHECK_INT(stop, 1);
    CHECK_INT(wakes, 0);
}

static void test_sigpipe_ignored(void)
{
    stop = 0;
    signals_install(&stop, NULL);
    CHECK_INT(raise(SIGPIPE), 0); /* with the default action the binary would end here */
    CHECK_INT(stop, 0);
}

int main(void)
{
    UNIT_BEGIN("test_signals");
    RUN(test_stop_signals);
    RUN(test_no_wake_hook);
    RUN(test_sigpipe_ignored);
    UNIT_END();
}
