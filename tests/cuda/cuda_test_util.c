#include "cuda_test_util.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/error.h"

void tctx_init(tctx *t, tb_backend *ref, tb_backend *dut, uint64_t seed)
{
    memset(t, 0, sizeof *t);
    t->be[0] = ref;
    t->be[1] = dut;
    tb_rng_seed(&t->rng, seed, 0);
    t->verbose = getenv("TB_TEST_VERBOSE") != NULL;
}

void tctx_free(tctx *t)
{
    for (int i = 0; i < t->npairs; i++)
        for (int s = 0; s < 2; s++)
            tb_free(t->be[s], t->pairs[i].base[s]);
    t->npairs = 0;
}

void tctx_case(tctx *t, const char *fmt, ...)
{
    tctx_free(t);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    if (t->verbose)
        printf("case %s\n", t->name);
}

void tctx_fail(tctx *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: ", t->name);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    t->failures++;
}

bool tctx_rc(tctx *t, int side, const char *call, int rc)
{
    if (rc == TB_OK)
        return true;
    tctx_fail(t, "%s on %s: %s (%s)", call, t->be[side]->name, tb_errmsg(), tb_status_name(rc));
    return false;
}

double tp_tol(tb_dtype dt, bool reduction)
{
    switch (dt) {
    case TB_F32: return reduction ? 1e-4 : 1e-5;
    case TB_F16: return 1e-2;
    case TB_BF16: return reduction ? 2e-2 : 1e-2;
    default: return 0.0;
    }
}

/* Host bytes of one tensor (guards included) with fresh random contents. */
static unsigned char *host_image(tctx *t, tb_dtype dt, int64_t count, const int64_t *shape, int ndim,
                                 tp_fill fill, float lo, float hi, size_t bytes)
{
    unsigned char *h = malloc(bytes + 2 * TP_GUARD);
    if (!h)
        return NULL;
    memset(h, TP_GUARD_BYTE, TP_GUARD);
    memset(h + TP_GUARD + bytes, TP_GUARD_BYTE, TP_GUARD);
    unsigned char *d = h + TP_GUARD;
    if (fill == TP_ZERO) {
        memset(d, 0, bytes);
        return h;
    }
    if (dt == TB_I32) {
        for (int64_t i = 0; i < count; i++)
            ((int32_t *)d)[i] = (int32_t)tb_rng_below(&t->rng, (uint64_t)(hi > 1 ? hi : 1));
        return h;
    }
    if (dt == TB_U8) {
        for (int64_t i = 0; i < count; i++)
            d[i] = fill == TP_MASK ? (uint8_t)tb_rng_below(&t->rng, 2) : (uint8_t)tb_rng_below(&t->rng, 256);
        return h;
    }
    float *f = malloc(sizeof(float) * (size_t)(count ? count : 1));
    if (!f) {
        free(h);
        return NULL;
    }
    for (int64_t i = 0; i < count; i++)
        f[i] = fill == TP_PROB_ROWS ? tb_rng_uniform_f(&t->rng, 0.05f, 1.0f) : tb_rng_uniform_f(&t->rng, lo, hi);
    if (fill == TP_PROB_ROWS && ndim == 2) {
        int64_t k = shape[1];
        for (int64_t r = 0; r < shape[0]; r++) {
            double s = 0.0;
            for (int64_t j = 0; j < k; j++)
                s += f[r * k + j];
            for (int64_t j = 0; j < k; j++)
                f[r * k + j] = (float)(f[r * k + j] / s);
        }
    }
    tb_convert_from_f32(d, dt, f, count);
    free(f);
    return h;
}

tpair *tp_new(tctx *t, tb_dtype dt, int ndim, const int64_t *shape, tp_fill fill, float lo, float hi)
{
    if (t->npairs >= TP_MAX_PAIRS) {
        tctx_fail(t, "more than %d tensors in one case", TP_MAX_PAIRS);
        return NULL;
    }
    tpair *p = &t->pairs[t->npairs];
    memset(p, 0, sizeof *p);
    tb_tensor desc = tb_tensor_make(NULL, dt, ndim, shape);
    p->bytes = tb_nbytes(&desc);
    unsigned char *h = host_image(t, dt, tb_numel(&desc), shape, ndim, fill, lo, hi, p->bytes);
    if (!h) {
        tctx_fail(t, "out of host memory");
        return NULL;
    }
    bool ok = true;
    for (int s = 0; s < 2 && ok; s++) {
        ok = tctx_rc(t, s, "tb_alloc", tb_alloc(t->be[s], &p->base[s], p->bytes + 2 * TP_GUARD));
        if (ok)
            ok = tctx_rc(t, s, "upload", t->be[s]->iface.upload(t->be[s], p->base[s], h, p->bytes + 2 * TP_GUARD));
        p->t[s] = desc;
        p->t[s].data = p->base[s] ? (char *)p->base[s] + TP_GUARD : NULL;
    }
    free(h);
    t->npairs++; /* freed with the case even when half made */
    return ok ? p : NULL;
}

tpair *tp_4d(tctx *t, tb_dtype dt, int64_t n, int64_t h, int64_t w, int64_t c, tp_fill fill, float lo, float hi)
{
    int64_t s[4] = {n, h, w, c};
    return tp_new(t, dt, 4, s, fill, lo, hi);
}

tpair *tp_2d(tctx *t, tb_dtype dt, int64_t n, int64_t c, tp_fill fill, float lo, float hi)
{
    int64_t s[2] = {n, c};
    return tp_new(t, dt, 2, s, fill, lo, hi);
}

tpair *tp_1d(tctx *t, tb_dtype dt, int64_t c, tp_fill fill, float lo, float hi)
{
    int64_t s[1] = {c};
    return tp_new(t, dt, 1, s, fill, lo, hi);
}

bool tp_set(tctx *t, tpair *p, const float *values)
{
    int64_t count = tb_numel(&p->t[0]);
    void *h = malloc(p->bytes ? p->bytes : 1);
    if (!h) {
        tctx_fail(t, "out of host memory");
        return false;
    }
    tb_convert_from_f32(h, p->t[0].dtype, values, count);
    bool ok = true;
    for (int s = 0; s < 2 && ok; s++)
        ok = tctx_rc(t, s, "upload", t->be[s]->iface.upload(t->be[s], p->t[s].data, h, p->bytes));
    free(h);
    return ok;
}

tpair *tp_values(tctx *t, tb_dtype dt, int64_t count, const float *values)
{
    tpair *p = tp_1d(t, dt, count, TP_ZERO, 0, 0);
    return p && tp_set(t, p, values) ? p : NULL;
}

static bool guards_intact(const unsigned char *h, size_t bytes)
{
    for (size_t i = 0; i < TP_GUARD; i++)
        if (h[i] != TP_GUARD_BYTE || h[TP_GUARD + bytes + i] != TP_GUARD_BYTE)
            return false;
    return true;
}

/* Elementwise comparison of two host copies converted to f32. */
static bool compare_values(tctx *t, const char *what, const tpair *p, const float *ref, const float *got,
                           int64_t count, double rtol)
{
    double scale = 0.0;
    for (int64_t i = 0; i < count; i++)
        scale += fabs((double)ref[i]);
    scale = count ? scale / (double)count : 0.0;
    double worst = 0.0;
    int64_t worst_i = -1, bad = 0;
    for (int64_t i = 0; i < count; i++) {
        if (!isfinite(ref[i])) {
            tctx_fail(t, "%s: the reference is non-finite at %lld (%g)", what, (long long)i, (double)ref[i]);
            return false;
        }
        if (!isfinite(got[i])) {
            tctx_fail(t, "%s: non-finite at %lld (%g, reference %g)", what, (long long)i, (double)got[i],
                   (double)ref[i]);
            return false;
        }
        double err = fabs((double)got[i] - (double)ref[i]);
        double tol = rtol * (fabs((double)ref[i]) + scale);
        double ratio = err == 0.0 ? 0.0 : (tol > 0.0 ? err / tol : INFINITY);
        if (ratio > 1.0)
            bad++;
        if (ratio > worst) {
            worst = ratio;
            worst_i = i;
        }
    }
    char shape[96];
    if (bad) {
        tctx_fail(t,
               "%s %s: %lld of %lld elements beyond rtol %g; worst at %lld: %.9g vs reference %.9g "
               "(%.3gx the tolerance)",
               what, tb_shape_str(&p->t[0], shape, sizeof shape), (long long)bad, (long long)count, rtol,
               (long long)worst_i, (double)got[worst_i], (double)ref[worst_i], worst);
        return false;
    }
    if (t->verbose)
        printf("  ok %s %s: worst %.3g of the tolerance %g\n", what, tb_shape_str(&p->t[0], shape, sizeof shape),
               worst, rtol);
    return true;
}

/* Both sides' bytes with their guards into h[0], h[1] (malloc'ed, freed by
 * the caller also on failure); false for a pair never created, a failed
 * download or a guard overwritten. */
static bool download_pair(tctx *t, const char *what, const tpair *p, unsigned char *h[2])
{
    h[0] = h[1] = NULL;
    if (!p) {
        tctx_fail(t, "%s: tensor was not created", what);
        return false;
    }
    size_t total = p->bytes + 2 * TP_GUARD;
    h[0] = malloc(total);
    h[1] = malloc(total);
    bool ok = h[0] && h[1];
    for (int s = 0; s < 2 && ok; s++) {
        ok = tctx_rc(t, s, "download", t->be[s]->iface.download(t->be[s], h[s], p->base[s], total));
        if (ok && !guards_intact(h[s], p->bytes)) {
            tctx_fail(t, "%s: guard bytes around the output overwritten on %s", what, t->be[s]->name);
            ok = false;
        }
    }
    return ok;
}

bool tp_check_special(tctx *t, const char *what, const tpair *p)
{
    unsigned char *h[2];
    bool ok = download_pair(t, what, p, h);
    int64_t count = ok ? tb_numel(&p->t[0]) : 0;
    tb_dtype dt = ok ? p->t[0].dtype : TB_F32;
    for (int64_t i = 0; ok && i < count; i++) {
        float v[2];
        for (int s = 0; s < 2; s++)
            tb_convert_to_f32(&v[s], h[s] + TP_GUARD + (size_t)i * tb_dtype_size(dt), dt, 1);
        bool same = isnan(v[0]) ? isnan(v[1]) : v[0] == v[1] && signbit(v[0]) == signbit(v[1]);
        if (!same) {
            tctx_fail(t, "%s: element %lld is %g, the reference %g", what, (long long)i, (double)v[1],
                      (double)v[0]);
            ok = false;
        }
    }
    free(h[0]);
    free(h[1]);
    return ok;
}

/* h[0] and h[1] (downloaded with their guards) byte for byte; with
 * finite_only, a NaN or inf on both sides fails too. */
static bool bitwise_equal(tctx *t, const char *what, const tpair *p, unsigned char *h[2], bool finite_only)
{
    if (memcmp(h[0] + TP_GUARD, h[1] + TP_GUARD, p->bytes) != 0) {
        size_t i = 0;
        while (h[0][TP_GUARD + i] == h[1][TP_GUARD + i])
            i++;
        tctx_fail(t, "%s: not bitwise equal (first difference at byte %zu of %zu)", what, i, p->bytes);
        return false;
    }
    tb_dtype dt = p->t[0].dtype;
    int64_t count = tb_numel(&p->t[0]);
    for (int64_t i = 0; finite_only && tb_dtype_is_float(dt) && i < count; i++) {
        float v;
        tb_convert_to_f32(&v, h[1] + TP_GUARD + (size_t)i * tb_dtype_size(dt), dt, 1);
        if (!isfinite(v)) {
            tctx_fail(t, "%s: non-finite at %lld (%g) on both sides", what, (long long)i, (double)v);
            return false;
        }
    }
    return true;
}

bool tp_check_bits(tctx *t, const char *what, const tpair *p)
{
    unsigned char *h[2];
    bool ok = download_pair(t, what, p, h) && bitwise_equal(t, what, p, h, false);
    free(h[0]);
    free(h[1]);
    return ok;
}

bool tp_check(tctx *t, const char *what, const tpair *p, double rtol)
{
    unsigned char *h[2];
    float *f[2] = {NULL, NULL};
    bool ok = download_pair(t, what, p, h);
    int64_t count = ok ? tb_numel(&p->t[0]) : 0;
    tb_dtype dt = ok ? p->t[0].dtype : TB_F32;
    if (ok && (rtol == 0.0 || !tb_dtype_is_float(dt))) {
        ok = bitwise_equal(t, what, p, h, true);
    } else if (ok) {
        f[0] = malloc(sizeof(float) * (size_t)(count ? count : 1));
        f[1] = malloc(sizeof(float) * (size_t)(count ? count : 1));
        ok = f[0] && f[1];
        if (ok) {
            tb_convert_to_f32(f[0], h[0] + TP_GUARD, dt, count);
            tb_convert_to_f32(f[1], h[1] + TP_GUARD, dt, count);
            ok = compare_values(t, what, p, f[0], f[1], count, rtol);
        }
    }
    free(f[0]);
    free(f[1]);
    free(h[0]);
    free(h[1]);
    return ok;
}

void tctx_set_tf32(tb_backend *be, bool allow)
{
    tb_cuda_options opt;
    if (be->kind != TB_DEVICE_CUDA || tb_cuda_get_options(be, &opt) != TB_OK)
        return;
    opt.allow_tf32 = allow;
    tb_cuda_set_options(be, &opt);
}

int tctx_open_backends(int argc, char **argv, tb_backend **ref, tb_backend **dut, uint64_t *seed)
{
    /* line by line: a run killed by its time limit keeps what it printed */
    setvbuf(stdout, NULL, _IOLBF, 0);
    bool self_check = argc > 1 && !strcmp(argv[1], "--self-check");
    const char *env = getenv("TB_TEST_SEED");
    *seed = env ? strtoull(env, NULL, 10) : 20250611ull;
    char why[256] = "";
    if (!self_check && !tb_cuda_available(why, sizeof why)) {
        /* on the GPU machine a missing GPU is a broken driver or runtime, not a skip */
        const char *require = getenv("TB_REQUIRE_GPU");
        bool required = require && *require && strcmp(require, "0") != 0;
        printf("%s: no usable GPU: %s\n", required ? "FAIL (TB_REQUIRE_GPU is set)" : "SKIP", why);
        return required ? 1 : 77;
    }
    int rc = tb_cpu_backend_create(ref, 2);
    if (rc == TB_OK)
        rc = self_check ? tb_cpu_backend_create(dut, 2) : tb_cuda_backend_create(dut, 0);
    if (rc != TB_OK) {
        printf("cannot create the backends: %s\n", tb_errmsg());
        return 1;
    }
    tctx_set_tf32(*dut, false);
    printf("reference: %s; under test: %s; seed %llu (TB_TEST_SEED)\n", (*ref)->name, (*dut)->name,
           (unsigned long long)*seed);
    return 0;
}

int tctx_main(int argc, char **argv, tb_backend **ref, tb_backend **dut, uint64_t *seed, const char *name,
              const struct CMUnitTest *tests, size_t count)
{
    int rc = tctx_open_backends(argc, argv, ref, dut, seed);
    if (rc != 0)
        return rc;
    rc = _cmocka_run_group_tests(name, tests, count, NULL, NULL);
    tb_backend_destroy(*dut);
    tb_backend_destroy(*ref);
    *dut = *ref = NULL;
    return rc;
}
