/* Start-up and shutdown steps that the two h2o services share: the
 * listening socket, signals delivered to the event loop, readiness and
 * watchdog notifications, and the loop that drains work at shutdown. */
#ifndef HV_LOOP_SERVICE_LOOP_H
#define HV_LOOP_SERVICE_LOOP_H

#include <h2o.h>
#include <stdbool.h>
#include <stddef.h>

/* Return value of service_listen and service_open for a malformed listen
 * address. It is a setting to fix, so the services exit 2 as for any
 * invalid setting, while -1 is a failure at run time. */
#define SERVICE_INVALID_ADDRESS (-2)

/* Returns the exit status for a failure that service_open, service_listen
 * or hv_admin_listen returned: 2 for an invalid address, as for any invalid
 * setting (the units do not restart a service that exits 2), 1 otherwise. */
int service_exit_status(int failure);

/* Opens a non-blocking listening socket on "HOST:PORT" ("[::1]:4000" for
 * IPv6). Returns the descriptor, or SERVICE_INVALID_ADDRESS or -1 with a
 * message in `error`. */
int service_listen(const char *address, char *error, size_t error_size);

/* Accepts the connections of the listening descriptor `fd` into
 * `accept_ctx`, which must outlive the listener. Returns the listener's
 * socket: closing it stops accepting. */
h2o_socket_t *service_accept(h2o_loop_t *loop, int fd, h2o_accept_ctx_t *accept_ctx);

/* Writes a STATUS line for the service manager into `out`. */
typedef void (*service_status_cb)(char *out, size_t size, void *data);

/* Called once, on the first SIGINT or SIGTERM, after the public listener
 * has closed. `signal_name` is the signal's description, for the log. */
typedef void (*service_stop_cb)(const char *signal_name);

/* Opens the public listener on `address` and accepts its connections into
 * `accept_ctx`. Blocks SIGINT and SIGTERM (see hv_service_signal_fd) and
 * reads them from the loop: the first one closes the listener, so that the
 * port frees at once, and calls `on_stop`. Returns 0, or
 * SERVICE_INVALID_ADDRESS or -1 after logging why it failed. */
int service_open(h2o_loop_t *loop, const char *address, h2o_accept_ctx_t *accept_ctx, service_stop_cb on_stop);

/* Stops the watchdog pings and the signal watch before the loop goes away. */
void service_close(void);

/* Sends READY=1 with the STATUS line that `status` writes, and starts the
 * watchdog pings (service_heartbeat_start). */
void service_ready(h2o_loop_t *loop, service_status_cb status, void *data);

/* Runs the loop until `*stopping` is set and `busy` returns false, waiting
 * at most `timeout_ms` once `*stopping` is set. Returns false when the
 * timeout cut the wait short. */
bool service_run(h2o_loop_t *loop, volatile bool *stopping, bool (*busy)(void *data), void *data, int64_t timeout_ms);

/* When the service manager set a watchdog for this process, pings it from
 * the loop at half its interval and refreshes the STATUS line each time,
 * so that a loop that hangs gets the service restarted. Does nothing
 * otherwise. Call once. */
void service_heartbeat_start(h2o_loop_t *loop, service_status_cb status, void *data);

/* Stops the pings before the loop goes away. */
void service_heartbeat_stop(void);

#endif
