/* Matrix expansion: axes (grid), steps (cumulative), rows (independent),
 * their combinations, seeds, exclude/include, baseline, reference,
 * distillation teachers first, shards, and the error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/json_util.h"
#include "harness/matrix.h"
#include "kernels/error.h"

static int expand(const char *text, tb_matrix *m)
{
    cJSON *root = NULL;
    int rc = tb_json_parse_text(text, strlen(text), "m.json", &root);
    if (rc == TB_OK)
        rc = tb_matrix_from_json(root, "m.json", NULL, m);
    cJSON_Delete(root);
    return rc;
}

static void expect_error(const char *text, const char *message)
{
    tb_matrix m;
    tb_err_clear();
    int rc_ = expand(text, &m);
    if (rc_ != TB_ERR_INVALID)
        fail_msg("expected an error for %s, got %d: %s", text, rc_, tb_errmsg());
    assert_string_equal(tb_errmsg(), message);
}

static const char *label(const tb_matrix *m, int run) { return tb_matrix_run_label(m, run); }

static void test_axes_grid(void **state)
{
    (void)state;
    tb_matrix m;
    assert_int_equal(expand("{\"name\": \"grid\", \"base\": {\"optim\": {\"epochs\": 2}},"
                            " \"axes\": [{\"key\": \"model.variant\", \"values\": [\"A\", \"D\"]},"
                            "            {\"key\": \"tricks.label_smoothing\", \"values\": [0, 0.1]}],"
                            " \"seeds\": [1, 2]}", &m), TB_OK);
    assert_int_equal(m.n_rows, 4);
    assert_int_equal(m.n_runs, 8);
    assert_int_equal(m.n_dims, 2);
    assert_string_equal(m.rows[0].label, "variant=A, label_smoothing=0");
    assert_string_equal(m.rows[1].label, "variant=A, label_smoothing=0.1");
    assert_string_equal(m.rows[2].label, "variant=D, label_smoothing=0");
    assert_string_equal(m.rows[3].label, "variant=D, label_smoothing=0.1");
    assert_int_equal(m.rows[3].cfg.model.variant, 'D');
    assert_true(m.rows[3].cfg.tricks.label_smoothing == 0.1);
    assert_int_equal(m.rows[3].cfg.optim.epochs, 2);
    assert_int_equal(m.rows[2].levels[0], 1);
    assert_int_equal(m.rows[2].levels[1], 0);
    /* seeds inner: row 0 seed 1, row 0 seed 2, row 1 seed 1, ... */
    assert_string_equal(label(&m, 1), "variant=A, label_smoothing=0");
    assert_int_equal(m.runs[1].seed, 2);
    assert_int_equal(m.runs[1].cfg.seed, 2);
    assert_string_equal(label(&m, 2), "variant=A, label_smoothing=0.1");
    assert_string_equal(m.baseline, "variant=A, label_smoothing=0");
    for (int i = 0; i < m.n_runs; i++)
        for (int j = i + 1; j < m.n_runs; j++)
            assert_string_not_equal(m.runs[i].hash, m.runs[j].hash);
    char *dims = tb_matrix_dims_json(&m);
    assert_string_equal(dims, "[{\"name\":\"model.variant\",\"levels\":[\"variant=A\",\"variant=D\"]},"
                              "{\"name\":\"tricks.label_smoothing\",\"levels\":[\"label_smoothing=0\","
                              "\"label_smoothing=0.1\"]}]");
    free(dims);
    char *parts = tb_matrix_parts_json(&m, 1);
    assert_string_equal(parts, "{\"model.variant\":\"variant=A\",\"tricks.label_smoothing\":\"label_smoothing=0.1\"}");
    free(parts);
    tb_matrix_free(&m);
}

static void test_steps_cumulative(void **state)
{
    (void)state;
    tb_matrix m;
    assert_int_equal(expand("{\"name\": \"steps\", \"base_label\": \"Baseline\","
                            " \"steps\": [{\"label\": \"+ cosine\", \"set\": {\"schedule.type\": \"cosine\"}},"
                            "             {\"label\": \"+ label smoothing\", \"set\": {\"tricks.label_smoothing\": 0.1}},"
                            "             {\"set\": {\"tricks.mixup_alpha\": 0.2, \"optim.epochs\": 4}}]}", &m), TB_OK);
    assert_int_equal(m.n_rows, 4);
    assert_string_equal(m.rows[0].label, "Baseline");
    assert_string_equal(m.rows[1].label, "+ cosine");
    assert_string_equal(m.rows[2].label, "+ label smoothing");
    assert_string_equal(m.rows[3].label, "+ mixup_alpha=0.2, epochs=4");
    assert_int_equal(m.rows[0].cfg.schedule.type, TB_SCHED_STEP);
    assert_int_equal(m.rows[1].cfg.schedule.type, TB_SCHED_COSINE);
    assert_true(m.rows[1].cfg.tricks.label_smoothing == 0);
    assert_int_equal(m.rows[2].cfg.schedule.type, TB_SCHED_COSINE);
    assert_true(m.rows[2].cfg.tricks.label_smoothing == 0.1);
    assert_true(m.rows[3].cfg.tricks.label_smoothing == 0.1 && m.rows[3].cfg.tricks.mixup_alpha == 0.2);
    assert_int_equal(m.n_runs, 4);
    assert_int_equal(m.runs[0].seed, 0);
    assert_string_equal(m.baseline, "Baseline");
    assert_int_equal(m.n_dims, 1);
    assert_string_equal(m.dims[0].name, "steps");
    tb_matrix_free(&m);
}

static void test_rows_independent(void **state)
{
    (void)state;
    tb_matrix m;
    assert_int_equal(expand("{\"name\": \"rows\", \"seeds\": 3, \"base\": {\"seed\": 10},"
                            " \"rows\": [{\"label\": \"baseline\"},"
                            "            {\"label\": \"mixup\", \"set\": {\"tricks.mixup_alpha\": 0.2, \"optim.epochs\": 3}},"
                            "            {\"set\": {\"tricks.zero_gamma\": true}},"
                            "            {\"set\": {\"optim.nesterov\": false}}]}", &m), TB_OK);
    assert_int_equal(m.n_rows, 4);
    assert_string_equal(m.rows[2].label, "zero_gamma");
    assert_string_equal(m.rows[3].label, "no nesterov");
    assert_true(m.rows[2].cfg.tricks.mixup_alpha == 0); /* independent: not cumulative */
    assert_true(m.rows[2].cfg.tricks.zero_gamma);
    assert_int_equal(m.n_runs, 12);
    assert_int_equal(m.runs[0].seed, 10);
    assert_int_equal(m.runs[2].seed, 12);
    tb_matrix_free(&m);
}

static void test_axes_with_steps_and_rows(void **state)
{
    (void)state;
    tb_matrix m;
    assert_int_equal(expand("{\"name\": \"combo\","
                            " \"axes\": [{\"key\": \"model.variant\", \"values\": [\"A\", \"D\"], \"labels\": [\"ResNet\", \"ResNet-D\"]}],"
                            " \"steps\": [{\"label\": \"+ cosine\", \"set\": {\"schedule.type\": \"cosine\"}},"
                            "             {\"label\": \"+ ls\", \"set\": {\"tricks.label_smoothing\": 0.1}}],"
                            " \"baseline\": \"ResNet, baseline\","
                            " \"reference\": {\"ResNet, baseline\": {\"top1\": 75.3, \"top5\": 92.2}, \"ResNet-D, + ls\": {\"top1\": 78}}}",
                            &m), TB_OK);
    assert_int_equal(m.n_rows, 6);
    assert_string_equal(m.rows[0].label, "ResNet, baseline");
    assert_string_equal(m.rows[2].label, "ResNet, + ls");
    assert_string_equal(m.rows[5].label, "ResNet-D, + ls");
    assert_int_equal(m.rows[5].cfg.model.variant, 'D');
    assert_int_equal(m.rows[5].cfg.schedule.type, TB_SCHED_COSINE);
    assert_int_equal(m.rows[4].levels[0], 1);
    assert_int_equal(m.rows[4].levels[1], 1);
    assert_int_equal(m.n_refs, 3);
    assert_string_equal(m.refs[2].label, "ResNet-D, + ls");
    assert_true(m.refs[0].value == 75.3);
    char *ref = tb_matrix_reference_json(&m);
    assert_string_equal(ref, "{\"ResNet, baseline\":{\"top1\":75.3,\"top5\":92.2},\"ResNet-D, + ls\":{\"top1\":78}}");
    free(ref);
    tb_matrix_free(&m);

    assert_int_equal(expand("{\"name\": \"combo2\","
                            " \"axes\": [{\"key\": \"optim.batch\", \"values\": [128, 256]}],"
                            " \"rows\": [{\"label\": \"plain\"}, {\"label\": \"mix\", \"set\": {\"tricks.mixup_alpha\": 0.2, \"optim.epochs\": 2}}]}",
                            &m), TB_OK);
    assert_int_equal(m.n_rows, 4);
    assert_string_equal(m.rows[1].label, "batch=128, mix");
    assert_int_equal(m.rows[3].cfg.optim.batch, 256);
    assert_true(m.rows[3].cfg.tricks.mixup_alpha == 0.2);
    assert_true(m.rows[2].cfg.tricks.mixup_alpha == 0);
    tb_matrix_free(&m);
}

static void test_exclude_include(void **state)
{
    (void)state;
    tb_matrix m;
    assert_int_equal(expand("{\"name\": \"ex\","
                            " \"axes\": [{\"key\": \"model.variant\", \"values\": [\"A\", \"B\", \"D\"]},"
                            "            {\"key\": \"model.width\", \"values\": [0.25, 0.5]}],"
                            " \"exclude\": [{\"model.variant\": \"B\", \"model.width\": 0.250}, {\"label\": \"variant=D, width=0.5\"}],"
                            " \"include\": [{\"label\": \"big\", \"set\": {\"model.name\": \"resnet50\"}}, {\"set\": {\"optim.lr\": 0.4}}]}",
                            &m), TB_OK);
    assert_int_equal(m.n_rows, 6);
    assert_string_equal(m.rows[0].label, "variant=A, width=0.25");
    assert_string_equal(m.rows[1].label, "variant=A, width=0.5");
    assert_string_equal(m.rows[2].label, "variant=B, width=0.5");
    assert_string_equal(m.rows[3].label, "variant=D, width=0.25");
    assert_string_equal(m.rows[4].label, "big");
    assert_null(m.rows[4].levels);
    assert_string_equal(m.rows[5].label, "lr=0.4");
    assert_string_equal(m.rows[4].cfg.model.name, "resnet50");
    assert_int_equal(m.rows[4].cfg.model.variant, 'B'); /* include rows start from the base */
    tb_matrix_free(&m);

    expect_error("{\"name\": \"ex\", \"axes\": [{\"key\": \"model.variant\", \"values\": [\"A\", \"D\"]}],"
                 " \"exclude\": [{\"model.variant\": \"C\"}]}",
                 "m.json: exclude[0] matches no row of the grid");
    expect_error("{\"name\": \"ex\", \"axes\": [{\"key\": \"model.variant\", \"values\": [\"A\", \"D\"]}],"
                 " \"exclude\": [{\"model.varaint\": \"A\"}]}",
                 "m.json: exclude[0]: unknown key 'model.varaint' (did you mean 'model.variant'?)");
    expect_error("{\"name\": \"ex\", \"axes\": [{\"key\": \"model.variant\", \"values\": [\"A\"]}],"
                 " \"exclude\": [{\"model.variant\": \"A\"}]}",
                 "m.json: every row is excluded; nothing to run");
}

static void test_teachers_first_and_shards(void **state)
{
    (void)state;
    tb_matrix m;
    assert_int_equal(expand("{\"name\": \"kd\", \"seeds\": [1, 2],"
                            " \"rows\": [{\"label\": \"student\"},"
                            "            {\"label\": \"distilled\", \"set\": {\"tricks.distill\": {\"teacher\": \"teacher\", \"temperature\": 4}}},"
                            "            {\"label\": \"teacher\", \"set\": {\"model.name\": \"resnet50\"}}],"
                            " \"baseline\": \"student\"}", &m), TB_OK);
    assert_int_equal(m.n_runs, 6);
    assert_string_equal(label(&m, 0), "teacher");
    assert_string_equal(label(&m, 1), "teacher");
    assert_string_equal(label(&m, 2), "student");
    assert_string_equal(label(&m, 4), "distilled");
    assert_int_equal(m.runs[4].teacher, 0);
    assert_int_equal(m.runs[5].teacher, 1); /* same seed */
    assert_int_equal(m.runs[5].seed, 2);
    assert_int_equal(m.runs[2].teacher, -1);
    /* the report keeps the matrix order */
    assert_string_equal(m.rows[0].label, "student");
    /* every run in exactly one shard; a student in its teacher's shard */
    for (int n = 1; n <= 4; n++) {
        for (int i = 0; i < m.n_runs; i++) {
            int owners = 0;
            for (int s = 1; s <= n; s++)
                owners += tb_matrix_in_shard(&m, i, s, n);
            assert_int_equal(owners, 1);
            if (m.runs[i].teacher >= 0)
                for (int s = 1; s <= n; s++)
                    assert_int_equal(tb_matrix_in_shard(&m, i, s, n), tb_matrix_in_shard(&m, m.runs[i].teacher, s, n));
        }
    }
    tb_matrix_free(&m);

    expect_error("{\"name\": \"kd\", \"rows\": [{\"label\": \"a\"}, {\"label\": \"b\", \"set\": "
                 "{\"tricks.distill.teacher\": \"teachr\"}}, {\"label\": \"teacher\", \"set\": {\"optim.lr\": 0.2}}]}",
                 "m.json: row 'b': tricks.distill.teacher: no row is labelled 'teachr' (did you mean 'teacher'?)");
    expect_error("{\"name\": \"kd\", \"rows\": [{\"label\": \"a\", \"set\": {\"tricks.distill.teacher\": \"b\"}},"
                 " {\"label\": \"b\", \"set\": {\"tricks.distill.teacher\": \"a\"}}]}",
                 "m.json: row 'a': distillation teachers form a cycle");
}

static void test_matrix_errors(void **state)
{
    (void)state;
    expect_error("{\"name\": \"x\", \"axis\": []}", "m.json: unknown matrix key 'axis' (did you mean 'axes'?)");
    expect_error("{\"name\": \"x\", \"optim\": {}}", "m.json: unknown matrix key 'optim' (run config keys go inside \"base\")");
    expect_error("{\"description\": \"x\"}", "m.json: missing \"name\"");
    expect_error("{\"name\": \"x\", \"axes\": [{\"key\": \"model.variant\", \"values\": [\"A\", \"E\"]}]}",
                 "m.json: axes[0].values[1]: model.variant: 'E' is not one of A, B, C, D");
    expect_error("{\"name\": \"x\", \"axes\": [{\"key\": \"model.varient\", \"values\": [\"A\"]}]}",
                 "m.json: axes[0]: unknown key 'model.varient' (did you mean 'model.variant'?)");
    expect_error("{\"name\": \"x\", \"axes\": [{\"key\": \"model.variant\", \"values\": []}]}",
                 "m.json: axes[0]: values: expected a non-empty array, got [] (an array)");
    expect_error("{\"name\": \"x\", \"steps\": [{\"label\": \"+ a\", \"set\": {\"schedule.type\": \"cosine\"}},"
                 " {\"label\": \"+ b\", \"set\": {\"tricks.label_smothing\": 0.1}}]}",
                 "m.json: steps[1].set: unknown key 'tricks.label_smothing' (did you mean 'tricks.label_smoothing'?)");
    expect_error("{\"name\": \"x\", \"rows\": [{\"label\": \"a\", \"set\": {\"optim.lr\": \"fast\"}}]}",
                 "m.json: rows[0].set: optim.lr: expected a number, got \"fast\" (a string)");
    expect_error("{\"name\": \"x\", \"rows\": [{\"label\": \"m\", \"set\": {\"tricks.mixup_alpha\": 0.2, \"tricks.mixup_off_epochs\": 1}}]}",
                 "m.json: row 'm': tricks.mixup_off_epochs: 1 leaves no epoch with mixup/cutmix (optim.epochs is 1)");
    expect_error("{\"name\": \"x\", \"steps\": [{\"label\": \"a\"}], \"rows\": [{\"label\": \"b\"}]}",
                 "m.json: give either \"steps\" (cumulative) or \"rows\" (independent), not both");
    expect_error("{\"name\": \"x\", \"rows\": [{\"label\": \"a\"}, {\"label\": \"a\", \"set\": {\"optim.lr\": 0.2}}]}",
                 "m.json: two rows have the label 'a'");
    expect_error("{\"name\": \"x\", \"rows\": [{\"label\": \"a\"}, {\"label\": \"b\", \"set\": {\"optim.lr\": 0.1}}]}",
                 "m.json: rows 'a' and 'b' resolve to the same config (seed 0); does a step or axis value repeat the "
                 "base? exclude one of them");
    expect_error("{\"name\": \"x\", \"rows\": [{\"label\": \"a\"}], \"baseline\": \"A\"}",
                 "m.json: baseline: no row is labelled 'A' (did you mean 'a'?)");
    expect_error("{\"name\": \"x\", \"rows\": [{\"label\": \"a\"}], \"reference\": {\"b\": {\"top1\": 1}}}",
                 "m.json: reference: no row is labelled 'b' (did you mean 'a'?)");
    expect_error("{\"name\": \"x\", \"rows\": [{\"label\": \"a\"}], \"reference\": {\"a\": {\"top1\": \"76\"}}}",
                 "m.json: reference: a.top1: expected a number, got \"76\" (a string)");
    expect_error("{\"name\": \"x\", \"axes\": [{\"key\": \"seed\", \"values\": [1, 2]}]}",
                 "m.json: axes[0]: seed: vary the seed with the matrix's \"seeds\"");
    expect_error("{\"name\": \"x\", \"rows\": [{\"label\": \"a\", \"set\": {\"seed\": 3}}]}",
                 "m.json: rows[0].set: seed: vary the seed with the matrix's \"seeds\"");
    expect_error("{\"name\": \"x\", \"seeds\": [1, 1]}", "m.json: seeds: 1 is listed twice");
    expect_error("{\"name\": \"x\", \"seeds\": [-1]}", "m.json: seeds[0]: expected an integer in [0, 2^53], got -1 (a number)");
    expect_error("{\"name\": \"x\", \"base\": {\"optim\": {\"lr\": -1}}}", "m.json: base: optim.lr: -1 is out of range (0, 100]");
}

static void test_base_from_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/tb_test_matrix_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/base.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"model\": {\"width\": 0.5}}", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/m.json", dir);
    f = fopen(path, "w");
    fputs("{\"name\": \"file\", \"base\": \"base.json\", \"axes\": [{\"key\": \"optim.batch\", \"values\": [32, 64]}]}", f);
    fclose(f);
    tb_matrix m;
    assert_int_equal(tb_matrix_load(path, &m), TB_OK);
    assert_true(m.rows[1].cfg.model.width == 0.5f);
    assert_string_equal(m.rows[1].label, "batch=64");
    assert_string_equal(m.file, path);
    assert_non_null(strstr(m.definition, "\"base\":\"base.json\""));
    tb_matrix_free(&m);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_axes_grid),
        cmocka_unit_test(test_steps_cumulative),
        cmocka_unit_test(test_rows_independent),
        cmocka_unit_test(test_axes_with_steps_and_rows),
        cmocka_unit_test(test_exclude_include),
        cmocka_unit_test(test_teachers_first_and_shards),
        cmocka_unit_test(test_matrix_errors),
        cmocka_unit_test(test_base_from_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
