/* SPDX-License-Identifier: MIT */
/* picture.c -- the emulators' pictures: real images, deterministic in what
 * a vendor's output depends on.
 *
 * A picture is a two-colour gradient with a few soft discs, all chosen by a
 * hash of (vendor, prompt, seed): another vendor or seed gives a visibly
 * different composition. The fingerprint adds a faint wave over it, so that
 * after a rotation the same prompt and seed give a picture that is close but
 * not equal, the way a provider's outputs drift when it ships a new build. */
#include "emulate/emulate.h"

#include <math.h>
#include <string.h>

static uint64_t
fnv(uint64_t h, const char *s)
{
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static uint64_t
mix(uint64_t *s)
{
    uint64_t x = (*s += 0x9E3779B97F4A7C15ull);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint8_t
clamp8(double v)
{
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)(v + 0.5);
}

/* Rendered at no more than 256 pixels on the short side, then resampled to
 * the size asked: the picture stays smooth, deterministic and cheap, so an
 * emulator keeps up with a load test. */
static struct img *render(const char *vendor, const char *prompt, long long seed,
                          const char *fingerprint, int w, int h, double step);

struct img *
emu_picture(const char *vendor, const char *prompt, long long seed, const char *fingerprint,
            int w, int h)
{
    int shortest = w < h ? w : h;
    double step = shortest > 256 ? (double)shortest / 256.0 : 1.0;
    int rw = (int)(w / step + 0.5), rh = (int)(h / step + 0.5);
    struct img *small = render(vendor, prompt, seed, fingerprint, rw > 0 ? rw : 1,
                               rh > 0 ? rh : 1, step);
    if (!small || (rw == w && rh == h))
        return small;
    struct ig_error err = {0};
    struct img *full = img_resize(small, w, h, "lanczos3", &err);
    img_free(small);
    return full;
}

static struct img *
render(const char *vendor, const char *prompt, long long seed, const char *fingerprint, int w,
       int h, double step)
{
    struct img *im = img_new(w, h);
    if (!im)
        return NULL;
    uint64_t st = fnv(fnv(1469598103934665603ull, vendor), prompt) ^ (uint64_t)seed;
    double a[3], b[3];
    for (int c = 0; c < 3; c++) {
        a[c] = (double)(mix(&st) % 200) + 20;
        b[c] = (double)(mix(&st) % 200) + 20;
    }
    struct { double x, y, r, col[3]; } disc[5];
    for (int i = 0; i < 5; i++) {
        disc[i].x = (double)(mix(&st) % 1000) / 1000.0 * w;
        disc[i].y = (double)(mix(&st) % 1000) / 1000.0 * h;
        disc[i].r = (0.08 + (double)(mix(&st) % 200) / 1000.0) * (w < h ? w : h);
        for (int c = 0; c < 3; c++)
            disc[i].col[c] = (double)(mix(&st) % 256);
    }
    uint64_t fst = fnv(1469598103934665603ull, fingerprint);
    double phase = (double)(mix(&fst) % 6283) / 1000.0, freq = 0.02 + (double)(mix(&fst) % 30) / 1000.0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double t = (double)(x + y) / (double)(w + h), px[3];
            for (int c = 0; c < 3; c++)
                px[c] = a[c] * (1 - t) + b[c] * t;
            for (int i = 0; i < 5; i++) {
                double dx = x - disc[i].x, dy = y - disc[i].y;
                double d = sqrt(dx * dx + dy * dy) / disc[i].r;
                double k = d < 1 ? 1 : d < 1.3 ? (1.3 - d) / 0.3 : 0;
                for (int c = 0; c < 3; c++)
                    px[c] = px[c] * (1 - k) + disc[i].col[c] * k;
            }
            double drift = 6.0 * sin(freq * step * x + phase) * cos(freq * 0.7 * step * y + phase);
            uint8_t *p = im->rgba + 4 * ((size_t)y * (size_t)w + (size_t)x);
            for (int c = 0; c < 3; c++)
                p[c] = clamp8(px[c] + drift);
            p[3] = 255;
        }
    return im;
}

struct img *
emu_edit(const struct img *in, const struct img *mask, const char *prompt, long long seed)
{
    struct img *out = img_clone(in);
    if (!out)
        return NULL;
    uint64_t st = fnv(1469598103934665603ull, prompt) ^ (uint64_t)seed;
    double col[3];
    for (int c = 0; c < 3; c++)
        col[c] = (double)(mix(&st) % 256);
    for (int y = 0; y < out->height; y++)
        for (int x = 0; x < out->width; x++) {
            size_t i = 4 * ((size_t)y * (size_t)out->width + (size_t)x);
            int edit = 1;
            if (mask && x < mask->width && y < mask->height)
                edit = mask->rgba[4 * ((size_t)y * (size_t)mask->width + (size_t)x) + 3] == 0;
            if (!edit)
                continue;
            for (int c = 0; c < 3; c++)
                out->rgba[i + (size_t)c] =
                    clamp8(0.25 * out->rgba[i + (size_t)c] + 0.75 * col[c] + ((x ^ y) & 15));
        }
    return out;
}

struct img *
emu_cutout(const struct img *in)
{
    struct img *out = img_clone(in);
    if (!out)
        return NULL;
    double cx = out->width / 2.0, cy = out->height / 2.0;
    double rx = out->width * 0.35, ry = out->height * 0.42;
    for (int y = 0; y < out->height; y++)
        for (int x = 0; x < out->width; x++) {
            double dx = (x - cx) / rx, dy = (y - cy) / ry;
            double d = sqrt(dx * dx + dy * dy);
            double a = d < 0.97 ? 1 : d < 1.03 ? (1.03 - d) / 0.06 : 0;
            uint8_t *px = out->rgba + 4 * ((size_t)y * (size_t)out->width + (size_t)x);
            px[3] = clamp8(a * 255);
            /* The vendors clean the colour of the soft edge (no background
             * left on the rim): the feather takes the colour just inside. */
            if (a < 1 && a > 0) {
                int xi = (int)(cx + (x - cx) * 0.93 / d), yi = (int)(cy + (y - cy) * 0.93 / d);
                memcpy(px, in->rgba + 4 * ((size_t)yi * (size_t)in->width + (size_t)xi), 3);
            }
        }
    out->info.has_alpha = 1;
    return out;
}
