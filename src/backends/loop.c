/* SPDX-License-Identifier: MIT */
/* loop.c -- the adapters' I/O loop: one thread, one libcurl multi handle.
 *
 * Calls arrive on a locked list and the thread is woken with
 * curl_multi_wakeup. A driven loop has no thread of its own: an HTTP
 * thread runs its passes between its own (be_loop_new_driven), and a call
 * that thread starts is sent on its next pass without a wake-up. Each call
 * owns one easy handle for its whole life, so libcurl's connection pool reuses connections to the same vendor across
 * calls. A call that waits (an async job between polls) sits on a list with
 * its due time and costs no thread. Per exchange: connect, response (the
 * first byte of the answer) and total timeouts from the contract, bounded
 * by the job's deadline; the answer is
 * capped at the body limit; URLs a vendor gave go through the URL guard
 * and redirects are followed by hand. Protocols never block: they only
 * build exchanges and read answers. */
#include "backends/backend.h"
#include "backends/urlguard.h"
#include "core/alloc.h"
#include "core/secret.h"
#include "core/str.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct be_loop {
    pthread_t thread;
    int driven;                      /* no thread of its own: see be_loop_new_driven */
    CURLM *multi;
    pthread_mutex_t mu;
    struct be_call *incoming;
    struct be_call *waiting;
    struct be_call *active;          /* transfers in the multi handle */
    unsigned long long *cancels;     /* tags to cancel, under mu */
    size_t n_cancels, cap_cancels;
    int stopping;
    /* Easy handles of finished calls, reset and kept for the next ones,
     * under mu: an easy handle is several kilobytes that curl_easy_init
     * allocates and fills, a cost every relayed request paid twice. */
    CURL *idle[64];
    int n_idle;
};

/* The driven loop the calling thread drives (be_loop_bind). */
static __thread struct be_loop *tl_current;

static CURL *
easy_take(struct be_loop *l)
{
    pthread_mutex_lock(&l->mu);
    CURL *e = l->n_idle ? l->idle[--l->n_idle] : NULL;
    pthread_mutex_unlock(&l->mu);
    return e ? e : curl_easy_init();
}

static void
easy_give(struct be_loop *l, CURL *e)
{
    curl_easy_reset(e);
    pthread_mutex_lock(&l->mu);
    int kept = l->n_idle < (int)(sizeof l->idle / sizeof l->idle[0]);
    if (kept)
        l->idle[l->n_idle++] = e;
    pthread_mutex_unlock(&l->mu);
    if (!kept)
        curl_easy_cleanup(e);
}

static long
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- Callbacks ------------------------------------------------------------ */

static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
    struct be_call *c = ud;
    size_t len = size * n;
    long cap = c->req.max_body_bytes > 0 ? c->req.max_body_bytes : 64L << 20;
    if ((long)(c->x.answer.len + len) > cap) {
        c->x.over_cap = 1;
        return 0;
    }
    return ig_buf_append(&c->x.answer, p, len) == 0 ? len : 0;
}

static size_t
on_header(char *p, size_t size, size_t n, void *ud)
{
    struct be_call *c = ud;
    size_t len = size * n;
    c->got_header = 1;
    /* Only "name: value" lines; the status line and the blank end are not
     * headers. One buffer for all of them, not a list node and a copy
     * each: a relay's answer has half a dozen. A line is cut at 1023
     * bytes; one that cannot be kept (out of memory) is left out. */
    if (len > 2 && memchr(p, ':', len) && strncmp(p, "HTTP/", 5) != 0) {
        size_t l = len < 1023 ? len : 1023;
        while (l && (p[l - 1] == '\r' || p[l - 1] == '\n'))
            l--;
        struct ig_buf *h = &c->x.answer_headers;
        size_t was = h->len;
        if (ig_buf_append(h, p, l) != 0 || ig_buf_append(h, "", 1) != 0)
            h->len = was;
    }
    return len;
}

/* ---- Sending ----------------------------------------------------------------- */

static int
is_loopback_base(const struct be_call *c)
{
    return strstr(c->base, "://127.") || strstr(c->base, "://localhost") ||
           strstr(c->base, "://[::1]");
}

static void finish(struct be_loop *l, struct be_call *c);

static void
send_exchange(struct be_loop *l, struct be_call *c)
{
    CURL *e = c->easy;
    long now = mono_ms();
    const struct ig_contract *k = &c->req.cfg->contract;
    long total = k->limits.total_timeout_ms > 0 ? k->limits.total_timeout_ms : 300000L;
    c->got_header = 0;
    c->first_byte_ms = k->limits.response_timeout_ms > 0 ? now + k->limits.response_timeout_ms : 0;
    if (c->req.deadline_ms > 0) {
        long left = c->req.deadline_ms - now;
        if (left <= 0) {
            be_fail(c, 504, "timeout", "the job's deadline passed before the vendor answered");
            finish(l, c);
            return;
        }
        if (left < total)
            total = left;
    }
    /* A handle that sent an exchange of this call is cleared here, as the
     * next is set on it; one fresh from easy_take is clear already (a relay,
     * one exchange, used to be cleared twice). */
    if (c->exchanges > 0)
        curl_easy_reset(e);
    if (c->x.untrusted_url) {
        /* A URL the vendor gave: checked like a user's, but the vendor's own
         * loopback emulator is trusted as far as its endpoint is. */
        const struct be_urlguard g = {.allow_http = strncmp(c->base, "http://", 7) == 0,
                                      .allow_loopback = is_loopback_base(c)};
        char *pin = NULL;
        struct ig_error err = {0};
        if (be_url_check(c->x.url, &g, &pin, &err) != 0) {
            be_fail(c, 502, "malformed_response", "the vendor's URL was refused: %s", err.message);
            finish(l, c);
            return;
        }
        c->x.resolve = curl_slist_append(NULL, pin);
        ig_free(pin);
        curl_easy_setopt(e, CURLOPT_RESOLVE, c->x.resolve);
    }
    curl_easy_setopt(e, CURLOPT_URL, c->x.url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     k->limits.connect_timeout_ms > 0 ? (long)k->limits.connect_timeout_ms : 10000L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->x.headers);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    if (c->x.mime) {
        curl_easy_setopt(e, CURLOPT_MIMEPOST, c->x.mime);
    } else if (strcmp(c->x.method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->x.body.data ? c->x.body.data : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->x.body.len);
        if (strcmp(c->x.method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->x.method);
    }
    c->exchanges++;
    if (curl_multi_add_handle(l->multi, e) != CURLM_OK) {
        be_fail(c, 502, "upstream_error", "cannot start the request");
        finish(l, c);
        return;
    }
    c->next_active = l->active;
    l->active = c;
}

static void
active_remove(struct be_loop *l, struct be_call *c)
{
    for (struct be_call **p = &l->active; *p; p = &(*p)->next_active)
        if (*p == c) {
            *p = c->next_active;
            return;
        }
}

void
be_call_settle(struct be_call *c)
{
    if (!c->result.ok && !c->result.err.code[0])
        be_fail(c, 502, "upstream_error", "the call ended without a result");
    if (c->result.ok && c->result.n_images == 0)
        be_fail(c, 502, "malformed_response", "the vendor answered with no image");
    for (int i = 0; c->result.ok && i < c->result.n_images; i++) {
        const struct be_image *im = &c->result.images[i];
        if (!im->data || !im->len)
            be_fail(c, 502, "malformed_response", "image %d of the answer is empty", i + 1);
        else if (strncmp(im->mime, "image/", 6) != 0 &&
                 strcmp(im->mime, "application/octet-stream") != 0)
            be_fail(c, 502, "malformed_response", "image %d of the answer is %.60s, not an image",
                    i + 1, im->mime[0] ? im->mime : "untyped");
    }
}

static void
finish(struct be_loop *l, struct be_call *c)
{
    (void)l;
    be_call_settle(c);
    struct be_prov p;
    be_prov_begin(&p, c);
    be_prov_str(&p, "adapter", c->proto->name);
    be_prov_int(&p, "exchanges", c->exchanges);
    be_prov_int(&p, "vendor_ms", mono_ms() - c->started_ms);
    be_prov_end(&p);
    c->done(c->ud, c);
}

/* An answer arrived (or the transfer failed): on to the protocol. */
static void
answered(struct be_loop *l, struct be_call *c, CURLcode code)
{
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->x.status);
    char *ct = NULL;
    curl_easy_getinfo(c->easy, CURLINFO_CONTENT_TYPE, &ct);
    ig_scopy(c->x.content_type, sizeof c->x.content_type, ct ? ct : "");
    c->x.curl_code = code;
    if (c->cancelling) {
        /* The vendor's answer to our cancel: noted, and the call is over. */
        if (c->result.provenance || (c->result.provenance = json_object()))
            json_object_set_new(c->result.provenance, "vendor_cancel",
                                code == CURLE_OK ? json_integer(c->x.status)
                                                 : json_string(curl_easy_strerror(code)));
        be_fail(c, 409, "cancelled", "the job was cancelled");
        finish(l, c);
        return;
    }
    if (c->x.over_cap) {
        be_fail(c, 502, "malformed_response", "the answer is larger than %ld bytes",
                c->req.max_body_bytes);
        finish(l, c);
        return;
    }
    if (code == CURLE_OPERATION_TIMEDOUT) {
        be_fail(c, 504, "timeout", "no answer in time from %s", c->x.url);
        finish(l, c);
        return;
    }
    if (code != CURLE_OK) {
        be_fail(c, 502, "upstream_error", "%s", curl_easy_strerror(code));
        finish(l, c);
        return;
    }
    char *location = NULL;
    curl_easy_getinfo(c->easy, CURLINFO_REDIRECT_URL, &location);
    if (location && c->x.status >= 300 && c->x.status < 400 && strcmp(c->x.method, "GET") == 0) {
        /* Followed by hand, so that every hop meets the URL guard. */
        if (++c->redirects > 3) {
            be_fail(c, 502, "malformed_response", "too many redirects");
            finish(l, c);
            return;
        }
        char *next = ig_strdup(location);
        enum be_phase phase = c->x.phase;
        if (!next || be_x_start(c, "GET", "%s", next) != 0) {
            ig_free(next);
            be_fail(c, 500, "upstream_error", "out of memory");
            finish(l, c);
            return;
        }
        ig_free(next);
        c->x.phase = phase;
        c->x.untrusted_url = 1;
        send_exchange(l, c);
        return;
    }
    enum be_next next = be_call_dispatch(c);
    if (next == BE_DONE) {
        if (c->req.relay_body && c->result.ok && c->exchanges == 1) {
            /* The answer the images came in goes back to the client as it
             * is: moved, not copied. */
            c->result.raw = c->x.answer;
            memset(&c->x.answer, 0, sizeof c->x.answer);
            ig_scopy(c->result.raw_type, sizeof c->result.raw_type, c->x.content_type);
        }
        finish(l, c);
    } else if (next == BE_SEND) {
        send_exchange(l, c);
    } else {
        long now = mono_ms();
        if (c->req.deadline_ms > 0 && now + c->wait_ms >= c->req.deadline_ms) {
            be_fail(c, 504, "timeout", "the vendor job did not finish before the deadline");
            finish(l, c);
            return;
        }
        c->due_ms = now + c->wait_ms;
        c->next = l->waiting;
        l->waiting = c;
    }
}

enum be_next
be_call_dispatch(struct be_call *c)
{
    if (c->x.phase == BE_PHASE_FETCH)
        return c->proto->fetch(c);
    if (c->x.status < 200 || c->x.status >= 300)
        return c->proto->parse_error(c);
    return c->proto->poll(c);
}

/* Takes a call out of whatever list holds it; 0 when it holds none (the
 * call has finished, or is not this loop's). */
static int
unlink_call(struct be_loop *l, struct be_call *c)
{
    for (struct be_call **p = &l->active; *p; p = &(*p)->next_active)
        if (*p == c) {
            *p = c->next_active;
            curl_multi_remove_handle(l->multi, c->easy);
            return 1;
        }
    for (struct be_call **p = &l->waiting; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            return 1;
        }
    return 0;
}

static struct be_call *
find_tag(struct be_loop *l, unsigned long long tag)
{
    for (struct be_call *c = l->active; c; c = c->next_active)
        if (c->req.tag == tag)
            return c;
    for (struct be_call *c = l->waiting; c; c = c->next)
        if (c->req.tag == tag)
            return c;
    return NULL;
}

static void
cancel_call(struct be_loop *l, struct be_call *c)
{
    if (c->cancelling || !unlink_call(l, c))
        return;
    if (c->proto->cancel && c->proto->cancel(c) == 0) {
        c->cancelling = 1;
        c->x.phase = BE_PHASE_POLL;
        send_exchange(l, c);
        return;
    }
    be_fail(c, 409, "cancelled", "the job was cancelled");
    finish(l, c);
}

/* Ends the transfers whose answer has not begun within the response
 * timeout; returns the earliest such deadline still ahead (or limit). */
static long
first_byte_timeouts(struct be_loop *l, long now, long limit)
{
    for (struct be_call **p = &l->active; *p;) {
        struct be_call *c = *p;
        if (!c->first_byte_ms || c->got_header) {
            p = &c->next_active;
            continue;
        }
        if (c->first_byte_ms > now) {
            if (c->first_byte_ms < limit)
                limit = c->first_byte_ms;
            p = &c->next_active;
            continue;
        }
        *p = c->next_active;
        curl_multi_remove_handle(l->multi, c->easy);
        be_fail(c, 504, "timeout", "no answer began within %d ms from %s",
                c->req.cfg->contract.limits.response_timeout_ms, c->x.url);
        finish(l, c);
    }
    return limit;
}

/* One pass: calls queued from other threads are sent, cancels and due
 * polls run, transfers move, and finished ones are answered (their done
 * callbacks run here). Returns 1 when the loop is stopping; *wait_ms is how
 * long it may sleep before the next pass. */
static int
turn(struct be_loop *l, long *wait_ms)
{
    pthread_mutex_lock(&l->mu);
    if (l->stopping) {
        /* The calls still queued stay queued: be_loop_free ends them. */
        pthread_mutex_unlock(&l->mu);
        return 1;
    }
    struct be_call *in = l->incoming;
    l->incoming = NULL;
    unsigned long long cancels[64];
    size_t n_cancels = l->n_cancels < 64 ? l->n_cancels : 64;
    if (n_cancels) {
        memcpy(cancels, l->cancels, n_cancels * sizeof *cancels);
        memmove(l->cancels, l->cancels + n_cancels,
                (l->n_cancels - n_cancels) * sizeof *cancels);
        l->n_cancels -= n_cancels;
    }
    pthread_mutex_unlock(&l->mu);
    while (in) {
        struct be_call *c = in;
        in = in->next;
        send_exchange(l, c);
    }
    for (size_t i = 0; i < n_cancels; i++) {
        struct be_call *c = find_tag(l, cancels[i]);
        if (c)
            cancel_call(l, c);
    }
    long now = mono_ms(), next_due = now + 1000;
    for (struct be_call **p = &l->waiting; *p;) {
        struct be_call *c = *p;
        if (c->due_ms <= now) {
            *p = c->next;
            send_exchange(l, c);
        } else {
            if (c->due_ms < next_due)
                next_due = c->due_ms;
            p = &c->next;
        }
    }
    int running = 0;
    curl_multi_perform(l->multi, &running);
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(l->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct be_call *c = NULL;
        CURL *e = m->easy_handle;
        CURLcode code = m->data.result;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&c);
        curl_multi_remove_handle(l->multi, e);
        active_remove(l, c);
        answered(l, c, code);
    }
    /* Answers just read may have put calls to wait: sleep no longer than
     * the earliest of them. */
    for (struct be_call *c = l->waiting; c; c = c->next)
        if (c->due_ms < next_due)
            next_due = c->due_ms;
    next_due = first_byte_timeouts(l, mono_ms(), next_due);
    pthread_mutex_lock(&l->mu);
    if (l->n_cancels || l->incoming)
        next_due = 0;
    pthread_mutex_unlock(&l->mu);
    long wait = next_due - mono_ms();
    *wait_ms = wait < 0 ? 0 : wait > 1000 ? 1000 : wait;
    return 0;
}

static void *
loop_main(void *arg)
{
    pthread_setname_np(pthread_self(), "ig-vendor-io");
    struct be_loop *l = arg;
    long wait;
    while (!turn(l, &wait))
        curl_multi_poll(l->multi, NULL, 0, (int)(wait < 1 ? 1 : wait), NULL);
    return NULL;
}

/* ---- Public ---------------------------------------------------------------- */

static struct be_loop *
loop_alloc(struct ig_error *err)
{
    struct be_loop *l = ig_calloc(1, sizeof *l);
    if (!l || !(l->multi = curl_multi_init())) {
        ig_free(l);
        ig_error_set(err, 500, "out_of_memory", "cannot start the adapter loop");
        return NULL;
    }
    curl_multi_setopt(l->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 1024L);
    /* libcurl sizes its idle-connection cache from the transfers added at
     * the time; calls come and go, so that sizing closed most connections
     * after each answer and every call paid a new TCP connect. */
    curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, 256L);
    pthread_mutex_init(&l->mu, NULL);
    return l;
}

struct be_loop *
be_loop_new(struct ig_error *err)
{
    struct be_loop *l = loop_alloc(err);
    if (l && pthread_create(&l->thread, NULL, loop_main, l) != 0) {
        curl_multi_cleanup(l->multi);
        pthread_mutex_destroy(&l->mu);
        ig_free(l);
        ig_error_set(err, 500, "threads", "cannot start the adapter loop");
        return NULL;
    }
    return l;
}

struct be_loop *
be_loop_new_driven(struct ig_error *err)
{
    struct be_loop *l = loop_alloc(err);
    if (l)
        l->driven = 1;
    return l;
}

void
be_loop_bind(struct be_loop *l)
{
    tl_current = l;
}

struct be_loop *
be_loop_current(void)
{
    return tl_current;
}

long
be_loop_turn(struct be_loop *l)
{
    long wait = 0;
    turn(l, &wait);
    return wait;
}

void
be_loop_wait(struct be_loop *l, struct curl_waitfd *fds, unsigned n, long ms)
{
    curl_multi_poll(l->multi, fds, n, (int)(ms < 0 ? 0 : ms > 1000 ? 1000 : ms), NULL);
}

void
be_loop_wakeup(struct be_loop *l)
{
    curl_multi_wakeup(l->multi);
}

static void
fail_list(struct be_loop *l, struct be_call *c)
{
    while (c) {
        struct be_call *next = c->next;
        /* The loop is going: a call freed from now on (in its done callback
         * or after) cleans up its own easy handle. */
        c->loop = NULL;
        be_fail(c, 503, "timeout", "the gateway is shutting down");
        finish(l, c);
        c = next;
    }
}

void
be_loop_free(struct be_loop *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stopping = 1;
    pthread_mutex_unlock(&l->mu);
    if (!l->driven) {
        curl_multi_wakeup(l->multi);
        pthread_join(l->thread, NULL);
    }
    if (tl_current == l)
        tl_current = NULL;
    /* Calls still in flight are ended so their owners hear about them. */
    for (struct be_call *c = l->active; c; c = c->next_active)
        curl_multi_remove_handle(l->multi, c->easy);
    while (l->active) {
        struct be_call *c = l->active;
        l->active = c->next_active;
        c->next = l->incoming;
        l->incoming = c;
    }
    fail_list(l, l->incoming);
    fail_list(l, l->waiting);
    while (l->n_idle)
        curl_easy_cleanup(l->idle[--l->n_idle]);
    curl_multi_cleanup(l->multi);
    pthread_mutex_destroy(&l->mu);
    ig_free(l->cancels);
    ig_free(l);
}

void
be_loop_cancel(struct be_loop *l, unsigned long long tag)
{
    pthread_mutex_lock(&l->mu);
    void *v = l->cancels;
    if (ig_grow(&v, &l->cap_cancels, l->n_cancels + 1, sizeof *l->cancels) == 0) {
        l->cancels = v;
        l->cancels[l->n_cancels++] = tag;
    }
    pthread_mutex_unlock(&l->mu);
    curl_multi_wakeup(l->multi);
}

void
be_call_free(struct be_call *c)
{
    if (!c)
        return;
    if (c->proto && c->proto->free_state)
        c->proto->free_state(c->state);
    be_result_clear(&c->result);
    ig_free(c->x.url);
    curl_slist_free_all(c->x.headers);
    ig_buf_free(&c->x.body);
    if (c->x.mime)
        curl_mime_free(c->x.mime);
    ig_buf_free(&c->x.answer);
    ig_buf_free(&c->x.answer_headers);
    curl_slist_free_all(c->x.resolve);
    if (c->easy && c->loop)
        easy_give(c->loop, c->easy);
    else if (c->easy)
        curl_easy_cleanup(c->easy);
    ig_free(c->credential);
    ig_free(c->base);
    ig_free(c);
}

int
be_call_start(struct be_loop *l, const struct be_request *req,
              void (*save)(void *ud, const char *json),
              void (*done)(void *ud, struct be_call *c), void *ud, struct ig_error *err)
{
    const struct be_protocol *p = be_find(req->cfg->adapter);
    if (!p)
        return ig_error_set(err, 502, "invalid_request", "%s: no adapter for '%s' in this build",
                            req->cfg->name, req->cfg->adapter);
    struct be_call *c = ig_calloc(1, sizeof *c);
    if (!c)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    c->proto = p;
    c->req = *req;
    c->save = save;
    c->done = done;
    c->ud = ud;
    c->started_ms = mono_ms();
    be_result_clear(&c->result);
    const char *ep = req->cfg->endpoint ? req->cfg->endpoint : "";
    size_t n = strlen(ep);
    while (n && ep[n - 1] == '/')
        n--;
    c->base = ig_strndup(ep, n);
    c->loop = l;
    c->easy = easy_take(l);
    if (!c->base || !c->easy) {
        be_call_free(c);
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    }
    if (req->cfg->credential && ig_resolve_ref(req->cfg->credential, &c->credential, err) != 0) {
        /* An emulated backend runs without keys (the embedded default
         * promises that); a real one never does. */
        if (req->cfg->emulated) {
            c->credential = ig_strdup("sk-emulator");
        } else {
            /* The reference is named, never the value. */
            ig_error_set(err, 401, "auth", "%s: credential %s is not available", req->cfg->name,
                         req->cfg->credential);
            be_call_free(c);
            return -1;
        }
    }
    int rc;
    if (req->resume) {
        json_t *saved = json_loads(req->resume, 0, NULL);
        rc = saved && p->resume ? p->resume(c, saved) : -1;
        json_decref(saved);
        if (rc != 0)
            ig_error_set(err, 502, "malformed_response", "%s: cannot resume the saved vendor job",
                         req->cfg->name);
    } else {
        rc = !req->relay_body ? p->submit(c) : p->relay ? p->relay(c) : -1;
        if (rc != 0)
            *err = c->result.err.code[0]
                       ? c->result.err
                       : (struct ig_error){500, "invalid_request", "cannot build the request"};
    }
    if (rc != 0) {
        be_call_free(c);
        return -1;
    }
    pthread_mutex_lock(&l->mu);
    c->next = l->incoming;
    l->incoming = c;
    pthread_mutex_unlock(&l->mu);
    /* The thread that drives this loop sends it on its next turn, which
     * comes before it sleeps: no wake-up to pay for. */
    if (tl_current != l)
        curl_multi_wakeup(l->multi);
    return 0;
}
