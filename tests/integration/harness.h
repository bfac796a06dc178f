/* Integration-test harness: starts a real helvino-store against the
 * throwaway PostgreSQL that tests/with-postgres provides, and talks to it
 * over ZeroMQ as the other services do. */
#ifndef TEST_HARNESS_H
#define TEST_HARNESS_H

#include "hv_envelope.h"
#include "hv_store_call.h"

#include <stdbool.h>
#include <zmq.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;
    char dir[128];             /* temporary folder for the sockets and the log */
    char store_endpoint[192];  /* ipc:// endpoints inside dir */
    char events_endpoint[192];
    char log_path[192];
    void *context;
    void *dealer;
} store_fixture;

/* Starts helvino-store with extra environment entries ("NAME=value",
 * NULL-terminated; NULL for none) without waiting for it. */
void store_launch(store_fixture *store, const char *const *extra_env);

/* Waits until the store replies 200 to `health`; aborts the test when it
 * does not within 30 s or exits. */
void store_wait_ready(store_fixture *store);

/* store_launch, then store_wait_ready. */
void store_start(store_fixture *store, const char *const *extra_env);

/* Waits up to `timeout_ms` until the store's log has a line containing
 * `text`. Returns whether it did. */
bool store_wait_for_log(const store_fixture *store, const char *text, int timeout_ms);

/* Sends SIGTERM and waits for the exit; returns the exit status, or -1
 * when it did not exit within 15 s (it is then killed). */
int store_stop(store_fixture *store);

/* Stops a store that is still running, as store_stop does, and fails the
 * test without ending it (cr_expect) unless it exits 0. For a store that
 * has exited already, only closes the test's connection. For a suite's
 * fini. */
void store_expect_clean_stop(store_fixture *store);

/* Returns the number of lines of the store's log that contain `text`. */
int store_log_count(const store_fixture *store, const char *text);

/* Returns the number of lines of the file at `path` that contain `text`;
 * 0 when the file cannot be read. */
int file_count_lines(const char *path, const char *text);

/* Calls `op` with string arguments given as key, value pairs ending with
 * NULL. `org` may be NULL. Aborts the test when no reply comes within 10 s.
 * The caller destroys the result. */
void store_call(store_fixture *store, hv_call_result *out, const char *op, const char *org, ...);

/* Same, with a pre-packed arguments map. */
void store_call_packed(store_fixture *store, hv_call_result *out, const char *op, const char *org, const msgpack_sbuffer *args);

/* Reads a string field of a reply body (or of any map) into `out`; aborts
 * the test when it is missing. */
void body_string(const msgpack_object *map, const char *key, char *out, size_t out_size);

/* Reads an integer field; aborts when missing. */
long long body_int(const msgpack_object *map, const char *key);

/* Creates an org with a unique id and key based on `label` and returns
 * the id in `org_out`. */
void create_unique_org(store_fixture *store, const char *label, char *org_out, size_t size);

/* Creates a conversation in `org` and returns its id. */
void create_conversation(store_fixture *store, const char *org, char id_out[37]);

/* A SUB socket on the store's events, filtered to one org's prefix. */
typedef struct {
    void *socket;
} event_listener;

/* Subscribes to `org`'s events and waits until the subscription is live.
 * The store signals that by echoing the subscription, and every event
 * published after the echo arrives. */
void listener_open(event_listener *listener, store_fixture *store, const char *org);

void listener_close(event_listener *listener);

/* Waits up to `timeout_ms` for the next event. Returns true and fills
 * `out` when one came; the caller then calls received_event_destroy. */
typedef struct {
    char topic[160];
    zmq_msg_t body; /* the data's strings point into this frame */
    msgpack_unpacked storage;
    msgpack_object data;
    char event[64];
    char org[80];
} received_event;

bool listener_next(event_listener *listener, int timeout_ms, received_event *out);

/* Frees what listener_next filled in. */
void received_event_destroy(received_event *event);

#endif
