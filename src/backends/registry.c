/* SPDX-License-Identifier: MIT */
/* registry.c -- adapter kind -> protocol. The router and the gateway never
 * compare vendor names; they ask this table. */
#include "backends/backend.h"

#include <string.h>

static const struct be_protocol *const protocols[] = {
    &be_protocol_openai,
    &be_protocol_bfl,
    &be_protocol_gemini,
    &be_protocol_stability,
    &be_protocol_removebg,
    &be_protocol_replicate,
    &be_protocol_fal,
    &be_protocol_a1111,
    &be_protocol_photoroom,
    &be_protocol_comfyui,
    NULL,
};

const struct be_protocol *
be_find(const char *adapter)
{
    for (int i = 0; protocols[i]; i++)
        if (strcmp(protocols[i]->name, adapter) == 0)
            return protocols[i];
    return NULL;
}
