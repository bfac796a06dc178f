/* A non-blocking client of helvino-store on h2o's event loop. The DEALER
 * socket is watched with zmq_watch, so every wake-up reads until no reply
 * is left, and every send pokes the watch for one more such read. */
#include "store_client.h"
#include "hv_envelope.h"
#include "hv_log.h"
#include "hv_msgpack.h"
#include "hv_zmq.h"
#include "zmq_watch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How often a request that ZeroMQ could not send yet is tried again. */
#define SEND_RETRY_MS 20

struct store_call {
    store_client *client;
    uint64_t id;
    uint32_t slot;
    store_reply_cb cb; /* NULL once cancelled */
    bool sent;         /* false until ZeroMQ took the request */
    void *data;
    h2o_timeout_entry_t timeout;
    msgpack_sbuffer request; /* kept until sent, for retries */
    int64_t send_deadline_ms;
};

struct store_client {
    h2o_loop_t *loop;
    void *dealer;
    zmq_watch *watch;
    h2o_timeout_t call_timeout;
    h2o_timeout_t next_turn; /* zero delay: the first try of a send */
    h2o_timeout_t retry;     /* the pause between two tries to send */
    store_call **slots;      /* calls by slot; the slot is the id's low 32 bits */
    uint32_t slot_count;
    uint32_t *free_slots;
    uint32_t free_count;
    uint32_t sequence; /* the id's high 32 bits, so reused slots get new ids */
    size_t in_flight;
    const char *endpoint; /* for log lines */
    uint64_t timeout_ms;
    bool unreachable; /* the last call failed for want of the store; logged once */
    store_client_failures failures;
};

/* Logs the store becoming unreachable or reachable again, once per change,
 * so that an outage costs two log lines and not one per request. */
static void note_reachable(store_client *client, bool reachable, const char *reason)
{
    if (reachable && client->unreachable)
        HV_INFO("store reachable again", HV_STR("endpoint", client->endpoint));
    else if (!reachable && !client->unreachable)
        HV_WARN("store unreachable; replying 503 until it is back", HV_STR("endpoint", client->endpoint), HV_STR("reason", reason));
    client->unreachable = !reachable;
}

static void finish_call(store_call *call, int status, const msgpack_object *body)
{
    store_client *client = call->client;
    h2o_timeout_unlink(&call->timeout);
    client->slots[call->slot] = NULL;
    client->free_slots[client->free_count++] = call->slot;
    client->in_flight--;

    if (call->cb)
        call->cb(call->data, status, body);
    msgpack_sbuffer_destroy(&call->request);
    free(call);
}

static void on_call_timeout(h2o_timeout_entry_t *entry)
{
    store_call *call = H2O_STRUCT_FROM_MEMBER(store_call, timeout, entry);
    note_reachable(call->client, false, call->sent ? "request timed out" : "not connected");
    if (call->sent)
        call->client->failures.timed_out++;
    else
        call->client->failures.not_sent++;
    finish_call(call, HV_STATUS_UNAVAILABLE, NULL);
}

/* Hands the request to ZeroMQ, or schedules another try. ZMQ_IMMEDIATE makes
 * a send fail while no store is connected: right after start, before the
 * connection is made, and while the store restarts. A call keeps trying for
 * the store timeout, then waits up to the store timeout for its reply. */
static void try_send(store_call *call)
{
    store_client *client = call->client;
    h2o_timeout_unlink(&call->timeout);

    if (!call->cb) {
        /* Cancelled before it was sent: no request waits for it any more. */
        finish_call(call, HV_STATUS_UNAVAILABLE, NULL);
        return;
    }
    if (zmq_send(client->dealer, call->request.data, call->request.size, ZMQ_DONTWAIT) >= 0) {
        call->sent = true;
        msgpack_sbuffer_destroy(&call->request);
        msgpack_sbuffer_init(&call->request);
        call->timeout.cb = on_call_timeout;
        h2o_timeout_link(client->loop, &client->call_timeout, &call->timeout);
        zmq_watch_poke(client->watch);
        return;
    }

    if (h2o_now(client->loop) >= (uint64_t)call->send_deadline_ms) {
        on_call_timeout(&call->timeout);
        return;
    }
    h2o_timeout_link(client->loop, &client->retry, &call->timeout);
}

static void on_retry(h2o_timeout_entry_t *entry)
{
    try_send(H2O_STRUCT_FROM_MEMBER(store_call, timeout, entry));
}

static void handle_reply(store_client *client, const char *data, size_t size)
{
    msgpack_unpacked storage;
    msgpack_unpacked_init(&storage);
    hv_reply reply;
    const char *error;

    if (hv_reply_decode(data, size, &storage, &reply, &error) != 0) {
        HV_WARN("dropped a malformed reply from the store", HV_STR("err", error));
    } else {
        uint32_t slot = (uint32_t)reply.id;
        store_call *call = slot < client->slot_count ? client->slots[slot] : NULL;
        note_reachable(client, true, NULL);
        if (call && call->id == reply.id)
            finish_call(call, reply.status, reply.body);
        else
            HV_DEBUG("dropped a late reply from the store", HV_INT("id", reply.id));
    }
    msgpack_unpacked_destroy(&storage);
}

static void drain(void *data)
{
    store_client *client = data;
    while (zmq_watch_readable(client->dealer)) {
        zmq_msg_t parts[HV_ZMQ_MAX_PARTS];
        int count;
        if (hv_zmq_recv_parts(client->dealer, parts, &count, ZMQ_DONTWAIT) != 0)
            continue;
        /* The reply is the last frame, because a DEALER receives no routing frames. */
        handle_reply(client, zmq_msg_data(&parts[count - 1]), zmq_msg_size(&parts[count - 1]));
        hv_zmq_close_parts(parts, count);
    }
}

store_client *store_client_new(h2o_loop_t *loop, void *zmq_context, const char *endpoint, uint64_t timeout_ms, char *error,
                               size_t error_size)
{
    store_client *client = calloc(1, sizeof(*client));
    if (!client) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    client->loop = loop;
    client->endpoint = endpoint;
    client->dealer = hv_zmq_socket(zmq_context, ZMQ_DEALER, 0);

    /* With ZMQ_IMMEDIATE a request is only queued to a connected store, so a
     * request is never delivered and run after its caller has given up.
     * try_send retries while no store is connected. */
    int immediate = 1;
    if (!client->dealer || zmq_setsockopt(client->dealer, ZMQ_IMMEDIATE, &immediate, sizeof(immediate)) != 0 ||
        zmq_connect(client->dealer, endpoint) != 0 || !(client->watch = zmq_watch_new(loop, client->dealer, drain, client))) {
        snprintf(error, error_size, "cannot connect to the store at \"%s\": %s", endpoint, zmq_strerror(errno));
        if (client->dealer)
            zmq_close(client->dealer);
        free(client);
        return NULL;
    }

    h2o_timeout_init(loop, &client->call_timeout, timeout_ms);
    h2o_timeout_init(loop, &client->next_turn, 0);
    h2o_timeout_init(loop, &client->retry, SEND_RETRY_MS);
    client->timeout_ms = timeout_ms;
    return client;
}

void store_client_destroy(store_client **target)
{
    store_client *client = *target;
    if (!client)
        return;
    for (uint32_t slot = 0; slot < client->slot_count; slot++)
        if (client->slots[slot])
            finish_call(client->slots[slot], HV_STATUS_UNAVAILABLE, NULL);

    h2o_timeout_dispose(client->loop, &client->call_timeout);
    h2o_timeout_dispose(client->loop, &client->next_turn);
    h2o_timeout_dispose(client->loop, &client->retry);
    zmq_watch_destroy(&client->watch);
    zmq_close(client->dealer);
    free(client->slots);
    free(client->free_slots);
    free(client);
    *target = NULL;
}

static bool take_slot(store_client *client, uint32_t *slot)
{
    if (client->free_count == 0) {
        uint32_t grown = client->slot_count ? client->slot_count * 2 : 64;
        store_call **slots = realloc(client->slots, grown * sizeof(*slots));
        if (!slots)
            return false;
        client->slots = slots;
        uint32_t *free_slots = realloc(client->free_slots, grown * sizeof(*free_slots));
        if (!free_slots)
            return false;
        client->free_slots = free_slots;
        for (uint32_t i = client->slot_count; i < grown; i++) {
            slots[i] = NULL;
            client->free_slots[client->free_count++] = grown - 1 - (i - client->slot_count);
        }
        client->slot_count = grown;
    }
    *slot = client->free_slots[--client->free_count];
    return true;
}

store_call *store_client_send(store_client *client, const char *op, const char *org, const char *trace, const msgpack_sbuffer *args,
                              store_reply_cb cb, void *data)
{
    store_call *call = calloc(1, sizeof(*call));
    if (!call || !take_slot(client, &call->slot)) {
        free(call);
        return NULL;
    }
    call->client = client;
    call->id = (uint64_t)++client->sequence << 32 | call->slot;
    call->cb = cb;
    call->data = data;
    client->slots[call->slot] = call;
    client->in_flight++;

    msgpack_sbuffer_init(&call->request);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &call->request, msgpack_sbuffer_write);
    hv_request_pack_begin(&packer, call->id, op, org, trace);
    if (args && args->size)
        msgpack_sbuffer_write(&call->request, args->data, args->size);
    else
        msgpack_pack_map(&packer, 0);

    /* The first try runs on the next loop turn, so that the callback never
     * runs inside this function, not even for a store that is down. */
    call->send_deadline_ms = (int64_t)(h2o_now(client->loop) + client->timeout_ms);
    call->timeout.cb = on_retry;
    h2o_timeout_link(client->loop, &client->next_turn, &call->timeout);
    return call;
}

void store_call_cancel(store_call *call)
{
    call->cb = NULL;
    call->data = NULL;
}

store_client_failures store_client_failure_counts(const store_client *client)
{
    return client->failures;
}

size_t store_client_in_flight(const store_client *client)
{
    return client->in_flight;
}
