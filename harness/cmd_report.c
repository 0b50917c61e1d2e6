/* PENDING: this subcommand lands with a later change. */
#include <stdio.h>

#include "harness/cli.h"
#include "harness/commands.h"
#include "kernels/error.h"

static const char usage[] = "usage: trickbench report [--db PATH] [--matrix NAME] [--metrics LIST] [--baseline LABEL]\n\nPrints paper-style markdown tables from the results database.\n";

int tb_cmd_report(int argc, char **argv)
{
    if (tb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return TB_EXIT_OK;
    }
    return tb_cli_report_error("report", tb_fail(TB_ERR_NOT_IMPLEMENTED, "'trickbench report' is not implemented yet"));
}
