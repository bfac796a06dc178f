/* Unit tests of UUIDv7 generation and UUID validation (common/hv_uuid.c).
 * Criterion runs each test in its own process, so every test starts with a
 * fresh generator state. */
#include "hv_uuid.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_COUNT 10000

static bool is_lowercase_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Asserts the RFC 9562 text layout of a version 7 UUID. */
static void assert_v7_layout(char *id)
{
    cr_assert(eq(sz, strlen(id), 36), "id %s", id);
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            cr_assert(eq(chr, id[i], '-'), "id %s, index %zu", id, i);
        else
            cr_assert(is_lowercase_hex(id[i]), "id %s: '%c' at index %zu is not lowercase hex", id, id[i], i);
    }
    cr_assert(eq(chr, id[14], '7'), "id %s", id);
    cr_assert(not(zero(ptr, strchr("89ab", id[19]))), "id %s: variant digit '%c' is not one of 8, 9, a, b", id, id[19]);
}

Test(uuid, v7_has_canonical_layout)
{
    for (int i = 0; i < 1000; i++) {
        char id[HV_UUID_TEXT_SIZE];
        cr_assert(eq(int, hv_uuid_v7(id), 0));
        assert_v7_layout(id);
        cr_assert(hv_uuid_is_valid(id, strlen(id)), "id %s", id);
    }
}

Test(uuid, is_valid_accepts_both_cases)
{
    static const char lower[] = "0190b1f2-7c3a-7def-8abc-0123456789ab";
    static const char upper[] = "0190B1F2-7C3A-7DEF-8ABC-0123456789AB";
    static const char mixed[] = "0190b1F2-7c3A-7Def-8aBc-0123456789aB";

    cr_assert(hv_uuid_is_valid(lower, strlen(lower)));
    cr_assert(hv_uuid_is_valid(upper, strlen(upper)));
    cr_assert(hv_uuid_is_valid(mixed, strlen(mixed)));
}

Test(uuid, is_valid_rejects_malformed_text)
{
    static const char *const malformed[] = {
        "",
        "0190b1f2-7c3a-7def-8abc-0123456789a",
        "0190b1f2-7c3a-7def-8abc-0123456789abc",
        "0190b1f2-7c3a-7def-8abc-0123456789ag",
        "0190b1f2-7c3a-7def-8abc-01234567 9ab",
        "0190b1f27-c3a-7def-8abc-0123456789ab",
        "0190b1f2-7c3a7-def-8abc-0123456789ab",
        "0190b1f2-7c3a-7def-8abc0-123456789ab",
        "0190b1f2-7c3a-7def8-abc-0123456789ab",
        "0190b1f2x7c3a-7def-8abc-0123456789ab",
        "0190b1f207c3a07def08abc00123456789ab",
        "{190b1f2-7c3a-7def-8abc-0123456789a}",
        "0190b1f2-7c3a-7def-8abc-0123456789\xc3\xa9",
    };

    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        size_t size = strlen(malformed[i]);
        /* An exact-size heap copy lets AddressSanitizer catch an overread. */
        char *copy = malloc(size > 0 ? size : 1);
        cr_assert(not(zero(ptr, copy)));
        memcpy(copy, malformed[i], size);
        bool valid = hv_uuid_is_valid(copy, size);
        free(copy);
        cr_assert(not(valid), "\"%s\" was accepted", malformed[i]);
    }
}

Test(uuid, is_valid_uses_given_length)
{
    static const char text[] = "0190b1f2-7c3a-7def-8abc-0123456789ab";

    cr_assert(not(hv_uuid_is_valid(text, strlen(text) - 1)));
}

Test(uuid, v7_ids_strictly_increase)
{
    char previous[HV_UUID_TEXT_SIZE];
    cr_assert(eq(int, hv_uuid_v7(previous), 0));

    for (int i = 1; i < ID_COUNT; i++) {
        char id[HV_UUID_TEXT_SIZE];
        cr_assert(eq(int, hv_uuid_v7(id), 0));
        cr_assert(lt(int, strcmp(previous, id), 0), "id %d: %s does not sort after %s", i, id, previous);
        memcpy(previous, id, sizeof(id));
    }
}

Test(uuid, v7_increases_within_one_millisecond)
{
    const int64_t fixed_ms = INT64_C(1796412236123);
    char previous[HV_UUID_TEXT_SIZE];
    cr_assert(eq(int, hv_uuid_v7_at(fixed_ms, previous), 0));
    cr_assert(eq(i64, hv_uuid_v7_time_ms(previous), fixed_ms));

    for (int i = 1; i < ID_COUNT; i++) {
        char id[HV_UUID_TEXT_SIZE];
        cr_assert(eq(int, hv_uuid_v7_at(fixed_ms, id), 0));
        assert_v7_layout(id);
        cr_assert(lt(int, strcmp(previous, id), 0), "id %d: %s does not sort after %s", i, id, previous);
        memcpy(previous, id, sizeof(id));
    }
}

Test(uuid, v7_counter_overflow_borrows_next_millisecond)
{
    /* The 12-bit counter holds at most 4096 values, so 4097 ids at one
     * clock reading cannot all carry that millisecond. */
    const int64_t fixed_ms = INT64_C(1796412236123);
    char id[HV_UUID_TEXT_SIZE];

    for (int i = 0; i < 4097; i++)
        cr_assert(eq(int, hv_uuid_v7_at(fixed_ms, id), 0));
    cr_assert(gt(i64, hv_uuid_v7_time_ms(id), fixed_ms), "last id %s", id);
}

Test(uuid, v7_increases_when_clock_steps_back)
{
    /* The clock advances 1 ms per id for 100 ids, then steps back 1 s. */
    const int64_t start_ms = INT64_C(1796412236123);
    char previous[HV_UUID_TEXT_SIZE];
    cr_assert(eq(int, hv_uuid_v7_at(start_ms, previous), 0));

    for (int i = 1; i < ID_COUNT; i++) {
        int64_t now_ms = start_ms + i % 100 - (int64_t)(i / 100) * 1000;
        char id[HV_UUID_TEXT_SIZE];
        cr_assert(eq(int, hv_uuid_v7_at(now_ms, id), 0));
        cr_assert(lt(int, strcmp(previous, id), 0), "id %d at %" PRId64 " ms: %s does not sort after %s", i, now_ms, id, previous);
        memcpy(previous, id, sizeof(id));
    }
}

Test(uuid, v7_time_ms_returns_given_timestamp)
{
    /* Rising values, so that the generator never reuses an earlier
     * millisecond. The last one is the largest 48-bit timestamp. */
    static const int64_t timestamps[] = {0, 1, INT64_C(1700000000000), INT64_C(1796412236123), (INT64_C(1) << 48) - 1};

    for (size_t i = 0; i < sizeof(timestamps) / sizeof(timestamps[0]); i++) {
        char id[HV_UUID_TEXT_SIZE];
        cr_assert(eq(int, hv_uuid_v7_at(timestamps[i], id), 0));
        cr_assert(eq(i64, hv_uuid_v7_time_ms(id), timestamps[i]), "id %s", id);
    }
}

Test(uuid, v7_writes_timestamp_as_first_48_bits)
{
    const int64_t timestamp = INT64_C(1796412236123);
    char id[HV_UUID_TEXT_SIZE];
    cr_assert(eq(int, hv_uuid_v7_at(timestamp, id), 0));

    /* 12 hexadecimal digits, split by the first dash after 8 of them. */
    char digits[13];
    snprintf(digits, sizeof(digits), "%012" PRIx64, (uint64_t)timestamp);
    char expected[14];
    snprintf(expected, sizeof(expected), "%.8s-%.4s", digits, digits + 8);

    char actual[14];
    memcpy(actual, id, 13);
    actual[13] = '\0';
    cr_assert(eq(str, actual, expected));
}

Test(uuid, time_ms_reads_uppercase_text)
{
    static const char upper[] = "01A2B3C4-D5E6-7000-8000-000000000000";

    cr_assert(eq(i64, hv_uuid_v7_time_ms(upper), INT64_C(0x01a2b3c4d5e6)));
}

typedef struct {
    char ids[ID_COUNT][HV_UUID_TEXT_SIZE];
    int failures;
} generated_ids;

/* Makes both threads start generating together, so that their calls
 * interleave. */
static pthread_barrier_t start_barrier;

static void *generate_ids(void *argument)
{
    generated_ids *out = argument;
    pthread_barrier_wait(&start_barrier);
    for (int i = 0; i < ID_COUNT; i++) {
        if (hv_uuid_v7(out->ids[i]) != 0)
            out->failures++;
    }
    return NULL;
}

static int compare_ids(const void *left, const void *right)
{
    return strcmp(left, right);
}

Test(uuid, v7_ids_from_two_threads_are_distinct)
{
    generated_ids *batches = calloc(2, sizeof(generated_ids));
    cr_assert(not(zero(ptr, batches)));

    cr_assert(eq(int, pthread_barrier_init(&start_barrier, NULL, 2), 0));
    pthread_t threads[2];
    for (int t = 0; t < 2; t++)
        cr_assert(eq(int, pthread_create(&threads[t], NULL, generate_ids, &batches[t]), 0));
    for (int t = 0; t < 2; t++)
        cr_assert(eq(int, pthread_join(threads[t], NULL), 0));
    pthread_barrier_destroy(&start_barrier);

    for (int t = 0; t < 2; t++) {
        cr_assert(eq(int, batches[t].failures, 0), "thread %d", t);
        for (int i = 1; i < ID_COUNT; i++)
            cr_assert(lt(int, strcmp(batches[t].ids[i - 1], batches[t].ids[i]), 0), "thread %d, id %d: %s after %s", t, i,
                      batches[t].ids[i], batches[t].ids[i - 1]);
    }

    char(*all)[HV_UUID_TEXT_SIZE] = calloc(2 * ID_COUNT, HV_UUID_TEXT_SIZE);
    cr_assert(not(zero(ptr, all)));
    memcpy(all, batches[0].ids, sizeof(batches[0].ids));
    memcpy(all + ID_COUNT, batches[1].ids, sizeof(batches[1].ids));
    qsort(all, 2 * ID_COUNT, HV_UUID_TEXT_SIZE, compare_ids);

    for (int i = 1; i < 2 * ID_COUNT; i++)
        cr_assert(ne(int, strcmp(all[i - 1], all[i]), 0), "id %s was generated twice", all[i]);

    free(all);
    free(batches);
}
