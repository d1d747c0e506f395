/*
 * deps.c - installing a project's packages (`cht-sync pipeline deps`) and
 * checking at load that they are installed.  See deps.h for the contract
 * and docs/pipeline.md ("Packages") for the hub rule and the lock file.
 */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
#include "pipeline/deps.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/xalloc.h"

#define DEPS_MAX_PACKAGES 256      /* a bound on a runaway transitive set */
#define DEPS_GIT_OUT_MAX (1 << 20) /* git's output kept for messages and tags */

/* ---- versions ---- */

bool deps_version_parse(const char *s, deps_version *out)
{
    char *end;
    long part[3] = {0, 0, 0};
    int n = 0;

    memset(out, 0, sizeof(*out));
    if (*s == 'v' || *s == 'V')
        s++;
    while (n < 3) {
        if (*s < '0' || *s > '9')
            return false;
        errno = 0;
        part[n++] = strtol(s, &end, 10);
        if (errno)
            return false;
        s = end;
        if (*s != '.')
            break;
        s++;
    }
    if (n < 2)
        return false;
    if (*s == '-') {
        size_t len = strcspn(s + 1, "+");
        if (len == 0 || len >= sizeof(out->pre))
            return false;
        memcpy(out->pre, s + 1, len);
        s += 1 + len;
    }
    if (*s == '+')
        s += strlen(s);
    if (*s)
        return false;
    out->major = part[0];
    out->minor = part[1];
    out->patch = part[2];
    return true;
}

int deps_version_cmp(const deps_version *a, const deps_version *b)
{
    if (a->major != b->major)
        return a->major < b->major ? -1 : 1;
    if (a->minor != b->minor)
        return a->minor < b->minor ? -1 : 1;
    if (a->patch != b->patch)
        return a->patch < b->patch ? -1 : 1;
    /* a release sorts after its pre-releases */
    if (!a->pre[0] || !b->pre[0])
        return !a->pre[0] - !b->pre[0];
    return strcmp(a->pre, b->pre);
}

bool deps_range_match(const deps_version *v, const char *range)
{
    deps_version r;
    const char *op = range;
    size_t oplen = strspn(range, "<>=!");
    char ops[3] = {0};
    int c;

    if (oplen > 2)
        return false;
    memcpy(ops, op, oplen);
    range += oplen;
    while (*range == ' ')
        range++;
    if (!deps_version_parse(range, &r))
        return false;
    c = deps_version_cmp(v, &r);
    if (!ops[0] || strcmp(ops, "=") == 0 || strcmp(ops, "==") == 0)
        return c == 0;
    if (strcmp(ops, ">=") == 0)
        return c >= 0;
    if (strcmp(ops, "<=") == 0)
        return c <= 0;
    if (strcmp(ops, ">") == 0)
        return c > 0;
    if (strcmp(ops, "<") == 0)
        return c < 0;
    if (strcmp(ops, "!=") == 0)
        return c != 0;
    return false;
}

long deps_pick_tag(char *const *tags, size_t n, char *const *ranges, size_t nr, bool allow_pre)
{
    long best = -1;
    deps_version bv, v;

    for (size_t i = 0; i < n; i++) {
        bool ok;
        if (!deps_version_parse(tags[i], &v) || (v.pre[0] && !allow_pre))
            continue;
        ok = true;
        for (size_t k = 0; k < nr && ok; k++)
            ok = deps_range_match(&v, ranges[k]);
        if (ok && (best < 0 || deps_version_cmp(&v, &bv) > 0)) {
            best = (long)i;
            bv = v;
        }
    }
    return best;
}

static void put_replaced(buf *b, const char *s, char from, char to)
{
    for (; *s; s++)
        buf_putc(b, *s == from ? to : *s);
}

char *deps_hub_url(const char *tmpl, const char *org, const char *name)
{
    buf b;

    if (!tmpl || !*tmpl)
        tmpl = "https://github.com/{org}/{repo}.git";
    buf_init(&b, 8192);
    for (const char *s = tmpl; *s; s++) {
        if (strncmp(s, "{org}", 5) == 0) {
            buf_puts(&b, org);
            s += 4;
        } else if (strncmp(s, "{name}", 6) == 0) {
            buf_puts(&b, name);
            s += 5;
        } else if (strncmp(s, "{repo}", 6) == 0) {
            put_replaced(&b, name, '_', '-');
            s += 5;
        } else {
            buf_putc(&b, *s);
        }
    }
    return buf_steal(&b);
}

/* ---- files ---- */

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = xmalloc(la + lb + 2);
    memcpy(s, a, la);
    s[la] = '/';
    memcpy(s + la + 1, b, lb + 1);
    return s;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* removes path and, when it is a real folder (not a symlink), what it holds */
static bool rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0;
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0;
}

static bool mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    if (strlen(path) >= sizeof(tmp))
        return false;
    strcpy(tmp, path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
            return false;
        *p = '/';
    }
    return mkdir(tmp, 0777) == 0 || errno == EEXIST;
}

/* the project name of the dbt project in dir, or NULL (caller frees) */
static char *project_name(const char *dir, cs_error *err)
{
    char *file = join(dir, "dbt_project.yml"), *name = NULL;
    pv *doc = NULL;

    if (pv_load_yaml_file(file, &doc, err) != CS_OK) {
        cs_fail(err, CS_INVALID, "no dbt_project.yml in \"%s\" (is it a dbt project?)", dir);
    } else if (!pv_gets(doc, "name") || !*pv_gets(doc, "name")) {
        cs_fail(err, CS_INVALID, "%s: \"name\" is missing", file);
    } else {
        name = xstrdup(pv_gets(doc, "name"));
    }
    pv_free(doc);
    free(file);
    return name;
}

char *deps_install_dir(const char *root)
{
    char *file = join(root, "dbt_project.yml"), *out;
    pv *doc = NULL;
    cs_error err;
    const char *p = NULL;

    if (pv_load_yaml_file(file, &doc, &err) == CS_OK)
        p = pv_gets(doc, "packages-install-path");
    if (!p || !*p)
        p = "dbt_packages";
    out = p[0] == '/' ? xstrdup(p) : join(root, p);
    pv_free(doc);
    free(file);
    return out;
}

/*
 * The `packages` list of dir's packages.yml, else its dependencies.yml
 * (dbt reads either).  *doc is NULL when neither exists; *file names the one
 * read (caller frees both).
 */
static cs_result read_spec(const char *dir, char **file, pv **doc, cs_error *err)
{
    *doc = NULL;
    *file = join(dir, "packages.yml");
    if (!exists(*file)) {
        free(*file);
        *file = join(dir, "dependencies.yml");
        if (!exists(*file))
            return CS_OK;
    }
    return pv_load_yaml_file(*file, doc, err);
}

static const pv *spec_list(const pv *doc)
{
    const pv *l = pv_get(doc, "packages");
    return l && l->type == PV_LIST ? l : NULL;
}

/* ---- git ---- */

/* replaces the user:password of every "scheme://user:pw@host" in s by *** */
static void redact(char *s)
{
    for (char *p = strstr(s, "://"); p; p = strstr(p, "://")) {
        char *start = p + 3, *end = start + strcspn(start, "@/ \t\n'\"");
        if (*end == '@' && end > start) {
            memmove(start + 3, end, strlen(end) + 1);
            memcpy(start, "***", 3);
        }
        p = start;
    }
}

/*
 * Runs git with argv (argv[0] "git") in env; its stdout and stderr go to out
 * (bounded: the rest is read and dropped).  False when it could not start
 * or exited non-zero; err then holds its last output line, redacted.
 */
static bool run_git(char *const *env, char *const *argv, buf *out, cs_error *err)
{
    int fds[2], status = 0;
    pid_t pid;
    posix_spawn_file_actions_t fa;
    char chunk[4096];
    ssize_t n;
    bool ok = false;

    buf_reset(out);
    if (pipe(fds) != 0) {
        cs_fail(err, CS_TRANSIENT, "could not create a pipe: %s", strerror(errno));
        return false;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    int e = posix_spawnp(&pid, "git", &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (e != 0) {
        close(fds[0]);
        cs_fail(err, CS_PERMANENT,
                "could not run git: %s (install it: scripts/install-deps, or apt-get install git)",
                strerror(e));
        return false;
    }
    while ((n = read(fds[0], chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        if (out->len + (size_t)n <= DEPS_GIT_OUT_MAX)
            buf_append(out, chunk, (size_t)n);
    }
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok) {
        char *msg = xstrdup(out->data);
        size_t len = strlen(msg);
        while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
            msg[--len] = '\0';
        char *last = strrchr(msg, '\n');
        redact(msg);
        cs_fail(err, CS_PERMANENT, "git %s failed: %s", argv[1], last ? last + 1 : msg);
        free(msg);
    }
    return ok;
}

/* ---- the package set ---- */

typedef enum { DEP_LOCAL, DEP_GIT, DEP_HUB } dep_kind;

typedef struct {
    dep_kind kind;
    char *src;      /* local: absolute path; git: URL; hub: org/name */
    char *revision; /* git: as asked (NULL: default branch); hub: the version picked */
    char *subdir;   /* git: subdirectory or NULL */
    char **ranges;  /* hub */
    size_t nranges;
    char *name;   /* project name, once installed */
    char *commit; /* git and hub: the commit installed */
    char *where;  /* "file:line" of its declaration */
} dep;

typedef struct {
    char *root;
    char *install;
    char *const *env;
    dep *deps;
    size_t n;
    unsigned tmp_seq;
    buf out; /* git's output */
} deps_run;

static void dep_free(dep *d)
{
    free(d->src);
    free(d->revision);
    free(d->subdir);
    for (size_t i = 0; i < d->nranges; i++)
        free(d->ranges[i]);
    free(d->ranges);
    free(d->name);
    free(d->commit);
    free(d->where);
}

/* a scalar as text ("1.1.1", 1, 1.5); NULL for lists, maps and null */
static char *scalar(const pv *v)
{
    char tmp[64];
    if (!v)
        return NULL;
    switch (v->type) {
    case PV_STR:
        return xstrdup(v->s);
    case PV_INT:
        snprintf(tmp, sizeof(tmp), "%lld", v->i);
        return xstrdup(tmp);
    case PV_FLOAT:
        snprintf(tmp, sizeof(tmp), "%g", v->f);
        return xstrdup(tmp);
    default:
        return NULL;
    }
}

/*
 * Reads one entry of a `packages:` list declared in file (a project at
 * base) into d.  False (err set) for an entry of no known kind.
 */
static bool dep_read(const pv *e, const char *file, const char *base, dep *d, cs_error *err)
{
    char where[PATH_MAX + 32];
    const char *s;

    memset(d, 0, sizeof(*d));
    snprintf(where, sizeof(where), "%s:%d", file, e ? e->line : 0);
    if ((s = pv_gets(e, "local"))) {
        d->kind = DEP_LOCAL;
        char *p = s[0] == '/' ? xstrdup(s) : join(base, s), real[PATH_MAX];
        d->src = realpath(p, real) ? xstrdup(real) : xstrdup(p);
        free(p);
    } else if ((s = pv_gets(e, "git"))) {
        d->kind = DEP_GIT;
        d->src = xstrdup(s);
        d->revision = scalar(pv_get(e, "revision"));
        d->subdir = scalar(pv_get(e, "subdirectory"));
    } else if ((s = pv_gets(e, "package"))) {
        const pv *v = pv_get(e, "version");
        d->kind = DEP_HUB;
        d->src = xstrdup(s);
        if (!strchr(s, '/')) {
            cs_fail(err, CS_INVALID, "%s: package \"%s\" must be written org/name", where, s);
            goto fail;
        }
        if (v && v->type == PV_LIST) {
            for (size_t i = 0; i < v->n; i++) {
                char *r = scalar(v->items[i]);
                if (!r)
                    continue;
                XGROW(d->ranges, d->nranges);
                d->ranges[d->nranges++] = r;
            }
        } else if (v) {
            char *r = scalar(v);
            if (r) {
                XGROW(d->ranges, d->nranges);
                d->ranges[d->nranges++] = r;
            }
        }
        if (!d->nranges) {
            cs_fail(err, CS_INVALID, "%s: package \"%s\" needs a version", where, d->src);
            goto fail;
        }
    } else {
        cs_fail(err, CS_INVALID,
                "%s: a package entry needs \"local:\", \"git:\" or \"package:\" (tarball and "
                "private packages are not supported)",
                where);
        goto fail;
    }
    d->where = xstrdup(where);
    return true;
fail:
    dep_free(d);
    memset(d, 0, sizeof(*d));
    return false;
}

static const char *kind_key(dep_kind k)
{
    return k == DEP_LOCAL ? "local" : k == DEP_GIT ? "git" : "package";
}

/* the tags of url as a new array (caller frees each and the array) */
static bool list_tags(deps_run *r, const char *url, char ***tags, size_t *n, cs_error *err)
{
    char *argv[] = {"git", "ls-remote", "--tags", "--refs", (char *)url, NULL};
    *tags = NULL;
    *n = 0;
    if (!run_git(r->env, argv, &r->out, err))
        return false;
    for (char *line = r->out.data; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *t = strstr(line, "refs/tags/");
        if (t) {
            XGROW(*tags, *n);
            (*tags)[(*n)++] = xstrdup(t + 10);
        }
        line = nl ? nl + 1 : NULL;
    }
    return true;
}

/*
 * Clones url at rev (NULL: the default branch) into a new temporary folder
 * under the install path; *dir gets it (caller removes and frees).
 */
static bool clone_at(deps_run *r, const char *url, const char *rev, char **dir, char **commit,
                     cs_error *err)
{
    char name[64];
    snprintf(name, sizeof(name), ".cs-deps-%ld-%u", (long)getpid(), r->tmp_seq++);
    *dir = join(r->install, name);
    *commit = NULL;
    rm_rf(*dir);
    char *clone[] = {"git", "clone", "--quiet", (char *)url, *dir, NULL};
    char *checkout[] = {"git", "-C", *dir, "checkout", "--quiet", (char *)rev, "--", NULL};
    char *head[] = {"git", "-C", *dir, "rev-parse", "HEAD", NULL};
    if (!run_git(r->env, clone, &r->out, err))
        return false;
    if (rev && !run_git(r->env, checkout, &r->out, err))
        return false;
    if (!run_git(r->env, head, &r->out, err))
        return false;
    *commit = xstrdup(r->out.data);
    (*commit)[strcspn(*commit, "\r\n")] = '\0';
    return true;
}

/* moves the package at from (or symlinks it, for a local one) to install/name */
static bool place(deps_run *r, const char *from, const char *name, bool link, cs_error *err)
{
    char *dest = join(r->install, name), real_a[PATH_MAX], real_b[PATH_MAX];
    bool ok = false;

    if (link && realpath(dest, real_a) && realpath(from, real_b) && strcmp(real_a, real_b) == 0) {
        ok = true; /* already there (a local package inside the install path) */
        goto out;
    }
    if (!rm_rf(dest)) {
        cs_fail(err, CS_PERMANENT, "could not remove \"%s\": %s", dest, strerror(errno));
        goto out;
    }
    if (link ? symlink(from, dest) != 0 : rename(from, dest) != 0) {
        cs_fail(err, CS_PERMANENT, "could not install \"%s\": %s", dest, strerror(errno));
        goto out;
    }
    ok = true;
out:
    free(dest);
    return ok;
}

/*
 * Installs d; sets d->name (and for git/hub d->commit, for hub
 * d->revision, the version picked).  *pkgdir gets the installed folder.
 */
static bool install(deps_run *r, dep *d, char **pkgdir, cs_error *err)
{
    char *tmp = NULL, *url = NULL, *from = NULL, **tags = NULL;
    size_t ntags = 0;
    const char *rev = d->revision;
    bool ok = false;

    *pkgdir = NULL;
    if (d->kind == DEP_LOCAL) {
        if (!(d->name = project_name(d->src, err)) || !place(r, d->src, d->name, true, err))
            goto out;
        ok = true;
        goto out;
    }
    if (d->kind == DEP_HUB) {
        const char *slash = strchr(d->src, '/');
        char *org = xmalloc((size_t)(slash - d->src) + 1);
        memcpy(org, d->src, (size_t)(slash - d->src));
        org[slash - d->src] = '\0';
        const char *tmpl = NULL;
        size_t tl = strlen("DBT_HUB_URL_TEMPLATE=");
        for (char *const *e = r->env; e && *e; e++)
            if (strncmp(*e, "DBT_HUB_URL_TEMPLATE=", tl) == 0)
                tmpl = *e + tl;
        url = deps_hub_url(tmpl, org, slash + 1);
        free(org);
        if (!list_tags(r, url, &tags, &ntags, err))
            goto out;
        long k = deps_pick_tag(tags, ntags, d->ranges, d->nranges, false);
        if (k < 0) {
            buf b;
            buf_init(&b, 4096);
            for (size_t i = 0; i < d->nranges; i++)
                buf_printf(&b, "%s\"%s\"", i ? ", " : "", d->ranges[i]);
            cs_fail(err, CS_INVALID, "no version of %s satisfies [%s] (%zu tags in the repository)",
                    d->src, b.data, ntags);
            buf_free(&b);
            goto out;
        }
        free(d->revision);
        d->revision = xstrdup(tags[k]);
        rev = tags[k];
    }
    if (!clone_at(r, url ? url : d->src, rev, &tmp, &d->commit, err))
        goto out;
    from = d->subdir ? join(tmp, d->subdir) : xstrdup(tmp);
    if (!(d->name = project_name(from, err)) || !place(r, from, d->name, false, err))
        goto out;
    ok = true;
out:
    if (ok)
        *pkgdir = join(r->install, d->name);
    if (tmp)
        rm_rf(tmp);
    if (!ok && err->msg[0] && url) {
        char *u = xstrdup(url);
        redact(u);
        cs_error_prefix(err, "%s (%s): ", d->src, u);
        free(u);
    } else if (!ok) {
        char *u = xstrdup(d->src);
        redact(u);
        cs_error_prefix(err, "%s: ", u);
        free(u);
    }
    for (size_t i = 0; i < ntags; i++)
        free(tags[i]);
    free(tags);
    free(tmp);
    free(from);
    free(url);
    return ok;
}

/* the entry of the same source already in the set, or NULL */
static dep *find_same(deps_run *r, const dep *d)
{
    for (size_t i = 0; i < r->n; i++) {
        dep *o = &r->deps[i];
        if (o->kind != d->kind || strcmp(o->src, d->src) != 0)
            continue;
        if (d->kind == DEP_GIT &&
            (!o->subdir != !d->subdir || (d->subdir && strcmp(o->subdir, d->subdir) != 0)))
            continue;
        return o;
    }
    return NULL;
}

/* appends the entries of the spec list (declared in file, project at base) */
static bool add_list(deps_run *r, const pv *list, const char *file, const char *base, cs_error *err)
{
    for (size_t i = 0; list && i < list->n; i++) {
        dep d;
        if (!dep_read(list->items[i], file, base, &d, err))
            return false;
        dep *o = find_same(r, &d);
        if (o && d.kind == DEP_HUB) {
            /* a second declaration narrows the ranges; a version already
             * picked must still satisfy them (no backtracking) */
            for (size_t k = 0; k < d.nranges; k++) {
                deps_version v;
                if (o->revision && deps_version_parse(o->revision, &v) &&
                    !deps_range_match(&v, d.ranges[k])) {
                    cs_fail(err, CS_INVALID,
                            "%s: %s \"%s\" conflicts with version %s picked for %s", d.where, d.src,
                            d.ranges[k], o->revision, o->where);
                    dep_free(&d);
                    return false;
                }
                XGROW(o->ranges, o->nranges);
                o->ranges[o->nranges++] = xstrdup(d.ranges[k]);
            }
        }
        if (o) {
            dep_free(&d);
            continue;
        }
        if (r->n >= DEPS_MAX_PACKAGES) {
            cs_fail(err, CS_INVALID, "%s: more than %d packages", d.where, DEPS_MAX_PACKAGES);
            dep_free(&d);
            return false;
        }
        XGROW(r->deps, r->n);
        r->deps[r->n++] = d;
    }
    return true;
}

/* a 64-bit FNV-1a of the spec file's bytes, as hex: whether the lock is current */
static void spec_hash(const char *file, char out[17])
{
    char *text = NULL;
    size_t len = 0;
    uint64_t h = 1469598103934665603ULL;
    if (pv_read_file(file, &text, &len))
        for (size_t i = 0; i < len; i++)
            h = (h ^ (unsigned char)text[i]) * 1099511628211ULL;
    free(text);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static void put_quoted(buf *b, const char *s)
{
    buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_putc(b, '\\');
        buf_putc(b, *s);
    }
    buf_putc(b, '"');
}

static bool write_lock(deps_run *r, const char *hash, cs_error *err)
{
    char *file = join(r->root, "package-lock.yml"), *tmp = join(r->root, ".package-lock.yml.tmp");
    buf b;
    FILE *f;
    bool ok = false;

    buf_init(&b, BUF_DEFAULT_MAX);
    buf_puts(&b, "packages:\n");
    for (size_t i = 0; i < r->n; i++) {
        const dep *d = &r->deps[i];
        buf_printf(&b, "  - %s: ", kind_key(d->kind));
        put_quoted(&b, d->src);
        buf_puts(&b, "\n    name: ");
        put_quoted(&b, d->name);
        if (d->kind == DEP_HUB) {
            deps_version v;
            buf_puts(&b, "\n    version: ");
            /* the version, as dbt writes it, even when the tag has a v */
            put_quoted(&b, deps_version_parse(d->revision, &v) &&
                                   (d->revision[0] == 'v' || d->revision[0] == 'V')
                               ? d->revision + 1
                               : d->revision);
        } else if (d->kind == DEP_GIT) {
            buf_puts(&b, "\n    revision: ");
            put_quoted(&b, d->commit);
            if (d->subdir) {
                buf_puts(&b, "\n    subdirectory: ");
                put_quoted(&b, d->subdir);
            }
        }
        buf_putc(&b, '\n');
    }
    buf_printf(&b, "cht_sync_hash: \"%s\"\n", hash);
    if (!buf_ok(&b) || !(f = fopen(tmp, "w"))) {
        cs_fail(err, CS_PERMANENT, "could not write \"%s\": %s", tmp, strerror(errno));
        goto out;
    }
    ok = fwrite(b.data, 1, b.len, f) == b.len;
    ok = fclose(f) == 0 && ok && rename(tmp, file) == 0;
    if (!ok)
        cs_fail(err, CS_PERMANENT, "could not write \"%s\": %s", file, strerror(errno));
out:
    buf_free(&b);
    free(file);
    free(tmp);
    return ok;
}

/*
 * Resolves and installs: from the lock when it is current and upgrade is
 * false (exactly its entries, already transitive), else from the spec,
 * following each installed package's own packages.yml.
 */
static bool deps_install_all(deps_run *r, bool upgrade, cs_error *err)
{
    char *file = NULL, *lockfile = join(r->root, "package-lock.yml"), hash[17];
    pv *doc = NULL, *lock = NULL;
    bool ok = false, from_lock = false;

    if (read_spec(r->root, &file, &doc, err) != CS_OK)
        goto out;
    if (!doc) {
        printf("no packages.yml or dependencies.yml in %s: nothing to install\n", r->root);
        ok = true;
        goto out;
    }
    spec_hash(file, hash);
    if (!upgrade && exists(lockfile) && pv_load_yaml_file(lockfile, &lock, err) == CS_OK &&
        pv_gets(lock, "cht_sync_hash") && strcmp(pv_gets(lock, "cht_sync_hash"), hash) == 0) {
        from_lock = true;
        if (!add_list(r, spec_list(lock), lockfile, r->root, err))
            goto out;
    } else if (!add_list(r, spec_list(doc), file, r->root, err)) {
        goto out;
    }
    if (!mkdir_p(r->install)) {
        cs_fail(err, CS_PERMANENT, "could not create \"%s\": %s", r->install, strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < r->n; i++) {
        char *dir = NULL, *sfile = NULL;
        pv *sdoc = NULL;
        dep *d = &r->deps[i];
        if (!install(r, d, &dir, err)) {
            cs_error_prefix(err, "%s: ", d->where);
            free(dir);
            goto out;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(r->deps[k].name, d->name) == 0) {
                cs_fail(err, CS_INVALID, "%s and %s both install a package named \"%s\"",
                        r->deps[k].where, d->where, d->name);
                free(dir);
                goto out;
            }
        }
        printf("installed %s (%s%s%s)\n", d->name, kind_key(d->kind), d->revision ? " " : "",
               d->revision ? d->revision : "");
        /* transitive: resolved from the installed copy's own spec */
        if (!from_lock) {
            bool more = read_spec(dir, &sfile, &sdoc, err) == CS_OK &&
                        (!sdoc || add_list(r, spec_list(sdoc), sfile, dir, err));
            pv_free(sdoc);
            free(sfile);
            if (!more) {
                free(dir);
                goto out;
            }
        }
        free(dir);
    }
    ok = from_lock || write_lock(r, hash, err);
    printf("%zu package%s installed in %s%s\n", r->n, r->n == 1 ? "" : "s", r->install,
           from_lock ? " (from package-lock.yml)" : "");
out:
    pv_free(doc);
    pv_free(lock);
    free(file);
    free(lockfile);
    return ok;
}

int deps_main(const char *default_dir, int argc, char **argv, char *const *env)
{
    const char *dir = default_dir && *default_dir ? default_dir : ".";
    bool upgrade = false, ok;
    deps_run r;
    cs_error err;
    char real[PATH_MAX], **genv = NULL;
    size_t nenv = 0;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--upgrade") == 0) {
            upgrade = true;
        } else if (i + 1 < argc && strcmp(argv[i], "--project-dir") == 0) {
            dir = argv[++i];
        } else {
            fprintf(stderr, "cht-sync pipeline deps: unknown or incomplete option \"%s\"\n",
                    argv[i]);
            return 2;
        }
    }
    if (!realpath(dir, real)) {
        fprintf(stderr, "cht-sync pipeline deps: no project folder \"%s\"\n", dir);
        return 2;
    }
    /* git never asks for a password on a terminal: it fails instead */
    for (char *const *e = env; e && *e; e++) {
        XGROW(genv, nenv);
        genv[nenv++] = *e;
    }
    XGROW(genv, nenv);
    genv[nenv++] = "GIT_TERMINAL_PROMPT=0";
    XGROW(genv, nenv);
    genv[nenv] = NULL;
    memset(&r, 0, sizeof(r));
    memset(&err, 0, sizeof(err));
    r.root = real;
    r.install = deps_install_dir(real);
    r.env = genv;
    buf_init(&r.out, DEPS_GIT_OUT_MAX + 1);
    ok = deps_install_all(&r, upgrade, &err);
    if (!ok)
        fprintf(stderr, "cht-sync pipeline deps: %s\n", err.msg);
    for (size_t i = 0; i < r.n; i++)
        dep_free(&r.deps[i]);
    free(r.deps);
    free(r.install);
    buf_free(&r.out);
    free(genv);
    return ok ? 0 : err.code == CS_TRANSIENT ? 1 : 2;
}

/* ---- the loader's check ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* the name the lock recorded for a git entry, or NULL (borrowed from lock) */
static const char *lock_name(const pv *lock, const char *key, const char *src)
{
    const pv *l = spec_list(lock);
    for (size_t i = 0; l && i < l->n; i++)
        if (pv_gets(l->items[i], key) && strcmp(pv_gets(l->items[i], key), src) == 0)
            return pv_gets(l->items[i], "name");
    return NULL;
}

/*
 * Checks that every hub entry of list (and every git entry whose name the
 * lock knows) has its folder under install_dir; *wanted counts the git and
 * hub entries.
 */
static cs_result check_named(const char *file, const pv *list, const char *install_dir,
                             const pv *lock, size_t *wanted, cs_error *err)
{
    for (size_t i = 0; list && i < list->n; i++) {
        const pv *e = list->items[i];
        const char *hub = pv_gets(e, "package"), *git = pv_gets(e, "git"), *name = NULL;
        cs_result rc = CS_OK;
        if (!hub && (!git || !*git))
            continue;
        (*wanted)++;
        if (hub)
            name = strchr(hub, '/') ? strchr(hub, '/') + 1 : hub;
        else
            name = lock_name(lock, "git", git);
        if (!name)
            continue;
        char *d = join(install_dir, name), *f = join(d, "dbt_project.yml");
        if (!exists(f)) {
            char *what = xstrdup(hub ? hub : git);
            redact(what);
            rc = cs_fail(err, CS_INVALID,
                         "%s:%d: package \"%s\" is not installed (no %s); install the packages "
                         "with \"cht-sync pipeline deps\"",
                         file, e->line, what, f);
            free(what);
        }
        free(d);
        free(f);
        if (rc != CS_OK)
            return rc;
    }
    return CS_OK;
}

cs_result deps_installed(const char *file, const pv *list, const char *install_dir, char ***dirs,
                         size_t *ndirs, cs_error *err)
{
    DIR *dh = opendir(install_dir);
    struct dirent *de;
    char *root = xstrdup(file), *slash = strrchr(root, '/'), *lockfile;
    pv *lock = NULL;
    size_t wanted = 0, copies = 0;
    cs_result rc = CS_OK;

    *dirs = NULL;
    *ndirs = 0;
    if (slash)
        *slash = '\0';
    lockfile = join(slash ? root : ".", "package-lock.yml");
    while (dh && (de = readdir(dh))) {
        if (de->d_name[0] == '.')
            continue;
        char *d = join(install_dir, de->d_name), *f = join(d, "dbt_project.yml");
        struct stat st;
        if (exists(f)) {
            /* local packages are symlinks: only the others stand for git and hub ones */
            if (lstat(d, &st) == 0 && !S_ISLNK(st.st_mode))
                copies++;
            XGROW(*dirs, *ndirs);
            (*dirs)[(*ndirs)++] = d;
        } else {
            free(d);
        }
        free(f);
    }
    if (dh)
        closedir(dh);
    if (*ndirs)
        qsort(*dirs, *ndirs, sizeof(char *), cmp_str);
    if (exists(lockfile) && pv_load_yaml_file(lockfile, &lock, err) != CS_OK)
        lock = NULL;
    rc = check_named(file, list, install_dir, lock, &wanted, err);
    /* an installed package's own hub packages are installed beside it */
    for (size_t i = 0; i < *ndirs && rc == CS_OK; i++) {
        char *sfile = NULL;
        pv *sdoc = NULL;
        size_t more = 0;
        if ((rc = read_spec((*dirs)[i], &sfile, &sdoc, err)) == CS_OK && sdoc)
            rc = check_named(sfile, spec_list(sdoc), install_dir, NULL, &more, err);
        pv_free(sdoc);
        free(sfile);
    }
    if (rc == CS_OK && wanted > copies)
        rc = cs_fail(err, CS_INVALID,
                     "%s names %zu git or hub package%s but only %zu %s installed in %s; install "
                     "them with \"cht-sync pipeline deps\"",
                     file, wanted, wanted == 1 ? "" : "s", copies, copies == 1 ? "is" : "are",
                     install_dir);
    if (rc != CS_OK) {
        for (size_t i = 0; i < *ndirs; i++)
            free((*dirs)[i]);
        free(*dirs);
        *dirs = NULL;
        *ndirs = 0;
    }
    pv_free(lock);
    free(lockfile);
    free(root);
    return rc;
}
