/* The admin listeners of helvino-store, helvino-gateway and
 * helvino-realtime: GET /metrics parses as Prometheus text (checked by a
 * strict parser below), and its counters and gauges move by the amounts
 * that real requests, Socket.IO CONNECTs and events make them move. Per-org
 * labels stay bounded, the listeners accept loopback addresses only, and
 * "off" turns them off. */
#include "gateway_fixture.h"
#include "harness.h"
#include "http_client.h"
#include "hv_time.h"
#include "kept_memory.h"
#include "realtime_fixture.h"
#include "ws_client.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <curl/curl.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Upper bounds for what the tests wait for; the debug build runs under
 * AddressSanitizer on a shared machine. */
#define REQUEST_TIMEOUT_MS 15000L
#define EVENT_TIMEOUT_MS 5000
#define SETTLE_TIMEOUT_MS 5000
#define EXIT_TIMEOUT_MS 15000
#define POLL_INTERVAL_NS (20 * 1000 * 1000)

#define WEBSOCKET_TARGET "/socket.io/?EIO=4&transport=websocket"
#define METRICS_TYPE "text/plain; version=0.0.4"

static store_fixture store;
static service_fixture gateway;
static service_fixture realtime;

/* The base URLs of the three admin listeners, "http://127.0.0.1:<port>". */
static char store_metrics[96];
static char gateway_metrics[96];
static char realtime_metrics[96];

/* Each listener gets a port that the kernel picks; the service logs it. */
static const char *const store_env[] = {"HELVINO_STORE_METRICS_LISTEN=127.0.0.1:0", NULL};

static void pause_briefly(void)
{
    struct timespec pause = {.tv_nsec = POLL_INTERVAL_NS};
    nanosleep(&pause, NULL);
}

/* --- The Prometheus text format 0.0.4 ------------------------------------------------ */

typedef struct {
    char name[128];
    char labels[512];      /* name="value" pairs as rendered, le included; "" when none */
    char base_labels[512]; /* the same without le */
    char le[32];           /* the le label of a histogram bucket, or "" */
    double value;
    const char *family; /* the name that the # TYPE line gave */
} sample;

typedef struct {
    char name[128];
    char type[16];
    bool has_help;
    bool has_samples;
} family;

#define MAX_SAMPLES 4096
#define MAX_FAMILIES 128

typedef struct {
    sample *samples;
    size_t sample_count;
    family *families;
    size_t family_count;
} exposition;

static bool metric_name_char(char c, bool first)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':' || (!first && isdigit((unsigned char)c));
}

static family *find_family(exposition *out, const char *name)
{
    for (size_t i = 0; i < out->family_count; i++)
        if (strcmp(out->families[i].name, name) == 0)
            return &out->families[i];
    return NULL;
}

static family *add_family(exposition *out, const char *name, size_t line_number)
{
    family *found = find_family(out, name);
    if (found)
        return found;
    cr_assert_lt(out->family_count, MAX_FAMILIES, "line %zu: more than %d metric families", line_number, MAX_FAMILIES);
    found = &out->families[out->family_count++];
    snprintf(found->name, sizeof(found->name), "%s", name);
    return found;
}

/* Reads a metric name at `*at` into `name`. */
static void read_name(const char **at, char *name, size_t size, size_t line_number, const char *line)
{
    const char *start = *at;
    while (metric_name_char(**at, *at == start))
        (*at)++;
    size_t len = (size_t)(*at - start);
    cr_assert(len > 0 && len < size, "line %zu: no valid metric name: %s", line_number, line);
    memcpy(name, start, len);
    name[len] = '\0';
}

/* Appends to a label text, aborting when it does not fit. */
static void append_label(char *text, size_t size, const char *name, const char *value, size_t line_number)
{
    size_t used = strlen(text);
    int written = snprintf(text + used, size - used, "%s%s=\"%s\"", used ? "," : "", name, value);
    cr_assert(written > 0 && (size_t)written < size - used, "line %zu: labels too long for the test", line_number);
}

/* Parses {name="value",...} at `*at` into the sample's label texts. Label
 * values are re-escaped as rendered, so that lookups use the rendered
 * form. */
static void read_labels(const char **at, sample *out, size_t line_number, const char *line)
{
    char seen[16][64];
    size_t seen_count = 0;
    (*at)++;
    while (**at != '}') {
        char name[64];
        const char *start = *at;
        while (isalnum((unsigned char)**at) || **at == '_')
            (*at)++;
        size_t len = (size_t)(*at - start);
        cr_assert(len > 0 && len < sizeof(name) && !isdigit((unsigned char)start[0]), "line %zu: bad label name: %s", line_number,
                  line);
        memcpy(name, start, len);
        name[len] = '\0';
        cr_assert_not(len >= 2 && name[0] == '_' && name[1] == '_', "line %zu: reserved label name %s", line_number, name);
        for (size_t i = 0; i < seen_count; i++)
            cr_assert(strcmp(seen[i], name) != 0, "line %zu: label %s twice: %s", line_number, name, line);
        cr_assert_lt(seen_count, 16, "line %zu: more than 16 labels", line_number);
        snprintf(seen[seen_count++], sizeof(seen[0]), "%s", name);

        cr_assert(at[0][0] == '=' && at[0][1] == '"', "line %zu: expected =\" after label %s: %s", line_number, name, line);
        *at += 2;
        char value[256];
        size_t value_len = 0;
        while (**at != '"') {
            cr_assert(at[0][0] != '\0', "line %zu: unterminated label value: %s", line_number, line);
            cr_assert_lt(value_len, sizeof(value) - 3, "line %zu: label value too long for the test", line_number);
            if (**at == '\\') {
                char escaped = (*at)[1];
                cr_assert(escaped == '\\' || escaped == '"' || escaped == 'n', "line %zu: invalid escape \\%c in a label value",
                          line_number, escaped);
                value[value_len++] = '\\';
                value[value_len++] = escaped;
                *at += 2;
                continue;
            }
            value[value_len++] = *(*at)++;
        }
        value[value_len] = '\0';
        (*at)++;

        append_label(out->labels, sizeof(out->labels), name, value, line_number);
        if (strcmp(name, "le") == 0) {
            cr_assert_lt(strlen(value), sizeof(out->le), "line %zu: le value too long", line_number);
            memcpy(out->le, value, strlen(value) + 1);
        } else {
            append_label(out->base_labels, sizeof(out->base_labels), name, value, line_number);
        }

        if (**at == ',')
            (*at)++;
        else
            cr_assert(at[0][0] == '}', "line %zu: expected , or } after label %s: %s", line_number, name, line);
    }
    (*at)++;
}

static double parse_value(const char *text, size_t line_number)
{
    if (strcmp(text, "+Inf") == 0)
        return INFINITY;
    if (strcmp(text, "-Inf") == 0)
        return -INFINITY;
    if (strcmp(text, "NaN") == 0)
        return NAN;
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    cr_assert(end != text && *end == '\0' && errno == 0, "line %zu: invalid sample value \"%s\"", line_number, text);
    return value;
}

/* Returns the family of a sample name: the name itself, or for a
 * histogram's _bucket, _sum and _count the name without the suffix. */
static family *family_of(exposition *out, const char *name)
{
    family *found = find_family(out, name);
    if (found && found->type[0])
        return found;
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; i < 3; i++) {
        size_t name_len = strlen(name), suffix_len = strlen(suffixes[i]);
        if (name_len <= suffix_len || strcmp(name + name_len - suffix_len, suffixes[i]) != 0)
            continue;
        char base[128];
        snprintf(base, sizeof(base), "%.*s", (int)(name_len - suffix_len), name);
        family *histogram = find_family(out, base);
        if (histogram && strcmp(histogram->type, "histogram") == 0)
            return histogram;
    }
    return NULL;
}

static void parse_comment(exposition *out, const char *line, size_t line_number)
{
    bool help = strncmp(line, "# HELP ", 7) == 0;
    bool type = strncmp(line, "# TYPE ", 7) == 0;
    cr_assert(help || type, "line %zu: a comment other than # HELP or # TYPE: %s", line_number, line);

    const char *at = line + 7;
    char name[128];
    read_name(&at, name, sizeof(name), line_number, line);
    cr_assert(at[0] == ' ', "line %zu: expected a space after the name: %s", line_number, line);
    at++;
    family *target = add_family(out, name, line_number);

    if (help) {
        cr_assert_not(target->has_help, "line %zu: a second # HELP for %s", line_number, name);
        target->has_help = true;
        for (const char *p = at; *p; p++)
            if (*p == '\\') {
                cr_assert(p[1] == '\\' || p[1] == 'n', "line %zu: invalid escape in # HELP: %s", line_number, line);
                p++;
            }
        return;
    }

    cr_assert(target->type[0] == '\0', "line %zu: a second # TYPE for %s", line_number, name);
    cr_assert_not(target->has_samples, "line %zu: # TYPE of %s after its samples", line_number, name);
    cr_assert(strcmp(at, "counter") == 0 || strcmp(at, "gauge") == 0 || strcmp(at, "histogram") == 0 ||
                  strcmp(at, "summary") == 0 || strcmp(at, "untyped") == 0,
              "line %zu: unknown type \"%s\"", line_number, at);
    snprintf(target->type, sizeof(target->type), "%s", at);
}

static void parse_sample(exposition *out, const char *line, size_t line_number, family **current)
{
    cr_assert_lt(out->sample_count, MAX_SAMPLES, "more than %d samples", MAX_SAMPLES);
    sample *parsed = &out->samples[out->sample_count];
    memset(parsed, 0, sizeof(*parsed));

    const char *at = line;
    read_name(&at, parsed->name, sizeof(parsed->name), line_number, line);
    if (*at == '{')
        read_labels(&at, parsed, line_number, line);
    cr_assert(at[0] == ' ' && at[1] != ' ' && at[1] != '\0', "line %zu: expected one space and a value: %s", line_number, line);
    cr_assert(strchr(at + 1, ' ') == NULL, "line %zu: a timestamp or trailing text: %s", line_number, line);
    parsed->value = parse_value(at + 1, line_number);

    /* Every sample belongs to a family with a # TYPE, and a family's
     * samples come together. */
    family *owner = family_of(out, parsed->name);
    cr_assert_not_null(owner, "line %zu: %s has no # TYPE line", line_number, parsed->name);
    cr_assert(owner == *current || !owner->has_samples, "line %zu: the samples of %s are not together", line_number, owner->name);
    *current = owner;
    owner->has_samples = true;
    parsed->family = owner->name;

    if (strcmp(owner->type, "histogram") == 0) {
        bool bucket = strcmp(parsed->name + strlen(owner->name), "_bucket") == 0;
        cr_assert(strcmp(parsed->name, owner->name) != 0, "line %zu: a histogram sample without a suffix", line_number);
        cr_assert(bucket == (parsed->le[0] != '\0'), "line %zu: le belongs on _bucket samples only: %s", line_number, line);
    } else {
        cr_assert(parsed->le[0] == '\0' || strcmp(owner->type, "gauge") == 0, "line %zu: le outside a histogram", line_number);
    }
    if (strcmp(owner->type, "counter") == 0) {
        size_t len = strlen(parsed->name);
        cr_assert(len > 6 && strcmp(parsed->name + len - 6, "_total") == 0, "line %zu: counter %s does not end in _total",
                  line_number, parsed->name);
        cr_assert(parsed->value >= 0, "line %zu: counter %s is negative", line_number, parsed->name);
    }

    for (size_t i = 0; i < out->sample_count; i++)
        cr_assert(strcmp(out->samples[i].name, parsed->name) != 0 || strcmp(out->samples[i].labels, parsed->labels) != 0,
                  "line %zu: series %s{%s} twice", line_number, parsed->name, parsed->labels);
    out->sample_count++;
}

/* Checks each histogram series: buckets with rising bounds and cumulative
 * counts, the last one +Inf and equal to _count, and a _sum. */
static void check_histograms(const exposition *out)
{
    for (size_t i = 0; i < out->sample_count; i++) {
        const sample *first = &out->samples[i];
        if (!first->le[0] || (i > 0 && out->samples[i - 1].le[0] && out->samples[i - 1].family == first->family &&
                              strcmp(out->samples[i - 1].base_labels, first->base_labels) == 0))
            continue;

        /* first is the first bucket of a series. */
        double previous_bound = -INFINITY, previous_count = 0;
        size_t j = i;
        for (; j < out->sample_count && out->samples[j].le[0] && out->samples[j].family == first->family &&
               strcmp(out->samples[j].base_labels, first->base_labels) == 0;
             j++) {
            double bound = parse_value(out->samples[j].le, 0);
            cr_assert_gt(bound, previous_bound, "%s{%s}: le %s does not rise", first->family, first->base_labels,
                         out->samples[j].le);
            cr_assert_geq(out->samples[j].value, previous_count, "%s{%s}: bucket le=%s is not cumulative", first->family,
                          first->base_labels, out->samples[j].le);
            previous_bound = bound;
            previous_count = out->samples[j].value;
        }
        cr_assert(isinf(previous_bound) && previous_bound > 0, "%s{%s}: the last bucket is not +Inf", first->family,
                  first->base_labels);

        bool has_count = false, has_sum = false;
        for (size_t k = 0; k < out->sample_count; k++) {
            const sample *other = &out->samples[k];
            if (other->family != first->family || strcmp(other->labels, first->base_labels) != 0)
                continue;
            if (strcmp(other->name + strlen(first->family), "_count") == 0) {
                has_count = true;
                cr_assert(eq(dbl, other->value, previous_count), "%s{%s}: _count differs from the +Inf bucket", first->family,
                          first->base_labels);
            } else if (strcmp(other->name + strlen(first->family), "_sum") == 0) {
                has_sum = true;
            }
        }
        cr_assert(has_count, "%s{%s}: no _count", first->family, first->base_labels);
        cr_assert(has_sum, "%s{%s}: no _sum", first->family, first->base_labels);
    }
}

/* Parses an exposition strictly, aborting the test at the first line that
 * breaks the format. */
static exposition parse_exposition(const char *text, size_t len)
{
    exposition out = {.samples = keep(calloc(MAX_SAMPLES, sizeof(sample))), .families = keep(calloc(MAX_FAMILIES, sizeof(family)))};
    cr_assert(len > 0 && text[len - 1] == '\n', "the exposition does not end with a line feed");
    cr_assert_eq(strlen(text), len, "the exposition contains a NUL");

    family *current = NULL;
    size_t line_number = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        char *copy = keep(strndup(line, (size_t)(end - line)));
        line_number++;
        cr_assert(copy[0] != '\0', "line %zu is empty", line_number);
        if (copy[0] == '#')
            parse_comment(&out, copy, line_number);
        else
            parse_sample(&out, copy, line_number, &current);
        line = end + 1;
    }
    check_histograms(&out);
    return out;
}

/* Returns the value of the series `name{labels}`, or NAN when it is not
 * there. `labels` is as rendered: op="health",status="200". */
static double value_of(const exposition *scrape, const char *name, const char *labels)
{
    for (size_t i = 0; i < scrape->sample_count; i++)
        if (strcmp(scrape->samples[i].name, name) == 0 && strcmp(scrape->samples[i].labels, labels) == 0)
            return scrape->samples[i].value;
    return NAN;
}

/* Returns the value of a series that must be there. */
static double value_required(const exposition *scrape, const char *name, const char *labels)
{
    double value = value_of(scrape, name, labels);
    cr_assert_not(isnan(value), "no series %s{%s}", name, labels);
    return value;
}

/* Returns the value of a counter series, 0 when it does not exist yet. */
static double count_of(const exposition *scrape, const char *name, const char *labels)
{
    double value = value_of(scrape, name, labels);
    return isnan(value) ? 0 : value;
}

static size_t series_count(const exposition *scrape, const char *name)
{
    size_t count = 0;
    for (size_t i = 0; i < scrape->sample_count; i++)
        count += strcmp(scrape->samples[i].name, name) == 0;
    return count;
}

/* GETs `base_url`/metrics, checks the response and parses it. */
static exposition scrape(const char *base_url)
{
    http_response *response = keep(calloc(1, sizeof(*response)));
    http_send(&(http_request){.url = format_kept("%s/metrics", base_url), .timeout_ms = REQUEST_TIMEOUT_MS}, response);
    keep(response->body);
    cr_assert(response->completed, "GET %s/metrics failed: %s", base_url, response->error);
    cr_assert(eq(long, response->status, 200), "GET %s/metrics: %.300s", base_url, response->body);
    const char *type = http_header_value(response, "content-type");
    cr_assert_not_null(type, "GET %s/metrics has no content-type", base_url);
    cr_assert(eq(int, strncmp(type, METRICS_TYPE, strlen(METRICS_TYPE)), 0), "content-type %s", type);
    return parse_exposition(response->body, response->body_len);
}

/* Scrapes until `name{labels}` has the value `expected`, for at most
 * SETTLE_TIMEOUT_MS: for what a service counts after it has responded. */
static void expect_eventually(const char *base_url, const char *name, const char *labels, double expected)
{
    int64_t deadline = hv_time_monotonic_ms() + SETTLE_TIMEOUT_MS;
    double value;
    for (;;) {
        exposition now = scrape(base_url);
        value = count_of(&now, name, labels);
        if (value == expected || hv_time_monotonic_ms() >= deadline)
            break;
        pause_briefly();
    }
    cr_assert(eq(dbl, value, expected), "%s{%s} is %g after %d ms, expected %g", name, labels, value, SETTLE_TIMEOUT_MS, expected);
}

/* --- Services ------------------------------------------------------------------------ */

/* Reads the address that the service logged with "serving metrics" and
 * writes its base URL. */
static void read_metrics_url(const char *log_path, char *url, size_t size)
{
    int64_t deadline = hv_time_monotonic_ms() + SETTLE_TIMEOUT_MS;
    while (file_count_lines(log_path, "msg=\"serving metrics\"") == 0) {
        cr_assert_lt(hv_time_monotonic_ms(), deadline, "no \"serving metrics\" line in %s", log_path);
        pause_briefly();
    }
    FILE *log = fopen(log_path, "r");
    cr_assert_not_null(log, "opening %s failed: %s", log_path, strerror(errno));
    char line[1024];
    while (fgets(line, sizeof(line), log)) {
        const char *listen = strstr(line, "msg=\"serving metrics\" listen=");
        if (!listen)
            continue;
        listen += strlen("msg=\"serving metrics\" listen=");
        int len = (int)strcspn(listen, " \n");
        snprintf(url, size, "http://%.*s", len, listen);
        break;
    }
    fclose(log);
    cr_assert(eq(int, strncmp(url, "http://127.0.0.1:", 17), 0), "the metrics listener of %s is not on 127.0.0.1: %s", log_path,
              url);
}

static void start_store(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    store_start(&store, store_env);
    read_metrics_url(store.log_path, store_metrics, sizeof(store_metrics));
}

/* The store, the real-time service and the gateway, all with their
 * metrics, the gateway forwarding /socket.io/ to the real-time service. */
static void start_all(void)
{
    start_store();
    realtime_start(&realtime, &store, (const char *[]){"HELVINO_REALTIME_METRICS_LISTEN=127.0.0.1:0", NULL});
    read_metrics_url(realtime.log_path, realtime_metrics, sizeof(realtime_metrics));
    gateway_start(
        &gateway, &store,
        (const char *[]){"HELVINO_GATEWAY_METRICS_LISTEN=127.0.0.1:0", format_kept("HELVINO_REALTIME_URL=%s", realtime.url), NULL});
    read_metrics_url(gateway.log_path, gateway_metrics, sizeof(gateway_metrics));
    gateway_wait_for_store(&gateway, REQUEST_TIMEOUT_MS);
}

static void stop_all(void)
{
    service_expect_clean_stop(&gateway);
    service_expect_clean_stop(&realtime);
    store_expect_clean_stop(&store);
    release_kept();
    curl_global_cleanup();
}

TestSuite(metrics, .init = start_all, .fini = stop_all, .timeout = 120);
TestSuite(metrics_limits, .init = start_store, .fini = stop_all, .timeout = 120);

/* Sends a request to the gateway and returns its status. `key` may be NULL. */
static long gateway_request(const char *method, const char *path, const char *key)
{
    const char *headers[] = {"Expect:", key ? format_kept("x-org-key: %s", key) : NULL, NULL};
    http_response *response = keep(calloc(1, sizeof(*response)));
    bool post = method && strcmp(method, "POST") == 0;
    http_send(&(http_request){.method = method,
                              .url = format_kept("%s%s", gateway.url, path),
                              .body = post ? "{}" : NULL,
                              .body_len = post ? 2 : 0,
                              .headers = headers,
                              .timeout_ms = REQUEST_TIMEOUT_MS},
              response);
    keep(response->body);
    cr_assert(response->completed, "%s %s failed: %s", method ? method : "GET", path, response->error);
    return response->status;
}

/* Returns the "id" of a JSON object body such as a created conversation. */
static const char *created_id(const char *body)
{
    json_t *parsed = keep_json(json_loads(body, 0, NULL));
    const char *id = json_string_value(json_object_get(parsed, "id"));
    cr_assert_not_null(id, "no id in %s", body);
    return id;
}

/* POSTs a body to the gateway with `key`, checks for 201, returns the body. */
static const char *gateway_post(const char *path, const char *key, const char *body)
{
    const char *headers[] = {"Expect:", "Content-Type: application/json", format_kept("x-org-key: %s", key), NULL};
    http_response *response = keep(calloc(1, sizeof(*response)));
    http_send(&(http_request){.url = format_kept("%s%s", gateway.url, path),
                              .body = body,
                              .body_len = strlen(body),
                              .headers = headers,
                              .timeout_ms = REQUEST_TIMEOUT_MS},
              response);
    keep(response->body);
    cr_assert(response->completed, "POST %s failed: %s", path, response->error);
    cr_assert(eq(long, response->status, 201), "POST %s: %.300s", path, response->body);
    return response->body;
}

/* Creates a conversation of the org of `key` and posts a message of
 * `content` to it; returns the conversation's id. */
static const char *post_message(const char *key, const char *content)
{
    const char *conversation = created_id(gateway_post("/conversations", key, "{}"));
    json_t *message = keep_json(json_pack("{s:s,s:s}", "role", "user", "content", content));
    gateway_post(format_kept("/conversations/%s/messages", conversation), key, keep(json_dumps(message, JSON_COMPACT)));
    return conversation;
}

/* --- Socket.IO clients ---------------------------------------------------------------- */

/* Opens a WebSocket session to `service` and reads its open packet. */
static ws_client *open_websocket(const service_fixture *service)
{
    ws_handshake handshake;
    ws_client *ws = ws_connect(service->port, WEBSOCKET_TARGET, NULL, &handshake);
    cr_assert_not_null(ws, "the WebSocket handshake failed: %s", handshake.error);
    ws_frame open;
    cr_assert(eq(int, eio_ws_read(ws, EVENT_TIMEOUT_MS, true, &open), WS_READ_OK), "no open packet: %s", ws_last_error(ws));
    bool is_open = open.len > 0 && open.payload[0] == '0';
    ws_frame_release(&open);
    cr_assert(is_open, "the first packet is not an open packet");
    return ws;
}

/* Reads the next packet that is not a ping, and returns it. */
static const char *next_packet(ws_client *ws)
{
    ws_frame frame;
    cr_assert(eq(int, eio_ws_read(ws, EVENT_TIMEOUT_MS, true, &frame), WS_READ_OK), "no packet: %s", ws_last_error(ws));
    char *packet = keep(strndup(frame.payload, frame.len));
    ws_frame_release(&frame);
    return packet;
}

/* Sends a Socket.IO CONNECT with `payload` (NULL for none) and returns the
 * reply packet. */
static const char *send_connect(ws_client *ws, const char *payload)
{
    const char *packet = payload ? format_kept("40%s", payload) : "40";
    cr_assert(eq(int, ws_send_text(ws, packet), 0), "sending %s failed: %s", packet, ws_last_error(ws));
    return next_packet(ws);
}

/* Opens a WebSocket client of the org of `key`, connected. */
static ws_client *connect_client(const service_fixture *service, const char *key)
{
    ws_client *ws = open_websocket(service);
    const char *reply = send_connect(ws, format_kept("{\"orgKey\":\"%s\"}", key));
    cr_assert(eq(int, strncmp(reply, "40{\"sid\":", 9), 0), "CONNECT with key %s got %s", key, reply);
    return ws;
}

/* Waits for the next event packet, 42[...], on a connected client. */
static void expect_event(ws_client *ws)
{
    const char *packet = next_packet(ws);
    cr_assert(eq(int, strncmp(packet, "42[", 3), 0), "expected an event, got %.200s", packet);
}

/* --- helvino-store ---------------------------------------------------------------------- */

Test(metrics, store_counts_operations)
{
    exposition before = scrape(store_metrics);
    double health = count_of(&before, "helvino_store_operations_total", "op=\"health\",status=\"200\"");
    double created = count_of(&before, "helvino_store_operations_total", "op=\"conversation.create\",status=\"201\"");
    double unknown = count_of(&before, "helvino_store_operations_total", "op=\"unknown\",status=\"400\"");
    double created_events = value_required(&before, "helvino_store_events_published_total", "event=\"conversation:new\"");
    double created_latencies = count_of(&before, "helvino_store_operation_duration_seconds_count", "op=\"conversation.create\"");

    hv_call_result result;
    for (int i = 0; i < 2; i++) {
        store_call(&store, &result, "health", NULL, NULL);
        cr_assert(eq(int, result.reply.status, 200));
        hv_call_result_destroy(&result);
    }
    char conversation[37];
    create_conversation(&store, "org_1", conversation);
    store_call(&store, &result, "no.such.operation", "org_1", NULL);
    cr_assert(eq(int, result.reply.status, 400));
    hv_call_result_destroy(&result);

    exposition after = scrape(store_metrics);
    cr_assert(eq(dbl, count_of(&after, "helvino_store_operations_total", "op=\"health\",status=\"200\""), health + 2));
    cr_assert(
        eq(dbl, count_of(&after, "helvino_store_operations_total", "op=\"conversation.create\",status=\"201\""), created + 1));
    cr_assert(eq(dbl, count_of(&after, "helvino_store_operations_total", "op=\"unknown\",status=\"400\""), unknown + 1));
    cr_assert(
        eq(dbl, value_required(&after, "helvino_store_events_published_total", "event=\"conversation:new\""), created_events + 1));
    cr_assert(eq(dbl, count_of(&after, "helvino_store_operation_duration_seconds_count", "op=\"conversation.create\""),
                 created_latencies + 1));
    /* The operation name the client sent is no label value. */
    for (size_t i = 0; i < after.sample_count; i++)
        cr_assert(strstr(after.samples[i].labels, "no.such.operation") == NULL, "%s{%s}", after.samples[i].name,
                  after.samples[i].labels);
}

Test(metrics, store_reports_workers_and_database)
{
    exposition now = scrape(store_metrics);
    cr_assert(eq(dbl, value_required(&now, "helvino_store_workers", ""), 4));
    cr_assert(eq(dbl, value_required(&now, "helvino_store_workers_busy", ""), 0));
    cr_assert(eq(dbl, value_required(&now, "helvino_store_queue_depth", ""), 0));
    cr_assert(eq(dbl, value_required(&now, "helvino_store_database_up", ""), 1));
    const char *kinds[] = {"connection_lost", "unavailable", "statement_timeout", "failed"};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        cr_assert(eq(dbl, value_required(&now, "helvino_store_database_errors_total", format_kept("kind=\"%s\"", kinds[i])), 0),
                  "kind %s", kinds[i]);
    cr_assert(eq(dbl, value_required(&now, "helvino_store_database_reconnects_total", ""), 0));
}

/* --- helvino-gateway -------------------------------------------------------------------- */

Test(metrics, gateway_counts_requests_by_route)
{
    exposition before = scrape(gateway_metrics);
    const char *list = "method=\"GET\",route=\"/conversations\",status=\"200\"";
    const char *root = "method=\"GET\",route=\"/\",status=\"200\"";
    const char *unmatched = "method=\"GET\",route=\"unmatched\",status=\"404\"";
    const char *no_key = "method=\"POST\",route=\"/conversations\",status=\"401\"";
    const char *preflight = "method=\"OPTIONS\",route=\"/conversations\",status=\"204\"";
    const char *labels[] = {list, root, unmatched, no_key, preflight};
    double counts[5];
    for (size_t i = 0; i < 5; i++)
        counts[i] = count_of(&before, "helvino_gateway_http_requests_total", labels[i]);
    double latencies = count_of(&before, "helvino_gateway_http_request_duration_seconds_count", "route=\"/conversations\"");
    double misses = value_required(&before, "helvino_gateway_key_cache_lookups_total", "result=\"miss\"");
    double hits = value_required(&before, "helvino_gateway_key_cache_lookups_total", "result=\"hit\"");

    /* The first lookup of the key misses the cache, the second hits it. */
    cr_assert(eq(long, gateway_request(NULL, "/conversations", "demo"), 200));
    cr_assert(eq(long, gateway_request(NULL, "/conversations", "demo"), 200));
    cr_assert(eq(long, gateway_request(NULL, "/", NULL), 200));
    cr_assert(eq(long, gateway_request(NULL, "/no/such/path", NULL), 404));
    cr_assert(eq(long, gateway_request("POST", "/conversations", NULL), 401));
    cr_assert(eq(long, gateway_request("OPTIONS", "/conversations", NULL), 204));

    exposition after = scrape(gateway_metrics);
    double expected[5] = {2, 1, 1, 1, 1};
    for (size_t i = 0; i < 5; i++)
        cr_assert(eq(dbl, count_of(&after, "helvino_gateway_http_requests_total", labels[i]), counts[i] + expected[i]), "%s",
                  labels[i]);
    cr_assert(eq(dbl, count_of(&after, "helvino_gateway_http_request_duration_seconds_count", "route=\"/conversations\""),
                 latencies + 4));
    cr_assert(eq(dbl, value_required(&after, "helvino_gateway_key_cache_lookups_total", "result=\"miss\""), misses + 1));
    cr_assert(eq(dbl, value_required(&after, "helvino_gateway_key_cache_lookups_total", "result=\"hit\""), hits + 1));
    /* The scrape itself is no API request. */
    cr_assert(eq(dbl, value_required(&after, "helvino_gateway_http_requests_in_flight", ""), 0));
    /* The path the client sent is no label value. */
    for (size_t i = 0; i < after.sample_count; i++)
        cr_assert(strstr(after.samples[i].labels, "/no/such/path") == NULL, "%s{%s}", after.samples[i].name,
                  after.samples[i].labels);
}

Test(metrics, gateway_counts_forwarded_requests)
{
    exposition before = scrape(gateway_metrics);
    double forwarded = count_of(&before, "helvino_gateway_socketio_forwarded_total", "status=\"200\"");
    double refused = count_of(&before, "helvino_gateway_socketio_forwarded_total", "status=\"400\"");

    cr_assert(eq(long, gateway_request(NULL, "/socket.io/?EIO=4&transport=polling", NULL), 200));
    cr_assert(eq(long, gateway_request(NULL, "/socket.io/?EIO=3&transport=polling", NULL), 400));

    /* A forwarded request is counted when h2o frees it, after the response. */
    expect_eventually(gateway_metrics, "helvino_gateway_socketio_forwarded_total", "status=\"200\"", forwarded + 1);
    expect_eventually(gateway_metrics, "helvino_gateway_socketio_forwarded_total", "status=\"400\"", refused + 1);
    exposition after = scrape(gateway_metrics);
    cr_assert(
        eq(dbl, count_of(&after, "helvino_gateway_http_requests_total", "method=\"GET\",route=\"unmatched\",status=\"200\""), 0),
        "a forwarded request was counted as an API request");
}

/* --- helvino-realtime ------------------------------------------------------------------- */

Test(metrics, realtime_counts_connects_by_result)
{
    const char *results[] = {"ok", "missing_key", "invalid_key", "unavailable", "invalid_namespace"};
    exposition before = scrape(realtime_metrics);
    double counts[5];
    for (size_t i = 0; i < 5; i++)
        counts[i] = value_required(&before, "helvino_realtime_connects_total", format_kept("result=\"%s\"", results[i]));
    double opened = value_required(&before, "helvino_realtime_sessions_opened_total", "transport=\"websocket\"");

    ws_client *valid = connect_client(&realtime, "demo");
    ws_client *missing = open_websocket(&realtime);
    const char *reply = send_connect(missing, "{}");
    cr_assert(eq(str, (char *)reply, "44{\"message\":\"Missing organization key\"}"));
    ws_client *invalid = open_websocket(&realtime);
    reply = send_connect(invalid, "{\"orgKey\":\"no-such-key\"}");
    cr_assert(eq(str, (char *)reply, "44{\"message\":\"Invalid organization key\"}"));
    cr_assert(eq(int, ws_send_text(valid, "40/admin,{}"), 0));
    reply = next_packet(valid);
    cr_assert(eq(str, (char *)reply, "44/admin,{\"message\":\"Invalid namespace\"}"));

    exposition after = scrape(realtime_metrics);
    double expected[5] = {1, 1, 1, 0, 1};
    for (size_t i = 0; i < 5; i++)
        cr_assert(eq(dbl, value_required(&after, "helvino_realtime_connects_total", format_kept("result=\"%s\"", results[i])),
                     counts[i] + expected[i]),
                  "result %s", results[i]);
    cr_assert(eq(dbl, value_required(&after, "helvino_realtime_sessions_opened_total", "transport=\"websocket\""), opened + 3));
    cr_assert(eq(dbl, value_required(&after, "helvino_realtime_connected_clients", "org=\"org_1\""), 1));
    cr_assert(eq(dbl, value_required(&after, "helvino_realtime_rooms", ""), 1));
    cr_assert(ge(dbl, value_required(&after, "helvino_realtime_sessions", "transport=\"websocket\""), 1));
    cr_assert(eq(dbl, value_required(&after, "helvino_realtime_key_cache_lookups_total", "result=\"miss\""), 2),
              "demo and no-such-key were looked up in the store once each");

    /* The client leaves: the gauges go back down. */
    ws_destroy(&valid);
    ws_destroy(&missing);
    ws_destroy(&invalid);
    expect_eventually(realtime_metrics, "helvino_realtime_connected_clients", "org=\"org_1\"", 0);
    expect_eventually(realtime_metrics, "helvino_realtime_rooms", "", 0);
    expect_eventually(realtime_metrics, "helvino_realtime_sessions", "transport=\"websocket\"", 0);
}

Test(metrics, events_counted_from_store_to_clients)
{
    ws_client *first = connect_client(&realtime, "demo");
    ws_client *second = connect_client(&realtime, "demo");
    exposition store_before = scrape(store_metrics);
    exposition realtime_before = scrape(realtime_metrics);
    double published = value_required(&store_before, "helvino_store_events_published_total", "event=\"message:new\"");
    double received = value_required(&realtime_before, "helvino_realtime_events_received_total", "event=\"message:new\"");
    double created = value_required(&realtime_before, "helvino_realtime_events_received_total", "event=\"conversation:new\"");
    double deliveries = count_of(&realtime_before, "helvino_realtime_deliveries_total", "org=\"org_1\"");

    post_message("demo", "Hello, metrics");
    for (int i = 0; i < 2; i++) {
        expect_event(first);
        expect_event(second);
    }

    exposition store_after = scrape(store_metrics);
    cr_assert(
        eq(dbl, value_required(&store_after, "helvino_store_events_published_total", "event=\"message:new\""), published + 1));
    exposition realtime_after = scrape(realtime_metrics);
    cr_assert(
        eq(dbl, value_required(&realtime_after, "helvino_realtime_events_received_total", "event=\"message:new\""), received + 1));
    cr_assert(eq(dbl, value_required(&realtime_after, "helvino_realtime_events_received_total", "event=\"conversation:new\""),
                 created + 1));
    /* Two events, each to two clients. */
    cr_assert(eq(dbl, count_of(&realtime_after, "helvino_realtime_deliveries_total", "org=\"org_1\""), deliveries + 4));
    cr_assert(eq(dbl, value_required(&realtime_after, "helvino_realtime_connected_clients", "org=\"org_1\""), 2));
    ws_destroy(&first);
    ws_destroy(&second);
}

Test(metrics, realtime_counts_polling_and_upgrades)
{
    exposition before = scrape(realtime_metrics);
    double opened = value_required(&before, "helvino_realtime_sessions_opened_total", "transport=\"polling\"");
    double upgrades = value_required(&before, "helvino_realtime_upgrades_total", "");

    polling_session session;
    char error[256];
    cr_assert(eq(int, polling_open(&session, realtime.url, NULL, error, sizeof(error)), 0), "%s", error);
    exposition polling = scrape(realtime_metrics);
    cr_assert(eq(dbl, value_required(&polling, "helvino_realtime_sessions_opened_total", "transport=\"polling\""), opened + 1));
    cr_assert(eq(dbl, value_required(&polling, "helvino_realtime_sessions", "transport=\"polling\""), 1));

    /* The upgrade: a probe WebSocket with the session's id, 2probe, 3probe, 5. */
    ws_handshake handshake;
    ws_client *probe = ws_connect(realtime.port, format_kept("%s&sid=%s", WEBSOCKET_TARGET, session.sid), NULL, &handshake);
    cr_assert_not_null(probe, "the probe's handshake failed: %s", handshake.error);
    cr_assert(eq(int, ws_send_text(probe, "2probe"), 0));
    cr_assert(eq(str, (char *)next_packet(probe), "3probe"));
    cr_assert(eq(int, ws_send_text(probe, "5"), 0));

    expect_eventually(realtime_metrics, "helvino_realtime_upgrades_total", "", upgrades + 1);
    exposition upgraded = scrape(realtime_metrics);
    cr_assert(eq(dbl, value_required(&upgraded, "helvino_realtime_sessions", "transport=\"websocket\""), 1));
    cr_assert(eq(dbl, value_required(&upgraded, "helvino_realtime_sessions", "transport=\"polling\""), 0));
    ws_destroy(&probe);
}

/* --- The listeners themselves ----------------------------------------------------------------- */

Test(metrics, listeners_serve_metrics_path_only)
{
    const char *urls[] = {store_metrics, gateway_metrics, realtime_metrics};
    for (size_t i = 0; i < 3; i++) {
        http_response *missing = keep(calloc(1, sizeof(*missing)));
        http_send(&(http_request){.url = format_kept("%s/", urls[i]), .timeout_ms = REQUEST_TIMEOUT_MS}, missing);
        keep(missing->body);
        cr_assert(missing->completed, "%s/: %s", urls[i], missing->error);
        cr_assert(eq(long, missing->status, 404), "%s/", urls[i]);

        http_response *posted = keep(calloc(1, sizeof(*posted)));
        http_send(&(http_request){.url = format_kept("%s/metrics", urls[i]),
                                  .body = "x",
                                  .body_len = 1,
                                  .headers = (const char *[]){"Expect:", NULL},
                                  .timeout_ms = REQUEST_TIMEOUT_MS},
                  posted);
        keep(posted->body);
        cr_assert(posted->completed, "POST %s/metrics: %s", urls[i], posted->error);
        cr_assert(eq(long, posted->status, 405), "POST %s/metrics", urls[i]);

        http_response *head = keep(calloc(1, sizeof(*head)));
        http_send(&(http_request){.method = "HEAD", .url = format_kept("%s/metrics", urls[i]), .timeout_ms = REQUEST_TIMEOUT_MS},
                  head);
        keep(head->body);
        cr_assert(head->completed, "HEAD %s/metrics: %s", urls[i], head->error);
        cr_assert(eq(long, head->status, 200), "HEAD %s/metrics", urls[i]);
        cr_assert(eq(sz, head->body_len, 0), "HEAD %s/metrics returned a body", urls[i]);
    }
}

Test(metrics, listener_survives_bad_requests)
{
    /* Garbage on a raw connection, then a client that sends nothing and
     * goes: the store's broker goes on serving both requests and metrics. */
    const char *colon = strrchr(store_metrics, ':');
    service_fixture target = {.name = "helvino-store metrics", .port = atoi(colon + 1)};
    int garbage = service_connect(&target);
    static const char not_http[] = "\x16\x03\x01 not HTTP at all\r\n\r\n";
    service_send(&target, garbage, not_http, sizeof(not_http) - 1);
    int silent = service_connect(&target);

    hv_call_result result;
    store_call(&store, &result, "health", NULL, NULL);
    cr_assert(eq(int, result.reply.status, 200));
    hv_call_result_destroy(&result);
    scrape(store_metrics);

    char reply[256] = "";
    struct timeval wait = {.tv_sec = 5};
    setsockopt(garbage, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
    ssize_t got = recv(garbage, reply, sizeof(reply) - 1, 0);
    cr_assert_gt(got, 0, "no response to a request that is not HTTP");
    cr_assert(eq(int, strncmp(reply, "HTTP/1.1 400 ", 13), 0), "%s", reply);
    close(garbage);
    close(silent);
}

Test(metrics_limits, store_serves_metrics_while_waiting_for_database)
{
    /* A database socket folder that does not exist: libpq fails at once. */
    store_fixture waiting;
    store_launch(&waiting, (const char *[]){"HELVINO_STORE_METRICS_LISTEN=127.0.0.1:0",
                                            "HELVINO_DATABASE_URL=host=/nonexistent-helvino-test dbname=helvino", NULL});
    cr_assert(store_wait_for_log(&waiting, "waiting for the database", REQUEST_TIMEOUT_MS), "see %s", waiting.log_path);
    char url[96];
    read_metrics_url(waiting.log_path, url, sizeof(url));

    exposition now = scrape(url);
    cr_assert(eq(dbl, value_required(&now, "helvino_store_database_up", ""), 0));
    cr_assert(eq(dbl, value_required(&now, "helvino_store_workers", ""), 0));
    /* SIGTERM still ends the wait. */
    cr_assert(ne(int, store_stop(&waiting), -1), "the waiting store did not exit on SIGTERM; see %s", waiting.log_path);
}

/* --- Failures, bounds and settings ----------------------------------------------------------- */

Test(metrics_limits, gateway_counts_store_failures)
{
    /* A store endpoint that nothing serves: calls cannot be sent. */
    gateway_start(&gateway, &store,
                  (const char *[]){"HELVINO_GATEWAY_METRICS_LISTEN=127.0.0.1:0", "HELVINO_STORE_TIMEOUT_MS=300",
                                   format_kept("HELVINO_STORE_ENDPOINT=ipc://%s/nobody", store.dir), NULL});
    read_metrics_url(gateway.log_path, gateway_metrics, sizeof(gateway_metrics));
    cr_assert(eq(long, gateway_request(NULL, "/health", NULL), 503));
    cr_assert(eq(long, gateway_request(NULL, "/conversations", "demo"), 503));
    exposition unsent = scrape(gateway_metrics);
    cr_assert(eq(dbl, value_required(&unsent, "helvino_gateway_store_call_failures_total", "reason=\"unavailable\""), 2));
    cr_assert(eq(dbl, value_required(&unsent, "helvino_gateway_store_call_failures_total", "reason=\"timeout\""), 0));
    cr_assert(eq(
        dbl, value_required(&unsent, "helvino_gateway_http_requests_total", "method=\"GET\",route=\"/health\",status=\"503\""), 1));
    service_expect_clean_stop(&gateway);

    /* A store that takes the request and never replies: a timeout. */
    gateway_start(&gateway, &store,
                  (const char *[]){"HELVINO_GATEWAY_METRICS_LISTEN=127.0.0.1:0", "HELVINO_STORE_TIMEOUT_MS=300", NULL});
    read_metrics_url(gateway.log_path, gateway_metrics, sizeof(gateway_metrics));
    gateway_wait_for_store(&gateway, REQUEST_TIMEOUT_MS);
    cr_assert(eq(int, kill(store.pid, SIGSTOP), 0));
    long status = gateway_request(NULL, "/health", NULL);
    kill(store.pid, SIGCONT);
    cr_assert(eq(long, status, 503));
    exposition timed_out = scrape(gateway_metrics);
    cr_assert(eq(dbl, value_required(&timed_out, "helvino_gateway_store_call_failures_total", "reason=\"timeout\""), 1));
}

Test(metrics_limits, org_labels_bounded_by_first_seen)
{
    char org_a[80], org_b[80], org_c[80];
    create_unique_org(&store, "first", org_a, sizeof(org_a));
    create_unique_org(&store, "second", org_b, sizeof(org_b));
    create_unique_org(&store, "third", org_c, sizeof(org_c));
    realtime_start(&realtime, &store,
                   (const char *[]){"HELVINO_REALTIME_METRICS_LISTEN=127.0.0.1:0", "HELVINO_METRICS_MAX_ORGS=1", NULL});
    read_metrics_url(realtime.log_path, realtime_metrics, sizeof(realtime_metrics));

    ws_client *a = connect_client(&realtime, format_kept("key-%s", org_a));
    ws_client *b = connect_client(&realtime, format_kept("key-%s", org_b));
    ws_client *c = connect_client(&realtime, format_kept("key-%s", org_c));

    exposition now = scrape(realtime_metrics);
    cr_assert(eq(dbl, value_required(&now, "helvino_realtime_connected_clients", format_kept("org=\"%s\"", org_a)), 1));
    cr_assert(eq(dbl, value_required(&now, "helvino_realtime_connected_clients", "org=\"_other\""), 2));
    cr_assert(eq(sz, series_count(&now, "helvino_realtime_connected_clients"), 2));
    cr_assert(eq(dbl, value_required(&now, "helvino_realtime_rooms", ""), 3));

    ws_destroy(&b);
    expect_eventually(realtime_metrics, "helvino_realtime_connected_clients", "org=\"_other\"", 1);
    ws_destroy(&a);
    ws_destroy(&c);
}

Test(metrics_limits, org_labels_follow_allow_list)
{
    char org_a[80], org_b[80];
    create_unique_org(&store, "unlisted", org_a, sizeof(org_a));
    create_unique_org(&store, "listed", org_b, sizeof(org_b));
    realtime_start(
        &realtime, &store,
        (const char *[]){"HELVINO_REALTIME_METRICS_LISTEN=127.0.0.1:0", format_kept("HELVINO_METRICS_ORGS=%s", org_b), NULL});
    read_metrics_url(realtime.log_path, realtime_metrics, sizeof(realtime_metrics));

    /* The unlisted org comes first and still gets no label of its own. */
    ws_client *a = connect_client(&realtime, format_kept("key-%s", org_a));
    ws_client *b = connect_client(&realtime, format_kept("key-%s", org_b));
    exposition now = scrape(realtime_metrics);
    cr_assert(eq(dbl, value_required(&now, "helvino_realtime_connected_clients", "org=\"_other\""), 1));
    cr_assert(eq(dbl, value_required(&now, "helvino_realtime_connected_clients", format_kept("org=\"%s\"", org_b)), 1));
    cr_assert(isnan(value_of(&now, "helvino_realtime_connected_clients", format_kept("org=\"%s\"", org_a))));
    ws_destroy(&a);
    ws_destroy(&b);
}

Test(metrics_limits, slow_polling_client_is_counted)
{
    realtime_start(&realtime, &store,
                   (const char *[]){"HELVINO_REALTIME_METRICS_LISTEN=127.0.0.1:0", "HELVINO_REALTIME_MAX_BUFFERED_BYTES=1024",
                                    "HELVINO_REALTIME_PING_INTERVAL_MS=30000", "HELVINO_REALTIME_PING_TIMEOUT_MS=30000", NULL});
    read_metrics_url(realtime.log_path, realtime_metrics, sizeof(realtime_metrics));
    gateway_start(&gateway, &store, NULL);
    gateway_wait_for_store(&gateway, REQUEST_TIMEOUT_MS);

    /* A polling client that connects, takes its CONNECT reply and then
     * stops polling. */
    polling_session session;
    char error[256];
    cr_assert(eq(int, polling_open(&session, realtime.url, NULL, error, sizeof(error)), 0), "%s", error);
    http_response posted, reply;
    polling_post(&session, "40{\"orgKey\":\"demo\"}", 19, &posted);
    cr_assert(eq(long, posted.status, 200), "%s", posted.body);
    http_response_release(&posted);
    polling_get(&session, REQUEST_TIMEOUT_MS, &reply);
    bool connected = reply.body && strstr(reply.body, "40{\"sid\":") != NULL;
    cr_assert(connected, "no CONNECT reply: %s", reply.body);
    http_response_release(&reply);

    /* One message larger than the limit: the event does not fit. */
    char content[1500];
    memset(content, 'x', sizeof(content) - 1);
    content[sizeof(content) - 1] = '\0';
    post_message("demo", content);

    expect_eventually(realtime_metrics, "helvino_realtime_slow_clients_dropped_total", "transport=\"polling\"", 1);
    exposition now = scrape(realtime_metrics);
    cr_assert(eq(dbl, value_required(&now, "helvino_realtime_slow_clients_dropped_total", "transport=\"websocket\""), 0));
    cr_assert(eq(dbl, value_required(&now, "helvino_realtime_connected_clients", "org=\"org_1\""), 0));
}

/* Runs `binary_variable`'s service with `variables` added, expects it to
 * exit with `expected_status` within EXIT_TIMEOUT_MS, and returns its log. */
static const char *run_until_exit(const char *binary_variable, const char *const *variables, int expected_status)
{
    service_fixture service = {.name = binary_variable};
    snprintf(service.log_path, sizeof(service.log_path), "%s/exit.%s.%lld.log", store.dir, binary_variable,
             (long long)hv_time_monotonic_ms());
    const char *base[] = {format_kept("HELVINO_STORE_ENDPOINT=%s", store.store_endpoint),
                          format_kept("HELVINO_EVENTS_ENDPOINT=%s", store.events_endpoint), "HELVINO_HTTP_LISTEN=127.0.0.1:0",
                          "HELVINO_REALTIME_LISTEN=127.0.0.1:0", NULL};
    service.pid = service_spawn(service_binary_path(binary_variable), service.log_path, base, variables, SIGKILL);
    int status = service_wait_exit(&service, EXIT_TIMEOUT_MS);
    if (status == -1)
        service_stop(&service);
    cr_assert(eq(int, status, expected_status), "%s exited with %d; see %s", binary_variable, status, service.log_path);

    FILE *log = fopen(service.log_path, "r");
    cr_assert_not_null(log);
    char *text = keep(calloc(1, 65536));
    size_t len = fread(text, 1, 65535, log);
    text[len] = '\0';
    fclose(log);
    return text;
}

static const struct {
    const char *binary_variable;
    const char *listen_variable;
    const char *default_address;
} services[] = {
    {"HELVINO_STORE_BIN", "HELVINO_STORE_METRICS_LISTEN", "127.0.0.1:9101"},
    {"HELVINO_GATEWAY_BIN", "HELVINO_GATEWAY_METRICS_LISTEN", "127.0.0.1:9102"},
    {"HELVINO_REALTIME_BIN", "HELVINO_REALTIME_METRICS_LISTEN", "127.0.0.1:9103"},
};

Test(metrics_limits, non_loopback_addresses_are_rejected)
{
    const char *addresses[] = {"0.0.0.0:0", "[::]:0", "192.0.2.10:9101"};
    for (size_t i = 0; i < 3; i++) {
        for (size_t j = 0; j < sizeof(addresses) / sizeof(addresses[0]); j++) {
            const char *variable = format_kept("%s=%s", services[i].listen_variable, addresses[j]);
            /* An address to fix is an invalid setting: exit 2, which the
             * units do not restart. */
            const char *log = run_until_exit(services[i].binary_variable, (const char *[]){variable, NULL}, 2);
            cr_assert_not_null(strstr(log, "opening the metrics listener failed"), "%s: %s", variable, log);
            cr_assert_not_null(strstr(log, "must be a loopback address"), "%s: %s", variable, log);
        }
    }
}

/* Runs `binary_variable`'s binary with --help and returns what it printed. */
static const char *help_text(const char *binary_variable)
{
    const char *binary = service_binary_path(binary_variable);
    int pipe_fds[2];
    cr_assert(eq(int, pipe(pipe_fds), 0), "pipe failed: %s", strerror(errno));
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork failed: %s", strerror(errno));
    if (pid == 0) {
        dup2(pipe_fds[1], STDOUT_FILENO);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        execl(binary, binary, "--help", (char *)NULL);
        _exit(127);
    }
    close(pipe_fds[1]);
    char *text = keep(calloc(1, 65536));
    size_t len = 0;
    ssize_t got;
    while (len < 65535 && (got = read(pipe_fds[0], text + len, 65535 - len)) > 0)
        len += (size_t)got;
    close(pipe_fds[0]);
    service_fixture helped = {.name = binary_variable, .pid = pid};
    cr_assert(eq(int, service_wait_exit(&helped, EXIT_TIMEOUT_MS), 0), "%s --help did not exit 0", binary);
    return text;
}

Test(metrics_limits, help_shows_loopback_defaults)
{
    for (size_t i = 0; i < 3; i++) {
        const char *help = help_text(services[i].binary_variable);
        const char *option = strstr(help, "--metrics-listen VALUE\n");
        cr_assert_not_null(option, "%s --help lists no --metrics-listen:\n%s", services[i].binary_variable, help);
        const char *defaults = format_kept("default: %s   env: %s\n", services[i].default_address, services[i].listen_variable);
        cr_assert_not_null(strstr(option, defaults), "%s --help does not show \"%s\":\n%s", services[i].binary_variable, defaults,
                           option);
    }
    const char *realtime_help = help_text("HELVINO_REALTIME_BIN");
    cr_assert_not_null(strstr(realtime_help, "default: (empty)   env: HELVINO_METRICS_ORGS\n"), "%s", realtime_help);
    cr_assert_not_null(strstr(realtime_help, "default: 20   env: HELVINO_METRICS_MAX_ORGS\n"), "%s", realtime_help);
}

/* Returns how many TCP sockets of process `pid` listen, and writes the
 * local address of the one on `port` to `address`, in the hex form of
 * /proc/net/tcp ("0100007F" for 127.0.0.1), or "" when none is on that
 * port. */
static int listening_sockets(pid_t pid, int port, char *address, size_t address_size)
{
    address[0] = '\0';
    unsigned long inodes[256];
    size_t inode_count = 0;
    DIR *fds = opendir(format_kept("/proc/%d/fd", (int)pid));
    cr_assert_not_null(fds, "reading the descriptors of %d failed: %s", (int)pid, strerror(errno));
    struct dirent *entry;
    while ((entry = readdir(fds)) && inode_count < 256) {
        char target[64];
        ssize_t len = readlink(format_kept("/proc/%d/fd/%s", (int)pid, entry->d_name), target, sizeof(target) - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        unsigned long inode;
        if (sscanf(target, "socket:[%lu]", &inode) == 1)
            inodes[inode_count++] = inode;
    }
    closedir(fds);

    int count = 0;
    const char *tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    for (size_t t = 0; t < 2; t++) {
        FILE *table = fopen(tables[t], "r");
        if (!table)
            continue;
        char line[512];
        while (fgets(line, sizeof(line), table)) {
            char local[64], state[8];
            unsigned long inode;
            if (sscanf(line, " %*s %63s %*s %7s %*s %*s %*s %*s %*s %lu", local, state, &inode) != 3 || strcmp(state, "0A") != 0)
                continue;
            for (size_t i = 0; i < inode_count; i++) {
                if (inodes[i] != inode)
                    continue;
                count++;
                const char *colon = strrchr(local, ':');
                if (colon && strtol(colon + 1, NULL, 16) == port)
                    snprintf(address, address_size, "%.*s", (int)(colon - local), local);
            }
        }
        fclose(table);
    }
    return count;
}

static int port_of(const char *url)
{
    return atoi(strrchr(url, ':') + 1);
}

Test(metrics, listeners_bound_to_loopback)
{
    const struct {
        pid_t pid;
        const char *url;
        int sockets; /* the service's listening TCP sockets, its metrics listener included */
    } bound[] = {{store.pid, store_metrics, 1}, {gateway.pid, gateway_metrics, 2}, {realtime.pid, realtime_metrics, 2}};
    for (size_t i = 0; i < 3; i++) {
        char address[64];
        int count = listening_sockets(bound[i].pid, port_of(bound[i].url), address, sizeof(address));
        cr_assert(eq(int, count, bound[i].sockets), "%s", bound[i].url);
        /* /proc/net/tcp shows 127.0.0.1 as 0100007F. */
        cr_assert(eq(str, address, "0100007F"), "%s listens on %s", bound[i].url, address);
    }
}

Test(metrics_limits, off_opens_no_listener)
{
    const char *off[] = {"HELVINO_GATEWAY_METRICS_LISTEN=off", "HELVINO_REALTIME_METRICS_LISTEN=off", NULL};
    realtime_start(&realtime, &store, off);
    gateway_start(&gateway, &store, off);
    store_fixture quiet;
    store_start(&quiet, (const char *[]){"HELVINO_STORE_METRICS_LISTEN=off", NULL});

    char address[64];
    cr_assert(eq(int, listening_sockets(gateway.pid, gateway.port, address, sizeof(address)), 1));
    cr_assert(eq(str, address, "0100007F"), "the gateway's one listener is not its HTTP port");
    cr_assert(eq(int, listening_sockets(realtime.pid, realtime.port, address, sizeof(address)), 1));
    cr_assert(eq(str, address, "0100007F"), "the real-time service's one listener is not its Socket.IO port");
    cr_assert(eq(int, listening_sockets(quiet.pid, 0, address, sizeof(address)), 0), "the store listens on TCP");

    const char *logs[] = {gateway.log_path, realtime.log_path, quiet.log_path};
    for (size_t i = 0; i < 3; i++) {
        cr_assert(eq(int, file_count_lines(logs[i], "msg=\"metrics listener off\""), 1), "%s", logs[i]);
        cr_assert(eq(int, file_count_lines(logs[i], "msg=\"serving metrics\""), 0), "%s", logs[i]);
    }
    store_expect_clean_stop(&quiet);
}

Test(metrics_limits, bad_org_settings_are_rejected)
{
    const char *log = run_until_exit("HELVINO_REALTIME_BIN", (const char *[]){"HELVINO_METRICS_ORGS=org_1,not an org", NULL}, 2);
    cr_assert_not_null(strstr(log, "invalid org id \"not an org\" in the metrics org list"), "%s", log);
    log = run_until_exit("HELVINO_REALTIME_BIN", (const char *[]){"HELVINO_METRICS_MAX_ORGS=5000", NULL}, 2);
    cr_assert_not_null(strstr(log, "HELVINO_METRICS_MAX_ORGS"), "%s", log);
    cr_assert_not_null(strstr(log, "from 0 to 1000"), "%s", log);
}
