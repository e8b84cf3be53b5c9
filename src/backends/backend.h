/* SPDX-License-Identifier: MIT */
/* backend.h -- vendor adapters: one protocol per file behind one table.
 *
 * The shape of curl's protocol handlers. A protocol is a const table of
 * slots (struct be_protocol); a call to a vendor is a small state machine
 * that the loop (loop.c) drives on one libcurl multi handle, so many calls
 * are in flight on one thread and a slow vendor never blocks another:
 *
 *   submit       builds the first HTTP exchange from the request;
 *   poll         reads a 2xx answer to the submit or to a poll and either
 *                finishes the call or builds the next exchange: another
 *                poll (after a delay) or a fetch of a result URL;
 *   fetch        reads the answer to a result download (any status: an
 *                expired URL means something different from a vendor error);
 *   parse_error  maps a non-2xx answer to the submit or a poll to the
 *                taxonomy (the vendor's error body, Retry-After);
 *   resume       builds the first poll of an async job saved before a crash;
 *   cancel       builds a best-effort cancellation at the vendor.
 * The loop picks the slot from the exchange's phase, so no protocol
 * switches on "what was I waiting for" by hand.
 *
 * Every protocol maps vendor answers to one error taxonomy: auth, quota,
 * rate_limited, moderated, invalid_request, upstream_error, timeout,
 * malformed_response. A 200 with no image is malformed_response, never a
 * success. Image bytes are kept exactly as the vendor sent them. */
#ifndef IG_BACKENDS_BACKEND_H
#define IG_BACKENDS_BACKEND_H

#include <curl/curl.h>
#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "core/json.h"
#include "image/image.h"

#define BE_MAX_IMAGES 8

struct be_request {
    const struct ig_backend_cfg *cfg;
    enum ig_class cls;
    const char *prompt, *negative_prompt;
    int width, height, n, scale;
    long long seed;
    int has_seed;
    const char *quality, *output_format;
    const json_t *vendor_params;     /* passed through as given (may be NULL) */
    const void *input;  size_t input_len;
    const void *mask;   size_t mask_len;
    const char *job_id;
    int attempt;
    long deadline_ms;                /* route_now_ms() clock; 0: none */
    const char *resume;              /* vendor state saved before a crash (JSON) */
    long max_body_bytes;
    int max_json_depth;
    const struct img_limits *img_limits;   /* local backends decode under these; NULL: none */
    unsigned long long tag;          /* the caller's name for the call, for be_loop_cancel */
    /* A relay: the client's own body, already in this vendor's dialect, is
     * sent as it is except for the model, whose JSON value spans
     * relay_model_off/len (len 0: the body names none). Only protocols with
     * a relay slot take one. */
    const char *relay_body;
    size_t relay_len, relay_model_off, relay_model_len;
};

struct be_image {
    void  *data;
    size_t len;
    /* A relay's image, which goes back to the client inside the vendor's own
     * answer: data holds only its head, enough to read the header, and this
     * is the whole image's size. 0: data is the whole image. */
    size_t size;
    char   mime[32];
};

struct be_result {
    int ok;
    struct ig_error err;
    long retry_after_ms;             /* -1: the vendor said nothing */
    int charged;                     /* the vendor billed this call */
    double cost_usd;                 /* what it billed, when it said; -1 unknown */
    struct be_image images[BE_MAX_IMAGES];
    int n_images;
    json_t *provenance;              /* request id, model, fingerprint, seed, finish reason,
                                      * usage, timings, dropped parameters */
    struct ig_buf provenance_text;   /* a relay's provenance instead, as the members of a
                                      * JSON object without its braces: it is only ever
                                      * written out, and building a tree to dump it was
                                      * a twentieth of a relay's instructions. Never both:
                                      * be_provenance turns the text into the tree. */
    struct ig_buf raw;               /* a relay: the vendor's answer, untouched, when the
                                      * images came in it (no download was needed) */
    char raw_type[128];
};
void be_result_clear(struct be_result *r);

/* One HTTP exchange the protocol asks the loop for, and its answer. */
enum be_phase {
    BE_PHASE_SUBMIT,                 /* the first exchange */
    BE_PHASE_POLL,                   /* asking an async job how it goes */
    BE_PHASE_FETCH                   /* downloading a result the vendor pointed at */
};

struct be_exchange {
    char method[8];
    enum be_phase phase;             /* be_x_start sets SUBMIT; protocols change it */
    char *url;
    struct curl_slist *headers;
    struct ig_buf body;              /* JSON or raw request body */
    curl_mime *mime;                 /* multipart instead of body (built on `easy`) */
    int untrusted_url;               /* the vendor gave this URL: through the URL guard */
    struct curl_slist *resolve;      /* the guard's pinned address for it */
    /* the answer */
    long status;
    struct ig_buf answer;
    char content_type[128];
    struct ig_buf answer_headers;    /* "name: value" lines as received, each ending in a NUL */
    int over_cap;
    CURLcode curl_code;
};

struct be_call;

enum be_next {
    BE_DONE,      /* result is filled */
    BE_SEND,      /* the next exchange is built: send it now */
    BE_WAIT       /* the next exchange is built: send it after call->wait_ms */
};

struct be_protocol {
    const char *name;                /* the config's adapter kind */
    int  (*submit)(struct be_call *c);
    enum be_next (*poll)(struct be_call *c);
    enum be_next (*fetch)(struct be_call *c);
    enum be_next (*parse_error)(struct be_call *c);
    int  (*resume)(struct be_call *c, const json_t *saved);
    /* Builds the first exchange from a client body in the vendor's own
     * dialect (be_request.relay_body); NULL: this protocol cannot relay. */
    int  (*relay)(struct be_call *c);
    /* Builds the cancel exchange for an async job in flight; NULL: the
     * vendor has no cancel (the job runs out and is not billed again). */
    int  (*cancel)(struct be_call *c);
    void (*free_state)(void *state);
};

struct be_call {
    const struct be_protocol *proto;
    struct be_request req;
    char *credential;                /* resolved secret; never logged */
    char *base;                      /* endpoint without a trailing slash */
    struct be_exchange x;
    CURL *easy;                      /* valid while building an exchange */
    struct be_loop *loop;            /* whose idle handles the easy handle goes back to */
    void *state;                     /* the protocol's own */
    struct be_result result;
    long wait_ms;
    int exchanges;
    long started_ms;
    /* Called with the JSON that resumes an async job (its id, polling URL). */
    void (*save)(void *ud, const char *json);
    void (*done)(void *ud, struct be_call *c);
    void *ud;
    /* loop bookkeeping */
    struct be_call *next;            /* on the incoming or waiting list */
    struct be_call *next_active;     /* on the list of transfers in the multi handle */
    long due_ms;
    int redirects;
    long first_byte_ms;              /* the response timeout's end; 0: none */
    int got_header;                  /* the answer to this exchange has begun */
    int cancelling;                  /* the exchange in flight is the vendor cancel */
};

/* ---- Helpers protocols share (protocol.c) ------------------------------- */

/* Starts a new exchange: method and URL (printf-style), headers cleared. */
int be_x_start(struct be_call *c, const char *method, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int be_x_header(struct be_call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The vendor's credential header: head (its name and any scheme, as
 * "Authorization: Bearer ") and then the credential. */
int be_x_credential(struct be_call *c, const char *head);
/* Sets a JSON body (steals body) with its Content-Type. */
int be_x_json(struct be_call *c, json_t *body);
/* An answer header, case-insensitive; NULL when absent. */
const char *be_answer_header(const struct be_call *c, const char *name);
/* The answer as JSON, under the depth and size limits; NULL with the call's
 * result set to malformed_response. */
json_t *be_answer_json(struct be_call *c);
/* 1 when the answer's Content-Type is JSON (or unsaid); 0 with the call's
 * result set to malformed_response. be_answer_json asks it first; an
 * adapter that scans the answer itself asks it too. */
int be_answer_is_json(struct be_call *c);
/* Finishes the call with an error of the taxonomy; returns BE_DONE. */
enum be_next be_fail(struct be_call *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Maps an HTTP status to the taxonomy (401/403 auth, 402 quota, 429
 * rate_limited, 400/404/413/415/422 invalid_request, 5xx upstream_error),
 * reads Retry-After / retry-after-ms, and finishes the call. */
enum be_next be_fail_status(struct be_call *c, const char *vendor_message);
/* Adds an image (copied) to the result. */
int be_result_add_image(struct be_result *r, const void *data, size_t len, const char *mime);
int be_add_image(struct be_call *c, const void *data, size_t len, const char *mime);
/* The answer is the image itself (remove.bg, Photoroom): it must say an
 * image/ type and carry bytes; taken as the billed result. */
enum be_next be_answer_is_image(struct be_call *c);
/* A downloaded image, added to the result: the answer must say an image/
 * type (or, when octet, application/octet-stream, which some storage
 * serves) and carry bytes; its type goes in without parameters. 0, or -1
 * with the call failed (malformed_response naming what, or out of
 * memory). */
int be_take_image(struct be_call *c, int octet, const char *what);
/* Builds the download of the next result URL in pending (strings; a URL
 * the vendor gave, so through the URL guard) and moves *next on; when none
 * is left, finishes the call with result.ok set. */
enum be_next be_download_next(struct be_call *c, const json_t *pending, size_t *next);
/* Decodes standard base64 (a data: URL prefix is skipped). */
int be_base64_decode(const char *in, struct ig_buf *out);
/* The same over len bytes that need not end in a NUL (a span of an answer). */
int be_base64_decode_n(const char *in, size_t len, struct ig_buf *out);
int be_base64_encode(const void *data, size_t len, struct ig_buf *out);
/* The call's provenance object, made on first use; NULL when out of memory
 * (json_object_set_new then drops the value). Submit slots add to it
 * rather than replace it: a note made before would be lost. */
json_t *be_provenance(struct be_call *c);
/* The result's provenance as one JSON object's text, whichever way it was
 * written (provenance_text or the tree), appended to out: 0; 1 when there
 * is none; -1 out of memory. */
int be_provenance_json(const struct be_result *r, struct ig_buf *out);

/* Writes provenance members into the tree, or for a relay whose provenance
 * has no tree, into provenance_text. Errors are sticky: be_prov_end is 0,
 * or -1 when memory ran out (what was written stays, maybe cut short: the
 * text is then dropped, as a tree drops a value it could not make). */
struct be_prov {
    struct be_call *c;
    json_t *tree;                    /* NULL: the text */
    struct ig_jw w;
};
void be_prov_begin(struct be_prov *p, struct be_call *c);
void be_prov_str(struct be_prov *p, const char *key, const char *value);
void be_prov_int(struct be_prov *p, const char *key, long long value);
/* A value already checked by ig_jscan (text[0..len) is one JSON value).
 * Text keeps it as it came, without the whitespace between tokens, when
 * it is ASCII; otherwise it goes through jansson, as into the tree. */
void be_prov_json(struct be_prov *p, const char *key, const char *text, size_t len);
int be_prov_end(struct be_prov *p);

/* Notes a parameter the contract made the adapter drop or translate. */
void be_note(struct be_call *c, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- Registry and loop ----------------------------------------------------- */

extern const struct be_protocol be_protocol_openai;
extern const struct be_protocol be_protocol_bfl;
extern const struct be_protocol be_protocol_gemini;
extern const struct be_protocol be_protocol_stability;
extern const struct be_protocol be_protocol_removebg;
extern const struct be_protocol be_protocol_replicate;
extern const struct be_protocol be_protocol_fal;
extern const struct be_protocol be_protocol_a1111;
extern const struct be_protocol be_protocol_photoroom;
extern const struct be_protocol be_protocol_comfyui;

/* The protocol for a config's adapter kind; NULL when this build has none. */
const struct be_protocol *be_find(const char *adapter);

struct be_loop;

/* A loop on a thread of its own. */
struct be_loop *be_loop_new(struct ig_error *err);
/* A loop with no thread: a thread that has its own event loop (an HTTP
 * thread) drives it, so a call it starts is sent, answered and finished on
 * that thread, with no hand-off to another. The owner says so once with
 * be_loop_bind, then alternates be_loop_turn (sends, reads, runs the done
 * callbacks; returns the ms it may sleep) and be_loop_wait (sleeps until a
 * transfer moves, one of fds is ready, ms pass or be_loop_wakeup). */
struct be_loop *be_loop_new_driven(struct ig_error *err);
void be_loop_bind(struct be_loop *l);
struct be_loop *be_loop_current(void);   /* the loop this thread drives, or NULL */
long be_loop_turn(struct be_loop *l);
void be_loop_wait(struct be_loop *l, struct curl_waitfd *fds, unsigned n, long ms);
void be_loop_wakeup(struct be_loop *l);  /* from any thread */
/* Fails every call still in flight with timeout (a driven loop: on its
 * owner, or once the owner has stopped driving it). */
void be_loop_free(struct be_loop *l);
/* Starts a call. credential is resolved from the backend's reference here.
 * done is called exactly once, on the loop's thread (a driven loop's owner).
 * -1: not started. */
int be_call_start(struct be_loop *l, const struct be_request *req,
                  void (*save)(void *ud, const char *json),
                  void (*done)(void *ud, struct be_call *c), void *ud, struct ig_error *err);
void be_call_free(struct be_call *c);
/* The protocol's slot for the answer in c->x, as the loop picks it: fetch
 * for a download, parse_error for a non-2xx answer, poll otherwise. (The
 * vendor fuzz target drives calls through it without a network.) */
enum be_next be_call_dispatch(struct be_call *c);
/* What every finished call's result is made to hold, whatever the protocol
 * left: an error with a code, or a success with at least one image, none
 * empty and each of an image type (or octet-stream); anything else is
 * malformed_response. */
void be_call_settle(struct be_call *c);
/* Cancels the call started with this req.tag, from any thread; a call that
 * has already finished is left alone. A waiting or running call ends with
 * the error `cancelled`; when the vendor has a cancel and already knows the
 * job, the protocol's cancel exchange is sent first (best effort: its
 * answer is noted in the provenance, and the call ends either way). */
void be_loop_cancel(struct be_loop *l, unsigned long long tag);

#endif
