#include "events.h"

#include "hv_event.h"
#include "hv_log.h"
#include "hv_zmq.h"
#include "zmq_watch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <zmq.h>

/* "org:<org>:#live:<instance>:<serial>". The '#' keeps it apart from event
 * names, the instance from the probes of other real-time processes. */
#define PROBE_TOPIC_SIZE (HV_TOPIC_SIZE + 48)

typedef struct probe {
    struct probe *next;
    size_t topic_len;
    char topic[PROBE_TOPIC_SIZE];
    size_t org_len;
    char org[HV_ORG_ID_MAX + 1];
} probe;

struct events_subscriber {
    void *socket;
    zmq_watch *watch;
    events_event_cb on_event;
    events_live_cb on_live;
    void *context;
    uint64_t instance;
    uint64_t next_serial;
    probe *probes;
    size_t pending;
};

static void set_filter(events_subscriber *subscriber, int option, const char *topic, size_t len)
{
    if (zmq_setsockopt(subscriber->socket, option, topic, len) != 0)
        HV_ERROR("changing an event subscription failed", HV_STR("err", zmq_strerror(errno)));
    /* A subscription change can consume the socket's readiness signal. */
    zmq_watch_poke(subscriber->watch);
}

static void drop_probe(events_subscriber *subscriber, probe **link)
{
    probe *gone = *link;
    *link = gone->next;
    set_filter(subscriber, ZMQ_UNSUBSCRIBE, gone->topic, gone->topic_len);
    subscriber->pending--;
    free(gone);
}

static void on_echo(events_subscriber *subscriber, const char *topic, size_t len)
{
    for (probe **link = &subscriber->probes; *link; link = &(*link)->next) {
        probe *found = *link;
        if (found->topic_len != len || memcmp(found->topic, topic, len) != 0)
            continue;
        char org[HV_ORG_ID_MAX + 1];
        size_t org_len = found->org_len;
        memcpy(org, found->org, org_len + 1);
        drop_probe(subscriber, link);
        subscriber->on_live(org, org_len, subscriber->context);
        return;
    }
    /* Someone else's echo, or the echo of a probe given up on. */
}

static void on_message(events_subscriber *subscriber, const zmq_msg_t *topic_frame, const zmq_msg_t *body_frame)
{
    const char *topic = zmq_msg_data((zmq_msg_t *)topic_frame);
    size_t topic_len = zmq_msg_size((zmq_msg_t *)topic_frame);
    if (zmq_msg_size((zmq_msg_t *)body_frame) == 0) {
        on_echo(subscriber, topic, topic_len);
        return;
    }

    msgpack_unpacked storage;
    msgpack_unpacked_init(&storage);
    hv_event event;
    const char *error = NULL;
    const char *org, *name;
    size_t org_len, name_len;
    if (hv_topic_parse(topic, topic_len, &org, &org_len, &name, &name_len) != 0)
        error = "malformed topic";
    else if (hv_event_decode(zmq_msg_data((zmq_msg_t *)body_frame), zmq_msg_size((zmq_msg_t *)body_frame), &storage, &event,
                             &error) == 0 &&
             (event.org_len != org_len || memcmp(event.org, org, org_len) != 0))
        error = "body names another org than the topic";
    if (error)
        HV_WARN("dropped a malformed event", HV_STR("err", error));
    else
        subscriber->on_event(org, org_len, event.event, event.event_len, event.data, subscriber->context);
    msgpack_unpacked_destroy(&storage);
}

static void drain(void *data)
{
    events_subscriber *subscriber = data;
    while (zmq_watch_readable(subscriber->socket)) {
        zmq_msg_t parts[HV_ZMQ_MAX_PARTS];
        int count;
        if (hv_zmq_recv_parts(subscriber->socket, parts, &count, ZMQ_DONTWAIT) != 0)
            continue;
        if (count == 2)
            on_message(subscriber, &parts[0], &parts[1]);
        else
            HV_WARN("dropped an event with a wrong frame count", HV_INT("frames", count));
        hv_zmq_close_parts(parts, count);
    }
}

events_subscriber *events_new(h2o_loop_t *loop, void *zmq_context, const char *endpoint, events_event_cb on_event,
                              events_live_cb on_live, void *context, char *error, size_t error_size)
{
    events_subscriber *subscriber = calloc(1, sizeof(*subscriber));
    if (!subscriber || getrandom(&subscriber->instance, sizeof(subscriber->instance), 0) != sizeof(subscriber->instance)) {
        snprintf(error, error_size, "out of memory or no random source");
        free(subscriber);
        return NULL;
    }
    subscriber->on_event = on_event;
    subscriber->on_live = on_live;
    subscriber->context = context;
    subscriber->socket = hv_zmq_socket(zmq_context, ZMQ_SUB, 0);
    if (!subscriber->socket || zmq_connect(subscriber->socket, endpoint) != 0 ||
        !(subscriber->watch = zmq_watch_new(loop, subscriber->socket, drain, subscriber))) {
        snprintf(error, error_size, "cannot connect to the events at \"%s\": %s", endpoint, zmq_strerror(errno));
        if (subscriber->socket)
            zmq_close(subscriber->socket);
        free(subscriber);
        return NULL;
    }
    return subscriber;
}

void events_destroy(events_subscriber **target)
{
    events_subscriber *subscriber = *target;
    if (!subscriber)
        return;
    while (subscriber->probes) {
        probe *gone = subscriber->probes;
        subscriber->probes = gone->next;
        free(gone);
    }
    zmq_watch_destroy(&subscriber->watch);
    zmq_close(subscriber->socket);
    free(subscriber);
    *target = NULL;
}

int events_subscribe(events_subscriber *subscriber, const char *org, size_t org_len)
{
    char prefix[HV_TOPIC_SIZE];
    int prefix_len = hv_topic_prefix(prefix, sizeof(prefix), org, org_len);
    probe *added = calloc(1, sizeof(*added));
    if (prefix_len < 0 || !added) {
        free(added);
        return -1;
    }
    int len = snprintf(added->topic, sizeof(added->topic), "%s#live:%016" PRIx64 ":%" PRIu64, prefix, subscriber->instance,
                       subscriber->next_serial++);
    added->topic_len = (size_t)len;
    memcpy(added->org, org, org_len);
    added->org[org_len] = '\0';
    added->org_len = org_len;

    /* The store handles subscriptions in the order they were sent, so the
     * probe's echo comes after the prefix is in force. */
    set_filter(subscriber, ZMQ_SUBSCRIBE, prefix, (size_t)prefix_len);
    set_filter(subscriber, ZMQ_SUBSCRIBE, added->topic, added->topic_len);
    added->next = subscriber->probes;
    subscriber->probes = added;
    subscriber->pending++;
    return 0;
}

void events_unsubscribe(events_subscriber *subscriber, const char *org, size_t org_len)
{
    char prefix[HV_TOPIC_SIZE];
    int prefix_len = hv_topic_prefix(prefix, sizeof(prefix), org, org_len);
    if (prefix_len < 0)
        return;
    for (probe **link = &subscriber->probes; *link;) {
        if ((*link)->org_len == org_len && memcmp((*link)->org, org, org_len) == 0)
            drop_probe(subscriber, link);
        else
            link = &(*link)->next;
    }
    set_filter(subscriber, ZMQ_UNSUBSCRIBE, prefix, (size_t)prefix_len);
}

size_t events_pending(const events_subscriber *subscriber)
{
    return subscriber->pending;
}
