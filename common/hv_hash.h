/* A keyed hash for hash tables whose keys come from clients (org keys, org
 * ids): with a random key, nobody outside can pick keys that collide. */
#ifndef HV_HASH_H
#define HV_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Returns SipHash-2-4 of `len` bytes under the 128-bit `key`. */
uint64_t hv_siphash(const uint64_t key[2], const void *data, size_t len);

/* Fills `key` from the system's random source. Returns 0, or -1 when the
 * random source failed. */
__attribute__((warn_unused_result)) int hv_hash_random_key(uint64_t key[2]);

#endif
