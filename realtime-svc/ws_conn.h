/* A server WebSocket connection: wslay frames the messages, h2o's socket
 * carries them. It replaces h2o's own glue (h2o/websocket.h), which writes
 * each frame header and each payload separately, one write at a time. A
 * frame sent to many clients then reached none of them until every header
 * had gone out. Here everything wslay produces while the socket is busy is
 * gathered and written in one go. */
#ifndef WS_CONN_H
#define WS_CONN_H

#include <h2o.h>
#include <stddef.h>
#include <wslay/wslay.h>

typedef struct ws_conn ws_conn;

/* Receives each message, or NULL once, last, when the connection has
 * ended. The callback then calls ws_conn_close. */
typedef void (*ws_conn_cb)(ws_conn *conn, const struct wslay_event_on_msg_recv_arg *arg);

struct ws_conn {
    h2o_socket_t *sock; /* NULL until the 101 response has gone out */
    wslay_event_context_ptr ws_ctx;
    void *data;
    ws_conn_cb cb;
    char *writing; /* bytes handed to the socket, kept until the write completes */
    size_t writing_capacity;
    char *gathered; /* bytes wslay produced meanwhile */
    size_t gathered_len;
    size_t gathered_capacity;
};

/* Responds 101 to `req`, a WebSocket handshake with `client_key`, and
 * takes over its socket. Messages over `max_message` bytes close the
 * connection with 1009. Returns NULL when out of memory, with no response
 * sent to `req`. */
ws_conn *ws_conn_upgrade(h2o_req_t *req, const char *client_key, size_t max_message, void *data, ws_conn_cb cb);

/* Sends what wslay has queued and reads what the socket has received.
 * Must not be called from inside the connection's own callback. It may end
 * the connection, calling the callback with NULL. */
void ws_conn_proceed(ws_conn *conn);

/* Closes the socket at once and frees the connection. */
void ws_conn_close(ws_conn *conn);

#endif
