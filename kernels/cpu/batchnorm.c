/* Batch normalisation over the last (channel) axis of an NHWC or {n,c} tensor.
 *
 * x is viewed as rows x c (rows = n*h*w). Channels are processed in blocks of
 * BN_CB so that per-channel state lives on the stack (ops never allocate).
 * Per-channel sums are reduced in double over a fixed number of row chunks
 * (tb_cpu_chunk) combined in chunk order: accurate for large n*h*w and
 * bitwise reproducible for any thread count.
 *
 * Forward (training), with m = rows:
 *   mean = sum x / m, var = sum x^2 / m - mean^2 (biased), invstd = 1/sqrt(var+eps)
 *   y = (x - mean) * (gamma * invstd) + beta
 *   running_mean = (1-momentum) running_mean + momentum mean
 *   running_var  = (1-momentum) running_var  + momentum var * m/(m-1)
 * Backward, with xc = x - mean, sdy = sum dy, sdyx = sum dy*xc:
 *   dbeta += sdy, dgamma += sdyx * invstd
 *   dx += gamma*invstd * (dy - sdy/m - xc * invstd^2 * sdyx/m)   (dx may be NULL)
 * Backward of the evaluation forward (frozen BN: mean and variance are
 * constants), with invstd = 1/sqrt(running_var + eps), xc = x - running_mean:
 *   dbeta += sdy, dgamma += sdyx * invstd, dx += gamma*invstd * dy   (each optional)
 *
 * The fused BN + add + ReLU (batchnorm_relu.c) runs through the same loops
 * (tb_cpu_bn_*): the forward adds z and clamps in the row that writes y, the
 * backward gates dy by y > 0 where it loads dy (and adds the gated dy to dz)
 * - in f32 bit for bit what the three separate ops compute, in one pass
 * fewer over memory for each op it replaces.
 */
#include <math.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"
#include "kernels/error.h"

#define BN_CB 128

/* out[j] = a[j] where y[j] > 0, else 0: the ReLU's gradient as its backward
 * writes it (NaN in y closes the gate). Returns out, or a itself without y. */
static const float *gate_row(float *out, const float *a, const tb_tensor *y, float *ty, int64_t off, int64_t cb)
{
    if (!y)
        return a;
    const float *ry = tb_cpu_load_row(ty, y, off, cb);
    /* a is loaded unconditionally so that the loop is a vectorisable select */
    for (int64_t j = 0; j < cb; j++) {
        float v = a[j];
        out[j] = ry[j] > 0.0f ? v : 0.0f;
    }
    return out;
}

/* Rows [lo, hi) of bn_sums' chunk into q1, q2 (see below). */
TB_CPU_VECTOR_CLONES
static void bn_sums_rows(double *q1, double *q2, const tb_tensor *a, const tb_tensor *gate_y, const tb_tensor *b,
                         const float *mean, int64_t lo, int64_t hi, int64_t c, int64_t j0, int64_t cb)
{
    float ta[BN_CB], tbuf[BN_CB], ty[BN_CB], tg[BN_CB];
    for (int64_t j = 0; j < cb; j++)
        q1[j] = q2[j] = 0.0;
    for (int64_t r = lo; r < hi; r++) {
        const float *ra = gate_row(tg, tb_cpu_load_row(ta, a, r * c + j0, cb), gate_y, ty, r * c + j0, cb);
        if (!b) {
            for (int64_t j = 0; j < cb; j++) {
                q1[j] += ra[j];
                q2[j] += (double)ra[j] * ra[j];
            }
        } else {
            const float *rb = tb_cpu_load_row(tbuf, b, r * c + j0, cb);
            for (int64_t j = 0; j < cb; j++) {
                q1[j] += ra[j];
                q2[j] += (double)ra[j] * (rb[j] - mean[j]);
            }
        }
    }
}

/* s1[j] = sum_r a[r,j0+j]; s2[j] = sum_r a^2 (b == NULL) or sum_r a*(b - mean[j]),
 * with a gated by gate_y > 0 when gate_y is given (gate_row).
 * Partial sums per fixed row chunk, combined in chunk order. */
static void bn_sums(const tb_backend *be, const tb_tensor *a, const tb_tensor *gate_y, const tb_tensor *b,
                    const float *mean, int64_t rows, int64_t c, int64_t j0, int64_t cb, double *s1, double *s2)
{
    double p1[TB_CPU_CHUNKS][BN_CB], p2[TB_CPU_CHUNKS][BN_CB];
    int64_t chunks = tb_cpu_chunk_count(rows);
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t k = 0; k < chunks; k++) {
        int64_t lo, hi;
        tb_cpu_chunk(rows, chunks, k, &lo, &hi);
        bn_sums_rows(p1[k], p2[k], a, gate_y, b, mean, lo, hi, c, j0, cb);
    }
    for (int64_t j = 0; j < cb; j++)
        s1[j] = s2[j] = 0.0;
    for (int64_t k = 0; k < chunks; k++)
        for (int64_t j = 0; j < cb; j++) {
            s1[j] += p1[k][j];
            s2[j] += p2[k][j];
        }
}

/* Rows [lo, hi) of bn_apply. */
TB_CPU_AVX2_CLONES
static void bn_apply_rows(const tb_tensor *y, const tb_tensor *x, const float *mean, const float *scale,
                          const float *shift, tb_cpu_bn_epilogue ep, int64_t lo, int64_t hi, int64_t c, int64_t j0,
                          int64_t cb)
{
    float tx[BN_CB], tz[BN_CB], out[BN_CB];
    for (int64_t r = lo; r < hi; r++) {
        const float *rx = tb_cpu_load_row(tx, x, r * c + j0, cb);
        for (int64_t j = 0; j < cb; j++)
            out[j] = (rx[j] - mean[j]) * scale[j] + shift[j];
        if (ep.z) {
            const float *rz = tb_cpu_load_row(tz, ep.z, r * c + j0, cb);
            for (int64_t j = 0; j < cb; j++)
                out[j] = out[j] + rz[j];
        }
        if (ep.relu)
            for (int64_t j = 0; j < cb; j++)
                out[j] = out[j] < 0.0f ? 0.0f : out[j];
        tb_cpu_store_row(y, r * c + j0, out, cb);
    }
}

/* y[r, j0+j] = (x - mean[j]) * scale[j] + shift[j] for every row, then
 * + z and clamped at 0 as the epilogue asks (NaN passes the clamp, as ReLU's). */
static void bn_apply(const tb_backend *be, const tb_tensor *y, const tb_tensor *x, const float *mean,
                     const float *scale, const float *shift, tb_cpu_bn_epilogue ep, int64_t rows, int64_t c,
                     int64_t j0, int64_t cb)
{
    int64_t chunks = tb_cpu_chunk_count(rows);
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t k = 0; k < chunks; k++) {
        int64_t lo, hi;
        tb_cpu_chunk(rows, chunks, k, &lo, &hi);
        bn_apply_rows(y, x, mean, scale, shift, ep, lo, hi, c, j0, cb);
    }
}

int tb_cpu_bn_forward_train(tb_backend *be, tb_tensor *y, tb_tensor *save_mean, tb_tensor *save_invstd,
                            tb_tensor *running_mean, tb_tensor *running_var, const tb_tensor *x,
                            const tb_tensor *gamma, const tb_tensor *beta, float momentum, float eps,
                            tb_cpu_bn_epilogue ep)
{
    int64_t c = x->shape[x->ndim - 1];
    int64_t rows = tb_numel(x) / c;
    const float *g = gamma->data, *bt = beta->data;
    float *sm = save_mean->data, *si = save_invstd->data;
    float *rm = running_mean ? running_mean->data : NULL;
    float *rv = running_var ? running_var->data : NULL;
    for (int64_t j0 = 0; j0 < c; j0 += BN_CB) {
        int64_t cb = tb_cpu_min64(BN_CB, c - j0);
        double s1[BN_CB], s2[BN_CB];
        float mean[BN_CB], scale[BN_CB];
        bn_sums(be, x, NULL, NULL, NULL, rows, c, j0, cb, s1, s2);
        for (int64_t j = 0; j < cb; j++) {
            double mu = s1[j] / (double)rows;
            double var = s2[j] / (double)rows - mu * mu;
            if (var < 0.0) /* rounding when var << mean^2 */
                var = 0.0;
            double invstd = 1.0 / sqrt(var + (double)eps);
            mean[j] = (float)mu;
            scale[j] = (float)(g[j0 + j] * invstd);
            sm[j0 + j] = (float)mu;
            si[j0 + j] = (float)invstd;
            if (rm) {
                double unbiased = var * (double)rows / (double)(rows - 1);
                rm[j0 + j] = (float)((1.0 - momentum) * rm[j0 + j] + momentum * mu);
                rv[j0 + j] = (float)((1.0 - momentum) * rv[j0 + j] + momentum * unbiased);
            }
        }
        bn_apply(be, y, x, mean, scale, bt + j0, ep, rows, c, j0, cb);
    }
    return TB_OK;
}

int tb_cpu_batchnorm_forward_train(tb_backend *be, tb_tensor *y, tb_tensor *save_mean, tb_tensor *save_invstd,
                                   tb_tensor *running_mean, tb_tensor *running_var, const tb_tensor *x,
                                   const tb_tensor *gamma, const tb_tensor *beta, float momentum, float eps)
{
    tb_cpu_bn_epilogue none = {NULL, false};
    return tb_cpu_bn_forward_train(be, y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta,
                                   momentum, eps, none);
}

int tb_cpu_bn_forward_eval(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *gamma,
                           const tb_tensor *beta, const tb_tensor *running_mean, const tb_tensor *running_var,
                           float eps, tb_cpu_bn_epilogue ep)
{
    int64_t c = x->shape[x->ndim - 1];
    int64_t rows = tb_numel(x) / c;
    const float *g = gamma->data, *bt = beta->data, *rm = running_mean->data, *rv = running_var->data;
    for (int64_t j0 = 0; j0 < c; j0 += BN_CB) {
        int64_t cb = tb_cpu_min64(BN_CB, c - j0);
        float scale[BN_CB];
        for (int64_t j = 0; j < cb; j++)
            scale[j] = (float)(g[j0 + j] / sqrt((double)rv[j0 + j] + (double)eps));
        bn_apply(be, y, x, rm + j0, scale, bt + j0, ep, rows, c, j0, cb);
    }
    return TB_OK;
}

int tb_cpu_batchnorm_forward_eval(tb_backend *be, tb_tensor *y, const tb_tensor *x, const tb_tensor *gamma,
                                  const tb_tensor *beta, const tb_tensor *running_mean,
                                  const tb_tensor *running_var, float eps)
{
    tb_cpu_bn_epilogue none = {NULL, false};
    return tb_cpu_bn_forward_eval(be, y, x, gamma, beta, running_mean, running_var, eps, none);
}

/* dz[r, j0 + j] (+)= g, the gated dy of row r: the shortcut's gradient. */
static void bn_to_dz(const tb_tensor *dz, int64_t off, const float *g, int64_t cb, bool dz_write)
{
    if (dz_write)
        tb_cpu_store_row(dz, off, g, cb);
    else
        tb_cpu_accum_row(dz, off, g, cb);
}

/* bn_to_dz for every row. */
static void bn_gated_to_dz(const tb_backend *be, tb_tensor *dz, const tb_tensor *dy, const tb_tensor *y,
                           int64_t rows, int64_t c, int64_t j0, int64_t cb, bool dz_write)
{
#pragma omp parallel for schedule(static) num_threads(be->threads)
    for (int64_t r = 0; r < rows; r++) {
        float tdy[BN_CB], ty[BN_CB], tg[BN_CB];
        const float *g = gate_row(tg, tb_cpu_load_row(tdy, dy, r * c + j0, cb), y, ty, r * c + j0, cb);
        bn_to_dz(dz, r * c + j0, g, cb, dz_write);
    }
}

/* dx = k1*dy - k2 - k3*(x - mean) per channel, from bn_sums' sums. */
typedef struct bn_dx_coeffs {
    const float *k1, *k2, *k3, *mean;
} bn_dx_coeffs;

/* Rows [lo, hi): dx += the BN input gradient, dz gets the gated dy. */
TB_CPU_AVX2_CLONES
static void bn_dx_rows(const tb_tensor *dx, const tb_tensor *dz, const tb_tensor *dy, const tb_tensor *gate_y,
                       const tb_tensor *x, const bn_dx_coeffs *k, bool dz_write, int64_t lo, int64_t hi, int64_t c,
                       int64_t j0, int64_t cb)
{
    float tx[BN_CB], tdy[BN_CB], ty[BN_CB], tg[BN_CB], add[BN_CB];
    for (int64_t r = lo; r < hi; r++) {
        const float *rx = tb_cpu_load_row(tx, x, r * c + j0, cb);
        const float *rdy = gate_row(tg, tb_cpu_load_row(tdy, dy, r * c + j0, cb), gate_y, ty, r * c + j0, cb);
        for (int64_t j = 0; j < cb; j++)
            add[j] = k->k1[j] * rdy[j] - k->k2[j] - k->k3[j] * (rx[j] - k->mean[j]);
        tb_cpu_accum_row(dx, r * c + j0, add, cb);
        if (dz)
            bn_to_dz(dz, r * c + j0, rdy, cb, dz_write);
    }
}

int tb_cpu_bn_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dz, tb_tensor *dgamma, tb_tensor *dbeta,
                       const tb_tensor *dy, const tb_tensor *gate_y, const tb_tensor *x, const tb_tensor *gamma,
                       const tb_tensor *save_mean, const tb_tensor *save_invstd, bool dz_write)
{
    int64_t c = x->shape[x->ndim - 1];
    int64_t rows = tb_numel(x) / c;
    const float *g = gamma->data, *sm = save_mean->data, *si = save_invstd->data;
    float *dg = dgamma ? dgamma->data : NULL, *db = dbeta ? dbeta->data : NULL;
    for (int64_t j0 = 0; j0 < c; j0 += BN_CB) {
        int64_t cb = tb_cpu_min64(BN_CB, c - j0);
        double sdy[BN_CB], sdyx[BN_CB];
        float k1[BN_CB], k2[BN_CB], k3[BN_CB];
        const float *mean = sm + j0;
        bn_sums(be, dy, gate_y, x, mean, rows, c, j0, cb, sdy, sdyx);
        for (int64_t j = 0; j < cb; j++) {
            double invstd = si[j0 + j];
            double gi = g[j0 + j] * invstd;
            k1[j] = (float)gi;
            k2[j] = (float)(gi * sdy[j] / (double)rows);
            k3[j] = (float)(gi * invstd * invstd * sdyx[j] / (double)rows);
            if (db)
                db[j0 + j] += (float)sdy[j];
            if (dg)
                dg[j0 + j] += (float)(sdyx[j] * invstd);
        }
        if (!dx) { /* input-side BN: only the parameter gradients (and dz) are wanted */
            if (dz)
                bn_gated_to_dz(be, dz, dy, gate_y, rows, c, j0, cb, dz_write);
            continue;
        }
        /* dz rides along the pass that reads the gated dy for dx */
        const bn_dx_coeffs k = {k1, k2, k3, mean};
        int64_t chunks = tb_cpu_chunk_count(rows);
#pragma omp parallel for schedule(static) num_threads(be->threads)
        for (int64_t q = 0; q < chunks; q++) {
            int64_t lo, hi;
            tb_cpu_chunk(rows, chunks, q, &lo, &hi);
            bn_dx_rows(dx, dz, dy, gate_y, x, &k, dz_write, lo, hi, c, j0, cb);
        }
    }
    return TB_OK;
}

int tb_cpu_batchnorm_backward(tb_backend *be, tb_tensor *dx, tb_tensor *dgamma, tb_tensor *dbeta,
                              const tb_tensor *dy, const tb_tensor *x, const tb_tensor *gamma,
                              const tb_tensor *save_mean, const tb_tensor *save_invstd)
{
    return tb_cpu_bn_backward(be, dx, NULL, dgamma, dbeta, dy, NULL, x, gamma, save_mean, save_invstd, false);
}

int tb_cpu_batchnorm_backward_eval(tb_backend *be, tb_tensor *dx, tb_tensor *dgamma, tb_tensor *dbeta,
                                   const tb_tensor *dy, const tb_tensor *x, const tb_tensor *gamma,
                                   const tb_tensor *running_mean, const tb_tensor *running_var, float eps)
{
    int64_t c = x->shape[x->ndim - 1];
    int64_t rows = tb_numel(x) / c;
    const float *g = gamma->data, *rm = running_mean->data, *rv = running_var->data;
    float *dg = dgamma ? dgamma->data : NULL, *db = dbeta ? dbeta->data : NULL;
    for (int64_t j0 = 0; j0 < c; j0 += BN_CB) {
        int64_t cb = tb_cpu_min64(BN_CB, c - j0);
        float k1[BN_CB];
        double invstd[BN_CB];
        for (int64_t j = 0; j < cb; j++) {
            invstd[j] = 1.0 / sqrt((double)rv[j0 + j] + (double)eps);
            k1[j] = (float)(g[j0 + j] * invstd[j]);
        }
        if (dg || db) { /* the sums are only needed for the parameter gradients */
            double sdy[BN_CB], sdyx[BN_CB];
            bn_sums(be, dy, NULL, x, rm + j0, rows, c, j0, cb, sdy, sdyx);
            for (int64_t j = 0; j < cb; j++) {
                if (db)
                    db[j0 + j] += (float)sdy[j];
                if (dg)
                    dg[j0 + j] += (float)(sdyx[j] * invstd[j]);
            }
        }
        if (!dx)
            continue;
#pragma omp parallel for schedule(static) num_threads(be->threads)
        for (int64_t r = 0; r < rows; r++) {
            float tdy[BN_CB], add[BN_CB];
            const float *rdy = tb_cpu_load_row(tdy, dy, r * c + j0, cb);
            for (int64_t j = 0; j < cb; j++)
                add[j] = k1[j] * rdy[j];
            tb_cpu_accum_row(dx, r * c + j0, add, cb);
        }
    }
    return TB_OK;
}
