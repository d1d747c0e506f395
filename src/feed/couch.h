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
 * GET /db/_changes?include_docs=true&limit=limit&seq_interval=limit&since=since,
 * with feed=longpoll and timeout=wait_ms when wait_ms > 0.  Body bytes of a
 * 200 response go to on_body.  When the server holds a longpoll open past
 * wait_ms plus a margin (pouchdb-server ignores timeout), the request is
 * ended on our side and *timed_out is set: nothing changed in that time.
 */
cs_result couch_changes(couch_client *c, const char *since, int limit, int wait_ms,
                        couch_body_fn on_body, void *ud, bool *timed_out,
                        cs_error *err) CS_MUST_CHECK;

/* process-wide libcurl set-up, once from main before any thread starts */
bool couch_global_init(void);
void couch_global_cleanup(void);

#endif
