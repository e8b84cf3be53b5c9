/* SPDX-License-Identifier: MIT */
/* test_local_rdn.c -- the local-rdn backend and its engine.
 *
 * 1.x  exactness: every shipped golden (fixture.png upscaled by UpscalerJS)
 *      is matched within 1 LSB per channel, for slim, medium and thick;
 *      the result is the same bytes at any thread count and tile size, and
 *      the portable kernel meets the goldens as the AVX-512 one does.
 * 2.x  hostile models: broken model.json, truncated shards, an unknown
 *      layer, and a loop truncating the JSON and the shard at many lengths.
 * 3.x  the backend: 1x1, grey and 16-bit inputs, alpha kept, an over-limit
 *      image refused from its header, `available` without model files.
 * Sanitizer builds skip the thick goldens and medium's x3/x4 (minutes under ASan). */
#include "testutil.h"
#include "backends/local/conv.h"
#include "backends/local/rdn.h"
#include "backends/local/tfjs.h"
#include "core/alloc.h"
#include "image/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <vips/vips.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static const char *
deps(const char *rel)
{
    static char path[8][1024];
    static int slot;
    char *p = path[slot++ % 8];
    const char *d = getenv("IG_DEPS");
    snprintf(p, 1024, "%s/%s", d && *d ? d : ".deps", rel);
    return p;
}

static struct img *
load_png(const char *path)
{
    size_t len;
    char *data = tu_read(path, &len);
    struct ig_error err = {0};
    struct img *im = img_decode(data, len, NULL, &err);
    ig_free(data);
    if (!im)
        fail_msg("%s: %s", path, err.message);
    return im;
}

static int
max_diff(const struct img *a, const struct img *b)
{
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    int mx = 0;
    for (size_t i = 0; i < (size_t)a->width * a->height * 4; i++) {
        int d = abs(a->rgba[i] - b->rgba[i]);
        mx = d > mx ? d : mx;
    }
    return mx;
}

static struct rdn_stats last_stats;

static struct img *
upscale(const char *model, int scale, const struct img *in, int threads, int tile)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/models/x%d", deps(model), scale);
    struct rdn_opts o = {.threads = threads, .tile = tile};
    struct img *out = NULL;
    struct ig_error err = {0};
    if (rdn_upscale(dir, scale, in, &o, &out, &last_stats, &err) != 0)
        fail_msg("%s x%d: %s: %s", model, scale, err.code, err.message);
    return out;
}

/* 1.1 every golden within 1 LSB */
static void
check_goldens(const char *pkg, int max_scale)
{
    char rel[256];
    snprintf(rel, sizeof rel, "npm/%s/assets/fixture.png", pkg);
    struct img *in = load_png(deps(rel));
    int found = 0;
    for (int s = 2; s <= max_scale; s++) {
        snprintf(rel, sizeof rel, "npm/%s/assets/samples/%dx/result.png", pkg, s);
        if (access(deps(rel), R_OK) != 0)
            continue;
        struct img *gold = load_png(deps(rel));
        snprintf(rel, sizeof rel, "npm/%s", pkg);
        struct img *out = upscale(rel, s, in, 0, 0);
        int d = max_diff(out, gold);
        if (d > 1)
            fail_msg("%s x%d: max |delta| %d", pkg, s, d);
        found++;
        img_free(out);
        img_free(gold);
    }
    assert_true(found >= (max_scale < 4 ? max_scale - 1 : 3));
    img_free(in);
    rdn_shutdown();
}

static void
test_1_1_goldens_slim(void **state)
{
    check_goldens("esrgan-slim", 8);
}

static void
test_1_2_goldens_medium(void **state)
{
    check_goldens("esrgan-medium", SANITIZED ? 2 : 8);   /* x2 only under ASan: minutes */
}

static void
test_1_3_goldens_thick(void **state)
{
    if (SANITIZED)
        skip();
    check_goldens("esrgan-thick", 8);
}

/* 1.4 threads and tiles change nothing, to the byte, and match the golden */
static void
test_1_4_thread_tile_invariance(void **state)
{
    struct img *in = load_png(deps("npm/esrgan-slim/assets/fixture.png"));
    struct img *gold = load_png(deps("npm/esrgan-slim/assets/samples/4x/result.png"));
    struct img *ref = upscale("npm/esrgan-slim", 4, in, 1, 0);
    assert_true(max_diff(ref, gold) <= 1);
    /* slim's 64-channel 3x3 and 5x5 layers (and the 32->12 one) run Winograd
     * on the vector paths, so its 2x2 blocks meet odd tile edges (23) here */
    if (conv_wino_enabled())
        assert_int_equal(last_stats.winograd, 5);
    const int cases[][2] = {{2, 0}, {1, 32}, {2, 32}, {2, 64}, {2, 23}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct img *o = upscale("npm/esrgan-slim", 4, in, cases[i][0], cases[i][1]);
        if (memcmp(o->rgba, ref->rgba, (size_t)o->width * o->height * 4) != 0)
            fail_msg("threads %d tile %d differs from threads 1, one tile", cases[i][0],
                     cases[i][1]);
        img_free(o);
    }
    img_free(ref);
    img_free(gold);
    img_free(in);
    rdn_shutdown();
}

/* 1.5 the portable kernel (machines without AVX2) meets the goldens too */
static void
test_1_5_portable_kernel(void **state)
{
    struct img *in = load_png(deps("npm/esrgan-slim/assets/fixture.png"));
    struct img *gold = load_png(deps("npm/esrgan-slim/assets/samples/2x/result.png"));
    assert_int_equal(conv_force_kernel("neon"), -1);   /* not a kernel of this build */
    assert_int_equal(conv_force_kernel("portable"), 0);
    assert_string_equal(conv_kernel_name(), "portable");
    struct img *out = upscale("npm/esrgan-slim", 2, in, 2, 64);
    conv_force_kernel(NULL);
    assert_int_equal(last_stats.winograd, 0);
    int d = max_diff(out, gold);
    if (d > 1)
        fail_msg("portable kernel: max |delta| %d", d);
    img_free(out);
    img_free(gold);
    img_free(in);
    rdn_shutdown();
}

/* 1.5b the AVX2 kernels (machines without AVX-512) meet the goldens, run
 * the same Winograd layers, and give the same bytes at any tiling */
static void
test_1_5b_avx2_kernel(void **state)
{
    (void)state;
    if (conv_force_kernel("avx2") != 0)
        skip();   /* this CPU has no AVX2 */
    assert_string_equal(conv_kernel_name(), "avx2");
    struct img *in = load_png(deps("npm/esrgan-slim/assets/fixture.png"));
    struct img *gold = load_png(deps("npm/esrgan-slim/assets/samples/2x/result.png"));
    struct img *out = upscale("npm/esrgan-slim", 2, in, 2, 64);
    assert_int_equal(last_stats.winograd, 5);
    assert_string_equal(last_stats.kernel, "avx2");
    struct img *other = upscale("npm/esrgan-slim", 2, in, 1, 23);
    conv_force_kernel(NULL);
    int d = max_diff(out, gold);
    if (d > 1)
        fail_msg("AVX2 kernels: max |delta| %d", d);
    if (memcmp(out->rgba, other->rgba, (size_t)out->width * out->height * 4) != 0)
        fail_msg("AVX2 kernels: threads 1 tile 23 differs from threads 2 tile 64");
    img_free(other);
    img_free(out);
    img_free(gold);
    img_free(in);
    rdn_shutdown();
}

/* 1.6 the Winograd kernel's tiling property, on one layer: the outputs of a
 * sub-region whose input is valid only as far as the region's receptive
 * field plus conv_wino_reach equal, bit for bit, those of the whole image,
 * whatever lies further out. A garbage band one pixel closer must change
 * some output at m = 4 (so the reach is needed and this test can see it),
 * and must not at m = 2 (the exact-support property conv.c relies on). */
#define W6 64                  /* image edge */
#define C6 64                  /* channels in and out */

static float *
wino_layer(int k, int m, const float *in, int pitch, int border, int sx, int sy, int w, int h,
           const float *wts, const float *bias, float *u, float *scratch)
{
    float *out = test_calloc((size_t)w * h * C6, sizeof *out);
    struct conv_seg seg = {.base = in, .c = C6, .stride = C6};
    struct conv_args a = {.k = k, .cin = C6, .cout_pad = C6, .w = wts, .b = bias, .u = u,
                          .wm = m, .px = sx % m, .py = sy % m, .scratch = scratch, .seg = &seg,
                          .nseg = 1, .pitch = pitch, .border = border, .up = 1, .shuffle = 1,
                          .out = out, .out_stride = C6, .out_pitch = w, .ow = w, .oh = h,
                          .ox = sx, .oy = sy};
    conv_rows(&a, 0, h);
    return out;
}

/* A random 64-channel image with a border for F(m x m, k x k), random
 * weights and bias, and their Winograd transform. */
struct wino_fixture {
    float *in, *wts, bias[C6], *u, *scratch;
};

static void
wino_fixture_make(struct wino_fixture *f, int k, int m, unsigned seed)
{
    const int B = k / 2 + m - 1, P = W6 + 2 * B;
    f->in = test_calloc((size_t)P * P * C6, sizeof *f->in);
    f->wts = test_malloc((size_t)k * k * C6 * C6 * sizeof *f->wts);
    f->u = test_malloc((size_t)(m + k - 1) * (m + k - 1) * C6 * C6 * sizeof *f->u);
    f->scratch = test_malloc(conv_wino_scratch(k, m, C6, C6) * sizeof *f->scratch);
    srand(seed);
    for (int y = 0; y < W6; y++)
        for (int x = 0; x < W6; x++)
            for (int c = 0; c < C6; c++)
                f->in[((size_t)(y + B) * P + x + B) * C6 + c] = (float)(rand() % 2000) / 10.0f;
    for (size_t i = 0; i < (size_t)k * k * C6 * C6; i++)
        f->wts[i] = (float)(rand() % 2001 - 1000) / 20000.0f;
    for (int c = 0; c < C6; c++)
        f->bias[c] = (float)(rand() % 200 - 100) / 100.0f;
    conv_wino_pack(k, m, C6, C6, f->wts, f->u);
}

static void
wino_fixture_free(struct wino_fixture *f)
{
    test_free(f->in);
    test_free(f->wts);
    test_free(f->u);
    test_free(f->scratch);
}

/* How many output rows of the 30x30 region at (15, 7) differ from the whole
 * image's when the input is garbage beyond `valid` pixels around the
 * region. Both its edges are as far from a block edge as they can be at
 * m = 4 (15 and 45 are 3 and 1 modulo 4), so its blocks read the full m-1
 * pixels past them. */
static int
wino_mismatches(int k, int m, int valid)
{
    const int B = k / 2 + m - 1, P = W6 + 2 * B;
    const int sx = 15, sy = 7, w = 30, h = 30;
    size_t n = (size_t)P * P * C6;
    struct wino_fixture f;
    wino_fixture_make(&f, k, m, 7);
    float *bad = test_malloc(n * sizeof *bad);
    memcpy(bad, f.in, n * sizeof *bad);
    for (int y = -B; y < W6 + B; y++)
        for (int x = -B; x < W6 + B; x++)
            if (y < sy - valid || y >= sy + h + valid || x < sx - valid || x >= sx + w + valid)
                for (int c = 0; c < C6; c++)
                    bad[((size_t)(y + B) * P + x + B) * C6 + c] = (float)(rand() % 100000) - 5e4f;
    float *full = wino_layer(k, m, f.in, P, B, 0, 0, W6, W6, f.wts, f.bias, f.u, f.scratch);
    float *part = wino_layer(k, m, bad, P, B, sx, sy, w, h, f.wts, f.bias, f.u, f.scratch);
    int diff = 0;
    for (int y = 0; y < h; y++)
        diff += memcmp(part + (size_t)y * w * C6, full + ((size_t)(sy + y) * W6 + sx) * C6,
                       (size_t)w * C6 * sizeof *full) != 0;
    test_free(full);
    test_free(part);
    test_free(bad);
    wino_fixture_free(&f);
    return diff;
}

static void
test_1_6_winograd_tiling(void **state)
{
    (void)state;
    if (!conv_wino_enabled())
        skip();
    assert_int_equal(conv_wino_block(3, C6, C6), 4);
    assert_int_equal(conv_wino_block(5, C6, C6), 4);
    assert_int_equal(conv_wino_block(3, 32, 32), 2);
    for (int k = 3; k <= 5; k += 2) {
        /* F(4x4, k x k): valid to r + reach is enough, one pixel less is not */
        assert_int_equal(wino_mismatches(k, 4, k / 2 + conv_wino_reach(4)), 0);
        assert_true(wino_mismatches(k, 4, k / 2 + conv_wino_reach(4) - 1) > 0);
        /* F(2x2, k x k): the receptive field alone is enough */
        assert_int_equal(conv_wino_reach(2), 0);
        assert_int_equal(wino_mismatches(k, 2, k / 2), 0);
    }
}

/* 1.7 where the CPU has both vector sets, they give the same bytes on a
 * Winograd layer and on a direct one: the sums run in the same order */
static void
test_1_7_vector_sets_agree(void **state)
{
    (void)state;
    if (conv_force_kernel("avx512") != 0)
        skip();   /* only one set here; 1.5b holds AVX2 to the goldens */
    const int k = 3, m = 4, B = k / 2 + m - 1, P = W6 + 2 * B;
    struct wino_fixture f;
    wino_fixture_make(&f, k, m, 11);
    float *out[2][2];
    const char *sets[2] = {"avx512", "avx2"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(conv_force_kernel(sets[i]), 0);
        out[i][0] = wino_layer(k, m, f.in, P, B, 0, 0, W6, W6, f.wts, f.bias, f.u, f.scratch);
        out[i][1] = wino_layer(k, m, f.in, P, B, 0, 0, W6, W6, f.wts, f.bias, NULL, f.scratch);
    }
    conv_force_kernel(NULL);
    size_t bytes = (size_t)W6 * W6 * C6 * sizeof(float);
    assert_memory_equal(out[0][0], out[1][0], bytes);
    assert_memory_equal(out[0][1], out[1][1], bytes);
    /* and Winograd is not the direct kernel under another name */
    assert_memory_not_equal(out[0][0], out[0][1], bytes);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            test_free(out[i][j]);
    wino_fixture_free(&f);
}

/*---- hostile models ----------------------------------------------------*/

struct tmpmodel {
    char dir[256], json[300], shard[300];
};

static void
tmpmodel_make(struct tmpmodel *t, const char *json, size_t json_len, const char *shard,
              size_t shard_len)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/igrdn-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->json, sizeof t->json, "%s/model.json", t->dir);
    snprintf(t->shard, sizeof t->shard, "%s/group1-shard1of1.bin", t->dir);
    FILE *f = fopen(t->json, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(json, 1, json_len, f), json_len);
    fclose(f);
    f = fopen(t->shard, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(shard, 1, shard_len, f), shard_len);
    fclose(f);
}

static void
tmpmodel_drop(struct tmpmodel *t)
{
    unlink(t->json);
    unlink(t->shard);
    rmdir(t->dir);
}

struct slim {
    char *json, *shard;
    size_t json_len, shard_len;
};

static void
slim_read(struct slim *s)
{
    s->json = tu_read(deps("npm/esrgan-slim/models/x2/model.json"), &s->json_len);
    s->shard = tu_read(deps("npm/esrgan-slim/models/x2/group1-shard1of1.bin"), &s->shard_len);
}

static void
slim_free(struct slim *s)
{
    ig_free(s->json);
    ig_free(s->shard);
}

/* Loads a model from these bytes; returns the error code ("" on success). */
static const char *
try_load(const char *json, size_t json_len, const char *shard, size_t shard_len,
         struct ig_error *err)
{
    struct tmpmodel t;
    tmpmodel_make(&t, json, json_len, shard, shard_len);
    struct tfjs_model m;
    memset(err, 0, sizeof *err);
    int rc = tfjs_load(t.dir, &m, err);
    if (rc == 0)
        tfjs_free(&m);
    tmpmodel_drop(&t);
    return rc == 0 ? "" : err->code;
}

/* 2.1 a broken model.json through the whole backend path: a clear code, no crash */
static void
test_2_1_bad_model_json(void **state)
{
    struct slim s;
    slim_read(&s);
    struct tmpmodel t;
    tmpmodel_make(&t, "{\"modelTopology\": [1, 2,", 24, s.shard, s.shard_len);
    struct img *in = img_new(8, 8);
    assert_non_null(in);
    struct img *out = NULL;
    struct ig_error err = {0};
    assert_int_equal(rdn_upscale(t.dir, 2, in, NULL, &out, NULL, &err), -1);
    assert_null(out);
    assert_string_equal(err.code, "model_corrupt");
    tmpmodel_drop(&t);
    /* valid JSON, wrong shapes: a kernel that does not fit its layer */
    char *bad = ig_malloc(s.json_len + 1);
    assert_non_null(bad);
    memcpy(bad, s.json, s.json_len);
    bad[s.json_len] = 0;
    char *p = strstr(bad, "[3, 3, 64, 64]");
    assert_non_null(p);
    memcpy(p, "[3, 3, 64, 65]", 14);
    assert_string_equal(try_load(bad, s.json_len, s.shard, s.shard_len, &err), "model_corrupt");
    ig_free(bad);
    img_free(in);
    slim_free(&s);
}

/* 2.2 a shard one float short, one byte short, and one byte long */
static void
test_2_2_truncated_shard(void **state)
{
    struct slim s;
    slim_read(&s);
    struct ig_error err;
    assert_string_equal(try_load(s.json, s.json_len, s.shard, s.shard_len, &err), "");
    assert_string_equal(try_load(s.json, s.json_len, s.shard, s.shard_len - 4, &err),
                        "model_corrupt");
    assert_non_null(strstr(err.message, "truncated"));
    assert_string_equal(try_load(s.json, s.json_len, s.shard, s.shard_len - 1, &err),
                        "model_corrupt");
    char *longer = ig_malloc(s.shard_len + 1);
    assert_non_null(longer);
    memcpy(longer, s.shard, s.shard_len);
    longer[s.shard_len] = 0;
    assert_string_equal(try_load(s.json, s.json_len, longer, s.shard_len + 1, &err),
                        "model_corrupt");
    ig_free(longer);
    slim_free(&s);
}

/* 2.3 a layer kind the engine lacks is refused by name */
static void
test_2_3_unknown_layer(void **state)
{
    struct slim s;
    slim_read(&s);
    char *j = ig_malloc(s.json_len + 1);
    assert_non_null(j);
    memcpy(j, s.json, s.json_len);
    j[s.json_len] = 0;
    char *p = strstr(j, "\"UpSampling2D\"");
    assert_non_null(p);
    memcpy(p, "\"Lambda\"      ", 14);     /* same length: JSON stays valid */
    struct ig_error err;
    assert_string_equal(try_load(j, s.json_len, s.shard, s.shard_len, &err), "model_unsupported");
    assert_non_null(strstr(err.message, "unknown layer type Lambda"));
    ig_free(j);
    slim_free(&s);
}

/* 2.4 truncating the JSON and the shard at many lengths: always an error, never a crash */
static void
test_2_4_truncation_loop(void **state)
{
    struct slim s;
    slim_read(&s);
    struct ig_error err;
    const int cuts = SANITIZED ? 24 : 64;    /* per file, spread over its length */
    int n = 0;
    for (int i = 0; i <= cuts; i++, n++) {
        size_t len = i == cuts ? s.json_len - 1 : s.json_len * (size_t)i / cuts;
        const char *code = try_load(s.json, len, s.shard, s.shard_len, &err);
        if (strcmp(code, "model_corrupt") != 0)
            fail_msg("json cut at %zu: '%s'", len, code);
    }
    for (int i = 0; i <= cuts; i++, n++) {
        size_t len = i == cuts ? s.shard_len - 1 : s.shard_len * (size_t)i / cuts;
        const char *code = try_load(s.json, s.json_len, s.shard, len, &err);
        if (strcmp(code, "model_corrupt") != 0)
            fail_msg("shard cut at %zu: '%s'", len, code);
    }
    assert_int_equal(n, 2 * (cuts + 1));
    slim_free(&s);
}

/*---- the backend -------------------------------------------------------*/

static struct ig_backend_cfg
rdn_cfg(const char *model_path, long max_pixels)
{
    struct ig_backend_cfg c;
    memset(&c, 0, sizeof c);
    c.name = (char *)"local-rdn-slim";
    c.adapter = (char *)"local-rdn";
    c.model = (char *)"esrgan-slim";
    c.model_path = (char *)model_path;
    c.contract.max_pixels = max_pixels;
    const int sc[] = {2, 3, 4, 8};
    memcpy(c.contract.scales, sc, sizeof sc);
    c.contract.n_scales = 4;
    return c;
}

/* Runs the backend on encoded bytes; returns the decoded output or NULL with res->err. */
static struct img *
run_backend(const struct ig_backend_cfg *cfg, const void *bytes, size_t len, int scale,
            struct be_result *res)
{
    const struct be_local *be = be_find_local("local-rdn");
    assert_non_null(be);
    struct be_request req;
    memset(&req, 0, sizeof req);
    req.cfg = cfg;
    req.cls = IG_CLASS_UPSCALE;
    req.scale = scale;
    req.input = bytes;
    req.input_len = len;
    memset(res, 0, sizeof *res);
    if (be->run(&req, res) != 0) {
        assert_false(res->ok);
        return NULL;
    }
    assert_true(res->ok);
    assert_int_equal(res->n_images, 1);
    struct ig_error err = {0};
    struct img *out = img_decode(res->images[0].data, res->images[0].len, NULL, &err);
    assert_non_null(out);
    return out;
}

static void *
encode(VipsImage *im, size_t *len)
{
    void *buf = NULL;
    assert_int_equal(vips_image_write_to_buffer(im, ".png", &buf, len, NULL), 0);
    return buf;
}

/* 3.1 a 1x1 image: every tap but the centre is padding; the output is 2x2.
 * A NumPy run of the same graph (float64, zero "same" padding) gives
 * (1, 1, 1) for this pixel: the network darkens what it cannot see around. */
static void
test_3_1_one_pixel(void **state)
{
    struct ig_backend_cfg cfg = rdn_cfg(deps("npm/esrgan-slim/models"), 0);
    struct img *px = img_new(1, 1);
    assert_non_null(px);
    memcpy(px->rgba, "\x80\x40\x20\xff", 4);
    struct ig_buf enc = {0};
    struct ig_error err = {0};
    assert_int_equal(img_encode(px, IMG_FMT_PNG, 0, NULL, &enc, &err), 0);
    struct be_result res;
    struct img *out = run_backend(&cfg, enc.data, enc.len, 2, &res);
    assert_non_null(out);
    assert_int_equal(out->width, 2);
    assert_int_equal(out->height, 2);
    for (int i = 0; i < 4; i++) {
        for (int c = 0; c < 3; c++)
            assert_true(abs(out->rgba[i * 4 + c] - 1) <= 1);
        assert_int_equal(out->rgba[i * 4 + 3], 255);
    }
    json_t *prov = res.provenance;
    assert_string_equal(json_string_value(json_object_get(prov, "engine")), "imagegate-rdn");
    img_free(out);
    be_result_clear(&res);
    ig_buf_free(&enc);
    img_free(px);
}

/* 3.2 grey and 16-bit sources: decoded to RGB and upscaled like their 8-bit RGB twin */
static void
test_3_2_grey_and_16bit(void **state)
{
    struct ig_backend_cfg cfg = rdn_cfg(deps("npm/esrgan-slim/models"), 0);
    size_t len;
    char *png = tu_read(deps("npm/esrgan-slim/assets/fixture.png"), &len);
    VipsImage *src = vips_image_new_from_buffer(png, len, "", NULL), *rgb = NULL, *grey = NULL,
              *t16 = NULL, *grey_rgb = NULL;
    assert_non_null(src);
    assert_int_equal(vips_flatten(src, &rgb, NULL), 0);
    assert_int_equal(vips_colourspace(rgb, &grey, VIPS_INTERPRETATION_B_W, NULL), 0);
    assert_int_equal(vips_colourspace(rgb, &t16, VIPS_INTERPRETATION_RGB16, NULL), 0);
    assert_int_equal(vips_colourspace(grey, &grey_rgb, VIPS_INTERPRETATION_sRGB, NULL), 0);
    struct { VipsImage *im, *twin; int bits; } cases[] = {{grey, grey_rgb, 8}, {t16, rgb, 16}};
    for (size_t i = 0; i < 2; i++) {
        size_t a_len, b_len;
        void *a = encode(cases[i].im, &a_len), *b = encode(cases[i].twin, &b_len);
        struct be_result ra, rb;
        struct img *oa = run_backend(&cfg, a, a_len, 2, &ra);
        struct img *ob = run_backend(&cfg, b, b_len, 2, &rb);
        assert_non_null(oa);
        assert_non_null(ob);
        assert_int_equal(oa->width, 256);
        double sum = 0;
        for (size_t p = 0; p < (size_t)oa->width * oa->height * 4; p++)
            sum += abs(oa->rgba[p] - ob->rgba[p]);
        double mad = sum / ((double)oa->width * oa->height * 4);
        if (mad > 1.0)
            fail_msg("case %zu (%d-bit): mean |delta| to its 8-bit RGB twin %.3f", i,
                     cases[i].bits, mad);
        img_free(oa);
        img_free(ob);
        be_result_clear(&ra);
        be_result_clear(&rb);
        g_free(a);
        g_free(b);
    }
    g_object_unref(grey_rgb);
    g_object_unref(t16);
    g_object_unref(grey);
    g_object_unref(rgb);
    g_object_unref(src);
    ig_free(png);
}

/* 3.3 alpha goes through Lanczos3, not the network, and is kept */
static void
test_3_3_alpha(void **state)
{
    struct img *in = img_new(24, 20);
    assert_non_null(in);
    for (int y = 0; y < 20; y++)
        for (int x = 0; x < 24; x++) {
            uint8_t *p = in->rgba + ((size_t)y * 24 + x) * 4;
            p[0] = (uint8_t)(x * 10);
            p[1] = (uint8_t)(y * 12);
            p[2] = 90;
            p[3] = (uint8_t)(x < 12 ? 0 : 255);
        }
    in->info.has_alpha = 1;
    struct img *out = upscale("npm/esrgan-slim", 3, in, 2, 8);
    struct ig_error err = {0};
    struct img *lz = img_resize(in, 72, 60, "lanczos3", &err);
    assert_non_null(lz);
    for (size_t i = 0; i < 72 * 60; i++)
        assert_int_equal(out->rgba[i * 4 + 3], lz->rgba[i * 4 + 3]);
    assert_int_equal(out->rgba[3], 0);
    assert_int_equal(out->rgba[71 * 4 + 3], 255);
    img_free(lz);
    img_free(out);
    img_free(in);
}

/* 3.4 over the contract's pixel limit: refused from the header, before decoding */
static void
test_3_4_over_limit_before_decode(void **state)
{
    struct ig_backend_cfg cfg = rdn_cfg(deps("npm/esrgan-slim/models"), 1000000);
    VipsImage *black = NULL;
    assert_int_equal(vips_black(&black, 2000, 1000, "bands", 3, NULL), 0);
    size_t len;
    void *png = encode(black, &len);
    struct be_result res;
    assert_null(run_backend(&cfg, png, len, 2, &res));
    assert_string_equal(res.err.code, "image_too_large");
    assert_int_equal(res.err.http_status, 413);
    be_result_clear(&res);
    g_free(png);
    g_object_unref(black);
}

/* 3.4b a result over the contract's output limit: refused from the header,
 * with its own code, before a pixel is decoded or a model loaded */
static void
test_3_4b_output_over_limit(void **state)
{
    struct ig_backend_cfg cfg = rdn_cfg(deps("npm/esrgan-slim/models"), 1000000);
    cfg.contract.max_output_pixels = 4 * 300 * 200 - 1;
    VipsImage *black = NULL;
    assert_int_equal(vips_black(&black, 300, 200, "bands", 3, NULL), 0);
    size_t len;
    void *png = encode(black, &len);
    struct be_result res;
    assert_null(run_backend(&cfg, png, len, 2, &res));
    assert_string_equal(res.err.code, "output_too_large");
    assert_int_equal(res.err.http_status, 413);
    assert_non_null(strstr(res.err.message, "300x200"));
    be_result_clear(&res);
    /* Lanczos keeps the same limit. */
    struct ig_backend_cfg lz = cfg;
    lz.adapter = "local-lanczos";
    const struct be_local *be = be_find_local("local-lanczos");
    assert_non_null(be);
    struct be_request req = {.cfg = &lz, .cls = IG_CLASS_UPSCALE, .input = png, .input_len = len, .scale = 2};
    be_result_clear(&res);
    assert_int_equal(be->run(&req, &res), -1);
    assert_string_equal(res.err.code, "output_too_large");
    be_result_clear(&res);
    /* One pixel more room and the same job runs. */
    cfg.contract.max_output_pixels++;
    struct img *out = run_backend(&cfg, png, len, 2, &res);
    assert_non_null(out);
    assert_int_equal(out->width, 600);
    img_free(out);
    be_result_clear(&res);
    g_free(png);
    g_object_unref(black);
}

/* 3.5 available: yes with the models, "model files missing: <path>" without */
static void
test_3_5_available(void **state)
{
    const struct be_local *be = be_find_local("local-rdn");
    assert_non_null(be);
    char why[512] = "";
    struct ig_backend_cfg ok = rdn_cfg(deps("npm/esrgan-slim/models"), 0);
    assert_int_equal(be->available(&ok, why, sizeof why), 1);
    struct ig_backend_cfg missing = rdn_cfg("/nonexistent/esrgan/models", 0);
    assert_int_equal(be->available(&missing, why, sizeof why), 0);
    assert_string_equal(why, "model files missing: /nonexistent/esrgan/models/x2/model.json");
    /* and a job on it fails with the same reason, not a crash */
    struct img *in = img_new(4, 4);
    assert_non_null(in);
    struct ig_buf enc = {0};
    struct ig_error err = {0};
    assert_int_equal(img_encode(in, IMG_FMT_PNG, 0, NULL, &enc, &err), 0);
    struct be_result res;
    assert_null(run_backend(&missing, enc.data, enc.len, 2, &res));
    assert_string_equal(res.err.code, "model_missing");
    be_result_clear(&res);
    ig_buf_free(&enc);
    img_free(in);
}

/* 3.6 a scale the contract lacks, and a model folder whose factor is not the scale */
static void
test_3_6_wrong_scale(void **state)
{
    struct img *in = img_new(4, 4);
    assert_non_null(in);
    struct img *out = NULL;
    struct ig_error err = {0};
    assert_int_equal(rdn_upscale(deps("npm/esrgan-slim/models/x2"), 4, in, NULL, &out, NULL,
                                 &err), -1);
    assert_string_equal(err.code, "model_unsupported");
    img_free(in);
}

static int
setup(void **state)
{
    struct ig_error err = {0};
    return img_init(&err);
}

static int
teardown(void **state)
{
    be_local_shutdown();
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_1_1_goldens_slim),
        cmocka_unit_test(test_1_2_goldens_medium),
        cmocka_unit_test(test_1_3_goldens_thick),
        cmocka_unit_test(test_1_4_thread_tile_invariance),
        cmocka_unit_test(test_1_5_portable_kernel),
        cmocka_unit_test(test_1_5b_avx2_kernel),
        cmocka_unit_test(test_1_6_winograd_tiling),
        cmocka_unit_test(test_1_7_vector_sets_agree),
        cmocka_unit_test(test_2_1_bad_model_json),
        cmocka_unit_test(test_2_2_truncated_shard),
        cmocka_unit_test(test_2_3_unknown_layer),
        cmocka_unit_test(test_2_4_truncation_loop),
        cmocka_unit_test(test_3_1_one_pixel),
        cmocka_unit_test(test_3_2_grey_and_16bit),
        cmocka_unit_test(test_3_3_alpha),
        cmocka_unit_test(test_3_4_over_limit_before_decode),
        cmocka_unit_test(test_3_4b_output_over_limit),
        cmocka_unit_test(test_3_5_available),
        cmocka_unit_test(test_3_6_wrong_scale),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
