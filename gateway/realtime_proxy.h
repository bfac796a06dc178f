/* The forwarding of /socket.io/ to helvino-realtime through h2o's reverse
 * proxy, so that the widget reaches the HTTP API and Socket.IO (long-polling
 * and WebSocket) on one base URL. */
#ifndef GATEWAY_REALTIME_PROXY_H
#define GATEWAY_REALTIME_PROXY_H

#include <h2o.h>
#include <stdbool.h>

/* The path forwarded, with its trailing slash: Socket.IO's default path. */
#define REALTIME_PROXY_PATH "/socket.io/"

typedef struct {
    const char *url;    /* the service's base URL as configured */
    h2o_url_t upstream; /* the same URL with REALTIME_PROXY_PATH as its path */
    bool access_log;
    size_t sends_in_flight; /* forwarded requests other than GET and HEAD that have not finished */
    bool unreachable;       /* the last forwarded request that ended got no response from the service */
    size_t failed_requests; /* requests that failed since the service became unreachable */
} realtime_proxy;

/* Parses the real-time service's base URL, "http://HOST:PORT" with no path
 * other than "/", into proxy->url and proxy->upstream. Returns 0, or -1 with
 * a message in `error` that names the value. Both keep pointers into `url`,
 * which must outlive the proxy. */
__attribute__((warn_unused_result)) int realtime_proxy_parse_url(realtime_proxy *proxy, const char *url, char *error,
                                                                 size_t error_size);

/* Registers REALTIME_PROXY_PATH on `hostconf` and forwards requests under it,
 * WebSocket upgrades included, to proxy->upstream. Call it before registering
 * the catch-all path "/", because h2o matches paths in registration order,
 * and before h2o_context_init. */
void realtime_proxy_register(h2o_hostconf_t *hostconf, realtime_proxy *proxy);

#endif
