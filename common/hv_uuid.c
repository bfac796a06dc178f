/* Time-ordered UUIDs (version 7, RFC 9562) and UUID text validation.
 *
 * Layout: 48 bits of Unix milliseconds, the version nibble 7, 12 bits used
 * as a counter within the millisecond (RFC 9562, method 1), the variant
 * bits 10, and 62 random bits. */
#include "hv_uuid.h"
#include "hv_time.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static pthread_mutex_t generator_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t last_ms = -1;
static uint16_t last_counter;

static int fill_random(unsigned char *buffer, size_t len)
{
    size_t filled = 0;
    while (filled < len) {
        ssize_t got = getrandom(buffer + filled, len - filled, 0);
        if (got < 0)
            return -1;
        filled += (size_t)got;
    }
    return 0;
}

/* Picks the (millisecond, counter) pair after the last one handed out. When the clock does not advance or steps back, the previous millisecond is reused
 * with the next counter; a counter overflow borrows the next millisecond. */
static void next_timestamp(int64_t now_ms, uint16_t random_start, int64_t *ms, uint16_t *counter)
{
    pthread_mutex_lock(&generator_lock);
    if (now_ms > last_ms) {
        last_ms = now_ms;
        /* Start low in the 12-bit range so many ids fit in one millisecond. */
        last_counter = random_start & 0x1ff;
    } else if (last_counter < 0xfff) {
        last_counter++;
    } else {
        last_ms++;
        last_counter = 0;
    }
    *ms = last_ms;
    *counter = last_counter;
    pthread_mutex_unlock(&generator_lock);
}

int hv_uuid_v7_at(int64_t epoch_ms, char out[HV_UUID_TEXT_SIZE])
{
    unsigned char random_bytes[10];
    if (fill_random(random_bytes, sizeof(random_bytes)) != 0)
        return -1;

    int64_t ms;
    uint16_t counter;
    next_timestamp(epoch_ms, (uint16_t)(random_bytes[0] << 8 | random_bytes[1]), &ms, &counter);

    unsigned char bytes[16];
    for (int i = 0; i < 6; i++)
        bytes[i] = (unsigned char)((uint64_t)ms >> (40 - 8 * i));
    bytes[6] = (unsigned char)(0x70 | (counter >> 8));
    bytes[7] = (unsigned char)(counter & 0xff);
    memcpy(bytes + 8, random_bytes + 2, 8);
    bytes[8] = (unsigned char)(0x80 | (bytes[8] & 0x3f));

    snprintf(out, HV_UUID_TEXT_SIZE, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", bytes[0],
             bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8], bytes[9], bytes[10], bytes[11],
             bytes[12], bytes[13], bytes[14], bytes[15]);
    return 0;
}

int hv_uuid_v7(char out[HV_UUID_TEXT_SIZE])
{
    return hv_uuid_v7_at(hv_time_now_ms(), out);
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool hv_uuid_is_valid(const char *text, size_t len)
{
    if (len != HV_UUID_TEXT_SIZE - 1)
        return false;
    for (size_t i = 0; i < len; i++) {
        bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash_position ? text[i] != '-' : !is_hex(text[i]))
            return false;
    }
    return true;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    return (c | 0x20) - 'a' + 10;
}

int64_t hv_uuid_v7_time_ms(const char *text)
{
    int64_t ms = 0;
    for (int i = 0; i < 13; i++) {
        if (i == 8)
            continue;
        ms = ms << 4 | hex_value(text[i]);
    }
    return ms;
}
