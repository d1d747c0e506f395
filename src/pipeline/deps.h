/*
 * deps.h - `cht-sync pipeline deps`: installs the packages a project's
 * packages.yml (or dependencies.yml) names, as `dbt deps` does, and the
 * check the loader makes that they are installed.
 *
 * Three kinds of entry: `local: PATH` (a symlink to the folder), `git: URL`
 * (`revision:`, `subdirectory:`) and hub packages (`package: org/name`,
 * `version:` one or a list of ranges).  A hub name has no registry here: it
 * resolves to a git repository through a URL template (docs/pipeline.md,
 * "Packages"), and the version is the highest tag that satisfies every range.
 * Packages are installed flat, transitive ones too, each in a folder named
 * after its dbt_project.yml `name`, under `packages-install-path`
 * (default dbt_packages); package-lock.yml records what was installed and a
 * later run installs exactly that while packages.yml is unchanged.
 *
 * git runs as a child process (argv, never a shell).
 */
#ifndef CS_PIPELINE_DEPS_H
#define CS_PIPELINE_DEPS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/result.h"
#include "pipeline/yaml_tree.h"

/* a parsed semantic version; pre is "" for a release */
typedef struct {
    long major, minor, patch;
    char pre[32];
} deps_version;

/* parses "1.2.3", "v1.2.3", "1.2" (patch 0), "1.2.3-rc1"; false when not a version */
bool deps_version_parse(const char *s, deps_version *out);
int deps_version_cmp(const deps_version *a, const deps_version *b);
/* whether v satisfies one range: ">=1.1.0", "<2.0.0", "=1.1.1", "1.1.1", ... */
bool deps_range_match(const deps_version *v, const char *range);
/*
 * The index of the highest of the n tags that is a version satisfying every
 * one of the nr ranges (pre-releases only when allow_pre), or -1.
 */
long deps_pick_tag(char *const *tags, size_t n, char *const *ranges, size_t nr, bool allow_pre);

/*
 * A hub package's git URL: the template (NULL: the default
 * "https://github.com/{org}/{repo}.git") with {org}, {name} and {repo}
 * (name with '_' as '-') replaced.  The caller frees the result.
 */
char *deps_hub_url(const char *tmpl, const char *org, const char *name);

/* root's packages-install-path (default dbt_packages) as a path; caller frees */
char *deps_install_dir(const char *root);

/*
 * `cht-sync pipeline deps [--project-dir DIR] [--upgrade]`; env
 * (NULL-terminated NAME=VALUE, borrowed) gives DBT_HUB_URL_TEMPLATE and the
 * environment git runs in.  Returns the exit status.
 */
int deps_main(const char *default_dir, int argc, char **argv, char *const *env);

/*
 * For the loader: the root project's package entries (the `packages` list
 * of packages.yml or dependencies.yml, borrowed) against what is installed
 * under install_dir.  Sets *dirs to a new array of the installed package
 * folders (caller frees each and the array), every one holding a
 * dbt_project.yml.  A git or hub entry without an installed package is
 * CS_INVALID naming it and `cht-sync pipeline deps`.
 */
cs_result deps_installed(const char *file, const pv *list, const char *install_dir, char ***dirs,
                         size_t *ndirs, cs_error *err) CS_MUST_CHECK;

#endif
