/* The admin listener of the h2o services: GET /metrics on a loopback
 * address, served by a second h2o context on the service's own event loop,
 * apart from the public listener's settings and handlers. */
#ifndef HV_LOOP_METRICS_LISTENER_H
#define HV_LOOP_METRICS_LISTENER_H

#include "hv_admin_http.h"
#include "hv_metrics.h"

#include <h2o.h>

/* The caller provides the storage, with static duration in practice: h2o
 * cannot dispose a context that still has connections, so the listener's
 * configuration stays until the process exits. */
typedef struct {
    h2o_globalconf_t globalconf;
    h2o_context_t context;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *socket; /* the listening socket, NULL once stopped */
    hv_metrics *registry;
    hv_admin_collect_cb collect;
    void *data;
} metrics_listener;

/* Listens on `address` (a loopback "HOST:PORT", see hv_admin_listen) and
 * serves GET and HEAD /metrics with the metrics of `registry`, after
 * calling `collect` (which may be NULL) on the loop's thread. Other paths
 * get 404, other methods 405. Writes the address bound into `bound`
 * (HV_ADMIN_ADDRESS_SIZE bytes). Returns 0, or -1 with a message in
 * `error`, or HV_ADMIN_INVALID_ADDRESS when the address is malformed or not
 * on loopback. The registry must outlive the listener. */
int metrics_listener_start(metrics_listener *listener, h2o_loop_t *loop, const char *address, hv_metrics *registry,
                           hv_admin_collect_cb collect, void *data, char *bound, char *error, size_t error_size)
    __attribute__((warn_unused_result));

/* Opens the listener as metrics_listener_start does unless `address` is
 * "off", and logs the outcome. Returns 1 when off, 0 when serving, or
 * after logging why it failed HV_ADMIN_INVALID_ADDRESS or -1. */
int metrics_listener_open(metrics_listener *listener, h2o_loop_t *loop, const char *address, hv_metrics *registry,
                          hv_admin_collect_cb collect, void *data) __attribute__((warn_unused_result));

/* Closes the listening socket; connections open at that moment are served
 * until they end or the process exits. Does nothing when not started. */
void metrics_listener_stop(metrics_listener *listener);

#endif
