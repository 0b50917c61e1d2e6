/* Recording runs: registering a matrix, claiming a run for this process,
 * one transaction per epoch, and the final status and metrics. */
#include "harness/store_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "kernels/error.h"
#include "tb_build_config.h"
#include "tb_git.h"

static int upsert_matrix(tb_store *st, const tb_matrix *m, int64_t *id)
{
    char *dims = tb_matrix_dims_json(m), *ref = tb_matrix_reference_json(m);
    sqlite3_stmt *stmt = NULL;
    int rc = dims && ref ? TB_OK : tb_fail(TB_ERR_NOMEM, "out of memory recording matrix %s", m->name);
    if (rc == TB_OK)
        rc = tb_store_prepare(st,
                              "INSERT INTO matrices (name, description, file, definition, baseline, dims, reference, "
                              "created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, " TB_SQL_NOW ", " TB_SQL_NOW ") "
                              "ON CONFLICT (name) DO UPDATE SET description = ?2, file = ?3, definition = ?4, "
                              "baseline = ?5, dims = ?6, reference = ?7, updated_at = " TB_SQL_NOW " "
                              "RETURNING id",
                              &stmt, "recording the matrix");
    if (rc == TB_OK) {
        sqlite3_bind_text(stmt, 1, m->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, m->description ? m->description : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, m->file ? m->file : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, m->definition ? m->definition : "{}", -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 5, m->baseline, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 6, dims, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 7, ref, -1, SQLITE_STATIC);
        int s = sqlite3_step(stmt);
        if (s == SQLITE_ROW)
            *id = sqlite3_column_int64(stmt, 0);
        else
            rc = tb_store_error(st, s, "recording the matrix");
    }
    sqlite3_finalize(stmt);
    free(dims);
    free(ref);
    return rc;
}

static int add_matrix_runs(tb_store *st, const tb_matrix *m, int64_t matrix_id)
{
    sqlite3_stmt *ins_run = NULL, *get_id = NULL, *link = NULL;
    int rc = tb_store_prepare(st,
                              "INSERT INTO runs (hash, label, seed, task, config, created_at, updated_at) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, " TB_SQL_NOW ", " TB_SQL_NOW ") ON CONFLICT (hash) DO NOTHING",
                              &ins_run, "recording the matrix's runs");
    if (rc == TB_OK)
        rc = tb_store_prepare(st, "SELECT id FROM runs WHERE hash = ?1", &get_id, "recording the matrix's runs");
    if (rc == TB_OK)
        rc = tb_store_prepare(st,
                              "INSERT INTO matrix_runs (matrix_id, label, seed, run_id, row, position, parts) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                              &link, "recording the matrix's runs");
    if (rc == TB_OK) {
        sqlite3_stmt *del = NULL;
        rc = tb_store_prepare(st, "DELETE FROM matrix_runs WHERE matrix_id = ?1", &del, "updating the matrix");
        if (rc == TB_OK) {
            sqlite3_bind_int64(del, 1, matrix_id);
            int s = sqlite3_step(del);
            if (s != SQLITE_DONE)
                rc = tb_store_error(st, s, "updating the matrix");
        }
        sqlite3_finalize(del);
    }
    for (int i = 0; rc == TB_OK && i < m->n_runs; i++) {
        const tb_matrix_run *r = &m->runs[i];
        const char *label = tb_matrix_run_label(m, i);
        sqlite3_reset(ins_run);
        sqlite3_bind_text(ins_run, 1, r->hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins_run, 2, label, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins_run, 3, (sqlite3_int64)r->seed);
        sqlite3_bind_text(ins_run, 4, tb_task_name(r->cfg.task), -1, SQLITE_STATIC);
        sqlite3_bind_text(ins_run, 5, r->config_json, -1, SQLITE_STATIC);
        int s = sqlite3_step(ins_run);
        if (s != SQLITE_DONE) {
            rc = tb_store_error(st, s, "recording the matrix's runs");
            break;
        }
        sqlite3_reset(get_id);
        sqlite3_bind_text(get_id, 1, r->hash, -1, SQLITE_STATIC);
        s = sqlite3_step(get_id);
        if (s != SQLITE_ROW) {
            rc = tb_store_error(st, s, "recording the matrix's runs");
            break;
        }
        int64_t run_id = sqlite3_column_int64(get_id, 0);
        char *parts = tb_matrix_parts_json(m, r->row);
        if (!parts) {
            rc = tb_fail(TB_ERR_NOMEM, "out of memory recording the matrix");
            break;
        }
        sqlite3_reset(link);
        sqlite3_bind_int64(link, 1, matrix_id);
        sqlite3_bind_text(link, 2, label, -1, SQLITE_STATIC);
        sqlite3_bind_int64(link, 3, (sqlite3_int64)r->seed);
        sqlite3_bind_int64(link, 4, run_id);
        sqlite3_bind_int(link, 5, r->row);
        sqlite3_bind_int(link, 6, i);
        sqlite3_bind_text(link, 7, parts, -1, SQLITE_TRANSIENT);
        free(parts);
        s = sqlite3_step(link);
        if (s != SQLITE_DONE)
            rc = tb_store_error(st, s, "recording the matrix's runs");
    }
    sqlite3_finalize(ins_run);
    sqlite3_finalize(get_id);
    sqlite3_finalize(link);
    return rc;
}

int tb_store_register_matrix(tb_store *st, const tb_matrix *m)
{
    TB_TRY(tb_store_begin(st, "recording the matrix"));
    int64_t id = 0;
    int rc = upsert_matrix(st, m, &id);
    if (rc == TB_OK)
        rc = add_matrix_runs(st, m, id);
    if (rc != TB_OK) {
        tb_store_rollback(st);
        return rc;
    }
    return tb_store_commit(st, "recording the matrix");
}

int tb_store_run_status(tb_store *st, const char *hash, tb_run_status *status, char *checkpoint, size_t size)
{
    sqlite3_stmt *stmt;
    TB_TRY(tb_store_prepare(st, "SELECT status, coalesce(checkpoint, '') FROM runs WHERE hash = ?1", &stmt,
                            "reading a run's status"));
    sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
    int s = sqlite3_step(stmt);
    int rc = TB_OK;
    *status = TB_STATUS_ABSENT;
    if (checkpoint && size)
        checkpoint[0] = '\0';
    if (s == SQLITE_ROW) {
        rc = tb_run_status_parse((const char *)sqlite3_column_text(stmt, 0), status);
        if (checkpoint && size)
            snprintf(checkpoint, size, "%s", (const char *)sqlite3_column_text(stmt, 1));
    } else if (s != SQLITE_DONE) {
        rc = tb_store_error(st, s, "reading a run's status");
    }
    sqlite3_finalize(stmt);
    return rc;
}

static bool process_alive(int pid)
{
    if (pid <= 0)
        return false;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

static void host_name(char *buf, size_t size)
{
    if (gethostname(buf, size) != 0)
        snprintf(buf, size, "unknown");
    buf[size - 1] = '\0';
}

/* Whether another live process holds the run (its status is 'running'). */
static bool held_elsewhere(const char *host, int pid, const char *my_host, bool rerun, char *reason, size_t size)
{
    if (strcmp(host, my_host)) {
        snprintf(reason, size, "running on host %.120s (pid %d); --rerun takes it over", host, pid);
        return !rerun;
    }
    if (pid != (int)getpid() && process_alive(pid)) {
        snprintf(reason, size, "running in process %d", pid);
        return true;
    }
    return false; /* its process is gone: a crash or a kill; redo it */
}

/* Without `rerun` the epoch rows stay: a run that resumes from its training
 * state keeps those of its finished epochs (tb_store_keep_epochs). */
static int reset_and_claim(tb_store *st, int64_t id, const char *label, const char *device, const char *host,
                           bool rerun)
{
    static const char *const sql[] = {"DELETE FROM epochs WHERE run_id = ?1", "DELETE FROM metrics WHERE run_id = ?1",
                                      "UPDATE runs SET status = 'running', label = ?2, device = ?3, host = ?4, "
                                      "pid = ?5, tb_version = ?6, git_commit = ?7, attempts = attempts + 1, "
                                      "epochs_done = (SELECT count(*) FROM epochs WHERE run_id = ?1), "
                                      "diverged_epoch = NULL, error = NULL, checkpoint = NULL, "
                                      "started_at = " TB_SQL_NOW ", finished_at = NULL, updated_at = " TB_SQL_NOW
                                      " WHERE id = ?1"};
    for (size_t i = rerun ? 0 : 1; i < sizeof sql / sizeof sql[0]; i++) {
        sqlite3_stmt *stmt;
        TB_TRY(tb_store_prepare(st, sql[i], &stmt, "starting a run"));
        sqlite3_bind_int64(stmt, 1, id);
        if (i == 2) {
            sqlite3_bind_text(stmt, 2, label, -1, SQLITE_STATIC);
            sqlite3_bind_text(stmt, 3, device ? device : "", -1, SQLITE_STATIC);
            sqlite3_bind_text(stmt, 4, host, -1, SQLITE_STATIC);
            sqlite3_bind_int(stmt, 5, (int)getpid());
            sqlite3_bind_text(stmt, 6, TB_VERSION, -1, SQLITE_STATIC);
            sqlite3_bind_text(stmt, 7, TB_GIT_COMMIT, -1, SQLITE_STATIC);
        }
        int s = sqlite3_step(stmt);
        sqlite3_finalize(stmt);
        if (s != SQLITE_DONE)
            return tb_store_error(st, s, "starting a run");
    }
    return TB_OK;
}

static int claim_locked(tb_store *st, const char *hash, const char *label, const char *device, bool rerun,
                        tb_run_claim *c)
{
    sqlite3_stmt *stmt;
    TB_TRY(tb_store_prepare(st, "SELECT id, status, host, pid FROM runs WHERE hash = ?1", &stmt, "starting a run"));
    sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
    int s = sqlite3_step(stmt);
    if (s != SQLITE_ROW) {
        sqlite3_finalize(stmt);
        if (s == SQLITE_DONE)
            return tb_fail(TB_ERR_INTERNAL, "%s: run %.12s is not registered", st->path, hash);
        return tb_store_error(st, s, "starting a run");
    }
    c->run_id = sqlite3_column_int64(stmt, 0);
    int rc = tb_run_status_parse((const char *)sqlite3_column_text(stmt, 1), &c->previous);
    char host[256], my_host[256];
    snprintf(host, sizeof host, "%s", (const char *)sqlite3_column_text(stmt, 2));
    int pid = sqlite3_column_int(stmt, 3);
    sqlite3_finalize(stmt);
    TB_TRY(rc);
    host_name(my_host, sizeof my_host);
    if (tb_run_status_done(c->previous) && !rerun) {
        snprintf(c->reason, sizeof c->reason, "%s", tb_run_status_name(c->previous));
        return TB_OK;
    }
    if (c->previous == TB_STATUS_RUNNING && held_elsewhere(host, pid, my_host, rerun, c->reason, sizeof c->reason))
        return TB_OK;
    TB_TRY(reset_and_claim(st, c->run_id, label, device, my_host, rerun));
    c->claimed = true;
    return TB_OK;
}

int tb_store_claim_run(tb_store *st, const char *hash, const char *label, const char *device, bool rerun,
                       tb_run_claim *claim)
{
    memset(claim, 0, sizeof *claim);
    TB_TRY(tb_store_begin(st, "starting a run"));
    int rc = claim_locked(st, hash, label, device, rerun, claim);
    if (rc != TB_OK) {
        tb_store_rollback(st);
        claim->claimed = false;
        return rc;
    }
    rc = tb_store_commit(st, "starting a run");
    if (rc != TB_OK)
        claim->claimed = false;
    return rc;
}

static int add_epoch_locked(tb_store *st, int64_t run_id, const tb_epoch_record *e)
{
    sqlite3_stmt *stmt;
    /* an epoch run again (after a crash between its row and its training state,
     * or a fresh start over kept rows) replaces its row and every later one */
    TB_TRY(tb_store_prepare(st, "DELETE FROM epochs WHERE run_id = ?1 AND epoch >= ?2", &stmt, "recording an epoch"));
    sqlite3_bind_int64(stmt, 1, run_id);
    sqlite3_bind_int(stmt, 2, e->epoch);
    int s = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (s != SQLITE_DONE)
        return tb_store_error(st, s, "recording an epoch");
    TB_TRY(tb_store_prepare(st,
                            "INSERT INTO epochs (run_id, epoch, lr, train_loss, train_top1, evaluated, val_loss, "
                            "val_top1, val_top5, seconds, images_per_sec, skipped_steps, loss_scale, recorded_at) "
                            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, " TB_SQL_NOW ")",
                            &stmt, "recording an epoch"));
    sqlite3_bind_int64(stmt, 1, run_id);
    sqlite3_bind_int(stmt, 2, e->epoch);
    tb_store_bind_real(stmt, 3, e->lr);
    tb_store_bind_real(stmt, 4, e->train_loss);
    tb_store_bind_real(stmt, 5, e->train_top1);
    sqlite3_bind_int(stmt, 6, e->evaluated);
    if (e->evaluated) {
        tb_store_bind_real(stmt, 7, e->val_loss);
        tb_store_bind_real(stmt, 8, e->val_top1);
        tb_store_bind_real(stmt, 9, e->val_top5);
    }
    tb_store_bind_real(stmt, 10, e->seconds);
    tb_store_bind_real(stmt, 11, e->images_per_sec);
    sqlite3_bind_int64(stmt, 12, e->skipped_steps);
    tb_store_bind_real(stmt, 13, e->loss_scale);
    s = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (s != SQLITE_DONE)
        return tb_store_error(st, s, "recording an epoch");
    TB_TRY(tb_store_prepare(st,
                            "UPDATE runs SET epochs_done = ?2, updated_at = " TB_SQL_NOW
                            " WHERE id = ?1 AND status = 'running' AND pid = ?3",
                            &stmt, "recording an epoch"));
    sqlite3_bind_int64(stmt, 1, run_id);
    sqlite3_bind_int(stmt, 2, e->epoch);
    sqlite3_bind_int(stmt, 3, (int)getpid());
    s = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (s != SQLITE_DONE)
        return tb_store_error(st, s, "recording an epoch");
    if (sqlite3_changes(st->db) != 1)
        return tb_fail(TB_ERR_BUSY, "%s: run %lld was taken over by another process (--rerun elsewhere?)", st->path,
                       (long long)run_id);
    return TB_OK;
}

int tb_store_add_epoch(tb_store *st, int64_t run_id, const tb_epoch_record *rec)
{
    char what[64];
    snprintf(what, sizeof what, "recording epoch %d", rec->epoch);
    TB_TRY(tb_store_begin(st, what));
    int rc = add_epoch_locked(st, run_id, rec);
    if (rc != TB_OK) {
        tb_store_rollback(st);
        return rc;
    }
    return tb_store_commit(st, what);
}

/* Rows of epochs after `keep`: left by an earlier attempt that got further
 * than the training state this attempt resumed from. */
static int delete_epochs_after(tb_store *st, int64_t run_id, int keep, const char *what)
{
    sqlite3_stmt *stmt;
    TB_TRY(tb_store_prepare(st, "DELETE FROM epochs WHERE run_id = ?1 AND epoch > ?2", &stmt, what));
    sqlite3_bind_int64(stmt, 1, run_id);
    sqlite3_bind_int(stmt, 2, keep);
    int s = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return s == SQLITE_DONE ? TB_OK : tb_store_error(st, s, what);
}

static int keep_locked(tb_store *st, int64_t run_id, int keep)
{
    TB_TRY(delete_epochs_after(st, run_id, keep, "keeping a run's epochs"));
    sqlite3_stmt *stmt;
    TB_TRY(tb_store_prepare(st,
                            "UPDATE runs SET epochs_done = (SELECT count(*) FROM epochs WHERE run_id = ?1), "
                            "updated_at = " TB_SQL_NOW " WHERE id = ?1",
                            &stmt, "keeping a run's epochs"));
    sqlite3_bind_int64(stmt, 1, run_id);
    int s = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return s == SQLITE_DONE ? TB_OK : tb_store_error(st, s, "keeping a run's epochs");
}

int tb_store_keep_epochs(tb_store *st, int64_t run_id, int keep)
{
    TB_TRY(tb_store_begin(st, "keeping a run's epochs"));
    int rc = keep_locked(st, run_id, keep);
    if (rc != TB_OK) {
        tb_store_rollback(st);
        return rc;
    }
    return tb_store_commit(st, "keeping a run's epochs");
}

int tb_store_count_epochs(tb_store *st, int64_t run_id, int up_to, int *count)
{
    sqlite3_stmt *stmt;
    TB_TRY(tb_store_prepare(st, "SELECT count(*) FROM epochs WHERE run_id = ?1 AND epoch <= ?2", &stmt,
                            "counting a run's epochs"));
    sqlite3_bind_int64(stmt, 1, run_id);
    sqlite3_bind_int(stmt, 2, up_to);
    int s = sqlite3_step(stmt);
    *count = s == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : 0;
    sqlite3_finalize(stmt);
    return s == SQLITE_ROW ? TB_OK : tb_store_error(st, s, "counting a run's epochs");
}

static int finish_locked(tb_store *st, int64_t run_id, tb_run_status status, const tb_train_result *res,
                         const char *error)
{
    sqlite3_stmt *stmt;
    TB_TRY(tb_store_prepare(st,
                            "UPDATE runs SET status = ?2, error = ?3, diverged_epoch = ?4, "
                            "device = CASE WHEN ?5 = '' THEN device ELSE ?5 END, checkpoint = nullif(?6, ''), "
                            "epochs_done = CASE WHEN ?7 >= 0 THEN ?7 ELSE epochs_done END, "
                            "finished_at = " TB_SQL_NOW ", updated_at = " TB_SQL_NOW " WHERE id = ?1",
                            &stmt, "recording the end of a run"));
    sqlite3_bind_int64(stmt, 1, run_id);
    sqlite3_bind_text(stmt, 2, tb_run_status_name(status), -1, SQLITE_STATIC);
    if (error)
        sqlite3_bind_text(stmt, 3, error, -1, SQLITE_STATIC);
    if (status == TB_STATUS_DIVERGED && res)
        sqlite3_bind_int(stmt, 4, res->diverged_epoch);
    sqlite3_bind_text(stmt, 5, res ? res->device : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, res && status == TB_STATUS_FINISHED ? res->checkpoint : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 7, res ? res->epochs_done : -1);
    int s = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (s != SQLITE_DONE)
        return tb_store_error(st, s, "recording the end of a run");
    if (res)
        TB_TRY(delete_epochs_after(st, run_id, res->epochs_done, "recording the end of a run"));
    if (!res || res->n_metrics == 0)
        return TB_OK;
    TB_TRY(tb_store_prepare(st, "INSERT OR REPLACE INTO metrics (run_id, name, value) VALUES (?1, ?2, ?3)", &stmt,
                            "recording metrics"));
    int rc = TB_OK;
    for (int i = 0; rc == TB_OK && i < res->n_metrics && i < TB_MAX_METRICS; i++) {
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, run_id);
        sqlite3_bind_text(stmt, 2, res->metrics[i].name, -1, SQLITE_STATIC);
        tb_store_bind_real(stmt, 3, res->metrics[i].value);
        s = sqlite3_step(stmt);
        if (s != SQLITE_DONE)
            rc = tb_store_error(st, s, "recording metrics");
    }
    sqlite3_finalize(stmt);
    return rc;
}

int tb_store_finish_run(tb_store *st, int64_t run_id, tb_run_status status, const tb_train_result *res,
                        const char *error)
{
    TB_TRY(tb_store_begin(st, "recording the end of a run"));
    int rc = finish_locked(st, run_id, status, res, error);
    if (rc != TB_OK) {
        tb_store_rollback(st);
        return rc;
    }
    return tb_store_commit(st, "recording the end of a run");
}
