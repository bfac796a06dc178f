/* Events published by the store: topic frames and msgpack event bodies. */
#include "hv_event.h"
#include "hv_msgpack.h"

#include <stdio.h>
#include <string.h>

bool hv_org_id_is_valid(const char *org, size_t len)
{
    if (len == 0 || len > HV_ORG_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = org[i];
        bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!allowed)
            return false;
    }
    return true;
}

int hv_topic_format(char *out, size_t out_size, const char *org, size_t org_len, const char *event)
{
    if (!hv_org_id_is_valid(org, org_len))
        return -1;
    int written = snprintf(out, out_size, "org:%.*s:%s", (int)org_len, org, event);
    if (written < 0 || (size_t)written >= out_size)
        return -1;
    return written;
}

int hv_topic_prefix(char *out, size_t out_size, const char *org, size_t org_len)
{
    return hv_topic_format(out, out_size, org, org_len, "");
}

int hv_topic_parse(const char *topic, size_t len, const char **org, size_t *org_len, const char **event, size_t *event_len)
{
    if (len < 4 || memcmp(topic, "org:", 4) != 0)
        return -1;
    const char *org_start = topic + 4;
    const char *separator = memchr(org_start, ':', len - 4);
    if (!separator)
        return -1;

    size_t org_size = (size_t)(separator - org_start);
    size_t event_size = len - 4 - org_size - 1;
    if (!hv_org_id_is_valid(org_start, org_size) || event_size == 0)
        return -1;

    *org = org_start;
    *org_len = org_size;
    *event = separator + 1;
    *event_len = event_size;
    return 0;
}

void hv_event_pack_begin(msgpack_packer *packer, const char *org, const char *event)
{
    msgpack_pack_map(packer, 3);
    hv_mp_pack_entry_str(packer, "event", event);
    hv_mp_pack_entry_str(packer, "orgId", org);
    hv_mp_pack_cstr(packer, "data");
}

int hv_event_decode(const char *data, size_t size, msgpack_unpacked *storage, hv_event *out, const char **error)
{
    if (hv_mp_unpack_exact(data, size, storage, error) != 0)
        return -1;

    const msgpack_object *body = &storage->data;
    if (!hv_mp_map_get_str(body, "event", &out->event, &out->event_len)) {
        *error = "missing or invalid \"event\"";
        return -1;
    }
    if (!hv_mp_map_get_str(body, "orgId", &out->org, &out->org_len)) {
        *error = "missing or invalid \"orgId\"";
        return -1;
    }
    out->data = hv_mp_map_get(body, "data");
    if (!out->data) {
        *error = "missing \"data\"";
        return -1;
    }
    return 0;
}
