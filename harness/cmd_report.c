#include <stdio.h>
#include <string.h>

#include "harness/cli.h"
#include "harness/cmd_args.h"
#include "harness/commands.h"
#include "harness/report.h"
#include "harness/store.h"
#include "kernels/error.h"

static const char usage[] =
    "usage: trickbench report [--db PATH] [--matrix NAME] [--metrics top1,top5] [--baseline LABEL]\n"
    "                         [--pivot KEY] [--format md|csv|json]\n"
    "\n"
    "Prints paper-style tables from the results database: one row per configuration,\n"
    "each metric as mean ± std over seeds with n, Δ against the baseline row with\n"
    "Welch's t-test p value, the matrix's reference values beside ours, median\n"
    "seconds per epoch and images/s; for a full grid, the main effects and\n"
    "interactions.\n"
    "\n"
    "  --db PATH        results database (default " TB_STORE_DEFAULT_PATH ")\n"
    "  --matrix NAME    one matrix (default: every matrix in the database)\n"
    "  --metrics LIST   comma-separated metric names (default: top1,top5)\n"
    "  --baseline LABEL the row Δ and p compare against (default: the matrix's)\n"
    "  --pivot KEY      columns from one dimension of the grid: an axis key\n"
    "                   (e.g. model.variant), \"steps\" or \"rows\"\n"
    "  --format F       md (default), csv or json\n";

int tb_cmd_report(int argc, char **argv)
{
    if (tb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return TB_EXIT_OK;
    }
    const char *db = TB_STORE_DEFAULT_PATH, *format = "md";
    tb_report_options opt = {0};
    for (int i = 1; i < argc; i++) {
        int r;
        if ((r = tb_arg_value(argc, argv, &i, "--db", &db)) ||
            (r = tb_arg_value(argc, argv, &i, "--matrix", &opt.matrix)) ||
            (r = tb_arg_value(argc, argv, &i, "--metrics", &opt.metrics)) ||
            (r = tb_arg_value(argc, argv, &i, "--baseline", &opt.baseline)) ||
            (r = tb_arg_value(argc, argv, &i, "--pivot", &opt.pivot)) ||
            (r = tb_arg_value(argc, argv, &i, "--format", &format))) {
            if (r < 0)
                return tb_cli_usage_error("report", "%s", tb_errmsg());
        } else {
            return tb_cli_usage_error("report", "unexpected argument '%s'", argv[i]);
        }
    }
    if (tb_format_parse(format, &opt.format) != TB_OK)
        return tb_cli_usage_error("report", "%s", tb_errmsg());
    tb_store *st = NULL;
    tb_store_options ro = {.read_only = true};
    int rc = tb_store_open(db, &ro, &st);
    if (rc == TB_OK)
        rc = tb_report_print(st, &opt, stdout);
    tb_store_close(st);
    return rc == TB_OK ? TB_EXIT_OK : tb_cli_report_error("report", rc);
}
