/*
 * pace.h - how long the model loop of `cht-sync run` waits between two
 * runs while the sync in the same process is catching up.
 *
 * A commit of a full batch (BATCH_SIZE rows) means the sync is behind its
 * feed: a backfill.  Running the models after every such commit makes them
 * take the database's CPU from the sync for work that a later, larger run
 * does for less (a merge of a few thousand rows costs about twice as much
 * per row as one of tens of thousands).  So while every commit since the
 * last run was a full batch, the next run waits PACE_FACTOR times the last
 * run's duration (at most PACE_CAP_MS): the models take at most
 * 1 / (1 + PACE_FACTOR) of the time and the tables still refresh during a
 * long backfill.  A factor of 3 made the raw table complete a little sooner
 * but the models much later (their work moved after the sync instead of
 * beside it), hence 1.  One smaller batch (a database that has caught up)
 * ends the pacing at once, so a write in steady state waits for no pause.
 */
#ifndef CS_PACE_H
#define CS_PACE_H

#define PACE_FACTOR 1
#define PACE_CAP_MS 30000L

/*
 * The pause in milliseconds after a model run that took run_ms, given the
 * sync's commits since the last run: full ones (batches of BATCH_SIZE
 * rows) and partial ones (smaller).  0: run as soon as there is work.
 */
long pace_after_run(double run_ms, unsigned full, unsigned partial);

#endif
