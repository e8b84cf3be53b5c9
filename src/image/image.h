/* SPDX-License-Identifier: MIT */
/* image.h -- decode and encode images under limits (libvips underneath).
 *
 * Input is bytes, never a file name or a Content-Type: the format is sniffed
 * from magic bytes, the header is read and checked against the limits before
 * a single pixel is decoded, and only then is the image decoded into 8-bit
 * sRGB RGBA, the one pixel layout the rest of imagegate works on. */
#ifndef IG_IMAGE_IMAGE_H
#define IG_IMAGE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"

enum img_format {
    IMG_FMT_UNKNOWN = 0,
    IMG_FMT_PNG,
    IMG_FMT_JPEG,
    IMG_FMT_WEBP,
    IMG_FMT_GIF,
    IMG_FMT_TIFF,
    IMG_FMT_HEIF,
    IMG_FMT_JXL
};

struct img_limits {
    long max_input_bytes;     /* 0 = no limit, for all four */
    int  max_width, max_height;
    long max_pixels;
    long max_decoded_bytes;
};

struct img_info {             /* what the header says */
    enum img_format format;
    int width, height;
    int bands;                /* as stored: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA or CMYK */
    int bits;                 /* 8 or 16 (or 32 for float formats) */
    int has_alpha;
    int cmyk;
};

struct img {                  /* decoded pixels: 8-bit sRGB, RGBA interleaved */
    int width, height;
    uint8_t *rgba;            /* width * height * 4 bytes, from ig_malloc */
    struct img_info info;     /* of the source */
};

/* Initialises libvips once; safe to call from any thread, any number of times. */
int img_init(struct ig_error *err);

enum img_format img_sniff(const void *buf, size_t len);
const char *img_format_name(enum img_format f);     /* "png" */
const char *img_format_mime(enum img_format f);     /* "image/png" */
int img_format_parse(const char *name, enum img_format *out);

/* Reads the header only and checks it against the limits. Error codes:
 * empty_image, input_too_large, unsupported_format, corrupt_image,
 * image_too_large. */
int img_probe(const void *buf, size_t len, const struct img_limits *lim, struct img_info *info,
              struct ig_error *err);
/* Probes, then decodes to RGBA. NULL with err filled on failure. */
struct img *img_decode(const void *buf, size_t len, const struct img_limits *lim,
                       struct ig_error *err);
struct img *img_new(int width, int height);          /* zeroed RGBA */
struct img *img_clone(const struct img *im);
void img_free(struct img *im);

/* Encodes RGBA to PNG, JPEG (alpha flattened on white) or WebP. quality is
 * 1..100 for the lossy formats (0 = default). When provenance (JSON text) is
 * given it is embedded: as an iTXt chunk in PNG, as XMP in JPEG and WebP. */
int img_encode(const struct img *im, enum img_format fmt, int quality, const char *provenance,
               struct ig_buf *out, struct ig_error *err);
/* Reads provenance back from an encoded file; *out is NULL when there is
 * none. Caller frees *out with ig_free. */
int img_read_provenance(const void *buf, size_t len, char **out, struct ig_error *err);

/* Resizes to exactly w x h with Lanczos3 (kernel "lanczos3") or box averaging
 * (kernel "box", for integer downscales). */
struct img *img_resize(const struct img *im, int w, int h, const char *kernel,
                       struct ig_error *err);

/* The limits from a config, as the image layer wants them. */
struct ig_limits;
void img_limits_from_config(struct img_limits *out, const struct ig_limits *cfg);

#endif
