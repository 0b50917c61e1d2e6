/* Finding a run by where a matrix put it: (matrix name, row label, seed).
 * Detection and segmentation runs name their backbone this way
 * (model.backbone_from "MATRIX/LABEL"). */
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
