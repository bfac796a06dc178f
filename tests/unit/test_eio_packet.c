/* Unit tests of the Engine.IO v4 packet and polling payload codec
 * (realtime-svc/eio_packet.c). Expected strings are those that
 * socket.io-client 4 sends and expects. */
#include "eio_packet.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

/* The output of the current test, released after each test. */
static eio_buffer output;

static void teardown(void)
{
    eio_buffer_release(&output);
}

TestSuite(eio_packet, .fini = teardown);

/* Decodes a heap copy of exactly `len` bytes, so that AddressSanitizer
 * reports a read past the end. `out` then points into freed memory, so only
 * its type and length may be checked. */
static int decode_bytes(const char *data, size_t len, eio_packet *out)
{
    char *copy = malloc(len > 0 ? len : 1);
    cr_assert(not(zero(ptr, copy)));
    memcpy(copy, data, len);
    int status = eio_packet_decode(copy, len, out);
    free(copy);
    return status;
}

static void assert_output(const char *expected)
{
    cr_assert(not(zero(ptr, output.data)));
    cr_assert(eq(sz, output.len, strlen(expected)));
    cr_assert(eq(str, output.data, (char *)expected));
}

static void assert_decoded(const char *text, eio_packet_type type, const char *data)
{
    eio_packet packet;
    int status = eio_packet_decode(text, strlen(text), &packet);
    cr_assert(eq(int, status, 0), "packet %s", text);
    cr_assert(eq(int, (int)packet.type, (int)type), "packet %s", text);
    cr_assert(eq(sz, packet.data_len, strlen(data)), "packet %s", text);
    cr_assert(eq(int, memcmp(packet.data, data, packet.data_len), 0), "packet %s", text);
}

Test(eio_packet, decode_every_type)
{
    assert_decoded("0{\"sid\":\"abc\"}", EIO_OPEN, "{\"sid\":\"abc\"}");
    assert_decoded("1", EIO_CLOSE, "");
    assert_decoded("2", EIO_PING, "");
    assert_decoded("3", EIO_PONG, "");
    assert_decoded("4hello", EIO_MESSAGE, "hello");
    assert_decoded("5", EIO_UPGRADE, "");
    assert_decoded("6", EIO_NOOP, "");
}

Test(eio_packet, decode_upgrade_probe)
{
    assert_decoded("2probe", EIO_PING, "probe");
    assert_decoded("3probe", EIO_PONG, "probe");
    assert_decoded("5", EIO_UPGRADE, "");
}

Test(eio_packet, decode_socketio_messages)
{
    assert_decoded("40{\"orgKey\":\"demo\"}", EIO_MESSAGE, "0{\"orgKey\":\"demo\"}");
    assert_decoded("42[\"message:new\",{\"body\":\"hi\"}]", EIO_MESSAGE, "2[\"message:new\",{\"body\":\"hi\"}]");
}

Test(eio_packet, decode_utf8_message)
{
    assert_decoded("4h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", EIO_MESSAGE, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
}

Test(eio_packet, decode_rejects_empty)
{
    eio_packet packet;
    cr_assert(eq(int, decode_bytes("", 0, &packet), EIO_ERR_EMPTY));
}

Test(eio_packet, decode_rejects_unknown_type)
{
    static const char *const inputs[] = {"7", "9hello", "x", " 4hi", "-1", "\x1e", "{}", "\xc3\xa9"};
    eio_packet packet;

    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        int status = decode_bytes(inputs[i], strlen(inputs[i]), &packet);
        cr_assert(eq(int, status, EIO_ERR_UNKNOWN_TYPE), "input %s", inputs[i]);
    }
}

Test(eio_packet, decode_rejects_nul_type)
{
    eio_packet packet;
    cr_assert(eq(int, decode_bytes("\0004", 2, &packet), EIO_ERR_UNKNOWN_TYPE));
}

Test(eio_packet, decode_rejects_binary)
{
    eio_packet packet;
    cr_assert(eq(int, decode_bytes("bAQIDBA==", 9, &packet), EIO_ERR_BINARY));
    cr_assert(eq(int, decode_bytes("b", 1, &packet), EIO_ERR_BINARY));
}

Test(eio_packet, decode_rejects_invalid_utf8)
{
    static const char *const inputs[] = {
        "4\xff",             /* never valid in UTF-8 */
        "4\xc3",             /* truncated two-byte sequence */
        "4\xe2\x82",         /* truncated three-byte sequence */
        "4\xf0\x9f\x98",     /* truncated four-byte sequence */
        "4\xc0\xaf",         /* overlong '/' */
        "4\xe0\x80\xaf",     /* overlong '/' in three bytes */
        "4\xed\xa0\x80",     /* UTF-16 surrogate U+D800 */
        "4\xf4\x90\x80\x80", /* U+110000, above the Unicode range */
        "4\x80",             /* lone continuation byte */
        "4a\xc3(",           /* continuation byte missing */
    };
    eio_packet packet;

    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        int status = decode_bytes(inputs[i], strlen(inputs[i]), &packet);
        cr_assert(eq(int, status, EIO_ERR_INVALID_UTF8), "input %zu", i);
    }
}

Test(eio_packet, decode_size_limit)
{
    size_t len = EIO_MAX_PAYLOAD + 1;
    char *text = malloc(len);
    cr_assert(not(zero(ptr, text)));
    memset(text, 'a', len);
    text[0] = '4';
    eio_packet packet;

    int status = eio_packet_decode(text, len, &packet);
    cr_assert(eq(int, status, EIO_ERR_TOO_LARGE));

    status = eio_packet_decode(text, len - 1, &packet);
    cr_assert(eq(int, status, 0));
    cr_assert(eq(sz, packet.data_len, EIO_MAX_PAYLOAD - 1));
    free(text);
}

Test(eio_packet, utf8_validation)
{
    cr_assert(eio_utf8_is_valid("", 0));
    cr_assert(eio_utf8_is_valid("\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
    cr_assert(eio_utf8_is_valid("\xef\xbf\xbf", 3));     /* U+FFFF */
    cr_assert(eio_utf8_is_valid("\0", 1));
    cr_assert(not(eio_utf8_is_valid("\xf8\x88\x80\x80\x80", 5)));
    cr_assert(not(eio_utf8_is_valid("\xfe", 1)));
}

/* Splits `payload` and checks that it contains exactly the packets in
 * `expected`, each written with its type digit. */
static void assert_split(const char *payload, const char *const *expected, size_t count)
{
    eio_payload_iter iter;
    eio_packet packet;
    cr_assert(eq(int, eio_payload_iter_init(&iter, payload, strlen(payload)), 0));

    for (size_t i = 0; i < count; i++) {
        cr_assert(eq(int, eio_payload_next(&iter, &packet), 1), "packet %zu", i);
        cr_assert(eq(int, (int)packet.type, expected[i][0] - '0'), "packet %zu", i);
        cr_assert(eq(sz, packet.data_len, strlen(expected[i] + 1)), "packet %zu", i);
        cr_assert(eq(int, memcmp(packet.data, expected[i] + 1, packet.data_len), 0), "packet %zu", i);
    }
    cr_assert(eq(int, eio_payload_next(&iter, &packet), 0));
    cr_assert(eq(int, eio_payload_next(&iter, &packet), 0));
}

Test(eio_packet, split_single_packet)
{
    static const char *const expected[] = {"4hello"};
    assert_split("4hello", expected, 1);
}

Test(eio_packet, split_several_packets)
{
    static const char *const expected[] = {"4hello", "2", "42[\"message:new\",{\"a\":1}]", "6"};
    assert_split("4hello\x1e"
                 "2\x1e"
                 "42[\"message:new\",{\"a\":1}]\x1e"
                 "6",
                 expected, 4);
}

/* Iterates over `payload` and checks that packet number `failing` (counted
 * from 0) fails with `error` and that the iteration stops there. */
static void assert_split_fails(const char *payload, size_t failing, int error)
{
    eio_payload_iter iter;
    eio_packet packet;
    cr_assert(eq(int, eio_payload_iter_init(&iter, payload, strlen(payload)), 0));

    for (size_t i = 0; i < failing; i++)
        cr_assert(eq(int, eio_payload_next(&iter, &packet), 1), "packet %zu", i);
    cr_assert(eq(int, eio_payload_next(&iter, &packet), error));
    cr_assert(eq(int, eio_payload_next(&iter, &packet), 0));
}

Test(eio_packet, split_rejects_empty_packet)
{
    assert_split_fails("4a\x1e\x1e"
                       "4b",
                       1, EIO_ERR_EMPTY);
}

Test(eio_packet, split_rejects_leading_separator)
{
    assert_split_fails("\x1e"
                       "4a",
                       0, EIO_ERR_EMPTY);
}

Test(eio_packet, split_rejects_trailing_separator)
{
    assert_split_fails("4a\x1e"
                       "4b\x1e",
                       2, EIO_ERR_EMPTY);
}

Test(eio_packet, split_rejects_bad_packet)
{
    assert_split_fails("4a\x1e"
                       "bAQID\x1e"
                       "4b",
                       1, EIO_ERR_BINARY);
    assert_split_fails("4a\x1e"
                       "9",
                       1, EIO_ERR_UNKNOWN_TYPE);
    assert_split_fails("4\xff", 0, EIO_ERR_INVALID_UTF8);
}

Test(eio_packet, split_rejects_empty_payload)
{
    eio_payload_iter iter;
    eio_packet packet;
    cr_assert(eq(int, eio_payload_iter_init(&iter, "", 0), EIO_ERR_EMPTY));
    cr_assert(eq(int, eio_payload_next(&iter, &packet), 0));
}

Test(eio_packet, split_rejects_oversized_payload)
{
    size_t len = EIO_MAX_PAYLOAD + 1;
    char *payload = malloc(len);
    cr_assert(not(zero(ptr, payload)));
    memset(payload, '6', len);
    eio_payload_iter iter;
    eio_packet packet;

    cr_assert(eq(int, eio_payload_iter_init(&iter, payload, len), EIO_ERR_TOO_LARGE));
    cr_assert(eq(int, eio_payload_next(&iter, &packet), 0));
    free(payload);
}

Test(eio_packet, encode_open_default)
{
    eio_open_settings settings = {
        .sid = "lv_VI97HAXpY6yYWAAAC",
        .websocket_upgrade = true,
        .ping_interval_ms = EIO_PING_INTERVAL_MS,
        .ping_timeout_ms = EIO_PING_TIMEOUT_MS,
        .max_payload = EIO_MAX_PAYLOAD,
    };
    cr_assert(eq(int, eio_encode_open(&output, &settings), 0));
    assert_output("0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
                  "\"pingTimeout\":20000,\"maxPayload\":1000000}");
}

Test(eio_packet, encode_open_without_upgrade)
{
    eio_open_settings settings = {.sid = "s1", .ping_interval_ms = 1000, .ping_timeout_ms = 500, .max_payload = 64};
    cr_assert(eq(int, eio_encode_open(&output, &settings), 0));
    assert_output("0{\"sid\":\"s1\",\"upgrades\":[],\"pingInterval\":1000,\"pingTimeout\":500,\"maxPayload\":64}");
}

Test(eio_packet, encode_open_escapes_sid)
{
    eio_open_settings settings = {.sid = "a\"b", .ping_interval_ms = 1, .ping_timeout_ms = 1, .max_payload = 1};
    cr_assert(eq(int, eio_encode_open(&output, &settings), 0));
    assert_output("0{\"sid\":\"a\\\"b\",\"upgrades\":[],\"pingInterval\":1,\"pingTimeout\":1,\"maxPayload\":1}");
}

Test(eio_packet, encode_open_rejects_bad_settings)
{
    eio_open_settings settings = {.sid = "", .ping_interval_ms = 1, .ping_timeout_ms = 1, .max_payload = 1};
    cr_assert(eq(int, eio_encode_open(&output, &settings), EIO_ERR_INVALID_ARGUMENT));

    settings.sid = NULL;
    cr_assert(eq(int, eio_encode_open(&output, &settings), EIO_ERR_INVALID_ARGUMENT));

    settings.sid = "\xff";
    cr_assert(eq(int, eio_encode_open(&output, &settings), EIO_ERR_INVALID_ARGUMENT));

    settings.sid = "ok";
    settings.ping_timeout_ms = -1;
    cr_assert(eq(int, eio_encode_open(&output, &settings), EIO_ERR_INVALID_ARGUMENT));
    cr_assert(eq(sz, output.len, 0));
}

Test(eio_packet, encode_control_packets)
{
    cr_assert(eq(int, eio_encode_close(&output), 0));
    assert_output("1");
    eio_buffer_release(&output);

    cr_assert(eq(int, eio_encode_ping(&output, NULL, 0), 0));
    assert_output("2");
    eio_buffer_release(&output);

    cr_assert(eq(int, eio_encode_pong(&output, NULL, 0), 0));
    assert_output("3");
    eio_buffer_release(&output);

    cr_assert(eq(int, eio_encode_pong(&output, "probe", 5), 0));
    assert_output("3probe");
    eio_buffer_release(&output);

    cr_assert(eq(int, eio_encode_noop(&output), 0));
    assert_output("6");
}

Test(eio_packet, encode_message)
{
    const char *data = "2[\"message:new\",{\"body\":\"hi\"}]";
    cr_assert(eq(int, eio_encode_message(&output, data, strlen(data)), 0));
    assert_output("42[\"message:new\",{\"body\":\"hi\"}]");
}

/* Encodes each packet type, decodes the result and compares type and data. */
Test(eio_packet, round_trip_every_type)
{
    eio_open_settings settings = {.sid = "abc", .ping_interval_ms = 1, .ping_timeout_ms = 2, .max_payload = 3};
    eio_packet packet;

    cr_assert(eq(int, eio_encode_open(&output, &settings), 0));
    cr_assert(eq(int, eio_packet_decode(output.data, output.len, &packet), 0));
    cr_assert(eq(int, (int)packet.type, EIO_OPEN));
    cr_assert(eq(sz, packet.data_len, output.len - 1));
    eio_buffer_release(&output);

    cr_assert(eq(int, eio_encode_close(&output), 0));
    cr_assert(eq(int, eio_packet_decode(output.data, output.len, &packet), 0));
    cr_assert(eq(int, (int)packet.type, EIO_CLOSE));
    cr_assert(eq(sz, packet.data_len, 0));
    eio_buffer_release(&output);

    cr_assert(eq(int, eio_encode_ping(&output, "probe", 5), 0));
    cr_assert(eq(int, eio_packet_decode(output.data, output.len, &packet), 0));
    cr_assert(eq(int, (int)packet.type, EIO_PING));
    cr_assert(eq(sz, packet.data_len, 5));
    eio_buffer_release(&output);

    cr_assert(eq(int, eio_encode_pong(&output, "probe", 5), 0));
    cr_assert(eq(int, eio_packet_decode(output.data, output.len, &packet), 0));
    cr_assert(eq(int, (int)packet.type, EIO_PONG));
    cr_assert(eq(sz, packet.data_len, 5));
    eio_buffer_release(&output);

    cr_assert(eq(int, eio_encode_message(&output, "x\xc3\xa9", 3), 0));
    cr_assert(eq(int, eio_packet_decode(output.data, output.len, &packet), 0));
    cr_assert(eq(int, (int)packet.type, EIO_MESSAGE));
    cr_assert(eq(sz, packet.data_len, 3));
    cr_assert(eq(int, memcmp(packet.data, "x\xc3\xa9", 3), 0));
    eio_buffer_release(&output);

    cr_assert(eq(int, eio_encode_noop(&output), 0));
    cr_assert(eq(int, eio_packet_decode(output.data, output.len, &packet), 0));
    cr_assert(eq(int, (int)packet.type, EIO_NOOP));
    eio_buffer_release(&output);

    /* The server never sends an upgrade packet, so there is no encoder. */
    cr_assert(eq(int, eio_packet_decode("5", 1, &packet), 0));
    cr_assert(eq(int, (int)packet.type, EIO_UPGRADE));
}

Test(eio_packet, payload_append_joins)
{
    cr_assert(eq(int, eio_payload_append(&output, "4hello", 6), 0));
    assert_output("4hello");
    cr_assert(eq(int, eio_payload_append(&output, "2", 1), 0));
    cr_assert(eq(int, eio_payload_append(&output, "6", 1), 0));
    assert_output("4hello\x1e"
                  "2\x1e"
                  "6");

    static const char *const expected[] = {"4hello", "2", "6"};
    assert_split(output.data, expected, 3);
}

Test(eio_packet, payload_append_rejects_bad_packet)
{
    cr_assert(eq(int, eio_payload_append(&output, "", 0), EIO_ERR_INVALID_ARGUMENT));
    cr_assert(eq(int,
                 eio_payload_append(&output,
                                    "4a\x1e"
                                    "b",
                                    4),
                 EIO_ERR_INVALID_ARGUMENT));
    cr_assert(eq(sz, output.len, 0));
}

Test(eio_packet, buffer_grows)
{
    char chunk[100];
    memset(chunk, 'z', sizeof chunk);

    for (int i = 0; i < 1000; i++)
        cr_assert(eq(int, eio_buffer_append(&output, chunk, sizeof chunk), 0));
    cr_assert(eq(sz, output.len, 100000));
    cr_assert(eq(chr, output.data[output.len], '\0'));
    cr_assert(output.capacity > output.len);
}

Test(eio_packet, buffer_release_twice)
{
    eio_buffer buffer = {0};
    eio_buffer_release(&buffer);
    cr_assert(eq(int, eio_buffer_append(&buffer, "x", 1), 0));
    eio_buffer_release(&buffer);
    eio_buffer_release(&buffer);
    cr_assert(zero(ptr, buffer.data));
    cr_assert(eq(sz, buffer.len, 0));
}

Test(eio_packet, error_messages)
{
    cr_assert(eq(str, (char *)eio_error_message(EIO_ERR_BINARY), "binary packet where a text packet is expected"));
    cr_assert(eq(str, (char *)eio_error_message(-100), "unknown error"));
}
