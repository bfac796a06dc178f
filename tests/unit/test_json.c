/* Unit tests of the msgpack to JSON conversion (common/hv_json.c). Each
 * test packs one value with msgpack-c, unpacks it and converts it. */
#include "hv_json.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static msgpack_sbuffer buffer;
static msgpack_packer packer;
static msgpack_unpacked storage;
static json_t *converted;
static char *dumped;

static void setup(void)
{
    msgpack_sbuffer_init(&buffer);
    msgpack_packer_init(&packer, &buffer, msgpack_sbuffer_write);
    msgpack_unpacked_init(&storage);
}

static void teardown(void)
{
    free(dumped);
    json_decref(converted);
    msgpack_unpacked_destroy(&storage);
    msgpack_sbuffer_destroy(&buffer);
}

TestSuite(json, .init = setup, .fini = teardown);

/* Unpacks what the test packed and converts it. The result stays owned by
 * the fixture. */
static json_t *convert(void)
{
    size_t offset = 0;
    cr_assert(eq(int, msgpack_unpack_next(&storage, buffer.data, buffer.size, &offset), MSGPACK_UNPACK_SUCCESS));
    converted = hv_json_from_msgpack(&storage.data);
    return converted;
}

/* Converts what the test packed and asserts that the result is a JSON
 * value of `type`. */
static json_t *convert_expecting(json_type type)
{
    json_t *value = convert();
    cr_assert(not(zero(ptr, value)), "the conversion returned NULL");
    cr_assert(eq(int, json_typeof(value), type));
    return value;
}

/* Converts what the test packed and returns it as compact JSON text with
 * sorted keys, or fails the test when the conversion returned NULL. */
static char *convert_to_text(void)
{
    json_t *value = convert();
    cr_assert(not(zero(ptr, value)), "the conversion returned NULL");
    dumped = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    cr_assert(not(zero(ptr, dumped)));
    return dumped;
}

static void pack_str(const char *text)
{
    msgpack_pack_str_with_body(&packer, text, strlen(text));
}

Test(json, nil_becomes_null)
{
    msgpack_pack_nil(&packer);
    convert_expecting(JSON_NULL);
}

Test(json, true_becomes_true)
{
    msgpack_pack_true(&packer);
    convert_expecting(JSON_TRUE);
}

Test(json, false_becomes_false)
{
    msgpack_pack_false(&packer);
    convert_expecting(JSON_FALSE);
}

Test(json, positive_integer_becomes_integer)
{
    msgpack_pack_uint64(&packer, 42);
    json_t *value = convert_expecting(JSON_INTEGER);

    cr_assert(eq(i64, (int64_t)json_integer_value(value), 42));
}

Test(json, int64_max_stays_integer)
{
    msgpack_pack_uint64(&packer, (uint64_t)INT64_MAX);
    json_t *value = convert_expecting(JSON_INTEGER);

    cr_assert(eq(i64, (int64_t)json_integer_value(value), INT64_MAX));
}

Test(json, negative_integer_becomes_integer)
{
    msgpack_pack_int64(&packer, -7);
    json_t *value = convert_expecting(JSON_INTEGER);

    cr_assert(eq(i64, (int64_t)json_integer_value(value), -7));
}

Test(json, int64_min_stays_integer)
{
    msgpack_pack_int64(&packer, INT64_MIN);
    json_t *value = convert_expecting(JSON_INTEGER);

    cr_assert(eq(i64, (int64_t)json_integer_value(value), INT64_MIN));
}

Test(json, integer_above_int64_max_becomes_real)
{
    /* Jansson integers are signed 64-bit, so larger values become doubles,
     * which keep the magnitude but not every digit. */
    msgpack_pack_uint64(&packer, (uint64_t)INT64_MAX + 1);
    json_t *value = convert_expecting(JSON_REAL);

    cr_assert(eq(dbl, json_real_value(value), 9223372036854775808.0));
}

Test(json, uint64_max_becomes_real)
{
    msgpack_pack_uint64(&packer, UINT64_MAX);
    json_t *value = convert_expecting(JSON_REAL);

    cr_assert(eq(dbl, json_real_value(value), 18446744073709551616.0));
}

Test(json, float64_becomes_real)
{
    msgpack_pack_double(&packer, -0.25);
    json_t *value = convert_expecting(JSON_REAL);

    cr_assert(eq(dbl, json_real_value(value), -0.25));
}

Test(json, float32_becomes_real)
{
    msgpack_pack_float(&packer, 1.5f);
    json_t *value = convert_expecting(JSON_REAL);

    cr_assert(eq(dbl, json_real_value(value), 1.5));
}

Test(json, rejects_nan_and_infinity)
{
    /* JSON has no literal for them, and json_real returns NULL. */
    static const double not_finite[] = {NAN, INFINITY, -INFINITY};

    for (size_t i = 0; i < sizeof(not_finite) / sizeof(not_finite[0]); i++) {
        msgpack_sbuffer_clear(&buffer);
        msgpack_pack_double(&packer, not_finite[i]);
        json_t *value = convert();
        cr_assert(zero(ptr, value), "value %g", not_finite[i]);
    }
}

Test(json, string_becomes_string)
{
    pack_str("h\xc3\xa9llo");
    json_t *value = convert_expecting(JSON_STRING);

    cr_assert(eq(str, (char *)json_string_value(value), "h\xc3\xa9llo"));
    cr_assert(eq(sz, json_string_length(value), 6));
}

Test(json, string_keeps_embedded_nul)
{
    msgpack_pack_str_with_body(&packer, "a\0b", 3);
    json_t *value = convert_expecting(JSON_STRING);

    cr_assert(eq(sz, json_string_length(value), 3));
}

Test(json, binary_becomes_lowercase_hex)
{
    static const char bytes[] = {0x00, 0x0f, (char)0xab, (char)0xff};
    msgpack_pack_bin_with_body(&packer, bytes, sizeof(bytes));

    cr_assert(eq(str, convert_to_text(), "\"000fabff\""));
}

Test(json, empty_binary_becomes_empty_string)
{
    msgpack_pack_bin(&packer, 0);

    cr_assert(eq(str, convert_to_text(), "\"\""));
}

Test(json, array_keeps_order_and_types)
{
    msgpack_pack_array(&packer, 4);
    msgpack_pack_int(&packer, 1);
    pack_str("two");
    msgpack_pack_nil(&packer);
    msgpack_pack_false(&packer);

    cr_assert(eq(str, convert_to_text(), "[1,\"two\",null,false]"));
}

Test(json, nested_map_becomes_object)
{
    msgpack_pack_map(&packer, 2);
    pack_str("message");
    msgpack_pack_map(&packer, 2);
    pack_str("text");
    pack_str("hi");
    pack_str("tags");
    msgpack_pack_array(&packer, 1);
    pack_str("urgent");
    pack_str("count");
    msgpack_pack_int(&packer, -3);

    cr_assert(eq(str, convert_to_text(), "{\"count\":-3,\"message\":{\"tags\":[\"urgent\"],\"text\":\"hi\"}}"));
}

Test(json, empty_containers_stay_empty)
{
    msgpack_pack_array(&packer, 2);
    msgpack_pack_array(&packer, 0);
    msgpack_pack_map(&packer, 0);

    cr_assert(eq(str, convert_to_text(), "[[],{}]"));
}

Test(json, rejects_invalid_utf8_string)
{
    pack_str("bad \xff\xfe bytes");

    cr_assert(zero(ptr, convert()));
}

Test(json, rejects_invalid_utf8_inside_array)
{
    msgpack_pack_array(&packer, 2);
    pack_str("fine");
    pack_str("\xc3");

    cr_assert(zero(ptr, convert()));
}

Test(json, rejects_invalid_utf8_map_key)
{
    msgpack_pack_map(&packer, 1);
    pack_str("\xe2\x28\xa1");
    msgpack_pack_int(&packer, 1);

    cr_assert(zero(ptr, convert()));
}

Test(json, rejects_non_string_map_key)
{
    msgpack_pack_map(&packer, 1);
    msgpack_pack_int(&packer, 1);
    pack_str("one");

    cr_assert(zero(ptr, convert()));
}

Test(json, rejects_non_string_key_in_nested_map)
{
    msgpack_pack_map(&packer, 2);
    pack_str("fine");
    msgpack_pack_true(&packer);
    pack_str("inner");
    msgpack_pack_map(&packer, 1);
    msgpack_pack_nil(&packer);
    msgpack_pack_nil(&packer);

    cr_assert(zero(ptr, convert()));
}

Test(json, rejects_ext)
{
    msgpack_pack_ext_with_body(&packer, "\x01\x02", 2, 5);

    cr_assert(zero(ptr, convert()));
}
