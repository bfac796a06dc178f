/* The msgpack request/reply envelope: encoding and strict decoding. */
#include "hv_envelope.h"
#include "hv_msgpack.h"

static const msgpack_object empty_map = {.type = MSGPACK_OBJECT_MAP, .via.map = {.size = 0, .ptr = NULL}};

/* Unpacks exactly one msgpack map that fills the whole frame. */
/* Unpacks exactly one msgpack map that fills the whole frame. */
static int unpack_single_map(const char *data, size_t size, msgpack_unpacked *storage, const char **error)
{
    if (hv_mp_unpack_exact(data, size, storage, error) != 0)
        return -1;
    if (storage->data.type != MSGPACK_OBJECT_MAP) {
        *error = "envelope is not a map";
        return -1;
    }
    return 0;
}

static int check_version(const msgpack_object *envelope, const char **error)
{
    uint64_t version;
    if (!hv_mp_map_get_uint(envelope, "v", &version)) {
        *error = "missing protocol version \"v\"";
        return -1;
    }
    if (version != HV_PROTOCOL_VERSION) {
        *error = "unsupported protocol version";
        return -1;
    }
    return 0;
}

/* Reads an optional string field: absent and nil both mean NULL. */
static int optional_str(const msgpack_object *map, const char *key, const char **text, size_t *len)
{
    const msgpack_object *value = hv_mp_map_get(map, key);
    *text = NULL;
    *len = 0;
    if (!value || value->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (value->type != MSGPACK_OBJECT_STR)
        return -1;
    *text = value->via.str.ptr;
    *len = value->via.str.size;
    return 0;
}

int hv_request_decode(const char *data, size_t size, msgpack_unpacked *storage, hv_request *out, const char **error)
{
    *out = (hv_request){.args = &empty_map};

    if (unpack_single_map(data, size, storage, error) != 0)
        return -1;
    const msgpack_object *envelope = &storage->data;

    /* Read the id first, so that every later error can still be replied to. */
    if (!hv_mp_map_get_uint(envelope, "id", &out->id)) {
        *error = "missing or invalid request id \"id\"";
        return -1;
    }
    if (check_version(envelope, error) != 0)
        return -1;
    if (!hv_mp_map_get_str(envelope, "op", &out->op, &out->op_len) || out->op_len == 0) {
        *error = "missing or invalid operation \"op\"";
        return -1;
    }
    if (optional_str(envelope, "org", &out->org, &out->org_len) != 0) {
        *error = "invalid \"org\": expected a string or nil";
        return -1;
    }
    if (optional_str(envelope, "trace", &out->trace, &out->trace_len) != 0) {
        *error = "invalid \"trace\": expected a string or nil";
        return -1;
    }

    const msgpack_object *args = hv_mp_map_get(envelope, "args");
    if (args && args->type == MSGPACK_OBJECT_MAP) {
        out->args = args;
    } else if (args && args->type != MSGPACK_OBJECT_NIL) {
        *error = "invalid \"args\": expected a map";
        return -1;
    }
    return 0;
}

void hv_request_pack_begin(msgpack_packer *packer, uint64_t id, const char *op, const char *org, const char *trace)
{
    msgpack_pack_map(packer, 6);
    hv_mp_pack_cstr(packer, "v");
    msgpack_pack_uint32(packer, HV_PROTOCOL_VERSION);
    hv_mp_pack_cstr(packer, "id");
    msgpack_pack_uint64(packer, id);
    hv_mp_pack_entry_str(packer, "op", op);
    hv_mp_pack_entry_str(packer, "org", org);
    hv_mp_pack_entry_str(packer, "trace", trace);
    hv_mp_pack_cstr(packer, "args");
}

int hv_reply_decode(const char *data, size_t size, msgpack_unpacked *storage, hv_reply *out, const char **error)
{
    *out = (hv_reply){.body = &empty_map};

    if (unpack_single_map(data, size, storage, error) != 0)
        return -1;
    const msgpack_object *envelope = &storage->data;

    if (!hv_mp_map_get_uint(envelope, "id", &out->id)) {
        *error = "missing or invalid request id \"id\"";
        return -1;
    }
    if (check_version(envelope, error) != 0)
        return -1;

    uint64_t status;
    if (!hv_mp_map_get_uint(envelope, "status", &status) || status < 100 || status > 599) {
        *error = "missing or invalid \"status\"";
        return -1;
    }
    out->status = (int)status;

    const msgpack_object *body = hv_mp_map_get(envelope, "body");
    if (!body) {
        *error = "missing \"body\"";
        return -1;
    }
    out->body = body;
    return 0;
}

void hv_reply_pack_begin(msgpack_packer *packer, uint64_t id, int status)
{
    msgpack_pack_map(packer, 4);
    hv_mp_pack_cstr(packer, "v");
    msgpack_pack_uint32(packer, HV_PROTOCOL_VERSION);
    hv_mp_pack_cstr(packer, "id");
    msgpack_pack_uint64(packer, id);
    hv_mp_pack_cstr(packer, "status");
    msgpack_pack_int(packer, status);
    hv_mp_pack_cstr(packer, "body");
}

void hv_reply_pack_error(msgpack_packer *packer, uint64_t id, int status, const char *message)
{
    hv_reply_pack_begin(packer, id, status);
    msgpack_pack_map(packer, 1);
    hv_mp_pack_entry_str(packer, "error", message);
}
