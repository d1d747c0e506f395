/*
 * graph.c - see graph.h.
 */
#include "pipeline/graph.h"
#include "common/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

graph *graph_new(size_t n)
{
    graph *g = xcalloc(1, sizeof(*g));
    g->n = n;
    g->nup = xcalloc(n, sizeof(size_t));
    g->ndown = xcalloc(n, sizeof(size_t));
    g->up = xcalloc(n, sizeof(size_t *));
    g->down = xcalloc(n, sizeof(size_t *));
    return g;
}

void graph_free(graph *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++) {
        free(g->up[i]);
        free(g->down[i]);
    }
    free(g->up);
    free(g->down);
    free(g->nup);
    free(g->ndown);
    free(g);
}

static void push(size_t **arr, size_t *n, size_t v)
{
    XGROW(*arr, *n);
    (*arr)[(*n)++] = v;
}

void graph_add_edge(graph *g, size_t from, size_t to)
{
    for (size_t i = 0; i < g->nup[to]; i++)
        if (g->up[to][i] == from)
            return;
    push(&g->up[to], &g->nup[to], from);
    push(&g->down[from], &g->ndown[from], to);
}

/* depth-first search from node for a path back to it; fills path */
static bool find_cycle(const graph *g, size_t node, int *state, size_t *path, size_t *len)
{
    state[node] = 1;
    path[(*len)++] = node;
    for (size_t i = 0; i < g->ndown[node]; i++) {
        size_t next = g->down[node][i];
        if (state[next] == 1) {
            /* keep only the part of the path that forms the cycle */
            size_t start = 0;
            while (path[start] != next)
                start++;
            memmove(path, path + start, (*len - start) * sizeof(size_t));
            *len -= start;
            path[(*len)++] = next;
            return true;
        }
        if (state[next] == 0 && find_cycle(g, next, state, path, len))
            return true;
    }
    state[node] = 2;
    (*len)--;
    return false;
}

static cs_result report_cycle(const graph *g, const size_t *indeg, graph_name_fn name, void *ud,
                              cs_error *err)
{
    int *state = xcalloc(g->n, sizeof(int));
    size_t *path = xcalloc(g->n + 1, sizeof(size_t));
    size_t len = 0;
    char msg[CS_ERROR_MAX];
    size_t off;

    /* nodes that never became ready are on or behind a cycle */
    for (size_t i = 0; i < g->n; i++) {
        if (indeg[i] > 0 && state[i] == 0) {
            len = 0;
            if (find_cycle(g, i, state, path, &len))
                break;
        }
    }
    off = (size_t)snprintf(msg, sizeof(msg), "dependency cycle: ");
    for (size_t i = 0; i < len && off < sizeof(msg); i++)
        off += (size_t)snprintf(msg + off, sizeof(msg) - off, "%s%s", i ? " -> " : "",
                                name(ud, path[i]));
    free(state);
    free(path);
    return cs_fail(err, CS_INVALID, "%s", msg);
}

cs_result graph_order(const graph *g, size_t *order, graph_name_fn name, void *ud, cs_error *err)
{
    size_t *indeg = xcalloc(g->n, sizeof(size_t));
    bool *done = xcalloc(g->n, sizeof(bool));
    size_t k = 0;
    cs_result rc = CS_OK;

    for (size_t i = 0; i < g->n; i++)
        indeg[i] = g->nup[i];
    /* Kahn's algorithm, taking the lowest ready index each round: O(n^2)
     * in the worst case, which for projects of hundreds of models is
     * nothing next to one SQL statement */
    while (k < g->n) {
        size_t pick = g->n;
        for (size_t i = 0; i < g->n; i++) {
            if (!done[i] && indeg[i] == 0) {
                pick = i;
                break;
            }
        }
        if (pick == g->n) {
            rc = report_cycle(g, indeg, name, ud, err);
            break;
        }
        done[pick] = true;
        order[k++] = pick;
        for (size_t i = 0; i < g->ndown[pick]; i++)
            indeg[g->down[pick][i]]--;
    }
    free(indeg);
    free(done);
    return rc;
}

void graph_closure(const graph *g, const bool *start, bool up, int depth, bool *set)
{
    size_t *frontier = xcalloc(g->n, sizeof(size_t)), *next = xcalloc(g->n, sizeof(size_t));
    bool *seen = xcalloc(g->n, sizeof(bool));
    size_t nf = 0, nn;

    for (size_t i = 0; i < g->n; i++) {
        if (start[i]) {
            seen[i] = true;
            frontier[nf++] = i;
        }
    }
    for (int d = 0; nf > 0 && (depth < 0 || d < depth); d++) {
        nn = 0;
        for (size_t f = 0; f < nf; f++) {
            size_t node = frontier[f];
            size_t cnt = up ? g->nup[node] : g->ndown[node];
            size_t *adj = up ? g->up[node] : g->down[node];
            for (size_t i = 0; i < cnt; i++) {
                if (!seen[adj[i]]) {
                    seen[adj[i]] = true;
                    set[adj[i]] = true;
                    next[nn++] = adj[i];
                }
            }
        }
        memcpy(frontier, next, nn * sizeof(size_t));
        nf = nn;
    }
    free(frontier);
    free(next);
    free(seen);
}
