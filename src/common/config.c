/*
 * config.c - the settings table and its parsers (see config.h).
 */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
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
    {"COUCHDB_SOURCE", STR(couchdb_source), NULL, 0, 0,
     "names this CouchDB in the raw table's source column (<name>/<db>) whatever its address; "
     "default: COUCHDB_HOST in lower case"},
    {"COUCHDB_PORT", INT(couchdb_port), "5984", 1, 65535, "CouchDB port"},
    {"COUCHDB_SECURE", STR(couchdb_secure), "true", 0, 0,
     "the literal true selects https, anything else http"},
    {"COUCHDB_USER", STR(couchdb_user), NULL, 0, 0, "CouchDB user name"},
    {"COUCHDB_PASSWORD", SECRET(couchdb_password), NULL, 0, 0, "CouchDB password"},
    {"COUCHDB_PASSWORD_FILE", STR(couchdb_password_file), NULL, 0, 0,
     "a file holding the CouchDB password (a flag or a variable shows in ps or the process's "
     "environment; a file need not)"},
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
    {"POSTGRES_PASSWORD_FILE", STR(postgres_password_file), NULL, 0, 0,
     "a file holding the PostgreSQL password"},
    {"POSTGRES_SSLMODE", STR(postgres_sslmode), NULL, 0, 0,
     "libpq's sslmode: disable, allow, prefer, require, verify-ca or verify-full (default: "
     "libpq's prefer, which verifies nothing; verify-full checks the certificate and the host "
     "name)"},
    {"POSTGRES_SSLROOTCERT", STR(postgres_sslrootcert), NULL, 0, 0,
     "CA certificate(s) that verify the PostgreSQL server (verify-ca, verify-full)"},
    {"POSTGRES_DB", STR(postgres_db), "cht_sync", 0, 0, "PostgreSQL database"},
    {"POSTGRES_SCHEMA", STR(postgres_schema), "v1", 0, 0,
     "schema of the raw table, the progress table and every model"},
    {"POSTGRES_TABLE", STR(postgres_table), "couchdb", 0, 0, "name of the raw table"},
    {"POSTGRES_STATEMENT_TIMEOUT", INT(postgres_statement_timeout), "300", 0, 86400,
     "seconds one statement of the sync may take (the server's statement_timeout; the "
     "client gives up 2 s later, e.g. on a frozen server); 0: no limit"},
    {"POSTGRES_LOCK_TIMEOUT_MS", INT(postgres_lock_timeout_ms), "1000", 0, 600000,
     "how long a schema change at start waits for its table lock before it lets readers "
     "through and retries (readers queue behind a waiting change); 0: forever"},
    {"POSTGRES_KEEPALIVES_IDLE", INT(postgres_keepalives_idle), "30", 1, 86400,
     "seconds of silence before TCP keepalives probe the PostgreSQL connection"},
    {"POSTGRES_KEEPALIVES_INTERVAL", INT(postgres_keepalives_interval), "10", 1, 3600,
     "seconds between keepalive probes"},
    {"POSTGRES_KEEPALIVES_COUNT", INT(postgres_keepalives_count), "3", 1, 100,
     "unanswered probes after which the connection is dead"},
    {"POSTGRES_TCP_USER_TIMEOUT", INT(postgres_tcp_user_timeout), "60", 0, 86400,
     "seconds sent data may stay unacknowledged before the connection is dead (0: the "
     "system's)"},
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

#define SECRET_FILE_MAX 65536

/*
 * *secret from the file named by path (a Docker or Kubernetes secret), its
 * trailing line break removed.  Giving both the secret and the file is an
 * error: which one wins would be a guess.  No message shows the content.
 */
static cs_result secret_from_file(char **secret, const char *path, const char *name, cs_error *err)
{
    char *data;
    size_t n;
    FILE *f;

    if (!path || !*path)
        return CS_OK;
    if (*secret)
        return cs_fail(err, CS_PERMANENT, "both %s and %s_FILE are set: give one", name, name);
    if (!(f = fopen(path, "rb")))
        return cs_fail(err, CS_PERMANENT, "could not open %s_FILE \"%s\": %s", name, path,
                       strerror(errno));
    data = malloc(SECRET_FILE_MAX + 1);
    n = data ? fread(data, 1, SECRET_FILE_MAX + 1, f) : 0;
    fclose(f);
    if (!data)
        return cs_fail(err, CS_PERMANENT, "out of memory");
    if (n > SECRET_FILE_MAX) {
        free(data);
        return cs_fail(err, CS_PERMANENT, "%s_FILE \"%s\" is larger than %d bytes", name, path,
                       SECRET_FILE_MAX);
    }
    while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r'))
        n--;
    data[n] = '\0';
    *secret = data;
    return CS_OK;
}

static bool valid_sslmode(const char *m)
{
    static const char *const modes[] = {"disable", "allow",     "prefer",
                                        "require", "verify-ca", "verify-full"};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (strcmp(m, modes[i]) == 0)
            return true;
    return false;
}

static cs_result derive(cs_config *cfg, cs_error *err)
{
    cs_result rc;

    log_level lvl;
    char *p;

    cfg->secure = strcmp(cfg->couchdb_secure ? cfg->couchdb_secure : "", "true") == 0;
    if ((rc = secret_from_file(&cfg->couchdb_password, cfg->couchdb_password_file,
                               "COUCHDB_PASSWORD", err)) ||
        (rc = secret_from_file(&cfg->postgres_password, cfg->postgres_password_file,
                               "POSTGRES_PASSWORD", err)))
        return rc;
    if (cfg->postgres_sslmode && *cfg->postgres_sslmode && !valid_sslmode(cfg->postgres_sslmode))
        return cs_fail(err, CS_PERMANENT,
                       "invalid POSTGRES_SSLMODE \"%s\": expected disable, allow, prefer, "
                       "require, verify-ca or verify-full",
                       cfg->postgres_sslmode);
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

    /* the source names the instance; a host name is case-insensitive */
    free(cfg->source_name);
    cfg->source_name = strdup(cfg->couchdb_source && *cfg->couchdb_source ? cfg->couchdb_source
                                                                          : cfg->couchdb_host);
    if (!cfg->source_name)
        return cs_fail(err, CS_PERMANENT, "out of memory");
    if (!(cfg->couchdb_source && *cfg->couchdb_source))
        for (p = cfg->source_name; *p; p++)
            *p = (char)tolower((unsigned char)*p);

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
        if (match->type == SET_SECRET)
            log_warn(NULL,
                     "%s given on the command line: every user of this machine can read it "
                     "(ps); use %s_FILE or the environment",
                     match->env, match->env);
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
    free(cfg->source_name);
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
    static __thread char port[16], idle[16], interval[16], count[16], user_timeout[16];
    int n = 0;

    snprintf(port, sizeof(port), "%d", cfg->postgres_port);
    snprintf(idle, sizeof(idle), "%d", cfg->postgres_keepalives_idle);
    snprintf(interval, sizeof(interval), "%d", cfg->postgres_keepalives_interval);
    snprintf(count, sizeof(count), "%d", cfg->postgres_keepalives_count);
    /* libpq wants milliseconds */
    snprintf(user_timeout, sizeof(user_timeout), "%lld",
             (long long)cfg->postgres_tcp_user_timeout * 1000);
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
    if (cfg->postgres_sslmode && *cfg->postgres_sslmode)
        PARAM("sslmode", cfg->postgres_sslmode);
    if (cfg->postgres_sslrootcert && *cfg->postgres_sslrootcert)
        PARAM("sslrootcert", cfg->postgres_sslrootcert);
    PARAM("application_name", application_name);
    PARAM("connect_timeout", "10");
    PARAM("keepalives", "1");
#define ALWAYS(k, v)                                                                               \
    do {                                                                                           \
        keywords[n] = k;                                                                           \
        values[n++] = v;                                                                           \
    } while (0)
    ALWAYS("keepalives_idle", idle);
    ALWAYS("keepalives_interval", interval);
    ALWAYS("keepalives_count", count);
    ALWAYS("tcp_user_timeout", user_timeout);
#undef ALWAYS
#undef PARAM
    keywords[n] = NULL;
    values[n] = NULL;
}
