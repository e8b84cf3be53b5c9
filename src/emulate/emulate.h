/* SPDX-License-Identifier: MIT */
/* emulate.h -- local copies of vendor APIs, for tests and for users' CI.
 *
 * One HTTP server (libmicrohttpd) per emulated vendor, driven by a vendor
 * table (curl's test servers: one binary, a table of servers). A vendor file
 * (emulate/<vendor>.c) reads its requests and writes its answers exactly as
 * the vendor does; the pictures are real images, deterministic in
 * (vendor, prompt, seed, size, fingerprint). Faults are injected through an
 * admin API under /_emulator/ or by options:
 *   POST /_emulator/faults   {"faults":[{"kind":"rate_limit","retry_after":2}, ...]}
 *                            queued, one per following request
 *   POST /_emulator/rotate   a new fingerprint: the same prompt and seed now
 *                            give a slightly different picture
 *   GET  /_emulator/stats    {"requests":N,"by_path":{...},"submits":{key:count}}
 *   POST /_emulator/reset    forget faults, stats and jobs
 *   POST /_emulator/knobs    {"name":value,...}: where the vendor reference is
 *                            unsure (marked ⚠), the behaviour is a knob
 * Fault kinds: rate_limit (429 + Retry-After), server_error (500),
 * unavailable (503), latency (delay_ms, then answer), hang (never answer
 * within the client's timeout), truncated (cut the body short),
 * malformed_json, no_image (200 without an image), corrupt_image,
 * moderation, quota; and for every vendor alike deep_json (depth), wrong_type
 * (200 text/html), redirect (302 to location). Vendors add their own
 * (bfl: pending_forever, task_error). emulate/ never includes backends/: each reads the
 * vendor reference on its own. */
#ifndef IG_EMULATE_EMULATE_H
#define IG_EMULATE_EMULATE_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>

#include "core/buf.h"
#include "core/error.h"
#include "image/image.h"

struct emu;

struct emu_options {
    const char *fingerprint;      /* initial fingerprint (default "fp_1") */
    const char *faults;           /* JSON array of faults to queue at start */
    int no_auth;                  /* accept requests without the vendor's auth header */
    const char *knobs;            /* JSON object of knobs to set at start */
};

struct emu *emu_start(const char *vendor, const char *listen, const struct emu_options *opt,
                      struct ig_error *err);
const char *emu_address(const struct emu *e);
const char *emu_vendor_list(void);   /* "openai, bfl, ..." for messages */
void emu_stop(struct emu *e);

/* ---- For vendor files ----------------------------------------------------- */

#define EMU_MAX_PARTS 24

struct emu_part {
    char name[64], filename[128], type[64];
    struct ig_buf data;
};

struct emu_req {
    struct emu *emu;
    struct MHD_Connection *conn;
    const char *method, *url;
    struct ig_buf body;
    struct MHD_PostProcessor *pp;
    struct emu_part parts[EMU_MAX_PARTS];
    int n_parts;
    json_t *fault;                /* the fault taken for this request, or NULL */
};

struct emu_resp {
    unsigned status;
    struct ig_buf body;
    char content_type[64];
    char headers[8][2][128];      /* extra headers */
    int n_headers;
};

struct emu_vendor {
    const char *name;
    /* Answers one request; the framework has applied transport faults
     * (latency, hang, 5xx, truncation) already. Vendor-shaped faults
     * (rate_limit, moderation, malformed_json, no_image, corrupt_image,
     * quota) are the vendor file's to answer in the vendor's own shape. */
    int (*handle)(struct emu_req *r, struct emu_resp *out);
};

const char *emu_header(struct emu_req *r, const char *name);
const char *emu_query(struct emu_req *r, const char *name);
const struct emu_part *emu_part(struct emu_req *r, const char *name, int nth);
const char *emu_fingerprint(struct emu *e);
int emu_auth_required(const struct emu *e);
const char *emu_fault_kind(const struct emu_req *r);   /* NULL: none */
/* A knob's value (docs/emulators.md lists them per vendor), or def. */
long emu_knob_int(struct emu *e, const char *name, long def);
/* Counts a submission (by a key such as the prompt and seed) for the
 * "never runs twice on a vendor" checks. */
void emu_count_submit(struct emu *e, const char *key);
/* A request id unique to this emulator run: prefix + counter. */
void emu_request_id(struct emu *e, const char *prefix, char *out, size_t size);
/* The address the server answers on, for URLs it hands out. */
const char *emu_base_url(struct emu *e);
/* Per-emulator storage the vendor file owns (async jobs, files). */
void *emu_vendor_state(struct emu *e);
void emu_set_vendor_state(struct emu *e, void *state, void (*free_fn)(void *));
pthread_mutex_t *emu_lock(struct emu *e);

int emu_json(struct emu_resp *out, unsigned status, json_t *body);   /* steals body */
int emu_bytes(struct emu_resp *out, unsigned status, const char *type, const void *data,
              size_t len);
int emu_add_header(struct emu_resp *out, const char *name, const char *value);

/* ---- Pictures (picture.c) ------------------------------------------------- */

/* A picture for (vendor, prompt, seed, fingerprint) at w x h: a vendor's own
 * composition, with the fingerprint adding a small, visible drift. */
struct img *emu_picture(const char *vendor, const char *prompt, long long seed,
                        const char *fingerprint, int w, int h);
/* An edit: the region the mask marks (alpha 0, OpenAI's convention; or the
 * whole image without a mask) repainted from the prompt. */
struct img *emu_edit(const struct img *in, const struct img *mask, const char *prompt,
                     long long seed);
/* A cutout: RGBA, alpha from a soft ellipse around the subject. */
struct img *emu_cutout(const struct img *in);

extern const struct emu_vendor emu_vendor_openai;
extern const struct emu_vendor emu_vendor_bfl;
extern const struct emu_vendor emu_vendor_gemini;
extern const struct emu_vendor emu_vendor_stability;
extern const struct emu_vendor emu_vendor_removebg;
extern const struct emu_vendor emu_vendor_replicate;
extern const struct emu_vendor emu_vendor_fal;
extern const struct emu_vendor emu_vendor_a1111;
extern const struct emu_vendor emu_vendor_photoroom;
extern const struct emu_vendor emu_vendor_comfyui;

#endif
