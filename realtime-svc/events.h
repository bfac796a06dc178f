/* The real-time service's subscription to the store's events: one ZeroMQ
 * SUB socket on h2o's loop, subscribed to "org:<orgId>:" for each org that
 * has a room. A subscription is live once the store has applied it. The
 * store signals that by echoing a probe topic subscribed right after it
 * (docs/protocol.md), and only then does the service confirm a CONNECT. */
#ifndef EVENTS_H
#define EVENTS_H

#include <h2o.h>
#include <msgpack.h>
#include <stddef.h>

typedef struct events_subscriber events_subscriber;

/* An event of `org`. The strings are not NUL-terminated; everything lives
 * during the call only. */
typedef void (*events_event_cb)(const char *org, size_t org_len, const char *event, size_t event_len, const msgpack_object *data,
                                void *context);

/* The subscription to `org` has reached the store. */
typedef void (*events_live_cb)(const char *org, size_t org_len, void *context);

/* Connects a SUB socket to `endpoint`, which must outlive the subscriber.
 * Returns NULL with a message in `error` on failure. */
events_subscriber *events_new(h2o_loop_t *loop, void *zmq_context, const char *endpoint, events_event_cb on_event,
                              events_live_cb on_live, void *context, char *error, size_t error_size);

void events_destroy(events_subscriber **subscriber);

/* Subscribes to the events of `org` and probes for the moment the store
 * has the subscription: on_live follows. Returns 0, or -1 on failure. */
int events_subscribe(events_subscriber *subscriber, const char *org, size_t org_len);

/* Unsubscribes from `org`; a probe still waiting is dropped, so no on_live
 * follows for it. */
void events_unsubscribe(events_subscriber *subscriber, const char *org, size_t org_len);

/* Subscriptions still waiting for their echo. */
size_t events_pending(const events_subscriber *subscriber);

#endif
