/* The tests' HTTP client over libcurl: curl options, the collection of the
 * body and the headers, and the lookup of a header. */
#include "http_client.h"
#include "hv_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static size_t on_body(char *data, size_t size, size_t count, void *user)
{
    http_response *response = user;
    size_t len = size * count;
    char *grown = realloc(response->body, response->body_len + len + 1);
    if (!grown)
        return 0;
    memcpy(grown + response->body_len, data, len);
    response->body = grown;
    response->body_len += len;
    response->body[response->body_len] = '\0';
    return len;
}

static void trim(const char **start, size_t *len)
{
    while (*len && (**start == ' ' || **start == '\t')) {
        (*start)++;
        (*len)--;
    }
    while (*len &&
           ((*start)[*len - 1] == ' ' || (*start)[*len - 1] == '\t' || (*start)[*len - 1] == '\r' || (*start)[*len - 1] == '\n'))
        (*len)--;
}

/* Keeps each "Name: value" line. Status lines have no colon. */
static size_t on_header(char *data, size_t size, size_t count, void *user)
{
    http_response *response = user;
    size_t len = size * count;

    /* A status line starts the headers of a response: forget those of an
     * interim one. */
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        response->header_count = 0;
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon || response->header_count == HTTP_MAX_HEADERS)
        return len;

    const char *name = data;
    size_t name_len = (size_t)(colon - data);
    const char *value = colon + 1;
    size_t value_len = len - name_len - 1;
    trim(&name, &name_len);
    trim(&value, &value_len);

    http_header *header = &response->headers[response->header_count++];
    snprintf(header->name, sizeof(header->name), "%.*s", (int)name_len, name);
    snprintf(header->value, sizeof(header->value), "%.*s", (int)value_len, value);
    return len;
}

/* curl calls the debug function only in verbose mode, and prints nothing
 * itself once one is set. */
static int on_debug(CURL *curl, curl_infotype type, char *data, size_t size, void *user)
{
    (void)data;
    (void)size;
    http_progress *progress = user;
    if (type != CURLINFO_HEADER_OUT)
        return 0;
    long port = 0;
    if (curl_easy_getinfo(curl, CURLINFO_LOCAL_PORT, &port) == CURLE_OK)
        atomic_store(&progress->local_port, (int)port);
    atomic_store(&progress->request_sent, true);
    return 0;
}

static void describe(http_response *response, const http_request *request)
{
    const char *method = request->method;
    if (!method)
        method = request->body ? "POST" : "GET";
    const char *scheme_end = strstr(request->url, "://");
    const char *path = scheme_end ? strchr(scheme_end + 3, '/') : NULL;
    snprintf(response->description, sizeof(response->description), "%s %.160s", method, path ? path : request->url);
}

static void set_method_and_body(CURL *curl, const http_request *request)
{
    if (request->method && strcmp(request->method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    else if (request->method)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request->method);
    if (request->body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)request->body_len);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request->body);
    }
}

int http_transfer_start(http_transfer *transfer, const http_request *request, http_response *response)
{
    memset(transfer, 0, sizeof(*transfer));
    memset(response, 0, sizeof(*response));
    describe(response, request);

    struct curl_slist *header_list = NULL;
    for (const char *const *line = request->headers; line && *line; line++) {
        struct curl_slist *longer = curl_slist_append(header_list, *line);
        if (!longer) {
            curl_slist_free_all(header_list);
            snprintf(response->error, sizeof(response->error), "out of memory for the headers of %s", response->description);
            return -1;
        }
        header_list = longer;
    }
    CURL *curl = curl_easy_init();
    if (!curl) {
        curl_slist_free_all(header_list);
        snprintf(response->error, sizeof(response->error), "curl_easy_init failed for %s", response->description);
        return -1;
    }

    curl_easy_setopt(curl, CURLOPT_URL, request->url);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, request->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, response->error);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, response);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, response);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list);
    if (request->http_version)
        curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, request->http_version);
    set_method_and_body(curl, request);
    if (request->progress) {
        curl_easy_setopt(curl, CURLOPT_DEBUGFUNCTION, on_debug);
        curl_easy_setopt(curl, CURLOPT_DEBUGDATA, request->progress);
        curl_easy_setopt(curl, CURLOPT_VERBOSE, 1L);
    }

    *transfer =
        (http_transfer){.curl = curl, .header_list = header_list, .response = response, .started_ms = hv_time_monotonic_ms()};
    return 0;
}

void http_transfer_finish(http_transfer *transfer, CURLcode code)
{
    http_response *response = transfer->response;
    response->elapsed_ms = hv_time_monotonic_ms() - transfer->started_ms;
    response->completed = code == CURLE_OK;
    if (response->completed) {
        response->error[0] = '\0';
    } else {
        /* curl's message is in the same buffer. */
        char detail[CURL_ERROR_SIZE];
        memcpy(detail, response->error, sizeof(detail));
        detail[sizeof(detail) - 1] = '\0';
        snprintf(response->error, sizeof(response->error), "%s: %s", curl_easy_strerror(code), detail);
    }
    curl_easy_getinfo(transfer->curl, CURLINFO_RESPONSE_CODE, &response->status);
    curl_easy_getinfo(transfer->curl, CURLINFO_HTTP_VERSION, &response->http_version);

    curl_easy_cleanup(transfer->curl);
    curl_slist_free_all(transfer->header_list);
    transfer->curl = NULL;
    transfer->header_list = NULL;

    if (!response->body)
        response->body = calloc(1, 1);
    if (!response->body && response->completed) {
        response->completed = false;
        snprintf(response->error, sizeof(response->error), "out of memory for the body of %s", response->description);
    }
}

void http_send(const http_request *request, http_response *out)
{
    http_transfer transfer;
    if (http_transfer_start(&transfer, request, out) != 0) {
        out->body = calloc(1, 1);
        return;
    }
    CURLcode code = curl_easy_perform(transfer.curl);
    http_transfer_finish(&transfer, code);
}

void http_response_release(http_response *response)
{
    free(response->body);
    response->body = NULL;
    response->body_len = 0;
}

const char *http_header_at(const http_response *response, const char *name, size_t index)
{
    for (size_t i = 0; i < response->header_count; i++)
        if (strcasecmp(response->headers[i].name, name) == 0 && index-- == 0)
            return response->headers[i].value;
    return NULL;
}

const char *http_header_value(const http_response *response, const char *name)
{
    return http_header_at(response, name, 0);
}

size_t http_header_count(const http_response *response, const char *name)
{
    size_t count = 0;
    while (http_header_at(response, name, count))
        count++;
    return count;
}
