/* SPDX-License-Identifier: MIT */
/* render.h -- route_hooks.render over the prompt compiler (render.c). */
#ifndef IG_ROUTE_RENDER_H
#define IG_ROUTE_RENDER_H

#include "route/gateway.h"

int route_render_spec(void *ud, const struct ig_backend_cfg *b, const json_t *request,
                      struct route_render *out, struct ig_error *err);

#endif
