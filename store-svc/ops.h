/* The store's operations: decoding a request, running it against
 * PostgreSQL, and packing the reply and the event it publishes. */
#ifndef STORE_OPS_H
#define STORE_OPS_H

#include "db.h"
#include "hv_event.h"

#include <msgpack.h>
#include <stdint.h>

/* What one request produced. The reply is always set; the event only when
 * the operation committed a change that subscribers hear about. */
typedef struct {
    msgpack_sbuffer reply; /* a whole reply envelope */
    int status;
    uint64_t request_id;
    char op[32];                 /* for log lines; truncated */
    char trace[80];              /* the caller's request id, for log lines; truncated */
    char topic[HV_TOPIC_SIZE];   /* empty when there is no event */
    msgpack_sbuffer event;       /* the event body, when topic is set */
} ops_result;

void ops_result_init(ops_result *result);
void ops_result_destroy(ops_result *result);

/* Returns the name of the operation `name` (`len` bytes, not
 * NUL-terminated) as a static string, or NULL when the store has no such
 * operation. */
const char *ops_name(const char *name, size_t len);

/* Runs the request in `data` on `db` and fills `result`. A request larger
 * than `max_request_bytes` gets a 413 reply without being run. Never fails:
 * every problem becomes an error reply. */
void ops_execute(db_session *db, const char *data, size_t size, size_t max_request_bytes, ops_result *result);

#endif
