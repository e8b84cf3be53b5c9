/* SPDX-License-Identifier: MIT */
/* test_core_jscan.c -- the relay's structural JSON scanner, held against
 * jansson: on valid documents every top-level value it finds decodes to
 * what jansson decodes; every truncation and every mutation (over an
 * alphabet of structural characters, where the two parsers must agree)
 * is accepted or refused exactly when jansson accepts or refuses it. The
 * short-field decoders give what jansson decodes, or refuse; the JSON
 * string writer's output decodes, through jansson, to its input. */
#include "testutil.h"
#include "core/alloc.h"
#include "core/jscan.h"
#include "core/json.h"

#include <jansson.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

static const char *const docs[] = {
    "{}",
    "{\"model\":\"gpt-image-1\",\"prompt\":\"a \\\"quoted\\\" lighthouse\",\"n\":2}",
    "{ \"prompt\" : \"tab\\tnew\\nline \\u00e9 \\\\ /\" , \"size\":\"1024x1024\",\"x\":[1,2,{\"a\":null}],"
    "\"y\":{\"z\":[true,false,-1.5e+3,0,0.25]} }",
    "{\"a\":{\"b\":{\"c\":{\"d\":[[[[]]]]}}},\"model\":\"m\",\"model\":\"last\"}",
    "{\"big\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\",\"prompt\":\"\"}",
};

static int
jansson_ok(const char *doc, size_t len)
{
    json_error_t e;
    json_t *j = json_loadb(doc, len, 0, &e);
    int ok = json_is_object(j);
    json_decref(j);
    return ok;
}

static int
jscan_ok(const char *doc, size_t len)
{
    struct ig_jfield f[] = {{.key = "model"}, {.key = "prompt"}};
    struct ig_error err = {0};
    int rc = ig_jscan(doc, len, 64, f, 2, &err);
    if (rc != 0)
        assert_true(strcmp(err.code, "bad_json") == 0 || strcmp(err.code, "json_too_deep") == 0);
    return rc == 0;
}

static void
test_spans_match_jansson(void **state)
{
    (void)state;
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        json_t *root = json_loads(docs[d], 0, NULL);
        assert_non_null(root);
        const char *key;
        json_t *v;
        json_object_foreach(root, key, v) {
            struct ig_jfield f = {.key = key};
            struct ig_error err = {0};
            assert_int_equal(ig_jscan(docs[d], strlen(docs[d]), 64, &f, 1, &err), 0);
            assert_int_not_equal(f.type, IG_J_ABSENT);
            json_t *got = json_loadb(docs[d] + f.off, f.len, JSON_DECODE_ANY, NULL);
            if (!json_equal(got, v))
                fail_msg("doc %zu key %s: span '%.*s'", d, key, (int)f.len, docs[d] + f.off);
            json_decref(got);
        }
        struct ig_jfield none = {.key = "absent"};
        struct ig_error err = {0};
        assert_int_equal(ig_jscan(docs[d], strlen(docs[d]), 64, &none, 1, &err), 0);
        assert_int_equal(none.type, IG_J_ABSENT);
        json_decref(root);
    }
}

static void
test_truncations_and_mutations_agree(void **state)
{
    (void)state;
    static const char alphabet[] = "{}[]\":, ab0-.e\x01\ttrue";
    unsigned seed = 12345;
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        size_t len = strlen(docs[d]);
        for (size_t cut = 0; cut < len; cut++)
            assert_int_equal(jscan_ok(docs[d], cut), 0);
        char *buf = malloc(len + 1);
        assert_non_null(buf);
        for (int round = 0; round < 4000; round++) {
            memcpy(buf, docs[d], len + 1);
            int edits = 1 + (int)(rand_r(&seed) % 3);
            for (int e = 0; e < edits; e++)
                buf[rand_r(&seed) % len] = alphabet[rand_r(&seed) % (sizeof alphabet - 1)];
            /* jansson refuses integers it cannot hold; the scanner has no
             * reason to, so such documents are not compared. */
            if (strstr(buf, "000000000000000000"))
                continue;
            if (jscan_ok(buf, len) != jansson_ok(buf, len))
                fail_msg("disagree on '%s': jscan %d jansson %d", buf, jscan_ok(buf, len),
                         jansson_ok(buf, len));
        }
        free(buf);
    }
}

static void
test_bad_input(void **state)
{
    (void)state;
    const char *bad[] = {"", "[]", "\"x\"", "{\"a\":1}x", "{\"a\":\"\\q\"}", "{\"a\":\"\\u12\"}",
                         "{\"a\":01}", "{\"a\":1.}", "{\"a\":tru}", "{\"a\" 1}", "{a:1}",
                         "{\"a\":\"x\ny\"}", "{\"a\":[1,]}", "{\"a\":1,}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (jscan_ok(bad[i], strlen(bad[i])))
            fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(jansson_ok(bad[i], strlen(bad[i])), 0);
    }
    /* Nesting past the limit is its own error. */
    char deep[300];
    size_t n = 0;
    deep[n++] = '{';
    memcpy(deep + n, "\"a\":", 4);
    n += 4;
    for (int i = 0; i < 100; i++)
        deep[n++] = '[';
    for (int i = 0; i < 100; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    struct ig_jfield f = {.key = "a"};
    struct ig_error err = {0};
    assert_int_equal(ig_jscan(deep, n, 32, &f, 1, &err), -1);
    assert_string_equal(err.code, "json_too_deep");
    assert_int_equal(ig_jscan(deep, n, 128, &f, 1, &err), 0);
    assert_int_equal(f.type, IG_J_ARRAY);
}


/* Every string and integer value of every document: the decoders agree
 * with jansson, or refuse (a C string cannot hold U+0000). */
static void
test_decoders_match_jansson(void **state)
{
    (void)state;
    static const char *const more[] = {
        "{\"s\":\"caf\\u00e9 \\ud83d\\ude00 \\u20ac \\/ \\b\\f\\r\\t\\n \\\"q\\\"\",\"n\":-42,"
        "\"z\":0,\"big\":123456789012345678,\"f\":1.5,\"e\":1e3,\"nul\":\"a\\u0000b\"}",
    };
    /* Lone surrogates, which jansson refuses too. */
    static const char *const lone[] = {"{\"s\":\"\\ud83d x\"}", "{\"s\":\"\\ude00\"}",
                                       "{\"s\":\"\\ud83d\\u0041\"}"};
    static const char huge[] = "{\"huge\":1234567890123456789012}";
    const char *all[sizeof docs / sizeof docs[0] + 1];
    size_t n = 0;
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++)
        all[n++] = docs[d];
    all[n++] = more[0];
    int strings = 0, ints = 0, refused = 0;
    for (size_t d = 0; d < n; d++) {
        json_t *root = json_loads(all[d], JSON_ALLOW_NUL, NULL);
        const char *key;
        json_t *v;
        json_object_foreach(root, key, v) {
            struct ig_jfield f = {.key = key};
            struct ig_error err = {0};
            assert_int_equal(ig_jscan(all[d], strlen(all[d]), 64, &f, 1, &err), 0);
            char out[256];
            long long i;
            if (json_is_string(v)) {
                int rc = ig_jscan_string(all[d], &f, out, sizeof out);
                int has_nul = json_string_length(v) != strlen(json_string_value(v));
                if (has_nul) {
                    assert_int_equal(rc, -1);
                    refused++;
                } else if (json_string_length(v) < sizeof out) {
                    assert_int_equal(rc, 0);
                    assert_string_equal(out, json_string_value(v));
                    strings++;
                    /* one byte short of room: refused, never cut */
                    assert_int_equal(ig_jscan_string(all[d], &f, out, json_string_length(v)), -1);
                }
                assert_int_equal(ig_jscan_integer(all[d], &f, &i), -1);
            } else if (json_is_integer(v)) {
                assert_int_equal(ig_jscan_integer(all[d], &f, &i), 0);
                assert_true(i == json_integer_value(v));
                ints++;
                assert_int_equal(ig_jscan_string(all[d], &f, out, sizeof out), -1);
            } else if (json_is_real(v) || !v) {
                assert_int_equal(ig_jscan_integer(all[d], &f, &i), -1);
            }
        }
        json_decref(root);
    }
    /* jansson refuses the 22-digit integer; the scanner finds it, and the
     * decoder refuses it rather than wrap. */
    struct ig_jfield f = {.key = "huge"};
    struct ig_error err = {0};
    long long i;
    assert_int_equal(ig_jscan(huge, strlen(huge), 64, &f, 1, &err), 0);
    assert_int_equal(ig_jscan_integer(huge, &f, &i), -1);
    assert_true(strings >= 8);
    assert_true(ints >= 4);
    assert_true(refused == 1);
    for (size_t k = 0; k < sizeof lone / sizeof lone[0]; k++) {
        struct ig_jfield g = {.key = "s"};
        char out[64];
        assert_int_equal(ig_jscan(lone[k], strlen(lone[k]), 64, &g, 1, &err), 0);
        assert_int_equal(ig_jscan_string(lone[k], &g, out, sizeof out), -1);
        assert_null(json_loads(lone[k], 0, NULL));
    }
}

static void
test_string_writer_round_trips(void **state)
{
    (void)state;
    const char *inputs[] = {"", "plain", "q\"uote\\back/slash", "\x01\x1f ctl \b\f\n\r\t",
                            "caf\xc3\xa9 \xf0\x9f\x98\x80", NULL};
    for (size_t k = 0; k < sizeof inputs / sizeof inputs[0]; k++) {
        struct ig_buf b = {0};
        assert_int_equal(ig_json_put_string(&b, inputs[k]), 0);
        json_t *v = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
        if (!inputs[k]) {
            assert_true(json_is_null(v));
        } else {
            if (!json_is_string(v))
                fail_msg("'%s' did not decode", b.data);
            assert_string_equal(json_string_value(v), inputs[k]);
        }
        json_decref(v);
        ig_buf_free(&b);
    }
    /* The sticky writer: every allocation failure is reported at the end;
     * a number that is not finite is written as null. */
    char pad[301];
    memset(pad, '0', 300);
    pad[300] = '\0';
    for (unsigned long fail = 1;; fail++) {
        struct ig_buf b = {0};
        struct ig_jw w = {.b = &b};
        ig_alloc_fail_at(fail);
        ig_jw_raw(&w, "{\"a\":");
        ig_jw_str(&w, "x\ny");
        ig_jw_raw(&w, ",\"n\":");
        ig_jw_real(&w, 7);
        ig_jw_raw(&w, ",\"x\":");
        ig_jw_real(&w, 0.25);
        ig_jw_raw(&w, ",\"inf\":");
        ig_jw_real(&w, INFINITY);
        ig_jw_raw(&w, ",\"pad\":");
        ig_jw_str(&w, pad);
        ig_jw_raw(&w, "}");
        ig_alloc_fail_at(0);
        int rc = ig_jw_end(&w);
        if (rc == 0) {
            json_t *v = json_loads(b.data, 0, NULL);
            if (!v)
                fail_msg("not JSON: %s", b.data);
            assert_string_equal(json_string_value(json_object_get(v, "a")), "x\ny");
            assert_true(json_real_value(json_object_get(v, "n")) == 7.0);
            assert_true(json_real_value(json_object_get(v, "x")) == 0.25);
            assert_true(json_is_null(json_object_get(v, "inf")));
            assert_int_equal(strlen(json_string_value(json_object_get(v, "pad"))), 300);
            json_decref(v);
            ig_buf_free(&b);
            assert_true(fail > 1);
            break;
        }
        ig_buf_free(&b);
    }
}

/* Long strings, where the scanner compares 64 bytes at a time: a quote,
 * an escape, a bad escape or a control character at every position of
 * the first few blocks, and the same verdict and span as jansson's. */
static void
test_long_strings_every_position(void **state)
{
    (void)state;
    static const char *const inserts[] = {"\\\"", "\\\\", "\\n", "\\u00e9", "\x01", "\x1f",
                                          "\\q", "\"", "\x7f", "\xc3\xa9", "\\u12"};
    char doc[512];
    for (size_t k = 0; k < sizeof inserts / sizeof inserts[0]; k++) {
        for (int at = 0; at < 200; at += 1) {
            int n = snprintf(doc, sizeof doc, "{\"a\":\"%.*s%s%.*s\",\"b\":1}", at,
                             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                             inserts[k], 70, "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB");
            size_t len = (size_t)n;
            int want = jansson_ok(doc, len);
            if (jscan_ok(doc, len) != want)
                fail_msg("insert %zu at %d: jscan disagrees with jansson (%d)", k, at, want);
            if (!want)
                continue;
            struct ig_jfield f[] = {{.key = "a"}, {.key = "b"}};
            struct ig_error err = {0};
            assert_int_equal(ig_jscan(doc, len, 64, f, 2, &err), 0);
            json_t *root = json_loadb(doc, len, 0, NULL);
            json_t *got = json_loadb(doc + f[0].off, f[0].len, JSON_DECODE_ANY, NULL);
            assert_true(json_equal(got, json_object_get(root, "a")));
            assert_int_equal(f[1].type, IG_J_NUMBER);
            json_decref(got);
            json_decref(root);
            /* cut anywhere inside: unterminated, never accepted */
            for (size_t cut = f[0].off + 1; cut < f[0].off + f[0].len; cut += 7)
                assert_int_equal(jscan_ok(doc, cut), 0);
        }
    }
}

/* ig_json_dump writes what json_dumps writes (the fuzz target compares the
 * two on every input); here its failures: a tree deeper than its cap, and
 * every allocation failing in turn, each -1 with the buffer as it was. */
static void
test_dump_failures_leave_buffer(void **state)
{
    (void)state;
    json_t *deep = json_array(), *inner = deep;
    for (int i = 0; i < IG_JSON_DUMP_DEPTH + 1; i++) {
        json_t *next = json_array();
        json_array_append_new(inner, next);
        inner = next;
    }
    struct ig_buf b = {0};
    assert_int_equal(ig_buf_puts(&b, "kept"), 0);
    assert_int_equal(ig_json_dump(deep, &b), -1);
    assert_string_equal(b.data, "kept");
    json_decref(deep);
    assert_int_equal(ig_json_dump(NULL, &b), -1);
    assert_string_equal(b.data, "kept");
    ig_buf_free(&b);

    json_t *v = json_pack("{s:s,s:[i,f,b,n],s:{s:s}}", "a", "x\ny", "list", 7, 0.5, 1, "o",
                          "pad", "0123456789012345678901234567890123456789012345678901234567890123"
                                 "4567890123456789012345678901234567890123456789012345678901234567"
                                 "8901234567890123456789012345678901234567890123456789012345678901"
                                 "2345678901234567890123456789012345678901234567890123456789");
    char *want = json_dumps(v, JSON_COMPACT);
    for (unsigned long fail = 1;; fail++) {
        struct ig_buf out = {0};
        ig_alloc_fail_at(fail);
        int rc = ig_json_dump(v, &out);
        ig_alloc_fail_at(0);
        if (rc == 0) {
            assert_string_equal(out.data, want);
            ig_buf_free(&out);
            assert_true(fail > 1);
            break;
        }
        assert_int_equal(out.len, 0);
        ig_buf_free(&out);
    }
    free(want);
    json_decref(v);
}

/* Reals, where ig_json_dump writes a whole number below 2^53 itself and
 * the rest through %.17g: the same text as jansson's for each. */
static void
test_dump_reals_like_jansson(void **state)
{
    (void)state;
    const double v[] = {0.0,  -0.0,  1.0,   -5.0, 0.5, 1e-7, 123456789012345.0,
                        9007199254740991.0, -9007199254740991.0, 9007199254740992.0,
                        1e17, 1e300, -2.5e-300, 4.35};
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
        json_t *doc = json_pack("[f]", v[k]);
        char *want = json_dumps(doc, JSON_COMPACT);
        struct ig_buf got = {0};
        assert_int_equal(ig_json_dump(doc, &got), 0);
        if (strcmp(got.data, want) != 0)
            fail_msg("%.17g: %s, jansson %s", v[k], got.data, want);
        ig_buf_free(&got);
        free(want);
        json_decref(doc);
    }
}

/* ig_json_compact drops the whitespace between tokens and nothing else:
 * not inside strings (escaped quotes and backslashes included), not in
 * numbers; the text reads as the same tree; and a cut document (a string
 * with no end) is copied to its end without reading past it. */
static void
test_compact_keeps_strings(void **state)
{
    (void)state;
    static const char text[] = " {\n  \"a b\" : [1, 2.5e3 , true,\tnull, \"x\\\" \\\\ y\"],\r\n"
                               "  \"c\" : { } }\n";
    struct ig_buf b = {0};
    assert_int_equal(ig_buf_puts(&b, "kept:"), 0);
    assert_int_equal(ig_json_compact(&b, text, strlen(text)), 0);
    assert_string_equal(b.data, "kept:{\"a b\":[1,2.5e3,true,null,\"x\\\" \\\\ y\"],\"c\":{}}");
    json_t *want = json_loads(text, 0, NULL), *got = json_loads(b.data + 5, 0, NULL);
    assert_non_null(want);
    assert_true(json_equal(want, got));
    json_decref(want);
    json_decref(got);
    ig_buf_free(&b);
    static const char cut[] = "\"ab \\";
    assert_int_equal(ig_json_compact(&b, cut, strlen(cut)), 0);
    assert_string_equal(b.data, cut);
    ig_buf_free(&b);
}

/* ig_json_walk builds the tree json_loadb builds, without falling back to
 * it, for what vendors send (the fuzz target holds the two against each
 * other on every input jscan accepts); where jansson refuses the text, so
 * does ig_json_from_scanned; and with every allocation of the walk
 * failing in turn, the answer is still jansson's. */
static void
test_walk_reads_as_jansson(void **state)
{
    (void)state;
    const char *texts[] = {
        "{\"input_tokens\":50,\"output_tokens\":272,\"total_tokens\":322,"
        "\"input_tokens_details\":{\"text_tokens\":50,\"image_tokens\":0}}",
        " [1, -2.5e+3, 0.25, -0, 1E2, true, false, null, {\"b\": [[]]}, \"\"] ",
        "{\"s\":\"tab\\there \\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/\",\"\":{},\"dup\":1,\"dup\":2}",
        "\"caf\xc3\xa9\"", "-9223372036854775808", "1.7976931348623157e308", "[]",
    };
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        json_t *want = json_loadb(texts[k], strlen(texts[k]), JSON_DECODE_ANY, NULL);
        json_t *got = ig_json_walk(texts[k], strlen(texts[k]));
        assert_non_null(want);
        if (!got || !json_equal(got, want))
            fail_msg("walk of %s differs from jansson", texts[k]);
        json_decref(got);
        for (unsigned long fail = 1; fail < 40; fail++) {
            ig_alloc_fail_at(fail);
            got = ig_json_from_scanned(texts[k], strlen(texts[k]));
            ig_alloc_fail_at(0);
            assert_true(got && json_equal(got, want));
            json_decref(got);
        }
        json_decref(want);
    }
    const char *refused[] = {"9223372036854775808", "{\"a\":\"\\u0000\"}", "\"\xff\"",
                             "{\"\xc3\":1}", "1e999", "[1,]", "{\"a\" 1}", "[1] 2"};
    for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++) {
        assert_null(json_loadb(refused[k], strlen(refused[k]), JSON_DECODE_ANY, NULL));
        assert_null(ig_json_walk(refused[k], strlen(refused[k])));
        assert_null(ig_json_from_scanned(refused[k], strlen(refused[k])));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spans_match_jansson),
        cmocka_unit_test(test_truncations_and_mutations_agree),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_decoders_match_jansson),
        cmocka_unit_test(test_string_writer_round_trips),
        cmocka_unit_test(test_long_strings_every_position),
        cmocka_unit_test(test_dump_failures_leave_buffer),
        cmocka_unit_test(test_dump_reals_like_jansson),
        cmocka_unit_test(test_compact_keeps_strings),
        cmocka_unit_test(test_walk_reads_as_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
