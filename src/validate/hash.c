/* SPDX-License-Identifier: MIT */
/* hash.c -- perceptual hashes: aHash, dHash, pHash (imagehash's) and
 * blockhash, with Hamming distance and hex.
 *
 * The three 64-bit hashes follow Python imagehash bit for bit: the image
 * goes to PIL's "L" luma, is resized with PIL's Lanczos in PIL's own fixed
 * point (22-bit coefficients, horizontal pass then vertical, each rounded
 * to 8 bits), and only then hashed. Copying the resampler exactly is what
 * makes a stored imagehash comparable with ours; a different antialiasing
 * filter moves bits near the threshold. pHash is the unnormalised 2-D
 * DCT-II of the 32x32 luma (scipy.fftpack's), its top-left 8x8 including
 * DC, thresholded at the median. blockhash is blockhash-core's bmvbhash at
 * 16 blocks a side: block sums of R+G+B, per-quarter medians, the
 * near-white tie rule. Alpha is composited over white first. */
#include "validate/vd_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

#define PREC 22

static double
sinc(double x)
{
    if (x == 0.0)
        return 1.0;
    x *= M_PI;
    return sin(x) / x;
}

static double
lanczos3(double x)
{
    return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
}

/* PIL's precompute_coeffs + normalize_coeffs_8bpc for one axis. */
struct axis {
    int ksize, *bounds;     /* first input and count, per output */
    int32_t *k;             /* ksize per output */
};

static int
axis_init(struct axis *ax, int in, int out)
{
    double scale = (double)in / out, fscale = scale < 1 ? 1 : scale, support = 3 * fscale;
    ax->ksize = (int)ceil(support) * 2 + 1;
    ax->bounds = ig_malloc((size_t)out * 2 * sizeof *ax->bounds);
    ax->k = ig_calloc((size_t)out * (size_t)ax->ksize, sizeof *ax->k);
    double *pre = ig_malloc((size_t)ax->ksize * sizeof *pre);
    if (!ax->bounds || !ax->k || !pre) {
        ig_free(pre);
        return -1;
    }
    for (int xx = 0; xx < out; xx++) {
        double center = (xx + 0.5) * scale, ww = 0, ss = 1.0 / fscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0)
            xmin = 0;
        if (xmax > in)
            xmax = in;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            pre[x] = lanczos3((x + xmin - center + 0.5) * ss);
            ww += pre[x];
        }
        int32_t *k = ax->k + (size_t)xx * (size_t)ax->ksize;
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0 ? pre[x] / ww : pre[x];
            k[x] = (int32_t)(v < 0 ? -0.5 + v * (1 << PREC) : 0.5 + v * (1 << PREC));
        }
        ax->bounds[2 * xx] = xmin;
        ax->bounds[2 * xx + 1] = xmax;
    }
    ig_free(pre);
    return 0;
}

static void
axis_free(struct axis *ax)
{
    ig_free(ax->bounds);
    ig_free(ax->k);
}

static uint8_t
clip8(int32_t v)
{
    if (v >= (1 << PREC << 8))
        return 255;
    if (v <= 0)
        return 0;
    return (uint8_t)(v >> PREC);
}

/* PIL: im.convert("L").resize((ow, oh), Image.LANCZOS), into out. */
static int
pil_luma_resize(const struct img *im, int ow, int oh, uint8_t *out)
{
    int w = im->width, h = im->height, rc = -1;
    struct axis hx = {0}, vy = {0};
    uint8_t *row = ig_malloc((size_t)w), *col = ig_malloc((size_t)h), *tmp = NULL;
    if (!row || !col || axis_init(&hx, w, ow) != 0 || axis_init(&vy, h, oh) != 0)
        goto done;
    int first = vy.bounds[0], last = vy.bounds[2 * oh - 2] + vy.bounds[2 * oh - 1];
    int hpass = ow != w, tw = hpass ? ow : w;
    tmp = ig_malloc((size_t)(last - first) * (size_t)tw);
    if (!tmp)
        goto done;
    for (int y = first; y < last; y++) {
        uint8_t *t = tmp + (size_t)(y - first) * (size_t)tw;
        vd_k_pil_l(im->rgba + (size_t)y * (size_t)w * 4, hpass ? row : t, w);
        for (int xx = 0; hpass && xx < ow; xx++)
            t[xx] = clip8((1 << (PREC - 1)) +
                          vd_k_dot_u8(row + hx.bounds[2 * xx], hx.k + (size_t)xx * hx.ksize,
                                      hx.bounds[2 * xx + 1]));
    }
    if (oh == h) {
        memcpy(out, tmp, (size_t)ow * (size_t)oh);
        rc = 0;
        goto done;
    }
    for (int xx = 0; xx < ow; xx++) {
        for (int y = 0; y < last - first; y++)
            col[y] = tmp[(size_t)y * (size_t)tw + (size_t)xx];
        for (int yy = 0; yy < oh; yy++)
            out[(size_t)yy * (size_t)ow + (size_t)xx] =
                clip8((1 << (PREC - 1)) + vd_k_dot_u8(col + vy.bounds[2 * yy] - first,
                                                      vy.k + (size_t)yy * vy.ksize,
                                                      vy.bounds[2 * yy + 1]));
    }
    rc = 0;
done:
    axis_free(&hx);
    axis_free(&vy);
    ig_free(row);
    ig_free(col);
    ig_free(tmp);
    return rc;
}

static void
set_bit(struct vd_hash *h, int i, int on)
{
    if (on)
        h->bits[i / 8] |= (uint8_t)(0x80 >> (i % 8));
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy.median: the mean of the two middle values for an even count. */
static double
median(const double *v, int n, double *scratch)
{
    memcpy(scratch, v, (size_t)n * sizeof *v);
    qsort(scratch, (size_t)n, sizeof *scratch, cmp_double);
    return n % 2 ? scratch[n / 2] : (scratch[n / 2 - 1] + scratch[n / 2]) / 2;
}

static void
ahash(const uint8_t p[64], struct vd_hash *h)
{
    double mean = 0;
    for (int i = 0; i < 64; i++)
        mean += p[i];
    mean /= 64;
    for (int i = 0; i < 64; i++)
        set_bit(h, i, p[i] > mean);
}

static void
dhash(const uint8_t p[72], struct vd_hash *h)
{
    for (int r = 0; r < 8; r++)
        for (int c = 0; c < 8; c++)
            set_bit(h, r * 8 + c, p[r * 9 + c + 1] > p[r * 9 + c]);
}

static void
phash(const uint8_t p[1024], struct vd_hash *h)
{
    double cosines[8][32], rows[32][8], coef[64], scratch[64];
    for (int k = 0; k < 8; k++)
        for (int n = 0; n < 32; n++)
            cosines[k][n] = 2 * cos(M_PI * k * (2 * n + 1) / 64.0);
    for (int y = 0; y < 32; y++)
        for (int v = 0; v < 8; v++) {
            double s = 0;
            for (int x = 0; x < 32; x++)
                s += cosines[v][x] * p[y * 32 + x];
            rows[y][v] = s;
        }
    for (int u = 0; u < 8; u++)
        for (int v = 0; v < 8; v++) {
            double s = 0;
            for (int y = 0; y < 32; y++)
                s += cosines[u][y] * rows[y][v];
            coef[u * 8 + v] = s;
        }
    double med = median(coef, 64, scratch);
    for (int i = 0; i < 64; i++)
        set_bit(h, i, coef[i] > med);
}

/* Where pixel i of n falls among 16 blocks of size bs: bmvbhash splits
 * it between two blocks by its fractional position when n does not
 * divide by 16. */
struct share {
    int first, second;
    double w1, w2;
};

static void
share_of(int i, int n, double bs, int even, struct share *s)
{
    s->first = s->second = (int)floor(i / bs);
    s->w1 = 1;
    s->w2 = 0;
    if (even)
        return;
    double mod = fmod(i + 1, bs), frac = mod - floor(mod), whole = mod - frac;
    s->w1 = 1 - frac;
    s->w2 = frac;
    if (!(whole > 0 || i + 1 == n))
        s->second = (int)ceil(i / bs);
}

/* blockhash-core's bmvbhash: block sums of R+G+B, each row first summed
 * into the 16 block columns, then spread over its one or two block rows. */
static int
blockhash(const struct img *im, struct vd_hash *h)
{
    enum { B = 16 };
    double blocks[B * B] = {0}, scratch[B * B / 4];
    int w = im->width, hh = im->height;
    double bw = (double)w / B, bh = (double)hh / B;
    struct share *cols = ig_malloc((size_t)w * sizeof *cols);
    if (!cols)
        return -1;
    for (int x = 0; x < w; x++)
        share_of(x, w, bw, w % B == 0, &cols[x]);
    for (int y = 0; y < hh; y++) {
        double acc[B] = {0};
        const uint8_t *p = im->rgba + (size_t)y * (size_t)w * 4;
        for (int x = 0; x < w; x++, p += 4) {
            double v = vd_over_white(p[0], p[3]) + vd_over_white(p[1], p[3]) +
                       vd_over_white(p[2], p[3]);
            acc[cols[x].first] += v * cols[x].w1;
            acc[cols[x].second] += v * cols[x].w2;
        }
        struct share r;
        share_of(y, hh, bh, hh % B == 0, &r);
        for (int c = 0; c < B; c++) {
            blocks[r.first * B + c] += acc[c] * r.w1;
            blocks[r.second * B + c] += acc[c] * r.w2;
        }
    }
    ig_free(cols);
    double half = bw * bh * 256 * 3 / 2;
    for (int band = 0; band < 4; band++) {
        const double *v = blocks + band * (B * B / 4);
        double m = median(v, B * B / 4, scratch);
        for (int j = 0; j < B * B / 4; j++)
            set_bit(h, band * (B * B / 4) + j, v[j] > m || (fabs(v[j] - m) < 1 && m > half));
    }
    return 0;
}

int
vd_hash(const struct img *im, enum vd_hash_algo algo, struct vd_hash *out, struct ig_error *err)
{
    if (!im || !im->rgba || im->width < 1 || im->height < 1)
        return ig_error_set(err, 400, "bad_image", "hash: the image is empty");
    memset(out, 0, sizeof *out);
    out->algo = algo;
    out->nbits = 64;
    uint8_t small[1024];
    switch (algo) {
    case VD_HASH_AHASH:
        if (pil_luma_resize(im, 8, 8, small) != 0)
            return vd_oom(err, "hash");
        ahash(small, out);
        return 0;
    case VD_HASH_DHASH:
        if (pil_luma_resize(im, 9, 8, small) != 0)
            return vd_oom(err, "hash");
        dhash(small, out);
        return 0;
    case VD_HASH_PHASH:
        if (pil_luma_resize(im, 32, 32, small) != 0)
            return vd_oom(err, "hash");
        phash(small, out);
        return 0;
    case VD_HASH_BLOCKHASH:
        if (im->width < 16 || im->height < 16)
            return ig_error_set(err, 400, "image_too_small",
                                "blockhash needs at least 16x16 pixels; the image is %dx%d",
                                im->width, im->height);
        out->nbits = 256;
        return blockhash(im, out) == 0 ? 0 : vd_oom(err, "hash");
    }
    return ig_error_set(err, 400, "bad_algorithm", "hash: unknown algorithm %d", (int)algo);
}

int
vd_hash_distance(const struct vd_hash *a, const struct vd_hash *b)
{
    if (a->algo != b->algo || a->nbits != b->nbits)
        return -1;
    int d = 0;
    for (int i = 0; i < a->nbits / 8; i++)
        d += __builtin_popcount((unsigned)(a->bits[i] ^ b->bits[i]));
    return d;
}

void
vd_hash_hex(const struct vd_hash *h, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < h->nbits / 8; i++) {
        *out++ = digits[h->bits[i] >> 4];
        *out++ = digits[h->bits[i] & 15];
    }
    *out = '\0';
}

static const char *const algo_names[] = {"ahash", "dhash", "phash", "blockhash"};

int
vd_hash_algo_parse(const char *name, enum vd_hash_algo *out)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, algo_names[i])) {
            *out = (enum vd_hash_algo)i;
            return 0;
        }
    return -1;
}

const char *
vd_hash_algo_name(enum vd_hash_algo a)
{
    return (unsigned)a < 4 ? algo_names[a] : "unknown";
}
