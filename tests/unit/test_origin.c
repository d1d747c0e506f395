/*
 * test_origin.c - where `cht-sync run` takes its project from: the order
 * DBT_LOCAL_PATH, CHT_PIPELINE_BRANCH_URL, the base models; which base
 * models CHT_PIPELINE_BASE gives; and URLs shown without credentials.
 */
#include <stdlib.h>

#include "daemon/origin.h"
#include "pipeline/project.h"
#include "unit.h"

#define USER_PROJECT "tests/fixtures/projects/daemon_user"
#define BASE_PROJECT "tests/fixtures/projects/daemon_base"

static void test_redact(void)
{
    static const struct {
        const char *url, *want;
    } cases[] = {
        {"https://github.com/medic/cht-pipeline", "https://github.com/medic/cht-pipeline"},
        {"https://user:s3cret@github.com/org/models", "https://github.com/org/models"},
        {"https://token@github.com/org/models#v1", "https://github.com/org/models#v1"},
        {"file:///srv/repo", "file:///srv/repo"},
        {"https://github.com/org/models/a@b", "https://github.com/org/models/a@b"},
        {"git@github.com:org/models.git", "github.com:org/models.git"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = origin_redact_url(cases[i].url);
        CHECK_STR(got, cases[i].want);
        free(got);
    }
}

static void test_resolve(void)
{
    static const struct {
        const char *local, *base;
        cs_result rc;
        const char *project, *base_dir;
    } cases[] = {
        /* a folder as base: the project when none is given */
        {NULL, "/srv/base", CS_OK, "/srv/base", "/srv/base"},
        {"", "/srv/base", CS_OK, "/srv/base", "/srv/base"},
        /* DBT_LOCAL_PATH wins, and gets the base models */
        {"/srv/mine", "/srv/base", CS_OK, "/srv/mine", "/srv/base"},
        /* project: no base models offered */
        {"/srv/mine", "project", CS_OK, "/srv/mine", NULL},
        /* nothing at all */
        {NULL, "project", CS_PERMANENT, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cs_config cfg = {0};
        origin o;
        cs_error err;
        cfg.dbt_local_path = (char *)cases[i].local;
        cfg.cht_pipeline_base = (char *)cases[i].base;
        cfg.cache_dir = "/nonexistent/cache";
        CHECK_INT(origin_resolve(&cfg, &o, &err), cases[i].rc);
        if (cases[i].rc == CS_OK) {
            CHECK_STR(o.project_dir, cases[i].project);
            if (cases[i].base_dir)
                CHECK_STR(o.base_dir, cases[i].base_dir);
            else
                CHECK(o.base_dir == NULL);
            CHECK(o.what != NULL);
        }
        origin_free(&o);
    }
}

/* the base models stand in for a cht-pipeline git package */
static void test_base_package(void)
{
    pl_project *p = NULL;
    cs_error err;

    CHECK_INT(project_load_with_base(USER_PROJECT, BASE_PROJECT, &p, &err), CS_OK);
    if (p) {
        CHECK_INT(p->npackages, 2);
        CHECK_STR(p->packages[1].name, PROJECT_BASE_PACKAGE);
        CHECK(project_find_model(p, PROJECT_BASE_PACKAGE, "document_metadata") >= 0);
        CHECK(project_find_model(p, "deployment_models", "user_records") >= 0);
    }
    project_free(p);
    /* the base project itself as the root: not loaded twice */
    CHECK_INT(project_load_with_base(BASE_PROJECT, BASE_PROJECT, &p, &err), CS_OK);
    if (p)
        CHECK_INT(p->npackages, 1);
    project_free(p);
    /* without base models, the git package is the loader's to refuse */
    CHECK_INT(project_load_with_base(USER_PROJECT, NULL, &p, &err), CS_INVALID);
    CHECK(strstr(err.msg, "packages.yml") != NULL);
}

int main(void)
{
    UNIT_BEGIN("test_origin");
    RUN(test_redact);
    RUN(test_resolve);
    RUN(test_base_package);
    UNIT_END();
}
