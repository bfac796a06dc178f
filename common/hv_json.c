/* Conversion from msgpack objects to JSON values (Jansson). */
#include "hv_json.h"

#include <limits.h>
#include <stdlib.h>

static json_t *hex_string(const char *bytes, uint32_t size)
{
    static const char digits[] = "0123456789abcdef";
    char *text = malloc((size_t)size * 2 + 1);
    if (!text)
        return NULL;
    for (uint32_t i = 0; i < size; i++) {
        text[2 * i] = digits[(unsigned char)bytes[i] >> 4];
        text[2 * i + 1] = digits[(unsigned char)bytes[i] & 0xf];
    }
    json_t *value = json_stringn(text, (size_t)size * 2);
    free(text);
    return value;
}

static json_t *array_from_msgpack(const msgpack_object_array *array)
{
    json_t *out = json_array();
    for (uint32_t i = 0; out && i < array->size; i++) {
        json_t *item = hv_json_from_msgpack(&array->ptr[i]);
        if (!item || json_array_append_new(out, item) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *object_from_msgpack(const msgpack_object_map *map)
{
    json_t *out = json_object();
    for (uint32_t i = 0; out && i < map->size; i++) {
        const msgpack_object_kv *entry = &map->ptr[i];
        if (entry->key.type != MSGPACK_OBJECT_STR) {
            json_decref(out);
            return NULL;
        }
        json_t *value = hv_json_from_msgpack(&entry->val);
        if (!value || json_object_setn_new(out, entry->key.via.str.ptr, entry->key.via.str.size, value) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

json_t *hv_json_from_msgpack(const msgpack_object *object)
{
    switch (object->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(object->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        /* JSON numbers have no width, but Jansson's integers are signed. */
        if (object->via.u64 > (uint64_t)LLONG_MAX)
            return json_real((double)object->via.u64);
        return json_integer((json_int_t)object->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)object->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(object->via.f64);
    case MSGPACK_OBJECT_STR:
        /* json_stringn rejects invalid UTF-8 and returns NULL. */
        return json_stringn(object->via.str.ptr, object->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return hex_string(object->via.bin.ptr, object->via.bin.size);
    case MSGPACK_OBJECT_ARRAY:
        return array_from_msgpack(&object->via.array);
    case MSGPACK_OBJECT_MAP:
        return object_from_msgpack(&object->via.map);
    case MSGPACK_OBJECT_EXT:
        return NULL;
    }
    return NULL;
}
