/*
 * project.c - see project.h.
 *
 * Load order: the root dbt_project.yml, then packages.yml's local packages
 * (each with its own dbt_project.yml), then for every package its model
 * files, property files, macro files and singular tests; finally the
 * folder-level configs are merged into each model (the package's own
 * dbt_project.yml first, then the root project's entry for that package).
 */
#include "pipeline/project.h"

#include <dirent.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "pipeline/deps.h"
#include "pipeline/seed.h"

#define PROJECT_MAX_FILES 100000

static char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = xrealloc(NULL, la + lb + 2);
    memcpy(p, a, la);
    if (la && a[la - 1] != '/')
        p[la++] = '/';
    memcpy(p + la, b, lb + 1);
    return p;
}

static void stamp_add(pl_project *p, const char *path)
{
    struct stat st;
    pl_stamp *s;

    XGROW(p->stamps, p->nstamps);
    s = &p->stamps[p->nstamps++];
    s->path = xstrdup(path);
    if (stat(path, &st) == 0) {
        s->mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        s->size = (long long)st.st_size;
    } else {
        s->mtime_ns = -1;
        s->size = -1;
    }
}

bool project_changed(const pl_project *p)
{
    struct stat st;

    for (size_t i = 0; i < p->nstamps; i++) {
        const pl_stamp *s = &p->stamps[i];
        if (stat(s->path, &st) != 0) {
            if (s->mtime_ns != -1)
                return true;
            continue;
        }
        if ((long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec != s->mtime_ns ||
            (!S_ISDIR(st.st_mode) && (long long)st.st_size != s->size))
            return true;
    }
    return false;
}

bool project_settled(const pl_project *p, long long quiet_ns)
{
    struct timespec now;
    struct stat st;
    long long t;

    clock_gettime(CLOCK_REALTIME, &now);
    t = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
    for (size_t i = 0; i < p->nstamps; i++) {
        long long m;
        if (stat(p->stamps[i].path, &st) != 0)
            continue;
        m = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        if (m > t - quiet_ns && m <= t + 60000000000LL)
            return false;
    }
    return true;
}

/* keys of a `models:` folder tree that are configs even without a '+' */
static bool is_config_key(const char *k)
{
    static const char *const known[] = {"materialized",
                                        "tags",
                                        "enabled",
                                        "schema",
                                        "alias",
                                        "unique_key",
                                        "on_schema_change",
                                        "indexes",
                                        "pre-hook",
                                        "post-hook",
                                        "pre_hook",
                                        "post_hook",
                                        "contract",
                                        "incremental_strategy",
                                        "docs",
                                        "persist_docs",
                                        "full_refresh",
                                        "meta",
                                        "grants",
                                        "database",
                                        "sql_header",
                                        "quoting",
                                        "column_types",
                                        "access",
                                        "group"};
    if (k[0] == '+')
        return true;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(k, known[i]) == 0)
            return true;
    return false;
}

/* merges the configs at one level of a folder tree (not its sub-folders) */
static void merge_level(pv *dst, const pv *level)
{
    pv *only = pv_new(PV_MAP);

    if (level && level->type == PV_MAP) {
        for (size_t i = 0; i < level->n; i++)
            if (is_config_key(level->keys[i]))
                pv_set(only, level->keys[i], pv_copy(level->items[i]));
    }
    project_config_merge(dst, only);
    pv_free(only);
}

/*
 * Walks tree (the models: entry for one package) along the model's folders
 * and name, merging each level's configs into dst, least specific first.
 */
static void merge_folder_configs(pv *dst, const pv *tree, const pl_model *m, const char *mpath)
{
    const char *rest = m->relpath + strlen(mpath);
    const pv *level = tree;
    char part[256];

    merge_level(dst, level);
    while (*rest == '/')
        rest++;
    while (level && *rest) {
        size_t n = strcspn(rest, "/");
        if (n >= sizeof(part))
            return;
        memcpy(part, rest, n);
        part[n] = '\0';
        if (rest[n] == '\0') { /* the file itself: its model name */
            char *dot = strrchr(part, '.');
            if (dot)
                *dot = '\0';
        }
        level = is_config_key(part) ? NULL : pv_get(level, part);
        if (level && level->type == PV_MAP)
            merge_level(dst, level);
        else
            return;
        rest += n;
        while (*rest == '/')
            rest++;
    }
}

/* ---- files ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef void (*walk_fn)(pl_project *p, size_t pkg, const char *relpath, void *ud, cs_error *err,
                        cs_result *rc);

/*
 * The package's .dbtignore (gitignore's syntax, as dbt reads it): one
 * pattern a line, "#" comments, "!" to take a path back, a trailing "/"
 * for folders only, a "/" inside anchors the pattern at the package root,
 * "**" crosses folders.  A missing file is no patterns; it is stamped, so
 * that creating it is noticed.
 */
static void load_dbtignore(pl_project *p, pl_package *pk)
{
    char *file = path_join(pk->root, ".dbtignore"), *text;
    size_t len;

    stamp_add(p, file);
    if (pv_read_file(file, &text, &len)) {
        for (char *line = text, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            size_t n = strlen(line);
            while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
                line[--n] = '\0';
            if (n == 0 || line[0] == '#')
                continue;
            XGROW(pk->ignore, pk->nignore);
            pk->ignore[pk->nignore++] = xstrdup(line);
        }
        free(text);
    }
    free(file);
}

/* whether one .dbtignore pattern matches relpath (a folder when dir) */
static bool ignore_match(const char *pat, const char *relpath, bool dir)
{
    char pb[1024];
    size_t n = strlen(pat);
    bool anchored, deep = strstr(pat, "**") != NULL;
    const char *base = strrchr(relpath, '/');

    if (n >= sizeof(pb))
        return false;
    memcpy(pb, pat, n + 1);
    if (n > 0 && pb[n - 1] == '/') {
        if (!dir)
            return false;
        pb[--n] = '\0';
    }
    anchored = strchr(pb, '/') != NULL;
    if (!anchored)
        return fnmatch(pb, base ? base + 1 : relpath, 0) == 0;
    return fnmatch(pb[0] == '/' ? pb + 1 : pb, relpath, deep ? 0 : FNM_PATHNAME) == 0;
}

/* whether the package's .dbtignore leaves relpath out (the last match decides) */
static bool ignored(const pl_package *pk, const char *relpath, bool dir)
{
    bool out = false;
    for (size_t i = 0; i < pk->nignore; i++) {
        const char *pat = pk->ignore[i];
        bool neg = pat[0] == '!';
        if (ignore_match(neg ? pat + 1 : pat, relpath, dir))
            out = !neg;
    }
    return out;
}

/*
 * Calls fn for every regular file under root/rel (sorted, recursive).
 * A missing directory is not an error (model-paths may name folders that do
 * not exist); it is still stamped so that creating it is noticed.
 */
static cs_result walk(pl_project *p, size_t pkg, const char *rel, walk_fn fn, void *ud,
                      cs_error *err)
{
    char *dirpath = path_join(p->packages[pkg].root, rel);
    DIR *d;
    struct dirent *de;
    char **names = NULL;
    size_t nnames = 0;
    cs_result rc = CS_OK;

    stamp_add(p, dirpath);
    d = opendir(dirpath);
    if (!d) {
        free(dirpath);
        return CS_OK;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        XGROW(names, nnames);
        names[nnames++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (nnames > 1) /* qsort(NULL, 0) is undefined: an empty folder */
        qsort(names, nnames, sizeof(*names), cmp_str);
    for (size_t i = 0; i < nnames && rc == CS_OK; i++) {
        char *childrel = path_join(rel, names[i]);
        char *full = path_join(p->packages[pkg].root, childrel);
        struct stat st;
        bool found = stat(full, &st) == 0, isdir = found && S_ISDIR(st.st_mode);
        if (p->nstamps > PROJECT_MAX_FILES)
            rc = cs_fail(err, CS_INVALID, "%s: more than %d files", dirpath, PROJECT_MAX_FILES);
        else if (ignored(&p->packages[pkg], childrel, isdir))
            ; /* .dbtignore */
        else if (isdir)
            rc = walk(p, pkg, childrel, fn, ud, err);
        else if (found && S_ISREG(st.st_mode))
            fn(p, pkg, childrel, ud, err, &rc);
        free(childrel);
        free(full);
    }
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    free(dirpath);
    return rc;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static bool read_text(pl_project *p, const char *file, char **text, cs_error *err, cs_result *rc)
{
    size_t len;

    stamp_add(p, file);
    if (!pv_read_file(file, text, &len)) {
        *rc = cs_fail(err, CS_PERMANENT, "could not read file \"%s\": %s", file, strerror(errno));
        return false;
    }
    if (memchr(*text, '\0', len)) {
        free(*text);
        *rc = cs_fail(err, CS_INVALID, "%s: file contains a NUL byte", file);
        return false;
    }
    return true;
}

/* property files found while walking model paths, handled after all models */
typedef struct {
    char **files;
    size_t *pkgs;
    size_t n;
} yml_list;

static void model_index_add(pl_project *p, size_t i);

static void on_model_file(pl_project *p, size_t pkg, const char *relpath, void *ud, cs_error *err,
                          cs_result *rc)
{
    yml_list *yl = ud;
    char *file = path_join(p->packages[pkg].root, relpath);
    const char *base = base_name(relpath);
    pl_model *m;

    if (ends_with(base, ".yml") || ends_with(base, ".yaml")) {
        XGROW(yl->files, yl->n);
        yl->pkgs = xrealloc(yl->pkgs, (yl->n + 1) * sizeof(*yl->pkgs));
        yl->files[yl->n] = file;
        yl->pkgs[yl->n++] = pkg;
        return;
    }
    if (ends_with(base, ".py")) {
        *rc = cs_fail(err, CS_INVALID, "%s:1: Python models are not supported", file);
        free(file);
        return;
    }
    if (!ends_with(base, ".sql")) {
        free(file);
        return;
    }
    {
        char *name = xstrndup(base, strlen(base) - 4);
        long i = project_find_model(p, p->packages[pkg].name, name);
        free(name);
        if (i >= 0 && p->models[i].package == pkg) {
            *rc = cs_fail(err, CS_INVALID, "%s: a model named \"%s\" is already defined in %s",
                          file, p->models[i].name, p->models[i].file);
            free(file);
            return;
        }
    }
    XGROW(p->models, p->nmodels);
    m = &p->models[p->nmodels];
    memset(m, 0, sizeof(*m));
    if (!read_text(p, file, &m->sql, err, rc)) {
        free(file);
        return;
    }
    p->nmodels++;
    m->name = xrealloc(NULL, strlen(base) - 3);
    memcpy(m->name, base, strlen(base) - 4);
    m->name[strlen(base) - 4] = '\0';
    m->package = pkg;
    m->relpath = xstrdup(relpath);
    m->file = file;
    m->config = pv_new(PV_MAP);
    model_index_add(p, p->nmodels - 1);
}

/* a file of seed-paths: only property files count (seed.c finds the CSVs) */
static void on_seed_path_file(pl_project *p, size_t pkg, const char *relpath, void *ud,
                              cs_error *err, cs_result *rc)
{
    if (ends_with(relpath, ".yml") || ends_with(relpath, ".yaml"))
        on_model_file(p, pkg, relpath, ud, err, rc);
}

static void on_macro_file(pl_project *p, size_t pkg, const char *relpath, void *ud, cs_error *err,
                          cs_result *rc)
{
    char *file;
    pl_macro_file *mf;

    if (!ends_with(relpath, ".sql"))
        return;
    file = path_join(p->packages[pkg].root, relpath);
    XGROW(p->macros, p->nmacros);
    mf = &p->macros[p->nmacros];
    if (!read_text(p, file, &mf->text, err, rc)) {
        free(file);
        return;
    }
    mf->file = file;
    mf->package = pkg;
    p->nmacros++;
}

/*
 * A file of test-paths: a singular test, or, under a "generic" folder,
 * generic test definitions ({% test %} blocks), which dbt reads as macros.
 */
static void on_test_file(pl_project *p, size_t pkg, const char *relpath, void *ud, cs_error *err,
                         cs_result *rc)
{
    char *file;
    pl_test *t;
    const char *base = base_name(relpath);

    if (!ends_with(base, ".sql"))
        return;
    if (strncmp(relpath, "generic/", 8) == 0 || strstr(relpath, "/generic/")) {
        on_macro_file(p, pkg, relpath, ud, err, rc);
        return;
    }
    file = path_join(p->packages[pkg].root, relpath);
    XGROW(p->tests, p->ntests);
    t = &p->tests[p->ntests];
    memset(t, 0, sizeof(*t));
    if (!read_text(p, file, &t->sql, err, rc)) {
        free(file);
        return;
    }
    p->ntests++;
    t->name = xstrdup(base);
    t->name[strlen(base) - 4] = '\0';
    t->model = t->seed = t->source = -1;
    t->package = pkg;
    t->file = file;
    t->line = 1;
    t->args = pv_new(PV_MAP);
    t->config = pv_new(PV_MAP);
}

/* ---- dbt_project.yml and packages.yml ---- */

static cs_result str_list(const pv *v, const char *def, char ***out, size_t *n, const char *file,
                          const char *key, cs_error *err)
{
    *out = NULL;
    *n = 0;
    if (!v) {
        XGROW(*out, *n);
        (*out)[(*n)++] = xstrdup(def);
        return CS_OK;
    }
    if (v->type != PV_LIST)
        return cs_fail(err, CS_INVALID, "%s:%d: \"%s\" must be a list of paths", file, v->line,
                       key);
    for (size_t i = 0; i < v->n; i++) {
        if (!pv_s(v->items[i]))
            return cs_fail(err, CS_INVALID, "%s:%d: \"%s\" must be a list of paths", file,
                           v->items[i]->line, key);
        XGROW(*out, *n);
        (*out)[(*n)++] = xstrdup(v->items[i]->s);
    }
    return CS_OK;
}

static pv *hook_list(const pv *v)
{
    pv *l = pv_new(PV_LIST);
    if (v && v->type == PV_LIST) {
        for (size_t i = 0; i < v->n; i++)
            if (pv_s(v->items[i]))
                pv_push(l, pv_copy(v->items[i]));
    } else if (pv_s(v)) {
        pv_push(l, pv_copy(v));
    }
    return l;
}

static cs_result load_package(pl_project *p, const char *dir, cs_error *err)
{
    char *file = path_join(dir, "dbt_project.yml");
    pv *doc = NULL;
    pl_package *pk;
    cs_result rc;
    const char *name;

    stamp_add(p, file);
    rc = pv_load_yaml_file(file, &doc, err);
    if (rc != CS_OK) {
        if (rc == CS_PERMANENT)
            cs_fail(err, CS_PERMANENT, "no dbt_project.yml in \"%s\" (is it a dbt project?)", dir);
        free(file);
        return rc;
    }
    name = pv_gets(doc, "name");
    if (!name || !*name) {
        rc = cs_fail(err, CS_INVALID, "%s: \"name\" is missing", file);
        goto out;
    }
    for (size_t i = 0; i < p->npackages; i++) {
        if (strcmp(p->packages[i].name, name) == 0) {
            rc = cs_fail(err, CS_INVALID, "%s: project name \"%s\" is already used by %s", file,
                         name, p->packages[i].file);
            goto out;
        }
    }
    XGROW(p->packages, p->npackages);
    pk = &p->packages[p->npackages++];
    memset(pk, 0, sizeof(*pk));
    pk->name = xstrdup(name);
    pk->root = xstrdup(dir);
    pk->file = file;
    file = NULL;
    pk->vars = pv_get(doc, "vars") && pv_get(doc, "vars")->type == PV_MAP
                   ? pv_copy(pv_get(doc, "vars"))
                   : pv_new(PV_MAP);
    pk->models_cfg = pv_get(doc, "models") ? pv_copy(pv_get(doc, "models")) : NULL;
    {
        const pv *tc = pv_get(doc, "data_tests") ? pv_get(doc, "data_tests") : pv_get(doc, "tests");
        pk->tests_cfg = tc && tc->type == PV_MAP ? pv_copy(tc) : NULL;
    }
    pk->on_run_start = hook_list(pv_get(doc, "on-run-start"));
    pk->on_run_end = hook_list(pv_get(doc, "on-run-end"));
    pk->dispatch = pv_get(doc, "dispatch") ? pv_copy(pv_get(doc, "dispatch")) : NULL;
    load_dbtignore(p, pk);
    if ((rc = str_list(
             pv_get(doc, "model-paths") ? pv_get(doc, "model-paths") : pv_get(doc, "source-paths"),
             "models", &pk->model_paths, &pk->n_model_paths, pk->file, "model-paths", err)) !=
            CS_OK ||
        (rc = str_list(pv_get(doc, "macro-paths"), "macros", &pk->macro_paths, &pk->n_macro_paths,
                       pk->file, "macro-paths", err)) != CS_OK ||
        (rc = str_list(pv_get(doc, "test-paths"), "tests", &pk->test_paths, &pk->n_test_paths,
                       pk->file, "test-paths", err)) != CS_OK ||
        (rc = str_list(
             pv_get(doc, "seed-paths") ? pv_get(doc, "seed-paths") : pv_get(doc, "data-paths"),
             "seeds", &pk->seed_paths, &pk->n_seed_paths, pk->file, "seed-paths", err)) != CS_OK)
        goto out;
out:
    free(file);
    pv_free(doc);
    return rc;
}

/*
 * Reads the root project's optional YAML file name (packages.yml,
 * selectors.yml), stamped for change detection.  *file is always set
 * (caller frees); *doc is NULL when the file does not exist.
 */
static cs_result load_optional_yaml(pl_project *p, const char *name, char **file, pv **doc,
                                    cs_error *err)
{
    struct stat st;

    *file = path_join(p->packages[0].root, name);
    *doc = NULL;
    stamp_add(p, *file);
    if (stat(*file, &st) != 0)
        return CS_OK;
    return pv_load_yaml_file(*file, doc, err);
}

/* whether the project in dir (a symlink `deps` made for a local package,
 * say) is already loaded */
static bool package_loaded(const pl_project *p, const char *dir)
{
    char a[PATH_MAX], b[PATH_MAX];
    if (!realpath(dir, a))
        return false;
    for (size_t i = 0; i < p->npackages; i++)
        if (realpath(p->packages[i].root, b) && strcmp(a, b) == 0)
            return true;
    return false;
}

/* a git package of CHT Pipeline (any URL naming the cht-pipeline repository) */
static bool is_cht_pipeline(const pv *entry)
{
    const char *git = pv_gets(entry, "git");
    return git && strstr(git, "cht-pipeline") != NULL;
}

static cs_result load_packages_yml(pl_project *p, const char *base_dir, cs_error *err)
{
    char *file;
    pv *doc, *list;
    cs_result rc = load_optional_yaml(p, "packages.yml", &file, &doc, err);
    char *install = NULL, **dirs = NULL;
    size_t ndirs = 0;

    if (rc == CS_OK && !doc) { /* dbt reads either file */
        free(file);
        rc = load_optional_yaml(p, "dependencies.yml", &file, &doc, err);
    }
    if (rc != CS_OK)
        goto out;
    list = pv_get(doc, "packages");
    if (doc && (!list || list->type != PV_LIST)) {
        if (doc->type != PV_NULL && !(list && list->type == PV_NULL))
            rc = cs_fail(err, CS_INVALID, "%s:%d: \"packages\" must be a list", file, doc->line);
        list = NULL;
    }
    for (size_t i = 0; list && i < list->n && rc == CS_OK; i++) {
        const pv *e = list->items[i];
        const char *local = pv_gets(e, "local");
        if (base_dir && is_cht_pipeline(e))
            continue; /* the base models stand in for it (project_load_with_base) */
        if (!local)
            continue; /* git and hub packages: installed under dbt_packages, below */
        char *dir = local[0] == '/' ? xstrdup(local) : path_join(p->packages[0].root, local);
        rc = load_package(p, dir, err);
        if (rc != CS_OK)
            cs_error_prefix(err, "%s:%d: package \"%s\": ", file, e->line, local);
        free(dir);
    }
    /* what `deps` (or dbt deps, or a hand) put in the install path, as dbt
     * loads it: every project there, named or not */
    install = deps_install_dir(p->packages[0].root);
    if (rc == CS_OK) {
        /* with the base models standing in, CHT Pipeline need not be installed */
        pv *named = list ? pv_copy(list) : NULL;
        for (size_t i = 0; base_dir && named && i < named->n; i++)
            if (is_cht_pipeline(named->items[i]))
                pv_set(named->items[i], "git", pv_str("")); /* neither checked nor counted */
        rc = deps_installed(file, named, install, &dirs, &ndirs, err);
        pv_free(named);
    }
    for (size_t i = 0; i < ndirs; i++) {
        const char *base = strrchr(dirs[i], '/') ? strrchr(dirs[i], '/') + 1 : dirs[i];
        /* the base models stand in for an installed copy too */
        if (rc == CS_OK && !(base_dir && strcmp(base, PROJECT_BASE_PACKAGE) == 0) &&
            !package_loaded(p, dirs[i]))
            rc = load_package(p, dirs[i], err);
        free(dirs[i]);
    }
    free(dirs);
out:
    free(install);
    pv_free(doc);
    free(file);
    return rc;
}

/* ---- property files ---- */

/* what a generic test is attached to: one model, seed or source table */
typedef struct {
    long model, seed, source;
    const char *name; /* its name, for the test's name */
} test_target;

/* the keys of a generic test's arguments that are configs, as dbt moves them */
static bool is_test_config_key(const char *k)
{
    static const char *const keys[] = {
        "severity", "tags",     "enabled",   "where",          "limit",
        "warn_if",  "error_if", "fail_calc", "store_failures", "store_failures_as",
        "meta",     "database", "schema",    "alias"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(k, keys[i]) == 0)
            return true;
    return false;
}

/* appends to name (of size n) the characters of s, others as '_' (dbt's names) */
static void name_append(char *name, size_t n, const char *s)
{
    size_t l = strlen(name);
    for (; *s && l + 1 < n; s++)
        name[l++] = (isalnum((unsigned char)*s) || *s == '_') ? *s : '_';
    name[l] = '\0';
}

static bool test_name_taken(const pl_project *p, const char *name)
{
    for (size_t i = 0; i + 1 < p->ntests; i++)
        if (p->tests[i].name && strcmp(p->tests[i].name, name) == 0)
            return true;
    return false;
}

/*
 * One entry of a `tests:` (or `data_tests:`) list: "not_null", or
 * {kind: {arg: value, config: {...}}}, or dbt's long form {test_name: kind,
 * arg: value}.  The kind may name its package: dbt_utils.equality.
 */
static void add_generic_test(pl_project *p, size_t pkg, const test_target *tg, const char *column,
                             const pv *def, const char *file)
{
    const char *kind;
    const pv *args = NULL;
    pl_test *t;
    char name[512] = "";
    const char *dot;
    size_t ntest;

    if (pv_s(def)) {
        kind = def->s;
    } else if (def->type == PV_MAP && pv_gets(def, "test_name")) {
        kind = pv_gets(def, "test_name");
        args = def;
    } else if (def->type == PV_MAP && def->n == 1) {
        kind = def->keys[0];
        args = def->items[0];
    } else {
        return;
    }
    XGROW(p->tests, p->ntests);
    t = &p->tests[p->ntests++];
    memset(t, 0, sizeof(*t));
    dot = strchr(kind, '.');
    t->ns = dot ? xstrndup(kind, (size_t)(dot - kind)) : NULL;
    t->kind = xstrdup(dot ? dot + 1 : kind);
    t->model = tg->model;
    t->seed = tg->seed;
    t->source = tg->source;
    t->package = pkg;
    t->column = column ? xstrdup(column) : NULL;
    t->args = pv_new(PV_MAP);
    t->config = pv_new(PV_MAP);
    for (size_t i = 0; args && args->type == PV_MAP && i < args->n; i++) {
        const char *k = args->keys[i];
        if (strcmp(k, "config") == 0)
            project_config_merge(t->config, args->items[i]);
        else if (is_test_config_key(k))
            pv_set(t->config, k, pv_copy(args->items[i]));
        else if (strcmp(k, "test_name") != 0 && strcmp(k, "name") != 0)
            pv_set(t->args, k, pv_copy(args->items[i]));
    }
    /* dbt's name: package_kind_target_column_argument values */
    if (t->ns) {
        name_append(name, sizeof(name), t->ns);
        name_append(name, sizeof(name), "_");
    }
    name_append(name, sizeof(name), t->kind);
    name_append(name, sizeof(name), "_");
    name_append(name, sizeof(name), tg->name);
    if (column) {
        name_append(name, sizeof(name), "_");
        name_append(name, sizeof(name), column);
    }
    if (args && pv_s(pv_get(args, "name"))) /* a test's own name wins */
        snprintf(name, sizeof(name), "%s", pv_gets(args, "name"));
    /* the same test twice on one target: _2, _3, ... */
    {
        size_t l = strlen(name);
        for (ntest = 2; test_name_taken(p, name); ntest++)
            snprintf(name + l, sizeof(name) - l, "_%zu", ntest);
    }
    t->name = xstrdup(name);
    t->file = xstrdup(file);
    t->line = def->line;
}

static void add_tests(pl_project *p, size_t pkg, const test_target *tg, const char *column,
                      const pv *holder, const char *file)
{
    const char *keys[] = {"tests", "data_tests"};
    for (size_t k = 0; k < 2; k++) {
        const pv *l = pv_get(holder, keys[k]);
        if (l && l->type == PV_LIST)
            for (size_t i = 0; i < l->n; i++)
                add_generic_test(p, pkg, tg, column, l->items[i], file);
    }
}

/* the tests of an entry (a model, seed or source table) and of its columns */
static void add_entry_tests(pl_project *p, size_t pkg, const test_target *tg, const pv *entry,
                            const char *file)
{
    const pv *cols = pv_get(entry, "columns");
    for (size_t k = 0; cols && cols->type == PV_LIST && k < cols->n; k++)
        add_tests(p, pkg, tg, pv_gets(cols->items[k], "name"), cols->items[k], file);
    add_tests(p, pkg, tg, NULL, entry, file);
}

/* index of the seed named name in package pkg, or -1 */
static long find_seed(const pl_project *p, size_t pkg, const char *name)
{
    for (size_t i = 0; i < p->nseeds; i++)
        if (p->seeds[i].package == pkg && strcmp(p->seeds[i].name, name) == 0)
            return (long)i;
    return -1;
}

/*
 * A property file's `seeds:`: config (merged over the folder configs),
 * columns and tests.  A seed that is described but does not exist is a
 * warning, as in dbt.
 */
static cs_result load_seed_props(pl_project *p, size_t pkg, const char *file, const pv *l,
                                 cs_error *err)
{
    for (size_t i = 0; l && l->type == PV_LIST && i < l->n; i++) {
        const pv *sd = l->items[i];
        const char *sname = pv_gets(sd, "name");
        long si = sname ? find_seed(p, pkg, sname) : -1;
        pl_seed *s;
        if (!sname)
            return cs_fail(err, CS_INVALID, "%s:%d: a seed entry needs a \"name\"", file, sd->line);
        if (si < 0) {
            log_warn("pipeline",
                     "%s:%d: seed \"%s\" is described but has no .csv file (or is "
                     "disabled)",
                     file, sd->line, sname);
            continue;
        }
        s = &p->seeds[si];
        if (s->props_file)
            return cs_fail(err, CS_INVALID, "%s:%d: seed \"%s\" is already described in %s", file,
                           sd->line, sname, s->props_file);
        s->props_file = xstrdup(file);
        project_config_merge(s->config, pv_get(sd, "config"));
        if (pv_get(sd, "columns") && pv_get(sd, "columns")->type == PV_LIST)
            s->columns = pv_copy(pv_get(sd, "columns"));
        test_target tg = {-1, si, -1, sname};
        add_entry_tests(p, pkg, &tg, sd, file);
    }
    return CS_OK;
}

static cs_result load_props(pl_project *p, size_t pkg, const char *file, cs_error *err)
{
    pv *doc = NULL, *l;
    cs_result rc;

    stamp_add(p, file);
    if ((rc = pv_load_yaml_file(file, &doc, err)) != CS_OK)
        return rc;
    l = pv_get(doc, "sources");
    for (size_t i = 0; l && l->type == PV_LIST && i < l->n; i++) {
        const pv *s = l->items[i], *tables = pv_get(s, "tables");
        const char *sname = pv_gets(s, "name");
        if (!sname) {
            rc = cs_fail(err, CS_INVALID, "%s:%d: a source needs a \"name\"", file, s->line);
            goto out;
        }
        for (size_t k = 0; tables && tables->type == PV_LIST && k < tables->n; k++) {
            const pv *t = tables->items[k];
            const char *tname = pv_gets(t, "name");
            pl_source *src;
            if (!tname) {
                rc = cs_fail(err, CS_INVALID, "%s:%d: a source table needs a \"name\"", file,
                             t->line);
                goto out;
            }
            XGROW(p->sources, p->nsources);
            src = &p->sources[p->nsources++];
            src->source_name = xstrdup(sname);
            src->table_name = xstrdup(tname);
            src->schema = xstrdup(pv_gets(s, "schema") ? pv_gets(s, "schema") : sname);
            src->identifier = xstrdup(pv_gets(t, "identifier") ? pv_gets(t, "identifier") : tname);
            src->file = xstrdup(file);
            src->line = t->line;
            char tname_full[512];
            snprintf(tname_full, sizeof(tname_full), "source_%s_%s", sname, tname);
            test_target tg = {-1, -1, (long)p->nsources - 1, tname_full};
            add_entry_tests(p, pkg, &tg, t, file);
        }
    }
    l = pv_get(doc, "models");
    for (size_t i = 0; l && l->type == PV_LIST && i < l->n; i++) {
        const pv *md = l->items[i], *cols;
        const char *mname = pv_gets(md, "name");
        long mi = mname ? project_find_model(p, p->packages[pkg].name, mname) : -1;
        pl_model *m;
        if (!mname) {
            rc = cs_fail(err, CS_INVALID, "%s:%d: a model entry needs a \"name\"", file, md->line);
            goto out;
        }
        if (mi < 0) { /* dbt warns and goes on */
            log_warn("pipeline", "%s:%d: model \"%s\" is described but has no .sql file", file,
                     md->line, mname);
            continue;
        }
        m = &p->models[mi];
        if (m->props_file) {
            rc = cs_fail(err, CS_INVALID, "%s:%d: model \"%s\" is already described in %s", file,
                         md->line, mname, m->props_file);
            goto out;
        }
        m->props_file = xstrdup(file);
        /* property-file configs are applied after the folder configs, in
         * resolve_configs; keep them aside under a private key */
        if (pv_get(md, "config"))
            pv_set(m->config, "\x01props", pv_copy(pv_get(md, "config")));
        cols = pv_get(md, "columns");
        if (cols && cols->type == PV_LIST)
            m->columns = pv_copy(cols);
        if (pv_get(md, "constraints"))
            m->constraints = pv_copy(pv_get(md, "constraints"));
        test_target tg = {mi, -1, -1, mname};
        add_entry_tests(p, pkg, &tg, md, file);
    }
    rc = load_seed_props(p, pkg, file, pv_get(doc, "seeds"), err);
out:
    pv_free(doc);
    return rc;
}

static cs_result load_selectors(pl_project *p, cs_error *err)
{
    char *file;
    pv *doc, *l;
    cs_result rc = load_optional_yaml(p, "selectors.yml", &file, &doc, err);

    if (rc != CS_OK || !doc)
        goto out;
    l = pv_get(doc, "selectors");
    for (size_t i = 0; l && l->type == PV_LIST && i < l->n; i++) {
        const char *name = pv_gets(l->items[i], "name");
        const pv *def = pv_get(l->items[i], "definition");
        if (!name || !def) {
            rc = cs_fail(err, CS_INVALID, "%s:%d: a selector needs \"name\" and \"definition\"",
                         file, l->items[i]->line);
            goto out;
        }
        pv_set(p->selectors, name, pv_copy(def));
    }
out:
    pv_free(doc);
    free(file);
    return rc;
}

static void resolve_configs(pl_project *p)
{
    for (size_t i = 0; i < p->nmodels; i++) {
        pl_model *m = &p->models[i];
        const pl_package *own = &p->packages[m->package];
        pv *props = pv_get(m->config, "\x01props");
        pv *cfg = pv_new(PV_MAP);
        const char *mpath = "";

        for (size_t k = 0; k < own->n_model_paths; k++) {
            size_t l = strlen(own->model_paths[k]);
            if (strncmp(m->relpath, own->model_paths[k], l) == 0 && m->relpath[l] == '/')
                mpath = own->model_paths[k];
        }
        merge_folder_configs(cfg, pv_get(own->models_cfg, own->name), m, mpath);
        if (m->package != 0)
            merge_folder_configs(cfg, pv_get(p->packages[0].models_cfg, own->name), m, mpath);
        project_config_merge(cfg, props);
        pv_free(m->config);
        m->config = cfg;
    }
}

/*
 * dbt_project.yml's `data_tests:` (or `tests:`) configs under each test's
 * own: the top level and the package's entry, the package's own file
 * first, then the root project's; the test's yml config wins.  (Folder
 * levels below the package are not walked.)
 */
static void resolve_test_configs(pl_project *p)
{
    for (size_t i = 0; i < p->ntests; i++) {
        pl_test *t = &p->tests[i];
        const pl_package *own = &p->packages[t->package];
        pv *cfg = pv_new(PV_MAP);
        merge_level(cfg, own->tests_cfg);
        merge_level(cfg, pv_get(own->tests_cfg, own->name));
        if (t->package != 0) {
            merge_level(cfg, p->packages[0].tests_cfg);
            merge_level(cfg, pv_get(p->packages[0].tests_cfg, own->name));
        }
        project_config_merge(cfg, t->config);
        pv_free(t->config);
        t->config = cfg;
    }
}

cs_result project_load(const char *dir, pl_project **out, cs_error *err)
{
    return project_load_with_base(dir, NULL, out, err);
}

/* true when a package named name is loaded */
static bool has_package(const pl_project *p, const char *name)
{
    for (size_t i = 0; i < p->npackages; i++)
        if (strcmp(p->packages[i].name, name) == 0)
            return true;
    return false;
}

cs_result project_load_with_base(const char *dir, const char *base_dir, pl_project **out,
                                 cs_error *err)
{
    pl_project *p = xrealloc(NULL, sizeof(*p));
    yml_list yl = {0};
    cs_result rc;

    memset(p, 0, sizeof(*p));
    p->selectors = pv_new(PV_MAP);
    *out = NULL;
    if ((rc = load_package(p, dir, err)) != CS_OK ||
        (rc = load_packages_yml(p, base_dir, err)) != CS_OK)
        goto fail;
    if (base_dir && !has_package(p, PROJECT_BASE_PACKAGE) &&
        (rc = load_package(p, base_dir, err)) != CS_OK) {
        cs_error_prefix(err, "the base models: ");
        goto fail;
    }
    /* packages first so that the root project's definitions come last */
    for (size_t pass = 0; pass < 2; pass++) {
        for (size_t pk = 0; pk < p->npackages; pk++) {
            const pl_package *P = &p->packages[pk];
            if ((pk == 0) != (pass == 1))
                continue;
            for (size_t k = 0; k < P->n_model_paths && rc == CS_OK; k++)
                rc = walk(p, pk, P->model_paths[k], on_model_file, &yl, err);
            for (size_t k = 0; k < P->n_macro_paths && rc == CS_OK; k++)
                rc = walk(p, pk, P->macro_paths[k], on_macro_file, NULL, err);
            for (size_t k = 0; k < P->n_test_paths && rc == CS_OK; k++)
                rc = walk(p, pk, P->test_paths[k], on_test_file, NULL, err);
            if (rc != CS_OK)
                goto fail;
        }
    }
    /* seeds first: property files describe them too */
    if ((rc = seed_find(p, err)) != CS_OK)
        goto fail;
    for (size_t pk = 0; pk < p->npackages && rc == CS_OK; pk++)
        for (size_t k = 0; k < p->packages[pk].n_seed_paths && rc == CS_OK; k++)
            rc = walk(p, pk, p->packages[pk].seed_paths[k], on_seed_path_file, &yl, err);
    if (rc != CS_OK)
        goto fail;
    for (size_t i = 0; i < yl.n && rc == CS_OK; i++)
        rc = load_props(p, yl.pkgs[i], yl.files[i], err);
    if (rc != CS_OK || (rc = load_selectors(p, err)) != CS_OK)
        goto fail;
    resolve_configs(p);
    resolve_test_configs(p);
    *out = p;
    goto done;
fail:
    project_free(p);
done:
    for (size_t i = 0; i < yl.n; i++)
        free(yl.files[i]);
    free(yl.files);
    free(yl.pkgs);
    return rc;
}

void project_free(pl_project *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nseeds; i++) {
        free(p->seeds[i].name);
        free(p->seeds[i].file);
        free(p->seeds[i].relpath);
        free(p->seeds[i].props_file);
        pv_free(p->seeds[i].config);
        pv_free(p->seeds[i].columns);
    }
    free(p->seeds);
    for (size_t i = 0; i < p->npackages; i++) {
        pl_package *k = &p->packages[i];
        free(k->name);
        free(k->root);
        free(k->file);
        for (size_t j = 0; j < k->n_model_paths; j++)
            free(k->model_paths[j]);
        for (size_t j = 0; j < k->n_macro_paths; j++)
            free(k->macro_paths[j]);
        for (size_t j = 0; j < k->n_test_paths; j++)
            free(k->test_paths[j]);
        for (size_t j = 0; j < k->n_seed_paths; j++)
            free(k->seed_paths[j]);
        free(k->seed_paths);
        free(k->model_paths);
        free(k->macro_paths);
        free(k->test_paths);
        pv_free(k->vars);
        pv_free(k->models_cfg);
        pv_free(k->tests_cfg);
        pv_free(k->dispatch);
        pv_free(k->on_run_start);
        pv_free(k->on_run_end);
        for (size_t j = 0; j < k->nignore; j++)
            free(k->ignore[j]);
        free(k->ignore);
    }
    for (size_t i = 0; i < p->nmodels; i++) {
        pl_model *m = &p->models[i];
        free(m->name);
        free(m->relpath);
        free(m->source_refs);
        free(m->file);
        free(m->sql);
        free(m->props_file);
        pv_free(m->config);
        pv_free(m->columns);
        pv_free(m->constraints);
    }
    for (size_t i = 0; i < p->nsources; i++) {
        free(p->sources[i].source_name);
        free(p->sources[i].table_name);
        free(p->sources[i].schema);
        free(p->sources[i].identifier);
        free(p->sources[i].file);
    }
    for (size_t i = 0; i < p->ntests; i++) {
        free(p->tests[i].name);
        free(p->tests[i].kind);
        free(p->tests[i].ns);
        free(p->tests[i].column);
        pv_free(p->tests[i].config);
        free(p->tests[i].file);
        free(p->tests[i].sql);
        pv_free(p->tests[i].args);
    }
    for (size_t i = 0; i < p->nmacros; i++) {
        free(p->macros[i].file);
        free(p->macros[i].text);
    }
    for (size_t i = 0; i < p->nstamps; i++)
        free(p->stamps[i].path);
    free(p->packages);
    free(p->models);
    free(p->mslots);
    free(p->mnext);
    free(p->sources);
    free(p->tests);
    free(p->macros);
    free(p->stamps);
    pv_free(p->selectors);
    free(p);
}

static size_t name_slot(const char *name, size_t nslots)
{
    unsigned long long h = 1469598103934665603ULL;
    for (const char *c = name; *c; c++) {
        h ^= (unsigned char)*c;
        h *= 1099511628211ULL;
    }
    return (size_t)(h & (nslots - 1));
}

/* the slot of name in the model index: its chain's head, or an empty slot */
static size_t model_slot(const pl_project *p, const char *name)
{
    size_t s = name_slot(name, p->nmslots);
    while (p->mslots[s] >= 0 && strcmp(p->models[p->mslots[s]].name, name) != 0)
        s = (s + 1) & (p->nmslots - 1);
    return s;
}

/* adds model i (the last one loaded) to the index, growing it first */
static void model_index_add(pl_project *p, size_t i)
{
    p->mnext = xrealloc(p->mnext, (i + 1) * sizeof(long));
    if ((i + 1) * 2 > p->nmslots) {
        free(p->mslots);
        p->nmslots = p->nmslots ? p->nmslots * 2 : 64;
        p->mslots = xrealloc(NULL, p->nmslots * sizeof(long));
        for (size_t k = 0; k < p->nmslots; k++)
            p->mslots[k] = -1;
        for (size_t k = 0; k < i; k++) {
            size_t s = model_slot(p, p->models[k].name);
            p->mnext[k] = p->mslots[s];
            p->mslots[s] = (long)k;
        }
    }
    size_t s = model_slot(p, p->models[i].name);
    p->mnext[i] = p->mslots[s];
    p->mslots[s] = (long)i;
}

long project_find_model(const pl_project *p, const char *pkg, const char *name)
{
    long found = -1;

    if (p->nmslots == 0)
        return -1;
    /* the chain runs from the newest model of that name to the oldest */
    for (long i = p->mslots[model_slot(p, name)]; i >= 0; i = p->mnext[i]) {
        if (pkg && strcmp(p->packages[p->models[i].package].name, pkg) != 0)
            continue;
        /* the root project's model wins, then the first loaded */
        bool root = p->models[i].package == 0;
        if (found < 0 || (root != (p->models[found].package == 0) ? root : i < found))
            found = i;
    }
    return found;
}

long project_find_source(const pl_project *p, const char *source, const char *table)
{
    for (size_t i = 0; i < p->nsources; i++)
        if (strcmp(p->sources[i].source_name, source) == 0 &&
            strcmp(p->sources[i].table_name, table) == 0)
            return (long)i;
    return -1;
}
