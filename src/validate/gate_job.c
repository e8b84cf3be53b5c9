/* SPDX-License-Identifier: MIT */
/* gate_job.c -- the gate as the gateway's validate hook: a job request
 * becomes a task.
 *
 * What a request says about its output is what the gate checks: the aspect
 * of "size" (backends snap the exact size to their contract, so only the
 * shape is held to), "output_format", the upscale "scale" (then the size is
 * exact: input x scale), a cutout the input's size, and the optional
 * "checks": {"expect_text": "...", "palette": "#RRGGBB,..." or [..]}. A
 * failed gate is not an error of the hook: it answers pass 0, with err
 * naming the failed checks so that the attempt record says which. */
#include "validate/gate.h"
#include "core/config.h"

#include <stdio.h>
#include <string.h>

int
vd_task_checks(const json_t *checks, struct vd_task *t, struct ig_error *err)
{
    if (!checks)
        return 0;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)checks, key, v)
        if (strcmp(key, "expect_text") != 0 && strcmp(key, "palette") != 0)
            return ig_error_set(err, 400, "invalid_request",
                                "unknown field 'checks.%.40s' (expect_text, palette)", key);
    const json_t *text = json_object_get(checks, "expect_text");
    if (text && !json_is_string(text))
        return ig_error_set(err, 400, "invalid_request", "checks.expect_text must be a string");
    t->expect_text = json_string_value(text);
    const json_t *pal = json_object_get(checks, "palette");
    if (!pal)
        return 0;
    if (json_is_string(pal))
        return vd_palette_parse(json_string_value(pal), t, err);
    if (!json_is_array(pal))
        return ig_error_set(err, 400, "invalid_palette",
                            "checks.palette must be \"#RRGGBB,...\" or an array of them");
    char buf[VD_MAX_PALETTE * 8 + 8];
    size_t used = 0, i;
    const json_t *c;
    json_array_foreach(pal, i, c) {
        const char *s = json_string_value(c);
        if (!s || strlen(s) != 7 || used + 9 > sizeof buf)
            return ig_error_set(err, 400, "invalid_palette",
                                "checks.palette[%zu] must be one \"#RRGGBB\" (at most %d)", i,
                                VD_MAX_PALETTE);
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s", used ? "," : "", s);
    }
    return vd_palette_parse(buf, t, err);
}

int
vd_gate_job(void *ud, const struct ig_config *cfg, enum ig_class cls, const json_t *request,
            const struct img *output, const struct img *input, const struct img *mask,
            json_t **report, int *pass, struct ig_error *err)
{
    struct vd_task t;
    memset(&t, 0, sizeof t);
    t.cls = cls;
    t.cfg = cfg;
    t.output = output;
    t.format = output->info.format;
    t.input = input;
    t.mask = mask;
    const char *fmt = json_string_value(json_object_get(request, "output_format"));
    if (fmt && img_format_parse(fmt, &t.want_format) != 0)
        t.want_format = IMG_FMT_UNKNOWN;
    const char *size = json_string_value(json_object_get(request, "size"));
    struct ig_size wh = {0, 0};
    if (size && ig_size_parse(size, &wh) != 0)
        wh.w = wh.h = 0;
    t.want_w = wh.w;
    t.want_h = wh.h;
    t.scale = (int)json_integer_value(json_object_get(request, "scale"));
    vd_task_derive(&t);
    if (vd_task_checks(json_object_get(request, "checks"), &t, err) != 0)
        return -1;
    struct vd_report r;
    if (vd_gate_run(&t, &r, err) != 0)
        return -1;
    *report = vd_report_json(&r);
    *pass = r.pass;
    if (!r.pass) {
        char names[256];
        vd_report_failed(&r, names, sizeof names);
        ig_error_set(err, 502, "validation_failed", "the output failed the gate: %s", names);
    }
    return 0;
}
