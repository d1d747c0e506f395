/*
 * couch.c - the CouchDB HTTP client (see couch.h).
 *
 * Authentication: with a user configured, the client first logs in with
 * POST /_session and keeps the AuthSession cookie in its handle's cookie
 * engine (CouchDB then skips password hashing on every request).  A 401 on a
 * later request means the cookie expired: log in again once and repeat the
 * request.  A server without /_session (404, 405) gets basic auth instead.
 *
 * Kept-alive connections: pouchdb-server and some proxies close idle
 * connections after a few seconds; a request on such a connection fails
 * before any byte arrives.  Connections idle for more than 4 s are not
 * reused, and an idempotent request that fails that way is repeated once on
 * a fresh connection.
 */
#include "feed/couch.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/monotime.h"

#define ERROR_BODY_MAX (64 * 1024)
#define INFO_BODY_MAX (1024 * 1024)
/* a transfer that moves less than 1 byte/s for this long is dead */
#define STALL_SECONDS 60L

typedef enum { AUTH_NONE, AUTH_UNKNOWN, AUTH_COOKIE, AUTH_BASIC } auth_mode;

struct couch_client {
    CURL *h;
    char *base; /* scheme://host:port */
    char *db_path;
    char *display;
    char *user;
    char *password;
    auth_mode auth;
    volatile sig_atomic_t *stop;
    char curl_err[CURL_ERROR_SIZE];

    /* the request in flight */
    long status;
    size_t received;
    long silence_ms;     /* > 0: end the request after this long without a byte */
    double last_byte_ms; /* when the last byte (or the request) came */
    bool silent;         /* it was ended for that */
    buf body;            /* error bodies and small JSON replies */
    couch_body_fn on_body;
    void *ud;
    cs_result cb_rc;
    cs_error *cb_err;
};

bool couch_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

void couch_global_cleanup(void)
{
    curl_global_cleanup();
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    couch_client *c = userp;
    size_t len = size * nmemb;

    c->last_byte_ms = monotime_ms();
    if (c->status == 0)
        curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &c->status);
    c->received += len;
    if (c->status == 200 && c->on_body) {
        c->cb_rc = c->on_body(c->ud, data, len, c->cb_err);
        return c->cb_rc == CS_OK ? len : 0;
    }
    /* keep what fits: an error body only needs its start */
    if (c->body.len < c->body.max)
        buf_append(&c->body, data,
                   len < c->body.max - c->body.len ? len : c->body.max - c->body.len);
    return len;
}

static int progress_cb(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    couch_client *c = userp;

    if (c->stop && *c->stop)
        return 1;
    /* a silence, not a slow transfer: libcurl calls this at least once a
     * second while nothing arrives */
    if (c->silence_ms > 0 && monotime_ms() - c->last_byte_ms > (double)c->silence_ms) {
        c->silent = true;
        return 1;
    }
    return 0;
}

couch_client *couch_new(const cs_config *cfg, const char *db, volatile sig_atomic_t *stop)
{
    couch_client *c = calloc(1, sizeof(*c));
    char *esc = NULL;
    buf b;

    if (!c)
        return NULL;
    c->stop = stop;
    buf_init(&c->body, INFO_BODY_MAX);
    c->h = curl_easy_init();
    if (!c->h)
        goto error;
    esc = curl_easy_escape(c->h, db, 0);
    if (!esc)
        goto error;
    buf_init(&b, 4096);
    buf_printf(&b, "%s://%s:%d", cfg->secure ? "https" : "http", cfg->couchdb_host,
               cfg->couchdb_port);
    if (!buf_ok(&b))
        goto error;
    c->base = buf_steal(&b);
    c->db_path = strdup(esc);
    if (asprintf(&c->display, "%s/%s", c->base, db) < 0)
        c->display = NULL;
    c->user = cfg->couchdb_user && *cfg->couchdb_user ? strdup(cfg->couchdb_user) : NULL;
    c->password = cfg->couchdb_password ? strdup(cfg->couchdb_password) : NULL;
    c->auth = c->user ? AUTH_UNKNOWN : AUTH_NONE;
    if (!c->db_path || !c->display || (cfg->couchdb_user && *cfg->couchdb_user && !c->user))
        goto error;

    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c->h, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(c->h, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, c->curl_err);
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(c->h, CURLOPT_MAXAGE_CONN, 4L);
    curl_easy_setopt(c->h, CURLOPT_TCP_KEEPALIVE, 1L);
    if (cfg->couchdb_gzip)
        curl_easy_setopt(c->h, CURLOPT_ACCEPT_ENCODING, ""); /* what libcurl can decode */
    curl_easy_setopt(c->h, CURLOPT_COOKIEFILE, "");          /* enables the cookie engine */
    curl_easy_setopt(c->h, CURLOPT_USERAGENT, "cht-sync");
    if (cfg->couchdb_ca_file && *cfg->couchdb_ca_file)
        curl_easy_setopt(c->h, CURLOPT_CAINFO, cfg->couchdb_ca_file);
    curl_free(esc);
    return c;

error:
    if (esc)
        curl_free(esc);
    couch_free(c);
    return NULL;
}

void couch_free(couch_client *c)
{
    if (!c)
        return;
    if (c->h)
        curl_easy_cleanup(c->h);
    free(c->base);
    free(c->db_path);
    free(c->display);
    free(c->user);
    if (c->password) {
        memset(c->password, 0, strlen(c->password));
        free(c->password);
    }
    buf_free(&c->body);
    free(c);
}

long couch_last_status(const couch_client *c)
{
    return c->status;
}

const char *couch_display_url(const couch_client *c)
{
    return c->display;
}

/* "reason" of a CouchDB error body, else its start, for messages */
static void error_reason(couch_client *c, char *out, size_t outsz)
{
    json_t *j = json_loadb(c->body.data ? c->body.data : "", c->body.len, 0, NULL);
    const char *error = NULL, *reason = NULL;

    if (j) {
        error = json_string_value(json_object_get(j, "error"));
        reason = json_string_value(json_object_get(j, "reason"));
    }
    if (error || reason)
        snprintf(out, outsz, "%s%s%s", error ? error : "", error && reason ? ": " : "",
                 reason ? reason : "");
    else
        snprintf(out, outsz, "%.*s", (int)(c->body.len > 200 ? 200 : c->body.len),
                 c->body.data ? c->body.data : "");
    json_decref(j);
}

static cs_result status_error(couch_client *c, const char *what, cs_error *err)
{
    char reason[512];
    long s = c->status;

    error_reason(c, reason, sizeof(reason));
    if (s == 401)
        return cs_fail(err, CS_PERMANENT, "%s: CouchDB refused the credentials%s%s (HTTP 401: %s)",
                       what, c->user ? " of user " : "", c->user ? c->user : "", reason);
    if (s == 403)
        return cs_fail(err, CS_PERMANENT, "%s: user %s%s%s may not read it (HTTP 403: %s)", what,
                       c->user ? "\"" : "", c->user ? c->user : "(anonymous)", c->user ? "\"" : "",
                       reason);
    if (s == 404)
        return cs_fail(err, CS_PERMANENT, "%s: database not found (HTTP 404: %s)", what, reason);
    if (s == 429 || s >= 500)
        return cs_fail(err, CS_TRANSIENT, "%s: server error (HTTP %ld: %s)", what, s, reason);
    return cs_fail(err, CS_PERMANENT, "%s: unexpected answer (HTTP %ld: %s)", what, s, reason);
}

/*
 * One HTTP exchange.  With on_body set, the body of a 200 answer streams
 * there; otherwise it is collected in c->body.  Returns CS_OK whenever an
 * HTTP answer came (check c->status), or the classified transport error.
 * timeout_ms bounds the whole exchange (0: no bound; a dead transfer is
 * still ended after STALL_SECONDS below 1 byte/s).  With silent set, the
 * exchange is instead ended after silence_ms without a byte (before the
 * first or between two): CS_OK with *silent set, and the caller decides
 * from what came whether that was a quiet longpoll or a broken answer.
 */
static cs_result perform(couch_client *c, const char *url, const char *post_body, long timeout_ms,
                         long silence_ms, couch_body_fn on_body, void *ud, bool *silent,
                         cs_error *err)
{
    CURLcode cc;

    for (int attempt = 0;; attempt++) {
        c->status = 0;
        c->received = 0;
        c->silence_ms = silent ? silence_ms : 0;
        c->silent = false;
        c->last_byte_ms = monotime_ms();
        c->on_body = on_body;
        c->ud = ud;
        c->cb_rc = CS_OK;
        c->cb_err = err;
        c->curl_err[0] = '\0';
        buf_reset(&c->body);
        curl_easy_setopt(c->h, CURLOPT_URL, url);
        curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(c->h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c->h, CURLOPT_LOW_SPEED_TIME, STALL_SECONDS);
        curl_easy_setopt(c->h, CURLOPT_FRESH_CONNECT, attempt > 0 ? 1L : 0L);
        if (post_body) {
            curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, post_body);
        } else {
            curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
        }
        cc = curl_easy_perform(c->h);
        if (c->status == 0)
            curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &c->status);
        if (cc == CURLE_OK)
            return CS_OK;
        if (c->cb_rc != CS_OK)
            return c->cb_rc; /* the body consumer's own error, already in err */
        if (c->stop && *c->stop)
            return cs_fail(err, CS_STOPPED, "stopped");
        if (c->silent && (c->status == 200 || c->received == 0)) {
            *silent = true;
            return CS_OK;
        }
        if (attempt == 0 && c->received == 0 && !post_body &&
            (cc == CURLE_GOT_NOTHING || cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR))
            continue;
        if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
            cc == CURLE_SSL_CERTPROBLEM || cc == CURLE_SSL_ISSUER_ERROR)
            return cs_fail(err, CS_PERMANENT,
                           "could not verify the certificate of CouchDB at %s: %s (COUCHDB_CA_FILE "
                           "names the CA to trust)",
                           c->base, c->curl_err[0] ? c->curl_err : curl_easy_strerror(cc));
        if (c->status == 200)
            return cs_fail(err, CS_TRANSIENT,
                           "the answer of CouchDB at %s broke off after %zu bytes of its body: %s",
                           c->base, c->received,
                           c->curl_err[0] ? c->curl_err : curl_easy_strerror(cc));
        return cs_fail(err, CS_TRANSIENT, "could not reach CouchDB at %s: %s", c->base,
                       c->curl_err[0] ? c->curl_err : curl_easy_strerror(cc));
    }
}

static cs_result login(couch_client *c, cs_error *err)
{
    json_t *j =
        json_pack("{s:s, s:s}", "name", c->user, "password", c->password ? c->password : "");
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    char url[1024];
    struct curl_slist *hdrs = NULL;
    cs_result rc;

    json_decref(j);
    if (!body)
        return cs_fail(err, CS_TRANSIENT, "out of memory");
    snprintf(url, sizeof(url), "%s/_session", c->base);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hdrs);
    rc = perform(c, url, body, 30000L, 0, NULL, NULL, NULL, err);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    memset(body, 0, strlen(body));
    free(body);
    if (rc != CS_OK)
        return rc;
    if (c->status == 200) {
        c->auth = AUTH_COOKIE;
        return CS_OK;
    }
    if (c->status == 404 || c->status == 405 || c->status == 501) {
        /* no session API behind this address: fall back to basic auth */
        c->auth = AUTH_BASIC;
        curl_easy_setopt(c->h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c->h, CURLOPT_USERNAME, c->user);
        curl_easy_setopt(c->h, CURLOPT_PASSWORD, c->password ? c->password : "");
        return CS_OK;
    }
    return status_error(c, "could not log in to CouchDB", err);
}

/*
 * A GET with authentication: logs in first when needed and once more when
 * the session cookie has expired (401 on a cookie session).
 */
static cs_result get(couch_client *c, const char *url, const char *what, long timeout_ms,
                     long silence_ms, couch_body_fn on_body, void *ud, bool *silent, cs_error *err)
{
    cs_result rc;

    for (int attempt = 0; attempt < 2; attempt++) {
        if (c->auth == AUTH_UNKNOWN && (rc = login(c, err)) != CS_OK)
            return rc;
        rc = perform(c, url, NULL, timeout_ms, silence_ms, on_body, ud, silent, err);
        if (rc != CS_OK)
            return rc;
        if (c->status == 200 || (silent && *silent))
            return CS_OK;
        if (c->status == 401 && c->auth == AUTH_COOKIE && attempt == 0) {
            log_info(NULL, "%s: CouchDB session expired, logging in again", c->display);
            c->auth = AUTH_UNKNOWN;
            continue;
        }
        break;
    }
    return status_error(c, what, err);
}

static char *json_seq_text(json_t *v, bool *is_number)
{
    *is_number = false;
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (json_is_integer(v)) {
        char *s;
        *is_number = true;
        return asprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0 ? NULL : s;
    }
    return NULL;
}

cs_result couch_db_info_get(couch_client *c, couch_db_info *info, cs_error *err)
{
    char url[2048];
    char what[512];
    json_t *j;
    json_error_t jerr;
    cs_result rc;

    memset(info, 0, sizeof(*info));
    snprintf(url, sizeof(url), "%s/%s", c->base, c->db_path);
    snprintf(what, sizeof(what), "could not read %s", c->display);
    if ((rc = get(c, url, what, 30000L, 0, NULL, NULL, NULL, err)) != CS_OK)
        return rc;
    j = json_loadb(c->body.data ? c->body.data : "", c->body.len, 0, &jerr);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return cs_fail(err, CS_TRANSIENT, "%s: the answer is not a JSON object (%s)", what,
                       jerr.text);
    }
    info->update_seq = json_seq_text(json_object_get(j, "update_seq"), &info->update_seq_is_number);
    info->doc_count = json_integer_value(json_object_get(j, "doc_count"));
    info->doc_del_count = json_integer_value(json_object_get(j, "doc_del_count"));
    /* CouchDB 2+: the documents' JSON size; absent (0) on pouchdb-server */
    info->sizes_external =
        json_integer_value(json_object_get(json_object_get(j, "sizes"), "external"));
    json_decref(j);
    return CS_OK;
}

void couch_db_info_free(couch_db_info *info)
{
    free(info->update_seq);
    info->update_seq = NULL;
}

cs_result couch_changes(couch_client *c, const char *since, int limit, int seq_interval,
                        int wait_ms, couch_body_fn on_body, void *ud, bool *timed_out,
                        cs_error *err)
{
    char *esc = curl_easy_escape(c->h, since ? since : "0", 0);
    char what[512];
    buf url;
    cs_result rc;

    *timed_out = false;
    if (!esc)
        return cs_fail(err, CS_TRANSIENT, "out of memory");
    buf_init(&url, 64 * 1024);
    buf_printf(&url, "%s/%s/_changes?include_docs=true&limit=%d&seq_interval=%d&since=%s", c->base,
               c->db_path, limit, seq_interval, esc);
    if (wait_ms > 0)
        buf_printf(&url, "&feed=longpoll&timeout=%d", wait_ms);
    curl_free(esc);
    if (!buf_ok(&url)) {
        buf_free(&url);
        return cs_fail(err, CS_PERMANENT, "since value too long");
    }
    snprintf(what, sizeof(what), "could not read the changes of %s", c->display);
    /* never a bound on the whole transfer, which may take long and still
     * be healthy: a normal feed is bounded by the stall detector, a
     * longpoll by the silence before its first byte and between bytes
     * (pouchdb-server ignores timeout and holds the request open) */
    rc = get(c, url.data, what, 0L, wait_ms > 0 ? (long)wait_ms + COUCH_LONGPOLL_MARGIN_MS : 0L,
             on_body, ud, wait_ms > 0 ? timed_out : NULL, err);
    buf_free(&url);
    return rc;
}

/*
 * A request below the database for readers other than the sync's feed
 * (verify's listing and re-reads): the same authentication and error
 * classification as couch_changes, no total time limit (the stall detector
 * bounds it).  A POST sends post_json as application/json; it is repeated
 * by the caller, not here, when the connection fails.
 */
cs_result couch_db_request(couch_client *c, const char *path_query, const char *post_json,
                           const char *what, couch_body_fn on_body, void *ud, cs_error *err)
{
    struct curl_slist *hdrs = NULL;
    char *url = NULL;
    cs_result rc = CS_OK;

    if (asprintf(&url, "%s/%s%s", c->base, c->db_path, path_query) < 0)
        return cs_fail(err, CS_TRANSIENT, "out of memory");
    if (!post_json) {
        rc = get(c, url, what, 0L, 0, on_body, ud, NULL, err);
        free(url);
        return rc;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        if (c->auth == AUTH_UNKNOWN && (rc = login(c, err)) != CS_OK)
            break;
        hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hdrs);
        rc = perform(c, url, post_json, 0L, 0, on_body, ud, NULL, err);
        curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(hdrs);
        if (rc != CS_OK || c->status == 200)
            break;
        if (c->status == 401 && c->auth == AUTH_COOKIE && attempt == 0) {
            c->auth = AUTH_UNKNOWN; /* the session expired: log in again */
            continue;
        }
        rc = status_error(c, what, err);
        break;
    }
    free(url);
    return rc;
}
