/* One PostgreSQL connection per worker: connecting, reconnecting with
 * backoff, prepared statements, and error classification. */
#ifndef STORE_DB_H
#define STORE_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

/* The prepared statements, by index into the statement table in db.c. */
typedef enum {
    STMT_RESOLVE_KEY,
    STMT_CONVERSATION_CREATE,
    STMT_CONVERSATION_LIST,
    STMT_CONVERSATION_GET,
    STMT_MESSAGE_ADD,
    STMT_ORG_LIST,
    STMT_ORG_CREATE,
    STMT_HEALTH,
    STMT_COUNT
} db_statement;

typedef struct db_session db_session;

/* Creates a session that connects lazily with `conninfo` (a libpq
 * connection string or URI; empty means the PG* environment variables).
 * The string must outlive the session. Returns NULL when out of memory. */
db_session *db_session_new(const char *conninfo);

void db_session_destroy(db_session **session);

/* Returns a live connection with every statement prepared, connecting or
 * reconnecting when needed, or NULL while the database is unreachable: then
 * the next attempt waits for a backoff that grows from 100 ms to 5 s. */
PGconn *db_session_connection(db_session *session);

/* Sets the statement_timeout of the sessions' connections, in milliseconds
 * (0 means none). Call before any session connects. */
void db_set_statement_timeout(long timeout_ms);

/* Opens a plain connection (no prepared statements), for start-up work such
 * as migrations. `options` are server options in libpq's "options" form, or
 * NULL. Returns NULL with libpq's message in `error`. */
PGconn *db_connect(const char *conninfo, const char *options, char *error, size_t error_size);

/* Connects now, ignoring the backoff. Returns the connection or NULL, with
 * libpq's message in `error`. */
PGconn *db_session_connect_now(db_session *session, char *error, size_t error_size);

/* Runs a prepared statement with text parameters (NUL-terminated strings or
 * NULL for SQL NULL). Returns the result, which the caller frees with
 * PQclear; NULL only when out of memory. */
PGresult *db_session_exec(db_session *session, db_statement statement, int param_count, const char *const *params);

/* Returns true when a failed result means the connection itself is gone;
 * the session then drops the connection and schedules a reconnect. */
bool db_session_lost(db_session *session, const PGresult *result);

/* Returns whether the database was reachable at the last attempt of any
 * session. */
bool db_is_up(void);

#endif
