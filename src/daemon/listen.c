/*
 * listen.c - see listen.h.
 */
#include "daemon/listen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pg.h"
#include "common/xalloc.h"

struct listener {
    const cs_config *cfg;
    PGconn *conn;
    char *payload; /* schema.table */
};

listener *listener_new(const cs_config *cfg)
{
    listener *l = xcalloc(1, sizeof(*l));

    l->cfg = cfg;
    if (asprintf(&l->payload, "%s.%s", cfg->postgres_schema, cfg->postgres_table) < 0)
        abort();
    return l;
}

static void disconnect(listener *l)
{
    if (l->conn)
        PQfinish(l->conn);
    l->conn = NULL;
}

void listener_free(listener *l)
{
    if (!l)
        return;
    disconnect(l);
    free(l->payload);
    free(l);
}

cs_result listener_connect(listener *l, cs_error *err)
{
    cs_result rc;

    disconnect(l);
    if (!(l->conn = pg_connect(l->cfg, "cht-sync models", err)))
        return err->code;
    if ((rc = pg_exec(l->conn, "LISTEN cht_sync", err)) != CS_OK) {
        disconnect(l);
        return rc;
    }
    return CS_OK;
}

int listener_fd(const listener *l)
{
    return l->conn ? PQsocket(l->conn) : -1;
}

cs_result listener_drain(listener *l, bool *ours, cs_error *err)
{
    PGnotify *n;

    *ours = false;
    if (!l->conn)
        return cs_fail(err, CS_TRANSIENT, "not listening");
    if (!PQconsumeInput(l->conn) || PQstatus(l->conn) != CONNECTION_OK) {
        cs_result rc = pg_fail(l->conn, NULL, "the LISTEN connection failed", err);
        disconnect(l);
        return rc == CS_OK ? CS_TRANSIENT : rc;
    }
    while ((n = PQnotifies(l->conn)) != NULL) {
        if (strcmp(n->relname, "cht_sync") == 0 && strcmp(n->extra, l->payload) == 0)
            *ours = true;
        PQfreemem(n);
    }
    return CS_OK;
}
