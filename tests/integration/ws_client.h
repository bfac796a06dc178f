/* A small blocking client for the real-time service's tests: WebSocket
 * (RFC 6455) over loopback TCP with masked client frames and a way to send
 * forged bytes, Engine.IO v4 packets over it, and Engine.IO HTTP
 * long-polling requests over libcurl. Every read and connect takes a
 * timeout, so that a silent server fails a test instead of hanging it. */
#ifndef TEST_WS_CLIENT_H
#define TEST_WS_CLIENT_H

#include "http_client.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Frame opcodes (RFC 6455, section 5.2). */
#define WS_OPCODE_CONTINUATION 0x0
#define WS_OPCODE_TEXT 0x1
#define WS_OPCODE_BINARY 0x2
#define WS_OPCODE_CLOSE 0x8
#define WS_OPCODE_PING 0x9
#define WS_OPCODE_PONG 0xA

/* The status code a close frame without a payload stands for (RFC 6455,
 * section 7.1.5). */
#define WS_CLOSE_NO_STATUS 1005

/* Results of the read functions. */
enum {
    WS_READ_OK = 1,
    WS_READ_TIMEOUT = 0,
    WS_READ_CLOSED = -1, /* the server closed the TCP connection, or reset it */
    WS_READ_ERROR = -2,  /* a socket error or a frame that breaks RFC 6455; see ws_last_error */
};

typedef struct ws_client ws_client;

typedef struct {
    int timeout_ms;            /* bound on the TCP connect plus the handshake; 0 means 5000 */
    int receive_buffer_bytes;  /* SO_RCVBUF, set before connecting; 0 keeps the kernel's default */
    const char *extra_headers; /* more request header lines, each ending with "\r\n", or NULL */
} ws_options;

/* What came back from the upgrade request. */
typedef struct {
    int status;      /* the response's status code; 0 when no response was read */
    char body[1024]; /* the body of a response other than 101, NUL-terminated and cut to fit */
    char error[256]; /* why ws_connect returned NULL */
} ws_handshake;

/* One frame, or one message that ws_read_message put together from its
 * fragments. */
typedef struct {
    int opcode;
    bool fin;
    char *payload; /* NUL-terminated (the NUL is not counted in len); free with ws_frame_release */
    size_t len;
} ws_frame;

/* Connects to 127.0.0.1:`port` and sends an upgrade request for `target`
 * (path and query, such as "/socket.io/?EIO=4&transport=websocket").
 * Returns the client once the server has responded 101 with the right
 * Sec-WebSocket-Accept, Upgrade and Connection headers. Otherwise returns
 * NULL and fills `handshake` (status 0 when the connection or the request
 * failed, or the response's status and body). `options` may be NULL. */
ws_client *ws_connect(int port, const char *target, const ws_options *options, ws_handshake *handshake);

/* Closes the socket without a close frame and frees the client. Sets
 * `*client` to NULL; accepts NULL. */
void ws_destroy(ws_client **client);

/* The description of the last error of a send or read function. */
const char *ws_last_error(const ws_client *client);

/* The client's socket, for socket options and for polling. */
int ws_socket(const ws_client *client);

/* Sends one masked frame with FIN set. Returns 0, or -1 when the socket
 * failed or a 10 s write timeout passed. */
int ws_send(ws_client *client, int opcode, const void *payload, size_t len);

/* Sends a text frame holding the NUL-terminated `text`. */
int ws_send_text(ws_client *client, const char *text);

/* Sends a frame with the given FIN bit, masked or not, for tests that break
 * the protocol on purpose. The opcode is written as given. */
int ws_send_frame(ws_client *client, int opcode, bool fin, bool masked, const void *payload, size_t len);

/* Writes bytes to the socket as they are. */
int ws_send_raw(ws_client *client, const void *bytes, size_t len);

/* Sends a close frame with `code` (no reason). */
int ws_send_close(ws_client *client, int code);

/* Reads one frame, waiting up to `timeout_ms`. Returns WS_READ_OK and fills
 * `out`, or another WS_READ_* value. A partial frame stays buffered after a
 * timeout, so the next call continues it. */
int ws_read_frame(ws_client *client, int timeout_ms, ws_frame *out);

/* Reads one message, waiting up to `timeout_ms` in all. Joins the fragments
 * of a text or binary message, replies to a ping frame with a pong frame
 * and skips pong frames. A close frame is returned as it is. */
int ws_read_message(ws_client *client, int timeout_ms, ws_frame *out);

/* Frees a frame's payload. Accepts a frame that was never filled, if it
 * was zero-initialized. */
void ws_frame_release(ws_frame *frame);

/* Returns the status code of a close frame: WS_CLOSE_NO_STATUS for an
 * empty payload, -1 for a payload of one byte. */
int ws_close_code(const ws_frame *frame);

typedef struct {
    bool closed;       /* the server closed (or reset) the TCP connection in time */
    int close_code;    /* the code of the server's close frame; 0 when none came */
    size_t messages;   /* data messages read and dropped on the way */
    int64_t waited_ms; /* time until the TCP connection closed, or the whole timeout */
    char error[256];   /* a protocol error seen on the way, or empty */
} ws_close_result;

/* Reads and drops messages until the server closes the connection, for at
 * most `timeout_ms`. Replies to a close frame with a close frame of the
 * same code, as RFC 6455 requires, and to Engine.IO pings with pongs when
 * `answer_pings` is set. */
ws_close_result ws_wait_closed(ws_client *client, int timeout_ms, bool answer_pings);

/* --- Engine.IO ------------------------------------------------------------- */

/* The fields of an Engine.IO open packet, 0{"sid":...}. */
typedef struct {
    char sid[64];
    int upgrade_count;          /* the length of "upgrades" */
    bool websocket_upgrade;     /* "upgrades" lists "websocket" */
    long long ping_interval_ms; /* -1 when missing or not an integer */
    long long ping_timeout_ms;
    long long max_payload;
    int key_count; /* keys of the JSON object, to catch extra ones */
} eio_open_packet;

/* Parses an open packet. Returns 0, or -1 and writes the reason to `error`. */
int eio_parse_open(const char *packet, size_t len, eio_open_packet *out, char *error, size_t error_size);

/* Reads the next Engine.IO packet, a text message, from a WebSocket. When
 * `answer_pings` is set, a ping "2<data>" gets the pong "3<data>" and is
 * skipped. Returns what ws_read_message returns; a binary message or a
 * close frame is returned as it is, for the caller to check the opcode. */
int eio_ws_read(ws_client *client, int timeout_ms, bool answer_pings, ws_frame *out);

/* --- HTTP long-polling over libcurl ----------------------------------------- */

/* Sends GET to `url`, or POST with `body` of `body_len` bytes when `body` is
 * not NULL (as text/plain, as socket.io-client does), and waits up to
 * `timeout_ms`. `progress`, when not NULL, is updated as the request goes
 * out. Fills `out` in every case; the caller has called curl_global_init
 * and releases `out` with http_response_release. */
void polling_exchange(const char *url, const void *body, size_t body_len, long timeout_ms, http_progress *progress,
                      http_response *out);

/* A long-polling session of a server at `base_url` ("http://127.0.0.1:port"). */
typedef struct {
    char base_url[64];
    char sid[64];
    eio_open_packet open;
} polling_session;

/* Opens a session with GET /socket.io/?EIO=4&transport=polling. Returns 0,
 * or -1 and writes the reason to `error`. `response`, when not NULL,
 * receives the response for further checks. */
int polling_open(polling_session *session, const char *base_url, http_response *response, char *error, size_t error_size);

/* Writes the URL of the session's requests to `url`. */
void polling_url(const polling_session *session, char *url, size_t size);

/* GETs the session's pending packets, waiting up to `timeout_ms`. */
void polling_get(const polling_session *session, long timeout_ms, http_response *out);

/* POSTs a payload of `len` bytes to the session. */
void polling_post(const polling_session *session, const void *payload, size_t len, http_response *out);

/* One packet of a polling payload, pointing into the payload. */
typedef struct {
    const char *data;
    size_t len;
} packet_span;

/* Splits a payload at the record separators \x1e into at most `max` packets.
 * Returns the number of packets, which is more than `max` when some did not
 * fit. An empty payload has no packets. */
size_t payload_split(const char *payload, size_t len, packet_span *packets, size_t max);

#endif
