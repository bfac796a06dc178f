/* The gateway's route table: which handler a method and path go to. */
#include "routes.h"

#include <string.h>

#define CONVERSATIONS_PREFIX "/conversations"
#define MESSAGES_SUFFIX "/messages"

http_method routes_parse_method(const char *method, size_t len)
{
    static const struct {
        const char *name;
        http_method method;
    } methods[] = {{"GET", METHOD_GET}, {"HEAD", METHOD_HEAD}, {"POST", METHOD_POST}, {"OPTIONS", METHOD_OPTIONS}};

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strlen(methods[i].name) == len && memcmp(methods[i].name, method, len) == 0)
            return methods[i].method;
    return METHOD_OTHER;
}

const char *routes_name(route_id route)
{
    switch (route) {
    case ROUTE_ROOT:
        return "/";
    case ROUTE_HEALTH:
        return "/health";
    case ROUTE_CONVERSATIONS:
        return CONVERSATIONS_PREFIX;
    case ROUTE_CONVERSATION:
        return CONVERSATIONS_PREFIX "/:id";
    case ROUTE_MESSAGES:
        return CONVERSATIONS_PREFIX "/:id" MESSAGES_SUFFIX;
    case ROUTE_NOT_FOUND:
        break;
    }
    return "unmatched";
}

const char *routes_method_name(http_method method)
{
    switch (method) {
    case METHOD_GET:
        return "GET";
    case METHOD_HEAD:
        return "HEAD";
    case METHOD_POST:
        return "POST";
    case METHOD_OPTIONS:
        return "OPTIONS";
    case METHOD_OTHER:
        break;
    }
    return "other";
}

static int path_equals(const char *path, size_t len, const char *literal)
{
    return strlen(literal) == len && memcmp(path, literal, len) == 0;
}

/* Recognizes the path alone; the method is checked afterwards. */
static route_match match_path(const char *path, size_t len)
{
    route_match match = {.route = ROUTE_NOT_FOUND};
    size_t prefix_len = strlen(CONVERSATIONS_PREFIX);

    if (path_equals(path, len, "/")) {
        match.route = ROUTE_ROOT;
        match.allow = "GET, HEAD, OPTIONS";
    } else if (path_equals(path, len, "/health")) {
        match.route = ROUTE_HEALTH;
        match.allow = "GET, HEAD, OPTIONS";
    } else if (path_equals(path, len, CONVERSATIONS_PREFIX)) {
        match.route = ROUTE_CONVERSATIONS;
        match.allow = "GET, HEAD, POST, OPTIONS";
        match.needs_org_key = 1;
    } else if (len > prefix_len + 1 && memcmp(path, CONVERSATIONS_PREFIX "/", prefix_len + 1) == 0) {
        const char *id = path + prefix_len + 1;
        size_t rest = len - prefix_len - 1;
        const char *slash = memchr(id, '/', rest);
        match.id = id;
        match.needs_org_key = 1;

        if (!slash) {
            match.route = ROUTE_CONVERSATION;
            match.allow = "GET, HEAD, OPTIONS";
            match.id_len = rest;
        } else if (slash > id && path_equals(slash, rest - (size_t)(slash - id), MESSAGES_SUFFIX)) {
            match.route = ROUTE_MESSAGES;
            match.allow = "POST, OPTIONS";
            match.id_len = (size_t)(slash - id);
        } else {
            match = (route_match){.route = ROUTE_NOT_FOUND};
        }
    }
    return match;
}

static int method_allowed(route_id route, http_method method)
{
    if (method == METHOD_OPTIONS)
        return 1;
    switch (route) {
    case ROUTE_ROOT:
    case ROUTE_HEALTH:
        return method == METHOD_GET || method == METHOD_HEAD;
    case ROUTE_CONVERSATIONS:
        return method == METHOD_GET || method == METHOD_HEAD || method == METHOD_POST;
    case ROUTE_CONVERSATION:
        return method == METHOD_GET || method == METHOD_HEAD;
    case ROUTE_MESSAGES:
        return method == METHOD_POST;
    case ROUTE_NOT_FOUND:
        return 0;
    }
    return 0;
}

route_match routes_match(http_method method, const char *path, size_t path_len)
{
    route_match match = match_path(path, path_len);
    match.method_allowed = method_allowed(match.route, method);
    return match;
}
