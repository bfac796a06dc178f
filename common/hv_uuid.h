/* Time-ordered UUIDs (version 7, RFC 9562) and UUID text validation. */
#ifndef HV_UUID_H
#define HV_UUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" plus the terminating NUL. */
#define HV_UUID_TEXT_SIZE 37

/* Writes a new UUIDv7 in lowercase text form into `out`. Within one process
 * the values strictly increase, also within one millisecond, so new rows
 * land at the end of a B-tree index. Thread-safe. Returns 0, or -1 when the
 * system random source failed. */
__attribute__((warn_unused_result)) int hv_uuid_v7(char out[HV_UUID_TEXT_SIZE]);

/* Same as hv_uuid_v7 with the clock reading given, for tests. */
__attribute__((warn_unused_result)) int hv_uuid_v7_at(int64_t epoch_ms, char out[HV_UUID_TEXT_SIZE]);

/* Returns true when `text` (of `len` bytes, not NUL-terminated) is a UUID
 * in the 8-4-4-4-12 hexadecimal form, in either case. */
bool hv_uuid_is_valid(const char *text, size_t len);

/* Extracts the millisecond timestamp of a UUIDv7 in text form. */
int64_t hv_uuid_v7_time_ms(const char *text);

#endif
