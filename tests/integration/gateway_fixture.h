/* helvino-gateway as a child process of a test: it serves HTTP on a free
 * loopback port and calls the store of a store_fixture. */
#ifndef TEST_GATEWAY_FIXTURE_H
#define TEST_GATEWAY_FIXTURE_H

#include "harness.h"
#include "service_fixture.h"

/* Starts helvino-gateway (the binary in HELVINO_GATEWAY_BIN) against
 * `store`, with extra environment entries ("NAME=value", NULL-terminated,
 * or NULL for none), as service_start does. The gateway serves once it has
 * logged "gateway ready" and `GET /` returns 200. The log is in the store's
 * folder. Uses libcurl, so the caller has called curl_global_init. Stop it
 * with service_stop. */
void gateway_start(service_fixture *gateway, const store_fixture *store, const char *const *extra_env);

/* Waits until `GET /health` returns 200, which shows that the gateway's
 * ZeroMQ connection to the store is up: helvino-gateway serves HTTP before
 * that, and until then a request that needs the store gets 503 at once.
 * Aborts the test when it does not happen within `timeout_ms`. */
void gateway_wait_for_store(const service_fixture *gateway, int timeout_ms);

/* Starts helvino-store again on the endpoints and the log file of `store`,
 * which store_stop has stopped, so that clients still connected to those
 * endpoints reach the new process. Then waits until it is ready, as
 * store_start does. The new process gets `extra_env` (NULL for none). */
void store_restart(store_fixture *store, const char *const *extra_env);

#endif
