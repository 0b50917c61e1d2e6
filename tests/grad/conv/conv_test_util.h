/* Shared pieces of the conv2d tests: host buffers in any float dtype, a
 * double-precision reference convolution, and comparisons. The case tables
 * (conv_tiny_cases, conv_medium_cases, conv_chunked_case) live in
 * tests/cases/conv_cases.h, which the cuda suite runs too. */
#ifndef TB_CONV_TEST_UTIL_H
#define TB_CONV_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cases/conv_cases.h"
#include "kernels/backend.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"

/* A case's tensors, data NULL, in dtype dt. */
typedef struct conv_shapes {
    tb_tensor x, w, y, b;
} conv_shapes;

conv_shapes conv_case_shapes(const conv_case *cc, tb_dtype dt);

/* Host buffer of `count` elements of dt with GUARD elements of a sentinel on
 * both sides; conv_buf_guards_intact() checks that nothing wrote there. */
typedef struct conv_buf {
    tb_dtype dt;
    int64_t count;
    unsigned char *raw; /* guard, data, guard */
    void *data;
    float *f32; /* the values as f32 (what the dtype holds exactly) */
} conv_buf;

conv_buf conv_buf_new(tb_dtype dt, int64_t count);
void conv_buf_free(conv_buf *b);
bool conv_buf_guards_intact(const conv_buf *b);
/* Uniform values in [-1, 1) from seed, rounded to the dtype; f32 mirrors them. */
void conv_buf_random(conv_buf *b, uint64_t seed);
void conv_buf_zero(conv_buf *b);
/* Copies the values of src (any dtype) into dst (any dtype, same count). */
void conv_buf_copy(conv_buf *dst, const conv_buf *src);
/* Refreshes b->f32 from b->data (after an op wrote it). */
void conv_buf_sync(conv_buf *b);

/* y = conv(x, w) + b in double, and sum |x*w| per output (for tolerances). */
void conv_ref_forward(const conv_case *cc, const double *x, const double *w, const double *b, double *y,
                      double *abs_sum);
double *conv_to_double(const float *v, int64_t count);

/* Index of the first element with |a-b| > atol + rtol*|b| (or a non-finite
 * value), -1 if none; prints the offender. */
int64_t conv_first_mismatch(const char *what, const float *a, const float *b, int64_t count, double atol,
                            double rtol);

/* A CPU backend with 2 threads and the workspace for every tiny case (and
 * `extra` bytes more). */
tb_backend *conv_test_backend(size_t extra_workspace);
size_t conv_case_workspace(tb_backend *be, const conv_case *cc, tb_dtype dt);

#endif
