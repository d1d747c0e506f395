/*
 * http.c - see http.h.
 */
#include "http/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/stats.h"
#include "http/render.h"

/* bounds: a slow or hostile client costs at most this */
#define HTTP_MAX_CONNECTIONS 64
#define HTTP_TIMEOUT_SECONDS 10
#define HTTP_MAX_BODY ((size_t)8 << 20)

struct http_server {
    struct MHD_Daemon *daemon;
    render_opts opts;
    /* one snapshot, reused: requests are served one at a time by the
     * server's single thread */
    stats_snapshot *snap;
};

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned int status, const char *type,
                              buf *body)
{
    size_t len = body->len;
    char *data = buf_steal(body);
    struct MHD_Response *res = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result rc;

    if (!res) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(res, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(res, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    rc = MHD_queue_response(conn, status, res);
    MHD_destroy_response(res);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    http_server *s = cls;
    unsigned int status = MHD_HTTP_OK;
    const char *type = "text/plain; charset=utf-8";
    buf body;

    (void)version;
    (void)upload;
    (void)con_cls;
    buf_init(&body, HTTP_MAX_BODY);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        *upload_size = 0;
        buf_puts(&body, "only GET and HEAD\n");
        return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, type, &body);
    }
    if (strcmp(url, "/healthz") == 0) {
        buf_puts(&body, "ok\n");
        return answer(conn, status, type, &body);
    }
    stats_snapshot_take(s->snap);
    if (strcmp(url, "/metrics") == 0) {
        type = "text/plain; version=0.0.4; charset=utf-8";
        render_metrics(&body, s->snap, &s->opts);
    } else if (strcmp(url, "/readyz") == 0) {
        if (!render_ready(&body, s->snap, &s->opts))
            status = MHD_HTTP_SERVICE_UNAVAILABLE;
    } else if (strcmp(url, "/") == 0) {
        type = "text/html; charset=utf-8";
        render_page(&body, s->snap, &s->opts);
    } else {
        status = MHD_HTTP_NOT_FOUND;
        buf_puts(&body, "not found: try /, /metrics, /healthz or /readyz\n");
    }
    if (!buf_ok(&body)) {
        buf_reset(&body);
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        buf_puts(&body, "the answer passed its size limit\n");
    }
    return answer(conn, status, type, &body);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_debug("http", "%s", msg);
}

http_server *http_start(const cs_config *cfg)
{
    struct addrinfo hints, *ai = NULL;
    char port[16];
    http_server *s = NULL;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    int gai;

    if (cfg->metrics_port == 0)
        return NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%d", cfg->metrics_port);
    if ((gai = getaddrinfo(cfg->metrics_address, port, &hints, &ai)) != 0) {
        log_warn("http", "no metrics server: METRICS_ADDRESS \"%s\" is not a numeric address (%s)",
                 cfg->metrics_address, gai_strerror(gai));
        return NULL;
    }
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s = calloc(1, sizeof(*s));
    if (s)
        s->snap = malloc(sizeof(*s->snap));
    if (!s || !s->snap) {
        log_warn("http", "no metrics server: out of memory");
        goto error;
    }
    s->opts.longpoll_seconds = cfg->longpoll_seconds;
    s->daemon = MHD_start_daemon(flags, (uint16_t)cfg->metrics_port, NULL, NULL, on_request, s,
                                 MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
                                 (unsigned int)HTTP_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned int)HTTP_TIMEOUT_SECONDS, MHD_OPTION_EXTERNAL_LOGGER,
                                 on_mhd_log, NULL, MHD_OPTION_END);
    if (!s->daemon) {
        log_warn("http",
                 "no metrics server: could not listen on %s port %d (in use, or not an address "
                 "of this machine); the sync goes on without it",
                 cfg->metrics_address, cfg->metrics_port);
        goto error;
    }
    log_info("http", "serving /metrics, /healthz, /readyz and the status page on %s port %d",
             cfg->metrics_address, cfg->metrics_port);
    freeaddrinfo(ai);
    return s;

error:
    freeaddrinfo(ai);
    if (s)
        free(s->snap);
    free(s);
    return NULL;
}

void http_stop(http_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    free(s->snap);
    free(s);
}
