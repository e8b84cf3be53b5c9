/* SPDX-License-Identifier: MIT */
/* log.h -- structured logs: one JSON object per line.
 *
 * Library code never prints; it logs events through here, and the process
 * decides where lines go (stderr by default, nowhere in tests). Fields are a
 * jansson object the caller builds; secrets are never put in one. */
#ifndef IG_CORE_LOG_H
#define IG_CORE_LOG_H

#include <stdio.h>

enum ig_log_level { IG_LOG_DEBUG, IG_LOG_INFO, IG_LOG_WARN, IG_LOG_ERROR };

struct json_t;

/* Where lines go (NULL: nowhere) and the lowest level written. */
void ig_log_setup(FILE *sink, enum ig_log_level min);
/* Writes {"ts","level","event",...fields}; takes the reference to fields
 * (which may be NULL). */
void ig_log(enum ig_log_level level, const char *event, struct json_t *fields);
/* Whether a line of this level would be written: a hot path asks before it
 * builds the fields of a line that would be dropped. */
int ig_log_wants(enum ig_log_level level);

#endif
