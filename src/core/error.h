/* SPDX-License-Identifier: MIT */
/* error.h -- the one error type every layer fills and every caller reads.
 *
 * Low layers report, callers decide (Redis's anet style): a function that
 * fails fills a caller-owned struct ig_error and returns -1 (or NULL). The
 * code is machine-readable and stable ("image_too_large"); the message is for
 * people; http_status is what the server answers when the error reaches it. */
#ifndef IG_CORE_ERROR_H
#define IG_CORE_ERROR_H

#include <stddef.h>

struct ig_error {
    int  http_status;
    char code[48];
    char message[512];
};

/* Fills e (if not NULL) and returns -1, so that callers can write
 * `return ig_error_set(err, 400, "bad_json", "...")`. */
int ig_error_set(struct ig_error *e, int http_status, const char *code,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void ig_error_clear(struct ig_error *e);
/* Prefixes the message with context ("config.yaml: "), keeping the code. */
void ig_error_prefix(struct ig_error *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
