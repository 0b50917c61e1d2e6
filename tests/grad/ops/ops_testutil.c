#include "ops_testutil.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/error.h"

tb_backend *tt_be;

#define GUARD 64
#define GUARD_BYTE 0xa5
#define MAX_TENSORS 1024

static struct {
    unsigned char *base;
    size_t bytes;
} allocs[MAX_TENSORS];
static int n_allocs;

int tt_setup(void **state)
{
    (void)state;
    return tb_cpu_backend_create(&tt_be, 2) == TB_OK ? 0 : -1;
}

int tt_teardown(void **state)
{
    (void)state;
    tt_free_all();
    tb_backend_destroy(tt_be);
    tt_be = NULL;
    return 0;
}

tb_tensor tt_new(tb_dtype dt, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    int64_t shape[4] = {d0, d1, d2, d3};
    tb_tensor t = tb_tensor_make(NULL, dt, ndim, shape);
    size_t bytes = tb_nbytes(&t);
    assert_true(n_allocs < MAX_TENSORS);
    unsigned char *base = malloc(bytes + 2 * GUARD);
    assert_non_null(base);
    memset(base, GUARD_BYTE, GUARD);
    memset(base + GUARD, 0, bytes);
    memset(base + GUARD + bytes, GUARD_BYTE, GUARD);
    allocs[n_allocs].base = base;
    allocs[n_allocs++].bytes = bytes;
    t.data = base + GUARD;
    return t;
}

tb_tensor tt_lam(float lam)
{
    tb_tensor t = tt_1d(TB_F32, 1);
    ((float *)t.data)[0] = lam;
    return t;
}

tb_tensor tt_box(int y0, int y1, int x0, int x1)
{
    tb_tensor t = tt_1d(TB_I32, 4);
    int32_t *b = t.data;
    b[0] = y0, b[1] = y1, b[2] = x0, b[3] = x1;
    return t;
}

void tt_check_guards(void)
{
    for (int i = 0; i < n_allocs; i++) {
        const unsigned char *b = allocs[i].base;
        for (size_t j = 0; j < GUARD; j++) {
            if (b[j] != GUARD_BYTE || b[GUARD + allocs[i].bytes + j] != GUARD_BYTE)
                fail_msg("tensor %d (%zu bytes): guard bytes overwritten", i, allocs[i].bytes);
        }
    }
}

void tt_free_all(void)
{
    tt_check_guards();
    for (int i = 0; i < n_allocs; i++)
        free(allocs[i].base);
    n_allocs = 0;
}

double tt_get(const tb_tensor *t, int64_t i) { return tb_load_f32(t->data, t->dtype, i); }

void tt_set(const tb_tensor *t, int64_t i, double v) { tb_store_f32(t->data, t->dtype, i, (float)v); }

void tt_zero(const tb_tensor *t) { memset(t->data, 0, tb_nbytes(t)); }

static float round_to(float v, tb_dtype dt)
{
    switch (dt) {
    case TB_F16: return tb_f16_to_f32(tb_f32_to_f16(v));
    case TB_BF16: return tb_bf16_to_f32(tb_f32_to_bf16(v));
    default: return v;
    }
}

double tt_round(double v, tb_dtype dt) { return round_to((float)v, dt); }

void tt_uniform(const tb_tensor *t, tb_rng *r, double lo, double hi, tb_dtype round_dt)
{
    for (int64_t i = 0; i < tb_numel(t); i++)
        tt_set(t, i, round_to((float)(lo + (hi - lo) * tb_rng_uniform(r)), round_dt));
}

void tt_distinct(const tb_tensor *t, tb_rng *r, double gap)
{
    int64_t n = tb_numel(t);
    int32_t *perm = malloc(sizeof(int32_t) * (size_t)n);
    assert_non_null(perm);
    for (int64_t i = 0; i < n; i++)
        perm[i] = (int32_t)i;
    tb_rng_shuffle_i32(r, perm, n);
    for (int64_t i = 0; i < n; i++)
        tt_set(t, i, ((double)perm[i] - (double)n / 2) * gap);
    free(perm);
}

void tt_set_values(const tb_tensor *t, const double *v)
{
    for (int64_t i = 0; i < tb_numel(t); i++)
        tt_set(t, i, v[i]);
}

void tt_copy_values(const tb_tensor *dst, const tb_tensor *src)
{
    assert_int_equal(tb_numel(dst), tb_numel(src));
    for (int64_t i = 0; i < tb_numel(src); i++)
        tt_set(dst, i, tt_get(src, i));
}

double tt_max_abs(const tb_tensor *t)
{
    double m = 0.0;
    for (int64_t i = 0; i < tb_numel(t); i++)
        m = fmax(m, fabs(tt_get(t, i)));
    return m;
}

void tt_assert_close(const char *what, const tb_tensor *a, const tb_tensor *b, double atol, double rtol)
{
    assert_int_equal(tb_numel(a), tb_numel(b));
    for (int64_t i = 0; i < tb_numel(a); i++) {
        double x = tt_get(a, i), y = tt_get(b, i);
        if (!isfinite(x) || !(fabs(x - y) <= atol + rtol * fabs(y)))
            fail_msg("%s: element %lld is %.9g, expected %.9g (atol %g, rtol %g)", what, (long long)i, x, y, atol,
                     rtol);
    }
}

void tt_assert_bitwise(const char *what, const tb_tensor *a, const tb_tensor *b)
{
    assert_int_equal(tb_nbytes(a), tb_nbytes(b));
    if (memcmp(a->data, b->data, tb_nbytes(a)) != 0)
        fail_msg("%s: not bitwise identical", what);
}

/* ---------------------------------------------------------------- gcheck */

static double gc_loss(gcase *c)
{
    double l = 0.0;
    for (int o = 0; o < c->n_out; o++)
        for (int64_t e = 0; e < tb_numel(&c->out[o]); e++)
            l += tt_get(&c->out[o], e) * tt_get(&c->dout[o], e);
    return l;
}

static void must(gcase *c, int rc, const char *stage)
{
    if (rc != TB_OK)
        fail_msg("%s: %s failed: %s: %s", c->name, stage, tb_status_name(rc), tb_errmsg());
}

void gc_run(gcase *c)
{
    must(c, c->fwd(c), "forward");
    for (int i = 0; i < c->n_in; i++)
        tt_zero(&c->din[i]);
    must(c, c->bwd(c), "backward");
    tt_check_guards();
}

/* A float copy of t in fresh memory. */
static tb_tensor snapshot(const tb_tensor *t)
{
    tb_tensor s = tt_new(t->dtype, t->ndim, t->shape[0], t->ndim > 1 ? t->shape[1] : 1,
                         t->ndim > 2 ? t->shape[2] : 1, t->ndim > 3 ? t->shape[3] : 1);
    memcpy(s.data, t->data, tb_nbytes(t));
    return s;
}

static void check_finite_differences(gcase *c, const tb_tensor *grads)
{
    for (int i = 0; i < c->n_in; i++) {
        tb_tensor *x = &c->in[i];
        /* every element of small inputs; about 400 spread over the big ones */
        int64_t step = tb_numel(x) > 400 ? tb_numel(x) / 400 + 1 : 1;
        for (int64_t e = 0; e < tb_numel(x); e += step) {
            double v = tt_get(x, e);
            tt_set(x, e, v + c->h);
            double xp = tt_get(x, e);
            must(c, c->fwd(c), "forward (+h)");
            double lp = gc_loss(c);
            tt_set(x, e, v - c->h);
            double xm = tt_get(x, e);
            must(c, c->fwd(c), "forward (-h)");
            double lm = gc_loss(c);
            tt_set(x, e, v);
            double num = (lp - lm) / (xp - xm); /* the step actually taken after f32 rounding */
            double ana = tt_get(&grads[i], e);
            if (!(fabs(num - ana) <= c->atol + c->rtol * fmax(fabs(num), fabs(ana))))
                fail_msg("%s: d/d in[%d][%lld]: backward %.7g, finite differences %.7g", c->name, i, (long long)e,
                         ana, num);
        }
    }
}

void gc_check(gcase *c)
{
    tb_tensor grads[GC_MAX_IN], outs[GC_MAX_OUT];
    gc_run(c);
    for (int o = 0; o < c->n_out; o++)
        outs[o] = snapshot(&c->out[o]);
    for (int i = 0; i < c->n_in; i++)
        grads[i] = snapshot(&c->din[i]);

    /* accumulation: a second backward adds the same gradient again */
    must(c, c->bwd(c), "second backward");
    for (int i = 0; i < c->n_in; i++)
        for (int64_t e = 0; e < tb_numel(&grads[i]); e++) {
            double once = tt_get(&grads[i], e), twice = tt_get(&c->din[i], e);
            if (!(fabs(twice - 2.0 * once) <= 1e-5 * fabs(once) + 1e-7))
                fail_msg("%s: gradient %d element %lld does not accumulate: %.9g after one backward, %.9g after two",
                         c->name, i, (long long)e, once, twice);
        }

    /* determinism: forward + backward again, bitwise equal */
    gc_run(c);
    for (int o = 0; o < c->n_out; o++)
        tt_assert_bitwise(c->name, &c->out[o], &outs[o]);
    for (int i = 0; i < c->n_in; i++)
        tt_assert_bitwise(c->name, &c->din[i], &grads[i]);

    check_finite_differences(c, grads);
    tt_check_guards();
}
