#include "service_loop.h"

#include "hv_notify.h"
#include "hv_admin_http.h"
#include "hv_log.h"
#include "hv_service.h"
#include "hv_time.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

int service_exit_status(int failure)
{
    return failure == SERVICE_INVALID_ADDRESS || failure == HV_ADMIN_INVALID_ADDRESS ? 2 : 1;
}

int service_listen(const char *address, char *error, size_t error_size)
{
    char host[256];
    const char *colon = strrchr(address, ':');
    if (!colon || colon == address || !colon[1] || (size_t)(colon - address) >= sizeof(host)) {
        snprintf(error, error_size, "invalid listen address \"%s\": expected HOST:PORT", address);
        return SERVICE_INVALID_ADDRESS;
    }
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (*end || errno || port < 0 || port > 65535) {
        snprintf(error, error_size, "invalid listen address \"%s\": the port must be a number from 0 to 65535", address);
        return SERVICE_INVALID_ADDRESS;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - address), address);
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    int status = getaddrinfo(host, colon + 1, &hints, &found);
    if (status != 0) {
        snprintf(error, error_size, "invalid listen address \"%s\": %s", address, gai_strerror(status));
        return SERVICE_INVALID_ADDRESS;
    }

    int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int reuse = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof(reuse)) != 0 ||
        bind(fd, found->ai_addr, found->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        snprintf(error, error_size, "cannot listen on %s: %s", address, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(found);
    return fd;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err)
        return;
    h2o_socket_t *accepted = h2o_evloop_socket_accept(listener);
    if (accepted)
        h2o_accept(listener->data, accepted);
}

h2o_socket_t *service_accept(h2o_loop_t *loop, int fd, h2o_accept_ctx_t *accept_ctx)
{
    h2o_socket_t *listener = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    listener->data = accept_ctx;
    h2o_socket_read_start(listener, on_accept);
    return listener;
}

static struct {
    h2o_loop_t *loop;
    h2o_timeout_t interval;
    h2o_timeout_entry_t entry;
    service_status_cb status;
    void *data;
} heartbeat;

static void on_heartbeat(h2o_timeout_entry_t *entry)
{
    char status[256];
    heartbeat.status(status, sizeof(status), heartbeat.data);
    hv_notify_watchdog(status);
    h2o_timeout_link(heartbeat.loop, &heartbeat.interval, entry);
}

void service_heartbeat_start(h2o_loop_t *loop, service_status_cb status, void *data)
{
    int64_t interval_ms = hv_notify_watchdog_interval_ms();
    if (interval_ms == 0)
        return;
    heartbeat.loop = loop;
    heartbeat.status = status;
    heartbeat.data = data;
    heartbeat.entry.cb = on_heartbeat;
    h2o_timeout_init(loop, &heartbeat.interval, (uint64_t)interval_ms);
    h2o_timeout_link(loop, &heartbeat.interval, &heartbeat.entry);
}

void service_heartbeat_stop(void)
{
    if (!heartbeat.loop)
        return;
    if (h2o_timeout_is_linked(&heartbeat.entry))
        h2o_timeout_unlink(&heartbeat.entry);
    h2o_timeout_dispose(heartbeat.loop, &heartbeat.interval);
    heartbeat.loop = NULL;
}

/* The public listener and the signal watch of the process. */
static struct {
    h2o_socket_t *listener;
    h2o_socket_t *signals;
    service_stop_cb on_stop;
} opened;

static void on_signal(h2o_socket_t *sock, const char *err)
{
    (void)err;
    struct signalfd_siginfo info;
    while (read(h2o_socket_get_fd(sock), &info, sizeof(info)) == (ssize_t)sizeof(info)) {
        if (!opened.listener)
            continue;
        h2o_socket_read_stop(opened.listener);
        h2o_socket_close(opened.listener);
        opened.listener = NULL;
        opened.on_stop(strsignal((int)info.ssi_signo));
    }
}

int service_open(h2o_loop_t *loop, const char *address, h2o_accept_ctx_t *accept_ctx, service_stop_cb on_stop)
{
    char error[512];
    int fd = service_listen(address, error, sizeof(error));
    if (fd < 0) {
        HV_ERROR("opening the listener failed", HV_STR("err", error));
        return fd;
    }
    opened.listener = service_accept(loop, fd, accept_ctx);
    opened.on_stop = on_stop;

    int signal_fd = hv_service_signal_fd();
    if (signal_fd < 0) {
        HV_ERROR("creating the signal descriptor failed", HV_STR("err", strerror(errno)));
        return -1;
    }
    opened.signals = h2o_evloop_socket_create(loop, signal_fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(opened.signals, on_signal);
    return 0;
}

void service_close(void)
{
    service_heartbeat_stop();
    if (opened.signals) {
        h2o_socket_read_stop(opened.signals);
        h2o_socket_close(opened.signals);
        opened.signals = NULL;
    }
}

void service_ready(h2o_loop_t *loop, service_status_cb status, void *data)
{
    char line[256];
    status(line, sizeof(line), data);
    hv_notify_ready(line);
    service_heartbeat_start(loop, status, data);
}

bool service_run(h2o_loop_t *loop, volatile bool *stopping, bool (*busy)(void *data), void *data, int64_t timeout_ms)
{
    int64_t deadline = 0;
    while (!*stopping || busy(data)) {
        if (*stopping && !deadline)
            deadline = hv_time_monotonic_ms() + timeout_ms;
        if (deadline && hv_time_monotonic_ms() >= deadline)
            return false;
        h2o_evloop_run(loop, *stopping ? 100 : INT32_MAX);
    }
    return true;
}
