/* helvino-realtime as a child process of a test: it serves Socket.IO on a
 * free loopback port and uses the store of a store_fixture for keys and
 * events. */
#ifndef TEST_REALTIME_FIXTURE_H
#define TEST_REALTIME_FIXTURE_H

#include "harness.h"
#include "service_fixture.h"

/* Starts helvino-realtime (the binary in HELVINO_REALTIME_BIN) against the
 * request and event endpoints of `store`, as service_start does.
 * `extra_env` lists more environment entries ("NAME=value", NULL-terminated,
 * or NULL for none), which override the fixture's own. The service serves
 * once it has logged "realtime ready" and returns 200 to an Engine.IO
 * polling handshake. The log is in the store's folder. Uses libcurl, so the
 * caller has called curl_global_init. Stop it with service_stop. */
void realtime_start(service_fixture *realtime, const store_fixture *store, const char *const *extra_env);

#endif
