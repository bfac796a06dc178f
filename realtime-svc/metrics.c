/* The real-time service's metrics. Org labels are bounded by the registry
 * (an allow-list or the first orgs seen), and the other labels come from
 * fixed lists, so a million orgs or odd client input make no more series. */
#include "metrics.h"
#include "hv_event.h"

#include <stdio.h>
#include <string.h>

realtime_metrics metrics;

int metrics_init(const char *org_allow_list, long max_orgs, char *error, size_t error_size)
{
    hv_metrics *registry = hv_metrics_new("helvino_realtime");
    if (!registry || hv_metrics_limit_orgs(registry, org_allow_list, max_orgs, error, error_size) != 0) {
        if (!registry)
            snprintf(error, error_size, "out of memory");
        hv_metrics_destroy(&registry);
        return -1;
    }
    metrics = (realtime_metrics){
        .registry = registry,
        .sessions = hv_metrics_gauge(registry, "sessions", "Engine.IO sessions open or closing, by transport.", "transport"),
        .sessions_opened = hv_metrics_counter(registry, "sessions_opened_total",
                                              "Engine.IO sessions opened, by their first transport.", "transport"),
        .upgrades = hv_metrics_counter(registry, "upgrades_total", "Sessions upgraded from long-polling to WebSocket.", NULL),
        .slow_clients_dropped =
            hv_metrics_counter(registry, "slow_clients_dropped_total",
                               "Sessions closed because their unread outgoing bytes went over the limit.", "transport"),
        .connected_clients =
            hv_metrics_gauge(registry, "connected_clients",
                             "Socket.IO clients connected with a valid key, by org (\"_other\" beyond the bound).", "org"),
        .connects = hv_metrics_counter(
            registry, "connects_total",
            "Socket.IO CONNECTs by result: ok, missing_key, invalid_key, unavailable, invalid_namespace.", "result"),
        .events_received =
            hv_metrics_counter(registry, "events_received_total", "Events received from the store, by event name.", "event"),
        .deliveries = hv_metrics_counter(registry, "deliveries_total",
                                         "Events queued to a connected client, by org (\"_other\" beyond the bound).", "org"),
        .rooms = hv_metrics_gauge(registry, "rooms", "Rooms with members: orgs with at least one client.", NULL),
        .store_failures = hv_metrics_counter(registry, "store_call_failures_total",
                                             "Key lookups in the store that got no reply: timeout (sent, no reply in time) or "
                                             "unavailable (no store connected to send to).",
                                             "reason"),
        .key_cache_lookups =
            hv_metrics_counter(registry, "key_cache_lookups_total",
                               "Org key lookups in the cache: hit (valid or invalid key known) or miss.", "result"),
    };

    /* The names are valid constants, so only a lack of memory fails a registration. */
    const hv_metric *handles[] = {metrics.sessions,
                                  metrics.sessions_opened,
                                  metrics.upgrades,
                                  metrics.slow_clients_dropped,
                                  metrics.connected_clients,
                                  metrics.connects,
                                  metrics.events_received,
                                  metrics.deliveries,
                                  metrics.rooms,
                                  metrics.store_failures,
                                  metrics.key_cache_lookups};
    for (size_t i = 0; i < sizeof(handles) / sizeof(handles[0]); i++) {
        if (!handles[i]) {
            metrics_destroy();
            snprintf(error, error_size, "out of memory");
            return -1;
        }
    }

    /* The series a dashboard looks for exist from the start, at 0. */
    const char *transports[] = {METRICS_POLLING, METRICS_WEBSOCKET};
    for (size_t i = 0; i < 2; i++) {
        hv_metric_add(metrics.sessions, HV_LABELS(transports[i]), 0);
        hv_metric_add(metrics.sessions_opened, HV_LABELS(transports[i]), 0);
        hv_metric_add(metrics.slow_clients_dropped, HV_LABELS(transports[i]), 0);
    }
    const char *results[] = {METRICS_CONNECT_OK, METRICS_CONNECT_MISSING_KEY, METRICS_CONNECT_INVALID_KEY,
                             METRICS_CONNECT_UNAVAILABLE, METRICS_CONNECT_INVALID_NAMESPACE};
    for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++)
        hv_metric_add(metrics.connects, HV_LABELS(results[i]), 0);
    hv_metric_add(metrics.events_received, HV_LABELS(HV_EVENT_MESSAGE_NEW), 0);
    hv_metric_add(metrics.events_received, HV_LABELS(HV_EVENT_CONVERSATION_NEW), 0);
    hv_metric_add(metrics.store_failures, HV_LABELS("timeout"), 0);
    hv_metric_add(metrics.store_failures, HV_LABELS("unavailable"), 0);
    hv_metric_add(metrics.key_cache_lookups, HV_LABELS("hit"), 0);
    hv_metric_add(metrics.key_cache_lookups, HV_LABELS("miss"), 0);
    return 0;
}

void metrics_destroy(void)
{
    hv_metrics_destroy(&metrics.registry);
    metrics = (realtime_metrics){0};
}

const char *metrics_org(const char *org, size_t org_len)
{
    return hv_metrics_org_label(metrics.registry, org, org_len);
}

const char *metrics_event(const char *event, size_t event_len)
{
    if (event_len == strlen(HV_EVENT_MESSAGE_NEW) && memcmp(event, HV_EVENT_MESSAGE_NEW, event_len) == 0)
        return HV_EVENT_MESSAGE_NEW;
    if (event_len == strlen(HV_EVENT_CONVERSATION_NEW) && memcmp(event, HV_EVENT_CONVERSATION_NEW, event_len) == 0)
        return HV_EVENT_CONVERSATION_NEW;
    return "other";
}
