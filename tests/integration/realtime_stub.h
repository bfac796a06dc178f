/* A stand-in for helvino-realtime behind the gateway. It is a small HTTP/1.1
 * server on loopback, run by threads of the test process, whose responses
 * show what reached it. It does not implement Engine.IO, because the tests
 * only need to distinguish its responses from the gateway's own API. */
#ifndef TEST_REALTIME_STUB_H
#define TEST_REALTIME_STUB_H

#include <stdbool.h>
#include <stddef.h>

/* The body of every response to a GET. */
#define STUB_POLL_BODY "0{\"sid\":\"stub-session\",\"upgrades\":[\"websocket\"]}"

/* A GET whose target contains this gets 400 and STUB_UNKNOWN_SID_BODY, in
 * the way Engine.IO rejects an unknown session. */
#define STUB_UNKNOWN_SID "sid=unknown"
#define STUB_UNKNOWN_SID_BODY "{\"code\":1,\"message\":\"Session ID unknown\"}"

/* The Access-Control-Allow-Origin value of every response but 101. */
#define STUB_ALLOWED_ORIGIN "https://widget.example"

/* Every response but 101 carries this header with the request target that the
 * stub received (path and query). */
#define STUB_TARGET_HEADER "x-stub-target"

/* A request with this header, whose value is a number of milliseconds, gets
 * its response that much later, or never when the stub stops first. */
#define STUB_DELAY_HEADER "x-stub-delay-ms"

/* Sent in the same write as the 101 of a WebSocket upgrade, as a server
 * that speaks first (Engine.IO's open packet) does. */
#define STUB_GREETING "stub greeting after the upgrade"

/* How the stub responds:
 * - GET or HEAD: 200 with STUB_POLL_BODY (400 for STUB_UNKNOWN_SID).
 * - POST: 200 with the request body as its body.
 * - OPTIONS: 204 with Access-Control-Allow-Methods "GET, POST".
 * - "Upgrade: websocket" with Sec-WebSocket-Key: 101 with the matching
 *   Sec-WebSocket-Accept, then STUB_GREETING, then every byte received is
 *   sent back until the peer closes.
 * Connections stay open for further requests. */
typedef struct realtime_stub realtime_stub;

/* Starts listening on 127.0.0.1:`port` (0 lets the kernel pick) and serving
 * in background threads. Returns NULL with errno set when the port cannot
 * be bound. */
realtime_stub *realtime_stub_start(int port);

/* Returns the port the stub listens on. */
int realtime_stub_port(const realtime_stub *stub);

/* Returns the number of requests received so far, upgrades included. */
int realtime_stub_request_count(realtime_stub *stub);

/* Closes the listener and every connection, waits for the threads, frees
 * the stub and sets *stub to NULL. Accepts NULL and a NULL *stub. */
void realtime_stub_stop(realtime_stub **stub);

#endif
