/* Run config: defaults, every error message (file, key path, value, nearest
 * key, line:col), overrides, canonical JSON and hash stability. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/config.h"
#include "harness/json_util.h"
#include "kernels/error.h"
#include "tb_build_config.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tb_test_config_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Parses `text` as the file cfg.json and returns the status; message in tb_errmsg(). */
static int parse(const char *text, tb_run_config *cfg)
{
    cJSON *root = NULL;
    int rc = tb_json_parse_text(text, strlen(text), "cfg.json", &root);
    if (rc != TB_OK)
        return rc;
    rc = tb_config_from_json(root, "cfg.json", cfg);
    cJSON_Delete(root);
    return rc;
}

static void expect_error(const char *text, const char *message)
{
    tb_run_config cfg;
    tb_err_clear();
    assert_int_equal(parse(text, &cfg), TB_ERR_INVALID);
    assert_string_equal(tb_errmsg(), message);
}

static void test_defaults(void **state)
{
    (void)state;
    tb_run_config cfg;
    assert_int_equal(parse("{}", &cfg), TB_OK);
    assert_int_equal(cfg.task, TB_TASK_CLASSIFICATION);
    assert_string_equal(cfg.data.dataset, "fashion-mnist");
    assert_string_equal(cfg.model.name, "resnet18");
    assert_int_equal(cfg.model.variant, 'B');
    assert_true(cfg.model.width == 1.0f);
    assert_true(cfg.optim.lr == 0.1);
    assert_int_equal(cfg.optim.batch, 256);
    assert_int_equal(cfg.optim.base_batch, 256);
    assert_int_equal(cfg.optim.epochs, 1);
    assert_true(cfg.optim.nesterov);
    assert_true(cfg.optim.weight_decay == 1e-4);
    assert_int_equal(cfg.schedule.type, TB_SCHED_STEP);
    assert_int_equal(cfg.schedule.n_step_epochs, 3);
    assert_int_equal(cfg.schedule.step_epochs[2], 90);
    assert_int_equal(cfg.tricks.precision, TB_PREC_FP32);
    assert_true(cfg.tricks.loss_scale_dynamic);
    assert_false(cfg.tricks.distill.enabled);
    assert_true(cfg.tricks.distill.temperature == 20.0);
    assert_string_equal(cfg.device, "auto");
    assert_int_equal(cfg.data.synthetic_train, 512);
}

/* The canonical form of the defaults: a change here changes every run's
 * hash, so it must be deliberate (a new key, a new default). */
static const char defaults_json[] =
    "{\"data\":{\"augment\":\"auto\",\"dataset\":\"fashion-mnist\",\"holdout\":0,\"image_size\":0,"
    "\"random_erasing\":0,\"root\":\"\",\"skip_bad\":false,\"synthetic_channels\":1,\"synthetic_classes\":10,"
    "\"synthetic_size\":28,\"synthetic_train\":512,\"synthetic_val\":128,\"train_limit\":0,\"val_limit\":0,"
    "\"workers\":0},\"device\":\"auto\",\"model\":{\"checkpoint\":\"\",\"classes\":0,\"dropout\":0,"
    "\"init\":\"kaiming\",\"name\":\"resnet18\",\"stem\":\"auto\",\"variant\":\"B\",\"width\":1},"
    "\"optim\":{\"base_batch\":256,\"batch\":256,\"epochs\":1,\"eval_every\":1,\"grad_clip\":0,"
    "\"linear_scaling\":false,\"lr\":0.1,\"momentum\":0.9,\"nesterov\":true,\"optimizer\":\"sgd\","
    "\"weight_decay\":0.0001},\"schedule\":{\"final_lr\":0,\"poly_power\":0.9,\"step_epochs\":[30,60,90],"
    "\"step_gamma\":0.1,\"type\":\"step\",\"warmup_epochs\":0},\"seed\":0,\"task\":\"classification\","
    "\"tricks\":{\"cutmix_alpha\":0,\"distill\":null,\"ema\":0,\"label_smoothing\":0,\"loss_scale\":\"dynamic\","
    "\"mixup_alpha\":0,\"mixup_off_epochs\":0,\"no_bias_decay\":false,\"precision\":\"fp32\",\"zero_gamma\":false}}";

static void test_canonical_defaults(void **state)
{
    (void)state;
    tb_run_config cfg;
    tb_config_defaults(&cfg);
    char *s = tb_config_canonical_json(&cfg);
    assert_non_null(s);
    assert_string_equal(s, defaults_json);
    char hex[65], expect[65];
    assert_int_equal(tb_config_hash(&cfg, hex), TB_OK);
    tb_sha256_hex(s, strlen(s), expect);
    assert_string_equal(hex, expect);
    assert_int_equal(strlen(hex), 64);
    free(s);
}

static void test_sha256_known_vector(void **state)
{
    (void)state;
    char hex[65];
    tb_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_hash_independent_of_order_and_spelling(void **state)
{
    (void)state;
    tb_run_config a, b, c, d;
    assert_int_equal(parse("{\"optim\": {\"lr\": 0.2, \"batch\": 128}, \"model\": {\"width\": 0.3, \"variant\": \"D\"},"
                           " \"tricks\": {\"label_smoothing\": 0.1}}", &a), TB_OK);
    assert_int_equal(parse("{\"tricks\": {\"label_smoothing\": 1e-1, \"mixup_alpha\": 0},"
                           " \"model\": {\"variant\": \"D\", \"width\": 0.30},"
                           " \"optim\": {\"batch\": 128.0, \"lr\": 0.20, \"momentum\": 0.9}}", &b), TB_OK);
    assert_int_equal(parse("{\"optim\": {\"lr\": 0.2, \"batch\": 128}, \"model\": {\"width\": 0.3, \"variant\": \"D\"},"
                           " \"tricks\": {\"label_smoothing\": 0.1}, \"seed\": 1}", &c), TB_OK);
    char ha[65], hb[65], hc[65];
    assert_int_equal(tb_config_hash(&a, ha), TB_OK);
    assert_int_equal(tb_config_hash(&b, hb), TB_OK);
    assert_int_equal(tb_config_hash(&c, hc), TB_OK);
    assert_string_equal(ha, hb);
    assert_string_not_equal(ha, hc);
    char *s = tb_config_canonical_json(&a);
    assert_non_null(strstr(s, "\"width\":0.3}"));
    assert_non_null(strstr(s, "\"lr\":0.2,"));
    /* the canonical text parses back to the same config and hash */
    assert_int_equal(parse(s, &d), TB_OK);
    char hd[65];
    assert_int_equal(tb_config_hash(&d, hd), TB_OK);
    assert_string_equal(ha, hd);
    free(s);
}

static void test_unknown_keys_suggest_nearest(void **state)
{
    (void)state;
    expect_error("{\"tricks\": {\"mixup_alpah\": 0.2}}",
                 "cfg.json: unknown key 'tricks.mixup_alpah' (did you mean 'tricks.mixup_alpha'?)");
    expect_error("{\"optim\": {\"label_smoothing\": 0.1}}",
                 "cfg.json: unknown key 'optim.label_smoothing' (did you mean 'tricks.label_smoothing'?)");
    expect_error("{\"trick\": {\"ema\": 0.99}}", "cfg.json: unknown key 'trick' (did you mean 'tricks'?)");
    expect_error("{\"optim\": {\"learning_rate\": 0.1}}",
                 "cfg.json: unknown key 'optim.learning_rate'; valid keys in optim: optimizer, lr, batch, "
                 "base_batch, linear_scaling, epochs, momentum, nesterov, weight_decay, grad_clip, eval_every");
    expect_error("{\"sed\": 1}", "cfg.json: unknown key 'sed' (did you mean 'seed'?)");
    expect_error("{\"tricks\": {\"distill\": {\"teacher\": \"x\", \"temprature\": 4}}}",
                 "cfg.json: unknown key 'tricks.distill.temprature' (did you mean 'tricks.distill.temperature'?)");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_error("{\"optim\": {\"lr\": \"0.1\"}}", "cfg.json: optim.lr: expected a number, got \"0.1\" (a string)");
    expect_error("{\"optim\": {\"batch\": 12.5}}", "cfg.json: optim.batch: expected an integer, got 12.5 (a number)");
    expect_error("{\"optim\": {\"nesterov\": 1}}", "cfg.json: optim.nesterov: expected true or false, got 1 (a number)");
    expect_error("{\"optim\": 3}", "cfg.json: optim: expected an object, got 3 (a number)");
    expect_error("{\"tricks\": {\"distill\": true}}",
                 "cfg.json: tricks.distill: expected an object or null, got true (a boolean)");
    expect_error("{\"schedule\": {\"step_epochs\": 30}}",
                 "cfg.json: schedule.step_epochs: expected an array of epochs, got 30 (a number)");
    expect_error("{\"schedule\": {\"step_epochs\": [10, \"x\"]}}",
                 "cfg.json: schedule.step_epochs[1]: expected an integer, got \"x\" (a string)");
    expect_error("{\"tricks\": {\"loss_scale\": \"auto\"}}",
                 "cfg.json: tricks.loss_scale: 'auto' is neither a number nor \"dynamic\"");
    expect_error("{\"tricks\": {\"loss_scale\": [1]}}",
                 "cfg.json: tricks.loss_scale: expected a number or \"dynamic\", got [1] (an array)");
    expect_error("[1, 2]", "cfg.json: expected a JSON object (the run config), got an array");
}

static void test_out_of_range(void **state)
{
    (void)state;
    expect_error("{\"tricks\": {\"label_smoothing\": 1.5}}",
                 "cfg.json: tricks.label_smoothing: 1.5 is out of range [0, 1)");
    expect_error("{\"optim\": {\"lr\": -0.1}}", "cfg.json: optim.lr: -0.1 is out of range (0, 100]");
    expect_error("{\"optim\": {\"lr\": 0}}", "cfg.json: optim.lr: 0 is out of range (0, 100]");
    expect_error("{\"optim\": {\"batch\": 0}}", "cfg.json: optim.batch: 0 is out of range [1, 1048576]");
    expect_error("{\"optim\": {\"grad_clip\": -1}}", "cfg.json: optim.grad_clip: -1 is out of range (must be >= 0)");
    expect_error("{\"schedule\": {\"step_epochs\": [30, 20]}}",
                 "cfg.json: schedule.step_epochs: epochs must increase (20 after 30)");
    expect_error("{\"schedule\": {\"step_epochs\": [0]}}",
                 "cfg.json: schedule.step_epochs[0]: 0 is out of range [1, 100000]");
    expect_error("{\"tricks\": {\"loss_scale\": 0}}", "cfg.json: tricks.loss_scale: 0 is out of range (0, 16777216]");
    expect_error("{\"seed\": -1}", "cfg.json: seed: -1 is out of range [0, 9007199254740992]");
    expect_error("{\"model\": {\"variant\": \"E\"}}", "cfg.json: model.variant: 'E' is not one of A, B, C, D");
    expect_error("{\"schedule\": {\"type\": \"cosin\"}}",
                 "cfg.json: schedule.type: 'cosin' is not one of step, cosine, poly, linear, constant "
                 "(did you mean 'cosine'?)");
    expect_error("{\"model\": {\"name\": \"resnet-50\"}}",
                 "cfg.json: model.name: 'resnet-50' is not one of resnet18, resnet34, resnet50, resnet101, "
                 "resnet152, mobilenet_v1, inception_v3 (did you mean 'resnet50'?)");
}

static void test_cross_key_rules(void **state)
{
    (void)state;
    expect_error("{\"tricks\": {\"distill\": {\"temperature\": 4}}}",
                 "cfg.json: tricks.distill: give exactly one of teacher (a run label of the matrix) or "
                 "teacher_checkpoint (a safetensors file)");
    expect_error("{\"tricks\": {\"mixup_alpha\": 0.2, \"mixup_off_epochs\": 1}}",
                 "cfg.json: tricks.mixup_off_epochs: 1 leaves no epoch with mixup/cutmix (optim.epochs is 1)");
    expect_error("{\"schedule\": {\"warmup_epochs\": 5}, \"optim\": {\"epochs\": 3}}",
                 "cfg.json: schedule.warmup_epochs: 5 is longer than the run (optim.epochs is 3)");
    expect_error("{\"optim\": {\"lr\": 0.1, \"lr\": 0.2}}", "cfg.json: key 'optim.lr' is given twice");
}

static void test_distill_and_loss_scale(void **state)
{
    (void)state;
    tb_run_config cfg;
    assert_int_equal(parse("{\"tricks\": {\"precision\": \"fp16\", \"loss_scale\": 128, \"distill\": "
                           "{\"teacher_checkpoint\": \"t.safetensors\", \"teacher_model\": {\"name\": \"resnet50\", "
                           "\"variant\": \"D\"}, \"temperature\": 2}}}", &cfg), TB_OK);
    assert_int_equal(cfg.tricks.precision, TB_PREC_FP16);
    assert_false(cfg.tricks.loss_scale_dynamic);
    assert_true(cfg.tricks.loss_scale == 128.0);
    assert_true(cfg.tricks.distill.enabled);
    assert_string_equal(cfg.tricks.distill.teacher_checkpoint, "t.safetensors");
    assert_string_equal(cfg.tricks.distill.teacher_model.name, "resnet50");
    assert_int_equal(cfg.tricks.distill.teacher_model.variant, 'D');
    assert_true(cfg.tricks.distill.temperature == 2.0);
    assert_true(cfg.tricks.distill.hard_weight == 1.0);
    char *s = tb_config_canonical_json(&cfg);
    assert_non_null(strstr(s, "\"loss_scale\":128,"));
    assert_non_null(strstr(s, "\"distill\":{\"hard_weight\":1,\"teacher\":\"\",\"teacher_checkpoint\":\"t.safetensors\","
                              "\"teacher_model\":{\"checkpoint\":\"\",\"classes\":0,\"dropout\":0,\"init\":\"kaiming\","
                              "\"name\":\"resnet50\",\"stem\":\"auto\",\"variant\":\"D\",\"width\":1},\"temperature\":2}"));
    free(s);
    /* null switches it off again */
    cJSON *null_value = cJSON_CreateNull();
    assert_int_equal(tb_config_set(&cfg, "tricks.distill", null_value, "m.json"), TB_OK);
    cJSON_Delete(null_value);
    assert_false(cfg.tricks.distill.enabled);
    assert_int_equal(parse("{\"tricks\": {\"loss_scale\": \"dynamic\", \"distill\": null}}", &cfg), TB_OK);
    assert_true(cfg.tricks.loss_scale_dynamic);
}

static void test_set_and_get(void **state)
{
    (void)state;
    tb_run_config cfg;
    tb_config_defaults(&cfg);
    cJSON *v = cJSON_Parse("\"cosine\"");
    assert_int_equal(tb_config_set(&cfg, "schedule.type", v, "m.json: steps[0].set"), TB_OK);
    assert_int_equal(cfg.schedule.type, TB_SCHED_COSINE);
    cJSON_Delete(v);
    v = cJSON_Parse("{\"mixup_alpha\": 0.2, \"ema\": 0.999}");
    assert_int_equal(tb_config_set(&cfg, "tricks", v, "m.json"), TB_OK);
    assert_true(cfg.tricks.mixup_alpha == 0.2 && cfg.tricks.ema == 0.999);
    cJSON_Delete(v);
    v = cJSON_Parse("\"run-a\"");
    assert_int_equal(tb_config_set(&cfg, "tricks.distill.teacher", v, "m.json"), TB_OK);
    assert_true(cfg.tricks.distill.enabled); /* any distill key switches distillation on */
    cJSON_Delete(v);
    v = cJSON_Parse("0.1");
    tb_err_clear();
    assert_int_equal(tb_config_set(&cfg, "tricks.label_smothing", v, "m.json: steps[1].set"), TB_ERR_INVALID);
    assert_string_equal(tb_errmsg(),
                        "m.json: steps[1].set: unknown key 'tricks.label_smothing' (did you mean 'tricks.label_smoothing'?)");
    cJSON_Delete(v);

    cJSON *out = NULL;
    assert_int_equal(tb_config_get(&cfg, "schedule.type", &out), TB_OK);
    assert_string_equal(out->valuestring, "cosine");
    cJSON_Delete(out);
    assert_int_equal(tb_config_get(&cfg, "model", &out), TB_OK);
    assert_true(cJSON_IsObject(out));
    assert_string_equal(cJSON_GetObjectItem(out, "variant")->valuestring, "B");
    cJSON_Delete(out);
    assert_int_equal(tb_config_get(&cfg, "model.varient", &out), TB_ERR_INVALID);
    assert_string_equal(tb_errmsg(), "unknown key 'model.varient' (did you mean 'model.variant'?)");
}

static void test_syntax_errors_line_col(void **state)
{
    (void)state;
    tb_run_config cfg;
    const char *path = write_file("bad.json", "{\n  \"optim\": {\n    \"lr\": 0.1,\n  }\n}\n");
    assert_int_equal(tb_config_load_file(path, &cfg), TB_ERR_INVALID);
    char expect[600];
    snprintf(expect, sizeof expect, "%s:4:3: invalid JSON near '}'", path);
    assert_string_equal(tb_errmsg(), expect);

    path = write_file("short.json", "{\"optim\": {\"lr\": 0.1}");
    assert_int_equal(tb_config_load_file(path, &cfg), TB_ERR_INVALID);
    snprintf(expect, sizeof expect, "%s:1:22: invalid JSON: unexpected end of file", path);
    assert_string_equal(tb_errmsg(), expect);

    path = write_file("trailing.json", "{}\n{}\n");
    assert_int_equal(tb_config_load_file(path, &cfg), TB_ERR_INVALID);
    snprintf(expect, sizeof expect, "%s:2:1: invalid JSON: unexpected text after the end of the value", path);
    assert_string_equal(tb_errmsg(), expect);

    path = write_file("typo.json", "{\n  \"model\": {\"width\": 0.25},\n  \"tricks\": {\"mixup_alpha\": 0.2, \"zero_gama\": true}\n}\n");
    assert_int_equal(tb_config_load_file(path, &cfg), TB_ERR_INVALID);
    snprintf(expect, sizeof expect, "%s: unknown key 'tricks.zero_gama' (did you mean 'tricks.zero_gamma'?)", path);
    assert_string_equal(tb_errmsg(), expect);

    snprintf(expect, sizeof expect, "%s/none.json", tmpdir);
    assert_int_equal(tb_config_load_file(expect, &cfg), TB_ERR_MISSING);

    path = write_file("good.json", "{\"model\": {\"width\": 0.25, \"variant\": \"D\"}, \"seed\": 7}");
    assert_int_equal(tb_config_load_file(path, &cfg), TB_OK);
    assert_true(cfg.model.width == 0.25f);
    assert_int_equal(cfg.seed, 7);
}

static void test_every_key_documented(void **state)
{
    (void)state;
    FILE *f = fopen(TB_SOURCE_ROOT "/README.md", "r");
    assert_non_null(f);
    static char doc[1 << 17];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[n] = '\0';
    assert_true(tb_config_key_count() > 50);
    for (size_t i = 0; i < tb_config_key_count(); i++) {
        char quoted[160];
        snprintf(quoted, sizeof quoted, "`%s`", tb_config_key_path(i));
        if (!strstr(doc, quoted))
            fail_msg("README.md does not document %s", quoted);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_canonical_defaults),
        cmocka_unit_test(test_sha256_known_vector),
        cmocka_unit_test(test_hash_independent_of_order_and_spelling),
        cmocka_unit_test(test_unknown_keys_suggest_nearest),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_cross_key_rules),
        cmocka_unit_test(test_distill_and_loss_scale),
        cmocka_unit_test(test_set_and_get),
        cmocka_unit_test(test_syntax_errors_line_col),
        cmocka_unit_test(test_every_key_documented),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
