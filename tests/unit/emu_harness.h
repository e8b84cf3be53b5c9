/* SPDX-License-Identifier: MIT */
/* emu_harness.h -- what every adapter-against-emulator test needs: one
 * emulator and one adapter loop in-process, a call run to its end, and the
 * emulator's admin API (faults, knobs, rotate, stats). */
#ifndef IG_TESTS_EMU_HARNESS_H
#define IG_TESTS_EMU_HARNESS_H

#include "testutil.h"
#include "backends/backend.h"
#include "emulate/emulate.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct harness {
    struct emu *emu;
    struct be_loop *loop;
    struct ig_backend_cfg backend;
    char endpoint[128];
};

static struct harness H;

/* Starts VENDOR's emulator and a loop; the backend talks to it with the
 * credential in env var KEYVAR. */
static inline int
h_setup(const char *vendor, const char *adapter, const char *path, const char *keyvar)
{
    struct ig_error err = {0};
    H.emu = emu_start(vendor, "127.0.0.1:0", NULL, &err);
    H.loop = H.emu ? be_loop_new(&err) : NULL;
    if (!H.loop) {
        print_error("%s\n", err.message);
        return -1;
    }
    snprintf(H.endpoint, sizeof H.endpoint, "http://%s%s", emu_address(H.emu), path);
    H.backend.name = "test-backend";
    H.backend.adapter = (char *)adapter;
    H.backend.endpoint = H.endpoint;
    H.backend.credential = (char *)keyvar;
    H.backend.contract.limits.total_timeout_ms = 30000;   /* sanitizer builds */
    return 0;
}

static inline void
h_teardown(void)
{
    be_loop_free(H.loop);
    emu_stop(H.emu);
}

struct h_waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    struct be_call *call;
    char saved[512];
};

static inline void
h_on_done(void *ud, struct be_call *c)
{
    struct h_waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->call = c;
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static inline void
h_on_save(void *ud, const char *json)
{
    struct h_waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    snprintf(w->saved, sizeof w->saved, "%s", json);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static struct h_waiter h_last;

/* Starts one call; h_wait ends it. The saved resume state is in
 * h_last.saved. */
static inline void
h_start(struct be_request *req)
{
    struct h_waiter *w = &h_last;
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    struct ig_error err = {0};
    if (!req->cfg)
        req->cfg = &H.backend;
    if (!req->max_body_bytes)
        req->max_body_bytes = 64L << 20;
    if (be_call_start(H.loop, req, h_on_save, h_on_done, w, &err) != 0)
        fail_msg("start: %s %s", err.code, err.message);
}

static inline struct be_call *
h_wait(void)
{
    struct h_waiter *w = &h_last;
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    return w->call;
}

/* Waits until the call in flight has saved its resume state (the vendor
 * knows the job) or ended; 1 when it saved. */
static inline int
h_wait_saved(void)
{
    struct h_waiter *w = &h_last;
    pthread_mutex_lock(&w->mu);
    while (!w->saved[0] && !w->done)
        pthread_cond_wait(&w->cv, &w->mu);
    int saved = w->saved[0] != 0;
    pthread_mutex_unlock(&w->mu);
    return saved;
}

/* Runs one call to its end. */
static inline struct be_call *
h_run(struct be_request *req)
{
    h_start(req);
    return h_wait();
}

static inline size_t
h_collect(char *p, size_t size, size_t n, void *ud)
{
    return ig_buf_append(ud, p, size * n) == 0 ? size * n : 0;
}

/* POST (body) or GET (NULL) /_emulator/WHAT; the JSON answer. */
static inline json_t *
h_admin(const char *what, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "http://%s/_emulator/%s", emu_address(H.emu), what);
    struct ig_buf out = {0};
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, h_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    json_t *j = json_loadb(out.data ? out.data : "", out.len, 0, NULL);
    ig_buf_free(&out);
    return j;
}

/* Queues faults, one per following request: "{...},{...}". */
static inline void
h_faults(const char *list)
{
    char body[1024];
    snprintf(body, sizeof body, "{\"faults\":[%s]}", list);
    json_decref(h_admin("faults", body));
}

static inline void
h_knobs(const char *obj)
{
    json_decref(h_admin("knobs", obj));
}

static inline long
h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Mean absolute difference of two same-size pictures, per channel. */
static inline double
h_diff(const struct img *a, const struct img *b)
{
    double sum = 0;
    size_t n = (size_t)a->width * (size_t)a->height * 4;
    for (size_t i = 0; i < n; i++)
        sum += abs((int)a->rgba[i] - (int)b->rgba[i]);
    return sum / (double)n;
}

/* Whether the call's provenance has a note of kind whose message holds needle. */
static inline int
h_has_note(const struct be_call *c, const char *kind, const char *needle)
{
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(c->result.provenance, "notes"), i, n)
        if (strcmp(json_string_value(json_object_get(n, "kind")), kind) == 0 &&
            strstr(json_string_value(json_object_get(n, "message")), needle))
            return 1;
    return 0;
}

#endif
