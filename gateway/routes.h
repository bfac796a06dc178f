/* The gateway's route table: which handler a method and path go to. */
#ifndef GATEWAY_ROUTES_H
#define GATEWAY_ROUTES_H

#include <stddef.h>

typedef enum {
    ROUTE_NOT_FOUND,
    ROUTE_ROOT,             /* GET / */
    ROUTE_HEALTH,           /* GET /health */
    ROUTE_CONVERSATIONS,    /* GET, HEAD, POST /conversations */
    ROUTE_CONVERSATION,     /* GET, HEAD /conversations/:id */
    ROUTE_MESSAGES,         /* POST /conversations/:id/messages */
} route_id;

typedef enum { METHOD_OTHER, METHOD_GET, METHOD_HEAD, METHOD_POST, METHOD_OPTIONS } http_method;

/* The result of matching a request line. */
typedef struct {
    route_id route;
    int method_allowed;      /* 0 when the path exists but not with this method (405) */
    const char *allow;       /* the Allow header value of the route */
    const char *id;          /* the :id segment, pointing into the path; NULL when none */
    size_t id_len;
    int needs_org_key;       /* the route is org-scoped and needs x-org-key */
} route_match;

/* Returns the route's path pattern, such as "/conversations/:id", for
 * metrics and logs; "unmatched" for ROUTE_NOT_FOUND. */
const char *routes_name(route_id route);

/* Returns the method's name, "other" for METHOD_OTHER. */
const char *routes_method_name(http_method method);

/* Maps a method name to its enum value. */
http_method routes_parse_method(const char *method, size_t len);

/* Matches a normalized path (without the query string) and a method. OPTIONS
 * matches every known path, for CORS preflight. */
route_match routes_match(http_method method, const char *path, size_t path_len);

#endif
