/* PENDING: this subcommand lands with a later change. */
#include <stdio.h>

#include "harness/cli.h"
#include "harness/commands.h"
#include "kernels/error.h"

static const char usage[] = "usage: trickbench merge OUT.db IN.db...\n\nMerges results databases without duplicates.\n";

int tb_cmd_merge(int argc, char **argv)
{
    if (tb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return TB_EXIT_OK;
    }
    return tb_cli_report_error("merge", tb_fail(TB_ERR_NOT_IMPLEMENTED, "'trickbench merge' is not implemented yet"));
}
