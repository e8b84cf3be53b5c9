/* SPDX-License-Identifier: MIT */
/* isnet.c -- background removal with ISNet (DIS) through ONNX Runtime.
 *
 * The model sees a fixed 1024x1024 RGB picture, each value (x-128)/256 in
 * NCHW float32, and answers one 1024x1024 alpha plane in 0..1. So a job is:
 *
 *   pre   one antialiased triangle-filter resample of the decoded RGBA
 *         straight into the normalised input tensor (aspect is not kept: the
 *         model was trained on stretched squares), plus the luma of that
 *         1024x1024 picture;
 *   run   one inference on the shared session (intra-op 2 threads);
 *   post  a fast guided filter (He & Sun 2015): the filter's linear
 *         coefficients a, b (alpha ~ a*luma + b in each window) are fitted at
 *         1024x1024 against the low-resolution luma, then bilinearly scaled
 *         to the input's size and applied to the input's own full-resolution
 *         luma. Edges therefore follow the real picture's edges, and hair
 *         finer than the model's grid survives, for the cost of two box
 *         filter passes at 1 MP and one multiply-add per output pixel.
 *
 * Only the alpha channel is written: RGB leaves exactly as it was decoded
 * (an input alpha, if any, multiplies the matte).
 *
 * The session, its tensors and every work buffer are made on the first job
 * and kept (memory touched for the first time is slow here); one mutex
 * serialises jobs on them. ORT's activations come from our own allocator
 * (runplan.h): the first run's allocations are recorded and later runs
 * replay them at planned offsets in one block the size of the graph's peak
 * of live bytes. A model or runtime that is missing makes the
 * backend unavailable with the reason, so the router skips the rung. */
#include "backends/local/local.h"
#include "backends/local/ort.h"
#include "backends/local/runplan.h"
#include "core/alloc.h"

#include <errno.h>
#include <math.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ISNET_SIDE    1024
#define ISNET_PLANE   ((size_t)ISNET_SIDE * ISNET_SIDE)
#define ISNET_THREADS 2
/* Address space reserved for ORT's activations (backends/local/runplan.h);
 * only what a run touches becomes memory. ISNet's first run touches about
 * 336 MB of it, and the plan made from that run keeps 268 MB. */
#define ISNET_PLAN_REGION ((size_t)1 << 30)
/* Guided filter window radius at model resolution, and its regulariser
 * (luma in 0..1): small enough that a, b follow hair-scale luma edges, large
 * enough that flat regions keep the model's alpha. */
#define GF_RADIUS 4
#define GF_EPS    1e-3f

enum { BUF_LUMA, BUF_MEAN_I, BUF_MEAN_P, BUF_A, BUF_B, BUF_SCRATCH, BUF_COUNT };

struct isnet {
    pthread_mutex_t mu;
    const OrtApi *api;
    OrtEnv *env;
    OrtSession *session;
    OrtMemoryInfo *mem;
    OrtValue *in_value, *out_value;   /* over in and out, reused by every run */
    struct runplan *plan;             /* the activations' allocator, or NULL: ORT's arena */
    OrtAllocator alloc;               /* plan as ORT sees it, registered on env */
    OrtMemoryInfo *plan_mem;
    int plan_registered;
    char model[4096];                 /* the file the session was made from */
    float *in;                        /* 3 x 1024 x 1024, NCHW */
    float *out;                       /* 1024 x 1024 alpha */
    float *plane[BUF_COUNT];          /* 1024 x 1024 each */
    float *rows;                      /* pre: source rows resampled in x (grows) */
    size_t rows_cap;
    float *col;                       /* 1024 x 3 floats for one output row */
    double *prefix;                   /* box filter prefix sums, 1025 */
    struct taps {                     /* pre: resampling taps in x and y */
        int *start, *n;               /* ISNET_SIDE each */
        float *w;                     /* ISNET_SIDE x m, grows with the downscale */
        size_t w_cap;
        int m;
    } tx, ty;
    int *up_x0;                       /* post: bilinear source column per output column */
    float *up_fx;
    size_t up_x0_cap, up_fx_cap;
};

static struct isnet g = {.mu = PTHREAD_MUTEX_INITIALIZER};

static double
ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* The model file: cfg->model (default isnet-medium) plus ".onnx", under
 * the backend's model_path. */
static int
isnet_model_file(const struct ig_backend_cfg *cfg, char *out, size_t size)
{
    const char *model = cfg->model && cfg->model[0] ? cfg->model : "isnet-medium";
    size_t n = strlen(model);
    char file[512];
    int k = snprintf(file, sizeof file, "%s%s", model,
                     n > 5 && strcmp(model + n - 5, ".onnx") == 0 ? "" : ".onnx");
    if (k < 0 || (size_t)k >= sizeof file)
        return -1;
    return be_local_path(cfg, file, out, size);
}

static int
isnet_available(const struct ig_backend_cfg *cfg, char *why, size_t why_size)
{
    char path[4096];
    if (isnet_model_file(cfg, path, sizeof path) != 0) {
        snprintf(why, why_size, "model path of %s is too long", cfg->name);
        return 0;
    }
    if (access(path, R_OK) != 0) {
        snprintf(why, why_size, "model %s: %s (run scripts/setup)", path, strerror(errno));
        return 0;
    }
    return ort_api(why, why_size) != NULL;
}

/* ---- Session ------------------------------------------------------------ */

static void
isnet_close_session(void)
{
    if (g.session)
        g.api->ReleaseSession(g.session);
    g.session = NULL;
    g.model[0] = '\0';
}

/* Buffers and tensors the session's runs share; made once. */
static int
isnet_buffers(char *why, size_t why_size)
{
    if (g.in_value)
        return 0;
    if (!g.in)
        g.in = ig_malloc(3 * ISNET_PLANE * sizeof *g.in);
    if (!g.out)
        g.out = ig_malloc(ISNET_PLANE * sizeof *g.out);
    for (int i = 0; i < BUF_COUNT; i++)
        if (!g.plane[i])
            g.plane[i] = ig_malloc(ISNET_PLANE * sizeof *g.plane[i]);
    if (!g.col)
        g.col = ig_malloc(3 * ISNET_SIDE * sizeof *g.col);
    if (!g.prefix)
        g.prefix = ig_malloc((ISNET_SIDE + 1) * sizeof *g.prefix);
    struct taps *t[2] = {&g.tx, &g.ty};
    for (int i = 0; i < 2; i++) {
        if (!t[i]->start)
            t[i]->start = ig_malloc(ISNET_SIDE * sizeof *t[i]->start);
        if (!t[i]->n)
            t[i]->n = ig_malloc(ISNET_SIDE * sizeof *t[i]->n);
    }
    int ok = g.in && g.out && g.col && g.prefix && g.tx.start && g.tx.n && g.ty.start && g.ty.n;
    for (int i = 0; i < BUF_COUNT; i++)
        ok = ok && g.plane[i];
    if (!ok) {
        snprintf(why, why_size, "out of memory for the ISNet buffers");
        return -1;
    }
    const int64_t in_shape[4] = {1, 3, ISNET_SIDE, ISNET_SIDE};
    const int64_t out_shape[4] = {1, 1, ISNET_SIDE, ISNET_SIDE};
    if (!g.mem && ort_check(g.api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &g.mem),
                            "ONNX Runtime memory info", why, why_size) != 0)
        return -1;
    if (!g.out_value &&
        ort_check(g.api->CreateTensorWithDataAsOrtValue(g.mem, g.out, ISNET_PLANE * sizeof *g.out,
                                                        out_shape, 4,
                                                        ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
                                                        &g.out_value),
                  "ONNX Runtime output tensor", why, why_size) != 0)
        return -1;
    return ort_check(g.api->CreateTensorWithDataAsOrtValue(g.mem, g.in, 3 * ISNET_PLANE * sizeof *g.in,
                                                           in_shape, 4,
                                                           ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
                                                           &g.in_value),
                     "ONNX Runtime input tensor", why, why_size);
}

/* ORT's side of the plan allocator. */
static void *ORT_API_CALL
plan_alloc(OrtAllocator *self, size_t size)
{
    (void)self;
    return runplan_alloc(g.plan, size);
}

static void ORT_API_CALL
plan_free(OrtAllocator *self, void *p)
{
    (void)self;
    runplan_free(g.plan, p);
}

static const OrtMemoryInfo *ORT_API_CALL
plan_info(const OrtAllocator *self)
{
    (void)self;
    return g.plan_mem;
}

/* Registers the plan allocator on the environment, once; 0 when the
 * session can use it. Without it (no address space to reserve) the
 * session keeps ORT's arena. */
static int
isnet_plan_register(void)
{
    if (g.plan_registered)
        return 0;
    if (!g.plan && !(g.plan = runplan_new(ISNET_PLAN_REGION)))
        return -1;
    char why[256];
    /* ORT takes a user allocator only as a device allocator. */
    if (!g.plan_mem &&
        ort_check(g.api->CreateCpuMemoryInfo(OrtDeviceAllocator, OrtMemTypeDefault, &g.plan_mem),
                  "memory info", why, sizeof why) != 0)
        return -1;
    memset(&g.alloc, 0, sizeof g.alloc);
    g.alloc.version = ORT_API_VERSION;
    g.alloc.Alloc = plan_alloc;
    g.alloc.Free = plan_free;
    g.alloc.Info = plan_info;
    if (ort_check(g.api->RegisterAllocator(g.env, &g.alloc), "allocator", why, sizeof why) != 0)
        return -1;
    g.plan_registered = 1;
    return 0;
}

/* Makes the session for model unless it is the one already open. */
static int
isnet_open(const char *model, char *why, size_t why_size)
{
    if (g.session && strcmp(g.model, model) == 0)
        return 0;
    if (!g.api && !(g.api = ort_api(why, why_size)))
        return -1;
    if (!g.env && !(g.env = ort_env_acquire(why, why_size)))
        return -1;
    if (isnet_buffers(why, why_size) != 0)
        return -1;
    isnet_close_session();
    if (strlen(model) >= sizeof g.model) {
        snprintf(why, why_size, "model path is too long");
        return -1;
    }
    OrtSessionOptions *opts = NULL;
    if (ort_check(g.api->CreateSessionOptions(&opts), "session options", why, why_size) != 0)
        return -1;
    /* Threads are set, never left to ORT's guess (the core count of the
     * host, not of this VM's share); spinning is off so idle intra-op
     * threads do not burn the CPU other work needs between jobs.
     *
     * Level ALL lets the NCHWc pass run every convolution in the blocked
     * layout of ORT's fast kernels; it takes the whole graph because the
     * set-up rewrote the shipped model (scripts/onnx-static.py: fp32
     * weights, constant Resize scales). The memory pattern stays off: it
     * plans one block for every intermediate of the 1024^2 graph at once.
     * Measured on astronaut.png, 2 threads, steady inference / peak RSS:
     * this 0.98 s / 1.01 GB; with the memory pattern 1.05 s / 2.31 GB; the
     * shipped model at level EXTENDED 1.31 s / 0.96 GB and at ALL 1.09 s /
     * 1.43 GB. The arena still reuses its blocks across runs, so no page is
     * touched for the first time in the steady state. (The set-up has since
     * also dropped the graph's eleven unused outputs: 0.76 GB.) Other arena
     * settings were measured and lost: extend-as-requested 0.98-1.0 GB, no
     * arena 0.83 GB, one 448 MB first chunk 0.75 GB but fixed to this model;
     * ORT's own peak of requested activation bytes is 0.44 GB.
     *
     * That peak was the allocation planner's, not the graph's: it hands a
     * dead buffer to the next value of exactly the same static size, and a
     * buffer so reused stays allocated from its first value to its last,
     * idle in between (the 64 MB buffer of the first convolution's output
     * stayed allocated to the end of the run). The set-up now declares the input's height and
     * width symbolic (scripts/onnx-static.py), so the planner cannot match
     * sizes, every value is allocated when made and freed after its last
     * consumer: 268 MB live at most, the graph's own liveness. In ORT's
     * arena that still fragmented to 0.69 GB peak RSS, so the activations
     * come from runplan instead: best-fit in one reserved region on the
     * first run, then the same 244 allocations replayed at planned offsets
     * in 268 MB. Peak RSS (bench/cutout, 5 jobs) 0.74 -> 0.58 GB on
     * astronaut.png and 0.81 -> 0.62 GB on flower.png, the PNGs
     * byte-identical, steady inference the same in alternating runs (a
     * first try that mmapped every block afresh was 45 % slower). */
    char what[4200];
    snprintf(what, sizeof what, "model %s", model);
    int rc = ort_check(g.api->SetIntraOpNumThreads(opts, ISNET_THREADS), "threads", why, why_size);
    if (rc == 0)
        rc = ort_check(g.api->SetInterOpNumThreads(opts, 1), "threads", why, why_size);
    if (rc == 0)
        rc = ort_check(g.api->SetSessionGraphOptimizationLevel(opts, ORT_ENABLE_ALL),
                       "optimisation level", why, why_size);
    if (rc == 0)
        rc = ort_check(g.api->DisableMemPattern(opts), "memory pattern", why, why_size);
    if (rc == 0)
        rc = ort_check(g.api->AddSessionConfigEntry(opts, "session.intra_op.allow_spinning", "0"),
                       "spinning", why, why_size);
    if (rc == 0 && isnet_plan_register() == 0)
        rc = ort_check(g.api->AddSessionConfigEntry(opts, "session.use_env_allocators", "1"),
                       "allocator", why, why_size);
    if (rc == 0)
        rc = ort_check(g.api->CreateSession(g.env, model, opts, &g.session), what, why, why_size);
    /* Another model allocates differently: its first run is recorded. */
    if (g.plan)
        runplan_forget(g.plan);
    g.api->ReleaseSessionOptions(opts);
    /* Making the session parses the 176 MB model and copies its weights;
     * the parse is freed but glibc keeps it (~200 MB), while the arena's
     * blocks for the first run are mapped afresh beside it. Handing it
     * back lowers the job's peak RSS from 1.14 to 0.93 GB (astronaut,
     * bench/cutout, same steady time). */
    malloc_trim(0);
    if (rc != 0) {
        g.session = NULL;
        return -1;
    }
    memcpy(g.model, model, strlen(model) + 1);
    return 0;
}

static void
isnet_shutdown(void)
{
    pthread_mutex_lock(&g.mu);
    if (g.api) {
        isnet_close_session();
        if (g.in_value)
            g.api->ReleaseValue(g.in_value);
        if (g.out_value)
            g.api->ReleaseValue(g.out_value);
        if (g.mem)
            g.api->ReleaseMemoryInfo(g.mem);
    }
    g.in_value = g.out_value = NULL;
    g.mem = NULL;
    if (g.plan_registered)
        (void)ort_check(g.api->UnregisterAllocator(g.env, g.plan_mem), "allocator", (char[64]){0}, 64);
    g.plan_registered = 0;
    if (g.plan_mem)
        g.api->ReleaseMemoryInfo(g.plan_mem);
    g.plan_mem = NULL;
    runplan_destroy(g.plan);
    g.plan = NULL;
    if (g.env)
        ort_env_release();
    g.env = NULL;
    ig_free(g.in);
    ig_free(g.out);
    for (int i = 0; i < BUF_COUNT; i++) {
        ig_free(g.plane[i]);
        g.plane[i] = NULL;
    }
    ig_free(g.rows);
    ig_free(g.col);
    ig_free(g.prefix);
    struct taps *t[2] = {&g.tx, &g.ty};
    for (int i = 0; i < 2; i++) {
        ig_free(t[i]->start);
        ig_free(t[i]->n);
        ig_free(t[i]->w);
        memset(t[i], 0, sizeof *t[i]);
    }
    ig_free(g.up_x0);
    ig_free(g.up_fx);
    g.in = g.out = g.rows = g.col = g.up_fx = NULL;
    g.prefix = NULL;
    g.up_x0 = NULL;
    g.rows_cap = g.up_x0_cap = g.up_fx_cap = 0;
    pthread_mutex_unlock(&g.mu);
}

/* ---- Pre-processing: resample into the input tensor ---------------------- */

/* Triangle-filter taps from src samples to ISNET_SIDE samples: support
 * widens with the downscale factor so every source pixel contributes
 * (antialiasing); upscaling reduces to bilinear. Output i reads t->n[i]
 * samples from t->start[i] (clamped at the edges) with the weights at
 * t->w[i * t->m]. */
static int
isnet_taps(struct taps *t, int src)
{
    double scale = (double)src / ISNET_SIDE;
    double support = scale > 1 ? scale : 1;
    int m = (int)ceil(2 * support) + 1;
    if (ig_grow((void **)&t->w, &t->w_cap, (size_t)ISNET_SIDE * m, sizeof *t->w) != 0)
        return -1;
    t->m = m;
    for (int i = 0; i < ISNET_SIDE; i++) {
        double c = (i + 0.5) * scale - 0.5;
        int lo = (int)floor(c - support) + 1;
        float *w = t->w + (size_t)i * m;
        double sum = 0;
        for (int k = 0; k < m; k++) {
            double d = fabs(lo + k - c) / support;
            w[k] = (float)(d < 1 ? 1 - d : 0);
            sum += w[k];
        }
        for (int k = 0; k < m; k++)
            w[k] = (float)(w[k] / sum);
        t->start[i] = lo;
        t->n[i] = m;
    }
    return 0;
}

static inline int
clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* RGBA bytes -> three normalised planes and the 0..1 luma of the result. */
static int
isnet_pre(const struct img *im, char *why, size_t why_size)
{
    if (isnet_taps(&g.tx, im->width) != 0 || isnet_taps(&g.ty, im->height) != 0 ||
        ig_grow((void **)&g.rows, &g.rows_cap, (size_t)im->height * 3 * ISNET_SIDE,
                sizeof *g.rows) != 0) {
        snprintf(why, why_size, "out of memory for resampling");
        return -1;
    }
    const struct taps *tx = &g.tx, *ty = &g.ty;

    /* x pass: every source row to ISNET_SIDE RGB triples. */
    const int w = im->width;
    for (int y = 0; y < im->height; y++) {
        const uint8_t *src = im->rgba + (size_t)y * w * 4;
        float *dst = g.rows + (size_t)y * 3 * ISNET_SIDE;
        for (int x = 0; x < ISNET_SIDE; x++) {
            const float *wt = tx->w + (size_t)x * tx->m;
            float r = 0, gg = 0, b = 0;
            int s0 = tx->start[x];
            for (int k = 0; k < tx->n[x]; k++) {
                const uint8_t *p = src + 4 * clampi(s0 + k, 0, w - 1);
                r += wt[k] * p[0];
                gg += wt[k] * p[1];
                b += wt[k] * p[2];
            }
            dst[3 * x] = r;
            dst[3 * x + 1] = gg;
            dst[3 * x + 2] = b;
        }
    }
    /* y pass: weighted sums of whole rows (vectorises), then split into
     * planes with the model's normalisation. */
    float *R = g.in, *G = g.in + ISNET_PLANE, *B = g.in + 2 * ISNET_PLANE;
    float *luma = g.plane[BUF_LUMA];
    for (int y = 0; y < ISNET_SIDE; y++) {
        const float *wt = ty->w + (size_t)y * ty->m;
        float *col = g.col;
        memset(col, 0, 3 * ISNET_SIDE * sizeof *col);
        for (int k = 0; k < ty->n[y]; k++) {
            const float *row =
                g.rows + (size_t)clampi(ty->start[y] + k, 0, im->height - 1) * 3 * ISNET_SIDE;
            float wk = wt[k];
            for (int i = 0; i < 3 * ISNET_SIDE; i++)
                col[i] += wk * row[i];
        }
        size_t o = (size_t)y * ISNET_SIDE;
        for (int x = 0; x < ISNET_SIDE; x++) {
            float r = col[3 * x], gg = col[3 * x + 1], b = col[3 * x + 2];
            R[o + x] = (r - 128.f) * (1.f / 256.f);
            G[o + x] = (gg - 128.f) * (1.f / 256.f);
            B[o + x] = (b - 128.f) * (1.f / 256.f);
            luma[o + x] = (0.299f * r + 0.587f * gg + 0.114f * b) * (1.f / 255.f);
        }
    }
    return 0;
}

/* ---- Post-processing: guided filter and upsampling ------------------------ */

/* dst = mean of src over a (2r+1)^2 window clipped at the borders. dst may
 * be src; uses the scratch plane. */
static void
box_mean(const float *src, float *dst, int r)
{
    const int n = ISNET_SIDE;
    float *tmp = g.plane[BUF_SCRATCH];
    double *P = g.prefix;
    for (int y = 0; y < n; y++) {
        const float *s = src + (size_t)y * n;
        float *t = tmp + (size_t)y * n;
        P[0] = 0;
        for (int x = 0; x < n; x++)
            P[x + 1] = P[x] + s[x];
        for (int x = 0; x < n; x++) {
            int lo = x - r < 0 ? 0 : x - r, hi = x + r >= n ? n - 1 : x + r;
            t[x] = (float)((P[hi + 1] - P[lo]) / (hi - lo + 1));
        }
    }
    /* Vertical: a running sum of whole rows, kept in col (n floats, here
     * used as the accumulator). */
    float *acc = g.col;
    memset(acc, 0, (size_t)n * sizeof *acc);
    for (int y = 0; y <= r && y < n; y++)
        for (int x = 0; x < n; x++)
            acc[x] += tmp[(size_t)y * n + x];
    for (int y = 0; y < n; y++) {
        int lo = y - r < 0 ? 0 : y - r, hi = y + r >= n ? n - 1 : y + r;
        float inv = 1.f / (float)(hi - lo + 1);
        float *d = dst + (size_t)y * n;
        for (int x = 0; x < n; x++)
            d[x] = acc[x] * inv;
        if (y + r + 1 < n) {
            const float *add = tmp + (size_t)(y + r + 1) * n;
            for (int x = 0; x < n; x++)
                acc[x] += add[x];
        }
        if (y - r >= 0) {
            const float *sub = tmp + (size_t)(y - r) * n;
            for (int x = 0; x < n; x++)
                acc[x] -= sub[x];
        }
    }
}

/* Fits alpha ~ a*luma + b per window at model resolution; leaves the
 * window means of a and b in BUF_A and BUF_B. */
static void
guided_coefficients(void)
{
    float *I = g.plane[BUF_LUMA], *p = g.out;
    float *mI = g.plane[BUF_MEAN_I], *mP = g.plane[BUF_MEAN_P];
    float *A = g.plane[BUF_A], *B = g.plane[BUF_B];
    for (size_t i = 0; i < ISNET_PLANE; i++)
        p[i] = p[i] < 0 ? 0 : p[i] > 1 ? 1 : p[i];
    box_mean(I, mI, GF_RADIUS);
    box_mean(p, mP, GF_RADIUS);
    for (size_t i = 0; i < ISNET_PLANE; i++)
        A[i] = I[i] * p[i];
    box_mean(A, A, GF_RADIUS);            /* corr(I, p) */
    for (size_t i = 0; i < ISNET_PLANE; i++)
        B[i] = I[i] * I[i];
    box_mean(B, B, GF_RADIUS);            /* corr(I, I) */
    for (size_t i = 0; i < ISNET_PLANE; i++) {
        float var = B[i] - mI[i] * mI[i];
        float cov = A[i] - mI[i] * mP[i];
        float a = cov / (var + GF_EPS);
        A[i] = a;
        B[i] = mP[i] - a * mI[i];
    }
    box_mean(A, A, GF_RADIUS);
    box_mean(B, B, GF_RADIUS);
}

/* Scales a, b to the image and writes alpha = a*luma + b (times any input
 * alpha) into the image's alpha channel. */
static int
isnet_post(struct img *im, char *why, size_t why_size)
{
    guided_coefficients();
    const int w = im->width, h = im->height, n = ISNET_SIDE;
    if (ig_grow((void **)&g.up_x0, &g.up_x0_cap, (size_t)w, sizeof *g.up_x0) != 0 ||
        ig_grow((void **)&g.up_fx, &g.up_fx_cap, (size_t)w, sizeof *g.up_fx) != 0) {
        snprintf(why, why_size, "out of memory for upsampling");
        return -1;
    }
    for (int x = 0; x < w; x++) {
        float s = ((float)x + 0.5f) * (float)n / (float)w - 0.5f;
        s = s < 0 ? 0 : s > n - 1 ? (float)(n - 1) : s;
        int x0 = (int)s;
        if (x0 > n - 2)
            x0 = n - 2;
        g.up_x0[x] = x0;
        g.up_fx[x] = s - (float)x0;
    }
    const float *A = g.plane[BUF_A], *B = g.plane[BUF_B];
    float *ra = g.col, *rb = g.col + n;
    const int had_alpha = im->info.has_alpha;
    for (int y = 0; y < h; y++) {
        float s = ((float)y + 0.5f) * (float)n / (float)h - 0.5f;
        s = s < 0 ? 0 : s > n - 1 ? (float)(n - 1) : s;
        int y0 = (int)s;
        if (y0 > n - 2)
            y0 = n - 2;
        float fy = s - (float)y0;
        const float *a0 = A + (size_t)y0 * n, *a1 = a0 + n;
        const float *b0 = B + (size_t)y0 * n, *b1 = b0 + n;
        for (int x = 0; x < n; x++) {
            ra[x] = a0[x] + (a1[x] - a0[x]) * fy;
            rb[x] = b0[x] + (b1[x] - b0[x]) * fy;
        }
        uint8_t *px = im->rgba + (size_t)y * w * 4;
        for (int x = 0; x < w; x++, px += 4) {
            int x0 = g.up_x0[x];
            float fx = g.up_fx[x];
            float a = ra[x0] + (ra[x0 + 1] - ra[x0]) * fx;
            float b = rb[x0] + (rb[x0 + 1] - rb[x0]) * fx;
            float lum = (0.299f * px[0] + 0.587f * px[1] + 0.114f * px[2]) * (1.f / 255.f);
            float q = a * lum + b;
            q = q < 0 ? 0 : q > 1 ? 1 : q;
            if (had_alpha)
                q *= (float)px[3] * (1.f / 255.f);
            px[3] = (uint8_t)(q * 255.f + 0.5f);
        }
    }
    return 0;
}

/* ---- The job -------------------------------------------------------------- */

static int
isnet_run(const struct be_request *req, struct be_result *res)
{
    char model[4096];
    if (isnet_model_file(req->cfg, model, sizeof model) != 0)
        return be_local_fail(res, 503, "model_unavailable", "model path of %s is too long",
                             req->cfg->name);
    struct img *im = be_local_input(req, res);
    if (!im)
        return -1;
    long max_px = req->cfg->contract.max_pixels;
    if (max_px > 0 && (long)im->width * im->height > max_px) {
        int w = im->width, h = im->height;
        img_free(im);
        return be_local_fail(res, 413, "image_too_large",
                             "input is %dx%d; backend %s takes at most %ld pixels", w, h,
                             req->cfg->name, max_px);
    }
    char why[512] = "";
    struct timespec t;
    double open_ms = 0, pre_ms = 0, run_ms = 0, post_ms = 0;
    int fresh;

    pthread_mutex_lock(&g.mu);
    fresh = !(g.session && strcmp(g.model, model) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (isnet_open(model, why, sizeof why) != 0) {
        pthread_mutex_unlock(&g.mu);
        img_free(im);
        return be_local_fail(res, 503, "model_unavailable", "%s", why);
    }
    open_ms = ms_since(&t);
    clock_gettime(CLOCK_MONOTONIC, &t);
    int rc = isnet_pre(im, why, sizeof why);
    pre_ms = ms_since(&t);
    if (rc == 0) {
        static const char *const in_names[] = {"input"};
        static const char *const out_names[] = {"output"};
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (g.plan_registered)
            runplan_begin(g.plan);
        rc = ort_check(g.api->Run(g.session, NULL, in_names, (const OrtValue *const *)&g.in_value, 1,
                                  out_names, 1, &g.out_value),
                       "inference", why, sizeof why);
        if (g.plan_registered)
            runplan_end(g.plan);
        run_ms = ms_since(&t);
    }
    if (rc == 0) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        rc = isnet_post(im, why, sizeof why);
        post_ms = ms_since(&t);
    }
    pthread_mutex_unlock(&g.mu);
    if (rc != 0) {
        img_free(im);
        return be_local_fail(res, 500, "upstream_error", "%s: %s", req->cfg->name, why);
    }
    json_t *prov = json_pack("{s:s,s:s,s:i,s:s,s:{s:f,s:f,s:f,s:f}}", "model",
                             req->cfg->model ? req->cfg->model : "isnet-medium", "runtime",
                             ort_version(), "threads", ISNET_THREADS, "refine",
                             "guided filter, luma guide", "timings", fresh ? "session_ms" : "reuse_ms",
                             open_ms, "pre_ms", pre_ms, "inference_ms", run_ms, "post_ms", post_ms);
    rc = be_local_output(req, res, im, prov);
    img_free(im);
    return rc;
}

int
be_local_isnet_plan_stats(struct runplan_stats *out)
{
    pthread_mutex_lock(&g.mu);
    int rc = g.plan && g.plan_registered ? 0 : -1;
    if (rc == 0)
        runplan_get_stats(g.plan, out);
    pthread_mutex_unlock(&g.mu);
    return rc;
}

const struct be_local be_local_isnet = {
    .name = "local-isnet",
    .available = isnet_available,
    .run = isnet_run,
    .shutdown = isnet_shutdown,
};
