/* SPDX-License-Identifier: MIT */
/* json.h -- parse untrusted JSON (bodies, vendor answers) under limits.
 *
 * jansson parses recursively with its own fixed depth cap (2048); untrusted
 * input gets the configured one, checked by a scan before parsing, so a
 * deeply nested body costs one pass over its bytes and nothing more. */
#ifndef IG_CORE_JSON_H
#define IG_CORE_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "core/error.h"

/* The deepest nesting of arrays and objects in text (strings are skipped). */
int ig_json_depth(const char *text, size_t len);
/* Parses text as one JSON value. Errors: bad_json (with line and column),
 * json_too_deep. */
json_t *ig_json_parse(const char *text, size_t len, int max_depth, struct ig_error *err);

#endif
