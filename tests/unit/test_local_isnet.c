/* SPDX-License-Identifier: MIT */
/* test_local_isnet.c -- the ISNet background-removal backend: real cutouts
 * of real photos, the licence policy that keeps it from no-copyleft
 * tenants, a missing runtime, a missing or corrupt model, and hostile or
 * unusual inputs.
 *
 * Each inference takes one to three seconds, so the cases that need one
 * share the process's single session and are kept few. The runtime-missing
 * case runs first: a runtime that loaded once stays loaded. */
#include "testutil.h"
#include "backends/local/local.h"
#include "backends/local/runplan.h"
#include "core/alloc.h"
#include "core/config.h"
#include "image/image.h"
#include "route/exec.h"
#include "route/gateway.h"
#include "route/route.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <vips/vips.h>
#include <zlib.h>

static struct ig_config *cfg;
static struct img_limits limits;

static int
setup(void **state)
{
    struct ig_error err = {0};
    /* The embedded config names .deps/... relative to the source tree. */
    const char *src = getenv("IG_SOURCE_DIR");
    if (src && src[0])
        setenv("IMAGEGATE_HOME", src, 1);
    if (img_init(&err) != 0)
        return -1;
    cfg = ig_config_load_default(NULL, &err);
    if (!cfg)
        return -1;
    img_limits_from_config(&limits, &cfg->limits);
    return 0;
}

static int
teardown(void **state)
{
    be_local_shutdown();
    ig_config_free(cfg);
    return 0;
}

static const struct ig_backend_cfg *
isnet_cfg(void)
{
    const struct ig_backend_cfg *b = ig_config_backend(cfg, "local-isnet");
    assert_non_null(b);
    return b;
}

/* Runs the backend on encoded bytes; res must be cleared by the caller. */
static int
run_bytes(const struct ig_backend_cfg *b, const void *data, size_t len, struct be_result *res)
{
    struct be_request req = {.cfg = b, .cls = IG_CLASS_REMOVE_BACKGROUND, .input = data,
                             .input_len = len, .img_limits = &limits};
    memset(res, 0, sizeof *res);
    return be_local_isnet.run(&req, res);
}

static struct img *
decode_result(const struct be_result *res)
{
    struct ig_error err = {0};
    assert_int_equal(res->n_images, 1);
    assert_string_equal(res->images[0].mime, "image/png");
    struct img *out = img_decode(res->images[0].data, res->images[0].len, NULL, &err);
    assert_non_null(out);
    assert_true(out->info.has_alpha);
    return out;
}

static void
test_runtime_missing(void **state)
{
    setenv("IMAGEGATE_ORT_LIB", "/nonexistent/libonnxruntime.so.1", 1);
    char why[512] = "";
    assert_int_equal(be_local_isnet.available(isnet_cfg(), why, sizeof why), 0);
    assert_non_null(strstr(why, "cannot load ONNX Runtime"));
    assert_non_null(strstr(why, "/nonexistent/libonnxruntime.so.1"));
    /* A job that reaches the backend anyway fails cleanly. */
    struct be_result res;
    size_t len;
    char *png = tu_read(tu_photo("astronaut.png"), &len);
    assert_int_equal(run_bytes(isnet_cfg(), png, len, &res), -1);
    assert_false(res.ok);
    assert_string_equal(res.err.code, "model_unavailable");
    assert_int_equal(res.err.http_status, 503);
    be_result_clear(&res);
    ig_free(png);
    /* A file that is not ONNX Runtime at all. */
    setenv("IMAGEGATE_ORT_LIB", "libz.so.1", 1);
    assert_int_equal(be_local_isnet.available(isnet_cfg(), why, sizeof why), 0);
    assert_non_null(strstr(why, "OrtGetApiBase"));
    unsetenv("IMAGEGATE_ORT_LIB");
}

/* A config whose model file does not exist: unavailable with the path, the
 * executor reports the rung as skipped with that reason, and a job that
 * reaches the backend anyway gets 503. */
static void
test_model_missing(void **state)
{
    struct ig_backend_cfg b = *isnet_cfg();
    b.model_path = "/nonexistent/models";
    char why[512] = "";
    assert_int_equal(be_local_isnet.available(&b, why, sizeof why), 0);
    assert_non_null(strstr(why, "/nonexistent/models/isnet-medium.onnx"));
    assert_non_null(strstr(why, "No such file"));

    struct route_executor ex;
    struct ig_error err = {0};
    assert_int_equal(route_exec_backends(NULL, cfg, &ex, &err), 0);
    char exwhy[256] = "";
    assert_int_equal(ex.can_run(ex.ud, &b, exwhy, sizeof exwhy), 0);
    assert_non_null(strstr(exwhy, "isnet-medium.onnx"));
    /* The configured model is there (setup made it), so the real rung runs. */
    assert_int_equal(ex.can_run(ex.ud, isnet_cfg(), exwhy, sizeof exwhy), 1);
    route_exec_stop(&ex);
    route_exec_release(&ex);

    struct be_result res;
    size_t len;
    char *png = tu_read(tu_photo("astronaut.png"), &len);
    assert_int_equal(run_bytes(&b, png, len, &res), -1);
    assert_string_equal(res.err.code, "model_unavailable");
    be_result_clear(&res);
    ig_free(png);
}

/* A model file that exists but is not a model: available (the file is
 * there), and the job fails with ORT's reason and the file's name. */
static void
test_model_corrupt(void **state)
{
    char dir[] = "/tmp/ig-isnet-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/broken.onnx", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("this is not an ONNX protobuf, just forty-odd bytes of text\n", f);
    fclose(f);
    struct ig_backend_cfg b = *isnet_cfg();
    b.model_path = dir;
    b.model = "broken";
    char why[512] = "";
    assert_int_equal(be_local_isnet.available(&b, why, sizeof why), 1);
    struct be_result res;
    size_t len;
    char *png = tu_read(tu_photo("astronaut.png"), &len);
    assert_int_equal(run_bytes(&b, png, len, &res), -1);
    assert_string_equal(res.err.code, "model_unavailable");
    assert_non_null(strstr(res.err.message, "broken.onnx"));
    be_result_clear(&res);
    ig_free(png);
    unlink(path);
    rmdir(dir);
}

/* A no-copyleft tenant never gets the AGPL-packaged model: the router
 * refuses the rung with the licence as the reason and plans the next. */
static void
test_copyleft_tenant_refused(void **state)
{
    struct ig_tenant_cfg t = {.name = "no-copyleft"};
    t.license_policy.deny_copyleft = 1;
    char why[256] = "";
    assert_int_equal(route_license_allows(&t, &isnet_cfg()->contract, why, sizeof why), 0);
    assert_non_null(strstr(why, "copyleft"));
    struct route_need need = {.cls = IG_CLASS_REMOVE_BACKGROUND, .input_pixels = 512 * 512};
    struct route_candidate c[8];
    struct ig_error err = {0};
    int n = route_plan(cfg, &t, NULL, &need, c, 8, &err);
    assert_true(n >= 2);
    assert_string_equal(c[0].backend->name, "local-isnet");
    assert_false(c[0].usable);
    assert_non_null(strstr(c[0].why, "copyleft"));
    assert_true(c[1].usable);
    /* Without the policy the same rung is usable. */
    struct ig_tenant_cfg open = {.name = "open"};
    n = route_plan(cfg, &open, NULL, &need, c, 8, &err);
    assert_true(n >= 1);
    assert_true(c[0].usable);
}

static double
prov_timing(const struct be_result *res, const char *key)
{
    json_t *t = json_object_get(res->provenance, "timings");
    json_t *v = json_object_get(t, key);
    assert_non_null(v);
    return json_number_value(v);
}

/* The real thing: the astronaut cut out of her background. */
static void
test_cutout_astronaut(void **state)
{
    size_t len;
    char *png = tu_read(tu_photo("astronaut.png"), &len);
    struct ig_error err = {0};
    struct img *in = img_decode(png, len, NULL, &err);
    assert_non_null(in);
    struct be_result res;
    if (run_bytes(isnet_cfg(), png, len, &res) != 0)
        fail_msg("cutout failed: %s %s", res.err.code, res.err.message);
    struct img *out = decode_result(&res);
    assert_int_equal(out->width, in->width);
    assert_int_equal(out->height, in->height);

    size_t n = (size_t)out->width * out->height, opaque = 0, clear = 0, changed = 0;
    double cover = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *o = out->rgba + 4 * i, *s = in->rgba + 4 * i;
        cover += o[3] / 255.0;
        opaque += o[3] == 255;
        clear += o[3] == 0;
        if (o[3] == 255 && memcmp(o, s, 3) != 0)
            changed++;
    }
    cover /= (double)n;
    print_message("astronaut: coverage %.3f, opaque %.3f, clear %.3f\n", cover,
                  (double)opaque / n, (double)clear / n);
    assert_int_equal(changed, 0);            /* RGB untouched where opaque */
    assert_true(cover > 0.25 && cover < 0.85);
    assert_true(opaque > n / 5);             /* a solid subject... */
    assert_true(clear > n / 10);             /* ...and a removed background */
    /* Her face is kept; the top-right corner (the flag and wall behind her)
     * is not. */
    assert_true(out->rgba[4 * ((size_t)130 * out->width + 215) + 3] > 240);
    assert_true(out->rgba[4 * ((size_t)20 * out->width + 500) + 3] < 16);

    double pre = prov_timing(&res, "pre_ms"), inf = prov_timing(&res, "inference_ms"),
           post = prov_timing(&res, "post_ms");
    print_message("astronaut: pre %.1f ms, inference %.1f ms, post %.1f ms\n", pre, inf, post);
    assert_true(inf > 0);
    /* The goal is 10 %; sanitizer builds slow our loops, not ORT's. */
    assert_true(pre + post < 0.5 * inf);
    img_free(out);
    img_free(in);
    be_result_clear(&res);
    ig_free(png);
}

/* ORT's activations come from the replayed plan (backends/local/runplan.h):
 * after the first run the second is served from it entirely, in about the
 * graph's own peak of live bytes (268 MB). With the static shapes the
 * set-up used to leave in the model, ORT's planner chained same-size
 * buffers and held 439 MB; so this also checks the rewrite's symbolic
 * height and width. The replayed run's matte is the recorded run's. */
static void
test_activation_plan(void **state)
{
    (void)state;
    size_t len;
    char *png = tu_read(tu_photo("astronaut.png"), &len);
    struct be_result a, b;
    if (run_bytes(isnet_cfg(), png, len, &a) != 0)
        fail_msg("cutout failed: %s %s", a.err.code, a.err.message);
    struct runplan_stats before, after;
    assert_int_equal(be_local_isnet_plan_stats(&before), 0);
    assert_true(before.replaying);
    if (run_bytes(isnet_cfg(), png, len, &b) != 0)
        fail_msg("cutout failed: %s %s", b.err.code, b.err.message);
    assert_int_equal(be_local_isnet_plan_stats(&after), 0);
    print_message("activation plan: %zu allocations in %.1f MB, %.1f MB touched\n", after.recorded,
                  after.plan_bytes / 1e6, after.touched / 1e6);
    assert_true(after.replaying);
    assert_int_equal(after.replays, before.replays + 1);
    assert_int_equal(after.divergences, before.divergences);
    assert_int_equal(after.outside, before.outside);
    assert_true(after.plan_bytes > (size_t)200 << 20);
    assert_true(after.plan_bytes < (size_t)300 << 20);
    assert_true(after.touched < after.plan_bytes + 4096);
    assert_int_equal(a.images[0].len, b.images[0].len);
    assert_memory_equal(a.images[0].data, b.images[0].data, a.images[0].len);
    be_result_clear(&a);
    be_result_clear(&b);
    ig_free(png);
}

/* The model the backend runs is the set-up's rewrite of the shipped one
 * (scripts/onnx-static.py): the mattes of both agree to within a level, so
 * the rewrite changed the graph's layout, not what it computes. */
static void
test_rewrite_matches_shipped(void **state)
{
    (void)state;
    size_t len;
    char *png = tu_read(tu_photo("astronaut.png"), &len);
    struct ig_backend_cfg shipped = *isnet_cfg();
    shipped.model = "isnet-medium.shipped";
    struct be_result a, b;
    if (run_bytes(isnet_cfg(), png, len, &a) != 0)
        fail_msg("cutout failed: %s %s", a.err.code, a.err.message);
    if (run_bytes(&shipped, png, len, &b) != 0)
        fail_msg("cutout with the shipped model failed: %s %s", b.err.code, b.err.message);
    struct img *x = decode_result(&a), *y = decode_result(&b);
    assert_int_equal(x->width, y->width);
    assert_int_equal(x->height, y->height);
    size_t n = (size_t)x->width * x->height, differ = 0;
    int worst = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs(x->rgba[4 * i + 3] - y->rgba[4 * i + 3]);
        worst = d > worst ? d : worst;
        differ += d != 0;
    }
    print_message("rewritten vs shipped model: %zu of %zu alphas differ, by at most %d\n", differ, n,
                  worst);
    assert_true(worst <= 1);
    assert_true(differ < n / 100);
    img_free(x);
    img_free(y);
    be_result_clear(&a);
    be_result_clear(&b);
    ig_free(png);
}

/* Encodes a real photo as another kind of file with libvips. */
static void *
photo_as(const char *name, VipsInterpretation space, const char *suffix, size_t *len)
{
    VipsImage *im = vips_image_new_from_file(tu_photo(name), NULL);
    assert_non_null(im);
    VipsImage *conv = NULL;
    assert_int_equal(vips_colourspace(im, &conv, space, NULL), 0);
    void *buf = NULL;
    assert_int_equal(vips_image_write_to_buffer(conv, suffix, &buf, len, NULL), 0);
    g_object_unref(conv);
    g_object_unref(im);
    void *copy = ig_malloc(*len);
    assert_non_null(copy);
    memcpy(copy, buf, *len);
    g_free(buf);
    return copy;
}

/* Cuts out data and checks the answer's size and coverage; when same_rgb
 * is given, the answer's RGB must be its RGB to within one level. */
static void
expect_cutout(const void *data, size_t len, int w, int h, int bands, int bits, int cmyk,
              const struct img *same_rgb)
{
    struct ig_error err = {0};
    struct img_info info;
    assert_int_equal(img_probe(data, len, &limits, &info, &err), 0);
    assert_int_equal(info.bands, bands);
    assert_int_equal(info.bits, bits);
    assert_int_equal(info.cmyk, cmyk);
    struct be_result res;
    if (run_bytes(isnet_cfg(), data, len, &res) != 0)
        fail_msg("cutout failed: %s %s", res.err.code, res.err.message);
    struct img *out = decode_result(&res);
    assert_int_equal(out->width, w);
    assert_int_equal(out->height, h);
    size_t n = (size_t)w * h;
    double cover = 0;
    for (size_t i = 0; i < n; i++)
        cover += out->rgba[4 * i + 3] / 255.0;
    cover /= (double)n;
    print_message("%dx%d, %d bands, %d bits: coverage %.3f\n", w, h, bands, bits, cover);
    if (n > 1000)
        assert_true(cover > 0.05 && cover < 0.95);
    for (size_t i = 0; same_rgb && i < 4 * n; i++)
        if (i % 4 != 3 && abs(out->rgba[i] - same_rgb->rgba[i]) > 1)
            fail_msg("RGB changed at pixel %zu: %d, was %d", i / 4, out->rgba[i], same_rgb->rgba[i]);
    img_free(out);
    be_result_clear(&res);
}

static void
put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Unusual inputs: each decodes to RGBA the model can take, or is refused
 * before a pixel is decoded. */
static void
test_inputs(void **state)
{
    /* 1x1: upsampled to the model's size and back. */
    struct img *dot = img_new(1, 1);
    assert_non_null(dot);
    memcpy(dot->rgba, "\x80\x40\x20\xff", 4);
    struct ig_buf enc = {0};
    struct ig_error err = {0};
    assert_int_equal(img_encode(dot, IMG_FMT_PNG, 0, NULL, &enc, &err), 0);
    expect_cutout(enc.data, enc.len, 1, 1, 4, 8, 0, dot);
    ig_buf_free(&enc);
    img_free(dot);

    /* Grey JPEG, CMYK JPEG and 16-bit PNG of the same cat. */
    size_t len, len8;
    void *grey = photo_as("chelsea.png", VIPS_INTERPRETATION_B_W, ".jpg", &len);
    expect_cutout(grey, len, 451, 300, 1, 8, 0, NULL);
    ig_free(grey);
    void *cmyk = photo_as("chelsea.png", VIPS_INTERPRETATION_CMYK, ".jpg", &len);
    expect_cutout(cmyk, len, 451, 300, 4, 8, 1, NULL);
    ig_free(cmyk);
    /* 16 bits scale down to the 8-bit photo's own values. */
    void *deep = photo_as("chelsea.png", VIPS_INTERPRETATION_RGB16, ".png", &len);
    char *png = tu_read(tu_photo("chelsea.png"), &len8);
    struct img *cat = img_decode(png, len8, NULL, &err);
    assert_non_null(cat);
    expect_cutout(deep, len, 451, 300, 3, 16, 0, cat);
    img_free(cat);
    ig_free(png);
    ig_free(deep);

    /* 20000 x 20000 declared in the header (with a token IDAT): refused by
     * the limits before a pixel is decoded. */
    static const unsigned char idat[] = {0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01};
    unsigned char big[80];
    size_t n = 8;
    memcpy(big, "\x89PNG\r\n\x1a\n", 8);
    put32(big + n, 13);
    memcpy(big + n + 4, "IHDR", 4);
    put32(big + n + 8, 20000);
    put32(big + n + 12, 20000);
    memcpy(big + n + 16, "\x08\x02\x00\x00\x00", 5);
    put32(big + n + 21, (uint32_t)crc32(0, big + n + 4, 17));
    n += 25;
    put32(big + n, sizeof idat);
    memcpy(big + n + 4, "IDAT", 4);
    memcpy(big + n + 8, idat, sizeof idat);
    put32(big + n + 8 + sizeof idat, (uint32_t)crc32(0, big + n + 4, 4 + sizeof idat));
    n += 12 + sizeof idat;
    put32(big + n, 0);
    memcpy(big + n + 4, "IEND", 4);
    put32(big + n + 8, (uint32_t)crc32(0, big + n + 4, 4));
    n += 12;
    struct be_result res;
    assert_int_equal(run_bytes(isnet_cfg(), big, n, &res), -1);
    assert_string_equal(res.err.code, "image_too_large");
    assert_int_equal(res.err.http_status, 413);
    be_result_clear(&res);

    /* No input at all. */
    assert_int_equal(run_bytes(isnet_cfg(), NULL, 0, &res), -1);
    assert_string_equal(res.err.code, "invalid_request");
    be_result_clear(&res);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runtime_missing),
        cmocka_unit_test(test_model_missing),
        cmocka_unit_test(test_model_corrupt),
        cmocka_unit_test(test_copyleft_tenant_refused),
        cmocka_unit_test(test_cutout_astronaut),
        cmocka_unit_test(test_activation_plan),
        cmocka_unit_test(test_rewrite_matches_shipped),
        cmocka_unit_test(test_inputs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
