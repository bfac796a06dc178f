/* A service's metrics and their Prometheus text rendering. One mutex guards
 * the structure: the metrics, their series and the org labels. The values
 * are C11 atomics, so an update takes the mutex only to find its series. */
#include "hv_metrics.h"
#include "hv_event.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double hv_metrics_buckets[HV_METRICS_BUCKET_COUNT] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                            0.1,    0.25,  0.5,    1,     2.5,  5,     10};

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } metric_kind;

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

/* One combination of label values of a metric. */
typedef struct {
    char **values;         /* one per label name */
    _Atomic int64_t value; /* counters and gauges */
    /* Histograms: observations per bucket, not cumulative; the last counts
     * those above the largest bound. */
    _Atomic uint64_t buckets[HV_METRICS_BUCKET_COUNT + 1];
    _Atomic double sum;
} series;

struct hv_metric {
    hv_metrics *registry;
    metric_kind kind;
    char *name; /* with the registry's prefix */
    char *help;
    char **label_names;
    size_t label_count;
    series **series; /* in order of creation */
    size_t series_count;
    size_t series_capacity;
    hv_metric *next;
};

struct hv_metrics {
    pthread_mutex_t lock;
    char *prefix;
    hv_metric *first;
    hv_metric *last;
    _Atomic uint64_t dropped_updates;

    /* The orgs that have their own label: the allow-list, or those seen
     * first, up to max_orgs. */
    char **orgs;
    size_t org_count;
    bool org_allow_list;
    long max_orgs;
};

/* --- Names --------------------------------------------------------------- */

/* Metric names are [a-zA-Z_:][a-zA-Z0-9_:]*, label names the same without
 * ':'. Label names starting with "__" are reserved by Prometheus. */
static bool name_is_valid(const char *name, size_t len, bool is_label)
{
    if (len == 0 || isdigit((unsigned char)name[0]))
        return false;
    if (is_label && len >= 2 && name[0] == '_' && name[1] == '_')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || (!is_label && c == ':');
        if (!ok)
            return false;
    }
    return true;
}

static void free_strings(char **strings, size_t count)
{
    if (!strings)
        return;
    for (size_t i = 0; i < count; i++)
        free(strings[i]);
    free(strings);
}

/* Splits "a,b,c" into label names. Returns 0, or -1 when a name is invalid
 * or memory ran out. */
static int parse_label_names(const char *labels, bool histogram, char ***names_out, size_t *count_out)
{
    *names_out = NULL;
    *count_out = 0;
    if (!labels || !*labels)
        return 0;

    size_t count = 1;
    for (const char *p = labels; *p; p++)
        count += *p == ',';
    char **names = calloc(count, sizeof(*names));
    if (!names)
        return -1;

    const char *start = labels;
    for (size_t i = 0; i < count; i++) {
        size_t len = strcspn(start, ",");
        bool valid = name_is_valid(start, len, true) && !(histogram && len == 2 && memcmp(start, "le", 2) == 0);
        names[i] = valid ? strndup(start, len) : NULL;
        if (!names[i]) {
            free_strings(names, count);
            return -1;
        }
        start += len + 1;
    }
    *names_out = names;
    *count_out = count;
    return 0;
}

/* --- Registry ------------------------------------------------------------ */

hv_metrics *hv_metrics_new(const char *prefix)
{
    if (!name_is_valid(prefix, strlen(prefix), false))
        return NULL;
    hv_metrics *registry = calloc(1, sizeof(*registry));
    if (!registry)
        return NULL;
    registry->prefix = strdup(prefix);
    if (!registry->prefix || pthread_mutex_init(&registry->lock, NULL) != 0) {
        free(registry->prefix);
        free(registry);
        return NULL;
    }
    registry->max_orgs = HV_METRICS_DEFAULT_MAX_ORGS;
    return registry;
}

static void metric_free(hv_metric *metric)
{
    for (size_t i = 0; i < metric->series_count; i++) {
        free_strings(metric->series[i]->values, metric->label_count);
        free(metric->series[i]);
    }
    free(metric->series);
    free_strings(metric->label_names, metric->label_count);
    free(metric->name);
    free(metric->help);
    free(metric);
}

void hv_metrics_destroy(hv_metrics **target)
{
    hv_metrics *registry = target ? *target : NULL;
    if (!registry)
        return;
    for (hv_metric *metric = registry->first, *next; metric; metric = next) {
        next = metric->next;
        metric_free(metric);
    }
    free_strings(registry->orgs, registry->org_count);
    pthread_mutex_destroy(&registry->lock);
    free(registry->prefix);
    free(registry);
    *target = NULL;
}

static hv_metric *find_metric(const hv_metrics *registry, const char *name)
{
    for (hv_metric *metric = registry->first; metric; metric = metric->next)
        if (strcmp(metric->name, name) == 0)
            return metric;
    return NULL;
}

static series *series_new(const hv_metric *metric, const char *const *values)
{
    series *created = calloc(1, sizeof(*created));
    if (!created)
        return NULL;
    if (metric->label_count == 0)
        return created;
    created->values = calloc(metric->label_count, sizeof(*created->values));
    if (!created->values) {
        free(created);
        return NULL;
    }
    for (size_t i = 0; i < metric->label_count; i++) {
        created->values[i] = strdup(values && values[i] ? values[i] : "");
        if (!created->values[i]) {
            free_strings(created->values, metric->label_count);
            free(created);
            return NULL;
        }
    }
    return created;
}

/* Appends a new series. Called with the lock held. */
static series *add_series(hv_metric *metric, const char *const *values)
{
    if (metric->series_count == HV_METRICS_MAX_SERIES)
        return NULL;
    if (metric->series_count == metric->series_capacity) {
        size_t capacity = metric->series_capacity ? metric->series_capacity * 2 : 4;
        series **grown = realloc(metric->series, capacity * sizeof(*grown));
        if (!grown)
            return NULL;
        metric->series = grown;
        metric->series_capacity = capacity;
    }
    series *created = series_new(metric, values);
    if (created)
        metric->series[metric->series_count++] = created;
    return created;
}

static hv_metric *register_metric(hv_metrics *registry, metric_kind kind, const char *name, const char *help, const char *labels)
{
    if (!registry)
        return NULL;
    hv_metric *metric = calloc(1, sizeof(*metric));
    if (!metric)
        return NULL;
    metric->registry = registry;
    metric->kind = kind;
    size_t name_size = strlen(registry->prefix) + 1 + strlen(name) + 1;
    metric->name = malloc(name_size);
    metric->help = strdup(help);
    if (!metric->name || !metric->help || !name_is_valid(name, strlen(name), false) ||
        parse_label_names(labels, kind == KIND_HISTOGRAM, &metric->label_names, &metric->label_count) != 0) {
        metric_free(metric);
        return NULL;
    }
    snprintf(metric->name, name_size, "%s_%s", registry->prefix, name);

    pthread_mutex_lock(&registry->lock);
    bool taken = find_metric(registry, metric->name) != NULL;
    /* A metric without labels has its one series from the start, so that
     * it renders as 0 before its first update. */
    bool failed = taken || (metric->label_count == 0 && !add_series(metric, NULL));
    if (!failed) {
        if (registry->last)
            registry->last->next = metric;
        else
            registry->first = metric;
        registry->last = metric;
    }
    pthread_mutex_unlock(&registry->lock);

    if (failed) {
        metric_free(metric);
        return NULL;
    }
    return metric;
}

hv_metric *hv_metrics_counter(hv_metrics *registry, const char *name, const char *help, const char *labels)
{
    return register_metric(registry, KIND_COUNTER, name, help, labels);
}

hv_metric *hv_metrics_gauge(hv_metrics *registry, const char *name, const char *help, const char *labels)
{
    return register_metric(registry, KIND_GAUGE, name, help, labels);
}

hv_metric *hv_metrics_histogram(hv_metrics *registry, const char *name, const char *help, const char *labels)
{
    return register_metric(registry, KIND_HISTOGRAM, name, help, labels);
}

/* --- Updates ------------------------------------------------------------- */

static bool values_match(const series *candidate, const char *const *values, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(candidate->values[i], values[i] ? values[i] : "") != 0)
            return false;
    return true;
}

/* Returns the series of `values`, creating it when it is new, or NULL when
 * it cannot be created; the update is then counted as dropped. A series
 * is never freed before the registry, so the pointer stays valid after the
 * lock is released. */
static series *find_series(hv_metric *metric, const char *const *values)
{
    hv_metrics *registry = metric->registry;
    series *found = NULL;
    pthread_mutex_lock(&registry->lock);
    if (metric->label_count == 0) {
        found = metric->series[0];
    } else {
        for (size_t i = 0; i < metric->series_count && !found; i++)
            if (values_match(metric->series[i], values, metric->label_count))
                found = metric->series[i];
        if (!found)
            found = add_series(metric, values);
    }
    pthread_mutex_unlock(&registry->lock);

    if (!found)
        atomic_fetch_add(&registry->dropped_updates, 1);
    return found;
}

void hv_metric_add(hv_metric *metric, const char *const *values, int64_t delta)
{
    if (!metric || metric->kind == KIND_HISTOGRAM || (metric->kind == KIND_COUNTER && delta < 0))
        return;
    series *target = find_series(metric, values);
    if (target)
        atomic_fetch_add(&target->value, delta);
}

void hv_metric_inc(hv_metric *metric, const char *const *values)
{
    hv_metric_add(metric, values, 1);
}

void hv_metric_set(hv_metric *metric, const char *const *values, int64_t value)
{
    if (!metric || metric->kind == KIND_HISTOGRAM)
        return;
    series *target = find_series(metric, values);
    if (target)
        atomic_store(&target->value, value);
}

void hv_metric_observe(hv_metric *metric, const char *const *values, double value)
{
    if (!metric || metric->kind != KIND_HISTOGRAM || isnan(value))
        return;
    series *target = find_series(metric, values);
    if (!target)
        return;

    size_t bucket = 0;
    while (bucket < HV_METRICS_BUCKET_COUNT && value > hv_metrics_buckets[bucket])
        bucket++;
    atomic_fetch_add(&target->buckets[bucket], 1);

    double sum = atomic_load(&target->sum);
    while (!atomic_compare_exchange_weak(&target->sum, &sum, sum + value))
        ;
}

/* --- Org labels ---------------------------------------------------------- */

/* Splits the allow-list into org ids. Returns 0, or -1 with a message. */
static int parse_allow_list(const char *list, char ***orgs_out, size_t *count_out, char *error, size_t error_size)
{
    char **orgs = NULL;
    size_t count = 0;
    const char *p = list;

    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t len = strcspn(p, ",");
        size_t trimmed = len;
        while (trimmed > 0 && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t'))
            trimmed--;

        const char *problem = NULL;
        if (!hv_org_id_is_valid(p, trimmed))
            problem = "expected 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'";
        else if (trimmed == strlen(HV_METRICS_OTHER_ORG) && memcmp(p, HV_METRICS_OTHER_ORG, trimmed) == 0)
            problem = "\"" HV_METRICS_OTHER_ORG "\" is the label of the orgs not listed";
        else if (count == HV_METRICS_MAX_ORGS)
            problem = "the list may name at most 1000 orgs";
        if (problem) {
            snprintf(error, error_size, "invalid org id \"%.*s\" in the metrics org list: %s", (int)(trimmed > 80 ? 80 : trimmed),
                     p, problem);
            free_strings(orgs, count);
            return -1;
        }

        char **grown = realloc(orgs, (count + 1) * sizeof(*grown));
        char *copy = grown ? strndup(p, trimmed) : NULL;
        if (!copy) {
            snprintf(error, error_size, "out of memory");
            free_strings(grown ? grown : orgs, count);
            return -1;
        }
        orgs = grown;
        orgs[count++] = copy;

        if (p[len] != ',')
            break;
        p += len + 1;
    }
    *orgs_out = orgs;
    *count_out = count;
    return 0;
}

int hv_metrics_limit_orgs(hv_metrics *registry, const char *allow_list, long max_orgs, char *error, size_t error_size)
{
    if (max_orgs < 0 || max_orgs > HV_METRICS_MAX_ORGS) {
        snprintf(error, error_size, "invalid maximum of orgs with their own label: %ld; expected 0 to %d", max_orgs,
                 HV_METRICS_MAX_ORGS);
        return -1;
    }
    char **orgs = NULL;
    size_t count = 0;
    bool listed = allow_list && *allow_list;
    if (listed && parse_allow_list(allow_list, &orgs, &count, error, error_size) != 0)
        return -1;

    pthread_mutex_lock(&registry->lock);
    free_strings(registry->orgs, registry->org_count);
    registry->orgs = orgs;
    registry->org_count = count;
    registry->org_allow_list = listed;
    registry->max_orgs = max_orgs;
    pthread_mutex_unlock(&registry->lock);
    return 0;
}

const char *hv_metrics_org_label(hv_metrics *registry, const char *org, size_t org_len)
{
    if (!registry)
        return HV_METRICS_OTHER_ORG;
    const char *label = NULL;
    pthread_mutex_lock(&registry->lock);
    for (size_t i = 0; i < registry->org_count && !label; i++)
        if (strlen(registry->orgs[i]) == org_len && memcmp(registry->orgs[i], org, org_len) == 0)
            label = registry->orgs[i];

    bool is_other = org_len == strlen(HV_METRICS_OTHER_ORG) && memcmp(org, HV_METRICS_OTHER_ORG, org_len) == 0;
    if (!label && !registry->org_allow_list && registry->org_count < (size_t)registry->max_orgs && !is_other &&
        hv_org_id_is_valid(org, org_len)) {
        char **grown = realloc(registry->orgs, (registry->org_count + 1) * sizeof(*grown));
        char *copy = grown ? strndup(org, org_len) : NULL;
        if (grown)
            registry->orgs = grown;
        if (copy) {
            registry->orgs[registry->org_count++] = copy;
            label = copy;
        }
    }
    pthread_mutex_unlock(&registry->lock);
    return label ? label : HV_METRICS_OTHER_ORG;
}

/* --- Rendering ----------------------------------------------------------- */

/* Writes `text` with '\\' and line feeds escaped, and with '"' too when
 * `quote` is set, as label values need. */
static void write_escaped(FILE *out, const char *text, bool quote)
{
    for (const char *p = text; *p; p++) {
        if (*p == '\\')
            fputs("\\\\", out);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '"' && quote)
            fputs("\\\"", out);
        else
            fputc(*p, out);
    }
}

/* Writes a sample's name with its suffix and its labels, `le` last when
 * given, then a space. */
static void write_sample_start(FILE *out, const hv_metric *metric, const char *suffix, const series *sample, const char *le)
{
    fputs(metric->name, out);
    fputs(suffix, out);
    if (metric->label_count == 0 && !le) {
        fputc(' ', out);
        return;
    }
    fputc('{', out);
    for (size_t i = 0; i < metric->label_count; i++) {
        fprintf(out, "%s%s=\"", i ? "," : "", metric->label_names[i]);
        write_escaped(out, sample->values[i], true);
        fputc('"', out);
    }
    if (le)
        fprintf(out, "%sle=\"%s\"", metric->label_count ? "," : "", le);
    fputs("} ", out);
}

static void write_histogram(FILE *out, const hv_metric *metric, const series *sample)
{
    /* The count is the sum of the buckets read here, so that "+Inf" and
     * _count agree even while other threads observe. */
    uint64_t cumulative = 0;
    for (size_t i = 0; i < HV_METRICS_BUCKET_COUNT; i++) {
        char le[32];
        snprintf(le, sizeof(le), "%g", hv_metrics_buckets[i]);
        cumulative += atomic_load(&sample->buckets[i]);
        write_sample_start(out, metric, "_bucket", sample, le);
        fprintf(out, "%" PRIu64 "\n", cumulative);
    }
    cumulative += atomic_load(&sample->buckets[HV_METRICS_BUCKET_COUNT]);
    write_sample_start(out, metric, "_bucket", sample, "+Inf");
    fprintf(out, "%" PRIu64 "\n", cumulative);
    write_sample_start(out, metric, "_sum", sample, NULL);
    fprintf(out, "%.15g\n", atomic_load(&sample->sum));
    write_sample_start(out, metric, "_count", sample, NULL);
    fprintf(out, "%" PRIu64 "\n", cumulative);
}

static void write_metric(FILE *out, const hv_metric *metric)
{
    fprintf(out, "# HELP %s ", metric->name);
    write_escaped(out, metric->help, false);
    fprintf(out, "\n# TYPE %s %s\n", metric->name, kind_names[metric->kind]);
    for (size_t i = 0; i < metric->series_count; i++) {
        const series *sample = metric->series[i];
        if (metric->kind == KIND_HISTOGRAM) {
            write_histogram(out, metric, sample);
            continue;
        }
        write_sample_start(out, metric, "", sample, NULL);
        fprintf(out, "%" PRId64 "\n", atomic_load(&sample->value));
    }
}

int hv_metrics_render(hv_metrics *registry, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    FILE *out = open_memstream(text, len);
    if (!out)
        return -1;

    pthread_mutex_lock(&registry->lock);
    for (const hv_metric *metric = registry->first; metric; metric = metric->next)
        write_metric(out, metric);
    pthread_mutex_unlock(&registry->lock);

    fprintf(out, "# HELP %s_metrics_series_dropped_total Updates dropped because their metric had %d label sets already.\n",
            registry->prefix, HV_METRICS_MAX_SERIES);
    fprintf(out, "# TYPE %s_metrics_series_dropped_total counter\n", registry->prefix);
    fprintf(out, "%s_metrics_series_dropped_total %" PRIu64 "\n", registry->prefix, atomic_load(&registry->dropped_updates));

    bool failed = ferror(out) != 0;
    if (fclose(out) != 0 || failed) {
        free(*text);
        *text = NULL;
        *len = 0;
        return -1;
    }
    return 0;
}
