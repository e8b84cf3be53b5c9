/* SPDX-License-Identifier: MIT */
/* format.c -- the output decodes, in the format that was asked.
 *
 * The gate decodes the output once, before any check, and hands these two
 * checks the outcome: a vendor that answers 200 with broken bytes, or a JPEG
 * where PNG (with its alpha) was asked, fails here by name instead of
 * somewhere further down. Some adapters cannot honour a format and say so
 * in the provenance (AUTOMATIC1111 answers PNG only); a config that would
 * rather serve those than fall back sets the format bound to 0, which keeps
 * the check as a report. */
#include "validate/gate.h"

int
vd_check_decode(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    if (t->output)
        return vd_result(out, "decode", 1, 1, 1, "%dx%d %s", t->output->width,
                         t->output->height, img_format_name(t->format));
    return vd_result(out, "decode", 0, 1, 0, "%s",
                     t->decode_error ? t->decode_error : "the output is not an image");
}

int
vd_check_format(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    if (t->want_format == IMG_FMT_UNKNOWN || t->format == IMG_FMT_UNKNOWN)
        return VD_SKIP;
    int same = t->want_format == t->format;
    double bound = vd_bound(t, "format", 1.0);
    return vd_result(out, "format", same, bound, same >= bound, "%s, asked %s",
                     img_format_name(t->format), img_format_name(t->want_format));
}
