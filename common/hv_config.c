/* Settings from environment variables and command-line flags, with --help. */
#include "hv_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_value(hv_setting *setting, const char *text, const char *origin, char *error, size_t error_size)
{
    switch (setting->type) {
    case HV_SETTING_STRING:
        *(const char **)setting->target = text;
        return 0;

    case HV_SETTING_INT: {
        char *end;
        errno = 0;
        long value = strtol(text, &end, 10);
        if (errno != 0 || end == text || *end != '\0' || value < setting->min || value > setting->max) {
            snprintf(error, error_size, "invalid value \"%s\" for %s: expected a whole number from %ld to %ld", text, origin,
                     setting->min, setting->max);
            return -1;
        }
        *(long *)setting->target = value;
        return 0;
    }

    case HV_SETTING_BOOL:
        if (strcmp(text, "1") == 0 || strcmp(text, "true") == 0 || strcmp(text, "yes") == 0 || strcmp(text, "on") == 0) {
            *(bool *)setting->target = true;
        } else if (strcmp(text, "0") == 0 || strcmp(text, "false") == 0 || strcmp(text, "no") == 0 ||
                   strcmp(text, "off") == 0) {
            *(bool *)setting->target = false;
        } else {
            snprintf(error, error_size, "invalid value \"%s\" for %s: expected true or false", text, origin);
            return -1;
        }
        return 0;
    }
    return -1;
}

static hv_setting *find_flag(hv_setting *settings, size_t count, const char *name, size_t name_len)
{
    for (size_t i = 0; i < count; i++) {
        if (strlen(settings[i].flag) == name_len && memcmp(settings[i].flag, name, name_len) == 0)
            return &settings[i];
    }
    return NULL;
}

static int apply_defaults_and_environment(hv_setting *settings, size_t count, char *error, size_t error_size)
{
    for (size_t i = 0; i < count; i++) {
        hv_setting *setting = &settings[i];
        if (parse_value(setting, setting->default_value, setting->flag, error, error_size) != 0)
            return -1;

        const char *from_env = setting->env ? getenv(setting->env) : NULL;
        if (from_env && *from_env && parse_value(setting, from_env, setting->env, error, error_size) != 0)
            return -1;
    }
    return 0;
}

int hv_config_load(hv_setting *settings, size_t count, int argc, char **argv, int *first_positional, char *error,
                   size_t error_size)
{
    if (apply_defaults_and_environment(settings, count, error, error_size) != 0)
        return HV_CONFIG_ERROR;

    int i = 1;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return HV_CONFIG_HELP;
        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (strncmp(arg, "--", 2) != 0)
            break;

        const char *name = arg + 2;
        const char *equals = strchr(name, '=');
        size_t name_len = equals ? (size_t)(equals - name) : strlen(name);
        hv_setting *setting = find_flag(settings, count, name, name_len);
        if (!setting) {
            snprintf(error, error_size, "unknown option \"%s\"; see --help", arg);
            return HV_CONFIG_ERROR;
        }

        const char *value;
        if (equals) {
            value = equals + 1;
        } else if (setting->type == HV_SETTING_BOOL) {
            value = "true";
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(error, error_size, "missing value for --%s", setting->flag);
            return HV_CONFIG_ERROR;
        }

        char origin[128];
        snprintf(origin, sizeof(origin), "--%s", setting->flag);
        if (parse_value(setting, value, origin, error, error_size) != 0)
            return HV_CONFIG_ERROR;
    }

    if (first_positional) {
        *first_positional = i;
    } else if (i < argc) {
        snprintf(error, error_size, "unexpected argument \"%s\"; see --help", argv[i]);
        return HV_CONFIG_ERROR;
    }
    return HV_CONFIG_OK;
}

void hv_config_print_usage(const hv_setting *settings, size_t count, const char *program, const char *synopsis)
{
    printf("Usage: %s %s\n\nOptions (where an environment variable is shown, it sets the same value):\n", program, synopsis);
    for (size_t i = 0; i < count; i++) {
        const hv_setting *setting = &settings[i];
        printf("  --%s%s\n      %s\n      default: %s", setting->flag, setting->type == HV_SETTING_BOOL ? "[=BOOL]" : " VALUE",
               setting->help, *setting->default_value ? setting->default_value : "(empty)");
        if (setting->env)
            printf("   env: %s", setting->env);
        printf("\n");
    }
    printf("  --help\n      Print this help and exit.\n");
}

/* Appends `text` to out[*used], truncating at the end of the buffer. */
static void append_text(char *out, size_t out_size, size_t *used, const char *text, size_t len)
{
    size_t room = out_size - 1 - *used;
    size_t copied = len < room ? len : room;
    memcpy(out + *used, text, copied);
    *used += copied;
    out[*used] = '\0';
}

/* postgresql://user:secret@host/db?password=secret
 * -> postgresql://user:***@host/db?password=*** */
static void mask_uri(const char *uri, const char *authority, char *out, size_t out_size)
{
    size_t used = 0;
    out[0] = '\0';

    size_t authority_len = strcspn(authority, "/?");
    const char *at = NULL;
    for (const char *p = authority; p < authority + authority_len; p++)
        if (*p == '@')
            at = p;
    const char *colon = at ? memchr(authority, ':', (size_t)(at - authority)) : NULL;

    const char *rest = uri;
    if (colon) {
        append_text(out, out_size, &used, uri, (size_t)(colon - uri));
        append_text(out, out_size, &used, ":***", 4);
        rest = at;
    }

    /* libpq also takes the password as a query parameter. */
    const char *query = strchr(rest, '?');
    while (query) {
        const char *parameter = query + 1;
        append_text(out, out_size, &used, rest, (size_t)(parameter - rest));
        rest = parameter;
        if (strncmp(parameter, "password=", 9) == 0) {
            append_text(out, out_size, &used, "password=***", 12);
            rest = parameter + 9 + strcspn(parameter + 9, "&");
        }
        query = strchr(rest, '&');
    }
    append_text(out, out_size, &used, rest, strlen(rest));
}

/* host=x password=secret dbname=y -> host=x password=*** dbname=y. Pairs
 * may be separated by any white space, as libpq allows. */
static void mask_keyword_value(const char *conninfo, char *out, size_t out_size)
{
    size_t used = 0;
    const char *p = conninfo;
    out[0] = '\0';

    while (*p) {
        bool at_word_start = p == conninfo || isspace((unsigned char)p[-1]);
        bool is_password = at_word_start && strncmp(p, "password", 8) == 0;
        const char *after_key = is_password ? p + 8 : p;
        while (is_password && isspace((unsigned char)*after_key))
            after_key++;

        if (!is_password || *after_key != '=') {
            append_text(out, out_size, &used, p, 1);
            p++;
            continue;
        }

        const char *value = after_key + 1;
        while (isspace((unsigned char)*value))
            value++;
        if (*value == '\'') {
            for (value++; *value && *value != '\''; value++)
                if (*value == '\\' && value[1])
                    value++;
            if (*value)
                value++;
        } else {
            while (*value && !isspace((unsigned char)*value))
                value++;
        }
        append_text(out, out_size, &used, "password=***", 12);
        p = value;
    }
}

void hv_config_mask_conninfo(const char *conninfo, char *out, size_t out_size)
{
    if (out_size == 0)
        return;
    const char *scheme_end = strstr(conninfo, "://");
    if (scheme_end)
        mask_uri(conninfo, scheme_end + 3, out, out_size);
    else
        mask_keyword_value(conninfo, out, out_size);
}

void hv_config_describe(const hv_setting *settings, size_t count, char *out, size_t out_size)
{
    size_t used = 0;
    if (out_size == 0)
        return;
    out[0] = '\0';

    for (size_t i = 0; i < count && used < out_size; i++) {
        const hv_setting *setting = &settings[i];
        char value[512];

        switch (setting->type) {
        case HV_SETTING_STRING: {
            const char *text = *(const char *const *)setting->target;
            if (setting->display == HV_SHOW_HIDDEN)
                snprintf(value, sizeof(value), "%s", *text ? "(set)" : "(unset)");
            else if (setting->display == HV_SHOW_CONNINFO)
                hv_config_mask_conninfo(text, value, sizeof(value));
            else
                snprintf(value, sizeof(value), "%s", text);
            break;
        }
        case HV_SETTING_INT:
            snprintf(value, sizeof(value), "%ld", *(const long *)setting->target);
            break;
        case HV_SETTING_BOOL:
            snprintf(value, sizeof(value), "%s", *(const bool *)setting->target ? "true" : "false");
            break;
        }

        bool quote = value[0] == '\0' || strpbrk(value, " \"=") != NULL;
        int written = snprintf(out + used, out_size - used, "%s%s=%s%s%s", used ? " " : "", setting->flag, quote ? "'" : "",
                               value, quote ? "'" : "");
        if (written < 0)
            break;
        used += (size_t)written;
    }
}
