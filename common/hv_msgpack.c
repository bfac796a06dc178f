/* Small readers and writers over msgpack-c objects, shared by the codecs. */
#include "hv_msgpack.h"

#include <string.h>

static uint64_t read_big_endian(const unsigned char *bytes, int width)
{
    uint64_t value = 0;
    for (int i = 0; i < width; i++)
        value = value << 8 | bytes[i];
    return value;
}

/* Describes one type byte: how many bytes of length or count follow it
 * (`header`), how many fixed bytes of payload come after those (`fixed`),
 * and what the length or count means. */
typedef enum { KIND_SCALAR, KIND_BYTES, KIND_ARRAY, KIND_MAP, KIND_INVALID } element_kind;

static element_kind classify(unsigned char type, int *header, uint64_t *fixed, uint64_t *inline_count)
{
    *header = 0;
    *fixed = 0;
    *inline_count = 0;

    if (type <= 0x7f || type >= 0xe0 || type == 0xc0 || type == 0xc2 || type == 0xc3)
        return KIND_SCALAR;
    if (type >= 0x80 && type <= 0x8f) {
        *inline_count = type & 0x0f;
        return KIND_MAP;
    }
    if (type >= 0x90 && type <= 0x9f) {
        *inline_count = type & 0x0f;
        return KIND_ARRAY;
    }
    if (type >= 0xa0 && type <= 0xbf) {
        *fixed = type & 0x1f;
        return KIND_SCALAR;
    }

    switch (type) {
    case 0xc4: case 0xd9: *header = 1; return KIND_BYTES; /* bin 8, str 8 */
    case 0xc5: case 0xda: *header = 2; return KIND_BYTES; /* bin 16, str 16 */
    case 0xc6: case 0xdb: *header = 4; return KIND_BYTES; /* bin 32, str 32 */
    case 0xc7: *header = 1; *fixed = 1; return KIND_BYTES; /* ext 8: length, then a type byte */
    case 0xc8: *header = 2; *fixed = 1; return KIND_BYTES;
    case 0xc9: *header = 4; *fixed = 1; return KIND_BYTES;
    case 0xca: *fixed = 4; return KIND_SCALAR; /* float 32 */
    case 0xcb: *fixed = 8; return KIND_SCALAR; /* float 64 */
    case 0xcc: case 0xd0: *fixed = 1; return KIND_SCALAR;
    case 0xcd: case 0xd1: *fixed = 2; return KIND_SCALAR;
    case 0xce: case 0xd2: *fixed = 4; return KIND_SCALAR;
    case 0xcf: case 0xd3: *fixed = 8; return KIND_SCALAR;
    case 0xd4: *fixed = 2; return KIND_SCALAR; /* fixext 1: type byte and data */
    case 0xd5: *fixed = 3; return KIND_SCALAR;
    case 0xd6: *fixed = 5; return KIND_SCALAR;
    case 0xd7: *fixed = 9; return KIND_SCALAR;
    case 0xd8: *fixed = 17; return KIND_SCALAR;
    case 0xdc: *header = 2; return KIND_ARRAY;
    case 0xdd: *header = 4; return KIND_ARRAY;
    case 0xde: *header = 2; return KIND_MAP;
    case 0xdf: *header = 4; return KIND_MAP;
    default: return KIND_INVALID; /* 0xc1 is reserved */
    }
}

int hv_mp_check(const char *data, size_t size)
{
    const unsigned char *bytes = (const unsigned char *)data;
    size_t position = 0;
    uint64_t pending = 1; /* elements still to read */

    while (pending > 0) {
        if (position >= size)
            return HV_MP_TRUNCATED;
        int header;
        uint64_t fixed, count;
        element_kind kind = classify(bytes[position++], &header, &fixed, &count);
        pending--;
        if (kind == KIND_INVALID)
            return HV_MP_INVALID;

        if (size - position < (size_t)header)
            return HV_MP_TRUNCATED;
        if (header > 0)
            count = read_big_endian(bytes + position, header);
        position += (size_t)header;

        uint64_t payload = fixed + (kind == KIND_BYTES ? count : 0);
        if (payload > size - position)
            return HV_MP_TRUNCATED;
        position += (size_t)payload;

        if (kind == KIND_ARRAY || kind == KIND_MAP) {
            pending += kind == KIND_MAP ? 2 * count : count;
            /* Every element takes at least one byte. */
            if (pending > size - position)
                return HV_MP_TRUNCATED;
        }
    }
    return position == size ? 0 : HV_MP_TRAILING;
}

int hv_mp_unpack_exact(const char *data, size_t size, msgpack_unpacked *storage, const char **error)
{
    switch (hv_mp_check(data, size)) {
    case 0:
        break;
    case HV_MP_TRUNCATED:
        *error = "truncated msgpack";
        return -1;
    case HV_MP_TRAILING:
        *error = "trailing bytes after the msgpack object";
        return -1;
    default:
        *error = "invalid msgpack";
        return -1;
    }

    size_t offset = 0;
    if (msgpack_unpack_next(storage, data, size, &offset) != MSGPACK_UNPACK_SUCCESS || offset != size) {
        /* hv_mp_check accepted it, so only resource limits end here, such
         * as nesting deeper than msgpack-c's parser allows. */
        *error = "invalid msgpack";
        return -1;
    }
    return 0;
}

bool hv_mp_str_equals(const msgpack_object *object, const char *text)
{
    size_t len = strlen(text);
    return object->type == MSGPACK_OBJECT_STR && object->via.str.size == len && memcmp(object->via.str.ptr, text, len) == 0;
}

const msgpack_object *hv_mp_map_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *entry = &map->via.map.ptr[i];
        if (hv_mp_str_equals(&entry->key, key))
            return &entry->val;
    }
    return NULL;
}

bool hv_mp_map_get_str(const msgpack_object *map, const char *key, const char **text, size_t *len)
{
    const msgpack_object *value = hv_mp_map_get(map, key);
    if (!value || value->type != MSGPACK_OBJECT_STR)
        return false;
    *text = value->via.str.ptr;
    *len = value->via.str.size;
    return true;
}

bool hv_mp_map_get_uint(const msgpack_object *map, const char *key, uint64_t *value)
{
    const msgpack_object *found = hv_mp_map_get(map, key);
    if (!found || found->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *value = found->via.u64;
    return true;
}

void hv_mp_pack_strn(msgpack_packer *packer, const char *text, size_t len)
{
    msgpack_pack_str(packer, len);
    msgpack_pack_str_body(packer, text, len);
}

void hv_mp_pack_cstr(msgpack_packer *packer, const char *text)
{
    if (text)
        hv_mp_pack_strn(packer, text, strlen(text));
    else
        msgpack_pack_nil(packer);
}

void hv_mp_pack_entry_str(msgpack_packer *packer, const char *key, const char *value)
{
    hv_mp_pack_cstr(packer, key);
    hv_mp_pack_cstr(packer, value);
}
