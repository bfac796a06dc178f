/* A Helvino service binary as a child process of a test: started on a free
 * loopback port with extra environment entries, stopped with SIGTERM, and
 * watched through its log, with raw TCP connections for the tests that
 * need them. gateway_fixture.c and realtime_fixture.c start the HTTP
 * services with it, and store_restart uses service_spawn. */
#ifndef TEST_SERVICE_FIXTURE_H
#define TEST_SERVICE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct service_fixture service_fixture;

/* How to start one service and tell that it serves. */
typedef struct {
    const char *name;            /* the binary's name, for messages: "helvino-gateway" */
    const char *binary_variable; /* the environment variable with the binary's path, which meson test sets */
    const char *listen_variable; /* the setting that gets "127.0.0.1:<port>" */
    const char *log_name;        /* the log files are <log folder>/<log_name>.<n>.log */
    const char *ready_log;       /* text of the line that the service logs once it listens */
    const char *port_taken_log;  /* text that the service logs when binding the port failed */
    const char *probe_name;      /* the request that `probe` sends, for messages: "GET /" */
    /* Returns whether the service responds to a request as a serving one
     * does. It must not call Criterion's asserts. */
    bool (*probe)(const service_fixture *service);
} service_kind;

struct service_fixture {
    const char *name;   /* the kind's name, for messages */
    pid_t pid;          /* 0 once the process has exited and been reaped */
    int exit_status;    /* the exit code, or 128 + the signal number, once pid is 0 */
    int port;           /* the port of 127.0.0.1 the service listens on */
    char url[64];       /* "http://127.0.0.1:<port>", without a trailing slash */
    char log_path[256]; /* the service's standard output and error */
};

/* Starts the binary that `kind` names on a free port of 127.0.0.1, with
 * its log in `log_folder`. The process gets `variables`, then `extra_env`,
 * added to its environment ("NAME=value" lists, NULL-terminated; either may
 * be NULL), and later entries override earlier ones. Then waits until the
 * service has logged kind->ready_log and kind->probe succeeds. The ready
 * line must come first, so that a response from another process that has
 * bound the port cannot pass for this one's.
 *
 * When another process takes the chosen port before the service binds it,
 * the service logs kind->port_taken_log and exits, and the start is retried
 * on a new port, up to 5 times. Any other exit during the start, or no
 * successful probe within 30 s, aborts the test. */
void service_start(service_fixture *service, const service_kind *kind, const char *log_folder, const char *const *variables,
                   const char *const *extra_env);

/* Sends SIGTERM without waiting for the exit. */
void service_terminate(const service_fixture *service);

/* Waits up to `timeout_ms` for the process to exit. Returns its exit status
 * (128 + the signal number when a signal ended it), or -1 when it is still
 * running, in which case it is left running. */
int service_wait_exit(service_fixture *service, int timeout_ms);

/* Sends SIGTERM and waits up to 15 s. Returns the exit status, or -1 when
 * the process did not exit in time (it is then killed). Returns the status
 * recorded earlier when the process has exited already. */
int service_stop(service_fixture *service);

/* Stops a service that is still running, as service_stop does, and fails
 * the test without ending it (cr_expect) unless it exits 0. Does nothing
 * for a service that has exited already, for a suite's fini. */
void service_expect_clean_stop(service_fixture *service);

/* Returns whether the process is still running. Reaps it when it has
 * exited, so that service_stop returns its status afterwards. */
bool service_is_running(service_fixture *service);

/* Returns the number of lines of the service's log that contain `text`. */
int service_log_count(const service_fixture *service, const char *text);

/* Waits up to `timeout_ms` until the log has a line containing `text`.
 * Returns whether it did. */
bool service_wait_for_log(const service_fixture *service, const char *text, int timeout_ms);

/* Opens a TCP connection to the service's port of 127.0.0.1 and returns
 * the socket, which the caller closes. Aborts the test when the connection
 * fails. */
int service_connect(const service_fixture *service);

/* Writes all `len` bytes of `data` to `fd`, a connection to the service.
 * Aborts the test when a send fails. */
void service_send(const service_fixture *service, int fd, const void *data, size_t len);

/* Returns the value of the environment variable `name`, which meson test
 * sets to the path of a binary. Aborts the test when it is not set. */
const char *service_binary_path(const char *name);

/* Forks and runs `binary` as service_start does, with its standard output
 * and error appended to `log_path`, and returns its process id. The child
 * gets `death_signal` when the test process dies, so that a test that
 * crashes or times out leaves no server behind. */
pid_t service_spawn(const char *binary, const char *log_path, const char *const *variables, const char *const *extra_env,
                    int death_signal);

#endif
