/*
 * render.h - what the HTTP server answers, formed from a stats snapshot:
 * the Prometheus text of /metrics, the verdict of /readyz and the status
 * page.  Pure functions of a snapshot (no I/O, no locks), so a unit test
 * feeds a snapshot and reads the text.
 *
 * The metric names CHT Watchdog reads (couch2pg_*, dbt_*) keep their
 * names, types, labels and meanings (docs/observe.md); everything else is
 * under the cht_sync_ prefix.  Labels are database names, the CouchDB host
 * name and model names: never a URL, a user or a password.
 */
#ifndef CS_RENDER_H
#define CS_RENDER_H

#include <stdbool.h>

#include "common/buf.h"
#include "common/stats.h"

/* couch2pg_up is 1 when the last batch is at most this old (as today) */
#define RENDER_UP_SECONDS 60
/* a source failing for longer than this is not ready */
#define RENDER_FAIL_GRACE_SECONDS 5

typedef struct {
    int longpoll_seconds; /* a caught-up source stores an idle batch this often */
} render_opts;

/* Appends the Prometheus text exposition (version 0.0.4) of s. */
void render_metrics(buf *out, const stats_snapshot *s, const render_opts *o);

/*
 * Every source caught up or making progress and no model failing: true.
 * Appends one line per source and per failing model saying why.
 */
bool render_ready(buf *out, const stats_snapshot *s, const render_opts *o);

/* Appends the status page (HTML, no external assets). */
void render_page(buf *out, const stats_snapshot *s, const render_opts *o);

#endif
