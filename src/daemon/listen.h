/*
 * listen.h - how a model runner in another process hears of new raw rows:
 * one PostgreSQL connection that LISTENs on cht_sync, the channel every
 * cht-sync writer NOTIFYs in its commit with the payload "<schema>.<table>"
 * (docs/ordering.md).  The caller polls listener_fd beside its own wake-up
 * pipe, so nothing is polled on a timer.
 */
#ifndef CS_LISTEN_H
#define CS_LISTEN_H

#include <stdbool.h>

#include "common/config.h"
#include "common/result.h"

typedef struct listener listener;

/* not connected until listener_connect; cfg is borrowed */
listener *listener_new(const cs_config *cfg);
void listener_free(listener *l);

/*
 * (Re)connects and LISTENs.  A fresh connection may have missed commits,
 * so the caller runs the models after each successful connect.
 * CS_TRANSIENT: unreachable (retry with back-off); CS_PERMANENT: login.
 */
cs_result listener_connect(listener *l, cs_error *err) CS_MUST_CHECK;

/* the socket to poll for input, -1 when not connected */
int listener_fd(const listener *l);

/*
 * Reads what arrived on the socket and drains every notification; *ours is
 * true when one named this process's raw table.  A lost connection is
 * CS_TRANSIENT (the listener is then disconnected).
 */
cs_result listener_drain(listener *l, bool *ours, cs_error *err) CS_MUST_CHECK;

#endif
