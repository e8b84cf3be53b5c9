/* SPDX-License-Identifier: MIT */
/* test_server_basic.c -- the server listens, answers /healthz, and answers
 * everything else in the one error shape. Real HTTP over loopback (libcurl). */
#include "testutil.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/metrics.h"
#include "server/server.h"

#include <curl/curl.h>
#include <jansson.h>
#include <string.h>

static size_t
collect(char *p, size_t size, size_t n, void *ud)
{
    return ig_buf_append(ud, p, size * n) == 0 ? size * n : 0;
}

static long
http(const char *method, const char *url, const char *body, struct ig_buf *out)
{
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

static void
test_healthz_and_errors(void **state)
{
    struct ig_error err = {0};
    struct ig_config *cfg = ig_config_load_default(NULL, &err);
    assert_non_null(cfg);
    struct ig_metrics *m = ig_metrics_new();
    struct srv_deps deps = {.metrics = m};
    struct srv *s = srv_start(cfg, &deps, "127.0.0.1:0", &err);
    if (!s)
        fail_msg("%s", err.message);
    char url[512];
    struct ig_buf body = {0};

    snprintf(url, sizeof url, "http://%s/healthz", srv_address(s));
    assert_int_equal(http("GET", url, NULL, &body), 200);
    json_t *j = json_loads(body.data, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
    json_decref(j);

    ig_buf_reset(&body);
    snprintf(url, sizeof url, "http://%s/nowhere", srv_address(s));
    assert_int_equal(http("POST", url, "{\"a\":1}", &body), 404);
    j = json_loads(body.data, 0, NULL);
    assert_non_null(j);
    json_t *e = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "not_found");
    assert_non_null(json_object_get(e, "message"));
    assert_true(json_is_null(json_object_get(e, "job_id")));
    assert_true(json_is_array(json_object_get(e, "attempts")));
    json_decref(j);

    ig_buf_reset(&body);
    snprintf(url, sizeof url, "http://%s/healthz", srv_address(s));
    assert_int_equal(http("DELETE", url, NULL, &body), 405);

    /* Job routes answer 503 when the server runs without a job engine. */
    ig_buf_reset(&body);
    snprintf(url, sizeof url, "http://%s/v1/jobs", srv_address(s));
    assert_int_equal(http("POST", url, "{}", &body), 503);

    ig_buf_reset(&body);
    snprintf(url, sizeof url, "http://%s/metrics", srv_address(s));
    assert_int_equal(http("GET", url, NULL, &body), 200);
    assert_non_null(strstr(body.data, "imagegate_http_requests_total{method=\"GET\",code=\"200\"}"));
    /* Each HTTP thread's connection gauge, the idle one's too (one thread
     * serves the connections this test made, one at a time). */
    assert_non_null(strstr(body.data, "imagegate_http_connections{thread=\"0\"}"));
    assert_non_null(strstr(body.data, "imagegate_http_connections{thread=\"1\"}"));

    ig_buf_free(&body);
    srv_stop(s);
    ig_metrics_free(m);
    ig_config_free(cfg);
}

static void
test_bad_listen(void **state)
{
    struct ig_error err = {0};
    struct ig_config *cfg = ig_config_load_default(NULL, &err);
    struct ig_metrics *m = ig_metrics_new();
    struct srv_deps deps = {.metrics = m};
    const char *bad[] = {"nocolon", "127.0.0.1:99999", "localhost:80x", "not-an-ip:80"};
    for (size_t i = 0; i < 4; i++) {
        assert_null(srv_start(cfg, &deps, bad[i], &err));
        assert_string_equal(err.code, "bad_listen");
    }
    /* A port in use is a clear error too. */
    struct srv *a = srv_start(cfg, &deps, "127.0.0.1:0", &err);
    assert_non_null(a);
    assert_null(srv_start(cfg, &deps, srv_address(a), &err));
    assert_string_equal(err.code, "listen_failed");
    srv_stop(a);
    ig_metrics_free(m);
    ig_config_free(cfg);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthz_and_errors),
        cmocka_unit_test(test_bad_listen),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
