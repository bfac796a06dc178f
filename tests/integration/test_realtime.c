/* helvino-realtime over real WebSocket and HTTP long-polling connections,
 * with a real helvino-store and helvino-gateway. Messages posted over HTTP
 * reach the sockets of their org and no other, byte for byte, and keys are
 * checked at CONNECT. Heartbeats, the upgrade from polling to WebSocket, bad
 * input, a client that stops reading and SIGTERM each end only the session
 * concerned. */
#include "gateway_fixture.h"
#include "harness.h"
#include "hv_time.h"
#include "kept_memory.h"
#include "realtime_fixture.h"
#include "ws_client.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Upper bounds for what the tests wait for. They are generous because the
 * debug build runs under AddressSanitizer on a shared machine. */
#define EVENT_TIMEOUT_MS 5000
#define CLOSE_TIMEOUT_MS 5000
#define REQUEST_TIMEOUT_MS 15000L
#define STORE_REACH_TIMEOUT_MS 15000

/* How long a client is watched for events that must not come. */
#define QUIET_WINDOW_MS 500

#define SHORT_PING_MS 200
#define FRESH_WEBSOCKET_ORGS 20
#define FRESH_POLLING_ORGS 10
#define SMALL_MAX_PAYLOAD 8192
#define SLOW_CLIENT_MAX_BUFFERED 65536
#define SLOW_CLIENT_RECEIVE_BUFFER 4096

#define WEBSOCKET_TARGET "/socket.io/?EIO=4&transport=websocket"
#define MISSING_KEY_ERROR "44{\"message\":\"Missing organization key\"}"
#define INVALID_KEY_ERROR "44{\"message\":\"Invalid organization key\"}"
#define UNAVAILABLE_ERROR "44{\"message\":\"Service unavailable\"}"
#define UNKNOWN_SID_BODY "{\"code\":1,\"message\":\"Session ID unknown\"}"

/* Settings of each suite's helvino-realtime. Pings come often enough that
 * polling GETs return soon when nothing else is sent, and the timeout is
 * long enough that a client the test does not read for a while keeps its
 * session. */
static const char *const default_env[] = {"HELVINO_REALTIME_PING_INTERVAL_MS=300", "HELVINO_REALTIME_PING_TIMEOUT_MS=5000", NULL};
static const char *const short_ping_env[] = {"HELVINO_REALTIME_PING_INTERVAL_MS=200", "HELVINO_REALTIME_PING_TIMEOUT_MS=200", NULL};
/* No ping in the test's time, so that a poll stays open until something
 * else ends it and a client that does not read is dropped for no other
 * reason than its backlog. */
static const char *const long_ping_env[] = {"HELVINO_REALTIME_PING_INTERVAL_MS=30000", "HELVINO_REALTIME_PING_TIMEOUT_MS=30000",
                                            NULL};
static const char *const bad_input_env[] = {"HELVINO_REALTIME_PING_INTERVAL_MS=300", "HELVINO_REALTIME_PING_TIMEOUT_MS=5000",
                                            "HELVINO_REALTIME_MAX_PAYLOAD=8192", NULL};
static const char *const slow_client_env[] = {"HELVINO_REALTIME_PING_INTERVAL_MS=30000", "HELVINO_REALTIME_PING_TIMEOUT_MS=30000",
                                              "HELVINO_REALTIME_MAX_BUFFERED_BYTES=65536", NULL};
static const char *const unreachable_store_env[] = {"HELVINO_REALTIME_PING_INTERVAL_MS=300",
                                                    "HELVINO_REALTIME_PING_TIMEOUT_MS=5000", "HELVINO_STORE_TIMEOUT_MS=500", NULL};

static store_fixture store;
static service_fixture gateway;
static service_fixture realtime;
static char org_a[80], org_b[80];
static char key_a[96], key_b[96];
static bool store_frozen;

/* --- Memory kept until the end of the test --------------------------------- */

static char *copy_kept(const char *bytes, size_t len)
{
    char *copy = keep(malloc(len + 1));
    memcpy(copy, bytes, len);
    copy[len] = '\0';
    return copy;
}

static json_t *parse_kept(const char *text, size_t len)
{
    return keep_json(json_loadb(text, len, JSON_DECODE_ANY, NULL));
}

/* jansson's type checks are macros that Criterion's cr_assert cannot take
 * as its condition. */
static bool is_object(const json_t *value)
{
    return json_is_object(value);
}

static bool is_array(const json_t *value)
{
    return json_is_array(value);
}

/* Returns the string member `key` of a JSON object; aborts the test when
 * it is missing or not a string. */
static const char *string_member(const json_t *object, const char *key, const char *context)
{
    const char *value = json_string_value(json_object_get(object, key));
    cr_assert_not_null(value, "no string \"%s\" in %.300s", key, context);
    return value;
}

static http_response *new_http_response(void)
{
    return keep(calloc(1, sizeof(http_response)));
}

/* --- Raw JSON spans ------------------------------------------------------------ */

/* The event checks compare the bytes of a value inside a packet with the
 * body the gateway returned, so they need the span of that value as sent.
 * These helpers walk text that jansson has already accepted as JSON. */

static size_t skip_blanks(const char *text, size_t len, size_t at)
{
    while (at < len && strchr(" \t\r\n", text[at]))
        at++;
    return at;
}

/* Returns the offset just past the value that starts at `at`. */
static size_t value_end(const char *text, size_t len, size_t at)
{
    if (at < len && text[at] == '"') {
        for (at++; at < len && text[at] != '"'; at++)
            if (text[at] == '\\')
                at++;
        return at + 1;
    }
    if (at < len && (text[at] == '{' || text[at] == '[')) {
        int depth = 0;
        for (; at < len; at++) {
            if (text[at] == '"') {
                at = value_end(text, len, at) - 1;
            } else if (text[at] == '{' || text[at] == '[') {
                depth++;
            } else if ((text[at] == '}' || text[at] == ']') && --depth == 0) {
                return at + 1;
            }
        }
        return len;
    }
    while (at < len && !strchr(",]} \t\r\n", text[at]))
        at++;
    return at;
}

typedef struct {
    const char *data;
    size_t len;
} text_span;

/* Returns the `index`th element of the array that `array` spans. */
static text_span array_element(text_span array, size_t index)
{
    size_t at = skip_blanks(array.data, array.len, 1);
    for (size_t i = 0;; i++) {
        cr_assert_lt(at, array.len, "the array has no element %zu: %.*s", index, (int)array.len, array.data);
        size_t end = value_end(array.data, array.len, at);
        if (i == index)
            return (text_span){array.data + at, end - at};
        at = skip_blanks(array.data, array.len, end);
        cr_assert_lt(at, array.len);
        cr_assert(array.data[at] == ',', "the array has no element %zu: %.*s", index, (int)array.len, array.data);
        at = skip_blanks(array.data, array.len, at + 1);
    }
}

/* Returns the value of member `key` of the object that `object` spans. */
static text_span object_member(text_span object, const char *key)
{
    size_t key_len = strlen(key);
    size_t at = skip_blanks(object.data, object.len, 1);
    while (at < object.len && object.data[at] == '"') {
        size_t key_end = value_end(object.data, object.len, at);
        bool match = key_end - at == key_len + 2 && memcmp(object.data + at + 1, key, key_len) == 0;
        at = skip_blanks(object.data, object.len, key_end);
        at = skip_blanks(object.data, object.len, at + 1); /* past the colon */
        size_t end = value_end(object.data, object.len, at);
        if (match)
            return (text_span){object.data + at, end - at};
        at = skip_blanks(object.data, object.len, end);
        if (at < object.len && object.data[at] == ',')
            at = skip_blanks(object.data, object.len, at + 1);
    }
    cr_fatal("the object has no \"%s\": %.300s", key, object.data);
    return (text_span){NULL, 0};
}

/* Checks that a span contains exactly `expected`. */
static void expect_same_bytes(text_span actual, const char *expected, const char *what)
{
    size_t len = strlen(expected);
    size_t first_difference = 0;
    while (first_difference < len && first_difference < actual.len && actual.data[first_difference] == expected[first_difference])
        first_difference++;
    cr_assert(first_difference == len && actual.len == len,
              "%s differs from offset %zu on (lengths %zu and %zu):\n  sent:     %.300s\n  expected: %.300s", what,
              first_difference, actual.len, len, actual.data, expected);
}

/* --- The gateway over HTTP ------------------------------------------------------ */

/* POSTs a JSON body to the gateway with x-org-key and returns the response
 * body after checking that the status is 201. */
static const char *post_to_gateway(const char *path, const char *org_key, const char *body)
{
    const char *headers[] = {"Expect:", "Content-Type: application/json", format_kept("x-org-key: %s", org_key), NULL};
    http_response *result = new_http_response();
    http_send(&(http_request){.url = format_kept("%s%s", gateway.url, path),
                              .body = body ? body : "",
                              .body_len = body ? strlen(body) : 0,
                              .headers = headers,
                              .timeout_ms = REQUEST_TIMEOUT_MS},
              result);
    keep(result->body);
    cr_assert(result->completed, "POST %s failed: %s", path, result->error);
    cr_assert(eq(long, result->status, 201), "POST %s: body %.300s", path, result->body);
    return result->body;
}

typedef struct {
    const char *org;
    const char *id;
    const char *created_at;
} created_conversation;

/* Creates a conversation in the org of `org_key`, which is "key-<org>" for
 * every org of these tests (create_unique_org makes them so). */
static created_conversation create_conversation_over_http(const char *org_key)
{
    cr_assert(eq(int, strncmp(org_key, "key-", 4), 0), "the key %s does not name its org", org_key);
    const char *body = post_to_gateway("/conversations", org_key, NULL);
    json_t *parsed = parse_kept(body, strlen(body));
    return (created_conversation){org_key + 4, string_member(parsed, "id", body), string_member(parsed, "createdAt", body)};
}

/* Posts a user message and returns the body of the 201 response: the
 * message as the store saved it. */
static const char *post_message(const char *org_key, const char *conversation_id, const char *content)
{
    json_t *document = json_pack("{s:s, s:s}", "role", "user", "content", content);
    cr_assert_not_null(document, "jansson rejected the content");
    char *body = keep(json_dumps(document, JSON_COMPACT));
    json_decref(document);
    return post_to_gateway(format_kept("/conversations/%s/messages", conversation_id), org_key, body);
}

/* --- Engine.IO and Socket.IO clients over either transport -------------------------- */

typedef enum { WEBSOCKET, POLLING } transport;

typedef struct {
    transport kind;
    const char *label; /* for failure messages */
    ws_client *ws;
    polling_session session;
    bool ended;
    /* packets a polling GET returned that the test has not taken yet */
    const char **queued;
    size_t queued_first, queued_count, queued_capacity;
    eio_open_packet open;
    char socket_id[64]; /* from the CONNECT reply */
} rt_client;

#define MAX_CLIENTS 1024
static rt_client *clients[MAX_CLIENTS];
static size_t client_count;

static const char *transport_name(transport kind)
{
    return kind == WEBSOCKET ? "websocket" : "polling";
}

static rt_client *track_client(transport kind, const char *label)
{
    cr_assert_lt(client_count, MAX_CLIENTS, "too many clients in one test");
    rt_client *client = calloc(1, sizeof(*client));
    cr_assert_not_null(client, "out of memory");
    client->kind = kind;
    client->label = label ? label : transport_name(kind);
    clients[client_count++] = client;
    return client;
}

static void release_clients(void)
{
    for (size_t i = 0; i < client_count; i++) {
        ws_destroy(&clients[i]->ws);
        free(clients[i]->queued);
        free(clients[i]);
    }
    client_count = 0;
}

/* Opens a WebSocket without reading anything. */
static ws_client *connect_websocket(const char *target, const ws_options *options)
{
    ws_handshake handshake;
    ws_client *ws = ws_connect(realtime.port, target, options, &handshake);
    cr_assert_not_null(ws, "the WebSocket handshake for %s failed: %s", target, handshake.error);
    return ws;
}

static void expect_valid_sid(const char *sid, const char *what)
{
    cr_assert(eq(sz, strlen(sid), 20), "%s \"%s\" is not 20 characters long", what, sid);
    for (const char *c = sid; *c; c++)
        cr_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *c) != NULL,
                  "%s \"%s\" has a character outside base64url", what, sid);
}

static rt_client *open_client_with(transport kind, const char *label, const ws_options *options)
{
    rt_client *client = track_client(kind, label);
    char error[256];
    if (kind == POLLING) {
        cr_assert(eq(int, polling_open(&client->session, realtime.url, NULL, error, sizeof(error)), 0), "%s", error);
        client->open = client->session.open;
        return client;
    }

    client->ws = connect_websocket(WEBSOCKET_TARGET, options);
    ws_frame first;
    int read = eio_ws_read(client->ws, EVENT_TIMEOUT_MS, false, &first);
    cr_assert(eq(int, read, WS_READ_OK), "no open packet on the WebSocket: %s", ws_last_error(client->ws));
    char *packet = copy_kept(first.payload, first.len);
    int opcode = first.opcode;
    ws_frame_release(&first);
    cr_assert(eq(int, opcode, WS_OPCODE_TEXT), "the open packet came in a frame with opcode %d", opcode);
    cr_assert(eq(int, eio_parse_open(packet, strlen(packet), &client->open, error, sizeof(error)), 0), "%s", error);
    return client;
}

static rt_client *open_client(transport kind)
{
    return open_client_with(kind, NULL, NULL);
}

/* Sends one Engine.IO packet: a text frame, or a POST that must get "ok". */
static void send_packet(rt_client *client, const char *packet)
{
    if (client->kind == WEBSOCKET) {
        cr_assert(eq(int, ws_send_text(client->ws, packet), 0), "%s: sending %s failed: %s", client->label, packet,
                  ws_last_error(client->ws));
        return;
    }
    http_response *result = new_http_response();
    polling_post(&client->session, packet, strlen(packet), result);
    keep(result->body);
    cr_assert(result->completed, "%s: POST %s failed: %s", client->label, packet, result->error);
    cr_assert(eq(long, result->status, 200), "%s: POST %s: body %s", client->label, packet, result->body);
    cr_assert(eq(str, result->body, "ok"), "%s: POST %s", client->label, packet);
}

static void queue_packet(rt_client *client, const char *packet)
{
    if (client->queued_first + client->queued_count == client->queued_capacity) {
        client->queued_capacity = client->queued_capacity ? client->queued_capacity * 2 : 64;
        client->queued = realloc(client->queued, client->queued_capacity * sizeof(*client->queued));
        cr_assert_not_null(client->queued, "out of memory");
    }
    client->queued[client->queued_first + client->queued_count++] = packet;
}

/* GETs the next payload of a polling session and queues its packets. Pings
 * are not queued: one pong replies to them after the whole payload. */
static void poll_once(rt_client *client)
{
    http_response *result = new_http_response();
    polling_get(&client->session, REQUEST_TIMEOUT_MS, result);
    keep(result->body);
    cr_assert(result->completed, "%s: GET failed: %s", client->label, result->error);
    cr_assert(eq(long, result->status, 200), "%s: GET: body %s", client->label, result->body);

    packet_span packets[256];
    size_t count = payload_split(result->body, result->body_len, packets, 256);
    cr_assert_leq(count, 256, "%s: a payload of more than 256 packets", client->label);
    cr_assert_gt(count, 0, "%s: an empty payload", client->label);
    bool pinged = false;
    for (size_t i = 0; i < count; i++) {
        if (packets[i].len == 1 && packets[i].data[0] == '2')
            pinged = true;
        else
            queue_packet(client, copy_kept(packets[i].data, packets[i].len));
    }
    if (pinged)
        send_packet(client, "3");
}

/* Returns the next packet that is not a ping, or NULL when none came within
 * `timeout_ms`, and replies to pings. A polling GET is never cut short,
 * because the server would take that as the end of the session. Each GET
 * returns within the ping interval. */
static const char *try_next_packet(rt_client *client, int timeout_ms)
{
    int64_t deadline = hv_time_monotonic_ms() + timeout_ms;
    if (client->kind == POLLING) {
        while (client->queued_count == 0 && hv_time_monotonic_ms() < deadline)
            poll_once(client);
        if (client->queued_count == 0)
            return NULL;
        client->queued_count--;
        return client->queued[client->queued_first++];
    }

    ws_frame message;
    int read = eio_ws_read(client->ws, timeout_ms, true, &message);
    if (read == WS_READ_TIMEOUT)
        return NULL;
    cr_assert(eq(int, read, WS_READ_OK), "%s: reading failed: %s", client->label, ws_last_error(client->ws));
    char *packet = copy_kept(message.payload, message.len);
    int opcode = message.opcode;
    int close_code = opcode == WS_OPCODE_CLOSE ? ws_close_code(&message) : 0;
    ws_frame_release(&message);
    cr_assert(ne(int, opcode, WS_OPCODE_CLOSE), "%s: the server closed the WebSocket with code %d", client->label, close_code);
    cr_assert(eq(int, opcode, WS_OPCODE_TEXT), "%s: a message with opcode %d", client->label, opcode);
    return packet;
}

static const char *next_packet(rt_client *client)
{
    const char *packet = try_next_packet(client, EVENT_TIMEOUT_MS);
    cr_assert_not_null(packet, "%s: no packet within %d ms", client->label, EVENT_TIMEOUT_MS);
    return packet;
}

/* Checks that no packet other than pings comes within `window_ms`. */
static void expect_quiet(rt_client *client, int window_ms)
{
    const char *packet = try_next_packet(client, window_ms);
    cr_assert_null(packet, "%s: unexpected packet %.300s", client->label, packet);
}

/* Checks a CONNECT reply, 40{"sid":"..."}, and returns the socket id. */
static const char *expect_connect_reply(rt_client *client, const char *packet)
{
    cr_assert(eq(int, strncmp(packet, "40{", 3), 0), "%s: expected a CONNECT reply, got %.300s", client->label, packet);
    json_t *reply = parse_kept(packet + 2, strlen(packet + 2));
    cr_assert(is_object(reply), "%s: the CONNECT reply is not a JSON object: %s", client->label, packet);
    const char *sid = string_member(reply, "sid", packet);
    cr_assert_gt(strlen(sid), 0, "%s: an empty socket id", client->label);
    snprintf(client->socket_id, sizeof(client->socket_id), "%s", sid);
    return sid;
}

static const char *connect_packet(const char *org_key)
{
    json_t *auth = keep_json(json_pack("{s:s}", "orgKey", org_key));
    char *text = keep(json_dumps(auth, JSON_COMPACT));
    return format_kept("40%s", text);
}

/* Sends CONNECT with `org_key` and checks the reply. */
static void join_org(rt_client *client, const char *org_key)
{
    send_packet(client, connect_packet(org_key));
    expect_connect_reply(client, next_packet(client));
}

static rt_client *connected_client(transport kind, const char *org_key, const char *label)
{
    rt_client *client = open_client_with(kind, label, NULL);
    join_org(client, org_key);
    return client;
}

typedef struct {
    bool ended;
    int close_code;     /* WebSocket: the close frame's code, 0 when none came */
    int64_t elapsed_ms; /* from the call to the end */
    const char *how;    /* polling: what showed the end */
} session_end;

/* Waits up to `timeout_ms` for the server to end the session: a WebSocket
 * closes, or a polling GET returns a close packet or 400 "Session ID
 * unknown". Sends no pong and nothing else. */
static session_end wait_for_end(rt_client *client, int timeout_ms)
{
    session_end end = {0};
    int64_t started = hv_time_monotonic_ms();
    if (client->kind == WEBSOCKET) {
        ws_close_result closed = ws_wait_closed(client->ws, timeout_ms, false);
        cr_assert(eq(str, closed.error, ""), "%s: %s", client->label, closed.error);
        end.ended = closed.closed;
        end.close_code = closed.close_code;
        end.elapsed_ms = closed.waited_ms;
        client->ended = end.ended;
        return end;
    }

    for (size_t i = 0; i < client->queued_count; i++)
        if (strcmp(client->queued[client->queued_first + i], "1") == 0)
            end = (session_end){.ended = true, .how = "a queued close packet"};
    while (!end.ended && hv_time_monotonic_ms() - started < timeout_ms) {
        http_response *result = new_http_response();
        polling_get(&client->session, REQUEST_TIMEOUT_MS, result);
        keep(result->body);
        cr_assert(result->completed, "%s: GET failed: %s", client->label, result->error);
        if (result->status == 400) {
            cr_assert(eq(str, result->body, UNKNOWN_SID_BODY), "%s: GET after the end", client->label);
            end = (session_end){.ended = true, .how = "400 Session ID unknown"};
            break;
        }
        cr_assert(eq(long, result->status, 200), "%s: GET: body %s", client->label, result->body);
        packet_span packets[256];
        size_t count = payload_split(result->body, result->body_len, packets, 256);
        for (size_t i = 0; i < count && i < 256; i++)
            if (packets[i].len == 1 && packets[i].data[0] == '1')
                end = (session_end){.ended = true, .how = "a close packet"};
    }
    end.elapsed_ms = hv_time_monotonic_ms() - started;
    client->ended = end.ended;
    return end;
}

static session_end expect_end(rt_client *client, int timeout_ms)
{
    session_end end = wait_for_end(client, timeout_ms);
    cr_assert(end.ended, "%s: the server did not end the session within %d ms", client->label, timeout_ms);
    return end;
}

/* Closes a client from its side, for tests that open many. */
static void close_client(rt_client *client)
{
    if (client->kind == WEBSOCKET) {
        ws_destroy(&client->ws);
        return;
    }
    http_response closed;
    polling_post(&client->session, "1", 1, &closed);
    http_response_release(&closed);
}

/* --- Events ------------------------------------------------------------------------- */

/* Returns the event name of a packet 42["name",...], or "" for other
 * packets. */
static const char *event_name(const char *packet)
{
    if (strncmp(packet, "42[", 3) != 0)
        return "";
    json_t *event = parse_kept(packet + 2, strlen(packet + 2));
    const char *name = json_string_value(json_array_get(event, 0));
    return name ? name : "";
}

/* Checks a message:new event against the body of the POST that added the
 * message: the "message" object must be those bytes exactly. */
static void expect_message_event(const rt_client *client, const char *packet, const char *conversation_id,
                                 const char *posted_message)
{
    cr_assert(eq(int, strncmp(packet, "42[", 3), 0), "%s: expected an event, got %.300s", client->label, packet);
    json_t *event = parse_kept(packet + 2, strlen(packet + 2));
    cr_assert(is_array(event), "%s: the event is not a JSON array: %.300s", client->label, packet);
    cr_assert(eq(sz, json_array_size(event), 2), "%s: %.300s", client->label, packet);
    cr_assert(eq(str, (char *)event_name(packet), "message:new"), "%s: %.300s", client->label, packet);

    json_t *data = json_array_get(event, 1);
    cr_assert(is_object(data), "%s: the event data is not an object", client->label);
    cr_assert(eq(sz, json_object_size(data), 2), "%s: the event data has other keys than conversationId and message: %.300s",
              client->label, packet);
    cr_assert(eq(str, (char *)string_member(data, "conversationId", packet), (char *)conversation_id), "%s: %.300s", client->label,
              packet);

    text_span whole = {packet + 2, strlen(packet + 2)};
    text_span message = object_member(array_element(whole, 1), "message");
    expect_same_bytes(message, posted_message, "the event's message object");
}

/* Checks a conversation:new event against the conversation that POST
 * /conversations created: the event carries the whole new conversation,
 * {"id","orgId","createdAt","updatedAt","messageCount"}. */
static void expect_conversation_event(const rt_client *client, const char *packet, created_conversation created)
{
    cr_assert(eq(int, strncmp(packet, "42[", 3), 0), "%s: expected an event, got %.300s", client->label, packet);
    json_t *event = parse_kept(packet + 2, strlen(packet + 2));
    cr_assert(is_array(event), "%s: the event is not a JSON array: %.300s", client->label, packet);
    cr_assert(eq(sz, json_array_size(event), 2), "%s: %.300s", client->label, packet);
    cr_assert(eq(str, (char *)event_name(packet), "conversation:new"), "%s: %.300s", client->label, packet);

    json_t *data = json_array_get(event, 1);
    cr_assert(is_object(data), "%s: the event data is not an object: %.300s", client->label, packet);
    cr_assert(eq(sz, json_object_size(data), 5), "%s: the conversation has other keys than expected: %.300s", client->label,
              packet);
    cr_assert(eq(str, (char *)string_member(data, "id", packet), (char *)created.id), "%s", client->label);
    cr_assert(eq(str, (char *)string_member(data, "orgId", packet), (char *)created.org), "%s", client->label);
    cr_assert(eq(str, (char *)string_member(data, "createdAt", packet), (char *)created.created_at), "%s", client->label);
    cr_assert(eq(str, (char *)string_member(data, "updatedAt", packet), (char *)created.created_at), "%s", client->label);
    json_t *count = json_object_get(data, "messageCount");
    bool count_is_zero = json_is_integer(count) && json_integer_value(count) == 0;
    cr_assert(count_is_zero, "%s: messageCount of a new conversation: %.300s", client->label, packet);
}

/* Creates a conversation and checks that each of `count` clients receives
 * its conversation:new event next. */
static created_conversation create_conversation_seen_by(const char *org_key, rt_client **readers, size_t count)
{
    created_conversation created = create_conversation_over_http(org_key);
    for (size_t i = 0; i < count; i++)
        expect_conversation_event(readers[i], next_packet(readers[i]), created);
    return created;
}

/* Posts a message and checks that each of `count` clients receives it next. */
static const char *post_message_seen_by(const char *org_key, const char *conversation_id, const char *content, rt_client **readers,
                                        size_t count)
{
    const char *posted = post_message(org_key, conversation_id, content);
    for (size_t i = 0; i < count; i++)
        expect_message_event(readers[i], next_packet(readers[i]), conversation_id, posted);
    return posted;
}

/* A client of org A that stays connected through a test of bad input, to
 * show that the other sessions are not disturbed. */
static rt_client *bystander;
static const char *bystander_conversation;

/* A WebSocket client of org A that reads the bystander's messages as well. */
static rt_client *watcher;

static void open_bystander(transport kind)
{
    bystander = connected_client(kind, key_a, "the bystander");
    bystander_conversation = create_conversation_seen_by(key_a, &bystander, 1).id;
}

static void expect_bystander_served(const char *after)
{
    const char *posted = post_message(key_a, bystander_conversation, format_kept("still here after %s", after));
    const char *packet = try_next_packet(bystander, EVENT_TIMEOUT_MS);
    cr_assert_not_null(packet, "the bystander got no event after %s", after);
    expect_message_event(bystander, packet, bystander_conversation, posted);
}

/* --- The server's sockets ------------------------------------------------------------ */

typedef struct {
    bool found;
    int state; /* as in /proc/net/tcp: 1 is ESTABLISHED */
    unsigned long receive_queue;
} tcp_entry;

#define TCP_ESTABLISHED_STATE 1

/* Finds the server's side of a loopback connection in /proc/net/tcp: the
 * socket on `server_port` whose peer is `client_port`. */
static tcp_entry find_server_socket(int server_port, int client_port)
{
    tcp_entry entry = {0};
    FILE *table = fopen("/proc/net/tcp", "r");
    cr_assert_not_null(table, "cannot read /proc/net/tcp: %s", strerror(errno));
    char line[512];
    while (fgets(line, sizeof(line), table)) {
        unsigned local_address, local_port, remote_address, remote_port, state;
        unsigned long transmit_queue, receive_queue;
        if (sscanf(line, " %*u: %8X:%4X %8X:%4X %2X %8lX:%8lX", &local_address, &local_port, &remote_address, &remote_port, &state,
                   &transmit_queue, &receive_queue) != 7)
            continue;
        if ((int)local_port == server_port && (int)remote_port == client_port) {
            entry = (tcp_entry){.found = true, .state = (int)state, .receive_queue = receive_queue};
            break;
        }
    }
    fclose(table);
    return entry;
}

static int local_port_of(int fd)
{
    struct sockaddr_in address;
    socklen_t len = sizeof(address);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&address, &len), 0, "getsockname failed: %s", strerror(errno));
    return ntohs(address.sin_port);
}

/* --- A polling GET on another thread ------------------------------------------------- */

/* A GET left open on the server while the test does something else, such
 * as upgrading the session or stopping the server. */
typedef struct {
    pthread_t thread;
    bool running;
    char url[192];
    http_progress progress;
    http_response result;
} pending_get;

static pending_get pending;

static void *run_pending_get(void *data)
{
    pending_get *get = data;
    polling_exchange(get->url, NULL, 0, REQUEST_TIMEOUT_MS, &get->progress, &get->result);
    return NULL;
}

/* Starts the GET and waits until the server has read it: the request has
 * been written and the server's socket has nothing left to read. h2o
 * handles a request in the same turn as it reads it, so the poll is then
 * pending on the server. */
static void start_pending_get(const polling_session *session)
{
    memset(&pending, 0, sizeof(pending));
    polling_url(session, pending.url, sizeof(pending.url));
    cr_assert_eq(pthread_create(&pending.thread, NULL, run_pending_get, &pending), 0, "pthread_create failed");
    pending.running = true;

    int64_t deadline = hv_time_monotonic_ms() + EVENT_TIMEOUT_MS;
    for (;;) {
        cr_assert_lt(hv_time_monotonic_ms(), deadline, "the server did not read the pending GET within %d ms", EVENT_TIMEOUT_MS);
        if (atomic_load(&pending.progress.request_sent)) {
            tcp_entry entry = find_server_socket(realtime.port, atomic_load(&pending.progress.local_port));
            if (entry.found && entry.receive_queue == 0)
                return;
        }
        struct timespec pause = {.tv_nsec = 2 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

/* Waits for the pending GET to finish and returns its result. The GET has
 * its own timeout, so the join is bounded. */
static http_response *finish_pending_get(void)
{
    pthread_join(pending.thread, NULL);
    pending.running = false;
    keep(pending.result.body);
    cr_assert(pending.result.completed, "the pending GET failed: %s", pending.result.error);
    return &pending.result;
}

/* --- Fixture ---------------------------------------------------------------------------- */

/* Waits until helvino-realtime resolves keys through the store: its ZeroMQ
 * connection comes up after it starts serving, and until then a CONNECT
 * gets "Service unavailable". */
static void wait_for_realtime_to_reach_store(void)
{
    int64_t deadline = hv_time_monotonic_ms() + STORE_REACH_TIMEOUT_MS;
    for (;;) {
        rt_client *probe = open_client_with(WEBSOCKET, "the store probe", NULL);
        send_packet(probe, connect_packet(key_a));
        const char *reply = next_packet(probe);
        close_client(probe);
        if (strncmp(reply, "40{", 3) == 0)
            return;
        cr_assert(eq(str, (char *)reply, UNAVAILABLE_ERROR), "the store probe's CONNECT");
        cr_assert_lt(hv_time_monotonic_ms(), deadline, "helvino-realtime did not reach the store within %d ms",
                     STORE_REACH_TIMEOUT_MS);
        struct timespec pause = {.tv_nsec = 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

static void start_realtime(const char *const *env)
{
    realtime_start(&realtime, &store, env);
    wait_for_realtime_to_reach_store();
}

static void start_store_and_gateway(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    store_start(&store, NULL);
    create_unique_org(&store, "alpha", org_a, sizeof(org_a));
    create_unique_org(&store, "beta", org_b, sizeof(org_b));
    snprintf(key_a, sizeof(key_a), "key-%s", org_a);
    snprintf(key_b, sizeof(key_b), "key-%s", org_b);
    gateway_start(&gateway, &store, NULL);
    gateway_wait_for_store(&gateway, STORE_REACH_TIMEOUT_MS);
}

static void start_default(void)
{
    start_store_and_gateway();
    start_realtime(default_env);
}

static void start_short_ping(void)
{
    start_store_and_gateway();
    start_realtime(short_ping_env);
}

static void start_long_ping(void)
{
    start_store_and_gateway();
    start_realtime(long_ping_env);
}

static void start_bad_input(void)
{
    start_store_and_gateway();
    start_realtime(bad_input_env);
}

static void start_slow_client(void)
{
    start_store_and_gateway();
    start_realtime(slow_client_env);
}

static void start_unreachable_store(void)
{
    start_store_and_gateway();
    start_realtime(unreachable_store_env);
}

static void stop_services(void)
{
    if (store_frozen)
        kill(store.pid, SIGCONT);
    store_frozen = false;
    if (pending.running) {
        pthread_join(pending.thread, NULL);
        http_response_release(&pending.result);
        pending.running = false;
    }
    release_clients();
    bystander = watcher = NULL;

    service_expect_clean_stop(&realtime);
    service_expect_clean_stop(&gateway);
    store_expect_clean_stop(&store);
    release_kept();
    curl_global_cleanup();
}

TestSuite(handshake, .init = start_default, .fini = stop_services, .timeout = 60);
TestSuite(connect, .init = start_default, .fini = stop_services, .timeout = 60);
TestSuite(events, .init = start_default, .fini = stop_services, .timeout = 60);
TestSuite(outage, .init = start_unreachable_store, .fini = stop_services, .timeout = 60);
TestSuite(upgrade, .init = start_long_ping, .fini = stop_services, .timeout = 60);
TestSuite(bad_input, .init = start_bad_input, .fini = stop_services, .timeout = 60);
TestSuite(heartbeat, .init = start_short_ping, .fini = stop_services, .timeout = 60);
TestSuite(slow_client, .init = start_slow_client, .fini = stop_services, .timeout = 90);
TestSuite(shutdown, .init = start_long_ping, .fini = stop_services, .timeout = 60);

/* --- Handshakes and bad requests ------------------------------------------------------------ */

Test(handshake, polling_open_packet_offers_websocket)
{
    http_response *response = new_http_response();
    polling_session session;
    char error[256];
    int opened = polling_open(&session, realtime.url, response, error, sizeof(error));
    keep(response->body);
    cr_assert(eq(int, opened, 0), "%s", error);

    const char *content_type = http_header_value(response, "content-type");
    cr_assert_not_null(content_type, "the response has no content-type");
    cr_assert(eq(int, strncmp(content_type, "text/plain", 10), 0), "content-type is \"%s\"", content_type);
    expect_valid_sid(session.open.sid, "the sid");
    cr_assert(eq(int, session.open.key_count, 5), "the open packet has other keys than expected: %s", response->body);
    cr_assert(eq(int, session.open.upgrade_count, 1), "%s", response->body);
    cr_assert(session.open.websocket_upgrade, "the upgrades do not list websocket: %s", response->body);
    cr_assert(eq(llong, session.open.ping_interval_ms, 300), "%s", response->body);
    cr_assert(eq(llong, session.open.ping_timeout_ms, 5000), "%s", response->body);
    cr_assert(eq(llong, session.open.max_payload, 1000000), "%s", response->body);

    polling_session other;
    cr_assert(eq(int, polling_open(&other, realtime.url, NULL, error, sizeof(error)), 0), "%s", error);
    cr_assert(ne(str, other.sid, session.sid), "two sessions got the same sid");
}

Test(handshake, websocket_open_packet_has_no_upgrades)
{
    rt_client *client = open_client(WEBSOCKET);
    expect_valid_sid(client->open.sid, "the sid");
    cr_assert(eq(int, client->open.key_count, 5), "the open packet has other keys than expected");
    cr_assert(eq(int, client->open.upgrade_count, 0), "a WebSocket session offers upgrades");
    cr_assert(eq(llong, client->open.ping_interval_ms, 300));
    cr_assert(eq(llong, client->open.ping_timeout_ms, 5000));
    cr_assert(eq(llong, client->open.max_payload, 1000000));

    rt_client *other = open_client(WEBSOCKET);
    cr_assert(ne(str, other->open.sid, client->open.sid), "two sessions got the same sid");
}

/* Sends GET to `query` under /socket.io/ and checks the 400 error body. */
static void expect_bad_request(const char *query, const char *expected_body)
{
    http_response *result = new_http_response();
    polling_exchange(format_kept("%s/socket.io/%s", realtime.url, query), NULL, 0, REQUEST_TIMEOUT_MS, NULL, result);
    keep(result->body);
    cr_assert(result->completed, "GET %s failed: %s", query, result->error);
    cr_assert(eq(long, result->status, 400), "GET %s: body %s", query, result->body);
    cr_assert(eq(str, result->body, (char *)expected_body), "GET %s", query);
}

Test(handshake, unknown_sid_gets_400_code_1)
{
    rt_client *bystanding = connected_client(POLLING, key_a, "the bystander");
    created_conversation created = create_conversation_seen_by(key_a, &bystanding, 1);

    expect_bad_request("?EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA", UNKNOWN_SID_BODY);

    /* A POST to an unknown sid, and a sid that differs from a live one in
     * its last character. */
    expect_valid_sid(bystanding->session.sid, "the bystander's sid");
    char *near_sid = format_kept("%s", bystanding->session.sid);
    near_sid[19] = near_sid[19] == 'A' ? 'B' : 'A';
    http_response *posted = new_http_response();
    polling_exchange(format_kept("%s/socket.io/?EIO=4&transport=polling&sid=%s", realtime.url, near_sid), "3", 1,
                     REQUEST_TIMEOUT_MS, NULL, posted);
    keep(posted->body);
    cr_assert(eq(long, posted->status, 400), "POST to an unknown sid: body %s", posted->body);
    cr_assert(eq(str, posted->body, UNKNOWN_SID_BODY));

    ws_handshake handshake;
    ws_client *ws = ws_connect(realtime.port, "/socket.io/?EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA", NULL, &handshake);
    ws_destroy(&ws);
    cr_assert(eq(int, handshake.status, 400), "a WebSocket upgrade of an unknown sid: %s", handshake.error);

    post_message_seen_by(key_a, created.id, "after unknown sids", &bystanding, 1);
}

Test(handshake, unknown_transport_gets_400_code_0)
{
    static const char body[] = "{\"code\":0,\"message\":\"Transport unknown\"}";
    expect_bad_request("?EIO=4&transport=flashsocket", body);
    expect_bad_request("?EIO=4", body);
    expect_bad_request("?EIO=4&transport=", body);
}

Test(handshake, unsupported_protocol_gets_400_code_5)
{
    static const char body[] = "{\"code\":5,\"message\":\"Unsupported protocol version\"}";
    expect_bad_request("?EIO=3&transport=polling", body);
    expect_bad_request("?transport=polling", body);
    expect_bad_request("?EIO=banana&transport=polling", body);

    ws_handshake handshake;
    ws_client *ws = ws_connect(realtime.port, "/socket.io/?EIO=3&transport=websocket", NULL, &handshake);
    ws_destroy(&ws);
    cr_assert(eq(int, handshake.status, 400), "a WebSocket upgrade with EIO=3: %s", handshake.error);
}

/* --- CONNECT ------------------------------------------------------------------------------------ */

static void check_receives_posted_message(transport kind)
{
    rt_client *client = connected_client(kind, key_a, NULL);
    expect_valid_sid(client->open.sid, "the Engine.IO sid");

    created_conversation created = create_conversation_seen_by(key_a, &client, 1);
    post_message_seen_by(key_a, created.id, "Hello from the test", &client, 1);
    post_message_seen_by(key_a, created.id, "And a second one", &client, 1);
}

Test(connect, websocket_client_receives_posted_message)
{
    check_receives_posted_message(WEBSOCKET);
}

Test(connect, polling_client_receives_posted_message)
{
    check_receives_posted_message(POLLING);
}

/* Sends `packet` as the first packet of a new session and checks that the
 * server replies `expected` and then ends the session. A WebSocket must get
 * a close frame. */
static void check_connect_refused(transport kind, const char *packet, const char *expected)
{
    rt_client *client = open_client(kind);
    send_packet(client, packet);
    const char *reply = next_packet(client);
    if (!expected)
        cr_assert(strcmp(reply, MISSING_KEY_ERROR) == 0 || strcmp(reply, INVALID_KEY_ERROR) == 0,
                  "%s: %s got %s, expected a key error", client->label, packet, reply);
    else
        cr_assert(eq(str, (char *)reply, (char *)expected), "%s: the reply to %s", client->label, packet);

    session_end end = expect_end(client, CLOSE_TIMEOUT_MS);
    if (kind == WEBSOCKET)
        cr_assert(ne(int, end.close_code, 0), "%s: the server closed after %s without a close frame", client->label, packet);
}

Test(connect, missing_key_gets_connect_error_and_close)
{
    rt_client *bystanding = connected_client(WEBSOCKET, key_a, "the bystander");
    const char *const packets[] = {"40", "40{}", "40{\"other\":\"demo\"}", "40{\"orgKey\":\"\"}", "40{\"orgKey\":42}",
                                   "40{\"orgKey\":null}"};
    for (transport kind = WEBSOCKET; kind <= POLLING; kind++) {
        for (size_t i = 0; i < sizeof(packets) / sizeof(packets[0]); i++) {
            /* An empty or non-string key is refused as one or the other. */
            check_connect_refused(kind, packets[i], i < 3 ? MISSING_KEY_ERROR : NULL);
            /* The refusals take a while, so the bystander replies to its pings
             * as a live client does, and gets nothing else. */
            expect_quiet(bystanding, 50);
        }
    }
    created_conversation created = create_conversation_seen_by(key_a, &bystanding, 1);
    post_message_seen_by(key_a, created.id, "after refused keys", &bystanding, 1);
}

Test(connect, invalid_key_gets_connect_error_and_close)
{
    char *upper_key = format_kept("%s", key_a);
    upper_key[0] = 'K';
    for (transport kind = WEBSOCKET; kind <= POLLING; kind++) {
        check_connect_refused(kind, connect_packet("no-such-key"), INVALID_KEY_ERROR);
        check_connect_refused(kind, connect_packet(upper_key), INVALID_KEY_ERROR);
        check_connect_refused(kind, connect_packet(format_kept("%s ", key_a)), INVALID_KEY_ERROR);
    }
    /* The refusals are not cached against the valid key. */
    connected_client(WEBSOCKET, key_a, NULL);
}

Test(connect, other_namespace_gets_invalid_namespace)
{
    for (transport kind = WEBSOCKET; kind <= POLLING; kind++) {
        rt_client *client = open_client(kind);
        send_packet(client, format_kept("40/admin,%s", connect_packet(key_a) + 2));
        const char *reply = next_packet(client);
        cr_assert(eq(str, (char *)reply, "44/admin,{\"message\":\"Invalid namespace\"}"), "%s", client->label);
    }
    rt_client *other = connected_client(WEBSOCKET, key_a, NULL);
    created_conversation created = create_conversation_seen_by(key_a, &other, 1);
    post_message_seen_by(key_a, created.id, "after another namespace", &other, 1);
}

Test(connect, polling_post_carries_joined_packets)
{
    /* socket.io-client sends what it has queued in one POST, here the pong
     * to the first ping and the CONNECT packet. */
    rt_client *client = open_client(POLLING);
    http_response *pinged = new_http_response();
    polling_get(&client->session, REQUEST_TIMEOUT_MS, pinged);
    keep(pinged->body);
    cr_assert(eq(long, pinged->status, 200), "GET: body %s", pinged->body);
    cr_assert(eq(str, pinged->body, "2"), "expected the first ping");

    send_packet(client, format_kept("3\x1e%s", connect_packet(key_a)));
    expect_connect_reply(client, next_packet(client));
    created_conversation created = create_conversation_seen_by(key_a, &client, 1);
    post_message_seen_by(key_a, created.id, "after a joined POST", &client, 1);
}

Test(connect, extra_auth_fields_are_ignored)
{
    rt_client *client = open_client(WEBSOCKET);
    send_packet(client, format_kept("40{\"token\":\"x\",\"orgKey\":\"%s\",\"n\":[1,{}]}", key_a));
    expect_connect_reply(client, next_packet(client));
    created_conversation created = create_conversation_seen_by(key_a, &client, 1);
    post_message_seen_by(key_a, created.id, "extra fields", &client, 1);
}

/* The server subscribes to an org's events when its first socket joins.
 * Events published right after the CONNECT reply must not be lost while
 * that subscription travels to the store. */
static void check_first_event_after_connect(transport kind, int rounds)
{
    for (int round = 0; round < rounds; round++) {
        char org[80];
        create_unique_org(&store, format_kept("fresh%s%d", transport_name(kind), round), org, sizeof(org));
        const char *key = format_kept("key-%s", org);
        rt_client *client = open_client_with(kind, format_kept("the client of %s", org), NULL);
        send_packet(client, connect_packet(key));
        expect_connect_reply(client, next_packet(client));

        created_conversation created = create_conversation_over_http(key);
        const char *packet = try_next_packet(client, EVENT_TIMEOUT_MS);
        cr_assert_not_null(packet, "round %d: the conversation:new posted right after the CONNECT reply to %s never came", round,
                           org);
        expect_conversation_event(client, packet, created);
        close_client(client);
    }
}

Test(connect, websocket_gets_every_event_after_reply)
{
    check_first_event_after_connect(WEBSOCKET, FRESH_WEBSOCKET_ORGS);
}

Test(connect, polling_gets_every_event_after_reply)
{
    check_first_event_after_connect(POLLING, FRESH_POLLING_ORGS);
}

Test(connect, fragmented_connect_is_joined)
{
    /* The CONNECT packet in three frames, split inside the two bytes of
     * "é", so that neither of the first two frames is valid UTF-8 alone. */
    rt_client *client = open_client(WEBSOCKET);
    const char *packet = format_kept("40{\"name\":\"Ren\xc3\xa9\",\"orgKey\":\"%s\"}", key_a);
    size_t split = (size_t)(strchr(packet, '\xc3') - packet) + 1;
    size_t len = strlen(packet);
    cr_assert_eq(ws_send_frame(client->ws, WS_OPCODE_TEXT, false, true, packet, split), 0);
    cr_assert_eq(ws_send_frame(client->ws, WS_OPCODE_CONTINUATION, false, true, packet + split, 3), 0);
    cr_assert_eq(ws_send_frame(client->ws, WS_OPCODE_CONTINUATION, true, true, packet + split + 3, len - split - 3), 0);
    expect_connect_reply(client, next_packet(client));
    created_conversation created = create_conversation_seen_by(key_a, &client, 1);
    post_message_seen_by(key_a, created.id, "fragments", &client, 1);
}

Test(outage, frozen_store_gets_service_unavailable)
{
    rt_client *bystanding = connected_client(WEBSOCKET, key_a, "the bystander");

    /* key_b has not been used yet, so the service must ask the store. */
    cr_assert_eq(kill(store.pid, SIGSTOP), 0, "SIGSTOP failed: %s", strerror(errno));
    store_frozen = true;
    for (transport kind = WEBSOCKET; kind <= POLLING; kind++)
        check_connect_refused(kind, connect_packet(key_b), UNAVAILABLE_ERROR);
    kill(store.pid, SIGCONT);
    store_frozen = false;

    /* The outage is not remembered as an invalid key. */
    rt_client *recovered = connected_client(WEBSOCKET, key_b, "the client after the outage");
    created_conversation created = create_conversation_seen_by(key_b, &recovered, 1);
    post_message_seen_by(key_b, created.id, "after the outage", &recovered, 1);
    expect_quiet(bystanding, QUIET_WINDOW_MS);
}

/* --- Events ------------------------------------------------------------------------------------- */

/* Reads packets until the message:new of `marker_id` and checks that each
 * is an event of `org`: conversation:new of one of its conversations or
 * message:new in `conversation_id`. Returns the number of message:new
 * events before the marker. */
static int read_own_events_until(rt_client *client, const char *org, const char *conversation_id, const char *marker_id)
{
    int messages = 0;
    for (;;) {
        const char *packet = next_packet(client);
        const char *name = event_name(packet);
        json_t *data = json_array_get(parse_kept(packet + 2, strlen(packet + 2)), 1);
        if (strcmp(name, "conversation:new") == 0) {
            cr_assert(eq(str, (char *)string_member(data, "orgId", packet), (char *)org),
                      "%s received another org's conversation: %.300s", client->label, packet);
            continue;
        }
        cr_assert(eq(str, (char *)name, "message:new"), "%s: expected an event, got %.300s", client->label, packet);
        const char *in = string_member(data, "conversationId", packet);
        cr_assert(eq(str, (char *)in, (char *)conversation_id), "%s received a message of another conversation: %.300s",
                  client->label, packet);
        const char *id = string_member(json_object_get(data, "message"), "id", packet);
        if (strcmp(id, marker_id) == 0)
            return messages;
        messages++;
    }
}

static const char *message_id(const char *posted_message)
{
    return string_member(parse_kept(posted_message, strlen(posted_message)), "id", posted_message);
}

Test(events, two_orgs_receive_only_own_events)
{
    rt_client *a_clients[] = {connected_client(WEBSOCKET, key_a, "the WebSocket of org A"),
                              connected_client(POLLING, key_a, "the polling client of org A")};
    rt_client *b_clients[] = {connected_client(WEBSOCKET, key_b, "the WebSocket of org B"),
                              connected_client(POLLING, key_b, "the polling client of org B")};
    created_conversation in_a = create_conversation_seen_by(key_a, a_clients, 2);
    created_conversation in_b = create_conversation_seen_by(key_b, b_clients, 2);

    /* Each org's last message is a marker. The store publishes in order and
     * each connection delivers in order, so an event of the other org sent
     * to the wrong client would arrive before the marker, or within the
     * quiet window after it. */
    for (int i = 0; i < 3; i++) {
        post_message(key_b, in_b.id, format_kept("for B %d", i));
        post_message(key_a, in_a.id, format_kept("for A %d", i));
        create_conversation_over_http(key_b);
    }
    const char *marker_a = message_id(post_message(key_a, in_a.id, "A is done"));
    const char *marker_b = message_id(post_message(key_b, in_b.id, "B is done"));

    for (size_t i = 0; i < 2; i++) {
        cr_assert(eq(int, read_own_events_until(a_clients[i], org_a, in_a.id, marker_a), 3), "%s", a_clients[i]->label);
        cr_assert(eq(int, read_own_events_until(b_clients[i], org_b, in_b.id, marker_b), 3), "%s", b_clients[i]->label);
    }
    for (size_t i = 0; i < 2; i++) {
        expect_quiet(a_clients[i], QUIET_WINDOW_MS);
        expect_quiet(b_clients[i], QUIET_WINDOW_MS);
    }
}

Test(events, polling_payload_joins_packets)
{
    /* Once the WebSocket client has all four messages, the server has
     * queued them for the polling session too, so one GET returns them. */
    rt_client *witness = connected_client(WEBSOCKET, key_a, "the WebSocket witness");
    rt_client *polled = connected_client(POLLING, key_a, "the polling client");
    rt_client *both[] = {witness, polled};
    created_conversation created = create_conversation_seen_by(key_a, both, 2);

    const char *posted[4];
    for (int i = 0; i < 4; i++)
        posted[i] = post_message(key_a, created.id, format_kept("joined %d", i));
    for (int i = 0; i < 4; i++)
        expect_message_event(witness, next_packet(witness), created.id, posted[i]);

    http_response *result = new_http_response();
    polling_get(&polled->session, REQUEST_TIMEOUT_MS, result);
    keep(result->body);
    cr_assert(eq(long, result->status, 200), "GET: body %s", result->body);
    const char *content_type = http_header_value(result, "content-type");
    cr_assert_not_null(content_type, "the response has no content-type");
    cr_assert(eq(int, strncmp(content_type, "text/plain", 10), 0), "content-type is \"%s\"", content_type);
    packet_span packets[16];
    size_t count = payload_split(result->body, result->body_len, packets, 16);
    cr_assert_leq(count, 16);
    size_t events = 0;
    for (size_t i = 0; i < count; i++) {
        const char *packet = copy_kept(packets[i].data, packets[i].len);
        if (strcmp(packet, "2") == 0)
            continue;
        cr_assert_lt(events, 4, "more packets than the four messages: %s", result->body);
        expect_message_event(polled, packet, created.id, posted[events]);
        events++;
    }
    cr_assert(eq(sz, events, 4), "one GET returned %zu of the 4 messages: %s", events, result->body);
}

Test(events, content_is_sent_byte_for_byte)
{
    static const char *const contents[] = {
        "plain ASCII",
        "quotes \" and backslashes \\ and a slash /",
        "control characters: tab\t newline\n carriage return\r bell\x07",
        "Gr\xc3\xbc\xc3\x9f"
        "e, \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e, emoji \xf0\x9f\x98\x80",
        "line separators \xe2\x80\xa8 and \xe2\x80\xa9 and </script>",
        "a record separator \x1e inside the text",
        "{\"looks\":[\"like\",\"json\"]}",
    };
    rt_client *readers[] = {connected_client(WEBSOCKET, key_a, "the WebSocket client"),
                            connected_client(POLLING, key_a, "the polling client")};
    created_conversation created = create_conversation_seen_by(key_a, readers, 2);
    for (size_t i = 0; i < sizeof(contents) / sizeof(*contents); i++) {
        const char *posted = post_message_seen_by(key_a, created.id, contents[i], readers, 2);
        json_t *message = parse_kept(posted, strlen(posted));
        cr_assert(eq(str, (char *)string_member(message, "content", posted), (char *)contents[i]),
                  "the gateway changed the content");
    }

    /* A long message, close to the gateway's body limit. */
    char *long_content = keep(malloc(60001));
    for (size_t i = 0; i < 60000; i++)
        long_content[i] = (char)('a' + i % 26);
    long_content[60000] = '\0';
    post_message_seen_by(key_a, created.id, long_content, readers, 2);
}

Test(events, many_messages_arrive_in_order)
{
    rt_client *readers[] = {connected_client(WEBSOCKET, key_a, "the WebSocket client"),
                            connected_client(POLLING, key_a, "the polling client")};
    created_conversation created = create_conversation_seen_by(key_a, readers, 2);
    enum { COUNT = 50 };
    const char *posted[COUNT];
    for (int i = 0; i < COUNT; i++)
        posted[i] = post_message(key_a, created.id, format_kept("number %d", i));
    for (size_t reader = 0; reader < 2; reader++)
        for (int i = 0; i < COUNT; i++)
            expect_message_event(readers[reader], next_packet(readers[reader]), created.id, posted[i]);
}

/* --- Upgrade from polling to WebSocket ----------------------------------------------------------- */

Test(upgrade, polling_session_moves_to_websocket)
{
    rt_client *polled = connected_client(POLLING, key_a, "the upgrading client");
    created_conversation created = create_conversation_seen_by(key_a, &polled, 1);

    /* socket.io-client probes while a poll is open and waits for that poll
     * to end before it sends the upgrade packet: the server ends it with a
     * noop. */
    start_pending_get(&polled->session);
    rt_client *upgraded = track_client(WEBSOCKET, "the upgraded client");
    upgraded->ws = connect_websocket(format_kept("/socket.io/?EIO=4&transport=websocket&sid=%s", polled->session.sid), NULL);
    cr_assert_eq(ws_send_text(upgraded->ws, "2probe"), 0);
    const char *probe_reply = next_packet(upgraded);
    cr_assert(eq(str, (char *)probe_reply, "3probe"), "the reply to the probe");

    http_response *ended_poll = finish_pending_get();
    cr_assert(eq(long, ended_poll->status, 200), "the pending GET during the upgrade: body %s", ended_poll->body);
    cr_assert(eq(str, ended_poll->body, "6"), "the pending GET during the upgrade");

    /* An event published between the probe and the upgrade packet is not
     * lost: it comes over the WebSocket once the upgrade completes. */
    const char *during = post_message(key_a, created.id, "during the upgrade");
    cr_assert_eq(ws_send_text(upgraded->ws, "5"), 0);
    expect_message_event(upgraded, next_packet(upgraded), created.id, during);
    post_message_seen_by(key_a, created.id, "after the upgrade", &upgraded, 1);

    /* The session has left polling. */
    http_response *late_poll = new_http_response();
    polling_get(&polled->session, REQUEST_TIMEOUT_MS, late_poll);
    keep(late_poll->body);
    cr_assert(late_poll->completed, "GET after the upgrade failed: %s", late_poll->error);
    cr_assert(eq(long, late_poll->status, 400), "GET after the upgrade: body %s", late_poll->body);
    json_t *error = parse_kept(late_poll->body, late_poll->body_len);
    bool has_code = json_is_integer(json_object_get(error, "code"));
    cr_assert(has_code, "the 400 body has no integer code: %s", late_poll->body);
}

Test(upgrade, websocket_sid_is_refused_elsewhere)
{
    rt_client *direct = connected_client(WEBSOCKET, key_a, "the WebSocket client");
    rt_client *bystanding = connected_client(WEBSOCKET, key_a, "the bystander");
    created_conversation created = create_conversation_seen_by(key_a, &bystanding, 1);
    const char *sid = direct->open.sid;

    const char *polling_target = format_kept("%s/socket.io/?EIO=4&transport=polling&sid=%s", realtime.url, sid);
    http_response *polled = new_http_response();
    polling_exchange(polling_target, NULL, 0, REQUEST_TIMEOUT_MS, NULL, polled);
    keep(polled->body);
    cr_assert(polled->completed, "GET with a WebSocket sid failed: %s", polled->error);
    cr_assert(eq(long, polled->status, 400), "GET with a WebSocket sid: body %s", polled->body);

    http_response *posted = new_http_response();
    polling_exchange(polling_target, "3", 1, REQUEST_TIMEOUT_MS, NULL, posted);
    keep(posted->body);
    cr_assert(eq(long, posted->status, 400), "POST with a WebSocket sid: body %s", posted->body);

    ws_handshake handshake;
    ws_client *second =
        ws_connect(realtime.port, format_kept("/socket.io/?EIO=4&transport=websocket&sid=%s", sid), NULL, &handshake);
    ws_destroy(&second);
    cr_assert(eq(int, handshake.status, 400), "a second WebSocket for the sid: %s", handshake.error);

    post_message_seen_by(key_a, created.id, "after the refusals", &bystanding, 1);
}

/* --- Bad input ------------------------------------------------------------------------------------------ */

/* Sends a frame on a new connected WebSocket and checks that the server
 * closes it with `expected_code` (0 accepts any close, with or without a
 * close frame), and that the bystander still gets its events. */
/* A string literal and its length without the terminating NUL. */
#define LITERAL(text) text, sizeof(text) - 1

static void check_bad_frame(int opcode, const void *payload, size_t len, int expected_code, const char *what)
{
    rt_client *client = connected_client(WEBSOCKET, key_a, what);
    cr_assert_eq(ws_send(client->ws, opcode, payload, len), 0, "%s: %s", what, ws_last_error(client->ws));
    session_end end = expect_end(client, CLOSE_TIMEOUT_MS);
    if (expected_code)
        cr_assert(eq(int, end.close_code, expected_code), "%s: the close code", what);
    cr_log_info("%s: closed with code %d", what, end.close_code);
    expect_bystander_served(what);
}

Test(bad_input, binary_frame_closes_with_1003)
{
    open_bystander(WEBSOCKET);
    check_bad_frame(WS_OPCODE_BINARY, LITERAL("42[\"hello\"]"), 1003, "a binary frame");
    check_bad_frame(WS_OPCODE_BINARY, LITERAL("\x00\x01\x02"), 1003, "a binary frame of bytes");
}

Test(bad_input, invalid_utf8_closes_with_1007)
{
    open_bystander(WEBSOCKET);
    check_bad_frame(WS_OPCODE_TEXT, LITERAL("42[\"x\",\"\xff\"]"), 1007, "the byte 0xff");
    check_bad_frame(WS_OPCODE_TEXT, LITERAL("42[\"x\",\"\xc0\xaf\"]"), 1007, "an overlong encoding");
    check_bad_frame(WS_OPCODE_TEXT, LITERAL("42[\"x\",\"\xed\xa0\x80\"]"), 1007, "a UTF-16 surrogate");
    check_bad_frame(WS_OPCODE_TEXT, LITERAL("42[\"x\",\"\xe6\x97\"]"), 1007, "a cut sequence");
}

Test(bad_input, oversized_message_closes_with_1009)
{
    open_bystander(WEBSOCKET);
    size_t len = SMALL_MAX_PAYLOAD + 1;
    char *packet = keep(malloc(len));
    memset(packet, 'a', len);
    memcpy(packet, "42[\"x\",\"", 8);
    memcpy(packet + len - 2, "\"]", 2);
    check_bad_frame(WS_OPCODE_TEXT, packet, len, 1009, "a message one byte over maxPayload");

    /* The same message in fragments that are each below the limit. */
    rt_client *client = connected_client(WEBSOCKET, key_a, "a fragmented message over maxPayload");
    size_t third = len / 3;
    cr_assert_eq(ws_send_frame(client->ws, WS_OPCODE_TEXT, false, true, packet, third), 0);
    cr_assert_eq(ws_send_frame(client->ws, WS_OPCODE_CONTINUATION, false, true, packet + third, third), 0);
    cr_assert_eq(ws_send_frame(client->ws, WS_OPCODE_CONTINUATION, true, true, packet + 2 * third, len - 2 * third), 0);
    session_end end = expect_end(client, CLOSE_TIMEOUT_MS);
    cr_assert(eq(int, end.close_code, 1009), "the close code for a fragmented message over maxPayload");
    expect_bystander_served("a fragmented message over maxPayload");
}

Test(bad_input, broken_json_closes_with_1008)
{
    open_bystander(WEBSOCKET);
    check_bad_frame(WS_OPCODE_TEXT, LITERAL("42[\"x\",{]"), 1008, "broken JSON in an event");
    check_bad_frame(WS_OPCODE_TEXT, LITERAL("42{\"x\":1}"), 1008, "an event that is not an array");

    /* Broken JSON in the CONNECT packet, before the socket has joined. */
    rt_client *client = open_client_with(WEBSOCKET, "broken JSON in CONNECT", NULL);
    send_packet(client, "40{\"orgKey\":");
    session_end end = expect_end(client, CLOSE_TIMEOUT_MS);
    cr_assert(eq(int, end.close_code, 1008), "the close code for broken JSON in CONNECT");
    expect_bystander_served("broken JSON in CONNECT");
}

Test(bad_input, unknown_packet_type_closes_session)
{
    open_bystander(WEBSOCKET);
    check_bad_frame(WS_OPCODE_TEXT, LITERAL("9hello"), 0, "the Engine.IO packet type 9");
    check_bad_frame(WS_OPCODE_TEXT, LITERAL("x"), 0, "a packet type that is not a digit");
    check_bad_frame(WS_OPCODE_TEXT, LITERAL("47[\"x\"]"), 0, "the Socket.IO packet type 7");
    check_bad_frame(WS_OPCODE_TEXT, LITERAL("4"), 0, "an empty Socket.IO packet");
    check_bad_frame(WS_OPCODE_TEXT, LITERAL(""), 0, "an empty text message");
    check_bad_frame(WS_OPCODE_TEXT, LITERAL("452-[\"x\",{\"_placeholder\":true,\"num\":0}]"), 0, "a binary Socket.IO event");
}

Test(bad_input, unmasked_frame_closes_session)
{
    /* RFC 6455, section 5.1: a server closes the connection when a client
     * frame is not masked. */
    open_bystander(WEBSOCKET);
    rt_client *client = connected_client(WEBSOCKET, key_a, "an unmasked frame");
    cr_assert_eq(ws_send_frame(client->ws, WS_OPCODE_TEXT, true, false, "3", 1), 0);
    expect_end(client, CLOSE_TIMEOUT_MS);
    expect_bystander_served("an unmasked frame");
}

/* Posts `payload` to a new connected polling session and checks that the
 * server ends that session and serves the bystander and the watcher. */
static void check_bad_post(const char *payload, size_t len, const char *what)
{
    rt_client *client = connected_client(POLLING, key_a, what);
    http_response *result = new_http_response();
    polling_post(&client->session, payload, len, result);
    keep(result->body);
    cr_assert(result->completed, "%s: the POST failed: %s", what, result->error);
    cr_assert(result->status == 200 || result->status == 400 || result->status == 413, "%s: the POST got %ld: %s", what,
              result->status, result->body);
    session_end end = expect_end(client, CLOSE_TIMEOUT_MS);
    cr_log_info("%s: POST got %ld, the session ended with %s", what, result->status, end.how);
    expect_bystander_served(what);
    const char *packet = next_packet(watcher);
    cr_assert(eq(str, (char *)event_name(packet), "message:new"), "the watcher after %s: %.300s", what, packet);
}

Test(bad_input, polling_bad_payload_ends_session)
{
    open_bystander(POLLING);
    watcher = connected_client(WEBSOCKET, key_a, "the WebSocket bystander");
    check_bad_post(LITERAL("42[\"x\",{]"), "broken JSON over polling");
    check_bad_post(LITERAL("9hello"), "an unknown packet type over polling");
    check_bad_post(LITERAL("42[\"x\",\"\xff\"]"), "invalid UTF-8 over polling");
    check_bad_post(LITERAL("bBAQID"), "a binary packet over polling");
    check_bad_post(LITERAL("3\x1e\x1e"
                           "3"),
                   "an empty packet in a payload");

    size_t len = SMALL_MAX_PAYLOAD + 1;
    char *oversized = keep(malloc(len));
    memset(oversized, 'a', len);
    memcpy(oversized, "42[\"x\",\"", 8);
    memcpy(oversized + len - 2, "\"]", 2);
    check_bad_post(oversized, len, "a payload over maxPayload");
}

/* --- Heartbeat -------------------------------------------------------------------------------------- */

Test(heartbeat, websocket_answered_pings_keep_session)
{
    rt_client *client = connected_client(WEBSOCKET, key_a, NULL);
    created_conversation created = create_conversation_seen_by(key_a, &client, 1);

    int pings = 0;
    int64_t deadline = hv_time_monotonic_ms() + 1500;
    for (int64_t now; (now = hv_time_monotonic_ms()) < deadline;) {
        ws_frame message;
        int read = eio_ws_read(client->ws, (int)(deadline - now), false, &message);
        if (read == WS_READ_TIMEOUT)
            break;
        cr_assert(eq(int, read, WS_READ_OK), "reading failed: %s", ws_last_error(client->ws));
        char *packet = copy_kept(message.payload, message.len);
        ws_frame_release(&message);
        cr_assert(eq(str, packet, "2"), "expected only pings");
        pings++;
        cr_assert_eq(ws_send_text(client->ws, "3"), 0);
    }
    /* About one ping per 200 ms interval. */
    cr_assert(ge(int, pings, 3), "too few pings in 1.5 s");
    cr_assert(le(int, pings, 1500 / SHORT_PING_MS + 2), "too many pings in 1.5 s");
    post_message_seen_by(key_a, created.id, "after 1.5 s of pings", &client, 1);
}

Test(heartbeat, websocket_unanswered_ping_closes_session)
{
    rt_client *client = connected_client(WEBSOCKET, key_a, NULL);
    ws_frame message;
    cr_assert(eq(int, eio_ws_read(client->ws, EVENT_TIMEOUT_MS, false, &message), WS_READ_OK), "no ping: %s",
              ws_last_error(client->ws));
    char *packet = copy_kept(message.payload, message.len);
    ws_frame_release(&message);
    cr_assert(eq(str, packet, "2"), "expected a ping");

    session_end end = expect_end(client, SHORT_PING_MS + CLOSE_TIMEOUT_MS);
    cr_assert(ge(llong, end.elapsed_ms, SHORT_PING_MS / 2), "the session closed before the ping timeout");
}

Test(heartbeat, polling_answered_pings_keep_session)
{
    rt_client *client = connected_client(POLLING, key_a, NULL);
    created_conversation created = create_conversation_seen_by(key_a, &client, 1);

    int pings = 0;
    int64_t deadline = hv_time_monotonic_ms() + 1500;
    while (hv_time_monotonic_ms() < deadline) {
        http_response *result = new_http_response();
        polling_get(&client->session, REQUEST_TIMEOUT_MS, result);
        keep(result->body);
        cr_assert(eq(long, result->status, 200), "GET: body %s", result->body);
        cr_assert(eq(str, result->body, "2"), "expected only pings");
        pings++;
        send_packet(client, "3");
    }
    cr_assert(ge(int, pings, 3), "too few pings in 1.5 s");
    cr_assert(le(int, pings, 1500 / SHORT_PING_MS + 2), "too many pings in 1.5 s");
    post_message_seen_by(key_a, created.id, "after 1.5 s of pings", &client, 1);
}

Test(heartbeat, polling_unanswered_ping_ends_session)
{
    rt_client *client = connected_client(POLLING, key_a, NULL);
    http_response *result = new_http_response();
    polling_get(&client->session, REQUEST_TIMEOUT_MS, result);
    keep(result->body);
    cr_assert(eq(long, result->status, 200), "GET: body %s", result->body);
    cr_assert(eq(str, result->body, "2"), "expected a ping");

    session_end end = expect_end(client, SHORT_PING_MS + CLOSE_TIMEOUT_MS);
    cr_assert(ge(llong, end.elapsed_ms, SHORT_PING_MS / 2), "the session ended before the ping timeout");
}

/* --- A client that stops reading --------------------------------------------------------------------- */

#define SLOW_CLIENT_MESSAGE_BYTES 32000

/* Returns how many bytes the kernel may take from the server for a client
 * that does not read. The server's send buffer grows up to the maximum of
 * net.ipv4.tcp_wmem on loopback (4 MiB by default), and the margin covers
 * the client's receive buffer and the messages in flight. Past that and the
 * service's own limit, the server must have dropped the client. */
static size_t kernel_buffer_allowance(void)
{
    long long minimum = 0, initial = 0, maximum = 4 * 1024 * 1024;
    FILE *setting = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");
    if (setting) {
        if (fscanf(setting, "%lld %lld %lld", &minimum, &initial, &maximum) != 3)
            maximum = 4 * 1024 * 1024;
        fclose(setting);
    }
    return (size_t)maximum + 2 * 1024 * 1024;
}

Test(slow_client, non_reading_client_is_dropped)
{
    rt_client *reader = connected_client(WEBSOCKET, key_a, "the reading client");
    ws_options small_window = {.receive_buffer_bytes = SLOW_CLIENT_RECEIVE_BUFFER};
    rt_client *stalled = open_client_with(WEBSOCKET, "the stalled client", &small_window);
    join_org(stalled, key_a);
    int stalled_port = local_port_of(ws_socket(stalled->ws));
    created_conversation created = create_conversation_seen_by(key_a, &reader, 1);

    /* Post while only the reader reads, until the server has closed its side
     * of the stalled connection. */
    char *content = keep(malloc(SLOW_CLIENT_MESSAGE_BYTES + 1));
    memset(content, 'z', SLOW_CLIENT_MESSAGE_BYTES);
    content[SLOW_CLIENT_MESSAGE_BYTES] = '\0';
    size_t allowance = kernel_buffer_allowance();
    size_t posted_count = 0;
    size_t posted_bytes = 0;
    int64_t drop_deadline = 0;
    for (;;) {
        tcp_entry server_side = find_server_socket(realtime.port, stalled_port);
        if (!server_side.found || server_side.state != TCP_ESTABLISHED_STATE)
            break;
        if (posted_bytes > SLOW_CLIENT_MAX_BUFFERED + allowance) {
            if (!drop_deadline)
                drop_deadline = hv_time_monotonic_ms() + CLOSE_TIMEOUT_MS;
            cr_assert_lt(hv_time_monotonic_ms(), drop_deadline,
                         "the server still held the stalled client %d ms after %zu messages (%zu bytes)", CLOSE_TIMEOUT_MS,
                         posted_count, posted_bytes);
            struct timespec pause = {.tv_nsec = 10 * 1000 * 1000};
            nanosleep(&pause, NULL);
            continue;
        }
        content[0] = (char)('a' + posted_count % 26);
        post_message_seen_by(key_a, created.id, content, &reader, 1);
        posted_count++;
        posted_bytes += SLOW_CLIENT_MESSAGE_BYTES;
    }
    cr_log_info("the server dropped the stalled client after %zu messages", posted_count);

    /* Reading now, the stalled client finds the end of the connection after
     * part of the messages. */
    ws_close_result closed = ws_wait_closed(stalled->ws, CLOSE_TIMEOUT_MS, false);
    cr_assert(closed.closed, "the stalled client's connection did not end within %d ms of reading", CLOSE_TIMEOUT_MS);
    cr_assert(lt(sz, closed.messages, posted_count + 1),
              "the stalled client got everything, so it was not dropped for its backlog");

    /* The reader is still served. */
    post_message_seen_by(key_a, created.id, "after the drop", &reader, 1);
}

/* --- SIGTERM ------------------------------------------------------------------------------------------ */

Test(shutdown, sigterm_sends_1001_and_exits_0)
{
    rt_client *joined = connected_client(WEBSOCKET, key_a, "the connected WebSocket");
    rt_client *unjoined = open_client_with(WEBSOCKET, "the WebSocket without CONNECT", NULL);
    rt_client *polled = connected_client(POLLING, key_a, "the polling client");
    start_pending_get(&polled->session);

    service_terminate(&realtime);
    rt_client *websockets[] = {joined, unjoined};
    for (size_t i = 0; i < 2; i++) {
        session_end end = expect_end(websockets[i], CLOSE_TIMEOUT_MS);
        cr_assert(eq(int, end.close_code, 1001), "%s: the close code", websockets[i]->label);
    }

    http_response *poll = finish_pending_get();
    cr_assert(eq(long, poll->status, 200), "the pending GET at shutdown: body %s", poll->body);
    packet_span packets[16];
    size_t count = payload_split(poll->body, poll->body_len, packets, 16);
    bool close_packet = false;
    for (size_t i = 0; i < count && i < 16; i++)
        close_packet |= packets[i].len == 1 && packets[i].data[0] == '1';
    cr_assert(close_packet, "the pending GET at shutdown got no close packet: %s", poll->body);

    int status = service_wait_exit(&realtime, 15000);
    cr_assert(eq(int, status, 0), "helvino-realtime's exit status after SIGTERM; see %s", realtime.log_path);
    ws_handshake handshake;
    ws_client *late = ws_connect(realtime.port, WEBSOCKET_TARGET, NULL, &handshake);
    ws_destroy(&late);
    cr_assert(eq(int, handshake.status, 0), "a connection after the exit got status %d", handshake.status);
}
