/* SPDX-License-Identifier: MIT */
/* fuzz_jscan.c -- libFuzzer target for the relay's JSON scanner
 * (core/jscan.c), the first code to read every relayed client body and
 * every vendor answer. Any bytes give a verdict, never a crash or an
 * over-read. A document it accepts has every found value inside it, and
 * the decoders and the item walk stay inside those values; an object item
 * scans again on its own, as jscan.h promises. And it is held against
 * jansson: where the two check the same things (comparable()), they accept
 * and refuse the same documents. What jansson parses, ig_json_dump writes
 * as the same bytes as json_dumps, with numbers read as integers and as
 * reals; and what jscan accepts, ig_json_walk reads as json_loadb does (or
 * leaves to it), and ig_json_compact writes as text jansson reads the same. A disagreement aborts, so that libFuzzer keeps the input. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/jscan.h"
#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DEPTH 64

static void
check(int ok)
{
    if (!ok)
        abort();
}

/* jscan leaves UTF-8 to the vendor and does not judge what a \u escape,
 * a key or a number stands for; jansson does (it refuses \u0000 in a key
 * even with JSON_ALLOW_NUL). Those inputs are compared only where
 * jansson's refusal is not about them. jansson also takes a NUL byte after
 * a literal (`true\0,`), which RFC 8259 does not and jscan refuses: no
 * input with a NUL byte is compared. */
static int
comparable(const char *doc, size_t len, const json_error_t *je, int jansson_ok)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)doc[i] >= 0x80 || doc[i] == '\0')
            return 0;
    if (jansson_ok)
        return 1;
    static const char *const only_jansson[] = {"Unicode", "overflow", "too big", "depth",
                                               "NUL byte"};
    for (size_t i = 0; i < sizeof only_jansson / sizeof only_jansson[0]; i++)
        if (strstr(je->text, only_jansson[i]))
            return 0;
    return 1;
}

static void
walk_value(const char *doc, size_t len, const struct ig_jfield *f)
{
    check(f->off < len && f->len > 0 && f->len <= len - f->off);
    char out[64];
    if (ig_jscan_string(doc, f, out, sizeof out) == 0)
        check(f->type == IG_J_STRING && memchr(out, '\0', sizeof out) != NULL);
    long long v;
    if (ig_jscan_integer(doc, f, &v) == 0)
        check(f->type == IG_J_NUMBER);
    struct ig_jfield items[8];
    size_t n = 0;
    if (ig_jscan_items(doc, f, items, 8, &n) != 0) {
        check(f->type != IG_J_ARRAY);
        return;
    }
    check(f->type == IG_J_ARRAY);
    for (size_t i = 0; i < n && i < 8; i++) {
        const struct ig_jfield *it = &items[i];
        check(it->type != IG_J_ABSENT && it->off > f->off && it->len > 0 &&
              it->off + it->len < f->off + f->len);
        if (it->type == IG_J_OBJECT) {
            struct ig_jfield g = {.key = "b64_json"};
            struct ig_error err = {0};
            check(ig_jscan(doc + it->off, it->len, DEPTH, &g, 1, &err) == 0);
        }
    }
}

/* doc parsed with flags, written by both: the same bytes, or neither. */
static void
dump_agrees(const char *doc, size_t size, size_t flags)
{
    json_t *v = json_loadb(doc, size, flags | JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
    if (!v)
        return;
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    struct ig_buf got = {0};
    int rc = ig_json_dump(v, &got);
    check(want ? rc == 0 && strlen(want) == got.len && memcmp(want, got.data, got.len) == 0
               : rc != 0);
    free(want);
    ig_buf_free(&got);
    json_decref(v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *doc = (const char *)data;
    struct ig_jfield f[] = {{.key = "model"}, {.key = "prompt"}, {.key = "data"},
                            {.key = "n"},     {.key = "size"},   {.key = "a"}};
    size_t nf = sizeof f / sizeof f[0];
    struct ig_error err = {0};
    int rc = ig_jscan(doc, size, DEPTH, f, nf, &err);
    if (rc != 0) {
        check(strcmp(err.code, "bad_json") == 0 || strcmp(err.code, "json_too_deep") == 0);
        if (strcmp(err.code, "json_too_deep") == 0)
            return 0;   /* jansson's limit is deeper: no verdict to compare */
    } else {
        for (size_t i = 0; i < nf; i++)
            if (f[i].type != IG_J_ABSENT)
                walk_value(doc, size, &f[i]);
    }
    json_error_t je;
    json_t *j = json_loadb(doc, size, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je);
    int jansson_ok = json_is_object(j);
    json_decref(j);
    if (comparable(doc, size, &je, jansson_ok))
        check(jansson_ok == (rc == 0));
    if (rc == 0) {
        /* What jscan accepts, the walk reads as jansson does, or leaves to it. */
        json_t *want = json_loadb(doc, size, JSON_DECODE_ANY, NULL);
        json_t *got = ig_json_walk(doc, size);
        check(!got || (want && json_equal(got, want)));
        json_decref(got);
        /* Without its whitespace it is the same document to jansson. */
        struct ig_buf flat = {0};
        check(ig_json_compact(&flat, doc, size) == 0);
        json_t *again = json_loadb(flat.data ? flat.data : "", flat.len, JSON_DECODE_ANY, NULL);
        check(!want == !again && (!want || json_equal(want, again)));
        json_decref(again);
        ig_buf_free(&flat);
        json_decref(want);
    }
    dump_agrees(doc, size, 0);
    dump_agrees(doc, size, JSON_DECODE_INT_AS_REAL);
    return 0;
}
