/* SPDX-License-Identifier: MIT */
/* fuzz_config.c -- libFuzzer target for the config loader: any bytes as a
 * config file give a config or diagnostics with a first error that has a
 * code and a message, never a crash, an over-read or a leak. A config that
 * loads names every ladder rung's backend among its backends, as the
 * loader promises. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ig_config_diags d = {0};
    struct ig_error err = {0};
    struct ig_config *cfg = ig_config_load("fuzz.yaml", (const char *)data, size, &d, &err);
    if (!cfg) {
        if (!err.code[0] || !err.message[0])
            abort();
    } else {
        for (size_t i = 0; i < cfg->n_ladders; i++)
            for (size_t k = 0; k < cfg->ladders[i].n_rungs; k++)
                if (!ig_config_backend(cfg, cfg->ladders[i].rungs[k].backend))
                    abort();
        ig_config_free(cfg);
    }
    ig_config_diags_free(&d);
    return 0;
}
