#include <stdio.h>
#include <string.h>

#include "harness/cli.h"
#include "harness/commands.h"
#include "harness/store.h"
#include "kernels/error.h"

static const char usage[] =
    "usage: trickbench merge OUT.db IN.db...\n"
    "\n"
    "Merges results databases (e.g. those of 'run --shard I/N' jobs) into OUT.db,\n"
    "creating it if needed. Runs are matched by their config hash: nothing is\n"
    "duplicated, and of two copies of a run the one with the better status is\n"
    "kept (finished > diverged > failed > interrupted > running > pending).\n"
    "Merging the same input twice changes nothing.\n";

int tb_cmd_merge(int argc, char **argv)
{
    if (tb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return TB_EXIT_OK;
    }
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1])
            return tb_cli_usage_error("merge", "unknown option '%s'", argv[i]);
    if (argc < 3)
        return tb_cli_usage_error("merge", "give the output database and at least one input");
    tb_store *st = NULL;
    int rc = tb_store_open(argv[1], NULL, &st);
    for (int i = 2; rc == TB_OK && i < argc; i++) {
        tb_merge_stats s = {0};
        rc = tb_store_merge(st, argv[i], &s);
        if (rc == TB_OK)
            printf("%s: %d run%s added, %d replaced by a better status, %d already present; %d matrix%s added\n",
                   argv[i], s.runs_added, s.runs_added == 1 ? "" : "s", s.runs_replaced, s.runs_kept,
                   s.matrices_added, s.matrices_added == 1 ? "" : "es");
    }
    tb_store_close(st);
    return rc == TB_OK ? TB_EXIT_OK : tb_cli_report_error("merge", rc);
}
