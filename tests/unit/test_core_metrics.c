/* SPDX-License-Identifier: MIT */
/* test_core_metrics.c -- the Prometheus registry renders the text format:
 * HELP and TYPE lines, escaped label values, cumulative buckets. */
#include "testutil.h"
#include "core/metrics.h"

#include <string.h>

static void
test_render(void **state)
{
    struct ig_metrics *m = ig_metrics_new();
    const char *const lbl[] = {"backend", NULL};
    struct ig_metric *c = ig_metric_declare(m, "t_requests_total", "Requests", IG_COUNTER, lbl,
                                            NULL, 0);
    struct ig_metric *g = ig_metric_declare(m, "t_active", "Active", IG_GAUGE, NULL, NULL, 0);
    const double b[] = {0.1, 1};
    struct ig_metric *h = ig_metric_declare(m, "t_seconds", "Latency", IG_HISTOGRAM, lbl, b, 2);
    ig_metric_add(c, (const char *[]){"open\"ai\n"}, 2);
    ig_metric_add(c, (const char *[]){"bfl"}, 1);
    ig_metric_add(c, (const char *[]){"bfl"}, 1.5);
    ig_metric_set(g, NULL, 7);
    ig_metric_observe(h, (const char *[]){"bfl"}, 0.05);
    ig_metric_observe(h, (const char *[]){"bfl"}, 0.5);
    ig_metric_observe(h, (const char *[]){"bfl"}, 5);
    assert_true(ig_metric_get(c, (const char *[]){"bfl"}) == 2.5);
    struct ig_buf out = {0};
    assert_int_equal(ig_metrics_render(m, &out), 0);
    const char *want[] = {
        "# HELP t_requests_total Requests\n# TYPE t_requests_total counter\n",
        "t_requests_total{backend=\"open\\\"ai\\n\"} 2\n",
        "t_requests_total{backend=\"bfl\"} 2.5\n",
        "# TYPE t_active gauge\nt_active 7\n",
        "t_seconds_bucket{backend=\"bfl\",le=\"0.1\"} 1\n",
        "t_seconds_bucket{backend=\"bfl\",le=\"1\"} 2\n",
        "t_seconds_bucket{backend=\"bfl\",le=\"+Inf\"} 3\n",
        "t_seconds_sum{backend=\"bfl\"} 5.55",
        "t_seconds_count{backend=\"bfl\"} 3\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(out.data, want[i]))
            fail_msg("missing:\n%s\nin:\n%s", want[i], out.data);
    ig_buf_free(&out);
    ig_metrics_free(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_render)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
