/* The Engine.IO v4 server of helvino-realtime, on h2o's event loop: the
 * handshake, HTTP long-polling, WebSocket (direct or as an upgrade from
 * polling), heartbeats and bounded outgoing buffers. To the layer above, a
 * session carries text messages whatever its transport. */
#ifndef ENGINE_H
#define ENGINE_H

#include <h2o.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Size of a session id with its NUL: 20 base64url characters. */
#define ENGINE_ID_SIZE 21

typedef struct engine engine;
typedef struct engine_session engine_session;

typedef struct {
    long ping_interval_ms;
    long ping_timeout_ms;
    long upgrade_timeout_ms; /* from the WebSocket probe until the upgrade packet */
    size_t max_payload;      /* largest packet, polling body or WebSocket message accepted */
    size_t max_buffered;     /* outgoing bytes a session may have waiting */
    const char *cors_origins;
} engine_settings;

typedef struct {
    /* A session was opened. */
    void (*on_open)(engine_session *session, void *data);
    /* The data of a message packet: UTF-8 text of `len` bytes, not
     * NUL-terminated, valid during the call. */
    void (*on_message)(engine_session *session, const char *text, size_t len, void *data);
    /* The session is gone; after this call nothing may use it. `reason` is
     * a static string for the log. */
    void (*on_close)(engine_session *session, const char *reason, void *data);
} engine_callbacks;

/* Creates the server; `settings` and `callbacks` are copied, the strings
 * they point to must outlive it. Returns NULL when out of memory. */
engine *engine_new(const engine_settings *settings, const engine_callbacks *callbacks, void *data);

/* Serves /socket.io/ on `host`. Call before h2o_context_init. */
void engine_register(engine *server, h2o_hostconf_t *host);

/* Starts the timers on the context's loop. Call after h2o_context_init. */
void engine_start(engine *server, h2o_context_t *context);

/* Closes every session at once and frees the server. */
void engine_destroy(engine **server);

/* Ends every session: WebSockets get a close frame (1001), and polling
 * clients get a close packet with their next or pending GET. New sessions
 * are refused from then on. */
void engine_shutdown(engine *server);

/* Sessions that are open or still closing. */
size_t engine_session_count(const engine *server);

/* Counts the sessions of engine_session_count by their transport now: a
 * session upgrading to WebSocket counts as polling until the upgrade
 * completes. Walks every session. */
void engine_count_transports(const engine *server, size_t *polling, size_t *websocket);

/* Queues one encoded Engine.IO packet, such as `42["message:new",{...}]`,
 * so that a packet encoded once can go to many sessions. Returns 0, or -1
 * when the session is closing or went over its outgoing limit, in which
 * case it is being closed. */
int engine_send(engine_session *session, const char *packet, size_t len);

/* WebSocket close codes (RFC 6455, section 7.4.1) for engine_close. */
enum {
    ENGINE_CLOSE_NORMAL = 1000,
    ENGINE_CLOSE_POLICY_VIOLATION = 1008, /* a message the layer above cannot accept */
};

/* Sends what is queued, then closes the session: a WebSocket gets a close
 * frame with `code`, a polling client a close packet. */
void engine_close(engine_session *session, const char *reason, uint16_t code);

void engine_session_set_data(engine_session *session, void *data);
void *engine_session_data(const engine_session *session);
const char *engine_session_id(const engine_session *session);

/* Writes a new random id of 20 base64url characters (120 bits) and a NUL,
 * as used for session ids. Returns 0, or -1 when the system's random
 * source failed. */
int engine_random_id(char out[ENGINE_ID_SIZE]);

#endif
