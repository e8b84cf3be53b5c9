/* SPDX-License-Identifier: MIT */
/* testutil.h -- what the unit tests share: cmocka, paths to test data, and
 * small builders of images and files. */
#ifndef IG_TESTS_TESTUTIL_H
#define IG_TESTS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"

/* $IG_DEPS/photos/NAME; fails the test when the photo is not installed. */
const char *tu_photo(const char *name);
/* $IG_SOURCE_DIR/tests/data/NAME. */
const char *tu_data(const char *name);
/* Reads a whole file; fails the test on error. Free with ig_free. */
char *tu_read(const char *path, size_t *len);
/* Writes bytes to a fresh temporary file and returns its path (static). */
const char *tu_write_temp(const char *suffix, const void *data, size_t len);

#endif
