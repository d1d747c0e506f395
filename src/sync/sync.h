/*
 * sync.h - the `cht-sync sync` command: sets up the schema, runs one
 * worker per database in COUCHDB_DBS, and stops them all on SIGTERM/SIGINT.
 */
#ifndef CS_SYNC_H
#define CS_SYNC_H

#include "common/config.h"

int sync_main(const cs_config *cfg, int argc, char **argv);

#endif
