/* Option parsing shared by the harness subcommands (run, plan, report,
 * query, merge): "--name VALUE" and "--name=VALUE". */
#ifndef TB_CMD_ARGS_H
#define TB_CMD_ARGS_H

/* 1: argv[*i] is option `name`; its value is stored and *i advanced past it.
 * 0: argv[*i] is something else. -1: the value is missing (message recorded,
 * TB_ERR_USAGE). */
int tb_arg_value(int argc, char **argv, int *i, const char *name, const char **value);

#endif
