/* SPDX-License-Identifier: MIT */
/* store.h -- durable state of the gateway: jobs, attempts, the ledger,
 * idempotency keys, and content-addressed output blobs.
 *
 * The default store is one SQLite database in WAL mode under the data
 * directory, with blobs as files named by their SHA-256. Every state change
 * is committed before the caller acknowledges it, so a process killed at
 * any point loses no accepted job and no ledger row. The store knows no
 * business rules: it stores what the router decides, and makes the one
 * decision that must be atomic with the write (a budget reservation that
 * would pass a ceiling is refused inside the same transaction). */
#ifndef IG_STORE_STORE_H
#define IG_STORE_STORE_H

#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"

struct store;

enum store_state {
    STORE_QUEUED = 0,
    STORE_RUNNING,
    STORE_SUCCEEDED,
    STORE_FAILED,
    STORE_CANCELLED
};
const char *store_state_name(enum store_state s);
int store_state_terminal(enum store_state s);

struct store_job {
    char  id[40];
    char  tenant[64];
    char  cls[32];              /* job class name */
    enum store_state state;
    char *request;              /* JSON, as accepted */
    char *result;               /* JSON: outputs, provenance, scores; NULL until done */
    char *error;                /* JSON error object when failed */
    char *vendor;               /* JSON the adapter saved to resume an async vendor job */
    int   attempts;
    long  created_ms, updated_ms;
    char  owner[40];            /* the replica running it; set before store_job_create */
    long  lease_ms;             /* how long the creator's lease lasts (0: 30 s) */
};
void store_job_clear(struct store_job *j);   /* frees the strings */

/* Opens (creating and migrating) the SQLite store under dir, blobs in
 * dir/blobs. */
struct store *store_open(const char *dir, struct ig_error *err);
/* Opens the store a URL names: "postgresql://..." (libpq conninfo URL), or
 * a directory for SQLite; blobs live in blob_dir either way. */
struct store *store_open_url(const char *url, const char *blob_dir, struct ig_error *err);
void store_close(struct store *s);
const char *store_kind(const struct store *s);   /* "sqlite" | "postgres" */

/* Creates a job. With an idempotency key: if the tenant used the key before,
 * returns 1 and copies the earlier job's id into job->id (no new job); if
 * the earlier request differed (request_hash), fails with
 * idempotency_conflict. Returns 0 when created. */
int store_job_create(struct store *s, struct store_job *job, const char *idem_key,
                     const char *request_hash, struct ig_error *err);
/* Reads a job; with tenant set, a job of another tenant is not_found. */
int store_job_get(struct store *s, const char *id, const char *tenant, struct store_job *out,
                  struct ig_error *err);
/* Moves a job on. A terminal job never moves again (returns 1, unchanged). */
int store_job_update(struct store *s, const char *id, enum store_state state, const char *result,
                     const char *error, struct ig_error *err);
/* Saves what an async vendor job is resumed by, and marks the job running. */
int store_job_set_vendor(struct store *s, const char *id, const char *vendor_json,
                         struct ig_error *err);
/* Calls fn for each job that is queued or running (crash recovery). fn runs
 * under the store's lock and must not call back into the store. */
int store_jobs_unfinished(struct store *s, void (*fn)(const struct store_job *, void *), void *ud,
                          struct ig_error *err);

/* Leases: a job runs on one replica at a time. Claims the unfinished jobs
 * whose lease has expired (all unfinished jobs with force, for a store only
 * one process uses), makes owner their owner for lease_ms, and calls fn for
 * each (under the store's lock: fn must not call back into the store). */
int store_jobs_claim(struct store *s, const char *owner, long lease_ms, int force,
                     void (*fn)(const struct store_job *, void *), void *ud,
                     struct ig_error *err);
/* Extends the leases of every unfinished job owner holds. */
int store_lease_renew(struct store *s, const char *owner, long lease_ms, struct ig_error *err);

/* The end of an attempt, written in one transaction: its row, the settling
 * of its budget reservation, and (finish) the job's terminal state. */
enum store_settle { STORE_SETTLE_NONE, STORE_SETTLE_COMMIT, STORE_SETTLE_RELEASE };

struct store_attempt_end {
    const char *job_id;
    int n;
    const char *backend, *outcome, *detail;   /* detail: JSON */
    long long reservation;                    /* 0: none */
    enum store_settle settle;
    double usd;                               /* committed amount */
    int finish;                               /* also move the job to state */
    enum store_state state;
    const char *result, *error;
};
int store_attempt_end(struct store *s, const struct store_attempt_end *e, struct ig_error *err);

int store_attempt_add(struct store *s, const char *job_id, int n, const char *backend,
                      const char *outcome, const char *detail_json, struct ig_error *err);

/* Ledger: reserve before dispatch; commit the actual cost, or release. A
 * reservation that would take the tenant's spend (committed plus reserved)
 * for the day or month past its ceiling (0 = none) fails budget_exceeded. */
int store_budget_reserve(struct store *s, const char *tenant, const char *job_id, int attempt,
                         double usd, double daily_cap, double monthly_cap, long now_ms,
                         long long *reservation, struct ig_error *err);
int store_budget_commit(struct store *s, long long reservation, double usd, struct ig_error *err);
int store_budget_release(struct store *s, long long reservation, struct ig_error *err);
/* After a crash: commits every reservation of the job still open, but keep
 * (the one an async vendor job resumes with), at its reserved amount; the
 * vendor may have run an attempt whose answer the crash lost. */
int store_budget_close_job(struct store *s, const char *job_id, long long keep,
                           struct ig_error *err);
/* Committed plus reserved spend since since_ms. */
int store_budget_spent(struct store *s, const char *tenant, long since_ms, double *usd,
                       struct ig_error *err);

/* A job that ran to its end before it was written: the relay's (see
 * route/relay.c). Its job row (terminal), its one attempt and, when it cost
 * anything, a committed ledger row. */
struct store_record {
    const char *id, *tenant, *cls;
    enum store_state state;
    const char *request, *result, *error;
    const char *backend, *outcome, *detail;
    double usd;
    long started_ms;                          /* wall clock */
};
/* Records n finished jobs whole (the relay's, whose answers wait for their
 * records): on return they are durable against the process being killed
 * and visible to every read of this store. The SQLite store appends them to
 * its record journal and imports them in the background (a record whose id
 * is taken is then refused alone, and logged); written straight to the
 * database -- by PostgreSQL, or when another process holds the journal --
 * a batch lands in one transaction, all or none. */
int store_jobs_record(struct store *s, const struct store_record *r, size_t n,
                      struct ig_error *err);

/* Blobs, named by the lowercase hex SHA-256 of their bytes. */
int store_blob_put(struct store *s, const void *data, size_t len, char hex[65],
                   struct ig_error *err);
int store_blob_get(struct store *s, const char *hex, struct ig_buf *out, struct ig_error *err);

/* A fresh id: prefix, "_", 26 base32 characters (10 of the time in ms, 16
 * random), so ids sort by creation time. */
int store_new_id(char out[40], const char *prefix);

#endif
