#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/error.h"

static int failing_reader(const char *file)
{
    TB_CHECK(file[0] != '\0', TB_ERR_MISSING, "no file given");
    return tb_err_context(tb_fail(TB_ERR_DATA, "bad magic 0x%08x at offset %d", 0x1234u, 0), "%s", file);
}

static void test_message_and_context(void **state)
{
    (void)state;
    assert_int_equal(failing_reader("train.idx"), TB_ERR_DATA);
    assert_string_equal(tb_errmsg(), "train.idx: bad magic 0x00001234 at offset 0");
    assert_int_equal(failing_reader(""), TB_ERR_MISSING);
    assert_string_equal(tb_errmsg(), "no file given");
}

static void test_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(tb_status_exit_code(TB_OK), 0);
    assert_int_equal(tb_status_exit_code(TB_ERR_USAGE), 64);
    assert_int_equal(tb_status_exit_code(TB_ERR_DATA), 65);
    assert_int_equal(tb_status_exit_code(TB_ERR_INVALID), 65);
    assert_int_equal(tb_status_exit_code(TB_ERR_MISSING), 66);
    assert_int_equal(tb_status_exit_code(TB_ERR_INTERNAL), 70);
    assert_int_equal(tb_status_exit_code(TB_ERR_NOT_IMPLEMENTED), 70);
    assert_int_equal(tb_status_exit_code(TB_ERR_IO), 74);
    assert_int_equal(tb_status_exit_code(TB_ERR_BUSY), 75);
    assert_int_equal(tb_status_exit_code(TB_ERR_INTERRUPTED), 130);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_and_context),
        cmocka_unit_test(test_exit_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
