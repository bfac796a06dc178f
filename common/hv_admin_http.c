/* The store's admin listener: one request per connection, served from a
 * registry's metrics. An epoll descriptor gathers the listener, the
 * connections and a timerfd for their deadlines, so the caller watches one
 * descriptor. */
#include "hv_admin_http.h"
#include "hv_time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* epoll tags of the two descriptors that are not connections; a connection
 * is tagged with its index. */
#define TAG_LISTENER HV_ADMIN_MAX_CONNECTIONS
#define TAG_TIMER (HV_ADMIN_MAX_CONNECTIONS + 1)

typedef struct {
    int fd; /* -1 when the slot is free */
    char request[HV_ADMIN_MAX_REQUEST_BYTES];
    size_t received;
    char *response; /* NULL until the request head is complete */
    size_t response_len;
    size_t sent;
    int64_t deadline_ms; /* monotonic time at which the connection is dropped */
} connection;

struct hv_admin_http {
    int listen_fd;
    int epoll_fd;
    int timer_fd;
    hv_metrics *registry;
    hv_admin_collect_cb collect;
    void *data;
    connection connections[HV_ADMIN_MAX_CONNECTIONS];
};

/* --- The listening socket ------------------------------------------------- */

static bool address_is_loopback(const struct sockaddr *address)
{
    if (address->sa_family == AF_INET) {
        const struct sockaddr_in *ipv4 = (const struct sockaddr_in *)address;
        return (ntohl(ipv4->sin_addr.s_addr) >> 24) == 127;
    }
    if (address->sa_family == AF_INET6) {
        const struct in6_addr *ipv6 = &((const struct sockaddr_in6 *)address)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(ipv6) || (IN6_IS_ADDR_V4MAPPED(ipv6) && ipv6->s6_addr[12] == 127);
    }
    return false;
}

static void format_address(const struct sockaddr_storage *address, char *out)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (address->ss_family == AF_INET) {
        const struct sockaddr_in *ipv4 = (const struct sockaddr_in *)address;
        inet_ntop(AF_INET, &ipv4->sin_addr, host, sizeof(host));
        port = ntohs(ipv4->sin_port);
        snprintf(out, HV_ADMIN_ADDRESS_SIZE, "%s:%d", host, port);
        return;
    }
    const struct sockaddr_in6 *ipv6 = (const struct sockaddr_in6 *)address;
    inet_ntop(AF_INET6, &ipv6->sin6_addr, host, sizeof(host));
    port = ntohs(ipv6->sin6_port);
    snprintf(out, HV_ADMIN_ADDRESS_SIZE, "[%s]:%d", host, port);
}

int hv_admin_listen(const char *address, char *bound, char *error, size_t error_size)
{
    char host[256];
    const char *colon = strrchr(address, ':');
    if (!colon || colon == address || !colon[1] || (size_t)(colon - address) >= sizeof(host)) {
        snprintf(error, error_size, "invalid metrics address \"%s\": expected HOST:PORT or \"%s\"", address, HV_ADMIN_OFF);
        return HV_ADMIN_INVALID_ADDRESS;
    }
    /* getaddrinfo would take a port above 65535 modulo 65536. */
    const char *port = colon + 1;
    if (strspn(port, "0123456789") != strlen(port) || strlen(port) > 5 || atol(port) > 65535) {
        snprintf(error, error_size, "invalid metrics address \"%s\": the port must be a number from 0 to 65535", address);
        return HV_ADMIN_INVALID_ADDRESS;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - address), address);
    size_t host_len = strlen(host);
    if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
        memmove(host, host + 1, host_len - 2);
        host[host_len - 2] = '\0';
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    int status = getaddrinfo(host, port, &hints, &found);
    if (status != 0) {
        snprintf(error, error_size, "invalid metrics address \"%s\": %s", address, gai_strerror(status));
        return HV_ADMIN_INVALID_ADDRESS;
    }
    if (!address_is_loopback(found->ai_addr)) {
        snprintf(error, error_size,
                 "invalid metrics address \"%s\": it must be a loopback address (127.0.0.0/8 or [::1]), because the "
                 "metrics are not for other hosts",
                 address);
        freeaddrinfo(found);
        return HV_ADMIN_INVALID_ADDRESS;
    }

    int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int reuse = 1;
    struct sockaddr_storage local;
    socklen_t local_len = sizeof(local);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof(reuse)) != 0 ||
        bind(fd, found->ai_addr, found->ai_addrlen) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&local, &local_len) != 0) {
        snprintf(error, error_size, "cannot listen on %s for metrics: %s", address, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    } else {
        format_address(&local, bound);
    }
    freeaddrinfo(found);
    return fd;
}

/* --- Connections --------------------------------------------------------- */

static void close_connection(hv_admin_http *server, connection *conn)
{
    epoll_ctl(server->epoll_fd, EPOLL_CTL_DEL, conn->fd, NULL);
    close(conn->fd);
    free(conn->response);
    conn->fd = -1;
    conn->response = NULL;
}

static connection *free_slot(hv_admin_http *server)
{
    for (int i = 0; i < HV_ADMIN_MAX_CONNECTIONS; i++)
        if (server->connections[i].fd < 0)
            return &server->connections[i];
    return NULL;
}

static void accept_connections(hv_admin_http *server)
{
    for (;;) {
        int fd = accept4(server->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        connection *conn = free_slot(server);
        struct epoll_event watch = {.events = EPOLLIN, .data.u64 = conn ? (uint64_t)(conn - server->connections) : 0};
        /* With every slot taken the connection is closed at once, so the
         * broker never waits for it. The scraper tries again at its next
         * interval. */
        if (!conn || epoll_ctl(server->epoll_fd, EPOLL_CTL_ADD, fd, &watch) != 0) {
            close(fd);
            continue;
        }
        conn->fd = fd;
        conn->received = 0;
        conn->sent = 0;
        conn->deadline_ms = hv_time_monotonic_ms() + HV_ADMIN_TIMEOUT_MS;
    }
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    default:
        return "Bad Request";
    }
}

/* Builds the whole response, head and body, in conn->response. A HEAD
 * request gets the head alone, with the body's length. */
static void build_response(connection *conn, int status, const char *content_type, const char *body, size_t body_len,
                           bool head_only)
{
    FILE *out = open_memstream(&conn->response, &conn->response_len);
    if (!out)
        return;
    fprintf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n", status,
            reason_phrase(status), content_type, body_len);
    if (status == 405)
        fputs("Allow: GET, HEAD\r\n", out);
    fputs("\r\n", out);
    if (!head_only)
        fwrite(body, 1, body_len, out);
    if (fclose(out) != 0) {
        free(conn->response);
        conn->response = NULL;
    }
}

static void respond_text(connection *conn, int status, const char *text, bool head_only)
{
    build_response(conn, status, "text/plain; charset=utf-8", text, strlen(text), head_only);
}

static void respond_metrics(hv_admin_http *server, connection *conn, bool head_only)
{
    if (server->collect)
        server->collect(server->data);
    char *body;
    size_t body_len;
    if (hv_metrics_render(server->registry, &body, &body_len) != 0) {
        respond_text(conn, 500, "Rendering the metrics failed: out of memory.\n", head_only);
        return;
    }
    build_response(conn, 200, HV_ADMIN_METRICS_TYPE, body, body_len, head_only);
    free(body);
}

/* Builds the response to the request line "METHOD TARGET HTTP/1.x". Only the request line
 * matters: no header changes the response. */
static void handle_request(hv_admin_http *server, connection *conn, const char *line, size_t len)
{
    const char *space = memchr(line, ' ', len);
    const char *target = space ? space + 1 : NULL;
    const char *second = target ? memchr(target, ' ', len - (size_t)(target - line)) : NULL;
    const char *version = second ? second + 1 : NULL;
    size_t version_len = version ? len - (size_t)(version - line) : 0;
    if (!second || version_len != 8 || memcmp(version, "HTTP/1.", 7) != 0) {
        respond_text(conn, 400, "Bad request: expected an HTTP/1.x request line.\n", false);
        return;
    }

    size_t method_len = (size_t)(space - line);
    bool get = method_len == 3 && memcmp(line, "GET", 3) == 0;
    bool head = method_len == 4 && memcmp(line, "HEAD", 4) == 0;
    size_t target_len = (size_t)(second - target);
    const char *query = memchr(target, '?', target_len);
    size_t path_len = query ? (size_t)(query - target) : target_len;
    bool metrics_path = path_len == 8 && memcmp(target, "/metrics", 8) == 0;

    if (!metrics_path)
        respond_text(conn, 404, "Not found: the metrics are at /metrics.\n", head);
    else if (!get && !head)
        respond_text(conn, 405, "Method not allowed: use GET.\n", false);
    else
        respond_metrics(server, conn, head);
}

/* Returns the length of the request line once the whole head has arrived
 * (up to an empty line), or -1 while more is to come. */
static long complete_head(const connection *conn)
{
    const char *end = memmem(conn->request, conn->received, "\r\n\r\n", 4);
    if (!end)
        end = memmem(conn->request, conn->received, "\n\n", 2);
    if (!end)
        return -1;
    const char *line_end = memchr(conn->request, '\n', conn->received);
    size_t line_len = (size_t)(line_end - conn->request);
    if (line_len > 0 && conn->request[line_len - 1] == '\r')
        line_len--;
    return (long)line_len;
}

/* Writes what the socket takes. Returns true when the response is out. */
static bool write_response(connection *conn)
{
    while (conn->sent < conn->response_len) {
        ssize_t written = send(conn->fd, conn->response + conn->sent, conn->response_len - conn->sent, MSG_NOSIGNAL);
        if (written < 0)
            return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
        conn->sent += (size_t)written;
    }
    return true;
}

/* Reads the request head. Returns false when the connection is to be
 * closed without a response: the client closed or failed. */
static bool read_request(hv_admin_http *server, connection *conn)
{
    while (conn->received < sizeof(conn->request)) {
        ssize_t got = recv(conn->fd, conn->request + conn->received, sizeof(conn->request) - conn->received, 0);
        if (got == 0)
            return false;
        if (got < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        conn->received += (size_t)got;
        long line_len = complete_head(conn);
        if (line_len >= 0) {
            handle_request(server, conn, conn->request, (size_t)line_len);
            return true;
        }
    }
    respond_text(conn, 431, "Request head too large.\n", false);
    return true;
}

static void serve_connection(hv_admin_http *server, connection *conn)
{
    if (!conn->response) {
        if (!read_request(server, conn)) {
            close_connection(server, conn);
            return;
        }
        if (!conn->response) {
            /* Not all of the head yet, unless building the response ran
             * out of memory: then the connection goes. */
            if (conn->received > 0 && complete_head(conn) >= 0)
                close_connection(server, conn);
            return;
        }
        struct epoll_event watch = {.events = EPOLLOUT, .data.u64 = (uint64_t)(conn - server->connections)};
        epoll_ctl(server->epoll_fd, EPOLL_CTL_MOD, conn->fd, &watch);
    }
    if (write_response(conn))
        close_connection(server, conn);
}

/* Drops the connections past their deadline and arms the timer for the
 * next one. */
static void expire_connections(hv_admin_http *server)
{
    int64_t now = hv_time_monotonic_ms();
    int64_t next = INT64_MAX;
    for (int i = 0; i < HV_ADMIN_MAX_CONNECTIONS; i++) {
        connection *conn = &server->connections[i];
        if (conn->fd < 0)
            continue;
        if (conn->deadline_ms <= now)
            close_connection(server, conn);
        else if (conn->deadline_ms < next)
            next = conn->deadline_ms;
    }

    /* A zero it_value disarms the timer. */
    struct itimerspec timer = {0};
    if (next != INT64_MAX) {
        int64_t wait_ms = next - now;
        timer.it_value.tv_sec = wait_ms / 1000;
        timer.it_value.tv_nsec = (wait_ms % 1000) * 1000000;
    }
    timerfd_settime(server->timer_fd, 0, &timer, NULL);
}

/* --- The responder -------------------------------------------------------- */

hv_admin_http *hv_admin_http_new(int listen_fd, hv_metrics *registry, hv_admin_collect_cb collect, void *data, char *error,
                                 size_t error_size)
{
    hv_admin_http *server = calloc(1, sizeof(*server));
    if (!server) {
        snprintf(error, error_size, "out of memory");
        close(listen_fd);
        return NULL;
    }
    server->listen_fd = listen_fd;
    server->registry = registry;
    server->collect = collect;
    server->data = data;
    for (int i = 0; i < HV_ADMIN_MAX_CONNECTIONS; i++)
        server->connections[i].fd = -1;

    server->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    server->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event listener = {.events = EPOLLIN, .data.u64 = TAG_LISTENER};
    struct epoll_event timer = {.events = EPOLLIN, .data.u64 = TAG_TIMER};
    if (server->epoll_fd < 0 || server->timer_fd < 0 || epoll_ctl(server->epoll_fd, EPOLL_CTL_ADD, listen_fd, &listener) != 0 ||
        epoll_ctl(server->epoll_fd, EPOLL_CTL_ADD, server->timer_fd, &timer) != 0) {
        snprintf(error, error_size, "creating the metrics listener's descriptors failed: %s", strerror(errno));
        hv_admin_http_destroy(&server);
        return NULL;
    }
    return server;
}

void hv_admin_http_destroy(hv_admin_http **target)
{
    hv_admin_http *server = target ? *target : NULL;
    if (!server)
        return;
    for (int i = 0; i < HV_ADMIN_MAX_CONNECTIONS; i++)
        if (server->connections[i].fd >= 0)
            close_connection(server, &server->connections[i]);
    if (server->timer_fd >= 0)
        close(server->timer_fd);
    if (server->epoll_fd >= 0)
        close(server->epoll_fd);
    close(server->listen_fd);
    free(server);
    *target = NULL;
}

int hv_admin_http_fd(const hv_admin_http *server)
{
    return server->epoll_fd;
}

void hv_admin_http_run(hv_admin_http *server)
{
    struct epoll_event events[HV_ADMIN_MAX_CONNECTIONS + 2];
    int count = epoll_wait(server->epoll_fd, events, HV_ADMIN_MAX_CONNECTIONS + 2, 0);
    for (int i = 0; i < count; i++) {
        uint64_t tag = events[i].data.u64;
        if (tag == TAG_LISTENER) {
            accept_connections(server);
        } else if (tag == TAG_TIMER) {
            /* Only the expiry matters, not how often the timer fired. */
            uint64_t expirations;
            ssize_t ignored = read(server->timer_fd, &expirations, sizeof(expirations));
            (void)ignored;
        } else if (server->connections[tag].fd >= 0) {
            serve_connection(server, &server->connections[tag]);
        }
    }
    expire_connections(server);
}
