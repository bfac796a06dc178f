/* Unit tests of common/hv_hash: SipHash-2-4 against the reference vectors
 * of the SipHash paper (key 00 01 .. 0f, message 00 01 .. n-1). */
#include "hv_hash.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

static const uint64_t reference_key[2] = {UINT64_C(0x0706050403020100), UINT64_C(0x0f0e0d0c0b0a0908)};

static uint64_t hash_of_counting_bytes(size_t len)
{
    unsigned char message[64];
    for (size_t i = 0; i < len; i++)
        message[i] = (unsigned char)i;
    return hv_siphash(reference_key, message, len);
}

Test(hash, empty_message_matches_reference)
{
    cr_assert(eq(u64, hash_of_counting_bytes(0), UINT64_C(0x726fdb47dd0e0e31)));
}

Test(hash, fifteen_bytes_match_reference)
{
    cr_assert(eq(u64, hash_of_counting_bytes(15), UINT64_C(0xa129ca6149be45e5)));
}

Test(hash, key_changes_the_hash)
{
    const uint64_t other_key[2] = {1, 2};
    cr_assert(ne(u64, hv_siphash(reference_key, "demo", 4), hv_siphash(other_key, "demo", 4)));
}

Test(hash, random_keys_differ)
{
    uint64_t first[2], second[2];
    cr_assert(eq(int, hv_hash_random_key(first), 0));
    cr_assert(eq(int, hv_hash_random_key(second), 0));
    cr_assert(first[0] != second[0] || first[1] != second[1], "two random keys are equal");
}
