/* helvino-ceiling: a bare h2o server that replies to every request with the same small JSON body. Benchmarks run it beside helvino-gateway to measure,
 * on the same machine and in the same run, what h2o alone can do: the
 * ceiling that the gateway's figures are compared against. */
#include "hv_config.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

static struct {
    long port;
} options;

static hv_setting settings[] = {
    {"port", NULL, HV_SETTING_INT, "4099", "TCP port on 127.0.0.1 to serve on.", &options.port, 1, 65535, HV_SHOW_PLAIN},
};

static h2o_globalconf_t globalconf;
static h2o_context_t context;
static h2o_accept_ctx_t accept_context;

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    static const char body[] = "{\"status\":\"ok\"}";
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = sizeof(body) - 1;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json; charset=utf-8"));
    h2o_send_inline(req, body, sizeof(body) - 1);
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock)
        h2o_accept(&accept_context, sock);
}

int main(int argc, char **argv)
{
    char error[256];
    int loaded = hv_config_load(settings, sizeof(settings) / sizeof(settings[0]), argc, argv, NULL, error, sizeof(error));
    if (loaded == HV_CONFIG_HELP) {
        hv_config_print_usage(settings, sizeof(settings) / sizeof(settings[0]), "helvino-ceiling", "[OPTIONS]");
        return 0;
    }
    if (loaded == HV_CONFIG_ERROR) {
        fprintf(stderr, "helvino-ceiling: %s\n", error);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    h2o_config_init(&globalconf);
    h2o_hostconf_t *hostconf = h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_create_handler(pathconf, sizeof(h2o_handler_t))->on_req = on_req;

    h2o_context_init(&context, h2o_evloop_create(), &globalconf);
    accept_context.ctx = &context;
    accept_context.hosts = globalconf.hosts;

    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)options.port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int reuse = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof(reuse)) != 0 ||
        bind(fd, (struct sockaddr *)&address, sizeof(address)) != 0 || listen(fd, SOMAXCONN) != 0) {
        fprintf(stderr, "helvino-ceiling: cannot listen on 127.0.0.1:%ld: %s\n", options.port, strerror(errno));
        return 1;
    }
    h2o_socket_t *listener = h2o_evloop_socket_create(context.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(listener, on_accept);
    fprintf(stderr, "helvino-ceiling: serving on 127.0.0.1:%ld\n", options.port);

    while (h2o_evloop_run(context.loop, INT32_MAX) == 0)
        ;
    return 0;
}
