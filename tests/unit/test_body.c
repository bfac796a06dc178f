/* Unit tests of request body and query validation (gateway/body.c). The
 * error strings are part of the HTTP contract, so each test compares them
 * exactly. */
#include "body.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

/* The body of the current test, released after each test. */
static message_body message;

static void teardown(void)
{
    message_body_release(&message);
}

TestSuite(body, .fini = teardown);

/* Parses a heap copy of exactly `len` bytes, so that AddressSanitizer
 * reports a read past the end of the body. */
static const char *parse_bytes(const char *data, size_t len)
{
    char *copy = malloc(len > 0 ? len : 1);
    cr_assert(not(zero(ptr, copy)));
    memcpy(copy, data, len);
    const char *error = message_body_parse(copy, len, &message);
    free(copy);
    return error;
}

static const char *parse(const char *text)
{
    return parse_bytes(text, strlen(text));
}

/* Asserts that `text` is rejected with `expected` and leaves `message`
 * empty. */
static void assert_rejected(const char *text, size_t len, const char *expected)
{
    const char *error = parse_bytes(text, len);
    cr_assert(not(zero(ptr, (void *)error)), "body %.*s was accepted", (int)len, text);
    cr_assert(eq(str, (char *)error, (char *)expected), "body %.*s", (int)len, text);
    cr_assert(zero(ptr, message.document));
    cr_assert(zero(ptr, (void *)message.role));
    cr_assert(zero(ptr, (void *)message.content));
    cr_assert(eq(sz, message.content_len, 0));
}

static void assert_rejected_text(const char *text, const char *expected)
{
    assert_rejected(text, strlen(text), expected);
}

/* Asserts that `text` parses and that the content is `content_len` bytes
 * equal to `content`. */
static void assert_content(const char *text, const char *content, size_t content_len)
{
    const char *error = parse(text);
    cr_assert(zero(ptr, (void *)error), "body %s was rejected: %s", text, error ? error : "");
    cr_assert(eq(sz, message.content_len, content_len), "body %s", text);
    cr_assert(eq(int, memcmp(message.content, content, content_len), 0), "body %s", text);
    cr_assert(eq(int, message.content[content_len], '\0'), "body %s", text);
    message_body_release(&message);
}

/* --- Valid messages ------------------------------------------------------- */

Test(body, accepts_user_message)
{
    cr_assert(zero(ptr, (void *)parse("{\"role\":\"user\",\"content\":\"Hello\"}")));

    cr_assert(not(zero(ptr, message.document)));
    cr_assert(eq(str, (char *)message.role, "user"));
    cr_assert(eq(str, (char *)message.content, "Hello"));
    cr_assert(eq(sz, message.content_len, 5));
}

Test(body, accepts_assistant_message)
{
    cr_assert(zero(ptr, (void *)parse("{ \"content\" : \"Hi, how can I help?\" , \"role\" : \"assistant\" }\n")));

    cr_assert(eq(str, (char *)message.role, "assistant"));
    cr_assert(eq(str, (char *)message.content, "Hi, how can I help?"));
    cr_assert(eq(sz, message.content_len, 19));
}

Test(body, role_and_content_point_into_document)
{
    cr_assert(zero(ptr, (void *)parse("{\"role\":\"user\",\"content\":\"Hello\"}")));

    json_t *role = json_object_get(message.document, "role");
    json_t *content = json_object_get(message.document, "content");
    cr_assert(eq(ptr, (void *)message.role, (void *)json_string_value(role)));
    cr_assert(eq(ptr, (void *)message.content, (void *)json_string_value(content)));
}

Test(body, ignores_unknown_fields)
{
    cr_assert(zero(ptr, (void *)parse("{\"id\":7,\"role\":\"user\",\"meta\":{\"a\":[1,null]},\"content\":\"x\",\"z\":null}")));

    cr_assert(eq(str, (char *)message.role, "user"));
    cr_assert(eq(str, (char *)message.content, "x"));
}

Test(body, decodes_escaped_quotes_and_backslash)
{
    const char expected[] = "say \"hi\" \\ ok";
    assert_content("{\"role\":\"user\",\"content\":\"say \\\"hi\\\" \\\\ ok\"}", expected, sizeof(expected) - 1);
}

Test(body, decodes_control_escapes)
{
    const char expected[] = "a\nb\tc\rd\be\ff/g";
    assert_content("{\"role\":\"user\",\"content\":\"a\\nb\\tc\\rd\\be\\ff\\/g\"}", expected, sizeof(expected) - 1);
}

Test(body, decodes_unicode_escapes_to_utf8)
{
    /* U+00E9 takes two bytes in UTF-8 and U+20AC three. */
    const char expected[] = "caf\xc3\xa9 \xe2\x82\xac";
    assert_content("{\"role\":\"user\",\"content\":\"caf\\u00e9 \\u20AC\"}", expected, sizeof(expected) - 1);
}

Test(body, decodes_surrogate_pair_to_four_bytes)
{
    /* U+1F600 is the pair D83D DE00 in JSON and F0 9F 98 80 in UTF-8. */
    const char expected[] = "\xf0\x9f\x98\x80";
    assert_content("{\"role\":\"user\",\"content\":\"\\ud83d\\ude00\"}", expected, 4);
}

Test(body, keeps_raw_utf8)
{
    const char expected[] = "h\xc3\xa9llo \xf0\x9f\x98\x80";
    assert_content("{\"role\":\"user\",\"content\":\"h\xc3\xa9llo \xf0\x9f\x98\x80\"}", expected, sizeof(expected) - 1);
}

Test(body, accepts_whitespace_content)
{
    /* Only an empty string counts as missing. */
    assert_content("{\"role\":\"user\",\"content\":\" \"}", " ", 1);
}

Test(body, accepts_large_content)
{
    const size_t content_len = 64 * 1024;
    const char prefix[] = "{\"role\":\"user\",\"content\":\"";
    const char suffix[] = "\"}";
    size_t len = sizeof(prefix) - 1 + content_len + sizeof(suffix) - 1;

    char *text = malloc(len + 1);
    cr_assert(not(zero(ptr, text)));
    memcpy(text, prefix, sizeof(prefix) - 1);
    memset(text + sizeof(prefix) - 1, 'a', content_len);
    memcpy(text + sizeof(prefix) - 1 + content_len, suffix, sizeof(suffix));

    const char *error = parse_bytes(text, len);
    free(text);
    cr_assert(zero(ptr, (void *)error));
    cr_assert(eq(sz, message.content_len, content_len));
    cr_assert(eq(int, message.content[0], 'a'));
    cr_assert(eq(int, message.content[content_len - 1], 'a'));
}

Test(body, reads_only_given_length)
{
    const char text[] = "{\"role\":\"user\",\"content\":\"hi\"}trailing bytes";
    cr_assert(zero(ptr, (void *)parse_bytes(text, strlen("{\"role\":\"user\",\"content\":\"hi\"}"))));
    cr_assert(eq(str, (char *)message.content, "hi"));
}

Test(body, later_duplicate_key_wins)
{
    /* Jansson keeps the last of duplicate keys unless JSON_REJECT_DUPLICATES
     * is set. */
    cr_assert(zero(ptr, (void *)parse("{\"role\":\"system\",\"role\":\"user\",\"content\":\"a\",\"content\":\"b\"}")));
    cr_assert(eq(str, (char *)message.role, "user"));
    cr_assert(eq(str, (char *)message.content, "b"));
    message_body_release(&message);

    assert_rejected_text("{\"role\":\"user\",\"role\":\"system\",\"content\":\"a\"}", BODY_ERROR_INVALID_ROLE);
    assert_rejected_text("{\"role\":\"user\",\"content\":\"a\",\"content\":\"\"}", BODY_ERROR_MISSING_FIELDS);
}

/* --- Missing fields --------------------------------------------------------- */

Test(body, empty_body_is_missing_fields)
{
    assert_rejected("", 0, BODY_ERROR_MISSING_FIELDS);

    const char *error = message_body_parse(NULL, 0, &message);
    cr_assert(eq(str, (char *)error, BODY_ERROR_MISSING_FIELDS));
}

Test(body, empty_object_is_missing_fields)
{
    assert_rejected_text("{}", BODY_ERROR_MISSING_FIELDS);
}

Test(body, missing_role_is_rejected)
{
    assert_rejected_text("{\"content\":\"Hello\"}", BODY_ERROR_MISSING_FIELDS);
}

Test(body, missing_content_is_rejected)
{
    assert_rejected_text("{\"role\":\"user\"}", BODY_ERROR_MISSING_FIELDS);
}

Test(body, empty_role_is_missing)
{
    assert_rejected_text("{\"role\":\"\",\"content\":\"Hello\"}", BODY_ERROR_MISSING_FIELDS);
}

Test(body, empty_content_is_missing)
{
    assert_rejected_text("{\"role\":\"user\",\"content\":\"\"}", BODY_ERROR_MISSING_FIELDS);
}

Test(body, role_that_is_not_string_is_missing)
{
    const char *bodies[] = {
        "{\"role\":1,\"content\":\"Hello\"}",          "{\"role\":null,\"content\":\"Hello\"}",
        "{\"role\":[\"user\"],\"content\":\"Hello\"}", "{\"role\":{\"v\":\"user\"},\"content\":\"Hello\"}",
        "{\"role\":true,\"content\":\"Hello\"}",
    };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        assert_rejected_text(bodies[i], BODY_ERROR_MISSING_FIELDS);
}

Test(body, content_that_is_not_string_is_missing)
{
    const char *bodies[] = {
        "{\"role\":\"user\",\"content\":1}",       "{\"role\":\"user\",\"content\":null}",
        "{\"role\":\"user\",\"content\":[\"a\"]}", "{\"role\":\"user\",\"content\":{\"text\":\"a\"}}",
        "{\"role\":\"user\",\"content\":false}",
    };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        assert_rejected_text(bodies[i], BODY_ERROR_MISSING_FIELDS);
}

Test(body, missing_fields_come_before_invalid_role)
{
    assert_rejected_text("{\"role\":\"system\"}", BODY_ERROR_MISSING_FIELDS);
}

/* --- Invalid roles ------------------------------------------------------------ */

Test(body, unknown_role_is_invalid)
{
    assert_rejected_text("{\"role\":\"system\",\"content\":\"Hello\"}", BODY_ERROR_INVALID_ROLE);
}

Test(body, role_is_case_sensitive)
{
    assert_rejected_text("{\"role\":\"User\",\"content\":\"Hello\"}", BODY_ERROR_INVALID_ROLE);
    assert_rejected_text("{\"role\":\"ASSISTANT\",\"content\":\"Hello\"}", BODY_ERROR_INVALID_ROLE);
}

Test(body, role_with_whitespace_is_invalid)
{
    assert_rejected_text("{\"role\":\"user \",\"content\":\"Hello\"}", BODY_ERROR_INVALID_ROLE);
    assert_rejected_text("{\"role\":\" user\",\"content\":\"Hello\"}", BODY_ERROR_INVALID_ROLE);
}

Test(body, role_with_nul_is_invalid)
{
    assert_rejected_text("{\"role\":\"user\\u0000\",\"content\":\"Hello\"}", BODY_ERROR_INVALID_ROLE);
    assert_rejected_text("{\"role\":\"\\u0000\",\"content\":\"Hello\"}", BODY_ERROR_INVALID_ROLE);
}

Test(body, invalid_role_comes_before_nul_content)
{
    assert_rejected_text("{\"role\":\"system\",\"content\":\"a\\u0000b\"}", BODY_ERROR_INVALID_ROLE);
}

/* --- Invalid JSON ----------------------------------------------------------------- */

Test(body, malformed_json_is_invalid)
{
    const char *bodies[] = {
        "{",
        "not json",
        "{role:\"user\",content:\"Hello\"}",
        "{\"role\":\"user\",\"content\":\"Hello\",}",
        "{\"role\":'user',\"content\":\"Hello\"}",
        "{\"role\":\"user\" \"content\":\"Hello\"}",
        "{\"role\":\"user\",\"content\":\"Hello\"} {}",
    };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        assert_rejected_text(bodies[i], BODY_ERROR_INVALID_JSON);
}

Test(body, truncated_json_is_invalid)
{
    const char text[] = "{\"role\":\"user\",\"content\":\"Hello\"}";

    for (size_t len = 1; len < sizeof(text) - 1; len++)
        assert_rejected(text, len, BODY_ERROR_INVALID_JSON);
}

Test(body, top_level_non_object_is_invalid)
{
    const char *bodies[] = {"[]", "[{\"role\":\"user\",\"content\":\"Hello\"}]", "\"user\"", "42", "null", "true"};

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        assert_rejected_text(bodies[i], BODY_ERROR_INVALID_JSON);
}

Test(body, whitespace_body_is_missing_fields)
{
    /* White space alone counts as an empty object, like an empty body. */
    assert_rejected_text(" ", BODY_ERROR_MISSING_FIELDS);
    assert_rejected_text("\r\n", BODY_ERROR_MISSING_FIELDS);
}

Test(body, invalid_utf8_is_invalid)
{
    const char *bodies[] = {
        "{\"role\":\"user\",\"content\":\"\xff\"}",
        "{\"role\":\"user\",\"content\":\"a\xc3\"}",            /* truncated sequence */
        "{\"role\":\"user\",\"content\":\"\xc0\xaf\"}",         /* overlong '/' */
        "{\"role\":\"user\",\"content\":\"\xed\xa0\x80\"}",     /* encoded surrogate */
        "{\"role\":\"user\",\"content\":\"\xf4\x90\x80\x80\"}", /* above U+10FFFF */
        "{\"role\":\"us\xff\",\"content\":\"Hello\"}",
    };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        assert_rejected_text(bodies[i], BODY_ERROR_INVALID_JSON);
}

Test(body, lone_surrogate_is_invalid)
{
    const char *bodies[] = {
        "{\"role\":\"user\",\"content\":\"\\ud800\"}",        "{\"role\":\"user\",\"content\":\"\\udc00\"}",
        "{\"role\":\"user\",\"content\":\"\\ud800x\"}",       "{\"role\":\"user\",\"content\":\"\\ud800\\u0041\"}",
        "{\"role\":\"user\",\"content\":\"\\ude00\\ud83d\"}",
    };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        assert_rejected_text(bodies[i], BODY_ERROR_INVALID_JSON);
}

Test(body, bad_escape_is_invalid)
{
    assert_rejected_text("{\"role\":\"user\",\"content\":\"\\x41\"}", BODY_ERROR_INVALID_JSON);
    assert_rejected_text("{\"role\":\"user\",\"content\":\"\\u12\"}", BODY_ERROR_INVALID_JSON);
}

Test(body, raw_control_character_is_invalid)
{
    assert_rejected_text("{\"role\":\"user\",\"content\":\"a\nb\"}", BODY_ERROR_INVALID_JSON);
    assert_rejected_text("{\"role\":\"user\",\"content\":\"a\x01"
                         "b\"}",
                         BODY_ERROR_INVALID_JSON);
}

Test(body, raw_nul_byte_is_invalid)
{
    const char text[] = "{\"role\":\"user\",\"content\":\"a\0b\"}";
    assert_rejected(text, sizeof(text) - 1, BODY_ERROR_INVALID_JSON);
}

/* --- NUL in content ---------------------------------------------------------------- */

Test(body, escaped_nul_in_content_is_rejected)
{
    assert_rejected_text("{\"role\":\"user\",\"content\":\"a\\u0000b\"}", BODY_ERROR_NUL);
    assert_rejected_text("{\"role\":\"user\",\"content\":\"\\u0000\"}", BODY_ERROR_NUL);
    assert_rejected_text("{\"role\":\"assistant\",\"content\":\"end\\u0000\"}", BODY_ERROR_NUL);
}

Test(body, error_messages_match_contract)
{
    cr_assert(eq(str, BODY_ERROR_INVALID_JSON, "Invalid JSON body"));
    cr_assert(eq(str, BODY_ERROR_MISSING_FIELDS, "Missing required fields: role, content"));
    cr_assert(eq(str, BODY_ERROR_INVALID_ROLE, "Invalid role. Must be 'user' or 'assistant'"));
    cr_assert(eq(str, BODY_ERROR_NUL, "Content must not contain NUL characters"));
}

/* --- Release ------------------------------------------------------------------------ */

Test(body, release_twice_is_safe)
{
    cr_assert(zero(ptr, (void *)parse("{\"role\":\"user\",\"content\":\"Hello\"}")));

    message_body_release(&message);
    cr_assert(zero(ptr, message.document));
    cr_assert(zero(ptr, (void *)message.role));
    cr_assert(zero(ptr, (void *)message.content));
    message_body_release(&message);
}

Test(body, release_of_zeroed_body_is_safe)
{
    message_body empty = {0};
    message_body_release(&empty);
    cr_assert(zero(ptr, empty.document));
}

Test(body, parse_replaces_previous_output)
{
    /* The caller releases a parsed body before reusing the struct. A failed
     * parse leaves nothing to release. */
    cr_assert(zero(ptr, (void *)parse("{\"role\":\"user\",\"content\":\"one\"}")));
    message_body_release(&message);
    cr_assert(eq(str, (char *)parse("{}"), BODY_ERROR_MISSING_FIELDS));
    cr_assert(zero(ptr, message.document));
}

/* --- Conversation bodies ------------------------------------------------------------- */

Test(body, conversation_body_may_be_empty)
{
    cr_assert(zero(ptr, (void *)conversation_body_check(NULL, 0)));
    cr_assert(zero(ptr, (void *)conversation_body_check("", 0)));
}

Test(body, conversation_body_may_be_whitespace)
{
    const char *bodies[] = {" ", "\n", "\r\n", " \t\r\n "};

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        cr_assert(zero(ptr, (void *)conversation_body_check(bodies[i], strlen(bodies[i]))), "body \"%s\"", bodies[i]);
}

Test(body, conversation_body_may_be_object)
{
    const char *bodies[] = {"{}", "{\"a\":1}", " { } \n", "{\"title\":\"Support\",\"tags\":[1,2]}"};

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        cr_assert(zero(ptr, (void *)conversation_body_check(bodies[i], strlen(bodies[i]))), "body %s", bodies[i]);
}

Test(body, conversation_body_may_contain_escaped_nul)
{
    /* "\u0000" is valid JSON, and the body of POST /conversations is
     * ignored, so nothing needs to hold the NUL. */
    const char text[] = "{\"title\":\"a\\u0000b\"}";
    cr_assert(zero(ptr, (void *)conversation_body_check(text, strlen(text))));
}

Test(body, conversation_body_must_be_object)
{
    const char *bodies[] = {"[]", "\"x\"", "{", "null", "1", "true", "{} {}", "{\"a\":}", "\xff", "{\"a\":\"\xff\"}"};

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        const char *error = conversation_body_check(bodies[i], strlen(bodies[i]));
        cr_assert(not(zero(ptr, (void *)error)), "body %s was accepted", bodies[i]);
        cr_assert(eq(str, (char *)error, BODY_ERROR_INVALID_JSON), "body %s", bodies[i]);
    }
}

Test(body, conversation_body_reads_only_given_length)
{
    const char text[] = "{}garbage";
    cr_assert(zero(ptr, (void *)conversation_body_check(text, 2)));
    cr_assert(eq(str, (char *)conversation_body_check(text, 1), BODY_ERROR_INVALID_JSON));
}

/* --- Query parameters ----------------------------------------------------------------- */

/* Looks `name` up in `query` and returns its value as a C string, or NULL
 * when absent. */
static char *param(const char *query, const char *name)
{
    static char value[64];
    size_t value_len = 12345;

    const char *found = query_param(query, strlen(query), name, &value_len);
    if (!found)
        return NULL;
    cr_assert(lt(sz, value_len, sizeof(value)));
    cr_assert(ge(ptr, (void *)found, (void *)query));
    cr_assert(le(ptr, (void *)(found + value_len), (void *)(query + strlen(query))));
    memcpy(value, found, value_len);
    value[value_len] = '\0';
    return value;
}

Test(body, query_param_finds_first_middle_and_last)
{
    const char *query = "limit=10&cursor=abc&order=desc";

    cr_assert(eq(str, param(query, "limit"), "10"));
    cr_assert(eq(str, param(query, "cursor"), "abc"));
    cr_assert(eq(str, param(query, "order"), "desc"));
}

Test(body, query_param_finds_only_param)
{
    cr_assert(eq(str, param("limit=5", "limit"), "5"));
}

Test(body, query_param_returns_pointer_into_query)
{
    const char *query = "a=1&limit=25";
    size_t value_len = 0;

    const char *value = query_param(query, strlen(query), "limit", &value_len);
    cr_assert(eq(ptr, (void *)value, (void *)(query + 10)));
    cr_assert(eq(sz, value_len, 2));
}

Test(body, query_param_absent_returns_null)
{
    cr_assert(zero(ptr, param("cursor=abc", "limit")));
    cr_assert(zero(ptr, param("", "limit")));
    cr_assert(zero(ptr, param("&&&", "limit")));
}

Test(body, query_param_does_not_match_prefix)
{
    cr_assert(zero(ptr, param("limitx=1", "limit")));
    cr_assert(zero(ptr, param("xlimit=1", "limit")));
    cr_assert(zero(ptr, param("limit=1", "limi")));
    cr_assert(eq(str, param("limitx=1&limit=2", "limit"), "2"));
}

Test(body, query_param_without_equals_is_absent)
{
    cr_assert(zero(ptr, param("limit", "limit")));
    cr_assert(zero(ptr, param("limit&cursor=a", "limit")));
}

Test(body, query_param_may_be_empty)
{
    size_t value_len = 12345;
    const char *query = "limit=&cursor=a";

    const char *value = query_param(query, strlen(query), "limit", &value_len);
    cr_assert(not(zero(ptr, (void *)value)));
    cr_assert(eq(sz, value_len, 0));
    cr_assert(eq(str, param("cursor=a&limit=", "limit"), ""));
}

Test(body, query_param_first_repeat_wins)
{
    cr_assert(eq(str, param("limit=1&limit=2", "limit"), "1"));
}

Test(body, query_param_skips_empty_pairs)
{
    cr_assert(eq(str, param("&&limit=3&", "limit"), "3"));
    cr_assert(eq(str, param("a=1&&limit=4", "limit"), "4"));
}

Test(body, query_param_keeps_raw_value)
{
    /* Values are not percent-decoded, and names are matched as sent. */
    cr_assert(eq(str, param("cursor=a%3Db%26c", "cursor"), "a%3Db%26c"));
    cr_assert(eq(str, param("cursor=a=b", "cursor"), "a=b"));
    cr_assert(zero(ptr, param("li%6Dit=5", "limit")));
}

Test(body, query_param_reads_only_given_length)
{
    const char query[] = "a=1&limit=20";
    size_t value_len = 0;

    cr_assert(zero(ptr, (void *)query_param(query, 3, "limit", &value_len)));

    const char *value = query_param(query, strlen(query) - 1, "limit", &value_len);
    cr_assert(not(zero(ptr, (void *)value)));
    cr_assert(eq(sz, value_len, 1));
    cr_assert(eq(int, value[0], '2'));
}

/* --- Page size -------------------------------------------------------------------------- */

static long limit_of(const char *text)
{
    return parse_limit(text, strlen(text), 200);
}

Test(body, limit_accepts_one_to_max)
{
    cr_assert(eq(long, limit_of("1"), 1));
    cr_assert(eq(long, limit_of("50"), 50));
    cr_assert(eq(long, limit_of("199"), 199));
    cr_assert(eq(long, limit_of("200"), 200));
}

Test(body, limit_rejects_out_of_range)
{
    cr_assert(eq(long, limit_of("0"), -1));
    cr_assert(eq(long, limit_of("201"), -1));
    cr_assert(eq(long, limit_of("1000"), -1));
    cr_assert(eq(long, limit_of("99999999999999999999999"), -1));
}

Test(body, limit_rejects_non_digits)
{
    const char *texts[] = {"", "-1", "+1", "abc", "1a", "a1", " 1", "1 ", "1.0", "1e2", "0x10", "%31"};

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        cr_assert(eq(long, limit_of(texts[i]), -1), "limit \"%s\"", texts[i]);
}

Test(body, limit_accepts_leading_zeros)
{
    /* A decimal integer from 1 to 200 is accepted however it is written. */
    cr_assert(eq(long, limit_of("01"), 1));
    cr_assert(eq(long, limit_of("0001"), 1));
    cr_assert(eq(long, limit_of("00001"), 1));
    cr_assert(eq(long, limit_of("0000000000000000000200"), 200));
    cr_assert(eq(long, limit_of("00"), -1));
    cr_assert(eq(long, limit_of("00000"), -1));
    cr_assert(eq(long, limit_of("000201"), -1));
}

Test(body, limit_follows_given_max)
{
    cr_assert(eq(long, parse_limit("10", 2, 10), 10));
    cr_assert(eq(long, parse_limit("11", 2, 10), -1));
    cr_assert(eq(long, parse_limit("50000", 5, 100000), 50000));
}

Test(body, limit_reads_only_given_length)
{
    cr_assert(eq(long, parse_limit("20x", 2, 200), 20));
    cr_assert(eq(long, parse_limit("2000", 3, 200), 200));
}
