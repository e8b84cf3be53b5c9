/* SPDX-License-Identifier: MIT */
/* tfjs.h -- a TF.js layers model (model.json + weight shards) as a graph.
 *
 * UpscalerJS ships its RDN/RRDN upscalers only in this format, and nothing
 * in Debian reads it from C, so the loader is ours. It reads the Keras
 * topology (layers and their inbound_nodes), sorts it into an order where
 * every node comes after its inputs, and points each convolution at its
 * kernel (HWIO) and bias inside one blob made of the shards laid end to
 * end, exactly as the weightsManifest lists them. Only the layer kinds the
 * engine implements are accepted; anything else is refused by name, before
 * a weight is read. Every size in the file is checked against the shard
 * lengths, so a truncated or corrupted model is an error, never a crash. */
#ifndef IG_BACKENDS_LOCAL_TFJS_H
#define IG_BACKENDS_LOCAL_TFJS_H

#include <stddef.h>

#include "core/error.h"

enum tfjs_op {
    TFJS_INPUT,
    TFJS_CONV,        /* Conv2D, odd square kernel, stride 1, "same" */
    TFJS_RELU,        /* Activation relu */
    TFJS_IDENTITY,    /* Activation linear */
    TFJS_CONCAT,      /* Concatenate on the channel axis */
    TFJS_ADD,         /* Add */
    TFJS_SCALE,       /* MultiplyBeta: x * beta */
    TFJS_UPSAMPLE,    /* UpSampling2D, nearest, factor `size` */
    TFJS_SHUFFLE      /* PixelShuffle<n>x: depth-to-space (NHWC, DCR), factor `size` */
};

struct tfjs_node {
    char name[96];
    enum tfjs_op op;
    int *in, n_in;           /* indices of earlier nodes */
    int channels;            /* output channels */
    int k, relu;             /* conv: kernel size, fused relu activation */
    int size;                /* upsample / shuffle factor */
    float beta;              /* scale */
    const float *kernel;     /* conv: [k][k][cin][channels], into the blob */
    const float *bias;       /* conv: [channels]; NULL when use_bias is false */
};

struct tfjs_model {
    struct tfjs_node *nodes;  /* topological order; nodes[0] is the input */
    int n_nodes;
    int output;               /* index of the output node */
    float *blob;              /* every shard, end to end */
    size_t blob_floats;
    long long macs_per_px;    /* conv multiply-adds per input pixel */
};

/* Loads dir/model.json and its shards. Error codes: model_missing (no
 * model.json or a shard absent), model_corrupt (bad JSON, bad shapes, short
 * shards), model_unsupported (a layer kind or option the engine lacks). */
int tfjs_load(const char *dir, struct tfjs_model *m, struct ig_error *err);
void tfjs_free(struct tfjs_model *m);

#endif
