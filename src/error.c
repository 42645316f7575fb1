/*
 * error.c -- error codes, messages and the per-thread failure detail.
 *
 * The table in mmstore.h (MMS_ERRORS) is the only list of codes; messages
 * and names come from it. mms__fail() records what exactly went wrong so a
 * caller (or the CLI) can say more than the code does, and the code itself
 * for mms_last_error() (the pointer API returns NULL, not a code).
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static __thread char detail[512];
static __thread int last_error;

const char *mms_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define MMS__ERR_MSG(name, code, msg)                                          \
    case code:                                                                 \
        return msg;
        MMS_ERRORS(MMS__ERR_MSG)
#undef MMS__ERR_MSG
    default:
        break;
    }
    /* Not a leak: a handle keeps every region file it maps open (map.c). */
    if (err == -EMFILE)
        return "Too many open files (a store handle keeps each of its region files open, one "
               "per table and index: raise RLIMIT_NOFILE, ulimit -n)";
    /* The library's timeouts (mms_wait, the _timed calls): no connection. */
    if (err == -ETIMEDOUT)
        return "Timed out";
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}

const char *mms_errname(int err)
{
    switch (err) {
#define MMS__ERR_NAME(name, code, msg)                                         \
    case code:                                                                 \
        return #name;
        MMS_ERRORS(MMS__ERR_NAME)
#undef MMS__ERR_NAME
    default:
        return NULL;
    }
}

const char *mms_errdetail(void)
{
    return detail;
}

MMS__OPEN_PATH
void mms__detail_clear(void)
{
    detail[0] = 0;
}

int mms_last_error(void)
{
    return last_error;
}

int mms__note_error(int err)
{
    last_error = err;
    return err;
}

int mms__fail(int err, const char *fmt, ...)
{
    last_error = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return err;
}

int mms__corrupt_at(const char *file, int line, const char *fmt, ...)
{
    last_error = MMS_ECORRUPT;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
#ifndef NDEBUG
    if (getenv("MMS_DEBUG"))
        fprintf(stderr, "mmstore: corruption found at %s:%d: %s\n", file, line, detail);
#else
    (void)file;
    (void)line;
#endif
    return MMS_ECORRUPT;
}
