/* One-line key=value logging to stderr (journald and grep friendly). */
#include "hv_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static const char *log_component = "helvino";
static hv_log_level log_min_level = HV_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void hv_log_init(const char *component, hv_log_level level)
{
    log_component = component;
    log_min_level = level;
}

int hv_log_level_parse(const char *name, hv_log_level *level)
{
    for (int i = HV_LOG_DEBUG; i <= HV_LOG_ERROR; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = (hv_log_level)i;
            return 0;
        }
    }
    return -1;
}

bool hv_log_enabled(hv_log_level level)
{
    return level >= log_min_level;
}

typedef struct {
    char data[LINE_MAX_BYTES];
    size_t len;
} line_buffer;

static void append_char(line_buffer *line, char c)
{
    /* Keep one byte for the final newline. */
    if (line->len + 1 < sizeof(line->data))
        line->data[line->len++] = c;
}

static void append_raw(line_buffer *line, const char *text)
{
    for (; *text; text++)
        append_char(line, *text);
}

static bool needs_quotes(const char *value)
{
    if (*value == '\0')
        return true;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
            return true;
    }
    return false;
}

/* Appends a value, quoted when needed, with control characters escaped so
 * that one event always stays on one line. */
static void append_value(line_buffer *line, const char *value)
{
    if (!needs_quotes(value)) {
        append_raw(line, value);
        return;
    }
    append_char(line, '"');
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p == '"' || *p == '\\') {
            append_char(line, '\\');
            append_char(line, (char)*p);
        } else if (*p == '\n') {
            append_raw(line, "\\n");
        } else if (*p < ' ' || *p == 0x7f) {
            char escaped[8];
            snprintf(escaped, sizeof(escaped), "\\x%02x", *p);
            append_raw(line, escaped);
        } else {
            append_char(line, (char)*p);
        }
    }
    append_char(line, '"');
}

void hv_log_write(hv_log_level level, const char *msg, const hv_log_field *fields)
{
    line_buffer line = {.len = 0};

    append_raw(&line, "level=");
    append_raw(&line, level_names[level]);
    append_raw(&line, " component=");
    append_raw(&line, log_component);
    append_raw(&line, " msg=");
    append_value(&line, msg);

    for (const hv_log_field *field = fields; field->kind != HV_FIELD_END; field++) {
        append_char(&line, ' ');
        append_raw(&line, field->key);
        append_char(&line, '=');
        if (field->kind == HV_FIELD_INT) {
            char number[24];
            snprintf(number, sizeof(number), "%" PRId64, field->num);
            append_raw(&line, number);
        } else {
            append_value(&line, field->str ? field->str : "");
        }
    }
    line.data[line.len++] = '\n';

    /* One write per line keeps lines from concurrent threads whole. A failed
     * write to stderr has nowhere to be reported. */
    ssize_t written = write(STDERR_FILENO, line.data, line.len);
    (void)written;
}
