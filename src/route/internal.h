/* SPDX-License-Identifier: MIT */
/* internal.h -- the gateway's state, shared by the job engine (gateway.c)
 * and the relay (relay.c). Not for use outside src/route. */
#ifndef IG_ROUTE_INTERNAL_H
#define IG_ROUTE_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "route/gateway.h"

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
};

/* The licence flags of a contract as a JSON array of names (new reference). */
json_t *route_license_flags(const struct ig_contract *k);

/* Stops the relay's journal after writing what it holds (relay.c). */
void route_relay_free(struct route_gateway *gw);

#endif
