/* Events published by the store: the org-prefixed topic frame and the
 * msgpack body frame. docs/protocol.md is the specification. */
#ifndef HV_EVENT_H
#define HV_EVENT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

/* Maximum length of an org id. Org ids are 1 to 64 characters from [A-Za-z0-9_-], so a
 * topic never contains a ':' other than its two separators. */
#define HV_ORG_ID_MAX 64

/* Buffer size for a topic: "org:" + org id + ":" + event name, plus the NUL. */
#define HV_TOPIC_SIZE 160

#define HV_EVENT_MESSAGE_NEW "message:new"
#define HV_EVENT_CONVERSATION_NEW "conversation:new"

/* A decoded event body. Strings point into the unpacked zone and are not
 * NUL-terminated. */
typedef struct {
    const char *event;
    size_t event_len;
    const char *org;
    size_t org_len;
    const msgpack_object *data;
} hv_event;

/* Returns true when `org` (of `len` bytes) is a well-formed org id. */
bool hv_org_id_is_valid(const char *org, size_t len);

/* Writes "org:<org>:<event>" into `out`. Returns the topic length, or -1
 * when the org id is malformed or the topic does not fit. */
__attribute__((warn_unused_result)) int hv_topic_format(char *out, size_t out_size, const char *org, size_t org_len,
                                                        const char *event);

/* Writes the subscription prefix "org:<org>:" into `out`. The trailing ':'
 * is what keeps a subscription to org_1 from matching org_10. Returns the
 * prefix length, or -1 as hv_topic_format does. */
__attribute__((warn_unused_result)) int hv_topic_prefix(char *out, size_t out_size, const char *org, size_t org_len);

/* Splits a topic frame into its org id and event name (pointers into
 * `topic`). Returns 0, or -1 when the frame is not a well-formed topic. */
__attribute__((warn_unused_result)) int hv_topic_parse(const char *topic, size_t len, const char **org, size_t *org_len,
                                                       const char **event, size_t *event_len);

/* Packs the event body {"event", "orgId", "data"} up to the "data" key: the
 * caller packs the data object right after. */
void hv_event_pack_begin(msgpack_packer *packer, const char *org, const char *event);

/* Decodes an event body frame. `storage` must have been initialized with
 * msgpack_unpacked_init and is destroyed by the caller. Returns 0, or -1
 * with *error set to a static description. */
__attribute__((warn_unused_result)) int hv_event_decode(const char *data, size_t size, msgpack_unpacked *storage,
                                                        hv_event *out, const char **error);

#endif
