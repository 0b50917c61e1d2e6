/* conv_bench: GFLOP/s of the conv2d ops on the ResNet-50 layer shapes
 * (batch 32, 224x224 input: the 7x7/2 stem and the bottleneck 1x1/3x3 convs
 * of every stage) and the small-image ResNet's 3x3 convs (batch 128, 28x28,
 * 64 channels), forward, backward data and backward filter.
 *
 *   conv_bench [--threads N] [--dtype f32|f16|bf16] [--reps N] [--only TEXT] [--device cpu|cuda|auto]
 *
 * FLOPs are 2 * MACs (multiply-adds of the convolution, padding included as
 * the GEMM formulation computes it: n*oh*ow*k*r*s*c/groups); the time is
 * the median of --reps calls (default 5) after one warm-up call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/backend.h"
#include "kernels/error.h"
#include "kernels/ops.h"
#include "kernels/rng.h"

typedef struct bench_shape {
    const char *name;
    int n, h, w, c, k, r, s, stride, pad;
} bench_shape;

static const bench_shape shapes[] = {
    {"r50 stem 7x7/2 3->64 @224", 32, 224, 224, 3, 64, 7, 7, 2, 3},
    {"r50 res2 1x1 64->64 @56", 32, 56, 56, 64, 64, 1, 1, 1, 0},
    {"r50 res2 3x3 64->64 @56", 32, 56, 56, 64, 64, 3, 3, 1, 1},
    {"r50 res2 1x1 64->256 @56", 32, 56, 56, 64, 256, 1, 1, 1, 0},
    {"r50 res2 1x1 256->64 @56", 32, 56, 56, 256, 64, 1, 1, 1, 0},
    {"r50 res3 1x1 256->128 @56", 32, 56, 56, 256, 128, 1, 1, 1, 0},
    {"r50 res3 3x3/2 128->128 @56", 32, 56, 56, 128, 128, 3, 3, 2, 1},
    {"r50 res3 1x1/2 256->512 @56 (proj)", 32, 56, 56, 256, 512, 1, 1, 2, 0},
    {"r50 res3 3x3 128->128 @28", 32, 28, 28, 128, 128, 3, 3, 1, 1},
    {"r50 res3 1x1 128->512 @28", 32, 28, 28, 128, 512, 1, 1, 1, 0},
    {"r50 res3 1x1 512->128 @28", 32, 28, 28, 512, 128, 1, 1, 1, 0},
    {"r50 res4 3x3 256->256 @14", 32, 14, 14, 256, 256, 3, 3, 1, 1},
    {"r50 res4 1x1 256->1024 @14", 32, 14, 14, 256, 1024, 1, 1, 1, 0},
    {"r50 res4 1x1 1024->256 @14", 32, 14, 14, 1024, 256, 1, 1, 1, 0},
    {"r50 res5 3x3 512->512 @7", 32, 7, 7, 512, 512, 3, 3, 1, 1},
    {"r50 res5 1x1 512->2048 @7", 32, 7, 7, 512, 2048, 1, 1, 1, 0},
    {"r50 res5 1x1 2048->512 @7", 32, 7, 7, 2048, 512, 1, 1, 1, 0},
    {"small 3x3 64->64 @28 b128", 128, 28, 28, 64, 64, 3, 3, 1, 1},
    {"r18-D deep stem 3x3/2 3->32 @224 (batch 8)", 8, 224, 224, 3, 32, 3, 3, 2, 1},
    {"r18-D deep stem 3x3 32->32 @112 (batch 8)", 8, 112, 112, 32, 32, 3, 3, 1, 1},
    {"r18-D deep stem 3x3 32->64 @112 (batch 8)", 8, 112, 112, 32, 64, 3, 3, 1, 1},
    {"small stem 3x3 1->64 @28 (batch 64)", 64, 28, 28, 1, 64, 3, 3, 1, 1},
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct bench_bufs {
    tb_tensor x, w, b, y, dx, dw, db;
} bench_bufs;

enum { OP_FWD, OP_BWD_DATA, OP_BWD_FILTER, OP_N };

static int run_op(tb_backend *be, int op, bench_bufs *t, const tb_conv2d_params *p)
{
    switch (op) {
    case OP_FWD: return tb_conv2d_forward(be, &t->y, &t->x, &t->w, NULL, p);
    case OP_BWD_DATA: return tb_conv2d_backward_data(be, &t->dx, &t->y, &t->w, p);
    default: return tb_conv2d_backward_filter(be, &t->dw, &t->db, &t->y, &t->x, p);
    }
}

/* Median seconds of `reps` calls after a warm-up. */
static int time_op(tb_backend *be, int op, bench_bufs *t, const tb_conv2d_params *p, int reps, double *median)
{
    double times[64];
    TB_TRY(run_op(be, op, t, p));
    TB_TRY(tb_synchronize(be));
    for (int i = 0; i < reps; i++) {
        double t0 = now_s();
        TB_TRY(run_op(be, op, t, p));
        TB_TRY(tb_synchronize(be));
        times[i] = now_s() - t0;
    }
    qsort(times, (size_t)reps, sizeof times[0], cmp_double);
    *median = times[reps / 2];
    return TB_OK;
}

static int alloc_tensor(tb_backend *be, tb_tensor *t, uint64_t seed)
{
    size_t bytes = tb_nbytes(t);
    TB_TRY(tb_alloc(be, &t->data, bytes));
    void *host = malloc(bytes);
    if (!host)
        return tb_fail(TB_ERR_NOMEM, "conv_bench: out of memory for %zu bytes", bytes);
    for (int64_t i = 0; i < tb_numel(t); i++)
        tb_store_f32(host, t->dtype, i, 2.0f * tb_hash_uniform(seed, (uint64_t)i) - 1.0f);
    int rc = tb_upload(be, t, host);
    free(host);
    return rc;
}

static int bench_one(tb_backend *be, const bench_shape *sh, tb_dtype dt, int reps)
{
    tb_conv2d_params p = {sh->stride, sh->stride, sh->pad, sh->pad, 1, 1, 1};
    int64_t oh = tb_conv2d_out_size(sh->h, sh->r, sh->stride, sh->pad, 1);
    int64_t ow = tb_conv2d_out_size(sh->w, sh->s, sh->stride, sh->pad, 1);
    bench_bufs t = {
        tb_tensor_4d(NULL, dt, sh->n, sh->h, sh->w, sh->c), tb_tensor_4d(NULL, dt, sh->k, sh->r, sh->s, sh->c),
        tb_tensor_1d(NULL, dt, sh->k), tb_tensor_4d(NULL, dt, sh->n, oh, ow, sh->k),
        tb_tensor_4d(NULL, dt, sh->n, sh->h, sh->w, sh->c), tb_tensor_4d(NULL, dt, sh->k, sh->r, sh->s, sh->c),
        tb_tensor_1d(NULL, dt, sh->k)};
    tb_tensor *all[7] = {&t.x, &t.w, &t.b, &t.y, &t.dx, &t.dw, &t.db};
    int rc = TB_OK;
    for (int i = 0; i < 7 && rc == TB_OK; i++)
        rc = alloc_tensor(be, all[i], (uint64_t)i + 1);
    if (rc == TB_OK)
        rc = tb_backend_reserve_workspace(be, tb_conv2d_workspace_size(be, &t.y, &t.x, &t.w, &p));
    double sec[OP_N] = {0};
    for (int op = 0; op < OP_N && rc == TB_OK; op++)
        rc = time_op(be, op, &t, &p, reps, &sec[op]);
    if (rc == TB_OK) {
        double flops = 2.0 * (double)sh->n * (double)(oh * ow) * sh->k * sh->r * sh->s * sh->c;
        printf("| %-36s | %7.2f | %7.1f | %7.1f | %7.1f | %6.1f %6.1f %6.1f |\n", sh->name, flops * 1e-9,
               flops * 1e-9 / sec[OP_FWD], flops * 1e-9 / sec[OP_BWD_DATA], flops * 1e-9 / sec[OP_BWD_FILTER],
               sec[OP_FWD] * 1e3, sec[OP_BWD_DATA] * 1e3, sec[OP_BWD_FILTER] * 1e3);
        fflush(stdout);
    }
    for (int i = 0; i < 7; i++)
        tb_free(be, all[i]->data);
    return rc;
}

static int usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [--threads N] [--dtype f32|f16|bf16] [--reps N (1-63)] [--only TEXT] "
                    "[--device cpu|cuda|auto]\n", argv0);
    return 64;
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 5;
    tb_dtype dt = TB_F32;
    tb_device_kind dev = TB_DEVICE_CPU;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            return usage(argv[0]);
        if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only"))
            only = argv[++i];
        else if (!strcmp(argv[i], "--dtype")) {
            if (tb_dtype_parse(argv[++i], &dt) != TB_OK)
                return usage(argv[0]);
        } else if (!strcmp(argv[i], "--device")) {
            if (tb_device_parse(argv[++i], &dev) != TB_OK)
                return usage(argv[0]);
        } else
            return usage(argv[0]);
    }
    if (reps < 1 || reps > 63)
        return usage(argv[0]);
    tb_backend *be = NULL;
    char note[256];
    if (tb_backend_create(&be, dev, threads, note, sizeof note) != TB_OK) {
        fprintf(stderr, "conv_bench: %s\n", tb_errmsg());
        return 70;
    }
    /* other processes on the machine change the figures: say how busy it was */
    char load[64] = "unknown";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (!fgets(load, sizeof load, f))
            snprintf(load, sizeof load, "unknown");
        load[strcspn(load, "\n")] = '\0';
        fclose(f);
    }
    printf("conv2d on %s, %s, median of %d after 1 warm-up (GFLOP = 2*MACs); load average at start: %s\n\n",
           be->name, tb_dtype_name(dt), reps, load);
    printf("| %-36s | %7s | %7s | %7s | %7s | %-20s |\n", "layer", "GFLOP", "fwd/s", "bdata/s", "bfilt/s",
           "ms fwd bdata bfilt");
    printf("|%s|---------|---------|---------|---------|----------------------|\n",
           "--------------------------------------");
    int rc = TB_OK;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0] && rc == TB_OK; i++)
        if (!only || strstr(shapes[i].name, only))
            rc = bench_one(be, &shapes[i], dt, reps);
    if (rc != TB_OK)
        fprintf(stderr, "conv_bench: %s\n", tb_errmsg());
    tb_backend_destroy(be);
    return rc == TB_OK ? 0 : 70;
}
