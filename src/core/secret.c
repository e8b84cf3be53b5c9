/* SPDX-License-Identifier: MIT */
/* secret.c -- env: and file: references. */
#include "core/secret.h"
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
ig_resolve_ref(const char *ref, char **out, struct ig_error *err)
{
    *out = NULL;
    if (strncmp(ref, "env:", 4) == 0) {
        const char *v = getenv(ref + 4);
        if (!v || !*v)
            return ig_error_set(err, 500, "secret_missing", "environment variable %.100s is not set",
                                ref + 4);
        *out = ig_strdup(v);
    } else if (strncmp(ref, "file:", 5) == 0) {
        FILE *f = fopen(ref + 5, "r");
        if (!f)
            return ig_error_set(err, 500, "secret_missing", "cannot read %.200s", ref + 5);
        char line[4096];
        int got = fgets(line, sizeof line, f) != NULL;
        fclose(f);
        if (!got)
            return ig_error_set(err, 500, "secret_missing", "%.200s is empty", ref + 5);
        line[strcspn(line, "\r\n")] = '\0';
        *out = ig_strdup(line);
    } else {
        *out = ig_strdup(ref);
    }
    return *out ? 0 : ig_error_set(err, 500, "out_of_memory", "out of memory");
}
