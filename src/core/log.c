/* SPDX-License-Identifier: MIT */
/* log.c -- JSON-lines logger. */
#include "core/log.h"

#include <jansson.h>
#include <pthread.h>
#include <time.h>

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_sink;
static int log_sink_set;
static enum ig_log_level log_min = IG_LOG_INFO;

void
ig_log_setup(FILE *sink, enum ig_log_level min)
{
    pthread_mutex_lock(&log_mu);
    log_sink = sink;
    log_sink_set = 1;
    log_min = min;
    pthread_mutex_unlock(&log_mu);
}

int
ig_log_wants(enum ig_log_level level)
{
    pthread_mutex_lock(&log_mu);
    int wants = (log_sink_set ? log_sink : stderr) && level >= log_min;
    pthread_mutex_unlock(&log_mu);
    return wants;
}

void
ig_log(enum ig_log_level level, const char *event, json_t *fields)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    pthread_mutex_lock(&log_mu);
    FILE *sink = log_sink_set ? log_sink : stderr;
    if (!sink || level < log_min) {
        pthread_mutex_unlock(&log_mu);
        json_decref(fields);
        return;
    }
    json_t *o = fields && json_is_object(fields) ? fields : json_object();
    if (fields && o != fields)
        json_decref(fields);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    if (o) {
        json_object_set_new(o, "ts", json_string(when));
        json_object_set_new(o, "level", json_string(names[level]));
        json_object_set_new(o, "event", json_string(event));
        json_dumpf(o, sink, JSON_COMPACT | JSON_SORT_KEYS);
        fputc('\n', sink);
        fflush(sink);
        json_decref(o);
    }
    pthread_mutex_unlock(&log_mu);
}
