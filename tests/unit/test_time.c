/* Unit tests of the clocks and ISO-8601 formatting (common/hv_time.c).
 * The expected strings were computed with GNU date, for example
 * `date -u -d @1796412236.123 +%FT%T.%3NZ`. */
#include "hv_time.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Formats into a heap buffer of exactly HV_ISO8601_SIZE bytes, so that
 * AddressSanitizer catches a write past it, and copies the text out. */
static int format(int64_t epoch_ms, char out[HV_ISO8601_SIZE])
{
    char *exact = malloc(HV_ISO8601_SIZE);
    cr_assert(not(zero(ptr, exact)));
    int result = hv_time_format_iso8601(epoch_ms, exact);
    if (result == 0)
        memcpy(out, exact, HV_ISO8601_SIZE);
    free(exact);
    return result;
}

Test(time, iso8601_formats_epoch)
{
    char text[HV_ISO8601_SIZE];
    cr_assert(eq(int, format(0, text), 0));
    cr_assert(eq(str, text, "1970-01-01T00:00:00.000Z"));
}

Test(time, iso8601_formats_known_instants)
{
    static const struct {
        int64_t epoch_ms;
        const char *expected;
    } cases[] = {
        {INT64_C(1796412236123), "2026-12-04T19:23:56.123Z"},
        {INT64_C(1234567890500), "2009-02-13T23:31:30.500Z"},
        {INT64_C(951782400000), "2000-02-29T00:00:00.000Z"},
        {INT64_C(4107542400000), "2100-03-01T00:00:00.000Z"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[HV_ISO8601_SIZE];
        cr_assert(eq(int, format(cases[i].epoch_ms, text), 0), "epoch_ms %lld", (long long)cases[i].epoch_ms);
        cr_assert(eq(str, text, (char *)cases[i].expected), "epoch_ms %lld", (long long)cases[i].epoch_ms);
    }
}

Test(time, iso8601_formats_times_before_epoch)
{
    static const struct {
        int64_t epoch_ms;
        const char *expected;
    } cases[] = {
        {-1, "1969-12-31T23:59:59.999Z"},
        {-1000, "1969-12-31T23:59:59.000Z"},
        {-1001, "1969-12-31T23:59:58.999Z"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[HV_ISO8601_SIZE];
        cr_assert(eq(int, format(cases[i].epoch_ms, text), 0), "epoch_ms %lld", (long long)cases[i].epoch_ms);
        cr_assert(eq(str, text, (char *)cases[i].expected), "epoch_ms %lld", (long long)cases[i].epoch_ms);
    }
}

Test(time, iso8601_formats_range_bounds)
{
    char text[HV_ISO8601_SIZE];

    cr_assert(eq(int, format(INT64_C(-62167219200000), text), 0));
    cr_assert(eq(str, text, "0000-01-01T00:00:00.000Z"));

    cr_assert(eq(int, format(INT64_C(253402300799999), text), 0));
    cr_assert(eq(str, text, "9999-12-31T23:59:59.999Z"));
}

Test(time, iso8601_rejects_out_of_range)
{
    static const int64_t out_of_range[] = {
        INT64_C(253402300800000), /* 10000-01-01T00:00:00.000Z */
        INT64_C(-62167219200001), /* one millisecond before the year 0000 */
        INT64_MAX,
        INT64_MIN,
    };

    for (size_t i = 0; i < sizeof(out_of_range) / sizeof(out_of_range[0]); i++) {
        char text[HV_ISO8601_SIZE];
        cr_assert(eq(int, format(out_of_range[i], text), -1), "epoch_ms %lld", (long long)out_of_range[i]);
    }
}

Test(time, monotonic_clock_never_goes_backwards)
{
    int64_t previous = hv_time_monotonic_ms();

    for (int i = 0; i < 100000; i++) {
        int64_t now = hv_time_monotonic_ms();
        cr_assert(ge(i64, now, previous), "reading %d", i);
        previous = now;
    }
}

Test(time, monotonic_clock_advances_over_sleep)
{
    int64_t before = hv_time_monotonic_ms();
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
    cr_assert(eq(int, nanosleep(&pause, NULL), 0));
    int64_t after = hv_time_monotonic_ms();

    /* Both readings are rounded down to whole milliseconds, and at least
     * 20 ms passed between them, so the difference is at least 20. */
    cr_assert(ge(i64, after - before, 20));
}

Test(time, now_ms_matches_system_clock)
{
    int64_t from_time = (int64_t)time(NULL) * 1000;
    int64_t now = hv_time_now_ms();

    /* time() truncates to whole seconds, so the two may differ by up to
     * one second, plus scheduling delay between the calls. */
    cr_assert(ge(i64, now, from_time - 1000));
    cr_assert(le(i64, now, from_time + 2000));
}
