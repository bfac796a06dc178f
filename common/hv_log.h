/* One-line key=value logging to stderr, shared by every Helvino program. */
#ifndef HV_LOG_H
#define HV_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { HV_LOG_DEBUG, HV_LOG_INFO, HV_LOG_WARN, HV_LOG_ERROR } hv_log_level;

typedef enum { HV_FIELD_END, HV_FIELD_STR, HV_FIELD_INT } hv_field_kind;

/* One key=value pair of a log line. Build it with HV_STR or HV_INT. */
typedef struct {
    hv_field_kind kind;
    const char *key;
    const char *str; /* HV_FIELD_STR; NULL prints as an empty value */
    int64_t num;     /* HV_FIELD_INT */
} hv_log_field;

#define HV_STR(k, v) ((hv_log_field){.kind = HV_FIELD_STR, .key = (k), .str = (v)})
#define HV_INT(k, v) ((hv_log_field){.kind = HV_FIELD_INT, .key = (k), .num = (int64_t)(v)})
#define HV_LOG_END ((hv_log_field){.kind = HV_FIELD_END})

/* Writes `level=info component=store msg="..." key=value ...` as one line,
 * only when the level is enabled. Pass at least one field (HV_LOG_END alone
 * when there is nothing else to say). Values that contain spaces, quotes,
 * `=` or control characters are double-quoted and escaped. */
#define HV_LOG(level, msg, ...)                                                                                                    \
    do {                                                                                                                           \
        if (hv_log_enabled(level))                                                                                                 \
            hv_log_write((level), (msg), (const hv_log_field[]){__VA_ARGS__, HV_LOG_END});                                         \
    } while (0)

#define HV_DEBUG(msg, ...) HV_LOG(HV_LOG_DEBUG, msg, __VA_ARGS__)
#define HV_INFO(msg, ...) HV_LOG(HV_LOG_INFO, msg, __VA_ARGS__)
#define HV_WARN(msg, ...) HV_LOG(HV_LOG_WARN, msg, __VA_ARGS__)
#define HV_ERROR(msg, ...) HV_LOG(HV_LOG_ERROR, msg, __VA_ARGS__)

/* Sets the component name printed on every line (a static string) and the
 * minimum level. Call once at start, before any thread logs. */
void hv_log_init(const char *component, hv_log_level level);

/* Parses "debug", "info", "warn" or "error". Returns 0, or -1 when the name
 * is none of them. */
int hv_log_level_parse(const char *name, hv_log_level *level);

bool hv_log_enabled(hv_log_level level);

/* Writes one line. Fields end at the first HV_FIELD_END entry. Thread-safe:
 * the line is formatted in a local buffer and written with one write(2). */
void hv_log_write(hv_log_level level, const char *msg, const hv_log_field *fields);

#endif
