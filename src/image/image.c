/* SPDX-License-Identifier: MIT */
/* image.c -- sniff, probe, decode and encode images with libvips.
 *
 * The order is libvips's own (is_a, header, load) with our limits between
 * header and load: a 100000x100000 PNG is refused after reading 33 bytes of
 * header, without allocating its pixels. Loaders run with fail_on=truncated
 * so a cut-off file is an error, not a half-grey picture.
 *
 * PNG provenance is written as an iTXt chunk spliced into the encoded file by
 * hand: libvips writes only tEXt comments and XMP, and an iTXt chunk under our
 * own keyword is what PNG readers show as text without parsing XML. */
#include "image/image.h"
#include "core/alloc.h"
#include "core/config.h"

#include <pthread.h>
#include <string.h>
#include <vips/vips.h>
#include <zlib.h>

#define PROVENANCE_KEY "imagegate:provenance"

/* ---- Init ------------------------------------------------------------------ */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_failed;

/* Library code never prints: libvips's warnings (a truncated tile, say)
 * are dropped here, and its errors reach callers through struct ig_error. */
static void
drop_log(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data)
{
    (void)domain;
    (void)level;
    (void)message;
    (void)data;
}

static void
init_vips(void)
{
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO,
                      drop_log, NULL);
    if (VIPS_INIT("imagegate") != 0) {
        init_failed = 1;
        return;
    }
    /* Decoding never touches the disk, and never caches operations: every job
     * is independent and the cache would only hold memory. */
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_concurrency_set(1);
}

int
img_init(struct ig_error *err)
{
    pthread_once(&init_once, init_vips);
    if (init_failed)
        return ig_error_set(err, 500, "image_library", "libvips failed to initialise");
    return 0;
}

static int
vips_fail(struct ig_error *err, int status, const char *code, const char *what)
{
    const char *msg = vips_error_buffer();
    char first[256];
    size_t n = strcspn(msg, "\n");
    if (n >= sizeof first)
        n = sizeof first - 1;
    memcpy(first, msg, n);
    first[n] = '\0';
    vips_error_clear();
    return ig_error_set(err, status, code, "%s%s%s", what, *first ? ": " : "", first);
}

/* ---- Formats -------------------------------------------------------------- */

static const struct {
    enum img_format fmt;
    const char *name, *mime;
    const char *loader;   /* prefix of libvips's loader type name */
} formats[] = {
    {IMG_FMT_PNG, "png", "image/png", "VipsForeignLoadPng"},
    {IMG_FMT_JPEG, "jpeg", "image/jpeg", "VipsForeignLoadJpeg"},
    {IMG_FMT_WEBP, "webp", "image/webp", "VipsForeignLoadWebp"},
    {IMG_FMT_GIF, "gif", "image/gif", "VipsForeignLoadGif"},
    {IMG_FMT_TIFF, "tiff", "image/tiff", "VipsForeignLoadTiff"},
    {IMG_FMT_HEIF, "heif", "image/heif", "VipsForeignLoadHeif"},
    {IMG_FMT_JXL, "jxl", "image/jxl", "VipsForeignLoadJxl"},
};
#define N_FORMATS (sizeof formats / sizeof formats[0])

const char *
img_format_name(enum img_format f)
{
    for (size_t i = 0; i < N_FORMATS; i++)
        if (formats[i].fmt == f)
            return formats[i].name;
    return "unknown";
}

const char *
img_format_mime(enum img_format f)
{
    for (size_t i = 0; i < N_FORMATS; i++)
        if (formats[i].fmt == f)
            return formats[i].mime;
    return "application/octet-stream";
}

int
img_format_parse(const char *name, enum img_format *out)
{
    if (strcmp(name, "jpg") == 0)
        name = "jpeg";
    for (size_t i = 0; i < N_FORMATS; i++)
        if (strcmp(formats[i].name, name) == 0) {
            *out = formats[i].fmt;
            return 0;
        }
    return -1;
}

enum img_format
img_sniff(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    if (len >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
        return IMG_FMT_PNG;
    if (len >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return IMG_FMT_JPEG;
    if (len >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0)
        return IMG_FMT_WEBP;
    if (len >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0))
        return IMG_FMT_GIF;
    if (len >= 4 && (memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0))
        return IMG_FMT_TIFF;
    if (len >= 12 && memcmp(p + 4, "ftyp", 4) == 0 &&
        (memcmp(p + 8, "heic", 4) == 0 || memcmp(p + 8, "heix", 4) == 0 ||
         memcmp(p + 8, "mif1", 4) == 0 || memcmp(p + 8, "avif", 4) == 0))
        return IMG_FMT_HEIF;
    if ((len >= 2 && p[0] == 0xFF && p[1] == 0x0A) ||
        (len >= 12 && memcmp(p, "\0\0\0\x0cJXL \r\n\x87\n", 12) == 0))
        return IMG_FMT_JXL;
    return IMG_FMT_UNKNOWN;
}

/* ---- Probe and decode --------------------------------------------------- */

static const char *
loader_for(enum img_format f)
{
    for (size_t i = 0; i < N_FORMATS; i++)
        if (formats[i].fmt == f)
            return formats[i].loader;
    return NULL;
}

/* The header's size against the limits. */
static int
check_size(const struct img_info *info, const struct img_limits *lim, struct ig_error *err)
{
    long pixels = (long)info->width * info->height;
    long decoded = pixels * 4;   /* what we will hold as RGBA */
    if (lim && ((lim->max_width && info->width > lim->max_width) ||
                (lim->max_height && info->height > lim->max_height) ||
                (lim->max_pixels && pixels > lim->max_pixels) ||
                (lim->max_decoded_bytes && decoded > lim->max_decoded_bytes)))
        return ig_error_set(err, 413, "image_too_large",
                            "the image is %dx%d (%ld pixels); the limits are %dx%d and %ld pixels",
                            info->width, info->height, pixels, lim->max_width, lim->max_height,
                            lim->max_pixels);
    if (info->width < 1 || info->height < 1)
        return ig_error_set(err, 400, "corrupt_image", "the image has no pixels");
    return 0;
}

static uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A PNG's header read by hand: the signature, then IHDR (13 bytes, first,
 * its CRC checked), then the chunk headers up to IDAT for a tRNS. This is
 * what libvips's header read tells us, at a fraction of its cost (no
 * GObject, no loader lookup); a probe runs on every output a gateway
 * without the validation gate serves. 1: read; -1: corrupt (err set); 0:
 * not a PNG, let libvips look. */
static int
probe_png(const unsigned char *b, size_t len, struct img_info *info, struct ig_error *err)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len < 8 || memcmp(b, sig, 8) != 0)
        return 0;
    if (len < 33 || be32(b + 8) != 13 || memcmp(b + 12, "IHDR", 4) != 0 ||
        crc32(crc32(0L, Z_NULL, 0), b + 12, 17) != be32(b + 29)) {
        return ig_error_set(err, 400, "corrupt_image", "the png header is not valid");
    }
    uint32_t w = be32(b + 16), h = be32(b + 20);
    int depth = b[24], type = b[25];
    static const int bands[7] = {1, 0, 3, 3, 2, 0, 4};
    int depth_ok = type == 0 ? (depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16)
                   : type == 3 ? (depth >= 1 && depth <= 8 && !(depth & (depth - 1)))
                   : (depth == 8 || depth == 16);
    if (w > 0x7fffffffu || h > 0x7fffffffu || type > 6 || !bands[type] || !depth_ok ||
        b[26] != 0 || b[27] != 0 || b[28] > 1)
        return ig_error_set(err, 400, "corrupt_image", "the png header is not valid");
    info->format = IMG_FMT_PNG;
    info->width = (int)w;
    info->height = (int)h;
    info->bands = bands[type];
    info->bits = depth == 16 ? 16 : 8;
    info->has_alpha = type == 4 || type == 6;
    for (size_t at = 33; at + 8 <= len;) {
        uint32_t n = be32(b + at);
        if (memcmp(b + at + 4, "IDAT", 4) == 0)
            break;
        if (memcmp(b + at + 4, "tRNS", 4) == 0) {
            info->has_alpha = 1;
            info->bands++;
        }
        if (n > len || at + 12 + (size_t)n > len)
            break;
        at += 12 + (size_t)n;
    }
    return 1;
}

/* Opens the image lazily: only the header is parsed. */
static VipsImage *
open_header(const void *buf, size_t len, const struct img_limits *lim, struct img_info *info,
            struct ig_error *err)
{
    if (img_init(err) != 0)
        return NULL;
    if (len == 0) {
        ig_error_set(err, 400, "empty_image", "the image is empty (0 bytes)");
        return NULL;
    }
    if (lim && lim->max_input_bytes && (long)len > lim->max_input_bytes) {
        ig_error_set(err, 413, "input_too_large", "the image is %zu bytes; the limit is %ld", len,
                     lim->max_input_bytes);
        return NULL;
    }
    enum img_format fmt = img_sniff(buf, len);
    if (fmt == IMG_FMT_UNKNOWN) {
        ig_error_set(err, 415, "unsupported_format",
                     "not an image in a known format (PNG, JPEG, WebP, GIF, TIFF, HEIF, JXL)");
        return NULL;
    }
    /* Our sniff and libvips's must agree; a file that only we think is a
     * PNG is corrupt, and one libvips would open as something else is
     * refused rather than decoded by a loader we did not choose. */
    const char *want = loader_for(fmt);
    const char *found = vips_foreign_find_load_buffer(buf, len);
    if (!found || strncmp(found, want, strlen(want)) != 0) {
        vips_error_clear();
        if (!found && fmt != IMG_FMT_UNKNOWN) {
            ig_error_set(err, 415, "unsupported_format",
                         "%s images cannot be read by this build", img_format_name(fmt));
            return NULL;
        }
        ig_error_set(err, 400, "corrupt_image", "the %s header is not valid",
                     img_format_name(fmt));
        return NULL;
    }
    VipsImage *im = vips_image_new_from_buffer(buf, len, "", "access", VIPS_ACCESS_SEQUENTIAL,
                                               "fail_on", VIPS_FAIL_ON_TRUNCATED, NULL);
    if (!im) {
        vips_fail(err, 400, "corrupt_image", "cannot read the image header");
        return NULL;
    }
    info->format = fmt;
    info->width = vips_image_get_width(im);
    info->height = vips_image_get_height(im);
    info->bands = vips_image_get_bands(im);
    VipsBandFormat bf = vips_image_get_format(im);
    info->bits = (bf == VIPS_FORMAT_USHORT || bf == VIPS_FORMAT_SHORT) ? 16
                 : (bf == VIPS_FORMAT_UCHAR || bf == VIPS_FORMAT_CHAR) ? 8 : 32;
    info->cmyk = vips_image_get_interpretation(im) == VIPS_INTERPRETATION_CMYK;
    info->has_alpha = vips_image_hasalpha(im);

    if (check_size(info, lim, err) != 0) {
        g_object_unref(im);
        return NULL;
    }
    return im;
}

int
img_probe(const void *buf, size_t len, const struct img_limits *lim, struct img_info *info,
          struct ig_error *err)
{
    memset(info, 0, sizeof *info);
    if (len && !(lim && lim->max_input_bytes && (long)len > lim->max_input_bytes)) {
        int png = probe_png(buf, len, info, err);
        if (png)
            return png < 0 ? -1 : check_size(info, lim, err);
    }
    VipsImage *im = open_header(buf, len, lim, info, err);
    if (!im)
        return -1;
    g_object_unref(im);
    return 0;
}

struct img *
img_new(int width, int height)
{
    if (width <= 0 || height <= 0 || (size_t)width > SIZE_MAX / 4 / (size_t)height)
        return NULL;
    struct img *im = ig_calloc(1, sizeof *im);
    if (!im)
        return NULL;
    im->rgba = ig_calloc((size_t)width * (size_t)height, 4);
    if (!im->rgba) {
        ig_free(im);
        return NULL;
    }
    im->width = width;
    im->height = height;
    im->info.format = IMG_FMT_UNKNOWN;
    im->info.width = width;
    im->info.height = height;
    im->info.bands = 4;
    im->info.bits = 8;
    im->info.has_alpha = 1;
    return im;
}

struct img *
img_clone(const struct img *src)
{
    struct img *im = img_new(src->width, src->height);
    if (!im)
        return NULL;
    memcpy(im->rgba, src->rgba, (size_t)src->width * (size_t)src->height * 4);
    im->info = src->info;
    return im;
}

void
img_free(struct img *im)
{
    if (!im)
        return;
    ig_free(im->rgba);
    ig_free(im);
}

/* Converts any libvips image to 8-bit sRGB with an alpha band, then writes it
 * into dst (width*height*4 bytes). Takes ownership of `in`. */
static int
to_rgba(VipsImage *in, uint8_t *dst, struct ig_error *err)
{
    VipsImage *t[4] = {NULL, NULL, NULL, NULL};
    VipsImage *cur = in;
    int rc = -1;
    VipsInterpretation want = VIPS_INTERPRETATION_sRGB;
    if (vips_colourspace(cur, &t[0], want, NULL) != 0) {
        vips_fail(err, 400, "corrupt_image", "cannot convert the image to sRGB");
        goto out;
    }
    cur = t[0];
    if (vips_image_get_format(cur) != VIPS_FORMAT_UCHAR) {
        if (vips_cast_uchar(cur, &t[1], NULL) != 0) {
            vips_fail(err, 400, "corrupt_image", "cannot convert the image to 8 bits");
            goto out;
        }
        cur = t[1];
    }
    if (vips_image_get_bands(cur) == 3) {
        if (vips_bandjoin_const1(cur, &t[2], 255.0, NULL) != 0) {
            vips_fail(err, 500, "image_library", "cannot add an alpha band");
            goto out;
        }
        cur = t[2];
    } else if (vips_image_get_bands(cur) > 4) {
        if (vips_extract_band(cur, &t[2], 0, "n", 4, NULL) != 0) {
            vips_fail(err, 500, "image_library", "cannot select four bands");
            goto out;
        }
        cur = t[2];
    }
    VipsImage *mem = vips_image_new_from_memory(dst,
                                                (size_t)vips_image_get_width(cur) *
                                                    (size_t)vips_image_get_height(cur) * 4,
                                                vips_image_get_width(cur),
                                                vips_image_get_height(cur), 4, VIPS_FORMAT_UCHAR);
    if (!mem) {
        vips_fail(err, 500, "image_library", "cannot wrap the output buffer");
        goto out;
    }
    t[3] = mem;
    if (vips_image_write(cur, mem) != 0) {
        vips_fail(err, 400, "corrupt_image", "the image data is corrupt or truncated");
        goto out;
    }
    rc = 0;
out:
    for (int i = 3; i >= 0; i--)
        if (t[i])
            g_object_unref(t[i]);
    g_object_unref(in);
    return rc;
}

struct img *
img_decode(const void *buf, size_t len, const struct img_limits *lim, struct ig_error *err)
{
    struct img_info info;
    memset(&info, 0, sizeof info);
    VipsImage *vi = open_header(buf, len, lim, &info, err);
    if (!vi)
        return NULL;
    struct img *im = img_new(info.width, info.height);
    if (!im) {
        g_object_unref(vi);
        ig_error_set(err, 500, "out_of_memory", "out of memory decoding a %dx%d image",
                     info.width, info.height);
        return NULL;
    }
    if (to_rgba(vi, im->rgba, err) != 0) {
        img_free(im);
        return NULL;
    }
    im->info = info;
    return im;
}

void
img_limits_from_config(struct img_limits *out, const struct ig_limits *cfg)
{
    out->max_input_bytes = cfg->max_input_bytes;
    out->max_width = cfg->max_width;
    out->max_height = cfg->max_height;
    out->max_pixels = cfg->max_pixels;
    out->max_decoded_bytes = cfg->max_decoded_bytes;
}

/* ---- Resize --------------------------------------------------------------- */

static VipsImage *
wrap_rgba(const struct img *im)
{
    return vips_image_new_from_memory(im->rgba, (size_t)im->width * (size_t)im->height * 4,
                                      im->width, im->height, 4, VIPS_FORMAT_UCHAR);
}

struct img *
img_resize(const struct img *im, int w, int h, const char *kernel, struct ig_error *err)
{
    if (img_init(err) != 0)
        return NULL;
    if (w <= 0 || h <= 0) {
        ig_error_set(err, 400, "bad_size", "cannot resize to %dx%d", w, h);
        return NULL;
    }
    struct img *out = img_new(w, h);
    if (!out) {
        ig_error_set(err, 500, "out_of_memory", "out of memory resizing to %dx%d", w, h);
        return NULL;
    }
    VipsImage *src = wrap_rgba(im), *res = NULL, *tmp = NULL;
    if (!src) {
        img_free(out);
        vips_fail(err, 500, "image_library", "cannot wrap the image");
        return NULL;
    }
    int rc;
    if (strcmp(kernel, "box") == 0 && im->width % w == 0 && im->height % h == 0) {
        /* vips_shrink averages whole blocks: the box filter of a downscale. */
        rc = vips_shrink(src, &res, (double)im->width / w, (double)im->height / h, NULL);
    } else {
        VipsKernel k = strcmp(kernel, "box") == 0 ? VIPS_KERNEL_LINEAR : VIPS_KERNEL_LANCZOS3;
        rc = vips_resize(src, &tmp, (double)w / im->width, "vscale", (double)h / im->height,
                         "kernel", k, NULL);
        /* vips_resize rounds the output size; crop or embed to exactly w x h. */
        if (rc == 0)
            rc = vips_embed(tmp, &res, 0, 0, w, h, "extend", VIPS_EXTEND_COPY, NULL);
    }
    if (rc != 0) {
        vips_fail(err, 500, "image_library", "resize failed");
        img_free(out);
        out = NULL;
    } else {
        g_object_ref(res);
        if (to_rgba(res, out->rgba, err) != 0) {
            img_free(out);
            out = NULL;
        }
    }
    if (res)
        g_object_unref(res);
    if (tmp)
        g_object_unref(tmp);
    g_object_unref(src);
    if (out)
        out->info.format = im->info.format;
    return out;
}

/* ---- Encode ------------------------------------------------------------------ */

static void
put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t
get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Splices an uncompressed iTXt chunk in front of IEND. */
static int
png_add_itxt(const unsigned char *png, size_t len, const char *key, const char *text,
             struct ig_buf *out, struct ig_error *err)
{
    if (len < 8 + 12 || img_sniff(png, len) != IMG_FMT_PNG)
        return ig_error_set(err, 400, "corrupt_image", "not a PNG");
    size_t pos = 8, iend = 0;
    while (pos + 12 <= len) {
        uint32_t clen = get32(png + pos);
        if (clen > len - pos - 12)
            return ig_error_set(err, 400, "corrupt_image", "PNG chunk runs past the end");
        if (memcmp(png + pos + 4, "IEND", 4) == 0) {
            iend = pos;
            break;
        }
        pos += 12 + clen;
    }
    if (!iend)
        return ig_error_set(err, 400, "corrupt_image", "PNG has no IEND chunk");
    size_t klen = strlen(key), tlen = strlen(text);
    /* keyword\0 compression-flag compression-method language\0 translated\0 text */
    size_t dlen = klen + 1 + 2 + 1 + 1 + tlen;
    if (dlen > 0x7fffffffu)
        return ig_error_set(err, 400, "provenance_too_large", "provenance too large for PNG");
    unsigned char head[8];
    put32(head, (uint32_t)dlen);
    memcpy(head + 4, "iTXt", 4);
    unsigned char zeros[5] = {0, 0, 0, 0, 0};
    uLong crc = crc32(0L, head + 4, 4);
    crc = crc32(crc, (const Bytef *)key, (uInt)klen);
    crc = crc32(crc, zeros, 5);
    crc = crc32(crc, (const Bytef *)text, (uInt)tlen);
    unsigned char tail[4];
    put32(tail, (uint32_t)crc);
    if (ig_buf_append(out, png, iend) || ig_buf_append(out, head, 8) ||
        ig_buf_append(out, key, klen) || ig_buf_append(out, zeros, 5) ||
        ig_buf_append(out, text, tlen) || ig_buf_append(out, tail, 4) ||
        ig_buf_append(out, png + iend, len - iend))
        return ig_error_set(err, 500, "out_of_memory", "out of memory writing PNG text");
    return 0;
}

static int
png_find_itxt(const unsigned char *png, size_t len, const char *key, char **out)
{
    size_t pos = 8, klen = strlen(key);
    while (pos + 12 <= len) {
        uint32_t clen = get32(png + pos);
        if (clen > len - pos - 12)
            return -1;
        const unsigned char *d = png + pos + 8;
        if (memcmp(png + pos + 4, "iTXt", 4) == 0 && clen >= klen + 5 &&
            memcmp(d, key, klen) == 0 && d[klen] == 0 && d[klen + 1] == 0) {
            /* skip language and translated keyword */
            size_t i = klen + 3;
            while (i < clen && d[i])
                i++;
            i++;
            while (i < clen && d[i])
                i++;
            i++;
            if (i > clen)
                return -1;
            *out = ig_strndup((const char *)d + i, clen - i);
            return *out ? 0 : -1;
        }
        if (memcmp(png + pos + 4, "IEND", 4) == 0)
            break;
        pos += 12 + clen;
    }
    return 0;
}

static char *
xmp_packet(const char *json)
{
    struct ig_buf b = {0};
    int rc = ig_buf_puts(&b, "<?xpacket begin=\"\xef\xbb\xbf\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>"
                             "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf="
                             "\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description "
                             "xmlns:imagegate=\"https://imagegate.dev/ns/1.0/\"><imagegate:"
                             "provenance>");
    for (const char *p = json; rc == 0 && *p; p++) {
        switch (*p) {
        case '<': rc = ig_buf_puts(&b, "&lt;"); break;
        case '>': rc = ig_buf_puts(&b, "&gt;"); break;
        case '&': rc = ig_buf_puts(&b, "&amp;"); break;
        default: rc = ig_buf_append(&b, p, 1);
        }
    }
    if (rc == 0)
        rc = ig_buf_puts(&b, "</imagegate:provenance></rdf:Description></rdf:RDF></x:xmpmeta>"
                             "<?xpacket end=\"w\"?>");
    if (rc != 0) {
        ig_buf_free(&b);
        return NULL;
    }
    return ig_buf_steal(&b, NULL);
}

static char *
xmp_unpack(const char *xmp, size_t len)
{
    const char *open = "<imagegate:provenance>", *close = "</imagegate:provenance>";
    const char *a = memmem(xmp, len, open, strlen(open));
    if (!a)
        return NULL;
    a += strlen(open);
    const char *b = memmem(a, len - (size_t)(a - xmp), close, strlen(close));
    if (!b)
        return NULL;
    struct ig_buf out = {0};
    for (const char *p = a; p < b; p++) {
        const char *ent[][2] = {{"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}};
        int done = 0;
        for (int i = 0; i < 3 && !done; i++)
            if ((size_t)(b - p) >= strlen(ent[i][0]) && memcmp(p, ent[i][0], strlen(ent[i][0])) == 0) {
                if (ig_buf_puts(&out, ent[i][1]) != 0)
                    goto oom;
                p += strlen(ent[i][0]) - 1;
                done = 1;
            }
        if (!done && ig_buf_append(&out, p, 1) != 0)
            goto oom;
    }
    if (out.len == 0 && ig_buf_append(&out, "", 0) != 0)
        goto oom;
    return ig_buf_steal(&out, NULL);
oom:
    ig_buf_free(&out);
    return NULL;
}

int
img_encode(const struct img *im, enum img_format fmt, int quality, const char *provenance,
           struct ig_buf *out, struct ig_error *err)
{
    if (img_init(err) != 0)
        return -1;
    if (quality <= 0 || quality > 100)
        quality = fmt == IMG_FMT_JPEG ? 90 : 85;
    VipsImage *src = wrap_rgba(im), *flat = NULL;
    if (!src)
        return vips_fail(err, 500, "image_library", "cannot wrap the image");
    void *data = NULL;
    size_t len = 0;
    int rc;
    char *xmp = NULL;
    if (provenance && fmt != IMG_FMT_PNG) {
        xmp = xmp_packet(provenance);
        if (!xmp) {
            g_object_unref(src);
            return ig_error_set(err, 500, "out_of_memory", "out of memory");
        }
        /* A copy, so the metadata does not land on a shared image. */
        vips_image_set_blob_copy(src, "xmp-data", xmp, strlen(xmp));
    }
    switch (fmt) {
    case IMG_FMT_PNG:
        rc = vips_pngsave_buffer(src, &data, &len, "compression", 6, NULL);
        break;
    case IMG_FMT_JPEG:
    {
        VipsArrayDouble *white = vips_array_double_newv(3, 255.0, 255.0, 255.0);
        rc = vips_flatten(src, &flat, "background", white, NULL);
        vips_area_unref(VIPS_AREA(white));
    }
        if (rc == 0) {
            if (xmp)
                vips_image_set_blob_copy(flat, "xmp-data", xmp, strlen(xmp));
            rc = vips_jpegsave_buffer(flat, &data, &len, "Q", quality, NULL);
        }
        break;
    case IMG_FMT_WEBP:
        rc = vips_webpsave_buffer(src, &data, &len, "Q", quality, NULL);
        break;
    default:
        g_object_unref(src);
        ig_free(xmp);
        return ig_error_set(err, 400, "unsupported_format", "cannot encode %s; use png, jpeg or webp",
                            img_format_name(fmt));
    }
    ig_free(xmp);
    if (flat)
        g_object_unref(flat);
    g_object_unref(src);
    if (rc != 0)
        return vips_fail(err, 500, "image_library", "encoding failed");
    int r = 0;
    if (fmt == IMG_FMT_PNG && provenance)
        r = png_add_itxt(data, len, PROVENANCE_KEY, provenance, out, err);
    else if (ig_buf_append(out, data, len) != 0)
        r = ig_error_set(err, 500, "out_of_memory", "out of memory");
    g_free(data);
    return r;
}

int
img_read_provenance(const void *buf, size_t len, char **out, struct ig_error *err)
{
    *out = NULL;
    enum img_format fmt = img_sniff(buf, len);
    if (fmt == IMG_FMT_PNG) {
        if (png_find_itxt(buf, len, PROVENANCE_KEY, out) != 0)
            return ig_error_set(err, 400, "corrupt_image", "the PNG chunks are corrupt");
        return 0;
    }
    if (fmt == IMG_FMT_UNKNOWN)
        return ig_error_set(err, 415, "unsupported_format", "not an image in a known format");
    if (img_init(err) != 0)
        return -1;
    VipsImage *im = vips_image_new_from_buffer(buf, len, "", NULL);
    if (!im)
        return vips_fail(err, 400, "corrupt_image", "cannot read the image header");
    const void *xmp;
    size_t xlen;
    if (vips_image_get_typeof(im, "xmp-data") &&
        vips_image_get_blob(im, "xmp-data", &xmp, &xlen) == 0)
        *out = xmp_unpack(xmp, xlen);
    g_object_unref(im);
    return 0;
}
