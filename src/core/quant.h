/* Block quantization of weights: f32/bf16/f16 -> Q8_0 / Q4_0 (layouts in core/tensor.h),
 * and back. Deterministic: the same input gives the same bytes on every machine and
 * for any thread count (round to nearest, ties to even).
 *
 *   Q8_0: d = max|w| / 127,                  q = clamp(round(w / d), -127, 127)
 *   Q4_0: m = the w of largest |w|, d = m / -8, q = clamp(round(w / d) + 8, 0, 15)
 *         (m itself lands exactly on q = 0, so the block's extreme is kept exactly
 *          up to the f16 rounding of d)
 * d is stored as f16 and q is computed with that rounded d.
 *
 * Q4_0X4: the same blocks, bytes and values as Q4_0, with the rows interleaved in
 * groups of four for the int8 dot-product GEMV (one vpdpbusd covers a block of four
 * rows; kernels/cpu/cpu_quant.c). For W [N, K], N % 4 == 0, nb blocks per row, G = N / 4:
 *   units:  G * nb units of 64 bytes, unit (g, b) at 64 * (g * nb + b); its dword i
 *           (i = 0..15) is row 4g + i % 4, nibble bytes 4 * (i / 4) .. + 3 of that row's
 *           block b (byte j: element j in the low nibble, j + 16 in the high one);
 *   scales: after the units, f16 d of (g, b, row 4g + r) at index 4 * (g * nb + b) + r.
 * Units start 64-byte aligned when the tensor does; bytes = N * ds_quant_row_bytes. */
#ifndef DS_QUANT_H
#define DS_QUANT_H

#include <stdint.h>

#include "core/pool.h"
#include "core/status.h"
#include "core/tensor.h"

/* f32 -> IEEE half, round to nearest even; overflow gives inf, NaN stays NaN. */
uint16_t ds_f32_to_f16(float f);

/* Blocks per row of k elements, and the bytes of such a row. */
static inline int64_t ds_quant_blocks(int64_t k) { return (k + DS_QBLOCK - 1) / DS_QBLOCK; }
static inline size_t ds_quant_row_bytes(ds_dtype t, int64_t k) {
    return ds_dtype_bytes(t, ds_quant_blocks(k) * DS_QBLOCK);
}

/* Q4_0X4: the 64-byte units of group g, the f16 scales of group g, and where nibble
 * byte j (0..15) of row r (0..3) sits in a unit. */
static inline const uint8_t *ds_x4_units(const ds_tensor *W, int64_t g) {
    return (const uint8_t *)W->data + 64 * (size_t)(g * (W->stride[0] / DS_QBLOCK));
}
static inline const uint16_t *ds_x4_scales(const ds_tensor *W, int64_t g) {
    int64_t nb = W->stride[0] / DS_QBLOCK;
    return (const uint16_t *)ds_x4_units(W, W->shape[0] / 4) + 4 * g * nb;
}
static inline int ds_x4_byte(int r, int j) { return 4 * (4 * (j / 4) + r) + j % 4; }

/* Row-by-row formats (Q8_0, Q4_0) only: */
/* One row of k elements of any float dtype (F32/BF16/F16) -> quantized row dst
 * (ds_quant_row_bytes(t, k) bytes; the padding of the last block quantizes zeros). */
void ds_quantize_row(ds_dtype t, const void *src, ds_dtype src_dtype, int64_t k, void *dst);
/* Quantized row of k elements -> f32 (the reference dequantizer). */
void ds_dequantize_row(ds_dtype t, const void *src, int64_t k, float *dst);

/* Element (row, col) of a Q4_0X4 tensor. */
float ds_x4_get(const ds_tensor *W, int64_t row, int64_t col);
/* Row `row` of any quantized 2-D tensor (either layout), first k elements, as f32. */
void ds_dequantize_w_row(const ds_tensor *W, int64_t row, int64_t k, float *dst);

/* Quantizes a 2-D float tensor src [N, K] (rows may be strided) into dst_data
 * (N * ds_quant_row_bytes(t, K) bytes, caller-owned) and fills *dst with the view.
 * Rows are spread over pool (may be NULL). Q4_0X4 needs N % 4 == 0
 * (ds_quant_fits(t, N)); other N get Q4_0. */
static inline int ds_quant_fits(ds_dtype t, int64_t n_rows) { return !ds_dtype_is_x4(t) || n_rows % 4 == 0; }
void ds_quantize_tensor(ds_pool *pool, const ds_tensor *src, ds_dtype t, void *dst_data, ds_tensor *dst);

#endif
