/* SPDX-License-Identifier: MIT */
/* gateway.h -- the job engine: a job moves down its ladder, rung by rung.
 *
 * Per rung: circuit breaker, budget reservation, rate and concurrency
 * admission, prompt rendering, the adapter call, decoding under the limits,
 * the validation gate; on failure the attempt is recorded and the job
 * retries (transport errors, with backoff), re-seeds (validation failures)
 * or moves to the next rung. Every state change is written to the store
 * before it is acted on, so a process killed at any point resumes its jobs:
 * an async vendor job by its saved vendor id, never resubmitted.
 *
 * How an adapter talks, how a prompt is rendered and how an output is judged
 * are plugged in (struct route_executor, struct route_hooks): the engine
 * knows none of them, and tests drive it with their own. */
#ifndef IG_ROUTE_GATEWAY_H
#define IG_ROUTE_GATEWAY_H

#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/metrics.h"
#include "image/image.h"
#include "store/store.h"

#define ROUTE_MAX_IMAGES 8

/* One call to one backend, as the adapter receives it. */
struct route_attempt {
    const struct ig_backend_cfg *backend;
    enum ig_class cls;
    const char *job_id;
    int attempt;                  /* 1-based across the job */
    const char *prompt;           /* rendered for the backend's grammar */
    const char *negative_prompt;
    int width, height;            /* snapped to the contract; 0 = default */
    int n, scale;
    long long seed;
    int has_seed;
    const char *quality;
    const char *output_format;
    const json_t *params;         /* backend-specific parameters the renderer chose */
    const json_t *vendor_params;  /* the client's vendor_params, passed through */
    const void *input;  size_t input_len;   /* encoded input image, untouched */
    const void *mask;   size_t mask_len;
    long deadline_ms;             /* route_now_ms() clock */
    const char *vendor_resume;    /* JSON the adapter saved before a crash */
    /* The adapter calls this with the JSON it needs to resume an async
     * vendor job (its id, polling URL); the engine stores it durably. */
    void (*save_vendor)(void *cookie, const char *json);
    void *cookie;
    /* A relay (route_gateway_relay): the client's body, sent on as it is
     * but for the model's value at relay_model_off/len. */
    const char *relay_body;
    size_t relay_len, relay_model_off, relay_model_len;
};

struct route_image {
    void  *data;                  /* ig_malloc'd, vendor bytes untouched */
    size_t len;
    size_t size;                  /* a relay: the whole image's bytes when data is its head */
    char   mime[32];
};

/* What came back. Error codes are the adapter taxonomy: auth, quota,
 * rate_limited, moderated, invalid_request, upstream_error, timeout,
 * malformed_response. */
struct route_outcome {
    int ok;
    struct ig_error err;
    long retry_after_ms;          /* -1: none */
    int vendor_charged;           /* the vendor billed this attempt */
    double cost_usd;              /* what it billed, when it said; -1 unknown */
    struct route_image images[ROUTE_MAX_IMAGES];
    int n_images;
    char *provenance;             /* adapter's provenance JSON object, ig_malloc'd */
    struct ig_buf raw;            /* a relay: the vendor's answer as it came (may be empty) */
    char raw_type[128];
};
void route_outcome_clear(struct route_outcome *o);

typedef void (*route_done_fn)(void *cookie, struct route_outcome *o);

struct route_executor {
    void *ud;
    /* Starts an attempt and returns at once; calls done exactly once, from
     * any thread, with an outcome whose contents the engine then owns.
     * Returns -1 (with err) only when the attempt could not be started. */
    int (*start)(void *ud, const struct route_attempt *a, route_done_fn done, void *cookie,
                 struct ig_error *err);
    /* Optional: can this executor run the backend at all? 0 with a reason
     * makes the rung a skipped one, never an attempt. */
    int (*can_run)(void *ud, const struct ig_backend_cfg *b, char *why, size_t why_size);
    /* Optional: stop the attempt started with cookie, if it still runs. Its
     * done is still called exactly once (with the error `cancelled` when it
     * was stopped). */
    void (*cancel)(void *ud, void *cookie);
    /* Optional: can this backend take a client's body in its own dialect
     * (route_attempt.relay_body)? NULL: no backend can. */
    int (*can_relay)(void *ud, const struct ig_backend_cfg *b);
};

/* The rendering of a job's prompt for one backend. */
struct route_render {
    char *prompt, *negative_prompt;    /* ig_malloc'd */
    int width, height;
    long long seed;
    int has_seed;
    json_t *params;                    /* owned reference, may be NULL */
    json_t *notes;                     /* array of {"kind","message"}, owned, may be NULL */
};

struct route_hooks {
    void *ud;
    /* Renders request (the job's JSON) for backend b. NULL: the raw prompt
     * and size pass through. */
    int (*render)(void *ud, const struct ig_backend_cfg *b, const json_t *request,
                  struct route_render *out, struct ig_error *err);
    /* Judges a decoded output. Sets *report (a JSON object with the checks,
     * owned by the engine) and *pass. NULL: every decodable output passes. */
    int (*validate)(void *ud, const struct ig_config *cfg, enum ig_class cls,
                    const json_t *request, const struct img *output, const struct img *input,
                    const struct img *mask, json_t **report, int *pass, struct ig_error *err);
};

struct route_gateway;
struct route_limits;

struct route_gateway *route_gateway_new(const struct ig_config *cfg, struct store *st,
                                        struct ig_metrics *metrics,
                                        const struct route_executor *exec,
                                        const struct route_hooks *hooks, int threads,
                                        struct ig_error *err);
/* Shares limits with other replicas (route_limits_new_redis); the gateway
 * takes ownership. Call before the first job. */
void route_gateway_set_limits(struct route_gateway *gw, struct route_limits *limits);
/* Stop the executor first: an adapter must not complete into a freed gateway. */
void route_gateway_free(struct route_gateway *gw);

/* Accepts a job: validates the request, stores it, and starts it. request is
 * the normalised job JSON (see docs/api.md); input images are referenced by
 * blob id. Returns 0 (new job), 1 (an earlier job with the same
 * Idempotency-Key: nothing new runs), or -1 with err. */
int route_gateway_submit(struct route_gateway *gw, const char *tenant, const json_t *request,
                         const char *idem_key, char job_id[40], struct ig_error *err);
/* Waits until the job is terminal or timeout_ms passes; 1 when terminal. */
int route_gateway_wait(struct route_gateway *gw, const char *job_id, long timeout_ms);
int route_gateway_cancel(struct route_gateway *gw, const char *job_id, const char *tenant,
                         struct ig_error *err);
/* Resumes every job the store has as queued or running (after a restart). */
int route_gateway_recover(struct route_gateway *gw, struct ig_error *err);
/* Called with a job's id each time one reaches a terminal state (from a
 * worker thread; it must not block). */
void route_gateway_set_listener(struct route_gateway *gw, void (*fn)(void *ud, const char *job_id),
                                void *ud);
/* Is this job being worked on here right now (an attempt has started)? */
int route_gateway_running(struct route_gateway *gw, const char *job_id);
/* Jobs currently in memory (running or waiting). */
int route_gateway_active(struct route_gateway *gw);

/* ---- The relay ---------------------------------------------------------------
 *
 * A synchronous request in a vendor's own dialect (an OpenAI-compatible
 * generation) whose first rung speaks that dialect can skip the job
 * machinery: no job row before the call, no worker hand-offs, no decoding,
 * the client's body sent on byte for byte and the vendor's answer sent back
 * as it came. It still goes through the plan (contract, licence, size),
 * the breaker, the rate and concurrency limits, and its record (job,
 * attempt, ledger) is written -- many relays to one transaction -- before
 * the answer leaves. It is taken only when nothing would differ from the
 * durable path: the gate is off, no Idempotency-Key, nothing to reserve
 * against a budget ceiling, and the rung admits the request at once.
 * Anything else, and any failure a later rung or retry could mend, goes
 * the durable way (docs/scaling.md). */
struct route_relay {
    const char *tenant;
    const char *body;                 /* the client's JSON, in the vendor's dialect */
    size_t len, model_off, model_len; /* where the model's value is (len 0: none) */
    const char *target;               /* the backend or ladder the model names; NULL: default */
    int width, height, n;
    const char *quality;
};

struct route_relay_result {
    int ok;                           /* the answer below is the vendor's */
    int fallback;                     /* run the request the durable way instead */
    struct ig_error err;              /* when neither */
    char job_id[40];
    const struct ig_backend_cfg *backend;
    struct ig_buf answer;             /* the answer body (owned by the result) */
    char content_type[128];
    double cost_usd;
    char license[192];                /* "id; flag,flag", the X-Imagegate-License header */
    char *provenance;                 /* JSON, ig_malloc'd */
};
void route_relay_result_clear(struct route_relay_result *r);

/* 1: started, and done(cookie, result) is called once, later (the result
 * is the callee's to clear); 0: not for the relay (use
 * route_gateway_submit); -1 with err. done runs on the journal's thread, or
 * on the caller's own thread when that thread keeps its own journal. */
int route_gateway_relay(struct route_gateway *gw, const struct route_relay *rr,
                        void (*done)(void *cookie, struct route_relay_result *res), void *cookie,
                        struct ig_error *err);
/* The calling thread keeps its own journal: the records of relays that
 * finish on it (their vendor call ran on the loop it drives) wait for it to
 * call route_relay_flush, which writes them in one transaction and then
 * calls their done. An event-loop thread flushes once per pass, so its
 * answers cross no thread and a pass's records share a transaction. */
void route_relay_own_journal(void);
/* Writes this thread's waiting records; 1 if there were any. */
int route_relay_flush(void);

/* The job-class field of a request, validated; the server uses it too. */
int route_request_class(const json_t *request, enum ig_class *cls, struct ig_error *err);

#endif
