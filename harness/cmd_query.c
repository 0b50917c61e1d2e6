/* PENDING: this subcommand lands with a later change. */
#include <stdio.h>

#include "harness/cli.h"
#include "harness/commands.h"
#include "kernels/error.h"

static const char usage[] = "usage: trickbench query [--db PATH] \"SQL\"\n\nRuns an SQL query on the results database and prints it as a markdown table.\n";

int tb_cmd_query(int argc, char **argv)
{
    if (tb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return TB_EXIT_OK;
    }
    return tb_cli_report_error("query", tb_fail(TB_ERR_NOT_IMPLEMENTED, "'trickbench query' is not implemented yet"));
}
