/* ZeroMQ helpers shared by the services and the tools. */
#include "hv_zmq.h"

#include <errno.h>
#include <stdbool.h>

void *hv_zmq_socket(void *context, int type, int linger_ms)
{
    void *socket = zmq_socket(context, type);
    if (!socket)
        return NULL;
    if (zmq_setsockopt(socket, ZMQ_LINGER, &linger_ms, sizeof(linger_ms)) != 0) {
        int saved = errno;
        zmq_close(socket);
        errno = saved;
        return NULL;
    }
    return socket;
}

void hv_zmq_close_parts(zmq_msg_t *parts, int count)
{
    for (int i = 0; i < count; i++)
        zmq_msg_close(&parts[i]);
}

int hv_zmq_recv_parts(void *socket, zmq_msg_t parts[HV_ZMQ_MAX_PARTS], int *count, int flags)
{
    int stored = 0;
    bool overflow = false;
    zmq_msg_t excess; /* frames past HV_ZMQ_MAX_PARTS are read here and dropped */

    *count = 0;
    for (;;) {
        zmq_msg_t *part = stored < HV_ZMQ_MAX_PARTS ? &parts[stored] : &excess;
        zmq_msg_init(part);

        /* Only the first frame may fail with EAGAIN: the rest of a
         * multipart message arrives together with it. */
        if (zmq_msg_recv(part, socket, stored == 0 ? flags : 0) < 0) {
            int saved = errno;
            zmq_msg_close(part);
            hv_zmq_close_parts(parts, stored);
            errno = saved;
            return -1;
        }

        bool more = zmq_msg_more(part);
        if (part == &excess) {
            overflow = true;
            zmq_msg_close(&excess);
        } else {
            stored++;
        }
        if (!more)
            break;
    }

    if (overflow) {
        hv_zmq_close_parts(parts, stored);
        errno = EMSGSIZE;
        return -1;
    }
    *count = stored;
    return 0;
}

int hv_zmq_send(void *socket, const void *data, size_t size, int flags)
{
    return zmq_send(socket, data, size, flags) < 0 ? -1 : 0;
}
