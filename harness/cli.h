/* Shared helpers of the CLI: error printing with the sysexits mapping, help
 * detection, and the --device / --threads options every training command takes. */
#ifndef TB_CLI_H
#define TB_CLI_H

#include <stdbool.h>

#include "kernels/backend.h"

#define TB_EXIT_OK 0
#define TB_EXIT_USAGE 64
#define TB_EXIT_DATAERR 65
#define TB_EXIT_NOINPUT 66
#define TB_EXIT_SOFTWARE 70
#define TB_EXIT_IOERR 74
#define TB_EXIT_TEMPFAIL 75
#define TB_EXIT_INTERRUPTED 130

/* Prints "trickbench <cmd>: error: <tb_errmsg()>" and returns the exit code for `status`. */
int tb_cli_report_error(const char *cmd, int status);
/* Prints a usage error plus "see 'trickbench <cmd> --help'" and returns 64. */
int tb_cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* True when argv holds -h or --help. */
bool tb_cli_wants_help(int argc, char **argv);
/* Parses a non-negative integer option value; on failure records a message naming the option. */
int tb_cli_parse_int(const char *opt, const char *value, long min, long max, long *out);
/* True when stderr is a terminal and NO_COLOR is unset. */
bool tb_cli_color(void);

#endif
