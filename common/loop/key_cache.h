/* A bounded cache of org-key lookups, so that the hot path needs no extra
 * round trip to the store. Valid keys are kept for one time-to-live and
 * unknown keys for a shorter one. */
#ifndef HV_LOOP_KEY_CACHE_H
#define HV_LOOP_KEY_CACHE_H

#include "hv_event.h"

#include <stddef.h>
#include <stdint.h>

typedef struct key_cache key_cache;

typedef enum { KEY_MISS, KEY_VALID, KEY_INVALID } key_lookup;

/* Creates a cache of at most `capacity` entries (at least 1). Returns NULL
 * when out of memory or when the system random source failed. */
key_cache *key_cache_new(size_t capacity, int64_t valid_ttl_ms, int64_t invalid_ttl_ms);

void key_cache_destroy(key_cache **cache);

/* Looks a key up at time `now_ms`. On KEY_VALID copies the org id into
 * `org` (HV_ORG_ID_MAX + 1 bytes). Expired entries count as misses. */
key_lookup key_cache_get(key_cache *cache, const char *key, size_t key_len, int64_t now_ms, char *org);

/* Stores the outcome of a lookup; `org` is NULL for an unknown key. When
 * the cache is full, the least recently used entry makes room. */
void key_cache_put(key_cache *cache, const char *key, size_t key_len, const char *org, int64_t now_ms);

size_t key_cache_size(const key_cache *cache);

#endif
