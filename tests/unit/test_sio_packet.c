/* Unit tests of the Socket.IO v5 packet codec (realtime-svc/sio_packet.c).
 * Expected strings are those that socket.io-client 4 sends and expects. */
#include "sio_packet.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

/* The packet, its input and the output of the current test, released after
 * each test. The input is kept because `packet.namespace` may point into it. */
static sio_packet packet;
static char *input;
static eio_buffer output;

static void teardown(void)
{
    sio_packet_release(&packet);
    free(input);
    input = NULL;
    eio_buffer_release(&output);
}

TestSuite(sio_packet, .fini = teardown);

/* Decodes a heap copy of exactly `len` bytes into `packet`, so that
 * AddressSanitizer reports a read past the end. */
static int decode_bytes(const char *data, size_t len)
{
    sio_packet_release(&packet);
    free(input);
    input = malloc(len > 0 ? len : 1);
    cr_assert(not(zero(ptr, input)));
    memcpy(input, data, len);
    return sio_packet_decode(input, len, &packet);
}

static int decode(const char *text)
{
    return decode_bytes(text, strlen(text));
}

static void assert_namespace(const char *expected)
{
    cr_assert(eq(sz, packet.namespace_len, strlen(expected)));
    cr_assert(eq(int, memcmp(packet.namespace, expected, packet.namespace_len), 0));
}

/* Asserts that the decoded payload serializes to `expected` JSON. */
static void assert_payload(const char *expected)
{
    cr_assert(not(zero(ptr, packet.payload)));
    char *text = json_dumps(packet.payload, JSON_COMPACT | JSON_PRESERVE_ORDER);
    cr_assert(not(zero(ptr, text)));
    cr_assert(eq(str, text, (char *)expected));
    free(text);
}

static void assert_rejected(const char *text, size_t len, int error)
{
    int status = decode_bytes(text, len);
    cr_assert(eq(int, status, error), "packet %.*s", (int)len, text);
    cr_assert(zero(ptr, packet.payload), "packet %.*s", (int)len, text);
}

static void assert_rejected_text(const char *text, int error)
{
    assert_rejected(text, strlen(text), error);
}

static void assert_output(const char *expected)
{
    cr_assert(not(zero(ptr, output.data)));
    cr_assert(eq(str, output.data, (char *)expected));
    cr_assert(eq(sz, output.len, strlen(expected)));
}

Test(sio_packet, decode_connect_main_namespace)
{
    cr_assert(eq(int, decode("0"), 0));
    cr_assert(eq(int, (int)packet.type, SIO_CONNECT));
    assert_namespace("/");
    cr_assert(eq(i64, packet.ack_id, -1));
    cr_assert(zero(ptr, packet.payload));
}

Test(sio_packet, decode_connect_with_auth)
{
    cr_assert(eq(int, decode("0{\"orgKey\":\"demo\"}"), 0));
    cr_assert(eq(int, (int)packet.type, SIO_CONNECT));
    assert_namespace("/");
    cr_assert(eq(i64, packet.ack_id, -1));
    assert_payload("{\"orgKey\":\"demo\"}");
}

Test(sio_packet, decode_connect_namespace)
{
    cr_assert(eq(int, decode("0/admin,{\"token\":\"123\"}"), 0));
    assert_namespace("/admin");
    assert_payload("{\"token\":\"123\"}");

    cr_assert(eq(int, decode("0/admin,"), 0));
    assert_namespace("/admin");
    cr_assert(zero(ptr, packet.payload));

    /* socket.io-parser 4 also accepts a namespace that ends the packet. */
    cr_assert(eq(int, decode("0/admin"), 0));
    assert_namespace("/admin");
    cr_assert(zero(ptr, packet.payload));

    cr_assert(eq(int, decode("0/,"), 0));
    assert_namespace("/");
}

Test(sio_packet, decode_disconnect)
{
    cr_assert(eq(int, decode("1"), 0));
    cr_assert(eq(int, (int)packet.type, SIO_DISCONNECT));
    assert_namespace("/");
    cr_assert(zero(ptr, packet.payload));

    cr_assert(eq(int, decode("1/admin,"), 0));
    assert_namespace("/admin");
}

Test(sio_packet, decode_event)
{
    cr_assert(eq(int, decode("2[\"message:new\",{\"conversationId\":\"c1\",\"body\":\"hi\"}]"), 0));
    cr_assert(eq(int, (int)packet.type, SIO_EVENT));
    assert_namespace("/");
    cr_assert(eq(i64, packet.ack_id, -1));
    assert_payload("[\"message:new\",{\"conversationId\":\"c1\",\"body\":\"hi\"}]");
    cr_assert(eq(str, (char *)sio_packet_event_name(&packet), "message:new"));
}

Test(sio_packet, decode_event_with_ack_id)
{
    cr_assert(eq(int, decode("212[\"typing\"]"), 0));
    cr_assert(eq(i64, packet.ack_id, 12));
    assert_payload("[\"typing\"]");

    cr_assert(eq(int, decode("2/admin,0[\"typing\",true]"), 0));
    assert_namespace("/admin");
    cr_assert(eq(i64, packet.ack_id, 0));
    assert_payload("[\"typing\",true]");
}

Test(sio_packet, decode_ack)
{
    cr_assert(eq(int, decode("312[\"ok\",{\"id\":\"m1\"}]"), 0));
    cr_assert(eq(int, (int)packet.type, SIO_ACK));
    cr_assert(eq(i64, packet.ack_id, 12));
    assert_payload("[\"ok\",{\"id\":\"m1\"}]");
    cr_assert(zero(ptr, (void *)sio_packet_event_name(&packet)));

    cr_assert(eq(int, decode("3/admin,13[]"), 0));
    assert_namespace("/admin");
    cr_assert(eq(i64, packet.ack_id, 13));
    assert_payload("[]");
}

Test(sio_packet, decode_connect_error)
{
    cr_assert(eq(int, decode("4{\"message\":\"Not authorized\",\"data\":{\"code\":401}}"), 0));
    cr_assert(eq(int, (int)packet.type, SIO_CONNECT_ERROR));
    assert_payload("{\"message\":\"Not authorized\",\"data\":{\"code\":401}}");
}

Test(sio_packet, decode_utf8_payload)
{
    cr_assert(eq(int, decode("2[\"message:new\",\"caf\xc3\xa9 \xf0\x9f\x98\x80\"]"), 0));
    cr_assert(eq(str, (char *)json_string_value(json_array_get(packet.payload, 1)), "caf\xc3\xa9 \xf0\x9f\x98\x80"));
}

Test(sio_packet, decode_ack_id_bounds)
{
    cr_assert(eq(int, decode("22147483647[\"x\"]"), 0));
    cr_assert(eq(i64, packet.ack_id, 2147483647));

    assert_rejected_text("22147483648[\"x\"]", SIO_ERR_INVALID_ACK_ID);
    assert_rejected_text("299999999999999999999999999999[\"x\"]", SIO_ERR_INVALID_ACK_ID);
    assert_rejected_text("32147483648[]", SIO_ERR_INVALID_ACK_ID);
}

Test(sio_packet, decode_rejects_misplaced_ack_id)
{
    assert_rejected_text("01{}", SIO_ERR_INVALID_ACK_ID);
    assert_rejected_text("01", SIO_ERR_INVALID_ACK_ID);
    assert_rejected_text("11", SIO_ERR_INVALID_ACK_ID);
    assert_rejected_text("41{\"message\":\"x\"}", SIO_ERR_INVALID_ACK_ID);
    assert_rejected_text("3[\"ok\"]", SIO_ERR_INVALID_ACK_ID);
}

Test(sio_packet, decode_rejects_binary)
{
    assert_rejected_text("51-[\"upload\",{\"_placeholder\":true,\"num\":0}]", SIO_ERR_BINARY_UNSUPPORTED);
    assert_rejected_text("51-/admin,12[\"upload\",{\"_placeholder\":true,\"num\":0}]", SIO_ERR_BINARY_UNSUPPORTED);
    assert_rejected_text("61-12[{\"_placeholder\":true,\"num\":0}]", SIO_ERR_BINARY_UNSUPPORTED);
    assert_rejected_text("5", SIO_ERR_BINARY_UNSUPPORTED);
}

Test(sio_packet, decode_rejects_empty)
{
    assert_rejected("", 0, SIO_ERR_EMPTY);
}

Test(sio_packet, decode_rejects_unknown_type)
{
    static const char *const inputs[] = {"7", "9[\"x\"]", "x", "[\"x\"]", " 2[\"x\"]", "b2", "{}"};

    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        assert_rejected_text(inputs[i], SIO_ERR_UNKNOWN_TYPE);
    assert_rejected("\0002", 2, SIO_ERR_UNKNOWN_TYPE);
}

Test(sio_packet, decode_rejects_invalid_json)
{
    static const char *const inputs[] = {
        "2[\"message:new\"",         /* truncated */
        "2[\"message:new\",{\"a\":", /* truncated inside an object */
        "2[",                        /* truncated after the bracket */
        "2garbage",                  /* not JSON */
        "2[\"a\"]x",                 /* trailing bytes */
        "2[\"a\"][\"b\"]",           /* two documents */
        "0{\"a\":1,\"a\":2}",        /* duplicate key */
        "2[\"a\\u0000b\"]",          /* NUL in a string */
        "2,[\"a\"]",                 /* ',' with no namespace */
        "0{orgKey:\"demo\"}",        /* unquoted key */
        "2[\"a\",]",                 /* trailing comma */
        "2['a']",                    /* single quotes */
    };

    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        assert_rejected_text(inputs[i], SIO_ERR_INVALID_JSON);
    assert_rejected("2[\"a\0b\"]", 8, SIO_ERR_INVALID_JSON);
}

Test(sio_packet, decode_rejects_deep_nesting)
{
    size_t depth = 100000;
    char *text = malloc(depth + 2);
    cr_assert(not(zero(ptr, text)));
    text[0] = '2';
    memset(text + 1, '[', depth);
    text[depth + 1] = '\0';

    assert_rejected(text, depth + 1, SIO_ERR_INVALID_JSON);
    free(text);
}

Test(sio_packet, decode_rejects_wrong_payload)
{
    static const char *const inputs[] = {
        "0[]", /* CONNECT auth must be an object */
        "0\"token\"",
        "1{}",    /* DISCONNECT has no payload */
        "2",      /* EVENT needs a payload */
        "2[]",    /* EVENT needs an event name */
        "2[1,2]", /* event name must be a string */
        "2[null]",
        "2{\"event\":\"x\"}",
        "2\"message:new\"",
        "2[\"connect\"]", /* reserved event names */
        "2[\"disconnect\",1]",
        "2[\"removeListener\"]",
        "312",   /* ACK needs a payload */
        "312{}", /* ACK payload must be an array */
        "4",     /* CONNECT_ERROR needs an object */
        "4\"Not authorized\"",
        "4[]",
    };

    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        assert_rejected_text(inputs[i], SIO_ERR_INVALID_PAYLOAD);
}

Test(sio_packet, decode_rejects_invalid_namespace)
{
    assert_rejected_text("0/ad\x01min,", SIO_ERR_INVALID_NAMESPACE);
    assert_rejected_text("0/admin\x7f,{}", SIO_ERR_INVALID_NAMESPACE);

    char text[SIO_MAX_NAMESPACE + 8];
    text[0] = '0';
    text[1] = '/';
    memset(text + 2, 'n', SIO_MAX_NAMESPACE);
    text[SIO_MAX_NAMESPACE + 2] = ',';
    assert_rejected(text, SIO_MAX_NAMESPACE + 3, SIO_ERR_INVALID_NAMESPACE);

    /* One byte shorter is the longest namespace accepted. */
    cr_assert(eq(int, decode_bytes(text + 1, SIO_MAX_NAMESPACE + 2), SIO_ERR_UNKNOWN_TYPE));
    text[SIO_MAX_NAMESPACE + 1] = ',';
    cr_assert(eq(int, decode_bytes(text, SIO_MAX_NAMESPACE + 2), 0));
    cr_assert(eq(sz, packet.namespace_len, SIO_MAX_NAMESPACE));
}

Test(sio_packet, decode_rejects_invalid_utf8)
{
    assert_rejected_text("2[\"message:new\",\"\xff\"]", SIO_ERR_INVALID_UTF8);
    assert_rejected_text("2[\"message:new\",\"\xc3\"]", SIO_ERR_INVALID_UTF8);
    assert_rejected_text("2[\"\xed\xa0\x80\"]", SIO_ERR_INVALID_UTF8);
    assert_rejected_text("0/\xc0\xaf,", SIO_ERR_INVALID_UTF8);
}

Test(sio_packet, decode_rejects_oversized)
{
    size_t len = SIO_MAX_PACKET + 1;
    char *text = malloc(len);
    cr_assert(not(zero(ptr, text)));
    memset(text, ' ', len);
    memcpy(text, "2[\"a\"", 5);
    text[len - 1] = ']';

    assert_rejected(text, len, SIO_ERR_TOO_LARGE);
    free(text);
}

/* Every proper prefix of a valid packet is either rejected or a shorter
 * valid packet, and decoding it never reads past its end. */
Test(sio_packet, decode_truncated_prefixes)
{
    static const char *const inputs[] = {
        "0/admin,{\"token\":\"123\"}",
        "2/admin,12[\"message:new\",{\"body\":\"caf\xc3\xa9\"}]",
        "312[\"ok\"]",
        "4{\"message\":\"Not authorized\"}",
    };

    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        size_t len = strlen(inputs[i]);
        cr_assert(eq(int, decode_bytes(inputs[i], len), 0), "packet %s", inputs[i]);
        for (size_t prefix = 0; prefix < len; prefix++) {
            int status = decode_bytes(inputs[i], prefix);
            if (status < 0)
                cr_assert(zero(ptr, packet.payload), "prefix %zu of %s", prefix, inputs[i]);
        }
    }

    /* Prefixes that cut the JSON payload are always rejected. */
    assert_rejected_text("2/admin,12[\"message:new\",{\"body\":\"caf\xc3", SIO_ERR_INVALID_UTF8);
    assert_rejected_text("312[\"ok\"", SIO_ERR_INVALID_JSON);
    assert_rejected_text("4{\"message\":\"Not", SIO_ERR_INVALID_JSON);
}

Test(sio_packet, release_twice)
{
    cr_assert(eq(int, decode("0{\"orgKey\":\"demo\"}"), 0));
    sio_packet_release(&packet);
    sio_packet_release(&packet);
    cr_assert(zero(ptr, packet.payload));
}

Test(sio_packet, encode_connect)
{
    cr_assert(eq(int, sio_encode_connect(&output, NULL, "abc"), 0));
    assert_output("0{\"sid\":\"abc\"}");
    eio_buffer_release(&output);

    cr_assert(eq(int, sio_encode_connect(&output, "/", "abc"), 0));
    assert_output("0{\"sid\":\"abc\"}");
    eio_buffer_release(&output);

    cr_assert(eq(int, sio_encode_connect(&output, "/admin", "abc"), 0));
    assert_output("0/admin,{\"sid\":\"abc\"}");
}

Test(sio_packet, encode_disconnect)
{
    cr_assert(eq(int, sio_encode_disconnect(&output, NULL), 0));
    assert_output("1");
    eio_buffer_release(&output);

    cr_assert(eq(int, sio_encode_disconnect(&output, "/admin"), 0));
    assert_output("1/admin,");
}

Test(sio_packet, encode_connect_error)
{
    cr_assert(eq(int, sio_encode_connect_error(&output, NULL, "Not authorized"), 0));
    assert_output("4{\"message\":\"Not authorized\"}");
    eio_buffer_release(&output);

    cr_assert(eq(int, sio_encode_connect_error(&output, "/admin", "say \"no\""), 0));
    assert_output("4/admin,{\"message\":\"say \\\"no\\\"\"}");
}

Test(sio_packet, encode_event_keeps_key_order)
{
    json_t *message =
        json_pack("{s:s, s:s, s:s, s:i}", "id", "m1", "conversationId", "c1", "body", "caf\xc3\xa9", "createdAt", 1700000000);
    cr_assert(not(zero(ptr, message)));

    int status = sio_encode_event(&output, NULL, "message:new", message, -1);
    cr_assert(eq(int, status, 0));
    assert_output("2[\"message:new\",{\"id\":\"m1\",\"conversationId\":\"c1\",\"body\":\"caf\xc3\xa9\","
                  "\"createdAt\":1700000000}]");

    /* The argument is borrowed, so the test still holds the only reference. */
    cr_assert(eq(sz, message->refcount, 1));
    json_decref(message);
}

Test(sio_packet, encode_event_variants)
{
    cr_assert(eq(int, sio_encode_event(&output, NULL, "typing", NULL, -1), 0));
    assert_output("2[\"typing\"]");
    eio_buffer_release(&output);

    json_t *flag = json_true();
    cr_assert(eq(int, sio_encode_event(&output, "/admin", "typing", flag, 7), 0));
    assert_output("2/admin,7[\"typing\",true]");
    eio_buffer_release(&output);

    json_t *text = json_string("a\x1e"
                               "b");
    cr_assert(eq(int, sio_encode_event(&output, NULL, "say", text, -1), 0));
    assert_output("2[\"say\",\"a\\u001Eb\"]");
    json_decref(text);
}

Test(sio_packet, encode_ack)
{
    json_t *arguments = json_pack("[s, {s:s}]", "ok", "id", "m1");
    cr_assert(not(zero(ptr, arguments)));

    cr_assert(eq(int, sio_encode_ack(&output, NULL, 12, arguments), 0));
    assert_output("312[\"ok\",{\"id\":\"m1\"}]");
    eio_buffer_release(&output);

    cr_assert(eq(int, sio_encode_ack(&output, "/admin", 0, arguments), 0));
    assert_output("3/admin,0[\"ok\",{\"id\":\"m1\"}]");
    json_decref(arguments);
}

Test(sio_packet, encode_rejects_bad_arguments)
{
    json_t *object = json_object();
    json_t *array = json_array();

    cr_assert(eq(int, sio_encode_connect(&output, "admin", "abc"), SIO_ERR_INVALID_NAMESPACE));
    cr_assert(eq(int, sio_encode_connect(&output, "/a,b", "abc"), SIO_ERR_INVALID_NAMESPACE));
    cr_assert(eq(int, sio_encode_connect(&output, "", "abc"), SIO_ERR_INVALID_NAMESPACE));
    cr_assert(eq(int, sio_encode_disconnect(&output, "/a\nb"), SIO_ERR_INVALID_NAMESPACE));
    cr_assert(eq(int, sio_encode_connect(&output, NULL, ""), SIO_ERR_INVALID_ARGUMENT));
    cr_assert(eq(int, sio_encode_connect(&output, NULL, NULL), SIO_ERR_INVALID_ARGUMENT));
    cr_assert(eq(int, sio_encode_connect_error(&output, NULL, NULL), SIO_ERR_INVALID_ARGUMENT));
    cr_assert(eq(int, sio_encode_event(&output, NULL, "connect", NULL, -1), SIO_ERR_INVALID_ARGUMENT));
    cr_assert(eq(int, sio_encode_event(&output, NULL, "\xff", NULL, -1), SIO_ERR_INVALID_ARGUMENT));
    cr_assert(eq(int, sio_encode_event(&output, NULL, NULL, NULL, -1), SIO_ERR_INVALID_ARGUMENT));
    cr_assert(eq(int, sio_encode_event(&output, NULL, "x", NULL, -2), SIO_ERR_INVALID_ARGUMENT));
    cr_assert(eq(int, sio_encode_event(&output, NULL, "x", NULL, (int64_t)SIO_MAX_ACK_ID + 1), SIO_ERR_INVALID_ARGUMENT));
    cr_assert(eq(int, sio_encode_ack(&output, NULL, 1, object), SIO_ERR_INVALID_ARGUMENT));
    cr_assert(eq(int, sio_encode_ack(&output, NULL, 1, NULL), SIO_ERR_INVALID_ARGUMENT));
    cr_assert(eq(int, sio_encode_ack(&output, NULL, -1, array), SIO_ERR_INVALID_ARGUMENT));
    cr_assert(eq(sz, output.len, 0));

    json_decref(object);
    json_decref(array);
}

/* Decodes what an encoder wrote and checks type, namespace and ack id. */
static void assert_round_trip(sio_packet_type type, const char *namespace, int64_t ack_id)
{
    cr_assert(eq(int, decode_bytes(output.data, output.len), 0), "packet %s", output.data);
    cr_assert(eq(int, (int)packet.type, (int)type), "packet %s", output.data);
    assert_namespace(namespace);
    cr_assert(eq(i64, packet.ack_id, ack_id), "packet %s", output.data);
    eio_buffer_release(&output);
}

Test(sio_packet, round_trip_every_type)
{
    json_t *argument = json_pack("{s:s}", "body", "hi");
    json_t *arguments = json_pack("[s]", "ok");
    cr_assert(not(zero(ptr, argument)));
    cr_assert(not(zero(ptr, arguments)));

    cr_assert(eq(int, sio_encode_connect(&output, "/chat", "abc"), 0));
    assert_round_trip(SIO_CONNECT, "/chat", -1);
    cr_assert(eq(str, (char *)json_string_value(json_object_get(packet.payload, "sid")), "abc"));

    cr_assert(eq(int, sio_encode_disconnect(&output, NULL), 0));
    assert_round_trip(SIO_DISCONNECT, "/", -1);
    cr_assert(zero(ptr, packet.payload));

    cr_assert(eq(int, sio_encode_event(&output, NULL, "message:new", argument, 42), 0));
    assert_round_trip(SIO_EVENT, "/", 42);
    cr_assert(eq(str, (char *)sio_packet_event_name(&packet), "message:new"));
    cr_assert(json_equal(json_array_get(packet.payload, 1), argument));

    cr_assert(eq(int, sio_encode_ack(&output, "/chat", 42, arguments), 0));
    assert_round_trip(SIO_ACK, "/chat", 42);
    cr_assert(json_equal(packet.payload, arguments));

    cr_assert(eq(int, sio_encode_connect_error(&output, NULL, "Not authorized"), 0));
    assert_round_trip(SIO_CONNECT_ERROR, "/", -1);
    cr_assert(eq(str, (char *)json_string_value(json_object_get(packet.payload, "message")), "Not authorized"));

    json_decref(argument);
    json_decref(arguments);
}

/* The handshake of a stock socket.io-client over WebSocket, as Engine.IO
 * frames: the CONNECT with auth, the reply, and an event in each direction. */
Test(sio_packet, client_handshake_frames)
{
    const char *connect_frame = "40{\"orgKey\":\"demo\"}";
    eio_packet frame;
    cr_assert(eq(int, eio_packet_decode(connect_frame, strlen(connect_frame), &frame), 0));
    cr_assert(eq(int, (int)frame.type, EIO_MESSAGE));
    cr_assert(eq(int, sio_packet_decode(frame.data, frame.data_len, &packet), 0));
    cr_assert(eq(int, (int)packet.type, SIO_CONNECT));
    cr_assert(eq(str, (char *)json_string_value(json_object_get(packet.payload, "orgKey")), "demo"));

    cr_assert(eq(int, eio_buffer_append(&output, "4", 1), 0));
    cr_assert(eq(int, sio_encode_connect(&output, NULL, "abc"), 0));
    assert_output("40{\"sid\":\"abc\"}");
    eio_buffer_release(&output);

    const char *event_frame = "421[\"message:send\",{\"body\":\"hello\"}]";
    sio_packet_release(&packet);
    cr_assert(eq(int, eio_packet_decode(event_frame, strlen(event_frame), &frame), 0));
    cr_assert(eq(int, sio_packet_decode(frame.data, frame.data_len, &packet), 0));
    cr_assert(eq(str, (char *)sio_packet_event_name(&packet), "message:send"));
    cr_assert(eq(i64, packet.ack_id, 1));

    json_t *message = json_pack("{s:s, s:s}", "id", "m1", "body", "hello");
    cr_assert(eq(int, eio_buffer_append(&output, "4", 1), 0));
    cr_assert(eq(int, sio_encode_event(&output, NULL, "message:new", message, -1), 0));
    assert_output("42[\"message:new\",{\"id\":\"m1\",\"body\":\"hello\"}]");
    json_decref(message);
}

Test(sio_packet, error_messages)
{
    cr_assert(eq(str, (char *)sio_error_message(SIO_ERR_BINARY_UNSUPPORTED), "binary packets are not supported"));
    cr_assert(eq(str, (char *)sio_error_message(1), "unknown error"));
}
