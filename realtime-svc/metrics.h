/* The real-time service's metrics: Engine.IO sessions by transport, the
 * Socket.IO clients by org, CONNECTs by result, the events received and
 * delivered, slow clients dropped, rooms, upgrades, and the store calls and
 * key lookups of CONNECTs. The loop's thread updates them and the admin
 * listener renders them on the same thread. */
#ifndef REALTIME_METRICS_H
#define REALTIME_METRICS_H

#include "hv_metrics.h"

#include <stddef.h>

typedef struct {
    hv_metrics *registry;
    hv_metric *sessions;             /* gauge: transport */
    hv_metric *sessions_opened;      /* counter: transport */
    hv_metric *upgrades;             /* counter */
    hv_metric *slow_clients_dropped; /* counter: transport */
    hv_metric *connected_clients;    /* gauge: org */
    hv_metric *connects;             /* counter: result */
    hv_metric *events_received;      /* counter: event */
    hv_metric *deliveries;           /* counter: org */
    hv_metric *rooms;                /* gauge */
    hv_metric *store_failures;       /* counter: reason */
    hv_metric *key_cache_lookups;    /* counter: result */
} realtime_metrics;

/* The process's metrics. Before metrics_init every handle is NULL, and
 * updates through a NULL handle do nothing. */
extern realtime_metrics metrics;

/* The `transport` label values. */
#define METRICS_POLLING "polling"
#define METRICS_WEBSOCKET "websocket"

/* The `result` label values of connects. */
#define METRICS_CONNECT_OK "ok"
#define METRICS_CONNECT_MISSING_KEY "missing_key"
#define METRICS_CONNECT_INVALID_KEY "invalid_key"
#define METRICS_CONNECT_UNAVAILABLE "unavailable"
#define METRICS_CONNECT_INVALID_NAMESPACE "invalid_namespace"

/* Registers every metric and sets which orgs get their own org label (see
 * hv_metrics_limit_orgs). Returns 0, or -1 with a message in `error`. */
int metrics_init(const char *org_allow_list, long max_orgs, char *error, size_t error_size) __attribute__((warn_unused_result));

/* Frees the metrics; the handles become NULL again. */
void metrics_destroy(void);

/* Returns the org label of `org` (`org_len` bytes): the org id, or
 * HV_METRICS_OTHER_ORG beyond the bound. */
const char *metrics_org(const char *org, size_t org_len);

/* Returns the `event` label of an event name: message:new,
 * conversation:new, or "other". */
const char *metrics_event(const char *event, size_t event_len);

#endif
