/*
 * xalloc.h - allocation that aborts on failure, for the pipeline engine
 * (project loader, YAML tree, template engine, graph, selection, runner).
 *
 * Why abort is acceptable there: the pipeline holds a model project and
 * its rendered SQL, a few megabytes bounded by the project's files (each
 * capped at load) and by the buf caps of rendering.  Failing to allocate
 * that little means the machine is out of memory; unwinding every
 * allocation site of a template engine through error paths would add far
 * more risk than it removes.  The process exits with a message and the
 * supervisor restarts it; nothing half-written survives, because every
 * model runs in one transaction.  The sync path (couch, changes, store)
 * does not use this: a huge document there must fail cleanly, not abort.
 *
 * A size of 0 allocates 1 byte, so that NULL always means failure.
 */
#ifndef CS_XALLOC_H
#define CS_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* grows arr (with n items) by one item; arr is reassigned */
#define XGROW(arr, n) ((arr) = xrealloc((arr), ((n) + 1) * sizeof(*(arr))))

#endif
