/* SPDX-License-Identifier: MIT */
/* jscan.h -- find a few top-level fields of a JSON object without a DOM.
 *
 * The relay forwards a client's body to a vendor that speaks the same
 * dialect, touching only the fields it routes on. Building jansson's tree of
 * a 1.5 MB body to read four short fields costs more than the whole rest of
 * the relay (every byte of every string is decoded and copied), so this
 * scanner checks the structure of the whole document -- objects, arrays,
 * strings and their escapes, numbers, literals, nesting depth, nothing
 * after the end -- and only records where the asked-for top-level values
 * lie. Strings are skipped with memchr, so a long base64 string costs what
 * a memory scan costs. UTF-8 inside strings is not validated: the bytes go
 * on untouched to the vendor, which validates them. */
#ifndef IG_CORE_JSCAN_H
#define IG_CORE_JSCAN_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

enum ig_jtype { IG_J_ABSENT = 0, IG_J_STRING, IG_J_NUMBER, IG_J_OBJECT, IG_J_ARRAY,
                IG_J_TRUE, IG_J_FALSE, IG_J_NULL };

struct ig_jfield {
    const char *key;           /* asked for: a key without escapes */
    enum ig_jtype type;        /* found: IG_J_ABSENT when the object has no such key */
    size_t off, len;           /* the value's bytes in the document (strings with quotes) */
};

/* Scans doc (a JSON object). Returns 0 with each field filled, or -1 with
 * err: bad_json (with the byte offset) or json_too_deep. */
int ig_jscan(const char *doc, size_t len, int max_depth, struct ig_jfield *fields, size_t n,
             struct ig_error *err);

/* A found string field decoded into out (NUL-terminated, escapes resolved,
 * \u escapes to UTF-8): 0, or -1 when it is not a string, does not fit in
 * cap bytes, or holds an escape a C string cannot (\u0000, a lone
 * surrogate). The scan has checked its syntax already. */
int ig_jscan_string(const char *doc, const struct ig_jfield *f, char *out, size_t cap);
/* The elements of a found array field, in order: each item's type, off and
 * len (its key is left alone) for the first max of them, and in *n how many
 * there are. 0, or -1 when
 * the field is not an array. The scan has checked its syntax already, so
 * an item can be scanned again with ig_jscan (for an object) on its span. */
int ig_jscan_items(const char *doc, const struct ig_jfield *array, struct ig_jfield *items,
                   size_t max, size_t *n);
/* Writes code point cp (up to U+10FFFF) as UTF-8 into o (4 bytes of room);
 * the byte count. */
size_t ig_utf8_put(char *o, uint32_t cp);
/* A found number field that is a whole number within long long: 0, else -1. */
int ig_jscan_integer(const char *doc, const struct ig_jfield *f, long long *out);

#endif
