/* helvino-realtime: live events for the chat widget over Socket.IO. Each
 * client joins its organization's room with its org key, and every event
 * the store publishes for that org goes to the room, on one h2o event loop
 * thread. */
#include "hv_config.h"
#include "hv_log.h"
#include "hv_notify.h"
#include "hv_service.h"
#include "hv_time.h"
#include "hv_version.h"
#include "metrics.h"
#include "metrics_listener.h"
#include "realtime.h"
#include "service_loop.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

static struct {
    const char *listen;
    const char *store_endpoint;
    const char *events_endpoint;
    long store_timeout_ms;
    long ping_interval_ms;
    long ping_timeout_ms;
    long upgrade_timeout_ms;
    long max_payload;
    long max_buffered_bytes;
    const char *cors_origins;
    long key_cache_size;
    long key_cache_ttl_ms;
    long key_cache_negative_ttl_ms;
    long shutdown_timeout_ms;
    const char *metrics_listen;
    const char *metrics_orgs;
    long metrics_max_orgs;
    const char *log_level;
} config;

static hv_setting settings[] = {
    {"listen", "HELVINO_REALTIME_LISTEN", HV_SETTING_STRING, "127.0.0.1:4001",
     "Address and port to serve Socket.IO on (HOST:PORT), at /socket.io/.", &config.listen, 0, 0, HV_SHOW_PLAIN},
    {"store-endpoint", "HELVINO_STORE_ENDPOINT", HV_SETTING_STRING, "tcp://127.0.0.1:5555",
     "ZeroMQ endpoint of the store's request socket, which resolves org keys.", &config.store_endpoint, 0, 0, HV_SHOW_PLAIN},
    {"events-endpoint", "HELVINO_EVENTS_ENDPOINT", HV_SETTING_STRING, "tcp://127.0.0.1:5556",
     "ZeroMQ endpoint of the store's event socket.", &config.events_endpoint, 0, 0, HV_SHOW_PLAIN},
    {"store-timeout-ms", "HELVINO_STORE_TIMEOUT_MS", HV_SETTING_INT, "5000",
     "How long to wait for the store (a key lookup, a subscription) before refusing a CONNECT, in milliseconds.",
     &config.store_timeout_ms, 1, 600000, HV_SHOW_PLAIN},
    {"ping-interval-ms", "HELVINO_REALTIME_PING_INTERVAL_MS", HV_SETTING_INT, "25000",
     "How often each client is pinged, in milliseconds.", &config.ping_interval_ms, 50, 3600000, HV_SHOW_PLAIN},
    {"ping-timeout-ms", "HELVINO_REALTIME_PING_TIMEOUT_MS", HV_SETTING_INT, "20000",
     "How long a client has to answer a ping before it is disconnected, in milliseconds.", &config.ping_timeout_ms, 50, 3600000,
     HV_SHOW_PLAIN},
    {"upgrade-timeout-ms", "HELVINO_REALTIME_UPGRADE_TIMEOUT_MS", HV_SETTING_INT, "10000",
     "How long an upgrade from polling to WebSocket may take, in milliseconds.", &config.upgrade_timeout_ms, 50, 3600000,
     HV_SHOW_PLAIN},
    {"max-payload", "HELVINO_REALTIME_MAX_PAYLOAD", HV_SETTING_INT, "1000000",
     "Largest packet, polling body or WebSocket message accepted from a client, in bytes.", &config.max_payload, 1024, 1000000,
     HV_SHOW_PLAIN},
    {"max-buffered-bytes", "HELVINO_REALTIME_MAX_BUFFERED_BYTES", HV_SETTING_INT, "1048576",
     "Outgoing bytes a client may leave unread before it is disconnected.", &config.max_buffered_bytes, 1024, 1024L * 1024 * 1024,
     HV_SHOW_PLAIN},
    {"cors-origins", "HELVINO_CORS_ORIGINS", HV_SETTING_STRING, "*",
     "Origins allowed to poll from a browser: * or a comma-separated list.", &config.cors_origins, 0, 0, HV_SHOW_PLAIN},
    {"key-cache-size", "HELVINO_KEY_CACHE_SIZE", HV_SETTING_INT, "10000", "Org keys remembered at most.", &config.key_cache_size, 1,
     10000000, HV_SHOW_PLAIN},
    {"key-cache-ttl-ms", "HELVINO_KEY_CACHE_TTL_MS", HV_SETTING_INT, "60000",
     "How long a valid key is trusted without asking the store, in milliseconds.", &config.key_cache_ttl_ms, 0, 86400000,
     HV_SHOW_PLAIN},
    {"key-cache-negative-ttl-ms", "HELVINO_KEY_CACHE_NEGATIVE_TTL_MS", HV_SETTING_INT, "5000",
     "How long an unknown key is remembered as invalid, in milliseconds.", &config.key_cache_negative_ttl_ms, 0, 86400000,
     HV_SHOW_PLAIN},
    {"shutdown-timeout-ms", "HELVINO_REALTIME_SHUTDOWN_TIMEOUT_MS", HV_SETTING_INT, "5000",
     "On SIGTERM, how long to wait for clients to take their close, in milliseconds.", &config.shutdown_timeout_ms, 0, 3600000,
     HV_SHOW_PLAIN},
    {"metrics-listen", "HELVINO_REALTIME_METRICS_LISTEN", HV_SETTING_STRING, "127.0.0.1:9103",
     "Loopback address (HOST:PORT) that serves GET /metrics in the Prometheus text format, or \"off\".", &config.metrics_listen, 0,
     0, HV_SHOW_PLAIN},
    {"metrics-orgs", "HELVINO_METRICS_ORGS", HV_SETTING_STRING, "",
     "Comma-separated org ids that get their own org label in the metrics; every other org counts as _other. Empty: the first "
     "--metrics-max-orgs orgs seen.",
     &config.metrics_orgs, 0, 0, HV_SHOW_PLAIN},
    {"metrics-max-orgs", "HELVINO_METRICS_MAX_ORGS", HV_SETTING_INT, "20",
     "Without --metrics-orgs, how many orgs (the first seen) get their own org label in the metrics.", &config.metrics_max_orgs, 0,
     HV_METRICS_MAX_ORGS, HV_SHOW_PLAIN},
    {"log-level", "HELVINO_LOG_LEVEL", HV_SETTING_STRING, "info", "Least severe level logged: debug, info, warn or error.",
     &config.log_level, 0, 0, HV_SHOW_PLAIN},
};

#define SETTING_COUNT (sizeof(settings) / sizeof(settings[0]))

static h2o_globalconf_t globalconf;
static h2o_context_t context;
static h2o_accept_ctx_t accept_context;
static metrics_listener admin;
static realtime *service;
static volatile bool stopping;

static void describe_status(char *out, size_t size, void *data)
{
    (void)data;
    snprintf(out, size, "%s on %s; %zu clients", stopping ? "stopping" : "serving", config.listen, realtime_client_count(service));
}

static void collect_metrics(void *data)
{
    (void)data;
    realtime_collect_metrics(service);
}

/* Opens the metrics listener unless the setting is "off". Returns 0, or a
 * negative value as metrics_listener_open does after logging why it failed. */
static int open_admin(h2o_loop_t *loop)
{
    int status = metrics_listener_open(&admin, loop, config.metrics_listen, metrics.registry, collect_metrics, NULL);
    /* Without a listener nothing is counted: the metrics stay NULL. */
    if (status == 1)
        metrics_destroy();
    return status < 0 ? status : 0;
}

static bool clients_left(void *data)
{
    (void)data;
    return realtime_client_count(service) > 0;
}

static void on_stop(const char *signal_name)
{
    HV_INFO("shutdown requested; closing clients", HV_STR("signal", signal_name),
            HV_INT("clients", realtime_client_count(service)));
    stopping = true;
    char status[256];
    describe_status(status, sizeof(status), NULL);
    hv_notify_stopping(status);
    realtime_shutdown(service);
}

int main(int argc, char **argv)
{
    /* Each WebSocket write allocates and frees a buffer. With glibc's
     * default trim threshold (128 KiB), a small heap hands that memory back
     * to the kernel after nearly every event and takes it again with the
     * next one: a brk call and page faults per delivery. */
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);

    hv_service_configure(settings, SETTING_COUNT, argc, argv, "helvino-realtime", "realtime", &config.log_level);
    char error[512];
    /* Checks the org settings even when the listener is off. */
    if (metrics_init(config.metrics_orgs, config.metrics_max_orgs, error, sizeof(error)) != 0) {
        fprintf(stderr, "helvino-realtime: %s\n", error);
        return 2;
    }
    hv_service_log_start(settings, SETTING_COUNT, "helvino-realtime", HV_VERSION);

    realtime_settings options = {
        .store_endpoint = config.store_endpoint,
        .events_endpoint = config.events_endpoint,
        .store_timeout_ms = (uint64_t)config.store_timeout_ms,
        .key_cache_size = (size_t)config.key_cache_size,
        .key_cache_ttl_ms = config.key_cache_ttl_ms,
        .key_cache_negative_ttl_ms = config.key_cache_negative_ttl_ms,
        .engine =
            {
                .ping_interval_ms = config.ping_interval_ms,
                .ping_timeout_ms = config.ping_timeout_ms,
                .upgrade_timeout_ms = config.upgrade_timeout_ms,
                .max_payload = (size_t)config.max_payload,
                .max_buffered = (size_t)config.max_buffered_bytes,
                .cors_origins = config.cors_origins,
            },
    };

    h2o_config_init(&globalconf);
    /* Polling bodies above max-payload get the 413 of engine.c; far larger
     * ones are refused by h2o before they are read. */
    globalconf.max_request_entity_size = (size_t)config.max_payload * 2;
    h2o_hostconf_t *hostconf = h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    service = realtime_new(&options, hostconf, error, sizeof(error));
    if (!service) {
        HV_ERROR("starting the service failed", HV_STR("err", error));
        return 1;
    }

    h2o_loop_t *loop = h2o_evloop_create();
    h2o_context_init(&context, loop, &globalconf);
    accept_context.ctx = &context;
    accept_context.hosts = globalconf.hosts;

    void *zmq_context = zmq_ctx_new();
    if (realtime_start(service, &context, zmq_context, error, sizeof(error)) != 0) {
        HV_ERROR("connecting to the store failed", HV_STR("err", error));
        return 1;
    }

    int opened = service_open(loop, config.listen, &accept_context, on_stop);
    if (opened == 0)
        opened = open_admin(loop);
    if (opened != 0)
        return service_exit_status(opened);

    HV_INFO("realtime ready", HV_STR("listen", config.listen), HV_STR("store", config.store_endpoint),
            HV_STR("events", config.events_endpoint));
    service_ready(loop, describe_status, NULL);

    if (!service_run(loop, &stopping, clients_left, NULL, config.shutdown_timeout_ms))
        HV_WARN("shutdown timeout reached; dropping clients", HV_INT("clients", realtime_client_count(service)));

    service_close();
    metrics_listener_stop(&admin);
    realtime_destroy(&service);
    zmq_ctx_term(zmq_context);
    metrics_destroy();
    HV_INFO("realtime stopped", HV_INT("exit_status", 0));
    return 0;
}
