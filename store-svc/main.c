/* helvino-store: the only process that touches PostgreSQL. It serves
 * requests on a ROUTER socket through a pool of worker threads and, after
 * each commit, publishes an event on a PUB socket.
 *
 * The main thread is a broker: it reads requests, hands each to an idle
 * worker (or queues it), sends back replies and publishes events. */
#include "db.h"
#include "hv_admin_http.h"
#include "hv_config.h"
#include "hv_envelope.h"
#include "hv_log.h"
#include "hv_notify.h"
#include "hv_service.h"
#include "hv_time.h"
#include "hv_version.h"
#include "metrics.h"
#include "migrate.h"
#include "worker.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

typedef struct {
    const char *store_endpoint;
    const char *events_endpoint;
    const char *database_url;
    long workers;
    long queue_limit;
    long max_request_bytes;
    long events_high_water_mark;
    long shutdown_timeout_ms;
    long statement_timeout_ms;
    bool seed_demo;
    const char *metrics_listen;
    const char *log_level;
} store_config;

static store_config config;

static hv_setting settings[] = {
    {"store-endpoint", "HELVINO_STORE_ENDPOINT", HV_SETTING_STRING, "tcp://127.0.0.1:5555",
     "ZeroMQ endpoint the ROUTER socket binds for requests.", &config.store_endpoint, 0, 0, HV_SHOW_PLAIN},
    {"events-endpoint", "HELVINO_EVENTS_ENDPOINT", HV_SETTING_STRING, "tcp://127.0.0.1:5556",
     "ZeroMQ endpoint the PUB socket binds for events.", &config.events_endpoint, 0, 0, HV_SHOW_PLAIN},
    {"database-url", "HELVINO_DATABASE_URL", HV_SETTING_STRING, "",
     "libpq connection string or URI; empty uses the PG* environment variables.", &config.database_url, 0, 0,
     HV_SHOW_CONNINFO},
    {"workers", "HELVINO_STORE_WORKERS", HV_SETTING_INT, "4",
     "Worker threads, each with its own PostgreSQL connection.", &config.workers, 1, 256, HV_SHOW_PLAIN},
    {"queue-limit", "HELVINO_STORE_QUEUE_LIMIT", HV_SETTING_INT, "10000",
     "Requests that may wait for a free worker; beyond it requests get 503.", &config.queue_limit, 0, 10000000,
     HV_SHOW_PLAIN},
    {"max-request-bytes", "HELVINO_STORE_MAX_REQUEST_BYTES", HV_SETTING_INT, "1048576",
     "Largest request accepted, in bytes; larger ones get 413.", &config.max_request_bytes, 1024, 64L * 1024 * 1024,
     HV_SHOW_PLAIN},
    {"events-hwm", "HELVINO_EVENTS_HWM", HV_SETTING_INT, "100000",
     "Events queued per subscriber before ZeroMQ drops new ones for it.", &config.events_high_water_mark, 1, 100000000,
     HV_SHOW_PLAIN},
    {"shutdown-timeout-ms", "HELVINO_STORE_SHUTDOWN_TIMEOUT_MS", HV_SETTING_INT, "10000",
     "On SIGTERM, how long to wait for requests in flight, in milliseconds.", &config.shutdown_timeout_ms, 0, 3600000,
     HV_SHOW_PLAIN},
    {"statement-timeout-ms", "HELVINO_STORE_STATEMENT_TIMEOUT_MS", HV_SETTING_INT, "30000",
     "Longest a request's SQL statement may run before PostgreSQL cancels it (503), in milliseconds; 0 means no limit.",
     &config.statement_timeout_ms, 0, 3600000, HV_SHOW_PLAIN},
    {"seed-demo", "HELVINO_SEED_DEMO", HV_SETTING_BOOL, "true",
     "Create the demo organization org_1 with key \"demo\" at start when missing.", &config.seed_demo, 0, 0,
     HV_SHOW_PLAIN},
    {"metrics-listen", "HELVINO_STORE_METRICS_LISTEN", HV_SETTING_STRING, "127.0.0.1:9101",
     "Loopback address (HOST:PORT) that serves GET /metrics in the Prometheus text format, or \"off\".", &config.metrics_listen, 0,
     0, HV_SHOW_PLAIN},
    {"log-level", "HELVINO_LOG_LEVEL", HV_SETTING_STRING, "info", "Least severe level logged: debug, info, warn or error.",
     &config.log_level, 0, 0, HV_SHOW_PLAIN},
};

#define SETTING_COUNT (sizeof(settings) / sizeof(settings[0]))

typedef struct {
    void *context;
    void *router;
    void *publisher;
    int signal_fd;
    hv_admin_http *admin; /* the metrics listener, NULL when off */
    worker_pool *pool;
    job *queue_head; /* requests waiting for a free worker, oldest first */
    job *queue_tail;
    long queued;
    bool stopping;
    int64_t stop_deadline_ms;
} store;

static bool signal_arrived(int signal_fd)
{
    struct signalfd_siginfo info;
    if (read(signal_fd, &info, sizeof(info)) != (ssize_t)sizeof(info))
        return false;
    HV_INFO("shutdown requested", HV_STR("signal", strsignal((int)info.ssi_signo)));
    return true;
}

static int migrate_and_seed(PGconn *conn)
{
    char error[512];
    int applied = migrate_apply(conn, error, sizeof(error));
    if (applied < 0) {
        HV_ERROR("database migration failed", HV_STR("err", error));
        return -1;
    }
    HV_INFO("database schema is current", HV_INT("migrations_applied", applied),
            HV_INT("schema_version", migrations[migration_count - 1].version));

    if (config.seed_demo && migrate_seed_demo(conn, error, sizeof(error)) != 0) {
        HV_ERROR("seeding the demo organization failed", HV_STR("err", error));
        return -1;
    }
    return 0;
}

/* Waits up to `wait_ms` for a signal, serving the metrics listener
 * meanwhile. Returns whether a signal arrived. */
static bool wait_for_signal(store *self, int wait_ms)
{
    int64_t deadline = hv_time_monotonic_ms() + wait_ms;
    for (int64_t left = wait_ms; left > 0; left = deadline - hv_time_monotonic_ms()) {
        struct pollfd waits[] = {{.fd = self->signal_fd, .events = POLLIN},
                                 {.fd = self->admin ? hv_admin_http_fd(self->admin) : -1, .events = POLLIN}};
        if (poll(waits, 2, (int)left) <= 0)
            continue;
        if ((waits[0].revents & POLLIN) && signal_arrived(self->signal_fd))
            return true;
        if (waits[1].revents & POLLIN)
            hv_admin_http_run(self->admin);
    }
    return false;
}

/* Connects, migrates and seeds, retrying with backoff while the database is
 * unreachable. Returns 0, 1 when a signal asked to stop, or -1 when a
 * migration failed. */
static int prepare_database(store *self)
{
    int backoff_ms = 200;
    char error[512];

    for (;;) {
        PGconn *conn = db_connect(config.database_url, NULL, error, sizeof(error));
        if (conn) {
            int status = migrate_and_seed(conn);
            PQfinish(conn);
            return status;
        }

        char first_line[256];
        snprintf(first_line, sizeof(first_line), "%.*s", (int)strcspn(error, "\n"), error);
        HV_WARN("waiting for the database", HV_INT("retry_in_ms", backoff_ms), HV_STR("err", first_line));
        if (wait_for_signal(self, backoff_ms)) {
            HV_INFO("stop requested while waiting for the database", HV_LOG_END);
            hv_notify_stopping("stopping before the database was reached");
            return 1;
        }
        backoff_ms = backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2;
    }
}

static int open_sockets(store *self)
{
    int max_message = (int)(config.max_request_bytes * 2 > 64L * 1024 * 1024 ? 64L * 1024 * 1024 : config.max_request_bytes * 2);
    int64_t hard_limit = max_message;
    int high_water_mark = (int)config.events_high_water_mark;

    self->context = zmq_ctx_new();
    /* Replies and events still queued at close get a second to leave. */
    self->router = hv_zmq_socket(self->context, ZMQ_ROUTER, 1000);
    self->publisher = hv_zmq_socket(self->context, ZMQ_XPUB, 1000);
    if (!self->router || !self->publisher)
        return -1;

    /* Above twice the configured maximum a peer is disconnected by ZeroMQ
     * itself; between the two the request is read and gets a 413 reply. */
    zmq_setsockopt(self->router, ZMQ_MAXMSGSIZE, &hard_limit, sizeof(hard_limit));
    zmq_setsockopt(self->publisher, ZMQ_SNDHWM, &high_water_mark, sizeof(high_water_mark));
    /* Every subscription is passed up, repeated ones included, so that each
     * subscriber gets its own echo (see echo_subscriptions). */
    int verbose = 1;
    zmq_setsockopt(self->publisher, ZMQ_XPUB_VERBOSE, &verbose, sizeof(verbose));

    if (zmq_bind(self->router, config.store_endpoint) != 0) {
        HV_ERROR("binding the request socket failed", HV_STR("endpoint", config.store_endpoint),
                 HV_STR("err", zmq_strerror(errno)));
        return -1;
    }
    if (zmq_bind(self->publisher, config.events_endpoint) != 0) {
        HV_ERROR("binding the event socket failed", HV_STR("endpoint", config.events_endpoint),
                 HV_STR("err", zmq_strerror(errno)));
        return -1;
    }
    return 0;
}

static void collect_metrics(void *data)
{
    const store *self = data;
    /* Before the pool exists the store is still waiting for the database. */
    if (!self->pool) {
        metrics_collect(0, 0, 0, false);
        return;
    }
    metrics_collect(self->queued, worker_pool_busy(self->pool), worker_pool_size(self->pool), true);
}

/* Opens the metrics listener unless the setting is "off". Returns 0, or -1
 * after logging why it failed. */
static int open_admin(store *self)
{
    char error[512];
    /* Without a listener nothing is counted: the metrics stay NULL. */
    if (strcmp(config.metrics_listen, HV_ADMIN_OFF) == 0) {
        HV_INFO("metrics listener off", HV_LOG_END);
        return 0;
    }
    if (metrics_init() != 0) {
        HV_ERROR("creating the metrics failed", HV_STR("err", "out of memory"));
        return -1;
    }

    char bound[HV_ADMIN_ADDRESS_SIZE];
    int fd = hv_admin_listen(config.metrics_listen, bound, error, sizeof(error));
    if (fd >= 0)
        self->admin = hv_admin_http_new(fd, metrics.registry, collect_metrics, self, error, sizeof(error));
    if (!self->admin) {
        HV_ERROR("opening the metrics listener failed", HV_STR("err", error));
        return fd == HV_ADMIN_INVALID_ADDRESS ? fd : -1;
    }
    HV_INFO("serving metrics", HV_STR("listen", bound), HV_STR("path", "/metrics"));
    return 0;
}

/* Replies to each new subscription with a message on exactly the subscribed
 * prefix and an empty body. The XPUB socket has applied the subscription
 * before passing it up, so every event published after the echo reaches
 * that subscriber. helvino-realtime waits for the echo before it sends a
 * CONNECT reply, so a client misses no event after the reply. */
static void echo_subscriptions(store *self)
{
    for (;;) {
        zmq_msg_t request;
        zmq_msg_init(&request);
        if (zmq_msg_recv(&request, self->publisher, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&request);
            return;
        }
        const char *data = zmq_msg_data(&request);
        size_t size = zmq_msg_size(&request);
        /* 1 then the prefix subscribes; 0 then the prefix unsubscribes. */
        if (size >= 1 && data[0] == 1 &&
            (zmq_send(self->publisher, data + 1, size - 1, ZMQ_SNDMORE) < 0 || zmq_send(self->publisher, "", 0, 0) < 0))
            HV_WARN("echoing a subscription failed", HV_STR("err", zmq_strerror(errno)));
        zmq_msg_close(&request);
    }
}

/* Sends a job's reply to the peer it came from, and publishes its event
 * first, so that a caller who reads the reply and then looks for the event
 * finds it already on its way. */
static void finish_job(store *self, job *done)
{
    ops_result *result = &done->result;

    if (result->topic[0]) {
        bool published = zmq_send(self->publisher, result->topic, strlen(result->topic), ZMQ_SNDMORE) >= 0 &&
                         zmq_send(self->publisher, result->event.data, result->event.size, 0) >= 0;
        if (!published)
            HV_ERROR("publishing an event failed", HV_STR("topic", result->topic), HV_STR("err", zmq_strerror(errno)));
        metrics_count_event(result->topic, published);
    }

    /* Routing frames go back as they came; the payload is replaced. */
    for (int i = 0; i < done->part_count - 1; i++)
        zmq_msg_send(&done->parts[i], self->router, ZMQ_SNDMORE);
    if (zmq_send(self->router, result->reply.data, result->reply.size, 0) < 0)
        HV_WARN("sending a reply failed", HV_STR("op", result->op), HV_STR("err", zmq_strerror(errno)));

    HV_DEBUG("request done", HV_STR("op", result->op), HV_INT("status", result->status), HV_INT("id", result->request_id),
             HV_STR("request_id", result->trace));
    metrics_count_operation(result, done->received_ns);
    job_destroy(&done);
}

/* Replies 503 to a request without running it (queue full, shutting down). */
static void reject_job(store *self, job *rejected, const char *message)
{
    msgpack_unpacked storage;
    msgpack_unpacked_init(&storage);
    hv_request request;
    const char *ignored;
    zmq_msg_t *payload = &rejected->parts[rejected->part_count - 1];
    /* The id is set even when the rest is malformed. The op names the
     * request in the metrics. */
    if (hv_request_decode(zmq_msg_data(payload), zmq_msg_size(payload), &storage, &request, &ignored) != 0)
        HV_DEBUG("rejected request was malformed too", HV_STR("err", ignored));
    else
        snprintf(rejected->result.op, sizeof(rejected->result.op), "%.*s", (int)request.op_len, request.op);

    msgpack_packer packer;
    msgpack_packer_init(&packer, &rejected->result.reply, msgpack_sbuffer_write);
    hv_reply_pack_error(&packer, request.id, HV_STATUS_UNAVAILABLE, message);
    rejected->result.status = HV_STATUS_UNAVAILABLE;
    msgpack_unpacked_destroy(&storage);
    finish_job(self, rejected);
}

static void enqueue(store *self, job *waiting)
{
    waiting->next = NULL;
    if (self->queue_tail)
        self->queue_tail->next = waiting;
    else
        self->queue_head = waiting;
    self->queue_tail = waiting;
    self->queued++;
}

static void dispatch_queued(store *self)
{
    while (self->queue_head && worker_pool_submit(self->pool, self->queue_head)) {
        self->queue_head = self->queue_head->next;
        if (!self->queue_head)
            self->queue_tail = NULL;
        self->queued--;
    }
}

static void on_request(store *self, zmq_msg_t *parts, int part_count)
{
    /* A ROUTER message is at least the peer's identity and a payload. */
    if (part_count < 2) {
        hv_zmq_close_parts(parts, part_count);
        return;
    }
    job *incoming = job_new(parts, part_count);
    if (!incoming) {
        hv_zmq_close_parts(parts, part_count);
        HV_ERROR("out of memory; request dropped", HV_LOG_END);
        return;
    }

    if (self->stopping) {
        reject_job(self, incoming, "store is shutting down");
    } else if (!self->queue_head && worker_pool_submit(self->pool, incoming)) {
        return;
    } else if (self->queued < config.queue_limit) {
        enqueue(self, incoming);
    } else {
        reject_job(self, incoming, "store is busy");
    }
}

/* Reads every request that is waiting: ZeroMQ sockets signal readiness once
 * for many messages. */
static void drain_router(store *self)
{
    for (;;) {
        zmq_msg_t parts[HV_ZMQ_MAX_PARTS];
        int part_count;
        if (hv_zmq_recv_parts(self->router, parts, &part_count, ZMQ_DONTWAIT) != 0) {
            if (errno == EMSGSIZE) {
                HV_WARN("dropped a request with too many frames", HV_INT("max_frames", HV_ZMQ_MAX_PARTS));
                continue;
            }
            return;
        }
        on_request(self, parts, part_count);
    }
}

static void describe_status(const store *self, char *out, size_t size)
{
    snprintf(out, size, "%s; %d requests in flight, %zu queued", self->stopping ? "stopping" : "serving",
             worker_pool_busy(self->pool), (size_t)self->queued);
}

static void begin_shutdown(store *self)
{
    self->stopping = true;
    self->stop_deadline_ms = hv_time_monotonic_ms() + config.shutdown_timeout_ms;
    HV_INFO("stopping: finishing requests in flight", HV_INT("in_flight", worker_pool_busy(self->pool)),
            HV_INT("queued", self->queued));
    char status[256];
    describe_status(self, status, sizeof(status));
    hv_notify_stopping(status);
}

static bool idle(const store *self)
{
    return worker_pool_busy(self->pool) == 0 && !self->queue_head;
}

/* Pings the service manager's watchdog when it is due, from the broker's
 * loop, so that a broker that hangs gets the store restarted. Returns how
 * long the loop may wait before the next ping, or -1 when no watchdog is
 * set. */
static long watchdog_tick(store *self, int64_t interval_ms, int64_t *next_ms)
{
    if (interval_ms == 0)
        return -1;
    int64_t now = hv_time_monotonic_ms();
    if (now >= *next_ms) {
        char status[256];
        describe_status(self, status, sizeof(status));
        hv_notify_watchdog(status);
        *next_ms = now + interval_ms;
    }
    return (long)(*next_ms - now);
}

static void run_loop(store *self)
{
    int workers = worker_pool_size(self->pool);
    /* The metrics listener, when on, comes last. */
    int item_count = workers + 3 + (self->admin ? 1 : 0);
    zmq_pollitem_t *items = calloc((size_t)item_count, sizeof(*items));
    items[0] = (zmq_pollitem_t){.fd = self->signal_fd, .events = ZMQ_POLLIN};
    items[1] = (zmq_pollitem_t){.socket = self->router, .events = ZMQ_POLLIN};
    items[2] = (zmq_pollitem_t){.socket = self->publisher, .events = ZMQ_POLLIN};
    for (int i = 0; i < workers; i++)
        items[i + 3] = (zmq_pollitem_t){.socket = worker_pool_socket(self->pool, i), .events = ZMQ_POLLIN};
    if (self->admin)
        items[workers + 3] = (zmq_pollitem_t){.fd = hv_admin_http_fd(self->admin), .events = ZMQ_POLLIN};

    int64_t watchdog_ms = hv_notify_watchdog_interval_ms();
    int64_t next_ping_ms = hv_time_monotonic_ms() + watchdog_ms;
    while (!(self->stopping && (idle(self) || hv_time_monotonic_ms() >= self->stop_deadline_ms))) {
        long timeout_ms = self->stopping ? 100 : -1;
        long ping_in_ms = watchdog_tick(self, watchdog_ms, &next_ping_ms);
        if (ping_in_ms >= 0 && (timeout_ms < 0 || ping_in_ms < timeout_ms))
            timeout_ms = ping_in_ms;
        if (zmq_poll(items, item_count, timeout_ms) < 0) {
            if (errno == EINTR)
                continue;
            HV_ERROR("polling failed", HV_STR("err", zmq_strerror(errno)));
            break;
        }

        if ((items[0].revents & ZMQ_POLLIN) && signal_arrived(self->signal_fd) && !self->stopping)
            begin_shutdown(self);

        if (items[2].revents & ZMQ_POLLIN)
            echo_subscriptions(self);

        for (int i = 0; i < workers; i++) {
            if (!(items[i + 3].revents & ZMQ_POLLIN))
                continue;
            job *done;
            while ((done = worker_pool_collect(self->pool, i)))
                finish_job(self, done);
        }
        dispatch_queued(self);

        if (items[1].revents & ZMQ_POLLIN)
            drain_router(self);

        if (self->admin && (items[workers + 3].revents & ZMQ_POLLIN))
            hv_admin_http_run(self->admin);
    }

    if (!idle(self))
        HV_WARN("shutdown timeout reached; abandoning requests", HV_INT("in_flight", worker_pool_busy(self->pool)),
                HV_INT("queued", self->queued));
    free(items);
}

int main(int argc, char **argv)
{
    hv_service_configure(settings, SETTING_COUNT, argc, argv, "helvino-store", "store", &config.log_level);
    db_set_statement_timeout(config.statement_timeout_ms);
    hv_service_log_start(settings, SETTING_COUNT, "helvino-store", HV_VERSION);

    /* Before the workers start, so that they inherit the blocked signals. */
    store self = {.signal_fd = hv_service_signal_fd()};
    if (self.signal_fd < 0) {
        HV_ERROR("creating the signal descriptor failed", HV_STR("err", strerror(errno)));
        return 1;
    }
    int status = 1;
    int admin = open_admin(&self);
    if (admin != 0) {
        /* An address to fix is an invalid setting: the units do not restart. */
        status = admin == HV_ADMIN_INVALID_ADDRESS ? 2 : 1;
        goto cleanup;
    }
    hv_notify_status("waiting for the database and migrating");
    int prepared = prepare_database(&self);
    if (prepared != 0) {
        /* A stop before the database came is a clean exit, not a failure. */
        status = prepared > 0 ? 0 : 1;
        goto cleanup;
    }

    if (open_sockets(&self) != 0)
        goto cleanup;

    self.pool = worker_pool_new(self.context, (int)config.workers, config.database_url, (size_t)config.max_request_bytes);
    if (!self.pool)
        goto cleanup;

    HV_INFO("store ready", HV_STR("requests", config.store_endpoint), HV_STR("events", config.events_endpoint),
            HV_INT("workers", config.workers));
    char ready[256];
    describe_status(&self, ready, sizeof(ready));
    hv_notify_ready(ready);
    run_loop(&self);
    status = 0;

cleanup:
    worker_pool_destroy(&self.pool);
    while (self.queue_head) {
        job *next = self.queue_head->next;
        job_destroy(&self.queue_head);
        self.queue_head = next;
    }
    if (self.router)
        zmq_close(self.router);
    if (self.publisher)
        zmq_close(self.publisher);
    if (self.context)
        zmq_ctx_term(self.context);
    close(self.signal_fd);
    hv_admin_http_destroy(&self.admin);
    metrics_destroy();
    HV_INFO("store stopped", HV_INT("exit_status", status));
    return status;
}
