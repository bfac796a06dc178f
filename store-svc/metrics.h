/* The store's metrics: requests by operation, the queue and the workers,
 * the database connection, and the events published. The broker thread and
 * the worker threads update them; the admin listener renders them. */
#ifndef STORE_METRICS_H
#define STORE_METRICS_H

#include "hv_metrics.h"
#include "ops.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    hv_metrics *registry;
    hv_metric *operations;                /* counter: op, status */
    hv_metric *operation_duration;        /* histogram: op */
    hv_metric *queue_depth;               /* gauge */
    hv_metric *workers_busy;              /* gauge */
    hv_metric *workers;                   /* gauge */
    hv_metric *database_errors;           /* counter: kind */
    hv_metric *database_reconnects;       /* counter */
    hv_metric *database_connect_failures; /* counter */
    hv_metric *database_up;               /* gauge */
    hv_metric *events_published;          /* counter: event */
    hv_metric *event_publish_failures;    /* counter */
} store_metrics;

/* The process's metrics. Before metrics_init every handle is NULL, and
 * updates through a NULL handle do nothing. */
extern store_metrics metrics;

/* The `kind` label values of database_errors. */
#define METRICS_DB_CONNECTION_LOST "connection_lost"     /* the connection died during the request */
#define METRICS_DB_UNAVAILABLE "unavailable"             /* no connection, waiting to reconnect */
#define METRICS_DB_STATEMENT_TIMEOUT "statement_timeout" /* statement_timeout cancelled the statement */
#define METRICS_DB_FAILED "failed"                       /* any other error, replied with 500 */

/* Registers every metric. Returns 0, or -1 when out of memory. */
int metrics_init(void) __attribute__((warn_unused_result));

/* Frees the metrics; the handles become NULL again. */
void metrics_destroy(void);

/* Counts a finished request by its operation and status, with the time
 * since `received_ns` (hv_time_monotonic_ns) as its duration. Operations
 * the store does not have count as "unknown". */
void metrics_count_operation(const ops_result *result, int64_t received_ns);

/* Counts an event published on `topic`, or a failed publication. */
void metrics_count_event(const char *topic, bool published);

/* Copies the broker's gauges into the registry before a rendering.
 * `serving` is false while the store waits for the database at start, and
 * database_up is 0 then. */
void metrics_collect(long queued, int busy_workers, int worker_count, bool serving);

#endif
