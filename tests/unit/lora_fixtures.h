/* SPDX-License-Identifier: MIT */
/* lora_fixtures.h -- builds small safetensors files for the LoRA tests.
 *
 * A writer in the shape of huggingface/safetensors' own: tensors get
 * contiguous offsets in insertion order, the header is JSON padded with
 * spaces to 8 bytes, payloads are zero except the alpha scalars, which hold
 * real F32/F16/BF16 values. Shapes are the real layer widths at rank 4. */
#ifndef IG_TESTS_LORA_FIXTURES_H
#define IG_TESTS_LORA_FIXTURES_H

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"

struct stw {
    json_t *hdr, *meta;
    struct ig_buf data;
};

static inline void
stw_init(struct stw *w)
{
    w->hdr = json_object();
    w->meta = NULL;
    memset(&w->data, 0, sizeof w->data);
}

static inline void
stw_raw(struct stw *w, const char *name, const char *dtype, const void *bytes, size_t n, int ndim,
        const long *dims)
{
    json_t *shape = json_array();
    for (int i = 0; i < ndim; i++)
        json_array_append_new(shape, json_integer(dims[i]));
    size_t begin = w->data.len;
    if (n) {
        if (bytes) {
            ig_buf_append(&w->data, bytes, n);
        } else {
            char *z = calloc(1, n);
            ig_buf_append(&w->data, z, n);
            free(z);
        }
    }
    json_object_set_new(w->hdr, name,
                        json_pack("{s:s,s:o,s:[I,I]}", "dtype", dtype, "shape", shape,
                                  "data_offsets", (json_int_t)begin, (json_int_t)w->data.len));
}

/* An F16 matrix rows x cols. */
static inline void
stw_mat(struct stw *w, const char *name, long rows, long cols)
{
    long dims[2] = {rows, cols};
    stw_raw(w, name, "F16", NULL, (size_t)(rows * cols * 2), 2, dims);
}

/* A LoRA pair: base + ".lora_down.weight"/".lora_up.weight" (kohya) or
 * ".lora_A.weight"/".lora_B.weight" (peft). */
static inline void
stw_pair(struct stw *w, const char *base, int peft, long in, long out, long rank)
{
    char a[512], b[512];
    snprintf(a, sizeof a, "%s.%s", base, peft ? "lora_A.weight" : "lora_down.weight");
    snprintf(b, sizeof b, "%s.%s", base, peft ? "lora_B.weight" : "lora_up.weight");
    stw_mat(w, a, rank, in);
    stw_mat(w, b, out, rank);
}

static inline uint16_t
stw_half(float f)
{
    /* Exact for the small integers and halves the tests use. */
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000, exp = (u >> 23) & 0xff, man = u & 0x7fffff;
    if (exp == 0)
        return (uint16_t)sign;
    return (uint16_t)(sign | ((exp - 127 + 15) << 10) | (man >> 13));
}

/* base + ".alpha" as a rank-0 scalar in dtype F32, F16 or BF16. */
static inline void
stw_alpha(struct stw *w, const char *base, float alpha, const char *dtype)
{
    char n[512];
    snprintf(n, sizeof n, "%s.alpha", base);
    unsigned char b[4];
    size_t len;
    if (!strcmp(dtype, "F32")) {
        memcpy(b, &alpha, 4);
        len = 4;
    } else if (!strcmp(dtype, "F16")) {
        uint16_t h = stw_half(alpha);
        b[0] = (unsigned char)h, b[1] = (unsigned char)(h >> 8);
        len = 2;
    } else {
        uint32_t u;
        memcpy(&u, &alpha, 4);
        b[0] = (unsigned char)(u >> 16), b[1] = (unsigned char)(u >> 24);
        len = 2;
    }
    stw_raw(w, n, dtype, b, len, 0, NULL);
}

static inline void
stw_meta(struct stw *w, const char *k, const char *v)
{
    if (!w->meta)
        w->meta = json_object();
    json_object_set_new(w->meta, k, json_string(v));
}

/* The file bytes (free with ig_free); header_text overrides the JSON. */
static inline unsigned char *
stw_bytes_with(struct stw *w, const char *header_text, size_t *len)
{
    char *h = NULL;
    if (!header_text) {
        if (w->meta)
            json_object_set(w->hdr, "__metadata__", w->meta);
        h = json_dumps(w->hdr, JSON_COMPACT | JSON_SORT_KEYS);
        header_text = h;
    }
    size_t n = strlen(header_text), padded = (n + 7) / 8 * 8;
    unsigned char *out = ig_malloc(8 + padded + w->data.len);
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(out + 8, header_text, n);
    memset(out + 8 + n, ' ', padded - n);
    if (w->data.len)
        memcpy(out + 8 + padded, w->data.data, w->data.len);
    *len = 8 + padded + w->data.len;
    free(h);
    return out;
}

static inline unsigned char *
stw_bytes(struct stw *w, size_t *len)
{
    return stw_bytes_with(w, NULL, len);
}

static inline void
stw_free(struct stw *w)
{
    json_decref(w->hdr);
    json_decref(w->meta);
    ig_buf_free(&w->data);
}

#endif
