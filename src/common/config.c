/*
 * config.c - the settings table and its parsers (see config.h).
 */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

typedef enum { SET_STR, SET_INT, SET_SECRET } setting_type;

typedef struct {
    const char *env;
    setting_type type;
    size_t offset;
    const char *def; /* NULL: unset */
    long min, max;   /* for SET_INT */
    const char *help;
} setting;

#define STR(field) SET_STR, offsetof(cs_config, field)
#define SECRET(field) SET_SECRET, offsetof(cs_config, field)
#define INT(field) SET_INT, offsetof(cs_config, field)

static const setting config_table[] = {
    {"COUCHDB_HOST", STR(couchdb_host), "couchdb", 0, 0, "CouchDB host name"},
    {"COUCHDB_PORT", INT(couchdb_port), "5984", 1, 65535, "CouchDB port"},
    {"COUCHDB_SECURE", STR(couchdb_secure), "true", 0, 0,
     "the literal true selects https, anything else http"},
    {"COUCHDB_USER", STR(couchdb_user), NULL, 0, 0, "CouchDB user name"},
    {"COUCHDB_PASSWORD", SECRET(couchdb_password), NULL, 0, 0, "CouchDB password"},
    {"COUCHDB_DBS", STR(couchdb_dbs), "medic", 0, 0,
     "databases to follow, separated by commas and/or spaces"},
    {"COUCHDB_CA_FILE", STR(couchdb_ca_file), NULL, 0, 0,
     "CA bundle that verifies the CouchDB certificate (default: the system's)"},
    {"COUCHDB_GZIP", INT(couchdb_gzip), "0", 0, 1,
     "1 asks CouchDB (or its proxy) for gzip: for a sync far from CouchDB; near it, "
     "compression costs the server more than it saves"},
    {"BATCH_SIZE", INT(batch_size), "1000", 1, 100000, "changes per batch"},
    {"BATCH_MAX_BYTES", INT(batch_max_bytes), "16777216", 65536, 1073741824,
     "document bytes per batch: a batch is cut there as the feed streams in (a database "
     "holds at most about 3 times this plus 2 of the largest documents)"},
    {"MAX_DOC_BYTES", INT(max_doc_bytes), "67108864", 1024, 268435455,
     "largest document stored; a larger one is recorded in the rejects table"},
    {"COUCHDB_LONGPOLL_SECONDS", INT(longpoll_seconds), "20", 1, 300,
     "how long one wait for new changes lasts when caught up"},
    {"POSTGRES_HOST", STR(postgres_host), NULL, 0, 0, "PostgreSQL host (default: libpq's)"},
    {"POSTGRES_PORT", INT(postgres_port), "5432", 1, 65535, "PostgreSQL port"},
    {"POSTGRES_USER", STR(postgres_user), NULL, 0, 0, "PostgreSQL user"},
    {"POSTGRES_PASSWORD", SECRET(postgres_password), NULL, 0, 0, "PostgreSQL password"},
    {"POSTGRES_DB", STR(postgres_db), "cht_sync", 0, 0, "PostgreSQL database"},
    {"POSTGRES_SCHEMA", STR(postgres_schema), "v1", 0, 0,
     "schema of the raw table, the progress table and every model"},
    {"POSTGRES_TABLE", STR(postgres_table), "couchdb", 0, 0, "name of the raw table"},
    {"DATAEMON_INTERVAL", INT(dataemon_interval), "5", 0, 86400,
     "run: the longest wait between model runs when no commit is heard of (0: wait for "
     "commits only)"},
    {"DBT_THREAD_COUNT", INT(dbt_thread_count), "1", 1, 64, "how many models may run at once"},
    {"DBT_BATCH_SIZE", INT(dbt_batch_size), "0", 0, INT_MAX,
     "catch-up batch size of the root model (var batch_size); 0: no batching"},
    {"DBT_SELECTOR", STR(dbt_selector), "", 0, 0, "which models this runner runs"},
    {"CHT_PIPELINE_BRANCH_URL", STR(cht_pipeline_branch_url), NULL, 0, 0,
     "run: the model project as a git URL with an optional #revision, cloned into "
     "CHT_SYNC_CACHE_DIR (default: the built-in base models)"},
    {"DBT_LOCAL_PATH", STR(dbt_local_path), NULL, 0, 0,
     "a local model project, preferred over the URL"},
    {"CHT_PIPELINE_BASE", STR(cht_pipeline_base), "builtin", 0, 0,
     "run: the base models under the package name cht_pipeline_base: builtin (they also "
     "stand in for a cht-pipeline git package), project (the project's packages.yml "
     "decides), or a folder"},
    {"CHT_SYNC_CACHE_DIR", STR(cache_dir), "/tmp/cht-sync-cache", 0, 0,
     "run: where git checkouts and the unpacked built-in base models are kept"},
    {"LOG_LEVEL", STR(log_level), "info", 0, 0, "debug, info, warn or error"},
    {"METRICS_PORT", INT(metrics_port), "9399", 0, 65535,
     "port of /metrics, /healthz, /readyz and the status page; 0: no HTTP server"},
    {"METRICS_ADDRESS", STR(metrics_address), "0.0.0.0", 0, 0,
     "numeric address that port listens on (0.0.0.0: every interface, as a container "
     "needs; 127.0.0.1: this machine only)"},
};

#define NSETTINGS (sizeof(config_table) / sizeof(config_table[0]))

static char **str_field(cs_config *cfg, const setting *s)
{
    return (char **)((char *)cfg + s->offset);
}

static int *int_field(cs_config *cfg, const setting *s)
{
    return (int *)((char *)cfg + s->offset);
}

/* "COUCHDB_HOST" -> "couchdb-host" */
static void flag_name(const char *env, char *out, size_t outsz)
{
    size_t i;

    for (i = 0; env[i] && i + 1 < outsz; i++)
        out[i] = env[i] == '_' ? '-' : (char)tolower((unsigned char)env[i]);
    out[i] = '\0';
}

static cs_result set_value(cs_config *cfg, const setting *s, const char *value, const char *origin,
                           cs_error *err)
{
    if (s->type == SET_INT) {
        char *end;
        long v;

        errno = 0;
        v = strtol(value, &end, 10);
        while (*end && isspace((unsigned char)*end))
            end++;
        if (errno || end == value || *end || v < s->min || v > s->max)
            return cs_fail(err, CS_PERMANENT,
                           "invalid value \"%s\" for %s (from %s): expected a whole number "
                           "from %ld to %ld",
                           value, s->env, origin, s->min, s->max);
        *int_field(cfg, s) = (int)v;
        return CS_OK;
    }
    char **f = str_field(cfg, s);
    char *copy = strdup(value);
    if (!copy)
        return cs_fail(err, CS_PERMANENT, "out of memory");
    free(*f);
    *f = copy;
    return CS_OK;
}

static bool valid_identifier_text(const char *s)
{
    /* quoted identifiers may hold anything but NUL; keep them printable and
     * within PostgreSQL's 63-byte limit so nothing is silently truncated */
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20)
            return false;
    return true;
}

static cs_result derive(cs_config *cfg, cs_error *err)
{
    log_level lvl;
    char *p;

    cfg->secure = strcmp(cfg->couchdb_secure ? cfg->couchdb_secure : "", "true") == 0;
    if (!log_parse_level(cfg->log_level, &lvl))
        return cs_fail(err, CS_PERMANENT,
                       "invalid LOG_LEVEL \"%s\": expected debug, info, warn or error",
                       cfg->log_level);
    if (!valid_identifier_text(cfg->postgres_schema))
        return cs_fail(err, CS_PERMANENT, "invalid POSTGRES_SCHEMA \"%s\"", cfg->postgres_schema);
    if (!valid_identifier_text(cfg->postgres_table) || strlen(cfg->postgres_table) > 50)
        return cs_fail(err, CS_PERMANENT,
                       "invalid POSTGRES_TABLE \"%s\": 1 to 50 printable characters",
                       cfg->postgres_table);

    /* COUCHDB_DBS: commas and/or white space */
    cfg->ndbs = 0;
    p = cfg->couchdb_dbs;
    while (p && *p) {
        size_t n;
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        n = strcspn(p, ", \t\r\n");
        if (n == 0)
            break;
        if (cfg->ndbs == CONFIG_MAX_DBS)
            return cs_fail(err, CS_PERMANENT, "COUCHDB_DBS names more than %d databases",
                           CONFIG_MAX_DBS);
        for (int i = 0; i < cfg->ndbs; i++)
            if (strlen(cfg->dbs[i]) == n && strncmp(cfg->dbs[i], p, n) == 0)
                return cs_fail(err, CS_PERMANENT, "COUCHDB_DBS names \"%.*s\" twice", (int)n, p);
        cfg->dbs[cfg->ndbs] = strndup(p, n);
        if (!cfg->dbs[cfg->ndbs])
            return cs_fail(err, CS_PERMANENT, "out of memory");
        cfg->ndbs++;
        p += n;
    }
    return CS_OK;
}

cs_result config_load(cs_config *cfg, config_getenv_fn getenv_fn, int *argc, char **argv,
                      cs_error *err)
{
    cs_result rc;
    int out = 1;

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *s = &config_table[i];
        const char *v = getenv_fn ? getenv_fn(s->env) : NULL;
        if (v && (*v || s->type != SET_INT)) {
            if ((rc = set_value(cfg, s, v, "environment", err)))
                return rc;
        } else if (s->def) {
            if ((rc = set_value(cfg, s, s->def, "default", err)))
                return rc;
        }
    }

    /* flags: --name value or --name=value; others are kept in order */
    for (int i = 1; argv && i < *argc; i++) {
        const char *a = argv[i];
        const setting *match = NULL;
        const char *value = NULL;

        if (strncmp(a, "--", 2) == 0) {
            for (size_t k = 0; k < NSETTINGS; k++) {
                char name[64];
                size_t n;
                flag_name(config_table[k].env, name, sizeof(name));
                n = strlen(name);
                if (strncmp(a + 2, name, n) == 0 && (a[2 + n] == '\0' || a[2 + n] == '=')) {
                    match = &config_table[k];
                    value = a[2 + n] == '=' ? a + 3 + n : NULL;
                    break;
                }
            }
        }
        if (!match) {
            argv[out++] = argv[i];
            continue;
        }
        if (!value) {
            if (i + 1 >= *argc)
                return cs_fail(err, CS_PERMANENT, "option \"%s\" needs a value", a);
            value = argv[++i];
        }
        if ((rc = set_value(cfg, match, value, "command line", err)))
            return rc;
    }
    if (argv) {
        *argc = out;
        argv[out] = NULL;
    }
    return derive(cfg, err);
}

void config_free(cs_config *cfg)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (config_table[i].type != SET_INT)
            free(*str_field(cfg, &config_table[i]));
    for (int i = 0; i < cfg->ndbs; i++)
        free(cfg->dbs[i]);
    memset(cfg, 0, sizeof(*cfg));
}

void config_print_help(FILE *out)
{
    fprintf(out, "Settings (environment variable, or the flag shown; flags win):\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *s = &config_table[i];
        char name[64];
        flag_name(s->env, name, sizeof(name));
        fprintf(out, "  %-26s --%-26s %s", s->env, name, s->help);
        if (s->def && *s->def)
            fprintf(out, " (default: %s)", s->def);
        fputc('\n', out);
    }
}

void config_print(const cs_config *cfg, FILE *out)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *s = &config_table[i];
        if (s->type == SET_INT) {
            fprintf(out, "%s=%d\n", s->env, *int_field((cs_config *)cfg, s));
            continue;
        }
        const char *v = *str_field((cs_config *)cfg, s);
        if (!v)
            fprintf(out, "%s=\n", s->env);
        else if (s->type == SET_SECRET)
            fprintf(out, "%s=********\n", s->env);
        else
            fprintf(out, "%s=%s\n", s->env, v);
    }
}

void config_pg_params(const cs_config *cfg, const char **keywords, const char **values,
                      const char *application_name)
{
    static __thread char port[16];
    int n = 0;

    snprintf(port, sizeof(port), "%d", cfg->postgres_port);
#define PARAM(k, v)                                                                                \
    do {                                                                                           \
        if (v) {                                                                                   \
            keywords[n] = k;                                                                       \
            values[n] = v;                                                                         \
            n++;                                                                                   \
        }                                                                                          \
    } while (0)
    PARAM("host", cfg->postgres_host);
    keywords[n] = "port";
    values[n++] = port;
    PARAM("user", cfg->postgres_user);
    PARAM("password", cfg->postgres_password);
    PARAM("dbname", cfg->postgres_db);
    PARAM("application_name", application_name);
    PARAM("connect_timeout", "10");
    PARAM("keepalives_idle", "30");
#undef PARAM
    keywords[n] = NULL;
    values[n] = NULL;
}
