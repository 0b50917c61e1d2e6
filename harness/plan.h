/* `trickbench plan` and `run --dry-run`: every run of a matrix with its
 * label, seed, short hash and status in the database, then the line
 * "N runs: D done, P pending". */
#ifndef TB_PLAN_H
#define TB_PLAN_H

#include <stdio.h>

#include "harness/matrix.h"
#include "harness/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tb_plan_counts {
    int total, done, pending;
} tb_plan_counts;

/* `st` may be NULL (no database yet: everything is pending). Only runs of
 * shard `shard` of `shard_count` are listed (0 = all). */
int tb_plan_print(const tb_matrix *m, tb_store *st, const char *db_path, int shard, int shard_count, FILE *out,
                  tb_plan_counts *counts);

/* Parses "i/n" (1 <= i <= n) for --shard. */
int tb_parse_shard(const char *s, int *shard, int *count);

#ifdef __cplusplus
}
#endif
#endif
