/* Paper-style reports from the results database: one row per configuration
 * label with each metric as mean ± std over seeds (n), Δ against the
 * baseline row with Welch's t-test p value, the reference (published) value
 * beside ours, median seconds per epoch and images/s; a pivot on one
 * dimension of the grid (columns = its levels); and for a full factorial
 * grid the main effect of each factor and the two-factor interactions, with
 * standard errors from the pooled within-cell variance over seeds. */
#ifndef TB_REPORT_H
#define TB_REPORT_H

#include <stdio.h>

#include "harness/store.h"
#include "harness/table.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tb_report_options {
    const char *matrix;    /* NULL = every matrix in the database */
    const char *metrics;   /* comma list; NULL = top1,top5 (those present), else every metric */
    const char *baseline;  /* a row label; NULL = the matrix's baseline */
    const char *pivot;     /* a dimension of the grid (an axis key, "steps" or "rows"); NULL = none */
    tb_format format;
} tb_report_options;

/* Prints the report of one or all matrices. Unknown matrix, metric,
 * baseline or pivot names are TB_ERR_USAGE errors naming the nearest valid one. */
int tb_report_print(tb_store *st, const tb_report_options *opt, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
