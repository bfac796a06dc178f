/* helvino-gateway as a child process of a test: it serves HTTP on a free
 * loopback port and calls the store of a store_fixture. */
#ifndef TEST_GATEWAY_FIXTURE_H
#define TEST_GATEWAY_FIXTURE_H

#include "harness.h"

#include <stdbool.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;       /* 0 once the process has exited and been reaped */
    int exit_status; /* the exit code, or 128 + the signal number, once pid is 0 */
    int port;
    char url[64];       /* "http://127.0.0.1:<port>", without a trailing slash */
    char log_path[256]; /* the gateway's standard error, in the store's folder */
} gateway_fixture;

/* Starts helvino-gateway (the binary in HELVINO_GATEWAY_BIN) against
 * `store`, on a free port of 127.0.0.1, with extra environment entries
 * ("NAME=value", NULL-terminated, or NULL for none). Then waits until
 * `GET /` returns 200. When another process takes the chosen port before
 * the gateway binds it, the gateway exits and the start is retried on a
 * new port, up to 5 times. Aborts the test when the gateway is not serving
 * within 30 s. Uses libcurl, so the caller has called curl_global_init. */
void gateway_start(gateway_fixture *gateway, const store_fixture *store, const char *const *extra_env);

/* Sends SIGTERM without waiting for the exit. */
void gateway_terminate(const gateway_fixture *gateway);

/* Waits up to `timeout_ms` for the gateway to exit. Returns its exit status
 * (128 + the signal number when a signal ended it), or -1 when it is still
 * running, in which case it is left running. */
int gateway_wait_exit(gateway_fixture *gateway, int timeout_ms);

/* Sends SIGTERM and waits up to 15 s. Returns the exit status, or -1 when
 * the gateway did not exit in time (it is then killed). Returns the status
 * recorded earlier when the process has exited already. */
int gateway_stop(gateway_fixture *gateway);

/* Returns whether the process is still running. Reaps it when it has
 * exited, so that gateway_stop returns its status afterwards. */
bool gateway_is_running(gateway_fixture *gateway);

/* Returns the number of lines of the gateway's log that contain `text`. */
int gateway_log_count(const gateway_fixture *gateway, const char *text);

/* Waits up to `timeout_ms` until the gateway's log has a line containing
 * `text`. Returns whether it did. */
bool gateway_wait_for_log(const gateway_fixture *gateway, const char *text, int timeout_ms);

/* Starts helvino-store again on the endpoints and the log file of `store`,
 * which store_stop has stopped, so that clients still connected to those
 * endpoints reach the new process. Then waits until it is ready, as
 * store_start does. The new process gets `extra_env` (NULL for none). */
void store_restart(store_fixture *store, const char *const *extra_env);

#endif
