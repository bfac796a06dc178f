/* helvino-wsbench: a load tool for helvino-realtime. On one thread it opens
 * many Socket.IO clients over raw WebSockets, then either measures the
 * server's memory while they sit idle (--mode idle), or posts messages
 * through the gateway and measures when each message:new event reaches every
 * client (--mode latency). --mode zmq measures the same POST-to-event path to
 * a plain ZeroMQ subscriber of the store's events, without the real-time
 * service: the ceiling for the latency mode. */
#include "latency.h"
#include "hv_config.h"
#include "hv_event.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define EXIT_HAD_ERRORS 1 /* the run finished, but connections, deliveries or requests failed */
#define EXIT_USAGE 2
#define EXIT_SETUP_FAILED 3 /* nothing could be measured: no server, no client connected, no event arrived */

#define NS_PER_MS INT64_C(1000000)
#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* Largest WebSocket message accepted from the server. The service's events
 * are far smaller; the bound keeps a broken peer from growing a buffer
 * without limit. */
#define MAX_MESSAGE_BYTES (16u * 1024 * 1024)

/* Largest HTTP response head (status line and headers) accepted. */
#define MAX_HTTP_HEAD_BYTES 16384

/* How often handshakes are checked against their deadline. */
#define DEADLINE_CHECK_NS (100 * NS_PER_MS)

/* How long the zmq mode waits for the store to echo its subscription. */
#define SUBSCRIBE_TIMEOUT_NS (10000 * NS_PER_MS)

/* How long the idle mode waits, after closing its clients, for the server to
 * close its sockets before it reads the memory once more. */
#define CLOSE_SETTLE_TIMEOUT_NS (10000 * NS_PER_MS)

/* epoll tags of the sockets that are not WebSocket clients. Client i is
 * tagged i. */
#define TAG_HTTP UINT64_MAX
#define TAG_ZMQ (UINT64_MAX - 1)

#define RFC6455_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static struct {
    const char *mode;
    const char *realtime;
    const char *gateway;
    const char *events_endpoint;
    const char *org;
    const char *org_key;
    const char *conversation;
    long connections;
    long connect_concurrency;
    long connect_timeout_ms;
    long server_pid;
    long hold_ms;
    long messages;
    long warmup_messages;
    long interval_ms;
    long content_bytes;
    long wait_ms;
    long http_timeout_ms;
} config;

static hv_setting settings[] = {
    {"mode", NULL, HV_SETTING_STRING, "latency",
     "idle: connect --connections clients, hold them and report the server's memory. latency: connect them, post "
     "--messages messages and report when each event reached each client. zmq: post the same messages and report when "
     "each event reached one ZeroMQ subscriber of the store, without the real-time service.",
     &config.mode, 0, 0, HV_SHOW_PLAIN},
    {"realtime", NULL, HV_SETTING_STRING, "127.0.0.1:4001", "HOST:PORT of helvino-realtime ([::1]:PORT for IPv6).",
     &config.realtime, 0, 0, HV_SHOW_PLAIN},
    {"gateway", NULL, HV_SETTING_STRING, "127.0.0.1:4000", "HOST:PORT of helvino-gateway, which the messages are posted to.",
     &config.gateway, 0, 0, HV_SHOW_PLAIN},
    {"events-endpoint", "HELVINO_EVENTS_ENDPOINT", HV_SETTING_STRING, "tcp://127.0.0.1:5556",
     "ZeroMQ endpoint of the store's event socket (zmq mode).", &config.events_endpoint, 0, 0, HV_SHOW_PLAIN},
    {"org", NULL, HV_SETTING_STRING, "org_1", "Org id whose events the zmq mode subscribes to: the org of --org-key.", &config.org,
     0, 0, HV_SHOW_PLAIN},
    {"org-key", NULL, HV_SETTING_STRING, "demo", "Org key sent in the Socket.IO CONNECT packet and in x-org-key.", &config.org_key,
     0, 0, HV_SHOW_HIDDEN},
    {"conversation", NULL, HV_SETTING_STRING, "",
     "Id of a conversation of that org that the messages are posted to (latency and zmq modes).", &config.conversation, 0, 0,
     HV_SHOW_PLAIN},
    {"connections", NULL, HV_SETTING_INT, "1000", "WebSocket clients to open (idle and latency modes).", &config.connections, 1,
     100000, HV_SHOW_PLAIN},
    {"connect-concurrency", NULL, HV_SETTING_INT, "100",
     "Handshakes in progress at once while connecting: TCP connect, WebSocket upgrade and Socket.IO CONNECT.",
     &config.connect_concurrency, 1, 10000, HV_SHOW_PLAIN},
    {"connect-timeout-ms", NULL, HV_SETTING_INT, "10000", "How long one client's handshake may take, in milliseconds.",
     &config.connect_timeout_ms, 1, 600000, HV_SHOW_PLAIN},
    {"server-pid", NULL, HV_SETTING_INT, "0",
     "Process id of helvino-realtime, whose memory is read from /proc. Required in the idle mode; 0 skips the reading in "
     "the latency mode.",
     &config.server_pid, 0, 4194304, HV_SHOW_PLAIN},
    {"hold-ms", NULL, HV_SETTING_INT, "30000",
     "How long the idle mode keeps the clients open after the last one connected, in milliseconds.", &config.hold_ms, 0, 86400000,
     HV_SHOW_PLAIN},
    {"messages", NULL, HV_SETTING_INT, "200", "Messages posted in the measured part of the latency and zmq modes.",
     &config.messages, 1, 1000000, HV_SHOW_PLAIN},
    {"warmup-messages", NULL, HV_SETTING_INT, "5", "Messages posted and awaited before the measured ones, not counted.",
     &config.warmup_messages, 0, 10000, HV_SHOW_PLAIN},
    {"interval-ms", NULL, HV_SETTING_INT, "20",
     "Time between the starts of two posts, in milliseconds. A post waits for the previous response, so a slow gateway "
     "stretches it.",
     &config.interval_ms, 0, 600000, HV_SHOW_PLAIN},
    {"content-bytes", NULL, HV_SETTING_INT, "100", "Size of each message's content, in bytes.", &config.content_bytes, 64, 60000,
     HV_SHOW_PLAIN},
    {"wait-ms", NULL, HV_SETTING_INT, "5000",
     "How long to wait after the last post for deliveries still missing, in milliseconds. They count as missing after it.",
     &config.wait_ms, 0, 600000, HV_SHOW_PLAIN},
    {"http-timeout-ms", NULL, HV_SETTING_INT, "5000", "How long a post may wait for its response, in milliseconds.",
     &config.http_timeout_ms, 1, 600000, HV_SHOW_PLAIN},
};

typedef enum { MODE_IDLE, MODE_LATENCY, MODE_ZMQ } bench_mode;

/* --- Small helpers ------------------------------------------------------ */

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int signal_number)
{
    (void)signal_number;
    stop_requested = 1;
}

static int64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static double cpu_seconds(void)
{
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0)
        return 0;
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 + (double)usage.ru_stime.tv_sec +
           (double)usage.ru_stime.tv_usec / 1e6;
}

typedef struct {
    char *data;
    size_t len;
    size_t capacity;
} byte_buffer;

static int buffer_append(byte_buffer *buffer, const void *data, size_t len)
{
    if (buffer->len + len > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 256;
        while (capacity < buffer->len + len)
            capacity *= 2;
        char *grown = realloc(buffer->data, capacity);
        if (!grown)
            return -1;
        buffer->data = grown;
        buffer->capacity = capacity;
    }
    memcpy(buffer->data + buffer->len, data, len);
    buffer->len += len;
    return 0;
}

static void buffer_consume(byte_buffer *buffer, size_t len)
{
    memmove(buffer->data, buffer->data + len, buffer->len - len);
    buffer->len -= len;
}

static void buffer_free(byte_buffer *buffer)
{
    free(buffer->data);
    *buffer = (byte_buffer){0};
}

/* A 64-bit xorshift generator for WebSocket masking keys. RFC 6455 requires
 * unpredictable masks so that a client cannot steer the bytes on the wire
 * through an intermediary; a generator seeded from getrandom is enough for a
 * load tool on loopback. */
static uint64_t mask_state;

static uint32_t next_mask(void)
{
    mask_state ^= mask_state << 13;
    mask_state ^= mask_state >> 7;
    mask_state ^= mask_state << 17;
    return (uint32_t)(mask_state >> 32);
}

static int fill_random(void *out, size_t len)
{
    uint8_t *bytes = out;
    while (len > 0) {
        ssize_t got = getrandom(bytes, len, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        bytes += got;
        len -= (size_t)got;
    }
    return 0;
}

/* --- SHA-1 and Base64, for Sec-WebSocket-Accept ------------------------- */

static uint32_t rotate_left(uint32_t value, unsigned bits)
{
    return (value << bits) | (value >> (32 - bits));
}

/* Processes one 64-byte block (FIPS 180-4, section 6.1.2). */
static void sha1_block(uint32_t state[5], const uint8_t block[64])
{
    uint32_t schedule[80];
    for (int i = 0; i < 16; i++)
        schedule[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 | (uint32_t)block[4 * i + 2] << 8 |
                      (uint32_t)block[4 * i + 3];
    for (int i = 16; i < 80; i++)
        schedule[i] = rotate_left(schedule[i - 3] ^ schedule[i - 8] ^ schedule[i - 14] ^ schedule[i - 16], 1);

    uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t next = rotate_left(a, 5) + f + e + k + schedule[i];
        e = d;
        d = c;
        c = rotate_left(b, 30);
        b = a;
        a = next;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
}

static void sha1(const uint8_t *data, size_t len, uint8_t digest[20])
{
    uint32_t state[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    size_t whole = len / 64 * 64;
    for (size_t offset = 0; offset < whole; offset += 64)
        sha1_block(state, data + offset);

    /* The padding: a 1 bit, zeros, and the length in bits as a 64-bit
     * big-endian number, which may spill into a second block. */
    uint8_t tail[128] = {0};
    size_t rest = len - whole;
    memcpy(tail, data + whole, rest);
    tail[rest] = 0x80;
    size_t tail_len = rest + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tail_len - 1 - (size_t)i] = (uint8_t)(bits >> (8 * i));
    for (size_t offset = 0; offset < tail_len; offset += 64)
        sha1_block(state, tail + offset);

    for (int i = 0; i < 5; i++) {
        digest[4 * i] = (uint8_t)(state[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(state[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(state[i] >> 8);
        digest[4 * i + 3] = (uint8_t)state[i];
    }
}

/* Writes the Base64 text of `len` bytes and a NUL; `out` needs
 * 4 * ((len + 2) / 3) + 1 bytes. */
static void base64_encode(const uint8_t *data, size_t len, char *out)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t used = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t group = (uint32_t)data[i] << 16;
        if (i + 1 < len)
            group |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len)
            group |= data[i + 2];
        out[used++] = alphabet[(group >> 18) & 63];
        out[used++] = alphabet[(group >> 12) & 63];
        out[used++] = i + 1 < len ? alphabet[(group >> 6) & 63] : '=';
        out[used++] = i + 2 < len ? alphabet[group & 63] : '=';
    }
    out[used] = '\0';
}

/* Writes the Sec-WebSocket-Accept value that a server must return for
 * `key`: Base64 of the SHA-1 of the key followed by the RFC 6455 GUID. */
static void websocket_accept_for(const char *key, char out[29])
{
    char joined[64];
    int joined_len = snprintf(joined, sizeof(joined), "%s%s", key, RFC6455_GUID);
    uint8_t digest[20];
    sha1((const uint8_t *)joined, (size_t)joined_len, digest);
    base64_encode(digest, sizeof(digest), out);
}

/* --- Failure reasons ---------------------------------------------------- */

#define MAX_REASONS 32

/* Counts of failures by their description. Descriptions past the first
 * MAX_REASONS distinct ones are only counted in `other`. */
typedef struct {
    struct {
        char text[192];
        uint64_t count;
    } items[MAX_REASONS];
    size_t used;
    uint64_t other;
    uint64_t total;
} reason_table;

static void reason_add(reason_table *table, const char *text)
{
    table->total++;
    for (size_t i = 0; i < table->used; i++) {
        if (strcmp(table->items[i].text, text) == 0) {
            table->items[i].count++;
            return;
        }
    }
    if (table->used == MAX_REASONS) {
        table->other++;
        return;
    }
    size_t len = strnlen(text, sizeof(table->items[0].text) - 1);
    memcpy(table->items[table->used].text, text, len);
    table->items[table->used].text[len] = '\0';
    table->items[table->used++].count = 1;
}

static json_t *reason_table_json(const reason_table *table)
{
    json_t *object = json_object();
    for (size_t i = 0; i < table->used; i++)
        json_object_set_new(object, table->items[i].text, json_integer((json_int_t)table->items[i].count));
    if (table->other > 0)
        json_object_set_new(object, "other reasons", json_integer((json_int_t)table->other));
    return object;
}

static void reason_table_print(const reason_table *table, const char *title)
{
    if (table->total == 0)
        return;
    fprintf(stderr, "  %s: %" PRIu64 "\n", title, table->total);
    for (size_t i = 0; i < table->used; i++)
        fprintf(stderr, "    %" PRIu64 " x %s\n", table->items[i].count, table->items[i].text);
    if (table->other > 0)
        fprintf(stderr, "    %" PRIu64 " x other reasons\n", table->other);
}

/* --- State -------------------------------------------------------------- */

typedef enum {
    CLIENT_UNUSED,     /* not started yet */
    CLIENT_CONNECTING, /* TCP connect in progress */
    CLIENT_UPGRADING,  /* upgrade request sent, waiting for 101 */
    CLIENT_OPENING,    /* waiting for the Engine.IO open packet */
    CLIENT_JOINING,    /* Socket.IO CONNECT sent, waiting for its reply */
    CLIENT_READY,      /* in the org's room */
    CLIENT_CLOSED,
} client_state;

static const char *const client_state_names[] = {
    "not started", "TCP connect", "WebSocket upgrade", "Engine.IO open", "Socket.IO CONNECT", "ready", "closed"};

typedef struct {
    int fd;
    client_state state;
    bool epollout_registered; /* EPOLLOUT is registered because output is waiting */
    uint8_t message_opcode;
    int64_t deadline_ns; /* end of the handshake */
    char key[25];        /* Sec-WebSocket-Key */
    byte_buffer in;
    byte_buffer out;
    byte_buffer message; /* a fragmented message being reassembled */
} ws_client;

typedef struct {
    int fd;
    bool epollout_registered;
    long pending_seq; /* the post waiting for its response; -1 when none */
    int64_t pending_sent_ns;
    byte_buffer in;
    byte_buffer out;
} http_client;

/* Server memory and descriptors from /proc, in kB; -1 when unavailable. */
typedef struct {
    long vm_rss_kb;
    long rss_anon_kb;
    long vm_hwm_kb;
    long pss_kb;
    long private_kb;
    long fds;
    long tcp_mem_pages; /* machine-wide, from /proc/net/sockstat */
} memory_reading;

typedef struct {
    bench_mode mode;
    int epoll_fd;
    struct sockaddr_storage realtime_address;
    socklen_t realtime_address_len;
    struct sockaddr_storage gateway_address;
    socklen_t gateway_address_len;

    ws_client *clients;
    long started;
    long handshaking;
    long ready;     /* clients currently in the room */
    long connected; /* clients that reached the room, including ones lost since */
    int64_t connect_ns;
    reason_table connect_failures;
    reason_table drops; /* clients lost after they had reached the room */
    uint64_t pings_answered;
    uint64_t other_packets; /* server packets that this tool does not act on */

    http_client http;
    reason_table post_failures;
    uint64_t http_reconnects;

    void *zmq_context;
    void *subscriber;
    bool subscription_live; /* the store echoed the subscription */

    /* Every post carries "wsbench-<run id>-<seq>" at the start of its
     * content, which identifies it in events. Seqs 0 to warmup-1 are the
     * warm-up, the rest the measured messages. */
    char marker[32];
    size_t marker_len;
    char *content;
    long total_messages;
    long receivers;    /* clients, or 1 for the zmq subscriber */
    int64_t *sent_ns;  /* per seq; 0 until posted */
    int64_t *post_ns;  /* per seq: time to the POST's response, 0 without a 201 */
    long *expected;    /* per seq: receivers in the room when it was posted */
    long *delivered;   /* per seq: receivers that have it */
    int64_t *arrivals; /* seq * receivers + receiver: arrival time, 0 until then */
    uint64_t duplicates;
    uint64_t foreign_events; /* message:new events without this run's marker */
} bench;

/* --- Address parsing ---------------------------------------------------- */

/* Resolves "HOST:PORT" or "[IPV6]:PORT" into `address`. Returns 0, or -1
 * with a message in `error`. */
static int resolve_host_port(const char *text, struct sockaddr_storage *address, socklen_t *address_len, char *error,
                             size_t error_size)
{
    char host[256];
    const char *port;
    const char *colon = strrchr(text, ':');
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof(host)) {
            snprintf(error, error_size, "expected [IPV6]:PORT");
            return -1;
        }
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        port = close + 2;
    } else {
        if (!colon || colon == text || (size_t)(colon - text) >= sizeof(host)) {
            snprintf(error, error_size, "expected HOST:PORT");
            return -1;
        }
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        port = colon + 1;
    }
    char *end;
    long port_number = strtol(port, &end, 10);
    if (port == end || *end != '\0' || port_number < 1 || port_number > 65535) {
        snprintf(error, error_size, "invalid port \"%s\": expected 1 to 65535", port);
        return -1;
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    int status = getaddrinfo(host, port, &hints, &found);
    if (status != 0) {
        snprintf(error, error_size, "cannot resolve \"%.100s\": %s", host, gai_strerror(status));
        return -1;
    }
    memcpy(address, found->ai_addr, found->ai_addrlen);
    *address_len = found->ai_addrlen;
    freeaddrinfo(found);
    return 0;
}

/* --- epoll -------------------------------------------------------------- */

static int watch_fd(bench *self, int fd, uint64_t tag, uint32_t events)
{
    struct epoll_event event = {.events = events, .data.u64 = tag};
    return epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, fd, &event);
}

static void change_watch(bench *self, int fd, uint64_t tag, uint32_t events)
{
    struct epoll_event event = {.events = events, .data.u64 = tag};
    epoll_ctl(self->epoll_fd, EPOLL_CTL_MOD, fd, &event);
}

/* --- WebSocket clients -------------------------------------------------- */

static void client_close(bench *self, ws_client *client, const char *reason)
{
    if (client->state == CLIENT_CLOSED || client->state == CLIENT_UNUSED)
        return;
    if (client->state == CLIENT_READY) {
        self->ready--;
        reason_add(&self->drops, reason);
    } else {
        self->handshaking--;
        reason_add(&self->connect_failures, reason);
    }
    close(client->fd);
    client->fd = -1;
    client->state = CLIENT_CLOSED;
    buffer_free(&client->in);
    buffer_free(&client->out);
    buffer_free(&client->message);
}

static void client_fail_errno(bench *self, ws_client *client, const char *call, int error_number)
{
    char reason[192];
    snprintf(reason, sizeof(reason), "%s failed during %s: %s", call, client_state_names[client->state], strerror(error_number));
    client_close(self, client, reason);
}

/* Writes what is waiting in the client's output, and watches for
 * writability while some of it is left. Returns -1 when the client was
 * closed. */
static int client_flush(bench *self, ws_client *client)
{
    while (client->out.len > 0) {
        ssize_t sent = send(client->fd, client->out.data, client->out.len, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            client_fail_errno(self, client, "send", errno);
            return -1;
        }
        buffer_consume(&client->out, (size_t)sent);
    }
    bool want = client->out.len > 0;
    if (want != client->epollout_registered) {
        client->epollout_registered = want;
        change_watch(self, client->fd, (uint64_t)(client - self->clients), EPOLLIN | (want ? EPOLLOUT : 0));
    }
    return 0;
}

/* Appends one masked frame (RFC 6455 section 5.2) to the client's output.
 * Returns -1 when out of memory. */
static int queue_frame(ws_client *client, uint8_t opcode, const void *payload, size_t len)
{
    uint8_t header[14];
    size_t header_len = 0;
    header[header_len++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        header[header_len++] = (uint8_t)(0x80 | len);
    } else if (len <= 0xffff) {
        header[header_len++] = 0x80 | 126;
        header[header_len++] = (uint8_t)(len >> 8);
        header[header_len++] = (uint8_t)len;
    } else {
        header[header_len++] = 0x80 | 127;
        for (int shift = 56; shift >= 0; shift -= 8)
            header[header_len++] = (uint8_t)((uint64_t)len >> shift);
    }
    uint32_t mask = next_mask();
    uint8_t mask_bytes[4] = {(uint8_t)(mask >> 24), (uint8_t)(mask >> 16), (uint8_t)(mask >> 8), (uint8_t)mask};
    memcpy(header + header_len, mask_bytes, 4);
    header_len += 4;

    size_t start = client->out.len;
    if (buffer_append(&client->out, header, header_len) != 0 || buffer_append(&client->out, payload, len) != 0)
        return -1;
    uint8_t *masked = (uint8_t *)client->out.data + start + header_len;
    for (size_t i = 0; i < len; i++)
        masked[i] ^= mask_bytes[i % 4];
    return 0;
}

/* Queues one frame and writes it. Returns -1 when the client was closed. */
static int client_send_frame(bench *self, ws_client *client, uint8_t opcode, const void *payload, size_t len)
{
    if (queue_frame(client, opcode, payload, len) != 0) {
        client_close(self, client, "out of memory for output");
        return -1;
    }
    return client_flush(self, client);
}

/* Makes one attempt to send a close frame with `code` before the socket is
 * closed. A failure is ignored: the socket is about to go either way, and
 * the reason for closing is recorded by the caller. */
static void send_close_frame(ws_client *client, const uint8_t code[2])
{
    if (queue_frame(client, 0x8, code, code ? 2 : 0) == 0)
        (void)send(client->fd, client->out.data, client->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static int client_send_text(bench *self, ws_client *client, const char *text)
{
    return client_send_frame(self, client, 0x1, text, strlen(text));
}

static void start_client(bench *self, long index)
{
    ws_client *client = &self->clients[index];
    client->fd = -1;
    client->state = CLIENT_CONNECTING;
    client->deadline_ns = monotonic_ns() + config.connect_timeout_ms * NS_PER_MS;
    self->handshaking++;

    client->fd = socket(self->realtime_address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (client->fd < 0) {
        client_fail_errno(self, client, "socket", errno);
        return;
    }
    int enable = 1;
    setsockopt(client->fd, IPPROTO_TCP, TCP_NODELAY, &enable, sizeof(enable));
    if (connect(client->fd, (const struct sockaddr *)&self->realtime_address, self->realtime_address_len) != 0 &&
        errno != EINPROGRESS) {
        client_fail_errno(self, client, "connect", errno);
        return;
    }
    if (watch_fd(self, client->fd, (uint64_t)index, EPOLLIN | EPOLLOUT) != 0) {
        client_fail_errno(self, client, "epoll_ctl", errno);
        return;
    }
    client->epollout_registered = true;
}

/* Sends the upgrade request once the TCP connection is up. */
static void on_tcp_connected(bench *self, ws_client *client)
{
    int error = 0;
    socklen_t error_len = sizeof(error);
    if (getsockopt(client->fd, SOL_SOCKET, SO_ERROR, &error, &error_len) != 0)
        error = errno;
    if (error != 0) {
        client_fail_errno(self, client, "connect", error);
        return;
    }

    uint8_t nonce[16];
    if (fill_random(nonce, sizeof(nonce)) != 0) {
        client_fail_errno(self, client, "getrandom", errno);
        return;
    }
    base64_encode(nonce, sizeof(nonce), client->key);

    char request[512];
    int len = snprintf(request, sizeof(request),
                       "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                       "Host: %s\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Key: %s\r\n"
                       "Sec-WebSocket-Version: 13\r\n"
                       "\r\n",
                       config.realtime, client->key);
    client->state = CLIENT_UPGRADING;
    if (buffer_append(&client->out, request, (size_t)len) != 0) {
        client_close(self, client, "out of memory for output");
        return;
    }
    client_flush(self, client);
}

/* Finds header `name` (lower case, with the colon) in an HTTP response head
 * and copies its trimmed value. Returns false when it is missing. */
static bool find_header(const char *head, size_t head_len, const char *name, char *value, size_t value_size)
{
    size_t name_len = strlen(name);
    const char *line = memchr(head, '\n', head_len);
    const char *end = head + head_len;
    while (line && line + 1 < end) {
        line++;
        const char *line_end = memchr(line, '\n', (size_t)(end - line));
        if (!line_end)
            line_end = end;
        if ((size_t)(line_end - line) > name_len && strncasecmp(line, name, name_len) == 0) {
            const char *start = line + name_len;
            const char *stop = line_end;
            while (start < stop && (*start == ' ' || *start == '\t'))
                start++;
            while (stop > start && (stop[-1] == '\r' || stop[-1] == ' ' || stop[-1] == '\t'))
                stop--;
            snprintf(value, value_size, "%.*s", (int)(stop - start), start);
            return true;
        }
        line = line_end < end ? line_end : NULL;
    }
    return false;
}

/* Checks the response to the upgrade request. Returns the bytes it took,
 * 0 when the head is not complete yet, or -1 when the client was closed. */
static long on_upgrade_response(bench *self, ws_client *client, const char *data, size_t len)
{
    const char *head_end = memmem(data, len, "\r\n\r\n", 4);
    if (!head_end) {
        if (len > MAX_HTTP_HEAD_BYTES) {
            client_close(self, client, "upgrade response head longer than 16 kB");
            return -1;
        }
        return 0;
    }
    size_t head_len = (size_t)(head_end - data) + 4;

    int status = 0;
    if (sscanf(data, "HTTP/1.%*d %d", &status) != 1) {
        client_close(self, client, "upgrade response without an HTTP status line");
        return -1;
    }
    char reason[192];
    if (status != 101) {
        snprintf(reason, sizeof(reason), "upgrade rejected with HTTP status %d", status);
        client_close(self, client, reason);
        return -1;
    }
    char accept[64], expected[29];
    websocket_accept_for(client->key, expected);
    if (!find_header(data, head_len, "sec-websocket-accept:", accept, sizeof(accept)) || strcmp(accept, expected) != 0) {
        client_close(self, client, "upgrade response with a missing or wrong Sec-WebSocket-Accept");
        return -1;
    }
    client->state = CLIENT_OPENING;
    return (long)head_len;
}

/* Appends `text` as the body of a JSON string: quotes, backslashes and
 * control characters escaped. */
static void json_escape(const char *text, char *out, size_t out_size)
{
    size_t used = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && used + 7 < out_size; p++) {
        if (*p == '"' || *p == '\\')
            used += (size_t)snprintf(out + used, out_size - used, "\\%c", *p);
        else if (*p < 0x20)
            used += (size_t)snprintf(out + used, out_size - used, "\\u%04x", *p);
        else
            out[used++] = (char)*p;
    }
    out[used] = '\0';
}

/* Records the arrival of message `seq` at `receiver`. */
static void record_arrival(bench *self, long seq, long receiver, int64_t now_ns)
{
    if (seq < 0 || seq >= self->total_messages || self->sent_ns[seq] == 0) {
        self->foreign_events++;
        return;
    }
    int64_t *slot = &self->arrivals[(size_t)seq * (size_t)self->receivers + (size_t)receiver];
    if (*slot != 0) {
        self->duplicates++;
        return;
    }
    *slot = now_ns;
    self->delivered[seq]++;
}

/* Finds this run's marker in an event and returns the seq after it, or -1
 * when the event has no marker. */
static long find_seq(const bench *self, const char *data, size_t len)
{
    const char *found = memmem(data, len, self->marker, self->marker_len);
    if (!found)
        return -1;
    const char *digits = found + self->marker_len;
    const char *end = data + len;
    long seq = 0;
    const char *p = digits;
    while (p < end && *p >= '0' && *p <= '9' && p - digits < 9)
        seq = seq * 10 + (*p++ - '0');
    return p == digits ? -1 : seq;
}

/* Handles a Socket.IO EVENT packet's payload, such as
 * ["message:new",{...}]. */
static void on_socketio_event(bench *self, long receiver, const char *payload, size_t len, int64_t now_ns)
{
    static const char prefix[] = "[\"message:new\",";
    if (len < sizeof(prefix) - 1 || memcmp(payload, prefix, sizeof(prefix) - 1) != 0) {
        self->other_packets++;
        return;
    }
    long seq = find_seq(self, payload, len);
    if (seq == -1) {
        self->foreign_events++;
        return;
    }
    if (self->arrivals)
        record_arrival(self, seq, receiver, now_ns);
}

/* Handles one Engine.IO packet from a text message. Returns -1 when the
 * client was closed. */
static int on_engineio_packet(bench *self, ws_client *client, const char *text, size_t len, int64_t now_ns)
{
    char reason[192];
    if (len == 0) {
        client_close(self, client, "empty Engine.IO packet");
        return -1;
    }
    switch (text[0]) {
    case '0':
        if (client->state != CLIENT_OPENING) {
            client_close(self, client, "Engine.IO open packet after the open");
            return -1;
        }
        char escaped[512], connect_packet[600];
        json_escape(config.org_key, escaped, sizeof(escaped));
        snprintf(connect_packet, sizeof(connect_packet), "40{\"orgKey\":\"%s\"}", escaped);
        client->state = CLIENT_JOINING;
        return client_send_text(self, client, connect_packet);
    case '2':
        self->pings_answered++;
        return client_send_text(self, client, "3");
    case '1':
        client_close(self, client, "the server sent an Engine.IO close packet");
        return -1;
    case '6':
        return 0;
    case '4':
        break;
    default:
        self->other_packets++;
        return 0;
    }

    /* A Socket.IO packet inside an Engine.IO message packet. */
    char type = len > 1 ? text[1] : '\0';
    if (type == '0' && client->state == CLIENT_JOINING) {
        client->state = CLIENT_READY;
        self->handshaking--;
        self->ready++;
        self->connected++;
        return 0;
    }
    if (type == '4') {
        snprintf(reason, sizeof(reason), "CONNECT rejected: %.*s", (int)(len - 2 < 120 ? len - 2 : 120), text + 2);
        client_close(self, client, reason);
        return -1;
    }
    if (type == '1') {
        client_close(self, client, "the server sent a Socket.IO DISCONNECT packet");
        return -1;
    }
    if (type == '2' && client->state == CLIENT_READY) {
        on_socketio_event(self, client - self->clients, text + 2, len - 2, now_ns);
        return 0;
    }
    self->other_packets++;
    return 0;
}

typedef struct {
    bool fin;
    uint8_t opcode;
    const uint8_t *payload;
    size_t payload_len;
} ws_frame;

/* Parses one server frame. Returns its total size, 0 when more bytes are
 * needed, or -1 with `error` set when the frame breaks RFC 6455. */
static long parse_frame(const uint8_t *data, size_t len, ws_frame *frame, const char **error)
{
    if (len < 2)
        return 0;
    if (data[0] & 0x70) {
        *error = "server frame with reserved bits set";
        return -1;
    }
    if (data[1] & 0x80) {
        *error = "masked server frame";
        return -1;
    }
    frame->fin = data[0] & 0x80;
    frame->opcode = data[0] & 0x0f;
    size_t header_len = 2;
    uint64_t payload_len = data[1] & 0x7f;
    if (payload_len == 126) {
        if (len < 4)
            return 0;
        payload_len = (uint64_t)data[2] << 8 | data[3];
        header_len = 4;
    } else if (payload_len == 127) {
        if (len < 10)
            return 0;
        payload_len = 0;
        for (int i = 2; i < 10; i++)
            payload_len = payload_len << 8 | data[i];
        header_len = 10;
    }
    if (frame->opcode >= 0x8 && (payload_len > 125 || !frame->fin)) {
        *error = "fragmented or oversized control frame";
        return -1;
    }
    if (payload_len > MAX_MESSAGE_BYTES) {
        *error = "server frame larger than 16 MiB";
        return -1;
    }
    if (len < header_len + payload_len)
        return 0;
    frame->payload = data + header_len;
    frame->payload_len = (size_t)payload_len;
    return (long)(header_len + payload_len);
}

/* Handles a whole message of text. Returns -1 when the client was closed. */
static int on_text_message(bench *self, ws_client *client, const uint8_t *text, size_t len, int64_t now_ns)
{
    if (client->state < CLIENT_OPENING) {
        client_close(self, client, "WebSocket message before the upgrade completed");
        return -1;
    }
    return on_engineio_packet(self, client, (const char *)text, len, now_ns);
}

/* Handles one frame. Returns -1 when the client was closed. */
static int on_frame(bench *self, ws_client *client, const ws_frame *frame, int64_t now_ns)
{
    char reason[192];
    switch (frame->opcode) {
    case 0x8: {
        int code = frame->payload_len >= 2 ? frame->payload[0] << 8 | frame->payload[1] : 1005;
        snprintf(reason, sizeof(reason), "the server sent a close frame with code %d during %s", code,
                 client_state_names[client->state]);
        /* The close frame is echoed, as RFC 6455 requires, and the socket is closed
         * without waiting for the server to close its end. */
        send_close_frame(client, frame->payload_len >= 2 ? frame->payload : NULL);
        client_close(self, client, reason);
        return -1;
    }
    case 0x9:
        return client_send_frame(self, client, 0xa, frame->payload, frame->payload_len);
    case 0xa:
        return 0;
    case 0x1:
    case 0x2:
        if (client->message.len > 0 || client->message_opcode != 0) {
            client_close(self, client, "new data frame inside a fragmented message");
            return -1;
        }
        if (frame->opcode == 0x2) {
            client_close(self, client, "binary message from the server");
            return -1;
        }
        if (frame->fin)
            return on_text_message(self, client, frame->payload, frame->payload_len, now_ns);
        client->message_opcode = frame->opcode;
        break;
    case 0x0:
        if (client->message_opcode == 0) {
            client_close(self, client, "continuation frame outside a fragmented message");
            return -1;
        }
        break;
    default:
        snprintf(reason, sizeof(reason), "server frame with unknown opcode %u", frame->opcode);
        client_close(self, client, reason);
        return -1;
    }

    /* A fragment of a longer message. */
    if (client->message.len + frame->payload_len > MAX_MESSAGE_BYTES) {
        client_close(self, client, "fragmented server message larger than 16 MiB");
        return -1;
    }
    if (buffer_append(&client->message, frame->payload, frame->payload_len) != 0) {
        client_close(self, client, "out of memory for a fragmented message");
        return -1;
    }
    if (!frame->fin)
        return 0;
    client->message_opcode = 0;
    int status = on_text_message(self, client, (const uint8_t *)client->message.data, client->message.len, now_ns);
    if (status == 0)
        client->message.len = 0;
    return status;
}

/* Consumes what it can of the received bytes. Returns the bytes consumed,
 * or -1 when the client was closed. */
static long process_input(bench *self, ws_client *client, const char *data, size_t len, int64_t now_ns)
{
    size_t used = 0;
    if (client->state == CLIENT_UPGRADING) {
        long head_len = on_upgrade_response(self, client, data, len);
        if (head_len <= 0)
            return head_len;
        used = (size_t)head_len;
    }
    while (used < len) {
        ws_frame frame;
        const char *error = NULL;
        long frame_len = parse_frame((const uint8_t *)data + used, len - used, &frame, &error);
        if (frame_len < 0) {
            client_close(self, client, error);
            return -1;
        }
        if (frame_len == 0)
            break;
        used += (size_t)frame_len;
        if (on_frame(self, client, &frame, now_ns) != 0)
            return -1;
    }
    return (long)used;
}

static void client_read(bench *self, ws_client *client)
{
    char data[65536];
    ssize_t got = recv(client->fd, data, sizeof(data), 0);
    if (got < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            client_fail_errno(self, client, "recv", errno);
        return;
    }
    if (got == 0) {
        char reason[192];
        snprintf(reason, sizeof(reason), "the server closed the TCP connection during %s", client_state_names[client->state]);
        client_close(self, client, reason);
        return;
    }
    int64_t now_ns = monotonic_ns();

    /* Bytes are parsed straight from the read buffer unless part of a frame
     * is already waiting. */
    if (client->in.len == 0) {
        long used = process_input(self, client, data, (size_t)got, now_ns);
        if (used >= 0 && used < got && buffer_append(&client->in, data + used, (size_t)(got - used)) != 0)
            client_close(self, client, "out of memory for input");
        return;
    }
    if (buffer_append(&client->in, data, (size_t)got) != 0) {
        client_close(self, client, "out of memory for input");
        return;
    }
    long used = process_input(self, client, client->in.data, client->in.len, now_ns);
    if (used > 0)
        buffer_consume(&client->in, (size_t)used);
}

static void on_client_event(bench *self, ws_client *client, uint32_t events)
{
    if (client->state == CLIENT_CONNECTING) {
        on_tcp_connected(self, client);
        return;
    }
    if ((events & EPOLLOUT) && client_flush(self, client) != 0)
        return;
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        client_read(self, client);
}

/* --- HTTP client for the posts ------------------------------------------ */

static void http_close(bench *self)
{
    if (self->http.fd >= 0)
        close(self->http.fd);
    self->http.fd = -1;
    self->http.epollout_registered = false;
    self->http.pending_seq = -1;
    self->http.in.len = 0;
    self->http.out.len = 0;
}

/* Opens the keep-alive connection to the gateway. Returns 0, or -1 with a
 * message in `error`. */
static int http_connect(bench *self, char *error, size_t error_size)
{
    int fd = socket(self->gateway_address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(error, error_size, "socket failed: %s", strerror(errno));
        return -1;
    }
    /* A blocking connect: the gateway is on loopback, where a connect is
     * accepted or refused at once. */
    if (connect(fd, (const struct sockaddr *)&self->gateway_address, self->gateway_address_len) != 0) {
        snprintf(error, error_size, "connecting to the gateway at %s failed: %s", config.gateway, strerror(errno));
        close(fd);
        return -1;
    }
    int enable = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &enable, sizeof(enable));
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 || watch_fd(self, fd, TAG_HTTP, EPOLLIN) != 0) {
        snprintf(error, error_size, "setting up the gateway connection failed: %s", strerror(errno));
        close(fd);
        return -1;
    }
    self->http.fd = fd;
    return 0;
}

static void http_fail(bench *self, const char *reason)
{
    reason_add(&self->post_failures, reason);
    http_close(self);
}

static void http_flush(bench *self)
{
    http_client *http = &self->http;
    while (http->out.len > 0) {
        ssize_t sent = send(http->fd, http->out.data, http->out.len, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            char reason[192];
            snprintf(reason, sizeof(reason), "sending the POST failed: %s", strerror(errno));
            http_fail(self, reason);
            return;
        }
        buffer_consume(&http->out, (size_t)sent);
    }
    bool want = http->out.len > 0;
    if (want != http->epollout_registered) {
        http->epollout_registered = want;
        change_watch(self, http->fd, TAG_HTTP, EPOLLIN | (want ? EPOLLOUT : 0));
    }
}

/* Posts message `seq`. Returns 0, or -1 when no connection to the gateway
 * could be opened. */
static int post_message(bench *self, long seq)
{
    char error[256];
    if (self->http.fd < 0) {
        if (http_connect(self, error, sizeof(error)) != 0) {
            reason_add(&self->post_failures, error);
            return -1;
        }
        self->http_reconnects++;
    }

    /* The marker and seq overwrite the start of the prepared content, so
     * every message has the same size. */
    char head[48];
    int head_len = snprintf(head, sizeof(head), "%s%09ld", self->marker, seq);
    memcpy(self->content, head, (size_t)head_len);

    char body_start[] = "{\"role\":\"user\",\"content\":\"";
    char body_end[] = "\"}";
    size_t body_len = strlen(body_start) + (size_t)config.content_bytes + strlen(body_end);
    char request[1024];
    int request_len = snprintf(request, sizeof(request),
                               "POST /conversations/%s/messages HTTP/1.1\r\n"
                               "Host: %s\r\n"
                               "x-org-key: %s\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: %zu\r\n"
                               "\r\n%s",
                               config.conversation, config.gateway, config.org_key, body_len, body_start);
    if (buffer_append(&self->http.out, request, (size_t)request_len) != 0 ||
        buffer_append(&self->http.out, self->content, (size_t)config.content_bytes) != 0 ||
        buffer_append(&self->http.out, body_end, strlen(body_end)) != 0) {
        http_fail(self, "out of memory for a request");
        return -1;
    }

    self->http.pending_seq = seq;
    self->http.pending_sent_ns = monotonic_ns();
    self->sent_ns[seq] = self->http.pending_sent_ns;
    self->expected[seq] = self->mode == MODE_ZMQ ? 1 : self->ready;
    http_flush(self);
    return 0;
}

/* Parses one response at the start of the input. Returns its size, 0 when
 * it is not complete, or -1 with `error` set. */
static long parse_http_response(const char *data, size_t len, int *status, const char **error)
{
    const char *head_end = memmem(data, len, "\r\n\r\n", 4);
    if (!head_end) {
        if (len > MAX_HTTP_HEAD_BYTES) {
            *error = "response head longer than 16 kB";
            return -1;
        }
        return 0;
    }
    size_t head_len = (size_t)(head_end - data) + 4;
    if (sscanf(data, "HTTP/1.%*d %d", status) != 1) {
        *error = "response without an HTTP status line";
        return -1;
    }
    char value[64];
    if (find_header(data, head_len, "transfer-encoding:", value, sizeof(value))) {
        *error = "chunked response, which this tool does not read";
        return -1;
    }
    if (!find_header(data, head_len, "content-length:", value, sizeof(value))) {
        *error = "response without Content-Length";
        return -1;
    }
    char *end;
    long body_len = strtol(value, &end, 10);
    if (end == value || *end != '\0' || body_len < 0 || body_len > 16 * 1024 * 1024) {
        *error = "response with an invalid Content-Length";
        return -1;
    }
    if (len < head_len + (size_t)body_len)
        return 0;
    return (long)(head_len + (size_t)body_len);
}

static void on_http_response(bench *self, int status, int64_t now_ns)
{
    long seq = self->http.pending_seq;
    self->http.pending_seq = -1;
    if (status != 201) {
        /* No message was stored, so no event can come. A post that timed
         * out stays expected, because the store may have committed it. */
        char reason[192];
        snprintf(reason, sizeof(reason), "POST answered with status %d instead of 201", status);
        reason_add(&self->post_failures, reason);
        self->expected[seq] = 0;
        return;
    }
    self->post_ns[seq] = now_ns - self->http.pending_sent_ns;
}

static void http_read(bench *self)
{
    char data[16384];
    ssize_t got = recv(self->http.fd, data, sizeof(data), 0);
    if (got < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            char reason[192];
            snprintf(reason, sizeof(reason), "reading the POST response failed: %s", strerror(errno));
            http_fail(self, reason);
        }
        return;
    }
    if (got == 0) {
        /* A closed idle keep-alive connection is reopened at the next post
         * and is not a failure. */
        if (self->http.pending_seq != -1)
            http_fail(self, "the gateway closed the connection before the response");
        else
            http_close(self);
        return;
    }
    int64_t now_ns = monotonic_ns();
    if (buffer_append(&self->http.in, data, (size_t)got) != 0) {
        http_fail(self, "out of memory for a response");
        return;
    }
    for (;;) {
        int status = 0;
        const char *error = NULL;
        long len = parse_http_response(self->http.in.data, self->http.in.len, &status, &error);
        if (len < 0) {
            http_fail(self, error);
            return;
        }
        if (len == 0)
            return;
        buffer_consume(&self->http.in, (size_t)len);
        if (self->http.pending_seq == -1) {
            http_fail(self, "a response that no request was waiting for");
            return;
        }
        on_http_response(self, status, now_ns);
    }
}

/* Ends a post whose response is overdue, so that the next one can go out
 * on a new connection. */
static void expire_post(bench *self, int64_t now_ns)
{
    if (self->http.pending_seq != -1 && now_ns - self->http.pending_sent_ns > config.http_timeout_ms * NS_PER_MS) {
        char reason[192];
        snprintf(reason, sizeof(reason), "no POST response within %ld ms", config.http_timeout_ms);
        http_fail(self, reason);
    }
}

/* --- ZeroMQ subscriber (zmq mode) --------------------------------------- */

static int open_subscriber(bench *self, char *error, size_t error_size)
{
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "org:%s:", config.org);
    self->zmq_context = zmq_ctx_new();
    self->subscriber = self->zmq_context ? zmq_socket(self->zmq_context, ZMQ_SUB) : NULL;
    if (!self->subscriber) {
        snprintf(error, error_size, "creating the ZeroMQ socket failed: %s", zmq_strerror(errno));
        return -1;
    }
    int unlimited = 0;
    int fd;
    size_t fd_len = sizeof(fd);
    if (zmq_setsockopt(self->subscriber, ZMQ_RCVHWM, &unlimited, sizeof(unlimited)) != 0 ||
        zmq_setsockopt(self->subscriber, ZMQ_SUBSCRIBE, prefix, strlen(prefix)) != 0 ||
        zmq_connect(self->subscriber, config.events_endpoint) != 0) {
        snprintf(error, error_size, "invalid --events-endpoint \"%s\": %s", config.events_endpoint, zmq_strerror(errno));
        return -1;
    }
    if (zmq_getsockopt(self->subscriber, ZMQ_FD, &fd, &fd_len) != 0 || watch_fd(self, fd, TAG_ZMQ, EPOLLIN) != 0) {
        snprintf(error, error_size, "watching the ZeroMQ socket failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Reads every event waiting on the subscriber. ZMQ_FD only signals a change
 * of state, so the socket is drained until it reports EAGAIN on every loop
 * turn, which re-arms the signal. */
static void drain_subscriber(bench *self)
{
    for (;;) {
        zmq_msg_t topic, body;
        zmq_msg_init(&topic);
        if (zmq_msg_recv(&topic, self->subscriber, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&topic);
            return;
        }
        int64_t now_ns = monotonic_ns();
        zmq_msg_init(&body);
        bool has_body = zmq_msg_more(&topic) && zmq_msg_recv(&body, self->subscriber, 0) >= 0;

        /* Events come as two frames; further frames are read and dropped. */
        bool more = has_body && zmq_msg_more(&body);
        while (more) {
            zmq_msg_t extra;
            zmq_msg_init(&extra);
            more = zmq_msg_recv(&extra, self->subscriber, 0) >= 0 && zmq_msg_more(&extra);
            zmq_msg_close(&extra);
        }

        /* The store echoes each subscription with an empty body on the
         * subscribed prefix; every event published after it arrives. */
        if (has_body && zmq_msg_size(&body) == 0) {
            self->subscription_live = true;
        } else {
            static const char suffix[] = ":message:new";
            size_t topic_len = zmq_msg_size(&topic);
            bool is_message =
                topic_len >= sizeof(suffix) - 1 &&
                memcmp((const char *)zmq_msg_data(&topic) + topic_len - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1) == 0;
            long seq = has_body && is_message ? find_seq(self, zmq_msg_data(&body), zmq_msg_size(&body)) : -1;
            if (seq >= 0)
                record_arrival(self, seq, 0, now_ns);
            else if (is_message)
                self->foreign_events++;
            else
                self->other_packets++;
        }
        zmq_msg_close(&topic);
        zmq_msg_close(&body);
    }
}

/* --- Loop --------------------------------------------------------------- */

/* Waits up to `timeout_ms` for sockets to become ready and handles them. */
static void loop_once(bench *self, int timeout_ms)
{
    struct epoll_event events[1024];
    int ready = epoll_wait(self->epoll_fd, events, (int)COUNT(events), timeout_ms);
    for (int i = 0; i < ready; i++) {
        uint64_t tag = events[i].data.u64;
        if (tag == TAG_HTTP) {
            if ((events[i].events & EPOLLOUT) && self->http.fd >= 0)
                http_flush(self);
            if ((events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && self->http.fd >= 0)
                http_read(self);
        } else if (tag != TAG_ZMQ) {
            on_client_event(self, &self->clients[tag], events[i].events);
        }
    }
    if (self->subscriber)
        drain_subscriber(self);
}

/* Closes every handshake past its deadline. */
static void expire_handshakes(bench *self, int64_t now_ns)
{
    char reason[192];
    for (long i = 0; i < self->started; i++) {
        ws_client *client = &self->clients[i];
        if (client->state > CLIENT_UNUSED && client->state < CLIENT_READY && client->deadline_ns <= now_ns) {
            snprintf(reason, sizeof(reason), "handshake timed out after %ld ms during %s", config.connect_timeout_ms,
                     client_state_names[client->state]);
            client_close(self, client, reason);
        }
    }
}

/* Opens every client, at most --connect-concurrency handshakes at a time,
 * and returns when each has reached the room or failed. */
static void connect_clients(bench *self)
{
    int64_t start_ns = monotonic_ns();
    int64_t next_check_ns = start_ns + DEADLINE_CHECK_NS;
    while ((self->started < config.connections || self->handshaking > 0) && !stop_requested) {
        while (self->started < config.connections && self->handshaking < config.connect_concurrency)
            start_client(self, self->started++);
        int64_t now_ns = monotonic_ns();
        if (now_ns >= next_check_ns) {
            expire_handshakes(self, now_ns);
            next_check_ns = now_ns + DEADLINE_CHECK_NS;
        }
        loop_once(self, 20);
    }
    self->connect_ns = monotonic_ns() - start_ns;
}

/* Runs the loop until `end_ns`, replying to pings and reading events. */
static void run_until(bench *self, int64_t end_ns)
{
    for (int64_t now_ns = monotonic_ns(); now_ns < end_ns && !stop_requested; now_ns = monotonic_ns()) {
        int64_t wait_ms = (end_ns - now_ns + NS_PER_MS - 1) / NS_PER_MS;
        loop_once(self, (int)(wait_ms < 100 ? wait_ms : 100));
        expire_post(self, monotonic_ns());
    }
}

/* Sends a close frame (1000) to every client in the room and closes its
 * socket without waiting for the server's reply. */
static void close_clients(bench *self)
{
    static const uint8_t normal_closure[2] = {0x03, 0xe8}; /* 1000 */
    for (long i = 0; i < self->started; i++) {
        ws_client *client = &self->clients[i];
        if (client->state == CLIENT_READY) {
            send_close_frame(client, normal_closure);
            self->ready--;
        } else if (client->state == CLIENT_CLOSED || client->state == CLIENT_UNUSED) {
            continue;
        } else {
            self->handshaking--;
        }
        if (client->fd >= 0)
            close(client->fd);
        client->fd = -1;
        client->state = CLIENT_CLOSED;
        buffer_free(&client->in);
        buffer_free(&client->out);
        buffer_free(&client->message);
    }
}

/* --- Server memory ------------------------------------------------------ */

/* Reads the value in kB after `key` in a /proc file of "Key:   123 kB"
 * lines, or -1. */
static long read_proc_kb(const char *path, const char *key)
{
    FILE *file = fopen(path, "r");
    if (!file)
        return -1;
    char line[256];
    long value = -1;
    size_t key_len = strlen(key);
    while (fgets(line, sizeof(line), file)) {
        if (strncmp(line, key, key_len) == 0) {
            value = strtol(line + key_len, NULL, 10);
            break;
        }
    }
    fclose(file);
    return value;
}

static long count_fds(long pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
    DIR *dir = opendir(path);
    if (!dir)
        return -1;
    long count = 0;
    for (struct dirent *entry = readdir(dir); entry; entry = readdir(dir)) {
        if (entry->d_name[0] != '.')
            count++;
    }
    closedir(dir);
    return count;
}

/* Reads the pages of memory that TCP sockets use on the whole machine, from
 * the "TCP: ... mem N" line of /proc/net/sockstat, or -1. */
static long read_tcp_mem_pages(void)
{
    FILE *file = fopen("/proc/net/sockstat", "r");
    if (!file)
        return -1;
    char line[256];
    long pages = -1;
    while (fgets(line, sizeof(line), file)) {
        const char *mem = strstr(line, " mem ");
        if (strncmp(line, "TCP:", 4) == 0 && mem) {
            pages = strtol(mem + 5, NULL, 10);
            break;
        }
    }
    fclose(file);
    return pages;
}

/* Reads the server's memory. Returns 0, or -1 when its status file cannot
 * be read, which means the process is gone. */
static int read_memory(long pid, memory_reading *out)
{
    char status_path[64], rollup_path[64];
    snprintf(status_path, sizeof(status_path), "/proc/%ld/status", pid);
    snprintf(rollup_path, sizeof(rollup_path), "/proc/%ld/smaps_rollup", pid);
    out->vm_rss_kb = read_proc_kb(status_path, "VmRSS:");
    out->rss_anon_kb = read_proc_kb(status_path, "RssAnon:");
    out->vm_hwm_kb = read_proc_kb(status_path, "VmHWM:");
    out->pss_kb = read_proc_kb(rollup_path, "Pss:");
    long private_clean = read_proc_kb(rollup_path, "Private_Clean:");
    long private_dirty = read_proc_kb(rollup_path, "Private_Dirty:");
    out->private_kb = private_clean >= 0 && private_dirty >= 0 ? private_clean + private_dirty : -1;
    out->fds = count_fds(pid);
    out->tcp_mem_pages = read_tcp_mem_pages();
    return out->vm_rss_kb >= 0 ? 0 : -1;
}

static json_t *memory_json(const memory_reading *reading)
{
    json_t *object = json_object();
    json_object_set_new(object, "vm_rss_kb", json_integer(reading->vm_rss_kb));
    json_object_set_new(object, "rss_anon_kb", json_integer(reading->rss_anon_kb));
    json_object_set_new(object, "vm_hwm_kb", json_integer(reading->vm_hwm_kb));
    json_object_set_new(object, "pss_kb", json_integer(reading->pss_kb));
    json_object_set_new(object, "private_kb", json_integer(reading->private_kb));
    json_object_set_new(object, "fds", json_integer(reading->fds));
    json_object_set_new(object, "tcp_mem_pages", json_integer(reading->tcp_mem_pages));
    return object;
}

static void memory_print(const char *label, const memory_reading *reading)
{
    fprintf(stderr, "  %-28s VmRSS %8ld kB, RssAnon %8ld kB, Pss %8ld kB, private %8ld kB, %6ld fds\n", label, reading->vm_rss_kb,
            reading->rss_anon_kb, reading->pss_kb, reading->private_kb, reading->fds);
}

/* Returns the growth from `before` to `after` per connection in bytes, or
 * -1 when either reading is missing. */
static double per_connection_bytes(long before_kb, long after_kb, long connections)
{
    if (before_kb < 0 || after_kb < 0 || connections <= 0)
        return -1;
    return (double)(after_kb - before_kb) * 1024.0 / (double)connections;
}

/* --- Common report parts ------------------------------------------------ */

static json_t *connect_json(const bench *self)
{
    json_t *object = json_object();
    json_object_set_new(object, "requested", json_integer(config.connections));
    json_object_set_new(object, "connected", json_integer(self->connected));
    json_object_set_new(object, "failed", json_integer((json_int_t)self->connect_failures.total));
    json_object_set_new(object, "failures", reason_table_json(&self->connect_failures));
    json_object_set_new(object, "concurrency", json_integer(config.connect_concurrency));
    json_object_set_new(object, "seconds", json_real((double)self->connect_ns / 1e9));
    return object;
}

static void connect_print(const bench *self)
{
    fprintf(stderr, "  connected %ld of %ld clients in %.2f s (%ld handshakes at a time)\n", self->connected, config.connections,
            (double)self->connect_ns / 1e9, config.connect_concurrency);
    reason_table_print(&self->connect_failures, "failed to connect");
}

static void print_json_line(json_t *result)
{
    char *text = json_dumps(result, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    printf("%s\n", text ? text : "null");
    fflush(stdout);
    free(text);
    json_decref(result);
}

/* --- Idle mode ---------------------------------------------------------- */

static int run_idle(bench *self)
{
    memory_reading baseline, connected, held, closed;
    if (read_memory(config.server_pid, &baseline) != 0) {
        fprintf(stderr, "helvino-wsbench: cannot read /proc/%ld/status: no such process, or no permission\n", config.server_pid);
        return EXIT_SETUP_FAILED;
    }
    connect_clients(self);
    if (self->connected == 0) {
        fprintf(stderr, "helvino-wsbench: no client connected to %s\n", config.realtime);
        reason_table_print(&self->connect_failures, "failed to connect");
        return EXIT_SETUP_FAILED;
    }
    bool alive = read_memory(config.server_pid, &connected) == 0;
    long open_connected = self->ready;

    run_until(self, monotonic_ns() + config.hold_ms * NS_PER_MS);
    alive = alive && read_memory(config.server_pid, &held) == 0;
    long open_held = self->ready;

    /* After closing, the server's descriptor count shows when it has let go
     * of the sockets, so the last reading does not race its cleanup. */
    close_clients(self);
    int64_t settle_end_ns = monotonic_ns() + CLOSE_SETTLE_TIMEOUT_NS;
    while (alive && count_fds(config.server_pid) > baseline.fds && monotonic_ns() < settle_end_ns && !stop_requested)
        loop_once(self, 50);
    alive = alive && read_memory(config.server_pid, &closed) == 0;
    if (!alive) {
        fprintf(stderr, "helvino-wsbench: the server process %ld disappeared during the run\n", config.server_pid);
        return EXIT_HAD_ERRORS;
    }

    double per_rss = per_connection_bytes(baseline.vm_rss_kb, held.vm_rss_kb, open_held);
    double per_anon = per_connection_bytes(baseline.rss_anon_kb, held.rss_anon_kb, open_held);
    double per_pss = per_connection_bytes(baseline.pss_kb, held.pss_kb, open_held);
    double per_tcp = baseline.tcp_mem_pages >= 0 && held.tcp_mem_pages >= 0 && open_held > 0
                         ? (double)(held.tcp_mem_pages - baseline.tcp_mem_pages) * (double)sysconf(_SC_PAGESIZE) / (double)open_held
                         : -1;

    json_t *result = json_object();
    json_object_set_new(result, "mode", json_string("idle"));
    json_object_set_new(result, "server_pid", json_integer(config.server_pid));
    json_object_set_new(result, "connect", connect_json(self));
    json_object_set_new(result, "hold_ms", json_integer(config.hold_ms));
    json_object_set_new(result, "open_after_connect", json_integer(open_connected));
    json_object_set_new(result, "open_after_hold", json_integer(open_held));
    json_object_set_new(result, "dropped", json_integer((json_int_t)self->drops.total));
    json_object_set_new(result, "drops", reason_table_json(&self->drops));
    json_object_set_new(result, "pings_answered", json_integer((json_int_t)self->pings_answered));
    json_t *memory = json_object();
    json_object_set_new(memory, "baseline", memory_json(&baseline));
    json_object_set_new(memory, "connected", memory_json(&connected));
    json_object_set_new(memory, "held", memory_json(&held));
    json_object_set_new(memory, "closed", memory_json(&closed));
    json_object_set_new(result, "memory", memory);
    json_t *per_connection = json_object();
    json_object_set_new(per_connection, "vm_rss_bytes", json_real(per_rss));
    json_object_set_new(per_connection, "rss_anon_bytes", json_real(per_anon));
    json_object_set_new(per_connection, "pss_bytes", json_real(per_pss));
    json_object_set_new(per_connection, "kernel_tcp_bytes_machine_wide", json_real(per_tcp));
    json_object_set_new(result, "per_connection", per_connection);
    json_object_set_new(result, "client_cpu_s", json_real(cpu_seconds()));
    json_object_set_new(result, "interrupted", json_boolean(stop_requested));
    print_json_line(result);

    fprintf(stderr, "helvino-wsbench: idle connections to %s, server pid %ld\n", config.realtime, config.server_pid);
    connect_print(self);
    fprintf(stderr, "  held %ld ms: %ld open after connecting, %ld after holding; %" PRIu64 " Engine.IO pings answered\n",
            config.hold_ms, open_connected, open_held, self->pings_answered);
    reason_table_print(&self->drops, "lost after connecting");
    memory_print("before connecting:", &baseline);
    memory_print("all connected:", &connected);
    memory_print("after holding:", &held);
    memory_print("after closing:", &closed);
    fprintf(stderr, "  per open connection after holding: VmRSS %.0f bytes, RssAnon %.0f bytes, Pss %.0f bytes\n", per_rss,
            per_anon, per_pss);
    fprintf(stderr, "  kernel TCP memory, whole machine and both ends: %.0f bytes per connection\n", per_tcp);

    bool failed = self->connect_failures.total > 0 || self->drops.total > 0 || stop_requested;
    return failed ? EXIT_HAD_ERRORS : 0;
}

/* --- Latency and zmq modes ---------------------------------------------- */

/* Returns {"p50":..,"p90":..,"p99":..,"max":..,"mean":..,"count":..} in
 * milliseconds for sorted values, with nulls when there are none. */
static json_t *latency_json(const latency_list *sorted)
{
    json_t *object = json_object();
    static const unsigned percents[] = {50, 90, 99, 100};
    static const char *const names[] = {"p50", "p90", "p99", "max"};
    double sum = 0;
    for (size_t i = 0; i < sorted->count; i++)
        sum += (double)sorted->values_ns[i];
    for (size_t i = 0; i < COUNT(percents); i++)
        json_object_set_new(object, names[i],
                            sorted->count ? json_real((double)latency_percentile_ns(sorted, percents[i]) / 1e6) : json_null());
    json_object_set_new(object, "mean", sorted->count ? json_real(sum / (double)sorted->count / 1e6) : json_null());
    json_object_set_new(object, "count", json_integer((json_int_t)sorted->count));
    return object;
}

static void latency_print(const char *label, const latency_list *sorted)
{
    if (sorted->count == 0) {
        fprintf(stderr, "  %s: none\n", label);
        return;
    }
    fprintf(stderr, "  %s in ms: p50 %.3f, p90 %.3f, p99 %.3f, max %.3f (%zu values)\n", label,
            (double)latency_percentile_ns(sorted, 50) / 1e6, (double)latency_percentile_ns(sorted, 90) / 1e6,
            (double)latency_percentile_ns(sorted, 99) / 1e6, (double)latency_percentile_ns(sorted, 100) / 1e6, sorted->count);
}

/* Returns true when every message in [first, last) has reached every
 * receiver it was expected at and no post waits for its response. */
static bool deliveries_complete(const bench *self, long first, long last)
{
    if (self->http.pending_seq != -1)
        return false;
    for (long seq = first; seq < last; seq++) {
        if (self->sent_ns[seq] != 0 && self->delivered[seq] < self->expected[seq])
            return false;
    }
    return true;
}

/* Posts messages [first, last) one --interval-ms apart, each after the
 * previous response, then waits up to --wait-ms for their deliveries. */
static void post_range(bench *self, long first, long last)
{
    int64_t start_ns = monotonic_ns();
    for (long seq = first; seq < last && !stop_requested; seq++) {
        int64_t due_ns = start_ns + (seq - first) * config.interval_ms * NS_PER_MS;
        for (int64_t now_ns = monotonic_ns(); (now_ns < due_ns || self->http.pending_seq != -1) && !stop_requested;
             now_ns = monotonic_ns()) {
            /* Rounded up, so that the loop sleeps instead of spinning in
             * the last millisecond before the post is due. */
            int64_t wait_ms = now_ns < due_ns ? (due_ns - now_ns + NS_PER_MS - 1) / NS_PER_MS : 1;
            loop_once(self, (int)(wait_ms < 10 ? wait_ms : 10));
            expire_post(self, monotonic_ns());
        }
        if (post_message(self, seq) != 0)
            break;
    }

    int64_t deadline_ns = monotonic_ns() + config.wait_ms * NS_PER_MS;
    while (!deliveries_complete(self, first, last) && monotonic_ns() < deadline_ns && !stop_requested) {
        loop_once(self, 10);
        expire_post(self, monotonic_ns());
    }
}

/* Waits until the store has echoed the subscription. Returns 0, or -1
 * after SUBSCRIBE_TIMEOUT_NS. */
static int wait_for_subscription(bench *self)
{
    int64_t deadline_ns = monotonic_ns() + SUBSCRIBE_TIMEOUT_NS;
    while (!self->subscription_live && !stop_requested) {
        if (monotonic_ns() >= deadline_ns)
            return -1;
        loop_once(self, 10);
    }
    return 0;
}

static int allocate_messages(bench *self)
{
    self->total_messages = config.warmup_messages + config.messages;
    size_t total = (size_t)self->total_messages;
    self->sent_ns = calloc(total, sizeof(*self->sent_ns));
    self->post_ns = calloc(total, sizeof(*self->post_ns));
    self->expected = calloc(total, sizeof(*self->expected));
    self->delivered = calloc(total, sizeof(*self->delivered));
    self->arrivals = calloc(total * (size_t)self->receivers, sizeof(*self->arrivals));
    self->content = malloc((size_t)config.content_bytes);
    if (!self->sent_ns || !self->post_ns || !self->expected || !self->delivered || !self->arrivals || !self->content) {
        fprintf(stderr, "helvino-wsbench: out of memory for %ld messages to %ld receivers\n", self->total_messages,
                self->receivers);
        return -1;
    }
    memset(self->content, 'x', (size_t)config.content_bytes);
    return 0;
}

/* Counts the deliveries of messages [first, last) that were expected but
 * never arrived. */
static uint64_t missing_deliveries(const bench *self, long first, long last)
{
    uint64_t missing = 0;
    for (long seq = first; seq < last; seq++) {
        if (self->delivered[seq] < self->expected[seq])
            missing += (uint64_t)(self->expected[seq] - self->delivered[seq]);
    }
    return missing;
}

static int report_latency(bench *self, double client_cpu_s)
{
    long first = config.warmup_messages, last = self->total_messages;
    latency_list deliveries = {malloc(((size_t)(last - first) * (size_t)self->receivers + 1) * sizeof(int64_t)), 0, 0};
    latency_list first_arrivals = {malloc(((size_t)(last - first) + 1) * sizeof(int64_t)), 0, 0};
    latency_list last_arrivals = {malloc(((size_t)(last - first) + 1) * sizeof(int64_t)), 0, 0};
    latency_list posts = {malloc(((size_t)(last - first) + 1) * sizeof(int64_t)), 0, 0};
    if (!deliveries.values_ns || !first_arrivals.values_ns || !last_arrivals.values_ns || !posts.values_ns) {
        fprintf(stderr, "helvino-wsbench: out of memory for the report\n");
        free(deliveries.values_ns);
        free(first_arrivals.values_ns);
        free(last_arrivals.values_ns);
        free(posts.values_ns);
        return EXIT_HAD_ERRORS;
    }

    long posted = 0;
    uint64_t expected = 0;
    for (long seq = first; seq < last; seq++) {
        if (self->sent_ns[seq] == 0)
            continue;
        posted++;
        expected += (uint64_t)self->expected[seq];
        int64_t earliest_ns = INT64_MAX, latest_ns = 0;
        for (long receiver = 0; receiver < self->receivers; receiver++) {
            int64_t arrived_ns = self->arrivals[(size_t)seq * (size_t)self->receivers + (size_t)receiver];
            if (arrived_ns == 0)
                continue;
            deliveries.values_ns[deliveries.count++] = arrived_ns - self->sent_ns[seq];
            if (arrived_ns < earliest_ns)
                earliest_ns = arrived_ns;
            if (arrived_ns > latest_ns)
                latest_ns = arrived_ns;
        }
        if (latest_ns != 0)
            first_arrivals.values_ns[first_arrivals.count++] = earliest_ns - self->sent_ns[seq];
        if (self->delivered[seq] >= self->expected[seq] && latest_ns != 0)
            last_arrivals.values_ns[last_arrivals.count++] = latest_ns - self->sent_ns[seq];
        if (self->post_ns[seq] != 0)
            posts.values_ns[posts.count++] = self->post_ns[seq];
    }
    latency_sort(&deliveries);
    latency_sort(&first_arrivals);
    latency_sort(&last_arrivals);
    latency_sort(&posts);
    uint64_t missing = missing_deliveries(self, first, last);
    uint64_t warmup_missing = missing_deliveries(self, 0, first);

    json_t *result = json_object();
    json_object_set_new(result, "mode", json_string(self->mode == MODE_ZMQ ? "zmq" : "latency"));
    if (self->mode == MODE_LATENCY)
        json_object_set_new(result, "connect", connect_json(self));
    json_object_set_new(result, "receivers", json_integer(self->mode == MODE_ZMQ ? 1 : self->connected));
    json_object_set_new(result, "messages", json_integer(posted));
    json_object_set_new(result, "interval_ms", json_integer(config.interval_ms));
    json_object_set_new(result, "content_bytes", json_integer(config.content_bytes));
    json_object_set_new(result, "deliveries_expected", json_integer((json_int_t)expected));
    json_object_set_new(result, "delivered", json_integer((json_int_t)deliveries.count));
    json_object_set_new(result, "missing", json_integer((json_int_t)missing));
    json_object_set_new(result, "duplicates", json_integer((json_int_t)self->duplicates));
    json_object_set_new(result, "latency_ms", latency_json(&deliveries));
    json_object_set_new(result, "first_receiver_ms", latency_json(&first_arrivals));
    json_object_set_new(result, "last_receiver_ms", latency_json(&last_arrivals));
    json_object_set_new(result, "post_response_ms", latency_json(&posts));
    json_object_set_new(result, "post_failed", json_integer((json_int_t)self->post_failures.total));
    json_object_set_new(result, "post_failures", reason_table_json(&self->post_failures));
    json_object_set_new(result, "warmup_messages", json_integer(config.warmup_messages));
    json_object_set_new(result, "warmup_missing", json_integer((json_int_t)warmup_missing));
    json_object_set_new(result, "dropped", json_integer((json_int_t)self->drops.total));
    json_object_set_new(result, "drops", reason_table_json(&self->drops));
    json_object_set_new(result, "foreign_events", json_integer((json_int_t)self->foreign_events));
    json_object_set_new(result, "client_cpu_s", json_real(client_cpu_s));
    json_object_set_new(result, "interrupted", json_boolean(stop_requested));
    print_json_line(result);

    if (self->mode == MODE_ZMQ) {
        fprintf(stderr, "helvino-wsbench: POST to %s, event to a ZeroMQ subscriber of %s (org %s)\n", config.gateway,
                config.events_endpoint, config.org);
    } else {
        fprintf(stderr, "helvino-wsbench: POST to %s, message:new to Socket.IO clients of %s\n", config.gateway, config.realtime);
        connect_print(self);
    }
    fprintf(stderr, "  %ld messages of %ld bytes, one every %ld ms, after %ld warm-up messages\n", posted, config.content_bytes,
            config.interval_ms, config.warmup_messages);
    fprintf(stderr,
            "  deliveries: %" PRIu64 " expected, %zu arrived, %" PRIu64 " missing after waiting up to %ld ms, %" PRIu64
            " duplicates\n",
            expected, deliveries.count, missing, config.wait_ms, self->duplicates);
    latency_print("POST to event, every delivery", &deliveries);
    latency_print("POST to event at the first receiver", &first_arrivals);
    latency_print("POST to event at the last receiver", &last_arrivals);
    latency_print("POST to 201 response", &posts);
    if (warmup_missing > 0)
        fprintf(stderr, "  warm-up deliveries missing: %" PRIu64 "\n", warmup_missing);
    reason_table_print(&self->post_failures, "failed posts");
    reason_table_print(&self->drops, "clients lost after connecting");
    if (self->foreign_events > 0)
        fprintf(stderr, "  %" PRIu64 " message:new events without this run's marker were ignored\n", self->foreign_events);
    fprintf(stderr, "  client CPU time: %.2f s\n", client_cpu_s);

    free(deliveries.values_ns);
    free(first_arrivals.values_ns);
    free(last_arrivals.values_ns);
    free(posts.values_ns);
    bool failed = missing > 0 || warmup_missing > 0 || self->post_failures.total > 0 || self->drops.total > 0 ||
                  self->connect_failures.total > 0 || stop_requested;
    return failed ? EXIT_HAD_ERRORS : 0;
}

static int run_latency(bench *self)
{
    char error[256];
    self->receivers = self->mode == MODE_ZMQ ? 1 : config.connections;
    if (allocate_messages(self) != 0)
        return EXIT_SETUP_FAILED;

    if (self->mode == MODE_ZMQ) {
        if (open_subscriber(self, error, sizeof(error)) != 0) {
            fprintf(stderr, "helvino-wsbench: %s\n", error);
            return EXIT_SETUP_FAILED;
        }
    } else {
        connect_clients(self);
        if (self->connected == 0) {
            fprintf(stderr, "helvino-wsbench: no client connected to %s\n", config.realtime);
            reason_table_print(&self->connect_failures, "failed to connect");
            return EXIT_SETUP_FAILED;
        }
    }
    if (http_connect(self, error, sizeof(error)) != 0) {
        fprintf(stderr, "helvino-wsbench: %s\n", error);
        return EXIT_SETUP_FAILED;
    }
    if (self->mode == MODE_ZMQ && wait_for_subscription(self) != 0) {
        fprintf(stderr,
                "helvino-wsbench: the store did not echo the subscription to \"org:%s:\" within %" PRId64 " ms; is "
                "--events-endpoint (%s) the event socket of a running helvino-store?\n",
                config.org, SUBSCRIBE_TIMEOUT_NS / NS_PER_MS, config.events_endpoint);
        return EXIT_SETUP_FAILED;
    }

    double cpu_before_s = cpu_seconds();
    post_range(self, 0, config.warmup_messages);
    post_range(self, config.warmup_messages, self->total_messages);
    double client_cpu_s = cpu_seconds() - cpu_before_s;
    close_clients(self);
    return report_latency(self, client_cpu_s);
}

/* --- Setup -------------------------------------------------------------- */

/* Raises the descriptor limit to the hard limit: each client needs one. */
static void raise_fd_limit(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return;
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
        fprintf(stderr, "helvino-wsbench: raising the descriptor limit to %llu failed: %s\n", (unsigned long long)limit.rlim_max,
                strerror(errno));
}

static bool is_conversation_id(const char *text)
{
    size_t len = strlen(text);
    if (len == 0 || len > 64)
        return false;
    return strspn(text, "0123456789abcdefABCDEF-") == len;
}

static bool is_header_safe(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return false;
    }
    return true;
}

/* Checks the settings that depend on the mode. Returns 0, or -1 after
 * printing what is wrong. */
static int check_settings(bench *self)
{
    if (strcmp(config.mode, "idle") == 0)
        self->mode = MODE_IDLE;
    else if (strcmp(config.mode, "latency") == 0)
        self->mode = MODE_LATENCY;
    else if (strcmp(config.mode, "zmq") == 0)
        self->mode = MODE_ZMQ;
    else {
        fprintf(stderr, "helvino-wsbench: invalid --mode \"%s\": expected idle, latency or zmq\n", config.mode);
        return -1;
    }

    char error[256];
    if (self->mode != MODE_ZMQ &&
        resolve_host_port(config.realtime, &self->realtime_address, &self->realtime_address_len, error, sizeof(error)) != 0) {
        fprintf(stderr, "helvino-wsbench: invalid --realtime \"%s\": %s\n", config.realtime, error);
        return -1;
    }
    if (self->mode == MODE_IDLE && config.server_pid == 0) {
        fprintf(stderr, "helvino-wsbench: the idle mode needs --server-pid, the process id of helvino-realtime\n");
        return -1;
    }
    if (self->mode != MODE_IDLE) {
        if (resolve_host_port(config.gateway, &self->gateway_address, &self->gateway_address_len, error, sizeof(error)) != 0) {
            fprintf(stderr, "helvino-wsbench: invalid --gateway \"%s\": %s\n", config.gateway, error);
            return -1;
        }
        if (!config.conversation[0]) {
            fprintf(stderr, "helvino-wsbench: missing --conversation: expected the id of a conversation of the org, as "
                            "POST /conversations returns it\n");
            return -1;
        }
        if (!is_conversation_id(config.conversation)) {
            fprintf(stderr, "helvino-wsbench: invalid --conversation \"%s\": expected a UUID such as POST /conversations returns\n",
                    config.conversation);
            return -1;
        }
        if ((double)(config.warmup_messages + config.messages) * (double)config.connections > 50e6) {
            fprintf(stderr, "helvino-wsbench: --messages plus --warmup-messages times --connections is more than 50 million "
                            "deliveries; use fewer\n");
            return -1;
        }
    }
    if (!config.org_key[0] || strlen(config.org_key) > 256 || !is_header_safe(config.org_key)) {
        fprintf(stderr, "helvino-wsbench: invalid --org-key: expected 1 to 256 characters without control characters\n");
        return -1;
    }
    if (self->mode == MODE_ZMQ && !config.events_endpoint[0]) {
        fprintf(stderr, "helvino-wsbench: missing --events-endpoint: expected the store's event endpoint\n");
        return -1;
    }
    if (self->mode == MODE_ZMQ && !hv_org_id_is_valid(config.org, strlen(config.org))) {
        fprintf(stderr, "helvino-wsbench: invalid --org \"%s\": expected 1 to 64 characters from A-Z a-z 0-9 _ -\n", config.org);
        return -1;
    }
    return 0;
}

static int set_up(bench *self)
{
    uint8_t seed[12];
    if (fill_random(seed, sizeof(seed)) != 0) {
        fprintf(stderr, "helvino-wsbench: getrandom failed: %s\n", strerror(errno));
        return -1;
    }
    memcpy(&mask_state, seed, sizeof(mask_state));
    mask_state |= 1; /* an all-zero xorshift state would stay zero */
    uint32_t run_id;
    memcpy(&run_id, seed + 8, sizeof(run_id));
    self->marker_len = (size_t)snprintf(self->marker, sizeof(self->marker), "wsbench-%08" PRIx32 "-", run_id);

    self->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    self->clients = self->mode == MODE_ZMQ ? NULL : calloc((size_t)config.connections, sizeof(*self->clients));
    if (self->epoll_fd < 0 || (self->mode != MODE_ZMQ && !self->clients)) {
        fprintf(stderr, "helvino-wsbench: setting up %ld clients failed: %s\n", config.connections, strerror(errno));
        return -1;
    }
    return 0;
}

static void bench_destroy(bench *self)
{
    close_clients(self);
    free(self->clients);
    http_close(self);
    buffer_free(&self->http.in);
    buffer_free(&self->http.out);
    if (self->subscriber)
        zmq_close(self->subscriber);
    if (self->zmq_context)
        zmq_ctx_term(self->zmq_context);
    if (self->epoll_fd >= 0)
        close(self->epoll_fd);
    free(self->sent_ns);
    free(self->post_ns);
    free(self->expected);
    free(self->delivered);
    free(self->arrivals);
    free(self->content);
}

static void print_help(void)
{
    hv_config_print_usage(settings, COUNT(settings), "helvino-wsbench", "[OPTIONS]");
    printf("\nExamples:\n"
           "  helvino-wsbench --mode idle --connections 10000 --server-pid PID --hold-ms 30000\n"
           "  helvino-wsbench --mode latency --connections 1000 --conversation ID --messages 200\n"
           "  helvino-wsbench --mode zmq --events-endpoint tcp://127.0.0.1:5556 --org org_1 --conversation ID\n"
           "\nPrints one JSON line with the results on standard output and a summary on standard error.\n"
           "Latencies run from just before a POST is written to the read that returned the event, on\n"
           "CLOCK_MONOTONIC. Exit status: 0 no failure, 1 some connections, posts or deliveries failed\n"
           "(the results are still printed), 2 bad usage, 3 nothing could be measured.\n");
}

int main(int argc, char **argv)
{
    char error[256];
    int loaded = hv_config_load(settings, COUNT(settings), argc, argv, NULL, error, sizeof(error));
    if (loaded == HV_CONFIG_HELP) {
        print_help();
        return 0;
    }
    if (loaded == HV_CONFIG_ERROR) {
        fprintf(stderr, "helvino-wsbench: %s\n", error);
        return EXIT_USAGE;
    }
    bench self = {.epoll_fd = -1, .http = {.fd = -1, .pending_seq = -1}};
    if (check_settings(&self) != 0)
        return EXIT_USAGE;

    raise_fd_limit();
    struct sigaction stop = {.sa_handler = on_stop_signal};
    sigaction(SIGINT, &stop, NULL);
    sigaction(SIGTERM, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    int status = EXIT_SETUP_FAILED;
    if (set_up(&self) == 0)
        status = self.mode == MODE_IDLE ? run_idle(&self) : run_latency(&self);
    bench_destroy(&self);
    return status;
}
