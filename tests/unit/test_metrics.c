/* Unit tests of the metrics registry (common/hv_metrics.c): the Prometheus
 * text it renders, label escaping, histogram buckets, the bound on org
 * labels and on series, bad names, and updates from several threads. */
#include "hv_metrics.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The registry of the current test, destroyed after each test. */
static hv_metrics *registry;
/* The text of the last render, freed after each test. */
static char *rendered;

static void teardown(void)
{
    hv_metrics_destroy(&registry);
    free(rendered);
    rendered = NULL;
}

static void setup(void)
{
    registry = hv_metrics_new("helvino_test");
    cr_assert(not(zero(ptr, registry)));
}

TestSuite(metrics, .init = setup, .fini = teardown);

/* Renders the registry and returns the text, which lives until the next
 * render or the end of the test. */
static const char *render(void)
{
    free(rendered);
    size_t len = 0;
    cr_assert(eq(int, hv_metrics_render(registry, &rendered, &len), 0));
    cr_assert(eq(sz, strlen(rendered), len), "the rendered text contains a NUL");
    return rendered;
}

/* The lines that every render ends with. */
#define DROPPED_LINES(count)                                                                                                       \
    "# HELP helvino_test_metrics_series_dropped_total Updates dropped because their metric had 10000 label sets already.\n"        \
    "# TYPE helvino_test_metrics_series_dropped_total counter\n"                                                                   \
    "helvino_test_metrics_series_dropped_total " #count "\n"

/* Returns how many lines of `text` start with `prefix`. */
static size_t count_lines_starting(const char *text, const char *prefix)
{
    size_t count = 0;
    size_t prefix_len = strlen(prefix);
    for (const char *line = text; *line;) {
        count += strncmp(line, prefix, prefix_len) == 0;
        const char *end = strchr(line, '\n');
        if (!end)
            break;
        line = end + 1;
    }
    return count;
}

/* --- Rendering --------------------------------------------------------------- */

Test(metrics, empty_registry_renders_dropped_counter_only)
{
    cr_assert(eq(str, (char *)render(), DROPPED_LINES(0)));
}

Test(metrics, counter_renders_each_label_set)
{
    hv_metric *requests = hv_metrics_counter(registry, "requests_total", "Requests handled.", "route,status");
    cr_assert(not(zero(ptr, requests)));

    hv_metric_inc(requests, HV_LABELS("/conversations", "200"));
    hv_metric_add(requests, HV_LABELS("/conversations", "200"), 2);
    hv_metric_inc(requests, HV_LABELS("/", "404"));

    cr_assert(eq(str, (char *)render(),
                 "# HELP helvino_test_requests_total Requests handled.\n"
                 "# TYPE helvino_test_requests_total counter\n"
                 "helvino_test_requests_total{route=\"/conversations\",status=\"200\"} 3\n"
                 "helvino_test_requests_total{route=\"/\",status=\"404\"} 1\n" DROPPED_LINES(0)));
}

Test(metrics, unlabeled_metric_renders_zero_before_updates)
{
    cr_assert(not(zero(ptr, hv_metrics_gauge(registry, "rooms", "Rooms with members.", NULL))));
    cr_assert(not(zero(ptr, hv_metrics_counter(registry, "upgrades_total", "Upgrades.", ""))));

    cr_assert(eq(str, (char *)render(),
                 "# HELP helvino_test_rooms Rooms with members.\n"
                 "# TYPE helvino_test_rooms gauge\n"
                 "helvino_test_rooms 0\n"
                 "# HELP helvino_test_upgrades_total Upgrades.\n"
                 "# TYPE helvino_test_upgrades_total counter\n"
                 "helvino_test_upgrades_total 0\n" DROPPED_LINES(0)));
}

Test(metrics, labeled_metric_without_series_renders_help_and_type)
{
    cr_assert(not(zero(ptr, hv_metrics_counter(registry, "errors_total", "Errors.", "kind"))));
    cr_assert(eq(str, (char *)render(),
                 "# HELP helvino_test_errors_total Errors.\n"
                 "# TYPE helvino_test_errors_total counter\n" DROPPED_LINES(0)));
}

Test(metrics, adding_zero_creates_series)
{
    hv_metric *connects = hv_metrics_counter(registry, "connects_total", "CONNECTs.", "result");
    hv_metric_add(connects, HV_LABELS("ok"), 0);
    cr_assert(not(zero(ptr, strstr(render(), "helvino_test_connects_total{result=\"ok\"} 0\n"))));
}

Test(metrics, gauge_goes_up_and_down)
{
    hv_metric *sessions = hv_metrics_gauge(registry, "sessions", "Sessions.", "transport");
    hv_metric_set(sessions, HV_LABELS("polling"), 5);
    hv_metric_add(sessions, HV_LABELS("polling"), -7);
    hv_metric_inc(sessions, HV_LABELS("websocket"));
    const char *text = render();
    cr_assert(not(zero(ptr, strstr(text, "helvino_test_sessions{transport=\"polling\"} -2\n"))), "%s", text);
    cr_assert(not(zero(ptr, strstr(text, "helvino_test_sessions{transport=\"websocket\"} 1\n"))), "%s", text);
}

Test(metrics, counter_ignores_negative_delta)
{
    hv_metric *events = hv_metrics_counter(registry, "events_total", "Events.", NULL);
    hv_metric_add(events, NULL, 4);
    hv_metric_add(events, NULL, -3);
    cr_assert(not(zero(ptr, strstr(render(), "helvino_test_events_total 4\n"))));
}

Test(metrics, counter_takes_value_counted_elsewhere)
{
    hv_metric *failures = hv_metrics_counter(registry, "store_failures_total", "Failures.", "reason");
    hv_metric_set(failures, HV_LABELS("timeout"), 12);
    hv_metric_set(failures, HV_LABELS("timeout"), 13);
    cr_assert(not(zero(ptr, strstr(render(), "helvino_test_store_failures_total{reason=\"timeout\"} 13\n"))));
}

Test(metrics, label_values_are_escaped)
{
    hv_metric *odd = hv_metrics_counter(registry, "odd_total", "Odd values.", "value");
    hv_metric_inc(odd, HV_LABELS("back\\slash \"quoted\"\nnext line"));
    hv_metric_inc(odd, HV_LABELS(NULL));
    const char *text = render();
    cr_assert(not(zero(ptr, strstr(text, "helvino_test_odd_total{value=\"back\\\\slash \\\"quoted\\\"\\nnext line\"} 1\n"))), "%s",
              text);
    cr_assert(not(zero(ptr, strstr(text, "helvino_test_odd_total{value=\"\"} 1\n"))), "%s", text);
}

Test(metrics, help_text_is_escaped)
{
    hv_metrics_counter(registry, "paths_total", "Paths like C:\\temp,\nsplit \"as is\".", NULL);
    cr_assert(not(zero(ptr, strstr(render(), "# HELP helvino_test_paths_total Paths like C:\\\\temp,\\nsplit \"as is\".\n"))));
}

Test(metrics, histogram_buckets_are_cumulative)
{
    hv_metric *latency = hv_metrics_histogram(registry, "duration_seconds", "Latency.", "op");
    cr_assert(not(zero(ptr, latency)));

    /* A value equal to a bound counts in that bucket. */
    hv_metric_observe(latency, HV_LABELS("health"), 0.0005);
    hv_metric_observe(latency, HV_LABELS("health"), 0.003);
    hv_metric_observe(latency, HV_LABELS("health"), 0.2);
    hv_metric_observe(latency, HV_LABELS("health"), 20);

    cr_assert(eq(str, (char *)render(),
                 "# HELP helvino_test_duration_seconds Latency.\n"
                 "# TYPE helvino_test_duration_seconds histogram\n"
                 "helvino_test_duration_seconds_bucket{op=\"health\",le=\"0.0005\"} 1\n"
                 "helvino_test_duration_seconds_bucket{op=\"health\",le=\"0.001\"} 1\n"
                 "helvino_test_duration_seconds_bucket{op=\"health\",le=\"0.0025\"} 1\n"
                 "helvino_test_duration_seconds_bucket{op=\"health\",le=\"0.005\"} 2\n"
                 "helvino_test_duration_seconds_bucket{op=\"health\",le=\"0.01\"} 2\n"
                 "helvino_test_duration_seconds_bucket{op=\"health\",le=\"0.025\"} 2\n"
                 "helvino_test_duration_seconds_bucket{op=\"health\",le=\"0.05\"} 2\n"
                 "helvino_test_duration_seconds_bucket{op=\"health\",le=\"0.1\"} 2\n"
                 "helvino_test_duration_seconds_bucket{op=\"health\",le=\"0.25\"} 3\n"
                 "helvino_test_duration_seconds_bucket{op=\"health\",le=\"0.5\"} 3\n"
                 "helvino_test_duration_seconds_bucket{op=\"health\",le=\"1\"} 3\n"
                 "helvino_test_duration_seconds_bucket{op=\"health\",le=\"2.5\"} 3\n"
                 "helvino_test_duration_seconds_bucket{op=\"health\",le=\"5\"} 3\n"
                 "helvino_test_duration_seconds_bucket{op=\"health\",le=\"10\"} 3\n"
                 "helvino_test_duration_seconds_bucket{op=\"health\",le=\"+Inf\"} 4\n"
                 "helvino_test_duration_seconds_sum{op=\"health\"} 20.2035\n"
                 "helvino_test_duration_seconds_count{op=\"health\"} 4\n" DROPPED_LINES(0)));
}

Test(metrics, histogram_without_labels_has_le_only)
{
    hv_metric *latency = hv_metrics_histogram(registry, "wait_seconds", "Waits.", NULL);
    hv_metric_observe(latency, NULL, 1.5);
    const char *text = render();
    cr_assert(not(zero(ptr, strstr(text, "helvino_test_wait_seconds_bucket{le=\"1\"} 0\n"))), "%s", text);
    cr_assert(not(zero(ptr, strstr(text, "helvino_test_wait_seconds_bucket{le=\"2.5\"} 1\n"))), "%s", text);
    cr_assert(not(zero(ptr, strstr(text, "helvino_test_wait_seconds_sum 1.5\n"))), "%s", text);
    cr_assert(not(zero(ptr, strstr(text, "helvino_test_wait_seconds_count 1\n"))), "%s", text);
}

Test(metrics, histogram_ignores_nan_and_counter_updates)
{
    hv_metric *latency = hv_metrics_histogram(registry, "wait_seconds", "Waits.", NULL);
    hv_metric_observe(latency, NULL, NAN);
    hv_metric_add(latency, NULL, 3);
    hv_metric_set(latency, NULL, 3);
    cr_assert(not(zero(ptr, strstr(render(), "helvino_test_wait_seconds_count 0\n"))));
}

Test(metrics, counter_ignores_observations)
{
    hv_metric *events = hv_metrics_counter(registry, "events_total", "Events.", NULL);
    hv_metric_observe(events, NULL, 2.0);
    cr_assert(not(zero(ptr, strstr(render(), "helvino_test_events_total 0\n"))));
}

/* --- Names ------------------------------------------------------------------- */

Test(metrics, invalid_names_are_rejected)
{
    cr_assert(zero(ptr, hv_metrics_counter(registry, "bad-name", "Help.", NULL)));
    cr_assert(zero(ptr, hv_metrics_counter(registry, "", "Help.", NULL)));
    cr_assert(zero(ptr, hv_metrics_counter(registry, "1st", "Help.", NULL)));
    cr_assert(zero(ptr, hv_metrics_counter(registry, "ok_total", "Help.", "bad-label")));
    cr_assert(zero(ptr, hv_metrics_counter(registry, "ok_total", "Help.", "__reserved")));
    cr_assert(zero(ptr, hv_metrics_counter(registry, "ok_total", "Help.", "route,")));
    cr_assert(zero(ptr, hv_metrics_counter(registry, "ok_total", "Help.", "a:b")));
    cr_assert(zero(ptr, hv_metrics_histogram(registry, "ok_seconds", "Help.", "op,le")));
    cr_assert(eq(str, (char *)render(), DROPPED_LINES(0)), "a rejected metric was registered");
}

Test(metrics, le_label_is_allowed_outside_histograms)
{
    cr_assert(not(zero(ptr, hv_metrics_gauge(registry, "levels", "Help.", "le"))));
}

Test(metrics, duplicate_name_is_rejected)
{
    cr_assert(not(zero(ptr, hv_metrics_counter(registry, "requests_total", "Help.", NULL))));
    cr_assert(zero(ptr, hv_metrics_gauge(registry, "requests_total", "Other help.", "route")));
}

Test(metrics, invalid_prefix_is_rejected)
{
    cr_assert(zero(ptr, hv_metrics_new("helvino-test")));
    cr_assert(zero(ptr, hv_metrics_new("")));
}

Test(metrics, null_metric_updates_do_nothing)
{
    hv_metric_inc(NULL, NULL);
    hv_metric_add(NULL, HV_LABELS("x"), 2);
    hv_metric_set(NULL, NULL, 2);
    hv_metric_observe(NULL, NULL, 1.0);
    hv_metrics_destroy(NULL);
    cr_assert(eq(str, (char *)hv_metrics_org_label(NULL, "org_1", 5), HV_METRICS_OTHER_ORG));
}

/* --- Bounds ------------------------------------------------------------------ */

Test(metrics, series_beyond_limit_are_dropped_and_counted)
{
    hv_metric *ids = hv_metrics_counter(registry, "ids_total", "One series per id.", "id");
    char id[32];
    for (int i = 0; i < HV_METRICS_MAX_SERIES + 5; i++) {
        snprintf(id, sizeof(id), "%d", i);
        hv_metric_inc(ids, HV_LABELS(id));
    }
    /* An existing series still counts after the limit is reached. */
    hv_metric_inc(ids, HV_LABELS("0"));

    const char *text = render();
    cr_assert(eq(sz, count_lines_starting(text, "helvino_test_ids_total{"), HV_METRICS_MAX_SERIES));
    cr_assert(not(zero(ptr, strstr(text, "helvino_test_ids_total{id=\"0\"} 2\n"))));
    cr_assert(not(zero(ptr, strstr(text, "helvino_test_metrics_series_dropped_total 5\n"))));
}

Test(metrics, first_orgs_seen_get_own_label)
{
    char error[256];
    cr_assert(eq(int, hv_metrics_limit_orgs(registry, NULL, 2, error, sizeof(error)), 0), "%s", error);

    cr_assert(eq(str, (char *)hv_metrics_org_label(registry, "org_a", 5), "org_a"));
    cr_assert(eq(str, (char *)hv_metrics_org_label(registry, "org_b", 5), "org_b"));
    cr_assert(eq(str, (char *)hv_metrics_org_label(registry, "org_c", 5), HV_METRICS_OTHER_ORG));
    /* An org keeps the label it got, after others were turned away. */
    cr_assert(eq(str, (char *)hv_metrics_org_label(registry, "org_a", 5), "org_a"));
    cr_assert(eq(str, (char *)hv_metrics_org_label(registry, "org_c", 5), HV_METRICS_OTHER_ORG));
}

Test(metrics, org_label_reads_only_given_length)
{
    cr_assert(eq(str, (char *)hv_metrics_org_label(registry, "org_1:message:new", 5), "org_1"));
}

Test(metrics, default_limit_is_twenty_orgs)
{
    char org[16];
    for (int i = 0; i < 25; i++) {
        snprintf(org, sizeof(org), "org_%d", i);
        const char *label = hv_metrics_org_label(registry, org, strlen(org));
        if (i < HV_METRICS_DEFAULT_MAX_ORGS)
            cr_assert(eq(str, (char *)label, org));
        else
            cr_assert(eq(str, (char *)label, HV_METRICS_OTHER_ORG), "org %s", org);
    }
}

Test(metrics, allow_list_names_only_orgs_labeled)
{
    char error[256];
    cr_assert(eq(int, hv_metrics_limit_orgs(registry, " org_x , org_y", 20, error, sizeof(error)), 0), "%s", error);

    cr_assert(eq(str, (char *)hv_metrics_org_label(registry, "org_z", 5), HV_METRICS_OTHER_ORG));
    cr_assert(eq(str, (char *)hv_metrics_org_label(registry, "org_x", 5), "org_x"));
    cr_assert(eq(str, (char *)hv_metrics_org_label(registry, "org_y", 5), "org_y"));
    cr_assert(eq(str, (char *)hv_metrics_org_label(registry, "org_", 4), HV_METRICS_OTHER_ORG));
}

Test(metrics, zero_max_orgs_labels_every_org_other)
{
    char error[256];
    cr_assert(eq(int, hv_metrics_limit_orgs(registry, "", 0, error, sizeof(error)), 0), "%s", error);
    cr_assert(eq(str, (char *)hv_metrics_org_label(registry, "org_1", 5), HV_METRICS_OTHER_ORG));
}

Test(metrics, org_called_other_and_invalid_ids_share_other)
{
    cr_assert(eq(str, (char *)hv_metrics_org_label(registry, "_other", 6), HV_METRICS_OTHER_ORG));
    cr_assert(eq(str, (char *)hv_metrics_org_label(registry, "a:b", 3), HV_METRICS_OTHER_ORG));
    cr_assert(eq(str, (char *)hv_metrics_org_label(registry, "", 0), HV_METRICS_OTHER_ORG));

    /* Neither took one of the 20 places. */
    char org[16];
    for (int i = 0; i < HV_METRICS_DEFAULT_MAX_ORGS; i++) {
        snprintf(org, sizeof(org), "org_%d", i);
        cr_assert(eq(str, (char *)hv_metrics_org_label(registry, org, strlen(org)), org));
    }
}

Test(metrics, bad_org_limits_are_rejected)
{
    struct {
        const char *list;
        long max_orgs;
        const char *message;
    } cases[] = {
        {"org 1", 20, "invalid org id \"org 1\""}, {"org_1,,org_2", 20, "invalid org id \"\""},
        {"org_1,", 20, "invalid org id \"\""},     {"org_1,_other", 20, "\"_other\" is the label of the orgs not listed"},
        {"org:1", 20, "invalid org id \"org:1\""}, {NULL, -1, "expected 0 to 1000"},
        {NULL, 1001, "expected 0 to 1000"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char error[256] = "";
        cr_assert(eq(int, hv_metrics_limit_orgs(registry, cases[i].list, cases[i].max_orgs, error, sizeof(error)), -1), "case %zu",
                  i);
        cr_assert(not(zero(ptr, strstr(error, cases[i].message))), "case %zu: %s", i, error);
    }

    /* A rejected setting leaves the previous one. */
    cr_assert(eq(str, (char *)hv_metrics_org_label(registry, "org_1", 5), "org_1"));
}

Test(metrics, allow_list_longer_than_limit_is_rejected)
{
    size_t size = (HV_METRICS_MAX_ORGS + 1) * 16;
    char *list = malloc(size);
    cr_assert(not(zero(ptr, list)));
    size_t used = 0;
    for (int i = 0; i <= HV_METRICS_MAX_ORGS; i++)
        used += (size_t)snprintf(list + used, size - used, "%sorg_%d", i ? "," : "", i);

    char error[256];
    int status = hv_metrics_limit_orgs(registry, list, 20, error, sizeof(error));
    free(list);
    cr_assert(eq(int, status, -1));
    cr_assert(not(zero(ptr, strstr(error, "at most 1000 orgs"))), "%s", error);
}

Test(metrics, million_orgs_make_bounded_series)
{
    hv_metric *clients = hv_metrics_gauge(registry, "connected_clients", "Clients by org.", "org");
    char org[32];
    for (int i = 0; i < 1000000; i++) {
        int len = snprintf(org, sizeof(org), "org_%d", i);
        hv_metric_inc(clients, HV_LABELS(hv_metrics_org_label(registry, org, (size_t)len)));
    }

    const char *text = render();
    cr_assert(eq(sz, count_lines_starting(text, "helvino_test_connected_clients{"), HV_METRICS_DEFAULT_MAX_ORGS + 1));
    cr_assert(not(zero(ptr, strstr(text, "helvino_test_connected_clients{org=\"org_0\"} 1\n"))), "%s", text);
    cr_assert(not(zero(ptr, strstr(text, "helvino_test_connected_clients{org=\"_other\"} 999980\n"))), "%s", text);
}

/* --- Threads ----------------------------------------------------------------- */

#define THREAD_COUNT 4
#define UPDATES_PER_THREAD 50000

static void *update_from_thread(void *argument)
{
    hv_metric **metrics = argument;
    for (int i = 0; i < UPDATES_PER_THREAD; i++) {
        hv_metric_inc(metrics[0], HV_LABELS(i % 2 ? "odd" : "even"));
        hv_metric_observe(metrics[1], NULL, 0.25);
    }
    return NULL;
}

Test(metrics, concurrent_updates_all_count)
{
    hv_metric *metrics[] = {
        hv_metrics_counter(registry, "updates_total", "Updates.", "parity"),
        hv_metrics_histogram(registry, "update_seconds", "Update time.", NULL),
    };
    pthread_t threads[THREAD_COUNT];
    for (int i = 0; i < THREAD_COUNT; i++)
        cr_assert(eq(int, pthread_create(&threads[i], NULL, update_from_thread, metrics), 0));
    for (int i = 0; i < THREAD_COUNT; i++)
        pthread_join(threads[i], NULL);

    const char *text = render();
    char expected[128];
    snprintf(expected, sizeof(expected), "helvino_test_updates_total{parity=\"even\"} %d\n", THREAD_COUNT * UPDATES_PER_THREAD / 2);
    cr_assert(not(zero(ptr, strstr(text, expected))), "%s", text);
    snprintf(expected, sizeof(expected), "helvino_test_update_seconds_count %d\n", THREAD_COUNT * UPDATES_PER_THREAD);
    cr_assert(not(zero(ptr, strstr(text, expected))), "%s", text);
    snprintf(expected, sizeof(expected), "helvino_test_update_seconds_sum %d\n", THREAD_COUNT * UPDATES_PER_THREAD / 4);
    cr_assert(not(zero(ptr, strstr(text, expected))), "%s", text);
}
