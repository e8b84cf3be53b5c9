/* SPDX-License-Identifier: MIT */
/* rdn.h -- the RDN/RRDN super-resolution engine behind adapter local-rdn.
 *
 * Exposed beside the backend table so tests and the bench can pin the
 * thread count and tile size; the backend itself uses the defaults. */
#ifndef IG_BACKENDS_LOCAL_RDN_H
#define IG_BACKENDS_LOCAL_RDN_H

#include "backends/local/local.h"
#include "core/error.h"
#include "image/image.h"

struct rdn_opts {
    int threads;               /* 0: one per online CPU */
    int tile;                  /* core tile edge in input pixels; 0: the default */
};

struct rdn_stats {
    double load_ms;            /* model load and plan (0 when cached) */
    double run_ms;             /* the network, all tiles */
    long long macs;            /* useful multiply-adds (input pixels x model cost) */
    int tiles, margin, threads, tile;
    double workspace_mb;       /* tile buffers held by the cached engine */
    const char *kernel;        /* "avx512", "avx2" or "portable" */
    int winograd;              /* convolutions run by the Winograd kernel (0 on "portable") */
};

/* Upscales in by the model in dir (a folder holding model.json and its
 * shards, e.g. .../models/x4) whose factor must be scale. The RGB goes
 * through the network; alpha, when the source had it, through Lanczos3.
 * The model is loaded on first use and cached by dir; stats may be NULL.
 * Error codes: those of tfjs_load, model_unsupported (the graph's factor
 * is not scale, or its shape is one the engine cannot tile), out_of_memory. */
int rdn_upscale(const char *dir, int scale, const struct img *in, const struct rdn_opts *opts,
                struct img **out, struct rdn_stats *stats, struct ig_error *err);
/* Drops every cached model, its buffers and its threads. */
void rdn_shutdown(void);

#endif
