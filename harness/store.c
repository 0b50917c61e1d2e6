/* Opening the results database: pragmas, error mapping, migrations. */
#include "harness/store_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness/fs.h"
#include "kernels/error.h"

static const char *const status_names[] = {"pending", "running", "finished", "failed", "diverged", "interrupted",
                                           "absent"};

const char *tb_run_status_name(tb_run_status s)
{
    return (unsigned)s <= TB_STATUS_ABSENT ? status_names[s] : "unknown";
}

int tb_run_status_parse(const char *name, tb_run_status *out)
{
    for (int i = 0; i <= TB_STATUS_ABSENT; i++) {
        if (!strcmp(name, status_names[i])) {
            *out = (tb_run_status)i;
            return TB_OK;
        }
    }
    return tb_fail(TB_ERR_DATA, "unknown run status '%s' in the results database", name);
}

bool tb_run_status_done(tb_run_status s) { return s == TB_STATUS_FINISHED || s == TB_STATUS_DIVERGED; }

int tb_store_error(tb_store *st, int rc, const char *what)
{
    const char *path = st && st->path ? st->path : "results database";
    const char *detail = st && st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return tb_fail(TB_ERR_BUSY,
                       "%s: the results database is locked by another process (waited %.1f s) while %s; "
                       "nothing was lost, run the command again when the other one is done",
                       path, (st ? st->busy_ms : 0) / 1000.0, what);
    case SQLITE_READONLY:
        return tb_fail(TB_ERR_IO,
                       "%s: the results database is read-only (check the permissions of the file and its "
                       "directory, or pass --db PATH) while %s",
                       path, what);
    case SQLITE_FULL:
        return tb_fail(TB_ERR_IO, "%s: disk full while %s; earlier results are intact", path, what);
    case SQLITE_CANTOPEN:
        return tb_fail(TB_ERR_IO, "%s: cannot open the results database while %s: %s", path, what, detail);
    case SQLITE_NOTADB:
        return tb_fail(TB_ERR_DATA, "%s: not an SQLite database (while %s)", path, what);
    case SQLITE_CORRUPT:
        return tb_fail(TB_ERR_DATA, "%s: the database file is corrupt (while %s): %s", path, what, detail);
    case SQLITE_NOMEM:
        return tb_fail(TB_ERR_NOMEM, "%s: out of memory while %s", path, what);
    case SQLITE_INTERRUPT:
        return tb_fail(TB_ERR_INTERRUPTED, "%s: interrupted while %s", path, what);
    default:
        return tb_fail(TB_ERR_IO, "%s: %s while %s", path, detail, what);
    }
}

int tb_store_prepare(tb_store *st, const char *sql, sqlite3_stmt **stmt, const char *what)
{
    *stmt = NULL;
    SQLITE_CHECK(st, sqlite3_prepare_v2(st->db, sql, -1, stmt, NULL), what);
    return TB_OK;
}

int tb_store_bind_real(sqlite3_stmt *stmt, int i, double v)
{
    return isfinite(v) ? sqlite3_bind_double(stmt, i, v) : sqlite3_bind_null(stmt, i);
}

int tb_store_exec(tb_store *st, const char *sql, const char *what)
{
    SQLITE_CHECK(st, sqlite3_exec(st->db, sql, NULL, NULL, NULL), what);
    return TB_OK;
}

int tb_store_begin(tb_store *st, const char *what)
{
    /* IMMEDIATE takes the write lock now, so a busy database fails here
     * (after busy_timeout) instead of half-way through the transaction */
    return tb_store_exec(st, "BEGIN IMMEDIATE", what);
}

int tb_store_commit(tb_store *st, const char *what)
{
    int rc = tb_store_exec(st, "COMMIT", what);
    if (rc != TB_OK)
        tb_store_rollback(st);
    return rc;
}

void tb_store_rollback(tb_store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

sqlite3 *tb_store_db(tb_store *st) { return st->db; }

const char *tb_store_path(const tb_store *st) { return st->path; }

static int pragma_int(tb_store *st, const char *sql, int *out)
{
    sqlite3_stmt *stmt;
    TB_TRY(tb_store_prepare(st, sql, &stmt, "reading the schema version"));
    int rc = sqlite3_step(stmt);
    *out = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : 0;
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return tb_store_error(st, rc, "reading the schema version");
    return TB_OK;
}

static int migrate(tb_store *st)
{
    int app = 0, version = 0, tables = 0;
    TB_TRY(pragma_int(st, "PRAGMA application_id", &app));
    TB_TRY(pragma_int(st, "PRAGMA user_version", &version));
    TB_TRY(pragma_int(st, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'", &tables));
    if (app != TB_STORE_APPLICATION_ID && (app != 0 || tables > 0))
        return tb_fail(TB_ERR_DATA, "%s: not a trickbench results database (application_id 0x%08x, %d tables)",
                       st->path, (unsigned)app, tables);
    if (version > tb_store_n_migrations)
        return tb_fail(TB_ERR_DATA, "%s: schema version %d is newer than this trickbench understands (%d); "
                                    "use a newer trickbench", st->path, version, tb_store_n_migrations);
    if (version == tb_store_n_migrations)
        return TB_OK;
    if (st->read_only) {
        if (version == 0)
            return tb_fail(TB_ERR_MISSING, "%s: the results database is empty; run 'trickbench run MATRIX' first",
                           st->path);
        return tb_fail(TB_ERR_DATA, "%s: schema version %d is older than %d; upgrade it by opening it once with "
                                    "'trickbench run' or 'trickbench merge'", st->path, version,
                       tb_store_n_migrations);
    }
    TB_TRY(tb_store_begin(st, "upgrading the schema"));
    /* another process may have migrated while we waited for the lock */
    int rc = pragma_int(st, "PRAGMA user_version", &version);
    for (int v = version; rc == TB_OK && v < tb_store_n_migrations; v++) {
        char what[64];
        snprintf(what, sizeof what, "applying schema migration %d", v + 1);
        rc = tb_store_exec(st, tb_store_migrations[v], what);
    }
    if (rc == TB_OK && version < tb_store_n_migrations) {
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d; PRAGMA application_id = %d", tb_store_n_migrations,
                 TB_STORE_APPLICATION_ID);
        rc = tb_store_exec(st, sql, "recording the schema version");
    }
    if (rc != TB_OK) {
        tb_store_rollback(st);
        return rc;
    }
    return tb_store_commit(st, "upgrading the schema");
}

/* WAL: readers never block the writer. Changing the journal mode can fail
 * with SQLITE_BUSY without calling the busy handler (two processes creating
 * the same new database), so retry here for up to busy_ms. */
static int enable_wal(tb_store *st)
{
    for (int waited = 0;; waited += 20) {
        sqlite3_stmt *stmt;
        TB_TRY(tb_store_prepare(st, "PRAGMA journal_mode = WAL", &stmt, "switching to WAL mode"));
        int rc = sqlite3_step(stmt);
        sqlite3_finalize(stmt);
        if (rc == SQLITE_ROW || rc == SQLITE_DONE)
            return TB_OK;
        if ((rc & 0xff) != SQLITE_BUSY || waited >= st->busy_ms)
            return tb_store_error(st, rc, "switching to WAL mode");
        sqlite3_sleep(20);
    }
}

static int configure(tb_store *st)
{
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, st->busy_ms);
    TB_TRY(tb_store_exec(st, "PRAGMA foreign_keys = ON", "enabling foreign keys"));
    if (st->read_only)
        return TB_OK;
    if (sqlite3_db_readonly(st->db, "main") == 1)
        return tb_store_error(st, SQLITE_READONLY, "opening it for writing");
    TB_TRY(enable_wal(st));
    /* NORMAL sync in WAL mode is durable across a process crash, which is what a killed run needs */
    return tb_store_exec(st, "PRAGMA synchronous = NORMAL", "setting the sync mode");
}

int tb_store_open(const char *path, const tb_store_options *opt, tb_store **out)
{
    *out = NULL;
    tb_store_options defaults = {0};
    if (!opt)
        opt = &defaults;
    if (!path || !*path)
        path = TB_STORE_DEFAULT_PATH;
    struct stat sb;
    bool exists = stat(path, &sb) == 0;
    if ((opt->read_only || opt->must_exist) && !exists && !strstr(path, ":"))
        return tb_fail(TB_ERR_MISSING, "%s: no results database here; run 'trickbench run MATRIX' first "
                                       "(or pass --db PATH)", path);
    if (!opt->read_only && !exists && !strstr(path, ":"))
        TB_TRY(tb_make_parent_dirs(path));
    tb_store *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        return tb_fail(TB_ERR_NOMEM, "out of memory opening %s", path);
    }
    st->busy_ms = opt->busy_ms > 0 ? opt->busy_ms : TB_STORE_BUSY_MS;
    st->read_only = opt->read_only;
    int flags = opt->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    /* URI names ("file:results.db?mode=ro") are accepted like the sqlite3 shell does */
    int rc = sqlite3_open_v2(path, &st->db, flags | SQLITE_OPEN_URI, NULL);
    int status = rc == SQLITE_OK ? TB_OK : tb_store_error(st, rc, "opening it");
    if (status == TB_OK)
        status = configure(st);
    if (status == TB_OK)
        status = migrate(st);
    if (status != TB_OK) {
        tb_store_close(st);
        return status;
    }
    *out = st;
    return TB_OK;
}

void tb_store_close(tb_store *st)
{
    if (!st)
        return;
    sqlite3_close_v2(st->db);
    free(st->path);
    free(st);
}
