/* Cross-backend op testing (ggml's test-backend-ops, STYLE.md rule 7).
 *
 * A tpair is one tensor on two backends: side 0 the reference (the CPU
 * backend), side 1 the backend under test (CUDA). Both sides start from the
 * same fresh random bytes, and every buffer has guard bytes before and after
 * it. An op runs on both sides (RUN_BOTH), then tp_check compares side 1
 * against side 0: guards intact on both, no inf/NaN, and
 *   |got - ref| <= rtol * (|ref| + mean |ref|)
 * elementwise (rtol 0: bitwise equal). Outputs that may hold inf or NaN
 * by design take tp_check_bits (bitwise) or tp_check_special (by value).
 */
#ifndef TB_CUDA_TEST_UTIL_H
#define TB_CUDA_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/rng.h"

#define TP_GUARD 256         /* bytes before and after every tensor (keeps 256-byte alignment) */
#define TP_GUARD_BYTE 0xA5
#define TP_MAX_PAIRS 32

typedef enum tp_fill {
    TP_UNIFORM = 0, /* uniform in [lo, hi) (float dtypes) */
    TP_LABELS,      /* i32 in [0, hi) */
    TP_MASK,        /* u8 0 or 1 */
    TP_PROB_ROWS,   /* f32 {n, k}: positive rows summing to 1 */
    TP_ZERO         /* all bytes 0 */
} tp_fill;

typedef struct tpair {
    tb_tensor t[2];
    void *base[2];
    size_t bytes;
} tpair;

typedef struct tctx {
    tb_backend *be[2];
    tb_rng rng;
    tpair pairs[TP_MAX_PAIRS];
    int npairs;
    int failures;    /* failed checks since tctx_init */
    char name[192];  /* current case */
    bool verbose;
} tctx;

void tctx_init(tctx *t, tb_backend *ref, tb_backend *dut, uint64_t seed);
/* Starts a case: frees the previous case's tensors and names the new one. */
void tctx_case(tctx *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void tctx_free(tctx *t);
/* Prints "FAIL <case>: <message>" and counts a failure of the current case. */
void tctx_fail(tctx *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* A tensor on both sides with the same contents (NULL after a failure, recorded). */
tpair *tp_new(tctx *t, tb_dtype dt, int ndim, const int64_t *shape, tp_fill fill, float lo, float hi);
tpair *tp_4d(tctx *t, tb_dtype dt, int64_t n, int64_t h, int64_t w, int64_t c, tp_fill fill, float lo, float hi);
tpair *tp_2d(tctx *t, tb_dtype dt, int64_t n, int64_t c, tp_fill fill, float lo, float hi);
tpair *tp_1d(tctx *t, tb_dtype dt, int64_t c, tp_fill fill, float lo, float hi);
/* Overwrites both sides with the same values (host f32 converted to the dtype). */
bool tp_set(tctx *t, tpair *p, const float *values);
/* A 1-D pair holding `values` (the per-step scalar tensors: lam, box). */
tpair *tp_values(tctx *t, tb_dtype dt, int64_t count, const float *values);

/* Compares side 1 with side 0 (see the header comment); records failures. */
bool tp_check(tctx *t, const char *what, const tpair *p, double rtol);
/* Bitwise equal, inf and NaN included (their payloads too). */
bool tp_check_bits(tctx *t, const char *what, const tpair *p);
/* The same values on both sides, element by element in f32: NaN matches any
 * NaN (a conversion may drop its sign or payload), zeros must agree in sign. */
bool tp_check_special(tctx *t, const char *what, const tpair *p);

/* Records a failed call (rc != TB_OK) with the error message; returns rc == TB_OK. */
bool tctx_rc(tctx *t, int side, const char *call, int rc);

/* Runs `call` on both sides; inside it, S(p) is pair p's tensor on the current side. */
#define S(p) ((p) ? &(p)->t[side_] : NULL)
#define BE (t->be[side_])
#define RUN_BOTH(t, call)                                    \
    do {                                                     \
        for (int side_ = 0; side_ < 2; side_++)              \
            tctx_rc((t), side_, #call, (call));              \
    } while (0)

/* Creates the two backends for a test program: the CPU reference and the
 * CUDA backend (TF32 off, so f32 is compared at f32 tolerances). With
 * --self-check as the first argument the backend under test is a second CPU
 * backend: that tests the test itself on a machine without a GPU. Returns
 * 0, 77 (no GPU: skip) or 1 (error), printing why. */
int tctx_open_backends(int argc, char **argv, tb_backend **ref, tb_backend **dut, uint64_t *seed);
/* The main of a test program: tctx_open_backends into *ref and *dut, the
 * cmocka group `name` (tests, count of them), then both backends destroyed.
 * Returns the exit status (77 without a GPU). */
struct CMUnitTest;
int tctx_main(int argc, char **argv, tb_backend **ref, tb_backend **dut, uint64_t *seed, const char *name,
              const struct CMUnitTest *tests, size_t count);
/* Allows or forbids TF32 on a CUDA backend (no-op on the CPU). */
void tctx_set_tf32(tb_backend *be, bool allow);

/* Per-dtype relative tolerances: elementwise ops, and ops that reduce
 * (convolution, GEMM, BatchNorm, pooling sums), where the summation order
 * differs between backends. tf32 is for f32 convolutions on tensor cores. */
double tp_tol(tb_dtype dt, bool reduction);
#define TP_TOL_TF32 3e-3

#endif
