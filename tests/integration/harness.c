/* Integration-test harness: a real helvino-store process and ZeroMQ
 * clients for it. */
#include "harness.h"
#include "hv_event.h"
#include "hv_msgpack.h"
#include "hv_time.h"
#include "hv_zmq.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define CALL_TIMEOUT_MS 10000

static uint64_t next_request_id = 1;

static const char *required_env(const char *name)
{
    const char *value = getenv(name);
    if (!value || !*value)
        cr_assert_fail("%s is not set; run the integration tests through meson test", name);
    return value;
}

static void spawn_store(store_fixture *store, const char *const *extra_env)
{
    const char *binary = required_env("HELVINO_STORE_BIN");

    store->pid = fork();
    cr_assert_neq(store->pid, -1, "fork failed: %s", strerror(errno));
    if (store->pid != 0)
        return;

    /* A test that crashes or times out must not leave its store running. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);

    setenv("HELVINO_STORE_ENDPOINT", store->store_endpoint, 1);
    setenv("HELVINO_EVENTS_ENDPOINT", store->events_endpoint, 1);
    setenv("HELVINO_LOG_LEVEL", "debug", 1);
    for (const char *const *entry = extra_env; entry && *entry; entry++)
        putenv((char *)*entry);

    int log = open(store->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (log >= 0) {
        dup2(log, STDERR_FILENO);
        close(log);
    }
    execl(binary, binary, (char *)NULL);
    _exit(127);
}

void store_launch(store_fixture *store, const char *const *extra_env)
{
    memset(store, 0, sizeof(*store));
    /* Inside the throwaway cluster's folder, which tests/with-postgres
     * deletes at the end, so no test leaves files behind. */
    const char *base = getenv("HELVINO_TEST_PGDIR");
    snprintf(store->dir, sizeof(store->dir), "%s/store.XXXXXX", base && *base ? base : "/tmp");
    cr_assert_not_null(mkdtemp(store->dir), "mkdtemp failed: %s", strerror(errno));
    snprintf(store->store_endpoint, sizeof(store->store_endpoint), "ipc://%s/store", store->dir);
    snprintf(store->events_endpoint, sizeof(store->events_endpoint), "ipc://%s/events", store->dir);
    snprintf(store->log_path, sizeof(store->log_path), "%s/store.log", store->dir);

    spawn_store(store, extra_env);

    store->context = zmq_ctx_new();
    store->dealer = hv_store_connect(store->context, store->store_endpoint);
    cr_assert_not_null(store->dealer);
}

void store_wait_ready(store_fixture *store)
{
    /* Ready means serving: poll `health` until it returns 200. The probes use
     * their own socket, closed afterwards, so that a reply that comes after
     * its probe gave up never reaches the test's socket. */
    void *probe = hv_store_connect(store->context, store->store_endpoint);
    cr_assert_not_null(probe);
    int64_t deadline = hv_time_monotonic_ms() + 30000;
    while (hv_time_monotonic_ms() < deadline) {
        int exit_status;
        cr_assert_eq(waitpid(store->pid, &exit_status, WNOHANG), 0, "helvino-store exited during start; see %s",
                     store->log_path);

        msgpack_sbuffer request;
        msgpack_sbuffer_init(&request);
        msgpack_packer packer;
        msgpack_packer_init(&packer, &request, msgpack_sbuffer_write);
        uint64_t id = next_request_id++;
        hv_request_pack_begin(&packer, id, "health", NULL, NULL);
        msgpack_pack_map(&packer, 0);

        hv_call_result result;
        int called = hv_store_call(probe, &request, id, 200, &result);
        msgpack_sbuffer_destroy(&request);
        if (called == 0) {
            int status = result.reply.status;
            hv_call_result_destroy(&result);
            if (status == 200) {
                zmq_close(probe);
                return;
            }
        }
    }
    zmq_close(probe);
    cr_assert_fail("helvino-store did not become ready within 30 s; see %s", store->log_path);
}

void store_start(store_fixture *store, const char *const *extra_env)
{
    store_launch(store, extra_env);
    store_wait_ready(store);
}

bool store_wait_for_log(const store_fixture *store, const char *text, int timeout_ms)
{
    int64_t deadline = hv_time_monotonic_ms() + timeout_ms;
    while (store_log_count(store, text) == 0) {
        if (hv_time_monotonic_ms() >= deadline)
            return false;
        struct timespec pause = {.tv_nsec = 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    return true;
}

int store_stop(store_fixture *store)
{
    if (store->dealer)
        zmq_close(store->dealer);
    if (store->context)
        zmq_ctx_term(store->context);
    store->dealer = store->context = NULL;
    if (store->pid <= 0)
        return -1;

    kill(store->pid, SIGTERM);
    int64_t deadline = hv_time_monotonic_ms() + 15000;
    int exit_status = 0;
    while (hv_time_monotonic_ms() < deadline) {
        pid_t done = waitpid(store->pid, &exit_status, WNOHANG);
        if (done == store->pid) {
            store->pid = 0;
            return WIFEXITED(exit_status) ? WEXITSTATUS(exit_status) : 128 + WTERMSIG(exit_status);
        }
        struct timespec pause = {.tv_nsec = 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    kill(store->pid, SIGKILL);
    waitpid(store->pid, &exit_status, 0);
    store->pid = 0;
    return -1;
}

void store_expect_clean_stop(store_fixture *store)
{
    if (store->pid <= 0) {
        store_stop(store);
        return;
    }
    int status = store_stop(store);
    cr_expect_eq(status, 0, "helvino-store exited with status %d on SIGTERM, not 0; see %s", status, store->log_path);
}

int store_log_count(const store_fixture *store, const char *text)
{
    return file_count_lines(store->log_path, text);
}

int file_count_lines(const char *path, const char *text)
{
    FILE *log = fopen(path, "r");
    if (!log)
        return 0;
    int count = 0;
    char line[8192];
    while (fgets(line, sizeof(line), log))
        if (strstr(line, text))
            count++;
    fclose(log);
    return count;
}

void store_call_packed(store_fixture *store, hv_call_result *out, const char *op, const char *org, const msgpack_sbuffer *args)
{
    msgpack_sbuffer request;
    msgpack_sbuffer_init(&request);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &request, msgpack_sbuffer_write);
    uint64_t id = next_request_id++;
    hv_request_pack_begin(&packer, id, op, org, "test");
    msgpack_sbuffer_write(&request, args->data, args->size);

    int called = hv_store_call(store->dealer, &request, id, CALL_TIMEOUT_MS, out);
    msgpack_sbuffer_destroy(&request);
    cr_assert_eq(called, 0, "no reply to %s: %s", op, strerror(errno));

    /* Error replies are common in these tests; show their message in the
     * log, which helps when a test did not expect one. */
    if (out->reply.status >= 300) {
        const char *message = "";
        size_t len = 0;
        hv_mp_map_get_str(out->reply.body, "error", &message, &len);
        cr_log_info("%s returned %d: %.*s", op, out->reply.status, (int)len, message);
    }
}

void store_call(store_fixture *store, hv_call_result *out, const char *op, const char *org, ...)
{
    const char *pairs[32];
    int count = 0;
    va_list list;
    va_start(list, org);
    for (const char *item = va_arg(list, const char *); item && count < 32; item = va_arg(list, const char *))
        pairs[count++] = item;
    va_end(list);
    cr_assert_eq(count % 2, 0, "store_call takes key, value pairs");

    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &args, msgpack_sbuffer_write);
    msgpack_pack_map(&packer, (size_t)count / 2);
    for (int i = 0; i < count; i += 2)
        hv_mp_pack_entry_str(&packer, pairs[i], pairs[i + 1]);

    store_call_packed(store, out, op, org, &args);
    msgpack_sbuffer_destroy(&args);
}

void body_string(const msgpack_object *map, const char *key, char *out, size_t out_size)
{
    const char *text;
    size_t len;
    cr_assert(hv_mp_map_get_str(map, key, &text, &len), "the reply has no string \"%s\"", key);
    cr_assert_lt(len, out_size, "\"%s\" is longer than expected", key);
    memcpy(out, text, len);
    out[len] = '\0';
}

long long body_int(const msgpack_object *map, const char *key)
{
    const msgpack_object *value = hv_mp_map_get(map, key);
    cr_assert_not_null(value, "the reply has no \"%s\"", key);
    cr_assert(value->type == MSGPACK_OBJECT_POSITIVE_INTEGER || value->type == MSGPACK_OBJECT_NEGATIVE_INTEGER,
              "\"%s\" is not an integer", key);
    return value->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (long long)value->via.u64 : (long long)value->via.i64;
}

void create_unique_org(store_fixture *store, const char *label, char *org_out, size_t size)
{
    char key[96];
    snprintf(org_out, size, "%s_%d_%lld", label, (int)getpid(), (long long)hv_time_monotonic_ms() % 1000000);
    snprintf(key, sizeof(key), "key-%s", org_out);

    hv_call_result result;
    store_call(store, &result, "org.create", NULL, "id", org_out, "key", key, "name", label, NULL);
    cr_assert_eq(result.reply.status, 201, "org.create %s returned %d", org_out, result.reply.status);
    hv_call_result_destroy(&result);
}

void create_conversation(store_fixture *store, const char *org, char id_out[37])
{
    hv_call_result result;
    store_call(store, &result, "conversation.create", org, NULL);
    cr_assert_eq(result.reply.status, 201, "conversation.create returned %d", result.reply.status);
    body_string(result.reply.body, "id", id_out, 37);
    hv_call_result_destroy(&result);
}

bool listener_next(event_listener *listener, int timeout_ms, received_event *out)
{
    zmq_msg_t parts[HV_ZMQ_MAX_PARTS];
    int count;
    int64_t deadline = hv_time_monotonic_ms() + timeout_ms;
    for (;;) {
        zmq_pollitem_t item = {.socket = listener->socket, .events = ZMQ_POLLIN};
        int64_t left = deadline - hv_time_monotonic_ms();
        if (left < 0 || zmq_poll(&item, 1, (long)left) <= 0)
            return false;
        cr_assert_eq(hv_zmq_recv_parts(listener->socket, parts, &count, 0), 0);
        cr_assert_eq(count, 2, "an event has a topic frame and a body frame");
        if (zmq_msg_size(&parts[1]) > 0)
            break;
        /* The store's echo of a subscription, not an event. */
        hv_zmq_close_parts(parts, count);
    }

    size_t topic_len = zmq_msg_size(&parts[0]);
    cr_assert_lt(topic_len, sizeof(out->topic));
    memcpy(out->topic, zmq_msg_data(&parts[0]), topic_len);
    out->topic[topic_len] = '\0';

    zmq_msg_init(&out->body);
    zmq_msg_move(&out->body, &parts[1]);
    msgpack_unpacked_init(&out->storage);
    hv_event event;
    const char *error = NULL;
    cr_assert_eq(hv_event_decode(zmq_msg_data(&out->body), zmq_msg_size(&out->body), &out->storage, &event, &error), 0,
                 "undecodable event: %s", error);
    snprintf(out->event, sizeof(out->event), "%.*s", (int)event.event_len, event.event);
    snprintf(out->org, sizeof(out->org), "%.*s", (int)event.org_len, event.org);
    out->data = *event.data;
    hv_zmq_close_parts(parts, count);
    return true;
}

void received_event_destroy(received_event *event)
{
    msgpack_unpacked_destroy(&event->storage);
    zmq_msg_close(&event->body);
}

void listener_open(event_listener *listener, store_fixture *store, const char *org)
{
    char prefix[HV_TOPIC_SIZE];
    cr_assert_gt(hv_topic_prefix(prefix, sizeof(prefix), org, strlen(org)), 0);

    listener->socket = hv_zmq_socket(store->context, ZMQ_SUB, 0);
    cr_assert_not_null(listener->socket);
    cr_assert_eq(zmq_setsockopt(listener->socket, ZMQ_SUBSCRIBE, prefix, strlen(prefix)), 0);
    cr_assert_eq(zmq_connect(listener->socket, store->events_endpoint), 0);

    /* The store echoes each subscription once it applies it (an empty body
     * on the bare prefix): from then on no event of the org is missed. */
    zmq_pollitem_t item = {.socket = listener->socket, .events = ZMQ_POLLIN};
    int64_t deadline = hv_time_monotonic_ms() + 10000;
    for (int64_t left; (left = deadline - hv_time_monotonic_ms()) > 0 && zmq_poll(&item, 1, (long)left) > 0;) {
        zmq_msg_t parts[HV_ZMQ_MAX_PARTS];
        int count;
        cr_assert_eq(hv_zmq_recv_parts(listener->socket, parts, &count, 0), 0);
        bool echo = count == 2 && zmq_msg_size(&parts[1]) == 0 && zmq_msg_size(&parts[0]) == strlen(prefix) &&
                    memcmp(zmq_msg_data(&parts[0]), prefix, strlen(prefix)) == 0;
        hv_zmq_close_parts(parts, count);
        if (echo)
            return;
    }
    cr_assert_fail("the store did not echo the subscription to %s within 10 s", prefix);
}

void listener_close(event_listener *listener)
{
    if (listener->socket)
        zmq_close(listener->socket);
    listener->socket = NULL;
}
