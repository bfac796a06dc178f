/* Validation of request bodies and query parameters, with the exact error
 * messages of the HTTP contract. */
#ifndef GATEWAY_BODY_H
#define GATEWAY_BODY_H

#include <jansson.h>
#include <stddef.h>

#define BODY_ERROR_INVALID_JSON "Invalid JSON body"
#define BODY_ERROR_MISSING_FIELDS "Missing required fields: role, content"
#define BODY_ERROR_INVALID_ROLE "Invalid role. Must be 'user' or 'assistant'"
#define BODY_ERROR_NUL "Content must not contain NUL characters"

/* A validated new message: role and content point into `document`. */
typedef struct {
    json_t *document; /* owned; release with message_body_release */
    const char *role;
    const char *content;
    size_t content_len;
} message_body;

/* Validates a POST /conversations/:id/messages body. Returns NULL and fills
 * `out`, or returns one of the BODY_ERROR_* messages. An empty body counts
 * as an empty object, and so does one of JSON white space alone, so it is
 * missing fields rather than invalid JSON.
 * Text that is not valid UTF-8 and lone surrogate escapes are invalid JSON,
 * as Jansson's decoder rejects them. */
const char *message_body_parse(const char *data, size_t len, message_body *out);

void message_body_release(message_body *body);

/* Validates an optional body of POST /conversations: empty, or a JSON
 * object. Returns NULL or BODY_ERROR_INVALID_JSON. */
const char *conversation_body_check(const char *data, size_t len);

/* Finds a query parameter in "a=1&b=2" (without the leading '?'). Returns
 * its raw value, not percent-decoded, and its length, or NULL when absent. */
const char *query_param(const char *query, size_t query_len, const char *name, size_t *value_len);

/* Parses a page size from 1 to `max`. Returns it, or -1 when malformed. */
long parse_limit(const char *text, size_t len, long max);

#endif
