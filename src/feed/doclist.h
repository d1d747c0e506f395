/*
 * doclist.h - the CouchDB side of `cht-sync verify`: every document of a
 * database as (id, winning revision, deleted), and the re-read of chosen
 * documents for --repair.
 *
 * The listing is `_changes?style=main_only` without documents, read in
 * pages of `limit` rows: unlike `_all_docs` it also lists deleted
 * documents, and each row is streamed to the caller as it is parsed, so
 * memory does not depend on the page size nor on the database size.  Ids
 * and revisions come through the sync's own parser (changes.h), cleaned the
 * same way, so they compare equal to what the sync stored.
 *
 * It knows nothing of PostgreSQL.
 */
#ifndef CS_DOCLIST_H
#define CS_DOCLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "feed/changes.h"
#include "feed/couch.h"

/* One document of the listing; the strings live only during the call.  rev
 * may be NULL (a server that sends none).  A non-CS_OK result stops the
 * page and is returned by doclist_page. */
typedef cs_result (*doclist_fn)(void *ud, const char *id, const char *rev, bool deleted,
                                cs_error *err);

typedef struct doclist doclist;

/* A lister for one database; c and limits stay the caller's and must
 * outlive it.  NULL when out of memory. */
doclist *doclist_new(couch_client *c, const changes_limits *limits);
void doclist_free(doclist *l);

/*
 * One page: the documents changed after since (at most limit of them) to
 * on_doc, in feed order.  *next is the page's last_seq (owned by l, valid
 * until the next call), *done is set when the page reached the end of the
 * feed.  A document changed while the listing runs can appear again in a
 * later page with its newer revision: the last one seen is the current one.
 * On failure nothing of the page may be kept: the caller repeats it.
 */
cs_result doclist_page(doclist *l, const char *since, int limit, doclist_fn on_doc, void *ud,
                       const char **next, bool *done, cs_error *err) CS_MUST_CHECK;

/*
 * The current state of the documents ids[0..n-1] with their bodies, as the
 * sync reads them: `POST _changes?filter=_doc_ids&include_docs=true` (which
 * also answers for deleted documents, with their stub), each row cleaned
 * and handed to on_row, in requests of at most 1000 ids (what CouchDB
 * looks up directly).  An id CouchDB does not know is simply absent from
 * the answer.
 */
cs_result doclist_fetch(doclist *l, const char *const *ids, size_t n, changes_row_fn on_row,
                        void *ud, cs_error *err) CS_MUST_CHECK;

#endif
