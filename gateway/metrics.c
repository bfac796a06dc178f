/* The gateway's metrics. Label values come from fixed lists (routes,
 * methods, status codes), never from the request's text, so the number of
 * series stays small whatever clients send. */
#include "metrics.h"
#include "hv_time.h"

#include <stdio.h>

gateway_metrics metrics;

int metrics_init(void)
{
    hv_metrics *registry = hv_metrics_new("helvino_gateway");
    if (!registry)
        return -1;
    metrics = (gateway_metrics){
        .registry = registry,
        .requests = hv_metrics_counter(registry, "http_requests_total",
                                       "API responses, by method, route pattern (\"unmatched\" for unknown paths) and status code.",
                                       "method,route,status"),
        .request_duration = hv_metrics_histogram(registry, "http_request_duration_seconds",
                                                 "Time from the request to its response, by route pattern.", "route"),
        .requests_in_flight =
            hv_metrics_gauge(registry, "http_requests_in_flight", "API requests being handled, store calls included.", NULL),
        .store_failures = hv_metrics_counter(registry, "store_call_failures_total",
                                             "Store calls that got no reply: timeout (sent, no reply in time) or unavailable "
                                             "(no store connected to send to).",
                                             "reason"),
        .key_cache_lookups =
            hv_metrics_counter(registry, "key_cache_lookups_total",
                               "Org key lookups in the cache: hit (valid or invalid key known) or miss.", "result"),
        .forwarded = hv_metrics_counter(registry, "socketio_forwarded_total",
                                        "Requests under /socket.io/ forwarded to helvino-realtime, by the status they got "
                                        "(0 when the client left first).",
                                        "status"),
    };

    /* The names are valid constants, so only a lack of memory fails a registration. */
    const hv_metric *handles[] = {metrics.requests,       metrics.request_duration,  metrics.requests_in_flight,
                                  metrics.store_failures, metrics.key_cache_lookups, metrics.forwarded};
    for (size_t i = 0; i < sizeof(handles) / sizeof(handles[0]); i++) {
        if (!handles[i]) {
            metrics_destroy();
            return -1;
        }
    }

    /* The series a dashboard looks for exist from the start, at 0. */
    hv_metric_add(metrics.store_failures, HV_LABELS("timeout"), 0);
    hv_metric_add(metrics.store_failures, HV_LABELS("unavailable"), 0);
    hv_metric_add(metrics.key_cache_lookups, HV_LABELS("hit"), 0);
    hv_metric_add(metrics.key_cache_lookups, HV_LABELS("miss"), 0);
    return 0;
}

void metrics_destroy(void)
{
    hv_metrics_destroy(&metrics.registry);
    metrics = (gateway_metrics){0};
}

void metrics_count_request(route_id route, http_method method, int status, int64_t started_ns)
{
    char status_text[16];
    snprintf(status_text, sizeof(status_text), "%d", status);
    hv_metric_inc(metrics.requests, HV_LABELS(routes_method_name(method), routes_name(route), status_text));
    double seconds = (double)(hv_time_monotonic_ns() - started_ns) / 1e9;
    hv_metric_observe(metrics.request_duration, HV_LABELS(routes_name(route)), seconds);
}

void metrics_count_forwarded(int status)
{
    char status_text[16];
    snprintf(status_text, sizeof(status_text), "%d", status);
    hv_metric_inc(metrics.forwarded, HV_LABELS(status_text));
}

void metrics_collect(size_t requests_in_flight, const store_client *store)
{
    hv_metric_set(metrics.requests_in_flight, NULL, (int64_t)requests_in_flight);
    store_client_failures failures = store_client_failure_counts(store);
    hv_metric_set(metrics.store_failures, HV_LABELS("timeout"), (int64_t)failures.timed_out);
    hv_metric_set(metrics.store_failures, HV_LABELS("unavailable"), (int64_t)failures.not_sent);
}
