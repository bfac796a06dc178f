/* A bounded cache of org-key lookups: a hash table with chaining and a
 * least-recently-used list for eviction. */
#include "key_cache.h"
#include "hv_hash.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    struct entry *bucket_next;
    struct entry *newer, *older; /* the LRU list */
    uint64_t hash;
    int64_t expires_ms;
    bool valid;
    char org[HV_ORG_ID_MAX + 1];
    size_t key_len;
    char key[]; /* not NUL-terminated */
} entry;

struct key_cache {
    entry **buckets;
    size_t bucket_count; /* a power of two */
    size_t size, capacity;
    entry *newest, *oldest;
    int64_t valid_ttl_ms, invalid_ttl_ms;
    uint64_t hash_key[2]; /* random, so that clients cannot choose keys that collide */
};

key_cache *key_cache_new(size_t capacity, int64_t valid_ttl_ms, int64_t invalid_ttl_ms)
{
    key_cache *cache = calloc(1, sizeof(*cache));
    if (!cache)
        return NULL;
    cache->capacity = capacity ? capacity : 1;
    cache->bucket_count = 16;
    while (cache->bucket_count < cache->capacity)
        cache->bucket_count *= 2;
    cache->buckets = calloc(cache->bucket_count, sizeof(entry *));
    if (!cache->buckets) {
        free(cache);
        return NULL;
    }
    cache->valid_ttl_ms = valid_ttl_ms;
    cache->invalid_ttl_ms = invalid_ttl_ms;
    if (hv_hash_random_key(cache->hash_key) != 0) {
        free(cache->buckets);
        free(cache);
        return NULL;
    }
    return cache;
}

void key_cache_destroy(key_cache **target)
{
    key_cache *cache = *target;
    if (!cache)
        return;
    for (entry *item = cache->newest; item;) {
        entry *older = item->older;
        free(item);
        item = older;
    }
    free(cache->buckets);
    free(cache);
    *target = NULL;
}

static void unlink_lru(key_cache *cache, entry *item)
{
    if (item->newer)
        item->newer->older = item->older;
    else
        cache->newest = item->older;
    if (item->older)
        item->older->newer = item->newer;
    else
        cache->oldest = item->newer;
    item->newer = item->older = NULL;
}

static void push_newest(key_cache *cache, entry *item)
{
    item->older = cache->newest;
    item->newer = NULL;
    if (cache->newest)
        cache->newest->newer = item;
    cache->newest = item;
    if (!cache->oldest)
        cache->oldest = item;
}

static entry **find_slot(key_cache *cache, uint64_t hash, const char *key, size_t key_len)
{
    entry **slot = &cache->buckets[hash & (cache->bucket_count - 1)];
    for (; *slot; slot = &(*slot)->bucket_next) {
        entry *item = *slot;
        if (item->hash == hash && item->key_len == key_len && memcmp(item->key, key, key_len) == 0)
            return slot;
    }
    return slot;
}

static void remove_entry(key_cache *cache, entry **slot)
{
    entry *item = *slot;
    *slot = item->bucket_next;
    unlink_lru(cache, item);
    free(item);
    cache->size--;
}

key_lookup key_cache_get(key_cache *cache, const char *key, size_t key_len, int64_t now_ms, char *org)
{
    uint64_t hash = hv_siphash(cache->hash_key, key, key_len);
    entry **slot = find_slot(cache, hash, key, key_len);
    entry *item = *slot;
    if (!item)
        return KEY_MISS;
    if (now_ms >= item->expires_ms) {
        remove_entry(cache, slot);
        return KEY_MISS;
    }

    unlink_lru(cache, item);
    push_newest(cache, item);
    if (!item->valid)
        return KEY_INVALID;
    memcpy(org, item->org, sizeof(item->org));
    return KEY_VALID;
}

void key_cache_put(key_cache *cache, const char *key, size_t key_len, const char *org, int64_t now_ms)
{
    uint64_t hash = hv_siphash(cache->hash_key, key, key_len);
    entry **slot = find_slot(cache, hash, key, key_len);
    if (*slot)
        remove_entry(cache, slot);

    if (cache->size >= cache->capacity) {
        entry *oldest = cache->oldest;
        remove_entry(cache, find_slot(cache, oldest->hash, oldest->key, oldest->key_len));
    }

    entry *item = calloc(1, sizeof(*item) + key_len);
    if (!item)
        return; /* not caching only costs a round trip next time */
    item->hash = hash;
    item->key_len = key_len;
    memcpy(item->key, key, key_len);
    item->valid = org != NULL;
    if (org)
        strncpy(item->org, org, HV_ORG_ID_MAX);
    item->expires_ms = now_ms + (org ? cache->valid_ttl_ms : cache->invalid_ttl_ms);

    slot = &cache->buckets[hash & (cache->bucket_count - 1)];
    item->bucket_next = *slot;
    *slot = item;
    push_newest(cache, item);
    cache->size++;
}

size_t key_cache_size(const key_cache *cache)
{
    return cache->size;
}
