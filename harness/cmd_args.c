#include "harness/cmd_args.h"

#include <string.h>

#include "kernels/error.h"

int tb_arg_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n))
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        tb_fail(TB_ERR_USAGE, "%s needs a value", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}
