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

#include "core/buf.h"
#include "core/error.h"

/* The deepest nesting of arrays and objects in text (strings are skipped). */
int ig_json_depth(const char *text, size_t len);
/* Parses text as one JSON value. Errors: bad_json (with line and column),
 * json_too_deep. */
json_t *ig_json_parse(const char *text, size_t len, int max_depth, struct ig_error *err);

/* Appends s as a JSON string literal (quotes, escapes; NULL as null), for
 * hot paths that write a small known shape without building a jansson
 * tree. Bytes of 0x80 and up are copied as they are: s must be UTF-8. */
int ig_json_put_string(struct ig_buf *b, const char *s);

/* Appends v as compact JSON text: the bytes json_dumps(v, JSON_COMPACT |
 * JSON_ENCODE_ANY) gives, without what makes json_dumps slow for the small
 * trees written per job (a "%p" key in a hash table per object and array,
 * to find cycles, and a callback per token): 6 % of the instructions
 * of a relayed request went to dumping its adapter's provenance. A tree
 * deeper than IG_JSON_DUMP_DEPTH (a cycle, say) fails: -1, with b as it
 * was. Also -1 when out of memory. */
#define IG_JSON_DUMP_DEPTH 2048
int ig_json_dump(const json_t *v, struct ig_buf *b);

/* The tree of text[0..len), one JSON value that ig_jscan has accepted (a
 * field of a vendor's answer, say): what json_loadb(text, len,
 * JSON_DECODE_ANY) gives, built straight from the text. jansson's loader
 * reads through a callback per byte and costs ~170 instructions a byte on
 * a short object, more than the rest of reading a relayed answer. Where the
 * text is anything this walk does not take as it is, it goes to json_loadb,
 * so the answer is always jansson's: NULL where jansson refuses the text
 * (an integer past long long, invalid UTF-8) or out of memory. */
json_t *ig_json_from_scanned(const char *text, size_t len);
/* The walk alone: jansson's tree, or NULL for text it does not take as it
 * is (what jansson refuses, a number of 64 characters or more) and when
 * out of memory. For the tests, which hold it against json_loadb. */
json_t *ig_json_walk(const char *text, size_t len);
/* Appends text[0..len), one JSON value that ig_jscan has accepted, without
 * the whitespace between its tokens; strings and numbers as they are.
 * 0, or -1 out of memory (b as it was). */
int ig_json_compact(struct ig_buf *b, const char *text, size_t len);

/* A writer with a sticky error, so that a known shape is written as a run
 * of statements and checked once at the end: ig_jw_end is 0, or -1 when
 * any append ran out of memory (the buffer is then incomplete). */
struct ig_jw {
    struct ig_buf *b;
    int failed;
};
void ig_jw_raw(struct ig_jw *w, const char *text);          /* JSON text as it is */
void ig_jw_str(struct ig_jw *w, const char *s);             /* a string literal */
/* a number as ig_json_dump writes a real (jansson's text); null when it is
 * not finite */
void ig_jw_real(struct ig_jw *w, double v);
int ig_jw_end(const struct ig_jw *w);

#endif
