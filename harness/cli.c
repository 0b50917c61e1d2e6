#include "harness/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/error.h"

int tb_cli_report_error(const char *cmd, int status)
{
    fprintf(stderr, "trickbench %s: error: %s\n", cmd, tb_errmsg());
    return tb_status_exit_code(status);
}

int tb_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "trickbench %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nsee 'trickbench %s --help'\n", cmd);
    return TB_EXIT_USAGE;
}

bool tb_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            return false;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return true;
    }
    return false;
}

int tb_cli_parse_int(const char *opt, const char *value, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(value ? value : "", &end, 10);
    if (!value || !*value || *end || errno)
        return tb_fail(TB_ERR_USAGE, "%s: '%s' is not an integer", opt, value ? value : "");
    if (v < min || v > max)
        return tb_fail(TB_ERR_USAGE, "%s: %ld is out of range [%ld, %ld]", opt, v, min, max);
    *out = v;
    return TB_OK;
}

bool tb_cli_color(void)
{
    const char *nc = getenv("NO_COLOR");
    return isatty(STDERR_FILENO) && !(nc && *nc);
}
