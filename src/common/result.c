/*
 * result.c - helpers of the error convention (see result.h).
 */
#include "common/result.h"

#include <stdio.h>
#include <string.h>

cs_result cs_fail(cs_error *err, cs_result code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void cs_error_prefix(cs_error *err, const char *fmt, ...)
{
    char prefix[256];
    char old[CS_ERROR_MAX];
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    size_t plen = strlen(prefix);

    if (plen >= sizeof(err->msg))
        plen = sizeof(err->msg) - 1;
    memcpy(old, err->msg, sizeof(old));
    memcpy(err->msg, prefix, plen);
    old[sizeof(old) - 1 - plen] = '\0';
    memcpy(err->msg + plen, old, strlen(old) + 1);
}

const char *cs_result_name(cs_result code)
{
    switch (code) {
    case CS_OK:
        return "ok";
    case CS_TRANSIENT:
        return "transient";
    case CS_PERMANENT:
        return "permanent";
    case CS_INVALID:
        return "invalid";
    case CS_STOPPED:
        return "stopped";
    }
    return "unknown";
}
