/* HTTP/1.1 heads as the tests' raw-socket code reads and writes them: the
 * WebSocket client (ws_client.c), the stub real-time service
 * (realtime_stub.c) and the gateway proxy tests. Nothing here calls
 * Criterion, so the stub's threads can use it. */
#ifndef TEST_HTTP_HEAD_H
#define TEST_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>

/* Finds header `name` (any case) in `head`, a NUL-terminated request or
 * response head that starts with its request or status line. Copies the
 * value without the blanks around it to `out`, cut to `size`, and returns
 * whether the header was there. The search stops at the blank line that
 * ends the head, or at the NUL. */
bool http_head_find_header(const char *head, const char *name, char *out, size_t size);

/* Returns whether a comma-separated header value, such as Connection's or
 * Allow's, lists `token` (any case). Accepts NULL as an empty list. */
bool http_list_has_token(const char *list, const char *token);

/* Writes the Sec-WebSocket-Accept value for the Sec-WebSocket-Key `key`
 * (RFC 6455, section 4.2.2): the base64 of the SHA-1 of the key followed
 * by the protocol's GUID. `out` has room for 29 bytes, the terminating NUL
 * included. */
void websocket_accept_value(const char *key, char out[29]);

#endif
