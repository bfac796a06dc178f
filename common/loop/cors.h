/* Cross-origin rules shared by the two h2o services: which origin a
 * browser may read a response from, given the HELVINO_CORS_ORIGINS list. */
#ifndef HV_LOOP_CORS_H
#define HV_LOOP_CORS_H

#include <h2o.h>
#include <stdbool.h>

/* Returns the value of Access-Control-Allow-Origin for `req` under
 * `origins` ("*" or a comma-separated list of origins), with its length in
 * *len, or NULL when the request's origin is not allowed or it sent none.
 * The result is "*" or points into the request's headers. */
const char *cors_allowed_origin(const char *origins, h2o_req_t *req, size_t *len);

/* Adds Access-Control-Allow-Origin (and Vary: Origin when the header
 * depends on the origin) to the response of `req`, when its origin is
 * allowed. Returns whether it did. */
bool cors_add_headers(const char *origins, h2o_req_t *req);

#endif
