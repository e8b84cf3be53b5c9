/* SPDX-License-Identifier: MIT */
/* test_route_redis.c -- limits shared through a real Redis server (started on
 * loopback by tests/servers.sh): three limiters stand for three replicas.
 * Images per minute hold cluster-wide, concurrency slots are shared and
 * lapse when their holder dies, breakers open for everyone, and a Redis
 * restart makes admission fail cleanly, then recover without a restart. */
#include "testutil.h"
#include "route/limit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[128], addr[64], prefix[64];

static void
servers(const char *verb, char *out, size_t size)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "bash '%s/tests/servers.sh' %s '%s'",
             getenv("IG_SOURCE_DIR") ? getenv("IG_SOURCE_DIR") : ".", verb, dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    if (out && !fgets(out, (int)size, p))
        out[0] = '\0';
    assert_int_equal(pclose(p), 0);
    if (out)
        out[strcspn(out, "\n")] = '\0';
}

static int
setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/igredis-%d", (int)getpid());
    servers("redis-start", addr, sizeof addr);
    return addr[0] ? 0 : -1;
}

static int
teardown(void **state)
{
    servers("redis-stop", NULL, 0);
    return 0;
}

/* Each test gets its own key space. */
static struct route_limits *
limiter(void)
{
    struct ig_error err = {0};
    struct route_limits *l = route_limits_new_redis(addr, prefix, &err);
    if (!l)
        fail_msg("redis: %s", err.message);
    return l;
}

struct racer {
    struct route_limits *l;
    int admitted;
};

static void *
race(void *arg)
{
    struct racer *r = arg;
    const struct route_limit_spec s = {.ipm = 20};
    for (int i = 0; i < 30; i++) {
        long wait;
        char why[200], holder[32];
        snprintf(holder, sizeof holder, "h%d", i);
        if (route_limits_admit(r->l, "backend:x", &s, 1, holder, 0, &wait, why, sizeof why) == 1)
            r->admitted++;
    }
    return NULL;
}

static void
test_images_per_minute_cluster_wide(void **state)
{
    snprintf(prefix, sizeof prefix, "t1-%d", (int)getpid());
    struct racer r[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        r[i] = (struct racer){.l = limiter()};
        assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        total += r[i].admitted;
        route_limits_free(r[i].l);
    }
    /* 90 tries against 20 a minute: the bucket's 20, plus at most the one
     * token that refills during the run. */
    assert_true(total >= 20 && total <= 21);
}

static void
test_concurrency_slots(void **state)
{
    snprintf(prefix, sizeof prefix, "t2-%d", (int)getpid());
    struct route_limits *a = limiter(), *b = limiter();
    const struct route_limit_spec s = {.concurrency = 2, .slot_ttl_ms = 300};
    long wait;
    char why[200];
    assert_int_equal(route_limits_admit(a, "tenant:t", &s, 1, "j1", 0, &wait, why, sizeof why), 1);
    assert_int_equal(route_limits_admit(b, "tenant:t", &s, 1, "j2", 0, &wait, why, sizeof why), 1);
    assert_int_equal(route_limits_admit(a, "tenant:t", &s, 1, "j3", 0, &wait, why, sizeof why), 0);
    assert_non_null(strstr(why, "in flight"));
    assert_int_equal(route_limits_in_flight(b, "tenant:t"), 2);
    route_limits_release(b, "tenant:t", "j2");
    assert_int_equal(route_limits_admit(a, "tenant:t", &s, 1, "j3", 0, &wait, why, sizeof why), 1);
    /* j1 and j3's replica dies without releasing: the slots lapse. */
    usleep(400000);
    assert_int_equal(route_limits_admit(b, "tenant:t", &s, 1, "j4", 0, &wait, why, sizeof why), 1);
    assert_int_equal(route_limits_in_flight(b, "tenant:t"), 1);
    route_limits_free(a);
    route_limits_free(b);
}

static void
test_breaker_shared(void **state)
{
    snprintf(prefix, sizeof prefix, "t3-%d", (int)getpid());
    struct route_limits *a = limiter(), *b = limiter();
    const struct route_limit_spec s = {.breaker_threshold = 2, .breaker_cooldown_ms = 300};
    assert_true(route_limits_breaker_allow(a, "backend:v", &s, 0));
    route_limits_breaker_record(a, "backend:v", 0, 0);
    route_limits_breaker_record(b, "backend:v", 0, 0);
    assert_int_equal(route_limits_breaker_state(b, "backend:v"), ROUTE_BREAKER_OPEN);
    assert_false(route_limits_breaker_allow(b, "backend:v", &s, 0));
    usleep(350000);
    assert_true(route_limits_breaker_allow(a, "backend:v", &s, 0));    /* the probe */
    assert_false(route_limits_breaker_allow(b, "backend:v", &s, 0));   /* only one */
    route_limits_breaker_record(a, "backend:v", 1, 0);
    assert_int_equal(route_limits_breaker_state(b, "backend:v"), ROUTE_BREAKER_CLOSED);
    route_limits_free(a);
    route_limits_free(b);
}

static void
test_redis_restart(void **state)
{
    snprintf(prefix, sizeof prefix, "t4-%d", (int)getpid());
    struct route_limits *a = limiter();
    const struct route_limit_spec s = {.rpm = 1000};
    long wait;
    char why[200];
    assert_int_equal(route_limits_admit(a, "tenant:r", &s, 1, "x", 0, &wait, why, sizeof why), 1);
    servers("redis-pause", NULL, 0);
    assert_int_equal(route_limits_admit(a, "tenant:r", &s, 1, "x", 0, &wait, why, sizeof why), -1);
    assert_non_null(strstr(why, "Redis"));
    /* Back on the same port: the next call reconnects. */
    servers("redis-resume", NULL, 0);
    assert_int_equal(route_limits_admit(a, "tenant:r", &s, 1, "x", 0, &wait, why, sizeof why), 1);
    route_limits_free(a);
}

static void
test_bad_address(void **state)
{
    struct ig_error err = {0};
    assert_null(route_limits_new_redis("nowhere", "p", &err));
    assert_string_equal(err.code, "bad_config");
    assert_null(route_limits_new_redis("127.0.0.1:1", "p", &err));
    assert_string_equal(err.code, "limits_unavailable");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_images_per_minute_cluster_wide),
        cmocka_unit_test(test_concurrency_slots),
        cmocka_unit_test(test_breaker_shared),
        cmocka_unit_test(test_redis_restart),
        cmocka_unit_test(test_bad_address),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
