/* helvino-trace: watch the store's events. Subscribes to one org or to all,
 * and prints one JSON line per event:
 * {"topic":...,"event":...,"orgId":...,"data":{...}} */
#include "hv_config.h"
#include "hv_event.h"
#include "hv_json.h"

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    const char *events_endpoint;
    const char *org;
    bool raw;
    long count;
    long timeout_ms;
} options;

static hv_setting settings[] = {
    {"events-endpoint", "HELVINO_EVENTS_ENDPOINT", HV_SETTING_STRING, "tcp://127.0.0.1:5556",
     "ZeroMQ endpoint of the store's event socket.", &options.events_endpoint, 0, 0, HV_SHOW_PLAIN},
    {"org", NULL, HV_SETTING_STRING, "", "Only this org's events; every org's when empty.", &options.org, 0, 0, HV_SHOW_PLAIN},
    {"raw", NULL, HV_SETTING_BOOL, "false", "Print the topic and the msgpack body in hex instead of decoding it.",
     &options.raw, 0, 0, HV_SHOW_PLAIN},
    {"count", NULL, HV_SETTING_INT, "0", "Exit after this many events; 0 runs until interrupted.", &options.count, 0,
     1000000000, HV_SHOW_PLAIN},
    {"timeout-ms", NULL, HV_SETTING_INT, "0", "Exit after this long, in milliseconds; 0 runs until interrupted.",
     &options.timeout_ms, 0, 1000000000, HV_SHOW_PLAIN},
};

#define SETTING_COUNT (sizeof(settings) / sizeof(settings[0]))

static void print_raw(zframe_t *topic, zframe_t *body)
{
    char *hex = zframe_strhex(body);
    printf("%.*s %s\n", (int)zframe_size(topic), (const char *)zframe_data(topic), hex ? hex : "");
    free(hex);
}

/* Prints one decoded event and returns true, or warns on stderr and returns
 * false when it is malformed. */
static bool print_decoded(zframe_t *topic, zframe_t *body)
{
    msgpack_unpacked storage;
    msgpack_unpacked_init(&storage);
    hv_event event;
    const char *error = NULL;
    json_t *data = NULL;

    if (hv_event_decode((const char *)zframe_data(body), zframe_size(body), &storage, &event, &error) == 0) {
        data = hv_json_from_msgpack(event.data);
        if (!data)
            error = "data cannot be shown as JSON";
    }

    if (data) {
        json_t *line = json_object();
        json_object_set_new(line, "topic", json_stringn((const char *)zframe_data(topic), zframe_size(topic)));
        json_object_set_new(line, "event", json_stringn(event.event, event.event_len));
        json_object_set_new(line, "orgId", json_stringn(event.org, event.org_len));
        json_object_set_new(line, "data", data);
        char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("%s\n", text ? text : "null");
        free(text);
        json_decref(line);
    } else {
        fprintf(stderr, "helvino-trace: skipped a malformed event on topic \"%.*s\": %s\n", (int)zframe_size(topic),
                (const char *)zframe_data(topic), error);
    }
    msgpack_unpacked_destroy(&storage);
    return data != NULL;
}

int main(int argc, char **argv)
{
    char error[256];
    int loaded = hv_config_load(settings, SETTING_COUNT, argc, argv, NULL, error, sizeof(error));
    if (loaded == HV_CONFIG_HELP) {
        hv_config_print_usage(settings, SETTING_COUNT, "helvino-trace", "[OPTIONS]");
        return 0;
    }
    if (loaded == HV_CONFIG_ERROR) {
        fprintf(stderr, "helvino-trace: %s\n", error);
        return 2;
    }

    /* czmq (4.2.1) accepts an empty endpoint list and returns a socket
     * connected to nothing, on which the loop below would wait forever. */
    if (!options.events_endpoint[0]) {
        fprintf(stderr, "helvino-trace: missing value for --events-endpoint: expected the store's event endpoint, such as %s\n",
                settings[0].default_value);
        return 2;
    }

    char prefix[HV_TOPIC_SIZE] = "org:";
    if (options.org[0] && hv_topic_prefix(prefix, sizeof(prefix), options.org, strlen(options.org)) < 0) {
        fprintf(stderr, "helvino-trace: invalid org id \"%s\": expected 1 to 64 characters from A-Z a-z 0-9 _ -\n",
                options.org);
        return 2;
    }

    /* zsock_new_sub would read "@" and "," in the endpoint as czmq's
     * bind and list syntax; this tool only ever connects to one endpoint. */
    zsock_t *subscriber = zsock_new(ZMQ_SUB);
    if (!subscriber) {
        fprintf(stderr, "helvino-trace: creating the socket failed: %s\n", zmq_strerror(errno));
        return 1;
    }
    zsock_set_subscribe(subscriber, prefix);
    if (zmq_connect(zsock_resolve(subscriber), options.events_endpoint) != 0) {
        fprintf(stderr, "helvino-trace: cannot connect to \"%s\": %s\n", options.events_endpoint, zmq_strerror(errno));
        zsock_destroy(&subscriber);
        return 2;
    }
    /* Line-buffered, so that each event reaches a pipe as it happens. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    zpoller_t *poller = zpoller_new(subscriber, NULL);
    int64_t deadline = options.timeout_ms ? zclock_mono() + options.timeout_ms : 0;
    long printed = 0;

    while (!zsys_interrupted && (options.count == 0 || printed < options.count)) {
        int wait_ms = -1;
        if (deadline) {
            int64_t left = deadline - zclock_mono();
            if (left <= 0)
                break;
            wait_ms = (int)left;
        }
        if (!zpoller_wait(poller, wait_ms))
            continue;

        zmsg_t *message = zmsg_recv(subscriber);
        if (!message)
            break;
        if (zmsg_size(message) == 2) {
            zframe_t *topic = zmsg_first(message);
            zframe_t *body = zmsg_next(message);
            if (zframe_size(body) == 0) {
                /* The store's echo of our subscription, not an event. */
            } else if (options.raw) {
                print_raw(topic, body);
                printed++;
            } else if (print_decoded(topic, body)) {
                printed++;
            }
        } else {
            fprintf(stderr, "helvino-trace: skipped a message of %zu frames; events have 2\n", zmsg_size(message));
        }
        zmsg_destroy(&message);
    }

    zpoller_destroy(&poller);
    zsock_destroy(&subscriber);
    return 0;
}
