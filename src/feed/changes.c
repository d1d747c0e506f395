/*
 * changes.c - the streaming parser and cleaner of a CouchDB _changes
 * response (see changes.h and docs/changes.md).
 *
 * One pass, byte by byte where it must and run by run where it can: the
 * parser is a state machine over an explicit stack of open containers, so a
 * piece of input may end anywhere (inside an escape, a UTF-8 sequence, a
 * number) and nesting never recurses.  Each container on the stack has a
 * role (the response object, the results array, a row, a document, a value
 * being skipped...) that decides where the bytes of its values go:
 *   - document bytes are written, cleaned, to the row's doc buffer;
 *   - id, rev and seq strings are captured as cleaned JSON text and decoded
 *     when the value ends;
 *   - everything else is checked for well-formedness and dropped.
 * A row is delivered when its object closes, because keys come in any order
 * (pouchdb-server sends seq last and a document's _id and _rev last).
 *
 * Memory is the current row (id, rev, seq, the document up to
 * max_doc_bytes) and the stack (max_depth + a few frames).  Containers
 * deeper than the stack are skipped by counting brackets ("deep" mode), so
 * 100,000 levels of '[' cost a counter, not memory.
 */
#include "common/hex.h"
#include "feed/changes.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

#define DEFAULT_MAX_DOC_BYTES ((size_t)64 << 20)
#define DEFAULT_MAX_DEPTH 1000
/* frames above the document: response, results, row, and room for skipped
 * values inside changes[] */
#define EXTRA_FRAMES 8
/* caps of the small per-row captures (id, rev, seq) and of a key */
#define CAPTURE_MAX ((size_t)1 << 20)
#define KEY_MAX 64
/* a doc buffer grown beyond this is released after its row */
#define DOC_KEEP_BYTES ((size_t)4 << 20)

/* PostgreSQL numeric: at most 131072 digits before the decimal point
 * (weight of the first digit <= 131071) and 16383 after it (dscale).
 * Checked against PostgreSQL 15: 1e131071 and 1e-16383 are accepted,
 * 1e131072, 1e-16384 and 1.5e-16383 are "value overflows numeric format". */
#define NUMERIC_MAX_WEIGHT 131071
#define NUMERIC_MAX_DSCALE 16383
#define EXP_SATURATE 1000000000LL

#define USERS_PREFIX "org.couchdb.user:"

enum state {
    ST_VALUE,          /* a value is expected */
    ST_VALUE_OR_CLOSE, /* just after '[' */
    ST_KEY,            /* after ',' in an object */
    ST_KEY_OR_CLOSE,   /* just after '{' */
    ST_COLON,
    ST_AFTER, /* after a value inside a container: ',' or the closing bracket */
    ST_STRING,
    ST_ESC,  /* after a backslash */
    ST_UHEX, /* inside \uXXXX */
    ST_NUMBER,
    ST_LITERAL,
    ST_DEEP, /* skipping containers nested deeper than the stack */
    ST_DONE, /* the response object is closed: only white space may follow */
    ST_FAILED,
};

/* what a container is */
enum frole { F_TOP, F_RESULTS, F_ROW, F_CHANGES, F_CHANGE, F_DOC, F_SKIP };

/* what the value about to start is */
enum vrole {
    V_TOP,
    V_RESULTS,
    V_ROW,
    V_CHANGES,
    V_CHANGE,
    V_DOC,
    V_SKIP,
    V_ID,
    V_REV,
    V_SEQ,
    V_LAST_SEQ,
    V_DELETED,
    V_PENDING,
};

enum kind { K_STRING, K_NUMBER, K_TRUE, K_FALSE, K_NULL, K_CONTAINER };

/* number sub-states, JSON grammar */
enum nstate { N_START, N_MINUS, N_ZERO, N_INT, N_FRAC0, N_FRAC, N_EXP0, N_EXPS, N_EXP };

enum reject { RJ_NONE, RJ_SIZE, RJ_DEPTH, RJ_NUMBER, RJ_NOT_OBJECT };

typedef struct {
    uint8_t role;
    uint8_t arr;
} frame;

struct changes_parser {
    changes_limits lim;
    changes_row_fn on_row;
    void *ud;

    enum state state;
    uint64_t pos; /* bytes of the body before the current piece */

    frame *stack;
    int sp, cap;
    uint64_t deep; /* open containers beyond the stack (ST_DEEP) */
    int doc_base;  /* stack index of the document's root object, -1 if none */
    enum vrole vrole;
    enum kind last_kind;

    /* where value bytes go: out (counted in nout) and a copy in tee */
    buf *out;
    buf *tee;
    size_t nout;
    buf *docout; /* &doc while the document is being kept, else NULL */

    /* the string being lexed */
    bool str_key;
    bool str_quoted; /* write the quotes to out (document strings) */
    bool str_cleaned;
    bool hi_pending; /* a high surrogate escape waits for its pair */
    char hi[6];
    char esc[6];
    int esclen;
    uint8_t u8[4];
    int u8len, u8need;
    uint8_t u8lo, u8hi;

    /* the number being lexed */
    enum nstate nst;
    uint64_t int_digits, frac_digits, frac_lz;
    bool int_nz, frac_nz, exp_neg;
    int64_t exp;

    /* the literal being lexed */
    const char *lit;
    int litpos;

    /* the current row */
    buf id_raw, id, rev_chg_raw, rev_doc_raw, rev, seq, key, doc, stub;
    bool id_present, rev_chg_present, rev_doc_present, seq_present;
    bool deleted, doc_present, doc_cleaned, row_cleaned;
    enum reject doc_reject;
    size_t doc_size;
    unsigned chg_idx;
    bool chg_first;
    size_t member_start;
    bool member_secret, member_rev;
    size_t *spans; /* [start, end) pairs of top-level password members */
    size_t nspans, spans_cap;
    bool spans_failed;
    char reason[160];

    /* the response */
    bool seen_results;
    buf last_seq;
    bool last_seq_present;
    bool pending_present;
    long long pending;
    size_t rows;

    cs_result fcode;
    cs_error ferr;
};

/* bytes that can be copied as they are inside a string */
static const uint8_t plain[256] = {
    [0x20 ... 0x21] = 1,
    [0x23 ... 0x5b] = 1,
    [0x5d ... 0x7f] = 1,
};

static const char *const secret_keys[] = {
    "password_scheme", "derived_key", "salt", "iterations", "pbkdf2_prf", "password",
};

/* ---- output ------------------------------------------------------------ */

/* Appends to a buffer, with the common case (room left) inline.  A failed
 * buffer stays failed: buf_append refuses at once. */
static inline void put(buf *b, const void *s, size_t n)
{
    if (!b->failed && b->len + n < b->cap) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
    } else {
        (void)buf_append(b, s, n);
    }
}

static inline void emit(changes_parser *p, const void *s, size_t n)
{
    if (p->out) {
        p->nout += n;
        put(p->out, s, n);
    }
    if (p->tee)
        put(p->tee, s, n);
}

static inline void emit_quote(changes_parser *p)
{
    if (p->out) {
        p->nout++;
        put(p->out, "\"", 1);
    }
}

static inline buf *frame_out(const changes_parser *p)
{
    return p->sp > 0 && p->stack[p->sp - 1].role == F_DOC ? p->docout : NULL;
}

/* ---- errors ------------------------------------------------------------ */

static void describe(char *d, size_t n, int c)
{
    if (c < 0)
        snprintf(d, n, "end of input");
    else if (c > 0x20 && c < 0x7f)
        snprintf(d, n, "'%c'", c);
    else
        snprintf(d, n, "byte 0x%02x", (unsigned)c);
}

/* Records a malformed-input error at byte `at` of the piece being fed. */
static void fail_at(changes_parser *p, size_t at, const char *expected, int got)
{
    char g[32];

    describe(g, sizeof(g), got);
    cs_fail(&p->ferr, CS_TRANSIENT,
            "malformed _changes response at byte %" PRIu64 ": expected %s got %s", p->pos + at,
            expected, g);
    p->fcode = CS_TRANSIENT;
    p->state = ST_FAILED;
}

/* ---- JSON text helpers --------------------------------------------------- */

/* The value of four hex digits; callers pass escapes the lexer already
 * checked, and a non-digit still gives a defined value (U+FFFD), never a
 * shift of a negative number. */
static unsigned hex4(const char *s)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_value((unsigned char)s[i]);
        if (d < 0)
            return 0xFFFD;
        v = v << 4 | (unsigned)d;
    }
    return v;
}

static size_t utf8_put(char *d, unsigned cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xC0 | cp >> 6);
        d[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | cp >> 12);
        d[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | cp >> 18);
    d[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    d[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/*
 * Decodes the contents of a JSON string that this parser already cleaned
 * (escapes well formed, surrogates paired, no \u0000) into UTF-8.  d may be
 * s: the output is never longer than the input.  Stays defensive anyway:
 * an unpaired surrogate gives U+FFFD and \u0000 is dropped.
 */
static size_t json_decode(char *d, const char *s, size_t n)
{
    size_t r = 0, w = 0;

    while (r < n) {
        char c = s[r];
        if (c != '\\') {
            d[w++] = c;
            r++;
            continue;
        }
        if (r + 1 >= n)
            break;
        switch (s[r + 1]) {
        case 'b':
            d[w++] = '\b';
            break;
        case 'f':
            d[w++] = '\f';
            break;
        case 'n':
            d[w++] = '\n';
            break;
        case 'r':
            d[w++] = '\r';
            break;
        case 't':
            d[w++] = '\t';
            break;
        case 'u': {
            if (r + 6 > n)
                return w;
            unsigned cp = hex4(s + r + 2);
            if (cp >= 0xD800 && cp <= 0xDBFF && r + 12 <= n && s[r + 6] == '\\' &&
                s[r + 7] == 'u') {
                unsigned lo = hex4(s + r + 8);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    r += 6;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF)
                cp = 0xFFFD;
            if (cp != 0)
                w += utf8_put(d + w, cp);
            r += 6;
            continue;
        }
        default: /* '"', '\\', '/' */
            d[w++] = s[r + 1];
            break;
        }
        r += 2;
    }
    return w;
}

/* Decodes src (cleaned JSON string contents) into dst, NUL-terminated. */
static bool decode_into(buf *dst, const buf *src)
{
    buf_reset(dst);
    if (!buf_reserve(dst, src->len))
        return false;
    dst->len = json_decode(dst->data, src->data ? src->data : "", src->len);
    dst->data[dst->len] = '\0';
    return true;
}

/* Decodes a captured string in place (seq, last_seq, keys). */
static void decode_in_place(buf *b)
{
    if (b->len == 0 || !memchr(b->data, '\\', b->len))
        return;
    b->len = json_decode(b->data, b->data, b->len);
    b->data[b->len] = '\0';
}

static bool key_is(const buf *k, const char *name)
{
    size_t n = strlen(name);

    return k->len == n && memcmp(k->data, name, n) == 0;
}

/* Length of a complete, valid UTF-8 sequence at s, or 0 (invalid or cut by
 * the end of the piece: the slow path decides). */
static inline size_t utf8_valid_len(const uint8_t *s, size_t avail)
{
    uint8_t c = s[0], lo = 0x80, hi = 0xBF;

    if (c >= 0xC2 && c <= 0xDF)
        return avail >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3)
            return 0;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4)
            return 0;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* ---- row life ------------------------------------------------------------ */

static void begin_row(changes_parser *p)
{
    buf_reset(&p->id_raw);
    buf_reset(&p->id);
    buf_reset(&p->rev_chg_raw);
    buf_reset(&p->rev_doc_raw);
    buf_reset(&p->rev);
    buf_reset(&p->seq);
    if (p->doc.cap > DOC_KEEP_BYTES)
        buf_free(&p->doc);
    buf_reset(&p->doc);
    p->id_present = p->rev_chg_present = p->rev_doc_present = p->seq_present = false;
    p->deleted = p->doc_present = p->doc_cleaned = p->row_cleaned = false;
    p->doc_reject = RJ_NONE;
    p->doc_size = 0;
    p->chg_idx = 0;
    p->nspans = 0;
    p->spans_failed = false;
    p->member_secret = p->member_rev = false;
    p->docout = NULL;
}

static void begin_doc(changes_parser *p)
{
    buf_reset(&p->doc);
    buf_reset(&p->rev_doc_raw);
    p->rev_doc_present = false;
    p->doc_present = true;
    p->doc_cleaned = false;
    p->doc_reject = RJ_NONE;
    p->nspans = 0;
    p->spans_failed = false;
    p->member_secret = p->member_rev = false;
    p->docout = &p->doc;
    p->nout = 0;
}

/* Depth and number problems outrank size: they stop the counting that the
 * size message would report. */
static void reject_doc(changes_parser *p, enum reject why)
{
    if (p->doc_reject == RJ_NONE || p->doc_reject == RJ_SIZE)
        p->doc_reject = why;
    p->docout = NULL;
    p->out = NULL;
}

/*
 * Removes the recorded top-level members from the document text, in place.
 * The text is compact ('{' member (',' member)* '}'), so the gaps between
 * removed members are kept members joined by commas: strip one comma at
 * each end of every gap and join the non-empty gaps with commas.
 */
static void drop_members(buf *d, const size_t *spans, size_t n)
{
    char *s = d->data;
    size_t w = 1, gs = 1;
    bool first = true;

    for (size_t k = 0; k <= n; k++) {
        size_t a = gs, b = k < n ? spans[2 * k] : d->len - 1;
        if (a < b && s[a] == ',')
            a++;
        if (b > a && s[b - 1] == ',')
            b--;
        if (b > a) {
            if (!first)
                s[w++] = ',';
            memmove(s + w, s + a, b - a);
            w += b - a;
            first = false;
        }
        if (k < n)
            gs = spans[2 * k + 1];
    }
    s[w++] = '}';
    s[w] = '\0';
    d->len = w;
}

static void add_span(changes_parser *p, size_t start, size_t end)
{
    if (p->nspans == p->spans_cap) {
        size_t ncap = p->spans_cap ? p->spans_cap * 2 : 8;
        size_t *ns = realloc(p->spans, ncap * 2 * sizeof(*ns));
        if (!ns) {
            p->spans_failed = true;
            return;
        }
        p->spans = ns;
        p->spans_cap = ncap;
    }
    p->spans[2 * p->nspans] = start;
    p->spans[2 * p->nspans + 1] = end;
    p->nspans++;
}

static const char *doc_reject_reason(changes_parser *p)
{
    switch (p->doc_reject) {
    case RJ_DEPTH:
        snprintf(p->reason, sizeof(p->reason), "document is nested deeper than %d levels",
                 p->lim.max_depth);
        return p->reason;
    case RJ_NUMBER:
        snprintf(p->reason, sizeof(p->reason),
                 "document has a number out of PostgreSQL's numeric range (more than %d digits "
                 "before the decimal point or %d after it)",
                 NUMERIC_MAX_WEIGHT + 1, NUMERIC_MAX_DSCALE);
        return p->reason;
    case RJ_NOT_OBJECT:
        return "document is not a JSON object";
    case RJ_SIZE:
    case RJ_NONE:
        break;
    }
    if (p->doc_size > p->lim.max_doc_bytes) {
        snprintf(p->reason, sizeof(p->reason),
                 "document is %zu bytes, more than MAX_DOC_BYTES (%zu)", p->doc_size,
                 p->lim.max_doc_bytes);
        return p->reason;
    }
    if (!buf_ok(&p->doc) || p->spans_failed)
        return "document could not be buffered (out of memory)";
    return NULL;
}

/* The row object closed: build the change_row and hand it over.  False when
 * the callback stopped the parse (the error is recorded). */
static bool end_row(changes_parser *p, cs_error *err)
{
    change_row r;
    const buf *rev_raw = NULL;
    cs_error local;
    cs_result rc;

    memset(&r, 0, sizeof(r));
    if (p->rev_doc_present)
        rev_raw = &p->rev_doc_raw;
    else if (p->rev_chg_present)
        rev_raw = &p->rev_chg_raw;
    if (rev_raw && decode_into(&p->rev, rev_raw))
        r.rev = p->rev.data;
    if (p->id_present && !decode_into(&p->id, &p->id_raw))
        p->id_present = false;
    r.id = p->id_present ? p->id.data : "";
    r.seq = p->seq_present ? p->seq.data : NULL;
    r.deleted = p->deleted;

    if (!p->id_present) {
        r.reject_reason = "change has no usable document id";
    } else if (p->deleted) {
        buf_reset(&p->stub);
        buf_puts(&p->stub, "{\"_id\":\"");
        buf_append(&p->stub, p->id_raw.data, p->id_raw.len);
        if (r.rev) {
            buf_puts(&p->stub, "\",\"_rev\":\"");
            buf_append(&p->stub, rev_raw->data, rev_raw->len);
        }
        buf_puts(&p->stub, "\",\"_deleted\":true}");
        if (buf_ok(&p->stub)) {
            r.doc = p->stub.data;
            r.doc_len = p->stub.len;
            r.cleaned = p->row_cleaned;
        } else {
            r.reject_reason = "deleted document stub could not be built (out of memory)";
        }
    } else if (!p->doc_present) {
        r.reject_reason = "change has no document";
    } else if ((r.reject_reason = doc_reject_reason(p)) == NULL) {
        bool dropped = false;
        if (p->nspans > 0 && strncmp(r.id, USERS_PREFIX, strlen(USERS_PREFIX)) == 0) {
            drop_members(&p->doc, p->spans, p->nspans);
            dropped = true;
        }
        r.doc = p->doc.data;
        r.doc_len = p->doc.len;
        r.cleaned = p->doc_cleaned || p->row_cleaned || dropped;
    }

    p->rows++;
    if (!err)
        err = &local;
    err->msg[0] = '\0';
    rc = p->on_row(p->ud, &r, err);
    if (rc == CS_OK)
        return true;
    if (err->msg[0] == '\0')
        cs_fail(err, rc, "row callback stopped the parse (%s)", cs_result_name(rc));
    p->ferr = *err;
    p->ferr.code = rc;
    p->fcode = rc;
    p->state = ST_FAILED;
    return false;
}

/* ---- structure ----------------------------------------------------------- */

/* A value (scalar or container) ended; its parent is on top of the stack. */
static void value_done(changes_parser *p)
{
    if (p->sp - 1 == p->doc_base && p->doc_base >= 0) {
        /* a member of the document's root object */
        if (p->member_secret)
            add_span(p, p->member_start, p->doc.len);
        if (p->member_rev)
            p->rev_doc_present = p->last_kind == K_STRING && buf_ok(&p->rev_doc_raw);
        p->member_secret = p->member_rev = false;
    }
    p->tee = NULL;
    p->out = frame_out(p);
    p->state = ST_AFTER;
}

static void scalar_done(changes_parser *p)
{
    switch (p->vrole) {
    case V_ID:
        p->id_present = p->last_kind == K_STRING && buf_ok(&p->id_raw);
        break;
    case V_REV:
        p->rev_chg_present = p->last_kind == K_STRING && buf_ok(&p->rev_chg_raw);
        break;
    case V_SEQ:
        p->seq_present = (p->last_kind == K_STRING || p->last_kind == K_NUMBER) && buf_ok(&p->seq);
        if (p->seq_present && p->last_kind == K_STRING)
            decode_in_place(&p->seq);
        break;
    case V_LAST_SEQ:
        p->last_seq_present =
            (p->last_kind == K_STRING || p->last_kind == K_NUMBER) && buf_ok(&p->last_seq);
        if (p->last_seq_present && p->last_kind == K_STRING)
            decode_in_place(&p->last_seq);
        break;
    case V_DELETED:
        p->deleted = p->last_kind == K_TRUE;
        break;
    case V_PENDING:
        if (p->last_kind == K_NUMBER && buf_ok(&p->key)) {
            char *end;
            long long v = strtoll(p->key.data, &end, 10);
            p->pending_present = end != p->key.data;
            p->pending = v;
        }
        break;
    default:
        break;
    }
    value_done(p);
}

/* Pushes a container, or skips it in deep mode when the stack is full (for
 * a document: when it would be deeper than max_depth, which rejects it). */
static void open_container(changes_parser *p, bool arr, enum frole role)
{
    bool full;

    if (role == F_DOC && p->doc_base >= 0)
        full = p->sp - p->doc_base + 1 > p->lim.max_depth;
    else
        full = p->sp >= p->cap;
    if (full) {
        if (role == F_DOC)
            reject_doc(p, RJ_DEPTH);
        p->out = p->tee = NULL;
        p->deep = 1;
        p->state = ST_DEEP;
        return;
    }
    p->stack[p->sp].role = (uint8_t)role;
    p->stack[p->sp].arr = arr;
    p->sp++;
    switch (role) {
    case F_RESULTS:
        p->seen_results = true;
        break;
    case F_ROW:
        begin_row(p);
        break;
    case F_CHANGES:
        p->chg_idx = 0;
        break;
    default:
        break;
    }
    p->out = frame_out(p);
    emit(p, arr ? "[" : "{", 1);
    p->state = arr ? ST_VALUE_OR_CLOSE : ST_KEY_OR_CLOSE;
}

static bool close_container(changes_parser *p, char c, cs_error *err)
{
    frame f = p->stack[p->sp - 1];

    emit(p, &c, 1);
    p->sp--;
    switch (f.role) {
    case F_TOP:
        p->out = NULL;
        p->state = ST_DONE;
        return true;
    case F_ROW:
        if (!end_row(p, err))
            return false;
        break;
    case F_DOC:
        if (p->sp == p->doc_base) {
            p->doc_base = -1;
            p->doc_size = p->nout;
        }
        break;
    default:
        break;
    }
    p->last_kind = K_CONTAINER;
    value_done(p);
    return true;
}

static void start_string(changes_parser *p, bool key)
{
    p->str_key = key;
    p->str_cleaned = false;
    p->hi_pending = false;
    p->u8need = 0;
    if (p->str_quoted)
        emit_quote(p);
    p->state = ST_STRING;
}

/* Resets the capture buffer of role r and returns it (NULL: not captured). */
static buf *capture_for(changes_parser *p, enum vrole r)
{
    buf *b;

    switch (r) {
    case V_ID:
        b = &p->id_raw;
        p->id_present = false;
        break;
    case V_REV:
        b = &p->rev_chg_raw;
        p->rev_chg_present = false;
        break;
    case V_SEQ:
        b = &p->seq;
        p->seq_present = false;
        break;
    case V_LAST_SEQ:
        b = &p->last_seq;
        p->last_seq_present = false;
        break;
    case V_PENDING:
        b = &p->key;
        p->pending_present = false;
        break;
    default:
        return NULL;
    }
    buf_reset(b);
    return b;
}

/* First byte c of a value at `at`.  Returns how many bytes were consumed
 * (0 for numbers and literals, which their lexers read from the start). */
static size_t value_start(changes_parser *p, uint8_t c, size_t at)
{
    enum vrole r = p->vrole;
    bool container = c == '{' || c == '[';

    switch (r) {
    case V_TOP:
        if (c != '{') {
            fail_at(p, at, "'{' (a _changes response object)", c);
            return 1;
        }
        open_container(p, false, F_TOP);
        return 1;
    case V_RESULTS:
        if (c != '[') {
            fail_at(p, at, "'[' (the results array)", c);
            return 1;
        }
        open_container(p, true, F_RESULTS);
        return 1;
    case V_ROW:
        if (c != '{') {
            fail_at(p, at, "'{' (a change row)", c);
            return 1;
        }
        open_container(p, false, F_ROW);
        return 1;
    case V_CHANGES:
        if (c == '[') {
            open_container(p, true, F_CHANGES);
            return 1;
        }
        r = V_SKIP;
        break;
    case V_CHANGE:
        if (c == '{') {
            open_container(p, false, F_CHANGE);
            return 1;
        }
        r = V_SKIP;
        break;
    case V_DOC:
        if (p->stack[p->sp - 1].role == F_ROW) {
            /* the document's root */
            if (c == '{') {
                begin_doc(p);
                p->doc_base = p->sp;
                open_container(p, false, F_DOC);
                return 1;
            }
            p->doc_present = c != 'n';
            p->doc_reject = c == 'n' ? RJ_NONE : RJ_NOT_OBJECT;
            r = V_SKIP;
        }
        break;
    default:
        break;
    }
    p->vrole = r;

    if (container) {
        capture_for(p, r);
        open_container(p, c == '[', r == V_DOC ? F_DOC : F_SKIP);
        return 1;
    }
    if (r == V_DOC) {
        p->out = p->docout;
        p->str_quoted = true;
        /* the document's top-level _rev, kept apart for change_row.rev */
        if (p->member_rev && c == '"') {
            buf_reset(&p->rev_doc_raw);
            p->tee = &p->rev_doc_raw;
        }
    } else {
        p->out = capture_for(p, r);
        p->str_quoted = false;
    }
    switch (c) {
    case '"':
        start_string(p, false);
        return 1;
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        p->nst = N_START;
        p->int_digits = p->frac_digits = p->frac_lz = 0;
        p->int_nz = p->frac_nz = p->exp_neg = false;
        p->exp = 0;
        p->state = ST_NUMBER;
        return 0;
    case 't':
        p->lit = "true";
        break;
    case 'f':
        p->lit = "false";
        break;
    case 'n':
        p->lit = "null";
        break;
    default:
        fail_at(p, at, "a value", c);
        return 1;
    }
    p->litpos = 0;
    p->state = ST_LITERAL;
    return 0;
}

static void start_key(changes_parser *p)
{
    frame f = p->stack[p->sp - 1];

    /* end_key decodes this buffer in place: it must hold this key's raw
     * text or nothing, never an earlier key already decoded (a text
     * "\\u00zz" decoded twice is a bad escape) */
    buf_reset(&p->key);
    p->tee = NULL;
    if (f.role == F_DOC) {
        p->out = p->docout;
        p->str_quoted = true;
        if (p->sp - 1 == p->doc_base) {
            /* a member of the document's root: remember where it starts
             * and capture its name (the tee gets no quotes) to spot _rev
             * and password fields */
            p->member_start = p->doc.len;
            p->tee = &p->key;
        }
    } else if (f.role == F_SKIP) {
        p->out = NULL;
        p->str_quoted = false;
    } else {
        p->out = &p->key;
        p->str_quoted = false;
    }
    start_string(p, true);
}

static void end_key(changes_parser *p)
{
    frame f = p->stack[p->sp - 1];
    buf *k = &p->key;
    bool ok = buf_ok(k);
    enum vrole r = V_SKIP;

    if (ok)
        decode_in_place(k);
    switch (f.role) {
    case F_DOC:
        r = V_DOC;
        if (p->sp - 1 == p->doc_base && ok) {
            for (size_t i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]); i++)
                if (key_is(k, secret_keys[i]))
                    p->member_secret = true;
            p->member_rev = key_is(k, "_rev");
        }
        break;
    case F_TOP:
        if (ok && key_is(k, "results"))
            r = V_RESULTS;
        else if (ok && key_is(k, "last_seq"))
            r = V_LAST_SEQ;
        else if (ok && key_is(k, "pending"))
            r = V_PENDING;
        break;
    case F_ROW:
        if (ok && key_is(k, "id"))
            r = V_ID;
        else if (ok && key_is(k, "seq"))
            r = V_SEQ;
        else if (ok && key_is(k, "changes"))
            r = V_CHANGES;
        else if (ok && key_is(k, "deleted"))
            r = V_DELETED;
        else if (ok && key_is(k, "doc"))
            r = V_DOC;
        break;
    case F_CHANGE:
        if (ok && p->chg_first && key_is(k, "rev"))
            r = V_REV;
        break;
    default:
        break;
    }
    p->vrole = r;
    p->tee = NULL;
    p->out = frame_out(p);
    p->state = ST_COLON;
}

/* ---- lexers --------------------------------------------------------------- */

static void string_done(changes_parser *p)
{
    if (p->hi_pending) {
        emit(p, "\\ufffd", 6);
        p->hi_pending = false;
        p->str_cleaned = true;
    }
    if (p->str_quoted)
        emit_quote(p);
    if (p->str_cleaned) {
        if (p->doc_base >= 0 && p->sp > p->doc_base)
            p->doc_cleaned = true;
        else if (!p->str_key && (p->vrole == V_ID || p->vrole == V_REV))
            p->row_cleaned = true;
    }
    if (p->deep) {
        p->state = ST_DEEP;
        return;
    }
    if (p->str_key) {
        end_key(p);
        return;
    }
    p->last_kind = K_STRING;
    scalar_done(p);
}

static inline void flush_hi(changes_parser *p)
{
    emit(p, "\\ufffd", 6);
    p->hi_pending = false;
    p->str_cleaned = true;
}

static inline void emit_replacement(changes_parser *p)
{
    emit(p, "\xEF\xBF\xBD", 3);
    p->str_cleaned = true;
}

/* A complete \uXXXX escape is in p->esc. */
static void uescape_done(changes_parser *p)
{
    unsigned cp = hex4(p->esc + 2);

    if (p->hi_pending) {
        p->hi_pending = false;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            emit(p, p->hi, 6);
            emit(p, p->esc, 6);
            return;
        }
        emit(p, "\\ufffd", 6);
        p->str_cleaned = true;
    }
    if (cp == 0) {
        p->str_cleaned = true;
    } else if (cp >= 0xD800 && cp <= 0xDBFF) {
        p->hi_pending = true;
        memcpy(p->hi, p->esc, 6);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        emit(p, "\\ufffd", 6);
        p->str_cleaned = true;
    } else {
        emit(p, p->esc, 6);
    }
}

/* Starts a UTF-8 sequence the fast path could not take whole. */
static void utf8_lead(changes_parser *p, uint8_t c)
{
    p->u8lo = 0x80;
    p->u8hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        p->u8need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        p->u8need = 2;
        if (c == 0xE0)
            p->u8lo = 0xA0;
        else if (c == 0xED)
            p->u8hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        p->u8need = 3;
        if (c == 0xF0)
            p->u8lo = 0x90;
        else if (c == 0xF4)
            p->u8hi = 0x8F;
    } else {
        emit_replacement(p);
        return;
    }
    p->u8[0] = c;
    p->u8len = 1;
}

/*
 * The string states (ST_STRING, ST_ESC, ST_UHEX) from s[i].  Runs of bytes
 * that need no attention (printable ASCII, valid UTF-8 wholly inside this
 * piece) are copied with one emit.  Returns the index after what was used.
 */
static size_t lex_string(changes_parser *p, const uint8_t *s, size_t i, size_t n)
{
    while (i < n) {
        uint8_t c;

        if (p->state == ST_ESC) {
            c = s[i++];
            switch (c) {
            case 'u':
                p->esc[0] = '\\';
                p->esc[1] = 'u';
                p->esclen = 2;
                p->state = ST_UHEX;
                continue;
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't': {
                char e[2] = {'\\', (char)c};
                if (p->hi_pending)
                    flush_hi(p);
                emit(p, e, 2);
                p->state = ST_STRING;
                continue;
            }
            default:
                fail_at(p, i - 1, "an escape character (one of \"\\/bfnrtu)", c);
                return i;
            }
        }
        if (p->state == ST_UHEX) {
            c = s[i];
            if (hex_value(c) < 0) {
                fail_at(p, i, "a hex digit", c);
                return i + 1;
            }
            i++;
            p->esc[p->esclen++] = (char)c;
            if (p->esclen == 6) {
                uescape_done(p);
                p->state = ST_STRING;
            }
            continue;
        }
        if (p->u8need) {
            c = s[i];
            if (c < p->u8lo || c > p->u8hi) {
                /* broken sequence: one U+FFFD, then c starts afresh */
                p->u8need = 0;
                emit_replacement(p);
                continue;
            }
            i++;
            p->u8[p->u8len++] = c;
            p->u8lo = 0x80;
            p->u8hi = 0xBF;
            if (--p->u8need == 0)
                emit(p, p->u8, (size_t)p->u8len);
            continue;
        }

        size_t start = i;
        for (;;) {
            while (i < n && plain[s[i]])
                i++;
            if (i < n && s[i] >= 0x80) {
                size_t k = utf8_valid_len(s + i, n - i);
                if (k) {
                    i += k;
                    continue;
                }
            }
            break;
        }
        if (i > start) {
            if (p->hi_pending)
                flush_hi(p);
            emit(p, s + start, i - start);
            if (i == n)
                break;
        }
        c = s[i];
        if (c == '"') {
            string_done(p);
            return i + 1;
        }
        if (c == '\\') {
            p->state = ST_ESC;
            i++;
            continue;
        }
        if (c < 0x20) {
            fail_at(p, i, "a string character (control characters must be escaped)", c);
            return i + 1;
        }
        /* a non-ASCII byte the fast path refused: invalid, or cut */
        if (p->hi_pending)
            flush_hi(p);
        utf8_lead(p, c);
        i++;
    }
    return i;
}

static void number_done(changes_parser *p)
{
    int64_t e = p->exp_neg ? -p->exp : p->exp;
    int64_t dscale = (int64_t)p->frac_digits - e;
    bool bad = dscale > NUMERIC_MAX_DSCALE;

    if (p->int_nz)
        bad |= (int64_t)p->int_digits - 1 + e > NUMERIC_MAX_WEIGHT;
    else if (p->frac_nz)
        bad |= -(int64_t)p->frac_lz - 1 + e > NUMERIC_MAX_WEIGHT;
    if (bad && p->vrole == V_DOC && p->docout)
        reject_doc(p, RJ_NUMBER);
    p->last_kind = K_NUMBER;
    scalar_done(p);
}

static size_t lex_number(changes_parser *p, const uint8_t *s, size_t i, size_t n)
{
    size_t start = i;

    for (; i < n; i++) {
        uint8_t c = s[i];
        bool digit = c >= '0' && c <= '9';

        switch (p->nst) {
        case N_START:
            if (c == '-') {
                p->nst = N_MINUS;
                continue;
            }
            /* fall through */
        case N_MINUS:
            if (c == '0') {
                p->nst = N_ZERO;
                p->int_digits = 1;
            } else if (digit) {
                p->nst = N_INT;
                p->int_digits = 1;
                p->int_nz = true;
            } else {
                fail_at(p, i, "a digit", c);
                return i + 1;
            }
            continue;
        case N_ZERO:
        case N_INT:
            if (digit && p->nst == N_INT) {
                p->int_digits++;
                continue;
            }
            if (c == '.') {
                p->nst = N_FRAC0;
                continue;
            }
            if (c == 'e' || c == 'E') {
                p->nst = N_EXP0;
                continue;
            }
            break;
        case N_FRAC0:
        case N_FRAC:
            if (digit) {
                p->frac_digits++;
                if (!p->frac_nz) {
                    if (c == '0')
                        p->frac_lz++;
                    else
                        p->frac_nz = true;
                }
                p->nst = N_FRAC;
                continue;
            }
            if (p->nst == N_FRAC0) {
                fail_at(p, i, "a digit", c);
                return i + 1;
            }
            if (c == 'e' || c == 'E') {
                p->nst = N_EXP0;
                continue;
            }
            break;
        case N_EXP0:
            if (c == '+' || c == '-') {
                p->exp_neg = c == '-';
                p->nst = N_EXPS;
                continue;
            }
            /* fall through */
        case N_EXPS:
        case N_EXP:
            if (digit) {
                p->exp = p->exp * 10 + (c - '0');
                if (p->exp > EXP_SATURATE)
                    p->exp = EXP_SATURATE;
                p->nst = N_EXP;
                continue;
            }
            if (p->nst != N_EXP) {
                fail_at(p, i, "a digit", c);
                return i + 1;
            }
            break;
        }
        /* c is not part of the number, which is complete */
        emit(p, s + start, i - start);
        number_done(p);
        return i;
    }
    emit(p, s + start, i - start);
    return i;
}

/* Skips containers nested beyond the stack: only brackets are counted and
 * strings lexed (so a bracket inside a string does not count). */
static size_t lex_deep(changes_parser *p, const uint8_t *s, size_t i, size_t n)
{
    for (; i < n; i++) {
        uint8_t c = s[i];
        switch (c) {
        case '{':
        case '[':
            p->deep++;
            break;
        case '}':
        case ']':
            if (--p->deep == 0) {
                p->last_kind = K_CONTAINER;
                value_done(p);
                return i + 1;
            }
            break;
        case '"':
            p->out = p->tee = NULL;
            p->str_quoted = false;
            start_string(p, false);
            return i + 1;
        case ' ':
        case '\t':
        case '\n':
        case '\r':
        case ',':
        case ':':
        case '+':
        case '-':
        case '.':
            break;
        default:
            if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
                break;
            fail_at(p, i, "a value", c);
            return i + 1;
        }
    }
    return i;
}

/* One byte in a structural state (not white space).  Returns the bytes
 * used (0 when a number or literal lexer takes over from this byte). */
static size_t structural(changes_parser *p, uint8_t c, size_t at, cs_error *err)
{
    frame *top = p->sp > 0 ? &p->stack[p->sp - 1] : NULL;

    switch (p->state) {
    case ST_VALUE_OR_CLOSE:
        if (c == ']') {
            close_container(p, ']', err);
            return 1;
        }
        /* fall through */
    case ST_VALUE:
        if (top && top->arr) {
            switch (top->role) {
            case F_RESULTS:
                p->vrole = V_ROW;
                break;
            case F_CHANGES:
                p->vrole = V_CHANGE;
                p->chg_first = p->chg_idx++ == 0;
                break;
            case F_DOC:
                p->vrole = V_DOC;
                break;
            default:
                p->vrole = V_SKIP;
                break;
            }
        }
        return value_start(p, c, at);
    case ST_KEY_OR_CLOSE:
        if (c == '}') {
            close_container(p, '}', err);
            return 1;
        }
        if (c != '"') {
            fail_at(p, at, "'\"' or '}'", c);
            return 1;
        }
        start_key(p);
        return 1;
    case ST_KEY:
        if (c != '"') {
            fail_at(p, at, "'\"' (a key)", c);
            return 1;
        }
        start_key(p);
        return 1;
    case ST_COLON:
        if (c != ':') {
            fail_at(p, at, "':'", c);
            return 1;
        }
        emit(p, ":", 1);
        p->state = ST_VALUE;
        return 1;
    case ST_AFTER:
        if (c == ',') {
            emit(p, ",", 1);
            p->state = top->arr ? ST_VALUE : ST_KEY;
            return 1;
        }
        if (c == (top->arr ? ']' : '}')) {
            close_container(p, (char)c, err);
            return 1;
        }
        fail_at(p, at, top->arr ? "',' or ']'" : "',' or '}'", c);
        return 1;
    case ST_DONE:
        fail_at(p, at, "end of input after the response object", c);
        return 1;
    default:
        fail_at(p, at, "valid JSON", c);
        return 1;
    }
}

/* ---- API ------------------------------------------------------------------ */

changes_parser *changes_parser_new(const changes_limits *limits, changes_row_fn on_row, void *ud)
{
    changes_parser *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    if (limits)
        p->lim = *limits;
    if (p->lim.max_doc_bytes == 0)
        p->lim.max_doc_bytes = DEFAULT_MAX_DOC_BYTES;
    if (p->lim.max_depth <= 0)
        p->lim.max_depth = DEFAULT_MAX_DEPTH;
    p->on_row = on_row;
    p->ud = ud;
    p->cap = p->lim.max_depth + EXTRA_FRAMES;
    p->stack = malloc((size_t)p->cap * sizeof(*p->stack));
    if (!p->stack) {
        free(p);
        return NULL;
    }
    buf_init(&p->id_raw, CAPTURE_MAX);
    buf_init(&p->id, CAPTURE_MAX);
    buf_init(&p->rev_chg_raw, CAPTURE_MAX);
    buf_init(&p->rev_doc_raw, CAPTURE_MAX);
    buf_init(&p->rev, CAPTURE_MAX);
    buf_init(&p->seq, CAPTURE_MAX);
    buf_init(&p->last_seq, CAPTURE_MAX);
    buf_init(&p->key, KEY_MAX);
    buf_init(&p->doc, p->lim.max_doc_bytes);
    buf_init(&p->stub, 3 * CAPTURE_MAX);
    changes_parser_reset(p);
    return p;
}

void changes_parser_free(changes_parser *p)
{
    if (!p)
        return;
    buf_free(&p->id_raw);
    buf_free(&p->id);
    buf_free(&p->rev_chg_raw);
    buf_free(&p->rev_doc_raw);
    buf_free(&p->rev);
    buf_free(&p->seq);
    buf_free(&p->last_seq);
    buf_free(&p->key);
    buf_free(&p->doc);
    buf_free(&p->stub);
    free(p->spans);
    free(p->stack);
    free(p);
}

void changes_parser_reset(changes_parser *p)
{
    p->state = ST_VALUE;
    p->vrole = V_TOP;
    p->pos = 0;
    p->sp = 0;
    p->deep = 0;
    p->doc_base = -1;
    p->out = p->tee = p->docout = NULL;
    p->nout = 0;
    p->hi_pending = false;
    p->u8need = 0;
    p->seen_results = false;
    p->last_seq_present = false;
    buf_reset(&p->last_seq);
    p->pending_present = false;
    p->pending = 0;
    p->rows = 0;
    p->fcode = CS_OK;
    p->ferr.code = CS_OK;
    p->ferr.msg[0] = '\0';
    begin_row(p);
}

static cs_result replay(const changes_parser *p, cs_error *err)
{
    if (err)
        *err = p->ferr;
    return p->fcode;
}

cs_result changes_parser_feed(changes_parser *p, const char *data, size_t len, cs_error *err)
{
    const uint8_t *s = (const uint8_t *)data;
    size_t i = 0;

    while (i < len && p->state != ST_FAILED) {
        switch (p->state) {
        case ST_STRING:
        case ST_ESC:
        case ST_UHEX:
            i = lex_string(p, s, i, len);
            break;
        case ST_NUMBER:
            i = lex_number(p, s, i, len);
            break;
        case ST_LITERAL:
            if (s[i] != (uint8_t)p->lit[p->litpos]) {
                char what[32];
                snprintf(what, sizeof(what), "'%s'", p->lit);
                fail_at(p, i, what, s[i]);
                break;
            }
            i++;
            if (p->lit[++p->litpos] == '\0') {
                emit(p, p->lit, (size_t)p->litpos);
                p->last_kind = p->lit[0] == 't' ? K_TRUE : p->lit[0] == 'f' ? K_FALSE : K_NULL;
                scalar_done(p);
            }
            break;
        case ST_DEEP:
            i = lex_deep(p, s, i, len);
            break;
        default: {
            uint8_t c = s[i];
            if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
                i++;
                break;
            }
            i += structural(p, c, i, err);
            break;
        }
        }
    }
    p->pos += len;
    if (p->state == ST_FAILED)
        return replay(p, err);
    return CS_OK;
}

cs_result changes_parser_finish(changes_parser *p, cs_error *err)
{
    const char *where;

    if (p->state == ST_FAILED)
        return replay(p, err);
    if (p->state == ST_DONE) {
        if (!p->seen_results)
            return cs_fail(err, CS_TRANSIENT, "response has no \"results\"");
        return CS_OK;
    }
    if (p->sp == 0 && p->state == ST_VALUE)
        where = p->pos ? "no JSON value" : "empty body";
    else if (p->doc_base >= 0)
        where = "inside a document";
    else if (p->sp >= 3 && p->stack[2].role == F_ROW)
        where = "inside a change row";
    else if (p->sp >= 2 && p->stack[1].role == F_RESULTS)
        where = "inside \"results\"";
    else
        where = "inside the response object";
    return cs_fail(err, CS_TRANSIENT,
                   "response ended early (%s, after %" PRIu64 " bytes and %zu rows)", where, p->pos,
                   p->rows);
}

const char *changes_parser_last_seq(const changes_parser *p)
{
    return p->last_seq_present ? p->last_seq.data : NULL;
}

bool changes_parser_pending(const changes_parser *p, long long *pending)
{
    if (p->pending_present && pending)
        *pending = p->pending;
    return p->pending_present;
}

size_t changes_parser_rows(const changes_parser *p)
{
    return p->rows;
}

bool changes_parser_between_rows(const changes_parser *p)
{
    /* the innermost open container is "results" and no value has started
     * in it: after '[' or after a row's ',' */
    return p->sp >= 2 && p->stack[p->sp - 1].role == F_RESULTS && p->deep == 0 &&
           (p->state == ST_VALUE_OR_CLOSE || p->state == ST_VALUE || p->state == ST_AFTER);
}
