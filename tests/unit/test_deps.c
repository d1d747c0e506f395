/*
 * test_deps.c - the pure parts of `pipeline deps`: versions, ranges, the
 * pick among a repository's tags, and the hub name to URL rule.
 */
#include <stdlib.h>

#include "pipeline/deps.h"
#include "unit.h"

static void test_version_parse(void)
{
    static const struct {
        const char *in;
        bool ok;
        long ma, mi, pa;
        const char *pre;
    } cases[] = {
        {"1.1.1", true, 1, 1, 1, ""},        {"v0.10.0", true, 0, 10, 0, ""},
        {"1.2", true, 1, 2, 0, ""},          {"2.0.0-rc1", true, 2, 0, 0, "rc1"},
        {"1.0.0+build5", true, 1, 0, 0, ""}, {"1", false, 0, 0, 0, ""},
        {"main", false, 0, 0, 0, ""},        {"1.x.0", false, 0, 0, 0, ""},
        {"1.1.1junk", false, 0, 0, 0, ""},   {"", false, 0, 0, 0, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        deps_version v;
        bool ok = deps_version_parse(cases[i].in, &v);
        CHECK_INT(ok, cases[i].ok);
        if (ok && cases[i].ok) {
            CHECK_INT(v.major, cases[i].ma);
            CHECK_INT(v.minor, cases[i].mi);
            CHECK_INT(v.patch, cases[i].pa);
            CHECK_STR(v.pre, cases[i].pre);
        }
    }
}

static void test_ranges(void)
{
    static const struct {
        const char *v, *range;
        bool match;
    } cases[] = {
        {"1.1.1", "1.1.1", true},    {"1.1.1", "=1.1.1", true},   {"1.1.2", "1.1.1", false},
        {"1.1.0", ">=1.1.0", true},  {"1.0.9", ">=1.1.0", false}, {"1.9.9", "<2.0.0", true},
        {"2.0.0", "<2.0.0", false},  {"2.0.0", "<=2.0.0", true},  {"0.10.0", ">0.9.0", true},
        {"0.9.10", ">0.9.2", true},  {"1.0.0", "!=1.0.0", false}, {"1.0.0-rc1", "<1.0.0", true},
        {"1.0.0", ">= 1.0.0", true}, {"1.0.0", "~>1.0.0", false}, {"1.0.0", ">=junk", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        deps_version v;
        CHECK(deps_version_parse(cases[i].v, &v));
        if (deps_range_match(&v, cases[i].range) != cases[i].match)
            printf("  case %zu: %s %s\n", i, cases[i].v, cases[i].range);
        CHECK_INT(deps_range_match(&v, cases[i].range), cases[i].match);
    }
}

static void test_pick_tag(void)
{
    char *tags[] = {"0.9.0", "v1.0.0", "1.1.1", "1.2.0-rc1", "1.10.0", "2.0.0", "latest"};
    char *range[] = {">=1.0.0", "<2.0.0"};
    char *exact[] = {"1.1.1"};
    char *none[] = {">=3.0.0"};
    char *vexact[] = {"1.0.0"};
    size_t n = sizeof(tags) / sizeof(tags[0]);

    CHECK_INT(deps_pick_tag(tags, n, range, 2, false), 4); /* 1.10.0 sorts after 1.2.0 */
    CHECK_INT(deps_pick_tag(tags, n, exact, 1, false), 2);
    CHECK_INT(deps_pick_tag(tags, n, none, 1, false), -1);
    CHECK_INT(deps_pick_tag(tags, n, vexact, 1, false), 1); /* the tag "v1.0.0" */
    CHECK_INT(deps_pick_tag(tags, 4, range, 2, false), 2);  /* no pre-release ... */
    CHECK_INT(deps_pick_tag(tags, 4, range, 2, true), 3);   /* ... unless allowed */
    CHECK_INT(deps_pick_tag(tags, n, NULL, 0, false), 5);   /* no range: the highest */
}

static void test_hub_url(void)
{
    char *u = deps_hub_url(NULL, "dbt-labs", "dbt_utils");
    CHECK_STR(u, "https://github.com/dbt-labs/dbt-utils.git");
    free(u);
    u = deps_hub_url("", "calogica", "dbt_date");
    CHECK_STR(u, "https://github.com/calogica/dbt-date.git");
    free(u);
    u = deps_hub_url("file:///srv/{org}/{name}/{repo}", "a", "b_c");
    CHECK_STR(u, "file:///srv/a/b_c/b-c");
    free(u);
}

int main(void)
{
    UNIT_BEGIN("test_deps");
    RUN(test_version_parse);
    RUN(test_ranges);
    RUN(test_pick_tag);
    RUN(test_hub_url);
    UNIT_END();
}
