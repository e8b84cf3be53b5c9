/* SPDX-License-Identifier: MIT */
/* tfjs.c -- reads a TF.js layers model into a tfjs_model (see tfjs.h).
 *
 * Two passes over the layers: the first records each layer's kind, options
 * and input names; the second places a layer only once all its inputs are
 * placed (a topological sort, so the file's layer order does not matter and
 * a cycle or a dangling name is caught). Shapes are then inferred along the
 * sorted graph and checked against every kernel and bias the manifest
 * lists, and the shards are read into one blob whose length must match the
 * manifest to the byte. */
#include "backends/local/tfjs.h"
#include "core/alloc.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TFJS_MAX_NODES 4096
#define TFJS_MAX_INPUTS 256

struct raw_layer {
    const char *name, *cls;
    json_t *cfg;
    json_t *inbound;          /* the array of [name, 0, 0, {}] entries */
};

static int
corrupt(struct ig_error *err, const char *dir, const char *what)
{
    return ig_error_set(err, 500, "model_corrupt", "%s/model.json: %s", dir, what);
}

static int
unsupported(struct ig_error *err, const char *dir, const char *layer, const char *what)
{
    return ig_error_set(err, 500, "model_unsupported", "%s/model.json: layer %s: %s", dir, layer,
                        what);
}

static int
int_pair(json_t *v, int *a, int *b)
{
    if (json_is_integer(v)) {
        *a = *b = (int)json_integer_value(v);
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(json_array_get(v, 0)) ||
        !json_is_integer(json_array_get(v, 1)))
        return -1;
    *a = (int)json_integer_value(json_array_get(v, 0));
    *b = (int)json_integer_value(json_array_get(v, 1));
    return 0;
}

static const char *
cfg_str(json_t *cfg, const char *key)
{
    return json_string_value(json_object_get(cfg, key));
}

/* Fills the kind and options of node n from its Keras class and config. */
static int
parse_layer(const char *dir, const struct raw_layer *r, struct tfjs_node *n,
            struct ig_error *err)
{
    const char *cls = r->cls;
    json_t *cfg = r->cfg;
    if (strcmp(cls, "InputLayer") == 0) {
        n->op = TFJS_INPUT;
        json_t *shape = json_object_get(cfg, "batch_input_shape");
        json_t *c = json_array_get(shape, json_array_size(shape) - 1);
        if (!json_is_array(shape) || json_array_size(shape) != 4 || !json_is_integer(c))
            return unsupported(err, dir, n->name, "input is not [batch, h, w, channels]");
        n->channels = (int)json_integer_value(c);
        return 0;
    }
    if (strcmp(cls, "Conv2D") == 0) {
        n->op = TFJS_CONV;
        int kh, kw, sh, sw, dh, dw;
        json_t *f = json_object_get(cfg, "filters");
        if (!json_is_integer(f) || json_integer_value(f) < 1 || json_integer_value(f) > 4096 ||
            int_pair(json_object_get(cfg, "kernel_size"), &kh, &kw) != 0)
            return corrupt(err, dir, "a Conv2D has no valid filters or kernel_size");
        n->channels = (int)json_integer_value(f);
        if (kh != kw || kh < 1 || kh > 7 || kh % 2 == 0)
            return unsupported(err, dir, n->name, "only odd square kernels up to 7x7");
        n->k = kh;
        json_t *st = json_object_get(cfg, "strides"), *dl = json_object_get(cfg, "dilation_rate");
        if ((st && (int_pair(st, &sh, &sw) != 0 || sh != 1 || sw != 1)) ||
            (dl && (int_pair(dl, &dh, &dw) != 0 || dh != 1 || dw != 1)))
            return unsupported(err, dir, n->name, "only stride 1 and dilation 1");
        json_t *g = json_object_get(cfg, "groups");
        if (g && json_integer_value(g) != 1)
            return unsupported(err, dir, n->name, "grouped convolution");
        const char *pad = cfg_str(cfg, "padding"), *fmt = cfg_str(cfg, "data_format");
        if (!pad || !(strcmp(pad, "same") == 0 || (strcmp(pad, "valid") == 0 && n->k == 1)))
            return unsupported(err, dir, n->name, "only \"same\" padding");
        if (fmt && strcmp(fmt, "channels_last") != 0)
            return unsupported(err, dir, n->name, "only channels_last");
        const char *act = cfg_str(cfg, "activation");
        if (act && strcmp(act, "relu") == 0)
            n->relu = 1;
        else if (act && strcmp(act, "linear") != 0)
            return unsupported(err, dir, n->name, "activation other than linear or relu");
        return 0;
    }
    if (strcmp(cls, "Activation") == 0) {
        const char *act = cfg_str(cfg, "activation");
        if (act && strcmp(act, "relu") == 0)
            n->op = TFJS_RELU;
        else if (act && strcmp(act, "linear") == 0)
            n->op = TFJS_IDENTITY;
        else
            return unsupported(err, dir, n->name, "activation other than linear or relu");
        return 0;
    }
    if (strcmp(cls, "Concatenate") == 0) {
        json_t *ax = json_object_get(cfg, "axis");
        if (ax && json_integer_value(ax) != 3 && json_integer_value(ax) != -1)
            return unsupported(err, dir, n->name, "concatenation off the channel axis");
        n->op = TFJS_CONCAT;
        return 0;
    }
    if (strcmp(cls, "Add") == 0) {
        n->op = TFJS_ADD;
        return 0;
    }
    if (strcmp(cls, "MultiplyBeta") == 0) {
        json_t *b = json_object_get(cfg, "beta");
        n->op = TFJS_SCALE;
        n->beta = b ? (float)json_number_value(b) : 0.2f;
        return 0;
    }
    if (strcmp(cls, "UpSampling2D") == 0) {
        int a, b;
        const char *interp = cfg_str(cfg, "interpolation");
        if (int_pair(json_object_get(cfg, "size"), &a, &b) != 0)
            return corrupt(err, dir, "an UpSampling2D has no valid size");
        if (a != b || a < 1 || a > 16 || (interp && strcmp(interp, "nearest") != 0))
            return unsupported(err, dir, n->name, "only square nearest upsampling");
        n->op = TFJS_UPSAMPLE;
        n->size = a;
        return 0;
    }
    if (strncmp(cls, "PixelShuffle", 12) == 0) {
        json_t *s = json_object_get(cfg, "scale");
        int sc = s ? (int)json_integer_value(s) : atoi(cls + 12);
        if (sc < 1 || sc > 16)
            return unsupported(err, dir, n->name, "pixel shuffle without a scale");
        n->op = TFJS_SHUFFLE;
        n->size = sc;
        return 0;
    }
    char what[160];
    snprintf(what, sizeof what, "unknown layer type %s", cls);
    return unsupported(err, dir, n->name, what);
}

/* Infers n's channels (and checks its inputs agree) once its inputs are known. */
static int
infer(const char *dir, struct tfjs_model *m, struct tfjs_node *n, struct ig_error *err)
{
    const struct tfjs_node *a = n->n_in ? &m->nodes[n->in[0]] : NULL;
    switch (n->op) {
    case TFJS_INPUT:
        return n->n_in == 0 ? 0 : corrupt(err, dir, "an input layer has inputs");
    case TFJS_CONV:
    case TFJS_RELU:
    case TFJS_IDENTITY:
    case TFJS_SCALE:
    case TFJS_UPSAMPLE:
        if (n->n_in != 1)
            return unsupported(err, dir, n->name, "takes exactly one input");
        if (n->op != TFJS_CONV)
            n->channels = a->channels;
        return 0;
    case TFJS_SHUFFLE:
        if (n->n_in != 1 || a->channels % (n->size * n->size) != 0)
            return unsupported(err, dir, n->name, "channels not divisible by scale^2");
        n->channels = a->channels / (n->size * n->size);
        return 0;
    case TFJS_CONCAT:
        n->channels = 0;
        for (int i = 0; i < n->n_in; i++)
            n->channels += m->nodes[n->in[i]].channels;
        return n->n_in >= 1 ? 0 : corrupt(err, dir, "a Concatenate has no inputs");
    case TFJS_ADD:
        if (n->n_in < 2)
            return corrupt(err, dir, "an Add has fewer than two inputs");
        for (int i = 1; i < n->n_in; i++)
            if (m->nodes[n->in[i]].channels != a->channels)
                return corrupt(err, dir, "an Add mixes channel counts");
        n->channels = a->channels;
        return 0;
    }
    return corrupt(err, dir, "bad node");
}

static int
read_layers(const char *dir, json_t *layers, struct raw_layer **out, size_t *n_out,
            struct ig_error *err)
{
    size_t n = json_array_size(layers);
    if (!json_is_array(layers) || n == 0 || n > TFJS_MAX_NODES)
        return corrupt(err, dir, "no layers");
    struct raw_layer *r = ig_calloc(n, sizeof *r);
    if (!r)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(layers, i);
        r[i].cls = json_string_value(json_object_get(l, "class_name"));
        r[i].cfg = json_object_get(l, "config");
        r[i].name = json_string_value(json_object_get(l, "name"));
        if (!r[i].name)
            r[i].name = json_string_value(json_object_get(r[i].cfg, "name"));
        json_t *ib = json_object_get(l, "inbound_nodes");
        if (!r[i].cls || !json_is_object(r[i].cfg) || !r[i].name || !json_is_array(ib) ||
            json_array_size(ib) > 1) {
            ig_free(r);
            return corrupt(err, dir, "a layer lacks class_name, config, name or inbound_nodes");
        }
        r[i].inbound = json_array_size(ib) ? json_array_get(ib, 0) : NULL;
        if (r[i].inbound && (!json_is_array(r[i].inbound) ||
                             json_array_size(r[i].inbound) > TFJS_MAX_INPUTS)) {
            ig_free(r);
            return corrupt(err, dir, "bad inbound_nodes");
        }
    }
    *out = r;
    *n_out = n;
    return 0;
}

static const char *
inbound_name(json_t *entry)
{
    return json_string_value(json_array_get(entry, 0));
}

/* Places layers once their inputs are placed; fills m->nodes in that order. */
static int
sort_layers(const char *dir, const struct raw_layer *r, size_t n, struct tfjs_model *m,
            struct ig_error *err)
{
    int *where = ig_malloc(n * sizeof *where);       /* raw index -> node index, -1 unplaced */
    m->nodes = ig_calloc(n, sizeof *m->nodes);
    if (!where || !m->nodes) {
        ig_free(where);
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        where[i] = -1;
    int rc = 0;
    for (int placed = 1; placed && m->n_nodes < (int)n && rc == 0;) {
        placed = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (where[i] >= 0)
                continue;
            size_t ni = r[i].inbound ? json_array_size(r[i].inbound) : 0;
            int ready = 1;
            for (size_t j = 0; j < ni && ready; j++) {
                const char *nm = inbound_name(json_array_get(r[i].inbound, j));
                if (!nm) {
                    rc = corrupt(err, dir, "an inbound node has no name");
                    break;
                }
                size_t t = 0;
                while (t < n && strcmp(r[t].name, nm) != 0)
                    t++;
                if (t == n) {
                    char what[200];
                    snprintf(what, sizeof what, "layer %.80s takes unknown input %.80s",
                             r[i].name, nm);
                    rc = corrupt(err, dir, what);
                    break;
                }
                ready = where[t] >= 0;
            }
            if (rc || !ready)
                continue;
            struct tfjs_node *nd = &m->nodes[m->n_nodes];
            snprintf(nd->name, sizeof nd->name, "%s", r[i].name);
            if ((rc = parse_layer(dir, &r[i], nd, err)) != 0)
                break;
            nd->in = ig_calloc(ni ? ni : 1, sizeof *nd->in);
            if (!nd->in) {
                rc = ig_error_set(err, 500, "out_of_memory", "out of memory");
                break;
            }
            for (size_t j = 0; j < ni; j++) {
                const char *nm = inbound_name(json_array_get(r[i].inbound, j));
                size_t t = 0;
                while (strcmp(r[t].name, nm) != 0)
                    t++;
                nd->in[nd->n_in++] = where[t];
            }
            if ((rc = infer(dir, m, nd, err)) != 0) {
                m->n_nodes++;
                break;
            }
            where[i] = m->n_nodes++;
            placed = 1;
        }
    }
    ig_free(where);
    if (rc == 0 && m->n_nodes < (int)n)
        rc = corrupt(err, dir, "the layers form a cycle");
    if (rc == 0 && (m->nodes[0].op != TFJS_INPUT || m->nodes[0].channels != 3))
        rc = unsupported(err, dir, m->nodes[0].name, "the first layer must be a 3-channel input");
    for (int i = 1; rc == 0 && i < m->n_nodes; i++)
        if (m->nodes[i].op == TFJS_INPUT)
            rc = unsupported(err, dir, m->nodes[i].name, "more than one input");
    return rc;
}

static struct tfjs_node *
find_node(struct tfjs_model *m, const char *name, size_t len)
{
    for (int i = 0; i < m->n_nodes; i++)
        if (strlen(m->nodes[i].name) == len && memcmp(m->nodes[i].name, name, len) == 0)
            return &m->nodes[i];
    return NULL;
}

/* Reads the shards into the blob and points every conv at its weights. */
static int
load_weights(const char *dir, json_t *manifest, struct tfjs_model *m, struct ig_error *err)
{
    if (!json_is_array(manifest) || json_array_size(manifest) == 0)
        return corrupt(err, dir, "no weightsManifest");
    size_t total = 0;
    for (size_t g = 0; g < json_array_size(manifest); g++) {
        json_t *ws = json_object_get(json_array_get(manifest, g), "weights");
        if (!json_is_array(ws))
            return corrupt(err, dir, "a manifest group has no weights");
        for (size_t i = 0; i < json_array_size(ws); i++) {
            json_t *w = json_array_get(ws, i), *shape = json_object_get(w, "shape");
            const char *dt = json_string_value(json_object_get(w, "dtype"));
            if (json_object_get(w, "quantization") || (dt && strcmp(dt, "float32") != 0))
                return ig_error_set(err, 500, "model_unsupported",
                                    "%s/model.json: only float32 weights", dir);
            if (!json_is_array(shape) || json_array_size(shape) > 4)
                return corrupt(err, dir, "a weight has no valid shape");
            size_t cnt = 1;
            for (size_t d = 0; d < json_array_size(shape); d++) {
                json_int_t v = json_integer_value(json_array_get(shape, d));
                if (v < 1 || v > 1 << 16)
                    return corrupt(err, dir, "a weight has no valid shape");
                cnt *= (size_t)v;
            }
            if (cnt > ((size_t)1 << 28) || total + cnt > ((size_t)1 << 28))
                return corrupt(err, dir, "weights larger than 1 GiB");
            total += cnt;
        }
    }
    m->blob = ig_malloc((total ? total : 1) * sizeof(float));
    if (!m->blob)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    m->blob_floats = total;
    size_t have = 0;                      /* bytes read so far */
    for (size_t g = 0; g < json_array_size(manifest); g++) {
        json_t *paths = json_object_get(json_array_get(manifest, g), "paths");
        if (!json_is_array(paths))
            return corrupt(err, dir, "a manifest group has no paths");
        for (size_t i = 0; i < json_array_size(paths); i++) {
            const char *p = json_string_value(json_array_get(paths, i));
            if (!p || !p[0] || strchr(p, '/') || strcmp(p, "..") == 0)
                return corrupt(err, dir, "a shard path is not a plain file name");
            char path[4096];
            if (snprintf(path, sizeof path, "%s/%s", dir, p) >= (int)sizeof path)
                return corrupt(err, dir, "shard path too long");
            FILE *f = fopen(path, "rb");
            if (!f)
                return ig_error_set(err, 500, "model_missing", "model files missing: %s (%s)",
                                    path, strerror(errno));
            size_t room = total * sizeof(float) - have;
            size_t got = fread((char *)m->blob + have, 1, room, f);
            int extra = got == room && fgetc(f) != EOF;
            int bad = ferror(f);
            fclose(f);
            if (bad || extra)
                return ig_error_set(err, 500, "model_corrupt",
                                    "%s: %s", path, bad ? "read error" : "longer than the manifest");
            have += got;
        }
    }
    if (have != total * sizeof(float))
        return ig_error_set(err, 500, "model_corrupt",
                            "%s: weight shards hold %zu bytes; the manifest needs %zu (truncated?)",
                            dir, have, total * sizeof(float));
    size_t off = 0;
    for (size_t g = 0; g < json_array_size(manifest); g++) {
        json_t *ws = json_object_get(json_array_get(manifest, g), "weights");
        for (size_t i = 0; i < json_array_size(ws); i++) {
            json_t *w = json_array_get(ws, i), *shape = json_object_get(w, "shape");
            const char *nm = json_string_value(json_object_get(w, "name"));
            size_t cnt = 1, nd = json_array_size(shape);
            for (size_t d = 0; d < nd; d++)
                cnt *= (size_t)json_integer_value(json_array_get(shape, d));
            const char *slash = nm ? strrchr(nm, '/') : NULL;
            struct tfjs_node *n = slash ? find_node(m, nm, (size_t)(slash - nm)) : NULL;
            if (!n || n->op != TFJS_CONV)
                return corrupt(err, dir, "a weight names no convolution layer");
            const float *at = m->blob + off;
            off += cnt;
            int cin = m->nodes[n->in[0]].channels;
            if (strcmp(slash, "/kernel") == 0) {
                if (nd != 4 || json_integer_value(json_array_get(shape, 0)) != n->k ||
                    json_integer_value(json_array_get(shape, 1)) != n->k ||
                    json_integer_value(json_array_get(shape, 2)) != cin ||
                    json_integer_value(json_array_get(shape, 3)) != n->channels)
                    return corrupt(err, dir, "a kernel's shape does not fit its layer");
                n->kernel = at;
            } else if (strcmp(slash, "/bias") == 0) {
                if (nd != 1 || (int)cnt != n->channels)
                    return corrupt(err, dir, "a bias's shape does not fit its layer");
                n->bias = at;
            } else {
                return corrupt(err, dir, "a weight is neither kernel nor bias");
            }
        }
    }
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].op == TFJS_CONV && !m->nodes[i].kernel)
            return corrupt(err, dir, "a convolution has no kernel in the manifest");
    return 0;
}

int
tfjs_load(const char *dir, struct tfjs_model *m, struct ig_error *err)
{
    memset(m, 0, sizeof *m);
    char path[4096];
    if (snprintf(path, sizeof path, "%s/model.json", dir) >= (int)sizeof path)
        return ig_error_set(err, 500, "model_missing", "model path too long");
    if (access(path, R_OK) != 0)
        return ig_error_set(err, 500, "model_missing", "model files missing: %s", path);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root)
        return ig_error_set(err, 500, "model_corrupt", "%s: line %d: %s", path, je.line, je.text);
    json_t *topo = json_object_get(root, "modelTopology");
    json_t *mc = json_object_get(topo, "model_config");
    json_t *cfg = json_object_get(mc ? mc : topo, "config");
    struct raw_layer *raw = NULL;
    size_t n_raw = 0;
    int rc = read_layers(dir, json_object_get(cfg, "layers"), &raw, &n_raw, err);
    if (rc == 0)
        rc = sort_layers(dir, raw, n_raw, m, err);
    if (rc == 0) {
        json_t *outs = json_object_get(cfg, "output_layers");
        const char *on = json_string_value(json_array_get(json_array_get(outs, 0), 0));
        struct tfjs_node *o = on && json_array_size(outs) == 1 ? find_node(m, on, strlen(on)) : NULL;
        if (!o)
            rc = corrupt(err, dir, "no single output layer");
        else
            m->output = (int)(o - m->nodes);
    }
    if (rc == 0)
        rc = load_weights(dir, json_object_get(root, "weightsManifest"), m, err);
    if (rc == 0) {
        /* multiply-adds per input pixel, scaled past an upsampling */
        long long *area = ig_calloc((size_t)m->n_nodes, sizeof *area);
        if (!area) {
            rc = ig_error_set(err, 500, "out_of_memory", "out of memory");
        } else {
            for (int i = 0; i < m->n_nodes; i++) {
                struct tfjs_node *n = &m->nodes[i];
                area[i] = n->n_in ? area[n->in[0]] : 1;
                if (n->op == TFJS_UPSAMPLE || n->op == TFJS_SHUFFLE)
                    area[i] *= n->size * n->size;
                if (n->op == TFJS_CONV)
                    m->macs_per_px += area[i] * n->k * n->k *
                                      m->nodes[n->in[0]].channels * n->channels;
            }
            ig_free(area);
        }
    }
    ig_free(raw);
    json_decref(root);
    if (rc != 0)
        tfjs_free(m);
    return rc;
}

void
tfjs_free(struct tfjs_model *m)
{
    for (int i = 0; i < m->n_nodes; i++)
        ig_free(m->nodes[i].in);
    ig_free(m->nodes);
    ig_free(m->blob);
    memset(m, 0, sizeof *m);
}
