/* Unit tests of the gateway's response encoding (gateway/http.c): the
 * reason phrases and the {"error": message} JSON body, built in an h2o
 * memory pool without a server. */
#include "http.h"

#include "body.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <h2o/memory.h>
#include <jansson.h>
#include <string.h>

/* The pool of the current test, cleared after each test. */
static h2o_mem_pool_t pool;

static void setup(void)
{
    h2o_mem_init_pool(&pool);
}

static void teardown(void)
{
    h2o_mem_clear_pool(&pool);
}

TestSuite(http_encoding, .init = setup, .fini = teardown);

/* Encodes `message` and returns the body as a C string. The body itself is
 * not NUL-terminated. */
static char *encode(const char *message)
{
    h2o_iovec_t body = http_error_json(&pool, message);
    cr_assert(not(zero(ptr, body.base)));

    char *text = h2o_mem_alloc_pool(&pool, body.len + 1);
    memcpy(text, body.base, body.len);
    text[body.len] = '\0';
    return text;
}

/* Asserts that the body of `message` decodes back to an object whose only
 * member is "error" with exactly `message`. */
static void assert_round_trip(const char *message)
{
    h2o_iovec_t body = http_error_json(&pool, message);
    json_error_t error;
    json_t *decoded = json_loadb(body.base, body.len, 0, &error);
    cr_assert(not(zero(ptr, decoded)), "body of \"%s\" is not JSON: %s", message, error.text);
    cr_assert(eq(int, json_is_object(decoded), 1));
    cr_assert(eq(sz, json_object_size(decoded), 1));

    json_t *value = json_object_get(decoded, "error");
    cr_assert(eq(int, json_is_string(value), 1));
    cr_assert(eq(sz, json_string_length(value), strlen(message)));
    cr_assert(eq(str, (char *)json_string_value(value), (char *)message));
    json_decref(decoded);
}

/* --- Error bodies ------------------------------------------------------------ */

Test(http_encoding, error_body_is_compact_object)
{
    cr_assert(eq(str, encode("Not found"), "{\"error\":\"Not found\"}"));
}

Test(http_encoding, error_body_length_excludes_terminator)
{
    h2o_iovec_t body = http_error_json(&pool, "Not found");
    cr_assert(eq(sz, body.len, strlen("{\"error\":\"Not found\"}")));
}

Test(http_encoding, escapes_quotes)
{
    cr_assert(eq(str, encode("say \"hi\""), "{\"error\":\"say \\\"hi\\\"\"}"));
    assert_round_trip("say \"hi\"");
}

Test(http_encoding, escapes_backslashes)
{
    cr_assert(eq(str, encode("a\\b\\"), "{\"error\":\"a\\\\b\\\\\"}"));
    assert_round_trip("a\\b\\");
}

Test(http_encoding, escapes_common_control_characters)
{
    cr_assert(eq(str, encode("a\nb\tc\rd\be\f"), "{\"error\":\"a\\nb\\tc\\rd\\be\\f\"}"));
    assert_round_trip("a\nb\tc\rd\be\f");
}

Test(http_encoding, escapes_other_control_characters)
{
    /* Jansson writes other control characters as \u escapes with upper
     * case hex digits. */
    cr_assert(eq(str, encode("\x01-\x1f"), "{\"error\":\"\\u0001-\\u001F\"}"));
    assert_round_trip("\x01-\x1f\x7f");
}

Test(http_encoding, keeps_utf8_unescaped)
{
    const char *message = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    cr_assert(eq(str, encode(message), "{\"error\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}"));
    assert_round_trip(message);
}

Test(http_encoding, keeps_slash_and_angle_brackets)
{
    cr_assert(eq(str, encode("</script> a/b"), "{\"error\":\"</script> a/b\"}"));
}

Test(http_encoding, empty_message_gives_empty_string)
{
    cr_assert(eq(str, encode(""), "{\"error\":\"\"}"));
}

Test(http_encoding, long_message_round_trips)
{
    /* Larger than the 4 KiB chunks of h2o's pool (lib/common/memory.c), so
     * it takes a separate allocation. */
    const size_t len = 20000;
    char *message = h2o_mem_alloc_pool(&pool, len + 1);
    for (size_t i = 0; i < len; i++)
        message[i] = (char)('a' + i % 26);
    message[len] = '\0';

    h2o_iovec_t body = http_error_json(&pool, message);
    cr_assert(eq(sz, body.len, len + strlen("{\"error\":\"\"}")));
    assert_round_trip(message);
}

Test(http_encoding, contract_messages_round_trip)
{
    const char *messages[] = {
        BODY_ERROR_INVALID_JSON,
        BODY_ERROR_MISSING_FIELDS,
        BODY_ERROR_INVALID_ROLE,
        BODY_ERROR_NUL,
        "Not found",
        "Method not allowed",
        "Missing x-org-key header",
        "Invalid organization key",
        "Invalid limit. Must be an integer from 1 to 200",
        "Request body too large",
        "Store unavailable",
        "Internal server error",
    };

    for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++)
        assert_round_trip(messages[i]);
}

Test(http_encoding, invalid_utf8_message_gives_empty_body)
{
    /* json_pack fails on a string that is not UTF-8, so there is nothing to
     * encode. Every message the gateway sends is an ASCII constant. */
    h2o_iovec_t body = http_error_json(&pool, "bad \xff byte");
    cr_assert(eq(sz, body.len, 0));
}

/* --- Reason phrases ------------------------------------------------------------- */

Test(http_encoding, reason_of_each_gateway_status)
{
    const struct {
        int status;
        const char *reason;
    } cases[] = {
        {200, "OK"},
        {201, "Created"},
        {204, "No Content"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {413, "Payload Too Large"},
        {500, "Internal Server Error"},
        {503, "Service Unavailable"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert(eq(str, (char *)http_reason(cases[i].status), (char *)cases[i].reason), "status %d", cases[i].status);
}

Test(http_encoding, reason_of_unknown_status)
{
    const int statuses[] = {0, -1, 100, 302, 418, 502, 999};

    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        cr_assert(eq(str, (char *)http_reason(statuses[i]), "Unknown"), "status %d", statuses[i]);
}
