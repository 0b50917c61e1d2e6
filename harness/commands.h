/* Subcommands of the trickbench CLI. Each parses its own arguments (argv[0]
 * is the subcommand name), prints results on stdout and diagnostics on
 * stderr, and returns the process exit code (sysexits, see kernels/error.h). */
#ifndef TB_COMMANDS_H
#define TB_COMMANDS_H

int tb_cmd_run(int argc, char **argv);
int tb_cmd_plan(int argc, char **argv);
int tb_cmd_report(int argc, char **argv);
int tb_cmd_query(int argc, char **argv);
int tb_cmd_eval(int argc, char **argv);
int tb_cmd_merge(int argc, char **argv);
int tb_cmd_model(int argc, char **argv);
int tb_cmd_bench(int argc, char **argv);
int tb_cmd_version(int argc, char **argv);

#endif
