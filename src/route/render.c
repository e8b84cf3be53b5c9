/* SPDX-License-Identifier: MIT */
/* render.c -- the job engine's prompt step over the prompt compiler: a job
 * that brings a prompt spec gets it rendered into each rung's grammar and
 * size rules, with the compiler's notes (dropped, translated, truncated)
 * carried into the provenance. A raw prompt passes as the client wrote it;
 * its size still has to be one the rung accepts, or the adapter refuses. */
#include "route/render.h"
#include "core/alloc.h"
#include "core/config.h"
#include "prompt/prompt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
route_render_spec(void *ud, const struct ig_backend_cfg *b, const json_t *request,
                  struct route_render *out, struct ig_error *err)
{
    (void)ud;
    memset(out, 0, sizeof *out);
    const json_t *spec_json = json_object_get(request, "spec");
    if (!json_is_object(spec_json)) {
        const char *p = json_string_value(json_object_get(request, "prompt"));
        const char *neg = json_string_value(json_object_get(request, "negative_prompt"));
        const char *size = json_string_value(json_object_get(request, "size"));
        out->prompt = p ? ig_strdup(p) : NULL;
        out->negative_prompt = neg ? ig_strdup(neg) : NULL;
        struct ig_size wh = {0, 0};
        if (size && ig_size_parse(size, &wh) != 0)
            wh.w = wh.h = 0;
        out->width = wh.w;
        out->height = wh.h;
        return 0;
    }
    char *text = json_dumps(spec_json, JSON_COMPACT);
    if (!text)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    struct prompt_spec *spec = prompt_spec_load("spec", text, strlen(text), NULL, err);
    free(text);
    if (!spec)
        return -1;
    struct prompt_options opt;
    prompt_options_init(&opt);
    struct prompt_render r;
    memset(&r, 0, sizeof r);
    int rc = prompt_render(spec, b, &opt, &r, err);
    if (rc == 0) {
        out->prompt = r.prompt ? ig_strdup(r.prompt) : NULL;
        out->negative_prompt = r.negative_prompt ? ig_strdup(r.negative_prompt) : NULL;
        out->width = r.params.width;
        out->height = r.params.height;
        out->has_seed = r.params.has_seed;
        out->seed = (long long)r.params.seed;
        json_t *full = prompt_render_json(&r);
        out->notes = json_incref(json_object_get(full, "notes"));
        out->params = json_incref(json_object_get(full, "params"));
        json_decref(full);
        if ((r.prompt && !out->prompt) || (r.negative_prompt && !out->negative_prompt))
            rc = ig_error_set(err, 500, "out_of_memory", "out of memory");
    }
    prompt_render_free(&r);
    prompt_spec_free(spec);
    return rc;
}
