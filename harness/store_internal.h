/* Internals shared by the store's files (store.c, store_runs.c,
 * store_merge.c, store_schema.c). Not a public interface. */
#ifndef TB_STORE_INTERNAL_H
#define TB_STORE_INTERNAL_H

#include <sqlite3.h>

#include "harness/store.h"

struct tb_store {
    sqlite3 *db;
    char *path;
    int busy_ms;
    bool read_only;
};

extern const char *const tb_store_migrations[];
extern const int tb_store_n_migrations;

/* SQL for "now" as ISO 8601 UTC with milliseconds. */
#define TB_SQL_NOW "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

/* Evaluates an sqlite3_* call; on failure returns the mapped tb_status
 * naming the call, the file and `what`. */
#define SQLITE_CHECK(st, expr, what)                                     \
    do {                                                                 \
        int sqlite_check_rc_ = (expr);                                   \
        if (sqlite_check_rc_ != SQLITE_OK && sqlite_check_rc_ != SQLITE_DONE && \
            sqlite_check_rc_ != SQLITE_ROW)                              \
            return tb_store_error((st), sqlite_check_rc_, (what));       \
    } while (0)

/* Prepares `sql`; on failure returns the mapped status. */
int tb_store_prepare(tb_store *st, const char *sql, sqlite3_stmt **stmt, const char *what);

/* Binds a double, or NULL for NaN/inf (SQLite REAL cannot hold them). */
int tb_store_bind_real(sqlite3_stmt *stmt, int i, double v);

#endif
