/* Finding a run by where a matrix put it: (matrix name, row label, seed).
 * Detection and segmentation runs name their backbone this way
 * (model.backbone_from "MATRIX/LABEL"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/store_internal.h"
#include "kernels/error.h"

static char *dup_text(const unsigned char *s)
{
    size_t n = strlen((const char *)s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

int tb_store_find_matrix_run(tb_store *st, const char *matrix, const char *label, uint64_t seed,
                             tb_run_status *status, char *checkpoint, size_t size, char **config_json)
{
    sqlite3_stmt *stmt;
    TB_TRY(tb_store_prepare(st,
                            "SELECT r.status, coalesce(r.checkpoint, ''), r.config FROM matrices m "
                            "JOIN matrix_runs mr ON mr.matrix_id = m.id JOIN runs r ON r.id = mr.run_id "
                            "WHERE m.name = ?1 AND mr.label = ?2 AND mr.seed = ?3",
                            &stmt, "finding a matrix's run"));
    sqlite3_bind_text(stmt, 1, matrix, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, label, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, (sqlite3_int64)seed);
    *status = TB_STATUS_ABSENT;
    if (checkpoint && size)
        checkpoint[0] = '\0';
    if (config_json)
        *config_json = NULL;
    int s = sqlite3_step(stmt), rc = TB_OK;
    if (s == SQLITE_ROW) {
        rc = tb_run_status_parse((const char *)sqlite3_column_text(stmt, 0), status);
        if (checkpoint && size)
            snprintf(checkpoint, size, "%s", (const char *)sqlite3_column_text(stmt, 1));
        if (rc == TB_OK && config_json) {
            *config_json = dup_text(sqlite3_column_text(stmt, 2));
            if (!*config_json)
                rc = tb_fail(TB_ERR_NOMEM, "out of memory reading a run's config");
        }
    } else if (s != SQLITE_DONE) {
        rc = tb_store_error(st, s, "finding a matrix's run");
    }
    sqlite3_finalize(stmt);
    return rc;
}

void tb_store_finished_runs_free(tb_finished_run *runs, int count)
{
    for (int i = 0; i < count && runs; i++)
        free(runs[i].config);
    free(runs);
}

/* Appends the current row of the listing statement to *runs. */
static int add_finished_run(sqlite3_stmt *stmt, tb_finished_run **runs, int *count, int *cap)
{
    if (*count == *cap) {
        int ncap = *cap ? 2 * *cap : 16;
        tb_finished_run *grown = realloc(*runs, sizeof **runs * (size_t)ncap);
        TB_CHECK(grown, TB_ERR_NOMEM, "out of memory listing finished runs");
        *runs = grown;
        *cap = ncap;
    }
    tb_finished_run *f = &(*runs)[*count];
    memset(f, 0, sizeof *f);
    f->id = sqlite3_column_int64(stmt, 0);
    snprintf(f->label, sizeof f->label, "%s", (const char *)sqlite3_column_text(stmt, 1));
    f->seed = (uint64_t)sqlite3_column_int64(stmt, 2);
    snprintf(f->hash, sizeof f->hash, "%s", (const char *)sqlite3_column_text(stmt, 3));
    snprintf(f->checkpoint, sizeof f->checkpoint, "%s", (const char *)sqlite3_column_text(stmt, 4));
    f->top1 = sqlite3_column_type(stmt, 6) == SQLITE_NULL ? NAN : sqlite3_column_double(stmt, 6);
    f->config = dup_text(sqlite3_column_text(stmt, 5));
    TB_CHECK(f->config, TB_ERR_NOMEM, "out of memory listing finished runs");
    (*count)++;
    return TB_OK;
}

int tb_store_finished_runs(tb_store *st, const char *matrix, const char *label, tb_finished_run **out, int *count)
{
    sqlite3_stmt *stmt;
    TB_TRY(tb_store_prepare(st,
                            "SELECT r.id, mr.label, mr.seed, r.hash, coalesce(r.checkpoint, ''), r.config, "
                            "(SELECT value FROM metrics x WHERE x.run_id = r.id AND x.name = 'top1') "
                            "FROM matrices m JOIN matrix_runs mr ON mr.matrix_id = m.id "
                            "JOIN runs r ON r.id = mr.run_id "
                            "WHERE m.name = ?1 AND (?2 IS NULL OR mr.label = ?2) AND r.status = 'finished' "
                            "ORDER BY mr.row, mr.seed",
                            &stmt, "listing a matrix's finished runs"));
    sqlite3_bind_text(stmt, 1, matrix, -1, SQLITE_STATIC);
    if (label)
        sqlite3_bind_text(stmt, 2, label, -1, SQLITE_STATIC);
    tb_finished_run *runs = NULL;
    int n = 0, cap = 0, rc = TB_OK, s;
    while (rc == TB_OK && (s = sqlite3_step(stmt)) == SQLITE_ROW)
        rc = add_finished_run(stmt, &runs, &n, &cap);
    if (rc == TB_OK && s != SQLITE_DONE)
        rc = tb_store_error(st, s, "listing a matrix's finished runs");
    sqlite3_finalize(stmt);
    if (rc != TB_OK) {
        tb_store_finished_runs_free(runs, n);
        return rc;
    }
    *out = runs;
    *count = n;
    return TB_OK;
}

int tb_store_set_metric(tb_store *st, int64_t run_id, const char *name, double value)
{
    sqlite3_stmt *stmt;
    TB_TRY(tb_store_prepare(st, "INSERT OR REPLACE INTO metrics (run_id, name, value) VALUES (?1, ?2, ?3)", &stmt,
                            "recording a metric"));
    sqlite3_bind_int64(stmt, 1, (sqlite3_int64)run_id);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
    tb_store_bind_real(stmt, 3, value); /* binding a parameter of a prepared statement: the step reports errors */
    int s = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return s == SQLITE_DONE ? TB_OK : tb_store_error(st, s, "recording a metric");
}
