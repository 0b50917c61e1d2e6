/* Merging results databases (e.g. the shards of a job array) into one.
 * Runs are matched by hash: a run new to the output is copied with its
 * epochs and metrics; a run present in both keeps the copy with the better
 * status (finished > diverged > failed > interrupted > running > pending),
 * the output's on a tie; so merging twice changes nothing. Matrices are
 * matched by name, their run lists are united. */
#include "harness/store_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/error.h"

#define RANK(t) "CASE " t ".status WHEN 'finished' THEN 5 WHEN 'diverged' THEN 4 WHEN 'failed' THEN 3 " \
                "WHEN 'interrupted' THEN 2 WHEN 'running' THEN 1 ELSE 0 END"

#define RUN_COLUMNS "label, seed, task, config, status, device, host, pid, tb_version, git_commit, attempts, " \
                    "epochs_done, diverged_epoch, error, checkpoint, created_at, started_at, finished_at, updated_at"
#define EPOCH_COLUMNS "epoch, lr, train_loss, train_top1, evaluated, val_loss, val_top1, val_top5, seconds, " \
                      "images_per_sec, skipped_steps, loss_scale, recorded_at"
#define MATRIX_COLUMNS "description, file, definition, baseline, dims, reference, created_at, updated_at"

static const char *const merge_sql[] = {
    "CREATE TEMP TABLE IF NOT EXISTS merge_map (src_id INTEGER PRIMARY KEY, dst_id INTEGER, action TEXT)",
    "DELETE FROM temp.merge_map",
    "INSERT INTO temp.merge_map (src_id, dst_id, action) "
    "SELECT s.id, d.id, CASE WHEN d.id IS NULL THEN 'add' WHEN " RANK("s") " > " RANK("d") " THEN 'replace' "
    "ELSE 'keep' END FROM src.runs s LEFT JOIN main.runs d ON d.hash = s.hash",
    "INSERT INTO main.runs (hash, " RUN_COLUMNS ") SELECT s.hash, " RUN_COLUMNS " FROM src.runs s "
    "JOIN temp.merge_map mm ON mm.src_id = s.id WHERE mm.action = 'add'",
    "UPDATE temp.merge_map SET dst_id = (SELECT d.id FROM main.runs d JOIN src.runs s ON s.hash = d.hash "
    "WHERE s.id = merge_map.src_id) WHERE action = 'add'",
    "UPDATE main.runs SET (" RUN_COLUMNS ") = (SELECT " RUN_COLUMNS " FROM src.runs s JOIN temp.merge_map mm "
    "ON mm.src_id = s.id WHERE mm.dst_id = runs.id) "
    "WHERE id IN (SELECT dst_id FROM temp.merge_map WHERE action = 'replace')",
    "DELETE FROM main.epochs WHERE run_id IN (SELECT dst_id FROM temp.merge_map WHERE action = 'replace')",
    "DELETE FROM main.metrics WHERE run_id IN (SELECT dst_id FROM temp.merge_map WHERE action = 'replace')",
    "INSERT INTO main.epochs (run_id, " EPOCH_COLUMNS ") SELECT mm.dst_id, " EPOCH_COLUMNS " FROM src.epochs e "
    "JOIN temp.merge_map mm ON mm.src_id = e.run_id WHERE mm.action IN ('add', 'replace')",
    "INSERT INTO main.metrics (run_id, name, value) SELECT mm.dst_id, x.name, x.value FROM src.metrics x "
    "JOIN temp.merge_map mm ON mm.src_id = x.run_id WHERE mm.action IN ('add', 'replace')",
    /* matrices: new ones are copied; a newer definition replaces an older one */
    "UPDATE main.matrices SET (" MATRIX_COLUMNS ") = (SELECT " MATRIX_COLUMNS " FROM src.matrices s "
    "WHERE s.name = matrices.name) WHERE EXISTS (SELECT 1 FROM src.matrices s WHERE s.name = matrices.name "
    "AND s.definition <> matrices.definition AND s.updated_at > matrices.updated_at)",
    "INSERT OR IGNORE INTO main.matrix_runs (matrix_id, label, seed, run_id, row, position, parts) "
    "SELECT dm.id, smr.label, smr.seed, dr.id, smr.row, smr.position, smr.parts FROM src.matrix_runs smr "
    "JOIN src.matrices sm ON sm.id = smr.matrix_id JOIN main.matrices dm ON dm.name = sm.name "
    "JOIN src.runs sr ON sr.id = smr.run_id JOIN main.runs dr ON dr.hash = sr.hash",
};

static const char add_matrices_sql[] =
    "INSERT INTO main.matrices (name, " MATRIX_COLUMNS ") SELECT name, " MATRIX_COLUMNS " FROM src.matrices s "
    "WHERE NOT EXISTS (SELECT 1 FROM main.matrices d WHERE d.name = s.name)";

static int count_actions(tb_store *st, tb_merge_stats *stats)
{
    sqlite3_stmt *stmt;
    TB_TRY(tb_store_prepare(st, "SELECT action, count(*) FROM temp.merge_map GROUP BY action", &stmt,
                            "counting merged runs"));
    int s;
    while ((s = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *a = (const char *)sqlite3_column_text(stmt, 0);
        int n = sqlite3_column_int(stmt, 1);
        if (!strcmp(a, "add"))
            stats->runs_added += n;
        else if (!strcmp(a, "replace"))
            stats->runs_replaced += n;
        else
            stats->runs_kept += n;
    }
    sqlite3_finalize(stmt);
    return s == SQLITE_DONE ? TB_OK : tb_store_error(st, s, "counting merged runs");
}

static int merge_locked(tb_store *st, const char *in_path, tb_merge_stats *stats)
{
    char what[PATH_MAX + 32];
    snprintf(what, sizeof what, "merging %s", in_path);
    for (size_t i = 0; i < sizeof merge_sql / sizeof merge_sql[0]; i++) {
        if (i == sizeof merge_sql / sizeof merge_sql[0] - 2) { /* before updating matrices: add new ones */
            TB_TRY(tb_store_exec(st, add_matrices_sql, what));
            stats->matrices_added += sqlite3_changes(st->db);
        }
        TB_TRY(tb_store_exec(st, merge_sql[i], what));
    }
    return count_actions(st, stats);
}

int tb_store_merge(tb_store *st, const char *in_path, tb_merge_stats *stats)
{
    char a[PATH_MAX], b[PATH_MAX];
    if (realpath(st->path, a) && realpath(in_path, b) && !strcmp(a, b))
        return tb_fail(TB_ERR_USAGE, "%s: cannot merge a database into itself", in_path);
    /* checks that the input is a trickbench database of our schema version */
    tb_store *in = NULL;
    tb_store_options ro = {.read_only = true, .busy_ms = st->busy_ms};
    TB_TRY(tb_store_open(in_path, &ro, &in));
    tb_store_close(in);

    sqlite3_stmt *attach;
    TB_TRY(tb_store_prepare(st, "ATTACH DATABASE ?1 AS src", &attach, "attaching the database to merge"));
    sqlite3_bind_text(attach, 1, in_path, -1, SQLITE_STATIC);
    int s = sqlite3_step(attach);
    sqlite3_finalize(attach);
    if (s != SQLITE_DONE)
        return tb_err_context(tb_store_error(st, s, "attaching the database to merge"), "%s", in_path);
    int rc = tb_store_begin(st, "merging");
    if (rc == TB_OK) {
        rc = merge_locked(st, in_path, stats);
        if (rc == TB_OK)
            rc = tb_store_commit(st, "merging");
        else
            tb_store_rollback(st);
    }
    sqlite3_exec(st->db, "DETACH DATABASE src", NULL, NULL, NULL);
    return rc;
}
