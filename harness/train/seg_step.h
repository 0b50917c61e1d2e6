/* One FCN training step, shared by the segmentation trainer and
 * `trickbench bench --task segmentation`: upload -> forward -> pixel-wise
 * softmax CE of the main head and (weighted) of the auxiliary head, ignored
 * pixels (label -1) skipped -> backward -> SGD, with one host read at the
 * end (the two losses). Every buffer is allocated in tb_seg_step_init.
 */
#ifndef TB_TRAIN_SEG_STEP_H
#define TB_TRAIN_SEG_STEP_H

#include <stdbool.h>
#include <stdint.h>

#include "harness/config.h"
#include "kernels/backend.h"
#include "models/fcn.h"
#include "models/graph.h"

typedef struct tb_seg_step {
    tb_backend *be;
    tb_graph *g;
    tb_fcn net;
    int classes;
    bool aux;
    float aux_weight;
    tb_sgd_params sgd;        /* lr set per step */
    void *mem;
    tb_tensor labels;         /* i32 {n*h*w} */
    tb_tensor probs_main, probs_aux; /* f32 {n*h*w, classes} */
    tb_tensor losses;         /* f32 {2}: main, aux */
} tb_seg_step;

/* g is built by tb_fcn_build (net, spec) and finalized; cfg gives the
 * optimizer and segmentation.aux_weight. */
int tb_seg_step_init(tb_seg_step *s, tb_graph *g, const tb_fcn *net, const tb_fcn_spec *spec,
                     const tb_run_config *cfg);
void tb_seg_step_destroy(tb_seg_step *s);

/* One step on a host batch: f32 NHWC normalised images, i32 labels {n,h,w}
 * (-1 ignored); *loss = main + aux_weight * aux. */
int tb_seg_step_run(tb_seg_step *s, const float *images, const int32_t *labels, double lr, float *loss);

#endif
