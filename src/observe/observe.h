/*
 * observe.h - the commands that look at a deployment rather than move
 * data: `cht-sync status` (what the tables say, for when no process is
 * running) and `cht-sync estimate` (disk and time a first sync will take).
 */
#ifndef CS_OBSERVE_H
#define CS_OBSERVE_H

#include "common/config.h"

/*
 * `cht-sync status [--max-age SECONDS]`: progress, rejects and the models'
 * last results from PostgreSQL alone.  Exit status: 0 healthy (every
 * database of COUCHDB_DBS updated within max-age, none failing, every
 * model's last run a success), 1 something is wrong (printed), 2 bad usage,
 * 3 PostgreSQL cannot be read or the sync never ran there.
 */
int status_main(const cs_config *cfg, int argc, char **argv);

/*
 * `cht-sync estimate [--sample N] [--keep]`: reads a sample of each
 * database, stores it into a scratch schema with the real store, and
 * extrapolates disk (raw table, its indexes) and backfill time from the
 * database's size.  Exit status 0, 1 when a database or PostgreSQL could
 * not be read, 2 bad usage.
 */
int estimate_main(const cs_config *cfg, int argc, char **argv);

#endif
