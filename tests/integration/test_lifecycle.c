/* helvino-store across PostgreSQL restarts, concurrent start-up and
 * shutdown. These tests stop and start the database server, so they run
 * one at a time against their own cluster. */
#include "harness.h"
#include "hv_time.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static void run_pg_cluster(const char *action)
{
    char command[512];
    snprintf(command, sizeof(command), "\"%s\" %s \"%s\" >/dev/null", getenv("HELVINO_PG_CLUSTER"), action,
             getenv("HELVINO_TEST_PGDIR"));
    int status = system(command);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "pg-cluster %s failed", action);
}

static int call_status(store_fixture *store, const char *op, const char *org)
{
    hv_call_result result;
    store_call(store, &result, op, org, NULL);
    int status = result.reply.status;
    hv_call_result_destroy(&result);
    return status;
}

/* Makes sure the database runs even when an earlier test failed midway. */
static void ensure_database_running(void)
{
    run_pg_cluster("start");
}

TestSuite(lifecycle, .init = ensure_database_running, .timeout = 180);

Test(lifecycle, database_restart_gives_503_then_recovers)
{
    store_fixture store;
    store_start(&store, NULL);
    cr_assert_eq(call_status(&store, "conversation.create", "org_1"), 201);

    run_pg_cluster("stop");
    cr_assert_eq(call_status(&store, "conversation.create", "org_1"), 503, "a request without the database did not get 503");
    cr_assert_eq(call_status(&store, "health", NULL), 503);

    run_pg_cluster("start");
    int status = 0;
    int64_t deadline = hv_time_monotonic_ms() + 30000;
    while (hv_time_monotonic_ms() < deadline && (status = call_status(&store, "conversation.create", "org_1")) != 201)
        ;
    cr_assert_eq(status, 201, "the store did not recover within 30 s of the database's restart");

    cr_assert_eq(store_log_count(&store, "database connection lost"), 1, "the outage was not logged exactly once");
    cr_assert_eq(store_log_count(&store, "database connection restored"), 1);
    cr_assert_eq(store_stop(&store), 0);
}

Test(lifecycle, store_waits_for_database_at_start)
{
    run_pg_cluster("stop");

    store_fixture store;
    store_launch(&store, NULL);
    cr_assert(store_wait_for_log(&store, "waiting for the database", 30000), "the store did not report waiting");
    run_pg_cluster("start");
    store_wait_ready(&store);

    cr_assert(store_log_count(&store, "waiting for the database") >= 1, "the store never had to wait");
    cr_assert_eq(call_status(&store, "conversation.create", "org_1"), 201);
    cr_assert_eq(store_stop(&store), 0);
}

Test(lifecycle, two_stores_migrate_a_fresh_database_once)
{
    PGconn *admin = PQconnectdb(getenv("HELVINO_DATABASE_URL"));
    cr_assert_eq(PQstatus(admin), CONNECTION_OK, "%s", PQerrorMessage(admin));
    PQclear(PQexec(admin, "DROP DATABASE IF EXISTS helvino_race"));
    PGresult *created = PQexec(admin, "CREATE DATABASE helvino_race");
    cr_assert_eq(PQresultStatus(created), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(created));
    PQclear(created);

    char url[512];
    snprintf(url, sizeof(url), "HELVINO_DATABASE_URL=%s dbname=helvino_race", getenv("HELVINO_DATABASE_URL"));
    const char *env[] = {url, NULL};

    /* Both processes are launched before either is waited for. */
    store_fixture first, second;
    store_launch(&first, env);
    store_launch(&second, env);
    store_wait_ready(&first);
    store_wait_ready(&second);
    cr_assert_eq(call_status(&first, "conversation.create", "org_1"), 201);
    cr_assert_eq(call_status(&second, "conversation.create", "org_1"), 201);

    char conninfo[512];
    snprintf(conninfo, sizeof(conninfo), "%s dbname=helvino_race", getenv("HELVINO_DATABASE_URL"));
    PGconn *race = PQconnectdb(conninfo);
    PGresult *rows = PQexec(race, "SELECT count(*), count(DISTINCT version) FROM helvino_schema_migrations");
    cr_assert_eq(PQresultStatus(rows), PGRES_TUPLES_OK);
    cr_assert_str_eq(PQgetvalue(rows, 0, 0), PQgetvalue(rows, 0, 1), "a migration was recorded twice");
    PQclear(rows);
    rows = PQexec(race, "SELECT count(*) FROM organizations WHERE id = 'org_1'");
    cr_assert_str_eq(PQgetvalue(rows, 0, 0), "1", "the demo org was seeded twice");
    PQclear(rows);
    PQfinish(race);

    cr_assert_eq(store_stop(&first), 0);
    cr_assert_eq(store_stop(&second), 0);
    PQfinish(admin);
}

Test(lifecycle, sigterm_exits_zero_and_logs_stop)
{
    store_fixture store;
    store_start(&store, NULL);
    cr_assert_eq(call_status(&store, "health", NULL), 200);
    cr_assert_eq(store_stop(&store), 0);
    cr_assert_eq(store_log_count(&store, "store stopped"), 1);
}
