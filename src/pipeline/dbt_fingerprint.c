/*
 * dbt_fingerprint.c - each model's fingerprint (docs/pipeline.md,
 * "Fingerprints"): a hash of what defines the model's SQL and its
 * table's shape, computed once at parse time in dependency order and
 * compared by the runner with the one it stored to decide a rebuild.
 *
 * Texts are hashed in a normal form: Jinja comments, SQL comments and
 * runs of blanks (outside quotes) do not count, and neither does the
 * model's own {{ config(...) }} call, whose values count through the
 * config keys that shape the relation (materialized, alias, unique_key,
 * ...), not through `meta`, `tags`, `docs`, hooks or grants.
 *
 * Macros are hashed one by one (the text between {% macro NAME(...) %}
 * and its {% endmacro %}), only those the model reaches: called (NAME
 * then "(") in its source or in a macro already reached.  By name, not by
 * scope: a false match only makes a rebuild more likely.  Every macro is
 * scanned once per parse and the reach is a walk over a name index, so
 * parsing stays linear in the project's size.
 */
#include "pipeline/dbt_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

#define FNV_BASIS 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

/* config keys that change what the model builds */
static const char *const shaping_keys[] = {"materialized", "alias",      "schema",
                                           "database",     "unique_key", "incremental_strategy",
                                           "indexes",      "contract",   "sql_header"};

typedef struct {
    char *name;
    unsigned long long hash; /* of its normalized text */
    char **calls;            /* names it calls */
    size_t ncalls;
} macro_def;

typedef struct {
    macro_def *defs;
    size_t n;
    long *slots; /* open addressing over names: index into defs, -1 empty */
    size_t nslots;
    long *next; /* defs of the same name, chained: next index or -1 */
} macro_index;

static bool ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* FNV-1a of n bytes of s plus a separator, so that ("ab", "c") and ("a", "bc") differ */
static void fnv_n(unsigned long long *h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *h ^= (unsigned char)s[i];
        *h *= FNV_PRIME;
    }
    *h ^= 0xff;
    *h *= FNV_PRIME;
}

static void fnv(unsigned long long *h, const char *s)
{
    fnv_n(h, s ? s : "", s ? strlen(s) : 0);
}

static unsigned long long name_hash(const char *s, size_t n)
{
    unsigned long long h = FNV_BASIS;
    fnv_n(&h, s, n);
    return h;
}

/*
 * Appends text[0..n) to out in normal form: {# #} comments, SQL "--" and
 * block comments outside '...' and "..." dropped, each run of blanks one
 * space.  Quoted text is kept as it is.
 */
static void normalize(const char *t, size_t n, buf *out)
{
    bool blank = false;

    for (size_t i = 0; i < n;) {
        char c = t[i];
        if (c == '{' && i + 1 < n && t[i + 1] == '#') {
            const char *e = strstr(t + i + 2, "#}");
            i = e && (size_t)(e - t) < n ? (size_t)(e - t) + 2 : n;
            blank = true;
        } else if (c == '-' && i + 1 < n && t[i + 1] == '-') {
            while (i < n && t[i] != '\n')
                i++;
            blank = true;
        } else if (c == '/' && i + 1 < n && t[i + 1] == '*') {
            const char *e = strstr(t + i + 2, "*/");
            i = e && (size_t)(e - t) < n ? (size_t)(e - t) + 2 : n;
            blank = true;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            i++;
            blank = true;
        } else {
            if (blank && out->len)
                buf_putc(out, ' ');
            blank = false;
            if (c == '\'' || c == '"') {
                size_t s = i++;
                while (i < n && t[i] != c)
                    i++;
                i = i < n ? i + 1 : n;
                buf_append(out, t + s, i - s);
            } else {
                buf_putc(out, c);
                i++;
            }
        }
    }
}

/* the end of the "{{ config(...) }}" block at t (t points at "{{"), or NULL */
static const char *config_block_end(const char *t)
{
    const char *q = t + 2;
    int depth = 0;

    if (*q == '-')
        q++;
    q += strspn(q, " \t\r\n");
    if (strncmp(q, "config", 6) != 0)
        return NULL;
    q += 6;
    q += strspn(q, " \t\r\n");
    if (*q != '(')
        return NULL;
    for (; *q; q++) {
        if (*q == '\'' || *q == '"') {
            const char *e = strchr(q + 1, *q);
            if (!e)
                return NULL;
            q = e;
        } else if (*q == '(') {
            depth++;
        } else if (*q == ')' && --depth == 0) {
            q++;
            q += strspn(q, " \t\r\n");
            if (*q == '-')
                q++;
            return strncmp(q, "}}", 2) == 0 ? q + 2 : NULL;
        }
    }
    return NULL;
}

/* a model's source in normal form, without its {{ config(...) }} calls */
static void normalize_model(const char *sql, buf *out)
{
    const char *t = sql, *s = sql;

    while ((t = strstr(t, "{{")) != NULL) {
        const char *e = config_block_end(t);
        if (!e) {
            t += 2;
            continue;
        }
        normalize(s, (size_t)(t - s), out);
        s = t = e;
    }
    normalize(s, strlen(s), out);
}

/* appends to *calls the names called in text[0..n): NAME, blanks, "(" */
static void scan_calls(const char *t, size_t n, char ***calls, size_t *ncalls)
{
    for (size_t i = 0; i < n;) {
        if (!ident_char(t[i]) || (i > 0 && ident_char(t[i - 1]))) {
            i++;
            continue;
        }
        size_t s = i;
        while (i < n && ident_char(t[i]))
            i++;
        size_t e = i;
        while (e < n && (t[e] == ' ' || t[e] == '\t' || t[e] == '\r' || t[e] == '\n'))
            e++;
        if (e < n && t[e] == '(') {
            XGROW(*calls, *ncalls);
            (*calls)[(*ncalls)++] = xstrndup(t + s, i - s);
        }
    }
}

/* the "{%[-+] KEYWORD" tag at t: the text after the keyword, or NULL */
static const char *tag_keyword(const char *t, const char *keyword)
{
    const char *q = t + 2;
    size_t l = strlen(keyword);

    if (*q == '-' || *q == '+')
        q++;
    q += strspn(q, " \t\r\n");
    if (strncmp(q, keyword, l) != 0 || ident_char(q[l]))
        return NULL;
    return q + l;
}

/* every macro of text, with its hash and the names it calls */
static void scan_macros(const char *text, macro_index *ix)
{
    for (const char *t = strstr(text, "{%"); t; t = strstr(t + 2, "{%")) {
        const char *q = tag_keyword(t, "macro"), *e, *end;
        if (!q)
            continue;
        q += strspn(q, " \t\r\n");
        for (e = q; ident_char(*e); e++)
            ;
        if (e == q)
            continue;
        /* the body runs to the next {% endmacro %} (macros do not nest) */
        for (end = strstr(e, "{%"); end && !tag_keyword(end, "endmacro");
             end = strstr(end + 2, "{%"))
            ;
        if (!end)
            end = e + strlen(e);
        XGROW(ix->defs, ix->n);
        macro_def *d = &ix->defs[ix->n++];
        buf nb;
        memset(d, 0, sizeof(*d));
        d->name = xstrndup(q, (size_t)(e - q));
        buf_init(&nb, 0);
        normalize(t, (size_t)(end - t), &nb);
        d->hash = FNV_BASIS;
        fnv_n(&d->hash, nb.data ? nb.data : "", nb.len);
        buf_free(&nb);
        scan_calls(e, (size_t)(end - e), &d->calls, &d->ncalls);
        t = end;
    }
}

static void index_build(macro_index *ix)
{
    ix->nslots = 16;
    while (ix->nslots < ix->n * 2)
        ix->nslots *= 2;
    ix->slots = xcalloc(ix->nslots, sizeof(long));
    ix->next = xcalloc(ix->n + 1, sizeof(long));
    for (size_t s = 0; s < ix->nslots; s++)
        ix->slots[s] = -1;
    for (size_t k = 0; k < ix->n; k++) {
        const char *name = ix->defs[k].name;
        size_t s = name_hash(name, strlen(name)) & (ix->nslots - 1);
        while (ix->slots[s] >= 0 && strcmp(ix->defs[ix->slots[s]].name, name) != 0)
            s = (s + 1) & (ix->nslots - 1);
        ix->next[k] = ix->slots[s];
        ix->slots[s] = (long)k;
    }
}

/* the first def named name (others follow through next), or -1 */
static long index_find(const macro_index *ix, const char *name)
{
    size_t s = name_hash(name, strlen(name)) & (ix->nslots - 1);
    while (ix->slots[s] >= 0) {
        if (strcmp(ix->defs[ix->slots[s]].name, name) == 0)
            return ix->slots[s];
        s = (s + 1) & (ix->nslots - 1);
    }
    return -1;
}

static void index_free(macro_index *ix)
{
    for (size_t k = 0; k < ix->n; k++) {
        for (size_t c = 0; c < ix->defs[k].ncalls; c++)
            free(ix->defs[k].calls[c]);
        free(ix->defs[k].calls);
        free(ix->defs[k].name);
    }
    free(ix->defs);
    free(ix->slots);
    free(ix->next);
}

/*
 * Hashes, in index order, every macro reachable from the names in calls.
 * seen and work have ix->n entries; seen comes back cleared.
 */
static void hash_reached(const macro_index *ix, char **calls, size_t ncalls, bool *seen,
                         size_t *work, unsigned long long *h)
{
    size_t top = 0, nreached = 0;

    for (size_t c = 0; c < ncalls; c++)
        for (long k = index_find(ix, calls[c]); k >= 0; k = ix->next[k])
            if (!seen[k]) {
                seen[k] = true;
                work[top++] = (size_t)k;
            }
    while (top > 0) {
        size_t k = work[--top];
        nreached++;
        for (size_t c = 0; c < ix->defs[k].ncalls; c++)
            for (long j = index_find(ix, ix->defs[k].calls[c]); j >= 0; j = ix->next[j])
                if (!seen[j]) {
                    seen[j] = true;
                    work[top++] = (size_t)j;
                }
    }
    /* in index order, so that the hash does not depend on the walk */
    for (size_t k = 0; k < ix->n && nreached > 0; k++) {
        if (!seen[k])
            continue;
        char hx[17];
        snprintf(hx, sizeof(hx), "%016llx", ix->defs[k].hash);
        fnv(h, hx);
        seen[k] = false;
        nreached--;
    }
}

/* the config keys that shape the relation, as text */
static void shaping_config(const pv *config, buf *out)
{
    for (size_t k = 0; k < sizeof(shaping_keys) / sizeof(shaping_keys[0]); k++) {
        const pv *v = pv_get(config, shaping_keys[k]);
        if (!v)
            continue;
        buf_printf(out, "%s=", shaping_keys[k]);
        pv_to_text(v, out);
        buf_putc(out, '\n');
    }
}

/*
 * A model's fingerprint: what defines its SQL and its relation, not what
 * it is run with: its source (normal form, without config()), the macros
 * it reaches, the env_var() values and source() relations it read while
 * parsing, the config keys that shape the relation, its contract and
 * constraints, and the fingerprints of the models it refs.  Var values
 * (--vars, DBT_BATCH_SIZE, project vars) are not part of it: they are
 * run-time input, so `--vars '{batch_size: 10}'` never forces a rebuild.
 */
static void fingerprint(dbt_manifest *m, const macro_index *ix, bool *seen, size_t *stack, size_t i)
{
    dbt_node *nd = &m->nodes[i];
    const pl_model *pm = &m->p->models[i];
    unsigned long long h = FNV_BASIS;
    char **calls = NULL;
    size_t ncalls = 0;
    buf b;

    buf_init(&b, 0);
    normalize_model(pm->sql, &b);
    fnv(&h, b.data);
    scan_calls(pm->sql, strlen(pm->sql), &calls, &ncalls);
    hash_reached(ix, calls, ncalls, seen, stack, &h);
    for (size_t c = 0; c < ncalls; c++)
        free(calls[c]);
    free(calls);
    fnv(&h, nd->inputs);
    buf_reset(&b);
    shaping_config(nd->config, &b);
    fnv(&h, b.data);
    buf_reset(&b);
    pv_to_text(nd->contract, &b);
    fnv(&h, b.data);
    buf_reset(&b);
    pv_to_text(nd->constraints, &b);
    fnv(&h, b.data);
    for (size_t k = 0; k < nd->ndeps; k++)
        fnv(&h, m->nodes[nd->deps[k]].fingerprint);
    snprintf(nd->fingerprint, sizeof(nd->fingerprint), "%016llx", h);
    buf_free(&b);
}

void dbt_fingerprint_models(dbt_manifest *m)
{
    const pl_project *p = m->p;
    macro_index ix = {0};
    bool *seen;
    size_t *stack;

    for (size_t f = 0; f < p->nmacros; f++)
        scan_macros(p->macros[f].text, &ix);
    index_build(&ix);
    seen = xcalloc(ix.n + 1, sizeof(bool));
    stack = xcalloc(ix.n + 1, sizeof(size_t));
    for (size_t k = 0; k < p->nmodels; k++)
        fingerprint(m, &ix, seen, stack, m->order[k]);
    free(seen);
    free(stack);
    index_free(&ix);
}

void dbt_fingerprint_extend(const char *fp, const char *text, char *out)
{
    unsigned long long h = FNV_BASIS;

    fnv(&h, fp);
    fnv(&h, text);
    snprintf(out, 17, "%016llx", h);
}
