/*
 * reader_policy.c - see reader_policy.h.  Every function here is a pure
 * transition of the struct: no I/O, no clock, no randomness of its own.
 */
#include "sync/reader_policy.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/backoff.h"

static bool all_digits(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* replaces since by a copy of s; false (since unchanged) when out of memory */
static bool set_since(reader_policy *p, const char *s)
{
    char *n = strdup(s);
    if (!n)
        return false;
    free(p->since);
    p->since = n;
    return true;
}

bool rp_init(reader_policy *p, const char *checkpoint, int batch_size, size_t max_bytes)
{
    memset(p, 0, sizeof(*p));
    p->batch_size = batch_size > 0 ? batch_size : 1;
    p->limit = p->batch_size * RP_PAGE_BATCHES;
    p->max_bytes = max_bytes;
    return set_since(p, checkpoint ? checkpoint : "0");
}

void rp_free(reader_policy *p)
{
    free(p->since);
    p->since = NULL;
}

rp_step rp_next(const reader_policy *p)
{
    return p->inspected ? RP_FETCH : RP_INSPECT;
}

int rp_wait_ms(const reader_policy *p, int longpoll_ms)
{
    return p->caught_up ? longpoll_ms : 0;
}

rp_resync rp_inspected(reader_policy *p, const char *update_seq, bool is_number, bool *oom)
{
    rp_resync why = RP_RESYNC_NONE;

    *oom = false;
    if (is_number && all_digits(p->since) && all_digits(update_seq) &&
        strtoull(update_seq, NULL, 10) < strtoull(p->since, NULL, 10))
        why = RP_RESYNC_BEHIND;
    else if (p->vanished && strcmp(p->since, "0") != 0)
        why = RP_RESYNC_BACK;
    if (why != RP_RESYNC_NONE) {
        if (!set_since(p, "0")) {
            *oom = true;
            return RP_RESYNC_NONE;
        }
        p->restart = true;
    }
    p->inspected = true;
    return why;
}

long rp_transient(reader_policy *p, unsigned long rnd)
{
    return backoff_jitter_ms(p->attempts++, rnd);
}

void rp_permanent(reader_policy *p, long http_status)
{
    /* a database that vanished after we followed it may come back: it is
     * then read again from the start */
    if (strcmp(p->since, "0") != 0 && http_status == 404)
        p->vanished = true;
    p->inspected = false;
    p->attempts = 0;
}

bool rp_cut_due(const reader_policy *p, size_t nrows, size_t bytes)
{
    return nrows >= (size_t)p->batch_size || bytes >= p->max_bytes;
}

bool rp_cut(reader_policy *p, const char *seq)
{
    bool first = p->restart;

    p->restart = false;
    if (seq)
        (void)set_since(p, seq); /* out of memory: asked again from before, harmless */
    return first;
}

rp_outcome rp_fetched(reader_policy *p, const rp_response *r)
{
    rp_outcome o = {0};

    p->attempts = 0;
    p->vanished = false;
    if (!r->idle) {
        o.caught_up = r->has_pending ? r->pending == 0 : r->rows < (size_t)p->limit;
        o.restart = p->restart;
        p->restart = false;
        if (r->last_seq)
            (void)set_since(p, r->last_seq);
    }
    p->caught_up = r->idle || o.caught_up;
    /* a quiet feed may also mean the database was re-created behind a
     * sequence it has not reached again: look at it once per idle wait */
    if (r->idle || (p->caught_up && r->rows == 0))
        p->inspected = false;
    return o;
}
