/* Statistics (incomplete beta, Student t, Welch) against known values;
 * reports (mean, std, Δ, p, effects, reference) against hand-computed
 * numbers; golden markdown; CSV and JSON; query output and errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_trainer.h"
#include "harness/json_util.h"
#include "harness/matrix.h"
#include "harness/query.h"
#include "harness/report.h"
#include "harness/runner.h"
#include "harness/stats.h"
#include "harness/store.h"
#include "kernels/error.h"
#include "tb_build_config.h"

#define NEAR(a, b, tol) assert_true(fabs((a) - (b)) <= (tol))

static void test_incomplete_beta(void **state)
{
    (void)state;
    NEAR(tb_stats_incbeta(1, 1, 0.3), 0.3, 1e-14);                  /* uniform */
    NEAR(tb_stats_incbeta(1, 4, 0.2), 1 - pow(0.8, 4), 1e-14);     /* a = 1: 1 - (1-x)^b */
    NEAR(tb_stats_incbeta(2, 3, 0.4), 0.5248, 1e-13);
    NEAR(tb_stats_incbeta(0.5, 0.5, 0.3), 0.369010119565545382755, 1e-12);
    NEAR(tb_stats_incbeta(10, 20, 0.35), 0.592386663663905100201, 1e-12);
    NEAR(tb_stats_incbeta(10, 20, 0.35) + tb_stats_incbeta(20, 10, 0.65), 1.0, 1e-12); /* symmetry */
    assert_true(tb_stats_incbeta(3, 3, 0) == 0 && tb_stats_incbeta(3, 3, 1) == 1);
    assert_true(isnan(tb_stats_incbeta(-1, 3, 0.5)));
}

static void test_student_t(void **state)
{
    (void)state;
    const double pi = 3.14159265358979323846;
    for (double t = 0.0; t < 30; t += 0.7) {
        NEAR(tb_stats_t_pvalue(t, 1), 1 - 2 / pi * atan(t), 1e-12);      /* Cauchy */
        NEAR(tb_stats_t_pvalue(-t, 2), 1 - t / sqrt(2 + t * t), 1e-12); /* closed form for df = 2 */
    }
    NEAR(tb_stats_t_pvalue(2.228138851986, 10), 0.05, 1e-10);
    NEAR(tb_stats_t_pvalue(2.776445105198, 4), 0.05, 1e-10);
    NEAR(tb_stats_t_pvalue(12.7062047361747, 1), 0.05, 1e-10);
    NEAR(tb_stats_t_pvalue(1.959963984540054, 1e6), 0.0500002772952216658, 1e-9); /* ~ normal */
    NEAR(tb_stats_t_cdf(2.228138851986, 10), 0.975, 1e-10);
    NEAR(tb_stats_t_cdf(-2.228138851986, 10), 0.025, 1e-10);
    NEAR(tb_stats_t_cdf(0, 7), 0.5, 1e-15);
    assert_true(tb_stats_t_pvalue(INFINITY, 3) == 0);
}

static void test_welch_and_basic_stats(void **state)
{
    (void)state;
    const double a[] = {76.1, 76.5, 76.3, 76.0}, b[] = {75.2, 75.9, 75.1};
    double ma = tb_stats_mean(a, 4), mb = tb_stats_mean(b, 3);
    double sa = tb_stats_std(a, 4), sb = tb_stats_std(b, 3);
    NEAR(ma, 76.225, 1e-12);
    NEAR(sa, sqrt((0.015625 + 0.075625 + 0.005625 + 0.050625) / 3), 1e-12);
    tb_welch w;
    assert_true(tb_stats_welch(ma, sa * sa, 4, mb, sb * sb, 3, &w));
    NEAR(w.t, 3.0, 1e-9);
    NEAR(w.df, 2.78179515147249182280, 1e-9);
    NEAR(w.p, 0.0634607979729979836617, 1e-9);
    assert_false(tb_stats_welch(ma, 0.1, 1, mb, 0.1, 3, &w)); /* n < 2 */
    assert_false(tb_stats_welch(ma, 0, 3, mb, 0, 3, &w));     /* no variance */
    assert_true(isnan(w.p));
    const double odd[] = {3, 1, NAN, 2};
    NEAR(tb_stats_median(odd, 4), 2, 0);
    const double even[] = {4, 1, 3, 2};
    NEAR(tb_stats_median(even, 4), 2.5, 0);
    assert_true(isnan(tb_stats_std(a, 1)));
}

/* ---- reports over a database filled by the runner with the fake trainer ---- */

static char dir[256], db_path[320];

static const char ablation_json[] =
    "{\"name\": \"ablation\", \"description\": \"ResNet vs ResNet-D, with and without label smoothing.\","
    " \"base\": {\"optim\": {\"epochs\": 2}},"
    " \"axes\": [{\"key\": \"model.variant\", \"values\": [\"A\", \"D\"], \"labels\": [\"ResNet\", \"ResNet-D\"]}],"
    " \"rows\": [{\"label\": \"baseline\"}, {\"label\": \"+ ls\", \"set\": {\"tricks.label_smoothing\": 0.1}}],"
    " \"seeds\": [1, 2, 3], \"baseline\": \"ResNet, baseline\","
    " \"reference\": {\"ResNet, baseline\": {\"top1\": 75.3}, \"ResNet-D, + ls\": {\"top1\": 77.2}}}";

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tb_test_report_XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(db_path, sizeof db_path, "%s/r.db", dir);
    fake_reset();
    tb_matrix m;
    cJSON *root = cJSON_Parse(ablation_json);
    if (!root || tb_matrix_from_json(root, "ablation.json", NULL, &m) != TB_OK)
        return -1;
    cJSON_Delete(root);
    tb_runner_options o = {.db_path = db_path, .trainer = fake_trainer, .progress = TB_PROGRESS_QUIET};
    tb_runner_summary s;
    int rc = tb_runner_run(&m, &o, &s);
    tb_matrix_free(&m);
    if (rc != TB_OK)
        return -1;
    /* one more matrix whose only run failed: reports must say so */
    root = cJSON_Parse("{\"name\": \"broken\", \"base\": {\"optim\": {\"lr\": 0.7}}}");
    if (!root || tb_matrix_from_json(root, "broken.json", NULL, &m) != TB_OK)
        return -1;
    cJSON_Delete(root);
    fake.fail_lr = 0.7;
    rc = tb_runner_run(&m, &o, &s);
    tb_matrix_free(&m);
    return rc == TB_OK && s.failed == 1 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Runs a report into a string (malloc'd); returns the status. */
static int report(const tb_report_options *opt, char **text)
{
    tb_store *st;
    tb_store_options ro = {.read_only = true};
    assert_int_equal(tb_store_open(db_path, &ro, &st), TB_OK);
    size_t len;
    FILE *f = open_memstream(text, &len);
    int rc = tb_report_print(st, opt, f);
    fclose(f);
    tb_store_close(st);
    return rc;
}

static const cJSON *metric_of(const cJSON *rows, const char *label, const char *metric)
{
    for (const cJSON *r = rows->child; r; r = r->next)
        if (!strcmp(cJSON_GetObjectItem(r, "label")->valuestring, label))
            return cJSON_GetObjectItem(cJSON_GetObjectItem(r, "metrics"), metric);
    fail_msg("no row %s", label);
    return NULL;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void test_report_numbers(void **state)
{
    (void)state;
    tb_report_options opt = {.matrix = "ablation", .format = TB_FORMAT_JSON};
    char *text;
    assert_int_equal(report(&opt, &text), TB_OK);
    cJSON *root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "matrices"), 0);
    const cJSON *rows = cJSON_GetObjectItem(m, "rows");
    assert_int_equal(cJSON_GetArraySize(rows), 4);
    /* top1 per seed: 80 + 2 (D) + 0.5 (D with ls) + 10 ls + {0, 0.4, 0.2} */
    const cJSON *b = metric_of(rows, "ResNet, baseline", "top1");
    NEAR(num(b, "mean"), 80.2, 1e-9);
    NEAR(num(b, "std"), 0.2, 1e-9);
    NEAR(num(b, "n"), 3, 0);
    NEAR(num(b, "reference"), 75.3, 0);
    assert_true(isnan(num(b, "delta")) && isnan(num(b, "p")));
    const cJSON *ls = metric_of(rows, "ResNet, + ls", "top1");
    NEAR(num(ls, "mean"), 81.2, 1e-9);
    NEAR(num(ls, "delta"), 1.0, 1e-9);
    NEAR(num(ls, "p"), 0.00360223260910400352730, 1e-9); /* Welch, t = 6.124, df = 4 */
    const cJSON *d = metric_of(rows, "ResNet-D, baseline", "top1");
    NEAR(num(d, "delta"), 2.0, 1e-9);
    NEAR(num(d, "p"), 0.000255216749441926741, 1e-10);
    const cJSON *dls = metric_of(rows, "ResNet-D, + ls", "top1");
    NEAR(num(dls, "mean"), 83.7, 1e-9);
    NEAR(num(dls, "delta"), 3.5, 1e-9);
    NEAR(num(dls, "reference"), 77.2, 0);
    const cJSON *row0 = cJSON_GetArrayItem(rows, 0);
    NEAR(num(row0, "seconds_per_epoch"), 2.75, 1e-12); /* epochs of 2.5 and 3.0 s */
    NEAR(num(row0, "images_per_sec"), 1150, 1e-9);
    /* effects of the 2 x 2 grid, hand-computed from the cell means 80.2, 81.2, 82.2, 83.7 */
    const cJSON *eff = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "effects"), "top1");
    assert_int_equal(cJSON_GetArraySize(eff), 3);
    const cJSON *e0 = cJSON_GetArrayItem(eff, 0), *e1 = cJSON_GetArrayItem(eff, 1), *e2 = cJSON_GetArrayItem(eff, 2);
    assert_string_equal(cJSON_GetObjectItem(e0, "effect")->valuestring, "ResNet-D (vs ResNet)");
    NEAR(num(e0, "estimate"), 2.25, 1e-9);
    NEAR(num(e0, "se"), sqrt(0.04 / 3), 1e-9);
    NEAR(num(e0, "p"), 0.0000000499927871980688, 1e-12);
    assert_string_equal(cJSON_GetObjectItem(e1, "effect")->valuestring, "+ ls (vs baseline)");
    NEAR(num(e1, "estimate"), 1.25, 1e-9);
    NEAR(num(e1, "p"), 0.00000468154047665889536, 1e-11);
    assert_string_equal(cJSON_GetObjectItem(e2, "effect")->valuestring, "ResNet-D × + ls");
    NEAR(num(e2, "estimate"), 0.5, 1e-9);
    NEAR(num(e2, "se"), sqrt(0.04 * 4 / 3), 1e-9);
    NEAR(num(e2, "p"), 0.0622959307142642459, 1e-9);
    cJSON_Delete(root);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

/* Compares with a golden file; TB_UPDATE_GOLDEN=1 rewrites it instead. */
static void check_golden(const char *text, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tests/unit/harness/golden/%s", TB_SOURCE_ROOT, name);
    const char *update = getenv("TB_UPDATE_GOLDEN");
    if (update && !strcmp(update, "1")) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        return;
    }
    char *golden = read_file(path);
    if (!golden)
        fail_msg("missing golden file %s", path);
    if (strcmp(golden, text))
        fail_msg("output differs from %s:\n%s", path, text);
    free(golden);
}

static void test_golden_markdown(void **state)
{
    (void)state;
    char *text;
    tb_report_options opt = {.format = TB_FORMAT_MD};
    assert_int_equal(report(&opt, &text), TB_OK);
    check_golden(text, "report.md");
    free(text);
    tb_report_options pivot = {.matrix = "ablation", .pivot = "model.variant", .metrics = "top1,top5",
                               .format = TB_FORMAT_MD};
    assert_int_equal(report(&pivot, &text), TB_OK);
    check_golden(text, "report_pivot.md");
    free(text);
}

static void test_report_csv_and_options(void **state)
{
    (void)state;
    char *text;
    tb_report_options opt = {.matrix = "ablation", .metrics = "top5", .baseline = "ResNet-D, baseline",
                             .format = TB_FORMAT_CSV};
    assert_int_equal(report(&opt, &text), TB_OK);
    const char *header = "matrix,label,parts,runs,metric,n,mean,std,delta,p,reference,seconds_per_epoch,"
                         "images_per_sec\n";
    assert_memory_equal(text, header, strlen(header));
    assert_non_null(strstr(text, "ablation,\"ResNet, + ls\",\"{\"\"model.variant\"\":\"\"ResNet\"\",\"\"rows\"\":"
                                 "\"\"+ ls\"\"}\",3,top5,3,96.2,"));
    assert_non_null(strstr(text, "ablation,\"ResNet-D, baseline\",\"{\"\"model.variant\"\":\"\"ResNet-D\"\",\"\"rows\"\":"
                                 "\"\"baseline\"\"}\",3,top5,3,97.2,"));
    free(text);
    tb_report_options bad = {.matrix = "ablaton", .format = TB_FORMAT_MD};
    assert_int_equal(report(&bad, &text), TB_ERR_USAGE);
    free(text);
    assert_non_null(strstr(tb_errmsg(), "has no matrix 'ablaton' (did you mean 'ablation'?)"));
    tb_report_options metric = {.matrix = "ablation", .metrics = "top1,tpo5", .format = TB_FORMAT_MD};
    assert_int_equal(report(&metric, &text), TB_ERR_USAGE);
    free(text);
    assert_string_equal(tb_errmsg(), "--metrics: matrix 'ablation' has no metric 'tpo5' (did you mean 'top5'?)");
    tb_report_options base = {.matrix = "ablation", .baseline = "ResNet baseline", .format = TB_FORMAT_MD};
    assert_int_equal(report(&base, &text), TB_ERR_USAGE);
    free(text);
    assert_string_equal(tb_errmsg(),
                        "--baseline: matrix 'ablation' has no row 'ResNet baseline' (did you mean 'ResNet, baseline'?)");
    tb_report_options piv = {.matrix = "ablation", .pivot = "model.width", .format = TB_FORMAT_MD};
    assert_int_equal(report(&piv, &text), TB_ERR_USAGE);
    free(text);
    assert_string_equal(tb_errmsg(),
                        "--pivot: 'model.width' is not a dimension of matrix 'ablation'; its dimensions: model.variant, rows");
}

static int query(const char *sql, tb_format f, char **text)
{
    tb_store *st;
    tb_store_options ro = {.read_only = true};
    assert_int_equal(tb_store_open(db_path, &ro, &st), TB_OK);
    size_t len;
    FILE *out = open_memstream(text, &len);
    int rc = tb_query_run(st, sql, f, out);
    fclose(out);
    tb_store_close(st);
    return rc;
}

static void test_query(void **state)
{
    (void)state;
    char *text;
    assert_int_equal(query("SELECT label, n, round(mean, 2) AS mean FROM label_summary WHERE matrix = 'ablation' "
                           "AND metric = 'top1' ORDER BY row", TB_FORMAT_MD, &text), TB_OK);
    assert_string_equal(text, "| label              | n   | mean |\n"
                              "| ------------------ | --: | ---: |\n"
                              "| ResNet, baseline   |   3 | 80.2 |\n"
                              "| ResNet, + ls       |   3 | 81.2 |\n"
                              "| ResNet-D, baseline |   3 | 82.2 |\n"
                              "| ResNet-D, + ls     |   3 | 83.7 |\n");
    free(text);
    assert_int_equal(query("SELECT json_extract(config, '$.model.variant') AS variant, count(*) AS runs "
                           "FROM runs WHERE status = 'finished' GROUP BY 1 ORDER BY 1", TB_FORMAT_CSV, &text), TB_OK);
    assert_string_equal(text, "variant,runs\nA,6\nD,6\n");
    free(text);
    assert_int_equal(query("SELECT label, error FROM run_summary WHERE matrix = 'broken'", TB_FORMAT_JSON, &text),
                     TB_OK);
    assert_string_equal(text, "[{\n\t\t\"label\":\t\"baseline\",\n\t\t\"error\":\t\"fake failure at lr 0.7\"\n\t}]\n");
    free(text);
    assert_int_equal(query("SELEC 1", TB_FORMAT_MD, &text), TB_ERR_USAGE);
    free(text);
    assert_string_equal(tb_errmsg(), "SQL error: near \"SELEC\": syntax error");
    assert_int_equal(query("DELETE FROM runs", TB_FORMAT_MD, &text), TB_ERR_USAGE);
    free(text);
    assert_string_equal(tb_errmsg(), "the statement writes to the database; pass --write to allow that");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_incomplete_beta),
        cmocka_unit_test(test_student_t),
        cmocka_unit_test(test_welch_and_basic_stats),
        cmocka_unit_test(test_report_numbers),
        cmocka_unit_test(test_golden_markdown),
        cmocka_unit_test(test_report_csv_and_options),
        cmocka_unit_test(test_query),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
