/* PENDING: this subcommand lands with a later change. */
#include <stdio.h>

#include "harness/cli.h"
#include "harness/commands.h"
#include "kernels/error.h"

static const char usage[] = "usage: trickbench bench --model M [--variant V] --batch B --image S [--precision P] [--device D] [--steps N] [--json]\n\nMeasures training throughput in images/s.\n";

int tb_cmd_bench(int argc, char **argv)
{
    if (tb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return TB_EXIT_OK;
    }
    return tb_cli_report_error("bench", tb_fail(TB_ERR_NOT_IMPLEMENTED, "'trickbench bench' is not implemented yet"));
}
