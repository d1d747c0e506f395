/*
 * seed.c - see seed.h.  The CSV reader and the type inference are pure (and
 * unit-tested); seed_run is the only part that talks to PostgreSQL.
 */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
#include "pipeline/seed.h"

#include <ctype.h>
#include <dirent.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/pg.h"
#include "common/xalloc.h"

#define SEED_MAX_PARAMS 65535 /* PostgreSQL's limit of parameters per statement */

/* ---- CSV ---- */

void seed_csv_free(seed_csv *t)
{
    for (size_t i = 0; i < t->ncols; i++)
        free(t->header[i]);
    free(t->header);
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t i = 0; i < t->ncols; i++)
            free(t->rows[r][i]);
        free(t->rows[r]);
    }
    free(t->rows);
    memset(t, 0, sizeof(*t));
}

/*
 * Reads one record from text at *pos into a new array of *n fields.  False
 * at the end of the text (nothing read) or on a quoting error (*bad set).
 */
static bool read_record(const char *text, size_t len, size_t *pos, char delim, char ***out,
                        size_t *n, int *line, bool *bad)
{
    size_t i = *pos;
    buf f;

    *out = NULL;
    *n = 0;
    *bad = false;
    if (i >= len)
        return false;
    buf_init(&f, BUF_DEFAULT_MAX);
    for (;;) {
        buf_reset(&f);
        if (i < len && text[i] == '"') {
            i++;
            for (;;) {
                if (i >= len) {
                    *bad = true;
                    goto out;
                }
                if (text[i] == '"') {
                    if (i + 1 < len && text[i + 1] == '"') {
                        buf_putc(&f, '"');
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                if (text[i] == '\n')
                    (*line)++;
                buf_putc(&f, text[i++]);
            }
            if (i < len && text[i] != delim && text[i] != '\n' && text[i] != '\r') {
                *bad = true;
                goto out;
            }
        } else {
            while (i < len && text[i] != delim && text[i] != '\n' && text[i] != '\r')
                buf_putc(&f, text[i++]);
        }
        XGROW(*out, *n);
        (*out)[(*n)++] = xstrdup(f.data ? f.data : "");
        if (i < len && text[i] == delim) {
            i++;
            continue;
        }
        if (i < len && text[i] == '\r')
            i++;
        if (i < len && text[i] == '\n')
            i++;
        break;
    }
out:
    buf_free(&f);
    *pos = i;
    (*line)++;
    return !*bad;
}

static void free_fields(char **f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(f[i]);
    free(f);
}

cs_result seed_csv_parse(const char *name, const char *text, size_t len, char delim, seed_csv *out,
                         cs_error *err)
{
    size_t pos = 0, n;
    char **f;
    int line = 1, start;
    bool bad;

    memset(out, 0, sizeof(*out));
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) /* a byte order mark */
        pos = 3;
    if (!read_record(text, len, &pos, delim, &out->header, &out->ncols, &line, &bad))
        return cs_fail(err, CS_INVALID, "%s: %s", name,
                       bad ? "line 1: unterminated quoted field" : "no header line");
    for (size_t i = 0; i < out->ncols; i++) {
        if (!out->header[i][0]) {
            cs_fail(err, CS_INVALID, "%s: column %zu has no name", name, i + 1);
            goto fail;
        }
    }
    for (;;) {
        start = line;
        if (!read_record(text, len, &pos, delim, &f, &n, &line, &bad)) {
            if (bad) {
                cs_fail(err, CS_INVALID, "%s:%d: unterminated or misplaced quote", name, start);
                free_fields(f, n);
                goto fail;
            }
            break;
        }
        if (n == 1 && !f[0][0]) { /* a blank line */
            free_fields(f, n);
            continue;
        }
        if (n != out->ncols || out->nrows >= SEED_MAX_ROWS) {
            if (n != out->ncols)
                cs_fail(err, CS_INVALID, "%s:%d: %zu fields where the header has %zu", name, start,
                        n, out->ncols);
            else
                cs_fail(err, CS_INVALID, "%s: more than %d rows (seeds are for small tables)", name,
                        SEED_MAX_ROWS);
            free_fields(f, n);
            goto fail;
        }
        XGROW(out->rows, out->nrows);
        out->rows[out->nrows++] = f;
    }
    return CS_OK;
fail:
    seed_csv_free(out);
    return CS_INVALID;
}

/* ---- types, as agate's tester in dbt: the first that every value fits ---- */

static bool is_null(const char *s)
{
    return !*s || strcasecmp(s, "null") == 0;
}

static bool digits(const char **s, size_t min, size_t max)
{
    size_t n = 0;
    while (isdigit((unsigned char)**s) && n < max) {
        (*s)++;
        n++;
    }
    return n >= min && !isdigit((unsigned char)**s);
}

static bool fits_integer(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    return digits(&s, 1, 18) && !*s; /* beyond 18 digits: numeric */
}

static bool fits_numeric(const char *s)
{
    bool any = false;
    if (*s == '-' || *s == '+')
        s++;
    while (isdigit((unsigned char)*s)) {
        s++;
        any = true;
    }
    if (*s == '.') {
        s++;
        while (isdigit((unsigned char)*s)) {
            s++;
            any = true;
        }
    }
    if (any && (*s == 'e' || *s == 'E')) {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (!digits(&s, 1, 5))
            return false;
    }
    return any && !*s;
}

/* YYYY-MM-DD at *s, advancing */
static bool date_part(const char **s)
{
    const char *p = *s;
    if (!digits(&p, 4, 4) || *p++ != '-')
        return false;
    int m = atoi(p);
    if (!digits(&p, 2, 2) || *p++ != '-' || m < 1 || m > 12)
        return false;
    int d = atoi(p);
    if (!digits(&p, 2, 2) || d < 1 || d > 31)
        return false;
    *s = p;
    return true;
}

static bool fits_date(const char *s)
{
    return date_part(&s) && !*s;
}

/* "YYYY-MM-DD HH:MM:SS" or ISO 8601 (T, fractions, Z or an offset) */
static bool fits_timestamp(const char *s)
{
    if (!date_part(&s) || (*s != ' ' && *s != 'T'))
        return false;
    s++;
    if (!digits(&s, 2, 2) || *s++ != ':' || !digits(&s, 2, 2))
        return false;
    if (*s == ':') {
        s++;
        if (!digits(&s, 2, 2))
            return false;
        if (*s == '.') {
            s++;
            if (!digits(&s, 1, 9))
                return false;
        }
    }
    if (*s == 'Z')
        s++;
    else if (*s == '+' || *s == '-') {
        s++;
        if (!digits(&s, 2, 2))
            return false;
        if (*s == ':')
            s++;
        if (*s && !digits(&s, 2, 2))
            return false;
    }
    return !*s;
}

static bool fits_boolean(const char *s)
{
    return strcasecmp(s, "true") == 0 || strcasecmp(s, "false") == 0;
}

const char *seed_infer_type(const seed_csv *t, size_t col)
{
    static const struct {
        const char *type;
        bool (*fits)(const char *);
    } order[] = {
        {"integer", fits_integer},     {"numeric", fits_numeric}, {"date", fits_date},
        {"timestamp", fits_timestamp}, {"boolean", fits_boolean},
    };
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        bool all = true;
        for (size_t r = 0; r < t->nrows && all; r++) {
            const char *v = t->rows[r][col];
            all = is_null(v) || order[k].fits(v);
        }
        if (all)
            return order[k].type;
    }
    return "text";
}

/* ---- finding seeds ---- */

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = xmalloc(la + lb + 2);
    memcpy(s, a, la);
    s[la] = '/';
    memcpy(s + la + 1, b, lb + 1);
    return s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* merges the config keys of one level of a `seeds:` tree (+key, or a known name) */
static void merge_level(pv *dst, const pv *level)
{
    static const char *const known[] = {
        "column_types", "quote_columns", "delimiter", "enabled", "alias", "pre-hook",
        "post-hook",    "pre_hook",      "post_hook", "schema",  "tags",  "full_refresh"};
    pv *m = pv_new(PV_MAP);
    for (size_t i = 0; level && level->type == PV_MAP && i < level->n; i++) {
        bool is_cfg = level->keys[i][0] == '+';
        for (size_t k = 0; !is_cfg && k < sizeof(known) / sizeof(known[0]); k++)
            is_cfg = strcmp(level->keys[i], known[k]) == 0;
        if (is_cfg)
            pv_set(m, level->keys[i], pv_copy(level->items[i]));
    }
    project_config_merge(dst, m);
    pv_free(m);
}

/* walks tree along rel's folders then the seed name, merging each level */
static void merge_tree(pv *dst, const pv *tree, const char *rel, const char *name)
{
    const pv *level = tree;
    char part[256];

    merge_level(dst, level);
    while (level && *rel) {
        size_t n = strcspn(rel, "/");
        if (n >= sizeof(part))
            return;
        memcpy(part, rel, n);
        part[n] = '\0';
        if (!rel[n]) { /* the file itself */
            snprintf(part, sizeof(part), "%s", name);
        }
        level = pv_get(level, part);
        if (!level || level->type != PV_MAP)
            return;
        merge_level(dst, level);
        rel += n;
        while (*rel == '/')
            rel++;
    }
}

typedef struct {
    pl_project *p;
    size_t pkg;
    const pv *own, *root;         /* the package's and the root's seeds: trees for it */
    const pv *own_top, *root_top; /* the two `seeds:` maps */
    const char *sp;               /* the seed path being walked */
    int depth;
} find_ctx;

static void add_seed(find_ctx *c, const char *file, const char *rel)
{
    const char *base = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
    size_t n = strlen(base) - 4;
    char *name = xmalloc(n + 1);
    pv *cfg = pv_new(PV_MAP);
    const pv *en, *alias;

    memcpy(name, base, n);
    name[n] = '\0';
    /* the top level of `seeds:` applies to every package's seeds */
    merge_level(cfg, c->own_top);
    merge_tree(cfg, c->own, rel, name);
    if (c->pkg) {
        merge_level(cfg, c->root_top);
        merge_tree(cfg, c->root, rel, name);
    }
    en = pv_get(cfg, "enabled");
    if (en && !pv_truthy(en)) {
        pv_free(cfg);
        free(name);
        return;
    }
    if ((alias = pv_get(cfg, "alias")) && pv_s(alias)) {
        free(name);
        name = xstrdup(alias->s);
    }
    XGROW(c->p->seeds, c->p->nseeds);
    c->p->seeds[c->p->nseeds++] =
        (pl_seed){.name = name, .package = c->pkg, .file = xstrdup(file), .config = cfg};
    {
        size_t ls = strlen(c->sp);
        char *rp = xmalloc(ls + strlen(rel) + 2);
        snprintf(rp, ls + strlen(rel) + 2, "%s/%s", c->sp, rel);
        c->p->seeds[c->p->nseeds - 1].relpath = rp;
    }
}

/* rel: the path below the seed path ("" at its top) */
static void walk_seeds(find_ctx *c, const char *dir, const char *rel)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;

    if (!d || c->depth > 32) {
        if (d)
            closedir(d);
        return;
    }
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        XGROW(names, n);
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < n; i++) {
        char *full = join(dir, names[i]), *r = *rel ? join(rel, names[i]) : xstrdup(names[i]);
        struct stat st;
        size_t len = strlen(names[i]);
        if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
            c->depth++;
            walk_seeds(c, full, r);
            c->depth--;
        } else if (len > 4 && strcmp(names[i] + len - 4, ".csv") == 0) {
            add_seed(c, full, r);
        }
        free(full);
        free(r);
        free(names[i]);
    }
    free(names);
}

cs_result seed_find(pl_project *p, cs_error *err)
{
    pv *rootdoc = NULL;

    (void)err;
    for (size_t pk = 0; pk < p->npackages; pk++) {
        const pl_package *P = &p->packages[pk];
        pv *doc = NULL;
        cs_error e2;
        if (pv_load_yaml_file(P->file, &doc, &e2) != CS_OK)
            continue; /* project_load read it already: it cannot fail here */
        if (pk == 0)
            rootdoc = doc;
        const pv *paths =
            pv_get(doc, "seed-paths") ? pv_get(doc, "seed-paths") : pv_get(doc, "data-paths");
        find_ctx c = {p,
                      pk,
                      pv_get(pv_get(doc, "seeds"), P->name),
                      pv_get(pv_get(rootdoc, "seeds"), P->name),
                      pv_get(doc, "seeds"),
                      pv_get(rootdoc, "seeds"),
                      "",
                      0};
        size_t np = paths && paths->type == PV_LIST ? paths->n : 1;
        for (size_t k = 0; k < np; k++) {
            const char *sp = paths && paths->type == PV_LIST ? pv_s(paths->items[k]) : "seeds";
            if (!sp)
                continue;
            char *dir = join(P->root, sp);
            c.sp = sp;
            walk_seeds(&c, dir, "");
            free(dir);
        }
        if (pk)
            pv_free(doc);
    }
    pv_free(rootdoc);
    return CS_OK;
}

long seed_lookup(const pl_project *p, const char *pkg, const char *name)
{
    long found = -1;
    for (size_t i = 0; i < p->nseeds; i++) {
        if (strcmp(p->seeds[i].name, name) != 0 ||
            (pkg && strcmp(p->packages[p->seeds[i].package].name, pkg) != 0))
            continue;
        if (p->seeds[i].package == 0)
            return (long)i;
        if (found < 0)
            found = (long)i;
    }
    return found;
}

/* ---- loading ---- */

/* runs the config's plain-SQL hooks (key pre_hook or post_hook), when no
 * callback renders them */
static cs_result run_plain_hooks(PGconn *c, const pv *cfg, const char *key, cs_error *err)
{
    const pv *h = pv_get(cfg, key);
    size_t n = h && h->type == PV_LIST ? h->n : h ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        const pv *one = h->type == PV_LIST ? h->items[i] : h;
        const char *sql = pv_s(one) ? one->s : pv_gets(one, "sql");
        if (!sql)
            continue;
        cs_result rc = pg_exec(c, sql, err);
        if (rc != CS_OK) {
            cs_error_prefix(err, "%s: ", key);
            return rc;
        }
    }
    return CS_OK;
}

static cs_result run_hooks(PGconn *c, const pl_seed *s, bool post, seed_hook_fn hooks, void *ud,
                           cs_error *err)
{
    if (hooks)
        return hooks(ud, post, err);
    return run_plain_hooks(c, s->config, post ? "post_hook" : "pre_hook", err);
}

/* whether schema.name exists as a table with exactly the columns cols */
static cs_result table_shape(PGconn *c, const char *schema, const char *name, char *const *cols,
                             size_t n, bool *exists, bool *same, cs_error *err)
{
    const char *params[2] = {schema, name};
    PGresult *res = PQexecParams(c,
                                 "SELECT a.attname FROM pg_attribute a JOIN pg_class t ON t.oid = "
                                 "a.attrelid JOIN pg_namespace s ON s.oid = t.relnamespace WHERE "
                                 "s.nspname = $1 AND t.relname = $2 AND t.relkind IN ('r','p') "
                                 "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                                 2, NULL, params, NULL, NULL, 0);
    cs_result rc = CS_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pg_fail(c, res, "reading the seed's table", err);
    } else {
        *exists = PQntuples(res) > 0;
        *same = (size_t)PQntuples(res) == n;
        for (size_t i = 0; *same && i < n; i++)
            *same = strcmp(PQgetvalue(res, (int)i, 0), cols[i]) == 0;
    }
    PQclear(res);
    return rc;
}

static void put_col(buf *b, const char *name, bool quote)
{
    if (quote)
        pg_quote_ident(b, name);
    else
        buf_puts(b, name);
}

cs_result seed_load(PGconn *c, const pl_seed *s, const char *schema, bool full_refresh,
                    seed_hook_fn hooks, void *ud, size_t *rows, cs_error *err)
{
    char *text = NULL;
    size_t len = 0;
    seed_csv t = {0};
    const pv *cfg = s->config, *types = pv_get(cfg, "column_types");
    const pv *q = pv_get(cfg, "quote_columns");
    const char *delim = pv_gets(cfg, "delimiter");
    bool quote = !q || pv_truthy(q), exists = false, same = false;
    buf sql, rel;
    cs_result rc;
    const char **vals = NULL;

    buf_init(&sql, BUF_DEFAULT_MAX);
    buf_init(&rel, 1024);
    if (!pv_read_file(s->file, &text, &len)) {
        rc = cs_fail(err, CS_INVALID, "could not read \"%s\"", s->file);
        goto out;
    }
    if (delim && strlen(delim) != 1) {
        rc = cs_fail(err, CS_INVALID, "%s: delimiter must be one character", s->file);
        goto out;
    }
    if ((rc = seed_csv_parse(s->file, text, len, delim ? delim[0] : ',', &t, err)) != CS_OK)
        goto out;
    pg_quote_ident(&rel, schema);
    buf_putc(&rel, '.');
    pg_quote_ident(&rel, s->name);
    if ((rc = pg_exec(c, "BEGIN", err)) != CS_OK)
        goto out;
    buf_printf(&sql, "CREATE SCHEMA IF NOT EXISTS ");
    pg_quote_ident(&sql, schema);
    if ((rc = pg_exec(c, sql.data, err)) != CS_OK ||
        (rc = run_hooks(c, s, false, hooks, ud, err)) != CS_OK ||
        (rc = table_shape(c, schema, s->name, t.header, t.ncols, &exists, &same, err)) != CS_OK)
        goto rollback;
    buf_reset(&sql);
    if (exists && same && !full_refresh) {
        buf_printf(&sql, "TRUNCATE TABLE %s", rel.data);
    } else {
        buf_printf(&sql, "DROP TABLE IF EXISTS %s CASCADE; CREATE TABLE %s (", rel.data, rel.data);
        for (size_t i = 0; i < t.ncols; i++) {
            const char *ty = pv_gets(types, t.header[i]);
            if (i)
                buf_puts(&sql, ", ");
            put_col(&sql, t.header[i], quote);
            buf_printf(&sql, " %s", ty ? ty : seed_infer_type(&t, i));
        }
        buf_putc(&sql, ')');
    }
    if (!buf_ok(&sql) || (rc = pg_exec(c, sql.data, err)) != CS_OK)
        goto rollback;
    /* batches of rows, each under PostgreSQL's parameter limit */
    size_t per = SEED_MAX_PARAMS / t.ncols;
    vals = xcalloc(per * t.ncols, sizeof(char *));
    for (size_t r0 = 0; r0 < t.nrows; r0 += per) {
        size_t nr = t.nrows - r0 < per ? t.nrows - r0 : per, k = 0;
        buf_reset(&sql);
        buf_printf(&sql, "INSERT INTO %s (", rel.data);
        for (size_t i = 0; i < t.ncols; i++) {
            if (i)
                buf_puts(&sql, ", ");
            put_col(&sql, t.header[i], quote);
        }
        buf_puts(&sql, ") VALUES ");
        for (size_t r = 0; r < nr; r++) {
            buf_puts(&sql, r ? ", (" : "(");
            for (size_t i = 0; i < t.ncols; i++, k++) {
                const char *v = t.rows[r0 + r][i];
                vals[k] = is_null(v) ? NULL : v;
                buf_printf(&sql, "%s$%zu", i ? ", " : "", k + 1);
            }
            buf_putc(&sql, ')');
        }
        if (!buf_ok(&sql)) {
            rc = cs_fail(err, CS_INVALID, "%s: the insert is too large", s->file);
            goto rollback;
        }
        PGresult *res = PQexecParams(c, sql.data, (int)k, NULL, vals, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = pg_fail(c, res, "inserting the seed's rows", err);
        PQclear(res);
        if (rc != CS_OK)
            goto rollback;
    }
    if ((rc = run_hooks(c, s, true, hooks, ud, err)) != CS_OK ||
        (rc = pg_exec(c, "COMMIT", err)) != CS_OK)
        goto rollback;
    *rows = t.nrows;
    goto out;
rollback:
    if (PQtransactionStatus(c) != PQTRANS_IDLE)
        PQclear(PQexec(c, "ROLLBACK")); /* err keeps the first failure */
out:
    free(vals);
    seed_csv_free(&t);
    free(text);
    buf_free(&sql);
    buf_free(&rel);
    return rc;
}
