/* Versioned schema migrations, embedded in the binary, and the demo seed. */
#ifndef STORE_MIGRATE_H
#define STORE_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

typedef struct {
    int version;
    const char *name;
    const char *sql;
} migration;

/* Generated from the .sql files in store-svc/migrations, in version order. */
extern const migration migrations[];
extern const int migration_count;

/* Applies every migration that the database has not recorded yet, each in
 * its own transaction, while holding an advisory lock so that two stores
 * starting together do not race. Returns the number applied, or -1 with a
 * message in `error`. */
__attribute__((warn_unused_result)) int migrate_apply(PGconn *conn, char *error, size_t error_size);

/* Creates the demo organization {id "org_1", key "demo", name "Demo Org"}
 * unless it exists; a revoked demo key stays revoked. Returns 0, or -1
 * with a message in `error`. */
__attribute__((warn_unused_result)) int migrate_seed_demo(PGconn *conn, char *error, size_t error_size);

#endif
