#include "realtime.h"

#include "events.h"
#include "hv_envelope.h"
#include "hv_event.h"
#include "hv_json.h"
#include "hv_log.h"
#include "hv_msgpack.h"
#include "hv_time.h"
#include "key_cache.h"
#include "metrics.h"
#include "rooms.h"
#include "sio_packet.h"
#include "store_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Maximum length of an org key that is looked up, as in the gateway. Longer
 * keys are invalid. */
#define KEY_MAX_BYTES 256

#define MESSAGE_MISSING_KEY "Missing organization key"
#define MESSAGE_INVALID_KEY "Invalid organization key"
#define MESSAGE_UNAVAILABLE "Service unavailable"
#define MESSAGE_INVALID_NAMESPACE "Invalid namespace"

/* How long a rejected client has to close by itself before the service
 * closes it. socket.io-client closes on CONNECT_ERROR, and a close packet
 * sent along with the error would reach its handlers first, as a
 * disconnect of a socket that never connected. */
#define REJECTION_GRACE_MS 1000

typedef enum {
    CLIENT_NEW,          /* no CONNECT yet */
    CLIENT_RESOLVING,    /* asking the store for the key's org */
    CLIENT_WAITING_LIVE, /* in its room, waiting for the subscription to reach the store */
    CLIENT_CONNECTED,
    CLIENT_REJECTED, /* got CONNECT_ERROR, closing */
} client_state;

typedef struct client {
    realtime *service;
    engine_session *session;
    client_state state;
    store_call *call;
    char key[KEY_MAX_BYTES + 1];
    size_t key_len;
    char org[HV_ORG_ID_MAX + 1];
    char socket_id[ENGINE_ID_SIZE];
    h2o_timeout_entry_t timer; /* the live timeout, then the rejection grace */
    h2o_linklist_t waiting;    /* in realtime.waiting while CLIENT_WAITING_LIVE */
} client;

struct realtime {
    realtime_settings settings;
    engine *engine;
    h2o_loop_t *loop;
    store_client *store;
    key_cache *keys;
    room_registry *rooms;
    events_subscriber *events;
    h2o_timeout_t live_timeout;
    h2o_timeout_t rejection_grace;
    h2o_linklist_t waiting;
};

/* --- Sending ------------------------------------------------------------- */

/* Starts an Engine.IO message packet, to which a Socket.IO encoder appends. */
static int begin_message(eio_buffer *packet)
{
    return eio_buffer_append(packet, "4", 1);
}

static void on_rejection_grace_over(h2o_timeout_entry_t *entry)
{
    client *target = H2O_STRUCT_FROM_MEMBER(client, timer, entry);
    engine_close(target->session, "rejected", ENGINE_CLOSE_NORMAL);
}

/* The connects_total result of a rejection with `message`. */
static const char *rejection_result(const char *message)
{
    if (strcmp(message, MESSAGE_MISSING_KEY) == 0)
        return METRICS_CONNECT_MISSING_KEY;
    if (strcmp(message, MESSAGE_INVALID_KEY) == 0)
        return METRICS_CONNECT_INVALID_KEY;
    return METRICS_CONNECT_UNAVAILABLE;
}

/* Sends CONNECT_ERROR with `message`, then closes the connection after
 * REJECTION_GRACE_MS unless the client closes it first. */
static void reject_connect(client *target, const char *message)
{
    eio_buffer packet = {0};
    if (begin_message(&packet) == 0 && sio_encode_connect_error(&packet, "/", message) == 0)
        engine_send(target->session, packet.data, packet.len);
    eio_buffer_release(&packet);
    HV_INFO("connection rejected", HV_STR("conn", engine_session_id(target->session)), HV_STR("reason", message));
    hv_metric_inc(metrics.connects, HV_LABELS(rejection_result(message)));
    target->state = CLIENT_REJECTED;
    if (h2o_timeout_is_linked(&target->timer))
        h2o_timeout_unlink(&target->timer);
    target->timer.cb = on_rejection_grace_over;
    h2o_timeout_link(target->service->loop, &target->service->rejection_grace, &target->timer);
}

static void confirm(client *target)
{
    target->state = CLIENT_CONNECTED;
    eio_buffer packet = {0};
    if (engine_random_id(target->socket_id) != 0 || begin_message(&packet) != 0 ||
        sio_encode_connect(&packet, "/", target->socket_id) != 0) {
        eio_buffer_release(&packet);
        reject_connect(target, MESSAGE_UNAVAILABLE);
        return;
    }
    engine_send(target->session, packet.data, packet.len);
    eio_buffer_release(&packet);
    HV_DEBUG("client connected", HV_STR("conn", engine_session_id(target->session)), HV_STR("org", target->org));
    hv_metric_inc(metrics.connects, HV_LABELS(METRICS_CONNECT_OK));
    hv_metric_inc(metrics.connected_clients, HV_LABELS(metrics_org(target->org, strlen(target->org))));
}

/* --- Rooms and their subscriptions --------------------------------------- */

static void stop_waiting(client *target)
{
    if (h2o_linklist_is_linked(&target->waiting))
        h2o_linklist_unlink(&target->waiting);
    if (h2o_timeout_is_linked(&target->timer))
        h2o_timeout_unlink(&target->timer);
}

static void on_live_timeout(h2o_timeout_entry_t *entry)
{
    client *target = H2O_STRUCT_FROM_MEMBER(client, timer, entry);
    HV_WARN("the store did not confirm an event subscription in time", HV_STR("org", target->org));
    stop_waiting(target);
    room_leave(target->service->rooms, target);
    reject_connect(target, MESSAGE_UNAVAILABLE);
}

static void join(client *target)
{
    realtime *service = target->service;
    size_t org_len = strlen(target->org);
    if (room_join(service->rooms, target->org, org_len, target) != 0) {
        reject_connect(target, MESSAGE_UNAVAILABLE);
        return;
    }
    if (room_is_live(service->rooms, target->org, org_len)) {
        confirm(target);
        return;
    }
    target->state = CLIENT_WAITING_LIVE;
    h2o_linklist_insert(&service->waiting, &target->waiting);
    target->timer.cb = on_live_timeout;
    h2o_timeout_link(service->loop, &service->live_timeout, &target->timer);
}

static void on_live(const char *org, size_t org_len, void *data)
{
    realtime *service = data;
    room_set_live(service->rooms, org, org_len);
    h2o_linklist_t *node = service->waiting.next;
    while (node != &service->waiting) {
        client *target = H2O_STRUCT_FROM_MEMBER(client, waiting, node);
        node = node->next;
        if (strlen(target->org) == org_len && memcmp(target->org, org, org_len) == 0) {
            stop_waiting(target);
            confirm(target);
        }
    }
}

/* The room registry names a room by its prefix "org:<orgId>:". */
static int on_room_opened(const char *prefix, void *data)
{
    realtime *service = data;
    return events_subscribe(service->events, prefix + 4, strlen(prefix) - 5);
}

static int on_room_emptied(const char *prefix, void *data)
{
    realtime *service = data;
    events_unsubscribe(service->events, prefix + 4, strlen(prefix) - 5);
    return 0;
}

typedef struct {
    const eio_buffer *packet;
    size_t delivered;
} delivery;

static void deliver(void *member, void *data)
{
    client *target = member;
    delivery *job = data;
    /* Members still waiting for their CONNECT reply get nothing before it. */
    if (target->state == CLIENT_CONNECTED && engine_send(target->session, job->packet->data, job->packet->len) == 0)
        job->delivered++;
}

static void on_event(const char *org, size_t org_len, const char *event, size_t event_len, const msgpack_object *data,
                     void *context)
{
    realtime *service = context;
    hv_metric_inc(metrics.events_received, HV_LABELS(metrics_event(event, event_len)));
    char name[64];
    json_t *argument = hv_json_from_msgpack(data);
    eio_buffer packet = {0};
    if (event_len >= sizeof(name) || !argument) {
        HV_WARN("dropped an event that JSON cannot carry", HV_STR("org", org));
    } else {
        memcpy(name, event, event_len);
        name[event_len] = '\0';
        /* Encoded once, written to every member. */
        if (begin_message(&packet) != 0 || sio_encode_event(&packet, "/", name, argument, -1) != 0) {
            HV_ERROR("encoding an event failed", HV_STR("event", name));
        } else {
            delivery job = {.packet = &packet};
            room_for_each_member(service->rooms, org, org_len, deliver, &job);
            if (job.delivered > 0)
                hv_metric_add(metrics.deliveries, HV_LABELS(metrics_org(org, org_len)), (int64_t)job.delivered);
            HV_DEBUG("event delivered", HV_STR("event", name), HV_INT("clients", job.delivered));
        }
    }
    json_decref(argument);
    eio_buffer_release(&packet);
}

/* --- CONNECT ------------------------------------------------------------- */

static void on_key_resolved(void *data, int status, const msgpack_object *body)
{
    client *target = data;
    realtime *service = target->service;
    target->call = NULL;
    const char *org;
    size_t org_len;
    if (status == HV_STATUS_OK && hv_mp_map_get_str(body, "orgId", &org, &org_len) && hv_org_id_is_valid(org, org_len)) {
        memcpy(target->org, org, org_len);
        target->org[org_len] = '\0';
        key_cache_put(service->keys, target->key, target->key_len, target->org, hv_time_monotonic_ms());
        join(target);
    } else if (status == HV_STATUS_NOT_FOUND) {
        key_cache_put(service->keys, target->key, target->key_len, NULL, hv_time_monotonic_ms());
        reject_connect(target, MESSAGE_INVALID_KEY);
    } else {
        reject_connect(target, MESSAGE_UNAVAILABLE);
    }
}

static void resolve(client *target)
{
    realtime *service = target->service;
    key_lookup lookup = key_cache_get(service->keys, target->key, target->key_len, hv_time_monotonic_ms(), target->org);
    hv_metric_inc(metrics.key_cache_lookups, HV_LABELS(lookup == KEY_MISS ? "miss" : "hit"));
    switch (lookup) {
    case KEY_VALID:
        join(target);
        return;
    case KEY_INVALID:
        reject_connect(target, MESSAGE_INVALID_KEY);
        return;
    case KEY_MISS:
        break;
    }

    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &args, msgpack_sbuffer_write);
    msgpack_pack_map(&packer, 1);
    hv_mp_pack_cstr(&packer, "key");
    hv_mp_pack_strn(&packer, target->key, target->key_len);
    target->state = CLIENT_RESOLVING;
    target->call = store_client_send(service->store, "org.resolve_key", NULL, engine_session_id(target->session), &args,
                                     on_key_resolved, target);
    msgpack_sbuffer_destroy(&args);
    if (!target->call)
        reject_connect(target, MESSAGE_UNAVAILABLE);
}

static void on_connect(client *target, const sio_packet *packet)
{
    if (packet->namespace_len != 1 || packet->namespace[0] != '/') {
        /* Other namespaces do not exist; the main one is not affected. */
        char name[SIO_MAX_NAMESPACE + 1];
        snprintf(name, sizeof(name), "%.*s", (int)packet->namespace_len, packet->namespace);
        eio_buffer reply = {0};
        if (begin_message(&reply) == 0 && sio_encode_connect_error(&reply, name, MESSAGE_INVALID_NAMESPACE) == 0)
            engine_send(target->session, reply.data, reply.len);
        eio_buffer_release(&reply);
        hv_metric_inc(metrics.connects, HV_LABELS(METRICS_CONNECT_INVALID_NAMESPACE));
        return;
    }
    if (target->state != CLIENT_NEW)
        return;

    json_t *key = packet->payload ? json_object_get(packet->payload, "orgKey") : NULL;
    if (!key || json_is_null(key) || (json_is_string(key) && json_string_length(key) == 0)) {
        reject_connect(target, MESSAGE_MISSING_KEY);
        return;
    }
    if (!json_is_string(key) || json_string_length(key) > KEY_MAX_BYTES) {
        reject_connect(target, MESSAGE_INVALID_KEY);
        return;
    }
    target->key_len = json_string_length(key);
    memcpy(target->key, json_string_value(key), target->key_len);
    target->key[target->key_len] = '\0';
    resolve(target);
}

/* --- Engine.IO sessions -------------------------------------------------- */

static void on_open(engine_session *session, void *data)
{
    realtime *service = data;
    client *target = calloc(1, sizeof(*target));
    if (!target) {
        engine_close(session, "out of memory", ENGINE_CLOSE_NORMAL);
        return;
    }
    target->service = service;
    target->session = session;
    engine_session_set_data(session, target);
}

static void on_message(engine_session *session, const char *text, size_t len, void *data)
{
    (void)data;
    client *target = engine_session_data(session);
    if (!target)
        return;
    sio_packet packet;
    int status = sio_packet_decode(text, len, &packet);
    if (status != 0) {
        HV_DEBUG("bad Socket.IO packet; closing", HV_STR("conn", engine_session_id(session)),
                 HV_STR("err", sio_error_message(status)));
        engine_close(session, sio_error_message(status), ENGINE_CLOSE_POLICY_VIOLATION);
        return;
    }
    switch (packet.type) {
    case SIO_CONNECT:
        on_connect(target, &packet);
        break;
    case SIO_DISCONNECT:
        if (packet.namespace_len == 1)
            engine_close(session, "client disconnected", ENGINE_CLOSE_NORMAL);
        break;
    case SIO_EVENT:
    case SIO_ACK:
        /* Clients only listen; what they emit is not for anyone. */
        break;
    default:
        HV_DEBUG("unexpected Socket.IO packet; closing", HV_STR("conn", engine_session_id(session)), HV_INT("type", packet.type));
        engine_close(session, "unexpected packet type", ENGINE_CLOSE_POLICY_VIOLATION);
        break;
    }
    sio_packet_release(&packet);
}

static void on_close(engine_session *session, const char *reason, void *data)
{
    realtime *service = data;
    client *target = engine_session_data(session);
    if (!target)
        return;
    HV_DEBUG("session closed", HV_STR("conn", engine_session_id(session)), HV_STR("reason", reason));
    if (target->state == CLIENT_CONNECTED)
        hv_metric_add(metrics.connected_clients, HV_LABELS(metrics_org(target->org, strlen(target->org))), -1);
    if (target->call)
        store_call_cancel(target->call);
    stop_waiting(target);
    room_leave(service->rooms, target);
    engine_session_set_data(session, NULL);
    free(target);
}

/* --- The service --------------------------------------------------------- */

realtime *realtime_new(const realtime_settings *settings, h2o_hostconf_t *host, char *error, size_t error_size)
{
    realtime *service = calloc(1, sizeof(*service));
    if (!service) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    service->settings = *settings;
    h2o_linklist_init_anchor(&service->waiting);
    engine_callbacks callbacks = {.on_open = on_open, .on_message = on_message, .on_close = on_close};
    service->engine = engine_new(&settings->engine, &callbacks, service);
    service->rooms = room_registry_new(on_room_opened, on_room_emptied, service);
    service->keys = key_cache_new(settings->key_cache_size, settings->key_cache_ttl_ms, settings->key_cache_negative_ttl_ms);
    if (!service->engine || !service->rooms || !service->keys) {
        snprintf(error, error_size, "out of memory or no random source");
        realtime_destroy(&service);
        return NULL;
    }
    engine_register(service->engine, host);
    return service;
}

int realtime_start(realtime *service, h2o_context_t *context, void *zmq_context, char *error, size_t error_size)
{
    service->loop = context->loop;
    engine_start(service->engine, context);
    h2o_timeout_init(service->loop, &service->live_timeout, service->settings.store_timeout_ms);
    h2o_timeout_init(service->loop, &service->rejection_grace, REJECTION_GRACE_MS);
    service->store = store_client_new(service->loop, zmq_context, service->settings.store_endpoint,
                                      service->settings.store_timeout_ms, error, error_size);
    if (!service->store)
        return -1;
    service->events =
        events_new(service->loop, zmq_context, service->settings.events_endpoint, on_event, on_live, service, error, error_size);
    return service->events ? 0 : -1;
}

void realtime_shutdown(realtime *service)
{
    engine_shutdown(service->engine);
}

void realtime_collect_metrics(const realtime *service)
{
    size_t polling, websocket;
    engine_count_transports(service->engine, &polling, &websocket);
    hv_metric_set(metrics.sessions, HV_LABELS(METRICS_POLLING), (int64_t)polling);
    hv_metric_set(metrics.sessions, HV_LABELS(METRICS_WEBSOCKET), (int64_t)websocket);
    hv_metric_set(metrics.rooms, NULL, (int64_t)room_count(service->rooms));
    if (service->store) {
        store_client_failures failures = store_client_failure_counts(service->store);
        hv_metric_set(metrics.store_failures, HV_LABELS("timeout"), (int64_t)failures.timed_out);
        hv_metric_set(metrics.store_failures, HV_LABELS("unavailable"), (int64_t)failures.not_sent);
    }
}

size_t realtime_client_count(const realtime *service)
{
    return engine_session_count(service->engine);
}

void realtime_destroy(realtime **target)
{
    realtime *service = *target;
    if (!service)
        return;
    /* Sessions first: their clients leave the rooms and cancel their calls. */
    engine_destroy(&service->engine);
    room_registry_destroy(&service->rooms);
    events_destroy(&service->events);
    store_client_destroy(&service->store);
    key_cache_destroy(&service->keys);
    if (service->loop) {
        h2o_timeout_dispose(service->loop, &service->live_timeout);
        h2o_timeout_dispose(service->loop, &service->rejection_grace);
    }
    free(service);
    *target = NULL;
}
