/* Small readers and writers over msgpack-c objects, shared by the codecs. */
#ifndef HV_MSGPACK_H
#define HV_MSGPACK_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

/* Returns the value stored under a string key of a map, or NULL when `map`
 * is not a map or has no such key. */
const msgpack_object *hv_mp_map_get(const msgpack_object *map, const char *key);

/* Returns true and sets *text and *len when the key holds a string. The text
 * is not NUL-terminated and lives as long as the unpacked zone. */
bool hv_mp_map_get_str(const msgpack_object *map, const char *key, const char **text, size_t *len);

/* Returns true and sets *value when the key holds a non-negative integer. */
bool hv_mp_map_get_uint(const msgpack_object *map, const char *key, uint64_t *value);

/* Returns true when the object is a string equal to `text`. */
bool hv_mp_str_equals(const msgpack_object *object, const char *text);

/* Packs a NUL-terminated string, or nil for NULL. */
void hv_mp_pack_cstr(msgpack_packer *packer, const char *text);

/* Packs `len` bytes as a string. */
void hv_mp_pack_strn(msgpack_packer *packer, const char *text, size_t len);

/* Packs `key` followed by the string `value` (nil for NULL), as one map
 * entry. */
void hv_mp_pack_entry_str(msgpack_packer *packer, const char *key, const char *value);

#endif
