/* helvino-gateway over real HTTP, driven with libcurl against a real
 * helvino-store. The tests cover every route of the HTTP contract for two
 * orgs kept apart, bad bodies, byte-exact content, CORS and request ids.
 * They also take the store away, hang up mid-request and stop the gateway
 * with a request in flight. */
#include "gateway_fixture.h"
#include "harness.h"
#include "http_client.h"
#include "http_head.h"
#include "hv_msgpack.h"
#include "hv_time.h"
#include "kept_memory.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define JSON_CONTENT_TYPE "application/json; charset=utf-8"
#define DEFAULT_MAX_BODY_BYTES 65536
#define DEFAULT_LIST_LIMIT 50
#define CONCURRENT_POSTS 200

/* The store timeout of the gateways in the outage tests, and how much
 * later than it a 503 may come. The slack is generous because the debug
 * build runs under AddressSanitizer on a shared machine. */
#define STORE_TIMEOUT_MS 1000
#define STORE_TIMEOUT_VARIABLE "HELVINO_STORE_TIMEOUT_MS=1000"
#define RESPONSE_SLACK_MS 1500

/* Upper bounds for conditions the tests wait for. */
#define REQUEST_TIMEOUT_MS 30000L
#define EVENT_TIMEOUT_MS 10000
#define RECOVERY_TIMEOUT_MS 30000
#define LOCK_WAIT_TIMEOUT_MS 10000
#define EXIT_TIMEOUT_MS 15000

#define MAX_REQUEST_HEADERS 6

typedef struct {
    const char *method;  /* NULL means GET, or POST when `body` is set */
    const char *path;    /* with the query string */
    const char *org_key; /* sent as x-org-key unless NULL, and "" sends an empty value */
    const char *body;    /* NULL sends no body and no Content-Length */
    size_t body_len;
    const char *headers[MAX_REQUEST_HEADERS]; /* more lines as curl takes them: "Name: value", or "Name;" when empty */
} gateway_request;

static store_fixture store;
static service_fixture gateway;
static char org_a[80], org_b[80];
static char key_a[96], key_b[96];

/* Whether the running gateway allows every origin, so that every response
 * must carry "access-control-allow-origin: *". */
static bool any_origin_allowed;

/* State that the suite's fini puts right when a test ends early. */
static bool store_frozen;
static event_listener listener;
static PGconn *row_locker;

/* The responses of the test, which the suite's fini frees, so that a failed
 * assertion in the middle of a test leaks nothing. */
static http_response **responses;
static size_t response_count, response_capacity;

/* --- Memory kept until the end of the test -------------------------------- */

/* Returns `len` bytes made of `pattern` repeated, NUL-terminated. The
 * pattern is only cut at the end when `len` is not a multiple of it. */
static char *repeat_to_length(const char *pattern, size_t len)
{
    char *text = keep(malloc(len + 1));
    size_t pattern_len = strlen(pattern);
    for (size_t i = 0; i < len; i++)
        text[i] = pattern[i % pattern_len];
    text[len] = '\0';
    return text;
}

static http_response *new_response(void)
{
    if (response_count == response_capacity) {
        response_capacity = response_capacity ? response_capacity * 2 : 64;
        responses = realloc(responses, response_capacity * sizeof(*responses));
        cr_assert_not_null(responses, "out of memory");
    }
    http_response *response = calloc(1, sizeof(*response));
    cr_assert_not_null(response, "out of memory");
    responses[response_count++] = response;
    return response;
}

static void release_responses(void)
{
    for (size_t i = 0; i < response_count; i++) {
        http_response_release(responses[i]);
        free(responses[i]);
    }
    free(responses);
    responses = NULL;
    response_count = response_capacity = 0;
}

/* --- HTTP with libcurl ----------------------------------------------------- */

/* Starts a transfer of `request` to the gateway, for send_request or curl
 * multi. */
static http_transfer prepare_transfer(const gateway_request *request)
{
    /* "Expect:" stops curl from waiting for "100 Continue" before a large
     * body, which would only slow the tests down. */
    const char *lines[MAX_REQUEST_HEADERS + 4] = {"Expect:"};
    size_t line_count = 1;
    if (request->body)
        lines[line_count++] = "Content-Type: application/json";
    if (request->org_key && !*request->org_key)
        lines[line_count++] = "x-org-key;";
    else if (request->org_key)
        lines[line_count++] = format_kept("x-org-key: %s", request->org_key);
    for (size_t i = 0; i < MAX_REQUEST_HEADERS && request->headers[i]; i++)
        lines[line_count++] = request->headers[i];

    http_transfer started;
    http_response *response = new_response();
    int prepared = http_transfer_start(&started,
                                       &(http_request){.method = request->method,
                                                       .url = format_kept("%s%s", gateway.url, request->path),
                                                       .body = request->body,
                                                       .body_len = request->body_len,
                                                       .headers = lines,
                                                       .timeout_ms = REQUEST_TIMEOUT_MS},
                                       response);
    cr_assert_eq(prepared, 0, "%s", response->error);
    return started;
}

/* Reads the status and frees the curl handle. */
static http_response *finish_transfer(http_transfer *done, CURLcode code)
{
    http_response *response = done->response;
    http_transfer_finish(done, code);
    cr_assert(response->completed, "%s failed: %s", response->description, response->error);
    return response;
}

static http_response *send_request(const gateway_request *request)
{
    http_transfer started = prepare_transfer(request);
    CURLcode code = curl_easy_perform(started.curl);
    return finish_transfer(&started, code);
}

static http_response *get(const char *path, const char *org_key)
{
    return send_request(&(gateway_request){.path = path, .org_key = org_key});
}

static http_response *post(const char *path, const char *org_key, const char *body)
{
    return send_request(
        &(gateway_request){.method = "POST", .path = path, .org_key = org_key, .body = body, .body_len = body ? strlen(body) : 0});
}

static http_response *post_bytes(const char *path, const char *org_key, const char *body, size_t body_len)
{
    return send_request(&(gateway_request){.path = path, .org_key = org_key, .body = body, .body_len = body_len});
}

static const char *messages_path(const char *conversation_id)
{
    return format_kept("/conversations/%s/messages", conversation_id);
}

static const char *conversation_path(const char *conversation_id)
{
    return format_kept("/conversations/%s", conversation_id);
}

/* --- Checks on responses ---------------------------------------------------- */

/* Checks what every response of the gateway carries. */
static void expect_common_headers(const http_response *response)
{
    cr_assert(eq(sz, http_header_count(response, "x-request-id"), 1), "%s: x-request-id headers", response->description);
    cr_assert(ne(str, (char *)http_header_value(response, "x-request-id"), ""), "%s: empty x-request-id", response->description);
    if (!any_origin_allowed)
        return;
    cr_assert(eq(sz, http_header_count(response, "access-control-allow-origin"), 1), "%s: access-control-allow-origin headers",
              response->description);
    cr_assert(eq(str, (char *)http_header_value(response, "access-control-allow-origin"), "*"), "%s", response->description);
}

static void expect_status(const http_response *response, long status)
{
    cr_assert(eq(long, response->status, status), "%s: body %.400s", response->description, response->body);
    expect_common_headers(response);
}

/* Checks the status and the JSON content type, and returns the parsed body. */
static json_t *expect_json(const http_response *response, long status)
{
    cr_assert(eq(long, response->status, status), "%s: body %.400s", response->description, response->body);
    const char *type = http_header_value(response, "content-type");
    cr_assert_not_null(type, "%s: no content-type", response->description);
    cr_assert(eq(str, (char *)type, JSON_CONTENT_TYPE), "%s", response->description);
    json_t *parsed = keep_json(json_loadb(response->body, response->body_len, 0, NULL));
    cr_assert_not_null(parsed, "%s: the body is not JSON: %.400s", response->description, response->body);
    expect_common_headers(response);
    return parsed;
}

static bool has_json_type(const json_t *value, json_type type)
{
    return value && json_typeof(value) == type;
}

static const char *string_field(const json_t *object, const char *key)
{
    json_t *value = json_object_get(object, key);
    cr_assert(has_json_type(value, JSON_STRING), "\"%s\" is missing or not a string", key);
    return json_string_value(value);
}

static json_int_t integer_field(const json_t *object, const char *key)
{
    json_t *value = json_object_get(object, key);
    cr_assert(has_json_type(value, JSON_INTEGER), "\"%s\" is missing or not an integer", key);
    return json_integer_value(value);
}

static void expect_error(const http_response *response, long status, const char *message)
{
    json_t *body = expect_json(response, status);
    cr_assert(has_json_type(body, JSON_OBJECT), "%s: the error body is not an object", response->description);
    cr_assert(eq(sz, json_object_size(body), 1), "%s: body %s", response->description, response->body);
    cr_assert(eq(str, (char *)string_field(body, "error"), (char *)message), "%s", response->description);
}

/* Checks that `object` has exactly these keys. */
static void expect_keys(const json_t *object, const char *const *keys, size_t count, const char *what)
{
    cr_assert(has_json_type(object, JSON_OBJECT), "%s is not an object", what);
    for (size_t i = 0; i < count; i++)
        cr_assert_not_null(json_object_get(object, keys[i]), "%s has no \"%s\"", what, keys[i]);
    cr_assert(eq(sz, json_object_size(object), count), "%s has other keys than expected", what);
}

static void expect_conversation_keys(const json_t *conversation)
{
    static const char *const keys[] = {"id", "orgId", "createdAt", "updatedAt", "messageCount"};
    expect_keys(conversation, keys, 5, "a listed conversation");
}

static void expect_message_keys(const json_t *message)
{
    static const char *const keys[] = {"id", "conversationId", "role", "content", "timestamp"};
    expect_keys(message, keys, 5, "a message");
}

/* A lowercase UUID: 8-4-4-4-12 hexadecimal digits. */
static bool is_uuid(const char *text)
{
    if (strlen(text) != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? text[i] != '-' : !strchr("0123456789abcdef", text[i]))
            return false;
    }
    return true;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ". */
static bool is_iso_utc_ms(const char *text)
{
    static const char pattern[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (strlen(text) != strlen(pattern))
        return false;
    for (size_t i = 0; pattern[i]; i++) {
        bool digit = text[i] >= '0' && text[i] <= '9';
        if (pattern[i] == 'd' ? !digit : text[i] != pattern[i])
            return false;
    }
    return true;
}

/* Checks that a string contains exactly `len` bytes of `expected`. */
static void expect_same_bytes(const char *actual, size_t actual_len, const char *expected, size_t len, const char *what)
{
    cr_assert(eq(sz, actual_len, len), "%s: length differs", what);
    size_t first_difference = 0;
    while (first_difference < len && actual[first_difference] == expected[first_difference])
        first_difference++;
    bool same = first_difference == len;
    cr_assert(same, "%s: the bytes differ from offset %zu of %zu on", what, first_difference, len);
}

static void expect_json_string(const json_t *value, const char *expected, size_t len, const char *what)
{
    cr_assert(has_json_type(value, JSON_STRING), "%s is not a string", what);
    expect_same_bytes(json_string_value(value), json_string_length(value), expected, len, what);
}

/* --- Steps over HTTP ---------------------------------------------------------- */

/* Creates a conversation through the gateway and returns its id. */
static const char *create_conversation_over_http(const char *org_key)
{
    json_t *created = expect_json(post("/conversations", org_key, NULL), 201);
    return format_kept("%s", string_field(created, "id"));
}

static json_t *message_document(const char *role, const char *content, size_t content_len)
{
    json_t *document = json_object();
    json_object_set_new(document, "role", json_string(role));
    json_object_set_new(document, "content", json_stringn(content, content_len));
    cr_assert_not_null(json_object_get(document, "content"), "jansson rejected the content");
    return document;
}

/* Encodes a message body as compact JSON. `flags` may add
 * JSON_ENSURE_ASCII, which writes every non-ASCII character as \u escapes. */
static char *message_json(const char *role, const char *content, size_t content_len, size_t flags)
{
    json_t *document = message_document(role, content, content_len);
    char *text = json_dumps(document, JSON_COMPACT | JSON_PRESERVE_ORDER | flags);
    json_decref(document);
    return keep(text);
}

/* Posts a message, checks the 201 reply and returns it. */
static json_t *add_message(const char *conversation_id, const char *org_key, const char *role, const char *content)
{
    json_t *added =
        expect_json(post(messages_path(conversation_id), org_key, message_json(role, content, strlen(content), 0)), 201);
    expect_message_keys(added);
    return added;
}

static json_t *read_conversation(const char *conversation_id, const char *org_key)
{
    return expect_json(get(conversation_path(conversation_id), org_key), 200);
}

static json_int_t message_count(const char *conversation_id, const char *org_key)
{
    return integer_field(read_conversation(conversation_id, org_key), "messageCount");
}

/* Returns the ids in a list of conversations, in order, as one string
 * "id,id,…" for comparisons. */
static const char *listed_ids(const json_t *list)
{
    cr_assert(has_json_type(list, JSON_ARRAY), "the list is not an array");
    size_t size = json_array_size(list) * 37 + 1;
    char *ids = keep(calloc(1, size));
    for (size_t i = 0; i < json_array_size(list); i++) {
        if (i)
            strcat(ids, ",");
        strncat(ids, string_field(json_array_get(list, i), "id"), 36);
    }
    return ids;
}

static bool list_contains(const json_t *list, const char *id)
{
    for (size_t i = 0; i < json_array_size(list); i++)
        if (strcmp(string_field(json_array_get(list, i), "id"), id) == 0)
            return true;
    return false;
}

/* Waits until the wall clock has passed `iso_time`, so that a later write
 * gets a strictly later timestamp. */
static void wait_for_clock_after(const char *iso_time)
{
    int64_t deadline = hv_time_monotonic_ms() + 5000;
    char now[HV_ISO8601_SIZE];
    do {
        cr_assert_lt(hv_time_monotonic_ms(), deadline, "the clock did not pass %s within 5 s", iso_time);
        cr_assert_eq(hv_time_format_iso8601(hv_time_now_ms(), now), 0);
    } while (strcmp(now, iso_time) <= 0);
}

/* Posts until the gateway returns 201, which it does once the store is
 * back; aborts the test when it does not within RECOVERY_TIMEOUT_MS. */
static http_response *post_until_created(const char *path, const char *org_key, const char *body)
{
    int64_t deadline = hv_time_monotonic_ms() + RECOVERY_TIMEOUT_MS;
    for (;;) {
        http_response *response = post(path, org_key, body);
        if (response->status == 201 || hv_time_monotonic_ms() >= deadline)
            return response;
        cr_assert(eq(long, response->status, 503), "%s while the store comes back: body %s", response->description, response->body);
    }
}

/* --- Raw sockets, for clients that hang up ------------------------------------ */

static int connect_to_gateway(void)
{
    return service_connect(&gateway);
}

static void send_text(int fd, const char *text)
{
    service_send(&gateway, fd, text, strlen(text));
}

/* Sends a whole request, which must ask for "Connection: close", and
 * returns everything the gateway sends back until it closes. */
static const char *raw_exchange(const char *request)
{
    int fd = connect_to_gateway();
    send_text(fd, request);
    struct timeval timeout = {.tv_sec = REQUEST_TIMEOUT_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));

    size_t len = 0, capacity = 4096;
    char *reply = keep(malloc(capacity));
    for (;;) {
        ssize_t received = recv(fd, reply + len, capacity - len - 1, 0);
        cr_assert_geq(received, 0, "reading from the gateway failed: %s", strerror(errno));
        if (received == 0)
            break;
        len += (size_t)received;
        cr_assert_lt(len, capacity - 1, "the reply is longer than %zu bytes", capacity);
    }
    close(fd);
    reply[len] = '\0';
    return reply;
}

/* Closes with a TCP reset instead of an orderly FIN. */
static void close_with_reset(int fd)
{
    struct linger linger = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
    close(fd);
}

static const char *raw_message_request(const char *conversation_id, const char *body)
{
    return format_kept("POST /conversations/%s/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nx-org-key: %s\r\n"
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                       conversation_id, key_a, strlen(body), body);
}

/* --- Row locks and a frozen store, to make the store slow --------------------- */

/* Holds the row lock of a conversation in an open transaction, so that
 * message.add on it waits until release_row_lock. */
static void lock_conversation_row(const char *conversation_id)
{
    row_locker = PQconnectdb(getenv("HELVINO_DATABASE_URL"));
    cr_assert_eq(PQstatus(row_locker), CONNECTION_OK, "%s", PQerrorMessage(row_locker));
    PQclear(PQexec(row_locker, "BEGIN"));
    const char *params[] = {conversation_id};
    PGresult *locked =
        PQexecParams(row_locker, "SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", 1, NULL, params, NULL, NULL, 0);
    ExecStatusType status = PQresultStatus(locked);
    int rows = PQntuples(locked);
    PQclear(locked);
    cr_assert_eq(status, PGRES_TUPLES_OK, "%s", PQerrorMessage(row_locker));
    cr_assert_eq(rows, 1, "conversation %s is not in the database", conversation_id);
}

/* Returns how many sessions wait for a lock that row_locker holds. Other
 * tests share the database, so waiters on their locks do not count. */
static int waiting_lock_count(void)
{
    /* pg_locks shows the current state on every call, also inside the
     * locker's own transaction. */
    char locker_pid[16];
    snprintf(locker_pid, sizeof(locker_pid), "%d", PQbackendPID(row_locker));
    const char *params[] = {locker_pid};
    PGresult *result =
        PQexecParams(row_locker, "SELECT count(*) FROM pg_locks WHERE NOT granted AND $1::int = ANY(pg_blocking_pids(pid))", 1,
                     NULL, params, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(result), PGRES_TUPLES_OK, "%s", PQerrorMessage(row_locker));
    int count = atoi(PQgetvalue(result, 0, 0));
    PQclear(result);
    return count;
}

/* Waits until a statement waits for the locked row, which shows that a
 * request has reached the store and is held there. `drive`, when not NULL,
 * runs between checks so that a curl multi transfer keeps going. */
static void wait_for_lock_waiter(void (*drive)(void *), void *data)
{
    int64_t deadline = hv_time_monotonic_ms() + LOCK_WAIT_TIMEOUT_MS;
    while (waiting_lock_count() == 0) {
        cr_assert_lt(hv_time_monotonic_ms(), deadline, "no statement waited for the row lock within %d ms", LOCK_WAIT_TIMEOUT_MS);
        if (drive)
            drive(data);
        struct timespec pause = {.tv_nsec = 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

static void release_row_lock(void)
{
    if (!row_locker)
        return;
    PQclear(PQexec(row_locker, "ROLLBACK"));
    PQfinish(row_locker);
    row_locker = NULL;
}

static void freeze_store(void)
{
    cr_assert_eq(kill(store.pid, SIGSTOP), 0, "SIGSTOP failed: %s", strerror(errno));
    store_frozen = true;
}

static void thaw_store(void)
{
    if (!store_frozen)
        return;
    kill(store.pid, SIGCONT);
    store_frozen = false;
}

/* Reads messageCount through the store, which works while the gateway is
 * stopped or stopping. */
static long long message_count_in_store(const char *org, const char *conversation_id)
{
    hv_call_result result;
    store_call(&store, &result, "conversation.get", org, "id", conversation_id, NULL);
    cr_assert_eq(result.reply.status, 200, "conversation.get returned %d", result.reply.status);
    long long count = body_int(result.reply.body, "messageCount");
    hv_call_result_destroy(&result);
    return count;
}

static void wait_for_message_count_in_store(const char *org, const char *conversation_id, long long expected)
{
    int64_t deadline = hv_time_monotonic_ms() + RECOVERY_TIMEOUT_MS;
    long long count;
    while ((count = message_count_in_store(org, conversation_id)) != expected && hv_time_monotonic_ms() < deadline) {
        struct timespec pause = {.tv_nsec = 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    cr_assert(eq(llong, count, expected), "messageCount of %s", conversation_id);
}

/* --- Fixture ----------------------------------------------------------------- */

/* Starts a gateway against the running store and waits until it reaches
 * the store.
 * NOTE: helvino-gateway serves HTTP before its ZeroMQ connection to the
 * store is up. Until then a request that needs the store gets 503 at once,
 * because ZMQ_IMMEDIATE makes the send fail. */
static void start_gateway(const char *const *extra_env, bool allows_any_origin)
{
    any_origin_allowed = allows_any_origin;
    gateway_start(&gateway, &store, extra_env);
    gateway_wait_for_store(&gateway, RECOVERY_TIMEOUT_MS);
}

/* Replaces the running gateway with one started with `extra_env`.
 * `allows_any_origin` is whether that environment allows every origin. */
static void restart_gateway(const char *const *extra_env, bool allows_any_origin)
{
    if (gateway.pid > 0)
        cr_assert(eq(int, service_stop(&gateway), 0), "helvino-gateway did not exit 0 on SIGTERM; see %s", gateway.log_path);
    start_gateway(extra_env, allows_any_origin);
}

static void start_services(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    store_start(&store, NULL);
    create_unique_org(&store, "alpha", org_a, sizeof(org_a));
    create_unique_org(&store, "beta", org_b, sizeof(org_b));
    snprintf(key_a, sizeof(key_a), "key-%s", org_a);
    snprintf(key_b, sizeof(key_b), "key-%s", org_b);

    static const char *const env[] = {"HELVINO_ACCESS_LOG=true", NULL};
    start_gateway(env, true);
}

static void stop_services(void)
{
    listener_close(&listener);
    release_row_lock();
    thaw_store();
    service_expect_clean_stop(&gateway);
    store_expect_clean_stop(&store);
    release_responses();
    release_kept();
    curl_global_cleanup();
}

TestSuite(root, .init = start_services, .fini = stop_services, .timeout = 120);
TestSuite(health, .init = start_services, .fini = stop_services, .timeout = 120);
TestSuite(routing, .init = start_services, .fini = stop_services, .timeout = 120);
TestSuite(auth, .init = start_services, .fini = stop_services, .timeout = 120);
TestSuite(conversations, .init = start_services, .fini = stop_services, .timeout = 120);
TestSuite(messages, .init = start_services, .fini = stop_services, .timeout = 180);
TestSuite(isolation, .init = start_services, .fini = stop_services, .timeout = 120);
TestSuite(cors, .init = start_services, .fini = stop_services, .timeout = 120);
TestSuite(request_id, .init = start_services, .fini = stop_services, .timeout = 120);
TestSuite(store_outage, .init = start_services, .fini = stop_services, .timeout = 180);
TestSuite(hangup, .init = start_services, .fini = stop_services, .timeout = 180);
TestSuite(shutdown, .init = start_services, .fini = stop_services, .timeout = 120);

/* --- GET / and GET /health ------------------------------------------------------ */

Test(root, lists_name_version_and_endpoints)
{
    json_t *root = expect_json(get("/", NULL), 200);

    cr_assert(ne(str, (char *)string_field(root, "name"), ""));
    cr_assert(ne(str, (char *)string_field(root, "version"), ""));
    json_t *endpoints = json_object_get(root, "endpoints");
    cr_assert(has_json_type(endpoints, JSON_ARRAY), "\"endpoints\" is not an array");

    static const char *const routes[] = {"GET /",
                                         "GET /health",
                                         "GET /conversations",
                                         "POST /conversations",
                                         "GET /conversations/:id",
                                         "POST /conversations/:id/messages"};
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        bool listed = false;
        for (size_t j = 0; j < json_array_size(endpoints); j++) {
            json_t *endpoint = json_array_get(endpoints, j);
            cr_assert(has_json_type(endpoint, JSON_STRING), "endpoint %zu is not a string", j);
            listed = listed || strcmp(json_string_value(endpoint), routes[i]) == 0;
        }
        cr_assert(listed, "\"endpoints\" does not list \"%s\"", routes[i]);
    }
}

Test(health, reports_store_ok_without_key)
{
    json_t *health = expect_json(get("/health", NULL), 200);

    cr_assert(eq(sz, json_object_size(health), 2), "body %s", json_dumps(health, 0));
    cr_assert(eq(str, (char *)string_field(health, "status"), "ok"));
    cr_assert(eq(str, (char *)string_field(health, "store"), "ok"));

    /* A key, even an invalid one, changes nothing on a route without one. */
    expect_json(get("/health", "nope"), 200);
    expect_json(get("/", "nope"), 200);
}

/* --- Routing ------------------------------------------------------------------------ */

Test(routing, unknown_path_gets_404)
{
    static const char *const paths[] = {
        "/nope", "/conversationsx", "/health/x", "/conversations/x/messages/y", "/conversations/x/other", "/Conversations"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        expect_error(get(paths[i], key_a), 404, "Not found");
        expect_error(post(paths[i], key_a, "{}"), 404, "Not found");
        expect_error(get(paths[i], NULL), 404, "Not found");
    }
}

Test(routing, other_method_gets_405_with_allow)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    struct {
        const char *method;
        const char *path;
        const char *allowed[2]; /* methods the Allow header must list */
    } cases[] = {
        {"DELETE", "/conversations", {"GET", "POST"}},
        {"PUT", "/conversations", {"GET", "POST"}},
        {"POST", conversation_path(conversation_id), {"GET", NULL}},
        {"DELETE", conversation_path(conversation_id), {"GET", NULL}},
        {"GET", messages_path(conversation_id), {"POST", NULL}},
        {"PATCH", messages_path(conversation_id), {"POST", NULL}},
        {"POST", "/health", {"GET", NULL}},
        {"DELETE", "/", {"GET", NULL}},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        http_response *response =
            send_request(&(gateway_request){.method = cases[i].method, .path = cases[i].path, .org_key = key_a});
        json_t *body = expect_json(response, 405);
        cr_assert(has_json_type(json_object_get(body, "error"), JSON_STRING), "%s: no error message", response->description);

        const char *allow = http_header_value(response, "allow");
        cr_assert_not_null(allow, "%s: no Allow header", response->description);
        for (size_t j = 0; j < 2 && cases[i].allowed[j]; j++)
            cr_assert(http_list_has_token(allow, cases[i].allowed[j]), "%s: Allow \"%s\" lacks %s", response->description, allow,
                      cases[i].allowed[j]);
        cr_assert(not(http_list_has_token(allow, cases[i].method)), "%s: Allow \"%s\" lists the method", response->description,
                  allow);
    }
}

/* --- Authentication ------------------------------------------------------------------ */

/* The org-scoped routes, with a conversation of org A where one is needed. */
typedef struct {
    const char *method;
    const char *path;
    const char *body;
} scoped_route;

static size_t scoped_routes(scoped_route routes[4], const char *conversation_id)
{
    routes[0] = (scoped_route){"GET", "/conversations", NULL};
    routes[1] = (scoped_route){"POST", "/conversations", NULL};
    routes[2] = (scoped_route){"GET", conversation_path(conversation_id), NULL};
    routes[3] = (scoped_route){"POST", messages_path(conversation_id), "{\"role\":\"user\",\"content\":\"hello\"}"};
    return 4;
}

static http_response *send_scoped(const scoped_route *route, const char *org_key, const char *header, const char *second_header)
{
    gateway_request request = {
        .method = route->method,
        .path = route->path,
        .org_key = org_key,
        .body = route->body,
        .body_len = route->body ? strlen(route->body) : 0,
        .headers = {header, second_header},
    };
    return send_request(&request);
}

static void expect_nothing_created(const char *conversation_id, size_t conversations_expected)
{
    json_t *list = expect_json(get("/conversations", key_a), 200);
    cr_assert(eq(sz, json_array_size(list), conversations_expected), "conversations of org A: %s", listed_ids(list));
    cr_assert(eq(i64, (int64_t)message_count(conversation_id, key_a), 0));
}

Test(auth, missing_or_empty_key_gets_401)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    scoped_route routes[4];
    size_t route_count = scoped_routes(routes, conversation_id);

    for (size_t i = 0; i < route_count; i++) {
        expect_error(send_scoped(&routes[i], NULL, NULL, NULL), 401, "Missing x-org-key header");
        expect_error(send_scoped(&routes[i], "", NULL, NULL), 401, "Missing x-org-key header");
        expect_error(send_scoped(&routes[i], NULL, "x-org-key: \t ", NULL), 401, "Missing x-org-key header");
    }
    expect_nothing_created(conversation_id, 1);
}

Test(auth, wrong_case_or_unknown_key_gets_401)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    scoped_route routes[4];
    size_t route_count = scoped_routes(routes, conversation_id);

    char *upper_key = format_kept("%s", key_a);
    for (char *c = upper_key; *c; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char)(*c - 'a' + 'A');
    const char *keys[] = {
        "nope",
        "DEMO",
        "Demo",
        "demo2",
        "dem",
        upper_key,
        format_kept("%s-", key_a),
        format_kept("%.*s", (int)strlen(key_a) - 1, key_a),
        format_kept("x%s", key_a),
        repeat_to_length("k", 300),
    };

    for (size_t i = 0; i < route_count; i++)
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
            expect_error(send_scoped(&routes[i], keys[k], NULL, NULL), 401, "Invalid organization key");
    expect_nothing_created(conversation_id, 1);
}

Test(auth, repeated_key_header_gets_401)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    scoped_route routes[4];
    size_t route_count = scoped_routes(routes, conversation_id);

    const char *valid = format_kept("x-org-key: %s", key_a);
    const char *pairs[][2] = {
        {valid, valid},
        {valid, "x-org-key: nope"},
        {"x-org-key: nope", valid},
        {valid, "x-org-key;"},
        {"x-org-key;", valid},
        {valid, format_kept("x-org-key: %s", key_b)},
        {valid, format_kept("X-Org-Key: %s", key_a)},
        {"x-org-key;", "x-org-key;"},
    };

    for (size_t i = 0; i < route_count; i++)
        for (size_t p = 0; p < sizeof(pairs) / sizeof(pairs[0]); p++)
            expect_error(send_scoped(&routes[i], NULL, pairs[p][0], pairs[p][1]), 401, "Invalid organization key");
    expect_nothing_created(conversation_id, 1);
}

Test(auth, padded_key_is_valid)
{
    const char *padded = format_kept("x-org-key: \t %s \t", key_a);
    const char *conversation_id = create_conversation_over_http(key_a);

    http_response *created = send_request(&(gateway_request){.method = "POST", .path = "/conversations", .headers = {padded}});
    expect_json(created, 201);
    json_t *list = expect_json(send_request(&(gateway_request){.path = "/conversations", .headers = {padded}}), 200);
    cr_assert(eq(sz, json_array_size(list), 2));
    expect_json(send_request(&(gateway_request){.path = conversation_path(conversation_id), .headers = {padded}}), 200);

    /* curl may trim the value itself, so send the padding byte for byte. */
    const char *reply = raw_exchange(
        format_kept("GET /conversations HTTP/1.1\r\nHost: 127.0.0.1\r\nx-org-key: \t %s \t\r\nConnection: close\r\n\r\n", key_a));
    cr_assert(eq(str, format_kept("%.12s", reply), "HTTP/1.1 200"), "reply: %.300s", reply);

    /* The demo org's key is lowercase "demo". */
    expect_json(get("/conversations", "demo"), 200);
}

/* --- Conversations --------------------------------------------------------------- */

Test(conversations, create_returns_id_and_created_at)
{
    const gateway_request requests[] = {
        {.method = "POST", .path = "/conversations", .org_key = key_a},
        {.method = "POST", .path = "/conversations", .org_key = key_a, .body = "", .body_len = 0},
        {.method = "POST", .path = "/conversations", .org_key = key_a, .body = "{}", .body_len = 2},
        {.method = "POST", .path = "/conversations", .org_key = key_a, .body = "{\"title\":\"ignored\"}", .body_len = 19},
    };
    size_t count = sizeof(requests) / sizeof(requests[0]);
    const char *ids[4];
    const char *created_at[4];

    for (size_t i = 0; i < count; i++) {
        json_t *created = expect_json(send_request(&requests[i]), 201);
        static const char *const keys[] = {"id", "createdAt"};
        expect_keys(created, keys, 2, "a created conversation");
        ids[i] = format_kept("%s", string_field(created, "id"));
        created_at[i] = format_kept("%s", string_field(created, "createdAt"));
        cr_assert(is_uuid(ids[i]), "id \"%s\" is not a lowercase UUID", ids[i]);
        cr_assert(is_iso_utc_ms(created_at[i]), "createdAt \"%s\" is not ISO-8601 UTC with milliseconds", created_at[i]);
    }

    json_t *list = expect_json(get("/conversations", key_a), 200);
    cr_assert(eq(sz, json_array_size(list), count), "listed: %s", listed_ids(list));
    for (size_t i = 0; i < count; i++) {
        cr_assert(list_contains(list, ids[i]), "conversation %s is not listed", ids[i]);
        json_t *conversation = read_conversation(ids[i], key_a);
        cr_assert(eq(str, (char *)string_field(conversation, "createdAt"), (char *)created_at[i]));
        cr_assert(eq(str, (char *)string_field(conversation, "orgId"), org_a));
    }
}

Test(conversations, create_rejects_non_object_body)
{
    static const char *const bodies[] = {"[]", "[{}]",     "\"text\"", "1",          "null",   "true",
                                         "{",  "not json", "{}x",      "{\"a\":1}}", "{'a':1}"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        expect_error(post("/conversations", key_a, bodies[i]), 400, "Invalid JSON body");

    json_t *list = expect_json(get("/conversations", key_a), 200);
    cr_assert(eq(sz, json_array_size(list), 0), "created anyway: %s", listed_ids(list));
}

Test(conversations, list_returns_newest_updated_first)
{
    const char *first = create_conversation_over_http(key_a);
    const char *second = create_conversation_over_http(key_a);
    const char *third = create_conversation_over_http(key_a);
    create_conversation_over_http(key_b);

    /* A message moves the first conversation's updatedAt past the others'. */
    wait_for_clock_after(string_field(read_conversation(third, key_a), "updatedAt"));
    add_message(first, key_a, "user", "moves it to the top");

    http_response *response = get("/conversations", key_a);
    json_t *list = expect_json(response, 200);
    cr_assert(has_json_type(list, JSON_ARRAY));
    cr_assert(eq(sz, json_array_size(list), 3), "listed: %s", listed_ids(list));
    cr_assert(eq(str, (char *)string_field(json_array_get(list, 0), "id"), (char *)first), "listed: %s", listed_ids(list));
    cr_assert(eq(sz, http_header_count(response, "x-next-cursor"), 0), "a single page has a cursor");

    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *conversation = json_array_get(list, i);
        expect_conversation_keys(conversation);
        cr_assert(eq(str, (char *)string_field(conversation, "orgId"), org_a));
        const char *id = string_field(conversation, "id");
        cr_assert(strcmp(id, first) == 0 || strcmp(id, second) == 0 || strcmp(id, third) == 0, "%s is not org A's", id);
        cr_assert(eq(i64, (int64_t)integer_field(conversation, "messageCount"), strcmp(id, first) == 0 ? 1 : 0));
        cr_assert(is_iso_utc_ms(string_field(conversation, "updatedAt")));
        if (i > 0) {
            const char *newer = string_field(json_array_get(list, i - 1), "updatedAt");
            cr_assert(le(str, (char *)string_field(conversation, "updatedAt"), (char *)newer), "item %zu is newer than item %zu", i,
                      i - 1);
        }
    }
}

Test(conversations, limit_must_be_1_to_200)
{
    create_conversation_over_http(key_a);
    create_conversation_over_http(key_a);

    static const char *const invalid[] = {"0",    "201", "-1",   "abc",         "",          "1.5", "1e2", "%205",
                                          "5%20", "+5",  "0x10", "99999999999", "2147483648"};
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        expect_error(get(format_kept("/conversations?limit=%s", invalid[i]), key_a), 400,
                     "Invalid limit. Must be an integer from 1 to 200");

    http_response *one = get("/conversations?limit=1", key_a);
    cr_assert(eq(sz, json_array_size(expect_json(one, 200)), 1));
    cr_assert(eq(sz, http_header_count(one, "x-next-cursor"), 1), "a page with more after it has no cursor");
    http_response *largest = get("/conversations?limit=200", key_a);
    cr_assert(eq(sz, json_array_size(expect_json(largest, 200)), 2));
    cr_assert(eq(sz, http_header_count(largest, "x-next-cursor"), 0));
}

/* Follows x-next-cursor from `first_path` to the last page and returns
 * every id in order. Checks that each page has at most `page_size`. */
static const char *walk_pages(const char *first_path, size_t page_size, size_t *pages)
{
    char *all_ids = keep(calloc(1, 1));
    const char *path = first_path;
    *pages = 0;
    for (;;) {
        http_response *response = get(path, key_a);
        json_t *page = expect_json(response, 200);
        cr_assert(has_json_type(page, JSON_ARRAY));
        cr_assert(le(sz, json_array_size(page), page_size), "page %zu of %s", *pages, first_path);
        (*pages)++;
        cr_assert_lt(*pages, 100, "the pages of %s do not end", first_path);

        const char *ids = listed_ids(page);
        all_ids = *all_ids ? format_kept("%s,%s", all_ids, ids) : format_kept("%s", ids);

        const char *cursor = http_header_value(response, "x-next-cursor");
        if (!cursor)
            return all_ids;
        cr_assert(eq(sz, json_array_size(page), page_size), "a page before the last one is not full");
        cr_assert(eq(sz, http_header_count(response, "x-next-cursor"), 1));

        /* A client percent-encodes the cursor as any query value. */
        char *escaped = curl_easy_escape(NULL, cursor, 0);
        cr_assert_not_null(escaped);
        const char *separator = strchr(first_path, '?') ? "&" : "?";
        path = format_kept("%s%scursor=%s", first_path, separator, escaped);
        curl_free(escaped);
    }
}

Test(conversations, list_defaults_to_50_with_cursor)
{
    enum { TOTAL = DEFAULT_LIST_LIMIT + 3 };
    char ids[TOTAL][37];
    for (size_t i = 0; i < TOTAL; i++)
        create_conversation(&store, org_a, ids[i]);
    create_conversation_over_http(key_b);

    size_t pages;
    const char *default_walk = walk_pages("/conversations", DEFAULT_LIST_LIMIT, &pages);
    cr_assert(eq(sz, pages, 2), "pages of 50 over %d conversations", TOTAL);
    const char *small_walk = walk_pages("/conversations?limit=20", 20, &pages);
    cr_assert(eq(sz, pages, 3), "pages of 20 over %d conversations", TOTAL);
    const char *exact_walk = walk_pages(format_kept("/conversations?limit=%d", TOTAL), TOTAL, &pages);
    cr_assert(eq(sz, pages, 1), "a page that holds every conversation has a cursor");

    /* Every walk lists each conversation once, in the same order. */
    cr_assert(eq(str, (char *)small_walk, (char *)default_walk));
    cr_assert(eq(str, (char *)exact_walk, (char *)default_walk));
    cr_assert(eq(sz, strlen(default_walk), (size_t)TOTAL * 37 - 1), "listed: %s", default_walk);
    for (size_t i = 0; i < TOTAL; i++) {
        const char *found = strstr(default_walk, ids[i]);
        cr_assert_not_null(found, "conversation %s is missing from the pages", ids[i]);
        cr_assert_null(strstr(found + 1, ids[i]), "conversation %s is listed twice", ids[i]);
    }
}

Test(conversations, list_rejects_bad_cursor)
{
    create_conversation_over_http(key_a);
    static const char *const cursors[] = {"garbage",
                                          "",
                                          "123",
                                          "_",
                                          "123_",
                                          "_01a242e5-9219-70d6-815e-a1a9c836ad7b",
                                          "abc_01a242e5-9219-70d6-815e-a1a9c836ad7b",
                                          "123_not-a-uuid",
                                          "123_01A242E5"};
    for (size_t i = 0; i < sizeof(cursors) / sizeof(cursors[0]); i++) {
        http_response *response = get(format_kept("/conversations?cursor=%s", cursors[i]), key_a);
        json_t *body = expect_json(response, 400);
        cr_assert(has_json_type(json_object_get(body, "error"), JSON_STRING), "%s: no error message", response->description);
    }
}

Test(conversations, get_returns_messages_oldest_first)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    const char *roles[] = {"user", "assistant", "user"};
    const char *contents[] = {"first", "second", "third"};
    const char *message_ids[3];
    for (size_t i = 0; i < 3; i++)
        message_ids[i] = format_kept("%s", string_field(add_message(conversation_id, key_a, roles[i], contents[i]), "id"));

    json_t *conversation = read_conversation(conversation_id, key_a);
    static const char *const keys[] = {"id", "orgId", "createdAt", "updatedAt", "messageCount", "messages"};
    expect_keys(conversation, keys, 6, "a conversation");
    cr_assert(eq(str, (char *)string_field(conversation, "id"), (char *)conversation_id));
    cr_assert(eq(str, (char *)string_field(conversation, "orgId"), org_a));
    cr_assert(is_iso_utc_ms(string_field(conversation, "createdAt")));
    cr_assert(is_iso_utc_ms(string_field(conversation, "updatedAt")));
    cr_assert(eq(i64, (int64_t)integer_field(conversation, "messageCount"), 3));

    json_t *messages = json_object_get(conversation, "messages");
    cr_assert(has_json_type(messages, JSON_ARRAY));
    cr_assert(eq(sz, json_array_size(messages), 3));
    for (size_t i = 0; i < 3; i++) {
        json_t *message = json_array_get(messages, i);
        expect_message_keys(message);
        cr_assert(eq(str, (char *)string_field(message, "id"), (char *)message_ids[i]), "message %zu", i);
        cr_assert(eq(str, (char *)string_field(message, "conversationId"), (char *)conversation_id));
        cr_assert(eq(str, (char *)string_field(message, "role"), (char *)roles[i]));
        cr_assert(eq(str, (char *)string_field(message, "content"), (char *)contents[i]));
        cr_assert(is_iso_utc_ms(string_field(message, "timestamp")));
        if (i > 0)
            cr_assert(le(str, (char *)string_field(json_array_get(messages, i - 1), "timestamp"),
                         (char *)string_field(message, "timestamp")));
    }
}

Test(conversations, unknown_or_malformed_id_gets_404)
{
    create_conversation_over_http(key_a);
    const char *ids[] = {"01a242e5-9219-70d6-815e-a1a9c836ad7b",
                         "00000000-0000-0000-0000-000000000000",
                         "not-a-uuid",
                         "123",
                         "01a242e5921970d6815ea1a9c836ad7b",
                         repeat_to_length("a", 1000),
                         "%20"};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        expect_error(get(conversation_path(ids[i]), key_a), 404, "Conversation not found");
}

/* --- Messages ---------------------------------------------------------------------- */

Test(messages, add_returns_the_message)
{
    const char *conversation_id = create_conversation_over_http(key_a);

    static const char *const roles[] = {"user", "assistant"};
    for (size_t i = 0; i < 2; i++) {
        json_t *added = add_message(conversation_id, key_a, roles[i], "Hello there");
        cr_assert(is_uuid(string_field(added, "id")), "id \"%s\"", string_field(added, "id"));
        cr_assert(eq(str, (char *)string_field(added, "conversationId"), (char *)conversation_id));
        cr_assert(eq(str, (char *)string_field(added, "role"), (char *)roles[i]));
        cr_assert(eq(str, (char *)string_field(added, "content"), "Hello there"));
        cr_assert(is_iso_utc_ms(string_field(added, "timestamp")), "timestamp \"%s\"", string_field(added, "timestamp"));
    }
    cr_assert(eq(i64, (int64_t)message_count(conversation_id, key_a), 2));
}

Test(messages, missing_or_empty_fields_get_400)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    static const char *const bodies[] = {
        "{}",
        "{\"role\":\"user\"}",
        "{\"content\":\"hello\"}",
        "{\"role\":\"\",\"content\":\"hello\"}",
        "{\"role\":\"user\",\"content\":\"\"}",
        "{\"role\":null,\"content\":\"hello\"}",
        "{\"role\":\"user\",\"content\":null}",
        "{\"role\":1,\"content\":\"hello\"}",
        "{\"role\":\"user\",\"content\":42}",
        "{\"role\":\"user\",\"content\":true}",
        "{\"role\":[\"user\"],\"content\":\"hello\"}",
        "{\"role\":\"user\",\"content\":[\"hello\"]}",
        "{\"role\":\"user\",\"content\":{\"text\":\"hello\"}}",
        "{\"Role\":\"user\",\"Content\":\"hello\"}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        expect_error(post(messages_path(conversation_id), key_a, bodies[i]), 400, "Missing required fields: role, content");
    cr_assert(eq(i64, (int64_t)message_count(conversation_id, key_a), 0));
}

Test(messages, body_without_content_gets_400)
{
    /* The contract does not say whether an empty body is invalid JSON or
     * a body without fields, so only the status is checked. */
    const char *conversation_id = create_conversation_over_http(key_a);
    http_response *empty = post_bytes(messages_path(conversation_id), key_a, "", 0);
    json_t *body = expect_json(empty, 400);
    cr_assert(has_json_type(json_object_get(body, "error"), JSON_STRING));
    http_response *none = post(messages_path(conversation_id), key_a, NULL);
    body = expect_json(none, 400);
    cr_assert(has_json_type(json_object_get(body, "error"), JSON_STRING));
    cr_assert(eq(i64, (int64_t)message_count(conversation_id, key_a), 0));
}

Test(messages, unknown_role_gets_400)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    static const char *const roles[] = {"system", "User",  "USER",        "Assistant",        "admin",
                                        " user",  "user ", "user\\u0000", "user\\nassistant", "bot"};
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        const char *body = format_kept("{\"role\":\"%s\",\"content\":\"hello\"}", roles[i]);
        expect_error(post(messages_path(conversation_id), key_a, body), 400, "Invalid role. Must be 'user' or 'assistant'");
    }
    cr_assert(eq(i64, (int64_t)message_count(conversation_id, key_a), 0));
}

Test(messages, non_object_body_gets_400)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    static const char *const bodies[] = {
        "{",
        "not json",
        "[]",
        "[{\"role\":\"user\",\"content\":\"hello\"}]",
        "\"text\"",
        "null",
        "42",
        "{\"role\":\"user\",\"content\":\"hello\"} trailing",
        "{\"role\":\"user\",\"content\":\"hello\"}{}",
        "{\"role\":\"user\",\"content\":\"hello\",}",
        "{'role':'user','content':'hello'}",
        "{\"role\":\"user\",\"content\":\"raw\ttab\"}",
        "{\"role\":\"user\",\"content\":\"bad \\x escape\"}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        expect_error(post(messages_path(conversation_id), key_a, bodies[i]), 400, "Invalid JSON body");
    cr_assert(eq(i64, (int64_t)message_count(conversation_id, key_a), 0));
}

Test(messages, invalid_utf8_or_lone_surrogate_gets_400)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    static const char *const contents[] = {
        "\xff",              /* never valid */
        "ok \xc3",           /* a sequence cut short at the end */
        "\xe2\x82 cut",      /* a sequence cut short in the middle */
        "\xc0\xaf",          /* an overlong "/" */
        "\xed\xa0\x80",      /* a surrogate encoded as UTF-8 */
        "\xf4\x90\x80\x80",  /* above U+10FFFF */
        "\x80 continuation", /* a continuation byte alone */
        "\\ud800",           /* escapes of a lone high surrogate */
        "x\\udc00",          /* a lone low surrogate */
        "\\ud800\\u0041",    /* a high surrogate followed by no low one */
        "\\ud83d",           /* half of an emoji */
        "\\ude00\\ud83d",    /* a pair in the wrong order */
    };
    for (size_t i = 0; i < sizeof(contents) / sizeof(contents[0]); i++) {
        const char *body = format_kept("{\"role\":\"user\",\"content\":\"%s\"}", contents[i]);
        expect_error(post(messages_path(conversation_id), key_a, body), 400, "Invalid JSON body");
    }

    /* Invalid text anywhere in the body, even in a field that is ignored. */
    expect_error(post(messages_path(conversation_id), key_a, "{\"role\":\"user\",\"content\":\"ok\",\"note\":\"\xff\"}"), 400,
                 "Invalid JSON body");
    expect_error(post(messages_path(conversation_id), key_a, "{\"role\":\"user\",\"content\":\"ok\",\"\xfe\":1}"), 400,
                 "Invalid JSON body");
    cr_assert(eq(i64, (int64_t)message_count(conversation_id, key_a), 0));
}

Test(messages, nul_character_gets_400)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    static const char *const contents[] = {"\\u0000", "a\\u0000b", "text then NUL\\u0000", "\\u0000\\u0000"};
    for (size_t i = 0; i < sizeof(contents) / sizeof(contents[0]); i++) {
        const char *body = format_kept("{\"role\":\"user\",\"content\":\"%s\"}", contents[i]);
        expect_error(post(messages_path(conversation_id), key_a, body), 400, "Content must not contain NUL characters");
    }
    cr_assert(eq(i64, (int64_t)message_count(conversation_id, key_a), 0));
}

Test(messages, unknown_fields_are_ignored)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    const char *body = "{\"id\":\"forged\",\"conversationId\":\"01a242e5-9219-70d6-815e-a1a9c836ad7b\","
                       "\"timestamp\":\"1999-01-01T00:00:00.000Z\",\"role\":\"user\",\"content\":\"kept\","
                       "\"extra\":{\"nested\":[1,2,{\"deep\":null}]},\"orgId\":\"org_1\"}";
    json_t *added = expect_json(post(messages_path(conversation_id), key_a, body), 201);

    expect_message_keys(added);
    cr_assert(ne(str, (char *)string_field(added, "id"), "forged"));
    cr_assert(eq(str, (char *)string_field(added, "conversationId"), (char *)conversation_id));
    cr_assert(ne(str, (char *)string_field(added, "timestamp"), "1999-01-01T00:00:00.000Z"));
    cr_assert(eq(str, (char *)string_field(added, "content"), "kept"));
    cr_assert(eq(i64, (int64_t)message_count(conversation_id, key_a), 1));
}

Test(messages, unknown_or_malformed_conversation_gets_404)
{
    create_conversation_over_http(key_a);
    const char *body = "{\"role\":\"user\",\"content\":\"hello\"}";
    const char *ids[] = {"01a242e5-9219-70d6-815e-a1a9c836ad7b", "not-a-uuid", "123", repeat_to_length("f", 500)};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        expect_error(post(messages_path(ids[i]), key_a, body), 404, "Conversation not found");
}

/* Returns a message body of exactly `body_len` bytes: ASCII content padded
 * to fill it. */
static const char *body_of_length(size_t body_len)
{
    static const char prefix[] = "{\"role\":\"user\",\"content\":\"";
    static const char suffix[] = "\"}";
    size_t overhead = strlen(prefix) + strlen(suffix);
    cr_assert_gt(body_len, overhead);
    const char *content = repeat_to_length("0123456789abcdef", body_len - overhead);
    const char *body = format_kept("%s%s%s", prefix, content, suffix);
    cr_assert(eq(sz, strlen(body), body_len));
    return body;
}

Test(messages, body_over_limit_gets_413)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    const char *path = messages_path(conversation_id);

    expect_json(post(path, key_a, body_of_length(DEFAULT_MAX_BODY_BYTES)), 201);
    expect_error(post(path, key_a, body_of_length(DEFAULT_MAX_BODY_BYTES + 1)), 413, "Request body too large");
    expect_error(post(path, key_a, body_of_length(4 * DEFAULT_MAX_BODY_BYTES)), 413, "Request body too large");

    /* Without Content-Length the size is only known once the body is in. */
    const char *chunked_body = body_of_length(2 * DEFAULT_MAX_BODY_BYTES);
    http_response *chunked = send_request(&(gateway_request){.path = path,
                                                             .org_key = key_a,
                                                             .body = chunked_body,
                                                             .body_len = strlen(chunked_body),
                                                             .headers = {"Transfer-Encoding: chunked"}});
    expect_error(chunked, 413, "Request body too large");
    cr_assert(eq(i64, (int64_t)message_count(conversation_id, key_a), 1));
}

Test(messages, body_far_over_limit_gets_413)
{
    const char *conversation_id = create_conversation_over_http(key_a);

    /* 32 times the limit: h2o 2.2.5 itself reads and rejects a body over its
     * max_request_entity_size (16 times HELVINO_MAX_BODY_BYTES, set in
     * gateway/main.c) before the handler runs, so the reply is h2o's plain
     * 413, not the contract's JSON one. Only the status is the same. */
    http_response *response = post(messages_path(conversation_id), key_a, body_of_length(32 * DEFAULT_MAX_BODY_BYTES));
    cr_assert(eq(i64, (int64_t)response->status, 413), "%s", response->description);
    cr_assert(eq(i64, (int64_t)message_count(conversation_id, key_a), 0));
}

/* A content that must come back byte for byte. */
typedef struct {
    const char *name;
    const char *text;
    size_t len;
} content_case;

/* Waits for the next message:new event of org A and checks it carries
 * `message`. */
static void expect_message_event(const json_t *message, const char *what)
{
    received_event event;
    int64_t deadline = hv_time_monotonic_ms() + EVENT_TIMEOUT_MS;
    for (;;) {
        int left = (int)(deadline - hv_time_monotonic_ms());
        cr_assert(left > 0 && listener_next(&listener, left, &event), "%s: no message:new event within %d ms", what,
                  EVENT_TIMEOUT_MS);
        if (strcmp(event.event, "message:new") == 0)
            break;
        received_event_destroy(&event);
    }

    /* Copy what is checked, so that the event is freed before any
     * assertion can end the test. */
    const msgpack_object *data_message = hv_mp_map_get(&event.data, "message");
    const char *id = "", *conversation_id = "", *content = "";
    size_t id_len = 0, conversation_id_len = 0, content_len = 0;
    bool complete = hv_mp_map_get_str(data_message, "id", &id, &id_len) &&
                    hv_mp_map_get_str(&event.data, "conversationId", &conversation_id, &conversation_id_len) &&
                    hv_mp_map_get_str(data_message, "content", &content, &content_len);
    char *copied_id = format_kept("%.*s", (int)id_len, id);
    char *copied_conversation = format_kept("%.*s", (int)conversation_id_len, conversation_id);
    char *copied_content = keep(malloc(content_len + 1));
    memcpy(copied_content, content, content_len);
    received_event_destroy(&event);

    cr_assert(complete, "%s: the event lacks the message's id, conversationId or content", what);
    cr_assert(eq(str, copied_id, (char *)string_field(message, "id")), "%s: the event is for another message", what);
    cr_assert(eq(str, copied_conversation, (char *)string_field(message, "conversationId")), "%s", what);
    const json_t *expected = json_object_get(message, "content");
    expect_same_bytes(copied_content, content_len, json_string_value(expected), json_string_length(expected), what);
}

/* Posts each content as a raw UTF-8 body and, when it fits the limit, as
 * an ASCII body with \u escapes. Checks the reply and the event of each,
 * then the conversation read back. */
static void expect_contents_round_trip(const content_case *cases, size_t count, size_t max_body_bytes)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    listener_open(&listener, &store, org_a);

    size_t posted = 0;
    const content_case **expected = keep(calloc(count * 2, sizeof(*expected)));
    for (size_t i = 0; i < count; i++) {
        for (int ascii = 0; ascii <= 1; ascii++) {
            const char *body = message_json("user", cases[i].text, cases[i].len, ascii ? JSON_ENSURE_ASCII : 0);
            if (strlen(body) > max_body_bytes) {
                cr_assert(ascii, "the raw body of \"%s\" is over the limit; the case is wrong", cases[i].name);
                continue;
            }
            const char *what = format_kept("%s (%s body)", cases[i].name, ascii ? "escaped" : "raw");

            json_t *added = expect_json(post(messages_path(conversation_id), key_a, body), 201);
            expect_message_keys(added);
            expect_json_string(json_object_get(added, "content"), cases[i].text, cases[i].len, what);
            expect_message_event(added, what);
            expected[posted++] = &cases[i];
        }
    }

    json_t *conversation = read_conversation(conversation_id, key_a);
    cr_assert(eq(i64, (int64_t)integer_field(conversation, "messageCount"), (int64_t)posted));
    json_t *messages = json_object_get(conversation, "messages");
    cr_assert(eq(sz, json_array_size(messages), posted));
    for (size_t i = 0; i < posted; i++)
        expect_json_string(json_object_get(json_array_get(messages, i), "content"), expected[i]->text, expected[i]->len,
                           format_kept("%s read back", expected[i]->name));
}

#define CONTENT(name, text)                                                                                                        \
    {                                                                                                                              \
        name, text, sizeof(text) - 1                                                                                               \
    }

Test(messages, content_is_kept_byte_for_byte)
{
    size_t near_limit = DEFAULT_MAX_BODY_BYTES - strlen("{\"role\":\"user\",\"content\":\"\"}");
    const content_case cases[] = {
        CONTENT("one byte", "x"),
        CONTENT("quotes", "He said \"hi\" and \"bye\""),
        CONTENT("backslashes", "C:\\path\\to\\file \\\\ and \\\" and \\n written out"),
        CONTENT("slashes", "</script> and // and \\/"),
        CONTENT("control characters", "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16"
                                      "\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f"),
        CONTENT("white space", "  tab\there\nnew line\r\nand trailing  "),
        CONTENT("emoji",
                "\xf0\x9f\x98\x80 \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d"
                "\xf0\x9f\x91\xa7 \xf0\x9f\x87\xb3\xf0\x9f\x87\xb4"),
        CONTENT("right-to-left text",
                "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xd7\xa2\xd7\x95\xd7\x9c\xd7\x9d and \xd9\x85\xd8\xb1\xd8\xad"
                "\xd8\xa8\xd8\xa7 \xe2\x80\x8f\xe2\x80\xae reversed\xe2\x80\xac"),
        CONTENT("combining marks", "e\xcc\x81 a\xcc\x88 Z\xcc\xa4\xcd\x94\xcd\xa7\xcc\x91 n\xcc\x83"),
        CONTENT("other scripts", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xed\x95\x9c\xea\xb5\xad\xec\x96\xb4 \xd0\x9f\xd1\x80\xd0"
                                 "\xb8\xd0\xb2\xd0\xb5\xd1\x82"),
        CONTENT("invisible and edge code points", "\xef\xbb\xbf BOM, \xe2\x80\xa8 LS, \xe2\x80\xa9 PS, \xef\xbf\xbf U+FFFF, "
                                                  "\xf4\x8f\xbf\xbf U+10FFFF, \xc2\x80 U+0080"),
        {"31 bytes (fixstr)", repeat_to_length("abc", 31), 31},
        {"32 bytes (str8)", repeat_to_length("abc", 32), 32},
        {"255 bytes (str8)", repeat_to_length("abcdefg", 255), 255},
        {"256 bytes (str16)", repeat_to_length("abcdefg", 256), 256},
        {"256 bytes of two-byte characters", repeat_to_length("\xc3\xa9", 256), 256},
        {"32 bytes of emoji", repeat_to_length("\xf0\x9f\x98\x80", 32), 32},
        {"63 000 bytes of three-byte characters", repeat_to_length("\xe2\x82\xac", 63000), 63000},
        {"body of exactly the limit", repeat_to_length("0123456789", near_limit), near_limit},
    };
    expect_contents_round_trip(cases, sizeof(cases) / sizeof(cases[0]), DEFAULT_MAX_BODY_BYTES);
}

Test(messages, escaped_content_is_decoded)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    struct {
        const char *json;
        const char *decoded;
    } cases[] = {
        {"\\/ \\\" \\\\ \\b \\f \\n \\r \\t", "/ \" \\ \b \f \n \r \t"},
        {"\\u00e9 \\u00E9 \\u20ac", "\xc3\xa9 \xc3\xa9 \xe2\x82\xac"},
        {"\\ud83d\\ude00 \\uD83D\\uDE00", "\xf0\x9f\x98\x80 \xf0\x9f\x98\x80"},
        {"\\u0001\\u001f\\u007f", "\x01\x1f\x7f"},
        {"\\udbff\\udfff", "\xf4\x8f\xbf\xbf"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *body = format_kept("{\"role\":\"assistant\",\"content\":\"%s\"}", cases[i].json);
        json_t *added = expect_json(post(messages_path(conversation_id), key_a, body), 201);
        expect_json_string(json_object_get(added, "content"), cases[i].decoded, strlen(cases[i].decoded), cases[i].json);
    }

    json_t *messages = json_object_get(read_conversation(conversation_id, key_a), "messages");
    cr_assert(eq(sz, json_array_size(messages), sizeof(cases) / sizeof(cases[0])));
    for (size_t i = 0; i < json_array_size(messages); i++)
        expect_json_string(json_object_get(json_array_get(messages, i), "content"), cases[i].decoded, strlen(cases[i].decoded),
                           cases[i].json);
}

Test(messages, raised_limit_allows_long_content)
{
    static const char *const env[] = {"HELVINO_MAX_BODY_BYTES=200000", NULL};
    restart_gateway(env, true);

    /* Mixed widths, so that no character is cut at the string's end. */
    const char *mixed = repeat_to_length("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 70000);
    const content_case cases[] = {
        {"65 535 bytes (largest str16)", repeat_to_length("0123456789", 65535), 65535},
        {"65 536 bytes (str32)", repeat_to_length("0123456789", 65536), 65536},
        {"70 000 bytes", repeat_to_length("0123456789", 70000), 70000},
        {"70 000 bytes of mixed widths", mixed, 70000},
    };
    expect_contents_round_trip(cases, sizeof(cases) / sizeof(cases[0]), 200000);

    const char *conversation_id = create_conversation_over_http(key_a);
    expect_json(post(messages_path(conversation_id), key_a, body_of_length(200000)), 201);
    expect_error(post(messages_path(conversation_id), key_a, body_of_length(200001)), 413, "Request body too large");
}

static int compare_strings(const void *left, const void *right)
{
    return strcmp(*(const char *const *)left, *(const char *const *)right);
}

Test(messages, concurrent_posts_all_get_201)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    const char *path = messages_path(conversation_id);

    CURLM *multi = curl_multi_init();
    cr_assert_not_null(multi);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)CONCURRENT_POSTS);
    http_transfer *transfers = keep(calloc(CONCURRENT_POSTS, sizeof(*transfers)));
    for (size_t i = 0; i < CONCURRENT_POSTS; i++) {
        const char *body = format_kept("{\"role\":\"user\",\"content\":\"concurrent %zu\"}", i);
        transfers[i] = prepare_transfer(&(gateway_request){.path = path, .org_key = key_a, .body = body, .body_len = strlen(body)});
        curl_easy_setopt(transfers[i].curl, CURLOPT_PRIVATE, (void *)&transfers[i]);
        cr_assert_eq(curl_multi_add_handle(multi, transfers[i].curl), CURLM_OK);
    }

    int running = 1;
    int64_t deadline = hv_time_monotonic_ms() + 2 * REQUEST_TIMEOUT_MS;
    size_t finished = 0;
    while (finished < CONCURRENT_POSTS) {
        cr_assert_lt(hv_time_monotonic_ms(), deadline, "only %zu of %d requests finished", finished, CONCURRENT_POSTS);
        cr_assert_eq(curl_multi_perform(multi, &running), CURLM_OK);
        int queued;
        CURLMsg *message;
        while ((message = curl_multi_info_read(multi, &queued))) {
            if (message->msg != CURLMSG_DONE)
                continue;
            char *private_data = NULL;
            curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &private_data);
            http_transfer *done = (http_transfer *)private_data;
            CURLcode code = message->data.result;
            curl_multi_remove_handle(multi, done->curl);
            finish_transfer(done, code);
            finished++;
        }
        if (running)
            curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    curl_multi_cleanup(multi);

    char *seen = keep(calloc(CONCURRENT_POSTS, 1));
    for (size_t i = 0; i < CONCURRENT_POSTS; i++) {
        json_t *added = expect_json(transfers[i].response, 201);
        unsigned number;
        cr_assert_eq(sscanf(string_field(added, "content"), "concurrent %u", &number), 1);
        cr_assert_lt(number, CONCURRENT_POSTS);
        cr_assert(eq(int, seen[number], 0), "two replies carry message %u", number);
        seen[number] = 1;
    }

    json_t *conversation = read_conversation(conversation_id, key_a);
    cr_assert(eq(i64, (int64_t)integer_field(conversation, "messageCount"), CONCURRENT_POSTS));
    json_t *messages = json_object_get(conversation, "messages");
    cr_assert(eq(sz, json_array_size(messages), CONCURRENT_POSTS));
    const char **message_ids = keep(calloc(CONCURRENT_POSTS, sizeof(*message_ids)));
    for (size_t i = 0; i < CONCURRENT_POSTS; i++)
        message_ids[i] = string_field(json_array_get(messages, i), "id");
    qsort(message_ids, CONCURRENT_POSTS, sizeof(*message_ids), compare_strings);
    for (size_t i = 1; i < CONCURRENT_POSTS; i++)
        cr_assert(ne(str, (char *)message_ids[i], (char *)message_ids[i - 1]), "two messages have the same id");
}

/* --- Isolation between orgs ---------------------------------------------------------- */

Test(isolation, lists_hold_only_own_conversations)
{
    const char *a_ids[] = {create_conversation_over_http(key_a), create_conversation_over_http(key_a)};
    const char *b_ids[] = {create_conversation_over_http(key_b), create_conversation_over_http(key_b)};
    add_message(a_ids[0], key_a, "user", "in A");
    add_message(b_ids[0], key_b, "user", "in B");

    const char *orgs[] = {org_a, org_b};
    const char *keys[] = {key_a, key_b};
    const char **own[] = {a_ids, b_ids};
    const char **other[] = {b_ids, a_ids};
    for (size_t o = 0; o < 2; o++) {
        json_t *list = expect_json(get("/conversations", keys[o]), 200);
        cr_assert(eq(sz, json_array_size(list), 2), "org %s lists %s", orgs[o], listed_ids(list));
        for (size_t i = 0; i < 2; i++) {
            cr_assert(list_contains(list, own[o][i]), "org %s does not list its %s", orgs[o], own[o][i]);
            cr_assert(not(list_contains(list, other[o][i])), "org %s lists the other org's %s", orgs[o], other[o][i]);
            cr_assert(eq(str, (char *)string_field(json_array_get(list, i), "orgId"), (char *)orgs[o]));
        }
    }
}

Test(isolation, other_orgs_conversation_is_not_found)
{
    const char *a_id = create_conversation_over_http(key_a);
    const char *b_id = create_conversation_over_http(key_b);
    add_message(a_id, key_a, "user", "private to A");
    add_message(b_id, key_b, "user", "private to B");

    const char *body = "{\"role\":\"user\",\"content\":\"intruder\"}";
    expect_error(get(conversation_path(a_id), key_b), 404, "Conversation not found");
    expect_error(get(conversation_path(b_id), key_a), 404, "Conversation not found");
    expect_error(post(messages_path(a_id), key_b, body), 404, "Conversation not found");
    expect_error(post(messages_path(b_id), key_a, body), 404, "Conversation not found");

    json_t *a_conversation = read_conversation(a_id, key_a);
    json_t *b_conversation = read_conversation(b_id, key_b);
    cr_assert(eq(i64, (int64_t)integer_field(a_conversation, "messageCount"), 1));
    cr_assert(eq(i64, (int64_t)integer_field(b_conversation, "messageCount"), 1));
    cr_assert(
        eq(str, (char *)string_field(json_array_get(json_object_get(a_conversation, "messages"), 0), "content"), "private to A"));
    cr_assert(
        eq(str, (char *)string_field(json_array_get(json_object_get(b_conversation, "messages"), 0), "content"), "private to B"));
}

Test(isolation, created_conversation_belongs_to_callers_org)
{
    const char *b_id = create_conversation_over_http(key_b);

    json_t *b_list = expect_json(get("/conversations", key_b), 200);
    cr_assert(eq(sz, json_array_size(b_list), 1));
    cr_assert(eq(str, (char *)string_field(json_array_get(b_list, 0), "orgId"), org_b));
    json_t *a_list = expect_json(get("/conversations", key_a), 200);
    cr_assert(not(list_contains(a_list, b_id)));
    cr_assert(eq(str, (char *)string_field(read_conversation(b_id, key_b), "orgId"), org_b));
}

/* --- CORS ---------------------------------------------------------------------------- */

Test(cors, preflight_lists_methods_and_headers)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    struct {
        const char *path;
        const char *methods[2];
    } cases[] = {
        {"/conversations", {"GET", "POST"}},
        {conversation_path(conversation_id), {"GET", NULL}},
        {messages_path(conversation_id), {"POST", NULL}},
        {"/health", {"GET", NULL}},
        {"/", {"GET", NULL}},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        http_response *response = send_request(&(gateway_request){
            .method = "OPTIONS",
            .path = cases[i].path,
            .headers = {"Origin: https://widget.example", format_kept("Access-Control-Request-Method: %s", cases[i].methods[0]),
                        "Access-Control-Request-Headers: x-org-key, content-type"},
        });
        expect_status(response, 204);
        cr_assert(eq(sz, response->body_len, 0), "%s: the preflight has a body", response->description);

        const char *methods = http_header_value(response, "access-control-allow-methods");
        cr_assert_not_null(methods, "%s: no access-control-allow-methods", response->description);
        for (size_t m = 0; m < 2 && cases[i].methods[m]; m++)
            cr_assert(http_list_has_token(methods, cases[i].methods[m]), "%s: methods \"%s\" lack %s", response->description,
                      methods, cases[i].methods[m]);

        const char *headers = http_header_value(response, "access-control-allow-headers");
        cr_assert_not_null(headers, "%s: no access-control-allow-headers", response->description);
        cr_assert(http_list_has_token(headers, "x-org-key"), "%s: headers \"%s\"", response->description, headers);
        cr_assert(http_list_has_token(headers, "content-type"), "%s: headers \"%s\"", response->description, headers);

        const char *max_age = http_header_value(response, "access-control-max-age");
        cr_assert_not_null(max_age, "%s: no access-control-max-age", response->description);
        cr_assert(gt(int, atoi(max_age), 0), "%s: max age \"%s\"", response->description, max_age);
    }
}

Test(cors, every_response_allows_any_origin)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    const char *origin = "Origin: https://widget.example";
    const gateway_request requests[] = {
        {.path = "/", .headers = {origin}},
        {.path = "/conversations", .org_key = key_a, .headers = {origin}},
        {.method = "POST", .path = "/conversations", .org_key = key_a, .headers = {origin}},
        {.path = "/conversations", .headers = {origin}},
        {.path = conversation_path("unknown"), .org_key = key_a, .headers = {origin}},
        {.path = "/nope", .headers = {origin}},
        {.method = "DELETE", .path = "/conversations", .headers = {origin}},
        {.path = messages_path(conversation_id), .org_key = key_a, .body = "[]", .body_len = 2, .headers = {origin}},
    };
    const long statuses[] = {200, 200, 201, 401, 404, 404, 405, 400};

    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        http_response *response = send_request(&requests[i]);
        expect_json(response, statuses[i]);
        cr_assert(eq(str, (char *)http_header_value(response, "access-control-allow-origin"), "*"), "%s", response->description);
    }
}

/* Checks that `origin` gets itself back in access-control-allow-origin,
 * or no such header when `allowed` is false, on a request and a
 * preflight. */
static void expect_origin_handling(const char *origin, bool allowed)
{
    const char *origin_header = format_kept("Origin: %s", origin);
    http_response *listed =
        send_request(&(gateway_request){.path = "/conversations", .org_key = key_a, .headers = {origin_header}});
    http_response *preflight = send_request(&(gateway_request){
        .method = "OPTIONS", .path = "/conversations", .headers = {origin_header, "Access-Control-Request-Method: POST"}});
    expect_json(listed, 200);
    expect_status(preflight, 204);

    http_response *responses_to_check[] = {listed, preflight};
    for (size_t i = 0; i < 2; i++) {
        http_response *response = responses_to_check[i];
        if (!allowed) {
            cr_assert(eq(sz, http_header_count(response, "access-control-allow-origin"), 0), "%s from %s: allowed origin \"%s\"",
                      response->description, origin, http_header_value(response, "access-control-allow-origin"));
            continue;
        }
        cr_assert(eq(sz, http_header_count(response, "access-control-allow-origin"), 1), "%s from %s", response->description,
                  origin);
        cr_assert(eq(str, (char *)http_header_value(response, "access-control-allow-origin"), (char *)origin), "%s",
                  response->description);
    }
}

Test(cors, only_configured_origin_is_allowed)
{
    static const char *const env[] = {"HELVINO_CORS_ORIGINS=https://a.example", NULL};
    restart_gateway(env, false);

    expect_origin_handling("https://a.example", true);
    expect_origin_handling("https://b.example", false);
    expect_origin_handling("https://a.example.evil", false);
    expect_origin_handling("http://a.example", false);
    expect_origin_handling("null", false);

    http_response *no_origin = get("/conversations", key_a);
    expect_json(no_origin, 200);
    cr_assert(eq(sz, http_header_count(no_origin, "access-control-allow-origin"), 0));
}

Test(cors, each_origin_of_a_list_is_allowed)
{
    static const char *const env[] = {"HELVINO_CORS_ORIGINS=https://a.example,https://c.example", NULL};
    restart_gateway(env, false);

    expect_origin_handling("https://a.example", true);
    expect_origin_handling("https://c.example", true);
    expect_origin_handling("https://b.example", false);
    expect_origin_handling("https://a.example,https://c.example", false);
}

/* --- Request ids ------------------------------------------------------------------- */

Test(request_id, safe_client_id_is_echoed)
{
    const char *ids[] = {"abc", "req-123_ABC.def:ghi", repeat_to_length("r", 128), "0"};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        const char *header = format_kept("x-request-id: %s", ids[i]);
        const gateway_request requests[] = {
            {.path = "/health", .headers = {header}},
            {.path = "/conversations", .headers = {header}},
            {.path = "/nope", .headers = {header}},
            {.method = "POST", .path = "/conversations", .org_key = key_a, .headers = {header}},
        };
        for (size_t r = 0; r < sizeof(requests) / sizeof(requests[0]); r++) {
            http_response *response = send_request(&requests[r]);
            expect_common_headers(response);
            cr_assert(eq(str, (char *)http_header_value(response, "x-request-id"), (char *)ids[i]), "%s", response->description);
        }
    }
}

static bool is_safe_request_id(const char *id)
{
    size_t len = strlen(id);
    return len > 0 && len <= 128 && strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") == len;
}

Test(request_id, missing_or_unsafe_id_is_replaced)
{
    http_response *first = get("/health", NULL);
    http_response *second = get("/health", NULL);
    expect_json(first, 200);
    expect_json(second, 200);
    const char *first_id = http_header_value(first, "x-request-id");
    cr_assert(is_safe_request_id(first_id), "generated id \"%s\"", first_id);
    cr_assert(ne(str, (char *)first_id, (char *)http_header_value(second, "x-request-id")), "two requests got the same id");

    const char *unsafe[] = {"x-request-id;",
                            "x-request-id: has space",
                            "x-request-id: semi;colon",
                            "x-request-id: slash/x",
                            "x-request-id: quote\"",
                            "x-request-id: caf\xc3\xa9",
                            format_kept("x-request-id: %s", repeat_to_length("r", 129))};
    for (size_t i = 0; i < sizeof(unsafe) / sizeof(unsafe[0]); i++) {
        http_response *response = send_request(&(gateway_request){.path = "/health", .headers = {unsafe[i]}});
        expect_json(response, 200);
        const char *id = http_header_value(response, "x-request-id");
        cr_assert(is_safe_request_id(id), "sent \"%s\", got \"%s\"", unsafe[i], id);
        const char *sent = strchr(unsafe[i], ':') ? strchr(unsafe[i], ':') + 2 : "";
        cr_assert(ne(str, (char *)id, (char *)sent), "the unsafe id was echoed");
    }
}

Test(request_id, access_log_line_names_the_id)
{
    const char *given = format_kept("trace-%d-%lld", (int)getpid(), (long long)hv_time_monotonic_ms());
    http_response *echoed = send_request(&(gateway_request){
        .method = "POST", .path = "/conversations", .org_key = key_a, .headers = {format_kept("x-request-id: %s", given)}});
    expect_json(echoed, 201);
    cr_assert(service_wait_for_log(&gateway, format_kept("request_id=%s ", given), 5000),
              "the gateway logged no line with request_id=%s; see %s", given, gateway.log_path);

    http_response *generated = get("/conversations", key_a);
    expect_json(generated, 200);
    const char *generated_id = http_header_value(generated, "x-request-id");
    cr_assert(service_wait_for_log(&gateway, format_kept("request_id=%s ", generated_id), 5000),
              "the gateway logged no line with the generated request_id=%s; see %s", generated_id, gateway.log_path);
}

Test(request_id, store_log_names_the_id)
{
    /* The store logs the request id of a statement that timed out. */
    cr_assert(eq(int, store_stop(&store), 0));
    static const char *const env[] = {"HELVINO_STORE_STATEMENT_TIMEOUT_MS=300", NULL};
    store_restart(&store, env);
    gateway_wait_for_store(&gateway, RECOVERY_TIMEOUT_MS);

    const char *conversation_id = create_conversation_over_http(key_a);
    lock_conversation_row(conversation_id);
    const char *given = format_kept("slow-%d-%lld", (int)getpid(), (long long)hv_time_monotonic_ms());
    const char *body = "{\"role\":\"user\",\"content\":\"waits for the lock\"}";
    http_response *response = send_request(&(gateway_request){.path = messages_path(conversation_id),
                                                              .org_key = key_a,
                                                              .body = body,
                                                              .body_len = strlen(body),
                                                              .headers = {format_kept("x-request-id: %s", given)}});
    release_row_lock();

    expect_error(response, 503, "Store unavailable");
    cr_assert(eq(str, (char *)http_header_value(response, "x-request-id"), (char *)given));
    cr_assert(store_wait_for_log(&store, format_kept("request_id=%s", given), 5000),
              "the store logged no line with request_id=%s; see %s", given, store.log_path);
}

/* --- The store going away ------------------------------------------------------------- */

/* Checks that every route returns 503 within the store timeout. */
static void expect_store_unavailable(const char *conversation_id)
{
    const char *body = "{\"role\":\"user\",\"content\":\"while the store is away\"}";
    const gateway_request requests[] = {
        {.method = "POST", .path = "/conversations", .org_key = key_a},
        {.path = "/conversations", .org_key = key_a},
        {.path = conversation_path(conversation_id), .org_key = key_a},
        {.path = messages_path(conversation_id), .org_key = key_a, .body = body, .body_len = strlen(body)},
        /* Keys the gateway has not checked yet cannot be checked now. */
        {.path = "/conversations", .org_key = key_b},
        {.path = "/conversations", .org_key = "never-seen-key"},
    };
    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        http_response *response = send_request(&requests[i]);
        expect_error(response, 503, "Store unavailable");
        cr_assert(le(i64, response->elapsed_ms, STORE_TIMEOUT_MS + RESPONSE_SLACK_MS), "%s", response->description);
    }

    http_response *health = get("/health", NULL);
    json_t *status = expect_json(health, 503);
    cr_assert(eq(str, (char *)string_field(status, "store"), "unavailable"));
    cr_assert(le(i64, health->elapsed_ms, STORE_TIMEOUT_MS + RESPONSE_SLACK_MS));
    expect_json(get("/", NULL), 200);
}

static void expect_store_back(const char *conversation_id, pid_t gateway_pid)
{
    http_response *created = post_until_created("/conversations", key_a, NULL);
    expect_json(created, 201);
    add_message(conversation_id, key_a, "user", "after the outage");
    expect_json(get("/conversations", key_b), 200);
    json_t *health = expect_json(get("/health", NULL), 200);
    cr_assert(eq(str, (char *)string_field(health, "store"), "ok"));

    cr_assert(service_is_running(&gateway), "the gateway exited; see %s", gateway.log_path);
    cr_assert(eq(int, gateway.pid, gateway_pid), "the gateway was restarted");
}

Test(store_outage, stopped_store_gives_503_then_recovers)
{
    static const char *const env[] = {STORE_TIMEOUT_VARIABLE, NULL};
    restart_gateway(env, true);
    pid_t gateway_pid = gateway.pid;
    const char *conversation_id = create_conversation_over_http(key_a);

    cr_assert(eq(int, store_stop(&store), 0));
    expect_store_unavailable(conversation_id);

    store_restart(&store, NULL);
    expect_store_back(conversation_id, gateway_pid);
    cr_assert(eq(i64, (int64_t)message_count(conversation_id, key_a), 1));
}

Test(store_outage, frozen_store_gives_503_at_timeout)
{
    static const char *const env[] = {STORE_TIMEOUT_VARIABLE, NULL};
    restart_gateway(env, true);
    pid_t gateway_pid = gateway.pid;
    const char *conversation_id = create_conversation_over_http(key_a);

    /* A stopped process keeps its socket, so requests are sent and wait for
     * the timeout instead of failing at once. */
    freeze_store();
    http_response *waited = post("/conversations", key_a, NULL);
    expect_error(waited, 503, "Store unavailable");
    cr_assert(ge(i64, waited->elapsed_ms, STORE_TIMEOUT_MS - 50), "the 503 came before the store timeout");
    expect_store_unavailable(conversation_id);

    thaw_store();
    expect_store_back(conversation_id, gateway_pid);
}

Test(store_outage, gateway_started_before_store_recovers)
{
    cr_assert(eq(int, service_stop(&gateway), 0));
    char conversation_id[37];
    create_conversation(&store, org_a, conversation_id);
    cr_assert(eq(int, store_stop(&store), 0));

    static const char *const env[] = {STORE_TIMEOUT_VARIABLE, NULL};
    any_origin_allowed = true;
    gateway_start(&gateway, &store, env);
    pid_t gateway_pid = gateway.pid;
    expect_store_unavailable(conversation_id);

    store_restart(&store, NULL);
    expect_store_back(conversation_id, gateway_pid);
}

/* --- Clients that hang up --------------------------------------------------------------- */

/* Lets a curl multi transfer progress without waiting. */
static void drive_multi(void *data)
{
    int running;
    curl_multi_perform(data, &running);
}

static void expect_gateway_healthy(const char *conversation_id, json_int_t messages_before)
{
    cr_assert(service_is_running(&gateway), "the gateway exited; see %s", gateway.log_path);
    expect_json(get("/health", NULL), 200);
    add_message(conversation_id, key_a, "user", "after the hang-up");
    cr_assert(eq(i64, (int64_t)message_count(conversation_id, key_a), (int64_t)messages_before + 1));
    cr_assert(service_is_running(&gateway), "the gateway exited; see %s", gateway.log_path);
}

Test(hangup, close_mid_request_is_harmless)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    const char *full = raw_message_request(conversation_id, "{\"role\":\"user\",\"content\":\"never finished\"}");
    const char *headers_end = strstr(full, "\r\n\r\n");
    size_t headers_len = (size_t)(headers_end - full) + 4;

    const char *partial[] = {
        "",
        "POST /conv",
        format_kept("%.*s", (int)(headers_len - 6), full),
        format_kept("%.*s", (int)headers_len, full),
        format_kept("%.*s", (int)headers_len + 12, full),
        format_kept("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nx-org-key: %s\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"role\":",
                    messages_path(conversation_id), key_a),
    };
    for (int reset = 0; reset <= 1; reset++) {
        for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
            int fd = connect_to_gateway();
            send_text(fd, partial[i]);
            if (reset)
                close_with_reset(fd);
            else
                close(fd);
        }
    }

    expect_gateway_healthy(conversation_id, 0);
    cr_assert(eq(int, service_stop(&gateway), 0), "helvino-gateway did not exit 0 on SIGTERM; see %s", gateway.log_path);
}

Test(hangup, close_during_slow_store_is_harmless)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    lock_conversation_row(conversation_id);

    int fd = connect_to_gateway();
    send_text(fd, raw_message_request(conversation_id, "{\"role\":\"user\",\"content\":\"the client left\"}"));
    wait_for_lock_waiter(NULL, NULL);
    close(fd);

    /* The store finishes the request after the client has gone, so the gateway has no client to send the reply to. */
    release_row_lock();
    wait_for_message_count_in_store(org_a, conversation_id, 1);

    expect_gateway_healthy(conversation_id, 1);
    cr_assert(eq(int, service_stop(&gateway), 0), "helvino-gateway did not exit 0 on SIGTERM; see %s", gateway.log_path);
}

Test(hangup, close_during_frozen_store_is_harmless)
{
    static const char *const env[] = {STORE_TIMEOUT_VARIABLE, NULL};
    restart_gateway(env, true);
    const char *conversation_id = create_conversation_over_http(key_a);

    freeze_store();
    int fd = connect_to_gateway();
    send_text(fd, raw_message_request(conversation_id, "{\"role\":\"user\",\"content\":\"sent to a frozen store\"}"));
    close(fd);

    /* A later request's 503 shows that the store timeout of the abandoned
     * one, which was sent first, has passed as well. */
    http_response *waited = post("/conversations", key_a, NULL);
    expect_error(waited, 503, "Store unavailable");
    cr_assert(ge(i64, waited->elapsed_ms, STORE_TIMEOUT_MS - 50));

    /* The thawed store runs both requests and replies to a gateway that
     * has given up on them. */
    thaw_store();
    wait_for_message_count_in_store(org_a, conversation_id, 1);

    expect_gateway_healthy(conversation_id, 1);
    cr_assert(eq(int, service_stop(&gateway), 0), "helvino-gateway did not exit 0 on SIGTERM; see %s", gateway.log_path);
}

Test(hangup, http2_close_during_slow_store_is_harmless)
{
    /* With h2o 2.2.5, an HTTP/1.1 request lives until its response is
     * written, even after the client has closed. A closed HTTP/2 connection
     * makes h2o dispose of its requests at once, while their store calls
     * are still waiting. */
    const char *conversation_id = create_conversation_over_http(key_a);
    lock_conversation_row(conversation_id);

    const char *body = "{\"role\":\"user\",\"content\":\"the HTTP/2 client left\"}";
    http_transfer abandoned = prepare_transfer(
        &(gateway_request){.path = messages_path(conversation_id), .org_key = key_a, .body = body, .body_len = strlen(body)});
    curl_easy_setopt(abandoned.curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    CURLM *multi = curl_multi_init();
    cr_assert_not_null(multi);
    cr_assert_eq(curl_multi_add_handle(multi, abandoned.curl), CURLM_OK);
    wait_for_lock_waiter(drive_multi, multi);

    curl_multi_remove_handle(multi, abandoned.curl);
    http_transfer_finish(&abandoned, CURLE_ABORTED_BY_CALLBACK);
    curl_multi_cleanup(multi);

    /* The close reached the gateway before this request's connection was
     * opened, so by the time the gateway has served it, it has handled the
     * close as well. The store's reply then comes after the request is
     * gone. */
    expect_json(get("/health", NULL), 200);
    release_row_lock();
    wait_for_message_count_in_store(org_a, conversation_id, 1);

    expect_gateway_healthy(conversation_id, 1);
    cr_assert(eq(int, service_stop(&gateway), 0), "helvino-gateway did not exit 0 on SIGTERM; see %s", gateway.log_path);
}

/* --- Shutdown ------------------------------------------------------------------------ */

Test(shutdown, request_in_flight_finishes_after_sigterm)
{
    const char *conversation_id = create_conversation_over_http(key_a);
    lock_conversation_row(conversation_id);

    const char *body = "{\"role\":\"user\",\"content\":\"sent before SIGTERM\"}";
    http_transfer in_flight = prepare_transfer(
        &(gateway_request){.path = messages_path(conversation_id), .org_key = key_a, .body = body, .body_len = strlen(body)});
    CURLM *multi = curl_multi_init();
    cr_assert_not_null(multi);
    cr_assert_eq(curl_multi_add_handle(multi, in_flight.curl), CURLM_OK);
    wait_for_lock_waiter(drive_multi, multi);

    service_terminate(&gateway);
    cr_assert(service_wait_for_log(&gateway, "shutdown requested", 5000), "the gateway did not log the SIGTERM; see %s",
              gateway.log_path);
    cr_assert(service_is_running(&gateway), "the gateway exited with a request in flight; see %s", gateway.log_path);
    release_row_lock();

    int running = 1;
    int64_t deadline = hv_time_monotonic_ms() + REQUEST_TIMEOUT_MS;
    while (running && hv_time_monotonic_ms() < deadline) {
        cr_assert_eq(curl_multi_perform(multi, &running), CURLM_OK);
        if (running)
            curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    int queued;
    CURLMsg *message = curl_multi_info_read(multi, &queued);
    CURLcode code = message && message->msg == CURLMSG_DONE ? message->data.result : CURLE_OPERATION_TIMEDOUT;
    curl_multi_remove_handle(multi, in_flight.curl);
    curl_multi_cleanup(multi);
    http_response *response = finish_transfer(&in_flight, code);

    json_t *added = expect_json(response, 201);
    cr_assert(eq(str, (char *)string_field(added, "content"), "sent before SIGTERM"));
    cr_assert(eq(int, service_wait_exit(&gateway, EXIT_TIMEOUT_MS), 0), "helvino-gateway did not exit 0; see %s", gateway.log_path);
    cr_assert(eq(llong, message_count_in_store(org_a, conversation_id), 1));
}
