/*
 * changes.h - the streaming parser of a CouchDB _changes response.
 *
 * Bytes arrive in arbitrary pieces (whatever libcurl hands over) and are
 * parsed as they come: the whole response is never held in memory, only the
 * row being parsed.  For each row of "results" the parser calls on_row with
 * the document already cleaned for PostgreSQL's jsonb:
 *   - \u0000 is removed from string contents and keys (an escaped backslash
 *     followed by "u0000", i.e. the text \u0000, is left alone);
 *   - lone surrogate escapes (\ud800 without its pair) become \ufffd, and
 *     invalid UTF-8 bytes become U+FFFD;
 *   - in _users documents (id "org.couchdb.user:...") the top-level keys
 *     password_scheme, derived_key, salt, iterations, pbkdf2_prf and password
 *     are dropped;
 *   - insignificant white space is dropped; everything else is kept as sent
 *     (escapes, number spelling, key order).
 * A document that cannot be stored (larger than max_doc_bytes, nested deeper
 * than max_depth, a number PostgreSQL cannot hold) is delivered with
 * reject_reason set and doc NULL, so the caller can record it and go on.
 * Key order in rows and documents is never assumed.
 */
#ifndef CS_CHANGES_H
#define CS_CHANGES_H

#include <stdbool.h>
#include <stddef.h>

#include "common/result.h"

typedef struct {
    const char *id;  /* decoded document id (UTF-8, cleaned), never NULL */
    const char *rev; /* winning revision: doc._rev, else changes[0].rev; may be NULL */
    const char *seq; /* the row's seq as text (string contents or number literal); NULL if null */
    bool deleted;
    /* cleaned JSON text of the document; for deleted rows the stub
     * {"_id":…,"_rev":…,"_deleted":true}; NULL when rejected */
    const char *doc;
    size_t doc_len;
    const char *reject_reason; /* non-NULL: could not be cleaned, see above */
    bool cleaned;              /* something was removed or replaced */
} change_row;

/*
 * Called once per row; the row and its strings are valid only during the
 * call.  A non-CS_OK result stops the parse and is returned by feed.
 */
typedef cs_result (*changes_row_fn)(void *ud, const change_row *row, cs_error *err);

typedef struct {
    size_t max_doc_bytes; /* cleaned JSON text larger than this is rejected */
    int max_depth;        /* nesting deeper than this is rejected */
} changes_limits;

typedef struct changes_parser changes_parser;

changes_parser *changes_parser_new(const changes_limits *limits, changes_row_fn on_row, void *ud);
void changes_parser_free(changes_parser *p);
/* Starts a new response, keeping allocations. */
void changes_parser_reset(changes_parser *p);

/*
 * Feeds the next piece of the response body.  Malformed JSON, or a body that
 * is not a _changes response, is CS_TRANSIENT (a truncated or garbled reply:
 * the request is retried) with a message that says where it went wrong.
 */
cs_result changes_parser_feed(changes_parser *p, const char *data, size_t len,
                              cs_error *err) CS_MUST_CHECK;

/* Ends the body: CS_TRANSIENT unless a complete response was seen. */
cs_result changes_parser_finish(changes_parser *p, cs_error *err) CS_MUST_CHECK;

/* After finish: the response's last_seq as text (string contents or number
 * literal), NULL if absent. */
const char *changes_parser_last_seq(const changes_parser *p);
/* After finish: pending, false when the response had none (unknown). */
bool changes_parser_pending(const changes_parser *p, long long *pending);
/* Rows seen so far in this response. */
size_t changes_parser_rows(const changes_parser *p);
/* True while the body stops between two rows of "results" (or before the
 * first): an answer that goes silent here lost no part of a row. */
bool changes_parser_between_rows(const changes_parser *p);

#endif
