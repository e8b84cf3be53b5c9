/* SPDX-License-Identifier: MIT */
/* internal.h -- the store's backend interface (not for use outside src/store).
 *
 * A runtime table of operations, as Redis's ConnectionType: the SQLite and
 * PostgreSQL stores implement the same slots, and store.c dispatches to
 * them. Blobs are not a backend concern: they live in one content-addressed
 * directory that every replica shares. */
#ifndef IG_STORE_INTERNAL_H
#define IG_STORE_INTERNAL_H

#include "store/store.h"

struct store_ops {
    const char *name;
    void (*close)(void *impl);
    int (*job_create)(void *impl, struct store_job *job, const char *idem_key,
                      const char *request_hash, struct ig_error *err);
    int (*job_get)(void *impl, const char *id, const char *tenant, struct store_job *out,
                   struct ig_error *err);
    int (*job_update)(void *impl, const char *id, enum store_state state, const char *result,
                      const char *error, struct ig_error *err);
    int (*job_set_vendor)(void *impl, const char *id, const char *vendor_json,
                          struct ig_error *err);
    int (*jobs_unfinished)(void *impl, void (*fn)(const struct store_job *, void *), void *ud,
                           struct ig_error *err);
    int (*attempt_add)(void *impl, const char *job_id, int n, const char *backend,
                       const char *outcome, const char *detail_json, struct ig_error *err);
    int (*attempt_end)(void *impl, const struct store_attempt_end *e, struct ig_error *err);
    int (*budget_reserve)(void *impl, const char *tenant, const char *job_id, int attempt,
                          double usd, double daily_cap, double monthly_cap, long at_ms,
                          long long *reservation, struct ig_error *err);
    int (*budget_commit)(void *impl, long long reservation, double usd, struct ig_error *err);
    int (*budget_release)(void *impl, long long reservation, struct ig_error *err);
    int (*budget_close_job)(void *impl, const char *job_id, long long keep,
                            struct ig_error *err);
    int (*budget_spent)(void *impl, const char *tenant, long since_ms, double *usd,
                        struct ig_error *err);
    int (*jobs_claim)(void *impl, const char *owner, long lease_ms, int force,
                      void (*fn)(const struct store_job *, void *), void *ud,
                      struct ig_error *err);
    int (*lease_renew)(void *impl, const char *owner, long lease_ms, struct ig_error *err);
    int (*jobs_record)(void *impl, const struct store_record *r, size_t n, struct ig_error *err);
};

struct store {
    const struct store_ops *ops;
    void *impl;
    char blob_dir[4096];
};

int store_sqlite_open(struct store *st, const char *dir, struct ig_error *err);
int store_pg_open(struct store *st, const char *conninfo, struct ig_error *err);

/* Wall-clock milliseconds (job times and ledger periods are calendar time). */
long store_now_ms(void);
/* Start of the UTC day and month containing t_ms. */
void store_period_starts(long t_ms, long *day_ms, long *month_ms);

#endif
