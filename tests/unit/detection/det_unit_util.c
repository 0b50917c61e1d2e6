#include "det_unit_util.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/error.h"

tb_backend *du_be;

#define DU_MAX 256
static void *allocs[DU_MAX];
static int n_allocs;

int du_setup(void **state)
{
    (void)state;
    return tb_cpu_backend_create(&du_be, 2) == TB_OK ? 0 : -1;
}

int du_teardown(void **state)
{
    (void)state;
    du_free_all();
    tb_backend_destroy(du_be);
    du_be = NULL;
    return 0;
}

tb_tensor du_new(tb_dtype dt, int ndim, int64_t d0, int64_t d1, int64_t d2)
{
    int64_t shape[4] = {d0, d1, d2, 1};
    tb_tensor t = tb_tensor_make(NULL, dt, ndim, shape);
    assert_true(n_allocs < DU_MAX);
    t.data = calloc(1, tb_nbytes(&t));
    assert_non_null(t.data);
    allocs[n_allocs++] = t.data;
    return t;
}

void du_free_all(void)
{
    for (int i = 0; i < n_allocs; i++)
        free(allocs[i]);
    n_allocs = 0;
}

float *du_f(const tb_tensor *t) { return t->data; }
int32_t *du_i(const tb_tensor *t) { return t->data; }

void du_set_f(const tb_tensor *t, const float *v, int64_t count)
{
    assert_true(count <= tb_numel(t));
    memcpy(t->data, v, (size_t)count * sizeof *v);
}

void du_set_i(const tb_tensor *t, const int32_t *v, int64_t count)
{
    assert_true(count <= tb_numel(t));
    memcpy(t->data, v, (size_t)count * sizeof *v);
}

void du_reserve(size_t bytes)
{
    du_ok(tb_backend_reserve_workspace(du_be, bytes), "reserve workspace");
}

#define DU_GUARD 4096
#define DU_GUARD_BYTE 0xa5

void du_ws_begin(du_ws *w, tb_backend *be, size_t bytes)
{
    w->be = be;
    w->own = be->workspace;
    w->own_size = be->workspace_size;
    w->bytes = bytes;
    w->buf = aligned_alloc(64, (bytes + DU_GUARD + 63) & ~(size_t)63);
    assert_non_null(w->buf);
    memset(w->buf, 0xff, bytes);
    memset(w->buf + bytes, DU_GUARD_BYTE, DU_GUARD);
    be->workspace = w->buf;
    be->workspace_size = bytes;
}

void du_ws_end(du_ws *w)
{
    w->be->workspace = w->own;
    w->be->workspace_size = w->own_size;
    for (size_t i = 0; i < DU_GUARD; i++)
        if (w->buf[w->bytes + i] != DU_GUARD_BYTE) {
            free(w->buf);
            fail_msg("the op wrote past its %zu-byte workspace (guard byte %zu changed)", w->bytes, i);
        }
    free(w->buf);
}

void du_ok(int rc, const char *what)
{
    if (rc != TB_OK)
        fail_msg("%s: %s: %s", what, tb_status_name(rc), tb_errmsg());
}

void du_near(const char *what, const float *a, const float *b, int64_t count, float tol)
{
    for (int64_t i = 0; i < count; i++)
        if (!(fabsf(a[i] - b[i]) <= tol))
            fail_msg("%s: element %lld is %.7g, expected %.7g", what, (long long)i, (double)a[i], (double)b[i]);
}
