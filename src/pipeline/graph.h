/*
 * graph.h - the model dependency graph: nodes are model indexes, an edge
 * runs from a model to each model that depends on it.  Ordering, cycle
 * detection (with the cycle's path in the message) and the ancestor and
 * descendant closures that selection's +model / model+ use.
 *
 * Ownership: graph_new returns a graph the caller frees with graph_free.
 */
#ifndef CS_GRAPH_H
#define CS_GRAPH_H

#include <stdbool.h>
#include <stddef.h>

#include "common/result.h"

typedef struct {
    size_t n;
    size_t *nup; /* per node: number of upstream nodes */
    size_t **up; /* per node: the nodes it depends on */
    size_t *ndown;
    size_t **down; /* per node: the nodes that depend on it */
} graph;

graph *graph_new(size_t n);
void graph_free(graph *g);
/* records that node `to` depends on node `from` (duplicates are ignored) */
void graph_add_edge(graph *g, size_t from, size_t to);

/* names nodes in messages */
typedef const char *(*graph_name_fn)(void *ud, size_t node);

/*
 * Fills order (n entries) with a topological order, upstream first; among
 * nodes that are ready together, the lower index first (deterministic).  On
 * a cycle returns CS_INVALID with "dependency cycle: a -> b -> c -> a".
 */
cs_result graph_order(const graph *g, size_t *order, graph_name_fn name, void *ud,
                      cs_error *err) CS_MUST_CHECK;

/*
 * Adds to set every node reachable from a node already in start, going
 * upstream (up=true) or downstream, at most depth steps (depth < 0: no
 * limit).  The start nodes themselves stay as they are in set.
 */
void graph_closure(const graph *g, const bool *start, bool up, int depth, bool *set);

#endif
