/*
 * lex.c - turns template source into tokens.
 *
 * Text between tags becomes TK_TEXT (pointing into the template's copy of
 * the source, no allocation); {{ }} and {% %} become BEGIN/END tokens around
 * the expression tokens; comments vanish.  Whitespace control is applied
 * here: a '-' after an opening delimiter strips the whitespace (newlines
 * included) before the tag, a '-' before a closing delimiter strips the
 * whitespace after it.  {% raw %}...{% endraw %} is emitted as plain text.
 * trim_blocks and lstrip_blocks are off, as in Jinja's defaults, and the
 * template's trailing newline is kept.
 */
#include "template/lex.h"
#include "common/buf.h"
#include "common/hex.h"
#include "common/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *filename;
    tpli_arena *arena;
    const char *src;
    size_t n;
    /* incremental line/column: positions are asked for in increasing order */
    size_t at, line, linestart;
    tpli_token *toks;
    size_t ntoks, cap;
    cs_error *err;
} lexer;

static void where(lexer *lx, size_t off, int *line, int *col)
{
    if (off < lx->at) { /* rare: restart from the top */
        lx->at = 0;
        lx->line = 1;
        lx->linestart = 0;
    }
    for (; lx->at < off; lx->at++) {
        if (lx->src[lx->at] == '\n') {
            lx->line++;
            lx->linestart = lx->at + 1;
        }
    }
    *line = (int)lx->line;
    *col = (int)(off - lx->linestart + 1);
}

static bool lex_fail(lexer *lx, size_t off, const char *fmt, const char *arg)
{
    int line, col;
    char msg[256];

    where(lx, off, &line, &col);
    snprintf(msg, sizeof(msg), fmt, arg);
    cs_fail(lx->err, CS_INVALID, "%s:%d:%d: %s", lx->filename, line, col, msg);
    return false;
}

static tpli_token *push(lexer *lx, tpli_tok_kind kind, size_t off, const char *s, size_t len)
{
    tpli_token *tk;

    if (lx->ntoks == lx->cap) {
        lx->cap = lx->cap ? lx->cap * 2 : 64;
        lx->toks = xrealloc(lx->toks, lx->cap * sizeof(*lx->toks));
    }
    tk = &lx->toks[lx->ntoks++];
    memset(tk, 0, sizeof(*tk));
    tk->kind = kind;
    where(lx, off, &tk->line, &tk->col);
    tk->s = s;
    tk->len = len;
    return tk;
}

static void push_text(lexer *lx, size_t start, size_t end, bool lstrip_next_tag, bool rstrip_prev)
{
    if (rstrip_prev)
        while (start < end && isspace((unsigned char)lx->src[start]))
            start++;
    if (lstrip_next_tag)
        while (end > start && isspace((unsigned char)lx->src[end - 1]))
            end--;
    if (end > start)
        push(lx, TK_TEXT, start, lx->src + start, end - start);
}

static void put_utf8(buf *b, unsigned long cp)
{
    if (cp < 0x80) {
        buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        buf_putc(b, (char)(0xc0 | (cp >> 6)));
        buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        buf_putc(b, (char)(0xe0 | (cp >> 12)));
        buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
        buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    } else {
        buf_putc(b, (char)(0xf0 | (cp >> 18)));
        buf_putc(b, (char)(0x80 | ((cp >> 12) & 0x3f)));
        buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
        buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    }
}

/* A quoted string starting at *pos; decodes Python escapes into the arena. */
static bool lex_string(lexer *lx, size_t *pos)
{
    size_t start = *pos, i = start + 1;
    char q = lx->src[start];
    buf b;
    tpli_token *tk;
    char *s;

    buf_init(&b, 0);
    buf_reserve(&b, 16);
    while (i < lx->n && lx->src[i] != q) {
        char c = lx->src[i];
        if (c == '\\' && i + 1 < lx->n) {
            char e = lx->src[i + 1];
            i += 2;
            switch (e) {
            case 'n':
                buf_putc(&b, '\n');
                break;
            case 't':
                buf_putc(&b, '\t');
                break;
            case 'r':
                buf_putc(&b, '\r');
                break;
            case '0':
                buf_putc(&b, '\0');
                break;
            case '\\':
            case '\'':
            case '"':
                buf_putc(&b, e);
                break;
            case '\n':
                break;
            case 'x':
            case 'u': {
                int nd = e == 'x' ? 2 : 4, k;
                unsigned long cp = 0;
                for (k = 0; k < nd && i + (size_t)k < lx->n &&
                            hex_value((unsigned char)lx->src[i + k]) >= 0;
                     k++)
                    cp = cp * 16 + (unsigned long)hex_value((unsigned char)lx->src[i + k]);
                if (k == nd) {
                    put_utf8(&b, cp);
                    i += (size_t)nd;
                } else {
                    buf_putc(&b, '\\');
                    buf_putc(&b, e);
                }
                break;
            }
            default: /* Python keeps unknown escapes as they are */
                buf_putc(&b, '\\');
                buf_putc(&b, e);
            }
            continue;
        }
        buf_putc(&b, c);
        i++;
    }
    if (i >= lx->n) {
        buf_free(&b);
        return lex_fail(lx, start, "%s", "unterminated string");
    }
    if (!buf_ok(&b)) {
        buf_free(&b);
        return lex_fail(lx, start, "%s", "string too long");
    }
    s = tpli_arena_alloc(lx->arena, b.len + 1);
    memcpy(s, b.data, b.len + 1);
    tk = push(lx, TK_STRING, start, s, b.len);
    (void)tk;
    buf_free(&b);
    *pos = i + 1;
    return true;
}

static bool lex_number(lexer *lx, size_t *pos)
{
    size_t start = *pos, i = start;
    bool isfloat = false;
    char tmp[128];
    size_t k = 0;
    tpli_token *tk;

    while (i < lx->n) {
        char c = lx->src[i];
        if (isdigit((unsigned char)c)) {
            if (k < sizeof(tmp) - 1)
                tmp[k++] = c;
            i++;
        } else if (c == '_' && i + 1 < lx->n && isdigit((unsigned char)lx->src[i + 1])) {
            i++;
        } else if (c == '.' && !isfloat && i + 1 < lx->n &&
                   isdigit((unsigned char)lx->src[i + 1])) {
            isfloat = true;
            if (k < sizeof(tmp) - 1)
                tmp[k++] = c;
            i++;
        } else if ((c == 'e' || c == 'E') && i + 1 < lx->n &&
                   (isdigit((unsigned char)lx->src[i + 1]) ||
                    ((lx->src[i + 1] == '-' || lx->src[i + 1] == '+') && i + 2 < lx->n &&
                     isdigit((unsigned char)lx->src[i + 2])))) {
            isfloat = true;
            if (k < sizeof(tmp) - 2) {
                tmp[k++] = c;
                tmp[k++] = lx->src[i + 1];
            }
            i += 2;
        } else {
            break;
        }
    }
    tmp[k] = '\0';
    tk = push(lx, isfloat ? TK_FLOAT : TK_INT, start, lx->src + start, i - start);
    if (isfloat) {
        tk->fval = strtod(tmp, NULL);
    } else {
        char *end;
        errno = 0;
        tk->ival = strtoll(tmp, &end, 10);
        if (errno == ERANGE || k >= sizeof(tmp) - 1)
            return lex_fail(lx, start, "%s", "integer too large");
    }
    *pos = i;
    return true;
}

static const char *const ops2[] = {"//", "**", "==", "!=", "<=", ">=", NULL};
static const char ops1[] = "+-*/%~<>=()[]{},:.|";

/*
 * Lexes the inside of a {{ }} or {% %} tag from *pos up to its closing
 * delimiter `close` ("}}" or "%}").  Braces are balanced so that a dict
 * literal's "}}" does not end a {{ }}.  *rstrip is set when the tag ends
 * with "-}}" or "-%}".
 */
static bool lex_tag(lexer *lx, size_t *pos, size_t open_at, char close, bool *rstrip)
{
    size_t i = *pos;
    int depth = 0;
    const char *s = lx->src;

    for (;;) {
        while (i < lx->n && isspace((unsigned char)s[i]))
            i++;
        if (i >= lx->n)
            return lex_fail(lx, open_at, "unclosed tag \"%s\"", close == '}' ? "{{" : "{%");
        if (depth == 0) {
            if (s[i] == close && i + 1 < lx->n && s[i + 1] == '}') {
                *rstrip = false;
                *pos = i + 2;
                push(lx, close == '}' ? TK_VAR_END : TK_BLOCK_END, i, s + i, 2);
                return true;
            }
            if (s[i] == '-' && i + 2 < lx->n && s[i + 1] == close && s[i + 2] == '}') {
                *rstrip = true;
                *pos = i + 3;
                push(lx, close == '}' ? TK_VAR_END : TK_BLOCK_END, i, s + i, 3);
                return true;
            }
            if (s[i] == '+' && i + 2 < lx->n && s[i + 1] == close && s[i + 2] == '}') {
                *rstrip = false;
                *pos = i + 3;
                push(lx, close == '}' ? TK_VAR_END : TK_BLOCK_END, i, s + i, 3);
                return true;
            }
        }
        if (isalpha((unsigned char)s[i]) || s[i] == '_') {
            size_t st = i;
            while (i < lx->n && (isalnum((unsigned char)s[i]) || s[i] == '_'))
                i++;
            push(lx, TK_NAME, st, s + st, i - st);
        } else if (isdigit((unsigned char)s[i])) {
            if (!lex_number(lx, &i))
                return false;
        } else if (s[i] == '\'' || s[i] == '"') {
            if (!lex_string(lx, &i))
                return false;
        } else {
            int k;
            bool found = false;
            for (k = 0; ops2[k]; k++) {
                if (i + 1 < lx->n && s[i] == ops2[k][0] && s[i + 1] == ops2[k][1]) {
                    push(lx, TK_OP, i, s + i, 2);
                    i += 2;
                    found = true;
                    break;
                }
            }
            if (!found) {
                char one[2] = {s[i], '\0'};
                if (!strchr(ops1, s[i]) || s[i] == '\0')
                    return lex_fail(lx, i, "unexpected character \"%s\"", one);
                if (s[i] == '{' && close == '}')
                    depth++;
                else if (s[i] == '}' && depth > 0)
                    depth--;
                push(lx, TK_OP, i, s + i, 1);
                i++;
            }
        }
    }
}

static bool name_is(const tpli_token *tk, const char *name)
{
    return tk->kind == TK_NAME && tk->len == strlen(name) && memcmp(tk->s, name, tk->len) == 0;
}

/*
 * After "{% raw %}": finds the matching "{% endraw %}" (with optional '-'
 * markers) from pos.  Returns the offset of its "{%" and sets *after to the
 * offset past its "%}", or (size_t)-1 when there is none.
 */
static size_t find_endraw(lexer *lx, size_t pos, size_t *after, bool *lstrip, bool *rstrip)
{
    const char *s = lx->src;
    size_t i;

    for (i = pos; i + 1 < lx->n; i++) {
        size_t j;
        if (s[i] != '{' || s[i + 1] != '%')
            continue;
        j = i + 2;
        *lstrip = j < lx->n && s[j] == '-';
        if (j < lx->n && (s[j] == '-' || s[j] == '+'))
            j++;
        while (j < lx->n && isspace((unsigned char)s[j]))
            j++;
        if (lx->n - j < 6 || memcmp(s + j, "endraw", 6) != 0)
            continue;
        j += 6;
        while (j < lx->n && isspace((unsigned char)s[j]))
            j++;
        *rstrip = j < lx->n && s[j] == '-';
        if (j < lx->n && (s[j] == '-' || s[j] == '+'))
            j++;
        if (j + 1 < lx->n && s[j] == '%' && s[j + 1] == '}') {
            *after = j + 2;
            return i;
        }
    }
    return (size_t)-1;
}

bool tpli_lex(const char *filename, const char *src, tpli_arena *arena, tpli_token **toks,
              size_t *ntoks, cs_error *err)
{
    lexer lx;
    size_t pos = 0;
    bool rstrip = false;

    memset(&lx, 0, sizeof(lx));
    lx.filename = filename;
    lx.arena = arena;
    lx.src = src;
    lx.n = strlen(src);
    lx.line = 1;
    lx.err = err;

    while (pos < lx.n) {
        size_t k = pos, open, inner;
        bool lstrip;
        char kind;

        while (k + 1 < lx.n &&
               !(lx.src[k] == '{' &&
                 (lx.src[k + 1] == '{' || lx.src[k + 1] == '%' || lx.src[k + 1] == '#')))
            k++;
        if (k + 1 >= lx.n) {
            push_text(&lx, pos, lx.n, false, rstrip);
            break;
        }
        open = k;
        kind = lx.src[k + 1];
        inner = k + 2;
        lstrip = inner < lx.n && lx.src[inner] == '-';
        if (inner < lx.n && (lx.src[inner] == '-' || lx.src[inner] == '+'))
            inner++;
        push_text(&lx, pos, open, lstrip, rstrip);
        rstrip = false;

        if (kind == '#') {
            const char *end = NULL;
            size_t j;
            for (j = inner; j + 1 < lx.n; j++) {
                if (lx.src[j] == '#' && lx.src[j + 1] == '}') {
                    end = lx.src + j;
                    break;
                }
            }
            if (!end) {
                lex_fail(&lx, open, "%s", "unterminated comment");
                goto error;
            }
            rstrip = j > inner && lx.src[j - 1] == '-';
            pos = j + 2;
            continue;
        }

        {
            size_t first = lx.ntoks;
            push(&lx, kind == '{' ? TK_VAR_BEGIN : TK_BLOCK_BEGIN, open, lx.src + open,
                 inner - open);
            if (!lex_tag(&lx, &inner, open, kind == '{' ? '}' : '%', &rstrip))
                goto error;
            pos = inner;
            /* {% raw %}: everything up to {% endraw %} is text */
            if (kind == '%' && lx.ntoks - first == 3 && name_is(&lx.toks[first + 1], "raw")) {
                size_t after, at;
                bool ls, rs;
                lx.ntoks = first;
                at = find_endraw(&lx, pos, &after, &ls, &rs);
                if (at == (size_t)-1) {
                    lex_fail(&lx, open, "unclosed block \"%s\"", "raw");
                    goto error;
                }
                push_text(&lx, pos, at, ls, rstrip);
                rstrip = rs;
                pos = after;
            }
        }
    }
    push(&lx, TK_EOF, lx.n, lx.src + lx.n, 0);
    *toks = lx.toks;
    *ntoks = lx.ntoks;
    return true;

error:
    free(lx.toks);
    return false;
}
