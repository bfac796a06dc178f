/* helvino-gateway: the HTTP API that the chat widget and the dashboard call.
 * It authenticates the x-org-key header and forwards each request to
 * helvino-store over ZeroMQ, on one h2o event loop thread. It also forwards
 * /socket.io/ to helvino-realtime, so the widget needs one base URL. */
#include "http.h"
#include "metrics.h"
#include "metrics_listener.h"
#include "realtime_proxy.h"
#include "hv_config.h"
#include "hv_log.h"
#include "hv_notify.h"
#include "hv_service.h"
#include "hv_time.h"
#include "hv_version.h"
#include "service_loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

static struct {
    const char *listen;
    const char *store_endpoint;
    long store_timeout_ms;
    long max_body_bytes;
    const char *cors_origins;
    const char *realtime_url;
    long key_cache_size;
    long key_cache_ttl_ms;
    long key_cache_negative_ttl_ms;
    bool access_log;
    long shutdown_timeout_ms;
    const char *metrics_listen;
    const char *log_level;
} config;

static hv_setting settings[] = {
    {"listen", "HELVINO_HTTP_LISTEN", HV_SETTING_STRING, "127.0.0.1:4000", "Address and port to serve HTTP on (HOST:PORT).",
     &config.listen, 0, 0, HV_SHOW_PLAIN},
    {"store-endpoint", "HELVINO_STORE_ENDPOINT", HV_SETTING_STRING, "tcp://127.0.0.1:5555",
     "ZeroMQ endpoint of the store's request socket.", &config.store_endpoint, 0, 0, HV_SHOW_PLAIN},
    {"store-timeout-ms", "HELVINO_STORE_TIMEOUT_MS", HV_SETTING_INT, "5000",
     "How long to wait for the store before answering 503, in milliseconds.", &config.store_timeout_ms, 1, 600000, HV_SHOW_PLAIN},
    {"max-body-bytes", "HELVINO_MAX_BODY_BYTES", HV_SETTING_INT, "65536", "Largest request body accepted, in bytes (413 above).",
     &config.max_body_bytes, 1, 16L * 1024 * 1024, HV_SHOW_PLAIN},
    {"cors-origins", "HELVINO_CORS_ORIGINS", HV_SETTING_STRING, "*",
     "Origins allowed to call the API from a browser: * or a comma-separated list.", &config.cors_origins, 0, 0, HV_SHOW_PLAIN},
    {"realtime-url", "HELVINO_REALTIME_URL", HV_SETTING_STRING, "http://127.0.0.1:4001",
     "Base URL of helvino-realtime (http://HOST:PORT), where requests under /socket.io/ are forwarded.", &config.realtime_url, 0, 0,
     HV_SHOW_PLAIN},
    {"key-cache-size", "HELVINO_KEY_CACHE_SIZE", HV_SETTING_INT, "10000", "Org keys remembered at most.", &config.key_cache_size, 1,
     10000000, HV_SHOW_PLAIN},
    {"key-cache-ttl-ms", "HELVINO_KEY_CACHE_TTL_MS", HV_SETTING_INT, "60000",
     "How long a valid key is trusted without asking the store, in milliseconds; a revoked key works this long.",
     &config.key_cache_ttl_ms, 0, 86400000, HV_SHOW_PLAIN},
    {"key-cache-negative-ttl-ms", "HELVINO_KEY_CACHE_NEGATIVE_TTL_MS", HV_SETTING_INT, "5000",
     "How long an unknown key is remembered as invalid, in milliseconds.", &config.key_cache_negative_ttl_ms, 0, 86400000,
     HV_SHOW_PLAIN},
    {"access-log", "HELVINO_ACCESS_LOG", HV_SETTING_BOOL, "false", "Log one line per request.", &config.access_log, 0, 0,
     HV_SHOW_PLAIN},
    {"shutdown-timeout-ms", "HELVINO_GATEWAY_SHUTDOWN_TIMEOUT_MS", HV_SETTING_INT, "10000",
     "On SIGTERM, how long to wait for requests in flight, in milliseconds.", &config.shutdown_timeout_ms, 0, 3600000,
     HV_SHOW_PLAIN},
    {"metrics-listen", "HELVINO_GATEWAY_METRICS_LISTEN", HV_SETTING_STRING, "127.0.0.1:9102",
     "Loopback address (HOST:PORT) that serves GET /metrics in the Prometheus text format, or \"off\".", &config.metrics_listen, 0,
     0, HV_SHOW_PLAIN},
    {"log-level", "HELVINO_LOG_LEVEL", HV_SETTING_STRING, "info", "Least severe level logged: debug, info, warn or error.",
     &config.log_level, 0, 0, HV_SHOW_PLAIN},
};

#define SETTING_COUNT (sizeof(settings) / sizeof(settings[0]))

static h2o_globalconf_t globalconf;
static h2o_context_t context;
static h2o_accept_ctx_t accept_context;
static gateway api;
static realtime_proxy realtime;
static metrics_listener admin;
static volatile bool stopping;

static void describe_status(char *out, size_t size, void *data)
{
    (void)data;
    snprintf(out, size, "%s on %s; %zu requests in flight, %zu forwarded", stopping ? "stopping" : "serving", config.listen,
             api.exchanges, realtime.sends_in_flight);
}

static void collect_metrics(void *data)
{
    (void)data;
    metrics_collect(api.exchanges, api.store);
}

/* Opens the metrics listener unless the setting is "off". Returns 0, or a
 * negative value as metrics_listener_open does after logging why it
 * failed. Without a listener nothing is counted: the metrics stay NULL. */
static int open_admin(h2o_loop_t *loop)
{
    if (strcmp(config.metrics_listen, HV_ADMIN_OFF) != 0 && metrics_init() != 0) {
        HV_ERROR("creating the metrics failed", HV_STR("err", "out of memory"));
        return -1;
    }
    int status = metrics_listener_open(&admin, loop, config.metrics_listen, metrics.registry, collect_metrics, NULL);
    return status < 0 ? status : 0;
}

static bool requests_in_flight(void *data)
{
    (void)data;
    return api.exchanges > 0 || realtime.sends_in_flight > 0;
}

static void on_stop(const char *signal_name)
{
    HV_INFO("shutdown requested; finishing requests in flight", HV_STR("signal", signal_name), HV_INT("in_flight", api.exchanges),
            HV_INT("realtime_in_flight", realtime.sends_in_flight));
    stopping = true;
    char status[256];
    describe_status(status, sizeof(status), NULL);
    hv_notify_stopping(status);
}

int main(int argc, char **argv)
{
    hv_service_configure(settings, SETTING_COUNT, argc, argv, "helvino-gateway", "gateway", &config.log_level);
    char error[512];
    if (realtime_proxy_parse_url(&realtime, config.realtime_url, error, sizeof(error)) != 0) {
        fprintf(stderr, "helvino-gateway: %s\n", error);
        return 2;
    }
    realtime.access_log = config.access_log;
    hv_service_log_start(settings, SETTING_COUNT, "helvino-gateway", HV_VERSION);

    h2o_config_init(&globalconf);
    /* Bodies up to 16 times the limit are read and get the JSON 413 of the contract; h2o itself rejects larger ones with its own.
     */
    globalconf.max_request_entity_size = (size_t)config.max_body_bytes * 16;
    h2o_hostconf_t *hostconf = h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    realtime_proxy_register(hostconf, &realtime);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    http_register(pathconf, &api);

    h2o_loop_t *loop = h2o_evloop_create();
    h2o_context_init(&context, loop, &globalconf);
    accept_context.ctx = &context;
    accept_context.hosts = globalconf.hosts;

    void *zmq_context = zmq_ctx_new();
    api.store = store_client_new(loop, zmq_context, config.store_endpoint, (uint64_t)config.store_timeout_ms, error, sizeof(error));
    api.keys = key_cache_new((size_t)config.key_cache_size, config.key_cache_ttl_ms, config.key_cache_negative_ttl_ms);
    api.max_body_bytes = (size_t)config.max_body_bytes;
    api.cors_origins = config.cors_origins;
    api.access_log = config.access_log;
    if (!api.store || !api.keys) {
        HV_ERROR("starting the store client failed", HV_STR("err", api.store ? "out of memory" : error));
        return 1;
    }

    int opened = service_open(loop, config.listen, &accept_context, on_stop);
    if (opened == 0)
        opened = open_admin(loop);
    if (opened != 0)
        return service_exit_status(opened);

    HV_INFO("gateway ready", HV_STR("listen", config.listen), HV_STR("store", config.store_endpoint),
            HV_STR("realtime", config.realtime_url));
    service_ready(loop, describe_status, NULL);

    /* The exit closes open WebSockets and long-polling GETs instead of
     * waiting for them, and Socket.IO clients reconnect by themselves. */
    if (!service_run(loop, &stopping, requests_in_flight, NULL, config.shutdown_timeout_ms))
        HV_WARN("shutdown timeout reached; abandoning requests", HV_INT("in_flight", api.exchanges),
                HV_INT("realtime_in_flight", realtime.sends_in_flight));

    service_close();
    metrics_listener_stop(&admin);
    store_client_destroy(&api.store);
    key_cache_destroy(&api.keys);
    zmq_ctx_term(zmq_context);
    metrics_destroy();
    HV_INFO("gateway stopped", HV_INT("exit_status", 0));
    return 0;
}
