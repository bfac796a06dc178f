/* ZeroMQ helpers shared by the services and the tools. */
#ifndef HV_ZMQ_H
#define HV_ZMQ_H

#include <stddef.h>
#include <zmq.h>

/* Most frames accepted in one multipart message. */
#define HV_ZMQ_MAX_PARTS 8

/* Creates a socket with ZMQ_LINGER set to `linger_ms` (how long close waits
 * to deliver queued messages). Returns NULL with errno set on failure. */
void *hv_zmq_socket(void *context, int type, int linger_ms);

/* Receives every frame of one message into parts[0..*count). The caller
 * closes each received frame with zmq_msg_close. A message of more than
 * HV_ZMQ_MAX_PARTS frames is read to its end and discarded: the function
 * then returns -1 with errno EMSGSIZE and *count 0. Other failures return -1
 * with errno from zmq_msg_recv (EAGAIN with ZMQ_DONTWAIT, EINTR, ETERM). */
__attribute__((warn_unused_result)) int hv_zmq_recv_parts(void *socket, zmq_msg_t parts[HV_ZMQ_MAX_PARTS], int *count,
                                                          int flags);

/* Closes parts[0..count). */
void hv_zmq_close_parts(zmq_msg_t *parts, int count);

/* Sends `size` bytes as one frame; `flags` as for zmq_send. Returns 0, or -1
 * with errno set. */
__attribute__((warn_unused_result)) int hv_zmq_send(void *socket, const void *data, size_t size, int flags);

#endif
