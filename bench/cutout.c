/* SPDX-License-Identifier: MIT */
/* cutout.c -- drives the local-isnet backend the way the gateway's worker
 * does, for bench/cutout.sh and bench/cutout_quality.sh.
 *
 * Usage: cutout [-n RUNS] [-o OUT.png] IN
 *
 * Each run is one job end to end as the server would do it once the request
 * is parsed: read the file, decode under the config's limits, pre-process,
 * infer, refine, encode the PNG. Run 1 in a fresh process is the cold case
 * (it also makes the session and touches every buffer for the first time);
 * runs 2.. are the steady state. One JSON line per run on stdout. The
 * embedded config is used, with IMAGEGATE_HOME pointing at the source tree
 * so its .deps paths resolve from anywhere. */
#include "backends/local/local.h"
#include "core/alloc.h"
#include "core/config.h"
#include "image/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int
read_file(const char *path, struct ig_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char chunk[1 << 16];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = ig_buf_append(out, chunk, n);
    fclose(f);
    return rc;
}

static double
timing(const json_t *prov, const char *key)
{
    return json_number_value(json_object_get(json_object_get(prov, "timings"), key));
}

int
main(int argc, char **argv)
{
    int runs = 1, c;
    const char *out_path = NULL;
    while ((c = getopt(argc, argv, "n:o:")) != -1) {
        if (c == 'n')
            runs = atoi(optarg);
        else if (c == 'o')
            out_path = optarg;
        else
            return 2;
    }
    if (optind != argc - 1 || runs < 1) {
        fprintf(stderr, "usage: cutout [-n RUNS] [-o OUT.png] IN\n");
        return 2;
    }
    const char *in_path = argv[optind];
    struct ig_error err = {0};
    struct ig_config *cfg = img_init(&err) == 0 ? ig_config_load_default(NULL, &err) : NULL;
    if (!cfg) {
        fprintf(stderr, "cutout: %s\n", err.message);
        return 1;
    }
    struct img_limits limits;
    img_limits_from_config(&limits, &cfg->limits);
    const struct ig_backend_cfg *b = ig_config_backend(cfg, "local-isnet");
    char why[512] = "";
    if (!b || !be_local_isnet.available(b, why, sizeof why)) {
        fprintf(stderr, "cutout: local-isnet is unavailable: %s\n", why);
        return 1;
    }
    int rc = 0;
    for (int i = 1; i <= runs && rc == 0; i++) {
        double t0 = now_ms();
        struct ig_buf in = {0};
        if (read_file(in_path, &in) != 0) {
            fprintf(stderr, "cutout: cannot read %s\n", in_path);
            return 1;
        }
        struct be_request req = {.cfg = b, .cls = IG_CLASS_REMOVE_BACKGROUND, .input = in.data,
                                 .input_len = in.len, .img_limits = &limits};
        struct be_result res;
        memset(&res, 0, sizeof res);
        if (be_local_isnet.run(&req, &res) != 0) {
            fprintf(stderr, "cutout: %s: %s\n", res.err.code, res.err.message);
            rc = 1;
        } else if (out_path && i == runs) {
            FILE *f = fopen(out_path, "wb");
            if (!f || fwrite(res.images[0].data, 1, res.images[0].len, f) != res.images[0].len)
                rc = 1;
            if (f && fclose(f) != 0)
                rc = 1;
            if (rc)
                fprintf(stderr, "cutout: cannot write %s\n", out_path);
        }
        double total = now_ms() - t0;
        if (res.ok) {
            const json_t *p = res.provenance;
            double open = json_object_get(json_object_get(p, "timings"), "session_ms")
                              ? timing(p, "session_ms") : timing(p, "reuse_ms");
            printf("{\"run\":%d,\"total_ms\":%.1f,\"session_ms\":%.1f,\"pre_ms\":%.1f,"
                   "\"inference_ms\":%.1f,\"post_ms\":%.1f}\n",
                   i, total, open, timing(p, "pre_ms"), timing(p, "inference_ms"),
                   timing(p, "post_ms"));
            fflush(stdout);
        }
        be_result_clear(&res);
        ig_buf_free(&in);
    }
    be_local_shutdown();
    ig_config_free(cfg);
    return rc;
}
