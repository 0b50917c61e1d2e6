/* Validation helpers shared by the op front-ends (kernels/ops.c,
 * kernels/ops_detection.c); private to kernels/. Everything here is static
 * inline so that each front-end file gets its own copy without warnings for
 * the helpers it does not use.
 *
 * A front-end collects the tensors of its call in a vcall (for the error
 * message), checks them with the need_* helpers, and dispatches with
 * DISPATCH, which also reports a missing slot or a declined dtype.
 */
#ifndef TB_OPS_CHECK_H
#define TB_OPS_CHECK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "kernels/backend.h"
#include "kernels/error.h"
#include "kernels/ops.h"

#define VC_MAX 20

/* The tensors of one call, remembered for the error message. */
typedef struct vcall {
    const char *op;
    int n;
    int more; /* tensors beyond VC_MAX (concat) */
    const char *names[VC_MAX];
    int index[VC_MAX]; /* >= 0: element of an array argument (concat's xs[i]) */
    const tb_tensor *ts[VC_MAX];
} vcall;

static inline vcall vc_make(const char *op)
{
    vcall v;
    v.op = op;
    v.n = v.more = 0;
    return v;
}

static inline void vc_add_at(vcall *v, const char *name, int index, const tb_tensor *t)
{
    if (v->n == VC_MAX) {
        v->more++;
        return;
    }
    v->names[v->n] = name;
    v->index[v->n] = index;
    v->ts[v->n++] = t;
}

static inline void vc_add(vcall *v, const char *name, const tb_tensor *t) { vc_add_at(v, name, -1, t); }

static inline int present(const tb_tensor *t) { return t && t->data; }

/* Shape string in a temporary that lives until the end of the enclosing block. */
#define SHP(t) tb_shape_str((t), (char[64]){0}, 64)

static inline int vc_fail(const vcall *v, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static inline int vc_fail(const vcall *v, const char *fmt, ...)
{
    char problem[512], all[1024];
    size_t off = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    all[0] = '\0';
    for (int i = 0; i < v->n && off < sizeof all; i++) {
        char idx[16] = "";
        if (v->index[i] >= 0)
            snprintf(idx, sizeof idx, "[%d]", v->index[i]);
        off += (size_t)snprintf(all + off, sizeof all - off, "%s%s%s %s", i ? ", " : "", v->names[i], idx,
                                present(v->ts[i]) ? SHP(v->ts[i]) : "(none)");
    }
    if (v->more && off < sizeof all)
        snprintf(all + off, sizeof all - off, ", and %d more", v->more);
    return tb_fail(TB_ERR_INVALID, "%s: %s (%s)", v->op, problem, all);
}

/* t is given, has 1..4 dims and every dim is positive. */
static inline int need(const vcall *v, const char *name, const tb_tensor *t)
{
    if (!present(t))
        return vc_fail(v, "%s is missing", name);
    if (t->ndim < 1 || t->ndim > TB_MAX_DIMS)
        return vc_fail(v, "%s has %d dims (1 to %d allowed)", name, t->ndim, TB_MAX_DIMS);
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] <= 0)
            return vc_fail(v, "%s %s has a non-positive dim", name, SHP(t));
    if ((int)t->dtype < 0 || t->dtype >= TB_DTYPE_COUNT)
        return vc_fail(v, "%s has an unknown dtype %d", name, (int)t->dtype);
    return TB_OK;
}

static inline int need_float(const vcall *v, const char *name, const tb_tensor *t)
{
    TB_TRY(need(v, name, t));
    if (!tb_dtype_is_float(t->dtype))
        return vc_fail(v, "%s %s must be f32, f16 or bf16", name, SHP(t));
    return TB_OK;
}

static inline int need_dtype(const vcall *v, const char *name, const tb_tensor *t, tb_dtype dt)
{
    TB_TRY(need(v, name, t));
    if (t->dtype != dt)
        return vc_fail(v, "%s %s must be %s", name, SHP(t), tb_dtype_name(dt));
    return TB_OK;
}

static inline int need_ndim(const vcall *v, const char *name, const tb_tensor *t, int ndim, const char *layout)
{
    if (t->ndim != ndim)
        return vc_fail(v, "%s %s must be %d-D %s", name, SHP(t), ndim, layout);
    return TB_OK;
}

/* b is given and has a's shape and dtype. */
static inline int need_like(const vcall *v, const char *bn, const tb_tensor *b, const char *an, const tb_tensor *a)
{
    TB_TRY(need(v, bn, b));
    if (!tb_same_shape(a, b))
        return vc_fail(v, "%s %s and %s %s differ in shape", an, SHP(a), bn, SHP(b));
    if (a->dtype != b->dtype)
        return vc_fail(v, "%s %s and %s %s differ in dtype", an, SHP(a), bn, SHP(b));
    return TB_OK;
}

/* b is given and has a's shape, with dtype dt. */
static inline int need_shape_dtype(const vcall *v, const char *bn, const tb_tensor *b, const char *an,
                            const tb_tensor *a, tb_dtype dt)
{
    TB_TRY(need_dtype(v, bn, b, dt));
    if (!tb_same_shape(a, b))
        return vc_fail(v, "%s %s and %s %s differ in shape", an, SHP(a), bn, SHP(b));
    return TB_OK;
}

/* t is a vector {len} of dtype dt. */
static inline int need_vec(const vcall *v, const char *name, const tb_tensor *t, tb_dtype dt, int64_t len,
                    const char *len_of)
{
    TB_TRY(need_dtype(v, name, t, dt));
    if (t->ndim != 1 || t->shape[0] != len)
        return vc_fail(v, "%s %s must be %s {%lld} (%s)", name, SHP(t), tb_dtype_name(dt), (long long)len, len_of);
    return TB_OK;
}

/* t is 2-D {rows, cols} of dtype dt (dt < 0: any float dtype). */
static inline int need_mat(const vcall *v, const char *name, const tb_tensor *t, int dt, int64_t rows, int64_t cols)
{
    TB_TRY(dt < 0 ? need_float(v, name, t) : need_dtype(v, name, t, (tb_dtype)dt));
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return vc_fail(v, "%s %s must be {%lld,%lld}", name, SHP(t), (long long)rows, (long long)cols);
    return TB_OK;
}

static inline int need_same_numel(const vcall *v, const char *bn, const tb_tensor *b, const char *an,
                                  const tb_tensor *a)
{
    TB_TRY(need(v, bn, b));
    if (tb_numel(a) != tb_numel(b))
        return vc_fail(v, "%s %s and %s %s differ in element count", an, SHP(a), bn, SHP(b));
    return TB_OK;
}

static inline int no_overlap(const vcall *v, const char *an, const tb_tensor *a, const char *bn, const tb_tensor *b)
{
    const char *pa = a->data, *pb = b->data;
    if (pa < pb + tb_nbytes(b) && pb < pa + tb_nbytes(a))
        return vc_fail(v, "%s and %s must not overlap in memory", an, bn);
    return TB_OK;
}

/* The backend has the op (and the activation dtype dt, unless dt is TB_DTYPE_COUNT). */
static inline int need_backend(tb_backend *be, tb_op_id op, bool has_slot, tb_dtype dt)
{
    if (!be)
        return tb_fail(TB_ERR_INVALID, "%s: no backend given", tb_op_name(op));
    if (!has_slot)
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: not supported by backend %s", tb_op_name(op), be->name);
    if (dt != TB_DTYPE_COUNT && be->iface.supports_op && !be->iface.supports_op(be, op, dt))
        return tb_fail(TB_ERR_UNSUPPORTED, "%s: %s tensors not supported by backend %s", tb_op_name(op),
                       tb_dtype_name(dt), be->name);
    return TB_OK;
}

/* Validates the backend and calls its slot with the remaining arguments. */
#define DISPATCH(op, slot, dt, ...)                                               \
    do {                                                                          \
        TB_TRY(need_backend(be, (op), be && be->iface.slot != NULL, (dt)));       \
        return be->iface.slot(be, __VA_ARGS__);                                   \
    } while (0)

static inline tb_tensor *opt(tb_tensor *t) { return present(t) ? t : NULL; }
static inline const tb_tensor *copt(const tb_tensor *t) { return present(t) ? t : NULL; }

static inline int64_t channels(const tb_tensor *t) { return t->shape[t->ndim - 1]; }

/* The op's scratch (need bytes, from the query named `query`) fits the workspace. */
static inline int need_workspace(const vcall *v, const tb_backend *be, size_t need, const char *query)
{
    if (be && be->workspace_size < need)
        return vc_fail(v,
                       "needs %zu bytes of workspace but %s has %zu reserved; reserve %s() bytes with "
                       "tb_backend_reserve_workspace at graph build",
                       need, be->name, be->workspace_size, query);
    return TB_OK;
}

#endif
