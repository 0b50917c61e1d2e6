#include "harness/plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness/table.h"
#include "kernels/error.h"

int tb_parse_shard(const char *s, int *shard, int *count)
{
    char *end = NULL;
    errno = 0;
    long i = strtol(s, &end, 10);
    long n = 0;
    if (!errno && end != s && *end == '/') {
        const char *rest = end + 1;
        n = strtol(rest, &end, 10);
        if (end == rest || *end)
            n = 0;
    }
    if (errno || n < 1 || n > 100000 || i < 1 || i > n)
        return tb_fail(TB_ERR_USAGE, "--shard: '%s' is not i/n with 1 <= i <= n (e.g. 2/4)", s);
    *shard = (int)i;
    *count = (int)n;
    return TB_OK;
}

int tb_plan_print(const tb_matrix *m, tb_store *st, const char *db_path, int shard, int shard_count, FILE *out,
                  tb_plan_counts *counts)
{
    memset(counts, 0, sizeof *counts);
    tb_table t;
    tb_table_init(&t);
    tb_table_add_column(&t, "#", true);
    tb_table_add_column(&t, "label", false);
    tb_table_add_column(&t, "seed", true);
    tb_table_add_column(&t, "hash", false);
    tb_table_add_column(&t, "status", false);
    int rc = TB_OK;
    for (int i = 0; rc == TB_OK && i < m->n_runs; i++) {
        if (!tb_matrix_in_shard(m, i, shard, shard_count))
            continue;
        tb_run_status s = TB_STATUS_ABSENT;
        if (st)
            rc = tb_store_run_status(st, m->runs[i].hash, &s, NULL, 0);
        counts->total++;
        if (tb_run_status_done(s))
            counts->done++;
        else
            counts->pending++;
        char num[16], seed[24], hash[16], status[TB_LABEL_MAX + 32];
        snprintf(num, sizeof num, "%d", i + 1);
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)m->runs[i].seed);
        snprintf(hash, sizeof hash, "%.12s", m->runs[i].hash);
        if (m->runs[i].teacher >= 0 && !tb_run_status_done(s))
            snprintf(status, sizeof status, "%s (after teacher #%d)",
                     tb_run_status_name(s == TB_STATUS_ABSENT ? TB_STATUS_PENDING : s), m->runs[i].teacher + 1);
        else
            snprintf(status, sizeof status, "%s", tb_run_status_name(s == TB_STATUS_ABSENT ? TB_STATUS_PENDING : s));
        const char *cells[] = {num, tb_matrix_run_label(m, i), seed, hash, status};
        tb_table_add_row(&t, cells);
    }
    if (rc == TB_OK) {
        fprintf(out, "%s: %d configuration%s x %d seed%s", m->name, m->n_rows, m->n_rows == 1 ? "" : "s",
                m->n_seeds, m->n_seeds == 1 ? "" : "s");
        if (shard_count > 1)
            fprintf(out, ", shard %d/%d", shard, shard_count);
        fprintf(out, ", database %s%s\n\n", db_path, st ? "" : " (not created yet)");
        rc = tb_table_print_md(&t, out);
    }
    if (rc == TB_OK)
        fprintf(out, "\n%d runs: %d done, %d pending\n", counts->total, counts->done, counts->pending);
    tb_table_free(&t);
    return rc;
}
