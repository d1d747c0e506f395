/*
 * verify.c - see verify.h.
 *
 * Per database: CouchDB's listing (feed/doclist.h) is streamed page by page
 * into PostgreSQL (store/drift.h), where it is compared with the raw table;
 * only the counts and a few ids per kind come back.  Memory is one page's
 * parse and one COPY line, whatever the database's size.
 *
 * --repair walks the drifting ids in pages of BATCH_SIZE, re-reads those
 * documents from CouchDB with the sync's parser and cleaner, and stores
 * each page as one batch through store_write: the same transaction, the
 * same ordering rule (docs/ordering.md), the rejects table for what
 * PostgreSQL refuses.  Rows CouchDB does not know are written as deleted
 * stubs, the way a re-created database's leftovers are.  Then the database
 * is verified again from the start (and repaired again, a bounded number
 * of rounds, if a running sync overwrote a repaired document with an older
 * read); the last result is the one the exit status reports.
 */
#include "sync/verify.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/monotime.h"
#include "common/signals.h"
#include "feed/batch.h"
#include "feed/couch.h"
#include "feed/doclist.h"
#include "store/drift.h"
#include "store/store.h"

#define EXIT_DRIFT 1
#define EXIT_USAGE 2
#define EXIT_UNCHECKED 3
#define MAX_DEPTH 512
/* a failed request or statement is repeated this many times, backing off */
#define PAGE_ATTEMPTS 5
/* a comparison that lost its connection starts over this many times */
#define DB_ATTEMPTS 3
/* repair, verify again, at most this many times */
#define REPAIR_ROUNDS 3
/* ids shown per kind unless --show says otherwise */
#define SHOW_DEFAULT 10
/* bytes of an id printed before it is cut */
#define ID_SHOWN_MAX 160

static volatile sig_atomic_t stop_requested;

static const char *const kind_names[DRIFT_KINDS] = {
    [DRIFT_MISSING] = "missing",
    [DRIFT_EXTRA] = "extra",
    [DRIFT_STALE] = "stale revision",
    [DRIFT_DELETED] = "deletion mismatch",
    [DRIFT_REJECTED] = "rejected (in the rejects table at CouchDB's revision, not drift)",
};

typedef struct {
    const cs_config *cfg;
    const char *db;
    char *source;
    couch_client *couch;
    doclist *list;
    drift *drift;
    int show;
} verifier;

/* waits before the attempt-th repetition; false when asked to stop */
static bool back_off(int attempt)
{
    return signals_sleep_ms(&stop_requested, 250L << (attempt < 6 ? attempt : 6));
}

/* ---- printing ids for a terminal ---- */

/* length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned cp;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        len = 2, cp = p[0] & 0x1F;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
        len = 3, cp = p[0] & 0x0F;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        len = 4, cp = p[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

/* code point of a valid sequence */
static unsigned utf8_cp(const unsigned char *p, size_t len)
{
    unsigned cp = len == 1 ? p[0] : p[0] & (0x3F >> (len - 1));
    for (size_t i = 1; i < len; i++)
        cp = (cp << 6) | (p[i] & 0x3F);
    return cp;
}

/*
 * Prints id in double quotes so that a terminal shows it and does nothing
 * else: quotes and backslashes are escaped, control characters (C0, DEL,
 * C1) and the bidirectional overrides become \u escapes, bytes that are not
 * UTF-8 become \xNN, and a long id is cut with "...".
 */
static void print_id(FILE *out, const char *id)
{
    const unsigned char *p = (const unsigned char *)id;
    size_t n = strlen(id), i = 0;

    fputc('"', out);
    while (i < n && i < ID_SHOWN_MAX) {
        size_t len = utf8_len(p + i, n - i);
        unsigned cp = len ? utf8_cp(p + i, len) : 0;
        if (len == 0)
            fprintf(out, "\\x%02X", p[i]);
        else if (cp == '"' || cp == '\\')
            fprintf(out, "\\%c", (char)cp);
        else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || (cp >= 0x200E && cp <= 0x200F) ||
                 (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069))
            fprintf(out, "\\u%04X", cp);
        else
            fwrite(p + i, 1, len, out);
        i += len ? len : 1;
    }
    fputc('"', out);
    if (i < n)
        fputs("...", out);
}

static void print_report(const verifier *v, const drift_report *r, const char *when, double ms)
{
    long long total = 0;

    for (int k = 0; k < DRIFT_KINDS; k++)
        if (k != DRIFT_REJECTED)
            total += r->count[k];
    printf("%s: %lld documents in CouchDB (%lld deleted), %lld rows in the raw table (%lld "
           "deleted), compared in %.1f s\n",
           v->db, r->couch_docs, r->couch_deleted, r->rows, r->rows_deleted, ms / 1000.0);
    if (total == 0)
        printf("%s: no drift%s\n", v->db, when);
    else
        printf("%s: DRIFT in %lld documents%s\n", v->db, total, when);
    for (int k = 0; k < DRIFT_KINDS; k++) {
        if (r->count[k] == 0)
            continue;
        printf("  %s %lld:", kind_names[k], r->count[k]);
        for (int i = 0; i < r->nsample[k] && i < v->show; i++) {
            const drift_sample *s = &r->sample[k][i];
            fputs(i ? ", " : " ", stdout);
            print_id(stdout, s->id);
            if (k == DRIFT_STALE)
                printf(" (CouchDB %s, table %s)", s->couch_rev ? s->couch_rev : "?",
                       s->table_rev ? s->table_rev : "none");
        }
        if (r->count[k] > v->show)
            fputs(v->show > 0 ? ", ..." : " ...", stdout);
        fputc('\n', stdout);
    }
    fflush(stdout);
}

static long long drift_total(const drift_report *r)
{
    long long total = 0;
    for (int k = 0; k < DRIFT_KINDS; k++)
        if (k != DRIFT_REJECTED)
            total += r->count[k];
    return total;
}

/* ---- listing and comparing ---- */

static cs_result put_doc(void *ud, const char *id, const char *rev, bool deleted, cs_error *err)
{
    return drift_put(ud, id, rev, deleted, err);
}

/* CouchDB's whole listing into the comparison tables */
static cs_result list_all(verifier *v, cs_error *err)
{
    char *since = strdup("0");
    long long pages = 0;
    cs_result rc = CS_OK;
    bool done = false;

    if (!since)
        return cs_fail(err, CS_TRANSIENT, "out of memory");
    if ((rc = drift_begin(v->drift, err)) != CS_OK)
        goto out;
    while (!done) {
        const char *next = NULL;
        for (int attempt = 0;; attempt++) {
            if (stop_requested) {
                rc = cs_fail(err, CS_STOPPED, "stopped");
                goto out;
            }
            if ((rc = drift_page_begin(v->drift, err)) != CS_OK)
                goto out; /* the connection is gone: the caller starts over */
            rc = doclist_page(v->list, since, v->cfg->batch_size, put_doc, v->drift, &next, &done,
                              err);
            cs_error end_err;
            cs_result end_rc = drift_page_end(v->drift, rc == CS_OK, &end_err);
            if (rc == CS_OK && end_rc != CS_OK) {
                *err = end_err;
                rc = end_rc;
                goto out;
            }
            if (rc == CS_OK)
                break;
            if (rc != CS_TRANSIENT || attempt + 1 >= PAGE_ATTEMPTS)
                goto out;
            log_warn(v->db, "%s (retrying)", err->msg);
            if (!back_off(attempt)) {
                rc = cs_fail(err, CS_STOPPED, "stopped");
                goto out;
            }
        }
        char *n = strdup(next);
        if (!n) {
            rc = cs_fail(err, CS_TRANSIENT, "out of memory");
            goto out;
        }
        free(since);
        since = n;
        pages++;
    }
    log_debug(v->db, "listed CouchDB's documents in %lld pages", pages);
out:
    free(since);
    return rc;
}

/* a whole comparison, started over when PostgreSQL's connection was lost */
static cs_result check(verifier *v, drift_report *r, double *ms, cs_error *err)
{
    cs_result rc = CS_OK;

    for (int attempt = 0; attempt < DB_ATTEMPTS; attempt++) {
        double t0 = monotime_ms();
        drift_report_free(r);
        rc = list_all(v, err);
        if (rc == CS_OK)
            rc = drift_compare(v->drift, v->show, r, err);
        *ms = monotime_ms() - t0;
        if (rc != CS_TRANSIENT)
            break;
        drift_disconnect(v->drift);
        log_warn(v->db, "%s (starting the comparison again)", err->msg);
        if (!back_off(attempt))
            return cs_fail(err, CS_STOPPED, "stopped");
    }
    return rc;
}

/* ---- repair ---- */

typedef struct {
    batch *b;
    const char **ids;
    size_t nids;
    long long by_kind[DRIFT_KINDS];
} repair_page;

/* an id to read again; an extra row first gets its deleted stub, which the
 * document read back from CouchDB (if it exists by now) replaces: the last
 * row of an id in a batch wins */
static cs_result collect(void *ud, const char *id, drift_kind kind, const char *stub, cs_error *err)
{
    repair_page *p = ud;
    const char *copy = batch_strdup(p->b, id);

    if (!copy)
        return cs_fail(err, CS_TRANSIENT, "out of memory");
    p->ids[p->nids++] = copy;
    p->by_kind[kind]++;
    if (kind == DRIFT_EXTRA && stub) {
        change_row row = {.id = copy, .deleted = true, .doc = stub, .doc_len = strlen(stub)};
        if (!batch_add(p->b, &row))
            return cs_fail(err, CS_TRANSIENT, "out of memory");
    }
    return CS_OK;
}

static cs_result add_row(void *ud, const change_row *row, cs_error *err)
{
    repair_page *p = ud;
    if (!batch_add(p->b, row))
        return cs_fail(err, CS_TRANSIENT, "out of memory holding document \"%.64s\"", row->id);
    return CS_OK;
}

/* one page of drifting ids: read again and stored in one batch */
static cs_result repair_one(verifier *v, store *st, repair_page *p, char **after, int *n,
                            store_stats *stats, cs_error *err)
{
    cs_result rc;

    batch_reset(p->b);
    p->nids = 0;
    memset(p->by_kind, 0, sizeof(p->by_kind));
    if ((rc = drift_next(v->drift, after, v->cfg->batch_size, collect, p, n, err)) != CS_OK ||
        *n == 0)
        return rc;
    if ((rc = doclist_fetch(v->list, p->ids, p->nids, add_row, p, err)) != CS_OK)
        return rc;
    /* no last_seq: the sync's checkpoint stays where it is */
    p->b->kind = BATCH_CHANGES;
    return store_write(st, p->b, stats, err);
}

static cs_result repair(verifier *v, cs_error *err)
{
    store *st = store_new(v->cfg, v->source, v->db, &stop_requested);
    repair_page p = {batch_new(), calloc((size_t)v->cfg->batch_size, sizeof(char *)), 0, {0}};
    long long done[DRIFT_KINDS] = {0}, stored = 0, rejected = 0;
    char *after = NULL, *seq = NULL;
    cs_result rc = CS_OK;

    if (!st || !p.b || !p.ids) {
        rc = cs_fail(err, CS_TRANSIENT, "out of memory");
        goto out;
    }
    for (;;) {
        char *before = after ? strdup(after) : NULL;
        store_stats stats = {0};
        int n = 0;

        if (after && !before) {
            rc = cs_fail(err, CS_TRANSIENT, "out of memory");
            goto out;
        }
        for (int attempt = 0;; attempt++) {
            /* the source's writer lock: a repair never writes beside a
             * running sync of the same source (it says which process) */
            if ((rc = store_open(st, false, &seq, NULL, err)) == CS_OK) {
                free(seq);
                seq = NULL;
                rc = repair_one(v, st, &p, &after, &n, &stats, err);
            }
            if (rc == CS_OK || rc != CS_TRANSIENT || attempt + 1 >= PAGE_ATTEMPTS)
                break;
            log_warn(v->db, "%s (retrying)", err->msg);
            store_disconnect(st);
            free(after); /* the page again, from where it started */
            after = before ? strdup(before) : NULL;
            if (!back_off(attempt)) {
                rc = cs_fail(err, CS_STOPPED, "stopped");
                break;
            }
        }
        free(before);
        if (rc != CS_OK || n == 0)
            break;
        for (int k = 0; k < DRIFT_KINDS; k++)
            done[k] += p.by_kind[k];
        stored += (long long)stats.stored;
        rejected += (long long)stats.rejected;
    }
    if (rc == CS_OK)
        printf("%s: repaired %lld missing, %lld extra (stored as deleted unless CouchDB has them "
               "now), %lld stale, %lld deletion mismatches: %lld rows stored, %lld rejected\n",
               v->db, done[DRIFT_MISSING], done[DRIFT_EXTRA], done[DRIFT_STALE],
               done[DRIFT_DELETED], stored, rejected);
out:
    free(after);
    free(p.ids);
    batch_free(p.b);
    store_free(st);
    return rc;
}

/* ---- one database ---- */

/* EXIT_SUCCESS, EXIT_DRIFT or EXIT_UNCHECKED */
static int verify_db(const cs_config *cfg, const char *db, bool do_repair, int show)
{
    changes_limits limits = {(size_t)cfg->max_doc_bytes, MAX_DEPTH};
    verifier v = {cfg, db, NULL, NULL, NULL, NULL, show};
    drift_report r;
    cs_error err;
    cs_result rc;
    double ms = 0;
    int status = EXIT_UNCHECKED;

    memset(&r, 0, sizeof(r));
    if (asprintf(&v.source, "%s/%s", cfg->couchdb_host, db) < 0)
        v.source = NULL;
    if (v.source)
        v.couch = couch_new(cfg, db, &stop_requested);
    if (v.couch)
        v.list = doclist_new(v.couch, &limits);
    if (v.source)
        v.drift = drift_new(cfg, v.source);
    if (!v.list || !v.drift) {
        log_error(db, "could not verify: out of memory");
        goto out;
    }
    rc = check(&v, &r, &ms, &err);
    if (rc == CS_OK)
        print_report(&v, &r, "", ms);
    /* a document the sync rewrote between our read and our write may be
     * older now: the next round finds it and reads it again */
    for (int round = 0; rc == CS_OK && do_repair && drift_total(&r) > 0 && round < REPAIR_ROUNDS;
         round++) {
        rc = repair(&v, &err);
        if (rc == CS_OK)
            rc = check(&v, &r, &ms, &err);
        if (rc == CS_OK)
            print_report(&v, &r, " after the repair", ms);
    }
    if (rc != CS_OK) {
        log_error(db, "could not verify source \"%s\": %s", v.source, err.msg);
        printf("%s: NOT CHECKED: %s\n", db, err.msg);
        goto out;
    }
    status = drift_total(&r) > 0 ? EXIT_DRIFT : EXIT_SUCCESS;
out:
    drift_report_free(&r);
    drift_free(v.drift);
    doclist_free(v.list);
    couch_free(v.couch);
    free(v.source);
    return status;
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: cht-sync verify [--repair] [--show N] [SETTINGS]\n\n"
            "Compares every database of COUCHDB_DBS with its rows in the raw table (ids,\n"
            "winning revisions, deleted or not) and prints the drift: missing, extra, stale\n"
            "revision, deletion mismatch. With --repair, re-reads the drifting documents,\n"
            "stores them as the sync does, and verifies again. --show N: ids shown per kind\n"
            "(default %d, at most %d).\n\n"
            "Exit status: 0 no drift (after --repair: none left), 1 drift, 2 bad usage,\n"
            "3 a database could not be checked.\n",
            SHOW_DEFAULT, DRIFT_SAMPLE_MAX);
}

int verify_main(const cs_config *cfg, int argc, char **argv)
{
    bool do_repair = false;
    int show = SHOW_DEFAULT, status = EXIT_SUCCESS, drifting = 0, unchecked = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--repair") == 0) {
            do_repair = true;
        } else if (strcmp(argv[i], "--show") == 0 && i + 1 < argc) {
            char *end;
            long n = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || n < 0 || n > DRIFT_SAMPLE_MAX) {
                fprintf(stderr, "cht-sync verify: --show takes 0 to %d\n", DRIFT_SAMPLE_MAX);
                return EXIT_USAGE;
            }
            show = (int)n;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return EXIT_SUCCESS;
        } else {
            fprintf(stderr, "cht-sync verify: unknown option \"%s\"\n", argv[i]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (cfg->ndbs == 0) {
        fprintf(stderr, "cht-sync verify: COUCHDB_DBS names no database\n");
        return EXIT_USAGE;
    }
    signals_install(&stop_requested, NULL);
    if (!couch_global_init()) {
        log_error(NULL, "could not initialise libcurl");
        return EXIT_UNCHECKED;
    }
    for (int i = 0; i < cfg->ndbs && !stop_requested; i++) {
        int s = verify_db(cfg, cfg->dbs[i], do_repair, show);
        drifting += s == EXIT_DRIFT;
        unchecked += s == EXIT_UNCHECKED;
    }
    couch_global_cleanup();
    if (stop_requested)
        unchecked = cfg->ndbs - drifting;
    if (unchecked > 0) {
        printf("verify: %d of %d databases could not be checked, %d with drift\n", unchecked,
               cfg->ndbs, drifting);
        status = EXIT_UNCHECKED;
    } else if (drifting > 0) {
        printf("verify: drift in %d of %d databases\n", drifting, cfg->ndbs);
        status = EXIT_DRIFT;
    } else {
        printf("verify: no drift in %d database%s\n", cfg->ndbs, cfg->ndbs == 1 ? "" : "s");
    }
    return status;
}
