/* Settings from environment variables and command-line flags, with --help. */
#ifndef HV_CONFIG_H
#define HV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { HV_SETTING_STRING, HV_SETTING_INT, HV_SETTING_BOOL } hv_setting_type;

/* How a setting's value is shown in the startup log line. */
typedef enum {
    HV_SHOW_PLAIN,
    HV_SHOW_CONNINFO, /* a libpq connection string: its password is masked */
    HV_SHOW_HIDDEN,   /* a secret: only "(set)" or "(unset)" is shown */
} hv_setting_display;

/* One setting. Its value comes from, in rising priority: the default, the
 * environment variable, the flag. `target` points at a `const char *`, a
 * `long` or a `bool` according to `type`; string values point into argv,
 * the environment or the default, which all outlive the program's run. */
typedef struct {
    const char *flag; /* without the leading "--" */
    const char *env;  /* NULL when the setting has no variable */
    hv_setting_type type;
    const char *default_value; /* in the same text form as the variable */
    const char *help;
    void *target;
    long min, max; /* the accepted range of an HV_SETTING_INT */
    hv_setting_display display;
} hv_setting;

#define HV_CONFIG_OK 0
#define HV_CONFIG_HELP 1
#define HV_CONFIG_ERROR (-1)

/* Fills every setting's target. Flags are `--flag value`, `--flag=value`,
 * and for booleans also a bare `--flag`. Parsing stops at the first
 * argument that is not a flag (or after `--`); its index is stored in
 * *first_positional (argc when there is none), so that a tool can take a
 * subcommand; pass NULL to reject positional arguments.
 * Returns HV_CONFIG_OK, HV_CONFIG_HELP when --help or -h was given, or
 * HV_CONFIG_ERROR with a message in `error` naming the bad value. */
__attribute__((warn_unused_result)) int hv_config_load(hv_setting *settings, size_t count, int argc, char **argv,
                                                       int *first_positional, char *error, size_t error_size);

/* Prints every flag, its variable, its default and its help text. */
void hv_config_print_usage(const hv_setting *settings, size_t count, const char *program, const char *synopsis);

/* Writes the effective settings as `flag=value` pairs separated by spaces,
 * with secrets masked, for the startup log line. Truncates to fit. */
void hv_config_describe(const hv_setting *settings, size_t count, char *out, size_t out_size);

/* Copies a libpq connection string (key=value form or URI) with every
 * password replaced by "***". Truncates to fit. */
void hv_config_mask_conninfo(const char *conninfo, char *out, size_t out_size);

#endif
