/*
 * fuzz_yaml.c - libFuzzer harness for the pipeline's YAML loader
 * (src/pipeline/yaml_tree.c, what reads dbt_project.yml, packages.yml and
 * property files): parse, then render the tree with pv_to_text, copy it
 * and render the copy, which must give the same text.
 *
 * Besides what ASan and UBSan see (leaks included): a failure is CS_INVALID
 * with a "f.yml:" message and no tree; a success gives a tree.  Built by
 * `make fuzz`, run by scripts/fuzz (seed corpus: tests/fuzz/corpus/yaml/).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/yaml_tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pv *v = NULL, *copy;
    cs_error err = {0};
    buf a, b;

    if (size > 1 << 16)
        return 0;
    if (pv_parse_yaml("f.yml", (const char *)data, size, &v, &err) != CS_OK) {
        if (v || err.code != CS_INVALID || strncmp(err.msg, "f.yml", 5) != 0)
            abort();
        return 0;
    }
    if (!v)
        abort();
    buf_init(&a, 1 << 24);
    buf_init(&b, 1 << 24);
    copy = pv_copy(v);
    if (pv_to_text(v, &a) != pv_to_text(copy, &b) || a.len != b.len ||
        (a.len && memcmp(a.data, b.data, a.len) != 0))
        abort();
    buf_free(&a);
    buf_free(&b);
    pv_free(copy);
    pv_free(v);
    return 0;
}
