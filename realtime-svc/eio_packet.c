/* Engine.IO v4 packet and polling payload codec. Jansson builds the JSON of
 * the open packet, and the other packets are plain bytes. */
#include "eio_packet.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool eio_utf8_is_valid(const char *data, size_t len)
{
    const unsigned char *bytes = (const unsigned char *)data;
    size_t i = 0;

    while (i < len) {
        unsigned char lead = bytes[i];
        size_t extra;
        uint32_t code_point;
        uint32_t min_code_point;

        if (lead < 0x80) {
            i++;
            continue;
        }
        if ((lead & 0xe0) == 0xc0) {
            extra = 1;
            code_point = lead & 0x1f;
            min_code_point = 0x80;
        } else if ((lead & 0xf0) == 0xe0) {
            extra = 2;
            code_point = lead & 0x0f;
            min_code_point = 0x800;
        } else if ((lead & 0xf8) == 0xf0) {
            extra = 3;
            code_point = lead & 0x07;
            min_code_point = 0x10000;
        } else {
            return false;
        }
        if (len - i <= extra)
            return false;

        for (size_t k = 1; k <= extra; k++) {
            unsigned char continuation = bytes[i + k];
            if ((continuation & 0xc0) != 0x80)
                return false;
            code_point = (code_point << 6) | (continuation & 0x3f);
        }
        if (code_point < min_code_point || code_point > 0x10ffff)
            return false;
        if (code_point >= 0xd800 && code_point <= 0xdfff)
            return false;
        i += extra + 1;
    }
    return true;
}

int eio_packet_decode(const char *data, size_t len, eio_packet *out)
{
    if (len == 0)
        return EIO_ERR_EMPTY;
    if (len > EIO_MAX_PAYLOAD)
        return EIO_ERR_TOO_LARGE;
    if (data[0] == 'b')
        return EIO_ERR_BINARY;
    if (data[0] < '0' || data[0] > '6')
        return EIO_ERR_UNKNOWN_TYPE;
    if (!eio_utf8_is_valid(data, len))
        return EIO_ERR_INVALID_UTF8;

    out->type = (eio_packet_type)(data[0] - '0');
    out->data = data + 1;
    out->data_len = len - 1;
    return 0;
}

int eio_payload_iter_init(eio_payload_iter *iter, const char *data, size_t len)
{
    iter->data = data;
    iter->len = len;
    iter->offset = 0;
    iter->finished = true;

    if (len == 0)
        return EIO_ERR_EMPTY;
    if (len > EIO_MAX_PAYLOAD)
        return EIO_ERR_TOO_LARGE;
    iter->finished = false;
    return 0;
}

int eio_payload_next(eio_payload_iter *iter, eio_packet *out)
{
    if (iter->finished)
        return 0;

    /* A payload of n packets has n - 1 separators, so the segment after the
     * last separator is a packet too, and an empty one is an error. */
    const char *start = iter->data + iter->offset;
    size_t remaining = iter->len - iter->offset;
    const char *separator = memchr(start, EIO_RECORD_SEPARATOR, remaining);
    size_t segment_len = separator != NULL ? (size_t)(separator - start) : remaining;

    if (separator != NULL)
        iter->offset += segment_len + 1;
    else
        iter->finished = true;

    int status = eio_packet_decode(start, segment_len, out);
    if (status < 0) {
        iter->finished = true;
        return status;
    }
    return 1;
}

void eio_buffer_release(eio_buffer *buffer)
{
    free(buffer->data);
    buffer->data = NULL;
    buffer->len = 0;
    buffer->capacity = 0;
}

/* Makes room for `extra` more bytes plus the NUL terminator. */
static int reserve(eio_buffer *buffer, size_t extra)
{
    if (extra > SIZE_MAX - buffer->len - 1)
        return EIO_ERR_NO_MEMORY;
    size_t needed = buffer->len + extra + 1;
    if (needed <= buffer->capacity)
        return 0;

    size_t capacity = buffer->capacity > 0 ? buffer->capacity : 64;
    while (capacity < needed)
        capacity = capacity > SIZE_MAX / 2 ? needed : capacity * 2;

    char *grown = realloc(buffer->data, capacity);
    if (grown == NULL)
        return EIO_ERR_NO_MEMORY;
    buffer->data = grown;
    buffer->capacity = capacity;
    return 0;
}

int eio_buffer_append(eio_buffer *buffer, const void *bytes, size_t len)
{
    int status = reserve(buffer, len);
    if (status < 0)
        return status;

    if (len > 0)
        memcpy(buffer->data + buffer->len, bytes, len);
    buffer->len += len;
    buffer->data[buffer->len] = '\0';
    return 0;
}

/* Appends the type digit followed by `len` bytes of data. */
static int append_packet(eio_buffer *out, eio_packet_type type, const char *data, size_t len)
{
    char digit = (char)('0' + type);
    int status = eio_buffer_append(out, &digit, 1);
    if (status < 0)
        return status;
    return eio_buffer_append(out, data, len);
}

/* json_dump_callback sink that appends to an eio_buffer. */
static int on_json_chunk(const char *chunk, size_t len, void *context)
{
    return eio_buffer_append(context, chunk, len) == 0 ? 0 : -1;
}

static json_t *build_open_document(const eio_open_settings *settings)
{
    json_t *document = json_object();
    json_t *upgrades = json_array();
    if (document == NULL || upgrades == NULL)
        goto fail;

    /* Jansson keeps keys in insertion order, and json_object_set_new takes
     * ownership of each value, also when it fails. */
    if (settings->websocket_upgrade && json_array_append_new(upgrades, json_string("websocket")) < 0)
        goto fail;
    if (json_object_set_new(document, "sid", json_string(settings->sid)) < 0)
        goto fail;
    if (json_object_set(document, "upgrades", upgrades) < 0)
        goto fail;
    if (json_object_set_new(document, "pingInterval", json_integer(settings->ping_interval_ms)) < 0)
        goto fail;
    if (json_object_set_new(document, "pingTimeout", json_integer(settings->ping_timeout_ms)) < 0)
        goto fail;
    if (json_object_set_new(document, "maxPayload", json_integer(settings->max_payload)) < 0)
        goto fail;
    json_decref(upgrades);
    return document;

fail:
    json_decref(upgrades);
    json_decref(document);
    return NULL;
}

int eio_encode_open(eio_buffer *out, const eio_open_settings *settings)
{
    if (settings->sid == NULL || settings->sid[0] == '\0')
        return EIO_ERR_INVALID_ARGUMENT;
    if (!eio_utf8_is_valid(settings->sid, strlen(settings->sid)))
        return EIO_ERR_INVALID_ARGUMENT;
    if (settings->ping_interval_ms < 0 || settings->ping_timeout_ms < 0 || settings->max_payload < 0)
        return EIO_ERR_INVALID_ARGUMENT;

    json_t *document = build_open_document(settings);
    if (document == NULL)
        return EIO_ERR_NO_MEMORY;

    int status = append_packet(out, EIO_OPEN, NULL, 0);
    if (status == 0 && json_dump_callback(document, on_json_chunk, out, JSON_COMPACT | JSON_PRESERVE_ORDER) < 0)
        status = EIO_ERR_NO_MEMORY;
    json_decref(document);
    return status;
}

int eio_encode_close(eio_buffer *out)
{
    return append_packet(out, EIO_CLOSE, NULL, 0);
}

int eio_encode_ping(eio_buffer *out, const char *data, size_t len)
{
    return append_packet(out, EIO_PING, data, len);
}

int eio_encode_pong(eio_buffer *out, const char *data, size_t len)
{
    return append_packet(out, EIO_PONG, data, len);
}

int eio_encode_message(eio_buffer *out, const char *data, size_t len)
{
    return append_packet(out, EIO_MESSAGE, data, len);
}

int eio_encode_noop(eio_buffer *out)
{
    return append_packet(out, EIO_NOOP, NULL, 0);
}

int eio_payload_append(eio_buffer *payload, const char *packet, size_t len)
{
    if (len == 0 || memchr(packet, EIO_RECORD_SEPARATOR, len) != NULL)
        return EIO_ERR_INVALID_ARGUMENT;

    if (payload->len > 0) {
        char separator = EIO_RECORD_SEPARATOR;
        int status = eio_buffer_append(payload, &separator, 1);
        if (status < 0)
            return status;
    }
    return eio_buffer_append(payload, packet, len);
}

const char *eio_error_message(int code)
{
    switch (code) {
    case 0:
        return "success";
    case EIO_ERR_EMPTY:
        return "empty packet";
    case EIO_ERR_UNKNOWN_TYPE:
        return "unknown packet type";
    case EIO_ERR_BINARY:
        return "binary packet where a text packet is expected";
    case EIO_ERR_TOO_LARGE:
        return "packet larger than the maximum payload";
    case EIO_ERR_INVALID_UTF8:
        return "packet is not valid UTF-8";
    case EIO_ERR_INVALID_ARGUMENT:
        return "invalid encoder argument";
    case EIO_ERR_NO_MEMORY:
        return "out of memory";
    default:
        return "unknown error";
    }
}
