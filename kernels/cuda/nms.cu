/* Greedy non-maximum suppression on the device for rpn_proposals and
 * detect_boxes (box.cuh, tb_cuda_nms): the standard bitmask scheme of
 * torchvision's CUDA nms, with the sweep on the device instead of the host.
 *
 *  1. masks: one block of 64 threads per (row block, column block, list) of
 *     64 boxes each, upper triangle only; thread i sets bit q of
 *     mask[i][column] when IoU(box i, box q) > iou for a later box q. The IoU
 *     is tb_box_iou_areas, bitwise the CPU's (box.cuh), so every bit is the
 *     decision the CPU's sweep would take for that pair.
 *  2. sweep: one block per list keeps the suppressed set as bits in shared
 *     memory (invalid boxes start suppressed). Per 64-box chunk, one thread
 *     walks the chunk in order (a box not suppressed is kept and ORs in its
 *     own chunk's word, prefetched into shared memory), then every thread ORs
 *     the kept boxes' words of the later chunks in parallel. That is the
 *     CPU's sweep: a box is kept unless an earlier kept box suppresses it; it
 *     stops at max_keep boxes.
 * Masks cost len * ceil(len / 64) * 8 bytes per list (18 MB for 12000 boxes),
 * taken from the workspace; lists longer than 64 * NMS_MAX_WORDS boxes do not
 * fit the sweep's shared memory (TB_ERR_UNSUPPORTED, known on the host). */
#include "kernels/cuda/box.cuh"

#define NMS_BOXES 64            /* boxes per mask word */
#define NMS_SWEEP_THREADS 256
#define NMS_MAX_WORDS 5632      /* 44 KiB of suppression bits: lists up to 360448 boxes */
#define NMS_MAX_GRID_Z 65535

static int64_t nms_words(int64_t len) { return (len + NMS_BOXES - 1) / NMS_BOXES; }

/* ---------------------------------------------------------------- kernels */

static __global__ void nms_mask_kernel(uint64_t *mask, const float *boxes, int64_t seg0, int64_t len, int64_t words,
                                       float iou)
{
    int64_t col = blockIdx.x, row = blockIdx.y, seg = seg0 + blockIdx.z;
    if (col < row)
        return; /* the sweep reads only a box's own and later columns */
    __shared__ float cbox[NMS_BOXES * 4];
    __shared__ float carea[NMS_BOXES];
    int64_t col0 = col * NMS_BOXES, row0 = row * NMS_BOXES;
    int col_n = (int)(len - col0 < NMS_BOXES ? len - col0 : NMS_BOXES);
    int row_n = (int)(len - row0 < NMS_BOXES ? len - row0 : NMS_BOXES);
    const float *list = boxes + seg * len * 4;
    int tid = threadIdx.x;
    if (tid < col_n) {
        for (int q = 0; q < 4; q++)
            cbox[4 * tid + q] = list[(col0 + tid) * 4 + q];
        carea[tid] = tb_box_area(cbox + 4 * tid);
    }
    __syncthreads();
    if (tid >= row_n)
        return;
    float a[4];
    for (int q = 0; q < 4; q++)
        a[q] = list[(row0 + tid) * 4 + q];
    float area_a = tb_box_area(a);
    uint64_t bits = 0;
    for (int q = row == col ? tid + 1 : 0; q < col_n; q++)
        if (tb_box_iou_areas(a, area_a, cbox + 4 * q, carea[q]) > iou)
            bits |= 1ull << q;
    mask[(seg * len + row0 + tid) * words + col] = bits;
}

/* One block per list; dynamic shared memory: `words` u64 of suppression bits. */
static __global__ void nms_sweep_kernel(int32_t *keep, int32_t *kept, const uint64_t *mask, const uint8_t *valid,
                                        int64_t len, int64_t words, int64_t max_keep, int64_t keep_cap)
{
    extern __shared__ uint64_t removed[];
    __shared__ uint64_t diag[NMS_BOXES];
    __shared__ int32_t chunk[NMS_BOXES];
    __shared__ int chunk_n;
    __shared__ int64_t total;
    int64_t seg = blockIdx.x;
    const uint8_t *v = valid + seg * len;
    const uint64_t *m = mask + seg * len * words;
    for (int64_t w = threadIdx.x; w < words; w += blockDim.x) {
        uint64_t bits = 0;
        for (int q = 0; q < NMS_BOXES; q++) {
            int64_t t = w * NMS_BOXES + q;
            if (t < len && !v[t])
                bits |= 1ull << q;
        }
        removed[w] = bits;
    }
    if (threadIdx.x == 0)
        total = 0;
    __syncthreads();
    for (int64_t c = 0; c < words; c++) {
        int64_t c0 = c * NMS_BOXES;
        int cn = (int)(len - c0 < NMS_BOXES ? len - c0 : NMS_BOXES);
        if (threadIdx.x < cn)
            diag[threadIdx.x] = m[(c0 + threadIdx.x) * words + c];
        __syncthreads();
        if (threadIdx.x == 0) {
            uint64_t cur = removed[c];
            int64_t before = total;
            int nk = 0;
            for (int q = 0; q < cn && before + nk < max_keep; q++) {
                if ((cur >> q) & 1ull)
                    continue;
                chunk[nk++] = (int32_t)(c0 + q);
                cur |= diag[q];
            }
            for (int q = 0; q < nk; q++)
                keep[seg * keep_cap + before + q] = chunk[q];
            total = before + nk;
            chunk_n = nk;
        }
        __syncthreads();
        if (total >= max_keep) /* the same value in every thread: a uniform exit */
            break;
        int nk = chunk_n;
        for (int64_t w = c + 1 + threadIdx.x; nk > 0 && w < words; w += blockDim.x) {
            uint64_t acc = removed[w];
            for (int q = 0; q < nk; q++)
                acc |= m[(int64_t)chunk[q] * words + w];
            removed[w] = acc;
        }
        __syncthreads();
    }
    if (threadIdx.x == 0)
        kept[seg] = (int32_t)total;
}

/* ---------------------------------------------------------------- launchers */

size_t tb_cuda_nms_mask_bytes(const tb_cuda_nms *p)
{
    return (size_t)p->segments * (size_t)p->len * (size_t)nms_words(p->len) * sizeof(uint64_t);
}

int tb_cuda_nms_check(const tb_cuda_nms *p)
{
    TB_CHECK(nms_words(p->len) <= NMS_MAX_WORDS, TB_ERR_UNSUPPORTED,
             "nms: %lld boxes per list exceed the %d the device sweep holds in shared memory", (long long)p->len,
             NMS_MAX_WORDS * NMS_BOXES);
    TB_CHECK(p->segments >= 1 && p->max_keep >= 1, TB_ERR_INVALID, "nms: %lld lists, at most %lld kept",
             (long long)p->segments, (long long)p->max_keep);
    return TB_OK;
}

int tb_cuda_nms_run(tb_cuda_ctx *ctx, const tb_cuda_nms *p, uint64_t *mask, const float *boxes,
                    const uint8_t *valid, int32_t *keep, int32_t *kept)
{
    TB_TRY(tb_cuda_nms_check(p));
    if (p->len < 1) {
        CUDA_CHECK(cudaMemsetAsync(kept, 0, (size_t)p->segments * sizeof(int32_t), ctx->stream));
        return TB_OK;
    }
    int64_t words = nms_words(p->len);
    for (int64_t s0 = 0; s0 < p->segments; s0 += NMS_MAX_GRID_Z) {
        int64_t z = p->segments - s0 < NMS_MAX_GRID_Z ? p->segments - s0 : NMS_MAX_GRID_Z;
        dim3 grid((unsigned)words, (unsigned)words, (unsigned)z);
        nms_mask_kernel<<<grid, NMS_BOXES, 0, ctx->stream>>>(mask, boxes, s0, p->len, words, p->iou);
        CUDA_CHECK_LAUNCH();
    }
    int64_t keep_cap = p->len < p->max_keep ? p->len : p->max_keep;
    nms_sweep_kernel<<<(unsigned)p->segments, NMS_SWEEP_THREADS, (size_t)words * sizeof(uint64_t), ctx->stream>>>(
        keep, kept, mask, valid, p->len, words, p->max_keep, keep_cap);
    CUDA_CHECK_LAUNCH();
    return TB_OK;
}
