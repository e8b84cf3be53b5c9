/* SPDX-License-Identifier: MIT */
/* store.c -- the store's front: opening a backend, dispatching to it, and
 * the content-addressed blob directory every backend shares.
 *
 * Blobs are written to a temporary name, fsynced and renamed, so a reader
 * never sees half a file, and two replicas writing the same bytes agree on
 * the result. */
#include "store/internal.h"
#include "core/alloc.h"
#include "core/str.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const state_names[] = {"queued", "running", "succeeded", "failed", "cancelled"};

const char *
store_state_name(enum store_state s)
{
    return s <= STORE_CANCELLED ? state_names[s] : "?";
}

int
store_state_terminal(enum store_state s)
{
    return s == STORE_SUCCEEDED || s == STORE_FAILED || s == STORE_CANCELLED;
}

long
store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
store_period_starts(long t_ms, long *day_ms, long *month_ms)
{
    time_t t = (time_t)(t_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    *day_ms = (long)timegm(&tm) * 1000;
    tm.tm_mday = 1;
    *month_ms = (long)timegm(&tm) * 1000;
}

void
store_job_clear(struct store_job *j)
{
    ig_free(j->request);
    ig_free(j->result);
    ig_free(j->error);
    ig_free(j->vendor);
    j->request = j->result = j->error = j->vendor = NULL;
}

/* Ids are ULID-shaped: 10 base32 digits of the wall clock in milliseconds,
 * then 16 of randomness (80 bits). Time first keeps a day's ids next to each
 * other in every index that holds them, so a batch of inserts touches the
 * last few B-tree pages instead of one random page per row, which is what
 * bounded the relay's journal. The random part comes from a per-thread pool
 * filled by getrandom, a syscall per 16 ids rather than a locked DRBG call
 * per id. */
int
store_new_id(char out[40], const char *prefix)
{
    static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
    static _Thread_local unsigned char pool[256];
    static _Thread_local size_t used = sizeof pool;
    if (used + 16 > sizeof pool) {
        size_t got = 0;
        while (got < sizeof pool) {
            ssize_t n = getrandom(pool + got, sizeof pool - got, 0);
            if (n < 0 && errno != EINTR)
                return -1;
            if (n > 0)
                got += (size_t)n;
        }
        used = 0;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long ms = (unsigned long long)ts.tv_sec * 1000ull +
                            (unsigned long long)(ts.tv_nsec / 1000000);
    size_t n = ig_sjoin(out, 40, prefix, "_");
    if (n + 26 > 39)
        return -1;
    for (int i = 9; i >= 0; i--, ms >>= 5)
        out[n + (size_t)i] = alphabet[ms & 31];
    n += 10;
    for (int i = 0; i < 16; i++)
        out[n++] = alphabet[pool[used++] & 31];
    out[n] = '\0';
    return 0;
}

static int
mkdir_p(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* ---- Opening ---------------------------------------------------------------- */

struct store *
store_open_url(const char *url, const char *blob_dir, struct ig_error *err)
{
    if (strlen(blob_dir) > 3900 || strlen(url) > 3900) {
        ig_error_set(err, 400, "store_path", "store path too long");
        return NULL;
    }
    if (mkdir_p(blob_dir) != 0) {
        ig_error_set(err, 500, "store_path", "cannot create %s: %s", blob_dir, strerror(errno));
        return NULL;
    }
    struct store *s = ig_calloc(1, sizeof *s);
    if (!s) {
        ig_error_set(err, 500, "out_of_memory", "out of memory opening the store");
        return NULL;
    }
    snprintf(s->blob_dir, sizeof s->blob_dir, "%s", blob_dir);
    int rc;
    if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
        rc = store_pg_open(s, url, err);
    } else {
        if (mkdir_p(url) != 0) {
            ig_free(s);
            ig_error_set(err, 500, "store_path", "cannot create %s: %s", url, strerror(errno));
            return NULL;
        }
        rc = store_sqlite_open(s, url, err);
    }
    if (rc != 0) {
        ig_free(s);
        return NULL;
    }
    return s;
}

struct store *
store_open(const char *dir, struct ig_error *err)
{
    char blobs[4200];
    if (strlen(dir) > 3900) {
        ig_error_set(err, 400, "store_path", "data directory path too long");
        return NULL;
    }
    snprintf(blobs, sizeof blobs, "%s/blobs", dir);
    return store_open_url(dir, blobs, err);
}

void
store_close(struct store *s)
{
    if (!s)
        return;
    s->ops->close(s->impl);
    ig_free(s);
}

const char *
store_kind(const struct store *s)
{
    return s->ops->name;
}

/* ---- Dispatch --------------------------------------------------------------- */

int
store_job_create(struct store *s, struct store_job *job, const char *idem_key,
                 const char *request_hash, struct ig_error *err)
{
    return s->ops->job_create(s->impl, job, idem_key, request_hash, err);
}

int
store_job_get(struct store *s, const char *id, const char *tenant, struct store_job *out,
              struct ig_error *err)
{
    return s->ops->job_get(s->impl, id, tenant, out, err);
}

int
store_job_update(struct store *s, const char *id, enum store_state state, const char *result,
                 const char *error, struct ig_error *err)
{
    return s->ops->job_update(s->impl, id, state, result, error, err);
}

int
store_job_set_vendor(struct store *s, const char *id, const char *vendor_json,
                     struct ig_error *err)
{
    return s->ops->job_set_vendor(s->impl, id, vendor_json, err);
}

int
store_jobs_unfinished(struct store *s, void (*fn)(const struct store_job *, void *), void *ud,
                      struct ig_error *err)
{
    return s->ops->jobs_unfinished(s->impl, fn, ud, err);
}

int
store_attempt_add(struct store *s, const char *job_id, int n, const char *backend,
                  const char *outcome, const char *detail_json, struct ig_error *err)
{
    return s->ops->attempt_add(s->impl, job_id, n, backend, outcome, detail_json, err);
}

int
store_attempt_end(struct store *s, const struct store_attempt_end *e, struct ig_error *err)
{
    return s->ops->attempt_end(s->impl, e, err);
}

int
store_budget_reserve(struct store *s, const char *tenant, const char *job_id, int attempt,
                     double usd, double daily_cap, double monthly_cap, long at_ms,
                     long long *reservation, struct ig_error *err)
{
    return s->ops->budget_reserve(s->impl, tenant, job_id, attempt, usd, daily_cap, monthly_cap,
                                  at_ms, reservation, err);
}

int
store_budget_commit(struct store *s, long long reservation, double usd, struct ig_error *err)
{
    return s->ops->budget_commit(s->impl, reservation, usd, err);
}

int
store_budget_release(struct store *s, long long reservation, struct ig_error *err)
{
    return s->ops->budget_release(s->impl, reservation, err);
}

int
store_budget_close_job(struct store *s, const char *job_id, long long keep, struct ig_error *err)
{
    return s->ops->budget_close_job(s->impl, job_id, keep, err);
}

int
store_budget_spent(struct store *s, const char *tenant, long since_ms, double *usd,
                   struct ig_error *err)
{
    return s->ops->budget_spent(s->impl, tenant, since_ms, usd, err);
}

int
store_jobs_claim(struct store *s, const char *owner, long lease_ms, int force,
                 void (*fn)(const struct store_job *, void *), void *ud, struct ig_error *err)
{
    return s->ops->jobs_claim(s->impl, owner, lease_ms, force, fn, ud, err);
}

int
store_lease_renew(struct store *s, const char *owner, long lease_ms, struct ig_error *err)
{
    return s->ops->lease_renew(s->impl, owner, lease_ms, err);
}

int
store_jobs_record(struct store *s, const struct store_record *r, size_t n, struct ig_error *err)
{
    return n ? s->ops->jobs_record(s->impl, r, n, err) : 0;
}

/* ---- Blobs ---------------------------------------------------------------- */

static int
blob_path(const struct store *s, const char *hex, char *out, size_t size)
{
    if (strlen(hex) != 64 || strspn(hex, "0123456789abcdef") != 64)
        return -1;
    snprintf(out, size, "%s/%.2s/%s", s->blob_dir, hex, hex);
    return 0;
}

int
store_blob_put(struct store *s, const void *data, size_t len, char hex[65], struct ig_error *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1)
        return ig_error_set(err, 500, "digest", "sha256 failed");
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    char path[4200], dir[4200], tmp[4300];
    blob_path(s, hex, path, sizeof path);
    if (access(path, F_OK) == 0)
        return 0;   /* content-addressed: already there means already right */
    snprintf(dir, sizeof dir, "%s/%.2s", s->blob_dir, hex);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return ig_error_set(err, 500, "store_io", "cannot create %s: %s", dir, strerror(errno));
    snprintf(tmp, sizeof tmp, "%s.tmp.%d.%lx", path, (int)getpid(), (unsigned long)pthread_self());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return ig_error_set(err, 500, "store_io", "cannot write %s: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return ig_error_set(err, 500, "store_io", "writing a blob: %s", strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ig_error_set(err, 500, "store_io", "saving a blob: %s", strerror(e));
    }
    return 0;
}

int
store_blob_get(struct store *s, const char *hex, struct ig_buf *out, struct ig_error *err)
{
    char path[4200];
    if (blob_path(s, hex, path, sizeof path) != 0)
        return ig_error_set(err, 404, "not_found", "no such file");
    FILE *f = fopen(path, "rb");
    if (!f)
        return ig_error_set(err, 404, "not_found", "no such file");
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (ig_buf_append(out, chunk, n) != 0) {
            rc = ig_error_set(err, 500, "out_of_memory", "out of memory reading a blob");
            break;
        }
    if (rc == 0 && ferror(f))
        rc = ig_error_set(err, 500, "store_io", "reading a blob failed");
    fclose(f);
    return rc;
}
