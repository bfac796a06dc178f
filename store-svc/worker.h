/* The pool of worker threads, each with its own PostgreSQL connection, that
 * run requests handed over by the broker loop in main.c. */
#ifndef STORE_WORKER_H
#define STORE_WORKER_H

#include "hv_zmq.h"
#include "ops.h"

#include <stdbool.h>
#include <stdint.h>

/* One request on its way through the store: the frames read from the ROUTER
 * socket (routing frames, then the payload last) and what running it
 * produced. */
typedef struct job {
    zmq_msg_t parts[HV_ZMQ_MAX_PARTS];
    int part_count;
    ops_result result;
    int64_t received_ns; /* hv_time_monotonic_ns when the broker read the request */
    struct job *next;    /* in the broker's queue of waiting jobs */
} job;

/* Takes ownership of `parts` (moved into the job). Returns NULL when out of
 * memory, leaving `parts` with the caller. */
job *job_new(zmq_msg_t *parts, int part_count);
void job_destroy(job **job);

typedef struct worker_pool worker_pool;

/* Starts `count` threads. Each connects to PostgreSQL lazily with
 * `conninfo`, which must outlive the pool. Returns NULL on failure. */
worker_pool *worker_pool_new(void *zmq_context, int count, const char *conninfo, size_t max_request_bytes);

/* Stops every thread after its current job and joins it. */
void worker_pool_destroy(worker_pool **pool);

int worker_pool_size(const worker_pool *pool);

/* The inproc socket of worker `index`: readable when it finished a job. */
void *worker_pool_socket(worker_pool *pool, int index);

/* Hands the job to an idle worker. Returns false, keeping the job with the
 * caller, when every worker is busy. */
bool worker_pool_submit(worker_pool *pool, job *job);

/* Takes back the finished job of worker `index`, which becomes idle.
 * Returns NULL when the socket had nothing to read. */
job *worker_pool_collect(worker_pool *pool, int index);

/* Number of jobs the workers are running now. */
int worker_pool_busy(const worker_pool *pool);

#endif
