/* SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
 * 2012) for hash tables whose keys come from clients. */
#include "hv_hash.h"

#include <sys/random.h>

static uint64_t rotate_left(uint64_t x, unsigned bits)
{
    return (x << bits) | (x >> (64 - bits));
}

static void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = rotate_left(v[1], 13);
    v[1] ^= v[0];
    v[0] = rotate_left(v[0], 32);
    v[2] += v[3];
    v[3] = rotate_left(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = rotate_left(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = rotate_left(v[1], 17);
    v[1] ^= v[2];
    v[2] = rotate_left(v[2], 32);
}

static void sip_absorb(uint64_t v[4], uint64_t word)
{
    v[3] ^= word;
    sip_round(v);
    sip_round(v);
    v[0] ^= word;
}

static uint64_t load_le64(const unsigned char *bytes, size_t len)
{
    uint64_t word = 0;
    for (size_t i = 0; i < len; i++)
        word |= (uint64_t)bytes[i] << (8 * i);
    return word;
}

uint64_t hv_siphash(const uint64_t key[2], const void *data, size_t len)
{
    const unsigned char *bytes = data;
    uint64_t v[4] = {
        key[0] ^ UINT64_C(0x736f6d6570736575),
        key[1] ^ UINT64_C(0x646f72616e646f6d),
        key[0] ^ UINT64_C(0x6c7967656e657261),
        key[1] ^ UINT64_C(0x7465646279746573),
    };

    size_t whole_words = len / 8;
    for (size_t i = 0; i < whole_words; i++)
        sip_absorb(v, load_le64(bytes + 8 * i, 8));

    /* The last word carries the remaining bytes and the length modulo 256. */
    uint64_t last = load_le64(bytes + 8 * whole_words, len % 8) | ((uint64_t)len << 56);
    sip_absorb(v, last);

    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

int hv_hash_random_key(uint64_t key[2])
{
    size_t size = 2 * sizeof(uint64_t);
    return getrandom(key, size, 0) == (ssize_t)size ? 0 : -1;
}
