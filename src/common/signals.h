/*
 * signals.h - how a long-running command is asked to stop.
 *
 * SIGTERM and SIGINT raise the command's stop flag, a volatile
 * sig_atomic_t that its loops (and the feed, store and runner below it)
 * look at; the handler does nothing more.  SIGPIPE is ignored: a write to
 * a closed socket or pipe fails with EPIPE where it happens, and the
 * caller reports it, instead of the process dying silently.
 */
#ifndef CS_SIGNALS_H
#define CS_SIGNALS_H

#include <signal.h>
#include <stdbool.h>

/*
 * Installs the handlers for the whole process.  From then on SIGTERM and
 * SIGINT set *stop to 1 and then call wake (NULL: nothing more), which
 * lets a loop asleep in poll() see the flag at once.  wake runs inside
 * the signal handler: it must be async-signal-safe (write(2) to a pipe
 * is) and keep errno.  The handler keeps both pointers: stop must live as
 * long as the process (a static flag).  A process installs one pair; a
 * second call replaces the first.
 */
void signals_install(volatile sig_atomic_t *stop, void (*wake)(void));

/*
 * Sleeps ms milliseconds, cut short when *stop is raised (it is looked at
 * every 50 ms, and a signal ends the current slice at once).  True when the
 * whole pause passed, false when stopped: the pause between two attempts
 * of a command's retry loop.
 */
bool signals_sleep_ms(volatile sig_atomic_t *stop, long ms);

#endif
