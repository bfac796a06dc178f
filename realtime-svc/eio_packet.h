/* Engine.IO v4 text packets and HTTP long-polling payloads: decoding of what
 * a client sends and encoding of what the server sends. Binary packets are
 * not supported and are rejected where they would appear. */
#ifndef EIO_PACKET_H
#define EIO_PACKET_H

#include <stdbool.h>
#include <stddef.h>

/* Maximum size of a packet or polling payload, in bytes, that the decoders accept. The
 * open packet advertises it to the client as `maxPayload`. */
#define EIO_MAX_PAYLOAD 1000000

/* Default heartbeat settings, in milliseconds, as socket.io 4 uses them. */
#define EIO_PING_INTERVAL_MS 25000
#define EIO_PING_TIMEOUT_MS 20000

/* The byte that separates packets in a polling payload (ASCII record
 * separator). */
#define EIO_RECORD_SEPARATOR '\x1e'

typedef enum {
    EIO_OPEN = 0,
    EIO_CLOSE = 1,
    EIO_PING = 2,
    EIO_PONG = 3,
    EIO_MESSAGE = 4,
    EIO_UPGRADE = 5,
    EIO_NOOP = 6,
} eio_packet_type;

/* Error codes of the decoders and encoders, all negative. */
enum {
    EIO_ERR_EMPTY = -1,        /* empty packet or payload */
    EIO_ERR_UNKNOWN_TYPE = -2, /* first byte is not a packet type digit */
    EIO_ERR_BINARY = -3,       /* binary packet ("b" + base64) where text is expected */
    EIO_ERR_TOO_LARGE = -4,    /* longer than EIO_MAX_PAYLOAD */
    EIO_ERR_INVALID_UTF8 = -5,
    EIO_ERR_INVALID_ARGUMENT = -6, /* an encoder argument the protocol cannot carry */
    EIO_ERR_NO_MEMORY = -7,
};

/* A decoded packet. `data` points into the decoded input, is not
 * NUL-terminated and stays valid as long as that input does. */
typedef struct {
    eio_packet_type type;
    const char *data;
    size_t data_len;
} eio_packet;

/* Decodes one text packet of `len` bytes. Returns 0 and fills `out`, or a
 * negative EIO_ERR_* code and leaves `out` unspecified. Any data after the
 * type digit is accepted for every type, because the protocol gives it a
 * meaning only for ping, pong and message packets. */
int eio_packet_decode(const char *data, size_t len, eio_packet *out) __attribute__((warn_unused_result));

/* Position in a polling payload, for eio_payload_next. */
typedef struct {
    const char *data;
    size_t len;
    size_t offset; /* start of the next packet */
    bool finished;
} eio_payload_iter;

/* Starts iterating over a polling payload of `len` bytes, which must stay
 * valid during the iteration. Returns 0, or EIO_ERR_EMPTY or
 * EIO_ERR_TOO_LARGE for the payload as a whole. */
int eio_payload_iter_init(eio_payload_iter *iter, const char *data, size_t len) __attribute__((warn_unused_result));

/* Decodes the next packet of the payload into `out`. Returns 1 when a packet
 * was decoded, 0 after the last one, or a negative EIO_ERR_* code. An empty
 * packet, including one after a trailing separator, is EIO_ERR_EMPTY. After
 * an error the iteration is finished and later calls return 0. */
int eio_payload_next(eio_payload_iter *iter, eio_packet *out) __attribute__((warn_unused_result));

/* A growable, NUL-terminated output buffer. Zero-initialize it, append with
 * the encoders, then free it with eio_buffer_release. The NUL byte is not
 * counted in `len`. */
typedef struct {
    char *data;
    size_t len;
    size_t capacity;
} eio_buffer;

/* Frees the buffer's memory and resets it to empty. Accepts a buffer that
 * never grew. */
void eio_buffer_release(eio_buffer *buffer);

/* Appends `len` raw bytes. Returns 0 or EIO_ERR_NO_MEMORY. */
int eio_buffer_append(eio_buffer *buffer, const void *bytes, size_t len) __attribute__((warn_unused_result));

/* Settings advertised by the open packet. */
typedef struct {
    const char *sid;        /* session id, NUL-terminated UTF-8 */
    bool websocket_upgrade; /* lists "websocket" in `upgrades` when true */
    long ping_interval_ms;
    long ping_timeout_ms;
    long max_payload; /* bytes */
} eio_open_settings;

/* The encoders below append one packet to `out`. Each returns 0, or
 * EIO_ERR_INVALID_ARGUMENT or EIO_ERR_NO_MEMORY, and on error may leave a
 * partial packet in `out`. */

/* Appends an open packet, for example
 * 0{"sid":"x","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}.
 * An empty or non-UTF-8 `sid` or a negative number is EIO_ERR_INVALID_ARGUMENT. */
int eio_encode_open(eio_buffer *out, const eio_open_settings *settings) __attribute__((warn_unused_result));

/* Appends a close packet, "1". */
int eio_encode_close(eio_buffer *out) __attribute__((warn_unused_result));

/* Appends a ping packet, "2" followed by `data` (`len` may be 0). */
int eio_encode_ping(eio_buffer *out, const char *data, size_t len) __attribute__((warn_unused_result));

/* Appends a pong packet, "3" followed by `data`, such as "3probe" in reply
 * to the client's "2probe" during the WebSocket upgrade. */
int eio_encode_pong(eio_buffer *out, const char *data, size_t len) __attribute__((warn_unused_result));

/* Appends a message packet, "4" followed by `data`. */
int eio_encode_message(eio_buffer *out, const char *data, size_t len) __attribute__((warn_unused_result));

/* Appends a noop packet, "6", which ends a pending poll during the upgrade. */
int eio_encode_noop(eio_buffer *out) __attribute__((warn_unused_result));

/* Appends an encoded packet to a polling payload, preceded by the record
 * separator unless `payload` is empty. An empty packet, or one that contains
 * the separator and so could not be split again, is
 * EIO_ERR_INVALID_ARGUMENT. */
int eio_payload_append(eio_buffer *payload, const char *packet, size_t len) __attribute__((warn_unused_result));

/* Returns whether `len` bytes are well-formed UTF-8: no overlong forms, no
 * UTF-16 surrogates and nothing above U+10FFFF. */
bool eio_utf8_is_valid(const char *data, size_t len);

/* Returns a static English description of an EIO_ERR_* code, for logs. */
const char *eio_error_message(int code);

#endif
