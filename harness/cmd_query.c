#include <stdio.h>
#include <string.h>

#include "harness/cli.h"
#include "harness/cmd_args.h"
#include "harness/commands.h"
#include "harness/query.h"
#include "harness/store.h"
#include "kernels/error.h"

static const char usage[] =
    "usage: trickbench query [--db PATH] [--format md|csv|json] [--write] \"SQL\"\n"
    "\n"
    "Runs SQL on the results database and prints the rows as a markdown table.\n"
    "Tables: matrices, runs, matrix_runs, epochs, metrics; views: run_summary,\n"
    "run_metrics, label_summary, epoch_log (see docs/results.md). For example:\n"
    "\n"
    "  trickbench query \"SELECT label, n, mean, std FROM label_summary WHERE metric = 'top1'\"\n"
    "  trickbench query \"SELECT json_extract(config, '$.model.variant') AS v, status FROM runs\"\n"
    "\n"
    "  --db PATH     results database (default " TB_STORE_DEFAULT_PATH ")\n"
    "  --format F    md (default), csv or json\n"
    "  --write       allow statements that change the database (DELETE, UPDATE, ...)\n";

int tb_cmd_query(int argc, char **argv)
{
    if (tb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return TB_EXIT_OK;
    }
    const char *db = TB_STORE_DEFAULT_PATH, *format = "md", *sql = NULL;
    bool write = false;
    for (int i = 1; i < argc; i++) {
        int r;
        if ((r = tb_arg_value(argc, argv, &i, "--db", &db)) || (r = tb_arg_value(argc, argv, &i, "--format", &format))) {
            if (r < 0)
                return tb_cli_usage_error("query", "%s", tb_errmsg());
        } else if (!strcmp(argv[i], "--write")) {
            write = true;
        } else if (argv[i][0] == '-' && argv[i][1] == '-' && !sql) {
            return tb_cli_usage_error("query", "unknown option '%s'", argv[i]);
        } else if (sql) {
            return tb_cli_usage_error("query", "give the SQL as one argument (quote it)");
        } else {
            sql = argv[i];
        }
    }
    if (!sql)
        return tb_cli_usage_error("query", "missing the SQL query");
    tb_format f;
    if (tb_format_parse(format, &f) != TB_OK)
        return tb_cli_usage_error("query", "%s", tb_errmsg());
    tb_store *st = NULL;
    tb_store_options so = {.read_only = !write, .must_exist = true};
    int rc = tb_store_open(db, &so, &st);
    if (rc == TB_OK)
        rc = tb_query_run(st, sql, f, stdout);
    tb_store_close(st);
    return rc == TB_OK ? TB_EXIT_OK : tb_cli_report_error("query", rc);
}
