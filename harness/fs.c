#include "harness/fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels/error.h"

int tb_make_parent_dirs(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return tb_fail(TB_ERR_NOMEM, "out of memory");
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            int rc = tb_fail(TB_ERR_IO, "%s: cannot create directory %s: %s", path, copy, strerror(e));
            free(copy);
            return rc;
        }
        *p = '/';
    }
    free(copy);
    return TB_OK;
}
