/*
 * log.h - levelled, scoped logging to stderr.
 *
 * One line per event: "2026-11-26T10:00:00.123Z info  medic: stored ...".
 * The scope names what the line is about (a database, a model); callers never
 * pass URLs with credentials or passwords here: the couch module only ever
 * logs its redacted base URL.  Control characters in the scope and the
 * message are escaped (\n, \x1b, \u009b...): a line is always one event.
 */
#ifndef CS_LOG_H
#define CS_LOG_H

#include <stdbool.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

void log_set_level(log_level level);
bool log_parse_level(const char *name, log_level *out);

/* scope may be NULL for process-wide messages */
void log_msg(log_level level, const char *scope, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* lines written so far: the terminal progress display redraws in place
 * only when no log line came in between */
unsigned long log_lines_written(void);

#define log_debug(scope, ...) log_msg(LOG_DEBUG, scope, __VA_ARGS__)
#define log_info(scope, ...) log_msg(LOG_INFO, scope, __VA_ARGS__)
#define log_warn(scope, ...) log_msg(LOG_WARN, scope, __VA_ARGS__)
#define log_error(scope, ...) log_msg(LOG_ERROR, scope, __VA_ARGS__)

#endif
