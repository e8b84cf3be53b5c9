/* SPDX-License-Identifier: MIT */
/* test_prompt_spec.c -- the prompt spec loader: YAML and JSON specs load
 * with every field, and bad specs (unknown keys, wrong types, empty subject,
 * impossible aspects, broken syntax, hostile input) fail with the LINE:COL
 * of the offending node. Line and column numbers below are counted by hand
 * from the texts. */
#include "testutil.h"
#include "core/alloc.h"
#include "prompt/prompt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct prompt_spec *
load(const char *name, const char *text, struct ig_config_diags *d, struct ig_error *err)
{
    return prompt_spec_load(name, text, strlen(text), d, err);
}

static void
test_yaml_full(void **state)
{
    (void)state;
    size_t len;
    char *text = tu_read(tu_data("prompt/poster.yaml"), &len);
    struct ig_error err = {0};
    struct prompt_spec *s = prompt_spec_load("poster.yaml", text, len, NULL, &err);
    ig_free(text);
    assert_non_null(s);
    assert_string_equal(s->subject, "a red fox sitting in fresh snow");
    assert_int_equal(s->n_details, 2);
    assert_string_equal(s->details[1], "breath visible in the cold air");
    assert_int_equal(s->medium, PROMPT_MEDIUM_ILLUSTRATION);
    assert_int_equal(s->n_must_avoid, 3);
    assert_string_equal(s->text[0], "WINTER SALE");
    assert_int_equal(s->n_emphasis, 2);
    assert_string_equal(s->emphasis[0].term, "red scarf");
    assert_int_equal(s->emphasis[0].level, 2);
    assert_int_equal(s->emphasis[1].level, -1);
    assert_int_equal(s->aspect_w, 16);
    assert_int_equal(s->aspect_h, 9);
    assert_true(s->has_seed);
    assert_int_equal(s->seed, 1234);
    assert_int_equal(s->n, 2);
    assert_int_equal(s->n_refs, 1);
    assert_int_equal(s->refs[0].role, PROMPT_REF_STYLE);
    assert_int_equal(s->refs[0].weight, 200);
    assert_string_equal(s->palette[0], "#c0392b");   /* lower-cased */
    assert_non_null(s->notes);
    prompt_spec_free(s);
}

static void
test_json_full(void **state)
{
    (void)state;
    const char *j =
        "{\"subject\": \"a teapot\", \"medium\": \"cutout\", \"size\": \"1024x768\",\n"
        " \"seed\": 4294967295, \"details\": \"steam rising\",\n"
        " \"references\": [{\"url\": \"https://x/a.png\", \"role\": \"subject\"}],\n"
        " \"must_avoid\": [\"shadow\"], \"emphasis\": {\"steam\": -2}}";
    struct ig_error err = {0};
    struct prompt_spec *s = load("t.json", j, NULL, &err);
    assert_non_null(s);
    assert_int_equal(s->medium, PROMPT_MEDIUM_CUTOUT);
    assert_int_equal(s->width, 1024);
    assert_int_equal(s->height, 768);
    assert_int_equal(s->seed, 4294967295ULL);
    assert_int_equal(s->n_details, 1);   /* a string is a list of one */
    assert_int_equal(s->refs[0].role, PROMPT_REF_SUBJECT);
    assert_int_equal(s->emphasis[0].level, -2);
    prompt_spec_free(s);
}

struct bad {
    const char *name, *text;
    int line, col;
    const char *msg;
};

static void
test_bad_specs(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {"s.yaml", "subject: a cat\ncolour: red\n", 2, 1, "unknown key 'colour'"},
        {"s.yaml", "subject: a cat\nseed: \"7\"\n", 2, 7, "'seed' must be a number"},
        {"s.yaml", "subject: a cat\nseed: -1\n", 2, 7, "from 0 to 4294967295"},
        {"s.yaml", "subject: a cat\nseed: 4294967296\n", 2, 7, "from 0 to 4294967295"},
        {"s.yaml", "subject: \"  \"\n", 1, 10, "'subject' must not be empty"},
        {"s.yaml", "subject: 42\n", 1, 10, "'subject' must be a string"},
        {"s.yaml", "subject: [a, b]\n", 1, 10, "'subject' must be a string"},
        {"s.yaml", "details: [x]\n", 1, 1, "missing required key 'subject'"},
        {"s.yaml", "subject: a\naspect: \"0:9\"\n", 2, 9, "must be W:H"},
        {"s.yaml", "subject: a\naspect: \"20:1\"\n", 2, 9, "impossible"},
        /* past INT_MAX, and past what the 8:1 check can multiply: refused,
         * not overflowed (the prompt fuzz target found the second) */
        {"s.yaml", "subject: a\naspect: \"21:99999999999\"\n", 2, 9, "must be W:H"},
        {"s.yaml", "subject: a\naspect: \"21:999999999\"\n", 2, 9, "must be W:H"},
        {"s.yaml", "subject: a\nsize: 99999999999x1024\n", 2, 7, "must be WIDTHxHEIGHT"},
        {"s.yaml", "subject: a\naspect: wide\n", 2, 9, "must be W:H"},
        {"s.yaml", "subject: a\nsize: 10x10\n", 2, 7, "impossible"},
        {"s.yaml", "subject: a\nsize: 512x512\naspect: \"16:9\"\n", 3, 1, "contradicts"},
        {"s.yaml", "subject: a\nmedium: oil\n", 2, 9, "one of photo, illustration, cutout"},
        {"s.yaml", "subject: a\nn: 11\n", 2, 4, "from 1 to 10"},
        {"s.yaml", "subject: a\nemphasis: {cat: 5}\n", 2, 17, "from -3 to 3"},
        {"s.yaml", "subject: a\nemphasis: {cat: 0}\n", 2, 17, "level 0"},
        {"s.yaml", "subject: a\nemphasis: [cat]\n", 2, 11, "must be a mapping"},
        {"s.yaml", "subject: a\npalette: [red]\n", 2, 11, "#rrggbb"},
        {"s.yaml", "subject: a\nreferences:\n  - {url: ftp://x, role: style}\n", 3, 11,
         "http(s)://"},
        {"s.yaml", "subject: a\nreferences:\n  - {url: https://x, role: mood}\n", 3, 28,
         "one of style, subject, composition"},
        {"s.yaml", "subject: a\nreferences:\n  - {url: https://x}\n", 3, 5, "needs a 'role'"},
        {"s.yaml", "subject: a\nreferences:\n  - {url: https://x, role: style, size: 3}\n", 3,
         35, "unknown key 'size' in a reference"},
        {"s.yaml", "subject: a\nsubject: b\n", 2, 1, "duplicate key 'subject'"},
        {"s.yaml", "subject: a\n  bad: [\n", 2, 6, "syntax error"},
        {"s.yaml", "- subject\n", 1, 1, "must be a mapping"},
        {"s.yaml", "", 1, 1, "empty"},
        {"s.json", "{\"subject\": \"a\",}\n", 1, 17, "JSON syntax error"},
        {"s.json", "{\"subject\": \"a\", \"seed\": \"12\"}", 1, 26, "'seed' must be a number"},
        {"s.json", "{\"subject\": \"a\",\n \"must_avoid\": [\"x\", 3]}", 2, 22,
         "'must_avoid' must be a string"},
        {"s.json", "{\"subject\": \"a\",\n \"size\": true}", 2, 10, "'size' must be a string"},
        {"s.json", "{\"subject\": null}", 1, 13, "'subject' must be a string"},
        {"s.json", "{\"subject\": \"a\", # comment\n}", 1, 18, "JSON syntax error"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct bad *c = &cases[i];
        struct ig_config_diags d = {0};
        struct ig_error err = {0};
        struct prompt_spec *s = load(c->name, c->text, &d, &err);
        if (s || d.n == 0 || d.items[0].line != c->line || d.items[0].col != c->col ||
            !strstr(d.items[0].message, c->msg))
            fail_msg("case %zu (%s): got %zu diags, first %d:%d %s", i, c->text, d.n,
                     d.n ? d.items[0].line : 0, d.n ? d.items[0].col : 0,
                     d.n ? d.items[0].message : "(none)");
        assert_string_equal(err.code, "bad_spec");
        char want[64];
        snprintf(want, sizeof want, "%s:%d:%d: ", c->name, c->line, c->col);
        assert_true(strncmp(err.message, want, strlen(want)) == 0);
        ig_config_diags_free(&d);
    }
}

static void
test_all_errors_collected(void **state)
{
    (void)state;
    struct ig_config_diags d = {0};
    struct ig_error err = {0};
    assert_null(load("s.yaml", "subject: 1\nseed: x\nfoo: 1\n", &d, &err));
    assert_int_equal(d.n, 3);
    assert_non_null(strstr(err.message, "(and more)"));
    ig_config_diags_free(&d);
}

static void
test_hostile(void **state)
{
    (void)state;
    struct ig_error err = {0};
    /* Larger than the limit. */
    size_t big = (1u << 20) + 10;
    char *t = malloc(big + 1);
    assert_non_null(t);
    memset(t, 'a', big);
    t[big] = '\0';
    assert_null(prompt_spec_load("big.yaml", t, big, NULL, &err));
    /* Deep nesting, a NUL byte, control characters, truncated input. */
    memset(t, '[', 5000);
    memcpy(t, "subject: ", 9);
    assert_null(prompt_spec_load("deep.yaml", t, 5000, NULL, &err));
    free(t);
    assert_null(prompt_spec_load("nul.yaml", "subject: a\0b", 12, NULL, &err));
    assert_null(load("ctl.yaml", "subject: \"a\\u0007b\"\n", NULL, &err));
    const char *full = "{\"subject\": \"a cat\", \"details\": [\"b\"]}";
    for (size_t n = 0; n < strlen(full); n++)
        assert_null(prompt_spec_load("cut.json", full, n, NULL, &err));
    /* Too many items. */
    char list[2000] = "subject: a\ndetails: [";
    for (int i = 0; i < 70; i++)
        strcat(list, i ? ",x" : "x");
    strcat(list, "]\n");
    assert_null(load("many.yaml", list, NULL, &err));
}

static void
test_alloc_failures(void **state)
{
    (void)state;
    size_t len;
    char *text = tu_read(tu_data("prompt/poster.yaml"), &len);
    for (unsigned long nth = 1;; nth++) {
        struct ig_config_diags d = {0};
        struct ig_error err = {0};
        ig_alloc_fail_at(nth);
        struct prompt_spec *s = prompt_spec_load("p.yaml", text, len, &d, &err);
        ig_alloc_fail_at(0);
        ig_config_diags_free(&d);
        if (s) {
            prompt_spec_free(s);
            break;
        }
        assert_true(nth < 10000);
    }
    ig_free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_full),
        cmocka_unit_test(test_json_full),
        cmocka_unit_test(test_bad_specs),
        cmocka_unit_test(test_all_errors_collected),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
