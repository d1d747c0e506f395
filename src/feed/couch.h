/*
 * couch.h - the CouchDB HTTP client: one per database worker, with its own
 * libcurl handle (a kept-alive connection) and its own session cookie.
 *
 * It knows nothing of PostgreSQL.  Bodies of _changes responses are handed
 * to a callback piece by piece as they arrive; error responses are turned
 * into a classified cs_error here: connection failures, time-outs, 5xx and
 * 429 are CS_TRANSIENT; 401, 403 and 404 are CS_PERMANENT.  Messages and the
 * base URL never contain the password.
 */
#ifndef CS_COUCH_H
#define CS_COUCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"
#include "common/result.h"

typedef struct couch_client couch_client;

/* how much longer than its timeout a longpoll may stay silent */
#define COUCH_LONGPOLL_MARGIN_MS 2000

/* Data of a _changes body as it arrives; a non-CS_OK result aborts the
 * request and is returned by couch_changes. */
typedef cs_result (*couch_body_fn)(void *ud, const char *data, size_t len, cs_error *err);

typedef struct {
    char *update_seq;          /* as text (string contents or number literal) */
    bool update_seq_is_number; /* sent as a JSON number (pouchdb, CouchDB 1.x) */
    long long doc_count;
    long long doc_del_count;
    long long sizes_external; /* bytes of the documents' JSON (CouchDB 2+), 0: not reported */
} couch_db_info;

/*
 * A client for database db of the config's server.  stop is polled during
 * every transfer and wait: once it is non-zero requests end with
 * CS_STOPPED.  The client copies what it needs from cfg.
 */
couch_client *couch_new(const cs_config *cfg, const char *db, volatile sig_atomic_t *stop);
void couch_free(couch_client *c);

/* "http://host:port/db", without credentials: safe to log */
const char *couch_display_url(const couch_client *c);

/* HTTP status of the last answer (0: none came); tells a missing database
 * (404) from other permanent failures without reading messages */
long couch_last_status(const couch_client *c);

cs_result couch_db_info_get(couch_client *c, couch_db_info *info, cs_error *err) CS_MUST_CHECK;
void couch_db_info_free(couch_db_info *info);

/*
 * GET /db/_changes?include_docs=true&limit=limit&seq_interval=seq_interval&since=since,
 * with feed=longpoll and timeout=wait_ms when wait_ms > 0.  Body bytes of a
 * 200 response go to on_body.  A longpoll that sends nothing for wait_ms
 * plus a margin, before its first byte or between two (pouchdb-server
 * ignores timeout and holds the request open), is ended on our side and
 * *timed_out is set; the transfer as a whole is never timed.  Whether that
 * was a quiet feed or a broken answer, only the body's parser can tell
 * (changes_parser_between_rows).  An answer that breaks off is CS_TRANSIENT.
 */
cs_result couch_changes(couch_client *c, const char *since, int limit, int seq_interval,
                        int wait_ms, couch_body_fn on_body, void *ud, bool *timed_out,
                        cs_error *err) CS_MUST_CHECK;

/*
 * GET (post_json NULL) or POST (a JSON body) of path_query below the
 * database, e.g. "/_changes?style=main_only": body bytes of a 200 answer go
 * to on_body; another answer is a classified error whose message starts
 * with what.  Used by verify (feed/doclist.h).
 */
cs_result couch_db_request(couch_client *c, const char *path_query, const char *post_json,
                           const char *what, couch_body_fn on_body, void *ud,
                           cs_error *err) CS_MUST_CHECK;

/* process-wide libcurl set-up, once from main before any thread starts */
bool couch_global_init(void);
void couch_global_cleanup(void);

#endif
