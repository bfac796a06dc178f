/* Header lookup in raw HTTP/1.1 heads, and the WebSocket accept value,
 * whose SHA-1 and base64 come from libcrypto. */
#include "http_head.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The GUID that RFC 6455 (section 1.3) appends to the key before hashing. */
#define WEBSOCKET_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

bool http_head_find_header(const char *head, const char *name, char *out, size_t size)
{
    size_t name_len = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line && line[2] && line[2] != '\r'; line = strstr(line + 2, "\r\n")) {
        const char *start = line + 2;
        if (strncasecmp(start, name, name_len) != 0 || start[name_len] != ':')
            continue;
        const char *value = start + name_len + 1;
        value += strspn(value, " \t");
        size_t value_len = strcspn(value, "\r");
        while (value_len && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
            value_len--;
        snprintf(out, size, "%.*s", (int)value_len, value);
        return true;
    }
    return false;
}

bool http_list_has_token(const char *list, const char *token)
{
    size_t token_len = strlen(token);
    for (const char *item = list; item && *item;) {
        item += strspn(item, " \t");
        size_t item_len = strcspn(item, ",");
        size_t trimmed_len = item_len;
        while (trimmed_len && (item[trimmed_len - 1] == ' ' || item[trimmed_len - 1] == '\t'))
            trimmed_len--;
        if (trimmed_len == token_len && strncasecmp(item, token, token_len) == 0)
            return true;
        item += item_len + (item[item_len] == ',');
    }
    return false;
}

void websocket_accept_value(const char *key, char out[29])
{
    char joined[128];
    int joined_len = snprintf(joined, sizeof(joined), "%s%s", key, WEBSOCKET_GUID);
    /* A key too long for the buffer is hashed cut short, which gives a
     * value that no peer accepts. Real keys have 24 characters. */
    if (joined_len < 0 || (size_t)joined_len >= sizeof(joined))
        joined_len = (int)strlen(joined);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)joined, (size_t)joined_len, digest);
    EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
}
