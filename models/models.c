/* The model registry: names, specs, validation and dispatch to the builders. */
#include "models/models.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "harness/config.h"
#include "kernels/error.h"
#include "models/layers.h"

typedef enum model_family { FAMILY_RESNET, FAMILY_MOBILENET_V1, FAMILY_INCEPTION_V3 } model_family;

static const char *const model_names[] = {"resnet18",     "resnet34",     "resnet50", "resnet101",
                                          "resnet152",    "mobilenet_v1", "inception_v3", NULL};

#define INCEPTION_MIN_IMAGE 75 /* torchvision: the smallest input the reductions leave >= 1 px */
#define MAX_WIDTH 16.0f

const char *const *tb_model_names(void) { return model_names; }

static int family_of(const char *name, model_family *out)
{
    *out = FAMILY_RESNET;
    int blocks[4];
    bool bottleneck;
    if (tb_resnet_layout(name, blocks, &bottleneck))
        *out = FAMILY_RESNET;
    else if (!strcmp(name, "mobilenet_v1"))
        *out = FAMILY_MOBILENET_V1;
    else if (!strcmp(name, "inception_v3"))
        *out = FAMILY_INCEPTION_V3;
    else
        return tb_fail(TB_ERR_INVALID,
                       "model: unknown model '%s' (known: resnet18, resnet34, resnet50, resnet101, resnet152, "
                       "mobilenet_v1, inception_v3)",
                       name);
    return TB_OK;
}

int tb_init_parse(const char *s, tb_init_kind *out)
{
    if (!strcasecmp(s, "kaiming"))
        *out = TB_INIT_KAIMING;
    else if (!strcasecmp(s, "xavier"))
        *out = TB_INIT_XAVIER;
    else
        return tb_fail(TB_ERR_INVALID, "model: unknown init '%s' (kaiming or xavier)", s);
    return TB_OK;
}

const char *tb_init_name(tb_init_kind init) { return init == TB_INIT_XAVIER ? "xavier" : "kaiming"; }

int tb_stem_parse(const char *s, tb_model_stem *out)
{
    if (!strcasecmp(s, "imagenet"))
        *out = TB_STEM_IMAGENET;
    else if (!strcasecmp(s, "small"))
        *out = TB_STEM_SMALL;
    else
        return tb_fail(TB_ERR_INVALID, "model: unknown stem '%s' (imagenet or small)", s);
    return TB_OK;
}

const char *tb_stem_name(tb_model_stem stem) { return stem == TB_STEM_SMALL ? "small" : "imagenet"; }

int tb_model_spec_default(tb_model_spec *spec, const char *name)
{
    model_family fam;
    memset(spec, 0, sizeof *spec);
    TB_CHECK(name != NULL, TB_ERR_INVALID, "model: no model name given");
    TB_TRY(family_of(name, &fam));
    snprintf(spec->name, sizeof spec->name, "%s", name);
    spec->variant = 'B';
    spec->stem = TB_STEM_IMAGENET;
    spec->width = 1.0f;
    spec->classes = 1000;
    spec->image = fam == FAMILY_INCEPTION_V3 ? 299 : 224;
    spec->channels = 3;
    spec->init = TB_INIT_KAIMING;
    spec->dropout = 0.0f;
    return TB_OK;
}

int tb_model_spec_from_config(tb_model_spec *spec, const struct tb_model_config *cfg, int image, int channels,
                              int dataset_classes)
{
    TB_TRY(tb_model_spec_default(spec, cfg->name));
    model_family fam;
    TB_TRY(family_of(cfg->name, &fam));
    spec->variant = cfg->variant ? cfg->variant : 'B';
    if (!cfg->stem[0] || !strcasecmp(cfg->stem, "auto"))
        spec->stem = (image <= 64 && fam != FAMILY_INCEPTION_V3) ? TB_STEM_SMALL : TB_STEM_IMAGENET;
    else if (tb_stem_parse(cfg->stem, &spec->stem) != TB_OK)
        return tb_err_context(TB_ERR_INVALID, "model.stem");
    spec->width = cfg->width > 0.0f ? cfg->width : 1.0f;
    spec->classes = cfg->classes > 0 ? cfg->classes : dataset_classes;
    spec->image = image;
    spec->channels = channels;
    if (cfg->init[0] && tb_init_parse(cfg->init, &spec->init) != TB_OK)
        return tb_err_context(TB_ERR_INVALID, "model.init");
    spec->dropout = cfg->dropout;
    return tb_model_spec_validate(spec);
}

int tb_model_spec_validate(const tb_model_spec *spec)
{
    model_family fam;
    TB_TRY(family_of(spec->name, &fam));
    const char *n = spec->name;
    TB_CHECK(spec->variant >= 'A' && spec->variant <= 'D', TB_ERR_INVALID,
             "model %s: variant '%c' is not one of A, B, C, D", n, spec->variant ? spec->variant : '?');
    TB_CHECK(fam == FAMILY_RESNET || spec->variant == 'B', TB_ERR_INVALID,
             "model %s: variants A-D are ResNet variants; %s has none (leave the variant at B)", n, n);
    TB_CHECK(spec->stem == TB_STEM_IMAGENET || spec->stem == TB_STEM_SMALL, TB_ERR_INVALID,
             "model %s: unknown stem %d", n, (int)spec->stem);
    TB_CHECK(isfinite(spec->width) && spec->width > 0.0f && spec->width <= MAX_WIDTH, TB_ERR_INVALID,
             "model %s: width multiplier %g is not in (0, %g]", n, (double)spec->width, (double)MAX_WIDTH);
    TB_CHECK(spec->classes >= 1, TB_ERR_INVALID, "model %s: classes must be >= 1 (got %d)", n, spec->classes);
    TB_CHECK(spec->image >= 1, TB_ERR_INVALID, "model %s: image size must be >= 1 (got %d)", n, spec->image);
    TB_CHECK(spec->channels >= 1, TB_ERR_INVALID, "model %s: input channels must be >= 1 (got %d)", n,
             spec->channels);
    TB_CHECK(spec->init == TB_INIT_KAIMING || spec->init == TB_INIT_XAVIER, TB_ERR_INVALID,
             "model %s: unknown init %d", n, (int)spec->init);
    TB_CHECK(spec->dropout >= 0.0f && spec->dropout < 1.0f, TB_ERR_INVALID,
             "model %s: dropout %g is not in [0, 1)", n, (double)spec->dropout);
    if (fam == FAMILY_INCEPTION_V3) {
        TB_CHECK(spec->width == 1.0f, TB_ERR_INVALID, "model inception_v3: no width multiplier (got %g)",
                 (double)spec->width);
        TB_CHECK(spec->stem == TB_STEM_IMAGENET, TB_ERR_INVALID,
                 "model inception_v3: no small stem (it needs images of at least %d px)", INCEPTION_MIN_IMAGE);
        TB_CHECK(spec->image >= INCEPTION_MIN_IMAGE, TB_ERR_INVALID,
                 "model inception_v3: images must be at least %d px (got %d)", INCEPTION_MIN_IMAGE, spec->image);
    }
    return TB_OK;
}

int tb_model_build(tb_graph *g, const tb_model_spec *spec)
{
    TB_TRY(tb_model_spec_validate(spec));
    TB_TRY(tb_graph_status(g));
    model_family fam;
    TB_TRY(family_of(spec->name, &fam));
    tb_value x = tb_g_input(g, spec->image, spec->image, spec->channels);
    tb_value logits = -1;
    switch (fam) {
    case FAMILY_RESNET: logits = tb_resnet_build(g, spec, x); break;
    case FAMILY_MOBILENET_V1: logits = tb_mobilenet_v1_build(g, spec, x); break;
    case FAMILY_INCEPTION_V3: logits = tb_inception_v3_build(g, spec, x); break;
    }
    int rc = tb_graph_status(g);
    if (rc == TB_OK)
        rc = tb_g_set_output(g, logits);
    if (rc != TB_OK)
        return tb_err_context(rc, "model %s (variant %c, %s stem, width %g, %d px)", spec->name, spec->variant,
                              tb_stem_name(spec->stem), (double)spec->width, spec->image);
    return TB_OK;
}
