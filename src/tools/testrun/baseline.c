/* SPDX-License-Identifier: MIT */
/* baseline.c -- the baselines a suite compares with (see run.h).
 *
 * One baseline per case, backend and seed: the output's bytes exactly as
 * the backend made them, and a sidecar JSON with their SHA-256 and the
 * job's full provenance (backend, model build, fingerprint, seed, rendered
 * prompt). The sidecar is what tells drift from regression later, so a
 * baseline whose image no longer matches its sidecar's hash, or does not
 * decode, is refused as corrupt rather than compared. */
#include "tools/testrun/run.h"
#include "core/alloc.h"
#include "image/image.h"
#include "tools/tool.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void
tr_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

const char *
tr_prov_fingerprint(const json_t *prov)
{
    const char *fp = json_string_value(json_object_get(json_object_get(prov, "vendor"),
                                                       "fingerprint"));
    return fp ? fp : "";
}

const char *
tr_prov_build(const json_t *prov)
{
    const char *m = json_string_value(json_object_get(json_object_get(prov, "vendor"), "model"));
    if (!m)
        m = json_string_value(json_object_get(prov, "model"));
    return m ? m : "";
}

void
tr_baseline_clear(struct tr_baseline *b)
{
    ig_buf_free(&b->bytes);
    json_decref(b->sidecar);
    memset(b, 0, sizeof *b);
}

static const char *
ext_of(const char *mime)
{
    enum img_format f = IMG_FMT_UNKNOWN;
    if (mime && !strncmp(mime, "image/", 6) && img_format_parse(mime + 6, &f) == 0)
        return img_format_name(f);
    return "bin";
}

void
tr_baseline_paths(const char *dir, const char *cas, const char *backend, long long seed,
                  const char *mime, struct tr_baseline *b)
{
    snprintf(b->sidecar_path, sizeof b->sidecar_path, "%s/%s/%s-s%lld.json", dir, cas, backend,
             seed);
    snprintf(b->image_path, sizeof b->image_path, "%s/%s/%s-s%lld.%s", dir, cas, backend, seed,
             ext_of(mime));
}

int
tr_baseline_load(const char *dir, const char *cas, const char *backend, long long seed,
                 struct tr_baseline *b, struct ig_error *err)
{
    memset(b, 0, sizeof *b);
    tr_baseline_paths(dir, cas, backend, seed, NULL, b);
    struct stat st;
    if (stat(b->sidecar_path, &st) != 0)
        return 0;
    json_error_t je;
    b->sidecar = json_load_file(b->sidecar_path, 0, &je);
    const char *file = json_string_value(json_object_get(b->sidecar, "file"));
    const char *sha = json_string_value(json_object_get(b->sidecar, "sha256"));
    if (!b->sidecar || !file || !sha || strchr(file, '/'))
        return ig_error_set(err, 400, "corrupt_baseline",
                            "%s:%d:%d: not a baseline sidecar (%s; it needs 'file' and 'sha256')",
                            b->sidecar_path, b->sidecar ? 1 : je.line, b->sidecar ? 1 : je.column,
                            b->sidecar ? "fields missing" : je.text);
    snprintf(b->image_path, sizeof b->image_path, "%s/%s/%s", dir, cas, file);
    char *data;
    size_t len;
    if (tool_read_file(b->image_path, 256u << 20, &data, &len, err) != 0) {
        ig_error_prefix(err, "baseline %s: ", b->sidecar_path);
        return -1;
    }
    b->bytes.data = data;
    b->bytes.len = b->bytes.cap = len;
    tr_sha256_hex(data, len, b->sha256);
    struct img_info info;
    struct ig_error e2 = {0};
    if (strcmp(b->sha256, sha) != 0)
        return ig_error_set(err, 400, "corrupt_baseline",
                            "baseline image %s does not match its sidecar %s (sha256 %.12s..., "
                            "expected %.12s...); restore it or run --update-baselines",
                            b->image_path, b->sidecar_path, b->sha256, sha);
    if (img_probe(data, len, NULL, &info, &e2) != 0)
        return ig_error_set(err, 400, "corrupt_baseline", "baseline image %s: %s", b->image_path,
                            e2.message);
    b->present = 1;
    return 0;
}

static int
write_file(const char *path, const void *data, size_t len, struct ig_error *err)
{
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return ig_error_set(err, 500, "io_error", "cannot write %s: %s", tmp, strerror(errno));
    int ok = fwrite(data, 1, len, f) == len;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return ig_error_set(err, 500, "io_error", "cannot write %s: %s", path, strerror(errno));
    }
    return 0;
}

int
tr_baseline_save(const char *dir, const char *cas, const char *backend, long long seed,
                 const struct tr_output *o, struct ig_error *err)
{
    struct tr_baseline b;
    memset(&b, 0, sizeof b);
    char folder[4200];
    snprintf(folder, sizeof folder, "%s/%s", dir, cas);
    if (mkdir(folder, 0777) != 0 && errno != EEXIST)
        return ig_error_set(err, 500, "io_error", "cannot make %s: %s", folder, strerror(errno));
    /* An earlier baseline of another format goes: one image per seed. */
    struct ig_error ignored = {0};
    if (tr_baseline_load(dir, cas, backend, seed, &b, &ignored) == 0 && b.present)
        remove(b.image_path);
    tr_baseline_clear(&b);
    tr_baseline_paths(dir, cas, backend, seed, o->mime, &b);
    char sha[65];
    tr_sha256_hex(o->bytes.data, o->bytes.len, sha);
    const char *file = strrchr(b.image_path, '/') + 1;
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    json_t *side = json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:O}", "case", cas,
                             "backend", backend, "seed", (json_int_t)seed, "file", file,
                             "sha256", sha, "mime", o->mime, "bytes", (json_int_t)o->bytes.len,
                             "fingerprint", tr_prov_fingerprint(o->provenance), "build",
                             tr_prov_build(o->provenance), "recorded_at", when, "provenance",
                             o->provenance ? o->provenance : json_null());
    char *text = side ? json_dumps(side, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(side);
    if (!text)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    int rc = write_file(b.image_path, o->bytes.data, o->bytes.len, err);
    if (rc == 0)
        rc = write_file(b.sidecar_path, text, strlen(text), err);
    free(text);
    return rc;
}
