/* PENDING: this subcommand lands with a later change. */
#include <stdio.h>

#include "harness/cli.h"
#include "harness/commands.h"
#include "kernels/error.h"

static const char usage[] = "usage: trickbench model NAME [--variant A|B|C|D] [--image S] [--classes K] [--stem imagenet|small] [--json]\n\nPrints the parameter and multiply-accumulate counts of a model.\n";

int tb_cmd_model(int argc, char **argv)
{
    if (tb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return TB_EXIT_OK;
    }
    return tb_cli_report_error("model", tb_fail(TB_ERR_NOT_IMPLEMENTED, "'trickbench model' is not implemented yet"));
}
