/* GET /metrics on a second h2o context of the service's loop. */
#include "metrics_listener.h"

#include "hv_log.h"
#include "service_loop.h"

#include <stdlib.h>
#include <string.h>

/* Requests to the admin listener carry no body worth reading, so h2o
 * responds 413 to anything larger. */
#define MAX_BODY_BYTES 1024

typedef struct {
    h2o_handler_t super;
    metrics_listener *listener;
} metrics_handler;

static void respond(h2o_req_t *req, int status, const char *reason, const char *content_type, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    req->res.content_length = len;
    h2o_send_inline(req, body, len);
}

static void respond_text(h2o_req_t *req, int status, const char *reason, const char *text)
{
    respond(req, status, reason, "text/plain; charset=utf-8", text, strlen(text));
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    metrics_listener *listener = ((metrics_handler *)self)->listener;
    if (!h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/metrics"))) {
        respond_text(req, 404, "Not Found", "Not found: the metrics are at /metrics.\n");
        return 0;
    }
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET, HEAD"));
        respond_text(req, 405, "Method Not Allowed", "Method not allowed: use GET.\n");
        return 0;
    }

    if (listener->collect)
        listener->collect(listener->data);
    char *body;
    size_t len;
    if (hv_metrics_render(listener->registry, &body, &len) != 0) {
        respond_text(req, 500, "Internal Server Error", "Rendering the metrics failed: out of memory.\n");
        return 0;
    }
    /* h2o_send_inline copies the body into the request's pool. */
    respond(req, 200, "OK", HV_ADMIN_METRICS_TYPE, body, len);
    free(body);
    return 0;
}

int metrics_listener_start(metrics_listener *listener, h2o_loop_t *loop, const char *address, hv_metrics *registry,
                           hv_admin_collect_cb collect, void *data, char *bound, char *error, size_t error_size)
{
    int fd = hv_admin_listen(address, bound, error, error_size);
    if (fd < 0)
        return fd;

    listener->registry = registry;
    listener->collect = collect;
    listener->data = data;
    h2o_config_init(&listener->globalconf);
    listener->globalconf.max_request_entity_size = MAX_BODY_BYTES;
    h2o_hostconf_t *host = h2o_config_register_host(&listener->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    metrics_handler *handler = (metrics_handler *)h2o_create_handler(path, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->listener = listener;

    h2o_context_init(&listener->context, loop, &listener->globalconf);
    listener->accept_ctx.ctx = &listener->context;
    listener->accept_ctx.hosts = listener->globalconf.hosts;
    listener->socket = service_accept(loop, fd, &listener->accept_ctx);
    return 0;
}

void metrics_listener_stop(metrics_listener *listener)
{
    if (!listener->socket)
        return;
    h2o_socket_read_stop(listener->socket);
    h2o_socket_close(listener->socket);
    listener->socket = NULL;
}

int metrics_listener_open(metrics_listener *listener, h2o_loop_t *loop, const char *address, hv_metrics *registry,
                          hv_admin_collect_cb collect, void *data)
{
    if (strcmp(address, HV_ADMIN_OFF) == 0) {
        HV_INFO("metrics listener off", HV_LOG_END);
        return 1;
    }
    char error[512];
    char bound[HV_ADMIN_ADDRESS_SIZE];
    int status = metrics_listener_start(listener, loop, address, registry, collect, data, bound, error, sizeof(error));
    if (status != 0) {
        HV_ERROR("opening the metrics listener failed", HV_STR("err", error));
        return status;
    }
    HV_INFO("serving metrics", HV_STR("listen", bound), HV_STR("path", "/metrics"));
    return 0;
}
