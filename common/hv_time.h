/* Wall-clock and monotonic time helpers, and ISO-8601 UTC formatting. */
#ifndef HV_TIME_H
#define HV_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Length of "2026-12-04T19:23:56.123Z" plus the terminating NUL. */
#define HV_ISO8601_SIZE 25

/* Milliseconds since the Unix epoch, from the real-time clock. */
int64_t hv_time_now_ms(void);

/* Milliseconds from the monotonic clock: for timeouts and backoff. */
int64_t hv_time_monotonic_ms(void);

/* Nanoseconds from the monotonic clock: for measuring latencies. */
int64_t hv_time_monotonic_ns(void);

/* Formats milliseconds since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ" in UTC.
 * `out` must hold HV_ISO8601_SIZE bytes. Returns 0, or -1 for a time
 * outside the years 0000 to 9999. */
int hv_time_format_iso8601(int64_t epoch_ms, char *out);

#endif
