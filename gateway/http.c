/* The widget's HTTP API. Each request gets an `exchange` from its own
 * memory pool, which h2o frees with the request. The exchange's dispose
 * callback cancels a store call still in flight, so a reply that arrives
 * after the client hung up finds nothing to write to. */
#include "http.h"
#include "body.h"
#include "cors.h"
#include "hv_envelope.h"
#include "hv_json.h"
#include "hv_log.h"
#include "hv_msgpack.h"
#include "hv_time.h"
#include "hv_uuid.h"
#include "hv_version.h"
#include "metrics.h"
#include "routes.h"

#include <string.h>

#define LIST_DEFAULT_LIMIT 50
#define LIST_MAX_LIMIT 200
#define KEY_MAX_BYTES 256
#define REQUEST_ID_MAX 128
#define JSON_TYPE "application/json; charset=utf-8"

typedef struct {
    h2o_handler_t super;
    gateway *gw;
} api_handler;

typedef struct exchange_s {
    gateway *gw;
    h2o_req_t *req;
    store_call *call; /* the store call in flight, or NULL */
    route_match route;
    http_method method;
    char request_id[REQUEST_ID_MAX + 1];
    char org[HV_ORG_ID_MAX + 1];
    h2o_iovec_t key; /* the x-org-key value, pointing into the request */
    message_body message;
    int64_t started_ms;
    int64_t started_ns; /* for the latency metric */
    void (*on_reply)(struct exchange_s *ex, int status, const msgpack_object *body);
} exchange;

/* --- Responses ---------------------------------------------------------- */

const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

/* Serializes a JSON value into the request's pool; takes the reference. */
static h2o_iovec_t dump_json(h2o_mem_pool_t *pool, json_t *value)
{
    size_t size = json_dumpb(value, NULL, 0, JSON_COMPACT | JSON_PRESERVE_ORDER);
    h2o_iovec_t out = {.base = h2o_mem_alloc_pool(pool, size + 1), .len = size};
    json_dumpb(value, out.base, size, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(value);
    return out;
}

h2o_iovec_t http_error_json(h2o_mem_pool_t *pool, const char *message)
{
    return dump_json(pool, json_pack("{s:s}", "error", message));
}

static void add_header(exchange *ex, const char *name, const char *value, size_t value_len)
{
    h2o_add_header_by_str(&ex->req->pool, &ex->req->res.headers, name, strlen(name), 1, NULL, value, value_len);
}

static void add_common_headers(exchange *ex)
{
    size_t origin_len = 0;
    const char *origin = cors_allowed_origin(ex->gw->cors_origins, ex->req, &origin_len);
    if (origin) {
        add_header(ex, "access-control-allow-origin", origin, origin_len);
        add_header(ex, "access-control-expose-headers", H2O_STRLIT("x-request-id, x-next-cursor"));
        if (strcmp(origin, "*") != 0)
            add_header(ex, "vary", H2O_STRLIT("Origin"));
    }
    add_header(ex, "x-request-id", ex->request_id, strlen(ex->request_id));
}

static void log_access(exchange *ex, int status)
{
    if (!ex->gw->access_log)
        return;
    h2o_req_t *req = ex->req;
    char path[256];
    snprintf(path, sizeof(path), "%.*s", (int)req->path.len, req->path.base);
    char method[16];
    snprintf(method, sizeof(method), "%.*s", (int)req->method.len, req->method.base);
    HV_INFO("request", HV_STR("method", method), HV_STR("path", path), HV_INT("status", status),
            HV_STR("org", ex->org), HV_STR("request_id", ex->request_id),
            HV_INT("duration_ms", hv_time_monotonic_ms() - ex->started_ms));
}

static void respond(exchange *ex, int status, h2o_iovec_t body)
{
    h2o_req_t *req = ex->req;
    req->res.status = status;
    req->res.reason = http_reason(status);
    add_common_headers(ex);
    if (body.len)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT(JSON_TYPE));
    metrics_count_request(ex->route.route, ex->method, status, ex->started_ns);
    log_access(ex, status);
    /* With the length known up front, h2o sends content-length and keeps
     * the connection alive; without it, it may end the body by closing. */
    req->res.content_length = body.len;
    h2o_send_inline(req, body.base, body.len);
}

static void respond_error(exchange *ex, int status, const char *message)
{
    respond(ex, status, http_error_json(&ex->req->pool, message));
}

static void respond_json(exchange *ex, int status, json_t *value)
{
    if (!value) {
        HV_ERROR("store reply cannot be shown as JSON", HV_STR("request_id", ex->request_id), HV_STR("org", ex->org));
        respond_error(ex, 500, "Internal server error");
        return;
    }
    respond(ex, status, dump_json(&ex->req->pool, value));
}

/* --- Store calls -------------------------------------------------------- */

static void on_store_reply(void *data, int status, const msgpack_object *body)
{
    exchange *ex = data;
    ex->call = NULL;
    if (status == HV_STATUS_UNAVAILABLE || !body) {
        respond_error(ex, 503, "Store unavailable");
        return;
    }
    if (status >= 500) {
        respond_error(ex, 500, "Internal server error");
        return;
    }
    ex->on_reply(ex, status, body);
}

/* Sends an operation for this exchange; `args` may be NULL. */
static void call_store(exchange *ex, const char *op, const msgpack_sbuffer *args,
                       void (*on_reply)(exchange *ex, int status, const msgpack_object *body))
{
    ex->on_reply = on_reply;
    ex->call = store_client_send(ex->gw->store, op, ex->org[0] ? ex->org : NULL, ex->request_id, args, on_store_reply, ex);
    if (!ex->call) {
        HV_ERROR("out of memory sending a store request", HV_STR("request_id", ex->request_id));
        respond_error(ex, 503, "Store unavailable");
    }
}

/* Packs a map of string arguments: key, value pairs, `count` of them. */
static void pack_string_args(msgpack_sbuffer *args, size_t count, const char *const *keys, const char *const *values,
                             const size_t *lengths)
{
    msgpack_packer packer;
    msgpack_packer_init(&packer, args, msgpack_sbuffer_write);
    msgpack_pack_map(&packer, count);
    for (size_t i = 0; i < count; i++) {
        hv_mp_pack_cstr(&packer, keys[i]);
        hv_mp_pack_strn(&packer, values[i], lengths[i]);
    }
}

/* --- Route handlers ------------------------------------------------------ */

static void on_conversation_created(exchange *ex, int status, const msgpack_object *body)
{
    if (status != HV_STATUS_CREATED) {
        respond_error(ex, 500, "Internal server error");
        return;
    }
    json_t *created = json_object();
    json_object_set_new(created, "id", hv_json_from_msgpack(hv_mp_map_get(body, "id")));
    json_object_set_new(created, "createdAt", hv_json_from_msgpack(hv_mp_map_get(body, "createdAt")));
    respond_json(ex, 201, created);
}

static void on_conversations_listed(exchange *ex, int status, const msgpack_object *body)
{
    const msgpack_object *list = hv_mp_map_get(body, "conversations");
    if (status != HV_STATUS_OK || !list) {
        respond_error(ex, status == HV_STATUS_BAD_REQUEST ? 400 : 500,
                      status == HV_STATUS_BAD_REQUEST ? "Invalid cursor" : "Internal server error");
        return;
    }
    const char *cursor;
    size_t cursor_len;
    if (hv_mp_map_get_str(body, "nextCursor", &cursor, &cursor_len))
        add_header(ex, "x-next-cursor", h2o_strdup(&ex->req->pool, cursor, cursor_len).base, cursor_len);
    respond_json(ex, 200, hv_json_from_msgpack(list));
}

static void on_conversation_read(exchange *ex, int status, const msgpack_object *body)
{
    if (status == HV_STATUS_NOT_FOUND) {
        respond_error(ex, 404, "Conversation not found");
        return;
    }
    if (status != HV_STATUS_OK) {
        respond_error(ex, 500, "Internal server error");
        return;
    }
    respond_json(ex, 200, hv_json_from_msgpack(body));
}

static void on_message_added(exchange *ex, int status, const msgpack_object *body)
{
    if (status == HV_STATUS_NOT_FOUND) {
        respond_error(ex, 404, "Conversation not found");
    } else if (status == HV_STATUS_BAD_REQUEST) {
        /* The gateway checked the body already; what the store still rejects
         * is content PostgreSQL cannot hold. */
        respond_error(ex, 400, BODY_ERROR_INVALID_JSON);
    } else if (status == HV_STATUS_TOO_LARGE) {
        respond_error(ex, 413, "Request body too large");
    } else if (status != HV_STATUS_CREATED) {
        respond_error(ex, 500, "Internal server error");
    } else {
        respond_json(ex, 201, hv_json_from_msgpack(body));
    }
}

static void list_conversations(exchange *ex)
{
    h2o_req_t *req = ex->req;
    const char *query = "";
    size_t query_len = 0;
    if (req->query_at != SIZE_MAX) {
        query = req->path.base + req->query_at + 1;
        query_len = req->path.len - req->query_at - 1;
    }

    long limit = LIST_DEFAULT_LIMIT;
    size_t value_len;
    const char *value = query_param(query, query_len, "limit", &value_len);
    if (value && (limit = parse_limit(value, value_len, LIST_MAX_LIMIT)) < 0) {
        respond_error(ex, 400, "Invalid limit. Must be an integer from 1 to 200");
        return;
    }
    size_t cursor_len = 0;
    const char *cursor = query_param(query, query_len, "cursor", &cursor_len);

    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &args, msgpack_sbuffer_write);
    msgpack_pack_map(&packer, cursor ? 2 : 1);
    hv_mp_pack_cstr(&packer, "limit");
    msgpack_pack_long(&packer, limit);
    if (cursor) {
        hv_mp_pack_cstr(&packer, "cursor");
        hv_mp_pack_strn(&packer, cursor, cursor_len);
    }
    call_store(ex, "conversation.list", &args, on_conversations_listed);
    msgpack_sbuffer_destroy(&args);
}

static void create_conversation(exchange *ex)
{
    if (conversation_body_check(ex->req->entity.base, ex->req->entity.len)) {
        respond_error(ex, 400, BODY_ERROR_INVALID_JSON);
        return;
    }
    call_store(ex, "conversation.create", NULL, on_conversation_created);
}

static void read_conversation(exchange *ex)
{
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    const char *keys[] = {"id"};
    const char *values[] = {ex->route.id};
    size_t lengths[] = {ex->route.id_len};
    pack_string_args(&args, 1, keys, values, lengths);
    call_store(ex, "conversation.get", &args, on_conversation_read);
    msgpack_sbuffer_destroy(&args);
}

static void add_message(exchange *ex)
{
    h2o_iovec_t entity = ex->req->entity;
    if (entity.len > ex->gw->max_body_bytes) {
        respond_error(ex, 413, "Request body too large");
        return;
    }
    const char *error = message_body_parse(entity.base, entity.len, &ex->message);
    if (error) {
        respond_error(ex, 400, error);
        return;
    }

    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    const char *keys[] = {"conversationId", "role", "content"};
    const char *values[] = {ex->route.id, ex->message.role, ex->message.content};
    size_t lengths[] = {ex->route.id_len, strlen(ex->message.role), ex->message.content_len};
    pack_string_args(&args, 3, keys, values, lengths);
    call_store(ex, "message.add", &args, on_message_added);
    msgpack_sbuffer_destroy(&args);
}

/* Runs the org-scoped route once the key is known to belong to ex->org. */
static void dispatch_authenticated(exchange *ex)
{
    switch (ex->route.route) {
    case ROUTE_CONVERSATIONS:
        if (ex->method == METHOD_POST)
            create_conversation(ex);
        else
            list_conversations(ex);
        return;
    case ROUTE_CONVERSATION:
        read_conversation(ex);
        return;
    case ROUTE_MESSAGES:
        add_message(ex);
        return;
    default:
        respond_error(ex, 404, "Not found");
        return;
    }
}

/* --- Authentication ------------------------------------------------------ */

static void on_key_resolved(exchange *ex, int status, const msgpack_object *body)
{
    const char *org;
    size_t org_len;
    if (status == HV_STATUS_OK && hv_mp_map_get_str(body, "orgId", &org, &org_len) && org_len <= HV_ORG_ID_MAX) {
        memcpy(ex->org, org, org_len);
        ex->org[org_len] = '\0';
        key_cache_put(ex->gw->keys, ex->key.base, ex->key.len, ex->org, hv_time_monotonic_ms());
        dispatch_authenticated(ex);
        return;
    }
    if (status == HV_STATUS_NOT_FOUND) {
        key_cache_put(ex->gw->keys, ex->key.base, ex->key.len, NULL, hv_time_monotonic_ms());
        respond_error(ex, 401, "Invalid organization key");
        return;
    }
    respond_error(ex, 500, "Internal server error");
}

/* Finds the x-org-key value. Returns 0 for one non-empty value, -1 when
 * none or an empty one was sent, and -2 when the header came twice or more. */
static int find_org_key(h2o_req_t *req, h2o_iovec_t *key)
{
    int found = 0;
    for (ssize_t index = -1; (index = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-org-key"), index)) >= 0;) {
        *key = req->headers.entries[index].value;
        found++;
    }
    if (found > 1)
        return -2;
    if (found == 0)
        return -1;

    /* The optional white space HTTP allows around a value is not the key. */
    while (key->len && (key->base[0] == ' ' || key->base[0] == '\t')) {
        key->base++;
        key->len--;
    }
    while (key->len && (key->base[key->len - 1] == ' ' || key->base[key->len - 1] == '\t'))
        key->len--;
    return key->len ? 0 : -1;
}

static void authenticate(exchange *ex)
{
    int found = find_org_key(ex->req, &ex->key);
    if (found == -1) {
        respond_error(ex, 401, "Missing x-org-key header");
        return;
    }
    if (found == -2 || ex->key.len > KEY_MAX_BYTES) {
        respond_error(ex, 401, "Invalid organization key");
        return;
    }

    key_lookup lookup = key_cache_get(ex->gw->keys, ex->key.base, ex->key.len, hv_time_monotonic_ms(), ex->org);
    hv_metric_inc(metrics.key_cache_lookups, HV_LABELS(lookup == KEY_MISS ? "miss" : "hit"));
    switch (lookup) {
    case KEY_VALID:
        dispatch_authenticated(ex);
        return;
    case KEY_INVALID:
        respond_error(ex, 401, "Invalid organization key");
        return;
    case KEY_MISS:
        break;
    }

    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    const char *keys[] = {"key"};
    const char *values[] = {ex->key.base};
    size_t lengths[] = {ex->key.len};
    pack_string_args(&args, 1, keys, values, lengths);
    call_store(ex, "org.resolve_key", &args, on_key_resolved);
    msgpack_sbuffer_destroy(&args);
}

/* --- Routes without a key ------------------------------------------------ */

static void on_health(exchange *ex, int status, const msgpack_object *body)
{
    (void)body;
    bool ok = status == HV_STATUS_OK;
    respond_json(ex, ok ? 200 : 503, json_pack("{s:s,s:s}", "status", ok ? "ok" : "unavailable", "store", ok ? "ok" : "unavailable"));
}

static void on_health_reply(void *data, int status, const msgpack_object *body)
{
    exchange *ex = data;
    ex->call = NULL;
    on_health(ex, status, body);
}

static void send_root(exchange *ex)
{
    json_t *endpoints = json_pack("[s,s,s,s,s,s]", "GET /", "GET /health", "GET /conversations", "POST /conversations",
                                  "GET /conversations/:id", "POST /conversations/:id/messages");
    respond_json(ex, 200, json_pack("{s:s,s:s,s:o}", "name", "helvino", "version", HV_VERSION, "endpoints", endpoints));
}

static void send_preflight(exchange *ex)
{
    h2o_req_t *req = ex->req;
    add_header(ex, "allow", ex->route.allow, strlen(ex->route.allow));
    add_header(ex, "access-control-allow-methods", ex->route.allow, strlen(ex->route.allow));
    add_header(ex, "access-control-allow-headers", H2O_STRLIT("content-type, x-org-key, x-request-id"));
    add_header(ex, "access-control-max-age", H2O_STRLIT("86400"));
    req->res.status = 204;
    req->res.reason = http_reason(204);
    add_common_headers(ex);
    metrics_count_request(ex->route.route, ex->method, 204, ex->started_ns);
    log_access(ex, 204);
    req->res.content_length = 0;
    h2o_send_inline(req, NULL, 0);
}

/* --- Entry point --------------------------------------------------------- */

/* Keeps the caller's x-request-id when it is 1 to 128 characters from
 * [A-Za-z0-9._:-]; generates a UUIDv7 otherwise. */
static void choose_request_id(exchange *ex)
{
    ssize_t index = h2o_find_header_by_str(&ex->req->headers, H2O_STRLIT("x-request-id"), -1);
    if (index >= 0) {
        h2o_iovec_t given = ex->req->headers.entries[index].value;
        bool sane = given.len > 0 && given.len <= REQUEST_ID_MAX;
        for (size_t i = 0; sane && i < given.len; i++) {
            char c = given.base[i];
            sane = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                   c == ':' || c == '-';
        }
        if (sane) {
            memcpy(ex->request_id, given.base, given.len);
            ex->request_id[given.len] = '\0';
            return;
        }
    }
    if (hv_uuid_v7(ex->request_id) != 0)
        snprintf(ex->request_id, sizeof(ex->request_id), "%s", "unknown");
}

static void dispose_exchange(void *data)
{
    exchange *ex = data;
    if (ex->call)
        store_call_cancel(ex->call);
    message_body_release(&ex->message);
    ex->gw->exchanges--;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    gateway *gw = ((api_handler *)self)->gw;
    exchange *ex = h2o_mem_alloc_shared(&req->pool, sizeof(*ex), dispose_exchange);
    memset(ex, 0, sizeof(*ex));
    ex->gw = gw;
    ex->req = req;
    ex->started_ms = hv_time_monotonic_ms();
    ex->started_ns = hv_time_monotonic_ns();
    gw->exchanges++;
    choose_request_id(ex);

    ex->method = routes_parse_method(req->method.base, req->method.len);
    ex->route = routes_match(ex->method, req->path_normalized.base, req->path_normalized.len);

    if (ex->route.route == ROUTE_NOT_FOUND) {
        respond_error(ex, 404, "Not found");
    } else if (!ex->route.method_allowed) {
        add_header(ex, "allow", ex->route.allow, strlen(ex->route.allow));
        respond_error(ex, 405, "Method not allowed");
    } else if (ex->method == METHOD_OPTIONS) {
        send_preflight(ex);
    } else if (ex->route.route == ROUTE_ROOT) {
        send_root(ex);
    } else if (ex->route.route == ROUTE_HEALTH) {
        ex->call = store_client_send(gw->store, "health", NULL, ex->request_id, NULL, on_health_reply, ex);
        if (!ex->call)
            on_health(ex, HV_STATUS_UNAVAILABLE, NULL);
    } else {
        authenticate(ex);
    }
    return 0;
}

void http_register(h2o_pathconf_t *pathconf, gateway *gw)
{
    api_handler *handler = (api_handler *)h2o_create_handler(pathconf, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->gw = gw;
}
