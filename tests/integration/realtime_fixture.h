/* helvino-realtime as a child process of a test: it serves Socket.IO on a
 * free loopback port and uses the store of a store_fixture for keys and
 * events. */
#ifndef TEST_REALTIME_FIXTURE_H
#define TEST_REALTIME_FIXTURE_H

#include "harness.h"

#include <stdbool.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;       /* 0 once the process has exited and been reaped */
    int exit_status; /* the exit code, or 128 + the signal number, once pid is 0 */
    int port;
    char url[64];       /* "http://127.0.0.1:<port>", without a trailing slash */
    char log_path[256]; /* the service's standard error, in the store's folder */
} realtime_fixture;

/* Starts helvino-realtime (the binary in HELVINO_REALTIME_BIN) against the
 * request and event endpoints of `store`, on a free port of 127.0.0.1.
 * `extra_env` lists more environment entries ("NAME=value", NULL-terminated,
 * or NULL for none), which override the fixture's own. Then waits until the
 * service has logged "realtime ready" and returns 200 to an Engine.IO
 * polling handshake. When the process exits during the start because it
 * could not bind the port, the start is retried on a new port, up to 5
 * times. Aborts the test when the service is not serving within 30 s. Uses
 * libcurl, so the caller has called curl_global_init. */
void realtime_start(realtime_fixture *realtime, const store_fixture *store, const char *const *extra_env);

/* Sends SIGTERM without waiting for the exit. */
void realtime_terminate(const realtime_fixture *realtime);

/* Waits up to `timeout_ms` for the process to exit. Returns its exit status
 * (128 + the signal number when a signal ended it), or -1 when it is still
 * running, in which case it is left running. */
int realtime_wait_exit(realtime_fixture *realtime, int timeout_ms);

/* Sends SIGTERM and waits up to 15 s. Returns the exit status, or -1 when
 * the process did not exit in time (it is then killed). Returns the status
 * recorded earlier when the process has exited already. */
int realtime_stop(realtime_fixture *realtime);

/* Returns whether the process is still running. Reaps it when it has
 * exited, so that realtime_stop returns its status afterwards. */
bool realtime_is_running(realtime_fixture *realtime);

/* Returns the number of lines of the service's log that contain `text`. */
int realtime_log_count(const realtime_fixture *realtime, const char *text);

/* Waits up to `timeout_ms` until the log has a line containing `text`.
 * Returns whether it did. */
bool realtime_wait_for_log(const realtime_fixture *realtime, const char *text, int timeout_ms);

#endif
