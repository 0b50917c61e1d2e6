/* Host-side parts of the CUDA backend, testable without a GPU (suite unit):
 *  - tb_cuda_available never crashes; without a usable GPU it says why,
 *    --device auto falls back to the CPU and --device cuda is a clean error;
 *    with a GPU the backend is created and named;
 *  - the element conversions the kernels use (cuda_fp16/cuda_bf16, run here
 *    on the host) are bitwise those of kernels/tensor.h, and the kernels'
 *    dropout draw is rng.h's;
 *  - the pooling-window arithmetic of the gather backward kernels against
 *    brute force, with PyTorch's output sizes and divisors;
 *  - CUDA_CHECK / CUDNN_CHECK / CUBLAS_CHECK messages and the op context;
 *    CUDA_CHECK_FOR / CUDA_CHECK_WAIT name what the call was for; the
 *    *_CHECK_RELEASE macros write one line to stderr and leave the error
 *    message of the thread alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kernels/cuda/pool_window.cuh"
#include "kernels/rng.h"

static void test_available_or_fallback(void **state)
{
    (void)state;
    char why[256] = "unset";
    bool gpu = tb_cuda_available(why, sizeof why);
    tb_backend *be = NULL;
    char note[512];
    assert_int_equal(tb_backend_create(&be, TB_DEVICE_AUTO, 1, note, sizeof note), TB_OK);
    if (gpu) {
        assert_int_equal(be->kind, TB_DEVICE_CUDA);
        assert_non_null(strstr(be->name, "cuda:0"));
    } else {
        assert_true(why[0] != '\0' && strcmp(why, "unset") != 0);
        assert_int_equal(be->kind, TB_DEVICE_CPU);
        assert_non_null(strstr(note, "no GPU"));
        assert_non_null(strstr(note, why));
        tb_backend *cuda = NULL;
        assert_int_equal(tb_backend_create(&cuda, TB_DEVICE_CUDA, 1, NULL, 0), TB_ERR_UNSUPPORTED);
        assert_null(cuda);
        assert_non_null(strstr(tb_errmsg(), why));
    }
    tb_backend_destroy(be);
    assert_false(tb_cuda_available(NULL, 0) != gpu); /* no buffer for the reason is fine */
}

/* f32 values around every interesting f16/bf16 boundary. */
static float probe_value(tb_rng *r, int i)
{
    static const float fixed[] = {0.0f, -0.0f, 1.0f, 65504.0f, 65519.99f, 65520.0f, 1e30f, 6.1035156e-05f,
                                  5.9604645e-08f, 2.9802322e-08f, 2.98023259e-08f, 1.0009765625f, INFINITY,
                                  -INFINITY, 3.3895314e38f, 1.1754944e-38f};
    int nf = (int)(sizeof fixed / sizeof fixed[0]);
    if (i < nf)
        return fixed[i];
    float mag = exp2f(tb_rng_uniform_f(r, -40.0f, 130.0f));
    if (i % 3 == 0 && isfinite(mag)) /* exact ties of the 10- and 7-bit mantissas */
        mag = tb_bits_to_f32((tb_f32_to_bits(mag) & ~0x1fffu) | 0x1000u);
    return (i & 1) ? -mag : mag;
}

static void test_conversions_match_tensor_h(void **state)
{
    (void)state;
    tb_rng r;
    tb_rng_seed(&r, 42, 0);
    for (int i = 0; i < 200000; i++) {
        float v = probe_value(&r, i);
        if (isnan(v))
            fail_msg("the probe values must not hold NaN: NaN payloads differ and are not compared");
        __half h = tb_from_f32<__half>(v);
        __nv_bfloat16 b = tb_from_f32<__nv_bfloat16>(v);
        uint16_t hb, bb;
        memcpy(&hb, &h, 2);
        memcpy(&bb, &b, 2);
        if (hb != tb_f32_to_f16(v))
            fail_msg("f16 of %.9g (bits %08x): kernel %04x, tensor.h %04x", (double)v, tb_f32_to_bits(v), hb,
                     tb_f32_to_f16(v));
        if (bb != tb_f32_to_bf16(v))
            fail_msg("bf16 of %.9g: kernel %04x, tensor.h %04x", (double)v, bb, tb_f32_to_bf16(v));
        float back = tb_f32(h);
        if (tb_f32_to_bits(back) != tb_f32_to_bits(tb_f16_to_f32(hb)))
            fail_msg("f16 %04x to f32: kernel %.9g, tensor.h %.9g", hb, (double)back, (double)tb_f16_to_f32(hb));
        if (tb_f32_to_bits(tb_f32(b)) != tb_f32_to_bits(tb_bf16_to_f32(bb)))
            fail_msg("bf16 %04x to f32 differs", bb);
    }
}

static void test_dropout_draw_matches_rng(void **state)
{
    (void)state;
    for (uint64_t seed = 0; seed < 50; seed++)
        for (uint64_t i = 0; i < 5000; i += 7)
            assert_true(tb_hash_uniform_dev(seed * 7919u, i) == tb_hash_uniform(seed * 7919u, i));
    /* a training step's seed, made on the device from the uploaded step */
    for (uint64_t step = 0; step < 3000; step += 13)
        for (uint64_t node = 0; node < 40; node++)
            assert_true(tb_dropout_step_seed_dev(0x7b5eedull, step, node) ==
                        tb_dropout_step_seed(0x7b5eedull, step, node));
}

/* PyTorch's pooling output size (the test's own statement of the rule). */
static int64_t pool_out(int64_t in, int k, int s, int pad, bool ceil_mode)
{
    int64_t span = in + 2 * pad - k;
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + pad)
        out--;
    return out;
}

/* The window helpers with index type I (the kernels take int32_t when the
 * tensors allow, int64_t otherwise). */
template <typename I> static void check_pool_windows(void)
{
    for (I in = 1; in <= 13; in++)
        for (I k = 1; k <= 4; k++)
            for (I s = 1; s <= 3; s++)
                for (I pad = 0; pad <= k / 2; pad++)
                    for (int ceil_mode = 0; ceil_mode < 2; ceil_mode++) {
                        if (in + 2 * pad < k)
                            continue;
                        I out = (I)pool_out(in, (int)k, (int)s, (int)pad, ceil_mode);
                        for (I i = 0; i < in; i++) {
                            I lo, hi, blo = -1, bhi = -2;
                            tb_pool_outputs_of<I>(i, k, s, pad, out, &lo, &hi);
                            for (I o = 0; o < out; o++) {
                                I a, b;
                                tb_pool_window<I>(o, k, s, pad, in, &a, &b);
                                if (a <= i && i < b) {
                                    if (blo < 0)
                                        blo = o;
                                    bhi = o;
                                }
                            }
                            if (blo < 0) /* covered by no window: the range must be empty */
                                assert_true(lo > hi);
                            else if (lo != blo || hi != bhi)
                                fail_msg("%d-bit: in %lld k %d s %d pad %d ceil %d: input %lld is covered by outputs "
                                         "%lld..%lld, the kernels use %lld..%lld",
                                         (int)(8 * sizeof(I)), (long long)in, (int)k, (int)s, (int)pad, ceil_mode,
                                         (long long)i, (long long)blo, (long long)bhi, (long long)lo, (long long)hi);
                        }
                        for (I o = 0; o < out; o++) {
                            /* PyTorch: the window clipped to the padded input */
                            I a = o * s - pad, b = a + k < in + pad ? a + k : in + pad;
                            assert_int_equal(tb_pool_padded_len<I>(o, k, s, pad, in), b - a);
                            I ca, cb;
                            tb_pool_window<I>(o, k, s, pad, in, &ca, &cb);
                            assert_true(cb > ca); /* never a window of padding only */
                        }
                    }
}

static void test_pool_windows_against_brute_force(void **state)
{
    (void)state;
    check_pool_windows<int32_t>();
    check_pool_windows<int64_t>();
}

static cudaError_t fake_cuda_call(int x) { return x ? cudaErrorInvalidValue : cudaSuccess; }
static cudnnStatus_t fake_cudnn_call(int x) { return x ? CUDNN_STATUS_BAD_PARAM : CUDNN_STATUS_SUCCESS; }
static cublasStatus_t fake_cublas_call(int x) { return x ? CUBLAS_STATUS_INVALID_VALUE : CUBLAS_STATUS_SUCCESS; }

static int checked_calls(int fail_at)
{
    CUDA_CHECK(fake_cuda_call(fail_at == 0));
    CUDNN_CHECK(fake_cudnn_call(fail_at == 1));
    CUBLAS_CHECK(fake_cublas_call(fail_at == 2));
    return TB_OK;
}

static void test_check_macros_and_op_context(void **state)
{
    (void)state;
    static const char *const expect[3][2] = {{"fake_cuda_call: cudaErrorInvalidValue", "test_cuda_host.cu:"},
                                             {"fake_cudnn_call: CUDNN_STATUS_BAD_PARAM", "test_cuda_host.cu:"},
                                             {"fake_cublas_call: CUBLAS_STATUS_INVALID_VALUE", "test_cuda_host.cu:"}};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(checked_calls(i), TB_ERR_BACKEND);
        const char *msg = tb_errmsg();
        if (!strstr(msg, expect[i][0]) || !strstr(msg, expect[i][1]) || strstr(msg, "(i =="))
            fail_msg("message '%s' lacks '%s' or the location", msg, expect[i][0]);
    }
    assert_int_equal(checked_calls(3), TB_OK);
    tb_tensor y = tb_tensor_4d(NULL, TB_F16, 2, 3, 4, 5), w = tb_tensor_4d(NULL, TB_F16, 5, 3, 3, 5);
    int rc = tb_cuda_op_failed(checked_calls(1), "conv2d_forward", "y", &y, "bias", NULL, "w", &w, NULL, NULL);
    assert_int_equal(rc, TB_ERR_BACKEND);
    const char *msg = tb_errmsg();
    if (!strstr(msg, "cuda conv2d_forward (y [2,3,4,5] f16, w [5,3,3,5] f16)") ||
        !strstr(msg, "CUDNN_STATUS_BAD_PARAM"))
        fail_msg("op context missing in '%s'", msg);
}

static bool starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static int checked_for(int wait)
{
    if (wait)
        CUDA_CHECK_WAIT(fake_cuda_call(1), "download of %zu bytes", (size_t)12);
    CUDA_CHECK_FOR(fake_cuda_call(1), "upload of %zu bytes", (size_t)40);
    return TB_OK;
}

static void test_check_for_names_what_and_wait(void **state)
{
    (void)state;
    assert_int_equal(checked_for(0), TB_ERR_BACKEND);
    const char *msg = tb_errmsg();
    if (!starts_with(msg, "upload of 40 bytes: fake_cuda_call: cudaErrorInvalidValue") ||
        !strstr(msg, "test_cuda_host.cu:") || strstr(msg, "queued earlier"))
        fail_msg("CUDA_CHECK_FOR message '%s'", msg);
    assert_int_equal(checked_for(1), TB_ERR_BACKEND);
    msg = tb_errmsg();
    if (!starts_with(msg, "download of 12 bytes: fake_cuda_call: cudaErrorInvalidValue") ||
        !strstr(msg, "test_cuda_host.cu:") || !strstr(msg, "any kernel or copy queued earlier on the stream"))
        fail_msg("CUDA_CHECK_WAIT message '%s'", msg);
}

/* Runs the three release checks with stderr sent to a temporary file and
 * returns what they wrote there. */
static void released_to_stderr(int fail, char *out, size_t size)
{
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    assert_true(saved >= 0 && tmp != NULL);
    assert_true(dup2(fileno(tmp), 2) >= 0);
    CUDA_CHECK_RELEASE(fake_cuda_call(fail));
    CUDNN_CHECK_RELEASE(fake_cudnn_call(fail));
    CUBLAS_CHECK_RELEASE(fake_cublas_call(fail));
    fflush(stderr);
    assert_true(dup2(saved, 2) >= 0);
    close(saved);
    rewind(tmp);
    size_t n = fread(out, 1, size - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
}

static void test_release_checks_report_on_stderr(void **state)
{
    (void)state;
    char line[256];
    int n = tb_cuda_release_message(line, sizeof line, "cudnnDestroy(h)", "CUDNN_STATUS_BAD_PARAM", "x.cu", 12);
    assert_true(n > 0 && (size_t)n < sizeof line);
    if (!starts_with(line, "trickbench: cuda: cudnnDestroy: CUDNN_STATUS_BAD_PARAM at x.cu:12 (ignored") ||
        strchr(line, '\n'))
        fail_msg("release message '%s'", line);

    tb_fail(TB_ERR_INVALID, "the earlier error");
    char err[2048];
    released_to_stderr(1, err, sizeof err);
    assert_string_equal(tb_errmsg(), "the earlier error"); /* not replaced by a release */
    static const char *const expect[3] = {"fake_cuda_call: cudaErrorInvalidValue at ",
                                          "fake_cudnn_call: CUDNN_STATUS_BAD_PARAM at ",
                                          "fake_cublas_call: CUBLAS_STATUS_INVALID_VALUE at "};
    for (int i = 0; i < 3; i++)
        if (!strstr(err, expect[i]))
            fail_msg("stderr lacks '%s': '%s'", expect[i], err);
    const char *p = err;
    int lines = 0;
    while ((p = strstr(p, "trickbench: cuda: ")) != NULL && (p = strstr(p, "test_cuda_host.cu:")) != NULL &&
           (p = strchr(p, '\n')) != NULL)
        lines++;
    assert_int_equal(lines, 3);
    released_to_stderr(0, err, sizeof err);
    assert_string_equal(err, ""); /* success is silent */
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* a run killed by its time limit keeps what it printed */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_available_or_fallback),
        cmocka_unit_test(test_conversions_match_tensor_h),
        cmocka_unit_test(test_dropout_draw_matches_rng),
        cmocka_unit_test(test_pool_windows_against_brute_force),
        cmocka_unit_test(test_check_macros_and_op_context),
        cmocka_unit_test(test_check_for_names_what_and_wait),
        cmocka_unit_test(test_release_checks_report_on_stderr),
    };
    return cmocka_run_group_tests_name("cuda backend, host side", tests, NULL, NULL);
}
