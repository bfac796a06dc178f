/* Forwarding of /socket.io/ to helvino-realtime. h2o's reverse proxy does
 * the work. A handler in front of it tracks each forwarded request, so that
 * shutdown can wait for the ones that carry client data, and so that a lost
 * service is logged once per outage instead of once per request. */
#include "realtime_proxy.h"
#include "hv_log.h"
#include "hv_time.h"
#include "metrics.h"

#include <stdio.h>
#include <string.h>

/* How long the service may take to respond, in milliseconds. A long-polling
 * GET legitimately waits for the next packet, at most one Engine.IO ping
 * interval (25 s by default), so this must be well above that. */
#define IO_TIMEOUT_MS 60000

/* How long a WebSocket may stay silent, in milliseconds. Engine.IO pings
 * every 25 s and gives up after another 20 s, so a live socket is never
 * silent for more than 45 s. */
#define WEBSOCKET_TIMEOUT_MS 120000

/* How long an idle connection to the service is kept for reuse, in
 * milliseconds. It is shorter than the service's own idle timeout (h2o 2.2.5
 * closes idle HTTP/1 connections after 10 s by default), so the gateway does
 * not pick a connection that the service is about to close. */
#define KEEPALIVE_TIMEOUT_MS 2000

typedef struct {
    h2o_handler_t super;
    realtime_proxy *proxy;
} tracking_handler;

/* One forwarded request, in its h2o memory pool. */
typedef struct {
    realtime_proxy *proxy;
    h2o_req_t *req;
    int64_t started_ms;
    bool counted; /* included in proxy->sends_in_flight */
} forwarded_request;

int realtime_proxy_parse_url(realtime_proxy *proxy, const char *url, char *error, size_t error_size)
{
    h2o_url_t parsed;
    if (h2o_url_parse(url, strlen(url), &parsed) != 0) {
        snprintf(error, error_size, "invalid real-time URL \"%s\": expected http://HOST:PORT", url);
        return -1;
    }
    if (parsed.scheme != &H2O_URL_SCHEME_HTTP) {
        snprintf(error, error_size, "invalid real-time URL \"%s\": only http:// is supported", url);
        return -1;
    }
    if (h2o_url_get_port(&parsed) == 0) {
        snprintf(error, error_size, "invalid real-time URL \"%s\": the port must be 1 to 65535", url);
        return -1;
    }
    if (parsed.path.len != 1 || parsed.path.base[0] != '/') {
        snprintf(error, error_size,
                 "invalid real-time URL \"%s\": it must have no path or query, because requests keep their own %s path", url,
                 REALTIME_PROXY_PATH);
        return -1;
    }

    /* The proxy appends what follows the registered path to the upstream's
     * path, so the upstream's path is the registered one. */
    parsed.path = h2o_iovec_init(H2O_STRLIT(REALTIME_PROXY_PATH));
    proxy->upstream = parsed;
    proxy->url = url;
    return 0;
}

/* Returns the first error that h2o recorded for the request, or NULL. The
 * reverse proxy records one whenever it responds with 502 itself. */
static const char *proxy_error(h2o_req_t *req, char *out, size_t out_size)
{
    if (req->error_logs.size == 0)
        return NULL;
    h2o_iovec_t message = req->error_logs.entries[0].msg;
    snprintf(out, out_size, "%.*s", (int)message.len, message.base);
    return out;
}

static void log_access(const forwarded_request *forwarded)
{
    h2o_req_t *req = forwarded->req;
    char path[256];
    snprintf(path, sizeof(path), "%.*s", (int)req->path.len, req->path.base);
    char method[16];
    snprintf(method, sizeof(method), "%.*s", (int)req->method.len, req->method.base);
    HV_INFO("request", HV_STR("method", method), HV_STR("path", path), HV_INT("status", req->res.status),
            HV_STR("upstream", "realtime"), HV_INT("duration_ms", hv_time_monotonic_ms() - forwarded->started_ms));
}

/* Logs the service becoming unreachable and reachable again, once per change. */
static void note_outcome(realtime_proxy *proxy, h2o_req_t *req)
{
    char error[256];
    const char *failure = req->res.status >= 500 ? proxy_error(req, error, sizeof(error)) : NULL;
    if (failure) {
        proxy->failed_requests++;
        if (!proxy->unreachable)
            HV_WARN("real-time service unreachable; answering 502 until it is back", HV_STR("url", proxy->url),
                    HV_STR("err", failure));
        proxy->unreachable = true;
        return;
    }

    /* Status 0 means that the client left before any response, which is no sign of the service's state. */
    if (req->res.status != 0 && proxy->unreachable) {
        HV_INFO("real-time service reachable again", HV_STR("url", proxy->url), HV_INT("failed_requests", proxy->failed_requests));
        proxy->unreachable = false;
        proxy->failed_requests = 0;
    }
}

/* Runs when h2o frees the request: after the response, after the client
 * went away, or once a WebSocket upgrade has handed the connection over. */
static void dispose_forwarded(void *data)
{
    forwarded_request *forwarded = data;
    realtime_proxy *proxy = forwarded->proxy;
    if (forwarded->counted)
        proxy->sends_in_flight--;
    metrics_count_forwarded(forwarded->req->res.status);
    note_outcome(proxy, forwarded->req);
    if (proxy->access_log)
        log_access(forwarded);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    realtime_proxy *proxy = ((tracking_handler *)self)->proxy;
    forwarded_request *forwarded = h2o_mem_alloc_shared(&req->pool, sizeof(*forwarded), dispose_forwarded);
    *forwarded = (forwarded_request){.proxy = proxy, .req = req, .started_ms = hv_time_monotonic_ms()};

    /* Shutdown waits for a POST, because it carries packets from the client.
     * It does not wait for a GET, because a long-polling GET may wait 25 s
     * for the next packet and would hold shutdown until its timeout. */
    bool is_read = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
                   h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    if (!is_read) {
        forwarded->counted = true;
        proxy->sends_in_flight++;
    }

    /* A nonzero return passes the request on to the reverse proxy, the next handler. */
    return -1;
}

void realtime_proxy_register(h2o_hostconf_t *hostconf, realtime_proxy *proxy)
{
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, REALTIME_PROXY_PATH, 0);

    /* note_outcome logs the proxy's errors once per outage. Without this,
     * h2o would write each one to stderr in its own format. */
    pathconf->error_log.emit_request_errors = 0;

    tracking_handler *tracker = (tracking_handler *)h2o_create_handler(pathconf, sizeof(*tracker));
    tracker->super.on_req = on_req;
    tracker->proxy = proxy;

    h2o_proxy_config_vars_t vars = {
        .io_timeout = IO_TIMEOUT_MS,
        .keepalive_timeout = KEEPALIVE_TIMEOUT_MS,
        .websocket = {.enabled = 1, .timeout = WEBSOCKET_TIMEOUT_MS},
    };
    h2o_proxy_register_reverse_proxy(pathconf, &proxy->upstream, &vars);
}
