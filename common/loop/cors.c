#include "cors.h"

#include <string.h>

const char *cors_allowed_origin(const char *origins, h2o_req_t *req, size_t *len)
{
    if (strcmp(origins, "*") == 0) {
        *len = 1;
        return "*";
    }

    ssize_t index = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    if (index < 0)
        return NULL;
    h2o_iovec_t origin = req->headers.entries[index].value;
    for (const char *item = origins; *item;) {
        size_t item_len = strcspn(item, ",");
        if (item_len == origin.len && memcmp(item, origin.base, item_len) == 0) {
            *len = origin.len;
            return origin.base;
        }
        item += item_len + (item[item_len] == ',');
        while (*item == ' ')
            item++;
    }
    return NULL;
}

bool cors_add_headers(const char *origins, h2o_req_t *req)
{
    size_t len = 0;
    const char *origin = cors_allowed_origin(origins, req, &len);
    if (!origin)
        return false;
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-origin"), 1, NULL, origin, len);
    if (strcmp(origin, "*") != 0)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H2O_STRLIT("Origin"));
    return true;
}
