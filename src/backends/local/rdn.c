/* SPDX-License-Identifier: MIT */
/* rdn.c -- adapter local-rdn: UpscalerJS RDN/RRDN upscalers on our own engine.
 *
 * Why an engine of our own: Debian bookworm has no ONNX Runtime, ncnn or
 * TFLite, OpenCV's dnn cannot read TF.js, and the models need only seven
 * ops (conv, relu, concat, add, nearest upsampling; thick adds a scalar
 * multiply and depth-to-space). tfjs.c reads the graph; this file plans and runs it; conv.c is the
 * one kernel that matters.
 *
 * Planning turns the Keras graph into a short list of real ops (conv, add,
 * scale, relu) over pooled buffers. Concatenate and linear activations
 * become addressing, not ops; a ReLU right after a conv that feeds nothing
 * else is fused into it, and so is an Add of such a conv and an earlier
 * tensor (the residuals). The output conv behind a nearest upsampling is
 * folded to input resolution (fold_upsample). Buffers are assigned by
 * liveness, so slim needs a handful whatever its depth.
 *
 * Tiling: the image is cut into core tiles; each op computes its core plus
 * the margin its consumers still need (the receptive field left between it
 * and the output), clipped to the image. Every buffer has a zero border, so
 * at the image edge a 3x3/5x5 read sees exactly the zero "same" padding the
 * model was trained with, and inside the image it sees real neighbours:
 * tiles therefore join without seams, and since every output pixel is summed
 * in the same order whatever the tile, the bytes do not depend on the tile
 * size or the thread count.
 *
 * Threads: the job already runs on its own worker; a small persistent pool
 * adds threads-1. All threads work on one tile at a time: each op's rows
 * are handed out in small chunks, each thread first from its own band of
 * the tile (see tile_worker), and a barrier ends the op. That needs one
 * workspace, not one per thread, and leaves no thread idle while another
 * finishes the last tile (whole tiles per thread did both: 161 MB and
 * 0.39-0.42 s for slim x2 512^2 against 81 MB and 0.40-0.43 s, cold 0.56 s
 * against 0.45 s). A thread descheduled here holds the other up for at most
 * a chunk of rows: the other takes over the rest of its band. Model, plan,
 * workspace and pool live in a cache keyed by model folder, built on first
 * use and kept: fresh pages cost 12-15 us each here, so a warm job touches
 * no new memory. One job at a time uses an engine (its mutex). */
#include "backends/local/rdn.h"
#include "backends/local/conv.h"
#include "backends/local/tfjs.h"
#include "core/alloc.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define RDN_MAX_THREADS 16
#define RDN_MAX_TILE 192
#define RDN_WIDE_BUDGET (640.0 * 1024 * 1024)   /* bytes of the workspace */

enum op_kind { OP_INPUT, OP_CONV, OP_ADD, OP_SCALE, OP_RELU };

struct op {
    enum op_kind kind;
    int node;                  /* the tfjs node it computes */
    int slot;                  /* its buffer; -1 for the output conv */
    int channels, stride;
    int need;                  /* margin (input pixels) its consumers need around the core */
    /* conv */
    int k, cin, cout_pad, relu, up, shuffle;
    int d2s;                   /* output conv folded to low resolution: depth-to-space on store */
    int has_res, res_op;       /* a following Add folded in: this op's output += res_op's */
    float *w, *b;              /* packed, 64-byte aligned */
    float *wt;                 /* NULL, or w for the channel-dot kernel (conv.h) */
    float *u;                  /* NULL, or w for the Winograd kernel (conv.h) */
    int wm;                    /* its output block edge */
    int nseg;
    int *seg_op;               /* ops read as the input, in channel order */
    /* add / scale / relu */
    int n_src;
    int *src_op;
    float beta;
};

struct pool {
    pthread_t th[RDN_MAX_THREADS];
    int n;                     /* threads including the caller */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned gen;
    int pending, quit;
    void (*fn)(void *, int, int);
    void *arg;
};

struct workspace {
    float **slots;             /* n_slots buffers of slot_floats */
    float *outbuf;             /* the output conv's result for one tile */
};

struct engine {
    char key[4096];
    struct engine *next;
    pthread_mutex_t lock;
    struct tfjs_model m;
    struct op *ops;
    int n_ops, out_op;
    int factor;                /* upscale of the output conv */
    int margin, border, n_slots, max_stride;
    float in_scale, out_scale;
    /* per-thread workspaces for `tile` */
    int tile, pitch;
    struct workspace *ws;
    int n_ws;
    size_t slot_floats, out_floats;
    struct pool *pool;
    size_t wino_floats;        /* Winograd scratch per thread (0: no layer uses it) */
    float *wscr;               /* wino_floats for each of wscr_n threads */
    int wscr_n;
};

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct engine *cache;

static double
now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Float buffers, 64-byte aligned. A workspace buffer of 2 MiB or more is
 * also aligned and sized to 2 MiB and asked for transparent huge pages: a
 * first touch here costs 12-15 us per 4 KiB page, and a cold job touches
 * about 100 MB of workspace (25k faults); with huge pages that is ~50
 * faults. Measured, bench/rdn slim x2 512^2 cold: 0.56-0.59 s before. */
#define HUGE_PAGE ((size_t)2 << 20)

static float *
falloc(size_t n)
{
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    if (bytes < HUGE_PAGE)
        return aligned_alloc(64, bytes ? bytes : 64);
    bytes = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    float *p = aligned_alloc(HUGE_PAGE, bytes);
    /* Only advice: where the kernel has THP off the buffer is still fine. */
    if (p)
        (void)madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

/*---- thread pool -------------------------------------------------------*/

struct worker_arg {
    struct pool *p;
    int idx;
};

static void *
worker(void *arg)
{
    struct worker_arg wa = *(struct worker_arg *)arg;
    free(arg);
    struct pool *p = wa.p;
    unsigned seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->gen == seen && !p->quit)
            pthread_cond_wait(&p->go, &p->mu);
        if (p->quit)
            break;
        seen = p->gen;
        void (*fn)(void *, int, int) = p->fn;
        void *a = p->arg;
        pthread_mutex_unlock(&p->mu);
        fn(a, wa.idx, p->n);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void
pool_free(struct pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    ig_free(p);
}

static struct pool *
pool_new(int n)
{
    struct pool *p = ig_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    p->n = 1;
    for (int i = 1; i < n; i++) {
        struct worker_arg *wa = malloc(sizeof *wa);
        if (!wa)
            break;
        wa->p = p;
        wa->idx = i;
        if (pthread_create(&p->th[i], NULL, worker, wa) != 0) {
            free(wa);
            break;
        }
        p->n++;
    }
    if (p->n != n) {
        pool_free(p);
        return NULL;
    }
    return p;
}

/* Runs fn(arg, i, n) for i in 0..n-1, i = 0 on the caller; returns when all are done. */
static void
pool_run(struct pool *p, void (*fn)(void *, int, int), void *arg)
{
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->pending = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    pthread_mutex_lock(&p->mu);
    while (p->pending)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/*---- planning ----------------------------------------------------------*/

static int
round_lanes(int c)
{
    if (c <= CONV_NARROW)
        return CONV_NARROW;
    return (c + CONV_LANES - 1) / CONV_LANES * CONV_LANES;
}

/* The real ops a node's value lives in, in channel order: one for a real
 * node, several for a concatenation. */
static int
resolve(const struct tfjs_model *m, const int *op_of, int node, int *out, int n, int cap)
{
    const struct tfjs_node *nd = &m->nodes[node];
    if (op_of[node] >= 0) {
        if (n >= cap)
            return -1;
        out[n] = op_of[node];
        return n + 1;
    }
    if (nd->op == TFJS_IDENTITY || nd->op == TFJS_RELU)   /* fused or linear */
        return resolve(m, op_of, nd->in[0], out, n, cap);
    if (nd->op == TFJS_CONCAT) {
        for (int i = 0; i < nd->n_in && n >= 0; i++)
            n = resolve(m, op_of, nd->in[i], out, n, cap);
        return n;
    }
    return -2;                 /* an upsampling read by something other than a conv */
}

static int
count_consumers(const struct tfjs_model *m, int node)
{
    int c = 0;
    for (int i = 0; i < m->n_nodes; i++)
        for (int j = 0; j < m->nodes[i].n_in; j++)
            c += m->nodes[i].in[j] == node;
    return c;
}

static int
plan_unsupported(struct ig_error *err, const char *dir, const char *name, const char *what)
{
    return ig_error_set(err, 500, "model_unsupported", "%s: layer %s: %s", dir, name, what);
}

/* An output conv that reads through a nearest upsampling by s is the same
 * as a conv at low resolution with s*s*cout outputs (one group per sub-pixel
 * phase, each summing the taps that land on the same low-resolution pixel)
 * followed by depth-to-space. Folded so, the x4 head runs with 48 real
 * output lanes instead of 3 padded to 16, at a sixteenth of the pixels. */
static int
fold_upsample(struct op *o, const struct tfjs_node *nd)
{
    int s = o->up, k = o->k, r = k / 2, R = (r + s - 1) / s, k2 = 2 * R + 1;
    int co = nd->channels, cout = co * s * s, pad = round_lanes(cout), cin = o->cin;
    float *w = falloc((size_t)k2 * k2 * cin * pad), *b = falloc((size_t)pad);
    if (!w || !b) {
        free(w);
        free(b);
        return -1;
    }
    memset(w, 0, (size_t)k2 * k2 * cin * pad * sizeof *w);
    memset(b, 0, (size_t)pad * sizeof *b);
    for (int sy = 0; sy < s; sy++)
        for (int sx = 0; sx < s; sx++) {
            int ph = (sy * s + sx) * co;
            for (int c = 0; c < co; c++)
                b[ph + c] = nd->bias ? nd->bias[c] : 0.0f;
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++) {
                    int dy = (sy + ky - r + s * R) / s, dx = (sx + kx - r + s * R) / s;
                    for (int ci = 0; ci < cin; ci++)
                        for (int c = 0; c < co; c++)
                            w[((size_t)(dy * k2 + dx) * cin + ci) * pad + ph + c] +=
                                nd->kernel[((size_t)(ky * k + kx) * cin + ci) * co + c];
                }
        }
    free(o->w);
    free(o->b);
    o->w = w;
    o->b = b;
    o->k = k2;
    o->d2s = s;
    o->up = 1;
    o->cout_pad = o->stride = pad;
    return 0;
}

/* An Add of a conv (feeding nothing else) and a tensor computed before it
 * becomes the conv's epilogue: one pass over memory fewer, one buffer fewer.
 * 0 when fused (op_of[node] then names the conv). */
static int
fuse_add(struct engine *e, int *op_of, int node, int *tmp)
{
    const struct tfjs_model *m = &e->m;
    const struct tfjs_node *nd = &m->nodes[node];
    if (nd->n_in != 2 || node == m->output)
        return -1;
    for (int j = 0; j < 2; j++) {
        int cn = nd->in[j], rn = nd->in[1 - j];
        if (m->nodes[cn].op != TFJS_CONV || op_of[cn] < 0 || cn == m->output ||
            count_consumers(m, cn) != 1)
            continue;
        struct op *co = &e->ops[op_of[cn]];
        if (co->relu || co->has_res || resolve(m, op_of, rn, tmp, 0, CONV_MAX_SEGS) != 1 ||
            tmp[0] >= op_of[cn])
            continue;
        co->has_res = 1;
        co->res_op = tmp[0];
        op_of[node] = op_of[cn];
        return 0;
    }
    return -1;
}

static int
build_ops(struct engine *e, const char *dir, struct ig_error *err)
{
    const struct tfjs_model *m = &e->m;
    int *op_of = ig_malloc((size_t)m->n_nodes * sizeof *op_of);
    int *tmp = ig_malloc(CONV_MAX_SEGS * sizeof *tmp);
    e->ops = ig_calloc((size_t)m->n_nodes, sizeof *e->ops);
    if (!op_of || !tmp || !e->ops) {
        ig_free(op_of);
        ig_free(tmp);
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    }
    int rc = 0;
    e->in_scale = 1.0f;
    e->out_scale = 1.0f;
    e->border = 1;
    e->out_op = -1;
    for (int i = 0; i < m->n_nodes && rc == 0; i++) {
        const struct tfjs_node *nd = &m->nodes[i];
        op_of[i] = -1;
        if (nd->op == TFJS_SHUFFLE || nd->op == TFJS_SCALE) {
            /* UpscalerJS's RRDN ("thick") graphs take and give 0..1 */
            e->in_scale = 1.0f / 255.0f;
            e->out_scale = 255.0f;
        }
        if (nd->op == TFJS_CONCAT || nd->op == TFJS_IDENTITY || nd->op == TFJS_UPSAMPLE ||
            nd->op == TFJS_SHUFFLE)
            continue;
        if (nd->op == TFJS_ADD && fuse_add(e, op_of, i, tmp) == 0)
            continue;
        if (nd->op == TFJS_RELU && m->nodes[nd->in[0]].op == TFJS_CONV &&
            count_consumers(m, nd->in[0]) == 1 && i != m->output && nd->in[0] != m->output) {
            e->ops[op_of[nd->in[0]]].relu = 1;
            continue;
        }
        struct op *o = &e->ops[e->n_ops];
        o->node = i;
        o->channels = nd->channels;
        o->stride = round_lanes(nd->channels);
        if (nd->op == TFJS_INPUT) {
            o->kind = OP_INPUT;
        } else if (nd->op == TFJS_CONV) {
            o->kind = OP_CONV;
            o->k = nd->k;
            o->relu = nd->relu;
            o->up = o->shuffle = 1;
            int src = nd->in[0];
            const struct tfjs_node *sn = &m->nodes[src];
            if (sn->op == TFJS_UPSAMPLE || sn->op == TFJS_SHUFFLE) {
                if (i != m->output)
                    rc = plan_unsupported(err, dir, nd->name,
                                          "only the output convolution may run after upsampling");
                *(sn->op == TFJS_UPSAMPLE ? &o->up : &o->shuffle) = sn->size;
                src = sn->in[0];
            }
            int n = rc ? 0 : resolve(m, op_of, src, tmp, 0, CONV_MAX_SEGS);
            if (rc == 0 && n <= 0)
                rc = plan_unsupported(err, dir, nd->name, "input the engine cannot address");
            if (rc == 0 && o->shuffle > 1 && n != 1)
                rc = plan_unsupported(err, dir, nd->name, "depth-to-space of a concatenation");
            if (rc)
                break;
            o->nseg = n;
            o->seg_op = ig_malloc((size_t)n * sizeof *o->seg_op);
            o->cin = m->nodes[nd->in[0]].channels;
            o->cout_pad = o->stride;
            o->w = falloc((size_t)nd->k * nd->k * o->cin * o->cout_pad);
            o->b = falloc((size_t)o->cout_pad);
            if (!o->seg_op || !o->w || !o->b) {
                rc = ig_error_set(err, 500, "out_of_memory", "out of memory");
                break;
            }
            memcpy(o->seg_op, tmp, (size_t)n * sizeof *tmp);
            size_t taps = (size_t)nd->k * nd->k * o->cin;
            for (size_t t = 0; t < taps; t++)
                for (int c = 0; c < o->cout_pad; c++)
                    o->w[t * o->cout_pad + c] =
                        c < nd->channels ? nd->kernel[t * nd->channels + c] : 0.0f;
            for (int c = 0; c < o->cout_pad; c++)
                o->b[c] = c < nd->channels && nd->bias ? nd->bias[c] : 0.0f;
            if (nd->k / 2 > e->border)
                e->border = nd->k / 2;
        } else {
            o->kind = nd->op == TFJS_ADD ? OP_ADD : nd->op == TFJS_SCALE ? OP_SCALE : OP_RELU;
            o->beta = nd->beta;
            o->src_op = ig_malloc((size_t)nd->n_in * sizeof *o->src_op);
            if (!o->src_op) {
                rc = ig_error_set(err, 500, "out_of_memory", "out of memory");
                break;
            }
            for (int j = 0; j < nd->n_in && rc == 0; j++) {
                int n = resolve(m, op_of, nd->in[j], tmp, 0, CONV_MAX_SEGS);
                if (n != 1)
                    rc = plan_unsupported(err, dir, nd->name, "input is not a plain tensor");
                else
                    o->src_op[o->n_src++] = tmp[0];
            }
        }
        op_of[i] = e->n_ops++;
        if (i == m->output)
            e->out_op = op_of[i];
    }
    if (rc == 0) {
        int n = resolve(m, op_of, m->output, tmp, 0, CONV_MAX_SEGS);
        struct op *o = e->out_op >= 0 ? &e->ops[e->out_op] : NULL;
        if (n != 1 || !o || o->kind != OP_CONV || o->channels != 3)
            rc = plan_unsupported(err, dir, m->nodes[m->output].name,
                                  "the output must be a 3-channel convolution");
        else if (o->up > 1 && fold_upsample(o, &m->nodes[o->node]) != 0)
            rc = ig_error_set(err, 500, "out_of_memory", "out of memory");
        if (rc == 0) {
            o->d2s = o->d2s ? o->d2s : 1;
            e->factor = o->up * o->shuffle * o->d2s;
        }
    }
    ig_free(op_of);
    ig_free(tmp);
    return rc;
}

/* Whether o is a conv that reads its input plainly (no upsampling or
 * depth-to-space) in whole groups of CONV_LANES channels: what the
 * channel-dot and Winograd kernels load a register at a time. */
static int
plain_groups(const struct engine *e, const struct op *o)
{
    if (o->kind != OP_CONV || o->up != 1 || o->shuffle != 1)
        return 0;
    for (int s = 0; s < o->nseg; s++)
        if (e->ops[o->seg_op[s]].channels % CONV_LANES != 0)
            return 0;
    return 1;
}

/* Gives the convolutions the channel-dot kernel can run their weights in
 * its layout ([k*k][CONV_DOT_MAX][cin]). */
static int
pack_dot(struct engine *e, struct ig_error *err)
{
    for (int i = 0; i < e->n_ops; i++) {
        struct op *o = &e->ops[i];
        /* cout_pad, not channels, counts the outputs: a folded output conv
         * keeps its 3 channels but computes s*s*3 */
        if (o->cout_pad != CONV_NARROW || o->channels > CONV_DOT_MAX || !plain_groups(e, o))
            continue;
        size_t taps = (size_t)o->k * o->k;
        o->wt = falloc(taps * CONV_DOT_MAX * o->cin);
        if (!o->wt)
            return ig_error_set(err, 500, "out_of_memory", "out of memory");
        for (size_t t = 0; t < taps; t++)
            for (int c = 0; c < CONV_DOT_MAX; c++)
                for (int ci = 0; ci < o->cin; ci++)
                    o->wt[(t * CONV_DOT_MAX + c) * o->cin + ci] =
                        o->w[(t * o->cin + ci) * o->cout_pad + c];
    }
    return 0;
}

/* Gives the 3x3 and 5x5 convolutions the Winograd kernel can run their
 * weights in its layout, and its block size. The folded output conv is
 * left direct: it writes the output buffer in high-resolution coordinates.
 * Runs before plan_memory, whose margins depend on the block sizes. */
static int
pack_wino(struct engine *e, struct ig_error *err)
{
    for (int i = 0; i < e->n_ops; i++) {
        struct op *o = &e->ops[i];
        int m = o->kind == OP_CONV ? conv_wino_block(o->k, o->cin, o->cout_pad) : 0;
        if (i == e->out_op || o->wt || !m || !plain_groups(e, o))
            continue;
        int al = m + o->k - 1;
        o->u = falloc((size_t)al * al * o->cin * o->cout_pad);
        if (!o->u)
            return ig_error_set(err, 500, "out_of_memory", "out of memory");
        o->wm = m;
        conv_wino_pack(o->k, m, o->cin, o->cout_pad, o->w, o->u);
        size_t f = conv_wino_scratch(o->k, m, o->cin, o->cout_pad);
        e->wino_floats = f > e->wino_floats ? f : e->wino_floats;
        if (o->k / 2 + m - 1 > e->border)
            e->border = o->k / 2 + m - 1;
    }
    return 0;
}

/* Margins (receptive field still ahead of each op) and buffer slots by liveness. */
static int
plan_memory(struct engine *e, struct ig_error *err)
{
    int *last = ig_malloc((size_t)e->n_ops * sizeof *last);
    int *slot_free = ig_malloc((size_t)e->n_ops * sizeof *slot_free);
    if (!last || !slot_free) {
        ig_free(last);
        ig_free(slot_free);
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    }
    for (int i = 0; i < e->n_ops; i++) {
        last[i] = i;
        e->ops[i].need = 0;
    }
    for (int i = e->n_ops - 1; i >= 0; i--) {
        struct op *o = &e->ops[i];
        int f = o->up * o->shuffle;
        int own = o->kind == OP_CONV ? (o->k / 2 + f - 1) / f : 0;
        if (o->u)
            own += conv_wino_reach(o->wm);
        int n = o->kind == OP_CONV ? o->nseg : o->n_src;
        const int *src = o->kind == OP_CONV ? o->seg_op : o->src_op;
        for (int j = 0; j < n; j++) {
            struct op *s = &e->ops[src[j]];
            if (s->need < o->need + own)
                s->need = o->need + own;
            if (last[src[j]] < i)
                last[src[j]] = i;
        }
        if (o->has_res) {
            struct op *s = &e->ops[o->res_op];
            s->need = s->need < o->need ? o->need : s->need;
            last[o->res_op] = last[o->res_op] < i ? i : last[o->res_op];
        }
    }
    e->margin = e->ops[0].need;
    e->n_slots = 0;
    e->max_stride = 0;
    int n_free = 0;
    for (int i = 0; i < e->n_ops; i++) {
        struct op *o = &e->ops[i];
        if (i == e->out_op) {
            o->slot = -1;
        } else {
            o->slot = n_free ? slot_free[--n_free] : e->n_slots++;
            if (o->stride > e->max_stride)
                e->max_stride = o->stride;
        }
        for (int j = 0; j <= i; j++)
            if (last[j] == i && e->ops[j].slot >= 0 && j != i)
                slot_free[n_free++] = e->ops[j].slot;
    }
    ig_free(last);
    ig_free(slot_free);
    return 0;
}

static void workspace_free(struct engine *e);

static void
engine_free(struct engine *e)
{
    if (!e)
        return;
    pool_free(e->pool);
    for (int i = 0; i < e->n_ops; i++) {
        free(e->ops[i].w);
        free(e->ops[i].wt);
        free(e->ops[i].u);
        free(e->ops[i].b);
        ig_free(e->ops[i].seg_op);
        ig_free(e->ops[i].src_op);
    }
    ig_free(e->ops);
    free(e->wscr);
    workspace_free(e);
    tfjs_free(&e->m);
    pthread_mutex_destroy(&e->lock);
    ig_free(e);
}

static struct engine *
engine_new(const char *dir, struct ig_error *err)
{
    struct engine *e = ig_calloc(1, sizeof *e);
    if (!e) {
        ig_error_set(err, 500, "out_of_memory", "out of memory");
        return NULL;
    }
    pthread_mutex_init(&e->lock, NULL);
    snprintf(e->key, sizeof e->key, "%s", dir);
    if (tfjs_load(dir, &e->m, err) != 0 || build_ops(e, dir, err) != 0 ||
        pack_dot(e, err) != 0 || pack_wino(e, err) != 0 || plan_memory(e, err) != 0) {
        engine_free(e);
        return NULL;
    }
    return e;
}

static void
workspace_free(struct engine *e)
{
    for (int w = 0; e->ws && w < e->n_ws; w++) {
        for (int i = 0; e->ws[w].slots && i < e->n_slots; i++)
            free(e->ws[w].slots[i]);
        ig_free(e->ws[w].slots);
        free(e->ws[w].outbuf);
    }
    ig_free(e->ws);
    e->ws = NULL;
    e->n_ws = 0;
    e->tile = 0;
}

/* The row pitch tiles of edge `tile` need on an image whose longer side is
 * `big`: the margin never reaches past the image. */
static int
tile_pitch(const struct engine *e, int tile, int big)
{
    int ext = tile + 2 * e->margin;
    return (ext < big ? ext : big) + 2 * e->border;
}

/* Sizes n workspaces for tiles of edge `tile` on an image whose longer side
 * is `big`; keeps the ones it has when they are large enough. */
static int
engine_workspace(struct engine *e, int tile, int big, int n, struct ig_error *err)
{
    int pitch = tile_pitch(e, tile, big);
    const struct op *oo = &e->ops[e->out_op];
    int hr = oo->up * oo->shuffle;              /* 1 when folded to low resolution */
    size_t out_floats = (size_t)tile * hr * tile * hr * oo->stride;
    if (e->ws && e->pitch >= pitch && e->out_floats >= out_floats && e->n_ws >= n)
        return 0;
    workspace_free(e);
    e->pitch = pitch;
    e->slot_floats = (size_t)e->pitch * e->pitch * e->max_stride;
    e->out_floats = out_floats;
    e->ws = ig_calloc((size_t)n, sizeof *e->ws);
    int ok = e->ws != NULL;
    if (ok)
        e->n_ws = n;
    for (int w = 0; ok && w < n; w++) {
        e->ws[w].slots = ig_calloc((size_t)e->n_slots, sizeof *e->ws[w].slots);
        e->ws[w].outbuf = falloc(e->out_floats);
        ok = e->ws[w].slots && e->ws[w].outbuf;
        for (int i = 0; ok && i < e->n_slots; i++)
            ok = (e->ws[w].slots[i] = falloc(e->slot_floats)) != NULL;
    }
    if (!ok) {
        workspace_free(e);
        return ig_error_set(err, 500, "out_of_memory", "out of memory for %d-pixel tiles", tile);
    }
    e->tile = tile;
    return 0;
}

/*---- running -----------------------------------------------------------*/

struct tile {
    struct engine *e;
    struct workspace *ws;
    const struct img *in;
    int x0, y0, x1, y1;        /* core, input pixels */
    int ex0, ey0, ex1, ey1;    /* extended by the margin, clipped to the image */
    struct conv_args ca;
    struct conv_seg seg[CONV_MAX_SEGS];
    int rx0, ry0, rw, rh;      /* the op's region, in extended-tile coordinates */
    float *scratch;            /* this thread's Winograd scratch */
};

static float *
at(const struct tile *t, int slot, int stride, int x, int y)
{
    const struct engine *e = t->e;
    return t->ws->slots[slot] +
           ((size_t)(y + e->border) * e->pitch + (size_t)(x + e->border)) * stride;
}

static void
op_region(struct tile *t, const struct op *o)
{
    int x0 = t->x0 - o->need, x1 = t->x1 + o->need;
    int y0 = t->y0 - o->need, y1 = t->y1 + o->need;
    x0 = x0 < t->ex0 ? t->ex0 : x0;
    y0 = y0 < t->ey0 ? t->ey0 : y0;
    x1 = x1 > t->ex1 ? t->ex1 : x1;
    y1 = y1 > t->ey1 ? t->ey1 : y1;
    t->rx0 = x0 - t->ex0;
    t->ry0 = y0 - t->ey0;
    t->rw = x1 - x0;
    t->rh = y1 - y0;
}

/* Zeroes the border ring around the op's region (all the reads outside it). */
static void
zero_ring(struct tile *t, const struct op *o)
{
    int B = t->e->border, s = o->stride;
    for (int y = t->ry0 - B; y < t->ry0 + t->rh + B; y++) {
        if (y < t->ry0 || y >= t->ry0 + t->rh) {
            memset(at(t, o->slot, s, t->rx0 - B, y), 0,
                   (size_t)(t->rw + 2 * B) * s * sizeof(float));
        } else {
            memset(at(t, o->slot, s, t->rx0 - B, y), 0, (size_t)B * s * sizeof(float));
            memset(at(t, o->slot, s, t->rx0 + t->rw, y), 0, (size_t)B * s * sizeof(float));
        }
    }
}

static void
run_elementwise(struct tile *t, const struct op *o, int r0, int r1)
{
    const struct engine *e = t->e;
    for (int y = t->ry0 + r0; y < t->ry0 + r1; y++)
        for (int x = t->rx0; x < t->rx0 + t->rw; x++) {
            float *d = at(t, o->slot, o->stride, x, y);
            const struct op *s0 = &e->ops[o->src_op[0]];
            const float *a = at(t, s0->slot, s0->stride, x, y);
            if (o->kind == OP_SCALE) {
                for (int c = 0; c < o->channels; c++)
                    d[c] = a[c] * o->beta;
            } else if (o->kind == OP_RELU) {
                for (int c = 0; c < o->channels; c++)
                    d[c] = a[c] > 0 ? a[c] : 0;
            } else {
                for (int c = 0; c < o->channels; c++)
                    d[c] = a[c];
                for (int j = 1; j < o->n_src; j++) {
                    const struct op *sj = &e->ops[o->src_op[j]];
                    const float *b = at(t, sj->slot, sj->stride, x, y);
                    for (int c = 0; c < o->channels; c++)
                        d[c] += b[c];
                }
            }
        }
}

/* The rows of op o's region that run_rows computes (for the output conv,
 * rows of its result; for the Winograd kernel, rows of blocks, which
 * sit on multiples of the block edge). Call after begin_op. */
static int
op_rows(const struct tile *t, const struct op *o)
{
    if (o->kind == OP_CONV && o->slot < 0)
        return (t->y1 - t->y0) * o->up * o->shuffle;
    if (o->kind == OP_CONV && t->ca.u)
        return (t->rh + t->ca.py + t->ca.wm - 1) / t->ca.wm;
    return t->rh;
}

/* Sets the tile up for op o: its region and, for a conv, the kernel's
 * arguments. Every thread does this for itself; it writes no buffer. */
static void
begin_op(struct tile *t, const struct op *o)
{
    struct engine *e = t->e;
    op_region(t, o);
    if (o->kind != OP_CONV)
        return;
    struct conv_args *a = &t->ca;
    for (int s = 0; s < o->nseg; s++) {
        const struct op *so = &e->ops[o->seg_op[s]];
        t->seg[s].base = t->ws->slots[so->slot];
        t->seg[s].stride = so->stride;
        t->seg[s].c = so->channels / (o->shuffle * o->shuffle);
    }
    a->k = o->k;
    a->cin = o->cin;
    a->cout_pad = o->cout_pad;
    a->w = o->w;
    a->wt = o->wt;
    a->u = o->u && conv_wino_enabled() ? o->u : NULL;
    a->scratch = t->scratch;
    a->b = o->b;
    a->seg = t->seg;
    a->nseg = o->nseg;
    a->pitch = e->pitch;
    a->border = e->border;
    a->up = o->up;
    a->shuffle = o->shuffle;
    a->relu = o->relu;
    a->res = NULL;
    if (o->has_res) {
        const struct op *ro = &e->ops[o->res_op];
        a->res = at(t, ro->slot, ro->stride, t->rx0, t->ry0);
        a->res_stride = ro->stride;
    }
    a->out_stride = o->stride;
    if (o->slot >= 0) {
        a->out = at(t, o->slot, o->stride, t->rx0, t->ry0);
        a->out_pitch = e->pitch;
        a->ow = t->rw;
        a->oh = t->rh;
        a->ox = t->rx0;
        a->oy = t->ry0;
        a->wm = o->wm;
        a->px = o->u ? (t->ex0 + t->rx0) % o->wm : 0;
        a->py = o->u ? (t->ey0 + t->ry0) % o->wm : 0;
    } else {
        int f = o->up * o->shuffle;
        a->out = t->ws->outbuf;
        a->out_pitch = (t->x1 - t->x0) * f;
        a->ow = (t->x1 - t->x0) * f;
        a->oh = (t->y1 - t->y0) * f;
        a->ox = t->rx0 * f;
        a->oy = t->ry0 * f;
    }
}

/* Rows [r0, r1) of op o. Each row is computed the same whoever computes
 * it, so the bytes do not depend on how the rows were shared out. */
static void
run_rows(struct tile *t, const struct op *o, int r0, int r1)
{
    struct engine *e = t->e;
    if (o->kind == OP_INPUT) {
        for (int y = r0; y < r1; y++)
            for (int x = 0; x < t->rw; x++) {
                const uint8_t *p = t->in->rgba +
                                   ((size_t)(t->ey0 + t->ry0 + y) * t->in->width +
                                    (size_t)(t->ex0 + t->rx0 + x)) * 4;
                float *d = at(t, o->slot, o->stride, t->rx0 + x, t->ry0 + y);
                for (int c = 0; c < 3; c++)
                    d[c] = p[c] * e->in_scale;
            }
    } else if (o->kind != OP_CONV) {
        run_elementwise(t, o, r0, r1);
    } else if (t->ca.u) {
        int y0 = t->ca.wm * r0 - t->ca.py, y1 = t->ca.wm * r1 - t->ca.py;
        conv_rows(&t->ca, y0 < 0 ? 0 : y0, y1 > t->rh ? t->rh : y1);
    } else {
        conv_rows(&t->ca, r0, r1);
    }
}

static void
store_output(const struct tile *t, struct img *out, int r0, int r1)
{
    const struct engine *e = t->e;
    const struct op *oo = &e->ops[e->out_op];
    int f = e->factor, w = (t->x1 - t->x0) * f;
    int ds = oo->d2s, stride = oo->stride, bw = w / ds;
    for (int y = r0; y < r1; y++)
        for (int x = 0; x < w; x++) {
            const float *s = t->ws->outbuf + ((size_t)(y / ds) * bw + x / ds) * stride +
                             ((y % ds) * ds + x % ds) * 3;
            uint8_t *d = out->rgba +
                         ((size_t)(t->y0 * f + y) * out->width + (size_t)(t->x0 * f + x)) * 4;
            for (int c = 0; c < 3; c++) {
                float v = nearbyintf(s[c] * e->out_scale);
                d[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
            d[3] = 255;
        }
}

/* One job: every thread works on the same tile, op after op; the rows of
 * each op are handed out in chunks, and a barrier ends the op, since the
 * next one reads what it wrote. Each thread owns a band of rows, the same
 * band of the tile in every op, so it mostly reads what it wrote itself:
 * rows dealt out in turn went to the other core half the time, and reading
 * lines another core has just written held slim's 64->64 convolutions to
 * 107 GMAC/s on two threads, where two single-thread processes make 144;
 * banded they run at 132-140. A thread done with its band takes chunks
 * from the others'. One workspace serves all threads (half the fresh memory
 * of one per thread, and memory touched for the first time is what a cold
 * job pays for here), and no thread idles at the end waiting for another's
 * last tile. */
#define ROW_CHUNK 4

struct job {
    struct engine *e;
    const struct img *in;
    struct img *out;
    int tile, cols, n_tiles;
    atomic_int *next;          /* per (tile, step, band): the next row of the band */
    pthread_barrier_t bar;
};

/* Hands out rows [0, n) of one step in chunks until none are left: first
 * from band `me` of `bands`, then from the others. */
static int
take_rows(atomic_int *next, int bands, int me, int n, int *r0, int *r1)
{
    for (int i = 0; i < bands; i++) {
        int b = (me + i) % bands;
        int lo = (int)((long)n * b / bands), hi = (int)((long)n * (b + 1) / bands);
        int r = lo + atomic_fetch_add(&next[b], ROW_CHUNK);
        if (r < hi) {
            *r0 = r;
            *r1 = r + ROW_CHUNK < hi ? r + ROW_CHUNK : hi;
            return 1;
        }
    }
    return 0;
}

static void
tile_worker(void *arg, int idx, int n)
{
    struct job *j = arg;
    struct engine *e = j->e;
    struct tile t;
    memset(&t, 0, sizeof t);
    t.e = e;
    t.ws = &e->ws[0];
    t.in = j->in;
    t.scratch = e->wscr ? e->wscr + (size_t)idx * e->wino_floats : NULL;
    int steps = e->n_ops + 1, r0, r1;
    for (int k = 0; k < j->n_tiles; k++) {
        t.x0 = k % j->cols * j->tile;
        t.y0 = k / j->cols * j->tile;
        t.x1 = t.x0 + j->tile < j->in->width ? t.x0 + j->tile : j->in->width;
        t.y1 = t.y0 + j->tile < j->in->height ? t.y0 + j->tile : j->in->height;
        t.ex0 = t.x0 - e->margin < 0 ? 0 : t.x0 - e->margin;
        t.ey0 = t.y0 - e->margin < 0 ? 0 : t.y0 - e->margin;
        t.ex1 = t.x1 + e->margin > j->in->width ? j->in->width : t.x1 + e->margin;
        t.ey1 = t.y1 + e->margin > j->in->height ? j->in->height : t.y1 + e->margin;
        for (int i = 0; i < e->n_ops; i++) {
            const struct op *o = &e->ops[i];
            begin_op(&t, o);
            /* the ring lies outside the region the rows write */
            if (idx == 0 && o->slot >= 0)
                zero_ring(&t, o);
            int rows = op_rows(&t, o);
            while (take_rows(&j->next[(k * steps + i) * n], n, idx, rows, &r0, &r1))
                run_rows(&t, o, r0, r1);
            pthread_barrier_wait(&j->bar);
        }
        int h = (t.y1 - t.y0) * e->factor;
        while (take_rows(&j->next[(k * steps + e->n_ops) * n], n, idx, h, &r0, &r1))
            store_output(&t, j->out, r0, r1);
        /* the next tile overwrites the buffers this one is read from */
        pthread_barrier_wait(&j->bar);
    }
}

static struct engine *
engine_get(const char *dir, struct ig_error *err, double *load_ms)
{
    pthread_mutex_lock(&cache_mu);
    struct engine *e = cache;
    while (e && strcmp(e->key, dir) != 0)
        e = e->next;
    if (!e) {
        double t0 = now_ms();
        e = engine_new(dir, err);
        if (e) {
            e->next = cache;
            cache = e;
            *load_ms = now_ms() - t0;
        }
    }
    pthread_mutex_unlock(&cache_mu);
    return e;
}

/* The default tile edge: RDN_MAX_TILE, where overlap and workspace
 * balance. A cold job pays for every fresh page of the workspace (the VM's
 * host backs them on first touch), so since the Winograd kernel made the
 * arithmetic cheap, 256-px tiles (82 MB for slim) cost more cold than their
 * smaller overlap saves. Measured with the first, 2x2-block kernel, slim x2
 * 512^2, interleaved runs: cold 0.41-0.50 s at 192 (49 MB) against
 * 0.48-0.53 s at 256, steady 0.36-0.46 s against 0.40-0.53 s; at 128
 * (24 MB) steady was no better. A wide receptive field (thick's margin
 * is 154 pixels) instead gets the largest tile whose workspace fits the
 * budget, since the overlap, not memory, is what small tiles cost there. */
static int
default_tile(const struct engine *e, int big)
{
    if (4 * e->margin <= RDN_MAX_TILE)
        return RDN_MAX_TILE;
    double per = (double)e->n_slots * e->max_stride * sizeof(float);
    for (int tile = big; tile > 32; tile -= 16) {
        int p = tile_pitch(e, tile, big);
        if ((double)p * p * per <= RDN_WIDE_BUDGET)
            return tile;
    }
    return 32;
}

static int
default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > RDN_MAX_THREADS ? RDN_MAX_THREADS : (int)n;
}

int
rdn_upscale(const char *dir, int scale, const struct img *in, const struct rdn_opts *opts,
            struct img **out, struct rdn_stats *stats, struct ig_error *err)
{
    *out = NULL;
    struct rdn_stats st = {0};
    struct engine *e = engine_get(dir, err, &st.load_ms);
    if (!e)
        return -1;
    if (e->factor != scale)
        return ig_error_set(err, 500, "model_unsupported", "%s upscales x%d, not x%d", dir,
                            e->factor, scale);
    int threads = opts && opts->threads > 0 ? opts->threads : default_threads();
    threads = threads > RDN_MAX_THREADS ? RDN_MAX_THREADS : threads;
    int big = in->width > in->height ? in->width : in->height;
    int tile = opts && opts->tile > 0 ? opts->tile : default_tile(e, big);
    tile = tile > big ? big : tile;
    if ((long)in->width * scale > 65535 || (long)in->height * scale > 65535)
        return ig_error_set(err, 413, "image_too_large", "output would exceed 65535 pixels a side");
    struct img *o = img_new(in->width * scale, in->height * scale);
    if (!o)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    struct job job = {.e = e, .in = in, .out = o, .tile = tile};
    job.cols = (in->width + tile - 1) / tile;
    job.n_tiles = job.cols * ((in->height + tile - 1) / tile);
    size_t n_steps = (size_t)job.n_tiles * (size_t)(e->n_ops + 1) * (size_t)threads;
    job.next = ig_malloc(n_steps * sizeof *job.next);
    if (!job.next || pthread_barrier_init(&job.bar, NULL, (unsigned)threads) != 0) {
        ig_free(job.next);
        img_free(o);
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    }
    for (size_t i = 0; i < n_steps; i++)
        atomic_init(&job.next[i], 0);
    pthread_mutex_lock(&e->lock);
    int rc = engine_workspace(e, tile, big, 1, err);
    if (rc == 0 && (!e->pool || e->pool->n != threads)) {
        pool_free(e->pool);
        e->pool = pool_new(threads);
        if (!e->pool)
            rc = ig_error_set(err, 500, "out_of_memory", "cannot start %d threads", threads);
    }
    if (rc == 0 && e->wino_floats && e->wscr_n < threads) {
        free(e->wscr);
        e->wscr_n = 0;
        if (!(e->wscr = falloc(e->wino_floats * (size_t)threads)))
            rc = ig_error_set(err, 500, "out_of_memory", "out of memory");
        else
            e->wscr_n = threads;
    }
    double t0 = now_ms();
    if (rc == 0)
        pool_run(e->pool, tile_worker, &job);
    pthread_barrier_destroy(&job.bar);
    ig_free(job.next);
    st.tiles = job.n_tiles;
    st.run_ms = now_ms() - t0;
    st.margin = e->margin;
    st.workspace_mb = (double)e->n_ws * (e->n_slots * e->slot_floats + e->out_floats) *
                      sizeof(float) / (1024.0 * 1024.0);
    st.macs = e->m.macs_per_px * in->width * in->height;
    pthread_mutex_unlock(&e->lock);
    if (rc == 0 && in->info.has_alpha) {
        struct img *al = img_resize(in, o->width, o->height, "lanczos3", err);
        if (!al) {
            rc = -1;
        } else {
            for (size_t i = 0; i < (size_t)o->width * o->height; i++)
                o->rgba[i * 4 + 3] = al->rgba[i * 4 + 3];
            img_free(al);
        }
    }
    if (rc != 0) {
        img_free(o);
        return -1;
    }
    o->info = in->info;
    o->info.width = o->width;
    o->info.height = o->height;
    st.threads = threads;
    st.tile = tile;
    st.kernel = conv_kernel_name();
    int wino = conv_wino_enabled();
    for (int i = 0; i < e->n_ops; i++)
        st.winograd += wino && e->ops[i].u;
    if (stats)
        *stats = st;
    *out = o;
    return 0;
}

void
rdn_shutdown(void)
{
    pthread_mutex_lock(&cache_mu);
    while (cache) {
        struct engine *e = cache;
        cache = e->next;
        engine_free(e);
    }
    pthread_mutex_unlock(&cache_mu);
}

/*---- the backend -------------------------------------------------------*/

static int
rdn_available(const struct ig_backend_cfg *cfg, char *why, size_t why_size)
{
    char path[4096];
    const struct ig_contract *k = &cfg->contract;
    for (size_t i = 0; i < (k->n_scales ? k->n_scales : 1); i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "x%d/model.json", k->n_scales ? k->scales[i] : 2);
        if (be_local_path(cfg, rel, path, sizeof path) != 0 || access(path, R_OK) != 0) {
            snprintf(why, why_size, "model files missing: %s", path);
            return 0;
        }
    }
    return 1;
}

static int
rdn_run(const struct be_request *req, struct be_result *res)
{
    int scale = be_local_scale(req, res);
    if (scale <= 0)
        return -1;
    struct img *in = be_local_upscale_input(req, scale, res);
    if (!in)
        return -1;
    char rel[32], dir[4096];
    snprintf(rel, sizeof rel, "x%d", scale);
    if (be_local_path(req->cfg, rel, dir, sizeof dir) != 0) {
        img_free(in);
        return be_local_fail(res, 500, "model_missing", "model path too long");
    }
    struct img *out = NULL;
    struct rdn_stats st;
    int rc = rdn_upscale(dir, scale, in, NULL, &out, &st, &res->err);
    img_free(in);
    if (rc != 0) {
        res->ok = 0;
        return -1;
    }
    json_t *prov = json_pack("{s:s,s:s?,s:i,s:s,s:i,s:i,s:i,s:{s:f,s:f}}", "engine",
                             "imagegate-rdn", "model", req->cfg->model, "scale", scale, "kernel",
                             st.kernel, "winograd_layers", st.winograd, "threads", st.threads,
                             "tile", st.tile, "timings", "load_ms", st.load_ms, "run_ms",
                             st.run_ms);
    rc = be_local_output(req, res, out, prov);
    img_free(out);
    return rc;
}

const struct be_local be_local_rdn = {
    .name = "local-rdn",
    .available = rdn_available,
    .run = rdn_run,
    .shutdown = rdn_shutdown,
};
