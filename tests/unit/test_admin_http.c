/* Unit tests of the store's admin listener (common/hv_admin_http.c) over
 * real loopback connections: the responses to good and bad requests, the
 * bounds on request size, time and connections, responses larger than a
 * socket buffer, and the loopback-only listen address. The test thread
 * plays both sides: it polls the responder's descriptor next to its own
 * client socket, as the store's broker loop does. */
#include "hv_admin_http.h"
#include "hv_time.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Bound on one exchange, above the responder's own 5 s timeout. */
#define EXCHANGE_TIMEOUT_MS (HV_ADMIN_TIMEOUT_MS + 3000)

static hv_metrics *registry;
static hv_metric *scrapes;
static hv_admin_http *server;
static char bound[HV_ADMIN_ADDRESS_SIZE];
static int collect_calls;

static void on_collect(void *data)
{
    (void)data;
    collect_calls++;
    hv_metric_set(scrapes, NULL, collect_calls);
}

static void setup(void)
{
    registry = hv_metrics_new("helvino_test");
    cr_assert(not(zero(ptr, registry)));
    scrapes = hv_metrics_counter(registry, "scrapes_total", "Renderings of the metrics.", NULL);
    char error[256];
    int fd = hv_admin_listen("127.0.0.1:0", bound, error, sizeof(error));
    cr_assert(ge(int, fd, 0), "%s", error);
    server = hv_admin_http_new(fd, registry, on_collect, NULL, error, sizeof(error));
    cr_assert(not(zero(ptr, server)), "%s", error);
}

static void teardown(void)
{
    hv_admin_http_destroy(&server);
    hv_metrics_destroy(&registry);
}

TestSuite(admin_http, .init = setup, .fini = teardown);

/* Opens a client connection to the responder. */
static int client_connect(void)
{
    const char *colon = strrchr(bound, ':');
    cr_assert(not(zero(ptr, (void *)colon)), "bound address %s", bound);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(ge(int, fd, 0));
    cr_assert(eq(int, connect(fd, (struct sockaddr *)&address, sizeof(address)), 0), "connect: %s", strerror(errno));
    return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t sent = send(fd, data, len, MSG_NOSIGNAL);
        cr_assert(gt(sz, (size_t)(sent > 0 ? sent : 0), 0), "send: %s", strerror(errno));
        data += sent;
        len -= (size_t)sent;
    }
}

typedef struct {
    char *text; /* the whole response, NUL-terminated */
    size_t len;
    bool closed;        /* the responder closed the connection */
    int64_t elapsed_ms; /* from the request to the close */
} response;

/* Runs the responder until it closes `fd`, gathering what it sent, for at
 * most EXCHANGE_TIMEOUT_MS. */
static response read_until_closed(int fd)
{
    response out = {.text = calloc(1, 1)};
    int64_t started = hv_time_monotonic_ms();
    int64_t deadline = started + EXCHANGE_TIMEOUT_MS;
    while (!out.closed && hv_time_monotonic_ms() < deadline) {
        struct pollfd watched[] = {{.fd = hv_admin_http_fd(server), .events = POLLIN}, {.fd = fd, .events = POLLIN}};
        cr_assert(ge(int, poll(watched, 2, 100), 0));
        if (watched[0].revents & POLLIN)
            hv_admin_http_run(server);
        if (!(watched[1].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;

        char chunk[65536];
        ssize_t got = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (got <= 0) {
            out.closed = true;
            break;
        }
        out.text = realloc(out.text, out.len + (size_t)got + 1);
        cr_assert(not(zero(ptr, out.text)));
        memcpy(out.text + out.len, chunk, (size_t)got);
        out.len += (size_t)got;
        out.text[out.len] = '\0';
    }
    out.elapsed_ms = hv_time_monotonic_ms() - started;
    return out;
}

/* Runs the responder until it has had nothing to do for 100 ms, so that
 * it has seen the clients that left. */
static void run_until_idle(void)
{
    struct pollfd watched = {.fd = hv_admin_http_fd(server), .events = POLLIN};
    int64_t deadline = hv_time_monotonic_ms() + EXCHANGE_TIMEOUT_MS;
    while (poll(&watched, 1, 100) > 0) {
        hv_admin_http_run(server);
        cr_assert(lt(i64, hv_time_monotonic_ms(), deadline), "the responder was never idle");
    }
}

/* Sends `request` on a new connection and returns the whole response. */
static response exchange(const char *request)
{
    int fd = client_connect();
    send_all(fd, request, strlen(request));
    response out = read_until_closed(fd);
    close(fd);
    cr_assert(out.closed, "the responder did not close the connection within %d ms", EXCHANGE_TIMEOUT_MS);
    return out;
}

/* Returns the body of a response: what follows the empty line. */
static const char *body_of(const response *out)
{
    const char *end = strstr(out->text, "\r\n\r\n");
    cr_assert(not(zero(ptr, (void *)end)), "no end of head in: %s", out->text);
    return end + 4;
}

/* Returns the Content-Length of a response. */
static long content_length(const response *out)
{
    const char *header = strstr(out->text, "\r\nContent-Length: ");
    cr_assert(not(zero(ptr, (void *)header)), "no Content-Length in: %s", out->text);
    return atol(header + strlen("\r\nContent-Length: "));
}

/* --- Responses ---------------------------------------------------------------- */

Test(admin_http, get_metrics_returns_prometheus_text)
{
    response out = exchange("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n");
    cr_assert(not(zero(ptr, strstr(out.text, "HTTP/1.1 200 OK\r\n"))), "%s", out.text);
    cr_assert(eq(int, strncmp(out.text, "HTTP/1.1 200 OK\r\n", 17), 0), "%s", out.text);
    cr_assert(not(zero(ptr, strstr(out.text, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"))), "%s", out.text);
    cr_assert(not(zero(ptr, strstr(out.text, "\r\nConnection: close\r\n"))), "%s", out.text);

    const char *body = body_of(&out);
    cr_assert(eq(long, content_length(&out), (long)strlen(body)));
    cr_assert(not(zero(ptr, strstr(body, "# TYPE helvino_test_scrapes_total counter\nhelvino_test_scrapes_total 1\n"))), "%s",
              body);
    cr_assert(eq(int, collect_calls, 1));
    free(out.text);
}

Test(admin_http, each_request_collects_again)
{
    free(exchange("GET /metrics HTTP/1.1\r\n\r\n").text);
    response out = exchange("GET /metrics HTTP/1.1\r\n\r\n");
    cr_assert(not(zero(ptr, strstr(body_of(&out), "helvino_test_scrapes_total 2\n"))), "%s", out.text);
    free(out.text);
}

Test(admin_http, query_string_is_ignored)
{
    response out = exchange("GET /metrics?name[]=x HTTP/1.0\r\n\r\n");
    cr_assert(eq(int, strncmp(out.text, "HTTP/1.1 200 OK\r\n", 17), 0), "%s", out.text);
    free(out.text);
}

Test(admin_http, bare_line_feeds_are_accepted)
{
    response out = exchange("GET /metrics HTTP/1.0\n\n");
    cr_assert(eq(int, strncmp(out.text, "HTTP/1.1 200 OK\r\n", 17), 0), "%s", out.text);
    free(out.text);
}

Test(admin_http, head_returns_length_without_body)
{
    response get = exchange("GET /metrics HTTP/1.1\r\n\r\n");
    response head = exchange("HEAD /metrics HTTP/1.1\r\n\r\n");
    cr_assert(eq(int, strncmp(head.text, "HTTP/1.1 200 OK\r\n", 17), 0), "%s", head.text);
    cr_assert(eq(str, (char *)body_of(&head), ""));
    /* The two renderings differ only in the counter's digit, 1 and 2, so they have the same length. */
    cr_assert(eq(long, content_length(&head), content_length(&get)));
    free(get.text);
    free(head.text);
}

Test(admin_http, other_paths_return_404)
{
    const char *paths[] = {"/", "/metricsx", "/metrics/", "/Metrics", "*"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char request[128];
        snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\n\r\n", paths[i]);
        response out = exchange(request);
        cr_assert(eq(int, strncmp(out.text, "HTTP/1.1 404 Not Found\r\n", 24), 0), "%s: %s", paths[i], out.text);
        cr_assert(eq(long, content_length(&out), (long)strlen(body_of(&out))));
        free(out.text);
    }
    cr_assert(eq(int, collect_calls, 0));
}

Test(admin_http, other_methods_return_405)
{
    response out = exchange("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    cr_assert(eq(int, strncmp(out.text, "HTTP/1.1 405 Method Not Allowed\r\n", 33), 0), "%s", out.text);
    cr_assert(not(zero(ptr, strstr(out.text, "\r\nAllow: GET, HEAD\r\n"))), "%s", out.text);
    free(out.text);
}

Test(admin_http, malformed_request_lines_return_400)
{
    const char *requests[] = {"hello\r\n\r\n",
                              "GET /metrics\r\n\r\n",
                              "GET /metrics HTTP/2.0\r\n\r\n",
                              "GET  /metrics HTTP/1.1\r\n\r\n",
                              "GET /metrics HTTP/1.1 extra\r\n\r\n",
                              "\r\n\r\n"};
    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        response out = exchange(requests[i]);
        cr_assert(eq(int, strncmp(out.text, "HTTP/1.1 400 Bad Request\r\n", 26), 0), "request %zu: %s", i, out.text);
        free(out.text);
    }
}

/* --- Bounds ------------------------------------------------------------------- */

Test(admin_http, oversized_head_returns_431)
{
    /* Exactly the limit, so that nothing is left unread when the
     * responder closes (unread bytes would make the close a reset). */
    char *request = malloc(HV_ADMIN_MAX_REQUEST_BYTES + 1);
    cr_assert(not(zero(ptr, request)));
    memcpy(request, "GET /metrics HTTP/1.1\r\nX-Filler: ", 33);
    memset(request + 33, 'a', HV_ADMIN_MAX_REQUEST_BYTES - 33);
    request[HV_ADMIN_MAX_REQUEST_BYTES] = '\0';

    response out = exchange(request);
    free(request);
    cr_assert(eq(int, strncmp(out.text, "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46), 0), "%s", out.text);
    free(out.text);
}

Test(admin_http, silent_client_is_dropped_after_timeout)
{
    int fd = client_connect();
    send_all(fd, "GET /met", 8);
    response out = read_until_closed(fd);
    close(fd);
    cr_assert(out.closed, "the connection was still open after %lld ms", (long long)out.elapsed_ms);
    cr_assert(eq(sz, out.len, 0), "a response came: %s", out.text);
    cr_assert(ge(i64, out.elapsed_ms, HV_ADMIN_TIMEOUT_MS - 100));
    free(out.text);

    /* The responder serves the next client. */
    response next = exchange("GET /metrics HTTP/1.1\r\n\r\n");
    cr_assert(eq(int, strncmp(next.text, "HTTP/1.1 200 OK\r\n", 17), 0), "%s", next.text);
    free(next.text);
}

Test(admin_http, client_that_leaves_early_frees_its_slot)
{
    for (int i = 0; i < HV_ADMIN_MAX_CONNECTIONS * 2; i++) {
        int fd = client_connect();
        send_all(fd, "GET /metrics HTTP/1.1\r\n", 23);
        close(fd);
        run_until_idle();
    }
    response out = exchange("GET /metrics HTTP/1.1\r\n\r\n");
    cr_assert(eq(int, strncmp(out.text, "HTTP/1.1 200 OK\r\n", 17), 0), "%s", out.text);
    free(out.text);
}

Test(admin_http, connections_beyond_limit_are_closed)
{
    int idle[HV_ADMIN_MAX_CONNECTIONS];
    for (int i = 0; i < HV_ADMIN_MAX_CONNECTIONS; i++)
        idle[i] = client_connect();

    /* The responder accepts the idle ones, then the one too many. */
    int extra = client_connect();
    send_all(extra, "GET /metrics HTTP/1.1\r\n\r\n", 25);
    response refused = read_until_closed(extra);
    close(extra);
    cr_assert(refused.closed, "the connection beyond the limit stayed open");
    cr_assert(eq(sz, refused.len, 0), "a response came: %s", refused.text);
    cr_assert(lt(i64, refused.elapsed_ms, HV_ADMIN_TIMEOUT_MS), "it was closed by the timeout, not at accept");
    free(refused.text);

    /* One idle client leaves, and its slot serves a new one. */
    close(idle[0]);
    run_until_idle();
    response out = exchange("GET /metrics HTTP/1.1\r\n\r\n");
    cr_assert(eq(int, strncmp(out.text, "HTTP/1.1 200 OK\r\n", 17), 0), "%s", out.text);
    free(out.text);
    for (int i = 1; i < HV_ADMIN_MAX_CONNECTIONS; i++)
        close(idle[i]);
}

Test(admin_http, large_response_arrives_whole)
{
    hv_metric *ids = hv_metrics_counter(registry, "ids_total", "One series per id, to make a long text.", "id");
    char id[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "identifier_%08d", i);
        hv_metric_inc(ids, HV_LABELS(id));
    }

    /* The client reads only after its request is out, so the responder
     * fills the socket buffer and must wait for it to drain. */
    response out = exchange("GET /metrics HTTP/1.1\r\n\r\n");
    const char *body = body_of(&out);
    cr_assert(gt(sz, strlen(body), 200000));
    cr_assert(eq(long, content_length(&out), (long)strlen(body)));
    cr_assert(not(zero(ptr, strstr(body, "helvino_test_ids_total{id=\"identifier_00004999\"} 1\n"))));
    free(out.text);
}

/* --- Listen addresses --------------------------------------------------------- */

Test(admin_http, bound_address_names_chosen_port)
{
    cr_assert(eq(int, strncmp(bound, "127.0.0.1:", 10), 0), "%s", bound);
    cr_assert(gt(int, atoi(bound + 10), 0), "%s", bound);
}

Test(admin_http, non_loopback_addresses_are_rejected)
{
    const char *addresses[] = {"0.0.0.0:0", "192.0.2.1:0", "10.1.2.3:9101", "[::]:0", "[2001:db8::1]:0", "[::ffff:192.0.2.1]:0"};
    for (size_t i = 0; i < sizeof(addresses) / sizeof(addresses[0]); i++) {
        char address_bound[HV_ADMIN_ADDRESS_SIZE];
        char error[256] = "";
        cr_assert(eq(int, hv_admin_listen(addresses[i], address_bound, error, sizeof(error)), HV_ADMIN_INVALID_ADDRESS), "%s", addresses[i]);
        cr_assert(not(zero(ptr, strstr(error, "must be a loopback address"))), "%s: %s", addresses[i], error);
        cr_assert(not(zero(ptr, strstr(error, addresses[i]))), "%s: %s", addresses[i], error);
    }
}

Test(admin_http, loopback_addresses_are_accepted)
{
    const char *addresses[] = {"127.0.0.1:0", "127.0.0.2:0", "localhost:0"};
    for (size_t i = 0; i < sizeof(addresses) / sizeof(addresses[0]); i++) {
        char address_bound[HV_ADMIN_ADDRESS_SIZE];
        char error[256] = "";
        int fd = hv_admin_listen(addresses[i], address_bound, error, sizeof(error));
        cr_assert(ge(int, fd, 0), "%s: %s", addresses[i], error);
        close(fd);
    }
}

Test(admin_http, malformed_addresses_are_rejected)
{
    const char *addresses[] = {"9101", ":9101", "127.0.0.1:", "127.0.0.1:port", "127.0.0.1:99999", "127.0.0.1:-1", "[::1:0"};
    for (size_t i = 0; i < sizeof(addresses) / sizeof(addresses[0]); i++) {
        char address_bound[HV_ADMIN_ADDRESS_SIZE];
        char error[256] = "";
        cr_assert(eq(int, hv_admin_listen(addresses[i], address_bound, error, sizeof(error)), HV_ADMIN_INVALID_ADDRESS), "%s", addresses[i]);
        cr_assert(not(zero(ptr, strstr(error, "invalid metrics address"))), "%s: %s", addresses[i], error);
    }
}

Test(admin_http, taken_port_is_reported)
{
    char again[HV_ADMIN_ADDRESS_SIZE];
    char error[256] = "";
    cr_assert(eq(int, hv_admin_listen(bound, again, error, sizeof(error)), -1));
    cr_assert(not(zero(ptr, strstr(error, "Address already in use"))), "%s", error);
}
