/* helvino-gateway as a child process of a test, and a store restart on the
 * same endpoints for tests that take the store away from a running
 * gateway. */
#include "gateway_fixture.h"
#include "http_client.h"
#include "hv_store_call.h"
#include "hv_time.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>

#define POLL_INTERVAL_NS (10 * 1000 * 1000)

/* Readiness takes a "gateway ready" line and a 200 to this probe. */
static bool root_returns_200(const service_fixture *gateway)
{
    char url[96];
    snprintf(url, sizeof(url), "%s/", gateway->url);
    http_response response;
    http_send(&(http_request){.url = url, .timeout_ms = 2000}, &response);
    bool serving = response.completed && response.status == 200;
    http_response_release(&response);
    return serving;
}

static const service_kind gateway_kind = {
    .name = "helvino-gateway",
    .binary_variable = "HELVINO_GATEWAY_BIN",
    .listen_variable = "HELVINO_HTTP_LISTEN",
    .log_name = "gateway",
    .ready_log = "gateway ready",
    /* The line main.c logs when binding the HTTP port failed. */
    .port_taken_log = "Address already in use",
    .probe_name = "GET /",
    .probe = root_returns_200,
};

void gateway_start(service_fixture *gateway, const store_fixture *store, const char *const *extra_env)
{
    char store_variable[256];
    snprintf(store_variable, sizeof(store_variable), "HELVINO_STORE_ENDPOINT=%s", store->store_endpoint);
    const char *variables[] = {store_variable, "HELVINO_LOG_LEVEL=debug", NULL};
    service_start(gateway, &gateway_kind, store->dir, variables, extra_env);
}

void gateway_wait_for_store(const service_fixture *gateway, int timeout_ms)
{
    char url[96];
    snprintf(url, sizeof(url), "%s/health", gateway->url);
    int64_t deadline = hv_time_monotonic_ms() + timeout_ms;
    for (;;) {
        http_response health;
        http_send(&(http_request){.url = url, .timeout_ms = timeout_ms}, &health);
        long status = health.status;
        http_response_release(&health);
        if (status == 200)
            return;
        cr_assert_lt(hv_time_monotonic_ms(), deadline, "helvino-gateway did not reach the store within %d ms; see %s", timeout_ms,
                     gateway->log_path);
        struct timespec pause = {.tv_nsec = POLL_INTERVAL_NS};
        nanosleep(&pause, NULL);
    }
}

void store_restart(store_fixture *store, const char *const *extra_env)
{
    cr_assert_eq(store->pid, 0, "store_restart needs a store that store_stop has stopped");

    char store_variable[256];
    char events_variable[256];
    snprintf(store_variable, sizeof(store_variable), "HELVINO_STORE_ENDPOINT=%s", store->store_endpoint);
    snprintf(events_variable, sizeof(events_variable), "HELVINO_EVENTS_ENDPOINT=%s", store->events_endpoint);
    const char *variables[] = {store_variable, events_variable, "HELVINO_LOG_LEVEL=debug", NULL};
    store->pid = service_spawn(service_binary_path("HELVINO_STORE_BIN"), store->log_path, variables, extra_env, SIGTERM);

    /* store_stop closed the test's own connection; store_wait_ready and
     * store_call need a new one. */
    store->context = zmq_ctx_new();
    store->dealer = hv_store_connect(store->context, store->store_endpoint);
    cr_assert_not_null(store->dealer);
    store_wait_ready(store);
}
