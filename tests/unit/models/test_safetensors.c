/* safetensors checkpoints: round trip (identical outputs), the layout
 * PyTorch expects (OIHW, I64 num_batches_tracked, 8-byte aligned header,
 * state_dict order), F16/BF16 loading, prefix loading, and one clear error
 * per kind of corrupt or mismatched file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "kernels/backend.h"
#include "kernels/error.h"
#include "kernels/rng.h"
#include "model_test_util.h"
#include "models/safetensors.h"
#include "models/safetensors_file.h"

static tb_backend *be;
static char dir[64];

#define CHECK_OK(expr)                                                        \
    do {                                                                      \
        int rc_ = (expr);                                                     \
        if (rc_ != TB_OK)                                                     \
            fail_msg("%s: %s (%s)", #expr, tb_errmsg(), tb_status_name(rc_)); \
    } while (0)

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tb_safetensors_XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    return tb_cpu_backend_create(&be, 2);
}

static int teardown(void **state)
{
    (void)state;
    tb_backend_destroy(be);
    rmdir(dir); /* the tests remove their files; a leftover keeps the directory for inspection */
    return 0;
}

static void path_of(char *buf, size_t size, const char *name) { snprintf(buf, size, "%s/%s", dir, name); }

/* resnet18 (variant v), small stem, width 0.25, 28 px grey images */
static tb_graph *small_net(char v, int classes, uint64_t seed)
{
    tb_model_spec s = test_spec("resnet18", v, TB_STEM_SMALL, 28, 0.25f, classes);
    s.channels = 1;
    tb_graph *g = test_build(be, &s, 2, true);
    CHECK_OK(tb_model_init(g, TB_INIT_KAIMING, seed));
    return g;
}

static void set_input(tb_graph *g, uint64_t seed)
{
    tb_tensor *x = tb_graph_input(g);
    int64_t n = tb_numel(x);
    float *h = malloc(sizeof(float) * (size_t)n);
    tb_rng r;
    tb_rng_seed(&r, seed, 0);
    for (int64_t i = 0; i < n; i++)
        h[i] = (float)tb_rng_normal(&r);
    CHECK_OK(tb_upload(be, x, h));
    free(h);
}

static float *param_host(tb_graph *g, int i)
{
    float *h = malloc(sizeof(float) * (size_t)tb_numel(&tb_graph_param(g, i)->master));
    CHECK_OK(tb_graph_param_download(g, i, h));
    return h;
}

static int param_index(tb_graph *g, const char *name)
{
    for (int i = 0; i < tb_graph_n_params(g); i++)
        if (!strcmp(tb_graph_param(g, i)->name, name))
            return i;
    fail_msg("no parameter %s", name);
    return -1;
}

static void assert_same_state(tb_graph *a, tb_graph *b)
{
    assert_int_equal(tb_graph_n_params(a), tb_graph_n_params(b));
    for (int i = 0; i < tb_graph_n_params(a); i++) {
        float *x = param_host(a, i), *y = param_host(b, i);
        if (memcmp(x, y, sizeof(float) * (size_t)tb_numel(&tb_graph_param(a, i)->master)))
            fail_msg("parameter %s differs", tb_graph_param(a, i)->name);
        free(x);
        free(y);
    }
    for (int i = 0; i < tb_graph_n_buffers(a); i++) {
        float x[2048], y[2048];
        CHECK_OK(tb_download(be, x, &tb_graph_buffer(a, i)->t));
        CHECK_OK(tb_download(be, y, &tb_graph_buffer(b, i)->t));
        if (memcmp(x, y, tb_nbytes(&tb_graph_buffer(a, i)->t)))
            fail_msg("buffer %s differs", tb_graph_buffer(a, i)->name);
    }
    assert_int_equal(tb_graph_bn_batches_tracked(a), tb_graph_bn_batches_tracked(b));
}

static float *eval_output(tb_graph *g)
{
    set_input(g, 99);
    CHECK_OK(tb_graph_forward(g, false));
    tb_tensor *y = tb_graph_output(g);
    float *h = malloc(tb_nbytes(y));
    CHECK_OK(tb_download(be, h, y));
    return h;
}

static void test_round_trip(void **state)
{
    (void)state;
    char path[128];
    path_of(path, sizeof path, "rt.safetensors");
    tb_graph *a = small_net('B', 10, 1);
    /* one training forward moves the running statistics and num_batches_tracked */
    set_input(a, 3);
    CHECK_OK(tb_graph_forward(a, true));
    CHECK_OK(tb_safetensors_save(a, path));
    tb_graph *b = small_net('B', 10, 2);
    CHECK_OK(tb_safetensors_load(b, path));
    assert_same_state(a, b);
    assert_int_equal(tb_graph_bn_batches_tracked(b), 1);
    float *ya = eval_output(a), *yb = eval_output(b);
    assert_memory_equal(ya, yb, tb_nbytes(tb_graph_output(a)));
    free(ya);
    free(yb);
    tb_graph_destroy(a);
    tb_graph_destroy(b);
    unlink(path);
}

/* The file is what torch's load_state_dict expects: state_dict order, OIHW. */
static void test_layout(void **state)
{
    (void)state;
    char path[128];
    path_of(path, sizeof path, "d.safetensors");
    tb_model_spec s = test_spec("resnet50", 'D', TB_STEM_IMAGENET, 64, 0.125f, 10);
    tb_graph *g = test_build(be, &s, 1, true);
    CHECK_OK(tb_model_init(g, TB_INIT_KAIMING, 3));
    tb_graph_set_bn_batches_tracked(g, 1234);
    CHECK_OK(tb_safetensors_save(g, path));
    tb_st_file sf;
    CHECK_OK(tb_st_open(&sf, path));
    assert_int_equal((sf.data_start - 8) % 8, 0);
    int n_bn = tb_graph_n_buffers(g) / 2;
    assert_int_equal(sf.n, tb_graph_n_params(g) + tb_graph_n_buffers(g) + n_bn);
    static const char *const first[] = {"conv1.0.weight", "conv1.1.weight", "conv1.1.bias",
                                        "conv1.1.running_mean", "conv1.1.running_var",
                                        "conv1.1.num_batches_tracked", "conv1.3.weight"};
    for (int i = 0; i < 7; i++)
        assert_string_equal(sf.tensors[i].name, first[i]);
    /* conv1.0.weight: OIHW [4, 3, 3, 3]; the graph's master is OHWI */
    const tb_st_tensor *t = &sf.tensors[0];
    assert_string_equal(t->dtype, "F32");
    assert_int_equal(t->ndim, 4);
    int64_t want[4] = {4, 3, 3, 3};
    assert_memory_equal(t->shape, want, sizeof want);
    float file[108], *ohwi = param_host(g, 0);
    CHECK_OK(tb_st_read(&sf, t, file));
    for (int o = 0; o < 4; o++)
        for (int i = 0; i < 3; i++)
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 3; x++)
                    assert_true(file[((o * 3 + i) * 3 + y) * 3 + x] == ohwi[((o * 3 + y) * 3 + x) * 3 + i]);
    free(ohwi);
    const tb_st_tensor *nb = tb_st_find(&sf, "layer3.0.downsample.2.num_batches_tracked");
    assert_non_null(nb);
    assert_string_equal(nb->dtype, "I64");
    assert_int_equal(nb->ndim, 0);
    int64_t batches = 0;
    CHECK_OK(tb_st_read(&sf, nb, &batches));
    assert_int_equal(batches, 1234);
    const tb_st_tensor *ds = tb_st_find(&sf, "layer3.0.downsample.1.weight");
    assert_non_null(ds);
    assert_int_equal(ds->ndim, 4);
    const tb_st_tensor *fc = tb_st_find(&sf, "fc.weight");
    assert_int_equal(fc->ndim, 2);
    assert_int_equal(fc->shape[0], 10);
    assert_int_equal(fc->shape[1], 256);
    assert_null(tb_st_find(&sf, "layer3.0.downsample.0.weight"));
    tb_st_close(&sf);
    /* and it loads back into a fresh graph */
    tb_graph *h = test_build(be, &s, 1, true);
    CHECK_OK(tb_model_init(h, TB_INIT_XAVIER, 4));
    CHECK_OK(tb_safetensors_load(h, path));
    assert_same_state(g, h);
    tb_graph_destroy(g);
    tb_graph_destroy(h);
    unlink(path);
}

/* Rewrites every float tensor of `src` as F16 or BF16 (alternating). */
static void write_half_copy(const char *src, const char *dst)
{
    tb_st_file sf;
    CHECK_OK(tb_st_open(&sf, src));
    tb_st_tensor *ts = calloc((size_t)sf.n, sizeof *ts);
    int halves = 0;
    for (int i = 0; i < sf.n; i++) {
        ts[i] = sf.tensors[i];
        if (!strcmp(ts[i].dtype, "F32"))
            snprintf(ts[i].dtype, sizeof ts[i].dtype, "%s", halves++ % 2 ? "BF16" : "F16");
    }
    FILE *f = fopen(dst, "wb");
    assert_non_null(f);
    tb_st_writer w;
    CHECK_OK(tb_st_write_begin(&w, f, dst, ts, sf.n));
    for (int i = 0; i < sf.n; i++) {
        const tb_st_tensor *t = &sf.tensors[i];
        size_t bytes = (size_t)(t->end - t->begin);
        void *buf = malloc(bytes);
        CHECK_OK(tb_st_read(&sf, t, buf));
        if (strcmp(ts[i].dtype, t->dtype)) {
            int64_t n = (int64_t)(bytes / 4);
            uint16_t *half = malloc((size_t)n * 2);
            tb_convert_from_f32(half, !strcmp(ts[i].dtype, "F16") ? TB_F16 : TB_BF16, buf, n);
            CHECK_OK(tb_st_write_data(&w, half, (size_t)n * 2));
            free(half);
        } else {
            CHECK_OK(tb_st_write_data(&w, buf, bytes));
        }
        free(buf);
    }
    CHECK_OK(tb_st_write_end(&w));
    fclose(f);
    free(ts);
    tb_st_close(&sf);
}

static void test_half_precision_load(void **state)
{
    (void)state;
    char p32[128], p16[128];
    path_of(p32, sizeof p32, "f32.safetensors");
    path_of(p16, sizeof p16, "f16.safetensors");
    tb_graph *a = small_net('D', 10, 1);
    CHECK_OK(tb_safetensors_save(a, p32));
    write_half_copy(p32, p16);
    tb_graph *b = small_net('D', 10, 2);
    CHECK_OK(tb_safetensors_load(b, p16));
    /* parameter 0 went through F16, parameter 1 through BF16 */
    for (int i = 0; i < 2; i++) {
        int64_t n = tb_numel(&tb_graph_param(a, i)->master);
        float *x = param_host(a, i), *y = param_host(b, i);
        for (int64_t k = 0; k < n; k++) {
            float r = i == 0 ? tb_f16_to_f32(tb_f32_to_f16(x[k])) : tb_bf16_to_f32(tb_f32_to_bf16(x[k]));
            assert_true(y[k] == r);
        }
        free(x);
        free(y);
    }
    tb_graph_destroy(a);
    tb_graph_destroy(b);
    unlink(p32);
    unlink(p16);
}

/* ---- corrupt and mismatched files ---- */

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(*size + 64);
    assert_int_equal(fread(buf, 1, *size, f), *size);
    fclose(f);
    return buf;
}

static void write_all(const char *path, const void *buf, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, size, f), size);
    fclose(f);
}

/* Replaces the first occurrence of `from` inside the header by `to` (same length). */
static void patch_header(unsigned char *buf, const char *from, const char *to)
{
    size_t hlen = 0;
    memcpy(&hlen, buf, 8);
    size_t lf = strlen(from);
    assert_int_equal(lf, strlen(to));
    for (size_t i = 8; i + lf <= 8 + hlen; i++) {
        if (!memcmp(buf + i, from, lf)) {
            memcpy(buf + i, to, lf);
            return;
        }
    }
    fail_msg("'%s' not in the header", from);
}

/* Loads `path` into g and expects `code` with every needle in the message. */
static void expect_load_error(tb_graph *g, const char *path, int code, const char *const *needles)
{
    tb_err_clear();
    int rc = tb_safetensors_load(g, path);
    if (rc != code)
        fail_msg("loading %s: got %s (%s), want %s", path, tb_status_name(rc), tb_errmsg(), tb_status_name(code));
    if (!strstr(tb_errmsg(), path))
        fail_msg("message '%s' does not name the file", tb_errmsg());
    for (int i = 0; needles[i]; i++)
        if (!strstr(tb_errmsg(), needles[i]))
            fail_msg("message '%s' lacks '%s'", tb_errmsg(), needles[i]);
}

static void test_corrupt_files(void **state)
{
    (void)state;
    char good[128], bad[128];
    path_of(good, sizeof good, "good.safetensors");
    path_of(bad, sizeof bad, "bad.safetensors");
    tb_graph *a = small_net('B', 10, 1);
    CHECK_OK(tb_safetensors_save(a, good));
    tb_graph *b = small_net('B', 10, 2);
    float *before = param_host(b, 0);
    size_t size;
    unsigned char *orig = read_all(good, &size), *buf = malloc(size + 64);

    /* truncated: the last tensor (fc.bias) runs past the end */
    write_all(bad, orig, size - 10);
    expect_load_error(b, bad, TB_ERR_DATA, (const char *[]){"truncated", "fc.bias", NULL});
    /* too short for the header length */
    write_all(bad, orig, 5);
    expect_load_error(b, bad, TB_ERR_DATA, (const char *[]){"too short", NULL});
    /* header length beyond the file */
    memcpy(buf, orig, size);
    uint64_t huge = (uint64_t)size;
    memcpy(buf, &huge, 8);
    write_all(bad, buf, size);
    expect_load_error(b, bad, TB_ERR_DATA, (const char *[]){"header length", "beyond the file size", NULL});
    /* not JSON */
    memcpy(buf, orig, size);
    buf[8] = 'x';
    write_all(bad, buf, size);
    expect_load_error(b, bad, TB_ERR_DATA, (const char *[]){"not valid JSON", NULL});
    /* data_offsets that do not match the shape */
    memcpy(buf, orig, size);
    patch_header(buf, "\"data_offsets\":[0,", "\"data_offsets\":[8,");
    write_all(bad, buf, size);
    expect_load_error(b, bad, TB_ERR_DATA, (const char *[]){"conv1.weight", "data_offsets [8,", NULL});
    /* bytes after the last tensor */
    memcpy(buf, orig, size);
    memset(buf + size, 0, 16);
    write_all(bad, buf, size + 16);
    expect_load_error(b, bad, TB_ERR_DATA, (const char *[]){"16 bytes after the last tensor", NULL});
    /* a renamed tensor: one missing, one unexpected, both named */
    memcpy(buf, orig, size);
    patch_header(buf, "\"fc.bias\"", "\"fc.bibs\"");
    write_all(bad, buf, size);
    expect_load_error(b, bad, TB_ERR_DATA,
                      (const char *[]){"missing tensor 'fc.bias'", "unexpected tensor 'fc.bibs'", "2 problems", NULL});
    /* a wrong dtype */
    memcpy(buf, orig, size);
    patch_header(buf, "\"I64\"", "\"U64\"");
    write_all(bad, buf, size);
    expect_load_error(b, bad, TB_ERR_DATA, (const char *[]){"'bn1.num_batches_tracked' has dtype U64", NULL});
    /* a missing file */
    path_of(bad, sizeof bad, "absent.safetensors");
    expect_load_error(b, bad, TB_ERR_MISSING, (const char *[]){"cannot open", NULL});

    /* nothing was loaded by any of the failures */
    float *after = param_host(b, 0);
    assert_memory_equal(before, after, sizeof(float) * (size_t)tb_numel(&tb_graph_param(b, 0)->master));
    free(after);
    free(before);
    free(orig);
    free(buf);
    path_of(bad, sizeof bad, "bad.safetensors");
    unlink(bad);
    unlink(good);
    tb_graph_destroy(a);
    tb_graph_destroy(b);
}

/* Different classifier sizes: every wrong shape is reported by name. */
static void test_wrong_shapes(void **state)
{
    (void)state;
    char path[128];
    path_of(path, sizeof path, "c10.safetensors");
    tb_graph *a = small_net('B', 10, 1);
    CHECK_OK(tb_safetensors_save(a, path));
    tb_graph *b = small_net('B', 5, 2);
    expect_load_error(b, path, TB_ERR_DATA,
                      (const char *[]){"'fc.weight' has shape [10,128] in the file, the model expects [5,128]",
                                       "'fc.bias' has shape [10]", "2 problems", NULL});
    /* variant D's shortcut names against B's file: the error lists them all */
    tb_graph *d = small_net('D', 10, 2);
    expect_load_error(d, path, TB_ERR_DATA,
                      (const char *[]){"missing tensor 'layer2.0.downsample.2.weight'",
                                       "unexpected tensor 'layer2.0.downsample.0.weight'", NULL});
    /* a backbone transfer: everything but the classifier */
    static const char *const backbone[] = {"conv1.", "bn1.", "layer"};
    float *fc_before = param_host(b, param_index(b, "fc.weight"));
    static const char *const typo[] = {"layers."};
    assert_int_equal(tb_safetensors_load_prefixes(b, path, typo, 1), TB_ERR_INVALID);
    assert_non_null(strstr(tb_errmsg(), "layers."));
    CHECK_OK(tb_safetensors_load_prefixes(b, path, backbone, 3));
    int li = param_index(a, "layer3.1.conv2.weight");
    float *x = param_host(a, li), *y = param_host(b, li);
    assert_memory_equal(x, y, sizeof(float) * (size_t)tb_numel(&tb_graph_param(a, li)->master));
    float *fc_after = param_host(b, param_index(b, "fc.weight"));
    assert_memory_equal(fc_before, fc_after, sizeof(float) * 5 * 128);
    free(x);
    free(y);
    free(fc_before);
    free(fc_after);
    tb_graph_destroy(a);
    tb_graph_destroy(b);
    tb_graph_destroy(d);
    unlink(path);
}

/* Hand-written files: the container checks of tb_st_open. */
static void expect_open_error(const char *header, size_t data_bytes, const char *needle)
{
    char path[128];
    path_of(path, sizeof path, "hand.safetensors");
    size_t hlen = strlen(header), size = 8 + hlen + data_bytes;
    unsigned char *buf = calloc(1, size);
    uint64_t len = hlen;
    memcpy(buf, &len, 8);
    memcpy(buf + 8, header, hlen);
    write_all(path, buf, size);
    free(buf);
    tb_st_file sf;
    int rc = tb_st_open(&sf, path);
    if (needle == NULL) {
        CHECK_OK(rc);
        tb_st_close(&sf);
    } else {
        assert_int_equal(rc, TB_ERR_DATA);
        if (!strstr(tb_errmsg(), needle) || !strstr(tb_errmsg(), path))
            fail_msg("message '%s' lacks '%s' or the path", tb_errmsg(), needle);
    }
    unlink(path);
}

static void test_container_checks(void **state)
{
    (void)state;
    const char *a = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},";
    char h[512];
    snprintf(h, sizeof h, "%s\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", a);
    expect_open_error(h, 8, NULL);
    snprintf(h, sizeof h, "%s\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", a);
    expect_open_error(h, 12, "'b' starts at byte 8 but 'a' ends at byte 4 (a gap)");
    snprintf(h, sizeof h, "%s\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", a);
    expect_open_error(h, 8, "(an overlap)");
    snprintf(h, sizeof h, "%s\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", a);
    expect_open_error(h, 8, "'a' appears twice");
    snprintf(h, sizeof h, "%s\"b\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[4,8]}}", a);
    expect_open_error(h, 8, "unknown dtype 'Q4'");
    snprintf(h, sizeof h, "%s\"b\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[4,8]}}", a);
    expect_open_error(h, 8, "shape entry 0");
    expect_open_error("[1, 2]", 0, "not a JSON object");
    expect_open_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "not 0");
}

static void test_save_error(void **state)
{
    (void)state;
    char path[160];
    snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", dir);
    tb_graph *a = small_net('B', 10, 1);
    assert_int_equal(tb_safetensors_save(a, path), TB_ERR_IO);
    assert_non_null(strstr(tb_errmsg(), "no/such/dir/x.safetensors"));
    tb_graph_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_half_precision_load),
        cmocka_unit_test(test_corrupt_files),
        cmocka_unit_test(test_wrong_shapes),
        cmocka_unit_test(test_container_checks),
        cmocka_unit_test(test_save_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
