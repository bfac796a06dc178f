/* A ZeroMQ socket watched by h2o's event loop.
 *
 * ZeroMQ signals a socket's readiness through ZMQ_FD, which is edge
 * triggered: it fires once for any number of messages, and a send or a
 * subscription change can consume a pending signal. So the callback must
 * read until zmq_watch_readable returns false. After each such call on the
 * socket, the owner pokes the watch, which runs the callback once more on
 * the next turn of the loop. */
#ifndef HV_LOOP_ZMQ_WATCH_H
#define HV_LOOP_ZMQ_WATCH_H

#include <h2o.h>
#include <stdbool.h>

typedef struct zmq_watch zmq_watch;

/* Called when the socket may have messages to read. */
typedef void (*zmq_watch_cb)(void *data);

/* Watches `socket`, whose ZMQ_FD h2o polls through a duplicate. Returns
 * NULL with errno set on failure. */
zmq_watch *zmq_watch_new(h2o_loop_t *loop, void *socket, zmq_watch_cb callback, void *data);

/* Stops watching and frees the watch; the socket stays open. Accepts NULL. */
void zmq_watch_destroy(zmq_watch **watch);

/* Runs the callback once more on the next turn of the loop. */
void zmq_watch_poke(zmq_watch *watch);

/* Returns whether a message is waiting on `socket`. */
bool zmq_watch_readable(void *socket);

#endif
