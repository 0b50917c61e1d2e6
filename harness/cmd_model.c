/* trickbench model: parameter and multiply-accumulate counts of a model.
 * Builds the graph without allocating it (tb_graph_finalize(g, false)), so
 * any size is cheap to count. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/cli.h"
#include "harness/commands.h"
#include "kernels/backend.h"
#include "kernels/error.h"
#include "models/graph.h"
#include "models/models.h"

static const char usage[] =
    "usage: trickbench model NAME [--variant A|B|C|D] [--image S] [--classes K]\n"
    "                        [--stem imagenet|small] [--width W] [--channels C] [--json]\n\n"
    "Prints the parameter and multiply-accumulate counts of a model: trainable\n"
    "parameters (BatchNorm running statistics excluded, as PyTorch's parameters())\n"
    "and MACs per image of the convolutions and linear layers.\n\n"
    "models: resnet18 resnet34 resnet50 resnet101 resnet152 (variants A-D of the\n"
    "        paper), mobilenet_v1, inception_v3\n"
    "  --variant V   ResNet variant: A (stride on the first 1x1), B (torchvision),\n"
    "                C (deep stem), D (C + average-pool shortcut); default B\n"
    "  --image S     input size in pixels (default 224; 299 for inception_v3)\n"
    "  --classes K   classifier outputs (default 1000)\n"
    "  --stem S      imagenet (default) or small (28-32 px images: 3x3 stride-1 conv, no max pool)\n"
    "  --width W     width multiplier (default 1)\n"
    "  --channels C  input channels (default 3)\n"
    "  --json        print one JSON object instead of the summary\n";

typedef struct model_counts {
    int64_t params, macs;
    int conv, bn, linear, tensors;
} model_counts;

static int parse_width(const char *value, float *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(value ? value : "", &end);
    if (!value || !*value || *end || errno || !isfinite(v) || v <= 0.0)
        return tb_fail(TB_ERR_USAGE, "--width: '%s' is not a positive number", value ? value : "");
    *out = (float)v;
    return TB_OK;
}

static bool is_value_option(const char *opt)
{
    static const char *const opts[] = {"--variant", "--image", "--classes", "--channels", "--stem", "--width"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        if (!strcmp(opt, opts[i]))
            return true;
    return false;
}

/* Applies one option (with its value) to the spec. */
static int apply_option(tb_model_spec *s, const char *opt, const char *val)
{
    long v = 0;
    if (!strcmp(opt, "--variant")) {
        if (!val || strlen(val) != 1)
            return tb_fail(TB_ERR_USAGE, "--variant: '%s' is not one of A, B, C, D", val ? val : "");
        s->variant = (char)(val[0] >= 'a' && val[0] <= 'd' ? val[0] - 'a' + 'A' : val[0]);
        return TB_OK;
    }
    if (!strcmp(opt, "--image"))
        return tb_cli_parse_int(opt, val, 1, 8192, &v) ? TB_ERR_USAGE : (s->image = (int)v, TB_OK);
    if (!strcmp(opt, "--classes"))
        return tb_cli_parse_int(opt, val, 1, 1000000, &v) ? TB_ERR_USAGE : (s->classes = (int)v, TB_OK);
    if (!strcmp(opt, "--channels"))
        return tb_cli_parse_int(opt, val, 1, 1024, &v) ? TB_ERR_USAGE : (s->channels = (int)v, TB_OK);
    if (!strcmp(opt, "--stem"))
        return tb_stem_parse(val ? val : "", &s->stem) ? TB_ERR_USAGE : TB_OK;
    if (!strcmp(opt, "--width"))
        return parse_width(val, &s->width);
    return tb_fail(TB_ERR_USAGE, "unknown option '%s'", opt);
}

static int count_model(const tb_model_spec *spec, model_counts *c)
{
    tb_backend *be = NULL;
    tb_graph *g = NULL;
    memset(c, 0, sizeof *c);
    int rc = tb_cpu_backend_create(&be, 1);
    if (rc == TB_OK)
        rc = tb_graph_create(&g, be, TB_F32, 1);
    if (rc == TB_OK)
        rc = tb_model_build(g, spec);
    if (rc == TB_OK)
        rc = tb_graph_finalize(g, false);
    if (rc == TB_OK) {
        c->params = tb_graph_param_elements(g);
        c->macs = tb_graph_macs(g);
        c->tensors = tb_graph_n_params(g);
        for (int i = 0; i < tb_graph_n_nodes(g); i++) {
            tb_node_info info;
            tb_graph_node_info(g, i, &info);
            c->conv += info.kind == TB_NODE_CONV;
            c->bn += info.kind == TB_NODE_BN;
            c->linear += info.kind == TB_NODE_LINEAR;
        }
    }
    tb_graph_destroy(g);
    if (be)
        tb_backend_destroy(be);
    return rc;
}

/* 25557032 -> "25,557,032" */
static const char *grouped(int64_t v, char *buf, size_t size)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%" PRId64, v);
    size_t o = 0;
    for (int i = 0; i < n && o + 1 < size; i++) {
        if (i > 0 && (n - i) % 3 == 0 && o + 2 < size)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

static void print_summary(const tb_model_spec *s, const model_counts *c)
{
    char a[40], b[40], variant[16] = "";
    if (!strncmp(s->name, "resnet", 6))
        snprintf(variant, sizeof variant, "variant %c, ", s->variant);
    printf("%s: %s%s stem, width %g, %dx%dx%d input, %d classes\n", s->name, variant, tb_stem_name(s->stem),
           (double)s->width, s->image, s->image, s->channels, s->classes);
    printf("  parameters  %15s  (%.2f M; trainable, BatchNorm running statistics excluded)\n",
           grouped(c->params, a, sizeof a), (double)c->params / 1e6);
    bool giga = c->macs >= 1000000000;
    printf("  MACs/image  %15s  (%.2f %s; convolutions and linear layers)\n", grouped(c->macs, b, sizeof b),
           (double)c->macs / (giga ? 1e9 : 1e6), giga ? "G" : "M");
    printf("  layers      %d conv, %d batch norm, %d linear; %d parameter tensors\n", c->conv, c->bn, c->linear,
           c->tensors);
}

static cJSON *raw_int(int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v); /* exact integers beyond 2^31 */
    return cJSON_CreateRaw(buf);
}

static int print_json(const tb_model_spec *s, const model_counts *c)
{
    char variant[2] = {s->variant, '\0'};
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "name", s->name) && cJSON_AddStringToObject(o, "variant", variant) &&
              cJSON_AddStringToObject(o, "stem", tb_stem_name(s->stem)) &&
              cJSON_AddNumberToObject(o, "image", s->image) && cJSON_AddNumberToObject(o, "channels", s->channels) &&
              cJSON_AddNumberToObject(o, "width", s->width) && cJSON_AddNumberToObject(o, "classes", s->classes);
    if (ok) {
        cJSON_AddItemToObject(o, "params", raw_int(c->params));
        cJSON_AddItemToObject(o, "macs", raw_int(c->macs));
        cJSON_AddItemToObject(o, "conv_layers", raw_int(c->conv));
        cJSON_AddItemToObject(o, "bn_layers", raw_int(c->bn));
        cJSON_AddItemToObject(o, "linear_layers", raw_int(c->linear));
        cJSON_AddItemToObject(o, "param_tensors", raw_int(c->tensors));
    }
    char *text = ok ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!text)
        return tb_fail(TB_ERR_NOMEM, "out of memory printing JSON");
    puts(text);
    free(text);
    return TB_OK;
}

int tb_cmd_model(int argc, char **argv)
{
    if (tb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return TB_EXIT_OK;
    }
    if (argc < 2 || argv[1][0] == '-')
        return tb_cli_usage_error("model", "a model name is required (e.g. resnet50)");
    tb_model_spec spec;
    int rc = tb_model_spec_default(&spec, argv[1]);
    if (rc != TB_OK)
        return tb_cli_usage_error("model", "%s", tb_errmsg());
    bool json = false;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
            continue;
        }
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strncmp(argv[i], "--", 2))
            return tb_cli_usage_error("model", "unexpected argument '%s'", argv[i]);
        if (!is_value_option(argv[i]))
            return tb_cli_usage_error("model", "unknown option '%s'", argv[i]);
        if (!val)
            return tb_cli_usage_error("model", "option %s needs a value", argv[i]);
        if (apply_option(&spec, argv[i], val) != TB_OK)
            return tb_cli_usage_error("model", "%s", tb_errmsg());
        i++;
    }
    if (tb_model_spec_validate(&spec) != TB_OK)
        return tb_cli_usage_error("model", "%s", tb_errmsg());
    model_counts c;
    rc = count_model(&spec, &c);
    if (rc != TB_OK)
        return tb_cli_report_error("model", rc);
    if (json)
        rc = print_json(&spec, &c);
    else
        print_summary(&spec, &c);
    return rc == TB_OK ? TB_EXIT_OK : tb_cli_report_error("model", rc);
}
