/* Unit tests of event topics and event bodies (common/hv_event.c), with a
 * real ZeroMQ PUB/SUB pair over inproc:// for the subscription prefix. */
#include "hv_event.h"
#include "hv_time.h"
#include "hv_zmq.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Copies `len` bytes into one of a few static buffers, because eq(str, ...)
 * compares C strings and topic parts are not NUL-terminated. */
static char *text_of(const char *data, size_t len)
{
    static char buffers[4][HV_TOPIC_SIZE];
    static unsigned next;

    cr_assert(not(zero(ptr, (void *)data)));
    cr_assert(lt(sz, len, sizeof(buffers[0])));
    char *out = buffers[next++ % 4];
    memcpy(out, data, len);
    out[len] = '\0';
    return out;
}

/* Org ids that hv_org_id_is_valid must reject, with their lengths. */
static const struct {
    const char *org;
    size_t len;
} invalid_orgs[] = {
    {"", 0},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 65},
    {"org:1", 5},
    {"org 1", 5},
    {"org/1", 5},
    {"org_1\n", 6},
    {"org\xc3\xa9", 5},
    {"org_1\0x", 7},
};

Test(topic, format_builds_org_topic)
{
    char topic[HV_TOPIC_SIZE];
    int len = hv_topic_format(topic, sizeof(topic), "org_1", 5, HV_EVENT_MESSAGE_NEW);

    cr_assert(eq(str, topic, "org:org_1:message:new"));
    cr_assert(eq(int, len, (int)strlen("org:org_1:message:new")));
}

Test(topic, prefix_ends_with_separator)
{
    char prefix[HV_TOPIC_SIZE];
    int len = hv_topic_prefix(prefix, sizeof(prefix), "org_1", 5);

    cr_assert(eq(str, prefix, "org:org_1:"));
    cr_assert(eq(int, len, (int)strlen("org:org_1:")));
}

Test(topic, org_1_prefix_is_not_prefix_of_org_10_topic)
{
    char prefix[HV_TOPIC_SIZE];
    char topic_10[HV_TOPIC_SIZE];
    int prefix_len = hv_topic_prefix(prefix, sizeof(prefix), "org_1", 5);
    int topic_len = hv_topic_format(topic_10, sizeof(topic_10), "org_10", 6, HV_EVENT_MESSAGE_NEW);

    cr_assert(gt(int, prefix_len, 0));
    cr_assert(gt(int, topic_len, prefix_len));
    cr_assert(ne(int, memcmp(topic_10, prefix, (size_t)prefix_len), 0), "\"%s\" starts with \"%s\"", topic_10, prefix);
}

Test(topic, org_id_of_64_characters_is_valid)
{
    char org[HV_ORG_ID_MAX + 1];
    memset(org, 'a', HV_ORG_ID_MAX);
    org[HV_ORG_ID_MAX] = '\0';

    cr_assert(hv_org_id_is_valid(org, HV_ORG_ID_MAX));

    char topic[HV_TOPIC_SIZE];
    int len = hv_topic_format(topic, sizeof(topic), org, HV_ORG_ID_MAX, HV_EVENT_CONVERSATION_NEW);
    cr_assert(eq(int, len, 4 + HV_ORG_ID_MAX + 1 + (int)strlen(HV_EVENT_CONVERSATION_NEW)));
}

Test(topic, org_id_accepts_letters_digits_underscore_dash)
{
    static const char org[] = "Org_9-abcXYZ";
    cr_assert(hv_org_id_is_valid(org, strlen(org)));
}

Test(topic, rejects_invalid_org_ids)
{
    for (size_t i = 0; i < sizeof(invalid_orgs) / sizeof(invalid_orgs[0]); i++) {
        const char *org = invalid_orgs[i].org;
        size_t len = invalid_orgs[i].len;
        char topic[HV_TOPIC_SIZE];

        cr_assert(not(hv_org_id_is_valid(org, len)), "case %zu: \"%.*s\"", i, (int)len, org);
        cr_assert(eq(int, hv_topic_format(topic, sizeof(topic), org, len, HV_EVENT_MESSAGE_NEW), -1), "case %zu: \"%.*s\"", i,
                  (int)len, org);
        cr_assert(eq(int, hv_topic_prefix(topic, sizeof(topic), org, len), -1), "case %zu: \"%.*s\"", i, (int)len, org);
    }
}

Test(topic, format_rejects_buffer_too_small)
{
    const size_t needed = strlen("org:org_1:message:new") + 1;
    char topic[HV_TOPIC_SIZE];

    cr_assert(eq(int, hv_topic_format(topic, needed - 1, "org_1", 5, HV_EVENT_MESSAGE_NEW), -1));
    cr_assert(eq(int, hv_topic_format(topic, needed, "org_1", 5, HV_EVENT_MESSAGE_NEW), (int)needed - 1));
}

Test(topic, parse_round_trip)
{
    char topic[HV_TOPIC_SIZE];
    int len = hv_topic_format(topic, sizeof(topic), "org-7", 5, HV_EVENT_MESSAGE_NEW);
    cr_assert(gt(int, len, 0));

    const char *org = NULL;
    const char *event = NULL;
    size_t org_len = 0;
    size_t event_len = 0;
    cr_assert(eq(int, hv_topic_parse(topic, (size_t)len, &org, &org_len, &event, &event_len), 0));
    cr_assert(eq(str, text_of(org, org_len), "org-7"));
    cr_assert(eq(str, text_of(event, event_len), HV_EVENT_MESSAGE_NEW));
}

Test(topic, parse_reads_only_given_length)
{
    /* The frame is not NUL-terminated: a heap copy of exactly its size lets
     * AddressSanitizer catch a read past its end. */
    static const char text[] = "org:org_1:conversation:new";
    size_t size = strlen(text);
    char *frame = malloc(size);
    cr_assert(not(zero(ptr, frame)));
    memcpy(frame, text, size);

    const char *org;
    const char *event;
    size_t org_len;
    size_t event_len;
    int result = hv_topic_parse(frame, size, &org, &org_len, &event, &event_len);
    cr_assert(eq(int, result, 0));
    cr_assert(eq(str, text_of(org, org_len), "org_1"));
    cr_assert(eq(str, text_of(event, event_len), HV_EVENT_CONVERSATION_NEW));
    free(frame);
}

Test(topic, parse_rejects_malformed_topics)
{
    static const char *const malformed[] = {
        "",
        "org",
        "org:",
        "org:org_1",
        "org:org_1:",
        "org::message:new",
        "ORG:org_1:message:new",
        "team:org_1:message:new",
        "org:org 1:message:new",
        "org:org/1:message:new",
        "org:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:message:new",
        "message:new",
    };

    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        size_t size = strlen(malformed[i]);
        char *frame = malloc(size > 0 ? size : 1);
        cr_assert(not(zero(ptr, frame)));
        memcpy(frame, malformed[i], size);

        const char *org;
        const char *event;
        size_t org_len;
        size_t event_len;
        int result = hv_topic_parse(frame, size, &org, &org_len, &event, &event_len);
        free(frame);
        cr_assert(eq(int, result, -1), "\"%s\" was accepted", malformed[i]);
    }
}

Test(topic, parse_rejects_topic_cut_before_event)
{
    static const char topic[] = "org:org_1:message:new";
    const char *org;
    const char *event;
    size_t org_len;
    size_t event_len;

    /* "org:org_1:" is the first 10 bytes: the event name is missing. */
    cr_assert(eq(int, hv_topic_parse(topic, 10, &org, &org_len, &event, &event_len), -1));
}

/* Publishes one two-frame event: the topic, then a body. */
static void publish(void *publisher, const char *topic, const char *body)
{
    cr_assert(eq(int, hv_zmq_send(publisher, topic, strlen(topic), ZMQ_SNDMORE), 0), "topic %s", topic);
    cr_assert(eq(int, hv_zmq_send(publisher, body, strlen(body), 0), 0), "topic %s", topic);
}

/* Receives one event, waiting at most `timeout_ms`. Returns false on
 * timeout. The topic and body are copied into NUL-terminated buffers. */
static bool receive(void *subscriber, int timeout_ms, char *topic, char *body, size_t buffer_size)
{
    zmq_pollitem_t item = {.socket = subscriber, .events = ZMQ_POLLIN};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return false;

    zmq_msg_t parts[HV_ZMQ_MAX_PARTS];
    int count = 0;
    cr_assert(eq(int, hv_zmq_recv_parts(subscriber, parts, &count, ZMQ_DONTWAIT), 0));
    cr_assert(eq(int, count, 2));

    size_t topic_len = zmq_msg_size(&parts[0]);
    size_t body_len = zmq_msg_size(&parts[1]);
    cr_assert(lt(sz, topic_len, buffer_size));
    cr_assert(lt(sz, body_len, buffer_size));
    memcpy(topic, zmq_msg_data(&parts[0]), topic_len);
    topic[topic_len] = '\0';
    memcpy(body, zmq_msg_data(&parts[1]), body_len);
    body[body_len] = '\0';

    hv_zmq_close_parts(parts, count);
    return true;
}

/* Connects a SUB socket subscribed to the topic prefix of `org`. */
static void *subscribe(void *context, const char *endpoint, const char *org)
{
    char prefix[HV_TOPIC_SIZE];
    int prefix_len = hv_topic_prefix(prefix, sizeof(prefix), org, strlen(org));
    cr_assert(gt(int, prefix_len, 0));

    void *subscriber = hv_zmq_socket(context, ZMQ_SUB, 0);
    cr_assert(not(zero(ptr, subscriber)));
    cr_assert(eq(int, zmq_setsockopt(subscriber, ZMQ_SUBSCRIBE, prefix, (size_t)prefix_len), 0));
    cr_assert(eq(int, zmq_connect(subscriber, endpoint), 0));
    return subscriber;
}

Test(topic, subscription_to_org_1_skips_org_10)
{
    static const char endpoint[] = "inproc://topic-prefix-filter";
    char topic_1[HV_TOPIC_SIZE];
    char topic_10[HV_TOPIC_SIZE];
    cr_assert(gt(int, hv_topic_format(topic_1, sizeof(topic_1), "org_1", 5, HV_EVENT_MESSAGE_NEW), 0));
    cr_assert(gt(int, hv_topic_format(topic_10, sizeof(topic_10), "org_10", 6, HV_EVENT_MESSAGE_NEW), 0));

    void *context = zmq_ctx_new();
    cr_assert(not(zero(ptr, context)));
    void *publisher = hv_zmq_socket(context, ZMQ_PUB, 0);
    cr_assert(not(zero(ptr, publisher)));
    cr_assert(eq(int, zmq_bind(publisher, endpoint), 0));

    /* The org_10 subscriber proves that org_10's events are published, so
     * their absence at the org_1 subscriber is the prefix filter's doing. */
    void *subscriber_1 = subscribe(context, endpoint, "org_1");
    void *subscriber_10 = subscribe(context, endpoint, "org_10");

    /* Subscriptions reach the publisher asynchronously, and until then it
     * drops every event. Publish "sync" events until both subscribers have
     * received one. */
    char topic[HV_TOPIC_SIZE];
    char body[HV_TOPIC_SIZE];
    bool synced_1 = false;
    bool synced_10 = false;
    int64_t deadline = hv_time_monotonic_ms() + 2000;
    while (!(synced_1 && synced_10) && hv_time_monotonic_ms() < deadline) {
        publish(publisher, topic_1, "sync");
        publish(publisher, topic_10, "sync");
        while (receive(subscriber_1, 10, topic, body, sizeof(topic))) {
            cr_assert(eq(str, topic, topic_1), "the org_1 subscriber received %s", topic);
            synced_1 = true;
        }
        while (receive(subscriber_10, 0, topic, body, sizeof(topic))) {
            cr_assert(eq(str, topic, topic_10), "the org_10 subscriber received %s", topic);
            synced_10 = true;
        }
    }
    cr_assert(synced_1, "the org_1 subscriber received nothing within 2 s");
    cr_assert(synced_10, "the org_10 subscriber received nothing within 2 s");

    /* One publisher-to-subscriber pipe keeps the order of events, so had
     * org_10's "last" event passed the filter, it would arrive before
     * org_1's. Leftover "sync" events are skipped. */
    publish(publisher, topic_10, "last");
    publish(publisher, topic_1, "last");

    bool received = false;
    while ((received = receive(subscriber_1, 2000, topic, body, sizeof(topic)))) {
        cr_assert(eq(str, topic, topic_1), "the org_1 subscriber received %s", topic);
        if (strcmp(body, "last") == 0)
            break;
    }
    cr_assert(received, "org_1's last event did not arrive within 2 s");

    while ((received = receive(subscriber_10, 2000, topic, body, sizeof(topic)))) {
        cr_assert(eq(str, topic, topic_10), "the org_10 subscriber received %s", topic);
        if (strcmp(body, "last") == 0)
            break;
    }
    cr_assert(received, "org_10's last event did not arrive within 2 s");

    zmq_close(subscriber_10);
    zmq_close(subscriber_1);
    zmq_close(publisher);
    zmq_ctx_term(context);
}

/* Each event test packs one body into `frame` and decodes it into
 * `storage`. */
static msgpack_sbuffer frame;
static msgpack_packer packer;
static msgpack_unpacked storage;

static void setup(void)
{
    msgpack_sbuffer_init(&frame);
    msgpack_packer_init(&packer, &frame, msgpack_sbuffer_write);
    msgpack_unpacked_init(&storage);
}

static void teardown(void)
{
    msgpack_unpacked_destroy(&storage);
    msgpack_sbuffer_destroy(&frame);
}

TestSuite(event, .init = setup, .fini = teardown);

static void pack_str(const char *text)
{
    msgpack_pack_str_with_body(&packer, text, strlen(text));
}

/* Packs a message:new event for org_1 with data {"id": "m-1", "text": "hi"}. */
static void pack_valid_event(void)
{
    hv_event_pack_begin(&packer, "org_1", HV_EVENT_MESSAGE_NEW);
    msgpack_pack_map(&packer, 2);
    pack_str("id");
    pack_str("m-1");
    pack_str("text");
    pack_str("hi");
}

static int decode(hv_event *event, const char **error)
{
    *error = NULL;
    return hv_event_decode(frame.data, frame.size, &storage, event, error);
}

Test(event, body_round_trip)
{
    pack_valid_event();

    hv_event event;
    const char *error;
    cr_assert(eq(int, decode(&event, &error), 0));
    cr_assert(zero(ptr, (void *)error));
    cr_assert(eq(str, text_of(event.event, event.event_len), HV_EVENT_MESSAGE_NEW));
    cr_assert(eq(str, text_of(event.org, event.org_len), "org_1"));

    const msgpack_object *data = event.data;
    cr_assert(eq(int, data->type, MSGPACK_OBJECT_MAP));
    cr_assert(eq(u32, data->via.map.size, 2));
    const msgpack_object_kv *text = &data->via.map.ptr[1];
    cr_assert(eq(str, text_of(text->key.via.str.ptr, text->key.via.str.size), "text"));
    cr_assert(eq(str, text_of(text->val.via.str.ptr, text->val.via.str.size), "hi"));
}

Test(event, rejects_truncated_body)
{
    pack_valid_event();

    for (size_t len = 0; len < frame.size; len++) {
        char *copy = malloc(len > 0 ? len : 1);
        cr_assert(not(zero(ptr, copy)));
        memcpy(copy, frame.data, len);

        msgpack_unpacked prefix_storage;
        msgpack_unpacked_init(&prefix_storage);
        hv_event event;
        const char *error = NULL;
        int result = hv_event_decode(copy, len, &prefix_storage, &event, &error);
        msgpack_unpacked_destroy(&prefix_storage);
        free(copy);

        cr_assert(eq(int, result, -1), "a prefix of %zu of %zu bytes was accepted", len, frame.size);
        cr_assert(eq(str, (char *)error, "truncated msgpack"), "prefix of %zu bytes", len);
    }
}

Test(event, rejects_garbage_bytes)
{
    static const char never_used[] = "\xc1\xc1\xc1";

    hv_event event;
    const char *error = NULL;
    cr_assert(eq(int, hv_event_decode(never_used, 3, &storage, &event, &error), -1));
    cr_assert(eq(str, (char *)error, "invalid msgpack"));
}

/* Caps the address space of this test's process at 256 MiB above what it
 * maps now, so that an allocation sized from a forged element count fails
 * at once instead of succeeding lazily on a machine with enough memory. */
static void limit_address_space(void)
{
    FILE *statm = fopen("/proc/self/statm", "r");
    cr_assert(not(zero(ptr, statm)));
    unsigned long pages = 0;
    int fields = fscanf(statm, "%lu", &pages);
    fclose(statm);
    cr_assert(eq(int, fields, 1));

    struct rlimit limit;
    cr_assert(eq(int, getrlimit(RLIMIT_AS, &limit), 0));
    limit.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)256 << 20);
    cr_assert(eq(int, setrlimit(RLIMIT_AS, &limit), 0));
}

Test(event, rejects_huge_container_count_as_truncated)
{
    /* {"data": an array of 2^32 - 1 elements}, in 12 bytes. msgpack-c
     * allocates room for the declared elements before reading them. */
    static const char body[] = "\x81\xa4"
                               "data\xdd\xff\xff\xff\xff";
    limit_address_space();

    hv_event event;
    const char *error = NULL;
    cr_assert(eq(int, hv_event_decode(body, sizeof(body) - 1, &storage, &event, &error), -1));
    cr_assert(eq(str, (char *)error, "truncated msgpack"));
}

Test(event, rejects_trailing_bytes)
{
    pack_valid_event();
    msgpack_pack_nil(&packer);

    hv_event event;
    const char *error;
    cr_assert(eq(int, decode(&event, &error), -1));
    cr_assert(eq(str, (char *)error, "trailing bytes after the msgpack object"));
}

Test(event, rejects_non_map_body)
{
    msgpack_pack_array(&packer, 3);
    pack_str(HV_EVENT_MESSAGE_NEW);
    pack_str("org_1");
    msgpack_pack_nil(&packer);

    hv_event event;
    const char *error;
    cr_assert(eq(int, decode(&event, &error), -1));
    cr_assert(eq(str, (char *)error, "missing or invalid \"event\""));
}

Test(event, rejects_missing_org_id)
{
    msgpack_pack_map(&packer, 2);
    pack_str("event");
    pack_str(HV_EVENT_MESSAGE_NEW);
    pack_str("data");
    msgpack_pack_nil(&packer);

    hv_event event;
    const char *error;
    cr_assert(eq(int, decode(&event, &error), -1));
    cr_assert(eq(str, (char *)error, "missing or invalid \"orgId\""));
}

Test(event, rejects_event_name_that_is_not_string)
{
    msgpack_pack_map(&packer, 3);
    pack_str("event");
    msgpack_pack_int(&packer, 1);
    pack_str("orgId");
    pack_str("org_1");
    pack_str("data");
    msgpack_pack_nil(&packer);

    hv_event event;
    const char *error;
    cr_assert(eq(int, decode(&event, &error), -1));
    cr_assert(eq(str, (char *)error, "missing or invalid \"event\""));
}

Test(event, rejects_missing_data)
{
    msgpack_pack_map(&packer, 2);
    pack_str("event");
    pack_str(HV_EVENT_MESSAGE_NEW);
    pack_str("orgId");
    pack_str("org_1");

    hv_event event;
    const char *error;
    cr_assert(eq(int, decode(&event, &error), -1));
    cr_assert(eq(str, (char *)error, "missing \"data\""));
}
