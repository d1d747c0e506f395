/*
 * test_tpl.c - unit tests of the template engine: table-driven
 * {template, expected output} cases for every construct, the error cases
 * with their exact FILE:LINE:COL, and the native-function hooks the dbt
 * runner uses (call blocks, caller bodies, kwargs, error classes).
 */
#include "template/tpl.h"
#include "unit.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

/* ---- test natives ---- */

/* statement(name, fetch_result=False): records the rendered caller body
 * under its name in the dict ud */
static cs_result fake_statement(void *ud, tpl_call *call, const tpl_args *args, tpl_value **out,
                                cs_error *err)
{
    tpl_value *store = ud, *name = tpl_arg(args, 0, "name");
    buf body;
    cs_result r;

    buf_init(&body, 0);
    r = tpl_call_render_caller(call, &body, err);
    if (r != CS_OK) {
        buf_free(&body);
        return r;
    }
    tpl_dict_set(store, tpl_as_str(name) ? tpl_as_str(name) : "main",
                 tpl_strn(body.data ? body.data : "", body.len));
    buf_free(&body);
    *out = tpl_str("");
    return CS_OK;
}

/* config(**kwargs): records its keyword arguments in the dict ud */
static cs_result fake_config(void *ud, tpl_call *call, const tpl_args *args, tpl_value **out,
                             cs_error *err)
{
    tpl_value *store = ud;
    size_t i;

    for (i = 0; i < args->nkw; i++)
        tpl_dict_set(store, args->kwnames[i], tpl_ref(args->kw[i]));
    *out = tpl_str("");
    return CS_OK;
}

/* quote(x): "x" */
static cs_result fake_quote(void *ud, tpl_call *call, const tpl_args *args, tpl_value **out,
                            cs_error *err)
{
    buf b;

    buf_init(&b, 0);
    buf_putc(&b, '"');
    tpl_to_text(tpl_arg(args, 0, NULL), &b);
    buf_putc(&b, '"');
    *out = tpl_strn(b.data, b.len);
    buf_free(&b);
    return CS_OK;
}

static cs_result fake_transient(void *ud, tpl_call *call, const tpl_args *args, tpl_value **out,
                                cs_error *err)
{
    return cs_fail(err, CS_TRANSIENT, "connection lost");
}

static cs_result fake_raise(void *ud, tpl_call *call, const tpl_args *args, tpl_value **out,
                            cs_error *err)
{
    return cs_fail(err, CS_INVALID, "compilation error: %s",
                   tpl_as_str(tpl_arg(args, 0, NULL)) ? tpl_as_str(tpl_arg(args, 0, NULL)) : "");
}

/* where(): the FILE:LINE:COL of the call */
static cs_result fake_where(void *ud, tpl_call *call, const tpl_args *args, tpl_value **out,
                            cs_error *err)
{
    *out = tpl_str(tpl_call_where(call));
    return CS_OK;
}

/* invoke(f, x): calls a function value through tpl_call_value */
static cs_result fake_invoke(void *ud, tpl_call *call, const tpl_args *args, tpl_value **out,
                             cs_error *err)
{
    tpl_args rest = *args;

    rest.npos--;
    rest.pos++;
    return tpl_call_value(tpl_call_env(call), args->pos[0], &rest, out, err);
}

static tpl_value *statements, *configs;

/* a list with attributes, shaped like an agate column: [1, 2] with .name
 * and .values */
static tpl_value *col_value(void)
{
    tpl_value *col = tpl_list_new(), *vals = tpl_list_new();
    for (int i = 1; i <= 2; i++) {
        tpl_list_push(col, tpl_int(i));
        tpl_list_push(vals, tpl_int(i));
    }
    tpl_list_set_attr(col, "name", tpl_str("id"));
    tpl_list_set_attr(col, "values", vals);
    return col;
}

static tpl_env *test_env(void)
{
    tpl_env *env = tpl_env_new();
    tpl_value *adapter = tpl_dict_new(), *exceptions = tpl_dict_new();
    tpl_value *rel = tpl_object_new("\"public\".\"orders\"");
    tpl_value *users = tpl_list_new(), *u;

    tpl_env_set(env, "statement", tpl_func_new("statement", fake_statement, statements));
    tpl_env_set(env, "config", tpl_func_new("config", fake_config, configs));
    tpl_env_set(env, "where", tpl_func_new("where", fake_where, NULL));
    tpl_env_set(env, "invoke", tpl_func_new("invoke", fake_invoke, NULL));
    tpl_env_set(env, "flaky", tpl_func_new("flaky", fake_transient, NULL));
    tpl_dict_set(adapter, "quote", tpl_func_new("quote", fake_quote, NULL));
    tpl_env_set(env, "adapter", adapter);
    tpl_dict_set(exceptions, "raise_compiler_error",
                 tpl_func_new("raise_compiler_error", fake_raise, NULL));
    tpl_env_set(env, "exceptions", exceptions);
    tpl_dict_set(rel, "schema", tpl_str("public"));
    tpl_dict_set(rel, "name", tpl_str("orders"));
    tpl_env_set(env, "this", rel);
    tpl_env_set(env, "n", tpl_int(3));
    tpl_env_set(env, "pi", tpl_float(3.5));
    tpl_env_set(env, "name", tpl_str("World"));
    tpl_env_set(env, "empty", tpl_str(""));
    tpl_env_set(env, "nothing", tpl_none());
    u = tpl_dict_new();
    tpl_dict_set(u, "name", tpl_str("ann"));
    tpl_dict_set(u, "age", tpl_int(31));
    tpl_dict_set(u, "admin", tpl_bool(true));
    tpl_list_push(users, u);
    u = tpl_dict_new();
    tpl_dict_set(u, "name", tpl_str("Bob"));
    tpl_dict_set(u, "age", tpl_int(25));
    tpl_dict_set(u, "admin", tpl_bool(false));
    tpl_list_push(users, u);
    u = tpl_dict_new();
    tpl_dict_set(u, "name", tpl_str("cid"));
    tpl_dict_set(u, "age", tpl_int(40));
    tpl_list_push(users, u);
    tpl_env_set(env, "users", users);
    tpl_env_set(env, "col", col_value());
    return env;
}

/* renders src in a fresh test env; returns malloc'd output or NULL with err */
static char *render(const char *src, cs_error *err)
{
    tpl_template *t;
    tpl_env *env;
    buf out;
    cs_result r;

    t = tpl_compile("t.sql", src, err);
    if (!t)
        return NULL;
    env = test_env();
    buf_init(&out, 1 << 20);
    r = tpl_render(t, env, NULL, &out, err);
    tpl_env_free(env);
    tpl_template_free(t);
    if (r != CS_OK) {
        buf_free(&out);
        return NULL;
    }
    return buf_steal(&out);
}

typedef struct {
    const char *src;
    const char *want;
} tcase;

static void run_cases(const tcase *cases, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        cs_error err = {0};
        char *got = render(cases[i].src, &err);
        if (!got || strcmp(got, cases[i].want) != 0) {
            printf("  case %zu: %s\n    got:  %s\n    want: %s\n", i, cases[i].src,
                   got ? got : err.msg, cases[i].want);
            unit_failed_checks++;
        }
        free(got);
    }
}

#define RUN_CASES(arr) run_cases(arr, sizeof(arr) / sizeof(arr[0]))

static void test_text_and_output(void)
{
    static const tcase cases[] = {
        {"", ""},
        {"plain text\n", "plain text\n"},
        {"Hello {{ name }}!", "Hello World!"},
        {"{{ 1 }} {{ -2 }} {{ 1.5 }} {{ 2.0 }} {{ 1e20 }} {{ 0.1 }}", "1 -2 1.5 2.0 1e+20 0.1"},
        {"{{ true }} {{ False }} {{ none }} {{ None }}", "True False None None"},
        {"[{{ undefined_thing }}]", "[]"},
        {"{{ 'it''s' }}|{{ \"a\\tb\" }}|{{ 'q\\'s' }}", "its|a\tb|q's"},
        {"{{ [1, 'a', none, true] }}", "[1, 'a', None, True]"},
        {"{{ {'k': 1, 'j': [2]} }}", "{'k': 1, 'j': [2]}"},
        {"{{ (1, 2) }} {{ (1,) }} {{ () }}", "(1, 2) (1,) ()"},
        {"{{ \"it's\" ~ [\"it's\"]|string }}", "it's[\"it's\"]"},
        {"{{ this }}.{{ this.name }}", "\"public\".\"orders\".orders"},
        {"{# a comment #}x{# another\nline #}", "x"},
        {"{% raw %}{{ not rendered }}{% endraw %}", "{{ not rendered }}"},
        {"a\n{{ n }}\n", "a\n3\n"},
        {"{{ {'a': {'b': 1}} }}", "{'a': {'b': 1}}"},
    };
    RUN_CASES(cases);
}

static void test_whitespace_control(void)
{
    static const tcase cases[] = {
        {"a  {{- n }}  b", "a3  b"},
        {"a  {{ n -}}  b", "a  3b"},
        {"a \n {{- n -}} \n b", "a3b"},
        {"x\n{%- if true %}\ny\n{%- endif %}\nz", "x\ny\nz"},
        {"x\n{% if true -%}\n  y\n{%- endif %}\nz", "x\ny\nz"},
        {"a {#- c -#} b", "ab"},
        {"{% for i in [1,2,3] -%}\n  {{ i }}\n{%- endfor %}", "123"},
        {"{% for i in [1,2] %}\n{{ i }}\n{% endfor %}", "\n1\n\n2\n"},
        {"a  {%- raw -%}  {{x}}  {%- endraw -%}  b", "a{{x}}b"},
        {"a {{+ n +}} b", "a 3 b"},
    };
    RUN_CASES(cases);
}

static void test_expressions(void)
{
    static const tcase cases[] = {
        {"{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 ** 3 ** 2 }}", "7 9 64"},
        {"{{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }}", "3.5 3 -4 1 2"},
        {"{{ 1 + 1.5 }} {{ 'a' + 'b' }} {{ [1] + [2] }} {{ 'ab' * 2 }}", "2.5 ab [1, 2] abab"},
        {"{{ 'a' ~ 1 ~ none ~ true }}", "a1NoneTrue"},
        {"{{ 1 == 1.0 }} {{ 1 != 2 }} {{ 'a' < 'b' }} {{ 2 >= 3 }} {{ 2 <= 2 }}",
         "True True True False True"},
        {"{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }}",
         "True True True True"},
        {"{{ true and false }} {{ true or false }} {{ not true }} {{ not 1 == 2 }}",
         "False True False True"},
        {"{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ '' or none }}", "x b None"},
        {"{{ 'y' if n > 2 else 'n' }} {{ 'y' if n > 5 else 'n' }} [{{ 'y' if false }}]", "y n []"},
        {"{{ users[0].name }} {{ users[0]['age'] }} {{ users[-1].name }} {{ users.0.name }}",
         "ann 31 cid ann"},
        {"{{ 'abcdef'[1:3] }} {{ [1,2,3,4][1:] }} {{ [1,2,3][::-1] }} {{ 'abc'[-1] }}",
         "bc [2, 3, 4] [3, 2, 1] c"},
        {"{{ [1,2,3][:-1] }} {{ 'hello'[::2] }}", "[1, 2] hlo"},
        {"[{{ users[10] }}][{{ nope.attr.deeper }}][{{ users[0].nope }}]", "[][][]"},
        {"{{ {'a': 1}.a }} {{ {'a': 1}['a'] }}", "1 1"},
        {"{{ -n }} {{ +n }} {{ -pi }}", "-3 3 -3.5"},
        {"{{ 'a' 'b' }}", "ab"},
        {"{{ 10 - 2 - 3 }} {{ 2 * 3 % 4 }}", "5 2"},
    };
    RUN_CASES(cases);
}

static void test_tests(void)
{
    static const tcase cases[] = {
        {"{{ n is defined }} {{ zz is defined }} {{ zz is not defined }} {{ zz is undefined }}",
         "True False True True"},
        {"{{ nothing is none }} {{ n is none }} {{ zz is none }} {{ n is not none }}",
         "True False False True"},
        {"{{ name is string }} {{ n is string }} {{ n is number }} {{ pi is number }}",
         "True False True True"},
        {"{{ {} is mapping }} {{ [] is mapping }} {{ [] is iterable }} {{ 'x' is iterable }} "
         "{{ n is iterable }}",
         "True False True True False"},
        {"{{ 4 is even }} {{ 3 is odd }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(2) }}",
         "True True True False"},
        {"{{ 'ab' is lower }} {{ 'AB' is upper }} {{ n is eq 3 }} {{ n is gt 1 }}",
         "True True True True"},
        {"{{ config is callable }} {{ 1 is in [1] }} {{ true is boolean }}", "True True True"},
        {"{{ not zz is defined }}", "True"},
    };
    RUN_CASES(cases);
}

static void test_if_for(void)
{
    static const tcase cases[] = {
        {"{% if n > 5 %}a{% elif n > 2 %}b{% else %}c{% endif %}", "b"},
        {"{% if zz %}a{% elif false %}b{% else %}c{% endif %}", "c"},
        {"{% if [] %}a{% endif %}{% if [0] %}b{% endif %}{% if '' %}c{% endif %}", "b"},
        {"{% for u in users %}{{ u.name }}{% if not loop.last %}, {% endif %}{% endfor %}",
         "ann, Bob, cid"},
        {"{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
         "{{ loop.revindex0 }}{{ loop.length }}{{ loop.first }}{% endfor %}",
         "10323True21213False32103False"},
        {"{% for x in [] %}x{% else %}empty{% endfor %}", "empty"},
        {"{% for x in zz %}x{% else %}undef{% endfor %}", "undef"},
        {"{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}", "a=1;b=2;"},
        {"{% for k in {'a': 1, 'b': 2} %}{{ k }}{% endfor %}", "ab"},
        {"{% for a, b in [(1, 2), [3, 4]] %}{{ a + b }} {% endfor %}", "3 7 "},
        {"{% for x in range(5) if x is odd %}{{ x }}{{ loop.length }} {% endfor %}", "12 32 "},
        {"{% for i in range(2) %}{% for j in range(2) %}{{ loop.index }}{% endfor %}"
         "{{ loop.index }}|{% endfor %}",
         "121|122|"},
        {"{{ range(3) }} {{ range(1, 4) }} {{ range(5, 0, -2) }}", "[0, 1, 2] [1, 2, 3] [5, 3, 1]"},
        {"{% for x in [1, 2, 3] %}{{ loop.previtem }}-{{ loop.nextitem }} {% endfor %}",
         "-2 1-3 2- "},
    };
    RUN_CASES(cases);
}

static void test_set_and_scoping(void)
{
    static const tcase cases[] = {
        {"{% set x = 1 %}{% set y = x + 1 %}{{ x }}{{ y }}", "12"},
        {"{% set a, b = 1, 2 %}{{ a }}{{ b }}", "12"},
        {"{% set a, b = [3, 4] %}{{ a }}{{ b }}", "34"},
        {"{% set x %}block {{ n }}{% endset %}[{{ x }}]", "[block 3]"},
        {"{% set x = 1 %}{% for i in [1, 2] %}{% set x = i * 10 %}{{ x }} {% endfor %}{{ x }}",
         "10 20 1"},
        {"{% set ns = namespace(total=0, found=false) %}{% for i in [1, 2, 3] %}"
         "{% set ns.total = ns.total + i %}{% if i == 2 %}{% set ns.found = true %}{% endif %}"
         "{% endfor %}{{ ns.total }} {{ ns.found }}",
         "6 True"},
        {"{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}", "2"},
        /* a block set on a namespace's attribute (dbt_utils' singular tests) */
        {"{% set ns = namespace(msg='') %}{% for i in [1, 2] %}{% set ns.msg %}at {{ i }}"
         "{% endset %}{% endfor %}[{{ ns.msg }}]",
         "[at 2]"},
        {"{% set l = [] %}{% for i in range(3) %}{% do l.append(i) %}{% endfor %}{{ l }}",
         "[0, 1, 2]"},
        {"{% set name = 'local' %}{{ name }}", "local"},
        {"{% set d = {} %}{% do d.update({'a': 1}) %}{% set d2 = dict(d, b=2) %}{{ d2 }}",
         "{'a': 1, 'b': 2}"},
    };
    RUN_CASES(cases);
}

static void test_macros(void)
{
    static const tcase cases[] = {
        {"{% macro greet(who, greeting='Hello', punct=none) %}{{ greeting }} {{ who }}"
         "{{ punct if punct is not none else '.' }}{% endmacro %}"
         "{{ greet('Ann') }}|{{ greet('Bob', 'Hi') }}|{{ greet(punct='!', who='Cy') }}",
         "Hello Ann.|Hi Bob.|Hello Cy!"},
        {"{% macro a(x) %}<{{ b(x) }}>{% endmacro %}{% macro b(y) %}{{ y * 2 }}{% endmacro %}"
         "{{ a(4) }}",
         "<8>"},
        {"{% macro r(x) %}ignored{{ return(x + 1) }}more{% endmacro %}{{ r(1) + 1 }}", "3"},
        {"{% macro cols() %}{{ return(['a', 'b']) }}{% endmacro %}{{ cols() | join(', ') }}",
         "a, b"},
        {"{% macro m() %}{% for i in [1, 2, 3] %}{% if i == 2 %}{{ return(i) }}{% endif %}"
         "{% endfor %}{% endmacro %}{{ m() }}",
         "2"},
        {"{% macro m() %}{% do return('done') %}{% endmacro %}{{ m() }}", "done"},
        {"{% macro s() %}text{% endmacro %}{{ s() is string }} {{ s() ~ '!' }}", "True text!"},
        {"{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}"
         "{% call wrap('b') %}bold {{ n }}{% endcall %}",
         "<b>bold 3</b>"},
        {"{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}"
         "{% call(item) each([1, 2]) %}[{{ item }}]{% endcall %}",
         "[1][2]"},
        {"{% macro fact(k) %}{{ 1 if k <= 1 else k * fact(k - 1) | int }}{% endmacro %}"
         "{{ fact(5) }}",
         "120"},
        {"{% set g = 'top' %}{% macro m() %}{{ g }}{% endmacro %}{{ m() }}", "top"},
        {"{% macro m(a) %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, k=3) }}",
         "(2,){'k': 3}"},
        {"{% macro m() %}{% set x = 5 %}{{ x }}{% endmacro %}{% set x = 1 %}{{ m() }}{{ x }}",
         "51"},
    };
    RUN_CASES(cases);
}

static void test_filters(void)
{
    static const tcase cases[] = {
        {"{{ ['a', 'b'] | join(', ') }}|{{ [1, 2] | join }}|{{ users | join(',', "
         "attribute='name') }}",
         "a, b|12|ann,Bob,cid"},
        {"{{ users | length }} {{ 'héllo' | length }} {{ {} | count }} {{ zz | length }}",
         "3 5 0 0"},
        {"{{ 'AbC' | lower }} {{ 'AbC' | upper }} {{ 'hello world' | capitalize }} "
         "{{ 'hello big world' | title }}",
         "abc ABC Hello world Hello Big World"},
        {"{{ 'a-b-c' | replace('-', '_') }} {{ 'aaa' | replace('a', 'b', 2) }}", "a_b_c bba"},
        {"{{ zz | default('d') }} {{ name | d('x') }} {{ '' | default('e') }} "
         "{{ '' | default('e', true) }} {{ nothing | default('n') }}",
         "d World  e None"},
        {"{{ [1, 2, 3] | first }} {{ [1, 2, 3] | last }} {{ 'abc' | first }} [{{ [] | first }}]",
         "1 3 a []"},
        {"{{ users | map(attribute='name') | join(',') }} {{ ['A', 'B'] | map('lower') | list }}",
         "ann,Bob,cid ['a', 'b']"},
        {"{{ users | map(attribute='admin', default=false) | list }}", "[True, False, False]"},
        /* an integer attribute indexes each item (dbt_utils: rows | map(attribute=0)) */
        {"{{ [[1, 'a'], [2, 'b']] | map(attribute=0) | list }}", "[1, 2]"},
        {"{{ users | selectattr('admin') | map(attribute='name') | join }} "
         "{{ users | selectattr('age', 'equalto', 25) | map(attribute='name') | join }} "
         "{{ users | rejectattr('admin') | map(attribute='name') | join }} "
         "{{ users | selectattr('age', '>', 30) | map(attribute='name') | join }}",
         "ann Bob Bobcid anncid"},
        {"{{ [1, 2, 3, 4] | select('odd') | list }} {{ [0, 1, ''] | reject | list }}",
         "[1, 3] [0, '']"},
        {"{{ 'ab' | list }} {{ {'x': 1} | list }}", "['a', 'b'] ['x']"},
        {"{{ '42' | as_number + 1 }} {{ '1.5' | as_number }} {{ 'x' | as_number }}", "43 1.5 x"},
        {"{{ 5 | as_text ~ 'x' }} {{ 'true' | as_bool }} {{ 'False' | as_bool }}", "5x True False"},
        {"[{{ '  pad  ' | trim }}] [{{ 'xxaxx' | trim('x') }}] {{ 5 | string ~ 1 }}",
         "[pad] [a] 51"},
        {"{{ '42' | int + 1 }} {{ 'x' | int }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 2 | float }}",
         "43 0 3 2.5 2.0"},
        {"{{ [1, 2, 1, 3, 2] | unique | list }}", "[1, 2, 3]"},
        {"{{ [3, 1, 2] | sort }} {{ ['b', 'A', 'c'] | sort }} {{ [3, 1, 2] | sort(reverse=true) }}",
         "[1, 2, 3] ['A', 'b', 'c'] [3, 2, 1]"},
        {"{{ users | sort(attribute='age') | map(attribute='name') | join }}", "Bobanncid"},
        {"{{ [1, 2, 3] | reverse | list }} {{ 'abc' | reverse }}", "[3, 2, 1] cba"},
        {"{{ {'b': [1, 'x'], 'a': none, 'c': true} | tojson }}",
         "{\"a\": null, \"b\": [1, \"x\"], \"c\": true}"},
        {"{{ -3 | abs }} {{ (-2.5) | abs }} {{ 2.5 | round }} {{ 2.567 | round(2) }} "
         "{{ 2.1 | round(0, 'ceil') }}",
         "3 2.5 2.0 2.57 3.0"},
        {"{{ [1, 2, 3] | batch(2) | list }} {{ [1, 2, 3] | batch(2, 0) | list }}",
         "[[1, 2], [3]] [[1, 2], [3, 0]]"},
        {"{{ [1, 2, 3] | sum }} {{ users | sum(attribute='age') }} {{ [3, 1] | min }} "
         "{{ [3, 1] | max }}",
         "6 96 1 3"},
        {"{{ '%s-%d' | format('a', 7) }} {{ {'a': 1} | items | list }}", "a-7 [('a', 1)]"},
        {"{{ name | lower | replace('o', '0') | upper }}", "W0RLD"},
    };
    RUN_CASES(cases);
}

static void test_methods(void)
{
    static const tcase cases[] = {
        {"{{ 'AbC'.upper() }} {{ 'AbC'.lower() }} [{{ '  s  '.strip() }}] {{ 'xyx'.strip('x') }}",
         "ABC abc [s] y"},
        {"{{ 'a,b,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a,b,c'.split(',', 1) }}",
         "['a', 'b', 'c'] ['a', 'b'] ['a', 'b,c']"},
        {"{{ 'a-b'.replace('-', '+') }} {{ 'abc'.startswith('ab') }} {{ 'abc'.endswith('x') }} "
         "{{ 'abc'.startswith(('x', 'a')) }}",
         "a+b True False True"},
        {"{{ '{} and {}'.format(1, 'two') }} {{ '{0}{0}{x}'.format('a', x='b') }}",
         "1 and two aab"},
        {"{{ ', '.join(['a', 'b']) }} {{ 'abcb'.find('b') }} {{ 'abcb'.count('b') }}", "a, b 1 2"},
        {"{% set l = [1] %}{% do l.append(2) %}{% do l.extend([3, 4]) %}{{ l.pop() }} {{ l }} "
         "{{ l.index(2) }} {{ l.pop(0) }} {{ l }}",
         "4 [1, 2, 3] 1 1 [2, 3]"},
        {"{% set l = [1, 3] %}{% do l.insert(1, 2) %}{% do l.remove(3) %}{{ l }}", "[1, 2]"},
        {"{% set d = {'a': 1, 'b': 2} %}{{ d.keys() }} {{ d.values() }} {{ d.items() }}",
         "['a', 'b'] [1, 2] [('a', 1), ('b', 2)]"},
        {"{% set d = {'a': 1} %}{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 0) }} "
         "{% do d.update({'b': 2}) %}{{ d }} {{ d.pop('a') }} {{ d }}",
         "1 None 0 {'a': 1, 'b': 2} 1 {'b': 2}"},
        {"{{ adapter.quote('col') }} {{ adapter.quote(this.name) }}", "\"col\" \"orders\""},
        {"{{ '12'.isdigit() }} {{ 'a1'.isdigit() }}", "True False"},
    };
    RUN_CASES(cases);
}

/* ---- natives: call blocks, statement(), config(), tpl_call_value ---- */

static void test_call_statement(void)
{
    cs_error err = {0};
    char *got;
    tpl_value *body;

    got = render("before{% call statement('max_ts', fetch_result=True) %}\n"
                 "select max(ts) from {{ this }} where n > {{ n }}\n"
                 "{% endcall %}after",
                 &err);
    CHECK_STR(got, "beforeafter");
    body = tpl_dict_get(statements, "max_ts");
    CHECK_STR(tpl_as_str(body), "\nselect max(ts) from \"public\".\"orders\" where n > 3\n");
    free(got);

    /* the body sees variables of the call site, including loop variables */
    got = render("{% set t = 'x' %}{% for i in [7] %}{% call statement('s' ~ i) %}"
                 "{{ t }}{{ i }}{% endcall %}{% endfor %}",
                 &err);
    CHECK_STR(got, "");
    CHECK_STR(tpl_as_str(tpl_dict_get(statements, "s7")), "x7");
    free(got);
}

static void test_config_native(void)
{
    cs_error err = {0};
    char *got = render("{{ config(materialized='incremental', unique_key='id', "
                       "indexes=[{'columns': ['a', 'b'], 'type': 'hash'}], tags=['t1']) }}select 1",
                       &err);
    tpl_value *idx;

    CHECK_STR(got, "select 1");
    CHECK_STR(tpl_as_str(tpl_dict_get(configs, "materialized")), "incremental");
    CHECK_STR(tpl_as_str(tpl_dict_get(configs, "unique_key")), "id");
    idx = tpl_dict_get(configs, "indexes");
    CHECK_INT(tpl_list_len(idx), 1);
    CHECK_STR(tpl_as_str(tpl_dict_get(tpl_list_get(idx, 0), "type")), "hash");
    CHECK_INT(tpl_list_len(tpl_dict_get(tpl_list_get(idx, 0), "columns")), 2);
    free(got);
}

static void test_call_value_and_macros_api(void)
{
    cs_error err = {0};
    tpl_template *lib, *model;
    tpl_env *env;
    tpl_value *fn, *out = NULL, *locals;
    tpl_value *pos[1];
    tpl_args args = {0};
    buf b;

    lib = tpl_compile("macros/lib.sql",
                      "{% macro double(x) %}{{ x * 2 }}{% endmacro %}\n"
                      "{% macro cols(rel) %}{{ return([rel.name, 'b']) }}{% endmacro %}\n"
                      "{% macro uses_local() %}{{ model_name }}{% endmacro %}\n",
                      &err);
    CHECK(lib != NULL);
    env = test_env();
    tpl_env_add_macros(env, lib, "cht_pipeline_base");
    fn = tpl_env_get(env, "double");
    CHECK(fn && tpl_typeof(fn) == TPL_FUNC);

    pos[0] = tpl_int(21);
    args.npos = 1;
    args.pos = pos;
    CHECK_INT(tpl_call_value(env, fn, &args, &out, &err), CS_OK);
    CHECK_STR(tpl_as_str(out), "42");
    tpl_unref(out);
    tpl_unref(pos[0]);

    pos[0] = tpl_env_get(env, "this");
    CHECK_INT(tpl_call_value(env, tpl_env_get(env, "cols"), &args, &out, &err), CS_OK);
    CHECK_INT(tpl_list_len(out), 2);
    CHECK_STR(tpl_as_str(tpl_list_get(out, 0)), "orders");
    tpl_unref(out);

    /* macros via their package namespace, natives calling macros, locals */
    model = tpl_compile("models/m.sql",
                        "{{ cht_pipeline_base.double(2) }} {{ invoke(double, 5) }} "
                        "{{ uses_local() }} {{ invoke(cols, this) }}",
                        &err);
    CHECK(model != NULL);
    locals = tpl_dict_new();
    tpl_dict_set(locals, "model_name", tpl_str("m"));
    buf_init(&b, 0);
    CHECK_INT(tpl_render(model, env, locals, &b, &err), CS_OK);
    CHECK_STR(b.data, "4 10 m ['orders', 'b']");
    buf_free(&b);
    tpl_unref(locals);

    tpl_template_free(model);
    tpl_env_free(env);
    tpl_template_free(lib);
}

/* ---- errors ---- */

typedef struct {
    const char *src;
    const char *want; /* the whole message */
} ecase;

static void test_errors(void)
{
    static const ecase cases[] = {
        {"{{ x | frobnicate }}", "t.sql:1:8: unknown filter \"frobnicate\""},
        {"line1\n  {% if x %}\nno end", "t.sql:2:3: unclosed block \"if\" (opened at 2:3)"},
        {"{% for x in y %}{% if x %}{% endfor %}",
         "t.sql:1:30: unexpected \"endfor\", expected \"endif\""},
        {"ok\n{% endif %}", "t.sql:2:4: unexpected \"endif\""},
        {"{{ foo() }}", "t.sql:1:4: undefined macro \"foo\""},
        {"\n\n   {{ 'abc }}", "t.sql:3:7: unterminated string"},
        {"a {# never closed", "t.sql:1:3: unterminated comment"},
        {"{{ x ", "t.sql:1:1: unclosed tag \"{{\""},
        {"{% frob %}", "t.sql:1:4: unknown tag \"frob\""},
        {"{% include 'x' %}", "t.sql:1:4: unsupported tag \"include\""},
        {"{{ 1 + }}", "t.sql:1:8: unexpected \"}}\""},
        {"{{ x is frob }}", "t.sql:1:9: unknown test \"frob\""},
        {"{{ n.upper() }}", "t.sql:1:6: \"int\" object has no method \"upper\""},
        {"{{ 1 / 0 }}", "t.sql:1:6: division by zero"},
        {"{{ zz + 1 }}", "t.sql:1:7: \"zz\" is undefined"},
        {"{{ 'a' - 1 }}", "t.sql:1:8: unsupported operand types for -: 'str' and 'int'"},
        {"{% for x in 5 %}{% endfor %}", "t.sql:1:13: 'int' object is not iterable"},
        {"{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}",
         "t.sql:1:34: macro \"m\" takes 1 argument, got 2"},
        {"{% macro m(a) %}{% endmacro %}{{ m(b=1) }}",
         "t.sql:1:34: macro \"m\" has no argument \"b\""},
        {"{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
         "t.sql:1:19: macro \"m\" nested too deeply (limit 200)"},
        {"{{ exceptions.raise_compiler_error('bad model') }}",
         "t.sql:1:15: compilation error: bad model"},
        {"{{ adapter.nope() }}", "t.sql:1:12: undefined macro \"nope\""},
        {"{{ nope.thing() }}", "t.sql:1:9: \"nope\" is undefined"},
        {"{% macro m() %}{{ caller() }}{% endmacro %}{{ m() }}",
         "t.sql:1:19: undefined macro \"caller\""},
        {"{{ return(1) }}", "t.sql: return() used outside of a macro"},
        {"{% set x = 1 %}{{ x() }}", "t.sql:1:19: \"x\" is not callable (int)"},
        {"{% if true %}{% else %}{% elif %}{% endif %}",
         "t.sql:1:27: unexpected \"elif\", expected \"endif\""},
        {"{% macro m( %}{% endmacro %}", "t.sql:1:13: expected a parameter name, got \"%}\""},
        {"{{ 'x' @ 1 }}", "t.sql:1:8: unexpected character \"@\""},
        {"{% raw %} no end", "t.sql:1:1: unclosed block \"raw\""},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cs_error err = {0};
        char *got = render(cases[i].src, &err);
        if (got || strcmp(err.msg, cases[i].want) != 0 || err.code != CS_INVALID) {
            printf("  error case %zu: %s\n    got:  %s (%s)\n    want: %s\n", i, cases[i].src,
                   got ? got : err.msg, cs_result_name(err.code), cases[i].want);
            unit_failed_checks++;
        }
        free(got);
    }
}

static void test_native_error_class(void)
{
    cs_error err = {0};
    char *got = render("x\n  {{ flaky() }}", &err);

    CHECK(got == NULL);
    CHECK_INT(err.code, CS_TRANSIENT);
    CHECK_STR(err.msg, "t.sql:2:6: connection lost");
    free(got);

    /* an error inside a macro from another file names that file */
    {
        tpl_template *lib =
            tpl_compile("macros/m.sql", "{% macro bad() %}\n{{ 1 // 0 }}{% endmacro %}", &err);
        tpl_template *t = tpl_compile("models/a.sql", "{{ bad() }}", &err);
        tpl_env *env = tpl_env_new();
        buf b;
        buf_init(&b, 0);
        tpl_env_add_macros(env, lib, NULL);
        CHECK_INT(tpl_render(t, env, NULL, &b, &err), CS_INVALID);
        CHECK_STR(err.msg, "macros/m.sql:2:6: division by zero");
        buf_free(&b);
        tpl_env_free(env);
        tpl_template_free(t);
        tpl_template_free(lib);
    }
}

static void test_where_and_output_cap(void)
{
    cs_error err = {0};
    char *got = render("\n   {{ where() }}", &err);
    tpl_template *t;
    tpl_env *env;
    buf b;

    CHECK_STR(got, "\n   t.sql:2:7");
    free(got);

    t = tpl_compile("big.sql", "{% for i in range(1000) %}0123456789{% endfor %}", &err);
    env = tpl_env_new();
    buf_init(&b, 100);
    CHECK_INT(tpl_render(t, env, NULL, &b, &err), CS_INVALID);
    CHECK(strstr(err.msg, "output exceeds the limit of 100 bytes") != NULL);
    buf_free(&b);
    tpl_env_free(env);
    tpl_template_free(t);
}

static void test_caller_misuse(void)
{
    cs_error err = {0};
    char *got = render("x\n{{ statement('a') }}", &err);

    CHECK(got == NULL);
    CHECK_INT(err.code, CS_INVALID);
    CHECK_STR(err.msg, "t.sql:2:4: caller() is not available: not called from a call block");
    free(got);

    /* a caller kept past its block cannot be called */
    got = render("{% set ns = namespace() %}{% macro keep() %}{% set ns.c = caller %}"
                 "{% endmacro %}{% call keep() %}body{% endcall %}{{ ns.c() }}",
                 &err);
    CHECK(got == NULL);
    CHECK_STR(err.msg, "t.sql:1:122: caller() used after its call block ended");
    free(got);
}

static void test_block_set_whitespace(void)
{
    static const tcase cases[] = {
        {"{%- set sql -%}\n  select {{ n }}\n{%- endset -%}\n[{{ sql }}]", "[select 3]"},
        {"{% set x %}{% for i in range(3) %}{{ i }}{% endfor %}{% endset %}{{ x | length }}", "3"},
        {"{% macro m() -%}\n  body\n{%- endmacro %}[{{ m() }}]", "[body]"},
    };
    RUN_CASES(cases);
}

typedef struct {
    const tpl_template *t;
    int ok;
} thread_arg;

static void *render_thread(void *p)
{
    thread_arg *ta = p;
    int i;

    for (i = 0; i < 200; i++) {
        tpl_env *env = tpl_env_new();
        tpl_value *locals = tpl_dict_new();
        cs_error err;
        buf out;
        tpl_dict_set(locals, "k", tpl_int(i));
        buf_init(&out, 0);
        if (tpl_render(ta->t, env, locals, &out, &err) == CS_OK && out.data) {
            char want[64];
            snprintf(want, sizeof(want), "%d:a,b:None", i * 2);
            ta->ok += strcmp(out.data, want) == 0;
        }
        buf_free(&out);
        tpl_unref(locals);
        tpl_env_free(env);
    }
    return NULL;
}

/* one compiled template, rendered by several threads with their own envs */
static void test_threads_share_template(void)
{
    cs_error err = {0};
    tpl_template *t = tpl_compile("shared.sql",
                                  "{% macro d(x) %}{{ x * 2 }}{% endmacro %}"
                                  "{{ d(k) }}:{{ ['a', 'b'] | join(',') }}:{{ none }}",
                                  &err);
    pthread_t th[4];
    thread_arg ta[4];
    int i;

    CHECK(t != NULL);
    for (i = 0; i < 4; i++) {
        ta[i].t = t;
        ta[i].ok = 0;
        CHECK(pthread_create(&th[i], NULL, render_thread, &ta[i]) == 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(ta[i].ok, 200);
    }
    tpl_template_free(t);
}

/* hostile input must fail cleanly, not crash */
static void test_hostile_input(void)
{
    cs_error err = {0};
    char src[4096];
    char *got;
    size_t i;

    /* {{ ((((...1...)))) }} nested 1000 deep */
    memcpy(src, "{{ ", 3);
    for (i = 0; i < 1000; i++) {
        src[3 + i] = '(';
        src[1004 + i] = ')';
    }
    src[1003] = '1';
    memcpy(src + 2004, " }}", 4);
    got = render(src, &err);
    CHECK(got == NULL);
    CHECK_STR(err.msg, "t.sql:1:103: nesting too deep (limit 200)");
    free(got);

    {
        static const char *const bad[] = {
            "{{",        "{%",         "{#",        "{{ }}",       "{% %}",       "{% if %}",
            "{{ [1, }}", "{{ {'a' }}", "{% for %}", "{% set %}",   "{% macro %}", "{% call %}",
            "{{ a[ }}",  "{{ a. }}",   "{% endfor", "{{ 'x' | }}", "{% set x %}", "}}{{"};
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            got = render(bad[i], &err);
            CHECK(got == NULL);
            CHECK(err.code == CS_INVALID);
            free(got);
        }
    }
}

/* a 200-line model must render far below a millisecond */
static void test_performance(void)
{
    buf src, out;
    cs_error err = {0};
    tpl_template *t;
    tpl_env *env;
    struct timespec a, b;
    int i;
    double us;

    buf_init(&src, 0);
    buf_puts(&src, "{{ config(materialized='table') }}\n{% set cols = ['a', 'b', 'c'] %}\n"
                   "{% macro q(x) %}\"{{ x }}\"{% endmacro %}\n");
    for (i = 0; i < 200; i++)
        buf_printf(&src,
                   "  , {{ q('col%d') }} as c%d{%% if n > 1 %%} -- {{ cols | join(', ') }}"
                   "{%% endif %%}\n",
                   i, i);
    t = tpl_compile("perf.sql", src.data, &err);
    CHECK(t != NULL);
    env = test_env();
    buf_init(&out, 0);
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (i = 0; i < 100; i++) {
        buf_reset(&out);
        CHECK_INT(tpl_render(t, env, NULL, &out, &err), CS_OK);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    us = ((double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3) / 100;
    CHECK(strstr(out.data, "\"col199\" as c199 -- a, b, c") != NULL);
    /* a figure, not a check: speed is judged by bench/, not by a timed test */
    printf("  200-line model: %.1f us per render\n", us);
    buf_free(&out);
    buf_free(&src);
    tpl_env_free(env);
    tpl_template_free(t);
}

static void test_list_attributes(void)
{
    static const tcase cases[] = {
        {"{{ col }} {{ col | length }} {{ col[1] }} {{ col[-1] }}", "[1, 2] 2 2 2"},
        {"{{ col.name }} {{ col['name'] }} {{ col.values }} {{ col.values() }}",
         "id id [1, 2] [1, 2]"},
        {"{% for v in col.values() %}{{ v }};{% endfor %}{% for v in col.values %}{{ v }}.{% "
         "endfor %}",
         "1;2;1.2."},
        {"{% for v in col %}{{ v * 10 }} {% endfor %}{{ col.values() | join(',') }}", "10 20 1,2"},
        {"{{ col.nope is defined }} {{ col['nope'] is defined }} {{ col.name() }}",
         "False False id"},
        {"{{ (col | list).name is defined }} {{ col[0:1] }}", "False [1]"},
    };
    cs_error err = {0};
    char *got;

    RUN_CASES(cases);
    /* a data attribute is an accessor with no arguments only */
    got = render("{{ col.values(1) }}", &err);
    CHECK(got == NULL);
    free(got);
}

static void test_values_api(void)
{
    tpl_value *d = tpl_dict_new(), *l = tpl_list_new();
    buf b;
    int i;
    char key[16];

    for (i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        tpl_dict_set(d, key, tpl_int(i));
    }
    tpl_dict_set(d, "k50", tpl_int(-1));
    CHECK_INT(tpl_dict_len(d), 100);
    CHECK_INT(tpl_as_int(tpl_dict_get(d, "k50")), -1);
    CHECK_INT(tpl_as_int(tpl_dict_get(d, "k99")), 99);
    CHECK(tpl_dict_get(d, "nope") == NULL);
    CHECK_STR(tpl_dict_key_at(d, 3), "k3");
    CHECK_INT(tpl_as_int(tpl_dict_value_at(d, 3)), 3);
    tpl_list_push(l, tpl_str("a'b"));
    tpl_list_push(l, tpl_float(0.5));
    tpl_list_push(l, tpl_ref(tpl_dict_get(d, "k1")));
    buf_init(&b, 0);
    CHECK(tpl_to_text(l, &b));
    CHECK_STR(b.data, "[\"a'b\", 0.5, 1]");
    buf_free(&b);
    CHECK(tpl_truthy(l));
    CHECK(!tpl_truthy(tpl_none()));
    CHECK(tpl_as_bool(tpl_list_get(l, 0)));
    CHECK(tpl_as_float(tpl_list_get(l, 1)) == 0.5);
    tpl_unref(l);
    tpl_unref(d);
}

/* ---- dbt's Jinja additions (issue 12) ---- */

static void test_star_args(void)
{
    static const tcase cases[] = {
        {"{% macro m(a, b=2) %}{{ a }}{{ b }}{{ varargs }}{{ kwargs }}{% endmacro %}"
         "{% set args = [1, 5, 7] %}{{ m(*args, z=3) }}|{{ m(**{'a': 1, 'b': 4}) }}|"
         "{{ m(0, *[1], **{'q': 2}) }}|{{ m(*(8,)) }}",
         "15(7,){'z': 3}|14(){}|01(){'q': 2}|82(){}"},
        {"{% macro inner(x, y) %}{{ x }}-{{ y }}{% endmacro %}"
         "{% macro outer() %}{{ inner(*varargs, **kwargs) }}{% endmacro %}{{ outer(1, y=2) }}",
         "1-2"},
        {"{% macro m(a) %}{{ a }}{% endmacro %}{{ invoke(m, *['x']) }}", "x"},
        {"{{ config(**{'materialized': 'view'}) }}{{ 'ok' }}", "ok"},
        {"{{ dict(**{'a': 1}, b=2) }}", "{'a': 1, 'b': 2}"},
    };
    RUN_CASES(cases);
}

static void test_chained_compare(void)
{
    static const tcase cases[] = {
        {"{{ 3 > 2 > 1 }} {{ 1 < 2 < 2 }} {{ 1 == 1 != 2 }} {{ 1 < 3 in [3] }}",
         "True False True True"},
        {"{{ 1 > 2 > 1 / 0 }} {{ 0 <= n <= 5 }} {{ 0 <= n <= 2 }}", "False True False"},
        {"{{ not 1 < 2 < 3 }} {{ 1 < 2 < 3 and 4 > 3 > 2 }}", "False True"},
    };
    RUN_CASES(cases);
}

static void fake_log_sink(void *ud, const char *where, const char *msg)
{
    buf *b = ud;

    buf_printf(b, "[%s] %s;", where, msg);
}

static void test_json_zip_print(void)
{
    static const tcase cases[] = {
        {"{{ tojson({'b': 1, 'a': [1, 'x<', none, true]}) }}",
         "{\"b\": 1, \"a\": [1, \"x<\", null, true]}"},
        {"{{ {'b': 1, 'a': 'x<'} | tojson }}", "{\"a\": \"x\\u003c\", \"b\": 1}"},
        {"{{ fromjson('{\"a\": [1, 2.5, null, true, \"s\"]}') }}",
         "{'a': [1, 2.5, None, True, 's']}"},
        {"{{ fromjson('not json', 'dflt') }} {{ fromjson('[1') }}", "dflt None"},
        {"{{ fromjson(tojson({'k': [1, {'j': 'v'}]})).k[1].j }}", "v"},
        {"{{ zip([1, 2], 'ab') | list }} {{ zip([1, 2, 3], (4, 5)) | list }}",
         "[(1, 'a'), (2, 'b')] [(1, 4), (2, 5)]"},
        {"{% for a, b in zip(['x', 'y'], [1, 2]) %}{{ a }}{{ b }}{% endfor %}", "x1y2"},
        {"[{{ print('hidden') }}]", "[]"},
    };
    cs_error err = {0};
    tpl_template *t;
    tpl_env *env;
    buf out, log;

    RUN_CASES(cases);
    t = tpl_compile("p.sql", "a{% do print('hello ' ~ 1) %}\n{{ print(n) }}b", &err);
    CHECK(t != NULL);
    env = tpl_env_new();
    tpl_env_set(env, "n", tpl_int(7));
    buf_init(&out, 0);
    buf_init(&log, 0);
    tpl_env_set_log(env, fake_log_sink, &log);
    CHECK_INT(tpl_render(t, env, NULL, &out, &err), CS_OK);
    CHECK_STR(out.data, "a\nb");
    CHECK_STR(log.data, "[p.sql:1:8] hello 1;[p.sql:2:4] 7;");
    buf_free(&out);
    buf_free(&log);
    tpl_env_free(env);
    tpl_template_free(t);
}

static void test_modules(void)
{
    static const tcase cases[] = {
        {"{{ modules.re.sub('[ -]+', '_', 'a b-c  d') }}|{{ modules.re.sub('[^a-z0-9_]+', '', "
         "'a$b%c') }}|{{ modules.re.sub('^[0-9]', '_9', '9x') }}",
         "a_b_c_d|abc|_9x"},
        {"{{ modules.re.sub('a', 'b', 'aaa', 2) }} {{ modules.re.sub('(\\\\w+)@(\\\\w+)', "
         "'\\\\2 at \\\\1', 'me@host') }}",
         "bba host at me"},
        {"{{ modules.re.search('(\\\\d+)-(\\\\d+)', 'ab 12-34').group(2) }} "
         "{{ modules.re.search('(\\\\d+)', 'ab 12').group() }} {{ modules.re.match('b', 'ab') }} "
         "{{ modules.re.match('a', 'ab') is not none }} {{ modules.re.fullmatch('a+', 'aaa') is "
         "not none }} {{ modules.re.search('x(y)?', 'x').groups() }}",
         "34 12 None True True (None,)"},
        {"{{ modules.re.findall('[0-9]+', 'a1b22c333') }} {{ modules.re.findall('(a)(b)', 'abab') "
         "}} {{ modules.re.split(',\\\\s*', 'a, b,c') }} {{ modules.re.escape('a.b') }}",
         "['1', '22', '333'] [('a', 'b'), ('a', 'b')] ['a', 'b', 'c'] a\\.b"},
        {"{{ modules.re.sub('a{2}', 'b', 'aaaaa') }} {{ modules.re.sub('x\\d+y?', '-', 'x12yx3') "
         "}}",
         "bba --"},
        {"{{ modules.re.search('A', 'xa', modules.re.I) is not none }} "
         "{{ modules.re.compile('b+').sub('-', 'abbc') }}",
         "True a-c"},
        {"{{ modules.datetime.date(1997, 9, 29) }} {{ modules.datetime.datetime(1997, 9, 29, 6, "
         "14) }} {{ modules.datetime.datetime(2020, 1, 2, 3, 4, 5, 600) }}",
         "1997-09-29 1997-09-29 06:14:00 2020-01-02 03:04:05.000600"},
        {"{% set d = modules.datetime.datetime(2024, 3, 1, 13, 5, 9) %}{{ d.strftime('%Y/%m/%d "
         "%H:%M:%S %j %a %b %%') }} {{ d.isoformat() }} {{ d.year }}-{{ d.month }}-{{ d.day }} "
         "{{ d.date() }} {{ d.weekday() }}",
         "2024/03/01 13:05:09 061 Fri Mar % 2024-03-01T13:05:09 2024-3-1 2024-03-01 4"},
        {"{{ modules.datetime.date(2024, 3, 1) - modules.datetime.timedelta(days=1) }} "
         "{{ modules.datetime.datetime(2024, 12, 31, 23) + modules.datetime.timedelta(hours=2) }} "
         "{{ (modules.datetime.date(2024, 3, 1) - modules.datetime.date(2024, 1, 1)).days }}",
         "2024-02-29 2025-01-01 01:00:00 60"},
        {"{{ modules.datetime.datetime.now().year > 2000 }} {{ modules.datetime.date.today() > "
         "modules.datetime.date(2000, 1, 1) }} {{ modules.datetime.date(2000, 1, 1) == "
         "modules.datetime.date(2000, 1, 1) }}",
         "True True True"},
        {"{{ modules.datetime.datetime.strptime('2021-02-03 04:05', '%Y-%m-%d %H:%M') }}",
         "2021-02-03 04:05:00"},
    };
    static const ecase errors[] = {
        {"{{ modules.datetime.date(2023, 2, 29) }}", "t.sql:1:21: date: day is out of range"},
        {"{{ modules.re.sub('(', '', 'x') }}", "t.sql:1:15: re: bad pattern \"(\""},
        /* found by fuzz_tpl: glibc's regcomp took gigabytes on repeated repeats */
        {"{{ modules.re.sub('[ -]++++', '_', 'x') }}", "t.sql:1:15: re: unsupported pattern"},
        {"{{ modules.re.sub('((a{100}){100}){100}', '', 'x') }}",
         "t.sql:1:15: re: unsupported pattern"},
        {"{{ modules.re.sub('a*?', '', 'x') }}", "t.sql:1:15: re: unsupported pattern"},
    };
    size_t i;

    RUN_CASES(cases);
    for (i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        cs_error err = {0};
        char *got = render(errors[i].src, &err);
        if (got || strncmp(err.msg, errors[i].want, strlen(errors[i].want)) != 0) {
            printf("  error case %zu: %s\n    got:  %s\n    want: %s\n", i, errors[i].src,
                   got ? got : err.msg, errors[i].want);
            unit_failed_checks++;
        }
        free(got);
    }
}

static void test_dbt_blocks(void)
{
    static const char *src =
        "{% macro plain() %}p{% endmacro %}\n"
        "{% test not_empty(model, column_name) %}select {{ column_name }} from {{ model }}"
        "{% endtest %}\n"
        "{% materialization raw_sql, default %}{{ return({'relations': ['r']}) }}"
        "{% endmaterialization %}\n"
        "{%- materialization tbl, adapter='postgres', supported_languages=['sql'] -%}"
        "T{%- endmaterialization %}\n"
        "{% docs my_doc %}\n# Title {{ not rendered }}\n{% enddocs %}\n";
    static const struct {
        tpl_block_kind kind;
        const char *name, *macro, *adapter, *text;
        int line;
    } want[] = {
        {TPL_BLOCK_MACRO, "plain", "plain", NULL, NULL, 1},
        {TPL_BLOCK_TEST, "not_empty", "test_not_empty", NULL, NULL, 2},
        {TPL_BLOCK_MATERIALIZATION, "raw_sql", "materialization_raw_sql_default", "default", NULL,
         3},
        {TPL_BLOCK_MATERIALIZATION, "tbl", "materialization_tbl_postgres", "postgres", NULL, 4},
        {TPL_BLOCK_DOCS, "my_doc", NULL, NULL, "\n# Title {{ not rendered }}\n", 5},
    };
    cs_error err = {0};
    tpl_template *lib = tpl_compile("macros/blocks.sql", src, &err), *t;
    tpl_env *env = tpl_env_new();
    size_t i;
    buf b;

    CHECK(lib != NULL);
    if (!lib)
        return;
    CHECK_INT(tpl_block_count(lib), 5);
    for (i = 0; i < 5 && i < tpl_block_count(lib); i++) {
        const tpl_block *bl = tpl_block_get(lib, i);
        CHECK_INT(bl->kind, want[i].kind);
        CHECK_STR(bl->name, want[i].name);
        CHECK(want[i].macro ? bl->macro && strcmp(bl->macro, want[i].macro) == 0 : !bl->macro);
        CHECK(want[i].adapter ? bl->adapter && strcmp(bl->adapter, want[i].adapter) == 0
                              : !bl->adapter);
        CHECK(want[i].text ? bl->text && strlen(want[i].text) == bl->text_len &&
                                 memcmp(bl->text, want[i].text, bl->text_len) == 0
                           : !bl->text);
        CHECK_INT(bl->line, want[i].line);
    }
    CHECK(tpl_block_get(lib, 5) == NULL);
    /* the file renders to the newlines between blocks (one stripped by "{%-"):
     * blocks define, they do not print */
    buf_init(&b, 0);
    CHECK_INT(tpl_render(lib, env, NULL, &b, &err), CS_OK);
    CHECK_STR(b.data, "\n\n\n\n");
    buf_free(&b);
    tpl_env_add_macros(env, lib, "pkg");
    t = tpl_compile("models/a.sql",
                    "{{ test_not_empty(model='m', column_name='c') }}|"
                    "{{ materialization_raw_sql_default() }}|{{ pkg.materialization_tbl_postgres() "
                    "}}|{{ pkg.test_not_empty('x', 'y') }}",
                    &err);
    CHECK(t != NULL);
    buf_init(&b, 0);
    CHECK_INT(tpl_render(t, env, NULL, &b, &err), CS_OK);
    CHECK_STR(b.data, "select c from m|{'relations': ['r']}|T|select y from x");
    buf_free(&b);
    tpl_template_free(t);
    tpl_env_free(env);
    tpl_template_free(lib);

    {
        static const ecase errors[] = {
            {"{% test %}{% endtest %}", "t.sql:1:9: expected a test name, got \"%}\""},
            {"{% materialization m %}{% endmaterialization %}",
             "t.sql:1:22: expected \",\" and an adapter (default or adapter='name'), got \"%}\""},
            {"{% docs d %}text", "t.sql:1:1: unclosed block \"docs\" (opened at 1:1)"},
            {"{% if true %}{% docs d %}x{% enddocs %}{% endif %}",
             "t.sql:1:17: \"docs\" blocks must be at the top level of a file"},
        };
        for (i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
            char *got = render(errors[i].src, &err);
            if (got || strcmp(err.msg, errors[i].want) != 0) {
                printf("  error case %zu: %s\n    got:  %s\n    want: %s\n", i, errors[i].src,
                       got ? got : err.msg, errors[i].want);
                unit_failed_checks++;
            }
            free(got);
        }
    }
}

/* renders src with strict undefined on (dbt's execute phase) */
static char *render_strict(const char *src, cs_error *err)
{
    tpl_template *t = tpl_compile("t.sql", src, err);
    tpl_env *env;
    buf out;
    cs_result r;

    if (!t)
        return NULL;
    env = test_env();
    tpl_env_set_strict_undefined(env, true);
    buf_init(&out, 1 << 20);
    r = tpl_render(t, env, NULL, &out, err);
    tpl_env_free(env);
    tpl_template_free(t);
    if (r != CS_OK) {
        buf_free(&out);
        return NULL;
    }
    return buf_steal(&out);
}

static void test_strict_undefined(void)
{
    static const tcase ok[] = {
        {"{{ zz is defined }} {{ zz | default('d') }} [{% if zz %}x{% endif %}] {{ zz or 'o' }} "
         "{{ users[0].nope is defined }} {{ zz is none }} {{ zz.attr is defined }}",
         "False d [] o False False False"},
        {"{% for x in zz %}x{% else %}empty{% endfor %} {{ zz | length }} "
         "{{ (zz ~ '') if zz is defined else 'no' }}",
         "empty 0 no"},
        {"{% macro m(a, b) %}{{ b is defined }}{% endmacro %}{{ m(1) }}", "False"},
        /* soft: what dbt renders as "" and packages rely on (dbt_utils) */
        {"{% macro m(a) %}[{{ a }}]{{ 'p' ~ a }}{% endmacro %}{{ m() }}", "[]p"},
        {"{% macro m(g) %}{% if g %}{% set cols = 'a, ' %}{% endif %}[{{ cols }}]{% endmacro %}"
         "{{ m(false) }}",
         "[]"},
        {"{% if false %}{% set top = 1 %}{% endif %}[{{ top }}][{{ '=' if false }}]", "[][]"},
        /* a conditional without else is empty text, as dbt renders it */
        {"{% for i in [1, 2] %}{{ i }}{{ ',' if not loop.last }}{% endfor %}", "1,2"},
        /* names the template binds somewhere render empty when unset, as in
         * dbt: a set in a branch not taken, a parameter the caller left out */
        {"{% if false %}{% set x = 1 %}{% endif %}[{{ x }}]", "[]"},
        {"{% macro m(a) %}[{{ a }}]{{ ' + ' ~ a }}{% endmacro %}{{ m() }}", "[] + "},
    };
    static const ecase errors[] = {
        {"select\n  {{ zz }}", "t.sql:2:6: \"zz\" is undefined"},
        {"{{ users[0].nope }}", "t.sql:1:13: \"nope\" is undefined"},
        {"{{ 'a' ~ zz }}", "t.sql:1:10: \"zz\" is undefined"},
        {"{{ zz.attr }}", "t.sql:1:7: \"zz\" is undefined"},
        /* a set in another macro does not make a name known here */
        {"{% macro m() %}{% set x = 1 %}{% endmacro %}{% macro n() %}{{ x }}{% endmacro %}\n"
         "{{ n() }}",
         "t.sql:1:63: \"x\" is undefined"},
        {"{% macro m(a) %}{{ a }}{{ b }}{% endmacro %}\n{{ m() }}",
         "t.sql:1:27: \"b\" is undefined"},
    };
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        cs_error err = {0};
        char *got = render_strict(ok[i].src, &err);
        if (!got || strcmp(got, ok[i].want) != 0) {
            printf("  case %zu: %s\n    got:  %s\n    want: %s\n", i, ok[i].src,
                   got ? got : err.msg, ok[i].want);
            unit_failed_checks++;
        }
        free(got);
    }
    for (i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        cs_error err = {0};
        char *got = render_strict(errors[i].src, &err);
        if (got || strcmp(err.msg, errors[i].want) != 0 || err.code != CS_INVALID) {
            printf("  error case %zu: %s\n    got:  %s\n    want: %s\n", i, errors[i].src,
                   got ? got : err.msg, errors[i].want);
            unit_failed_checks++;
        }
        free(got);
    }
    /* lenient (the default, dbt's parse phase): an undefined renders as nothing */
    {
        cs_error err = {0};
        char *got = render("[{{ zz }}{{ users[0].nope }}]", &err);
        CHECK_STR(got, "[]");
        free(got);
    }
}

/* ---- bounds: every growth capped, every cycle refused (issue 12) ---- */

/* a template of `n` terms "{{ first SEP term SEP term ... }}" */
static char *chain(const char *first, const char *sep_term, size_t n)
{
    buf b;
    size_t i;

    buf_init(&b, 0);
    buf_puts(&b, "{{ ");
    buf_puts(&b, first);
    for (i = 1; i < n; i++)
        buf_puts(&b, sep_term);
    buf_puts(&b, " }}");
    return buf_steal(&b);
}

static void test_growth_bounded(void)
{
    static const ecase cases[] = {
        {"{% set ns = namespace(x='ab') %}{% for i in range(40) %}{% set ns.x = ns.x + ns.x %}"
         "{% endfor %}",
         "t.sql:1:76: string exceeds the limit of 1048576 bytes"},
        {"{% set l = [1] %}{% for i in range(30) %}{% do l.extend(l) %}{% endfor %}",
         "t.sql:1:50: list exceeds the limit of 1000000 items"},
        {"{% set ns = namespace(l=[1]) %}{% for i in range(30) %}{% set ns.l = ns.l + ns.l %}"
         "{% endfor %}",
         "t.sql:1:75: list exceeds the limit of 1000000 items"},
        {"{% set l = [0] %}{% for i in range(1000000) %}{% do l.append(i) %}{% endfor %}",
         "t.sql:1:55: list exceeds the limit of 1000000 items"},
        {"{% set ns = namespace(s='aa') %}{% for i in range(30) %}"
         "{% set ns.s = ns.s | replace('a', 'aa') %}{% endfor %}",
         "t.sql:1:78: string exceeds the limit of 1048576 bytes"},
        {"{{ ('x\\n' * 500000) | indent(8) | length }}",
         "t.sql:1:23: string exceeds the limit of 1048576 bytes"},
        {"{{ ['x' * 600000, 'y' * 600000] | join }}",
         "t.sql:1:35: string exceeds the limit of 1048576 bytes"},
        {"{{ 'a b'.split(none, -9223372036854775808) }}", "t.sql:1:23: integer too large"},
    };
    static const tcase fine[] = {
        {"{{ 'a b'.split(none, -9223372036854775807 - 1) }} {{ 'a,b,c'.split(',', "
         "-9223372036854775807 - 1) }} {{ 'a b c'.split(none, 1) }}",
         "['a', 'b'] ['a', 'b', 'c'] ['a', 'b c']"},
        {"{{ 'a,b,c'.split(',', 1) }} {{ 'a,b'.split(',', 0) }}", "['a', 'b,c'] ['a,b']"},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cs_error err = {0};
        char *got = render(cases[i].src, &err);
        if (got || strcmp(err.msg, cases[i].want) != 0 || err.code != CS_INVALID) {
            printf("  error case %zu: %s\n    got:  %s\n    want: %s\n", i, cases[i].src,
                   got ? got : err.msg, cases[i].want);
            unit_failed_checks++;
        }
        free(got);
    }
    RUN_CASES(fine);
}

static void test_cycles_refused(void)
{
    static const ecase cases[] = {
        {"{% set l = [] %}{% do l.append(l) %}", "t.sql:1:25: a list cannot contain itself"},
        {"{% set d = {} %}{% do d.update({'a': d}) %}", "t.sql:1:25: a dict cannot contain itself"},
        {"{% set a = [] %}{% set b = [a] %}{% do a.append(b) %}",
         "t.sql:1:42: a list cannot contain itself"},
        {"{% set l = [] %}{% do l.insert(0, [[l]]) %}", "t.sql:1:25: a list cannot contain itself"},
        {"{% set l = [] %}{% do l.extend([l]) %}", "t.sql:1:25: a list cannot contain itself"},
        {"{% set d = {} %}{% do d.setdefault('k', [d]) %}",
         "t.sql:1:25: a dict cannot contain itself"},
        {"{% set ns = namespace() %}{% set ns.me = ns %}",
         "t.sql:1:27: a dict cannot contain itself"},
        {"{% set ns = namespace(l=[]) %}{% do ns.l.append(ns) %}",
         "t.sql:1:42: a list cannot contain itself"},
        /* found by fuzz_tpl: each copy shares every earlier one, so each
         * walk grows with the square of the list and the loop took minutes;
         * the walks of one render are bounded */
        {"{% set ns = namespace(l=[]) %}{% for i in range(3000) %}"
         "{% do ns.l.append(ns.l[:]) %}{% endfor %}",
         "t.sql:1:68: values shared too often to check for a reference cycle (more than "
         "20000000 steps in one render)"},
    };
    static const tcase fine[] = {
        /* sharing is not a cycle */
        {"{% set a = [1] %}{% set b = [a, a] %}{% do b.append(a) %}{% set d = {'x': b} %}"
         "{% do d.update({'y': b}) %}{{ d }}",
         "{'x': [[1], [1], [1]], 'y': [[1], [1], [1]]}"},
        {"{% set l = [1] %}{% do l.extend(l) %}{% do l.append(l[:]) %}{{ l }}", "[1, 1, [1, 1]]"},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cs_error err = {0};
        char *got = render(cases[i].src, &err);
        if (got || strcmp(err.msg, cases[i].want) != 0 || err.code != CS_INVALID) {
            printf("  error case %zu: %s\n    got:  %s\n    want: %s\n", i, cases[i].src,
                   got ? got : err.msg, cases[i].want);
            unit_failed_checks++;
        }
        free(got);
    }
    RUN_CASES(fine);
}

/* 30,000 chained terms of each kind: they work, or fail with a clear error;
 * the process never dies */
static void test_long_chains(void)
{
    static const struct {
        const char *first, *sep_term;
    } chains[] = {
        {"'a'", " ~ 'a'"},      {"1", " + 1"},     {"true", " and true"},
        {"false", " or false"}, {"'A'", "|lower"}, {"users", "[0]"},
        {"col", ".name"},       {"n", " * 1"},     {"'a'", " ~ 'a'|upper"},
    };
    static const char *const want[] = {NULL, "30000", "True", "False", "a", NULL, "", "3", NULL};
    size_t i;

    for (i = 0; i < sizeof(chains) / sizeof(chains[0]); i++) {
        cs_error err = {0};
        char *src = chain(chains[i].first, chains[i].sep_term, 30000);
        char *got = render(src, &err);
        if (got) {
            if (want[i] && strcmp(got, want[i]) != 0) {
                printf("  chain %zu (%s): got %.40s\n", i, chains[i].sep_term, got);
                unit_failed_checks++;
            }
        } else if (!strstr(err.msg, "nested too deeply") || err.code != CS_INVALID) {
            printf("  chain %zu (%s): unclear error: %s\n", i, chains[i].sep_term, err.msg);
            unit_failed_checks++;
        }
        free(got);
        free(src);
    }
    /* a recursive macro whose recursion sits at the bottom of a 990-deep
     * expression: the one eval() depth guard stops it, whatever the stack */
    {
        cs_error err = {0};
        char *body = chain("('' ~ m(k - 1) if k > 0 else '')", " ~ 'a'", 990), *src, *got;
        size_t n = strlen(body) + 64;
        src = malloc(n);
        snprintf(src, n, "{%% macro m(k) %%}%s{%% endmacro %%}{{ m(150) }}", body);
        got = render(src, &err);
        CHECK(got == NULL);
        CHECK(strstr(err.msg, "evaluation nested too deeply (limit 5000)") != NULL);
        free(got);
        free(src);
        free(body);
    }
}

/* deep values: built in a loop, compared, printed and freed without recursion blowing up */
static void test_deep_values(void)
{
    static const tcase cases[] = {
        {"{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}"
         "{% endfor %}{{ ns.l == ns.l }} {{ (ns.l | string)[:5] }}",
         "True [[[[["},
    };
    cs_error err = {0};
    char *got;

    RUN_CASES(cases);
    /* ordering two such values gives up at 64 levels, with an error */
    got = render("{% set ns = namespace(a=[], b=[]) %}{% for i in range(100000) %}"
                 "{% set ns.a = [ns.a] %}{% set ns.b = [ns.b] %}{% endfor %}{{ ns.a < ns.b }}",
                 &err);
    CHECK(got == NULL);
    CHECK_STR(err.msg, "t.sql:1:131: cannot compare 'list' with 'list'");
    free(got);
}

int main(void)
{
    UNIT_BEGIN("test_tpl");
    statements = tpl_dict_new();
    configs = tpl_dict_new();
    RUN(test_text_and_output);
    RUN(test_whitespace_control);
    RUN(test_expressions);
    RUN(test_tests);
    RUN(test_if_for);
    RUN(test_set_and_scoping);
    RUN(test_macros);
    RUN(test_filters);
    RUN(test_methods);
    RUN(test_call_statement);
    RUN(test_config_native);
    RUN(test_call_value_and_macros_api);
    RUN(test_errors);
    RUN(test_native_error_class);
    RUN(test_where_and_output_cap);
    RUN(test_caller_misuse);
    RUN(test_block_set_whitespace);
    RUN(test_threads_share_template);
    RUN(test_hostile_input);
    RUN(test_performance);
    RUN(test_values_api);
    RUN(test_list_attributes);
    RUN(test_star_args);
    RUN(test_chained_compare);
    RUN(test_json_zip_print);
    RUN(test_modules);
    RUN(test_dbt_blocks);
    RUN(test_strict_undefined);
    RUN(test_growth_bounded);
    RUN(test_cycles_refused);
    RUN(test_long_chains);
    RUN(test_deep_values);
    tpl_unref(statements);
    tpl_unref(configs);
    UNIT_END();
}
