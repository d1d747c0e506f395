/*
 * test_changes.c - unit tests of the streaming _changes parser and cleaner.
 *
 * Every response is parsed whole, one byte at a time and at random split
 * points; the rows, last_seq, pending and error of each run are rendered to
 * one text (see render) and all runs must give the expected text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "feed/changes.h"
#include "unit.h"

#define BIG ((size_t)256 << 20)

typedef struct {
    buf out;        /* rendered rows */
    int stop_after; /* > 0: the callback fails on that row */
    cs_result stop_rc;
} sink;

static void put_nullable(buf *b, const char *s)
{
    buf_puts(b, s ? s : "~");
}

/* One line per row: id|rev|seq|deleted|cleaned|doc, or !reason for doc. */
static cs_result collect(void *ud, const change_row *row, cs_error *err)
{
    sink *k = ud;
    buf *b = &k->out;

    buf_puts(b, row->id);
    buf_putc(b, '|');
    put_nullable(b, row->rev);
    buf_putc(b, '|');
    put_nullable(b, row->seq);
    buf_printf(b, "|%d|%d|", row->deleted, row->cleaned);
    if (row->reject_reason) {
        buf_printf(b, "!%s", row->reject_reason);
        if (row->doc)
            buf_puts(b, " (BUG: doc set)");
    } else if (row->doc) {
        if (strlen(row->doc) != row->doc_len)
            buf_puts(b, "(BUG: doc_len) ");
        buf_append(b, row->doc, row->doc_len);
    } else {
        buf_puts(b, "(BUG: no doc, no reason)");
    }
    buf_putc(b, '\n');
    if (k->stop_after > 0 && --k->stop_after == 0)
        return cs_fail(err, k->stop_rc, "stop requested by the test");
    return CS_OK;
}

enum split { WHOLE, BYTES, RANDOM };

/* Parses in with the given splitting; returns the rendered outcome
 * (caller frees). */
static char *run_split(const char *in, size_t len, const changes_limits *lim, enum split how,
                       unsigned seed)
{
    sink k;
    cs_error err;
    cs_result rc = CS_OK;
    changes_parser *p;
    const char *ls;
    long long pending;

    memset(&k, 0, sizeof(k));
    buf_init(&k.out, BIG);
    p = changes_parser_new(lim, collect, &k);
    srand(seed);
    for (size_t i = 0; i < len && rc == CS_OK;) {
        size_t n = len - i;
        if (how == BYTES)
            n = 1;
        else if (how == RANDOM)
            n = 1 + (size_t)rand() % (n < 64 ? n : 64);
        rc = changes_parser_feed(p, in + i, n, &err);
        i += n;
    }
    if (rc == CS_OK)
        rc = changes_parser_finish(p, &err);
    if (rc != CS_OK) {
        buf_printf(&k.out, "error(%s): %s\n", cs_result_name(rc), err.msg);
    } else {
        ls = changes_parser_last_seq(p);
        buf_puts(&k.out, "last_seq=");
        put_nullable(&k.out, ls);
        if (changes_parser_pending(p, &pending))
            buf_printf(&k.out, " pending=%lld", pending);
        else
            buf_puts(&k.out, " pending=~");
        buf_printf(&k.out, " rows=%zu\n", changes_parser_rows(p));
    }
    changes_parser_free(p);
    return buf_steal(&k.out);
}

static int split_mismatches;

/* Parses whole, byte by byte and at random splits; checks that all agree
 * and returns the outcome of the whole run (caller frees). */
static char *run_all(const char *in, size_t len, const changes_limits *lim, bool bytewise)
{
    char *whole = run_split(in, len, lim, WHOLE, 0);

    if (bytewise) {
        char *one = run_split(in, len, lim, BYTES, 0);
        if (strcmp(one, whole) != 0) {
            printf("  byte-by-byte differs from whole:\n%s---\n%s", one, whole);
            split_mismatches++;
        }
        free(one);
    }
    for (unsigned seed = 1; seed <= 8; seed++) {
        char *r = run_split(in, len, lim, RANDOM, seed);
        if (strcmp(r, whole) != 0) {
            printf("  random split (seed %u) differs from whole:\n%s---\n%s", seed, r, whole);
            split_mismatches++;
        }
        free(r);
    }
    return whole;
}

static char *run(const char *in, const changes_limits *lim)
{
    return run_all(in, strlen(in), lim, true);
}

/* ---- table of responses ---------------------------------------------------- */

typedef struct {
    const char *name;
    const char *in;
    const char *want;
} tcase;

#define ROW1(row) "{\"results\":[" row "],\"last_seq\":\"9\"}"
#define END1 "last_seq=9 pending=~ rows=1\n"

static const tcase cases[] = {
    {"couchdb3 order, string seqs, pending",
     "{\"results\":[{\"seq\":\"1-g1AA\",\"id\":\"a\",\"changes\":[{\"rev\":\"1-x\"}],"
     "\"doc\":{\"_id\":\"a\",\"_rev\":\"1-x\",\"n\":1}}],\"last_seq\":\"1-g1AA\",\"pending\":0}",
     "a|1-x|1-g1AA|0|0|{\"_id\":\"a\",\"_rev\":\"1-x\",\"n\":1}\n"
     "last_seq=1-g1AA pending=0 rows=1\n"},
    {"pouchdb order, number seqs, no pending",
     "{\"results\":[{\"doc\":{\"n\":1.5e3,\"_id\":\"a\",\"_rev\":\"2-y\"},\"id\":\"a\","
     "\"changes\":[{\"rev\":\"2-y\"}],\"seq\":7}],\"last_seq\":7}",
     "a|2-y|7|0|0|{\"n\":1.5e3,\"_id\":\"a\",\"_rev\":\"2-y\"}\nlast_seq=7 pending=~ rows=1\n"},
    {"seq null, last_seq null",
     "{\"results\":[{\"seq\":null,\"id\":\"a\",\"changes\":[{\"rev\":\"1-x\"}],\"doc\":{}}],"
     "\"last_seq\":null,\"pending\":3}",
     "a|1-x|~|0|0|{}\nlast_seq=~ pending=3 rows=1\n"},
    {"seq string with escapes is decoded",
     ROW1("{\"seq\":\"12-g1\\\"A\\u0041\",\"id\":\"a\",\"doc\":{}}"),
     "a|~|12-g1\"AA|0|0|{}\n" END1},
    {"last_seq number literal kept as text",
     "{\"results\":[],\"last_seq\":-12.50e+3,\"pending\":12}",
     "last_seq=-12.50e+3 pending=12 rows=0\n"},
    {"no rows, heartbeat newlines and white space everywhere",
     "\n\n\n{ \"results\" : [\n\n\n{ \"id\" : \"a\" , \"doc\" : { \"a\" : [ 1 , 2 , { } , [ ] ] "
     ", \"b\" : \"x y\" } }\n\n] ,\r\n\t\"last_seq\" : \"9\" }\n\n",
     "a|~|~|0|0|{\"a\":[1,2,{},[]],\"b\":\"x y\"}\n" END1},
    {"deleted row becomes the stub, tombstone ignored, deleted after doc",
     ROW1("{\"doc\":{\"_id\":\"d\",\"_rev\":\"3-z\",\"_deleted\":true,\"junk\":[1]},\"id\":\"d\","
          "\"changes\":[{\"rev\":\"3-z\"}],\"deleted\":true,\"seq\":3}"),
     "d|3-z|3|1|0|{\"_id\":\"d\",\"_rev\":\"3-z\",\"_deleted\":true}\n" END1},
    {"deleted stub escapes id and rev",
     ROW1("{\"id\":\"a\\\"b\\\\c\\u00e9\",\"deleted\":true,\"changes\":[{\"rev\":\"1-\\\"\"}]}"),
     "a\"b\\c\xc3\xa9|1-\"|~|1|0|{\"_id\":\"a\\\"b\\\\c\\u00e9\",\"_rev\":\"1-\\\"\","
     "\"_deleted\":true}\n" END1},
    {"deleted without doc and without rev", ROW1("{\"id\":\"d\",\"deleted\":true}"),
     "d|~|~|1|0|{\"_id\":\"d\",\"_deleted\":true}\n" END1},
    {"deleted false keeps the doc",
     ROW1("{\"id\":\"d\",\"deleted\":false,\"doc\":{\"_id\":\"d\"}}"),
     "d|~|~|0|0|{\"_id\":\"d\"}\n" END1},
    {"row without doc is rejected", ROW1("{\"id\":\"a\",\"changes\":[{\"rev\":\"1-x\"}]}"),
     "a|1-x|~|0|0|!change has no document\n" END1},
    {"row with null doc is rejected", ROW1("{\"id\":\"a\",\"doc\":null}"),
     "a|~|~|0|0|!change has no document\n" END1},
    {"row with a doc that is not an object is rejected", ROW1("{\"id\":\"a\",\"doc\":[1]}"),
     "a|~|~|0|0|!document is not a JSON object\n" END1},
    {"row without id is rejected", ROW1("{\"doc\":{}}"),
     "|~|~|0|0|!change has no usable document id\n" END1},
    {"\\u0000 removed from values and keys",
     ROW1("{\"id\":\"a\",\"doc\":{\"k\\u0000ey\":\"x\\u0000y\\u0000\",\"n\":[\"\\u0000\"]}}"),
     "a|~|~|0|1|{\"key\":\"xy\",\"n\":[\"\"]}\n" END1},
    {"escaped backslash followed by u0000 is kept",
     ROW1("{\"id\":\"a\",\"doc\":{\"x\":\"\\\\u0000\",\"y\\\\u0000\":1}}"),
     "a|~|~|0|0|{\"x\":\"\\\\u0000\",\"y\\\\u0000\":1}\n" END1},
    {"lone high surrogates become \\ufffd",
     ROW1("{\"id\":\"a\",\"doc\":{\"a\":\"\\ud800x\",\"b\":\"\\ud800\",\"c\":\"\\uD800\\n\","
          "\"d\":\"\\ud800\\u0041\",\"e\":\"\\ud800\\u0000\",\"f\":\"\\ud800\\ud83d\\ude00\","
          "\"g\":\"\\ud800\xc3\xa9\",\"h\\udbff\":0}}"),
     "a|~|~|0|1|{\"a\":\"\\ufffdx\",\"b\":\"\\ufffd\",\"c\":\"\\ufffd\\n\","
     "\"d\":\"\\ufffd\\u0041\",\"e\":\"\\ufffd\",\"f\":\"\\ufffd\\ud83d\\ude00\","
     "\"g\":\"\\ufffd\xc3\xa9\",\"h\\ufffd\":0}\n" END1},
    {"lone low surrogates become \\ufffd",
     ROW1(
         "{\"id\":\"a\",\"doc\":{\"a\":\"\\udc00\",\"b\":\"x\\uDFFFy\",\"c\":\"\\ude00\\ud83d\"}}"),
     "a|~|~|0|1|{\"a\":\"\\ufffd\",\"b\":\"x\\ufffdy\",\"c\":\"\\ufffd\\ufffd\"}\n" END1},
    {"valid surrogate pairs, other escapes and raw emoji kept as sent",
     ROW1("{\"id\":\"a\",\"doc\":{\"e\":\"\\ud83d\\ude00\\uD83D\\uDE00\xf0\x9f\x98\x80\","
          "\"s\":\"\\/\\b\\f\\n\\r\\t\\\"\\\\\\u00E9\\u20ac\xe2\x82\xac\xc3\xa9\x7f\"}}"),
     "a|~|~|0|0|{\"e\":\"\\ud83d\\ude00\\uD83D\\uDE00\xf0\x9f\x98\x80\","
     "\"s\":\"\\/\\b\\f\\n\\r\\t\\\"\\\\\\u00E9\\u20ac\xe2\x82\xac\xc3\xa9\x7f\"}\n" END1},
    {"invalid raw UTF-8 becomes U+FFFD",
     ROW1("{\"id\":\"a\",\"doc\":{\"a\":\"x\xffy\",\"b\":\"\xe2\x82\",\"c\":\"\xc0\xaf\","
          "\"d\":\"\xed\xa0\x80\",\"e\":\"\x80\xc3\",\"f\":\"\xf4\x90\x80\x80\",\"g\xfe\":1}}"),
     "a|~|~|0|1|{\"a\":\"x\xef\xbf\xbdy\",\"b\":\"\xef\xbf\xbd\",\"c\":"
     "\"\xef\xbf\xbd\xef\xbf\xbd\","
     "\"d\":\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\",\"e\":\"\xef\xbf\xbd\xef\xbf\xbd\","
     "\"f\":\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\",\"g\xef\xbf\xbd\":1}\n" END1},
    {"id decoded: escapes, emoji pair, \\u0000 dropped, lone surrogate",
     ROW1("{\"id\":\"q\\\"b\\\\s p\\u00e9\\ud83d\\ude00\xf0\x9f\x98\x80\\u0000\\ud800!\","
          "\"doc\":{}}"),
     "q\"b\\s p\xc3\xa9\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xef\xbf\xbd!|~|~|0|1|{}\n" END1},
    {"rev: doc _rev wins over changes[0], changes[1] ignored",
     ROW1("{\"id\":\"a\",\"changes\":[{\"rev\":\"2-b\"},{\"rev\":\"2-c\"}],"
          "\"doc\":{\"x\":{\"_rev\":\"no\"},\"_rev\":\"2-a\"}}"),
     "a|2-a|~|0|0|{\"x\":{\"_rev\":\"no\"},\"_rev\":\"2-a\"}\n" END1},
    {"rev: changes[0] when the doc has none",
     ROW1("{\"id\":\"a\",\"changes\":[{\"x\":[1,{\"rev\":\"no\"}],\"rev\":\"2-b\"},{\"rev\":\"2-"
          "c\"}],"
          "\"doc\":{\"x\":{\"_rev\":\"no\"}}}"),
     "a|2-b|~|0|0|{\"x\":{\"_rev\":\"no\"}}\n" END1},
    {"unknown keys skipped at every level, kept in docs",
     "{\"x\":{\"results\":[{\"id\":\"no\"}]},\"results\":[{\"u\":[1,{\"v\":[true,false,null]}],"
     "\"id\":\"a\",\"changes\":[{\"rev\":\"1-a\",\"w\":{}}],\"doc\":{\"u\":{\"v\":[null,true,false,"
     "-0.5e-3,0,1E+2,\"s\"]}},\"z\":\"\\ud800\"}],\"y\":[],\"last_seq\":\"9\"}",
     "a|1-a|~|0|0|{\"u\":{\"v\":[null,true,false,-0.5e-3,0,1E+2,\"s\"]}}\n" END1},
    {"_users doc: password fields before _id are dropped",
     ROW1(
         "{\"id\":\"org.couchdb.user:ann\",\"doc\":{\"password_scheme\":\"pbkdf2\","
         "\"iterations\":10,\"derived_key\":\"ab\",\"salt\":\"cd\",\"pbkdf2_prf\":\"sha\","
         "\"name\":\"ann\",\"password\":null,\"roles\":[\"x\"],\"_id\":\"org.couchdb.user:ann\"}}"),
     "org.couchdb.user:ann|~|~|0|1|{\"name\":\"ann\",\"roles\":[\"x\"],"
     "\"_id\":\"org.couchdb.user:ann\"}\n" END1},
    {"_users doc: fields after _id, nested ones kept, escaped key matched",
     ROW1("{\"id\":\"org.couchdb.user:b\",\"doc\":{\"_id\":\"org.couchdb.user:b\","
          "\"p\\u0061ssword\":{\"a\":[1]},\"meta\":{\"password\":1,\"salt\":2},\"salt\":\"x\"}}"),
     "org.couchdb.user:b|~|~|0|1|{\"_id\":\"org.couchdb.user:b\",\"meta\":{\"password\":1,"
     "\"salt\":2}}\n" END1},
    {"_users doc: row id after doc, every member dropped",
     ROW1("{\"doc\":{\"salt\":\"x\",\"password\":\"y\"},\"id\":\"org.couchdb.user:c\"}"),
     "org.couchdb.user:c|~|~|0|1|{}\n" END1},
    {"not a _users doc: password fields kept",
     ROW1("{\"doc\":{\"salt\":\"x\",\"password\":\"y\"},\"id\":\"org.couchdb.userx\"}"),
     "org.couchdb.userx|~|~|0|0|{\"salt\":\"x\",\"password\":\"y\"}\n" END1},
    {"several rows, rows count",
     "{\"results\":[{\"id\":\"a\",\"doc\":{\"i\":1}},{\"id\":\"b\",\"deleted\":true},"
     "{\"id\":\"c\",\"doc\":{\"i\":3}}],\"last_seq\":\"9\"}",
     "a|~|~|0|0|{\"i\":1}\nb|~|~|1|0|{\"_id\":\"b\",\"_deleted\":true}\nc|~|~|0|0|{\"i\":3}\n"
     "last_seq=9 pending=~ rows=3\n"},
    {"deleted row: an oversized, too deep or bad tombstone does not matter",
     "{\"results\":[{\"id\":\"a\",\"doc\":{\"n\":[[[[[[[[[[[[1]]]]]]]]]]]],\"e\":1e999999},"
     "\"deleted\":true,\"changes\":[{\"rev\":\"2-a\"}]}],\"last_seq\":\"9\"}",
     "a|2-a|~|1|0|{\"_id\":\"a\",\"_rev\":\"2-a\",\"_deleted\":true}\n" END1},
    {"cleaned id marks a deleted row cleaned; a cleaned row key does not",
     ROW1("{\"i\\u0000d\":1,\"id\":\"a\\u0000\",\"deleted\":true}"),
     "a|~|~|1|1|{\"_id\":\"a\",\"_deleted\":true}\n" END1},
    {"long unknown keys and a long key inside a doc",
     ROW1("{\"idxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\":"
          "\"no\","
          "\"id\":\"a\",\"doc\":{\"passwordxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxxxxxxxxxxxxx\":1}}"),
     "a|~|~|0|0|{\"passwordxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "\":1}\n" END1},
    /* errors */
    {"not a _changes response", "{\"error\":\"not_found\",\"reason\":\"missing\"}",
     "error(transient): response has no \"results\"\n"},
    {"not an object", "[{\"results\":[]}]",
     "error(transient): malformed _changes response at byte 0: expected '{' (a _changes "
     "response object) got '['\n"},
    {"results not an array", "{\"results\":{}}",
     "error(transient): malformed _changes response at byte 11: expected '[' (the results "
     "array) got '{'\n"},
    {"trailing garbage", "{\"results\":[]} x",
     "error(transient): malformed _changes response at byte 15: expected end of input after "
     "the response object got 'x'\n"},
    {"two objects", "{\"results\":[]}{}",
     "error(transient): malformed _changes response at byte 14: expected end of input after "
     "the response object got '{'\n"},
    {"bad escape, row before it stays delivered",
     "{\"results\":[{\"id\":\"a\",\"doc\":{}},{\"id\":\"b\\x\"}]}",
     "a|~|~|0|0|{}\nerror(transient): malformed _changes response at byte 41: expected an "
     "escape character (one of \"\\/bfnrtu) got 'x'\n"},
    {"bad hex digit", ROW1("{\"id\":\"\\u12g4\"}"),
     "error(transient): malformed _changes response at byte 23: expected a hex digit got 'g'\n"},
    {"raw control character in a string", ROW1("{\"id\":\"a\",\"doc\":{\"t\":\"a\tb\"}}"),
     "error(transient): malformed _changes response at byte 35: expected a string character "
     "(control characters must be escaped) got byte 0x09\n"},
    {"leading zero", ROW1("{\"id\":\"a\",\"doc\":{\"n\":012}}"),
     "error(transient): malformed _changes response at byte 34: expected ',' or '}' got '1'\n"},
    {"bare minus", ROW1("{\"id\":\"a\",\"doc\":{\"n\":-}}"),
     "error(transient): malformed _changes response at byte 34: expected a digit got '}'\n"},
    {"dot without digits", ROW1("{\"id\":\"a\",\"doc\":{\"n\":1.}}"),
     "error(transient): malformed _changes response at byte 35: expected a digit got '}'\n"},
    {"exponent without digits", ROW1("{\"id\":\"a\",\"doc\":{\"n\":1e+}}"),
     "error(transient): malformed _changes response at byte 36: expected a digit got '}'\n"},
    {"bad literal", ROW1("{\"id\":\"a\",\"doc\":{\"n\":nul}}"),
     "error(transient): malformed _changes response at byte 36: expected 'null' got '}'\n"},
    {"missing colon", "{\"results\" []}",
     "error(transient): malformed _changes response at byte 11: expected ':' got '['\n"},
    {"trailing comma", "{\"results\":[],}",
     "error(transient): malformed _changes response at byte 14: expected '\"' (a key) got '}'\n"},
    {"mismatched bracket", ROW1("{\"id\":\"a\",\"doc\":{\"n\":[1}}"),
     "error(transient): malformed _changes response at byte 35: expected ',' or ']' got '}'\n"},
    {"key not a string", "{results:[]}",
     "error(transient): malformed _changes response at byte 1: expected '\"' or '}' got 'r'\n"},
    {"empty body", "",
     "error(transient): response ended early (empty body, after 0 bytes and 0 "
     "rows)\n"},
    {"only heartbeats", "\n\n",
     "error(transient): response ended early (no JSON value, after 2 bytes and 0 rows)\n"},
    /* a key that is a text \u escape, once decoded, must not be decoded
     * again: below the document root, in a skipped row member, at the top */
    {"escaped backslash key below the doc root",
     "{\"results\":[{\"id\":\"a\",\"doc\":{\"\\\\u00zz\":{\"a\":1}}}],\"last_seq\":\"1\"}",
     "a|~|~|0|0|{\"\\\\u00zz\":{\"a\":1}}\nlast_seq=1 pending=~ rows=1\n"},
    {"escaped backslash key in a nested doc object",
     "{\"results\":[{\"id\":\"a\",\"doc\":{\"\\\\u00zz\":{\"\\\\ud800\":{\"\\\\u00\":1}}}}],"
     "\"last_seq\":\"1\"}",
     "a|~|~|0|0|{\"\\\\u00zz\":{\"\\\\ud800\":{\"\\\\u00\":1}}}\nlast_seq=1 pending=~ rows=1\n"},
    {"escaped backslash key in a skipped value",
     "{\"results\":[{\"id\":\"a\",\"x\":{\"\\\\u00zz\":{\"\\\\u12\":1}},\"doc\":{}}],"
     "\"y\":{\"\\\\uzzzz\":[{\"\\\\u0\":2}]},\"last_seq\":\"1\"}",
     "a|~|~|0|0|{}\nlast_seq=1 pending=~ rows=1\n"},
    {"truncated after a row", "{\"results\":[{\"id\":\"a\",\"doc\":{}},\n",
     "a|~|~|0|0|{}\nerror(transient): response ended early (inside \"results\", after 33 bytes "
     "and 1 rows)\n"},
    {"truncated inside a doc", "{\"results\":[{\"id\":\"a\",\"doc\":{\"x\":\"\xe2\x82",
     "error(transient): response ended early (inside a document, after 36 bytes and 0 rows)\n"},
};

static void test_table(void)
{
    changes_limits lim = {.max_doc_bytes = 1 << 20, .max_depth = 100};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int before = split_mismatches;
        char *got = run(cases[i].in, &lim);
        if (strcmp(got, cases[i].want) != 0 || split_mismatches != before) {
            printf("  case \"%s\"\n", cases[i].name);
            CHECK_STR(got, cases[i].want);
        }
        free(got);
    }
    CHECK_INT(split_mismatches, 0);
}

/* Every proper prefix of a valid response is "ended early", never a crash
 * and never success. */
static void test_every_truncation_and_cut(void)
{
    const char *in =
        "{\"results\":[{\"seq\":\"1-g\",\"id\":\"a\\u00e9\",\"changes\":[{\"rev\":\"1-x\"}],"
        "\"doc\":{\"_id\":\"a\",\"n\":-1.5e+3,\"t\":true,\"e\":\"\\ud83d\\ude00\xf0\x9f\x98\x80\"}}"
        ","
        "{\"id\":\"b\",\"deleted\":true}],\"last_seq\":12,\"pending\":0}";
    size_t len = strlen(in);
    int bad = 0;

    for (size_t n = 0; n < len; n++) {
        char *got = run_split(in, n, NULL, WHOLE, 0);
        if (!strstr(got, "error(transient): response ended early (")) {
            if (bad++ < 3)
                printf("  prefix of %zu bytes: %s", n, got);
        }
        free(got);
    }
    CHECK_INT(bad, 0);
    char *full = run_split(in, len, NULL, WHOLE, 0);
    CHECK(strstr(full, "last_seq=12 pending=0 rows=2\n") != NULL);
    CHECK(strstr(full, "\\ud83d\\ude00\xf0\x9f\x98\x80") != NULL);

    /* the same body in two pieces, cut at every index, parses the same */
    bad = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        sink k;
        cs_error err;
        changes_parser *p;
        memset(&k, 0, sizeof(k));
        buf_init(&k.out, 0);
        p = changes_parser_new(NULL, collect, &k);
        if (changes_parser_feed(p, in, cut, &err) != CS_OK ||
            changes_parser_feed(p, in + cut, len - cut, &err) != CS_OK ||
            changes_parser_finish(p, &err) != CS_OK || !strstr(full, k.out.data) ||
            strncmp(full, k.out.data, k.out.len) != 0)
            bad++;
        changes_parser_free(p);
        buf_free(&k.out);
    }
    CHECK_INT(bad, 0);
    free(full);
}

/* ---- limits ------------------------------------------------------------------ */

static void test_max_doc_bytes(void)
{
    changes_limits lim = {.max_doc_bytes = 100, .max_depth = 100};
    buf in, want;
    char pad100[200];
    char *got;

    /* {"p":"...."} is exactly 100 bytes with 92 pad bytes; then 150 with escapes */
    memset(pad100, 'x', 92);
    pad100[92] = '\0';
    buf_init(&in, 0);
    buf_init(&want, 0);
    buf_printf(&in, "{\"results\":[{\"id\":\"a\",\"doc\":{\"p\":\"%s\"}},", pad100);
    buf_puts(&in, "{\"id\":\"big\",\"doc\":{\"p\":\"");
    for (int i = 0; i < 20; i++)
        buf_puts(&in, "\\u00e9"); /* 6 bytes each, kept as sent */
    buf_puts(&in, "\",\"q\":[1,2,{\"r\":\"\\u0000\"}]}},");
    buf_puts(&in, "{\"id\":\"c\",\"doc\":{\"i\":3}}],\"last_seq\":\"9\"}");
    buf_printf(&want, "a|~|~|0|0|{\"p\":\"%s\"}\n", pad100);
    buf_puts(&want, "big|~|~|0|0|!document is 147 bytes, more than MAX_DOC_BYTES (100)\n");
    buf_puts(&want, "c|~|~|0|0|{\"i\":3}\nlast_seq=9 pending=~ rows=3\n");
    got = run(in.data, &lim);
    CHECK_STR(got, want.data);
    CHECK_INT(split_mismatches, 0);
    free(got);
    buf_free(&in);
    buf_free(&want);
}

/* A document of `levels` nested containers (the root object counts). */
static char *nested_doc(int levels)
{
    buf b;

    buf_init(&b, BIG);
    buf_puts(&b, "{\"results\":[{\"id\":\"a\",\"doc\":{\"n\":");
    for (int i = 1; i < levels; i++)
        buf_putc(&b, '[');
    buf_putc(&b, '7');
    for (int i = 1; i < levels; i++)
        buf_putc(&b, ']');
    buf_puts(&b, "}},{\"id\":\"b\",\"doc\":{}}],\"last_seq\":\"9\"}");
    return buf_steal(&b);
}

static void test_nesting(void)
{
    changes_limits lim = {.max_doc_bytes = 1 << 20, .max_depth = 200};
    char *in, *got;

    in = nested_doc(200);
    got = run(in, &lim);
    /* the whole document comes back: the input's doc text, compact already */
    {
        buf want;
        const char *d = strstr(in, "{\"n\":");
        buf_init(&want, BIG);
        buf_puts(&want, "a|~|~|0|0|");
        buf_append(&want, d, (size_t)(strstr(d, "}}") + 1 - d));
        buf_puts(&want, "\nb|~|~|0|0|{}\nlast_seq=9 pending=~ rows=2\n");
        CHECK_STR(got, want.data);
        buf_free(&want);
    }
    free(got);
    free(in);

    in = nested_doc(201);
    got = run(in, &lim);
    CHECK_STR(got, "a|~|~|0|0|!document is nested deeper than 200 levels\nb|~|~|0|0|{}\n"
                   "last_seq=9 pending=~ rows=2\n");
    free(got);
    free(in);

    /* 100,000 levels: rejected, the stack stays at max_depth, no recursion */
    in = nested_doc(100000);
    got = run_all(in, strlen(in), &lim, true);
    CHECK_STR(got, "a|~|~|0|0|!document is nested deeper than 200 levels\nb|~|~|0|0|{}\n"
                   "last_seq=9 pending=~ rows=2\n");
    free(got);
    free(in);

    /* deep nesting in skipped values, with strings holding brackets */
    buf b;
    buf_init(&b, BIG);
    buf_puts(&b, "{\"junk\":");
    for (int i = 0; i < 100000; i++)
        buf_puts(&b, "[{\"k]\":\"}\",\"v\":-1e5,\"w\":true},");
    buf_puts(&b, "null");
    for (int i = 0; i < 100000; i++)
        buf_putc(&b, ']');
    buf_puts(&b, ",\"results\":[{\"id\":\"a\",\"doc\":{}}]}");
    got = run_all(b.data, b.len, &lim, false);
    CHECK_STR(got, "a|~|~|0|0|{}\nlast_seq=~ pending=~ rows=1\n");
    free(got);
    /* unbalanced: truncated after 100,000 opens */
    got = run_split(b.data, 100000 * 29, &lim, WHOLE, 0);
    CHECK(strstr(got, "error(transient): response ended early (inside the response object") !=
          NULL);
    free(got);
    buf_free(&b);
}

static void test_numbers(void)
{
    static const struct {
        const char *num;
        bool ok;
    } nums[] = {
        {"1e131071", true},        {"1e131072", false},      {"12.5e131070", true},
        {"12.5e131071", false},    {"0.001e131074", true},   {"0.001e131075", false},
        {"1e-16383", true},        {"1e-16384", false},      {"1.5e-16383", false},
        {"100e-16385", false},     {"0e999999999999", true}, {"0.0e-99999", false},
        {"1e999999999999", false}, {"-1E+999999", false},    {"1e-999999999999999", false},
        {"-0.000e+0", true},
    };
    changes_limits lim = {.max_doc_bytes = 1 << 20, .max_depth = 10};

    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        char in[256], want[512];
        snprintf(in, sizeof(in), ROW1("{\"id\":\"a\",\"doc\":{\"n\":%s}}"), nums[i].num);
        if (nums[i].ok)
            snprintf(want, sizeof(want), "a|~|~|0|0|{\"n\":%s}\n" END1, nums[i].num);
        else
            snprintf(want, sizeof(want),
                     "a|~|~|0|0|!document has a number out of PostgreSQL's numeric range (more "
                     "than 131072 digits before the decimal point or 16383 after it)\n" END1);
        char *got = run(in, &lim);
        if (strcmp(got, want) != 0)
            printf("  number %s\n", nums[i].num);
        CHECK_STR(got, want);
        free(got);
    }

    /* 131072 digits before the point fit, 131073 do not */
    for (int extra = 0; extra <= 1; extra++) {
        buf b;
        buf_init(&b, BIG);
        buf_puts(&b, "{\"results\":[{\"id\":\"a\",\"doc\":{\"n\":1");
        for (int i = 1; i < 131072 + extra; i++)
            buf_putc(&b, '0');
        buf_puts(&b, ".5}}]}");
        char *got = run_all(b.data, b.len, &lim, false);
        CHECK(strstr(got, extra ? "!document has a number out of" : "a|~|~|0|0|{\"n\":1000") !=
              NULL);
        free(got);
        buf_free(&b);
    }
    CHECK_INT(split_mismatches, 0);
}

/* ---- callback and reuse -------------------------------------------------------- */

static cs_result silent_stop(void *ud, const change_row *row, cs_error *err)
{
    return CS_STOPPED;
}

static void test_callback_error(void)
{
    const char *in = "{\"results\":[{\"id\":\"a\",\"doc\":{}},{\"id\":\"b\",\"doc\":{}},"
                     "{\"id\":\"c\",\"doc\":{}}],\"last_seq\":1}";
    sink k;
    cs_error err;
    changes_parser *p;

    memset(&k, 0, sizeof(k));
    buf_init(&k.out, 0);
    k.stop_after = 2;
    k.stop_rc = CS_PERMANENT;
    p = changes_parser_new(NULL, collect, &k);
    CHECK_INT(changes_parser_feed(p, in, strlen(in), &err), CS_PERMANENT);
    CHECK_STR(err.msg, "stop requested by the test");
    CHECK_INT(changes_parser_rows(p), 2);
    CHECK_STR(k.out.data, "a|~|~|0|0|{}\nb|~|~|0|0|{}\n");
    /* the parser stays stopped */
    memset(&err, 0, sizeof(err));
    CHECK_INT(changes_parser_feed(p, "]", 1, &err), CS_PERMANENT);
    CHECK_INT(changes_parser_finish(p, &err), CS_PERMANENT);
    CHECK_STR(err.msg, "stop requested by the test");

    /* reset: the same parser reads a new response */
    buf_reset(&k.out);
    changes_parser_reset(p);
    CHECK_INT(changes_parser_feed(p, in, strlen(in), NULL), CS_OK);
    CHECK_INT(changes_parser_finish(p, &err), CS_OK);
    CHECK_INT(changes_parser_rows(p), 3);
    CHECK_STR(changes_parser_last_seq(p), "1");
    CHECK(!changes_parser_pending(p, NULL));
    CHECK_STR(k.out.data, "a|~|~|0|0|{}\nb|~|~|0|0|{}\nc|~|~|0|0|{}\n");
    changes_parser_free(p);

    /* a callback that fails without a message still gets one */
    buf_reset(&k.out);
    p = changes_parser_new(NULL, silent_stop, NULL);
    CHECK_INT(changes_parser_feed(p, in, strlen(in), &err), CS_STOPPED);
    CHECK_STR(err.msg, "row callback stopped the parse (stopped)");
    CHECK_INT(changes_parser_rows(p), 1);
    changes_parser_free(p);
    buf_free(&k.out);
}

int main(void)
{
    UNIT_BEGIN("test_changes");
    RUN(test_table);
    RUN(test_every_truncation_and_cut);
    RUN(test_max_doc_bytes);
    RUN(test_nesting);
    RUN(test_numbers);
    RUN(test_callback_error);
    UNIT_END();
}
