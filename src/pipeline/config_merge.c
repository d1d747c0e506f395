/*
 * config_merge.c - dbt's merge of one config map into another
 * (project_config_merge, declared in project.h): tags and hooks add up,
 * every other key replaces, '+' prefixes and "pre-hook" spellings are
 * normalised.  Its own file so that the project loader and the seeds both
 * use it without calling into each other (scripts/check-cycles).
 */
#include <stdio.h>
#include <string.h>

#include "pipeline/project.h"

static bool is_additive(const char *key)
{
    return strcmp(key, "tags") == 0 || strcmp(key, "pre_hook") == 0 ||
           strcmp(key, "post_hook") == 0;
}

static void norm_key(const char *key, char *out, size_t n)
{
    if (key[0] == '+')
        key++;
    snprintf(out, n, "%s", key);
    if (strcmp(out, "pre-hook") == 0)
        snprintf(out, n, "pre_hook");
    else if (strcmp(out, "post-hook") == 0)
        snprintf(out, n, "post_hook");
}

void project_config_merge(pv *dst, const pv *src)
{
    char key[128];

    if (!src || src->type != PV_MAP)
        return;
    for (size_t i = 0; i < src->n; i++) {
        const pv *v = src->items[i];
        norm_key(src->keys[i], key, sizeof(key));
        if (is_additive(key)) {
            pv *cur = pv_get(dst, key);
            if (!cur) {
                cur = pv_new(PV_LIST);
                pv_set(dst, key, cur);
            }
            if (v->type == PV_LIST) {
                for (size_t k = 0; k < v->n; k++)
                    pv_push(cur, pv_copy(v->items[k]));
            } else if (v->type != PV_NULL) {
                pv_push(cur, pv_copy(v));
            }
        } else {
            pv_set(dst, key, pv_copy(v));
        }
    }
}
