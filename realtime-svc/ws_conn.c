#include "ws_conn.h"

#include <h2o/http1.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Maximum bytes gathered before wslay has to wait. The rest of its queue
 * stays in wslay, where the sender's limit on queued bytes counts it. */
#define GATHER_LIMIT (64 * 1024)

static void on_close(ws_conn *conn)
{
    conn->cb(conn, NULL);
}

static ssize_t recv_callback(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *data)
{
    (void)flags;
    ws_conn *conn = data;
    h2o_buffer_t *input = conn->sock->input;
    if (input->size == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (len > input->size)
        len = input->size;
    memcpy(buf, input->bytes, len);
    h2o_buffer_consume(&conn->sock->input, len);
    return (ssize_t)len;
}

static bool reserve(char **buffer, size_t *capacity, size_t needed)
{
    if (needed <= *capacity)
        return true;
    size_t grown = *capacity ? *capacity * 2 : 4096;
    while (grown < needed)
        grown *= 2;
    char *larger = realloc(*buffer, grown);
    if (!larger)
        return false;
    *buffer = larger;
    *capacity = grown;
    return true;
}

static ssize_t send_callback(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user_data)
{
    (void)flags;
    ws_conn *conn = user_data;
    if (conn->gathered_len >= GATHER_LIMIT) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (!reserve(&conn->gathered, &conn->gathered_capacity, conn->gathered_len + len)) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    memcpy(conn->gathered + conn->gathered_len, data, len);
    conn->gathered_len += len;
    return (ssize_t)len;
}

static void on_msg_recv(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *data)
{
    (void)ctx;
    ws_conn *conn = data;
    conn->cb(conn, arg);
}

static void on_write_complete(h2o_socket_t *sock, const char *err)
{
    ws_conn *conn = sock->data;
    /* Idle connections keep no buffer; there are many of them. */
    free(conn->writing);
    conn->writing = NULL;
    conn->writing_capacity = 0;
    if (err) {
        on_close(conn);
        return;
    }
    ws_conn_proceed(conn);
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    ws_conn *conn = sock->data;
    if (err) {
        on_close(conn);
        return;
    }
    ws_conn_proceed(conn);
}

void ws_conn_proceed(ws_conn *conn)
{
    h2o_socket_t *sock = conn->sock;
    for (;;) {
        bool progress = false;
        if (conn->gathered_len < GATHER_LIMIT && wslay_event_want_write(conn->ws_ctx)) {
            size_t before = conn->gathered_len;
            if (wslay_event_send(conn->ws_ctx) != 0)
                goto Close;
            progress = conn->gathered_len != before;
        }
        if (sock->input->size != 0 && wslay_event_want_read(conn->ws_ctx)) {
            if (wslay_event_recv(conn->ws_ctx) != 0)
                goto Close;
            progress = true;
        }
        if (!progress)
            break;
    }

    if (!h2o_socket_is_writing(sock) && conn->gathered_len > 0) {
        /* Swap the buffers: the gathered bytes go out, and the buffer of
         * the last write, now complete, gathers the next ones. */
        char *buffer = conn->writing;
        size_t capacity = conn->writing_capacity;
        conn->writing = conn->gathered;
        conn->writing_capacity = conn->gathered_capacity;
        conn->gathered = buffer;
        conn->gathered_capacity = capacity;
        h2o_iovec_t out = h2o_iovec_init(conn->writing, conn->gathered_len);
        conn->gathered_len = 0;
        h2o_socket_write(sock, &out, 1, on_write_complete);
    }

    if (wslay_event_want_read(conn->ws_ctx))
        h2o_socket_read_start(sock, on_read);
    else if (h2o_socket_is_writing(sock) || wslay_event_want_write(conn->ws_ctx))
        h2o_socket_read_stop(sock);
    else
        goto Close;
    return;

Close:
    on_close(conn);
}

static void on_upgraded(void *data, h2o_socket_t *sock, size_t request_size)
{
    ws_conn *conn = data;
    if (!sock) {
        on_close(conn);
        return;
    }
    conn->sock = sock;
    sock->data = conn;
    h2o_buffer_consume(&sock->input, request_size);
    ws_conn_proceed(conn);
}

/* Writes the Sec-WebSocket-Accept value for `client_key` (RFC 6455,
 * section 4.2.2): the base64 of the SHA-1 of the key and a fixed GUID. */
static void accept_key_for(char out[29], const char *client_key)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char source[24 + sizeof(guid) - 1];
    unsigned char digest[SHA_DIGEST_LENGTH];
    memcpy(source, client_key, 24);
    memcpy(source + 24, guid, sizeof(guid) - 1);
    SHA1(source, sizeof(source), digest);
    h2o_base64_encode(out, digest, sizeof(digest), 0);
    out[28] = '\0';
}

ws_conn *ws_conn_upgrade(h2o_req_t *req, const char *client_key, size_t max_message, void *data, ws_conn_cb cb)
{
    ws_conn *conn = calloc(1, sizeof(*conn));
    if (!conn)
        return NULL;
    struct wslay_event_callbacks callbacks = {
        .recv_callback = recv_callback,
        .send_callback = send_callback,
        .on_msg_recv_callback = on_msg_recv,
    };
    if (wslay_event_context_server_init(&conn->ws_ctx, &callbacks, conn) != 0) {
        free(conn);
        return NULL;
    }
    wslay_event_config_set_max_recv_msg_length(conn->ws_ctx, max_message);
    conn->data = data;
    conn->cb = cb;

    char accept_key[29];
    accept_key_for(accept_key, client_key);
    req->res.status = 101;
    req->res.reason = "Switching Protocols";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_UPGRADE, NULL, H2O_STRLIT("websocket"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("sec-websocket-accept"), 0, NULL, accept_key,
                          strlen(accept_key));
    h2o_http1_upgrade(req, NULL, 0, on_upgraded, conn);
    return conn;
}

void ws_conn_close(ws_conn *conn)
{
    if (conn->sock)
        h2o_socket_close(conn->sock);
    wslay_event_context_free(conn->ws_ctx);
    free(conn->writing);
    free(conn->gathered);
    free(conn);
}
