/*
 * test_project.c - YAML values, project loading, graph ordering and cycles,
 * selection, and the materialization SQL builders.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline/graph.h"
#include "pipeline/materialize.h"
#include "pipeline/yaml_tree.h"
#include "pipeline/project.h"
#include "pipeline/select.h"
#include "unit.h"

#define FIXTURE "tests/fixtures/projects/loadtest"

static void test_yaml_scalars(void)
{
    static const struct {
        const char *yaml;
        const char *text;
    } cases[] = {
        {"a: 1", "{\"a\": 1}"},
        {"a: '1'", "{\"a\": \"1\"}"},
        {"a: ~", "{\"a\": null}"},
        {"a: True", "{\"a\": true}"},
        {"a: 1.5", "{\"a\": 1.5}"},
        {"a: [x, 'y', 3]", "{\"a\": [\"x\", \"y\", 3]}"},
        {"{batch_size: 1000}", "{\"batch_size\": 1000}"},
        {"", "null"},
        {"a:\n  b: -2\n  c: abc\n", "{\"a\": {\"b\": -2, \"c\": \"abc\"}}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pv *v = NULL;
        cs_error err;
        buf b;
        buf_init(&b, 0);
        CHECK_INT(pv_parse_yaml("t.yml", cases[i].yaml, strlen(cases[i].yaml), &v, &err), CS_OK);
        pv_to_text(v, &b);
        CHECK_STR(b.data, cases[i].text);
        buf_free(&b);
        pv_free(v);
    }
}

static void test_yaml_errors(void)
{
    static const struct {
        const char *yaml;
        const char *msg;
    } cases[] = {
        {"a: [1, 2\n", "t.yml:2:1: "},
        {"a: &x 1\nb: *x\n", "t.yml:2:4: YAML aliases are not supported"},
        {"a: b: c\n", "t.yml:1:5: "},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pv *v = NULL;
        cs_error err = {0};
        CHECK_INT(pv_parse_yaml("t.yml", cases[i].yaml, strlen(cases[i].yaml), &v, &err),
                  CS_INVALID);
        CHECK(strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)) == 0);
        if (strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)) != 0)
            printf("  got: %s\n", err.msg);
        CHECK(v == NULL);
    }
}

static pl_project *load(void)
{
    pl_project *p = NULL;
    cs_error err;
    if (project_load(FIXTURE, &p, &err) != CS_OK)
        printf("  load: %s\n", err.msg);
    return p;
}

static void config_text(const pl_project *p, const char *model, const char *key, char *out,
                        size_t n)
{
    long i = project_find_model(p, NULL, model);
    buf b;
    buf_init(&b, 0);
    pv_to_text(i >= 0 ? pv_get(p->models[i].config, key) : NULL, &b);
    snprintf(out, n, "%s", b.data);
    buf_free(&b);
}

static void test_project_load(void)
{
    pl_project *p = load();
    char got[256];
    static const struct {
        const char *model, *key, *want;
    } cases[] = {
        {"stg_a", "materialized", "\"table\""},
        {"stg_a", "tags", "[\"stage\"]"},
        {"stg_b", "tags", "[\"stage\", \"special\"]"},
        {"mart_c", "materialized", "\"incremental\""},
        {"mart_c", "tags", "[\"mart\"]"},
        {"mart_c", "contract", "{\"enforced\": true}"},
        {"base_a", "materialized", "\"incremental\""},
        {"base_a", "tags", "[\"base\", \"from_root\"]"},
    };

    CHECK(p != NULL);
    if (!p)
        return;
    CHECK_INT(p->npackages, 2);
    CHECK_STR(p->packages[0].name, "loadtest");
    CHECK_STR(p->packages[1].name, "basepkg");
    CHECK_INT(p->nmodels, 4);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        config_text(p, cases[i].model, cases[i].key, got, sizeof(got));
        CHECK_STR(got, cases[i].want);
    }
    CHECK_STR(p->models[project_find_model(p, NULL, "stg_a")].relpath, "models/staging/stg_a.sql");
    CHECK_INT(p->nsources, 1);
    CHECK_STR(p->sources[0].schema, "{{ env_var('POSTGRES_SCHEMA') }}");
    CHECK_INT(project_find_source(p, "couchdb", "couchdb"), 0);
    CHECK_INT(p->nmacros, 1);
    CHECK_INT(p->ntests, 3);
    CHECK_STR(p->tests[0].name, "no_negative");
    CHECK_STR(p->tests[1].name, "not_null_mart_c_id");
    CHECK_STR(p->tests[2].kind, "accepted_values");
    CHECK_INT(pv_get(p->tests[2].args, "values")->n, 2);
    CHECK_INT(p->packages[0].on_run_end->n, 1);
    CHECK(pv_get(p->selectors, "staged") != NULL);
    CHECK(!project_changed(p));
    project_free(p);
}

static void test_project_errors(void)
{
    pl_project *p = NULL;
    cs_error err = {0};
    CHECK_INT(project_load("tests/fixtures/projects/does-not-exist", &p, &err), CS_PERMANENT);
    CHECK(strstr(err.msg, "no dbt_project.yml") != NULL);
    CHECK(p == NULL);
}

static void test_config_merge(void)
{
    pv *dst = pv_new(PV_MAP), *src = NULL;
    cs_error err;
    buf b;
    const char *y = "{+materialized: table, pre-hook: 'a', tags: x}";
    CHECK_INT(pv_parse_yaml("t", y, strlen(y), &src, &err), CS_OK);
    project_config_merge(dst, src);
    project_config_merge(dst, src);
    buf_init(&b, 0);
    pv_to_text(dst, &b);
    CHECK_STR(b.data, "{\"materialized\": \"table\", \"pre_hook\": [\"a\", \"a\"], \"tags\": "
                      "[\"x\", \"x\"]}");
    buf_free(&b);
    pv_free(src);
    pv_free(dst);
}

static const char *names[] = {"a", "b", "c", "d", "e"};
static const char *name_of(void *ud, size_t i)
{
    return names[i];
}

static void test_graph_order(void)
{
    static const struct {
        size_t n;
        size_t edges[6][2];
        size_t nedges;
        const char *want; /* order, or the error */
    } cases[] = {
        {3, {{2, 1}, {1, 0}}, 2, "c b a"},
        {4, {{0, 1}, {0, 2}, {1, 3}, {2, 3}}, 4, "a b c d"},
        {3, {{0, 1}, {1, 2}, {2, 0}}, 3, "dependency cycle: a -> b -> c -> a"},
        {5, {{0, 1}, {1, 2}, {2, 3}, {3, 1}, {0, 4}}, 5, "dependency cycle: b -> c -> d -> b"},
        {2, {{0, 0}}, 1, "dependency cycle: a -> a"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        graph *g = graph_new(cases[i].n);
        size_t order[5];
        cs_error err = {0};
        char got[256] = "";
        for (size_t e = 0; e < cases[i].nedges; e++)
            graph_add_edge(g, cases[i].edges[e][0], cases[i].edges[e][1]);
        if (graph_order(g, order, name_of, NULL, &err) == CS_OK) {
            for (size_t k = 0; k < cases[i].n; k++)
                snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", k ? " " : "",
                         names[order[k]]);
            CHECK_STR(got, cases[i].want);
        } else {
            CHECK_STR(err.msg, cases[i].want);
        }
        graph_free(g);
    }
}

static void test_select(void)
{
    pl_project *p = load();
    static const struct {
        const char *select, *exclude, *want;
    } cases[] = {
        {NULL, NULL, "base_a mart_c stg_a stg_b"},
        {"stg_a", NULL, "stg_a"},
        {"+stg_b", NULL, "base_a stg_a stg_b"},
        {"stg_a+", NULL, "mart_c stg_a stg_b"},
        {"stg_a+1", NULL, "stg_a stg_b"},
        {"1+stg_b", NULL, "stg_a stg_b"},
        {"tag:stage", "stg_b", "stg_a"},
        {"tag:stage,tag:special", NULL, "stg_b"},
        {"path:models/staging", NULL, "stg_a stg_b"},
        {"path:models/marts/mart_c.sql", NULL, "mart_c"},
        {"package:basepkg", NULL, "base_a"},
        {"basepkg", NULL, "base_a"},
        {"loadtest.staging", NULL, "stg_a stg_b"},
        {"stg_*", NULL, "stg_a stg_b"},
        {"config.materialized:incremental", NULL, "base_a mart_c"},
        {"selector:staged", NULL, "stg_a stg_b"},
        {"selector:both", NULL, "base_a mart_c"},
        {"@stg_b", NULL, "base_a mart_c stg_a stg_b"},
        {"mart_c stg_a", NULL, "mart_c stg_a"},
        {"nosuch", NULL, ""},
        {"bogus:x", NULL, "error: unsupported selector method \"bogus\""},
        {"selector:none", NULL, "error: unknown selector \"none\""},
    };
    graph *g;

    CHECK(p != NULL);
    if (!p)
        return;
    g = graph_new(p->nmodels);
    /* the fixture's refs, as the parse phase would find them */
    graph_add_edge(g, project_find_model(p, NULL, "base_a"), project_find_model(p, NULL, "stg_a"));
    graph_add_edge(g, project_find_model(p, NULL, "stg_a"), project_find_model(p, NULL, "stg_b"));
    graph_add_edge(g, project_find_model(p, NULL, "stg_b"), project_find_model(p, NULL, "mart_c"));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool sel[8];
        cs_error err = {0};
        char got[CS_ERROR_MAX + 16] = "";
        const char *sorted[] = {"base_a", "mart_c", "stg_a", "stg_b"};
        if (select_models(p, g, cases[i].select, cases[i].exclude, sel, &err) != CS_OK) {
            snprintf(got, sizeof(got), "error: %s", err.msg);
            CHECK(strncmp(got, cases[i].want, strlen(cases[i].want)) == 0);
            if (strncmp(got, cases[i].want, strlen(cases[i].want)) != 0)
                printf("  %s: got %s\n", cases[i].select, got);
            continue;
        }
        for (size_t k = 0; k < 4; k++) {
            if (sel[project_find_model(p, NULL, sorted[k])])
                snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", *got ? " " : "",
                         sorted[k]);
        }
        CHECK_STR(got, cases[i].want);
    }
    graph_free(g);
    project_free(p);
}

static void test_materialize(void)
{
    buf b;
    cs_error err = {0};
    pv *contract = NULL, *idx = NULL;
    const char *keys[] = {"a", "b"};
    const char *cy = "- {name: uuid, data_type: string, constraints: [{type: unique}, {type: "
                     "foreign_key, expression: 'v1.p (uuid) ON DELETE CASCADE'}]}\n"
                     "- {name: n, data_type: integer, constraints: [{type: not_null}]}\n";
    const char *iy = "[{columns: [uuid], type: hash}, {columns: [a, b]}]";

    buf_init(&b, 0);
    CHECK_INT(pv_parse_yaml("c", cy, strlen(cy), &contract, &err), CS_OK);
    CHECK_INT(pv_parse_yaml("i", iy, strlen(iy), &idx, &err), CS_OK);
    CHECK_INT(mat_create_table(&b, "v1", "m", "select 1;\n", NULL, NULL, &err), CS_OK);
    CHECK_STR(b.data, "CREATE TABLE \"v1\".\"m\" AS (\nselect 1\n)");
    buf_reset(&b);
    CHECK_INT(mat_create_table(&b, "v1", "m", "select x", contract, NULL, &err), CS_OK);
    CHECK_STR(b.data, "CREATE TABLE \"v1\".\"m\" (\n    uuid text unique references v1.p (uuid) "
                      "ON DELETE CASCADE,\n    n int not null\n);\nINSERT INTO \"v1\".\"m\" "
                      "(uuid, n)\nSELECT uuid, n FROM (\nselect x\n) AS model_subq");
    buf_reset(&b);
    CHECK_INT(mat_indexes(&b, "v1", "m", idx, &err), CS_OK);
    CHECK_STR(b.data, "CREATE INDEX ON \"v1\".\"m\" USING hash (uuid);\n"
                      "CREATE INDEX ON \"v1\".\"m\" USING btree (a, b);\n");
    buf_reset(&b);
    mat_swap(&b, "v1", "m", 'v', "m__tmp", 'r', "m__bak");
    CHECK_STR(b.data,
              "ALTER VIEW \"v1\".\"m\" RENAME TO \"m__bak\";\nALTER TABLE \"v1\".\"m__tmp\" "
              "RENAME TO \"m\";\nDROP VIEW IF EXISTS \"v1\".\"m__bak\" CASCADE;\n");
    buf_reset(&b);
    mat_incr_delete(&b, "v1", "m", "tmp", 0, keys, 2);
    CHECK_STR(b.data, "DELETE FROM \"v1\".\"m\" AS t USING \"tmp\" AS s WHERE t.a = s.a AND "
                      "t.b = s.b");
    buf_reset(&b);
    mat_incr_delete(&b, "v1", "m", "tmp", 12, keys, 1);
    CHECK_STR(b.data, "DELETE FROM \"v1\".\"m\" AS t USING (SELECT * FROM \"tmp\" LIMIT 12) AS s "
                      "WHERE t.a = s.a");
    buf_reset(&b);
    mat_temp_insert(&b, "m__cs_incr", "select 1;");
    CHECK_STR(b.data,
              "INSERT INTO pg_temp.\"m__cs_incr\" SELECT * FROM (\nselect 1\n) AS model_subq");
    buf_reset(&b);
    mat_incr_insert(&b, "v1", "m", "tmp", keys, 2);
    CHECK_STR(b.data, "INSERT INTO \"v1\".\"m\" (\"a\", \"b\") SELECT \"a\", \"b\" FROM \"tmp\"");
    {
        const char *cols[] = {"a", "c", "b", "d"};
        buf_reset(&b);
        mat_incr_merge(&b, "v1", "m", "tmp", 5, keys, 2, cols, 4, true);
        CHECK_STR(b.data, "MERGE INTO \"v1\".\"m\" AS t USING (SELECT * FROM \"tmp\" LIMIT 5) AS s "
                          "ON t.a = s.a AND t.b = s.b\nWHEN MATCHED AND (t.\"c\", t.\"d\") IS "
                          "DISTINCT FROM (s.\"c\", s.\"d\") THEN UPDATE SET \"c\" = s.\"c\", "
                          "\"d\" = s.\"d\"\nWHEN NOT MATCHED THEN INSERT (\"a\", \"c\", \"b\", "
                          "\"d\") VALUES (s.\"a\", s.\"c\", s.\"b\", s.\"d\")");
        buf_reset(&b);
        mat_incr_merge(&b, "v1", "m", "tmp", 0, keys, 1, cols, 2, false);
        CHECK_STR(b.data, "MERGE INTO \"v1\".\"m\" AS t USING \"tmp\" AS s ON t.a = s.a\n"
                          "WHEN MATCHED THEN UPDATE SET \"c\" = s.\"c\"\nWHEN NOT MATCHED THEN "
                          "INSERT (\"a\", \"c\") VALUES (s.\"a\", s.\"c\")");
        buf_reset(&b);
        mat_incr_merge(&b, "v1", "m", "tmp", 0, keys, 2, keys, 2, true);
        CHECK_STR(b.data, "MERGE INTO \"v1\".\"m\" AS t USING \"tmp\" AS s ON t.a = s.a AND "
                          "t.b = s.b\nWHEN NOT MATCHED THEN INSERT (\"a\", \"b\") VALUES (s.\"a\", "
                          "s.\"b\")");
    }
    buf_reset(&b);
    mat_inject_ctes(&b, "-- c\nWITH x AS (select 1) select * from x", "__dbt__cte__e as (s)");
    CHECK_STR(b.data, "-- c\nWITH __dbt__cte__e as (s),  x AS (select 1) select * from x");
    buf_reset(&b);
    mat_inject_ctes(&b, "select 1", "__dbt__cte__e as (s)");
    CHECK_STR(b.data, "with __dbt__cte__e as (s)\nselect 1");
    buf_reset(&b);
    pv_set(contract->items[1], "data_type", pv_new(PV_NULL));
    CHECK_INT(mat_create_table(&b, "v1", "m", "select x", contract, NULL, &err), CS_INVALID);
    CHECK_STR(err.msg, "contract column \"n\" has no data_type");
    buf_free(&b);
    pv_free(contract);
    pv_free(idx);
}

/* the names beside a relation stay distinct from it and from each other
 * after PostgreSQL's 63-byte cut */
static void test_temp_names(void)
{
    static const char *const suffixes[] = {"__cs_tmp", "__cs_backup", "__cs_incr"};
    static const struct {
        const char *name;
        const char *tmp; /* its __cs_tmp name */
    } cases[] = {
        {"contact", "contact__cs_tmp"},
        /* 55 + 8 = 63 bytes: fits as it is */
        {"a234567890123456789012345678901234567890123456789012345",
         "a234567890123456789012345678901234567890123456789012345__cs_tmp"},
        /* 58 bytes: cut, hashed */
        {"m234567890123456789012345678901234567890123456789012345678",
         "m234567890123456789012345678901234567890123456_1f703160__cs_tmp"},
    };
    char out[3][MAT_NAME_MAX + 1];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t k = 0; k < 3; k++) {
            mat_temp_name(out[k], sizeof(out[k]), cases[i].name, suffixes[k]);
            CHECK(strlen(out[k]) <= MAT_NAME_MAX);
            CHECK(strncmp(out[k], cases[i].name, MAT_NAME_MAX) != 0 ||
                  strlen(cases[i].name) + strlen(suffixes[k]) <= MAT_NAME_MAX);
        }
        CHECK(strcmp(out[0], out[1]) != 0 && strcmp(out[1], out[2]) != 0 &&
              strcmp(out[0], out[2]) != 0);
        mat_temp_name(out[0], sizeof(out[0]), cases[i].name, "__cs_tmp");
        CHECK_STR(out[0], cases[i].tmp);
    }
    /* two long names that share their first 54 bytes differ after the cut */
    mat_temp_name(out[0], sizeof(out[0]),
                  "x23456789012345678901234567890123456789012345678901234_one", "__cs_tmp");
    mat_temp_name(out[1], sizeof(out[1]),
                  "x23456789012345678901234567890123456789012345678901234_two", "__cs_tmp");
    CHECK(strcmp(out[0], out[1]) != 0);
    /* a cut never splits a UTF-8 character */
    mat_temp_name(out[0], sizeof(out[0]),
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
                  "__cs_backup");
    CHECK(strchr(out[0], '_') && ((unsigned char)strchr(out[0], '_')[-1]) == 0xa9);
}

/* a refresh in place, and the delete of an expression unique_key */
static void test_materialize_more(void)
{
    const char *cols[] = {"id", "val"};
    const char *exprs[] = {"coalesce(id, 0)", "val % 10"};
    buf b;

    buf_init(&b, 0);
    mat_table_refresh(&b, "v1", "t", "select 1 as id, 2 as val;", cols, 2);
    CHECK_STR(b.data, "DELETE FROM \"v1\".\"t\";\nINSERT INTO \"v1\".\"t\" (\"id\", \"val\") "
                      "SELECT \"id\", \"val\" FROM (\nselect 1 as id, 2 as val\n) AS model_subq");
    buf_reset(&b);
    mat_incr_delete(&b, "v1", "t", "t__cs_incr", 3, exprs, 2);
    CHECK_STR(b.data, "DELETE FROM \"v1\".\"t\" WHERE ((coalesce(id, 0)), (val % 10)) IN (SELECT "
                      "(coalesce(id, 0)), (val % 10) FROM \"t__cs_incr\" LIMIT 3)");
    buf_reset(&b);
    mat_incr_delete(&b, "v1", "t", "t__cs_incr", 0, cols, 1);
    CHECK_STR(b.data, "DELETE FROM \"v1\".\"t\" AS t USING \"t__cs_incr\" AS s WHERE t.id = s.id");
    buf_free(&b);
}

/* writes text to dir/rel (folders made as needed) */
static void put_file(const char *dir, const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    for (char *s = strchr(path + strlen(dir) + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        mkdir(path, 0755);
        *s = '/';
    }
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static const pl_test *find_test(const pl_project *p, const char *name)
{
    for (size_t i = 0; i < p->ntests; i++)
        if (strcmp(p->tests[i].name, name) == 0)
            return &p->tests[i];
    return NULL;
}

/* data tests as dbt reads them: targets, package names, config keys, seeds' property files */
static void test_project_tests(void)
{
    char dir[] = "/tmp/cs-unit-tests.XXXXXX";
    pl_project *p = NULL;
    cs_error err = {0};
    const pl_test *t;
    char cmd[128];

    CHECK(mkdtemp(dir) != NULL);
    put_file(dir, "dbt_project.yml",
             "name: tp\nseeds:\n  tp:\n    s:\n      +delimiter: ';'\n"
             "data_tests:\n  +severity: warn\n  tp:\n    +error_if: '>3'\n");
    put_file(dir, "models/m.sql", "select 1 as id\n");
    put_file(dir, "seeds/s.csv", "id\n1\n");
    put_file(dir, "tests/generic/g.sql", "{% test g(model) %}select 1{% endtest %}\n");
    put_file(dir, "tests/one.sql", "select 1\n");
    put_file(dir, "models/p.yml",
             "version: 2\n"
             "sources:\n  - name: raw\n    tables:\n      - name: t\n"
             "        columns:\n          - name: c\n            tests: [not_null]\n"
             "models:\n  - name: m\n    columns:\n      - name: id\n        tests:\n"
             "          - dbt_utils.expression_is_true:\n              expression: '> 0'\n"
             "              where: id > 1\n              error_if: '>5'\n"
             "              config: {severity: warn}\n"
             "          - dbt_utils.expression_is_true:\n              expression: '> 1'\n"
             "  - name: gone\n    tests: [unique]\n");
    put_file(dir, "seeds/props.yml",
             "version: 2\nseeds:\n  - name: s\n    config:\n      column_types: {id: bigint}\n"
             "    columns:\n      - name: id\n        tests: [unique]\n");
    CHECK_INT(project_load(dir, &p, &err), CS_OK);
    if (!p) {
        printf("  load: %s\n", err.msg);
        return;
    }
    CHECK_INT(p->nmacros, 1); /* tests/generic/ is macros */
    CHECK((t = find_test(p, "one")) != NULL && !t->kind);
    t = find_test(p, "dbt_utils_expression_is_true_m_id");
    CHECK(t != NULL);
    if (t) {
        CHECK_STR(t->ns, "dbt_utils");
        CHECK_STR(t->kind, "expression_is_true");
        CHECK_STR(t->column, "id");
        CHECK(t->model == project_find_model(p, NULL, "m") && t->seed < 0 && t->source < 0);
        CHECK_STR(pv_gets(t->args, "expression"), "> 0");
        CHECK(pv_get(t->args, "where") == NULL);
        CHECK_STR(pv_gets(t->config, "where"), "id > 1");
        CHECK_STR(pv_gets(t->config, "error_if"), ">5");
        CHECK_STR(pv_gets(t->config, "severity"), "warn");
    }
    /* dbt_project.yml's data_tests: under the test's own config */
    t = find_test(p, "dbt_utils_expression_is_true_m_id_2");
    CHECK(t != NULL);
    if (t) {
        CHECK_STR(pv_gets(t->config, "severity"), "warn");
        CHECK_STR(pv_gets(t->config, "error_if"), ">3");
    }
    CHECK((t = find_test(p, "not_null_source_raw_t_c")) != NULL && t->source == 0);
    CHECK((t = find_test(p, "unique_s_id")) != NULL && t->seed == 0);
    CHECK(find_test(p, "unique_gone") == NULL); /* described, no file: a warning */
    CHECK_INT(p->nseeds, 1);
    CHECK_STR(pv_gets(pv_get(p->seeds[0].config, "column_types"), "id"), "bigint");
    CHECK_STR(pv_gets(p->seeds[0].config, "delimiter"), ";");
    CHECK_STR(p->seeds[0].relpath, "seeds/s.csv");
    project_free(p);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
}

int main(void)
{
    UNIT_BEGIN("test_project");
    RUN(test_yaml_scalars);
    RUN(test_yaml_errors);
    RUN(test_project_load);
    RUN(test_project_errors);
    RUN(test_project_tests);
    RUN(test_config_merge);
    RUN(test_graph_order);
    RUN(test_select);
    RUN(test_materialize);
    RUN(test_temp_names);
    RUN(test_materialize_more);
    UNIT_END();
}
