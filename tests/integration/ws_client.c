/* The real-time tests' client: WebSocket framing and handshake on a plain
 * socket, Engine.IO packets over it, and long-polling requests over
 * libcurl. It checks what the server sends as strictly as RFC 6455 requires
 * of a client, so that a framing mistake of the server fails the test. */
#include "ws_client.h"
#include "http_head.h"
#include "hv_time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define WRITE_TIMEOUT_MS 10000

/* Upper bounds that keep a broken server from making the client allocate
 * without end. */
#define MAX_RESPONSE_HEAD 16384
#define MAX_MESSAGE_BYTES (64u * 1024 * 1024)

struct ws_client {
    int fd;
    char *buffer; /* bytes received but not consumed yet */
    size_t buffered;
    size_t capacity;
    bool close_sent;
    char error[256];
};

static void set_error(char *error, size_t size, const char *format, ...) __attribute__((format(printf, 3, 4)));

static void set_error(char *error, size_t size, const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(error, size, format, arguments);
    va_end(arguments);
}

/* --- Random bytes ------------------------------------------------------------ */

static void fill_random(void *bytes, size_t len)
{
    /* Masks and keys only need to differ between frames and connections,
     * so rand() is a good enough fallback when getrandom fails. */
    if (getrandom(bytes, len, 0) == (ssize_t)len)
        return;
    for (size_t i = 0; i < len; i++)
        ((uint8_t *)bytes)[i] = (uint8_t)rand();
}

/* --- Socket input and output ----------------------------------------------- */

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - hv_time_monotonic_ms();
    if (left < 0)
        return 0;
    if (left > INT32_MAX)
        return INT32_MAX;
    return (int)left;
}

/* Reads what the socket has into the buffer, waiting until `deadline`.
 * Returns WS_READ_OK when bytes came, or WS_READ_TIMEOUT, WS_READ_CLOSED or
 * WS_READ_ERROR. */
static int receive_more(ws_client *client, int64_t deadline)
{
    struct pollfd item = {.fd = client->fd, .events = POLLIN};
    int ready = poll(&item, 1, remaining_ms(deadline));
    if (ready < 0 && errno == EINTR)
        return WS_READ_OK;
    if (ready < 0) {
        set_error(client->error, sizeof(client->error), "poll failed: %s", strerror(errno));
        return WS_READ_ERROR;
    }
    if (ready == 0)
        return WS_READ_TIMEOUT;

    if (client->capacity - client->buffered < 65536) {
        size_t capacity = client->capacity ? client->capacity * 2 : 131072;
        while (capacity - client->buffered < 65536)
            capacity *= 2;
        char *grown = realloc(client->buffer, capacity);
        if (!grown) {
            set_error(client->error, sizeof(client->error), "out of memory");
            return WS_READ_ERROR;
        }
        client->buffer = grown;
        client->capacity = capacity;
    }

    ssize_t received = recv(client->fd, client->buffer + client->buffered, client->capacity - client->buffered, 0);
    if (received > 0) {
        client->buffered += (size_t)received;
        return WS_READ_OK;
    }
    if (received == 0 || errno == ECONNRESET) {
        set_error(client->error, sizeof(client->error), "the server closed the connection");
        return WS_READ_CLOSED;
    }
    if (errno == EAGAIN || errno == EINTR)
        return WS_READ_OK;
    set_error(client->error, sizeof(client->error), "recv failed: %s", strerror(errno));
    return WS_READ_ERROR;
}

static void consume(ws_client *client, size_t len)
{
    memmove(client->buffer, client->buffer + len, client->buffered - len);
    client->buffered -= len;
}

static int send_all(int fd, const void *bytes, size_t len, char *error, size_t error_size)
{
    int64_t deadline = hv_time_monotonic_ms() + WRITE_TIMEOUT_MS;
    const char *next = bytes;
    while (len > 0) {
        ssize_t sent = send(fd, next, len, MSG_NOSIGNAL);
        if (sent > 0) {
            next += sent;
            len -= (size_t)sent;
            continue;
        }
        if (sent < 0 && errno != EAGAIN && errno != EINTR) {
            set_error(error, error_size, "send failed: %s", strerror(errno));
            return -1;
        }
        struct pollfd item = {.fd = fd, .events = POLLOUT};
        if (poll(&item, 1, remaining_ms(deadline)) == 0) {
            set_error(error, error_size, "send timed out after %d ms", WRITE_TIMEOUT_MS);
            return -1;
        }
    }
    return 0;
}

/* Opens a non-blocking TCP connection to 127.0.0.1:`port`. Returns the
 * socket, or -1 and writes the reason to `error`. */
static int connect_loopback(int port, int receive_buffer_bytes, int64_t deadline, char *error, size_t error_size)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        set_error(error, error_size, "socket failed: %s", strerror(errno));
        return -1;
    }
    /* The receive buffer must be set before connecting, because the window
     * scale is agreed on in the SYN. */
    if (receive_buffer_bytes > 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof(receive_buffer_bytes)) != 0) {
        set_error(error, error_size, "setting SO_RCVBUF failed: %s", strerror(errno));
        close(fd);
        return -1;
    }
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));

    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0 && errno != EINPROGRESS) {
        set_error(error, error_size, "connect to 127.0.0.1:%d failed: %s", port, strerror(errno));
        close(fd);
        return -1;
    }
    struct pollfd item = {.fd = fd, .events = POLLOUT};
    int failure = 0;
    socklen_t failure_len = sizeof(failure);
    if (poll(&item, 1, remaining_ms(deadline)) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &failure_len) != 0 ||
        failure != 0) {
        set_error(error, error_size, "connect to 127.0.0.1:%d failed: %s", port, failure ? strerror(failure) : "timed out");
        close(fd);
        return -1;
    }
    return fd;
}

/* --- Handshake ----------------------------------------------------------------- */

/* Reads the body of a refused upgrade into `handshake->body`: by
 * Content-Length, by chunks, or up to the end of the connection. */
static void read_refusal_body(ws_client *client, const char *head, int64_t deadline, ws_handshake *handshake)
{
    char value[64];
    bool chunked = http_head_find_header(head, "transfer-encoding", value, sizeof(value)) && http_list_has_token(value, "chunked");
    long long length = -1;
    if (!chunked && http_head_find_header(head, "content-length", value, sizeof(value)))
        length = atoll(value);

    for (;;) {
        if (length >= 0 && client->buffered >= (size_t)length)
            break;
        if (chunked && client->buffered >= 5 && memmem(client->buffer, client->buffered, "0\r\n\r\n", 5))
            break;
        if (client->buffered >= sizeof(handshake->body) * 4 || receive_more(client, deadline) != WS_READ_OK)
            break;
    }

    size_t used = 0;
    if (!chunked) {
        size_t len = length >= 0 && (size_t)length < client->buffered ? (size_t)length : client->buffered;
        used = len < sizeof(handshake->body) - 1 ? len : sizeof(handshake->body) - 1;
        memcpy(handshake->body, client->buffer, used);
    } else {
        /* Each chunk: hexadecimal size, CRLF, data, CRLF. */
        size_t offset = 0;
        while (offset < client->buffered) {
            char *end;
            unsigned long size = strtoul(client->buffer + offset, &end, 16);
            char *line_end = memmem(client->buffer + offset, client->buffered - offset, "\r\n", 2);
            if (!line_end || end > line_end || size == 0)
                break;
            offset = (size_t)(line_end + 2 - client->buffer);
            size_t take = size < client->buffered - offset ? size : client->buffered - offset;
            if (take > sizeof(handshake->body) - 1 - used)
                take = sizeof(handshake->body) - 1 - used;
            memcpy(handshake->body + used, client->buffer + offset, take);
            used += take;
            offset += size + 2;
        }
    }
    handshake->body[used] = '\0';
}

/* Checks a 101 response head. Returns 0, or -1 with the reason in
 * `handshake->error`. */
static int check_switch(const char *head, const char *key, ws_handshake *handshake)
{
    char value[256];
    if (!http_head_find_header(head, "upgrade", value, sizeof(value)) || strcasecmp(value, "websocket") != 0) {
        set_error(handshake->error, sizeof(handshake->error), "the 101 response has no \"Upgrade: websocket\"");
        return -1;
    }
    if (!http_head_find_header(head, "connection", value, sizeof(value)) || !http_list_has_token(value, "upgrade")) {
        set_error(handshake->error, sizeof(handshake->error), "the 101 response has no \"Connection: upgrade\"");
        return -1;
    }
    char accept[29];
    websocket_accept_value(key, accept);
    if (!http_head_find_header(head, "sec-websocket-accept", value, sizeof(value)) || strcmp(value, accept) != 0) {
        set_error(handshake->error, sizeof(handshake->error), "Sec-WebSocket-Accept is \"%s\", expected \"%s\"", value, accept);
        return -1;
    }
    if (http_head_find_header(head, "sec-websocket-extensions", value, sizeof(value))) {
        set_error(handshake->error, sizeof(handshake->error), "the server chose extension \"%s\", which the client did not offer",
                  value);
        return -1;
    }
    return 0;
}

ws_client *ws_connect(int port, const char *target, const ws_options *options, ws_handshake *handshake)
{
    memset(handshake, 0, sizeof(*handshake));
    ws_options defaults = {0};
    if (!options)
        options = &defaults;
    int64_t deadline = hv_time_monotonic_ms() + (options->timeout_ms > 0 ? options->timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS);

    ws_client *client = calloc(1, sizeof(*client));
    if (!client) {
        set_error(handshake->error, sizeof(handshake->error), "out of memory");
        return NULL;
    }
    client->fd = connect_loopback(port, options->receive_buffer_bytes, deadline, handshake->error, sizeof(handshake->error));
    if (client->fd < 0) {
        free(client);
        return NULL;
    }

    /* The request. */
    uint8_t nonce[16];
    fill_random(nonce, sizeof(nonce));
    char key[25];
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
    char *request = NULL;
    int request_len = asprintf(&request,
                               "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                               target, port, key, options->extra_headers ? options->extra_headers : "");
    if (request_len < 0 || send_all(client->fd, request, (size_t)request_len, handshake->error, sizeof(handshake->error)) != 0) {
        if (request_len < 0)
            set_error(handshake->error, sizeof(handshake->error), "out of memory");
        free(request);
        ws_destroy(&client);
        return NULL;
    }
    free(request);

    /* The response head, up to the blank line. */
    char *head_end = NULL;
    while (!(head_end = client->buffer ? memmem(client->buffer, client->buffered, "\r\n\r\n", 4) : NULL)) {
        int received = client->buffered < MAX_RESPONSE_HEAD ? receive_more(client, deadline) : WS_READ_ERROR;
        if (received == WS_READ_OK)
            continue;
        set_error(handshake->error, sizeof(handshake->error), "no complete response to the upgrade request: %s",
                  received == WS_READ_TIMEOUT ? "timed out" : client->error);
        ws_destroy(&client);
        return NULL;
    }
    size_t head_len = (size_t)(head_end - client->buffer) + 4;
    char *head = strndup(client->buffer, head_len);
    consume(client, head_len);
    if (!head || sscanf(head, "HTTP/1.%*d %d", &handshake->status) != 1) {
        set_error(handshake->error, sizeof(handshake->error), "malformed status line: %.80s", head ? head : "");
        free(head);
        ws_destroy(&client);
        return NULL;
    }

    if (handshake->status != 101) {
        read_refusal_body(client, head, deadline, handshake);
        set_error(handshake->error, sizeof(handshake->error), "the upgrade got status %d: %.200s", handshake->status,
                  handshake->body);
        free(head);
        ws_destroy(&client);
        return NULL;
    }
    int checked = check_switch(head, key, handshake);
    free(head);
    if (checked != 0) {
        ws_destroy(&client);
        return NULL;
    }
    return client;
}

void ws_destroy(ws_client **client)
{
    if (!client || !*client)
        return;
    if ((*client)->fd >= 0)
        close((*client)->fd);
    free((*client)->buffer);
    free(*client);
    *client = NULL;
}

const char *ws_last_error(const ws_client *client)
{
    return client->error;
}

int ws_socket(const ws_client *client)
{
    return client->fd;
}

/* --- Frames ------------------------------------------------------------------ */

int ws_send_raw(ws_client *client, const void *bytes, size_t len)
{
    return send_all(client->fd, bytes, len, client->error, sizeof(client->error));
}

int ws_send_frame(ws_client *client, int opcode, bool fin, bool masked, const void *payload, size_t len)
{
    uint8_t *frame = malloc(len + 14);
    if (!frame) {
        set_error(client->error, sizeof(client->error), "out of memory");
        return -1;
    }
    size_t header = 2;
    frame[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (len < 126) {
        frame[1] = (uint8_t)len;
    } else if (len <= 0xffff) {
        frame[1] = 126;
        frame[2] = (uint8_t)(len >> 8);
        frame[3] = (uint8_t)len;
        header = 4;
    } else {
        frame[1] = 127;
        for (int i = 0; i < 8; i++)
            frame[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        header = 10;
    }

    uint8_t mask[4] = {0};
    if (masked) {
        frame[1] |= 0x80;
        fill_random(mask, sizeof(mask));
        memcpy(frame + header, mask, 4);
        header += 4;
    }
    for (size_t i = 0; i < len; i++)
        frame[header + i] = ((const uint8_t *)payload)[i] ^ mask[i % 4];

    int sent = ws_send_raw(client, frame, header + len);
    free(frame);
    return sent;
}

int ws_send(ws_client *client, int opcode, const void *payload, size_t len)
{
    return ws_send_frame(client, opcode, true, true, payload, len);
}

int ws_send_text(ws_client *client, const char *text)
{
    return ws_send(client, WS_OPCODE_TEXT, text, strlen(text));
}

int ws_send_close(ws_client *client, int code)
{
    uint8_t payload[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    client->close_sent = true;
    return ws_send(client, WS_OPCODE_CLOSE, payload, sizeof(payload));
}

/* Takes one whole frame off the buffer. Returns WS_READ_OK, WS_READ_TIMEOUT
 * when the buffer holds only part of one, or WS_READ_ERROR for a frame that
 * a server must not send. */
static int take_frame(ws_client *client, ws_frame *out)
{
    const uint8_t *bytes = (const uint8_t *)client->buffer;
    if (client->buffered < 2)
        return WS_READ_TIMEOUT;

    uint64_t len = bytes[1] & 0x7f;
    size_t header = 2;
    if (len == 126) {
        if (client->buffered < 4)
            return WS_READ_TIMEOUT;
        len = (uint64_t)bytes[2] << 8 | bytes[3];
        header = 4;
    } else if (len == 127) {
        if (client->buffered < 10)
            return WS_READ_TIMEOUT;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | bytes[2 + i];
        header = 10;
    }

    int opcode = bytes[0] & 0x0f;
    bool control = opcode >= 0x8;
    if (bytes[1] & 0x80) {
        set_error(client->error, sizeof(client->error), "the server sent a masked frame (opcode %d)", opcode);
        return WS_READ_ERROR;
    }
    if (bytes[0] & 0x70) {
        set_error(client->error, sizeof(client->error), "the server set reserved bits 0x%02x without an extension",
                  bytes[0] & 0x70);
        return WS_READ_ERROR;
    }
    if ((opcode > WS_OPCODE_BINARY && !control) || opcode > WS_OPCODE_PONG) {
        set_error(client->error, sizeof(client->error), "the server sent the reserved opcode %d", opcode);
        return WS_READ_ERROR;
    }
    if (control && (len > 125 || !(bytes[0] & 0x80))) {
        set_error(client->error, sizeof(client->error), "the server sent a control frame of %llu bytes or fragmented",
                  (unsigned long long)len);
        return WS_READ_ERROR;
    }
    if (len > MAX_MESSAGE_BYTES) {
        set_error(client->error, sizeof(client->error), "the server sent a frame of %llu bytes", (unsigned long long)len);
        return WS_READ_ERROR;
    }
    if (client->buffered < header + len)
        return WS_READ_TIMEOUT;

    out->opcode = opcode;
    out->fin = bytes[0] & 0x80;
    out->len = (size_t)len;
    out->payload = malloc(out->len + 1);
    if (!out->payload) {
        set_error(client->error, sizeof(client->error), "out of memory");
        return WS_READ_ERROR;
    }
    memcpy(out->payload, client->buffer + header, out->len);
    out->payload[out->len] = '\0';
    consume(client, header + out->len);
    return WS_READ_OK;
}

static int read_frame_until(ws_client *client, int64_t deadline, ws_frame *out)
{
    memset(out, 0, sizeof(*out));
    for (;;) {
        int taken = take_frame(client, out);
        if (taken != WS_READ_TIMEOUT)
            return taken;
        int received = receive_more(client, deadline);
        if (received != WS_READ_OK)
            return received;
    }
}

int ws_read_frame(ws_client *client, int timeout_ms, ws_frame *out)
{
    return read_frame_until(client, hv_time_monotonic_ms() + timeout_ms, out);
}

void ws_frame_release(ws_frame *frame)
{
    free(frame->payload);
    frame->payload = NULL;
    frame->len = 0;
}

int ws_close_code(const ws_frame *frame)
{
    if (frame->len == 0)
        return WS_CLOSE_NO_STATUS;
    if (frame->len == 1)
        return -1;
    return (uint8_t)frame->payload[0] << 8 | (uint8_t)frame->payload[1];
}

/* Appends a continuation frame's payload to a message being joined. */
static int append_fragment(ws_client *client, ws_frame *message, const ws_frame *fragment)
{
    if (message->len + fragment->len > MAX_MESSAGE_BYTES) {
        set_error(client->error, sizeof(client->error), "the server sent a message of more than %u bytes", MAX_MESSAGE_BYTES);
        return WS_READ_ERROR;
    }
    char *grown = realloc(message->payload, message->len + fragment->len + 1);
    if (!grown) {
        set_error(client->error, sizeof(client->error), "out of memory");
        return WS_READ_ERROR;
    }
    memcpy(grown + message->len, fragment->payload, fragment->len);
    message->payload = grown;
    message->len += fragment->len;
    message->payload[message->len] = '\0';
    return WS_READ_OK;
}

int ws_read_message(ws_client *client, int timeout_ms, ws_frame *out)
{
    int64_t deadline = hv_time_monotonic_ms() + timeout_ms;
    ws_frame message = {0};
    bool joining = false;
    for (;;) {
        ws_frame frame;
        int result = read_frame_until(client, deadline, &frame);
        if (result != WS_READ_OK) {
            ws_frame_release(&message);
            return result;
        }

        if (frame.opcode == WS_OPCODE_PING || frame.opcode == WS_OPCODE_PONG) {
            if (frame.opcode == WS_OPCODE_PING && !client->close_sent)
                ws_send(client, WS_OPCODE_PONG, frame.payload, frame.len);
            ws_frame_release(&frame);
            continue;
        }
        if (frame.opcode == WS_OPCODE_CLOSE) {
            ws_frame_release(&message);
            *out = frame;
            return WS_READ_OK;
        }

        bool continuation = frame.opcode == WS_OPCODE_CONTINUATION;
        if (continuation != joining) {
            set_error(client->error, sizeof(client->error),
                      continuation ? "the server sent a continuation frame outside a message"
                                   : "the server started a message inside another one");
            ws_frame_release(&frame);
            ws_frame_release(&message);
            return WS_READ_ERROR;
        }
        if (!continuation) {
            message = frame;
        } else {
            result = append_fragment(client, &message, &frame);
            message.fin = frame.fin;
            ws_frame_release(&frame);
            if (result != WS_READ_OK) {
                ws_frame_release(&message);
                return result;
            }
        }
        joining = !message.fin;
        if (message.fin) {
            *out = message;
            return WS_READ_OK;
        }
    }
}

ws_close_result ws_wait_closed(ws_client *client, int timeout_ms, bool answer_pings)
{
    ws_close_result result = {0};
    int64_t started = hv_time_monotonic_ms();
    int64_t deadline = started + timeout_ms;
    for (;;) {
        ws_frame message;
        int read = ws_read_message(client, remaining_ms(deadline), &message);
        if (read == WS_READ_CLOSED) {
            result.closed = true;
            break;
        }
        if (read == WS_READ_TIMEOUT)
            break;
        if (read == WS_READ_ERROR) {
            snprintf(result.error, sizeof(result.error), "%s", client->error);
            /* The rest of the stream cannot be framed any more, but the
             * end of the connection can still be seen. */
            client->buffered = 0;
            continue;
        }

        if (message.opcode == WS_OPCODE_CLOSE) {
            result.close_code = ws_close_code(&message);
            if (!client->close_sent)
                ws_send_close(client, result.close_code == WS_CLOSE_NO_STATUS ? 1000 : result.close_code);
        } else {
            result.messages++;
            if (answer_pings && message.opcode == WS_OPCODE_TEXT && message.len >= 1 && message.payload[0] == '2' &&
                !client->close_sent) {
                message.payload[0] = '3';
                ws_send(client, WS_OPCODE_TEXT, message.payload, message.len);
            }
        }
        ws_frame_release(&message);
    }
    result.waited_ms = hv_time_monotonic_ms() - started;
    return result;
}

/* --- Engine.IO --------------------------------------------------------------- */

static long long integer_or_missing(const json_t *object, const char *key)
{
    const json_t *value = json_object_get(object, key);
    return json_is_integer(value) ? (long long)json_integer_value(value) : -1;
}

int eio_parse_open(const char *packet, size_t len, eio_open_packet *out, char *error, size_t error_size)
{
    memset(out, 0, sizeof(*out));
    if (len < 2 || packet[0] != '0') {
        set_error(error, error_size, "not an open packet: %.*s", (int)(len < 200 ? len : 200), packet);
        return -1;
    }
    json_error_t json_error;
    json_t *document = json_loadb(packet + 1, len - 1, 0, &json_error);
    if (!json_is_object(document)) {
        set_error(error, error_size, "the open packet's data is not a JSON object: %s", json_error.text);
        json_decref(document);
        return -1;
    }

    const json_t *sid = json_object_get(document, "sid");
    const json_t *upgrades = json_object_get(document, "upgrades");
    if (!json_is_string(sid) || json_string_length(sid) >= sizeof(out->sid) || !json_is_array(upgrades)) {
        set_error(error, error_size, "the open packet lacks a string \"sid\" or an array \"upgrades\": %.*s",
                  (int)(len < 200 ? len : 200), packet);
        json_decref(document);
        return -1;
    }
    snprintf(out->sid, sizeof(out->sid), "%s", json_string_value(sid));
    out->upgrade_count = (int)json_array_size(upgrades);
    for (size_t i = 0; i < json_array_size(upgrades); i++) {
        const char *name = json_string_value(json_array_get(upgrades, i));
        if (name && strcmp(name, "websocket") == 0)
            out->websocket_upgrade = true;
    }
    out->ping_interval_ms = integer_or_missing(document, "pingInterval");
    out->ping_timeout_ms = integer_or_missing(document, "pingTimeout");
    out->max_payload = integer_or_missing(document, "maxPayload");
    out->key_count = (int)json_object_size(document);
    json_decref(document);
    return 0;
}

int eio_ws_read(ws_client *client, int timeout_ms, bool answer_pings, ws_frame *out)
{
    int64_t deadline = hv_time_monotonic_ms() + timeout_ms;
    for (;;) {
        int read = ws_read_message(client, remaining_ms(deadline), out);
        if (read != WS_READ_OK || !answer_pings || out->opcode != WS_OPCODE_TEXT || out->len < 1 || out->payload[0] != '2')
            return read;

        /* A ping: the pong carries the same data. */
        out->payload[0] = '3';
        int sent = ws_send(client, WS_OPCODE_TEXT, out->payload, out->len);
        ws_frame_release(out);
        if (sent != 0)
            return WS_READ_ERROR;
    }
}

/* --- HTTP long-polling -------------------------------------------------------- */

void polling_exchange(const char *url, const void *body, size_t body_len, long timeout_ms, http_progress *progress,
                      http_response *out)
{
    static const char *const get_headers[] = {"Expect:", NULL};
    static const char *const post_headers[] = {"Expect:", "Content-Type: text/plain;charset=UTF-8", NULL};
    http_send(&(http_request){.url = url,
                              .body = body,
                              .body_len = body_len,
                              .headers = body ? post_headers : get_headers,
                              .timeout_ms = timeout_ms,
                              .progress = progress},
              out);
}

void polling_url(const polling_session *session, char *url, size_t size)
{
    snprintf(url, size, "%s/socket.io/?EIO=4&transport=polling&sid=%s", session->base_url, session->sid);
}

int polling_open(polling_session *session, const char *base_url, http_response *response, char *error, size_t error_size)
{
    memset(session, 0, sizeof(*session));
    snprintf(session->base_url, sizeof(session->base_url), "%s", base_url);
    char url[128];
    snprintf(url, sizeof(url), "%s/socket.io/?EIO=4&transport=polling", base_url);

    http_response own;
    http_response *result = response ? response : &own;
    polling_exchange(url, NULL, 0, 10000, NULL, result);
    int status = -1;
    if (!result->completed)
        set_error(error, error_size, "GET %s failed: %s", url, result->error);
    else if (result->status != 200)
        set_error(error, error_size, "GET %s returned %ld: %.200s", url, result->status, result->body);
    else
        status = eio_parse_open(result->body, result->body_len, &session->open, error, error_size);
    if (status == 0)
        snprintf(session->sid, sizeof(session->sid), "%s", session->open.sid);
    if (!response)
        http_response_release(&own);
    return status;
}

void polling_get(const polling_session *session, long timeout_ms, http_response *out)
{
    char url[192];
    polling_url(session, url, sizeof(url));
    polling_exchange(url, NULL, 0, timeout_ms, NULL, out);
}

void polling_post(const polling_session *session, const void *payload, size_t len, http_response *out)
{
    char url[192];
    polling_url(session, url, sizeof(url));
    polling_exchange(url, payload, len, 10000, NULL, out);
}

size_t payload_split(const char *payload, size_t len, packet_span *packets, size_t max)
{
    if (len == 0)
        return 0;
    size_t count = 0;
    const char *start = payload;
    const char *end = payload + len;
    for (;;) {
        const char *separator = memchr(start, '\x1e', (size_t)(end - start));
        const char *stop = separator ? separator : end;
        if (count < max)
            packets[count] = (packet_span){start, (size_t)(stop - start)};
        count++;
        if (!separator)
            return count;
        start = separator + 1;
    }
}
