/*
 * embedded.h - the base models built into the binary.
 *
 * The Makefile generates the table from the repository's base-models/
 * folder (scripts/embed-files), so that one binary carries the base models
 * it was tested with; origin.c unpacks them into the cache directory the
 * first time a process needs them.  A build from a tree without
 * base-models/ has an empty table.
 */
#ifndef CS_EMBEDDED_H
#define CS_EMBEDDED_H

#include <stddef.h>

typedef struct {
    const char *path; /* relative to the project's root, '/'-separated */
    const unsigned char *data;
    size_t len;
} embedded_file;

extern const embedded_file embedded_base_files[]; /* embedded_base_nfiles + 1 (NULL path) */
extern const size_t embedded_base_nfiles;

#endif
