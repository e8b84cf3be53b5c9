/* SPDX-License-Identifier: MIT */
/* safetensors.c -- the safetensors container reader.
 *
 * Hand-written because no Debian package provides a C safetensors reader
 * (the reference is Rust; the C++ ones are header-only vendored copies), and
 * the format is small: a u64 length, a JSON header and a byte buffer indexed
 * by offsets. The header is parsed with jansson after a depth scan; then the
 * reference reader's rules are applied in its order: known dtype, shape of
 * non-negative integers, size matching dtype x shape, offsets sorted into one
 * contiguous run from 0 to the end of the file with no gap, overlap or
 * trailing bytes. Files are mmapped and only the header is read; tensor
 * payloads are left alone except for the scalars lora_st_scalar reads. */
#include "lora/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/json.h"

#define ST_MAX_HEADER_DEFAULT 100000000ull
#define ST_MAX_DEPTH_DEFAULT 16
#define ST_MAX_DIM ((int64_t)1 << 48)   /* the schema's integer bound */

static const struct {
    const char *name;
    unsigned bits;
} dtypes[] = {
    [LORA_DT_BOOL] = {"BOOL", 8},         [LORA_DT_U8] = {"U8", 8},
    [LORA_DT_I8] = {"I8", 8},             [LORA_DT_F8_E5M2] = {"F8_E5M2", 8},
    [LORA_DT_F8_E4M3] = {"F8_E4M3", 8},   [LORA_DT_F8_E8M0] = {"F8_E8M0", 8},
    [LORA_DT_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8},
    [LORA_DT_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8},
    [LORA_DT_F4] = {"F4", 4},             [LORA_DT_F6_E2M3] = {"F6_E2M3", 6},
    [LORA_DT_F6_E3M2] = {"F6_E3M2", 6},   [LORA_DT_I16] = {"I16", 16},
    [LORA_DT_U16] = {"U16", 16},          [LORA_DT_F16] = {"F16", 16},
    [LORA_DT_BF16] = {"BF16", 16},        [LORA_DT_I32] = {"I32", 32},
    [LORA_DT_U32] = {"U32", 32},          [LORA_DT_F32] = {"F32", 32},
    [LORA_DT_C64] = {"C64", 64},          [LORA_DT_F64] = {"F64", 64},
    [LORA_DT_I64] = {"I64", 64},          [LORA_DT_U64] = {"U64", 64},
};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

const char *
lora_dtype_name(enum lora_dtype dt)
{
    return (unsigned)dt < N_DTYPES ? dtypes[dt].name : "?";
}

static int
dtype_parse(const char *s, enum lora_dtype *out)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (strcmp(dtypes[i].name, s) == 0) {
            *out = (enum lora_dtype)i;
            return 0;
        }
    return -1;
}

uint64_t
lora_tensor_elems(const struct lora_tensor *t)
{
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (uint64_t)t->shape[i];   /* bounded: parse checked it does not overflow */
    return n;
}

static int
read_u64_pair(json_t *v, uint64_t *a, uint64_t *b)
{
    if (!json_is_array(v) || json_array_size(v) != 2)
        return -1;
    json_t *x = json_array_get(v, 0), *y = json_array_get(v, 1);
    if (!json_is_integer(x) || !json_is_integer(y) || json_integer_value(x) < 0 ||
        json_integer_value(y) < 0)
        return -1;
    *a = (uint64_t)json_integer_value(x);
    *b = (uint64_t)json_integer_value(y);
    return 0;
}

static int
read_tensor(const char *name, json_t *v, struct lora_tensor *t, size_t *extra,
            struct ig_error *err)
{
    if (!json_is_object(v))
        return ig_error_set(err, 400, "safetensors_bad_header",
                            "tensor '%s' is not an object", name);
    json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
           *offs = json_object_get(v, "data_offsets");
    if (!dt || !shape || !offs)
        return ig_error_set(err, 400, "safetensors_bad_header",
                            "tensor '%s' lacks dtype, shape or data_offsets", name);
    if (json_object_size(v) > 3)
        (*extra)++;
    t->name = name;
    if (!json_is_string(dt) || dtype_parse(json_string_value(dt), &t->dtype) != 0)
        return ig_error_set(err, 400, "safetensors_bad_dtype", "tensor '%s': unknown dtype %s",
                            name, json_is_string(dt) ? json_string_value(dt) : "(not a string)");
    if (!json_is_array(shape) || json_array_size(shape) > LORA_ST_MAX_DIMS)
        return ig_error_set(err, 400, "safetensors_bad_shape",
                            "tensor '%s': shape must be a list of at most %d integers", name,
                            LORA_ST_MAX_DIMS);
    t->ndim = (int)json_array_size(shape);
    uint64_t elems = 1;
    for (int i = 0; i < t->ndim; i++) {
        json_t *d = json_array_get(shape, (size_t)i);
        if (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) >= ST_MAX_DIM)
            return ig_error_set(err, 400, "safetensors_bad_shape",
                                "tensor '%s': dimension %d is not a non-negative integer", name,
                                i);
        t->shape[i] = json_integer_value(d);
        if (__builtin_mul_overflow(elems, (uint64_t)t->shape[i], &elems))
            return ig_error_set(err, 400, "safetensors_overflow",
                                "tensor '%s': element count overflows", name);
    }
    if (read_u64_pair(offs, &t->begin, &t->end) != 0 || t->end < t->begin)
        return ig_error_set(err, 400, "safetensors_bad_offset",
                            "tensor '%s': data_offsets must be [begin, end] with end >= begin",
                            name);
    uint64_t bits;
    if (__builtin_mul_overflow(elems, (uint64_t)dtypes[t->dtype].bits, &bits))
        return ig_error_set(err, 400, "safetensors_overflow",
                            "tensor '%s': byte size overflows", name);
    if (bits % 8)
        return ig_error_set(err, 400, "safetensors_misaligned",
                            "tensor '%s': %s x %llu elements is not a whole number of bytes",
                            name, dtypes[t->dtype].name, (unsigned long long)elems);
    if (bits / 8 != t->end - t->begin)
        return ig_error_set(err, 400, "safetensors_size_mismatch",
                            "tensor '%s': %s with %llu elements needs %llu bytes, offsets give %llu",
                            name, dtypes[t->dtype].name, (unsigned long long)elems,
                            (unsigned long long)(bits / 8),
                            (unsigned long long)(t->end - t->begin));
    return 0;
}

static int
by_offset(const void *a, const void *b)
{
    const struct lora_tensor *x = *(const struct lora_tensor *const *)a;
    const struct lora_tensor *y = *(const struct lora_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* The buffer must be indexed exactly once from 0 to its end: this is the
 * reference's anti-polyglot rule, and what makes every offset safe to use. */
static int
check_offsets(struct lora_st *st, struct ig_error *err)
{
    if (st->n_tensors == 0)
        return st->data_len == 0 ? 0
                                 : ig_error_set(err, 400, "safetensors_incomplete_buffer",
                                                "%llu bytes follow a header with no tensors",
                                                (unsigned long long)st->data_len);
    const struct lora_tensor **order = ig_malloc(st->n_tensors * sizeof *order);
    if (!order)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    for (size_t i = 0; i < st->n_tensors; i++)
        order[i] = &st->tensors[i];
    qsort(order, st->n_tensors, sizeof *order, by_offset);
    uint64_t at = 0;
    int rc = 0;
    for (size_t i = 0; i < st->n_tensors; i++) {
        if (order[i]->begin != at) {
            rc = ig_error_set(err, 400, "safetensors_bad_offset",
                              "tensor '%s' starts at %llu, expected %llu (%s)", order[i]->name,
                              (unsigned long long)order[i]->begin, (unsigned long long)at,
                              order[i]->begin < at ? "overlap" : "gap");
            break;
        }
        at = order[i]->end;
    }
    ig_free(order);
    if (rc == 0 && at != st->data_len)
        rc = ig_error_set(err, 400, "safetensors_incomplete_buffer",
                          "tensors index %llu bytes but the buffer holds %llu",
                          (unsigned long long)at, (unsigned long long)st->data_len);
    return rc;
}

static int
read_metadata(struct lora_st *st, json_t *meta, struct ig_error *err)
{
    if (!json_is_object(meta))
        return ig_error_set(err, 400, "safetensors_bad_metadata",
                            "__metadata__ must be an object of strings");
    size_t n = json_object_size(meta);
    st->meta_keys = ig_calloc(n ? n : 1, sizeof *st->meta_keys);
    st->meta_vals = ig_calloc(n ? n : 1, sizeof *st->meta_vals);
    if (!st->meta_keys || !st->meta_vals)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    const char *k;
    json_t *v;
    json_object_foreach(meta, k, v) {
        if (!json_is_string(v))
            return ig_error_set(err, 400, "safetensors_bad_metadata",
                                "metadata '%s' is not a string (nested data must be JSON-encoded "
                                "into a string)", k);
        st->meta_keys[st->n_meta] = k;
        st->meta_vals[st->n_meta++] = json_string_value(v);
    }
    return 0;
}

static int
parse_header(struct lora_st *st, const struct lora_st_limits *lim, struct ig_error *err)
{
    const char *text = (const char *)st->base + 8;
    size_t len = (size_t)st->header_len;
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
        i++;
    st->padded_start = i > 0;
    if (i == len || text[i] != '{')
        return ig_error_set(err, 400, "safetensors_bad_header", "the header is not a JSON object");
    int max_depth = lim && lim->max_json_depth > 0 ? lim->max_json_depth : ST_MAX_DEPTH_DEFAULT;
    if (ig_json_depth(text, len) > max_depth)
        return ig_error_set(err, 400, "safetensors_header_too_deep",
                            "the header nests deeper than %d levels", max_depth);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return ig_error_set(err, 400, "safetensors_bad_header",
                            "the header is not valid JSON at byte %d: %s", je.position, je.text);
    st->root = root;
    if (!json_is_object(root))
        return ig_error_set(err, 400, "safetensors_bad_header", "the header is not a JSON object");
    size_t n = json_object_size(root);
    st->tensors = ig_calloc(n ? n : 1, sizeof *st->tensors);
    if (!st->tensors)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        if (strcmp(k, "__metadata__") == 0) {
            if (read_metadata(st, v, err) != 0)
                return -1;
            continue;
        }
        if (read_tensor(k, v, &st->tensors[st->n_tensors], &st->extra_fields, err) != 0)
            return -1;
        st->n_tensors++;
    }
    return check_offsets(st, err);
}

int
lora_st_parse(const void *buf, size_t len, const struct lora_st_limits *lim, struct lora_st *st,
              struct ig_error *err)
{
    memset(st, 0, sizeof *st);
    st->base = buf;
    st->size = len;
    if (len < 8)
        return ig_error_set(err, 400, "safetensors_too_small",
                            "%zu bytes: too small for a safetensors header", len);
    const uint8_t *p = buf;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | p[i];
    uint64_t cap = lim && lim->max_header_bytes ? lim->max_header_bytes : ST_MAX_HEADER_DEFAULT;
    if (n > cap)
        return ig_error_set(err, 413, "safetensors_header_too_large",
                            "header of %llu bytes is over the %llu-byte limit",
                            (unsigned long long)n, (unsigned long long)cap);
    if (n > len - 8)
        return ig_error_set(err, 400, "safetensors_bad_header_length",
                            "header length %llu runs past the end of a %zu-byte file",
                            (unsigned long long)n, len);
    st->header_len = n;
    st->data = p + 8 + n;
    st->data_len = len - 8 - n;
    if (parse_header(st, lim, err) != 0) {
        lora_st_free(st);
        return -1;
    }
    return 0;
}

int
lora_st_open(const char *path, const struct lora_st_limits *lim, struct lora_st *st,
             struct ig_error *err)
{
    memset(st, 0, sizeof *st);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ig_error_set(err, 400, "safetensors_io", "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return ig_error_set(err, 400, "safetensors_io", "%s: not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return ig_error_set(err, 400, "safetensors_too_small",
                            "%s: %zu bytes: too small for a safetensors header", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return ig_error_set(err, 400, "safetensors_io", "%s: mmap: %s", path, strerror(errno));
    if (lora_st_parse(map, size, lim, st, err) != 0) {
        munmap(map, size);
        ig_error_prefix(err, "%s: ", path);
        return -1;
    }
    st->mapped = 1;
    return 0;
}

void
lora_st_free(struct lora_st *st)
{
    if (!st)
        return;
    ig_free(st->tensors);
    ig_free(st->meta_keys);
    ig_free(st->meta_vals);
    if (st->root)
        json_decref(st->root);
    if (st->mapped)
        munmap((void *)st->base, st->size);
    memset(st, 0, sizeof *st);
}

const char *
lora_st_meta(const struct lora_st *st, const char *key)
{
    for (size_t i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0)
            return st->meta_vals[i];
    return NULL;
}

const struct lora_tensor *
lora_st_find(const struct lora_st *st, const char *name)
{
    for (size_t i = 0; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0)
            return &st->tensors[i];
    return NULL;
}

static double
half_to_double(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v;
    if (e == 0)
        v = ldexp(m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp(m + 1024, e - 25);
    return (h & 0x8000) ? -v : v;
}

int
lora_st_scalar(const struct lora_st *st, const struct lora_tensor *t, double *out,
               struct ig_error *err)
{
    if (lora_tensor_elems(t) != 1)
        return ig_error_set(err, 400, "safetensors_not_scalar", "tensor '%s' is not a scalar",
                            t->name);
    const uint8_t *p = st->data + t->begin;   /* check_offsets proved it is inside */
    uint64_t bits = 0;
    unsigned nbytes = dtypes[t->dtype].bits / 8;
    for (unsigned i = 0; i < nbytes && i < 8; i++)
        bits |= (uint64_t)p[i] << (8 * i);
    switch (t->dtype) {
    case LORA_DT_F16:
        *out = half_to_double((uint16_t)bits);
        return 0;
    case LORA_DT_BF16: {
        uint32_t u = (uint32_t)bits << 16;
        float f;
        memcpy(&f, &u, sizeof f);
        *out = f;
        return 0;
    }
    case LORA_DT_F32: {
        uint32_t u = (uint32_t)bits;
        float f;
        memcpy(&f, &u, sizeof f);
        *out = f;
        return 0;
    }
    case LORA_DT_F64:
        memcpy(out, &bits, sizeof *out);
        return 0;
    default:
        return ig_error_set(err, 400, "safetensors_not_scalar",
                            "tensor '%s' is %s, not a float scalar", t->name,
                            dtypes[t->dtype].name);
    }
}
