/* SPDX-License-Identifier: MIT */
/* metrics.h -- counters, gauges and histograms with labels, exposed in the
 * Prometheus text format.
 *
 * A metric is declared once (name, help, type, label names) and updated by
 * label values; series are created on first use. Updates take one mutex per
 * metric family: the gateway's rates (thousands a second) are far below what
 * that costs, and it keeps the exposition consistent. */
#ifndef IG_CORE_METRICS_H
#define IG_CORE_METRICS_H

#include "core/buf.h"

enum ig_metric_type { IG_COUNTER, IG_GAUGE, IG_HISTOGRAM };

struct ig_metric;
struct ig_metrics;

struct ig_metrics *ig_metrics_new(void);
void ig_metrics_free(struct ig_metrics *m);

/* labels: up to 4 names, NULL-terminated. buckets: for histograms, upper
 * bounds in ascending order (NULL: default latency buckets in seconds). */
struct ig_metric *ig_metric_declare(struct ig_metrics *m, const char *name, const char *help,
                                    enum ig_metric_type type, const char *const *labels,
                                    const double *buckets, int n_buckets);

/* values: one per declared label, in order. */
void ig_metric_add(struct ig_metric *x, const char *const *values, double v);   /* counter, gauge */
void ig_metric_set(struct ig_metric *x, const char *const *values, double v);   /* gauge */
void ig_metric_observe(struct ig_metric *x, const char *const *values, double v); /* histogram */
/* The current value of a counter or gauge series (tests, budgets). */
double ig_metric_get(struct ig_metric *x, const char *const *values);

/* Appends the whole registry in Prometheus text format 0.0.4. */
int ig_metrics_render(struct ig_metrics *m, struct ig_buf *out);

#endif
