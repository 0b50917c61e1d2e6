/* Error reporting for the whole project.
 *
 * Library code never exits: a function returns a tb_status, and on failure it
 * has recorded a message (thread-local) that names what was wrong and where.
 * Only the CLI maps codes to exit statuses (sysexits) and prints the message.
 */
#ifndef TB_ERROR_H
#define TB_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tb_status {
    TB_OK = 0,
    TB_ERR_USAGE,        /* bad CLI usage (EX_USAGE 64) */
    TB_ERR_INVALID,      /* bad arguments: shapes, dtypes, config values (EX_DATAERR 65) */
    TB_ERR_DATA,         /* bad input data: dataset or checkpoint files (EX_DATAERR 65) */
    TB_ERR_MISSING,      /* missing input file or directory (EX_NOINPUT 66) */
    TB_ERR_UNSUPPORTED,  /* op/dtype/feature not supported here (EX_SOFTWARE 70 unless usage) */
    TB_ERR_NOMEM,        /* allocation failed (EX_OSERR 71) */
    TB_ERR_IO,           /* I/O failure (EX_IOERR 74) */
    TB_ERR_BUSY,         /* temporary failure, e.g. locked database (EX_TEMPFAIL 75) */
    TB_ERR_BACKEND,      /* CUDA/cuDNN/cuBLAS or BLAS failure (EX_SOFTWARE 70) */
    TB_ERR_INTERNAL,     /* invariant broken: a bug (EX_SOFTWARE 70) */
    TB_ERR_INTERRUPTED,  /* SIGINT/SIGTERM seen (130) */
    TB_ERR_DIVERGED,     /* non-finite loss during training */
    TB_ERR_NOT_IMPLEMENTED /* feature not implemented yet (EX_SOFTWARE 70) */
} tb_status;

/* Records a printf-style message for `code` and returns `code`. */
int tb_fail(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Prepends "context: " to the current message (e.g. the file being read) and
 * returns `code` unchanged, so callers can write `return tb_err_context(rc, ...)`. */
int tb_err_context(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

const char *tb_errmsg(void);      /* message of the last failure on this thread */
void tb_err_clear(void);
const char *tb_status_name(int code);
int tb_status_exit_code(int code); /* sysexits mapping used by the CLI */

/* Return early with the callee's status. */
#define TB_TRY(expr)                      \
    do {                                  \
        int tb_try_rc_ = (expr);          \
        if (tb_try_rc_ != TB_OK)          \
            return tb_try_rc_;            \
    } while (0)

/* Argument / invariant check that stays on in release builds. */
#define TB_CHECK(cond, code, ...)                 \
    do {                                          \
        if (!(cond))                              \
            return tb_fail((code), __VA_ARGS__);  \
    } while (0)

/* Internal invariant: reports file and line (never compiled out). */
#define TB_ASSERT(cond)                                                        \
    do {                                                                       \
        if (!(cond))                                                           \
            return tb_fail(TB_ERR_INTERNAL, "%s:%d: invariant failed: %s",     \
                           __FILE__, __LINE__, #cond);                         \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
