/* PASCAL VOC detection evaluation (see voc_map.h for the rules).
 *
 * Matching only involves detections and gt boxes of one image, and the
 * devkit's global descending-score order restricted to one image is that
 * image's own stable descending-score order; so every detection is settled
 * (TP, FP or ignored) when its image is added, and only (score, outcome,
 * sequence number) is kept for the global sort at the end. */
#include "harness/eval/voc_map.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/error.h"

/* One settled detection. seq (the order of addition) breaks score ties. */
typedef struct voc_det {
    float score;
    int32_t tp;   /* 1 TP, 0 FP */
    int64_t seq;
} voc_det;

typedef struct voc_class {
    voc_det *dets;
    int64_t len, cap;
    int64_t gt, gt_difficult, ignored;
    double ap_11point, ap_area;
} voc_class;

struct tb_voc_eval {
    int classes;
    voc_class *cls;
    int64_t next_seq;
    bool stale;          /* images added since the APs were computed */
    /* per-image scratch, grown as needed */
    int *order;
    uint8_t *used;
    int order_cap, used_cap;
};

int tb_voc_eval_create(tb_voc_eval **out, int classes)
{
    TB_CHECK(out != NULL, TB_ERR_INVALID, "voc eval: out is NULL");
    *out = NULL;
    TB_CHECK(classes > 0, TB_ERR_INVALID, "voc eval: classes must be > 0, got %d", classes);
    tb_voc_eval *ev = calloc(1, sizeof *ev);
    if (ev)
        ev->cls = calloc((size_t)classes, sizeof *ev->cls);
    if (!ev || !ev->cls) {
        free(ev);
        return tb_fail(TB_ERR_NOMEM, "voc eval: out of memory for %d classes", classes);
    }
    ev->classes = classes;
    ev->stale = true;
    *out = ev;
    return TB_OK;
}

void tb_voc_eval_destroy(tb_voc_eval *ev)
{
    if (!ev)
        return;
    for (int c = 0; c < ev->classes; c++)
        free(ev->cls[c].dets);
    free(ev->cls);
    free(ev->order);
    free(ev->used);
    free(ev);
}

void tb_voc_eval_reset(tb_voc_eval *ev)
{
    for (int c = 0; c < ev->classes; c++) {
        voc_class *k = &ev->cls[c];
        k->len = 0;
        k->gt = k->gt_difficult = k->ignored = 0;
    }
    ev->next_seq = 0;
    ev->stale = true;
}

int tb_voc_eval_classes(const tb_voc_eval *ev) { return ev->classes; }

double tb_voc_box_iou(const float *a, const float *b)
{
    double iw = fmin((double)a[2], (double)b[2]) - fmax((double)a[0], (double)b[0]);
    double ih = fmin((double)a[3], (double)b[3]) - fmax((double)a[1], (double)b[1]);
    /* the devkit skips pairs without overlap; this also keeps ua > 0 */
    if (iw <= 0.0 || ih <= 0.0)
        return 0.0;
    double inter = iw * ih;
    double ua = ((double)a[2] - a[0]) * ((double)a[3] - a[1]) + ((double)b[2] - b[0]) * ((double)b[3] - b[1]) -
                inter;
    return inter / ua;
}

static bool box_finite(const float *b)
{
    return isfinite(b[0]) && isfinite(b[1]) && isfinite(b[2]) && isfinite(b[3]);
}

/* Everything add_image reads is checked before anything changes. */
static int check_image(const tb_voc_eval *ev, const float *gt_boxes, const int32_t *gt_labels, int gt_count,
                       const float *det_boxes, const float *det_scores, const int32_t *det_labels,
                       int det_count)
{
    TB_CHECK(gt_count >= 0 && det_count >= 0, TB_ERR_INVALID,
             "voc eval: negative count (gt %d, detections %d)", gt_count, det_count);
    TB_CHECK(gt_count == 0 || (gt_boxes && gt_labels), TB_ERR_INVALID,
             "voc eval: %d gt boxes but boxes or labels are NULL", gt_count);
    TB_CHECK(det_count == 0 || (det_boxes && det_scores && det_labels), TB_ERR_INVALID,
             "voc eval: %d detections but boxes, scores or labels are NULL", det_count);
    for (int i = 0; i < gt_count; i++) {
        TB_CHECK(gt_labels[i] >= 0 && gt_labels[i] < ev->classes, TB_ERR_INVALID,
                 "voc eval: gt box %d has label %d, outside 0..%d", i, gt_labels[i], ev->classes - 1);
        TB_CHECK(box_finite(gt_boxes + 4 * i), TB_ERR_INVALID, "voc eval: gt box %d is not finite", i);
    }
    for (int i = 0; i < det_count; i++) {
        TB_CHECK(det_labels[i] >= 0 && det_labels[i] < ev->classes, TB_ERR_INVALID,
                 "voc eval: detection %d has label %d, outside 0..%d", i, det_labels[i], ev->classes - 1);
        TB_CHECK(box_finite(det_boxes + 4 * i) && isfinite(det_scores[i]), TB_ERR_INVALID,
                 "voc eval: detection %d has a non-finite box or score", i);
    }
    return TB_OK;
}

/* Grows the scratch arrays and every class array that this image appends to,
 * so that the update below cannot fail half way. */
static int reserve(tb_voc_eval *ev, int gt_count, const int32_t *det_labels, int det_count)
{
    if (det_count > ev->order_cap) {
        int *p = realloc(ev->order, (size_t)det_count * sizeof *p);
        TB_CHECK(p != NULL, TB_ERR_NOMEM, "voc eval: out of memory for %d detections", det_count);
        ev->order = p;
        ev->order_cap = det_count;
    }
    if (gt_count > ev->used_cap) {
        uint8_t *p = realloc(ev->used, (size_t)gt_count);
        TB_CHECK(p != NULL, TB_ERR_NOMEM, "voc eval: out of memory for %d gt boxes", gt_count);
        ev->used = p;
        ev->used_cap = gt_count;
    }
    for (int i = 0; i < det_count; i++) {
        voc_class *k = &ev->cls[det_labels[i]];
        /* at most det_count more per class; amortised doubling */
        if (k->len + det_count <= k->cap)
            continue;
        int64_t cap = k->cap ? k->cap : 64;
        while (cap < k->len + det_count)
            cap *= 2;
        voc_det *p = realloc(k->dets, (size_t)cap * sizeof *p);
        TB_CHECK(p != NULL, TB_ERR_NOMEM, "voc eval: out of memory for %lld detections of class %d",
                 (long long)cap, det_labels[i]);
        k->dets = p;
        k->cap = cap;
    }
    return TB_OK;
}

/* Descending score, then ascending index: a total order, so the sort is stable. */
static int cmp_image_det(const void *pa, const void *pb, void *scores)
{
    int a = *(const int *)pa, b = *(const int *)pb;
    float sa = ((const float *)scores)[a], sb = ((const float *)scores)[b];
    if (sa != sb)
        return sa > sb ? -1 : 1;
    return (a > b) - (a < b);
}

int tb_voc_eval_add_image(tb_voc_eval *ev, const float *gt_boxes, const int32_t *gt_labels,
                          const uint8_t *gt_difficult, int gt_count, const float *det_boxes,
                          const float *det_scores, const int32_t *det_labels, int det_count)
{
    TB_TRY(check_image(ev, gt_boxes, gt_labels, gt_count, det_boxes, det_scores, det_labels, det_count));
    TB_TRY(reserve(ev, gt_count, det_labels, det_count));
    ev->stale = true;
    for (int j = 0; j < gt_count; j++) {
        bool difficult = gt_difficult && gt_difficult[j];
        ev->cls[gt_labels[j]].gt_difficult += difficult;
        ev->cls[gt_labels[j]].gt += !difficult;
    }
    if (gt_count > 0)
        memset(ev->used, 0, (size_t)gt_count);
    for (int i = 0; i < det_count; i++)
        ev->order[i] = i;
    /* glibc's qsort_r (_GNU_SOURCE): the scores are the comparison's context */
    if (det_count > 1)
        qsort_r(ev->order, (size_t)det_count, sizeof *ev->order, cmp_image_det, (void *)det_scores);

    for (int r = 0; r < det_count; r++) {
        int d = ev->order[r];
        int32_t c = det_labels[d];
        /* the gt of its class with the highest IoU, the first on ties (strict >) */
        double ovmax = -INFINITY;
        int jmax = -1;
        for (int j = 0; j < gt_count; j++) {
            if (gt_labels[j] != c)
                continue;
            double ov = tb_voc_box_iou(det_boxes + 4 * d, gt_boxes + 4 * j);
            if (ov > ovmax) {
                ovmax = ov;
                jmax = j;
            }
        }
        voc_class *k = &ev->cls[c];
        int32_t tp = 0;
        if (jmax >= 0 && ovmax >= TB_VOC_IOU_THRESHOLD) {
            if (gt_difficult && gt_difficult[jmax]) {
                k->ignored++;  /* neither TP nor FP */
                continue;
            }
            tp = !ev->used[jmax];
            ev->used[jmax] = 1;
        }
        k->dets[k->len++] = (voc_det){ .score = det_scores[d], .tp = tp, .seq = ev->next_seq + d };
    }
    ev->next_seq += det_count;
    return TB_OK;
}

/* Checks a batch tensor: dtype, rank, leading dim >= images, the other dims. */
static int check_batch_tensor(const tb_tensor *t, const char *name, tb_dtype dt, int ndim, int images,
                              int64_t dim1, int64_t dim2)
{
    TB_CHECK(t != NULL && t->data != NULL, TB_ERR_INVALID, "voc eval batch: %s is missing", name);
    char buf[64];
    TB_CHECK(t->dtype == dt && t->ndim == ndim && t->shape[0] >= images &&
                 (ndim < 2 || dim1 < 0 || t->shape[1] == dim1) && (ndim < 3 || t->shape[2] == dim2),
             TB_ERR_INVALID, "voc eval batch: %s is %s, expected %s of rank %d for %d images", name,
             tb_shape_str(t, buf, sizeof buf), tb_dtype_name(dt), ndim, images);
    return TB_OK;
}

int tb_voc_eval_add_batch(tb_voc_eval *ev, const tb_tensor *gt_boxes, const tb_tensor *gt_labels,
                          const tb_tensor *gt_difficult, const tb_tensor *gt_count,
                          const tb_tensor *det_boxes, const tb_tensor *det_scores,
                          const tb_tensor *det_labels, const tb_tensor *det_count, int images)
{
    TB_CHECK(images >= 0, TB_ERR_INVALID, "voc eval batch: images must be >= 0, got %d", images);
    TB_TRY(check_batch_tensor(gt_boxes, "gt_boxes", TB_F32, 3, images, -1, 4));
    int64_t g = gt_boxes->shape[1];
    TB_TRY(check_batch_tensor(gt_labels, "gt_labels", TB_I32, 2, images, g, 0));
    bool has_difficult = gt_difficult && gt_difficult->data;
    if (has_difficult)
        TB_TRY(check_batch_tensor(gt_difficult, "gt_difficult", TB_U8, 2, images, g, 0));
    TB_TRY(check_batch_tensor(gt_count, "gt_count", TB_I32, 1, images, 0, 0));
    TB_TRY(check_batch_tensor(det_boxes, "det_boxes", TB_F32, 3, images, -1, 4));
    int64_t d = det_boxes->shape[1];
    TB_TRY(check_batch_tensor(det_scores, "det_scores", TB_F32, 2, images, d, 0));
    TB_TRY(check_batch_tensor(det_labels, "det_labels", TB_I32, 2, images, d, 0));
    TB_TRY(check_batch_tensor(det_count, "det_count", TB_I32, 1, images, 0, 0));

    const int32_t *gc = gt_count->data, *dc = det_count->data;
    for (int i = 0; i < images; i++) {
        TB_CHECK(gc[i] >= 0 && gc[i] <= g && dc[i] >= 0 && dc[i] <= d, TB_ERR_INVALID,
                 "voc eval batch: image %d has gt_count %d (capacity %lld), det_count %d (capacity %lld)", i,
                 gc[i], (long long)g, dc[i], (long long)d);
        int rc = tb_voc_eval_add_image(
            ev, (const float *)gt_boxes->data + (int64_t)i * g * 4, (const int32_t *)gt_labels->data + i * g,
            has_difficult ? (const uint8_t *)gt_difficult->data + i * g : NULL, gc[i],
            (const float *)det_boxes->data + (int64_t)i * d * 4, (const float *)det_scores->data + i * d,
            (const int32_t *)det_labels->data + i * d, dc[i]);
        if (rc != TB_OK)
            return tb_err_context(rc, "image %d of the batch", i);
    }
    return TB_OK;
}

double tb_voc_ap(const double *rec, const double *prec, int64_t n, tb_voc_metric metric)
{
    double ap = 0.0;
    if (metric == TB_VOC_AP_11POINT) {
        for (int k = 0; k <= 10; k++) {
            double t = k * 0.1;  /* numpy arange's values, not the nearest double to k/10 */
            double p = 0.0;
            for (int64_t i = 0; i < n; i++)
                if (rec[i] >= t && prec[i] > p)
                    p = prec[i];
            ap += p / 11.0;
        }
        return ap;
    }
    /* Envelope p(r) = max prec at recall >= r: a running max from the end.
     * Each step of the curve adds (rec[i] - rec[i-1]) * envelope at i; the
     * final step to recall 1 has precision 0 and adds nothing. */
    double env = 0.0;
    for (int64_t i = n - 1; i >= 0; i--) {
        env = fmax(env, prec[i]);
        double prev = i > 0 ? rec[i - 1] : 0.0;
        if (rec[i] != prev)
            ap += (rec[i] - prev) * env;
    }
    return ap;
}

static int cmp_det(const void *pa, const void *pb)
{
    const voc_det *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

/* Sorts each class's detections and computes both APs. */
static int compute(tb_voc_eval *ev)
{
    if (!ev->stale)
        return TB_OK;
    int64_t most = 0;
    for (int c = 0; c < ev->classes; c++)
        most = ev->cls[c].len > most ? ev->cls[c].len : most;
    double *curve = malloc((size_t)(2 * most + 1) * sizeof *curve);
    TB_CHECK(curve != NULL, TB_ERR_NOMEM, "voc eval: out of memory for a curve of %lld points", (long long)most);
    for (int c = 0; c < ev->classes; c++) {
        voc_class *k = &ev->cls[c];
        if (k->gt == 0) {
            k->ap_11point = k->ap_area = NAN;  /* recall undefined */
            continue;
        }
        if (k->len > 1)
            qsort(k->dets, (size_t)k->len, sizeof *k->dets, cmp_det);
        double *rec = curve, *prec = curve + most;
        int64_t tp = 0;
        for (int64_t i = 0; i < k->len; i++) {
            tp += k->dets[i].tp;
            rec[i] = (double)tp / (double)k->gt;
            prec[i] = (double)tp / (double)(i + 1);
        }
        k->ap_11point = tb_voc_ap(rec, prec, k->len, TB_VOC_AP_11POINT);
        k->ap_area = tb_voc_ap(rec, prec, k->len, TB_VOC_AP_AREA);
    }
    free(curve);
    ev->stale = false;
    return TB_OK;
}

int tb_voc_eval_class(tb_voc_eval *ev, int cls, tb_voc_class_result *out)
{
    TB_CHECK(cls >= 0 && cls < ev->classes, TB_ERR_INVALID, "voc eval: class %d outside 0..%d", cls,
             ev->classes - 1);
    TB_TRY(compute(ev));
    const voc_class *k = &ev->cls[cls];
    int64_t tp = 0;
    for (int64_t i = 0; i < k->len; i++)
        tp += k->dets[i].tp;
    *out = (tb_voc_class_result){
        .gt = k->gt,
        .gt_difficult = k->gt_difficult,
        .detections = k->len + k->ignored,
        .tp = tp,
        .fp = k->len - tp,
        .ignored = k->ignored,
        .ap_11point = k->ap_11point,
        .ap_area = k->ap_area,
    };
    return TB_OK;
}

int tb_voc_eval_map(tb_voc_eval *ev, tb_voc_metric metric, double *map, int *counted)
{
    TB_CHECK(metric == TB_VOC_AP_11POINT || metric == TB_VOC_AP_AREA, TB_ERR_INVALID,
             "voc eval: unknown metric %d", (int)metric);
    TB_TRY(compute(ev));
    double sum = 0.0;
    int n = 0;
    for (int c = 0; c < ev->classes; c++) {
        if (ev->cls[c].gt == 0)
            continue;  /* NaN AP: left out of the mean (GluonCV's nanmean) */
        sum += metric == TB_VOC_AP_11POINT ? ev->cls[c].ap_11point : ev->cls[c].ap_area;
        n++;
    }
    *map = n > 0 ? sum / n : NAN;
    if (counted)
        *counted = n;
    return TB_OK;
}
