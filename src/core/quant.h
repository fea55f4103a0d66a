/* Block quantization of weights: f32/bf16/f16 -> Q8_0 / Q4_0 (layouts in core/tensor.h),
 * and back. Deterministic: the same input gives the same bytes on every machine and
 * for any thread count (round to nearest, ties to even).
 *
 *   Q8_0: d = max|w| / 127,                  q = clamp(round(w / d), -127, 127)
 *   Q4_0: m = the w of largest |w|, d = m / -8, q = clamp(round(w / d) + 8, 0, 15)
 *         (m itself lands exactly on q = 0, so the block's extreme is kept exactly
 *          up to the f16 rounding of d)
 * d is stored as f16 and q is computed with that rounded d. */
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

/* One row of k elements of any float dtype (F32/BF16/F16) -> quantized row dst
 * (ds_quant_row_bytes(t, k) bytes; the padding of the last block quantizes zeros). */
void ds_quantize_row(ds_dtype t, const void *src, ds_dtype src_dtype, int64_t k, void *dst);
/* Quantized row of k elements -> f32 (the reference dequantizer). */
void ds_dequantize_row(ds_dtype t, const void *src, int64_t k, float *dst);

/* Quantizes a 2-D float tensor src [N, K] (rows may be strided) into dst_data
 * (N * ds_quant_row_bytes(t, K) bytes, caller-owned) and fills *dst with the view.
 * Rows are spread over pool (may be NULL). */
void ds_quantize_tensor(ds_pool *pool, const ds_tensor *src, ds_dtype t, void *dst_data, ds_tensor *dst);

#endif
