/* Unit tests of settings from defaults, environment and flags
 * (common/hv_config.c). Criterion runs each test in its own process, so
 * setenv in one test does not leak into another. */
#include "hv_config.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Asserts that `text` contains `part`, printing both on failure. */
#define assert_contains(text, part) cr_assert(strstr((text), (part)) != NULL, "\"%s\" does not contain \"%s\"", (text), (part))

/* Asserts that `text` does not contain `part`, printing both on failure. */
#define assert_lacks(text, part) cr_assert(strstr((text), (part)) == NULL, "\"%s\" contains \"%s\"", (text), (part))

static const char *listen_address;
static long port;
static bool verbose;
static const char *database;
static const char *api_key;

static hv_setting settings[] = {
    {.flag = "listen",
     .env = "HV_TEST_LISTEN",
     .type = HV_SETTING_STRING,
     .default_value = "127.0.0.1",
     .help = "Address to listen on.",
     .target = &listen_address},
    {.flag = "port",
     .env = "HV_TEST_PORT",
     .type = HV_SETTING_INT,
     .default_value = "8080",
     .help = "TCP port to listen on.",
     .target = &port,
     .min = 1,
     .max = 65535},
    {.flag = "verbose",
     .env = "HV_TEST_VERBOSE",
     .type = HV_SETTING_BOOL,
     .default_value = "false",
     .help = "Log every request.",
     .target = &verbose},
    {.flag = "database",
     .env = "HV_TEST_DATABASE",
     .type = HV_SETTING_STRING,
     .default_value = "host=localhost dbname=helvino",
     .help = "libpq connection string.",
     .target = &database,
     .display = HV_SHOW_CONNINFO},
    {.flag = "api-key",
     .env = "HV_TEST_API_KEY",
     .type = HV_SETTING_STRING,
     .default_value = "",
     .help = "Key that clients must send.",
     .target = &api_key,
     .display = HV_SHOW_HIDDEN},
};

#define SETTING_COUNT (sizeof(settings) / sizeof(settings[0]))

static char error[256];

static void clear_environment(void)
{
    for (size_t i = 0; i < SETTING_COUNT; i++)
        unsetenv(settings[i].env);
    error[0] = '\0';
}

TestSuite(config, .init = clear_environment);

/* Loads the settings from a NULL-terminated argument list whose first entry
 * is the program name. */
static int load(char **argv, int *first_positional)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    return hv_config_load(settings, SETTING_COUNT, argc, argv, first_positional, error, sizeof(error));
}

#define ARGS(...) ((char *[]){"helvino-test", __VA_ARGS__, NULL})
#define NO_ARGS ((char *[]){"helvino-test", NULL})

Test(config, defaults_apply_without_env_or_flags)
{
    cr_assert(eq(int, load(NO_ARGS, NULL), HV_CONFIG_OK), "error: %s", error);

    cr_assert(eq(str, (char *)listen_address, "127.0.0.1"));
    cr_assert(eq(long, port, 8080));
    cr_assert(eq(int, verbose, false));
    cr_assert(eq(str, (char *)database, "host=localhost dbname=helvino"));
    cr_assert(eq(str, (char *)api_key, ""));
}

Test(config, env_overrides_default)
{
    setenv("HV_TEST_LISTEN", "0.0.0.0", 1);
    setenv("HV_TEST_PORT", "9001", 1);
    setenv("HV_TEST_VERBOSE", "yes", 1);

    cr_assert(eq(int, load(NO_ARGS, NULL), HV_CONFIG_OK), "error: %s", error);
    cr_assert(eq(str, (char *)listen_address, "0.0.0.0"));
    cr_assert(eq(long, port, 9001));
    cr_assert(eq(int, verbose, true));
}

Test(config, empty_env_keeps_default)
{
    setenv("HV_TEST_PORT", "", 1);

    cr_assert(eq(int, load(NO_ARGS, NULL), HV_CONFIG_OK), "error: %s", error);
    cr_assert(eq(long, port, 8080));
}

Test(config, flag_overrides_env)
{
    setenv("HV_TEST_PORT", "9001", 1);
    setenv("HV_TEST_VERBOSE", "true", 1);

    cr_assert(eq(int, load(ARGS("--port", "9002", "--verbose=off"), NULL), HV_CONFIG_OK), "error: %s", error);
    cr_assert(eq(long, port, 9002));
    cr_assert(eq(int, verbose, false));
}

Test(config, flag_accepts_equals_form)
{
    cr_assert(eq(int, load(ARGS("--port=9003", "--listen=::1"), NULL), HV_CONFIG_OK), "error: %s", error);
    cr_assert(eq(long, port, 9003));
    cr_assert(eq(str, (char *)listen_address, "::1"));
}

Test(config, flag_accepts_separate_value)
{
    cr_assert(eq(int, load(ARGS("--port", "9004", "--listen", "10.0.0.1"), NULL), HV_CONFIG_OK), "error: %s", error);
    cr_assert(eq(long, port, 9004));
    cr_assert(eq(str, (char *)listen_address, "10.0.0.1"));
}

Test(config, equals_form_keeps_later_equals_signs)
{
    cr_assert(eq(int, load(ARGS("--database=host=db password=x"), NULL), HV_CONFIG_OK), "error: %s", error);
    cr_assert(eq(str, (char *)database, "host=db password=x"));
}

Test(config, last_flag_wins)
{
    cr_assert(eq(int, load(ARGS("--port=1", "--port=2"), NULL), HV_CONFIG_OK), "error: %s", error);
    cr_assert(eq(long, port, 2));
}

Test(config, bare_bool_flag_sets_true)
{
    cr_assert(eq(int, load(ARGS("--verbose"), NULL), HV_CONFIG_OK), "error: %s", error);
    cr_assert(eq(int, verbose, true));
}

Test(config, bare_bool_flag_takes_no_next_argument)
{
    /* "false" after a bare boolean flag is the first positional argument,
     * not the flag's value. */
    int first_positional = -1;
    cr_assert(eq(int, load(ARGS("--verbose", "false"), &first_positional), HV_CONFIG_OK), "error: %s", error);
    cr_assert(eq(int, verbose, true));
    cr_assert(eq(int, first_positional, 2));
}

Test(config, rejects_invalid_bool)
{
    cr_assert(eq(int, load(ARGS("--verbose=maybe"), NULL), HV_CONFIG_ERROR));
    assert_contains(error, "\"maybe\"");
    assert_contains(error, "--verbose");
}

Test(config, rejects_int_out_of_range)
{
    cr_assert(eq(int, load(ARGS("--port", "70000"), NULL), HV_CONFIG_ERROR));
    assert_contains(error, "\"70000\"");
    assert_contains(error, "--port");
}

Test(config, rejects_int_below_minimum)
{
    cr_assert(eq(int, load(ARGS("--port=0"), NULL), HV_CONFIG_ERROR));
    assert_contains(error, "\"0\"");
}

Test(config, rejects_int_that_is_not_number)
{
    static const char *const not_numbers[] = {"eighty", "80x", "8 0", "", "99999999999999999999999"};

    for (size_t i = 0; i < sizeof(not_numbers) / sizeof(not_numbers[0]); i++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--port=%s", not_numbers[i]);
        char quoted[64];
        snprintf(quoted, sizeof(quoted), "\"%s\"", not_numbers[i]);

        error[0] = '\0';
        cr_assert(eq(int, load(ARGS(flag), NULL), HV_CONFIG_ERROR), "value \"%s\" was accepted", not_numbers[i]);
        assert_contains(error, quoted);
    }
}

Test(config, rejects_invalid_env_value_naming_variable)
{
    setenv("HV_TEST_PORT", "http", 1);

    cr_assert(eq(int, load(NO_ARGS, NULL), HV_CONFIG_ERROR));
    assert_contains(error, "\"http\"");
    assert_contains(error, "HV_TEST_PORT");
}

Test(config, rejects_unknown_flag)
{
    cr_assert(eq(int, load(ARGS("--colour=red"), NULL), HV_CONFIG_ERROR));
    assert_contains(error, "--colour");
}

Test(config, rejects_flag_that_only_prefixes_a_setting)
{
    cr_assert(eq(int, load(ARGS("--po=1"), NULL), HV_CONFIG_ERROR));
    assert_contains(error, "--po");
}

Test(config, rejects_missing_value)
{
    cr_assert(eq(int, load(ARGS("--port"), NULL), HV_CONFIG_ERROR));
    assert_contains(error, "--port");
}

Test(config, help_flag_returns_help)
{
    cr_assert(eq(int, load(ARGS("--help"), NULL), HV_CONFIG_HELP));
    cr_assert(eq(int, load(ARGS("-h"), NULL), HV_CONFIG_HELP));
    cr_assert(eq(int, load(ARGS("--port=9000", "--help"), NULL), HV_CONFIG_HELP));
}

Test(config, rejects_positional_without_index)
{
    cr_assert(eq(int, load(ARGS("--port=9000", "serve"), NULL), HV_CONFIG_ERROR));
    assert_contains(error, "\"serve\"");
}

Test(config, reports_first_positional_index)
{
    int first_positional = -1;

    /* Parsing stops at "send", so the unknown flag after it is left to the
     * subcommand. */
    cr_assert(eq(int, load(ARGS("--port", "9000", "send", "--text=hi"), &first_positional), HV_CONFIG_OK), "error: %s", error);
    cr_assert(eq(int, first_positional, 3));
    cr_assert(eq(long, port, 9000));
}

Test(config, reports_argc_without_positional)
{
    int first_positional = -1;

    cr_assert(eq(int, load(ARGS("--verbose"), &first_positional), HV_CONFIG_OK), "error: %s", error);
    cr_assert(eq(int, first_positional, 2));
}

Test(config, double_dash_ends_flags)
{
    int first_positional = -1;

    cr_assert(eq(int, load(ARGS("--", "--port=1"), &first_positional), HV_CONFIG_OK), "error: %s", error);
    cr_assert(eq(int, first_positional, 2));
    cr_assert(eq(long, port, 8080));
}

/* Masks `conninfo` into a buffer of ample size. */
static char *mask(const char *conninfo)
{
    static char out[512];
    hv_config_mask_conninfo(conninfo, out, sizeof(out));
    return out;
}

Test(config, mask_conninfo_hides_keyword_password)
{
    cr_assert(eq(str, mask("host=db password=secret dbname=helvino"), "host=db password=*** dbname=helvino"));
    cr_assert(eq(str, mask("password=secret"), "password=***"));
}

Test(config, mask_conninfo_hides_quoted_password)
{
    cr_assert(eq(str, mask("host=db password = 'se cret' dbname=helvino"), "host=db password=*** dbname=helvino"));
    cr_assert(eq(str, mask("password='it\\'s secret' user=u"), "password=*** user=u"));
}

Test(config, mask_conninfo_hides_uri_password)
{
    cr_assert(eq(str, mask("postgresql://u:secret@h/db"), "postgresql://u:***@h/db"));
    cr_assert(eq(str, mask("postgres://u:p@ss@h:5432/db?sslmode=require"), "postgres://u:***@h:5432/db?sslmode=require"));
}

Test(config, mask_conninfo_hides_uri_query_password)
{
    /* libpq also accepts the password as a URI query parameter. */
    char *masked = mask("postgresql://u@h/db?password=secret");
    assert_lacks(masked, "secret");
}

Test(config, mask_conninfo_hides_password_after_tab)
{
    /* libpq accepts any white space between keyword=value pairs. */
    char *masked = mask("host=db\tpassword=secret");
    assert_lacks(masked, "secret");
}

Test(config, mask_conninfo_keeps_text_without_password)
{
    static const char *const unchanged[] = {
        "host=db dbname=helvino", "host=db passwordfile=/etc/pgpass", "postgresql://u@h/db", "postgresql://h:5432/db", "",
    };

    for (size_t i = 0; i < sizeof(unchanged) / sizeof(unchanged[0]); i++)
        cr_assert(eq(str, mask(unchanged[i]), (char *)unchanged[i]));
}

Test(config, mask_conninfo_truncates_to_buffer)
{
    char out[8];
    hv_config_mask_conninfo("password=secret host=db", out, sizeof(out));

    cr_assert(lt(sz, strlen(out), sizeof(out)));
    assert_lacks(out, "sec");
}

Test(config, describe_shows_every_setting)
{
    cr_assert(eq(int, load(NO_ARGS, NULL), HV_CONFIG_OK), "error: %s", error);

    char description[512];
    hv_config_describe(settings, SETTING_COUNT, description, sizeof(description));
    cr_assert(
        eq(str, description, "listen=127.0.0.1 port=8080 verbose=false database='host=localhost dbname=helvino' api-key=(unset)"));
}

Test(config, describe_hides_secret_value)
{
    setenv("HV_TEST_API_KEY", "topsecret-key", 1);
    setenv("HV_TEST_DATABASE", "host=db password=hunter2 dbname=helvino", 1);
    cr_assert(eq(int, load(NO_ARGS, NULL), HV_CONFIG_OK), "error: %s", error);

    char description[512];
    hv_config_describe(settings, SETTING_COUNT, description, sizeof(description));
    assert_contains(description, "api-key=(set)");
    assert_lacks(description, "topsecret");
    assert_contains(description, "database='host=db password=*** dbname=helvino'");
    assert_lacks(description, "hunter2");
}

Test(config, describe_truncates_to_buffer)
{
    cr_assert(eq(int, load(NO_ARGS, NULL), HV_CONFIG_OK), "error: %s", error);

    char description[16];
    hv_config_describe(settings, SETTING_COUNT, description, sizeof(description));
    cr_assert(eq(str, description, "listen=127.0.0."));
}
