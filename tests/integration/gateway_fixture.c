/* helvino-gateway as a child process of a test, and a store restart on the
 * same endpoints for tests that take the store away from a running
 * gateway. */
#include "gateway_fixture.h"
#include "hv_store_call.h"
#include "hv_time.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
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

/* The line main.c logs when binding the HTTP port failed, and the one it
 * logs once it listens. */
#define LISTEN_FAILED_LOG "opening the HTTP listener failed"
#define READY_LOG "gateway ready"

/* Numbers the log files, as one test may start several gateways. */
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
 * environment (both "NAME=value" lists, NULL-terminated, the second may be
 * NULL), and its standard output and error appended to `log_path`. The
 * child gets `death_signal` when the test process dies. */
static pid_t spawn(const char *binary, const char *log_path, const char *const *variables, const char *const *extra_env,
                   int death_signal)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork failed: %s", strerror(errno));
    if (pid != 0)
        return pid;

    /* A test that crashes or times out must not leave its servers running.
     * The parent may have died before prctl ran, which getppid shows. */
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

static size_t discard_body(char *data, size_t size, size_t count, void *user)
{
    (void)data;
    (void)user;
    return size * count;
}

static bool root_returns_200(const gateway_fixture *gateway)
{
    char url[96];
    snprintf(url, sizeof(url), "%s/", gateway->url);

    CURL *curl = curl_easy_init();
    cr_assert_not_null(curl, "curl_easy_init failed");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard_body);
    CURLcode code = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    return code == CURLE_OK && status == 200;
}

/* Waits until the gateway serves `GET /`. Returns false when it exited
 * first, and aborts the test when it does neither within START_TIMEOUT_MS.
 * A "gateway ready" line must come first, so that a 200 from another
 * process that has bound the port cannot pass for this gateway's. */
static bool wait_until_serving(gateway_fixture *gateway)
{
    int64_t deadline = hv_time_monotonic_ms() + START_TIMEOUT_MS;
    while (hv_time_monotonic_ms() < deadline) {
        if (!gateway_is_running(gateway))
            return false;
        if (gateway_log_count(gateway, READY_LOG) > 0 && root_returns_200(gateway))
            return true;
        pause_briefly();
    }
    kill(gateway->pid, SIGKILL);
    waitpid(gateway->pid, NULL, 0);
    gateway->pid = 0;
    cr_assert_fail("helvino-gateway did not serve GET / within %d ms; see %s", START_TIMEOUT_MS, gateway->log_path);
    return false;
}

void gateway_start(gateway_fixture *gateway, const store_fixture *store, const char *const *extra_env)
{
    const char *binary = required_env("HELVINO_GATEWAY_BIN");
    memset(gateway, 0, sizeof(*gateway));
    snprintf(gateway->log_path, sizeof(gateway->log_path), "%s/gateway.%u.log", store->dir, ++started_count);

    for (int attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
        gateway->port = pick_free_port();
        snprintf(gateway->url, sizeof(gateway->url), "http://127.0.0.1:%d", gateway->port);

        char listen_variable[64];
        char store_variable[256];
        snprintf(listen_variable, sizeof(listen_variable), "HELVINO_HTTP_LISTEN=127.0.0.1:%d", gateway->port);
        snprintf(store_variable, sizeof(store_variable), "HELVINO_STORE_ENDPOINT=%s", store->store_endpoint);
        const char *variables[] = {listen_variable, store_variable, "HELVINO_LOG_LEVEL=debug", NULL};

        int listen_failures = gateway_log_count(gateway, LISTEN_FAILED_LOG);
        gateway->pid = spawn(binary, gateway->log_path, variables, extra_env, SIGKILL);
        if (wait_until_serving(gateway))
            return;

        /* Another process took the port between pick_free_port and the
         * gateway's bind: try a new one. Any other exit is a failure. */
        if (gateway_log_count(gateway, LISTEN_FAILED_LOG) == listen_failures)
            cr_assert_fail("helvino-gateway exited with status %d during start; see %s", gateway->exit_status, gateway->log_path);
        cr_log_info("port %d was taken before helvino-gateway bound it; retrying", gateway->port);
    }
    cr_assert_fail("helvino-gateway found no free port in %d attempts; see %s", START_ATTEMPTS, gateway->log_path);
}

void gateway_terminate(const gateway_fixture *gateway)
{
    if (gateway->pid > 0)
        kill(gateway->pid, SIGTERM);
}

bool gateway_is_running(gateway_fixture *gateway)
{
    if (gateway->pid <= 0)
        return false;
    int status = 0;
    pid_t done = waitpid(gateway->pid, &status, WNOHANG);
    if (done == 0)
        return true;

    if (done == gateway->pid)
        gateway->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    else
        gateway->exit_status = -1;
    gateway->pid = 0;
    return false;
}

int gateway_wait_exit(gateway_fixture *gateway, int timeout_ms)
{
    int64_t deadline = hv_time_monotonic_ms() + timeout_ms;
    while (gateway_is_running(gateway)) {
        if (hv_time_monotonic_ms() >= deadline)
            return -1;
        pause_briefly();
    }
    return gateway->exit_status;
}

int gateway_stop(gateway_fixture *gateway)
{
    if (gateway->pid <= 0)
        return gateway->exit_status;

    gateway_terminate(gateway);
    int status = gateway_wait_exit(gateway, STOP_TIMEOUT_MS);
    if (status != -1)
        return status;

    kill(gateway->pid, SIGKILL);
    waitpid(gateway->pid, NULL, 0);
    gateway->pid = 0;
    gateway->exit_status = -1;
    return -1;
}

int gateway_log_count(const gateway_fixture *gateway, const char *text)
{
    return file_count_lines(gateway->log_path, text);
}

bool gateway_wait_for_log(const gateway_fixture *gateway, const char *text, int timeout_ms)
{
    int64_t deadline = hv_time_monotonic_ms() + timeout_ms;
    while (gateway_log_count(gateway, text) == 0) {
        if (hv_time_monotonic_ms() >= deadline)
            return false;
        pause_briefly();
    }
    return true;
}

void store_restart(store_fixture *store, const char *const *extra_env)
{
    cr_assert_eq(store->pid, 0, "store_restart needs a store that store_stop has stopped");

    char store_variable[256];
    char events_variable[256];
    snprintf(store_variable, sizeof(store_variable), "HELVINO_STORE_ENDPOINT=%s", store->store_endpoint);
    snprintf(events_variable, sizeof(events_variable), "HELVINO_EVENTS_ENDPOINT=%s", store->events_endpoint);
    const char *variables[] = {store_variable, events_variable, "HELVINO_LOG_LEVEL=debug", NULL};
    store->pid = spawn(required_env("HELVINO_STORE_BIN"), store->log_path, variables, extra_env, SIGTERM);

    /* store_stop closed the test's own connection; store_wait_ready and
     * store_call need a new one. */
    store->context = zmq_ctx_new();
    store->dealer = hv_store_connect(store->context, store->store_endpoint);
    cr_assert_not_null(store->dealer);
    store_wait_ready(store);
}
