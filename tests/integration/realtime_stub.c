/* The stub real-time service. One thread accepts connections, and one
 * thread per connection reads requests and responds to them. Every wait also
 * watches an eventfd that realtime_stub_stop signals, so that stopping never
 * waits for a peer. The threads never call Criterion. On any error they close
 * the connection, and the test finds the result through the gateway. */
#include "realtime_stub.h"
#include "http_head.h"
#include "hv_time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNECTIONS 64
#define HEAD_MAX_BYTES 16384
#define BODY_MAX_BYTES (4 * 1024 * 1024)

struct realtime_stub {
    int port;
    int listen_fd;
    int stop_fd; /* eventfd, readable once realtime_stub_stop has begun */
    pthread_t acceptor;
    pthread_mutex_t lock; /* guards the fields below */
    int requests;
    size_t connection_count;
    pthread_t threads[MAX_CONNECTIONS];
    int fds[MAX_CONNECTIONS]; /* -1 once the connection's thread has closed it */
};

typedef struct {
    realtime_stub *stub;
    size_t slot;
    int fd;
    char *buffer; /* HEAD_MAX_BYTES + BODY_MAX_BYTES bytes */
    size_t buffered;
} connection;

typedef struct {
    char method[16];
    char target[2048];
    size_t head_len; /* up to and including the blank line */
    size_t content_length;
    long delay_ms;
    bool upgrade_websocket;
    char websocket_key[64];
} request;

/* Waits until `fd` has `events` or the stub stops. Returns whether `fd` is
 * ready; false on stop, error or after `timeout_ms` (-1 waits without end). */
static bool wait_ready(realtime_stub *stub, int fd, short events, int timeout_ms)
{
    struct pollfd fds[2] = {{.fd = fd, .events = events}, {.fd = stub->stop_fd, .events = POLLIN}};
    for (;;) {
        int ready = poll(fds, 2, timeout_ms);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0 || fds[1].revents)
            return false;
        return fds[0].revents != 0;
    }
}

/* Waits `delay_ms` milliseconds. Returns false when the stub stopped first. */
static bool pause_unless_stopped(realtime_stub *stub, long delay_ms)
{
    struct pollfd stop = {.fd = stub->stop_fd, .events = POLLIN};
    int64_t deadline_ms = hv_time_monotonic_ms() + delay_ms;
    for (;;) {
        int64_t remaining_ms = deadline_ms - hv_time_monotonic_ms();
        if (remaining_ms <= 0)
            return true;
        int ready = poll(&stop, 1, (int)remaining_ms);
        if (ready > 0 || (ready < 0 && errno != EINTR))
            return false;
    }
}

static bool send_all(connection *conn, const char *data, size_t len)
{
    while (len > 0) {
        if (!wait_ready(conn->stub, conn->fd, POLLOUT, -1))
            return false;
        ssize_t sent = send(conn->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (sent <= 0)
            return false;
        data += sent;
        len -= (size_t)sent;
    }
    return true;
}

/* Reads more bytes into the connection's buffer. Returns false on end of
 * stream, error, a full buffer or stop. */
static bool read_more(connection *conn)
{
    size_t room = HEAD_MAX_BYTES + BODY_MAX_BYTES - conn->buffered;
    if (room == 0 || !wait_ready(conn->stub, conn->fd, POLLIN, -1))
        return false;
    ssize_t received = recv(conn->fd, conn->buffer + conn->buffered, room, 0);
    if (received <= 0)
        return false;
    conn->buffered += (size_t)received;
    return true;
}

/* Reads one request's head and body into the buffer. Returns false when the
 * connection ended or sent something this stub does not read. */
static bool read_request(connection *conn, request *req)
{
    char *end;
    while (!(end = memmem(conn->buffer, conn->buffered, "\r\n\r\n", 4))) {
        if (conn->buffered >= HEAD_MAX_BYTES || !read_more(conn))
            return false;
    }
    *req = (request){.head_len = (size_t)(end - conn->buffer) + 4};
    char *head = conn->buffer;
    char saved = head[req->head_len - 1];
    head[req->head_len - 1] = '\0';

    char value[128];
    bool parsed = sscanf(head, "%15s %2047s", req->method, req->target) == 2;
    if (http_head_find_header(head, "content-length", value, sizeof(value)))
        req->content_length = strtoul(value, NULL, 10);
    if (http_head_find_header(head, STUB_DELAY_HEADER, value, sizeof(value)))
        req->delay_ms = strtol(value, NULL, 10);
    req->upgrade_websocket = http_head_find_header(head, "upgrade", value, sizeof(value)) && strcasecmp(value, "websocket") == 0 &&
                             http_head_find_header(head, "sec-websocket-key", req->websocket_key, sizeof(req->websocket_key));
    head[req->head_len - 1] = saved;
    if (!parsed || req->content_length > BODY_MAX_BYTES)
        return false;

    while (conn->buffered < req->head_len + req->content_length) {
        if (!read_more(conn))
            return false;
    }
    pthread_mutex_lock(&conn->stub->lock);
    conn->stub->requests++;
    pthread_mutex_unlock(&conn->stub->lock);
    return true;
}

/* Drops the request just handled from the buffer, keeping what follows. */
static void consume_request(connection *conn, const request *req)
{
    size_t used = req->head_len + req->content_length;
    memmove(conn->buffer, conn->buffer + used, conn->buffered - used);
    conn->buffered -= used;
}

static bool send_response(connection *conn, const request *req, int status, const char *reason, const char *extra_headers,
                          const char *body, size_t body_len)
{
    char head[4096];
    int head_len = snprintf(head, sizeof(head),
                            "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: %zu\r\n"
                            "Access-Control-Allow-Origin: " STUB_ALLOWED_ORIGIN "\r\n" STUB_TARGET_HEADER ": %s\r\n%s\r\n",
                            status, reason, body_len, req->target, extra_headers);
    bool is_head = strcmp(req->method, "HEAD") == 0;
    return send_all(conn, head, (size_t)head_len) && (is_head || send_all(conn, body, body_len));
}

/* Accepts the upgrade, then sends back every byte until the peer closes. */
static void serve_websocket(connection *conn, const request *req)
{
    char accept[29];
    websocket_accept_value(req->websocket_key, accept);
    char head[512];
    int head_len = snprintf(head, sizeof(head),
                            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Accept: %s\r\n\r\n" STUB_GREETING,
                            accept);
    if (!send_all(conn, head, (size_t)head_len))
        return;

    /* Bytes that came right behind the request are the first to echo. */
    consume_request(conn, req);
    if (conn->buffered && !send_all(conn, conn->buffer, conn->buffered))
        return;
    for (;;) {
        if (!wait_ready(conn->stub, conn->fd, POLLIN, -1))
            return;
        ssize_t received = recv(conn->fd, conn->buffer, HEAD_MAX_BYTES, 0);
        if (received <= 0 || !send_all(conn, conn->buffer, (size_t)received))
            return;
    }
}

/* Responds to one request other than an upgrade. Returns whether the
 * connection stays usable. */
static bool serve_request(connection *conn, const request *req)
{
    const char *body = conn->buffer + req->head_len;
    if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0) {
        if (strstr(req->target, STUB_UNKNOWN_SID))
            return send_response(conn, req, 400, "Bad Request", "", STUB_UNKNOWN_SID_BODY, strlen(STUB_UNKNOWN_SID_BODY));
        return send_response(conn, req, 200, "OK", "", STUB_POLL_BODY, strlen(STUB_POLL_BODY));
    }
    if (strcmp(req->method, "POST") == 0)
        return send_response(conn, req, 200, "OK", "", body, req->content_length);
    if (strcmp(req->method, "OPTIONS") == 0)
        return send_response(conn, req, 204, "No Content", "Access-Control-Allow-Methods: GET, POST\r\n", "", 0);
    return send_response(conn, req, 405, "Method Not Allowed", "", "", 0);
}

static void *serve_connection(void *data)
{
    connection *conn = data;
    request req;
    while (read_request(conn, &req)) {
        /* A delayed request that the stub stops during is left unanswered. */
        if (req.delay_ms > 0 && !pause_unless_stopped(conn->stub, req.delay_ms))
            break;
        if (req.upgrade_websocket) {
            serve_websocket(conn, &req);
            break;
        }
        if (!serve_request(conn, &req))
            break;
        consume_request(conn, &req);
    }

    pthread_mutex_lock(&conn->stub->lock);
    conn->stub->fds[conn->slot] = -1;
    pthread_mutex_unlock(&conn->stub->lock);
    close(conn->fd);
    free(conn->buffer);
    free(conn);
    return NULL;
}

static void start_connection(realtime_stub *stub, int fd)
{
    connection *conn = calloc(1, sizeof(*conn));
    char *buffer = malloc(HEAD_MAX_BYTES + BODY_MAX_BYTES);
    pthread_mutex_lock(&stub->lock);
    bool has_room = stub->connection_count < MAX_CONNECTIONS && conn && buffer;
    if (has_room) {
        *conn = (connection){.stub = stub, .slot = stub->connection_count, .fd = fd, .buffer = buffer};
        stub->fds[conn->slot] = fd;
        has_room = pthread_create(&stub->threads[conn->slot], NULL, serve_connection, conn) == 0;
        if (has_room)
            stub->connection_count++;
        else
            stub->fds[conn->slot] = -1;
    }
    pthread_mutex_unlock(&stub->lock);
    if (!has_room) {
        close(fd);
        free(buffer);
        free(conn);
    }
}

static void *accept_connections(void *data)
{
    realtime_stub *stub = data;
    while (wait_ready(stub, stub->listen_fd, POLLIN, -1)) {
        int fd = accept4(stub->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            start_connection(stub, fd);
    }
    return NULL;
}

static int open_listener(int port, int *bound_port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int reuse = 1;
    struct sockaddr_in address = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t address_len = sizeof(address);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof(reuse)) != 0 ||
        bind(fd, (struct sockaddr *)&address, sizeof(address)) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&address, &address_len) != 0) {
        int saved_errno = errno;
        close(fd);
        errno = saved_errno;
        return -1;
    }
    *bound_port = ntohs(address.sin_port);
    return fd;
}

realtime_stub *realtime_stub_start(int port)
{
    realtime_stub *stub = calloc(1, sizeof(*stub));
    if (!stub)
        return NULL;
    stub->listen_fd = open_listener(port, &stub->port);
    stub->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_mutex_init(&stub->lock, NULL);
    if (stub->listen_fd >= 0 && stub->stop_fd >= 0 && pthread_create(&stub->acceptor, NULL, accept_connections, stub) == 0)
        return stub;

    int saved_errno = errno;
    if (stub->listen_fd >= 0)
        close(stub->listen_fd);
    if (stub->stop_fd >= 0)
        close(stub->stop_fd);
    pthread_mutex_destroy(&stub->lock);
    free(stub);
    errno = saved_errno;
    return NULL;
}

int realtime_stub_port(const realtime_stub *stub)
{
    return stub->port;
}

int realtime_stub_request_count(realtime_stub *stub)
{
    pthread_mutex_lock(&stub->lock);
    int count = stub->requests;
    pthread_mutex_unlock(&stub->lock);
    return count;
}

void realtime_stub_stop(realtime_stub **stub_pointer)
{
    realtime_stub *stub = stub_pointer ? *stub_pointer : NULL;
    if (!stub)
        return;

    uint64_t one = 1;
    if (write(stub->stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
        perror("realtime_stub_stop: write to the eventfd");
    pthread_join(stub->acceptor, NULL);
    close(stub->listen_fd);

    /* The acceptor has ended, so no connection is added any more. Shutting
     * the sockets down closes them for the peers now, not when each thread
     * gets to it. */
    pthread_mutex_lock(&stub->lock);
    for (size_t i = 0; i < stub->connection_count; i++) {
        if (stub->fds[i] >= 0)
            shutdown(stub->fds[i], SHUT_RDWR);
    }
    pthread_mutex_unlock(&stub->lock);
    for (size_t i = 0; i < stub->connection_count; i++)
        pthread_join(stub->threads[i], NULL);

    close(stub->stop_fd);
    pthread_mutex_destroy(&stub->lock);
    free(stub);
    *stub_pointer = NULL;
}
