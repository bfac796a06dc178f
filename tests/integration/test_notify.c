/* Integration tests of the services' systemd notifications: each one sends
 * READY=1 on the NOTIFY_SOCKET the test provides only once it serves,
 * pings WATCHDOG=1 when WATCHDOG_USEC is set and not otherwise, and sends
 * STOPPING=1 on SIGTERM. */
#include "harness.h"
#include "hv_time.h"
#include "service_fixture.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* The watchdog interval given to the services: they ping at half of it. */
#define WATCHDOG_USEC 400000
#define READY_TIMEOUT_MS 30000

static store_fixture store;
static int notify_fd = -1;
static char notify_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

static void open_notify_socket(void)
{
    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(notify_fd, 0);
    int len = snprintf(notify_path, sizeof(notify_path), "%.100s/notify", store.dir);
    cr_assert_lt((size_t)len, sizeof(notify_path), "the store's folder %s is too long for a socket path", store.dir);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    memcpy(address.sun_path, notify_path, (size_t)len + 1);
    cr_assert_eq(bind(notify_fd, (struct sockaddr *)&address, sizeof(address)), 0, "binding %s: %s", notify_path,
                 strerror(errno));
}

static void setup(void)
{
    store_start(&store, NULL);
    open_notify_socket();
}

static void teardown(void)
{
    if (notify_fd >= 0)
        close(notify_fd);
    store_stop(&store);
}

TestSuite(notify, .init = setup, .fini = teardown, .timeout = 120);

/* Reads the next notification into `out`, waiting up to `timeout_ms`.
 * Returns false when none came. */
static bool next_notification(char *out, size_t size, int timeout_ms)
{
    struct timeval wait = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(notify_fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
    ssize_t len = recv(notify_fd, out, size - 1, 0);
    if (len < 0)
        return false;
    out[len] = '\0';
    return true;
}

/* Returns whether the notification has the line `line`, such as "READY=1". */
static bool has_line(const char *notification, const char *line)
{
    size_t len = strlen(line);
    for (const char *at = notification; (at = strstr(at, line)); at += len)
        if ((at == notification || at[-1] == '\n') && (at[len] == '\0' || at[len] == '\n'))
            return true;
    return false;
}

/* Waits for a notification with `line` and returns it in `out`; fails the
 * test when none comes within `timeout_ms`. */
static void expect_notification(const char *line, char *out, size_t size, int timeout_ms)
{
    int64_t deadline = hv_time_monotonic_ms() + timeout_ms;
    while (hv_time_monotonic_ms() < deadline) {
        if (next_notification(out, size, 100) && has_line(out, line))
            return;
    }
    cr_assert_fail("no %s within %d ms", line, timeout_ms);
}

/* Counts the WATCHDOG=1 notifications during `window_ms`. */
static int count_watchdog_pings(int window_ms)
{
    int pings = 0;
    int64_t deadline = hv_time_monotonic_ms() + window_ms;
    char notification[1024];
    while (hv_time_monotonic_ms() < deadline)
        if (next_notification(notification, sizeof(notification), 50) && has_line(notification, "WATCHDOG=1"))
            pings++;
    return pings;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t size = sizeof(address);
    cr_assert_eq(bind(fd, (struct sockaddr *)&address, sizeof(address)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&address, &size), 0);
    close(fd);
    return ntohs(address.sin_port);
}

/* Sends `request` to the port and returns whether the reply's status line
 * is "HTTP/1.1 200". */
static bool http_ok(int port, const char *request)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval wait = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
    char reply[64] = "";
    if (connect(fd, (struct sockaddr *)&address, sizeof(address)) == 0 && send(fd, request, strlen(request), MSG_NOSIGNAL) > 0)
        (void)!recv(fd, reply, sizeof(reply) - 1, 0);
    close(fd);
    return strncmp(reply, "HTTP/1.1 200", 12) == 0;
}

typedef struct {
    const char *binary_variable;
    const char *listen_variable;
    const char *probe; /* an HTTP/1.1 request to which a serving instance responds 200 */
} http_service;

static const http_service gateway = {"HELVINO_GATEWAY_BIN", "HELVINO_HTTP_LISTEN",
                                     "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"};
static const http_service realtime = {"HELVINO_REALTIME_BIN", "HELVINO_REALTIME_LISTEN",
                                      "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"};

/* Starts an HTTP service with the notify socket and `watchdog` ("" for
 * none), and returns its process id and port. */
static pid_t spawn_http_service(const http_service *kind, const char *watchdog, int *port, const char *log_name)
{
    *port = free_port();
    char listen[64], notify[256], store_endpoint[256], events_endpoint[256], watchdog_usec[64], log_path[256];
    snprintf(listen, sizeof(listen), "%s=127.0.0.1:%d", kind->listen_variable, *port);
    snprintf(notify, sizeof(notify), "NOTIFY_SOCKET=%s", notify_path);
    snprintf(store_endpoint, sizeof(store_endpoint), "HELVINO_STORE_ENDPOINT=%s", store.store_endpoint);
    snprintf(events_endpoint, sizeof(events_endpoint), "HELVINO_EVENTS_ENDPOINT=%s", store.events_endpoint);
    snprintf(watchdog_usec, sizeof(watchdog_usec), "WATCHDOG_USEC=%s", watchdog);
    snprintf(log_path, sizeof(log_path), "%s/%s.log", store.dir, log_name);
    const char *env[] = {listen, notify, store_endpoint, events_endpoint, watchdog[0] ? watchdog_usec : NULL, NULL};
    return service_spawn(service_binary_path(kind->binary_variable), log_path, env, NULL, SIGKILL);
}

/* Waits up to 15 s for `pid` to exit and returns its exit status, or -1
 * when it did not (it is then killed). It keeps reading notifications
 * meanwhile: a service blocks on a notify socket whose queue is full, as
 * it would with a service manager that stopped reading. */
static int wait_exit(pid_t pid)
{
    char notification[1024];
    int64_t deadline = hv_time_monotonic_ms() + 15000;
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (hv_time_monotonic_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        next_notification(notification, sizeof(notification), 50);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int stop_and_wait(pid_t pid)
{
    kill(pid, SIGTERM);
    return wait_exit(pid);
}

/* The common checks: READY=1 with a STATUS line, with the service
 * responding at that moment; pings at the expected rate; STOPPING=1 and
 * exit 0. */
static void check_http_service(const http_service *kind, const char *log_name)
{
    char usec[32];
    snprintf(usec, sizeof(usec), "%d", WATCHDOG_USEC);
    int port;
    pid_t pid = spawn_http_service(kind, usec, &port, log_name);

    char notification[1024];
    expect_notification("READY=1", notification, sizeof(notification), READY_TIMEOUT_MS);
    cr_expect(strstr(notification, "STATUS=") != NULL, "READY=1 without a STATUS line: %s", notification);
    cr_expect(http_ok(port, kind->probe), "%s was not serving when it sent READY=1", log_name);

    /* Half of 400 ms: about 7 pings in 1.5 s. */
    int pings = count_watchdog_pings(1500);
    cr_expect(pings >= 4 && pings <= 12, "%s sent %d watchdog pings in 1.5 s", log_name, pings);

    kill(pid, SIGTERM);
    expect_notification("STOPPING=1", notification, sizeof(notification), 5000);
    cr_expect_eq(wait_exit(pid), 0, "%s did not exit 0 within 15 s", log_name);
}

Test(notify, gateway_is_ready_only_when_serving_and_pings_watchdog)
{
    check_http_service(&gateway, "gateway");
}

Test(notify, realtime_is_ready_only_when_serving_and_pings_watchdog)
{
    check_http_service(&realtime, "realtime");
}

Test(notify, no_watchdog_pings_without_watchdog_usec)
{
    int port;
    pid_t pid = spawn_http_service(&gateway, "", &port, "gateway-no-watchdog");
    char notification[1024];
    expect_notification("READY=1", notification, sizeof(notification), READY_TIMEOUT_MS);
    cr_expect_eq(count_watchdog_pings(1000), 0, "watchdog pings without WATCHDOG_USEC");
    cr_expect_eq(stop_and_wait(pid), 0, "the gateway did not exit 0");
}

Test(notify, store_is_ready_after_migrations_and_pings_watchdog)
{
    /* A second store on the same database, with its own endpoints. */
    store_fixture second;
    char notify[256], usec[64];
    snprintf(notify, sizeof(notify), "NOTIFY_SOCKET=%s", notify_path);
    snprintf(usec, sizeof(usec), "WATCHDOG_USEC=%d", WATCHDOG_USEC);
    const char *env[] = {notify, usec, NULL};
    store_launch(&second, env);

    char notification[1024];
    expect_notification("READY=1", notification, sizeof(notification), READY_TIMEOUT_MS);
    cr_expect(strstr(notification, "STATUS=") != NULL, "READY=1 without a STATUS line: %s", notification);
    cr_expect_eq(store_log_count(&second, "store ready"), 1, "READY=1 came before the store logged it was ready");
    hv_call_result health;
    store_call(&second, &health, "health", NULL, NULL);
    cr_expect_eq(health.reply.status, 200, "the store did not serve when it sent READY=1");
    hv_call_result_destroy(&health);

    int pings = count_watchdog_pings(1500);
    cr_expect(pings >= 4 && pings <= 12, "the store sent %d watchdog pings in 1.5 s", pings);

    kill(second.pid, SIGTERM);
    expect_notification("STOPPING=1", notification, sizeof(notification), 5000);
    cr_expect_eq(store_stop(&second), 0, "the store did not exit 0");
}

Test(notify, store_stopped_while_waiting_for_database_exits_0)
{
    store_fixture waiting;
    char notify[256];
    snprintf(notify, sizeof(notify), "NOTIFY_SOCKET=%s", notify_path);
    const char *env[] = {notify, "HELVINO_DATABASE_URL=host=/nonexistent port=5999 dbname=helvino", NULL};
    store_launch(&waiting, env);

    char notification[1024];
    expect_notification("STATUS=waiting for the database and migrating", notification, sizeof(notification), 10000);
    cr_expect(store_wait_for_log(&waiting, "waiting for the database", 10000), "the store did not log its wait");
    kill(waiting.pid, SIGTERM);
    expect_notification("STOPPING=1", notification, sizeof(notification), 5000);
    cr_expect_eq(store_stop(&waiting), 0, "a stop before the database came is not a failure");
}
