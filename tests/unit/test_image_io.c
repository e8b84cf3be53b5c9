/* SPDX-License-Identifier: MIT */
/* test_image_io.c -- decoding under limits, format sniffing, encoding and
 * provenance, on real photos and on hostile bytes. */
#include "testutil.h"
#include "core/alloc.h"
#include "image/image.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <vips/vips.h>
#include <zlib.h>

static const struct img_limits limits = {
    .max_input_bytes = 64L << 20,
    .max_width = 16384,
    .max_height = 16384,
    .max_pixels = 50000000,
    .max_decoded_bytes = 512L << 20,
};

static void
put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* A PNG whose IHDR declares w x h (valid CRC) followed by a tiny IDAT. */
static size_t
png_with_header(unsigned char *out, uint32_t w, uint32_t h)
{
    size_t n = 0;
    memcpy(out, "\x89PNG\r\n\x1a\n", 8);
    n = 8;
    put32(out + n, 13);
    memcpy(out + n + 4, "IHDR", 4);
    put32(out + n + 8, w);
    put32(out + n + 12, h);
    out[n + 16] = 8;   /* bit depth */
    out[n + 17] = 2;   /* RGB */
    out[n + 18] = out[n + 19] = out[n + 20] = 0;
    put32(out + n + 21, (uint32_t)crc32(0, out + n + 4, 17));
    n += 25;
    static const unsigned char idat[] = {0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01};
    put32(out + n, sizeof idat);
    memcpy(out + n + 4, "IDAT", 4);
    memcpy(out + n + 8, idat, sizeof idat);
    put32(out + n + 8 + sizeof idat, (uint32_t)crc32(0, out + n + 4, 4 + sizeof idat));
    n += 12 + sizeof idat;
    put32(out + n, 0);
    memcpy(out + n + 4, "IEND", 4);
    put32(out + n + 8, (uint32_t)crc32(0, out + n + 4, 4));
    return n + 12;
}

static void
expect_error(const void *buf, size_t len, const char *code)
{
    struct ig_error err = {0};
    struct img *im = img_decode(buf, len, &limits, &err);
    if (im)
        fail_msg("decoded an image that should fail with %s", code);
    if (strcmp(err.code, code) != 0)
        fail_msg("expected %s, got %s (%s)", code, err.code, err.message);
    assert_true(strlen(err.message) > 0);
}

static void
test_real_photos_decode(void **state)
{
    static const struct { const char *name; int w, h; enum img_format fmt; } photos[] = {
        {"flower.png", 2268, 1512, IMG_FMT_PNG},
        {"astronaut.png", 512, 512, IMG_FMT_PNG},
        {"rocket.jpg", 640, 427, IMG_FMT_JPEG},
    };
    for (size_t i = 0; i < sizeof photos / sizeof photos[0]; i++) {
        size_t len;
        char *data = tu_read(tu_photo(photos[i].name), &len);
        struct ig_error err = {0};
        struct img *im = img_decode(data, len, &limits, &err);
        if (!im)
            fail_msg("%s: %s", photos[i].name, err.message);
        assert_int_equal(im->width, photos[i].w);
        assert_int_equal(im->height, photos[i].h);
        assert_int_equal(im->info.format, photos[i].fmt);
        /* A real photo is not a flat field: the first row varies. */
        int differs = 0;
        for (int x = 1; x < im->width && !differs; x++)
            differs = memcmp(im->rgba, im->rgba + 4 * x, 3) != 0;
        assert_true(differs);
        assert_int_equal(im->rgba[3], 255);
        img_free(im);
        ig_free(data);
    }
}

static void
test_zero_bytes_and_random(void **state)
{
    expect_error("", 0, "empty_image");
    unsigned char rnd[4096];
    srand(7);
    for (size_t i = 0; i < sizeof rnd; i++)
        rnd[i] = (unsigned char)rand();
    expect_error(rnd, sizeof rnd, "unsupported_format");
}

static void
test_truncated_png(void **state)
{
    size_t len;
    char *data = tu_read(tu_photo("astronaut.png"), &len);
    expect_error(data, len / 2, "corrupt_image");
    expect_error(data, 20, "corrupt_image");
    ig_free(data);
}

static void
test_decompression_bomb_header(void **state)
{
    unsigned char png[128];
    size_t n = png_with_header(png, 100000, 100000);
    struct ig_error err = {0};
    struct img_info info;
    assert_int_equal(img_probe(png, n, &limits, &info, &err), -1);
    assert_string_equal(err.code, "image_too_large");
    expect_error(png, n, "image_too_large");
    /* Within the side limits but over the pixel limit. */
    n = png_with_header(png, 16000, 16000);
    expect_error(png, n, "image_too_large");
}

static void
test_jpeg_named_png_is_a_jpeg(void **state)
{
    size_t len;
    char *data = tu_read(tu_photo("rocket.jpg"), &len);
    const char *path = tu_write_temp(".png", data, len);
    ig_free(data);
    data = tu_read(path, &len);
    unlink(path);
    struct ig_error err = {0};
    struct img_info info;
    assert_int_equal(img_probe(data, len, &limits, &info, &err), 0);
    assert_int_equal(info.format, IMG_FMT_JPEG);
    ig_free(data);
}

static void
test_input_byte_limit(void **state)
{
    size_t len;
    char *data = tu_read(tu_photo("astronaut.png"), &len);
    struct img_limits small = limits;
    small.max_input_bytes = 1000;
    struct ig_error err = {0};
    assert_null(img_decode(data, len, &small, &err));
    assert_string_equal(err.code, "input_too_large");
    assert_int_equal(err.http_status, 413);
    ig_free(data);
}

/* 16-bit, grey and CMYK sources all arrive as 8-bit sRGB RGBA. */
static void
test_other_pixel_layouts(void **state)
{
    size_t len;
    char *data = tu_read(tu_photo("astronaut.png"), &len);
    VipsImage *src = vips_image_new_from_buffer(data, len, "", NULL), *t16 = NULL, *grey = NULL,
              *cmyk = NULL;
    assert_non_null(src);
    assert_int_equal(vips_colourspace(src, &t16, VIPS_INTERPRETATION_RGB16, NULL), 0);
    assert_int_equal(vips_colourspace(src, &grey, VIPS_INTERPRETATION_B_W, NULL), 0);
    assert_int_equal(vips_colourspace(src, &cmyk, VIPS_INTERPRETATION_CMYK, NULL), 0);
    struct { VipsImage *im; const char *saver; int bits; } cases[] = {
        {t16, ".png", 16}, {grey, ".png", 8}, {cmyk, ".jpg", 8}};
    for (size_t i = 0; i < 3; i++) {
        void *enc;
        size_t elen;
        assert_int_equal(vips_image_write_to_buffer(cases[i].im, cases[i].saver, &enc, &elen, NULL), 0);
        struct ig_error err = {0};
        struct img *im = img_decode(enc, elen, &limits, &err);
        if (!im)
            fail_msg("case %zu: %s", i, err.message);
        assert_int_equal(im->width, 512);
        assert_int_equal(im->info.bits, cases[i].bits);
        if (i == 2)
            assert_true(im->info.cmyk);
        assert_int_equal(im->rgba[4 * 1000 + 3], 255);
        img_free(im);
        g_free(enc);
    }
    g_object_unref(t16);
    g_object_unref(grey);
    g_object_unref(cmyk);
    g_object_unref(src);
    ig_free(data);
}

static void
test_one_pixel(void **state)
{
    struct img *im = img_new(1, 1);
    memcpy(im->rgba, "\x10\x20\x30\xff", 4);
    struct ig_buf b = {0};
    struct ig_error err = {0};
    assert_int_equal(img_encode(im, IMG_FMT_PNG, 0, NULL, &b, &err), 0);
    struct img *back = img_decode(b.data, b.len, &limits, &err);
    assert_non_null(back);
    assert_memory_equal(back->rgba, im->rgba, 4);
    img_free(back);
    img_free(im);
    ig_buf_free(&b);
}

static void
test_encode_round_trip_with_provenance(void **state)
{
    size_t len;
    char *data = tu_read(tu_photo("astronaut.png"), &len);
    struct ig_error err = {0};
    struct img *im = img_decode(data, len, &limits, &err);
    assert_non_null(im);
    const char *prov = "{\"backend\":\"local-lanczos\",\"note\":\"a <tag> & more\"}";
    enum img_format fmts[] = {IMG_FMT_PNG, IMG_FMT_JPEG, IMG_FMT_WEBP};
    for (int i = 0; i < 3; i++) {
        struct ig_buf b = {0};
        assert_int_equal(img_encode(im, fmts[i], 90, prov, &b, &err), 0);
        assert_int_equal(img_sniff(b.data, b.len), fmts[i]);
        struct img *back = img_decode(b.data, b.len, &limits, &err);
        if (!back)
            fail_msg("%s: %s", img_format_name(fmts[i]), err.message);
        assert_int_equal(back->width, 512);
        if (fmts[i] == IMG_FMT_PNG)   /* lossless */
            assert_memory_equal(back->rgba, im->rgba, 512 * 512 * 4);
        char *got = NULL;
        assert_int_equal(img_read_provenance(b.data, b.len, &got, &err), 0);
        if (!got)
            fail_msg("%s: no provenance read back", img_format_name(fmts[i]));
        assert_string_equal(got, prov);
        ig_free(got);
        img_free(back);
        ig_buf_free(&b);
    }
    /* An original without provenance has none. */
    char *none = (char *)1;
    assert_int_equal(img_read_provenance(data, len, &none, &err), 0);
    assert_null(none);
    img_free(im);
    ig_free(data);
}

static void
test_resize(void **state)
{
    size_t len;
    char *data = tu_read(tu_photo("astronaut.png"), &len);
    struct ig_error err = {0};
    struct img *im = img_decode(data, len, &limits, &err);
    struct img *small = img_resize(im, 128, 128, "box", &err);
    assert_non_null(small);
    assert_int_equal(small->width, 128);
    /* Box: each output pixel is the mean of its 4x4 block. */
    int sum = 0;
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            sum += im->rgba[(y * 512 + x) * 4];
    assert_true(abs(small->rgba[0] - (sum + 8) / 16) <= 1);
    struct img *big = img_resize(im, 1024, 768, "lanczos3", &err);
    assert_non_null(big);
    assert_int_equal(big->width, 1024);
    assert_int_equal(big->height, 768);
    assert_null(img_resize(im, 0, 10, "box", &err));
    assert_string_equal(err.code, "bad_size");
    img_free(big);
    img_free(small);
    img_free(im);
    ig_free(data);
}

static void
test_decode_allocation_failure(void **state)
{
    size_t len;
    char *data = tu_read(tu_photo("astronaut.png"), &len);
    struct ig_error err0 = {0};
    ig_alloc_fail_at(0);
    struct img *ok = img_decode(data, len, &limits, &err0);
    assert_non_null(ok);
    img_free(ok);
    unsigned long total = ig_alloc_fail_at(0);
    assert_true(total >= 2);
    for (unsigned long n = 1; n <= total; n++) {
        struct ig_error err = {0};
        ig_alloc_fail_at(n);
        struct img *im = img_decode(data, len, &limits, &err);
        ig_alloc_fail_at(0);
        assert_null(im);
        assert_string_equal(err.code, "out_of_memory");
    }
    ig_free(data);
}

/* img_probe reads PNG headers by hand; whatever the layout, it must say
 * what libvips's own header read says, and refuse a damaged IHDR. */
static void
test_png_probe_agrees_with_libvips(void **state)
{
    (void)state;
    struct ig_error err = {0};
    assert_int_equal(img_init(&err), 0);
    VipsImage *rgb = NULL, *t = NULL;
    assert_int_equal(vips_black(&rgb, 37, 23, "bands", 3, NULL), 0);
    assert_int_equal(vips_linear1(rgb, &t, 1.0, 90.0, NULL), 0);
    g_object_unref(rgb);
    rgb = t;
    VipsImage *variants[7] = {NULL};
    assert_int_equal(vips_extract_band(rgb, &variants[0], 0, NULL), 0);          /* grey */
    assert_int_equal(vips_bandjoin_const1(variants[0], &variants[1], 255, NULL), 0); /* grey+a */
    variants[2] = rgb;
    g_object_ref(rgb);
    assert_int_equal(vips_bandjoin_const1(rgb, &variants[3], 128, NULL), 0);     /* rgba */
    assert_int_equal(vips_cast(rgb, &variants[4], VIPS_FORMAT_USHORT, NULL), 0);  /* 16-bit */
    variants[5] = rgb;
    g_object_ref(rgb);
    variants[6] = variants[3];
    g_object_ref(variants[3]);
    for (int i = 0; i < 7; i++) {
        void *buf = NULL;
        size_t len = 0;
        int rc = i == 5   ? vips_pngsave_buffer(variants[i], &buf, &len, "palette", TRUE, NULL)
                 : i == 6 ? vips_pngsave_buffer(variants[i], &buf, &len, "interlace", TRUE, NULL)
                          : vips_pngsave_buffer(variants[i], &buf, &len, NULL);
        assert_int_equal(rc, 0);
        struct img_info info;
        assert_int_equal(img_probe(buf, len, NULL, &info, &err), 0);
        VipsImage *v = vips_image_new_from_buffer(buf, len, "", NULL);
        assert_non_null(v);
        assert_int_equal(info.width, vips_image_get_width(v));
        assert_int_equal(info.height, vips_image_get_height(v));
        assert_int_equal(info.bands, vips_image_get_bands(v));
        assert_int_equal(info.has_alpha, vips_image_hasalpha(v));
        assert_int_equal(info.bits, vips_image_get_format(v) == VIPS_FORMAT_USHORT ? 16 : 8);
        assert_int_equal(info.format, IMG_FMT_PNG);
        g_object_unref(v);
        /* A flipped bit anywhere in IHDR fails its CRC. */
        for (size_t at = 12; at < 33; at++) {
            unsigned char *bad = ig_malloc(len);
            assert_non_null(bad);
            memcpy(bad, buf, len);
            bad[at] ^= 0x10;
            struct ig_error e2 = {0};
            assert_int_equal(img_probe(bad, len, NULL, &info, &e2), -1);
            assert_string_equal(e2.code, "corrupt_image");
            ig_free(bad);
        }
        /* The limits still apply. */
        struct img_limits lim = {.max_width = 10};
        struct ig_error e3 = {0};
        assert_int_equal(img_probe(buf, len, &lim, &info, &e3), -1);
        assert_string_equal(e3.code, "image_too_large");
        g_free(buf);
        g_object_unref(variants[i]);
    }
    g_object_unref(rgb);
}

int
main(void)
{
    struct ig_error err = {0};
    if (img_init(&err) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_photos_decode),
        cmocka_unit_test(test_zero_bytes_and_random),
        cmocka_unit_test(test_truncated_png),
        cmocka_unit_test(test_decompression_bomb_header),
        cmocka_unit_test(test_jpeg_named_png_is_a_jpeg),
        cmocka_unit_test(test_input_byte_limit),
        cmocka_unit_test(test_other_pixel_layouts),
        cmocka_unit_test(test_one_pixel),
        cmocka_unit_test(test_png_probe_agrees_with_libvips),
        cmocka_unit_test(test_encode_round_trip_with_provenance),
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_decode_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
