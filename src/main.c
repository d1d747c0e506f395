/*
 * main.c - the command line: reads the environment once into a cs_config
 * and dispatches to a command.  Nothing below main reads the environment or
 * exits the process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "daemon/daemon.h"
#include "observe/observe.h"
#include "pipeline/pipeline.h"
#include "sync/sync.h"
#include "sync/verify.h"

typedef struct {
    const char *name;
    int (*run)(const cs_config *cfg, int argc, char **argv);
    const char *help;
} command;

static int cmd_config(const cs_config *cfg, int argc, char **argv)
{
    config_print(cfg, stdout);
    return 0;
}

static const command commands[] = {
    {"run", daemon_main,
     "the sync and the models in one process (--models-only: the models, after the commits "
     "of other sync processes)"},
    {"sync", sync_main, "follow the CouchDB databases into PostgreSQL (--once: until caught up)"},
    {"verify", verify_main,
     "compare the raw table with CouchDB, print the drift (--repair: fix it)"},
    {"config", cmd_config, "print the effective settings (secrets masked)"},
    {"pipeline", pipeline_main, "run the dbt-format model project (run, compile, test, ls)"},
    {"status", status_main, "the sync's and the models' state from PostgreSQL (exit 0: healthy)"},
    {"estimate", estimate_main, "disk and time a first sync will take, from a sample"},
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: cht-sync COMMAND [OPTIONS]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
    fputc('\n', out);
    config_print_help(out);
}

int main(int argc, char **argv)
{
    cs_config cfg;
    cs_error err;
    log_level lvl;
    int rc;

    /* "cht-sync --help"; "cht-sync COMMAND --help" is the command's own */
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    /* pipeline help works even when the settings would not load */
    for (int i = 2; i < argc && strcmp(argv[1], "pipeline") == 0; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            pipeline_usage(stdout, i > 2 ? argv[2] : NULL);
            return 0;
        }
    }
    if (config_load(&cfg, getenv, &argc, argv, &err) != CS_OK) {
        fprintf(stderr, "cht-sync: %s\n", err.msg);
        config_free(&cfg);
        return 2;
    }
    if (log_parse_level(cfg.log_level, &lvl))
        log_set_level(lvl);
    if (argc < 2) {
        usage(stderr); /* only settings flags were given */
        config_free(&cfg);
        return 2;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            rc = commands[i].run(&cfg, argc - 1, argv + 1);
            config_free(&cfg);
            return rc;
        }
    }
    fprintf(stderr, "cht-sync: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    config_free(&cfg);
    return 2;
}
