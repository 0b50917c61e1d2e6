/* The report's data model, shared by report_data.c (loading and
 * statistics), report_effects.c and report_print.c. Not a public interface. */
#ifndef TB_REPORT_INTERNAL_H
#define TB_REPORT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "harness/matrix.h"
#include "harness/report.h"

typedef struct rp_value {
    char name[TB_METRIC_NAME_MAX];
    double value;
} rp_value;

typedef struct rp_stats {
    int n;
    double mean, std;
    double delta, p;        /* vs the baseline row; NaN when undefined */
    double ref;             /* reference value, NaN when none */
} rp_stats;

typedef struct rp_row {
    char label[TB_LABEL_MAX];
    int row;
    cJSON *parts;           /* {dimension: level label}; empty for rows outside the grid */
    int runs, finished, failed, diverged, pending; /* pending: pending/running/interrupted */
    rp_value *vals;         /* every final metric of the finished runs */
    int n_vals, cap_vals;
    double *secs, *ips;     /* per-epoch seconds and images/s of finished runs */
    int n_secs, n_ips, cap_secs, cap_ips;
    double sec_median, ips_median;
    rp_stats *stats;        /* per selected metric */
} rp_row;

typedef struct rp_unfinished {
    char label[TB_LABEL_MAX];
    uint64_t seed;
    char status[16];
    char error[200];
} rp_unfinished;

typedef struct rp_effect {
    char name[2 * TB_LABEL_MAX + 8];
    double estimate, se, p;
} rp_effect;

typedef struct rp_matrix {
    int64_t id;
    char name[128];
    char *description;
    char baseline[TB_LABEL_MAX];
    cJSON *dims;            /* [{name, levels}] */
    cJSON *reference;       /* {label: {metric: value}} */
    rp_row *rows;
    int n_rows;
    char **metrics;         /* selected */
    int n_metrics;
    char **available;       /* every metric name present */
    int n_available;
    rp_unfinished *unfinished;
    int n_unfinished;
    int n_runs;
    /* effects per selected metric (NULL when the matrix is not a full grid) */
    rp_effect **effects;
    int *n_effects;
    int effects_df;         /* pooled within-cell degrees of freedom */
    char effects_note[256]; /* why effects are not shown, or "" */
} rp_matrix;

int rp_load_matrix(tb_store *st, int64_t id, const tb_report_options *opt, rp_matrix *m);
void rp_free_matrix(rp_matrix *m);
/* Values of `metric` in row r (finished runs); returns the count, fills out (caller frees). */
int rp_row_values(const rp_row *r, const char *metric, double **out);
int rp_compute_effects(rp_matrix *m);

int rp_print_md(const rp_matrix *m, const tb_report_options *opt, FILE *out);
int rp_print_csv(const rp_matrix *m, bool header, FILE *out);
cJSON *rp_to_json(const rp_matrix *m);

/* Formatting of a metric value: 2 decimals for accuracies, 4 for losses,
 * M/G suffixes for params/macs, 4 significant digits otherwise. */
void rp_format_value(const char *metric, double v, bool sign, char *buf, size_t size);

#endif
