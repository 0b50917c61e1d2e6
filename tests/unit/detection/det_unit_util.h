/* Helpers for the detection op tests (tests/unit/detection): a CPU backend,
 * tensors that are freed together, and element access. Every helper fails
 * the current cmocka test on error. */
#ifndef TB_DET_UNIT_UTIL_H
#define TB_DET_UNIT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/tensor.h"

extern tb_backend *du_be;

int du_setup(void **state);    /* du_be = a 2-thread CPU backend */
int du_teardown(void **state); /* frees every tensor and the backend */

/* A zeroed tensor, freed by du_free_all(). */
tb_tensor du_new(tb_dtype dt, int ndim, int64_t d0, int64_t d1, int64_t d2);
void du_free_all(void);

float *du_f(const tb_tensor *t);   /* f32 data */
int32_t *du_i(const tb_tensor *t); /* i32 data */
/* Copies count floats (or ints) into t. */
void du_set_f(const tb_tensor *t, const float *v, int64_t count);
void du_set_i(const tb_tensor *t, const int32_t *v, int64_t count);

/* Reserves `bytes` of workspace on du_be (a query's answer), failing the test on error. */
void du_reserve(size_t bytes);

/* A workspace of exactly `bytes` lent to be in place of its own, filled with
 * 0xff (NaN floats, -1 ints: an op reading scratch it did not write shows)
 * and followed by guard bytes. du_ws_end fails the test when a guard byte
 * changed (the op wrote past what its query asked for) and gives be its own
 * workspace back. */
typedef struct du_ws {
    tb_backend *be;
    void *own;
    size_t own_size;
    unsigned char *buf;
    size_t bytes;
} du_ws;
void du_ws_begin(du_ws *w, tb_backend *be, size_t bytes);
void du_ws_end(du_ws *w);

/* Fails with the op's message unless rc is TB_OK. */
void du_ok(int rc, const char *what);
/* |a - b| <= tol for count floats, naming the first bad element. */
void du_near(const char *what, const float *a, const float *b, int64_t count, float tol);

#endif
