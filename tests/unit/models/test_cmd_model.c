/* `trickbench model`: the summary, exactly one JSON object with --json, and
 * usage errors. argv[1] is the trickbench binary (meson passes it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

static const char *exe;

/* Runs `trickbench ARGS` and returns stdout (malloc'd); *status gets the exit code. */
static char *run(const char *args, int *status)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>/dev/null", exe, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    size_t got;
    while ((got = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 2)
            out = realloc(out, cap *= 2);
    }
    out[len] = '\0';
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

static cJSON *run_json(const char *args)
{
    int status;
    char *out = run(args, &status);
    assert_int_equal(status, 0);
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithOpts(out, &end, 0);
    assert_non_null(o);
    assert_true(cJSON_IsObject(o));
    /* exactly one object: nothing but whitespace after it */
    for (; *end; end++)
        assert_true(*end == ' ' || *end == '\n' || *end == '\t' || *end == '\r');
    free(out);
    return o;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static void test_json(void **state)
{
    (void)state;
    cJSON *o = run_json("model resnet50 --variant D --json");
    assert_true(num(o, "params") == 25576264);
    assert_true(num(o, "macs") == 4328824832.0);
    assert_string_equal(str(o, "name"), "resnet50");
    assert_string_equal(str(o, "variant"), "D");
    assert_string_equal(str(o, "stem"), "imagenet");
    assert_true(num(o, "image") == 224);
    cJSON_Delete(o);
    o = run_json("model mobilenet_v1 --json");
    assert_true(num(o, "params") == 4231976);
    assert_true(num(o, "macs") == 568740352);
    cJSON_Delete(o);
    o = run_json("model resnet18 --stem small --image 32 --classes 10 --width 0.5 --json");
    assert_string_equal(str(o, "stem"), "small");
    assert_true(num(o, "image") == 32);
    assert_true(num(o, "classes") == 10);
    assert_true(num(o, "width") == 0.5);
    cJSON_Delete(o);
}

static void test_summary(void **state)
{
    (void)state;
    int status;
    char *out = run("model resnet18", &status);
    assert_int_equal(status, 0);
    assert_non_null(strstr(out, "11,689,512"));
    assert_non_null(strstr(out, "1,814,073,344"));
    free(out);
}

static void test_usage_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {"model", "model vgg16", "model resnet18 --variant E",
                                      "model resnet18 --frobnicate 1", "model resnet18 --image",
                                      "model inception_v3 --image 64", "model resnet18 --width -1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int status;
        free(run(bad[i], &status));
        if (status != 64)
            fail_msg("'%s' exited with %d, want 64", bad[i], status);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-TO-TRICKBENCH\n", argv[0]);
        return 1;
    }
    exe = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_usage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
