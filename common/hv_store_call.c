/* A blocking request/reply call to the store, for the tools and the tests. */
#include "hv_store_call.h"
#include "hv_time.h"
#include "hv_zmq.h"

#include <errno.h>
#include <stdbool.h>

void *hv_store_connect(void *context, const char *endpoint)
{
    void *dealer = hv_zmq_socket(context, ZMQ_DEALER, 0);
    if (!dealer)
        return NULL;
    if (zmq_connect(dealer, endpoint) != 0) {
        int saved = errno;
        zmq_close(dealer);
        errno = saved;
        return NULL;
    }
    return dealer;
}

int hv_store_call(void *dealer, const msgpack_sbuffer *request, uint64_t id, int timeout_ms, hv_call_result *out)
{
    if (zmq_send(dealer, request->data, request->size, 0) < 0)
        return -1;

    int64_t deadline = hv_time_monotonic_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - hv_time_monotonic_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        zmq_pollitem_t item = {.socket = dealer, .events = ZMQ_POLLIN};
        int ready = zmq_poll(&item, 1, (long)left);
        if (ready < 0 && errno != EINTR)
            return -1;
        if (ready <= 0)
            continue;

        zmq_msg_init(&out->frame);
        if (zmq_msg_recv(&out->frame, dealer, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&out->frame);
            continue;
        }
        bool more = zmq_msg_more(&out->frame);

        /* The store replies with one frame; skip anything longer. */
        while (more) {
            zmq_msg_t extra;
            zmq_msg_init(&extra);
            more = zmq_msg_recv(&extra, dealer, 0) >= 0 && zmq_msg_more(&extra);
            zmq_msg_close(&extra);
        }

        msgpack_unpacked_init(&out->storage);
        const char *error;
        int decoded = hv_reply_decode(zmq_msg_data(&out->frame), zmq_msg_size(&out->frame), &out->storage, &out->reply, &error);
        if (decoded == 0 && out->reply.id == id)
            return 0;

        hv_call_result_destroy(out);
        if (decoded != 0) {
            errno = EPROTO;
            return -1;
        }
    }
}

void hv_call_result_destroy(hv_call_result *result)
{
    msgpack_unpacked_destroy(&result->storage);
    zmq_msg_close(&result->frame);
}
