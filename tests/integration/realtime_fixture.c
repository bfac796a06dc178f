/* helvino-realtime as a child process of a test, started on a free loopback
 * port against a store_fixture's endpoints. */
#include "realtime_fixture.h"
#include "hv_time.h"
#include "ws_client.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_ATTEMPTS 5
#define START_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS 15000
#define POLL_INTERVAL_NS (10 * 1000 * 1000)

/* The line the service logs once it serves, and the strerror(EADDRINUSE)
 * text that a failed bind puts in its error line. */
#define READY_LOG "realtime ready"
#define PORT_TAKEN_LOG "Address already in use"

/* Numbers the log files, as one test may start several processes. */
static unsigned started_count;

static const char *required_env(const char *name)
{
    const char *value = getenv(name);
    if (!value || !*value)
        cr_assert_fail("%s is not set; run the integration tests through meson test", name);
    return value;
}

static void pause_briefly(void)
{
    struct timespec pause = {.tv_nsec = POLL_INTERVAL_NS};
    nanosleep(&pause, NULL);
}

/* Forks and runs `binary` with `variables`, then `extra_env`, added to its
 * environment, and its standard output and error appended to `log_path`.
 * The child gets SIGKILL when the test process dies, so that a test that
 * crashes or times out leaves no server behind. */
static pid_t spawn(const char *binary, const char *log_path, const char *const *variables, const char *const *extra_env)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork failed: %s", strerror(errno));
    if (pid != 0)
        return pid;

    /* The parent may have died before prctl ran, which getppid shows. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);

    for (const char *const *entry = variables; *entry; entry++)
        putenv((char *)*entry);
    for (const char *const *entry = extra_env; entry && *entry; entry++)
        putenv((char *)*entry);

    int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (log >= 0) {
        dup2(log, STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
        close(log);
    }
    execl(binary, binary, (char *)NULL);
    _exit(127);
}

/* Returns a port of 127.0.0.1 that was free a moment ago: the kernel picks
 * one for a socket bound to port 0, and the socket is closed again. */
static int pick_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0, "socket failed: %s", strerror(errno));

    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t address_len = sizeof(address);
    int bound = bind(fd, (struct sockaddr *)&address, sizeof(address));
    int named = bound == 0 ? getsockname(fd, (struct sockaddr *)&address, &address_len) : -1;
    int saved_errno = errno;
    close(fd);
    cr_assert_eq(named, 0, "finding a free port failed: %s", strerror(saved_errno));
    return ntohs(address.sin_port);
}

/* Returns whether an Engine.IO handshake gets 200 and an open packet. The
 * session it opens is closed again with a close packet. */
static bool handshake_succeeds(const realtime_fixture *realtime)
{
    polling_session session;
    char error[256];
    if (polling_open(&session, realtime->url, NULL, error, sizeof(error)) != 0)
        return false;
    http_result closed;
    polling_post(&session, "1", 1, &closed);
    http_result_release(&closed);
    return true;
}

/* Waits until the service serves. Returns false when it exited first, and
 * aborts the test when it does neither within START_TIMEOUT_MS. The ready
 * line must come first, so that a response from another process that has
 * bound the port cannot pass for this one's. */
static bool wait_until_serving(realtime_fixture *realtime)
{
    int64_t deadline = hv_time_monotonic_ms() + START_TIMEOUT_MS;
    while (hv_time_monotonic_ms() < deadline) {
        if (!realtime_is_running(realtime))
            return false;
        if (realtime_log_count(realtime, READY_LOG) > 0 && handshake_succeeds(realtime))
            return true;
        pause_briefly();
    }
    kill(realtime->pid, SIGKILL);
    waitpid(realtime->pid, NULL, 0);
    realtime->pid = 0;
    cr_assert_fail("helvino-realtime did not serve the polling handshake within %d ms; see %s", START_TIMEOUT_MS,
                   realtime->log_path);
    return false;
}

void realtime_start(realtime_fixture *realtime, const store_fixture *store, const char *const *extra_env)
{
    const char *binary = required_env("HELVINO_REALTIME_BIN");
    memset(realtime, 0, sizeof(*realtime));
    snprintf(realtime->log_path, sizeof(realtime->log_path), "%s/realtime.%u.log", store->dir, ++started_count);

    for (int attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
        realtime->port = pick_free_port();
        snprintf(realtime->url, sizeof(realtime->url), "http://127.0.0.1:%d", realtime->port);

        char listen_variable[64];
        char store_variable[256];
        char events_variable[256];
        snprintf(listen_variable, sizeof(listen_variable), "HELVINO_REALTIME_LISTEN=127.0.0.1:%d", realtime->port);
        snprintf(store_variable, sizeof(store_variable), "HELVINO_STORE_ENDPOINT=%s", store->store_endpoint);
        snprintf(events_variable, sizeof(events_variable), "HELVINO_EVENTS_ENDPOINT=%s", store->events_endpoint);
        const char *variables[] = {listen_variable, store_variable, events_variable, "HELVINO_LOG_LEVEL=debug", NULL};

        int taken_count = realtime_log_count(realtime, PORT_TAKEN_LOG);
        realtime->pid = spawn(binary, realtime->log_path, variables, extra_env);
        if (wait_until_serving(realtime))
            return;

        /* Another process took the port between pick_free_port and the
         * service's bind: try a new one. Any other exit is a failure. */
        if (realtime_log_count(realtime, PORT_TAKEN_LOG) == taken_count)
            cr_assert_fail("helvino-realtime exited with status %d during start; see %s", realtime->exit_status,
                           realtime->log_path);
        cr_log_info("port %d was taken before helvino-realtime bound it; retrying", realtime->port);
    }
    cr_assert_fail("helvino-realtime found no free port in %d attempts; see %s", START_ATTEMPTS, realtime->log_path);
}

void realtime_terminate(const realtime_fixture *realtime)
{
    if (realtime->pid > 0)
        kill(realtime->pid, SIGTERM);
}

bool realtime_is_running(realtime_fixture *realtime)
{
    if (realtime->pid <= 0)
        return false;
    int status = 0;
    pid_t done = waitpid(realtime->pid, &status, WNOHANG);
    if (done == 0)
        return true;

    if (done == realtime->pid)
        realtime->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    else
        realtime->exit_status = -1;
    realtime->pid = 0;
    return false;
}

int realtime_wait_exit(realtime_fixture *realtime, int timeout_ms)
{
    int64_t deadline = hv_time_monotonic_ms() + timeout_ms;
    while (realtime_is_running(realtime)) {
        if (hv_time_monotonic_ms() >= deadline)
            return -1;
        pause_briefly();
    }
    return realtime->exit_status;
}

int realtime_stop(realtime_fixture *realtime)
{
    if (realtime->pid <= 0)
        return realtime->exit_status;

    realtime_terminate(realtime);
    int status = realtime_wait_exit(realtime, STOP_TIMEOUT_MS);
    if (status != -1)
        return status;

    kill(realtime->pid, SIGKILL);
    waitpid(realtime->pid, NULL, 0);
    realtime->pid = 0;
    realtime->exit_status = -1;
    return -1;
}

int realtime_log_count(const realtime_fixture *realtime, const char *text)
{
    return file_count_lines(realtime->log_path, text);
}

bool realtime_wait_for_log(const realtime_fixture *realtime, const char *text, int timeout_ms)
{
    int64_t deadline = hv_time_monotonic_ms() + timeout_ms;
    while (realtime_log_count(realtime, text) == 0) {
        if (hv_time_monotonic_ms() >= deadline)
            return false;
        pause_briefly();
    }
    return true;
}
