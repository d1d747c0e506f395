/*
 * test_reader_policy.c - the reader's retry, resync and batch-size policy,
 * driven without a server: outages and back-off bounds, a database that
 * vanishes and comes back, one re-created behind our checkpoint, and the
 * request limit shrinking under large documents and growing back.
 */
#include <stdlib.h>

#include "common/backoff.h"
#include "sync/reader_policy.h"
#include "unit.h"

#define MIB ((size_t)1 << 20)

/* a policy that has looked at its database and is ready to read */
static void start(reader_policy *p, const char *since, int batch_size)
{
    bool oom = true;
    CHECK(rp_init(p, since, batch_size, 64 * MIB));
    CHECK_INT(rp_next(p), RP_INSPECT);
    CHECK_INT(rp_inspected(p, NULL, false, &oom), RP_RESYNC_NONE);
    CHECK(!oom);
    CHECK_INT(rp_next(p), RP_FETCH);
}

static rp_outcome answer(reader_policy *p, size_t rows, const char *last_seq)
{
    rp_response r = {.rows = rows, .last_seq = last_seq};
    return rp_fetched(p, &r);
}

static void test_catch_up_then_wait(void)
{
    reader_policy p;
    rp_outcome o;

    start(&p, "0", 100);
    CHECK_INT(rp_wait_ms(&p, 60000), 0); /* a normal feed while behind */
    o = answer(&p, 100 * RP_PAGE_BATCHES, "100");
    CHECK(!o.caught_up);
    CHECK_STR(p.since, "100");
    CHECK_INT(rp_wait_ms(&p, 60000), 0);
    o = answer(&p, 40, "140");
    CHECK(o.caught_up); /* fewer rows than the limit, no pending */
    CHECK_STR(p.since, "140");
    CHECK_INT(rp_wait_ms(&p, 60000), 60000);
    CHECK_INT(rp_next(&p), RP_FETCH);
    /* caught up with nothing new: look at the database again */
    answer(&p, 0, "140");
    CHECK_INT(rp_next(&p), RP_INSPECT);
    rp_free(&p);
}

static void test_pending_decides(void)
{
    reader_policy p;
    rp_response r = {.rows = 100 * RP_PAGE_BATCHES, .has_pending = true, .last_seq = "9-opaque"};

    start(&p, "0", 100);
    CHECK(rp_fetched(&p, &r).caught_up); /* a full page, but nothing pending */
    r.rows = 3;
    r.pending = 12;
    CHECK(!rp_fetched(&p, &r).caught_up); /* a short page with more to come */
    CHECK_STR(p.since, "9-opaque");
    rp_free(&p);
}

static void test_idle_keeps_since(void)
{
    reader_policy p;
    rp_response idle = {.idle = true};

    start(&p, "7", 100);
    answer(&p, 0, "7");
    CHECK(p.caught_up);
    rp_fetched(&p, &idle);
    CHECK(p.caught_up);
    CHECK_STR(p.since, "7");
    CHECK_INT(rp_next(&p), RP_INSPECT); /* once per idle wait */
    rp_free(&p);
}

static void test_outage_backoff_bounds(void)
{
    reader_policy p;
    long caps[] = {250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};

    start(&p, "5", 100);
    for (int i = 0; i < (int)(sizeof(caps) / sizeof(caps[0])); i++) {
        /* the lowest and highest jitter of this attempt */
        CHECK_INT(backoff_jitter_ms(i, (unsigned long)caps[i] / 2), caps[i]);
        CHECK_INT(backoff_jitter_ms(i, (unsigned long)caps[i] / 2 + 1),
                  caps[i] / 2); /* never above */
        CHECK_INT(rp_transient(&p, 0), caps[i] / 2);
    }
    CHECK_INT(rp_next(&p), RP_FETCH); /* a transient failure keeps the state */
    CHECK_STR(p.since, "5");
    answer(&p, 10, "15");
    CHECK_INT(p.attempts, 0); /* recovered: the next outage starts short */
    CHECK_INT(rp_transient(&p, 0), 125);
    rp_free(&p);
}

static void test_vanished_and_back(void)
{
    reader_policy p;
    rp_outcome o;
    bool oom;

    start(&p, "0", 100);
    answer(&p, 30, "30");
    rp_transient(&p, 0);
    rp_permanent(&p, 404);
    CHECK(p.vanished);
    CHECK_INT(p.attempts, 0);
    CHECK_INT(rp_next(&p), RP_INSPECT);
    /* still gone: another 404 from the inspection */
    rp_permanent(&p, 404);
    CHECK(p.vanished);
    /* back: read it again from 0, the first batch says so, once */
    CHECK_INT(rp_inspected(&p, "40", true, &oom), RP_RESYNC_BACK);
    CHECK_STR(p.since, "0");
    CHECK_INT(rp_next(&p), RP_FETCH);
    o = answer(&p, 100, "100");
    CHECK(o.restart);
    CHECK(!p.vanished);
    o = answer(&p, 5, "105");
    CHECK(!o.restart);
    rp_free(&p);
}

static void test_other_permanent_failures(void)
{
    reader_policy p;
    bool oom;

    start(&p, "30", 100);
    rp_permanent(&p, 403); /* not a vanished database */
    CHECK(!p.vanished);
    CHECK_INT(rp_inspected(&p, "30", true, &oom), RP_RESYNC_NONE);
    CHECK_STR(p.since, "30");
    rp_free(&p);
    /* a 404 before anything was read is not a re-creation */
    start(&p, "0", 100);
    rp_permanent(&p, 404);
    CHECK(!p.vanished);
    rp_free(&p);
}

static void test_recreated_behind(void)
{
    static const struct {
        const char *since, *update_seq;
        bool is_number;
        rp_resync want;
    } cases[] = {
        {"500", "20", true, RP_RESYNC_BEHIND},
        {"500", "500", true, RP_RESYNC_NONE},
        {"500", "501", true, RP_RESYNC_NONE},
        {"500", "20", false, RP_RESYNC_NONE},            /* a string: never compared */
        {"9-g1AAAA", "2-g1AAAA", false, RP_RESYNC_NONE}, /* opaque */
        {"0", "0", true, RP_RESYNC_NONE},
        {"500", NULL, false, RP_RESYNC_NONE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        reader_policy p;
        bool oom;
        CHECK(rp_init(&p, cases[i].since, 100, MIB));
        CHECK_INT(rp_inspected(&p, cases[i].update_seq, cases[i].is_number, &oom), cases[i].want);
        CHECK_STR(p.since, cases[i].want == RP_RESYNC_NONE ? cases[i].since : "0");
        CHECK_INT(p.restart, cases[i].want != RP_RESYNC_NONE);
        rp_free(&p);
    }
}

static void test_cuts(void)
{
    reader_policy p;
    bool oom;

    CHECK(rp_init(&p, "0", 100, MIB));
    CHECK_INT(p.limit, 100 * RP_PAGE_BATCHES); /* a request spans several batches */
    CHECK(!rp_cut_due(&p, 99, MIB - 1));
    CHECK(rp_cut_due(&p, 100, 0));     /* BATCH_SIZE rows */
    CHECK(rp_cut_due(&p, 1, MIB));     /* BATCH_MAX_BYTES of documents */
    CHECK(rp_cut_due(&p, 1, 5 * MIB)); /* one document over the budget */
    CHECK_INT(rp_inspected(&p, NULL, false, &oom), RP_RESYNC_NONE);
    /* a cut batch moves since to its last row's seq, or leaves it */
    CHECK(!rp_cut(&p, "100"));
    CHECK_STR(p.since, "100");
    CHECK(!rp_cut(&p, NULL)); /* CouchDB 3 between seq_interval rows */
    CHECK_STR(p.since, "100");
    /* a response that breaks later is asked again from the last cut */
    rp_transient(&p, 0);
    CHECK_STR(p.since, "100");
    CHECK_INT(rp_next(&p), RP_FETCH);
    /* the whole response: caught up by its own row count, not a batch's */
    rp_outcome o = answer(&p, 100 * RP_PAGE_BATCHES, "500");
    CHECK(!o.caught_up);
    o = answer(&p, 100 * RP_PAGE_BATCHES - 1, "999");
    CHECK(o.caught_up);
    CHECK_STR(p.since, "999");
    rp_free(&p);
}

static void test_resync_flag_goes_to_the_first_batch(void)
{
    reader_policy p;
    bool oom;

    start(&p, "40", 10);
    rp_permanent(&p, 404);
    CHECK_INT(rp_inspected(&p, "50", true, &oom), RP_RESYNC_BACK);
    CHECK(rp_cut(&p, "10"));  /* the first cut batch of the resync */
    CHECK(!rp_cut(&p, "20")); /* not the next */
    CHECK(!answer(&p, 25, "25").restart);
    rp_free(&p);
    /* a resync whose first response is not cut: its only batch */
    start(&p, "40", 10);
    rp_permanent(&p, 404);
    CHECK_INT(rp_inspected(&p, "50", true, &oom), RP_RESYNC_BACK);
    CHECK(answer(&p, 3, "3").restart);
    rp_free(&p);
}

int main(void)
{
    UNIT_BEGIN("test_reader_policy");
    RUN(test_catch_up_then_wait);
    RUN(test_pending_decides);
    RUN(test_idle_keeps_since);
    RUN(test_outage_backoff_bounds);
    RUN(test_vanished_and_back);
    RUN(test_other_permanent_failures);
    RUN(test_recreated_behind);
    RUN(test_cuts);
    RUN(test_resync_flag_goes_to_the_first_batch);
    UNIT_END();
}
