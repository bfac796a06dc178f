/* The store's operations: decoding a request, running it against
 * PostgreSQL, and packing the reply and the event it publishes.
 *
 * Every org-scoped statement filters by the org id in SQL; see db.c. */
#include "ops.h"
#include "hv_envelope.h"
#include "hv_log.h"
#include "hv_msgpack.h"
#include "hv_time.h"
#include "hv_uuid.h"
#include "metrics.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT_LIMIT 50
#define LIST_MAX_LIMIT 200
#define KEY_MAX_BYTES 256
#define NAME_MAX_BYTES 200

typedef struct {
    db_session *db;
    const hv_request *request;
    msgpack_zone *zone; /* scratch memory freed with the request */
    ops_result *result;
    msgpack_packer reply;
    char org[HV_ORG_ID_MAX + 1]; /* NUL-terminated copy of request->org */
    char trace[80];              /* NUL-terminated copy of request->trace, for logs */
} op_context;

typedef void (*op_handler)(op_context *ctx);

void ops_result_init(ops_result *result)
{
    memset(result, 0, sizeof(*result));
    msgpack_sbuffer_init(&result->reply);
    msgpack_sbuffer_init(&result->event);
}

void ops_result_destroy(ops_result *result)
{
    msgpack_sbuffer_destroy(&result->reply);
    msgpack_sbuffer_destroy(&result->event);
}

/* --- Replies ------------------------------------------------------------ */

static void reply_begin(op_context *ctx, int status)
{
    ctx->result->status = status;
    hv_reply_pack_begin(&ctx->reply, ctx->request->id, status);
}

static void reply_error(op_context *ctx, int status, const char *message)
{
    ctx->result->status = status;
    hv_reply_pack_error(&ctx->reply, ctx->request->id, status, message);
}

/* Turns a failed statement into an error reply, logging what the caller
 * cannot see. */
static void reply_database_error(op_context *ctx, PGresult *result)
{
    if (db_session_lost(ctx->db, result)) {
        hv_metric_inc(metrics.database_errors, HV_LABELS(METRICS_DB_CONNECTION_LOST));
        reply_error(ctx, HV_STATUS_UNAVAILABLE, "database unavailable");
        return;
    }

    const char *sqlstate = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : NULL;
    /* 57014 is query_canceled, which statement_timeout raises. */
    if (sqlstate && strcmp(sqlstate, "57014") == 0) {
        HV_WARN("database statement timed out", HV_STR("op", ctx->result->op), HV_STR("org", ctx->org),
                HV_STR("request_id", ctx->trace));
        hv_metric_inc(metrics.database_errors, HV_LABELS(METRICS_DB_STATEMENT_TIMEOUT));
        reply_error(ctx, HV_STATUS_UNAVAILABLE, "database statement timed out");
        return;
    }
    if (sqlstate && strcmp(sqlstate, "23505") == 0) {
        reply_error(ctx, HV_STATUS_CONFLICT, "already exists");
        return;
    }
    if (sqlstate && strcmp(sqlstate, "23503") == 0) {
        reply_error(ctx, HV_STATUS_NOT_FOUND, "organization not found");
        return;
    }
    /* Class 22 is "data exception" (for example text that is not valid in
     * the database encoding); 23514 is a CHECK constraint. */
    if (sqlstate && (strncmp(sqlstate, "22", 2) == 0 || strcmp(sqlstate, "23514") == 0)) {
        reply_error(ctx, HV_STATUS_BAD_REQUEST, "invalid argument value");
        return;
    }

    char first_line[256];
    const char *message = result ? PQresultErrorMessage(result) : "out of memory";
    snprintf(first_line, sizeof(first_line), "%.*s", (int)strcspn(message, "\n"), message);
    HV_ERROR("database statement failed", HV_STR("op", ctx->result->op), HV_STR("org", ctx->org),
             HV_STR("request_id", ctx->trace), HV_STR("sqlstate", sqlstate), HV_STR("err", first_line));
    hv_metric_inc(metrics.database_errors, HV_LABELS(METRICS_DB_FAILED));
    reply_error(ctx, HV_STATUS_INTERNAL_ERROR, "internal error");
}

/* Returns the session's connection, or replies 503 and returns false. */
static bool require_database(op_context *ctx)
{
    if (db_session_connection(ctx->db))
        return true;
    hv_metric_inc(metrics.database_errors, HV_LABELS(METRICS_DB_UNAVAILABLE));
    reply_error(ctx, HV_STATUS_UNAVAILABLE, "database unavailable");
    return false;
}

/* --- Arguments ---------------------------------------------------------- */

/* Copies a string argument into the request's zone, NUL-terminated. Returns
 * NULL when the argument is absent or not a string. Sets *has_nul when the
 * string contains a NUL byte, which PostgreSQL text cannot hold. */
static const char *string_arg(op_context *ctx, const char *key, size_t *len, bool *has_nul)
{
    const char *text;
    size_t text_len;
    if (!hv_mp_map_get_str(ctx->request->args, key, &text, &text_len))
        return NULL;

    char *copy = msgpack_zone_malloc(ctx->zone, text_len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, text, text_len);
    copy[text_len] = '\0';
    if (len)
        *len = text_len;
    if (has_nul)
        *has_nul = memchr(text, '\0', text_len) != NULL;
    return copy;
}

/* Fetches a required, non-empty string argument without NUL bytes of at most
 * `max_len` bytes, or replies 400 naming it and returns NULL. */
static const char *required_arg(op_context *ctx, const char *key, size_t max_len)
{
    size_t len = 0;
    bool has_nul = false;
    const char *value = string_arg(ctx, key, &len, &has_nul);

    char message[96];
    if (!value || len == 0) {
        snprintf(message, sizeof(message), "missing or empty argument \"%s\"", key);
    } else if (has_nul) {
        snprintf(message, sizeof(message), "argument \"%s\" must not contain NUL characters", key);
    } else if (len > max_len) {
        snprintf(message, sizeof(message), "argument \"%s\" is longer than %zu bytes", key, max_len);
    } else {
        return value;
    }
    reply_error(ctx, HV_STATUS_BAD_REQUEST, message);
    return NULL;
}

/* Replies 400 and returns false unless the request names a well-formed org. */
static bool require_org(op_context *ctx)
{
    if (!ctx->request->org) {
        reply_error(ctx, HV_STATUS_BAD_REQUEST, "this operation requires \"org\"");
        return false;
    }
    if (!hv_org_id_is_valid(ctx->request->org, ctx->request->org_len)) {
        reply_error(ctx, HV_STATUS_BAD_REQUEST, "invalid \"org\"");
        return false;
    }
    memcpy(ctx->org, ctx->request->org, ctx->request->org_len);
    ctx->org[ctx->request->org_len] = '\0';
    return true;
}

/* --- Row packing -------------------------------------------------------- */

/* Copies a validated UUID in the lowercase form PostgreSQL prints, so that a
 * reply names an id the same way however the caller spelled it. */
static void lowercase_uuid(const char *uuid, char out[HV_UUID_TEXT_SIZE])
{
    for (int i = 0; i < HV_UUID_TEXT_SIZE - 1; i++)
        out[i] = (char)(uuid[i] >= 'A' && uuid[i] <= 'F' ? uuid[i] + ('a' - 'A') : uuid[i]);
    out[HV_UUID_TEXT_SIZE - 1] = '\0';
}

static void pack_timestamp(msgpack_packer *packer, const char *key, int64_t epoch_ms)
{
    char text[HV_ISO8601_SIZE];
    if (hv_time_format_iso8601(epoch_ms, text) != 0)
        snprintf(text, sizeof(text), "%s", "1970-01-01T00:00:00.000Z");
    hv_mp_pack_entry_str(packer, key, text);
}

static int64_t column_int(const PGresult *result, int row, int column)
{
    return strtoll(PQgetvalue(result, row, column), NULL, 10);
}

/* Packs {id, orgId, createdAt, updatedAt, messageCount}, leaving room for
 * `extra` more entries that the caller packs next. */
static void pack_conversation(msgpack_packer *packer, const char *id, const char *org, int64_t created_ms, int64_t updated_ms,
                              int64_t message_count, int extra)
{
    msgpack_pack_map(packer, (size_t)(5 + extra));
    hv_mp_pack_entry_str(packer, "id", id);
    hv_mp_pack_entry_str(packer, "orgId", org);
    pack_timestamp(packer, "createdAt", created_ms);
    pack_timestamp(packer, "updatedAt", updated_ms);
    hv_mp_pack_cstr(packer, "messageCount");
    msgpack_pack_int64(packer, message_count);
}

typedef struct {
    const char *id;
    const char *conversation_id;
    const char *role;
    const char *content;
    size_t content_len;
    int64_t created_ms;
} message_row;

static void pack_message(msgpack_packer *packer, const message_row *message)
{
    msgpack_pack_map(packer, 5);
    hv_mp_pack_entry_str(packer, "id", message->id);
    hv_mp_pack_entry_str(packer, "conversationId", message->conversation_id);
    hv_mp_pack_entry_str(packer, "role", message->role);
    hv_mp_pack_cstr(packer, "content");
    hv_mp_pack_strn(packer, message->content, message->content_len);
    pack_timestamp(packer, "timestamp", message->created_ms);
}

/* Starts the event that the broker publishes once the reply is ready; the
 * caller packs the event's data object next. */
static msgpack_packer *event_begin(op_context *ctx, const char *event, msgpack_packer *packer)
{
    if (hv_topic_format(ctx->result->topic, sizeof(ctx->result->topic), ctx->org, strlen(ctx->org), event) < 0) {
        ctx->result->topic[0] = '\0';
        return NULL;
    }
    msgpack_packer_init(packer, &ctx->result->event, msgpack_sbuffer_write);
    hv_event_pack_begin(packer, ctx->org, event);
    return packer;
}

/* --- Operations --------------------------------------------------------- */

static void op_health(op_context *ctx)
{
    if (!require_database(ctx))
        return;
    PGresult *result = db_session_exec(ctx->db, STMT_HEALTH, 0, NULL);
    if (PQresultStatus(result) != PGRES_TUPLES_OK) {
        reply_database_error(ctx, result);
    } else {
        reply_begin(ctx, HV_STATUS_OK);
        msgpack_pack_map(&ctx->reply, 2);
        hv_mp_pack_entry_str(&ctx->reply, "status", "ok");
        hv_mp_pack_entry_str(&ctx->reply, "database", "ok");
    }
    PQclear(result);
}

static void op_resolve_key(op_context *ctx)
{
    size_t len = 0;
    bool has_nul = false;
    const char *key = string_arg(ctx, "key", &len, &has_nul);

    /* Keys that cannot exist are "not found", like unknown ones, so that the reply never reveals how close a guess was. */
    if (!key || len == 0 || len > KEY_MAX_BYTES || has_nul) {
        reply_error(ctx, HV_STATUS_NOT_FOUND, "unknown key");
        return;
    }
    if (!require_database(ctx))
        return;

    const char *params[] = {key};
    PGresult *result = db_session_exec(ctx->db, STMT_RESOLVE_KEY, 1, params);
    if (PQresultStatus(result) != PGRES_TUPLES_OK) {
        reply_database_error(ctx, result);
    } else if (PQntuples(result) == 0) {
        reply_error(ctx, HV_STATUS_NOT_FOUND, "unknown key");
    } else {
        reply_begin(ctx, HV_STATUS_OK);
        msgpack_pack_map(&ctx->reply, 2);
        hv_mp_pack_entry_str(&ctx->reply, "orgId", PQgetvalue(result, 0, 0));
        hv_mp_pack_entry_str(&ctx->reply, "name", PQgetvalue(result, 0, 1));
    }
    PQclear(result);
}

static void op_conversation_create(op_context *ctx)
{
    if (!require_org(ctx) || !require_database(ctx))
        return;

    char id[HV_UUID_TEXT_SIZE];
    if (hv_uuid_v7(id) != 0) {
        reply_error(ctx, HV_STATUS_INTERNAL_ERROR, "random source failed");
        return;
    }
    int64_t now_ms = hv_time_now_ms();
    char now_text[24];
    snprintf(now_text, sizeof(now_text), "%" PRId64, now_ms);

    const char *params[] = {ctx->org, id, now_text};
    PGresult *result = db_session_exec(ctx->db, STMT_CONVERSATION_CREATE, 3, params);
    if (PQresultStatus(result) != PGRES_COMMAND_OK) {
        reply_database_error(ctx, result);
        PQclear(result);
        return;
    }
    PQclear(result);

    reply_begin(ctx, HV_STATUS_CREATED);
    pack_conversation(&ctx->reply, id, ctx->org, now_ms, now_ms, 0, 0);

    msgpack_packer event;
    if (event_begin(ctx, HV_EVENT_CONVERSATION_NEW, &event))
        pack_conversation(&event, id, ctx->org, now_ms, now_ms, 0, 0);
}

/* Parses a list cursor "<updated_at ms>_<uuid>" into its two parts. */
static bool parse_cursor(const char *cursor, size_t len, char *ms_out, size_t ms_size, char *id_out)
{
    const char *separator = memchr(cursor, '_', len);
    if (!separator)
        return false;
    size_t ms_len = (size_t)(separator - cursor);
    size_t id_len = len - ms_len - 1;
    if (ms_len == 0 || ms_len >= ms_size || strspn(cursor, "0123456789") != ms_len || !hv_uuid_is_valid(separator + 1, id_len))
        return false;
    memcpy(ms_out, cursor, ms_len);
    ms_out[ms_len] = '\0';
    memcpy(id_out, separator + 1, id_len);
    id_out[id_len] = '\0';
    return true;
}

static void op_conversation_list(op_context *ctx)
{
    if (!require_org(ctx))
        return;

    uint64_t limit = LIST_DEFAULT_LIMIT;
    const msgpack_object *limit_arg = hv_mp_map_get(ctx->request->args, "limit");
    if (limit_arg && limit_arg->type != MSGPACK_OBJECT_NIL &&
        (!hv_mp_map_get_uint(ctx->request->args, "limit", &limit) || limit < 1 || limit > LIST_MAX_LIMIT)) {
        reply_error(ctx, HV_STATUS_BAD_REQUEST, "invalid \"limit\": expected 1 to 200");
        return;
    }

    char cursor_ms[20] = "", cursor_id[HV_UUID_TEXT_SIZE] = "";
    size_t cursor_len = 0;
    const char *cursor = string_arg(ctx, "cursor", &cursor_len, NULL);
    if (cursor && !parse_cursor(cursor, cursor_len, cursor_ms, sizeof(cursor_ms), cursor_id)) {
        reply_error(ctx, HV_STATUS_BAD_REQUEST, "invalid \"cursor\"");
        return;
    }
    if (!require_database(ctx))
        return;

    char fetch[24];
    snprintf(fetch, sizeof(fetch), "%" PRIu64, limit + 1);
    const char *params[] = {ctx->org, cursor ? cursor_ms : NULL, cursor ? cursor_id : NULL, fetch};
    PGresult *result = db_session_exec(ctx->db, STMT_CONVERSATION_LIST, 4, params);
    if (PQresultStatus(result) != PGRES_TUPLES_OK) {
        reply_database_error(ctx, result);
        PQclear(result);
        return;
    }

    int rows = PQntuples(result);
    bool more = (uint64_t)rows > limit;
    int page_rows = more ? (int)limit : rows;

    reply_begin(ctx, HV_STATUS_OK);
    msgpack_pack_map(&ctx->reply, 2);
    hv_mp_pack_cstr(&ctx->reply, "conversations");
    msgpack_pack_array(&ctx->reply, (size_t)page_rows);
    for (int row = 0; row < page_rows; row++)
        pack_conversation(&ctx->reply, PQgetvalue(result, row, 0), ctx->org, column_int(result, row, 1),
                          column_int(result, row, 2), column_int(result, row, 3), 0);

    hv_mp_pack_cstr(&ctx->reply, "nextCursor");
    if (more) {
        char next[64];
        snprintf(next, sizeof(next), "%s_%s", PQgetvalue(result, page_rows - 1, 2), PQgetvalue(result, page_rows - 1, 0));
        hv_mp_pack_cstr(&ctx->reply, next);
    } else {
        msgpack_pack_nil(&ctx->reply);
    }
    PQclear(result);
}

static void op_conversation_get(op_context *ctx)
{
    if (!require_org(ctx))
        return;

    /* A malformed id is "not found", like another org's, so that a caller cannot distinguish the two. */
    size_t id_len = 0;
    const char *id = string_arg(ctx, "id", &id_len, NULL);
    if (!id || !hv_uuid_is_valid(id, id_len)) {
        reply_error(ctx, HV_STATUS_NOT_FOUND, "conversation not found");
        return;
    }
    if (!require_database(ctx))
        return;

    const char *params[] = {ctx->org, id};
    PGresult *result = db_session_exec(ctx->db, STMT_CONVERSATION_GET, 2, params);
    if (PQresultStatus(result) != PGRES_TUPLES_OK) {
        reply_database_error(ctx, result);
        PQclear(result);
        return;
    }
    int rows = PQntuples(result);
    if (rows == 0) {
        reply_error(ctx, HV_STATUS_NOT_FOUND, "conversation not found");
        PQclear(result);
        return;
    }

    /* Columns: created, updated, count, then message id, role, content,
     * created (NULL message columns when there are no messages). */
    bool has_messages = !PQgetisnull(result, 0, 3);
    char canonical_id[HV_UUID_TEXT_SIZE];
    lowercase_uuid(id, canonical_id);

    reply_begin(ctx, HV_STATUS_OK);
    pack_conversation(&ctx->reply, canonical_id, ctx->org, column_int(result, 0, 0), column_int(result, 0, 1),
                      column_int(result, 0, 2), 1);
    hv_mp_pack_cstr(&ctx->reply, "messages");
    msgpack_pack_array(&ctx->reply, has_messages ? (size_t)rows : 0);
    for (int row = 0; has_messages && row < rows; row++) {
        message_row message = {
            .id = PQgetvalue(result, row, 3),
            .conversation_id = canonical_id,
            .role = PQgetvalue(result, row, 4),
            .content = PQgetvalue(result, row, 5),
            .content_len = (size_t)PQgetlength(result, row, 5),
            .created_ms = column_int(result, row, 6),
        };
        pack_message(&ctx->reply, &message);
    }
    PQclear(result);
}

static void op_message_add(op_context *ctx)
{
    if (!require_org(ctx))
        return;

    size_t id_len = 0;
    const char *conversation_id = string_arg(ctx, "conversationId", &id_len, NULL);
    if (!conversation_id || !hv_uuid_is_valid(conversation_id, id_len)) {
        reply_error(ctx, HV_STATUS_NOT_FOUND, "conversation not found");
        return;
    }
    const char *role = required_arg(ctx, "role", 16);
    if (!role)
        return;
    if (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0) {
        reply_error(ctx, HV_STATUS_BAD_REQUEST, "invalid role: expected \"user\" or \"assistant\"");
        return;
    }
    const char *content = required_arg(ctx, "content", SIZE_MAX);
    if (!content)
        return;
    size_t content_len = strlen(content);
    if (!require_database(ctx))
        return;

    char id[HV_UUID_TEXT_SIZE];
    if (hv_uuid_v7(id) != 0) {
        reply_error(ctx, HV_STATUS_INTERNAL_ERROR, "random source failed");
        return;
    }
    int64_t now_ms = hv_time_now_ms();
    char now_text[24];
    snprintf(now_text, sizeof(now_text), "%" PRId64, now_ms);

    const char *params[] = {ctx->org, conversation_id, id, role, content, now_text};
    PGresult *result = db_session_exec(ctx->db, STMT_MESSAGE_ADD, 6, params);
    if (PQresultStatus(result) != PGRES_TUPLES_OK) {
        reply_database_error(ctx, result);
        PQclear(result);
        return;
    }
    int rows = PQntuples(result);
    PQclear(result);
    if (rows == 0) {
        reply_error(ctx, HV_STATUS_NOT_FOUND, "conversation not found");
        return;
    }

    char canonical_conversation[HV_UUID_TEXT_SIZE];
    lowercase_uuid(conversation_id, canonical_conversation);

    message_row message = {
        .id = id,
        .conversation_id = canonical_conversation,
        .role = role,
        .content = content,
        .content_len = content_len,
        .created_ms = now_ms,
    };
    reply_begin(ctx, HV_STATUS_CREATED);
    pack_message(&ctx->reply, &message);

    msgpack_packer event;
    if (event_begin(ctx, HV_EVENT_MESSAGE_NEW, &event)) {
        msgpack_pack_map(&event, 2);
        hv_mp_pack_entry_str(&event, "conversationId", canonical_conversation);
        hv_mp_pack_cstr(&event, "message");
        pack_message(&event, &message);
    }
}

static void op_org_list(op_context *ctx)
{
    if (!require_database(ctx))
        return;
    PGresult *result = db_session_exec(ctx->db, STMT_ORG_LIST, 0, NULL);
    if (PQresultStatus(result) != PGRES_TUPLES_OK) {
        reply_database_error(ctx, result);
        PQclear(result);
        return;
    }

    int rows = PQntuples(result);
    reply_begin(ctx, HV_STATUS_OK);
    msgpack_pack_map(&ctx->reply, 1);
    hv_mp_pack_cstr(&ctx->reply, "organizations");
    msgpack_pack_array(&ctx->reply, (size_t)rows);
    for (int row = 0; row < rows; row++) {
        msgpack_pack_map(&ctx->reply, 3);
        hv_mp_pack_entry_str(&ctx->reply, "id", PQgetvalue(result, row, 0));
        hv_mp_pack_entry_str(&ctx->reply, "name", PQgetvalue(result, row, 1));
        pack_timestamp(&ctx->reply, "createdAt", column_int(result, row, 2));
    }
    PQclear(result);
}

static void op_org_create(op_context *ctx)
{
    size_t id_len = 0;
    const char *id = string_arg(ctx, "id", &id_len, NULL);
    if (!id || !hv_org_id_is_valid(id, id_len)) {
        reply_error(ctx, HV_STATUS_BAD_REQUEST, "invalid \"id\": expected 1 to 64 characters from A-Z a-z 0-9 _ -");
        return;
    }
    const char *name = required_arg(ctx, "name", NAME_MAX_BYTES);
    if (!name)
        return;
    const char *key = required_arg(ctx, "key", KEY_MAX_BYTES);
    if (!key || !require_database(ctx))
        return;

    int64_t now_ms = hv_time_now_ms();
    char now_text[24];
    snprintf(now_text, sizeof(now_text), "%" PRId64, now_ms);

    const char *params[] = {id, name, key, now_text};
    PGresult *result = db_session_exec(ctx->db, STMT_ORG_CREATE, 4, params);
    if (PQresultStatus(result) != PGRES_COMMAND_OK) {
        reply_database_error(ctx, result);
        PQclear(result);
        return;
    }
    PQclear(result);

    reply_begin(ctx, HV_STATUS_CREATED);
    msgpack_pack_map(&ctx->reply, 3);
    hv_mp_pack_entry_str(&ctx->reply, "id", id);
    hv_mp_pack_entry_str(&ctx->reply, "name", name);
    pack_timestamp(&ctx->reply, "createdAt", now_ms);
}

static const struct {
    const char *name;
    op_handler handler;
} operations[] = {
    {"health", op_health},
    {"org.resolve_key", op_resolve_key},
    {"org.list", op_org_list},
    {"org.create", op_org_create},
    {"conversation.create", op_conversation_create},
    {"conversation.list", op_conversation_list},
    {"conversation.get", op_conversation_get},
    {"message.add", op_message_add},
};

static op_handler find_operation(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(operations) / sizeof(operations[0]); i++) {
        if (strlen(operations[i].name) == len && memcmp(operations[i].name, name, len) == 0)
            return operations[i].handler;
    }
    return NULL;
}

const char *ops_name(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(operations) / sizeof(operations[0]); i++) {
        if (strlen(operations[i].name) == len && memcmp(operations[i].name, name, len) == 0)
            return operations[i].name;
    }
    return NULL;
}

void ops_execute(db_session *db, const char *data, size_t size, size_t max_request_bytes, ops_result *result)
{
    msgpack_unpacked storage;
    msgpack_unpacked_init(&storage);

    hv_request request;
    const char *error = NULL;
    int decoded = hv_request_decode(data, size, &storage, &request, &error);

    op_context ctx = {.db = db, .request = &request, .zone = storage.zone, .result = result};
    msgpack_packer_init(&ctx.reply, &result->reply, msgpack_sbuffer_write);
    result->request_id = request.id;
    snprintf(result->op, sizeof(result->op), "%.*s", decoded == 0 ? (int)request.op_len : 0, request.op ? request.op : "");
    snprintf(ctx.trace, sizeof(ctx.trace), "%.*s", decoded == 0 ? (int)request.trace_len : 0, request.trace ? request.trace : "");
    memcpy(result->trace, ctx.trace, sizeof(result->trace));

    if (size > max_request_bytes) {
        reply_error(&ctx, HV_STATUS_TOO_LARGE, "request too large");
    } else if (decoded != 0) {
        reply_error(&ctx, HV_STATUS_BAD_REQUEST, error);
    } else {
        op_handler handler = find_operation(request.op, request.op_len);
        if (handler)
            handler(&ctx);
        else
            reply_error(&ctx, HV_STATUS_BAD_REQUEST, "unknown operation");
    }

    /* A half-packed event is worth nothing: publish only after success. */
    if (result->status >= 300)
        result->topic[0] = '\0';
    msgpack_unpacked_destroy(&storage);
}
