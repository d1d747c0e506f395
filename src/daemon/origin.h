/*
 * origin.h - where `cht-sync run` gets its model project from.
 *
 * The root project is DBT_LOCAL_PATH (a folder), else
 * CHT_PIPELINE_BRANCH_URL (a git URL with an optional #revision, cloned or
 * fetched into CHT_SYNC_CACHE_DIR when the process starts), else the base
 * models themselves.  The base models (CHT_PIPELINE_BASE: the built-in
 * copy, unpacked into the cache directory, or a folder) are offered to the
 * root project under the package name cht_pipeline_base; with
 * CHT_PIPELINE_BASE=project none are offered and the project's own
 * packages.yml decides.  See docs/daemon.md.
 */
#ifndef CS_ORIGIN_H
#define CS_ORIGIN_H

#include "common/config.h"
#include "common/result.h"

typedef struct {
    char *project_dir; /* the root project */
    char *base_dir;    /* the base models offered as cht_pipeline_base, or NULL */
    char *what;        /* for the log: where the project came from (no credentials) */
} origin;

/*
 * Fills o (the caller frees it with origin_free, also after a failure).
 * CS_TRANSIENT: a git fetch failed and no earlier checkout exists (worth
 * retrying); CS_PERMANENT: the settings cannot work (no project at all, no
 * git, an unwritable cache directory).
 */
cs_result origin_resolve(const cs_config *cfg, origin *o, cs_error *err) CS_MUST_CHECK;
void origin_free(origin *o);

/* url without "user:password@" (for messages); the caller frees it */
char *origin_redact_url(const char *url);

#endif
