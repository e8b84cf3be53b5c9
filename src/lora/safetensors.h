/* SPDX-License-Identifier: MIT */
/* safetensors.h -- a bounded reader for the safetensors container.
 *
 * The file is an 8-byte little-endian header length N, N bytes of JSON
 * naming every tensor (dtype, shape, [begin, end) offsets into the byte
 * buffer that follows) plus an optional string-to-string "__metadata__"
 * object. The reader checks what huggingface/safetensors' reference reader
 * checks, and a few things it leaves to luck (JSON depth, duplicate keys),
 * before anyone looks at a tensor. */
#ifndef IG_LORA_SAFETENSORS_H
#define IG_LORA_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define LORA_ST_MAX_DIMS 8

enum lora_dtype {
    LORA_DT_BOOL, LORA_DT_U8, LORA_DT_I8, LORA_DT_F8_E5M2, LORA_DT_F8_E4M3, LORA_DT_F8_E8M0,
    LORA_DT_F8_E4M3FNUZ, LORA_DT_F8_E5M2FNUZ, LORA_DT_F4, LORA_DT_F6_E2M3, LORA_DT_F6_E3M2,
    LORA_DT_I16, LORA_DT_U16, LORA_DT_F16, LORA_DT_BF16, LORA_DT_I32, LORA_DT_U32, LORA_DT_F32,
    LORA_DT_C64, LORA_DT_F64, LORA_DT_I64, LORA_DT_U64
};

struct lora_st_limits {
    uint64_t max_header_bytes;   /* 0 = the reference's 100,000,000 */
    int      max_json_depth;     /* 0 = 16; a valid header is 4 deep */
};

struct lora_tensor {
    const char *name;            /* points into the parsed header */
    enum lora_dtype dtype;
    int ndim;
    int64_t shape[LORA_ST_MAX_DIMS];
    uint64_t begin, end;         /* relative to the byte buffer */
};

struct lora_st {
    const uint8_t *base;         /* the whole file (mapped or borrowed) */
    size_t size;
    int mapped;
    uint64_t header_len;
    const uint8_t *data;         /* base + 8 + header_len */
    uint64_t data_len;
    struct lora_tensor *tensors; /* in header order */
    size_t n_tensors;
    const char **meta_keys, **meta_vals;
    size_t n_meta;
    int padded_start;            /* the header does not begin with '{' (allowed, warned) */
    size_t extra_fields;         /* tensor entries with keys beyond the three known */
    void *root;                  /* the parsed header (json_t) that names point into */
};

/* Parses a safetensors image held in memory; st borrows buf. Error codes:
 * safetensors_too_small, safetensors_header_too_large,
 * safetensors_bad_header_length, safetensors_bad_header (not UTF-8 JSON,
 * wrong shape of an entry), safetensors_header_too_deep,
 * safetensors_bad_metadata, safetensors_bad_dtype, safetensors_bad_shape,
 * safetensors_bad_offset, safetensors_misaligned, safetensors_size_mismatch,
 * safetensors_overflow, safetensors_incomplete_buffer, out_of_memory. */
int lora_st_parse(const void *buf, size_t len, const struct lora_st_limits *lim,
                  struct lora_st *st, struct ig_error *err);
/* Maps a file read-only and parses it; only the header pages are touched.
 * Adds safetensors_io for files that cannot be opened or mapped. */
int lora_st_open(const char *path, const struct lora_st_limits *lim, struct lora_st *st,
                 struct ig_error *err);
void lora_st_free(struct lora_st *st);

const char *lora_dtype_name(enum lora_dtype dt);
const char *lora_st_meta(const struct lora_st *st, const char *key);
const struct lora_tensor *lora_st_find(const struct lora_st *st, const char *name);
/* Number of elements (1 for a rank-0 scalar). */
uint64_t lora_tensor_elems(const struct lora_tensor *t);
/* Reads a one-element F16/BF16/F32/F64 tensor as a double; this is the only
 * tensor payload the inspector ever touches. Error: safetensors_not_scalar. */
int lora_st_scalar(const struct lora_st *st, const struct lora_tensor *t, double *out,
                   struct ig_error *err);

#endif
