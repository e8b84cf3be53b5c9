/* SPDX-License-Identifier: MIT */
/* fuzz_prompt.c -- libFuzzer target for the prompt compiler: a spec as a
 * client sends it (POST /v1/jobs "spec", or a file for `imagegate prompt`),
 * loaded and rendered for one backend of each grammar, each render then
 * linted; bytes that are no spec are linted as a raw prompt instead. Any
 * bytes give a spec or an error with its code, never a crash, an
 * over-read or a leak; a render that succeeds has a JSON form with a
 * prompt in it. The CLIP tokenizer runs with OpenAI's merges when IG_DEPS
 * points at the installed ones (the CTest test sets it), an estimate
 * otherwise. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "prompt/prompt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char backends[] =
    "backends:\n"
    "  - name: gpt\n"
    "    adapter: openai\n"
    "    endpoint: http://127.0.0.1:1/v1\n"
    "    model: gpt-image-1\n"
    "    contract: {classes: [generate, edit], sizes: [1024x1024, 1536x1024, 1024x1536],"
    " supports: [n, transparency, reference_images], grammar: natural-language,"
    " tier: none, license: {id: proprietary, flags: [commercial]}, price: {model: free},"
    " prompt_max_chars: 32000}\n"
    "  - name: mj\n"
    "    adapter: replicate\n"
    "    endpoint: http://127.0.0.1:1\n"
    "    model: midjourney-v7\n"
    "    contract: {classes: [generate], supports: [seed, reference_images],"
    " grammar: parameter-flag, tier: none, license: {id: proprietary, flags: [commercial]},"
    " price: {model: free}}\n"
    "  - name: flux\n"
    "    adapter: bfl\n"
    "    endpoint: http://127.0.0.1:1\n"
    "    model: flux-2-pro\n"
    "    contract: {classes: [generate, edit], min_side: 256, max_side: 4096,"
    " size_multiple: 16, max_pixels: 4194304, supports: [seed, reference_images],"
    " grammar: natural-language, tier: perceptual, license: {id: proprietary,"
    " flags: [commercial]}, price: {model: free}}\n"
    "  - name: sd15\n"
    "    adapter: a1111\n"
    "    endpoint: http://127.0.0.1:1\n"
    "    model: v1-5-pruned-emaonly\n"
    "    contract: {classes: [generate], min_side: 256, max_side: 1024, size_multiple: 64,"
    " supports: [seed, negative_prompt, n], grammar: weight-syntax, tier: perceptual,"
    " license: {id: CreativeML-OpenRAIL-M, flags: [commercial]}, price: {model: free}}\n"
    "  - name: comfy\n"
    "    adapter: comfyui\n"
    "    endpoint: http://127.0.0.1:1\n"
    "    model: sdxl\n"
    "    contract: {classes: [generate], supports: [seed, negative_prompt],"
    " aspects: ['1:1', '16:9', '9:16'], grammar: weight-syntax, tier: bytes,"
    " license: {id: openrail++, flags: [commercial]}, price: {model: free}}\n"
    "ladders:\n"
    "  - {name: gen, class: generate, rungs: [{backend: gpt}]}\n";

static struct ig_config *cfg;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cfg) {
        struct ig_config_diags d = {0};
        struct ig_error err = {0};
        cfg = ig_config_load("fuzz.yaml", backends, sizeof backends - 1, &d, &err);
        ig_config_diags_free(&d);
        if (!cfg)
            abort();   /* the target's own config: a bug here, not a finding */
    }
    struct ig_config_diags d = {0};
    struct ig_error err = {0};
    struct prompt_spec *spec = prompt_spec_load("fuzz", (const char *)data, size, &d, &err);
    ig_config_diags_free(&d);
    if (!spec) {
        if (!err.code[0])
            abort();
        char *raw = malloc(size + 1);
        if (!raw)
            return 0;
        memcpy(raw, data, size);
        raw[size] = '\0';
        for (size_t i = 0; i < cfg->n_backends; i++) {
            struct prompt_lint lint;
            prompt_lint_text(raw, NULL, &cfg->backends[i], NULL, &lint);
        }
        free(raw);
        return 0;
    }
    struct prompt_options opt;
    prompt_options_init(&opt);
    for (size_t i = 0; i < cfg->n_backends; i++) {
        struct prompt_render r;
        struct ig_error rerr = {0};
        if (prompt_render(spec, &cfg->backends[i], &opt, &r, &rerr) == 0) {
            json_t *j = prompt_render_json(&r);
            if (!j || !json_is_string(json_object_get(j, "prompt")))
                abort();
            json_decref(j);
            struct prompt_lint lint;
            prompt_lint_text(r.prompt, r.negative_prompt, &cfg->backends[i], NULL, &lint);
        } else if (!rerr.code[0]) {
            abort();
        }
        prompt_render_free(&r);
    }
    prompt_spec_free(spec);
    return 0;
}
