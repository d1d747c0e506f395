/*
 * dbt_fingerprint.c - each model's fingerprint (docs/pipeline.md,
 * "Fingerprints"): a hash of what defines the model, computed once at
 * parse time in dependency order, compared by the runner with the one it
 * stored to decide a rebuild.
 */
#include "pipeline/dbt_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/*
 * Which macro files a model can reach, for its fingerprint.  A file is
 * reached when a macro it defines is called (NAME followed by "(") in the
 * model's source, its config (hooks), or a file already reached.  Per file,
 * not per macro, and by name, not by scope: a false positive only makes a
 * rebuild more likely, never less.
 */
typedef struct {
    char **names; /* macros the file defines */
    size_t n;
} macro_file_names;

static bool ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* the macro names defined in text ({% macro NAME( ... ) %}) */
static void scan_macro_names(const char *text, macro_file_names *out)
{
    memset(out, 0, sizeof(*out));
    for (const char *t = strstr(text, "{%"); t; t = strstr(t + 2, "{%")) {
        const char *q = t + 2, *e;
        if (*q == '-' || *q == '+')
            q++;
        q += strspn(q, " \t\r\n");
        if (strncmp(q, "macro", 5) != 0 || ident_char(q[5]))
            continue;
        q += 5;
        q += strspn(q, " \t\r\n");
        for (e = q; ident_char(*e); e++)
            ;
        if (e > q) {
            XGROW(out->names, out->n);
            out->names[out->n++] = xstrndup(q, (size_t)(e - q));
        }
    }
}

/* whether text calls name: NAME, then optional blanks, then "(" */
static bool calls(const char *text, const char *name)
{
    size_t l = strlen(name);
    for (const char *t = strstr(text, name); t; t = strstr(t + 1, name)) {
        const char *e = t + l;
        if ((t > text && ident_char(t[-1])) || ident_char(*e))
            continue;
        e += strspn(e, " \t\r\n");
        if (*e == '(')
            return true;
    }
    return false;
}

/* FNV-1a of s plus a separator, so that ("ab", "c") and ("a", "bc") differ */
static void fnv(unsigned long long *h, const char *s)
{
    for (; s && *s; s++) {
        *h ^= (unsigned char)*s;
        *h *= 1099511628211ULL;
    }
    *h ^= 0xff;
    *h *= 1099511628211ULL;
}

/* hashes the text of every macro file the model's texts reach */
static void hash_reached_macros(const dbt_manifest *m, const macro_file_names *mf,
                                const char *const *texts, size_t ntexts, unsigned long long *h)
{
    size_t nf = m->p->nmacros;
    bool *in = xcalloc(nf, sizeof(bool)), grew = true;

    while (grew) {
        grew = false;
        for (size_t f = 0; f < nf; f++) {
            for (size_t k = 0; !in[f] && k < mf[f].n; k++) {
                for (size_t t = 0; !in[f] && t < ntexts; t++)
                    in[f] = calls(texts[t], mf[f].names[k]);
                for (size_t g = 0; !in[f] && g < nf; g++)
                    in[f] = in[g] && calls(m->p->macros[g].text, mf[f].names[k]);
                grew = grew || in[f];
            }
        }
    }
    for (size_t f = 0; f < nf; f++)
        if (in[f])
            fnv(h, m->p->macros[f].text);
    free(in);
}

/*
 * A model's fingerprint: what defines it, not what it is run with.  Its
 * template source, the macro files it can reach, the env_var() values and
 * source() relations it read while parsing, its final config, contract
 * and constraints, and the fingerprints of the models it refs.  Var values
 * (--vars, DBT_BATCH_SIZE, project vars) are not part of it: they are
 * run-time input, so `--vars '{batch_size: 10}'` never forces a rebuild.
 */
static void fingerprint(dbt_manifest *m, const macro_file_names *mf, size_t i)
{
    dbt_node *nd = &m->nodes[i];
    const pl_model *pm = &m->p->models[i];
    unsigned long long h = 1469598103934665603ULL;
    const char *texts[2];
    buf b;

    buf_init(&b, 0);
    pv_to_text(nd->config, &b);
    fnv(&h, pm->sql);
    fnv(&h, nd->inputs);
    texts[0] = pm->sql;
    texts[1] = b.data ? b.data : "";
    hash_reached_macros(m, mf, texts, 2, &h);
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
    macro_file_names *mf = xcalloc(p->nmacros, sizeof(*mf));

    for (size_t f = 0; f < p->nmacros; f++)
        scan_macro_names(p->macros[f].text, &mf[f]);
    for (size_t k = 0; k < p->nmodels; k++)
        fingerprint(m, mf, m->order[k]);
    for (size_t f = 0; f < p->nmacros; f++) {
        for (size_t k = 0; k < mf[f].n; k++)
            free(mf[f].names[k]);
        free(mf[f].names);
    }
    free(mf);
}

void dbt_fingerprint_extend(const char *fp, const char *text, char *out)
{
    unsigned long long h = 1469598103934665603ULL;

    fnv(&h, fp);
    fnv(&h, text);
    snprintf(out, 17, "%016llx", h);
}
