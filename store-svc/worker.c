/* The pool of worker threads. Jobs travel between the broker and a worker as
 * a pointer in a one-frame message on an inproc PAIR socket, so the job's
 * ownership moves with the message and no frame is copied. */
#include "worker.h"
#include "db.h"
#include "hv_log.h"
#include "hv_time.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    pthread_t thread;
    bool started;
    void *broker_socket; /* the broker's end, used only by the broker thread */
    void *worker_socket; /* the worker's end, used only by the worker thread */
    db_session *db;
    size_t max_request_bytes;
    bool busy;
} worker;

struct worker_pool {
    worker *workers;
    int count;
    int busy;
};

job *job_new(zmq_msg_t *parts, int part_count)
{
    job *created = calloc(1, sizeof(*created));
    if (!created)
        return NULL;
    for (int i = 0; i < part_count; i++) {
        zmq_msg_init(&created->parts[i]);
        zmq_msg_move(&created->parts[i], &parts[i]);
    }
    created->part_count = part_count;
    created->received_ns = hv_time_monotonic_ns();
    ops_result_init(&created->result);
    return created;
}

void job_destroy(job **target)
{
    if (!*target)
        return;
    hv_zmq_close_parts((*target)->parts, (*target)->part_count);
    ops_result_destroy(&(*target)->result);
    free(*target);
    *target = NULL;
}

static void *worker_main(void *argument)
{
    worker *self = argument;

    for (;;) {
        job *current = NULL;
        int received = zmq_recv(self->worker_socket, &current, sizeof(current), 0);
        if (received < 0 && errno == EINTR)
            continue;
        /* A NULL job is the broker's request to stop. */
        if (received != (int)sizeof(current) || !current)
            break;

        zmq_msg_t *payload = &current->parts[current->part_count - 1];
        ops_execute(self->db, zmq_msg_data(payload), zmq_msg_size(payload), self->max_request_bytes, &current->result);

        while (zmq_send(self->worker_socket, &current, sizeof(current), 0) < 0 && errno == EINTR)
            ;
    }
    return NULL;
}

static int start_worker(worker *self, void *context, int index, const char *conninfo)
{
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "inproc://store-worker-%d", index);

    self->broker_socket = hv_zmq_socket(context, ZMQ_PAIR, 0);
    self->worker_socket = hv_zmq_socket(context, ZMQ_PAIR, 0);
    self->db = db_session_new(conninfo);
    if (!self->broker_socket || !self->worker_socket || !self->db)
        return -1;
    if (zmq_bind(self->broker_socket, endpoint) != 0 || zmq_connect(self->worker_socket, endpoint) != 0)
        return -1;
    if (pthread_create(&self->thread, NULL, worker_main, self) != 0)
        return -1;
    self->started = true;
    return 0;
}

worker_pool *worker_pool_new(void *context, int count, const char *conninfo, size_t max_request_bytes)
{
    worker_pool *pool = calloc(1, sizeof(*pool));
    if (!pool)
        return NULL;
    pool->workers = calloc((size_t)count, sizeof(worker));
    if (!pool->workers) {
        free(pool);
        return NULL;
    }
    pool->count = count;

    for (int i = 0; i < count; i++) {
        pool->workers[i].max_request_bytes = max_request_bytes;
        if (start_worker(&pool->workers[i], context, i, conninfo) != 0) {
            HV_ERROR("starting a worker failed", HV_INT("worker", i), HV_STR("err", strerror(errno)));
            worker_pool_destroy(&pool);
            return NULL;
        }
    }
    return pool;
}

void worker_pool_destroy(worker_pool **target)
{
    worker_pool *pool = *target;
    if (!pool)
        return;

    for (int i = 0; i < pool->count; i++) {
        worker *self = &pool->workers[i];
        if (self->started) {
            job *stop = NULL;
            while (zmq_send(self->broker_socket, &stop, sizeof(stop), 0) < 0 && errno == EINTR)
                ;
            pthread_join(self->thread, NULL);
        }
        if (self->worker_socket)
            zmq_close(self->worker_socket);
        if (self->broker_socket)
            zmq_close(self->broker_socket);
        db_session_destroy(&self->db);
    }
    free(pool->workers);
    free(pool);
    *target = NULL;
}

int worker_pool_size(const worker_pool *pool)
{
    return pool->count;
}

void *worker_pool_socket(worker_pool *pool, int index)
{
    return pool->workers[index].broker_socket;
}

int worker_pool_busy(const worker_pool *pool)
{
    return pool->busy;
}

bool worker_pool_submit(worker_pool *pool, job *work)
{
    for (int i = 0; i < pool->count; i++) {
        worker *self = &pool->workers[i];
        if (self->busy)
            continue;
        if (zmq_send(self->broker_socket, &work, sizeof(work), ZMQ_DONTWAIT) != (int)sizeof(work))
            continue;
        self->busy = true;
        pool->busy++;
        return true;
    }
    return false;
}

job *worker_pool_collect(worker_pool *pool, int index)
{
    worker *self = &pool->workers[index];
    job *finished = NULL;
    if (zmq_recv(self->broker_socket, &finished, sizeof(finished), ZMQ_DONTWAIT) != (int)sizeof(finished))
        return NULL;
    self->busy = false;
    pool->busy--;
    return finished;
}
