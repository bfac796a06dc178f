/* Socket.IO v5 packets, carried as the data of Engine.IO message packets:
 * decoding of what a client sends and encoding of what the server sends.
 * Binary events and acks (attachments) are not supported. */
#ifndef SIO_PACKET_H
#define SIO_PACKET_H

#include "eio_packet.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Maximum packet size, in bytes, that sio_packet_decode accepts. */
#define SIO_MAX_PACKET EIO_MAX_PAYLOAD

/* Maximum namespace length, in bytes, including the leading '/'. */
#define SIO_MAX_NAMESPACE 256

/* Largest ack id. socket.io-client numbers acks from 0 upwards per
 * connection, so this bound is never reached in practice. */
#define SIO_MAX_ACK_ID INT32_MAX

typedef enum {
    SIO_CONNECT = 0,
    SIO_DISCONNECT = 1,
    SIO_EVENT = 2,
    SIO_ACK = 3,
    SIO_CONNECT_ERROR = 4,
    SIO_BINARY_EVENT = 5,
    SIO_BINARY_ACK = 6,
} sio_packet_type;

/* Error codes of the decoder and encoders, all negative. */
enum {
    SIO_ERR_EMPTY = -1,
    SIO_ERR_UNKNOWN_TYPE = -2,
    SIO_ERR_BINARY_UNSUPPORTED = -3, /* BINARY_EVENT or BINARY_ACK */
    SIO_ERR_TOO_LARGE = -4,          /* longer than SIO_MAX_PACKET */
    SIO_ERR_INVALID_UTF8 = -5,
    SIO_ERR_INVALID_NAMESPACE = -6,
    SIO_ERR_INVALID_ACK_ID = -7, /* above SIO_MAX_ACK_ID, or present or missing where the type forbids or needs it */
    SIO_ERR_INVALID_JSON = -8,
    SIO_ERR_INVALID_PAYLOAD = -9, /* valid JSON of the wrong shape for the packet type */
    SIO_ERR_INVALID_ARGUMENT = -10,
    SIO_ERR_NO_MEMORY = -11,
};

/* A decoded packet. `namespace` points into the decoded input (or to a
 * static "/" for the main namespace), is not NUL-terminated and stays valid
 * as long as that input does. The caller owns `payload` and frees it with
 * sio_packet_release. */
typedef struct {
    sio_packet_type type;
    const char *namespace;
    size_t namespace_len;
    int64_t ack_id;  /* -1 when the packet has none */
    json_t *payload; /* NULL when the packet has none */
} sio_packet;

/* Decodes one packet of `len` bytes: the data of an Engine.IO message
 * packet, such as `0{"orgKey":"demo"}` or `2/admin,12["hello"]`. Returns 0
 * and fills `out`, or a negative SIO_ERR_* code and leaves `out` with no
 * payload to free. The payload must fit the type:
 * - CONNECT: absent or an object (the client's auth data), no ack id;
 * - DISCONNECT: absent, no ack id;
 * - EVENT: an array whose first element is an event name that socket.io
 *   does not reserve (such as "connect" or "disconnect"); ack id optional;
 * - ACK: an array, ack id required;
 * - CONNECT_ERROR: an object, no ack id.
 * The namespace may end at the end of the packet as well as at ',', as the
 * socket.io-parser 4 decoder allows. */
int sio_packet_decode(const char *data, size_t len, sio_packet *out) __attribute__((warn_unused_result));

/* Frees the packet's payload and sets it to NULL. Accepts a packet that has
 * none. */
void sio_packet_release(sio_packet *packet);

/* Returns the event name of a decoded EVENT packet, a NUL-terminated string
 * owned by the payload, or NULL for other packet types. */
const char *sio_packet_event_name(const sio_packet *packet);

/* The encoders below append one Socket.IO packet (without the Engine.IO
 * message prefix "4") to `out`. `namespace` is a NUL-terminated name that
 * starts with '/' and contains no ','; NULL means the main namespace "/".
 * Each returns 0, SIO_ERR_INVALID_NAMESPACE, SIO_ERR_INVALID_ARGUMENT or
 * SIO_ERR_NO_MEMORY, and on error may leave a partial packet in `out`. */

/* Appends the server's CONNECT reply, `0{"sid":"..."}` or `0/chat,{"sid":"..."}`. */
int sio_encode_connect(eio_buffer *out, const char *namespace, const char *sid) __attribute__((warn_unused_result));

/* Appends a DISCONNECT packet, `1` or `1/chat,`. */
int sio_encode_disconnect(eio_buffer *out, const char *namespace) __attribute__((warn_unused_result));

/* Appends a CONNECT_ERROR packet, `4{"message":"..."}`. */
int sio_encode_connect_error(eio_buffer *out, const char *namespace, const char *message) __attribute__((warn_unused_result));

/* Appends an EVENT packet, `2["name",argument]`, with the ack id before the
 * array unless `ack_id` is -1. `argument` is borrowed, not consumed, and may
 * be NULL for an event without arguments. Object keys keep their insertion
 * order. A reserved or non-UTF-8 event name is SIO_ERR_INVALID_ARGUMENT. */
int sio_encode_event(eio_buffer *out, const char *namespace, const char *event_name, const json_t *argument, int64_t ack_id)
    __attribute__((warn_unused_result));

/* Appends an ACK packet, `3<ack_id>[...]`, the reply to the client's event
 * with the ack id `ack_id`. `arguments` must be an array and is borrowed. */
int sio_encode_ack(eio_buffer *out, const char *namespace, int64_t ack_id, const json_t *arguments)
    __attribute__((warn_unused_result));

/* Returns a static English description of a SIO_ERR_* code, for logs. */
const char *sio_error_message(int code);

#endif
