/* The admin listener of a service without an HTTP server of its own (the
 * store): a tiny non-blocking HTTP/1.x responder on a loopback address that
 * serves GET /metrics with a registry's metrics. It shows the event loop
 * one descriptor, so a zmq_poll loop can watch it next to its sockets, and
 * it never blocks: each connection carries one request, bounded in size and
 * time. hv_admin_listen opens the loopback socket for the h2o services too. */
#ifndef HV_ADMIN_HTTP_H
#define HV_ADMIN_HTTP_H

#include "hv_metrics.h"

#include <stddef.h>

/* The setting's value that turns the admin listener off. */
#define HV_ADMIN_OFF "off"

/* The content type of the metrics, Prometheus's text format 0.0.4. */
#define HV_ADMIN_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Limits of one connection: the request head, the time from accept to the
 * last byte of the response, and the connections served at once (more are
 * closed at accept). */
#define HV_ADMIN_MAX_REQUEST_BYTES 8192
#define HV_ADMIN_TIMEOUT_MS 5000
#define HV_ADMIN_MAX_CONNECTIONS 8

/* Size of the text that hv_admin_listen writes: "[<IPv6 address>]:<port>". */
#define HV_ADMIN_ADDRESS_SIZE 64

/* Return value of hv_admin_listen for an address that is malformed or not
 * on loopback. It is a setting to fix, while -1 is a failure at run time. */
#define HV_ADMIN_INVALID_ADDRESS (-2)

/* Opens a non-blocking listening socket on "HOST:PORT" ("[::1]:9101" for
 * IPv6). HOST must resolve to a loopback address (127.0.0.0/8 or ::1),
 * because the metrics are for the host's own scraper. Port 0 lets the
 * kernel choose. Writes the address bound, port included, into `bound`
 * (HV_ADMIN_ADDRESS_SIZE bytes). Returns the descriptor, or
 * HV_ADMIN_INVALID_ADDRESS or -1 with a message in `error` that names the
 * address. */
int hv_admin_listen(const char *address, char *bound, char *error, size_t error_size) __attribute__((warn_unused_result));

typedef struct hv_admin_http hv_admin_http;

/* Called before each rendering, on the thread that calls hv_admin_http_run,
 * so that the service can copy its gauges into the registry. */
typedef void (*hv_admin_collect_cb)(void *data);

/* Starts serving the metrics of `registry` on the listening descriptor
 * `listen_fd` (from hv_admin_listen), which it takes over. `collect` may be
 * NULL. The registry must outlive the responder. Returns NULL with a
 * message in `error` when out of descriptors or memory; the descriptor is
 * closed then too. */
hv_admin_http *hv_admin_http_new(int listen_fd, hv_metrics *registry, hv_admin_collect_cb collect, void *data, char *error,
                                 size_t error_size) __attribute__((warn_unused_result));

/* Closes the listener and every connection, and sets *server to NULL.
 * Accepts NULL and a pointer to NULL. */
void hv_admin_http_destroy(hv_admin_http **server);

/* The descriptor to watch for reading (POLLIN or ZMQ_POLLIN): it is
 * readable whenever hv_admin_http_run has work. */
int hv_admin_http_fd(const hv_admin_http *server);

/* Accepts, reads, responds and expires connections without blocking, as
 * far as they are ready. Call it when the descriptor is readable. */
void hv_admin_http_run(hv_admin_http *server);

#endif
