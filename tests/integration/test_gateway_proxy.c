/* helvino-gateway's forwarding of /socket.io/ to the real-time service. A
 * stub service (realtime_stub.c) runs in the test process, and a real
 * helvino-store serves the API. The tests cover long-polling requests
 * through libcurl, WebSocket upgrades over raw sockets with bytes both
 * ways, the paths that stay with the API, an outage of the service,
 * shutdown with forwarded requests open, and HELVINO_REALTIME_URL checks. */
#include "gateway_fixture.h"
#include "harness.h"
#include "http_client.h"
#include "http_head.h"
#include "hv_time.h"
#include "realtime_stub.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Upper bounds for conditions the tests wait for. They are generous
 * because the debug build runs under AddressSanitizer on a shared machine. */
#define REQUEST_TIMEOUT_MS 10000
#define STORE_REACH_TIMEOUT_MS 30000
#define LOG_TIMEOUT_MS 10000
#define SETTINGS_RUN_TIMEOUT_MS 10000

/* A refused connection to the service must turn into a 5xx well within this. */
#define OUTAGE_RESPONSE_MS 5000

/* The gateways wait this long for requests in flight on SIGTERM, and an
 * exit within PROMPT_EXIT_MS shows that they did not wait for an open
 * WebSocket or long-polling request. */
#define SHUTDOWN_TIMEOUT_VARIABLE "HELVINO_GATEWAY_SHUTDOWN_TIMEOUT_MS=30000"
#define PROMPT_EXIT_MS 8000

/* How long the stub keeps a long-polling GET waiting, and a POST during shutdown. */
#define LONG_POLL_DELAY_MS 60000
#define POST_DELAY_MS 1500

/* The Sec-WebSocket-Key and Sec-WebSocket-Accept of the example in RFC 6455, section 1.3. */
#define WEBSOCKET_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WEBSOCKET_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#define MAX_RESPONSES 64
#define MAX_OPEN_SOCKETS 16
#define ECHO_CHUNK_BYTES 16384
#define LARGE_BODY_BYTES (300 * 1024)
#define BULK_BYTES (256 * 1024)

/* A response head read from a raw socket, and the bytes that came after it
 * in the same reads. */
typedef struct {
    int status;
    char head[4096];
    char extra[8192];
    size_t extra_len;
} raw_head;

static store_fixture store;
static service_fixture gateway;
static realtime_stub *stub;
static int stub_port;
static char stub_url_variable[64];
static char org[80], org_key[96];

/* What the suite's fini releases when a test ends early. */
static http_response responses[MAX_RESPONSES];
static size_t response_count;
static int open_sockets[MAX_OPEN_SOCKETS];
static size_t open_socket_count;

/* --- HTTP with libcurl ----------------------------------------------------- */

/* Sends a request to the gateway. A NULL `body` sends none, and `headers` is
 * NULL or a NULL-terminated list of "Name: value" lines. */
static http_response *send_request(const char *method, const char *path, const char *body, size_t body_len,
                                   const char *const *headers, long http_version)
{
    cr_assert_lt(response_count, MAX_RESPONSES, "a test sent more than %d requests", MAX_RESPONSES);
    http_response *response = &responses[response_count++];

    char url[2048];
    snprintf(url, sizeof(url), "%s%s", gateway.url, path);
    http_send(&(http_request){.method = method,
                              .url = url,
                              .body = body,
                              .body_len = body_len,
                              .headers = headers,
                              .timeout_ms = REQUEST_TIMEOUT_MS,
                              .http_version = http_version},
              response);
    cr_assert(response->completed, "%s %s failed: %s", method, path, response->error);
    cr_assert_not_null(response->body, "out of memory");
    return response;
}

static http_response *get(const char *path, const char *const *headers)
{
    return send_request("GET", path, NULL, 0, headers, CURL_HTTP_VERSION_1_1);
}

static http_response *post(const char *path, const char *body, size_t body_len, const char *const *headers)
{
    return send_request("POST", path, body, body_len, headers, CURL_HTTP_VERSION_1_1);
}

static void expect_status(const http_response *response, long status, const char *description)
{
    cr_assert(eq(long, response->status, status), "status of %s; body: %s", description, response->body);
}

static void expect_body(const http_response *response, const char *expected, size_t expected_len, const char *description)
{
    cr_assert(eq(sz, response->body_len, expected_len), "body length of %s", description);
    cr_assert(eq(int, memcmp(response->body, expected, expected_len), 0), "body of %s: %.200s", description, response->body);
}

/* Checks that the stub responded to `path`, by its body and the request target it received. */
static void expect_forwarded(const http_response *response, const char *path, const char *body, const char *description)
{
    expect_status(response, 200, description);
    expect_body(response, body, strlen(body), description);
    const char *target = http_header_value(response, STUB_TARGET_HEADER);
    cr_assert_not_null(target, "%s did not reach the stub: no %s header", description, STUB_TARGET_HEADER);
    cr_assert(eq(str, (char *)target, (char *)path), "request target that the stub received for %s", description);
}

/* Checks the API's own 404 and that the stub saw nothing. */
static void expect_api_not_found(const char *path, int stub_requests_before)
{
    http_response *response = get(path, NULL);
    expect_status(response, 404, path);
    cr_assert(eq(str, response->body, "{\"error\":\"Not found\"}"), "body of GET %s", path);
    cr_assert_not_null(http_header_value(response, "x-request-id"), "GET %s has no x-request-id, so the API did not answer", path);
    cr_assert(eq(int, realtime_stub_request_count(stub), stub_requests_before), "requests the stub got after GET %s", path);
}

/* --- Raw sockets, for upgrades and requests held open ----------------------- */

static int connect_to_gateway(void)
{
    cr_assert_lt(open_socket_count, MAX_OPEN_SOCKETS, "a test opened more than %d sockets", MAX_OPEN_SOCKETS);
    int fd = service_connect(&gateway);
    open_sockets[open_socket_count++] = fd;
    return fd;
}

/* Reads what has arrived on a socket or a pipe, waiting up to the deadline
 * for the first byte.
 * Returns the byte count, 0 at the end of the stream, -1 on a timeout. */
static ssize_t receive_until(int fd, char *out, size_t size, int64_t deadline_ms)
{
    struct pollfd readable = {.fd = fd, .events = POLLIN};
    int64_t remaining_ms = deadline_ms - hv_time_monotonic_ms();
    if (remaining_ms <= 0 || poll(&readable, 1, (int)remaining_ms) <= 0)
        return -1;
    /* read, not recv, because the settings tests read a pipe. */
    ssize_t received = read(fd, out, size);
    /* A reset ends the stream as far as these tests care. */
    return received < 0 && errno == ECONNRESET ? 0 : received;
}

/* Reads exactly `len` bytes. Returns how many came before the end of the
 * stream or the timeout. */
static size_t receive_exactly(int fd, char *out, size_t len, int timeout_ms)
{
    int64_t deadline_ms = hv_time_monotonic_ms() + timeout_ms;
    size_t done = 0;
    while (done < len) {
        ssize_t received = receive_until(fd, out + done, len - done, deadline_ms);
        if (received <= 0)
            break;
        done += (size_t)received;
    }
    return done;
}

/* Reads a response head. Leaves head->status 0 when the stream ended or the
 * time ran out before a whole head came. */
static void receive_head(int fd, raw_head *head)
{
    memset(head, 0, sizeof(*head));
    int64_t deadline_ms = hv_time_monotonic_ms() + REQUEST_TIMEOUT_MS;
    size_t len = 0;
    char *end;
    while (!(end = strstr(head->head, "\r\n\r\n"))) {
        cr_assert_lt(len, sizeof(head->head) - 1, "response head longer than %zu bytes", sizeof(head->head));
        ssize_t received = receive_until(fd, head->head + len, sizeof(head->head) - 1 - len, deadline_ms);
        if (received <= 0)
            return;
        len += (size_t)received;
        head->head[len] = '\0';
    }

    size_t head_len = (size_t)(end - head->head) + 4;
    head->extra_len = len - head_len;
    memcpy(head->extra, head->head + head_len, head->extra_len);
    head->head[head_len] = '\0';
    if (sscanf(head->head, "HTTP/1.1 %d", &head->status) != 1)
        head->status = 0;
}

/* Finds a header in a raw head. Returns its value, copied into `out`, or NULL. */
static const char *raw_header(const raw_head *head, const char *name, char *out, size_t out_size)
{
    return http_head_find_header(head->head, name, out, out_size) ? out : NULL;
}

/* Reads the rest of a response body of `len` bytes after its head. */
static void receive_body(int fd, raw_head *head, char *out, size_t len)
{
    size_t from_head = head->extra_len < len ? head->extra_len : len;
    memcpy(out, head->extra, from_head);
    size_t received = from_head + receive_exactly(fd, out + from_head, len - from_head, REQUEST_TIMEOUT_MS);
    cr_assert(eq(sz, received, len), "bytes of the response body received");
}

/* Waits until the peer closes. Returns whether it did in time. Bytes that
 * come before the close are dropped. */
static bool wait_for_close(int fd, int timeout_ms)
{
    int64_t deadline_ms = hv_time_monotonic_ms() + timeout_ms;
    char discarded[4096];
    for (;;) {
        ssize_t received = receive_until(fd, discarded, sizeof(discarded), deadline_ms);
        if (received == 0)
            return true;
        if (received < 0)
            return false;
    }
}

/* Sends a WebSocket upgrade for /socket.io/ with `connection` as the
 * Connection header, and reads the response head. Returns the socket. */
static int send_upgrade(const char *connection, raw_head *head)
{
    int fd = connect_to_gateway();
    char request[512];
    int len = snprintf(request, sizeof(request),
                       "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                       "Connection: %s\r\nSec-WebSocket-Key: " WEBSOCKET_KEY "\r\nSec-WebSocket-Version: 13\r\n"
                       "Origin: " STUB_ALLOWED_ORIGIN "\r\n\r\n",
                       connection);
    service_send(&gateway, fd, request, (size_t)len);
    receive_head(fd, head);
    return fd;
}

/* Upgrades, checks the 101, and reads the stub's greeting. */
static int open_websocket(const char *connection)
{
    raw_head head;
    int fd = send_upgrade(connection, &head);
    cr_assert(eq(int, head.status, 101), "status of the upgrade through the gateway; head: %s", head.head);

    size_t greeting_len = strlen(STUB_GREETING);
    char greeting[sizeof(STUB_GREETING)] = {0};
    receive_body(fd, &head, greeting, greeting_len);
    cr_assert(eq(str, greeting, STUB_GREETING), "first bytes after the 101");
    return fd;
}

/* Sends `len` bytes through an open WebSocket in chunks, and checks that
 * each chunk comes back from the stub unchanged. */
static void expect_echo(int fd, const char *data, size_t len)
{
    static char echoed[ECHO_CHUNK_BYTES];
    for (size_t offset = 0; offset < len; offset += ECHO_CHUNK_BYTES) {
        size_t chunk = len - offset < ECHO_CHUNK_BYTES ? len - offset : ECHO_CHUNK_BYTES;
        service_send(&gateway, fd, data + offset, chunk);
        size_t received = receive_exactly(fd, echoed, chunk, REQUEST_TIMEOUT_MS);
        cr_assert(eq(sz, received, chunk), "bytes echoed at offset %zu", offset);
        cr_assert(eq(int, memcmp(echoed, data + offset, chunk), 0), "the bytes echoed at offset %zu differ from those sent",
                  offset);
    }
}

/* --- Waiting ----------------------------------------------------------------- */

static void wait_for_stub_requests(int count)
{
    int64_t deadline_ms = hv_time_monotonic_ms() + REQUEST_TIMEOUT_MS;
    while (realtime_stub_request_count(stub) < count) {
        cr_assert_lt(hv_time_monotonic_ms(), deadline_ms, "the stub did not get request %d within %d ms", count,
                     REQUEST_TIMEOUT_MS);
        struct timespec pause = {.tv_nsec = 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

/* --- Fixture ----------------------------------------------------------------- */

static void start_services(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    stub = realtime_stub_start(0);
    cr_assert_not_null(stub, "starting the stub real-time service failed: %s", strerror(errno));
    stub_port = realtime_stub_port(stub);

    store_start(&store, NULL);
    create_unique_org(&store, "proxy", org, sizeof(org));
    snprintf(org_key, sizeof(org_key), "key-%s", org);

    snprintf(stub_url_variable, sizeof(stub_url_variable), "HELVINO_REALTIME_URL=http://127.0.0.1:%d", stub_port);
    const char *env[] = {stub_url_variable, "HELVINO_ACCESS_LOG=true", SHUTDOWN_TIMEOUT_VARIABLE, NULL};
    gateway_start(&gateway, &store, env);
    gateway_wait_for_store(&gateway, STORE_REACH_TIMEOUT_MS);
}

static void stop_services(void)
{
    while (open_socket_count > 0)
        close(open_sockets[--open_socket_count]);
    service_expect_clean_stop(&gateway);
    realtime_stub_stop(&stub);
    store_expect_clean_stop(&store);
    for (size_t i = 0; i < response_count; i++)
        http_response_release(&responses[i]);
    memset(responses, 0, sizeof(responses));
    response_count = 0;
    curl_global_cleanup();
}

TestSuite(polling, .init = start_services, .fini = stop_services, .timeout = 120);
TestSuite(websocket, .init = start_services, .fini = stop_services, .timeout = 120);
TestSuite(routing, .init = start_services, .fini = stop_services, .timeout = 120);
TestSuite(outage, .init = start_services, .fini = stop_services, .timeout = 120);
TestSuite(shutdown, .init = start_services, .fini = stop_services, .timeout = 120);
TestSuite(settings, .timeout = 60);

/* --- Long-polling requests ----------------------------------------------------- */

Test(polling, get_reaches_service_with_query)
{
    int before = realtime_stub_request_count(stub);
    const char *path = "/socket.io/?EIO=4&transport=polling&t=P1a2b3c";
    http_response *response = get(path, NULL);

    expect_forwarded(response, path, STUB_POLL_BODY, "the polling GET");
    cr_assert(eq(int, realtime_stub_request_count(stub), before + 1), "requests the stub got");
}

Test(polling, service_status_and_body_pass_through)
{
    const char *path = "/socket.io/?EIO=4&transport=polling&" STUB_UNKNOWN_SID;
    http_response *response = get(path, NULL);

    expect_status(response, 400, "a GET with an unknown session");
    expect_body(response, STUB_UNKNOWN_SID_BODY, strlen(STUB_UNKNOWN_SID_BODY), "a GET with an unknown session");
    cr_assert(eq(str, (char *)http_header_value(response, "content-type"), "text/plain; charset=UTF-8"), "content-type");
}

Test(polling, cors_left_to_service)
{
    const char *headers[] = {"Origin: https://other.example", NULL};
    http_response *response = get("/socket.io/?EIO=4&transport=polling", headers);

    expect_status(response, 200, "a cross-origin polling GET");
    cr_assert(eq(sz, http_header_count(response, "access-control-allow-origin"), 1), "access-control-allow-origin headers");
    cr_assert(eq(str, (char *)http_header_value(response, "access-control-allow-origin"), STUB_ALLOWED_ORIGIN),
              "the gateway allows every origin for its API; the service's answer must pass unchanged");
    cr_assert_null(http_header_value(response, "access-control-expose-headers"), "the API's CORS header was added");
    cr_assert_null(http_header_value(response, "x-request-id"), "the API's x-request-id was added");
}

Test(polling, post_body_reaches_service)
{
    const char *path = "/socket.io/?EIO=4&transport=polling&sid=abc";
    const char *body = "4hello\x1e"
                       "42[\"message\",\"caf\xc3\xa9\"]";
    const char *headers[] = {"Content-Type: text/plain;charset=UTF-8", NULL};
    http_response *response = post(path, body, strlen(body), headers);

    expect_forwarded(response, path, body, "the polling POST");
}

Test(polling, large_post_body_reaches_service)
{
    /* Larger than the API's 64 KiB limit, which is not the service's. */
    static char body[LARGE_BODY_BYTES];
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (char)('a' + i % 26);
    http_response *response = post("/socket.io/?EIO=4&transport=polling&sid=abc", body, sizeof(body), NULL);

    expect_status(response, 200, "a 300 KiB POST");
    expect_body(response, body, sizeof(body), "a 300 KiB POST");
}

Test(polling, preflight_answered_by_service)
{
    const char *headers[] = {"Origin: " STUB_ALLOWED_ORIGIN, "Access-Control-Request-Method: POST",
                             "Access-Control-Request-Headers: content-type", NULL};
    http_response *response =
        send_request("OPTIONS", "/socket.io/?EIO=4&transport=polling", NULL, 0, headers, CURL_HTTP_VERSION_1_1);

    expect_status(response, 204, "the preflight");
    cr_assert(eq(str, (char *)http_header_value(response, "access-control-allow-methods"), "GET, POST"),
              "access-control-allow-methods, which the stub sets");
    cr_assert_not_null(http_header_value(response, STUB_TARGET_HEADER), "the preflight did not reach the stub");
}

Test(polling, http2_request_reaches_service)
{
    const char *path = "/socket.io/?EIO=4&transport=polling";
    http_response *response = send_request("GET", path, NULL, 0, NULL, CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);

    cr_assert(eq(long, response->http_version, CURL_HTTP_VERSION_2_0), "HTTP version curl used");
    expect_forwarded(response, path, STUB_POLL_BODY, "the polling GET over HTTP/2");
}

/* --- WebSocket upgrades ------------------------------------------------------- */

Test(websocket, upgrade_returns_101_with_accept)
{
    raw_head head;
    send_upgrade("Upgrade", &head);
    char value[128];

    cr_assert(eq(int, head.status, 101), "status of the upgrade; head: %s", head.head);
    cr_assert_not_null(raw_header(&head, "upgrade", value, sizeof(value)), "no upgrade header: %s", head.head);
    cr_assert(eq(int, strcasecmp(value, "websocket"), 0), "upgrade header: %s", value);
    cr_assert_not_null(raw_header(&head, "connection", value, sizeof(value)), "no connection header: %s", head.head);
    cr_assert(eq(int, strcasecmp(value, "upgrade"), 0), "connection header: %s", value);
    cr_assert_not_null(raw_header(&head, "sec-websocket-accept", value, sizeof(value)), "no accept header: %s", head.head);
    cr_assert(eq(str, value, WEBSOCKET_ACCEPT), "sec-websocket-accept");
}

Test(websocket, bytes_flow_both_ways)
{
    int fd = open_websocket("Upgrade");

    const char *frame = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"; /* a masked "Hello" text frame, RFC 6455 section 5.7 */
    expect_echo(fd, frame, strlen(frame));

    static char bulk[BULK_BYTES];
    for (size_t i = 0; i < sizeof(bulk); i++)
        bulk[i] = (char)(i * 7 + i / 251);
    expect_echo(fd, bulk, sizeof(bulk));
}

Test(websocket, connection_list_with_upgrade_accepted)
{
    /* Firefox sends "keep-alive, Upgrade". */
    int fd = open_websocket("keep-alive, Upgrade");
    expect_echo(fd, "ping", 4);
}

Test(websocket, polling_continues_beside_open_socket)
{
    int fd = open_websocket("Upgrade");
    const char *path = "/socket.io/?EIO=4&transport=polling";

    expect_forwarded(get(path, NULL), path, STUB_POLL_BODY, "a polling GET while a WebSocket is open");
    expect_echo(fd, "still open", 10);
}

/* --- Paths that stay with the API ------------------------------------------------ */

Test(routing, similar_paths_stay_with_api)
{
    int before = realtime_stub_request_count(stub);

    expect_api_not_found("/socket.iox", before);
    expect_api_not_found("/socket.io", before);
    expect_api_not_found("/socket.io.js", before);
    expect_api_not_found("/SOCKET.IO/?EIO=4&transport=polling", before);
    expect_api_not_found("/api/socket.io/?EIO=4", before);
}

Test(routing, api_routes_unchanged)
{
    int before = realtime_stub_request_count(stub);
    char key_header[128];
    snprintf(key_header, sizeof(key_header), "x-org-key: %s", org_key);
    const char *with_key[] = {key_header, NULL};

    http_response *missing = get("/conversations", NULL);
    expect_status(missing, 401, "GET /conversations without a key");
    cr_assert(eq(str, missing->body, "{\"error\":\"Missing x-org-key header\"}"), "body without a key");
    expect_status(post("/conversations", "", 0, with_key), 201, "POST /conversations");
    expect_status(get("/conversations", with_key), 200, "GET /conversations");
    expect_status(get("/health", NULL), 200, "GET /health");
    cr_assert(eq(int, realtime_stub_request_count(stub), before), "requests the stub got from API calls");
}

/* --- The service unavailable --------------------------------------------------- */

/* Checks that a forwarded request fails with a 5xx within OUTAGE_RESPONSE_MS. */
static void expect_quick_failure(http_response *response, const char *description)
{
    cr_assert(ge(long, response->status, 500), "status of %s while the service is stopped", description);
    cr_assert(lt(long, response->status, 600), "status of %s while the service is stopped", description);
    cr_assert(lt(i64, response->elapsed_ms, OUTAGE_RESPONSE_MS), "time %s took to fail, in ms", description);
}

Test(outage, stopped_service_gives_5xx_quickly)
{
    realtime_stub_stop(&stub);
    char key_header[128];
    snprintf(key_header, sizeof(key_header), "x-org-key: %s", org_key);
    const char *with_key[] = {key_header, NULL};

    for (int i = 0; i < 3; i++)
        expect_quick_failure(get("/socket.io/?EIO=4&transport=polling", NULL), "a polling GET");
    expect_quick_failure(post("/socket.io/?EIO=4&transport=polling&sid=abc", "4hi", 3, NULL), "a polling POST");
    raw_head head;
    send_upgrade("Upgrade", &head);
    cr_assert(ge(int, head.status, 500), "status of an upgrade while the service is stopped; head: %s", head.head);

    expect_status(get("/health", NULL), 200, "GET /health while the service is stopped");
    expect_status(get("/conversations", with_key), 200, "GET /conversations while the service is stopped");
    cr_assert(service_wait_for_log(&gateway, "real-time service unreachable", LOG_TIMEOUT_MS),
              "no log line about the unreachable service; see %s", gateway.log_path);
    cr_assert(eq(int, service_log_count(&gateway, "real-time service unreachable"), 1),
              "lines about the unreachable service after 5 failures; see %s", gateway.log_path);
    cr_assert(service_is_running(&gateway), "the gateway exited; see %s", gateway.log_path);
}

Test(outage, service_back_is_reached_again)
{
    realtime_stub_stop(&stub);
    expect_quick_failure(get("/socket.io/?EIO=4&transport=polling", NULL), "a polling GET");

    stub = realtime_stub_start(stub_port);
    cr_assert_not_null(stub, "restarting the stub on port %d failed: %s", stub_port, strerror(errno));
    const char *path = "/socket.io/?EIO=4&transport=polling";
    expect_forwarded(get(path, NULL), path, STUB_POLL_BODY, "the polling GET after the service came back");
    cr_assert(service_wait_for_log(&gateway, "real-time service reachable again", LOG_TIMEOUT_MS),
              "no log line about the service coming back; see %s", gateway.log_path);
    cr_assert(eq(int, service_log_count(&gateway, "failed_requests=1"), 1), "failed requests counted; see %s", gateway.log_path);
}

/* --- Shutdown ------------------------------------------------------------------ */

Test(shutdown, open_websocket_does_not_delay_exit)
{
    int fd = open_websocket("Upgrade");
    expect_echo(fd, "before SIGTERM", 14);

    service_terminate(&gateway);
    cr_assert(eq(int, service_wait_exit(&gateway, PROMPT_EXIT_MS), 0),
              "the gateway did not exit 0 within %d ms with a WebSocket open; see %s", PROMPT_EXIT_MS, gateway.log_path);
    cr_assert(wait_for_close(fd, REQUEST_TIMEOUT_MS), "the WebSocket stayed open after the gateway exited");
}

Test(shutdown, long_poll_does_not_delay_exit)
{
    int before = realtime_stub_request_count(stub);
    int fd = connect_to_gateway();
    char request[256];
    int len =
        snprintf(request, sizeof(request),
                 "GET /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\nHost: 127.0.0.1\r\n" STUB_DELAY_HEADER ": %d\r\n\r\n",
                 LONG_POLL_DELAY_MS);
    service_send(&gateway, fd, request, (size_t)len);
    wait_for_stub_requests(before + 1);

    service_terminate(&gateway);
    cr_assert(eq(int, service_wait_exit(&gateway, PROMPT_EXIT_MS), 0),
              "the gateway did not exit 0 within %d ms with a long-polling GET open; see %s", PROMPT_EXIT_MS, gateway.log_path);
    raw_head head;
    receive_head(fd, &head);
    cr_assert(eq(int, head.status, 0), "the held GET got a response: %s", head.head);
}

Test(shutdown, post_in_flight_is_answered)
{
    int before = realtime_stub_request_count(stub);
    const char *body = "42[\"message\",\"sent during shutdown\"]";
    int fd = connect_to_gateway();
    char request[512];
    int len = snprintf(request, sizeof(request),
                       "POST /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\nHost: 127.0.0.1\r\n" STUB_DELAY_HEADER
                       ": %d\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: %zu\r\n\r\n%s",
                       POST_DELAY_MS, strlen(body), body);
    service_send(&gateway, fd, request, (size_t)len);
    wait_for_stub_requests(before + 1);

    service_terminate(&gateway);
    cr_assert(service_wait_for_log(&gateway, "realtime_in_flight=1", LOG_TIMEOUT_MS),
              "the shutdown line does not count the POST; see %s", gateway.log_path);
    raw_head head;
    receive_head(fd, &head);
    cr_assert(eq(int, head.status, 200), "status of the POST in flight at SIGTERM; head: %s", head.head);
    char echoed[256] = {0};
    receive_body(fd, &head, echoed, strlen(body));
    cr_assert(eq(str, echoed, (char *)body), "body of the POST in flight at SIGTERM");
    cr_assert(eq(int, service_wait_exit(&gateway, PROMPT_EXIT_MS), 0), "exit status after the POST; see %s", gateway.log_path);
}

/* --- HELVINO_REALTIME_URL ------------------------------------------------------ */

/* Runs helvino-gateway with `variable` ("NAME=value") in its environment
 * and `argument` (or none), collects its output, and returns its exit
 * status. Fails when it is still running after SETTINGS_RUN_TIMEOUT_MS. */
static int run_gateway(const char *variable, const char *argument, char *output, size_t output_size)
{
    const char *binary = getenv("HELVINO_GATEWAY_BIN");
    cr_assert_not_null(binary, "HELVINO_GATEWAY_BIN is not set; run the tests through meson test");
    int pipe_fds[2];
    cr_assert_eq(pipe(pipe_fds), 0, "pipe failed: %s", strerror(errno));

    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork failed: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pipe_fds[1], STDOUT_FILENO);
        dup2(pipe_fds[1], STDERR_FILENO);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        /* Should the URL be accepted after all, the gateway must not take
         * a fixed port or reach a real store. */
        putenv("HELVINO_HTTP_LISTEN=127.0.0.1:0");
        putenv("HELVINO_STORE_ENDPOINT=ipc:///nonexistent/helvino-store");
        if (variable)
            putenv((char *)variable);
        execl(binary, binary, argument, (char *)NULL);
        _exit(127);
    }
    close(pipe_fds[1]);

    int64_t deadline_ms = hv_time_monotonic_ms() + SETTINGS_RUN_TIMEOUT_MS;
    size_t len = 0;
    ssize_t received;
    while (len < output_size - 1 && (received = receive_until(pipe_fds[0], output + len, output_size - 1 - len, deadline_ms)) > 0)
        len += (size_t)received;
    output[len] = '\0';
    close(pipe_fds[0]);

    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (hv_time_monotonic_ms() >= deadline_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            cr_assert(false, "helvino-gateway still ran after %d ms; output: %s", SETTINGS_RUN_TIMEOUT_MS, output);
        }
        struct timespec pause = {.tv_nsec = 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Test(settings, rejects_invalid_realtime_url)
{
    const char *urls[] = {
        "ftp://127.0.0.1:4001",
        "https://127.0.0.1:4001",
        "ws://127.0.0.1:4001",
        "127.0.0.1:4001",
        "http://",
        "http://127.0.0.1:4001/socket.io/",
        "http://127.0.0.1:0",
        "http://127.0.0.1:70000",
        "http://127.0.0.1:4001/?x=1",
    };
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        char variable[128];
        snprintf(variable, sizeof(variable), "HELVINO_REALTIME_URL=%s", urls[i]);
        char output[4096];
        int status = run_gateway(variable, NULL, output, sizeof(output));

        char expected[160];
        snprintf(expected, sizeof(expected), "invalid real-time URL \"%s\"", urls[i]);
        cr_assert(eq(int, status, 2), "exit status for HELVINO_REALTIME_URL=\"%s\"; output: %s", urls[i], output);
        cr_assert_not_null(strstr(output, expected), "output for HELVINO_REALTIME_URL=\"%s\": %s", urls[i], output);
    }
}

Test(settings, flag_overrides_variable)
{
    char output[4096];
    int status =
        run_gateway("HELVINO_REALTIME_URL=http://127.0.0.1:4001", "--realtime-url=https://127.0.0.1:4001", output, sizeof(output));

    cr_assert(eq(int, status, 2), "exit status; output: %s", output);
    cr_assert_not_null(strstr(output, "invalid real-time URL \"https://127.0.0.1:4001\": only http:// is supported"), "output: %s",
                       output);
}

Test(settings, help_lists_realtime_url)
{
    char output[16384];
    int status = run_gateway(NULL, "--help", output, sizeof(output));

    cr_assert(eq(int, status, 0), "exit status of --help; output: %s", output);
    cr_assert_not_null(strstr(output, "--realtime-url VALUE"), "--help output: %s", output);
    cr_assert_not_null(strstr(output, "default: http://127.0.0.1:4001   env: HELVINO_REALTIME_URL"), "--help output: %s", output);
}
