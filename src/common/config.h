/*
 * config.h - the one table of settings.
 *
 * Each setting is a row of config_table (config.c): environment variable,
 * type, default, bounds, whether it is secret, and help text.  The same
 * table drives the environment, the command-line flags (--couchdb-host for
 * COUCHDB_HOST), --help and `cht-sync config` (secrets masked).  The
 * environment is read once, in main; everything below receives a const
 * cs_config and never calls getenv.
 */
#ifndef CS_CONFIG_H
#define CS_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "common/result.h"

#define CONFIG_MAX_DBS 64

typedef struct {
    /* CouchDB */
    char *couchdb_host;
    int couchdb_port;
    char *couchdb_secure; /* "true" selects https, anything else http (as today) */
    char *couchdb_user;
    char *couchdb_password;
    char *couchdb_dbs; /* as given; parsed into dbs[] */
    char *couchdb_ca_file;
    int couchdb_gzip;
    int batch_size;
    int batch_max_bytes;
    int max_doc_bytes;
    int longpoll_seconds;
    /* PostgreSQL */
    char *postgres_host;
    int postgres_port;
    char *postgres_user;
    char *postgres_password;
    char *postgres_db;
    char *postgres_schema;
    char *postgres_table;
    /* pipeline */
    int dataemon_interval;
    int dbt_thread_count;
    int dbt_batch_size;
    char *dbt_selector;
    char *cht_pipeline_branch_url;
    char *dbt_local_path;
    char *cht_pipeline_base; /* "builtin", "project" or a folder */
    char *cache_dir;
    /* process */
    char *log_level;
    int metrics_port;      /* 0: no HTTP server */
    char *metrics_address; /* numeric address the HTTP server binds */

    /* derived */
    bool secure;
    int ndbs;
    char *dbs[CONFIG_MAX_DBS];
} cs_config;

typedef char *(*config_getenv_fn)(const char *name);

/*
 * Fills cfg from defaults, then the environment (getenv_fn, usually getenv),
 * then the flags in argv.  Flags that are settings are removed from argv
 * (argc updated) so the caller sees only its own arguments.  Returns
 * CS_PERMANENT with a message for an unknown flag or an invalid value.
 * cfg owns its strings: config_free releases them.
 */
cs_result config_load(cs_config *cfg, config_getenv_fn getenv_fn, int *argc, char **argv,
                      cs_error *err) CS_MUST_CHECK;
void config_free(cs_config *cfg);

/* the settings with defaults and help, for --help */
void config_print_help(FILE *out);
/* the effective settings as ENV=value lines, secrets masked */
void config_print(const cs_config *cfg, FILE *out);

/* libpq connection parameters built from the config (no string escaping
 * issues: keyword/value arrays).  keywords/values must hold 16 entries. */
void config_pg_params(const cs_config *cfg, const char **keywords, const char **values,
                      const char *application_name);

#endif
