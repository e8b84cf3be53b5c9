/* SPDX-License-Identifier: MIT */
/* test_lora_inspect.c -- every architecture and key convention classified
 * from small files built here with real layer widths at rank 4; alpha read
 * from F32/F16/BF16 scalars; each named finding; the router's fit check. */
#include "testutil.h"
#include "lora_fixtures.h"
#include "core/config.h"
#include "lora/lora.h"

#include <stdio.h>
#include <string.h>

struct result {
    struct lora_st st;
    struct lora_info info;
    unsigned char *bytes;
};

static void
run(struct stw *w, struct result *r)
{
    size_t len;
    struct ig_error e = {0};
    r->bytes = stw_bytes(w, &len);
    stw_free(w);
    if (lora_st_parse(r->bytes, len, NULL, &r->st, &e) != 0)
        fail_msg("parse: %s [%s]", e.message, e.code);
    assert_int_equal(lora_inspect(&r->st, &r->info, &e), 0);
}

static void
done(struct result *r)
{
    lora_info_free(&r->info);
    lora_st_free(&r->st);
    ig_free(r->bytes);
}

static int
has_finding(const struct lora_info *info, const char *code)
{
    for (size_t i = 0; i < info->findings.n; i++)
        if (!strcmp(info->findings.v[i].code, code))
            return 1;
    return 0;
}

static void
expect(struct stw *w, enum lora_arch arch, enum lora_conv conv)
{
    struct result r;
    run(w, &r);
    if (r.info.arch != arch || r.info.conv != conv)
        fail_msg("got %s / %s, wanted %s / %s", lora_arch_name(r.info.arch),
                 lora_conv_name(r.info.conv), lora_arch_name(arch), lora_conv_name(conv));
    assert_int_equal(r.info.rank_dominant, 4);
    assert_false(has_finding(&r.info, "unmatched_keys"));
    assert_false(has_finding(&r.info, "unpaired_module"));
    done(&r);
}

/* ---- Architectures and conventions ---------------------------------------- */

static void
test_sd15_kohya(void **state)
{
    (void)state;
    struct stw w;
    stw_init(&w);
    const char *k = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k";
    stw_pair(&w, k, 0, 768, 320, 4);
    stw_alpha(&w, k, 4, "F32");
    stw_pair(&w, "lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q", 0, 1280,
             1280, 4);
    stw_pair(&w, "lora_te_text_model_encoder_layers_0_self_attn_q_proj", 0, 768, 768, 4);
    expect(&w, LORA_ARCH_SD15, LORA_CONV_KOHYA);
}

static void
test_sdxl_kohya(void **state)
{
    (void)state;
    struct stw w;
    stw_init(&w);
    stw_pair(&w, "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", 0, 2048, 640, 4);
    stw_pair(&w, "lora_unet_output_blocks_0_1_transformer_blocks_0_attn1_to_q", 0, 1280, 1280, 4);
    stw_pair(&w, "lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 0, 768, 768, 4);
    stw_pair(&w, "lora_te2_text_model_encoder_layers_0_self_attn_q_proj", 0, 1280, 1280, 4);
    stw_meta(&w, "ss_base_model_version", "sdxl_base_v1-0");
    expect(&w, LORA_ARCH_SDXL, LORA_CONV_KOHYA);
}

static void
test_sdxl_peft(void **state)
{
    (void)state;
    struct stw w;
    stw_init(&w);
    stw_pair(&w, "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k", 1, 2048, 640,
             4);
    stw_pair(&w, "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q", 1, 640, 640,
             4);
    stw_pair(&w, "text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj", 1, 1280, 1280, 4);
    expect(&w, LORA_ARCH_SDXL, LORA_CONV_PEFT);
}

static void
test_sdxl_lycoris(void **state)
{
    (void)state;
    struct stw w;
    stw_init(&w);
    const char *k = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k";
    char n[256];
    snprintf(n, sizeof n, "%s.hada_w1_a", k);
    stw_mat(&w, n, 640, 4);
    snprintf(n, sizeof n, "%s.hada_w1_b", k);
    stw_mat(&w, n, 4, 2048);
    snprintf(n, sizeof n, "%s.hada_w2_a", k);
    stw_mat(&w, n, 640, 4);
    snprintf(n, sizeof n, "%s.hada_w2_b", k);
    stw_mat(&w, n, 4, 2048);
    stw_alpha(&w, k, 4, "F16");
    expect(&w, LORA_ARCH_SDXL, LORA_CONV_LYCORIS);
}

static void
test_sd3_kohya(void **state)
{
    (void)state;
    struct stw w;
    stw_init(&w);
    stw_pair(&w, "lora_unet_joint_blocks_0_x_block_attn_qkv", 0, 1536, 4608, 4);
    stw_pair(&w, "lora_unet_joint_blocks_0_context_block_attn_qkv", 0, 1536, 4608, 4);
    stw_pair(&w, "lora_unet_joint_blocks_23_x_block_mlp_fc2", 0, 6144, 1536, 4);
    expect(&w, LORA_ARCH_SD3, LORA_CONV_KOHYA);
}

static void
test_sd3_peft(void **state)
{
    (void)state;
    struct stw w;
    stw_init(&w);
    stw_pair(&w, "transformer.transformer_blocks.0.attn.to_q", 1, 1536, 1536, 4);
    stw_pair(&w, "transformer.transformer_blocks.0.attn.add_q_proj", 1, 1536, 1536, 4);
    stw_pair(&w, "transformer.transformer_blocks.23.ff.net.2", 1, 6144, 1536, 4);
    expect(&w, LORA_ARCH_SD3, LORA_CONV_PEFT);
}

static void
flux1_kohya(struct stw *w)
{
    stw_init(w);
    const char *q = "lora_unet_double_blocks_0_img_attn_qkv";
    stw_pair(w, q, 0, 3072, 9216, 4);
    stw_alpha(w, q, 4, "BF16");
    stw_pair(w, "lora_unet_double_blocks_18_img_mlp_0", 0, 3072, 12288, 4);
    stw_pair(w, "lora_unet_double_blocks_18_img_mod_lin", 0, 3072, 18432, 4);
    stw_pair(w, "lora_unet_single_blocks_37_linear1", 0, 3072, 21504, 4);
    stw_pair(w, "lora_unet_single_blocks_37_linear2", 0, 15360, 3072, 4);
}

static void
test_flux1_kohya(void **state)
{
    (void)state;
    struct stw w;
    flux1_kohya(&w);
    expect(&w, LORA_ARCH_FLUX1, LORA_CONV_KOHYA);
}

static void
test_flux1_peft(void **state)
{
    (void)state;
    struct stw w;
    stw_init(&w);
    stw_pair(&w, "transformer.transformer_blocks.0.attn.to_q", 1, 3072, 3072, 4);
    stw_pair(&w, "transformer.transformer_blocks.18.ff.net.0.proj", 1, 3072, 12288, 4);
    stw_pair(&w, "transformer.transformer_blocks.18.norm1.linear", 1, 3072, 18432, 4);
    stw_pair(&w, "transformer.single_transformer_blocks.37.proj_out", 1, 15360, 3072, 4);
    expect(&w, LORA_ARCH_FLUX1, LORA_CONV_PEFT);
}

static void
flux2_bfl(struct stw *w, long h, int dbl, int sgl)
{
    char n[256];
    stw_init(w);
    snprintf(n, sizeof n, "diffusion_model.double_blocks.%d.img_attn.qkv", dbl - 1);
    stw_pair(w, n, 1, h, 3 * h, 4);
    snprintf(n, sizeof n, "diffusion_model.double_blocks.%d.img_mlp.0", dbl - 1);
    stw_pair(w, n, 1, h, 6 * h, 4);
    snprintf(n, sizeof n, "diffusion_model.single_blocks.%d.linear1", sgl - 1);
    stw_pair(w, n, 1, h, 9 * h, 4);
    snprintf(n, sizeof n, "diffusion_model.single_blocks.%d.linear2", sgl - 1);
    stw_pair(w, n, 1, 4 * h, h, 4);
}

static void
test_flux2_dev_bfl(void **state)
{
    (void)state;
    struct stw w;
    flux2_bfl(&w, 6144, 8, 48);
    expect(&w, LORA_ARCH_FLUX2_DEV, LORA_CONV_BFL);
}

static void
test_flux2_dev_peft(void **state)
{
    (void)state;
    struct stw w;
    stw_init(&w);
    stw_pair(&w, "transformer.transformer_blocks.7.attn.to_q", 1, 6144, 6144, 4);
    stw_pair(&w, "transformer.transformer_blocks.7.ff.linear_in", 1, 6144, 36864, 4);
    stw_pair(&w, "transformer.single_transformer_blocks.47.attn.to_qkv_mlp_proj", 1, 6144, 55296,
             4);
    expect(&w, LORA_ARCH_FLUX2_DEV, LORA_CONV_PEFT);
}

static void
test_klein4b_bfl(void **state)
{
    (void)state;
    struct stw w;
    flux2_bfl(&w, 3072, 5, 20);
    expect(&w, LORA_ARCH_FLUX2_KLEIN_4B, LORA_CONV_BFL);
}

static void
test_klein4b_kohya_names(void **state)
{
    (void)state;
    /* Kohya-style FLUX.2 files reuse FLUX.1's names: only widths differ. */
    struct stw w;
    stw_init(&w);
    stw_pair(&w, "lora_unet_double_blocks_4_img_attn_qkv", 0, 3072, 9216, 4);
    stw_pair(&w, "lora_unet_single_blocks_19_linear1", 0, 3072, 27648, 4);
    stw_pair(&w, "lora_unet_single_blocks_19_linear2", 0, 12288, 3072, 4);
    expect(&w, LORA_ARCH_FLUX2_KLEIN_4B, LORA_CONV_KOHYA);
}

static void
test_klein9b_bfl(void **state)
{
    (void)state;
    struct stw w;
    flux2_bfl(&w, 4096, 8, 24);
    expect(&w, LORA_ARCH_FLUX2_KLEIN_9B, LORA_CONV_BFL);
}

/* ---- Alpha, scale, findings ----------------------------------------------- */

static void
alpha_case(const char *dtype, float alpha)
{
    struct stw w;
    stw_init(&w);
    stw_pair(&w, "lora_unet_double_blocks_0_img_attn_qkv", 0, 3072, 9216, 8);
    stw_alpha(&w, "lora_unet_double_blocks_0_img_attn_qkv", alpha, dtype);
    struct result r;
    run(&w, &r);
    assert_true(r.info.alpha_known);
    assert_float_equal(r.info.alpha, alpha, 1e-6);
    assert_float_equal(r.info.scale, alpha / 8.0, 1e-6);
    assert_false(has_finding(&r.info, "alpha_missing"));
    done(&r);
}

static void
test_alpha_dtypes(void **state)
{
    (void)state;
    alpha_case("F32", 3.0f);
    alpha_case("F16", 4.0f);
    alpha_case("BF16", 2.0f);
    alpha_case("F16", 0.5f);
}

static void
test_alpha_missing(void **state)
{
    (void)state;
    struct stw w;
    stw_init(&w);
    stw_pair(&w, "transformer.transformer_blocks.0.attn.to_q", 1, 3072, 3072, 4);
    stw_pair(&w, "transformer.single_transformer_blocks.37.proj_out", 1, 15360, 3072, 4);
    struct result r;
    run(&w, &r);
    assert_true(has_finding(&r.info, "alpha_missing"));
    assert_false(r.info.alpha_known);
    assert_float_equal(r.info.scale, 1.0, 0);
    assert_false(lora_findings_has_error(&r.info.findings));
    done(&r);
}

static void
test_alpha_from_metadata(void **state)
{
    (void)state;
    struct stw w;
    stw_init(&w);
    stw_pair(&w, "transformer.transformer_blocks.0.attn.to_q", 1, 3072, 3072, 16);
    stw_meta(&w, "lora_adapter_metadata", "{\"r\": 16, \"lora_alpha\": 8}");
    struct result r;
    run(&w, &r);
    assert_true(r.info.alpha_known);
    assert_string_equal(r.info.alpha_source, "metadata");
    assert_float_equal(r.info.scale, 0.5, 1e-9);
    done(&r);
}

static void
test_declared_mismatch(void **state)
{
    (void)state;
    struct stw w;
    flux1_kohya(&w);
    stw_meta(&w, "modelspec.architecture", "stable-diffusion-xl-v1-base/lora");
    stw_meta(&w, "ss_learning_rate", "0.0001");
    stw_meta(&w, "ss_num_train_images", "24");
    stw_meta(&w, "ss_resolution", "(1024, 1024)");
    struct result r;
    run(&w, &r);
    assert_int_equal(r.info.arch, LORA_ARCH_FLUX1);
    assert_int_equal(r.info.declared, LORA_ARCH_SDXL);
    assert_true(has_finding(&r.info, "declared_base_mismatch"));
    assert_true(lora_findings_has_error(&r.info.findings));
    json_t *j = lora_info_json(&r.info);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "architecture")), "FLUX.1");
    assert_string_equal(json_string_value(json_object_get(j, "convention")), "kohya");
    json_t *meta = json_object_get(j, "metadata");
    assert_string_equal(json_string_value(json_object_get(meta, "learning_rate")), "0.0001");
    assert_string_equal(json_string_value(json_object_get(meta, "dataset_size")), "24");
    assert_string_equal(json_string_value(json_object_get(meta, "resolution")), "(1024, 1024)");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "rank"), "dominant")),
                     4);
    assert_true(json_is_array(json_object_get(j, "findings")));
    json_decref(j);
    done(&r);
}

static void
test_mixed_ranks_and_unmatched(void **state)
{
    (void)state;
    struct stw w;
    stw_init(&w);
    stw_pair(&w, "lora_unet_double_blocks_0_img_attn_qkv", 0, 3072, 9216, 4);
    stw_pair(&w, "lora_unet_double_blocks_1_img_attn_qkv", 0, 3072, 9216, 4);
    stw_pair(&w, "lora_unet_single_blocks_37_linear1", 0, 3072, 21504, 16);
    stw_mat(&w, "model.diffusion_model.foo.weight", 4, 4);
    struct result r;
    run(&w, &r);
    assert_true(has_finding(&r.info, "mixed_ranks"));
    assert_true(has_finding(&r.info, "unmatched_keys"));
    assert_int_equal(r.info.rank_min, 4);
    assert_int_equal(r.info.rank_max, 16);
    assert_int_equal(r.info.rank_dominant, 4);
    assert_int_equal(r.info.unmatched, 1);
    done(&r);
}

static void
test_unpaired_and_empty(void **state)
{
    (void)state;
    struct stw w;
    stw_init(&w);
    stw_mat(&w, "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight", 4, 3072);
    struct result r;
    run(&w, &r);
    assert_true(has_finding(&r.info, "unpaired_module"));
    done(&r);

    stw_init(&w);
    stw_mat(&w, "some.other.weight", 4, 4);
    run(&w, &r);
    assert_true(has_finding(&r.info, "no_lora_modules"));
    assert_true(lora_findings_has_error(&r.info.findings));
    done(&r);
}

/* ---- Router --------------------------------------------------------------- */

static void
test_fits_backend(void **state)
{
    (void)state;
    struct stw w;
    flux1_kohya(&w);
    stw_meta(&w, "modelspec.architecture", "flux-1-dev/lora");
    struct result r;
    run(&w, &r);
    char why[256];
    assert_int_equal(lora_fits_backend(&r.info, "FLUX.2 [dev]", why, sizeof why), 0);
    assert_string_equal(why, "trained on FLUX.1 [dev]; this backend runs FLUX.2 [dev]; retrain");
    assert_int_equal(lora_fits_backend(&r.info, "black-forest-labs/FLUX.2-klein-4B", why,
                                       sizeof why), 0);
    assert_non_null(strstr(why, "FLUX.2 [klein] 4B; retrain"));
    assert_int_equal(lora_fits_backend(&r.info, "black-forest-labs/FLUX.1-dev", why, sizeof why),
                     1);
    assert_int_equal(lora_fits_backend(&r.info, NULL, why, sizeof why), 0);
    assert_non_null(strstr(why, "declares no base_model"));
    assert_int_equal(lora_fits_backend(&r.info, "midjourney-v7", why, sizeof why), 0);
    done(&r);
}

/* The backend contract's optional base_model is what the router will pass. */
static void
test_fits_backend_from_config(void **state)
{
    (void)state;
    static const char cfg_text[] =
        "backends:\n"
        "  - name: flux2\n"
        "    adapter: openai\n"
        "    endpoint: http://127.0.0.1:9/v1\n"
        "    credential: env:KEY\n"
        "    contract:\n"
        "      classes: [generate]\n"
        "      sizes: [1024x1024]\n"
        "      grammar: natural-language\n"
        "      tier: perceptual\n"
        "      base_model: black-forest-labs/FLUX.2-dev\n"
        "      license: {id: proprietary, flags: [commercial]}\n"
        "      price: {model: per-image, usd: 0.04}\n";
    struct ig_config_diags diags = {0};
    struct ig_error e = {0};
    struct ig_config *cfg = ig_config_load("t.yaml", cfg_text, sizeof cfg_text - 1, &diags, &e);
    assert_non_null(cfg);
    assert_string_equal(cfg->backends[0].contract.base_model, "black-forest-labs/FLUX.2-dev");
    struct stw w;
    flux1_kohya(&w);
    struct result r;
    run(&w, &r);
    char why[256];
    assert_int_equal(lora_fits_backend(&r.info, cfg->backends[0].contract.base_model, why,
                                       sizeof why), 0);
    assert_string_equal(why, "trained on FLUX.1 [dev]; this backend runs FLUX.2 [dev]; retrain");
    done(&r);
    ig_config_free(cfg);
    ig_config_diags_free(&diags);

    char bad[sizeof cfg_text + 16];
    snprintf(bad, sizeof bad, "%s", cfg_text);
    char *p = strstr(bad, "black-forest-labs/FLUX.2-dev");
    memcpy(p, "[a, b]                      ", 28);
    assert_null(ig_config_load("t.yaml", bad, strlen(bad), &diags, &e));
    int found = 0;
    for (size_t i = 0; i < diags.n; i++)
        found |= diags.items[i].line == 11 && strstr(diags.items[i].message, "base_model") != NULL;
    assert_true(found);
    ig_config_diags_free(&diags);
}

static void
test_arch_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        enum lora_arch a;
    } cases[] = {
        {"sd_v1", LORA_ARCH_SD15}, {"runwayml/stable-diffusion-v1-5", LORA_ARCH_SD15},
        {"sdxl_base_v1-0", LORA_ARCH_SDXL}, {"stable-diffusion-xl-v1-base/lora", LORA_ARCH_SDXL},
        {"stable-diffusion-3-5-large/lora", LORA_ARCH_SD3}, {"5-large", LORA_ARCH_SD3},
        {"flux1", LORA_ARCH_FLUX1}, {"flux-1-schnell/lora", LORA_ARCH_FLUX1},
        {"flux2", LORA_ARCH_FLUX2_DEV}, {"black-forest-labs/FLUX.2-dev", LORA_ARCH_FLUX2_DEV},
        {"flux2_klein_4b", LORA_ARCH_FLUX2_KLEIN_4B},
        {"black-forest-labs/FLUX.2-klein-base-9B", LORA_ARCH_FLUX2_KLEIN_9B},
        {"chroma", LORA_ARCH_UNKNOWN}, {"", LORA_ARCH_UNKNOWN}, {"gpt-image-1", LORA_ARCH_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (lora_arch_parse(cases[i].s) != cases[i].a)
            fail_msg("'%s' parsed as %s", cases[i].s, lora_arch_name(lora_arch_parse(cases[i].s)));
}

/* Every allocation in parse + inspect + JSON fails in turn, without leaks. */
static void
test_alloc_failures(void **state)
{
    (void)state;
    struct stw w;
    flux1_kohya(&w);
    size_t len;
    unsigned char *b = stw_bytes(&w, &len);
    stw_free(&w);
    ig_alloc_fail_at(0);
    for (unsigned long nth = 1;; nth++) {
        struct lora_st st;
        struct lora_info info;
        struct ig_error e = {0};
        ig_alloc_fail_at(nth);
        int rc = lora_st_parse(b, len, NULL, &st, &e);
        if (rc == 0) {
            rc = lora_inspect(&st, &info, &e);
            if (rc == 0)
                lora_info_free(&info);
            lora_st_free(&st);
        }
        unsigned long made = ig_alloc_fail_at(0);
        if (rc == 0 && made < nth)
            break;
        assert_true(nth < 10000);
    }
    ig_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sd15_kohya),       cmocka_unit_test(test_sdxl_kohya),
        cmocka_unit_test(test_sdxl_peft),        cmocka_unit_test(test_sdxl_lycoris),
        cmocka_unit_test(test_sd3_kohya),        cmocka_unit_test(test_sd3_peft),
        cmocka_unit_test(test_flux1_kohya),      cmocka_unit_test(test_flux1_peft),
        cmocka_unit_test(test_flux2_dev_bfl),    cmocka_unit_test(test_flux2_dev_peft),
        cmocka_unit_test(test_klein4b_bfl),      cmocka_unit_test(test_klein4b_kohya_names),
        cmocka_unit_test(test_klein9b_bfl),      cmocka_unit_test(test_alpha_dtypes),
        cmocka_unit_test(test_alpha_missing),    cmocka_unit_test(test_alpha_from_metadata),
        cmocka_unit_test(test_declared_mismatch),
        cmocka_unit_test(test_mixed_ranks_and_unmatched),
        cmocka_unit_test(test_unpaired_and_empty),
        cmocka_unit_test(test_fits_backend),
        cmocka_unit_test(test_fits_backend_from_config),     cmocka_unit_test(test_arch_parse),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
