/* Internal to harness/data: resampling a box of a u8 HWC image to f32.
 *
 * Separable triangle (bilinear) filter as PIL's Image.resize(BILINEAR) and
 * torchvision's antialiased resize: when downscaling by s > 1 the filter
 * support widens to s source pixels, so large reductions average instead of
 * aliasing; when upscaling it is plain bilinear interpolation with
 * half-pixel centres (align_corners = false). Pixels outside the box but
 * inside the image take part at the box edges (a crop of a larger image),
 * pixels outside the image never do.
 */
#ifndef TB_RESAMPLE_H
#define TB_RESAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Buffers reused between calls (one per worker); zero-initialise. */
typedef struct tb_resample_scratch {
    float *coef;   /* (dw + dh) * taps weights */
    int *first;    /* (dw + dh) first source index of each output */
    int *count;    /* (dw + dh) number of taps used */
    size_t coef_cap, idx_cap;
    float *rows;   /* horizontally filtered rows: rows * dw * c */
    size_t rows_cap;
} tb_resample_scratch;

void tb_resample_scratch_free(tb_resample_scratch *s);

/* Resamples the box (y0, x0, bh, bw), in source pixel units (fractional
 * allowed, inside 0..sh x 0..sw), of src (sh x sw x c, u8) into dst
 * (dh x dw x c, f32 in the 0..255 scale), mirrored left-right when flip
 * (free here, unlike a separate pass). */
int tb_resample_box(const uint8_t *src, int sh, int sw, int c, const double box[4], float *dst, int dh, int dw,
                    bool flip, tb_resample_scratch *s);

#endif
