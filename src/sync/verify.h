/*
 * verify.h - the `cht-sync verify [--repair]` command: proves, per database
 * of COUCHDB_DBS, that the raw table holds CouchDB's documents (ids,
 * winning revisions, deleted or not), prints the drift, and with --repair
 * re-reads exactly the drifting documents and stores them the way the sync
 * does (docs/sync.md, "Verify").
 *
 * Exit status: 0 no drift (after --repair: none left), 1 drift found (left),
 * 2 bad usage or settings, 3 a database could not be checked.
 */
#ifndef CS_VERIFY_H
#define CS_VERIFY_H

#include "common/config.h"

int verify_main(const cs_config *cfg, int argc, char **argv);

#endif
