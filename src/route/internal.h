/* SPDX-License-Identifier: MIT */
/* internal.h -- the gateway's state, shared by the job engine (gateway.c)
 * and the relay (relay.c). Not for use outside src/route. */
#ifndef IG_ROUTE_INTERNAL_H
#define IG_ROUTE_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "route/gateway.h"
#include "route/limit.h"

struct route_journal;

struct route_gateway {
    const struct ig_config *cfg;
    struct store *store;
    struct route_executor exec;
    struct route_hooks hooks;
    struct route_sched *sched;
    struct route_limits *limits;
    struct img_limits img_limits;

    pthread_mutex_t mu;
    pthread_cond_t done_cv;       /* broadcast whenever a job ends */
    struct job *active;           /* list of jobs in memory */
    int n_active;
    uint64_t rng;

    char owner[40];               /* this replica's id in job leases */
    int lease_ticking;
    void (*listener)(void *ud, const char *job_id);
    void *listener_ud;
    struct ig_metric *m_jobs, *m_attempts, *m_latency, *m_validation, *m_fallbacks, *m_cost,
        *m_breaker, *m_active, *m_webhooks, *m_budget;
    struct route_journal *journal;   /* the relay's group commit; NULL until the first relay */
    struct relay_head *relay_heads;  /* per backend of cfg, in its order (relay.c) */
};

/* A backend's rate, concurrency and breaker limits from its contract. */
struct route_limit_spec route_backend_spec(const struct ig_backend_cfg *b);
/* Admits an attempt (holder) on the tenant and the backend, both or
 * neither: 1 admitted; 0 with *wait_ms (-1: never within the limits) and
 * why; -1 when shared limits cannot be reached. t may be NULL (a config
 * without tenants). route_release gives both back. */
int route_admit(struct route_gateway *gw, const char *tenant_name, const struct ig_tenant_cfg *t,
                const struct ig_backend_cfg *b, int n, const char *holder, long *wait_ms,
                char *why, size_t why_size);
void route_release(struct route_gateway *gw, const char *tenant_name, const char *backend,
                   const char *holder);

/* The licence flags of a contract as a JSON array of names (new reference). */
json_t *route_license_flags(const struct ig_contract *k);
/* The names of the contract's licence flags, in one fixed order; the count. */
int route_license_flag_names(const struct ig_contract *k, const char *names[4]);

/* Stops the relay's journal after writing what it holds (relay.c). */
void route_relay_free(struct route_gateway *gw);
/* What the relay writes the same for every request to a backend, written
 * once per backend of gw->cfg: 0, or -1 with err (out of memory). */
int route_relay_heads(struct route_gateway *gw, struct ig_error *err);

#endif
