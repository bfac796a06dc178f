/* Small readers and writers over msgpack-c objects, shared by the codecs. */
#include "hv_msgpack.h"

#include <string.h>

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
