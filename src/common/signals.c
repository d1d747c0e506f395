/*
 * signals.c - see signals.h.
 *
 * A handler cannot take arguments, so the flag and the wake-up hook it
 * serves are kept here, set before the handler is installed.
 */
#include "common/signals.h"

#include <stddef.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t *stop_flag;
static void (*wake_hook)(void);

static void on_signal(int sig)
{
    (void)sig;
    *stop_flag = 1;
    if (wake_hook)
        wake_hook();
}

void signals_install(volatile sig_atomic_t *stop, void (*wake)(void))
{
    struct sigaction sa;

    stop_flag = stop;
    wake_hook = wake;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

bool signals_sleep_ms(volatile sig_atomic_t *stop, long ms)
{
    while (ms > 0 && !*stop) {
        long slice = ms < 50 ? ms : 50;
        struct timespec ts = {0, slice * 1000000L};
        nanosleep(&ts, NULL);
        ms -= slice;
    }
    return !*stop;
}
