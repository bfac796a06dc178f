/* The msgpack request/reply envelope spoken between the services and the
 * store over DEALER/ROUTER sockets. docs/protocol.md is the specification. */
#ifndef HV_ENVELOPE_H
#define HV_ENVELOPE_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define HV_PROTOCOL_VERSION 1

/* Reply statuses, with the meaning of the HTTP status of the same number. */
enum {
    HV_STATUS_OK = 200,
    HV_STATUS_CREATED = 201,
    HV_STATUS_BAD_REQUEST = 400,
    HV_STATUS_UNAUTHORIZED = 401,
    HV_STATUS_NOT_FOUND = 404,
    HV_STATUS_CONFLICT = 409,
    HV_STATUS_TOO_LARGE = 413,
    HV_STATUS_INTERNAL_ERROR = 500,
    HV_STATUS_UNAVAILABLE = 503,
};

/* A decoded request. Strings point into the unpacked zone and are not
 * NUL-terminated; they stay valid until that zone is destroyed. */
typedef struct {
    uint64_t id; /* chosen by the caller, echoed in the reply; 0 when undecodable */
    const char *op;
    size_t op_len;
    const char *org; /* NULL for operations that are not scoped to an org */
    size_t org_len;
    const char *trace; /* the caller's request id for log lines, or NULL */
    size_t trace_len;
    const msgpack_object *args; /* always a map; an empty one when absent */
} hv_request;

/* A decoded reply; `body` points into the unpacked zone. */
typedef struct {
    uint64_t id;
    int status;
    const msgpack_object *body;
} hv_reply;

/* Decodes one request frame. `storage` must have been initialized with
 * msgpack_unpacked_init and is destroyed by the caller after use.
 * Returns 0, or -1 with *error set to a static description; out->id is set
 * whenever the id itself could be read, so that the error can be replied to. */
__attribute__((warn_unused_result)) int hv_request_decode(const char *data, size_t size, msgpack_unpacked *storage,
                                                          hv_request *out, const char **error);

/* Packs the request envelope up to the "args" key: the caller packs the
 * arguments map right after. `org` and `trace` may be NULL. */
void hv_request_pack_begin(msgpack_packer *packer, uint64_t id, const char *op, const char *org, const char *trace);

/* Decodes one reply frame, as hv_request_decode does. */
__attribute__((warn_unused_result)) int hv_reply_decode(const char *data, size_t size, msgpack_unpacked *storage,
                                                        hv_reply *out, const char **error);

/* Packs the reply envelope up to the "body" key: the caller packs the body
 * right after. */
void hv_reply_pack_begin(msgpack_packer *packer, uint64_t id, int status);

/* Packs a whole error reply whose body is {"error": message}. */
void hv_reply_pack_error(msgpack_packer *packer, uint64_t id, int status, const char *message);

#endif
