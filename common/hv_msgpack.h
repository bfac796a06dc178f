/* Small readers and writers over msgpack-c objects, shared by the codecs. */
#ifndef HV_MSGPACK_H
#define HV_MSGPACK_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

/* Checks, without allocating, that `data` contains exactly one complete
 * msgpack object. msgpack-c reserves memory for every element an array or
 * map header announces before reading them, so a 5-byte frame announcing
 * four billion elements would make it allocate gigabytes. Call this first.
 * Returns 0, HV_MP_TRUNCATED when the data ends early or announces more
 * elements than it has bytes left, HV_MP_INVALID for a byte that is no
 * msgpack type, or HV_MP_TRAILING when bytes follow the object. */
#define HV_MP_TRUNCATED (-1)
#define HV_MP_INVALID (-2)
#define HV_MP_TRAILING (-3)
__attribute__((warn_unused_result)) int hv_mp_check(const char *data, size_t size);

/* Unpacks the one object that fills `data` into `storage` (initialized by
 * the caller with msgpack_unpacked_init), after hv_mp_check. Returns 0, or
 * -1 with *error set to a static description. */
__attribute__((warn_unused_result)) int hv_mp_unpack_exact(const char *data, size_t size, msgpack_unpacked *storage,
                                                           const char **error);

/* Returns the value stored under a string key of a map, or NULL when `map`
 * is not a map or has no such key. */
const msgpack_object *hv_mp_map_get(const msgpack_object *map, const char *key);

/* Returns true and sets *text and *len when the key maps to a string. The text
 * is not NUL-terminated and lives as long as the unpacked zone. */
bool hv_mp_map_get_str(const msgpack_object *map, const char *key, const char **text, size_t *len);

/* Returns true and sets *value when the key maps to a non-negative integer. */
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
