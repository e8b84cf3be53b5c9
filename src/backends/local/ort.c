/* SPDX-License-Identifier: MIT */
/* ort.c -- finds, loads and shares ONNX Runtime (see ort.h).
 *
 * The library is never dlclosed: ORT starts threads and registers static
 * destructors, and unloading it under them is a known way to crash at exit.
 * Everything it hands out (the environment, sessions) is released instead. */
#include "backends/local/ort.h"
#include "backends/local/local.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ORT_DEFAULT_LIB ".deps/ort/lib/libonnxruntime.so.1"

static pthread_mutex_t ort_mu = PTHREAD_MUTEX_INITIALIZER;
static const OrtApi *ort_table;
static char ort_ver[32];
static OrtEnv *ort_shared_env;
static int ort_env_refs;

/* Where to load the runtime from: the override, else where the set-up put
 * it (be_local_find). -1 when the path does not fit. */
static int
ort_lib_path(char *out, size_t size)
{
    const char *env = getenv("IMAGEGATE_ORT_LIB");
    if (env && env[0]) {
        int n = snprintf(out, size, "%s", env);
        return n < 0 || (size_t)n >= size ? -1 : 0;
    }
    return be_local_find(ORT_DEFAULT_LIB, out, size);
}

static const OrtApi *
ort_load_locked(char *why, size_t why_size)
{
    char path[4096];
    if (ort_lib_path(path, sizeof path) != 0) {
        snprintf(why, why_size, "ONNX Runtime path is too long");
        return NULL;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, why_size, "cannot load ONNX Runtime from %s: %s (run scripts/setup)", path,
                 e ? e : "unknown error");
        return NULL;
    }
    const OrtApiBase *(*get_base)(void);
    *(void **)&get_base = dlsym(h, "OrtGetApiBase");
    const OrtApiBase *base = get_base ? get_base() : NULL;
    if (!base) {
        snprintf(why, why_size, "%s is not ONNX Runtime: it has no OrtGetApiBase", path);
        dlclose(h);
        return NULL;
    }
    const OrtApi *api = base->GetApi(ORT_API_VERSION);
    if (!api) {
        snprintf(why, why_size, "ONNX Runtime %s at %s lacks C API version %d", base->GetVersionString(),
                 path, ORT_API_VERSION);
        dlclose(h);
        return NULL;
    }
    snprintf(ort_ver, sizeof ort_ver, "%s", base->GetVersionString());
    return api;
}

const OrtApi *
ort_api(char *why, size_t why_size)
{
    pthread_mutex_lock(&ort_mu);
    if (!ort_table)
        ort_table = ort_load_locked(why, why_size);
    const OrtApi *api = ort_table;
    pthread_mutex_unlock(&ort_mu);
    return api;
}

const char *
ort_version(void)
{
    return ort_ver;
}

int
ort_check(OrtStatus *status, const char *what, char *why, size_t why_size)
{
    if (!status)
        return 0;
    snprintf(why, why_size, "%s: %s", what, ort_table->GetErrorMessage(status));
    ort_table->ReleaseStatus(status);
    return -1;
}

OrtEnv *
ort_env_acquire(char *why, size_t why_size)
{
    if (!ort_api(why, why_size))
        return NULL;
    pthread_mutex_lock(&ort_mu);
    if (!ort_shared_env &&
        ort_check(ort_table->CreateEnv(ORT_LOGGING_LEVEL_ERROR, "imagegate", &ort_shared_env),
                  "ONNX Runtime environment", why, why_size) != 0)
        ort_shared_env = NULL;
    OrtEnv *env = ort_shared_env;
    if (env)
        ort_env_refs++;
    pthread_mutex_unlock(&ort_mu);
    return env;
}

void
ort_env_release(void)
{
    pthread_mutex_lock(&ort_mu);
    if (ort_env_refs > 0 && --ort_env_refs == 0) {
        ort_table->ReleaseEnv(ort_shared_env);
        ort_shared_env = NULL;
    }
    pthread_mutex_unlock(&ort_mu);
}
