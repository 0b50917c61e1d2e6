/* Helpers shared by the op tests of tests/grad/ops: tensors with guard bytes,
 * seeded random fills, and a finite-difference gradient checker.
 *
 * Tensors made with tt_new are tracked; tt_check_guards() fails the test when
 * an op wrote outside a tensor, and tt_free_all() releases them. */
#ifndef TB_OPS_TESTUTIL_H
#define TB_OPS_TESTUTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/rng.h"
#include "kernels/tensor.h"

extern tb_backend *tt_be;

int tt_setup(void **state);    /* creates tt_be = tb_cpu_backend_create(&be, 2) */
int tt_teardown(void **state); /* frees every tensor and the backend */

tb_tensor tt_new(tb_dtype dt, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3);
#define tt_4d(dt, a, b, c, d) tt_new((dt), 4, (a), (b), (c), (d))
#define tt_2d(dt, a, b) tt_new((dt), 2, (a), (b), 1, 1)
#define tt_1d(dt, a) tt_new((dt), 1, (a), 1, 1, 1)
/* The per-step scalar tensors of the mix ops (kernels/ops.h): f32 {1} lam
 * and i32 {4} box {y0, y1, x0, x1}. */
tb_tensor tt_lam(float lam);
tb_tensor tt_box(int y0, int y1, int x0, int x1);
void tt_check_guards(void);
void tt_free_all(void);

double tt_get(const tb_tensor *t, int64_t i);
void tt_set(const tb_tensor *t, int64_t i, double v);
void tt_zero(const tb_tensor *t);
/* Uniform [lo, hi) values rounded to round_dt precision, stored in t's dtype. */
void tt_uniform(const tb_tensor *t, tb_rng *r, double lo, double hi, tb_dtype round_dt);
/* Distinct values (a shuffled grid with spacing `gap` centred on 0): no ties for max pooling. */
void tt_distinct(const tb_tensor *t, tb_rng *r, double gap);
/* v rounded to dt's precision (identity for f32). */
double tt_round(double v, tb_dtype dt);
void tt_set_values(const tb_tensor *t, const double *v);
/* Copies values (as f32) from src to dst, whatever their dtypes (same numel). */
void tt_copy_values(const tb_tensor *dst, const tb_tensor *src);
/* Fails unless |a - b| <= atol + rtol * |b| element-wise, with a readable message. */
void tt_assert_close(const char *what, const tb_tensor *a, const tb_tensor *b, double atol, double rtol);
void tt_assert_bitwise(const char *what, const tb_tensor *a, const tb_tensor *b);
double tt_max_abs(const tb_tensor *t);

/* ---- gradient checking ---------------------------------------------------
 * A case has inputs (with gradient tensors of the same shape), outputs with
 * upstream gradients g (dout), and callbacks that run the op forward and
 * backward. The scalar checked is L = sum_o sum_e out[o][e] * dout[o][e]. */
#define GC_MAX_IN 4
#define GC_MAX_OUT 2
#define GC_MAX_AUX 6

typedef struct gcase gcase;
struct gcase {
    char name[96];
    int n_in, n_out;
    tb_tensor in[GC_MAX_IN], din[GC_MAX_IN];
    tb_tensor out[GC_MAX_OUT], dout[GC_MAX_OUT];
    tb_tensor aux[GC_MAX_AUX]; /* saved state, labels, masks ... */
    tb_pool_params pool;
    float f[4];                 /* op scalars */
    int flag;                   /* op variant */
    int (*fwd)(gcase *c);
    int (*bwd)(gcase *c);      /* accumulates into din */
    double h, atol, rtol;       /* finite-difference step and tolerances */
};

/* Finite differences (central, in double) against the backward (every
 * element of inputs up to 400 elements, an evenly strided ~400 otherwise), plus:
 * a second backward doubles the gradients (accumulation), and a rerun of
 * forward + backward is bitwise identical (determinism). */
void gc_check(gcase *c);
/* Runs forward and backward once with zeroed input gradients. */
void gc_run(gcase *c);

#endif
