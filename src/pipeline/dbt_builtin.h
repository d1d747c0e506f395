/*
 * dbt_builtin.h - the dbt macros built into the binary: the `dbt`
 * namespace of cross-database helpers (dateadd, type_string, ...) that
 * dbt-core and dbt-postgres give packages, written for cht-sync in
 * the .sql files of src/pipeline/macros/.
 *
 * The Makefile generates the table from that folder (scripts/embed-files);
 * dbt_parse compiles each file once and dbt_worker_new registers their
 * macros first, under the namespace `dbt`, so that every package's and the
 * root project's macros of the same name win, and adapter.dispatch finds a
 * project's postgres__NAME / default__NAME before ours.
 */
#ifndef CS_DBT_BUILTIN_H
#define CS_DBT_BUILTIN_H

#include <stddef.h>

typedef struct {
    const char *path;          /* file name inside src/pipeline/macros */
    const unsigned char *data; /* its bytes, NUL-terminated */
    size_t len;
} dbt_builtin_file;

extern const dbt_builtin_file dbt_builtin_files[]; /* dbt_builtin_nfiles + 1 (NULL path) */
extern const size_t dbt_builtin_nfiles;

#endif
