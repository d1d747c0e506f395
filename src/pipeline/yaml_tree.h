/*
 * yaml_tree.h - a small value tree (null, bool, int, float, string,
 * list, map) for the pipeline's YAML files and model configs, loaded with
 * libyaml.
 *
 * The tree is the pipeline's own, not the template engine's: project
 * loading, selection and SQL generation work (and are unit-tested) without
 * the engine; dbt_ctx converts to and from tpl values where templates need
 * them.
 *
 * Ownership: a pv owns its children and strings.  pv_push/pv_set take the
 * value they are given; pv_get returns a borrowed pointer.  Every value
 * remembers the line it came from (0 when built in code) so that messages
 * can name file:line.
 */
#ifndef CS_PIPELINE_YAML_H
#define CS_PIPELINE_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/result.h"

typedef enum { PV_NULL, PV_BOOL, PV_INT, PV_FLOAT, PV_STR, PV_LIST, PV_MAP } pv_type;

typedef struct pv pv;
struct pv {
    pv_type type;
    int line;
    bool b;
    long long i;
    double f;
    char *s;     /* PV_STR */
    size_t n;    /* PV_LIST, PV_MAP: number of items */
    size_t cap;  /* allocated items */
    pv **items;  /* list items or map values */
    char **keys; /* PV_MAP keys, in insertion order */
};

pv *pv_new(pv_type type);
pv *pv_str(const char *s);
pv *pv_strn(const char *s, size_t n);
pv *pv_bool(bool b);
pv *pv_int(long long i);
void pv_free(pv *v);
pv *pv_copy(const pv *v);

void pv_push(pv *list, pv *item);               /* takes item */
void pv_set(pv *map, const char *key, pv *val); /* takes val; replaces an existing key */
pv *pv_get(const pv *map, const char *key);     /* borrowed; NULL when absent or not a map */
/* the string of a PV_STR, else NULL */
const char *pv_s(const pv *v);
/* the string of map[key] when it is a string, else NULL */
const char *pv_gets(const pv *map, const char *key);
bool pv_truthy(const pv *v);

/*
 * Parses YAML text (one document; an empty document gives a PV_NULL).
 * Plain scalars become null (~, null, empty), booleans (true/false in any
 * case), integers, floats or strings; quoted scalars are always strings.
 * Anchors and aliases are rejected.  Errors are CS_INVALID "NAME:LINE:COL: ...".
 */
cs_result pv_parse_yaml(const char *name, const char *text, size_t len, pv **out,
                        cs_error *err) CS_MUST_CHECK;
/* reads and parses a file; CS_PERMANENT when it cannot be read */
cs_result pv_load_yaml_file(const char *path, pv **out, cs_error *err) CS_MUST_CHECK;

/* canonical JSON-like text (maps in insertion order), for fingerprints and messages */
bool pv_to_text(const pv *v, buf *out);

/* reads a whole file into *out (caller frees); false with errno set on failure */
bool pv_read_file(const char *path, char **out, size_t *len);

#endif
