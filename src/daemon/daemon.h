/*
 * daemon.h - `cht-sync run`: the sync and the models in one process, or
 * (--models-only) a long-running model runner that hears of the commits of
 * sync processes elsewhere through PostgreSQL's LISTEN/NOTIFY.
 *
 * The models run after commits, incrementally; commits that arrive while a
 * run is going are gathered into the next run.  DATAEMON_INTERVAL bounds
 * the wait when nothing is heard.  See docs/daemon.md.
 */
#ifndef CS_DAEMON_H
#define CS_DAEMON_H

#include <stdio.h>

#include "common/config.h"

/* `cht-sync run [--models-only] [--once]`: exit 0 stopped or caught up,
 * 1 a failure (a model failed with --once, the sync failed), 2 usage or
 * project errors */
int daemon_main(const cs_config *cfg, int argc, char **argv);

void daemon_usage(FILE *out);

#endif
