/* SPDX-License-Identifier: MIT */
/* test_backends_urlguard.c -- the SSRF guard: which addresses are refused,
 * and guarded fetches against a local server whose redirects point at
 * private and metadata addresses, and whose answers are too large. */
#include "testutil.h"
#include "backends/urlguard.h"
#include "core/alloc.h"

#include <curl/curl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

static void
test_addresses(void **state)
{
    const struct be_urlguard strict = {0}, loop = {.allow_loopback = 1},
                             priv = {.allow_private = 1};
    const char *refused[] = {"127.0.0.1", "127.9.9.9", "10.0.0.1", "172.16.0.1", "172.31.255.1",
                             "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
                             "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fd00::1",
                             "::ffff:127.0.0.1", "::ffff:10.0.0.1", "ff02::1", "not-an-ip",
                             /* IPv4 inside IPv6: compatible, NAT64, 6to4 */
                             "::127.0.0.1", "::10.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",
                             "2002:7f00:1::1", "2002:a00:1::", "64:ff9b:1::1",
                             /* site-local, discard, documentation */
                             "fec0::1", "100::1", "2001:db8::1",
                             /* benchmarking, IETF, documentation */
                             "198.18.0.1", "198.19.255.255", "192.0.0.170", "192.0.2.1",
                             "198.51.100.7", "203.0.113.9"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (!be_addr_refused(refused[i], &strict))
            fail_msg("%s should be refused", refused[i]);
    const char *public[] = {"8.8.8.8", "172.32.0.1", "192.169.0.1", "2001:4860:4860::8888",
                            "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
                            "198.20.0.1", "192.0.1.1", "203.0.114.1", "2001:db9::1"};
    for (size_t i = 0; i < sizeof public / sizeof public[0]; i++)
        if (be_addr_refused(public[i], &strict))
            fail_msg("%s should pass", public[i]);
    assert_false(be_addr_refused("127.0.0.1", &loop));
    assert_true(be_addr_refused("10.0.0.1", &loop));
    assert_false(be_addr_refused("10.0.0.1", &priv));
    assert_true(be_addr_refused("127.0.0.1", &priv));
}

static void
test_url_check(void **state)
{
    const struct be_urlguard g = {.allow_http = 1};
    struct ig_error err = {0};
    char *pin = NULL;
    struct { const char *url; const char *code; } bad[] = {
        {"http://127.0.0.1/x", "url_refused"},
        {"http://localhost:8080/x", "url_refused"},
        {"http://[::1]/x", "url_refused"},
        {"http://10.1.2.3/x", "url_refused"},
        {"http://169.254.169.254/latest/meta-data/", "url_refused"},
        {"http://0x7f000001/", "url_refused"},
        {"ftp://8.8.8.8/x", "url_refused"},
        {"file:///etc/passwd", "url_refused"},
        {"not a url", "url_invalid"},
        {"http://no-such-host.invalid/x", "url_unresolvable"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ig_error_clear(&err);
        if (be_url_check(bad[i].url, &g, &pin, &err) == 0)
            fail_msg("%s passed the guard", bad[i].url);
        if (strcmp(err.code, bad[i].code) != 0)
            fail_msg("%s: %s (%s), wanted %s", bad[i].url, err.code, err.message, bad[i].code);
    }
    const struct be_urlguard https_only = {0};
    assert_int_equal(be_url_check("http://8.8.8.8/", &https_only, &pin, &err), -1);
    assert_int_equal(be_url_check("https://8.8.8.8/x", &https_only, &pin, &err), 0);
    assert_string_equal(pin, "8.8.8.8:443:8.8.8.8");
    ig_free(pin);
}

/* A server whose paths misbehave on purpose. */
static int port;

static enum MHD_Result
serve(void *cls, struct MHD_Connection *c, const char *url, const char *method,
      const char *version, const char *data, size_t *size, void **st)
{
    struct MHD_Response *r;
    unsigned code = 200;
    static char big[2 << 20];
    char location[128];
    if (strcmp(url, "/ok") == 0) {
        r = MHD_create_response_from_buffer(5, "hello", MHD_RESPMEM_PERSISTENT);
    } else if (strcmp(url, "/big") == 0) {
        r = MHD_create_response_from_buffer(sizeof big, big, MHD_RESPMEM_PERSISTENT);
    } else {
        const char *to = strcmp(url, "/to-private") == 0  ? "http://10.9.9.9/x"
                         : strcmp(url, "/to-metadata") == 0 ? "http://169.254.169.254/"
                         : strcmp(url, "/loop") == 0        ? NULL
                                                            : "/ok";
        if (to)
            snprintf(location, sizeof location, "%s", to);
        else
            snprintf(location, sizeof location, "http://127.0.0.1:%d/loop", port);
        r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Location", location);
        code = 302;
    }
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static void
test_guarded_fetch(void **state)
{
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, serve,
                                            NULL, MHD_OPTION_END);
    assert_non_null(d);
    port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    const struct be_urlguard g = {.allow_http = 1, .allow_loopback = 1};
    const struct be_fetch f = {.max_bytes = 1 << 20, .timeout_ms = 5000};
    struct ig_buf out = {0};
    struct ig_error err = {0};
    long status = 0;
    char url[128], ct[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/redirect-home", port);
    assert_int_equal(be_fetch_url(url, &g, &f, &status, &out, ct, sizeof ct, &err), 0);
    assert_int_equal(status, 200);
    assert_int_equal(out.len, 5);
    const char *cases[][2] = {{"/to-private", "url_refused"},
                              {"/to-metadata", "url_refused"},
                              {"/loop", "too_many_redirects"},
                              {"/big", "body_too_large"}};
    for (int i = 0; i < 4; i++) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, cases[i][0]);
        ig_error_clear(&err);
        assert_int_equal(be_fetch_url(url, &g, &f, &status, &out, ct, sizeof ct, &err), -1);
        if (strcmp(err.code, cases[i][1]) != 0)
            fail_msg("%s: %s (%s)", cases[i][0], err.code, err.message);
    }
    /* Without allow_loopback the first hop is refused already. */
    const struct be_urlguard strict = {.allow_http = 1};
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ok", port);
    assert_int_equal(be_fetch_url(url, &strict, &f, &status, &out, ct, sizeof ct, &err), -1);
    assert_string_equal(err.code, "url_refused");
    ig_buf_free(&out);
    MHD_stop_daemon(d);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_url_check),
        cmocka_unit_test(test_guarded_fetch),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
