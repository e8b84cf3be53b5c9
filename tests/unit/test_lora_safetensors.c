/* SPDX-License-Identifier: MIT */
/* test_lora_safetensors.c -- the container reader on valid and hostile
 * files: every rule of the reference reader gives its own code, truncation
 * at every length is refused cleanly, a 100 MB header is refused before it
 * is read, and alpha scalars decode from each float type. */
#include "testutil.h"
#include "lora_fixtures.h"
#include "lora/safetensors.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The bytes for a hand-written header over data_len zero bytes. */
static unsigned char *
with_header(const char *json, size_t data_len, size_t *len)
{
    struct stw w;
    stw_init(&w);
    unsigned char *z = calloc(1, data_len + 1);
    assert_non_null(z);
    assert_int_equal(ig_buf_append(&w.data, z, data_len), 0);
    free(z);
    unsigned char *b = stw_bytes_with(&w, json, len);
    stw_free(&w);
    return b;
}

static void
expect_code(const void *buf, size_t len, const struct lora_st_limits *lim, const char *code)
{
    struct lora_st st;
    struct ig_error e = {0};
    int rc = lora_st_parse(buf, len, lim, &st, &e);
    if (rc == 0) {
        lora_st_free(&st);
        fail_msg("parsed, wanted %s", code);
    }
    if (strcmp(e.code, code) != 0)
        fail_msg("got %s (%s), wanted %s", e.code, e.message, code);
    assert_true(e.message[0] != 0);
}

static void
expect_header(const char *json, size_t data_len, const char *code)
{
    size_t len;
    unsigned char *b = with_header(json, data_len, &len);
    expect_code(b, len, NULL, code);
    ig_free(b);
}

static void
test_valid(void **state)
{
    (void)state;
    struct stw w;
    stw_init(&w);
    stw_pair(&w, "lora_unet_x", 0, 8, 6, 2);
    stw_alpha(&w, "lora_unet_x", 2, "F32");
    long d[1] = {0};
    stw_raw(&w, "empty", "F32", NULL, 0, 1, d);   /* a 0 dimension: legal, 0 bytes */
    stw_meta(&w, "ss_network_dim", "2");
    size_t len;
    unsigned char *b = stw_bytes(&w, &len);
    stw_free(&w);
    struct lora_st st;
    struct ig_error e = {0};
    assert_int_equal(lora_st_parse(b, len, NULL, &st, &e), 0);
    assert_int_equal(st.n_tensors, 4);
    assert_string_equal(lora_st_meta(&st, "ss_network_dim"), "2");
    const struct lora_tensor *t = lora_st_find(&st, "lora_unet_x.lora_down.weight");
    assert_non_null(t);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 8);
    assert_int_equal(t->dtype, LORA_DT_F16);
    double a;
    assert_int_equal(lora_st_scalar(&st, lora_st_find(&st, "lora_unet_x.alpha"), &a, &e), 0);
    assert_float_equal(a, 2.0, 0);
    assert_int_equal(lora_st_scalar(&st, t, &a, &e), -1);
    assert_string_equal(e.code, "safetensors_not_scalar");
    lora_st_free(&st);
    ig_free(b);
}

static void
test_hostile_headers(void **state)
{
    (void)state;
    /* Overlap, gap, not starting at 0, end before begin. */
    expect_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[4,12]}}",
                  12, "safetensors_bad_offset");
    expect_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                  "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8,12]}}",
                  12, "safetensors_bad_offset");
    expect_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}", 8,
                  "safetensors_bad_offset");
    expect_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4,
                  "safetensors_bad_offset");
    /* Offsets past the end of the file, and trailing bytes nobody indexes. */
    expect_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[64],\"data_offsets\":[0,64]}}", 8,
                  "safetensors_incomplete_buffer");
    expect_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 8,
                  "safetensors_incomplete_buffer");
    expect_header("{}", 4, "safetensors_incomplete_buffer");
    /* Size and dtype. */
    expect_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                  "safetensors_size_mismatch");
    expect_header("{\"a\":{\"dtype\":\"F7\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
                  "safetensors_bad_dtype");
    expect_header("{\"a\":{\"dtype\":3,\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
                  "safetensors_bad_dtype");
    expect_header("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2,
                  "safetensors_misaligned");
    expect_header("{\"a\":{\"dtype\":\"F64\",\"shape\":[281474976710655,281474976710655],"
                  "\"data_offsets\":[0,8]}}",
                  8, "safetensors_overflow");
    /* Shapes: negative, fractional, a string, too many dimensions. */
    expect_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0,
                  "safetensors_bad_shape");
    expect_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[2.5],\"data_offsets\":[0,2]}}", 2,
                  "safetensors_bad_shape");
    expect_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[\"3\"],\"data_offsets\":[0,3]}}", 3,
                  "safetensors_bad_shape");
    expect_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                  "\"data_offsets\":[0,1]}}",
                  1, "safetensors_bad_shape");
    /* Metadata must be strings only. */
    expect_header("{\"__metadata__\":{\"ss_network_dim\":16}}", 0, "safetensors_bad_metadata");
    expect_header("{\"__metadata__\":{\"x\":{\"nested\":\"no\"}}}", 0,
                  "safetensors_bad_metadata");
    expect_header("{\"__metadata__\":[]}", 0, "safetensors_bad_metadata");
    /* Not JSON, not an object, duplicate keys, not UTF-8, too deep. */
    expect_header("{\"a\":", 0, "safetensors_bad_header");
    expect_header("[1,2]", 0, "safetensors_bad_header");
    expect_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},"
                  "\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}",
                  0, "safetensors_bad_header");
    expect_header("{\"\xff\xfe\":1}", 0, "safetensors_bad_header");
    expect_header("{\"a\":{\"shape\":[0],\"data_offsets\":[0,0]}}", 0, "safetensors_bad_header");
    expect_header("{\"a\":7}", 0, "safetensors_bad_header");
    char deep[2100];
    size_t n = 0;
    deep[n++] = '{';
    memcpy(deep + n, "\"a\":", 4), n += 4;
    for (int i = 0; i < 1000; i++)
        deep[n++] = '[';
    for (int i = 0; i < 1000; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = 0;
    expect_header(deep, 0, "safetensors_header_too_deep");
}

static void
test_padding_and_extra_fields(void **state)
{
    (void)state;
    size_t len;
    unsigned char *b = with_header(
        "  {\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2],\"x\":1}}", 2, &len);
    struct lora_st st;
    struct ig_error e = {0};
    assert_int_equal(lora_st_parse(b, len, NULL, &st, &e), 0);
    assert_true(st.padded_start);
    assert_int_equal(st.extra_fields, 1);
    lora_st_free(&st);
    ig_free(b);
}

static void
test_lengths(void **state)
{
    (void)state;
    unsigned char small[7] = {0};
    expect_code(small, sizeof small, NULL, "safetensors_too_small");
    /* Header length larger than the file. */
    unsigned char b[16] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    expect_code(b, sizeof b, NULL, "safetensors_bad_header_length");
    /* 2^64-1: no overflow in 8 + N. */
    memset(b, 0xff, 8);
    expect_code(b, sizeof b, NULL, "safetensors_header_too_large");
    /* Just over the 100 MB default, and a configured cap. */
    uint64_t big = 100000001;
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(big >> (8 * i));
    expect_code(b, sizeof b, NULL, "safetensors_header_too_large");
    struct lora_st_limits lim = {.max_header_bytes = 4};
    size_t len;
    unsigned char *ok = with_header("{}", 0, &len);
    expect_code(ok, len, &lim, "safetensors_header_too_large");
    ig_free(ok);
}

/* Every prefix of a valid file is refused with a code, and nothing reads
 * past the prefix (ASan watches the heap copy). */
static void
test_truncation(void **state)
{
    (void)state;
    struct stw w;
    stw_init(&w);
    stw_pair(&w, "lora_unet_x", 0, 8, 6, 2);
    stw_alpha(&w, "lora_unet_x", 1, "BF16");
    stw_meta(&w, "k", "v");
    size_t len;
    unsigned char *full = stw_bytes(&w, &len);
    stw_free(&w);
    for (size_t n = 0; n < len; n++) {
        unsigned char *cut = ig_malloc(n ? n : 1);
        assert_non_null(cut);
        memcpy(cut, full, n);
        struct lora_st st;
        struct ig_error e = {0};
        assert_int_equal(lora_st_parse(cut, n, NULL, &st, &e), -1);
        assert_true(e.code[0] != 0);
        ig_free(cut);
    }
    ig_free(full);
}

/* A file declaring a 100 MB header: refused from the first 8 bytes. The
 * file is sparse, so the test costs nothing. */
static void
test_open_huge_header_file(void **state)
{
    (void)state;
    const char *path = tu_write_temp(".safetensors", "", 0);
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    unsigned char hdr[8];
    uint64_t n = 100u << 20;
    for (int i = 0; i < 8; i++)
        hdr[i] = (unsigned char)(n >> (8 * i));
    assert_int_equal(write(fd, hdr, 8), 8);
    assert_int_equal(ftruncate(fd, (off_t)(8 + n + 16)), 0);
    close(fd);
    struct lora_st st;
    struct ig_error e = {0};
    assert_int_equal(lora_st_open(path, NULL, &st, &e), -1);
    assert_string_equal(e.code, "safetensors_header_too_large");
    assert_int_equal(lora_st_open("/nonexistent/x.safetensors", NULL, &st, &e), -1);
    assert_string_equal(e.code, "safetensors_io");
    assert_int_equal(lora_st_open("/tmp", NULL, &st, &e), -1);
    assert_string_equal(e.code, "safetensors_io");
    unlink(path);
}

static void
test_open_valid_file(void **state)
{
    (void)state;
    struct stw w;
    stw_init(&w);
    stw_pair(&w, "lora_unet_x", 0, 8, 6, 2);
    size_t len;
    unsigned char *b = stw_bytes(&w, &len);
    stw_free(&w);
    const char *path = tu_write_temp(".safetensors", b, len);
    struct lora_st st;
    struct ig_error e = {0};
    assert_int_equal(lora_st_open(path, NULL, &st, &e), 0);
    assert_true(st.mapped);
    assert_int_equal(st.n_tensors, 2);
    lora_st_free(&st);
    unlink(path);
    ig_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test(test_padding_and_extra_fields),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_open_huge_header_file),
        cmocka_unit_test(test_open_valid_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
