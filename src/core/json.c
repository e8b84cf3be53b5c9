/* SPDX-License-Identifier: MIT */
/* json.c -- depth-limited JSON parsing. */
#include "core/json.h"

int
ig_json_depth(const char *text, size_t len)
{
    int depth = 0, max = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                max = depth;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return max;
}

json_t *
ig_json_parse(const char *text, size_t len, int max_depth, struct ig_error *err)
{
    if (max_depth > 0 && ig_json_depth(text, len) > max_depth) {
        ig_error_set(err, 400, "json_too_deep", "JSON nested deeper than %d levels", max_depth);
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!v)
        ig_error_set(err, 400, "bad_json", "malformed JSON at line %d, column %d: %s", je.line,
                     je.column, je.text);
    return v;
}
