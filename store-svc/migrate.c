/* Versioned schema migrations, embedded in the binary, and the demo seed. */
#include "migrate.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* Any constant works as long as no other program on the same database uses
 * it; this one spells "HLVN" in ASCII. */
#define MIGRATION_LOCK_KEY "1212962382"

/* Runs SQL that returns no rows of interest. */
static int run_command(PGconn *conn, const char *sql, char *error, size_t error_size)
{
    PGresult *result = PQexec(conn, sql);
    ExecStatusType status = PQresultStatus(result);
    bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(error, error_size, "%s", PQresultErrorMessage(result));
    PQclear(result);
    return ok ? 0 : -1;
}

static bool is_applied(PGconn *conn, int version, char *error, size_t error_size, int *failed)
{
    char text[16];
    snprintf(text, sizeof(text), "%d", version);
    const char *params[] = {text};

    PGresult *result =
        PQexecParams(conn, "SELECT 1 FROM helvino_schema_migrations WHERE version = $1", 1, NULL, params, NULL, NULL, 0);
    bool applied = PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) > 0;
    if (PQresultStatus(result) != PGRES_TUPLES_OK) {
        snprintf(error, error_size, "reading applied migrations failed: %s", PQresultErrorMessage(result));
        *failed = 1;
    }
    PQclear(result);
    return applied;
}

static int apply_one(PGconn *conn, const migration *step, char *error, size_t error_size)
{
    if (run_command(conn, "BEGIN", error, error_size) != 0)
        return -1;
    if (run_command(conn, step->sql, error, error_size) != 0)
        goto rollback;

    char version[16];
    snprintf(version, sizeof(version), "%d", step->version);
    const char *params[] = {version, step->name};
    PGresult *result =
        PQexecParams(conn, "INSERT INTO helvino_schema_migrations (version, name) VALUES ($1, $2)", 2, NULL, params, NULL, NULL, 0);
    bool recorded = PQresultStatus(result) == PGRES_COMMAND_OK;
    if (!recorded)
        snprintf(error, error_size, "%s", PQresultErrorMessage(result));
    PQclear(result);
    if (!recorded)
        goto rollback;

    return run_command(conn, "COMMIT", error, error_size);

rollback:;
    char ignored[8];
    run_command(conn, "ROLLBACK", ignored, sizeof(ignored));
    return -1;
}

int migrate_apply(PGconn *conn, char *error, size_t error_size)
{
    int applied = 0;

    /* A session-level lock: held across the per-migration transactions and
     * released below, or by the server when the connection drops. */
    if (run_command(conn, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", error, error_size) != 0)
        return -1;

    if (run_command(conn,
                    "CREATE TABLE IF NOT EXISTS helvino_schema_migrations ("
                    " version integer PRIMARY KEY, name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())",
                    error, error_size) != 0) {
        applied = -1;
        goto unlock;
    }

    for (int i = 0; i < migration_count; i++) {
        int failed = 0;
        if (is_applied(conn, migrations[i].version, error, error_size, &failed))
            continue;
        if (failed || apply_one(conn, &migrations[i], error, error_size) != 0) {
            applied = -1;
            goto unlock;
        }
        applied++;
    }

unlock:;
    char unlock_error[256];
    run_command(conn, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")", unlock_error, sizeof(unlock_error));
    return applied;
}

int migrate_seed_demo(PGconn *conn, char *error, size_t error_size)
{
    return run_command(conn,
                       /* One PQexec call runs both statements in one transaction. */
                       "INSERT INTO organizations (id, name) VALUES ('org_1', 'Demo Org') ON CONFLICT DO NOTHING;"
                       " INSERT INTO org_keys (key_hash, org_id) VALUES (sha256(convert_to('demo', 'UTF8')), 'org_1')"
                       " ON CONFLICT DO NOTHING",
                       error, error_size);
}
