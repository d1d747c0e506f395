/*
 * select.c - see select.h.
 */
#include "pipeline/select.h"
#include "common/xalloc.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SELECT_MAX_DEPTH 16

typedef struct {
    const pl_project *p;
    const graph *g;
    cs_error *err;
    int depth;
} sel_ctx;

static cs_result eval_text(sel_ctx *c, const char *text, bool *out);
static cs_result eval_def(sel_ctx *c, const pv *def, bool *out);

static bool *new_set(const sel_ctx *c)
{
    return xcalloc(c->p->nmodels, sizeof(bool));
}

static bool enabled(const pl_model *m)
{
    const pv *e = pv_get(m->config, "enabled");
    return !e || e->type != PV_BOOL || e->b;
}

static bool match_fqn(const sel_ctx *c, const pl_model *m, const char *value)
{
    const char *pkg = c->p->packages[m->package].name;
    char fqn[1024];
    size_t n;

    if (fnmatch(value, m->name, 0) == 0 || strcmp(value, pkg) == 0)
        return true;
    /* package.folder.model: the dotted path of the file below its package */
    n = (size_t)snprintf(fqn, sizeof(fqn), "%s.%s", pkg, m->relpath);
    if (n >= sizeof(fqn))
        return false;
    if (n > 4 && strcmp(fqn + n - 4, ".sql") == 0)
        fqn[n - 4] = '\0';
    for (char *s = fqn; *s; s++)
        if (*s == '/')
            *s = '.';
    /* drop the model-path folder ("models") from the fqn */
    {
        const char *mp = c->p->packages[m->package].model_paths[0];
        size_t pl = strlen(pkg), ml = strlen(mp);
        if (strncmp(fqn + pl + 1, mp, ml) == 0 && fqn[pl + 1 + ml] == '.')
            memmove(fqn + pl + 1, fqn + pl + 2 + ml, strlen(fqn + pl + 2 + ml) + 1);
    }
    n = strlen(value);
    return fnmatch(value, fqn, 0) == 0 ||
           (strncmp(fqn, value, n) == 0 && (fqn[n] == '.' || fqn[n] == '\0'));
}

static bool match_path(const pl_model *m, const char *value)
{
    char v[1024];
    size_t n;

    while (value[0] == '.' && value[1] == '/')
        value += 2;
    snprintf(v, sizeof(v), "%s", value);
    n = strlen(v);
    while (n > 0 && v[n - 1] == '/')
        v[--n] = '\0';
    if (n == 0)
        return true;
    return fnmatch(v, m->relpath, 0) == 0 ||
           (strncmp(m->relpath, v, n) == 0 && (m->relpath[n] == '/' || m->relpath[n] == '\0'));
}

static bool match_tag(const pl_model *m, const char *value)
{
    const pv *tags = pv_get(m->config, "tags");
    for (size_t i = 0; tags && tags->type == PV_LIST && i < tags->n; i++)
        if (pv_s(tags->items[i]) && fnmatch(value, tags->items[i]->s, 0) == 0)
            return true;
    return false;
}

/*
 * Whether m reads a source matching value: "source_name" or
 * "source_name.table_name" (* wildcards), as dbt's source: method names
 * them.  The models so matched are the source's children: see eval_atom.
 */
static bool reads_source(const pl_project *p, const pl_model *m, const char *value)
{
    for (size_t k = 0; k < m->nsource_refs; k++) {
        const pl_source *src = &p->sources[m->source_refs[k]];
        char full[1024];
        snprintf(full, sizeof(full), "%s.%s", src->source_name, src->table_name);
        if (fnmatch(value, src->source_name, 0) == 0 || fnmatch(value, full, 0) == 0)
            return true;
    }
    return false;
}

/* one atom without graph operators: method:value */
static cs_result eval_method(sel_ctx *c, const char *method, const char *value, bool *out)
{
    const pl_project *p = c->p;

    if (strcmp(method, "selector") == 0) {
        const pv *def = pv_get(p->selectors, value);
        if (!def)
            return cs_fail(c->err, CS_INVALID, "unknown selector \"%s\" (not in selectors.yml)",
                           value);
        return eval_def(c, def, out);
    }
    if (strcmp(method, "name") != 0 && strcmp(method, "fqn") != 0 && strcmp(method, "tag") != 0 &&
        strcmp(method, "path") != 0 && strcmp(method, "file") != 0 &&
        strcmp(method, "package") != 0 && strncmp(method, "config.", 7) != 0 &&
        strcmp(method, "source") != 0)
        return cs_fail(c->err, CS_INVALID,
                       "unsupported selector method \"%s\" in \"%s:%s\" (supported: name, fqn, "
                       "tag, path, file, package, config.KEY, source, selector)",
                       method, method, value);
    for (size_t i = 0; i < p->nmodels; i++) {
        const pl_model *m = &p->models[i];
        bool hit = false;
        if (strcmp(method, "name") == 0)
            hit = fnmatch(value, m->name, 0) == 0;
        else if (strcmp(method, "fqn") == 0)
            hit = match_fqn(c, m, value);
        else if (strcmp(method, "tag") == 0)
            hit = match_tag(m, value);
        else if (strcmp(method, "path") == 0)
            hit = match_path(m, value);
        else if (strcmp(method, "file") == 0)
            hit =
                fnmatch(value, strrchr(m->relpath, '/') ? strrchr(m->relpath, '/') + 1 : m->relpath,
                        0) == 0;
        else if (strcmp(method, "package") == 0)
            hit = strcmp(value, p->packages[m->package].name) == 0;
        else if (strcmp(method, "source") == 0)
            hit = reads_source(p, m, value);
        else {
            const pv *cv = pv_get(m->config, method + 7);
            hit = cv && pv_s(cv) && strcmp(cv->s, value) == 0;
            if (cv && cv->type == PV_BOOL)
                hit = strcmp(value, cv->b ? "true" : "false") == 0;
        }
        if (hit)
            out[i] = true;
    }
    return CS_OK;
}

/* applies +/@ operators to the atom's own matches */
static void apply_ops(const sel_ctx *c, bool *set, bool at, int up, int down)
{
    bool *start = new_set(c);
    memcpy(start, set, c->p->nmodels * sizeof(bool));
    if (at) {
        graph_closure(c->g, start, false, -1, set);
        memcpy(start, set, c->p->nmodels * sizeof(bool));
        graph_closure(c->g, start, true, -1, set);
    } else {
        if (up)
            graph_closure(c->g, start, true, up, set);
        if (down)
            graph_closure(c->g, start, false, down, set);
    }
    free(start);
}

/* up/down: 0 none, -1 unlimited, N depth */
static cs_result eval_atom(sel_ctx *c, const char *atom, bool *out)
{
    char a[512], *v, *colon, *plus;
    bool at = false;
    int up = 0, down = 0;
    const char *method = NULL;

    if (strlen(atom) >= sizeof(a))
        return cs_fail(c->err, CS_INVALID, "selector \"%.40s...\" is too long", atom);
    strcpy(a, atom);
    v = a;
    if (*v == '@') {
        at = true;
        v++;
    } else {
        char *q = v;
        while (isdigit((unsigned char)*q))
            q++;
        if (*q == '+') {
            up = q == v ? -1 : atoi(v);
            v = q + 1;
        }
    }
    plus = strrchr(v, '+');
    if (plus) {
        char *q = plus + 1;
        while (isdigit((unsigned char)*q))
            q++;
        if (*q != '\0')
            return cs_fail(c->err, CS_INVALID, "invalid selector \"%s\"", atom);
        down = plus[1] ? atoi(plus + 1) : -1;
        *plus = '\0';
    }
    colon = strchr(v, ':');
    if (colon) {
        *colon = '\0';
        method = v;
        v = colon + 1;
    }
    if (!*v)
        return cs_fail(c->err, CS_INVALID, "invalid selector \"%s\": nothing to match", atom);
    /* dbt infers path: for a value that looks like one */
    if (!method && (strchr(v, '/') || (strlen(v) > 4 && strcmp(v + strlen(v) - 4, ".sql") == 0)))
        method = "path";
    /* source:x names a source, which is no model: alone it selects nothing,
     * x+N the models that read it (depth 1) and theirs down to depth N */
    if (method && strcmp(method, "source") == 0) {
        if (down == 0)
            return CS_OK;
        down = down > 0 ? down - 1 : -1;
        up = 0;
        if (down == 0 && !at) {
            bool *direct = new_set(c);
            cs_result rc = eval_method(c, method, v, direct);
            for (size_t i = 0; i < c->p->nmodels; i++)
                out[i] = out[i] || direct[i];
            free(direct);
            return rc;
        }
    }
    bool *set = new_set(c);
    cs_result rc = eval_method(c, method ? method : "fqn", v, set);
    if (rc == CS_OK) {
        apply_ops(c, set, at, up, down);
        for (size_t i = 0; i < c->p->nmodels; i++)
            out[i] = out[i] || set[i];
    }
    free(set);
    return rc;
}

/* a term: atoms joined by commas, intersected */
static cs_result eval_term(sel_ctx *c, const char *term, bool *out)
{
    char tb[1024], *save = NULL, *tok;
    bool *acc = NULL;
    cs_result rc = CS_OK;

    if (strlen(term) >= sizeof(tb))
        return cs_fail(c->err, CS_INVALID, "selector \"%.40s...\" is too long", term);
    strcpy(tb, term);
    for (tok = strtok_r(tb, ",", &save); tok && rc == CS_OK; tok = strtok_r(NULL, ",", &save)) {
        bool *one = new_set(c);
        rc = eval_atom(c, tok, one);
        if (!acc) {
            acc = one;
        } else {
            for (size_t i = 0; i < c->p->nmodels; i++)
                acc[i] = acc[i] && one[i];
            free(one);
        }
    }
    if (rc == CS_OK && acc)
        for (size_t i = 0; i < c->p->nmodels; i++)
            out[i] = out[i] || acc[i];
    free(acc);
    return rc;
}

static cs_result eval_text(sel_ctx *c, const char *text, bool *out)
{
    const char *s = text;
    char term[1024];
    cs_result rc = CS_OK;

    while (*s && rc == CS_OK) {
        size_t n;
        while (isspace((unsigned char)*s))
            s++;
        n = strcspn(s, " \t\n");
        if (n == 0)
            break;
        if (n >= sizeof(term))
            return cs_fail(c->err, CS_INVALID, "selector \"%.40s...\" is too long", s);
        memcpy(term, s, n);
        term[n] = '\0';
        rc = eval_term(c, term, out);
        s += n;
    }
    return rc;
}

/* a selectors.yml definition: a string, {method, value, parents, children},
 * {union: [...]}, {intersection: [...]}, {exclude: [...]} */
static cs_result eval_def(sel_ctx *c, const pv *def, bool *out)
{
    cs_result rc = CS_OK;

    if (++c->depth > SELECT_MAX_DEPTH) {
        c->depth--;
        return cs_fail(c->err, CS_INVALID, "selectors.yml: selectors nest too deep (a loop?)");
    }
    if (pv_s(def)) {
        rc = eval_text(c, def->s, out);
    } else if (def && def->type == PV_MAP &&
               (pv_get(def, "union") || pv_get(def, "intersection"))) {
        bool inter = pv_get(def, "intersection") != NULL;
        const pv *l = pv_get(def, inter ? "intersection" : "union");
        bool *acc = new_set(c), *excl = new_set(c);
        bool first = true;
        for (size_t i = 0; l && l->type == PV_LIST && i < l->n && rc == CS_OK; i++) {
            const pv *item = l->items[i];
            if (pv_get(item, "exclude")) {
                const pv *ex = pv_get(item, "exclude");
                for (size_t k = 0; ex->type == PV_LIST && k < ex->n && rc == CS_OK; k++)
                    rc = eval_def(c, ex->items[k], excl);
                continue;
            }
            bool *one = new_set(c);
            rc = eval_def(c, item, one);
            for (size_t k = 0; k < c->p->nmodels; k++)
                acc[k] = inter ? (first ? one[k] : acc[k] && one[k]) : acc[k] || one[k];
            first = false;
            free(one);
        }
        for (size_t k = 0; rc == CS_OK && k < c->p->nmodels; k++)
            out[k] = out[k] || (acc[k] && !excl[k]);
        free(acc);
        free(excl);
    } else if (def && def->type == PV_MAP && def->n == 1 && !pv_get(def, "method") &&
               !pv_get(def, "exclude")) {
        /* the key-value form: {tag: base} is {method: tag, value: base} */
        char vbuf[256];
        const pv *value = def->items[0];
        bool *set = new_set(c);
        if (pv_s(value))
            snprintf(vbuf, sizeof(vbuf), "%s", value->s);
        else if (value->type == PV_INT)
            snprintf(vbuf, sizeof(vbuf), "%lld", value->i);
        else
            rc = cs_fail(c->err, CS_INVALID, "selectors.yml:%d: \"%s\" needs a value", def->line,
                         def->keys[0]);
        if (rc == CS_OK)
            rc = eval_method(c, def->keys[0], vbuf, set);
        for (size_t k = 0; rc == CS_OK && k < c->p->nmodels; k++)
            out[k] = out[k] || set[k];
        free(set);
    } else if (def && def->type == PV_MAP && pv_get(def, "method")) {
        const char *method = pv_gets(def, "method");
        const pv *value = pv_get(def, "value");
        char vbuf[256];
        bool *set = new_set(c);
        if (!method || !value)
            rc = cs_fail(c->err, CS_INVALID, "selectors.yml:%d: \"method\" and \"value\" needed",
                         def->line);
        if (rc == CS_OK) {
            if (pv_s(value))
                snprintf(vbuf, sizeof(vbuf), "%s", value->s);
            else
                snprintf(vbuf, sizeof(vbuf), "%lld", value->i);
            rc = eval_method(c, method, vbuf, set);
        }
        if (rc == CS_OK) {
            int up = pv_truthy(pv_get(def, "parents")) ? -1 : 0;
            int down = pv_truthy(pv_get(def, "children")) ? -1 : 0;
            if (pv_get(def, "parents_depth"))
                up = (int)pv_get(def, "parents_depth")->i;
            if (pv_get(def, "children_depth"))
                down = (int)pv_get(def, "children_depth")->i;
            apply_ops(c, set, pv_truthy(pv_get(def, "childrens_parents")), up, down);
            for (size_t k = 0; k < c->p->nmodels; k++)
                out[k] = out[k] || set[k];
        }
        free(set);
    } else {
        rc = cs_fail(c->err, CS_INVALID, "selectors.yml:%d: unsupported selector definition",
                     def ? def->line : 0);
    }
    c->depth--;
    return rc;
}

static bool blank(const char *s)
{
    if (!s)
        return true;
    while (isspace((unsigned char)*s))
        s++;
    return *s == '\0';
}

cs_result select_models(const pl_project *p, const graph *g, const char *select,
                        const char *exclude, bool *out, cs_error *err)
{
    sel_ctx c = {.p = p, .g = g, .err = err};
    bool *ex = new_set(&c);
    cs_result rc = CS_OK;

    memset(out, 0, p->nmodels * sizeof(bool));
    if (blank(select)) {
        for (size_t i = 0; i < p->nmodels; i++)
            out[i] = true;
    } else {
        rc = eval_text(&c, select, out);
    }
    if (rc == CS_OK && !blank(exclude))
        rc = eval_text(&c, exclude, ex);
    for (size_t i = 0; i < p->nmodels; i++)
        out[i] = rc == CS_OK && out[i] && !ex[i] && enabled(&p->models[i]);
    free(ex);
    return rc;
}
