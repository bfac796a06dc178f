/* Socket.IO v5 packet codec. A packet reads: type digit, then for binary
 * types the attachment count and '-', then an optional namespace from '/'
 * to ',', then an optional decimal ack id, then an optional JSON payload. */
#include "sio_packet.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char main_namespace[] = "/";

/* Event names that socket.io gives a meaning of its own, so that its
 * parser rejects events that carry them. */
static const char *const reserved_events[] = {
    "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
};

static bool is_reserved_event(const char *name)
{
    for (size_t i = 0; i < sizeof reserved_events / sizeof reserved_events[0]; i++) {
        if (strcmp(name, reserved_events[i]) == 0)
            return true;
    }
    return false;
}

/* Checks the bytes of a namespace name, leading '/' included. A ',' would
 * end the name early, and control characters have no place in it. */
static bool is_valid_namespace(const char *name, size_t len)
{
    if (len == 0 || name[0] != '/' || len > SIO_MAX_NAMESPACE)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char byte = (unsigned char)name[i];
        if (byte == ',' || byte < 0x20 || byte == 0x7f)
            return false;
    }
    return eio_utf8_is_valid(name, len);
}

/* Reads the namespace at `*pos`, if any, and moves `*pos` past its ','. */
static int decode_namespace(const char *data, size_t len, size_t *pos, sio_packet *out)
{
    out->namespace = main_namespace;
    out->namespace_len = 1;
    if (*pos >= len || data[*pos] != '/')
        return 0;

    const char *start = data + *pos;
    const char *comma = memchr(start, ',', len - *pos);
    size_t name_len = comma != NULL ? (size_t)(comma - start) : len - *pos;
    if (!is_valid_namespace(start, name_len))
        return SIO_ERR_INVALID_NAMESPACE;

    out->namespace = start;
    out->namespace_len = name_len;
    *pos += name_len + (comma != NULL ? 1 : 0);
    return 0;
}

/* Reads the decimal ack id at `*pos`, if any, and moves `*pos` past it. */
static int decode_ack_id(const char *data, size_t len, size_t *pos, sio_packet *out)
{
    out->ack_id = -1;
    if (*pos >= len || data[*pos] < '0' || data[*pos] > '9')
        return 0;

    int64_t value = 0;
    while (*pos < len && data[*pos] >= '0' && data[*pos] <= '9') {
        value = value * 10 + (data[*pos] - '0');
        if (value > SIO_MAX_ACK_ID)
            return SIO_ERR_INVALID_ACK_ID;
        (*pos)++;
    }
    out->ack_id = value;
    return 0;
}

static bool is_valid_event_payload(const json_t *payload)
{
    if (!json_is_array(payload) || json_array_size(payload) == 0)
        return false;
    const json_t *name = json_array_get(payload, 0);
    return json_is_string(name) && !is_reserved_event(json_string_value(name));
}

/* Checks that the ack id and the payload fit the packet type. */
static int check_shape(const sio_packet *packet)
{
    bool has_ack_id = packet->ack_id >= 0;
    const json_t *payload = packet->payload;

    switch (packet->type) {
    case SIO_CONNECT:
        if (has_ack_id)
            return SIO_ERR_INVALID_ACK_ID;
        return payload == NULL || json_is_object(payload) ? 0 : SIO_ERR_INVALID_PAYLOAD;
    case SIO_DISCONNECT:
        if (has_ack_id)
            return SIO_ERR_INVALID_ACK_ID;
        return payload == NULL ? 0 : SIO_ERR_INVALID_PAYLOAD;
    case SIO_EVENT:
        return is_valid_event_payload(payload) ? 0 : SIO_ERR_INVALID_PAYLOAD;
    case SIO_ACK:
        if (!has_ack_id)
            return SIO_ERR_INVALID_ACK_ID;
        return json_is_array(payload) ? 0 : SIO_ERR_INVALID_PAYLOAD;
    case SIO_CONNECT_ERROR:
        if (has_ack_id)
            return SIO_ERR_INVALID_ACK_ID;
        return json_is_object(payload) ? 0 : SIO_ERR_INVALID_PAYLOAD;
    case SIO_BINARY_EVENT:
    case SIO_BINARY_ACK:
        break;
    }
    return SIO_ERR_BINARY_UNSUPPORTED;
}

int sio_packet_decode(const char *data, size_t len, sio_packet *out)
{
    out->payload = NULL;
    if (len == 0)
        return SIO_ERR_EMPTY;
    if (len > SIO_MAX_PACKET)
        return SIO_ERR_TOO_LARGE;
    if (data[0] < '0' || data[0] > '6')
        return SIO_ERR_UNKNOWN_TYPE;
    out->type = (sio_packet_type)(data[0] - '0');
    if (out->type == SIO_BINARY_EVENT || out->type == SIO_BINARY_ACK)
        return SIO_ERR_BINARY_UNSUPPORTED;
    if (!eio_utf8_is_valid(data, len))
        return SIO_ERR_INVALID_UTF8;

    size_t pos = 1;
    int status = decode_namespace(data, len, &pos, out);
    if (status < 0)
        return status;
    status = decode_ack_id(data, len, &pos, out);
    if (status < 0)
        return status;

    /* JSON_DECODE_ANY lets a scalar through to check_shape, which reports
     * it as a payload of the wrong shape rather than as invalid JSON. */
    if (pos < len) {
        json_error_t error;
        out->payload = json_loadb(data + pos, len - pos, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &error);
        if (out->payload == NULL)
            return SIO_ERR_INVALID_JSON;
    }

    status = check_shape(out);
    if (status < 0)
        sio_packet_release(out);
    return status;
}

void sio_packet_release(sio_packet *packet)
{
    json_decref(packet->payload);
    packet->payload = NULL;
}

const char *sio_packet_event_name(const sio_packet *packet)
{
    if (packet->type != SIO_EVENT)
        return NULL;
    return json_string_value(json_array_get(packet->payload, 0));
}

/* json_dump_callback sink that appends to an eio_buffer. */
static int on_json_chunk(const char *chunk, size_t len, void *context)
{
    return eio_buffer_append(context, chunk, len) == 0 ? 0 : -1;
}

static int append_json(eio_buffer *out, const json_t *value)
{
    size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY;
    return json_dump_callback(value, on_json_chunk, out, flags) == 0 ? 0 : SIO_ERR_NO_MEMORY;
}

static int append_bytes(eio_buffer *out, const char *bytes, size_t len)
{
    return eio_buffer_append(out, bytes, len) == 0 ? 0 : SIO_ERR_NO_MEMORY;
}

/* Appends the type digit, then the namespace and its ',' unless it is the
 * main namespace, then the ack id unless it is -1. */
static int append_header(eio_buffer *out, sio_packet_type type, const char *namespace, int64_t ack_id)
{
    if (namespace != NULL && !is_valid_namespace(namespace, strlen(namespace)))
        return SIO_ERR_INVALID_NAMESPACE;
    if (ack_id < -1 || ack_id > SIO_MAX_ACK_ID)
        return SIO_ERR_INVALID_ARGUMENT;

    char digit = (char)('0' + type);
    int status = append_bytes(out, &digit, 1);
    if (status == 0 && namespace != NULL && strcmp(namespace, main_namespace) != 0) {
        status = append_bytes(out, namespace, strlen(namespace));
        if (status == 0)
            status = append_bytes(out, ",", 1);
    }
    if (status == 0 && ack_id >= 0) {
        char digits[24];
        int digits_len = snprintf(digits, sizeof digits, "%" PRId64, ack_id);
        status = append_bytes(out, digits, (size_t)digits_len);
    }
    return status;
}

/* Appends {"<key>":"<value>"}, the payload of CONNECT and CONNECT_ERROR. */
static int append_string_object(eio_buffer *out, const char *key, const char *value)
{
    json_t *document = json_pack("{s:s}", key, value);
    if (document == NULL)
        return SIO_ERR_INVALID_ARGUMENT;
    int status = append_json(out, document);
    json_decref(document);
    return status;
}

int sio_encode_connect(eio_buffer *out, const char *namespace, const char *sid)
{
    if (sid == NULL || sid[0] == '\0')
        return SIO_ERR_INVALID_ARGUMENT;
    int status = append_header(out, SIO_CONNECT, namespace, -1);
    if (status < 0)
        return status;
    return append_string_object(out, "sid", sid);
}

int sio_encode_disconnect(eio_buffer *out, const char *namespace)
{
    return append_header(out, SIO_DISCONNECT, namespace, -1);
}

int sio_encode_connect_error(eio_buffer *out, const char *namespace, const char *message)
{
    if (message == NULL)
        return SIO_ERR_INVALID_ARGUMENT;
    int status = append_header(out, SIO_CONNECT_ERROR, namespace, -1);
    if (status < 0)
        return status;
    return append_string_object(out, "message", message);
}

int sio_encode_event(eio_buffer *out, const char *namespace, const char *event_name, const json_t *argument, int64_t ack_id)
{
    if (event_name == NULL || is_reserved_event(event_name))
        return SIO_ERR_INVALID_ARGUMENT;
    /* json_string checks that the name is UTF-8. */
    json_t *name = json_string(event_name);
    if (name == NULL)
        return SIO_ERR_INVALID_ARGUMENT;

    int status = append_header(out, SIO_EVENT, namespace, ack_id);
    if (status == 0)
        status = append_bytes(out, "[", 1);
    if (status == 0)
        status = append_json(out, name);
    if (status == 0 && argument != NULL) {
        status = append_bytes(out, ",", 1);
        if (status == 0)
            status = append_json(out, argument);
    }
    if (status == 0)
        status = append_bytes(out, "]", 1);
    json_decref(name);
    return status;
}

int sio_encode_ack(eio_buffer *out, const char *namespace, int64_t ack_id, const json_t *arguments)
{
    if (ack_id < 0 || !json_is_array(arguments))
        return SIO_ERR_INVALID_ARGUMENT;
    int status = append_header(out, SIO_ACK, namespace, ack_id);
    if (status < 0)
        return status;
    return append_json(out, arguments);
}

const char *sio_error_message(int code)
{
    switch (code) {
    case 0:
        return "success";
    case SIO_ERR_EMPTY:
        return "empty packet";
    case SIO_ERR_UNKNOWN_TYPE:
        return "unknown packet type";
    case SIO_ERR_BINARY_UNSUPPORTED:
        return "binary packets are not supported";
    case SIO_ERR_TOO_LARGE:
        return "packet larger than the maximum size";
    case SIO_ERR_INVALID_UTF8:
        return "packet is not valid UTF-8";
    case SIO_ERR_INVALID_NAMESPACE:
        return "invalid namespace";
    case SIO_ERR_INVALID_ACK_ID:
        return "invalid, missing or unexpected ack id";
    case SIO_ERR_INVALID_JSON:
        return "payload is not valid JSON";
    case SIO_ERR_INVALID_PAYLOAD:
        return "payload does not fit the packet type";
    case SIO_ERR_INVALID_ARGUMENT:
        return "invalid encoder argument";
    case SIO_ERR_NO_MEMORY:
        return "out of memory";
    default:
        return "unknown error";
    }
}
