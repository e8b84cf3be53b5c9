/* SPDX-License-Identifier: MIT */
/* cmd-check.c -- 'imagegate check': compare two images with perceptual
 * metrics, hash one, or (check.h) run the validation gate.
 *
 * compare decodes both files under the CLI's limits, resizes the second
 * to the first when asked (never silently: different sizes are an error
 * with code size_mismatch otherwise), then runs each requested metric from
 * a table of name, JSON keys and runner. Any metric error stops the
 * command with its code, exit 2. Text output is "name value" per line;
 * --json is {"metrics":{...}}, with null for an infinite PSNR. */
#include "tools/check.h"
#include "tools/tool.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "image/image.h"
#include "validate/metric.h"

static const struct tool_cmd *self(void);

/* Large enough for two 50 MP photos; the gateway's own limits come from
 * its config, these are the command line's. */
static const struct img_limits cli_limits = {
    .max_input_bytes = 512L << 20, .max_width = 65535, .max_height = 65535,
    .max_pixels = 100000000L, .max_decoded_bytes = 0};

static struct img *
load(const char *path, struct ig_error *err)
{
    char *data;
    size_t len;
    if (tool_read_file(path, (size_t)cli_limits.max_input_bytes, &data, &len, err) != 0)
        return NULL;
    struct img *im = img_decode(data, len, &cli_limits, err);
    ig_free(data);
    if (!im)
        ig_error_prefix(err, "%s: ", path);
    return im;
}

/* ---- Metrics as a table ---------------------------------------------------- */

static int
put(json_t *out, const char *key, double v)
{
    return json_object_set_new(out, key, isfinite(v) ? json_real(v) : json_null());
}

static int
run_ssim(const struct img *a, const struct img *b, json_t *out, struct ig_error *err)
{
    double v;
    return vd_ssim(a, b, VD_SSIM_LUMA, NULL, &v, err) ? -1 : put(out, "ssim", v);
}

static int
run_msssim(const struct img *a, const struct img *b, json_t *out, struct ig_error *err)
{
    double v;
    return vd_msssim(a, b, &v, err) ? -1 : put(out, "msssim", v);
}

static int
run_ssimulacra2(const struct img *a, const struct img *b, json_t *out, struct ig_error *err)
{
    double v;
    return vd_ssimulacra2(a, b, &v, err) ? -1 : put(out, "ssimulacra2", v);
}

static int
run_psnr(const struct img *a, const struct img *b, json_t *out, struct ig_error *err)
{
    double v;
    return vd_psnr(a, b, NULL, 0, &v, NULL, err) ? -1 : put(out, "psnr", v);
}

static int
run_deltae(const struct img *a, const struct img *b, json_t *out, struct ig_error *err)
{
    double mean, p95;
    if (vd_deltae(a, b, NULL, &mean, &p95, err) != 0)
        return -1;
    return put(out, "deltae_mean", mean) | put(out, "deltae_p95", p95);
}

static int
run_hash(enum vd_hash_algo algo, const struct img *a, const struct img *b, json_t *out,
         struct ig_error *err)
{
    struct vd_hash ha, hb;
    char key[32];
    if (vd_hash(a, algo, &ha, err) != 0 || vd_hash(b, algo, &hb, err) != 0)
        return -1;
    snprintf(key, sizeof key, "%s_distance", vd_hash_algo_name(algo));
    return json_object_set_new(out, key, json_integer(vd_hash_distance(&ha, &hb)));
}

static int
run_phash(const struct img *a, const struct img *b, json_t *out, struct ig_error *err)
{
    return run_hash(VD_HASH_PHASH, a, b, out, err);
}

static int
run_dhash(const struct img *a, const struct img *b, json_t *out, struct ig_error *err)
{
    return run_hash(VD_HASH_DHASH, a, b, out, err);
}

static int
run_ahash(const struct img *a, const struct img *b, json_t *out, struct ig_error *err)
{
    return run_hash(VD_HASH_AHASH, a, b, out, err);
}

static int
run_blockhash(const struct img *a, const struct img *b, json_t *out, struct ig_error *err)
{
    return run_hash(VD_HASH_BLOCKHASH, a, b, out, err);
}

static const struct metric {
    const char *name;
    int (*run)(const struct img *a, const struct img *b, json_t *out, struct ig_error *err);
} metrics[] = {
    {"ssim", run_ssim},   {"msssim", run_msssim}, {"ssimulacra2", run_ssimulacra2},
    {"psnr", run_psnr},   {"phash", run_phash},   {"dhash", run_dhash},
    {"ahash", run_ahash}, {"blockhash", run_blockhash}, {"deltae", run_deltae},
};
enum { NMETRICS = sizeof metrics / sizeof metrics[0] };

/* Marks the metrics named in a comma list; 0, or -1 naming the bad one. */
static int
parse_metrics(const char *list, int want[NMETRICS], char *bad, size_t badlen)
{
    memset(want, 0, NMETRICS * sizeof *want);
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        int found = 0;
        for (int i = 0; i < NMETRICS; i++)
            if (strlen(metrics[i].name) == n && !strncmp(metrics[i].name, p, n))
                found = want[i] = 1;
        if (!found) {
            snprintf(bad, badlen, "%.*s", (int)n, p);
            return -1;
        }
        p += n + (p[n] == ',');
    }
    return 0;
}

static void
print_text(json_t *out)
{
    const char *k;
    json_t *v;
    json_object_foreach(out, k, v) {
        if (json_is_null(v))
            printf("%-20s inf\n", k);
        else if (json_is_integer(v))
            printf("%-20s %lld\n", k, (long long)json_integer_value(v));
        else
            printf("%-20s %.6f\n", k, json_number_value(v));
    }
}

static int
write_heatmap(const struct img *a, const struct img *b, const char *path, struct ig_error *err)
{
    struct img *h = vd_heatmap(a, b, err);
    if (!h)
        return -1;
    struct ig_buf png = {0};
    int rc = img_encode(h, IMG_FMT_PNG, 0, NULL, &png, err);
    img_free(h);
    if (rc != 0)
        return -1;
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(png.data, 1, png.len, f) != png.len) {
        rc = ig_error_set(err, 500, "write_failed", "cannot write %s", path);
    }
    if (f && fclose(f) != 0)
        rc = ig_error_set(err, 500, "write_failed", "cannot write %s", path);
    ig_buf_free(&png);
    return rc;
}

static int
do_compare(int argc, char **argv)
{
    const char *files[2] = {0}, *heatmap = NULL;
    int json = 0, resize = 0, nfiles = 0, want[NMETRICS];
    for (int i = 0; i < NMETRICS; i++)
        want[i] = 1;
    for (int i = 2; i < argc; i++) {
        char bad[64];
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--resize")) {
            resize = 1;
        } else if (!strcmp(argv[i], "--metrics") && i + 1 < argc) {
            if (parse_metrics(argv[++i], want, bad, sizeof bad) != 0)
                return tool_usage_error(self(), "unknown metric '%s'", bad);
        } else if (!strcmp(argv[i], "--heatmap") && i + 1 < argc) {
            heatmap = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return tool_usage_error(self(), "unknown option '%s'", argv[i]);
        } else if (nfiles == 2) {
            return tool_usage_error(self(), "compare takes two images");
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (nfiles != 2)
        return tool_usage_error(self(), "compare needs two images: A B");
    struct ig_error err = {0};
    if (img_init(&err) != 0)
        return tool_report_error(self(), &err, json);
    struct img *a = load(files[0], &err), *b = a ? load(files[1], &err) : NULL;
    if (a && b && (a->width != b->width || a->height != b->height)) {
        if (resize) {
            struct img *r = img_resize(b, a->width, a->height, "lanczos3", &err);
            img_free(b);
            b = r;
        } else {
            ig_error_set(&err, 400, "size_mismatch",
                         "%s is %dx%d and %s is %dx%d; pass --resize to scale the second", files[0],
                         a->width, a->height, files[1], b->width, b->height);
            img_free(b);
            b = NULL;
        }
    }
    json_t *out = json_object();
    int rc = TOOL_OK;
    if (!a || !b) {
        rc = tool_report_error(self(), &err, json);
    } else if (!out) {
        ig_error_set(&err, 500, "out_of_memory", "out of memory");
        rc = tool_report_error(self(), &err, json);
    } else {
        for (int i = 0; i < NMETRICS && rc == TOOL_OK; i++)
            if (want[i] && metrics[i].run(a, b, out, &err) != 0) {
                if (!err.code[0])
                    ig_error_set(&err, 500, "out_of_memory", "out of memory");
                rc = tool_report_error(self(), &err, json);
            }
        if (rc == TOOL_OK && heatmap && write_heatmap(a, b, heatmap, &err) != 0)
            rc = tool_report_error(self(), &err, json);
    }
    if (rc == TOOL_OK && json) {
        json_t *doc = json_pack("{s:O}", "metrics", out);
        if (doc)
            json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
        fputc('\n', stdout);
        json_decref(doc);
    } else if (rc == TOOL_OK) {
        print_text(out);
    }
    json_decref(out);
    img_free(a);
    img_free(b);
    return rc;
}

static int
do_hash(int argc, char **argv)
{
    const char *file = NULL;
    int json = 0;
    enum vd_hash_algo algo = VD_HASH_PHASH;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--algo") && i + 1 < argc) {
            if (vd_hash_algo_parse(argv[++i], &algo) != 0)
                return tool_usage_error(self(), "unknown hash '%s' (phash, dhash, ahash, blockhash)",
                                        argv[i]);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return tool_usage_error(self(), "unknown option '%s'", argv[i]);
        } else if (file) {
            return tool_usage_error(self(), "hash takes one image");
        } else {
            file = argv[i];
        }
    }
    if (!file)
        return tool_usage_error(self(), "hash needs an image");
    struct ig_error err = {0};
    struct vd_hash h;
    char hex[65];
    if (img_init(&err) != 0)
        return tool_report_error(self(), &err, json);
    struct img *im = load(file, &err);
    if (!im)
        return tool_report_error(self(), &err, json);
    int rc = vd_hash(im, algo, &h, &err);
    img_free(im);
    if (rc != 0)
        return tool_report_error(self(), &err, json);
    vd_hash_hex(&h, hex);
    if (json)
        printf("{\"algo\": \"%s\", \"bits\": %d, \"hash\": \"%s\"}\n", vd_hash_algo_name(algo),
               h.nbits, hex);
    else
        printf("%s\n", hex);
    return TOOL_OK;
}

static int
cmd_check_exec(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "gate"))
        return tool_check_gate(argc - 1, argv + 1);
    if (tool_wants_help(argc, argv)) {
        fputs(self()->usage, stdout);
        return TOOL_OK;
    }
    if (argc < 2)
        return tool_usage_error(self(), "expected 'compare', 'hash' or 'gate'");
    if (!strcmp(argv[1], "compare"))
        return do_compare(argc, argv);
    if (!strcmp(argv[1], "hash"))
        return do_hash(argc, argv);
    return tool_usage_error(self(), "unknown subcommand '%s' (expected compare, hash or gate)",
                            argv[1]);
}

const struct tool_cmd tool_cmd_check = {
    .name = "check",
    .summary = "compare images perceptually, hash them, run the validation gate",
    .usage =
        "usage: imagegate check compare A B [--metrics LIST] [--heatmap OUT.png] [--resize]\n"
        "                                [--json]\n"
        "       imagegate check hash IMG [--algo phash|dhash|ahash|blockhash] [--json]\n"
        "       imagegate check gate ...\n"
        "\n"
        "compare: scores B against A. LIST is a comma list of ssim, msssim, ssimulacra2,\n"
        "psnr, phash, dhash, ahash, blockhash, deltae (default: all). --json prints\n"
        "{\"metrics\":{...}} with ssim, msssim, ssimulacra2, psnr (null when identical),\n"
        "<hash>_distance, deltae_mean and deltae_p95. Images of different sizes are an\n"
        "error (size_mismatch) unless --resize, which resizes B to A (Lanczos3).\n"
        "--heatmap writes a PNG of where they differ. Alpha is composited over white.\n"
        "hash: prints the hash in hex (64 bits; blockhash 256).\n"
        "gate: the validation gate; the words after 'gate' are its own arguments.\n"
        "Exit 0 ok, 1 a check failed, 2 usage or input error (with a code in brackets).\n"
        "See docs/validate.md.\n",
    .exec = cmd_check_exec,
};

static const struct tool_cmd *
self(void)
{
    return &tool_cmd_check;
}
