/* Shared between matrix.c (reading the file) and matrix_expand.c (building
 * rows and runs). Not a public interface. */
#ifndef TB_MATRIX_INTERNAL_H
#define TB_MATRIX_INTERNAL_H

#include <cjson/cJSON.h>

#include "harness/matrix.h"

#define TB_ORIGIN_MAX 512

/* A level of the steps/rows dimension: a label and the keys it sets. */
typedef struct tb_mx_level {
    char label[TB_LABEL_MAX];
    const cJSON *set;           /* object of dotted key -> value; NULL for the base level of steps */
    char origin[TB_ORIGIN_MAX]; /* "file: steps[2].set" */
} tb_mx_level;

typedef struct tb_mx_axis {
    char key[128];
    const cJSON *values;        /* array */
    int n;
    char **labels;              /* n labels (given or generated) */
    char origin[TB_ORIGIN_MAX]; /* "file: axes[0]" */
} tb_mx_axis;

typedef enum tb_mx_mode { TB_MX_PLAIN = 0, TB_MX_STEPS, TB_MX_ROWS } tb_mx_mode;

typedef struct tb_mx_spec {
    const char *origin;
    tb_run_config base;
    tb_mx_axis *axes;
    int n_axes;
    tb_mx_mode mode;
    tb_mx_level *levels;        /* steps: level 0 is the base; rows: one per row */
    int n_levels;
    const cJSON *exclude;       /* array or NULL */
    const cJSON *include;       /* array or NULL */
} tb_mx_spec;

/* Builds m->dims, m->rows (grid, exclude, include), validates every row. */
int tb_mx_build_rows(const tb_mx_spec *s, tb_matrix *m);

/* Builds m->runs from rows x seeds, teachers first, with hashes. */
int tb_mx_build_runs(const tb_mx_spec *s, tb_matrix *m);

/* Applies a "set" object (dotted key -> value) to cfg. */
int tb_mx_apply_set(tb_run_config *cfg, const cJSON *set, const char *origin);

/* Text of a value inside a generated label ("0.1", "cosine", ...). */
void tb_mx_value_text(const cJSON *v, char *buf, size_t size);

/* Generated label of a set object: "type=cosine, label_smoothing=0.1". */
void tb_mx_set_label(const cJSON *set, const char *prefix, char *buf, size_t size);

/* The short name of a key in generated labels (the last component, or the
 * last two when the last is generic, e.g. "schedule.type"). */
const char *tb_mx_short_key(const char *key, char *buf, size_t size);

/* snprintf for message prefixes ("file: axes[0].values[2]"): silently cut
 * at `size`, which is fine for a message. */
void tb_mx_where(char *buf, size_t size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* The label in `labels` nearest to `name`, formatted as " (did you mean 'x'?)", or "". */
void tb_mx_label_hint(const tb_matrix *m, const char *name, char *buf, size_t size);

#endif
