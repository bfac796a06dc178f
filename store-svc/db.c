/* One PostgreSQL connection per worker: connecting, reconnecting with
 * backoff, prepared statements, and error classification. */
#include "db.h"
#include "hv_log.h"
#include "hv_time.h"
#include "metrics.h"

#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/* Timestamps are stored as timestamptz and travel as whole milliseconds
 * since the epoch, so that the C side formats them and rounding never
 * changes a value on the way. */
#define MS_TO_TIMESTAMP(param) "('epoch'::timestamptz + " param "::int8 * interval '1 millisecond')"
#define TIMESTAMP_TO_MS(column) "(extract(epoch from " column ") * 1000)::int8"

static const struct {
    const char *name;
    const char *sql;
} statements[STMT_COUNT] = {
    [STMT_RESOLVE_KEY] = {"resolve_key",
                          "SELECT o.id, o.name FROM org_keys k JOIN organizations o ON o.id = k.org_id"
                          " WHERE k.key_hash = sha256(convert_to($1, 'UTF8')) AND k.revoked_at IS NULL"},

    [STMT_CONVERSATION_CREATE] = {"conversation_create",
                                  "INSERT INTO conversations (id, org_id, created_at, updated_at, message_count)"
                                  " VALUES ($2, $1, " MS_TO_TIMESTAMP("$3") ", " MS_TO_TIMESTAMP("$3") ", 0)"},

    /* $2 and $3 are the cursor (the last row's updated_at in ms and id), or
     * NULL for the first page; $4 is the page size plus one, to learn
     * whether another page follows. */
    [STMT_CONVERSATION_LIST] = {"conversation_list",
                                "SELECT id, " TIMESTAMP_TO_MS("created_at") ", " TIMESTAMP_TO_MS("updated_at") ", message_count"
                                " FROM conversations WHERE org_id = $1"
                                " AND ($2::int8 IS NULL OR (updated_at, id) < (" MS_TO_TIMESTAMP("$2") ", $3::uuid))"
                                " ORDER BY updated_at DESC, id DESC LIMIT $4"},

    /* One row per message, or one row with NULL message columns for a
     * conversation without messages; no row when it is not the org's. */
    [STMT_CONVERSATION_GET] = {"conversation_get",
                               "SELECT " TIMESTAMP_TO_MS("c.created_at") ", " TIMESTAMP_TO_MS("c.updated_at") ", c.message_count,"
                               " m.id, m.role, m.content, " TIMESTAMP_TO_MS("m.created_at")
                               " FROM conversations c LEFT JOIN messages m"
                               " ON m.org_id = c.org_id AND m.conversation_id = c.id"
                               " WHERE c.org_id = $1 AND c.id = $2"
                               " ORDER BY m.created_at, m.id"},

    /* One statement, so the insert and the counter move together or not at
     * all; the row lock taken by the UPDATE serializes concurrent adds to
     * one conversation. No row comes back when the conversation is not the
     * org's. */
    [STMT_MESSAGE_ADD] = {"message_add",
                          "WITH bumped AS ("
                          " UPDATE conversations SET message_count = message_count + 1,"
                          " updated_at = greatest(updated_at, " MS_TO_TIMESTAMP("$6") ")"
                          " WHERE org_id = $1 AND id = $2 RETURNING org_id, id)"
                          " INSERT INTO messages (id, org_id, conversation_id, role, content, created_at)"
                          " SELECT $3, org_id, id, $4, $5, " MS_TO_TIMESTAMP("$6") " FROM bumped RETURNING id"},

    [STMT_ORG_LIST] = {"org_list", "SELECT id, name, " TIMESTAMP_TO_MS("created_at") " FROM organizations ORDER BY id"},

    [STMT_ORG_CREATE] = {"org_create",
                         "WITH org AS (INSERT INTO organizations (id, name, created_at)"
                         " VALUES ($1, $2, " MS_TO_TIMESTAMP("$4") ") RETURNING id)"
                         " INSERT INTO org_keys (key_hash, org_id) SELECT sha256(convert_to($3, 'UTF8')), id FROM org"},

    [STMT_HEALTH] = {"health", "SELECT 1"},
};

struct db_session {
    const char *conninfo;
    PGconn *conn;
    int64_t next_attempt_ms; /* monotonic time before which no reconnect is tried */
    int backoff_ms;
    bool connected_before; /* a later connection is a reconnect */
};

/* Shared by every session, so that an outage is logged once and not once
 * per worker. */
static atomic_bool database_up = true;

static void report_down(const char *reason)
{
    if (atomic_exchange(&database_up, false)) {
        char first_line[256];
        snprintf(first_line, sizeof(first_line), "%.*s", (int)strcspn(reason, "\n"), reason);
        HV_WARN("database connection lost; replying 503 and reconnecting with backoff", HV_STR("err", first_line));
    }
}

static void report_up(void)
{
    if (!atomic_exchange(&database_up, true))
        HV_INFO("database connection restored", HV_LOG_END);
}

bool db_is_up(void)
{
    return atomic_load(&database_up);
}

db_session *db_session_new(const char *conninfo)
{
    db_session *session = calloc(1, sizeof(*session));
    if (!session)
        return NULL;
    session->conninfo = conninfo;
    session->backoff_ms = BACKOFF_MIN_MS;
    return session;
}

void db_session_destroy(db_session **session)
{
    if (!*session)
        return;
    if ((*session)->conn)
        PQfinish((*session)->conn);
    free(*session);
    *session = NULL;
}

static void drop_connection(db_session *session)
{
    if (session->conn) {
        PQfinish(session->conn);
        session->conn = NULL;
    }
    session->next_attempt_ms = hv_time_monotonic_ms() + session->backoff_ms;
    session->backoff_ms = session->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : session->backoff_ms * 2;
}

static int prepare_statements(PGconn *conn, char *error, size_t error_size)
{
    for (int i = 0; i < STMT_COUNT; i++) {
        PGresult *result = PQprepare(conn, statements[i].name, statements[i].sql, 0, NULL);
        bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
        if (!ok)
            snprintf(error, error_size, "preparing %s failed: %s", statements[i].name, PQerrorMessage(conn));
        PQclear(result);
        if (!ok)
            return -1;
    }
    return 0;
}

/* Server options of every worker connection ("-c statement_timeout=..."). */
static char session_options[64];

void db_set_statement_timeout(long timeout_ms)
{
    snprintf(session_options, sizeof(session_options), "-c statement_timeout=%ld", timeout_ms);
}

/* Logs a server notice (such as "relation ... already exists, skipping")
 * as a debug line, instead of libpq's default of printing it raw on stderr. */
static void log_notice(void *data, const char *message)
{
    (void)data;
    char line[256];
    snprintf(line, sizeof(line), "%.*s", (int)strcspn(message, "\n"), message);
    HV_DEBUG("database notice", HV_STR("notice", line));
}

PGconn *db_connect(const char *conninfo, const char *options, char *error, size_t error_size)
{
    /* "options" comes before "dbname", so options in the connection string
     * itself win; expand_dbname=1 lets "dbname" be a whole connection
     * string. */
    static const char *const keywords[] = {"options", "dbname", "connect_timeout", "fallback_application_name", NULL};
    const char *values[] = {options ? options : "", conninfo, "5", "helvino-store", NULL};

    PGconn *conn = PQconnectdbParams(keywords, values, 1);
    if (conn && PQstatus(conn) == CONNECTION_OK) {
        PQsetNoticeProcessor(conn, log_notice, NULL);
        return conn;
    }
    snprintf(error, error_size, "%s", conn ? PQerrorMessage(conn) : "out of memory");
    PQfinish(conn);
    return NULL;
}

PGconn *db_session_connect_now(db_session *session, char *error, size_t error_size)
{
    if (session->conn)
        PQfinish(session->conn);

    session->conn = db_connect(session->conninfo, session_options, error, error_size);
    if (!session->conn || prepare_statements(session->conn, error, error_size) != 0) {
        hv_metric_inc(metrics.database_connect_failures, NULL);
        report_down(error);
        drop_connection(session);
        return NULL;
    }

    if (session->connected_before)
        hv_metric_inc(metrics.database_reconnects, NULL);
    session->connected_before = true;
    session->backoff_ms = BACKOFF_MIN_MS;
    report_up();
    return session->conn;
}

/* Notices a connection that the server has already closed (for instance
 * after a restart) before a query is sent on it: the server's goodbye makes
 * the socket readable, and libpq then reports the connection as bad. */
static bool connection_looks_alive(PGconn *conn)
{
    struct pollfd descriptor = {.fd = PQsocket(conn), .events = POLLIN};
    if (descriptor.fd < 0)
        return false;
    if (poll(&descriptor, 1, 0) > 0) {
        if (!PQconsumeInput(conn))
            return false;
        PGnotify *notice;
        while ((notice = PQnotifies(conn)))
            PQfreemem(notice);
    }
    return PQstatus(conn) == CONNECTION_OK;
}

PGconn *db_session_connection(db_session *session)
{
    if (session->conn && connection_looks_alive(session->conn))
        return session->conn;

    if (session->conn) {
        report_down(PQerrorMessage(session->conn));
        PQfinish(session->conn);
        session->conn = NULL;
        /* Try once right away: the server may be back already. */
        session->next_attempt_ms = 0;
    }
    if (hv_time_monotonic_ms() < session->next_attempt_ms)
        return NULL;

    char error[512];
    return db_session_connect_now(session, error, sizeof(error));
}

PGresult *db_session_exec(db_session *session, db_statement statement, int param_count, const char *const *params)
{
    return PQexecPrepared(session->conn, statements[statement].name, param_count, params, NULL, NULL, 0);
}

bool db_session_lost(db_session *session, const PGresult *result)
{
    if (session->conn && PQstatus(session->conn) == CONNECTION_OK)
        return false;
    report_down(result ? PQresultErrorMessage(result) : "connection lost");
    drop_connection(session);
    session->next_attempt_ms = 0;
    return true;
}
