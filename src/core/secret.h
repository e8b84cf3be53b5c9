/* SPDX-License-Identifier: MIT */
/* secret.h -- resolve a configured reference to the value it names.
 *
 * Configs never hold secrets, only where to find them: env:NAME reads an
 * environment variable, file:PATH the first line of a file. Anything else is
 * taken as the value itself (for settings that are not secret). Resolved
 * values must never be logged or echoed in an error. */
#ifndef IG_CORE_SECRET_H
#define IG_CORE_SECRET_H

#include "core/error.h"

/* *out is ig_malloc'd. Errors: secret_missing (the variable or file is not
 * there; the message names the reference, never a value). */
int ig_resolve_ref(const char *ref, char **out, struct ig_error *err);

#endif
