/*
 * parse_bench.c - throughput of the _changes parser on realistic CHT rows.
 *
 * Builds in memory a CouchDB 3 style response of N rows (default 100,000)
 * whose documents are ~1 KB data_records (nested fields, an array, a few
 * non-ASCII strings and escapes), then feeds it in 16 KiB pieces, as libcurl
 * hands them over, and prints MB/s and docs/s (best of 5 runs).
 *
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Isrc -o build/parse_bench \
 *      bench/parse_bench.c src/feed/changes.c src/common/buf.c src/common/result.c &&
 * build/parse_bench
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "feed/changes.h"

static size_t total_doc_bytes;

static cs_result count_row(void *ud, const change_row *row, cs_error *err)
{
    (void)ud;
    (void)err;
    if (row->doc)
        total_doc_bytes += row->doc_len;
    return CS_OK;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void build(buf *b, int n)
{
    buf_puts(b, "{\"results\":[\n");
    for (int i = 0; i < n; i++) {
        buf_printf(
            b,
            "%s{\"seq\":\"%d-"
            "g1AAAAFTeJzLYWBgYMlgTmFQSUlKzi9KdUhJMtLLTCrWS87JL01JzMvLS8nJT9LLyy8BAA\","
            "\"id\":\"f3b1c2d4-%08d-4e5f-9a8b-7c6d5e4f3a2b\",\"changes\":[{\"rev\":\"3-"
            "8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a\"}],\"doc\":{\"_id\":\"f3b1c2d4-%08d-4e5f-9a8b-"
            "7c6d5e4f3a2b\",\"_rev\":\"3-8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a\",\"form\":"
            "\"pregnancy_home_visit\",\"type\":\"data_record\",\"content_type\":\"xml\","
            "\"reported_date\":1699999999%03d,\"contact\":{\"_id\":\"c0ffee00-1234-5678-9abc-"
            "def012345678\",\"parent\":{\"_id\":\"d1e2f3a4-b5c6-d7e8-f901-23456789abcd\","
            "\"parent\":{\"_id\":\"a9b8c7d6-e5f4-a3b2-c1d0-e9f8a7b6c5d4\"}}},\"fields\":{"
            "\"patient_name\":\"Am\\u00e9lie Nj\\u00e8ri \\\"Mama\\\" Wanjiku\",\"patient_id\":"
            "\"%05d\",\"lmp_date\":\"2023-11-02\",\"danger_signs\":[\"fever\",\"headache\","
            "\"bleeding\"],\"visit\":{\"number\":%d,\"weight_kg\":61.25,\"bp\":\"120/80\","
            "\"notes\":\"Mgonjwa alisema anaendelea vizuri \xe2\x80\x94 follow up in 2 weeks.\\n"
            "Referred to Kibera health centre.\"},\"inputs\":{\"source\":\"task\",\"user\":{"
            "\"contact_id\":\"0a1b2c3d-4e5f\",\"facility_id\":\"9f8e7d6c-5b4a\",\"name\":"
            "\"chw_%d\"}},\"meta\":{\"instanceID\":\"uuid:7f6e5d4c-3b2a-1908-7654-%012d\","
            "\"deprecatedID\":\"\"},\"geolocation\":{\"latitude\":-1.3133,\"longitude\":"
            "36.7876,\"accuracy\":12.5}},\"hidden_fields\":[\"meta\"],\"geolocation_log\":"
            "[{\"timestamp\":1699999999000,\"recording\":{\"code\":2,\"message\":\"timeout\"}}]}}",
            i ? ",\n" : "", i + 1, i, i, i % 1000, i % 100000, i % 7, i % 50, i);
    }
    buf_puts(b,
             "\n],\"last_seq\":\"100000-g1AAAAFTeJzLYWBgYMlgTmFQSUlKzi9KdUhJ\",\"pending\":0}\n");
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    changes_limits lim = {.max_doc_bytes = (size_t)64 << 20, .max_depth = 1000};
    const size_t piece = 16384;
    double best = 1e9;
    buf in;

    buf_init(&in, (size_t)1 << 30);
    build(&in, n);
    if (!buf_ok(&in)) {
        fprintf(stderr, "input too large\n");
        return 1;
    }
    for (int run = 0; run < 5; run++) {
        changes_parser *p = changes_parser_new(&lim, count_row, NULL);
        cs_error err;
        double t0 = now();
        total_doc_bytes = 0;
        for (size_t i = 0; i < in.len; i += piece) {
            size_t len = in.len - i < piece ? in.len - i : piece;
            if (changes_parser_feed(p, in.data + i, len, &err) != CS_OK) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
        }
        if (changes_parser_finish(p, &err) != CS_OK || changes_parser_rows(p) != (size_t)n) {
            fprintf(stderr, "finish: %s\n", err.msg);
            return 1;
        }
        double t = now() - t0;
        if (t < best)
            best = t;
        changes_parser_free(p);
    }
    printf("%d rows, %.1f MB of response, %.1f MB of cleaned docs (%.0f bytes/doc)\n", n,
           (double)in.len / 1e6, (double)total_doc_bytes / 1e6, (double)total_doc_bytes / n);
    printf("best of 5: %.3f s, %.0f MB/s, %.0f docs/s\n", best, (double)in.len / 1e6 / best,
           n / best);
    buf_free(&in);
    return 0;
}
