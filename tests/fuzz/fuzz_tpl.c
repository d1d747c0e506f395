/*
 * fuzz_tpl.c - libFuzzer harness for the template engine: compile, then
 * render with a small env (values of every type, a native, strict mode on
 * for half the inputs), under a 64 KiB output cap so that the growth limits
 * (string +, ~, *, replace, lists, dicts) are reached quickly.
 *
 * Checks, besides what ASan and UBSan see (leaks included: a reference
 * cycle that escaped the refusal would show here): every failure is
 * CS_INVALID with a "t.sql:" message, and a template that compiled once
 * compiles again to the same blocks.  Built by `make fuzz`, run by
 * scripts/fuzz (seed corpus: tests/fuzz/corpus/tpl/).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "template/tpl.h"

static cs_result fz_upper(void *ud, tpl_call *call, const tpl_args *args, tpl_value **out,
                          cs_error *err)
{
    tpl_value *x = tpl_arg(args, 0, NULL);
    buf b;

    buf_init(&b, 1 << 16);
    tpl_to_text(x, &b);
    *out = tpl_strn(b.data ? b.data : "", b.len);
    buf_free(&b);
    return CS_OK;
}

static void fz_log(void *ud, const char *where, const char *msg)
{
    (void)ud;
    if (!where || !msg)
        abort();
}

static tpl_env *fz_env(bool strict)
{
    tpl_env *env = tpl_env_new();
    tpl_value *l = tpl_list_new(), *d = tpl_dict_new(), *rel = tpl_object_new("\"s\".\"t\"");

    tpl_list_push(l, tpl_int(1));
    tpl_list_push(l, tpl_str("two"));
    tpl_list_push(l, tpl_float(3.5));
    tpl_dict_set(d, "k", tpl_str("v"));
    tpl_dict_set(d, "n", tpl_none());
    tpl_dict_set(rel, "schema", tpl_str("s"));
    tpl_list_set_attr(l, "name", tpl_str("col"));
    tpl_env_set(env, "l", l);
    tpl_env_set(env, "d", d);
    tpl_env_set(env, "this", rel);
    tpl_env_set(env, "n", tpl_int(3));
    tpl_env_set(env, "s", tpl_str("a b,c"));
    tpl_env_set(env, "f", tpl_func_new("f", fz_upper, NULL));
    tpl_env_set_strict_undefined(env, strict);
    tpl_env_set_log(env, fz_log, NULL);
    return env;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *src;
    cs_error err = {0};
    tpl_template *t, *again;
    tpl_env *env;
    buf out;
    size_t i;

    if (size > 1 << 16)
        return 0;
    src = malloc(size + 1);
    memcpy(src, data, size);
    src[size] = '\0'; /* the engine takes C strings: text after a NUL is not seen */
    t = tpl_compile("t.sql", src, &err);
    if (!t) {
        if (err.code != CS_INVALID || strncmp(err.msg, "t.sql", 5) != 0)
            abort();
        free(src);
        return 0;
    }
    again = tpl_compile("t.sql", src, &err);
    if (!again || tpl_block_count(again) != tpl_block_count(t))
        abort();
    for (i = 0; i < tpl_block_count(t); i++)
        if (strcmp(tpl_block_get(t, i)->name, tpl_block_get(again, i)->name) != 0)
            abort();
    tpl_template_free(again);

    env = fz_env(size & 1);
    tpl_env_add_macros(env, t, "pkg");
    buf_init(&out, 1 << 16);
    if (tpl_render(t, env, NULL, &out, &err) != CS_OK &&
        (err.code != CS_INVALID || strncmp(err.msg, "t.sql", 5) != 0))
        abort();
    buf_free(&out);
    tpl_env_free(env);
    tpl_template_free(t);
    free(src);
    return 0;
}
