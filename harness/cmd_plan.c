/* PENDING: this subcommand lands with a later change. */
#include <stdio.h>

#include "harness/cli.h"
#include "harness/commands.h"
#include "kernels/error.h"

static const char usage[] = "usage: trickbench plan MATRIX.json [--db PATH]\n\nLists every run the matrix expands to, with its status in the database.\n";

int tb_cmd_plan(int argc, char **argv)
{
    if (tb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return TB_EXIT_OK;
    }
    return tb_cli_report_error("plan", tb_fail(TB_ERR_NOT_IMPLEMENTED, "'trickbench plan' is not implemented yet"));
}
