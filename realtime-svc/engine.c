#include "engine.h"

#include "cors.h"
#include "eio_packet.h"
#include "hv_hash.h"
#include "hv_log.h"
#include "metrics.h"
#include "ws_conn.h"

#include <h2o/websocket.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* 15 random bytes in base64url: 120 bits, too many to guess. */
#define SID_BYTES 15
#define SID_LEN (ENGINE_ID_SIZE - 1)

/* WebSocket close codes (RFC 6455, section 7.4.1). */
enum {
    CLOSE_NORMAL = 1000,
    CLOSE_GOING_AWAY = 1001,
    CLOSE_PROTOCOL_ERROR = 1002,
    CLOSE_UNSUPPORTED_DATA = 1003,
    CLOSE_INVALID_DATA = 1007,
};

/* The error codes that engine.io servers send in reply to bad requests. */
enum {
    ERROR_UNKNOWN_TRANSPORT = 0,
    ERROR_UNKNOWN_SID = 1,
    ERROR_BAD_HANDSHAKE_METHOD = 2,
    ERROR_BAD_REQUEST = 3,
    ERROR_FORBIDDEN = 4,
    ERROR_UNSUPPORTED_VERSION = 5,
};

typedef enum { TRANSPORT_POLLING, TRANSPORT_WEBSOCKET } transport;
typedef enum { SESSION_OPEN, SESSION_CLOSING, SESSION_CLOSED } session_state;

/* A long-polling GET held until there is something to send. Whichever
 * side ends first (the session or the request) clears the link. */
typedef struct {
    engine_session *session;
    h2o_req_t *req;
} held_get;

struct engine_session {
    engine *server;
    char id[SID_LEN + 1];
    transport transport;
    session_state state;
    const char *close_reason;
    void *data;

    eio_buffer outgoing; /* polling: the payload for the next GET */
    held_get *get;

    ws_conn *ws;    /* the WebSocket transport, once there is one */
    ws_conn *probe; /* a WebSocket that is upgrading a polling session */
    bool probed;                 /* "2probe" came on the probe */
    /* The connection whose message callback is running. h2o must not be
     * driven from inside it, so sends to it wait for the callback's end. */
    ws_conn *dispatching;

    bool awaiting_pong;
    h2o_timeout_entry_t heartbeat;
    h2o_timeout_entry_t upgrade_timer;
    h2o_timeout_entry_t linger; /* bounds a graceful close */
    h2o_timeout_entry_t drain_check;
    uint16_t close_code; /* the close frame to send once the queue is empty */

    engine_session *bucket_next;
    engine_session *dead_next;
    h2o_linklist_t all;
};

typedef struct {
    h2o_handler_t super;
    engine *server;
} engine_handler;

struct engine {
    engine_settings settings;
    engine_callbacks callbacks;
    void *data;
    h2o_loop_t *loop;

    h2o_timeout_t ping_interval;
    h2o_timeout_t ping_timeout;
    h2o_timeout_t upgrade_timeout;
    h2o_timeout_t linger_timeout;
    h2o_timeout_t drain_interval;
    h2o_timeout_t next_turn; /* zero delay: frees closed sessions */
    h2o_timeout_entry_t reaper;

    uint64_t hash_key[2];
    engine_session **buckets;
    size_t bucket_count;
    size_t count;
    h2o_linklist_t sessions;
    engine_session *dead;
    bool shutting_down;
};

static void finish(engine_session *session, const char *reason);
static void on_drain_check(h2o_timeout_entry_t *entry);

/* --- Session table ------------------------------------------------------- */

static size_t bucket_of(const engine *server, const char *id, size_t len)
{
    return hv_siphash(server->hash_key, id, len) & (server->bucket_count - 1);
}

static engine_session *session_find(const engine *server, const char *id, size_t len)
{
    if (len != SID_LEN)
        return NULL;
    for (engine_session *s = server->buckets[bucket_of(server, id, len)]; s; s = s->bucket_next)
        if (memcmp(s->id, id, SID_LEN) == 0)
            return s;
    return NULL;
}

static int table_grow(engine *server)
{
    size_t count = server->bucket_count * 2;
    engine_session **buckets = calloc(count, sizeof(*buckets));
    if (!buckets)
        return -1;
    engine_session **old = server->buckets;
    size_t old_count = server->bucket_count;
    server->buckets = buckets;
    server->bucket_count = count;
    for (size_t i = 0; i < old_count; i++) {
        for (engine_session *s = old[i], *next; s; s = next) {
            next = s->bucket_next;
            size_t b = bucket_of(server, s->id, SID_LEN);
            s->bucket_next = buckets[b];
            buckets[b] = s;
        }
    }
    free(old);
    return 0;
}

static void table_remove(engine *server, engine_session *session)
{
    engine_session **link = &server->buckets[bucket_of(server, session->id, SID_LEN)];
    while (*link && *link != session)
        link = &(*link)->bucket_next;
    if (*link)
        *link = session->bucket_next;
}

int engine_random_id(char out[ENGINE_ID_SIZE])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char bytes[SID_BYTES];
    if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes))
        return -1;
    for (size_t i = 0, o = 0; i < SID_BYTES; i += 3) {
        uint32_t group = (uint32_t)bytes[i] << 16 | (uint32_t)bytes[i + 1] << 8 | bytes[i + 2];
        for (int shift = 18; shift >= 0; shift -= 6)
            out[o++] = alphabet[(group >> shift) & 63];
    }
    out[SID_LEN] = '\0';
    return 0;
}

/* --- HTTP responses ------------------------------------------------------ */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 413:
        return "Payload Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Bad Request";
    }
}

static void respond(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    if (content_type)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    /* With the length known, h2o keeps the connection alive. */
    req->res.content_length = len;
    h2o_send_inline(req, body, len);
}

static void respond_error(engine *server, h2o_req_t *req, int status, int code, const char *message)
{
    char body[128];
    int len = snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\"}", code, message);
    cors_add_headers(server->settings.cors_origins, req);
    respond(req, status, "application/json", body, (size_t)len);
}

static void respond_payload(engine *server, h2o_req_t *req, const char *payload, size_t len)
{
    cors_add_headers(server->settings.cors_origins, req);
    respond(req, 200, "text/plain; charset=UTF-8", payload, len);
}

/* Responds to the held GET with what is queued, or a noop when nothing is. */
static void flush_get(engine_session *session)
{
    held_get *get = session->get;
    if (!get)
        return;
    session->get = NULL;
    get->session = NULL;
    if (session->outgoing.len == 0 && eio_encode_noop(&session->outgoing) != 0)
        HV_WARN("out of memory; answering a poll with nothing", HV_STR("conn", session->id));
    respond_payload(session->server, get->req, session->outgoing.data, session->outgoing.len);
    session->outgoing.len = 0;
}

/* Ends the held GET with a noop, leaving the queue for the WebSocket. */
static void end_get(engine_session *session)
{
    held_get *get = session->get;
    if (!get)
        return;
    session->get = NULL;
    get->session = NULL;
    respond_payload(session->server, get->req, "6", 1);
}

static void on_held_get_disposed(void *data)
{
    held_get *get = data;
    if (get->session)
        get->session->get = NULL;
}

/* --- WebSocket connections ----------------------------------------------- */

static void proceed(engine_session *session, ws_conn *conn)
{
    /* Before the upgrade completes there is no socket, and inside the
     * connection's own callback h2o's loop is already running. */
    if (conn->sock && conn != session->dispatching)
        ws_conn_proceed(conn);
}

static void close_conn(engine_session *session, ws_conn *conn, uint16_t code)
{
    conn->data = NULL;
    if (conn == session->dispatching || !conn->sock) {
        /* h2o ends the connection once the close frame is out, and then
         * calls on_ws_event with no message, which frees it. */
        wslay_event_queue_close(conn->ws_ctx, code, NULL, 0);
        wslay_event_shutdown_read(conn->ws_ctx);
    } else {
        ws_conn_close(conn);
    }
}

static int queue_ws(ws_conn *conn, const char *packet, size_t len)
{
    struct wslay_event_msg message = {.opcode = WSLAY_TEXT_FRAME, .msg = (const uint8_t *)packet, .msg_length = len};
    return wslay_event_queue_msg(conn->ws_ctx, &message) == 0 ? 0 : -1;
}

/* --- Sending ------------------------------------------------------------- */

static void abort_session(engine_session *session, const char *reason)
{
    HV_DEBUG("session aborted", HV_STR("conn", session->id), HV_STR("reason", reason));
    finish(session, reason);
}

static int queue_packet(engine_session *session, const char *packet, size_t len)
{
    size_t limit = session->server->settings.max_buffered;
    if (session->transport == TRANSPORT_WEBSOCKET) {
        ws_conn *conn = session->ws;
        if (!conn)
            return -1;
        if (wslay_event_get_queued_msg_length(conn->ws_ctx) + len > limit) {
            HV_WARN("client is not reading; disconnecting it", HV_STR("conn", session->id), HV_INT("limit_bytes", limit));
            hv_metric_inc(metrics.slow_clients_dropped, HV_LABELS(METRICS_WEBSOCKET));
            abort_session(session, "outgoing buffer full");
            return -1;
        }
        if (queue_ws(conn, packet, len) != 0) {
            abort_session(session, "out of memory");
            return -1;
        }
        proceed(session, conn);
        return 0;
    }

    if (session->outgoing.len + len + 1 > limit) {
        HV_WARN("client is not polling; disconnecting it", HV_STR("conn", session->id), HV_INT("limit_bytes", limit));
        hv_metric_inc(metrics.slow_clients_dropped, HV_LABELS(METRICS_POLLING));
        abort_session(session, "outgoing buffer full");
        return -1;
    }
    if (eio_payload_append(&session->outgoing, packet, len) != 0) {
        abort_session(session, "out of memory");
        return -1;
    }
    flush_get(session);
    return 0;
}

int engine_send(engine_session *session, const char *packet, size_t len)
{
    if (session->state != SESSION_OPEN)
        return -1;
    return queue_packet(session, packet, len);
}

/* --- Session life -------------------------------------------------------- */

static void on_heartbeat(h2o_timeout_entry_t *entry)
{
    engine_session *session = H2O_STRUCT_FROM_MEMBER(engine_session, heartbeat, entry);
    engine *server = session->server;
    if (session->awaiting_pong) {
        HV_DEBUG("no pong in time", HV_STR("conn", session->id));
        finish(session, "ping timeout");
        return;
    }
    session->awaiting_pong = true;
    h2o_timeout_link(server->loop, &server->ping_timeout, &session->heartbeat);
    queue_packet(session, "2", 1);
}

static void on_pong(engine_session *session)
{
    if (!session->awaiting_pong)
        return;
    session->awaiting_pong = false;
    h2o_timeout_unlink(&session->heartbeat);
    h2o_timeout_link(session->server->loop, &session->server->ping_interval, &session->heartbeat);
}

static void on_linger_over(h2o_timeout_entry_t *entry)
{
    engine_session *session = H2O_STRUCT_FROM_MEMBER(engine_session, linger, entry);
    finish(session, session->close_reason);
}

/* Gives up on the upgrade in progress. A close that was waiting for the
 * upgrade to carry its last packets ends the session instead. */
static void drop_probe(engine_session *session, uint16_t code)
{
    close_conn(session, session->probe, code);
    session->probe = NULL;
    session->probed = false;
    if (h2o_timeout_is_linked(&session->upgrade_timer))
        h2o_timeout_unlink(&session->upgrade_timer);
    if (session->state == SESSION_CLOSING)
        finish(session, session->close_reason);
}

static void on_upgrade_timeout(h2o_timeout_entry_t *entry)
{
    engine_session *session = H2O_STRUCT_FROM_MEMBER(engine_session, upgrade_timer, entry);
    if (session->probe) {
        HV_DEBUG("upgrade not completed in time", HV_STR("conn", session->id));
        drop_probe(session, CLOSE_PROTOCOL_ERROR);
    }
}

static void on_reap(h2o_timeout_entry_t *entry)
{
    engine *server = H2O_STRUCT_FROM_MEMBER(engine, reaper, entry);
    while (server->dead) {
        engine_session *session = server->dead;
        server->dead = session->dead_next;
        eio_buffer_release(&session->outgoing);
        free(session);
    }
}

static engine_session *session_new(engine *server, transport kind)
{
    if (server->count >= server->bucket_count && table_grow(server) != 0)
        return NULL;
    engine_session *session = calloc(1, sizeof(*session));
    if (!session)
        return NULL;
    if (engine_random_id(session->id) != 0 || session_find(server, session->id, SID_LEN)) {
        free(session);
        return NULL;
    }
    session->server = server;
    session->transport = kind;
    session->state = SESSION_OPEN;
    session->heartbeat.cb = on_heartbeat;
    session->upgrade_timer.cb = on_upgrade_timeout;
    session->linger.cb = on_linger_over;
    session->drain_check.cb = on_drain_check;

    size_t b = bucket_of(server, session->id, SID_LEN);
    session->bucket_next = server->buckets[b];
    server->buckets[b] = session;
    h2o_linklist_insert(&server->sessions, &session->all);
    server->count++;
    h2o_timeout_link(server->loop, &server->ping_interval, &session->heartbeat);
    hv_metric_inc(metrics.sessions_opened, HV_LABELS(kind == TRANSPORT_POLLING ? METRICS_POLLING : METRICS_WEBSOCKET));
    return session;
}

static int queue_open_packet(engine_session *session)
{
    const engine_settings *settings = &session->server->settings;
    eio_open_settings open = {
        .sid = session->id,
        .websocket_upgrade = session->transport == TRANSPORT_POLLING,
        .ping_interval_ms = settings->ping_interval_ms,
        .ping_timeout_ms = settings->ping_timeout_ms,
        .max_payload = (long)settings->max_payload,
    };
    eio_buffer packet = {0};
    int status = eio_encode_open(&packet, &open);
    if (status == 0)
        status = queue_packet(session, packet.data, packet.len);
    eio_buffer_release(&packet);
    return status;
}

/* Ends the session at once: the layer above drops it, its connections
 * close, and its memory is freed at the next turn of the loop. */
static void finish(engine_session *session, const char *reason)
{
    if (session->state == SESSION_CLOSED)
        return;
    engine *server = session->server;
    session->state = SESSION_CLOSED;
    if (h2o_timeout_is_linked(&session->heartbeat))
        h2o_timeout_unlink(&session->heartbeat);
    if (h2o_timeout_is_linked(&session->upgrade_timer))
        h2o_timeout_unlink(&session->upgrade_timer);
    if (h2o_timeout_is_linked(&session->linger))
        h2o_timeout_unlink(&session->linger);
    if (h2o_timeout_is_linked(&session->drain_check))
        h2o_timeout_unlink(&session->drain_check);
    table_remove(server, session);
    h2o_linklist_unlink(&session->all);
    server->count--;

    if (session->get) {
        /* A poll still open takes what is queued and learns that the
         * session is over. */
        if (eio_payload_append(&session->outgoing, "1", 1) != 0) {
            session->outgoing.len = 0;
            if (eio_buffer_append(&session->outgoing, "1", 1) != 0)
                HV_WARN("out of memory; ending a poll with nothing", HV_STR("conn", session->id));
        }
        flush_get(session);
    }
    if (session->probe)
        close_conn(session, session->probe, CLOSE_NORMAL);
    if (session->ws)
        close_conn(session, session->ws, CLOSE_NORMAL);
    session->probe = session->ws = NULL;

    server->callbacks.on_close(session, reason ? reason : "closed", server->data);

    session->dead_next = server->dead;
    server->dead = session;
    if (!h2o_timeout_is_linked(&server->reaper))
        h2o_timeout_link(server->loop, &server->next_turn, &server->reaper);
}

/* Sends the close frame once every queued message has left: wslay sends
 * control frames ahead of messages, and nothing may follow a close frame. */
static void close_ws_when_drained(engine_session *session)
{
    ws_conn *conn = session->ws;
    if (!conn)
        return;
    if (wslay_event_get_queued_msg_count(conn->ws_ctx) > 0) {
        h2o_timeout_link(session->server->loop, &session->server->drain_interval, &session->drain_check);
        return;
    }
    wslay_event_queue_close(conn->ws_ctx, session->close_code, NULL, 0);
    wslay_event_shutdown_read(conn->ws_ctx);
    /* h2o may end the connection, and so the session, right here. */
    proceed(session, conn);
}

static void on_drain_check(h2o_timeout_entry_t *entry)
{
    close_ws_when_drained(H2O_STRUCT_FROM_MEMBER(engine_session, drain_check, entry));
}

/* Closes after what is queued has gone out, within the linger time. */
static void close_gracefully(engine_session *session, const char *reason, uint16_t code)
{
    if (session->state != SESSION_OPEN)
        return;
    engine *server = session->server;
    session->close_reason = reason;
    if (session->probe && session->probed) {
        /* The client has paused polling for the upgrade, so what is queued
         * can only reach it over the new WebSocket: complete_upgrade moves
         * it there and then closes. */
        session->state = SESSION_CLOSING;
        session->close_code = code;
        h2o_timeout_link(server->loop, &server->linger_timeout, &session->linger);
        return;
    }
    if (session->probe)
        drop_probe(session, code);

    if (session->transport == TRANSPORT_WEBSOCKET && session->ws) {
        session->state = SESSION_CLOSING;
        session->close_code = code;
        h2o_timeout_link(server->loop, &server->linger_timeout, &session->linger);
        close_ws_when_drained(session);
        return;
    }

    eio_buffer packet = {0};
    if (eio_encode_close(&packet) != 0 || queue_packet(session, packet.data, packet.len) != 0) {
        eio_buffer_release(&packet);
        finish(session, reason);
        return;
    }
    eio_buffer_release(&packet);
    if (session->state != SESSION_OPEN)
        return;
    if (session->outgoing.len == 0) {
        /* A held GET has taken the close packet already. */
        finish(session, reason);
        return;
    }
    session->state = SESSION_CLOSING;
    h2o_timeout_link(server->loop, &server->linger_timeout, &session->linger);
}

void engine_close(engine_session *session, const char *reason, uint16_t code)
{
    close_gracefully(session, reason, code);
}

/* --- Packets from the client --------------------------------------------- */

/* Handles one packet on the session's transport. Returns 0, or -1 when the
 * packet breaks the protocol. */
static int on_packet(engine_session *session, const eio_packet *packet)
{
    engine *server = session->server;
    switch (packet->type) {
    case EIO_MESSAGE:
        server->callbacks.on_message(session, packet->data, packet->data_len, server->data);
        return 0;
    case EIO_PONG:
        on_pong(session);
        return 0;
    case EIO_CLOSE:
        finish(session, "client closed");
        return 0;
    case EIO_PING:
    case EIO_NOOP:
        return 0;
    case EIO_OPEN:
    case EIO_UPGRADE:
        break;
    }
    return -1;
}

static void complete_upgrade(engine_session *session)
{
    ws_conn *conn = session->probe;
    if (h2o_timeout_is_linked(&session->upgrade_timer))
        h2o_timeout_unlink(&session->upgrade_timer);
    /* The GET the noop ended may have been followed by another. */
    end_get(session);
    /* Packets queued for polling go over the WebSocket now, in order. Our
     * packets are JSON, which escapes the separator, so it splits them. */
    const char *data = session->outgoing.data;
    size_t left = session->outgoing.len;
    while (left > 0) {
        const char *end = memchr(data, EIO_RECORD_SEPARATOR, left);
        size_t len = end ? (size_t)(end - data) : left;
        if (!(len == 1 && data[0] == '0' + EIO_NOOP) && len > 0 && queue_ws(conn, data, len) != 0) {
            abort_session(session, "out of memory");
            return;
        }
        data += len + (end != NULL);
        left -= len + (end != NULL);
    }
    session->outgoing.len = 0;
    session->probe = NULL;
    session->probed = false;
    session->ws = conn;
    session->transport = TRANSPORT_WEBSOCKET;
    HV_DEBUG("session upgraded to WebSocket", HV_STR("conn", session->id));
    hv_metric_inc(metrics.upgrades, NULL);
    if (session->state == SESSION_CLOSING)
        close_ws_when_drained(session);
}

static void on_probe_packet(engine_session *session, const eio_packet *packet)
{
    ws_conn *conn = session->probe;
    if (packet->type == EIO_PING && packet->data_len == 5 && memcmp(packet->data, "probe", 5) == 0) {
        session->probed = true;
        if (queue_ws(conn, "3probe", 6) != 0) {
            abort_session(session, "out of memory");
            return;
        }
        /* End the pending poll, so that the client can pause polling. */
        eio_buffer noop = {0};
        if (eio_encode_noop(&noop) == 0)
            queue_packet(session, noop.data, noop.len);
        eio_buffer_release(&noop);
        return;
    }
    if (packet->type == EIO_UPGRADE && session->probed) {
        complete_upgrade(session);
        return;
    }
    HV_DEBUG("unexpected packet during the upgrade", HV_STR("conn", session->id), HV_INT("type", packet->type));
    drop_probe(session, CLOSE_PROTOCOL_ERROR);
}

static void on_ws_text(engine_session *session, ws_conn *conn, const char *data, size_t len)
{
    eio_packet packet;
    int status = eio_packet_decode(data, len, &packet);
    if (status != 0) {
        HV_DEBUG("bad packet on a WebSocket", HV_STR("conn", session->id), HV_STR("err", eio_error_message(status)));
        uint16_t code = status == EIO_ERR_INVALID_UTF8 ? CLOSE_INVALID_DATA : CLOSE_PROTOCOL_ERROR;
        if (conn == session->probe)
            drop_probe(session, code);
        else
            close_gracefully(session, eio_error_message(status), code);
        return;
    }
    if (conn == session->probe) {
        on_probe_packet(session, &packet);
        return;
    }
    if (packet.type == EIO_CLOSE) {
        close_gracefully(session, "client closed", CLOSE_NORMAL);
        return;
    }
    if (on_packet(session, &packet) != 0)
        close_gracefully(session, "unexpected packet type", CLOSE_PROTOCOL_ERROR);
}

static void on_ws_event(ws_conn *conn, const struct wslay_event_on_msg_recv_arg *arg)
{
    engine_session *session = conn->data;
    if (!arg) {
        /* The connection ended: h2o calls this once, last. */
        ws_conn_close(conn);
        if (!session)
            return;
        if (conn == session->probe) {
            session->probe = NULL;
            session->probed = false;
            /* A close was waiting for this upgrade, which will not come. */
            if (session->state == SESSION_CLOSING)
                finish(session, session->close_reason);
        } else if (conn == session->ws) {
            session->ws = NULL;
            finish(session, session->state == SESSION_CLOSING ? session->close_reason : "transport closed");
        }
        return;
    }
    /* A closing session still takes its probe's upgrade packet. */
    if (!session || session->state == SESSION_CLOSED || (session->state == SESSION_CLOSING && conn != session->probe))
        return;

    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
        session->dispatching = conn;
        on_ws_text(session, conn, (const char *)arg->msg, arg->msg_length);
        session->dispatching = NULL;
        return;
    case WSLAY_BINARY_FRAME:
        HV_DEBUG("binary WebSocket message refused", HV_STR("conn", session->id));
        session->dispatching = conn;
        if (conn == session->probe)
            drop_probe(session, CLOSE_UNSUPPORTED_DATA);
        else
            close_gracefully(session, "binary message", CLOSE_UNSUPPORTED_DATA);
        session->dispatching = NULL;
        return;
    default:
        /* wslay replies to pings and close frames itself. */
        return;
    }
}

static ws_conn *upgrade(engine_session *session, h2o_req_t *req, const char *client_key)
{
    return ws_conn_upgrade(req, client_key, session->server->settings.max_payload, session, on_ws_event);
}

/* --- Requests ------------------------------------------------------------ */

/* Finds `name` in the query string. Returns whether it is there. */
static bool query_param(h2o_req_t *req, const char *name, h2o_iovec_t *value)
{
    if (req->query_at == SIZE_MAX)
        return false;
    const char *query = req->path.base + req->query_at + 1;
    size_t left = req->path.len - req->query_at - 1;
    size_t name_len = strlen(name);
    while (left > 0) {
        const char *end = memchr(query, '&', left);
        size_t len = end ? (size_t)(end - query) : left;
        if (len > name_len && query[name_len] == '=' && memcmp(query, name, name_len) == 0) {
            *value = h2o_iovec_init(query + name_len + 1, len - name_len - 1);
            return true;
        }
        query += len + (end != NULL);
        left -= len + (end != NULL);
    }
    return false;
}

static void handle_poll(engine_session *session, h2o_req_t *req)
{
    engine *server = session->server;
    if (session->get) {
        /* Two polls at once: the client is confused, so the session ends. */
        respond_error(server, req, 400, ERROR_BAD_REQUEST, "Bad request");
        abort_session(session, "overlapping polls");
        return;
    }
    held_get *get = h2o_mem_alloc_shared(&req->pool, sizeof(*get), on_held_get_disposed);
    get->session = session;
    get->req = req;
    session->get = get;
    if (session->outgoing.len > 0 || session->state != SESSION_OPEN) {
        flush_get(session);
        if (session->state == SESSION_CLOSING)
            finish(session, session->close_reason);
    }
}

static void handle_post(engine_session *session, h2o_req_t *req)
{
    engine *server = session->server;
    if (req->entity.len > server->settings.max_payload) {
        cors_add_headers(server->settings.cors_origins, req);
        respond(req, 413, "text/plain; charset=UTF-8", H2O_STRLIT("Payload too large"));
        abort_session(session, "payload too large");
        return;
    }
    if (session->state != SESSION_OPEN) {
        respond_error(server, req, 400, ERROR_BAD_REQUEST, "Bad request");
        return;
    }

    /* Does the payload decode as a whole? Packets before a broken one are
     * not acted on. */
    eio_payload_iter iter;
    eio_packet packet;
    int status = eio_payload_iter_init(&iter, req->entity.base, req->entity.len);
    while (status == 0 && (status = eio_payload_next(&iter, &packet)) == 1)
        status = 0;
    if (status == 0) {
        if (eio_payload_iter_init(&iter, req->entity.base, req->entity.len) != 0)
            status = EIO_ERR_EMPTY;
        while (status == 0 && session->state == SESSION_OPEN && eio_payload_next(&iter, &packet) == 1)
            if (on_packet(session, &packet) != 0)
                status = EIO_ERR_UNKNOWN_TYPE;
    }
    if (status != 0) {
        HV_DEBUG("bad polling payload", HV_STR("conn", session->id), HV_STR("err", eio_error_message(status)));
        respond_error(server, req, 400, ERROR_BAD_REQUEST, "Bad request");
        abort_session(session, eio_error_message(status));
        return;
    }
    cors_add_headers(server->settings.cors_origins, req);
    respond(req, 200, "text/html", H2O_STRLIT("ok"));
}

static void handle_open(engine *server, h2o_req_t *req, bool websocket, const char *client_key)
{
    if (server->shutting_down) {
        respond_error(server, req, 503, ERROR_FORBIDDEN, "Server is shutting down");
        return;
    }
    engine_session *session = session_new(server, websocket ? TRANSPORT_WEBSOCKET : TRANSPORT_POLLING);
    if (!session) {
        respond_error(server, req, 503, ERROR_FORBIDDEN, "Server is out of memory");
        return;
    }
    if (websocket && !(session->ws = upgrade(session, req, client_key))) {
        respond_error(server, req, 503, ERROR_FORBIDDEN, "Server is out of memory");
        finish(session, "out of memory");
        return;
    }
    if (queue_open_packet(session) != 0)
        return;
    server->callbacks.on_open(session, server->data);
    if (!websocket && session->state == SESSION_OPEN)
        handle_poll(session, req);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    engine *server = ((engine_handler *)self)->server;
    size_t path_len = req->query_at == SIZE_MAX ? req->path.len : req->query_at;
    if (!h2o_memis(req->path.base, path_len, H2O_STRLIT("/socket.io/")))
        return -1;

    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS"))) {
        if (cors_add_headers(server->settings.cors_origins, req)) {
            h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-methods"), 0, NULL,
                                  H2O_STRLIT("GET, POST, OPTIONS"));
            h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-headers"), 0, NULL,
                                  H2O_STRLIT("content-type"));
        }
        respond(req, 204, NULL, NULL, 0);
        return 0;
    }

    h2o_iovec_t version, transport_name, sid;
    if (!query_param(req, "EIO", &version) || !h2o_memis(version.base, version.len, H2O_STRLIT("4"))) {
        respond_error(server, req, 400, ERROR_UNSUPPORTED_VERSION, "Unsupported protocol version");
        return 0;
    }
    bool websocket;
    if (query_param(req, "transport", &transport_name) && h2o_memis(transport_name.base, transport_name.len, H2O_STRLIT("polling")))
        websocket = false;
    else if (query_param(req, "transport", &transport_name) &&
             h2o_memis(transport_name.base, transport_name.len, H2O_STRLIT("websocket")))
        websocket = true;
    else {
        respond_error(server, req, 400, ERROR_UNKNOWN_TRANSPORT, "Transport unknown");
        return 0;
    }

    bool get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"));
    bool post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    const char *client_key = NULL;
    if (websocket && (!get || req->version >= 0x200 || h2o_is_websocket_handshake(req, &client_key) != 0 || !client_key)) {
        respond_error(server, req, 400, ERROR_BAD_REQUEST, "Bad request");
        return 0;
    }

    if (!query_param(req, "sid", &sid)) {
        if (!get)
            respond_error(server, req, 400, ERROR_BAD_HANDSHAKE_METHOD, "Bad handshake method");
        else
            handle_open(server, req, websocket, client_key);
        return 0;
    }

    engine_session *session = session_find(server, sid.base, sid.len);
    if (!session) {
        respond_error(server, req, 400, ERROR_UNKNOWN_SID, "Session ID unknown");
        return 0;
    }
    if (websocket) {
        /* Upgrading a polling session to WebSocket. */
        if (session->transport != TRANSPORT_POLLING || session->probe || session->state != SESSION_OPEN) {
            respond_error(server, req, 400, ERROR_BAD_REQUEST, "Bad request");
            return 0;
        }
        session->probe = upgrade(session, req, client_key);
        if (!session->probe) {
            respond_error(server, req, 503, ERROR_FORBIDDEN, "Server is out of memory");
            return 0;
        }
        h2o_timeout_link(server->loop, &server->upgrade_timeout, &session->upgrade_timer);
        return 0;
    }
    if (session->transport != TRANSPORT_POLLING) {
        respond_error(server, req, 400, ERROR_BAD_REQUEST, "Bad request");
        return 0;
    }
    if (get)
        handle_poll(session, req);
    else if (post)
        handle_post(session, req);
    else
        respond_error(server, req, 400, ERROR_BAD_HANDSHAKE_METHOD, "Bad handshake method");
    return 0;
}

/* --- The server ---------------------------------------------------------- */

engine *engine_new(const engine_settings *settings, const engine_callbacks *callbacks, void *data)
{
    engine *server = calloc(1, sizeof(*server));
    if (!server)
        return NULL;
    server->settings = *settings;
    server->callbacks = *callbacks;
    server->data = data;
    server->bucket_count = 1024;
    server->buckets = calloc(server->bucket_count, sizeof(*server->buckets));
    if (!server->buckets || hv_hash_random_key(server->hash_key) != 0) {
        free(server->buckets);
        free(server);
        return NULL;
    }
    h2o_linklist_init_anchor(&server->sessions);
    server->reaper.cb = on_reap;
    return server;
}

void engine_register(engine *server, h2o_hostconf_t *host)
{
    h2o_pathconf_t *path = h2o_config_register_path(host, "/socket.io/", 0);
    engine_handler *handler = (engine_handler *)h2o_create_handler(path, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->server = server;
}

void engine_start(engine *server, h2o_context_t *context)
{
    h2o_loop_t *loop = context->loop;
    server->loop = loop;
    h2o_timeout_init(loop, &server->ping_interval, (uint64_t)server->settings.ping_interval_ms);
    h2o_timeout_init(loop, &server->ping_timeout, (uint64_t)server->settings.ping_timeout_ms);
    h2o_timeout_init(loop, &server->upgrade_timeout, (uint64_t)server->settings.upgrade_timeout_ms);
    h2o_timeout_init(loop, &server->linger_timeout, (uint64_t)server->settings.ping_timeout_ms);
    h2o_timeout_init(loop, &server->next_turn, 0);
    h2o_timeout_init(loop, &server->drain_interval, 10);
}

void engine_shutdown(engine *server)
{
    server->shutting_down = true;
    h2o_linklist_t *node = server->sessions.next;
    while (node != &server->sessions) {
        engine_session *session = H2O_STRUCT_FROM_MEMBER(engine_session, all, node);
        /* The close may unlink the session from the list. */
        node = node->next;
        if (session->transport == TRANSPORT_POLLING && !session->get && !session->probed)
            /* No poll to carry a close packet; the client's next one gets
             * "Session ID unknown" and it reconnects. */
            finish(session, "server shutting down");
        else
            close_gracefully(session, "server shutting down", CLOSE_GOING_AWAY);
    }
}

void engine_destroy(engine **server_ptr)
{
    engine *server = *server_ptr;
    if (!server)
        return;
    while (!h2o_linklist_is_empty(&server->sessions))
        finish(H2O_STRUCT_FROM_MEMBER(engine_session, all, server->sessions.next), "server stopped");
    on_reap(&server->reaper);
    if (h2o_timeout_is_linked(&server->reaper))
        h2o_timeout_unlink(&server->reaper);
    if (server->loop) {
        h2o_timeout_dispose(server->loop, &server->ping_interval);
        h2o_timeout_dispose(server->loop, &server->ping_timeout);
        h2o_timeout_dispose(server->loop, &server->upgrade_timeout);
        h2o_timeout_dispose(server->loop, &server->linger_timeout);
        h2o_timeout_dispose(server->loop, &server->next_turn);
        h2o_timeout_dispose(server->loop, &server->drain_interval);
    }
    free(server->buckets);
    free(server);
    *server_ptr = NULL;
}

size_t engine_session_count(const engine *server)
{
    return server->count;
}

void engine_count_transports(const engine *server, size_t *polling, size_t *websocket)
{
    *polling = 0;
    *websocket = 0;
    for (const h2o_linklist_t *node = server->sessions.next; node != &server->sessions; node = node->next) {
        const engine_session *session = H2O_STRUCT_FROM_MEMBER(engine_session, all, node);
        if (session->transport == TRANSPORT_POLLING)
            ++*polling;
        else
            ++*websocket;
    }
}

void engine_session_set_data(engine_session *session, void *data)
{
    session->data = data;
}

void *engine_session_data(const engine_session *session)
{
    return session->data;
}

const char *engine_session_id(const engine_session *session)
{
    return session->id;
}
