/* SPDX-License-Identifier: MIT */
/* upscale.c -- upscale in preserve mode: the output is the input, only
 * larger, by exactly the factor asked.
 *
 * LR consistency (METRICS.md section 6): box-downscale the output back to
 * the input's size and compare. The box kernel is used because the gate
 * does not know the upscaler's; that mismatch alone costs ~10 dB, which is
 * why the bounds are below NTIRE's 45 dB. PSNR over the whole image misses
 * a local re-imagining (one replaced patch still averages 21 dB), so the
 * worst 32x32 tile is checked too; SSIM misses colour shifts, PSNR does not.
 * Each bound is the "fail" line of METRICS.md's table, so a result in its
 * "warn" band still passes (the note says where it landed). */
#include "validate/gate.h"
#include "validate/metric.h"

#include <math.h>

int
vd_check_scale(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    if (!t->input)
        return VD_SKIP;
    int iw = t->input->width, ih = t->input->height;
    int ow = t->output->width, oh = t->output->height;
    double got = (double)ow / iw;
    int want = t->scale > 0 ? t->scale : (int)lround(got);
    int pass = want >= 1 && ow == iw * want && oh == ih * want;
    return vd_result(out, "scale", got, want, pass, "%dx%d from %dx%d, %s x%d", ow, oh, iw, ih,
                     t->scale > 0 ? "asked" : "nearest", want);
}

/* The output box-reduced to the input's size; NULL with err. */
static struct img *
reduce(const struct vd_task *t, struct ig_error *err)
{
    return img_resize(t->output, t->input->width, t->input->height, "box", err);
}

int
vd_check_lr_psnr(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    if (!t->input)
        return VD_SKIP;
    struct img *lr = reduce(t, err);
    double psnr;
    if (!lr || vd_psnr(lr, t->input, NULL, 0, &psnr, NULL, err) != 0) {
        img_free(lr);
        return -1;
    }
    img_free(lr);
    double bound = vd_bound(t, "lr_psnr", 30.0);
    return vd_result(out, "lr_psnr", psnr, bound, psnr >= bound,
                     "dB, output box-reduced vs input%s",
                     psnr < 35.0 && psnr >= bound ? " (warn: below 35 dB)" : "");
}

int
vd_check_lr_tile_psnr(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    if (!t->input)
        return VD_SKIP;
    struct img *lr = reduce(t, err);
    double psnr, worst;
    if (!lr || vd_psnr(lr, t->input, NULL, 32, &psnr, &worst, err) != 0) {
        img_free(lr);
        return -1;
    }
    img_free(lr);
    double bound = vd_bound(t, "lr_tile_psnr", 20.0);
    return vd_result(out, "lr_tile_psnr", worst, bound, worst >= bound,
                     "dB, worst 32x32 tile at the input's size%s",
                     worst < 25.0 && worst >= bound ? " (warn: below 25 dB)" : "");
}

int
vd_check_lr_ssim(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    /* SSIM's 11x11 window needs an input at least that big; a smaller one
     * is judged by the PSNR checks alone. */
    if (!t->input || t->input->width < 11 || t->input->height < 11)
        return VD_SKIP;
    struct img *lr = reduce(t, err);
    double ssim;
    if (!lr || vd_ssim(lr, t->input, VD_SSIM_LUMA, NULL, &ssim, err) != 0) {
        img_free(lr);
        return -1;
    }
    img_free(lr);
    double bound = vd_bound(t, "lr_ssim", 0.95);
    return vd_result(out, "lr_ssim", ssim, bound, ssim >= bound, "luma SSIM at the input's size%s",
                     ssim < 0.98 && ssim >= bound ? " (warn: below 0.98)" : "");
}
