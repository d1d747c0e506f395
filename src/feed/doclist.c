/*
 * doclist.c - see doclist.h.
 *
 * Both requests go through couch_db_request and the sync's streaming
 * _changes parser: the listing reads rows without documents (the parser
 * then marks live rows "change has no document", which is expected here and
 * ignored), the re-read reads them with documents exactly as the sync does.
 */
#include "feed/doclist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

/* a since value or one id list larger than this is refused */
#define URL_MAX (64 * 1024)
#define IDS_BODY_MAX ((size_t)64 << 20)
/* CouchDB 2+ looks doc_ids up one by one, instead of scanning its whole
 * feed, up to changes_doc_ids_optimization_threshold ids (1000 since it is
 * enforced on clusters; unlimited before).  pouchdb-server scans anyway. */
#define FETCH_IDS_MAX 1000

struct doclist {
    couch_client *couch;
    changes_parser *parser;
    /* the callback of the request in flight */
    doclist_fn on_doc;
    changes_row_fn on_row;
    void *ud;
    char *next;
    buf url;
    buf body;
};

static cs_result list_row(void *ud, const change_row *row, cs_error *err)
{
    doclist *l = ud;

    if (row->id[0] == '\0')
        return CS_OK; /* no usable id: the sync records it in the rejects table */
    if (l->on_row)
        return l->on_row(l->ud, row, err);
    return l->on_doc(l->ud, row->id, row->rev, row->deleted, err);
}

static cs_result feed_body(void *ud, const char *data, size_t len, cs_error *err)
{
    doclist *l = ud;
    return changes_parser_feed(l->parser, data, len, err);
}

doclist *doclist_new(couch_client *c, const changes_limits *limits)
{
    doclist *l = calloc(1, sizeof(*l));

    if (!l)
        return NULL;
    l->couch = c;
    l->parser = changes_parser_new(limits, list_row, l);
    buf_init(&l->url, URL_MAX);
    buf_init(&l->body, IDS_BODY_MAX);
    if (!l->parser) {
        doclist_free(l);
        return NULL;
    }
    return l;
}

void doclist_free(doclist *l)
{
    if (!l)
        return;
    changes_parser_free(l->parser);
    free(l->next);
    buf_free(&l->url);
    buf_free(&l->body);
    free(l);
}

/* appends s percent-encoded for a query string */
static void url_escape(buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            buf_putc(b, (char)*p);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_append(b, esc, 3);
        }
    }
}

/* appends s as a JSON string; s is UTF-8 (the parser's cleaned ids) */
static void json_string(buf *b, const char *s)
{
    buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            buf_putc(b, '\\');
            buf_putc(b, (char)*p);
        } else if (*p < 0x20) {
            buf_printf(b, "\\u%04x", *p);
        } else {
            buf_putc(b, (char)*p);
        }
    }
    buf_putc(b, '"');
}

/* one _changes request through the parser, finished */
static cs_result run(doclist *l, const char *post, const char *what, cs_error *err)
{
    cs_result rc;

    changes_parser_reset(l->parser);
    rc = couch_db_request(l->couch, l->url.data, post, what, feed_body, l, err);
    if (rc == CS_OK)
        rc = changes_parser_finish(l->parser, err);
    return rc;
}

cs_result doclist_page(doclist *l, const char *since, int limit, doclist_fn on_doc, void *ud,
                       const char **next, bool *done, cs_error *err)
{
    long long pending = 0;
    const char *last;
    cs_result rc;

    *next = NULL;
    *done = false;
    buf_reset(&l->url);
    buf_printf(&l->url, "/_changes?style=main_only&limit=%d&seq_interval=%d&since=", limit, limit);
    url_escape(&l->url, since ? since : "0");
    if (!buf_ok(&l->url))
        return cs_fail(err, CS_PERMANENT, "since value too long");
    l->on_doc = on_doc;
    l->on_row = NULL;
    l->ud = ud;
    if ((rc = run(l, NULL, "could not list the documents", err)) != CS_OK)
        return rc;
    if (!(last = changes_parser_last_seq(l->parser)))
        return cs_fail(err, CS_TRANSIENT, "the listing of the documents has no last_seq");
    free(l->next);
    if (!(l->next = strdup(last)))
        return cs_fail(err, CS_TRANSIENT, "out of memory");
    *next = l->next;
    *done = changes_parser_pending(l->parser, &pending)
                ? pending == 0
                : changes_parser_rows(l->parser) < (size_t)limit;
    return CS_OK;
}

/* one request for at most FETCH_IDS_MAX ids */
static cs_result fetch_some(doclist *l, const char *const *ids, size_t n, cs_error *err)
{
    buf_reset(&l->url);
    buf_puts(&l->url, "/_changes?filter=_doc_ids&include_docs=true&style=main_only");
    buf_reset(&l->body);
    buf_puts(&l->body, "{\"doc_ids\":[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_putc(&l->body, ',');
        json_string(&l->body, ids[i]);
    }
    buf_puts(&l->body, "]}");
    if (!buf_ok(&l->body) || !buf_ok(&l->url))
        return cs_fail(err, CS_PERMANENT, "the ids of %zu documents are too long for one request",
                       n);
    return run(l, l->body.data, "could not read the documents again", err);
}

cs_result doclist_fetch(doclist *l, const char *const *ids, size_t n, changes_row_fn on_row,
                        void *ud, cs_error *err)
{
    cs_result rc = CS_OK;

    l->on_doc = NULL;
    l->on_row = on_row;
    l->ud = ud;
    for (size_t i = 0; i < n && rc == CS_OK; i += FETCH_IDS_MAX)
        rc = fetch_some(l, ids + i, n - i < FETCH_IDS_MAX ? n - i : FETCH_IDS_MAX, err);
    return rc;
}
