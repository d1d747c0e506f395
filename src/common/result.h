/*
 * result.h - the one error convention of the tree.
 *
 * Every fallible function that can fail for more than one reason returns a
 * cs_result and, when it is not CS_OK, fills a cs_error with a message that
 * says what failed, where and why.  The class is decided where the error is
 * born (an HTTP status, a SQLSTATE, a parse error) and the loops above decide
 * retry or stop from the class alone, never from the message text.
 *
 * Small helpers that can only fail one way return bool instead.
 */
#ifndef CS_RESULT_H
#define CS_RESULT_H

#include <stdarg.h>
#include <stdbool.h>

typedef enum {
    CS_OK = 0,
    /* worth retrying: network, timeouts, HTTP 5xx/429, lost connection,
     * deadlock, serialization failure */
    CS_TRANSIENT,
    /* retrying will not help: 401/403, missing database, bad config */
    CS_PERMANENT,
    /* one piece of input is bad (a document, a model file); the rest goes on */
    CS_INVALID,
    /* shutdown was requested while waiting */
    CS_STOPPED,
} cs_result;

#define CS_ERROR_MAX 1024

typedef struct {
    cs_result code;
    char msg[CS_ERROR_MAX];
} cs_error;

/* Sets err (when not NULL) and returns code, so that a caller can write
 * `return cs_fail(err, CS_TRANSIENT, "could not connect to \"%s\"", host);` */
cs_result cs_fail(cs_error *err, cs_result code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the message already in err with more context ("medic: " ...). */
void cs_error_prefix(cs_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *cs_result_name(cs_result code);

#define CS_MUST_CHECK __attribute__((warn_unused_result))

#endif
