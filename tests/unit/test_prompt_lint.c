/* SPDX-License-Identifier: MIT */
/* test_prompt_lint.c -- lint: a raw prompt's grammar is detected, and each
 * mismatch with the target backend is a finding at the right level. */
#include "testutil.h"
#include "core/config.h"
#include "prompt/prompt.h"

#include <string.h>

static struct ig_config *cfg, *extra;

static int
setup(void **state)
{
    (void)state;
    struct ig_error err = {0};
    cfg = ig_config_load_default(NULL, &err);
    extra = ig_config_load_file(tu_data("prompt/backends.yaml"), NULL, &err);
    return cfg && extra ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    ig_config_free(cfg);
    ig_config_free(extra);
    return 0;
}

static const struct prompt_lint *
lint(const char *text, const char *neg, const char *be)
{
    static struct prompt_lint l;
    const struct ig_backend_cfg *b = ig_config_backend(cfg, be);
    if (!b)
        b = ig_config_backend(extra, be);
    assert_non_null(b);
    prompt_lint_text(text, neg, b, NULL, &l);
    return &l;
}

static int
finding(const struct prompt_lint *l, enum prompt_lint_level lv, const char *code)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].level == lv && strcmp(l->items[i].code, code) == 0)
            return 1;
    return 0;
}

static const char prose[] =
    "A lighthouse stands on a rocky cliff above a stormy sea at dusk. Waves crash against the "
    "rocks below while a warm beam of light sweeps across low clouds. In the foreground a "
    "small wooden boat is pulled up on the shingle, its paint peeling, and a lone figure in a "
    "yellow raincoat walks along the shore towards the tower, leaving footprints in the wet "
    "sand as gulls circle overhead in the fading light of the evening.";

static void
test_detect(void **state)
{
    (void)state;
    assert_int_equal(lint("masterpiece, (red hair:1.2), 1girl", NULL, "openai")->detected,
                     IG_GRAMMAR_WEIGHT_SYNTAX);
    assert_int_equal(lint("cat, sofa, window light, film grain", NULL, "openai")->detected,
                     IG_GRAMMAR_WEIGHT_SYNTAX);
    assert_int_equal(lint("a cat on a sofa --ar 16:9 --v 7", NULL, "openai")->detected,
                     IG_GRAMMAR_PARAMETER_FLAG);
    assert_int_equal(lint(prose, NULL, "openai")->detected, IG_GRAMMAR_NATURAL_LANGUAGE);
    assert_int_equal(lint("a cat", NULL, "openai")->detected, IG_GRAMMAR_NONE);
}

static void
test_natural_target(void **state)
{
    (void)state;
    const struct prompt_lint *l = lint("a (red:1.3) car on a road", NULL, "fal-flux-dev");
    assert_true(finding(l, PROMPT_LINT_ERROR, "weight_syntax"));
    assert_true(prompt_lint_has_error(l));
    l = lint("a red car --ar 16:9", NULL, "gemini");
    assert_true(finding(l, PROMPT_LINT_ERROR, "flags"));
    l = lint("a red car", "blurry, lowres", "fal-flux-dev");
    assert_true(finding(l, PROMPT_LINT_ERROR, "negative_prompt"));
    l = lint("a red car", "blurry", "stability-core");   /* SD 3.5 takes one */
    assert_false(prompt_lint_has_error(l));
    l = lint("masterpiece, best quality, 8k, red car", NULL, "openai");
    assert_true(finding(l, PROMPT_LINT_WARNING, "shorthand"));
    assert_false(prompt_lint_has_error(l));
    l = lint(prose, NULL, "fal-flux-dev");
    assert_int_equal(l->n, 0);
    l = lint("A red car. Negative prompt: blur", NULL, "fal-flux-dev");
    assert_true(finding(l, PROMPT_LINT_ERROR, "negative_prompt"));
}

static void
test_length(void **state)
{
    (void)state;
    char big[1200];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (size_t i = 10; i < sizeof big - 1; i += 10)
        big[i] = ' ';
    assert_true(finding(lint(big, NULL, "dalle2"), PROMPT_LINT_ERROR, "too_long"));
    assert_false(finding(lint(big, NULL, "openai"), PROMPT_LINT_ERROR, "too_long"));
    assert_true(finding(lint("", NULL, "openai"), PROMPT_LINT_ERROR, "empty_prompt"));
}

static void
test_clip_target(void **state)
{
    (void)state;
    /* Prose past the CLIP window is an error for a CLIP model. */
    const struct prompt_lint *l = lint(prose, NULL, "a1111-sdxl");
    assert_true(l->clip_tokens > 75);
    assert_true(finding(l, PROMPT_LINT_ERROR, "clip_window"));
    l = lint("a cat, sofa, (window light:1.2)", NULL, "a1111-sdxl");
    assert_int_equal(l->n, 0);
    l = lint("a cat, sofa\nNegative prompt: dogs", NULL, "a1111-sdxl");
    assert_true(finding(l, PROMPT_LINT_ERROR, "negative_prompt"));
    l = lint("a cat --no dogs", NULL, "comfyui-sdxl");
    assert_true(finding(l, PROMPT_LINT_ERROR, "flags"));
    l = lint("a (cat:1.4)", NULL, "midjourney");
    assert_true(finding(l, PROMPT_LINT_ERROR, "weight_syntax"));
    l = lint("a cat --ar 3:2 --no dogs", "dogs", "midjourney");
    assert_false(prompt_lint_has_error(l));
}

static void
test_hostile(void **state)
{
    (void)state;
    static const char *const texts[] = {"((((((((((", "))))]]]]", "--", "::::", "\\", "(:)",
                                        "(x:)", "(x:.)", "--ar", "\xff\xfe\xc3", "<lora:",
                                        "a\tb\nc"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        lint(texts[i], texts[i], "a1111-sdxl");
        lint(texts[i], NULL, "openai");
        lint(texts[i], NULL, "midjourney");
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_natural_target),
        cmocka_unit_test(test_length),
        cmocka_unit_test(test_clip_target),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
