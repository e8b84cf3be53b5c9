/* SPDX-License-Identifier: MIT */
/* fuzz_safetensors.c -- libFuzzer target for the safetensors reader and the
 * LoRA inspector behind it: any bytes must give a parse error or a full
 * inspection and JSON report, never a crash, an over-read or a leak. */
#include <stddef.h>
#include <stdint.h>

#include "lora/lora.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lora_st_limits lim = {.max_header_bytes = 1 << 20, .max_json_depth = 16};
    struct lora_st st;
    struct ig_error err;
    if (lora_st_parse(data, size, &lim, &st, &err) != 0)
        return 0;
    struct lora_info info;
    if (lora_inspect(&st, &info, &err) == 0) {
        json_t *j = lora_info_json(&info);
        char reason[256];
        lora_fits_backend(&info, "FLUX.2 [klein] 4B", reason, sizeof reason);
        json_decref(j);
        lora_info_free(&info);
    }
    lora_st_free(&st);
    return 0;
}
