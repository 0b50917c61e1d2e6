/* A table of text cells printed as markdown (columns padded to equal width,
 * so it reads well in a terminal too), CSV (RFC 4180 quoting, LF line ends) or, by the callers
 * that know their value types, JSON. Used by `query` and `report`. */
#ifndef TB_TABLE_H
#define TB_TABLE_H

#include <stdbool.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tb_format { TB_FORMAT_MD = 0, TB_FORMAT_CSV, TB_FORMAT_JSON } tb_format;

/* "md" | "markdown" | "csv" | "json"; TB_ERR_USAGE naming the value otherwise. */
int tb_format_parse(const char *s, tb_format *out);

typedef struct tb_table {
    int n_cols;
    char **headers;
    bool *right;      /* right-align (numbers) */
    char ***rows;     /* n_rows x n_cols, malloc'd strings */
    int n_rows, cap;
    bool oom;
} tb_table;

void tb_table_init(tb_table *t);
/* Adds a column; right = right-aligned. Columns are added before rows. */
void tb_table_add_column(tb_table *t, const char *header, bool right);
/* Adds a row of n_cols cells (NULL = empty). */
void tb_table_add_row(tb_table *t, const char *const *cells);
void tb_table_free(tb_table *t);
/* TB_ERR_NOMEM if an allocation failed while building. */
int tb_table_print_md(const tb_table *t, FILE *out);
/* CSV; `header` false prints the rows only (to append to an earlier table). */
int tb_table_print_csv(const tb_table *t, bool header, FILE *out);

/* Display width of UTF-8 text (code points; our symbols ± Δ × are one column each). */
int tb_text_width(const char *s);

#ifdef __cplusplus
}
#endif
#endif
