/* helvino-bench: a load generator for the store. It keeps a fixed number of
 * message.add requests in flight over DEALER sockets, each reply followed at
 * once by the next request, and reports throughput and exact latency
 * percentiles for a measured window that follows a warm-up. */
#include "latency.h"
#include "hv_config.h"
#include "hv_envelope.h"
#include "hv_msgpack.h"
#include "hv_store_call.h"
#include "hv_uuid.h"
#include "hv_zmq.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define EXIT_HAD_ERRORS 1 /* the run finished, but some requests failed */
#define EXIT_USAGE 2
#define EXIT_SETUP_FAILED 3 /* no socket, or the conversations could not be created */

/* A request id is (serial << CALLER_BITS) | caller index, so that a reply
 * finds its caller without a lookup, and the serial distinguishes a late
 * reply to an earlier request of the same caller. */
#define CALLER_BITS 20
#define CALLER_MASK ((UINT64_C(1) << CALLER_BITS) - 1)
#define MAX_CALLERS 100000

/* How often in-flight requests are checked against their deadline, so a
 * timeout is detected at most this long after its deadline. */
#define DEADLINE_CHECK_NS (1000 * 1000)

#define NS_PER_MS INT64_C(1000000)
#define STATUS_LIMIT 600 /* reply statuses are 100 to 599 */

static struct {
    const char *store_endpoint;
    const char *org;
    long callers;
    long sockets;
    long conversations;
    long content_bytes;
    long duration_ms;
    long warmup_ms;
    long timeout_ms;
} config;

static hv_setting settings[] = {
    {"store-endpoint", "HELVINO_STORE_ENDPOINT", HV_SETTING_STRING, "tcp://127.0.0.1:5555",
     "ZeroMQ endpoint of the store's request socket.", &config.store_endpoint, 0, 0, HV_SHOW_PLAIN},
    {"org", NULL, HV_SETTING_STRING, "org_1", "Org that owns the conversations. It must exist already.", &config.org, 0, 0,
     HV_SHOW_PLAIN},
    {"callers", NULL, HV_SETTING_INT, "1", "Requests kept in flight at once.", &config.callers, 1, MAX_CALLERS, HV_SHOW_PLAIN},
    {"sockets", NULL, HV_SETTING_INT, "1",
     "Number of DEALER sockets that the callers are spread over, round-robin. At most --callers.", &config.sockets, 1, 1024,
     HV_SHOW_PLAIN},
    {"conversations", NULL, HV_SETTING_INT, "0",
     "Conversations created at start, which the requests target round-robin. 0 means as many as --callers. With 1, "
     "every request waits for the same row lock in PostgreSQL.",
     &config.conversations, 0, 1000000, HV_SHOW_PLAIN},
    {"content-bytes", NULL, HV_SETTING_INT, "100", "Size of each message's content, in bytes.", &config.content_bytes, 1,
     16L * 1024 * 1024, HV_SHOW_PLAIN},
    {"duration-ms", NULL, HV_SETTING_INT, "10000", "Length of the measured window, in milliseconds.", &config.duration_ms, 1,
     3600000, HV_SHOW_PLAIN},
    {"warmup-ms", NULL, HV_SETTING_INT, "1000", "Load before the measured window that is not counted, in milliseconds.",
     &config.warmup_ms, 0, 3600000, HV_SHOW_PLAIN},
    {"timeout-ms", NULL, HV_SETTING_INT, "5000",
     "How long a request may wait for its reply before it counts as a timeout, in milliseconds. It also bounds the "
     "wait for replies still in flight when the window ends.",
     &config.timeout_ms, 1, 600000, HV_SHOW_PLAIN},
};

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

enum { PHASE_WARMUP, PHASE_MEASURED, PHASE_DRAIN, PHASE_COUNT };

static const char *const phase_names[PHASE_COUNT] = {"warm-up", "measured window", "drain"};

/* Outcomes of the requests that ended in one phase. */
typedef struct {
    uint64_t ok;                      /* 2xx replies */
    uint64_t by_status[STATUS_LIMIT]; /* other replies, by status */
    uint64_t timeouts;                /* requests without a reply before their deadline */
    uint64_t malformed;               /* replies to a request in flight that did not decode */
    uint64_t send_failures;           /* failed zmq_send calls, after which the caller stops */
} phase_counts;

typedef struct {
    uint64_t request_id; /* 0 when nothing is in flight */
    int64_t sent_ns;
    int64_t deadline_ns;
    int socket_index;
} caller;

typedef struct {
    void *context;
    void **sockets;
    zmq_pollitem_t *poll_items;
    caller *callers;
    char (*conversations)[HV_UUID_TEXT_SIZE];
    char *content;
    msgpack_sbuffer request;
    uint64_t next_serial;
    uint64_t next_conversation;
    long in_flight;
    bool out_of_memory;
    int64_t measure_start_ns;
    int64_t measure_end_ns;
    phase_counts phases[PHASE_COUNT];
    latency_list latencies; /* 2xx replies of the measured window */
    uint64_t unmatched;     /* replies whose id is not in flight: late after a timeout, or unreadable */
} bench;

static int64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static int phase_at(const bench *self, int64_t when_ns)
{
    if (when_ns < self->measure_start_ns)
        return PHASE_WARMUP;
    if (when_ns < self->measure_end_ns)
        return PHASE_MEASURED;
    return PHASE_DRAIN;
}

static uint64_t error_count(const phase_counts *counts)
{
    uint64_t total = counts->timeouts + counts->malformed + counts->send_failures;
    for (int status = 0; status < STATUS_LIMIT; status++)
        total += counts->by_status[status];
    return total;
}

/* Writes "503:12,500:1" for the non-2xx statuses seen, or "none". */
static void format_statuses(const phase_counts *counts, char *out, size_t out_size)
{
    size_t used = 0;
    out[0] = '\0';
    for (int status = 0; status < STATUS_LIMIT && used < out_size; status++) {
        if (counts->by_status[status] == 0)
            continue;
        int written = snprintf(out + used, out_size - used, "%s%d:%" PRIu64, used ? "," : "", status, counts->by_status[status]);
        if (written < 0)
            break;
        used += (size_t)written;
    }
    if (used == 0)
        snprintf(out, out_size, "none");
}

/* --- Latencies ---------------------------------------------------------- */

/* Writes the arithmetic mean in milliseconds, or "-" when no request
 * succeeded. pgbench reports this figure, so the two can be compared. */
static void format_mean(const latency_list *list, char *out, size_t out_size)
{
    if (list->count == 0) {
        snprintf(out, out_size, "-");
        return;
    }
    double sum_ns = 0;
    for (size_t i = 0; i < list->count; i++)
        sum_ns += (double)list->values_ns[i];
    snprintf(out, out_size, "%.3f", sum_ns / (double)list->count / 1e6);
}

/* --- Setup -------------------------------------------------------------- */

static void *open_dealer(void *context, const char *endpoint)
{
    void *dealer = hv_zmq_socket(context, ZMQ_DEALER, 0);
    if (!dealer)
        return NULL;

    /* No high-water mark: the number of callers already bounds what is
     * queued, and the default of 1000 would block a send on a busy socket. */
    int unlimited = 0;
    if (zmq_setsockopt(dealer, ZMQ_SNDHWM, &unlimited, sizeof(unlimited)) != 0 ||
        zmq_setsockopt(dealer, ZMQ_RCVHWM, &unlimited, sizeof(unlimited)) != 0 || zmq_connect(dealer, endpoint) != 0) {
        int saved = errno;
        zmq_close(dealer);
        errno = saved;
        return NULL;
    }
    return dealer;
}

static int open_sockets(bench *self)
{
    self->context = zmq_ctx_new();
    self->sockets = calloc((size_t)config.sockets, sizeof(*self->sockets));
    self->poll_items = calloc((size_t)config.sockets, sizeof(*self->poll_items));
    if (!self->context || !self->sockets || !self->poll_items) {
        fprintf(stderr, "helvino-bench: out of memory while opening %ld sockets\n", config.sockets);
        return -1;
    }
    for (long i = 0; i < config.sockets; i++) {
        self->sockets[i] = open_dealer(self->context, config.store_endpoint);
        if (!self->sockets[i]) {
            fprintf(stderr, "helvino-bench: invalid store endpoint \"%s\": %s\n", config.store_endpoint, zmq_strerror(errno));
            return -1;
        }
        self->poll_items[i] = (zmq_pollitem_t){.socket = self->sockets[i], .events = ZMQ_POLLIN};
    }
    return 0;
}

/* Prints why a setup call failed: the store's error message, or the
 * transport's error. */
static void print_call_failure(const char *failed_step, int call_status, const hv_call_result *result)
{
    if (call_status != 0 && errno == ETIMEDOUT) {
        fprintf(stderr, "helvino-bench: %s: the store did not reply within %ld ms at %s; is helvino-store running?\n", failed_step,
                config.timeout_ms, config.store_endpoint);
        return;
    }
    if (call_status != 0) {
        fprintf(stderr, "helvino-bench: %s: %s\n", failed_step, zmq_strerror(errno));
        return;
    }
    const char *message;
    size_t message_len;
    if (!hv_mp_map_get_str(result->reply.body, "error", &message, &message_len)) {
        message = "(no error message)";
        message_len = strlen(message);
    }
    fprintf(stderr, "helvino-bench: %s: the store returned %d: %.*s\n", failed_step, result->reply.status, (int)message_len,
            message);
}

/* Creates one conversation and copies its id into `id_out`. */
static int create_conversation(bench *self, uint64_t request_id, char id_out[HV_UUID_TEXT_SIZE])
{
    msgpack_sbuffer_clear(&self->request);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &self->request, msgpack_sbuffer_write);
    hv_request_pack_begin(&packer, request_id, "conversation.create", config.org, NULL);
    msgpack_pack_map(&packer, 0);

    hv_call_result result;
    int call_status = hv_store_call(self->sockets[0], &self->request, request_id, (int)config.timeout_ms, &result);
    if (call_status != 0 || result.reply.status != HV_STATUS_CREATED) {
        char failed_step[96];
        snprintf(failed_step, sizeof(failed_step), "creating a conversation in org \"%s\" failed", config.org);
        print_call_failure(failed_step, call_status, &result);
        if (call_status == 0)
            hv_call_result_destroy(&result);
        return -1;
    }

    /* The id points into the reply frame, so it is copied before the frame
     * is released. */
    const char *id;
    size_t id_len;
    bool valid = hv_mp_map_get_str(result.reply.body, "id", &id, &id_len) && hv_uuid_is_valid(id, id_len);
    if (valid) {
        memcpy(id_out, id, id_len);
        id_out[id_len] = '\0';
    } else {
        fprintf(stderr, "helvino-bench: the reply to conversation.create has no valid \"id\"\n");
    }
    hv_call_result_destroy(&result);
    return valid ? 0 : -1;
}

static int create_conversations(bench *self)
{
    self->conversations = calloc((size_t)config.conversations, sizeof(*self->conversations));
    if (!self->conversations) {
        fprintf(stderr, "helvino-bench: out of memory for %ld conversations\n", config.conversations);
        return -1;
    }
    for (long i = 0; i < config.conversations; i++) {
        if (create_conversation(self, self->next_serial++, self->conversations[i]) != 0)
            return -1;
    }
    return 0;
}

/* Fills the message content with printable text of the requested size. */
static int make_content(bench *self)
{
    static const char pattern[] = "helvino benchmark message ";
    self->content = malloc((size_t)config.content_bytes + 1);
    if (!self->content) {
        fprintf(stderr, "helvino-bench: out of memory for %ld bytes of content\n", config.content_bytes);
        return -1;
    }
    for (long i = 0; i < config.content_bytes; i++)
        self->content[i] = pattern[(size_t)i % (sizeof(pattern) - 1)];
    self->content[config.content_bytes] = '\0';
    return 0;
}

/* --- Load --------------------------------------------------------------- */

/* Sends the next message.add for caller `index`. */
static void send_next(bench *self, long index, int64_t now_ns)
{
    caller *sender = &self->callers[index];
    uint64_t request_id = (self->next_serial++ << CALLER_BITS) | (uint64_t)index;
    const char *conversation = self->conversations[self->next_conversation++ % (uint64_t)config.conversations];

    msgpack_sbuffer_clear(&self->request);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &self->request, msgpack_sbuffer_write);
    hv_request_pack_begin(&packer, request_id, "message.add", config.org, NULL);
    msgpack_pack_map(&packer, 3);
    hv_mp_pack_entry_str(&packer, "conversationId", conversation);
    hv_mp_pack_entry_str(&packer, "role", "user");
    hv_mp_pack_cstr(&packer, "content");
    hv_mp_pack_strn(&packer, self->content, (size_t)config.content_bytes);

    if (zmq_send(self->sockets[sender->socket_index], self->request.data, self->request.size, 0) < 0) {
        /* Retrying at once would spin on the same failure, so this caller
         * stops and the failure is counted and reported. */
        self->phases[phase_at(self, now_ns)].send_failures++;
        fprintf(stderr, "helvino-bench: sending a request failed; caller %ld stops: %s\n", index, zmq_strerror(errno));
        return;
    }
    sender->request_id = request_id;
    sender->sent_ns = now_ns;
    sender->deadline_ns = now_ns + config.timeout_ms * NS_PER_MS;
    self->in_flight++;
}

/* Ends the caller's request and sends the next one until the measured
 * window ends. */
static void finish_request(bench *self, long index, int64_t now_ns)
{
    self->callers[index].request_id = 0;
    self->in_flight--;
    if (now_ns < self->measure_end_ns && !self->out_of_memory)
        send_next(self, index, now_ns);
}

static void on_reply(bench *self, zmq_msg_t *frame, int64_t now_ns)
{
    msgpack_unpacked storage;
    msgpack_unpacked_init(&storage);
    hv_reply reply;
    const char *error;
    int decoded = hv_reply_decode(zmq_msg_data(frame), zmq_msg_size(frame), &storage, &reply, &error);
    msgpack_unpacked_destroy(&storage);

    /* hv_reply_decode sets the id whenever it could be read, so a reply that
     * is malformed past its id is still charged to its request. */
    uint64_t index = reply.id & CALLER_MASK;
    if (reply.id == 0 || index >= (uint64_t)config.callers || self->callers[index].request_id != reply.id) {
        self->unmatched++;
        return;
    }

    phase_counts *counts = &self->phases[phase_at(self, now_ns)];
    if (decoded != 0) {
        counts->malformed++;
    } else if (reply.status >= 200 && reply.status < 300) {
        counts->ok++;
        if (counts == &self->phases[PHASE_MEASURED] && !self->out_of_memory &&
            latency_append(&self->latencies, now_ns - self->callers[index].sent_ns) != 0) {
            fprintf(stderr, "helvino-bench: out of memory for %zu latencies; stopping\n", self->latencies.count + 1);
            self->out_of_memory = true;
        }
    } else {
        counts->by_status[reply.status]++;
    }
    finish_request(self, (long)index, now_ns);
}

/* Reads every reply waiting on one socket. */
static void receive_replies(bench *self, void *socket)
{
    for (;;) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            return;
        }
        int64_t now_ns = monotonic_ns();

        /* The store sends each reply as one frame, so any further frames
         * are read and discarded. */
        bool more = zmq_msg_more(&frame);
        while (more) {
            zmq_msg_t extra;
            zmq_msg_init(&extra);
            more = zmq_msg_recv(&extra, socket, 0) >= 0 && zmq_msg_more(&extra);
            zmq_msg_close(&extra);
        }
        on_reply(self, &frame, now_ns);
        zmq_msg_close(&frame);
    }
}

/* Counts every request past its deadline as a timeout and moves its caller
 * on. A reply that arrives later is counted as unmatched. */
static void expire_overdue(bench *self, int64_t now_ns)
{
    for (long i = 0; i < config.callers; i++) {
        caller *waiting = &self->callers[i];
        if (waiting->request_id == 0 || waiting->deadline_ns > now_ns)
            continue;
        self->phases[phase_at(self, waiting->deadline_ns)].timeouts++;
        finish_request(self, i, now_ns);
    }
}

/* Runs the warm-up and the measured window, then waits for the replies
 * still in flight. Every request has a deadline, so that wait ends at the
 * latest timeout-ms after the window. */
static int run_load(bench *self)
{
    self->callers = calloc((size_t)config.callers, sizeof(*self->callers));
    if (!self->callers) {
        fprintf(stderr, "helvino-bench: out of memory for %ld callers\n", config.callers);
        return -1;
    }

    int64_t start_ns = monotonic_ns();
    self->measure_start_ns = start_ns + config.warmup_ms * NS_PER_MS;
    self->measure_end_ns = self->measure_start_ns + config.duration_ms * NS_PER_MS;
    for (long i = 0; i < config.callers; i++) {
        self->callers[i].socket_index = (int)(i % config.sockets);
        send_next(self, i, monotonic_ns());
    }

    int64_t next_check_ns = start_ns + DEADLINE_CHECK_NS;
    for (;;) {
        int64_t now_ns = monotonic_ns();
        if (now_ns >= next_check_ns) {
            expire_overdue(self, now_ns);
            next_check_ns = now_ns + DEADLINE_CHECK_NS;
        }
        if (self->in_flight == 0)
            return self->out_of_memory ? -1 : 0;

        long wait_ms = (long)((next_check_ns - now_ns + NS_PER_MS - 1) / NS_PER_MS);
        if (zmq_poll(self->poll_items, (int)config.sockets, wait_ms > 0 ? wait_ms : 0) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "helvino-bench: polling the sockets failed: %s\n", zmq_strerror(errno));
            return -1;
        }
        for (long i = 0; i < config.sockets; i++) {
            if (self->poll_items[i].revents & ZMQ_POLLIN)
                receive_replies(self, self->sockets[i]);
        }
    }
}

/* --- Report ------------------------------------------------------------- */

static double cpu_seconds(void)
{
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0)
        return 0;
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 + (double)usage.ru_stime.tv_sec +
           (double)usage.ru_stime.tv_usec / 1e6;
}

/* Writes the percentile in milliseconds, or "-" when no request succeeded. */
static void format_percentile(const latency_list *sorted, unsigned percent, char *out, size_t out_size)
{
    if (sorted->count == 0)
        snprintf(out, out_size, "-");
    else
        snprintf(out, out_size, "%.3f", (double)latency_percentile_ns(sorted, percent) / 1e6);
}

/* Prints the result line on standard output and a summary on standard
 * error. Returns the exit status: EXIT_HAD_ERRORS when any request in any
 * phase failed. */
static int report(bench *self, double client_cpu_s)
{
    if (self->latencies.count > 0)
        latency_sort(&self->latencies);
    const latency_list *sorted = &self->latencies;
    const phase_counts *measured = &self->phases[PHASE_MEASURED];
    double ops_per_s = (double)measured->ok * 1000.0 / (double)config.duration_ms;
    char mean[32], p50[32], p90[32], p99[32], max[32];
    format_mean(sorted, mean, sizeof(mean));
    format_percentile(sorted, 50, p50, sizeof(p50));
    format_percentile(sorted, 90, p90, sizeof(p90));
    format_percentile(sorted, 99, p99, sizeof(p99));
    format_percentile(sorted, 100, max, sizeof(max));
    char statuses[512];
    format_statuses(measured, statuses, sizeof(statuses));

    printf("result op=message.add callers=%ld sockets=%ld conversations=%ld content_bytes=%ld warmup_ms=%ld "
           "duration_ms=%ld ops_per_s=%.1f completed=%" PRIu64 " errors=%" PRIu64 " errors_by_status=%s timeouts=%" PRIu64
           " malformed=%" PRIu64 " send_failures=%" PRIu64 " mean_ms=%s p50_ms=%s p90_ms=%s p99_ms=%s max_ms=%s "
           "warmup_errors=%" PRIu64 " drain_errors=%" PRIu64 " unmatched_replies=%" PRIu64 " client_cpu_s=%.2f\n",
           config.callers, config.sockets, config.conversations, config.content_bytes, config.warmup_ms, config.duration_ms,
           ops_per_s, measured->ok, error_count(measured), statuses, measured->timeouts, measured->malformed,
           measured->send_failures, mean, p50, p90, p99, max, error_count(&self->phases[PHASE_WARMUP]),
           error_count(&self->phases[PHASE_DRAIN]), self->unmatched, client_cpu_s);
    fflush(stdout);

    fprintf(stderr,
            "helvino-bench: message.add to %s, org %s: %ld callers on %ld socket(s), %ld conversation(s), %ld-byte content\n",
            config.store_endpoint, config.org, config.callers, config.sockets, config.conversations, config.content_bytes);
    fprintf(stderr, "  %.1f ops/s: %" PRIu64 " replies with 2xx in %ld ms, after %ld ms of warm-up\n", ops_per_s, measured->ok,
            config.duration_ms, config.warmup_ms);
    fprintf(stderr, "  latency of the 2xx replies in ms: mean %s, p50 %s, p90 %s, p99 %s, max %s\n", mean, p50, p90, p99, max);

    bool any_errors = false;
    for (int phase = 0; phase < PHASE_COUNT; phase++) {
        const phase_counts *counts = &self->phases[phase];
        uint64_t errors = error_count(counts);
        if (errors == 0)
            continue;
        any_errors = true;
        format_statuses(counts, statuses, sizeof(statuses));
        fprintf(stderr,
                "  errors in the %s: %" PRIu64 " (statuses %s; timeouts %" PRIu64 "; malformed replies %" PRIu64
                "; failed sends %" PRIu64 ")\n",
                phase_names[phase], errors, statuses, counts->timeouts, counts->malformed, counts->send_failures);
    }
    if (!any_errors)
        fprintf(stderr, "  no errors in the warm-up, the measured window or the drain\n");
    if (self->unmatched > 0)
        fprintf(stderr, "  %" PRIu64 " replies matched no request in flight (late after a timeout, or unreadable)\n",
                self->unmatched);
    fprintf(stderr, "  client CPU time: %.2f s\n", client_cpu_s);
    return any_errors ? EXIT_HAD_ERRORS : 0;
}

static void bench_destroy(bench *self)
{
    for (long i = 0; self->sockets && i < config.sockets; i++) {
        if (self->sockets[i])
            zmq_close(self->sockets[i]);
    }
    if (self->context)
        zmq_ctx_term(self->context);
    free(self->sockets);
    free(self->poll_items);
    free(self->callers);
    free(self->conversations);
    free(self->content);
    free(self->latencies.values_ns);
    msgpack_sbuffer_destroy(&self->request);
}

int main(int argc, char **argv)
{
    char error[256];
    int loaded = hv_config_load(settings, COUNT(settings), argc, argv, NULL, error, sizeof(error));
    if (loaded == HV_CONFIG_HELP) {
        hv_config_print_usage(settings, COUNT(settings), "helvino-bench", "[OPTIONS]");
        printf("\nPrints one line \"result key=value ...\" on standard output and a summary on standard error.\n"
               "Exit status: 0 no request failed, 1 some requests failed (the results are still printed),\n"
               "2 bad usage, 3 the setup failed (no store reply, or the conversations could not be created).\n");
        return 0;
    }
    if (loaded == HV_CONFIG_ERROR) {
        fprintf(stderr, "helvino-bench: %s\n", error);
        return EXIT_USAGE;
    }
    if (config.sockets > config.callers) {
        fprintf(stderr, "helvino-bench: invalid --sockets %ld: it must not exceed --callers (%ld)\n", config.sockets,
                config.callers);
        return EXIT_USAGE;
    }
    if (config.conversations == 0)
        config.conversations = config.callers;

    bench self = {.next_serial = 1};
    msgpack_sbuffer_init(&self.request);
    int status = EXIT_SETUP_FAILED;
    if (make_content(&self) != 0 || open_sockets(&self) != 0 || create_conversations(&self) != 0)
        goto cleanup;

    double cpu_before_s = cpu_seconds();
    if (run_load(&self) != 0)
        goto cleanup;
    status = report(&self, cpu_seconds() - cpu_before_s);

cleanup:
    bench_destroy(&self);
    return status;
}
