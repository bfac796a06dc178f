#include "zmq_watch.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <zmq.h>

struct zmq_watch {
    h2o_loop_t *loop;
    h2o_socket_t *notifier; /* wraps a duplicate of ZMQ_FD */
    h2o_timeout_t next_turn;
    h2o_timeout_entry_t poke;
    zmq_watch_cb callback;
    void *data;
};

static void on_notified(h2o_socket_t *sock, const char *err)
{
    (void)err;
    zmq_watch *watch = sock->data;
    watch->callback(watch->data);
}

static void on_poke(h2o_timeout_entry_t *entry)
{
    zmq_watch *watch = H2O_STRUCT_FROM_MEMBER(zmq_watch, poke, entry);
    watch->callback(watch->data);
}

zmq_watch *zmq_watch_new(h2o_loop_t *loop, void *socket, zmq_watch_cb callback, void *data)
{
    int fd = -1;
    size_t fd_size = sizeof(fd);
    if (zmq_getsockopt(socket, ZMQ_FD, &fd, &fd_size) != 0)
        return NULL;
    zmq_watch *watch = calloc(1, sizeof(*watch));
    /* h2o closes the descriptor it is given, and ZMQ_FD belongs to ZeroMQ. */
    int copy = watch ? dup(fd) : -1;
    if (copy < 0) {
        free(watch);
        errno = watch ? errno : ENOMEM;
        return NULL;
    }
    watch->loop = loop;
    watch->callback = callback;
    watch->data = data;
    watch->poke.cb = on_poke;
    h2o_timeout_init(loop, &watch->next_turn, 0);
    watch->notifier = h2o_evloop_socket_create(loop, copy, H2O_SOCKET_FLAG_DONT_READ);
    watch->notifier->data = watch;
    h2o_socket_read_start(watch->notifier, on_notified);
    return watch;
}

void zmq_watch_destroy(zmq_watch **target)
{
    zmq_watch *watch = *target;
    if (!watch)
        return;
    if (h2o_timeout_is_linked(&watch->poke))
        h2o_timeout_unlink(&watch->poke);
    h2o_timeout_dispose(watch->loop, &watch->next_turn);
    h2o_socket_read_stop(watch->notifier);
    h2o_socket_close(watch->notifier);
    free(watch);
    *target = NULL;
}

void zmq_watch_poke(zmq_watch *watch)
{
    if (!h2o_timeout_is_linked(&watch->poke))
        h2o_timeout_link(watch->loop, &watch->next_turn, &watch->poke);
}

bool zmq_watch_readable(void *socket)
{
    int events = 0;
    size_t size = sizeof(events);
    return zmq_getsockopt(socket, ZMQ_EVENTS, &events, &size) == 0 && (events & ZMQ_POLLIN);
}
