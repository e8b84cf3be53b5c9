/* SPDX-License-Identifier: MIT */
/* test_core_mem.c -- buffers, arenas, errors and the allocation funnel. */
#include "testutil.h"
#include "core/alloc.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/secret.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
test_buf(void **state)
{
    struct ig_buf b = {0};
    for (int i = 0; i < 10000; i++)
        assert_int_equal(ig_buf_printf(&b, "%d,", i), 0);
    assert_int_equal(strncmp(b.data, "0,1,2,", 6), 0);
    assert_int_equal(b.data[b.len], '\0');
    size_t len = b.len;
    ig_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_true(b.cap >= len);   /* memory kept for reuse */
    assert_int_equal(ig_buf_append(&b, "ab", 2), 0);
    /* A size that would wrap len + n + 1 is refused, not taken as small. */
    assert_int_equal(ig_buf_reserve(&b, SIZE_MAX - 1), -1);
    assert_int_equal(ig_buf_reserve(&b, SIZE_MAX - b.len), -1);
    assert_string_equal(b.data, "ab");
    /* Formatting into the room left, and growing when it is too short. */
    size_t cap = b.cap;
    assert_int_equal(ig_buf_printf(&b, "%0*d", (int)cap, 7), 0);
    assert_int_equal(b.len, 2 + cap);
    assert_int_equal(b.data[b.len - 1], '7');
    b.len = 2;
    b.data[2] = '\0';
    size_t n;
    char *s = ig_buf_steal(&b, &n);
    assert_string_equal(s, "ab");
    assert_int_equal(n, 2);
    assert_null(b.data);
    ig_free(s);
}

static void
test_buf_oom_keeps_contents(void **state)
{
    struct ig_buf b = {0};
    assert_int_equal(ig_buf_puts(&b, "keep"), 0);
    ig_alloc_fail_at(1);
    char big[100000];
    memset(big, 'x', sizeof big);
    assert_int_equal(ig_buf_append(&b, big, sizeof big), -1);
    ig_alloc_fail_at(0);
    assert_string_equal(b.data, "keep");
    ig_buf_free(&b);
}

static void
test_arena(void **state)
{
    struct ig_arena *a = ig_arena_new(256);
    assert_non_null(a);
    char *p[100];
    for (int i = 0; i < 100; i++) {
        p[i] = ig_arena_printf(a, "item-%d", i);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % 16, 0);
    }
    for (int i = 0; i < 100; i++) {
        char want[32];
        snprintf(want, sizeof want, "item-%d", i);
        assert_string_equal(p[i], want);
    }
    /* Larger than a chunk is still served. */
    unsigned char *big = ig_arena_alloc(a, 10000);
    assert_non_null(big);
    assert_int_equal(big[9999], 0);
    ig_arena_reset(a);
    assert_non_null(ig_arena_strdup(a, "again"));
    ig_arena_free(a);
}

static void
test_error(void **state)
{
    struct ig_error e = {0};
    assert_int_equal(ig_error_set(&e, 413, "too_big", "%d bytes", 5), -1);
    assert_string_equal(e.code, "too_big");
    assert_int_equal(e.http_status, 413);
    ig_error_prefix(&e, "%s: ", "file.png");
    assert_string_equal(e.message, "file.png: 5 bytes");
    assert_int_equal(ig_error_set(NULL, 400, "x", "y"), -1);
    char longmsg[2000];
    memset(longmsg, 'm', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = '\0';
    ig_error_set(&e, 400, "long", "%s", longmsg);
    ig_error_prefix(&e, "prefix: ");
    assert_int_equal(strncmp(e.message, "prefix: mmm", 11), 0);
    assert_int_equal(strlen(e.message), sizeof e.message - 1);
}

static void
test_grow_overflow(void **state)
{
    void *p = NULL;
    size_t cap = 0;
    assert_int_equal(ig_grow(&p, &cap, SIZE_MAX / 2, 16), -1);
    assert_null(p);
    assert_int_equal(ig_grow(&p, &cap, 3, 16), 0);
    assert_true(cap >= 3);
    ig_free(p);
}

static void
test_secret_refs(void **state)
{
    struct ig_error err = {0};
    char *v;
    setenv("IG_TEST_SECRET", "s3cr3t", 1);
    assert_int_equal(ig_resolve_ref("env:IG_TEST_SECRET", &v, &err), 0);
    assert_string_equal(v, "s3cr3t");
    ig_free(v);
    const char *path = tu_write_temp(".key", "from-file\nsecond line\n", 22);
    char ref[300];
    snprintf(ref, sizeof ref, "file:%s", path);
    assert_int_equal(ig_resolve_ref(ref, &v, &err), 0);
    assert_string_equal(v, "from-file");
    ig_free(v);
    unlink(path);
    assert_int_equal(ig_resolve_ref("env:IG_TEST_NOT_SET_ANYWHERE", &v, &err), -1);
    assert_string_equal(err.code, "secret_missing");
    assert_int_equal(ig_resolve_ref(ref, &v, &err), -1);
    assert_int_equal(ig_resolve_ref("postgresql://db/x", &v, &err), 0);
    assert_string_equal(v, "postgresql://db/x");
    ig_free(v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_buf_oom_keeps_contents),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_error),
        cmocka_unit_test(test_grow_overflow),
        cmocka_unit_test(test_secret_refs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
