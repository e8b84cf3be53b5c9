/* SPDX-License-Identifier: MIT */
/* httpd.c -- the emulators' HTTP server: request collection (JSON or
 * multipart), the vendor table, the /_emulator/ admin API, and transport
 * faults applied before a vendor file sees the request. */
#include "emulate/emulate.h"
#include "core/alloc.h"

#include <arpa/inet.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const struct emu_vendor *const vendors[] = {
    &emu_vendor_openai,
    &emu_vendor_bfl,
    &emu_vendor_gemini,
    &emu_vendor_stability,
    &emu_vendor_removebg,
    &emu_vendor_replicate,
    &emu_vendor_fal,
    &emu_vendor_a1111,
    &emu_vendor_photoroom,
    &emu_vendor_comfyui,
    NULL,
};

struct emu {
    const struct emu_vendor *vendor;
    struct MHD_Daemon *daemon;
    pthread_mutex_t mu;
    char address[128];
    char base_url[160];
    char fingerprint[64];
    int rotations;
    int require_key;           /* the vendor's auth header is required */
    json_t *faults;            /* queue */
    json_t *knobs;             /* the vendor's unconfirmed behaviours, as set */
    atomic_int stopping;       /* ends hangs and latencies early */
    json_t *stats;             /* {"requests", "by_path", "submits"} */
    unsigned long next_id;
    int in_flight, max_in_flight;   /* requests being answered at once */
    void *vendor_state;
    void (*vendor_free)(void *);
};

const char *
emu_vendor_list(void)
{
    static char list[256];
    if (!list[0])
        for (int i = 0; vendors[i]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                     vendors[i]->name);
    return list;
}

/* ---- Helpers for vendor files ------------------------------------------- */

const char *
emu_header(struct emu_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *
emu_query(struct emu_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const struct emu_part *
emu_part(struct emu_req *r, const char *name, int nth)
{
    for (int i = 0; i < r->n_parts; i++)
        if (strcmp(r->parts[i].name, name) == 0 && nth-- == 0)
            return &r->parts[i];
    return NULL;
}

int
emu_auth_required(const struct emu *e)
{
    return e->require_key;
}

const char *
emu_fingerprint(struct emu *e)
{
    return e->fingerprint;
}

long
emu_knob_int(struct emu *e, const char *name, long def)
{
    pthread_mutex_lock(&e->mu);
    json_t *v = json_object_get(e->knobs, name);
    long n = json_is_number(v) ? (long)json_number_value(v) : def;
    pthread_mutex_unlock(&e->mu);
    return n;
}

const char *
emu_fault_kind(const struct emu_req *r)
{
    return r->fault ? json_string_value(json_object_get(r->fault, "kind")) : NULL;
}

void
emu_count_submit(struct emu *e, const char *key)
{
    pthread_mutex_lock(&e->mu);
    json_t *subs = json_object_get(e->stats, "submits");
    json_t *n = json_object_get(subs, key);
    json_object_set_new(subs, key, json_integer(n ? json_integer_value(n) + 1 : 1));
    pthread_mutex_unlock(&e->mu);
}

void
emu_request_id(struct emu *e, const char *prefix, char *out, size_t size)
{
    pthread_mutex_lock(&e->mu);
    unsigned long id = ++e->next_id;
    pthread_mutex_unlock(&e->mu);
    snprintf(out, size, "%s%08lx%04x", prefix, id, (unsigned)(getpid() & 0xffff));
}

const char *
emu_base_url(struct emu *e)
{
    return e->base_url;
}

void *
emu_vendor_state(struct emu *e)
{
    return e->vendor_state;
}

void
emu_set_vendor_state(struct emu *e, void *state, void (*free_fn)(void *))
{
    e->vendor_state = state;
    e->vendor_free = free_fn;
}

pthread_mutex_t *
emu_lock(struct emu *e)
{
    return &e->mu;
}

int
emu_json(struct emu_resp *out, unsigned status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return -1;
    out->status = status;
    ig_buf_reset(&out->body);
    int rc = ig_buf_puts(&out->body, text);
    free(text);
    snprintf(out->content_type, sizeof out->content_type, "application/json");
    return rc;
}

int
emu_bytes(struct emu_resp *out, unsigned status, const char *type, const void *data, size_t len)
{
    out->status = status;
    ig_buf_reset(&out->body);
    snprintf(out->content_type, sizeof out->content_type, "%s", type);
    return ig_buf_append(&out->body, data, len);
}

int
emu_add_header(struct emu_resp *out, const char *name, const char *value)
{
    if (out->n_headers >= 8)
        return -1;
    snprintf(out->headers[out->n_headers][0], 128, "%s", name);
    snprintf(out->headers[out->n_headers][1], 128, "%s", value);
    out->n_headers++;
    return 0;
}

/* ---- Admin API --------------------------------------------------------------- */

static int
admin(struct emu *e, struct emu_req *r, struct emu_resp *out)
{
    const char *what = r->url + strlen("/_emulator/");
    if (strcmp(what, "faults") == 0 && strcmp(r->method, "POST") == 0) {
        json_t *body = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
        json_t *list = json_object_get(body, "faults");
        if (!json_is_array(list)) {
            json_decref(body);
            return emu_json(out, 400, json_pack("{s:s}", "error", "send {\"faults\":[...]}"));
        }
        pthread_mutex_lock(&e->mu);
        json_array_extend(e->faults, list);
        size_t n = json_array_size(e->faults);
        pthread_mutex_unlock(&e->mu);
        json_decref(body);
        return emu_json(out, 200, json_pack("{s:i}", "queued", (int)n));
    }
    if (strcmp(what, "knobs") == 0 && strcmp(r->method, "POST") == 0) {
        json_t *body = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
        if (!json_is_object(body)) {
            json_decref(body);
            return emu_json(out, 400, json_pack("{s:s}", "error", "send a JSON object of knobs"));
        }
        pthread_mutex_lock(&e->mu);
        json_object_update(e->knobs, body);
        json_t *all = json_deep_copy(e->knobs);
        pthread_mutex_unlock(&e->mu);
        json_decref(body);
        return emu_json(out, 200, json_pack("{s:o}", "knobs", all));
    }
    if (strcmp(what, "rotate") == 0 && strcmp(r->method, "POST") == 0) {
        pthread_mutex_lock(&e->mu);
        e->rotations++;
        snprintf(e->fingerprint, sizeof e->fingerprint, "fp_%d", e->rotations + 1);
        json_t *ans = json_pack("{s:s}", "fingerprint", e->fingerprint);
        pthread_mutex_unlock(&e->mu);
        return emu_json(out, 200, ans);
    }
    if (strcmp(what, "stats") == 0) {
        pthread_mutex_lock(&e->mu);
        json_t *copy = json_deep_copy(e->stats);
        json_object_set_new(copy, "fingerprint", json_string(e->fingerprint));
        json_object_set_new(copy, "max_concurrent", json_integer(e->max_in_flight));
        json_object_set_new(copy, "faults_queued", json_integer((json_int_t)json_array_size(e->faults)));
        pthread_mutex_unlock(&e->mu);
        return emu_json(out, 200, copy);
    }
    if (strcmp(what, "reset") == 0 && strcmp(r->method, "POST") == 0) {
        pthread_mutex_lock(&e->mu);
        json_array_clear(e->faults);
        json_decref(e->stats);
        e->stats = json_pack("{s:i,s:{},s:{}}", "requests", 0, "by_path", "submits");
        e->max_in_flight = e->in_flight;
        pthread_mutex_unlock(&e->mu);
        return emu_json(out, 200, json_pack("{s:b}", "reset", 1));
    }
    return emu_json(out, 404, json_pack("{s:s}", "error", "unknown emulator admin path"));
}

/* ---- One request ------------------------------------------------------------- */

static enum MHD_Result
on_part(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
        const char *content_type, const char *transfer_encoding, const char *data, uint64_t off,
        size_t size)
{
    struct emu_req *r = cls;
    (void)kind;
    (void)transfer_encoding;
    struct emu_part *p = r->n_parts ? &r->parts[r->n_parts - 1] : NULL;
    if (!p || off == 0 || strcmp(p->name, key) != 0) {
        if (r->n_parts >= EMU_MAX_PARTS)
            return MHD_YES;
        p = &r->parts[r->n_parts++];
        snprintf(p->name, sizeof p->name, "%s", key);
        snprintf(p->filename, sizeof p->filename, "%s", filename ? filename : "");
        snprintf(p->type, sizeof p->type, "%s", content_type ? content_type : "");
    }
    return size && ig_buf_append(&p->data, data, size) != 0 ? MHD_NO : MHD_YES;
}

static void
req_free(struct emu_req *r)
{
    if (r->pp)
        MHD_destroy_post_processor(r->pp);
    for (int i = 0; i < r->n_parts; i++)
        ig_buf_free(&r->parts[i].data);
    ig_buf_free(&r->body);
    json_decref(r->fault);
    ig_free(r);
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
             enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    if (*req_cls)
        req_free(*req_cls);
    *req_cls = NULL;
}

static enum MHD_Result
send_resp(struct emu_req *r, struct emu_resp *out)
{
    size_t len = out->body.len;
    const char *kind = emu_fault_kind(r);
    if (kind && strcmp(kind, "truncated") == 0 && len > 1)
        len /= 2;   /* the body stops halfway: Content-Length says so too */
    char *copy = ig_malloc(len ? len : 1);
    if (!copy)
        return MHD_NO;
    if (len)
        memcpy(copy, out->body.data, len);
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, copy,
                                                                                   ig_free);
    if (!resp) {
        ig_free(copy);
        return MHD_NO;
    }
    if (out->content_type[0])
        MHD_add_response_header(resp, "Content-Type", out->content_type);
    for (int i = 0; i < out->n_headers; i++)
        MHD_add_response_header(resp, out->headers[i][0], out->headers[i][1]);
    enum MHD_Result ret = MHD_queue_response(r->conn, out->status ? out->status : 500, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result
dispatch(struct emu *e, struct emu_req *r)
{
    struct emu_resp out;
    memset(&out, 0, sizeof out);
    enum MHD_Result ret;
    if (strncmp(r->url, "/_emulator/", 11) == 0) {
        admin(e, r, &out);
        ret = send_resp(r, &out);
        ig_buf_free(&out.body);
        return ret;
    }
    pthread_mutex_lock(&e->mu);
    if (++e->in_flight > e->max_in_flight)
        e->max_in_flight = e->in_flight;
    json_object_set_new(e->stats, "requests",
                        json_integer(json_integer_value(json_object_get(e->stats, "requests")) + 1));
    json_t *by = json_object_get(e->stats, "by_path");
    json_t *cnt = json_object_get(by, r->url);
    json_object_set_new(by, r->url, json_integer(cnt ? json_integer_value(cnt) + 1 : 1));
    if (json_array_size(e->faults)) {
        r->fault = json_incref(json_array_get(e->faults, 0));
        json_array_remove(e->faults, 0);
    }
    pthread_mutex_unlock(&e->mu);
    const char *kind = emu_fault_kind(r);
    long delay = kind && strcmp(kind, "latency") == 0
                     ? (long)json_integer_value(json_object_get(r->fault, "delay_ms"))
                 : kind && strcmp(kind, "hang") == 0 ? 30000L
                                                       : 0;
    /* In slices, so that stopping the emulator ends a hang at once. */
    for (long slept = 0; slept < delay && !atomic_load(&e->stopping); slept += 20) {
        long step = delay - slept < 20 ? delay - slept : 20;
        struct timespec ts = {0, step * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (kind && (strcmp(kind, "server_error") == 0 || strcmp(kind, "unavailable") == 0)) {
        int unavailable = strcmp(kind, "unavailable") == 0;
        emu_json(&out, unavailable ? 503 : 500,
                 json_pack("{s:{s:s,s:s}}", "error", "message",
                           unavailable ? "The server is overloaded" : "The server had an error",
                           "type", "server_error"));
    } else if (kind && strcmp(kind, "deep_json") == 0) {
        /* JSON nested deeper than any client should follow. */
        int depth = (int)json_integer_value(json_object_get(r->fault, "depth"));
        depth = depth > 0 && depth < 1000000 ? depth : 5000;
        out.status = 200;
        snprintf(out.content_type, sizeof out.content_type, "application/json");
        for (int i = 0; i < depth; i++)
            ig_buf_append(&out.body, "[", 1);
        for (int i = 0; i < depth; i++)
            ig_buf_append(&out.body, "]", 1);
    } else if (kind && strcmp(kind, "wrong_type") == 0) {
        emu_bytes(&out, 200, "text/html", "<html><body>Service moved</body></html>", 39);
    } else if (kind && strcmp(kind, "redirect") == 0) {
        const char *to = json_string_value(json_object_get(r->fault, "location"));
        emu_bytes(&out, 302, "text/plain", "", 0);
        emu_add_header(&out, "Location", to ? to : "http://10.0.0.1/");
    } else if (e->vendor->handle(r, &out) != 0) {
        emu_json(&out, 500, json_pack("{s:s}", "error", "emulator failure"));
    }
    ret = send_resp(r, &out);
    ig_buf_free(&out.body);
    pthread_mutex_lock(&e->mu);
    e->in_flight--;
    pthread_mutex_unlock(&e->mu);
    return ret;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
       const char *version, const char *upload_data, size_t *upload_size, void **req_cls)
{
    struct emu *e = cls;
    (void)version;
    struct emu_req *r = *req_cls;
    if (!r) {
        r = ig_calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->emu = e;
        r->conn = conn;
        r->method = method;
        r->url = url;
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0)
            r->pp = MHD_create_post_processor(conn, 65536, on_part, r);
        *req_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        int rc = r->pp ? MHD_post_process(r->pp, upload_data, *upload_size) == MHD_YES
                       : ig_buf_append(&r->body, upload_data, *upload_size) == 0;
        *upload_size = 0;
        return rc ? MHD_YES : MHD_NO;
    }
    return dispatch(e, r);
}

/* ---- Lifecycle --------------------------------------------------------------- */

struct emu *
emu_start(const char *vendor, const char *listen, const struct emu_options *opt,
          struct ig_error *err)
{
    const struct emu_vendor *v = NULL;
    for (int i = 0; vendors[i]; i++)
        if (strcmp(vendors[i]->name, vendor) == 0)
            v = vendors[i];
    if (!v) {
        ig_error_set(err, 400, "unknown_vendor", "no emulator for '%s' (this build has: %s)",
                     vendor, emu_vendor_list());
        return NULL;
    }
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    char host[64] = "127.0.0.1";
    int port = 0;
    if (listen) {
        if (!colon || (size_t)(colon - listen) >= sizeof host) {
            ig_error_set(err, 400, "bad_listen", "listen address '%s' must be HOST:PORT", listen);
            return NULL;
        }
        if (colon > listen)
            snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
        port = atoi(colon + 1);
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        ig_error_set(err, 400, "bad_listen", "emulators listen on an IPv4 address, not '%s'", host);
        return NULL;
    }
    struct emu *e = ig_calloc(1, sizeof *e);
    if (!e) {
        ig_error_set(err, 500, "out_of_memory", "out of memory");
        return NULL;
    }
    e->vendor = v;
    e->require_key = !(opt && opt->no_auth);
    snprintf(e->fingerprint, sizeof e->fingerprint, "%s",
             opt && opt->fingerprint ? opt->fingerprint : "fp_1");
    e->faults = json_array();
    e->knobs = json_object();
    e->stats = json_pack("{s:i,s:{},s:{}}", "requests", 0, "by_path", "submits");
    pthread_mutex_init(&e->mu, NULL);
    if (opt && opt->faults) {
        json_t *f = json_loads(opt->faults, 0, NULL);
        if (!json_is_array(f)) {
            json_decref(f);
            emu_stop(e);
            ig_error_set(err, 400, "bad_faults", "faults must be a JSON array");
            return NULL;
        }
        json_array_extend(e->faults, f);
        json_decref(f);
    }
    if (opt && opt->knobs) {
        json_t *k = json_loads(opt->knobs, 0, NULL);
        if (!json_is_object(k)) {
            json_decref(k);
            emu_stop(e);
            ig_error_set(err, 400, "bad_knobs", "knobs must be a JSON object");
            return NULL;
        }
        json_object_update(e->knobs, k);
        json_decref(k);
    }
    /* A thread per connection: a "hang" or "latency" fault then stalls only
     * the request it was meant for. */
    e->daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
                                 (uint16_t)port, NULL, NULL, handle, e, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED,
                                 on_completed, e, MHD_OPTION_CONNECTION_TIMEOUT, 60u,
                                 MHD_OPTION_END);
    if (!e->daemon) {
        emu_stop(e);
        ig_error_set(err, 500, "listen_failed", "cannot listen on %s:%d", host, port);
        return NULL;
    }
    int bound = MHD_get_daemon_info(e->daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
    snprintf(e->address, sizeof e->address, "%s:%d", host, bound);
    snprintf(e->base_url, sizeof e->base_url, "http://%s", e->address);
    return e;
}

const char *
emu_address(const struct emu *e)
{
    return e->address;
}

void
emu_stop(struct emu *e)
{
    if (!e)
        return;
    atomic_store(&e->stopping, 1);
    if (e->daemon)
        MHD_stop_daemon(e->daemon);
    if (e->vendor_free)
        e->vendor_free(e->vendor_state);
    json_decref(e->faults);
    json_decref(e->knobs);
    json_decref(e->stats);
    pthread_mutex_destroy(&e->mu);
    ig_free(e);
}
