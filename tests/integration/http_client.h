/* HTTP requests of the integration tests over libcurl: one request and its
 * whole response with its headers, run with curl_easy_perform or on a curl
 * multi handle. Nothing here calls Criterion, so that a request can run on
 * another thread; the callers check the results. */
#ifndef TEST_HTTP_CLIENT_H
#define TEST_HTTP_CLIENT_H

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The maximum number of headers kept of a response; later ones are dropped. */
#define HTTP_MAX_HEADERS 64

/* One response header without the blanks around its name and value. Longer
 * names and values are cut, which no header that the tests check needs. */
typedef struct {
    char name[64];
    char value[512];
} http_header;

typedef struct {
    bool completed; /* curl received a whole response */
    /* Why it did not: curl's error code and message. Empty when completed.
     * During the transfer, curl writes its message here. */
    char error[CURL_ERROR_SIZE + 64];
    long status;       /* the status code; 0 when no response came */
    long http_version; /* the version curl used: CURL_HTTP_VERSION_1_1, CURL_HTTP_VERSION_2_0 */
    char *body;        /* NUL-terminated (the NUL is not counted in body_len); free with http_response_release */
    size_t body_len;
    http_header headers[HTTP_MAX_HEADERS]; /* of the final response, not of a 1xx response before it */
    size_t header_count;
    int64_t elapsed_ms;    /* from the start of the transfer to its end */
    char description[192]; /* the method and the path, "POST /conversations", for failure messages */
} http_response;

/* How far a request run on another thread has got, for the thread that
 * started it to watch. */
typedef struct {
    atomic_int local_port;    /* the client's port once connected, or 0 */
    atomic_bool request_sent; /* the request's head has been written to the socket */
} http_progress;

typedef struct {
    const char *method; /* NULL means GET, or POST when `body` is set; "HEAD" reads no body */
    const char *url;    /* "http://127.0.0.1:<port>/path?query" */
    const void *body;   /* NULL sends no body and no Content-Length */
    size_t body_len;
    /* More header lines as curl takes them, NULL-terminated, or NULL:
     * "Name: value", "Name;" for an empty value, or "Name:" to leave out a
     * header that curl adds itself, such as "Expect:". */
    const char *const *headers;
    long timeout_ms;         /* bound on the whole exchange; curl takes 0 as no bound */
    long http_version;       /* a CURL_HTTP_VERSION_* value; 0 keeps curl's default */
    http_progress *progress; /* updated as the request goes out, or NULL */
} http_request;

/* A request being prepared or run. */
typedef struct {
    CURL *curl;
    struct curl_slist *header_list;
    http_response *response;
    int64_t started_ms;
} http_transfer;

/* Clears `response` and creates the curl easy handle of `request`, whose
 * response goes to `response`. The body of the request must stay valid
 * until the transfer is finished; the other strings are copied. Returns 0,
 * or -1 with response->error set when curl or memory failed (nothing is
 * then left to free). Run it with curl_easy_perform or a multi handle, and
 * end it with http_transfer_finish. The caller has called
 * curl_global_init. */
int http_transfer_start(http_transfer *transfer, const http_request *request, http_response *response);

/* Records `code`, the result of the transfer, in its response together with
 * the status and the time taken, and frees the curl handle and the header
 * list. A transfer on a multi handle must have been removed from it. A
 * transfer that is given up ends here too, with any code. */
void http_transfer_finish(http_transfer *transfer, CURLcode code);

/* Sends `request` and waits for the whole response. Fills `out` in every
 * case: out->completed is true when a whole response came, and out->body
 * is NULL only when memory ran out. */
void http_send(const http_request *request, http_response *out);

/* Frees the body of a response. Accepts a zero-initialized response. */
void http_response_release(http_response *response);

/* Returns the value of the `index`th header called `name` (any case), or
 * NULL when the response has fewer. */
const char *http_header_at(const http_response *response, const char *name, size_t index);

/* Returns the value of the first header called `name` (any case), or NULL. */
const char *http_header_value(const http_response *response, const char *name);

/* Returns how many headers called `name` (any case) the response has. */
size_t http_header_count(const http_response *response, const char *name);

#endif
