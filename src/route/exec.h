/* SPDX-License-Identifier: MIT */
/* exec.h -- the job engine's executor over the vendor adapters: turns a
 * route_attempt into an adapter call on the adapters' I/O loop, and the
 * adapter's result into a route_outcome. The engine never sees a vendor's
 * wire format; the adapters never see a job. */
#ifndef IG_ROUTE_EXEC_H
#define IG_ROUTE_EXEC_H

#include "backends/backend.h"
#include "core/config.h"
#include "route/gateway.h"

/* An executor whose calls run on loop; cfg supplies the body limits.
 * Release it with route_exec_release once the gateway is gone. */
int route_exec_backends(struct be_loop *loop, const struct ig_config *cfg,
                        struct route_executor *out, struct ig_error *err);
/* Finishes the local jobs already started and refuses new ones: call it
 * before freeing the gateway they complete into. */
void route_exec_stop(struct route_executor *ex);
void route_exec_release(struct route_executor *ex);

#endif
