/* SPDX-License-Identifier: MIT */
/* test_validate_hash.c -- the perceptual hashes, bit for bit.
 *
 * Python imagehash is not packaged in Debian, so the reference is its
 * algorithm written out at test time with the libraries imagehash itself
 * calls (Pillow's convert("L") and LANCZOS resize, scipy.fftpack's DCT,
 * numpy's median, its hex form), run by /usr/bin/python3 on the same PNG
 * files. blockhash has no peer here: its known answers are worked out by
 * hand in the comments, on both the divisible and the split-pixel path. */
#include "validate_fixtures.h"

static const char hash_py[] =
    "import sys, numpy as np, scipy.fftpack\n"
    "from PIL import Image\n"
    "def hx(b):\n"
    "    s = ''.join(str(v) for v in 1 * b.flatten())\n"
    "    return '{:0>{w}x}'.format(int(s, 2), w=len(s) // 4)\n"
    "def grey(p, w, h):\n"
    "    im = Image.open(p).convert('RGBA')\n"
    "    im = Image.alpha_composite(Image.new('RGBA', im.size, (255, 255, 255, 255)), im)\n"
    "    return np.asarray(im.convert('L').resize((w, h), Image.LANCZOS))\n"
    "for p in sys.argv[1:]:\n"
    "    a = grey(p, 8, 8)\n"
    "    d = grey(p, 9, 8)\n"
    "    c = scipy.fftpack.dct(scipy.fftpack.dct(grey(p, 32, 32), axis=0), axis=1)[:8, :8]\n"
    "    print(hx(a > a.mean()), hx(d[:, 1:] > d[:, :-1]), hx(c > np.median(c)))\n";

static void
hex_of(const struct img *im, enum vd_hash_algo algo, char *out)
{
    struct vd_hash h;
    struct ig_error e = {0};
    if (vd_hash(im, algo, &h, &e) != 0)
        fail_msg("%s: %s", vd_hash_algo_name(algo), e.message);
    vd_hash_hex(&h, out);
}

static int
distance(const struct img *a, const struct img *b, enum vd_hash_algo algo)
{
    struct vd_hash ha, hb;
    struct ig_error e = {0};
    assert_int_equal(vd_hash(a, algo, &ha, &e), 0);
    assert_int_equal(vd_hash(b, algo, &hb, &e), 0);
    return vd_hash_distance(&ha, &hb);
}

static void
tiny(int x, int y, uint8_t px[4])
{
    px[0] = (uint8_t)(x * 13 + y * 3);
    px[1] = (uint8_t)(y * 17);
    px[2] = (uint8_t)(x * y);
    px[3] = 255;
}

static void
test_matches_imagehash(void **state)
{
    (void)state;
    static const char *photos[] = {"flower.png", "astronaut.png", "chelsea.png", "coffee.png",
                                   "rocket.jpg", "cvo9xd_keong_macan_srgb8.png",
                                   "tmshre_riaphotographs_srgb8.png", "u76c0g_bliznaca_srgb8.png"};
    enum { NP = sizeof photos / sizeof photos[0], N = NP * 2 + 2 };
    struct img *ims[N];
    for (int i = 0; i < NP; i++) {
        ims[2 * i] = vf_photo(photos[i]);
        ims[2 * i + 1] = vf_variant(ims[2 * i], (enum vf_kind)(i % VF_KINDS));
    }
    ims[N - 2] = vf_synth(20, 15, tiny);    /* upsampled to 32x32 */
    ims[N - 1] = vf_synth(1, 1, tiny);
    char *paths[N], args[8192] = "";
    for (int i = 0; i < N; i++) {
        paths[i] = vf_png(ims[i]);
        size_t len = strlen(args);
        snprintf(args + len, sizeof args - len, " %s", paths[i]);
    }
    char *out = vf_python(hash_py, args), *line = out;
    static const enum vd_hash_algo algos[3] = {VD_HASH_AHASH, VD_HASH_DHASH, VD_HASH_PHASH};
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < 3; k++) {
            char want[65], ours[65];
            int used;
            assert_int_equal(sscanf(line, "%64s%n", want, &used), 1);
            line += used;
            hex_of(ims[i], algos[k], ours);
            if (strcmp(ours, want))
                fail_msg("image %d (%dx%d) %s: ours %s, imagehash %s", i, ims[i]->width,
                         ims[i]->height, vd_hash_algo_name(algos[k]), ours, want);
        }
        remove(paths[i]);
        ig_free(paths[i]);
        img_free(ims[i]);
    }
    print_message("aHash, dHash, pHash: %d images, all equal to imagehash's\n", N);
    ig_free(out);
}

static struct img *
mirror(const struct img *im)
{
    struct img *m = img_clone(im);
    assert_non_null(m);
    for (int y = 0; y < im->height; y++)
        for (int x = 0; x < im->width; x++)
            memcpy(m->rgba + ((size_t)y * im->width + x) * 4,
                   im->rgba + ((size_t)y * im->width + (im->width - 1 - x)) * 4, 4);
    return m;
}

/* The distances METRICS.md measured on the same flower crop. */
static void
test_distances(void **state)
{
    (void)state;
    struct img *full = vf_photo("flower.png"), *ref = vf_crop(full, 622, 244, 1024, 1024);
    struct img *q85 = vf_variant(ref, VF_JPEG85), *m = mirror(ref);
    struct img *other = vf_crop(full, 0, 0, 1024, 1024);
    assert_true(distance(ref, q85, VD_HASH_PHASH) <= 2);
    assert_true(distance(ref, m, VD_HASH_PHASH) > 16);
    assert_true(distance(ref, other, VD_HASH_PHASH) > 16);
    assert_true(distance(ref, q85, VD_HASH_BLOCKHASH) <= 8);
    assert_true(distance(ref, m, VD_HASH_BLOCKHASH) > 48);
    assert_int_equal(distance(ref, ref, VD_HASH_BLOCKHASH), 0);
    img_free(full);
    img_free(ref);
    img_free(q85);
    img_free(m);
    img_free(other);
}

static void
halves(int x, int y, uint8_t px[4])
{
    (void)y;
    px[0] = px[1] = px[2] = x < 20 ? 0 : 255;
    px[3] = 255;
}

static void
halves32(int x, int y, uint8_t px[4])
{
    halves(x * 40 / 32, y, px);
}

/* Left half black, right half white. Every band of 4 block rows holds 32
 * black blocks (0) and 32 white ones (765 x pixels per block), so its
 * median lies halfway and each block row reads 0000000011111111: 00ff.
 * At 32x24 each block is 2x1.5 pixels (split-pixel path in y only); at
 * 40x24 it is 2.5x1.5, and the black/white edge at x = 20 falls on a block
 * edge, so the answer is the same. */
static void
test_blockhash_known(void **state)
{
    (void)state;
    char want[65] = "", got[65];
    for (int i = 0; i < 16; i++)
        strcat(want, "00ff");
    struct img *a = vf_synth(32, 24, halves32), *b = vf_synth(40, 24, halves);
    hex_of(a, VD_HASH_BLOCKHASH, got);
    assert_string_equal(got, want);
    hex_of(b, VD_HASH_BLOCKHASH, got);
    assert_string_equal(got, want);
    struct vd_hash h;
    struct ig_error e = {0};
    assert_int_equal(vd_hash(a, VD_HASH_BLOCKHASH, &h, &e), 0);
    assert_int_equal(h.nbits, 256);
    struct img *small = img_new(15, 40);
    assert_int_equal(vd_hash(small, VD_HASH_BLOCKHASH, &h, &e), -1);
    assert_string_equal(e.code, "image_too_small");
    img_free(a);
    img_free(b);
    img_free(small);
}

/* A cutout (junk RGB under alpha 0) and its copy flattened on white hash
 * the same with every algorithm. */
static void
test_alpha_over_white(void **state)
{
    (void)state;
    struct img *a = vf_photo("astronaut.png"), *b = img_clone(a);
    for (size_t i = 0; i < (size_t)a->width * a->height; i++)
        if ((i % (size_t)a->width) < (size_t)a->width / 3) {
            a->rgba[4 * i] = (uint8_t)i;
            a->rgba[4 * i + 3] = 0;
            memset(b->rgba + 4 * i, 255, 4);
        }
    for (int k = 0; k < 4; k++)
        assert_int_equal(distance(a, b, (enum vd_hash_algo)k), 0);
    img_free(a);
    img_free(b);
}

static void
test_names_hex_distance(void **state)
{
    (void)state;
    enum vd_hash_algo algo;
    static const char *names[] = {"ahash", "dhash", "phash", "blockhash"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(vd_hash_algo_parse(names[i], &algo), 0);
        assert_string_equal(vd_hash_algo_name(algo), names[i]);
    }
    assert_int_equal(vd_hash_algo_parse("whash", &algo), -1);
    struct vd_hash a = {.algo = VD_HASH_PHASH, .nbits = 64}, b = a;
    a.bits[0] = 0xf0;
    a.bits[7] = 0x01;
    char hex[65];
    vd_hash_hex(&a, hex);
    assert_string_equal(hex, "f000000000000001");
    assert_int_equal(vd_hash_distance(&a, &b), 5);
    b.algo = VD_HASH_DHASH;
    assert_int_equal(vd_hash_distance(&a, &b), -1);
}

static int
phash_a(const struct img *a, const struct img *b, struct ig_error *e)
{
    struct vd_hash h;
    (void)b;
    return vd_hash(a, VD_HASH_PHASH, &h, e);
}

static void
test_alloc_failures(void **state)
{
    (void)state;
    struct img *a = vf_photo("chelsea.png");
    vf_oom_walk(phash_a, a, a);
    img_free(a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_imagehash), cmocka_unit_test(test_distances),
        cmocka_unit_test(test_blockhash_known),   cmocka_unit_test(test_alpha_over_white),
        cmocka_unit_test(test_names_hex_distance), cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
