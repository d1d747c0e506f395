/*
 * test_signals.c - the stop mechanism of the long-running commands
 * (src/common/signals.h): SIGTERM and SIGINT raise the flag and call the
 * wake-up hook, SIGPIPE no longer ends the process, and the retry pause
 * ends when the flag is raised.
 */
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "common/monotime.h"
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

static void test_sleep(void)
{
    double t0;

    stop = 0;
    t0 = monotime_ms();
    CHECK(signals_sleep_ms(&stop, 120)); /* the whole pause, not one slice */
    CHECK(monotime_ms() - t0 >= 120);
    CHECK(signals_sleep_ms(&stop, 0));
    stop = 1;
    CHECK(!signals_sleep_ms(&stop, 60000)); /* already stopped: returns at once */
}

static void *term_soon(void *arg)
{
    struct timespec ts = {0, 20 * 1000000L};
    (void)arg;
    nanosleep(&ts, NULL);
    kill(getpid(), SIGTERM);
    return NULL;
}

static void test_sleep_cut_by_signal(void)
{
    pthread_t t;
    double t0;

    stop = 0;
    signals_install(&stop, NULL);
    t0 = monotime_ms();
    CHECK_INT(pthread_create(&t, NULL, term_soon, NULL), 0);
    CHECK(!signals_sleep_ms(&stop, 60000));
    CHECK(monotime_ms() - t0 < 30000); /* a minute's pause ended by the signal */
    pthread_join(t, NULL);
    CHECK_INT(stop, 1);
}

int main(void)
{
    UNIT_BEGIN("test_signals");
    RUN(test_stop_signals);
    RUN(test_no_wake_hook);
    RUN(test_sigpipe_ignored);
    RUN(test_sleep);
    RUN(test_sleep_cut_by_signal);
    UNIT_END();
}
