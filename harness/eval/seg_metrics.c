/* Segmentation metrics from a confusion histogram (see seg_metrics.h). */
#include "harness/eval/seg_metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/error.h"

struct tb_seg_metrics {
    int classes;
    int ignore_label;
    int64_t *hist;  /* classes * classes, row = target, column = prediction */
};

int tb_seg_metrics_create(tb_seg_metrics **out, int classes, int ignore_label)
{
    TB_CHECK(out != NULL, TB_ERR_INVALID, "seg metrics: out is NULL");
    *out = NULL;
    /* the bound keeps classes * classes well inside size_t and memory */
    TB_CHECK(classes > 0 && classes <= 65536, TB_ERR_INVALID, "seg metrics: classes must be in 1..65536, got %d",
             classes);
    tb_seg_metrics *m = calloc(1, sizeof *m);
    if (m)
        m->hist = calloc((size_t)classes * (size_t)classes, sizeof *m->hist);
    if (!m || !m->hist) {
        free(m);
        return tb_fail(TB_ERR_NOMEM, "seg metrics: out of memory for a %d x %d histogram", classes, classes);
    }
    m->classes = classes;
    m->ignore_label = ignore_label;
    *out = m;
    return TB_OK;
}

void tb_seg_metrics_destroy(tb_seg_metrics *m)
{
    if (!m)
        return;
    free(m->hist);
    free(m);
}

void tb_seg_metrics_reset(tb_seg_metrics *m)
{
    memset(m->hist, 0, (size_t)m->classes * (size_t)m->classes * sizeof *m->hist);
}

int tb_seg_metrics_classes(const tb_seg_metrics *m) { return m->classes; }
int tb_seg_metrics_ignore_label(const tb_seg_metrics *m) { return m->ignore_label; }

static inline int64_t label_at(const void *p, tb_dtype dt, int64_t i)
{
    return dt == TB_U8 ? (int64_t)((const uint8_t *)p)[i] : (int64_t)((const int32_t *)p)[i];
}

static inline bool is_ignored(const tb_seg_metrics *m, int64_t target)
{
    return target < 0 || target == m->ignore_label;
}

int tb_seg_metrics_add(tb_seg_metrics *m, const void *pred, tb_dtype pred_dtype, const void *target,
                       tb_dtype target_dtype, int64_t count)
{
    TB_CHECK(count >= 0, TB_ERR_INVALID, "seg metrics: negative pixel count %lld", (long long)count);
    TB_CHECK((pred_dtype == TB_I32 || pred_dtype == TB_U8) && (target_dtype == TB_I32 || target_dtype == TB_U8),
             TB_ERR_INVALID, "seg metrics: label maps must be i32 or u8, got prediction %s and target %s",
             tb_dtype_name(pred_dtype), tb_dtype_name(target_dtype));
    TB_CHECK(count == 0 || (pred && target), TB_ERR_INVALID, "seg metrics: %lld pixels but a NULL label map",
             (long long)count);
    /* check every labelled pixel first, so that a bad map adds nothing */
    for (int64_t i = 0; i < count; i++) {
        int64_t t = label_at(target, target_dtype, i);
        if (is_ignored(m, t))
            continue;
        int64_t p = label_at(pred, pred_dtype, i);
        TB_CHECK(t < m->classes, TB_ERR_DATA, "seg metrics: target label %lld at pixel %lld is outside 0..%d "
                 "and is not the ignore label %d", (long long)t, (long long)i, m->classes - 1, m->ignore_label);
        TB_CHECK(p >= 0 && p < m->classes, TB_ERR_INVALID,
                 "seg metrics: predicted label %lld at pixel %lld is outside 0..%d", (long long)p, (long long)i,
                 m->classes - 1);
    }
    for (int64_t i = 0; i < count; i++) {
        int64_t t = label_at(target, target_dtype, i);
        if (!is_ignored(m, t))
            m->hist[t * m->classes + label_at(pred, pred_dtype, i)]++;
    }
    return TB_OK;
}

int tb_seg_metrics_add_tensors(tb_seg_metrics *m, const tb_tensor *pred, const tb_tensor *target)
{
    TB_CHECK(pred && target, TB_ERR_INVALID, "seg metrics: NULL tensor");
    char a[64], b[64];
    TB_CHECK(tb_numel(pred) == tb_numel(target), TB_ERR_INVALID,
             "seg metrics: prediction %s and target %s differ in size", tb_shape_str(pred, a, sizeof a),
             tb_shape_str(target, b, sizeof b));
    return tb_seg_metrics_add(m, pred->data, pred->dtype, target->data, target->dtype, tb_numel(pred));
}

int tb_seg_metrics_merge(tb_seg_metrics *dst, const tb_seg_metrics *src)
{
    TB_CHECK(dst->classes == src->classes && dst->ignore_label == src->ignore_label, TB_ERR_INVALID,
             "seg metrics merge: %d classes (ignore %d) into %d classes (ignore %d)", src->classes,
             src->ignore_label, dst->classes, dst->ignore_label);
    int64_t cells = (int64_t)dst->classes * dst->classes;
    for (int64_t i = 0; i < cells; i++)
        dst->hist[i] += src->hist[i];
    return TB_OK;
}

const int64_t *tb_seg_metrics_hist(const tb_seg_metrics *m) { return m->hist; }

int64_t tb_seg_metrics_labelled(const tb_seg_metrics *m)
{
    int64_t cells = (int64_t)m->classes * m->classes, sum = 0;
    for (int64_t i = 0; i < cells; i++)
        sum += m->hist[i];
    return sum;
}

int64_t tb_seg_metrics_correct(const tb_seg_metrics *m)
{
    int64_t sum = 0;
    for (int c = 0; c < m->classes; c++)
        sum += m->hist[(int64_t)c * m->classes + c];
    return sum;
}

double tb_seg_pixel_accuracy(const tb_seg_metrics *m)
{
    int64_t labelled = tb_seg_metrics_labelled(m);
    return labelled > 0 ? (double)tb_seg_metrics_correct(m) / (double)labelled : NAN;
}

/* Intersection and union of class c. */
static void class_areas(const tb_seg_metrics *m, int c, int64_t *inter, int64_t *uni)
{
    int64_t row = 0, col = 0, k = m->classes;
    for (int64_t j = 0; j < k; j++) {
        row += m->hist[c * k + j];  /* target c */
        col += m->hist[j * k + c];  /* predicted c */
    }
    *inter = m->hist[c * k + c];
    *uni = row + col - *inter;
}

double tb_seg_class_iou(const tb_seg_metrics *m, int cls)
{
    if (cls < 0 || cls >= m->classes)
        return NAN;
    int64_t inter, uni;
    class_areas(m, cls, &inter, &uni);
    return uni > 0 ? (double)inter / (double)uni : NAN;
}

double tb_seg_miou(const tb_seg_metrics *m, tb_seg_miou_mode mode)
{
    double sum = 0.0;
    int present = 0;
    for (int c = 0; c < m->classes; c++) {
        int64_t inter, uni;
        class_areas(m, c, &inter, &uni);
        if (uni > 0) {
            sum += (double)inter / (double)uni;
            present++;
        }
    }
    if (mode == TB_SEG_MIOU_ALL)
        return sum / m->classes;  /* absent classes add 0 to the sum */
    return present > 0 ? sum / present : NAN;
}
