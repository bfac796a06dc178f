/* A service's metrics: counters, gauges and histograms with labels, rendered
 * in the Prometheus text exposition format, version 0.0.4. Any thread may
 * update a metric while another renders them. */
#ifndef HV_METRICS_H
#define HV_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct hv_metrics hv_metrics;
typedef struct hv_metric hv_metric;

/* The org label of every organization that has no label of its own. */
#define HV_METRICS_OTHER_ORG "_other"

/* Maximum number of label sets of one metric. An update that would create
 * one more is dropped and counted in <prefix>_metrics_series_dropped_total,
 * so that a bug that puts client input into a label cannot use up memory. */
#define HV_METRICS_MAX_SERIES 10000

/* Maximum number of organizations that get their own org label, with or
 * without an allow-list. */
#define HV_METRICS_MAX_ORGS 1000

/* How many organizations get their own org label when the service sets no
 * limit: the first 20 seen. */
#define HV_METRICS_DEFAULT_MAX_ORGS 20

/* The upper bounds of the histogram buckets, in seconds: request latencies
 * from half a millisecond to 10 s. Larger values count in "+Inf" only. */
#define HV_METRICS_BUCKET_COUNT 14
extern const double hv_metrics_buckets[HV_METRICS_BUCKET_COUNT];

/* The label values of one update, in the order of the metric's label names:
 * HV_LABELS("conversations", "200"). Pass NULL for a metric without labels. */
#define HV_LABELS(...) ((const char *const[]){__VA_ARGS__})

/* Creates an empty registry whose metric names all start with `prefix` and
 * an underscore ("helvino_gateway"). `prefix` is copied. Returns NULL when
 * out of memory or when the prefix is not a valid metric name. */
hv_metrics *hv_metrics_new(const char *prefix) __attribute__((warn_unused_result));

/* Frees the registry and every metric in it, and sets *registry to NULL.
 * Accepts NULL and a pointer to NULL. No other thread may use it then. */
void hv_metrics_destroy(hv_metrics **registry);

/* Registers a metric called <prefix>_<name>. `help` is its one-line
 * description. `labels` names its labels, comma-separated without blanks
 * ("route,status"), or is NULL or "" for none. A histogram may not have a
 * label called "le". Returns the metric, which lives as long as the
 * registry, or NULL when out of memory, when a name is not a valid
 * Prometheus name, or when the name is registered already. Updates of a
 * NULL metric do nothing. */
hv_metric *hv_metrics_counter(hv_metrics *registry, const char *name, const char *help, const char *labels);
hv_metric *hv_metrics_gauge(hv_metrics *registry, const char *name, const char *help, const char *labels);
hv_metric *hv_metrics_histogram(hv_metrics *registry, const char *name, const char *help, const char *labels);

/* Adds `delta` to a counter or a gauge. A counter ignores a negative delta,
 * because counters only go up. `values` has one entry per label, and a NULL
 * entry counts as "". A new combination of values creates its series at 0
 * first, so adding 0 makes a series appear before its first event. */
void hv_metric_add(hv_metric *metric, const char *const *values, int64_t delta);

/* Adds 1 to a counter or a gauge. */
void hv_metric_inc(hv_metric *metric, const char *const *values);

/* Sets a gauge, or a counter whose count is kept elsewhere and copied in
 * before rendering. */
void hv_metric_set(hv_metric *metric, const char *const *values, int64_t value);

/* Records one observation of a histogram, in seconds. NaN is ignored. */
void hv_metric_observe(hv_metric *metric, const char *const *values, double value);

/* Sets which organizations get their own org label. `allow_list` is a
 * comma-separated list of org ids, blanks around each allowed. When it is
 * non-empty, those orgs and no others get their own label. When it is
 * NULL or empty, the first `max_orgs` orgs passed to hv_metrics_org_label
 * get theirs. Every other org is counted as HV_METRICS_OTHER_ORG. Returns
 * 0, or -1 with a message in `error` naming the bad value: an invalid org
 * id, the reserved "_other", more than HV_METRICS_MAX_ORGS ids, or
 * `max_orgs` out of 0 to HV_METRICS_MAX_ORGS. Call it before the first
 * hv_metrics_org_label. */
int hv_metrics_limit_orgs(hv_metrics *registry, const char *allow_list, long max_orgs, char *error, size_t error_size)
    __attribute__((warn_unused_result));

/* Returns the org label for `org` (`org_len` bytes, not NUL-terminated):
 * the org id itself when the org has a label of its own, and
 * HV_METRICS_OTHER_ORG otherwise. An org that got its own label keeps it
 * for the registry's life, so a gauge raised and lowered under the returned
 * label stays balanced. The string lives as long as the registry. Without
 * hv_metrics_limit_orgs, the first HV_METRICS_DEFAULT_MAX_ORGS orgs get their
 * own label. */
const char *hv_metrics_org_label(hv_metrics *registry, const char *org, size_t org_len);

/* Renders every metric, in the order of registration, into a new buffer
 * that the caller frees with free(). Returns 0 with the text in *text and
 * its length in *len, or -1 when out of memory. */
int hv_metrics_render(hv_metrics *registry, char **text, size_t *len) __attribute__((warn_unused_result));

#endif
