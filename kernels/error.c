#include "kernels/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* One message per thread: loader workers report their own failures. */
static _Thread_local char tb_msg[2048];

int tb_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tb_msg, sizeof tb_msg, fmt, ap);
    va_end(ap);
    return code;
}

int tb_err_context(int code, const char *fmt, ...)
{
    char prefix[512];
    char old[sizeof tb_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, tb_msg, sizeof old);
    /* truncation of an over-long message is acceptable: it stays readable */
    size_t plen = strlen(prefix);
    if (plen > sizeof tb_msg - 3)
        plen = sizeof tb_msg - 3;
    memcpy(tb_msg, prefix, plen);
    tb_msg[plen] = ':';
    tb_msg[plen + 1] = ' ';
    size_t rest = sizeof tb_msg - plen - 2;
    size_t olen = strnlen(old, rest - 1);
    memcpy(tb_msg + plen + 2, old, olen);
    tb_msg[plen + 2 + olen] = '\0';
    return code;
}

const char *tb_errmsg(void) { return tb_msg[0] ? tb_msg : "no error message recorded"; }

void tb_err_clear(void) { tb_msg[0] = '\0'; }

const char *tb_status_name(int code)
{
    switch (code) {
    case TB_OK: return "ok";
    case TB_ERR_USAGE: return "usage";
    case TB_ERR_INVALID: return "invalid argument";
    case TB_ERR_DATA: return "bad data";
    case TB_ERR_MISSING: return "missing input";
    case TB_ERR_UNSUPPORTED: return "unsupported";
    case TB_ERR_NOMEM: return "out of memory";
    case TB_ERR_IO: return "I/O error";
    case TB_ERR_BUSY: return "busy";
    case TB_ERR_BACKEND: return "backend error";
    case TB_ERR_INTERNAL: return "internal error";
    case TB_ERR_INTERRUPTED: return "interrupted";
    case TB_ERR_DIVERGED: return "diverged";
    case TB_ERR_NOT_IMPLEMENTED: return "not implemented yet";
    default: return "unknown error";
    }
}

int tb_status_exit_code(int code)
{
    switch (code) {
    case TB_OK: return 0;
    case TB_ERR_USAGE: return 64;
    case TB_ERR_INVALID:
    case TB_ERR_DATA: return 65;
    case TB_ERR_MISSING: return 66;
    case TB_ERR_NOMEM: return 71;
    case TB_ERR_IO: return 74;
    case TB_ERR_BUSY: return 75;
    case TB_ERR_INTERRUPTED: return 130;
    default: return 70;
    }
}
