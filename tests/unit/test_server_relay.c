/* SPDX-License-Identifier: MIT */
/* test_server_relay.c -- the relay, end to end: the whole gateway (server,
 * job engine, adapters' loop) in front of the OpenAI emulator. A plain
 * OpenAI-compatible generation is relayed (the vendor's answer as it came,
 * provenance in headers, the job on record before the answer); every case
 * the relay must leave to the durable path is left to it (an
 * Idempotency-Key, the gate on, a budget to reserve against, a retryable
 * vendor failure); a final vendor refusal is answered as the error it is,
 * once; bad JSON gets the parser's error. */
#include "testutil.h"
#include "core/alloc.h"
#include "core/log.h"
#include "emulate/emulate.h"
#include "tools/stack.h"

#include <curl/curl.h>
#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static struct emu *emu;
static char emu_addr[64];
static char tmpdir[64];

struct resp {
    long status;
    struct ig_buf body;
    char relay[8], job[64], license[128];
};

static size_t
collect(char *p, size_t size, size_t n, void *ud)
{
    return ig_buf_append(ud, p, size * n) == 0 ? size * n : 0;
}

static void
header_value(const char *line, size_t len, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    if (len > n + 2 && strncasecmp(line, name, n) == 0 && line[n] == ':') {
        size_t v = len - n - 2;
        while (v && (line[n + 2 + v - 1] == '\r' || line[n + 2 + v - 1] == '\n'))
            v--;
        snprintf(out, size, "%.*s", (int)v, line + n + 2);
    }
}

static size_t
on_header(char *p, size_t size, size_t n, void *ud)
{
    struct resp *r = ud;
    header_value(p, size * n, "X-Imagegate-Relay", r->relay, sizeof r->relay);
    header_value(p, size * n, "X-Imagegate-Job", r->job, sizeof r->job);
    header_value(p, size * n, "X-Imagegate-License", r->license, sizeof r->license);
    return size * n;
}

static void
request(const char *base, const char *method, const char *path, const char *body,
        const char *extra_header, struct resp *r)
{
    memset(r, 0, sizeof *r);
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (extra_header)
        h = curl_slist_append(h, extra_header);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static void
emu_admin(const char *what, const char *body)
{
    char base[96];
    snprintf(base, sizeof base, "http://%s", emu_addr);
    struct resp r;
    request(base, "POST", what, body, NULL, &r);
    assert_int_equal(r.status, 200);
    ig_buf_free(&r.body);
}

static long
emu_requests(void)
{
    char base[96];
    snprintf(base, sizeof base, "http://%s", emu_addr);
    struct resp r;
    request(base, "GET", "/_emulator/stats", NULL, NULL, &r);
    json_t *j = json_loadb(r.body.data, r.body.len, 0, NULL);
    long n = (long)json_integer_value(json_object_get(j, "requests"));
    json_decref(j);
    ig_buf_free(&r.body);
    return n;
}

/* A gateway on the template config, with server_extra in its server
 * section and extra (YAML) after its ladder. */
struct gateway {
    struct ig_config *cfg;
    struct tool_stack stack;
    char base[96];
};

static void
gateway_start(struct gateway *g, int gate, const char *server_extra, const char *extra)
{
    static int n;
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "server: {data_dir: %s/d%d, log_level: error%s}\n"
             "limits: {job_timeout_ms: 20000}\n"
             "gate: {enabled: %s}\n"
             "backends:\n"
             "  - name: oai\n"
             "    adapter: openai\n"
             "    endpoint: http://%s/v1\n"
             "    credential: env:IG_TEST_RELAY_KEY\n"
             "    model: gpt-image-1\n"
             "    contract:\n"
             "      classes: [generate]\n"
             "      sizes: [1024x1024, 1024x1536]\n"
             "      grammar: natural-language\n"
             "      tier: fingerprint\n"
             "      license: {id: proprietary, flags: [commercial, attribution]}\n"
             "      price: {model: per-image, usd: 0.04}\n"
             "ladders:\n"
             "  - {name: gen, class: generate, rungs: [{backend: oai, retries: 2}]}\n"
             "%s",
             tmpdir, n++, server_extra, gate ? "true" : "false", emu_addr, extra);
    struct ig_error err = {0};
    g->cfg = ig_config_load("relay.yaml", yaml, strlen(yaml), NULL, &err);
    if (!g->cfg)
        fail_msg("config: %s", err.message);
    if (tool_stack_start(&g->stack, g->cfg, TOOL_STACK_SERVER, "127.0.0.1:0", &err) != 0)
        fail_msg("stack: %s", err.message);
    snprintf(g->base, sizeof g->base, "http://%s", srv_address(g->stack.srv));
}

static void
gateway_stop(struct gateway *g)
{
    tool_stack_stop(&g->stack);
    ig_config_free(g->cfg);
}

static const char gen[] =
    "{\"model\":\"gpt-image-1\",\"prompt\":\"a lighthouse\",\"size\":\"1024x1024\","
    "\"n\":1,\"user\":\"u-1\"}";

static void
test_relayed(void **state)
{
    (void)state;
    struct gateway g;
    gateway_start(&g, 0, "", "");
    long before = emu_requests();
    struct resp r;
    request(g.base, "POST", "/v1/images/generations", gen, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.relay, "1");
    assert_int_equal(emu_requests() - before, 1);
    /* The vendor's answer, as it came: OpenAI's shape, no imagegate field. */
    json_t *j = json_loadb(r.body.data, r.body.len, 0, NULL);
    assert_non_null(j);
    assert_null(json_object_get(j, "imagegate"));
    const char *b64 = json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 0), "b64_json"));
    assert_non_null(b64);
    assert_true(strlen(b64) > 100);
    size_t b64_len = strlen(b64);
    size_t image_bytes = b64_len / 4 * 3 - (b64[b64_len - 1] == '=') - (b64[b64_len - 2] == '=');
    json_decref(j);
    ig_buf_free(&r.body);
    /* On record before the answer left: the job, its provenance, its cost. */
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", r.job);
    struct resp jr;
    request(g.base, "GET", path, NULL, NULL, &jr);
    assert_int_equal(jr.status, 200);
    json_t *job = json_loadb(jr.body.data, jr.body.len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(job, "state")), "succeeded");
    json_t *prov = json_object_get(job, "provenance");
    assert_true(json_is_true(json_object_get(prov, "relay")));
    assert_string_equal(json_string_value(json_object_get(prov, "backend")), "oai");
    assert_true(json_real_value(json_object_get(prov, "cost_usd")) > 0.039);
    /* The image's whole size, though the relay decoded only its header. */
    json_t *out0 = json_array_get(json_object_get(job, "outputs"), 0);
    if (json_integer_value(json_object_get(out0, "bytes")) != (json_int_t)image_bytes)
        fail_msg("outputs[0].bytes %lld, the answer's image is %zu bytes",
                 (long long)json_integer_value(json_object_get(out0, "bytes")), image_bytes);
    /* The provenance carries what a durable job's does. */
    assert_string_equal(json_string_value(json_object_get(prov, "adapter")), "openai");
    assert_string_equal(json_string_value(json_object_get(prov, "model")), "gpt-image-1");
    assert_string_equal(json_string_value(json_object_get(prov, "tier")), "fingerprint");
    assert_true(json_is_false(json_object_get(prov, "emulated")));
    json_t *lic = json_object_get(prov, "license");
    assert_string_equal(json_string_value(json_object_get(lic, "id")), "proprietary");
    assert_int_equal(json_array_size(json_object_get(lic, "flags")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(lic, "flags"), 1)),
                        "attribution");
    assert_true(json_is_object(json_object_get(prov, "vendor")));
    json_t *att = json_array_get(json_object_get(prov, "attempts"), 0);
    assert_string_equal(json_string_value(json_object_get(att, "outcome")), "ok");
    assert_int_equal(json_integer_value(json_object_get(att, "attempt")), 1);
    assert_string_equal(r.license, "proprietary; commercial,attribution");
    json_decref(job);
    ig_buf_free(&jr.body);
    /* The same with a body too big for a DOM to be cheap: still relayed. */
    size_t big = 1500000;
    char *body = ig_malloc(big + 200);
    assert_non_null(body);
    int k = snprintf(body, 200, "{\"prompt\":\"x\",\"size\":\"1024x1024\",\"user\":\"");
    memset(body + k, 'A', big);
    strcpy(body + k + big, "\"}");
    request(g.base, "POST", "/v1/images/generations", body, NULL, &r);
    ig_free(body);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.relay, "1");
    ig_buf_free(&r.body);
    /* A size the durable path refuses is refused, not relayed to the vendor
     * as it is. */
    long sent = emu_requests();
    request(g.base, "POST", "/v1/images/generations",
            "{\"prompt\":\"x\",\"size\":\"1024x1024junk\"}", NULL, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.data, "invalid_request"));
    assert_string_equal(r.relay, "");
    assert_int_equal(emu_requests(), sent);
    ig_buf_free(&r.body);
    /* Bad JSON: the parser's error, from the durable path. */
    request(g.base, "POST", "/v1/images/generations", "{\"prompt\":\"x\",}", NULL, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.data, "bad_json"));
    ig_buf_free(&r.body);
    gateway_stop(&g);
}

static void
test_left_to_the_durable_path(void **state)
{
    (void)state;
    struct gateway g;
    gateway_start(&g, 0, "", "");
    struct resp r;
    /* An Idempotency-Key needs the durable job. */
    request(g.base, "POST", "/v1/images/generations", gen, "Idempotency-Key: k-1", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.relay, "");
    assert_non_null(strstr(r.body.data, "\"imagegate\""));
    ig_buf_free(&r.body);
    /* A vendor failure the engine would retry: the retry answers. */
    long before = emu_requests();
    emu_admin("/_emulator/faults", "{\"faults\":[{\"kind\":\"server_error\"}]}");
    request(g.base, "POST", "/v1/images/generations", gen, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.relay, "");
    assert_int_equal(emu_requests() - before, 2);
    ig_buf_free(&r.body);
    /* A final refusal on the last rung is answered as it is, once. */
    before = emu_requests();
    emu_admin("/_emulator/faults", "{\"faults\":[{\"kind\":\"moderation\"}]}");
    request(g.base, "POST", "/v1/images/generations", gen, NULL, &r);
    assert_true(r.status >= 400);
    assert_non_null(strstr(r.body.data, "moderated"));
    assert_non_null(strstr(r.body.data, "\"job_id\":\"job_"));
    assert_int_equal(emu_requests() - before, 1);
    json_t *eroot = json_loadb(r.body.data, r.body.len, 0, NULL);
    json_t *att = json_array_get(json_object_get(json_object_get(eroot, "error"), "attempts"), 0);
    assert_string_equal(json_string_value(json_object_get(att, "outcome")), "moderated");
    assert_non_null(json_string_value(json_object_get(att, "message")));
    /* ...and on record as failed, with the vendor's code. */
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s",
             json_string_value(json_object_get(json_object_get(eroot, "error"), "job_id")));
    json_decref(eroot);
    ig_buf_free(&r.body);
    request(g.base, "GET", path, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.data, "\"failed\""));
    assert_non_null(strstr(r.body.data, "moderated"));
    ig_buf_free(&r.body);
    gateway_stop(&g);

    /* With the gate on (the default), or a budget ceiling against a priced
     * rung, or the relay turned off: durable. */
    const char *configs[][2] = {
        {"", ""},
        {"", "tenants:\n  - {name: default, budget: {daily_usd: 5}}\n"},
        {", relay: off", ""},
    };
    for (size_t i = 0; i < 3; i++) {
        gateway_start(&g, i == 0, configs[i][0], configs[i][1]);
        request(g.base, "POST", "/v1/images/generations", gen, NULL, &r);
        if (r.status != 200)
            fail_msg("config %zu: %ld %s", i, r.status, r.body.data);
        assert_string_equal(r.relay, "");
        ig_buf_free(&r.body);
        gateway_stop(&g);
    }
}

/* Threads of this process whose name is name. */
static int
threads_named(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof comm, f))
            comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
        n += strcmp(comm, name) == 0;
    }
    closedir(d);
    return n;
}

/* The value of a metric line "name{labels} v" in a /metrics text; -1: absent. */
static double
metric_value(const char *text, const char *series)
{
    const char *p = strstr(text, series);
    return p && p[strlen(series)] == ' ' ? strtod(p + strlen(series) + 1, NULL) : -1;
}

/* A generation on a thread of its own. */
struct late {
    char base[96];
    struct resp r;
};

static void *
late_request(void *arg)
{
    struct late *late = arg;
    request(late->base, "POST", "/v1/images/generations", gen, NULL, &late->r);
    return NULL;
}

/* Relays on two HTTP threads: six keep-alive connections opened at once
 * are spread three and three; every relay is answered, and its record
 * written, by the HTTP thread that took it (no journal thread ever starts,
 * and the vendor I/O thread carries none of them); a relay still at the
 * vendor when the gateway stops is answered before the server goes. */
static void
test_relayed_on_http_threads(void **state)
{
    (void)state;
    struct gateway g;
    gateway_start(&g, 0, ", threads: 2", "");
    enum { N = 6, ROUNDS = 3 };
    char url[160];
    snprintf(url, sizeof url, "%s/v1/images/generations", g.base);
    CURLM *m = curl_multi_init();
    CURL *e[N];
    struct resp rs[N];
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    /* The vendor holds the first round's answers a while, so that all six
     * connections are open before any is reused. */
    char delays[512] = "{\"faults\":[";
    for (int i = 0; i < N; i++)
        strcat(delays, i ? ",{\"kind\":\"latency\",\"delay_ms\":300}"
                         : "{\"kind\":\"latency\",\"delay_ms\":300}");
    strcat(delays, "]}");
    emu_admin("/_emulator/faults", delays);
    for (int i = 0; i < N; i++) {
        e[i] = curl_easy_init();
        curl_easy_setopt(e[i], CURLOPT_URL, url);
        curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, gen);
        curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(e[i], CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e[i], CURLOPT_TIMEOUT, 60L);
    }
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < N; i++) {
            memset(&rs[i], 0, sizeof rs[i]);
            curl_easy_setopt(e[i], CURLOPT_WRITEDATA, &rs[i].body);
            curl_easy_setopt(e[i], CURLOPT_HEADERDATA, &rs[i]);
            curl_multi_add_handle(m, e[i]);
        }
        int running = 1;
        while (running) {
            curl_multi_perform(m, &running);
            if (running)
                curl_multi_poll(m, NULL, 0, 100, NULL);
        }
        for (int i = 0; i < N; i++) {
            curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &rs[i].status);
            if (rs[i].status != 200)
                fail_msg("round %d request %d: %ld", round, i, rs[i].status);
            assert_string_equal(rs[i].relay, "1");
            curl_multi_remove_handle(m, e[i]);
            if (round < ROUNDS - 1)
                ig_buf_free(&rs[i].body);
        }
    }
    /* The connections are still open: three on each thread. */
    struct resp mr;
    request(g.base, "GET", "/metrics", NULL, NULL, &mr);
    assert_int_equal(mr.status, 200);
    double t0 = metric_value(mr.body.data, "imagegate_http_connections{thread=\"0\"}");
    double t1 = metric_value(mr.body.data, "imagegate_http_connections{thread=\"1\"}");
    if (!((t0 == 3 && t1 == 4) || (t0 == 4 && t1 == 3)))
        fail_msg("connections per thread: %g and %g (six held and this one)", t0, t1);
    ig_buf_free(&mr.body);
    assert_int_equal(threads_named("ig-http"), 2);
    assert_int_equal(threads_named("ig-journal"), 0);
    /* Each relay is on record. */
    for (int i = 0; i < N; i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/jobs/%s", rs[i].job);
        struct resp jr;
        request(g.base, "GET", path, NULL, NULL, &jr);
        assert_int_equal(jr.status, 200);
        assert_non_null(strstr(jr.body.data, "\"succeeded\""));
        ig_buf_free(&jr.body);
        ig_buf_free(&rs[i].body);
    }
    for (int i = 0; i < N; i++)
        curl_easy_cleanup(e[i]);
    curl_multi_cleanup(m);
    curl_slist_free_all(h);

    /* Stopping with a relay at the vendor: it is answered first. */
    emu_admin("/_emulator/faults", "{\"faults\":[{\"kind\":\"latency\",\"delay_ms\":800}]}");
    struct late late;
    snprintf(late.base, sizeof late.base, "%s", g.base);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, late_request, &late), 0);
    usleep(300 * 1000);
    gateway_stop(&g);
    pthread_join(t, NULL);
    assert_int_equal(late.r.status, 200);
    assert_string_equal(late.r.relay, "1");
    ig_buf_free(&late.r.body);
    assert_int_equal(threads_named("ig-http"), 0);
}

/* A connection to the gateway at base (http://127.0.0.1:PORT). */
static int
connect_to(const char *base)
{
    const char *port = strrchr(base, ':') + 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Sends gen with extra headers on a new connection, closes its sending
 * side (as `nc -N` and some health checkers do) and reads until the server
 * closes: the whole answer, into out. */
static void
half_closed(const char *base, const char *extra, struct ig_buf *out)
{
    char req[768];
    int len = snprintf(req, sizeof req,
                       "POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       "Content-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n%s",
                       extra, strlen(gen), gen);
    assert_true(len > 0 && (size_t)len < sizeof req);
    int fd = connect_to(base);
    assert_int_equal(send(fd, req, (size_t)len, 0), len);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    struct timeval tv = {10, 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
        assert_int_equal(ig_buf_append(out, buf, (size_t)n), 0);
    assert_int_equal(n, 0);   /* the server closed; not a timeout */
    close(fd);
    assert_int_equal(ig_buf_append(out, "", 1), 0);
}

static void
test_half_closed_client_is_answered(void **state)
{
    (void)state;
    struct gateway g;
    gateway_start(&g, 0, "", "");
    /* Relayed: the connection is suspended while the vendor answers. */
    struct ig_buf b = {0};
    half_closed(g.base, "", &b);
    assert_non_null(strstr(b.data, "HTTP/1.1 200"));
    assert_non_null(strstr(b.data, "X-Imagegate-Relay: 1"));
    assert_non_null(strstr(b.data, "\"b64_json\""));
    ig_buf_free(&b);
    /* Durable (an Idempotency-Key), waited for in the same request. */
    half_closed(g.base, "Idempotency-Key: half-1\r\n", &b);
    assert_non_null(strstr(b.data, "HTTP/1.1 200"));
    assert_null(strstr(b.data, "X-Imagegate-Relay"));
    assert_non_null(strstr(b.data, "\"b64_json\""));
    ig_buf_free(&b);
    gateway_stop(&g);
}

/* Clients that send a relayed request and close at once: when
 * libmicrohttpd reads the request and the close together it closes the
 * connection, once the answer is back, without calling the handler again
 * (a race: most of twenty such clients hit it). The vendor's
 * answers still come and the jobs are still recorded, and the gateway then
 * stops at once -- it once waited out its whole drain for connections that
 * no longer existed, five seconds on every stop after such a client. */
static void
test_client_gone_mid_relay(void **state)
{
    (void)state;
    enum { N = 20 };
    struct gateway g;
    gateway_start(&g, 0, ", threads: 2", "");
    char req[512];
    int len = snprintf(req, sizeof req,
                       "POST /v1/images/generations HTTP/1.1\r\nHost: x\r\n"
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                       strlen(gen), gen);
    for (int i = 0; i < N; i++) {
        int fd = connect_to(g.base);
        assert_int_equal(send(fd, req, (size_t)len, 0), len);
        close(fd);
    }
    double done = 0;
    for (int i = 0; i < 200 && done < N; i++) {
        usleep(20 * 1000);
        struct resp mr;
        request(g.base, "GET", "/metrics", NULL, NULL, &mr);
        done = metric_value(mr.body.data,
                            "imagegate_jobs_total{class=\"generate\",state=\"succeeded\"}");
        ig_buf_free(&mr.body);
    }
    assert_true(done == N);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gateway_stop(&g);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    if (ms > 2000)
        fail_msg("stopping took %.0f ms", ms);
}

static int
setup(void **state)
{
    (void)state;
    ig_log_setup(NULL, IG_LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    setenv("IG_TEST_RELAY_KEY", "sk-test", 1);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/igrelay-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    struct ig_error err = {0};
    struct emu_options o = {.no_auth = 1};
    emu = emu_start("openai", "127.0.0.1:0", &o, &err);
    if (!emu)
        return -1;
    snprintf(emu_addr, sizeof emu_addr, "%s", emu_address(emu));
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    emu_stop(emu);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    curl_global_cleanup();
    return system(cmd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relayed),
        cmocka_unit_test(test_left_to_the_durable_path),
        cmocka_unit_test(test_relayed_on_http_threads),
        cmocka_unit_test(test_client_gone_mid_relay),
        cmocka_unit_test(test_half_closed_client_is_answered),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
