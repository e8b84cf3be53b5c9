/* SPDX-License-Identifier: MIT */
/* error.c -- filling and decorating struct ig_error. */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int
ig_error_set(struct ig_error *e, int http_status, const char *code, const char *fmt, ...)
{
    if (!e)
        return -1;
    e->http_status = http_status;
    snprintf(e->code, sizeof e->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

void
ig_error_clear(struct ig_error *e)
{
    if (e)
        memset(e, 0, sizeof *e);
}

void
ig_error_prefix(struct ig_error *e, const char *fmt, ...)
{
    if (!e)
        return;
    char prefix[256], old[sizeof e->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->message, sizeof old);
    /* Truncation is fine here: the start of a message is what matters. */
    size_t plen = strnlen(prefix, sizeof e->message - 1);
    size_t olen = strnlen(old, sizeof old - 1);
    if (olen > sizeof e->message - 1 - plen)
        olen = sizeof e->message - 1 - plen;
    memcpy(e->message, prefix, plen);
    memcpy(e->message + plen, old, olen);
    e->message[plen + olen] = '\0';
}
