/* PENDING: this subcommand lands with a later change. */
#include <stdio.h>

#include "harness/cli.h"
#include "harness/commands.h"
#include "kernels/error.h"

static const char usage[] = "usage: trickbench run MATRIX.json [--db PATH] [--device auto|cpu|cuda] [--threads N]\n\nTrains every run of the matrix that is not finished in the database.\n";

int tb_cmd_run(int argc, char **argv)
{
    if (tb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return TB_EXIT_OK;
    }
    return tb_cli_report_error("run", tb_fail(TB_ERR_NOT_IMPLEMENTED, "'trickbench run' is not implemented yet"));
}
