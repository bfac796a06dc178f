/* Validation of request bodies and query parameters. */
#include "body.h"

#include <string.h>

/* Returns whether `data` is empty or only JSON white space. */
static int is_blank(const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (data[i] != ' ' && data[i] != '\t' && data[i] != '\r' && data[i] != '\n')
            return 0;
    return 1;
}

const char *message_body_parse(const char *data, size_t len, message_body *out)
{
    memset(out, 0, sizeof(*out));

    if (is_blank(data, len)) {
        out->document = json_object();
    } else {
        /* JSON_ALLOW_NUL lets "\u0000" through the decoder, so that a NUL in
         * the content gets its own error below instead of "invalid JSON". */
        json_error_t error;
        out->document = json_loadb(data, len, JSON_ALLOW_NUL, &error);
    }
    if (!out->document || !json_is_object(out->document)) {
        message_body_release(out);
        return BODY_ERROR_INVALID_JSON;
    }

    json_t *role = json_object_get(out->document, "role");
    json_t *content = json_object_get(out->document, "content");
    if (!json_is_string(role) || !json_is_string(content) || json_string_length(role) == 0 ||
        json_string_length(content) == 0) {
        message_body_release(out);
        return BODY_ERROR_MISSING_FIELDS;
    }

    out->role = json_string_value(role);
    if (json_string_length(role) != strlen(out->role) ||
        (strcmp(out->role, "user") != 0 && strcmp(out->role, "assistant") != 0)) {
        message_body_release(out);
        return BODY_ERROR_INVALID_ROLE;
    }

    out->content = json_string_value(content);
    out->content_len = json_string_length(content);
    if (memchr(out->content, '\0', out->content_len)) {
        message_body_release(out);
        return BODY_ERROR_NUL;
    }
    return NULL;
}

void message_body_release(message_body *body)
{
    json_decref(body->document);
    memset(body, 0, sizeof(*body));
}

const char *conversation_body_check(const char *data, size_t len)
{
    /* White space alone counts as an empty body. */
    if (is_blank(data, len))
        return NULL;

    /* "\u0000" is valid JSON, and this body is not stored, so it passes. */
    json_error_t error;
    json_t *document = json_loadb(data, len, JSON_ALLOW_NUL, &error);
    int is_object = json_is_object(document);
    json_decref(document);
    return is_object ? NULL : BODY_ERROR_INVALID_JSON;
}

const char *query_param(const char *query, size_t query_len, const char *name, size_t *value_len)
{
    size_t name_len = strlen(name);
    const char *end = query + query_len;

    for (const char *pair = query; pair < end;) {
        const char *pair_end = memchr(pair, '&', (size_t)(end - pair));
        if (!pair_end)
            pair_end = end;
        if ((size_t)(pair_end - pair) > name_len && memcmp(pair, name, name_len) == 0 && pair[name_len] == '=') {
            *value_len = (size_t)(pair_end - pair) - name_len - 1;
            return pair + name_len + 1;
        }
        if (pair_end == end)
            break;
        pair = pair_end + 1;
    }
    return NULL;
}

long parse_limit(const char *text, size_t len, long max)
{
    if (len == 0)
        return -1;
    long value = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        value = value * 10 + (text[i] - '0');
        /* Leading zeros are allowed, and stopping past `max` keeps a long
         * run of digits from overflowing. */
        if (value > max)
            return -1;
    }
    return value >= 1 ? value : -1;
}
