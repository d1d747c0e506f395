/*
 * test_seed.c - the seed CSV reader and dbt's type inference.
 */
#include <string.h>

#include "pipeline/seed.h"
#include "unit.h"

static void test_csv(void)
{
    static const char text[] = "\xef\xbb\xbf"
                               "id,name,note\r\n"
                               "1,\"Smith, J\",\"say \"\"hi\"\"\"\r\n"
                               "\n"
                               "2,,\"two\nlines\"\n"
                               "3,x,";
    seed_csv t;
    cs_error err;

    CHECK_INT(seed_csv_parse("a.csv", text, strlen(text), ',', &t, &err), CS_OK);
    CHECK_INT(t.ncols, 3);
    CHECK_INT(t.nrows, 3);
    if (t.nrows == 3) {
        CHECK_STR(t.header[0], "id");
        CHECK_STR(t.rows[0][1], "Smith, J");
        CHECK_STR(t.rows[0][2], "say \"hi\"");
        CHECK_STR(t.rows[1][1], "");
        CHECK_STR(t.rows[1][2], "two\nlines");
        CHECK_STR(t.rows[2][2], "");
    }
    seed_csv_free(&t);

    CHECK_INT(seed_csv_parse("b.csv", "a|b\n1|2\n", 8, '|', &t, &err), CS_OK);
    CHECK_INT(t.nrows, 1);
    seed_csv_free(&t);
}

static void test_csv_errors(void)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"a,b\n1,2,3\n", "x.csv:2: 3 fields where the header has 2"},
        {"a,b\n1\n", "x.csv:2: 1 fields where the header has 2"},
        {"a,b\n\"1,2\n", "x.csv:2: unterminated or misplaced quote"},
        {"a,b\n\"1\"x,2\n", "x.csv:2: unterminated or misplaced quote"},
        {"a,,c\n", "x.csv: column 2 has no name"},
        {"", "x.csv: no header line"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        seed_csv t;
        cs_error err = {0};
        CHECK_INT(seed_csv_parse("x.csv", cases[i].text, strlen(cases[i].text), ',', &t, &err),
                  CS_INVALID);
        CHECK_STR(err.msg, cases[i].msg);
    }
}

static void test_infer(void)
{
    static const struct {
        const char *values[4];
        const char *type;
    } cases[] = {
        {{"1", "-2", "", "30"}, "integer"},
        {{"1", "2.5", "null", "1e3"}, "numeric"},
        {{"1", "12345678901234567890", NULL}, "numeric"},
        {{"2024-01-31", "", "2023-12-01", NULL}, "date"},
        {{"2024-01-31 10:00:00", "2024-02-01T00:00:00Z", "2024-02-01T00:00:00.123+02:00", NULL},
         "timestamp"},
        {{"true", "False", "", NULL}, "boolean"},
        {{"yes", "no", NULL}, "text"},
        {{"1", "a", NULL}, "text"},
        {{"2024-13-01", NULL}, "text"},
        {{"1,000", NULL}, "text"},
        {{"", "null", NULL}, "integer"}, /* all null: agate's first type */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *cells[4][1];
        char **rows[4];
        char *hdr[1] = {"c"};
        seed_csv t = {hdr, 1, rows, 0};
        for (size_t r = 0; r < 4 && cases[i].values[r]; r++) {
            cells[r][0] = (char *)cases[i].values[r];
            rows[r] = cells[r];
            t.nrows++;
        }
        const char *got = seed_infer_type(&t, 0);
        if (strcmp(got, cases[i].type) != 0)
            printf("  case %zu\n", i);
        CHECK_STR(got, cases[i].type);
    }
}

int main(void)
{
    UNIT_BEGIN("test_seed");
    RUN(test_csv);
    RUN(test_csv_errors);
    RUN(test_infer);
    UNIT_END();
}
