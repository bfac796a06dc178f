/* Wall-clock and monotonic time helpers, and ISO-8601 UTC formatting. */
#include "hv_time.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t clock_ms(clockid_t clock)
{
    struct timespec now;
    clock_gettime(clock, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int64_t hv_time_now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t hv_time_monotonic_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t hv_time_monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

int hv_time_format_iso8601(int64_t epoch_ms, char *out)
{
    /* Floor division, so that times before 1970 keep a positive millisecond
     * part. */
    int64_t seconds = epoch_ms / 1000;
    int64_t millis = epoch_ms % 1000;
    if (millis < 0) {
        millis += 1000;
        seconds -= 1;
    }

    time_t as_time_t = (time_t)seconds;
    struct tm utc;
    if (!gmtime_r(&as_time_t, &utc) || utc.tm_year + 1900 < 0 || utc.tm_year + 1900 > 9999)
        return -1;

    /* The range check above bounds every field, but GCC cannot see it, so
     * the formatting goes through a buffer with room for any int. */
    char text[64];
    snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
             utc.tm_hour, utc.tm_min, utc.tm_sec, (int)millis);
    memcpy(out, text, HV_ISO8601_SIZE);
    return 0;
}
