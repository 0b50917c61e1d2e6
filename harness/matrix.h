/* Ablation matrices: a JSON file that expands into runs.
 *
 *   {
 *     "name": "quick", "description": "...",
 *     "base": { run config } or "base.json" (relative to the matrix file),
 *     "axes":  [ {"key": "model.variant", "values": ["A", "D"], "labels": ["ResNet", "ResNet-D"]} ],
 *     "steps": [ {"label": "+ cosine", "set": {"schedule.type": "cosine"}}, ... ],   (cumulative)
 *     "rows":  [ {"label": "mixup", "set": {"tricks.mixup_alpha": 0.2}}, ... ],     (independent)
 *     "base_label": "baseline",
 *     "seeds": [1, 2] or 2,
 *     "exclude": [ {"model.variant": "A", "label": "..."} ],
 *     "include": [ {"label": "...", "set": {...}} ],
 *     "baseline": "ResNet, baseline",
 *     "reference": { "ResNet, baseline": {"top1": 75.3, "top5": 92.2} }
 *   }
 *
 * Rows (configurations) are the grid of the axes' values times the levels of
 * the steps or rows (not both); row i of `steps` is the base plus the sets of
 * steps 1..i, with row 0 the base itself (labelled base_label). Steps/rows
 * are applied after the axes. `include` rows are added outside the grid;
 * `exclude` drops grid rows whose resolved config matches every key given.
 * Each row runs once per seed. Runs are ordered so that a distillation
 * teacher referenced by label (tricks.distill.teacher) runs before its
 * students; the report keeps the matrix's own row order.
 */
#ifndef TB_MATRIX_H
#define TB_MATRIX_H

#include <stdbool.h>
#include <stdint.h>

#include "harness/config.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TB_LABEL_MAX 256
#define TB_METRIC_NAME_MAX 48

/* A dimension of the grid: an axis (named by its key path), or "steps" / "rows". */
typedef struct tb_matrix_dim {
    char name[128];
    char **levels;   /* level labels, in order */
    int n_levels;
} tb_matrix_dim;

/* One configuration: a row of the report. */
typedef struct tb_matrix_row {
    char label[TB_LABEL_MAX];
    int *levels;     /* level index per dimension; NULL for an `include` row (outside the grid) */
    tb_run_config cfg; /* without the seed */
} tb_matrix_row;

/* One run: a row with a seed, in execution order. */
typedef struct tb_matrix_run {
    int row;         /* index into rows */
    uint64_t seed;
    tb_run_config cfg;
    char *config_json; /* canonical JSON */
    char hash[65];
    int teacher;     /* index into runs of the distillation teacher, or -1 */
    int shard_key;   /* runs with equal keys land in the same shard (a student with its teacher) */
} tb_matrix_run;

typedef struct tb_matrix_reference {
    char label[TB_LABEL_MAX];
    char metric[TB_METRIC_NAME_MAX];
    double value;
} tb_matrix_reference;

typedef struct tb_matrix {
    char name[128];
    char *description;
    char *file;        /* path it was read from ("" when built from JSON) */
    char *definition;  /* the matrix as canonical JSON */
    char baseline[TB_LABEL_MAX];
    tb_matrix_dim *dims;
    int n_dims;
    tb_matrix_row *rows;
    int n_rows;
    tb_matrix_run *runs;
    int n_runs;
    uint64_t *seeds;
    int n_seeds;
    tb_matrix_reference *refs;
    int n_refs;
} tb_matrix;

/* Reads and expands a matrix file. Any error (syntax with line:col, unknown
 * or mistyped keys with their path, unknown labels) stops before a run is made. */
int tb_matrix_load(const char *path, tb_matrix *m);

/* Expands a parsed matrix; `origin` names it in messages, `dir` resolves a
 * "base" given as a file name (NULL = current directory). */
int tb_matrix_from_json(const struct cJSON *root, const char *origin, const char *dir, tb_matrix *m);

void tb_matrix_free(tb_matrix *m);

/* Whether run `i` belongs to shard `shard` (1-based) of `count`. */
bool tb_matrix_in_shard(const tb_matrix *m, int i, int shard, int count);

/* JSON for the store: the dimensions [{"name", "levels"}], one row's parts
 * {"dim": "level label", ...}, and the reference values {label: {metric: v}}.
 * malloc'd; NULL when out of memory. */
char *tb_matrix_dims_json(const tb_matrix *m);
char *tb_matrix_parts_json(const tb_matrix *m, int row);
char *tb_matrix_reference_json(const tb_matrix *m);

/* The label of run i ("ResNet-D, + cosine"). */
const char *tb_matrix_run_label(const tb_matrix *m, int i);

#ifdef __cplusplus
}
#endif
#endif
