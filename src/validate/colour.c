/* SPDX-License-Identifier: MIT */
/* colour.c -- sRGB to CIELAB (D65) and the CIEDE2000 colour difference.
 *
 * Hashes and luma SSIM are colour-blind: a hue rotation of 54 degrees
 * leaves them nearly unmoved. Per-pixel CIEDE2000 is the check that sees
 * it. The formula is Sharma, Wu and Dalal (2005) with kL = kC = kH = 1;
 * the sRGB matrix and white point are scikit-image's, so Lab values can be
 * checked against rgb2lab. The 95th percentile comes from a histogram of
 * 0.01-wide bins (exact zeros in a bin of their own), so a 50 MP pair
 * needs no per-pixel array; it is the upper edge of its bin. */
#include "validate/vd_internal.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"

#define BINS 10002   /* 0: exact zero; 1..10000: 0.01 wide up to 100; last: above */

static double
to_linear(double c)
{
    c /= 255.0;
    return c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4);
}

static double
lab_f(double t)
{
    const double e = 6.0 / 29.0;
    return t > e * e * e ? cbrt(t) : t / (3 * e * e) + 4.0 / 29.0;
}

static void
linear_to_lab(double r, double g, double b, double lab[3])
{
    double x = (0.412453 * r + 0.357580 * g + 0.180423 * b) / 0.95047;
    double y = 0.212671 * r + 0.715160 * g + 0.072169 * b;
    double z = (0.019334 * r + 0.119193 * g + 0.950227 * b) / 1.08883;
    double fx = lab_f(x), fy = lab_f(y), fz = lab_f(z);
    lab[0] = 116 * fy - 16;
    lab[1] = 500 * (fx - fy);
    lab[2] = 200 * (fy - fz);
}

void
vd_srgb_to_lab(uint8_t r, uint8_t g, uint8_t b, double lab[3])
{
    linear_to_lab(to_linear(r), to_linear(g), to_linear(b), lab);
}

static double
deg(double rad)
{
    double d = rad * 180.0 / M_PI;
    return d < 0 ? d + 360 : d;
}

static double
rad(double d)
{
    return d * M_PI / 180.0;
}

#define POW25_7 6103515625.0   /* 25^7 */

static double
pow7(double x)
{
    double x2 = x * x;
    return x2 * x2 * x2 * x;
}

double
vd_ciede2000(const double lab1[3], const double lab2[3])
{
    double l1 = lab1[0], a1 = lab1[1], b1 = lab1[2], l2 = lab2[0], a2 = lab2[1], b2 = lab2[2];
    double cbar = (sqrt(a1 * a1 + b1 * b1) + sqrt(a2 * a2 + b2 * b2)) / 2;
    double c7 = pow7(cbar), g = 0.5 * (1 - sqrt(c7 / (c7 + POW25_7)));
    double a1p = (1 + g) * a1, a2p = (1 + g) * a2;
    double c1p = sqrt(a1p * a1p + b1 * b1), c2p = sqrt(a2p * a2p + b2 * b2);
    double h1p = (a1p == 0 && b1 == 0) ? 0 : deg(atan2(b1, a1p));
    double h2p = (a2p == 0 && b2 == 0) ? 0 : deg(atan2(b2, a2p));
    double dl = l2 - l1, dc = c2p - c1p, dh = 0;
    if (c1p * c2p != 0) {
        dh = h2p - h1p;
        if (dh > 180)
            dh -= 360;
        else if (dh < -180)
            dh += 360;
    }
    double dH = 2 * sqrt(c1p * c2p) * sin(rad(dh / 2));
    double lbar = (l1 + l2) / 2, cbarp = (c1p + c2p) / 2, hbar = h1p + h2p;
    if (c1p * c2p != 0) {
        if (fabs(h1p - h2p) <= 180)
            hbar /= 2;
        else
            hbar = h1p + h2p < 360 ? (hbar + 360) / 2 : (hbar - 360) / 2;
    }
    /* cos(h - 30), cos(2h), cos(3h + 6), cos(4h - 63) from one sine and
     * cosine by the multiple-angle identities: a third of the libm calls. */
    double c1 = cos(rad(hbar)), s1 = sin(rad(hbar));
    double c2 = 2 * c1 * c1 - 1, s2 = 2 * s1 * c1;
    double c3 = c1 * (4 * c1 * c1 - 3), s3 = s1 * (3 - 4 * s1 * s1);
    double c4 = 2 * c2 * c2 - 1, s4 = 2 * s2 * c2;
    double t = 1 - 0.17 * (c1 * cos(rad(30)) + s1 * sin(rad(30))) + 0.24 * c2 +
               0.32 * (c3 * cos(rad(6)) - s3 * sin(rad(6))) -
               0.20 * (c4 * cos(rad(63)) + s4 * sin(rad(63)));
    double dtheta = 30 * exp(-((hbar - 275) / 25) * ((hbar - 275) / 25));
    double cp7 = pow7(cbarp), rc = 2 * sqrt(cp7 / (cp7 + POW25_7));
    double l50 = (lbar - 50) * (lbar - 50);
    double sl = 1 + 0.015 * l50 / sqrt(20 + l50), sc = 1 + 0.045 * cbarp,
           sh = 1 + 0.015 * cbarp * t, rt = -sin(rad(2 * dtheta)) * rc;
    double ql = dl / sl, qc = dc / sc, qh = dH / sh;
    return sqrt(ql * ql + qc * qc + qh * qh + rt * qc * qh);
}

static void
pixel_lab(const uint8_t *p, const double lut[256], double lab[3])
{
    if (p[3] == 255) {
        linear_to_lab(lut[p[0]], lut[p[1]], lut[p[2]], lab);
        return;
    }
    linear_to_lab(to_linear(vd_over_white(p[0], p[3])), to_linear(vd_over_white(p[1], p[3])),
                  to_linear(vd_over_white(p[2], p[3])), lab);
}

static int
bin_of(double de)
{
    if (de <= 0)
        return 0;
    int i = (int)ceil(de * 100);
    return i < BINS - 1 ? i : BINS - 1;
}

int
vd_deltae(const struct img *a, const struct img *b, const uint8_t *weight, double *mean,
          double *p95, struct ig_error *err)
{
    if (vd_check_pair(a, b, 1, "deltae", err) != 0)
        return -1;
    double *hist = ig_calloc(BINS, sizeof *hist);
    if (!hist)
        return vd_oom(err, "deltae");
    double lut[256], sum = 0, n = 0;
    for (int i = 0; i < 256; i++)
        lut[i] = to_linear(i);
    size_t px = (size_t)a->width * (size_t)a->height;
    for (size_t i = 0; i < px; i++) {
        double wt = weight ? weight[i] : 1, de = 0;
        if (wt == 0)
            continue;
        const uint8_t *p = a->rgba + 4 * i, *q = b->rgba + 4 * i;
        if (memcmp(p, q, 4) != 0) {
            double l1[3], l2[3];
            pixel_lab(p, lut, l1);
            pixel_lab(q, lut, l2);
            de = vd_ciede2000(l1, l2);
        }
        sum += wt * de;
        n += wt;
        hist[bin_of(de)] += wt;
    }
    if (n <= 0) {
        ig_free(hist);
        return ig_error_set(err, 400, "empty_region", "deltae: the weight map leaves no pixel");
    }
    double acc = 0;
    int bin = 0;
    for (; bin < BINS - 1; bin++) {
        acc += hist[bin];
        if (acc >= 0.95 * n)
            break;
    }
    ig_free(hist);
    *mean = sum / n;
    *p95 = bin / 100.0;
    return 0;
}
