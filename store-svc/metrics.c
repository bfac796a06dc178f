/* The store's metrics. Label values come from fixed lists (operations,
 * status codes, event names), never from request text, so the number of
 * series stays small whatever clients send. */
#include "metrics.h"
#include "hv_event.h"
#include "hv_time.h"

#include <stdio.h>
#include <string.h>

store_metrics metrics;

int metrics_init(void)
{
    hv_metrics *registry = hv_metrics_new("helvino_store");
    if (!registry)
        return -1;
    metrics = (store_metrics){
        .registry = registry,
        .operations = hv_metrics_counter(registry, "operations_total",
                                         "Requests handled, by operation and the status code of the reply.", "op,status"),
        .operation_duration = hv_metrics_histogram(
            registry, "operation_duration_seconds",
            "Time from reading a request to sending its reply, waiting in the queue included, by operation.", "op"),
        .queue_depth = hv_metrics_gauge(registry, "queue_depth", "Requests waiting for a free worker.", NULL),
        .workers_busy = hv_metrics_gauge(registry, "workers_busy", "Worker threads running a request.", NULL),
        .workers = hv_metrics_gauge(registry, "workers", "Worker threads, each with its own PostgreSQL connection.", NULL),
        .database_errors = hv_metrics_counter(registry, "database_errors_total",
                                              "Requests that failed because of the database, by kind: connection_lost, unavailable "
                                              "(no connection yet), statement_timeout, failed.",
                                              "kind"),
        .database_reconnects = hv_metrics_counter(registry, "database_reconnects_total",
                                                  "PostgreSQL connections made again after a worker lost its connection.", NULL),
        .database_connect_failures =
            hv_metrics_counter(registry, "database_connect_failures_total", "Failed attempts to connect to PostgreSQL.", NULL),
        .database_up = hv_metrics_gauge(registry, "database_up",
                                        "1 when the last connection attempt of any worker reached PostgreSQL, 0 otherwise and "
                                        "while the store waits for it at start.",
                                        NULL),
        .events_published = hv_metrics_counter(registry, "events_published_total", "Events published, by event name.", "event"),
        .event_publish_failures =
            hv_metrics_counter(registry, "event_publish_failures_total", "Events that ZeroMQ failed to publish.", NULL),
    };

    /* The names are valid constants, so only a lack of memory fails a registration. */
    const hv_metric *handles[] = {
        metrics.operations,  metrics.operation_duration, metrics.queue_depth,           metrics.workers_busy,
        metrics.workers,     metrics.database_errors,    metrics.database_reconnects,   metrics.database_connect_failures,
        metrics.database_up, metrics.events_published,   metrics.event_publish_failures};
    for (size_t i = 0; i < sizeof(handles) / sizeof(handles[0]); i++) {
        if (!handles[i]) {
            metrics_destroy();
            return -1;
        }
    }

    /* The series a dashboard looks for exist from the start, at 0. */
    const char *kinds[] = {METRICS_DB_CONNECTION_LOST, METRICS_DB_UNAVAILABLE, METRICS_DB_STATEMENT_TIMEOUT, METRICS_DB_FAILED};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        hv_metric_add(metrics.database_errors, HV_LABELS(kinds[i]), 0);
    hv_metric_add(metrics.events_published, HV_LABELS(HV_EVENT_MESSAGE_NEW), 0);
    hv_metric_add(metrics.events_published, HV_LABELS(HV_EVENT_CONVERSATION_NEW), 0);
    return 0;
}

void metrics_destroy(void)
{
    hv_metrics_destroy(&metrics.registry);
    metrics = (store_metrics){0};
}

void metrics_count_operation(const ops_result *result, int64_t received_ns)
{
    const char *op = ops_name(result->op, strlen(result->op));
    char status[16];
    snprintf(status, sizeof(status), "%d", result->status);

    hv_metric_inc(metrics.operations, HV_LABELS(op ? op : "unknown", status));
    double seconds = (double)(hv_time_monotonic_ns() - received_ns) / 1e9;
    hv_metric_observe(metrics.operation_duration, HV_LABELS(op ? op : "unknown"), seconds);
}

void metrics_count_event(const char *topic, bool published)
{
    if (!published) {
        hv_metric_inc(metrics.event_publish_failures, NULL);
        return;
    }
    const char *org, *event;
    size_t org_len, event_len;
    const char *name = "other";
    if (hv_topic_parse(topic, strlen(topic), &org, &org_len, &event, &event_len) == 0) {
        if (event_len == strlen(HV_EVENT_MESSAGE_NEW) && memcmp(event, HV_EVENT_MESSAGE_NEW, event_len) == 0)
            name = HV_EVENT_MESSAGE_NEW;
        else if (event_len == strlen(HV_EVENT_CONVERSATION_NEW) && memcmp(event, HV_EVENT_CONVERSATION_NEW, event_len) == 0)
            name = HV_EVENT_CONVERSATION_NEW;
    }
    hv_metric_inc(metrics.events_published, HV_LABELS(name));
}

void metrics_collect(long queued, int busy_workers, int worker_count, bool serving)
{
    hv_metric_set(metrics.queue_depth, NULL, queued);
    hv_metric_set(metrics.workers_busy, NULL, busy_workers);
    hv_metric_set(metrics.workers, NULL, worker_count);
    hv_metric_set(metrics.database_up, NULL, serving && db_is_up() ? 1 : 0);
}
