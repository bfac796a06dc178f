/* A non-blocking client of helvino-store on h2o's event loop: requests go
 * out on one DEALER socket and replies are matched back by request id, in
 * any order. */
#ifndef HV_LOOP_STORE_CLIENT_H
#define HV_LOOP_STORE_CLIENT_H

#include <h2o.h>
#include <msgpack.h>
#include <stdint.h>

typedef struct store_client store_client;
typedef struct store_call store_call;

/* Receives a reply. `status` is the store's, or 503 with a NULL `body` when the store did not reply within the timeout or could not be reached.
 * `body` lives until the callback returns. */
typedef void (*store_reply_cb)(void *data, int status, const msgpack_object *body);

/* Connects to `endpoint`, which must outlive the client. ZeroMQ reconnects by
 * itself, so the store need not be up yet. Returns NULL with a message in `error` on failure. */
store_client *store_client_new(h2o_loop_t *loop, void *zmq_context, const char *endpoint, uint64_t timeout_ms, char *error,
                               size_t error_size);

/* Fails every call still waiting with 503, then closes the socket. */
void store_client_destroy(store_client **client);

/* Sends `op` with the arguments in `args` (a packed msgpack map, or NULL for
 * none). `org` and `trace` may be NULL. The callback runs exactly once,
 * later, from the event loop, unless the call is cancelled first. Returns
 * the call, or NULL when out of memory. */
store_call *store_client_send(store_client *client, const char *op, const char *org, const char *trace,
                              const msgpack_sbuffer *args, store_reply_cb cb, void *data);

/* Forgets the callback of a call whose requester went away. The reply, if
 * it comes, is dropped. */
void store_call_cancel(store_call *call);

/* Calls that ended without a reply from the store, since the client was
 * created. Cancelled calls count too once their time is up. */
typedef struct {
    uint64_t timed_out; /* sent, but no reply within the timeout */
    uint64_t not_sent;  /* no store was connected to take it within the timeout */
} store_client_failures;

store_client_failures store_client_failure_counts(const store_client *client);

/* Calls still waiting for their reply or timeout, cancelled ones included. */
size_t store_client_in_flight(const store_client *client);

#endif
