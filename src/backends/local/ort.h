/* SPDX-License-Identifier: MIT */
/* ort.h -- ONNX Runtime's C API, loaded with dlopen on first use.
 *
 * The runtime is a 46 MB shared library that only the model backends need,
 * so imagegate does not link it: a build without it works, and a server
 * whose runtime is missing reports the model rungs unavailable (with the
 * reason) instead of failing to start. The library is looked for at
 * $IMAGEGATE_ORT_LIB, else .deps/ort/lib/libonnxruntime.so.1 (from the
 * current directory, then under $IMAGEGATE_HOME), where scripts/setup links
 * it. A successful load is kept for the life of the process; a failed one
 * is tried again on the next call, so installing the runtime needs no
 * restart. One OrtEnv (logging, global state) is shared by every session. */
#ifndef IG_BACKENDS_LOCAL_ORT_H
#define IG_BACKENDS_LOCAL_ORT_H

#include <stddef.h>

#include <onnxruntime_c_api.h>

/* The API table (ORT_API_VERSION of the headers); NULL with the reason in
 * why when the library cannot be loaded or is too old. Thread-safe. */
const OrtApi *ort_api(char *why, size_t why_size);
/* The runtime's version string ("1.30.0"); "" before a successful load. */
const char *ort_version(void);
/* Takes a reference on the shared environment, creating it on first use;
 * NULL with why set on failure. Pair with ort_env_release. */
OrtEnv *ort_env_acquire(char *why, size_t why_size);
void ort_env_release(void);
/* 0 when status is NULL (success); otherwise copies its message into why
 * (prefixed with what), releases it and returns -1. */
int ort_check(OrtStatus *status, const char *what, char *why, size_t why_size);

#endif
