/* Checked front-ends of the segmentation ops (kernels/ops.h, "segmentation").
 *
 * Bilinear resize maps an NHWC tensor to another of the same batch, channels
 * and dtype; only the spatial size may differ (up- or down-sampling, any
 * factor). The checks and messages are those of every op (kernels/ops_check.h).
 */
#include "kernels/backend.h"
#include "kernels/error.h"
#include "kernels/ops.h"
#include "kernels/ops_check.h"

/* src (x, or dy in the backward) and dst (y, or dx): 4-D NHWC float tensors
 * of one dtype that differ at most in height and width, and do not overlap
 * in memory. */
static int resize_shapes(const vcall *v, const char *dn, const tb_tensor *dst, const char *sn,
                         const tb_tensor *src)
{
    TB_TRY(need_float(v, sn, src));
    TB_TRY(need_ndim(v, sn, src, 4, "NHWC"));
    TB_TRY(need(v, dn, dst));
    TB_TRY(need_ndim(v, dn, dst, 4, "NHWC"));
    if (dst->shape[0] != src->shape[0] || dst->shape[3] != src->shape[3])
        return vc_fail(v, "%s %s and %s %s must have the same batch and channels (only height and width resize)",
                       sn, SHP(src), dn, SHP(dst));
    if (dst->dtype != src->dtype)
        return vc_fail(v, "%s %s and %s %s differ in dtype", sn, SHP(src), dn, SHP(dst));
    return no_overlap(v, dn, dst, sn, src);
}

int tb_resize_bilinear_forward(tb_backend *be, tb_tensor *y, const tb_tensor *x)
{
    vcall v = vc_make(tb_op_name(TB_OP_RESIZE_BILINEAR_FORWARD));
    vc_add(&v, "y", y), vc_add(&v, "x", x);
    TB_TRY(resize_shapes(&v, "y", y, "x", x));
    DISPATCH(TB_OP_RESIZE_BILINEAR_FORWARD, resize_bilinear_forward, x->dtype, y, x);
}

int tb_resize_bilinear_backward(tb_backend *be, tb_tensor *dx, const tb_tensor *dy)
{
    vcall v = vc_make(tb_op_name(TB_OP_RESIZE_BILINEAR_BACKWARD));
    vc_add(&v, "dx", dx), vc_add(&v, "dy", dy);
    TB_TRY(resize_shapes(&v, "dx", dx, "dy", dy));
    DISPATCH(TB_OP_RESIZE_BILINEAR_BACKWARD, resize_bilinear_backward, dy->dtype, dx, dy);
}
