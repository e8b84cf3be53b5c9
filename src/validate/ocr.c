/* SPDX-License-Identifier: MIT */
/* ocr.c -- generate: the picture shows the text the job asked for.
 *
 * Image models misspell. The output is read with Tesseract (libtesseract's
 * C API, English data) and the expected text is looked for in what it read
 * with an approximate substring match (Sellers' edit distance: the text may
 * start anywhere), both sides reduced to upper-case letters and digits so
 * that layout, punctuation and case do not count. The score is
 * 1 - edits/length: 1 is an exact find, 0.8 (the default bound) allows one
 * misread glyph in five, which is Tesseract's usual slip on stylised type,
 * while a misspelt or missing word scores well below.
 *
 * Tesseract's init loads ~20 MB of model data and takes a good part of a
 * second, so each thread creates its handle once and keeps it; the thread's
 * exit frees it. */
#include "validate/gate.h"
#include "core/alloc.h"

#include <ctype.h>
#include <pthread.h>
#include <string.h>
#include <tesseract/capi.h>

static pthread_key_t tess_key;
static pthread_once_t tess_once = PTHREAD_ONCE_INIT;
static int tess_key_ok;

static void
tess_free(void *p)
{
    TessBaseAPIDelete(p);
}

static void
tess_key_init(void)
{
    tess_key_ok = pthread_key_create(&tess_key, tess_free) == 0;
}

static TessBaseAPI *
tess_handle(struct ig_error *err)
{
    pthread_once(&tess_once, tess_key_init);
    if (!tess_key_ok) {
        ig_error_set(err, 500, "internal", "cannot create a thread key for OCR");
        return NULL;
    }
    TessBaseAPI *api = pthread_getspecific(tess_key);
    if (api)
        return api;
    api = TessBaseAPICreate();
    if (!api) {
        ig_error_set(err, 500, "out_of_memory", "out of memory");
        return NULL;
    }
    /* Quiet: Tesseract otherwise prints its resolution guess to stderr. */
    if (TessBaseAPIInit3(api, NULL, "eng") != 0 ||
        !TessBaseAPISetVariable(api, "debug_file", "/dev/null") ||
        !TessBaseAPISetVariable(api, "user_defined_dpi", "300")) {
        TessBaseAPIDelete(api);
        ig_error_set(err, 500, "ocr_unavailable",
                     "Tesseract could not load its English data (package tesseract-ocr-eng)");
        return NULL;
    }
    /* Sparse text: words anywhere, in no order. The automatic page layout
     * takes a slogan over a photo for part of the picture and reads nothing. */
    TessBaseAPISetPageSegMode(api, PSM_SPARSE_TEXT);
    if (pthread_setspecific(tess_key, api) != 0) {
        TessBaseAPIDelete(api);
        ig_error_set(err, 500, "internal", "cannot keep the OCR handle");
        return NULL;
    }
    return api;
}

/* Upper-case letters and digits; every other run of bytes is one space. */
static char *
normalise(const char *s)
{
    size_t n = strlen(s);
    char *o = ig_malloc(n + 1), *q = o;
    if (!o)
        return NULL;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) && c < 128)
            *q++ = (char)toupper(c);
        else if (q > o && q[-1] != ' ')
            *q++ = ' ';
    }
    while (q > o && q[-1] == ' ')
        q--;
    *q = 0;
    return o;
}

/* The fewest edits that turn want into some substring of text. */
static int
substring_distance(const char *want, const char *text, int *dist)
{
    size_t m = strlen(want), n = strlen(text);
    int *prev = ig_calloc(m + 1, sizeof *prev), *cur = ig_calloc(m + 1, sizeof *cur);
    if (!prev || !cur) {
        ig_free(prev);
        ig_free(cur);
        return -1;
    }
    for (size_t i = 0; i <= m; i++)
        prev[i] = (int)i;
    int best = (int)m;
    for (size_t j = 1; j <= n; j++) {
        cur[0] = 0;
        for (size_t i = 1; i <= m; i++) {
            int sub = prev[i - 1] + (want[i - 1] != text[j - 1]);
            int del = prev[i] + 1, ins = cur[i - 1] + 1;
            cur[i] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        if (cur[m] < best)
            best = cur[m];
        int *tmp = prev;
        prev = cur;
        cur = tmp;
    }
    ig_free(prev);
    ig_free(cur);
    *dist = best;
    return 0;
}

int
vd_check_text(const struct vd_task *t, struct vd_check *out, struct ig_error *err)
{
    if (!t->expect_text || !t->expect_text[0])
        return VD_SKIP;
    TessBaseAPI *api = tess_handle(err);
    if (!api)
        return -1;
    TessBaseAPISetImage(api, t->output->rgba, t->output->width, t->output->height, 4,
                        t->output->width * 4);
    char *raw = TessBaseAPIGetUTF8Text(api);
    char *want = normalise(t->expect_text), *read = normalise(raw ? raw : "");
    TessDeleteText(raw);
    int dist = 0;
    if (!want || !read || substring_distance(want, read, &dist) != 0) {
        ig_free(want);
        ig_free(read);
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    }
    size_t len = strlen(want);
    double score = len ? 1.0 - (double)dist / len : 1.0;
    double bound = vd_bound(t, "text", 0.8);
    vd_result(out, "text", score, bound, score >= bound, "read \"%.100s\"", read);
    ig_free(want);
    ig_free(read);
    return 0;
}
