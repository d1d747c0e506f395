/*
 * test_config.c - the settings table: defaults, environment, flags,
 * COUCHDB_DBS splitting, invalid values, and the masked dump.
 */
#include <stdlib.h>

#include "common/config.h"
#include "unit.h"

static const char *const *fake_env;

static char *fake_getenv(const char *name)
{
    for (const char *const *e = fake_env; e && *e; e += 2)
        if (strcmp(e[0], name) == 0)
            return (char *)e[1];
    return NULL;
}

static cs_result load(cs_config *cfg, const char *const *env, int *argc, char **argv, cs_error *err)
{
    fake_env = env;
    return config_load(cfg, fake_getenv, argc, argv, err);
}

static void test_defaults(void)
{
    cs_config cfg;
    cs_error err;
    int argc = 1;
    char *argv[] = {"cht-sync", NULL};

    CHECK_INT(load(&cfg, NULL, &argc, argv, &err), CS_OK);
    CHECK_STR(cfg.couchdb_host, "couchdb");
    CHECK_INT(cfg.couchdb_port, 5984);
    CHECK(cfg.secure);
    CHECK_INT(cfg.batch_size, 1000);
    CHECK_STR(cfg.postgres_db, "cht_sync");
    CHECK_STR(cfg.postgres_schema, "v1");
    CHECK_STR(cfg.postgres_table, "couchdb");
    CHECK_INT(cfg.ndbs, 1);
    CHECK_STR(cfg.dbs[0], "medic");
    CHECK(cfg.couchdb_password == NULL);
    config_free(&cfg);
}

static void test_dbs_splitting(void)
{
    static const struct {
        const char *value;
        int n;
        const char *first, *last;
    } cases[] = {
        {"medic, medic-sentinel medic-users-meta", 3, "medic", "medic-users-meta"},
        {"medic,medic-sentinel", 2, "medic", "medic-sentinel"},
        {"  medic  ", 1, "medic", "medic"},
        {"a,,b , ,c", 3, "a", "c"},
        {"", 0, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *env[] = {"COUCHDB_DBS", cases[i].value, NULL};
        cs_config cfg;
        cs_error err;
        int argc = 1;
        char *argv[] = {"x", NULL};
        CHECK_INT(load(&cfg, env, &argc, argv, &err), CS_OK);
        CHECK_INT(cfg.ndbs, cases[i].n);
        if (cases[i].n > 0) {
            CHECK_STR(cfg.dbs[0], cases[i].first);
            CHECK_STR(cfg.dbs[cfg.ndbs - 1], cases[i].last);
        }
        config_free(&cfg);
    }
}

static void test_env_and_flags(void)
{
    const char *env[] = {"COUCHDB_HOST", "envhost",       "COUCHDB_SECURE", "false", "BATCH_SIZE",
                         "50",           "POSTGRES_PORT", "6543",           NULL};
    char *argv[] = {"cht-sync", "sync", "--couchdb-host", "flaghost", "--batch-size=7",
                    "--once",   NULL};
    int argc = 6;
    cs_config cfg;
    cs_error err;

    CHECK_INT(load(&cfg, env, &argc, argv, &err), CS_OK);
    CHECK_STR(cfg.couchdb_host, "flaghost"); /* flags win */
    CHECK_INT(cfg.batch_size, 7);
    CHECK_INT(cfg.postgres_port, 6543);
    CHECK(!cfg.secure); /* only the literal true selects https */
    /* the settings flags are removed, the rest kept in order */
    CHECK_INT(argc, 3);
    CHECK_STR(argv[1], "sync");
    CHECK_STR(argv[2], "--once");
    config_free(&cfg);
}

static void test_invalid_values(void)
{
    static const char *const cases[][2] = {
        {"BATCH_SIZE", "abc"},          {"BATCH_SIZE", "0"},   {"COUCHDB_PORT", "70000"},
        {"BATCH_SIZE", "10x"},          {"LOG_LEVEL", "loud"}, {"POSTGRES_SCHEMA", ""},
        {"COUCHDB_DBS", "medic medic"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *env[] = {cases[i][0], cases[i][1], NULL};
        cs_config cfg;
        cs_error err = {0};
        int argc = 1;
        char *argv[] = {"x", NULL};
        cs_result rc = load(&cfg, env, &argc, argv, &err);
        CHECK_INT(rc, CS_PERMANENT);
        CHECK(strstr(err.msg, cases[i][0]) != NULL);
        config_free(&cfg);
    }
    /* a flag without its value */
    {
        cs_config cfg;
        cs_error err = {0};
        char *argv[] = {"x", "--batch-size", NULL};
        int argc = 2;
        CHECK_INT(load(&cfg, NULL, &argc, argv, &err), CS_PERMANENT);
        config_free(&cfg);
    }
}

static void test_dump_masks_secrets(void)
{
    const char *env[] = {"COUCHDB_PASSWORD",
                         "couch-pw-123",
                         "POSTGRES_PASSWORD",
                         "pg-pw-456",
                         "COUCHDB_USER",
                         "admin",
                         NULL};
    cs_config cfg;
    cs_error err;
    int argc = 1;
    char *argv[] = {"x", NULL};
    char *text = NULL;
    size_t len = 0;
    FILE *f;

    CHECK_INT(load(&cfg, env, &argc, argv, &err), CS_OK);
    f = open_memstream(&text, &len);
    config_print(&cfg, f);
    config_print_help(f);
    fclose(f);
    CHECK(strstr(text, "couch-pw-123") == NULL);
    CHECK(strstr(text, "pg-pw-456") == NULL);
    CHECK(strstr(text, "COUCHDB_PASSWORD=********") != NULL);
    CHECK(strstr(text, "COUCHDB_USER=admin") != NULL);
    CHECK(strstr(text, "--couchdb-dbs") != NULL);
    free(text);
    config_free(&cfg);
}

/* the source's name: the host in lower case, or COUCHDB_SOURCE as given */
static void test_source_name(void)
{
    static const struct {
        const char *host, *source, *want;
    } cases[] = {
        {"couchdb", NULL, "couchdb"},
        {"CouchDB.Example.ORG", NULL, "couchdb.example.org"},
        {"10.0.0.5", "CHT-Prod", "CHT-Prod"},
        {"10.0.0.5", "", "10.0.0.5"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *env[] = {"COUCHDB_HOST", cases[i].host,
                             cases[i].source ? "COUCHDB_SOURCE" : NULL, cases[i].source, NULL};
        cs_config cfg;
        cs_error err;
        int argc = 1;
        char *argv[] = {"x", NULL};
        CHECK_INT(load(&cfg, env, &argc, argv, &err), CS_OK);
        CHECK_STR(cfg.source_name, cases[i].want);
        config_free(&cfg);
    }
}

int main(void)
{
    UNIT_BEGIN("test_config");
    RUN(test_defaults);
    RUN(test_dbs_splitting);
    RUN(test_env_and_flags);
    RUN(test_invalid_values);
    RUN(test_dump_masks_secrets);
    RUN(test_source_name);
    UNIT_END();
}
