/* A blocking request/reply call to the store, for the command-line tools and
 * the tests. The services use their own non-blocking clients. */
#ifndef HV_STORE_CALL_H
#define HV_STORE_CALL_H

#include "hv_envelope.h"

#include <msgpack.h>
#include <zmq.h>

/* A reply and the memory it points into: msgpack-c's objects point into
 * the received frame for strings, so the frame lives as long as they do. */
typedef struct {
    zmq_msg_t frame;
    msgpack_unpacked storage;
    hv_reply reply;
} hv_call_result;

/* Opens a DEALER socket connected to `endpoint`. Returns NULL with errno
 * set on failure. */
void *hv_store_connect(void *context, const char *endpoint);

/* Sends `request` (a whole envelope whose id is `id`) on a DEALER socket and
 * waits up to `timeout_ms` for the reply with that id; replies to other ids
 * are skipped. On success returns 0 and the caller destroys the result
 * with hv_call_result_destroy. Returns -1 with errno ETIMEDOUT when no reply
 * came in time, EPROTO when the reply was malformed, or zmq's errno. */
__attribute__((warn_unused_result)) int hv_store_call(void *dealer, const msgpack_sbuffer *request, uint64_t id,
                                                      int timeout_ms, hv_call_result *out);

void hv_call_result_destroy(hv_call_result *result);

#endif
