/* tb_capture_end's host-side contract, on a backend whose capture calls are
 * stand-ins: after an op failed inside the capture, ending it (which then
 * fails too, as CUDA's invalidated captures do) keeps the op's message and
 * frees any graph; a good capture is handed out; a failed end says why. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/backend.h"
#include "kernels/error.h"

static int graph_token;          /* what the stand-in capture returns */
static bool end_fails, freed;

static int fake_begin(tb_backend *be)
{
    (void)be;
    return TB_OK;
}

static int fake_end(tb_backend *be, void **graph)
{
    (void)be;
    *graph = &graph_token;
    return end_fails ? tb_fail(TB_ERR_BACKEND, "cudaStreamEndCapture: invalidated") : TB_OK;
}

static int fake_replay(tb_backend *be, void *graph)
{
    (void)be;
    return graph == &graph_token ? TB_OK : tb_fail(TB_ERR_INTERNAL, "wrong graph");
}

static void fake_free(tb_backend *be, void *graph)
{
    (void)be;
    freed = graph == &graph_token;
}

static tb_backend fake_backend(void)
{
    tb_backend be;
    memset(&be, 0, sizeof be);
    be.iface.capture_begin = fake_begin;
    be.iface.capture_end = fake_end;
    be.iface.replay = fake_replay;
    be.iface.replay_free = fake_free;
    snprintf(be.name, sizeof be.name, "fake");
    return be;
}

static void test_failed_op_keeps_its_message(void **state)
{
    (void)state;
    tb_backend be = fake_backend();
    end_fails = true;
    freed = false;
    assert_int_equal(tb_capture_begin(&be), TB_OK);
    int rc = tb_fail(TB_ERR_BACKEND, "conv2d_forward: cudaMalloc is not allowed while capturing");
    tb_capture *c = (tb_capture *)&graph_token;
    assert_int_not_equal(tb_capture_end(&be, rc != TB_OK, &c), TB_OK);
    assert_null(c);
    assert_true(freed);
    assert_string_equal(tb_errmsg(), "conv2d_forward: cudaMalloc is not allowed while capturing");
}

static void test_failed_op_after_a_clean_end(void **state)
{
    (void)state;
    tb_backend be = fake_backend();
    end_fails = false;
    freed = false;
    tb_fail(TB_ERR_INVALID, "softmax_ce_forward: bad labels");
    tb_capture *c = NULL;
    tb_capture_end(&be, true, &c);
    assert_null(c);
    assert_true(freed); /* a capture of a failed body is never kept */
    assert_string_equal(tb_errmsg(), "softmax_ce_forward: bad labels");
}

static void test_good_capture_and_failed_end(void **state)
{
    (void)state;
    tb_backend be = fake_backend();
    end_fails = false;
    freed = false;
    tb_capture *c = NULL;
    assert_int_equal(tb_capture_end(&be, false, &c), TB_OK);
    assert_ptr_equal(c, &graph_token);
    assert_false(freed);
    assert_int_equal(tb_capture_replay(&be, c), TB_OK);
    end_fails = true;
    assert_int_equal(tb_capture_end(&be, false, &c), TB_ERR_BACKEND);
    assert_null(c);
    assert_true(freed);
    assert_non_null(strstr(tb_errmsg(), "cudaStreamEndCapture"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_op_keeps_its_message),
        cmocka_unit_test(test_failed_op_after_a_clean_end),
        cmocka_unit_test(test_good_capture_and_failed_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
