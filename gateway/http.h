/* The widget's HTTP API: authentication, validation, and the mapping of
 * each route to a store operation and of its reply to the HTTP contract. */
#ifndef GATEWAY_HTTP_H
#define GATEWAY_HTTP_H

#include "key_cache.h"
#include "store_client.h"

#include <stdbool.h>

typedef struct {
    store_client *store;
    key_cache *keys;
    size_t max_body_bytes;
    const char *cors_origins; /* "*" or a comma-separated list of origins */
    bool access_log;
    size_t exchanges; /* requests being handled: waiting for the store or not */
} gateway;

/* Installs the API handler on `pathconf` (mounted at "/"). */
void http_register(h2o_pathconf_t *pathconf, gateway *gw);

/* Returns the reason phrase of a status code. */
const char *http_reason(int status);

/* Encodes {"error": message} as JSON into a buffer from `pool`. */
h2o_iovec_t http_error_json(h2o_mem_pool_t *pool, const char *message);

#endif
