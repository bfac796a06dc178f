/* The gateway's metrics: API requests by route and status, their latency,
 * requests in flight, failed store calls, the key cache, and the requests
 * forwarded to the real-time service. The loop's thread updates them and
 * the admin listener renders them on the same thread. */
#ifndef GATEWAY_METRICS_H
#define GATEWAY_METRICS_H

#include "hv_metrics.h"
#include "routes.h"
#include "store_client.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    hv_metrics *registry;
    hv_metric *requests;           /* counter: method, route, status */
    hv_metric *request_duration;   /* histogram: route */
    hv_metric *requests_in_flight; /* gauge */
    hv_metric *store_failures;     /* counter: reason */
    hv_metric *key_cache_lookups;  /* counter: result */
    hv_metric *forwarded;          /* counter: status */
} gateway_metrics;

/* The process's metrics. Before metrics_init every handle is NULL, and
 * updates through a NULL handle do nothing, as in the unit tests. */
extern gateway_metrics metrics;

/* Registers every metric. Returns 0, or -1 when out of memory. */
int metrics_init(void) __attribute__((warn_unused_result));

/* Frees the metrics; the handles become NULL again. */
void metrics_destroy(void);

/* Counts an API response with the time since `started_ns`
 * (hv_time_monotonic_ns) as its latency. */
void metrics_count_request(route_id route, http_method method, int status, int64_t started_ns);

/* Counts a request forwarded to the real-time service by the status it got;
 * 0 means that the client left before any response. */
void metrics_count_forwarded(int status);

/* Copies the gauges and the store client's failure counts into the
 * registry before a rendering. */
void metrics_collect(size_t requests_in_flight, const store_client *store);

#endif
