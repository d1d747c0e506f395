/*
 * modules.c - dbt's `modules` for templates: the subset of Python's
 * datetime and re that dbt packages call (dbt_utils' pretty_time and
 * slugify, dbt_date's date/datetime helpers), as objects (VF_OBJECT dicts
 * with an okind) whose fields are their attributes.
 *
 * datetime: date(y, m, d), datetime(y, m, d, h, mi, s, us) (naive: a
 * tzinfo other than None is refused, pytz is not provided), timedelta(...),
 * date.today(), datetime.now()/utcnow()/strptime(s, fmt); methods
 * strftime, isoformat, date, weekday, isoweekday, replace, total_seconds;
 * + and - between them; comparisons (value.c).
 *
 * re: sub, search, match, fullmatch, findall, split, escape, compile and
 * the flags I/IGNORECASE, M/MULTILINE, S/DOTALL.  Patterns are translated
 * from Python's syntax to POSIX extended regular expressions (\d \w \s
 * and their negations, inside and outside brackets); what has no POSIX
 * meaning (lookaround, non-greedy repeats, (?:..), named groups, back-
 * references) is an error "re: unsupported pattern", never a different
 * match.  Matching is POSIX leftmost-longest, which differs from Python
 * only for alternations whose first branch is a prefix of a later one.
 */
#include "template/modules.h"
#include "template/filter.h"

#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ARG(i, name) tpl_arg(a, (i), (name))
#define US_PER_DAY 86400000000LL
#define PATTERN_MAX 4096

static bool is_kind(const tpl_value *v, int kind)
{
    return tpl_typeof(v) == TPL_DICT && (v->flags & VF_OBJECT) && v->okind == kind;
}

static long long field(const tpl_value *o, const char *name)
{
    return tpl_as_int(tpl_dict_get(o, name));
}

/* ---- calendar (proleptic Gregorian, days since 1970-01-01) ---- */

static long long days_from_civil(long long y, long long m, long long d)
{
    long long era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(long long z, long long *y, long long *m, long long *d)
{
    long long era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp + (mp < 10 ? 3 : -9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(long long y, long long m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : dm[m - 1];
}

/* Monday 0 .. Sunday 6 */
static int weekday_of(long long days)
{
    return (int)(((days % 7) + 7 + 3) % 7);
}

/* ---- objects ---- */

/* a date (us < 0) or datetime object at `days` and `us` into the day;
 * NULL when the year leaves 1..9999 */
static tpl_value *temporal_new(bool date, long long days, long long us)
{
    long long y, m, d, h = us / 3600000000LL, mi = us / 60000000 % 60, s = us / 1000000 % 60,
                       f = us % 1000000;
    char disp[160];
    tpl_value *o;

    civil_from_days(days, &y, &m, &d);
    if (y < 1 || y > 9999)
        return NULL;
    if (date)
        snprintf(disp, sizeof(disp), "%04lld-%02lld-%02lld", y, m, d);
    else if (f)
        snprintf(disp, sizeof(disp), "%04lld-%02lld-%02lld %02lld:%02lld:%02lld.%06lld", y, m, d, h,
                 mi, s, f);
    else
        snprintf(disp, sizeof(disp), "%04lld-%02lld-%02lld %02lld:%02lld:%02lld", y, m, d, h, mi,
                 s);
    o = tpl_object_new(disp);
    o->okind = date ? OK_DATE : OK_DATETIME;
    tpl_dict_set(o, "year", tpl_int(y));
    tpl_dict_set(o, "month", tpl_int(m));
    tpl_dict_set(o, "day", tpl_int(d));
    if (!date) {
        tpl_dict_set(o, "hour", tpl_int(h));
        tpl_dict_set(o, "minute", tpl_int(mi));
        tpl_dict_set(o, "second", tpl_int(s));
        tpl_dict_set(o, "microsecond", tpl_int(f));
        tpl_dict_set(o, "tzinfo", tpl_none());
    }
    return o;
}

static void temporal_parts(const tpl_value *o, long long *days, long long *us)
{
    *days = days_from_civil(field(o, "year"), field(o, "month"), field(o, "day"));
    *us = o->okind == OK_DATE
              ? 0
              : ((field(o, "hour") * 60 + field(o, "minute")) * 60 + field(o, "second")) * 1000000 +
                    field(o, "microsecond");
}

/* a timedelta of total microseconds, normalized as Python's */
static tpl_value *delta_new(long long total)
{
    long long days = total >= 0 ? total / US_PER_DAY : -((-total + US_PER_DAY - 1) / US_PER_DAY);
    long long rem = total - days * US_PER_DAY, secs = rem / 1000000, us = rem % 1000000;
    char disp[96];
    int k;
    tpl_value *o;

    k = days
            ? snprintf(disp, sizeof(disp), "%lld day%s, ", days, days == 1 || days == -1 ? "" : "s")
            : 0;
    snprintf(disp + k, sizeof(disp) - (size_t)k,
             us ? "%lld:%02lld:%02lld.%06lld" : "%lld:%02lld:%02lld", secs / 3600, secs / 60 % 60,
             secs % 60, us);
    o = tpl_object_new(disp);
    o->okind = OK_TIMEDELTA;
    tpl_dict_set(o, "days", tpl_int(days));
    tpl_dict_set(o, "seconds", tpl_int(secs));
    tpl_dict_set(o, "microseconds", tpl_int(us));
    return o;
}

static long long delta_total(const tpl_value *o)
{
    return field(o, "days") * US_PER_DAY + field(o, "seconds") * 1000000 + field(o, "microseconds");
}

/* a date/datetime from checked fields; the error names the field */
static cs_result make_temporal(bool date, const long long *v, tpl_value **out, cs_error *err)
{
    static const char *const names[] = {"year",   "month",  "day",        "hour",
                                        "minute", "second", "microsecond"};
    static const long long hi[] = {9999, 12, 31, 23, 59, 59, 999999};
    int k, n = date ? 3 : 7;

    for (k = 0; k < n; k++) {
        long long lo = k < 3 ? 1 : 0, top = k == 2 ? days_in_month(v[0], v[1]) : hi[k];
        if (v[k] < lo || v[k] > top)
            return cs_fail(err, CS_INVALID, "%s: %s is out of range", date ? "date" : "datetime",
                           names[k]);
    }
    *out = temporal_new(date, days_from_civil(v[0], v[1], v[2]),
                        date ? 0 : ((v[3] * 60 + v[4]) * 60 + v[5]) * 1000000 + v[6]);
    return CS_OK;
}

static cs_result b_date(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out, cs_error *err)
{
    long long v[3];
    static const char *const names[] = {"year", "month", "day"};
    int k;

    for (k = 0; k < 3; k++) {
        tpl_value *x = ARG((size_t)k, names[k]);
        if (tpl_typeof(x) != TPL_INT)
            return cs_fail(err, CS_INVALID, "date: %s must be an integer", names[k]);
        v[k] = x->u.i;
    }
    return make_temporal(true, v, out, err);
}

static cs_result b_datetime(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                            cs_error *err)
{
    static const char *const names[] = {"year",   "month",  "day",        "hour",
                                        "minute", "second", "microsecond"};
    long long v[7] = {0};
    tpl_value *tz = ARG(7, "tzinfo");
    int k;

    for (k = 0; k < 7; k++) {
        tpl_value *x = ARG((size_t)k, names[k]);
        if (!x && k >= 3)
            continue;
        if (tpl_typeof(x) != TPL_INT)
            return cs_fail(err, CS_INVALID, "datetime: %s must be an integer", names[k]);
        v[k] = x->u.i;
    }
    if (tz && tpl_typeof(tz) != TPL_NONE)
        return cs_fail(err, CS_INVALID, "datetime: time zones (tzinfo) are not supported");
    return make_temporal(false, v, out, err);
}

static cs_result b_timedelta(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                             cs_error *err)
{
    static const struct {
        const char *name;
        double us;
    } units[] = {{"days", 86400e6}, {"seconds", 1e6},  {"microseconds", 1},   {"milliseconds", 1e3},
                 {"minutes", 60e6}, {"hours", 3600e6}, {"weeks", 7 * 86400e6}};
    double total = 0;
    size_t k;

    for (k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
        tpl_value *x = ARG(k, units[k].name);
        if (x)
            total += tpl_as_float(x) * units[k].us;
    }
    if (!(fabs(total) < 9e17)) /* about 10^7 days: Python's own limit is 999999999 days */
        return cs_fail(err, CS_INVALID, "timedelta: value out of range");
    *out = delta_new((long long)llround(total));
    return CS_OK;
}

static cs_result now_common(bool date, bool utc, tpl_value **out)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (utc)
        gmtime_r(&ts.tv_sec, &tm);
    else
        localtime_r(&ts.tv_sec, &tm);
    *out = temporal_new(date, days_from_civil(tm.tm_year + 1900LL, tm.tm_mon + 1, tm.tm_mday),
                        date ? 0
                             : ((tm.tm_hour * 60LL + tm.tm_min) * 60 + tm.tm_sec) * 1000000 +
                                   ts.tv_nsec / 1000);
    return CS_OK;
}

static cs_result b_today(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                         cs_error *err)
{
    return now_common(true, false, out);
}

static cs_result b_now(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out, cs_error *err)
{
    if (ARG(0, "tz") && tpl_typeof(ARG(0, "tz")) != TPL_NONE)
        return cs_fail(err, CS_INVALID, "datetime.now: time zones are not supported");
    return now_common(false, false, out);
}

static cs_result b_utcnow(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                          cs_error *err)
{
    return now_common(false, true, out);
}

static cs_result b_strptime(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                            cs_error *err)
{
    const char *s = tpl_as_str(ARG(0, "date_string")), *fmt = tpl_as_str(ARG(1, "format")), *end;
    struct tm tm;

    if (!s || !fmt)
        return cs_fail(err, CS_INVALID, "strptime() needs a string and a format");
    memset(&tm, 0, sizeof(tm));
    tm.tm_mday = 1;
    end = strptime(s, fmt, &tm);
    if (!end || *end)
        return cs_fail(err, CS_INVALID, "time data \"%s\" does not match format \"%s\"", s, fmt);
    *out = temporal_new(false, days_from_civil(tm.tm_year + 1900LL, tm.tm_mon + 1, tm.tm_mday),
                        ((tm.tm_hour * 60LL + tm.tm_min) * 60 + tm.tm_sec) * 1000000);
    return CS_OK;
}

/* Python's strftime on a date/datetime: C's, plus %f (microseconds) */
static int do_strftime(tpli_ctx *c, const tpli_node *n, tpl_value *o, const char *fmt,
                       tpl_value **out)
{
    long long days, us;
    struct tm tm;
    buf f;
    char res[4096];
    size_t len;
    const char *p;

    if (!fmt)
        return tpli_fail(c, n, "strftime() needs a format string");
    if (strlen(fmt) > 512)
        return tpli_fail(c, n, "strftime(): format too long");
    temporal_parts(o, &days, &us);
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = (int)(field(o, "year") - 1900);
    tm.tm_mon = (int)field(o, "month") - 1;
    tm.tm_mday = (int)field(o, "day");
    tm.tm_hour = (int)(us / 3600000000LL);
    tm.tm_min = (int)(us / 60000000 % 60);
    tm.tm_sec = (int)(us / 1000000 % 60);
    tm.tm_wday = (weekday_of(days) + 1) % 7;
    tm.tm_yday = (int)(days - days_from_civil(field(o, "year"), 1, 1));
    buf_init(&f, 0);
    for (p = fmt; *p; p++) {
        if (p[0] == '%' && p[1] == 'f') {
            buf_printf(&f, "%06lld", us % 1000000);
            p++;
        } else if (p[0] == '%' && (p[1] == 'z' || p[1] == 'Z')) {
            p++; /* naive: empty, as Python */
        } else if (p[0] == '%' && p[1]) {
            buf_putc(&f, *p++);
            buf_putc(&f, *p);
        } else {
            buf_putc(&f, *p);
        }
    }
    res[0] = '\0';
    len = f.data ? strftime(res, sizeof(res), f.data, &tm) : 0;
    buf_free(&f);
    *out = tpl_strn(res, len);
    return R_OK;
}

static int temporal_method(tpli_ctx *c, const tpli_node *n, tpl_value *o, const char *m,
                           const tpl_args *a, tpl_value **out)
{
    long long days, us;
    bool date = o->okind == OK_DATE;

    temporal_parts(o, &days, &us);
    if (strcmp(m, "strftime") == 0)
        return do_strftime(c, n, o, tpl_as_str(ARG(0, "format")), out);
    if (strcmp(m, "isoformat") == 0) {
        const char *sep = tpl_as_str(ARG(0, "sep"));
        char *s = xstrndup(o->u.dict.display, strlen(o->u.dict.display));
        if (!date && strlen(s) > 10)
            s[10] = sep && *sep ? sep[0] : 'T';
        *out = tpli_str_take(s, strlen(s));
        return R_OK;
    }
    if (strcmp(m, "weekday") == 0 || strcmp(m, "isoweekday") == 0) {
        *out = tpl_int(weekday_of(days) + (m[0] == 'i'));
        return R_OK;
    }
    if (strcmp(m, "date") == 0 && !date) {
        *out = temporal_new(true, days, 0);
        return R_OK;
    }
    if (strcmp(m, "replace") == 0) {
        static const char *const names[] = {"year",   "month",  "day",        "hour",
                                            "minute", "second", "microsecond"};
        long long v[7];
        int k;
        char msg[CS_ERROR_MAX];
        for (k = 0; k < (date ? 3 : 7); k++) {
            tpl_value *x = tpl_arg(a, (size_t)k, names[k]);
            v[k] = x ? tpl_as_int(x) : field(o, names[k]);
        }
        if (make_temporal(date, v, out, c->err) == CS_OK)
            return R_OK;
        snprintf(msg, sizeof(msg), "%s", c->err->msg);
        return tpli_fail(c, n, "%s", msg);
    }
    return 2;
}

int tpli_temporal_arith(tpli_ctx *c, const tpli_node *n, int op, tpl_value *a, tpl_value *b,
                        tpl_value **out)
{
    bool at = is_kind(a, OK_DATE) || is_kind(a, OK_DATETIME), ad = is_kind(a, OK_TIMEDELTA);
    bool bt = is_kind(b, OK_DATE) || is_kind(b, OK_DATETIME), bd = is_kind(b, OK_TIMEDELTA);
    long long d1, u1, d2, u2;

    if (!(at || ad || bt || bd) || (op != OP_ADD && op != OP_SUB))
        return 2;
    if (ad && bd) {
        long long x = delta_total(a), y = delta_total(b);
        *out = delta_new(op == OP_ADD ? x + y : x - y);
        return R_OK;
    }
    if ((at && bd) || (ad && bt && op == OP_ADD)) {
        tpl_value *t = at ? a : b, *dl = at ? b : a;
        long long total = delta_total(dl) * (op == OP_SUB ? -1 : 1);
        bool date = t->okind == OK_DATE;
        temporal_parts(t, &d1, &u1);
        if (date) /* a date moves by whole days, as in Python */
            total = (total >= 0 ? total / US_PER_DAY : -(-total / US_PER_DAY)) * US_PER_DAY;
        if (fabs((double)d1 + (double)total / (double)US_PER_DAY) > 4e6)
            return tpli_fail(c, n, "date value out of range");
        total += u1;
        d1 += total >= 0 ? total / US_PER_DAY : -((-total + US_PER_DAY - 1) / US_PER_DAY);
        total -= (total >= 0 ? total / US_PER_DAY : -((-total + US_PER_DAY - 1) / US_PER_DAY)) *
                 US_PER_DAY;
        if (!(*out = temporal_new(date, d1, date ? 0 : total)))
            return tpli_fail(c, n, "date value out of range");
        return R_OK;
    }
    if (at && bt && op == OP_SUB && a->okind == b->okind) {
        temporal_parts(a, &d1, &u1);
        temporal_parts(b, &d2, &u2);
        *out = delta_new((d1 - d2) * US_PER_DAY + (u1 - u2));
        return R_OK;
    }
    return tpli_fail(c, n, "unsupported operand types for %s: '%s' and '%s'",
                     op == OP_ADD ? "+" : "-",
                     a->okind == OK_PLAIN ? tpli_type_name(a) : "datetime",
                     b->okind == OK_PLAIN ? tpli_type_name(b) : "datetime");
}

/* ---- re ---- */

enum { RE_I = 2, RE_M = 8, RE_S = 16 }; /* Python's values */

/* appends the POSIX form of one Python class escape (\d \w \s ...) */
static bool class_escape(char e, bool in_brackets, buf *out)
{
    const char *cls = e == 'd' || e == 'D'   ? "0-9"
                      : e == 'w' || e == 'W' ? "[:alnum:]_"
                      : e == 's' || e == 'S' ? "[:space:]"
                                             : NULL;
    if (!cls)
        return false;
    if (in_brackets) {
        if (isupper((unsigned char)e))
            return false; /* [^\d] inside a class has no POSIX spelling */
        return buf_puts(out, cls);
    }
    buf_putc(out, '[');
    if (isupper((unsigned char)e))
        buf_putc(out, '^');
    buf_puts(out, cls);
    return buf_putc(out, ']');
}

/*
 * Python pattern -> POSIX ERE into out.  False for what cannot be
 * translated faithfully.  A bracket expression is rebuilt so that Python's
 * escapes inside it (\] \- \\) mean what they mean in Python.
 */
static bool translate(const char *p, size_t n, buf *out)
{
    size_t i = 0;
    int counted = 0;
    bool after_quant = false;

    while (i < n) {
        char ch = p[i];
        bool quant = ch == '*' || ch == '+' || ch == '?' || ch == '{', was = after_quant;
        /* glibc's regcomp expands repeats into automaton states: a repeat
         * of a repeat (a++, Python's "multiple repeat" error) or large or
         * many counted repeats can take gigabytes, so they are refused */
        after_quant = false;
        if (quant && was)
            return false;
        if (ch == '{') {
            const char *q = p + i + 1;
            char *end;
            unsigned long lo = strtoul(q, &end, 10), hi = lo;
            if (end > q && *end == ',')
                hi = isdigit((unsigned char)end[1]) ? strtoul(end + 1, &end, 10) : (end++, lo);
            if (end == q || (size_t)(end - p) >= n || *end != '}' || lo > 100 || hi > 100 ||
                ++counted > 2)
                return false;
            buf_append(out, p + i, (size_t)(end - (p + i)) + 1);
            i = (size_t)(end - p) + 1;
            after_quant = true;
            continue;
        }
        if (quant)
            after_quant = true;
        if (ch == '\\') {
            char e;
            if (++i >= n)
                return false;
            e = p[i++];
            if (class_escape(e, false, out))
                continue;
            if (e == 'n' || e == 't' || e == 'r') {
                buf_putc(out, e == 'n' ? '\n' : e == 't' ? '\t' : '\r');
            } else if (e == 'b' || e == 'B') {
                buf_putc(out, '\\');
                buf_putc(out, e);
            } else if (e == 'A') {
                buf_putc(out, '^');
            } else if (e == 'Z') {
                buf_putc(out, '$');
            } else if (ispunct((unsigned char)e) || e == ' ') {
                buf_putc(out, '\\');
                buf_putc(out, e);
            } else {
                return false; /* back-references, \x.., unknown escapes */
            }
        } else if (ch == '[') {
            bool neg = false, rbracket = false, dash = false, caret = false;
            buf body;
            i++;
            if (i < n && p[i] == '^') {
                neg = true;
                i++;
            }
            buf_init(&body, 0);
            if (i < n && p[i] == ']') { /* a leading ] is literal */
                rbracket = true;
                i++;
            }
            while (i < n && p[i] != ']') {
                char c = p[i++];
                if (c == '\\') {
                    char e;
                    if (i >= n)
                        break;
                    e = p[i++];
                    if (e == ']')
                        rbracket = true;
                    else if (e == '-')
                        dash = true;
                    else if (e == '^')
                        caret = true;
                    else if (e == 'n' || e == 't' || e == 'r')
                        buf_putc(&body, e == 'n' ? '\n' : e == 't' ? '\t' : '\r');
                    else if (!class_escape(e, true, &body) && !ispunct((unsigned char)e)) {
                        buf_free(&body);
                        return false;
                    } else if (ispunct((unsigned char)e))
                        buf_putc(&body, e);
                } else if (c == '[' && i < n && p[i] == ':') {
                    buf_free(&body); /* POSIX classes are not Python's */
                    return false;
                } else if (c == '^') {
                    caret = true;
                } else if (c == '-' && (body.len == 0 || i >= n || p[i] == ']')) {
                    dash = true;
                } else {
                    buf_putc(&body, c);
                }
            }
            if (i >= n) {
                buf_free(&body);
                return false;
            }
            i++; /* ] */
            buf_putc(out, '[');
            if (neg)
                buf_putc(out, '^');
            if (rbracket)
                buf_putc(out, ']');
            if (body.len)
                buf_append(out, body.data, body.len);
            if (caret)
                buf_putc(out, '^');
            if (dash)
                buf_putc(out, '-');
            if (!rbracket && !body.len && !caret && !dash) {
                buf_free(&body);
                return false; /* [] matches nothing in Python: no POSIX form */
            }
            buf_putc(out, ']');
            buf_free(&body);
        } else if (ch == '(' && i + 1 < n && p[i + 1] == '?') {
            return false;
        } else if ((ch == '*' || ch == '+' || ch == '?' || ch == '}') && i + 1 < n &&
                   p[i + 1] == '?') {
            return false; /* non-greedy */
        } else {
            buf_putc(out, ch);
            i++;
        }
    }
    return buf_ok(out);
}

typedef struct {
    regex_t re;
    size_t ngroups;
} pattern;

static bool compile_pattern(tpl_value *pat, tpl_value *flags, pattern *out, cs_error *err)
{
    const char *p = tpl_as_str(pat);
    long long fl = tpl_as_int(flags);
    int cf = REG_EXTENDED, rc;
    buf b;

    if (is_kind(pat, OK_PATTERN)) {
        p = tpl_as_str(tpl_dict_get(pat, "pattern"));
        fl |= field(pat, "flags");
    }
    if (!p)
        return cs_fail(err, CS_INVALID, "re: the pattern must be a string"), false;
    if (strlen(p) > PATTERN_MAX)
        return cs_fail(err, CS_INVALID, "re: pattern longer than %d bytes", PATTERN_MAX), false;
    if (fl & RE_I)
        cf |= REG_ICASE;
    if (fl & RE_M)
        cf |= REG_NEWLINE;
    buf_init(&b, 4 * PATTERN_MAX + 64);
    if (!translate(p, strlen(p), &b)) {
        buf_free(&b);
        return cs_fail(err, CS_INVALID, "re: unsupported pattern \"%.200s\"", p), false;
    }
    rc = regcomp(&out->re, b.data ? b.data : "", cf);
    buf_free(&b);
    if (rc != 0)
        return cs_fail(err, CS_INVALID, "re: bad pattern \"%.200s\"", p), false;
    out->ngroups = out->re.re_nsub;
    return true;
}

/* one match at or after `from` (REG_STARTEND: NULs and offsets are fine);
 * m has ngroups + 1 slots */
static bool find(pattern *pt, const tpl_value *s, size_t from, regmatch_t *m)
{
    m[0].rm_so = (regoff_t)from;
    m[0].rm_eo = (regoff_t)s->u.str.len;
    return regexec(&pt->re, s->u.str.s, pt->ngroups + 1, m,
                   REG_STARTEND | (from ? REG_NOTBOL : 0)) == 0;
}

static tpl_value *group_value(const tpl_value *s, const regmatch_t *g, tpl_value *none)
{
    if (g->rm_so < 0)
        return tpl_ref(none);
    return tpl_strn(s->u.str.s + g->rm_so, (size_t)(g->rm_eo - g->rm_so));
}

/* the next position after an empty match: one UTF-8 character on */
static size_t step(const tpl_value *s, size_t at)
{
    at++;
    while (at < s->u.str.len && (s->u.str.s[at] & 0xc0) == 0x80)
        at++;
    return at;
}

static tpl_value *match_object(const tpl_value *s, pattern *pt, const regmatch_t *m)
{
    tpl_value *groups = tpl_list_new(), *spans = tpl_list_new(), *o, *g0;
    buf d;
    size_t i;

    for (i = 0; i <= pt->ngroups; i++) {
        tpl_value *sp = tpli_tuple_new();
        tpl_list_push(groups, group_value(s, &m[i], tpl_none()));
        tpl_list_push(sp, tpl_int(m[i].rm_so));
        tpl_list_push(sp, tpl_int(m[i].rm_eo));
        tpl_list_push(spans, sp);
    }
    buf_init(&d, 0);
    g0 = tpl_list_get(groups, 0);
    buf_printf(&d, "<re.Match object; span=(%lld, %lld), match=", (long long)m[0].rm_so,
               (long long)m[0].rm_eo);
    tpli_repr(g0, &d);
    buf_putc(&d, '>');
    o = tpl_object_new(d.data ? d.data : "");
    buf_free(&d);
    o->okind = OK_MATCH;
    tpl_dict_set(o, "string", tpl_ref((tpl_value *)s));
    tpl_dict_set(o, "_groups", groups);
    tpl_dict_set(o, "_spans", spans);
    return o;
}

/* arguments shared by the re functions: pattern first unless bound */
typedef struct {
    tpl_value *pattern; /* a string or a compiled pattern object */
    size_t shift;       /* positional index of the first argument after the pattern */
} re_self;

static re_self re_bind(void *ud, const tpl_args *a)
{
    re_self r;

    if (ud) { /* a method of a compiled pattern: ud is unused, see pattern_method */
        r.pattern = ud;
        r.shift = 0;
    } else {
        r.pattern = ARG(0, "pattern");
        r.shift = 1;
    }
    return r;
}

enum { RM_SEARCH, RM_MATCH, RM_FULLMATCH };

static cs_result re_search_common(tpl_value *patv, size_t sh, const tpl_args *a, int mode,
                                  tpl_value **out, cs_error *err)
{
    tpl_value *s = tpl_arg(a, sh, "string"), *flags = tpl_arg(a, sh + 1, "flags");
    pattern pt;
    regmatch_t *m;
    bool ok;

    if (tpl_typeof(s) != TPL_STR)
        return cs_fail(err, CS_INVALID, "re: the string to search must be a string");
    if (!compile_pattern(patv, flags, &pt, err))
        return err->code;
    m = xmalloc((pt.ngroups + 1) * sizeof(*m));
    ok = find(&pt, s, 0, m);
    if (ok && mode != RM_SEARCH && m[0].rm_so != 0)
        ok = false;
    if (ok && mode == RM_FULLMATCH && (size_t)m[0].rm_eo != s->u.str.len)
        ok = false;
    *out = ok ? match_object(s, &pt, m) : tpl_none();
    free(m);
    regfree(&pt.re);
    return CS_OK;
}

#define RE_FN(fname, mode)                                                                         \
    static cs_result fname(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,           \
                           cs_error *err)                                                          \
    {                                                                                              \
        re_self rs = re_bind(ud, a);                                                               \
        return re_search_common(rs.pattern, rs.shift, a, mode, out, err);                          \
    }
RE_FN(b_re_search, RM_SEARCH)
RE_FN(b_re_match, RM_MATCH)
RE_FN(b_re_fullmatch, RM_FULLMATCH)

/* repl with \1..\99, \g<n> and \\ \n \t expanded, appended to out */
static bool expand_repl(const char *r, const tpl_value *s, const regmatch_t *m, size_t ngroups,
                        buf *out, cs_error *err)
{
    for (; *r; r++) {
        size_t g;
        if (*r != '\\') {
            buf_putc(out, *r);
            continue;
        }
        r++;
        if (isdigit((unsigned char)*r)) {
            g = (size_t)(*r - '0');
            if (isdigit((unsigned char)r[1]) && g * 10 + (size_t)(r[1] - '0') <= ngroups)
                g = g * 10 + (size_t)(*++r - '0');
        } else if (*r == 'g' && r[1] == '<') {
            char *end;
            g = strtoul(r + 2, &end, 10);
            if (end == r + 2 || *end != '>') {
                cs_fail(err, CS_INVALID, "re: bad group reference in replacement");
                return false;
            }
            r = end;
        } else if (*r == 'n' || *r == 't' || *r == 'r' || *r == '\\') {
            buf_putc(out, *r == 'n' ? '\n' : *r == 't' ? '\t' : *r == 'r' ? '\r' : '\\');
            continue;
        } else if (!*r) {
            cs_fail(err, CS_INVALID, "re: bad escape at the end of the replacement");
            return false;
        } else {
            buf_putc(out, '\\');
            buf_putc(out, *r);
            continue;
        }
        if (g > ngroups) {
            cs_fail(err, CS_INVALID, "re: invalid group reference %zu", g);
            return false;
        }
        if (m[g].rm_so >= 0)
            buf_append(out, s->u.str.s + m[g].rm_so, (size_t)(m[g].rm_eo - m[g].rm_so));
    }
    return true;
}

static cs_result b_re_sub(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                          cs_error *err)
{
    re_self rs = re_bind(ud, a);
    tpl_value *repl = tpl_arg(a, rs.shift, "repl"), *s = tpl_arg(a, rs.shift + 1, "string");
    tpl_value *cnt = tpl_arg(a, rs.shift + 2, "count"), *flags = tpl_arg(a, rs.shift + 3, "flags");
    long long left = cnt ? tpl_as_int(cnt) : 0;
    size_t at = 0, copied = 0;
    pattern pt;
    regmatch_t *m;
    buf b;
    cs_result r = CS_OK;

    if (!tpl_as_str(repl))
        return cs_fail(err, CS_INVALID, "re.sub: the replacement must be a string");
    if (tpl_typeof(s) != TPL_STR)
        return cs_fail(err, CS_INVALID, "re.sub: the string must be a string");
    if (!compile_pattern(rs.pattern, flags, &pt, err))
        return err->code;
    m = xmalloc((pt.ngroups + 1) * sizeof(*m));
    buf_init(&b, call->ctx->outmax);
    while (at <= s->u.str.len && (left <= 0 || left-- > 0) && find(&pt, s, at, m)) {
        size_t so = (size_t)m[0].rm_so, eo = (size_t)m[0].rm_eo;
        buf_append(&b, s->u.str.s + copied, so - copied);
        if (!expand_repl(repl->u.str.s, s, m, pt.ngroups, &b, err)) {
            r = err->code;
            goto out;
        }
        copied = eo;
        at = eo > so ? eo : step(s, so);
        if (eo == so && so < s->u.str.len) { /* an empty match keeps the next character */
            buf_append(&b, s->u.str.s + so, at - so);
            copied = at;
        }
        if (!buf_ok(&b) || (cnt && tpl_as_int(cnt) > 0 && left == 0))
            break;
    }
    if (copied < s->u.str.len)
        buf_append(&b, s->u.str.s + copied, s->u.str.len - copied);
    if (!buf_ok(&b)) {
        r = cs_fail(err, CS_INVALID, "re.sub: string exceeds the limit of %zu bytes",
                    call->ctx->outmax);
        goto out;
    }
    *out = tpl_strn(b.data ? b.data : "", b.len);
out:
    buf_free(&b);
    free(m);
    regfree(&pt.re);
    return r;
}

static cs_result b_re_findall(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                              cs_error *err)
{
    re_self rs = re_bind(ud, a);
    tpl_value *s = tpl_arg(a, rs.shift, "string"), *flags = tpl_arg(a, rs.shift + 1, "flags");
    tpl_value *l, *empty = tpl_str("");
    size_t at = 0, i;
    pattern pt;
    regmatch_t *m;

    if (tpl_typeof(s) != TPL_STR) {
        tpl_unref(empty);
        return cs_fail(err, CS_INVALID, "re.findall: the string must be a string");
    }
    if (!compile_pattern(rs.pattern, flags, &pt, err)) {
        tpl_unref(empty);
        return err->code;
    }
    m = xmalloc((pt.ngroups + 1) * sizeof(*m));
    l = tpl_list_new();
    while (at <= s->u.str.len && find(&pt, s, at, m)) {
        size_t so = (size_t)m[0].rm_so, eo = (size_t)m[0].rm_eo;
        if (l->u.list.len >= TPLI_LIST_MAX) {
            tpl_unref(l);
            l = NULL;
            break;
        }
        if (pt.ngroups == 0) {
            tpl_list_push(l, group_value(s, &m[0], empty));
        } else if (pt.ngroups == 1) {
            tpl_list_push(l, group_value(s, &m[1], empty));
        } else {
            tpl_value *t = tpli_tuple_new();
            for (i = 1; i <= pt.ngroups; i++)
                tpl_list_push(t, group_value(s, &m[i], empty));
            tpl_list_push(l, t);
        }
        at = eo > so ? eo : step(s, so);
    }
    free(m);
    regfree(&pt.re);
    tpl_unref(empty);
    if (!l)
        return cs_fail(err, CS_INVALID, "list exceeds the limit of %d items", TPLI_LIST_MAX);
    *out = l;
    return CS_OK;
}

static cs_result b_re_split(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                            cs_error *err)
{
    re_self rs = re_bind(ud, a);
    tpl_value *s = tpl_arg(a, rs.shift, "string"), *ms = tpl_arg(a, rs.shift + 1, "maxsplit");
    tpl_value *flags = tpl_arg(a, rs.shift + 2, "flags"), *l;
    long long left = ms ? tpl_as_int(ms) : 0;
    size_t at = 0, last = 0, i;
    pattern pt;
    regmatch_t *m;

    if (tpl_typeof(s) != TPL_STR)
        return cs_fail(err, CS_INVALID, "re.split: the string must be a string");
    if (!compile_pattern(rs.pattern, flags, &pt, err))
        return err->code;
    m = xmalloc((pt.ngroups + 1) * sizeof(*m));
    l = tpl_list_new();
    while (at <= s->u.str.len && (left <= 0 || left-- > 0) && find(&pt, s, at, m)) {
        size_t so = (size_t)m[0].rm_so, eo = (size_t)m[0].rm_eo;
        if (l->u.list.len + pt.ngroups + 2 > TPLI_LIST_MAX) {
            tpl_unref(l);
            l = NULL;
            break;
        }
        if (eo == so) { /* Python splits on empty matches too, between characters */
            if (so == 0 || so == s->u.str.len) {
                at = step(s, so);
                continue;
            }
        }
        tpl_list_push(l, tpl_strn(s->u.str.s + last, so - last));
        for (i = 1; i <= pt.ngroups; i++)
            tpl_list_push(l, group_value(s, &m[i], tpl_none()));
        last = eo;
        at = eo > so ? eo : step(s, so);
        if (ms && tpl_as_int(ms) > 0 && left == 0)
            break;
    }
    if (l)
        tpl_list_push(l, tpl_strn(s->u.str.s + last, s->u.str.len - last));
    free(m);
    regfree(&pt.re);
    if (!l)
        return cs_fail(err, CS_INVALID, "list exceeds the limit of %d items", TPLI_LIST_MAX);
    *out = l;
    return CS_OK;
}

static cs_result b_re_escape(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                             cs_error *err)
{
    tpl_value *s = tpli_to_str(ARG(0, "pattern") ? ARG(0, "pattern") : tpl_none());
    buf b;
    size_t i;

    buf_init(&b, 0);
    for (i = 0; i < s->u.str.len; i++) {
        char ch = s->u.str.s[i];
        if (strchr("()[]{}?*+-|^$\\.&~# \t\n\r\v\f", ch) && ch)
            buf_putc(&b, '\\');
        buf_putc(&b, ch);
    }
    tpl_unref(s);
    if (!buf_ok(&b)) {
        buf_free(&b);
        return cs_fail(err, CS_INVALID, "re.escape: string too large");
    }
    *out = tpl_strn(b.data ? b.data : "", b.len);
    buf_free(&b);
    return CS_OK;
}

static cs_result b_re_compile(void *ud, tpl_call *call, const tpl_args *a, tpl_value **out,
                              cs_error *err)
{
    tpl_value *p = ARG(0, "pattern"), *flags = ARG(1, "flags"), *o;
    pattern pt;
    buf d;

    if (!compile_pattern(p, flags, &pt, err)) /* errors now, as Python's compile */
        return err->code;
    regfree(&pt.re);
    buf_init(&d, 0);
    buf_puts(&d, "re.compile(");
    tpli_repr(p, &d);
    buf_putc(&d, ')');
    o = tpl_object_new(d.data ? d.data : "");
    buf_free(&d);
    o->okind = OK_PATTERN;
    tpl_dict_set(o, "pattern", tpl_ref(p));
    tpl_dict_set(o, "flags", tpl_int(tpl_as_int(flags)));
    *out = o;
    return CS_OK;
}

/* compiled pattern methods: the module function with the pattern bound */
static int pattern_method(tpli_ctx *c, const tpli_node *n, tpl_value *o, const char *m,
                          const tpl_args *a, tpl_value **out)
{
    static const struct {
        const char *name;
        tpl_native_fn fn;
    } fns[] = {{"search", b_re_search}, {"match", b_re_match},     {"fullmatch", b_re_fullmatch},
               {"sub", b_re_sub},       {"findall", b_re_findall}, {"split", b_re_split}};
    size_t i;

    for (i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        if (strcmp(fns[i].name, m) == 0) {
            tpl_call call = {c, n, NULL, NULL, {0}};
            char msg[CS_ERROR_MAX];
            if (fns[i].fn(o, &call, a, out, c->err) == CS_OK)
                return R_OK;
            snprintf(msg, sizeof(msg), "%s", c->err->msg);
            return tpli_fail(c, n, "%s", msg);
        }
    }
    return 2;
}

static int match_method(tpli_ctx *c, const tpli_node *n, tpl_value *o, const char *m,
                        const tpl_args *a, tpl_value **out)
{
    tpl_value *groups = tpl_dict_get(o, "_groups"), *spans = tpl_dict_get(o, "_spans");
    size_t ng = tpl_list_len(groups), i;

    if (strcmp(m, "groups") == 0) {
        tpl_value *def = ARG(0, "default"), *t = tpli_tuple_new();
        for (i = 1; i < ng; i++) {
            tpl_value *g = tpl_list_get(groups, i);
            tpl_list_push(t, tpl_ref(tpl_typeof(g) == TPL_NONE && def ? def : g));
        }
        *out = t;
        return R_OK;
    }
    if (strcmp(m, "group") == 0 || strcmp(m, "start") == 0 || strcmp(m, "end") == 0 ||
        strcmp(m, "span") == 0) {
        size_t k, count = a->npos ? a->npos : 1;
        tpl_value *res = count > 1 ? tpli_tuple_new() : NULL;
        for (k = 0; k < count; k++) {
            long long g = a->npos ? tpl_as_int(a->pos[k]) : 0;
            tpl_value *x, *sp;
            if ((a->npos && tpl_typeof(a->pos[k]) != TPL_INT) || g < 0 || (size_t)g >= ng) {
                tpl_unref(res);
                return tpli_fail(c, n, "no such group");
            }
            sp = tpl_list_get(spans, (size_t)g);
            if (m[0] == 'g')
                x = tpl_ref(tpl_list_get(groups, (size_t)g));
            else if (m[0] == 's' && m[1] == 'p')
                x = tpl_ref(sp);
            else
                x = tpl_ref(tpl_list_get(sp, m[0] == 's' ? 0 : 1));
            if (!res) {
                *out = x;
                return R_OK;
            }
            tpl_list_push(res, x);
        }
        *out = res;
        return R_OK;
    }
    return 2;
}

int tpli_object_method(tpli_ctx *c, const tpli_node *n, tpl_value *obj, const char *name,
                       const tpl_args *a, tpl_value **out)
{
    if (tpl_typeof(obj) != TPL_DICT || !(obj->flags & VF_OBJECT))
        return 2;
    switch (obj->okind) {
    case OK_DATE:
    case OK_DATETIME:
        return temporal_method(c, n, obj, name, a, out);
    case OK_TIMEDELTA:
        if (strcmp(name, "total_seconds") == 0) {
            *out = tpl_float((double)delta_total(obj) / 1e6);
            return R_OK;
        }
        return 2;
    case OK_MATCH:
        return match_method(c, n, obj, name, a, out);
    case OK_PATTERN:
        return pattern_method(c, n, obj, name, a, out);
    default:
        return 2;
    }
}

/* ---- the namespace ---- */

static tpl_value *fn(const char *name, tpl_native_fn f)
{
    return tpl_func_new(name, f, NULL);
}

tpl_value *tpli_modules_new(void)
{
    tpl_value *mods = tpl_dict_new(), *dt = tpl_dict_new(), *re = tpl_dict_new();
    tpl_value *date = fn("date", b_date), *datetime = fn("datetime", b_datetime);

    date->attrs = tpl_dict_new();
    tpl_dict_set(date->attrs, "today", fn("today", b_today));
    datetime->attrs = tpl_dict_new();
    tpl_dict_set(datetime->attrs, "now", fn("now", b_now));
    tpl_dict_set(datetime->attrs, "utcnow", fn("utcnow", b_utcnow));
    tpl_dict_set(datetime->attrs, "strptime", fn("strptime", b_strptime));
    tpl_dict_set(dt, "date", date);
    tpl_dict_set(dt, "datetime", datetime);
    tpl_dict_set(dt, "timedelta", fn("timedelta", b_timedelta));
    tpl_dict_set(mods, "datetime", dt);

    tpl_dict_set(re, "sub", fn("sub", b_re_sub));
    tpl_dict_set(re, "search", fn("search", b_re_search));
    tpl_dict_set(re, "match", fn("match", b_re_match));
    tpl_dict_set(re, "fullmatch", fn("fullmatch", b_re_fullmatch));
    tpl_dict_set(re, "findall", fn("findall", b_re_findall));
    tpl_dict_set(re, "split", fn("split", b_re_split));
    tpl_dict_set(re, "escape", fn("escape", b_re_escape));
    tpl_dict_set(re, "compile", fn("compile", b_re_compile));
    tpl_dict_set(re, "I", tpl_int(RE_I));
    tpl_dict_set(re, "IGNORECASE", tpl_int(RE_I));
    tpl_dict_set(re, "M", tpl_int(RE_M));
    tpl_dict_set(re, "MULTILINE", tpl_int(RE_M));
    tpl_dict_set(re, "S", tpl_int(RE_S));
    tpl_dict_set(re, "DOTALL", tpl_int(RE_S));
    tpl_dict_set(mods, "re", re);
    return mods;
}

tpl_value *tpl_datetime_utc(long long epoch_us)
{
    long long days = epoch_us / US_PER_DAY, us = epoch_us % US_PER_DAY;

    if (us < 0) {
        days--;
        us += US_PER_DAY;
    }
    return temporal_new(false, days, us);
}
