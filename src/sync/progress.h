/*
 * progress.h - what the sync shows a person while it works.
 *
 * On a terminal: one line per database, redrawn every second while any is
 * catching up (done of total, changes/s, time left), from the published
 * counters (common/stats.h).  Without a terminal, or once every database
 * has caught up: one summary line every PROGRESS_SUMMARY_SECONDS when
 * something was stored, instead of a line per batch.
 */
#ifndef CS_PROGRESS_H
#define CS_PROGRESS_H

#include <stdbool.h>

#define PROGRESS_SUMMARY_SECONDS 10

typedef struct progress progress;

/* Starts the display thread; tty selects the per-database lines. */
progress *progress_start(bool tty);
/* Draws the last state, stops the thread and frees p (NULL is fine). */
void progress_stop(progress *p);

#endif
