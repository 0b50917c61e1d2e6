/* `trickbench query`: runs SQL on the results database and prints each
 * statement's rows as a markdown table, CSV or JSON. */
#ifndef TB_QUERY_H
#define TB_QUERY_H

#include <stdio.h>

#include "harness/store.h"
#include "harness/table.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every statement in `sql` runs in order; those that return columns are
 * printed. A bad statement is TB_ERR_USAGE with SQLite's message. */
int tb_query_run(tb_store *st, const char *sql, tb_format format, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
