/* SPDX-License-Identifier: MIT */
/* test_lora_lint.c -- training-spec lint: spec errors at LINE:COL, the
 * trainer matrix, rank/alpha/learning rate, triggers, a LoRA to resume that
 * does not fit, and dataset folders assembled from the real test photos. */
#include "testutil.h"
#include "lora_fixtures.h"
#include "image/image.h"
#include "lora/lora.h"
#include "validate/metric.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static int
setup(void **state)
{
    (void)state;
    struct ig_error e;
    snprintf(dir, sizeof dir, "/tmp/ig-lora-lint-XXXXXX");
    if (!mkdtemp(dir) || img_init(&e) != 0)
        return -1;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *
put(const char *name, const void *data, size_t len)
{
    static char path[4][512];
    static int slot;
    char *p = path[slot++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    return p;
}

static const char *
put_text(const char *name, const char *text)
{
    return put(name, text, strlen(text));
}

static void
copy_photo(const char *sub, const char *photo, const char *as)
{
    size_t len;
    char *b = tu_read(tu_photo(photo), &len);
    char name[300];
    snprintf(name, sizeof name, "%s/%s", sub, as);
    put(name, b, len);
    ig_free(b);
}

static void
mksub(const char *sub)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    mkdir(p, 0755);
}

static int
count(const struct lora_findings *f, const char *code)
{
    int n = 0;
    for (size_t i = 0; i < f->n; i++)
        n += !strcmp(f->v[i].code, code);
    return n;
}

static const struct lora_finding *
find(const struct lora_findings *f, const char *code)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->v[i].code, code))
            return &f->v[i];
    return NULL;
}

static void
lint_text(const char *yaml, const char *dataset, struct lora_findings *f)
{
    const char *spec = put_text("spec.yaml", yaml);
    struct lora_lint_opts o = {.dataset_dir = dataset};
    struct ig_error e = {0};
    if (lora_lint(spec, &o, f, &e) != 0)
        fail_msg("lint: %s [%s]", e.message, e.code);
}

static void
spec_error(const char *yaml, const char *where, const char *what)
{
    const char *spec = put_text("bad.yaml", yaml);
    struct lora_findings f;
    struct ig_error e = {0};
    assert_int_equal(lora_lint(spec, NULL, &f, &e), -1);
    assert_string_equal(e.code, "bad_spec");
    char want[600];
    snprintf(want, sizeof want, "bad.yaml:%s: %s", where, what);
    if (!strstr(e.message, want))
        fail_msg("'%s' not in '%s'", want, e.message);
}

static void
test_spec_errors(void **state)
{
    (void)state;
    spec_error("base_model: flux.1-dev\ntrainer: kohya\ncolour: blue\n", "3:1",
               "unknown key 'colour' in the spec");
    spec_error("base_model: flux.1-dev\ntrainer: kohya\nrank: abc\n", "3:7",
               "'rank' must be a positive integer, not 'abc'");
    spec_error("base_model: flux.1-dev\ntrainer: kohya\nlearning_rate: -1\n", "3:16",
               "'learning_rate' must be a positive number");
    spec_error("base_model: [a, b]\ntrainer: kohya\n", "1:13", "'base_model' must be a string");
    spec_error("base_model: x\ntrainer: kohya\ndataset: here\n", "3:10",
               "dataset must be a mapping");
    spec_error("base_model: x\ntrainer: kohya\ndataset:\n  pth: a\n", "4:3",
               "unknown key 'pth' in dataset");
    spec_error("trainer: kohya\n", "1:1", "missing required key 'base_model'");
    spec_error("base_model: x\n  trainer: [\n", "2:10", "mapping values are not allowed");
    spec_error("- a\n- b\n", "1:1", "the spec must be a mapping");
    struct lora_findings f;
    struct ig_error e = {0};
    assert_int_equal(lora_lint("/nonexistent/spec.yaml", NULL, &f, &e), -1);
    assert_string_equal(e.code, "bad_spec");
}

static void
test_trainer_matrix(void **state)
{
    (void)state;
    struct lora_findings f;
    lint_text("base_model: black-forest-labs/FLUX.2-dev\ntrainer: kohya\nrank: 16\nalpha: 16\n"
              "learning_rate: 1e-4\ntrigger: zq7rvlx\n",
              NULL, &f);
    assert_int_equal(count(&f, "trainer_unsupported"), 1);
    assert_true(lora_findings_has_error(&f));
    lora_findings_free(&f);
    lint_text("base_model: black-forest-labs/FLUX.2-klein-base-4B\ntrainer: ai-toolkit\n"
              "rank: 16\nalpha: 16\nlearning_rate: 1e-4\ntrigger: zq7rvlx\n",
              NULL, &f);
    assert_false(lora_findings_has_error(&f));
    assert_int_equal(count(&f, "dataset_unchecked"), 1);
    lora_findings_free(&f);
    lint_text("base_model: midjourney\ntrainer: kohya\nrank: 4\nalpha: 4\n", NULL, &f);
    assert_int_equal(count(&f, "base_model_unknown"), 1);
    lora_findings_free(&f);
    lint_text("base_model: sdxl\ntrainer: my-own-script\nrank: 4\nalpha: 4\n", NULL, &f);
    assert_int_equal(count(&f, "trainer_unknown"), 1);
    lora_findings_free(&f);
}

static void
test_rank_alpha_lr(void **state)
{
    (void)state;
    struct lora_findings f;
    lint_text("base_model: flux1\ntrainer: kohya\ntrigger: zq7rvlx\n", NULL, &f);
    assert_int_equal(count(&f, "rank_missing"), 1);
    assert_int_equal(count(&f, "alpha_missing"), 1);
    assert_int_equal(count(&f, "lr_missing"), 1);
    lora_findings_free(&f);
    /* kijai/ComfyUI-FluxTrainer#198's 4e-4, at alpha = rank: too high. */
    lint_text("base_model: flux1\ntrainer: ai-toolkit\nrank: 16\nalpha: 16\n"
              "learning_rate: 4e-4\ntrigger: zq7rvlx\n",
              NULL, &f);
    const struct lora_finding *x = find(&f, "lr_too_high");
    assert_non_null(x);
    assert_int_equal(x->level, LORA_WARNING);
    lora_findings_free(&f);
    /* The same 4e-4 at kohya's alpha 1, rank 16 is 2.5e-5 effective: fine. */
    lint_text("base_model: flux1\ntrainer: kohya\nrank: 16\nalpha: 1\n"
              "learning_rate: 4e-4\ntrigger: zq7rvlx\n",
              NULL, &f);
    assert_null(find(&f, "lr_too_high"));
    assert_null(find(&f, "lr_too_low"));
    lora_findings_free(&f);
    lint_text("base_model: sdxl\ntrainer: kohya\nrank: 32\nalpha: 32\n"
              "learning_rate: 0.005\ntrigger: zq7rvlx\n",
              NULL, &f);
    assert_int_equal(find(&f, "lr_too_high")->level, LORA_ERROR);
    lora_findings_free(&f);
    lint_text("base_model: sdxl\ntrainer: kohya\nrank: 32\nalpha: 1\n"
              "learning_rate: 1e-5\ntrigger: zq7rvlx\n",
              NULL, &f);
    assert_non_null(find(&f, "lr_too_low"));
    lora_findings_free(&f);
    lint_text("base_model: flux1\ntrainer: ai-toolkit\nrank: 16\nalpha: 16\n"
              "learning_rate: 1.0\noptimizer: prodigy\ntrigger: zq7rvlx\n",
              NULL, &f);
    assert_null(find(&f, "lr_too_high"));
    lora_findings_free(&f);
}

static void
test_trigger(void **state)
{
    (void)state;
    struct lora_findings f;
    const char *base = "base_model: flux1\ntrainer: ai-toolkit\nrank: 16\nalpha: 16\n"
                       "learning_rate: 1e-4\n";
    char yaml[400];
    snprintf(yaml, sizeof yaml, "%strigger: dog\n", base);
    lint_text(yaml, NULL, &f);
    assert_int_equal(count(&f, "trigger_english_word"), 1);
    assert_int_equal(count(&f, "trigger_short"), 1);
    lora_findings_free(&f);
    snprintf(yaml, sizeof yaml, "%strigger: Sunset\n", base);
    lint_text(yaml, NULL, &f);
    assert_int_equal(count(&f, "trigger_english_word"), 1);
    lora_findings_free(&f);
    snprintf(yaml, sizeof yaml, "%strigger: sks\n", base);
    lint_text(yaml, NULL, &f);
    assert_int_equal(count(&f, "trigger_common"), 1);
    lora_findings_free(&f);
    snprintf(yaml, sizeof yaml, "%strigger: zq7rvlx\n", base);
    lint_text(yaml, NULL, &f);
    assert_null(find(&f, "trigger_english_word"));
    assert_null(find(&f, "trigger_common"));
    assert_null(find(&f, "dictionary_missing"));
    lora_findings_free(&f);
    lint_text(base, NULL, &f);
    assert_int_equal(count(&f, "trigger_missing"), 1);
    lora_findings_free(&f);

    const char *spec = put_text("spec.yaml", "base_model: flux1\ntrainer: kohya\ntrigger: dog\n");
    struct lora_lint_opts o = {.dict_path = "/nonexistent/words"};
    struct ig_error e = {0};
    assert_int_equal(lora_lint(spec, &o, &f, &e), 0);
    assert_int_equal(count(&f, "dictionary_missing"), 1);
    lora_findings_free(&f);
}

static void
test_resume_mismatch(void **state)
{
    (void)state;
    struct stw w;
    stw_init(&w);
    stw_pair(&w, "lora_unet_double_blocks_18_img_mod_lin", 0, 3072, 18432, 4);
    stw_pair(&w, "lora_unet_single_blocks_37_linear1", 0, 3072, 21504, 4);
    stw_meta(&w, "modelspec.architecture", "flux-1-dev/lora");
    size_t len;
    unsigned char *b = stw_bytes(&w, &len);
    stw_free(&w);
    const char *path = put("old.safetensors", b, len);
    ig_free(b);
    char yaml[600];
    snprintf(yaml, sizeof yaml,
             "base_model: black-forest-labs/FLUX.2-dev\ntrainer: ai-toolkit\nrank: 16\n"
             "alpha: 16\nlearning_rate: 1e-4\ntrigger: zq7rvlx\nresume_from: %s\n",
             path);
    struct lora_findings f;
    lint_text(yaml, NULL, &f);
    const struct lora_finding *x = find(&f, "resume_base_mismatch");
    assert_non_null(x);
    assert_non_null(strstr(x->message,
                           "trained on FLUX.1 [dev]; this backend runs FLUX.2 [dev]; retrain"));
    lora_findings_free(&f);
    put_text("junk.safetensors", "not a safetensors file at all");
    snprintf(yaml, sizeof yaml,
             "base_model: flux1\ntrainer: kohya\nresume_from: %s/junk.safetensors\n", dir);
    lint_text(yaml, NULL, &f);
    assert_non_null(find(&f, "resume_unreadable"));
    lora_findings_free(&f);
}

/* Eight different photos: captions with faults planted in three. */
static void
test_dataset_varied(void **state)
{
    (void)state;
    static const char *const photos[] = {
        "flower.png", "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg",
        "cvo9xd_keong_macan_srgb8.png", "tmshre_riaphotographs_srgb8.png",
        "u76c0g_bliznaca_srgb8.png"};
    mksub("varied");
    char name[300];
    for (size_t i = 0; i < 8; i++) {
        copy_photo("varied", photos[i], photos[i]);
        const char *dot = strrchr(photos[i], '.');
        snprintf(name, sizeof name, "varied/%.*s.txt", (int)(dot - photos[i]), photos[i]);
        if (!strcmp(photos[i], "rocket.jpg"))
            continue;
        if (!strcmp(photos[i], "coffee.png"))
            put_text(name, "zq7rvlx, cup, coffee, saucer, table, top view");
        else if (!strcmp(photos[i], "chelsea.png"))
            put_text(name, "A tabby cat looks up at the camera, zq7rvlx style, soft light.");
        else
            put_text(name, "zq7rvlx, a photograph of the subject in its natural surroundings, "
                           "taken in daylight.");
    }
    char ds[300];
    snprintf(ds, sizeof ds, "%s/varied", dir);
    struct lora_findings f;
    lint_text("base_model: flux-1-dev\ntrainer: ai-toolkit\nrank: 16\nalpha: 16\n"
              "learning_rate: 1e-4\ntrigger: zq7rvlx\n",
              ds, &f);
    assert_int_equal(count(&f, "dataset_small"), 1);
    assert_int_equal(count(&f, "caption_missing"), 1);
    assert_non_null(strstr(find(&f, "caption_missing")->message, "rocket.jpg"));
    assert_int_equal(count(&f, "caption_style"), 1);
    assert_non_null(strstr(find(&f, "caption_style")->message, "coffee.png"));
    assert_int_equal(count(&f, "trigger_not_first"), 1);
    assert_non_null(strstr(find(&f, "trigger_not_first")->message, "chelsea.png"));
    /* Everything but the 2268x1512 flower is under FLUX's 1024. */
    assert_int_equal(count(&f, "image_low_resolution"), 7);
    assert_int_equal(count(&f, "near_duplicate"), 0);
    assert_int_equal(count(&f, "lighting_uniform"), 0);
    assert_int_equal(count(&f, "background_uniform"), 0);
    assert_true(lora_findings_has_error(&f));
    lora_findings_free(&f);

    /* SDXL's CLIP wants tags: now the sentence captions are the odd ones. */
    lint_text("base_model: sdxl\ntrainer: kohya\nrank: 16\nalpha: 8\nlearning_rate: 1e-4\n"
              "trigger: zq7rvlx\nresolution: 512\n",
              ds, &f);
    assert_true(count(&f, "caption_style") >= 5);
    /* Short sides 512, 300, 400, 427, 500, 500, 500 and 1512: six under 512. */
    assert_int_equal(count(&f, "image_low_resolution"), 6);
    lora_findings_free(&f);
}

/* One photo, six times over at other sizes and encodings. */
static void
test_dataset_uniform(void **state)
{
    (void)state;
    mksub("same");
    size_t len;
    char *b = tu_read(tu_photo("flower.png"), &len);
    struct ig_error e = {0};
    struct img *im = img_decode(b, len, &(struct img_limits){0}, &e);
    ig_free(b);
    assert_non_null(im);
    static const int widths[] = {1134, 1000, 900, 800, 760, 700};
    char name[300];
    for (int i = 0; i < 6; i++) {
        struct img *r = img_resize(im, widths[i], widths[i] * 1512 / 2268, "lanczos3", &e);
        assert_non_null(r);
        struct ig_buf out = {0};
        assert_int_equal(img_encode(r, i % 2 ? IMG_FMT_JPEG : IMG_FMT_PNG, 90, NULL, &out, &e),
                         0);
        snprintf(name, sizeof name, "same/v%d.%s", i, i % 2 ? "jpg" : "png");
        put(name, out.data, out.len);
        snprintf(name, sizeof name, "same/v%d.txt", i);
        put_text(name, "zq7rvlx, a red flower in a green garden, photographed from the side.");
        ig_buf_free(&out);
        img_free(r);
    }
    img_free(im);
    char ds[300];
    snprintf(ds, sizeof ds, "%s/same", dir);
    struct lora_findings f;
    lint_text("base_model: flux-1-dev\ntrainer: ai-toolkit\nrank: 16\nalpha: 16\n"
              "learning_rate: 1e-4\ntrigger: zq7rvlx\nresolution: 512\n",
              ds, &f);
    assert_int_equal(count(&f, "near_duplicate"), 15);   /* every pair of six */
    assert_int_equal(count(&f, "lighting_uniform"), 1);
    assert_int_equal(count(&f, "background_uniform"), 1);
    /* 760x506 and 700x466 are under 512. */
    assert_int_equal(count(&f, "image_low_resolution"), 2);
    assert_int_equal(count(&f, "caption_missing"), 0);
    assert_false(lora_findings_has_error(&f));
    lora_findings_free(&f);
}

static void
test_dataset_hostile(void **state)
{
    (void)state;
    mksub("bad");
    put_text("bad/broken.png", "\x89PNG\r\n\x1a\nthis is not a png");
    put_text("bad/broken.txt", "zq7rvlx, something");
    put_text("bad/empty.jpg", "");
    put_text("bad/empty.txt", "   \n");
    char ds[300];
    snprintf(ds, sizeof ds, "%s/bad", dir);
    struct lora_findings f;
    lint_text("base_model: flux1\ntrainer: ai-toolkit\nrank: 4\nalpha: 4\ntrigger: zq7rvlx\n", ds,
              &f);
    assert_int_equal(count(&f, "image_unreadable"), 2);
    assert_int_equal(count(&f, "caption_empty"), 1);
    assert_int_equal(count(&f, "dataset_too_small"), 1);
    lora_findings_free(&f);
    /* dataset.path is relative to the spec's folder. */
    lint_text("base_model: flux1\ntrainer: ai-toolkit\ndataset:\n  path: bad\n", NULL, &f);
    assert_int_equal(count(&f, "image_unreadable"), 2);
    lora_findings_free(&f);
    lint_text("base_model: flux1\ntrainer: ai-toolkit\n", "/nonexistent/dir", &f);
    assert_int_equal(count(&f, "dataset_unreadable"), 1);
    lora_findings_free(&f);
}

static void
test_phash(void **state)
{
    (void)state;
    size_t len;
    char *b = tu_read(tu_photo("chelsea.png"), &len);
    struct ig_error e = {0};
    struct img *a = img_decode(b, len, &(struct img_limits){0}, &e);
    ig_free(b);
    b = tu_read(tu_photo("coffee.png"), &len);
    struct img *c = img_decode(b, len, &(struct img_limits){0}, &e);
    ig_free(b);
    struct img *half = img_resize(a, a->width / 2, a->height / 2, "lanczos3", &e);
    struct vd_hash ha, hc, hh;
    assert_int_equal(vd_hash(a, VD_HASH_PHASH, &ha, &e), 0);
    assert_int_equal(vd_hash(c, VD_HASH_PHASH, &hc, &e), 0);
    assert_int_equal(vd_hash(half, VD_HASH_PHASH, &hh, &e), 0);
    assert_true(vd_hash_distance(&ha, &hh) <= 4);
    assert_true(vd_hash_distance(&ha, &hc) > 16);
    img_free(a);
    img_free(c);
    img_free(half);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_errors),     cmocka_unit_test(test_trainer_matrix),
        cmocka_unit_test(test_rank_alpha_lr),   cmocka_unit_test(test_trigger),
        cmocka_unit_test(test_resume_mismatch), cmocka_unit_test(test_dataset_varied),
        cmocka_unit_test(test_dataset_uniform), cmocka_unit_test(test_dataset_hostile),
        cmocka_unit_test(test_phash),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
