#include <stdio.h>
#include <string.h>

#include "harness/cli.h"
#include "harness/cmd_args.h"
#include "harness/commands.h"
#include "harness/matrix.h"
#include "harness/plan.h"
#include "harness/store.h"
#include "kernels/error.h"

static const char usage[] =
    "usage: trickbench plan MATRIX.json [--db PATH] [--shard I/N]\n"
    "\n"
    "Lists every run the matrix expands to (label, seed, short hash) with its\n"
    "status in the database, then \"N runs: D done, P pending\". Writes nothing.\n"
    "\n"
    "  --db PATH     results database (default " TB_STORE_DEFAULT_PATH ")\n"
    "  --shard I/N   only the runs of shard I of N, as 'run --shard' would\n";

int tb_cmd_plan(int argc, char **argv)
{
    if (tb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return TB_EXIT_OK;
    }
    const char *matrix = NULL, *db = TB_STORE_DEFAULT_PATH, *shard_arg = NULL;
    for (int i = 1; i < argc; i++) {
        int r;
        if ((r = tb_arg_value(argc, argv, &i, "--db", &db)) || (r = tb_arg_value(argc, argv, &i, "--shard", &shard_arg))) {
            if (r < 0)
                return tb_cli_usage_error("plan", "%s", tb_errmsg());
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return tb_cli_usage_error("plan", "unknown option '%s'", argv[i]);
        } else if (matrix) {
            return tb_cli_usage_error("plan", "one matrix at a time ('%s' and '%s')", matrix, argv[i]);
        } else {
            matrix = argv[i];
        }
    }
    if (!matrix)
        return tb_cli_usage_error("plan", "missing the matrix file");
    int shard = 0, count = 0;
    if (shard_arg && tb_parse_shard(shard_arg, &shard, &count) != TB_OK)
        return tb_cli_usage_error("plan", "%s", tb_errmsg());
    tb_matrix m;
    int rc = tb_matrix_load(matrix, &m);
    if (rc != TB_OK)
        return tb_cli_report_error("plan", rc);
    tb_store *st = NULL;
    tb_store_options ro = {.read_only = true};
    rc = tb_store_open(db, &ro, &st);
    if (rc == TB_ERR_MISSING) { /* no database yet: every run is pending */
        st = NULL;
        rc = TB_OK;
    }
    tb_plan_counts counts;
    if (rc == TB_OK)
        rc = tb_plan_print(&m, st, db, shard, count, stdout, &counts);
    tb_store_close(st);
    tb_matrix_free(&m);
    return rc == TB_OK ? TB_EXIT_OK : tb_cli_report_error("plan", rc);
}
