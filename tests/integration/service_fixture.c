/* Child processes of the tests: the start on a free loopback port with its
 * retries, the readiness wait, and the stop, all with bounds. */
#include "service_fixture.h"
#include "harness.h"
#include "hv_time.h"

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

/* The maximum number of entries that service_start takes in `variables`. */
#define MAX_VARIABLES 15

/* Numbers the log files, as one test may start several processes. */
static unsigned started_count;

static void pause_briefly(void)
{
    struct timespec pause = {.tv_nsec = POLL_INTERVAL_NS};
    nanosleep(&pause, NULL);
}

const char *service_binary_path(const char *name)
{
    const char *value = getenv(name);
    if (!value || !*value)
        cr_assert_fail("%s is not set; run the integration tests through meson test", name);
    return value;
}

pid_t service_spawn(const char *binary, const char *log_path, const char *const *variables, const char *const *extra_env,
                    int death_signal)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork failed: %s", strerror(errno));
    if (pid != 0)
        return pid;

    /* The parent may have died before prctl ran, which getppid shows. */
    prctl(PR_SET_PDEATHSIG, death_signal);
    if (getppid() != parent)
        _exit(127);

    for (const char *const *entry = variables; entry && *entry; entry++)
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

/* Kills the process and waits for it, when a start or a stop went wrong. */
static void kill_and_reap(service_fixture *service)
{
    kill(service->pid, SIGKILL);
    waitpid(service->pid, NULL, 0);
    service->pid = 0;
    service->exit_status = -1;
}

/* Waits until the service serves. Returns false when it exited first, and
 * aborts the test when it does neither within START_TIMEOUT_MS. */
static bool wait_until_serving(service_fixture *service, const service_kind *kind)
{
    int64_t deadline = hv_time_monotonic_ms() + START_TIMEOUT_MS;
    while (hv_time_monotonic_ms() < deadline) {
        if (!service_is_running(service))
            return false;
        if (service_log_count(service, kind->ready_log) > 0 && kind->probe(service))
            return true;
        pause_briefly();
    }
    kill_and_reap(service);
    cr_assert_fail("%s did not serve %s within %d ms; see %s", kind->name, kind->probe_name, START_TIMEOUT_MS, service->log_path);
    return false;
}

void service_start(service_fixture *service, const service_kind *kind, const char *log_folder, const char *const *variables,
                   const char *const *extra_env)
{
    const char *binary = service_binary_path(kind->binary_variable);
    memset(service, 0, sizeof(*service));
    service->name = kind->name;
    snprintf(service->log_path, sizeof(service->log_path), "%s/%s.%u.log", log_folder, kind->log_name, ++started_count);

    /* The listen setting comes first, so that `variables` and `extra_env`
     * can override it. */
    char listen_variable[128];
    const char *all_variables[MAX_VARIABLES + 2] = {listen_variable};
    size_t variable_count = 0;
    for (; variables && variables[variable_count]; variable_count++) {
        cr_assert_lt(variable_count, MAX_VARIABLES, "service_start takes up to %d variables", MAX_VARIABLES);
        all_variables[variable_count + 1] = variables[variable_count];
    }

    for (int attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
        service->port = pick_free_port();
        snprintf(service->url, sizeof(service->url), "http://127.0.0.1:%d", service->port);
        snprintf(listen_variable, sizeof(listen_variable), "%s=127.0.0.1:%d", kind->listen_variable, service->port);

        int taken_count = service_log_count(service, kind->port_taken_log);
        service->pid = service_spawn(binary, service->log_path, all_variables, extra_env, SIGKILL);
        if (wait_until_serving(service, kind))
            return;

        /* Another process took the port between pick_free_port and the
         * service's bind: try a new one. Any other exit is a failure. */
        if (service_log_count(service, kind->port_taken_log) == taken_count)
            cr_assert_fail("%s exited with status %d during start; see %s", kind->name, service->exit_status, service->log_path);
        cr_log_info("port %d was taken before %s bound it; retrying", service->port, kind->name);
    }
    cr_assert_fail("%s found no free port in %d attempts; see %s", kind->name, START_ATTEMPTS, service->log_path);
}

void service_terminate(const service_fixture *service)
{
    if (service->pid > 0)
        kill(service->pid, SIGTERM);
}

bool service_is_running(service_fixture *service)
{
    if (service->pid <= 0)
        return false;
    int status = 0;
    pid_t done = waitpid(service->pid, &status, WNOHANG);
    if (done == 0)
        return true;

    if (done == service->pid)
        service->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    else
        service->exit_status = -1;
    service->pid = 0;
    return false;
}

int service_wait_exit(service_fixture *service, int timeout_ms)
{
    int64_t deadline = hv_time_monotonic_ms() + timeout_ms;
    while (service_is_running(service)) {
        if (hv_time_monotonic_ms() >= deadline)
            return -1;
        pause_briefly();
    }
    return service->exit_status;
}

int service_stop(service_fixture *service)
{
    if (service->pid <= 0)
        return service->exit_status;

    service_terminate(service);
    int status = service_wait_exit(service, STOP_TIMEOUT_MS);
    if (status != -1)
        return status;

    kill_and_reap(service);
    return -1;
}

void service_expect_clean_stop(service_fixture *service)
{
    if (service->pid <= 0)
        return;
    int status = service_stop(service);
    cr_expect_eq(status, 0, "%s exited with status %d on SIGTERM, not 0; see %s", service->name, status, service->log_path);
}

int service_connect(const service_fixture *service)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0, "socket failed: %s", strerror(errno));
    struct sockaddr_in address = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)service->port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
        int saved_errno = errno;
        close(fd);
        cr_assert_fail("connecting to %s on port %d failed: %s", service->name, service->port, strerror(saved_errno));
    }
    return fd;
}

void service_send(const service_fixture *service, int fd, const void *data, size_t len)
{
    const char *bytes = data;
    for (size_t sent = 0; sent < len;) {
        ssize_t written = send(fd, bytes + sent, len - sent, MSG_NOSIGNAL);
        cr_assert_gt(written, 0, "sending to %s failed: %s", service->name, strerror(errno));
        sent += (size_t)written;
    }
}

int service_log_count(const service_fixture *service, const char *text)
{
    return file_count_lines(service->log_path, text);
}

bool service_wait_for_log(const service_fixture *service, const char *text, int timeout_ms)
{
    int64_t deadline = hv_time_monotonic_ms() + timeout_ms;
    while (service_log_count(service, text) == 0) {
        if (hv_time_monotonic_ms() >= deadline)
            return false;
        pause_briefly();
    }
    return true;
}
