/* trickbench: the command-line entry point. Dispatches to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "tb_build_config.h"
#include "harness/cli.h"
#include "harness/commands.h"

typedef struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} subcommand;

static const subcommand subcommands[] = {
    {"run", tb_cmd_run, "train every pending run of an ablation matrix into the results database"},
    {"plan", tb_cmd_plan, "list the runs a matrix expands to and their status in the database"},
    {"report", tb_cmd_report, "print paper-style markdown tables from the results database"},
    {"query", tb_cmd_query, "run an SQL query on the results database and print a table"},
    {"eval", tb_cmd_eval, "score the weights finished runs saved (flip test-time augmentation)"},
    {"merge", tb_cmd_merge, "merge results databases (e.g. from --shard runs) without duplicates"},
    {"model", tb_cmd_model, "print a model's parameter and multiply-accumulate counts"},
    {"bench", tb_cmd_bench, "measure training throughput (images/s) of a model"},
    {"version", tb_cmd_version, "print the version, git commit and compiled backends"},
};

static void print_usage(FILE *f)
{
    fprintf(f, "usage: trickbench <command> [options]\n\n"
               "trickbench measures which training tricks make a convolutional network better,\n"
               "with real training runs recorded in SQLite (He et al., Bag of Tricks, 2019).\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        fprintf(f, "  %-8s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(f, "\nRun 'trickbench <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return TB_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        print_usage(stdout);
        return TB_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version"))
        return tb_cmd_version(1, argv + 1);
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (!strcmp(argv[1], subcommands[i].name))
            return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "trickbench: unknown command '%s'\n\n", argv[1]);
    print_usage(stderr);
    return TB_EXIT_USAGE;
}
