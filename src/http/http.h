/*
 * http.h - the process's own small HTTP server: /metrics (Prometheus
 * text), /healthz, /readyz and the status page at /.
 *
 * It runs in libmicrohttpd's one internal thread and only reads the
 * published counters (common/stats.h): a scrape copies them under each
 * database's short lock and formats the copy, so it never waits on a worker
 * and a worker never waits on it.  Connections are limited in number and
 * time; only GET and HEAD are answered.
 */
#ifndef CS_HTTP_H
#define CS_HTTP_H

#include "common/config.h"

typedef struct http_server http_server;

/*
 * Listens on METRICS_ADDRESS:METRICS_PORT (cfg is borrowed and must outlive
 * the server).  Returns NULL when METRICS_PORT is 0, or when it cannot
 * listen: that is logged as a warning and the caller goes on without the
 * server (the data path does not depend on it).
 */
http_server *http_start(const cs_config *cfg);

/* Stops the server (waits for its thread) and frees it; NULL is fine. */
void http_stop(http_server *s);

#endif
