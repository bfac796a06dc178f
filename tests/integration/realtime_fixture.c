/* helvino-realtime as a child process of a test, started on a free loopback
 * port against a store_fixture's endpoints. */
#include "realtime_fixture.h"
#include "ws_client.h"

#include <stdio.h>

/* Returns whether an Engine.IO handshake gets 200 and an open packet. The
 * session it opens is closed again with a close packet. */
static bool handshake_succeeds(const service_fixture *realtime)
{
    polling_session session;
    char error[256];
    if (polling_open(&session, realtime->url, NULL, error, sizeof(error)) != 0)
        return false;
    http_response closed;
    polling_post(&session, "1", 1, &closed);
    http_response_release(&closed);
    return true;
}

static const service_kind realtime_kind = {
    .name = "helvino-realtime",
    .binary_variable = "HELVINO_REALTIME_BIN",
    .listen_variable = "HELVINO_REALTIME_LISTEN",
    .log_name = "realtime",
    .ready_log = "realtime ready",
    /* The strerror(EADDRINUSE) text that a failed bind puts in the
     * service's error line. */
    .port_taken_log = "Address already in use",
    .probe_name = "the polling handshake",
    .probe = handshake_succeeds,
};

void realtime_start(service_fixture *realtime, const store_fixture *store, const char *const *extra_env)
{
    char store_variable[256];
    char events_variable[256];
    snprintf(store_variable, sizeof(store_variable), "HELVINO_STORE_ENDPOINT=%s", store->store_endpoint);
    snprintf(events_variable, sizeof(events_variable), "HELVINO_EVENTS_ENDPOINT=%s", store->events_endpoint);
    const char *variables[] = {store_variable, events_variable, "HELVINO_LOG_LEVEL=debug", NULL};
    service_start(realtime, &realtime_kind, store->dir, variables, extra_env);
}
