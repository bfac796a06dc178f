/* The Socket.IO layer of helvino-realtime: a client's CONNECT with its org
 * key, the room of its org, and the delivery of the org's events. It sits
 * on the Engine.IO server (engine.h) and the event subscriber (events.h). */
#ifndef REALTIME_H
#define REALTIME_H

#include "engine.h"

#include <h2o.h>
#include <stdint.h>

typedef struct realtime realtime;

typedef struct {
    const char *store_endpoint;
    const char *events_endpoint;
    uint64_t store_timeout_ms;
    size_t key_cache_size;
    int64_t key_cache_ttl_ms;
    int64_t key_cache_negative_ttl_ms;
    engine_settings engine;
} realtime_settings;

/* Creates the service and registers /socket.io/ on `host`. Call before
 * h2o_context_init. Returns NULL with a message in `error`. */
realtime *realtime_new(const realtime_settings *settings, h2o_hostconf_t *host, char *error, size_t error_size);

/* Connects to the store on the context's loop. Returns 0, or -1 with a
 * message in `error`. */
int realtime_start(realtime *service, h2o_context_t *context, void *zmq_context, char *error, size_t error_size);

/* Closes every client gracefully; realtime_client_count falls to 0 as they
 * go. */
void realtime_shutdown(realtime *service);

/* Copies the gauges (sessions by transport, rooms) and the store client's
 * failure counts into the metrics before a rendering. */
void realtime_collect_metrics(const realtime *service);

/* Engine.IO sessions still open or closing. */
size_t realtime_client_count(const realtime *service);

void realtime_destroy(realtime **service);

#endif
