#include "harness/query.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "harness/store_internal.h"
#include "kernels/error.h"

static char *cell_text(sqlite3_stmt *stmt, int c)
{
    switch (sqlite3_column_type(stmt, c)) {
    case SQLITE_NULL:
        return strdup("");
    case SQLITE_BLOB: {
        char buf[48];
        snprintf(buf, sizeof buf, "(%d-byte blob)", sqlite3_column_bytes(stmt, c));
        return strdup(buf);
    }
    default:
        return strdup((const char *)sqlite3_column_text(stmt, c));
    }
}

static cJSON *cell_json(sqlite3_stmt *stmt, int c)
{
    switch (sqlite3_column_type(stmt, c)) {
    case SQLITE_NULL: return cJSON_CreateNull();
    case SQLITE_INTEGER: return cJSON_CreateNumber((double)sqlite3_column_int64(stmt, c));
    case SQLITE_FLOAT: return cJSON_CreateNumber(sqlite3_column_double(stmt, c));
    case SQLITE_BLOB: {
        char buf[48];
        snprintf(buf, sizeof buf, "(%d-byte blob)", sqlite3_column_bytes(stmt, c));
        return cJSON_CreateString(buf);
    }
    default: return cJSON_CreateString((const char *)sqlite3_column_text(stmt, c));
    }
}

/* Steps one prepared statement to the end, printing its rows. */
static int print_statement(tb_store *st, sqlite3_stmt *stmt, tb_format format, bool first, FILE *out)
{
    int n_cols = sqlite3_column_count(stmt);
    tb_table t;
    tb_table_init(&t);
    cJSON *arr = format == TB_FORMAT_JSON ? cJSON_CreateArray() : NULL;
    for (int c = 0; c < n_cols; c++)
        tb_table_add_column(&t, sqlite3_column_name(stmt, c), false);
    char **cells = calloc((size_t)(n_cols > 0 ? n_cols : 1), sizeof *cells);
    int s, rc = cells ? TB_OK : tb_fail(TB_ERR_NOMEM, "out of memory");
    while (rc == TB_OK && (s = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (arr) {
            cJSON *row = cJSON_CreateObject();
            for (int c = 0; row && c < n_cols; c++)
                cJSON_AddItemToObject(row, sqlite3_column_name(stmt, c), cell_json(stmt, c));
            cJSON_AddItemToArray(arr, row);
            continue;
        }
        for (int c = 0; c < n_cols; c++) {
            cells[c] = cell_text(stmt, c);
            /* numbers right-aligned: decided by the first row that has a value */
            int type = sqlite3_column_type(stmt, c);
            if (t.n_rows == 0 && (type == SQLITE_INTEGER || type == SQLITE_FLOAT))
                t.right[c] = true;
        }
        tb_table_add_row(&t, (const char *const *)cells);
        for (int c = 0; c < n_cols; c++)
            free(cells[c]);
    }
    if (rc == TB_OK && s != SQLITE_DONE) {
        if ((s & 0xff) == SQLITE_BUSY || (s & 0xff) == SQLITE_LOCKED || (s & 0xff) == SQLITE_READONLY)
            rc = tb_store_error(st, s, "running the query");
        else
            rc = tb_fail(TB_ERR_USAGE, "SQL error: %s", sqlite3_errmsg(tb_store_db(st)));
    }
    if (rc == TB_OK && n_cols > 0) {
        if (!first && format != TB_FORMAT_CSV)
            fputc('\n', out);
        if (format == TB_FORMAT_MD)
            rc = tb_table_print_md(&t, out);
        else if (format == TB_FORMAT_CSV)
            rc = tb_table_print_csv(&t, true, out);
        else {
            char *text = cJSON_Print(arr);
            if (text)
                fprintf(out, "%s\n", text);
            else
                rc = tb_fail(TB_ERR_NOMEM, "out of memory");
            free(text);
        }
    }
    free(cells);
    cJSON_Delete(arr);
    tb_table_free(&t);
    return rc;
}

int tb_query_run(tb_store *st, const char *sql, tb_format format, FILE *out)
{
    const char *tail = sql;
    bool first = true;
    while (tail && *tail) {
        sqlite3_stmt *stmt = NULL;
        const char *next = NULL;
        int s = sqlite3_prepare_v2(tb_store_db(st), tail, -1, &stmt, &next);
        if (s != SQLITE_OK) {
            const char *msg = sqlite3_errmsg(tb_store_db(st));
            if ((s & 0xff) == SQLITE_BUSY || (s & 0xff) == SQLITE_LOCKED)
                return tb_store_error(st, s, "running the query");
            return tb_fail(TB_ERR_USAGE, "SQL error: %s", msg);
        }
        tail = next;
        if (!stmt)
            continue; /* whitespace or a comment */
        if (sqlite3_stmt_readonly(stmt) == 0 && sqlite3_db_readonly(tb_store_db(st), "main") == 1) {
            sqlite3_finalize(stmt);
            return tb_fail(TB_ERR_USAGE, "the statement writes to the database; pass --write to allow that");
        }
        int rc = print_statement(st, stmt, format, first, out);
        first = first && sqlite3_column_count(stmt) == 0;
        sqlite3_finalize(stmt);
        TB_TRY(rc);
    }
    return TB_OK;
}
