/* SPDX-License-Identifier: MIT */
/* testutil.c -- shared helpers for the unit tests. */
#include "testutil.h"
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *
env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

const char *
tu_photo(const char *name)
{
    static char path[4][1024];
    static int slot;
    char *p = path[slot++ % 4];
    snprintf(p, 1024, "%s/photos/%s", env_or("IG_DEPS", ".deps"), name);
    if (access(p, R_OK) != 0)
        fail_msg("test photo %s is missing: run scripts/setup", p);
    return p;
}

const char *
tu_data(const char *name)
{
    static char path[4][1024];
    static int slot;
    char *p = path[slot++ % 4];
    snprintf(p, 1024, "%s/tests/data/%s", env_or("IG_SOURCE_DIR", "."), name);
    return p;
}

char *
tu_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    struct ig_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(ig_buf_append(&b, chunk, n), 0);
    fclose(f);
    if (!b.data)
        assert_int_equal(ig_buf_append(&b, "", 0), 0);
    return ig_buf_steal(&b, len);
}

const char *
tu_write_temp(const char *suffix, const void *data, size_t len)
{
    static char path[4][256];
    static int slot;
    char *p = path[slot++ % 4];
    snprintf(p, 256, "%s/igtest-XXXXXX%s", env_or("TMPDIR", "/tmp"), suffix);
    int fd = mkstemps(p, (int)strlen(suffix));
    if (fd < 0)
        fail_msg("mkstemps failed");
    FILE *f = fdopen(fd, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    return p;
}
