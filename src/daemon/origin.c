/*
 * origin.c - see origin.h.
 *
 * The built-in base models are unpacked once per content: into
 * CACHE/base-models-<hash of every path and byte>, written under a
 * temporary name and renamed into place, so that two processes starting at
 * once never see half a project and an upgraded binary never reads an
 * older copy.  A git project lives in CACHE/project-<hash of the URL>; git
 * runs as a child process with its arguments as a vector (no shell), and
 * its messages reach the log only with the URL's credentials removed.
 *
 * Allocation: the strings here are a few paths, allocated with xalloc
 * (aborting on exhaustion, as the pipeline does).
 */
#include "daemon/origin.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "daemon/embedded.h"

extern char **environ;

#define GIT_MESSAGE_MAX 2048

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static char *join(const char *a, const char *b)
{
    char *s;
    if (asprintf(&s, "%s/%s", a, b) < 0)
        abort();
    return s;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* mkdir -p; false with errno set */
static bool make_dirs(const char *path)
{
    char *p = xstrdup(path);
    bool ok = true;

    for (char *s = p + 1; ok && *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        ok = mkdir(p, 0755) == 0 || errno == EEXIST;
        *s = '/';
    }
    ok = ok && (mkdir(p, 0755) == 0 || errno == EEXIST);
    free(p);
    return ok;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *origin_redact_url(const char *url)
{
    const char *scheme = strstr(url, "://");
    const char *start = scheme ? scheme + 3 : url;
    const char *at = strchr(start, '@');
    const char *slash = strchr(start, '/');
    char *out;

    if (!at || (slash && slash < at))
        return xstrdup(url);
    if (asprintf(&out, "%.*s%s", (int)(start - url), url, at + 1) < 0)
        abort();
    return out;
}

/* ---- the built-in base models ---- */

static bool write_file(const char *path, const unsigned char *data, size_t len)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    int fd;
    bool ok;

    if (slash)
        *slash = '\0';
    ok = make_dirs(dir);
    free(dir);
    if (!ok || (fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
        return false;
    for (size_t done = 0; ok && done < len;) {
        ssize_t n = write(fd, data + done, len - done);
        ok = n > 0;
        done += n > 0 ? (size_t)n : 0;
    }
    return close(fd) == 0 && ok;
}

static cs_result unpack_builtin(const char *cache, char **out, cs_error *err)
{
    uint64_t h = 14695981039346656037ULL;
    char name[64], *dir, *tmp = NULL, *marker;
    cs_result rc = CS_OK;

    *out = NULL;
    for (size_t i = 0; i < embedded_base_nfiles; i++) {
        h = fnv1a(h, embedded_base_files[i].path, strlen(embedded_base_files[i].path) + 1);
        h = fnv1a(h, embedded_base_files[i].data, embedded_base_files[i].len);
    }
    snprintf(name, sizeof(name), "base-models-%016" PRIx64, h);
    dir = join(cache, name);
    marker = join(dir, "dbt_project.yml");
    if (exists(marker))
        goto done;
    if (asprintf(&tmp, "%s.tmp.%ld", dir, (long)getpid()) < 0)
        abort();
    remove_tree(tmp);
    for (size_t i = 0; i < embedded_base_nfiles; i++) {
        char *f = join(tmp, embedded_base_files[i].path);
        bool ok = write_file(f, embedded_base_files[i].data, embedded_base_files[i].len);
        free(f);
        if (!ok) {
            rc = cs_fail(err, CS_PERMANENT,
                         "could not unpack the built-in base models into \"%s\": %s "
                         "(set CHT_SYNC_CACHE_DIR to a writable folder)",
                         tmp, strerror(errno));
            remove_tree(tmp);
            goto done;
        }
    }
    /* another process may have won the race: its copy is the same */
    if (rename(tmp, dir) != 0 && !exists(marker)) {
        rc = cs_fail(err, CS_PERMANENT, "could not move the base models into \"%s\": %s", dir,
                     strerror(errno));
    }
    remove_tree(tmp);
    if (rc == CS_OK)
        log_info("models", "unpacked the built-in base models into \"%s\"", dir);
done:
    free(tmp);
    free(marker);
    if (rc == CS_OK)
        *out = dir;
    else
        free(dir);
    return rc;
}

/* ---- git ---- */

/*
 * Runs git with argv (NULL-terminated, argv[0] "git"); its output goes to
 * the log, redacted.  Returns git's exit status, or -1 when git could not
 * be started (errno set).
 */
static int run_git(char *const *argv, const char *secret, char *msg, size_t msgsz)
{
    posix_spawn_file_actions_t fa;
    int pipefd[2], status = -1;
    pid_t pid;
    size_t len = 0;

    msg[0] = '\0';
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    int rc = posix_spawnp(&pid, "git", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (rc != 0) {
        close(pipefd[0]);
        errno = rc;
        return -1;
    }
    for (;;) {
        char chunk[512];
        ssize_t n = read(pipefd[0], chunk, sizeof(chunk));
        if (n <= 0)
            break;
        /* keep the last GIT_MESSAGE_MAX bytes: git's error is at the end */
        for (ssize_t i = 0; i < n; i++) {
            if (len + 1 >= msgsz) {
                memmove(msg, msg + msgsz / 2, len - msgsz / 2);
                len -= msgsz / 2;
            }
            msg[len++] = chunk[i] == '\n' ? ' ' : chunk[i];
        }
    }
    close(pipefd[0]);
    msg[len] = '\0';
    /* never log credentials git may echo back */
    for (char *p; secret && *secret && (p = strstr(msg, secret));)
        memset(p, '*', strlen(secret));
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static cs_result git_checkout(const char *cache, const char *spec, char **out, cs_error *err)
{
    const char *hash = strchr(spec, '#');
    char *url = hash ? xstrndup(spec, (size_t)(hash - spec)) : xstrdup(spec);
    const char *rev = hash && hash[1] ? hash + 1 : "HEAD";
    char *shown = origin_redact_url(url), *secret = NULL, *dir, *gitdir, *marker;
    char name[64], msg[GIT_MESSAGE_MAX];
    cs_result rc = CS_OK;
    int st;

    *out = NULL;
    /* the "user:password" part, masked in git's messages */
    if (strcmp(shown, url) != 0) {
        const char *start = strstr(url, "://") ? strstr(url, "://") + 3 : url;
        secret = xstrndup(start, (size_t)(strchr(start, '@') - start));
    }
    snprintf(name, sizeof(name), "project-%016" PRIx64,
             fnv1a(14695981039346656037ULL, url, strlen(url)));
    dir = join(cache, name);
    gitdir = join(dir, ".git");
    marker = join(dir, "dbt_project.yml");
    if (!exists(gitdir)) {
        char *init[] = {"git", "init", "--quiet", dir, NULL};
        char *remote[] = {"git", "-C", dir, "remote", "add", "origin", url, NULL};
        remove_tree(dir);
        if ((st = run_git(init, secret, msg, sizeof(msg))) != 0 ||
            (st = run_git(remote, secret, msg, sizeof(msg))) != 0) {
            if (st < 0 && errno == ENOENT)
                rc = cs_fail(err, CS_PERMANENT,
                             "CHT_PIPELINE_BRANCH_URL needs git, which is not installed");
            else
                rc = cs_fail(err, CS_PERMANENT, "could not prepare a git checkout in \"%s\": %s",
                             dir, msg);
            remove_tree(dir);
            goto done;
        }
    }
    char *fetch[] = {"git",     "-C", dir,      "fetch",     "--quiet",
                     "--depth", "1",  "origin", (char *)rev, NULL};
    char *checkout[] = {"git",     "-C",       dir,          "checkout", "--quiet",
                        "--force", "--detach", "FETCH_HEAD", NULL};
    if ((st = run_git(fetch, secret, msg, sizeof(msg))) != 0) {
        if (exists(marker)) {
            log_warn("models",
                     "could not fetch \"%s\" revision \"%s\" (%s): using the checkout "
                     "from an earlier start",
                     shown, rev, msg);
            goto done;
        }
        rc = cs_fail(err, CS_TRANSIENT, "could not fetch \"%s\" revision \"%s\": %s", shown, rev,
                     msg);
        goto done;
    }
    if ((st = run_git(checkout, secret, msg, sizeof(msg))) != 0) {
        rc = cs_fail(err, CS_PERMANENT, "could not check out \"%s\" revision \"%s\": %s", shown,
                     rev, msg);
        goto done;
    }
    log_info("models", "checked out \"%s\" revision \"%s\" into \"%s\"", shown, rev, dir);
done:
    if (rc == CS_OK)
        *out = dir;
    else
        free(dir);
    free(gitdir);
    free(marker);
    free(url);
    free(shown);
    free(secret);
    return rc;
}

/* ---- resolving ---- */

cs_result origin_resolve(const cs_config *cfg, origin *o, cs_error *err)
{
    const char *base = cfg->cht_pipeline_base ? cfg->cht_pipeline_base : "builtin";
    const char *local = cfg->dbt_local_path, *url = cfg->cht_pipeline_branch_url;
    cs_result rc;

    memset(o, 0, sizeof(*o));
    if ((strcmp(base, "builtin") == 0 && embedded_base_nfiles > 0) || (url && *url)) {
        if (!make_dirs(cfg->cache_dir))
            return cs_fail(err, CS_PERMANENT, "could not create CHT_SYNC_CACHE_DIR \"%s\": %s",
                           cfg->cache_dir, strerror(errno));
    }
    if (strcmp(base, "builtin") == 0) {
        if (embedded_base_nfiles > 0 && (rc = unpack_builtin(cfg->cache_dir, &o->base_dir, err)))
            return rc;
    } else if (strcmp(base, "project") != 0) {
        o->base_dir = xstrdup(base);
    }
    if (local && *local) {
        o->project_dir = xstrdup(local);
        if (asprintf(&o->what, "DBT_LOCAL_PATH \"%s\"", local) < 0)
            abort();
    } else if (url && *url) {
        if ((rc = git_checkout(cfg->cache_dir, url, &o->project_dir, err)) != CS_OK)
            return rc;
        char *shown = origin_redact_url(url);
        if (asprintf(&o->what, "CHT_PIPELINE_BRANCH_URL \"%s\"", shown) < 0)
            abort();
        free(shown);
    } else if (o->base_dir) {
        o->project_dir = xstrdup(o->base_dir);
        if (asprintf(&o->what, "the base models in \"%s\"", o->base_dir) < 0)
            abort();
    } else {
        return cs_fail(
            err, CS_PERMANENT, "no model project: set DBT_LOCAL_PATH or CHT_PIPELINE_BRANCH_URL%s",
            strcmp(base, "builtin") == 0 ? " (this build has no built-in base models)" : "");
    }
    return CS_OK;
}

void origin_free(origin *o)
{
    free(o->project_dir);
    free(o->base_dir);
    free(o->what);
    memset(o, 0, sizeof(*o));
}
