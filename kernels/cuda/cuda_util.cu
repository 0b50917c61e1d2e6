/* Error formatting and dtype mapping shared by the CUDA backend's files. */
#include <stdio.h>
#include <string.h>

#include "kernels/cuda/cuda_context.h"

int tb_cuda_call_name_len(const char *call)
{
    const char *paren = strchr(call, '(');
    return (int)(paren ? (size_t)(paren - call) : strlen(call));
}

const char *tb_cublas_status_string(cublasStatus_t st)
{
    /* The status name (CUBLAS_STATUS_...) is what users search for. */
    return cublasGetStatusName(st);
}

int tb_cuda_op_failed(int rc, const char *op, const char *n0, const tb_tensor *t0, const char *n1,
                      const tb_tensor *t1, const char *n2, const tb_tensor *t2, const char *n3,
                      const tb_tensor *t3)
{
    const char *names[4] = {n0, n1, n2, n3};
    const tb_tensor *ts[4] = {t0, t1, t2, t3};
    char shapes[512] = "";
    size_t off = 0;
    for (int i = 0; i < 4; i++) {
        if (!names[i] || !ts[i] || off >= sizeof shapes)
            continue;
        char buf[96];
        off += (size_t)snprintf(shapes + off, sizeof shapes - off, "%s%s %s", off ? ", " : "", names[i],
                                tb_shape_str(ts[i], buf, sizeof buf));
    }
    return tb_err_context(rc, "cuda %s (%s)", op, shapes);
}

int tb_cudnn_dtype(tb_dtype dt, cudnnDataType_t *out)
{
    switch (dt) {
    case TB_F32: *out = CUDNN_DATA_FLOAT; return TB_OK;
    case TB_F16: *out = CUDNN_DATA_HALF; return TB_OK;
    case TB_BF16: *out = CUDNN_DATA_BFLOAT16; return TB_OK;
    default: return tb_fail(TB_ERR_UNSUPPORTED, "cuDNN has no use for dtype %s here", tb_dtype_name(dt));
    }
}

int tb_cuda_dtype(tb_dtype dt, cudaDataType_t *out)
{
    switch (dt) {
    case TB_F32: *out = CUDA_R_32F; return TB_OK;
    case TB_F16: *out = CUDA_R_16F; return TB_OK;
    case TB_BF16: *out = CUDA_R_16BF; return TB_OK;
    default: return tb_fail(TB_ERR_UNSUPPORTED, "cuBLAS has no use for dtype %s here", tb_dtype_name(dt));
    }
}
