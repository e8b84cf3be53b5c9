/* SPDX-License-Identifier: MIT */
/* local.h -- backends that run on this machine, in this process.
 *
 * A vendor protocol is a state machine on the I/O loop (backend.h); a local
 * backend is one synchronous function that the executor runs on a worker
 * thread, never on the loop. It gets the same be_request a vendor adapter
 * gets (encoded input bytes, scale, limits) and fills the same be_result
 * (encoded output bytes, provenance), so the router cannot tell them apart.
 *
 * Models are loaded once, on the first job that needs them, and stay loaded
 * (with their buffers) for the life of the process: memory touched for the
 * first time is slow here, and a warm server must not pay it per job.
 * be_local_shutdown releases them at exit. */
#ifndef IG_BACKENDS_LOCAL_LOCAL_H
#define IG_BACKENDS_LOCAL_LOCAL_H

#include <stddef.h>

#include "backends/backend.h"

struct be_local {
    const char *name;                /* the config's adapter kind, "local-rdn" */
    /* Can it run at all (model files present, runtime loadable)? 0 with a
     * reason the router records as the rung's skip reason. Cheap: it must
     * not load a model. */
    int (*available)(const struct ig_backend_cfg *cfg, char *why, size_t why_size);
    /* Runs one job on the calling thread. Returns 0 with res->ok set, or -1
     * with res->err filled (res->ok 0). Thread-safe. */
    int (*run)(const struct be_request *req, struct be_result *res);
    /* Frees what the backend cached; NULL when it caches nothing. */
    void (*shutdown)(void);
};

extern const struct be_local be_local_lanczos;
extern const struct be_local be_local_isnet;
extern const struct be_local be_local_rdn;

struct runplan_stats;
/* The ISNet session's activation allocator (backends/local/runplan.h), for
 * tests: 0 with its statistics, -1 when there is none (no job has run, or
 * the session uses ORT's arena). */
int be_local_isnet_plan_stats(struct runplan_stats *out);

/* The local backend for a config's adapter kind; NULL when there is none. */
const struct be_local *be_find_local(const char *adapter);
void be_local_shutdown(void);

/* What every local backend does around its model, so none repeats it:
 *
 * Decodes the job's input under the request's limits; NULL with res set
 * (invalid_request for a missing input, the image layer's code otherwise). */
struct img *be_local_input(const struct be_request *req, struct be_result *res);
/* The input of an upscale by scale, refused from its header before a
 * pixel is decoded when it is over the contract's max_pixels
 * (image_too_large) or its result would be over max_output_pixels
 * (output_too_large, 413): an x8 of a 16 MP photo is a 4 GB result. */
struct img *be_local_upscale_input(const struct be_request *req, int scale,
                                   struct be_result *res);
/* Encodes out in the requested format (PNG by default, which keeps alpha),
 * adds it to res, takes prov (a JSON object, may be NULL) as the result's
 * provenance and sets res->ok. -1 with res set on failure. */
int be_local_output(const struct be_request *req, struct be_result *res, const struct img *out,
                    json_t *prov);
/* The scale the job asks for, checked against the contract's list; 0 with
 * res set (invalid_request) when the contract has no such scale. A job
 * without a scale gets the contract's first one. */
int be_local_scale(const struct be_request *req, struct be_result *res);
/* A file the set-up installed (a path relative to the checkout, such as
 * .deps/models/x.onnx): as given when it exists from the current
 * directory, else under $IMAGEGATE_HOME, else beside the checkout the
 * running binary was built in; as given when none has it. -1 when the name
 * does not fit in out. */
int be_local_find(const char *rel, char *out, size_t size);
/* The same for a model file or folder named relative to model_path. */
int be_local_path(const struct ig_backend_cfg *cfg, const char *rel, char *out, size_t size);
/* Sets res to the error and returns -1. */
int be_local_fail(struct be_result *res, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
