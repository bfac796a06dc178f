/* Unit tests of the key=value log lines (common/hv_log.c). Each test sends
 * file descriptor 2 to a temporary file while it logs, then reads the file
 * back. Criterion runs each test in its own process, so the logger starts
 * from its defaults in every test. */
#include "hv_log.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static FILE *capture_file;
static int saved_stderr = -1;

/* Sends everything written to file descriptor 2 into a temporary file. */
static void capture_start(void)
{
    fflush(stderr);
    capture_file = tmpfile();
    cr_assert(not(zero(ptr, capture_file)));
    saved_stderr = dup(STDERR_FILENO);
    cr_assert(ge(int, saved_stderr, 0));
    cr_assert(eq(int, dup2(fileno(capture_file), STDERR_FILENO), STDERR_FILENO));
}

/* Restores file descriptor 2 and returns what was written to it since
 * capture_start. */
static char *capture_stop(void)
{
    static char output[16384];

    cr_assert(eq(int, dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO));
    close(saved_stderr);
    saved_stderr = -1;

    rewind(capture_file);
    size_t len = fread(output, 1, sizeof(output) - 1, capture_file);
    output[len] = '\0';
    fclose(capture_file);
    capture_file = NULL;
    return output;
}

static size_t count_char(const char *text, char c)
{
    size_t count = 0;
    for (; *text; text++)
        count += *text == c;
    return count;
}

Test(log, writes_level_component_message_and_fields)
{
    hv_log_init("test", HV_LOG_INFO);

    capture_start();
    HV_WARN("disk almost full", HV_STR("path", "/var/lib/helvino"), HV_INT("free_mb", 12));
    char *output = capture_stop();

    cr_assert(eq(str, output, "level=warn component=test msg=\"disk almost full\" path=/var/lib/helvino free_mb=12\n"));
}

Test(log, leaves_simple_message_unquoted)
{
    hv_log_init("store", HV_LOG_INFO);

    capture_start();
    HV_INFO("started", HV_LOG_END);
    char *output = capture_stop();

    cr_assert(eq(str, output, "level=info component=store msg=started\n"));
}

Test(log, uses_default_component_before_init)
{
    capture_start();
    HV_ERROR("failed", HV_INT("code", 2));
    char *output = capture_stop();

    cr_assert(eq(str, output, "level=error component=helvino msg=failed code=2\n"));
}

Test(log, quotes_value_with_space)
{
    hv_log_init("test", HV_LOG_INFO);

    capture_start();
    HV_INFO("joined", HV_STR("name", "Ada Lovelace"));
    char *output = capture_stop();

    cr_assert(eq(str, output, "level=info component=test msg=joined name=\"Ada Lovelace\"\n"));
}

Test(log, escapes_double_quotes)
{
    hv_log_init("test", HV_LOG_INFO);

    capture_start();
    HV_INFO("said", HV_STR("text", "say \"hi\""));
    char *output = capture_stop();

    cr_assert(eq(str, output, "level=info component=test msg=said text=\"say \\\"hi\\\"\"\n"));
}

Test(log, quotes_value_with_equals_sign)
{
    hv_log_init("test", HV_LOG_INFO);

    capture_start();
    HV_INFO("parsed", HV_STR("pair", "a=b"));
    char *output = capture_stop();

    cr_assert(eq(str, output, "level=info component=test msg=parsed pair=\"a=b\"\n"));
}

Test(log, escapes_newline_to_keep_one_line)
{
    hv_log_init("test", HV_LOG_INFO);

    capture_start();
    HV_INFO("two\nlines", HV_STR("text", "line one\nline two"));
    char *output = capture_stop();

    cr_assert(eq(str, output, "level=info component=test msg=\"two\\nlines\" text=\"line one\\nline two\"\n"));
    cr_assert(eq(sz, count_char(output, '\n'), 1));
}

Test(log, escapes_backslash)
{
    hv_log_init("test", HV_LOG_INFO);

    capture_start();
    HV_INFO("opened", HV_STR("path", "C:\\temp"));
    char *output = capture_stop();

    cr_assert(eq(str, output, "level=info component=test msg=opened path=\"C:\\\\temp\"\n"));
}

Test(log, escapes_control_characters_as_hex)
{
    hv_log_init("test", HV_LOG_INFO);

    capture_start();
    HV_INFO("read", HV_STR("tab", "a\tb"), HV_STR("return", "a\rb"), HV_STR("delete", "\x7f"));
    char *output = capture_stop();

    cr_assert(eq(str, output, "level=info component=test msg=read tab=\"a\\x09b\" return=\"a\\x0db\" delete=\"\\x7f\"\n"));
}

Test(log, quotes_empty_and_null_values)
{
    hv_log_init("test", HV_LOG_INFO);

    capture_start();
    HV_INFO("checked", HV_STR("empty", ""), HV_STR("missing", NULL));
    char *output = capture_stop();

    cr_assert(eq(str, output, "level=info component=test msg=checked empty=\"\" missing=\"\"\n"));
}

Test(log, prints_integers)
{
    hv_log_init("test", HV_LOG_INFO);

    capture_start();
    HV_INFO("counted", HV_INT("zero", 0), HV_INT("negative", -42), HV_INT("min", INT64_MIN), HV_INT("max", INT64_MAX));
    char *output = capture_stop();

    cr_assert(eq(str, output,
                 "level=info component=test msg=counted zero=0 negative=-42 min=-9223372036854775808 "
                 "max=9223372036854775807\n"));
}

Test(log, suppresses_debug_at_info_level)
{
    hv_log_init("test", HV_LOG_INFO);

    cr_assert(not(hv_log_enabled(HV_LOG_DEBUG)));
    cr_assert(hv_log_enabled(HV_LOG_INFO));

    capture_start();
    HV_DEBUG("hidden", HV_LOG_END);
    HV_INFO("shown", HV_LOG_END);
    char *output = capture_stop();

    cr_assert(eq(str, output, "level=info component=test msg=shown\n"));
}

Test(log, warn_level_suppresses_info_but_keeps_error)
{
    hv_log_init("test", HV_LOG_WARN);

    capture_start();
    HV_INFO("hidden", HV_LOG_END);
    HV_ERROR("shown", HV_LOG_END);
    char *output = capture_stop();

    cr_assert(eq(str, output, "level=error component=test msg=shown\n"));
}

Test(log, debug_level_writes_debug)
{
    hv_log_init("test", HV_LOG_DEBUG);

    capture_start();
    HV_DEBUG("detail", HV_INT("step", 1));
    char *output = capture_stop();

    cr_assert(eq(str, output, "level=debug component=test msg=detail step=1\n"));
}

Test(log, truncates_long_line_but_keeps_newline)
{
    static char long_value[10000];
    memset(long_value, 'x', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';
    hv_log_init("test", HV_LOG_INFO);

    capture_start();
    HV_INFO("long", HV_STR("value", long_value));
    char *output = capture_stop();

    size_t len = strlen(output);
    cr_assert(le(sz, len, 4096));
    cr_assert(gt(sz, len, 4000));
    cr_assert(eq(chr, output[len - 1], '\n'));
    cr_assert(eq(sz, count_char(output, '\n'), 1));
}

Test(log, level_parse_accepts_every_name)
{
    static const struct {
        const char *name;
        hv_log_level level;
    } names[] = {
        {"debug", HV_LOG_DEBUG},
        {"info", HV_LOG_INFO},
        {"warn", HV_LOG_WARN},
        {"error", HV_LOG_ERROR},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        hv_log_level level = (hv_log_level)-1;
        cr_assert(eq(int, hv_log_level_parse(names[i].name, &level), 0), "name \"%s\"", names[i].name);
        cr_assert(eq(int, level, names[i].level), "name \"%s\"", names[i].name);
    }
}

Test(log, level_parse_rejects_unknown_names)
{
    static const char *const unknown[] = {"", "warning", "INFO", "trace", "debug "};

    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        hv_log_level level = HV_LOG_INFO;
        cr_assert(eq(int, hv_log_level_parse(unknown[i], &level), -1), "name \"%s\"", unknown[i]);
    }
}
