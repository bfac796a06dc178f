/* Unit tests of the org-key cache (gateway/key_cache.c): hits and misses,
 * the two time-to-live values, least-recently-used eviction and exact key
 * comparison. Time is passed in by the tests, so nothing sleeps. */
#include "key_cache.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define VALID_TTL_MS 60000
#define INVALID_TTL_MS 5000

/* The cache of the current test, destroyed after each test. */
static key_cache *cache;

static void teardown(void)
{
    key_cache_destroy(&cache);
}

TestSuite(key_cache, .fini = teardown);

static void create(size_t capacity)
{
    cache = key_cache_new(capacity, VALID_TTL_MS, INVALID_TTL_MS);
    cr_assert(not(zero(ptr, cache)));
}

static void put(const char *key, const char *org, int64_t now_ms)
{
    key_cache_put(cache, key, strlen(key), org, now_ms);
}

static key_lookup get(const char *key, int64_t now_ms)
{
    char org[HV_ORG_ID_MAX + 1];
    return key_cache_get(cache, key, strlen(key), now_ms, org);
}

/* Asserts that `key` is a valid hit for `org` at `now_ms`. */
static void assert_valid(const char *key, const char *org, int64_t now_ms)
{
    char found[HV_ORG_ID_MAX + 1];
    memset(found, 'x', sizeof(found));

    cr_assert(eq(int, key_cache_get(cache, key, strlen(key), now_ms, found), KEY_VALID), "key %s at %lld ms", key,
              (long long)now_ms);
    cr_assert(eq(str, found, (char *)org), "key %s", key);
}

/* --- Hits and misses ------------------------------------------------------- */

Test(key_cache, new_cache_is_empty)
{
    create(8);
    cr_assert(eq(sz, key_cache_size(cache), 0));
    cr_assert(eq(int, get("key_1", 0), KEY_MISS));
}

Test(key_cache, miss_leaves_org_untouched)
{
    create(8);
    char org[HV_ORG_ID_MAX + 1] = "unchanged";

    cr_assert(eq(int, key_cache_get(cache, "key_1", 5, 0, org), KEY_MISS));
    cr_assert(eq(str, org, "unchanged"));
}

Test(key_cache, valid_key_hits_with_org)
{
    create(8);
    put("key_1", "org_1", 1000);

    cr_assert(eq(sz, key_cache_size(cache), 1));
    assert_valid("key_1", "org_1", 1000);
    assert_valid("key_1", "org_1", 1001);
}

Test(key_cache, org_is_copied_on_put)
{
    create(8);
    char org[HV_ORG_ID_MAX + 1] = "org_1";
    put("key_1", org, 0);

    strcpy(org, "changed");
    assert_valid("key_1", "org_1", 0);
}

Test(key_cache, longest_org_is_kept_whole)
{
    create(8);
    char org[HV_ORG_ID_MAX + 1];
    memset(org, 'o', HV_ORG_ID_MAX);
    org[HV_ORG_ID_MAX] = '\0';

    put("key_1", org, 0);
    assert_valid("key_1", org, 0);
}

Test(key_cache, unknown_key_is_invalid)
{
    create(8);
    char org[HV_ORG_ID_MAX + 1] = "unchanged";
    put("bad_key", NULL, 1000);

    cr_assert(eq(sz, key_cache_size(cache), 1));
    cr_assert(eq(int, key_cache_get(cache, "bad_key", 7, 1000, org), KEY_INVALID));
    cr_assert(eq(str, org, "unchanged"));
}

Test(key_cache, other_key_misses)
{
    create(8);
    put("key_1", "org_1", 0);
    put("bad_key", NULL, 0);

    cr_assert(eq(int, get("key_2", 0), KEY_MISS));
    cr_assert(eq(sz, key_cache_size(cache), 2));
}

/* --- Time-to-live ------------------------------------------------------------- */

Test(key_cache, valid_entry_expires_at_its_ttl)
{
    create(8);
    put("key_1", "org_1", 1000);

    assert_valid("key_1", "org_1", 1000 + VALID_TTL_MS - 1);
    cr_assert(eq(int, get("key_1", 1000 + VALID_TTL_MS), KEY_MISS));
}

Test(key_cache, invalid_entry_expires_at_its_ttl)
{
    create(8);
    put("bad_key", NULL, 1000);

    cr_assert(eq(int, get("bad_key", 1000 + INVALID_TTL_MS - 1), KEY_INVALID));
    cr_assert(eq(int, get("bad_key", 1000 + INVALID_TTL_MS), KEY_MISS));
}

Test(key_cache, invalid_entry_uses_shorter_ttl)
{
    create(8);
    put("key_1", "org_1", 0);
    put("bad_key", NULL, 0);

    cr_assert(eq(int, get("bad_key", INVALID_TTL_MS), KEY_MISS));
    assert_valid("key_1", "org_1", INVALID_TTL_MS);
}

Test(key_cache, expired_entry_is_removed)
{
    create(8);
    put("key_1", "org_1", 0);
    put("key_2", "org_2", 0);

    cr_assert(eq(int, get("key_1", VALID_TTL_MS), KEY_MISS));
    cr_assert(eq(sz, key_cache_size(cache), 1));
    cr_assert(eq(int, get("key_1", 0), KEY_MISS), "an expired entry must not come back");
}

Test(key_cache, get_does_not_extend_ttl)
{
    create(8);
    put("key_1", "org_1", 0);

    assert_valid("key_1", "org_1", VALID_TTL_MS - 10);
    cr_assert(eq(int, get("key_1", VALID_TTL_MS), KEY_MISS));
}

Test(key_cache, zero_ttl_entry_is_never_hit)
{
    cache = key_cache_new(8, 0, 0);
    cr_assert(not(zero(ptr, cache)));
    put("key_1", "org_1", 100);
    put("bad_key", NULL, 100);

    cr_assert(eq(int, get("key_1", 100), KEY_MISS));
    cr_assert(eq(int, get("bad_key", 100), KEY_MISS));
    cr_assert(eq(sz, key_cache_size(cache), 0));
}

/* --- Replacing entries ----------------------------------------------------------- */

Test(key_cache, put_replaces_org)
{
    create(8);
    put("key_1", "org_1", 0);
    put("key_1", "org_2", 10);

    cr_assert(eq(sz, key_cache_size(cache), 1));
    assert_valid("key_1", "org_2", 10);
}

Test(key_cache, put_replaces_valid_with_invalid)
{
    create(8);
    put("key_1", "org_1", 0);
    put("key_1", NULL, 10);

    cr_assert(eq(sz, key_cache_size(cache), 1));
    cr_assert(eq(int, get("key_1", 10), KEY_INVALID));
    cr_assert(eq(int, get("key_1", 10 + INVALID_TTL_MS), KEY_MISS));
}

Test(key_cache, put_replaces_invalid_with_valid)
{
    create(8);
    put("key_1", NULL, 0);
    put("key_1", "org_1", 10);

    cr_assert(eq(sz, key_cache_size(cache), 1));
    assert_valid("key_1", "org_1", 10 + INVALID_TTL_MS);
}

Test(key_cache, put_restarts_ttl)
{
    create(8);
    put("key_1", "org_1", 0);
    put("key_1", "org_1", 1000);

    assert_valid("key_1", "org_1", VALID_TTL_MS);
    cr_assert(eq(int, get("key_1", 1000 + VALID_TTL_MS), KEY_MISS));
}

Test(key_cache, put_at_capacity_replaces_without_eviction)
{
    create(2);
    put("key_1", "org_1", 0);
    put("key_2", "org_2", 0);
    put("key_1", "org_3", 0);

    cr_assert(eq(sz, key_cache_size(cache), 2));
    assert_valid("key_1", "org_3", 0);
    assert_valid("key_2", "org_2", 0);
}

/* --- Eviction --------------------------------------------------------------------- */

Test(key_cache, full_cache_evicts_oldest_put)
{
    create(3);
    put("key_1", "org_1", 0);
    put("key_2", "org_2", 1);
    put("key_3", "org_3", 2);
    put("key_4", "org_4", 3);

    cr_assert(eq(sz, key_cache_size(cache), 3));
    cr_assert(eq(int, get("key_1", 3), KEY_MISS));
    assert_valid("key_2", "org_2", 3);
    assert_valid("key_3", "org_3", 3);
    assert_valid("key_4", "org_4", 3);
}

Test(key_cache, get_refreshes_recency)
{
    create(3);
    put("key_1", "org_1", 0);
    put("key_2", "org_2", 0);
    put("key_3", "org_3", 0);

    assert_valid("key_1", "org_1", 1);
    put("key_4", "org_4", 2);

    cr_assert(eq(int, get("key_2", 2), KEY_MISS));
    assert_valid("key_1", "org_1", 2);
    assert_valid("key_3", "org_3", 2);
    assert_valid("key_4", "org_4", 2);
}

Test(key_cache, invalid_hit_refreshes_recency)
{
    create(2);
    put("bad_key", NULL, 0);
    put("key_1", "org_1", 0);

    cr_assert(eq(int, get("bad_key", 1), KEY_INVALID));
    put("key_2", "org_2", 2);

    cr_assert(eq(int, get("bad_key", 2), KEY_INVALID));
    cr_assert(eq(int, get("key_1", 2), KEY_MISS));
}

Test(key_cache, put_refreshes_recency)
{
    create(2);
    put("key_1", "org_1", 0);
    put("key_2", "org_2", 0);
    put("key_1", "org_1", 1);
    put("key_3", "org_3", 2);

    cr_assert(eq(int, get("key_2", 2), KEY_MISS));
    assert_valid("key_1", "org_1", 2);
    assert_valid("key_3", "org_3", 2);
}

Test(key_cache, miss_does_not_change_recency)
{
    create(2);
    put("key_1", "org_1", 0);
    put("key_2", "org_2", 0);

    cr_assert(eq(int, get("key_3", 1), KEY_MISS));
    put("key_3", "org_3", 2);

    cr_assert(eq(int, get("key_1", 2), KEY_MISS));
    assert_valid("key_2", "org_2", 2);
}

Test(key_cache, capacity_one_keeps_last_put)
{
    create(1);
    put("key_1", "org_1", 0);
    assert_valid("key_1", "org_1", 0);

    put("key_2", NULL, 1);
    cr_assert(eq(sz, key_cache_size(cache), 1));
    cr_assert(eq(int, get("key_1", 1), KEY_MISS));
    cr_assert(eq(int, get("key_2", 1), KEY_INVALID));

    put("key_2", "org_2", 2);
    cr_assert(eq(sz, key_cache_size(cache), 1));
    assert_valid("key_2", "org_2", 2);
}

Test(key_cache, capacity_zero_means_one)
{
    create(0);
    put("key_1", "org_1", 0);
    put("key_2", "org_2", 0);

    cr_assert(eq(sz, key_cache_size(cache), 1));
    assert_valid("key_2", "org_2", 0);
}

/* A reference model of the cache for the random test: entries in order
 * from least to most recently used. */
typedef struct {
    char key[16];
    int org; /* the org number, or -1 for an unknown key */
    int64_t expires_ms;
} model_entry;

static model_entry model[64];
static size_t model_size;

static void model_remove(size_t index)
{
    memmove(&model[index], &model[index + 1], (model_size - index - 1) * sizeof(model[0]));
    model_size--;
}

static long model_find(const char *key)
{
    for (size_t i = 0; i < model_size; i++)
        if (strcmp(model[i].key, key) == 0)
            return (long)i;
    return -1;
}

/* Returns the org number, -1 for an unknown key and -2 for a miss. */
static int model_get(const char *key, int64_t now_ms)
{
    long index = model_find(key);
    if (index < 0)
        return -2;
    model_entry found = model[index];
    model_remove((size_t)index);
    if (now_ms >= found.expires_ms)
        return -2;
    model[model_size++] = found;
    return found.org;
}

static void model_put(const char *key, int org, int64_t now_ms, size_t capacity)
{
    long index = model_find(key);
    if (index >= 0)
        model_remove((size_t)index);
    if (model_size >= capacity)
        model_remove(0);

    model_entry *added = &model[model_size++];
    snprintf(added->key, sizeof(added->key), "%s", key);
    added->org = org;
    added->expires_ms = now_ms + (org >= 0 ? VALID_TTL_MS : INVALID_TTL_MS);
}

/* Advances a xorshift64 generator, which gives the same sequence on every
 * run. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

Test(key_cache, random_operations_match_lru_model)
{
    const size_t capacity = 16;
    create(capacity);
    model_size = 0;
    uint64_t state = 0x9e3779b97f4a7c15ull;
    int64_t now_ms = 0;

    for (int step = 0; step < 10000; step++) {
        char key[16];
        snprintf(key, sizeof(key), "key_%u", (unsigned)(next_random(&state) % 48));
        now_ms += (int64_t)(next_random(&state) % 50);

        if (next_random(&state) % 2 == 0) {
            int org = next_random(&state) % 4 == 0 ? -1 : (int)(next_random(&state) % 1000);
            char org_id[HV_ORG_ID_MAX + 1];
            snprintf(org_id, sizeof(org_id), "org_%d", org);
            put(key, org >= 0 ? org_id : NULL, now_ms);
            model_put(key, org, now_ms, capacity);
        } else {
            char org_id[HV_ORG_ID_MAX + 1];
            key_lookup found = key_cache_get(cache, key, strlen(key), now_ms, org_id);
            int expected = model_get(key, now_ms);

            if (expected == -2) {
                cr_assert(eq(int, found, KEY_MISS), "step %d, key %s", step, key);
            } else if (expected == -1) {
                cr_assert(eq(int, found, KEY_INVALID), "step %d, key %s", step, key);
            } else {
                char expected_org[HV_ORG_ID_MAX + 1];
                snprintf(expected_org, sizeof(expected_org), "org_%d", expected);
                cr_assert(eq(int, found, KEY_VALID), "step %d, key %s", step, key);
                cr_assert(eq(str, org_id, expected_org), "step %d, key %s", step, key);
            }
        }

        cr_assert(le(sz, key_cache_size(cache), capacity), "step %d", step);
        cr_assert(eq(sz, key_cache_size(cache), model_size), "step %d", step);
    }
}

Test(key_cache, size_never_exceeds_capacity)
{
    const size_t capacity = 100;
    create(capacity);
    uint64_t state = 42;

    for (int step = 0; step < 10000; step++) {
        char key[32];
        snprintf(key, sizeof(key), "%016llx", (unsigned long long)next_random(&state));
        put(key, step % 3 == 0 ? NULL : "org_1", step);
        cr_assert(le(sz, key_cache_size(cache), capacity), "step %d", step);
    }
    cr_assert(eq(sz, key_cache_size(cache), capacity));
}

/* --- Keys ------------------------------------------------------------------------------ */

Test(key_cache, keys_compare_exact_bytes)
{
    create(8);
    put("demo", "org_demo", 0);

    cr_assert(eq(int, get("DEMO", 0), KEY_MISS));
    cr_assert(eq(int, get("dem", 0), KEY_MISS));
    cr_assert(eq(int, get("demo ", 0), KEY_MISS));
    assert_valid("demo", "org_demo", 0);
}

Test(key_cache, keys_compare_length)
{
    create(8);
    char org[HV_ORG_ID_MAX + 1];
    key_cache_put(cache, "demo", 4, "org_short", 0);

    cr_assert(eq(int, key_cache_get(cache, "demo\0", 5, 0, org), KEY_MISS));
    cr_assert(eq(int, key_cache_get(cache, "demonstration", 4, 0, org), KEY_VALID));
    cr_assert(eq(str, org, "org_short"));

    key_cache_put(cache, "demo\0", 5, "org_nul", 0);
    cr_assert(eq(sz, key_cache_size(cache), 2));
    cr_assert(eq(int, key_cache_get(cache, "demo\0", 5, 0, org), KEY_VALID));
    cr_assert(eq(str, org, "org_nul"));
    cr_assert(eq(int, key_cache_get(cache, "demo", 4, 0, org), KEY_VALID));
    cr_assert(eq(str, org, "org_short"));
}

Test(key_cache, keys_may_contain_nul_bytes)
{
    create(8);
    char org[HV_ORG_ID_MAX + 1];
    key_cache_put(cache, "a\0b", 3, "org_1", 0);
    key_cache_put(cache, "a\0c", 3, "org_2", 0);

    cr_assert(eq(int, key_cache_get(cache, "a\0b", 3, 0, org), KEY_VALID));
    cr_assert(eq(str, org, "org_1"));
    cr_assert(eq(int, key_cache_get(cache, "a\0c", 3, 0, org), KEY_VALID));
    cr_assert(eq(str, org, "org_2"));
    cr_assert(eq(int, key_cache_get(cache, "a", 1, 0, org), KEY_MISS));
}

Test(key_cache, empty_key_is_a_key)
{
    create(8);
    char org[HV_ORG_ID_MAX + 1];
    key_cache_put(cache, "", 0, "org_empty", 0);

    cr_assert(eq(int, key_cache_get(cache, "", 0, 0, org), KEY_VALID));
    cr_assert(eq(str, org, "org_empty"));
    cr_assert(eq(int, get("x", 0), KEY_MISS));
}

Test(key_cache, long_key_is_stored_whole)
{
    create(8);
    char key[257];
    memset(key, 'k', 256);
    key[256] = '\0';
    put(key, "org_long", 0);

    assert_valid(key, "org_long", 0);
    key[255] = 'x';
    cr_assert(eq(int, get(key, 0), KEY_MISS));
}

Test(key_cache, caller_may_reuse_key_buffer)
{
    create(8);
    char key[16] = "key_1";
    put(key, "org_1", 0);

    strcpy(key, "key_2");
    cr_assert(eq(int, get("key_2", 0), KEY_MISS));
    assert_valid("key_1", "org_1", 0);
}

/* --- Destroy ----------------------------------------------------------------------------- */

Test(key_cache, destroy_sets_pointer_to_null)
{
    create(8);
    put("key_1", "org_1", 0);
    put("bad_key", NULL, 0);

    key_cache_destroy(&cache);
    cr_assert(zero(ptr, cache));
}

Test(key_cache, destroy_of_null_is_safe)
{
    key_cache *none = NULL;
    key_cache_destroy(&none);
    cr_assert(zero(ptr, none));
}

Test(key_cache, destroy_twice_is_safe)
{
    create(8);
    key_cache_destroy(&cache);
    key_cache_destroy(&cache);
    cr_assert(zero(ptr, cache));
}
