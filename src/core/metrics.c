/* SPDX-License-Identifier: MIT */
/* metrics.c -- a small Prometheus registry.
 *
 * Written here rather than taken from a library: Debian packages no C
 * Prometheus client (prometheus-client-c is not in bookworm), and the text
 * format is a page of code. Label values are escaped as the format requires
 * (backslash, double quote, newline). */
#include "core/metrics.h"
#include "core/alloc.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define MAX_LABELS 4
#define MAX_BUCKETS 24

struct series {
    char *values[MAX_LABELS];
    double value;                      /* counter/gauge; histogram sum */
    unsigned long count;               /* histogram */
    unsigned long buckets[MAX_BUCKETS];
};

struct ig_metric {
    struct ig_metric *next;
    char *name, *help;
    enum ig_metric_type type;
    int n_labels;
    char *labels[MAX_LABELS];
    double bounds[MAX_BUCKETS];
    int n_bounds;
    pthread_mutex_t mu;
    struct series *series;
    size_t n_series, cap_series;
};

struct ig_metrics {
    pthread_mutex_t mu;
    struct ig_metric *head, *tail;
};

static const double default_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                         0.5, 1, 2.5, 5, 10, 30, 60, 120};

struct ig_metrics *
ig_metrics_new(void)
{
    struct ig_metrics *m = ig_calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

static void
metric_free(struct ig_metric *x)
{
    for (size_t i = 0; i < x->n_series; i++)
        for (int l = 0; l < x->n_labels; l++)
            ig_free(x->series[i].values[l]);
    for (int l = 0; l < x->n_labels; l++)
        ig_free(x->labels[l]);
    ig_free(x->series);
    ig_free(x->name);
    ig_free(x->help);
    pthread_mutex_destroy(&x->mu);
    ig_free(x);
}

void
ig_metrics_free(struct ig_metrics *m)
{
    if (!m)
        return;
    for (struct ig_metric *x = m->head, *next; x; x = next) {
        next = x->next;
        metric_free(x);
    }
    pthread_mutex_destroy(&m->mu);
    ig_free(m);
}

struct ig_metric *
ig_metric_declare(struct ig_metrics *m, const char *name, const char *help,
                  enum ig_metric_type type, const char *const *labels, const double *buckets,
                  int n_buckets)
{
    struct ig_metric *x = ig_calloc(1, sizeof *x);
    if (!x)
        return NULL;
    pthread_mutex_init(&x->mu, NULL);
    x->type = type;
    x->name = ig_strdup(name);
    x->help = ig_strdup(help);
    int ok = x->name && x->help;
    for (int i = 0; ok && labels && labels[i] && i < MAX_LABELS; i++) {
        x->labels[i] = ig_strdup(labels[i]);
        ok = x->labels[i] != NULL;
        x->n_labels = i + 1;
    }
    if (type == IG_HISTOGRAM) {
        if (!buckets) {
            buckets = default_buckets;
            n_buckets = (int)(sizeof default_buckets / sizeof default_buckets[0]);
        }
        x->n_bounds = n_buckets < MAX_BUCKETS ? n_buckets : MAX_BUCKETS;
        memcpy(x->bounds, buckets, (size_t)x->n_bounds * sizeof *buckets);
    }
    if (!ok) {
        metric_free(x);
        return NULL;
    }
    pthread_mutex_lock(&m->mu);
    if (m->tail)
        m->tail->next = x;
    else
        m->head = x;
    m->tail = x;
    pthread_mutex_unlock(&m->mu);
    return x;
}

/* Called with x->mu held. NULL when out of memory: the update is dropped,
 * which loses one sample rather than failing a request. */
static struct series *
series_for(struct ig_metric *x, const char *const *values)
{
    for (size_t i = 0; i < x->n_series; i++) {
        int same = 1;
        for (int l = 0; l < x->n_labels && same; l++)
            same = strcmp(x->series[i].values[l], values[l] ? values[l] : "") == 0;
        if (same)
            return &x->series[i];
    }
    void *arr = x->series;
    if (ig_grow(&arr, &x->cap_series, x->n_series + 1, sizeof *x->series) != 0)
        return NULL;
    x->series = arr;
    struct series *s = &x->series[x->n_series];
    memset(s, 0, sizeof *s);
    for (int l = 0; l < x->n_labels; l++) {
        s->values[l] = ig_strdup(values[l] ? values[l] : "");
        if (!s->values[l]) {
            for (int k = 0; k < l; k++)
                ig_free(s->values[k]);
            return NULL;
        }
    }
    x->n_series++;
    return s;
}

void
ig_metric_add(struct ig_metric *x, const char *const *values, double v)
{
    if (!x)
        return;
    pthread_mutex_lock(&x->mu);
    struct series *s = series_for(x, values);
    if (s)
        s->value += v;
    pthread_mutex_unlock(&x->mu);
}

void
ig_metric_set(struct ig_metric *x, const char *const *values, double v)
{
    if (!x)
        return;
    pthread_mutex_lock(&x->mu);
    struct series *s = series_for(x, values);
    if (s)
        s->value = v;
    pthread_mutex_unlock(&x->mu);
}

void
ig_metric_observe(struct ig_metric *x, const char *const *values, double v)
{
    if (!x)
        return;
    pthread_mutex_lock(&x->mu);
    struct series *s = series_for(x, values);
    if (s) {
        s->value += v;
        s->count++;
        for (int b = 0; b < x->n_bounds; b++)
            if (v <= x->bounds[b])
                s->buckets[b]++;
    }
    pthread_mutex_unlock(&x->mu);
}

double
ig_metric_get(struct ig_metric *x, const char *const *values)
{
    if (!x)
        return 0;
    pthread_mutex_lock(&x->mu);
    double v = 0;
    for (size_t i = 0; i < x->n_series; i++) {
        int same = 1;
        for (int l = 0; l < x->n_labels && same; l++)
            same = strcmp(x->series[i].values[l], values[l] ? values[l] : "") == 0;
        if (same)
            v = x->type == IG_HISTOGRAM ? (double)x->series[i].count : x->series[i].value;
    }
    pthread_mutex_unlock(&x->mu);
    return v;
}

static int
put_escaped(struct ig_buf *out, const char *s)
{
    for (; *s; s++) {
        const char *e = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        if (e ? ig_buf_puts(out, e) : ig_buf_append(out, s, 1))
            return -1;
    }
    return 0;
}

/* {a="x",b="y"} plus an optional extra label (le for buckets). */
static int
put_labels(struct ig_buf *out, const struct ig_metric *x, const struct series *s,
           const char *extra, const char *extra_value)
{
    if (x->n_labels == 0 && !extra)
        return 0;
    int rc = ig_buf_puts(out, "{");
    for (int l = 0; rc == 0 && l < x->n_labels; l++) {
        rc = ig_buf_printf(out, "%s%s=\"", l ? "," : "", x->labels[l]);
        rc = rc || put_escaped(out, s->values[l]) || ig_buf_puts(out, "\"");
    }
    if (rc == 0 && extra)
        rc = ig_buf_printf(out, "%s%s=\"%s\"", x->n_labels ? "," : "", extra, extra_value);
    return rc || ig_buf_puts(out, "}");
}

static int
put_number(struct ig_buf *out, double v)
{
    if (isinf(v))
        return ig_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 1e15)
        return ig_buf_printf(out, "%.0f", v);
    return ig_buf_printf(out, "%.15g", v);
}

int
ig_metrics_render(struct ig_metrics *m, struct ig_buf *out)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    for (struct ig_metric *x = m->head; x && rc == 0; x = x->next) {
        pthread_mutex_lock(&x->mu);
        rc = ig_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", x->name, x->help, x->name,
                           types[x->type]);
        for (size_t i = 0; rc == 0 && i < x->n_series; i++) {
            const struct series *s = &x->series[i];
            if (x->type != IG_HISTOGRAM) {
                rc = ig_buf_puts(out, x->name) || put_labels(out, x, s, NULL, NULL) ||
                     ig_buf_puts(out, " ") || put_number(out, s->value) || ig_buf_puts(out, "\n");
                continue;
            }
            for (int b = 0; rc == 0 && b <= x->n_bounds; b++) {
                char le[40];
                if (b < x->n_bounds)
                    snprintf(le, sizeof le, "%g", x->bounds[b]);
                else
                    snprintf(le, sizeof le, "+Inf");
                rc = ig_buf_printf(out, "%s_bucket", x->name) || put_labels(out, x, s, "le", le) ||
                     ig_buf_printf(out, " %lu\n", b < x->n_bounds ? s->buckets[b] : s->count);
            }
            rc = rc || ig_buf_printf(out, "%s_sum", x->name) || put_labels(out, x, s, NULL, NULL) ||
                 ig_buf_puts(out, " ") || put_number(out, s->value) ||
                 ig_buf_printf(out, "\n%s_count", x->name) || put_labels(out, x, s, NULL, NULL) ||
                 ig_buf_printf(out, " %lu\n", s->count);
        }
        pthread_mutex_unlock(&x->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return rc ? -1 : 0;
}
