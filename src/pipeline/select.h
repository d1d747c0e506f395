/*
 * select.h - dbt's node selection syntax over a loaded project.
 *
 * A selection is a space-separated union of terms; a term is a
 * comma-separated intersection of atoms; an atom is
 *     [@][N]+?[method:]value[+[N]]
 * with methods name (the default: a model name, a package name or a dotted
 * fqn, with * wildcards; a value with "/" or ending in ".sql" is a path,
 * as dbt infers), tag:, path:, package:, config.KEY:, source: (the models
 * that read a source: "source:s+" or "source:s.t+N"; alone it selects
 * nothing, a source being no model) and selector: (a definition from
 * selectors.yml: a string, {method, value, ...}, the key-value form
 * {tag: base}, union, intersection, exclude).  "+x" adds x's ancestors,
 * "x+" its descendants (N limits the depth), "@x" its descendants and their
 * ancestors.  Models disabled by config are never selected.
 */
#ifndef CS_SELECT_H
#define CS_SELECT_H

#include <stdbool.h>

#include "pipeline/graph.h"
#include "pipeline/project.h"
#include "common/result.h"

/*
 * Sets out[i] (p->nmodels entries) for each model selected by `select`
 * (NULL or empty: every model) and not by `exclude` (NULL or empty:
 * nothing).  Returns CS_INVALID with a message naming the atom for a
 * malformed selection, an unknown method or an unknown selector.
 */
cs_result select_models(const pl_project *p, const graph *g, const char *select,
                        const char *exclude, bool *out, cs_error *err) CS_MUST_CHECK;

#endif
