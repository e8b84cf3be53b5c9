/* SPDX-License-Identifier: MIT */
/* ort_rdn.c -- the same RDN model through ONNX Runtime 1.30, the peer for bench/rdn.
 *
 * Usage: ort_rdn LIBONNXRUNTIME MODEL.onnx SCALE IMAGE [THREADS] [REPS] [COMPARE.png]
 *
 * ORT is not in Debian, so it is dlopen'ed from the onnxruntime-node npm
 * package and driven through its C API (OrtGetApiBase()->GetApi). The model
 * is bench/tfjs2onnx.py's conversion of the same model.json, taking and
 * giving 0..255 RGB in NCHW. "cold" is session creation plus the first run
 * in this fresh process, "steady" the median of REPS more runs; GMAC/s uses
 * the MACs per input pixel counted from model.json (tfjs_load), the same
 * count bench/rdn uses. COMPARE.png (bench/rdn's output) gives max |delta|
 * between the two engines' 8-bit results. */
#include "backends/local/tfjs.h"
#include "core/alloc.h"
#include "image/image.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <onnxruntime_c_api.h>

static const OrtApi *ort;

static double
now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int
check(OrtStatus *st, const char *what)
{
    if (!st)
        return 0;
    fprintf(stderr, "ort_rdn: %s: %s\n", what, ort->GetErrorMessage(st));
    ort->ReleaseStatus(st);
    return -1;
}

static struct img *
read_image(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct ig_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (ig_buf_append(&b, chunk, n) != 0)
            break;
    fclose(f);
    struct ig_error err = {0};
    struct img *im = img_decode(b.data, b.len, NULL, &err);
    if (!im)
        fprintf(stderr, "ort_rdn: %s: %s\n", path, err.message);
    ig_buf_free(&b);
    return im;
}

/* One inference; *out (NCHW floats) is the output value, released by the caller. */
static int
run_once(OrtSession *sess, OrtValue *in, OrtValue **out)
{
    const char *in_names[] = {"input"}, *out_names[] = {"output"};
    *out = NULL;
    return check(ort->Run(sess, NULL, in_names, (const OrtValue *const *)&in, 1, out_names, 1, out),
                 "Run");
}

int
main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: ort_rdn LIBONNXRUNTIME MODEL.onnx SCALE IMAGE [THREADS] [REPS] "
                        "[COMPARE.png]\n");
        return 2;
    }
    const char *lib = argv[1], *model = argv[2], *path = argv[4];
    int scale = atoi(argv[3]), threads = argc > 5 ? atoi(argv[5]) : 2;
    int reps = argc > 6 ? atoi(argv[6]) : 3;
    const char *compare = argc > 7 ? argv[7] : NULL;
    struct ig_error err = {0};
    if (img_init(&err) != 0)
        return 1;
    struct img *im = read_image(path);
    if (!im)
        return 1;
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "ort_rdn: %s\n", dlerror());
        return 1;
    }
    const OrtApiBase *(*get_base)(void) = (const OrtApiBase *(*)(void))dlsym(h, "OrtGetApiBase");
    if (!get_base || !(ort = get_base()->GetApi(ORT_API_VERSION))) {
        fprintf(stderr, "ort_rdn: %s has no C API version %d\n", lib, ORT_API_VERSION);
        return 1;
    }
    const char *ver = get_base()->GetVersionString();

    int w = im->width, hh = im->height, W = w * scale, H = hh * scale;
    size_t npx = (size_t)w * hh;
    float *x = malloc(npx * 3 * sizeof *x);
    if (!x)
        return 1;
    for (size_t i = 0; i < npx; i++)
        for (int c = 0; c < 3; c++)
            x[c * npx + i] = im->rgba[i * 4 + c];

    double t0 = now_s();
    OrtEnv *env = NULL;
    OrtSessionOptions *so = NULL;
    OrtSession *sess = NULL;
    OrtMemoryInfo *mi = NULL;
    OrtValue *in = NULL, *out = NULL;
    int64_t shape[4] = {1, 3, hh, w};
    if (check(ort->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "ort_rdn", &env), "CreateEnv") ||
        check(ort->CreateSessionOptions(&so), "CreateSessionOptions") ||
        check(ort->SetIntraOpNumThreads(so, threads), "SetIntraOpNumThreads") ||
        check(ort->SetSessionGraphOptimizationLevel(so, ORT_ENABLE_ALL),
              "SetSessionGraphOptimizationLevel") ||
        check(ort->CreateSession(env, model, so, &sess), "CreateSession") ||
        check(ort->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mi), "MemoryInfo") ||
        check(ort->CreateTensorWithDataAsOrtValue(mi, x, npx * 3 * sizeof *x, shape, 4,
                                                  ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &in),
              "CreateTensor"))
        return 1;
    double t_session = now_s() - t0;
    if (run_once(sess, in, &out) != 0)
        return 1;
    double cold = now_s() - t0, first_run = cold - t_session;
    float *y = NULL;
    if (check(ort->GetTensorMutableData(out, (void **)&y), "GetTensorMutableData"))
        return 1;
    struct img *res = img_new(W, H);
    if (!res)
        return 1;
    size_t NPX = (size_t)W * H;
    for (size_t i = 0; i < NPX; i++) {
        for (int c = 0; c < 3; c++) {
            float v = nearbyintf(y[c * NPX + i]);
            res->rgba[i * 4 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        res->rgba[i * 4 + 3] = 255;
    }
    ort->ReleaseValue(out);

    double *steady = calloc(reps > 0 ? (size_t)reps : 1, sizeof *steady);
    if (!steady)
        return 1;
    for (int r = 0; r < reps; r++) {
        t0 = now_s();
        if (run_once(sess, in, &out) != 0)
            return 1;
        steady[r] = now_s() - t0;
        ort->ReleaseValue(out);
    }
    qsort(steady, (size_t)(reps > 0 ? reps : 1), sizeof *steady, cmp_double);
    double med = reps > 0 ? steady[reps / 2] : first_run;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    /* the MAC count from the TF.js model next to the .onnx, when given as MODEL_DIR env */
    double macs = 0;
    const char *tdir = getenv("RDN_TFJS_DIR");
    struct tfjs_model tm;
    if (tdir && tfjs_load(tdir, &tm, &err) == 0) {
        macs = (double)tm.macs_per_px * (double)npx;
        tfjs_free(&tm);
    }
    int maxd = -1;
    if (compare) {
        struct img *ours = read_image(compare);
        if (ours && ours->width == W && ours->height == H) {
            maxd = 0;
            for (size_t i = 0; i < NPX * 4; i++) {
                int d = abs(ours->rgba[i] - res->rgba[i]);
                maxd = d > maxd ? d : maxd;
            }
        }
        img_free(ours);
    }
    printf("engine=onnxruntime-%s model=%s scale=%d input=%dx%d threads=%d session_s=%.3f "
           "first_run_s=%.3f cold_s=%.3f steady_s=%.3f gmacs_cold=%.1f gmacs_steady=%.1f "
           "peak_rss_mb=%.0f max_delta_vs_ours=%d\n",
           ver, model, scale, w, hh, threads, t_session, first_run, cold, med, macs / cold / 1e9,
           macs / med / 1e9, (double)ru.ru_maxrss / 1024.0, maxd);
    free(steady);
    img_free(res);
    img_free(im);
    ort->ReleaseValue(in);
    ort->ReleaseMemoryInfo(mi);
    ort->ReleaseSession(sess);
    ort->ReleaseSessionOptions(so);
    ort->ReleaseEnv(env);
    free(x);
    return 0;
}
