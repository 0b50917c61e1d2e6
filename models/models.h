/* The model registry: ResNet-18/34/50/101/152 in the paper's variants A-D,
 * MobileNet v1 and Inception-V3, built into a tb_graph.
 *
 * Use:
 *   tb_model_spec spec;
 *   tb_model_spec_default(&spec, "resnet50");        (or tb_model_spec_from_config)
 *   spec.variant = 'D';
 *   tb_graph_create(&g, be, TB_F32, batch);
 *   tb_model_build(g, &spec);                        input -> ... -> logits {n, classes}
 *   tb_graph_finalize(g, true);
 *   tb_model_init(g, spec.init, seed);
 * With tb_graph_finalize(g, false) only the counts are available
 * (tb_graph_param_elements, tb_graph_macs): what `trickbench model` prints.
 *
 * Decisions (where the paper, torchvision and timm differ):
 *  - ResNet variants follow the paper (section 4.1). A: stride 2 in the first
 *    1x1 conv of a downsampling bottleneck; B: the stride on the 3x3 conv
 *    (torchvision); C: B with the deep stem (3x3 convs of 32, 32, 64
 *    channels); D: C plus a 2x2 stride-2 average pool (ceil_mode, padding not
 *    counted, as timm's avg_down) before a stride-1 1x1 conv in the
 *    downsampling shortcut. Basic blocks (resnet18/34) have no 1x1 conv in
 *    the main path, so A and B build the same network.
 *  - Names: torchvision's for A/B (conv1, bn1, layer1.0.conv1,
 *    layer1.0.downsample.0/.1, fc); timm's resnet50d for C/D (deep stem
 *    conv1.0, conv1.1 (bn), conv1.3, conv1.4, conv1.6, then bn1; in D the
 *    shortcut is downsample.0 = the pool (no parameters, absent where the
 *    stride is 1, as timm's nn.Identity), downsample.1 conv, downsample.2 bn).
 *  - The "small" stem (28-32 px images) replaces the ImageNet stem by one
 *    3x3 stride-1 conv of 64 x width channels + BN + ReLU and no max pool,
 *    named conv1/bn1 for every variant. For C and D it replaces the deep stem
 *    too; D keeps its average-pool shortcuts (what timm's resnet50d with a
 *    CIFAR stem does). MobileNet's small stem is its first conv with stride
 *    1 instead of 2 (the usual CIFAR MobileNet). Inception-V3 has no small
 *    stem (it needs at least 75 px).
 *  - Width multiplier: every channel count c becomes max(1, round(c x width))
 *    (bottleneck outputs: round(planes x width) x 4). Inception-V3 takes no
 *    width multiplier. For MobileNet's usual multipliers (0.25-1.0) this
 *    equals timm's rounding to multiples of 8.
 *  - BatchNorm: eps 1e-5, momentum 0.1 (PyTorch) for ResNet and MobileNet,
 *    eps 1e-3 for Inception-V3 (torchvision). The last BN of every residual
 *    block carries TB_BN_LAST_IN_RESIDUAL_BLOCK (for the zero-gamma trick).
 *  - MobileNet v1 uses ReLU, as the MobileNet paper (Howard et al. 2017) and
 *    the Bag-of-Tricks paper; Keras and timm use ReLU6. Parameter counts and
 *    MACs are the same. Names are timm's mobilenetv1_100 (conv_stem, bn1,
 *    blocks.S.B.conv_dw/bn1/conv_pw/bn2, classifier).
 *  - Inception-V3 is torchvision's (Conv2d_1a_3x3.conv, Mixed_5b.branch1x1.bn,
 *    ..., fc) without the auxiliary classifier: the graph has one output, so
 *    AuxLogits (3,326,696 parameters at 1000 classes) is not built.
 *  - dropout > 0 inserts dropout before the classifier (torchvision's
 *    Inception-V3 uses 0.5 there; set it in the config to match).
 */
#ifndef TB_MODELS_H
#define TB_MODELS_H

#include <stdint.h>

#include "models/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

struct tb_model_config; /* harness/config.h: models/ does not depend on the harness */

typedef enum tb_model_stem {
    TB_STEM_IMAGENET = 0, /* the network's own stem: 7x7 s2 + max pool (A/B), deep stem (C/D), ... */
    TB_STEM_SMALL         /* for 28-32 px images: one 3x3 stride-1 conv, no max pool */
} tb_model_stem;

typedef enum tb_init_kind {
    TB_INIT_KAIMING = 0,  /* torchvision: conv kaiming normal (fan_out, ReLU gain), fc PyTorch's default */
    TB_INIT_XAVIER        /* the paper: uniform(-a, a), a = sqrt(6 / (fan_in + fan_out)) */
} tb_init_kind;

#define TB_MODEL_NAME_LEN 32

typedef struct tb_model_spec {
    char name[TB_MODEL_NAME_LEN]; /* resnet18|34|50|101|152, mobilenet_v1, inception_v3 */
    char variant;                 /* 'A'..'D' for ResNets; 'B' (the default) for the others */
    tb_model_stem stem;
    float width;                  /* width multiplier (ResNet, MobileNet); 1 for Inception-V3 */
    int classes;                  /* logits */
    int image;                    /* input height = width in pixels */
    int channels;                 /* input channels (3 RGB, 1 grey) */
    tb_init_kind init;
    float dropout;                /* before the classifier; 0 = none */
} tb_model_spec;

/* Fills the defaults for `name`: variant B, ImageNet stem, width 1, 1000
 * classes, 224 px (299 for inception_v3), 3 channels, Kaiming init, no
 * dropout. An unknown name is TB_ERR_INVALID naming the known ones. */
int tb_model_spec_default(tb_model_spec *spec, const char *name);

/* Converts a run config's model section. image and channels come from the
 * dataset; dataset_classes is used when cfg->classes is 0. stem "auto" picks
 * the small stem for images <= 64 px (never for inception_v3). */
int tb_model_spec_from_config(tb_model_spec *spec, const struct tb_model_config *cfg, int image, int channels,
                              int dataset_classes);

/* Checks a spec (name, variant, width, sizes) without building anything. */
int tb_model_spec_validate(const tb_model_spec *spec);

/* Adds the model's nodes to a created, empty graph: input {n, image, image,
 * channels} -> ... -> output logits {n, classes}. Returns the graph's status. */
int tb_model_build(tb_graph *g, const tb_model_spec *spec);

/* Initialises every parameter and buffer of a finalized, allocated graph:
 * conv/linear weights by `init`, biases 0, BN gamma 1 and beta 0, running
 * mean 0 and variance 1, num_batches_tracked 0. A pure function of seed (each
 * parameter draws from its own stream). Ends with tb_graph_sync_params. */
int tb_model_init(tb_graph *g, tb_init_kind init, uint64_t seed);

int tb_init_parse(const char *s, tb_init_kind *out);      /* "kaiming" | "xavier" */
const char *tb_init_name(tb_init_kind init);
int tb_stem_parse(const char *s, tb_model_stem *out);     /* "imagenet" | "small" */
const char *tb_stem_name(tb_model_stem stem);

/* The registered model names, NULL-terminated. */
const char *const *tb_model_names(void);

#ifdef __cplusplus
}
#endif
#endif
